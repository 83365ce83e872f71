/*
 * producer/broker_client.c: the producer API over a jobq broker (tcp://, ipc://).
 *
 * Submits travel in batches (up to SUBMIT_BATCH jobs or SUBMIT_BYTES payload
 * bytes per frame) with up to SUBMIT_WINDOW frames in flight. Every job gets
 * its id here, before the first send, so a frame resent after a timeout or a
 * reconnection is idempotent: the broker answers EDUPLICATE for jobs it
 * already accepted, which counts as accepted for a resent frame. A job counts
 * as accepted only once its SUBMIT_OK arrived (RELIABILITY.md §0 item 11).
 * RESULTS pushed by the broker at any time go into a local store that wait()
 * and next_result() read.
 *
 * The broker pushes a result only to the connection that submitted the job.
 * After a reconnection (a broker restart, or the broker forgot us) the jobs
 * accepted earlier have no connection to push to: their results are kept for
 * WAIT. So the client remembers the ids of its accepted jobs whose result has
 * not arrived (`pending`), and after a reconnection next_result() polls them
 * with WAIT (timeout 0) every S_POLL_MS until each result arrived (the store
 * drops a result that arrives twice) or the broker says it knows none of them.
 */
#include "common/alloc.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/log.h"
#include "jobq/errors.h"
#include "producer/idset.h"
#include "producer/producer_impl.h"

#include <string.h>

#define SUBMIT_BATCH 1024
#define SUBMIT_BYTES (768u * 1024u)
#define SUBMIT_WINDOW 16
#define S_AGAIN (-1)  /* internal: join not reached yet, ask again */
#define S_POLL_MS 200 /* next_result's WAIT poll for results after a reconnection */
#define S_POLL_IDS 4096

typedef struct pbroker {
    conn_t *conn;
    int64_t connect_timeout_ms, retry_ms;
    pstore_t early;  /* results that arrived while no pump was running */
    idset_t pending; /* accepted jobs whose result has not arrived (unless no_results) */
    size_t poll_cursor;
    int64_t polled_ms; /* when s_poll_pending last asked */
    int track;         /* 1: fill pending (results are pushed to us) */
    int resync;        /* 1: reconnected since pending was last polled empty */
} pbroker_t;

typedef struct frame_slot {
    uint64_t req;
    size_t first, count;
    int64_t sent_ms;
    int resent;
    int done;
} frame_slot_t;

/* Reconnects until deadline. Returns JOBQ_OK or JOBQ_ETIMEDOUT. */
static int
s_reconnect(pbroker_t *pb, int64_t deadline)
{
    int64_t backoff = 50;
    for (;;) {
        int64_t left = jobq_remaining_ms(deadline);
        if (left == 0)
            return JOBQ_ETIMEDOUT;
        int64_t step = left < 0 || left > pb->connect_timeout_ms ? pb->connect_timeout_ms : left;
        int rc = conn_connect(pb->conn, step);
        pb->resync |= rc == JOBQ_OK;
        if (rc == JOBQ_OK || rc == JOBQ_EVERSION)
            return rc;
        struct timespec ts;
        jobq_ms_to_timespec(backoff, &ts);
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
}

/* Handles a message that is not the reply a caller waits for. */
static void
s_background(pbroker_t *pb, const wire_msg_t *m)
{
    if (m->type == WIRE_RESULTS)
        for (uint32_t i = 0; i < m->nresults; i++) {
            pstore_push(&pb->early, &m->results[i]);
            idset_del(&pb->pending, &m->results[i].id);
        }
}

static int
s_send_frame(pbroker_t *pb, jobq_job_t *jobs, frame_slot_t *f)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_SUBMIT);
    m.fields = WIRE_F_REQ | WIRE_F_JOBS;
    f->req = conn_next_req(pb->conn);
    m.req = f->req;
    m.jobs = jobs + f->first;
    m.njobs = (uint32_t)f->count;
    f->sent_ms = jobq_now_ms();
    int rc = conn_send(pb->conn, &m, pb->retry_ms);
    if (rc == JOBQ_EINVAL || rc == JOBQ_ETOOBIG)
        LOG_WARN("submit refused before sending: %s", m.error);
    return rc;
}

