/*
 * tests/fault/test_broker_faults.c: a real `jobq broker` under misbehaving
 * peers: a prefetch cap that is never exceeded, a worker that goes silent
 * (its job goes to another worker with attempt 2 within 1 s), a stale ack
 * after a lease expired, a job whose lease expired going to a live worker
 * rather than back to the silent one, acks before any delivery, a worker gone
 * between assignment and send (ROUTER_MANDATORY), a forgotten worker told to
 * reconnect, and random and illegal frames from raw DEALERs while a
 * legitimate producer and worker keep completing jobs (RELIABILITY.md
 * fuzz_envelope, protocol_state_fuzz).
 */
#include "jobq_test.h"
#include "wire_client.h"

#include "jobq/errors.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_T 5000 /* ms: bound of every wait that should succeed */

static wc_broker_t s_b;

static void
s_start(const char *const *args)
{
    ck_assert_msg(wc_broker_start(&s_b, args) == 0, "broker did not start");
}

static void
s_teardown(void)
{
    wc_broker_stop(&s_b, 5000);
}

static wc_t *
s_client(int role, uint32_t hb_ms, const char *name)
{
    wc_t *c = wc_connect(s_b.url);
    ck_assert_jobq_ok(wc_hello(c, role, hb_ms, name));
    return c;
}

static void
s_expect(wc_t *c, wire_type type, wire_msg_t *m)
{
    int rc = wc_recv_type(c, type, m, S_T);
    ck_assert_msg(rc == JOBQ_OK, "no %s within %d ms: %s", wire_type_name(type), S_T,
                  jobq_errname(rc));
}

/* Submits n jobs "job-I" to q (ttr, max attempts) and checks they were taken. */
static void
s_submit(wc_t *p, uint64_t req, const char *q, size_t n, uint32_t ttr_ms, uint32_t max,
         jobq_id_t *ids)
{
    char(*bufs)[16] = calloc(n, 16);
    const char **pl = calloc(n, sizeof *pl);
    for (size_t i = 0; i < n; i++) {
        snprintf(bufs[i], 16, "job-%zu", i);
        pl[i] = bufs[i];
    }
    ck_assert_int_eq(wc_submit(p, req, q, pl, n, ttr_ms, max, NULL), 0);
    wire_msg_t r;
    s_expect(p, WIRE_SUBMIT_OK, &r);
    ck_assert_uint_eq(r.nids, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(r.codes[i], JOBQ_OK);
        if (ids)
            ids[i] = r.ids[i];
    }
    wire_msg_fini(&r);
    free(pl);
    free(bufs);
}

/* Makes sure the broker has handled everything c sent so far. */
static char *
s_stats(wc_t *c, size_t *len)
{
    static uint64_t req = 1000;
    wire_msg_t m, r;
    wire_msg_init(&m, WIRE_STATS);
    m.fields = WIRE_F_REQ;
    m.req = ++req;
    ck_assert_int_eq(wc_send(c, &m), 0);
    for (;;) {
        s_expect(c, WIRE_STATS_REPLY, &r);
        if (r.req == req)
            break;
        wire_msg_fini(&r);
    }
    char *s = malloc(r.data.len + 1);
    memcpy(s, r.data.ptr, r.data.len);
    s[r.data.len] = '\0';
    *len = r.data.len;
    wire_msg_fini(&r);
    return s;
}

static long long
s_stat(wc_t *c, const char *key)
{
    size_t len;
    char *json = s_stats(c, &len);
    long long v = wc_json_num(json, len, key);
    free(json);
    return v;
}

