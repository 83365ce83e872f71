/*
 * worker/worker.c: the worker loop over a local queue (one per forked child or
 * per thread of a pool), its final report, and results as JSON lines.
 *
 * Invariants of the loop:
 *   1. Every item taken is answered by exactly one put_result (unless the
 *      result is dropped under result_timeout_ms or an immediate stop, which
 *      is counted) and then exactly one task_done, in that order, so that a
 *      producer whose join() returned finds every result already delivered.
 *   2. The stop flag is read before each get and get never blocks longer than
 *      poll_ms, so a stop is noticed within poll_ms when idle and right after
 *      the current job otherwise.
 *   3. Counters are written by this worker only (relaxed atomics), after the
 *      result was put: a supervisor reading them after the worker died sees
 *      the jobs whose results were delivered.
 */
#include "worker/worker.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "jobq/errors.h"
#include "jobq/worker.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define S_STUCK_WARN_MS 10000 /* warn once when a result waits this long for room */

static int
s_stop_level(const worker_cfg_t *cfg)
{
    return cfg->stop ? atomic_load_explicit(cfg->stop, memory_order_relaxed) : 0;
}

static void
s_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* The smaller of two time limits, where 0 means "none". */
static uint32_t
s_min_limit(uint32_t a, uint32_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

static void
s_job_from_item(const jobq_item_t *item, const char *label, jobq_job_t *job)
{
    jobq_job_init(job);
    job->id = item->id;
    job->queue = label;
    job->queue_len = (uint32_t)strlen(label);
    job->payload = item->payload;
    job->payload_len = (uint32_t)item->payload_len;
    job->ttr_ms = item->ttr_ms;
    job->max_attempts = item->max_attempts;
    job->attempt = item->attempt;
}

/* Puts res on the results channel, in poll_ms slices so that an immediate
 * stop or the result timeout is noticed. Returns 1 if delivered, 0 if dropped. */
static int
s_put_result(const worker_cfg_t *cfg, jobq_result_t *res)
{
    int64_t start_ms = jobq_now_ms();
    int warned = 0;
    for (;;) {
        int rc = jobq_queue_put_result(cfg->q, res, cfg->poll_ms);
        if (rc == JOBQ_OK)
            return 1;
        if (rc == JOBQ_ETOOBIG && res->output_len) {
            /* The channel can never hold this output: report the job failed. */
            static const char why[] = "result output too big for the results channel";
            res->status = JOBQ_STATUS_FAILED;
            res->output = NULL;
            res->output_len = 0;
            res->error = why;
            res->error_len = sizeof why - 1;
            continue;
        }
        if (rc != JOBQ_ETIMEDOUT && rc != JOBQ_EFULL) {
            LOG_WARN("put_result failed: %s; result dropped", jobq_strerror(rc));
            return 0;
        }
        int64_t waited = jobq_now_ms() - start_ms;
        if (s_stop_level(cfg) >= 2)
            return 0;
        if (cfg->result_timeout_ms > 0 && waited >= cfg->result_timeout_ms)
            return 0;
        if (!warned && waited >= S_STUCK_WARN_MS) {
            LOG_WARN("results channel full for %lld ms: is the producer reading results?",
                     (long long)waited);
            warned = 1;
        }
    }
}

/* Runs one item through the handler and answers it (invariant 1). */
static void
s_serve(const worker_cfg_t *cfg, const jobq_item_t *item, jobq_output_t *out)
{
    jobq_job_t job;
    jobq_result_t res;
    s_job_from_item(item, cfg->queue_label, &job);
    jobq_result_init(&res);
    uint32_t limit = s_min_limit(cfg->time_limit_ms, item->ttr_ms);
    int64_t t0 = jobq_now_us();
    worker_mark_deadline(cfg->counters, limit);
    if (handler_run(cfg->handler, &job, cfg->queue_label, limit, out, &res) != 0)
        LOG_WARN("handler could not start: %.*s", (int)res.error_len, res.error ? res.error : "");
    worker_mark_deadline(cfg->counters, 0);
    uint64_t took = (uint64_t)(jobq_now_us() - t0);
    res.id = item->id;
    res.attempt = item->attempt;
    if (res.duration_us == 0)
        res.duration_us = took;
    int delivered = s_put_result(cfg, &res);
    worker_counters_t *c = cfg->counters;
    if (c) {
        if (res.status == JOBQ_STATUS_DONE)
            s_add(&c->done, 1);
        else if (res.status == JOBQ_STATUS_CRASHED)
            s_add(&c->crashed, 1);
        else
            s_add(&c->failed, 1);
        s_add(&c->busy_us, took);
        if (!delivered)
            s_add(&c->dropped, 1);
    }
    if (c) /* cleared first: dying from here on leaves the item to reclaim */
        atomic_store_explicit(&c->holding, 0, memory_order_relaxed);
    int rc = jobq_queue_task_done(cfg->q, item);
    if (rc != JOBQ_OK)
        LOG_WARN("task_done failed: %s", jobq_strerror(rc));
}

worker_end
worker_run(const worker_cfg_t *cfg)
{
    JOBQ_ASSERT(cfg && cfg->q && cfg->handler && cfg->poll_ms > 0);
    jobq_output_t *out = jobq_output_new(0);
    worker_end end = WORKER_END_ERROR;
    int errors = 0;
    uint64_t jobs = 0;
    for (;;) {
        if (s_stop_level(cfg) >= 1) {
            end = WORKER_END_STOPPED;
            break;
        }
        jobq_item_t item;
        int rc = jobq_queue_get(cfg->q, &item, cfg->poll_ms);
        if (rc == JOBQ_ETIMEDOUT || rc == JOBQ_EEMPTY)
            continue;
        if (rc == JOBQ_ECLOSED) {
            end = WORKER_END_CLOSED;
            break;
        }
        if (rc != JOBQ_OK) {
            /* A broken queue: give up after a few tries, without spinning. */
            LOG_WARN("get failed: %s", jobq_strerror(rc));
            if (++errors >= 3)
                break;
            struct timespec ts = {0, 100L * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        errors = 0;
        if (item.sentinel) {
            jobq_queue_task_done(cfg->q, &item);
            jobq_item_fini(&item);
            end = WORKER_END_SENTINEL;
            break;
        }
        if (cfg->counters)
            atomic_store_explicit(&cfg->counters->holding, 1, memory_order_relaxed);
        s_serve(cfg, &item, out);
        jobq_item_fini(&item);
        if (worker_recycle_due(&cfg->recycle, ++jobs)) {
            end = WORKER_END_RECYCLE;
            break;
        }
    }
    jobq_output_destroy(&out);
    return end;
}

void
worker_mark_deadline(worker_counters_t *c, uint32_t limit_ms)
{
    if (!c)
        return;
    if (limit_ms) /* before the deadline: a supervisor that sees one finds its limit */
        atomic_store_explicit(&c->hard_limit_ms, limit_ms, memory_order_relaxed);
    atomic_store_explicit(&c->hard_deadline_ms, limit_ms ? jobq_now_ms() + limit_ms : 0,
                          memory_order_release);
}

int
worker_recycle_due(const worker_recycle_t *rc, uint64_t jobs)
{
    if (rc->max_jobs && jobs >= rc->max_jobs)
        return 1;
    if (!rc->max_rss_kb)
        return 0;
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long size = 0, resident = 0;
    int n = f ? fscanf(f, "%llu %llu", &size, &resident) : 0;
    if (f)
        fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 &&
           resident * (unsigned long long)(page > 0 ? page : 4096) / 1024 >= rc->max_rss_kb;
}

void
worker_report_fill(worker_report_t *r, const worker_counters_t *c, worker_end end)
{
    struct rusage ru;
    memset(r, 0, sizeof *r);
    r->magic = WORKER_REPORT_MAGIC;
    r->pid = (int32_t)getpid();
    r->end = (int32_t)end;
    r->done = atomic_load(&c->done);
    r->failed = atomic_load(&c->failed);
    r->crashed = atomic_load(&c->crashed);
    r->busy_us = atomic_load(&c->busy_us);
    r->dropped = atomic_load(&c->dropped);
    r->stale = atomic_load(&c->stale);
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        r->max_rss_kb = (uint64_t)ru.ru_maxrss;
}

/* ---- results as JSON lines ------------------------------------------------ */

typedef struct s_buf {
    char *p;
    size_t len, cap;
} s_buf_t;

static void
s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = jobq_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void __attribute__((format(printf, 2, 3))) s_putf(s_buf_t *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    s_put(b, tmp, n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is invalid. */
static size_t
s_utf8_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || n > left || (n == 2 && c < 0xc2))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3) {
        unsigned cp = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
        if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
    } else if (n == 4) {
        unsigned cp =
            ((c & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
        if (cp < 0x10000 || cp > 0x10ffff)
            return 0;
    }
    return n;
}

static void
s_put_json_string(s_buf_t *b, const void *data, size_t len)
{
    const unsigned char *s = data;
    s_put(b, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            s_put(b, esc, 2);
            i++;
        } else if (c == '\n' || c == '\t') {
            s_put(b, c == '\n' ? "\\n" : "\\t", 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            s_putf(b, "\\u%04x", c);
            i++;
        } else {
            size_t n = s_utf8_len(s + i, len - i);
            if (n == 0) {
                s_put(b, "\\ufffd", 6);
                i++;
            } else {
                s_put(b, (const char *)s + i, n);
                i += n;
            }
        }
    }
    s_put(b, "\"", 1);
}

char *
worker_result_json(const jobq_result_t *res, int64_t seq)
{
    s_buf_t b = {0};
    char id[JOBQ_ID_HEX_LEN + 1];
    jobq_id_format(&res->id, id);
    s_put(&b, "{", 1);
    if (seq >= 0)
        s_putf(&b, "\"seq\":%lld,", (long long)seq);
    s_putf(&b, "\"id\":\"%s\",\"attempt\":%u,\"status\":\"%s\",", id, res->attempt,
           jobq_status_name(res->status));
    s_putf(&b,
           "\"exit_code\":%d,\"signal\":%d,\"duration_us\":%llu,\"output\":", (int)res->exit_code,
           (int)res->signal, (unsigned long long)res->duration_us);
    s_put_json_string(&b, res->output, res->output_len);
    if (res->error_len) {
        s_put(&b, ",\"error\":", 9);
        s_put_json_string(&b, res->error, res->error_len);
    }
    s_put(&b, "}", 1);
    return b.p;
}