/* Splits jobs into frames by count and bytes. Returns the number of frames. */
static size_t
s_plan(jobq_job_t *jobs, size_t n, frame_slot_t **out)
{
    size_t cap = 16, nf = 0;
    frame_slot_t *f = jobq_calloc(cap, sizeof *f);
    for (size_t i = 0; i < n;) {
        size_t bytes = 0, k = 0;
        while (i + k < n && k < SUBMIT_BATCH &&
               (k == 0 || bytes + jobs[i + k].payload_len <= SUBMIT_BYTES))
            bytes += jobs[i + k++].payload_len;
        if (nf == cap)
            f = jobq_realloc(f, (cap *= 2) * sizeof *f);
        memset(&f[nf], 0, sizeof f[nf]);
        f[nf].first = i;
        f[nf++].count = k;
        i += k;
    }
    *out = f;
    return nf;
}

static void
s_apply_ok(pbroker_t *pb, jobq_job_t *jobs, int *codes, frame_slot_t *f, const wire_msg_t *m)
{
    for (size_t i = 0; i < f->count; i++) {
        int code = i < m->ncodes ? (int)m->codes[i] : JOBQ_EPROTO;
        if (i < m->nids)
            jobs[f->first + i].id = m->ids[i];
        if (code == JOBQ_EDUPLICATE && f->resent)
            code = JOBQ_OK; /* our own earlier send was accepted */
        codes[f->first + i] = code;
        if (code == JOBQ_OK && pb->track)
            idset_add(&pb->pending, &jobs[f->first + i].id);
    }
    f->done = 1;
}

static frame_slot_t *
s_find(frame_slot_t *f, size_t nf, uint64_t req)
{
    for (size_t i = 0; i < nf; i++)
        if (!f[i].done && f[i].req == req && f[i].req)
            return &f[i];
    return NULL;
}

/* Resends every unanswered frame that was sent (after a reconnection). */
static int
s_resend_all(pbroker_t *pb, jobq_job_t *jobs, frame_slot_t *f, size_t upto)
{
    for (size_t i = 0; i < upto; i++) {
        if (f[i].done)
            continue;
        f[i].resent = 1;
        int rc = s_send_frame(pb, jobs, &f[i]);
        if (rc != JOBQ_OK)
            return rc;
    }
    return JOBQ_OK;
}

