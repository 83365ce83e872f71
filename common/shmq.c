/*
 * common/shmq.c: the shm:// JoinableQueue (include/jobq/queue.h) over one
 * shared memory segment, named (shm_open) or anonymous (inherited by fork).
 *
 * DESIGN
 *
 * Segment (common/shmq.h has every field; shmq_seg.c its life cycle):
 *
 *   +--------------------------------------------------------------------+
 *   | header: magic, version, sizes, geometry, "ready" (written last)    |
 *   |   items channel state   results channel state   closed   id_seq   |
 *   |   waiters table (pid, start, cond)   undo log   robust mutex       |
 *   |   futex words: NOTEMPTY NOTFULL RNOTEMPTY RNOTFULL ALLDONE         |
 *   +--------------------------------------------------------------------+
 *   | items:   ring[max_items + spare]  slots[same]  links[n]  chunks[n] |
 *   | results: ring[result_items + spare]  slots  links  chunks          |
 *   +--------------------------------------------------------------------+
 *
 * Records. A job (or a result) lives in a 192-byte slot: its fixed fields, a
 * crc32c, and its payload inline when it is at most SHMQ_INLINE (88) bytes,
 * else in a chain of 256-byte chunks from the channel's arena. A record keeps
 * its slot from put until task_done: the in-flight table IS the set of TAKEN
 * slots, linked in take order (the held list), each with its holder's pid and
 * start time (field 22 of /proc/PID/stat, so a reused pid is not mistaken for
 * the holder). That is what lets a dead consumer's item run again.
 * Framing: the length is checked against the channel limits and the chunk
 * chain against the arena before a byte is copied, and the crc (payload, then
 * the immutable fields) is checked after the copy; a record that fails either
 * is finished and reported as JOBQ_ECORRUPT, never handed out.
 *
 * Slot states and the function making each move:
 *
 *          shmq_reserve(held)        shmq_publish          shmq_take
 *   FREE ---------------------> WRITING ----------> QUEUED ---------> TAKEN
 *     ^  \____ small put: reserve + publish in one step __^ ^           |
 *     |                                                      |           |
 *     |                          shmq_requeue (holder died) +-----------+
 *     +-- shmq_release (task_done; a dead writer; attempts used up) ----+
 *
 * Bounds: put needs queued + reserved < max_items and payload bytes held
 * (queued, reserved and taken) + len <= max_bytes; larger than max_bytes or
 * JOBQ_PAYLOAD_MAX is JOBQ_ETOOBIG. At most max(max_items, 256) items may be
 * taken and not yet task_done at once (getters wait beyond that), which sizes
 * the slot pool (max_items + that) so a reclaimed item always finds a place at
 * the front of the ring. The results channel is bounded the same way by
 * result_items and max_bytes, plus spare room for CRASHED results, which the
 * reclaimer posts without blocking (counted in `dropped` if even that is full).
 * The unfinished count is derived, not stored: queued + taken items.
 *
 * Locking and crash repair. One robust, process-shared pthread mutex guards
 * all shared state; there is no condition variable anywhere (RELIABILITY.md §0
 * item 4). Every step under the lock logs the old value of each word it
 * changes that matters in the state before the step (shmq_set32/64, an undo
 * log in the header) and clears the log at the end of the step (commit). If
 * the owner dies, the next locker gets EOWNERDEAD, rolls the step back from the
 * log, runs the full invariant check (shmq_check), and only then calls
 * pthread_mutex_consistent; if the check fails the header's broken flag is set,
 * the mutex is left unrecoverable and every call returns JOBQ_ECORRUPT. So the
 * structure is consistent at every instruction: either the whole step
 * happened or none of it. A step that finds a bad index half-way rolls itself
 * back the same way (shmq_abort). What a process does outside the lock is
 * recorded before it starts: a large put copies its payload into a slot it
 * holds as WRITING, and a get's item is TAKEN by the getter before the lock is
 * dropped.
 *
 * Waiting. Each condition has a futex word, a sequence number bumped under
 * the lock whenever the condition may have become true. A waiter reads the
 * word under the lock, drops the lock, watches the word (64 PAUSEs, then up
 * to 256 sched_yield: with fewer cores than busy processes a pure spinner
 * starves the process it waits for), then registers itself in the waiters
 * table and sleeps in FUTEX_WAIT (shared, not private) for at most 100 ms.
 * Wakers call FUTEX_WAKE only when a sleeper is registered, so a busy queue
 * makes no system call per job: the lock is taken with a trylock spin,
 * payloads of up to 88 bytes are copied under it, and the clock is read only
 * when a call has to wait. A sleeper whose 100 ms slice runs out sweeps (at
 * most every 50 ms, queue-wide; a non-blocking call that finds nothing does
 * too): it checks the holders of taken and reserved records and the
 * registered sleepers, and hands back what the dead held
 * (jobq_queue_reclaim semantics: the item goes back to the front of the queue
 * with attempt + 1, or when its attempts are used up a CRASHED result is
 * posted and it counts as done, so join() returns; a dead holder's sentinel
 * just counts as done, since its holder was stopping anyway). A process is
 * dead when /proc/PID/stat is gone, shows a zombie, or shows another start
 * time. The item's ttr_ms travels with it but is not enforced here: a
 * holder's death is seen directly; time limits are the worker's business.
 *
 * Identity: tokens are (slot generation << 32 | slot index); task_done checks
 * the slot is TAKEN, the generation matches and the holder is this process, so
 * a stale or foreign token gets JOBQ_ESTATE. Job ids left zero by the caller
 * are the segment's random nonce followed by a sequence number.
 *
 * Fault points (common/fault.h): shmq.put.locked, shmq.put.reserved,
 * shmq.get.locked, shmq.get.after_take, shmq.task_done.locked,
 * shmq.reclaim.locked, shmq.result.locked, shmq.get_result.locked,
 * shmq.repair, shmq.create.init, and shmq.repair.refuse (forces a failed repair).
 */
