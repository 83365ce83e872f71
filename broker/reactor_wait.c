/*
 * broker/reactor_wait.c: parked WAIT and JOIN requests, and the results the
 * broker pushes to producers.
 *
 * A WAIT that cannot be answered at once is parked: its pending ids go into
 * an index (id -> wait slot and position, chained hash with a random seed),
 * so that a stored result finds its waits in O(1). A wait is answered once:
 * when none of its ids is pending any more, or at its deadline, with RESULTS
 * (every frame carries req and n = the number of results in the whole reply)
 * or ERROR (JOBQ_ETIMEDOUT, or JOBQ_ENOTFOUND when no id was known). JOINs
 * are few: they are a plain list scanned on CORE_EV_JOIN and at deadlines.
 *
 * Invariant: an index entry exists exactly for each (wait, position) whose
 * have[] is 0 (pending); eused counts them.
 */
#include "broker/reactor_int.h"
#include "common/alloc.h"
#include "common/log.h"

#include <string.h>
#include <sys/random.h>

#define S_FREE_ENT UINT32_MAX

void
rx_waits_init(rx_waits_t *w)
{
    memset(w, 0, sizeof *w);
    if (getrandom(&w->seed, sizeof w->seed, 0) != (ssize_t)sizeof w->seed)
        w->seed = 0x2545f4914f6cdd1dull ^ (uint64_t)(uintptr_t)w;
    w->nbuckets = 64;
    w->buckets = jobq_malloc(w->nbuckets * sizeof *w->buckets);
    for (uint32_t i = 0; i < w->nbuckets; i++)
        w->buckets[i] = -1;
    w->efree = -1;
}

void
rx_waits_fini(rx_waits_t *w)
{
    for (uint32_t i = 0; i < w->cap; i++) {
        jobq_free(w->w[i].ids);
        jobq_free(w->w[i].have);
    }
    jobq_free(w->w);
    jobq_free(w->ents);
    jobq_free(w->buckets);
    memset(w, 0, sizeof *w);
}

static uint32_t
s_bucket(const rx_waits_t *w, const jobq_id_t *id)
{
    uint64_t a, b;
    memcpy(&a, id->b, 8);
    memcpy(&b, id->b + 8, 8);
    unsigned __int128 m = (unsigned __int128)(a ^ w->seed) * (b ^ 0x9e3779b97f4a7c15ull);
    return (uint32_t)(((uint64_t)m ^ (uint64_t)(m >> 64)) & (w->nbuckets - 1));
}

static void
s_rehash(rx_waits_t *w)
{
    w->nbuckets *= 2;
    w->buckets = jobq_realloc(w->buckets, w->nbuckets * sizeof *w->buckets);
    for (uint32_t i = 0; i < w->nbuckets; i++)
        w->buckets[i] = -1;
    for (uint32_t i = 0; i < w->ecap; i++) {
        rx_wait_ent_t *e = &w->ents[i];
        if (e->wait == S_FREE_ENT)
            continue;
        uint32_t b = s_bucket(w, &e->id);
        e->next = w->buckets[b];
        w->buckets[b] = (int32_t)i;
    }
}

static void
s_index_add(rx_waits_t *w, const jobq_id_t *id, uint32_t wait, uint32_t pos)
{
    if (w->efree < 0) {
        uint32_t ncap = w->ecap ? w->ecap * 2 : 64;
        w->ents = jobq_realloc(w->ents, ncap * sizeof *w->ents);
        for (uint32_t i = ncap; i-- > w->ecap;) {
            w->ents[i].wait = S_FREE_ENT;
            w->ents[i].next = w->efree;
            w->efree = (int32_t)i;
        }
        w->ecap = ncap;
    }
    if (w->eused + 1 > w->nbuckets)
        s_rehash(w);
    int32_t i = w->efree;
    rx_wait_ent_t *e = &w->ents[i];
    w->efree = e->next;
    e->id = *id;
    e->wait = wait;
    e->pos = pos;
    uint32_t b = s_bucket(w, id);
    e->next = w->buckets[b];
    w->buckets[b] = i;
    w->eused++;
}

/* Unlinks the entry *link points to and frees it. */
static void
s_index_unlink(rx_waits_t *w, int32_t *link)
{
    int32_t i = *link;
    *link = w->ents[i].next;
    w->ents[i].wait = S_FREE_ENT;
    w->ents[i].next = w->efree;
    w->efree = i;
    w->eused--;
}