START_TEST(test_prefetch_cap_is_never_exceeded)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"), *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    ck_assert_int_eq(wc_ready(w, 4, "cap"), 0);
    s_submit(p, 1, "cap", 100, 0, 0, NULL);
    uint32_t got = 0;
    int64_t end = wc_now_ms() + 1000;
    wire_msg_t d;
    jobq_id_t first;
    while (wc_now_ms() < end) {
        if (wc_recv_type(w, WIRE_DELIVER, &d, end - wc_now_ms()) != JOBQ_OK)
            break;
        if (got == 0)
            first = d.jobs[0].id;
        got += d.njobs;
        ck_assert_uint_le(got, 4);
        wire_msg_fini(&d);
    }
    ck_assert_uint_eq(got, 4);
    ck_assert_int_eq(s_stat(w, "held"), 4);
    ck_assert_int_eq(s_stat(w, "ready"), 96);
    /* A RESULT frees one slot: exactly one more job comes. */
    ck_assert_int_eq(wc_result(w, &first, 1, JOBQ_STATUS_DONE, "ok"), 0);
    end = wc_now_ms() + 500;
    while (wc_now_ms() < end) {
        if (wc_recv_type(w, WIRE_DELIVER, &d, end - wc_now_ms()) != JOBQ_OK)
            break;
        got += d.njobs;
        wire_msg_fini(&d);
    }
    ck_assert_uint_eq(got, 5);
    ck_assert_int_eq(s_stat(w, "held"), 4);
    wc_close(&p);
    wc_close(&w);
}
END_TEST

START_TEST(test_silent_worker_job_goes_to_another_with_attempt_2_within_1s)
{
    const char *args[] = {"--heartbeat", "200", NULL};
    s_start(args);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p");
    wc_t *a = s_client(WIRE_ROLE_WORKER, 200, "a");
    ck_assert_int_eq(wc_ready(a, 1, "hb"), 0);
    jobq_id_t id;
    s_submit(p, 1, "hb", 1, 30000, 3, &id);
    wire_msg_t d;
    s_expect(a, WIRE_DELIVER, &d);
    ck_assert_uint_eq(d.jobs[0].attempt, 1);
    wire_msg_fini(&d);
    int64_t t0 = wc_now_ms(); /* a goes silent from here: no heartbeats */
    wc_t *b = s_client(WIRE_ROLE_WORKER, 5000, "b");
    ck_assert_int_eq(wc_ready(b, 1, "hb"), 0);
    s_expect(b, WIRE_DELIVER, &d);
    int64_t dt = wc_now_ms() - t0;
    ck_assert_int_eq(memcmp(&d.jobs[0].id, &id, 16), 0);
    ck_assert_uint_eq(d.jobs[0].attempt, 2);
    ck_assert_msg(dt <= 1000, "redelivered after %lld ms", (long long)dt);
    wire_msg_fini(&d);
    ck_assert_int_eq(wc_result(b, &id, 2, JOBQ_STATUS_DONE, "by-b"), 0);
    wire_msg_t r;
    s_expect(p, WIRE_RESULTS, &r);
    ck_assert_uint_eq(r.nresults, 1);
    ck_assert_int_eq(memcmp(r.results[0].output, "by-b", 4), 0);
    wire_msg_fini(&r);
    ck_assert_int_eq(wc_recv_type(p, WIRE_RESULTS, &r, 300), JOBQ_ETIMEDOUT);
    /* The silent worker, back, is told to reconnect. */
    wc_keep_heartbeats(a, 1);
    wc_set_autohb(a, 0);
    ck_assert_int_eq(wc_result(a, &id, 1, JOBQ_STATUS_DONE, "late"), 0);
    ck_assert_jobq_ok(wc_recv_type(a, WIRE_DISCONNECT, &r, S_T));
    wire_msg_fini(&r);
    ck_assert_int_ge(s_stat(p, "workers_lost"), 1);
    wc_close(&a);
    wc_close(&b);
    wc_close(&p);
}
END_TEST

