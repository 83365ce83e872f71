/*
 * common/mqq.c: the mq:// transport of the local JoinableQueue (include/jobq/queue.h)
 * over POSIX message queues, with the bookkeeping in a small shared-memory segment.
 *
 * Objects (common/mqq_priv.h): the jobs mq, the results mq and the state segment,
 * named after the uid and NAME, created O_EXCL with mode 0600. The segment is the
 * creation lock: whoever creates it creates the two mqs, then publishes the segment's
 * magic last. An attacher that finds a segment with a bad magic or size, one whose
 * creator died before publishing (or that stays unpublished for a second), or an mq
 * that is missing or has other attributes, calls the set stale: with CREATE it unlinks
 * and rebuilds it, without CREATE the open fails with JOBQ_ECORRUPT and a log line.
 *
 * Limits (this machine has no CAP_SYS_RESOURCE: msg_max 10, msgsize_max 8192):
 *   - Every item is one message of at most 8192 bytes: a 48-byte header (magic, kind,
 *     checksum, length, id, attempt, max attempts, ttr) and the payload, so a payload
 *     may be at most MQQ_PAYLOAD_MAX = 8144 bytes. A larger one gets JOBQ_ETOOBIG from
 *     put and a LOG_WARN naming the limit: never truncation.
 *   - A result is a 64-byte header plus output and error text, together at most
 *     MQQ_RESULT_MAX = 8128 bytes; put_result refuses more with JOBQ_ETOOBIG.
 *   - Capacity is min(max_items, 10, /proc/sys/fs/mqueue/msg_max) items (10 here), and
 *     the same for the results channel; max_bytes is not used (the mq bounds bytes).
 *   - Each queue charges 2 x depth x 8 KiB to the uid's RLIMIT_MSGQUEUE (800 KiB
 *     here): about four mq:// queues per uid can exist at once.
 *   - At most MQQ_SLOTS (256) items can be held (taken, not yet task_done) at once
 *     across all processes; a get beyond that waits like a get on an empty queue.
 *
 * Counting. puts (in the segment) counts items put; each in-flight slot's word
 * counts the items finished through it. unfinished = puts - sum(slot done counts).
 * Finishing an item is one CAS on its slot word (state HELD -> FREE, done + 1), so a
 * process killed anywhere in task_done either finished the item or still holds it.
 * A put counts first, then sends without blocking; when the mq is full it uncounts,
 * waits with poll(POLLOUT) outside the counted region and retries, so a producer
 * killed while blocked leaves no count behind.
 *
 * The in-flight table. A getter claims a free slot (CAS on its word, owner = pid),
 * records its start time (/proc/PID/stat field 22) with the header of the slot's
 * buffer zeroed, and then mq_receive()s DIRECTLY into that buffer, which lives in the
 * segment. So the moment the kernel dequeues a message it is already in shared memory:
 * a getter killed right after mq_receive returned leaves a RECEIVING slot whose buffer
 * holds a valid header (magic + checksum), and the reclaimer knows the message was
 * taken; an invalid header means nothing was taken. Slot states and who moves them:
 *
 *            s_claim                   mq_receive ok: s_take
 *   FREE --------------> CLAIMED ---> RECEIVING --------------------> HELD
 *    ^  ^  s_release (timeout, empty)    |                             |  |
 *    |  +--------------------------------+         s_finish (task_done)|  | owner dead:
 *    +-----------------------------------------------------------------+  | s_reclaim_slot
 *    |                                                                    v
 *    |  s_crash_send (result sent)                  attempts left: ORPHAN <----+
 *    +------------------------------- CRASHING <--- attempts used up   |  s_adopt|
 *                                                                      v        |
 *                                                   (a getter) ADOPTING -> HELD |
 *                                            owner of ADOPTING dead ------------+
 *
 * A dead owner's CLAIMED slot, or RECEIVING slot with an invalid header, goes back to
 * FREE. A RECEIVING slot with a valid header becomes ORPHAN with the same attempt (the
 * item was never handed to the caller); HELD becomes ORPHAN with attempt + 1, or, when
 * the attempts are used up, CRASHING: a CRASHED result is sent on the results mq
 * (without blocking; retried by later passes while that mq is full) and only then is
 * the item counted done. A sentinel whose holder died is counted done (consumed).
 * Orphans are not re-sent on the mq (a re-send cannot be made atomic with freeing the
 * slot): getters take them straight from the table, and size() counts them.
 *
 * Who reclaims: jobq_queue_reclaim (after waitpid), and lazily, at most every 100 ms,
 * any process waiting in get, join or get_result, which checks the owners of busy slots
 * (/proc/PID/stat: gone, zombie, or another start time means dead) and then runs the
 * same pass under the segment's robust, process-shared mutex (EOWNERDEAD is repaired
 * with pthread_mutex_consistent; every step of a pass can be redone). The mutex is
 * used only for reclaim: put, get and task_done take no lock. There are no pthread
 * condition variables: join sleeps on a futex word in the segment (done_seq), at most
 * 100 ms at a time, and task_done wakes it only when a joiner has raised join_flag.
 * Getters wait in mq_timedreceive (CLOCK_REALTIME deadlines) in slices of at most
 * 100 ms and recheck the closed flag and the orphans between slices.
 *
 * close() sets a flag in the segment: later puts get JOBQ_ECLOSED (sentinels are still
 * allowed); a getter gets JOBQ_ECLOSED once the mq is empty and no item that could come
 * back (an orphan, or an item held by another process) remains.
 *
 * Fault points (common/fault.h): mqq.get.claimed (slot RECEIVING, before mq_receive),
 * mqq.get.received (mq_receive returned, slot not yet HELD), mqq.put.counted (put
 * counted, not yet sent), mqq.reclaim.locked (inside a reclaim pass, holding the mutex),
 * mqq.create.init (segment and mqs made, magic not yet published).
 *
 * Known windows: a producer killed between counting a put and entering mq_timedsend
 * (a few instructions) leaves unfinished one too high; a reclaimer killed between
 * sending a CRASHED result and freeing the slot makes the next pass send it again;
 * a pid reused while its old owner's slot was CLAIMED/ADOPTING (no start time yet)
 * keeps that slot until the new process exits. A wall-clock step backwards can stretch
 * one mq_timedreceive slice.
 */
#include "common/alloc.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/futex.h"
#include "common/log.h"
#include "common/mqq_priv.h"
#include "common/queue_impl.h"
#include "jobq/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- message format --------------------------------------------------------------- */

#define MQQ_MSG_MAGIC 0x314d514au /* "JQM1" */
enum { MQQ_KIND_JOB = 1, MQQ_KIND_SENTINEL = 2, MQQ_KIND_RESULT = 3 };

