/*
 * broker/broker_cmd.c: `jobq broker`, the command front end of the reactor
 * (broker/reactor.h): parses the options, prepares the default ipc://
 * directory, binds, announces "listening on URL" (one line per endpoint on
 * stdout, then a flush; the same lines in --ready-file, written atomically),
 * and runs until SIGTERM or SIGINT.
 *
 * Signals: the handlers only write a byte to a self-pipe that the reactor
 * polls (stop_fd): the first signal starts the drain (no new jobs, leased jobs
 * finish or come back within --drain), a second one stops at once. SIGPIPE is
 * ignored so that a closed stdout cannot kill the broker.
 *
 * Exit codes: 0 after a clean stop, 1 when the broker could not start (bind
 * failure, another broker on the ipc path, a locked journal) or its journal
 * fail-stopped, 2 bad usage, including a non-loopback tcp:// address without
 * CURVE or --insecure, and key files or an allow-list directory that are
 * unsafe (group/world access) or malformed, 3 when the journal is corrupt
 * (checksum failure before the tail, without --recover) or has a bad header
 * or format version.
 *
 * CURVE: --curve-key FILE --curve-clients DIR turn on CURVE with the ZAP
 * allow-list on every tcp:// endpoint (broker/reactor_sec.c, broker/zap.h);
 * the process sets umask 077 first, and core dumps are disabled while a
 * secret key is loaded (PR_SET_DUMPABLE 0).
 *
 * Journal: --journal DIR [--fsync always|batch:MS|never] [--recover]
 * [--journal-segment BYTES] (broker/journal.h): opened, replayed and locked
 * after the bind and before "listening on"; closed (written and synced) after
 * the reactor stops.
 *
 * Retries: --backoff-base MS and --backoff-max MS set the core's retry delay
 * (first retry after base, doubling up to max, +-20% jitter; defaults 1 s
 * and 1 h). A max below the base is refused as bad usage.
 */
#include "broker/journal.h"
#include "broker/reactor.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/url.h"
#include "common/wire.h"
#include "jobq/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

int broker_main(int argc, char **argv);

static int s_stop_pipe[2] = {-1, -1};

static void
s_on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    if (write(s_stop_pipe[1], &c, 1) < 0) { /* full pipe: a stop is pending anyway */
    }
    errno = saved;
}

