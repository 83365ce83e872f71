/*
 * worker/worker_cmd.c: `jobq run` (a batch of jobs through a local pool, no
 * broker) and `jobq worker` (a pool serving a named shm:// or mq:// queue, or
 * the queues of a broker at tcp:// or ipc://).
 *
 * `jobq run` owns an anonymous queue and a pool of N workers. A producer
 * thread puts one job per argument or stdin line while the main thread takes
 * results as they come (the queue is bounded: putting everything first would
 * deadlock once workers block on a full results channel), prints them (in
 * input order with --keep-order), and once every job has its result puts one
 * sentinel per worker and waits for the pool's report.
 *
 * Job ids carry the input position: 8 random bytes for this run, then the
 * sequence number, big-endian; a result's id gives back its line number.
 *
 * Signals (the binary's, never the library's), the shutdown stages of
 * docs/WORKERS.md: the first SIGINT/SIGTERM is a warm stop (stop submitting
 * and taking jobs, let the current ones finish, report, exit), the second one
 * or --shutdown-timeout expiring a cold stop (children killed, their jobs
 * handed back), SIGUSR1 a quiet stop (workers end after their current job,
 * the process stays up until SIGTERM/SIGINT).
 *
 * Worker operations (recycling, rlimits, --fork-per-job, soft/hard time
 * limits, --joblog with --resume / --resume-failed) are the options parsed by
 * s_apply_ops_opt; their behaviour lives in the library (jobq_pool_opts_t)
 * and worker/joblog.c.
 */
#include "broker/reactor.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/url.h"
#include "jobq/errors.h"
#include "jobq/pool.h"
#include "jobq/queue.h"
#include "worker/handler.h"
#include "worker/joblog.h"
#include "worker/worker.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int run_main(int argc, char **argv);
int worker_main(int argc, char **argv);

/* ---- signals ------------------------------------------------------------- */

static jobq_pool_t *volatile s_sig_pool;
static volatile sig_atomic_t s_signals; /* SIGINT/SIGTERM received: 1 warm, 2 cold */
static volatile sig_atomic_t s_quiet;   /* SIGUSR1 received */

static void
s_on_signal(int sig)
{
    if (sig == SIGUSR1) {
        s_quiet = 1;
        jobq_pool_stop(s_sig_pool, 0);
        return;
    }
    if (s_signals < 2)
        s_signals++;
    jobq_pool_stop(s_sig_pool, s_signals >= 2);
}

static void
s_install_signals(jobq_pool_t *pool)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    s_sig_pool = pool;
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* ---- options shared by run and worker -------------------------------------- */

#define S_QUEUES_MAX 256 /* -q names a worker may serve (the wire's limit) */

typedef struct s_opts {
    jobq_pool_opts_t pool;
    int procs_set, threads_set;
    int json;
    int keep_order;
    const char *url;
    const char *queues[S_QUEUES_MAX]; /* -q, in pool.queues */
    int net_opts;                     /* -q, --prefetch or --heartbeat given */
    const char *joblog;               /* --joblog FILE */
    int resume;                       /* 1 --resume, 2 --resume-failed */
    int64_t shutdown_timeout_ms;      /* warm stop turns cold after this; 0 = never */
} s_opts_t;

/* Parses a count in [1, 4096]; returns -1 if text is not one. */
static long
s_parse_count(const char *text)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 1 || v > 4096)
        return -1;
    return v;
}

/* Parses seconds (> 0, fractions allowed) into milliseconds; -1 if invalid. */
static int64_t
s_parse_seconds(const char *text)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v > 0) || v > 1e7)
        return -1;
    int64_t ms = (int64_t)(v * 1000.0 + 0.5);
    return ms > 0 ? ms : 1;
}

enum {
    S_OPT_KEEP = 256,
    S_OPT_JSON,
    S_OPT_RESULT_TIMEOUT,
    S_OPT_PREFETCH,
    S_OPT_HEARTBEAT,
    /* worker operations (s_apply_ops_opt) */
    S_OPT_MAX_JOBS,
    S_OPT_MAX_MEM,
    S_OPT_FORK_PER_JOB,
    S_OPT_SOFT_LIMIT,
    S_OPT_LIMIT_MEM,
    S_OPT_LIMIT_CPU,
    S_OPT_LIMIT_FILES,
    S_OPT_SHUTDOWN_TIMEOUT,
    S_OPT_JOBLOG,
    S_OPT_RESUME,
    S_OPT_RESUME_FAILED
};