typedef struct mqq_job_hdr {
    uint32_t magic;
    uint16_t kind;    /* MQQ_KIND_JOB or MQQ_KIND_SENTINEL */
    uint16_t hdr_len; /* MQQ_JOB_HDR */
    uint32_t check;   /* s_check of this header (check = 0) and the payload */
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
    _Atomic unsigned fork_gen; /* s_fork_gen when pid/start were read */
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

static _Atomic unsigned s_fork_gen = 1;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_after_fork_child(void)
{
    atomic_fetch_add(&s_fork_gen, 1);
}

static void
s_register_atfork(void)
{
    pthread_atfork(NULL, NULL, s_after_fork_child);
}

/* ---- small helpers ---------------------------------------------------------------- */

static uint64_t
s_mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t v;
    for (; n >= 8; n -= 8, b += 8) {
        memcpy(&v, b, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    v = 0;
    if (n)
        memcpy(&v, b, n);
    h = (h ^ v ^ ((uint64_t)n << 56)) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

/* A 32-bit checksum of a header (whose check field the caller zeroed) and a body. */
static uint32_t
s_check(const void *hdr, size_t hlen, const void *body, size_t blen)
{
    uint64_t h = s_mix(0x9e3779b97f4a7c15ull ^ (hlen + blen), hdr, hlen);
    h = s_mix(h, body, blen);
    return (uint32_t)(h ^ (h >> 32));
}

/* Returns 1 if buf holds a well-formed job message; n is its length, or 0 when unknown
 * (the reclaimer reading a dead getter's buffer). */
static int
s_job_valid(const unsigned char *buf, size_t n)
{
    mqq_job_hdr_t h;
    memcpy(&h, buf, sizeof h);
    if (h.magic != MQQ_MSG_MAGIC || h.hdr_len != MQQ_JOB_HDR || h.len > MQQ_PAYLOAD_MAX ||
        (h.kind != MQQ_KIND_JOB && h.kind != MQQ_KIND_SENTINEL))
        return 0;
    if (n && n != MQQ_JOB_HDR + (size_t)h.len)
        return 0;
    uint32_t want = h.check;
    h.check = 0;
    return s_check(&h, sizeof h, buf + MQQ_JOB_HDR, h.len) == want;
}

/* Reads /proc/PID/stat: *state gets field 3, *start field 22. Returns 0, or -1 with
 * errno (ENOENT or ESRCH: no such process). */
static int
s_proc_stat(pid_t pid, char *state, uint64_t *start)
{
    char path[40], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int err = errno;
    close(fd);
    if (n <= 0) {
        errno = n < 0 ? err : ESRCH;
        return -1;
    }
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ') {
        errno = EINVAL;
        return -1;
    }
    p += 2;
    *state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p) {
            errno = EINVAL;
            return -1;
        }
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}

static uint64_t
s_proc_start(pid_t pid)
{
    char st;
    uint64_t v = 0;
    return s_proc_stat(pid, &st, &v) == 0 ? v : 0;
}

/* Returns 1 if process pid runs (not a zombie) and, when start is not 0, is the one
 * that started at start. Without /proc it falls back to kill(pid, 0). */
static int
s_alive(pid_t pid, uint64_t start)
{
    char st;
    uint64_t v = 0;
    if (pid <= 0)
        return 0;
    if (s_proc_stat(pid, &st, &v) < 0) {
        if (errno == ENOENT || errno == ESRCH)
            return 0;
        return !(kill(pid, 0) < 0 && errno == ESRCH);
    }
    if (st == 'Z' || st == 'X' || st == 'x')
        return 0;
    return start == 0 || v == start;
}

/* This process's pid and start time, re-read after a fork. */
static pid_t
s_self(mqq_t *q, uint64_t *start)
{
    unsigned gen = atomic_load_explicit(&s_fork_gen, memory_order_acquire);
    if (atomic_load_explicit(&q->fork_gen, memory_order_acquire) != gen) {
        pid_t pid = getpid();
        atomic_store(&q->pid, pid);
        atomic_store(&q->start, s_proc_start(pid));
        atomic_store(&q->hint, 0);
        atomic_store_explicit(&q->fork_gen, gen, memory_order_release);
    }
    *start = atomic_load_explicit(&q->start, memory_order_relaxed);
    return atomic_load_explicit(&q->pid, memory_order_relaxed);
}

/* Absolute CLOCK_REALTIME time ms from now; ms <= 0 gives a time in the past. */
static void
s_abs_realtime(int64_t ms, struct timespec *ts)
{
    if (ms <= 0) {
        ts->tv_sec = 0;
        ts->tv_nsec = 0;
        return;
    }
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* The next sleep before deadline_ms: at most MQQ_SLICE_MS. */
static int64_t
s_slice(int64_t deadline_ms)
{
    int64_t left = jobq_remaining_ms(deadline_ms);
    return (left < 0 || left > MQQ_SLICE_MS) ? MQQ_SLICE_MS : left;
}

static void
s_sleep_ms(int64_t ms)
{
    struct timespec ts;
    jobq_ms_to_timespec(ms, &ts);
    nanosleep(&ts, NULL);
}

/* Wakes joiners if one said it sleeps; costs one load when none does. */
static void
s_wake_joiners(mqq_seg_t *seg)
{
    if (atomic_load(&seg->join_flag) && atomic_exchange(&seg->join_flag, 0)) {
        atomic_fetch_add(&seg->done_seq, 1);
        jobq_futex_wake((uint32_t *)&seg->done_seq, INT32_MAX);
    }
}

static long
s_sysctl(const char *path, long dflt)
{
    char buf[32];
    long v = dflt;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = '\0';
            v = strtol(buf, NULL, 10);
        }
        close(fd);
    }
    return v > 0 ? v : dflt;
}

void
mqq_names(const char *name, mqq_names_t *out)
{
    unsigned uid = (unsigned)geteuid();
    snprintf(out->seg, sizeof out->seg, "/jobq-mq-%u-%s", uid, name);
    snprintf(out->jobs, sizeof out->jobs, "/jobq-mq-%u-%s", uid, name);
    snprintf(out->results, sizeof out->results, "/jobq-mq-%u-%s:r", uid, name);
}

/* ---- the robust mutex ------------------------------------------------------------- */

/* Locks the segment mutex (try: do not wait). Returns 0, 1 when try found it busy, or
 * -1 when it is unrecoverable. Repairs EOWNERDEAD: every reclaim step can be redone. */
static int
s_lock(mqq_t *q, int try)
{
    int r = try ? pthread_mutex_trylock(&q->seg->mu) : pthread_mutex_lock(&q->seg->mu);
    if (r == EOWNERDEAD) {
        LOG_NOTICE("mq://%s: a process died inside a reclaim pass; repairing", q->name);
        pthread_mutex_consistent(&q->seg->mu);
        return 0;
    }
    if (r == EBUSY && try)
        return 1;
    if (r != 0)
        LOG_ERR("mq://%s: state mutex unusable: %s; unlink and recreate the queue", q->name,
                strerror(r));
    return r == 0 ? 0 : -1;
}

/* ---- slots: claim, take, adopt, finish -------------------------------------------- */

