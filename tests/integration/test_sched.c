/*
 * tests/integration/test_sched.c: the broker's scheduling and operations
 * features end to end, through a real `jobq broker` process and raw wire
 * clients (tests/support/wire_client.h): priority order, delays, retries
 * with backoff ending in the dead set, poison jobs whose worker vanishes,
 * kick, unique keys, timed pauses, peek/delete on every state, and the
 * `jobq stats --json` and `--prometheus` outputs checked by a parser.
 *
 * Time bounds: every wait has a deadline (S_T); the broker is started with
 * --backoff-base 100 --backoff-max 1000 so that retries take tenths of a
 * second. Timing assertions keep a slack of 150 ms.
 */
#include "jobq_test.h"
#include "wire_client.h"

#include "jobq/errors.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_T 5000
#define S_SLACK_MS 150

static wc_broker_t s_b;

static const char *const s_fast[] = {"--backoff-base", "100", "--backoff-max", "1000", NULL};

static void
s_teardown(void)
{
    wc_broker_stop(&s_b, 5000);
}

static wc_t *
s_client(int role, uint32_t hb, const char *name)
{
    wc_t *c = wc_connect(s_b.url);
    ck_assert_jobq_ok(wc_hello(c, role, hb, name));
    return c;
}

/* Says DISCONNECT (the broker forgets the client at once: a worker's held
 * jobs count as crashed attempts) and closes, so that teardown's drain does
 * not wait for a heartbeat to expire. */
static void
s_bye(wc_t **c_p)
{
    wire_msg_t d;
    wire_msg_init(&d, WIRE_DISCONNECT);
    wc_send(*c_p, &d);
    wc_close(c_p);
}

static void
s_expect(wc_t *c, wire_type type, wire_msg_t *m)
{
    int rc = wc_recv_type(c, type, m, S_T);
    ck_assert_msg(rc == JOBQ_OK, "no %s: %s", wire_type_name(type), jobq_errname(rc));
}

/* Submits one job with the scheduling fields; returns the SUBMIT_OK code
 * and the id in *id. */
static int
s_submit(wc_t *p, const char *q, const char *payload, uint32_t pri, uint64_t delay_ms, uint32_t max,
         const char *unique, jobq_id_t *id)
{
    static uint64_t req;
    jobq_job_t j;
    jobq_job_init(&j);
    j.queue = q;
    j.queue_len = (uint32_t)strlen(q);
    j.payload = payload;
    j.payload_len = (uint32_t)strlen(payload);
    j.priority = pri;
    j.delay_ms = delay_ms;
    j.max_attempts = max;
    j.unique = unique;
    j.unique_len = unique ? (uint32_t)strlen(unique) : 0;
    wire_msg_t m, r;
    wire_msg_init(&m, WIRE_SUBMIT);
    m.fields = WIRE_F_REQ | WIRE_F_JOBS;
    m.req = ++req;
    m.jobs = &j;
    m.njobs = 1;
    ck_assert_int_eq(wc_send(p, &m), 0);
    s_expect(p, WIRE_SUBMIT_OK, &r);
    ck_assert_uint_eq(r.req, req);
    int code = (int)r.codes[0];
    *id = r.ids[0];
    wire_msg_fini(&r);
    return code;
}

/* Sends ADMIN {req, name: verb, q, ids, n} and returns the reply in *r. */
static void
s_admin(wc_t *a, const char *verb, const char *q, const jobq_id_t *id, uint64_t n, wire_msg_t *r)
{
    static uint64_t req = 1000;
    wire_msg_t m;
    wire_msg_init(&m, WIRE_ADMIN);
    m.fields = WIRE_F_REQ | WIRE_F_NAME | (q ? WIRE_F_QUEUE : 0) | (id ? WIRE_F_IDS : 0) |
               (n ? WIRE_F_COUNT : 0);
    m.req = ++req;
    m.name = (wire_str_t){verb, (uint32_t)strlen(verb)};
    if (q)
        m.queue = (wire_str_t){q, (uint32_t)strlen(q)};
    m.ids = (jobq_id_t *)id;
    m.nids = id ? 1 : 0;
    m.count = n;
    ck_assert_int_eq(wc_send(a, &m), 0);
    for (;;) {
        ck_assert_jobq_ok(wc_recv(a, r, S_T));
        if ((r->fields & WIRE_F_REQ) && r->req == req)
            return;
        wire_msg_fini(r);
    }
}

