/*
 * tests/integration/test_sec_limits.c: the broker's limits against
 * exhaustion (docs/SECURITY.md "Limits"), each exceeded by one against a
 * real `jobq broker`: the offender gets an explicit error or loses its
 * connection, and another client is still served. Plus many idle and
 * half-handshake TCP connections while a CURVE client gets its job done
 * (RELIABILITY.md 3.4 many_idle_connections; JOBQ_SEC_IDLE_CONNS sets how
 * many, default 1000).
 */
#include "jobq_test.h"
#include "net_support.h"
#include "sec_support.h"

#include "jobq/producer.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

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

/* A broker without CURVE (the limits are the same with it) and one raw
 * producer said HELLO on its ipc endpoint. */
static void *
s_start(const char *const *args)
{
    ck_assert_int_eq(ss_broker_start(&s_b, &s_env, 0, NULL, args), 0);
    void *c = ss_dealer(s_ctx, &s_env, s_b.ipc, NULL, NULL, NULL);
    ck_assert_jobq_ok(ss_hello(c, WIRE_ROLE_PRODUCER, "p", 5000));
    return c;
}

/* Submits one job (payload of len bytes of 'x') to q; returns its code, the
 * ERROR's code, or JOBQ_ETIMEDOUT. */
static int
s_submit(void *sock, const char *q, size_t len)
{
    char *payload = malloc(len + 1);
    memset(payload, 'x', len);
    jobq_job_t job;
    jobq_job_init(&job);
    job.queue = q;
    job.queue_len = (uint32_t)strlen(q);
    job.payload = payload;
    job.payload_len = (uint32_t)len;
    wire_msg_t m, r;
    wire_msg_init(&m, WIRE_SUBMIT);
    m.fields = WIRE_F_REQ | WIRE_F_JOBS;
    m.req = 1;
    m.jobs = &job;
    m.njobs = 1;
    int rc = ss_send(sock, &m) == 0 ? JOBQ_OK : JOBQ_ESYS;
    free(payload);
    zmq_msg_t f;
    zmq_msg_init(&f);
    if (rc == JOBQ_OK)
        rc = ss_recv(sock, &f, &r, 5000);
    if (rc == JOBQ_OK)
        rc = r.type == WIRE_ERROR                        ? (int)r.code
             : r.type == WIRE_SUBMIT_OK && r.ncodes == 1 ? (int)r.codes[0]
                                                         : JOBQ_EPROTO;
    if (rc != JOBQ_ESYS)
        wire_msg_fini(&r);
    zmq_msg_close(&f);
    return rc;
}

/* STATS round trip: JOBQ_OK when a STATS_REPLY came within timeout_ms. */
static int
s_stats_ok(void *sock, int64_t timeout_ms)
{
    wire_msg_t m, r;
    wire_msg_init(&m, WIRE_STATS);
    m.fields = WIRE_F_REQ;
    m.req = 2;
    if (ss_send(sock, &m) != 0)
        return JOBQ_ESYS;
    zmq_msg_t f;
    zmq_msg_init(&f);
    int rc = ss_recv(sock, &f, &r, timeout_ms);
    if (rc == JOBQ_OK && r.type != WIRE_STATS_REPLY)
        rc = JOBQ_EPROTO;
    wire_msg_fini(&r);
    zmq_msg_close(&f);
    return rc;
}

/* A second client that must still be served. */
static void
s_other_is_served(void)
{
    void *o = ss_dealer(s_ctx, &s_env, s_b.ipc, NULL, NULL, NULL);
    ck_assert_jobq_ok(ss_hello(o, WIRE_ROLE_PRODUCER, "other", 5000));
    ck_assert_jobq_ok(s_submit(o, "other", 10));
    zmq_close(o);
}

START_TEST(test_a_frame_over_max_frame_drops_only_that_connection)
{
    const char *args[] = {"--max-frame", "4096", NULL};
    void *c = s_start(args);
    char junk[4097];
    memset(junk, 0x90, sizeof junk); /* msgpack fixarray junk: never a valid frame */
    ck_assert_int_eq(zmq_send(c, junk, 4096, 0), 4096); /* at the limit: an error reply */
    wire_msg_t r;
    zmq_msg_t f;
    zmq_msg_init(&f);
    ck_assert_jobq_ok(ss_recv(c, &f, &r, 5000));
    ck_assert_int_eq(r.type, WIRE_ERROR);
    wire_msg_fini(&r);
    zmq_msg_close(&f);
    ck_assert_jobq_ok(s_stats_ok(c, 5000));
    ck_assert_int_eq(zmq_send(c, junk, 4097, 0), 4097); /* one over: connection closed */
    ck_assert_int_ne(s_stats_ok(c, 1500), JOBQ_OK);
    s_other_is_served();
    zmq_close(c);
}
END_TEST