static void
s_index_del(rx_waits_t *w, const jobq_id_t *id, uint32_t wait, uint32_t pos)
{
    int32_t *link = &w->buckets[s_bucket(w, id)];
    while (*link >= 0) {
        rx_wait_ent_t *e = &w->ents[*link];
        if (e->wait == wait && e->pos == pos) {
            s_index_unlink(w, link);
            return;
        }
        link = &e->next;
    }
    JOBQ_ASSERT(0);
}

static uint32_t
s_slot(rx_waits_t *w)
{
    if (w->used == w->cap) {
        uint32_t ncap = w->cap ? w->cap * 2 : 16;
        w->w = jobq_realloc(w->w, ncap * sizeof *w->w);
        memset(w->w + w->cap, 0, (ncap - w->cap) * sizeof *w->w);
        w->cap = ncap;
    }
    for (uint32_t i = 0; i < w->cap; i++)
        if (!w->w[i].peer)
            return i;
    JOBQ_ASSERT(0);
    return 0;
}

/* Frees slot i and its index entries; the asker's count goes down. */
static void
s_free_wait(reactor_t *r, uint32_t i)
{
    rx_waits_t *w = &r->waits;
    rx_wait_t *x = &w->w[i];
    rx_peer_t *p = rx_peers_by_handle(&r->peers, x->peer);
    if (p && p->nwaits)
        p->nwaits--;
    if (x->join)
        w->njoins--;
    for (uint32_t k = 0; k < x->nids; k++)
        if (x->have[k] == 0)
            s_index_del(w, &x->ids[k], i, k);
    jobq_free(x->ids);
    jobq_free(x->have);
    memset(x, 0, sizeof *x);
    w->used--;
}

/* Answers a WAIT over ids/have (have 1 = result known, 2 = unknown id). */
static void
s_wait_reply(reactor_t *r, rx_peer_t *p, uint64_t req, const jobq_id_t *ids, const uint8_t *have,
             uint32_t n)
{
    uint32_t k = 0, unknown = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (have[i] == 1)
            r->idbuf[k++] = ids[i];
        unknown += have[i] == 2;
    }
    if (k && rx_send_results(r, p, 1, req, r->idbuf, k))
        return;
    if (unknown == n)
        rx_error(r, p, 1, req, JOBQ_ENOTFOUND, "no such job (or its result expired)");
    else
        rx_error(r, p, 1, req, JOBQ_ETIMEDOUT, "no result yet");
}

static void
s_join_reply(reactor_t *r, rx_peer_t *p, uint64_t req, const char *q, uint32_t qlen)
{
    uint64_t left = 0;
    core_queue_unfinished(r->core, q, qlen, &left);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_JOIN_OK);
    m.fields = WIRE_F_REQ | WIRE_F_QUEUE | WIRE_F_COUNT;
    m.req = req;
    m.queue = (wire_str_t){q, qlen};
    m.count = left;
    if (rx_send(r, p, &m) != 0)
        r->cnt.replies_dropped++;
}

/* Answers parked request i and frees it. */
static void
s_finish(reactor_t *r, uint32_t i)
{
    rx_wait_t *x = &r->waits.w[i];
    rx_peer_t *p = rx_peers_by_handle(&r->peers, x->peer);
    if (p && x->join)
        s_join_reply(r, p, x->req, x->q, x->qlen);
    else if (p)
        s_wait_reply(r, p, x->req, x->ids, x->have, x->nids);
    s_free_wait(r, i);
}

static int64_t
s_deadline(const reactor_t *r, const wire_msg_t *m)
{
    if (!(m->fields & WIRE_F_TIMEOUT) || m->timeout_ms >= (uint64_t)CORE_DELAY_MAX_MS)
        return CORE_FOREVER;
    return r->now_ms + (int64_t)m->timeout_ms;
}

