/*
 * producer/submit_cmd.c: the producer's commands `jobq submit`, `jobq wait`,
 * `jobq join` and `jobq stop-workers`, over the producer API
 * (include/jobq/producer.h) for every URL: a broker (tcp://, ipc://) or a
 * named local queue (shm://NAME, mq://NAME). -u defaults to $JOBQ_URL, then
 * to the broker's default endpoint (broker_default_url).
 *
 * submit sends jobs in batches (SUBMIT_BATCH jobs or SUBMIT_BYTES payload
 * bytes) and returns once every job was accepted, printing their ids; with
 * --wait it prints each result as it arrives instead. Job ids carry 8 random
 * bytes per run plus the job's position, so a result names its job's input
 * position (the "seq" of --json) and results of other producers' jobs are
 * recognised (a local queue has one results channel for everyone: those are
 * dropped, so run one waiting producer per local queue).
 *
 * --wait --joblog FILE also writes one GNU parallel-style line per result
 * (worker/joblog.h); the inputs are kept until their result arrives.
 *
 * On a local queue, submit --wait puts one job at a time without blocking and
 * reads results whenever the queue is full, so more jobs than the queue holds
 * never deadlock against workers blocked on a full results channel.
 */
#include "broker/reactor.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/url.h"
#include "jobq/errors.h"
#include "jobq/producer.h"
#include "jobq/queue.h"
#include "worker/joblog.h"
#include "worker/worker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int submit_main(int argc, char **argv);
int wait_main(int argc, char **argv);
int join_main(int argc, char **argv);
int stop_workers_main(int argc, char **argv);

#define SUBMIT_BATCH 1024
#define SUBMIT_BYTES (512u * 1024u)
#define S_CONNECT_MS 5000 /* how long opening a broker connection may take */

/* ---- helpers ---------------------------------------------------------------- */

/* Parses seconds (> 0, fractions allowed) into milliseconds; -1 if invalid. */
static int64_t
s_parse_seconds(const char *text, int zero_ok)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || v < 0 || (!zero_ok && !(v > 0)) || v > 1e7)
        return -1;
    int64_t ms = (int64_t)(v * 1000.0 + 0.5);
    return ms > 0 || zero_ok ? ms : 1;
}

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12). */
static int64_t
s_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *p into *v and advances *p; -1 if not digits. */
static int
s_digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        *v = *v * 10 + (**p - '0');
    }
    return 0;
}

/* Parses an ISO-8601 date-time, YYYY-MM-DD(T| )HH:MM:SS[.frac][Z|(+|-)HH[:]MM]
 * (no zone: UTC), into Unix seconds; -1 if invalid. */
static double
s_parse_iso(const char *t)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    double frac = 0;
    if (s_digits(&t, 4, &y) || *t++ != '-' || s_digits(&t, 2, &mo) || *t++ != '-' ||
        s_digits(&t, 2, &d) || (*t != 'T' && *t != 't' && *t != ' '))
        return -1;
    t++;
    if (s_digits(&t, 2, &h) || *t++ != ':' || s_digits(&t, 2, &mi) || *t++ != ':' ||
        s_digits(&t, 2, &sec))
        return -1;
    if (*t == '.') {
        double scale = 0.1;
        if (*++t < '0' || *t > '9')
            return -1;
        for (; *t >= '0' && *t <= '9'; t++, scale /= 10)
            frac += (*t - '0') * scale;
    }
    if (*t == 'Z' || *t == 'z') {
        t++;
    } else if (*t == '+' || *t == '-') {
        sign = *t++ == '-' ? -1 : 1;
        if (s_digits(&t, 2, &oh) || (*t == ':' && !*++t) || s_digits(&t, 2, &om) || oh > 23 ||
            om > 59)
            return -1;
    }
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*t || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59)
        return -1;
    int64_t secs = s_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    secs -= (int64_t)sign * (oh * 3600 + om * 60);
    return (double)secs + frac;
}

/* Parses --at TIME (Unix seconds, fractions allowed, or ISO-8601) into a
 * delay in ms from now (0 for a time in the past); -1 if invalid. */
static int64_t
s_parse_at(const char *text)
{
    double at = -1;
    size_t len = strlen(text);
    if (len && strspn(text, "0123456789.") == len && strspn(text, "0123456789") > 0) {
        char *end;
        errno = 0;
        at = strtod(text, &end);
        if (errno || *end)
            at = -1;
    } else {
        at = s_parse_iso(text);
    }
    if (!(at >= 0) || at > 1e11)
        return -1;
    double delay = at * 1000.0 - (double)jobq_wall_ms();
    return delay <= 0 ? 0 : (int64_t)(delay + 0.5);
}

