/*
 * worker/networker.c: the worker loop over a jobq broker (see networker.h for
 * the protocol it speaks and docs/PROTOCOL.md sections 9-11 for the rules):
 * the connection thread's side (set-up, the protocol loop, held leases and
 * their renewal, sending results, stopping, the hard time limit's stop).
 * The mailbox and the handler thread are in networker_box.c, the types
 * both files share in networker_int.h.
 *
 * Threads and ownership:
 *   - the connection thread (the caller of networker_run) owns the conn, the
 *     held-lease table, the unsent results and the release list;
 *   - the handler thread owns its output buffer and the job it runs;
 *   - the mailbox (networker_box_t, under its mutex) holds the jobs delivered and not
 *     started (a FIFO ring), the job running now, and the results finished and
 *     not yet taken. Each DELIVER frame is copied once into a batch that its
 *     jobs point into; the batch is freed when its last job is finished or
 *     dropped (its count is guarded by the mutex).
 *
 * Invariants:
 *   1. Every job delivered is either run (one result, sent when connected) or
 *      handed back: dropped when the connection is lost (the broker already
 *      took it back), or listed in the final DISCONNECT when stopping.
 *   2. The handler thread signals the eventfd only when the mailbox's results
 *      go from "taken" to "pending" (woken flag), so a burst of short jobs
 *      costs one wake-up, not one per job.
 *   3. The connection thread never blocks longer than poll_ms or half a
 *      heartbeat interval, so heartbeats, lease renewals and a stop request
 *      are served on time whatever the handler does.
 *   4. With on_hard, an attempt past its hard limit gets exactly one result:
 *      the connection thread marks it abandoned under the mutex and sends
 *      TIMEDOUT; the handler thread drops whatever it finishes afterwards.
 */
#include "worker/networker_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/queue_impl.h"
#include "jobq/errors.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zmq.h>

#define S_POLL_MS 100
#define S_BACKOFF_MIN_MS 100u
#define S_BACKOFF_MAX_MS 5000u
#define S_CONNECT_MS 1000             /* one HELLO/WELCOME attempt (a stop waits at most this) */
#define S_ACK_WAIT_MS 2000            /* stopping: longest wait for RESULT_OKs */
#define S_OVERRUN_GRACE_MS 2000       /* a handler past its limit this long loses its lease */
#define S_RESULT_BYTES (768u * 1024u) /* output bytes per RESULT frame (one result may exceed) */
#define S_LINGER_MS 1000              /* flushing REPORT and DISCONNECT at the end */
#define S_DRAIN_MAX 256               /* messages taken from the socket per pass */
#define S_REQ_RESULT 0u               /* low bit of our req numbers: what a RESULT_OK answers */
#define S_REQ_EXTEND 1u

static int
s_stop_level(const networker_t *nw)
{
    const atomic_int *s = nw->cfg->stop;
    return s ? atomic_load_explicit(s, memory_order_relaxed) : 0;
}

/* ---- held leases (connection thread) -------------------------------------- */

static void
s_held_add(networker_t *nw, const jobq_job_t *job, int64_t now)
{
    if (nw->nheld == nw->held_cap) {
        nw->held_cap = nw->held_cap ? nw->held_cap * 2 : 64;
        nw->held = jobq_realloc(nw->held, nw->held_cap * sizeof *nw->held);
    }
    uint32_t step = job->ttr_ms / 3 ? job->ttr_ms / 3 : 1;
    networker_lease_t *l = &nw->held[nw->nheld++];
    *l = (networker_lease_t){job->id, job->attempt, job->ttr_ms, now + step};
    if (l->renew_ms < nw->next_renew_ms)
        nw->next_renew_ms = l->renew_ms;
}

/* Marks the leases of results[0..n) as gone, then compacts the table.
 * Results come back in delivery order, so each search is short. */
