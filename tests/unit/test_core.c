/*
 * tests/unit/test_core.c: the broker's scheduling core, one behaviour per
 * test, with time passed in (exact and instant). Every test ends with
 * core_check(). The randomized model test is in test_core_model.c.
 */
#include "broker/core.h"
#include "jobq_test.h"

#include <stdio.h>
#include <string.h>

#define CORE_OK(c)                                                                                 \
    do {                                                                                           \
        const char *why_ = NULL;                                                                   \
        ck_assert_msg(core_check((c), &why_) == 0, "core_check: %s", why_);                        \
    } while (0)

#define W1 101u
#define W2 102u
#define PRODUCER 7u

static core_t *
s_new_cfg(int64_t base_ms, uint32_t jitter_pct, core_config_t *cfg)
{
    core_config_t def;
    if (!cfg) {
        core_config_init(&def);
        cfg = &def;
    }
    cfg->seed = 12345;
    cfg->backoff_base_ms = base_ms;
    cfg->backoff_jitter_pct = jitter_pct;
    if (cfg->backoff_max_ms < base_ms)
        cfg->backoff_max_ms = base_ms;
    core_t *c = core_new(cfg);
    ck_assert_ptr_nonnull(c);
    return c;
}

static core_t *
s_new(void)
{
    return s_new_cfg(0, 0, NULL);
}

static jobq_job_t
s_job(const char *queue, const char *payload)
{
    jobq_job_t j;
    jobq_job_init(&j);
    j.queue = queue;
    j.queue_len = (uint32_t)strlen(queue);
    j.payload = payload;
    j.payload_len = (uint32_t)strlen(payload);
    return j;
}

static jobq_id_t
s_put_job(core_t *c, const jobq_job_t *j, int64_t now)
{
    jobq_id_t id;
    ck_assert_jobq_ok(core_submit(c, j, PRODUCER, now, &id, NULL));
    return id;
}

static jobq_id_t
s_put(core_t *c, const char *q, const char *payload, uint32_t prio, uint64_t delay, int64_t now)
{
    jobq_job_t j = s_job(q, payload);
    j.priority = prio;
    j.delay_ms = delay;
    return s_put_job(c, &j, now);
}

static size_t
s_take(core_t *c, uint64_t w, const char *q, int64_t now, size_t max, core_job_view_t *out)
{
    core_name_t n = {q, (uint32_t)strlen(q)};
    size_t k = 99;
    ck_assert_jobq_ok(core_reserve(c, w, &n, 1, now, max, out, &k));
    return k;
}

static int
s_finish(core_t *c, uint64_t w, const jobq_id_t *id, uint32_t attempt, jobq_status st,
         const char *error, int64_t now)
{
    jobq_result_t r;
    jobq_result_init(&r);
    r.id = *id;
    r.attempt = attempt;
    r.status = st;
    if (error) {
        r.error = error;
        r.error_len = (uint32_t)strlen(error);
    }
    return core_complete(c, w, &r, now);
}

static jobq_job_state
s_state(const core_t *c, const jobq_id_t *id)
{
    core_job_view_t v;
    ck_assert_jobq_ok(core_peek(c, id, &v));
    return v.state;
}

/* Drains the events; returns how many had type (and queue q when not NULL). */
static int
s_events(core_t *c, core_event_type type, const char *q)
{
    core_event_t ev;
    int n = 0;
    while (core_event_next(c, &ev))
        if (ev.type == type &&
            (!q || (ev.queue_len == strlen(q) && !memcmp(ev.queue, q, ev.queue_len))))
            n++;
    return n;
}

/* The payload of a view as a number ("17" -> 17). */
static int
s_num(const core_job_view_t *v)
{
    int n = 0;
    for (uint32_t i = 0; i < v->payload_len; i++)
        n = n * 10 + (((const char *)v->payload)[i] - '0');
    return n;
}

