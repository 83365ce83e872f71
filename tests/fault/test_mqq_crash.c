/*
 * tests/fault/test_mqq_crash.c: the mq:// queue survives processes SIGKILLed at the
 * worst moments: between get and task_done, right after mq_receive (fault point
 * mqq.get.received), while blocked in get, put or join, and inside a reclaim pass.
 * Nothing is lost, join() never stalls, and reclaim() after waitpid() turns an item
 * whose attempts are used up into a CRASHED result that carries the signal.
 *
 * Queues are named tmqc-<runner pid>-<tag>; main() unlinks them all at the end.
 */
#include "jobq/log.h"
#include "jobq/queue.h"
#include "common/clock.h"
#include "jobq_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t s_runner;
static char s_urlbuf[128];

static const char *const s_tags[] = {"held",  "held2", "recv",  "recv3", "cycle",
                                     "crash", "putk",  "reclk", "sent"};

static const char *
s_url(const char *tag)
{
    snprintf(s_urlbuf, sizeof s_urlbuf, "mq://tmqc-%d-%s", (int)s_runner, tag);
    return s_urlbuf;
}

/* Unlinks every queue of this run (POSIX mq memory per uid is small). */
static void
s_sweep(void)
{
    for (size_t i = 0; i < sizeof s_tags / sizeof s_tags[0]; i++)
        jobq_queue_unlink(s_url(s_tags[i]));
}

static jobq_queue_t *
s_new(const char *tag)
{
    jobq_queue_t *q = NULL;
    jobq_queue_opts_t o = {.flags = JOBQ_QUEUE_CREATE};
    s_sweep();
    ck_assert_jobq_ok(jobq_queue_open(s_url(tag), &o, &q));
    return q;
}

/* Puts payload text with max_attempts tries; returns its id. */
static jobq_id_t
s_put(jobq_queue_t *q, const char *text, uint32_t max_attempts)
{
    jobq_job_t job;
    jobq_job_init(&job);
    job.payload = text;
    job.payload_len = (uint32_t)strlen(text);
    job.max_attempts = max_attempts;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 1000));
    return job.id;
}

/* Waits for pid and returns the signal that killed it (0 if it exited). */
static int
s_reap(pid_t pid)
{
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

/* Forks a consumer that opens tag, gets one item, reports on a pipe and sleeps until
 * killed. Returns its pid once it holds the item. */
static pid_t
s_holder(const char *tag)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_queue_t *c = NULL;
        jobq_item_t it;
        close(fds[0]);
        if (jobq_queue_open(s_url(tag), NULL, &c) || jobq_queue_get(c, &it, 2000))
            _exit(1);
        if (write(fds[1], "h", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    close(fds[1]);
    char c;
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    close(fds[0]);
    return pid;
}

START_TEST(test_item_of_consumer_killed_before_task_done_comes_back_with_attempt_2)
{
    jobq_queue_t *q = s_new("held");
    jobq_id_t id = s_put(q, "job-a", 3);
    pid_t pid = s_holder("held");
    kill(pid, SIGKILL);
    ck_assert_int_eq(s_reap(pid), SIGKILL);
    /* No explicit reclaim: the waiting getter finds the dead holder by itself. */
    jobq_item_t it;
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 3000));
    ck_assert_int_lt(jobq_now_ms() - t0, 1500);
    ck_assert(memcmp(&it.id, &id, sizeof id) == 0);
    ck_assert_uint_eq(it.attempt, 2);
    ck_assert_uint_eq(it.payload_len, 5);
    ck_assert(memcmp(it.payload, "job-a", 5) == 0);
    ck_assert_jobq_err(jobq_queue_join(q, 0), JOBQ_ETIMEDOUT);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    ck_assert_jobq_ok(jobq_queue_join(q, 1000));
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_join_returns_after_a_live_consumer_redoes_a_dead_ones_item)
{
    jobq_queue_t *q = s_new("held2");
    for (int i = 0; i < 10; i++)
        s_put(q, "w", 2);
    pid_t dead = s_holder("held2");
    pid_t live = fork();
    ck_assert_int_ge(live, 0);
    if (live == 0) { /* takes everything until the queue stays empty for a second */
        jobq_queue_t *c = NULL;
        jobq_item_t it;
        int n = 0;
        if (jobq_queue_open(s_url("held2"), NULL, &c))
            _exit(1);
        while (jobq_queue_get(c, &it, 1000) == JOBQ_OK) {
            n++;
            if (jobq_queue_task_done(c, &it))
                _exit(2);
            jobq_item_fini(&it);
        }
        _exit(n == 10 ? 0 : 3);
    }
    usleep(50 * 1000);
    kill(dead, SIGKILL);
    ck_assert_int_eq(s_reap(dead), SIGKILL);
    int64_t t0 = jobq_now_ms();
    ck_assert_jobq_ok(jobq_queue_join(q, 5000));
    ck_assert_int_lt(jobq_now_ms() - t0, 2000);
    ck_assert_int_eq(s_reap(live), 0);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_consumer_killed_right_after_mq_receive_loses_nothing)
{
    jobq_queue_t *q = s_new("recv");
    jobq_id_t id = s_put(q, "fragile", 1);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_queue_t *c = NULL;
        jobq_item_t it;
        setenv("JOBQ_FAULT", "mqq.get.received", 1);
        if (jobq_queue_open(s_url("recv"), NULL, &c) == JOBQ_OK)
            jobq_queue_get(c, &it, 2000);
        _exit(0); /* not reached: killed inside get */
    }
    ck_assert_int_eq(s_reap(pid), SIGKILL);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 1);
    ck_assert_int_eq(jobq_queue_reclaim(q, pid, SIGKILL), 1);
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    ck_assert(memcmp(&it.id, &id, sizeof id) == 0);
    ck_assert_uint_eq(it.attempt, 1); /* never handed to the dead process's caller */
    ck_assert(it.payload_len == 7 && memcmp(it.payload, "fragile", 7) == 0);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_consumer_killed_at_its_third_receive_loses_nothing)
{
    jobq_queue_t *q = s_new("recv3");
    char txt[8];
    for (int i = 0; i < 6; i++) {
        snprintf(txt, sizeof txt, "r%d", i);
        s_put(q, txt, 1);
    }
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_queue_t *c = NULL;
        jobq_item_t it;
        setenv("JOBQ_FAULT", "mqq.get.received:3", 1);
        if (jobq_queue_open(s_url("recv3"), NULL, &c))
            _exit(1);
        while (jobq_queue_get(c, &it, 2000) == JOBQ_OK) {
            jobq_queue_task_done(c, &it);
            jobq_item_fini(&it);
        }
        _exit(0);
    }
    ck_assert_int_eq(s_reap(pid), SIGKILL);
    /* The child finished r0 and r1; r2 was in its slot; r3..r5 are still queued. */
    ck_assert_uint_eq(jobq_queue_unfinished(q), 4);
    int seen[6] = {0};
    jobq_item_t it;
    while (jobq_queue_unfinished(q) > 0) {
        ck_assert_jobq_ok(jobq_queue_get(q, &it, 2000)); /* lazy reclaim finds r2 */
        ck_assert_uint_eq(it.payload_len, 2);
        seen[((const char *)it.payload)[1] - '0']++;
        ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
        jobq_item_fini(&it);
    }
    for (int i = 2; i < 6; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_int_eq(seen[0] + seen[1], 0);
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_queue_destroy(&q);
}
END_TEST

