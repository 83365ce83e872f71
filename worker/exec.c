/*
 * worker/exec.c: the --exec handler kind: runs one attempt of a job as
 * `/bin/sh -c CMD` in its own process group (see worker/handler.h for the
 * contract), with its time limits (soft: SIGTERM, hard: SIGKILL, on the
 * process group) and rlimits (RLIMIT_AS, RLIMIT_CPU, RLIMIT_NOFILE set in the
 * child before execve), and turns how it ended into a result.
 *
 * Invariants kept by exec_run:
 *  1. The command is reaped before exec_run returns (no zombies), and no
 *     process of its process group outlives the attempt: when the shell exits
 *     or the hard limit ends, whatever is left of its group gets SIGKILL.
 *  2. A limit it hit is named in the result (CPU: certain; memory and files:
 *     "may have been hit", docs/WORKERS.md).
 *
 * How a command is started: fork() copies the page tables and the child then
 * takes copy-on-write faults until it execs; measured here over 3,000 runs of
 * `sh -c true` with pipes, fork+exec cost 3.2-3.5 ms per run against 2.4-2.8 ms
 * for posix_spawn and for clone(CLONE_VM) (the exec of the shell dominates; the
 * parent's CPU per start: fork 290 us, posix_spawn 150-170 us, clone 120-130
 * us), and fork grows with the worker's memory. So the child is started with
 * clone(CLONE_VM | CLONE_VFORK), as glibc's posix_spawn does, but with our own
 * child function, so that it can set PR_SET_PDEATHSIG and check getppid(),
 * which posix_spawn cannot. The child shares our memory until it execs: it runs
 * on a stack inside the caller's frame, makes raw system calls only (no libc
 * state, no allocation, no sanitizer interceptors), and reports a failure
 * through the shared s_child_t before it exits.
 */
#include "worker/handler.h"

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "jobq/errors.h"

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

#define S_SHELL "/bin/sh"
#define S_CHILD_STACK (16 * 1024) /* bytes of stack for the clone()d child until it execs */
#define S_READ_CHUNK (16 * 1024)  /* bytes read from the command's stdout per read() */
#define S_GRACE_MAX_MS 1000       /* longest wait between SIGTERM and SIGKILL */
#define S_GRACE_MIN_MS 10
#define S_TICK_MS 10          /* poll period when pidfd_open is not available */
#define S_DRAIN_READS_MAX 256 /* reads of leftover output once the command has exited */

/* ---- --exec: starting the child ---------------------------------------------- */

/* The steps of the child that can fail, for the error text. */
enum {
    S_STEP_NONE,
    S_STEP_SETPGID,
    S_STEP_PDEATHSIG,
    S_STEP_ORPHAN,
    S_STEP_DUP,
    S_STEP_EXEC,
    S_STEP_RLIMIT
};
static const char *const s_step_names[] = {
    "?",
    "setpgid",
    "prctl(PR_SET_PDEATHSIG)",
    "getppid (the worker died)",
    "dup3",
    ("exec " S_SHELL),
    "prlimit",
};

/* The kernel's struct rlimit64, for a raw prlimit64 in the child. */
typedef struct s_rlim {
    uint64_t cur, max;
} s_rlim_t;

/* What the clone()d child needs. It lives in the parent's frame, which the
 * parent does not touch until the child has exec'd or exited (CLONE_VFORK). */
typedef struct s_child {
    int stdin_fd;      /* read end of the payload pipe: becomes fd 0 */
    int stdout_fd;     /* write end of the output pipe: becomes fd 1 */
    pid_t parent_pid;  /* getpid() of the worker, for the orphan check */
    char *const *argv; /* sh -c CMD */
    char *const *envp; /* environ plus the JOBQ_* variables */
    int nlims;         /* rlimits to set (--limit-mem/-cpu/-files) */
    int lim_res[3];    /* RLIMIT_* */
    s_rlim_t lims[3];
    volatile int step;  /* S_STEP_* that failed in the child, S_STEP_NONE if exec worked */
    volatile int error; /* its errno */
} s_child_t;

/* Records the failed step and ends the child with status 127. */
#define S_CHILD_FAIL(c, s)                                                                         \
    do {                                                                                           \
        (c)->error = errno;                                                                        \
        (c)->step = (s);                                                                           \
        syscall(SYS_exit_group, 127);                                                              \
    } while (0)

