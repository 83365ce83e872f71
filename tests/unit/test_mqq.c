/*
 * tests/unit/test_mqq.c: the mq:// JoinableQueue (common/mqq.c), call by call: FIFO,
 * timeouts, capacity, size limits, task_done/join bookkeeping, close, sentinels,
 * results, attaching from another process, creation flags, unlink, stale objects, and a
 * four-consumer run over real forked processes.
 *
 * Every queue is named tmqq-<runner pid>-<tag>; main() unlinks them all at the end, so
 * a failed test leaves nothing behind (POSIX mq memory per uid is small here).
 */
#include "common/mqq_priv.h"
#include "jobq/log.h"
#include "jobq/queue.h"
#include "common/clock.h"
#include "jobq_test.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t s_runner;
static char s_urlbuf[128];

static const char *const s_tags[] = {
    "fifo",  "tmo",    "full", "cap",   "size",   "big",    "over", "null",   "join",  "joinp",
    "close", "closew", "sent", "res",   "attach", "absent", "excl", "unlink", "stale", "half",
    "attrs", "nores",  "many", "block", "valid",  "perm",   "thr",  "eclh",
};

static const char *
s_url(const char *tag)
{
    snprintf(s_urlbuf, sizeof s_urlbuf, "mq://tmqq-%d-%s", (int)s_runner, tag);
    return s_urlbuf;
}

/* Unlinks every queue of this run: a test that failed half-way must not leave its mqs
 * charged to the uid's small RLIMIT_MSGQUEUE for the tests after it. */
static void
s_sweep(void)
{
    char keep[sizeof s_urlbuf];
    memcpy(keep, s_urlbuf, sizeof keep);
    for (size_t i = 0; i < sizeof s_tags / sizeof s_tags[0]; i++)
        jobq_queue_unlink(s_url(s_tags[i]));
    memcpy(s_urlbuf, keep, sizeof keep);
}

/* Creates a fresh queue for tag (max_items 0 = default). */
static jobq_queue_t *
s_new(const char *tag, uint32_t max_items)
{
    jobq_queue_t *q = NULL;
    jobq_queue_opts_t o = {.flags = JOBQ_QUEUE_CREATE, .max_items = max_items};
    s_sweep();
    ck_assert_jobq_ok(jobq_queue_open(s_url(tag), &o, &q));
    ck_assert_ptr_nonnull(q);
    return q;
}

static void
s_put_str(jobq_queue_t *q, const char *s)
{
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, s, strlen(s), NULL, 0));
}

/* Gets one item and checks its payload is the string want. */
static void
s_get_str(jobq_queue_t *q, const char *want, jobq_item_t *it)
{
    ck_assert_jobq_ok(jobq_queue_get(q, it, 1000));
    ck_assert_int_eq(it->payload_len, strlen(want));
    ck_assert(memcmp(it->payload, want, it->payload_len) == 0);
}