static int
s_cas(mqq_slot_t *s, uint64_t old, uint64_t new_word)
{
    return atomic_compare_exchange_strong(&s->word, &old, new_word);
}

static void
s_raise_hw(mqq_seg_t *seg, uint32_t upto)
{
    uint32_t hw = atomic_load(&seg->slot_hw);
    while (hw < upto && !atomic_compare_exchange_weak(&seg->slot_hw, &hw, upto))
        ;
}

/* Claims a free slot for a receive: returns its index in state RECEIVING with a zeroed
 * header, or MQQ_NONE when every slot is busy. */
static uint32_t
s_claim(mqq_t *q, pid_t pid, uint64_t start)
{
    mqq_seg_t *seg = q->seg;
    uint32_t h = atomic_load_explicit(&q->hint, memory_order_relaxed);
    for (uint32_t k = 0; k < MQQ_SLOTS; k++) {
        uint32_t i = (h + k) % MQQ_SLOTS;
        mqq_slot_t *s = &seg->slots[i];
        uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
        if (W_STATE(w) != S_FREE || !s_cas(s, w, W_MAKE(S_CLAIMED, pid, W_DONE(w))))
            continue;
        s_raise_hw(seg, i + 1);
        memset(seg->bufs[i], 0, MQQ_JOB_HDR);
        atomic_store_explicit(&s->start, start, memory_order_relaxed);
        atomic_store_explicit(&s->word, W_MAKE(S_RECEIVING, pid, W_DONE(w)), memory_order_release);
        atomic_store_explicit(&q->hint, i, memory_order_relaxed);
        return i;
    }
    return MQQ_NONE;
}

/* Gives back a claimed slot that received nothing. */
static void
s_release(mqq_t *q, uint32_t si, pid_t pid)
{
    mqq_slot_t *s = &q->seg->slots[si];
    uint64_t w = atomic_load(&s->word);
    if (W_STATE(w) != S_RECEIVING || W_PID(w) != (pid & 0x3fffff) ||
        !s_cas(s, w, W_MAKE(S_FREE, 0, W_DONE(w))))
        LOG_WARN("mq://%s: slot %u changed hands while this process owned it", q->name, si);
}

/* Fills item from slot si, which this process now holds (done: its word's count). */
static void
s_fill_item(mqq_t *q, uint32_t si, uint32_t attempt, uint64_t done, jobq_item_t *item)
{
    const unsigned char *buf = q->seg->bufs[si];
    mqq_job_hdr_t h;
    memcpy(&h, buf, sizeof h);
    size_t len = h.len <= MQQ_PAYLOAD_MAX ? h.len : 0;
    item->id = h.id;
    item->attempt = attempt;
    item->max_attempts = h.max_attempts;
    item->ttr_ms = h.ttr_ms;
    item->sentinel = h.kind == MQQ_KIND_SENTINEL;
    item->payload = len ? jobq_memdup(buf + MQQ_JOB_HDR, len) : NULL;
    item->payload_len = len;
    item->token = ((uint64_t)(si + 1) << 40) | (done & TOKEN_DONE_MASK);
}

/* A message of n bytes arrived in slot si: checks it and moves the slot to HELD.
 * Returns 0, or -1 for a malformed message (dropped; the slot stays RECEIVING). */
static int
s_take(mqq_t *q, uint32_t si, size_t n, pid_t pid, jobq_item_t *item)
{
    mqq_slot_t *s = &q->seg->slots[si];
    unsigned char *buf = q->seg->bufs[si];
    if (!s_job_valid(buf, n)) {
        LOG_WARN("mq://%s: dropped a malformed %zu-byte message (not written by jobq)", q->name, n);
        memset(buf, 0, MQQ_JOB_HDR);
        return -1;
    }
    uint32_t attempt;
    memcpy(&attempt, buf + offsetof(mqq_job_hdr_t, attempt), sizeof attempt);
    atomic_store_explicit(&s->attempt, attempt, memory_order_relaxed);
    atomic_store_explicit(&s->seq, atomic_fetch_add(&q->take_seq, 1), memory_order_relaxed);
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    atomic_store_explicit(&s->word, W_MAKE(S_HELD, pid, W_DONE(w)), memory_order_release);
    s_fill_item(q, si, attempt, W_DONE(w), item);
    return 0;
}

/* Takes an orphan from the table. Returns 0 with *item filled, or -1 if there is none. */
static int
s_adopt(mqq_t *q, pid_t pid, uint64_t start, jobq_item_t *item)
{
    mqq_seg_t *seg = q->seg;
    uint32_t hint = atomic_load(&seg->orphans); /* read before the scan: see below */
    uint32_t hw = atomic_load(&seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++) {
        mqq_slot_t *s = &seg->slots[i];
        uint64_t w = atomic_load(&s->word);
        if (W_STATE(w) != S_ORPHAN || !s_cas(s, w, W_MAKE(S_ADOPTING, pid, W_DONE(w))))
            continue;
        uint32_t o = atomic_load(&seg->orphans);
        while (o && !atomic_compare_exchange_weak(&seg->orphans, &o, o - 1))
            ;
        uint32_t attempt = atomic_load(&s->next_attempt);
        atomic_store(&s->start, start);
        atomic_store(&s->attempt, attempt);
        atomic_store(&s->seq, atomic_fetch_add(&q->take_seq, 1));
        atomic_store_explicit(&s->word, W_MAKE(S_HELD, pid, W_DONE(w)), memory_order_release);
        s_fill_item(q, i, attempt, W_DONE(w), item);
        return 0;
    }
    /* None: clear the hint unless an orphan was published meanwhile (reclaimers store
     * ORPHAN before they raise the hint, so a raise after our read fails this CAS). */
    if (hint)
        atomic_compare_exchange_strong(&seg->orphans, &hint, 0);
    return -1;
}

/* Finishes the item in slot si whose word was w. Returns 0, or -1 if it changed. */
static int
s_finish(mqq_t *q, uint32_t si, uint64_t w)
{
    if (!s_cas(&q->seg->slots[si], w, W_MAKE(S_FREE, 0, W_DONE(w) + 1)))
        return -1;
    s_wake_joiners(q->seg);
    return 0;
}

/* ---- reclaim ---------------------------------------------------------------------- */

static int s_send_result(mqq_t *q, const mqq_res_hdr_t *hdr, const void *out, const void *err,
                         int64_t timeout_ms);

/* Sends the CRASHED result of CRASHING slot si without blocking; on success counts the
 * item done. Returns 1 if sent, 0 if the results mq is full (retried later). */