static int
s_submit_batch(void *impl, jobq_job_t *jobs, size_t n, int *codes_in, int64_t timeout_ms)
{
    pbroker_t *pb = impl;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    int *codes = codes_in ? codes_in : jobq_calloc(n, sizeof *codes);
    frame_slot_t *f;
    for (size_t i = 0; i < n; i++)
        if (jobq_id_is_zero(&jobs[i].id))
            jobq_id_generate(&jobs[i].id);
    size_t nf = s_plan(jobs, n, &f), sent = 0, done = 0;
    int rc = JOBQ_OK;
    wire_msg_t m;
    wire_msg_init(&m, WIRE_OK);
    while (done < nf && rc == JOBQ_OK) {
        while (sent < nf && sent - done < SUBMIT_WINDOW && rc == JOBQ_OK)
            rc = s_send_frame(pb, jobs, &f[sent++]);
        if (rc == JOBQ_ECLOSED)
            goto reconnect;
        if (rc != JOBQ_OK)
            break;
        int64_t left = jobq_remaining_ms(deadline);
        if (left == 0) {
            rc = JOBQ_ETIMEDOUT;
            break;
        }
        rc = conn_recv(pb->conn, &m, left < 0 || left > pb->retry_ms ? pb->retry_ms : left);
        if (rc == JOBQ_OK) {
            frame_slot_t *slot = (m.fields & WIRE_F_REQ) ? s_find(f, sent, m.req) : NULL;
            if (slot && m.type == WIRE_SUBMIT_OK) {
                s_apply_ok(pb, jobs, codes, slot, &m);
                done++;
            } else if (m.type == WIRE_ERROR && m.code == JOBQ_ESTATE) {
                rc = JOBQ_ECLOSED; /* the broker does not know us (restarted): re-register */
            } else if (slot && m.type == WIRE_ERROR) {
                for (size_t i = 0; i < slot->count; i++)
                    codes[slot->first + i] = (int)m.code;
                slot->done = 1;
                done++;
            } else {
                s_background(pb, &m);
            }
        } else if (rc == JOBQ_ETIMEDOUT && jobq_remaining_ms(deadline) != 0) {
            rc = s_resend_all(pb, jobs, f, sent); /* no answer in retry_ms: ask again */
        } else if (rc == JOBQ_EPROTO) {
            rc = JOBQ_OK; /* an undecodable frame from the broker: skip it */
        }
        if (rc != JOBQ_ECLOSED)
            continue;
    reconnect:
        rc = s_reconnect(pb, deadline);
        if (rc == JOBQ_OK)
            rc = s_resend_all(pb, jobs, f, sent);
    }
    wire_msg_fini(&m);
    for (size_t i = 0; rc != JOBQ_OK && i < nf; i++)
        for (size_t k = 0; !f[i].done && k < f[i].count; k++)
            codes[f[i].first + k] = rc;
    int first = rc;
    for (size_t i = 0; first == JOBQ_OK && i < n; i++)
        first = codes[i];
    jobq_free(f);
    if (codes != codes_in)
        jobq_free(codes);
    return first;
}

/* Sends req_msg (its req is set here) and waits for the reply carrying the
 * same req; other messages are handled in the background. On JOBQ_OK, *reply
 * holds the reply (valid until the next receive on the connection). */
static int
s_call(pbroker_t *pb, wire_msg_t *req_msg, wire_msg_t *reply, int64_t deadline)
{
    int rc = JOBQ_ECLOSED;
    for (;;) {
        if (rc == JOBQ_ECLOSED) {
            if (!conn_is_connected(pb->conn) && (rc = s_reconnect(pb, deadline)) != JOBQ_OK)
                return rc;
            req_msg->fields |= WIRE_F_REQ;
            req_msg->req = conn_next_req(pb->conn);
            if ((rc = conn_send(pb->conn, req_msg, pb->retry_ms)) != JOBQ_OK)
                continue;
        }
        int64_t left = jobq_remaining_ms(deadline);
        /* The broker answers WAIT and JOIN at their deadline: allow it a
         * little longer than the deadline before giving up. */
        rc = conn_recv(pb->conn, reply, left < 0 ? -1 : left + pb->retry_ms);
        if (rc == JOBQ_ECLOSED || rc == JOBQ_EPROTO)
            continue; /* reconnect and resend, or skip an undecodable frame */
        if (rc != JOBQ_OK)
            return rc;
        if ((reply->fields & WIRE_F_REQ) && reply->req == req_msg->req)
            return JOBQ_OK;
        if (reply->type == WIRE_ERROR && reply->code == JOBQ_ESTATE) {
            pb->resync |= conn_connect(pb->conn, pb->connect_timeout_ms) == JOBQ_OK;
            rc = JOBQ_ECLOSED;
            continue;
        }
        s_background(pb, reply);
    }
}

/* Moves the results that arrived in the background into st. Returns 1 if
 * one of them is for id (any, when id is NULL). */
static int
s_move_early(pbroker_t *pb, pstore_t *st, const jobq_id_t *id)
{
    jobq_result_t r;
    int moved = 0;
    while (pstore_take(&pb->early, NULL, &r)) {
        pstore_push(st, &r);
        moved |= !id || memcmp(&r.id, id, sizeof *id) == 0;
    }
    return moved;
}