static int
s_wait_child(pid_t pid)
{
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(test_items_come_out_in_put_order)
{
    jobq_queue_t *q = s_new("fifo", 0);
    jobq_job_t job;
    jobq_id_t ids[5];
    char txt[8];
    for (int i = 0; i < 5; i++) {
        jobq_job_init(&job);
        snprintf(txt, sizeof txt, "item%d", i);
        job.payload = txt;
        job.payload_len = (uint32_t)strlen(txt);
        job.max_attempts = 3;
        job.ttr_ms = 1234;
        ck_assert_jobq_ok(jobq_queue_put(q, &job, 0));
        ck_assert(!jobq_id_is_zero(&job.id)); /* a fresh id is written back */
        ids[i] = job.id;
    }
    for (int i = 0; i < 5; i++) {
        jobq_item_t it;
        snprintf(txt, sizeof txt, "item%d", i);
        s_get_str(q, txt, &it);
        ck_assert(memcmp(&it.id, &ids[i], sizeof it.id) == 0);
        ck_assert_uint_eq(it.attempt, 1);
        ck_assert_uint_eq(it.max_attempts, 3);
        ck_assert_uint_eq(it.ttr_ms, 1234);
        ck_assert_int_eq(it.sentinel, 0);
        ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
        jobq_item_fini(&it);
    }
    jobq_queue_destroy(&q);
    ck_assert_ptr_null(q);
}
END_TEST

START_TEST(test_get_on_empty_queue_gives_eempty_or_times_out)
{
    jobq_queue_t *q = s_new("tmo", 0);
    jobq_item_t it;
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_err(jobq_queue_get(q, &it, 0), JOBQ_EEMPTY);
    ck_assert_int_lt(jobq_now_ms() - t0, 50);
    ck_assert_ptr_null(it.payload);
    t0 = jobq_now_ms();
    ck_assert_jobq_err(jobq_queue_get(q, &it, 250), JOBQ_ETIMEDOUT);
    int64_t took = jobq_now_ms() - t0;
    ck_assert_int_ge(took, 240);
    ck_assert_int_lt(took, 1000);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_put_on_full_queue_gives_efull_or_times_out)
{
    jobq_queue_t *q = s_new("full", 0);
    for (int i = 0; i < 10; i++)
        s_put_str(q, "x");
    ck_assert_int_eq(jobq_queue_full(q), 1);
    ck_assert_jobq_err(jobq_queue_put_bytes(q, "y", 1, NULL, 0), JOBQ_EFULL);
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_err(jobq_queue_put_bytes(q, "y", 1, NULL, 200), JOBQ_ETIMEDOUT);
    ck_assert_int_ge(jobq_now_ms() - t0, 190);
    ck_assert_uint_eq(jobq_queue_size(q), 10);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 10); /* failed puts are not counted */
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    ck_assert_int_eq(jobq_queue_full(q), 0);
    s_put_str(q, "z");
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_capacity_is_clamped_to_the_mq_depth)
{
    jobq_queue_t *q = s_new("cap", 100000);
    int n = 0;
    while (jobq_queue_put_bytes(q, "c", 1, NULL, 0) == JOBQ_OK)
        n++;
    ck_assert_int_eq(n, (int)MQQ_DEPTH_MAX);
    jobq_queue_destroy(&q);
    q = s_new("cap", 3); /* smaller capacities are kept */
    n = 0;
    while (jobq_queue_put_bytes(q, "c", 1, NULL, 0) == JOBQ_OK)
        n++;
    ck_assert_int_eq(n, 3);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_size_empty_and_unfinished_follow_the_items)
{
    jobq_queue_t *q = s_new("size", 0);
    jobq_item_t a, b;
    ck_assert_int_eq(jobq_queue_empty(q), 1);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    s_put_str(q, "a");
    s_put_str(q, "b");
    ck_assert_int_eq(jobq_queue_empty(q), 0);
    ck_assert_uint_eq(jobq_queue_size(q), 2);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 2);
    s_get_str(q, "a", &a);
    ck_assert_uint_eq(jobq_queue_size(q), 1);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 2); /* taken is not finished */
    ck_assert_jobq_ok(jobq_queue_task_done(q, &a));
    ck_assert_uint_eq(jobq_queue_unfinished(q), 1);
    s_get_str(q, "b", &b);
    ck_assert_int_eq(jobq_queue_empty(q), 1);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &b));
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    jobq_item_fini(&a);
    jobq_item_fini(&b);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_payload_at_the_limit_travels_intact)
{
    jobq_queue_t *q = s_new("big", 0);
    unsigned char *buf = malloc(MQQ_PAYLOAD_MAX);
    for (unsigned i = 0; i < MQQ_PAYLOAD_MAX; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    ck_assert_uint_eq(MQQ_PAYLOAD_MAX, 8144);
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, buf, MQQ_PAYLOAD_MAX, NULL, 0));
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 1000));
    ck_assert_uint_eq(it.payload_len, MQQ_PAYLOAD_MAX);
    ck_assert(memcmp(it.payload, buf, MQQ_PAYLOAD_MAX) == 0);
    jobq_item_fini(&it);
    free(buf);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_payload_one_byte_over_the_limit_is_etoobig)
{
    jobq_queue_t *q = s_new("over", 0);
    size_t len = MQQ_PAYLOAD_MAX + 1;
    char *buf = calloc(1, len);
    ck_assert_jobq_err(jobq_queue_put_bytes(q, buf, len, NULL, 0), JOBQ_ETOOBIG);
    ck_assert_jobq_err(jobq_queue_put_bytes(q, buf, 100000, NULL, 0), JOBQ_ETOOBIG);
    ck_assert_uint_eq(jobq_queue_size(q), 0);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    free(buf);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_task_done_too_many_times_is_estate)
{
    jobq_queue_t *q = s_new("null", 0);
    jobq_item_t a, b;
    ck_assert_jobq_err(jobq_queue_task_done(q, NULL), JOBQ_ESTATE);
    s_put_str(q, "a");
    s_put_str(q, "b");
    s_get_str(q, "a", &a);
    s_get_str(q, "b", &b);
    /* NULL finishes the oldest item this process holds: a */
    ck_assert_jobq_ok(jobq_queue_task_done(q, NULL));
    ck_assert_jobq_err(jobq_queue_task_done(q, &a), JOBQ_ESTATE);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 1);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &b));
    ck_assert_jobq_err(jobq_queue_task_done(q, &b), JOBQ_ESTATE);
    ck_assert_jobq_err(jobq_queue_task_done(q, NULL), JOBQ_ESTATE);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    jobq_item_t zero = {0};
    ck_assert_jobq_err(jobq_queue_task_done(q, &zero), JOBQ_ESTATE);
    jobq_item_fini(&a);
    jobq_item_fini(&b);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_join_times_out_while_items_are_unfinished)
{
    jobq_queue_t *q = s_new("join", 0);
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_join(q, 0)); /* nothing put */
    s_put_str(q, "j");
    ck_assert_jobq_err(jobq_queue_join(q, 0), JOBQ_ETIMEDOUT);
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_err(jobq_queue_join(q, 250), JOBQ_ETIMEDOUT);
    ck_assert_int_ge(jobq_now_ms() - t0, 240);
    s_get_str(q, "j", &it);
    ck_assert_jobq_err(jobq_queue_join(q, 0), JOBQ_ETIMEDOUT);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_join_returns_when_another_process_finishes)
{
    jobq_queue_t *q = s_new("joinp", 0);
    s_put_str(q, "p");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_queue_t *c = NULL;
        jobq_item_t it;
        usleep(200 * 1000);
        if (jobq_queue_open(s_url("joinp"), NULL, &c) || jobq_queue_get(c, &it, 1000) ||
            jobq_queue_task_done(c, &it))
            _exit(1);
        _exit(0);
    }
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_ok(jobq_queue_join(q, 5000));
    int64_t took = jobq_now_ms() - t0;
    ck_assert_int_ge(took, 150);
    ck_assert_int_lt(took, 2000);
    ck_assert_int_eq(s_wait_child(pid), 0);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_close_refuses_puts_then_getters_drain_then_eclosed)
{
    jobq_queue_t *q = s_new("close", 0);
    jobq_item_t it;
    s_put_str(q, "1");
    s_put_str(q, "2");
    ck_assert_jobq_ok(jobq_queue_close(q));
    ck_assert_jobq_err(jobq_queue_put_bytes(q, "3", 1, NULL, 0), JOBQ_ECLOSED);
    ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 0)); /* sentinels still allowed */
    ck_assert_uint_eq(jobq_queue_unfinished(q), 3);
    s_get_str(q, "1", &it);
    jobq_item_fini(&it);
    s_get_str(q, "2", &it);
    jobq_item_fini(&it);
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    ck_assert_int_eq(it.sentinel, 1);
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_err(jobq_queue_get(q, &it, -1), JOBQ_ECLOSED);
    ck_assert_int_lt(jobq_now_ms() - t0, 1000);
    ck_assert_jobq_err(jobq_queue_get(q, &it, 0), JOBQ_ECLOSED);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_getter_blocked_forever_sees_close)
{
    jobq_queue_t *q = s_new("closew", 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_item_t it;
        _exit(jobq_queue_get(q, &it, -1) == JOBQ_ECLOSED ? 0 : 1);
    }
    usleep(150 * 1000);
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_ok(jobq_queue_close(q));
    ck_assert_int_eq(s_wait_child(pid), 0);
    ck_assert_int_lt(jobq_now_ms() - t0, 1000);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_closed_queue_waits_for_items_another_process_holds)
{
    /* A getter must not give up while a peer holds an item that could come back. */
    jobq_queue_t *q = s_new("eclh", 0);
    jobq_item_t it;
    s_put_str(q, "h");
    int up[2], down[2];
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char c;
        if (jobq_queue_get(q, &it, 1000) != JOBQ_OK || write(up[1], "g", 1) != 1)
            _exit(1);
        if (read(down[0], &c, 1) != 1) /* the parent's go-ahead, after its checks */
            _exit(2);
        _exit(jobq_queue_task_done(q, &it) == JOBQ_OK ? 0 : 3);
    }
    char c;
    ck_assert_int_eq(read(up[0], &c, 1), 1);
    ck_assert_jobq_ok(jobq_queue_close(q));
    ck_assert_jobq_err(jobq_queue_get(q, &it, 300), JOBQ_ETIMEDOUT);
    ck_assert_int_eq(write(down[1], "d", 1), 1);
    ck_assert_int_eq(s_wait_child(pid), 0);
    ck_assert_jobq_err(jobq_queue_get(q, &it, 1000), JOBQ_ECLOSED);
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_sentinel_is_flagged_and_counted)
{
    jobq_queue_t *q = s_new("sent", 0);
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 0));
    ck_assert_uint_eq(jobq_queue_unfinished(q), 1);
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 1000));
    ck_assert_int_eq(it.sentinel, 1);
    ck_assert_ptr_null(it.payload);
    ck_assert_uint_eq(it.payload_len, 0);
    ck_assert_jobq_err(jobq_queue_join(q, 0), JOBQ_ETIMEDOUT);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_results_round_trip_and_respect_the_limit)
{
    jobq_queue_t *q = s_new("res", 0);
    jobq_result_t r, got;
    jobq_result_init(&r);
    jobq_id_generate(&r.id);
    r.attempt = 2;
    r.status = JOBQ_STATUS_FAILED;
    r.exit_code = 3;
    r.signal = 0;
    r.duration_us = 123456789;
    r.output = "out!";
    r.output_len = 4;
    r.error = "bad";
    r.error_len = 3;
    ck_assert_jobq_err(jobq_queue_get_result(q, &got, 0), JOBQ_EEMPTY);
    ck_assert_jobq_ok(jobq_queue_put_result(q, &r, 0));
    ck_assert_jobq_ok(jobq_queue_get_result(q, &got, 1000));
    ck_assert(memcmp(&got.id, &r.id, sizeof r.id) == 0);
    ck_assert_uint_eq(got.attempt, 2);
    ck_assert_int_eq(got.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(got.exit_code, 3);
    ck_assert_uint_eq(got.duration_us, 123456789);
    ck_assert_uint_eq(got.output_len, 4);
    ck_assert(memcmp(got.output, "out!", 4) == 0);
    ck_assert_uint_eq(got.error_len, 3);
    ck_assert(memcmp(got.error, "bad", 3) == 0);

    char *big = calloc(1, MQQ_RESULT_MAX + 1);
    r.output = big;
    r.output_len = MQQ_RESULT_MAX - 3; /* + 3 bytes of error: exactly the limit */
    ck_assert_jobq_ok(jobq_queue_put_result(q, &r, 0));
    r.output_len = MQQ_RESULT_MAX - 2;
    ck_assert_jobq_err(jobq_queue_put_result(q, &r, 0), JOBQ_ETOOBIG);
    ck_assert_jobq_ok(jobq_queue_get_result(q, &got, 1000));
    ck_assert_uint_eq(got.output_len, MQQ_RESULT_MAX - 3);
    ck_assert_jobq_err(jobq_queue_get_result(q, &got, 100), JOBQ_ETIMEDOUT);
    r.output_len = 0;
    for (int i = 0; i < 10; i++) /* the results channel is bounded too */
        ck_assert_jobq_ok(jobq_queue_put_result(q, &r, 0));
    ck_assert_jobq_err(jobq_queue_put_result(q, &r, 0), JOBQ_EFULL);
    free(big);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_second_process_attaches_and_shares_items)
{
    jobq_queue_t *q = s_new("attach", 0);
    jobq_item_t it;
    s_put_str(q, "from-parent");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_queue_t *c = NULL;
        jobq_item_t ci;
        if (jobq_queue_open(s_url("attach"), NULL, &c) != JOBQ_OK)
            _exit(1);
        if (jobq_queue_get(c, &ci, 1000) != JOBQ_OK || ci.payload_len != 11 ||
            memcmp(ci.payload, "from-parent", 11) != 0 || jobq_queue_task_done(c, &ci))
            _exit(2);
        if (jobq_queue_put_bytes(c, "from-child", 10, NULL, 1000) != JOBQ_OK)
            _exit(3);
        jobq_queue_destroy(&c);
        _exit(0);
    }
    ck_assert_int_eq(s_wait_child(pid), 0);
    s_get_str(q, "from-child", &it);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_open_without_create_of_missing_queue_is_enotfound)
{
    jobq_queue_t *q = (jobq_queue_t *)&q;
    s_sweep();
    ck_assert_jobq_err(jobq_queue_open(s_url("absent"), NULL, &q), JOBQ_ENOTFOUND);
    ck_assert_ptr_null(q);
    ck_assert_jobq_err(jobq_queue_unlink(s_url("absent")), JOBQ_ENOTFOUND);
}
END_TEST

