/*
 * producer/submit_cmd.c: `jobq submit` and `jobq stop-workers` on a named
 * local queue (shm://NAME, mq://NAME). tcp:// and ipc:// need the broker,
 * which is not available yet: they give a clear error and exit 2.
 *
 * submit puts jobs (creating the queue if needed) and prints their ids, or
 * with --wait prints each job's result as it arrives. Puts and result reads
 * are interleaved (a put that finds the queue full reads results meanwhile),
 * so more jobs than the queue holds never deadlock against workers blocked on
 * a full results channel.
 *
 * One results channel serves the whole queue: --wait assumes one waiting
 * producer per queue at a time. Job ids carry 8 random bytes per submit run
 * plus the job's position, so a result for someone else's job is recognised
 * and put back on the channel for its owner.
 */
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/url.h"
#include "jobq/errors.h"
#include "jobq/queue.h"
#include "worker/worker.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int submit_main(int argc, char **argv);
int stop_workers_main(int argc, char **argv);

/* ---- helpers ---------------------------------------------------------------- */

/* Parses seconds (> 0, fractions allowed) into milliseconds; -1 if invalid. */
static int64_t
s_parse_seconds(const char *text)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v > 0) || v > 1e7) return -1;
    int64_t ms = (int64_t)(v * 1000.0 + 0.5);
    return ms > 0 ? ms : 1;
}

static long
s_parse_count(const char *text, long max)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 0 || v > max) return -1;
    return v;
}

/* Checks that url names a local queue; returns 0 or a usage error's code. */
static int
s_check_local_url(const char *cmd, const char *url)
{
    jobq_url_t u;
    char why[160];
    if (!url || !*url) return jobq_cli_usage_error(cmd, "no URL: give -u URL or set JOBQ_URL");
    if (jobq_url_parse(url, &u, why, sizeof why) != JOBQ_OK)
        return jobq_cli_usage_error(cmd, "bad URL '%s': %s", url, why);
    if (u.scheme == JOBQ_URL_TCP || u.scheme == JOBQ_URL_IPC) {
        fprintf(stderr,
                "jobq %s: %s needs the broker: not available yet (use shm://NAME or mq://NAME)\n",
                cmd, url);
        return JOBQ_EXIT_USAGE;
    }
    return 0;
}

/* Reads all of f into a buffer (at most JOBQ_PAYLOAD_MAX + 1 bytes: the put
 * then reports the job too big). Caller owns *data. Returns 0 or -1. */
static int
s_slurp(FILE *f, char **data, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = jobq_malloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap > JOBQ_PAYLOAD_MAX) break;
            cap *= 2;
            buf = jobq_realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        jobq_free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

/* ---- jobq submit --------------------------------------------------------------- */

typedef struct s_submit {
    const char *url;
    int wait, json, lines;
    const char *file;
    int64_t timeout_ms; /* -1: none */
    uint32_t ttr_ms;
    uint32_t attempts;
    char **data; /* DATA operands */
    int ndata;
    jobq_queue_t *q;
    int64_t deadline_ms;
    uint8_t prefix[8];
    long long submitted, received;
    unsigned char *seen; /* --wait: one byte per job */
    size_t seen_cap;
    int any_failed;
    jobq_id_t first_foreign; /* the first foreign result seen since our last one */
    int has_foreign;
} s_submit_t;

