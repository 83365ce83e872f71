/*
 * common/mqq_reclaim.c: the in-flight table of the mq:// transport (common/mqq.c) and
 * the reclaim of items whose holder died, plus the small helpers the other mqq files
 * share (checksums, /proc start times, the fork generation). Types: common/mqq_int.h.
 *
 * The in-flight table. A getter claims a free slot (CAS on its word, owner = pid),
 * records its start time (/proc/PID/stat field 22) with the header of the slot's
 * buffer zeroed, and then mq_receive()s DIRECTLY into that buffer, which lives in the
 * segment. So the moment the kernel dequeues a message it is already in shared memory:
 * a getter killed right after mq_receive returned leaves a RECEIVING slot whose buffer
 * holds a valid header (magic + checksum), and the reclaimer knows the message was
 * taken; an invalid header means nothing was taken. Slot states and who moves them:
 *
 *            mqq_claim_                mq_receive ok: mqq_take_
 *   FREE --------------> CLAIMED ---> RECEIVING --------------------> HELD
 *    ^  ^  mqq_release_ (timeout, empty) |                             |  |
 *    |  +--------------------------------+      mqq_finish_ (task_done)|  | owner dead:
 *    +-----------------------------------------------------------------+  | s_reclaim_slot
 *    |                                                                    v
 *    |  s_crash_send (result sent)                  attempts left: ORPHAN <----+
 *    +------------------------------- CRASHING <--- attempts used up   |         |
 *                                                                      v        |
 *                                                 (mqq_adopt_) ADOPTING -> HELD |
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
 * Invariants relied on here: a slot is taken (from FREE or ORPHAN), finished, or taken
 * from a dead owner only by a CAS on its word; in between, its live owner alone moves it
 * on (CLAIMED -> RECEIVING -> HELD, ADOPTING -> HELD) with release stores. A reclaim
 * step runs only under the segment mutex and can be redone after EOWNERDEAD; an item is
 * counted done (slot done + 1) exactly once, by mqq_finish_ or by a pass.
 *
 * Fault point (common/fault.h): mqq.reclaim.locked (inside a reclaim pass, holding the
 * mutex).
 *
 * Known windows: a reclaimer killed between sending a CRASHED result and freeing the
 * slot makes the next pass send it again; a pid reused while its old owner's slot was
 * CLAIMED/ADOPTING (no start time yet) keeps that slot until the new process exits.
 */
#include "common/alloc.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/futex.h"
#include "common/log.h"
#include "common/mqq_int.h"
#include "jobq/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic unsigned s_fork_gen = 1;

static void
s_after_fork_child(void)
{
    atomic_fetch_add(&s_fork_gen, 1);
}

void
mqq_register_atfork_(void)
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
uint32_t
mqq_check_(const void *hdr, size_t hlen, const void *body, size_t blen)
{
    uint64_t h = s_mix(0x9e3779b97f4a7c15ull ^ (hlen + blen), hdr, hlen);
    h = s_mix(h, body, blen);
    return (uint32_t)(h ^ (h >> 32));
}

/* Returns 1 if buf holds a well-formed job message; n is its length, or 0 when unknown
 * (the reclaimer reading a dead getter's buffer). */
int
mqq_job_valid_(const unsigned char *buf, size_t n)
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
    return mqq_check_(&h, sizeof h, buf + MQQ_JOB_HDR, h.len) == want;
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

uint64_t
mqq_proc_start_(pid_t pid)
{
    char st;
    uint64_t v = 0;
    return s_proc_stat(pid, &st, &v) == 0 ? v : 0;
}

/* Returns 1 if process pid runs (not a zombie) and, when start is not 0, is the one
 * that started at start. Without /proc it falls back to kill(pid, 0). */