START_TEST(test_create_excl_refuses_an_existing_queue)
{
    jobq_queue_t *q = s_new("excl", 0), *q2 = NULL;
    jobq_queue_opts_t o = {.flags = JOBQ_QUEUE_CREATE | JOBQ_QUEUE_EXCL};
    ck_assert_jobq_err(jobq_queue_open(s_url("excl"), &o, &q2), JOBQ_EDUPLICATE);
    ck_assert_ptr_null(q2);
    o.flags = JOBQ_QUEUE_CREATE; /* without EXCL: attach to it */
    ck_assert_jobq_ok(jobq_queue_open(s_url("excl"), &o, &q2));
    s_put_str(q, "shared");
    jobq_item_t it;
    s_get_str(q2, "shared", &it);
    jobq_item_fini(&it);
    jobq_queue_destroy(&q2);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_unlink_removes_the_queue_but_handles_keep_working)
{
    jobq_queue_t *q = s_new("unlink", 0), *q2 = NULL;
    jobq_item_t it;
    mqq_names_t n;
    char path[300];
    mqq_names(strchr(s_url("unlink"), '/') + 2, &n);
    snprintf(path, sizeof path, "/dev/shm%s", n.seg);
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_jobq_ok(jobq_queue_unlink(s_url("unlink")));
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert(mq_open(n.jobs, O_RDONLY) == (mqd_t)-1 && errno == ENOENT);
    ck_assert(mq_open(n.results, O_RDONLY) == (mqd_t)-1 && errno == ENOENT);
    ck_assert_jobq_err(jobq_queue_open(s_url("unlink"), NULL, &q2), JOBQ_ENOTFOUND);
    ck_assert_jobq_err(jobq_queue_unlink(s_url("unlink")), JOBQ_ENOTFOUND);
    s_put_str(q, "still");
    s_get_str(q, "still", &it);
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

/* Writes a bogus state segment under tag's name. */
static void
s_plant_segment(const char *tag, size_t size, unsigned char fill)
{
    mqq_names_t n;
    mqq_names(strchr(s_url(tag), '/') + 2, &n);
    int fd = shm_open(n.seg, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    unsigned char buf[4096];
    memset(buf, fill, sizeof buf);
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    for (size_t off = 0; off < size && off < 8192; off += sizeof buf)
        ck_assert_int_eq(pwrite(fd, buf, sizeof buf, (off_t)off), (ssize_t)sizeof buf);
    close(fd);
}

/* Attach without CREATE must refuse tag's objects; CREATE must replace them. */
static void
s_expect_replaced(const char *tag)
{
    jobq_queue_t *q = NULL;
    jobq_queue_opts_t o = {.flags = JOBQ_QUEUE_CREATE};
    jobq_item_t it;
    ck_assert_jobq_err(jobq_queue_open(s_url(tag), NULL, &q), JOBQ_ECORRUPT);
    ck_assert_ptr_null(q);
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_ok(jobq_queue_open(s_url(tag), &o, &q));
    ck_assert_int_lt(jobq_now_ms() - t0, 3000);
    for (int i = 0; i < 10; i++) /* full capacity again */
        s_put_str(q, "r");
    s_get_str(q, "r", &it);
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}

START_TEST(test_stale_segment_with_bad_magic_is_replaced)
{
    s_sweep();
    s_plant_segment("stale", 4096, 0xa5);
    s_expect_replaced("stale");
}
END_TEST

START_TEST(test_segment_whose_creator_died_before_publishing_is_replaced)
{
    s_sweep();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_queue_t *c = NULL;
        jobq_queue_opts_t o = {.flags = JOBQ_QUEUE_CREATE};
        setenv("JOBQ_FAULT", "mqq.create.init", 1);
        jobq_queue_open(s_url("half"), &o, &c);
        _exit(0); /* not reached: the fault point kills us */
    }
    ck_assert_int_eq(s_wait_child(pid), 128 + SIGKILL);
    s_expect_replaced("half");
}
END_TEST

START_TEST(test_mq_with_other_attributes_is_replaced)
{
    jobq_queue_t *q = s_new("attrs", 0);
    jobq_queue_destroy(&q);
    mqq_names_t n;
    mqq_names(strchr(s_url("attrs"), '/') + 2, &n);
    ck_assert_int_eq(mq_unlink(n.jobs), 0);
    struct mq_attr a = {.mq_maxmsg = 5, .mq_msgsize = 64};
    mqd_t d = mq_open(n.jobs, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    ck_assert(d != (mqd_t)-1);
    mq_close(d);
    s_expect_replaced("attrs");
}
END_TEST

START_TEST(test_missing_results_mq_is_replaced)
{
    jobq_queue_t *q = s_new("nores", 0);
    jobq_queue_destroy(&q);
    mqq_names_t n;
    mqq_names(strchr(s_url("nores"), '/') + 2, &n);
    ck_assert_int_eq(mq_unlink(n.results), 0);
    s_expect_replaced("nores");
}
END_TEST

START_TEST(test_objects_are_private_even_under_umask_0)
{
    mode_t old = umask(0);
    jobq_queue_t *q = s_new("perm", 0);
    umask(old);
    mqq_names_t n;
    char path[300];
    struct stat st;
    mqq_names(strchr(s_url("perm"), '/') + 2, &n);
    snprintf(path, sizeof path, "/dev/shm%s", n.seg);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    mqd_t d = mq_open(n.jobs, O_RDONLY);
    ck_assert(d != (mqd_t)-1);
    ck_assert_int_eq(fstat((int)d, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0077, 0);
    mq_close(d);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_put_refuses_invalid_jobs)
{
    jobq_queue_t *q = s_new("valid", 0);
    jobq_job_t job;
    jobq_job_init(&job);
    job.max_attempts = 0;
    ck_assert_jobq_err(jobq_queue_put(q, &job, 0), JOBQ_EINVAL);
    jobq_job_init(&job);
    job.payload_len = 5; /* with a NULL payload */
    ck_assert_jobq_err(jobq_queue_put(q, &job, 0), JOBQ_EINVAL);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    jobq_job_init(&job); /* an empty payload is fine */
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 0));
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    ck_assert_uint_eq(it.payload_len, 0);
    ck_assert_ptr_null(it.payload);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_put_waits_for_room_made_by_another_process)
{
    jobq_queue_t *q = s_new("block", 0);
    for (int i = 0; i < 10; i++)
        s_put_str(q, "b");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_item_t it;
        usleep(200 * 1000);
        _exit(jobq_queue_get(q, &it, 0) == JOBQ_OK ? 0 : 1);
    }
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_ok(jobq_queue_put_bytes(q, "late", 4, NULL, 5000));
    int64_t took = jobq_now_ms() - t0;
    ck_assert_int_ge(took, 150);
    ck_assert_int_lt(took, 2000);
    ck_assert_int_eq(s_wait_child(pid), 0);
    jobq_queue_destroy(&q);
}
END_TEST