START_TEST(test_result_after_the_lease_expired_is_stale_and_the_producer_sees_one_result)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p");
    wc_t *a = s_client(WIRE_ROLE_WORKER, 10000, "a");
    ck_assert_int_eq(wc_ready(a, 1, "lease"), 0);
    jobq_id_t id;
    s_submit(p, 1, "lease", 1, 500, 3, &id);
    wire_msg_t d, r;
    s_expect(a, WIRE_DELIVER, &d);
    wire_msg_fini(&d);
    ck_assert_int_eq(wc_ready(a, 0, NULL), 0); /* a takes nothing more; then goes quiet */
    int64_t t0 = wc_now_ms();
    wc_t *b = s_client(WIRE_ROLE_WORKER, 5000, "b");
    ck_assert_int_eq(wc_ready(b, 1, "lease"), 0);
    s_expect(b, WIRE_DELIVER, &d);
    int64_t dt = wc_now_ms() - t0;
    ck_assert_uint_eq(d.jobs[0].attempt, 2);
    ck_assert_msg(dt >= 300 && dt <= 2000, "redelivered after %lld ms", (long long)dt);
    wire_msg_fini(&d);
    ck_assert_int_eq(wc_result(b, &id, 2, JOBQ_STATUS_DONE, "B"), 0);
    s_expect(b, WIRE_RESULT_OK, &r);
    ck_assert_uint_eq(r.codes[0], JOBQ_OK);
    wire_msg_fini(&r);
    s_expect(p, WIRE_RESULTS, &r);
    ck_assert_int_eq(memcmp(r.results[0].output, "B", 1), 0);
    wire_msg_fini(&r);
    ck_assert_int_eq(wc_result(a, &id, 1, JOBQ_STATUS_DONE, "A"), 0);
    s_expect(a, WIRE_RESULT_OK, &r);
    ck_assert_uint_eq(r.ncodes, 1);
    ck_assert_uint_eq(r.codes[0], JOBQ_ESTALE);
    wire_msg_fini(&r);
    ck_assert_int_eq(wc_recv_type(p, WIRE_RESULTS, &r, 300), JOBQ_ETIMEDOUT);
    ck_assert_int_eq(s_stat(p, "done"), 1);
    wc_close(&a);
    wc_close(&b);
    wc_close(&p);
}
END_TEST

/* RELIABILITY.md 3.1 lease_sigstop_expiry_then_stale_ack: a worker that let a
 * lease expire (frozen, or too slow) and has said nothing since keeps its
 * credit, yet the job goes to a healthy worker, not back to it. */
START_TEST(test_expired_job_goes_to_a_live_worker_not_back_to_the_silent_one)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p");
    wc_t *a = s_client(WIRE_ROLE_WORKER, 20000, "a"); /* connected first; long hb: not dropped */
    wc_set_autohb(a, 0);                              /* a sends nothing unless told to */
    ck_assert_int_eq(wc_ready(a, 1, "susp"), 0);
    jobq_id_t id;
    s_submit(p, 1, "susp", 1, 400, 3, &id);
    wire_msg_t d, r;
    s_expect(a, WIRE_DELIVER, &d);
    ck_assert_int_eq(memcmp(&d.jobs[0].id, &id, 16), 0);
    ck_assert_uint_eq(d.jobs[0].attempt, 1);
    wire_msg_fini(&d);
    /* a stays silent with credit 1 from here; b heartbeats while it waits */
    int64_t t0 = wc_now_ms();
    wc_t *b = s_client(WIRE_ROLE_WORKER, 300, "b");
    ck_assert_int_eq(wc_ready(b, 1, "susp"), 0);
    s_expect(b, WIRE_DELIVER, &d);
    int64_t dt = wc_now_ms() - t0;
    ck_assert_int_eq(memcmp(&d.jobs[0].id, &id, 16), 0);
    ck_assert_uint_eq(d.jobs[0].attempt, 2);
    ck_assert_msg(dt >= 250 && dt <= 2000, "redelivered after %lld ms", (long long)dt);
    wire_msg_fini(&d);
    ck_assert_int_eq(wc_result(b, &id, 2, JOBQ_STATUS_DONE, "B"), 0);
    s_expect(b, WIRE_RESULT_OK, &r);
    ck_assert_uint_eq(r.codes[0], JOBQ_OK);
    wire_msg_fini(&r);
    s_expect(p, WIRE_RESULTS, &r);
    ck_assert_uint_eq(r.nresults, 1);
    ck_assert_int_eq(memcmp(r.results[0].output, "B", 1), 0);
    wire_msg_fini(&r);
    /* a was never handed the job a second time */
    ck_assert_int_eq(wc_recv_type(a, WIRE_DELIVER, &d, 300), JOBQ_ETIMEDOUT);
    /* a wakes up: its ack of attempt 1 is stale */
    ck_assert_int_eq(wc_result(a, &id, 1, JOBQ_STATUS_DONE, "A"), 0);
    s_expect(a, WIRE_RESULT_OK, &r);
    ck_assert_uint_eq(r.ncodes, 1);
    ck_assert_uint_eq(r.codes[0], JOBQ_ESTALE);
    wire_msg_fini(&r);
    ck_assert_int_eq(wc_recv_type(p, WIRE_RESULTS, &r, 300), JOBQ_ETIMEDOUT);
    ck_assert_int_eq(s_stat(p, "done"), 1);
    /* Having been heard from, a gets work again (b takes none now). */
    ck_assert_int_eq(wc_ready(b, 0, NULL), 0);
    s_stat(b, "done"); /* b's READY is handled */
    jobq_id_t id2;
    s_submit(p, 2, "susp", 1, 0, 0, &id2);
    s_expect(a, WIRE_DELIVER, &d);
    ck_assert_int_eq(memcmp(&d.jobs[0].id, &id2, 16), 0);
    ck_assert_uint_eq(d.jobs[0].attempt, 1);
    wire_msg_fini(&d);
    wc_close(&a);
    wc_close(&b);
    wc_close(&p);
}
END_TEST

