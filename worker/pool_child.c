/*
 * worker/pool_child.c: the forked worker's side of a pool (worker/pool.c):
 * from fork to _exit. The child dies with the supervisor thread
 * (PR_SET_PDEATHSIG plus a getppid check), runs in its own process group,
 * restores the caller's signal mask, closes what it inherited from the
 * supervisor, runs worker_run or networker_run (with recycling and, on a
 * broker, the cold-stop hand-back), writes its final report in one write()
 * and _exits. Also the thread pools (pool_run_threads), which share the
 * handler and network-worker set-up.
 */
#include "common/alloc.h"
#include "common/log.h"
#include "jobq/errors.h"
#include "worker/pool_int.h"

#include <stdio.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

handler_t *
pool_handler_new(const jobq_pool_t *pool)
{
    handler_t *h;
    if (pool->builtin)
        h = handler_new_builtin(pool->builtin);
    else if (pool->exec)
        h = handler_new_exec(pool->exec);
    else
        h = handler_new_callback(pool->opts.fn, pool->opts.fn_arg);
    const jobq_pool_opts_t *o = &pool->opts;
    handler_limits_t lim = {.soft_ms = o->soft_time_limit_ms,
                            .mem_mb = o->limit_mem_mb,
                            .cpu_s = o->limit_cpu_s,
                            .files = o->limit_files,
                            .fork_per_job = o->fork_per_job};
    if (h)
        handler_set_limits(h, &lim);
    return h;
}

/* When a forked child ends to be replaced (threads are never recycled). */
static worker_recycle_t
s_recycle(const jobq_pool_t *pool)
{
    worker_recycle_t r = {0, 0};
    if (pool->opts.mode == JOBQ_POOL_PROCS) {
        r.max_jobs = pool->opts.max_jobs_per_child;
        r.max_rss_kb = (uint64_t)pool->opts.max_memory_per_child_mb * 1024;
    }
    return r;
}

/* Closes, in a new child, the supervisor's descriptors it inherited. */
static void
s_child_close_inherited(jobq_pool_t *pool)
{
    close(pool->wake[0]);
    close(pool->wake[1]);
    for (unsigned j = 0; j < pool->n; j++) {
        if (pool->slots[j].state != POOL_RUNNING)
            continue;
        if (pool->slots[j].pidfd >= 0)
            close(pool->slots[j].pidfd);
        if (pool->slots[j].report_fd >= 0)
            close(pool->slots[j].report_fd);
    }
}

/* The configuration of network worker i (slot or thread index). */
void
pool_net_cfg(jobq_pool_t *pool, unsigned i, handler_t *h, char *name, size_t len,
             networker_cfg_t *cfg)
{
    snprintf(name, len, "worker-%d-%u", (int)getpid(), i);
    *cfg = (networker_cfg_t){
        .endpoint = pool->endpoint,
        .queues = (const char *const *)pool->queues,
        .nqueues = pool->nqueues,
        .prefetch = pool->opts.prefetch,
        .hb_ms = pool->opts.heartbeat_ms,
        .name = name,
        .handler = h,
        .time_limit_ms = pool->opts.time_limit_ms,
        .poll_ms = pool->opts.poll_ms ? pool->opts.poll_ms : POOL_POLL_MS,
        .stop = &pool->shared->stop,
        .counters = &pool->shared->counters[i],
        .recycle = s_recycle(pool),
        .curve_key = pool->curve_key,
        .curve_server = pool->curve_server,
    };
}

/* What a forked network worker's cold stop needs (s_child_cold). */
typedef struct s_cold {
    const worker_counters_t *counters;
    int report_fd;
} s_cold_t;

/* The cold stop of a forked network worker, once it handed its jobs back:
 * the final report, then _exit without joining the running handler. */
static _Noreturn void
s_child_cold(void *arg)
{
    const s_cold_t *c = arg;
    worker_report_t r;
    worker_report_fill(&r, c->counters, WORKER_END_STOPPED);
    ssize_t w = write(c->report_fd, &r, sizeof r);
    (void)w;
    fflush(stdout);
    fflush(stderr);
    _exit(0);
}

/* A forked network worker's end after it reported its running attempt
 * TIMEDOUT at the hard limit: the final report, then _exit with
 * POOL_EXIT_HARD (the supervisor replaces it) without joining the handler. */
static _Noreturn void
s_child_hard(void *arg)
{
    const s_cold_t *c = arg;
    worker_report_t r;
    worker_report_fill(&r, c->counters, WORKER_END_STOPPED);
    ssize_t w = write(c->report_fd, &r, sizeof r);
    (void)w;
    fflush(stdout);
    fflush(stderr);
    _exit(POOL_EXIT_HARD);
}

/* A forked network worker: its own connection (a ZeroMQ context created
 * after the fork), the loop, the report, exit. */
