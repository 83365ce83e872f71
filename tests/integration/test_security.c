/*
 * tests/integration/test_security.c: CURVE authentication against a real
 * `jobq broker` (RELIABILITY.md section 4): the ZAP allow-list, fail-closed
 * behaviour without a handler, principals on peers and leases, routing-id
 * spoofing, key file checks and secrets hygiene. Real key files in a mkdtemp
 * dir, a broker on tcp://127.0.0.1 with the port it reports (plus an ipc://
 * endpoint to read stats), raw DEALER clients and real `jobq` commands.
 */
#include "jobq_test.h"
#include "net_support.h"
#include "sec_support.h"

#include "jobq/producer.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define NO_REPLY_MS 1500 /* how long a refused client waits to see that nothing comes */

static ss_env_t s_env;
static ss_broker_t s_b;
static void *s_ctx;

static void
s_setup(void)
{
    ck_assert_int_eq(ss_env_init(&s_env), 0);
    s_ctx = zmq_ctx_new();
}

static void
s_teardown(void)
{
    if (s_b.pid > 0)
        ss_broker_stop(&s_b);
    zmq_ctx_destroy(s_ctx);
    ss_env_fini(&s_env);
}

static void
s_start(const char *fault, const char *const *args)
{
    ck_assert_msg(ss_broker_start(&s_b, &s_env, 1, fault, args) == 0, "broker did not start");
}

/* A CURVE client of the broker as key (server key "broker"), rid optional. */
static void *
s_client(const char *key, const char *rid)
{
    return ss_dealer(s_ctx, &s_env, s_b.tcp, key, key ? "broker" : NULL, rid);
}

static int
s_submit(void *sock, const char *q, const char *payload, jobq_id_t *id)
{
    jobq_job_t job;
    jobq_job_init(&job);
    job.queue = q;
    job.queue_len = (uint32_t)strlen(q);
    job.payload = payload;
    job.payload_len = (uint32_t)strlen(payload);
    job.ttr_ms = 60000;
    wire_msg_t m, r;
    wire_msg_init(&m, WIRE_SUBMIT);
    m.fields = WIRE_F_REQ | WIRE_F_JOBS;
    m.req = 7;
    m.jobs = &job;
    m.njobs = 1;
    ck_assert_int_eq(ss_send(sock, &m), 0);
    zmq_msg_t f;
    zmq_msg_init(&f);
    int rc = ss_recv(sock, &f, &r, 5000);
    if (rc == JOBQ_OK)
        rc = r.type == WIRE_SUBMIT_OK && r.ncodes == 1 ? (int)r.codes[0] : JOBQ_EPROTO;
    if (rc == JOBQ_OK && id)
        *id = r.ids[0];
    wire_msg_fini(&r);
    zmq_msg_close(&f);
    return rc;
}

/* READY credit 1 and waits for one DELIVER; returns its attempt. */
static uint32_t
s_take(void *sock, jobq_id_t *id)
{
    wire_msg_t m, d;
    wire_msg_init(&m, WIRE_READY);
    m.fields = WIRE_F_CREDIT;
    m.credit = 1;
    ck_assert_int_eq(ss_send(sock, &m), 0);
    zmq_msg_t f;
    zmq_msg_init(&f);
    int rc;
    while ((rc = ss_recv(sock, &f, &d, 5000)) == JOBQ_OK && d.type != WIRE_DELIVER)
        ;
    ck_assert_jobq_ok(rc);
    *id = d.jobs[0].id;
    uint32_t attempt = d.jobs[0].attempt;
    wire_msg_fini(&d);
    zmq_msg_close(&f);
    return attempt;
}

/* Sends RESULT (or EXTEND when extend) for (id, attempt) and returns the
 * code of its RESULT_OK, or the ERROR code, or JOBQ_ETIMEDOUT. */
