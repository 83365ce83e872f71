/*
 * cli/main.c: the `jobq` executable, a thin dispatcher over each part's
 * NAME_main(argc, argv). The table below is the whole command set.
 */
#include "cli/commands.h"
#include "jobq/log.h"
#include "jobq/version.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_help_main(int argc, char **argv);
static int s_version_main(int argc, char **argv);
int run_main(int argc, char **argv);          /* worker/worker_cmd.c */
int worker_main(int argc, char **argv);       /* worker/worker_cmd.c */
int submit_main(int argc, char **argv);       /* producer/submit_cmd.c */
int stop_workers_main(int argc, char **argv); /* producer/submit_cmd.c */
int wait_main(int argc, char **argv);         /* producer/submit_cmd.c */
int join_main(int argc, char **argv);         /* producer/submit_cmd.c */
int broker_main(int argc, char **argv);       /* broker/broker_cmd.c */
int stats_main(int argc, char **argv);        /* broker/admin_cmd.c */
int pause_main(int argc, char **argv);        /* broker/admin_cmd.c */
int resume_main(int argc, char **argv);       /* broker/admin_cmd.c */
int kick_main(int argc, char **argv);         /* broker/admin_cmd.c */
int delete_main(int argc, char **argv);       /* broker/admin_cmd.c */
int peek_main(int argc, char **argv);         /* broker/admin_cmd.c */
int broker_stop_main(int argc, char **argv);  /* broker/admin_cmd.c */
int keygen_main(int argc, char **argv);       /* cli/keygen_cmd.c */