/* After a reconnection: asks the broker (WAIT, timeout 0) for the results of
 * up to S_POLL_IDS pending jobs; what it has arrives through s_background.
 * Ends the polling when nothing is pending or the broker knows none of them. */
static void
s_poll_pending(pbroker_t *pb)
{
    if (!pb->pending.count) {
        pb->resync = 0;
        return;
    }
    jobq_id_t *ids = jobq_malloc(S_POLL_IDS * sizeof *ids);
    size_t n = idset_some(&pb->pending, &pb->poll_cursor, ids, S_POLL_IDS);
    wire_msg_t m, reply;
    wire_msg_init(&m, WIRE_WAIT);
    wire_msg_init(&reply, WIRE_OK);
    m.fields = WIRE_F_IDS | WIRE_F_TIMEOUT;
    m.ids = ids;
    m.nids = (uint32_t)n;
    m.timeout_ms = 0;
    int rc = s_call(pb, &m, &reply, jobq_deadline_ms(pb->connect_timeout_ms));
    if (rc == JOBQ_OK && reply.type == WIRE_ERROR && reply.code == JOBQ_ENOTFOUND)
        for (size_t i = 0; i < n; i++) /* forgotten (a broker without a journal) */
            idset_del(&pb->pending, &ids[i]);
    else if (rc == JOBQ_OK)
        s_background(pb, &reply);
    wire_msg_fini(&reply);
    jobq_free(ids);
    if (!pb->pending.count)
        pb->resync = 0;
}

static int
s_pump(void *impl, pstore_t *st, const jobq_id_t *id, int64_t deadline_ms)
{
    pbroker_t *pb = impl;
    if (s_move_early(pb, st, id))
        return JOBQ_OK;
    wire_msg_t m, reply;
    wire_msg_init(&reply, WIRE_OK);
    if (id) {
        /* Ask for it: the broker answers at once if it has it, else when it
         * arrives or the timeout passes. */
        int64_t left = jobq_remaining_ms(deadline_ms);
        wire_msg_init(&m, WIRE_WAIT);
        m.fields = WIRE_F_IDS | WIRE_F_TIMEOUT;
        m.ids = (jobq_id_t *)id;
        m.nids = 1;
        m.timeout_ms = left < 0 ? 24 * 3600 * 1000 : (uint64_t)left;
        int rc = s_call(pb, &m, &reply, deadline_ms);
        if (rc == JOBQ_OK && reply.type == WIRE_ERROR)
            rc = (int)reply.code;
        if (rc == JOBQ_OK)
            s_background(pb, &reply);
        wire_msg_fini(&reply);
        /* The result may have been pushed while the WAIT was on its way (the
         * broker then answers with what it still knows): look there too. */
        if (s_move_early(pb, st, id))
            return JOBQ_OK;
        if (rc != JOBQ_OK)
            return rc;
        return s_pump(impl, st, NULL, jobq_now_ms()) == JOBQ_OK ? JOBQ_OK : JOBQ_ETIMEDOUT;
    }
    for (;;) {
        int polling = pb->resync && pb->pending.count;
        if (polling && jobq_now_ms() - pb->polled_ms >= S_POLL_MS) {
            pb->polled_ms = jobq_now_ms();
            s_poll_pending(pb);
            if (s_move_early(pb, st, NULL))
                return JOBQ_OK;
        }
        int64_t left = jobq_remaining_ms(deadline_ms);
        int64_t step = polling && (left < 0 || left > S_POLL_MS) ? S_POLL_MS : left;
        int rc = conn_recv(pb->conn, &reply, step);
        if (rc == JOBQ_ETIMEDOUT && step != left)
            continue; /* poll again */
        if (rc == JOBQ_ECLOSED) {
            rc = s_reconnect(pb, deadline_ms);
            if (rc != JOBQ_OK)
                return rc;
            continue;
        }
        if (rc == JOBQ_EPROTO)
            continue;
        if (rc != JOBQ_OK)
            return rc;
        s_background(pb, &reply);
        if (reply.type == WIRE_RESULTS && reply.nresults) {
            wire_msg_fini(&reply);
            return s_pump(impl, st, NULL, jobq_now_ms());
        }
    }
}

