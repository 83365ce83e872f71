/*
 * tests/unit/test_shmq.c: the shm:// JoinableQueue, call by call, with real
 * fork()ed processes: FIFO order, timeouts, bounds, task_done/join, close and
 * sentinels, the results channel, named objects (attach, EXCL, unlink, stale
 * objects, permissions) and an anonymous queue shared by four consumers.
 * Every child is bounded in time and reaped; object names carry the pid.
 */
#include "common/shmq.h"
#include "jobq/queue.h"
#include "jobq_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------- */

static char s_name[64];
static char s_url[80];

/* A fresh queue name (and URL) unique to this test process. */
static void
s_fresh_name(const char *tag)
{
    static int n;
    snprintf(s_name, sizeof s_name, "t-%s-%d-%d", tag, (int)getpid(), n++);
    snprintf(s_url, sizeof s_url, "shm://%s", s_name);
}

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static jobq_queue_t *
s_anon(uint32_t max_items, uint64_t max_bytes)
{
    jobq_queue_opts_t o = {0, max_items, max_bytes, 0};
    jobq_queue_t *q = NULL;
    ck_assert_jobq_ok(jobq_queue_new_anon(&o, &q));
    return q;
}

static jobq_queue_t *
s_named(const char *tag, uint32_t max_items, uint64_t max_bytes)
{
    jobq_queue_opts_t o = {JOBQ_QUEUE_CREATE | JOBQ_QUEUE_EXCL, max_items, max_bytes, 0};
    jobq_queue_t *q = NULL;
    s_fresh_name(tag);
    ck_assert_jobq_ok(jobq_queue_open(s_url, &o, &q));
    return q;
}

static void
s_put_u32(jobq_queue_t *q, uint32_t v)
{
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, &v, sizeof v, NULL, -1));
}

/* Gets one item, checks it holds the 4-byte value want, and finishes it. */
static void
s_get_expect(jobq_queue_t *q, uint32_t want)
{
    jobq_item_t it;
    uint32_t v;
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 1000));
    ck_assert_uint_eq(it.payload_len, sizeof v);
    memcpy(&v, it.payload, sizeof v);
    ck_assert_uint_eq(v, want);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    jobq_item_fini(&it);
}

/* Waits for pid at most timeout_ms; kills it if it overstays. Returns the wait status. */
static int
s_reap(pid_t pid, int64_t timeout_ms)
{
    int st = 0;
    int64_t end = s_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (s_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            ck_abort_msg("child %d did not finish within %lld ms", (int)pid, (long long)timeout_ms);
        }
        usleep(2000);
    }
}

static void
s_expect_exit0(pid_t pid, int64_t timeout_ms)
{
    int st = s_reap(pid, timeout_ms);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: status 0x%x", st);
}

/* ---- put / get / timeouts -------------------------------------------------- */

START_TEST(test_put_get_is_fifo)
{
    jobq_queue_t *q = s_anon(0, 0);
    for (uint32_t i = 0; i < 100; i++)
        s_put_u32(q, i);
    for (uint32_t i = 0; i < 100; i++)
        s_get_expect(q, i);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    jobq_queue_destroy(&q);
    ck_assert_ptr_null(q);
}
END_TEST