static int
s_crash_send(mqq_t *q, uint32_t si)
{
    mqq_slot_t *s = &q->seg->slots[si];
    uint64_t w = atomic_load(&s->word);
    mqq_job_hdr_t h;
    char text[160];
    memcpy(&h, q->seg->bufs[si], sizeof h);
    uint32_t attempt = atomic_load(&s->attempt);
    uint32_t status;
    int sig;
    int n = queue_reclaim_verdict(atomic_load(&s->crash_sig), (pid_t)atomic_load(&s->crash_pid),
                                  &status, &sig, text, sizeof text);
    if (n < 0)
        n = snprintf(text, sizeof text,
                     "worker process %d died (signal %d) holding the job; attempt %u of %u",
                     (int)atomic_load(&s->crash_pid), sig, attempt, h.max_attempts);
    mqq_res_hdr_t r = {
        .id = h.id, .attempt = attempt, .status = status, .signal = sig, .error_len = (uint32_t)n};
    if (s_send_result(q, &r, NULL, text, 0) != JOBQ_OK)
        return 0;
    s_finish(q, si, w);
    return 1;
}

/* Hands back the item of slot si (word w) whose owner died: an orphan with attempt
 * next_attempt, a CRASHED result when a delivered item used its last attempt, and a
 * sentinel is counted done. Returns 1. */
static int
s_hand_back(mqq_t *q, uint32_t si, uint64_t w, uint32_t next_attempt, int delivered, pid_t owner,
            int sig)
{
    mqq_seg_t *seg = q->seg;
    mqq_slot_t *s = &seg->slots[si];
    mqq_job_hdr_t h;
    memcpy(&h, seg->bufs[si], sizeof h);
    if (h.kind == MQQ_KIND_SENTINEL) {
        s_finish(q, si, w);
        return 1;
    }
    if (delivered && next_attempt > h.max_attempts) {
        atomic_store(&s->crash_pid, owner);
        atomic_store(&s->crash_sig, sig);
        if (s_cas(s, w, W_MAKE(S_CRASHING, 0, W_DONE(w))))
            s_crash_send(q, si);
        return 1;
    }
    atomic_store(&s->next_attempt, next_attempt);
    if (s_cas(s, w, W_MAKE(S_ORPHAN, 0, W_DONE(w))))
        atomic_fetch_add(&seg->orphans, 1);
    return 1;
}

/* Under the mutex: if the owner of slot si is dead (and is only_pid, unless that is 0),
 * hands back what it held. Returns the number of items handed back (0 or 1). */
static int
s_reclaim_slot(mqq_t *q, uint32_t si, pid_t only_pid, int sig, pid_t self)
{
    mqq_slot_t *s = &q->seg->slots[si];
    uint64_t w = atomic_load(&s->word);
    unsigned st = W_STATE(w);
    if (st == S_CRASHING) {
        s_crash_send(q, si);
        return 0;
    }
    pid_t owner = W_PID(w);
    if (st == S_FREE || st == S_ORPHAN || owner == self || (only_pid && owner != only_pid))
        return 0;
    uint64_t start = (st == S_RECEIVING || st == S_HELD) ? atomic_load(&s->start) : 0;
    /* jobq_queue_reclaim_timedout: the supervisor stopped the holder (SIGSTOP)
     * inside its handler, and kills it next */
    if (!(only_pid && (sig & QUEUE_RECLAIM_HARD)) && s_alive(owner, start))
        return 0;
    JOBQ_FAULT("mqq.reclaim.locked");
    switch (st) {
    case S_RECEIVING:
        if (s_job_valid(q->seg->bufs[si], 0)) {
            mqq_job_hdr_t h;
            memcpy(&h, q->seg->bufs[si], sizeof h);
            return s_hand_back(q, si, w, h.attempt, 0, owner, sig);
        }
        s_cas(s, w, W_MAKE(S_FREE, 0, W_DONE(w)));
        return 0;
    case S_HELD:
        return s_hand_back(q, si, w, atomic_load(&s->attempt) + 1, 1, owner, sig);
    case S_ADOPTING:
        return s_hand_back(q, si, w, atomic_load(&s->next_attempt), 0, owner, sig);
    default: /* S_CLAIMED: nothing was received */
        s_cas(s, w, W_MAKE(S_FREE, 0, W_DONE(w)));
        return 0;
    }
}

/* One reclaim pass over the table (only_pid 0: every dead owner). Returns the count of
 * items handed back, or -1 if the mutex is unusable or (try) busy. */
static int
s_reclaim_pass(mqq_t *q, pid_t only_pid, int sig, int try)
{
    uint64_t start;
    pid_t self = s_self(q, &start);
    if (s_lock(q, try) != 0)
        return -1;
    int n = 0;
    uint32_t hw = atomic_load(&q->seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++)
        n += s_reclaim_slot(q, i, only_pid, sig, self);
    pthread_mutex_unlock(&q->seg->mu);
    return n;
}

/* Called by waiters, at most every MQQ_SLICE_MS per handle: looks for busy slots whose
 * owner died (or pending CRASHED results) and, if it finds one, runs a pass. */
static void
s_lazy_reclaim(mqq_t *q)
{
    int64_t now = jobq_now_ms();
    if (now < atomic_load(&q->next_reclaim_ms))
        return;
    atomic_store(&q->next_reclaim_ms, now + MQQ_SLICE_MS);
    uint64_t start;
    pid_t self = s_self(q, &start);
    uint32_t hw = atomic_load(&q->seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++) {
        mqq_slot_t *s = &q->seg->slots[i];
        uint64_t w = atomic_load(&s->word);
        unsigned st = W_STATE(w);
        if (st == S_FREE || st == S_ORPHAN || (st != S_CRASHING && W_PID(w) == self))
            continue;
        uint64_t t = (st == S_RECEIVING || st == S_HELD) ? atomic_load(&s->start) : 0;
        if (st == S_CRASHING || !s_alive(W_PID(w), t)) {
            s_reclaim_pass(q, 0, 0, 1);
            return;
        }
    }
}

/* ---- the queue operations --------------------------------------------------------- */

static uint32_t
s_curmsgs(mqq_t *q)
{
    struct mq_attr a;
    return mq_getattr(q->jobs, &a) == 0 ? (uint32_t)a.mq_curmsgs : 0;
}

/* Closed queue, as seen by getter pid: 1 if nothing is left that it could still get
 * (the mq is empty, no orphan, no item that another process holds and could die with). */
static int
s_drained(mqq_t *q, pid_t pid)
{
    if (s_curmsgs(q) != 0)
        return 0;
    uint32_t hw = atomic_load(&q->seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++) {
        uint64_t w = atomic_load(&q->seg->slots[i].word);
        unsigned st = W_STATE(w);
        if (st == S_ORPHAN || st == S_ADOPTING)
            return 0;
        if (W_PID(w) != (pid & 0x3fffff) &&
            (st == S_HELD || (st == S_RECEIVING && s_job_valid(q->seg->bufs[i], 0))))
            return 0;
    }
    return 1;
}

