/*
 * tests/unit/test_core_journal.c: what the core offers a journal
 * (broker/core_journal.c): the change hook reports every transition kind in
 * order; core_unsubmit takes a fresh submit back without a trace;
 * core_restore_result brings a result (and its unique key) back;
 * core_restore_attempts sets the counters; the iterators see every live job,
 * RESERVED included, and every retained result but those of DEAD jobs.
 */
#include "broker/core.h"
#include "jobq_test.h"

#include <string.h>

#define W1 101u

typedef struct seen {
    core_change_kind kinds[64];
    jobq_job_state states[64];
    int n;
} seen_t;

static void
s_hook(void *arg, const core_change_t *ch)
{
    seen_t *s = arg;
    if (s->n < 64) {
        s->kinds[s->n] = ch->kind;
        s->states[s->n] = ch->job ? ch->job->state : (jobq_job_state)-1;
        s->n++;
    }
}

static core_t *
s_core(void)
{
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.seed = 7;
    cfg.backoff_base_ms = 0;
    core_t *c = core_new(&cfg);
    ck_assert_ptr_nonnull(c);
    return c;
}

static jobq_id_t
s_put(core_t *c, const char *payload, const char *unique, uint32_t max_attempts)
{
    jobq_job_t j;
    jobq_job_init(&j);
    j.queue = "q";
    j.queue_len = 1;
    j.payload = payload;
    j.payload_len = (uint32_t)strlen(payload);
    j.max_attempts = max_attempts;
    if (unique) {
        j.unique = unique;
        j.unique_len = (uint32_t)strlen(unique);
    }
    jobq_id_t id;
    ck_assert_jobq_ok(core_submit(c, &j, 1, 1000, &id, NULL));
    return id;
}

static void
s_check(core_t *c)
{
    const char *why = NULL;
    ck_assert_msg(core_check(c, &why) == 0, "core_check: %s", why);
}

