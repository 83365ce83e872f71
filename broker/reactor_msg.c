/*
 * broker/reactor_msg.c: one small handler per message type, chosen from a
 * table of {roles allowed, handler}, and the delivery of READY jobs to
 * workers (DELIVER). docs/PROTOCOL.md sections 9-11 and "Broker behaviour"
 * describe what each handler answers.
 *
 * Rules every handler keeps: a reply echoes the request's req when it had
 * one; a view from the core is encoded before the next call that changes the
 * core; a job the core reserved is sent or handed back (core_release) before
 * the handler returns.
 */
#include "broker/reactor_int.h"
#include "common/alloc.h"
#include "common/log.h"
#include "jobq/version.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define S_BLOCK_MS 20 /* a worker whose queue was full gets no DELIVER for this long */

typedef void (*s_handler_fn)(reactor_t *r, rx_peer_t *p, wire_msg_t *m);

static const char *const s_role_names[] = {"unknown", "producer", "worker", "admin"};

static const char *
s_role(uint32_t role)
{
    return role < 4 ? s_role_names[role] : "unknown";
}

/* Sends m (a reply to a request) to p, counting a reply that was lost. */
static void
s_reply(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    if (rx_send(r, p, m) != 0)
        r->cnt.replies_dropped++;
}

static void
s_ok(reactor_t *r, rx_peer_t *p, uint64_t req, int with_n, uint64_t n)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_OK);
    m.fields = WIRE_F_REQ | (with_n ? WIRE_F_COUNT : 0);
    m.req = req;
    m.count = n;
    s_reply(r, p, &m);
}

/* ---- producers ----------------------------------------------------------- */

static void
s_on_submit(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    if (r->stopping) {
        rx_error(r, p, 1, m->req, JOBQ_ECLOSED, "broker is shutting down: submit elsewhere");
        return;
    }
    if (r->jrn) {
        rx_journal_submit(r, p, m);
        return;
    }
    for (uint32_t i = 0; i < m->njobs; i++) {
        jobq_job_t job = m->jobs[i];
        job.attempt = 0; /* a producer does not choose the attempt */
        jobq_id_t id = job.id;
        int rc = core_submit(r->core, &job, p->handle, r->now_ms, &id, NULL);
        r->idbuf[i] = id;
        r->codebuf[i] = (uint32_t)rc;
    }
    wire_msg_t o;
    wire_msg_init(&o, WIRE_SUBMIT_OK);
    o.fields = WIRE_F_REQ | WIRE_F_IDS | WIRE_F_CODES;
    o.req = m->req;
    o.ids = r->idbuf;
    o.nids = m->njobs;
    o.codes = r->codebuf;
    o.ncodes = m->njobs;
    s_reply(r, p, &o);
    r->work_maybe = 1;
}

static void
s_on_wait(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    rx_wait_request(r, p, m);
}

static void
s_on_join(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    rx_join_request(r, p, m);
}

/* ---- workers ------------------------------------------------------------- */

static void
s_on_ready(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    uint32_t credit = m->credit < r->opts.max_credit ? m->credit : r->opts.max_credit;
    p->credit = credit;
    if (m->fields & WIRE_F_QUEUES)
        rx_peer_set_queues(p, m->queues, m->nqueues);
    core_worker_credit(r->core, p->handle, credit, r->now_ms);
    r->work_maybe = 1;
}

/* Replies RESULT_OK with r->idbuf/codebuf[0..n), echoing req when m had one. */
static void
s_result_ok(reactor_t *r, rx_peer_t *p, const wire_msg_t *m, uint32_t n)
{
    wire_msg_t o;
    wire_msg_init(&o, WIRE_RESULT_OK);
    o.fields = WIRE_F_IDS | WIRE_F_CODES | (m->fields & WIRE_F_REQ);
    o.req = m->req;
    o.ids = r->idbuf;
    o.nids = n;
    o.codes = r->codebuf;
    o.ncodes = n;
    s_reply(r, p, &o);
}

