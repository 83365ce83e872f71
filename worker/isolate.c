/*
 * worker/isolate.c: fork-per-job isolation (`--fork-per-job`): one attempt of
 * a C or built-in handler runs in a fresh child of the worker, so that a
 * crash, a leak or a stuck call cannot touch the next job.
 *
 * The child (forked by the calling thread) dies with that thread
 * (PR_SET_PDEATHSIG), runs handler_run_here on its copy of the job, writes
 * the result through a pipe (a fixed header, then the output bytes, then the
 * error text) and _exits. The parent reads the pipe while the child writes
 * (an output may be larger than a pipe), so neither blocks the other.
 *
 * Invariants:
 *   1. The child is reaped before isolate_run returns (no zombies), and it is
 *      SIGKILLed first if it is still running at the hard limit.
 *   2. A complete result from the child is used as it is; otherwise the
 *      verdict comes from how it ended: killed at the hard limit = TIMEDOUT
 *      ("hard time limit"), killed by a signal = CRASHED with that signal,
 *      exited without a result = FAILED with its exit code.
 */
#include "common/clock.h"
#include "common/log.h"
#include "jobq/errors.h"
#include "worker/handler.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_MAGIC 0x6a6f6269u /* "jobi" */
#define S_CHUNK (16 * 1024)

/* What the child sends before the output and error bytes. */
typedef struct s_head {
    uint32_t magic;
    int32_t status, exit_code, signal;
    uint64_t duration_us;
    uint32_t output_len, error_len;
} s_head_t;

static int
s_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static _Noreturn void
s_child(handler_t *h, const jobq_job_t *job, const char *queue, uint32_t limit_ms,
        jobq_output_t *out, int fd, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(70);
    jobq_result_t res;
    handler_run_here(h, job, queue, limit_ms, out, &res);
    s_head_t hd = {S_MAGIC,         (int32_t)res.status, res.exit_code, res.signal,
                   res.duration_us, res.output_len,      res.error_len};
    int rc = s_write_all(fd, &hd, sizeof hd);
    if (rc == 0 && res.output_len)
        rc = s_write_all(fd, res.output, res.output_len);
    if (rc == 0 && res.error_len)
        rc = s_write_all(fd, res.error, res.error_len);
    fflush(stdout); /* what a callback printed */
    fflush(stderr);
    _exit(rc == 0 ? 0 : 71);
}

/* The parent's view of the child's pipe. */
typedef struct s_rx {
    s_head_t hd;
    size_t got; /* bytes of header, output and error received */
    char err[JOBQ_ERROR_TEXT_MAX + 1];
    int eof;
} s_rx_t;

/* Takes what the pipe holds; output bytes go into out, the error into rx. */
static void
s_rx_read(s_rx_t *rx, int fd, jobq_output_t *out)
{
    char buf[S_CHUNK];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            rx->eof = 1;
            return;
        }
        for (size_t i = 0; i < (size_t)n;) {
            size_t hsz = sizeof rx->hd, olen = rx->hd.output_len;
            size_t left = (size_t)n - i, take;
            if (rx->got < hsz) {
                take = hsz - rx->got < left ? hsz - rx->got : left;
                memcpy((char *)&rx->hd + rx->got, buf + i, take);
            } else if (rx->got < hsz + olen) {
                take = hsz + olen - rx->got < left ? hsz + olen - rx->got : left;
                jobq_output_append(out, buf + i, take);
            } else {
                size_t at = rx->got - hsz - olen;
                take = left;
                if (at < JOBQ_ERROR_TEXT_MAX) {
                    size_t room = JOBQ_ERROR_TEXT_MAX - at;
                    memcpy(rx->err + at, buf + i, take < room ? take : room);
                }
            }
            i += take;
            rx->got += take;
        }
    }
}

/* Waits for the child's result and its exit, SIGKILLing it at deadline_ms.
 * Returns the wait status; sets *killed when it was killed at the limit. */
static int
s_supervise(pid_t pid, int fd, int64_t deadline_ms, s_rx_t *rx, jobq_output_t *out, int *killed)
{
    while (!rx->eof) {
        int64_t now = jobq_now_ms();
        if (now >= deadline_ms && !*killed) {
            kill(pid, SIGKILL);
            *killed = 1;
        }
        int t = deadline_ms == INT64_MAX || *killed ? -1 : (int)(deadline_ms - now);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, t) < 0 && errno != EINTR) {
            kill(pid, SIGKILL);
            break;
        }
        if (p.revents)
            s_rx_read(rx, fd, out);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* The verdict when the child sent no complete result (invariant 2). */
static void
s_verdict(int st, int killed, uint32_t limit_ms, jobq_output_t *out, jobq_result_t *res)
{
    char text[160];
    if (killed) {
        res->status = JOBQ_STATUS_TIMEDOUT;
        res->signal = SIGKILL;
        snprintf(text, sizeof text,
                 "hard time limit of %u ms reached: sent SIGKILL to the job's child",
                 (unsigned)limit_ms);
    } else if (WIFSIGNALED(st)) {
        res->status = JOBQ_STATUS_CRASHED;
        res->signal = WTERMSIG(st);
        snprintf(text, sizeof text, "the job's child was killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    } else {
        res->status = JOBQ_STATUS_FAILED;
        res->exit_code = WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : 1;
        snprintf(text, sizeof text, "the job's child exited with code %d without a result",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    jobq_output_set_error(out, text);
}

int
isolate_run(handler_t *h, const jobq_job_t *job, const char *queue, uint32_t limit_ms,
            jobq_output_t *out, jobq_result_t *res)
{
    JOBQ_ASSERT(h && job && out && res);
    jobq_output_reset(out);
    jobq_result_init(res);
    res->id = job->id;
    res->attempt = job->attempt;
    int64_t t0 = jobq_now_us();
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        res->status = JOBQ_STATUS_FAILED;
        res->exit_code = 1;
        jobq_output_set_error(out, "cannot start the job's child: pipe failed");
        goto done;
    }
    fflush(NULL); /* or the child would write our buffered output again */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        s_child(h, job, queue, limit_ms, out, fds[1], parent);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        res->status = JOBQ_STATUS_FAILED;
        res->exit_code = 1;
        jobq_output_set_error(out, "cannot start the job's child: fork failed");
        goto done;
    }
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    s_rx_t rx;
    memset(&rx, 0, sizeof rx);
    int killed = 0;
    int64_t deadline = limit_ms ? jobq_now_ms() + limit_ms : INT64_MAX;
    int st = s_supervise(pid, fds[0], deadline, &rx, out, &killed);
    close(fds[0]);
    size_t want = sizeof rx.hd + rx.hd.output_len + rx.hd.error_len;
    if (rx.got >= sizeof rx.hd && rx.hd.magic == S_MAGIC && rx.got == want) {
        res->status = (jobq_status)rx.hd.status;
        res->exit_code = rx.hd.exit_code;
        res->signal = rx.hd.signal;
        if (rx.hd.error_len)
            jobq_output_set_error(out, rx.err);
    } else {
        jobq_output_reset(out);
        s_verdict(st, killed, limit_ms, out, res);
    }
done:
    res->duration_us = (uint64_t)(jobq_now_us() - t0);
    size_t len = jobq_output_len(out);
    res->output_len = (uint32_t)len;
    res->output = len ? jobq_output_data(out) : NULL;
    const char *err = jobq_output_error(out);
    res->error_len = (uint32_t)strlen(err);
    res->error = res->error_len ? err : NULL;
    return 0;
}