#include "common/shmq.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "jobq/errors.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define S_WAIT (-1) /* predicate result: not yet */

typedef int (*s_ready_fn)(shmq_t *q, uint32_t arg);

/* Loops until ready(q, arg) stops saying S_WAIT, sleeping on cond; busy is the
 * answer for timeout 0. Lock held on entry and on return, except when it
 * returns JOBQ_ECORRUPT. */
static int
s_await(shmq_t *q, int cond, s_ready_fn ready, uint32_t arg, int64_t timeout_ms, int busy)
{
    int64_t deadline = 0; /* read the clock only once we have to wait */
    int swept = 0;
    for (;;) {
        int r = ready(q, arg);
        if (r != S_WAIT)
            return r;
        if (timeout_ms == 0) {
            if (swept++) /* once: maybe a dead holder keeps what we want */
                return busy;
            shmq_sweep(q, 0);
            continue;
        }
        if (deadline == 0)
            deadline = jobq_deadline_ms(timeout_ms);
        else if (jobq_now_ms() >= deadline)
            return JOBQ_ETIMEDOUT;
        r = shmq_wait(q, cond, deadline);
        if (r != JOBQ_OK)
            return r;
    }
}

/* Takes the lock, then awaits; returns with the lock held iff JOBQ_OK. */
static int
s_enter(shmq_t *q, int cond, s_ready_fn ready, uint32_t arg, int64_t timeout_ms, int busy)
{
    int rc = shmq_lock(q);
    if (rc != JOBQ_OK)
        return rc;
    rc = s_await(q, cond, ready, arg, timeout_ms, busy);
    if (rc != JOBQ_OK && rc != JOBQ_ECORRUPT)
        shmq_unlock(q);
    return rc;
}

static int
s_is_mine(const shmq_slot_t *s, uint32_t state, uint32_t gen, shmq_self_t me)
{
    return s->state == state && s->gen == gen && s->owner_pid == me.pid &&
           s->owner_start == me.start;
}

/* ---- put ------------------------------------------------------------------ */

static int
s_put_ready(shmq_t *q, uint32_t len_sentinel)
{
    uint32_t len = len_sentinel >> 1;
    if (q->h->closed && !(len_sentinel & 1))
        return JOBQ_ECLOSED;
    return shmq_room(q, SHMQ_ITEMS, len, 0) ? JOBQ_OK : S_WAIT;
}