static void
s_on_result(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    for (uint32_t i = 0; i < m->nresults; i++) {
        r->idbuf[i] = m->results[i].id;
        r->codebuf[i] = (uint32_t)core_complete(r->core, p->handle, &m->results[i], r->now_ms);
    }
    s_result_ok(r, p, m, m->nresults);
    r->work_maybe = 1;
}

static void
s_on_extend(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    uint32_t ttr = m->timeout_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)m->timeout_ms;
    for (uint32_t i = 0; i < m->nleases; i++) {
        const wire_lease_t *l = &m->leases[i];
        r->idbuf[i] = l->id;
        r->codebuf[i] =
            (uint32_t)core_extend(r->core, p->handle, &l->id, l->attempt, ttr, r->now_ms, NULL);
    }
    s_result_ok(r, p, m, m->nleases);
}

static void
s_on_report(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    r->cnt.reports++;
    LOG_INFO("worker %.*s reports: %.*s", (int)p->name_len, p->name,
             (int)(m->data.len > 300 ? 300 : m->data.len), (const char *)m->data.ptr);
}

/* ---- any role ------------------------------------------------------------ */

static void
s_on_heartbeat(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    (void)r, (void)p, (void)m; /* last_recv_ms is already updated */
}

static void
s_on_disconnect(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    /* Leases the worker lists were never started: they cost no attempt. The
     * rest count as a crashed attempt (core_release_worker LOST). */
    for (uint32_t i = 0; p->role == WIRE_ROLE_WORKER && i < m->nleases; i++)
        core_release(r->core, p->handle, &m->leases[i].id, m->leases[i].attempt, 0, r->now_ms);
    rx_peer_forget(r, p, CORE_RELEASE_LOST, NULL);
}

static void
s_on_peer_error(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    LOG_NOTICE("peer %.*s sent ERROR %s: %.*s", (int)p->name_len, p->name,
               jobq_errname((int)m->code), (int)m->msg.len, m->msg.ptr ? m->msg.ptr : "");
    rx_protocol_error(r, p, RX_ERR_PEER_ERROR);
}

static void
s_on_stats(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    rx_text_t t = {.max = WIRE_DATA_MAX};
    int rc = rx_stats_json(r, m->queue.ptr, m->queue.len, &t);
    if (rc != JOBQ_OK) {
        rx_error(r, p, 1, m->req, rc, "no queue '%.*s'", (int)m->queue.len, m->queue.ptr);
    } else {
        wire_msg_t o;
        wire_msg_init(&o, WIRE_STATS_REPLY);
        o.fields = WIRE_F_REQ | WIRE_F_DATA;
        o.req = m->req;
        o.data = (wire_str_t){t.s, (uint32_t)t.len};
        s_reply(r, p, &o);
    }
    rx_text_fini(&t);
}

/* 1 if worker p takes jobs from queue q (every worker when q is empty). */
static int
s_serves(const rx_peer_t *p, const wire_str_t *q)
{
    if (!q->len || !p->nqueues)
        return 1;
    for (uint32_t i = 0; i < p->nqueues; i++)
        if (p->queues[i].len == q->len && memcmp(p->queues[i].ptr, q->ptr, q->len) == 0)
            return 1;
    return 0;
}

static void
s_on_stop_workers(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < r->peers.cap; i++) {
        rx_peer_t *w = r->peers.slots[i];
        if (!w || w->role != WIRE_ROLE_WORKER || w->stopping || !s_serves(w, &m->queue))
            continue;
        wire_msg_t s;
        wire_msg_init(&s, WIRE_SENTINEL);
        if (rx_send(r, w, &s) != 0)
            continue;
        w->stopping = 1;
        n++;
    }
    r->cnt.sentinels += n;
    s_ok(r, p, m->req, 1, n);
}

/* ---- admin verbs --------------------------------------------------------- */

typedef struct s_verb {
    const char *name;
    void (*fn)(reactor_t *r, rx_peer_t *p, wire_msg_t *m);
} s_verb_t;