/* Runs ADMIN verb and asserts its JSON reply contains want (or not, when
 * absent is set). */
static void
s_peek_has(wc_t *a, const char *verb, const char *q, const jobq_id_t *id, const char *want,
           int absent)
{
    wire_msg_t r;
    s_admin(a, verb, q, id, q ? 100 : 0, &r);
    ck_assert_msg(r.type == WIRE_STATS_REPLY, "%s: %s %.*s", verb, wire_type_name(r.type),
                  (int)r.msg.len, r.msg.ptr ? r.msg.ptr : "");
    int found = memmem(r.data.ptr, r.data.len, want, strlen(want)) != NULL;
    ck_assert_msg(found != absent, "%s: '%s' %s in %.*s", verb, want, absent ? "found" : "missing",
                  (int)r.data.len, r.data.ptr);
    wire_msg_fini(&r);
}

/* Sends a RESULT with an exit code and error text. */
static void
s_fail(wc_t *w, const jobq_id_t *id, uint32_t attempt, int32_t exit_code, const char *err)
{
    jobq_result_t res;
    jobq_result_init(&res);
    res.id = *id;
    res.attempt = attempt;
    res.status = JOBQ_STATUS_FAILED;
    res.exit_code = exit_code;
    res.error = err;
    res.error_len = (uint32_t)strlen(err);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_RESULT);
    m.fields = WIRE_F_RESULTS;
    m.results = &res;
    m.nresults = 1;
    ck_assert_int_eq(wc_send(w, &m), 0);
}

START_TEST(test_a_mixed_priority_backlog_comes_out_in_priority_order_fifo_within_one)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"), *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    static const struct {
        const char *payload;
        uint32_t pri;
    } in[] = {{"a5", 5}, {"b1", 1}, {"c5", 5}, {"d1", 1}, {"e3", 3}, {"f0", 0}, {"g3", 3}};
    static const char *const want[] = {"f0", "b1", "d1", "e3", "g3", "a5", "c5"};
    jobq_id_t id;
    for (size_t i = 0; i < 7; i++)
        ck_assert_jobq_ok(s_submit(p, "prio", in[i].payload, in[i].pri, 0, 1, NULL, &id));
    ck_assert_int_eq(wc_ready(w, 16, "prio"), 0);
    size_t got = 0;
    while (got < 7) {
        wire_msg_t r;
        s_expect(w, WIRE_DELIVER, &r);
        for (uint32_t i = 0; i < r.njobs; i++, got++) {
            ck_assert_uint_lt(got, 7);
            ck_assert_msg(r.jobs[i].payload_len == 2 &&
                              memcmp(r.jobs[i].payload, want[got], 2) == 0,
                          "job %zu: got %.*s, want %s", got, (int)r.jobs[i].payload_len,
                          (const char *)r.jobs[i].payload, want[got]);
        }
        wire_msg_fini(&r);
    }
    s_bye(&p);
    s_bye(&w);
}
END_TEST

START_TEST(test_a_delayed_job_is_not_handed_out_early_and_is_handed_out_on_time)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"), *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    ck_assert_int_eq(wc_ready(w, 4, "later"), 0);
    jobq_id_t id;
    int64_t t0 = wc_now_ms();
    ck_assert_jobq_ok(s_submit(p, "later", "soon", JOBQ_PRIORITY_DEFAULT, 300, 1, NULL, &id));
    wire_msg_t r;
    s_expect(w, WIRE_DELIVER, &r);
    int64_t dt = wc_now_ms() - t0;
    ck_assert_int_eq(memcmp(&r.jobs[0].id, &id, sizeof id), 0);
    wire_msg_fini(&r);
    ck_assert_msg(dt >= 299, "delivered after %lld ms, before its 300 ms delay", (long long)dt);
    ck_assert_msg(dt <= 300 + S_SLACK_MS, "delivered after %lld ms, late", (long long)dt);
    s_bye(&p);
    s_bye(&w);
}
END_TEST