static void
s_held_remove(networker_t *nw, const jobq_result_t *results, size_t n)
{
    size_t from = 0; /* every lease before it is removed */
    for (size_t k = 0; k < n; k++) {
        for (size_t i = from; i < nw->nheld; i++) {
            networker_lease_t *l = &nw->held[i];
            if (l->attempt == results[k].attempt && !memcmp(&l->id, &results[k].id, sizeof l->id)) {
                l->attempt = 0;
                break;
            }
        }
        while (from < nw->nheld && nw->held[from].attempt == 0)
            from++;
    }
    size_t w = 0;
    for (size_t i = 0; i < nw->nheld; i++)
        if (nw->held[i].attempt)
            nw->held[w++] = nw->held[i];
    nw->nheld = w;
}

static void
s_rel_add(networker_t *nw, const jobq_id_t *id, uint32_t attempt)
{
    if (nw->nrel == nw->rel_cap) {
        nw->rel_cap = nw->rel_cap ? nw->rel_cap * 2 : 64;
        nw->rel = jobq_realloc(nw->rel, nw->rel_cap * sizeof *nw->rel);
    }
    nw->rel[nw->nrel++] = (wire_lease_t){*id, attempt};
}

/* Takes every job not started out of the mailbox: into the release list when
 * rel is set (stopping), else just dropped (the connection was lost). */
static void
s_take_unstarted(networker_t *nw, int rel)
{
    networker_box_t *b = &nw->box;
    pthread_mutex_lock(&b->mu);
    while (b->count) {
        networker_job_t *j = networker_ring_pop_(b);
        if (rel)
            s_rel_add(nw, &j->job.id, j->job.attempt);
        networker_batch_unref_(j->batch);
    }
    pthread_mutex_unlock(&b->mu);
}

/* ---- sending ----------------------------------------------------------- */

static uint64_t
s_req(networker_t *nw, unsigned kind)
{
    return (++nw->req_seq << 1) | kind;
}

static int
s_send_ready(networker_t *nw, uint32_t credit)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_READY);
    m.fields = WIRE_F_CREDIT;
    m.credit = credit;
    if (credit) { /* an empty list means every queue */
        m.fields |= WIRE_F_QUEUES;
        m.queues = nw->queues;
        m.nqueues = nw->cfg->nqueues;
    }
    return conn_send(nw->conn, &m, S_CONNECT_MS);
}

/* Fills nw->rbuf with up to max unsent results (by count and bytes). */
static size_t
s_fill_chunk(networker_t *nw, size_t max)
{
    size_t n = 0, bytes = 0;
    for (networker_res_t *r = nw->unsent_head; r && n < max; r = r->next) {
        size_t len = (size_t)r->res.output_len + r->res.error_len;
        if (n && bytes + len > S_RESULT_BYTES)
            break;
        bytes += len;
        nw->rbuf[n++] = r->res;
    }
    return n;
}

static void
s_pop_unsent(networker_t *nw, size_t n)
{
    while (n-- && nw->unsent_head) {
        networker_res_t *r = nw->unsent_head;
        nw->unsent_head = r->next;
        jobq_free(r);
    }
    if (!nw->unsent_head)
        nw->unsent_tail = NULL;
}

/* A result the encoder refuses (it should not happen: handlers bound their
 * output) is sent as a bare failure; if even that fails it is dropped. */
static void
s_unencodable(networker_t *nw, const char *why)
{
    static const char text[] = "worker: the result could not be encoded";
    networker_res_t *r = nw->unsent_head;
    LOG_WARN("cannot send a result: %s", why);
    if (r->res.error == text) {
        s_pop_unsent(nw, 1);
        return;
    }
    r->res.status = JOBQ_STATUS_FAILED;
    r->res.output = NULL;
    r->res.output_len = 0;
    r->res.error = text;
    r->res.error_len = sizeof text - 1;
}