static int
s_signals(void)
{
    if (pipe2(s_stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Parses a decimal unsigned number in [min, max]; returns 0 or -1. */
static int
s_num(const char *text, unsigned long long min, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!text || *text == '-' || *text == '+')
        return -1;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

typedef struct s_args {
    reactor_opts_t o;
    const char *ready_file;
    journal_opts_t j;
} s_args_t;

#define S_EXIT_JOURNAL 3 /* the journal is corrupt or of another version */

enum {
    S_OPT_HB = 256,
    S_OPT_LIVENESS,
    S_OPT_MAX_FRAME,
    S_OPT_MAX_JOBS,
    S_OPT_MAX_BYTES,
    S_OPT_MAX_QUEUES,
    S_OPT_MAX_CREDIT,
    S_OPT_DRAIN,
    S_OPT_READY_FILE,
    S_OPT_INSECURE,
    S_OPT_BACKOFF_BASE,
    S_OPT_BACKOFF_MAX,
    S_OPT_CURVE_KEY,
    S_OPT_CURVE_CLIENTS,
    S_OPT_MAX_LEASES,
    S_OPT_HANDSHAKE,
    S_OPT_ZMTP_HB,
    S_OPT_JOURNAL,
    S_OPT_FSYNC,
    S_OPT_RECOVER,
    S_OPT_SEGMENT
};

/* Applies one numeric option; returns 0 or a usage error's exit code. */
static int
s_num_opt(s_args_t *a, int c, const char *arg)
{
    unsigned long long v = 0;
    static const struct {
        int opt;
        const char *name;
        unsigned long long min, max;
    } lim[] = {
        {S_OPT_HB, "--heartbeat", REACTOR_HB_MIN_MS, REACTOR_HB_MAX_MS},
        {S_OPT_LIVENESS, "--liveness", 1, 100},
        {S_OPT_MAX_FRAME, "--max-frame", 1024, WIRE_MAX_FRAME},
        {S_OPT_MAX_JOBS, "--max-jobs", 1, UINT32_MAX},
        {S_OPT_MAX_BYTES, "--max-bytes", 1, UINT64_MAX},
        {S_OPT_MAX_QUEUES, "--max-queues", 1, CORE_QUEUES_LIMIT},
        {S_OPT_MAX_CREDIT, "--max-credit", 1, 1000000},
        {S_OPT_DRAIN, "--drain", 0, 86400000},
        {S_OPT_BACKOFF_BASE, "--backoff-base", 0, 86400000},
        {S_OPT_BACKOFF_MAX, "--backoff-max", 0, 86400000},
        {S_OPT_MAX_LEASES, "--max-leases", 1, UINT32_MAX},
        {S_OPT_HANDSHAKE, "--handshake", 100, 3600000},
        {S_OPT_ZMTP_HB, "--zmtp-heartbeat", 100, 600000},
        {S_OPT_SEGMENT, "--journal-segment", JOURNAL_SEGMENT_MIN, UINT32_MAX},
    };
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        if (lim[i].opt != c)
            continue;
        if (s_num(arg, lim[i].min, lim[i].max, &v) != 0)
            return jobq_cli_usage_error("broker", "%s wants a number from %llu to %llu, got '%s'",
                                        lim[i].name, lim[i].min, lim[i].max, arg);
        break;
    }
    switch (c) {
    case S_OPT_HB:
        a->o.hb_ms = (uint32_t)v;
        break;
    case S_OPT_LIVENESS:
        a->o.liveness = (uint32_t)v;
        break;
    case S_OPT_MAX_FRAME:
        a->o.max_frame = (size_t)v;
        break;
    case S_OPT_MAX_JOBS:
        a->o.core.max_jobs = (uint32_t)v;
        break;
    case S_OPT_MAX_BYTES:
        a->o.core.max_bytes = v;
        break;
    case S_OPT_MAX_QUEUES:
        a->o.core.max_queues = (uint32_t)v;
        break;
    case S_OPT_MAX_CREDIT:
        a->o.max_credit = (uint32_t)v;
        break;
    case S_OPT_DRAIN:
        a->o.drain_ms = (int64_t)v;
        break;
    case S_OPT_BACKOFF_BASE: /* ms before the first retry; the core refuses max < base */
        a->o.core.backoff_base_ms = (int64_t)v;
        break;
    case S_OPT_BACKOFF_MAX:
        a->o.core.backoff_max_ms = (int64_t)v;
        break;
    case S_OPT_MAX_LEASES: /* per CURVE principal (reactor_sec.c) */
        a->o.max_leases = (uint32_t)v;
        break;
    case S_OPT_HANDSHAKE:
        a->o.handshake_ms = (uint32_t)v;
        break;
    case S_OPT_ZMTP_HB:
        a->o.zmtp_hb_ms = (uint32_t)v;
        break;
    case S_OPT_SEGMENT:
        a->j.segment_bytes = v;
        break;
    }
    return 0;
}

static int
s_parse(int argc, char **argv, s_args_t *a)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"heartbeat", required_argument, NULL, S_OPT_HB},
        {"liveness", required_argument, NULL, S_OPT_LIVENESS},
        {"max-frame", required_argument, NULL, S_OPT_MAX_FRAME},
        {"max-jobs", required_argument, NULL, S_OPT_MAX_JOBS},
        {"max-bytes", required_argument, NULL, S_OPT_MAX_BYTES},
        {"max-queues", required_argument, NULL, S_OPT_MAX_QUEUES},
        {"max-credit", required_argument, NULL, S_OPT_MAX_CREDIT},
        {"drain", required_argument, NULL, S_OPT_DRAIN},
        {"ready-file", required_argument, NULL, S_OPT_READY_FILE},
        {"insecure", no_argument, NULL, S_OPT_INSECURE},
        {"backoff-base", required_argument, NULL, S_OPT_BACKOFF_BASE},
        {"backoff-max", required_argument, NULL, S_OPT_BACKOFF_MAX},
        {"curve-key", required_argument, NULL, S_OPT_CURVE_KEY},
        {"curve-clients", required_argument, NULL, S_OPT_CURVE_CLIENTS},
        {"max-leases", required_argument, NULL, S_OPT_MAX_LEASES},
        {"handshake", required_argument, NULL, S_OPT_HANDSHAKE},
        {"zmtp-heartbeat", required_argument, NULL, S_OPT_ZMTP_HB},
        {"journal", required_argument, NULL, S_OPT_JOURNAL},
        {"fsync", required_argument, NULL, S_OPT_FSYNC},
        {"recover", no_argument, NULL, S_OPT_RECOVER},
        {"journal-segment", required_argument, NULL, S_OPT_SEGMENT},
        {NULL, 0, NULL, 0}};
    int c, rc;
    reactor_opts_init(&a->o);
    journal_opts_init(&a->j);
    a->ready_file = NULL;
    int fsync_set = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+l:", opts, NULL)) != -1) {
        if (c == 'l') {
            if (a->o.nlisten == REACTOR_LISTEN_MAX)
                return jobq_cli_usage_error("broker", "at most %d --listen", REACTOR_LISTEN_MAX);
            a->o.listen[a->o.nlisten++] = optarg;
        } else if (c == S_OPT_READY_FILE) {
            a->ready_file = optarg;
        } else if (c == S_OPT_INSECURE) {
            a->o.insecure = 1;
        } else if (c == S_OPT_CURVE_KEY) {
            a->o.curve_key = optarg;
        } else if (c == S_OPT_CURVE_CLIENTS) {
            a->o.curve_clients = optarg;
        } else if (c == S_OPT_JOURNAL) {
            a->j.dir = optarg;
        } else if (c == S_OPT_RECOVER) {
            a->j.recover = 1;
        } else if (c == S_OPT_FSYNC) {
            if (journal_policy_parse(optarg, &a->j.policy, &a->j.batch_ms) != 0)
                return jobq_cli_usage_error(
                    "broker", "--fsync wants always, never, batch or batch:MS, got '%s'", optarg);
            fsync_set = 1;
        } else if (c == '?') {
            return jobq_cli_usage_error("broker", "bad option");
        } else if ((rc = s_num_opt(a, c, optarg)) != 0) {
            return rc;
        }
    }
    if (optind < argc)
        return jobq_cli_usage_error("broker", "unexpected '%s'", argv[optind]);
    if (!a->o.curve_key != !a->o.curve_clients)
        return jobq_cli_usage_error("broker", "--curve-key and --curve-clients go together");
    if (!a->j.dir && (fsync_set || a->j.recover))
        return jobq_cli_usage_error("broker", "--fsync and --recover need --journal DIR");
    return 0;
}

