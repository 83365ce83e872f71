/*
 * tests/integration/test_broker_admin.c: the broker's admin side with a real
 * `jobq broker`: ADMIN verbs over the wire (pause, resume, kick, delete,
 * bury, peek, unknown verbs) and the command front ends (`jobq stats`,
 * `jobq stats --json`, `jobq pause/resume/kick/delete/peek`, `jobq
 * broker-stop`) run as real processes against it.
 */
#include "jobq_test.h"
#include "wire_client.h"

#include "jobq/errors.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_T 5000

static wc_broker_t s_b;

static void
s_teardown(void)
{
    wc_broker_stop(&s_b, 5000);
}

static wc_t *
s_client(int role, const char *name)
{
    wc_t *c = wc_connect(s_b.url);
    ck_assert_jobq_ok(wc_hello(c, role, 5000, name));
    return c;
}

static void
s_expect(wc_t *c, wire_type type, wire_msg_t *m)
{
    int rc = wc_recv_type(c, type, m, S_T);
    ck_assert_msg(rc == JOBQ_OK, "no %s: %s", wire_type_name(type), jobq_errname(rc));
}

/* Sends ADMIN {req, name: verb, q, ids} and returns the reply in *r. */
static void
s_admin(wc_t *a, uint64_t req, const char *verb, const char *q, const jobq_id_t *ids, uint32_t n,
        wire_msg_t *r)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_ADMIN);
    m.fields = WIRE_F_REQ | WIRE_F_NAME | (q ? WIRE_F_QUEUE : 0) | (ids ? WIRE_F_IDS : 0);
    m.req = req;
    m.name = (wire_str_t){verb, (uint32_t)strlen(verb)};
    if (q)
        m.queue = (wire_str_t){q, (uint32_t)strlen(q)};
    m.ids = (jobq_id_t *)ids;
    m.nids = n;
    ck_assert_int_eq(wc_send(a, &m), 0);
    for (;;) {
        ck_assert_jobq_ok(wc_recv(a, r, S_T));
        if ((r->fields & WIRE_F_REQ) && r->req == req)
            return;
        wire_msg_fini(r);
    }
}

static void
s_submit(wc_t *p, const char *q, const char *payload, uint32_t max, jobq_id_t *id)
{
    wire_msg_t r;
    ck_assert_int_eq(wc_submit(p, 1, q, &payload, 1, 0, max, NULL), 0);
    s_expect(p, WIRE_SUBMIT_OK, &r);
    ck_assert_uint_eq(r.codes[0], JOBQ_OK);
    *id = r.ids[0];
    wire_msg_fini(&r);
}

START_TEST(test_pause_holds_a_queue_and_resume_releases_it)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *a = s_client(WIRE_ROLE_ADMIN, "a"), *p = s_client(WIRE_ROLE_PRODUCER, "p");
    wc_t *w = s_client(WIRE_ROLE_WORKER, "w");
    wire_msg_t r;
    s_admin(a, 1, "pause", "pq", NULL, 0, &r);
    ck_assert_int_eq(r.type, WIRE_OK);
    wire_msg_fini(&r);
    jobq_id_t id;
    s_submit(p, "pq", "held", 1, &id);
    ck_assert_int_eq(wc_ready(w, 1, "pq"), 0);
    ck_assert_int_eq(wc_recv_type(w, WIRE_DELIVER, &r, 300), JOBQ_ETIMEDOUT);
    s_admin(a, 2, "resume", "pq", NULL, 0, &r);
    ck_assert_int_eq(r.type, WIRE_OK);
    wire_msg_fini(&r);
    s_expect(w, WIRE_DELIVER, &r);
    ck_assert_int_eq(memcmp(&r.jobs[0].id, &id, 16), 0);
    wire_msg_fini(&r);
    wc_close(&a);
    wc_close(&p);
    wc_close(&w);
}
END_TEST

