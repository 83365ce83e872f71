/*
 * tests/unit/test_core_model.c: the broker core against a reference model.
 *
 * 10,000 random operations (submit, credit, reserve, complete, extend,
 * release, release_worker, tick, kick, kick_job, delete, pause/resume, bury)
 * run against the core and against a simple model that keeps, per job, its
 * state, attempts, lease and times. After every operation: core_check(), the
 * return code the model predicts, per-queue counts of each state, and the
 * events (one RESULT per finished job, one JOIN when a queue's unfinished
 * count drops to 0). Jobs handed out must be the model's best candidates
 * (lowest priority, then FIFO). Every 50 operations each job is peeked.
 *
 * Where the core's order is deliberately unspecified (jobs becoming READY in
 * the same instant) the model gives them equal sequence numbers and accepts
 * either order.
 */
#include "broker/core.h"
#include "jobq_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NQ 3
#define NW 3
#define MAXJ 4096
#define OPS 10000
#define BASE_MS 5 /* backoff: 5, 10, 20, 20... (cap 20, no jitter) */
#define CAP_MS 20

enum { M_DONE_RES = 10, M_DEAD_RES = 11, M_GONE = 12 }; /* plus jobq_job_state values */

typedef struct mjob {
    jobq_id_t id;
    int q, st, ukey;
    uint32_t prio, attempt, free, max, ttr;
    int64_t at, deadline;
    uint64_t seq, dseq, worker;
} mjob_t;

typedef struct model {
    mjob_t j[MAXJ];
    int n;
    int qexists[NQ];
    int64_t paused[NQ];
    int wknown[NW];
    uint32_t credit[NW];
    int64_t now;
    uint64_t seq, dseq;
    int results, joins[NQ]; /* events expected from the current operation */
} model_t;

static const char *const qname[NQ] = {"q0", "q1", "q2"};
static const char *const ukey[3] = {"k0", "k1", "k2"};

static int
s_rnd(int n)
{
    return rand() % n;
}

static uint64_t
s_handle(int w)
{
    return 100u + (uint64_t)w;
}

static int
s_live(int st)
{
    return st == JOBQ_STATE_DELAYED || st == JOBQ_STATE_READY || st == JOBQ_STATE_RESERVED;
}

static uint64_t
s_unfinished(const model_t *m, int q)
{
    uint64_t n = 0;
    for (int i = 0; i < m->n; i++)
        n += m->j[i].q == q && s_live(m->j[i].st);
    return n;
}

static int
s_paused(const model_t *m, int q)
{
    return m->paused[q] != 0 && m->paused[q] > m->now;
}

static mjob_t *
s_find(model_t *m, const jobq_id_t *id)
{
    for (int i = 0; i < m->n; i++)
        if (m->j[i].st != M_GONE && !memcmp(&m->j[i].id, id, sizeof *id))
            return &m->j[i];
    return NULL;
}

static mjob_t *
s_pick(model_t *m, int want_state)
{
    if (m->n == 0)
        return NULL;
    if (want_state >= 0 && s_rnd(10) < 8) {
        int cand[MAXJ], k = 0;
        for (int i = 0; i < m->n; i++)
            if (m->j[i].st == want_state)
                cand[k++] = i;
        if (k)
            return &m->j[cand[s_rnd(k)]];
    }
    return &m->j[s_rnd(m->n)];
}

static int64_t
s_backoff(uint32_t used)
{
    int64_t d = BASE_MS;
    for (uint32_t i = 1; i < used && d < CAP_MS; i++)
        d *= 2;
    return d < CAP_MS ? d : CAP_MS;
}

/* Model transitions. */
static void
s_to_ready(model_t *m, mjob_t *j, uint64_t seq)
{
    j->st = JOBQ_STATE_READY;
    j->seq = seq;
}

static void
s_to_dead(model_t *m, mjob_t *j, uint64_t dseq)
{
    j->st = JOBQ_STATE_DEAD;
    j->dseq = dseq;
    m->results++;
}

/* A failed attempt (backoff for worker reports, none for expiry or loss). */
static void
s_failed(model_t *m, mjob_t *j, int dead_verdict, int backoff, uint64_t seq, uint64_t dseq)
{
    uint32_t used = j->attempt - j->free;
    if (dead_verdict || used >= j->max) {
        s_to_dead(m, j, dseq);
    } else if (backoff) {
        j->st = JOBQ_STATE_DELAYED;
        j->at = m->now + s_backoff(used);
    } else {
        s_to_ready(m, j, seq);
    }
}

