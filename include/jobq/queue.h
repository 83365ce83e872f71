/*
 * jobq/queue.h: the local JoinableQueue, over shared memory (shm://NAME, or
 * anonymous and inherited across fork()) or POSIX message queues (mq://NAME).
 *
 * Semantics follow Python's multiprocessing.JoinableQueue:
 *   - put() adds an item and increments the unfinished count; get() takes one;
 *     task_done() marks a taken item finished and decrements the count; join()
 *     returns when the count reaches zero. close() refuses further puts; getters
 *     drain what is left, then get JOBQ_ECLOSED.
 *   - Timeouts are in milliseconds: 0 = do not block (JOBQ_EFULL / JOBQ_EEMPTY /
 *     JOBQ_ETIMEDOUT for join), negative = wait forever.
 *   - The queue is bounded in items and in bytes.
 * Beyond Python, it is crash-safe: a process killed at any point never blocks
 * the others, and an item taken by a process that died before task_done() is
 * handed out again (attempt + 1), or, when its attempts are used up, reported
 * as CRASHED on the results channel and counted done, so join() returns.
 *
 * Every item carries a job record (id, attempt, max attempts, time limit). A
 * second bounded channel in the same queue carries results back to the
 * producer (jobq_queue_put_result / jobq_queue_get_result).
 *
 * mq://NAME carries each item as one POSIX message (this machine allows 10
 * messages of 8 KiB per queue, even for root): a payload may be at most 8144
 * bytes (8192 minus a 48-byte header) and a result's output plus error text at
 * most 8128 bytes; beyond that put/put_result return JOBQ_ETOOBIG and nothing
 * is truncated. Capacity is min(max_items, 10) items on each channel; max_bytes
 * is not used; at most 256 items may be held (taken, not yet task_done) at
 * once across all processes. Use shm:// for larger payloads or deeper queues.
 *
 * shm:// limits: at most max(max_items, 256) items may be taken and not yet
 * task_done at once (get waits beyond that); an item's bytes count against
 * max_bytes until task_done; the results channel has the same byte bound. The
 * shm calls may also return JOBQ_ECORRUPT (the segment failed its checks and
 * could not be repaired). A job's ttr_ms travels with it; enforcing it is the
 * worker's job (the pool's time limit), not the queue's.
 *
 * Handles are per process: after fork() the child must use the queue through
 * the handle it inherited (anonymous queues) or open its own (named ones).
 * A handle may be shared by threads of one process.
 */
#ifndef JOBQ_QUEUE_H
#define JOBQ_QUEUE_H

#include "jobq/job.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jobq_queue jobq_queue_t;

/* Flags for jobq_queue_opts_t.flags. */
#define JOBQ_QUEUE_CREATE 0x1 /* create the named queue if it does not exist */
#define JOBQ_QUEUE_EXCL 0x2   /* with CREATE: fail with JOBQ_EDUPLICATE if it exists */

typedef struct jobq_queue_opts {
    uint32_t flags;
    uint32_t max_items;    /* capacity in items; 0 = 1024 */
    uint64_t max_bytes;    /* capacity in payload bytes; 0 = 64 MiB */
    uint32_t result_items; /* capacity of the results channel; 0 = max_items */
} jobq_queue_opts_t;

/* An item taken by jobq_queue_get. The payload is owned by the item and freed
 * by jobq_item_fini. */
typedef struct jobq_item {
    jobq_id_t id;
    uint32_t attempt; /* 1 on the first delivery */
    uint32_t max_attempts;
    uint32_t ttr_ms; /* time limit for this attempt */
    int sentinel;    /* 1: a poison pill, the consumer should stop */
    void *payload;
    size_t payload_len;
    uint64_t token; /* identifies this delivery for task_done */
} jobq_item_t;

/* Opens (or with JOBQ_QUEUE_CREATE creates) the queue named by url: "shm://NAME"
 * or "mq://NAME". opts may be NULL (attach, defaults). A stale object left by a
 * crashed run (bad header, half-initialised) is detected and, with CREATE,
 * replaced. On success *out owns a new handle (free with jobq_queue_destroy);
 * on failure *out is NULL. Errors: JOBQ_EURL, JOBQ_ENOTFOUND (no such queue and
 * no CREATE), JOBQ_EDUPLICATE (EXCL), JOBQ_ECORRUPT (a stale or damaged object
 * and no CREATE), JOBQ_EFORBIDDEN (the object is not private to this user),
 * JOBQ_EBUSY (objects kept changing during creation), JOBQ_EINVAL, JOBQ_ESYS. */
int jobq_queue_open(const char *url, const jobq_queue_opts_t *opts, jobq_queue_t **out);

/* Creates an anonymous shared-memory queue that children forked after this
 * call inherit. Same ownership as jobq_queue_open. */