START_TEST(test_a_failed_job_goes_dead_and_kick_brings_it_back)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *a = s_client(WIRE_ROLE_ADMIN, "a"), *p = s_client(WIRE_ROLE_PRODUCER, "p");
    wc_t *w = s_client(WIRE_ROLE_WORKER, "w");
    jobq_id_t id;
    s_submit(p, "kq", "fails", 1, &id);
    ck_assert_int_eq(wc_ready(w, 1, "kq"), 0);
    wire_msg_t r;
    s_expect(w, WIRE_DELIVER, &r);
    wire_msg_fini(&r);
    ck_assert_int_eq(wc_result(w, &id, 1, JOBQ_STATUS_FAILED, NULL), 0);
    s_expect(p, WIRE_RESULTS, &r); /* the producer learns it is dead */
    ck_assert_uint_eq(r.results[0].status, JOBQ_STATUS_DEAD);
    wire_msg_fini(&r);
    s_admin(a, 3, "peek-dead", "kq", NULL, 0, &r);
    ck_assert_int_eq(r.type, WIRE_STATS_REPLY);
    ck_assert_msg(memmem(r.data.ptr, r.data.len, "\"state\":\"dead\"", 14), "%.*s", (int)r.data.len,
                  r.data.ptr);
    wire_msg_fini(&r);
    s_admin(a, 4, "kick", "kq", NULL, 0, &r);
    ck_assert_int_eq(r.type, WIRE_OK);
    ck_assert_uint_eq(r.count, 1);
    wire_msg_fini(&r);
    s_expect(w, WIRE_DELIVER, &r); /* back, with its attempts reset */
    ck_assert_int_eq(memcmp(&r.jobs[0].id, &id, 16), 0);
    ck_assert_uint_eq(r.jobs[0].attempt, 2);
    wire_msg_fini(&r);
    wc_close(&a);
    wc_close(&p);
    wc_close(&w);
}
END_TEST

START_TEST(test_delete_bury_peek_and_unknown_verbs)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *a = s_client(WIRE_ROLE_ADMIN, "a"), *p = s_client(WIRE_ROLE_PRODUCER, "p");
    jobq_id_t id1, id2, unknown;
    s_submit(p, "dq", "first", 1, &id1);
    s_submit(p, "dq", "second", 1, &id2);
    jobq_id_generate(&unknown);
    wire_msg_t r;
    s_admin(a, 1, "peek", NULL, &id1, 1, &r);
    ck_assert_int_eq(r.type, WIRE_STATS_REPLY);
    ck_assert_msg(memmem(r.data.ptr, r.data.len, "\"payload\":\"first\"", 17), "%.*s",
                  (int)r.data.len, r.data.ptr);
    wire_msg_fini(&r);
    s_admin(a, 2, "delete", NULL, &id1, 1, &r);
    ck_assert_int_eq(r.type, WIRE_OK);
    ck_assert_uint_eq(r.count, 1);
    wire_msg_fini(&r);
    s_admin(a, 3, "delete", NULL, &unknown, 1, &r);
    ck_assert_int_eq(r.type, WIRE_ERROR);
    ck_assert_uint_eq(r.code, JOBQ_ENOTFOUND);
    wire_msg_fini(&r);
    s_admin(a, 4, "bury", NULL, &id2, 1, &r);
    ck_assert_int_eq(r.type, WIRE_OK);
    wire_msg_fini(&r);
    s_admin(a, 5, "peek-ready", "dq", NULL, 0, &r);
    ck_assert_int_eq(r.type, WIRE_STATS_REPLY);
    ck_assert_msg(memmem(r.data.ptr, r.data.len, "{\"jobs\":[]}", 11), "%.*s", (int)r.data.len,
                  r.data.ptr);
    wire_msg_fini(&r);
    s_admin(a, 6, "frobnicate", NULL, NULL, 0, &r);
    ck_assert_int_eq(r.type, WIRE_ERROR);
    ck_assert_uint_eq(r.code, JOBQ_EINVAL);
    wire_msg_fini(&r);
    /* A producer may not send ADMIN. */
    s_admin(p, 7, "pause", "dq", NULL, 0, &r);
    ck_assert_int_eq(r.type, WIRE_ERROR);
    ck_assert_uint_eq(r.code, JOBQ_EFORBIDDEN);
    wire_msg_fini(&r);
    wc_close(&a);
    wc_close(&p);
}
END_TEST