/* Sends the unsent results in RESULT frames while the socket takes them. */
static void
s_send_results(networker_t *nw)
{
    size_t max = WIRE_MAX_BATCH;
    while (nw->unsent_head && conn_is_connected(nw->conn)) {
        size_t n = s_fill_chunk(nw, max);
        wire_msg_t m;
        wire_msg_init(&m, WIRE_RESULT);
        m.fields = WIRE_F_REQ | WIRE_F_RESULTS;
        m.req = s_req(nw, S_REQ_RESULT);
        m.results = nw->rbuf;
        m.nresults = (uint32_t)n;
        int rc = conn_send(nw->conn, &m, 0);
        if (rc == JOBQ_EINVAL || rc == JOBQ_ETOOBIG) {
            if (n == 1)
                s_unencodable(nw, m.error);
            max = 1; /* find the one at fault */
            continue;
        }
        if (rc != JOBQ_OK)
            return; /* the socket is full or gone: later */
        s_held_remove(nw, nw->rbuf, n);
        s_pop_unsent(nw, n);
        nw->unacked++;
    }
}

/* Renews the leases due: each to now + its own ttr (EXTEND timeout 0). */
static void
s_renew(networker_t *nw, int64_t now)
{
    if (now < nw->next_renew_ms || !conn_is_connected(nw->conn))
        return;
    networker_box_t *b = &nw->box;
    pthread_mutex_lock(&b->mu);
    jobq_id_t run_id = b->running ? b->running->job.id : (jobq_id_t){{0}};
    int overrun = b->running && b->running_limit_ms &&
                  now > b->running_since_ms + b->running_limit_ms + S_OVERRUN_GRACE_MS;
    pthread_mutex_unlock(&b->mu);
    size_t n = 0;
    nw->next_renew_ms = INT64_MAX;
    for (size_t i = 0; i < nw->nheld; i++) {
        networker_lease_t *l = &nw->held[i];
        if (overrun && !memcmp(&l->id, &run_id, sizeof run_id))
            continue; /* let it lapse */
        if (l->renew_ms <= now && n < WIRE_MAX_BATCH) {
            nw->xbuf[n++] = (wire_lease_t){l->id, l->attempt};
            l->renew_ms = now + (l->ttr_ms / 3 ? l->ttr_ms / 3 : 1);
        }
        if (l->renew_ms < nw->next_renew_ms)
            nw->next_renew_ms = l->renew_ms;
    }
    if (!n)
        return;
    wire_msg_t m;
    wire_msg_init(&m, WIRE_EXTEND);
    m.fields = WIRE_F_REQ | WIRE_F_LEASES | WIRE_F_TIMEOUT;
    m.req = s_req(nw, S_REQ_EXTEND);
    m.leases = nw->xbuf;
    m.nleases = (uint32_t)n;
    m.timeout_ms = 0; /* the job's own ttr */
    if (conn_send(nw->conn, &m, 0) != JOBQ_OK)
        LOG_DEBUG("EXTEND not sent; retried later");
}

/* ---- receiving --------------------------------------------------------- */

static const void *
s_rebase(const void *p, const char *from, size_t len, char *to)
{
    if (!p)
        return NULL;
    size_t off = (size_t)((const char *)p - from);
    JOBQ_ASSERT((const char *)p >= from && off <= len); /* the decoder's slices lie in the frame */
    return to + off;
}

