/*
 * tests/integration/test_broker_basic.c: a real `jobq broker` on an ipc://
 * path in a temp dir, driven by raw DEALER clients (tests/support/
 * wire_client.h): the handshake, submit -> deliver -> result -> pushed
 * result, WAIT and JOIN, duplicate ids, queue limits, STATS as JSON, the
 * sentinel, role rules, the insecure-bind refusal and the SIGTERM drain.
 */
#include "jobq_test.h"
#include "wire_client.h"

#include "jobq/errors.h"
#include "jobq/producer.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_T 5000 /* ms: bound of every wait that should succeed */

static wc_broker_t s_b;

static void
s_start(const char *const *args)
{
    ck_assert_msg(wc_broker_start(&s_b, args) == 0, "broker did not start (JOBQ_BIN=%s)",
                  getenv("JOBQ_BIN"));
}

static void
s_teardown(void)
{
    wc_broker_stop(&s_b, 5000);
}

/* A client that said HELLO with role and a long heartbeat (5 s). */
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
    ck_assert_msg(rc == JOBQ_OK, "no %s within %d ms: %s", wire_type_name(type), S_T,
                  jobq_errname(rc));
}

/* Receives the next message and checks its type (ERROR shows its text). */
static void
s_next(wc_t *c, wire_type type, wire_msg_t *m)
{
    ck_assert_jobq_ok(wc_recv(c, m, S_T));
    ck_assert_msg(m->type == type, "got %s (%.*s), expected %s", wire_type_name(m->type),
                  (int)m->msg.len, m->msg.ptr ? m->msg.ptr : "", wire_type_name(type));
}

static void
s_submit_ok(wc_t *p, uint64_t req, const char *q, const char *const *pl, size_t n, jobq_id_t *ids)
{
    wire_msg_t m;
    ck_assert_int_eq(wc_submit(p, req, q, pl, n, 0, 0, NULL), 0);
    s_next(p, WIRE_SUBMIT_OK, &m);
    ck_assert_uint_eq(m.req, req);
    ck_assert_uint_eq(m.nids, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(m.codes[i], JOBQ_OK);
        if (ids)
            ids[i] = m.ids[i];
    }
    wire_msg_fini(&m);
}

/* Worker w takes n jobs (any number of DELIVER frames) and reports each
 * done with its payload upper-cased. */
static void
s_work(wc_t *w, size_t n)
{
    size_t got = 0;
    while (got < n) {
        wire_msg_t d;
        s_expect(w, WIRE_DELIVER, &d);
        for (uint32_t i = 0; i < d.njobs; i++, got++) {
            char out[64] = "";
            uint32_t len = d.jobs[i].payload_len < 63 ? d.jobs[i].payload_len : 63;
            for (uint32_t k = 0; k < len; k++) {
                char ch = ((const char *)d.jobs[i].payload)[k];
                out[k] = ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
            }
            ck_assert_uint_eq(d.jobs[i].attempt, 1);
            ck_assert_int_eq(wc_result(w, &d.jobs[i].id, d.jobs[i].attempt, JOBQ_STATUS_DONE, out),
                             0);
        }
        wire_msg_fini(&d);
    }
    ck_assert_uint_eq(got, n);
}

static char *
s_stats(wc_t *c, uint64_t req, size_t *len)
{
    wire_msg_t m, r;
    wire_msg_init(&m, WIRE_STATS);
    m.fields = WIRE_F_REQ;
    m.req = req;
    ck_assert_int_eq(wc_send(c, &m), 0);
    s_expect(c, WIRE_STATS_REPLY, &r);
    ck_assert_uint_eq(r.req, req);
    char *s = malloc(r.data.len + 1);
    memcpy(s, r.data.ptr, r.data.len);
    s[r.data.len] = '\0';
    *len = r.data.len;
    wire_msg_fini(&r);
    return s;
}