static int
s_need_queue(reactor_t *r, rx_peer_t *p, const wire_msg_t *m)
{
    if (m->queue.len)
        return 1;
    rx_error(r, p, 1, m->req, JOBQ_EINVAL, "%.*s needs a queue (q)", (int)m->name.len, m->name.ptr);
    return 0;
}

static void
s_verb_pause(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    if (!s_need_queue(r, p, m))
        return;
    int64_t until = CORE_FOREVER;
    if ((m->fields & WIRE_F_TIMEOUT) && m->timeout_ms &&
        m->timeout_ms < (uint64_t)CORE_DELAY_MAX_MS)
        until = r->now_ms + (int64_t)m->timeout_ms;
    int rc = core_pause(r->core, m->queue.ptr, m->queue.len, until, r->now_ms);
    if (rc)
        rx_error(r, p, 1, m->req, rc, "pause: %s", jobq_strerror(rc));
    else
        s_ok(r, p, m->req, 0, 0);
}

static void
s_verb_resume(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    if (!s_need_queue(r, p, m))
        return;
    int rc = core_resume(r->core, m->queue.ptr, m->queue.len, r->now_ms);
    if (rc)
        rx_error(r, p, 1, m->req, rc, "resume: no queue '%.*s'", (int)m->queue.len, m->queue.ptr);
    else
        s_ok(r, p, m->req, 0, 0);
    r->work_maybe = 1;
}

/* Applies op to every id of m: OK {n} when all succeed, else ERROR with the
 * first failure and how many succeeded. */
static void
s_each_id(reactor_t *r, rx_peer_t *p, wire_msg_t *m, const char *verb,
          int (*op)(reactor_t *r, const jobq_id_t *id))
{
    if (!(m->fields & WIRE_F_IDS) || m->nids == 0) {
        rx_error(r, p, 1, m->req, JOBQ_EINVAL, "%s needs ids", verb);
        return;
    }
    uint64_t ok = 0;
    int first = JOBQ_OK;
    char hex[JOBQ_ID_HEX_LEN + 1] = "";
    for (uint32_t i = 0; i < m->nids; i++) {
        int rc = op(r, &m->ids[i]);
        if (rc == JOBQ_OK)
            ok++;
        else if (first == JOBQ_OK) {
            first = rc;
            jobq_id_format(&m->ids[i], hex);
        }
    }
    if (first == JOBQ_OK)
        s_ok(r, p, m->req, 1, ok);
    else
        rx_error(r, p, 1, m->req, first, "%s: %" PRIu64 " of %u done; %s: %s", verb, ok, m->nids,
                 hex, jobq_strerror(first));
    r->work_maybe = 1;
}

static int
s_op_kick(reactor_t *r, const jobq_id_t *id)
{
    return core_kick_job(r->core, id, r->now_ms);
}

static int
s_op_delete(reactor_t *r, const jobq_id_t *id)
{
    return core_delete(r->core, id, r->now_ms);
}

static int
s_op_bury(reactor_t *r, const jobq_id_t *id)
{
    static const char why[] = "buried by an operator";
    return core_bury(r->core, id, JOBQ_STATUS_DEAD, why, sizeof why - 1, r->now_ms);
}

static void
s_verb_kick(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    if (m->fields & WIRE_F_IDS) {
        s_each_id(r, p, m, "kick", s_op_kick);
        return;
    }
    if (!s_need_queue(r, p, m))
        return;
    uint64_t n = (m->fields & WIRE_F_COUNT) ? m->count : UINT64_MAX, kicked = 0;
    int rc = core_kick(r->core, m->queue.ptr, m->queue.len, n, r->now_ms, &kicked);
    if (rc)
        rx_error(r, p, 1, m->req, rc, "kick: no queue '%.*s'", (int)m->queue.len, m->queue.ptr);
    else
        s_ok(r, p, m->req, 1, kicked);
    r->work_maybe = 1;
}