static const jobq_command_t s_commands[] = {
    {"help", s_help_main, "show help for jobq or one command",
     "usage: jobq help [COMMAND]\n"
     "\n"
     "Without COMMAND, lists the commands; with it, prints that command's usage.\n"},
    {"version", s_version_main, "print the jobq version",
     "usage: jobq version\n"
     "\n"
     "Prints the version of jobq and of the protocol it speaks.\n"},
    {"run", run_main, "run a batch of jobs through a local pool (no broker)",
     "usage: jobq run [--procs N | --threads N] (--exec CMD | --builtin NAME)\n"
     "                [--keep-order] [--json] [--timeout S] [ARG... | < lines]\n"
     "\n"
     "Runs one job per ARG, or per line of standard input (without its newline),\n"
     "through N workers on an anonymous shared-memory queue; no broker needed.\n"
     "Prints each result as it completes on stdout, one line per job (the output,\n"
     "with a newline added if missing); failures are also reported on stderr.\n"
     "\n"
     "  --procs N        N forked worker processes (default: one per CPU)\n"
     "  --threads N      N worker threads instead (a crashing job kills them all)\n"
     "  --exec CMD       run CMD with /bin/sh -c per job: the payload on stdin,\n"
     "                   stdout is the result, the exit code the status;\n"
     "                   JOBQ_JOB_ID, JOBQ_QUEUE, JOBQ_ATTEMPT in the environment\n"
     "  --builtin NAME   a built-in handler: echo, upper, md5, sleep, fail, crash\n"
     "  --keep-order     print results in input order\n"
     "  --json           one JSON object per result: seq, id, attempt, status,\n"
     "                   exit_code, signal, duration_us, output (and error)\n"
     "  --timeout S      time limit per job, in seconds (default: none)\n"
     "  --joblog FILE    append one line per finished job to FILE, in GNU\n"
     "                   parallel's layout (Seq Host Starttime JobRuntime Send\n"
     "                   Receive Exitval Signal Command)\n"
     "  --resume         skip the inputs FILE has a line for (same Seq and input)\n"
     "  --resume-failed  skip only those that succeeded: run the failed ones again\n"
     "\n"
     "Worker operations (docs/WORKERS.md):\n"
     "  --max-jobs-per-child N     a forked worker that ran N jobs ends after its\n"
     "                             report and is replaced at once (no job lost)\n"
     "  --max-memory-per-child MB  the same once its RSS after a job reaches MB\n"
     "  --fork-per-job             run each built-in/C handler call in a fresh child\n"
     "                             (a crash or leak cannot touch the next job)\n"
     "  --time-limit S             hard time limit per job (same as --timeout)\n"
     "  --soft-time-limit S        soft limit, below the hard one: --exec gets SIGTERM\n"
     "                             (SIGKILL at the hard limit), C handlers a flag\n"
     "  --limit-mem MB             --exec: RLIMIT_AS of each command\n"
     "  --limit-cpu S              --exec: RLIMIT_CPU (\"cpu limit S s exceeded\")\n"
     "  --limit-files N            --exec: RLIMIT_NOFILE\n"
     "  --shutdown-timeout S       after SIGTERM, stop cold once S seconds passed\n"
     "\n"
     "Shows progress on stderr when it is a terminal, then the pool's report on\n"
     "stderr (JSON with --json). The first SIGINT/SIGTERM lets running jobs finish\n"
     "and runs no more (warm); a second one stops at once (cold); SIGUSR1 stops\n"
     "the workers after their current job and waits for SIGINT/SIGTERM (quiet).\n"
     "Exit status: 0 every job succeeded, 1 some job failed or crashed (or the run\n"
     "was stopped), 2 bad usage.\n"},
    {"worker", worker_main, "serve a broker's queues or a local queue with a pool of workers",
     "usage: jobq worker [-u URL] [-q QUEUE]... [--procs N | --threads N] [--prefetch N]\n"
     "                   [--heartbeat MS] (--exec CMD | --builtin NAME) [--timeout S]\n"
     "                   [--result-timeout S] [--json]\n"
     "\n"
     "Serves URL with N workers until each is stopped by a sentinel (jobq\n"
     "stop-workers) or the process is signalled, then prints the pool's report on\n"
     "stdout (JSON with --json) and exits 0. URL is a broker (tcp://HOST:PORT or\n"
     "ipc://PATH) or a local queue (shm://NAME or mq://NAME, created if missing);\n"
     "default $JOBQ_URL, then the broker's default endpoint (see jobq help broker).\n"
     "\n"
     "On a broker each worker holds its own connection: it takes jobs from the\n"
     "QUEUEs (every queue without -q), holds at most --prefetch of them, sends\n"
     "heartbeats and extends its leases while a job runs, reports each result, and\n"
     "reconnects with backoff (100 ms doubling to 5 s) when the broker goes away.\n"
     "A sentinel makes it finish its running job, hand back the jobs it has not\n"
     "started, send its final report to the broker and exit.\n"
     "\n"
     "  -u, --url URL        the broker or queue to serve\n"
     "  -q, --queue QUEUE    broker: a queue to take jobs from (repeatable)\n"
     "  --procs N            N forked worker processes (default: one per CPU); a\n"
     "                       worker that dies is restarted with backoff and its job\n"
     "                       run again (or reported crashed)\n"
     "  --threads N          N worker threads instead\n"
     "  --prefetch N         broker: jobs a worker may hold at once (default 1; 64\n"
     "                       or more for many short jobs)\n"
     "  --heartbeat MS       broker: heartbeat interval (default 1000); a silent\n"
     "                       worker is found in about 3 intervals\n"
     "  --exec CMD           run CMD with /bin/sh -c per job (payload on stdin)\n"
     "  --builtin NAME       echo, upper, md5, sleep, fail, crash\n"
     "  --timeout S          time limit per job in seconds (a job's own --ttr, when\n"
     "                       smaller, wins)\n"
     "  --result-timeout S   local: drop a result when the results channel stayed\n"
     "                       full this long (default: wait; use it when producers do\n"
     "                       not read results, e.g. jobq submit without --wait)\n"
     "  --json               print the report as JSON\n"
     "\n"
     "Worker operations (docs/WORKERS.md):\n"
     "  --max-jobs-per-child N     a forked worker that ran N jobs ends after its\n"
     "                             report and is replaced at once (no job lost)\n"
     "  --max-memory-per-child MB  the same once its RSS after a job reaches MB\n"
     "  --fork-per-job             run each built-in/C handler call in a fresh child\n"
     "                             (a crash or leak cannot touch the next job)\n"
     "  --time-limit S             hard time limit per job (same as --timeout)\n"
     "  --soft-time-limit S        soft limit, below the hard one: --exec gets SIGTERM\n"
     "                             (SIGKILL at the hard limit), C handlers a flag\n"
     "  --limit-mem MB             --exec: RLIMIT_AS of each command\n"
     "  --limit-cpu S              --exec: RLIMIT_CPU (\"cpu limit S s exceeded\")\n"
     "  --limit-files N            --exec: RLIMIT_NOFILE\n"
     "  --shutdown-timeout S       after SIGTERM, stop cold once S seconds passed\n"
     "\n"
     "SIGINT/SIGTERM: the first lets current jobs finish (warm: a broker worker hands\n"
     "its prefetched jobs back), the second stops at once (cold: children killed,\n"
     "their jobs handed back); SIGUSR1: the workers end after their current job and\n"
     "the process stays up until SIGINT/SIGTERM (quiet).\n"},
    {"submit", submit_main, "submit jobs to a broker or a local queue",
     "usage: jobq submit [-u URL] [-q QUEUE] [--priority N] [--delay S | --at TIME]\n"
     "                   [--ttr S] [--retries N [--backoff S]] [--unique KEY] [--wait]\n"
     "                   [--timeout S] [--json] [--joblog FILE] [DATA... | --file F | --lines]\n"
     "\n"
     "Submits one job per DATA argument, one job holding file F (- for stdin), one\n"
     "job per line of stdin (--lines), or, with none of these, one job holding all\n"
     "of stdin, to URL: a broker (tcp:// or ipc://) or a local queue (shm://NAME or\n"
     "mq://NAME, created if needed); default $JOBQ_URL, then the broker's default\n"
     "endpoint. Returns once every job was accepted, printing their ids.\n"
     "\n"
     "  -u, --url URL     the broker or queue\n"
     "  -q, --queue QUEUE broker: the queue (default: default)\n"
     "  --priority N      broker: lower runs first (default 1024)\n"
     "  --delay S         broker: hand the jobs out S seconds from now\n"
     "  --at TIME         broker: hand the jobs out at TIME: Unix seconds\n"
     "                    (1767225600.5) or ISO-8601 (2026-12-01T10:00:00Z,\n"
     "                    ...+02:00; no zone: UTC); a past TIME: at once\n"
     "  --ttr S           time limit per attempt, in seconds (default 30); a\n"
     "                    broker worker keeps the job's lease while it runs\n"
     "  --retries N       attempts after the first when one fails or its worker dies\n"
     "  --backoff S       broker: wait S seconds before the first retry, doubling each\n"
     "                    time up to the broker's --backoff-max, +-20% jitter\n"
     "                    (default: the broker's --backoff-base, 1 s)\n"
     "  --unique KEY      broker: refuse the job while another live job of the\n"
     "                    queue has this key\n"
     "  --wait            print each job's result as it arrives instead (its output,\n"
     "                    one line per job; JSON objects with --json); exit 1 if any\n"
     "                    job failed\n"
     "  --timeout S       give up after S seconds (submitting and results)\n"
     "  --json            JSON lines: {seq, id} per job, or results with --wait\n"
     "  --joblog FILE     with --wait: one GNU parallel-style line per result\n"
     "                    (see jobq help run)\n"
     "\n"
     "A local queue has one results channel: run one --wait producer per local\n"
     "queue at a time (results of other producers' jobs it reads are dropped), and\n"
     "serve a queue whose results nobody reads with jobq worker --result-timeout S.\n"
     "Exit status: 0 every job accepted (and, with --wait, done), 1 a job was\n"
     "refused, failed or timed out, 2 bad usage.\n"},
    {"wait", wait_main, "wait for jobs' results",
     "usage: jobq wait [-u URL] [--timeout S] [--json] ID...\n"
     "\n"
     "Prints the result of each job ID (as jobq submit --wait does), waiting for\n"
     "those not finished yet. A broker keeps results for a while (jobq help\n"
     "broker); on a local queue, wait reads the results channel.\n"
     "\n"
     "  -u, --url URL   the broker or queue (default $JOBQ_URL, then the broker's\n"
     "                  default endpoint)\n"
     "  --timeout S     give up after S seconds (0: only results known now)\n"
     "  --json          one JSON object per result\n"
     "Exit status: 0 every job done, 1 a job failed, is unknown or timed out, 2 bad\n"
     "usage.\n"},
    {"join", join_main, "wait until every job of a queue is finished",
     "usage: jobq join [-u URL] [-q QUEUE] [--timeout S]\n"
     "\n"
     "Returns once every job submitted to QUEUE so far (by anyone) is finished:\n"
     "done, or dead after its last attempt.\n"
     "\n"
     "  -u, --url URL       the broker or local queue (default $JOBQ_URL, then the\n"
     "                      broker's default endpoint)\n"
     "  -q, --queue QUEUE   broker: the queue (default: default)\n"
     "  --timeout S         give up after S seconds\n"
     "Exit status: 0 joined, 1 timed out (or failed), 2 bad usage.\n"},
    {"stop-workers", stop_workers_main, "stop workers with sentinels",
     "usage: jobq stop-workers [-u URL] [-q QUEUE] [-n N] [--timeout S] [--unlink]\n"
     "\n"
     "On a broker, makes it send a sentinel to every connected worker (of QUEUE\n"
     "only, with -q): each finishes its running job, hands back the jobs it has not\n"
     "started, sends its final report and exits; its pool prints its report.\n"
     "On a local queue (shm://NAME or mq://NAME), puts N sentinels, one per worker:\n"
     "each worker finishes the jobs queued before it, takes one sentinel, reports\n"
     "and exits. N is required there: a local queue cannot count its workers.\n"
     "\n"
     "  -u, --url URL     the broker or queue (default $JOBQ_URL, then the broker's\n"
     "                    default endpoint)\n"
     "  -q, --queue QUEUE broker: only the workers serving QUEUE\n"
     "  -n, --count N     local: sentinels to put (may be 0 with --unlink)\n"
     "  --timeout S       give up after S seconds (local: when the queue stays full)\n"
     "  --unlink          local: then remove the queue's system objects; processes\n"
     "                    still attached (the stopping workers) keep using it until\n"
     "                    they detach, later opens create a new queue\n"},
    {"broker", broker_main, "run the jobq broker (tcp://, ipc://)",
     "usage: jobq broker [--listen URL]... [--heartbeat MS] [--liveness N] [--max-frame BYTES]\n"
     "                   [--max-jobs N] [--max-bytes N] [--max-queues N] [--max-credit N]\n"
     "                   [--drain MS] [--backoff-base MS] [--backoff-max MS]\n"
     "                   [--ready-file PATH] [--insecure]\n"
     "                   [--curve-key FILE --curve-clients DIR] [--max-leases N]\n"
     "                   [--handshake MS] [--zmtp-heartbeat MS]\n"
     "                   [--journal DIR [--fsync always|batch:MS|never] [--recover]]\n"
     "\n"
     "Serves producers and workers over ZeroMQ until SIGTERM or SIGINT. Without\n"
     "--journal jobs are kept in memory only. Prints 'listening on URL' for each endpoint\n"
     "on stdout once it accepts connections (a tcp port 0 or * shows the real port).\n"
     "\n"
     "  -l, --listen URL   tcp://HOST:PORT or ipc://PATH (repeatable; default\n"
     "                     ipc://$XDG_RUNTIME_DIR/jobq/broker.sock, else\n"
     "                     ipc:///tmp/jobq-UID/broker.sock, its directory made 0700)\n"
     "  --heartbeat MS     heartbeat interval for clients that ask none (default 1000)\n"
     "  --liveness N       silent intervals before a peer is dead (default 3); a dead\n"
     "                     worker's jobs go back to ready at once\n"
     "  --max-frame BYTES  largest frame accepted (default 1114112)\n"
     "  --max-jobs N       jobs per queue (default 100000): more get QUEUE_FULL\n"
     "  --max-bytes N      payload bytes per queue (default 268435456)\n"
     "  --max-queues N     queues (default 1000)\n"
     "  --max-credit N     jobs a worker may hold at once, at most (default 1024)\n"
     "  --drain MS         on SIGTERM, how long to wait for leased jobs (default 10000)\n"
     "  --backoff-base MS  delay before the first retry of a failed job (default 1000;\n"
     "                     doubling per attempt, +-20% jitter)\n"
     "  --backoff-max MS   cap of the retry delay (default 3600000)\n"
     "  --ready-file PATH  also write the 'listening on' lines to PATH (atomically)\n"
     "  --insecure         allow a non-loopback tcp:// address without authentication\n"
     "  --curve-key FILE   CURVE on every tcp:// endpoint with this key pair (jobq\n"
     "                     keygen's NAME.key, mode 0600); needs --curve-clients\n"
     "  --curve-clients DIR  admit only the public keys in DIR (one PRINCIPAL.pub\n"
     "                     each; the file name is the principal)\n"
     "  --max-leases N     jobs one CURVE principal may hold at once (default 1000)\n"
     "  --handshake MS     close connections that do not finish the ZMTP/CURVE\n"
     "                     handshake in MS (default 10000)\n"
     "  --zmtp-heartbeat MS  tcp:// ZMTP ping interval; a peer silent for 3 is\n"
     "                     closed (default 1000)\n"
     "  --journal DIR      journal every accepted job and state change in DIR (made 0700,\n"
     "                     one broker per DIR); replayed at start (docs/JOURNAL.md)\n"
     "  --fsync POLICY     always: ack a submit after fdatasync (one per pass);\n"
     "                     batch:MS: ack after write, fdatasync within MS (default 50);\n"
     "                     never: ack after write\n"
     "  --recover          truncate a journal segment at a checksum failure instead of\n"
     "                     refusing to start\n"
     "  --journal-segment BYTES  segment size (default 67108864)\n"
     "\n"
     "Client commands (submit, wait, join, stop-workers, worker, stats, pause, resume,\n"
     "kick, delete, peek, broker-stop) take --curve-key FILE (their NAME.key) and\n"
     "--curve-server FILE (the broker's .pub), default $JOBQ_CURVE_KEY and\n"
     "$JOBQ_CURVE_SERVER. docs/SECURITY.md has the details and every limit.\n"
     "\n"
     "SIGTERM/SIGINT: stop taking jobs, wait for leased jobs (--drain), exit 0; a\n"
     "second signal stops at once. Exit 2 on bad usage or a non-loopback address\n"
     "without --insecure or CURVE, or unusable key files, 1 when it cannot listen\n"
     "or the journal is locked, 3 when the journal is corrupt or of another format\n"
     "version.\n"},
    {"stats", stats_main, "show a broker's queues, workers and counters",
     "usage: jobq stats [-u URL] [-q QUEUE] [--json | --prometheus] [--timeout S]\n"
     "\n"
     "Prints the broker's counters: per queue (ready, delayed, reserved, dead, done,\n"
     "failed, submitted, paused), per worker (routing id, credit, jobs held, done,\n"
     "failed, last heard, CURVE principal), and the broker's own (uptime, memory,\n"
     "connections, protocol errors by kind, CURVE admissions and denials). -u\n"
     "defaults to $JOBQ_URL, then to the broker's default endpoint (see jobq help\n"
     "broker).\n"
     "\n"
     "  -q, --queue QUEUE  only this queue (and the workers that serve it)\n"
     "  --json             the broker's JSON document as is\n"
     "  --prometheus       Prometheus text exposition format\n"
     "  --timeout S        give up after S seconds (default 5)\n"},
    {"pause", pause_main, "stop handing out a broker queue's jobs",
     "usage: jobq pause [-u URL] -q QUEUE [SECONDS]\n"
     "\n"
     "No job of QUEUE is handed out until jobq resume, or for SECONDS.\n"},
    {"resume", resume_main, "resume a paused broker queue",
     "usage: jobq resume [-u URL] -q QUEUE\n"},
    {"kick", kick_main, "move dead jobs back to ready",
     "usage: jobq kick [-u URL] (-q QUEUE [N] | ID...)\n"
     "\n"
     "Moves up to N (default: all) of QUEUE's dead jobs, oldest first, or the named\n"
     "jobs, back to ready with their attempts reset. Prints how many moved.\n"},
    {"delete", delete_main, "remove jobs that are not running",
     "usage: jobq delete [-u URL] ID...\n"
     "\n"
     "Removes each job (any state but reserved) or its stored result. Prints how\n"
     "many went; exit 1 if one could not be removed.\n"},
    {"peek", peek_main, "show jobs without taking them",
     "usage: jobq peek [-u URL] (-q QUEUE [--ready | --delayed | --dead] [-n N] | ID...)\n"
     "\n"
     "Prints the first N (default 1) ready, delayed or dead jobs of QUEUE, or the\n"
     "named jobs, as JSON: {\"jobs\": [{id, queue, state, attempt, payload, ...}]}.\n"},
    {"keygen", keygen_main, "write a CURVE key pair (NAME.key, NAME.pub)",
     "usage: jobq keygen NAME\n"
     "\n"
     "Writes a fresh CURVE key pair: NAME.key (public and secret key, mode 0600) and\n"
     "NAME.pub (the public key, one Z85 line). Refuses to overwrite either file.\n"
     "Give NAME.pub to the other side: a broker admits the clients whose .pub files\n"
     "are in its --curve-clients directory; clients name the broker's .pub in\n"
     "--curve-server. Exit 1 when a file exists or cannot be written.\n"},
    {"broker-stop", broker_stop_main, "stop a broker as SIGTERM would",
     "usage: jobq broker-stop [-u URL]\n"
     "\n"
     "The broker stops taking jobs, waits for leased ones (its --drain) and exits.\n"},
};
#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