static int
s_id_eq(const jobq_id_t *a, const jobq_id_t *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

START_TEST(test_job_runs_from_submit_to_done_and_its_result_is_announced)
{
    core_t *c = s_new();
    jobq_id_t id = s_put(c, "q", "hello", 5, 0, 1000);
    ck_assert_int_eq(s_state(c, &id), JOBQ_STATE_READY);
    ck_assert_int_eq(s_events(c, CORE_EV_READY, "q"), 1);
    ck_assert_jobq_ok(core_worker_credit(c, W1, 1, 1000));
    core_job_view_t v;
    ck_assert_uint_eq(s_take(c, W1, "q", 1000, 1, &v), 1);
    ck_assert(s_id_eq(&v.id, &id));
    ck_assert_uint_eq(v.payload_len, 5);
    ck_assert_int_eq(memcmp(v.payload, "hello", 5), 0);
    ck_assert_uint_eq(v.attempt, 1);
    ck_assert_int_eq(v.deadline_ms, 1000 + JOBQ_TTR_DEFAULT_MS);
    ck_assert_uint_eq(v.worker, W1);
    ck_assert_int_eq(v.state, JOBQ_STATE_RESERVED);
    CORE_OK(c);

    jobq_result_t r;
    jobq_result_init(&r);
    r.id = id;
    r.attempt = 1;
    r.output = "out";
    r.output_len = 3;
    r.exit_code = 0;
    ck_assert_jobq_ok(core_complete(c, W1, &r, 1100));
    ck_assert_int_eq(s_state(c, &id), JOBQ_STATE_DONE);
    core_result_view_t rv;
    ck_assert_jobq_ok(core_result(c, &id, &rv));
    ck_assert_int_eq(rv.status, JOBQ_STATUS_DONE);
    ck_assert_uint_eq(rv.output_len, 3);
    ck_assert_int_eq(memcmp(rv.output, "out", 3), 0);
    ck_assert_uint_eq(rv.attempts, 1);
    ck_assert_uint_eq(rv.submitter, PRODUCER);
    ck_assert_int_eq(rv.finished_ms, 1100);

    core_event_t ev;
    ck_assert_int_eq(core_event_next(c, &ev), 1);
    ck_assert_int_eq(ev.type, CORE_EV_RESULT);
    ck_assert(s_id_eq(&ev.id, &id));
    ck_assert_uint_eq(ev.submitter, PRODUCER);
    ck_assert_int_eq(core_event_next(c, &ev), 1);
    ck_assert_int_eq(ev.type, CORE_EV_JOIN);
    ck_assert_int_eq(core_event_next(c, &ev), 0);
    uint64_t unfinished = 9;
    ck_assert_jobq_ok(core_queue_unfinished(c, "q", 1, &unfinished));
    ck_assert_uint_eq(unfinished, 0);
    CORE_OK(c);
    core_destroy(&c);
    ck_assert_ptr_null(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_delayed_job_is_not_ready_early_and_is_ready_on_time)
{
    core_t *c = s_new();
    jobq_id_t id = s_put(c, "q", "x", 1, 500, 1000);
    core_job_view_t v;
    ck_assert_jobq_ok(core_peek(c, &id, &v));
    ck_assert_int_eq(v.state, JOBQ_STATE_DELAYED);
    ck_assert_int_eq(v.ready_at_ms, 1500);
    ck_assert_int_eq(s_events(c, CORE_EV_READY, NULL), 0);
    core_worker_credit(c, W1, 5, 1000);
    ck_assert_uint_eq(s_take(c, W1, "q", 1000, 5, &v), 0);
    ck_assert_int_eq(core_tick(c, 1499), 1500);
    ck_assert_uint_eq(s_take(c, W1, "q", 1499, 5, &v), 0);
    ck_assert_int_eq(s_events(c, CORE_EV_READY, NULL), 0);
    ck_assert_int_eq(core_tick(c, 1500), CORE_FOREVER);
    ck_assert_int_eq(s_events(c, CORE_EV_READY, "q"), 1);
    ck_assert_uint_eq(s_take(c, W1, "q", 1500, 5, &v), 1);
    ck_assert(s_id_eq(&v.id, &id));
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_mixed_priority_backlog_comes_out_by_priority_then_fifo)
{
    core_t *c = s_new();
    static const uint32_t prio[] = {3, 1, 2, 1000, 0};
    char payload[32];
    for (int i = 0; i < 50; i++) {
        snprintf(payload, sizeof payload, "%d", i);
        s_put(c, "q", payload, prio[i % 5], 0, 10);
    }
    core_worker_credit(c, W1, 100, 10);
    core_job_view_t v[60];
    ck_assert_uint_eq(s_take(c, W1, "q", 10, 60, v), 50);
    int out_of_order = 0;
    for (int k = 1; k < 50; k++) {
        int a = s_num(&v[k - 1]), b = s_num(&v[k]);
        if (v[k - 1].priority > v[k].priority || (v[k - 1].priority == v[k].priority && a >= b))
            out_of_order++;
    }
    ck_assert_int_eq(out_of_order, 0);
    ck_assert_uint_eq(v[0].priority, 0);
    ck_assert_uint_eq(v[49].priority, 1000);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_job_back_from_a_retry_goes_behind_jobs_already_ready)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "first");
    j.max_attempts = 2;
    jobq_id_t first = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    jobq_id_t second = s_put(c, "q", "second", JOBQ_PRIORITY_DEFAULT, 0, 1);
    ck_assert_jobq_ok(s_finish(c, W1, &first, 1, JOBQ_STATUS_FAILED, "x", 2)); /* base 0: READY */
    ck_assert_uint_eq(s_take(c, W1, "q", 3, 1, &v), 1);
    ck_assert(s_id_eq(&v.id, &second));
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_reserve_over_queues_takes_lowest_priority_then_alternates_ties)
{
    core_t *c = s_new();
    for (int i = 0; i < 10; i++) {
        s_put(c, "a", "a", 5, 0, 0);
        s_put(c, "b", "b", 5, 0, 0);
    }
    s_put(c, "c", "c", 1, 0, 0);
    core_worker_credit(c, W1, 100, 0);
    core_name_t qs[] = {{"a", 1}, {"b", 1}, {"c", 1}, {"nosuch", 6}};
    core_job_view_t v[21];
    size_t n;
    ck_assert_jobq_ok(core_reserve(c, W1, qs, 4, 0, 21, v, &n));
    ck_assert_uint_eq(n, 21);
    ck_assert_int_eq(v[0].queue[0], 'c');
    int a = 0, b = 0, max_run = 0, run = 0;
    for (size_t k = 1; k < n; k++) {
        a += v[k].queue[0] == 'a';
        b += v[k].queue[0] == 'b';
        run = k > 1 && v[k].queue[0] == v[k - 1].queue[0] ? run + 1 : 1;
        if (run > max_run)
            max_run = run;
    }
    ck_assert_int_eq(a, 10);
    ck_assert_int_eq(b, 10);
    ck_assert_int_le(max_run, 2); /* they take turns, neither starves */
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_expired_lease_returns_job_to_ready_and_counts_the_attempt)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    j.ttr_ms = 100;
    j.max_attempts = 2;
    jobq_id_t id = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    ck_assert_int_eq(v.deadline_ms, 100);
    ck_assert_int_eq(core_tick(c, 99), 100);
    ck_assert_int_eq(s_state(c, &id), JOBQ_STATE_RESERVED);
    core_tick(c, 100);
    ck_assert_jobq_ok(core_peek(c, &id, &v));
    ck_assert_int_eq(v.state, JOBQ_STATE_READY);
    ck_assert_uint_eq(v.attempts_used, 1);
    core_worker_stats_t ws;
    core_worker_stats(c, W1, &ws);
    ck_assert_uint_eq(ws.held, 0);
    core_queue_stats_t qs;
    core_queue_stats(c, "q", 1, &qs);
    ck_assert_uint_eq(qs.expired, 1);
    ck_assert_uint_eq(qs.failed, 1);

    ck_assert_uint_eq(s_take(c, W1, "q", 100, 1, &v), 1);
    ck_assert_uint_eq(v.attempt, 2);
    core_tick(c, 200);
    ck_assert_jobq_ok(core_peek(c, &id, &v));
    ck_assert_int_eq(v.state, JOBQ_STATE_DEAD);
    ck_assert_int_eq(v.last_status, JOBQ_STATUS_TIMEDOUT);
    ck_assert_int_eq(memcmp(v.error, "lease expired", v.error_len), 0);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_expired_lease_emits_an_expired_event_naming_its_worker)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "a");
    j.ttr_ms = 100;
    j.max_attempts = 3;
    jobq_id_t id1 = s_put_job(c, &j, 0);
    j = s_job("q", "b");
    j.ttr_ms = 200;
    j.max_attempts = 1;
    jobq_id_t id2 = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_worker_credit(c, W2, 1, 0);
    core_job_view_t v;
    ck_assert_uint_eq(s_take(c, W1, "q", 0, 1, &v), 1);
    ck_assert(s_id_eq(&v.id, &id1));
    ck_assert_uint_eq(s_take(c, W2, "q", 0, 1, &v), 1);
    ck_assert(s_id_eq(&v.id, &id2));
    s_events(c, CORE_EV_READY, NULL);

    core_tick(c, 99); /* nothing due yet */
    core_event_t ev;
    ck_assert_int_eq(core_event_next(c, &ev), 0);

    core_tick(c, 150); /* W1's lease runs out: EXPIRED naming W1, then the job is READY */
    ck_assert_int_eq(core_event_next(c, &ev), 1);
    ck_assert_int_eq(ev.type, CORE_EV_EXPIRED);
    ck_assert_uint_eq(ev.worker, W1);
    ck_assert(s_id_eq(&ev.id, &id1));
    ck_assert_uint_eq(ev.queue_len, 1);
    ck_assert_int_eq(memcmp(ev.queue, "q", 1), 0);
    ck_assert_int_eq(core_event_next(c, &ev), 1);
    ck_assert_int_eq(ev.type, CORE_EV_READY);
    ck_assert_uint_eq(ev.worker, 0);
    ck_assert_int_eq(core_event_next(c, &ev), 0);

    core_tick(c, 200); /* W2's lease runs out on its last attempt: EXPIRED, then the DEAD result */
    ck_assert_int_eq(core_event_next(c, &ev), 1);
    ck_assert_int_eq(ev.type, CORE_EV_EXPIRED);
    ck_assert_uint_eq(ev.worker, W2);
    ck_assert(s_id_eq(&ev.id, &id2));
    ck_assert_int_eq(core_event_next(c, &ev), 1);
    ck_assert_int_eq(ev.type, CORE_EV_RESULT);
    ck_assert(s_id_eq(&ev.id, &id2));
    ck_assert_uint_eq(ev.worker, 0);
    ck_assert_int_eq(core_event_next(c, &ev), 0);
    ck_assert_int_eq(s_state(c, &id2), JOBQ_STATE_DEAD);

    /* A lease that ends by a result, a release or a lost worker is no expiry. */
    ck_assert_uint_eq(s_take(c, W1, "q", 200, 1, &v), 1);
    ck_assert_jobq_ok(core_release(c, W1, &id1, v.attempt, 0, 210));
    ck_assert_uint_eq(s_take(c, W2, "q", 210, 1, &v), 1);
    ck_assert_jobq_ok(core_release_worker(c, W2, 220, CORE_RELEASE_LOST, NULL));
    ck_assert_uint_eq(s_take(c, W1, "q", 220, 1, &v), 1);
    ck_assert_jobq_ok(s_finish(c, W1, &id1, v.attempt, JOBQ_STATUS_DONE, NULL, 230));
    core_tick(c, 10000);
    ck_assert_int_eq(s_events(c, CORE_EV_EXPIRED, NULL), 0);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_complete_is_fenced_by_attempt_and_worker)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    j.ttr_ms = 100;
    j.max_attempts = 3;
    jobq_id_t id = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_worker_credit(c, W2, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    core_tick(c, 100); /* W1's lease runs out (a SIGSTOPped worker, say) */
    s_take(c, W2, "q", 100, 1, &v);
    ck_assert_uint_eq(v.attempt, 2);

    jobq_id_t unknown;
    jobq_id_generate(&unknown);
    ck_assert_jobq_err(s_finish(c, W1, &id, 1, JOBQ_STATUS_DONE, NULL, 110), JOBQ_ESTALE);
    ck_assert_jobq_err(s_finish(c, W1, &id, 2, JOBQ_STATUS_DONE, NULL, 110), JOBQ_EFORBIDDEN);
    ck_assert_jobq_err(s_finish(c, W1, &id, 3, JOBQ_STATUS_DONE, NULL, 110), JOBQ_ESTALE);
    ck_assert_jobq_err(s_finish(c, W2, &unknown, 1, JOBQ_STATUS_DONE, NULL, 110), JOBQ_ENOTFOUND);
    ck_assert_jobq_err(core_extend(c, W1, &id, 2, 0, 110, NULL), JOBQ_EFORBIDDEN);
    ck_assert_jobq_err(core_release(c, W1, &id, 1, 0, 110), JOBQ_ESTALE);
    ck_assert_int_eq(s_state(c, &id), JOBQ_STATE_RESERVED);
    ck_assert_jobq_ok(s_finish(c, W2, &id, 2, JOBQ_STATUS_DONE, NULL, 120));
    ck_assert_jobq_err(s_finish(c, W2, &id, 2, JOBQ_STATUS_DONE, NULL, 130), JOBQ_ESTALE);
    ck_assert_jobq_err(s_finish(c, W1, &id, 1, JOBQ_STATUS_FAILED, NULL, 130), JOBQ_ESTALE);
    core_queue_stats_t qs;
    core_queue_stats(c, "q", 1, &qs);
    ck_assert_uint_eq(qs.done, 1);
    ck_assert_uint_eq(qs.completed, 1);
    ck_assert_int_eq(s_events(c, CORE_EV_RESULT, NULL), 1);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_extend_renews_the_lease)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    j.ttr_ms = 100;
    jobq_id_t id = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    int64_t deadline = 0;
    ck_assert_jobq_ok(core_extend(c, W1, &id, 1, 0, 90, &deadline));
    ck_assert_int_eq(deadline, 190);
    ck_assert_int_eq(core_tick(c, 150), 190);
    ck_assert_int_eq(s_state(c, &id), JOBQ_STATE_RESERVED);
    ck_assert_jobq_ok(core_extend(c, W1, &id, 1, 1000, 150, &deadline));
    ck_assert_int_eq(deadline, 1150);
    ck_assert_int_eq(core_tick(c, 1149), 1150);
    ck_assert_jobq_err(core_extend(c, W2, &id, 1, 0, 1149, NULL), JOBQ_EFORBIDDEN);
    ck_assert_jobq_err(core_extend(c, W1, &id, 2, 0, 1149, NULL), JOBQ_ESTALE);
    core_tick(c, 1150);
    ck_assert_int_eq(s_state(c, &id), JOBQ_STATE_DEAD); /* one attempt by default */
    core_worker_stats_t ws;
    core_worker_stats(c, W1, &ws);
    ck_assert_uint_eq(ws.extended, 2);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_credit_is_never_exceeded)
{
    core_t *c = s_new();
    for (int i = 0; i < 10; i++)
        s_put(c, "q", "x", 1, 0, 0);
    core_job_view_t v[10];
    ck_assert_jobq_err(core_reserve(c, W1, &(core_name_t){"q", 1}, 1, 0, 10, v, &(size_t){0}),
                       JOBQ_ENOTFOUND);
    core_worker_credit(c, W1, 3, 0);
    ck_assert_uint_eq(s_take(c, W1, "q", 0, 10, v), 3);
    ck_assert_uint_eq(s_take(c, W1, "q", 0, 10, v + 3), 0);
    ck_assert_jobq_ok(s_finish(c, W1, &v[0].id, 1, JOBQ_STATUS_DONE, NULL, 1));
    ck_assert_uint_eq(s_take(c, W1, "q", 1, 10, v + 3), 1);
    core_worker_credit(c, W1, 1, 2); /* lowered below what it holds */
    ck_assert_uint_eq(s_take(c, W1, "q", 2, 10, v + 4), 0);
    ck_assert_jobq_ok(s_finish(c, W1, &v[1].id, 1, JOBQ_STATUS_DONE, NULL, 3));
    ck_assert_jobq_ok(s_finish(c, W1, &v[2].id, 1, JOBQ_STATUS_DONE, NULL, 3));
    ck_assert_uint_eq(s_take(c, W1, "q", 3, 10, v + 4), 0); /* holds 1 = credit */
    ck_assert_jobq_ok(s_finish(c, W1, &v[3].id, 1, JOBQ_STATUS_DONE, NULL, 4));
    ck_assert_uint_eq(s_take(c, W1, "q", 4, 10, v + 4), 1);
    core_worker_stats_t ws;
    ck_assert_jobq_ok(core_worker_stats(c, W1, &ws));
    ck_assert_uint_eq(ws.credit, 1);
    ck_assert_uint_eq(ws.held, 1);
    ck_assert_uint_eq(ws.delivered, 5);
    ck_assert_uint_eq(ws.done, 4);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_failed_attempts_retry_with_growing_backoff_and_bounded_jitter)
{
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.backoff_max_ms = 8000;
    core_t *c = s_new_cfg(1000, 20, &cfg);
    jobq_job_t j = s_job("q", "x");
    j.max_attempts = 7;
    jobq_id_t id = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    int64_t now = 0;
    static const int64_t nominal[] = {1000, 2000, 4000, 8000, 8000, 8000};
    for (int k = 0; k < 6; k++) {
        core_job_view_t v;
        ck_assert_uint_eq(s_take(c, W1, "q", now, 1, &v), 1);
        ck_assert_uint_eq(v.attempt, (uint32_t)k + 1);
        ck_assert_jobq_ok(s_finish(c, W1, &id, v.attempt, JOBQ_STATUS_FAILED, "no", now));
        ck_assert_jobq_ok(core_peek(c, &id, &v));
        ck_assert_int_eq(v.state, JOBQ_STATE_DELAYED);
        int64_t d = v.ready_at_ms - now;
        ck_assert_int_ge(d, nominal[k] * 8 / 10);
        ck_assert_int_le(d, nominal[k] * 12 / 10);
        ck_assert_uint_eq(s_take(c, W1, "q", v.ready_at_ms - 1, 1, &v), 0); /* not early */
        now = v.ready_at_ms;
        core_tick(c, now);
    }
    core_job_view_t v;
    s_take(c, W1, "q", now, 1, &v);
    ck_assert_jobq_ok(s_finish(c, W1, &id, 7, JOBQ_STATUS_FAILED, "last", now));
    ck_assert_int_eq(s_state(c, &id), JOBQ_STATE_DEAD);

    /* The jitter spreads first retries over [800, 1200] ms. */
    int64_t lo = INT64_MAX, hi = 0;
    core_worker_credit(c, W2, 1000, now);
    for (int i = 0; i < 300; i++) {
        jobq_job_t k = s_job("spread", "x");
        k.max_attempts = 2;
        s_put_job(c, &k, now);
    }
    core_job_view_t vs[300];
    ck_assert_uint_eq(s_take(c, W2, "spread", now, 300, vs), 300);
    for (int i = 0; i < 300; i++) {
        s_finish(c, W2, &vs[i].id, 1, JOBQ_STATUS_CRASHED, NULL, now);
        core_job_view_t p;
        core_peek(c, &vs[i].id, &p);
        int64_t d = p.ready_at_ms - now;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    ck_assert_int_ge(lo, 800);
    ck_assert_int_le(hi, 1200);
    ck_assert_int_gt(hi - lo, 200);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_a_jobs_own_backoff_overrides_the_cores_and_keeps_its_bytes)
{
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.backoff_max_ms = 4000;
    core_t *c = s_new_cfg(1000, 0, &cfg); /* the core's: 1 s, 2 s, 4 s */
    jobq_job_t j = s_job("q", "payload");
    j.max_attempts = 5;
    j.unique = "key-1";
    j.unique_len = 5;
    j.backoff_ms = 50; /* this job's: 50, 100, 200, 400 ms */
    jobq_id_t own = s_put_job(c, &j, 0);
    jobq_job_t k = s_job("q", "other");
    k.max_attempts = 2;
    jobq_id_t dflt = s_put_job(c, &k, 0);
    core_worker_credit(c, W1, 2, 0);
    core_job_view_t v[2];
    ck_assert_uint_eq(s_take(c, W1, "q", 0, 2, v), 2);
    ck_assert_jobq_ok(s_finish(c, W1, &dflt, 1, JOBQ_STATUS_FAILED, NULL, 0));
    ck_assert_jobq_ok(core_peek(c, &dflt, &v[1]));
    ck_assert_int_eq(v[1].ready_at_ms, 1000);
    ck_assert_uint_eq(v[1].backoff_ms, 0);
    int64_t now = 0;
    static const int64_t want[] = {50, 100, 200, 400};
    for (int a = 0; a < 4; a++) {
        ck_assert_jobq_ok(s_finish(c, W1, &own, (uint32_t)a + 1, JOBQ_STATUS_FAILED, NULL, now));
        ck_assert_jobq_ok(core_peek(c, &own, &v[0]));
        ck_assert_int_eq(v[0].state, JOBQ_STATE_DELAYED);
        ck_assert_int_eq(v[0].ready_at_ms - now, want[a]);
        ck_assert_uint_eq(v[0].backoff_ms, 50);
        /* the payload and unique key are intact next to the stored backoff */
        ck_assert_mem_eq(v[0].payload, "payload", 7);
        ck_assert_uint_eq(v[0].unique_len, 5);
        ck_assert_mem_eq(v[0].unique, "key-1", 5);
        now = v[0].ready_at_ms;
        core_tick(c, now);
        ck_assert_uint_eq(s_take(c, W1, "q", now, 1, v), 1);
        ck_assert_uint_eq(v[0].attempt, (uint32_t)a + 2);
    }
    /* a job's backoff above the core's cap is used as it is */
    jobq_job_t big = s_job("q2", "x");
    big.max_attempts = 2;
    big.backoff_ms = 10000;
    jobq_id_t bid = s_put_job(c, &big, now);
    core_worker_credit(c, W2, 1, now);
    ck_assert_uint_eq(s_take(c, W2, "q2", now, 1, v), 1);
    ck_assert_jobq_ok(s_finish(c, W2, &bid, 1, JOBQ_STATUS_FAILED, NULL, now));
    ck_assert_jobq_ok(core_peek(c, &bid, &v[0]));
    ck_assert_int_eq(v[0].ready_at_ms - now, 10000);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_zero_backoff_retries_at_once)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    j.max_attempts = 2;
    jobq_id_t id = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    ck_assert_jobq_ok(s_finish(c, W1, &id, 1, JOBQ_STATUS_FAILED, NULL, 5));
    ck_assert_jobq_ok(core_peek(c, &id, &v));
    ck_assert_int_eq(v.state, JOBQ_STATE_READY);
    ck_assert_uint_eq(v.attempts_used, 1);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_job_dies_after_its_last_attempt_with_the_last_error)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "crashy");
    j.max_attempts = 2;
    jobq_id_t crashy = s_put_job(c, &j, 0);
    j = s_job("q", "faily");
    jobq_id_t faily = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 2, 0);
    core_job_view_t v[2];
    s_take(c, W1, "q", 0, 2, v);
    jobq_result_t r;
    jobq_result_init(&r);
    r.id = crashy;
    r.attempt = 1;
    r.status = JOBQ_STATUS_FAILED;
    r.exit_code = 3;
    r.error = "boom";
    r.error_len = 4;
    ck_assert_jobq_ok(core_complete(c, W1, &r, 10));
    r.id = faily;
    r.exit_code = 1;
    r.error = "exit 1";
    r.error_len = 6;
    ck_assert_jobq_ok(core_complete(c, W1, &r, 10));
    ck_assert_int_eq(s_state(c, &faily), JOBQ_STATE_DEAD);
    ck_assert_uint_eq(s_take(c, W1, "q", 10, 2, v), 1);
    r.id = crashy;
    r.attempt = 2;
    r.status = JOBQ_STATUS_CRASHED;
    r.exit_code = 0;
    r.signal = 9;
    r.error = "killed";
    r.error_len = 6;
    ck_assert_jobq_ok(core_complete(c, W1, &r, 20));

    core_job_view_t p;
    ck_assert_jobq_ok(core_peek(c, &crashy, &p));
    ck_assert_int_eq(p.state, JOBQ_STATE_DEAD);
    ck_assert_int_eq(p.last_status, JOBQ_STATUS_CRASHED);
    ck_assert_int_eq(p.signal, 9);
    ck_assert_uint_eq(p.attempts_used, 2);
    ck_assert_int_eq(p.since_ms, 20);
    ck_assert_uint_eq(p.error_len, 6);
    ck_assert_int_eq(memcmp(p.error, "killed", 6), 0);
    ck_assert_jobq_ok(core_peek(c, &faily, &p));
    ck_assert_int_eq(p.last_status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(p.exit_code, 1);
    core_result_view_t rv;
    ck_assert_jobq_ok(core_result(c, &crashy, &rv));
    ck_assert_int_eq(rv.status, JOBQ_STATUS_DEAD);
    ck_assert_int_eq(rv.last_status, JOBQ_STATUS_CRASHED);
    ck_assert_uint_eq(rv.attempts, 2);
    core_queue_stats_t qs;
    core_queue_stats(c, "q", 1, &qs);
    ck_assert_uint_eq(qs.dead, 2);
    ck_assert_uint_eq(qs.buried, 2);
    ck_assert_uint_eq(qs.failed, 3);
    ck_assert_uint_eq(qs.retried, 1);
    ck_assert_int_eq(s_events(c, CORE_EV_RESULT, NULL), 2);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_dead_verdict_buries_with_attempts_left)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    j.max_attempts = 5;
    jobq_id_t id = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    ck_assert_jobq_ok(s_finish(c, W1, &id, 1, JOBQ_STATUS_DEAD, "poison", 1));
    ck_assert_jobq_ok(core_peek(c, &id, &v));
    ck_assert_int_eq(v.state, JOBQ_STATE_DEAD);
    ck_assert_int_eq(v.last_status, JOBQ_STATUS_DEAD);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_release_worker_hands_back_everything_it_holds)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "last-try");
    jobq_id_t once = s_put_job(c, &j, 0);
    j = s_job("q", "more");
    j.max_attempts = 3;
    jobq_id_t a = s_put_job(c, &j, 0), b = s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 3, 0);
    core_job_view_t v[3];
    ck_assert_uint_eq(s_take(c, W1, "q", 0, 3, v), 3);
    size_t n = 0;
    ck_assert_jobq_ok(core_release_worker(c, W1, 50, CORE_RELEASE_LOST, &n));
    ck_assert_uint_eq(n, 3);
    core_worker_stats_t ws;
    ck_assert_jobq_err(core_worker_stats(c, W1, &ws), JOBQ_ENOTFOUND);
    core_job_view_t p;
    core_peek(c, &once, &p);
    ck_assert_int_eq(p.state, JOBQ_STATE_DEAD);
    ck_assert_int_eq(p.last_status, JOBQ_STATUS_CRASHED);
    ck_assert_int_eq(memcmp(p.error, "worker lost", p.error_len), 0);
    core_peek(c, &a, &p);
    ck_assert_int_eq(p.state, JOBQ_STATE_READY);
    ck_assert_uint_eq(p.attempts_used, 1);
    ck_assert_int_eq(s_state(c, &b), JOBQ_STATE_READY);
    CORE_OK(c);

    core_worker_credit(c, W2, 2, 60);
    ck_assert_uint_eq(s_take(c, W2, "q", 60, 2, v), 2);
    ck_assert_jobq_ok(core_release_worker(c, W2, 70, CORE_RELEASE_GRACEFUL, NULL));
    core_peek(c, &a, &p);
    ck_assert_int_eq(p.state, JOBQ_STATE_READY);
    ck_assert_uint_eq(p.attempt, 2);
    ck_assert_uint_eq(p.attempts_used, 1); /* a graceful hand-back costs nothing */
    ck_assert_jobq_err(core_release_worker(c, W2, 70, CORE_RELEASE_DIED, NULL), JOBQ_ENOTFOUND);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_release_gives_a_job_back_without_using_an_attempt)
{
    core_t *c = s_new();
    jobq_id_t id = s_put(c, "q", "x", 1, 0, 0); /* max_attempts 1 */
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    ck_assert_jobq_err(core_release(c, W1, &id, 2, 0, 1), JOBQ_ESTALE);
    ck_assert_jobq_ok(core_release(c, W1, &id, 1, 0, 1));
    ck_assert_jobq_ok(core_peek(c, &id, &v));
    ck_assert_int_eq(v.state, JOBQ_STATE_READY);
    ck_assert_uint_eq(v.attempts_used, 0);
    s_take(c, W1, "q", 2, 1, &v);
    ck_assert_uint_eq(v.attempt, 2);
    ck_assert_jobq_ok(core_release(c, W1, &id, 2, 200, 2));
    ck_assert_jobq_ok(core_peek(c, &id, &v));
    ck_assert_int_eq(v.state, JOBQ_STATE_DELAYED);
    ck_assert_int_eq(v.ready_at_ms, 202);
    core_tick(c, 202);
    s_take(c, W1, "q", 202, 1, &v);
    ck_assert_jobq_ok(s_finish(c, W1, &id, 3, JOBQ_STATUS_FAILED, NULL, 203));
    ck_assert_int_eq(s_state(c, &id), JOBQ_STATE_DEAD); /* the one real attempt */
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

/* Buries n single-attempt jobs of queue q (in order) and returns their ids.
 * They have priority 0, so they are handed out before the queue's other jobs
 * (call it while no other priority-0 job is READY in q). */
static void
s_make_dead(core_t *c, const char *q, int n, jobq_id_t *ids, int64_t now)
{
    core_worker_credit(c, 999, (uint32_t)n, now);
    for (int i = 0; i < n; i++)
        ids[i] = s_put(c, q, "x", 0, 0, now);
    core_job_view_t v[16];
    ck_assert_uint_eq(s_take(c, 999, q, now, (size_t)n, v), (size_t)n);
    for (int i = 0; i < n; i++)
        ck_assert_jobq_ok(s_finish(c, 999, &ids[i], 1, JOBQ_STATUS_FAILED, "f", now + i));
}

START_TEST(test_kick_brings_dead_jobs_back_oldest_first_with_attempts_reset)
{
    core_t *c = s_new();
    jobq_id_t ids[3];
    s_make_dead(c, "q", 3, ids, 0);
    uint64_t unfinished = 9, kicked = 9;
    core_queue_unfinished(c, "q", 1, &unfinished);
    ck_assert_uint_eq(unfinished, 0);
    ck_assert_jobq_ok(core_kick(c, "q", 1, 2, 10, &kicked));
    ck_assert_uint_eq(kicked, 2);
    ck_assert_int_eq(s_state(c, &ids[0]), JOBQ_STATE_READY);
    ck_assert_int_eq(s_state(c, &ids[1]), JOBQ_STATE_READY);
    ck_assert_int_eq(s_state(c, &ids[2]), JOBQ_STATE_DEAD);
    core_result_view_t rv;
    ck_assert_jobq_err(core_result(c, &ids[0], &rv), JOBQ_ENOTFOUND); /* it will run again */
    core_queue_unfinished(c, "q", 1, &unfinished);
    ck_assert_uint_eq(unfinished, 2);
    ck_assert_jobq_ok(core_kick_job(c, &ids[2], 11));
    ck_assert_jobq_err(core_kick_job(c, &ids[2], 11), JOBQ_ESTATE);
    jobq_id_t unknown;
    jobq_id_generate(&unknown);
    ck_assert_jobq_err(core_kick_job(c, &unknown, 11), JOBQ_ENOTFOUND);
    ck_assert_jobq_err(core_kick(c, "nosuch", 6, 1, 11, NULL), JOBQ_ENOTFOUND);

    core_job_view_t v;
    ck_assert_jobq_ok(core_peek(c, &ids[0], &v));
    ck_assert_uint_eq(v.attempts_used, 0);
    s_take(c, 999, "q", 12, 1, &v);
    ck_assert(s_id_eq(&v.id, &ids[0]));
    ck_assert_uint_eq(v.attempt, 2);
    ck_assert_jobq_ok(s_finish(c, 999, &ids[0], 2, JOBQ_STATUS_FAILED, "again", 13));
    ck_assert_int_eq(s_state(c, &ids[0]), JOBQ_STATE_DEAD);
    core_queue_stats_t qs;
    core_queue_stats(c, "q", 1, &qs);
    ck_assert_uint_eq(qs.kicked, 3);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_delete_works_in_every_state_but_reserved)
{
    core_t *c = s_new();
    jobq_id_t dead;
    s_make_dead(c, "q", 1, &dead, 0);
    jobq_id_t delayed = s_put(c, "q", "d", 1, 1000, 0);
    jobq_id_t ready = s_put(c, "q", "r", 1, 0, 0);
    jobq_id_t reserved = s_put(c, "q", "s", 0, 0, 0), done = s_put(c, "q", "t", 0, 0, 0);
    core_worker_credit(c, W1, 2, 0);
    core_job_view_t v[2];
    ck_assert_uint_eq(s_take(c, W1, "q", 0, 2, v), 2);
    ck_assert_jobq_ok(s_finish(c, W1, &done, 1, JOBQ_STATUS_DONE, NULL, 1));
    s_events(c, CORE_EV_RESULT, NULL);

    ck_assert_jobq_ok(core_delete(c, &delayed, 2));
    ck_assert_jobq_ok(core_delete(c, &ready, 2));
    ck_assert_int_eq(s_events(c, CORE_EV_RESULT, NULL), 2); /* waiters learn of it */
    core_result_view_t rv;
    ck_assert_jobq_ok(core_result(c, &ready, &rv));
    ck_assert_int_eq(rv.status, JOBQ_STATUS_DEAD);
    ck_assert_int_eq(memcmp(rv.error, "deleted", rv.error_len), 0);
    ck_assert_jobq_err(core_delete(c, &reserved, 2), JOBQ_ESTATE);
    ck_assert_int_eq(s_state(c, &reserved), JOBQ_STATE_RESERVED);
    ck_assert_jobq_ok(core_delete(c, &dead, 2));
    ck_assert_int_eq(s_state(c, &dead), JOBQ_STATE_DEAD); /* its result is retained */
    ck_assert_jobq_ok(core_delete(c, &done, 2));
    ck_assert_jobq_err(core_result(c, &done, &rv), JOBQ_ENOTFOUND);
    ck_assert_jobq_err(core_delete(c, &done, 2), JOBQ_ENOTFOUND);
    core_queue_stats_t qs;
    core_queue_stats(c, "q", 1, &qs);
    ck_assert_uint_eq(qs.jobs, 1);
    ck_assert_uint_eq(qs.deleted, 3);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_unique_key_returns_the_first_job_until_its_result_is_dropped)
{
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.result_age_ms = 1000;
    core_t *c = s_new_cfg(0, 0, &cfg);
    jobq_job_t j = s_job("q", "one");
    j.unique = "K";
    j.unique_len = 1;
    jobq_id_t first = s_put_job(c, &j, 0), got;
    jobq_job_state st;
    j.payload = "two";
    jobq_id_generate(&j.id);
    ck_assert_jobq_err(core_submit(c, &j, PRODUCER, 1, &got, &st), JOBQ_EDUPLICATE);
    ck_assert(s_id_eq(&got, &first));
    ck_assert_int_eq(st, JOBQ_STATE_READY);
    jobq_job_t other = j;
    other.queue = "other";
    other.queue_len = 5;
    ck_assert_jobq_ok(core_submit(c, &other, PRODUCER, 1, NULL, NULL)); /* keys are per queue */

    core_worker_credit(c, W1, 1, 1);
    core_job_view_t v;
    s_take(c, W1, "q", 1, 1, &v);
    jobq_id_generate(&j.id);
    ck_assert_jobq_err(core_submit(c, &j, PRODUCER, 2, &got, &st), JOBQ_EDUPLICATE);
    ck_assert_int_eq(st, JOBQ_STATE_RESERVED);
    ck_assert_jobq_ok(s_finish(c, W1, &first, 1, JOBQ_STATUS_DONE, NULL, 3));
    jobq_id_generate(&j.id);
    ck_assert_jobq_err(core_submit(c, &j, PRODUCER, 4, &got, &st), JOBQ_EDUPLICATE);
    ck_assert(s_id_eq(&got, &first));
    ck_assert_int_eq(st, JOBQ_STATE_DONE);
    core_tick(c, 1003); /* retention drops the result and frees the key */
    jobq_id_generate(&j.id);
    ck_assert_jobq_ok(core_submit(c, &j, PRODUCER, 1003, &got, &st));
    ck_assert(s_id_eq(&got, &j.id));
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_duplicate_id_returns_the_existing_job)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    jobq_id_generate(&j.id);
    jobq_id_t got;
    jobq_job_state st;
    ck_assert_jobq_ok(core_submit(c, &j, PRODUCER, 0, &got, &st));
    ck_assert(s_id_eq(&got, &j.id));
    ck_assert_jobq_err(core_submit(c, &j, PRODUCER, 0, &got, &st), JOBQ_EDUPLICATE);
    ck_assert_int_eq(st, JOBQ_STATE_READY);
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    s_finish(c, W1, &j.id, 1, JOBQ_STATUS_DONE, NULL, 1);
    ck_assert_jobq_err(core_submit(c, &j, PRODUCER, 2, &got, &st), JOBQ_EDUPLICATE);
    ck_assert_int_eq(st, JOBQ_STATE_DONE);
    core_queue_stats_t qs;
    core_queue_stats(c, "q", 1, &qs);
    ck_assert_uint_eq(qs.submitted, 1);
    core_stats_t cs;
    core_stats(c, &cs);
    ck_assert_uint_eq(cs.duplicates, 2);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_queue_refuses_past_max_jobs_and_max_bytes)
{
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.max_jobs = 3;
    cfg.max_bytes = 1000;
    cfg.max_queues = 2;
    core_t *c = s_new_cfg(0, 0, &cfg);
    for (int i = 0; i < 3; i++)
        s_put(c, "q", "x", 1, i == 0 ? 50 : 0, 0);
    jobq_job_t j = s_job("q", "x");
    ck_assert_jobq_err(core_submit(c, &j, PRODUCER, 0, NULL, NULL), JOBQ_EQUEUEFULL);

    static char big[1001];
    memset(big, 'b', sizeof big);
    j = s_job("bytes", "");
    j.payload = big;
    j.payload_len = 600;
    ck_assert_jobq_ok(core_submit(c, &j, PRODUCER, 0, NULL, NULL));
    j.payload_len = 399;
    j.unique = "u";
    j.unique_len = 1; /* the key counts too: exactly 1000 bytes */
    ck_assert_jobq_ok(core_submit(c, &j, PRODUCER, 0, NULL, NULL));
    j.payload_len = 1;
    j.unique = NULL;
    j.unique_len = 0;
    ck_assert_jobq_err(core_submit(c, &j, PRODUCER, 0, NULL, NULL), JOBQ_EQUEUEFULL);
    j = s_job("third", "x"); /* max_queues is 2 */
    ck_assert_jobq_err(core_submit(c, &j, PRODUCER, 0, NULL, NULL), JOBQ_EQUEUEFULL);
    ck_assert_jobq_err(core_pause(c, "third", 5, CORE_FOREVER, 0), JOBQ_EQUEUEFULL);

    /* Finishing a job frees its slot; a DEAD job keeps it. */
    core_worker_credit(c, W1, 2, 0);
    core_job_view_t v[2];
    ck_assert_uint_eq(s_take(c, W1, "q", 0, 2, v), 2);
    s_finish(c, W1, &v[0].id, 1, JOBQ_STATUS_DONE, NULL, 1);
    s_finish(c, W1, &v[1].id, 1, JOBQ_STATUS_FAILED, NULL, 1);
    j = s_job("q", "x");
    ck_assert_jobq_ok(core_submit(c, &j, PRODUCER, 1, NULL, NULL));
    ck_assert_jobq_err(core_submit(c, &j, PRODUCER, 1, NULL, NULL), JOBQ_EQUEUEFULL);
    core_stats_t cs;
    core_stats(c, &cs);
    ck_assert_uint_eq(cs.refused_full, 5);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_pause_stops_hand_outs_until_resumed_or_over)
{
    core_t *c = s_new();
    s_put(c, "q", "a", 1, 0, 0);
    s_put(c, "q", "b", 1, 0, 0);
    core_worker_credit(c, W1, 5, 0);
    s_events(c, CORE_EV_READY, NULL);
    ck_assert_jobq_ok(core_pause(c, "q", 1, CORE_FOREVER, 0));
    core_job_view_t v[2];
    ck_assert_uint_eq(s_take(c, W1, "q", 0, 5, v), 0);
    core_queue_stats_t qs;
    core_queue_stats(c, "q", 1, &qs);
    ck_assert_int_eq(qs.paused, 1);
    ck_assert_int_eq(core_tick(c, 100), CORE_FOREVER);
    ck_assert_jobq_ok(core_resume(c, "q", 1, 100));
    ck_assert_int_eq(s_events(c, CORE_EV_READY, "q"), 1);
    ck_assert_uint_eq(s_take(c, W1, "q", 100, 1, v), 1);

    ck_assert_jobq_ok(core_pause(c, "q", 1, 600, 100));
    ck_assert_uint_eq(s_take(c, W1, "q", 599, 5, v), 0);
    ck_assert_int_le(core_tick(c, 599), 600);
    ck_assert_int_eq(s_events(c, CORE_EV_READY, NULL), 0);
    core_tick(c, 600);
    ck_assert_int_eq(s_events(c, CORE_EV_READY, "q"), 1);
    ck_assert_uint_eq(s_take(c, W1, "q", 600, 5, v), 1);
    ck_assert_jobq_err(core_resume(c, "nosuch", 6, 600), JOBQ_ENOTFOUND);
    ck_assert_jobq_ok(core_pause(c, "later", 5, CORE_FOREVER, 600)); /* created paused */
    s_put(c, "later", "x", 1, 0, 600);
    ck_assert_uint_eq(s_take(c, W1, "later", 600, 5, v), 0);
    ck_assert_jobq_ok(core_pause(c, "later", 5, 600, 600)); /* until <= now resumes */
    ck_assert_uint_eq(s_take(c, W1, "later", 600, 5, v), 1);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_join_counts_unfinished_jobs_and_signals_zero_once)
{
    core_t *c = s_new();
    uint64_t n = 9;
    ck_assert_jobq_ok(core_queue_unfinished(c, "never", 5, &n));
    ck_assert_uint_eq(n, 0);
    jobq_id_t delayed = s_put(c, "q", "d", 1, 100, 0);
    jobq_id_t a = s_put(c, "q", "a", 1, 0, 0), b = s_put(c, "q", "b", 1, 0, 0);
    core_queue_unfinished(c, "q", 1, &n);
    ck_assert_uint_eq(n, 3);
    core_worker_credit(c, W1, 2, 0);
    core_job_view_t v[2];
    s_take(c, W1, "q", 0, 2, v);
    core_queue_unfinished(c, "q", 1, &n);
    ck_assert_uint_eq(n, 3);
    s_finish(c, W1, &a, 1, JOBQ_STATUS_DONE, NULL, 1);
    s_finish(c, W1, &b, 1, JOBQ_STATUS_FAILED, NULL, 1); /* DEAD counts as finished */
    core_queue_unfinished(c, "q", 1, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(s_events(c, CORE_EV_JOIN, NULL), 0);
    core_delete(c, &delayed, 2);
    core_queue_unfinished(c, "q", 1, &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(s_events(c, CORE_EV_JOIN, "q"), 1);
    core_kick(c, "q", 1, 10, 3, NULL);
    core_queue_unfinished(c, "q", 1, &n);
    ck_assert_uint_eq(n, 1);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_results_are_kept_until_taken_and_retention_drops_them)
{
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.results_max = 2;
    cfg.result_age_ms = 10000;
    core_t *c = s_new_cfg(0, 0, &cfg);
    core_worker_credit(c, W1, 10, 0);
    jobq_id_t ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = s_put(c, "q", "x", 1, 0, 100 * i);
        core_job_view_t v;
        s_take(c, W1, "q", 100 * i, 1, &v);
        s_finish(c, W1, &ids[i], 1, JOBQ_STATUS_DONE, NULL, 100 * i);
    }
    core_result_view_t rv;
    /* The third result is stored; retention applies from the next call on. */
    ck_assert_jobq_ok(core_result(c, &ids[0], &rv));
    core_tick(c, 300);
    ck_assert_jobq_err(core_result(c, &ids[0], &rv), JOBQ_ENOTFOUND);
    ck_assert_jobq_ok(core_take_result(c, &ids[2], &rv));
    ck_assert_int_eq(rv.delivered, 0);
    ck_assert_jobq_ok(core_take_result(c, &ids[2], &rv));
    ck_assert_int_eq(rv.delivered, 1);
    ck_assert_jobq_ok(core_result(c, &ids[2], &rv)); /* still there after delivery */
    core_tick(c, 100 + 9999);
    ck_assert_jobq_ok(core_result(c, &ids[1], &rv));
    core_tick(c, 100 + 10000);
    ck_assert_jobq_err(core_result(c, &ids[1], &rv), JOBQ_ENOTFOUND);
    ck_assert_jobq_ok(core_result(c, &ids[2], &rv));
    core_tick(c, 200 + 10000);
    ck_assert_jobq_err(core_result(c, &ids[2], &rv), JOBQ_ENOTFOUND);
    core_stats_t cs;
    core_stats(c, &cs);
    ck_assert_uint_eq(cs.results, 0);
    CORE_OK(c);
    core_destroy(&c);

    /* Retention by bytes. */
    core_config_init(&cfg);
    cfg.result_bytes_max = 10;
    c = s_new_cfg(0, 0, &cfg);
    core_worker_credit(c, W1, 10, 0);
    jobq_result_t r;
    jobq_result_init(&r);
    r.output = "12345678";
    r.output_len = 8;
    for (int i = 0; i < 2; i++) {
        ids[i] = s_put(c, "q", "x", 1, 0, 0);
        core_job_view_t v;
        s_take(c, W1, "q", 0, 1, &v);
        r.id = ids[i];
        r.attempt = 1;
        ck_assert_jobq_ok(core_complete(c, W1, &r, 0));
    }
    core_tick(c, 0);
    ck_assert_jobq_err(core_result(c, &ids[0], &rv), JOBQ_ENOTFOUND);
    ck_assert_jobq_ok(core_result(c, &ids[1], &rv));
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_peek_and_list_show_jobs_in_each_state)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "payload");
    j.priority = 9;
    j.ttr_ms = 1234;
    j.max_attempts = 4;
    j.unique = "key";
    j.unique_len = 3;
    jobq_id_t id = s_put_job(c, &j, 0);
    core_job_view_t v;
    ck_assert_jobq_ok(core_peek(c, &id, &v));
    ck_assert_uint_eq(v.priority, 9);
    ck_assert_uint_eq(v.ttr_ms, 1234);
    ck_assert_uint_eq(v.max_attempts, 4);
    ck_assert_uint_eq(v.unique_len, 3);
    ck_assert_int_eq(memcmp(v.unique, "key", 3), 0);
    ck_assert_uint_eq(v.submitter, PRODUCER);
    ck_assert_uint_eq(v.queue_len, 1);
    jobq_id_t unknown;
    jobq_id_generate(&unknown);
    ck_assert_jobq_err(core_peek(c, &unknown, &v), JOBQ_ENOTFOUND);

    s_put(c, "q", "p2", 2, 0, 0);
    s_put(c, "q", "p1", 1, 0, 0);
    s_put(c, "q", "d1", 1, 50, 0);
    s_put(c, "q", "d2", 1, 20, 0);
    jobq_id_t dead[2];
    s_make_dead(c, "q", 2, dead, 0);
    core_job_view_t out[8];
    size_t n;
    ck_assert_jobq_ok(core_list(c, "q", 1, JOBQ_STATE_READY, 8, out, &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(out[0].priority, 1);
    ck_assert_uint_eq(out[1].priority, 2);
    ck_assert_uint_eq(out[2].priority, 9);
    ck_assert_jobq_ok(core_list(c, "q", 1, JOBQ_STATE_READY, 1, out, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_jobq_ok(core_list(c, "q", 1, JOBQ_STATE_DELAYED, 8, out, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(out[0].ready_at_ms, 20); /* the soonest first */
    ck_assert_jobq_ok(core_list(c, "q", 1, JOBQ_STATE_DEAD, 8, out, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert(s_id_eq(&out[0].id, &dead[0]));
    ck_assert(s_id_eq(&out[1].id, &dead[1]));
    ck_assert_jobq_err(core_list(c, "q", 1, JOBQ_STATE_RESERVED, 8, out, &n), JOBQ_EINVAL);
    ck_assert_jobq_ok(core_list(c, "nosuch", 6, JOBQ_STATE_READY, 8, out, &n));
    ck_assert_uint_eq(n, 0);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_stats_count_per_queue_and_per_worker)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "abc");
    j.max_attempts = 2;
    for (int i = 0; i < 4; i++)
        s_put_job(c, &j, 0);
    s_put(c, "r", "x", 1, 10, 0);
    core_worker_credit(c, W1, 4, 0);
    core_job_view_t v[4];
    s_take(c, W1, "q", 0, 4, v);
    s_finish(c, W1, &v[0].id, 1, JOBQ_STATUS_DONE, NULL, 1);
    s_finish(c, W1, &v[1].id, 1, JOBQ_STATUS_FAILED, NULL, 1);
    core_release(c, W1, &v[2].id, 1, 0, 1);
    core_queue_stats_t qs;
    ck_assert_jobq_ok(core_queue_stats(c, "q", 1, &qs));
    ck_assert_uint_eq(qs.submitted, 4);
    ck_assert_uint_eq(qs.ready, 2);
    ck_assert_uint_eq(qs.reserved, 1);
    ck_assert_uint_eq(qs.done, 1);
    ck_assert_uint_eq(qs.completed, 2);
    ck_assert_uint_eq(qs.failed, 1);
    ck_assert_uint_eq(qs.retried, 1);
    ck_assert_uint_eq(qs.released, 1);
    ck_assert_uint_eq(qs.bytes, 9);
    ck_assert_uint_eq(qs.unfinished, 3);
    ck_assert_uint_eq(core_queue_count(c), 2);
    ck_assert_jobq_ok(core_queue_stats_at(c, 1, &qs));
    ck_assert_uint_eq(qs.delayed, 1);
    ck_assert_int_eq(memcmp(qs.name, "r", 1), 0);
    ck_assert_jobq_err(core_queue_stats_at(c, 2, &qs), JOBQ_ENOTFOUND);
    ck_assert_jobq_err(core_queue_stats(c, "zz", 2, &qs), JOBQ_ENOTFOUND);
    core_worker_stats_t ws;
    ck_assert_uint_eq(core_worker_count(c), 1);
    ck_assert_jobq_ok(core_worker_stats_at(c, 0, &ws));
    ck_assert_uint_eq(ws.worker, W1);
    ck_assert_uint_eq(ws.delivered, 4);
    ck_assert_uint_eq(ws.done, 1);
    ck_assert_uint_eq(ws.failed, 1);
    ck_assert_uint_eq(ws.released, 1);
    ck_assert_uint_eq(ws.held, 1);
    core_stats_t cs;
    core_stats(c, &cs);
    ck_assert_uint_eq(cs.jobs, 4);
    ck_assert_uint_eq(cs.reserved, 1);
    ck_assert_uint_eq(cs.delayed, 1);
    ck_assert_uint_eq(cs.results, 1);
    ck_assert_uint_eq(cs.queues, 2);
    ck_assert_uint_eq(cs.workers, 1);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_bad_arguments_are_answered_with_error_codes)
{
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.max_queues = 0;
    ck_assert_ptr_null(core_new(&cfg));
    core_config_init(&cfg);
    cfg.backoff_jitter_pct = 101;
    ck_assert_ptr_null(core_new(&cfg));
    core_config_init(&cfg);
    cfg.backoff_max_ms = cfg.backoff_base_ms - 1;
    ck_assert_ptr_null(core_new(&cfg));

    core_t *c = s_new();
    static char big[JOBQ_PAYLOAD_MAX + 1];
    jobq_job_t j = s_job("q", "x");
    ck_assert_jobq_err(core_submit(c, NULL, 0, 0, NULL, NULL), JOBQ_EINVAL);
    j.queue = NULL;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_EINVAL);
    j = s_job("q", "x");
    j.queue_len = 0;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_EINVAL);
    j = s_job("q", "x");
    j.queue = big;
    j.queue_len = JOBQ_QUEUE_NAME_MAX + 1;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_ETOOBIG);
    j = s_job("q", "x");
    j.payload = big;
    j.payload_len = JOBQ_PAYLOAD_MAX + 1;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_ETOOBIG);
    j.payload = NULL;
    j.payload_len = 3;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_EINVAL);
    j = s_job("q", "x");
    j.unique = big;
    j.unique_len = JOBQ_UNIQUE_KEY_MAX + 1;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_ETOOBIG);
    j = s_job("q", "x");
    j.max_attempts = 0;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_EINVAL);
    j.max_attempts = CORE_ATTEMPTS_MAX + 1;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_EINVAL);
    j.max_attempts = 2;
    j.attempt = 2;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_EINVAL);
    j = s_job("q", "x");
    j.ttr_ms = 0;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_EINVAL);
    j = s_job("q", "x");
    j.delay_ms = UINT64_MAX;
    ck_assert_jobq_err(core_submit(c, &j, 0, 0, NULL, NULL), JOBQ_EINVAL);

    core_worker_credit(c, W1, 1, 0);
    static core_name_t many[CORE_RESERVE_QUEUES_MAX + 1];
    for (size_t i = 0; i <= CORE_RESERVE_QUEUES_MAX; i++)
        many[i] = (core_name_t){"q", 1};
    core_job_view_t v;
    size_t n;
    ck_assert_jobq_err(core_reserve(c, W1, many, CORE_RESERVE_QUEUES_MAX + 1, 0, 1, &v, &n),
                       JOBQ_EINVAL);
    ck_assert_jobq_err(core_reserve(c, W1, &(core_name_t){"q", 0}, 1, 0, 1, &v, &n), JOBQ_EINVAL);
    ck_assert_jobq_err(core_reserve(c, W1, NULL, 1, 0, 1, &v, &n), JOBQ_EINVAL);
    ck_assert_jobq_err(core_reserve(c, W1, many, 1, 0, 1, NULL, &n), JOBQ_EINVAL);

    jobq_id_t id = s_put(c, "q", "x", 1, 0, 0);
    s_take(c, W1, "q", 0, 1, &v);
    jobq_result_t r;
    jobq_result_init(&r);
    r.id = id;
    r.attempt = 1;
    ck_assert_jobq_err(core_complete(c, W1, NULL, 0), JOBQ_EINVAL);
    r.status = (jobq_status)99;
    ck_assert_jobq_err(core_complete(c, W1, &r, 0), JOBQ_EINVAL);
    r.status = JOBQ_STATUS_DONE;
    r.output = big;
    r.output_len = JOBQ_PAYLOAD_MAX + 1;
    ck_assert_jobq_err(core_complete(c, W1, &r, 0), JOBQ_ETOOBIG);
    r.output = NULL;
    r.output_len = 1;
    ck_assert_jobq_err(core_complete(c, W1, &r, 0), JOBQ_EINVAL);
    r.output_len = 0;
    r.error = big;
    r.error_len = JOBQ_ERROR_TEXT_MAX + 1;
    ck_assert_jobq_err(core_complete(c, W1, &r, 0), JOBQ_ETOOBIG);
    ck_assert_int_eq(s_state(c, &id), JOBQ_STATE_RESERVED); /* untouched */
    ck_assert_jobq_err(core_release(c, W1, &id, 1, UINT64_MAX, 0), JOBQ_EINVAL);
    ck_assert_jobq_err(core_release_worker(c, W1, 0, (core_release_reason)9, NULL), JOBQ_EINVAL);
    ck_assert_jobq_err(core_bury(c, &id, (jobq_status)42, NULL, 0, 0), JOBQ_EINVAL);
    ck_assert_jobq_err(core_bury(c, &id, JOBQ_STATUS_FAILED, big, JOBQ_ERROR_TEXT_MAX + 1, 0),
                       JOBQ_ETOOBIG);
    ck_assert_jobq_err(core_bury(c, &id, JOBQ_STATUS_FAILED, NULL, 0, 0), JOBQ_ESTATE);
    ck_assert_jobq_err(core_pause(c, big, JOBQ_QUEUE_NAME_MAX + 1, CORE_FOREVER, 0), JOBQ_EINVAL);
    ck_assert_jobq_err(core_kick(c, NULL, 1, 1, 0, NULL), JOBQ_EINVAL);
    ck_assert_jobq_err(core_delete(c, NULL, 0), JOBQ_EINVAL);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_bury_moves_a_waiting_job_to_the_dead_set)
{
    core_t *c = s_new();
    jobq_id_t delayed = s_put(c, "q", "x", 1, 100, 0), ready = s_put(c, "q", "y", 1, 0, 0);
    ck_assert_jobq_ok(core_bury(c, &delayed, JOBQ_STATUS_FAILED, "operator", 8, 1));
    ck_assert_jobq_ok(core_bury(c, &ready, JOBQ_STATUS_CRASHED, NULL, 0, 1));
    core_job_view_t v;
    core_peek(c, &delayed, &v);
    ck_assert_int_eq(v.state, JOBQ_STATE_DEAD);
    ck_assert_int_eq(v.last_status, JOBQ_STATUS_FAILED);
    ck_assert_jobq_err(core_bury(c, &ready, JOBQ_STATUS_FAILED, NULL, 0, 1), JOBQ_ESTATE);
    ck_assert_int_eq(core_next_deadline(c), CORE_FOREVER);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_submit_restores_a_job_with_its_used_attempts)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    jobq_id_generate(&j.id);
    j.max_attempts = 3;
    j.attempt = 2; /* a journal restoring a job that was delivered twice */
    s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    ck_assert_uint_eq(v.attempt, 3);
    s_finish(c, W1, &j.id, 3, JOBQ_STATUS_FAILED, NULL, 1);
    ck_assert_int_eq(s_state(c, &j.id), JOBQ_STATE_DEAD);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_delivery_counter_exhaustion_buries_instead_of_wrapping)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    jobq_id_generate(&j.id);
    j.max_attempts = CORE_ATTEMPTS_MAX;
    j.attempt = CORE_ATTEMPTS_MAX - 2;
    s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    for (uint32_t a = CORE_ATTEMPTS_MAX - 1; a <= CORE_ATTEMPTS_MAX; a++) {
        ck_assert_uint_eq(s_take(c, W1, "q", 0, 1, &v), 1);
        ck_assert_uint_eq(v.attempt, a);
        ck_assert_jobq_ok(core_release(c, W1, &j.id, a, 0, 0));
    }
    ck_assert_uint_eq(s_take(c, W1, "q", 0, 1, &v), 0);
    ck_assert_jobq_ok(core_peek(c, &j.id, &v));
    ck_assert_int_eq(v.state, JOBQ_STATE_DEAD);
    ck_assert_int_eq(memcmp(v.error, "delivery counter exhausted", v.error_len), 0);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_next_deadline_is_the_soonest_of_delays_leases_and_pauses)
{
    core_t *c = s_new();
    ck_assert_int_eq(core_next_deadline(c), CORE_FOREVER);
    s_put(c, "q", "x", 1, 500, 0);
    ck_assert_int_eq(core_next_deadline(c), 500);
    jobq_job_t j = s_job("q", "y");
    j.ttr_ms = 300;
    s_put_job(c, &j, 0);
    core_worker_credit(c, W1, 1, 0);
    core_job_view_t v;
    s_take(c, W1, "q", 0, 1, &v);
    ck_assert_int_eq(core_next_deadline(c), 300);
    core_pause(c, "p", 1, 200, 0);
    ck_assert_int_eq(core_tick(c, 100), 200);
    ck_assert_int_eq(core_tick(c, 200), 300);
    ck_assert_int_eq(core_tick(c, 300), 500);
    ck_assert_int_eq(core_tick(c, 500), CORE_FOREVER);
    /* Time never goes back: an earlier now counts as the latest seen. */
    ck_assert_int_eq(core_tick(c, 10), CORE_FOREVER);
    s_put(c, "q", "z", 1, 50, 10);
    ck_assert_int_eq(core_next_deadline(c), 550);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_ready_event_fires_when_a_queue_gets_jobs_again)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    j.ttr_ms = 10;
    j.max_attempts = 2;
    s_put_job(c, &j, 0);
    s_put_job(c, &j, 0);
    ck_assert_int_eq(s_events(c, CORE_EV_READY, "q"), 1); /* once, not per job */
    core_worker_credit(c, W1, 2, 0);
    core_job_view_t v[2];
    s_take(c, W1, "q", 0, 2, v);
    core_tick(c, 10);
    ck_assert_int_eq(s_events(c, CORE_EV_READY, "q"), 1);
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_destroy_frees_jobs_in_every_state)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    j.unique = "k";
    j.unique_len = 1;
    s_put_job(c, &j, 0);
    s_put(c, "q", "d", 1, 100, 0);
    jobq_id_t dead;
    s_make_dead(c, "q", 1, &dead, 0);
    jobq_id_t done = s_put(c, "q", "r", 0, 0, 0);
    s_put(c, "q", "s", 0, 0, 0);
    core_worker_credit(c, W1, 2, 0);
    core_job_view_t v[2];
    s_take(c, W1, "q", 0, 2, v);
    s_finish(c, W1, &done, 1, JOBQ_STATUS_DONE, NULL, 0);
    core_pause(c, "p", 1, 100, 0);
    CORE_OK(c);
    core_destroy(&c); /* LeakSanitizer checks this in the sanitizer build */
    ck_assert_ptr_null(c);
}
END_TEST