static void
s_verb_delete(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    s_each_id(r, p, m, "delete", s_op_delete);
}

static void
s_verb_bury(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    s_each_id(r, p, m, "bury", s_op_bury);
}

static void
s_verb_shutdown(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    s_ok(r, p, m->req, 0, 0);
    rx_request_stop(r);
}

/* Replies STATS_REPLY {"jobs": [...]} with the views, or ERROR ENOTFOUND. */
static void
s_jobs_reply(reactor_t *r, rx_peer_t *p, const wire_msg_t *m, const core_job_view_t *v, size_t n)
{
    rx_text_t t = {.max = WIRE_DATA_MAX};
    rx_text_add(&t, "{\"jobs\":[");
    for (size_t i = 0; i < n && !t.over; i++) {
        if (i)
            rx_text_add(&t, ",");
        rx_job_json(&t, &v[i]);
    }
    rx_text_add(&t, "]}");
    wire_msg_t o;
    wire_msg_init(&o, WIRE_STATS_REPLY);
    o.fields = WIRE_F_REQ | WIRE_F_DATA;
    o.req = m->req;
    o.data = (wire_str_t){t.s, (uint32_t)t.len};
    if (t.over)
        rx_error(r, p, 1, m->req, JOBQ_ETOOBIG, "peek: the jobs do not fit in one reply");
    else
        s_reply(r, p, &o);
    rx_text_fini(&t);
}

static void
s_verb_peek(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    if (!(m->fields & WIRE_F_IDS) || m->nids == 0) {
        rx_error(r, p, 1, m->req, JOBQ_EINVAL, "peek needs ids (or use peek-ready, ...)");
        return;
    }
    uint32_t n = m->nids > 1000 ? 1000 : m->nids, k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (core_peek(r->core, &m->ids[i], &r->views[k]) == JOBQ_OK)
            k++;
    if (k == 0)
        rx_error(r, p, 1, m->req, JOBQ_ENOTFOUND, "peek: no such job");
    else
        s_jobs_reply(r, p, m, r->views, k);
}

static void
s_peek_state(reactor_t *r, rx_peer_t *p, wire_msg_t *m, jobq_job_state state)
{
    if (!s_need_queue(r, p, m))
        return;
    size_t max = (m->fields & WIRE_F_COUNT) ? (m->count > 1000 ? 1000 : m->count) : 1, n = 0;
    int rc = core_list(r->core, m->queue.ptr, m->queue.len, state, max, r->views, &n);
    if (rc)
        rx_error(r, p, 1, m->req, rc, "peek: %s", jobq_strerror(rc));
    else
        s_jobs_reply(r, p, m, r->views, n);
}

static void
s_verb_peek_ready(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    s_peek_state(r, p, m, JOBQ_STATE_READY);
}

static void
s_verb_peek_delayed(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    s_peek_state(r, p, m, JOBQ_STATE_DELAYED);
}

static void
s_verb_peek_dead(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    s_peek_state(r, p, m, JOBQ_STATE_DEAD);
}

static const s_verb_t s_verbs[] = {
    {"pause", s_verb_pause},
    {"resume", s_verb_resume},
    {"kick", s_verb_kick},
    {"delete", s_verb_delete},
    {"bury", s_verb_bury},
    {"peek", s_verb_peek},
    {"peek-ready", s_verb_peek_ready},
    {"peek-delayed", s_verb_peek_delayed},
    {"peek-dead", s_verb_peek_dead},
    {"shutdown", s_verb_shutdown},
};