START_TEST(test_an_always_failing_job_is_retried_with_growing_gaps_then_dead_with_its_error)
{
    ck_assert_int_eq(wc_broker_start(&s_b, s_fast), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"), *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    wc_t *a = s_client(WIRE_ROLE_ADMIN, 5000, "a");
    jobq_id_t id;
    ck_assert_jobq_ok(s_submit(p, "flaky", "boom", JOBQ_PRIORITY_DEFAULT, 0, 3, NULL, &id));
    ck_assert_int_eq(wc_ready(w, 1, "flaky"), 0);
    int64_t at[3];
    for (uint32_t i = 0; i < 3; i++) {
        wire_msg_t r;
        s_expect(w, WIRE_DELIVER, &r);
        at[i] = wc_now_ms();
        ck_assert_int_eq(memcmp(&r.jobs[0].id, &id, sizeof id), 0);
        ck_assert_uint_eq(r.jobs[0].attempt, i + 1);
        wire_msg_fini(&r);
        s_fail(w, &id, i + 1, 7, "disk on fire");
    }
    /* Backoff 100 ms then 200 ms, each +-20%. */
    int64_t g1 = at[1] - at[0], g2 = at[2] - at[1];
    ck_assert_msg(g1 >= 70 && g1 <= 120 + S_SLACK_MS, "first gap %lld ms", (long long)g1);
    ck_assert_msg(g2 >= 150 && g2 <= 240 + S_SLACK_MS, "second gap %lld ms", (long long)g2);
    ck_assert_msg(g2 > g1, "gaps do not grow: %lld then %lld ms", (long long)g1, (long long)g2);
    wire_msg_t r;
    s_expect(p, WIRE_RESULTS, &r);
    ck_assert_uint_eq(r.results[0].status, JOBQ_STATUS_DEAD);
    ck_assert_int_eq(r.results[0].exit_code, 7);
    wire_msg_fini(&r);
    ck_assert_int_eq(wc_recv_type(w, WIRE_DELIVER, &r, 400), JOBQ_ETIMEDOUT); /* no 4th try */
    s_peek_has(a, "peek-dead", "flaky", NULL, "\"error\":\"disk on fire\"", 0);
    s_peek_has(a, "peek-dead", "flaky", NULL, "\"exit_code\":7", 0);
    s_peek_has(a, "peek-dead", "flaky", NULL, "\"attempts_used\":3", 0);
    char out[65536];
    const char *json[] = {"stats", "-u", s_b.url, "--json", "-q", "flaky", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, json), 0);
    ck_assert_int_eq(wc_json_num(out, strlen(out), "dead"), 1);
    ck_assert_int_eq(wc_json_num(out, strlen(out), "retried"), 2);
    ck_assert_int_eq(wc_json_num(out, strlen(out), "failed"), 3);
    s_bye(&a);
    s_bye(&p);
    s_bye(&w);
}
END_TEST

START_TEST(test_a_jobs_own_backoff_from_submit_overrides_the_brokers)
{
    ck_assert_int_eq(wc_broker_start(&s_b, s_fast), 0); /* the broker's: 100 ms, cap 1 s */
    wc_t *w = s_client(WIRE_ROLE_WORKER, 5000, "w"), *a = s_client(WIRE_ROLE_ADMIN, 5000, "a");
    char out[4096];
    const char *sub[] = {"submit", "-u",        s_b.url, "-q",      "own", "--retries",
                         "2",      "--backoff", "0.4",   "payload", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, sub), 0);
    ck_assert_int_eq(wc_ready(w, 1, "own"), 0);
    int64_t at[3];
    jobq_id_t id;
    for (uint32_t i = 0; i < 3; i++) {
        wire_msg_t r;
        s_expect(w, WIRE_DELIVER, &r);
        at[i] = wc_now_ms();
        id = r.jobs[0].id;
        ck_assert_uint_eq(r.jobs[0].attempt, i + 1);
        wire_msg_fini(&r);
        if (i == 0)
            s_peek_has(a, "peek", NULL, &id, "\"backoff_ms\":400", 0);
        s_fail(w, &id, i + 1, 1, "no");
    }
    /* 400 ms then 800 ms (+-20%), not the broker's 100 and 200 */
    int64_t g1 = at[1] - at[0], g2 = at[2] - at[1];
    ck_assert_msg(g1 >= 310 && g1 <= 480 + S_SLACK_MS, "first gap %lld ms", (long long)g1);
    ck_assert_msg(g2 >= 630 && g2 <= 960 + S_SLACK_MS, "second gap %lld ms", (long long)g2);
    const char *bad[] = {"submit", "-u", s_b.url, "--backoff", "soon", "x", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, bad), 2);
    s_bye(&a);
    s_bye(&w);
}
END_TEST

