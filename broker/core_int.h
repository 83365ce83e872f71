/*
 * broker/core_int.h: the broker core's private types, shared by core.c (the
 * transitions and the calls that change state), core_view.c (peek, lists,
 * results, stats, events) and core_check.c (the invariant checker). Nothing
 * outside broker/core*.c includes this file.
 *
 * Where a job lives, by state (each job is in exactly one place):
 *   DELAYED   core->delays heap (key at_ms = ready time), pos = heap index
 *   READY     the FIFO of its priority level in its queue, pos = FIFO position
 *   RESERVED  a core_lease_t: core->leases heap and its worker's held array
 *   DEAD      its queue's dead FIFO, pos = FIFO position; u.dead = its result
 *   DONE      nowhere: the job is freed and only its core_result_t remains
 * Every live job is also in core->jobs (by id) and, with a unique key, in
 * core->uniques. Where the submitter handle lives also depends on the state
 * (u.submitter, u.lease->submitter or u.dead->submitter): see s_submitter().
 */
#ifndef JOBQ_BROKER_CORE_INT_H
#define JOBQ_BROKER_CORE_INT_H

#include "broker/core.h"
#include "broker/core_fifo.h"
#include "broker/core_heap.h"
#include "broker/core_tab.h"

#include <string.h>

#define CORE_STATE_NEW 7 /* a job being built, in no structure yet */

typedef struct core_lease core_lease_t;
typedef struct core_result core_result_t;
typedef struct core_queue core_queue_t;
typedef struct core_level core_level_t;
typedef struct core_worker core_worker_t;

/* One job: a single allocation with the payload and unique key inline.
 * 56 bytes of header, so a 16-byte job is one 80-byte malloc chunk (W3). */
typedef struct core_job {
    jobq_id_t id;  /* first: the id table hashes elements as jobq_id_t */
    int64_t at_ms; /* DELAYED: ready time; else when it entered its state */
    union {
        uint64_t submitter;  /* DELAYED, READY */
        core_lease_t *lease; /* RESERVED */
        core_result_t *dead; /* DEAD: its result, which holds the submitter */
    } u;
    uint32_t priority;
    uint32_t pos; /* delay heap index or FIFO position; unused when RESERVED */
    uint32_t ttr_ms;
    uint32_t payload_len : 21; /* <= JOBQ_PAYLOAD_MAX (2^20) */
    uint32_t unique_len : 8;   /* <= JOBQ_UNIQUE_KEY_MAX (200) */
    uint32_t state : 3;        /* jobq_job_state or CORE_STATE_NEW */
    uint16_t queue : 15;       /* index in core->queues (CORE_QUEUES_LIMIT < 2^15) */
    uint16_t has_backoff : 1;  /* a per-job backoff (uint32) follows the unique key in data */
    uint16_t attempt;          /* deliveries so far: the lease fence */
    uint16_t max_attempts;
    uint16_t free_attempts; /* deliveries that do not count (returns, before a kick) */
    unsigned char data[];   /* payload_len bytes of payload, then the unique key, then the
                               per-job backoff ms (4 bytes, unaligned) when has_backoff */
} core_job_t;

/* A lease: a RESERVED job's delivery, on the lease heap and its worker's list. */
struct core_lease {
    core_job_t *job;
    core_worker_t *worker;
    uint64_t submitter;
    int64_t deadline_ms;
    uint32_t heap_pos;
    uint32_t held_pos; /* index in worker->held */
};

#define CORE_RES_PINNED 1u    /* owned by a DEAD job: not in retention */
#define CORE_RES_DELIVERED 2u /* core_take_result returned it */

/* A stored result, with the output, error text and unique key inline. */
struct core_result {
    jobq_id_t id; /* first: hashed like a job */
    uint64_t submitter;
    int64_t finished_ms;
    int64_t kept_ms; /* when retention started (position order in core->kept) */
    uint64_t duration_us;
    int32_t exit_code;
    int32_t signal;
    uint32_t pos; /* position in core->kept */
    uint32_t output_len;
    uint16_t error_len;
    uint16_t queue;
    uint16_t attempts;
    uint8_t unique_len;
    uint8_t status;       /* JOBQ_STATUS_DONE or JOBQ_STATUS_DEAD */
    uint8_t last_status;  /* how the last attempt ended */
    uint8_t flags;        /* CORE_RES_* */
    unsigned char data[]; /* output, error text, unique key */
};