static int
s_put(void *impl, jobq_job_t *job, int sentinel, int64_t timeout_ms)
{
    mqq_t *q = impl;
    mqq_seg_t *seg = q->seg;
    uint32_t len = sentinel ? 0 : job->payload_len;
    if (!sentinel) {
        if ((len && !job->payload) || job->max_attempts < 1 || job->ttr_ms < 1)
            return JOBQ_EINVAL;
        if (len > MQQ_PAYLOAD_MAX) {
            LOG_WARN("mq://%s: payload of %u bytes is over the mq:// limit of %u bytes (one "
                     "POSIX mq message of %u bytes minus a %u-byte header); use shm:// for "
                     "larger payloads",
                     q->name, len, MQQ_PAYLOAD_MAX, MQQ_MSGSIZE, MQQ_JOB_HDR);
            return JOBQ_ETOOBIG;
        }
    }
    if (jobq_id_is_zero(&job->id))
        jobq_id_generate(&job->id);
    alignas(8) unsigned char buf[MQQ_MSGSIZE];
    mqq_job_hdr_t h = {.magic = MQQ_MSG_MAGIC,
                       .kind = sentinel ? MQQ_KIND_SENTINEL : MQQ_KIND_JOB,
                       .hdr_len = MQQ_JOB_HDR,
                       .len = len,
                       .id = job->id,
                       .attempt = sentinel ? 1 : job->attempt + 1,
                       .max_attempts = sentinel ? 1 : job->max_attempts,
                       .ttr_ms = job->ttr_ms};
    h.check = s_check(&h, sizeof h, job->payload, len);
    memcpy(buf, &h, sizeof h);
    if (len)
        memcpy(buf + sizeof h, job->payload, len);

    static const struct timespec past = {0, 0};
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    for (;;) {
        if (!sentinel && atomic_load(&seg->closed))
            return JOBQ_ECLOSED;
        if (atomic_load_explicit(&q->full, memory_order_relaxed)) {
            struct pollfd pfd = {.fd = (int)q->jobs, .events = POLLOUT};
            poll(&pfd, 1, (int)s_slice(deadline));
        }
        atomic_fetch_add(&seg->puts, 1);
        JOBQ_FAULT("mqq.put.counted");
        if (mq_timedsend(q->jobs, (const char *)buf, sizeof h + len, 0, &past) == 0) {
            atomic_store_explicit(&q->full, 0, memory_order_relaxed);
            return JOBQ_OK;
        }
        int err = errno;
        atomic_fetch_sub(&seg->puts, 1);
        s_wake_joiners(seg);
        if (err == EINTR)
            continue;
        if (err != ETIMEDOUT && err != EAGAIN) {
            LOG_WARN("mq://%s: mq_timedsend: %s", q->name, strerror(err));
            return JOBQ_ESYS;
        }
        atomic_store_explicit(&q->full, 1, memory_order_relaxed);
        if (jobq_remaining_ms(deadline) == 0)
            return timeout_ms == 0 ? JOBQ_EFULL : JOBQ_ETIMEDOUT;
    }
}

static int
s_get(void *impl, jobq_item_t *item, int64_t timeout_ms)
{
    mqq_t *q = impl;
    mqq_seg_t *seg = q->seg;
    uint64_t start;
    pid_t pid = s_self(q, &start);
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    uint32_t si = MQQ_NONE;
    int rc, scan = 0;
    for (;;) {
        if ((scan || atomic_load_explicit(&seg->orphans, memory_order_relaxed)) &&
            s_adopt(q, pid, start, item) == 0) {
            rc = JOBQ_OK;
            break;
        }
        scan = 0;
        if (si == MQQ_NONE && (si = s_claim(q, pid, start)) == MQQ_NONE) {
            if (jobq_remaining_ms(deadline) == 0)
                return timeout_ms == 0 ? JOBQ_EEMPTY : JOBQ_ETIMEDOUT;
            s_lazy_reclaim(q); /* every slot is busy: wait for one */
            s_sleep_ms(5);
            scan = 1;
            continue;
        }
        JOBQ_FAULT("mqq.get.claimed");
        struct timespec abs;
        s_abs_realtime(s_slice(deadline), &abs);
        ssize_t n = mq_timedreceive(q->jobs, (char *)seg->bufs[si], MQQ_MSGSIZE, NULL, &abs);
        if (n >= 0) {
            JOBQ_FAULT("mqq.get.received");
            if (s_take(q, si, (size_t)n, pid, item) == 0)
                return JOBQ_OK;
            continue;
        }
        int err = errno;
        if (err == EINTR)
            continue;
        if (err != ETIMEDOUT && err != EAGAIN) {
            LOG_WARN("mq://%s: mq_timedreceive: %s", q->name, strerror(err));
            rc = JOBQ_ESYS;
            break;
        }
        if (atomic_load(&seg->closed) && s_drained(q, pid)) {
            rc = JOBQ_ECLOSED;
            break;
        }
        if (jobq_remaining_ms(deadline) == 0) {
            rc = timeout_ms == 0 ? JOBQ_EEMPTY : JOBQ_ETIMEDOUT;
            break;
        }
        s_lazy_reclaim(q);
        scan = 1;
    }
    if (si != MQQ_NONE)
        s_release(q, si, pid);
    return rc;
}

static int
s_task_done(void *impl, const jobq_item_t *item)
{
    mqq_t *q = impl;
    mqq_seg_t *seg = q->seg;
    if (item) {
        uint64_t si = (item->token >> 40) - 1;
        if (item->token == 0 || si >= MQQ_SLOTS)
            return JOBQ_ESTATE;
        uint64_t w = atomic_load(&seg->slots[si].word);
        if (W_STATE(w) != S_HELD ||
            (W_DONE(w) & TOKEN_DONE_MASK) != (item->token & TOKEN_DONE_MASK))
            return JOBQ_ESTATE;
        return s_finish(q, (uint32_t)si, w) == 0 ? JOBQ_OK : JOBQ_ESTATE;
    }
    uint64_t start;
    pid_t pid = s_self(q, &start) & 0x3fffff;
    for (;;) { /* the oldest item this process holds */
        uint32_t best = MQQ_NONE, hw = atomic_load(&seg->slot_hw);
        uint64_t best_seq = UINT64_MAX, best_w = 0;
        for (uint32_t i = 0; i < hw; i++) {
            uint64_t w = atomic_load(&seg->slots[i].word);
            uint64_t seq = atomic_load(&seg->slots[i].seq);
            if (W_STATE(w) == S_HELD && W_PID(w) == pid && seq < best_seq) {
                best = i;
                best_seq = seq;
                best_w = w;
            }
        }
        if (best == MQQ_NONE)
            return JOBQ_ESTATE;
        if (s_finish(q, best, best_w) == 0)
            return JOBQ_OK;
    }
}

static size_t
s_unfinished(void *impl)
{
    mqq_t *q = impl;
    uint64_t done = 0;
    uint32_t hw = atomic_load(&q->seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++) /* done first, puts last: never a false zero */
        done += W_DONE(atomic_load(&q->seg->slots[i].word));
    uint64_t puts = atomic_load(&q->seg->puts);
    return puts > done ? (size_t)(puts - done) : 0;
}