static long long
s_parse_count(const char *text, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 0 || v > max)
        return -1;
    return v;
}

/* Resolves the URL (-u, $JOBQ_URL, the broker's default endpoint) into buf
 * and checks it; sets *broker. Returns 0 or a usage error's exit code. */
static int
s_resolve_url(const char *cmd, const char **url, char *buf, size_t len, int *broker)
{
    jobq_url_t u;
    char why[160];
    if (!*url)
        *url = getenv("JOBQ_URL");
    if (!*url || !**url) {
        if (broker_default_url(buf, len) != JOBQ_OK)
            return jobq_cli_usage_error(cmd, "no URL: give -u URL or set JOBQ_URL");
        *url = buf;
    }
    if (jobq_url_parse(*url, &u, why, sizeof why) != JOBQ_OK)
        return jobq_cli_usage_error(cmd, "bad URL '%s': %s", *url, why);
    *broker = u.scheme == JOBQ_URL_TCP || u.scheme == JOBQ_URL_IPC;
    return 0;
}

static int
s_check_queue(const char *cmd, const char *queue, int broker)
{
    if (!queue)
        return 0;
    if (!broker)
        return jobq_cli_usage_error(cmd, "-q applies to a broker URL: a local URL is the queue");
    if (!jobq_queue_name_valid(queue, strlen(queue)))
        return jobq_cli_usage_error(cmd, "'%s' is not a valid queue name", queue);
    return 0;
}

/* Opens a producer; prints why not. timeout_ms < 0: the default.
 * no_results: the broker pushes no results (the caller never reads any). */
static jobq_producer_t *
s_open(const char *cmd, const char *url, int64_t timeout_ms, int no_results)
{
    jobq_producer_opts_t po = {0};
    po.no_results = no_results;
    po.curve_key = jobq_cli_curve_key(), po.curve_server = jobq_cli_curve_server();
    po.connect_timeout_ms = timeout_ms > 0 && timeout_ms < S_CONNECT_MS ? timeout_ms : S_CONNECT_MS;
    jobq_producer_t *p = NULL;
    int rc = jobq_producer_open(url, &po, &p);
    if (rc != JOBQ_OK)
        fprintf(stderr, "jobq %s: cannot open %s: %s\n", cmd, url,
                rc == JOBQ_ETIMEDOUT ? "no broker answered" : jobq_strerror(rc));
    return p;
}

/* Prints a result: its output (a newline added if missing) or, with json, one
 * JSON object; a failure is also reported on stderr. seq < 0: none. */
static void
s_print_result(const char *cmd, const jobq_result_t *res, long long seq, int json)
{
    if (json) {
        char *line = worker_result_json(res, seq);
        printf("%s\n", line);
        jobq_free(line);
    } else {
        if (res->output_len)
            fwrite(res->output, 1, res->output_len, stdout);
        if (!res->output_len || ((const char *)res->output)[res->output_len - 1] != '\n')
            fputc('\n', stdout);
    }
    if (!json && res->status != JOBQ_STATUS_DONE) {
        char id[JOBQ_ID_HEX_LEN + 1];
        jobq_id_format(&res->id, id);
        fprintf(stderr, "jobq %s: job %s %s: exit %d, signal %d%s%.*s\n", cmd, id,
                jobq_status_name(res->status), (int)res->exit_code, (int)res->signal,
                res->error_len ? ": " : "", (int)res->error_len, res->error ? res->error : "");
    }
    fflush(stdout);
}

/* Reads all of f (at most JOBQ_PAYLOAD_MAX + 1 bytes: the submit then reports
 * the job too big). Caller owns *data. Returns 0 or -1. */
static int
s_slurp(FILE *f, char **data, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = jobq_malloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap > JOBQ_PAYLOAD_MAX)
                break;
            cap *= 2;
            buf = jobq_realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        jobq_free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

/* ---- jobq submit: options ---------------------------------------------------- */