/* Publishes a reserved item (lock held) and drops the lock. */
static void
s_put_publish(shmq_t *q, uint32_t idx)
{
    JOBQ_FAULT("shmq.put.locked");
    shmq_publish(q, SHMQ_ITEMS, idx, 0);
    shmq_signal(q, SHMQ_NOTEMPTY, 1);
    shmq_unlock(q);
}

/* Copies a chunked payload (a, then b) into the WRITING slot idx we hold,
 * outside the lock, and unholds it. Lock held on entry; on JOBQ_OK it is held
 * again (publish in this step), otherwise it is not. */
static int
s_fill_held(shmq_t *q, int ch, uint32_t idx, const void *a, uint32_t alen, const void *b,
            uint32_t blen)
{
    shmq_slot_t *s = &q->v[ch].slots[idx];
    uint32_t gen = s->gen;
    shmq_self_t me = shmq_self();
    shmq_unlock(q);
    JOBQ_FAULT("shmq.put.reserved");
    shmq_fill(q, ch, idx, 0, a, alen);
    if (blen)
        shmq_fill(q, ch, idx, alen, b, blen);
    int rc = shmq_lock(q);
    if (rc != JOBQ_OK)
        return rc;
    if (!s_is_mine(s, SHMQ_WRITING, gen, me)) {
        shmq_unlock(q); /* someone reclaimed our reservation */
        return JOBQ_ESTATE;
    }
    shmq_unhold(q, ch, idx);
    return JOBQ_OK;
}

static int
s_put(void *impl, jobq_job_t *job, int sentinel, int64_t timeout_ms)
{
    shmq_t *q = impl;
    shmq_hdr_t *h = q->h;
    uint32_t len = sentinel ? 0 : job->payload_len;
    if (len && !job->payload)
        return JOBQ_EINVAL;
    if (len > JOBQ_PAYLOAD_MAX || len > h->ch[SHMQ_ITEMS].max_bytes)
        return JOBQ_ETOOBIG;
    if (job->max_attempts == 0)
        return JOBQ_EINVAL;
    uint32_t pcrc = shmq_crc32c(0, job->payload, len);
    int rc =
        s_enter(q, SHMQ_NOTFULL, s_put_ready, len << 1 | (sentinel != 0), timeout_ms, JOBQ_EFULL);
    if (rc != JOBQ_OK)
        return rc;
    jobq_id_t id = job->id;
    if (jobq_id_is_zero(&id)) {
        uint64_t seq = h->id_seq + 1;
        shmq_set64(q, &h->id_seq, seq);
        memcpy(id.b, &h->nonce, 8);
        memcpy(id.b + 8, &seq, 8);
    }
    int chunked = len > SHMQ_INLINE;
    uint32_t idx = shmq_reserve(q, SHMQ_ITEMS, len, chunked);
    if (idx == SHMQ_NIL) {
        shmq_abort(q); /* a free list is corrupt */
        return JOBQ_ECORRUPT;
    }
    shmq_slot_t *s = &q->v[SHMQ_ITEMS].slots[idx];
    s->id = id;
    s->attempt = 0;
    s->max_attempts = job->max_attempts;
    s->ttr_ms = job->ttr_ms;
    s->flags = sentinel ? SHMQ_F_SENTINEL : 0;
    s->crc = shmq_item_crc(s, pcrc);
    if (chunked) {
        if ((rc = s_fill_held(q, SHMQ_ITEMS, idx, job->payload, len, NULL, 0)) != JOBQ_OK)
            return rc;
    } else if (len) {
        memcpy(s->inl, job->payload, len);
    }
    s_put_publish(q, idx);
    job->id = id; /* written back only once the put succeeded */
    return JOBQ_OK;
}

/* ---- get and task_done ---------------------------------------------------- */