static void
s_on_admin(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    for (size_t i = 0; i < sizeof s_verbs / sizeof s_verbs[0]; i++) {
        if (strlen(s_verbs[i].name) == m->name.len &&
            memcmp(s_verbs[i].name, m->name.ptr, m->name.len) == 0) {
            s_verbs[i].fn(r, p, m);
            return;
        }
    }
    rx_error(r, p, 1, m->req, JOBQ_EINVAL, "unknown admin verb '%.*s'",
             (int)(m->name.len > 64 ? 64 : m->name.len), m->name.ptr ? m->name.ptr : "");
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct {
    uint32_t roles;
    s_handler_fn fn;
} s_table[WIRE_TYPE_MAX_] = {
    [WIRE_SUBMIT] = {RX_R_PRODUCER, s_on_submit},
    [WIRE_READY] = {RX_R_WORKER, s_on_ready},
    [WIRE_RESULT] = {RX_R_WORKER, s_on_result},
    [WIRE_EXTEND] = {RX_R_WORKER, s_on_extend},
    [WIRE_HEARTBEAT] = {RX_R_ANY, s_on_heartbeat},
    [WIRE_WAIT] = {RX_R_PRODUCER | RX_R_ADMIN, s_on_wait},
    [WIRE_JOIN] = {RX_R_PRODUCER | RX_R_ADMIN, s_on_join},
    [WIRE_STATS] = {RX_R_ANY, s_on_stats},
    [WIRE_STOP_WORKERS] = {RX_R_PRODUCER | RX_R_ADMIN, s_on_stop_workers},
    [WIRE_ERROR] = {RX_R_ANY, s_on_peer_error},
    [WIRE_DISCONNECT] = {RX_R_ANY, s_on_disconnect},
    [WIRE_ADMIN] = {RX_R_ADMIN, s_on_admin},
    [WIRE_REPORT] = {RX_R_WORKER, s_on_report},
};

/* HELLO from a peer not known yet: creates it and answers WELCOME. */
static void
s_hello(reactor_t *r, uint32_t sock, const void *rid, size_t rid_len, wire_msg_t *m)
{
    if (r->stopping) {
        wire_msg_t e;
        wire_msg_init(&e, WIRE_ERROR);
        e.fields = WIRE_F_CODE | WIRE_F_MSG;
        e.code = JOBQ_ECLOSED;
        e.msg = (wire_str_t){"broker is shutting down", 23};
        rx_send_raw(r, sock, rid, rid_len, &e);
        return;
    }
    rx_peer_t *p = rx_peers_add(&r->peers, sock, rid, rid_len);
    p->role = (uint8_t)m->role;
    r->peers.by_role[p->role]++;
    uint32_t hb = (m->fields & WIRE_F_HB) && m->hb_ms ? m->hb_ms : r->opts.hb_ms;
    p->hb_ms = hb < REACTOR_HB_MIN_MS   ? REACTOR_HB_MIN_MS
               : hb > REACTOR_HB_MAX_MS ? REACTOR_HB_MAX_MS
                                        : hb;
    p->since_ms = p->last_recv_ms = p->last_send_ms = r->now_ms;
    p->msgs = 1;
    p->no_push = (m->fields & WIRE_F_FLAGS) && (m->flags & RX_HELLO_NO_PUSH);
    p->name_len = m->name.len < RX_NAME_MAX ? m->name.len : RX_NAME_MAX;
    if (p->name_len)
        memcpy(p->name, m->name.ptr, p->name_len);
    if (r->hb_due_ms > r->now_ms + p->hb_ms)
        r->hb_due_ms = r->now_ms + p->hb_ms;
    char ver[64];
    snprintf(ver, sizeof ver, "jobq %s", jobq_version());
    wire_msg_t w;
    wire_msg_init(&w, WIRE_WELCOME);
    w.fields = WIRE_F_HB | WIRE_F_FLAGS | WIRE_F_MSG;
    w.hb_ms = p->hb_ms;
    w.flags = r->jrn ? 1u : 0u; /* bit 0: durable (accepted jobs are journaled) */
    w.msg = (wire_str_t){ver, (uint32_t)strlen(ver)};
    s_reply(r, p, &w);
    LOG_INFO("%s %.*s connected (hb %u ms)", s_role(p->role), (int)p->name_len, p->name, p->hb_ms);
}

/* A message from a peer that never said HELLO (or was forgotten: a worker
 * after a broker restart or a heartbeat loss): ERROR, then DISCONNECT so that
 * it reconnects and says HELLO. */
static void
s_unknown_peer(reactor_t *r, uint32_t sock, const void *rid, size_t rid_len, wire_msg_t *m)
{
    if (m->type == WIRE_DISCONNECT || m->type == WIRE_ERROR)
        return;
    r->cnt.errors[RX_ERR_NO_HELLO]++;
    char text[96];
    snprintf(text, sizeof text, "%s before HELLO: unknown peer", wire_type_name(m->type));
    wire_msg_t e;
    wire_msg_init(&e, WIRE_ERROR);
    e.fields = WIRE_F_CODE | WIRE_F_MSG | (m->fields & WIRE_F_REQ);
    e.req = m->req;
    e.code = JOBQ_ESTATE;
    e.msg = (wire_str_t){text, (uint32_t)strlen(text)};
    if (rx_send_raw(r, sock, rid, rid_len, &e) != 0)
        r->cnt.replies_dropped++;
    wire_msg_t d;
    wire_msg_init(&d, WIRE_DISCONNECT);
    d.fields = WIRE_F_MSG;
    d.msg = (wire_str_t){"unknown peer: reconnect and say HELLO", 37};
    if (rx_send_raw(r, sock, rid, rid_len, &d) != 0)
        r->cnt.replies_dropped++;
}

void
rx_dispatch(reactor_t *r, uint32_t sock, const void *rid, size_t rid_len, rx_peer_t *p,
            wire_msg_t *m)
{
    if (!p) {
        if (m->type == WIRE_HELLO)
            s_hello(r, sock, rid, rid_len, m);
        else
            s_unknown_peer(r, sock, rid, rid_len, m);
        return;
    }
    int has_req = (m->fields & WIRE_F_REQ) != 0;
    if (m->type == WIRE_HELLO) {
        rx_error(r, p, has_req, m->req, JOBQ_ESTATE, "HELLO already received on this connection");
        rx_protocol_error(r, p, RX_ERR_HELLO_TWICE);
        return;
    }
    if (!s_table[m->type].fn) {
        rx_error(r, p, has_req, m->req, JOBQ_EPROTO, "%s is sent by the broker only",
                 wire_type_name(m->type));
        rx_protocol_error(r, p, RX_ERR_DIRECTION);
        return;
    }
    if (!(s_table[m->type].roles & (1u << p->role))) {
        rx_error(r, p, has_req, m->req, JOBQ_EFORBIDDEN, "a %s may not send %s", s_role(p->role),
                 wire_type_name(m->type));
        rx_protocol_error(r, p, RX_ERR_ROLE);
        return;
    }
    s_table[m->type].fn(r, p, m);
}

/* ---- delivering ---------------------------------------------------------- */

/* Fills r->jobbuf and r->leasebuf from the n views in r->views. */
static void
s_fill_jobs(reactor_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const core_job_view_t *v = &r->views[i];
        r->leasebuf[i] = (wire_lease_t){v->id, v->attempt};
        jobq_job_t *j = &r->jobbuf[i];
        jobq_job_init(j);
        j->id = v->id;
        j->queue = v->queue;
        j->queue_len = v->queue_len;
        j->payload = v->payload;
        j->payload_len = v->payload_len;
        j->priority = v->priority;
        j->ttr_ms = v->ttr_ms;
        j->max_attempts = v->max_attempts;
        j->attempt = v->attempt;
    }
}