typedef struct s_submit {
    const char *url;
    int broker;
    const char *queue;
    int wait, json, lines;
    const char *file;
    int64_t timeout_ms; /* -1: none */
    int64_t deadline_ms;
    uint32_t ttr_ms, attempts, priority;
    uint64_t delay_ms;
    uint32_t backoff_ms; /* --backoff: this job's first-retry delay; 0 = the broker's */
    int has_priority, has_delay, has_at;
    const char *unique;
    char **data; /* DATA operands */
    int ndata;
    jobq_producer_t *p;
    uint8_t prefix[8];
    long long submitted;          /* jobs sent (accepted or refused): the next seq */
    long long accepted, received; /* jobs accepted, their results printed */
    unsigned char *seen;          /* per accepted job: 1 once its result was printed */
    size_t seen_cap;
    int any_failed, refused;
    jobq_job_t batch[SUBMIT_BATCH];
    char *owned[SUBMIT_BATCH]; /* payload copies (--lines) */
    int codes[SUBMIT_BATCH];
    size_t n, bytes;
    const char *joblog_path; /* --joblog FILE (with --wait) */
    joblog_t *jl;
    char **in; /* per seq: the input, until its result is logged */
    size_t *in_len, in_cap;
} s_submit_t;

enum {
    S_OPT_WAIT = 256,
    S_OPT_JSON,
    S_OPT_LINES,
    S_OPT_TTR,
    S_OPT_RETRIES,
    S_OPT_PRIORITY,
    S_OPT_DELAY,
    S_OPT_AT,
    S_OPT_UNIQUE,
    S_OPT_BACKOFF,
    S_OPT_JOBLOG
};

static const struct option s_submit_opts[] = {
    {"url", required_argument, NULL, 'u'},
    {"queue", required_argument, NULL, 'q'},
    {"wait", no_argument, NULL, S_OPT_WAIT},
    {"timeout", required_argument, NULL, 'T'},
    {"json", no_argument, NULL, S_OPT_JSON},
    {"ttr", required_argument, NULL, S_OPT_TTR},
    {"retries", required_argument, NULL, S_OPT_RETRIES},
    {"priority", required_argument, NULL, S_OPT_PRIORITY},
    {"delay", required_argument, NULL, S_OPT_DELAY},
    {"at", required_argument, NULL, S_OPT_AT},
    {"unique", required_argument, NULL, S_OPT_UNIQUE},
    {"backoff", required_argument, NULL, S_OPT_BACKOFF},
    {"file", required_argument, NULL, 'f'},
    {"lines", no_argument, NULL, S_OPT_LINES},
    {"joblog", required_argument, NULL, S_OPT_JOBLOG},
    {NULL, 0, NULL, 0},
};

/* Applies an option that takes a number; returns 0 or a usage error's code. */
static int
s_submit_number(s_submit_t *s, int c, const char *arg)
{
    int64_t ms;
    long long n;
    if (c == 'T' || c == S_OPT_TTR || c == S_OPT_DELAY || c == S_OPT_BACKOFF) {
        if ((ms = s_parse_seconds(arg, c == S_OPT_DELAY)) < 0 || ms > UINT32_MAX)
            return jobq_cli_usage_error("submit", "a time is a number of seconds > 0, not '%s'",
                                        arg);
        if (c == 'T')
            s->timeout_ms = ms;
        if (c == S_OPT_TTR)
            s->ttr_ms = (uint32_t)ms;
        if (c == S_OPT_DELAY)
            s->delay_ms = (uint64_t)ms, s->has_delay = 1;
        if (c == S_OPT_BACKOFF)
            s->backoff_ms = (uint32_t)ms;
        return 0;
    }
    if (c == S_OPT_AT) {
        if ((ms = s_parse_at(arg)) < 0)
            return jobq_cli_usage_error("submit",
                                        "bad --at time '%s': give Unix seconds or an ISO-8601 "
                                        "date-time (2026-12-01T10:00:00Z)",
                                        arg);
        if (ms > UINT32_MAX)
            return jobq_cli_usage_error("submit", "--at '%s' is too far ahead", arg);
        s->delay_ms = (uint64_t)ms, s->has_at = 1;
        return 0;
    }
    if (c == S_OPT_RETRIES) {
        if ((n = s_parse_count(arg, 1000)) < 0)
            return jobq_cli_usage_error("submit", "--retries needs a number from 0 to 1000");
        s->attempts = (uint32_t)n + 1;
        return 0;
    }
    if ((n = s_parse_count(arg, UINT32_MAX)) < 0)
        return jobq_cli_usage_error("submit", "--priority needs a number from 0 to 4294967295");
    s->priority = (uint32_t)n;
    s->has_priority = 1;
    return 0;
}