#define THR_ITEMS 2000

static jobq_queue_t *s_thr_q;
static _Atomic uint32_t s_thr_seen[THR_ITEMS];

static void *
s_thr_consumer(void *arg)
{
    (void)arg;
    for (;;) {
        jobq_item_t it;
        uint32_t idx;
        if (jobq_queue_get(s_thr_q, &it, 10000) != JOBQ_OK)
            return (void *)1;
        int stop = it.sentinel;
        if (!stop && it.payload_len == sizeof idx) {
            memcpy(&idx, it.payload, sizeof idx);
            if (idx < THR_ITEMS)
                atomic_fetch_add(&s_thr_seen[idx], 1);
        }
        int rc = jobq_queue_task_done(s_thr_q, &it);
        jobq_item_fini(&it);
        if (rc != JOBQ_OK)
            return (void *)2;
        if (stop)
            return NULL;
    }
}

START_TEST(test_threads_of_one_process_share_a_handle)
{
    pthread_t t[2];
    void *ret;
    s_thr_q = s_new("thr", 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, s_thr_consumer, NULL), 0);
    for (uint32_t i = 0; i < THR_ITEMS; i++)
        ck_assert_jobq_ok(jobq_queue_put_bytes(s_thr_q, &i, sizeof i, NULL, 10000));
    ck_assert_jobq_ok(jobq_queue_put_sentinel(s_thr_q, 10000));
    ck_assert_jobq_ok(jobq_queue_put_sentinel(s_thr_q, 10000));
    ck_assert_jobq_ok(jobq_queue_join(s_thr_q, 10000));
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_join(t[i], &ret), 0);
        ck_assert_ptr_null(ret);
    }
    for (uint32_t i = 0; i < THR_ITEMS; i++)
        ck_assert_uint_eq(s_thr_seen[i], 1);
    jobq_queue_destroy(&s_thr_q);
}
END_TEST