START_TEST(test_ack_before_any_delivery_is_refused_without_harm)
{
    s_start(NULL);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p");
    wc_t *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    jobq_id_t id, unknown;
    s_submit(p, 1, "early", 1, 0, 0, &id);
    jobq_id_generate(&unknown);
    wire_msg_t r;
    ck_assert_int_eq(wc_result(w, &id, 1, JOBQ_STATUS_DONE, "too early"), 0);
    s_expect(w, WIRE_RESULT_OK, &r);
    ck_assert_msg(r.codes[0] == JOBQ_ESTALE || r.codes[0] == JOBQ_ENOTFOUND, "code %s",
                  jobq_errname((int)r.codes[0]));
    wire_msg_fini(&r);
    ck_assert_int_eq(wc_result(w, &unknown, 1, JOBQ_STATUS_DONE, "?"), 0);
    s_expect(w, WIRE_RESULT_OK, &r);
    ck_assert_uint_eq(r.codes[0], JOBQ_ENOTFOUND);
    wire_msg_fini(&r);
    /* The job is untouched: delivered normally with attempt 1. */
    ck_assert_int_eq(wc_ready(w, 1, "early"), 0);
    s_expect(w, WIRE_DELIVER, &r);
    ck_assert_int_eq(memcmp(&r.jobs[0].id, &id, 16), 0);
    ck_assert_uint_eq(r.jobs[0].attempt, 1);
    wire_msg_fini(&r);
    ck_assert(wc_broker_alive(&s_b));
    wc_close(&p);
    wc_close(&w);
}
END_TEST

START_TEST(test_worker_gone_between_assignment_and_send_job_goes_to_another)
{
    s_start(NULL);
    wc_t *a = s_client(WIRE_ROLE_WORKER, 60000, "a");
    ck_assert_int_eq(wc_ready(a, 1, "gone"), 0);
    size_t len;
    free(s_stats(a, &len)); /* a's READY is in */
    wc_close(&a);           /* a leaves without a word; its heartbeat would lapse in 3 min */
    wc_t *b = s_client(WIRE_ROLE_WORKER, 5000, "b");
    ck_assert_int_eq(wc_ready(b, 1, "gone"), 0);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p");
    jobq_id_t id;
    s_submit(p, 1, "gone", 1, 0, 3, &id);
    wire_msg_t d;
    int rc = wc_recv_type(b, WIRE_DELIVER, &d, 1000);
    ck_assert_msg(rc == JOBQ_OK, "the job did not reach b within 1 s");
    ck_assert_int_eq(memcmp(&d.jobs[0].id, &id, 16), 0);
    wire_msg_fini(&d);
    ck_assert_int_ge(s_stat(p, "jobs_returned"), 1);
    ck_assert_int_ge(s_stat(p, "send_unroutable"), 1);
    wc_close(&b);
    wc_close(&p);
}
END_TEST