static int
s_fence(const model_t *m, const mjob_t *j, uint32_t attempt, int w)
{
    if (!j || j->st == M_GONE)
        return JOBQ_ENOTFOUND;
    if (j->st != JOBQ_STATE_RESERVED || j->attempt != attempt)
        return JOBQ_ESTALE;
    if (j->worker != s_handle(w))
        return JOBQ_EFORBIDDEN;
    (void)m;
    return JOBQ_OK;
}

static jobq_job_state
s_public_state(int st)
{
    return st == M_DONE_RES   ? JOBQ_STATE_DONE
           : st == M_DEAD_RES ? JOBQ_STATE_DEAD
                              : (jobq_job_state)st;
}

/* ---- operations: each drives the core and the model, and checks the rc --- */

static void
op_submit(core_t *c, model_t *m)
{
    if (m->n >= MAXJ)
        return;
    int q = s_rnd(NQ), uk = s_rnd(4) == 0 ? s_rnd(3) : -1;
    char payload[16];
    snprintf(payload, sizeof payload, "p%d", m->n);
    jobq_job_t job;
    jobq_job_init(&job);
    job.queue = qname[q];
    job.queue_len = 2;
    job.payload = payload;
    job.payload_len = (uint32_t)strlen(payload);
    job.priority = (uint32_t)s_rnd(3);
    job.delay_ms = s_rnd(3) == 0 ? (uint64_t)s_rnd(30) : 0;
    job.max_attempts = 1 + (uint32_t)s_rnd(3);
    job.ttr_ms = 10 + (uint32_t)s_rnd(40);
    if (uk >= 0) {
        job.unique = ukey[uk];
        job.unique_len = 2;
    }
    mjob_t *dup = NULL;
    if (s_rnd(10) == 0 && m->n) {
        mjob_t *t = &m->j[s_rnd(m->n)];
        if (t->st != M_GONE) {
            job.id = t->id;
            dup = t;
        }
    } else if (s_rnd(2)) {
        jobq_id_generate(&job.id);
    }
    if (!dup && uk >= 0)
        for (int i = 0; i < m->n; i++)
            if (m->j[i].q == q && m->j[i].ukey == uk && m->j[i].st != M_GONE)
                dup = &m->j[i];
    jobq_id_t got;
    jobq_job_state st;
    int rc;
    if (s_rnd(2))
        rc = core_submit(c, &job, 1, m->now, &got, &st);
    else
        core_submit_batch(c, &job, 1, 1, m->now, &rc, &got, &st);
    if (dup) {
        ck_assert_jobq_err(rc, JOBQ_EDUPLICATE);
        ck_assert_int_eq(memcmp(&got, &dup->id, sizeof got), 0);
        ck_assert_int_eq(st, s_public_state(dup->st));
        return;
    }
    ck_assert_jobq_ok(rc);
    mjob_t *j = &m->j[m->n++];
    memset(j, 0, sizeof *j);
    j->id = got;
    j->q = q;
    j->ukey = uk;
    j->prio = job.priority;
    j->max = job.max_attempts;
    j->ttr = job.ttr_ms;
    m->qexists[q] = 1;
    if (job.delay_ms) {
        j->st = JOBQ_STATE_DELAYED;
        j->at = m->now + (int64_t)job.delay_ms;
    } else {
        s_to_ready(m, j, m->seq++);
    }
}

static void
op_credit(core_t *c, model_t *m)
{
    int w = s_rnd(NW);
    uint32_t credit = (uint32_t)s_rnd(9);
    ck_assert_jobq_ok(core_worker_credit(c, s_handle(w), credit, m->now));
    m->wknown[w] = 1;
    m->credit[w] = credit;
}

