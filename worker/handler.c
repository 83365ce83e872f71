/*
 * worker/handler.c: runs one attempt of a job through a built-in, a C
 * callback, or a command (--exec CMD), and turns what happened into a result.
 *
 * Invariants kept by handler_run, whatever the handler does:
 *  1. res->id and res->attempt come from the job; output and error are slices
 *     of out, valid until out is reset.
 *  2. An output cut at the output limit is never DONE: the status becomes
 *     FAILED (exit code kept) and the error text says "output truncated at N
 *     bytes" (N = the bytes kept, which is the limit).
 *  3. An --exec command is reaped before handler_run returns (no zombies), and
 *     no process of its process group outlives the attempt: when the shell
 *     exits or the time limit ends, whatever is left of its group gets SIGKILL.
 *
 * The --exec machinery (starting, supervising and judging a command) is in
 * worker/exec.c, fork-per-job isolation in worker/isolate.c.
 */
#include "worker/handler.h"

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "jobq/errors.h"
#include "worker/md5.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef enum s_kind { S_KIND_BUILTIN, S_KIND_EXEC, S_KIND_CALLBACK } s_kind;

/* A built-in sets res->status and res->exit_code and fills out. */
typedef void (*s_builtin_fn)(const jobq_job_t *job, uint32_t time_limit_ms, jobq_output_t *out,
                             jobq_result_t *res);

struct handler {
    s_kind kind;
    s_builtin_fn builtin; /* S_KIND_BUILTIN */
    char *cmd;            /* S_KIND_EXEC: the shell command, owned */
    jobq_handler_fn fn;   /* S_KIND_CALLBACK */
    void *arg;
    handler_limits_t lim; /* worker operations; zero = none */
};

/* The soft deadline of the attempt running on this thread (monotonic ms,
 * 0 = none) and its length, for jobq_job_soft_expired() and the texts. */
static _Thread_local int64_t s_soft_deadline_ms;
static _Thread_local uint32_t s_soft_ms;

int
jobq_job_soft_expired(void)
{
    return s_soft_deadline_ms != 0 && jobq_now_ms() >= s_soft_deadline_ms;
}

/* ---- helpers shared by the kinds ------------------------------------------ */

/* Appends as much of data as out still holds, byte-exact up to its limit. An
 * append is all or nothing and out does not expose its limit, so the chunk is
 * halved after each refusal: O(log len) calls, only once the limit is hit.
 * Returns 0 if all of data went in, -1 if some was dropped (out is then
 * marked truncated). */
int
handler_append_bounded(jobq_output_t *out, const void *data, size_t len)
{
    const char *p = data;
    size_t step = len;
    while (len > 0 && step > 0) {
        size_t n = step < len ? step : len;
        if (jobq_output_append(out, p, n) == JOBQ_OK) {
            p += n;
            len -= n;
        } else {
            step /= 2;
        }
    }
    return len == 0 ? 0 : -1;
}

/* Sets the verdict of a failed attempt and its error text (printf-style). */
void
handler_fail(jobq_output_t *out, jobq_result_t *res, int exit_code, const char *fmt, ...)
{
    char text[JOBQ_ERROR_TEXT_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    res->status = JOBQ_STATUS_FAILED;
    res->exit_code = exit_code;
    jobq_output_set_error(out, text);
}

/* ---- built-ins -------------------------------------------------------------- */

static void
s_builtin_echo(const jobq_job_t *job, uint32_t time_limit_ms, jobq_output_t *out,
               jobq_result_t *res)
{
    handler_append_bounded(out, job->payload, job->payload_len);
}

/* ASCII letters only; other bytes (UTF-8 included) pass through unchanged. */
static void
s_builtin_upper(const jobq_job_t *job, uint32_t time_limit_ms, jobq_output_t *out,
                jobq_result_t *res)
{
    const unsigned char *p = job->payload;
    unsigned char chunk[4096];
    for (size_t done = 0; done < job->payload_len;) {
        size_t n = job->payload_len - done < sizeof chunk ? job->payload_len - done : sizeof chunk;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = p[done + i];
            chunk[i] = (c >= 'a' && c <= 'z') ? (unsigned char)(c - 'a' + 'A') : c;
        }
        if (handler_append_bounded(out, chunk, n) < 0)
            return;
        done += n;
    }
}

static void
s_builtin_md5(const jobq_job_t *job, uint32_t time_limit_ms, jobq_output_t *out, jobq_result_t *res)
{
    char hex[MD5_HEX_LEN + 1];
    md5_hex(job->payload, job->payload_len, hex);
    handler_append_bounded(out, hex, MD5_HEX_LEN);
}