/* Takes a slot for p's request; NULL (and an ERROR sent) when p has too many. */
static rx_wait_t *
s_park(reactor_t *r, rx_peer_t *p, const wire_msg_t *m, uint32_t *slot)
{
    if (p->nwaits >= RX_WAITS_PER_PEER) {
        rx_error(r, p, 1, m->req, JOBQ_ETOOBIG, "too many parked WAIT/JOIN requests (limit %u)",
                 RX_WAITS_PER_PEER);
        return NULL;
    }
    *slot = s_slot(&r->waits);
    rx_wait_t *x = &r->waits.w[*slot];
    x->peer = p->handle;
    x->req = m->req;
    x->deadline_ms = s_deadline(r, m);
    if (r->wait_due_ms > x->deadline_ms)
        r->wait_due_ms = x->deadline_ms;
    r->waits.used++;
    p->nwaits++;
    return x;
}

void
rx_wait_request(reactor_t *r, rx_peer_t *p, const wire_msg_t *m)
{
    uint32_t n = m->nids, pending = 0;
    if (n == 0) {
        rx_error(r, p, 1, m->req, JOBQ_EINVAL, "WAIT needs at least one id");
        return;
    }
    uint8_t *have = jobq_malloc(n);
    for (uint32_t i = 0; i < n; i++) {
        core_result_view_t rv;
        core_job_view_t jv;
        have[i] = core_result(r->core, &m->ids[i], &rv) == JOBQ_OK ? 1
                  : core_peek(r->core, &m->ids[i], &jv) == JOBQ_OK ? 0
                                                                   : 2;
        pending += have[i] == 0;
    }
    int now = pending == 0 || ((m->fields & WIRE_F_TIMEOUT) && m->timeout_ms == 0);
    if (!now && r->waits.eused + pending > RX_WAIT_IDS_MAX) {
        rx_error(r, p, 1, m->req, JOBQ_ETOOBIG, "too many ids waited for; retry later");
        jobq_free(have);
        return;
    }
    uint32_t slot;
    rx_wait_t *x = now ? NULL : s_park(r, p, m, &slot);
    if (!x) {
        if (now)
            s_wait_reply(r, p, m->req, m->ids, have, n);
        jobq_free(have);
        return;
    }
    x->ids = jobq_memdup(m->ids, n * sizeof *m->ids);
    x->have = have;
    x->nids = n;
    x->npending = pending;
    for (uint32_t i = 0; i < n; i++)
        if (have[i] == 0)
            s_index_add(&r->waits, &x->ids[i], slot, i);
}

void
rx_join_request(reactor_t *r, rx_peer_t *p, const wire_msg_t *m)
{
    uint64_t left = 0;
    int rc = core_queue_unfinished(r->core, m->queue.ptr, m->queue.len, &left);
    if (rc != JOBQ_OK || left == 0 || ((m->fields & WIRE_F_TIMEOUT) && m->timeout_ms == 0)) {
        s_join_reply(r, p, m->req, m->queue.ptr, m->queue.len);
        return;
    }
    uint32_t slot;
    rx_wait_t *x = s_park(r, p, m, &slot);
    if (!x)
        return;
    x->join = 1;
    x->qlen = m->queue.len;
    memcpy(x->q, m->queue.ptr, m->queue.len);
    r->waits.njoins++;
}

int
rx_waits_on_result(reactor_t *r, const jobq_id_t *id, uint64_t submitter)
{
    rx_waits_t *w = &r->waits;
    int carried = 0;
    while (w->eused) {
        int32_t *link = &w->buckets[s_bucket(w, id)];
        while (*link >= 0 && memcmp(&w->ents[*link].id, id, sizeof *id) != 0)
            link = &w->ents[*link].next;
        if (*link < 0)
            break;
        uint32_t slot = w->ents[*link].wait, pos = w->ents[*link].pos;
        s_index_unlink(w, link);
        rx_wait_t *x = &w->w[slot];
        x->have[pos] = 1;
        carried |= x->peer == submitter;
        if (--x->npending == 0)
            s_finish(r, slot);
    }
    return carried;
}

void
rx_waits_on_join(reactor_t *r, const char *q, uint32_t qlen)
{
    rx_waits_t *w = &r->waits;
    for (uint32_t i = 0; w->njoins && i < w->cap; i++) {
        rx_wait_t *x = &w->w[i];
        if (x->peer && x->join && x->qlen == qlen && memcmp(x->q, q, qlen) == 0)
            s_finish(r, i);
    }
}