/* Returns the job handed out, checking it is one of the model's best. */
static mjob_t *
s_check_handout(model_t *m, const core_job_view_t *v, int mask)
{
    mjob_t *j = s_find(m, &v->id);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(j->st, JOBQ_STATE_READY);
    ck_assert(mask & (1 << j->q));
    ck_assert(!s_paused(m, j->q));
    int bad = 0;
    for (int i = 0; i < m->n; i++) {
        const mjob_t *o = &m->j[i];
        if (o->st != JOBQ_STATE_READY || !(mask & (1 << o->q)) || s_paused(m, o->q))
            continue;
        bad += o->prio < j->prio;
        bad += o->q == j->q && o->prio == j->prio && o->seq < j->seq;
    }
    ck_assert_msg(bad == 0, "handed out a job that was not among the best");
    return j;
}

static void
op_reserve(core_t *c, model_t *m)
{
    int w = s_rnd(NW), mask = 1 + s_rnd(7);
    size_t max = (size_t)s_rnd(9), n = 99, nq = 0;
    core_name_t names[NQ];
    for (int q = 0; q < NQ; q++)
        if (mask & (1 << q))
            names[nq++] = (core_name_t){qname[q], 2};
    core_job_view_t out[8];
    int rc = core_reserve(c, s_handle(w), names, nq, m->now, max, out, &n);
    if (!m->wknown[w]) {
        ck_assert_jobq_err(rc, JOBQ_ENOTFOUND);
        return;
    }
    ck_assert_jobq_ok(rc);
    uint32_t held = 0;
    size_t cand = 0;
    for (int i = 0; i < m->n; i++) {
        held += m->j[i].st == JOBQ_STATE_RESERVED && m->j[i].worker == s_handle(w);
        cand +=
            m->j[i].st == JOBQ_STATE_READY && (mask & (1 << m->j[i].q)) && !s_paused(m, m->j[i].q);
    }
    size_t room = m->credit[w] > held ? m->credit[w] - held : 0, want = max;
    want = room < want ? room : want;
    want = cand < want ? cand : want;
    ck_assert_uint_eq(n, want);
    for (size_t k = 0; k < n; k++) {
        mjob_t *j = s_check_handout(m, &out[k], mask);
        j->st = JOBQ_STATE_RESERVED;
        j->attempt++;
        j->worker = s_handle(w);
        j->deadline = m->now + j->ttr;
        ck_assert_uint_eq(out[k].attempt, j->attempt);
        ck_assert_int_eq(out[k].deadline_ms, j->deadline);
    }
}

/* Picks a job and a fence token, mostly a valid one. */
static mjob_t *
s_pick_lease(model_t *m, uint32_t *attempt, int *w)
{
    mjob_t *j = s_pick(m, JOBQ_STATE_RESERVED);
    if (!j)
        return NULL;
    *attempt = j->attempt + (uint32_t)(s_rnd(10) == 0 ? s_rnd(3) - 1 : 0);
    *w = j->st == JOBQ_STATE_RESERVED && s_rnd(8) ? (int)(j->worker - 100) : s_rnd(NW);
    return j;
}

static void
op_complete(core_t *c, model_t *m)
{
    uint32_t attempt;
    int w;
    mjob_t *j = s_pick_lease(m, &attempt, &w);
    if (!j)
        return;
    jobq_result_t r;
    jobq_result_init(&r);
    r.id = j->id;
    r.attempt = attempt;
    r.status = (jobq_status)s_rnd(5);
    int want = j->st == M_DONE_RES || j->st == M_DEAD_RES ? JOBQ_ESTALE : s_fence(m, j, attempt, w);
    int rc;
    if (s_rnd(2))
        rc = core_complete(c, s_handle(w), &r, m->now);
    else
        core_complete_batch(c, s_handle(w), &r, 1, m->now, &rc);
    ck_assert_jobq_err(rc, want);
    if (want != JOBQ_OK)
        return;
    if (r.status == JOBQ_STATUS_DONE) {
        j->st = M_DONE_RES;
        m->results++;
    } else {
        s_failed(m, j, r.status == JOBQ_STATUS_DEAD, 1, 0, m->dseq++);
    }
}

static void
op_extend(core_t *c, model_t *m)
{
    uint32_t attempt;
    int w;
    mjob_t *j = s_pick_lease(m, &attempt, &w);
    if (!j)
        return;
    uint32_t ttr = s_rnd(2) ? 0 : 5 + (uint32_t)s_rnd(50);
    int want = j->st == M_DONE_RES || j->st == M_DEAD_RES ? JOBQ_ESTALE : s_fence(m, j, attempt, w);
    int64_t deadline = 0;
    ck_assert_jobq_err(core_extend(c, s_handle(w), &j->id, attempt, ttr, m->now, &deadline), want);
    if (want == JOBQ_OK) {
        j->deadline = m->now + (ttr ? ttr : j->ttr);
        ck_assert_int_eq(deadline, j->deadline);
    }
}