static int
s_join(void *impl, int64_t timeout_ms)
{
    mqq_t *q = impl;
    mqq_seg_t *seg = q->seg;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    for (;;) {
        uint32_t seq = atomic_load(&seg->done_seq);
        atomic_store(&seg->join_flag, 1);
        if (s_unfinished(q) == 0)
            return JOBQ_OK;
        if (jobq_remaining_ms(deadline) == 0)
            return JOBQ_ETIMEDOUT;
        s_lazy_reclaim(q);
        jobq_futex_wait((uint32_t *)&seg->done_seq, seq, s_slice(deadline));
    }
}

static int
s_close(void *impl)
{
    mqq_t *q = impl;
    atomic_store(&q->seg->closed, 1);
    return JOBQ_OK;
}

static size_t
s_size(void *impl)
{
    mqq_t *q = impl;
    size_t n = s_curmsgs(q);
    uint32_t hw = atomic_load(&q->seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++) {
        unsigned st = W_STATE(atomic_load(&q->seg->slots[i].word));
        n += st == S_ORPHAN || st == S_ADOPTING;
    }
    return n;
}

static int
s_full(void *impl)
{
    mqq_t *q = impl;
    struct mq_attr a;
    return mq_getattr(q->jobs, &a) == 0 && a.mq_curmsgs >= a.mq_maxmsg;
}

static int
s_reclaim(void *impl, pid_t pid, int sig)
{
    return s_reclaim_pass(impl, pid > 0 ? pid : 0, sig, 0);
}

/* Sends one result (header fields filled but magic, kind, lengths and check) with
 * output hdr->output_len bytes and error hdr->error_len bytes. */
static int
s_send_result(mqq_t *q, const mqq_res_hdr_t *hdr, const void *out, const void *err,
              int64_t timeout_ms)
{
    alignas(8) unsigned char buf[MQQ_MSGSIZE];
    mqq_res_hdr_t h = *hdr;
    size_t olen = h.output_len, elen = h.error_len;
    h.magic = MQQ_MSG_MAGIC;
    h.kind = MQQ_KIND_RESULT;
    h.hdr_len = MQQ_RESULT_HDR;
    h.check = 0;
    if (olen)
        memcpy(buf + sizeof h, out, olen);
    if (elen)
        memcpy(buf + sizeof h + olen, err, elen);
    h.check = s_check(&h, sizeof h, buf + sizeof h, olen + elen);
    memcpy(buf, &h, sizeof h);
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    for (;;) {
        struct timespec abs;
        int r;
        if (timeout_ms < 0) {
            r = mq_send(q->results, (const char *)buf, sizeof h + olen + elen, 0);
        } else {
            s_abs_realtime(jobq_remaining_ms(deadline), &abs);
            r = mq_timedsend(q->results, (const char *)buf, sizeof h + olen + elen, 0, &abs);
        }
        if (r == 0)
            return JOBQ_OK;
        if (errno == EINTR)
            continue;
        if (errno == ETIMEDOUT || errno == EAGAIN)
            return timeout_ms == 0 ? JOBQ_EFULL : JOBQ_ETIMEDOUT;
        LOG_WARN("mq://%s: sending a result: %s", q->name, strerror(errno));
        return JOBQ_ESYS;
    }
}

static int
s_put_result(void *impl, const jobq_result_t *res, int64_t timeout_ms)
{
    mqq_t *q = impl;
    if ((res->output_len && !res->output) || (res->error_len && !res->error) ||
        (unsigned)res->status >= JOBQ_STATUS_COUNT_)
        return JOBQ_EINVAL;
    uint64_t total = (uint64_t)res->output_len + res->error_len;
    if (total > MQQ_RESULT_MAX) {
        LOG_WARN("mq://%s: result of %llu bytes (output %u + error %u) is over the mq:// "
                 "limit of %u bytes; report a FAILED result with a short error instead, or "
                 "use shm://",
                 q->name, (unsigned long long)total, res->output_len, res->error_len,
                 MQQ_RESULT_MAX);
        return JOBQ_ETOOBIG;
    }
    mqq_res_hdr_t h = {.output_len = res->output_len,
                       .id = res->id,
                       .attempt = res->attempt,
                       .status = (uint32_t)res->status,
                       .exit_code = res->exit_code,
                       .signal = res->signal,
                       .duration_us = res->duration_us,
                       .error_len = res->error_len};
    return s_send_result(q, &h, res->output, res->error, timeout_ms);
}

/* Returns 1 if buf[0..n) is a well-formed result message. */
static int
s_result_valid(const unsigned char *buf, size_t n)
{
    mqq_res_hdr_t h;
    if (n < sizeof h)
        return 0;
    memcpy(&h, buf, sizeof h);
    if (h.magic != MQQ_MSG_MAGIC || h.kind != MQQ_KIND_RESULT || h.hdr_len != MQQ_RESULT_HDR ||
        (uint64_t)h.output_len + h.error_len != n - sizeof h || h.status >= JOBQ_STATUS_COUNT_)
        return 0;
    uint32_t want = h.check;
    h.check = 0;
    return s_check(&h, sizeof h, buf + sizeof h, n - sizeof h) == want;
}

static int
s_get_result(void *impl, jobq_result_t *res, int64_t timeout_ms)
{
    mqq_t *q = impl;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    int rc = JOBQ_ESYS;
    pthread_mutex_lock(&q->res_mu);
    for (;;) {
        struct timespec abs;
        s_abs_realtime(s_slice(deadline), &abs);
        ssize_t n = mq_timedreceive(q->results, (char *)q->res_buf, MQQ_MSGSIZE, NULL, &abs);
        if (n >= 0 && s_result_valid(q->res_buf, (size_t)n)) {
            mqq_res_hdr_t h;
            memcpy(&h, q->res_buf, sizeof h);
            jobq_result_init(res);
            res->id = h.id;
            res->attempt = h.attempt;
            res->status = (jobq_status)h.status;
            res->exit_code = h.exit_code;
            res->signal = h.signal;
            res->duration_us = h.duration_us;
            res->output_len = h.output_len;
            res->output = h.output_len ? q->res_buf + sizeof h : NULL;
            res->error_len = h.error_len;
            res->error = h.error_len ? (const char *)q->res_buf + sizeof h + h.output_len : NULL;
            rc = JOBQ_OK;
            break;
        }
        if (n >= 0) {
            LOG_WARN("mq://%s: dropped a malformed %zd-byte result", q->name, n);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != ETIMEDOUT && errno != EAGAIN) {
            LOG_WARN("mq://%s: receiving a result: %s", q->name, strerror(errno));
            break;
        }
        if (jobq_remaining_ms(deadline) == 0) {
            rc = timeout_ms == 0 ? JOBQ_EEMPTY : JOBQ_ETIMEDOUT;
            break;
        }
        s_lazy_reclaim(q);
    }
    pthread_mutex_unlock(&q->res_mu);
    return rc;
}