/* The READY jobs of one priority in one queue, oldest first. */
struct core_level {
    uint32_t priority;
    uint32_t heap_pos; /* in queue->levels */
    uint16_t queue;
    core_fifo_t fifo;
};

struct core_queue {
    uint16_t idx;
    uint8_t name_len;
    core_heap_t levels;   /* non-empty core_level_t by priority */
    core_level_t *last;   /* the level used last (most pushes hit it) */
    core_level_t *spare;  /* an empty level kept for reuse */
    core_fifo_t dead;     /* DEAD jobs, oldest first */
    int64_t paused_until; /* 0 = not paused; CORE_FOREVER until resumed */
    uint32_t paused_pos;  /* index in core->paused while paused */
    uint64_t nready, ndelayed, nreserved, ndead, bytes;
    uint64_t submitted, done, completed, failed, retried, buried, expired;
    uint64_t released, kicked, deleted;
    char name[JOBQ_QUEUE_NAME_MAX + 1];
};

struct core_worker {
    uint64_t handle;
    uint32_t credit;
    uint32_t nheld, capheld;
    core_lease_t **held;
    uint32_t idx; /* in core->workers */
    uint32_t rr;  /* round-robin start among tied queues */
    uint64_t delivered, done, failed, extended, released;
    int64_t last_ms;
};

#define CORE_CACHE_CLASSES 16u /* blocks of 24, 40, ..., 248 bytes (core_store.c) */
#define CORE_CACHE_KEEP 8192u  /* blocks per class: at most 16 MiB cached in all */

struct core {
    core_config_t cfg;
    uint64_t seed;                  /* hash seed */
    uint64_t rng;                   /* jitter state (xorshift64*) */
    uint64_t id_prefix, id_counter; /* core-assigned ids (s_id_next) */
    int64_t now_ms;
    core_tab_t jobs;    /* core_job_t by id */
    core_tab_t results; /* core_result_t by id */
    core_tab_t uniques; /* job or (result | 1) by (queue, unique key) */
    core_tab_t names;   /* core_queue_t by name */
    core_tab_t levels;  /* core_level_t by (queue, priority) */
    core_tab_t wtab;    /* core_worker_t by handle */
    core_queue_t **queues;
    uint32_t nqueues;
    core_worker_t **workers;
    uint32_t nworkers, capworkers;
    core_queue_t **paused;
    uint32_t npaused, cappaused;
    core_heap_t delays; /* DELAYED jobs by at_ms */
    core_heap_t leases; /* core_lease_t by deadline_ms */
    core_fifo_t kept;   /* retained (unpinned) results, oldest first */
    uint64_t result_bytes, npinned;
    uint64_t bytes;
    core_event_t *events;
    uint32_t nevents, capevents, evhead;
    uint64_t submitted, duplicates, refused_full, done, buried;
    core_hook_fn hook; /* journal: told of every change (core_journal.c) */
    void *hook_arg;
    /* Blocks of freed jobs, leases and results kept for reuse, by size class
     * (16-byte steps up to 248 bytes): at millions of jobs a second
     * the broker allocates and frees three blocks per job, in batches larger
     * than malloc's per-thread cache, and glibc's slower paths showed in the
     * profile (bench/RESULTS.md). Each class keeps at most CORE_CACHE_KEEP. */
    void *cache[CORE_CACHE_CLASSES];
    uint32_t ncache[CORE_CACHE_CLASSES];
};

/* ---- block cache (core_store.c) ------------------------------------------- */

/* Returns a block of n bytes: a cached one of its size class, or a new one. */
void *core_block_get_(core_t *core, size_t n);
/* Takes back block p of n bytes (the n it was allocated with): cached while
 * its class has room, else freed. */
void core_block_put_(core_t *core, void *p, size_t n);

/* Key of the unique-key table. */
typedef struct core_ukey {
    uint16_t queue;
    uint32_t len;
    const void *ptr;
} core_ukey_t;

/* How an attempt ended, as the core records it. */
typedef struct s_outcome {
    jobq_status last_status;
    int32_t exit_code;
    int32_t signal;
    uint64_t duration_us;
    const void *output;
    uint32_t output_len;
    const char *error;
    uint32_t error_len;
} core_outcome_t;