static void
s_make_id(const s_submit_t *s, long long seq, jobq_id_t *id)
{
    memcpy(id->b, s->prefix, 8);
    for (int i = 0; i < 8; i++)
        id->b[8 + i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
}

static long long
s_seq_of(const s_submit_t *s, const jobq_id_t *id)
{
    uint64_t seq = 0;
    if (memcmp(id->b, s->prefix, 8) != 0) return -1;
    for (int i = 0; i < 8; i++)
        seq = (seq << 8) | id->b[8 + i];
    return seq >= (uint64_t)s->submitted ? -1 : (long long)seq;
}

static void
s_print_result(const s_submit_t *s, const jobq_result_t *res, long long seq)
{
    if (s->json) {
        char *line = worker_result_json(res, seq);
        printf("%s\n", line);
        jobq_free(line);
    } else {
        if (res->output_len) fwrite(res->output, 1, res->output_len, stdout);
        if (!res->output_len || ((const char *)res->output)[res->output_len - 1] != '\n')
            fputc('\n', stdout);
    }
    if (!s->json && res->status != JOBQ_STATUS_DONE) {
        char id[JOBQ_ID_HEX_LEN + 1];
        jobq_id_format(&res->id, id);
        fprintf(stderr, "jobq submit: job %s %s: exit %d, signal %d%s%.*s\n", id,
                jobq_status_name(res->status), (int)res->exit_code, (int)res->signal,
                res->error_len ? ": " : "", (int)res->error_len, res->error ? res->error : "");
    }
    fflush(stdout);
}

/* Takes one result within timeout_ms: prints ours, puts back others'.
 * Returns 1 if one of ours arrived, 0 if none, -1 if the queue failed. */
static int
s_take_result(s_submit_t *s, int64_t timeout_ms)
{
    jobq_result_t res;
    int rc = jobq_queue_get_result(s->q, &res, timeout_ms);
    if (rc == JOBQ_EEMPTY || rc == JOBQ_ETIMEDOUT) return 0;
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq submit: cannot read results: %s\n", jobq_strerror(rc));
        return -1;
    }
    long long seq = s_seq_of(s, &res.id);
    if (seq < 0) {
        /* Another producer's result: hand it back. Once the same one comes
         * round again, the channel holds only others' results: pause. */
        if (s->has_foreign && memcmp(&s->first_foreign, &res.id, sizeof res.id) == 0) {
            struct timespec ts = {0, 10L * 1000 * 1000};
            nanosleep(&ts, NULL);
            s->has_foreign = 0;
        } else if (!s->has_foreign) {
            s->first_foreign = res.id;
            s->has_foreign = 1;
        }
        if (jobq_queue_put_result(s->q, &res, 1000) != JOBQ_OK)
            fprintf(stderr, "jobq submit: could not put back another producer's result\n");
        return 0;
    }
    s->has_foreign = 0;
    if ((size_t)seq >= s->seen_cap || s->seen[seq]) return 0;
    s->seen[seq] = 1;
    s->received++;
    if (res.status != JOBQ_STATUS_DONE) s->any_failed = 1;
    s_print_result(s, &res, seq);
    return 1;
}

static int64_t
s_left(const s_submit_t *s)
{
    return s->deadline_ms == INT64_MAX ? -1 : jobq_remaining_ms(s->deadline_ms);
}

/* Puts one job; with --wait, reads results while the queue is full.
 * Returns JOBQ_OK or the put's error. */
static int
s_put_job(s_submit_t *s, const void *data, size_t len)
{
    jobq_job_t job;
    jobq_job_init(&job);
    s_make_id(s, s->submitted, &job.id);
    job.payload = data;
    job.payload_len = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
    if (s->ttr_ms) job.ttr_ms = s->ttr_ms;
    job.max_attempts = s->attempts;
    int rc;
    for (;;) {
        int64_t left = s_left(s);
        rc = jobq_queue_put(s->q, &job, s->wait ? 0 : left);
        if (rc != JOBQ_EFULL || !s->wait) break;
        if (left == 0) {
            rc = JOBQ_ETIMEDOUT;
            break;
        }
        if (s_take_result(s, left < 0 || left > 50 ? 50 : left) < 0) { /* room meanwhile */
            rc = JOBQ_EIO;
            break;
        }
    }
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq submit: job %lld not submitted: %s\n", s->submitted + 1,
                jobq_strerror(rc));
        return rc;
    }
    if ((size_t)s->submitted >= s->seen_cap) {
        size_t cap = s->seen_cap ? s->seen_cap * 2 : 256;
        s->seen = jobq_realloc(s->seen, cap);
        memset(s->seen + s->seen_cap, 0, cap - s->seen_cap);
        s->seen_cap = cap;
    }
    s->submitted++;
    if (!s->wait) {
        char id[JOBQ_ID_HEX_LEN + 1];
        jobq_id_format(&job.id, id);
        if (s->json)
            printf("{\"seq\":%lld,\"id\":\"%s\"}\n", s->submitted - 1, id);
        else
            printf("%s\n", id);
    }
    return JOBQ_OK;
}