START_TEST(test_get_times_out_when_empty)
{
    jobq_queue_t *q = s_anon(0, 0);
    jobq_item_t it;
    int64_t t0 = s_now_ms();
    ck_assert_jobq_err(jobq_queue_get(q, &it, 200), JOBQ_ETIMEDOUT);
    int64_t took = s_now_ms() - t0;
    ck_assert_msg(took >= 190 && took < 1000, "get(200 ms) took %lld ms", (long long)took);
    ck_assert_ptr_null(it.payload);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_put_times_out_when_full)
{
    jobq_queue_t *q = s_anon(2, 0);
    s_put_u32(q, 1);
    s_put_u32(q, 2);
    uint32_t v = 3;
    int64_t t0 = s_now_ms();
    ck_assert_jobq_err(jobq_queue_put_bytes(q, &v, sizeof v, NULL, 200), JOBQ_ETIMEDOUT);
    int64_t took = s_now_ms() - t0;
    ck_assert_msg(took >= 190 && took < 1000, "put(200 ms) took %lld ms", (long long)took);
    ck_assert_uint_eq(jobq_queue_size(q), 2);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_nowait_calls_give_eempty_and_efull)
{
    jobq_queue_t *q = s_anon(1, 0);
    jobq_item_t it;
    uint32_t v = 7;
    ck_assert_jobq_err(jobq_queue_get(q, &it, 0), JOBQ_EEMPTY);
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, &v, sizeof v, NULL, 0));
    ck_assert_jobq_err(jobq_queue_put_bytes(q, &v, sizeof v, NULL, 0), JOBQ_EFULL);
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_blocked_put_resumes_when_a_consumer_takes)
{
    jobq_queue_t *q = s_anon(1, 0);
    s_put_u32(q, 1);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100 * 1000);
        jobq_item_t it;
        int rc = jobq_queue_get(q, &it, 1000);
        _exit(rc == JOBQ_OK ? 0 : 1);
    }
    int64_t t0 = s_now_ms();
    uint32_t v = 2;
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, &v, sizeof v, NULL, 5000));
    int64_t took = s_now_ms() - t0;
    ck_assert_msg(took >= 50 && took < 2000, "blocked put took %lld ms", (long long)took);
    s_expect_exit0(pid, 5000);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_size_empty_full_track_contents)
{
    jobq_queue_t *q = s_anon(3, 0);
    ck_assert_int_eq(jobq_queue_empty(q), 1);
    ck_assert_int_eq(jobq_queue_full(q), 0);
    for (uint32_t i = 0; i < 3; i++)
        s_put_u32(q, i);
    ck_assert_uint_eq(jobq_queue_size(q), 3);
    ck_assert_int_eq(jobq_queue_empty(q), 0);
    ck_assert_int_eq(jobq_queue_full(q), 1);
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    /* Taken but unfinished: no longer queued, still unfinished. */
    ck_assert_uint_eq(jobq_queue_size(q), 2);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 3);
    ck_assert_int_eq(jobq_queue_full(q), 0);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    jobq_item_fini(&it);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 2);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_byte_bound_blocks_puts_until_bytes_are_finished)
{
    jobq_queue_t *q = s_anon(100, 1000);
    char buf[600];
    memset(buf, 'b', sizeof buf);
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, buf, sizeof buf, NULL, 0));
    ck_assert_jobq_err(jobq_queue_put_bytes(q, buf, sizeof buf, NULL, 0), JOBQ_EFULL);
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, buf, 400, NULL, 0));
    ck_assert_int_eq(jobq_queue_full(q), 1);
    /* Taking the item is not enough: its bytes are held until task_done. */
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    ck_assert_jobq_err(jobq_queue_put_bytes(q, buf, sizeof buf, NULL, 0), JOBQ_EFULL);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    jobq_item_fini(&it);
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, buf, sizeof buf, NULL, 0));
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_item_that_can_never_fit_is_etoobig)
{
    jobq_queue_t *q = s_anon(4, 100);
    static char big[JOBQ_PAYLOAD_MAX + 1];
    ck_assert_jobq_err(jobq_queue_put_bytes(q, big, 101, NULL, -1), JOBQ_ETOOBIG);
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, big, 100, NULL, 0));
    jobq_queue_destroy(&q);
    q = s_anon(4, 4u << 20);
    ck_assert_jobq_err(jobq_queue_put_bytes(q, big, sizeof big, NULL, -1), JOBQ_ETOOBIG);
    ck_assert_uint_eq(jobq_queue_size(q), 0);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_large_payload_round_trips_intact)
{
    jobq_queue_t *q = s_anon(4, 4u << 20);
    size_t sizes[] = {0, 1, 88, 89, 256, 257, 4096, 100000, JOBQ_PAYLOAD_MAX};
    uint8_t *buf = malloc(JOBQ_PAYLOAD_MAX);
    for (size_t i = 0; i < JOBQ_PAYLOAD_MAX; i++)
        buf[i] = (uint8_t)(i * 31 + 7);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        jobq_item_t it;
        ck_assert_jobq_ok(jobq_queue_put_bytes(q, buf, sizes[k], NULL, 1000));
        ck_assert_jobq_ok(jobq_queue_get(q, &it, 1000));
        ck_assert_uint_eq(it.payload_len, sizes[k]);
        ck_assert(sizes[k] == 0 || memcmp(it.payload, buf, sizes[k]) == 0);
        ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
        jobq_item_fini(&it);
    }
    free(buf);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_job_fields_and_ids_survive_the_trip)
{
    jobq_queue_t *q = s_anon(0, 0);
    jobq_job_t job;
    jobq_item_t it;
    jobq_job_init(&job);
    job.payload = "hello";
    job.payload_len = 5;
    job.max_attempts = 3;
    job.ttr_ms = 1234;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 0));
    ck_assert(!jobq_id_is_zero(&job.id)); /* assigned and written back */
    jobq_id_t first = job.id;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 0)); /* a given id is kept */
    ck_assert_int_eq(memcmp(&job.id, &first, sizeof first), 0);
    jobq_job_init(&job);
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 0));
    ck_assert_int_ne(memcmp(&job.id, &first, sizeof first), 0);

    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    ck_assert_int_eq(memcmp(&it.id, &first, sizeof first), 0);
    ck_assert_uint_eq(it.attempt, 1);
    ck_assert_uint_eq(it.max_attempts, 3);
    ck_assert_uint_eq(it.ttr_ms, 1234);
    ck_assert_int_eq(it.sentinel, 0);
    ck_assert_int_eq(memcmp(it.payload, "hello", 5), 0);
    jobq_item_fini(&it);
    job.max_attempts = 0;
    ck_assert_jobq_err(jobq_queue_put(q, &job, 0), JOBQ_EINVAL);
    jobq_queue_destroy(&q);
}
END_TEST

