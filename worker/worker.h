/*
 * worker/worker.h: the worker loop over a local queue, and the small records
 * it shares with the pool supervisor (live counters, the final report) and
 * with the commands (a result as a JSON line).
 */
#ifndef JOBQ_WORKER_WORKER_H
#define JOBQ_WORKER_WORKER_H

#include "jobq/job.h"
#include "jobq/queue.h"
#include "worker/handler.h"

#include <stdatomic.h>
#include <stdint.h>

/* Why a worker loop ended (local or network: worker/networker.h).
 * SENTINEL, STOPPED and CLOSED are normal ends. */
typedef enum worker_end {
    WORKER_END_SENTINEL = 1, /* took a sentinel */
    WORKER_END_STOPPED = 2,  /* the stop flag was raised */
    WORKER_END_CLOSED = 3,   /* the queue is closed and drained */
    WORKER_END_ERROR = 4,    /* the queue kept failing */
    WORKER_END_RECYCLE = 5   /* reached max jobs or max RSS: replace me (normal end) */
} worker_end;

/* When a forked worker should end to be replaced (recycling). */
typedef struct worker_recycle {
    uint64_t max_jobs;   /* attempts run by this process; 0 = no limit */
    uint64_t max_rss_kb; /* resident set after a job; 0 = no limit */
} worker_recycle_t;

/* Returns 1 when a worker that ran jobs attempts should end now (its current
 * RSS read from /proc/self/statm only when max_rss_kb is set). */
int worker_recycle_due(const worker_recycle_t *rc, uint64_t jobs);

/* Live counters of one worker. The worker is the only writer; they may sit in
 * shared memory so that a supervisor can read them after the worker died. */
typedef struct worker_counters {
    _Atomic uint64_t done;            /* attempts whose handler succeeded */
    _Atomic uint64_t failed;          /* attempts failed or timed out */
    _Atomic uint64_t crashed;         /* attempts whose handler died of a signal */
    _Atomic uint64_t busy_us;         /* time spent in handlers, microseconds */
    _Atomic uint64_t dropped;         /* results dropped (results channel full too long) */
    _Atomic uint64_t stale;           /* network workers: results the broker refused because
                                         the lease was lost (ESTALE, EFORBIDDEN, ENOTFOUND) */
    _Atomic uint32_t holding;         /* 1 from taking a job until its task_done */
    _Atomic int64_t hard_deadline_ms; /* monotonic ms at which the running attempt's hard
                                         time limit ends; 0 = none or idle. A supervisor
                                         kills a long-lived child past it (C handlers) */
    _Atomic uint32_t hard_limit_ms;   /* the limit behind hard_deadline_ms (kept once idle): the
                                         supervisor reports a kill as "hard time limit N s" */
} worker_counters_t;

/* Publishes (limit_ms > 0) or clears (limit_ms 0) the hard deadline of the
 * attempt about to run, in c (may be NULL). */
void worker_mark_deadline(worker_counters_t *c, uint32_t limit_ms);

/* What a worker loop needs. Nothing here is owned by the loop. */
typedef struct worker_cfg {
    jobq_queue_t *q;
    handler_t *handler;
    const char *queue_label;   /* JOBQ_QUEUE for --exec handlers */
    uint32_t time_limit_ms;    /* 0 = none; the item's ttr_ms applies too, the smaller wins */
    uint32_t poll_ms;          /* get timeout, so that a stop is noticed; > 0 */
    int64_t result_timeout_ms; /* <= 0: wait for room on the results channel forever */
    const atomic_int *stop;    /* 0 run, 1 stop taking jobs, 2 stop now */
    worker_counters_t *counters;
    worker_recycle_t recycle; /* forked workers: when to end for a fresh process */
} worker_cfg_t;

/* Runs the loop: get (in poll_ms slices), sentinel => end, else run the
 * handler, put the result, task_done, count; until a sentinel, a stop or a
 * closed queue. Returns why it ended. */
worker_end worker_run(const worker_cfg_t *cfg);

/* The final report a forked worker writes to its supervisor in one write()
 * (smaller than PIPE_BUF, so it arrives whole or not at all). */
#define WORKER_REPORT_MAGIC 0x6a6f6271u /* "jobq" */
typedef struct worker_report {
    uint32_t magic;
    int32_t pid;
    int32_t end; /* worker_end */
    uint32_t reserved;
    uint64_t done, failed, crashed, busy_us, dropped;
    uint64_t max_rss_kb; /* getrusage(RUSAGE_SELF).ru_maxrss */
    uint64_t stale;      /* network workers: results refused as stale */
} worker_report_t;

/* Fills r from c, end and this process's resource usage. */
void worker_report_fill(worker_report_t *r, const worker_counters_t *c, worker_end end);

/* Returns res as one JSON object without a newline: seq (omitted when < 0),
 * id, attempt, status, exit_code, signal, duration_us, output and error (as
 * JSON strings; invalid UTF-8 becomes U+FFFD). Caller owns the string. */
char *worker_result_json(const jobq_result_t *res, int64_t seq);

#endif