int
mqq_alive_(pid_t pid, uint64_t start)
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
pid_t
mqq_self_(mqq_t *q, uint64_t *start)
{
    unsigned gen = atomic_load_explicit(&s_fork_gen, memory_order_acquire);
    if (atomic_load_explicit(&q->fork_gen, memory_order_acquire) != gen) {
        pid_t pid = getpid();
        atomic_store(&q->pid, pid);
        atomic_store(&q->start, mqq_proc_start_(pid));
        atomic_store(&q->hint, 0);
        atomic_store_explicit(&q->fork_gen, gen, memory_order_release);
    }
    *start = atomic_load_explicit(&q->start, memory_order_relaxed);
    return atomic_load_explicit(&q->pid, memory_order_relaxed);
}

void
mqq_sleep_ms_(int64_t ms)
{
    struct timespec ts;
    jobq_ms_to_timespec(ms, &ts);
    nanosleep(&ts, NULL);
}

/* Wakes joiners if one said it sleeps; costs one load when none does. */
void
mqq_wake_joiners_(mqq_seg_t *seg)
{
    if (atomic_load(&seg->join_flag) && atomic_exchange(&seg->join_flag, 0)) {
        atomic_fetch_add(&seg->done_seq, 1);
        jobq_futex_wake((uint32_t *)&seg->done_seq, INT32_MAX);
    }
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
uint32_t
mqq_claim_(mqq_t *q, pid_t pid, uint64_t start)
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
void
mqq_release_(mqq_t *q, uint32_t si, pid_t pid)
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
int
mqq_take_(mqq_t *q, uint32_t si, size_t n, pid_t pid, jobq_item_t *item)
{
    mqq_slot_t *s = &q->seg->slots[si];
    unsigned char *buf = q->seg->bufs[si];
    if (!mqq_job_valid_(buf, n)) {
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
int
mqq_adopt_(mqq_t *q, pid_t pid, uint64_t start, jobq_item_t *item)
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
int
mqq_finish_(mqq_t *q, uint32_t si, uint64_t w)
{
    if (!s_cas(&q->seg->slots[si], w, W_MAKE(S_FREE, 0, W_DONE(w) + 1)))
        return -1;
    mqq_wake_joiners_(q->seg);
    return 0;
}

/* ---- reclaim ---------------------------------------------------------------------- */

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
    if (mqq_send_result_(q, &r, NULL, text, 0) != JOBQ_OK)
        return 0;
    mqq_finish_(q, si, w);
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
        mqq_finish_(q, si, w);
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
    if (!(only_pid && (sig & QUEUE_RECLAIM_HARD)) && mqq_alive_(owner, start))
        return 0;
    JOBQ_FAULT("mqq.reclaim.locked");
    switch (st) {
    case S_RECEIVING:
        if (mqq_job_valid_(q->seg->bufs[si], 0)) {
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
int
mqq_reclaim_pass_(mqq_t *q, pid_t only_pid, int sig, int try)
{
    uint64_t start;
    pid_t self = mqq_self_(q, &start);
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
void
mqq_lazy_reclaim_(mqq_t *q)
{
    int64_t now = jobq_now_ms();
    if (now < atomic_load(&q->next_reclaim_ms))
        return;
    atomic_store(&q->next_reclaim_ms, now + MQQ_SLICE_MS);
    uint64_t start;
    pid_t self = mqq_self_(q, &start);
    uint32_t hw = atomic_load(&q->seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++) {
        mqq_slot_t *s = &q->seg->slots[i];
        uint64_t w = atomic_load(&s->word);
        unsigned st = W_STATE(w);
        if (st == S_FREE || st == S_ORPHAN || (st != S_CRASHING && W_PID(w) == self))
            continue;
        uint64_t t = (st == S_RECEIVING || st == S_HELD) ? atomic_load(&s->start) : 0;
        if (st == S_CRASHING || !mqq_alive_(W_PID(w), t)) {
            mqq_reclaim_pass_(q, 0, 0, 1);
            return;
        }
    }
}