/* ---- random and illegal input -------------------------------------------- */

static uint64_t s_rng = 88172645463325252ull;

static uint32_t
s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint32_t)s_rng;
}

/* Sends one random or illegal message from c. */
static void
s_fuzz_one(wc_t *c, const wire_buf_t *valid, size_t nvalid, const size_t *offs)
{
    unsigned char buf[512];
    const void *frames[50];
    size_t lens[50];
    switch (s_rand() % 6) {
    case 0: { /* garbage bytes */
        size_t n = s_rand() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)s_rand();
        frames[0] = buf;
        lens[0] = n;
        wc_send_frames(c, frames, lens, 1);
        break;
    }
    case 1: { /* 1-50 frames */
        size_t nf = 1 + s_rand() % 50;
        for (size_t i = 0; i < nf; i++) {
            frames[i] = buf;
            lens[i] = s_rand() % 8;
        }
        wc_send_frames(c, frames, lens, nf);
        break;
    }
    case 2: { /* a wrong version */
        static const unsigned char v9[] = {0x93, 0x09, 0x01, 0x80};
        frames[0] = v9;
        lens[0] = sizeof v9;
        wc_send_frames(c, frames, lens, 1);
        break;
    }
    default: { /* a valid frame of a random type, maybe with a byte flipped */
        size_t k = s_rand() % nvalid;
        size_t n = offs[k + 1] - offs[k];
        memcpy(buf, valid->data + offs[k], n);
        if (s_rand() % 2)
            buf[s_rand() % n] ^= (unsigned char)(1u << (s_rand() % 8));
        frames[0] = buf;
        lens[0] = n;
        wc_send_frames(c, frames, lens, 1);
        break;
    }
    }
}

/* Encodes one valid frame of many message types into valid (offsets in offs). */
static size_t
s_valid_frames(wire_buf_t *valid, size_t *offs)
{
    static const jobq_id_t id = {{1, 2, 3}};
    jobq_result_t res;
    jobq_result_init(&res);
    res.id = id;
    res.attempt = 7;
    jobq_job_t job;
    jobq_job_init(&job);
    wire_str_t q = {"fz", 2};
    wire_lease_t lease = {id, 3};
    size_t n = 0;
    for (int t = 1; t < WIRE_TYPE_MAX_; t++) {
        wire_msg_t m;
        wire_msg_init(&m, (wire_type)t);
        m.fields = WIRE_F_REQ | WIRE_F_ROLE | WIRE_F_CREDIT | WIRE_F_HB | WIRE_F_CODE | WIRE_F_MSG |
                   WIRE_F_DATA | WIRE_F_QUEUE | WIRE_F_NAME | WIRE_F_TIMEOUT;
        m.req = t;
        m.role = 1 + (uint32_t)t % 3;
        m.credit = 2;
        m.hb_ms = 100;
        m.msg = m.data = m.name = q;
        m.queue = q;
        m.timeout_ms = 50;
        m.fields |= WIRE_F_IDS | WIRE_F_CODES | WIRE_F_LEASES | WIRE_F_QUEUES;
        m.ids = (jobq_id_t *)&id;
        m.nids = 1;
        uint32_t code = 0;
        m.codes = &code;
        m.ncodes = 1;
        m.leases = &lease;
        m.nleases = 1;
        m.queues = &q;
        m.nqueues = 1;
        if (t == WIRE_SUBMIT || t == WIRE_DELIVER) {
            m.fields |= WIRE_F_JOBS;
            job.id = id;
            job.attempt = 1;
            m.jobs = &job;
            m.njobs = 1;
        }
        if (t == WIRE_RESULT || t == WIRE_RESULTS) {
            m.fields |= WIRE_F_RESULTS;
            m.results = &res;
            m.nresults = 1;
        }
        offs[n] = valid->len;
        if (wire_encode(&m, valid) == JOBQ_OK)
            n++;
    }
    offs[n] = valid->len;
    return n;
}