static int
s_submit_opt(s_submit_t *s, int c, const char *arg)
{
    switch (c) {
    case 'u':
        s->url = arg;
        return 0;
    case 'q':
        s->queue = arg;
        return 0;
    case S_OPT_WAIT:
        s->wait = 1;
        return 0;
    case S_OPT_JSON:
        s->json = 1;
        return 0;
    case S_OPT_LINES:
        s->lines = 1;
        return 0;
    case 'f':
        s->file = arg;
        return 0;
    case S_OPT_JOBLOG:
        s->joblog_path = arg;
        return 0;
    case S_OPT_UNIQUE:
        if (strlen(arg) > JOBQ_UNIQUE_KEY_MAX)
            return jobq_cli_usage_error("submit", "--unique takes at most %d bytes",
                                        JOBQ_UNIQUE_KEY_MAX);
        s->unique = arg;
        return 0;
    case 'T':
    case S_OPT_TTR:
    case S_OPT_RETRIES:
    case S_OPT_PRIORITY:
    case S_OPT_DELAY:
    case S_OPT_AT:
    case S_OPT_BACKOFF:
        return s_submit_number(s, c, arg);
    default:
        return jobq_cli_usage_error("submit", "unknown option or missing value");
    }
}

static int
s_submit_parse(int argc, char **argv, s_submit_t *s, char *def, size_t def_len)
{
    s->timeout_ms = -1;
    s->attempts = 1;
    optind = 1;
    opterr = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, "+u:q:T:f:", s_submit_opts, NULL)) != -1)
        if ((rc = s_submit_opt(s, c, optarg)) != 0)
            return rc;
    s->data = argv + optind;
    s->ndata = argc - optind;
    if (s->has_at && s->has_delay)
        return jobq_cli_usage_error("submit", "give --at or --delay, not both");
    if (s->joblog_path && !s->wait)
        return jobq_cli_usage_error("submit", "--joblog needs --wait");
    if ((s->ndata > 0) + (s->file != NULL) + s->lines > 1)
        return jobq_cli_usage_error("submit", "give DATA..., --file F or --lines, not several");
    if (s->ndata == 0 && !s->file && !s->lines && isatty(STDIN_FILENO))
        return jobq_cli_usage_error("submit", "no job given: DATA..., --file F, --lines, or a "
                                              "payload on stdin");
    if ((rc = s_resolve_url("submit", &s->url, def, def_len, &s->broker)) != 0)
        return rc;
    if ((rc = s_check_queue("submit", s->queue, s->broker)) != 0)
        return rc;
    if (!s->broker && (s->has_priority || s->has_delay || s->has_at || s->unique || s->backoff_ms))
        return jobq_cli_usage_error("submit", "--priority, --delay, --at, --backoff and --unique "
                                              "need a broker URL (tcp:// or ipc://)");
    return 0;
}

/* ---- jobq submit: jobs and results ------------------------------------------- */

static long long
s_seq_of(const s_submit_t *s, const jobq_id_t *id)
{
    uint64_t seq = 0;
    if (memcmp(id->b, s->prefix, 8) != 0)
        return -1;
    for (int i = 0; i < 8; i++)
        seq = (seq << 8) | id->b[8 + i];
    return seq >= (uint64_t)s->submitted + s->n ? -1 : (long long)seq;
}

/* --joblog: keeps input seq until its result is logged. */
static void
s_keep_input(s_submit_t *s, long long seq, const void *data, size_t len)
{
    if ((size_t)seq >= s->in_cap) {
        size_t cap = s->in_cap ? s->in_cap * 2 : 1024;
        while (cap <= (size_t)seq)
            cap *= 2;
        s->in = jobq_realloc(s->in, cap * sizeof *s->in);
        s->in_len = jobq_realloc(s->in_len, cap * sizeof *s->in_len);
        memset(s->in + s->in_cap, 0, (cap - s->in_cap) * sizeof *s->in);
        s->in_cap = cap;
    }
    s->in[seq] = jobq_memdup(data, len + 1);
    s->in_len[seq] = len;
}

/* --joblog: the result's line; it started its duration before now. */
static void
s_log_result(s_submit_t *s, const jobq_result_t *res, long long seq)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t end_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    char *in = (size_t)seq < s->in_cap ? s->in[seq] : NULL;
    if (joblog_write(s->jl, seq + 1, end_ms - (int64_t)(res->duration_us / 1000), res, in ? in : "",
                     in ? s->in_len[seq] : 0) != 0)
        fprintf(stderr, "jobq submit: cannot write the job log: %s\n", strerror(errno));
    if (in) {
        jobq_free(in);
        s->in[seq] = NULL;
    }
}

