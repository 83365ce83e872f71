/*
 * common/shmq_chan.c: the bounded channels of a shm:// segment (items and
 * results): slot pool, chunk arena, FIFO ring and held list, and the reclaim
 * of records whose holder died.
 *
 * Every function here runs with the queue lock held, except shmq_fill and
 * shmq_copy_out on a slot the caller holds. Each writes shared words through
 * shmq_set32/shmq_set64 when the word means something in the state before the
 * step (see shmq.h), and with plain stores otherwise:
 *   - a slot popped from the free stack: all fields but state, gen, free_next;
 *   - a ring cell outside [head, tail);
 *   - chunk links at or above chunk_hwm.
 * Indices read from the segment are bounds-checked before use: a segment is
 * memory any process of the same uid may scribble on.
 */
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/queue_impl.h"
#include "common/shmq.h"
#include "jobq/errors.h"

#include <stdio.h>
#include <string.h>

static inline uint32_t
s_chunks_for(uint32_t len)
{
    return len <= SHMQ_INLINE ? 0 : (len + SHMQ_CHUNK - 1) / SHMQ_CHUNK;
}

int
shmq_room(shmq_t *q, int ch, uint32_t len, int use_spare)
{
    const shmq_chan_t *c = q->v[ch].c;
    uint64_t queued = c->tail - c->head;
    uint32_t need = s_chunks_for(len);
    if (need > c->chunks_stacked + (c->nchunks - c->chunk_hwm))
        return 0;
    if (queued + c->nwriting + c->ntaken >= c->ring_cap)
        return 0;
    if (use_spare)
        return 1;
    return queued + c->nwriting < c->cap_items && c->bytes + len <= c->max_bytes;
}

/* ---- held list ------------------------------------------------------------ */

static void
s_held_append(shmq_t *q, int ch, uint32_t idx)
{
    shmq_view_t *v = &q->v[ch];
    shmq_chan_t *c = v->c;
    v->slots[idx].hnext = SHMQ_NIL;
    v->slots[idx].hprev = c->held_tail;
    if (c->held_tail != SHMQ_NIL)
        shmq_set32(q, &v->slots[c->held_tail].hnext, idx);
    else
        shmq_set32(q, &c->held_head, idx);
    shmq_set32(q, &c->held_tail, idx);
}

static void
s_held_unlink(shmq_t *q, int ch, uint32_t idx)
{
    shmq_view_t *v = &q->v[ch];
    shmq_chan_t *c = v->c;
    uint32_t p = v->slots[idx].hprev, n = v->slots[idx].hnext;
    if (p < c->ring_cap)
        shmq_set32(q, &v->slots[p].hnext, n);
    else
        shmq_set32(q, &c->held_head, n);
    if (n < c->ring_cap)
        shmq_set32(q, &v->slots[n].hprev, p);
    else
        shmq_set32(q, &c->held_tail, p);
}

/* ---- chunks --------------------------------------------------------------- */

/* Takes need chunks as a chain ending in SHMQ_NIL; sets *first and *last.
 * Returns 0, or -1 (nothing written) if the free stack leaves the arena. */