static int
s_get_ready(shmq_t *q, uint32_t unused)
{
    const shmq_chan_t *c = q->v[SHMQ_ITEMS].c;
    uint64_t queued = c->tail - c->head;
    (void)unused;
    if (queued && c->ntaken < q->h->inflight_cap)
        return JOBQ_OK;
    if (q->h->closed && !queued && !c->nwriting)
        return JOBQ_ECLOSED;
    return S_WAIT;
}

/* Finishes an item (lock held): frees it and signals what that may allow. */
static void
s_finish(shmq_t *q, uint32_t idx)
{
    shmq_hdr_t *h = q->h;
    int was_cap = h->ch[SHMQ_ITEMS].ntaken >= h->inflight_cap;
    shmq_release(q, SHMQ_ITEMS, idx);
    JOBQ_FAULT("shmq.task_done.locked");
    shmq_signal(q, SHMQ_NOTFULL, 1);
    if (was_cap)
        shmq_signal(q, SHMQ_NOTEMPTY, INT32_MAX);
    if (shmq_unfinished(h) == 0)
        shmq_signal(q, SHMQ_ALLDONE, INT32_MAX);
}

/* A taken item failed its checks: finish it so join() is not held up. */
static int
s_get_corrupt(shmq_t *q, uint32_t idx, uint32_t gen, jobq_item_t *item)
{
    shmq_self_t me = shmq_self();
    LOG_WARN("shm queue: item in slot %u failed its length or checksum check; dropped", idx);
    jobq_free(item->payload);
    memset(item, 0, sizeof *item);
    if (shmq_lock(q) != JOBQ_OK)
        return JOBQ_ECORRUPT;
    if (s_is_mine(&q->v[SHMQ_ITEMS].slots[idx], SHMQ_TAKEN, gen, me))
        s_finish(q, idx);
    shmq_unlock(q);
    return JOBQ_ECORRUPT;
}

static int
s_get(void *impl, jobq_item_t *item, int64_t timeout_ms)
{
    shmq_t *q = impl;
    int rc = s_enter(q, SHMQ_NOTEMPTY, s_get_ready, 0, timeout_ms, JOBQ_EEMPTY);
    if (rc != JOBQ_OK)
        return rc;
    shmq_self_t me = shmq_self();
    uint32_t idx = shmq_take(q, SHMQ_ITEMS, me);
    if (idx == SHMQ_NIL) {
        shmq_unlock(q);
        return JOBQ_ECORRUPT;
    }
    shmq_slot_t *s = &q->v[SHMQ_ITEMS].slots[idx];
    JOBQ_FAULT("shmq.get.locked");
    shmq_set32(q, &s->attempt, s->attempt + 1);
    shmq_slot_t snap;
    memcpy(&snap, s, s->len <= SHMQ_INLINE ? sizeof snap : offsetof(shmq_slot_t, inl));
    shmq_signal(q, SHMQ_NOTFULL, 1);
    shmq_unlock(q);
    JOBQ_FAULT("shmq.get.after_take");

    item->id = snap.id;
    item->attempt = snap.attempt;
    item->max_attempts = snap.max_attempts;
    item->ttr_ms = snap.ttr_ms;
    item->sentinel = (snap.flags & SHMQ_F_SENTINEL) != 0;
    item->token = (uint64_t)snap.gen << 32 | idx;
    if (snap.len > JOBQ_PAYLOAD_MAX)
        return s_get_corrupt(q, idx, snap.gen, item);
    item->payload_len = snap.len;
    if (snap.len) {
        item->payload = jobq_malloc(snap.len);
        if (snap.len <= SHMQ_INLINE)
            memcpy(item->payload, snap.inl, snap.len);
        else if (shmq_copy_out(q, SHMQ_ITEMS, idx, item->payload, snap.len) != 0)
            return s_get_corrupt(q, idx, snap.gen, item);
    }
    if (shmq_item_crc(&snap, shmq_crc32c(0, item->payload, snap.len)) != snap.crc)
        return s_get_corrupt(q, idx, snap.gen, item);
    return JOBQ_OK;
}

