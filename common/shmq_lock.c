/*
 * common/shmq_lock.c: the queue lock of a shm:// segment, the repair of a step
 * cut short by a dead lock owner, waiting on futex words, and the structural
 * invariant check run after every repair.
 *
 * Invariants this file keeps:
 *   1. Outside the lock h->undo_n == 0, except after the owner died inside a
 *      step; the next owner then gets EOWNERDEAD and rolls the step back from
 *      the undo log (newest entry first) before anything else reads the state.
 *      Rolling back twice is harmless (the log is not changed while replaying),
 *      so a repairer that dies mid-repair just leaves the repair to the next.
 *   2. After a repair the invariant check must pass; if it does not, the
 *      header's broken flag is set and the mutex is released without
 *      pthread_mutex_consistent(), which makes it ENOTRECOVERABLE: every later
 *      call returns JOBQ_ECORRUPT at once instead of working on a broken
 *      structure (the flag is what callers test: see shmq_lock).
 *   3. A sleeper reads its futex word under the lock, so a change made after
 *      the read (which bumps the word under the lock) makes FUTEX_WAIT return
 *      at once: no lost wake-up. Sleeps last at most SHMQ_SLICE_MS, after which
 *      the sleeper re-checks and sweeps dead holders: a wake-up lost anyway (a
 *      waker killed between unlock and FUTEX_WAKE) costs at most one slice.
 *   4. Sleepers are registered with (pid, start time) in h->waiters; wakers
 *      make the FUTEX_WAKE system call only when someone is registered, so the
 *      steady state under load makes none. A sleeper killed while registered
 *      is removed by the next sweep.
 */
#include "common/alloc.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/futex.h"
#include "common/log.h"
#include "common/shmq.h"
#include "jobq/errors.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S_LOCK_SPIN 100  /* trylock rounds before blocking in the mutex */
#define S_WAIT_SPIN 64   /* PAUSE polls of a futex word ... */
#define S_WAIT_YIELD 256 /* ... then sched_yield polls, before sleeping on it */
/* Wake-ups owed by this thread for the lock it holds, issued after unlock:
 * bit 2c: wake one sleeper on condition c, bit 2c+1: wake them all. */
static _Thread_local uint32_t s_owed;

/* ---- repair --------------------------------------------------------------- */

/* Rolls the interrupted step back. Returns 0, or -1 if the log is not sane. */
static int
s_rollback(shmq_t *q)
{
    shmq_hdr_t *h = q->h;
    uint32_t n = h->undo_n;
    if (n > SHMQ_UNDO_MAX)
        return -1;
    for (uint32_t i = n; i-- > 0;) {
        uint64_t off = h->undo[i].off & ~1ull;
        int wide = (int)(h->undo[i].off & 1);
        if (off % (wide ? 8 : 4) != 0 || off + (wide ? 8 : 4) > q->size ||
            off < offsetof(shmq_hdr_t, ch))
            return -1;
        if (wide)
            *(uint64_t *)(q->base + off) = h->undo[i].old;
        else
            *(uint32_t *)(q->base + off) = (uint32_t)h->undo[i].old;
        if (i == n / 2)
            JOBQ_FAULT("shmq.repair");
    }
    atomic_signal_fence(memory_order_seq_cst);
    h->undo_n = 0;
    return 0;
}

/* Repairs after EOWNERDEAD. Returns JOBQ_OK with the lock held and consistent,
 * or JOBQ_ECORRUPT with the lock released and the mutex unrecoverable. */
static int
s_repair(shmq_t *q)
{
    char why[160] = "undo log out of bounds";
    shmq_hdr_t *h = q->h;
    uint32_t n = h->undo_n;
    int ok = s_rollback(q) == 0 && shmq_check(q, why, sizeof why) == 0;
    if (ok && JOBQ_FAULT_CHECK("shmq.repair.refuse")) {
        snprintf(why, sizeof why, "refused by fault point shmq.repair.refuse");
        ok = 0;
    }
    if (!ok) {
        LOG_ERR("shm queue is corrupt after its lock owner died (%s): giving up on it", why);
        __atomic_store_n(&h->broken, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&h->lock); /* without consistent(): ENOTRECOVERABLE from now on */
        return JOBQ_ECORRUPT;
    }
    LOG_NOTICE("shm queue lock owner died; rolled back %u logged writes", n);
    /* The dead owner may have owed wake-ups: wake everyone, and look for what
     * it held at once. */
    for (int c = 0; c < SHMQ_NCOND; c++)
        shmq_signal(q, c, INT32_MAX);
    pthread_mutex_consistent(&h->lock);
    shmq_sweep(q, 1);
    return JOBQ_OK;
}