static void
s_on_deliver(networker_t *nw, const wire_msg_t *m)
{
    if (nw->stopping) { /* delivered before our stop reached the broker: hand back */
        for (uint32_t i = 0; i < m->njobs; i++)
            s_rel_add(nw, &m->jobs[i].id, m->jobs[i].attempt);
        return;
    }
    size_t flen;
    const char *frame = conn_frame(nw->conn, &flen);
    if (!m->njobs || !frame)
        return;
    networker_batch_t *bt = jobq_malloc(sizeof *bt + m->njobs * sizeof(networker_job_t) + flen);
    char *copy = (char *)&bt->jobs[m->njobs];
    memcpy(copy, frame, flen);
    bt->left = bt->n = m->njobs;
    int64_t now = jobq_now_ms();
    for (uint32_t i = 0; i < m->njobs; i++) {
        jobq_job_t *job = &bt->jobs[i].job;
        *job = m->jobs[i];
        job->queue = s_rebase(job->queue, frame, flen, copy);
        job->payload = s_rebase(job->payload, frame, flen, copy);
        job->unique = s_rebase(job->unique, frame, flen, copy);
        bt->jobs[i].batch = bt;
        s_held_add(nw, job, now);
    }
    networker_box_t *b = &nw->box;
    pthread_mutex_lock(&b->mu);
    for (uint32_t i = 0; i < m->njobs; i++)
        networker_ring_push_(b, &bt->jobs[i]);
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void
s_on_result_ok(networker_t *nw, const wire_msg_t *m)
{
    if (!(m->fields & WIRE_F_REQ) || (m->req & 1u) == S_REQ_EXTEND) {
        for (uint32_t i = 0; i < m->ncodes; i++)
            if (m->codes[i] != JOBQ_OK)
                LOG_DEBUG("lease not renewed: %s", jobq_errname((int)m->codes[i]));
        return;
    }
    if (nw->unacked)
        nw->unacked--;
    for (uint32_t i = 0; i < m->ncodes; i++) {
        int code = (int)m->codes[i];
        if (code == JOBQ_OK)
            continue;
        if (code == JOBQ_ESTALE || code == JOBQ_EFORBIDDEN || code == JOBQ_ENOTFOUND) {
            LOG_INFO("a result was refused (%s): its lease was lost", jobq_errname(code));
            if (nw->cfg->counters)
                networker_add_(&nw->cfg->counters->stale, 1);
        } else {
            LOG_WARN("the broker refused a result: %s", jobq_errname(code));
        }
    }
}

static void s_begin_stop(networker_t *nw, worker_end why);

static void
s_on_message(networker_t *nw, const wire_msg_t *m)
{
    switch (m->type) {
    case WIRE_DELIVER:
        s_on_deliver(nw, m);
        break;
    case WIRE_RESULT_OK:
        s_on_result_ok(nw, m);
        break;
    case WIRE_STATS_REPLY:
        nw->barrier = 0; /* s_send_barrier */
        break;
    case WIRE_SENTINEL:
        LOG_INFO("sentinel: finishing the current job, then ending");
        s_begin_stop(nw, WORKER_END_SENTINEL);
        break;
    case WIRE_ERROR:
        LOG_NOTICE("broker error %s: %.*s", jobq_errname((int)m->code), (int)m->msg.len,
                   m->msg.ptr ? m->msg.ptr : "");
        if (m->code == JOBQ_EVERSION)
            nw->fatal = 1;
        break;
    default:
        LOG_DEBUG("ignoring %s from the broker", wire_type_name(m->type));
        break;
    }
}

/* ---- connection state ---------------------------------------------------- */

static void
s_schedule_connect(networker_t *nw)
{
    nw->next_connect_ms = jobq_now_ms() + nw->backoff_ms;
    nw->backoff_ms = nw->backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : nw->backoff_ms * 2;
}

/* The broker forgot us (or we gave up on it): its leases are void. */
static void
s_on_lost(networker_t *nw)
{
    LOG_NOTICE("lost the broker %s: reconnecting", nw->cfg->endpoint);
    s_take_unstarted(nw, 0);
    nw->nheld = 0;
    nw->next_renew_ms = INT64_MAX;
    nw->nrel = 0;
    nw->unacked = 0;
    nw->barrier = 0;
    s_schedule_connect(nw);
}

static void
s_connect(networker_t *nw)
{
    int rc = conn_connect(nw->conn, S_CONNECT_MS);
    if (rc == JOBQ_OK)
        rc = s_send_ready(nw, nw->prefetch);
    if (rc == JOBQ_OK) {
        LOG_INFO("connected to %s (heartbeat %u ms)", nw->cfg->endpoint, conn_hb_ms(nw->conn));
        nw->backoff_ms = S_BACKOFF_MIN_MS;
        s_send_results(nw); /* finished while we were away: may be stale */
        return;
    }
    if (rc == JOBQ_EVERSION) {
        LOG_ERR("broker %s speaks another protocol version", nw->cfg->endpoint);
        nw->fatal = 1;
        return;
    }
    if (rc == JOBQ_EFORBIDDEN || rc == JOBQ_ECORRUPT || rc == JOBQ_ENOTFOUND ||
        rc == JOBQ_EINVAL) { /* the CURVE key files (reason logged by conn): retrying won't help */
        LOG_ERR("cannot use the CURVE key files for %s: %s", nw->cfg->endpoint, jobq_strerror(rc));
        nw->fatal = 1;
        return;
    }
    LOG_DEBUG("connect to %s: %s", nw->cfg->endpoint, jobq_errname(rc));
    s_schedule_connect(nw);
}

/* Sends STATS right after READY 0: the broker answers in order, so once its
 * STATS_REPLY is in, every DELIVER it sent before it saw READY 0 has arrived
 * (and gone to the release list), and DISCONNECT can list them all; without
 * it a refill sent as our last result was accepted would count as a crashed
 * attempt. */
static void
s_send_barrier(networker_t *nw)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_STATS);
    m.fields = WIRE_F_REQ;
    m.req = s_req(nw, S_REQ_EXTEND);
    nw->barrier = conn_send(nw->conn, &m, S_CONNECT_MS) == JOBQ_OK;
}