static const struct option s_long_opts[] = {
    {"procs", required_argument, NULL, 'p'},
    {"threads", required_argument, NULL, 't'},
    {"exec", required_argument, NULL, 'e'},
    {"builtin", required_argument, NULL, 'b'},
    {"timeout", required_argument, NULL, 'T'},
    {"url", required_argument, NULL, 'u'},
    {"keep-order", no_argument, NULL, S_OPT_KEEP},
    {"json", no_argument, NULL, S_OPT_JSON},
    {"result-timeout", required_argument, NULL, S_OPT_RESULT_TIMEOUT},
    {"queue", required_argument, NULL, 'q'},
    {"prefetch", required_argument, NULL, S_OPT_PREFETCH},
    {"heartbeat", required_argument, NULL, S_OPT_HEARTBEAT},
    {"time-limit", required_argument, NULL, 'T'},
    {"max-jobs-per-child", required_argument, NULL, S_OPT_MAX_JOBS},
    {"max-memory-per-child", required_argument, NULL, S_OPT_MAX_MEM},
    {"fork-per-job", no_argument, NULL, S_OPT_FORK_PER_JOB},
    {"soft-time-limit", required_argument, NULL, S_OPT_SOFT_LIMIT},
    {"limit-mem", required_argument, NULL, S_OPT_LIMIT_MEM},
    {"limit-cpu", required_argument, NULL, S_OPT_LIMIT_CPU},
    {"limit-files", required_argument, NULL, S_OPT_LIMIT_FILES},
    {"shutdown-timeout", required_argument, NULL, S_OPT_SHUTDOWN_TIMEOUT},
    {"joblog", required_argument, NULL, S_OPT_JOBLOG},
    {"resume", no_argument, NULL, S_OPT_RESUME},
    {"resume-failed", no_argument, NULL, S_OPT_RESUME_FAILED},
    {NULL, 0, NULL, 0},
};

/* The options every `allowed` list of run and worker accepts. */
#define S_OPS_OPTS                                                                                 \
    " time-limit max-jobs-per-child max-memory-per-child fork-per-job soft-time-limit "            \
    "limit-mem limit-cpu limit-files shutdown-timeout "

/* Applies a worker-operations option (docs/WORKERS.md); returns 0 or a usage
 * error's code. */
static int
s_apply_ops_opt(const char *cmd, int c, const char *arg, s_opts_t *o)
{
    char *end;
    errno = 0;
    long long v = arg ? strtoll(arg, &end, 10) : 0;
    int bad_count = arg && (errno || end == arg || *end || v < 1 || v > UINT32_MAX);
    int64_t ms = arg ? s_parse_seconds(arg) : 0;
    switch (c) {
    case S_OPT_FORK_PER_JOB:
        o->pool.fork_per_job = 1;
        return 0;
    case S_OPT_JOBLOG:
        o->joblog = arg;
        return 0;
    case S_OPT_RESUME:
    case S_OPT_RESUME_FAILED:
        o->resume = c == S_OPT_RESUME ? 1 : 2;
        return 0;
    case S_OPT_SOFT_LIMIT:
    case S_OPT_SHUTDOWN_TIMEOUT:
        if (ms < 0 || ms > UINT32_MAX)
            return jobq_cli_usage_error(cmd, "a time is a number of seconds > 0, not '%s'", arg);
        if (c == S_OPT_SOFT_LIMIT)
            o->pool.soft_time_limit_ms = (uint32_t)ms;
        else
            o->shutdown_timeout_ms = ms;
        return 0;
    default:
        break;
    }
    if (bad_count)
        return jobq_cli_usage_error(cmd, "'%s' is not a whole number from 1 to 4294967295", arg);
    if (c == S_OPT_MAX_JOBS)
        o->pool.max_jobs_per_child = (uint32_t)v;
    else if (c == S_OPT_MAX_MEM)
        o->pool.max_memory_per_child_mb = (uint32_t)v;
    else if (c == S_OPT_LIMIT_MEM)
        o->pool.limit_mem_mb = (uint32_t)v;
    else if (c == S_OPT_LIMIT_CPU)
        o->pool.limit_cpu_s = (uint32_t)v;
    else
        o->pool.limit_files = (uint32_t)v;
    return 0;
}