static int
s_chunks_alloc(shmq_t *q, int ch, uint32_t need, uint32_t *first, uint32_t *last)
{
    shmq_view_t *v = &q->v[ch];
    shmq_chan_t *c = v->c;
    uint32_t from_stack = need < c->chunks_stacked ? need : c->chunks_stacked;
    uint32_t top = SHMQ_NIL; /* the stack's new top */
    *first = *last = SHMQ_NIL;
    if (from_stack) {
        uint32_t k = c->free_chunk;
        for (uint32_t i = 1; i < from_stack && k < c->nchunks; i++)
            k = v->next[k];
        if (k >= c->nchunks)
            return -1;
        top = v->next[k];
        if (from_stack < c->chunks_stacked && top >= c->nchunks)
            return -1;
        *first = c->free_chunk;
        *last = k;
        shmq_set32(q, &c->free_chunk, from_stack == c->chunks_stacked ? SHMQ_NIL : top);
        shmq_set32(q, &c->chunks_stacked, c->chunks_stacked - from_stack);
    }
    uint32_t rest = need - from_stack;
    if (rest) {
        uint32_t base = c->chunk_hwm;
        for (uint32_t i = 0; i < rest; i++)
            v->next[base + i] = i + 1 < rest ? base + i + 1 : SHMQ_NIL; /* above hwm: unlogged */
        if (*last != SHMQ_NIL)
            shmq_set32(q, &v->next[*last], base);
        else
            *first = base;
        *last = base + rest - 1;
        shmq_set32(q, &c->chunk_hwm, base + rest);
    } else if (*last != SHMQ_NIL) {
        shmq_set32(q, &v->next[*last], SHMQ_NIL);
    }
    return 0;
}

static void
s_chunks_free(shmq_t *q, int ch, const shmq_slot_t *s)
{
    shmq_view_t *v = &q->v[ch];
    shmq_chan_t *c = v->c;
    uint32_t need = s_chunks_for(s->len);
    if (!need)
        return;
    if (s->chunk >= c->nchunks || s->chunk_last >= c->nchunks) {
        LOG_WARN("shm queue: slot with a bad chunk chain; %u chunks leaked", need);
        return;
    }
    shmq_set32(q, &v->next[s->chunk_last], c->free_chunk);
    shmq_set32(q, &c->free_chunk, s->chunk);
    shmq_set32(q, &c->chunks_stacked, c->chunks_stacked + need);
}

/* ---- slots ---------------------------------------------------------------- */

uint32_t
shmq_reserve(shmq_t *q, int ch, uint32_t len, int held)
{
    shmq_view_t *v = &q->v[ch];
    shmq_chan_t *c = v->c;
    uint32_t idx = c->free_slot;
    if (idx != SHMQ_NIL) {
        if (idx >= c->ring_cap || v->slots[idx].state != SHMQ_FREE)
            return SHMQ_NIL;
        shmq_set32(q, &c->free_slot, v->slots[idx].free_next);
    } else {
        idx = c->slot_hwm;
        if (idx >= c->ring_cap)
            return SHMQ_NIL;
        v->slots[idx].gen = 0;
        shmq_set32(q, &c->slot_hwm, idx + 1);
    }
    shmq_slot_t *s = &v->slots[idx];
    s->len = len;
    if (s_chunks_alloc(q, ch, s_chunks_for(len), &s->chunk, &s->chunk_last) != 0)
        return SHMQ_NIL;
    shmq_set64(q, &c->bytes, c->bytes + len);
    shmq_set32(q, &s->state, SHMQ_WRITING);
    if (held) {
        shmq_self_t me = shmq_self();
        s->owner_pid = me.pid;
        s->owner_start = me.start;
        shmq_set32(q, &s->gen, s->gen + 1);
        s_held_append(q, ch, idx);
        shmq_set32(q, &c->nwriting, c->nwriting + 1);
    }
    return idx;
}

void
shmq_fill(shmq_t *q, int ch, uint32_t idx, uint32_t off, const void *data, uint32_t len)
{
    shmq_view_t *v = &q->v[ch];
    shmq_slot_t *s = &v->slots[idx];
    const uint8_t *p = data;
    if (s->len <= SHMQ_INLINE) {
        memcpy(s->inl + off, p, len);
        return;
    }
    uint32_t k = s->chunk;
    for (uint32_t skip = off / SHMQ_CHUNK; skip && k < v->c->nchunks; skip--)
        k = v->next[k];
    off %= SHMQ_CHUNK;
    while (len && k < v->c->nchunks) {
        uint32_t n = SHMQ_CHUNK - off < len ? SHMQ_CHUNK - off : len;
        memcpy(v->chunks + (uint64_t)k * SHMQ_CHUNK + off, p, n);
        p += n;
        len -= n;
        off = 0;
        k = v->next[k];
    }
}