static int
s_ack(void *sock, const jobq_id_t *id, uint32_t attempt, int extend)
{
    jobq_result_t res;
    jobq_result_init(&res);
    res.id = *id;
    res.attempt = attempt;
    wire_lease_t l = {*id, attempt};
    wire_msg_t m, r;
    wire_msg_init(&m, extend ? WIRE_EXTEND : WIRE_RESULT);
    m.fields = WIRE_F_REQ | (extend ? WIRE_F_LEASES | WIRE_F_TIMEOUT : WIRE_F_RESULTS);
    m.req = 9;
    m.results = &res;
    m.nresults = 1;
    m.leases = &l;
    m.nleases = 1;
    m.timeout_ms = 60000;
    ck_assert_int_eq(ss_send(sock, &m), 0);
    zmq_msg_t f;
    zmq_msg_init(&f);
    int rc;
    while ((rc = ss_recv(sock, &f, &r, 3000)) == JOBQ_OK && r.type != WIRE_RESULT_OK &&
           r.type != WIRE_ERROR)
        ;
    if (rc == JOBQ_OK)
        rc = r.type == WIRE_ERROR ? (int)r.code : r.ncodes == 1 ? (int)r.codes[0] : JOBQ_EPROTO;
    wire_msg_fini(&r);
    zmq_msg_close(&f);
    return rc;
}

static long long
s_stat(const char *key)
{
    return ns_stat(s_b.ipc, key);
}

/* ---- admission ------------------------------------------------------------ */

START_TEST(test_unknown_key_gets_no_reply_and_the_denial_is_logged)
{
    s_start(NULL, NULL);
    void *c = s_client("mallory", NULL);
    ck_assert_jobq_err(ss_hello(c, WIRE_ROLE_PRODUCER, "mallory", NO_REPLY_MS), JOBQ_ETIMEDOUT);
    ck_assert_int_eq(ns_wait_stat(s_b.ipc, "zap_denied", 1, 5000), 0);
    ck_assert_int_eq(s_stat("producer"), 0);
    char pub[64];
    ck_assert_int_eq(
        ns_read_file(ss_path(&s_env, "mallory", "pub", pub, sizeof pub), pub, sizeof pub) > 40, 1);
    pub[40] = '\0';
    ck_assert(ss_file_has(s_b.err, "zap: denied"));
    ck_assert(ss_file_has(s_b.err, pub));
    zmq_close(c);
}
END_TEST

START_TEST(test_allowed_key_completes_a_job_and_its_principal_shows_in_stats)
{
    s_start(NULL, NULL);
    char key[320], spub[320], werr[320];
    snprintf(werr, sizeof werr, "%s/worker.err", s_env.dir);
    const char *wargv[] = {"worker",
                           "-u",
                           s_b.tcp,
                           "--threads",
                           "1",
                           "--builtin",
                           "upper",
                           "--curve-key",
                           ss_path(&s_env, "alice", "key", key, sizeof key),
                           "--curve-server",
                           ss_path(&s_env, "broker", "pub", spub, sizeof spub),
                           NULL};
    pid_t w = ns_spawn(wargv, NULL, werr);
    ck_assert_int_gt(w, 0);
    jobq_producer_opts_t po = {0};
    char bkey[320];
    po.curve_key = ss_path(&s_env, "bob", "key", bkey, sizeof bkey);
    po.curve_server = spub;
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(s_b.tcp, &po, &p));
    jobq_job_t job;
    ns_job(&job, "default", "hello", 0, 0);
    ck_assert_jobq_ok(jobq_producer_submit(p, &job, 5000));
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_producer_wait(p, &job.id, &res, 10000));
    ck_assert_int_eq(res.output_len, 5);
    ck_assert(memcmp(res.output, "HELLO", 5) == 0);
    char js[65536];
    ck_assert_int_gt(ns_stats(s_b.ipc, js, sizeof js), 0);
    ck_assert_msg(strstr(js, "\"principal\":\"alice\""), "no principal in %s", js);
    ck_assert(strstr(js, "{\"name\":\"bob\""));
    jobq_producer_destroy(&p);
    kill(w, SIGTERM);
    ns_reap(w, 10000);
}
END_TEST