/* Applies one of the broker worker's options; returns 0 or a usage error's code. */
static int
s_apply_net_opt(const char *cmd, int c, const char *arg, s_opts_t *o)
{
    char *end;
    errno = 0;
    long v = c == 'q' ? 0 : strtol(arg, &end, 10);
    o->net_opts = 1;
    if (c == 'q') {
        if (!jobq_queue_name_valid(arg, strlen(arg)))
            return jobq_cli_usage_error(cmd, "'%s' is not a valid queue name", arg);
        if (o->pool.nqueues == S_QUEUES_MAX)
            return jobq_cli_usage_error(cmd, "at most %d queues", S_QUEUES_MAX);
        o->queues[o->pool.nqueues++] = arg;
        o->pool.queues = o->queues;
        return 0;
    }
    if (c == S_OPT_PREFETCH) {
        if (errno || end == arg || *end || v < 1 || v > 4096)
            return jobq_cli_usage_error(cmd, "--prefetch needs a number from 1 to 4096, not '%s'",
                                        arg);
        o->pool.prefetch = (uint32_t)v;
        return 0;
    }
    if (errno || end == arg || *end || v < 10 || v > 60000)
        return jobq_cli_usage_error(
            cmd, "--heartbeat needs milliseconds from 10 to 60000, not '%s'", arg);
    o->pool.heartbeat_ms = (uint32_t)v;
    return 0;
}

/* Applies one parsed option; returns 0, or a usage error's exit code. */
static int
s_apply_opt(const char *cmd, int c, const char *arg, s_opts_t *o)
{
    long n;
    int64_t ms;
    switch (c) {
    case 'q':
    case S_OPT_PREFETCH:
    case S_OPT_HEARTBEAT:
        return s_apply_net_opt(cmd, c, arg, o);
    case 'p':
    case 't':
        if ((n = s_parse_count(arg)) < 0)
            return jobq_cli_usage_error(cmd, "--%s needs a number from 1 to 4096, not '%s'",
                                        c == 'p' ? "procs" : "threads", arg);
        o->pool.workers = (unsigned)n;
        o->pool.mode = c == 'p' ? JOBQ_POOL_PROCS : JOBQ_POOL_THREADS;
        *(c == 'p' ? &o->procs_set : &o->threads_set) = 1;
        return 0;
    case 'e':
        o->pool.exec = arg;
        return 0;
    case 'b':
        o->pool.builtin = arg;
        return 0;
    case 'T':
    case S_OPT_RESULT_TIMEOUT:
        if ((ms = s_parse_seconds(arg)) < 0 || ms > UINT32_MAX)
            return jobq_cli_usage_error(cmd, "a timeout is a number of seconds > 0, not '%s'", arg);
        if (c == 'T')
            o->pool.time_limit_ms = (uint32_t)ms;
        else
            o->pool.result_timeout_ms = ms;
        return 0;
    case 'u':
        o->url = arg;
        return 0;
    case S_OPT_KEEP:
        o->keep_order = 1;
        return 0;
    case S_OPT_JSON:
        o->json = 1;
        return 0;
    default:
        if (c >= S_OPT_MAX_JOBS && c <= S_OPT_RESUME_FAILED)
            return s_apply_ops_opt(cmd, c, arg, o);
        return jobq_cli_usage_error(cmd, "unknown option");
    }
}

/* Parses argv into o; returns 0 and sets *first to the first operand, or the
 * exit code of a usage error. allowed lists the options cmd accepts. */