/* Runs the same mixed workload on two cores, one call per item on the first
 * and batch calls on the second, and expects identical outcomes. */
START_TEST(test_batch_calls_behave_like_one_call_per_item)
{
    enum { N = 150 }; /* crosses the 64-item prefetch rounds */
    core_t *one = s_new(), *many = s_new();
    static jobq_job_t jobs[N];
    static jobq_id_t ids[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = s_job(i % 3 ? "a" : "b", "x");
        jobq_id_generate(&jobs[i].id);
        jobs[i].max_attempts = 2;
    }
    jobs[10].id = jobs[5].id;                /* a duplicate inside the batch */
    jobs[20].max_attempts = 0;               /* invalid */
    jobs[31].unique = jobs[32].unique = "u"; /* the second is a duplicate key */
    jobs[31].unique_len = jobs[32].unique_len = 1;
    jobs[40].payload_len = JOBQ_PAYLOAD_MAX + 1; /* too big */
    int rc_one[N], rc_many[N];
    jobq_job_state st_one[N], st_many[N];
    for (int i = 0; i < N; i++)
        rc_one[i] = core_submit(one, &jobs[i], PRODUCER, 10, &ids[i], &st_one[i]);
    jobq_id_t ids_many[N];
    core_submit_batch(many, jobs, N, PRODUCER, 10, rc_many, ids_many, st_many);
    int differ = 0;
    for (int i = 0; i < N; i++)
        differ +=
            rc_one[i] != rc_many[i] ||
            (rc_one[i] == JOBQ_OK && (!s_id_eq(&ids[i], &ids_many[i]) || st_one[i] != st_many[i]));
    ck_assert_int_eq(differ, 0);
    ck_assert_jobq_err(rc_many[10], JOBQ_EDUPLICATE);
    ck_assert_jobq_err(rc_many[20], JOBQ_EINVAL);
    ck_assert_jobq_err(rc_many[32], JOBQ_EDUPLICATE);
    ck_assert_jobq_err(rc_many[40], JOBQ_ETOOBIG);

    /* Reserve everything on both, then complete in one batch: a mix of DONE,
     * FAILED, a stale attempt, another worker's job, an unknown id, a result
     * too big and a second report of the same job. */
    core_t *cores[2] = {one, many};
    static core_job_view_t v[2][N];
    size_t nv[2];
    core_name_t qs[] = {{"a", 1}, {"b", 1}};
    for (int k = 0; k < 2; k++) {
        core_worker_credit(cores[k], W1, N, 10);
        core_worker_credit(cores[k], W2, 1, 10);
        size_t n2;
        core_job_view_t w2v;
        ck_assert_jobq_ok(core_reserve(cores[k], W2, qs, 2, 10, 1, &w2v, &n2));
        ck_assert_jobq_ok(core_reserve(cores[k], W1, qs, 2, 10, N, v[k], &nv[k]));
    }
    ck_assert_uint_eq(nv[0], nv[1]);
    static jobq_result_t res[N + 4];
    size_t nr = 0;
    for (size_t i = 0; i < nv[0]; i++) {
        jobq_result_init(&res[nr]);
        res[nr].id = v[0][i].id;
        res[nr].attempt = i == 3 ? 2 : 1;
        res[nr].status = i % 4 == 1 ? JOBQ_STATUS_FAILED : JOBQ_STATUS_DONE;
        nr++;
    }
    jobq_result_init(&res[nr]);
    res[nr++] = res[0]; /* reported twice */
    jobq_result_init(&res[nr]);
    jobq_id_generate(&res[nr++].id); /* unknown */
    jobq_result_init(&res[nr]);
    res[nr] = res[1];
    res[nr].output_len = JOBQ_PAYLOAD_MAX + 1;
    res[nr++].output = "x";
    static int rcs[2][N + 4];
    for (size_t i = 0; i < nr; i++)
        rcs[0][i] = core_complete(one, W1, &res[i], 20);
    core_complete_batch(many, W1, res, nr, 20, rcs[1]);
    differ = 0;
    for (size_t i = 0; i < nr; i++)
        differ += rcs[0][i] != rcs[1][i];
    ck_assert_int_eq(differ, 0);
    ck_assert_jobq_err(rcs[1][3], JOBQ_ESTALE);
    ck_assert_jobq_err(rcs[1][nr - 3], JOBQ_ESTALE);
    ck_assert_jobq_err(rcs[1][nr - 2], JOBQ_ENOTFOUND);
    ck_assert_jobq_err(rcs[1][nr - 1], JOBQ_ETOOBIG);
    for (int k = 0; k < 2; k++) {
        core_queue_stats_t a, b;
        core_queue_stats(cores[k], "a", 1, &a);
        core_queue_stats(cores[k], "b", 1, &b);
        ck_assert_uint_gt(a.done + b.done, 0);
        CORE_OK(cores[k]);
    }
    core_queue_stats_t a1, a2;
    core_queue_stats(one, "a", 1, &a1);
    core_queue_stats(many, "a", 1, &a2);
    ck_assert_uint_eq(a1.done, a2.done);
    ck_assert_uint_eq(a1.ready, a2.ready);
    ck_assert_uint_eq(a1.reserved, a2.reserved);
    core_destroy(&one);
    core_destroy(&many);
}
END_TEST