/* Completes every job in one DELIVER on w; returns how many. */
static uint32_t
s_complete_all(wc_t *w, int64_t timeout_ms)
{
    wire_msg_t r;
    if (wc_recv_type(w, WIRE_DELIVER, &r, timeout_ms) != JOBQ_OK)
        return 0;
    uint32_t n = r.njobs;
    jobq_id_t ids[64];
    uint32_t att[64];
    ck_assert_uint_le(n, 64);
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = r.jobs[i].id;
        att[i] = r.jobs[i].attempt;
    }
    wire_msg_fini(&r);
    for (uint32_t i = 0; i < n; i++)
        ck_assert_int_eq(wc_result(w, &ids[i], att[i], JOBQ_STATUS_DONE, "ok"), 0);
    return n;
}

/* A worker takes the poison job and then vanishes: closes its socket
 * (vanish) or says DISCONNECT without listing the job (a crash). */
static void
s_crashing_worker(const jobq_id_t *poison, uint32_t attempt, int vanish)
{
    wc_t *c = s_client(WIRE_ROLE_WORKER, 50, "crasher");
    ck_assert_int_eq(wc_ready(c, 1, "poison"), 0);
    wire_msg_t r;
    s_expect(c, WIRE_DELIVER, &r);
    ck_assert_int_eq(memcmp(&r.jobs[0].id, poison, sizeof *poison), 0);
    ck_assert_uint_eq(r.jobs[0].attempt, attempt);
    wire_msg_fini(&r);
    if (!vanish) {
        wire_msg_t d;
        wire_msg_init(&d, WIRE_DISCONNECT);
        ck_assert_int_eq(wc_send(c, &d), 0);
    }
    wc_close(&c);
}

START_TEST(test_a_poison_job_ends_dead_while_100_jobs_complete_and_kick_brings_it_back)
{
    ck_assert_int_eq(wc_broker_start(&s_b, s_fast), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"), *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    wc_t *a = s_client(WIRE_ROLE_ADMIN, 5000, "a");
    jobq_id_t poison, id;
    ck_assert_jobq_ok(
        s_submit(p, "poison", "crash me", JOBQ_PRIORITY_DEFAULT, 0, 3, NULL, &poison));
    for (int i = 0; i < 100; i++)
        ck_assert_jobq_ok(s_submit(p, "normal", "fine", JOBQ_PRIORITY_DEFAULT, 0, 1, NULL, &id));
    ck_assert_int_eq(wc_ready(w, 8, "normal"), 0);
    uint32_t done = 0;
    for (uint32_t attempt = 1; attempt <= 3; attempt++) {
        s_crashing_worker(&poison, attempt, attempt != 2);
        done += s_complete_all(w, S_T); /* the healthy worker keeps going meanwhile */
    }
    int64_t deadline = wc_now_ms() + S_T;
    while (done < 100 && wc_now_ms() < deadline)
        done += s_complete_all(w, 500);
    ck_assert_uint_eq(done, 100);
    /* The producer hears 100 DONE and one DEAD (a crash, not a failure). */
    uint32_t ndone = 0, ndead = 0;
    deadline = wc_now_ms() + S_T;
    while ((ndone < 100 || ndead < 1) && wc_now_ms() < deadline) {
        wire_msg_t r;
        if (wc_recv_type(p, WIRE_RESULTS, &r, 500) != JOBQ_OK)
            continue;
        for (uint32_t i = 0; i < r.nresults; i++) {
            if (r.results[i].status == JOBQ_STATUS_DONE)
                ndone++;
            if (r.results[i].status == JOBQ_STATUS_DEAD) {
                ndead++;
                ck_assert_int_eq(memcmp(&r.results[i].id, &poison, sizeof poison), 0);
            }
        }
        wire_msg_fini(&r);
    }
    ck_assert_uint_eq(ndone, 100);
    ck_assert_uint_eq(ndead, 1);
    s_peek_has(a, "peek-dead", "poison", NULL, "\"last_status\":\"crashed\"", 0);
    wire_msg_t r;
    s_admin(a, "kick", "poison", NULL, 0, &r);
    ck_assert_int_eq(r.type, WIRE_OK);
    ck_assert_uint_eq(r.count, 1);
    wire_msg_fini(&r);
    s_peek_has(a, "peek-ready", "poison", NULL, "\"state\":\"ready\"", 0);
    s_peek_has(a, "peek-dead", "poison", NULL, "{\"jobs\":[]}", 0);
    ck_assert_int_eq(wc_ready(w, 8, "poison"), 0); /* it runs again, attempt 4 */
    s_expect(w, WIRE_DELIVER, &r);
    ck_assert_int_eq(memcmp(&r.jobs[0].id, &poison, sizeof poison), 0);
    ck_assert_uint_eq(r.jobs[0].attempt, 4);
    wire_msg_fini(&r);
    s_bye(&a);
    s_bye(&p);
    s_bye(&w);
}
END_TEST

START_TEST(test_a_second_submit_with_the_same_unique_key_returns_the_first_id)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"),
         *p2 = s_client(WIRE_ROLE_PRODUCER, 5000, "p2");
    jobq_id_t first, second, other;
    ck_assert_jobq_ok(s_submit(p, "uq", "one", JOBQ_PRIORITY_DEFAULT, 0, 1, "order-42", &first));
    ck_assert_int_eq(s_submit(p2, "uq", "two", JOBQ_PRIORITY_DEFAULT, 0, 1, "order-42", &second),
                     JOBQ_EDUPLICATE);
    ck_assert_int_eq(memcmp(&first, &second, sizeof first), 0);
    /* Another key, or the same key in another queue, is a new job. */
    ck_assert_jobq_ok(s_submit(p, "uq", "three", JOBQ_PRIORITY_DEFAULT, 0, 1, "order-43", &other));
    ck_assert_int_ne(memcmp(&first, &other, sizeof first), 0);
    ck_assert_jobq_ok(s_submit(p, "uq2", "four", JOBQ_PRIORITY_DEFAULT, 0, 1, "order-42", &other));
    ck_assert_int_ne(memcmp(&first, &other, sizeof first), 0);
    s_bye(&p);
    s_bye(&p2);
}
END_TEST

