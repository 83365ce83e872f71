/*
 * jobq/pool.h: a pool of workers serving a local queue (shm://, mq:// or an
 * anonymous queue) or a jobq broker (tcp://, ipc://), as forked processes or
 * as threads.
 *
 * Each worker of a local queue loops: take an item, run the handler (a C
 * callback, a command per job or a built-in), put the result on the queue's
 * results channel, task_done, repeat, until it takes a sentinel, the queue is
 * closed and drained, or the pool is stopped. Each worker of a broker holds
 * its own connection: it announces its queues and credit (prefetch), runs the
 * jobs the broker delivers, reports each result, keeps heartbeats and leases
 * alive while a handler runs, reconnects with backoff when the broker goes
 * away, and ends after a sentinel (jobq_producer_stop_workers) with a final
 * report to the broker, or when the pool is stopped.
 *
 * A forked pool is supervised by a thread that jobq_pool_start creates (all
 * forks happen on that thread):
 *   - children die with the supervisor (PR_SET_PDEATHSIG plus a getppid check);
 *   - every child is reaped (no zombies);
 *   - a child that dies (crash, kill, abnormal exit) has its held item handed
 *     back (local queues: jobq_queue_reclaim, run again or reported CRASHED
 *     with the signal; a broker finds the dead worker by its heartbeats and
 *     hands its jobs out again) and is restarted after a delay that doubles on
 *     each quick death (restart_min_ms up to restart_max_ms), so a crash loop
 *     never spins;
 *   - a long-lived child running a C or built-in handler past its hard time
 *     limit is ended and replaced, and that attempt counts as failed, not
 *     crashed: on a local queue the supervisor SIGKILLs it 1 s past the limit
 *     and reclaims its item as timed out (jobq_queue_reclaim_timedout); on a
 *     broker the child reports the attempt TIMEDOUT itself and exits;
 *   - each child sends a final report (counts, busy time, max RSS) through a
 *     pipe, and the pool adds them up.
 * Children run in their own process group, so a terminal's Ctrl-C reaches only
 * the supervisor's process, which decides (jobq_pool_stop) what they do.
 *
 * Lifecycle (czmq style):
 *
 *   jobq_pool_new --> jobq_pool_start --> [ sentinels | jobq_pool_stop ]
 *        --> jobq_pool_wait (report) --> jobq_pool_destroy
 *
 * The library installs no signal handler. jobq_pool_stop is async-signal-safe,
 * so an application's own SIGTERM/SIGINT handler may call it.
 *
 * Thread pools: a handler that crashes the process (the `crash` built-in)
 * takes the whole process down; use a forked pool for isolation. An immediate
 * stop cannot interrupt a thread's running handler: it only makes the
 * threads give up waiting for room on the results channel.
 */
#ifndef JOBQ_POOL_H
#define JOBQ_POOL_H

#include "jobq/queue.h"
#include "jobq/worker.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jobq_pool jobq_pool_t;

typedef enum jobq_pool_mode {
    JOBQ_POOL_PROCS = 0,  /* forked worker processes (default) */
    JOBQ_POOL_THREADS = 1 /* threads of the calling process */
} jobq_pool_mode;

/* What the pool serves and how. Exactly one of url / queue, and exactly one of
 * fn / exec / builtin. Strings are copied by jobq_pool_new. */
typedef struct jobq_pool_opts {
    const char *url;     /* "shm://NAME" or "mq://NAME": each child opens its own handle;
                            or a broker, "tcp://HOST:PORT" or "ipc://PATH": each worker
                            holds its own connection */
    jobq_queue_t *queue; /* or an open queue, borrowed (must outlive the pool); forked
                            children use the handle they inherit, so give an anonymous
                            queue here (jobq_queue_new_anon) and named ones by url */
    jobq_pool_mode mode;
    unsigned workers; /* processes or threads; 0 = number of online CPUs */

    jobq_handler_fn fn;  /* a C callback, called in the worker (child or thread) */
    void *fn_arg;        /* passed to fn; for forked pools each child has its own copy */
    const char *exec;    /* or a command run with /bin/sh -c per job */
    const char *builtin; /* or a built-in: echo, upper, md5, sleep, fail, crash */

    uint32_t time_limit_ms;    /* per attempt; 0 = none. The item's own time limit
                                  (jobq_item_t.ttr_ms), when set, applies too: the
                                  smaller one wins */
    uint32_t poll_ms;          /* how often an idle worker checks for a stop; 0 = 100 */
    int64_t result_timeout_ms; /* how long a worker waits for room on a full results
                                  channel before dropping that result (counted in
                                  results_dropped); 0 or negative = wait forever */
    uint32_t restart_min_ms;   /* first restart delay after a child dies; 0 = 100 */
    uint32_t restart_max_ms;   /* the delay doubles up to this; 0 = 30000 */

    /* Broker URLs only (ignored for local queues). */
    const char *const *queues; /* the queues to take jobs from (copied); none: every queue */
    size_t nqueues;            /* at most 256 */
    uint32_t prefetch;         /* jobs each worker may hold at once (its credit); 0 = 1.
                                  64 or more for short jobs: the broker refills a worker
                                  only as its results arrive */
    uint32_t heartbeat_ms;     /* heartbeat interval asked of the broker; 0 = 1000. The
                                  broker finds a silent worker in about 3 intervals */
    const char *curve_key;     /* CURVE (tcp:// brokers): this worker's key pair file, as
                                  written by `jobq keygen` (NAME.key, mode 0600); NULL = no
                                  CURVE. The path is copied; the file is read at each connect */
    const char *curve_server;  /* CURVE: the broker's public key file (NAME.pub); copied */

    /* Worker operations (docs/WORKERS.md); zero = off. */
    uint32_t max_jobs_per_child;      /* forked pools: a child that ran this many attempts
                                         finishes, reports and is replaced at once */
    uint32_t max_memory_per_child_mb; /* forked pools: the same once its RSS after a job
                                         reaches this many MiB */
    int fork_per_job;                 /* run each C or built-in handler call in a fresh child of
                                         the worker (a crash or leak cannot touch the next job);
                                         a hard time limit then SIGKILLs that child: TIMEDOUT */
    uint32_t soft_time_limit_ms;      /* per attempt, below the hard one (time_limit_ms): --exec
                                         gets SIGTERM on its process group then SIGKILL at the
                                         hard limit; C handlers see jobq_job_soft_expired() */
    uint32_t limit_mem_mb;            /* --exec: RLIMIT_AS of each command, MiB */
    uint32_t limit_cpu_s;             /* --exec: RLIMIT_CPU (SIGXCPU, then SIGKILL 1 s later) */
    uint32_t limit_files;             /* --exec: RLIMIT_NOFILE */
} jobq_pool_opts_t;