/* Sends the n reserved jobs in r->views to worker p in DELIVER frames. On a
 * failed send the unsent jobs go back to READY (core_release: no attempt
 * used); a worker that is gone (EHOSTUNREACH) is forgotten. Returns the
 * number of jobs handed back. */
static size_t
s_send_deliver(reactor_t *r, rx_peer_t *p, size_t n)
{
    jobq_job_t *jobs = r->jobbuf;
    s_fill_jobs(r, n);
    size_t sent = 0;
    int err = 0;
    while (sent < n) {
        size_t end = sent, bytes = 0;
        while (end < n && end - sent < WIRE_MAX_BATCH &&
               (end == sent || bytes + jobs[end].payload_len <= RX_FRAME_BYTES))
            bytes += jobs[end++].payload_len;
        wire_msg_t m;
        wire_msg_init(&m, WIRE_DELIVER);
        m.fields = WIRE_F_JOBS;
        m.jobs = &jobs[sent];
        m.njobs = (uint32_t)(end - sent);
        if (rx_send(r, p, &m) != 0) {
            err = errno;
            break;
        }
        sent = end;
    }
    for (size_t i = sent; i < n; i++)
        core_release(r->core, p->handle, &r->leasebuf[i].id, r->leasebuf[i].attempt, 0, r->now_ms);
    r->cnt.jobs_returned += n - sent;
    if (err == EHOSTUNREACH) { /* rx_send marked it gone: forgotten at the end of the pass */
        LOG_INFO("worker %.*s is gone: %zu jobs back to ready", (int)p->name_len, p->name,
                 n - sent);
    } else if (err) {
        p->blocked_until_ms = r->now_ms + S_BLOCK_MS;
        if (r->blocked_due_ms > p->blocked_until_ms)
            r->blocked_due_ms = p->blocked_until_ms;
    }
    return n - sent;
}