START_TEST(test_a_timed_pause_holds_deliveries_until_it_ends)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"), *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    char out[4096];
    const char *pause[] = {"pause", "-u", s_b.url, "-q", "tp", "0.5", NULL};
    int64_t t0 = wc_now_ms();
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, pause), 0);
    jobq_id_t id;
    ck_assert_jobq_ok(s_submit(p, "tp", "held", JOBQ_PRIORITY_DEFAULT, 0, 1, NULL, &id));
    ck_assert_int_eq(wc_ready(w, 1, "tp"), 0);
    wire_msg_t r;
    s_expect(w, WIRE_DELIVER, &r);
    int64_t dt = wc_now_ms() - t0;
    wire_msg_fini(&r);
    ck_assert_msg(dt >= 499, "delivered %lld ms after a 500 ms pause began", (long long)dt);
    ck_assert_msg(dt <= 500 + S_SLACK_MS + 100, "pause ended late: %lld ms", (long long)dt);
    s_bye(&p);
    s_bye(&w);
}
END_TEST

START_TEST(test_peek_and_delete_work_on_ready_delayed_and_dead_jobs_but_not_reserved)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"), *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    wc_t *a = s_client(WIRE_ROLE_ADMIN, 5000, "a");
    jobq_id_t rdy, dly, dead, res;
    ck_assert_jobq_ok(s_submit(p, "pd", "taken", 0, 0, 1, NULL, &res));
    ck_assert_int_eq(wc_ready(w, 1, "pd"), 0);
    wire_msg_t r;
    s_expect(w, WIRE_DELIVER, &r); /* res is RESERVED from now on */
    ck_assert_int_eq(memcmp(&r.jobs[0].id, &res, sizeof res), 0);
    wire_msg_fini(&r);
    ck_assert_jobq_ok(s_submit(p, "pd", "waiting", 5, 0, 1, NULL, &rdy));
    ck_assert_jobq_ok(s_submit(p, "pd", "later", 5, 60000, 1, NULL, &dly));
    ck_assert_jobq_ok(s_submit(p, "pd", "doomed", 5, 0, 1, NULL, &dead));
    s_admin(a, "bury", NULL, &dead, 0, &r);
    ck_assert_int_eq(r.type, WIRE_OK);
    wire_msg_fini(&r);
    s_peek_has(a, "peek-ready", "pd", NULL, "\"payload\":\"waiting\"", 0);
    s_peek_has(a, "peek-delayed", "pd", NULL, "\"payload\":\"later\"", 0);
    s_peek_has(a, "peek-dead", "pd", NULL, "\"payload\":\"doomed\"", 0);
    s_peek_has(a, "peek", NULL, &res, "\"state\":\"reserved\"", 0);
    const jobq_id_t *ids[] = {&rdy, &dly, &dead};
    for (int i = 0; i < 3; i++) {
        s_admin(a, "delete", NULL, ids[i], 0, &r);
        ck_assert_msg(r.type == WIRE_OK, "delete %d: %s", i, wire_type_name(r.type));
        wire_msg_fini(&r);
    }
    s_peek_has(a, "peek-ready", "pd", NULL, "{\"jobs\":[]}", 0);
    s_peek_has(a, "peek-delayed", "pd", NULL, "{\"jobs\":[]}", 0);
    s_peek_has(a, "peek-dead", "pd", NULL, "{\"jobs\":[]}", 0);
    s_admin(a, "delete", NULL, &res, 0, &r);
    ck_assert_int_eq(r.type, WIRE_ERROR);
    ck_assert_uint_eq(r.code, JOBQ_ESTATE);
    wire_msg_fini(&r);
    s_peek_has(a, "peek", NULL, &res, "\"state\":\"reserved\"", 0); /* still there */
    s_bye(&a);
    s_bye(&p);
    s_bye(&w);
}
END_TEST