/* The child, between clone() and execve(). It shares the parent's memory, so
 * it makes raw system calls only, and nothing in it is instrumented. Every
 * signal is blocked on entry (the parent blocked them around clone), so no
 * handler of the parent can run here. */
__attribute__((noinline, no_sanitize("address", "undefined"))) static int
s_child_main(void *arg)
{
    s_child_t *c = arg;
    static const unsigned long dfl_action[8];  /* zeroed kernel sigaction: SIG_DFL */
    static const unsigned long empty_mask[16]; /* an empty kernel sigset */

    if (syscall(SYS_setpgid, 0, 0) != 0)
        S_CHILD_FAIL(c, S_STEP_SETPGID);
    /* No orphans: die with the thread that started us, and if the worker died
     * before the line above took effect, getppid() has changed already. */
    if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        S_CHILD_FAIL(c, S_STEP_PDEATHSIG);
    if ((pid_t)syscall(SYS_getppid) != c->parent_pid) {
        errno = ESRCH;
        S_CHILD_FAIL(c, S_STEP_ORPHAN);
    }
    /* The pipe ends are > 2 (see s_pipe), so dup3 never sees equal fds. */
    if (syscall(SYS_dup3, c->stdin_fd, 0, 0) < 0 || syscall(SYS_dup3, c->stdout_fd, 1, 0) < 0)
        S_CHILD_FAIL(c, S_STEP_DUP);
#ifdef SYS_close_range
    /* Only 0, 1, 2 reach the command, even fds the caller left inheritable.
     * Best effort: every fd jobq opens is O_CLOEXEC anyway. */
    syscall(SYS_close_range, 3U, ~0U, 0U);
#endif
    for (int sig = 1; sig < _NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, dfl_action, NULL, (size_t)(_NSIG / 8));
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, empty_mask, NULL, (size_t)(_NSIG / 8));
    for (int i = 0; i < c->nlims; i++)
        if (syscall(SYS_prlimit64, 0, c->lim_res[i], &c->lims[i], NULL) != 0)
            S_CHILD_FAIL(c, S_STEP_RLIMIT);
    syscall(SYS_execve, S_SHELL, c->argv, c->envp);
    S_CHILD_FAIL(c, S_STEP_EXEC);
    return 127;
}

/* Starts s_child_main in a vfork-style child; the calling thread resumes once
 * the child has exec'd or exited. Returns its pid, or -1 with *err set. */
__attribute__((noinline)) static pid_t
s_spawn(s_child_t *c, int *err)
{
    _Alignas(16) char stack[S_CHILD_STACK];
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(s_child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, c);
    *err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pid;
}

/* Moves *fd above 2 (keeping O_CLOEXEC) so that dup3 onto 0 or 1 in the child
 * never meets the same fd and never clobbers the other pipe. Returns 0 or -1. */
static int
s_fd_above_stdio(int *fd)
{
    if (*fd > 2)
        return 0;
    int moved = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (moved < 0)
        return -1;
    close(*fd);
    *fd = moved;
    return 0;
}

/* A pipe whose ends are O_CLOEXEC (threads may start commands concurrently)
 * and above 2. Returns 0, or -1 with errno set and nothing left open. */
static int
s_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    if (s_fd_above_stdio(&fds[0]) < 0 || s_fd_above_stdio(&fds[1]) < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        fds[0] = fds[1] = -1;
        errno = e;
        return -1;
    }
    return 0;
}

static void
s_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The JOBQ_* variables of one run (the strings envp points to). */
typedef struct s_env {
    char id[sizeof "JOBQ_JOB_ID=" + JOBQ_ID_HEX_LEN];
    char queue[sizeof "JOBQ_QUEUE=" + JOBQ_QUEUE_NAME_MAX];
    char attempt[sizeof "JOBQ_ATTEMPT=" + 10];
} s_env_t;

static int
s_is_jobq_var(const char *entry)
{
    return strncmp(entry, "JOBQ_JOB_ID=", 12) == 0 || strncmp(entry, "JOBQ_QUEUE=", 11) == 0 ||
           strncmp(entry, "JOBQ_ATTEMPT=", 13) == 0;
}

/* Returns environ without any JOBQ_JOB_ID/QUEUE/ATTEMPT, plus this job's
 * values (kept in vars). Caller frees the array (not the strings). */