/* Helpers shared by the core files (defined in core_store.c). */
uint64_t core_id_hash_(const core_t *core, const jobq_id_t *id);
uint64_t core_name_hash_(const core_t *core, const char *name, uint32_t len);
uint64_t core_ukey_hash_(const core_t *core, const core_ukey_t *k);
int core_id_eq_(const void *elem, const void *key);
/* Fills k with the key of a unique-table entry (a job, or a result tagged | 1). */
void core_ukey_of_(const void *tagged, core_ukey_t *k);
int core_ukey_eq_(const void *elem, const void *key);
core_queue_t *core_queue_find_(const core_t *core, const char *name, uint32_t len);
core_level_t *core_level_find_(const core_t *core, uint16_t queue, uint32_t priority);
core_worker_t *core_worker_find_(const core_t *core, uint64_t handle);
uint64_t core_job_submitter_(const core_job_t *job);
uint64_t core_job_bytes_(const core_job_t *job);
uint64_t core_result_bytes_(const core_result_t *res);
int core_name_ok_(const char *name, uint32_t len);
/* Advances the core's clock (never backwards) and drops results past
 * retention; every call that changes the core starts here. Returns the time. */
int64_t core_now_(core_t *core, int64_t now_ms);
/* Writes the next core-assigned id (random prefix per core, counter mix). */
void core_id_next_(core_t *core, jobq_id_t *id);
/* Appends an event (see core.h) and returns it, for fields beyond these
 * (valid until the next event is appended). */
core_event_t *core_emit_(core_t *core, core_event_type type, const core_queue_t *q,
                         const jobq_id_t *id, uint64_t submitter);
/* Returns the queue named name, creating it; NULL when max_queues is reached. */
core_queue_t *core_queue_get_(core_t *core, const char *name, uint32_t len);
/* Returns the level of priority in q, creating it (the READY FIFO to push to). */
core_level_t *core_level_get_(core_t *core, core_queue_t *q, uint32_t priority);
/* Retires level l of q once its FIFO is empty. */
void core_level_retire_(core_t *core, core_queue_t *q, core_level_t *l);
/* Lifts q's pause (announcing its READY jobs). */
void core_unpause_(core_t *core, core_queue_t *q);
core_worker_t *core_worker_get_(core_t *core, uint64_t handle);
void core_worker_free_(core_t *core, core_worker_t *w);
void core_held_add_(core_worker_t *w, core_lease_t *l);
void core_held_remove_(core_worker_t *w, core_lease_t *l);
/* Builds the result of job j (output kept only for DONE) and indexes it by id. */
core_result_t *core_result_new_(core_t *core, const core_job_t *j, jobq_status status,
                                const core_outcome_t *o, uint64_t submitter);
/* Starts the retention of r. */
void core_result_keep_(core_t *core, core_result_t *r);
/* Forgets r: its id, its unique key (if it still holds it), its memory. */
void core_result_drop_(core_t *core, core_result_t *r);
/* Fills a view of live job j (defined in core_view.c). */
void core_view_job_(const core_t *core, const core_job_t *j, core_job_view_t *v);

static inline const unsigned char *
core_job_unique_(const core_job_t *j)
{
    return j->data + j->payload_len;
}

/* The job's own first-retry delay, or 0 for the core's default. */
static inline uint32_t
core_job_backoff_(const core_job_t *j)
{
    uint32_t b = 0;
    if (j->has_backoff)
        memcpy(&b, j->data + j->payload_len + j->unique_len, sizeof b);
    return b;
}

static inline const unsigned char *
core_result_error_(const core_result_t *r)
{
    return r->data + r->output_len;
}

static inline const unsigned char *
core_result_unique_(const core_result_t *r)
{
    return r->data + r->output_len + r->error_len;
}

static inline int
core_is_result_(const void *tagged)
{
    return ((uintptr_t)tagged & 1u) != 0;
}

static inline void *
core_untag_(const void *tagged)
{
    return (void *)((uintptr_t)tagged & ~(uintptr_t)1u);
}

/* Fills a view of result r (defined in core_view.c). */
void core_view_result_(const core_t *core, const core_result_t *r, core_result_view_t *v);

/* Tell the hook (if any) of a change to live job j: SUBMIT, STATE or DEAD
 * (with its pinned result); of DONE with result r; of DELETE or FORGET of id;
 * of a pause (core_journal.c). */
void core_hook_job_(core_t *core, core_change_kind kind, const core_job_t *j);
void core_hook_done_(core_t *core, const core_result_t *r);
void core_hook_id_(core_t *core, core_change_kind kind, const jobq_id_t *id);
void core_hook_pause_(core_t *core, const core_queue_t *q);

#endif