START_TEST(test_hello_is_answered_with_welcome_and_the_agreed_heartbeat)
{
    s_start(NULL);
    wc_t *c = wc_connect(s_b.url);
    wire_msg_t h, w;
    wire_msg_init(&h, WIRE_HELLO);
    h.fields = WIRE_F_ROLE | WIRE_F_HB;
    h.role = WIRE_ROLE_PRODUCER;
    h.hb_ms = 150;
    ck_assert_int_eq(wc_send(c, &h), 0);
    s_next(c, WIRE_WELCOME, &w);
    ck_assert_uint_eq(w.hb_ms, 150);
    ck_assert_uint_eq(w.flags & 1u, 0); /* not durable: memory only */
    ck_assert_msg(w.msg.len >= 4 && memcmp(w.msg.ptr, "jobq", 4) == 0, "version text");
    wire_msg_fini(&w);
    wc_close(&c);
}
END_TEST

START_TEST(test_submitted_jobs_are_delivered_and_their_results_pushed_to_the_producer)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p"), *w = s_client(WIRE_ROLE_WORKER, "w");
    const char *pl[] = {"alpha", "beta", "gamma"};
    jobq_id_t ids[3];
    s_submit_ok(p, 1, "emails", pl, 3, ids);
    ck_assert_int_eq(wc_ready(w, 4, "emails"), 0);
    s_work(w, 3);
    wire_msg_t ok;
    size_t acked = 0;
    while (acked < 3) {
        s_expect(w, WIRE_RESULT_OK, &ok);
        for (uint32_t i = 0; i < ok.ncodes; i++)
            ck_assert_uint_eq(ok.codes[i], JOBQ_OK);
        acked += ok.ncodes;
        wire_msg_fini(&ok);
    }
    int seen[3] = {0};
    for (size_t got = 0; got < 3;) {
        wire_msg_t r;
        s_expect(p, WIRE_RESULTS, &r);
        ck_assert_msg(!(r.fields & WIRE_F_REQ), "a pushed RESULTS carries no req");
        for (uint32_t i = 0; i < r.nresults; i++, got++) {
            int k = memcmp(&r.results[i].id, &ids[0], 16) == 0   ? 0
                    : memcmp(&r.results[i].id, &ids[1], 16) == 0 ? 1
                                                                 : 2;
            ck_assert_int_eq(memcmp(&r.results[i].id, &ids[k], 16), 0);
            const char *want[] = {"ALPHA", "BETA", "GAMMA"};
            ck_assert_uint_eq(r.results[i].status, JOBQ_STATUS_DONE);
            ck_assert_uint_eq(r.results[i].output_len, strlen(want[k]));
            ck_assert_int_eq(memcmp(r.results[i].output, want[k], strlen(want[k])), 0);
            seen[k]++;
        }
        wire_msg_fini(&r);
    }
    ck_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    wc_close(&p);
    wc_close(&w);
}
END_TEST

static void
s_wait(wc_t *c, uint64_t req, const jobq_id_t *id, int64_t timeout_ms)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_WAIT);
    m.fields = WIRE_F_REQ | WIRE_F_IDS | WIRE_F_TIMEOUT;
    m.req = req;
    m.ids = (jobq_id_t *)id;
    m.nids = 1;
    m.timeout_ms = (uint64_t)timeout_ms;
    ck_assert_int_eq(wc_send(c, &m), 0);
}

START_TEST(test_wait_returns_a_finished_job_to_another_connection)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p"), *w = s_client(WIRE_ROLE_WORKER, "w");
    const char *pl[] = {"x"};
    jobq_id_t id;
    s_submit_ok(p, 1, "q", pl, 1, &id);
    ck_assert_int_eq(wc_ready(w, 1, NULL), 0);
    s_work(w, 1);
    wire_msg_t r;
    s_expect(p, WIRE_RESULTS, &r); /* the submitter got it pushed */
    wire_msg_fini(&r);
    wc_close(&p);
    wc_t *p2 = s_client(WIRE_ROLE_PRODUCER, "p2");
    s_wait(p2, 7, &id, 1000);
    s_next(p2, WIRE_RESULTS, &r);
    ck_assert_uint_eq(r.req, 7);
    ck_assert_uint_eq(r.count, 1);
    ck_assert_uint_eq(r.nresults, 1);
    ck_assert_int_eq(memcmp(&r.results[0].id, &id, 16), 0);
    ck_assert_int_eq(memcmp(r.results[0].output, "X", 1), 0);
    wire_msg_fini(&r);
    jobq_id_t unknown;
    jobq_id_generate(&unknown);
    s_wait(p2, 8, &unknown, 1000);
    s_next(p2, WIRE_ERROR, &r);
    ck_assert_uint_eq(r.req, 8);
    ck_assert_uint_eq(r.code, JOBQ_ENOTFOUND);
    wire_msg_fini(&r);
    wc_close(&p2);
    wc_close(&w);
}
END_TEST