START_TEST(test_the_hook_sees_submit_delivery_done_dead_delete_forget_and_pause_in_order)
{
    core_t *c = s_core();
    seen_t s = {0};
    core_set_hook(c, s_hook, &s);
    jobq_id_t a = s_put(c, "a", NULL, 1);
    ck_assert_jobq_ok(core_worker_credit(c, W1, 10, 1000));
    core_name_t q = {"q", 1};
    core_job_view_t v;
    size_t n;
    ck_assert_jobq_ok(core_reserve(c, W1, &q, 1, 1000, 1, &v, &n));
    jobq_result_t r;
    jobq_result_init(&r);
    r.id = a;
    r.attempt = 1;
    ck_assert_jobq_ok(core_complete(c, W1, &r, 1001));
    jobq_id_t b = s_put(c, "b", NULL, 1);
    ck_assert_jobq_ok(core_bury(c, &b, JOBQ_STATUS_DEAD, "x", 1, 1002));
    ck_assert_jobq_ok(core_delete(c, &b, 1003));
    ck_assert_jobq_ok(core_delete(c, &a, 1004)); /* a's retained result */
    ck_assert_jobq_ok(core_pause(c, "q", 1, CORE_FOREVER, 1005));
    ck_assert_jobq_ok(core_resume(c, "q", 1, 1006));
    static const core_change_kind want[] = {CORE_CH_SUBMIT, CORE_CH_STATE, CORE_CH_DONE,
                                            CORE_CH_SUBMIT, CORE_CH_DEAD,  CORE_CH_DELETE,
                                            CORE_CH_FORGET, CORE_CH_PAUSE, CORE_CH_PAUSE};
    ck_assert_int_eq(s.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < s.n; i++)
        ck_assert_int_eq(s.kinds[i], want[i]);
    ck_assert_int_eq(s.states[1], JOBQ_STATE_RESERVED);
    s_check(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_unsubmit_takes_a_fresh_job_back_without_a_trace)
{
    core_t *c = s_core();
    seen_t s = {0};
    jobq_id_t a = s_put(c, "a", "k", 3);
    core_set_hook(c, s_hook, &s);
    ck_assert_jobq_ok(core_unsubmit(c, &a));
    ck_assert_int_eq(s.n, 0);
    core_job_view_t v;
    ck_assert_int_eq(core_peek(c, &a, &v), JOBQ_ENOTFOUND);
    core_stats_t st;
    core_stats(c, &st);
    ck_assert_uint_eq(st.jobs, 0);
    ck_assert_uint_eq(st.submitted, 0);
    s_put(c, "again", "k", 3); /* the unique key is free again */
    ck_assert_int_eq(core_unsubmit(c, &a), JOBQ_ENOTFOUND);
    s_check(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_restore_result_brings_back_the_result_and_its_unique_key)
{
    core_t *c = s_core();
    core_result_view_t r;
    memset(&r, 0, sizeof r);
    memset(&r.id, 0x42, sizeof r.id);
    r.queue = "q";
    r.queue_len = 1;
    r.status = JOBQ_STATUS_DONE;
    r.last_status = JOBQ_STATUS_DONE;
    r.output = "out";
    r.output_len = 3;
    r.attempts = 2;
    r.finished_ms = 500;
    ck_assert_jobq_ok(core_restore_result(c, &r, "key", 3, 1000));
    ck_assert_int_eq(core_restore_result(c, &r, NULL, 0, 1000), JOBQ_EDUPLICATE);
    core_result_view_t got;
    ck_assert_jobq_ok(core_result(c, &r.id, &got));
    ck_assert_uint_eq(got.output_len, 3);
    ck_assert_mem_eq(got.output, "out", 3);
    ck_assert_uint_eq(got.attempts, 2);
    jobq_job_t j;
    jobq_job_init(&j);
    j.queue = "q";
    j.queue_len = 1;
    j.unique = "key";
    j.unique_len = 3;
    jobq_id_t id;
    ck_assert_int_eq(core_submit(c, &j, 1, 1000, &id, NULL), JOBQ_EDUPLICATE);
    ck_assert_mem_eq(&id, &r.id, sizeof id);
    s_check(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_restore_attempts_sets_the_fence_and_the_used_count)
{
    core_t *c = s_core();
    jobq_id_t a = s_put(c, "a", NULL, 5);
    ck_assert_jobq_ok(core_restore_attempts(c, &a, 4, 1));
    core_job_view_t v;
    ck_assert_jobq_ok(core_peek(c, &a, &v));
    ck_assert_uint_eq(v.attempt, 4);
    ck_assert_uint_eq(v.attempts_used, 1);
    ck_assert_int_eq(core_restore_attempts(c, &a, 1, 2), JOBQ_EINVAL);
    ck_assert_jobq_ok(core_worker_credit(c, W1, 1, 1000));
    core_name_t q = {"q", 1};
    size_t n;
    ck_assert_jobq_ok(core_reserve(c, W1, &q, 1, 1000, 1, &v, &n));
    ck_assert_uint_eq(v.attempt, 5); /* the next delivery continues the fence */
    ck_assert_int_eq(core_restore_attempts(c, &a, 5, 1), JOBQ_ESTATE);
    s_check(c);
    core_destroy(&c);
}
END_TEST

START_TEST(test_the_iterators_see_every_live_job_and_only_unpinned_results)
{
    core_t *c = s_core();
    s_put(c, "ready", NULL, 1);
    jobq_id_t d = s_put(c, "dead", NULL, 1);
    ck_assert_jobq_ok(core_bury(c, &d, JOBQ_STATUS_DEAD, NULL, 0, 1000));
    jobq_id_t done = s_put(c, "done", NULL, 1);
    ck_assert_jobq_ok(core_worker_credit(c, W1, 2, 1000));
    core_name_t q = {"q", 1};
    core_job_view_t v[2];
    size_t n;
    ck_assert_jobq_ok(core_reserve(c, W1, &q, 1, 1000, 2, v, &n));
    ck_assert_uint_eq(n, 2);
    jobq_result_t r;
    jobq_result_init(&r);
    r.id = memcmp(&v[0].id, &done, sizeof done) == 0 ? v[0].id : v[1].id;
    r.attempt = 1;
    ck_assert_jobq_ok(core_complete(c, W1, &r, 1001));
    uint32_t cur = 0;
    core_job_view_t jv;
    int jobs = 0, reserved = 0, dead = 0;
    while (core_job_next(c, &cur, &jv)) {
        jobs++;
        reserved += jv.state == JOBQ_STATE_RESERVED;
        dead += jv.state == JOBQ_STATE_DEAD;
    }
    ck_assert_int_eq(jobs, 2);
    ck_assert_int_eq(reserved, 1);
    ck_assert_int_eq(dead, 1);
    cur = 0;
    core_result_view_t rv;
    const void *u;
    uint32_t ul;
    int results = 0;
    while (core_result_next(c, &cur, &rv, &u, &ul)) {
        results++;
        ck_assert_mem_eq(&rv.id, &done, sizeof done);
    }
    ck_assert_int_eq(results, 1);
    core_destroy(&c);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("core_journal");
    TCase *tc = tcase_create("core_journal");
    tcase_add_test(tc,
                   test_the_hook_sees_submit_delivery_done_dead_delete_forget_and_pause_in_order);
    tcase_add_test(tc, test_unsubmit_takes_a_fresh_job_back_without_a_trace);
    tcase_add_test(tc, test_restore_result_brings_back_the_result_and_its_unique_key);
    tcase_add_test(tc, test_restore_attempts_sets_the_fence_and_the_used_count);
    tcase_add_test(tc, test_the_iterators_see_every_live_job_and_only_unpinned_results);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