/* ---- task_done / join ------------------------------------------------------- */

START_TEST(test_task_done_beyond_held_gives_estate)
{
    jobq_queue_t *q = s_anon(0, 0);
    jobq_item_t it;
    ck_assert_jobq_err(jobq_queue_task_done(q, NULL), JOBQ_ESTATE);
    s_put_u32(q, 1);
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    ck_assert_jobq_err(jobq_queue_task_done(q, &it), JOBQ_ESTATE); /* same token twice */
    ck_assert_jobq_err(jobq_queue_task_done(q, NULL), JOBQ_ESTATE);
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_task_done_null_finishes_oldest_held)
{
    jobq_queue_t *q = s_anon(0, 0);
    jobq_item_t a, b;
    s_put_u32(q, 1);
    s_put_u32(q, 2);
    ck_assert_jobq_ok(jobq_queue_get(q, &a, 0));
    ck_assert_jobq_ok(jobq_queue_get(q, &b, 0));
    ck_assert_jobq_ok(jobq_queue_task_done(q, NULL));
    ck_assert_jobq_err(jobq_queue_task_done(q, &a), JOBQ_ESTATE); /* a was the oldest */
    ck_assert_jobq_ok(jobq_queue_task_done(q, &b));
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    jobq_item_fini(&a);
    jobq_item_fini(&b);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_task_done_for_another_process_item_gives_estate)
{
    jobq_queue_t *q = s_anon(0, 0);
    jobq_item_t it;
    s_put_u32(q, 1);
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    pid_t pid = fork();
    if (pid == 0) {
        /* The child inherited the item record but does not hold the item. */
        int a = jobq_queue_task_done(q, &it);
        int b = jobq_queue_task_done(q, NULL);
        _exit(a == JOBQ_ESTATE && b == JOBQ_ESTATE ? 0 : 1);
    }
    s_expect_exit0(pid, 5000);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_join_times_out_then_returns_after_task_done)
{
    jobq_queue_t *q = s_anon(0, 0);
    ck_assert_jobq_ok(jobq_queue_join(q, 0)); /* nothing put: done */
    s_put_u32(q, 1);
    s_put_u32(q, 2);
    ck_assert_jobq_err(jobq_queue_join(q, 0), JOBQ_ETIMEDOUT);
    int64_t t0 = s_now_ms();
    ck_assert_jobq_err(jobq_queue_join(q, 150), JOBQ_ETIMEDOUT);
    ck_assert_int_ge(s_now_ms() - t0, 140);
    pid_t pid = fork();
    if (pid == 0) {
        jobq_item_t it;
        for (int i = 0; i < 2; i++) {
            if (jobq_queue_get(q, &it, 1000) != JOBQ_OK)
                _exit(1);
            usleep(100 * 1000);
            if (jobq_queue_task_done(q, &it) != JOBQ_OK)
                _exit(2);
            jobq_item_fini(&it);
        }
        _exit(0);
    }
    t0 = s_now_ms();
    ck_assert_jobq_ok(jobq_queue_join(q, 5000));
    int64_t took = s_now_ms() - t0;
    ck_assert_msg(took >= 150 && took < 3000, "join took %lld ms", (long long)took);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    s_expect_exit0(pid, 5000);
    jobq_queue_destroy(&q);
}
END_TEST

