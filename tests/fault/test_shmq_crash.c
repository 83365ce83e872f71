/*
 * tests/fault/test_shmq_crash.c: the shm:// queue when processes die at the
 * worst moments (RELIABILITY.md §3.6): a consumer killed between get and
 * task_done, a SIGKILL inside every critical section through the JOBQ_FAULT
 * points, sleepers killed while they wait, a producer killed inside put,
 * reclaim after waitpid, an unrecoverable queue, a creator killed half-way,
 * and a ledger run with consumers killed at random.
 *
 * Children report through exit codes (never check asserts); every child is
 * reaped, and killed by recorded pid only.
 */
#include "common/shmq.h"
#include "jobq/queue.h"
#include "jobq_test.h"

#include <dirent.h>
#include <errno.h>
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

static void
s_fresh_name(const char *tag)
{
    static int n;
    snprintf(s_name, sizeof s_name, "f-%s-%d-%d", tag, (int)getpid(), n++);
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
s_named(const char *tag, uint32_t max_items, uint64_t max_bytes)
{
    jobq_queue_opts_t o = {JOBQ_QUEUE_CREATE | JOBQ_QUEUE_EXCL, max_items, max_bytes, 0};
    jobq_queue_t *q = NULL;
    s_fresh_name(tag);
    ck_assert_jobq_ok(jobq_queue_open(s_url, &o, &q));
    return q;
}

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
        usleep(1000);
    }
}

static void
s_expect_killed(pid_t pid)
{
    int st = s_reap(pid, 10000);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "child was meant to die by SIGKILL at its fault point: status 0x%x", st);
}

static void
s_expect_exit0(pid_t pid, int64_t timeout_ms)
{
    int st = s_reap(pid, timeout_ms);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: status 0x%x", st);
}

static void
s_check_invariants(void)
{
    char why[200] = "";
    int rc = shmq_debug_check(s_name, why, sizeof why, NULL);
    ck_assert_msg(rc == JOBQ_OK, "invariants: %s (%s)", jobq_errname(rc), why);
}

static void
s_put_u32(jobq_queue_t *q, uint32_t v, uint32_t max_attempts)
{
    jobq_job_t job;
    jobq_job_init(&job);
    job.payload = &v;
    job.payload_len = sizeof v;
    job.max_attempts = max_attempts;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 1000));
}

/* Runs fn in a child that arms fault point `fault` first; returns its pid. */
static pid_t
s_spawn_faulty(const char *fault, void (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (fault)
            setenv("JOBQ_FAULT", fault, 1);
        fn(arg);
        _exit(0);
    }
    return pid;
}

/* Drains q (attach by name) with get + task_done, counting the 4-byte values
 * seen in counts[] (indexed by value, n entries). Returns the items drained. */
static int
s_drain(jobq_queue_t *q, int *counts, uint32_t n)
{
    int got = 0;
    jobq_item_t it;
    while (jobq_queue_get(q, &it, 300) == JOBQ_OK) {
        if (!it.sentinel && it.payload_len == 4) {
            uint32_t v;
            memcpy(&v, it.payload, 4);
            ck_assert_uint_lt(v, n);
            counts[v]++;
        }
        ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
        jobq_item_fini(&it);
        got++;
    }
    return got;
}

/* ---- a consumer dies between get and task_done ----------------------------- */

static void
s_get_and_die(void *arg)
{
    jobq_queue_t *q = arg;
    jobq_item_t it;
    if (jobq_queue_get(q, &it, 2000) == JOBQ_OK)
        raise(SIGKILL);
    _exit(1);
}