START_TEST(test_a_message_of_three_frames_is_refused)
{
    void *c = s_start(NULL);
    ck_assert_int_eq(zmq_send(c, "a", 1, ZMQ_SNDMORE), 1);
    ck_assert_int_eq(zmq_send(c, "b", 1, 0), 1);
    ck_assert_int_eq(ss_wait_ge(s_b.ipc, "envelope", 1, 5000), 0);
    ck_assert_jobq_ok(s_stats_ok(c, 5000)); /* one error: not dropped */
    s_other_is_served();
    zmq_close(c);
}
END_TEST

START_TEST(test_a_queue_name_over_200_bytes_is_refused)
{
    void *c = s_start(NULL);
    char q[202];
    memset(q, 'q', 201);
    q[201] = '\0';
    ck_assert_int_ne(s_submit(c, q, 1), JOBQ_OK);
    q[200] = '\0';
    ck_assert_jobq_ok(s_submit(c, q, 1));
    s_other_is_served();
    zmq_close(c);
}
END_TEST

/* Sends SUBMIT with a payload one byte over JOBQ_PAYLOAD_MAX (our encoder
 * refuses to make one: a max-size frame is patched) and returns the code of
 * the reply. */
static int
s_submit_oversized(void *sock)
{
    char *payload = malloc(JOBQ_PAYLOAD_MAX);
    memset(payload, 'x', JOBQ_PAYLOAD_MAX);
    jobq_job_t job;
    jobq_job_init(&job);
    job.queue = "q";
    job.queue_len = 1;
    job.payload = payload;
    job.payload_len = JOBQ_PAYLOAD_MAX;
    wire_msg_t m, r;
    wire_msg_init(&m, WIRE_SUBMIT);
    m.fields = WIRE_F_REQ | WIRE_F_JOBS;
    m.req = 1;
    m.jobs = &job;
    m.njobs = 1;
    wire_buf_t b = {0};
    ck_assert_jobq_ok(wire_encode(&m, &b));
    free(payload);
    unsigned char *big = malloc(b.len + 1), *d = (unsigned char *)b.data;
    size_t at = 0;
    for (size_t i = 0; !at && i + 5 < b.len; i++) /* bin32 or str32 header of 1 MiB */
        if ((d[i] == 0xc6 || d[i] == 0xdb) && d[i + 1] == 0 && d[i + 2] == 0x10 && !d[i + 3] &&
            !d[i + 4] && d[i + 5] == 'x')
            at = i;
    ck_assert_int_gt(at, 0);
    memcpy(big, d, at + 5);
    big[at + 4] = 1; /* length + 1 */
    big[at + 5] = 'x';
    memcpy(big + at + 6, d + at + 5, b.len - at - 5);
    ck_assert_int_eq(zmq_send(sock, big, b.len + 1, 0), (int)(b.len + 1));
    free(big);
    wire_buf_fini(&b);
    zmq_msg_t f;
    zmq_msg_init(&f);
    int rc = ss_recv(sock, &f, &r, 5000);
    if (rc == JOBQ_OK)
        rc = r.type == WIRE_ERROR                        ? (int)r.code
             : r.type == WIRE_SUBMIT_OK && r.ncodes == 1 ? (int)r.codes[0]
                                                         : JOBQ_EPROTO;
    wire_msg_fini(&r);
    zmq_msg_close(&f);
    return rc;
}

START_TEST(test_a_payload_over_1_mib_is_refused)
{
    void *c = s_start(NULL);
    ck_assert_jobq_err(s_submit_oversized(c), JOBQ_ETOOBIG);
    ck_assert_jobq_ok(s_submit(c, "q", JOBQ_PAYLOAD_MAX));
    s_other_is_served();
    zmq_close(c);
}
END_TEST