/* ---- close and sentinels ---------------------------------------------------- */

START_TEST(test_close_refuses_puts_then_getters_drain)
{
    jobq_queue_t *q = s_anon(0, 0);
    s_put_u32(q, 1);
    s_put_u32(q, 2);
    ck_assert_jobq_ok(jobq_queue_close(q));
    uint32_t v = 3;
    ck_assert_jobq_err(jobq_queue_put_bytes(q, &v, sizeof v, NULL, -1), JOBQ_ECLOSED);
    s_get_expect(q, 1);
    s_get_expect(q, 2);
    jobq_item_t it;
    ck_assert_jobq_err(jobq_queue_get(q, &it, -1), JOBQ_ECLOSED);
    ck_assert_jobq_err(jobq_queue_get(q, &it, 0), JOBQ_ECLOSED);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_close_wakes_a_blocked_getter)
{
    jobq_queue_t *q = s_anon(0, 0);
    pid_t pid = fork();
    if (pid == 0) {
        jobq_item_t it;
        _exit(jobq_queue_get(q, &it, 5000) == JOBQ_ECLOSED ? 0 : 1);
    }
    usleep(100 * 1000);
    int64_t t0 = s_now_ms();
    ck_assert_jobq_ok(jobq_queue_close(q));
    s_expect_exit0(pid, 3000);
    ck_assert_int_lt(s_now_ms() - t0, 1000);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_sentinels_are_counted_and_allowed_after_close)
{
    jobq_queue_t *q = s_anon(0, 0);
    s_put_u32(q, 1);
    ck_assert_jobq_ok(jobq_queue_close(q));
    ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 0));
    ck_assert_uint_eq(jobq_queue_unfinished(q), 2);
    s_get_expect(q, 1);
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    ck_assert_int_eq(it.sentinel, 1);
    ck_assert_uint_eq(it.payload_len, 0);
    ck_assert_jobq_err(jobq_queue_join(q, 0), JOBQ_ETIMEDOUT); /* the sentinel counts */
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

/* ---- results channel -------------------------------------------------------- */