START_TEST(test_the_producer_api_reports_a_refused_key_as_eauth)
{
    s_start(NULL, NULL);
    char key[320], spub[320];
    jobq_producer_opts_t po = {0};
    po.curve_key = ss_path(&s_env, "mallory", "key", key, sizeof key);
    po.curve_server = ss_path(&s_env, "broker", "pub", spub, sizeof spub);
    jobq_producer_t *p = NULL;
    int64_t t0 = ss_now_ms();
    ck_assert_jobq_err(jobq_producer_open(s_b.tcp, &po, &p), JOBQ_EAUTH);
    ck_assert_int_lt(ss_now_ms() - t0, 4000); /* noticed, not the 5 s connect timeout */
    ck_assert_ptr_null(p);
    po.curve_key = ss_path(&s_env, "alice", "key", key, sizeof key);
    po.curve_server = ss_path(&s_env, "mallory", "pub", spub, sizeof spub); /* wrong server */
    ck_assert_jobq_err(jobq_producer_open(s_b.tcp, &po, &p), JOBQ_EAUTH);
}
END_TEST

START_TEST(test_no_zap_handler_fails_closed)
{
    s_start("zap.off", NULL);
    void *c = s_client("alice", NULL);
    ck_assert_jobq_err(ss_hello(c, WIRE_ROLE_PRODUCER, "alice", NO_REPLY_MS), JOBQ_ETIMEDOUT);
    ck_assert_int_eq(s_stat("producer"), 0);
    ck_assert_int_eq(s_stat("submitted"), 0);
    zmq_close(c);
}
END_TEST

START_TEST(test_stalled_zap_handler_admits_no_one_new_and_keeps_old_sessions)
{
    s_start("zap.stall:2", NULL); /* the first handshake is answered, later ones not */
    void *a = s_client("alice", NULL);
    ck_assert_jobq_ok(ss_hello(a, WIRE_ROLE_PRODUCER, "alice", 5000));
    void *b = s_client("bob", NULL);
    ck_assert_jobq_err(ss_hello(b, WIRE_ROLE_PRODUCER, "bob", NO_REPLY_MS), JOBQ_ETIMEDOUT);
    ck_assert_jobq_ok(s_submit(a, "q", "still works", NULL));
    ck_assert_int_eq(s_stat("submitted"), 1);
    zmq_close(a);
    zmq_close(b);
}
END_TEST