START_TEST(test_wait_parks_until_the_result_arrives_or_times_out)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p");
    const char *pl[] = {"a", "b"};
    jobq_id_t ids[2];
    s_submit_ok(p, 1, "q", pl, 2, ids);
    wire_msg_t r;
    int64_t t0 = wc_now_ms();
    s_wait(p, 2, &ids[0], 200); /* no worker: times out */
    s_next(p, WIRE_ERROR, &r);
    ck_assert_uint_eq(r.code, JOBQ_ETIMEDOUT);
    ck_assert_uint_eq(r.req, 2);
    ck_assert_int_ge(wc_now_ms() - t0, 150);
    wire_msg_fini(&r);
    s_wait(p, 3, &ids[1], 10000);
    size_t len;
    free(s_stats(p, 4, &len)); /* the WAIT is parked before any work starts */
    wc_t *w = s_client(WIRE_ROLE_WORKER, "w");
    ck_assert_int_eq(wc_ready(w, 2, "q"), 0);
    s_work(w, 2);
    /* The WAIT reply carries ids[1]; ids[0] comes pushed. Exactly one each. */
    int n0 = 0, n1 = 0;
    while (n0 + n1 < 2) {
        s_expect(p, WIRE_RESULTS, &r);
        for (uint32_t i = 0; i < r.nresults; i++) {
            int is1 = memcmp(&r.results[i].id, &ids[1], 16) == 0;
            if (is1)
                ck_assert_uint_eq(r.req, 3);
            n1 += is1;
            n0 += !is1;
        }
        wire_msg_fini(&r);
    }
    ck_assert_int_eq(n0, 1);
    ck_assert_int_eq(n1, 1);
    ck_assert_int_eq(wc_recv_type(p, WIRE_RESULTS, &r, 300), JOBQ_ETIMEDOUT);
    wc_close(&p);
    wc_close(&w);
}
END_TEST

static void
s_join(wc_t *c, uint64_t req, const char *q, int64_t timeout_ms)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_JOIN);
    m.fields = WIRE_F_REQ | WIRE_F_QUEUE | WIRE_F_TIMEOUT;
    m.req = req;
    m.queue = (wire_str_t){q, (uint32_t)strlen(q)};
    m.timeout_ms = (uint64_t)timeout_ms;
    ck_assert_int_eq(wc_send(c, &m), 0);
}

START_TEST(test_join_returns_when_the_queue_is_done_and_times_out_otherwise)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p");
    const char *pl[] = {"a", "b"};
    s_submit_ok(p, 1, "jq", pl, 2, NULL);
    wire_msg_t r;
    s_join(p, 2, "jq", 200);
    s_expect(p, WIRE_JOIN_OK, &r);
    ck_assert_uint_eq(r.req, 2);
    ck_assert_uint_eq(r.count, 2); /* timed out with 2 unfinished */
    wire_msg_fini(&r);
    s_join(p, 3, "jq", 10000);
    size_t len;
    free(s_stats(p, 5, &len));
    wc_t *w = s_client(WIRE_ROLE_WORKER, "w");
    ck_assert_int_eq(wc_ready(w, 4, "jq"), 0);
    s_work(w, 2);
    s_expect(p, WIRE_JOIN_OK, &r);
    ck_assert_uint_eq(r.req, 3);
    ck_assert_uint_eq(r.count, 0);
    wire_msg_fini(&r);
    s_join(p, 4, "never-used", 10000); /* nothing unfinished: at once */
    s_expect(p, WIRE_JOIN_OK, &r);
    ck_assert_uint_eq(r.req, 4);
    ck_assert_uint_eq(r.count, 0);
    wire_msg_fini(&r);
    wc_close(&p);
    wc_close(&w);
}
END_TEST

START_TEST(test_duplicate_id_is_answered_eduplicate_with_the_same_id)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p");
    jobq_id_t id;
    jobq_id_generate(&id);
    const char *pl[] = {"once"};
    wire_msg_t r;
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(wc_submit(p, 10 + k, "q", pl, 1, 0, 0, &id), 0);
        s_next(p, WIRE_SUBMIT_OK, &r);
        ck_assert_uint_eq(r.codes[0], k == 0 ? JOBQ_OK : JOBQ_EDUPLICATE);
        ck_assert_int_eq(memcmp(&r.ids[0], &id, 16), 0);
        wire_msg_fini(&r);
    }
    wc_close(&p);
}
END_TEST