static void
s_result_round_trip(jobq_queue_t *q, uint32_t out_len, uint32_t err_len)
{
    jobq_result_t r, got;
    uint8_t *out = malloc(out_len + 1);
    char *err = malloc(err_len + 1);
    for (uint32_t i = 0; i < out_len; i++)
        out[i] = (uint8_t)(i ^ 0x5a);
    memset(err, 'e', err_len);
    jobq_result_init(&r);
    jobq_id_generate(&r.id);
    r.attempt = 3;
    r.status = JOBQ_STATUS_FAILED;
    r.exit_code = 42;
    r.signal = 15;
    r.duration_us = 123456789;
    r.output = out;
    r.output_len = out_len;
    r.error = err;
    r.error_len = err_len;
    ck_assert_jobq_ok(jobq_queue_put_result(q, &r, 1000));
    ck_assert_jobq_ok(jobq_queue_get_result(q, &got, 1000));
    ck_assert_int_eq(memcmp(&got.id, &r.id, sizeof r.id), 0);
    ck_assert_uint_eq(got.attempt, 3);
    ck_assert_int_eq(got.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(got.exit_code, 42);
    ck_assert_int_eq(got.signal, 15);
    ck_assert_uint_eq(got.duration_us, 123456789);
    ck_assert_uint_eq(got.output_len, out_len);
    ck_assert_uint_eq(got.error_len, err_len);
    ck_assert(out_len == 0 || memcmp(got.output, out, out_len) == 0);
    ck_assert(err_len == 0 || memcmp(got.error, err, err_len) == 0);
    free(out);
    free(err);
}

START_TEST(test_results_round_trip_with_every_field)
{
    jobq_queue_t *q = s_anon(0, 4u << 20);
    s_result_round_trip(q, 0, 0);
    s_result_round_trip(q, 10, 5);
    s_result_round_trip(q, 5000, 1024);
    s_result_round_trip(q, JOBQ_PAYLOAD_MAX, 0);
    jobq_result_t r, got;
    jobq_result_init(&r);
    r.error_len = JOBQ_ERROR_TEXT_MAX + 1;
    r.error = "x";
    ck_assert_jobq_err(jobq_queue_put_result(q, &r, 0), JOBQ_ETOOBIG);
    ck_assert_jobq_err(jobq_queue_get_result(q, &got, 0), JOBQ_EEMPTY);
    ck_assert_jobq_err(jobq_queue_get_result(q, &got, 100), JOBQ_ETIMEDOUT);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_results_channel_is_bounded)
{
    jobq_queue_opts_t o = {0, 0, 0, 2};
    jobq_queue_t *q = NULL;
    jobq_result_t r, got;
    ck_assert_jobq_ok(jobq_queue_new_anon(&o, &q));
    jobq_result_init(&r);
    ck_assert_jobq_ok(jobq_queue_put_result(q, &r, 0));
    ck_assert_jobq_ok(jobq_queue_put_result(q, &r, 0));
    ck_assert_jobq_err(jobq_queue_put_result(q, &r, 0), JOBQ_EFULL);
    ck_assert_jobq_err(jobq_queue_put_result(q, &r, 100), JOBQ_ETIMEDOUT);
    ck_assert_jobq_ok(jobq_queue_get_result(q, &got, 0));
    ck_assert_jobq_ok(jobq_queue_put_result(q, &r, 0));
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_results_travel_back_from_a_child)
{
    jobq_queue_t *q = s_anon(0, 0);
    s_put_u32(q, 99);
    pid_t pid = fork();
    if (pid == 0) {
        jobq_item_t it;
        jobq_result_t r;
        if (jobq_queue_get(q, &it, 1000) != JOBQ_OK)
            _exit(1);
        jobq_result_init(&r);
        r.id = it.id;
        r.attempt = it.attempt;
        r.output = it.payload;
        r.output_len = (uint32_t)it.payload_len;
        if (jobq_queue_put_result(q, &r, 1000) != JOBQ_OK || jobq_queue_task_done(q, &it) != 0)
            _exit(2);
        _exit(0);
    }
    jobq_result_t got;
    ck_assert_jobq_ok(jobq_queue_get_result(q, &got, 3000));
    ck_assert_uint_eq(got.output_len, 4);
    ck_assert_uint_eq(*(const uint32_t *)got.output, 99);
    ck_assert_jobq_ok(jobq_queue_join(q, 3000));
    s_expect_exit0(pid, 3000);
    jobq_queue_destroy(&q);
}
END_TEST

/* ---- named queues ------------------------------------------------------------ */

START_TEST(test_named_queue_is_shared_with_an_unrelated_open)
{
    jobq_queue_t *q = s_named("attach", 0, 0);
    s_put_u32(q, 5);
    pid_t pid = fork();
    if (pid == 0) {
        /* A fresh handle from the name alone, as an unrelated process would. */
        jobq_queue_t *c = NULL;
        jobq_item_t it;
        if (jobq_queue_open(s_url, NULL, &c) != JOBQ_OK)
            _exit(1);
        if (jobq_queue_get(c, &it, 1000) != JOBQ_OK || *(uint32_t *)it.payload != 5)
            _exit(2);
        if (jobq_queue_task_done(c, &it) != JOBQ_OK)
            _exit(3);
        uint32_t v = 6;
        if (jobq_queue_put_bytes(c, &v, sizeof v, NULL, 0) != JOBQ_OK)
            _exit(4);
        jobq_queue_destroy(&c);
        _exit(0);
    }
    s_expect_exit0(pid, 5000);
    s_get_expect(q, 6);
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_queue_destroy(&q);
    ck_assert_jobq_ok(jobq_queue_unlink(s_url));
}
END_TEST

START_TEST(test_open_without_create_is_enotfound)
{
    jobq_queue_t *q = NULL;
    s_fresh_name("absent");
    ck_assert_jobq_err(jobq_queue_open(s_url, NULL, &q), JOBQ_ENOTFOUND);
    ck_assert_ptr_null(q);
    ck_assert_jobq_err(jobq_queue_unlink(s_url), JOBQ_ENOTFOUND);
}
END_TEST

START_TEST(test_create_excl_on_existing_gives_eduplicate)
{
    jobq_queue_t *q = s_named("excl", 0, 0), *q2 = NULL;
    jobq_queue_opts_t o = {JOBQ_QUEUE_CREATE | JOBQ_QUEUE_EXCL, 0, 0, 0};
    ck_assert_jobq_err(jobq_queue_open(s_url, &o, &q2), JOBQ_EDUPLICATE);
    ck_assert_ptr_null(q2);
    o.flags = JOBQ_QUEUE_CREATE; /* CREATE alone attaches */
    s_put_u32(q, 11);
    ck_assert_jobq_ok(jobq_queue_open(s_url, &o, &q2));
    s_get_expect(q2, 11);
    jobq_queue_destroy(&q2);
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

START_TEST(test_unlink_removes_the_object_but_attached_handles_work)
{
    jobq_queue_t *q = s_named("unlink", 0, 0), *q2 = NULL;
    char obj[256], path[300];
    struct stat st;
    ck_assert_int_eq(shmq_object_name(s_name, obj, sizeof obj), 0);
    snprintf(path, sizeof path, "/dev/shm%s", obj);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_jobq_ok(jobq_queue_unlink(s_url));
    ck_assert_int_eq(stat(path, &st), -1);
    ck_assert_jobq_err(jobq_queue_open(s_url, NULL, &q2), JOBQ_ENOTFOUND);
    s_put_u32(q, 1);
    s_get_expect(q, 1);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_named_object_is_private_to_the_user)
{
    mode_t old = umask(0);
    jobq_queue_t *q = s_named("mode", 0, 0);
    umask(old);
    char obj[256], path[300];
    struct stat st;
    ck_assert_int_eq(shmq_object_name(s_name, obj, sizeof obj), 0);
    ck_assert_ptr_nonnull(strstr(obj, "jobq-"));
    snprintf(path, sizeof path, "/dev/shm%s", obj);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(st.st_uid, geteuid());
    /* Opened up to others, it is refused. */
    ck_assert_int_eq(chmod(path, 0644), 0);
    jobq_queue_t *q2 = NULL;
    ck_assert_jobq_err(jobq_queue_open(s_url, NULL, &q2), JOBQ_EFORBIDDEN);
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

static void
s_write_garbage(const char *path, size_t len)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    char *junk = malloc(len);
    for (size_t i = 0; i < len; i++)
        junk[i] = (char)(i * 7 + 1);
    ck_assert_int_eq(write(fd, junk, len), (ssize_t)len);
    free(junk);
    close(fd);
}

START_TEST(test_stale_object_is_refused_then_replaced_with_create)
{
    char obj[256], path[300];
    jobq_queue_t *q = NULL;
    s_fresh_name("stale");
    ck_assert_int_eq(shmq_object_name(s_name, obj, sizeof obj), 0);
    snprintf(path, sizeof path, "/dev/shm%s", obj);
    s_write_garbage(path, 8192);
    ck_assert_jobq_err(jobq_queue_open(s_url, NULL, &q), JOBQ_ECORRUPT);
    ck_assert_ptr_null(q);
    jobq_queue_opts_t o = {JOBQ_QUEUE_CREATE, 4, 0, 0};
    ck_assert_jobq_ok(jobq_queue_open(s_url, &o, &q));
    s_put_u32(q, 3);
    s_get_expect(q, 3);
    jobq_queue_destroy(&q);
    /* A header of another version is named as such. */
    ck_assert_jobq_ok(jobq_queue_open(s_url, NULL, &q));
    jobq_queue_destroy(&q);
    int fd = open(path, O_RDWR);
    uint32_t v = SHMQ_VERSION + 1;
    ck_assert_int_eq(pwrite(fd, &v, sizeof v, offsetof(shmq_hdr_t, version)), (ssize_t)sizeof v);
    close(fd);
    ck_assert_jobq_err(jobq_queue_open(s_url, NULL, &q), JOBQ_EVERSION);
    /* A header never marked ready (a creator died) is stale too. */
    ck_assert_jobq_ok(jobq_queue_open(s_url, &o, &q));
    jobq_queue_destroy(&q);
    fd = open(path, O_RDWR);
    v = 0;
    ck_assert_int_eq(pwrite(fd, &v, sizeof v, offsetof(shmq_hdr_t, ready)), (ssize_t)sizeof v);
    close(fd);
    ck_assert_jobq_err(jobq_queue_open(s_url, NULL, &q), JOBQ_ECORRUPT);
    ck_assert_jobq_ok(jobq_queue_open(s_url, &o, &q));
    jobq_queue_destroy(&q);
    /* A truncated one as well. */
    ck_assert_int_eq(truncate(path, 4096), 0);
    ck_assert_jobq_err(jobq_queue_open(s_url, NULL, &q), JOBQ_ECORRUPT);
    ck_assert_jobq_ok(jobq_queue_unlink(s_url));
}
END_TEST

START_TEST(test_concurrent_creators_share_one_queue)
{
    s_fresh_name("race");
    pid_t pids[4];
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            jobq_queue_opts_t o = {JOBQ_QUEUE_CREATE, 64, 0, 0};
            jobq_queue_t *q = NULL;
            if (jobq_queue_open(s_url, &o, &q) != JOBQ_OK)
                _exit(1);
            uint32_t v = (uint32_t)i;
            if (jobq_queue_put_bytes(q, &v, sizeof v, NULL, 1000) != JOBQ_OK)
                _exit(2);
            jobq_queue_destroy(&q);
            _exit(0);
        }
    }
    for (int i = 0; i < 4; i++)
        s_expect_exit0(pids[i], 5000);
    jobq_queue_t *q = NULL;
    ck_assert_jobq_ok(jobq_queue_open(s_url, NULL, &q));
    ck_assert_uint_eq(jobq_queue_size(q), 4); /* all four reached the same queue */
    jobq_queue_destroy(&q);
    ck_assert_jobq_ok(jobq_queue_unlink(s_url));
}
END_TEST