/* ---- a Prometheus text exposition checker ---------------------------------- */

static int
s_name_char(char c, int first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && isdigit((unsigned char)c));
}

/* Parses a metric name at *p; returns its length (0: none). */
static size_t
s_prom_name(const char *p)
{
    size_t n = 0;
    while (p[n] && s_name_char(p[n], n == 0))
        n++;
    return n;
}

/* Checks {k="v",...}; advances *p past it. Returns 0 or -1. */
static int
s_prom_labels(const char **pp)
{
    const char *p = *pp;
    if (*p != '{')
        return 0;
    p++;
    while (*p != '}') {
        size_t n = s_prom_name(p);
        if (!n || p[n] != '=' || p[n + 1] != '"')
            return -1;
        p += n + 2;
        while (*p != '"') {
            if (!*p || *p == '\n')
                return -1;
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return -1;
                p++;
            }
            p++;
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return -1;
    }
    *pp = p + 1;
    return 0;
}

/* Returns NULL when text is valid exposition text in which every sample's
 * metric has a TYPE line before it, else a static reason (line in bad). */
static const char *
s_prom_check(const char *text, char *bad, size_t badlen)
{
    char typed[256][96];
    size_t ntyped = 0, samples = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        const char *eol = strchr(line, '\n');
        if (!eol)
            return "no newline at the end";
        snprintf(bad, badlen, "%.*s", (int)(eol - line), line);
        if (strncmp(line, "# TYPE ", 7) == 0) {
            size_t n = s_prom_name(line + 7);
            const char *t = line + 7 + n;
            if (!n || n >= 96 || ntyped == 256)
                return "bad TYPE name";
            if (strncmp(t, " counter\n", 9) && strncmp(t, " gauge\n", 7))
                return "bad TYPE";
            memcpy(typed[ntyped], line + 7, n);
            typed[ntyped++][n] = '\0';
        } else if (strncmp(line, "# HELP ", 7) == 0) {
            if (!s_prom_name(line + 7))
                return "bad HELP name";
        } else if (line[0] == '#') {
            return "unknown comment";
        } else {
            size_t n = s_prom_name(line);
            if (!n)
                return "bad sample name";
            int seen = 0;
            for (size_t i = 0; i < ntyped && !seen; i++)
                seen = strlen(typed[i]) == n && memcmp(typed[i], line, n) == 0;
            if (!seen)
                return "sample without a TYPE line";
            const char *p = line + n;
            if (s_prom_labels(&p) != 0)
                return "bad labels";
            if (*p++ != ' ')
                return "no space before the value";
            char *end;
            strtod(p, &end);
            if (end == p || end != eol)
                return "bad value";
            samples++;
        }
    }
    return samples ? NULL : "no samples";
}

