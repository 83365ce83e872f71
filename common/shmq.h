/*
 * common/shmq.h: private to the shm:// transport (shmq*.c). The layout of the
 * shared segment, the per-process handle, and the helpers the shmq files share.
 * The design, its invariants and the repair protocol are described at the top
 * of common/shmq.c; the segment life cycle at the top of common/shmq_seg.c.
 *
 * Bump SHMQ_VERSION whenever anything in this file that lives in the segment
 * changes (a field, a size, a constant): processes of two versions must never
 * share a segment, and attach refuses a version it does not know.
 */
#ifndef JOBQ_COMMON_SHMQ_H
#define JOBQ_COMMON_SHMQ_H

#include "common/log.h"
#include "common/queue_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHMQ_MAGIC 0x314d48535142514aull /* "JQBQSHM1" read as little-endian bytes */
#define SHMQ_VERSION 1u
#define SHMQ_READY 0x59444552u /* "REDY": the last word written at creation */
#define SHMQ_NIL UINT32_MAX    /* "no slot" / "no chunk" */

#define SHMQ_CHUNK 256u        /* bytes per arena chunk */
#define SHMQ_INLINE 88u        /* payload bytes kept inside the slot itself */
#define SHMQ_UNDO_MAX 48u      /* logged writes in one committed step */
#define SHMQ_WAITERS 64u       /* sleepers tracked by (pid, start time) */
#define SHMQ_SLICE_MS 100      /* longest single futex sleep */
#define SHMQ_SWEEP_MS 50       /* least time between two dead-holder sweeps */
#define SHMQ_MIN_INFLIGHT 256u /* taken-but-not-done items allowed, at least */
#define SHMQ_MAX_ITEMS (1u << 24)
#define SHMQ_MAX_BYTES (1ull << 36) /* 64 GiB per arena */

/* Futex words, one per condition a process may wait for. */
enum shmq_cond {
    SHMQ_NOTEMPTY = 0, /* an item was queued, an in-flight place freed, or close() */
    SHMQ_NOTFULL,      /* room for items appeared, or close() */
    SHMQ_RNOTEMPTY,    /* a result was queued */
    SHMQ_RNOTFULL,     /* room for results appeared */
    SHMQ_ALLDONE,      /* the unfinished count reached zero */
    SHMQ_NCOND
};

/* A slot's state. Transitions (function in shmq_chan.c):
 *   FREE -> WRITING (shmq_reserve) -> QUEUED (shmq_publish) -> TAKEN (shmq_take)
 *   FREE -> QUEUED (shmq_reserve + shmq_publish in one step, small payloads)
 *   TAKEN -> FREE (shmq_release), TAKEN -> QUEUED (shmq_requeue), WRITING -> FREE
 *   (shmq_release, a dead writer's reservation). */
enum shmq_state { SHMQ_FREE = 0, SHMQ_WRITING = 1, SHMQ_QUEUED = 2, SHMQ_TAKEN = 3 };

#define SHMQ_F_SENTINEL 0x1u

/* One queued, reserved or taken record (a job or a result): 192 bytes. */
typedef struct shmq_slot {
    uint32_t state;     /* enum shmq_state */
    uint32_t gen;       /* bumped at every take: the delivery token's fence */
    uint32_t free_next; /* next slot on the free stack (FREE only) */
    uint32_t hnext;     /* held list links (WRITING, TAKEN) */
    uint32_t hprev;
    int32_t owner_pid;    /* WRITING, TAKEN: the holder */
    uint64_t owner_start; /* the holder's start time (clock ticks since boot) */
    jobq_id_t id;
    uint32_t len;        /* payload bytes (results: output then error text) */
    uint32_t crc;        /* crc32c of the payload, then the fixed fields */
    uint32_t chunk;      /* first arena chunk, or SHMQ_NIL when inline */
    uint32_t chunk_last; /* last arena chunk */
    uint32_t attempt;    /* jobs: deliveries so far; results: the attempt reported */
    uint32_t max_attempts;
    uint32_t ttr_ms;
    uint32_t flags;  /* SHMQ_F_SENTINEL */
    uint32_t status; /* results: jobq_status */
    int32_t exit_code;
    int32_t signal;
    uint32_t output_len; /* results: the first output_len bytes are output */
    uint64_t duration_us;
    uint8_t inl[SHMQ_INLINE]; /* the payload when len <= SHMQ_INLINE */
} shmq_slot_t;