START_TEST(test_command_front_ends_against_a_real_broker)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p");
    jobq_id_t id;
    s_submit(p, "cli-q", "hello", 1, &id);
    char hex[JOBQ_ID_HEX_LEN + 1], out[65536];
    jobq_id_format(&id, hex);
    const char *stats[] = {"stats", "-u", s_b.url, NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, stats), 0);
    ck_assert_msg(strstr(out, "cli-q") && strstr(out, "QUEUE"), "%s", out);
    const char *json[] = {"stats", "-u", s_b.url, "--json", "-q", "cli-q", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, json), 0);
    ck_assert_int_eq(wc_json_num(out, strlen(out), "ready"), 1);
    const char *peek[] = {"peek", "-u", s_b.url, hex, NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, peek), 0);
    ck_assert_msg(strstr(out, "\"payload\":\"hello\""), "%s", out);
    const char *pause[] = {"pause", "-u", s_b.url, "-q", "cli-q", "30", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, pause), 0);
    const char *resume[] = {"resume", "-u", s_b.url, "-q", "cli-q", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, resume), 0);
    const char *del[] = {"delete", "-u", s_b.url, hex, NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, del), 0);
    ck_assert_msg(strstr(out, "deleted 1"), "%s", out);
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, del), 0); /* its "deleted" result */
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, del), 1); /* gone now */
    const char *bad[] = {"stats", "-u", "shm://nope", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, bad), 2);
    const char *stop[] = {"broker-stop", "-u", s_b.url, NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, stop), 0);
    wc_close(&p);
    int st = -1;
    int64_t deadline = wc_now_ms() + 5000; /* it exits by itself */
    while (waitpid(s_b.pid, &st, WNOHANG) == 0 && wc_now_ms() < deadline)
        usleep(5000); /* reaping poll */
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "broker status %d", st);
    s_b.pid = -1;
}
END_TEST

/* Returns the number after "key": in json, or -1 when absent. */
static double
s_json_double(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(json, pat);
    return at ? strtod(at + strlen(pat), NULL) : -1;
}

START_TEST(test_stats_show_queue_rates_and_each_workers_address_and_jobs)
{
    ck_assert_int_eq(wc_broker_start(&s_b, NULL), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p"), *w = s_client(WIRE_ROLE_WORKER, "w");
    jobq_id_t id;
    for (int i = 0; i < 20; i++)
        s_submit(p, "rq", "x", 1, &id);
    ck_assert_int_eq(wc_ready(w, 1, "rq"), 0);
    wire_msg_t d;
    s_expect(w, WIRE_DELIVER, &d);
    char held[JOBQ_ID_HEX_LEN + 1];
    jobq_id_format(&d.jobs[0].id, held);
    wire_msg_fini(&d);
    usleep(1200 * 1000); /* a second sample after the submits */
    char out[65536];
    const char *args[] = {"stats", "-u", s_b.url, "--json", NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, args), 0);
    /* 20 jobs in about 1-2 s of the window: a rate between 1 and 40 per second */
    double in = s_json_double(out, "submitted_per_s");
    ck_assert_msg(in >= 1 && in <= 40, "submitted_per_s %f in %s", in, out);
    ck_assert_msg(s_json_double(out, "completed_per_s") == 0, "%s", out);
    char want[128];
    snprintf(want, sizeof want, "\"jobs\":[\"%s\"]", held);
    ck_assert_msg(strstr(out, want) != NULL, "no %s in %s", want, out);
    const char *addr = strstr(out, "\"address\":\"");
    ck_assert_msg(addr && addr[11] != '"', "no worker address in %s", out);
    const char *text[] = {"stats", "-u", s_b.url, NULL};
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, text), 0);
    ck_assert_msg(strstr(out, held) && strstr(out, "IN/S"), "%s", out);
    wc_close(&w);
    wc_close(&p);
}
END_TEST

START_TEST(test_stats_without_a_broker_fails_in_time)
{
    char dir[] = "/tmp/jobq-adm-XXXXXX", url[128], out[4096];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(url, sizeof url, "ipc://%s/none.sock", dir);
    const char *stats[] = {"stats", "-u", url, "--timeout", "0.3", NULL};
    int64_t t0 = wc_now_ms();
    ck_assert_int_eq(jobq_test_cmd(out, sizeof out, stats), 1);
    ck_assert_int_lt(wc_now_ms() - t0, 3000);
    rmdir(dir);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("broker_admin");
    TCase *tc = tcase_create("admin");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_add_test(tc, test_stats_show_queue_rates_and_each_workers_address_and_jobs);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pause_holds_a_queue_and_resume_releases_it);
    tcase_add_test(tc, test_a_failed_job_goes_dead_and_kick_brings_it_back);
    tcase_add_test(tc, test_delete_bury_peek_and_unknown_verbs);
    tcase_add_test(tc, test_command_front_ends_against_a_real_broker);
    tcase_add_test(tc, test_stats_without_a_broker_fails_in_time);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return jobq_test_run(s_suite());
}