static char **
s_build_env(const jobq_job_t *job, const char *queue, s_env_t *vars)
{
    char hex[JOBQ_ID_HEX_LEN + 1];
    jobq_id_format(&job->id, hex);
    snprintf(vars->id, sizeof vars->id, "JOBQ_JOB_ID=%s", hex);
    if (queue)
        snprintf(vars->queue, sizeof vars->queue, "JOBQ_QUEUE=%s", queue);
    else
        snprintf(vars->queue, sizeof vars->queue, "JOBQ_QUEUE=%.*s",
                 (int)(job->queue_len < JOBQ_QUEUE_NAME_MAX ? job->queue_len : JOBQ_QUEUE_NAME_MAX),
                 job->queue ? job->queue : "");
    snprintf(vars->attempt, sizeof vars->attempt, "JOBQ_ATTEMPT=%u", (unsigned)job->attempt);

    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **envp = jobq_malloc((n + 4) * sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!s_is_jobq_var(environ[i]))
            envp[k++] = environ[i];
    envp[k++] = vars->id;
    envp[k++] = vars->queue;
    envp[k++] = vars->attempt;
    envp[k] = NULL;
    return envp;
}

/* ---- --exec: SIGPIPE without a signal handler --------------------------------- */

/* While we write the payload, SIGPIPE is blocked in this thread (a write to a
 * command that exited or closed its stdin raises it in the writing thread);
 * a SIGPIPE we caused is then consumed with sigtimedwait before the old mask
 * comes back, unless one was pending already (then ours merged with it). */
typedef struct s_sigpipe {
    sigset_t old_mask;
    int was_pending;
} s_sigpipe_t;

static void
s_sigpipe_block(s_sigpipe_t *s)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &s->old_mask);
    sigpending(&pending);
    s->was_pending = sigismember(&pending, SIGPIPE);
}

static void
s_sigpipe_restore(s_sigpipe_t *s, int raised)
{
    if (raised && !s->was_pending) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &s->old_mask, NULL);
}

/* ---- --exec: supervising the child ------------------------------------------- */

typedef struct s_exec {
    pid_t pid;           /* the shell; also its process group id */
    int pidfd;           /* readable once the shell exits; -1: poll in S_TICK_MS ticks */
    int in_fd;           /* our end of the payload pipe, -1 once closed */
    int out_fd;          /* our end of the output pipe, -1 at EOF */
    const char *payload; /* bytes still to write start at payload + written */
    size_t payload_len;  /* bytes */
    size_t written;      /* bytes */
    uint32_t limit_ms;   /* the (hard) time limit, 0 = none */
    uint32_t soft_ms;    /* the soft limit (SIGTERM), 0 = none: SIGTERM at limit_ms */
    int64_t start_ms;    /* when the command started (monotonic) */
    int64_t deadline_ms; /* next escalation (monotonic), INT64_MAX when none */
    const handler_limits_t *lim;
    int kill_stage;  /* 0; 1 after SIGTERM; 2 after SIGKILL, for the time limit */
    int epipe;       /* a payload write hit EPIPE (we raised a SIGPIPE) */
    int exited;      /* the shell has exited (a zombie until reaped) */
    int wait_status; /* from waitpid */
    int wait_errno;  /* 0, or why waitpid failed */
    jobq_output_t *out;
} s_exec_t;

/* Writes as much payload as the pipe takes; closes in_fd when all is written
 * or the command stopped reading (EPIPE or another error). */
static void
s_write_payload(s_exec_t *x)
{
    while (x->written < x->payload_len) {
        ssize_t n = write(x->in_fd, x->payload + x->written, x->payload_len - x->written);
        if (n > 0) {
            x->written += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0 && errno == EPIPE)
            x->epipe = 1;
        break;
    }
    s_close(&x->in_fd);
}

/* Reads what the output pipe holds (at most max_reads reads), keeping bytes up
 * to the output limit and discarding the rest; closes out_fd at EOF. */
static void
s_read_output(s_exec_t *x, int max_reads)
{
    char buf[S_READ_CHUNK];
    for (int i = 0; i < max_reads && x->out_fd >= 0; i++) {
        ssize_t n = read(x->out_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            s_close(&x->out_fd);
            return;
        }
        if (!jobq_output_truncated(x->out))
            handler_append_bounded(x->out, buf, (size_t)n);
    }
}