/* Prints a result of ours (once); ignores others'. */
static void
s_on_result(s_submit_t *s, const jobq_result_t *res)
{
    long long seq = s_seq_of(s, &res->id);
    if (seq < 0 || (size_t)seq >= s->seen_cap || s->seen[seq])
        return;
    s->seen[seq] = 1;
    s->received++;
    if (res->status != JOBQ_STATUS_DONE)
        s->any_failed = 1;
    s_print_result("submit", res, seq, s->json);
    if (s->jl)
        s_log_result(s, res, seq);
}

static int64_t
s_left(const s_submit_t *s)
{
    return s->deadline_ms == INT64_MAX ? -1 : jobq_remaining_ms(s->deadline_ms);
}

/* Takes one result within timeout_ms. Returns JOBQ_OK, JOBQ_ETIMEDOUT or an error. */
static int
s_take_result(s_submit_t *s, int64_t timeout_ms)
{
    jobq_result_t res;
    int rc = jobq_producer_next_result(s->p, &res, timeout_ms);
    if (rc == JOBQ_EEMPTY)
        return JOBQ_ETIMEDOUT;
    if (rc == JOBQ_OK)
        s_on_result(s, &res);
    return rc;
}

static void s_note_accepted(s_submit_t *s, long long seq, const jobq_id_t *id);

/* Local queue with --wait: one job at a time, reading results while it is
 * full; each accepted job is noted at once (its result may come next). */
static void
s_submit_local_wait(s_submit_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        int rc;
        for (;;) {
            rc = jobq_producer_submit(s->p, &s->batch[i], 0);
            if (rc != JOBQ_EFULL && rc != JOBQ_ETIMEDOUT)
                break;
            int64_t left = s_left(s);
            if (left == 0)
                break;
            int got = s_take_result(s, left < 0 || left > 50 ? 50 : left);
            if (got != JOBQ_OK && got != JOBQ_ETIMEDOUT) {
                rc = got;
                break;
            }
        }
        s->codes[i] = rc;
        if (rc == JOBQ_OK)
            s_note_accepted(s, s->submitted + (long long)i, &s->batch[i].id);
    }
}

static void
s_note_accepted(s_submit_t *s, long long seq, const jobq_id_t *id)
{
    s->accepted++;
    if ((size_t)seq >= s->seen_cap) {
        size_t cap = s->seen_cap ? s->seen_cap * 2 : 1024;
        while (cap <= (size_t)seq)
            cap *= 2;
        s->seen = jobq_realloc(s->seen, cap);
        memset(s->seen + s->seen_cap, 0, cap - s->seen_cap);
        s->seen_cap = cap;
    }
    if (s->wait)
        return;
    char text[JOBQ_ID_HEX_LEN + 1];
    jobq_id_format(id, text);
    if (s->json)
        printf("{\"seq\":%lld,\"id\":\"%s\"}\n", seq, text);
    else
        printf("%s\n", text);
}

/* Submits the pending batch; reports refused jobs. Returns JOBQ_OK or the
 * first refusal's code. */
static int
s_flush(s_submit_t *s)
{
    if (!s->n)
        return JOBQ_OK;
    int one_by_one = !s->broker && s->wait;
    if (one_by_one)
        s_submit_local_wait(s);
    else
        jobq_producer_submit_batch(s->p, s->batch, s->n, s->codes, s_left(s));
    int first = JOBQ_OK;
    for (size_t i = 0; i < s->n; i++) {
        long long seq = s->submitted + (long long)i;
        if (s->codes[i] == JOBQ_OK) {
            if (!one_by_one)
                s_note_accepted(s, seq, &s->batch[i].id);
            continue;
        }
        char id[JOBQ_ID_HEX_LEN + 1];
        jobq_id_format(&s->batch[i].id, id);
        if (s->refused++ < 10)
            fprintf(stderr, "jobq submit: job %lld not submitted: %s%s%s\n", seq + 1,
                    jobq_strerror(s->codes[i]), s->codes[i] == JOBQ_EDUPLICATE ? ": job " : "",
                    s->codes[i] == JOBQ_EDUPLICATE ? id : "");
        if (first == JOBQ_OK)
            first = s->codes[i];
    }
    fflush(stdout);
    for (size_t i = 0; i < s->n; i++) {
        jobq_free(s->owned[i]);
        s->owned[i] = NULL;
    }
    s->submitted += (long long)s->n;
    s->n = s->bytes = 0;
    return first;
}