/* ---- lock ----------------------------------------------------------------- */

int
shmq_lock(shmq_t *q)
{
    pthread_mutex_t *m = &q->h->lock;
    int rc = EBUSY;
    /* Checked first: glibc 2.36's trylock on an unrecoverable robust mutex
     * returns ENOTRECOVERABLE but leaves the lock word taken by the caller, so
     * the caller's next lock would deadlock on itself. */
    if (__atomic_load_n(&q->h->broken, __ATOMIC_ACQUIRE))
        return JOBQ_ECORRUPT;
    for (int i = 0; i < S_LOCK_SPIN && rc == EBUSY; i++) {
        rc = pthread_mutex_trylock(m);
        if (rc == EBUSY)
            jobq_cpu_relax();
    }
    if (rc == EBUSY)
        rc = pthread_mutex_lock(m);
    if (rc == 0)
        return JOBQ_OK;
    if (rc == EOWNERDEAD)
        return s_repair(q);
    return JOBQ_ECORRUPT; /* ENOTRECOVERABLE, or a mutex that is not one */
}

void
shmq_abort(shmq_t *q)
{
    if (s_rollback(q) != 0)
        LOG_ERR("shm queue: undo log out of bounds while aborting a step");
    shmq_unlock(q);
}

void
shmq_commit(shmq_t *q)
{
    atomic_signal_fence(memory_order_seq_cst);
    q->h->undo_n = 0;
    atomic_signal_fence(memory_order_seq_cst);
}

void
shmq_unlock(shmq_t *q)
{
    shmq_commit(q);
    pthread_mutex_unlock(&q->h->lock);
    for (uint32_t owed = s_owed; owed; owed &= owed - 1) {
        int bit = __builtin_ctz(owed);
        jobq_futex_wake(&q->h->fx[bit >> 1].seq, (bit & 1) ? INT32_MAX : 1);
    }
    s_owed = 0;
}

void
shmq_signal(shmq_t *q, int cond, int n)
{
    shmq_hdr_t *h = q->h;
    __atomic_store_n(&h->fx[cond].seq, h->fx[cond].seq + 1, __ATOMIC_RELEASE);
    if (h->nwait[cond]) {
        uint32_t one = 1u << (2 * cond), all = one << 1;
        if (n != 1)
            s_owed = (s_owed & ~one) | all;
        else if (!(s_owed & all))
            s_owed |= one;
    }
}

/* ---- waiting -------------------------------------------------------------- */

/* Registers the caller as a sleeper on cond. Returns the entry or -1 (table full). */
static int
s_waiter_add(shmq_t *q, int cond, shmq_self_t me)
{
    shmq_hdr_t *h = q->h;
    for (int i = 0; i < (int)SHMQ_WAITERS; i++) {
        shmq_waiter_t *w = &h->waiters[i];
        if (w->pid != 0)
            continue;
        w->cond = (uint32_t)cond; /* meaningful only once pid is set */
        w->start = me.start;
        shmq_set32(q, (uint32_t *)&w->pid, (uint32_t)me.pid);
        shmq_set32(q, &h->nwait[cond], h->nwait[cond] + 1);
        return i;
    }
    return -1;
}

static void
s_waiter_del(shmq_t *q, int i, int cond, shmq_self_t me)
{
    shmq_hdr_t *h = q->h;
    if (i < 0)
        return;
    shmq_waiter_t *w = &h->waiters[i];
    if (w->pid != me.pid || w->start != me.start || w->cond != (uint32_t)cond)
        return; /* a sweep took it (it judged us dead: cannot happen while we run) */
    shmq_set32(q, (uint32_t *)&w->pid, 0);
    shmq_set32(q, &h->nwait[cond], h->nwait[cond] - 1);
}