static int
s_parse(int argc, char **argv, const char *allowed, s_opts_t *o, int *first)
{
    const char *cmd = argv[0];
    memset(o, 0, sizeof *o);
    jobq_pool_opts_init(&o->pool);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+p:t:e:b:T:u:q:", s_long_opts, NULL)) != -1) {
        if (c == '?' || c == ':')
            return jobq_cli_usage_error(cmd, "unknown option or missing value: '%s'",
                                        argv[optind - 1]);
        const struct option *lo = NULL;
        for (const struct option *p = s_long_opts; p->name; p++)
            if (p->val == c)
                lo = p;
        if (!lo || !strstr(allowed, lo->name))
            return jobq_cli_usage_error(cmd, "option '%s' does not apply here", argv[optind - 1]);
        int rc = s_apply_opt(cmd, c, optarg, o);
        if (rc)
            return rc;
    }
    if (o->procs_set && o->threads_set)
        return jobq_cli_usage_error(cmd, "give --procs or --threads, not both");
    if ((o->pool.exec != NULL) == (o->pool.builtin != NULL))
        return jobq_cli_usage_error(cmd, "give exactly one of --exec CMD or --builtin NAME");
    if (o->resume && !o->joblog)
        return jobq_cli_usage_error(cmd, "--resume and --resume-failed need --joblog FILE");
    if (o->pool.soft_time_limit_ms && o->pool.time_limit_ms &&
        o->pool.soft_time_limit_ms >= o->pool.time_limit_ms)
        return jobq_cli_usage_error(cmd, "--soft-time-limit must be below --time-limit");
    if (o->pool.builtin) {
        handler_t *h = handler_new_builtin(o->pool.builtin);
        if (!h)
            return jobq_cli_usage_error(cmd, "unknown built-in '%s' (built-ins: %s)",
                                        o->pool.builtin, handler_builtin_list());
        handler_destroy(&h);
    }
    if (!o->pool.workers) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->pool.workers = n > 0 ? (unsigned)n : 1;
    }
    *first = optind;
    return 0;
}

static void
s_print_report(FILE *out, const jobq_pool_report_t *rep, int json)
{
    char buf[512];
    jobq_pool_report_format(rep, json, buf, sizeof buf);
    fprintf(out, "%s\n", buf);
    fflush(out);
}

/* ---- jobq run: the producer thread ---------------------------------------- */

typedef struct s_done {
    jobq_result_t res; /* slices point into data */
    char data[];
} s_done_t;

typedef struct s_run {
    s_opts_t o;
    char **args; /* jobs from the command line, or NULL: stdin lines */
    int nargs;
    jobq_queue_t *q;
    uint8_t prefix[8];      /* the first half of every job id of this run */
    atomic_llong submitted; /* jobs put (or answered by a synthetic result) */
    atomic_int producer_done;
    long long next_seq; /* producer thread: the next input's sequence number */
    /* --joblog: the log, what --resume skips, and each input (for its line) */
    joblog_t *jl;
    joblog_index_t *ix;
    long long skipped;
    pthread_mutex_t in_mu; /* guards in, in_len, in_cap */
    char **in;
    size_t *in_len, in_cap;
    /* main thread only */
    long long received;
    long long next_print; /* --keep-order: the next sequence number to print */
    unsigned char *seen;  /* one byte per sequence number */
    s_done_t **pending;   /* --keep-order: results waiting for their turn */
    size_t cap;           /* entries in seen and pending */
    int any_failed;
    int broken; /* the queue failed: stop everything */
    int64_t last_progress_ms;
} s_run_t;