const jobq_command_t *
jobq_cli_find(const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0)
            return &s_commands[i];
    return NULL;
}

int
jobq_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    const jobq_command_t *c = jobq_cli_find(cmd);
    fprintf(stderr, "jobq %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c)
        fputs(c->usage, stderr);
    return JOBQ_EXIT_USAGE;
}

void
jobq_cli_log_init(void)
{
    const char *env = getenv("JOBQ_LOG");
    int level = env ? jobq_log_level_parse(env) : JOBQ_LOG_NOTICE;
    jobq_log_set(jobq_log_stderr, NULL, level < 0 ? JOBQ_LOG_NOTICE : (jobq_log_level)level);
}

static void
s_print_overview(FILE *out)
{
    fprintf(out, "usage: jobq [--help] [--version] COMMAND [ARGS...]\n\n"
                 "jobq hands jobs to pools of workers and collects their results,\n"
                 "over shm://NAME, mq://NAME, tcp://HOST:PORT or ipc://PATH.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        fprintf(out, "  %-14s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(out,
            "\nRun 'jobq help COMMAND' or 'jobq COMMAND --help' for a command's options.\n"
            "Exit status: 0 success, 1 a job or operation failed, 2 bad usage.\n"
            "Environment: JOBQ_URL (default URL), JOBQ_LOG (err|warn|notice|info|debug).\n"
            "CURVE: every command that talks to a broker takes --curve-key FILE and\n"
            "--curve-server FILE (or JOBQ_CURVE_KEY, JOBQ_CURVE_SERVER); see jobq help keygen.\n");
}

static int
s_help_main(int argc, char **argv)
{
    if (argc < 2) {
        s_print_overview(stdout);
        return JOBQ_EXIT_OK;
    }
    if (argc > 2)
        return jobq_cli_usage_error("help", "too many arguments");
    const jobq_command_t *c = jobq_cli_find(argv[1]);
    if (!c) {
        fprintf(stderr, "jobq help: unknown command '%s'\n", argv[1]);
        s_print_overview(stderr);
        return JOBQ_EXIT_USAGE;
    }
    fputs(c->usage, stdout);
    return JOBQ_EXIT_OK;
}

static int
s_version_main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return jobq_cli_usage_error("version", "takes no arguments");
    printf("jobq %s (protocol %d)\n", jobq_version(), 1);
    return JOBQ_EXIT_OK;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        s_print_overview(stderr);
        return JOBQ_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return s_help_main(1, argv + 1);
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        return s_version_main(1, argv + 1);
    const jobq_command_t *c = jobq_cli_find(name);
    if (!c) {
        fprintf(stderr, "jobq: unknown command '%s'\n\n", name);
        s_print_overview(stderr);
        return JOBQ_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(c->usage, stdout);
            return JOBQ_EXIT_OK;
        }
    }
    jobq_cli_log_init();
    int sub_argc = argc - 1;
    int rc = jobq_cli_curve_extract(c->name, &sub_argc, argv + 1);
    if (rc)
        return rc;
    return c->main(sub_argc, argv + 1);
}