/* Runs the legit pair for one batch of jobs: submit, deliver, complete, and
 * collect the results. Returns the number of results the producer saw. */
static size_t
s_legit_batch(wc_t *p, wc_t *w, uint64_t req, size_t n)
{
    s_submit(p, req, "legit", n, 0, 0, NULL);
    size_t done = 0, seen = 0;
    wire_msg_t m;
    while (done < n) {
        s_expect(w, WIRE_DELIVER, &m);
        /* A result with a wrong attempt first: refused (ESTALE), the job unharmed. */
        ck_assert_int_eq(
            wc_result(w, &m.jobs[0].id, m.jobs[0].attempt + 5, JOBQ_STATUS_DONE, "wrong"), 0);
        for (uint32_t i = 0; i < m.njobs; i++, done++)
            ck_assert_int_eq(wc_result(w, &m.jobs[i].id, m.jobs[i].attempt, JOBQ_STATUS_DONE, "ok"),
                             0);
        wire_msg_fini(&m);
    }
    while (seen < n) {
        s_expect(p, WIRE_RESULTS, &m);
        seen += m.nresults;
        wire_msg_fini(&m);
    }
    return seen;
}

static void
s_drain(wc_t *c)
{
    wire_msg_t m;
    while (wc_recv(c, &m, 0) == JOBQ_OK)
        wire_msg_fini(&m);
}

START_TEST(test_random_and_illegal_frames_never_stop_a_legit_pair)
{
    const char *args[] = {"--max-frame", "65536", NULL};
    s_start(args);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"), *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    ck_assert_int_eq(wc_ready(w, 16, "legit"), 0);
    wc_t *raw = wc_connect(s_b.url); /* never says HELLO */
    wc_t *fp = s_client(WIRE_ROLE_PRODUCER, 5000, "fuzz-p");
    wc_t *fw = s_client(WIRE_ROLE_WORKER, 5000, "fuzz-w");
    ck_assert_int_eq(wc_ready(fw, 1, "fz"), 0);
    ck_assert_int_eq(wc_ready(fw, 3, "fz"), 0); /* READY twice */
    wire_buf_t valid = {0};
    size_t offs[WIRE_TYPE_MAX_ + 1];
    size_t nvalid = s_valid_frames(&valid, offs);
    ck_assert_uint_ge(nvalid, 15);
    size_t seen = 0;
    int64_t end = wc_now_ms() + 3000;
    uint64_t req = 1;
    for (int round = 0; wc_now_ms() < end; round++) {
        wc_t *fz[] = {raw, fp, fw};
        for (int k = 0; k < 60; k++)
            s_fuzz_one(fz[s_rand() % 3], &valid, nvalid, offs);
        if (round % 4 == 0) { /* a frame over --max-frame: that connection is cut */
            static char big[70000];
            const void *f[] = {big};
            size_t l[] = {sizeof big};
            wc_send_frames(raw, f, l, 1);
        }
        ck_assert_int_eq(wc_result(fw, &(jobq_id_t){{9}}, 99, JOBQ_STATUS_DONE, "bad"), 0);
        seen += s_legit_batch(p, w, req++, 20);
        s_drain(raw);
        s_drain(fp);
        s_drain(fw);
    }
    ck_assert_uint_eq(seen, (req - 1) * 20);
    ck_assert(wc_broker_alive(&s_b));
    size_t len;
    char *json = s_stats(p, &len);
    ck_assert_int_gt(wc_json_num(json, len, "malformed"), 0);
    ck_assert_int_gt(wc_json_num(json, len, "no_hello"), 0);
    ck_assert_int_gt(wc_json_num(json, len, "bad_version"), 0);
    ck_assert_int_gt(wc_json_num(json, len, "envelope"), 0);
    ck_assert_int_ge(wc_json_num(json, len, "done"), (long long)seen);
    free(json);
    wire_buf_fini(&valid);
    wc_close(&raw);
    wc_close(&fp);
    wc_close(&fw);
    wc_close(&p);
    wc_close(&w);
    int st = wc_broker_stop(&s_b, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "broker status %d", st);
}
END_TEST

