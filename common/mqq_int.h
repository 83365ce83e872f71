/*
 * common/mqq_int.h: private types of the mq:// transport, shared by common/mqq.c (open,
 * create, attach, unlink), common/mqq_data.c (put, get, task_done, join, results) and
 * common/mqq_reclaim.c (the in-flight table, reclaim of dead holders). Nothing outside
 * common/mqq*.c includes this file; the limits and object names that tests use are in
 * common/mqq_priv.h.
 *
 * Counting. puts (in the segment) counts items put; each in-flight slot's word
 * counts the items finished through it. unfinished = puts - sum(slot done counts).
 * Finishing an item is one CAS on its slot word (state HELD -> FREE, done + 1), so a
 * process killed anywhere in task_done either finished the item or still holds it.
 * A put counts first, then sends without blocking; when the mq is full it uncounts,
 * waits with poll(POLLOUT) outside the counted region and retries, so a producer
 * killed while blocked leaves no count behind.
 */
#ifndef JOBQ_COMMON_MQQ_INT_H
#define JOBQ_COMMON_MQQ_INT_H

#include "common/mqq_priv.h"
#include "common/queue_impl.h"

#include <mqueue.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- message format --------------------------------------------------------------- */

#define MQQ_MSG_MAGIC 0x314d514au /* "JQM1" */
enum { MQQ_KIND_JOB = 1, MQQ_KIND_SENTINEL = 2, MQQ_KIND_RESULT = 3 };

typedef struct mqq_job_hdr {
    uint32_t magic;
    uint16_t kind;    /* MQQ_KIND_JOB or MQQ_KIND_SENTINEL */
    uint16_t hdr_len; /* MQQ_JOB_HDR */
    uint32_t check;   /* mqq_check_ of this header (check = 0) and the payload */
    uint32_t len;     /* payload bytes after the header */
    jobq_id_t id;
    uint32_t attempt; /* of the delivery this message makes; 1 on the first */
    uint32_t max_attempts;
    uint32_t ttr_ms;
    uint32_t reserved;
} mqq_job_hdr_t;
_Static_assert(sizeof(mqq_job_hdr_t) == MQQ_JOB_HDR, "job header size");

typedef struct mqq_res_hdr {
    uint32_t magic;
    uint16_t kind;    /* MQQ_KIND_RESULT */
    uint16_t hdr_len; /* MQQ_RESULT_HDR */
    uint32_t check;
    uint32_t output_len; /* output bytes, then error_len bytes of error text */
    jobq_id_t id;
    uint32_t attempt;
    uint32_t status;
    int32_t exit_code;
    int32_t signal;
    uint64_t duration_us;
    uint32_t error_len;
    uint32_t reserved;
} mqq_res_hdr_t;
_Static_assert(sizeof(mqq_res_hdr_t) == MQQ_RESULT_HDR, "result header size");

/* ---- the state segment ------------------------------------------------------------ */

#define MQQ_SEG_MAGIC 0x47534d516a6f626aull /* "jobjQMSG" */
#define MQQ_SEG_VERSION 1u
#define MQQ_INIT_WAIT_MS 1000 /* how long an unpublished segment may stay unpublished */
#define MQQ_NONE UINT32_MAX
#define MQQ_STALE (-2)  /* internal: the objects are not a live queue */
#define MQQ_EXISTS (-3) /* internal: the segment already exists */

enum mqq_state {
    S_FREE = 0,      /* no item; no owner */
    S_CLAIMED = 1,   /* reserved by a getter; header being zeroed */
    S_RECEIVING = 2, /* owner in mq_receive into the buffer; valid header = dequeued */
    S_HELD = 3,      /* owner holds the item until task_done */
    S_ORPHAN = 4,    /* item waiting for re-delivery (next_attempt) */
    S_ADOPTING = 5,  /* a getter is taking an orphan */
    S_CRASHING = 6   /* a CRASHED result waits to be sent */
};

/* Slot word: state (3 bits) | owner pid (22 bits: Linux pids are < 2^22) | done (39). */
#define W_STATE(w) ((unsigned)((w)&7u))
#define W_PID(w) ((pid_t)(((w) >> 3) & 0x3fffffu))
#define W_DONE(w) ((w) >> 25)
#define W_MAKE(st, pid, done)                                                                      \
    ((uint64_t)(st) | ((uint64_t)((uint32_t)(pid)&0x3fffffu) << 3) | ((uint64_t)(done) << 25))
#define TOKEN_DONE_MASK ((1ull << 40) - 1)

typedef struct mqq_slot {
    _Atomic uint64_t word;         /* see W_* */
    _Atomic uint64_t start;        /* RECEIVING/HELD: owner's start time (clock ticks) */
    _Atomic uint64_t seq;          /* HELD: owner's take order, for task_done(NULL) */
    _Atomic uint32_t attempt;      /* HELD: attempt of this delivery */
    _Atomic uint32_t next_attempt; /* ORPHAN/ADOPTING: attempt of the next delivery */
    _Atomic int32_t crash_pid;     /* CRASHING: the dead holder */
    _Atomic int32_t crash_sig;     /* CRASHING: the signal that killed it, 0 if unknown */
    char pad_[24];
} mqq_slot_t;
_Static_assert(sizeof(mqq_slot_t) == 64, "one slot per cache line");

