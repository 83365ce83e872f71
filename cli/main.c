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
int broker_main(int argc, char **argv);      /* broker/broker_cmd.c */
int stats_main(int argc, char **argv);       /* broker/admin_cmd.c */
int pause_main(int argc, char **argv);       /* broker/admin_cmd.c */
int resume_main(int argc, char **argv);      /* broker/admin_cmd.c */
int kick_main(int argc, char **argv);        /* broker/admin_cmd.c */
int delete_main(int argc, char **argv);      /* broker/admin_cmd.c */
int peek_main(int argc, char **argv);        /* broker/admin_cmd.c */
int broker_stop_main(int argc, char **argv); /* broker/admin_cmd.c */

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
     "\n"
     "Shows progress on stderr when it is a terminal, then the pool's report on\n"
     "stderr (JSON with --json). The first SIGINT/SIGTERM lets running jobs finish\n"
     "and runs no more; a second one stops at once.\n"
     "Exit status: 0 every job succeeded, 1 some job failed or crashed (or the run\n"
     "was stopped), 2 bad usage.\n"},
    {"worker", worker_main, "serve a local queue (shm://, mq://) with a pool of workers",
     "usage: jobq worker [-u URL] [--procs N | --threads N] (--exec CMD | --builtin NAME)\n"
     "                   [--timeout S] [--result-timeout S] [--json]\n"
     "\n"
     "Serves the named local queue URL (shm://NAME or mq://NAME, created if it does\n"
     "not exist; default $JOBQ_URL) with N workers, until each has taken a\n"
     "sentinel (jobq stop-workers -u URL -n N) or the process is signalled. Each\n"
     "job's result goes to the queue's results channel. Prints the pool's report on\n"
     "stdout (JSON with --json) and exits 0.\n"
     "\n"
     "  -u, --url URL        the queue to serve\n"
     "  --procs N            N forked worker processes (default: one per CPU); a\n"
     "                       worker that dies is restarted with backoff and its job\n"
     "                       run again or reported crashed\n"
     "  --threads N          N worker threads instead\n"
     "  --exec CMD           run CMD with /bin/sh -c per job (payload on stdin)\n"
     "  --builtin NAME       echo, upper, md5, sleep, fail, crash\n"
     "  --timeout S          time limit per job in seconds (a job's own --ttr, when\n"
     "                       smaller, wins)\n"
     "  --result-timeout S   drop a result when the results channel stayed full this\n"
     "                       long (default: wait; use it when producers do not read\n"
     "                       results, e.g. jobq submit without --wait)\n"
     "  --json               print the report as JSON\n"
     "\n"
     "SIGINT/SIGTERM: the first lets current jobs finish, the second stops at once.\n"
     "tcp:// and ipc:// URLs need the broker, which is not available yet.\n"},
    {"submit", submit_main, "submit jobs to a local queue (shm://, mq://)",
     "usage: jobq submit [-u URL] [--wait] [--timeout S] [--json] [--ttr S] [--retries N]\n"
     "                   [DATA... | --file F | --lines]\n"
     "\n"
     "Puts one job per DATA argument, one job holding file F (- for stdin), one job\n"
     "per line of stdin (--lines), or, with none of these, one job holding all of\n"
     "stdin, on the local queue URL (shm://NAME or mq://NAME, created if needed;\n"
     "default $JOBQ_URL). Prints each job's id, one per line.\n"
     "\n"
     "  -u, --url URL   the queue\n"
     "  --wait          print each job's result as it arrives instead (its output,\n"
     "                  one line per job; JSON objects with --json); exit 1 if any\n"
     "                  job failed\n"
     "  --timeout S     give up after S seconds (puts and results)\n"
     "  --json          JSON lines: {seq, id} per job, or results with --wait\n"
     "  --ttr S         the jobs' time limit per attempt (default 30)\n"
     "  --retries N     attempts after the first when a worker dies holding the job\n"
     "\n"
     "A local queue has one results channel: --wait assumes one waiting producer at\n"
     "a time (results for other producers' jobs are put back). Results of jobs\n"
     "submitted without --wait stay in the channel until read: serve such queues\n"
     "with jobq worker --result-timeout S.\n"
     "tcp:// and ipc:// URLs need the broker, which is not available yet (exit 2).\n"},
    {"stop-workers", stop_workers_main, "stop the workers of a local queue (sentinels)",
     "usage: jobq stop-workers [-u URL] -n N [--timeout S] [--unlink]\n"
     "\n"
     "Puts N sentinels on the local queue URL (shm://NAME or mq://NAME; default\n"
     "$JOBQ_URL), one per worker: each worker finishes the jobs queued before it,\n"
     "takes one sentinel, reports and exits. N is required: a local queue cannot\n"
     "count the workers attached to it (jobq worker --procs N has N workers).\n"
     "\n"
     "  -u, --url URL     the queue\n"
     "  -n, --count N     sentinels to put (may be 0 with --unlink)\n"
     "  --timeout S       give up if the queue stays full this long\n"
     "  --unlink          then remove the queue's system objects; processes still\n"
     "                    attached (the stopping workers) keep using it until they\n"
     "                    detach, later opens create a new queue\n"
     "tcp:// and ipc:// URLs need the broker, which is not available yet (exit 2).\n"},
    {"broker", broker_main, "run the jobq broker (tcp://, ipc://)",
     "usage: jobq broker [--listen URL]... [--heartbeat MS] [--liveness N] [--max-frame BYTES]\n"
     "                   [--max-jobs N] [--max-bytes N] [--max-queues N] [--max-credit N]\n"
     "                   [--drain MS] [--ready-file PATH] [--insecure]\n"
     "\n"
     "Serves producers and workers over ZeroMQ until SIGTERM or SIGINT. Jobs are kept\n"
     "in memory only (not durable yet). Prints 'listening on URL' for each endpoint\n"
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
     "  --ready-file PATH  also write the 'listening on' lines to PATH (atomically)\n"
     "  --insecure         allow a non-loopback tcp:// address without authentication\n"
     "\n"
     "SIGTERM/SIGINT: stop taking jobs, wait for leased jobs (--drain), exit 0; a\n"
     "second signal stops at once. Exit 2 on bad usage or a non-loopback address\n"
     "without --insecure, 1 when it cannot listen.\n"},
    {"stats", stats_main, "show a broker's queues, workers and counters",
     "usage: jobq stats [-u URL] [-q QUEUE] [--json] [--timeout S]\n"
     "\n"
     "Prints the broker's counters: per queue (ready, delayed, reserved, dead, done,\n"
     "failed, submitted, paused), per worker (routing id, credit, jobs held, done,\n"
     "failed, last heard), and the broker's own (uptime, memory, connections,\n"
     "protocol errors by kind). -u defaults to $JOBQ_URL, then to the broker's default\n"
     "endpoint (see jobq help broker).\n"
     "\n"
     "  -q, --queue QUEUE  only this queue (and the workers that serve it)\n"
     "  --json             the broker's JSON document as is\n"
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
    fprintf(out, "\nRun 'jobq help COMMAND' or 'jobq COMMAND --help' for a command's options.\n"
                 "Exit status: 0 success, 1 a job or operation failed, 2 bad usage.\n"
                 "Environment: JOBQ_URL (default URL), JOBQ_LOG (err|warn|notice|info|debug).\n");
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
    return c->main(argc - 1, argv + 1);
}