static void
s_begin_stop(networker_t *nw, worker_end why)
{
    if (nw->stopping)
        return;
    nw->stopping = why;
    if ((why == WORKER_END_STOPPED || why == WORKER_END_RECYCLE) && conn_is_connected(nw->conn) &&
        s_send_ready(nw, 0) == JOBQ_OK) /* no more deliveries */
        s_send_barrier(nw);
    s_take_unstarted(nw, 1);
}

/* Takes up to S_DRAIN_MAX messages from the socket (heartbeats and liveness
 * are handled by conn_recv). */
static void
s_drain_socket(networker_t *nw)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_OK);
    for (int k = 0; k < S_DRAIN_MAX && conn_is_connected(nw->conn); k++) {
        int rc = conn_recv(nw->conn, &m, 0);
        if (rc == JOBQ_ETIMEDOUT)
            break;
        if (rc == JOBQ_ECLOSED) {
            s_on_lost(nw);
            break;
        }
        if (rc == JOBQ_OK)
            s_on_message(nw, &m);
        else
            LOG_WARN("undecodable frame from the broker: %s", m.error);
    }
    wire_msg_fini(&m);
}

/* ---- the end ------------------------------------------------------------- */

static const char *
s_end_name(worker_end end)
{
    return end == WORKER_END_SENTINEL  ? "sentinel"
           : end == WORKER_END_STOPPED ? "stopped"
           : end == WORKER_END_RECYCLE ? "recycled"
                                       : "error";
}

/* Sends REPORT {data: the final report as JSON}. */
static void
s_send_report(networker_t *nw)
{
    worker_counters_t zero, *c = nw->cfg->counters;
    worker_report_t r;
    char json[512];
    if (!c) {
        memset(&zero, 0, sizeof zero);
        c = &zero;
    }
    worker_report_fill(&r, c, nw->stopping);
    int len = snprintf(json, sizeof json,
                       "{\"pid\":%d,\"end\":\"%s\",\"done\":%llu,\"failed\":%llu,"
                       "\"crashed\":%llu,\"stale\":%llu,\"busy_us\":%llu,\"max_rss_kb\":%llu}",
                       (int)r.pid, s_end_name(nw->stopping), (unsigned long long)r.done,
                       (unsigned long long)r.failed, (unsigned long long)r.crashed,
                       (unsigned long long)r.stale, (unsigned long long)r.busy_us,
                       (unsigned long long)r.max_rss_kb);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_REPORT);
    m.fields = WIRE_F_DATA;
    size_t dlen = len < 0 ? 0 : (size_t)len >= sizeof json ? sizeof json - 1 : (size_t)len;
    m.data = (wire_str_t){json, (uint32_t)dlen};
    conn_send(nw->conn, &m, S_CONNECT_MS);
}

/* Stopping: returns 1 once the running job's result went out and was
 * acknowledged (bounded), after sending REPORT and DISCONNECT. */