/* The pool's report, summed over every worker that ever ran. */
typedef struct jobq_pool_report {
    jobq_pool_mode mode;
    unsigned workers;         /* configured number of workers */
    uint64_t done;            /* attempts whose handler succeeded */
    uint64_t failed;          /* attempts that failed or timed out */
    uint64_t crashed;         /* attempts that crashed (handler killed by a signal,
                                 or held by a worker process that died) */
    uint64_t busy_us;         /* time spent in handlers, summed over workers */
    uint64_t wall_us;         /* from jobq_pool_start until the last worker ended */
    uint64_t max_rss_kb;      /* the largest worker's maximum resident set size */
    uint64_t results_dropped; /* results dropped after result_timeout_ms */
    uint32_t reports;         /* final reports received from workers */
    uint32_t deaths;          /* worker processes that died without a final report */
    uint32_t restarts;        /* worker processes started again after a death */
    uint64_t stale;           /* broker only: results refused because the worker had lost
                                 the job's lease (expired, or the broker forgot it) */
    uint32_t recycled;        /* worker processes replaced after max_jobs_per_child or
                                 max_memory_per_child_mb (not counted in restarts) */
} jobq_pool_report_t;

/* Fills opts with the defaults: no queue, no handler, a forked pool of one
 * worker per CPU. */
void jobq_pool_opts_init(jobq_pool_opts_t *opts);

/* Checks opts and creates a pool that is not started yet. On success *out owns
 * the pool (free with jobq_pool_destroy); on failure *out is NULL. Returns
 * JOBQ_OK, JOBQ_EINVAL (no or two queues or handlers, unknown built-in, a bad
 * queue name; only one of curve_key / curve_server) or JOBQ_EURL (url is not
 * shm://, mq://, tcp:// or ipc://); with CURVE, JOBQ_EFORBIDDEN (a key file
 * with unsafe permissions), JOBQ_ECORRUPT or JOBQ_ENOTFOUND (reason logged). */
int jobq_pool_new(const jobq_pool_opts_t *opts, jobq_pool_t **out);

/* Starts the workers (forks the children or starts the threads, from a
 * supervisor thread) and returns once they are launched. Returns JOBQ_OK,
 * JOBQ_ESTATE (already started), JOBQ_ENOTFOUND / JOBQ_EURL (the url cannot
 * be opened) or JOBQ_ESYS. Broker workers connect on their own, and keep
 * trying while the broker is down: starting does not wait for it. */
int jobq_pool_start(jobq_pool_t *pool);

/* Asks the pool to stop; async-signal-safe (sets an atomic flag and writes one
 * byte to a pipe). immediate = 0: workers finish their current job and take no
 * other; immediate != 0: forked workers of a local queue are SIGKILLed at once
 * and their held items handed back; forked broker workers hand their jobs back
 * (DISCONNECT: prefetched ones at no cost, the running one as a crashed
 * attempt) and exit, and are SIGKILLed if still there 2 s later. A request
 * never weakens an earlier one. */
void jobq_pool_stop(jobq_pool_t *pool, int immediate);

/* Waits up to timeout_ms (negative = forever) for every worker to end
 * (sentinels, a closed and drained queue, or jobq_pool_stop). A broker worker
 * stopped by jobq_pool_stop(pool, 0) finishes its running job, reports its
 * result, hands its prefetched jobs back and sends its report. On JOBQ_OK fills
 * report (may be NULL). Returns JOBQ_OK, JOBQ_ETIMEDOUT or JOBQ_ESTATE (not
 * started). */
int jobq_pool_wait(jobq_pool_t *pool, int64_t timeout_ms, jobq_pool_report_t *report);

/* Writes into pids (up to max entries) the pids of the worker processes alive
 * now and returns how many there are (which may exceed max). Returns 0 for
 * thread pools. */
size_t jobq_pool_pids(jobq_pool_t *pool, pid_t *pids, size_t max);

/* Stops the pool at once if it still runs (jobq_pool_stop(pool, 1) then
 * jobq_pool_wait), then frees it. NULL-safe; sets *pool_p to NULL. */
void jobq_pool_destroy(jobq_pool_t **pool_p);

/* Formats report as one line of text ("pool: 4 procs, 100 jobs: ...") or, with
 * json != 0, one JSON object, NUL-terminated in buf (truncated to len).
 * Returns the length the full text needs, like snprintf. */
int jobq_pool_report_format(const jobq_pool_report_t *report, int json, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