static void
s_make_id(const s_run_t *r, long long seq, jobq_id_t *id)
{
    memcpy(id->b, r->prefix, 8);
    for (int i = 0; i < 8; i++)
        id->b[8 + i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
}

/* Returns the sequence number in id, or -1 if id is not one of this run's. */
static long long
s_seq_of(const s_run_t *r, const jobq_id_t *id)
{
    uint64_t seq = 0;
    if (memcmp(id->b, r->prefix, 8) != 0)
        return -1;
    for (int i = 0; i < 8; i++)
        seq = (seq << 8) | id->b[8 + i];
    return seq > (uint64_t)LLONG_MAX ? -1 : (long long)seq;
}

/* A job the queue refused (too big, ...) still gets its one result line. */
static void
s_put_refusal(s_run_t *r, const jobq_id_t *id, int rc)
{
    jobq_result_t res;
    const char *why = jobq_strerror(rc);
    jobq_result_init(&res);
    res.id = *id;
    res.attempt = 1;
    res.status = JOBQ_STATUS_FAILED;
    res.error = why;
    res.error_len = (uint32_t)strlen(why);
    while (jobq_queue_put_result(r->q, &res, 100) == JOBQ_ETIMEDOUT && !s_signals)
        ;
}

/* --joblog: keeps input seq's bytes for its log line. */
static void
s_keep_input(s_run_t *r, long long seq, const char *data, size_t len)
{
    pthread_mutex_lock(&r->in_mu);
    if ((size_t)seq >= r->in_cap) {
        size_t cap = r->in_cap ? r->in_cap * 2 : 1024;
        while (cap <= (size_t)seq)
            cap *= 2;
        r->in = jobq_realloc(r->in, cap * sizeof *r->in);
        r->in_len = jobq_realloc(r->in_len, cap * sizeof *r->in_len);
        memset(r->in + r->in_cap, 0, (cap - r->in_cap) * sizeof *r->in);
        r->in_cap = cap;
    }
    r->in[seq] = jobq_memdup(data, len + 1);
    r->in_len[seq] = len;
    pthread_mutex_unlock(&r->in_mu);
}

/* --joblog: writes the line of a result and forgets its input. */
static void
s_log_result(s_run_t *r, const jobq_result_t *res, long long seq)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t end_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    pthread_mutex_lock(&r->in_mu);
    char *in = (size_t)seq < r->in_cap ? r->in[seq] : NULL;
    size_t len = in ? r->in_len[seq] : 0;
    if (in)
        r->in[seq] = NULL;
    pthread_mutex_unlock(&r->in_mu);
    if (joblog_write(r->jl, seq + 1, end_ms - (int64_t)(res->duration_us / 1000), res, in ? in : "",
                     len) != 0)
        fprintf(stderr, "jobq run: cannot write the job log: %s\n", strerror(errno));
    jobq_free(in);
}

static void
s_submit_one(s_run_t *r, const char *data, size_t len)
{
    jobq_job_t job;
    jobq_job_init(&job);
    long long seq = r->next_seq++;
    if (r->ix && joblog_index_skip(r->ix, seq + 1, data, len, r->o.resume == 1)) {
        r->skipped++; /* --resume: done in an earlier run */
        return;
    }
    if (r->jl)
        s_keep_input(r, seq, data, len);
    s_make_id(r, seq, &job.id);
    job.payload = data;
    job.payload_len = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
    job.ttr_ms = r->o.pool.time_limit_ms; /* 0: no limit unless --timeout */
    int rc;
    while (((rc = jobq_queue_put(r->q, &job, 100)) == JOBQ_ETIMEDOUT || rc == JOBQ_EFULL) &&
           !s_signals)
        ;
    if (rc == JOBQ_ETIMEDOUT || rc == JOBQ_EFULL)
        return; /* stopping */
    if (rc != JOBQ_OK)
        s_put_refusal(r, &job.id, rc);
    atomic_store(&r->submitted, atomic_load(&r->submitted) + 1);
}

static void
s_free_line(void *p)
{
    free(*(char **)p); /* getline's buffer comes from malloc */
}

/* Puts one job per stdin line. Cancellable only while reading, never in a put. */
static void
s_submit_lines(s_run_t *r)
{
    char *line = NULL;
    size_t cap = 0;
    pthread_cleanup_push(s_free_line, &line);
    for (;;) {
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        ssize_t n = s_signals ? -1 : getline(&line, &cap, stdin);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        if (n < 0)
            break;
        if (n > 0 && line[n - 1] == '\n')
            n--;
        s_submit_one(r, line, (size_t)n);
    }
    pthread_cleanup_pop(1);
}

static void *
s_producer(void *arg)
{
    s_run_t *r = arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    if (r->args) {
        for (int i = 0; i < r->nargs && !s_signals; i++)
            s_submit_one(r, r->args[i], strlen(r->args[i]));
    } else {
        s_submit_lines(r);
    }
    atomic_store(&r->producer_done, 1);
    return NULL;
}

/* ---- jobq run: results ------------------------------------------------------ */