START_TEST(test_queue_full_refuses_the_job_past_the_limit)
{
    const char *args[] = {"--max-jobs", "2", NULL};
    s_start(args);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p");
    const char *pl[] = {"1", "2", "3"};
    wire_msg_t r;
    ck_assert_int_eq(wc_submit(p, 1, "small", pl, 3, 0, 0, NULL), 0);
    s_next(p, WIRE_SUBMIT_OK, &r);
    ck_assert_uint_eq(r.ncodes, 3);
    ck_assert_uint_eq(r.codes[0], JOBQ_OK);
    ck_assert_uint_eq(r.codes[1], JOBQ_OK);
    ck_assert_uint_eq(r.codes[2], JOBQ_EQUEUEFULL);
    wire_msg_fini(&r);
    wc_close(&p);
}
END_TEST

START_TEST(test_stats_is_valid_json_with_queue_and_worker_counters)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p"), *w = s_client(WIRE_ROLE_WORKER, "w\"1");
    const char *pl[] = {"a", "b", "c"};
    s_submit_ok(p, 1, "sq", pl, 3, NULL);
    ck_assert_int_eq(wc_ready(w, 1, "sq"), 0);
    wire_msg_t d;
    s_expect(w, WIRE_DELIVER, &d); /* one held, two ready */
    wire_msg_fini(&d);
    wc_t *a = s_client(WIRE_ROLE_ADMIN, "a");
    size_t len;
    char *json = s_stats(a, 5, &len);
    ck_assert_msg(json[0] == '{' && json[len - 1] == '}', "%s", json);
    char path[512];
    snprintf(path, sizeof path, "%s/stats.json", s_b.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(json, f);
    fclose(f);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "python3 -m json.tool %s > /dev/null", path);
    int st = system(cmd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "not valid JSON: %s", json);
    unlink(path);
    ck_assert_int_eq(wc_json_num(json, len, "ready"), 2);
    ck_assert_int_eq(wc_json_num(json, len, "reserved"), 1);
    ck_assert_int_eq(wc_json_num(json, len, "held"), 1);
    ck_assert_int_eq(wc_json_num(json, len, "submitted"), 3);
    ck_assert_int_eq(wc_json_num(json, len, "worker"), 1);
    ck_assert_msg(strstr(json, "\"durable\":false"), "%s", json);
    free(json);
    wc_close(&a);
    wc_close(&p);
    wc_close(&w);
}
END_TEST

START_TEST(test_stop_workers_sends_a_sentinel_to_each_worker)
{
    s_start(NULL);
    wc_t *w1 = s_client(WIRE_ROLE_WORKER, "w1"), *w2 = s_client(WIRE_ROLE_WORKER, "w2");
    wc_t *w3 = s_client(WIRE_ROLE_WORKER, "w3");
    ck_assert_int_eq(wc_ready(w1, 1, "a"), 0);
    ck_assert_int_eq(wc_ready(w2, 1, NULL), 0); /* every queue: serves "a" too */
    ck_assert_int_eq(wc_ready(w3, 1, "b"), 0);
    wc_t *a = s_client(WIRE_ROLE_ADMIN, "admin");
    size_t len;
    free(s_stats(w3, 1, &len)); /* READYs are processed in order before this */
    free(s_stats(w2, 1, &len));
    free(s_stats(w1, 1, &len));
    wire_msg_t m, r;
    wire_msg_init(&m, WIRE_STOP_WORKERS);
    m.fields = WIRE_F_REQ | WIRE_F_QUEUE;
    m.req = 9;
    m.queue = (wire_str_t){"a", 1};
    ck_assert_int_eq(wc_send(a, &m), 0);
    s_next(a, WIRE_OK, &r);
    ck_assert_uint_eq(r.req, 9);
    ck_assert_uint_eq(r.count, 2);
    wire_msg_fini(&r);
    s_expect(w1, WIRE_SENTINEL, &r);
    wire_msg_fini(&r);
    s_expect(w2, WIRE_SENTINEL, &r);
    wire_msg_fini(&r);
    ck_assert_int_eq(wc_recv_type(w3, WIRE_SENTINEL, &r, 300), JOBQ_ETIMEDOUT);
    /* A stopped worker gets no more jobs. */
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p");
    const char *pl[] = {"j"};
    s_submit_ok(p, 1, "a", pl, 1, NULL);
    ck_assert_int_eq(wc_recv_type(w1, WIRE_DELIVER, &r, 300), JOBQ_ETIMEDOUT);
    wc_close(&p);
    wc_close(&a);
    wc_close(&w1);
    wc_close(&w2);
    wc_close(&w3);
}
END_TEST