/* Writes the endpoints to path atomically (a temporary file, then rename). */
static int
s_ready_file(const char *path, const reactor_t *r)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < reactor_endpoint_count(r); i++)
        fprintf(f, "listening on %s\n", reactor_endpoint(r, i));
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int
broker_main(int argc, char **argv)
{
    s_args_t a;
    int rc = s_parse(argc, argv, &a);
    if (rc)
        return rc;
    char def[JOBQ_URL_MAX], why[512];
    if (a.o.nlisten == 0) {
        if (broker_default_url(def, sizeof def) != JOBQ_OK) {
            fprintf(stderr, "jobq broker: the default endpoint path is too long: use --listen\n");
            return JOBQ_EXIT_USAGE;
        }
        if (broker_prepare_ipc_dir(def, why, sizeof why) != JOBQ_OK) {
            fprintf(stderr, "jobq broker: %s\n", why);
            return JOBQ_EXIT_FAIL;
        }
        a.o.listen[a.o.nlisten++] = def;
    }
    if (s_signals() != 0) {
        perror("jobq broker: pipe");
        return JOBQ_EXIT_FAIL;
    }
    a.o.stop_fd = s_stop_pipe[0];
    umask(077); /* sockets, ready file: nobody else's business (RELIABILITY.md S4) */
    if (a.o.curve_key)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* no core file with the secret key */
    reactor_t *r = NULL;
    rc = reactor_new(&a.o, &r, why, sizeof why);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq broker: %s\n", why);
        return rc == JOBQ_EFORBIDDEN || rc == JOBQ_EURL || rc == JOBQ_EINVAL ||
                       rc == JOBQ_ECORRUPT || rc == JOBQ_ENOTFOUND
                   ? JOBQ_EXIT_USAGE
                   : JOBQ_EXIT_FAIL;
    }
    journal_t *jrn = NULL;
    if (a.j.dir) {
        rc = journal_open(&a.j, reactor_core(r), jobq_now_ms(), &jrn, why, sizeof why);
        if (rc != JOBQ_OK) {
            fprintf(stderr, "jobq broker: %s\n", why);
            reactor_destroy(&r);
            return rc == JOBQ_ECORRUPT || rc == JOBQ_EVERSION ? S_EXIT_JOURNAL : JOBQ_EXIT_FAIL;
        }
        reactor_set_journal(r, jrn);
    }
    if (a.ready_file &&
        s_ready_file(a.ready_file, r) != 0) { /* first: it exists once stdout says so */
        fprintf(stderr, "jobq broker: cannot write %s: %s\n", a.ready_file, strerror(errno));
        journal_close(&jrn);
        reactor_destroy(&r);
        return JOBQ_EXIT_FAIL;
    }
    for (size_t i = 0; i < reactor_endpoint_count(r); i++)
        printf("listening on %s\n", reactor_endpoint(r, i));
    fflush(stdout);
    rc = reactor_run(r);
    int failed = jrn && journal_failed(jrn);
    journal_close(&jrn);
    reactor_destroy(&r);
    if (failed)
        rc = JOBQ_EIO;
    if (a.ready_file)
        unlink(a.ready_file);
    return rc == JOBQ_OK ? JOBQ_EXIT_OK : JOBQ_EXIT_FAIL;
}