static void
op_release(core_t *c, model_t *m)
{
    uint32_t attempt;
    int w;
    mjob_t *j = s_pick_lease(m, &attempt, &w);
    if (!j)
        return;
    uint64_t delay = s_rnd(2) ? 0 : (uint64_t)s_rnd(20);
    int want = j->st == M_DONE_RES || j->st == M_DEAD_RES ? JOBQ_ESTALE : s_fence(m, j, attempt, w);
    ck_assert_jobq_err(core_release(c, s_handle(w), &j->id, attempt, delay, m->now), want);
    if (want != JOBQ_OK)
        return;
    j->free++;
    if (delay) {
        j->st = JOBQ_STATE_DELAYED;
        j->at = m->now + (int64_t)delay;
    } else {
        s_to_ready(m, j, m->seq++);
    }
}

static void
op_release_worker(core_t *c, model_t *m)
{
    int w = s_rnd(NW);
    core_release_reason why = (core_release_reason)s_rnd(3);
    size_t n = 99;
    int rc = core_release_worker(c, s_handle(w), m->now, why, &n);
    if (!m->wknown[w]) {
        ck_assert_jobq_err(rc, JOBQ_ENOTFOUND);
        return;
    }
    ck_assert_jobq_ok(rc);
    size_t held = 0;
    uint64_t seq = m->seq++, dseq = m->dseq++;
    for (int i = 0; i < m->n; i++) {
        mjob_t *j = &m->j[i];
        if (j->st != JOBQ_STATE_RESERVED || j->worker != s_handle(w))
            continue;
        held++;
        if (why == CORE_RELEASE_GRACEFUL) {
            j->free++;
            s_to_ready(m, j, seq);
        } else {
            s_failed(m, j, 0, 0, seq, dseq);
        }
    }
    ck_assert_uint_eq(n, held);
    m->wknown[w] = 0;
    m->credit[w] = 0;
}

static void
op_tick(core_t *c, model_t *m)
{
    m->now += s_rnd(25);
    int64_t next = core_tick(c, m->now);
    /* Promotions (in ready-time order), then expiries (in deadline order);
     * jobs of the same instant share a sequence number. */
    for (int pass = 0; pass < 2; pass++) {
        int st = pass == 0 ? JOBQ_STATE_DELAYED : JOBQ_STATE_RESERVED;
        for (;;) {
            int64_t soonest = INT64_MAX;
            for (int i = 0; i < m->n; i++) {
                const mjob_t *j = &m->j[i];
                int64_t t = st == JOBQ_STATE_DELAYED ? j->at : j->deadline;
                if (j->st == st && t <= m->now && t < soonest)
                    soonest = t;
            }
            if (soonest == INT64_MAX)
                break;
            uint64_t seq = m->seq++, dseq = m->dseq++;
            for (int i = 0; i < m->n; i++) {
                mjob_t *j = &m->j[i];
                int64_t t = st == JOBQ_STATE_DELAYED ? j->at : j->deadline;
                if (j->st != st || t != soonest)
                    continue;
                if (st == JOBQ_STATE_DELAYED)
                    s_to_ready(m, j, seq);
                else
                    s_failed(m, j, 0, 0, seq, dseq);
            }
        }
    }
    int64_t want = CORE_FOREVER;
    for (int q = 0; q < NQ; q++) {
        if (m->paused[q] != 0 && m->paused[q] <= m->now)
            m->paused[q] = 0;
        if (m->paused[q] && m->paused[q] < want)
            want = m->paused[q];
    }
    for (int i = 0; i < m->n; i++) {
        const mjob_t *j = &m->j[i];
        if (j->st == JOBQ_STATE_DELAYED && j->at < want)
            want = j->at;
        if (j->st == JOBQ_STATE_RESERVED && j->deadline < want)
            want = j->deadline;
    }
    ck_assert_int_eq(next, want);
}