/* Polls the word for a short while; returns 1 if it moved. The yields matter
 * on a machine with fewer cores than busy processes (2 cores here, producer
 * and consumers): a poller that only spins holds the CPU the process it waits
 * for needs; measured, W1 drops from millions of jobs/s to ~150 k without them. */
static int
s_spin(uint32_t *word, uint32_t seq)
{
    for (int i = 0; i < S_WAIT_SPIN + S_WAIT_YIELD; i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != seq)
            return 1;
        if (i < S_WAIT_SPIN)
            jobq_cpu_relax();
        else
            sched_yield();
    }
    return 0;
}

int
shmq_wait(shmq_t *q, int cond, int64_t deadline_ms)
{
    shmq_hdr_t *h = q->h;
    uint32_t *word = &h->fx[cond].seq;
    uint32_t seq = *word;
    shmq_unlock(q);
    int moved = s_spin(word, seq);
    int rc = shmq_lock(q);
    if (rc != JOBQ_OK || moved || __atomic_load_n(word, __ATOMIC_ACQUIRE) != seq)
        return rc;
    shmq_self_t me = shmq_self();
    int slot = s_waiter_add(q, cond, me);
    shmq_unlock(q);
    int64_t slice = slot < 0 ? 1 : SHMQ_SLICE_MS; /* unregistered: poll */
    int64_t left = jobq_remaining_ms(deadline_ms);
    if (left >= 0 && left < slice)
        slice = left;
    int w = jobq_futex_wait(word, seq, slice);
    rc = shmq_lock(q);
    if (rc != JOBQ_OK)
        return rc;
    s_waiter_del(q, slot, cond, me);
    if (w == ETIMEDOUT)
        shmq_sweep(q, 0);
    return JOBQ_OK;
}

/* ---- invariant check ------------------------------------------------------ */

static int s_fail(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Marks the chunks of a chain; returns 0 or -1. */
static int
s_check_chain(const shmq_view_t *v, const shmq_slot_t *s, uint8_t *cmark)
{
    const shmq_chan_t *c = v->c;
    if (s->len <= SHMQ_INLINE)
        return s->chunk == SHMQ_NIL ? 0 : -1;
    uint32_t need = (s->len + SHMQ_CHUNK - 1) / SHMQ_CHUNK, k = s->chunk, last = SHMQ_NIL;
    for (uint32_t i = 0; i < need; i++) {
        if (k >= c->chunk_hwm || cmark[k])
            return -1;
        cmark[k] = 1;
        last = k;
        k = v->next[k];
    }
    return last == s->chunk_last && k == SHMQ_NIL ? 0 : -1;
}

/* Marks every slot of the ring (1), the held list (1) and the free stack (2)
 * exactly once, checking states, links and counts. Returns 0 or -1. */
static int
s_check_slots(const shmq_view_t *v, uint8_t *mark, const char *name, char *why, size_t len)
{
    const shmq_chan_t *c = v->c;
    uint32_t writing = 0, taken = 0, prev = SHMQ_NIL, n = 0;
    for (uint64_t pos = c->head; pos != c->tail; pos++) {
        uint32_t i = v->ring[pos % c->ring_cap];
        if (i >= c->slot_hwm || mark[i] || v->slots[i].state != SHMQ_QUEUED)
            return s_fail(why, len, "%s: ring entry %u is not a queued slot", name, i);
        mark[i] = 1;
    }
    for (uint32_t i = c->held_head; i != SHMQ_NIL; prev = i, i = v->slots[i].hnext) {
        if (i >= c->slot_hwm || mark[i] || v->slots[i].hprev != prev || ++n > c->ring_cap ||
            (v->slots[i].state != SHMQ_WRITING && v->slots[i].state != SHMQ_TAKEN))
            return s_fail(why, len, "%s: held list broken at slot %u", name, i);
        mark[i] = 1;
        writing += v->slots[i].state == SHMQ_WRITING;
        taken += v->slots[i].state == SHMQ_TAKEN;
    }
    if (prev != c->held_tail || writing != c->nwriting || taken != c->ntaken)
        return s_fail(why, len, "%s: held list counts differ", name);
    n = 0;
    for (uint32_t i = c->free_slot; i != SHMQ_NIL; i = v->slots[i].free_next) {
        if (i >= c->slot_hwm || mark[i] || v->slots[i].state != SHMQ_FREE || ++n > c->ring_cap)
            return s_fail(why, len, "%s: free slot stack broken at slot %u", name, i);
        mark[i] = 2;
    }
    for (uint32_t i = 0; i < c->slot_hwm; i++)
        if (!mark[i])
            return s_fail(why, len, "%s: slot %u is in no list", name, i);
    return 0;
}

/* Checks the bytes and chunk chains of the marked slots and the free chunk
 * stack: every chunk below chunk_hwm is used exactly once. Returns 0 or -1. */
static int
s_check_chunks(const shmq_view_t *v, const uint8_t *mark, uint8_t *cmark, const char *name,
               char *why, size_t len)
{
    const shmq_chan_t *c = v->c;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < c->slot_hwm; i++) {
        if (mark[i] != 1)
            continue;
        bytes += v->slots[i].len;
        if (s_check_chain(v, &v->slots[i], cmark) != 0)
            return s_fail(why, len, "%s: chunk chain of slot %u is broken", name, i);
    }
    if (bytes != c->bytes)
        return s_fail(why, len, "%s: %llu payload bytes held, %llu counted", name,
                      (unsigned long long)bytes, (unsigned long long)c->bytes);
    uint32_t k = c->free_chunk;
    for (uint32_t n = 0; n < c->chunks_stacked; n++, k = v->next[k]) {
        if (k >= c->chunk_hwm || cmark[k])
            return s_fail(why, len, "%s: free chunk stack broken at %u", name, k);
        cmark[k] = 1;
    }
    if (k != SHMQ_NIL)
        return s_fail(why, len, "%s: free chunk stack longer than counted", name);
    for (k = 0; k < c->chunk_hwm; k++)
        if (!cmark[k])
            return s_fail(why, len, "%s: chunk %u is lost", name, k);
    return 0;
}