START_TEST(test_null_and_plain_clients_are_rejected)
{
    s_start(NULL, NULL);
    void *n = s_client(NULL, NULL);
    ck_assert_jobq_err(ss_hello(n, WIRE_ROLE_PRODUCER, "null", NO_REPLY_MS), JOBQ_ETIMEDOUT);
    void *p = s_client(NULL, NULL);
    zmq_close(p);
    p = zmq_socket(s_ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(p, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(p, ZMQ_PLAIN_USERNAME, "alice", 5);
    zmq_setsockopt(p, ZMQ_PLAIN_PASSWORD, "secret", 6);
    ck_assert_int_eq(zmq_connect(p, s_b.tcp), 0);
    ck_assert_jobq_err(ss_hello(p, WIRE_ROLE_PRODUCER, "plain", NO_REPLY_MS), JOBQ_ETIMEDOUT);
    ck_assert_int_eq(s_stat("producer"), 0);
    zmq_close(n);
    zmq_close(p);
}
END_TEST

START_TEST(test_wrong_server_key_cannot_complete_the_handshake)
{
    s_start(NULL, NULL);
    void *c = ss_dealer(s_ctx, &s_env, s_b.tcp, "alice", "mallory", NULL);
    ck_assert_jobq_err(ss_hello(c, WIRE_ROLE_PRODUCER, "alice", NO_REPLY_MS), JOBQ_ETIMEDOUT);
    ck_assert_int_eq(s_stat("producer"), 0);
    zmq_close(c);
}
END_TEST

/* ---- principals and leases ------------------------------------------------ */

START_TEST(test_another_principal_cannot_ack_or_extend_a_lease)
{
    s_start(NULL, NULL);
    void *prod = s_client("alice", NULL), *wa = s_client("alice", NULL),
         *wb = s_client("bob", NULL);
    ck_assert_jobq_ok(ss_hello(prod, WIRE_ROLE_PRODUCER, "p", 5000));
    ck_assert_jobq_ok(ss_hello(wa, WIRE_ROLE_WORKER, "wa", 5000));
    ck_assert_jobq_ok(ss_hello(wb, WIRE_ROLE_WORKER, "wb", 5000));
    jobq_id_t id, got;
    ck_assert_jobq_ok(s_submit(prod, "q", "x", &id));
    uint32_t attempt = s_take(wa, &got);
    ck_assert(memcmp(&id, &got, sizeof id) == 0);
    ck_assert_jobq_err(s_ack(wb, &id, attempt, 1), JOBQ_EFORBIDDEN);
    ck_assert_jobq_err(s_ack(wb, &id, attempt, 0), JOBQ_EFORBIDDEN);
    ck_assert_int_eq(s_stat("reserved"), 1); /* alice's lease is untouched */
    ck_assert_int_eq(s_stat("done"), 0);
    ck_assert_jobq_ok(s_ack(wa, &id, attempt, 1));
    ck_assert_jobq_ok(s_ack(wa, &id, attempt, 0));
    ck_assert_int_eq(ns_wait_stat(s_b.ipc, "done", 1, 5000), 0);
    zmq_close(prod);
    zmq_close(wa);
    zmq_close(wb);
}
END_TEST

START_TEST(test_a_routing_id_spoofer_cannot_ack_the_owners_jobs)
{
    s_start(NULL, NULL);
    void *prod = s_client("alice", NULL), *wa = s_client("alice", "w1");
    ck_assert_jobq_ok(ss_hello(prod, WIRE_ROLE_PRODUCER, "p", 5000));
    ck_assert_jobq_ok(ss_hello(wa, WIRE_ROLE_WORKER, "wa", 5000));
    jobq_id_t id;
    ck_assert_jobq_ok(s_submit(prod, "q", "x", NULL));
    uint32_t attempt = s_take(wa, &id);
    /* While alice is connected, a second connection with her routing id is
     * not routed at all (ROUTER_HANDOVER stays 0). */
    void *sp = s_client("bob", "w1");
    ck_assert_jobq_err(ss_hello(sp, WIRE_ROLE_WORKER, "spoof", NO_REPLY_MS), JOBQ_ETIMEDOUT);
    zmq_close(sp);
    /* After alice's connection is gone (her peer entry lives until its
     * heartbeats lapse), bob on the same routing id is refused. */
    zmq_close(wa);
    int refused = 0;
    for (int64_t end = ss_now_ms() + 10000; !refused && ss_now_ms() < end;) {
        sp = s_client("bob", "w1");
        refused = s_ack(sp, &id, attempt, 0) == JOBQ_EFORBIDDEN;
        zmq_close(sp);
    }
    ck_assert(refused);
    ck_assert_int_ge(s_stat("principal_refused"), 1);
    ck_assert_int_eq(s_stat("done"), 0);
    zmq_close(prod);
}
END_TEST

START_TEST(test_a_principal_holds_at_most_max_leases)
{
    const char *args[] = {"--max-leases", "3", NULL};
    s_start(NULL, args);
    void *prod = s_client("bob", NULL), *w1 = s_client("alice", NULL),
         *w2 = s_client("alice", NULL), *wb = s_client("bob", NULL);
    ck_assert_jobq_ok(ss_hello(prod, WIRE_ROLE_PRODUCER, "p", 5000));
    for (int i = 0; i < 6; i++)
        ck_assert_jobq_ok(s_submit(prod, "q", "x", NULL));
    ck_assert_jobq_ok(ss_hello(w1, WIRE_ROLE_WORKER, "w1", 5000));
    ck_assert_jobq_ok(ss_hello(w2, WIRE_ROLE_WORKER, "w2", 5000));
    wire_msg_t m;
    wire_msg_init(&m, WIRE_READY);
    m.fields = WIRE_F_CREDIT;
    m.credit = 2;
    ck_assert_int_eq(ss_send(w1, &m), 0);
    ck_assert_int_eq(ss_send(w2, &m), 0);
    ck_assert_int_eq(ns_wait_stat(s_b.ipc, "reserved", 3, 5000), 0);
    ck_assert_int_eq(ss_wait_ge(s_b.ipc, "lease_capped", 1, 5000), 0);
    ck_assert_int_eq(s_stat("reserved"), 3); /* not 4: alice's cap */
    ck_assert_int_eq(s_stat("ready"), 3);
    ck_assert_jobq_ok(ss_hello(wb, WIRE_ROLE_WORKER, "wb", 5000)); /* bob is still served */
    ck_assert_int_eq(ss_send(wb, &m), 0);
    ck_assert_int_eq(ns_wait_stat(s_b.ipc, "reserved", 5, 5000), 0);
    zmq_close(prod);
    zmq_close(w1);
    zmq_close(w2);
    zmq_close(wb);
}
END_TEST

/* ---- startup checks and hygiene ------------------------------------------- */

START_TEST(test_non_loopback_bind_needs_curve_or_insecure)
{
    char err[320];
    snprintf(err, sizeof err, "%s/refused.err", s_env.dir);
    const char *plain[] = {"broker", "-l", "tcp://0.0.0.0:0", NULL};
    ck_assert_int_eq(ss_run(plain, NULL, err, 10000), 2);
    ck_assert(ss_file_has(err, "--curve-key/--curve-clients"));
    ck_assert(ss_file_has(err, "--insecure"));
    const char *insecure[] = {"-l", "tcp://0.0.0.0:0", "--insecure", NULL};
    ck_assert_int_eq(ss_broker_start(&s_b, &s_env, 0, NULL, insecure), 0);
    ck_assert(ss_file_has(s_b.err, "WITHOUT AUTHENTICATION"));
    ss_broker_stop(&s_b);
    s_start(NULL, NULL); /* CURVE: no --insecure needed, on 127.0.0.1 here */
    ck_assert(!ss_file_has(s_b.err, "WITHOUT AUTHENTICATION"));
}
END_TEST

START_TEST(test_unsafe_key_files_refuse_to_start)
{
    char key[320], err[320], spub[320];
    snprintf(err, sizeof err, "%s/perm.err", s_env.dir);
    ss_path(&s_env, "broker", "key", key, sizeof key);
    const char *argv[] = {"broker",      "-l", "tcp://127.0.0.1:0",
                          "--curve-key", key,  "--curve-clients",
                          s_env.clients, NULL};
    ck_assert_int_eq(chmod(key, 0644), 0);
    ck_assert_int_eq(ss_run(argv, NULL, err, 10000), 2);
    ck_assert(ss_file_has(err, "chmod 600"));
    ck_assert_int_eq(chmod(key, 0600), 0);
    ck_assert_int_eq(chmod(s_env.clients, 0777), 0);
    ck_assert_int_eq(ss_run(argv, NULL, err, 10000), 2);
    ck_assert(ss_file_has(err, "group- or world-writable"));
    ck_assert_int_eq(chmod(s_env.clients, 0700), 0);
    /* A client with a readable secret key refuses too. */
    s_start(NULL, NULL);
    ck_assert_int_eq(chmod(ss_path(&s_env, "alice", "key", key, sizeof key), 0640), 0);
    const char *sub[] = {"submit",
                         "-u",
                         s_b.tcp,
                         "--curve-key",
                         key,
                         "--curve-server",
                         ss_path(&s_env, "broker", "pub", spub, sizeof spub),
                         "x",
                         NULL};
    ck_assert_int_ne(ss_run(sub, NULL, err, 10000), 0);
    ck_assert(ss_file_has(err, "chmod 600"));
}
END_TEST

START_TEST(test_secret_keys_never_appear_in_logs_or_stats)
{
    setenv("JOBQ_LOG", "debug", 1);
    s_start(NULL, NULL);
    char key[320], spub[320], werr[320], sout[320], serr[320];
    snprintf(werr, sizeof werr, "%s/worker.err", s_env.dir);
    snprintf(sout, sizeof sout, "%s/submit.out", s_env.dir);
    snprintf(serr, sizeof serr, "%s/submit.err", s_env.dir);
    ss_path(&s_env, "broker", "pub", spub, sizeof spub);
    const char *wargv[] = {
        "worker",         "-u",          s_b.tcp,
        "--threads",      "1",           "--builtin",
        "echo",           "--curve-key", ss_path(&s_env, "alice", "key", key, sizeof key),
        "--curve-server", spub,          NULL};
    pid_t w = ns_spawn(wargv, NULL, werr);
    char bkey[320];
    const char *sargv[] = {"submit",
                           "-u",
                           s_b.tcp,
                           "--wait",
                           "-T",
                           "20",
                           "--curve-key",
                           ss_path(&s_env, "bob", "key", bkey, sizeof bkey),
                           "--curve-server",
                           spub,
                           "a",
                           "b",
                           NULL};
    ck_assert_int_eq(ss_run(sargv, sout, serr, 30000), 0);
    const char *stats[] = {"stats",          "-u", s_b.tcp, "--json", "--curve-key", bkey,
                           "--curve-server", spub, NULL};
    char stout[320];
    snprintf(stout, sizeof stout, "%s/stats.out", s_env.dir);
    ck_assert_int_eq(ss_run(stats, stout, serr, 10000), 0);
    kill(w, SIGTERM);
    ns_reap(w, 10000);
    ss_broker_stop(&s_b);
    ck_assert(ss_file_has(stout, "\"principal\":\"alice\""));
    static const char *const names[] = {"broker", "alice", "bob"};
    const char *files[] = {s_b.err, s_b.out, werr, sout, serr, stout};
    for (size_t i = 0; i < 3; i++) {
        char sec[64], path[320];
        ck_assert_int_eq(ss_secret_of(ss_path(&s_env, names[i], "key", path, sizeof path), sec), 0);
        for (size_t f = 0; f < sizeof files / sizeof files[0]; f++)
            ck_assert_msg(!ss_file_has(files[f], sec), "%s's secret key is in %s", names[i],
                          files[f]);
    }
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("security");
    TCase *tc = tcase_create("curve");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unknown_key_gets_no_reply_and_the_denial_is_logged);
    tcase_add_test(tc, test_allowed_key_completes_a_job_and_its_principal_shows_in_stats);
    tcase_add_test(tc, test_the_producer_api_reports_a_refused_key_as_eauth);
    tcase_add_test(tc, test_no_zap_handler_fails_closed);
    tcase_add_test(tc, test_stalled_zap_handler_admits_no_one_new_and_keeps_old_sessions);
    tcase_add_test(tc, test_null_and_plain_clients_are_rejected);
    tcase_add_test(tc, test_wrong_server_key_cannot_complete_the_handshake);
    tcase_add_test(tc, test_another_principal_cannot_ack_or_extend_a_lease);
    tcase_add_test(tc, test_a_routing_id_spoofer_cannot_ack_the_owners_jobs);
    tcase_add_test(tc, test_a_principal_holds_at_most_max_leases);
    tcase_add_test(tc, test_non_loopback_bind_needs_curve_or_insecure);
    tcase_add_test(tc, test_unsafe_key_files_refuse_to_start);
    tcase_add_test(tc, test_secret_keys_never_appear_in_logs_or_stats);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return jobq_test_run(s_suite());
}