static void
op_kick(core_t *c, model_t *m)
{
    int q = s_rnd(NQ);
    uint64_t n = (uint64_t)s_rnd(3), kicked = 99;
    int rc = core_kick(c, qname[q], 2, n, m->now, &kicked);
    if (!m->qexists[q]) {
        ck_assert_jobq_err(rc, JOBQ_ENOTFOUND);
        return;
    }
    ck_assert_jobq_ok(rc);
    uint64_t dead = 0, moved = 0, seq = m->seq++;
    uint64_t max_moved = 0, min_left = UINT64_MAX;
    for (int i = 0; i < m->n; i++) {
        mjob_t *j = &m->j[i];
        if (j->q != q || j->st != JOBQ_STATE_DEAD)
            continue;
        dead++;
        core_job_view_t v;
        ck_assert_jobq_ok(core_peek(c, &j->id, &v));
        if (v.state == JOBQ_STATE_READY) {
            moved++;
            max_moved = j->dseq > max_moved ? j->dseq : max_moved;
            j->free = j->attempt;
            s_to_ready(m, j, seq);
        } else {
            min_left = j->dseq < min_left ? j->dseq : min_left;
        }
    }
    ck_assert_uint_eq(kicked, n < dead ? n : dead);
    ck_assert_uint_eq(moved, kicked);
    ck_assert_msg(moved == 0 || min_left == UINT64_MAX || max_moved <= min_left,
                  "kick did not take the oldest dead jobs");
}

static void
op_kick_job(core_t *c, model_t *m)
{
    mjob_t *j = s_pick(m, JOBQ_STATE_DEAD);
    if (!j)
        return;
    int want = j->st == JOBQ_STATE_DEAD ? JOBQ_OK : s_live(j->st) ? JOBQ_ESTATE : JOBQ_ENOTFOUND;
    ck_assert_jobq_err(core_kick_job(c, &j->id, m->now), want);
    if (want == JOBQ_OK) {
        j->free = j->attempt;
        s_to_ready(m, j, m->seq++);
    }
}

static void
op_delete(core_t *c, model_t *m)
{
    mjob_t *j = s_pick(m, -1);
    if (!j)
        return;
    int want = j->st == M_GONE                ? JOBQ_ENOTFOUND
               : j->st == JOBQ_STATE_RESERVED ? JOBQ_ESTATE
                                              : JOBQ_OK;
    ck_assert_jobq_err(core_delete(c, &j->id, m->now), want);
    if (want != JOBQ_OK)
        return;
    if (j->st == M_DONE_RES || j->st == M_DEAD_RES) {
        j->st = M_GONE;
    } else {
        if (j->st != JOBQ_STATE_DEAD)
            m->results++;
        j->st = M_DEAD_RES;
    }
}

static void
op_bury(core_t *c, model_t *m)
{
    mjob_t *j = s_pick(m, JOBQ_STATE_READY);
    if (!j)
        return;
    int want = j->st == JOBQ_STATE_READY || j->st == JOBQ_STATE_DELAYED ? JOBQ_OK
               : s_live(j->st) || j->st == JOBQ_STATE_DEAD              ? JOBQ_ESTATE
                                                                        : JOBQ_ENOTFOUND;
    ck_assert_jobq_err(core_bury(c, &j->id, JOBQ_STATUS_FAILED, "op", 2, m->now), want);
    if (want == JOBQ_OK)
        s_to_dead(m, j, m->dseq++);
}

static void
op_pause(core_t *c, model_t *m)
{
    int q = s_rnd(NQ), what = s_rnd(3);
    if (what == 0) {
        int rc = core_resume(c, qname[q], 2, m->now);
        ck_assert_jobq_err(rc, m->qexists[q] ? JOBQ_OK : JOBQ_ENOTFOUND);
        m->paused[q] = 0;
        return;
    }
    int64_t until = what == 1 ? CORE_FOREVER : m->now + s_rnd(40);
    ck_assert_jobq_ok(core_pause(c, qname[q], 2, until, m->now));
    m->qexists[q] = 1;
    m->paused[q] = until <= m->now ? 0 : until;
}

/* ---- checks after each operation ----------------------------------------- */

