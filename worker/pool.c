/*
 * worker/pool.c: the pool of workers (include/jobq/pool.h): N forked children
 * or N threads running worker_run (a local queue) or networker_run (a broker),
 * and the supervisor thread that starts, reaps, restarts and counts them.
 * The child's side (from fork to _exit) and the thread pools are in
 * worker/pool_child.c; the types both use in worker/pool_int.h.
 *
 * Worker operations on the supervisor's side (docs/WORKERS.md): a child that
 * ends "recycled" is replaced at once without backoff; a long-lived child past
 * the hard deadline it published is SIGKILLed (s_kill_overruns) and its item
 * reclaimed as timed out (a TIMEDOUT result once its attempts are used up); a
 * network worker that reported its overrun itself exits POOL_EXIT_HARD and is
 * replaced at once; a cold stop
 * of a broker pool lets the children hand their jobs back first (s_cold_due).
 *
 * Every fork happens on the supervisor thread, which lives until the last
 * child is reaped: PR_SET_PDEATHSIG fires when the thread that forked a child
 * ends, so a child can never outlive it, and no helper thread's exit kills one.
 *
 * A slot holds one worker process over its restarts:
 *
 *            s_spawn                  child ended: s_reap
 *   IDLE ------------> RUNNING ------------------------------> DONE
 *                       ^    |  (final report, exit 0; or stopping)
 *           s_spawn     |    | died (crash, kill, no report) and not stopping:
 *     at restart_at_ms  |    v  held item reclaimed, delay doubled
 *                      WAITING ------------------------------> DONE
 *                                  stop requested: s_cancel_restarts
 *
 * Invariants:
 *   1. A RUNNING slot's pid is our unreaped child; s_reap is the only place
 *      that waits for it, and it always calls jobq_queue_reclaim for a child
 *      that ended without a normal report, before the slot can run again.
 *   2. The pool has ended when no slot is RUNNING or WAITING.
 *   3. The stop level only rises (0 run, 1 finish current jobs, 2 at once); it
 *      lives in the page shared with the children, so they read it without a
 *      system call, and jobq_pool_stop touches nothing but that word and the
 *      wake pipe (async-signal-safe).
 *   4. Counters: a child's live counters sit in the shared page; its final
 *      report (through its pipe) supersedes them; a child that died without a
 *      report is counted from the page, plus the items reclaim handed back.
 */
#include "jobq/pool.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/curve.h"
#include "common/log.h"
#include "common/url.h"
#include "common/wire.h"
#include "jobq/errors.h"
#include "worker/handler.h"
#include "worker/networker.h"
#include "worker/worker.h"
#include "worker/pool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_RESTART_MIN_MS 100   /* default first restart delay */
#define S_RESTART_MAX_MS 30000 /* default largest restart delay */
#define S_RESET_AFTER_MS 10000 /* a child that lived this long was not in a crash loop */
#define S_SWEEP_MS 200         /* waitpid sweep period when pidfd_open is unavailable */
#define S_HARD_GRACE_MS 1000   /* a long-lived child past its hard limit this long is killed */
#define S_DEADLINE_POLL_MS 250 /* how often the supervisor looks for new hard deadlines */
#define S_COLD_GRACE_MS 2000   /* cold stop: a broker worker's time to hand its jobs back */

/* ---- options, creation ---------------------------------------------------- */

void
jobq_pool_opts_init(jobq_pool_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->mode = JOBQ_POOL_PROCS;
}

static int
s_check_opts(const jobq_pool_opts_t *o)
{
    if ((o->url != NULL) == (o->queue != NULL))
        return JOBQ_EINVAL;
    if ((o->fn != NULL) + (o->exec != NULL) + (o->builtin != NULL) != 1)
        return JOBQ_EINVAL;
    if (o->mode != JOBQ_POOL_PROCS && o->mode != JOBQ_POOL_THREADS)
        return JOBQ_EINVAL;
    if (o->url) {
        jobq_url_t u;
        if (jobq_url_parse(o->url, &u, NULL, 0) != JOBQ_OK)
            return JOBQ_EURL;
    }
    if (o->nqueues > WIRE_MAX_QUEUES || (o->nqueues && !o->queues))
        return JOBQ_EINVAL;
    for (size_t i = 0; i < o->nqueues; i++)
        if (!o->queues[i] || !jobq_queue_name_valid(o->queues[i], strlen(o->queues[i])))
            return JOBQ_EINVAL;
    return JOBQ_OK;
}