#define MANY_ITEMS 10000
#define MANY_CONSUMERS 4

START_TEST(test_four_consumers_take_each_of_10000_items_exactly_once)
{
    jobq_queue_t *q = s_new("many", 0);
    _Atomic uint32_t *seen = mmap(NULL, MANY_ITEMS * sizeof *seen, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(seen != MAP_FAILED);
    pid_t kids[MANY_CONSUMERS];
    for (int k = 0; k < MANY_CONSUMERS; k++) {
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0) {
            jobq_queue_t *c = NULL;
            if (jobq_queue_open(s_url("many"), NULL, &c) != JOBQ_OK)
                _exit(1);
            for (;;) {
                jobq_item_t it;
                uint32_t idx;
                if (jobq_queue_get(c, &it, 20000) != JOBQ_OK)
                    _exit(2);
                int stop = it.sentinel;
                if (!stop) {
                    if (it.payload_len != sizeof idx)
                        _exit(3);
                    memcpy(&idx, it.payload, sizeof idx);
                    if (idx >= MANY_ITEMS)
                        _exit(4);
                    atomic_fetch_add(&seen[idx], 1);
                }
                if (jobq_queue_task_done(c, &it) != JOBQ_OK)
                    _exit(5);
                jobq_item_fini(&it);
                if (stop)
                    break;
            }
            jobq_queue_destroy(&c);
            _exit(0);
        }
    }
    for (uint32_t i = 0; i < MANY_ITEMS; i++)
        ck_assert_jobq_ok(jobq_queue_put_bytes(q, &i, sizeof i, NULL, 20000));
    for (int k = 0; k < MANY_CONSUMERS; k++)
        ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 20000));
    ck_assert_jobq_ok(jobq_queue_join(q, 20000));
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    for (int k = 0; k < MANY_CONSUMERS; k++)
        ck_assert_int_eq(s_wait_child(kids[k]), 0);
    for (uint32_t i = 0; i < MANY_ITEMS; i++)
        ck_assert_msg(seen[i] == 1, "item %u seen %u times", i, (unsigned)seen[i]);
    munmap(seen, MANY_ITEMS * sizeof *seen);
    jobq_queue_destroy(&q);
}
END_TEST