/* Puts every job the command line names; returns JOBQ_OK or the first error. */
static int
s_put_all(s_submit_t *s)
{
    int rc = JOBQ_OK;
    for (int i = 0; i < s->ndata && rc == JOBQ_OK; i++)
        rc = s_put_job(s, s->data[i], strlen(s->data[i]));
    if (s->lines) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (rc == JOBQ_OK && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n') n--;
            rc = s_put_job(s, line, (size_t)n);
        }
        free(line);
    } else if (s->file || (s->ndata == 0)) {
        FILE *f = !s->file || strcmp(s->file, "-") == 0 ? stdin : fopen(s->file, "rb");
        char *data = NULL;
        size_t len = 0;
        if (!f || s_slurp(f, &data, &len) != 0) {
            fprintf(stderr, "jobq submit: cannot read %s: %s\n", s->file ? s->file : "stdin",
                    strerror(errno));
            rc = JOBQ_ESYS;
        } else {
            rc = s_put_job(s, data, len);
        }
        if (f && f != stdin) fclose(f);
        jobq_free(data);
    }
    return rc;
}

enum { S_OPT_WAIT = 256, S_OPT_JSON, S_OPT_LINES, S_OPT_TTR, S_OPT_RETRIES };

static const struct option s_submit_opts[] = {
    {"url", required_argument, NULL, 'u'},
    {"wait", no_argument, NULL, S_OPT_WAIT},
    {"timeout", required_argument, NULL, 'T'},
    {"json", no_argument, NULL, S_OPT_JSON},
    {"ttr", required_argument, NULL, S_OPT_TTR},
    {"retries", required_argument, NULL, S_OPT_RETRIES},
    {"file", required_argument, NULL, 'f'},
    {"lines", no_argument, NULL, S_OPT_LINES},
    {NULL, 0, NULL, 0},
};

static int
s_submit_opt(s_submit_t *s, int c, const char *arg)
{
    int64_t ms;
    long n;
    switch (c) {
    case 'u':
        s->url = arg;
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
    case 'T':
    case S_OPT_TTR:
        if ((ms = s_parse_seconds(arg)) < 0 || ms > UINT32_MAX)
            return jobq_cli_usage_error("submit", "a time is a number of seconds > 0, not '%s'",
                                        arg);
        if (c == 'T')
            s->timeout_ms = ms;
        else
            s->ttr_ms = (uint32_t)ms;
        return 0;
    case S_OPT_RETRIES:
        if ((n = s_parse_count(arg, 1000)) < 0)
            return jobq_cli_usage_error("submit", "--retries needs a number from 0 to 1000");
        s->attempts = (uint32_t)n + 1;
        return 0;
    default:
        return jobq_cli_usage_error("submit", "unknown option or missing value");
    }
}

static int
s_submit_parse(int argc, char **argv, s_submit_t *s)
{
    memset(s, 0, sizeof *s);
    s->timeout_ms = -1;
    s->attempts = 1;
    optind = 1;
    opterr = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, "+u:T:f:", s_submit_opts, NULL)) != -1)
        if ((rc = s_submit_opt(s, c, optarg)) != 0) return rc;
    s->data = argv + optind;
    s->ndata = argc - optind;
    if ((s->ndata > 0) + (s->file != NULL) + s->lines > 1)
        return jobq_cli_usage_error("submit", "give DATA..., --file F or --lines, not several");
    if (s->ndata == 0 && !s->file && !s->lines && isatty(STDIN_FILENO))
        return jobq_cli_usage_error("submit", "no job given: DATA..., --file F, --lines, or a "
                                              "payload on stdin");
    if (!s->url) s->url = getenv("JOBQ_URL");
    return s_check_local_url("submit", s->url);
}