START_TEST(test_killed_consumer_item_runs_again_and_join_returns)
{
    jobq_queue_t *q = s_named("redo", 0, 0);
    s_put_u32(q, 41, 2);
    pid_t pid = s_spawn_faulty(NULL, s_get_and_die, q);
    s_expect_killed(pid);
    /* With nobody alive to run it, join times out. */
    ck_assert_jobq_err(jobq_queue_join(q, 500), JOBQ_ETIMEDOUT);
    jobq_item_t it;
    int64_t t0 = s_now_ms();
    ck_assert_jobq_ok(jobq_queue_get(q, &it, 2000));
    ck_assert_uint_eq(it.attempt, 2);
    ck_assert_uint_eq(*(uint32_t *)it.payload, 41);
    ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
    jobq_item_fini(&it);
    ck_assert_jobq_ok(jobq_queue_join(q, 2000));
    ck_assert_int_lt(s_now_ms() - t0, 2000);
    s_check_invariants();
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

START_TEST(test_join_returns_while_a_consumer_is_killed_midjob)
{
    /* 10 items; A dies holding one; B (alive) finishes everything, A's item too. */
    jobq_queue_t *q = s_named("join", 0, 0);
    for (uint32_t i = 0; i < 10; i++)
        s_put_u32(q, i, 3);
    pid_t a = s_spawn_faulty(NULL, s_get_and_die, q);
    s_expect_killed(a);
    int counts[10] = {0};
    pid_t b = fork();
    if (b == 0) {
        jobq_queue_t *c = NULL;
        jobq_item_t it;
        if (jobq_queue_open(s_url, NULL, &c) != JOBQ_OK)
            _exit(1);
        while (jobq_queue_get(c, &it, 3000) == JOBQ_OK) {
            jobq_queue_task_done(c, &it);
            int last = it.sentinel;
            jobq_item_fini(&it);
            if (last)
                _exit(0);
        }
        _exit(2);
    }
    int64_t t0 = s_now_ms();
    ck_assert_jobq_ok(jobq_queue_join(q, 5000));
    ck_assert_int_lt(s_now_ms() - t0, 2000);
    ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 0));
    s_expect_exit0(b, 5000);
    ck_assert_int_eq(s_drain(q, counts, 10), 0);
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

START_TEST(test_reclaim_after_waitpid_reports_crashed_with_signal)
{
    jobq_queue_t *q = s_named("crashed", 0, 0);
    jobq_job_t job;
    uint32_t v = 77;
    jobq_job_init(&job); /* max_attempts 1: no retry */
    job.payload = &v;
    job.payload_len = 4;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 0));
    pid_t pid = s_spawn_faulty(NULL, s_get_and_die, q);
    int st = s_reap(pid, 10000);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(jobq_queue_reclaim(q, pid, WTERMSIG(st)), 1);
    ck_assert_int_eq(jobq_queue_reclaim(q, pid, WTERMSIG(st)), 0); /* nothing left */
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_result_t r;
    ck_assert_jobq_ok(jobq_queue_get_result(q, &r, 0));
    ck_assert_int_eq(r.status, JOBQ_STATUS_CRASHED);
    ck_assert_int_eq(r.signal, SIGKILL);
    ck_assert_uint_eq(r.attempt, 1);
    ck_assert_int_eq(memcmp(&r.id, &job.id, sizeof job.id), 0);
    ck_assert_uint_gt(r.error_len, 0);
    jobq_item_t it;
    ck_assert_jobq_err(jobq_queue_get(q, &it, 0), JOBQ_EEMPTY);
    s_check_invariants();
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