START_TEST(test_stats_json_is_valid_json_and_prometheus_output_is_valid_exposition_text)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p");
    wc_t *w = s_client(WIRE_ROLE_WORKER, 5000, "odd \"name\"\\");
    jobq_id_t id;
    ck_assert_jobq_ok(s_submit(p, "metrics", "x", 0, 0, 1, NULL, &id));
    ck_assert_jobq_ok(s_submit(p, "metrics", "y", 0, 60000, 1, NULL, &id));
    ck_assert_int_eq(wc_ready(w, 0, "metrics"), 0);
    char out[65536], bad[512];
    const char *json[] = {"stats", "-u", s_b.url, "--json", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, json), 0);
    FILE *f = popen("python3 -m json.tool >/dev/null", "w");
    ck_assert_ptr_nonnull(f);
    fputs(out, f);
    int st = pclose(f);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "not JSON: %s", out);
    const char *prom[] = {"stats", "-u", s_b.url, "--prometheus", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, prom), 0);
    const char *why = s_prom_check(out, bad, sizeof bad);
    ck_assert_msg(why == NULL, "%s: '%s'", why, bad);
    ck_assert_msg(strstr(out, "jobq_queue_jobs{queue=\"metrics\",state=\"ready\"} 1\n"), "%s", out);
    ck_assert_msg(strstr(out, "jobq_queue_jobs{queue=\"metrics\",state=\"delayed\"} 1\n"), "%s",
                  out);
    ck_assert_msg(strstr(out, "jobq_queue_submitted_total{queue=\"metrics\"} 2\n"), "%s", out);
    ck_assert_msg(strstr(out, "# TYPE jobq_queue_submitted_total counter\n"), "%s", out);
    ck_assert_msg(strstr(out, "jobq_broker_uptime_seconds "), "%s", out);
    ck_assert_msg(strstr(out, "jobq_protocol_errors_total{kind=\"malformed\"} 0\n"), "%s", out);
    ck_assert_msg(strstr(out, "name=\"odd \\\"name\\\"\\\\\"}"), "label not escaped: %s", out);
    /* -q narrows it to one queue. */
    ck_assert_jobq_ok(s_submit(p, "other", "z", 0, 0, 1, NULL, &id));
    const char *one[] = {"stats", "-u", s_b.url, "--prometheus", "-q", "other", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, one), 0);
    ck_assert_msg(s_prom_check(out, bad, sizeof bad) == NULL, "%s", bad);
    ck_assert_msg(strstr(out, "queue=\"other\"") && !strstr(out, "queue=\"metrics\""), "%s", out);
    const char *both[] = {"stats", "-u", s_b.url, "--prometheus", "--json", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, both), 2);
    s_bye(&p);
    s_bye(&w);
}
END_TEST

START_TEST(test_broker_refuses_a_backoff_max_below_its_base)
{
    char out[4096], dir[] = "/tmp/jobq-sched-XXXXXX", url[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(url, sizeof url, "ipc://%s/b.sock", dir);
    const char *args[] = {"broker", "--listen",      url,   "--backoff-base",
                          "500",    "--backoff-max", "100", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, args), 2);
    rmdir(dir);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("sched");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_a_mixed_priority_backlog_comes_out_in_priority_order_fifo_within_one);
    tcase_add_test(tc, test_a_delayed_job_is_not_handed_out_early_and_is_handed_out_on_time);
    tcase_add_test(
        tc, test_an_always_failing_job_is_retried_with_growing_gaps_then_dead_with_its_error);
    tcase_add_test(tc, test_a_poison_job_ends_dead_while_100_jobs_complete_and_kick_brings_it_back);
    tcase_add_test(tc, test_a_second_submit_with_the_same_unique_key_returns_the_first_id);
    tcase_add_test(tc, test_a_timed_pause_holds_deliveries_until_it_ends);
    tcase_add_test(tc, test_peek_and_delete_work_on_ready_delayed_and_dead_jobs_but_not_reserved);
    tcase_add_test(tc,
                   test_stats_json_is_valid_json_and_prometheus_output_is_valid_exposition_text);
    tcase_add_test(tc, test_broker_refuses_a_backoff_max_below_its_base);
    tcase_add_test(tc, test_a_jobs_own_backoff_from_submit_overrides_the_brokers);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return jobq_test_run(s_suite());
}