int jobq_queue_new_anon(const jobq_queue_opts_t *opts, jobq_queue_t **out);

/* Detaches and frees the handle (never removes the named object; see
 * jobq_queue_unlink). NULL-safe; sets *q_p to NULL. */
void jobq_queue_destroy(jobq_queue_t **q_p);

/* Removes the named queue's system objects. Processes attached keep working
 * until they detach. Returns JOBQ_OK, JOBQ_ENOTFOUND, JOBQ_EURL or JOBQ_ESYS. */
int jobq_queue_unlink(const char *url);

/* Puts one job. The payload is copied; job->queue is ignored (the queue is the
 * URL). A zero job->id is replaced by a fresh one, written back to job->id.
 * Returns JOBQ_OK, JOBQ_EFULL (timeout 0), JOBQ_ETIMEDOUT, JOBQ_ECLOSED,
 * JOBQ_ETOOBIG (larger than the queue can ever hold). */
int jobq_queue_put(jobq_queue_t *q, jobq_job_t *job, int64_t timeout_ms);

/* Puts raw bytes as a job with default options; *id_out (may be NULL) gets its id. */
int jobq_queue_put_bytes(jobq_queue_t *q, const void *data, size_t len, jobq_id_t *id_out,
                         int64_t timeout_ms);

/* Puts a sentinel (poison pill). Sentinels are counted like items: the
 * consumer calls task_done on it too. Allowed after close(). */
int jobq_queue_put_sentinel(jobq_queue_t *q, int64_t timeout_ms);

/* Takes the next item into *item (which the caller then owns: call
 * jobq_item_fini). Returns JOBQ_OK, JOBQ_EEMPTY (timeout 0), JOBQ_ETIMEDOUT,
 * or JOBQ_ECLOSED (closed and drained). On failure *item is zeroed. */
int jobq_queue_get(jobq_queue_t *q, jobq_item_t *item, int64_t timeout_ms);

/* Frees the item's payload and zeroes it. NULL-safe. */
void jobq_item_fini(jobq_item_t *item);

/* Marks a taken item finished. With item NULL, finishes the oldest item this
 * process holds (Python's task_done()). Returns JOBQ_OK, or JOBQ_ESTATE when
 * there is no such item in flight ("task_done() called too many times"). */
int jobq_queue_task_done(jobq_queue_t *q, const jobq_item_t *item);

/* Blocks until every item put so far is finished. JOBQ_OK or JOBQ_ETIMEDOUT. */
int jobq_queue_join(jobq_queue_t *q, int64_t timeout_ms);

/* Refuses further puts (sentinels excepted). Getters drain, then JOBQ_ECLOSED. */
int jobq_queue_close(jobq_queue_t *q);

/* Items waiting (not taken), whether the queue is empty / full, and the
 * unfinished count (put but not yet task_done). Snapshots. */
size_t jobq_queue_size(jobq_queue_t *q);
int jobq_queue_empty(jobq_queue_t *q);
int jobq_queue_full(jobq_queue_t *q);
size_t jobq_queue_unfinished(jobq_queue_t *q);

/* Hands back every item that process pid holds: each goes back to the queue
 * with attempt + 1, or, when its attempts are used up, becomes a CRASHED result
 * (with sig, when known, else 0) and is counted done. Supervisors call this
 * after waitpid(); any process also does it on its own, lazily, for holders it
 * finds dead. Returns the number of items handed back, or -1 on error
 * (including pid <= 0). */
int jobq_queue_reclaim(jobq_queue_t *q, pid_t pid, int sig);

/* jobq_queue_reclaim for a holder its supervisor SIGKILLed because the
 * running attempt passed its hard time limit of limit_ms: an item with
 * attempts left goes back the same way, one whose attempts are used up
 * becomes a TIMEDOUT result (signal 9, "hard time limit N s exceeded")
 * instead of CRASHED. Returns as jobq_queue_reclaim. */
int jobq_queue_reclaim_timedout(jobq_queue_t *q, pid_t pid, uint32_t limit_ms);

/* Puts a result on the results channel (output and error bytes are copied).
 * Blocks while the channel is full: results are never dropped.
 * Returns JOBQ_OK, JOBQ_EFULL (timeout 0), JOBQ_ETIMEDOUT, JOBQ_ETOOBIG. */
int jobq_queue_put_result(jobq_queue_t *q, const jobq_result_t *res, int64_t timeout_ms);

/* Takes the next result. Its slices (output, error) point into storage owned
 * by q, valid until the next get_result on this handle or its destruction.
 * Returns JOBQ_OK, JOBQ_EEMPTY, JOBQ_ETIMEDOUT. */
int jobq_queue_get_result(jobq_queue_t *q, jobq_result_t *res, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