/* Adds one job to the batch (owned: a copy to free after the submit). */
static int
s_add_job(s_submit_t *s, const void *data, size_t len, char *owned)
{
    jobq_job_t *job = &s->batch[s->n];
    jobq_job_init(job);
    uint64_t seq = (uint64_t)(s->submitted + (long long)s->n);
    memcpy(job->id.b, s->prefix, 8);
    for (int i = 0; i < 8; i++)
        job->id.b[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
    if (s->queue) {
        job->queue = s->queue;
        job->queue_len = (uint32_t)strlen(s->queue);
    }
    job->payload = data;
    job->payload_len = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
    if (s->ttr_ms)
        job->ttr_ms = s->ttr_ms;
    job->max_attempts = s->attempts;
    if (s->has_priority)
        job->priority = s->priority;
    job->delay_ms = s->delay_ms;
    job->backoff_ms = s->backoff_ms;
    if (s->unique) {
        job->unique = s->unique;
        job->unique_len = (uint32_t)strlen(s->unique);
    }
    if (s->jl)
        s_keep_input(s, (long long)seq, data, len);
    s->owned[s->n++] = owned;
    s->bytes += len;
    return s->n == SUBMIT_BATCH || s->bytes >= SUBMIT_BYTES ? s_flush(s) : JOBQ_OK;
}

/* Submits every job the command line names; returns JOBQ_OK or the first error. */
static int
s_submit_all(s_submit_t *s)
{
    int rc = JOBQ_OK;
    for (int i = 0; i < s->ndata && rc == JOBQ_OK; i++)
        rc = s_add_job(s, s->data[i], strlen(s->data[i]), NULL);
    if (s->lines) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (rc == JOBQ_OK && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n')
                n--;
            char *copy = jobq_memdup(line, (size_t)n + 1);
            rc = s_add_job(s, copy, (size_t)n, copy);
        }
        free(line);
    } else if (s->file || s->ndata == 0) {
        FILE *f = !s->file || strcmp(s->file, "-") == 0 ? stdin : fopen(s->file, "rb");
        char *data = NULL;
        size_t len = 0;
        if (!f || s_slurp(f, &data, &len) != 0) {
            fprintf(stderr, "jobq submit: cannot read %s: %s\n", s->file ? s->file : "stdin",
                    strerror(errno));
            rc = JOBQ_ESYS;
        } else {
            rc = s_add_job(s, data, len, data);
        }
        if (f && f != stdin)
            fclose(f);
    }
    int last = s_flush(s);
    return rc != JOBQ_OK ? rc : last;
}

int
submit_main(int argc, char **argv)
{
    static s_submit_t s; /* the batch is large: keep it off the stack */
    char def[JOBQ_URL_MAX];
    memset(&s, 0, sizeof s);
    int rc = s_submit_parse(argc, argv, &s, def, sizeof def);
    if (rc)
        return rc;
    if (!(s.p = s_open("submit", s.url, s.timeout_ms, !s.wait)))
        return JOBQ_EXIT_FAIL;
    jobq_id_t rnd;
    jobq_id_generate(&rnd);
    memcpy(s.prefix, rnd.b, 8);
    s.deadline_ms = jobq_deadline_ms(s.timeout_ms);
    if (s.joblog_path && !(s.jl = joblog_open(s.joblog_path))) {
        fprintf(stderr, "jobq submit: cannot open the job log %s: %s\n", s.joblog_path,
                strerror(errno));
        jobq_producer_destroy(&s.p);
        return JOBQ_EXIT_FAIL;
    }
    rc = s_submit_all(&s);
    fflush(stdout);
    int broken = 0;
    while (s.wait && !broken && s.received < s.accepted && s_left(&s) != 0) {
        int got = s_take_result(&s, s_left(&s));
        if (got != JOBQ_OK && got != JOBQ_ETIMEDOUT) {
            fprintf(stderr, "jobq submit: cannot read results: %s\n", jobq_strerror(got));
            broken = 1;
        }
    }
    if (s.wait && !broken && s.received < s.accepted) {
        fprintf(stderr, "jobq submit: timed out: %lld of %lld results arrived\n", s.received,
                s.accepted);
        rc = JOBQ_ETIMEDOUT;
    }
    jobq_producer_destroy(&s.p);
    jobq_free(s.seen);
    joblog_close(&s.jl);
    for (size_t i = 0; i < s.in_cap; i++)
        jobq_free(s.in[i]);
    jobq_free(s.in);
    jobq_free(s.in_len);
    return rc != JOBQ_OK || broken || s.any_failed ? JOBQ_EXIT_FAIL : JOBQ_EXIT_OK;
}