int
shmq_copy_out(shmq_t *q, int ch, uint32_t idx, void *out, uint32_t len)
{
    shmq_view_t *v = &q->v[ch];
    const shmq_slot_t *s = &v->slots[idx];
    uint8_t *p = out;
    if (len <= SHMQ_INLINE) {
        memcpy(p, s->inl, len);
        return 0;
    }
    uint32_t k = s->chunk;
    while (len) {
        if (k >= v->c->nchunks)
            return -1;
        uint32_t n = len < SHMQ_CHUNK ? len : SHMQ_CHUNK;
        memcpy(p, v->chunks + (uint64_t)k * SHMQ_CHUNK, n);
        p += n;
        len -= n;
        k = v->next[k];
    }
    return 0;
}

void
shmq_publish(shmq_t *q, int ch, uint32_t idx, int front)
{
    shmq_view_t *v = &q->v[ch];
    shmq_chan_t *c = v->c;
    if (front) {
        v->ring[(c->head - 1) % c->ring_cap] = idx; /* outside [head, tail): unlogged */
        shmq_set64(q, &c->head, c->head - 1);
    } else {
        v->ring[c->tail % c->ring_cap] = idx;
        shmq_set64(q, &c->tail, c->tail + 1);
    }
    shmq_set32(q, &v->slots[idx].state, SHMQ_QUEUED);
}

void
shmq_unhold(shmq_t *q, int ch, uint32_t idx)
{
    shmq_chan_t *c = q->v[ch].c;
    s_held_unlink(q, ch, idx);
    if (q->v[ch].slots[idx].state == SHMQ_TAKEN)
        shmq_set32(q, &c->ntaken, c->ntaken - 1);
    else
        shmq_set32(q, &c->nwriting, c->nwriting - 1);
}

uint32_t
shmq_take(shmq_t *q, int ch, shmq_self_t me)
{
    shmq_view_t *v = &q->v[ch];
    shmq_chan_t *c = v->c;
    uint32_t idx = v->ring[c->head % c->ring_cap];
    if (idx >= c->ring_cap || v->slots[idx].state != SHMQ_QUEUED)
        return SHMQ_NIL;
    shmq_slot_t *s = &v->slots[idx];
    shmq_set64(q, &c->head, c->head + 1);
    s->owner_pid = me.pid; /* not meaningful while QUEUED: unlogged */
    s->owner_start = me.start;
    shmq_set32(q, &s->gen, s->gen + 1);
    shmq_set32(q, &s->state, SHMQ_TAKEN);
    s_held_append(q, ch, idx);
    shmq_set32(q, &c->ntaken, c->ntaken + 1);
    return idx;
}

void
shmq_release(shmq_t *q, int ch, uint32_t idx)
{
    shmq_view_t *v = &q->v[ch];
    shmq_chan_t *c = v->c;
    shmq_slot_t *s = &v->slots[idx];
    if (s->state == SHMQ_TAKEN || s->state == SHMQ_WRITING)
        shmq_unhold(q, ch, idx);
    s_chunks_free(q, ch, s);
    shmq_set64(q, &c->bytes, c->bytes - s->len);
    shmq_set32(q, &s->state, SHMQ_FREE);
    s->free_next = c->free_slot; /* not meaningful before: unlogged */
    shmq_set32(q, &c->free_slot, idx);
}

void
shmq_requeue(shmq_t *q, int ch, uint32_t idx)
{
    shmq_unhold(q, ch, idx);
    shmq_publish(q, ch, idx, 1);
}

/* ---- checksums ------------------------------------------------------------ */