int
main(void)
{
    s_runner = getpid();
    jobq_log_set(jobq_log_stderr, NULL, JOBQ_LOG_WARN); /* failures explain themselves */
    Suite *s = suite_create("mqq");
    TCase *tc = tcase_create("mqq");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_items_come_out_in_put_order);
    tcase_add_test(tc, test_get_on_empty_queue_gives_eempty_or_times_out);
    tcase_add_test(tc, test_put_on_full_queue_gives_efull_or_times_out);
    tcase_add_test(tc, test_capacity_is_clamped_to_the_mq_depth);
    tcase_add_test(tc, test_size_empty_and_unfinished_follow_the_items);
    tcase_add_test(tc, test_payload_at_the_limit_travels_intact);
    tcase_add_test(tc, test_payload_one_byte_over_the_limit_is_etoobig);
    tcase_add_test(tc, test_task_done_too_many_times_is_estate);
    tcase_add_test(tc, test_join_times_out_while_items_are_unfinished);
    tcase_add_test(tc, test_join_returns_when_another_process_finishes);
    tcase_add_test(tc, test_close_refuses_puts_then_getters_drain_then_eclosed);
    tcase_add_test(tc, test_getter_blocked_forever_sees_close);
    tcase_add_test(tc, test_closed_queue_waits_for_items_another_process_holds);
    tcase_add_test(tc, test_sentinel_is_flagged_and_counted);
    tcase_add_test(tc, test_results_round_trip_and_respect_the_limit);
    tcase_add_test(tc, test_second_process_attaches_and_shares_items);
    tcase_add_test(tc, test_open_without_create_of_missing_queue_is_enotfound);
    tcase_add_test(tc, test_create_excl_refuses_an_existing_queue);
    tcase_add_test(tc, test_unlink_removes_the_queue_but_handles_keep_working);
    tcase_add_test(tc, test_stale_segment_with_bad_magic_is_replaced);
    tcase_add_test(tc, test_segment_whose_creator_died_before_publishing_is_replaced);
    tcase_add_test(tc, test_mq_with_other_attributes_is_replaced);
    tcase_add_test(tc, test_missing_results_mq_is_replaced);
    tcase_add_test(tc, test_objects_are_private_even_under_umask_0);
    tcase_add_test(tc, test_put_refuses_invalid_jobs);
    tcase_add_test(tc, test_put_waits_for_room_made_by_another_process);
    tcase_add_test(tc, test_threads_of_one_process_share_a_handle);
    tcase_add_test(tc, test_four_consumers_take_each_of_10000_items_exactly_once);
    suite_add_tcase(s, tc);
    int rc = jobq_test_run(s);
    s_sweep();
    return rc;
}