static int
s_check_chan(shmq_t *q, int ch, char *why, size_t len)
{
    const shmq_view_t *v = &q->v[ch];
    const shmq_chan_t *c = v->c;
    const char *name = ch == SHMQ_ITEMS ? "items" : "results";
    if (c->tail < c->head || c->tail - c->head > c->ring_cap || c->slot_hwm > c->ring_cap ||
        c->chunk_hwm > c->nchunks || c->chunks_stacked > c->chunk_hwm)
        return s_fail(why, len, "%s: counters out of range", name);
    uint8_t *mark = jobq_calloc(c->ring_cap + 1, 1), *cmark = jobq_calloc(c->nchunks + 1, 1);
    int rc = s_check_slots(v, mark, name, why, len);
    if (rc == 0)
        rc = s_check_chunks(v, mark, cmark, name, why, len);
    jobq_free(mark);
    jobq_free(cmark);
    return rc;
}

int
shmq_check(shmq_t *q, char *why, size_t why_len)
{
    shmq_hdr_t *h = q->h;
    uint32_t counted[SHMQ_NCOND] = {0};
    if (h->undo_n != 0)
        return s_fail(why, why_len, "uncommitted step");
    for (int ch = 0; ch < 2; ch++)
        if (s_check_chan(q, ch, why, why_len) != 0)
            return -1;
    if (h->ch[SHMQ_ITEMS].ntaken > h->inflight_cap)
        return s_fail(why, why_len, "more items taken than allowed");
    for (uint32_t i = 0; i < SHMQ_WAITERS; i++) {
        if (h->waiters[i].pid == 0)
            continue;
        if (h->waiters[i].cond >= SHMQ_NCOND)
            return s_fail(why, why_len, "waiter %u has no condition", i);
        counted[h->waiters[i].cond]++;
    }
    for (int c = 0; c < SHMQ_NCOND; c++)
        if (counted[c] != h->nwait[c])
            return s_fail(why, why_len, "sleeper count %d differs", c);
    return 0;
}