START_TEST(test_messages_before_hello_get_estate_then_disconnect)
{
    s_start(NULL);
    wc_t *c = wc_connect(s_b.url);
    wc_keep_heartbeats(c, 1);
    ck_assert_int_eq(wc_ready(c, 4, "q"), 0);
    wire_msg_t r;
    s_next(c, WIRE_ERROR, &r);
    ck_assert_uint_eq(r.code, JOBQ_ESTATE);
    wire_msg_fini(&r);
    s_next(c, WIRE_DISCONNECT, &r);
    wire_msg_fini(&r);
    wc_close(&c);
}
END_TEST

START_TEST(test_a_producer_may_not_send_worker_messages)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p");
    ck_assert_int_eq(wc_ready(p, 4, "q"), 0);
    wire_msg_t r;
    s_next(p, WIRE_ERROR, &r);
    ck_assert_uint_eq(r.code, JOBQ_EFORBIDDEN);
    wire_msg_fini(&r);
    jobq_id_t id;
    jobq_id_generate(&id);
    ck_assert_int_eq(wc_result(p, &id, 1, JOBQ_STATUS_DONE, "x"), 0);
    s_next(p, WIRE_ERROR, &r);
    ck_assert_uint_eq(r.code, JOBQ_EFORBIDDEN);
    wire_msg_fini(&r);
    /* Still served for what a producer may do. */
    const char *pl[] = {"ok"};
    s_submit_ok(p, 3, "q", pl, 1, NULL);
    wc_close(&p);
}
END_TEST

/* Runs `jobq broker ARGS...` and returns its exit status (it must exit by
 * itself within 5 s). */
static int
s_run_broker(const char *const *args)
{
    const char *bin = getenv("JOBQ_BIN");
    const char *argv[16] = {bin, "broker"};
    size_t n = 2;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = -1;
    int64_t deadline = wc_now_ms() + 5000;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (wc_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            ck_abort_msg("broker %s did not exit", args[0]);
        }
        usleep(5000); /* reaping poll */
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_non_loopback_tcp_without_insecure_is_refused_with_exit_2)
{
    const char *args[] = {"--listen", "tcp://0.0.0.0:0", NULL};
    ck_assert_int_eq(s_run_broker(args), 2);
    const char *args2[] = {"--listen", "ftp://x", NULL};
    ck_assert_int_eq(s_run_broker(args2), 2);
}
END_TEST