static int
s_join(void *impl, const char *queue, int64_t timeout_ms)
{
    pbroker_t *pb = impl;
    wire_msg_t m, reply;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    if (!queue)
        queue = "default";
    wire_msg_init(&m, WIRE_JOIN);
    wire_msg_init(&reply, WIRE_OK);
    m.fields = WIRE_F_QUEUE | WIRE_F_TIMEOUT;
    m.queue.ptr = queue;
    m.queue.len = (uint32_t)strnlen(queue, JOBQ_QUEUE_NAME_MAX + 1);
    m.timeout_ms = timeout_ms < 0 ? 24 * 3600 * 1000 : (uint64_t)timeout_ms;
    int rc;
    do {
        rc = s_call(pb, &m, &reply, deadline);
        if (rc != JOBQ_OK)
            break;
        if (reply.type == WIRE_ERROR)
            rc = (int)reply.code;
        else if (reply.type == WIRE_JOIN_OK && (reply.fields & WIRE_F_COUNT) && reply.count)
            rc = jobq_remaining_ms(deadline) == 0 ? JOBQ_ETIMEDOUT : S_AGAIN;
    } while (rc == S_AGAIN);
    wire_msg_fini(&reply);
    return rc;
}

static int
s_stop_workers(void *impl, const char *queue, unsigned n)
{
    pbroker_t *pb = impl;
    wire_msg_t m, reply;
    (void)n;
    wire_msg_init(&m, WIRE_STOP_WORKERS);
    wire_msg_init(&reply, WIRE_OK);
    if (queue) {
        m.fields = WIRE_F_QUEUE;
        m.queue.ptr = queue;
        m.queue.len = (uint32_t)strnlen(queue, JOBQ_QUEUE_NAME_MAX + 1);
    }
    int rc = s_call(pb, &m, &reply, jobq_deadline_ms(pb->connect_timeout_ms));
    if (rc == JOBQ_OK && reply.type == WIRE_ERROR)
        rc = (int)reply.code;
    wire_msg_fini(&reply);
    return rc;
}

static void
s_destroy(void *impl)
{
    pbroker_t *pb = impl;
    conn_destroy(&pb->conn);
    pstore_fini(&pb->early);
    idset_fini(&pb->pending);
    jobq_free(pb);
}

static const producer_ops_t s_ops = {s_submit_batch, s_pump, s_join, s_stop_workers, s_destroy};

int
producer_broker_open(const jobq_url_t *url, const jobq_producer_opts_t *opts,
                     const producer_ops_t **ops, void **impl)
{
    pbroker_t *pb = jobq_calloc(1, sizeof *pb);
    pb->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    pb->retry_ms = opts->retry_timeout_ms > 0 ? opts->retry_timeout_ms : 2500;
    pb->conn = conn_new(url->endpoint, WIRE_ROLE_PRODUCER, "producer", 0);
    if (opts->curve_key || opts->curve_server)
        conn_set_curve(pb->conn, opts->curve_key, opts->curve_server);
    if (opts->no_results)
        conn_set_hello_flags(pb->conn, 1u); /* HELLO flags bit 0: no push */
    pb->track = !opts->no_results;
    int rc = conn_connect(pb->conn, pb->connect_timeout_ms);
    if (rc != JOBQ_OK) {
        s_destroy(pb);
        return rc;
    }
    *ops = &s_ops;
    *impl = pb;
    return JOBQ_OK;
}