/* The queues to reserve from for worker p: its own, or a window of every
 * queue (at most CORE_RESERVE_QUEUES_MAX, rotating when there are more). */
static const core_name_t *
s_worker_queues(reactor_t *r, const rx_peer_t *p, size_t *n)
{
    core_name_t *window = r->qwindow;
    if (p->nqueues) {
        *n = p->nqueues;
        return p->queues;
    }
    if (r->nallq <= CORE_RESERVE_QUEUES_MAX) {
        *n = r->nallq;
        return r->allq;
    }
    for (size_t i = 0; i < CORE_RESERVE_QUEUES_MAX; i++)
        window[i] = r->allq[(r->allq_rr + i) % r->nallq];
    r->allq_rr = (r->allq_rr + CORE_RESERVE_QUEUES_MAX) % r->nallq;
    *n = CORE_RESERVE_QUEUES_MAX;
    return window;
}

/* One round over the workers; returns the number of jobs handed back. */
static size_t
s_deliver_round(reactor_t *r)
{
    size_t returned = 0;
    for (uint32_t i = 0; i < r->peers.cap; i++) {
        rx_peer_t *p = r->peers.slots[i];
        if (!p || p->role != WIRE_ROLE_WORKER || p->stopping || p->gone || !p->credit || p->suspect)
            continue;
        if (p->blocked_until_ms > r->now_ms) {
            if (r->blocked_due_ms > p->blocked_until_ms)
                r->blocked_due_ms = p->blocked_until_ms;
            continue;
        }
        core_worker_stats_t st;
        if (core_worker_stats(r->core, p->handle, &st) != JOBQ_OK || st.held >= st.credit)
            continue;
        size_t room = rx_sec_lease_room(r, p, st.credit - st.held), nq = 0, n = 0;
        const core_name_t *qs = s_worker_queues(r, p, &nq);
        if (nq == 0 || room == 0)
            continue;
        size_t max = room < RX_DELIVER_MAX ? room : RX_DELIVER_MAX;
        if (core_reserve(r->core, p->handle, qs, nq, r->now_ms, max, r->views, &n) != JOBQ_OK)
            continue;
        rx_sec_leased(r, p, n);
        if (n)
            returned += s_send_deliver(r, p, n);
    }
    return returned;
}

void
rx_deliver_all(reactor_t *r)
{
    rx_refresh_queues(r);
    rx_sec_count_leases(r);
    /* Jobs handed back by a failed send get one more round, so that another
     * worker takes them in this pass. */
    if (s_deliver_round(r))
        s_deliver_round(r);
}