uint32_t
shmq_item_crc(const shmq_slot_t *s, uint32_t payload_crc)
{
    struct {
        jobq_id_t id;
        uint32_t len, max_attempts, ttr_ms, flags;
    } m;
    memset(&m, 0, sizeof m);
    m.id = s->id;
    m.len = s->len;
    m.max_attempts = s->max_attempts;
    m.ttr_ms = s->ttr_ms;
    m.flags = s->flags;
    return shmq_crc32c(payload_crc, &m, sizeof m);
}

uint32_t
shmq_result_crc(const shmq_slot_t *s, uint32_t payload_crc)
{
    struct {
        jobq_id_t id;
        uint32_t len, attempt, status;
        int32_t exit_code, signal;
        uint32_t output_len;
        uint64_t duration_us;
    } m;
    memset(&m, 0, sizeof m);
    m.id = s->id;
    m.len = s->len;
    m.attempt = s->attempt;
    m.status = s->status;
    m.exit_code = s->exit_code;
    m.signal = s->signal;
    m.output_len = s->output_len;
    m.duration_us = s->duration_us;
    return shmq_crc32c(payload_crc, &m, sizeof m);
}

/* ---- reclaim ------------------------------------------------------------- */

/* Posts the CRASHED result of an item whose attempts are used up (TIMEDOUT
 * when sig says its holder was killed at a hard time limit). */
static void
s_crash_result(shmq_t *q, const shmq_slot_t *it, int sig)
{
    char text[SHMQ_INLINE];
    uint32_t status;
    int signo;
    int n = queue_reclaim_verdict(sig, (pid_t)it->owner_pid, &status, &signo, text, sizeof text);
    if (n < 0)
        n = snprintf(text, sizeof text, "holder pid %d died before task_done", (int)it->owner_pid);
    uint32_t len = n < 0 ? 0 : (uint32_t)n >= sizeof text ? (uint32_t)sizeof text - 1 : (uint32_t)n;
    shmq_chan_t *rc = q->v[SHMQ_RESULTS].c;
    if (!shmq_room(q, SHMQ_RESULTS, len, 1)) {
        shmq_set64(q, &rc->dropped, rc->dropped + 1);
        LOG_WARN("shm queue: results channel full; CRASHED result of a job dropped");
        return;
    }
    uint32_t idx = shmq_reserve(q, SHMQ_RESULTS, len, 0);
    if (idx == SHMQ_NIL)
        return;
    shmq_slot_t *r = &q->v[SHMQ_RESULTS].slots[idx];
    r->id = it->id;
    r->attempt = it->attempt;
    r->status = status;
    r->exit_code = 0;
    r->signal = signo;
    r->duration_us = 0;
    r->output_len = 0;
    r->flags = 0;
    memcpy(r->inl, text, len);
    r->crc = shmq_result_crc(r, shmq_crc32c(0, text, len));
    shmq_publish(q, SHMQ_RESULTS, idx, 0);
    shmq_signal(q, SHMQ_RNOTEMPTY, 1);
}

/* Finishes an item without running it again (done, or a result posted). */
static void
s_finish_item(shmq_t *q, uint32_t idx)
{
    shmq_release(q, SHMQ_ITEMS, idx);
    shmq_signal(q, SHMQ_NOTFULL, INT32_MAX);
    if (shmq_unfinished(q->h) == 0)
        shmq_signal(q, SHMQ_ALLDONE, INT32_MAX);
}

/* Hands back one record held by a dead (or named) process:
 *   WRITING (a put cut short)        -> FREE: the put never returned OK
 *   a taken result (reader died)     -> front of the results ring
 *   a taken sentinel                 -> finished: its holder was stopping anyway,
 *                                       and a requeued pill would outlive the
 *                                       consumers it was meant for
 *   a taken item, attempts left      -> front of the ring, attempt + 1 at next take
 *   a taken item, attempts used up   -> a CRASHED result, then finished */