/* Finds the slot a task_done refers to; SHMQ_NIL if this process holds no such item. */
static uint32_t
s_find_held(shmq_t *q, const jobq_item_t *item, shmq_self_t me)
{
    const shmq_view_t *v = &q->v[SHMQ_ITEMS];
    if (item) {
        uint32_t idx = (uint32_t)item->token;
        if (idx >= v->c->ring_cap ||
            !s_is_mine(&v->slots[idx], SHMQ_TAKEN, (uint32_t)(item->token >> 32), me))
            return SHMQ_NIL;
        return idx;
    }
    uint32_t steps = 0;
    for (uint32_t i = v->c->held_head; i < v->c->ring_cap && steps++ < v->c->ring_cap;
         i = v->slots[i].hnext) {
        const shmq_slot_t *s = &v->slots[i];
        if (s->state == SHMQ_TAKEN && s->owner_pid == me.pid && s->owner_start == me.start)
            return i;
    }
    return SHMQ_NIL;
}

static int
s_task_done(void *impl, const jobq_item_t *item)
{
    shmq_t *q = impl;
    shmq_self_t me = shmq_self();
    int rc = shmq_lock(q);
    if (rc != JOBQ_OK)
        return rc;
    uint32_t idx = s_find_held(q, item, me);
    if (idx == SHMQ_NIL) {
        shmq_unlock(q);
        return JOBQ_ESTATE;
    }
    s_finish(q, idx);
    shmq_unlock(q);
    return JOBQ_OK;
}

/* ---- join, close, snapshots, reclaim --------------------------------------- */

static int
s_join_ready(shmq_t *q, uint32_t unused)
{
    (void)unused;
    return shmq_unfinished(q->h) == 0 ? JOBQ_OK : S_WAIT;
}

static int
s_join(void *impl, int64_t timeout_ms)
{
    shmq_t *q = impl;
    int rc = s_enter(q, SHMQ_ALLDONE, s_join_ready, 0, timeout_ms, JOBQ_ETIMEDOUT);
    if (rc == JOBQ_OK)
        shmq_unlock(q);
    return rc;
}

static int
s_close(void *impl)
{
    shmq_t *q = impl;
    int rc = shmq_lock(q);
    if (rc != JOBQ_OK)
        return rc;
    if (!q->h->closed) {
        shmq_set32(q, &q->h->closed, 1);
        shmq_signal(q, SHMQ_NOTEMPTY, INT32_MAX);
        shmq_signal(q, SHMQ_NOTFULL, INT32_MAX);
    }
    shmq_unlock(q);
    return JOBQ_OK;
}

static size_t
s_size(void *impl)
{
    shmq_t *q = impl;
    if (shmq_lock(q) != JOBQ_OK)
        return 0;
    const shmq_chan_t *c = q->v[SHMQ_ITEMS].c;
    size_t n = (size_t)(c->tail - c->head);
    shmq_unlock(q);
    return n;
}

static int
s_full(void *impl)
{
    shmq_t *q = impl;
    if (shmq_lock(q) != JOBQ_OK)
        return 0;
    const shmq_chan_t *c = q->v[SHMQ_ITEMS].c;
    int full = c->tail - c->head + c->nwriting >= c->cap_items || c->bytes >= c->max_bytes;
    shmq_unlock(q);
    return full;
}

static size_t
s_unfinished(void *impl)
{
    shmq_t *q = impl;
    if (shmq_lock(q) != JOBQ_OK)
        return 0;
    size_t n = (size_t)shmq_unfinished(q->h);
    shmq_unlock(q);
    return n;
}

static int
s_reclaim(void *impl, pid_t pid, int sig)
{
    shmq_t *q = impl;
    if (pid <= 0 || shmq_lock(q) != JOBQ_OK)
        return -1;
    int n = shmq_reclaim_dead(q, pid, sig);
    shmq_unlock(q);
    return n;
}

/* ---- results -------------------------------------------------------------- */

static int
s_result_room(shmq_t *q, uint32_t len)
{
    return shmq_room(q, SHMQ_RESULTS, len, 0) ? JOBQ_OK : S_WAIT;
}