int64_t
rx_waits_expire(reactor_t *r)
{
    rx_waits_t *w = &r->waits;
    int64_t next = CORE_FOREVER;
    for (uint32_t i = 0; w->used && i < w->cap; i++) {
        rx_wait_t *x = &w->w[i];
        if (!x->peer)
            continue;
        if (x->deadline_ms <= r->now_ms)
            s_finish(r, i);
        else if (x->deadline_ms < next)
            next = x->deadline_ms;
    }
    return next;
}

void
rx_waits_drop_peer(reactor_t *r, uint64_t handle)
{
    rx_waits_t *w = &r->waits;
    for (uint32_t i = 0; w->used && i < w->cap; i++)
        if (w->w[i].peer == handle)
            s_free_wait(r, i);
}

/* ---- results to producers ------------------------------------------------ */

void
rx_push_add(reactor_t *r, rx_peer_t *p, const jobq_id_t *id)
{
    if (p->npush == p->cappush) {
        p->cappush = p->cappush ? p->cappush * 2 : 64;
        p->push = jobq_realloc(p->push, p->cappush * sizeof *p->push);
    }
    p->push[p->npush++] = *id;
    if (p->pushing)
        return;
    if (r->npushq == r->cappushq) {
        r->cappushq = r->cappushq ? r->cappushq * 2 : 16;
        r->pushq = jobq_realloc(r->pushq, r->cappushq * sizeof *r->pushq);
    }
    r->pushq[r->npushq++] = p->handle;
    p->pushing = 1;
}

void
rx_push_flush(reactor_t *r)
{
    for (uint32_t i = 0; i < r->npushq; i++) {
        rx_peer_t *p = rx_peers_by_handle(&r->peers, r->pushq[i]);
        if (!p)
            continue;
        r->cnt.results_pushed += rx_send_results(r, p, 0, 0, p->push, p->npush);
        p->npush = 0;
        p->pushing = 0;
        if (p->cappush > 4096) { /* a burst is over: give the memory back */
            jobq_free(p->push);
            p->push = NULL;
            p->cappush = 0;
        }
    }
    r->npushq = 0;
}

static void
s_result_of(const core_result_view_t *v, jobq_result_t *res)
{
    jobq_result_init(res);
    res->id = v->id;
    res->attempt = v->attempts;
    res->status = v->status;
    res->exit_code = v->exit_code;
    res->signal = v->signal;
    res->duration_us = v->duration_us;
    res->output = v->output;
    res->output_len = v->output_len;
    res->error = v->error;
    res->error_len = v->error_len;
}

/* Fills r->rbuf from ids[*i..) for one frame; returns how many. */
static uint32_t
s_fill_frame(reactor_t *r, const jobq_id_t *ids, uint32_t n, uint32_t *i)
{
    uint32_t k = 0;
    size_t bytes = 0;
    core_result_view_t v;
    while (*i < n && k < WIRE_MAX_BATCH) {
        if (core_result(r->core, &ids[*i], &v) != JOBQ_OK) {
            (*i)++;
            continue;
        }
        size_t size = (size_t)v.output_len + v.error_len;
        if (k && bytes + size > RX_FRAME_BYTES)
            break;
        s_result_of(&v, &r->rbuf[k++]);
        bytes += size;
        (*i)++;
    }
    return k;
}

uint32_t
rx_send_results(reactor_t *r, rx_peer_t *p, int has_req, uint64_t req, const jobq_id_t *ids,
                uint32_t n)
{
    uint64_t total = 0;
    core_result_view_t v;
    for (uint32_t i = 0; has_req && i < n; i++)
        total += core_result(r->core, &ids[i], &v) == JOBQ_OK;
    uint32_t i = 0, sent = 0;
    while (i < n) {
        uint32_t start = i, k = s_fill_frame(r, ids, n, &i);
        if (k == 0)
            break;
        wire_msg_t m;
        wire_msg_init(&m, WIRE_RESULTS);
        m.fields = WIRE_F_RESULTS | (has_req ? WIRE_F_REQ | WIRE_F_COUNT : 0);
        m.req = req;
        m.count = total;
        m.results = r->rbuf;
        m.nresults = k;
        if (rx_send(r, p, &m) != 0) {
            r->cnt.replies_dropped++;
            break;
        }
        for (uint32_t j = start; j < i; j++)
            core_take_result(r->core, &ids[j], &v);
        sent += k;
    }
    return sent;
}