/* A bounded channel: a ring of slot indices in FIFO order, a slot pool with a
 * free stack, an arena of chunks with a free stack, and the list of held
 * (WRITING or TAKEN) slots in the order they were taken. */
typedef struct shmq_chan {
    /* geometry, fixed at creation */
    uint32_t ring_cap;  /* ring entries; also the slot count */
    uint32_t cap_items; /* queued + reserved items allowed to ordinary puts */
    uint32_t nchunks;
    uint32_t pad0;
    uint64_t max_bytes; /* payload bytes held (queued, reserved, taken) */
    uint64_t off_ring, off_slots, off_next, off_chunks;
    /* state, changed only under the lock and through the undo log */
    uint64_t head, tail;     /* ring positions: queued = tail - head */
    uint32_t free_slot;      /* top of the free slot stack, or SHMQ_NIL */
    uint32_t slot_hwm;       /* slots at or above this index were never used */
    uint32_t free_chunk;     /* top of the free chunk stack, or SHMQ_NIL */
    uint32_t chunk_hwm;      /* chunks at or above this index were never used */
    uint32_t chunks_stacked; /* chunks on the free stack */
    uint32_t held_head;      /* oldest held slot, or SHMQ_NIL */
    uint32_t held_tail;
    uint32_t nwriting; /* WRITING slots (reservations of chunked puts) */
    uint32_t ntaken;   /* TAKEN slots */
    uint32_t pad1;
    uint64_t bytes;   /* payload bytes of all non-free slots */
    uint64_t dropped; /* crash results that found no room (results channel) */
} shmq_chan_t;

typedef struct shmq_undo {
    uint64_t off; /* byte offset in the segment; bit 0 set: a 64-bit word */
    uint64_t old;
} shmq_undo_t;

typedef struct shmq_waiter {
    int32_t pid; /* 0: entry free */
    uint32_t cond;
    uint64_t start;
} shmq_waiter_t;

typedef struct shmq_fx {
    uint32_t seq; /* bumped under the lock whenever the condition may have become true */
    uint8_t pad[60];
} shmq_fx_t;

enum { SHMQ_ITEMS = 0, SHMQ_RESULTS = 1 };

typedef struct shmq_hdr {
    /* identity and geometry: written once, before ready */
    uint64_t magic;
    uint32_t version;
    uint32_t ready; /* SHMQ_READY once everything below is initialised */
    uint64_t seg_size;
    uint32_t hdr_size;  /* sizeof(shmq_hdr_t) of the creator */
    uint32_t slot_size; /* sizeof(shmq_slot_t) of the creator */
    uint32_t max_items;
    uint32_t inflight_cap; /* TAKEN items allowed at once */
    uint32_t result_items;
    uint32_t pad0;
    uint64_t max_bytes;
    uint64_t nonce; /* random per segment: the high half of assigned job ids */
    int32_t creator_pid;
    uint32_t pad1;
    uint64_t creator_start;
    /* shared state, under the lock */
    shmq_chan_t ch[2]; /* SHMQ_ITEMS, SHMQ_RESULTS */
    uint32_t closed;
    uint32_t broken;            /* set (unlogged) before the mutex is left unrecoverable */
    uint32_t nwait[SHMQ_NCOND]; /* registered sleepers per condition */
    uint64_t id_seq;            /* the low half of the next assigned job id */
    int64_t last_sweep_ms;      /* a hint, not logged */
    shmq_waiter_t waiters[SHMQ_WAITERS];
    uint32_t undo_n; /* entries of the current step; 0 = committed */
    uint32_t pad2;
    shmq_undo_t undo[SHMQ_UNDO_MAX];
    _Alignas(64) pthread_mutex_t lock; /* robust, process-shared */
    _Alignas(64) shmq_fx_t fx[SHMQ_NCOND];
} shmq_hdr_t;

/* A channel as this process sees it (pointers into its mapping). */
typedef struct shmq_view {
    shmq_chan_t *c;
    uint32_t *ring;
    shmq_slot_t *slots;
    uint32_t *next; /* chunk links */
    uint8_t *chunks;
} shmq_view_t;

