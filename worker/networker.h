/*
 * worker/networker.h: the worker loop over a jobq broker (tcp://, ipc://), one
 * per forked child or per thread of a pool (worker/pool.c), the network twin
 * of worker_run (worker/worker.h).
 *
 * Two threads per worker (the actor pattern): the calling thread owns the
 * broker connection (common/conn.h) and polls its socket plus an eventfd; a
 * handler thread it starts runs one job at a time. Jobs and results pass
 * through a small mutex-protected mailbox, so heartbeats and lease extensions
 * keep flowing while a handler runs for minutes. The loop:
 *
 *   HELLO role worker, READY {credit: prefetch, queues}
 *   DELIVER  -> jobs to the handler thread (time limit: the job's ttr, or the
 *               pool's limit when smaller)
 *   result   -> RESULT frames (the results that finished together in one)
 *   RESULT_OK-> codes counted; ESTALE (lease lost) is counted, never retried
 *   held jobs-> EXTEND every ttr/3 (prefetched ones too), so a job that waited
 *               in the prefetch buffer and then ran up to its limit keeps its
 *               lease; a handler that overran its limit by 2 s loses it
 *   SENTINEL or the stop flag -> finish the running job, send its RESULT,
 *               wait (bounded) for its RESULT_OK, REPORT {data: JSON}, then
 *               DISCONNECT {leases: the prefetched jobs never started}
 *   lost connection (DISCONNECT from the broker, or silence for 3 heartbeat
 *               intervals) -> unstarted jobs are dropped (the broker gives
 *               them to others), reconnect with backoff 100 ms doubling to
 *               5 s, HELLO + READY again, then send the results that finished
 *               meanwhile (they may come back ESTALE: counted)
 */
#ifndef JOBQ_WORKER_NETWORKER_H
#define JOBQ_WORKER_NETWORKER_H

#include "worker/handler.h"
#include "worker/worker.h"

#include <stdatomic.h>
#include <stdint.h>

#define NETWORKER_PREFETCH_DEFAULT 1u

/* What one network worker needs. Nothing here is owned by the loop; the
 * strings and the handler must outlive networker_run. */
typedef struct networker_cfg {
    const char *endpoint;        /* "tcp://HOST:PORT" or "ipc://PATH" */
    const char *const *queues;   /* queues to take jobs from; none: every queue */
    uint32_t nqueues;            /* at most 256 */
    uint32_t prefetch;           /* READY credit: jobs held at once; 0 = 1 */
    uint32_t hb_ms;              /* heartbeat interval asked of the broker; 0 = 1000 */
    const char *name;            /* HELLO name; NULL: "worker-PID" */
    handler_t *handler;          /* used by the handler thread only */
    uint32_t time_limit_ms;      /* 0 = none; each job's ttr applies too, the smaller wins */
    uint32_t poll_ms;            /* how often the stop flag is read; 0 = 100 */
    const atomic_int *stop;      /* 0 run, 1 finish the running job and end, 2 also skip
                                    waiting for acknowledgements; NULL: never */
    worker_counters_t *counters; /* may be NULL */
    const char *curve_key;       /* CURVE: this worker's key file (NAME.key); NULL = none */
    const char *curve_server;    /* CURVE: the broker's public key file */
    worker_recycle_t recycle;    /* forked workers: after this many jobs or this RSS, take
                                    no other job, hand the prefetched ones back, end with
                                    WORKER_END_RECYCLE */
    /* Cold stop (stop level 2) of a forked worker: the loop sends the finished
     * results, REPORT and DISCONNECT {the unstarted jobs} (the running one
     * goes back to the broker as a crashed attempt) without waiting for the
     * running handler, then calls on_cold, which must not return (it writes
     * the final report and _exits). NULL: level 2 only skips the waits. */
    void (*on_cold)(void *arg);
    void *on_cold_arg;
    /* Hard time limit of a forked worker whose handler cannot be stopped (a
     * C or built-in handler in a long-lived child): once the running attempt
     * is past its limit, the loop sends its RESULT {TIMEDOUT, "hard time limit
     * N s exceeded"}, REPORT and DISCONNECT {the unstarted jobs}, then calls
     * on_hard, which must not return (it writes the final report and _exits;
     * the process is replaced). NULL: the lease lapses instead (D24). */
    void (*on_hard)(void *arg);
    void *on_hard_arg;
} networker_cfg_t;

/* Runs the loop until a SENTINEL (WORKER_END_SENTINEL), the stop flag
 * (WORKER_END_STOPPED) or a fatal error: the broker speaks another protocol
 * version or the handler thread cannot start (WORKER_END_ERROR). A broker
 * that is down or restarts is not fatal: the loop reconnects until stopped.
 * Returns why it ended; the final report went to the broker when connected. */
worker_end networker_run(const networker_cfg_t *cfg);

#endif