START_TEST(test_jobs_and_bytes_per_queue_and_queues_are_capped)
{
    const char *args[] = {"--max-jobs", "3", "--max-bytes", "1000", "--max-queues", "3", NULL};
    void *c = s_start(args);
    for (int i = 0; i < 3; i++)
        ck_assert_jobq_ok(s_submit(c, "jobs", 1));
    ck_assert_jobq_err(s_submit(c, "jobs", 1), JOBQ_EQUEUEFULL);
    ck_assert_jobq_ok(s_submit(c, "bytes", 1000));
    ck_assert_jobq_err(s_submit(c, "bytes", 1), JOBQ_EQUEUEFULL);
    ck_assert_jobq_ok(s_submit(c, "third", 1));
    ck_assert_jobq_err(s_submit(c, "fourth", 1), JOBQ_EQUEUEFULL);
    ck_assert_jobq_ok(s_submit(c, "third", 1)); /* the existing queues are still served */
    zmq_close(c);
}
END_TEST

START_TEST(test_a_workers_credit_is_capped_at_max_credit)
{
    const char *args[] = {"--max-credit", "2", NULL};
    void *c = s_start(args);
    for (int i = 0; i < 5; i++)
        ck_assert_jobq_ok(s_submit(c, "q", 1));
    void *w = ss_dealer(s_ctx, &s_env, s_b.ipc, NULL, NULL, NULL);
    ck_assert_jobq_ok(ss_hello(w, WIRE_ROLE_WORKER, "w", 5000));
    wire_msg_t m;
    wire_msg_init(&m, WIRE_READY);
    m.fields = WIRE_F_CREDIT;
    m.credit = 3;
    ck_assert_int_eq(ss_send(w, &m), 0);
    ck_assert_int_eq(ns_wait_stat(s_b.ipc, "reserved", 2, 5000), 0);
    ck_assert_jobq_ok(s_stats_ok(c, 5000)); /* a round trip after READY: no more came */
    ck_assert_int_eq(ns_stat(s_b.ipc, "reserved"), 2);
    ck_assert_int_eq(ns_stat(s_b.ipc, "credit"), 2);
    zmq_close(w);
    zmq_close(c);
}
END_TEST

/* Connects a raw TCP socket to the broker's tcp endpoint. */
static int
s_tcp(const char *url)
{
    int port = atoi(strrchr(url, ':') + 1);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* 1 when the broker closes fd within timeout_ms (read returns 0 or an error). */
static int
s_closed_within(int fd, int timeout_ms)
{
    char buf[256];
    int64_t end = ss_now_ms() + timeout_ms;
    while (ss_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - ss_now_ms())) <= 0)
            return 0;
        ssize_t n = read(fd, buf, sizeof buf); /* the broker's greeting first, then EOF */
        if (n <= 0)
            return 1;
    }
    return 0;
}

START_TEST(test_an_unfinished_handshake_is_closed_after_the_handshake_interval)
{
    const char *args[] = {"--handshake", "500", NULL};
    ck_assert_int_eq(ss_broker_start(&s_b, &s_env, 1, NULL, args), 0);
    int silent = s_tcp(s_b.tcp), half = s_tcp(s_b.tcp);
    ck_assert_int_ge(silent, 0);
    ck_assert_int_ge(half, 0);
    static const unsigned char greeting[10] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f};
    ck_assert_int_eq(write(half, greeting, sizeof greeting), (ssize_t)sizeof greeting);
    ck_assert(s_closed_within(silent, 10000));
    ck_assert(s_closed_within(half, 10000));
    close(silent);
    close(half);
}
END_TEST

/* Completes a ZMTP 3.0 NULL handshake as a DEALER on fd (greeting, READY),
 * reading the broker's greeting and READY. Returns 0 or -1. */