static void
s_print_result(const s_run_t *r, const jobq_result_t *res, long long seq)
{
    if (r->o.json) {
        char *line = worker_result_json(res, seq);
        fputs(line, stdout);
        fputc('\n', stdout);
        jobq_free(line);
        return;
    }
    if (res->output_len)
        fwrite(res->output, 1, res->output_len, stdout);
    if (!res->output_len || ((const char *)res->output)[res->output_len - 1] != '\n')
        fputc('\n', stdout);
    if (res->status != JOBQ_STATUS_DONE) {
        fprintf(stderr, "jobq run: job %lld (line %lld) %s: exit %d, signal %d%s%.*s\n", seq,
                seq + 1, jobq_status_name(res->status), (int)res->exit_code, (int)res->signal,
                res->error_len ? ": " : "", (int)res->error_len, res->error ? res->error : "");
    }
}

static s_done_t *
s_copy_result(const jobq_result_t *res)
{
    s_done_t *d = jobq_malloc(sizeof *d + res->output_len + res->error_len + 1);
    d->res = *res;
    if (res->output_len)
        memcpy(d->data, res->output, res->output_len);
    if (res->error_len)
        memcpy(d->data + res->output_len, res->error, res->error_len);
    d->res.output = d->data;
    d->res.error = d->data + res->output_len;
    return d;
}

static void
s_grow(s_run_t *r, long long seq)
{
    if ((size_t)seq < r->cap)
        return;
    size_t cap = r->cap ? r->cap : 1024;
    while (cap <= (size_t)seq)
        cap *= 2;
    r->seen = jobq_realloc(r->seen, cap);
    memset(r->seen + r->cap, 0, cap - r->cap);
    r->pending = jobq_realloc(r->pending, cap * sizeof *r->pending);
    memset(r->pending + r->cap, 0, (cap - r->cap) * sizeof *r->pending);
    r->cap = cap;
}

static void
s_on_result(s_run_t *r, const jobq_result_t *res)
{
    long long seq = s_seq_of(r, &res->id);
    if (seq < 0) {
        fprintf(stderr, "jobq run: ignoring a result for a job of another run\n");
        return;
    }
    s_grow(r, seq);
    if (r->seen[seq])
        return; /* a second result for one job: the first one counts */
    r->seen[seq] = 1;
    r->received++;
    if (res->status != JOBQ_STATUS_DONE)
        r->any_failed = 1;
    if (r->jl)
        s_log_result(r, res, seq);
    if (!r->o.keep_order) {
        s_print_result(r, res, seq);
        return;
    }
    r->pending[seq] = s_copy_result(res);
    while ((size_t)r->next_print < r->cap && r->pending[r->next_print]) {
        s_print_result(r, &r->pending[r->next_print]->res, r->next_print);
        jobq_free(r->pending[r->next_print]);
        r->pending[r->next_print] = NULL;
        r->next_print++;
    }
}

static void
s_progress(s_run_t *r, int final)
{
    if (r->o.json || !isatty(STDERR_FILENO))
        return;
    int64_t now = jobq_now_ms();
    if (!final && now - r->last_progress_ms < 100)
        return;
    r->last_progress_ms = now;
    if (final)
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\r%lld/%lld%s done", r->received, (long long)atomic_load(&r->submitted),
                atomic_load(&r->producer_done) ? "" : "+");
    fflush(stderr);
}

/* Takes results until every submitted job has one, or, after a stop, until the
 * pool has ended and the channel is drained. */
static void
s_collect(s_run_t *r, jobq_pool_t *pool)
{
    jobq_result_t res;
    for (;;) {
        if (atomic_load(&r->producer_done) && r->received >= atomic_load(&r->submitted))
            return;
        int rc = jobq_queue_get_result(r->q, &res, 0);
        if (rc == JOBQ_EEMPTY || rc == JOBQ_ETIMEDOUT) {
            fflush(stdout);
            s_progress(r, 0);
            if (s_signals && jobq_pool_wait(pool, 0, NULL) == JOBQ_OK &&
                jobq_queue_get_result(r->q, &res, 0) != JOBQ_OK)
                return; /* stopped: the pool ended and nothing is left */
            rc = jobq_queue_get_result(r->q, &res, 100);
        }
        if (rc == JOBQ_OK) {
            s_on_result(r, &res);
        } else if (rc != JOBQ_EEMPTY && rc != JOBQ_ETIMEDOUT) {
            fprintf(stderr, "jobq run: cannot read results: %s\n", jobq_strerror(rc));
            r->broken = 1;
            jobq_pool_stop(pool, 1);
            return;
        }
    }
}