static unsigned
s_ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Allocates what jobq_pool_stop may touch: the wake pipe and the shared page. */
static int
s_alloc_signal_parts(jobq_pool_t *pool)
{
    if (pipe2(pool->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        return JOBQ_ESYS;
    pool->shared_len = sizeof(pool_shared_t) + pool->n * sizeof(worker_counters_t);
    void *p =
        mmap(NULL, pool->shared_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return JOBQ_ESYS;
    pool->shared = p; /* zero-filled by the kernel */
    return JOBQ_OK;
}

/* Notes whether url names a broker and copies the queues it serves. */
static void
s_copy_net(jobq_pool_t *pool, const jobq_pool_opts_t *opts)
{
    jobq_url_t u;
    if (!opts->url || jobq_url_parse(opts->url, &u, NULL, 0) != JOBQ_OK)
        return;
    pool->net = u.scheme == JOBQ_URL_TCP || u.scheme == JOBQ_URL_IPC;
    if (!pool->net)
        return;
    pool->endpoint = jobq_strdup(u.endpoint);
    pool->curve_key = opts->curve_key ? jobq_strdup(opts->curve_key) : NULL;
    pool->curve_server = opts->curve_server ? jobq_strdup(opts->curve_server) : NULL;
    pool->opts.curve_key = pool->curve_key;
    pool->opts.curve_server = pool->curve_server;
    pool->nqueues = (uint32_t)opts->nqueues;
    pool->queues = jobq_calloc(pool->nqueues + 1, sizeof *pool->queues);
    for (uint32_t i = 0; i < pool->nqueues; i++)
        pool->queues[i] = jobq_strdup(opts->queues[i]);
    pool->opts.queues = (const char *const *)pool->queues;
}

/* Checks that the CURVE key files are usable (the reason is logged). */
static int
s_check_curve(const jobq_pool_t *pool)
{
    char why[512];
    int rc = jobq_curve_check_client(pool->curve_key, pool->curve_server, why, sizeof why);
    if (rc != JOBQ_OK)
        LOG_WARN("%s", why);
    return rc;
}

static void
s_free(jobq_pool_t *pool)
{
    handler_destroy(&pool->handler);
    if (pool->own_q)
        jobq_queue_destroy(&pool->q);
    if (pool->shared)
        munmap(pool->shared, pool->shared_len);
    for (int i = 0; i < 2; i++)
        if (pool->wake[i] >= 0)
            close(pool->wake[i]);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    jobq_free(pool->slots);
    jobq_free(pool->url);
    jobq_free(pool->exec);
    jobq_free(pool->builtin);
    jobq_free(pool->label);
    jobq_free(pool->endpoint);
    jobq_free(pool->curve_key);
    jobq_free(pool->curve_server);
    for (uint32_t i = 0; i < pool->nqueues; i++)
        jobq_free(pool->queues[i]);
    jobq_free(pool->queues);
    jobq_free(pool);
}

int
jobq_pool_new(const jobq_pool_opts_t *opts, jobq_pool_t **out)
{
    if (!out)
        return JOBQ_EINVAL;
    *out = NULL;
    if (!opts)
        return JOBQ_EINVAL;
    int rc = s_check_opts(opts);
    if (rc != JOBQ_OK)
        return rc;
    jobq_pool_t *pool = jobq_calloc(1, sizeof *pool);
    pool->opts = *opts;
    pool->url = opts->url ? jobq_strdup(opts->url) : NULL;
    pool->exec = opts->exec ? jobq_strdup(opts->exec) : NULL;
    pool->builtin = opts->builtin ? jobq_strdup(opts->builtin) : NULL;
    pool->label = jobq_strdup(opts->url ? opts->url : "anonymous");
    s_copy_net(pool, opts);
    pool->q = opts->queue;
    pool->n = opts->workers ? opts->workers : s_ncpus();
    pool->wake[0] = pool->wake[1] = -1;
    pool->slots = jobq_calloc(pool->n, sizeof *pool->slots);
    for (unsigned i = 0; i < pool->n; i++)
        pool->slots[i].pidfd = pool->slots[i].report_fd = -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&pool->mu, NULL);
    pool->handler = pool_handler_new(pool);
    rc = pool->handler ? s_alloc_signal_parts(pool) : JOBQ_EINVAL;
    if (rc == JOBQ_OK && (pool->curve_key || pool->curve_server))
        rc = s_check_curve(pool); /* fail now, not in a restart loop of every worker */
    if (rc != JOBQ_OK) {
        s_free(pool);
        return rc;
    }
    *out = pool;
    return JOBQ_OK;
}

/* ---- stopping (async-signal-safe) ----------------------------------------- */

void
jobq_pool_stop(jobq_pool_t *pool, int immediate)
{
    if (!pool)
        return;
    int saved = errno;
    int want = immediate ? 2 : 1;
    int cur = atomic_load(&pool->shared->stop);
    while (cur < want && !atomic_compare_exchange_weak(&pool->shared->stop, &cur, want))
        ;
    ssize_t w = write(pool->wake[1], "s", 1); /* EAGAIN: a wake-up is pending anyway */
    (void)w;
    errno = saved;
}

static int
s_stop_level(const jobq_pool_t *pool)
{
    return atomic_load(&pool->shared->stop);
}

/* ---- the supervisor: slots ------------------------------------------------ */

static int
s_spawn(jobq_pool_t *pool, unsigned i)
{
    pool_slot_t *s = &pool->slots[i];
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    memset(&pool->shared->counters[i], 0, sizeof pool->shared->counters[i]);
    fflush(NULL); /* or the child would inherit, and write again, unflushed output */
    pid_t pid = fork();
    if (pid < 0) {
        LOG_WARN("fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        pool_child_main(pool, i, fds[1]);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    s->report_fd = fds[0];
    s->report_got = 0;
    s->killed_limit_ms = 0;
    s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (s->pidfd >= 0)
        fcntl(s->pidfd, F_SETFD, FD_CLOEXEC);
    s->started_ms = jobq_now_ms();
    s->state = POOL_RUNNING;
    pthread_mutex_lock(&pool->mu);
    s->pid = pid;
    pthread_mutex_unlock(&pool->mu);
    LOG_DEBUG("worker %d started in slot %u", (int)pid, i);
    return 0;
}

/* Puts slot i in WAITING with the next restart delay (doubling, reset when the
 * last child lived long enough or finished some job). */
static void
s_schedule_restart(jobq_pool_t *pool, unsigned i, uint64_t jobs)
{
    pool_slot_t *s = &pool->slots[i];
    uint32_t min = pool->opts.restart_min_ms ? pool->opts.restart_min_ms : S_RESTART_MIN_MS;
    uint32_t max = pool->opts.restart_max_ms ? pool->opts.restart_max_ms : S_RESTART_MAX_MS;
    int64_t now = jobq_now_ms();
    if (s->delay_ms == 0 || jobs > 0 || now - s->started_ms >= S_RESET_AFTER_MS)
        s->delay_ms = min;
    s->restart_at_ms = now + s->delay_ms;
    s->delay_ms = s->delay_ms >= max / 2 ? max : s->delay_ms * 2;
    s->state = POOL_WAITING;
}

/* Reads what the child wrote on its report pipe; closes it at EOF. */
static void
s_read_report(pool_slot_t *s)
{
    char excess[64];
    while (s->report_fd >= 0) {
        ssize_t n;
        if (s->report_got < sizeof s->report)
            n = read(s->report_fd, (char *)&s->report + s->report_got,
                     sizeof s->report - s->report_got);
        else
            n = read(s->report_fd, excess, sizeof excess); /* not ours to keep */
        if (n > 0) {
            if (s->report_got < sizeof s->report)
                s->report_got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        close(s->report_fd); /* EOF or error */
        s->report_fd = -1;
    }
}

static void
s_add_counts(jobq_pool_t *pool, uint64_t done, uint64_t failed, uint64_t crashed, uint64_t busy_us,
             uint64_t dropped, uint64_t stale, uint64_t rss_kb)
{
    jobq_pool_report_t *r = &pool->report;
    r->stale += stale;
    r->done += done;
    r->failed += failed;
    r->crashed += crashed;
    r->busy_us += busy_us;
    r->results_dropped += dropped;
    if (rss_kb > r->max_rss_kb)
        r->max_rss_kb = rss_kb;
}

void
pool_add_counters(jobq_pool_t *pool, const worker_counters_t *c, uint64_t rss_kb)
{
    s_add_counts(pool, atomic_load(&c->done), atomic_load(&c->failed), atomic_load(&c->crashed),
                 atomic_load(&c->busy_us), atomic_load(&c->dropped), atomic_load(&c->stale),
                 rss_kb);
}

/* How a child ended, from waitid(). */
typedef struct s_end {
    int known; /* 0: someone else reaped it (SIGCHLD ignored?): nothing is known */
    int code;  /* exit code when it exited */
    int sig;   /* the signal that killed it, else 0 */
} s_end_t;

/* Counts slot i's ended child pid and decides what the slot does next
 * (invariants 1 and 4). A child that ended without a normal report has its
 * held item handed back while it is still a zombie, with its signal, before
 * the lazy reclaim of other processes (which cannot know the signal) may. */
static void
s_account(jobq_pool_t *pool, unsigned i, pid_t pid, const s_end_t *end)
{
    pool_slot_t *s = &pool->slots[i];
    int reported = s->report_got == sizeof s->report && s->report.magic == WORKER_REPORT_MAGIC &&
                   s->report.pid == pid;
    int normal = reported && end->known && !end->sig && end->code == 0;
    const worker_counters_t *c = &pool->shared->counters[i];
    uint64_t jobs = atomic_load(&c->done) + atomic_load(&c->failed) + atomic_load(&c->crashed);
    /* killed at a hard time limit: its job is TIMEDOUT, not CRASHED (D23) */
    int hard = s->killed_limit_ms && end->known && end->sig == SIGKILL;
    /* a network worker that reported its attempt TIMEDOUT and ended */
    int hard_exit = reported && end->known && !end->sig && end->code == POOL_EXIT_HARD;
    int back = normal || !pool->q ? 0
               : hard             ? jobq_queue_reclaim_timedout(pool->q, pid, s->killed_limit_ms)
                                  : jobq_queue_reclaim(pool->q, pid, end->sig);
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t r;
    do
        r = wait4(pid, NULL, 0, &ru); /* reaps it; max RSS of the dead */
    while (r < 0 && errno == EINTR);
    uint64_t rss = r == pid ? (uint64_t)ru.ru_maxrss : 0;
    if (reported) {
        const worker_report_t *rep = &s->report;
        s_add_counts(pool, rep->done, rep->failed, rep->crashed, rep->busy_us, rep->dropped,
                     rep->stale, rep->max_rss_kb > rss ? rep->max_rss_kb : rss);
        pool->report.reports++;
    } else {
        pool_add_counters(pool, c, rss);
        pool->report.deaths++;
    }
    if (normal && pool->net && s->report.end == WORKER_END_SENTINEL) {
        /* The broker sends stop-workers to every connected worker of the
         * queues, and all of ours serve the same ones: a sentinel to one is a
         * stop for all, including a recycled replacement that connected just
         * after it was sent (it would otherwise never get one). */
        int cur = 0;
        atomic_compare_exchange_strong(&pool->shared->stop, &cur, 1);
    }
    if (normal && s->report.end == WORKER_END_RECYCLE && s_stop_level(pool) == 0) {
        LOG_INFO("worker %d recycled after %llu job(s)", (int)pid, (unsigned long long)jobs);
        pool->report.recycled++;
        s->recycled = 1; /* s_restart_due starts the next one now, without backoff */
        s->restart_at_ms = jobq_now_ms();
        s->state = POOL_WAITING;
        return;
    }
    if (normal) {
        s->state = POOL_DONE;
        return;
    }
    if (hard_exit) { /* counted from its report; replaced at once unless stopping */
        LOG_NOTICE("worker %d ended after a hard time limit: replacing it", (int)pid);
        s->restart_at_ms = jobq_now_ms();
        s->state = s_stop_level(pool) == 0 ? POOL_WAITING : POOL_DONE;
        return;
    }
    /* The attempt it held crashed (or timed out, when we killed it for that),
     * whoever handed the item back (another process's lazy reclaim may have
     * been first, and then reported it CRASHED). */
    uint64_t held = atomic_load(&c->holding);
    uint64_t lost = back > 0 && (uint64_t)back > held ? (uint64_t)back : held;
    if (hard)
        pool->report.failed += lost;
    else
        pool->report.crashed += lost;
    LOG_NOTICE("worker %d ended (%s %d%s); %d job(s) handed back", (int)pid,
               end->sig ? "signal" : "exit", end->sig ? end->sig : end->code,
               hard ? ", hard time limit" : "", back);
    if (s_stop_level(pool) == 0)
        s_schedule_restart(pool, i, hard ? jobs + 1 : jobs); /* a timeout is no crash loop */
    else
        s->state = POOL_DONE;
}

/* If slot i's child has ended (nohang), or once it ends, accounts for it and
 * reaps it. The pid is withdrawn from jobq_pool_pids first, so that list
 * never holds a pid that may already belong to another process. */
static void
s_reap(jobq_pool_t *pool, unsigned i, int nohang)
{
    pool_slot_t *s = &pool->slots[i];
    pid_t pid = s->pid;
    siginfo_t si;
    int r;
    memset(&si, 0, sizeof si);
    do /* WNOWAIT: it stays a zombie (its pid reserved) until s_account reaps it */
        r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | (nohang ? WNOHANG : 0));
    while (r < 0 && errno == EINTR);
    if (r == 0 && si.si_pid == 0)
        return; /* still running */
    s_end_t end = {0, -1, 0};
    if (r == 0) {
        end.known = 1;
        if (si.si_code == CLD_EXITED)
            end.code = si.si_status;
        else
            end.sig = si.si_status;
    }
    pthread_mutex_lock(&pool->mu);
    s->pid = 0;
    pthread_mutex_unlock(&pool->mu);
    s_read_report(s); /* what it wrote before it ended is still in the pipe */
    if (s->report_fd >= 0) {
        close(s->report_fd);
        s->report_fd = -1;
    }
    if (s->pidfd >= 0) {
        close(s->pidfd);
        s->pidfd = -1;
    }
    s_account(pool, i, pid, &end);
}

/* ---- the supervisor: loops ------------------------------------------------ */

static int
s_any_live(const jobq_pool_t *pool)
{
    for (unsigned i = 0; i < pool->n; i++)
        if (pool->slots[i].state == POOL_RUNNING || pool->slots[i].state == POOL_WAITING)
            return 1;
    return 0;
}

void
pool_launched(jobq_pool_t *pool)
{
    pthread_mutex_lock(&pool->mu);
    pool->launched = 1;
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}

/* SIGKILLs every running child. */
static void
s_kill_all(jobq_pool_t *pool)
{
    for (unsigned i = 0; i < pool->n; i++)
        if (pool->slots[i].state == POOL_RUNNING)
            kill(pool->slots[i].pid, SIGKILL);
}

/* Applies the stop level: 1 cancels pending restarts, 2 also kills children:
 * at once for a local queue (reclaim hands their items back), after
 * S_COLD_GRACE_MS for a broker, whose workers first hand their jobs back
 * (networker_cfg_t.on_cold) and exit by themselves. */
static void
s_apply_stop(jobq_pool_t *pool, int *applied)
{
    int level = s_stop_level(pool);
    if (level <= *applied)
        return;
    for (unsigned i = 0; i < pool->n; i++)
        if (pool->slots[i].state == POOL_WAITING)
            pool->slots[i].state = POOL_DONE;
    if (level >= 2 && pool->net)
        pool->cold_kill_ms = jobq_now_ms() + S_COLD_GRACE_MS;
    else if (level >= 2)
        s_kill_all(pool);
    *applied = level;
}

/* A broker pool's cold stop: kills what is left once the grace is over.
 * Returns the poll timeout until then (-1: none). */
static int
s_cold_due(jobq_pool_t *pool)
{
    if (!pool->cold_kill_ms)
        return -1;
    int64_t left = pool->cold_kill_ms - jobq_now_ms();
    if (left > 0)
        return (int)left;
    s_kill_all(pool);
    pool->cold_kill_ms = 0;
    return -1;
}

/* 1 when the supervisor enforces hard time limits by killing the long-lived
 * child: a C or built-in handler, not fork-per-job (those kill the job's own
 * child) and not --exec (the handler kills the command's process group). */
static int
s_kills_overruns(const jobq_pool_t *pool)
{
    return pool->opts.mode == JOBQ_POOL_PROCS && !pool->exec && !pool->opts.fork_per_job;
}

/* Local queue: stops child pid (SIGSTOP, waiting until it is stopped) and, if
 * it is still inside the overrun attempt (its deadline in c is still set: it
 * makes no queue call there), hands its item back as timed out while it
 * cannot touch it, so no other process's lazy reclaim of the dead holder can
 * report it CRASHED first. Returns 1 when it should be killed; 0 when it
 * finished meanwhile (it is let go on). */
static int
s_reclaim_before_kill(jobq_pool_t *pool, pid_t pid, worker_counters_t *c, uint32_t limit)
{
    if (kill(pid, SIGSTOP) != 0)
        return 1;
    siginfo_t si;
    int r;
    do {
        memset(&si, 0, sizeof si);
        r = waitid(P_PID, (id_t)pid, &si, WSTOPPED | WEXITED | WNOWAIT);
    } while (r < 0 && errno == EINTR);
    if (r != 0 || si.si_code != CLD_STOPPED)
        return 1; /* it ended on its own: the usual reclaim */
    if (atomic_load_explicit(&c->hard_deadline_ms, memory_order_acquire) == 0) {
        kill(pid, SIGCONT);
        return 0;
    }
    if (jobq_queue_reclaim_timedout(pool->q, pid, limit) < 0)
        LOG_WARN("worker %d: its job could not be handed back before the kill", (int)pid);
    return 1;
}

/* SIGKILLs each running child past its published hard deadline (plus a grace,
 * so that a cooperative handler's own TIMEDOUT wins); the item goes back
 * through the usual reclaim. Returns the poll timeout until the next
 * deadline, at most S_DEADLINE_POLL_MS (children publish new deadlines
 * without waking us), or -1 when the pool does not kill overruns. */
static int
s_kill_overruns(jobq_pool_t *pool)
{
    if (!s_kills_overruns(pool))
        return -1;
    int64_t now = jobq_now_ms();
    int timeout = -1;
    for (unsigned i = 0; i < pool->n; i++) {
        pool_slot_t *s = &pool->slots[i];
        worker_counters_t *c = &pool->shared->counters[i];
        int64_t d = atomic_load_explicit(&c->hard_deadline_ms, memory_order_acquire);
        if (s->state != POOL_RUNNING || d == 0)
            continue;
        d += S_HARD_GRACE_MS;
        if (now >= d) {
            uint32_t limit = atomic_load_explicit(&c->hard_limit_ms, memory_order_relaxed);
            LOG_NOTICE("worker %d: hard time limit passed: killing it (its job times out)",
                       (int)s->pid);
            s->killed_limit_ms = limit ? limit : 1;
            if (pool->q && !s_reclaim_before_kill(pool, s->pid, c, s->killed_limit_ms)) {
                s->killed_limit_ms = 0;
                continue;
            }
            kill(s->pid, SIGKILL);
            atomic_store(&c->hard_deadline_ms, 0);
            continue;
        }
        if (timeout < 0 || d - now < timeout)
            timeout = (int)(d - now);
    }
    return timeout < 0 || timeout > S_DEADLINE_POLL_MS ? S_DEADLINE_POLL_MS : timeout;
}

/* Starts the slots whose restart time has come; returns the poll timeout
 * until the next one (-1: none). */
static int
s_restart_due(jobq_pool_t *pool)
{
    int64_t now = jobq_now_ms();
    int timeout = -1;
    for (unsigned i = 0; i < pool->n; i++) {
        pool_slot_t *s = &pool->slots[i];
        if (s->state != POOL_WAITING)
            continue;
        if (s->restart_at_ms <= now) {
            int recycled = s->recycled;
            s->recycled = 0;
            if (s_spawn(pool, i) == 0)
                pool->report.restarts += recycled ? 0 : 1;
            else
                s_schedule_restart(pool, i, 0);
            continue;
        }
        int64_t left = s->restart_at_ms - now;
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    return timeout;
}

/* Polls the wake pipe and every running child's pidfd and report pipe once. */
static void
s_poll_once(jobq_pool_t *pool, int timeout)
{
    struct pollfd fds[1 + 2 * pool->n];
    unsigned owner[1 + 2 * pool->n];
    nfds_t nfds = 0;
    fds[nfds++] = (struct pollfd){.fd = pool->wake[0], .events = POLLIN};
    int sweep = 0;
    for (unsigned i = 0; i < pool->n; i++) {
        pool_slot_t *s = &pool->slots[i];
        if (s->state != POOL_RUNNING)
            continue;
        if (s->pidfd >= 0) {
            owner[nfds] = i;
            fds[nfds++] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
        } else {
            sweep = 1;
        }
        if (s->report_fd >= 0) {
            owner[nfds] = i;
            fds[nfds++] = (struct pollfd){.fd = s->report_fd, .events = POLLIN};
        }
    }
    if (sweep && (timeout < 0 || timeout > S_SWEEP_MS))
        timeout = S_SWEEP_MS;
    if (poll(fds, nfds, timeout) < 0 && errno != EINTR)
        LOG_WARN("poll: %s", strerror(errno));
    if (fds[0].revents) {
        char buf[64];
        while (read(pool->wake[0], buf, sizeof buf) > 0)
            ;
    }
    for (nfds_t k = 1; k < nfds; k++) {
        pool_slot_t *s = &pool->slots[owner[k]];
        if (!fds[k].revents || s->state != POOL_RUNNING)
            continue;
        if (fds[k].fd == s->report_fd)
            s_read_report(s);
        else if (fds[k].fd == s->pidfd)
            s_reap(pool, owner[k], 0);
    }
    for (unsigned i = 0; sweep && i < pool->n; i++)
        if (pool->slots[i].state == POOL_RUNNING && pool->slots[i].pidfd < 0)
            s_reap(pool, i, 1);
}

static void
s_run_procs(jobq_pool_t *pool)
{
    for (unsigned i = 0; i < pool->n; i++)
        if (s_spawn(pool, i) != 0)
            s_schedule_restart(pool, i, 0);
    pool_launched(pool);
    int applied = 0;
    while (s_any_live(pool)) {
        s_apply_stop(pool, &applied);
        int timeout = s_restart_due(pool);
        if (!s_any_live(pool))
            break;
        int kill_in = s_kill_overruns(pool);
        if (kill_in >= 0 && (timeout < 0 || kill_in < timeout))
            timeout = kill_in;
        int cold_in = s_cold_due(pool);
        if (cold_in >= 0 && (timeout < 0 || cold_in < timeout))
            timeout = cold_in;
        s_poll_once(pool, timeout);
    }
}

static void *
s_supervise(void *arg)
{
    jobq_pool_t *pool = arg;
    if (pool->opts.mode == JOBQ_POOL_THREADS)
        pool_run_threads(pool);
    else
        s_run_procs(pool);
    pthread_mutex_lock(&pool->mu);
    pool->report.wall_us = (uint64_t)(jobq_now_us() - pool->start_us);
    pool->finished = 1;
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

/* ---- start, wait, destroy ------------------------------------------------- */

int
jobq_pool_start(jobq_pool_t *pool)
{
    if (!pool)
        return JOBQ_EINVAL;
    if (pool->started)
        return JOBQ_ESTATE;
    if (pool->url && !pool->net) {
        int rc = jobq_queue_open(pool->url, NULL, &pool->q);
        if (rc != JOBQ_OK)
            return rc;
        pool->own_q = 1;
    }
    pool->self_pid = getpid();
    pool->report.mode = pool->opts.mode;
    pool->report.workers = pool->n;
    pool->start_us = jobq_now_us();
    sigset_t all;
    sigfillset(&all);
    /* The supervisor thread takes no signal: the application's handlers run
     * on its own threads. */
    pthread_sigmask(SIG_SETMASK, &all, &pool->caller_mask);
    int rc = pthread_create(&pool->thread, NULL, s_supervise, pool);
    pthread_sigmask(SIG_SETMASK, &pool->caller_mask, NULL);
    if (rc != 0)
        return JOBQ_ESYS;
    pool->started = 1;
    pthread_mutex_lock(&pool->mu);
    while (!pool->launched)
        pthread_cond_wait(&pool->cv, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
    return JOBQ_OK;
}

int
jobq_pool_wait(jobq_pool_t *pool, int64_t timeout_ms, jobq_pool_report_t *report)
{
    if (!pool)
        return JOBQ_EINVAL;
    if (!pool->started)
        return JOBQ_ESTATE;
    struct timespec ts;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    ts.tv_sec = (time_t)(deadline / 1000);
    ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
    pthread_mutex_lock(&pool->mu);
    while (!pool->finished) {
        if (timeout_ms < 0)
            pthread_cond_wait(&pool->cv, &pool->mu);
        else if (pthread_cond_timedwait(&pool->cv, &pool->mu, &ts) == ETIMEDOUT)
            break;
    }
    int finished = pool->finished;
    pthread_mutex_unlock(&pool->mu);
    if (!finished)
        return JOBQ_ETIMEDOUT;
    if (!pool->joined) {
        pthread_join(pool->thread, NULL);
        pool->joined = 1;
    }
    if (report)
        *report = pool->report;
    return JOBQ_OK;
}

size_t
jobq_pool_pids(jobq_pool_t *pool, pid_t *pids, size_t max)
{
    size_t n = 0;
    if (!pool)
        return 0;
    pthread_mutex_lock(&pool->mu);
    for (unsigned i = 0; i < pool->n; i++) {
        if (pool->slots[i].pid <= 0)
            continue;
        if (pids && n < max)
            pids[n] = pool->slots[i].pid;
        n++;
    }
    pthread_mutex_unlock(&pool->mu);
    return n;
}

void
jobq_pool_destroy(jobq_pool_t **pool_p)
{
    if (!pool_p || !*pool_p)
        return;
    jobq_pool_t *pool = *pool_p;
    if (pool->started && !pool->joined) {
        jobq_pool_stop(pool, 1);
        jobq_pool_wait(pool, -1, NULL);
    }
    s_free(pool);
    *pool_p = NULL;
}

/* ---- the report ----------------------------------------------------------- */

int
jobq_pool_report_format(const jobq_pool_report_t *r, int json, char *buf, size_t len)
{
    const char *mode = r->mode == JOBQ_POOL_THREADS ? "threads" : "procs";
    unsigned long long jobs = (unsigned long long)(r->done + r->failed + r->crashed);
    if (json)
        return snprintf(buf, len,
                        "{\"mode\":\"%s\",\"workers\":%u,\"jobs\":%llu,\"done\":%llu,"
                        "\"failed\":%llu,\"crashed\":%llu,\"busy_us\":%llu,\"wall_us\":%llu,"
                        "\"max_rss_kb\":%llu,\"results_dropped\":%llu,\"reports\":%u,"
                        "\"deaths\":%u,\"restarts\":%u,\"recycled\":%u,\"stale\":%llu}",
                        mode, r->workers, jobs, (unsigned long long)r->done,
                        (unsigned long long)r->failed, (unsigned long long)r->crashed,
                        (unsigned long long)r->busy_us, (unsigned long long)r->wall_us,
                        (unsigned long long)r->max_rss_kb, (unsigned long long)r->results_dropped,
                        r->reports, r->deaths, r->restarts, r->recycled,
                        (unsigned long long)r->stale);
    double wall_s = (double)r->wall_us / 1e6, busy_s = (double)r->busy_us / 1e6;
    double util = r->wall_us && r->workers ? 100.0 * busy_s / (wall_s * r->workers) : 0.0;
    char stale[96] = "";
    if (r->stale)
        snprintf(stale, sizeof stale, "; %llu stale results", (unsigned long long)r->stale);
    if (r->recycled)
        snprintf(stale + strlen(stale), sizeof stale - strlen(stale), "; %u recycled", r->recycled);
    return snprintf(buf, len,
                    "pool: %u %s, %llu jobs: %llu done, %llu failed, %llu crashed; "
                    "busy %.3f s in %.3f s (%.0f%%); max RSS %.1f MiB; %u deaths, %u restarts%s%s",
                    r->workers, mode, jobs, (unsigned long long)r->done,
                    (unsigned long long)r->failed, (unsigned long long)r->crashed, busy_s, wall_s,
                    util, (double)r->max_rss_kb / 1024.0, r->deaths, r->restarts, stale,
                    r->results_dropped ? "; some results dropped" : "");
}
