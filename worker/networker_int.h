/*
 * worker/networker_int.h: the network worker's private types, shared by
 * networker.c (the connection thread: the protocol loop, held leases, sending
 * and receiving, stopping) and networker_box.c (the mailbox and the handler
 * thread, and the connection thread's hand-offs through the mailbox). Nothing
 * outside worker/networker*.c includes this file. The threads, ownership and
 * invariants are described at the top of networker.c.
 */
#ifndef JOBQ_WORKER_NETWORKER_INT_H
#define JOBQ_WORKER_NETWORKER_INT_H

#include "common/conn.h"
#include "worker/networker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the mailbox --------------------------------------------------------- */

typedef struct networker_batch networker_batch_t;

typedef struct networker_job {
    jobq_job_t job; /* slices point into the batch's copy of the frame */
    networker_batch_t *batch;
} networker_job_t;

struct networker_batch {
    uint32_t left; /* jobs not finished nor dropped; guarded by the mailbox mutex */
    uint32_t n;
    networker_job_t jobs[]; /* then the copy of the frame */
};

typedef struct networker_res {
    struct networker_res *next;
    jobq_result_t res; /* output and error point into data */
    char data[];
} networker_res_t;

typedef struct networker_box {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* the handler thread waits here for jobs or quit */
    networker_job_t **ring; /* delivered, not started: FIFO */
    size_t head, count, cap;
    const networker_job_t *running; /* the job in the handler, or NULL */
    int64_t running_since_ms;
    uint32_t running_limit_ms;
    networker_res_t *out_head, *out_tail; /* finished, not taken by the connection thread */
    int woken;                            /* invariant 2 */
    int recycle;                          /* the handler thread takes no more jobs: recycling */
    int abandoned; /* invariant 4: the running attempt was reported TIMEDOUT */
    int quit;
    int efd;
} networker_box_t;

/* A lease this worker holds (connection thread only). */
typedef struct networker_lease {
    jobq_id_t id;
    uint32_t attempt; /* 0: removed, compacted away later */
    uint32_t ttr_ms;
    int64_t renew_ms;
} networker_lease_t;

typedef struct networker {
    const networker_cfg_t *cfg;
    networker_box_t box;
    pthread_t thread;
    conn_t *conn;
    uint32_t prefetch, poll_ms;
    wire_str_t *queues;
    int64_t next_connect_ms;
    uint32_t backoff_ms;
    networker_lease_t *held;
    size_t nheld, held_cap;
    int64_t next_renew_ms; /* INT64_MAX: nothing to renew */
    networker_res_t *unsent_head, *unsent_tail;
    wire_lease_t *rel; /* stopping: jobs handed back in DISCONNECT */
    size_t nrel, rel_cap;
    jobq_result_t *rbuf; /* scratch for RESULT and EXTEND frames */
    wire_lease_t *xbuf;
    uint64_t req_seq;
    uint32_t unacked;    /* RESULT frames without their RESULT_OK yet */
    int barrier;         /* stopping: the STATS sent after READY 0 awaits its reply */
    worker_end stopping; /* 0: running */
    int64_t ack_deadline_ms;
    int64_t hard_due_ms; /* on_hard: when the running attempt is due TIMEDOUT; INT64_MAX none */
    int fatal;
} networker_t;

/* Adds n to counter c (written by one thread only, read by others). */
static inline void
networker_add_(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Drops a reference of batch b; frees it with its last job. Mutex held. */
void networker_batch_unref_(networker_batch_t *b);

/* Appends job j to the mailbox's ring of jobs not started (growing it).
 * Mutex held; the ring points to j, which stays owned by its batch. */
void networker_ring_push_(networker_box_t *b, networker_job_t *j);

/* Takes the oldest job not started off the ring (count must be > 0). Mutex
 * held; the caller now holds the job's batch reference. */
networker_job_t *networker_ring_pop_(networker_box_t *b);

/* Copies res and the bytes it points to into one allocation (caller owns it,
 * jobq_free). */
networker_res_t *networker_res_copy_(const jobq_result_t *res);

/* The handler thread's body (arg: the networker_t): runs the mailbox's jobs
 * in order and posts their results until quit or recycling. Returns NULL. */
void *networker_handler_main_(void *arg);

/* Connection thread: moves the results the handler finished to the unsent
 * list (and clears the eventfd). */
void networker_take_results_(networker_t *nw);

/* Returns 1 once the handler thread has stopped taking jobs to be recycled. */
int networker_recycling_(networker_t *nw);

/* on_hard: if the running attempt is past its hard limit (plus the grace),
 * marks it abandoned (invariant 4) and fills *res with its TIMEDOUT result
 * (text in text, len bytes), returning 1; else sets nw->hard_due_ms and
 * returns 0. */
int networker_hard_due_(networker_t *nw, jobq_result_t *res, char *text, size_t len);

#endif