/* The per-process handle (the impl of jobq_queue_t). */
typedef struct shmq {
    char *base;
    size_t size;
    shmq_hdr_t *h;
    shmq_view_t v[2];
    int wake[SHMQ_NCOND]; /* wake-ups owed once the lock is dropped */
    void *rbuf;           /* get_result storage, owned */
    size_t rbuf_cap;
} shmq_t;

/* The calling process: pid and start time, cached and reset in forked children. */
typedef struct shmq_self {
    pid_t pid;
    uint64_t start;
} shmq_self_t;

/* ---- shmq_seg.c: segments, identity, liveness, checksum ---------------- */

/* Returns the calling process's identity (no system call after the first). */
shmq_self_t shmq_self(void);
/* Returns 1 if the process (pid, start) is gone (or a zombie), else 0.
 * start 0 means unknown: only the pid is checked. */
int shmq_dead(pid_t pid, uint64_t start);
/* Start time (field 22 of /proc/PID/stat) and whether the process is a zombie.
 * Returns 0, or -1 with errno (ENOENT when there is no such process). */
int shmq_proc_stat(pid_t pid, uint64_t *start, int *zombie);
/* crc32c (Castagnoli) of len bytes, continuing from crc (start with 0). */
uint32_t shmq_crc32c(uint32_t crc, const void *data, size_t len);
/* Writes the shm object name ("/jobq-UID-NAME") of queue name into out.
 * Returns 0, or -1 if it does not fit. */
int shmq_object_name(const char *name, char *out, size_t out_len);
/* Creates (CREATE) or attaches the named segment; see shmq_seg.c. */
int shmq_seg_open(const char *name, const jobq_queue_opts_t *opts, shmq_t **out);
/* Creates an anonymous segment inherited across fork(). */
int shmq_seg_anon(const jobq_queue_opts_t *opts, shmq_t **out);
/* Unmaps and frees q. */
void shmq_seg_close(shmq_t *q);

/* ---- shmq_lock.c: the robust lock, the undo log, waiting --------------- */

/* Takes the queue lock, repairing a dead owner's step first. Returns JOBQ_OK
 * or JOBQ_ECORRUPT (the queue is unrecoverable). */
int shmq_lock(shmq_t *q);
/* Commits the current step, drops the lock, then issues the owed wake-ups. */
void shmq_unlock(shmq_t *q);
/* Rolls the current step back (a check failed half-way) and drops the lock. */
void shmq_abort(shmq_t *q);
/* Marks the current step committed: a crash after this keeps its effects. */
void shmq_commit(shmq_t *q);
/* Records that cond may have become true: bumps its futex word and owes a
 * wake-up of n sleepers (INT32_MAX: all) if anyone sleeps on it. Lock held. */
void shmq_signal(shmq_t *q, int cond, int n);
/* Sleeps (lock dropped, then retaken) until cond is signalled, a slice of at
 * most SHMQ_SLICE_MS passes or deadline_ms. Sweeps dead holders when a slice
 * runs out. Returns JOBQ_OK (re-check the condition), JOBQ_ETIMEDOUT (the
 * deadline has passed; the lock is held) or JOBQ_ECORRUPT (not held). */
int shmq_wait(shmq_t *q, int cond, int64_t deadline_ms);
/* Checks every structural invariant of the segment. Lock held. Returns 0, or
 * -1 with a reason written to why. */
int shmq_check(shmq_t *q, char *why, size_t why_len);

/* ---- shmq_chan.c: slots, chunks, rings, holders ------------------------ */

/* Returns 1 if ch can take one more record of len bytes from an ordinary put
 * (limit: cap_items; crash results use the whole ring: limit 0). */
int shmq_room(shmq_t *q, int ch, uint32_t len, int use_spare);
/* Takes a free slot and the chunks for len bytes (room must be checked).
 * The slot is WRITING, held by the caller, when held is 1; otherwise it is
 * unlinked and must be published in the same step. Returns the slot index, or
 * SHMQ_NIL if a free list holds a bad index (corrupt: shmq_abort the step). */
uint32_t shmq_reserve(shmq_t *q, int ch, uint32_t len, int held);
/* Copies len bytes of data into slot idx at byte off of its payload (inline or
 * its chunks). No lock needed for a WRITING slot the caller holds. */