static void
s_run_free(s_run_t *r)
{
    for (size_t i = 0; i < r->cap; i++)
        jobq_free(r->pending[i]);
    jobq_free(r->pending);
    jobq_free(r->seen);
    for (size_t i = 0; i < r->in_cap; i++)
        jobq_free(r->in[i]);
    jobq_free(r->in);
    jobq_free(r->in_len);
    joblog_close(&r->jl);
    joblog_index_free(r->ix);
    pthread_mutex_destroy(&r->in_mu);
}

/* Waits for the pool to end, turning a warm stop cold once --shutdown-timeout
 * has passed since the first SIGTERM/SIGINT. */
static int
s_wait_pool(jobq_pool_t *pool, int64_t shutdown_timeout_ms, jobq_pool_report_t *rep)
{
    int64_t warm_since = 0;
    for (;;) {
        int rc = jobq_pool_wait(pool, 100, rep);
        if (rc != JOBQ_ETIMEDOUT)
            return rc;
        if (s_signals && !warm_since)
            warm_since = jobq_now_ms();
        if (warm_since && shutdown_timeout_ms > 0 &&
            jobq_now_ms() - warm_since >= shutdown_timeout_ms && s_signals < 2) {
            fprintf(stderr, "jobq: shutdown timeout: stopping now (cold)\n");
            s_signals = 2;
            jobq_pool_stop(pool, 1);
        }
    }
}

/* Quiet stage: the workers have ended; stay up until SIGTERM/SIGINT. */
static void
s_stay_quiet(void)
{
    struct timespec ts = {0, 50L * 1000 * 1000};
    while (s_quiet && !s_signals)
        nanosleep(&ts, NULL);
}

/* Ends the pool: one sentinel per worker (unless stopping), then the report. */
static int
s_finish_pool(s_run_t *r, jobq_pool_t *pool, jobq_pool_report_t *rep)
{
    for (unsigned i = 0; i < r->o.pool.workers && !s_signals && !r->broken; i++)
        while (jobq_queue_put_sentinel(r->q, 100) == JOBQ_ETIMEDOUT && !s_signals)
            ;
    if (s_signals)
        jobq_pool_stop(pool, s_signals >= 2);
    return s_wait_pool(pool, r->o.shutdown_timeout_ms, rep);
}

static int
s_run(s_run_t *r)
{
    jobq_pool_t *pool = NULL;
    jobq_pool_report_t rep;
    pthread_t producer;
    r->o.pool.queue = r->q;
    int rc = jobq_pool_new(&r->o.pool, &pool);
    if (rc == JOBQ_OK)
        rc = jobq_pool_start(pool);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq run: cannot start the pool: %s\n", jobq_strerror(rc));
        jobq_pool_destroy(&pool);
        return JOBQ_EXIT_FAIL;
    }
    s_install_signals(pool);
    if (pthread_create(&producer, NULL, s_producer, r) != 0) {
        fprintf(stderr, "jobq run: cannot start the producer thread\n");
        jobq_pool_destroy(&pool);
        return JOBQ_EXIT_FAIL;
    }
    s_collect(r, pool);
    s_progress(r, 1);
    fflush(stdout);
    if (s_signals || r->broken)
        pthread_cancel(producer); /* it may be reading a terminal */
    pthread_join(producer, NULL);
    s_finish_pool(r, pool, &rep);
    s_print_report(stderr, &rep, r->o.json);
    s_sig_pool = NULL;
    jobq_pool_destroy(&pool);
    if (r->skipped && !r->o.json) /* read after the producer thread was joined */
        fprintf(stderr, "jobq run: %lld input(s) skipped: already in %s\n", r->skipped,
                r->o.joblog);
    int incomplete = r->received < atomic_load(&r->submitted) || s_signals || r->broken;
    if (incomplete)
        fprintf(stderr, "jobq run: stopped: %lld of %lld jobs have a result\n", r->received,
                (long long)atomic_load(&r->submitted));
    return r->any_failed || incomplete ? JOBQ_EXIT_FAIL : JOBQ_EXIT_OK;
}