typedef struct mqq_seg {
    _Atomic uint64_t magic; /* MQQ_SEG_MAGIC, stored last by the creator */
    uint32_t version;
    uint32_t nslots;
    uint64_t size; /* bytes of this segment */
    uint32_t depth, res_depth, msgsize;
    _Atomic int32_t creator_pid; /* recorded before anything else is initialised */
    _Atomic uint64_t creator_start;
    pthread_mutex_t mu;                    /* robust, process-shared: reclaim passes only */
    _Atomic uint32_t closed;               /* close() was called */
    _Atomic uint32_t slot_hw;              /* slots [0, slot_hw) have ever been used */
    _Atomic uint32_t orphans;              /* hint: ORPHAN slots may exist when not 0 */
    alignas(64) _Atomic uint64_t puts;     /* items put (sentinels too) */
    alignas(64) _Atomic uint32_t done_seq; /* futex word: bumped to wake joiners */
    _Atomic uint32_t join_flag;            /* a joiner sleeps on done_seq */
    alignas(64) mqq_slot_t slots[MQQ_SLOTS];
    alignas(4096) unsigned char bufs[MQQ_SLOTS][MQQ_MSGSIZE];
} mqq_seg_t;

/* ---- the per-process handle ------------------------------------------------------- */

typedef struct mqq {
    char name[JOBQ_URL_NAME_MAX + 1];
    mqd_t jobs, results;
    mqq_seg_t *seg;
    _Atomic unsigned fork_gen; /* mqq_reclaim.c's s_fork_gen at pid/start read */
    _Atomic int pid;
    _Atomic uint64_t start;
    _Atomic uint32_t hint; /* slot this process used last */
    _Atomic uint64_t take_seq;
    _Atomic uint32_t full; /* the last put found the mq full: poll before sending */
    _Atomic int64_t next_reclaim_ms;
    char why[160];          /* why the last attach found the objects stale */
    pthread_mutex_t res_mu; /* guards res_buf during get_result */
    alignas(8) unsigned char res_buf[MQQ_MSGSIZE];
} mqq_t;

/* ---- common/mqq.c ---------------------------------------------------------------- */

/* Closes the handle's mqs, unmaps its segment and frees it (the ops table's destroy). */
void mqq_destroy_(void *impl);

/* ---- common/mqq_data.c ----------------------------------------------------------- */

/* The operations of an open mq:// queue (impl is an mqq_t). */
extern const jobq_queue_ops_t mqq_ops_;

/* Sends one result (header fields filled but magic, kind, lengths and check) with
 * output hdr->output_len bytes and error hdr->error_len bytes, waiting at most
 * timeout_ms. Returns a jobq_err code. */
int mqq_send_result_(mqq_t *q, const mqq_res_hdr_t *hdr, const void *out, const void *err,
                     int64_t timeout_ms);

/* ---- common/mqq_reclaim.c -------------------------------------------------------- */

/* Registers the pthread_atfork handler that makes mqq_self_ re-read pid and start time
 * in a child (call once, through pthread_once). */
void mqq_register_atfork_(void);

/* A 32-bit checksum of a header (whose check field the caller zeroed) and a body. */
uint32_t mqq_check_(const void *hdr, size_t hlen, const void *body, size_t blen);

/* Returns 1 if buf holds a well-formed job message; n is its length, or 0 when unknown
 * (the reclaimer reading a dead getter's buffer). */
int mqq_job_valid_(const unsigned char *buf, size_t n);

/* The start time (/proc/PID/stat field 22) of process pid, or 0 if unknown. */
uint64_t mqq_proc_start_(pid_t pid);

/* Returns 1 if process pid runs (not a zombie) and, when start is not 0, is the one
 * that started at start. Without /proc it falls back to kill(pid, 0). */
int mqq_alive_(pid_t pid, uint64_t start);

/* This process's pid and start time, re-read after a fork. */
pid_t mqq_self_(mqq_t *q, uint64_t *start);

/* Sleeps ms milliseconds. */
void mqq_sleep_ms_(int64_t ms);

/* Wakes joiners if one said it sleeps; costs one load when none does. */
void mqq_wake_joiners_(mqq_seg_t *seg);

/* Claims a free slot for a receive: returns its index in state RECEIVING with a zeroed
 * header, or MQQ_NONE when every slot is busy. */
uint32_t mqq_claim_(mqq_t *q, pid_t pid, uint64_t start);

/* Gives back a claimed slot that received nothing. */
void mqq_release_(mqq_t *q, uint32_t si, pid_t pid);

/* A message of n bytes arrived in slot si: checks it and moves the slot to HELD.
 * Returns 0, or -1 for a malformed message (dropped; the slot stays RECEIVING). */
int mqq_take_(mqq_t *q, uint32_t si, size_t n, pid_t pid, jobq_item_t *item);

/* Takes an orphan from the table. Returns 0 with *item filled, or -1 if there is none. */
int mqq_adopt_(mqq_t *q, pid_t pid, uint64_t start, jobq_item_t *item);

/* Finishes the item in slot si whose word was w. Returns 0, or -1 if it changed. */
int mqq_finish_(mqq_t *q, uint32_t si, uint64_t w);

/* One reclaim pass over the table (only_pid 0: every dead owner). Returns the count of
 * items handed back, or -1 if the mutex is unusable or (try) busy. */
int mqq_reclaim_pass_(mqq_t *q, pid_t only_pid, int sig, int try);

/* Called by waiters, at most every MQQ_SLICE_MS per handle: looks for busy slots whose
 * owner died (or pending CRASHED results) and, if it finds one, runs a pass. */
void mqq_lazy_reclaim_(mqq_t *q);

#endif