static _Noreturn void
s_child_net(jobq_pool_t *pool, unsigned i, int report_fd)
{
    networker_cfg_t cfg;
    char name[64];
    pool_net_cfg(pool, i, pool->handler, name, sizeof name, &cfg);
    s_cold_t cold = {cfg.counters, report_fd};
    cfg.on_cold = s_child_cold;
    cfg.on_cold_arg = &cold;
    if (!pool->exec && !pool->opts.fork_per_job) { /* its handler cannot be stopped */
        cfg.on_hard = s_child_hard;
        cfg.on_hard_arg = &cold;
    }
    worker_end end = networker_run(&cfg);
    worker_report_t r;
    worker_report_fill(&r, cfg.counters, end);
    ssize_t w = write(report_fd, &r, sizeof r);
    (void)w;
    fflush(stdout);
    fflush(stderr);
    _exit(end == WORKER_END_ERROR ? POOL_EXIT_ERROR : 0);
}

_Noreturn void
pool_child_main(jobq_pool_t *pool, unsigned i, int report_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != pool->self_pid)
        _exit(POOL_EXIT_ORPHAN); /* the supervisor died before prctl took effect */
    setpgid(0, 0);               /* a terminal's Ctrl-C is the supervisor's to handle */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGINT, &dfl, NULL); /* the binary's handlers are the supervisor's */
    sigaction(SIGTERM, &dfl, NULL);
    pthread_sigmask(SIG_SETMASK, &pool->caller_mask, NULL);
    s_child_close_inherited(pool);

    if (pool->net)
        s_child_net(pool, i, report_fd);
    jobq_queue_t *q = pool->q;
    if (pool->url) {
        int rc = jobq_queue_open(pool->url, NULL, &q);
        if (rc != JOBQ_OK) {
            LOG_ERR("worker %d: cannot open %s: %s", (int)getpid(), pool->url, jobq_strerror(rc));
            _exit(POOL_EXIT_OPEN);
        }
    }
    worker_cfg_t cfg = {
        .q = q,
        .handler = pool->handler,
        .queue_label = pool->label,
        .time_limit_ms = pool->opts.time_limit_ms,
        .poll_ms = pool->opts.poll_ms ? pool->opts.poll_ms : POOL_POLL_MS,
        .result_timeout_ms = pool->opts.result_timeout_ms,
        .stop = &pool->shared->stop,
        .counters = &pool->shared->counters[i],
        .recycle = s_recycle(pool),
    };
    worker_end end = worker_run(&cfg);
    worker_report_t r;
    worker_report_fill(&r, cfg.counters, end);
    ssize_t w = write(report_fd, &r, sizeof r);
    (void)w; /* a missing report makes the supervisor count from the shared page */
    if (pool->url)
        jobq_queue_destroy(&q);
    fflush(stdout); /* what a callback printed; _exit skips the parent's atexit work */
    fflush(stderr);
    _exit(end == WORKER_END_ERROR ? POOL_EXIT_ERROR : 0);
}

/* ---- thread pools ---------------------------------------------------------- */

typedef struct s_thread_arg {
    jobq_pool_t *pool;
    unsigned i;
    handler_t *handler;
} s_thread_arg_t;

static void *
s_thread_main(void *arg)
{
    s_thread_arg_t *a = arg;
    jobq_pool_t *pool = a->pool;
    if (pool->net) {
        networker_cfg_t ncfg;
        char name[64];
        pool_net_cfg(pool, a->i, a->handler, name, sizeof name, &ncfg);
        networker_run(&ncfg);
        return NULL;
    }
    worker_cfg_t cfg = {
        .q = pool->q,
        .handler = a->handler,
        .queue_label = pool->label,
        .time_limit_ms = pool->opts.time_limit_ms,
        .poll_ms = pool->opts.poll_ms ? pool->opts.poll_ms : POOL_POLL_MS,
        .result_timeout_ms = pool->opts.result_timeout_ms,
        .stop = &pool->shared->stop,
        .counters = &pool->shared->counters[a->i],
    };
    worker_run(&cfg);
    return NULL;
}

void
pool_run_threads(jobq_pool_t *pool)
{
    pthread_t *th = jobq_calloc(pool->n, sizeof *th);
    s_thread_arg_t *args = jobq_calloc(pool->n, sizeof *args);
    unsigned started = 0;
    sigset_t all;
    pthread_sigmask(SIG_SETMASK, &pool->caller_mask, &all); /* workers get the caller's mask */
    for (unsigned i = 0; i < pool->n; i++) {
        args[i] = (s_thread_arg_t){pool, i, pool_handler_new(pool)};
        if (pthread_create(&th[started], NULL, s_thread_main, &args[i]) != 0) {
            LOG_WARN("pthread_create failed: %u of %u worker threads", started, pool->n);
            handler_destroy(&args[i].handler);
            break;
        }
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    pool_launched(pool);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        handler_destroy(&args[i].handler);
        pool_add_counters(pool, &pool->shared->counters[i], 0);
        pool->report.reports++;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        pool->report.max_rss_kb = (uint64_t)ru.ru_maxrss;
    jobq_free(th);
    jobq_free(args);
}