static void
s_reclaim_one(shmq_t *q, int ch, uint32_t idx, int sig)
{
    shmq_slot_t *s = &q->v[ch].slots[idx];
    shmq_chan_t *c = q->v[ch].c;
    int was_cap = ch == SHMQ_ITEMS && c->ntaken >= q->h->inflight_cap;
    if (s->state == SHMQ_WRITING) {
        shmq_release(q, ch, idx);
        shmq_signal(q, ch == SHMQ_ITEMS ? SHMQ_NOTFULL : SHMQ_RNOTFULL, INT32_MAX);
    } else if (ch == SHMQ_RESULTS) {
        shmq_requeue(q, ch, idx);
        shmq_signal(q, SHMQ_RNOTEMPTY, 1);
    } else if (s->flags & SHMQ_F_SENTINEL) {
        s_finish_item(q, idx);
    } else if (s->attempt < s->max_attempts) {
        shmq_requeue(q, ch, idx);
        JOBQ_FAULT("shmq.reclaim.locked");
        shmq_signal(q, SHMQ_NOTEMPTY, 1);
    } else {
        s_crash_result(q, s, sig);
        JOBQ_FAULT("shmq.reclaim.locked");
        s_finish_item(q, idx);
    }
    if (was_cap)
        shmq_signal(q, SHMQ_NOTEMPTY, INT32_MAX);
    shmq_commit(q);
}

/* Liveness answers cached for one sweep. */
typedef struct s_seen {
    int n;
    struct {
        pid_t pid;
        uint64_t start;
        int dead;
    } e[32];
} s_seen_t;

static int
s_is_dead(s_seen_t *seen, pid_t pid, uint64_t start)
{
    for (int i = 0; i < seen->n; i++)
        if (seen->e[i].pid == pid && seen->e[i].start == start)
            return seen->e[i].dead;
    int dead = shmq_dead(pid, start);
    if (seen->n < 32) {
        seen->e[seen->n].pid = pid;
        seen->e[seen->n].start = start;
        seen->e[seen->n].dead = dead;
        seen->n++;
    }
    return dead;
}

int
shmq_reclaim_dead(shmq_t *q, pid_t pid, int sig)
{
    s_seen_t seen = {0};
    int items = 0;
    for (int ch = 0; ch < 2; ch++) {
        shmq_view_t *v = &q->v[ch];
        uint32_t steps = 0;
        for (uint32_t i = v->c->held_head; i < v->c->ring_cap && steps++ < v->c->ring_cap;) {
            shmq_slot_t *s = &v->slots[i];
            uint32_t next = s->hnext;
            int mine =
                pid > 0 ? s->owner_pid == pid : s_is_dead(&seen, s->owner_pid, s->owner_start);
            if (mine) {
                items += ch == SHMQ_ITEMS && s->state == SHMQ_TAKEN;
                s_reclaim_one(q, ch, i, pid > 0 ? sig : 0);
            }
            i = next;
        }
    }
    if (pid > 0)
        return items;
    shmq_hdr_t *h = q->h;
    for (uint32_t i = 0; i < SHMQ_WAITERS; i++) {
        shmq_waiter_t *w = &h->waiters[i];
        if (w->pid == 0 || !s_is_dead(&seen, w->pid, w->start))
            continue;
        if (w->cond < SHMQ_NCOND && h->nwait[w->cond] > 0)
            shmq_set32(q, &h->nwait[w->cond], h->nwait[w->cond] - 1);
        shmq_set32(q, (uint32_t *)&w->pid, 0);
        shmq_commit(q);
    }
    if (items)
        LOG_INFO("shm queue: handed back %d items of dead holders", items);
    return items;
}

void
shmq_sweep(shmq_t *q, int force)
{
    int64_t now = jobq_now_ms();
    if (!force && now - q->h->last_sweep_ms < SHMQ_SWEEP_MS)
        return;
    q->h->last_sweep_ms = now;
    shmq_reclaim_dead(q, 0, 0);
}