static int
s_try_finish(networker_t *nw)
{
    networker_box_t *b = &nw->box;
    pthread_mutex_lock(&b->mu);
    int idle = !b->count && !b->running && !b->out_head;
    pthread_mutex_unlock(&b->mu);
    if (!idle)
        return 0;
    if (!conn_is_connected(nw->conn))
        return 1; /* nobody to tell */
    if (nw->unsent_head)
        return 0;
    if ((nw->unacked || nw->barrier) && s_stop_level(nw) < 2) {
        int64_t now = jobq_now_ms();
        if (!nw->ack_deadline_ms)
            nw->ack_deadline_ms = now + S_ACK_WAIT_MS;
        if (now < nw->ack_deadline_ms)
            return 0;
    }
    s_send_report(nw);
    conn_disconnect(nw->conn, nw->rel, (uint32_t)nw->nrel, S_LINGER_MS);
    return 1;
}

/* Waits for the socket, the eventfd or the next deadline, then serves them. */
static void
s_wait(networker_t *nw)
{
    int64_t now = jobq_now_ms();
    int64_t timeout = nw->poll_ms;
    int up = conn_is_connected(nw->conn);
    if (up) {
        int64_t half = conn_hb_ms(nw->conn) / 2;
        if (half < timeout)
            timeout = half > 0 ? half : 1;
        if (nw->next_renew_ms - now < timeout)
            timeout = nw->next_renew_ms - now;
    } else if (!nw->stopping && nw->next_connect_ms - now < timeout) {
        timeout = nw->next_connect_ms - now;
    }
    if (nw->unsent_head && up && timeout > 10)
        timeout = 10; /* the socket was full */
    if (nw->hard_due_ms - now < timeout)
        timeout = nw->hard_due_ms - now;
    zmq_pollitem_t items[2] = {{NULL, nw->box.efd, ZMQ_POLLIN, 0},
                               {conn_socket(nw->conn), 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, up ? 2 : 1, timeout < 0 ? 0 : (long)timeout) < 0 && zmq_errno() != EINTR)
        LOG_WARN("zmq_poll: %s", zmq_strerror(zmq_errno()));
    if (items[0].revents || nw->unsent_head) {
        networker_take_results_(nw);
        s_send_results(nw);
    }
    if (conn_is_connected(nw->conn))
        s_drain_socket(nw);
    if (conn_is_connected(nw->conn))
        s_renew(nw, jobq_now_ms());
}

/* ---- set-up and the loop ------------------------------------------------- */

/* Cold stop of a forked worker (networker_cfg_t.on_cold): hand everything
 * back at once and leave the running handler to die with the process. */
static void
s_cold_stop(networker_t *nw)
{
    s_begin_stop(nw, WORKER_END_STOPPED); /* unstarted jobs to the release list */
    if (conn_is_connected(nw->conn)) {
        networker_take_results_(nw);
        s_send_results(nw);
        s_send_report(nw);
        conn_disconnect(nw->conn, nw->rel, (uint32_t)nw->nrel, S_LINGER_MS);
    }
    nw->cfg->on_cold(nw->cfg->on_cold_arg);
}

/* on_hard: reports the overrun attempt TIMEDOUT, hands the unstarted jobs
 * back, says goodbye and calls on_hard (which does not return). The pool's
 * SIGKILL is pushed back meanwhile, not removed: it stays the backstop. */
static _Noreturn void
s_hard_stop(networker_t *nw, const jobq_result_t *res)
{
    worker_counters_t *c = nw->cfg->counters;
    LOG_NOTICE("%.*s: reporting the job timed out and ending this worker", (int)res->error_len,
               res->error);
    if (c) {
        atomic_store(&c->hard_deadline_ms, jobq_now_ms() + S_CONNECT_MS + S_LINGER_MS + 1000);
        networker_add_(&c->failed, 1);
        networker_add_(&c->busy_us, res->duration_us);
    }
    s_begin_stop(nw, WORKER_END_STOPPED); /* unstarted jobs to the release list */
    networker_take_results_(nw);          /* finished before it: sent first */
    networker_res_t *r = networker_res_copy_(res);
    if (nw->unsent_tail)
        nw->unsent_tail->next = r;
    else
        nw->unsent_head = r;
    nw->unsent_tail = r;
    if (conn_is_connected(nw->conn)) {
        s_send_results(nw);
        s_send_report(nw);
        conn_disconnect(nw->conn, nw->rel, (uint32_t)nw->nrel, S_LINGER_MS);
    }
    conn_destroy(&nw->conn); /* flushes RESULT, REPORT, DISCONNECT (linger): _exit would not */
    nw->cfg->on_hard(nw->cfg->on_hard_arg);
    abort(); /* on_hard must not return */
}