/* Called when deadline_ms has passed: SIGTERM to the process group, then
 * SIGKILL after a grace of limit/2 (10 ms to 1 s). */
static void
s_escalate(s_exec_t *x, int64_t now_ms)
{
    if (x->kill_stage == 0 && x->soft_ms) { /* soft: SIGTERM, SIGKILL at the hard limit */
        kill(-x->pid, SIGTERM);
        x->kill_stage = 1;
        x->deadline_ms = x->limit_ms ? x->start_ms + x->limit_ms : INT64_MAX;
    } else if (x->kill_stage == 0) {
        int64_t grace = x->limit_ms / 2;
        grace = grace < S_GRACE_MIN_MS ? S_GRACE_MIN_MS : grace;
        grace = grace > S_GRACE_MAX_MS ? S_GRACE_MAX_MS : grace;
        kill(-x->pid, SIGTERM);
        x->kill_stage = 1;
        x->deadline_ms = now_ms + grace;
    } else {
        kill(-x->pid, SIGKILL);
        x->kill_stage = 2;
        x->deadline_ms = INT64_MAX;
    }
}

/* Without a pidfd: has the shell exited? Leaves it a zombie (WNOWAIT), so its
 * pid and process group id stay ours until s_reap. */
static int
s_exited_nowait(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        return errno != EINTR; /* ECHILD: someone else reaped it; stop waiting */
    return info.si_pid == pid;
}

/* Returns 1 while pid is our unreaped child (running or a zombie). If a
 * caller broke the contract and reaped it elsewhere, its pid may be reused and
 * must not be signalled. */
static int
s_still_ours(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc;
    while ((rc = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT)) < 0 &&
           errno == EINTR)
        ;
    return rc == 0;
}

/* The poll() timeout until the next deadline or tick, in ms (-1 = none). */
static int
s_poll_timeout(const s_exec_t *x, int64_t now_ms)
{
    int64_t t = -1;
    if (x->deadline_ms != INT64_MAX)
        t = x->deadline_ms > now_ms ? x->deadline_ms - now_ms : 0;
    if (t > INT_MAX)
        t = INT_MAX;
    if (x->pidfd < 0 && (t < 0 || t > S_TICK_MS))
        t = S_TICK_MS;
    return (int)t;
}

/* Feeds stdin, collects stdout and enforces the time limit until the shell
 * exits. A command's leftover background processes may keep the output pipe
 * open: the exit of the shell, not EOF, ends the wait. */
static void
s_supervise(s_exec_t *x)
{
    while (!x->exited) {
        int64_t now_ms = jobq_now_ms();
        if (now_ms >= x->deadline_ms)
            s_escalate(x, now_ms);
        struct pollfd fds[3];
        int n = 0, in_i = -1, out_i = -1, pid_i = -1;
        if (x->in_fd >= 0)
            in_i = n, fds[n++] = (struct pollfd){.fd = x->in_fd, .events = POLLOUT};
        if (x->out_fd >= 0)
            out_i = n, fds[n++] = (struct pollfd){.fd = x->out_fd, .events = POLLIN};
        if (x->pidfd >= 0)
            pid_i = n, fds[n++] = (struct pollfd){.fd = x->pidfd, .events = POLLIN};
        int rc = poll(fds, (nfds_t)n, s_poll_timeout(x, now_ms));
        if (rc < 0 && errno != EINTR) {
            LOG_WARN("poll: %s; killing the command's process group", strerror(errno));
            kill(-x->pid, SIGKILL);
            break;
        }
        if (rc < 0)
            continue; /* EINTR */
        if (in_i >= 0 && fds[in_i].revents)
            s_write_payload(x);
        if (out_i >= 0 && fds[out_i].revents)
            s_read_output(x, 4);
        if (pid_i >= 0 ? fds[pid_i].revents != 0 : s_exited_nowait(x->pid))
            x->exited = 1;
    }
}

/* Ends the attempt: SIGKILL to what is left of the process group (the shell
 * is still an unreaped zombie, so its group id cannot have been reused), takes
 * the output already in the pipe, and reaps the shell through EINTR. */