/* Parses the payload of sleep: optional ASCII blanks, 1-10 decimal digits,
 * optional blanks (so "250\n" from a line-oriented producer works). Returns 0
 * and sets *ms, or -1. */
static int
s_parse_ms(const char *p, size_t len, uint32_t *ms)
{
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    uint64_t v = 0;
    size_t digits = 0;
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++, digits++) {
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > UINT32_MAX)
            return -1;
    }
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    if (digits == 0 || i != len)
        return -1;
    *ms = (uint32_t)v;
    return 0;
}

/* Sleeps on CLOCK_MONOTONIC until the absolute deadline_ns, through EINTR. */
static void
s_sleep_until(int64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000),
                          .tv_nsec = (long)(deadline_ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Sleeps for the payload's milliseconds; a sleep longer than the time limit
 * sleeps until the limit and ends TIMEDOUT. Output is empty. */
static void
s_builtin_sleep(const jobq_job_t *job, uint32_t time_limit_ms, jobq_output_t *out,
                jobq_result_t *res)
{
    uint32_t ms;
    if (s_parse_ms(job->payload, job->payload_len, &ms) < 0) {
        char shown[41];
        size_t n = job->payload_len < 40 ? job->payload_len : 40;
        for (size_t i = 0; i < n; i++) {
            char c = ((const char *)job->payload)[i];
            shown[i] = (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
        }
        shown[n] = '\0';
        handler_fail(out, res, 1,
                     "sleep: the payload must be a whole number of milliseconds (0 to 4294967295), "
                     "got \"%s\"%s",
                     shown, job->payload_len > 40 ? "..." : "");
        return;
    }
    int64_t start_ns = jobq_now_ns();
    const char *kind = "";
    if (s_soft_ms) { /* it polls the soft flag, as a C handler should */
        time_limit_ms = s_soft_ms;
        kind = "soft ";
    }
    if (time_limit_ms && ms > time_limit_ms) {
        s_sleep_until(start_ns + (int64_t)time_limit_ms * 1000000);
        res->status = JOBQ_STATUS_TIMEDOUT;
        char text[128];
        snprintf(text, sizeof text, "sleep: %stime limit of %u ms reached before %u ms had passed",
                 kind, (unsigned)time_limit_ms, (unsigned)ms);
        jobq_output_set_error(out, text);
        return;
    }
    s_sleep_until(start_ns + (int64_t)ms * 1000000);
}

static void
s_builtin_fail(const jobq_job_t *job, uint32_t time_limit_ms, jobq_output_t *out,
               jobq_result_t *res)
{
    handler_fail(out, res, 1, "fail: the built-in always fails");
}

/* !!! Kills the calling process with SIGABRT (abort()). That is its purpose:
 * to let tests and demos check how a pool copes with a worker that dies in
 * the middle of a job. In a pool of threads it takes the whole pool down. */
static void
s_builtin_crash(const jobq_job_t *job, uint32_t time_limit_ms, jobq_output_t *out,
                jobq_result_t *res)
{
    LOG_NOTICE("crash built-in: aborting the process on purpose (job attempt %u)",
               (unsigned)job->attempt);
    abort();
}

static const struct {
    const char *name;
    s_builtin_fn fn;
} s_builtins[] = {
    {"echo", s_builtin_echo},   {"upper", s_builtin_upper}, {"md5", s_builtin_md5},
    {"sleep", s_builtin_sleep}, {"fail", s_builtin_fail},   {"crash", s_builtin_crash},
};

/* ---- C callback --------------------------------------------------------------- */

static void
s_run_callback(const handler_t *h, const jobq_job_t *job, jobq_output_t *out, jobq_result_t *res)
{
    int rc = h->fn(job, out, h->arg);
    if (rc != 0) {
        res->status = JOBQ_STATUS_FAILED;
        res->exit_code = rc > 0 ? rc : 1;
    }
    if (jobq_job_soft_expired()) { /* it ran past its soft limit: TIMEDOUT, output kept */
        char text[JOBQ_ERROR_TEXT_MAX + 1];
        const char *prev = jobq_output_error(out);
        snprintf(text, sizeof text, "soft time limit of %u ms reached%s%.*s", (unsigned)s_soft_ms,
                 *prev ? ": " : "", (int)(JOBQ_ERROR_TEXT_MAX - 64), prev);
        res->status = JOBQ_STATUS_TIMEDOUT;
        jobq_output_set_error(out, text);
    }
}

/* ---- the handler object -------------------------------------------------------- */

static handler_t *
s_new(s_kind kind)
{
    handler_t *h = jobq_calloc(1, sizeof *h);
    h->kind = kind;
    return h;
}

handler_t *
handler_new_builtin(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof s_builtins / sizeof s_builtins[0]; i++) {
        if (strcmp(name, s_builtins[i].name) == 0) {
            handler_t *h = s_new(S_KIND_BUILTIN);
            h->builtin = s_builtins[i].fn;
            return h;
        }
    }
    return NULL;
}

handler_t *
handler_new_exec(const char *cmd)
{
    JOBQ_ASSERT(cmd);
    handler_t *h = s_new(S_KIND_EXEC);
    h->cmd = jobq_strdup(cmd);
    return h;
}

handler_t *
handler_new_callback(jobq_handler_fn fn, void *arg)
{
    JOBQ_ASSERT(fn);
    handler_t *h = s_new(S_KIND_CALLBACK);
    h->fn = fn;
    h->arg = arg;
    return h;
}

void
handler_destroy(handler_t **h_p)
{
    JOBQ_ASSERT(h_p);
    handler_t *h = *h_p;
    if (!h)
        return;
    jobq_free(h->cmd);
    jobq_free(h);
    *h_p = NULL;
}

const char *
handler_builtin_list(void)
{
    return "echo, upper, md5, sleep, fail, crash";
}

/* Applies invariant 2 (a truncated output is never DONE) and points the
 * result's slices into out. */
static void
s_finish(jobq_output_t *out, jobq_result_t *res)
{
    if (jobq_output_truncated(out)) {
        if (res->status == JOBQ_STATUS_DONE)
            res->status = JOBQ_STATUS_FAILED;
        char text[JOBQ_ERROR_TEXT_MAX + 1];
        const char *prev = jobq_output_error(out);
        snprintf(text, sizeof text, "%.*s%soutput truncated at %zu bytes",
                 (int)(JOBQ_ERROR_TEXT_MAX - 64), prev, *prev ? "; " : "", jobq_output_len(out));
        jobq_output_set_error(out, text);
    }
    size_t len = jobq_output_len(out);
    JOBQ_ASSERT(len <= UINT32_MAX);
    res->output_len = (uint32_t)len;
    res->output = len ? jobq_output_data(out) : NULL;
    const char *err = jobq_output_error(out);
    res->error_len = (uint32_t)strlen(err);
    res->error = res->error_len ? err : NULL;
}

void
handler_set_limits(handler_t *h, const handler_limits_t *lim)
{
    JOBQ_ASSERT(h && lim);
    h->lim = *lim;
}

uint32_t
handler_soft_ms(const handler_t *h, uint32_t hard_ms)
{
    uint32_t soft = h->lim.soft_ms;
    return soft && (hard_ms == 0 || soft < hard_ms) ? soft : 0;
}

int
handler_run(handler_t *h, const jobq_job_t *job, const char *queue, uint32_t time_limit_ms,
            jobq_output_t *out, jobq_result_t *res)
{
    JOBQ_ASSERT(h);
    if (h->lim.fork_per_job && h->kind != S_KIND_EXEC)
        return isolate_run(h, job, queue, time_limit_ms, out, res);
    return handler_run_here(h, job, queue, time_limit_ms, out, res);
}

int
handler_run_here(handler_t *h, const jobq_job_t *job, const char *queue, uint32_t time_limit_ms,
                 jobq_output_t *out, jobq_result_t *res)
{
    JOBQ_ASSERT(h && job && out && res);
    jobq_output_reset(out);
    jobq_result_init(res);
    res->id = job->id;
    res->attempt = job->attempt;
    int64_t start_us = jobq_now_us();
    int rc = 0;
    s_soft_ms = h->kind == S_KIND_EXEC ? 0 : handler_soft_ms(h, time_limit_ms);
    s_soft_deadline_ms = s_soft_ms ? jobq_now_ms() + s_soft_ms : 0;
    switch (h->kind) {
    case S_KIND_BUILTIN:
        h->builtin(job, time_limit_ms, out, res);
        break;
    case S_KIND_CALLBACK:
        s_run_callback(h, job, out, res);
        break;
    case S_KIND_EXEC:
        rc = exec_run(h->cmd, &h->lim, handler_soft_ms(h, time_limit_ms), job, queue, time_limit_ms,
                      out, res);
        break;
    }
    s_soft_ms = 0;
    s_soft_deadline_ms = 0;
    res->duration_us = (uint64_t)(jobq_now_us() - start_us);
    s_finish(out, res);
    return rc;
}