int
submit_main(int argc, char **argv)
{
    s_submit_t s;
    int rc = s_submit_parse(argc, argv, &s);
    if (rc) return rc;
    jobq_queue_opts_t qo = {.flags = JOBQ_QUEUE_CREATE};
    rc = jobq_queue_open(s.url, &qo, &s.q);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq submit: cannot open %s: %s\n", s.url, jobq_strerror(rc));
        return JOBQ_EXIT_FAIL;
    }
    jobq_id_t rnd;
    jobq_id_generate(&rnd);
    memcpy(s.prefix, rnd.b, 8);
    s.deadline_ms = jobq_deadline_ms(s.timeout_ms);
    rc = s_put_all(&s);
    fflush(stdout);
    int broken = rc == JOBQ_EIO;
    while (s.wait && !broken && s.received < s.submitted && s_left(&s) != 0)
        broken = s_take_result(&s, s_left(&s) < 0 || s_left(&s) > 100 ? 100 : s_left(&s)) < 0;
    if (s.wait && !broken && s.received < s.submitted) {
        fprintf(stderr, "jobq submit: timed out: %lld of %lld results arrived\n", s.received,
                s.submitted);
        rc = JOBQ_ETIMEDOUT;
    }
    jobq_queue_destroy(&s.q);
    jobq_free(s.seen);
    return rc != JOBQ_OK || broken || s.any_failed ? JOBQ_EXIT_FAIL : JOBQ_EXIT_OK;
}

/* ---- jobq stop-workers ------------------------------------------------------------ */

typedef struct s_stop {
    const char *url;
    long n; /* sentinels; -1: not given */
    int64_t timeout_ms;
    int unlink;
} s_stop_t;

static int
s_stop_parse(int argc, char **argv, s_stop_t *st)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'T'},
        {"unlink", no_argument, NULL, 'x'},
        {NULL, 0, NULL, 0},
    };
    *st = (s_stop_t){NULL, -1, -1, 0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+u:n:T:", opts, NULL)) != -1) {
        if (c == 'u')
            st->url = optarg;
        else if (c == 'x')
            st->unlink = 1;
        else if (c == 'n' && (st->n = s_parse_count(optarg, 100000)) < 0)
            return jobq_cli_usage_error("stop-workers", "-n needs a number from 0 to 100000");
        else if (c == 'T' && (st->timeout_ms = s_parse_seconds(optarg)) < 0)
            return jobq_cli_usage_error("stop-workers", "--timeout needs seconds > 0");
        else if (c != 'n' && c != 'T')
            return jobq_cli_usage_error("stop-workers", "unknown option or missing value");
    }
    if (optind < argc)
        return jobq_cli_usage_error("stop-workers", "unexpected argument '%s'", argv[optind]);
    if (st->n < 0 && !st->unlink)
        return jobq_cli_usage_error("stop-workers",
                                    "-n N is required: a local queue cannot count its workers");
    if (st->n < 0) st->n = 0;
    if (!st->url) st->url = getenv("JOBQ_URL");
    return s_check_local_url("stop-workers", st->url);
}

int
stop_workers_main(int argc, char **argv)
{
    s_stop_t st;
    int rc = s_stop_parse(argc, argv, &st);
    if (rc) return rc;
    jobq_queue_t *q = NULL;
    if ((rc = jobq_queue_open(st.url, NULL, &q)) != JOBQ_OK) {
        fprintf(stderr, "jobq stop-workers: cannot open %s: %s\n", st.url, jobq_strerror(rc));
        return JOBQ_EXIT_FAIL;
    }
    int64_t deadline = jobq_deadline_ms(st.timeout_ms);
    long put = 0;
    for (; put < st.n; put++) {
        rc = jobq_queue_put_sentinel(q, st.timeout_ms < 0 ? -1 : jobq_remaining_ms(deadline));
        if (rc != JOBQ_OK) break;
    }
    jobq_queue_destroy(&q);
    if (put < st.n) {
        fprintf(stderr, "jobq stop-workers: %ld of %ld sentinels put: %s\n", put, st.n,
                jobq_strerror(rc));
        return JOBQ_EXIT_FAIL;
    }
    /* Attached workers keep the queue until they detach: the sentinels still reach them. */
    if (st.unlink && (rc = jobq_queue_unlink(st.url)) != JOBQ_OK) {
        fprintf(stderr, "jobq stop-workers: cannot unlink %s: %s\n", st.url, jobq_strerror(rc));
        return JOBQ_EXIT_FAIL;
    }
    return JOBQ_EXIT_OK;
}