static void
s_reap(s_exec_t *x)
{
    if (s_still_ours(x->pid))
        kill(-x->pid, SIGKILL);
    s_close(&x->in_fd);
    s_read_output(x, S_DRAIN_READS_MAX);
    s_close(&x->out_fd);
    s_close(&x->pidfd);
    pid_t r;
    while ((r = waitpid(x->pid, &x->wait_status, 0)) < 0 && errno == EINTR)
        ;
    x->wait_errno = r < 0 ? errno : 0;
}

static const char *
s_signame(int sig)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *name = sigabbrev_np(sig);
    return name ? name : "?";
#else
    (void)sig;
    return "?";
#endif
}

/* Says which rlimit a failed or crashed command most likely hit: SIGXCPU (or
 * SIGKILL past the CPU limit) is certain; RLIMIT_AS and RLIMIT_NOFILE only
 * make calls fail (ENOMEM, EMFILE), so the text names them as the likely
 * cause of a failure or crash when they were set (docs/WORKERS.md). */
static void
s_limit_verdict(const s_exec_t *x, jobq_output_t *out, jobq_result_t *res)
{
    const handler_limits_t *l = x->lim;
    if (!l || res->status == JOBQ_STATUS_DONE || res->status == JOBQ_STATUS_TIMEDOUT)
        return;
    char text[JOBQ_ERROR_TEXT_MAX + 1];
    const char *prev = jobq_output_error(out);
    int st = x->wait_status;
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    if (l->cpu_s && (sig == SIGXCPU || sig == SIGKILL)) {
        snprintf(text, sizeof text, "cpu limit %u s exceeded (%s)", (unsigned)l->cpu_s, prev);
        res->status = JOBQ_STATUS_CRASHED;
        res->signal = sig;
    } else if (l->mem_mb) {
        snprintf(text, sizeof text, "memory limit %u MB (RLIMIT_AS) may have been hit: %s",
                 (unsigned)l->mem_mb, prev);
    } else if (l->files) {
        snprintf(text, sizeof text, "file limit %u (RLIMIT_NOFILE) may have been hit: %s",
                 (unsigned)l->files, prev);
    } else {
        return;
    }
    jobq_output_set_error(out, text);
}

/* Turns the wait status into the result (see handler.h for the mapping). */
static void
s_exec_verdict(const s_exec_t *x, jobq_output_t *out, jobq_result_t *res)
{
    int st = x->wait_status;
    char text[200];
    if (x->wait_errno) {
        handler_fail(out, res, 1, "lost the command's exit status: waitpid: %s",
                     strerror(x->wait_errno));
    } else if (x->kill_stage > 0 && x->soft_ms) {
        res->status = JOBQ_STATUS_TIMEDOUT;
        res->signal = WIFSIGNALED(st) ? WTERMSIG(st) : SIGTERM;
        res->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
        if (x->kill_stage == 1)
            snprintf(text, sizeof text,
                     "soft time limit of %u ms reached: sent SIGTERM to the process group",
                     (unsigned)x->soft_ms);
        else
            snprintf(text, sizeof text,
                     "hard time limit of %u ms reached: sent SIGKILL to the process group "
                     "(SIGTERM at the soft limit of %u ms)",
                     (unsigned)x->limit_ms, (unsigned)x->soft_ms);
        jobq_output_set_error(out, text);
    } else if (x->kill_stage > 0) {
        res->status = JOBQ_STATUS_TIMEDOUT;
        res->signal = WIFSIGNALED(st) ? WTERMSIG(st) : SIGTERM;
        res->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
        snprintf(text, sizeof text, "time limit of %u ms reached: sent SIG%s to the process group",
                 (unsigned)x->limit_ms, x->kill_stage == 1 ? "TERM" : "TERM, then SIGKILL,");
        jobq_output_set_error(out, text);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
        handler_fail(out, res, WEXITSTATUS(st), "command exited with code %d", WEXITSTATUS(st));
    } else if (WIFSIGNALED(st)) {
        res->status = JOBQ_STATUS_CRASHED;
        res->signal = WTERMSIG(st);
        snprintf(text, sizeof text, "command killed by signal %d (SIG%s)", WTERMSIG(st),
                 s_signame(WTERMSIG(st)));
        jobq_output_set_error(out, text);
    }
    s_limit_verdict(x, out, res);
}