int
run_main(int argc, char **argv)
{
    s_run_t r;
    int first;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.in_mu, NULL);
    int rc = s_parse(argc, argv,
                     "procs threads exec builtin timeout keep-order json joblog resume "
                     "resume-failed" S_OPS_OPTS,
                     &r.o, &first);
    if (rc)
        return rc;
    if (r.o.resume && !(r.ix = joblog_index_load(r.o.joblog))) {
        fprintf(stderr, "jobq run: cannot read the job log %s: %s\n", r.o.joblog, strerror(errno));
        return JOBQ_EXIT_FAIL;
    }
    if (r.o.joblog && !(r.jl = joblog_open(r.o.joblog))) {
        fprintf(stderr, "jobq run: cannot open the job log %s: %s\n", r.o.joblog, strerror(errno));
        joblog_index_free(r.ix);
        return JOBQ_EXIT_FAIL;
    }
    if (first < argc) {
        r.args = argv + first;
        r.nargs = argc - first;
    }
    jobq_id_t rnd;
    jobq_id_generate(&rnd);
    memcpy(r.prefix, rnd.b, 8);
    rc = jobq_queue_new_anon(NULL, &r.q);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq run: cannot create the queue: %s\n", jobq_strerror(rc));
        return JOBQ_EXIT_FAIL;
    }
    int code = s_run(&r);
    jobq_queue_destroy(&r.q);
    s_run_free(&r);
    return code;
}

/* ---- jobq worker ------------------------------------------------------------ */

/* Resolves the URL (-u, $JOBQ_URL, the broker's default endpoint) into buf and
 * checks it; sets *net for a broker. Returns 0 or a usage error's code. */
static int
s_resolve_url(const char *cmd, s_opts_t *o, char *buf, size_t len, int *net)
{
    jobq_url_t u;
    char why[160];
    if (!o->url)
        o->url = getenv("JOBQ_URL");
    if (!o->url || !*o->url) {
        if (broker_default_url(buf, len) != JOBQ_OK)
            return jobq_cli_usage_error(cmd, "no URL: give -u URL or set JOBQ_URL");
        o->url = buf;
    }
    if (jobq_url_parse(o->url, &u, why, sizeof why) != JOBQ_OK)
        return jobq_cli_usage_error(cmd, "bad URL '%s': %s", o->url, why);
    *net = u.scheme == JOBQ_URL_TCP || u.scheme == JOBQ_URL_IPC;
    if (!*net && o->net_opts)
        return jobq_cli_usage_error(cmd,
                                    "-q, --prefetch and --heartbeat apply to a broker URL "
                                    "(tcp:// or ipc://), not to '%s'",
                                    o->url);
    return 0;
}

int
worker_main(int argc, char **argv)
{
    s_opts_t o;
    int first, net = 0;
    char def[JOBQ_URL_MAX];
    int rc = s_parse(argc, argv,
                     "procs threads exec builtin timeout url json result-timeout queue prefetch "
                     "heartbeat" S_OPS_OPTS,
                     &o, &first);
    if (rc)
        return rc;
    if (first < argc)
        return jobq_cli_usage_error("worker", "unexpected argument '%s'", argv[first]);
    if ((rc = s_resolve_url("worker", &o, def, sizeof def, &net)) != 0)
        return rc;
    if (!net) { /* workers may start before any producer */
        jobq_queue_t *q = NULL;
        jobq_queue_opts_t qo = {.flags = JOBQ_QUEUE_CREATE};
        rc = jobq_queue_open(o.url, &qo, &q);
        jobq_queue_destroy(&q);
    }
    jobq_pool_t *pool = NULL;
    o.pool.url = o.url;
    o.pool.curve_key = jobq_cli_curve_key(), o.pool.curve_server = jobq_cli_curve_server();
    if (rc == JOBQ_OK)
        rc = jobq_pool_new(&o.pool, &pool);
    if (rc == JOBQ_OK)
        rc = jobq_pool_start(pool);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq worker: cannot serve %s: %s\n", o.url, jobq_strerror(rc));
        jobq_pool_destroy(&pool);
        return JOBQ_EXIT_FAIL;
    }
    s_install_signals(pool);
    jobq_pool_report_t rep;
    s_wait_pool(pool, o.shutdown_timeout_ms, &rep);
    s_stay_quiet();
    s_sig_pool = NULL;
    s_print_report(stdout, &rep, o.json);
    jobq_pool_destroy(&pool);
    return JOBQ_EXIT_OK;
}