static int
s_put_result(void *impl, const jobq_result_t *res, int64_t timeout_ms)
{
    shmq_t *q = impl;
    if ((res->output_len && !res->output) || (res->error_len && !res->error))
        return JOBQ_EINVAL;
    if (res->output_len > JOBQ_PAYLOAD_MAX || res->error_len > JOBQ_ERROR_TEXT_MAX)
        return JOBQ_ETOOBIG;
    uint32_t len = res->output_len + res->error_len;
    if (len > q->h->ch[SHMQ_RESULTS].max_bytes)
        return JOBQ_ETOOBIG;
    uint32_t pcrc =
        shmq_crc32c(shmq_crc32c(0, res->output, res->output_len), res->error, res->error_len);
    int rc = s_enter(q, SHMQ_RNOTFULL, s_result_room, len, timeout_ms, JOBQ_EFULL);
    if (rc != JOBQ_OK)
        return rc;
    int chunked = len > SHMQ_INLINE;
    uint32_t idx = shmq_reserve(q, SHMQ_RESULTS, len, chunked);
    if (idx == SHMQ_NIL) {
        shmq_abort(q);
        return JOBQ_ECORRUPT;
    }
    shmq_slot_t *s = &q->v[SHMQ_RESULTS].slots[idx];
    s->id = res->id;
    s->attempt = res->attempt;
    s->status = (uint32_t)res->status;
    s->exit_code = res->exit_code;
    s->signal = res->signal;
    s->duration_us = res->duration_us;
    s->output_len = res->output_len;
    s->flags = 0;
    s->crc = shmq_result_crc(s, pcrc);
    if (chunked) {
        rc = s_fill_held(q, SHMQ_RESULTS, idx, res->output, res->output_len, res->error,
                         res->error_len);
        if (rc != JOBQ_OK)
            return rc;
    } else {
        if (res->output_len)
            memcpy(s->inl, res->output, res->output_len);
        if (res->error_len)
            memcpy(s->inl + res->output_len, res->error, res->error_len);
    }
    JOBQ_FAULT("shmq.result.locked");
    shmq_publish(q, SHMQ_RESULTS, idx, 0);
    shmq_signal(q, SHMQ_RNOTEMPTY, 1);
    shmq_unlock(q);
    return JOBQ_OK;
}

static int
s_result_ready(shmq_t *q, uint32_t unused)
{
    const shmq_chan_t *c = q->v[SHMQ_RESULTS].c;
    (void)unused;
    return c->tail != c->head ? JOBQ_OK : S_WAIT;
}

/* Copies the taken result idx into q->rbuf and frees its slot. Lock held on
 * entry; dropped on return. Returns JOBQ_OK or JOBQ_ECORRUPT. */
static int
s_result_copy(shmq_t *q, uint32_t idx, shmq_slot_t *snap)
{
    shmq_slot_t *s = &q->v[SHMQ_RESULTS].slots[idx];
    memcpy(snap, s, sizeof *snap);
    uint32_t len = snap->len;
    int bad = len > q->h->ch[SHMQ_RESULTS].max_bytes || snap->output_len > len;
    if (!bad && q->rbuf_cap < len) {
        q->rbuf = jobq_realloc(q->rbuf, len);
        q->rbuf_cap = len;
    }
    if (!bad && len <= SHMQ_INLINE) {
        if (len)
            memcpy(q->rbuf, snap->inl, len);
    } else if (!bad) {
        shmq_self_t me = shmq_self();
        shmq_unlock(q); /* the slot is TAKEN by us: copy without the lock */
        bad = shmq_copy_out(q, SHMQ_RESULTS, idx, q->rbuf, len) != 0;
        if (shmq_lock(q) != JOBQ_OK)
            return JOBQ_ECORRUPT;
        if (!s_is_mine(s, SHMQ_TAKEN, snap->gen, me)) {
            shmq_unlock(q);
            return JOBQ_ECORRUPT;
        }
    }
    shmq_release(q, SHMQ_RESULTS, idx);
    shmq_signal(q, SHMQ_RNOTFULL, 1);
    shmq_unlock(q);
    return bad ? JOBQ_ECORRUPT : JOBQ_OK;
}