static int
s_zmtp_null_handshake(int fd)
{
    unsigned char g[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'N', 'U', 'L', 'L'};
    static const unsigned char ready[] = {0x04, 28,  5,   'R', 'E', 'A', 'D', 'Y', 11,  'S',
                                          'o',  'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e',
                                          0,    0,   0,   6,   'D', 'E', 'A', 'L', 'E', 'R'};
    if (write(fd, g, sizeof g) != (ssize_t)sizeof g ||
        write(fd, ready, sizeof ready) != (ssize_t)sizeof ready)
        return -1;
    unsigned char in[64 + 64];
    size_t got = 0;
    while (got < 64 + 2) { /* its greeting and the head of its READY */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return -1;
        ssize_t n = read(fd, in + got, sizeof in - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return in[64] == 0x04 && in[66] == 5 ? 0 : -1;
}

START_TEST(test_a_silent_tcp_peer_is_closed_by_zmtp_heartbeats)
{
    const char *slow[] = {"--zmtp-heartbeat", "600000", NULL};
    ck_assert_int_eq(ss_broker_start(&s_b, &s_env, 0, NULL, slow), 0);
    int fd = s_tcp(s_b.tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(s_zmtp_null_handshake(fd), 0);
    ck_assert(!s_closed_within(fd, 1500)); /* the control: nothing else closes it */
    close(fd);
    ss_broker_stop(&s_b);
    const char *args[] = {"--zmtp-heartbeat", "200", NULL};
    ck_assert_int_eq(ss_broker_start(&s_b, &s_env, 0, NULL, args), 0);
    fd = s_tcp(s_b.tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(s_zmtp_null_handshake(fd), 0);
    /* Handshake done, no HELLO: only the ZMTP PINGs (answered by nobody)
     * can find this peer dead: timeout 3 x 200 ms. */
    ck_assert(s_closed_within(fd, 10000));
    close(fd);
}
END_TEST

START_TEST(test_many_idle_connections_do_not_delay_a_curve_client)
{
    long n = getenv("JOBQ_SEC_IDLE_CONNS") ? atol(getenv("JOBQ_SEC_IDLE_CONNS")) : 1000;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)(2 * n + 256) && rl.rlim_max >= (rlim_t)(2 * n + 256)) {
        rl.rlim_cur = (rlim_t)(2 * n + 256); /* the broker inherits it */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ck_assert_int_eq(ss_broker_start(&s_b, &s_env, 1, NULL, NULL), 0);
    int *fds = calloc((size_t)n, sizeof *fds);
    static const unsigned char greeting[10] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f};
    for (long i = 0; i < n; i++) {
        fds[i] = s_tcp(s_b.tcp);
        ck_assert_int_ge(fds[i], 0);
        if (i % 2) /* half of them start a greeting and stop */
            ck_assert_int_eq(write(fds[i], greeting, sizeof greeting), (ssize_t)sizeof greeting);
    }
    char key[320], spub[320], bkey[320], werr[320];
    snprintf(werr, sizeof werr, "%s/worker.err", s_env.dir);
    ss_path(&s_env, "broker", "pub", spub, sizeof spub);
    const char *wargv[] = {
        "worker",         "-u",          s_b.tcp,
        "--threads",      "1",           "--builtin",
        "echo",           "--curve-key", ss_path(&s_env, "alice", "key", key, sizeof key),
        "--curve-server", spub,          NULL};
    pid_t w = ns_spawn(wargv, NULL, werr);
    ck_assert_int_eq(ss_wait_ge(s_b.ipc, "worker", 1, 10000), 0);
    int64_t t0 = ss_now_ms();
    jobq_producer_opts_t po = {0};
    po.curve_key = ss_path(&s_env, "bob", "key", bkey, sizeof bkey);
    po.curve_server = spub;
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(s_b.tcp, &po, &p));
    jobq_job_t job;
    ns_job(&job, "default", "ping", 0, 0);
    ck_assert_jobq_ok(jobq_producer_submit(p, &job, 5000));
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_producer_wait(p, &job.id, &res, 10000));
    int64_t ms = ss_now_ms() - t0;
    fprintf(stderr,
            "many_idle_connections: %ld idle/half-greeting connections, connect + "
            "submit + result in %lld ms\n",
            n, (long long)ms);
    ck_assert_msg(ms < 5000, "took %lld ms", (long long)ms); /* < 1 s unloaded; CI slack */
    jobq_producer_destroy(&p);
    for (long i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    kill(w, SIGTERM);
    ns_reap(w, 10000);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("sec_limits");
    TCase *tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_a_frame_over_max_frame_drops_only_that_connection);
    tcase_add_test(tc, test_a_message_of_three_frames_is_refused);
    tcase_add_test(tc, test_a_queue_name_over_200_bytes_is_refused);
    tcase_add_test(tc, test_a_payload_over_1_mib_is_refused);
    tcase_add_test(tc, test_jobs_and_bytes_per_queue_and_queues_are_capped);
    tcase_add_test(tc, test_a_workers_credit_is_capped_at_max_credit);
    tcase_add_test(tc, test_an_unfinished_handshake_is_closed_after_the_handshake_interval);
    tcase_add_test(tc, test_a_silent_tcp_peer_is_closed_by_zmtp_heartbeats);
    tcase_add_test(tc, test_many_idle_connections_do_not_delay_a_curve_client);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return jobq_test_run(s_suite());
}