START_TEST(test_core_assigned_ids_are_unique)
{
    core_t *c = s_new();
    jobq_job_t j = s_job("q", "x");
    static int rcs[20000];
    static jobq_id_t ids[20000];
    static jobq_job_t jobs[20000];
    for (int i = 0; i < 20000; i++)
        jobs[i] = j;
    core_submit_batch(c, jobs, 20000, PRODUCER, 0, rcs, ids, NULL);
    int failed = 0;
    for (int i = 0; i < 20000; i++)
        failed += rcs[i] != JOBQ_OK || jobq_id_is_zero(&ids[i]);
    ck_assert_int_eq(failed, 0);
    core_stats_t cs;
    core_stats(c, &cs);
    ck_assert_uint_eq(cs.jobs, 20000); /* the index would refuse a repeated id */
    CORE_OK(c);
    core_destroy(&c);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_job_runs_from_submit_to_done_and_its_result_is_announced);
    tcase_add_test(tc, test_delayed_job_is_not_ready_early_and_is_ready_on_time);
    tcase_add_test(tc, test_mixed_priority_backlog_comes_out_by_priority_then_fifo);
    tcase_add_test(tc, test_job_back_from_a_retry_goes_behind_jobs_already_ready);
    tcase_add_test(tc, test_reserve_over_queues_takes_lowest_priority_then_alternates_ties);
    tcase_add_test(tc, test_expired_lease_returns_job_to_ready_and_counts_the_attempt);
    tcase_add_test(tc, test_expired_lease_emits_an_expired_event_naming_its_worker);
    tcase_add_test(tc, test_complete_is_fenced_by_attempt_and_worker);
    tcase_add_test(tc, test_extend_renews_the_lease);
    tcase_add_test(tc, test_credit_is_never_exceeded);
    tcase_add_test(tc, test_failed_attempts_retry_with_growing_backoff_and_bounded_jitter);
    tcase_add_test(tc, test_zero_backoff_retries_at_once);
    tcase_add_test(tc, test_a_jobs_own_backoff_overrides_the_cores_and_keeps_its_bytes);
    tcase_add_test(tc, test_job_dies_after_its_last_attempt_with_the_last_error);
    tcase_add_test(tc, test_dead_verdict_buries_with_attempts_left);
    tcase_add_test(tc, test_release_worker_hands_back_everything_it_holds);
    tcase_add_test(tc, test_release_gives_a_job_back_without_using_an_attempt);
    tcase_add_test(tc, test_kick_brings_dead_jobs_back_oldest_first_with_attempts_reset);
    tcase_add_test(tc, test_delete_works_in_every_state_but_reserved);
    tcase_add_test(tc, test_unique_key_returns_the_first_job_until_its_result_is_dropped);
    tcase_add_test(tc, test_duplicate_id_returns_the_existing_job);
    tcase_add_test(tc, test_queue_refuses_past_max_jobs_and_max_bytes);
    tcase_add_test(tc, test_pause_stops_hand_outs_until_resumed_or_over);
    tcase_add_test(tc, test_join_counts_unfinished_jobs_and_signals_zero_once);
    tcase_add_test(tc, test_results_are_kept_until_taken_and_retention_drops_them);
    tcase_add_test(tc, test_peek_and_list_show_jobs_in_each_state);
    tcase_add_test(tc, test_stats_count_per_queue_and_per_worker);
    tcase_add_test(tc, test_bad_arguments_are_answered_with_error_codes);
    tcase_add_test(tc, test_bury_moves_a_waiting_job_to_the_dead_set);
    tcase_add_test(tc, test_submit_restores_a_job_with_its_used_attempts);
    tcase_add_test(tc, test_delivery_counter_exhaustion_buries_instead_of_wrapping);
    tcase_add_test(tc, test_next_deadline_is_the_soonest_of_delays_leases_and_pauses);
    tcase_add_test(tc, test_ready_event_fires_when_a_queue_gets_jobs_again);
    tcase_add_test(tc, test_destroy_frees_jobs_in_every_state);
    tcase_add_test(tc, test_batch_calls_behave_like_one_call_per_item);
    tcase_add_test(tc, test_core_assigned_ids_are_unique);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