START_TEST(test_a_peer_with_too_many_protocol_errors_is_dropped)
{
    s_start(NULL);
    wc_t *c = s_client(WIRE_ROLE_PRODUCER, 5000, "bad");
    wc_keep_heartbeats(c, 1);
    static const unsigned char junk[] = {0xc1};
    const void *f[] = {junk};
    size_t l[] = {1};
    int errors = 0, disconnected = 0;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(wc_send_frames(c, f, l, 1), 0);
    wire_msg_t m;
    while (!disconnected && wc_recv(c, &m, 2000) == JOBQ_OK) {
        errors += m.type == WIRE_ERROR;
        disconnected = m.type == WIRE_DISCONNECT;
        wire_msg_fini(&m);
    }
    ck_assert_int_eq(errors, 10);
    ck_assert(disconnected);
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p");
    ck_assert_int_eq(s_stat(p, "peers_dropped"), 1);
    wc_close(&p);
    wc_close(&c);
}
END_TEST

/* The tcp port the broker wrote in its ready file (its second endpoint). */
static int
s_tcp_port(const char *ready)
{
    FILE *f = fopen(ready, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    int port = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "tcp://127.0.0.1:"))
            port = atoi(strrchr(line, ':') + 1);
    fclose(f);
    ck_assert_int_gt(port, 0);
    return port;
}

START_TEST(test_raw_tcp_garbage_and_truncated_greetings_leave_a_legit_pair_unaffected)
{
    char ready[128];
    snprintf(ready, sizeof ready, "/tmp/jobq-ready-%d", (int)getpid());
    const char *args[] = {"--listen", "tcp://127.0.0.1:0", "--ready-file", ready, NULL};
    s_start(args);
    int port = s_tcp_port(ready);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fds[40];
    static unsigned char junk[65536];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)s_rand();
    static const unsigned char greeting[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3};
    for (int i = 0; i < 40; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_eq(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
        if (i % 2) /* a truncated ZMTP greeting, then silence */
            ck_assert_int_gt(send(fds[i], greeting, 1 + i % (int)sizeof greeting, MSG_NOSIGNAL), 0);
        else /* random bytes: the broker drops the connection, the send may fail */
            send(fds[i], junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    wc_t *p = s_client(WIRE_ROLE_PRODUCER, 5000, "p"), *w = s_client(WIRE_ROLE_WORKER, 5000, "w");
    ck_assert_int_eq(wc_ready(w, 16, "legit"), 0);
    int64_t t0 = wc_now_ms();
    ck_assert_uint_eq(s_legit_batch(p, w, 1, 50), 50);
    ck_assert_int_lt(wc_now_ms() - t0, 2000);
    for (int i = 0; i < 40; i++)
        close(fds[i]);
    ck_assert(wc_broker_alive(&s_b));
    unlink(ready);
    wc_close(&p);
    wc_close(&w);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("broker_faults");
    TCase *tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, test_prefetch_cap_is_never_exceeded);
    tcase_add_test(tc, test_silent_worker_job_goes_to_another_with_attempt_2_within_1s);
    tcase_add_test(tc,
                   test_result_after_the_lease_expired_is_stale_and_the_producer_sees_one_result);
    tcase_add_test(tc, test_expired_job_goes_to_a_live_worker_not_back_to_the_silent_one);
    tcase_add_test(tc, test_ack_before_any_delivery_is_refused_without_harm);
    tcase_add_test(tc, test_worker_gone_between_assignment_and_send_job_goes_to_another);
    tcase_add_test(tc, test_random_and_illegal_frames_never_stop_a_legit_pair);
    tcase_add_test(tc, test_a_peer_with_too_many_protocol_errors_is_dropped);
    tcase_add_test(tc, test_raw_tcp_garbage_and_truncated_greetings_leave_a_legit_pair_unaffected);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return jobq_test_run(s_suite());
}