/* ---- open, create, attach, unlink ------------------------------------------------- */

static void
s_detach(mqq_t *q)
{
    if (q->seg)
        munmap(q->seg, sizeof *q->seg);
    if (q->jobs != (mqd_t)-1)
        mq_close(q->jobs);
    if (q->results != (mqd_t)-1)
        mq_close(q->results);
    q->seg = NULL;
    q->jobs = q->results = (mqd_t)-1;
}

static void
s_destroy(void *impl)
{
    mqq_t *q = impl;
    s_detach(q);
    pthread_mutex_destroy(&q->res_mu);
    jobq_free(q);
}

static void
s_unlink_names(const mqq_names_t *n)
{
    shm_unlink(n->seg);
    mq_unlink(n->jobs);
    mq_unlink(n->results);
}

static int __attribute__((format(printf, 2, 3))) s_stale(mqq_t *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->why, sizeof q->why, fmt, ap);
    va_end(ap);
    return MQQ_STALE;
}

/* Explains a failed mq_open (err) of an mq with depth messages. */
static void
s_mq_open_failed(mqq_t *q, const char *obj, int err, unsigned depth)
{
    struct rlimit rl = {0, 0};
    getrlimit(RLIMIT_MSGQUEUE, &rl);
    if (err == EMFILE)
        LOG_WARN("mq://%s: mq_open(%s): the uid's POSIX mq memory limit (RLIMIT_MSGQUEUE, "
                 "%llu bytes) is used up; each mq:// queue takes 2 x %u x %u bytes: unlink "
                 "unused queues or use shm://",
                 q->name, obj, (unsigned long long)rl.rlim_cur, depth, MQQ_MSGSIZE);
    else if (err == EINVAL)
        LOG_WARN("mq://%s: mq_open(%s) with %u messages of %u bytes refused; this system "
                 "allows %ld messages of %ld bytes (/proc/sys/fs/mqueue/msg_max, msgsize_max)",
                 q->name, obj, depth, MQQ_MSGSIZE, s_sysctl("/proc/sys/fs/mqueue/msg_max", 10),
                 s_sysctl("/proc/sys/fs/mqueue/msgsize_max", 8192));
    else
        LOG_WARN("mq://%s: mq_open(%s): %s", q->name, obj, strerror(err));
}