static int
s_init(networker_t *nw, const networker_cfg_t *cfg)
{
    char name[64];
    memset(nw, 0, sizeof *nw);
    nw->cfg = cfg;
    nw->prefetch = cfg->prefetch ? cfg->prefetch : NETWORKER_PREFETCH_DEFAULT;
    nw->poll_ms = cfg->poll_ms ? cfg->poll_ms : S_POLL_MS;
    nw->backoff_ms = S_BACKOFF_MIN_MS;
    nw->next_renew_ms = INT64_MAX;
    nw->hard_due_ms = INT64_MAX;
    nw->queues = jobq_calloc(cfg->nqueues + 1, sizeof *nw->queues);
    for (uint32_t i = 0; i < cfg->nqueues; i++)
        nw->queues[i] = (wire_str_t){cfg->queues[i], (uint32_t)strlen(cfg->queues[i])};
    nw->rbuf = jobq_malloc(WIRE_MAX_BATCH * sizeof *nw->rbuf);
    nw->xbuf = jobq_malloc(WIRE_MAX_BATCH * sizeof *nw->xbuf);
    snprintf(name, sizeof name, "worker-%d", (int)getpid());
    nw->conn = conn_new(cfg->endpoint, WIRE_ROLE_WORKER, cfg->name ? cfg->name : name, cfg->hb_ms);
    if (cfg->curve_key || cfg->curve_server)
        conn_set_curve(nw->conn, cfg->curve_key, cfg->curve_server);
    networker_box_t *b = &nw->box;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->efd < 0)
        return -1;
    if (pthread_create(&nw->thread, NULL, networker_handler_main_, nw) != 0) {
        close(b->efd);
        b->efd = -1;
        return -1;
    }
    return 0;
}

static void
s_fini(networker_t *nw, int started)
{
    networker_box_t *b = &nw->box;
    if (started) {
        s_take_unstarted(nw, 0);
        pthread_mutex_lock(&b->mu);
        b->quit = 1;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(nw->thread, NULL); /* a running handler cannot be interrupted */
        close(b->efd);
    }
    networker_take_results_(nw);
    s_pop_unsent(nw, SIZE_MAX);
    conn_destroy(&nw->conn);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    jobq_free(b->ring);
    jobq_free(nw->held);
    jobq_free(nw->rel);
    jobq_free(nw->rbuf);
    jobq_free(nw->xbuf);
    jobq_free(nw->queues);
}

worker_end
networker_run(const networker_cfg_t *cfg)
{
    JOBQ_ASSERT(cfg && cfg->endpoint && cfg->handler);
    networker_t nw;
    if (s_init(&nw, cfg) != 0) {
        LOG_ERR("cannot start the handler thread: %s", strerror(errno));
        s_fini(&nw, 0);
        return WORKER_END_ERROR;
    }
    worker_end end;
    for (;;) {
        if (!nw.stopping && s_stop_level(&nw) >= 1)
            s_begin_stop(&nw, WORKER_END_STOPPED);
        if (!nw.stopping && networker_recycling_(&nw))
            s_begin_stop(&nw, WORKER_END_RECYCLE);
        if (cfg->on_cold && s_stop_level(&nw) >= 2)
            s_cold_stop(&nw);
        jobq_result_t hres;
        char htext[160];
        if (cfg->on_hard && networker_hard_due_(&nw, &hres, htext, sizeof htext))
            s_hard_stop(&nw, &hres);
        if (!nw.stopping && !conn_is_connected(nw.conn) && jobq_now_ms() >= nw.next_connect_ms)
            s_connect(&nw);
        if (nw.fatal) {
            end = WORKER_END_ERROR;
            break;
        }
        if (nw.stopping && s_try_finish(&nw)) {
            end = nw.stopping;
            break;
        }
        s_wait(&nw);
    }
    s_fini(&nw, 1);
    return end;
}