void shmq_fill(shmq_t *q, int ch, uint32_t idx, uint32_t off, const void *data, uint32_t len);
/* Copies the first len bytes of slot idx's payload into out. No lock needed
 * for a slot the caller holds. Returns 0, or -1 if its chunk chain leaves the
 * arena (a corrupt segment). */
int shmq_copy_out(shmq_t *q, int ch, uint32_t idx, void *out, uint32_t len);
/* Appends slot idx to the ring (front: at the head, for requeues). */
void shmq_publish(shmq_t *q, int ch, uint32_t idx, int front);
/* Pops the ring's head into the held list as TAKEN by me. Returns the slot
 * index, or SHMQ_NIL if the ring holds a bad index (corrupt). */
uint32_t shmq_take(shmq_t *q, int ch, shmq_self_t me);
/* Removes a WRITING or TAKEN slot from the held list (and its count). */
void shmq_unhold(shmq_t *q, int ch, uint32_t idx);
/* Frees slot idx (held or not) and its chunks. */
void shmq_release(shmq_t *q, int ch, uint32_t idx);
/* Moves a TAKEN slot back to the front of the ring. */
void shmq_requeue(shmq_t *q, int ch, uint32_t idx);
/* Finds dead holders and hands their records back (jobq_queue_reclaim).
 * With pid > 0 only that pid's records, dead or not; with pid 0 every record
 * whose holder is dead. Lock held. Returns the number handed back. */
int shmq_reclaim_dead(shmq_t *q, pid_t pid, int sig);
/* The checksum of an item or result slot: crc32c of the payload (payload_crc,
 * computed by the writer before taking the lock), then the fixed fields that
 * never change while the record lives (not attempt, owner or links). */
uint32_t shmq_item_crc(const shmq_slot_t *s, uint32_t payload_crc);
uint32_t shmq_result_crc(const shmq_slot_t *s, uint32_t payload_crc);
/* Runs shmq_reclaim_dead(q, 0, 0) if the last sweep is older than
 * SHMQ_SWEEP_MS (or always when force). Lock held. */
void shmq_sweep(shmq_t *q, int force);

/* Items put and not yet finished: queued or taken. */
static inline uint64_t
shmq_unfinished(const shmq_hdr_t *h)
{
    return (h->ch[SHMQ_ITEMS].tail - h->ch[SHMQ_ITEMS].head) + h->ch[SHMQ_ITEMS].ntaken;
}

/* ---- test and debugging support ---------------------------------------- */

typedef struct shmq_stats {
    uint64_t queued, taken, writing, bytes; /* items channel */
    uint64_t results, results_dropped;
    uint64_t sleepers; /* registered futex sleepers */
} shmq_stats_t;

/* Attaches the named queue NAME (not a URL), runs shmq_check under its lock and
 * fills stats (may be NULL). Returns JOBQ_OK, JOBQ_ECORRUPT with the broken
 * invariant in why, or an open error. */
int shmq_debug_check(const char *name, char *why, size_t why_len, shmq_stats_t *stats);

/* ---- the undo log ------------------------------------------------------ */
/*
 * Every write to a word that is meaningful in the state before the current
 * step goes through shmq_set32/shmq_set64, which records the old value first.
 * The entry is complete before the count that makes it visible, and the count
 * is published before the word changes (compiler fences: a SIGKILL can land
 * between any two instructions, and the dying process's stores all reach
 * memory before the kernel hands the robust mutex to the next owner).
 */
static inline void
shmq_log_(shmq_t *q, void *p, uint64_t old, int wide)
{
    shmq_hdr_t *h = q->h;
    uint32_t n = h->undo_n;
    JOBQ_ASSERT(n < SHMQ_UNDO_MAX); /* a step longer than the log is a bug in shmq */
    h->undo[n].off = (uint64_t)((char *)p - q->base) | (uint64_t)(wide != 0);
    h->undo[n].old = old;
    atomic_signal_fence(memory_order_seq_cst);
    h->undo_n = n + 1;
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void
shmq_set32(shmq_t *q, uint32_t *p, uint32_t v)
{
    shmq_log_(q, p, *p, 0);
    *p = v;
}

static inline void
shmq_set64(shmq_t *q, uint64_t *p, uint64_t v)
{
    shmq_log_(q, p, *p, 1);
    *p = v;
}

#endif