static int
s_get_result(void *impl, jobq_result_t *res, int64_t timeout_ms)
{
    shmq_t *q = impl;
    shmq_slot_t snap;
    memset(res, 0, sizeof *res);
    int rc = s_enter(q, SHMQ_RNOTEMPTY, s_result_ready, 0, timeout_ms, JOBQ_EEMPTY);
    if (rc != JOBQ_OK)
        return rc;
    uint32_t idx = shmq_take(q, SHMQ_RESULTS, shmq_self());
    if (idx == SHMQ_NIL) {
        shmq_unlock(q);
        return JOBQ_ECORRUPT;
    }
    JOBQ_FAULT("shmq.get_result.locked");
    rc = s_result_copy(q, idx, &snap);
    if (rc == JOBQ_OK && shmq_result_crc(&snap, shmq_crc32c(0, q->rbuf, snap.len)) != snap.crc)
        rc = JOBQ_ECORRUPT;
    if (rc != JOBQ_OK) {
        LOG_WARN("shm queue: a result failed its length or checksum check; dropped");
        return rc;
    }
    res->id = snap.id;
    res->attempt = snap.attempt;
    res->status = (jobq_status)snap.status;
    res->exit_code = snap.exit_code;
    res->signal = snap.signal;
    res->duration_us = snap.duration_us;
    res->output_len = snap.output_len;
    res->output = snap.output_len ? q->rbuf : NULL;
    res->error_len = snap.len - snap.output_len;
    res->error = res->error_len ? (const char *)q->rbuf + snap.output_len : NULL;
    return JOBQ_OK;
}

/* ---- construction ----------------------------------------------------------- */

static void
s_destroy(void *impl)
{
    shmq_seg_close(impl);
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
shmq_open(const jobq_url_t *url, const jobq_queue_opts_t *opts, const jobq_queue_ops_t **ops,
          void **impl)
{
    shmq_t *q = NULL;
    int rc = shmq_seg_open(url->name, opts, &q);
    if (rc != JOBQ_OK)
        return rc;
    *ops = &s_ops;
    *impl = q;
    return JOBQ_OK;
}

int
shmq_new_anon(const jobq_queue_opts_t *opts, const jobq_queue_ops_t **ops, void **impl)
{
    shmq_t *q = NULL;
    int rc = shmq_seg_anon(opts, &q);
    if (rc != JOBQ_OK)
        return rc;
    *ops = &s_ops;
    *impl = q;
    return JOBQ_OK;
}

int
shmq_unlink(const jobq_url_t *url)
{
    char obj[256];
    if (shmq_object_name(url->name, obj, sizeof obj) != 0)
        return JOBQ_EURL;
    if (shm_unlink(obj) == 0)
        return JOBQ_OK;
    return errno == ENOENT ? JOBQ_ENOTFOUND : JOBQ_ESYS;
}

int
shmq_debug_check(const char *name, char *why, size_t why_len, shmq_stats_t *stats)
{
    shmq_t *q = NULL;
    jobq_queue_opts_t opts = {0, 0, 0, 0};
    int rc = shmq_seg_open(name, &opts, &q);
    if (rc != JOBQ_OK)
        return rc;
    if ((rc = shmq_lock(q)) != JOBQ_OK) {
        shmq_seg_close(q);
        return rc;
    }
    if (shmq_check(q, why, why_len) != 0)
        rc = JOBQ_ECORRUPT;
    if (stats) {
        const shmq_hdr_t *h = q->h;
        memset(stats, 0, sizeof *stats);
        stats->queued = h->ch[SHMQ_ITEMS].tail - h->ch[SHMQ_ITEMS].head;
        stats->taken = h->ch[SHMQ_ITEMS].ntaken;
        stats->writing = h->ch[SHMQ_ITEMS].nwriting;
        stats->bytes = h->ch[SHMQ_ITEMS].bytes;
        stats->results = h->ch[SHMQ_RESULTS].tail - h->ch[SHMQ_RESULTS].head;
        stats->results_dropped = h->ch[SHMQ_RESULTS].dropped;
        for (int c = 0; c < SHMQ_NCOND; c++)
            stats->sleepers += h->nwait[c];
    }
    shmq_unlock(q);
    shmq_seg_close(q);
    return rc;
}