START_TEST(test_tcp_port_zero_binds_and_reports_the_real_port)
{
    const char *bin = getenv("JOBQ_BIN");
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        execl(bin, bin, "broker", "--listen", "tcp://127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[256];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    char *port = strrchr(line, ':');
    ck_assert_msg(strncmp(line, "listening on tcp://127.0.0.1:", 29) == 0 && port &&
                      atoi(port + 1) > 0,
                  "%s", line);
    line[strcspn(line, "\n")] = '\0';
    wc_t *c = wc_connect(line + strlen("listening on "));
    ck_assert_jobq_ok(wc_hello(c, WIRE_ROLE_ADMIN, 5000, "a"));
    wc_close(&c);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    fclose(f);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

START_TEST(test_sigterm_drains_leased_jobs_refuses_submits_and_exits_0)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, "p"), *w = s_client(WIRE_ROLE_WORKER, "w");
    const char *pl[] = {"slow"};
    s_submit_ok(p, 1, "q", pl, 1, NULL);
    ck_assert_int_eq(wc_ready(w, 1, "q"), 0);
    wire_msg_t d, r;
    s_expect(w, WIRE_DELIVER, &d);
    jobq_id_t id = d.jobs[0].id;
    wire_msg_fini(&d);
    kill(s_b.pid, SIGTERM);
    int draining = 0; /* the signal reaches the broker asynchronously: ask until it shows */
    for (uint64_t req = 100; !draining && req < 1100; req++) {
        size_t len;
        char *json = s_stats(p, req, &len);
        draining = strstr(json, "\"draining\":true") != NULL;
        free(json);
    }
    ck_assert(draining);
    ck_assert_int_eq(wc_submit(p, 2, "q", pl, 1, 0, 0, NULL), 0);
    s_next(p, WIRE_ERROR, &r);
    ck_assert_uint_eq(r.code, JOBQ_ECLOSED);
    ck_assert_uint_eq(r.req, 2);
    wire_msg_fini(&r);
    ck_assert(wc_broker_alive(&s_b)); /* still waiting for the leased job */
    ck_assert_int_eq(wc_result(w, &id, 1, JOBQ_STATUS_DONE, "done"), 0);
    s_expect(p, WIRE_RESULTS, &r);
    wire_msg_fini(&r);
    s_expect(w, WIRE_DISCONNECT, &r);
    wire_msg_fini(&r);
    int st = wc_broker_stop(&s_b, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    wc_close(&p);
    wc_close(&w);
}
END_TEST

START_TEST(test_the_producer_api_submits_waits_and_joins_through_the_broker)
{
    s_start(NULL);
    jobq_producer_t *prod = NULL;
    ck_assert_jobq_ok(jobq_producer_open(s_b.url, NULL, &prod));
    jobq_job_t jobs[2];
    const char *pl[] = {"one", "two"};
    for (int i = 0; i < 2; i++) {
        jobq_job_init(&jobs[i]);
        jobs[i].queue = "api";
        jobs[i].queue_len = 3;
        jobs[i].payload = pl[i];
        jobs[i].payload_len = (uint32_t)strlen(pl[i]);
    }
    int codes[2];
    ck_assert_jobq_ok(jobq_producer_submit_batch(prod, jobs, 2, codes, S_T));
    ck_assert_jobq_err(jobq_producer_join(prod, "api", 200), JOBQ_ETIMEDOUT);
    wc_t *w = s_client(WIRE_ROLE_WORKER, "w");
    ck_assert_int_eq(wc_ready(w, 2, "api"), 0);
    s_work(w, 2);
    jobq_result_t r;
    ck_assert_jobq_ok(jobq_producer_wait(prod, &jobs[1].id, &r, S_T));
    ck_assert_uint_eq(r.output_len, 3);
    ck_assert_int_eq(memcmp(r.output, "TWO", 3), 0);
    ck_assert_jobq_ok(jobq_producer_join(prod, "api", S_T));
    jobq_producer_destroy(&prod);
    wc_close(&w);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("broker_basic");
    TCase *tc = tcase_create("broker");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_hello_is_answered_with_welcome_and_the_agreed_heartbeat);
    tcase_add_test(tc, test_submitted_jobs_are_delivered_and_their_results_pushed_to_the_producer);
    tcase_add_test(tc, test_wait_returns_a_finished_job_to_another_connection);
    tcase_add_test(tc, test_wait_parks_until_the_result_arrives_or_times_out);
    tcase_add_test(tc, test_join_returns_when_the_queue_is_done_and_times_out_otherwise);
    tcase_add_test(tc, test_duplicate_id_is_answered_eduplicate_with_the_same_id);
    tcase_add_test(tc, test_queue_full_refuses_the_job_past_the_limit);
    tcase_add_test(tc, test_stats_is_valid_json_with_queue_and_worker_counters);
    tcase_add_test(tc, test_stop_workers_sends_a_sentinel_to_each_worker);
    tcase_add_test(tc, test_messages_before_hello_get_estate_then_disconnect);
    tcase_add_test(tc, test_a_producer_may_not_send_worker_messages);
    tcase_add_test(tc, test_non_loopback_tcp_without_insecure_is_refused_with_exit_2);
    tcase_add_test(tc, test_tcp_port_zero_binds_and_reports_the_real_port);
    tcase_add_test(tc, test_sigterm_drains_leased_jobs_refuses_submits_and_exits_0);
    tcase_add_test(tc, test_the_producer_api_submits_waits_and_joins_through_the_broker);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return jobq_test_run(s_suite());
}
