/*
 * broker/reactor_journal.c: the reactor's side of the journal (broker/
 * journal.h). With a journal, a SUBMIT is admitted (disk room), applied to the
 * core, its records written at once (a write that fails takes the jobs back
 * out of the core and refuses them), and its SUBMIT_OK is held until the end
 * of the pass, when rx_journal_commit writes and syncs per the policy (one
 * fdatasync for every submit of the pass with `always`) and only then sends
 * the held replies. A failed sync fail-stops the journal: the held replies
 * become ERROR JOBQ_EIO and every later submit is refused.
 *
 * Invariant: no SUBMIT_OK that carries an accepted job leaves the broker
 * before journal_commit returned JOBQ_OK for the records of that job.
 */
#include "broker/journal.h"
#include "broker/reactor_int.h"
#include "common/alloc.h"
#include "common/log.h"

#include <inttypes.h>
#include <string.h>

void
reactor_set_journal(reactor_t *r, journal_t *j)
{
    r->jrn = j;
}

/* Holds the encoded reply o to p until the end of the pass. */
static void
s_hold(reactor_t *r, rx_peer_t *p, wire_msg_t *o)
{
    rx_held_t *h = &r->held;
    size_t at = h->buf.len;
    if (wire_encode(o, &h->buf) != JOBQ_OK) {
        LOG_ERR("cannot encode SUBMIT_OK: %s", o->error);
        return;
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->items = jobq_realloc(h->items, h->cap * sizeof *h->items);
    }
    h->items[h->n++] = (rx_held_item_t){p->handle, o->req, at, h->buf.len - at};
}

void
rx_journal_submit(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    uint64_t est = 0;
    for (uint32_t i = 0; i < m->njobs; i++)
        est += journal_submit_size(m->jobs[i].queue_len, m->jobs[i].unique_len,
                                   m->jobs[i].payload_len);
    int rc = journal_admit(r->jrn, est);
    uint64_t mark = journal_mark(r->jrn);
    uint32_t accepted = 0;
    for (uint32_t i = 0; rc == JOBQ_OK && i < m->njobs; i++) {
        jobq_job_t job = m->jobs[i];
        job.attempt = 0; /* a producer does not choose the attempt */
        jobq_id_t id = job.id;
        int jrc = core_submit(r->core, &job, p->handle, r->now_ms, &id, NULL);
        r->idbuf[i] = id;
        r->codebuf[i] = (uint32_t)jrc;
        accepted += jrc == JOBQ_OK || jrc == JOBQ_EDUPLICATE;
    }
    if (rc == JOBQ_OK && (rc = journal_write(r->jrn)) != JOBQ_OK) {
        for (uint32_t i = 0; i < m->njobs; i++)
            if (r->codebuf[i] == JOBQ_OK)
                core_unsubmit(r->core, &r->idbuf[i]);
        journal_rewind(r->jrn, mark);
    }
    if (rc != JOBQ_OK) {
        for (uint32_t i = 0; i < m->njobs; i++) {
            r->idbuf[i] = m->jobs[i].id;
            r->codebuf[i] = (uint32_t)rc;
        }
        accepted = 0;
    }
    wire_msg_t o;
    wire_msg_init(&o, WIRE_SUBMIT_OK);
    o.fields = WIRE_F_REQ | WIRE_F_IDS | WIRE_F_CODES;
    o.req = m->req;
    o.ids = r->idbuf;
    o.nids = m->njobs;
    o.codes = r->codebuf;
    o.ncodes = m->njobs;
    if (accepted)
        s_hold(r, p, &o);
    else if (rx_send(r, p, &o) != 0)
        r->cnt.replies_dropped++;
    r->work_maybe = 1;
}

void
rx_journal_commit(reactor_t *r)
{
    if (!r->jrn)
        return;
    int rc = journal_commit(r->jrn, r->now_ms);
    rx_held_t *h = &r->held;
    for (size_t i = 0; i < h->n; i++) {
        rx_peer_t *p = rx_peers_by_handle(&r->peers, h->items[i].peer);
        if (!p)
            continue;
        if (rc == JOBQ_OK) {
            if (rx_send_buf(r, p, h->buf.data + h->items[i].off, h->items[i].len) != 0)
                r->cnt.replies_dropped++;
        } else {
            rx_error(r, p, 1, h->items[i].req, JOBQ_EIO,
                     "the journal failed: jobs not acknowledged (broker fail-stopped)");
        }
    }
    h->n = 0;
    h->buf.len = 0;
}

int64_t
rx_journal_due(const reactor_t *r)
{
    return r->jrn ? journal_due_ms(r->jrn) : CORE_FOREVER;
}

void
rx_journal_fini(reactor_t *r)
{
    wire_buf_fini(&r->held.buf);
    jobq_free(r->held.items);
    memset(&r->held, 0, sizeof r->held);
}

void
rx_journal_json(reactor_t *r, rx_text_t *t)
{
    if (!r->jrn) {
        rx_text_add(t, ",\"journal\":null");
        return;
    }
    journal_stats_t st;
    journal_stats(r->jrn, &st);
    rx_text_add(t,
                ",\"journal\":{\"policy\":\"%s\",\"batch_ms\":%" PRId64 ",\"disk_bytes\":%" PRIu64
                ",\"segments\":%" PRIu64 ",\"syncs\":%" PRIu64 ",\"writes\":%" PRIu64
                ",\"records\":%" PRIu64 ",\"compactions\":%" PRIu64 ",\"refused_nospace\":%" PRIu64
                ",\"replayed\":%" PRIu64 ",\"failed\":%s,\"segment\":%" PRIu64
                ",\"synced_offset\":%" PRIu64 "}",
                journal_policy_name(st.policy), st.batch_ms, st.bytes, st.segments, st.syncs,
                st.writes, st.records, st.compactions, st.refused_nospace, st.replayed,
                st.failed ? "true" : "false", st.segment, st.synced_offset);
}