/* ---- jobq wait ---------------------------------------------------------------- */

/* Waits for each of ids[0..n) and prints its result; returns the exit code. */
static int
s_wait_all(jobq_producer_t *p, const jobq_id_t *ids, char **texts, int n, int64_t timeout_ms,
           int json)
{
    int code = JOBQ_EXIT_OK;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    for (int i = 0; i < n; i++) {
        jobq_result_t res;
        int rc =
            jobq_producer_wait(p, &ids[i], &res, timeout_ms < 0 ? -1 : jobq_remaining_ms(deadline));
        if (rc == JOBQ_OK) {
            s_print_result("wait", &res, -1, json);
            if (res.status != JOBQ_STATUS_DONE)
                code = JOBQ_EXIT_FAIL;
            continue;
        }
        fprintf(stderr, "jobq wait: job %s: %s\n", texts[i],
                rc == JOBQ_ETIMEDOUT   ? "timed out: no result yet"
                : rc == JOBQ_ENOTFOUND ? "no such job (or its result is no longer kept)"
                                       : jobq_strerror(rc));
        code = JOBQ_EXIT_FAIL;
    }
    return code;
}

int
wait_main(int argc, char **argv)
{
    static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"json", no_argument, NULL, 'j'},
                                         {NULL, 0, NULL, 0}};
    const char *url = NULL;
    int64_t timeout_ms = -1;
    int json = 0, c, broker;
    char def[JOBQ_URL_MAX];
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+u:T:", opts, NULL)) != -1) {
        if (c == 'u')
            url = optarg;
        else if (c == 'j')
            json = 1;
        else if (c != 'T' || (timeout_ms = s_parse_seconds(optarg, 1)) < 0)
            return jobq_cli_usage_error("wait", c == 'T' ? "--timeout needs seconds >= 0"
                                                         : "unknown option or missing value");
    }
    if (optind == argc)
        return jobq_cli_usage_error("wait", "give at least one job ID");
    int n = argc - optind, rc = 0;
    jobq_id_t *ids = jobq_calloc((size_t)n, sizeof *ids);
    for (int i = 0; i < n && !rc; i++)
        if (jobq_id_parse(argv[optind + i], &ids[i]) != JOBQ_OK)
            rc = jobq_cli_usage_error("wait", "'%s' is not a job id (32 hex digits)",
                                      argv[optind + i]);
    if (!rc)
        rc = s_resolve_url("wait", &url, def, sizeof def, &broker);
    jobq_producer_t *p = rc ? NULL : s_open("wait", url, timeout_ms, 0);
    if (p)
        rc = s_wait_all(p, ids, argv + optind, n, timeout_ms, json);
    else if (!rc)
        rc = JOBQ_EXIT_FAIL;
    jobq_producer_destroy(&p);
    jobq_free(ids);
    return rc;
}

/* ---- jobq join ---------------------------------------------------------------- */

int
join_main(int argc, char **argv)
{
    static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
                                         {"queue", required_argument, NULL, 'q'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {NULL, 0, NULL, 0}};
    const char *url = NULL, *queue = NULL;
    int64_t timeout_ms = -1;
    int c, broker;
    char def[JOBQ_URL_MAX];
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+u:q:T:", opts, NULL)) != -1) {
        if (c == 'u')
            url = optarg;
        else if (c == 'q')
            queue = optarg;
        else if (c != 'T' || (timeout_ms = s_parse_seconds(optarg, 1)) < 0)
            return jobq_cli_usage_error("join", c == 'T' ? "--timeout needs seconds >= 0"
                                                         : "unknown option or missing value");
    }
    if (optind < argc)
        return jobq_cli_usage_error("join", "unexpected argument '%s'", argv[optind]);
    int rc = s_resolve_url("join", &url, def, sizeof def, &broker);
    if (rc || (rc = s_check_queue("join", queue, broker)) != 0)
        return rc;
    jobq_producer_t *p = s_open("join", url, timeout_ms, 0);
    if (!p)
        return JOBQ_EXIT_FAIL;
    rc = jobq_producer_join(p, queue ? queue : "default", timeout_ms);
    jobq_producer_destroy(&p);
    if (rc == JOBQ_OK)
        return JOBQ_EXIT_OK;
    if (rc == JOBQ_ETIMEDOUT)
        fprintf(stderr, "jobq join: timed out: %s still has unfinished jobs\n",
                broker ? (queue ? queue : "default") : url);
    else
        fprintf(stderr, "jobq join: %s\n", jobq_strerror(rc));
    return JOBQ_EXIT_FAIL;
}

