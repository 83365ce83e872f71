/*
 * worker/pool_int.h: what the pool's supervisor (worker/pool.c) and the
 * forked worker's side (worker/pool_child.c) share: the pool object, its
 * slots and the page shared with the children. Private to the pool.
 */
#ifndef JOBQ_WORKER_POOL_INT_H
#define JOBQ_WORKER_POOL_INT_H

#include "jobq/pool.h"
#include "worker/handler.h"
#include "worker/networker.h"
#include "worker/worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define POOL_POLL_MS 100    /* default: how often an idle worker checks for a stop */
#define POOL_EXIT_ORPHAN 70 /* child exit: the supervisor was gone before prctl */
#define POOL_EXIT_OPEN 71   /* child exit: the queue could not be opened */
#define POOL_EXIT_ERROR 72  /* child exit: the queue kept failing */
#define POOL_EXIT_HARD                                                                             \
    73 /* child exit: a network worker reported its attempt TIMEDOUT at                            \
          the hard limit and ended (its handler cannot be stopped) */

typedef enum pool_slot_state {
    POOL_IDLE = 0,
    POOL_RUNNING,
    POOL_WAITING,
    POOL_DONE
} pool_slot_state;

typedef struct pool_slot {
    pool_slot_state state;
    pid_t pid;     /* guarded by pool->mu for jobq_pool_pids */
    int pidfd;     /* readable when the child ends; -1 if unavailable */
    int report_fd; /* read end of the child's report pipe; -1 once closed */
    worker_report_t report;
    size_t report_got;  /* bytes of report received */
    int64_t started_ms; /* CLOCK_MONOTONIC */
    int64_t restart_at_ms;
    uint32_t delay_ms;        /* the next restart delay */
    int recycled;             /* WAITING after a recycling end: respawn now, not a restart */
    uint32_t killed_limit_ms; /* the supervisor SIGKILLed it at this hard time limit; 0 = no */
} pool_slot_t;

/* The page shared with the forked children (MAP_SHARED | MAP_ANONYMOUS). */
typedef struct pool_shared {
    atomic_int stop;              /* invariant 3 */
    worker_counters_t counters[]; /* one per slot (or per thread) */
} pool_shared_t;

struct jobq_pool {
    jobq_pool_opts_t opts; /* its strings point at the copies below */
    char *url, *exec, *builtin, *label;
    int net;        /* url names a broker: workers run networker_run */
    char *endpoint; /* broker: the ZeroMQ endpoint of url */
    char **queues;  /* broker: the queues served (copies) */
    uint32_t nqueues;
    jobq_queue_t *q; /* local: the supervisor's handle (reclaim; threads share it) */
    int own_q;
    /* broker: copies of the CURVE key file paths, or NULL */
    char *curve_key, *curve_server;
    handler_t *handler; /* validated at new; forked children use their copy */
    unsigned n;
    int wake[2]; /* self-pipe: jobq_pool_stop writes one byte */
    pool_shared_t *shared;
    size_t shared_len;
    pool_slot_t *slots;
    pid_t self_pid;
    sigset_t caller_mask; /* restored in workers */
    pthread_t thread;
    int started;
    int joined;
    int64_t start_us;
    pthread_mutex_t mu; /* guards launched, finished, report, slot pids */
    pthread_cond_t cv;
    int launched;
    int finished;
    jobq_pool_report_t report;
    int64_t cold_kill_ms; /* supervisor: when a cold stop SIGKILLs what is left; 0 = none */
};

/* A new handler for pool's kind (built-in, --exec or callback) with the
 * pool's limits set. Caller owns it; NULL for an unknown built-in. */
handler_t *pool_handler_new(const jobq_pool_t *pool);

/* The configuration of network worker i (slot or thread index) with handler
 * h; name (len bytes) receives its HELLO name. */
void pool_net_cfg(jobq_pool_t *pool, unsigned i, handler_t *h, char *name, size_t len,
                  networker_cfg_t *cfg);

/* The forked child of slot i: dies with the supervisor, runs the worker loop
 * (local or network), writes its final report to report_fd, exits. */
_Noreturn void pool_child_main(jobq_pool_t *pool, unsigned i, int report_fd);

/* Runs a thread pool to its end on the supervisor thread: starts the worker
 * threads, tells jobq_pool_start they are launched, joins them and adds up
 * their counters. */
void pool_run_threads(jobq_pool_t *pool);

/* Adds a worker's counters (and its max RSS) to the pool's report. */
void pool_add_counters(jobq_pool_t *pool, const worker_counters_t *c, uint64_t rss_kb);

/* Tells jobq_pool_start that the workers are launched. */
void pool_launched(jobq_pool_t *pool);

#endif