/* A consumer that loops get/work/task_done forever, or a process blocked in join. */
static pid_t
s_spawn(const char *tag, int joiner)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid != 0)
        return pid;
    jobq_queue_t *c = NULL;
    jobq_item_t it;
    if (jobq_queue_open(s_url(tag), NULL, &c))
        _exit(1);
    if (joiner)
        _exit(jobq_queue_join(c, -1) == JOBQ_OK ? 0 : 2);
    for (;;) {
        if (jobq_queue_get(c, &it, -1) != JOBQ_OK)
            _exit(3);
        usleep(3000); /* "work": the kill may land while it holds the item */
        jobq_queue_task_done(c, &it);
        jobq_item_fini(&it);
    }
}

START_TEST(test_waiters_killed_in_get_and_join_never_stall_the_rest)
{
    jobq_queue_t *q = s_new("cycle");
    unsigned seed = (unsigned)getpid();
    for (int cycle = 0; cycle < 60; cycle++) {
        /* Some cycles kill the consumer while it idles in get, others while items flow. */
        int items = cycle % 3 == 0 ? 0 : 1 + (int)(rand_r(&seed) % 4);
        pid_t getter = s_spawn("cycle", 0);
        for (int i = 0; i < items; i++)
            s_put(q, "c", 100);
        pid_t joiner = s_spawn("cycle", 1);
        usleep((useconds_t)(rand_r(&seed) % 20000));
        kill(getter, SIGKILL);
        kill(joiner, SIGKILL);
        s_reap(getter);
        s_reap(joiner);
        /* What the dead left behind must be takeable without a stall. */
        jobq_item_t it;
        while (jobq_queue_unfinished(q) > 0) {
            int64_t t0 = jobq_now_ms();
            ck_assert_jobq_ok(jobq_queue_get(q, &it, 2000));
            ck_assert_int_lt(jobq_now_ms() - t0, 1000);
            ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
            jobq_item_fini(&it);
        }
        int64_t t0 = jobq_now_ms();
        ck_assert_jobq_ok(jobq_queue_join(q, 2000));
        ck_assert_jobq_err(jobq_queue_get(q, &it, 0), JOBQ_EEMPTY);
        ck_assert_uint_eq(jobq_queue_size(q), 0);
        ck_assert_int_lt(jobq_now_ms() - t0, 500);
    }
    /* The queue still works normally after all that. */
    for (int i = 0; i < 300; i++) {
        jobq_item_t it;
        s_put(q, "z", 1);
        ck_assert_jobq_ok(jobq_queue_get(q, &it, 1000));
        ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
        jobq_item_fini(&it);
    }
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_reclaim_after_waitpid_reports_crashed_with_the_signal)
{
    jobq_queue_t *q = s_new("crash");
    jobq_id_t id = s_put(q, "last-try", 1);
    pid_t pid = s_holder("crash");
    kill(pid, SIGKILL);
    ck_assert_int_eq(s_reap(pid), SIGKILL);
    ck_assert_int_eq(jobq_queue_reclaim(q, pid, SIGKILL), 1);
    ck_assert_int_eq(jobq_queue_reclaim(q, pid, SIGKILL), 0); /* nothing twice */
    jobq_result_t r;
    ck_assert_jobq_ok(jobq_queue_get_result(q, &r, 1000));
    ck_assert(memcmp(&r.id, &id, sizeof id) == 0);
    ck_assert_int_eq(r.status, JOBQ_STATUS_CRASHED);
    ck_assert_int_eq(r.signal, SIGKILL);
    ck_assert_uint_eq(r.attempt, 1);
    ck_assert_uint_gt(r.error_len, 0);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_item_t it;
    ck_assert_jobq_err(jobq_queue_get(q, &it, 0), JOBQ_EEMPTY);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_producer_killed_while_blocked_in_put_leaves_no_count)
{
    jobq_queue_t *q = s_new("putk");
    for (int i = 0; i < 10; i++)
        s_put(q, "f", 1);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_queue_t *c = NULL;
        if (jobq_queue_open(s_url("putk"), NULL, &c) == JOBQ_OK)
            jobq_queue_put_bytes(c, "blocked", 7, NULL, -1);
        _exit(1);
    }
    usleep(150 * 1000);
    kill(pid, SIGKILL);
    ck_assert_int_eq(s_reap(pid), SIGKILL);
    ck_assert_uint_eq(jobq_queue_unfinished(q), 10);
    jobq_item_t it;
    for (int i = 0; i < 10; i++) {
        ck_assert_jobq_ok(jobq_queue_get(q, &it, 1000));
        ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
        jobq_item_fini(&it);
    }
    ck_assert_jobq_ok(jobq_queue_join(q, 1000));
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_process_killed_inside_reclaim_is_repaired_by_the_next)
{
    jobq_queue_t *q = s_new("reclk");
    jobq_id_t id = s_put(q, "twice", 3);
    pid_t holder = s_holder("reclk");
    kill(holder, SIGKILL);
    ck_assert_int_eq(s_reap(holder), SIGKILL);
    pid_t rec = fork();
    ck_assert_int_ge(rec, 0);
    if (rec == 0) {
        jobq_queue_t *c = NULL;
        setenv("JOBQ_FAULT", "mqq.reclaim.locked", 1);
        if (jobq_queue_open(s_url("reclk"), NULL, &c) == JOBQ_OK)
            jobq_queue_reclaim(c, holder, SIGKILL);
        _exit(0);
    }
    ck_assert_int_eq(s_reap(rec), SIGKILL); /* died holding the mutex */
    ck_assert_int_eq(jobq_queue_reclaim(q, holder, SIGKILL), 1);
    jobq_item_t it;
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
    ck_assert(memcmp(&it.id, &id, sizeof id) == 0);
    ck_assert_uint_eq(it.attempt, 2);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_item_fini(&it);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_sentinel_held_by_a_dead_consumer_counts_as_consumed)
{
    jobq_queue_t *q = s_new("sent");
    ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 0));
    pid_t pid = s_holder("sent");
    kill(pid, SIGKILL);
    ck_assert_int_eq(s_reap(pid), SIGKILL);
    ck_assert_int_eq(jobq_queue_reclaim(q, pid, SIGKILL), 1);
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_item_t it;
    ck_assert_jobq_err(jobq_queue_get(q, &it, 0), JOBQ_EEMPTY);
    jobq_result_t r;
    ck_assert_jobq_err(jobq_queue_get_result(q, &r, 0), JOBQ_EEMPTY);
    jobq_queue_destroy(&q);
}
END_TEST

int
main(void)
{
    s_runner = getpid();
    jobq_log_set(jobq_log_stderr, NULL, JOBQ_LOG_WARN); /* failures explain themselves */
    Suite *s = suite_create("mqq_crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_item_of_consumer_killed_before_task_done_comes_back_with_attempt_2);
    tcase_add_test(tc, test_join_returns_after_a_live_consumer_redoes_a_dead_ones_item);
    tcase_add_test(tc, test_consumer_killed_right_after_mq_receive_loses_nothing);
    tcase_add_test(tc, test_consumer_killed_at_its_third_receive_loses_nothing);
    tcase_add_test(tc, test_waiters_killed_in_get_and_join_never_stall_the_rest);
    tcase_add_test(tc, test_reclaim_after_waitpid_reports_crashed_with_the_signal);
    tcase_add_test(tc, test_producer_killed_while_blocked_in_put_leaves_no_count);
    tcase_add_test(tc, test_process_killed_inside_reclaim_is_repaired_by_the_next);
    tcase_add_test(tc, test_sentinel_held_by_a_dead_consumer_counts_as_consumed);
    suite_add_tcase(s, tc);
    int rc = jobq_test_run(s);
    s_sweep();
    return rc;
}