/* ---- jobq stop-workers ----------------------------------------------------------- */

typedef struct s_stop {
    const char *url;
    const char *queue;
    long long n; /* local: sentinels; -1: not given */
    int64_t timeout_ms;
    int unlink;
    int broker;
} s_stop_t;

static void
s_on_alarm(int sig)
{
    static const char msg[] = "jobq stop-workers: timed out: the queue stayed full\n";
    (void)sig;
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(JOBQ_EXIT_FAIL);
}

static int
s_stop_parse(int argc, char **argv, s_stop_t *st, char *def, size_t def_len)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},   {"queue", required_argument, NULL, 'q'},
        {"count", required_argument, NULL, 'n'}, {"timeout", required_argument, NULL, 'T'},
        {"unlink", no_argument, NULL, 'x'},      {NULL, 0, NULL, 0},
    };
    *st = (s_stop_t){NULL, NULL, -1, -1, 0, 0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+u:q:n:T:", opts, NULL)) != -1) {
        if (c == 'u')
            st->url = optarg;
        else if (c == 'q')
            st->queue = optarg;
        else if (c == 'x')
            st->unlink = 1;
        else if (c == 'n' && (st->n = s_parse_count(optarg, 100000)) < 0)
            return jobq_cli_usage_error("stop-workers", "-n needs a number from 0 to 100000");
        else if (c == 'T' && (st->timeout_ms = s_parse_seconds(optarg, 0)) < 0)
            return jobq_cli_usage_error("stop-workers", "--timeout needs seconds > 0");
        else if (c != 'n' && c != 'T')
            return jobq_cli_usage_error("stop-workers", "unknown option or missing value");
    }
    if (optind < argc)
        return jobq_cli_usage_error("stop-workers", "unexpected argument '%s'", argv[optind]);
    int rc = s_resolve_url("stop-workers", &st->url, def, def_len, &st->broker);
    if (rc || (rc = s_check_queue("stop-workers", st->queue, st->broker)) != 0)
        return rc;
    if (st->broker && st->unlink)
        return jobq_cli_usage_error("stop-workers", "--unlink applies to a local queue");
    if (!st->broker && st->n < 0 && !st->unlink)
        return jobq_cli_usage_error("stop-workers",
                                    "-n N is required: a local queue cannot count its workers");
    if (st->n < 0)
        st->n = 0;
    return 0;
}

/* A local queue must exist already: stop-workers never creates one. */
static int
s_local_exists(const char *url)
{
    jobq_queue_t *q = NULL;
    int rc = jobq_queue_open(url, NULL, &q);
    jobq_queue_destroy(&q);
    if (rc != JOBQ_OK)
        fprintf(stderr, "jobq stop-workers: cannot open %s: %s\n", url, jobq_strerror(rc));
    return rc == JOBQ_OK;
}

int
stop_workers_main(int argc, char **argv)
{
    s_stop_t st;
    char def[JOBQ_URL_MAX];
    int rc = s_stop_parse(argc, argv, &st, def, sizeof def);
    if (rc)
        return rc;
    if (!st.broker && !s_local_exists(st.url))
        return JOBQ_EXIT_FAIL;
    if (!st.broker && st.timeout_ms > 0) { /* a full local queue blocks the sentinels */
        signal(SIGALRM, s_on_alarm);
        alarm((unsigned)((st.timeout_ms + 999) / 1000));
    }
    jobq_producer_t *p = s_open("stop-workers", st.url, st.timeout_ms, 0);
    if (!p)
        return JOBQ_EXIT_FAIL;
    rc = st.n || st.broker ? jobq_producer_stop_workers(p, st.queue, (unsigned)st.n) : JOBQ_OK;
    jobq_producer_destroy(&p);
    alarm(0);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq stop-workers: %s\n", jobq_strerror(rc));
        return JOBQ_EXIT_FAIL;
    }
    /* Attached workers keep the queue until they detach: the sentinels still reach them. */
    if (st.unlink && (rc = jobq_queue_unlink(st.url)) != JOBQ_OK) {
        fprintf(stderr, "jobq stop-workers: cannot unlink %s: %s\n", st.url, jobq_strerror(rc));
        return JOBQ_EXIT_FAIL;
    }
    return JOBQ_EXIT_OK;
}