/* Checks that mq d is ours, private and shaped as the segment says. */
static int
s_check_mq(mqq_t *q, mqd_t d, const char *obj, unsigned depth)
{
    struct mq_attr a;
    struct stat st;
    if (mq_getattr(d, &a) < 0 || fstat((int)d, &st) < 0)
        return JOBQ_ESYS;
    if (st.st_uid != geteuid() || (st.st_mode & 077)) {
        LOG_WARN("mq://%s: %s is not private to this user (uid %u, mode %o): refusing it", q->name,
                 obj, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
        return JOBQ_EFORBIDDEN;
    }
    if (a.mq_maxmsg != (long)depth || a.mq_msgsize != MQQ_MSGSIZE)
        return s_stale(q, "%s holds %ld messages of %ld bytes, not %u of %u", obj, a.mq_maxmsg,
                       a.mq_msgsize, depth, MQQ_MSGSIZE);
    return JOBQ_OK;
}

/* Opens both mqs of an attached segment. */
static int
s_open_mqs(mqq_t *q, const mqq_names_t *n)
{
    q->jobs = mq_open(n->jobs, O_RDWR | O_CLOEXEC);
    if (q->jobs == (mqd_t)-1)
        return errno == ENOENT ? s_stale(q, "%s is missing", n->jobs) : JOBQ_ESYS;
    q->results = mq_open(n->results, O_RDWR | O_CLOEXEC);
    if (q->results == (mqd_t)-1)
        return errno == ENOENT ? s_stale(q, "%s is missing", n->results) : JOBQ_ESYS;
    int rc = s_check_mq(q, q->jobs, n->jobs, q->seg->depth);
    return rc ? rc : s_check_mq(q, q->results, n->results, q->seg->res_depth);
}

/* Waits (bounded) until the segment on fd is published; maps it into q->seg. */
static int
s_map_existing(mqq_t *q, int fd)
{
    int64_t give_up = jobq_now_ms() + MQQ_INIT_WAIT_MS;
    struct stat st;
    for (;;) {
        if (fstat(fd, &st) < 0)
            return JOBQ_ESYS;
        if (st.st_uid != geteuid() || (st.st_mode & 077)) {
            LOG_WARN("mq://%s: state segment is not private to this user (uid %u, mode %o)",
                     q->name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
            return JOBQ_EFORBIDDEN;
        }
        if ((uint64_t)st.st_size == sizeof(mqq_seg_t))
            break;
        if ((uint64_t)st.st_size > sizeof(mqq_seg_t) || jobq_now_ms() >= give_up)
            return s_stale(q, "state segment has %lld bytes, not %zu", (long long)st.st_size,
                           sizeof(mqq_seg_t));
        s_sleep_ms(5);
    }
    mqq_seg_t *seg =
        mmap(NULL, sizeof *seg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (seg == MAP_FAILED)
        return JOBQ_ESYS;
    q->seg = seg;
    for (;;) {
        uint64_t magic = atomic_load_explicit(&seg->magic, memory_order_acquire);
        if (magic == MQQ_SEG_MAGIC)
            break;
        if (magic != 0)
            return s_stale(q, "state segment has a bad magic number");
        pid_t creator = atomic_load(&seg->creator_pid);
        if (creator && !s_alive(creator, atomic_load(&seg->creator_start)))
            return s_stale(q, "its creator (pid %d) died before finishing it", (int)creator);
        if (jobq_now_ms() >= give_up)
            return s_stale(q, "state segment never finished initialising");
        s_sleep_ms(5);
    }
    if (seg->version != MQQ_SEG_VERSION || seg->nslots != MQQ_SLOTS || seg->size != sizeof *seg ||
        seg->msgsize != MQQ_MSGSIZE || seg->depth < 1 || seg->depth > MQQ_DEPTH_MAX ||
        seg->res_depth < 1 || seg->res_depth > MQQ_DEPTH_MAX)
        return s_stale(q, "state segment has another layout (version %u)", seg->version);
    return JOBQ_OK;
}

/* Attaches to an existing queue. Returns JOBQ_OK, JOBQ_ENOTFOUND, MQQ_STALE (q->why
 * says why), JOBQ_EFORBIDDEN or JOBQ_ESYS; on failure q holds nothing. */
static int
s_attach(mqq_t *q, const mqq_names_t *n)
{
    int fd = shm_open(n->seg, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return JOBQ_ENOTFOUND;
        LOG_WARN("mq://%s: shm_open(%s): %s", q->name, n->seg, strerror(errno));
        return JOBQ_ESYS;
    }
    int rc = s_map_existing(q, fd);
    close(fd);
    if (rc == JOBQ_OK)
        rc = s_open_mqs(q, n);
    if (rc != JOBQ_OK)
        s_detach(q);
    return rc;
}

/* Creates one mq (replacing a leftover of the same name once). */
static mqd_t
s_create_mq(mqq_t *q, const char *obj, unsigned depth)
{
    struct mq_attr a = {.mq_maxmsg = depth, .mq_msgsize = MQQ_MSGSIZE};
    for (int tries = 0; tries < 2; tries++) {
        mqd_t d = mq_open(obj, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
        if (d != (mqd_t)-1)
            return d;
        if (errno != EEXIST)
            break;
        LOG_NOTICE("mq://%s: removing %s left by a crashed run", q->name, obj);
        mq_unlink(obj);
    }
    s_mq_open_failed(q, obj, errno, depth);
    return (mqd_t)-1;
}

static void
s_init_segment(mqq_seg_t *seg, unsigned depth, unsigned res_depth)
{
    pthread_mutexattr_t ma;
    atomic_store(&seg->creator_start, s_proc_start(getpid()));
    atomic_store(&seg->creator_pid, getpid());
    seg->version = MQQ_SEG_VERSION;
    seg->nslots = MQQ_SLOTS;
    seg->size = sizeof *seg;
    seg->depth = depth;
    seg->res_depth = res_depth;
    seg->msgsize = MQQ_MSGSIZE;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&seg->mu, &ma);
    pthread_mutexattr_destroy(&ma);
}

/* Creates a new queue. Returns JOBQ_OK, MQQ_EXISTS or JOBQ_ESYS. */
static int
s_create(mqq_t *q, const mqq_names_t *n, const jobq_queue_opts_t *opts)
{
    unsigned limit = (unsigned)s_sysctl("/proc/sys/fs/mqueue/msg_max", MQQ_DEPTH_MAX);
    unsigned cap = limit < MQQ_DEPTH_MAX ? limit : MQQ_DEPTH_MAX;
    unsigned depth = opts->max_items ? opts->max_items : 1024;
    unsigned res_depth = opts->result_items ? opts->result_items : depth;
    if (depth > cap)
        LOG_INFO("mq://%s: capacity is %u items: max_items %u is clamped to the POSIX mq depth "
                 "limit",
                 q->name, cap, depth);
    depth = depth < cap ? depth : cap;
    res_depth = res_depth < cap ? res_depth : cap;
    int fd = shm_open(n->seg, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return MQQ_EXISTS;
        LOG_WARN("mq://%s: shm_open(%s): %s", q->name, n->seg, strerror(errno));
        return JOBQ_ESYS;
    }
    mqq_seg_t *seg = MAP_FAILED;
    if (fchmod(fd, 0600) == 0 && ftruncate(fd, (off_t)sizeof *seg) == 0)
        seg = mmap(NULL, sizeof *seg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    int err = errno;
    close(fd);
    if (seg == MAP_FAILED) {
        LOG_WARN("mq://%s: creating %s: %s", q->name, n->seg, strerror(err));
        shm_unlink(n->seg);
        return JOBQ_ESYS;
    }
    q->seg = seg;
    s_init_segment(seg, depth, res_depth);
    q->jobs = s_create_mq(q, n->jobs, depth);
    if (q->jobs != (mqd_t)-1)
        q->results = s_create_mq(q, n->results, res_depth);
    if (q->results == (mqd_t)-1) {
        s_detach(q);
        s_unlink_names(n);
        return JOBQ_ESYS;
    }
    JOBQ_FAULT("mqq.create.init");
    atomic_store_explicit(&seg->magic, MQQ_SEG_MAGIC, memory_order_release);
    return JOBQ_OK;
}

static int
s_open_create(mqq_t *q, const mqq_names_t *n, const jobq_queue_opts_t *opts)
{
    for (int tries = 0; tries < 5; tries++) {
        int rc = s_create(q, n, opts);
        if (rc != MQQ_EXISTS)
            return rc;
        rc = s_attach(q, n);
        if (rc == JOBQ_OK && (opts->flags & JOBQ_QUEUE_EXCL)) {
            s_detach(q);
            return JOBQ_EDUPLICATE;
        }
        if (rc == MQQ_STALE) {
            LOG_NOTICE("mq://%s: replacing a stale queue (%s)", q->name, q->why);
            s_unlink_names(n);
            continue;
        }
        if (rc != JOBQ_ENOTFOUND)
            return rc;
    }
    LOG_WARN("mq://%s: the queue's objects kept changing while opening it", q->name);
    return JOBQ_EBUSY;
}

static const jobq_queue_ops_t s_ops = {
    .put = s_put,
    .get = s_get,
    .task_done = s_task_done,
    .join = s_join,
    .close = s_close,
    .size = s_size,
    .full = s_full,
    .unfinished = s_unfinished,
    .reclaim = s_reclaim,
    .put_result = s_put_result,
    .get_result = s_get_result,
    .destroy = s_destroy,
};

int
mqq_open(const jobq_url_t *url, const jobq_queue_opts_t *opts, const jobq_queue_ops_t **ops,
         void **impl)
{
    mqq_names_t n;
    pthread_once(&s_once, s_register_atfork);
    mqq_names(url->name, &n);
    mqq_t *q = jobq_calloc(1, sizeof *q);
    q->jobs = q->results = (mqd_t)-1;
    snprintf(q->name, sizeof q->name, "%s", url->name);
    pthread_mutex_init(&q->res_mu, NULL);
    int rc;
    if (opts->flags & JOBQ_QUEUE_CREATE) {
        rc = s_open_create(q, &n, opts);
    } else {
        rc = s_attach(q, &n);
        if (rc == MQQ_STALE) {
            LOG_WARN("mq://%s: the queue's objects are stale or damaged (%s); open it with "
                     "JOBQ_QUEUE_CREATE to replace it, or unlink it",
                     q->name, q->why);
            rc = JOBQ_ECORRUPT;
        }
    }
    if (rc != JOBQ_OK) {
        s_destroy(q);
        return rc;
    }
    *ops = &s_ops;
    *impl = q;
    return JOBQ_OK;
}

int
mqq_unlink(const jobq_url_t *url)
{
    mqq_names_t n;
    int found = 0, failed = 0;
    mqq_names(url->name, &n);
    if (shm_unlink(n.seg) == 0)
        found = 1;
    else if (errno != ENOENT)
        failed = errno;
    if (mq_unlink(n.jobs) == 0)
        found = 1;
    else if (errno != ENOENT)
        failed = errno;
    if (mq_unlink(n.results) == 0)
        found = 1;
    else if (errno != ENOENT)
        failed = errno;
    if (failed) {
        LOG_WARN("mq://%s: unlink: %s", url->name, strerror(failed));
        return JOBQ_ESYS;
    }
    return found ? JOBQ_OK : JOBQ_ENOTFOUND;
}