/* Plain comparisons, one assertion each: check's ck_assert costs a system call. */
static void
s_check_counts(const core_t *c, const model_t *m, int step)
{
    int wrong = 0;
    for (int q = 0; q < NQ; q++) {
        core_queue_stats_t st;
        int rc = core_queue_stats(c, qname[q], 2, &st);
        if (!m->qexists[q]) {
            wrong += rc != JOBQ_ENOTFOUND;
            continue;
        }
        uint64_t n[5] = {0};
        for (int i = 0; i < m->n; i++)
            if (m->j[i].q == q && m->j[i].st <= JOBQ_STATE_DEAD)
                n[m->j[i].st]++;
        wrong += rc != JOBQ_OK || st.delayed != n[JOBQ_STATE_DELAYED] ||
                 st.ready != n[JOBQ_STATE_READY] || st.reserved != n[JOBQ_STATE_RESERVED] ||
                 st.dead != n[JOBQ_STATE_DEAD] || st.paused != s_paused(m, q);
    }
    ck_assert_msg(wrong == 0, "step %d: queue counts differ from the model", step);
}

static void
s_check_events(core_t *c, model_t *m, const uint64_t *before, int step)
{
    int results = 0, joins[NQ] = {0}, wrong = 0;
    core_event_t ev;
    while (core_event_next(c, &ev)) {
        if (ev.type == CORE_EV_RESULT)
            results++;
        if (ev.type == CORE_EV_JOIN)
            joins[ev.queue[1] - '0']++;
    }
    for (int q = 0; q < NQ; q++)
        wrong += joins[q] != (before[q] > 0 && s_unfinished(m, q) == 0);
    ck_assert_msg(results == m->results && wrong == 0,
                  "step %d: %d RESULT events (model %d), %d JOIN mismatches", step, results,
                  m->results, wrong);
    m->results = 0;
}

static void
s_check_jobs(const core_t *c, const model_t *m)
{
    int wrong = 0;
    for (int i = 0; i < m->n; i++) {
        const mjob_t *j = &m->j[i];
        core_job_view_t v;
        int rc = core_peek(c, &j->id, &v);
        if (j->st == M_GONE) {
            wrong += rc != JOBQ_ENOTFOUND;
            continue;
        }
        wrong += rc != JOBQ_OK || v.state != s_public_state(j->st);
        if (s_live(j->st) || j->st == JOBQ_STATE_DEAD)
            wrong += v.attempt != j->attempt || v.attempts_used != j->attempt - j->free;
        if (j->st == JOBQ_STATE_DELAYED)
            wrong += v.ready_at_ms != j->at;
        if (j->st == JOBQ_STATE_RESERVED)
            wrong += v.deadline_ms != j->deadline || v.worker != j->worker;
    }
    ck_assert_int_eq(wrong, 0);
}

START_TEST(test_random_operations_keep_invariants_and_match_the_model)
{
    static model_t m;
    memset(&m, 0, sizeof m);
    m.now = 1000;
    srand(20261130u + (unsigned)_i);
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.seed = 99;
    cfg.backoff_base_ms = BASE_MS;
    cfg.backoff_max_ms = CAP_MS;
    cfg.backoff_jitter_pct = 0;
    core_t *c = core_new(&cfg);
    static void (*const ops[])(core_t *, model_t *) = {
        op_submit,   op_submit,  op_submit,   op_submit,         op_credit,   op_reserve,
        op_reserve,  op_reserve, op_complete, op_complete,       op_complete, op_complete,
        op_complete, op_extend,  op_release,  op_release_worker, op_tick,     op_tick,
        op_tick,     op_kick,    op_kick_job, op_delete,         op_pause,    op_bury};
    const size_t nops = sizeof ops / sizeof ops[0];
    for (int step = 0; step < OPS; step++) {
        uint64_t before[NQ];
        for (int q = 0; q < NQ; q++)
            before[q] = s_unfinished(&m, q);
        ops[s_rnd((int)nops)](c, &m);
        const char *why = NULL;
        ck_assert_msg(core_check(c, &why) == 0, "step %d: core_check: %s", step, why);
        s_check_counts(c, &m, step);
        s_check_events(c, &m, before, step);
        if (step % 50 == 0)
            s_check_jobs(c, &m);
    }
    s_check_jobs(c, &m);
    core_destroy(&c);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("core_model");
    TCase *tc = tcase_create("core_model");
    tcase_set_timeout(tc, 50);
    tcase_add_loop_test(tc, test_random_operations_keep_invariants_and_match_the_model, 0, 2);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