START_TEST(test_corrupt_payload_is_detected_and_finished)
{
    jobq_queue_t *q = s_named("crc", 8, 1u << 20);
    char obj[256], path[300], buf[1000];
    memset(buf, 'Q', sizeof buf);
    memcpy(buf + 500, "MARKER", 6);
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, buf, sizeof buf, NULL, 0));
    s_put_u32(q, 8);
    ck_assert_int_eq(shmq_object_name(s_name, obj, sizeof obj), 0);
    snprintf(path, sizeof path, "/dev/shm%s", obj);
    int fd = open(path, O_RDWR);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    char *hit = memmem(m, (size_t)st.st_size, "MARKER", 6);
    ck_assert_ptr_nonnull(hit);
    hit[0] = 'X'; /* a stray write into the arena */
    munmap(m, (size_t)st.st_size);
    close(fd);
    jobq_item_t it;
    ck_assert_jobq_err(jobq_queue_get(q, &it, 0), JOBQ_ECORRUPT);
    ck_assert_ptr_null(it.payload);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 1); /* the bad item is finished */
    s_get_expect(q, 8);
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

START_TEST(test_invariants_hold_after_mixed_use)
{
    jobq_queue_t *q = s_named("inv", 16, 64 * 1024);
    char why[160] = "";
    char buf[3000];
    jobq_item_t held[5];
    shmq_stats_t st;
    memset(buf, 1, sizeof buf);
    for (int i = 0; i < 10; i++)
        ck_assert_jobq_ok(jobq_queue_put_bytes(q, buf, (size_t)(i * 300), NULL, 0));
    for (int i = 0; i < 5; i++)
        ck_assert_jobq_ok(jobq_queue_get(q, &held[i], 0));
    for (int i = 0; i < 5; i += 2)
        ck_assert_jobq_ok(jobq_queue_task_done(q, &held[i]));
    ck_assert_msg(shmq_debug_check(s_name, why, sizeof why, &st) == JOBQ_OK, "%s", why);
    ck_assert_uint_eq(st.queued, 5);
    ck_assert_uint_eq(st.taken, 2);
    ck_assert_uint_eq(st.sleepers, 0);
    for (int i = 0; i < 5; i++)
        jobq_item_fini(&held[i]);
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

/* ---- anonymous queue across fork ------------------------------------------- */

#define S_MANY 10000

START_TEST(test_anon_queue_four_consumers_take_every_item_once)
{
    jobq_queue_t *q = s_anon(256, 0);
    int fds[4][2];
    pid_t pids[4];
    for (int c = 0; c < 4; c++) {
        ck_assert_int_eq(pipe(fds[c]), 0);
        pids[c] = fork();
        if (pids[c] == 0) {
            /* Consumer: report each value taken on its pipe, stop at the sentinel. */
            close(fds[c][0]);
            for (;;) {
                jobq_item_t it;
                if (jobq_queue_get(q, &it, 10000) != JOBQ_OK)
                    _exit(1);
                int stop = it.sentinel;
                if (!stop && write(fds[c][1], it.payload, 4) != 4)
                    _exit(2);
                if (jobq_queue_task_done(q, &it) != JOBQ_OK)
                    _exit(3);
                jobq_item_fini(&it);
                if (stop)
                    _exit(0);
            }
        }
        close(fds[c][1]);
    }
    for (uint32_t i = 0; i < S_MANY; i++)
        s_put_u32(q, i);
    ck_assert_jobq_ok(jobq_queue_join(q, 20000));
    for (int c = 0; c < 4; c++)
        ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 1000));
    static uint8_t seen[S_MANY];
    int total = 0;
    for (int c = 0; c < 4; c++) {
        uint32_t v;
        int from_this = 0;
        while (read(fds[c][0], &v, 4) == 4) {
            ck_assert_uint_lt(v, S_MANY);
            ck_assert_msg(!seen[v], "item %u delivered twice", v);
            seen[v] = 1;
            total++;
            from_this++;
        }
        close(fds[c][0]);
        s_expect_exit0(pids[c], 10000);
    }
    ck_assert_int_eq(total, S_MANY);
    ck_assert_jobq_ok(jobq_queue_join(q, 1000));
    jobq_queue_destroy(&q);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("shmq");
    TCase *tc = tcase_create("calls");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_put_get_is_fifo);
    tcase_add_test(tc, test_get_times_out_when_empty);
    tcase_add_test(tc, test_put_times_out_when_full);
    tcase_add_test(tc, test_nowait_calls_give_eempty_and_efull);
    tcase_add_test(tc, test_blocked_put_resumes_when_a_consumer_takes);
    tcase_add_test(tc, test_size_empty_full_track_contents);
    tcase_add_test(tc, test_byte_bound_blocks_puts_until_bytes_are_finished);
    tcase_add_test(tc, test_item_that_can_never_fit_is_etoobig);
    tcase_add_test(tc, test_large_payload_round_trips_intact);
    tcase_add_test(tc, test_job_fields_and_ids_survive_the_trip);
    tcase_add_test(tc, test_task_done_beyond_held_gives_estate);
    tcase_add_test(tc, test_task_done_null_finishes_oldest_held);
    tcase_add_test(tc, test_task_done_for_another_process_item_gives_estate);
    tcase_add_test(tc, test_join_times_out_then_returns_after_task_done);
    tcase_add_test(tc, test_close_refuses_puts_then_getters_drain);
    tcase_add_test(tc, test_close_wakes_a_blocked_getter);
    tcase_add_test(tc, test_sentinels_are_counted_and_allowed_after_close);
    tcase_add_test(tc, test_results_round_trip_with_every_field);
    tcase_add_test(tc, test_results_channel_is_bounded);
    tcase_add_test(tc, test_results_travel_back_from_a_child);
    tcase_add_test(tc, test_named_queue_is_shared_with_an_unrelated_open);
    tcase_add_test(tc, test_open_without_create_is_enotfound);
    tcase_add_test(tc, test_create_excl_on_existing_gives_eduplicate);
    tcase_add_test(tc, test_unlink_removes_the_object_but_attached_handles_work);
    tcase_add_test(tc, test_named_object_is_private_to_the_user);
    tcase_add_test(tc, test_stale_object_is_refused_then_replaced_with_create);
    tcase_add_test(tc, test_concurrent_creators_share_one_queue);
    tcase_add_test(tc, test_corrupt_payload_is_detected_and_finished);
    tcase_add_test(tc, test_invariants_hold_after_mixed_use);
    tcase_add_test(tc, test_anon_queue_four_consumers_take_every_item_once);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    jobq_test_remove_stale_shm("t");
    return jobq_test_run(s_suite());
}