START_TEST(test_lazy_sweep_finishes_exhausted_item_so_join_returns)
{
    /* No supervisor calls reclaim: a waiter in join() finds the dead holder. */
    jobq_queue_t *q = s_named("lazy", 0, 0);
    s_put_u32(q, 5, 1);
    pid_t pid = s_spawn_faulty(NULL, s_get_and_die, q);
    s_expect_killed(pid);
    ck_assert_jobq_ok(jobq_queue_join(q, 2000));
    jobq_result_t r;
    ck_assert_jobq_ok(jobq_queue_get_result(q, &r, 0));
    ck_assert_int_eq(r.status, JOBQ_STATUS_CRASHED);
    ck_assert_int_eq(r.signal, 0); /* not known to the sweeper */
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

/* ---- SIGKILL inside each critical section ------------------------------------ */

typedef struct s_ctx {
    jobq_queue_t *q;
    pid_t victim; /* for reclaim */
} s_ctx_t;

static void
s_op_put(void *arg)
{
    s_ctx_t *c = arg;
    uint32_t v = 100;
    jobq_queue_put_bytes(c->q, &v, sizeof v, NULL, 1000);
}

static void
s_op_put_big(void *arg)
{
    s_ctx_t *c = arg;
    static char big[5000];
    memset(big, 'z', sizeof big);
    jobq_queue_put_bytes(c->q, big, sizeof big, NULL, 1000);
}

static void
s_op_get(void *arg)
{
    s_ctx_t *c = arg;
    jobq_item_t it;
    jobq_queue_get(c->q, &it, 1000);
}

static void
s_op_get_done(void *arg)
{
    s_ctx_t *c = arg;
    jobq_item_t it;
    if (jobq_queue_get(c->q, &it, 1000) == JOBQ_OK)
        jobq_queue_task_done(c->q, &it);
}

static void
s_op_reclaim(void *arg)
{
    s_ctx_t *c = arg;
    jobq_queue_reclaim(c->q, c->victim, SIGKILL);
}

static void
s_op_put_result(void *arg)
{
    s_ctx_t *c = arg;
    jobq_result_t r;
    jobq_result_init(&r);
    r.output = "out";
    r.output_len = 3;
    jobq_queue_put_result(c->q, &r, 1000);
}

static void
s_op_get_result(void *arg)
{
    s_ctx_t *c = arg;
    jobq_result_t r;
    jobq_queue_get_result(c->q, &r, 1000);
}

static void
s_op_size(void *arg)
{
    s_ctx_t *c = arg;
    (void)jobq_queue_size(c->q);
}

/* One fault point: 10 items (values 0-9, 3 attempts each) and 2 results are in
 * the queue; a child runs op with the fault armed and must die by SIGKILL.
 * Then: the invariants hold, a call in this process does not stall, and
 * draining yields every item 0-9 at least once and nothing else but the
 * child's own item 100 (its put never returned). */
static void
s_fault_case(const char *fault, void (*op)(void *), int prepare_victim)
{
    jobq_queue_t *q = s_named("cs", 64, 1u << 20);
    s_ctx_t ctx = {q, 0};
    jobq_result_t r;
    for (uint32_t i = 0; i < 10; i++)
        s_put_u32(q, i, 3);
    jobq_result_init(&r);
    ck_assert_jobq_ok(jobq_queue_put_result(q, &r, 0));
    ck_assert_jobq_ok(jobq_queue_put_result(q, &r, 0));
    if (prepare_victim) {
        /* A consumer dies holding item 0; the faulty child reclaims it. */
        ctx.victim = s_spawn_faulty(NULL, s_get_and_die, q);
        s_expect_killed(ctx.victim);
    }
    s_expect_killed(s_spawn_faulty(fault, op, &ctx));

    int64_t t0 = s_now_ms();
    ck_assert_uint_ge(jobq_queue_size(q), 8); /* the lock is usable at once */
    ck_assert_int_lt(s_now_ms() - t0, 1000);
    s_check_invariants();
    int counts[101] = {0};
    s_drain(q, counts, 101);
    for (int i = 0; i < 10; i++)
        ck_assert_msg(counts[i] >= 1, "%s: item %d lost", fault, i);
    for (int i = 10; i < 100; i++)
        ck_assert_int_eq(counts[i], 0);
    ck_assert_int_le(counts[100], 1);
    ck_assert_jobq_ok(jobq_queue_join(q, 2000));
    int results = 0;
    while (jobq_queue_get_result(q, &r, 0) == JOBQ_OK)
        results++;
    ck_assert_int_ge(results, 1);
    ck_assert_int_le(results, 3);
    s_check_invariants();
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}

START_TEST(test_kill_in_put_locked_rolls_back)
{
    s_fault_case("shmq.put.locked", s_op_put, 0);
}
END_TEST

START_TEST(test_kill_in_chunked_put_frees_the_reservation)
{
    s_fault_case("shmq.put.reserved", s_op_put_big, 0);
    s_fault_case("shmq.put.locked", s_op_put_big, 0);
}
END_TEST

START_TEST(test_kill_in_get_locked_leaves_item_queued)
{
    s_fault_case("shmq.get.locked", s_op_get, 0);
}
END_TEST

START_TEST(test_kill_after_take_hands_item_back)
{
    s_fault_case("shmq.get.after_take", s_op_get, 0);
}
END_TEST

START_TEST(test_kill_in_task_done_keeps_item_unfinished)
{
    s_fault_case("shmq.task_done.locked", s_op_get_done, 0);
}
END_TEST

START_TEST(test_kill_in_reclaim_keeps_item)
{
    s_fault_case("shmq.reclaim.locked", s_op_reclaim, 1);
}
END_TEST

START_TEST(test_kill_in_result_channel_sections)
{
    s_fault_case("shmq.result.locked", s_op_put_result, 0);
    s_fault_case("shmq.get_result.locked", s_op_get_result, 0);
}
END_TEST

START_TEST(test_kill_during_repair_is_repaired_by_the_next)
{
    /* The first child dies in put; the second dies while repairing after it. */
    jobq_queue_t *q = s_named("repair", 64, 0);
    s_ctx_t ctx = {q, 0};
    for (uint32_t i = 0; i < 10; i++)
        s_put_u32(q, i, 3);
    s_expect_killed(s_spawn_faulty("shmq.put.locked", s_op_put, &ctx));
    s_expect_killed(s_spawn_faulty("shmq.repair", s_op_size, &ctx));
    ck_assert_uint_eq(jobq_queue_size(q), 10);
    s_check_invariants();
    int counts[101] = {0};
    ck_assert_int_eq(s_drain(q, counts, 101), 10);
    ck_assert_jobq_ok(jobq_queue_join(q, 0));
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

START_TEST(test_unrecoverable_queue_fails_fast_with_ecorrupt)
{
    jobq_queue_t *q = s_named("unrec", 64, 0);
    s_ctx_t ctx = {q, 0};
    s_put_u32(q, 1, 1);
    s_expect_killed(s_spawn_faulty("shmq.put.locked", s_op_put, &ctx));
    pid_t pid = fork();
    if (pid == 0) {
        setenv("JOBQ_FAULT", "shmq.repair.refuse", 1);
        _exit(jobq_queue_join(q, 0) == JOBQ_ECORRUPT ? 0 : 1);
    }
    s_expect_exit0(pid, 5000);
    int64_t t0 = s_now_ms();
    jobq_item_t it;
    uint32_t v = 2;
    ck_assert_jobq_err(jobq_queue_get(q, &it, -1), JOBQ_ECORRUPT);
    ck_assert_jobq_err(jobq_queue_put_bytes(q, &v, 4, NULL, -1), JOBQ_ECORRUPT);
    ck_assert_jobq_err(jobq_queue_join(q, -1), JOBQ_ECORRUPT);
    ck_assert_jobq_err(jobq_queue_task_done(q, NULL), JOBQ_ECORRUPT);
    ck_assert_int_lt(s_now_ms() - t0, 1000);
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

START_TEST(test_creator_killed_midway_leaves_no_visible_queue)
{
    s_fresh_name("create");
    pid_t pid = fork();
    if (pid == 0) {
        jobq_queue_opts_t o = {JOBQ_QUEUE_CREATE, 0, 0, 0};
        jobq_queue_t *q = NULL;
        setenv("JOBQ_FAULT", "shmq.create.init", 1);
        jobq_queue_open(s_url, &o, &q);
        _exit(0);
    }
    s_expect_killed(pid);
    jobq_queue_t *q = NULL;
    ck_assert_jobq_err(jobq_queue_open(s_url, NULL, &q), JOBQ_ENOTFOUND);
    jobq_queue_opts_t o = {JOBQ_QUEUE_CREATE, 0, 0, 0};
    ck_assert_jobq_ok(jobq_queue_open(s_url, &o, &q));
    jobq_queue_destroy(&q);
    /* The dead creator's temporary object was cleaned up by the next creator. */
    char obj[256], prefix[300];
    ck_assert_int_eq(shmq_object_name(s_name, obj, sizeof obj), 0);
    snprintf(prefix, sizeof prefix, "%s~tmp~%d~", obj + 1, (int)pid);
    DIR *d = opendir("/dev/shm");
    ck_assert_ptr_nonnull(d);
    int leftover = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        leftover += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    ck_assert_int_eq(leftover, 0);
    ck_assert_jobq_ok(jobq_queue_unlink(s_url));
}
END_TEST

START_TEST(test_producer_killed_inside_put_keeps_queue_consistent)
{
    for (int round = 0; round < 5; round++) {
        jobq_queue_t *q = s_named("prod", 4096, 0);
        char fault[64];
        int n = 50 + round * 97;
        snprintf(fault, sizeof fault, "shmq.put.locked:%d", n);
        pid_t pid = fork();
        if (pid == 0) {
            setenv("JOBQ_FAULT", fault, 1);
            for (uint32_t i = 0; i < 4000; i++) {
                char buf[200];
                memset(buf, (int)i, sizeof buf);
                memcpy(buf, &i, 4);
                /* Alternate inline and chunked records. */
                jobq_queue_put_bytes(q, buf, (i & 1) ? sizeof buf : 4, NULL, 1000);
            }
            _exit(0);
        }
        s_expect_killed(pid);
        s_check_invariants();
        /* Exactly the puts that returned (the first n-1), in order. */
        ck_assert_uint_eq(jobq_queue_size(q), (size_t)(n - 1));
        for (uint32_t i = 0; i < (uint32_t)n - 1; i++) {
            jobq_item_t it;
            uint32_t v;
            ck_assert_jobq_ok(jobq_queue_get(q, &it, 0));
            memcpy(&v, it.payload, 4);
            ck_assert_uint_eq(v, i);
            ck_assert_uint_eq(it.payload_len, (i & 1) ? 200 : 4);
            jobq_queue_task_done(q, &it);
            jobq_item_fini(&it);
        }
        ck_assert_jobq_ok(jobq_queue_join(q, 0));
        s_check_invariants();
        jobq_queue_destroy(&q);
        jobq_queue_unlink(s_url);
    }
}
END_TEST

/* ---- sleepers killed while waiting ------------------------------------------ */

static void
s_sleeper(jobq_queue_t *q, int kind)
{
    jobq_item_t it;
    if (kind == 0)
        jobq_queue_get(q, &it, -1);
    else
        jobq_queue_join(q, -1);
    _exit(0);
}

START_TEST(test_killed_sleepers_never_stall_the_others)
{
    jobq_queue_t *q = s_named("sleep", 64, 0);
    unsigned seed = (unsigned)getpid();
    pid_t live[4] = {0, 0, 0, 0};
    int64_t worst = 0;
    s_put_u32(q, 0, 1000); /* keeps join() sleepers asleep */
    jobq_item_t held;
    ck_assert_jobq_ok(jobq_queue_get(q, &held, 0));
    for (int cycle = 0; cycle < 200; cycle++) {
        int k = cycle % 4;
        if (live[k]) {
            kill(live[k], SIGKILL);
            s_reap(live[k], 5000);
        }
        live[k] = fork();
        if (live[k] == 0)
            s_sleeper(q, k & 1);
        usleep((useconds_t)(rand_r(&seed) % 2000));
        /* Progress through the same words the sleepers sleep on. */
        int64_t t0 = s_now_ms();
        s_put_u32(q, 1, 1000);
        jobq_item_t it;
        int rc = jobq_queue_get(q, &it, 0);
        if (rc == JOBQ_OK) {
            ck_assert_jobq_ok(jobq_queue_task_done(q, &it));
            jobq_item_fini(&it);
        }
        int64_t took = s_now_ms() - t0;
        worst = took > worst ? took : worst;
    }
    ck_assert_msg(worst < 200, "an operation stalled for %lld ms", (long long)worst);
    for (int k = 0; k < 4; k++) {
        kill(live[k], SIGKILL);
        s_reap(live[k], 5000);
    }
    /* Items taken by killed getters come back; the rest drain; join returns. */
    ck_assert_jobq_ok(jobq_queue_task_done(q, &held));
    jobq_item_fini(&held);
    int counts[2] = {0, 0};
    int64_t t0 = s_now_ms();
    while (jobq_queue_unfinished(q) > 0 && s_now_ms() - t0 < 5000)
        s_drain(q, counts, 2);
    ck_assert_jobq_ok(jobq_queue_join(q, 2000));
    /* The killed sleepers' registrations are gone after a sweep. */
    shmq_stats_t st;
    char why[200] = "";
    jobq_item_t it;
    ck_assert_jobq_err(jobq_queue_get(q, &it, 150), JOBQ_ETIMEDOUT); /* sweeps */
    ck_assert_msg(shmq_debug_check(s_name, why, sizeof why, &st) == JOBQ_OK, "%s", why);
    ck_assert_uint_eq(st.sleepers, 0);
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

/* ---- ledger: several producers and consumers, consumers killed at random ---- */

#define S_PRODUCERS 2
#define S_PER_PRODUCER 3000
#define S_CONSUMERS 3

static void
s_ledger_consumer(void)
{
    jobq_queue_t *q = NULL;
    if (jobq_queue_open(s_url, NULL, &q) != JOBQ_OK)
        _exit(1);
    for (;;) {
        jobq_item_t it;
        int rc = jobq_queue_get(q, &it, 5000);
        if (rc != JOBQ_OK)
            _exit(rc == JOBQ_ECLOSED ? 0 : 2);
        if (it.sentinel) {
            jobq_queue_task_done(q, &it);
            _exit(0);
        }
        usleep(200); /* the "work": where most random kills land */
        jobq_result_t r;
        jobq_result_init(&r);
        r.id = it.id;
        r.attempt = it.attempt;
        r.output = it.payload;
        r.output_len = (uint32_t)it.payload_len;
        if (jobq_queue_put_result(q, &r, 5000) != JOBQ_OK)
            _exit(3);
        if (jobq_queue_task_done(q, &it) != JOBQ_OK)
            _exit(4);
        jobq_item_fini(&it);
    }
}

static void
s_ledger_producer(int p)
{
    jobq_queue_t *q = NULL;
    if (jobq_queue_open(s_url, NULL, &q) != JOBQ_OK)
        _exit(1);
    for (uint32_t i = 0; i < S_PER_PRODUCER; i++) {
        uint32_t v = (uint32_t)p * S_PER_PRODUCER + i;
        jobq_job_t job;
        jobq_job_init(&job);
        job.payload = &v;
        job.payload_len = 4;
        job.max_attempts = 1000;
        if (jobq_queue_put(q, &job, 5000) != JOBQ_OK)
            _exit(2);
    }
    _exit(0);
}

START_TEST(test_ledger_with_consumers_killed_at_random)
{
    jobq_queue_t *q = s_named("ledger", 128, 0);
    unsigned seed = (unsigned)getpid() * 7919u;
    pid_t prod[S_PRODUCERS], cons[S_CONSUMERS];
    enum { N = S_PRODUCERS * S_PER_PRODUCER };
    static int seen[N];
    int kills = 0, results = 0, done = 0;
    for (int c = 0; c < S_CONSUMERS; c++)
        if ((cons[c] = fork()) == 0)
            s_ledger_consumer();
    for (int p = 0; p < S_PRODUCERS; p++)
        if ((prod[p] = fork()) == 0)
            s_ledger_producer(p);
    int64_t start = s_now_ms(), next_kill = start + 5;
    while (done < N && s_now_ms() - start < 60000) {
        jobq_result_t r;
        if (jobq_queue_get_result(q, &r, 2) == JOBQ_OK) {
            uint32_t v;
            ck_assert_uint_eq(r.output_len, 4);
            memcpy(&v, r.output, 4);
            ck_assert_uint_lt(v, N);
            done += seen[v]++ == 0;
            results++;
        }
        if (s_now_ms() >= next_kill && kills < 100) {
            int c = (int)(rand_r(&seed) % S_CONSUMERS);
            kill(cons[c], SIGKILL);
            s_reap(cons[c], 5000);
            kills++;
            if ((cons[c] = fork()) == 0)
                s_ledger_consumer();
            next_kill = s_now_ms() + 5 + (int64_t)(rand_r(&seed) % 25);
        }
    }
    for (int p = 0; p < S_PRODUCERS; p++)
        s_expect_exit0(prod[p], 10000);
    ck_assert_msg(done == N, "only %d of %d jobs completed (%d kills)", done, N, kills);
    ck_assert_jobq_ok(jobq_queue_join(q, 5000));
    for (int c = 0; c < S_CONSUMERS; c++)
        ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 1000));
    for (int c = 0; c < S_CONSUMERS; c++)
        s_expect_exit0(cons[c], 10000);
    ck_assert_jobq_ok(jobq_queue_join(q, 2000));
    /* Duplicates come only from consumers killed between put_result and task_done. */
    ck_assert_int_le(results - N, kills);
    jobq_result_t r;
    while (jobq_queue_get_result(q, &r, 0) == JOBQ_OK)
        ck_assert_int_eq(r.status, JOBQ_STATUS_DONE);
    s_check_invariants();
    jobq_queue_destroy(&q);
    jobq_queue_unlink(s_url);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("shmq_crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_killed_consumer_item_runs_again_and_join_returns);
    tcase_add_test(tc, test_join_returns_while_a_consumer_is_killed_midjob);
    tcase_add_test(tc, test_reclaim_after_waitpid_reports_crashed_with_signal);
    tcase_add_test(tc, test_lazy_sweep_finishes_exhausted_item_so_join_returns);
    tcase_add_test(tc, test_kill_in_put_locked_rolls_back);
    tcase_add_test(tc, test_kill_in_chunked_put_frees_the_reservation);
    tcase_add_test(tc, test_kill_in_get_locked_leaves_item_queued);
    tcase_add_test(tc, test_kill_after_take_hands_item_back);
    tcase_add_test(tc, test_kill_in_task_done_keeps_item_unfinished);
    tcase_add_test(tc, test_kill_in_reclaim_keeps_item);
    tcase_add_test(tc, test_kill_in_result_channel_sections);
    tcase_add_test(tc, test_kill_during_repair_is_repaired_by_the_next);
    tcase_add_test(tc, test_unrecoverable_queue_fails_fast_with_ecorrupt);
    tcase_add_test(tc, test_creator_killed_midway_leaves_no_visible_queue);
    tcase_add_test(tc, test_producer_killed_inside_put_keeps_queue_consistent);
    tcase_add_test(tc, test_killed_sleepers_never_stall_the_others);
    tcase_add_test(tc, test_ledger_with_consumers_killed_at_random);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    jobq_test_remove_stale_shm("f");
    return jobq_test_run(s_suite());
}