/* The monotonic time in ms rounded up, so that a deadline computed from it is
 * never early (jobq_now_ms() rounds down). */
static int64_t
s_now_ms_ceil(void)
{
    return (jobq_now_us() + 999) / 1000;
}

/* Supervises a started child to the end and fills res. */
static void
s_exec_child(const handler_limits_t *lim, uint32_t soft, pid_t pid, int in_fd, int out_fd,
             const jobq_job_t *job, uint32_t time_limit_ms, jobq_output_t *out, jobq_result_t *res)
{
    int64_t start = s_now_ms_ceil();
    uint32_t first = soft ? soft : time_limit_ms;
    s_exec_t x = {.pid = pid,
                  .pidfd = (int)syscall(SYS_pidfd_open, pid, 0),
                  .in_fd = in_fd,
                  .out_fd = out_fd,
                  .payload = job->payload,
                  .payload_len = job->payload_len,
                  .limit_ms = time_limit_ms,
                  .soft_ms = soft,
                  .start_ms = start,
                  .deadline_ms = first ? start + first : INT64_MAX,
                  .lim = lim,
                  .out = out};
    fcntl(out_fd, F_SETFL, O_NONBLOCK);
    s_sigpipe_t sp;
    if (job->payload_len) {
        fcntl(in_fd, F_SETFL, O_NONBLOCK);
        s_sigpipe_block(&sp);
    } else {
        s_close(&x.in_fd); /* empty stdin: EOF at once */
    }
    s_supervise(&x);
    s_reap(&x);
    if (job->payload_len)
        s_sigpipe_restore(&sp, x.epipe);
    s_exec_verdict(&x, out, res);
}

/* Adds one rlimit for the child, capped at the hard limit we have (an
 * unprivileged process cannot raise it). cpu: SIGXCPU at v, SIGKILL at v+1. */
static void
s_add_rlimit(s_child_t *c, int res, uint64_t v, int cpu)
{
    struct rlimit cur;
    uint64_t max = cpu ? v + 1 : v;
    if (getrlimit(res, &cur) == 0 && cur.rlim_max != RLIM_INFINITY) {
        if (max > cur.rlim_max)
            max = cur.rlim_max;
        if (v > max)
            v = max;
    }
    c->lim_res[c->nlims] = res;
    c->lims[c->nlims++] = (s_rlim_t){v, max};
}

static void
s_set_rlimits(const handler_limits_t *l, s_child_t *c)
{
    if (l->mem_mb)
        s_add_rlimit(c, RLIMIT_AS, (uint64_t)l->mem_mb << 20, 0);
    if (l->cpu_s)
        s_add_rlimit(c, RLIMIT_CPU, l->cpu_s, 1);
    if (l->files)
        s_add_rlimit(c, RLIMIT_NOFILE, l->files, 0);
}

int
exec_run(const char *cmd, const handler_limits_t *lim, uint32_t soft_ms, const jobq_job_t *job,
         const char *queue, uint32_t time_limit_ms, jobq_output_t *out, jobq_result_t *res)
{
    int in[2] = {-1, -1}, outp[2] = {-1, -1};
    if (s_pipe(in) < 0 || s_pipe(outp) < 0) {
        int e = errno;
        s_close(&in[0]);
        s_close(&in[1]);
        handler_fail(out, res, 1, "cannot start the command: pipe: %s", strerror(e));
        return -1;
    }
    s_env_t vars;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)cmd, NULL};
    s_child_t c = {.stdin_fd = in[0],
                   .stdout_fd = outp[1],
                   .parent_pid = getpid(),
                   .argv = argv,
                   .envp = s_build_env(job, queue, &vars)};
    s_set_rlimits(lim, &c);
    int err = 0;
    pid_t pid = s_spawn(&c, &err);
    jobq_free((void *)c.envp);
    s_close(&in[0]);
    s_close(&outp[1]);
    if (pid < 0 || c.step != S_STEP_NONE) {
        if (pid > 0)
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        s_close(&in[1]);
        s_close(&outp[0]);
        handler_fail(out, res, 1, "cannot start the command: %s: %s",
                     pid < 0 ? "clone" : s_step_names[c.step], strerror(pid < 0 ? err : c.error));
        return -1;
    }
    s_exec_child(lim, soft_ms, pid, in[1], outp[0], job, time_limit_ms, out, res);
    return 0;
}
