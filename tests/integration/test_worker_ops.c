/*
 * tests/integration/test_worker_ops.c: worker operations (docs/WORKERS.md)
 * with real forked pools over a real anonymous queue and a real `jobq broker`:
 * recycling by job count and by RSS with a ledger (no job lost or run twice,
 * children replaced without backoff), --fork-per-job isolation (a crash or a
 * leak cannot touch the next job) against the default long-lived child, and
 * soft/hard time limits of C handlers (jobq_job_soft_expired, SIGKILL of the
 * job's child at the hard limit).
 */
#include "jobq/errors.h"
#include "jobq/pool.h"
#include "jobq/producer.h"
#include "jobq/queue.h"
#include "jobq/worker.h"
#include "jobq_test.h"
#include "net_support.h"
#include "wire_client.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Job i's id: 0x57 then i in the last 4 bytes. */
static void
s_id(unsigned i, jobq_id_t *id)
{
    memset(id, 0, sizeof *id);
    id->b[0] = 0x57;
    for (int k = 0; k < 4; k++)
        id->b[12 + k] = (uint8_t)(i >> (24 - 8 * k));
}

static unsigned
s_index(const jobq_id_t *id)
{
    unsigned i = 0;
    for (int k = 0; k < 4; k++)
        i = (i << 8) | id->b[12 + k];
    return i;
}

static jobq_pool_t *
s_start(jobq_pool_opts_t *o)
{
    jobq_pool_t *pool = NULL;
    o->poll_ms = 20;
    ck_assert_jobq_ok(jobq_pool_new(o, &pool));
    ck_assert_jobq_ok(jobq_pool_start(pool));
    return pool;
}

/* Puts jobs 0..n-1 ("I" as payload) on q while taking results; checks the
 * ledger: each job exactly one result, DONE, attempt 1; results' outputs go
 * to outs (n entries of 32 bytes) when given. Then sentinels and the report. */
static jobq_pool_report_t
s_ledger(jobq_queue_t *q, jobq_pool_t *pool, unsigned workers, unsigned n, char (*outs)[32],
         int want_done)
{
    unsigned char *seen = calloc(n, 1);
    unsigned put = 0, got = 0;
    while (got < n) {
        while (put < n) {
            char text[16];
            jobq_job_t job;
            jobq_job_init(&job);
            s_id(put, &job.id);
            snprintf(text, sizeof text, "%u", put);
            job.payload = text;
            job.payload_len = (uint32_t)strlen(text);
            if (jobq_queue_put(q, &job, 0) != JOBQ_OK)
                break;
            put++;
        }
        jobq_result_t res;
        int rc = jobq_queue_get_result(q, &res, 20000);
        ck_assert_jobq_ok(rc);
        unsigned i = s_index(&res.id);
        ck_assert_uint_lt(i, n);
        ck_assert_msg(!seen[i], "job %u has two results", i);
        seen[i] = 1;
        got++;
        if (want_done) {
            ck_assert_msg(res.status == JOBQ_STATUS_DONE, "job %u: %s: %.*s", i,
                          jobq_status_name(res.status), (int)res.error_len,
                          res.error ? res.error : "");
            ck_assert_uint_eq(res.attempt, 1);
        }
        if (outs) {
            size_t len = res.output_len < 31 ? res.output_len : 31;
            if (len)
                memcpy(outs[i], res.output, len);
            outs[i][len] = '\0';
        }
    }
    for (unsigned w = 0; w < workers; w++)
        ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 10000));
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 20000, &rep));
    jobq_result_t extra;
    ck_assert_jobq_err(jobq_queue_get_result(q, &extra, 0), JOBQ_EEMPTY);
    free(seen);
    return rep;
}

START_TEST(test_recycling_by_job_count_loses_and_doubles_no_job)
{
    jobq_queue_t *q = NULL;
    ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.queue = q;
    o.workers = 3;
    o.builtin = "echo";
    o.max_jobs_per_child = 7;
    jobq_pool_t *pool = s_start(&o);
    jobq_pool_report_t rep = s_ledger(q, pool, 3, 600, NULL, 1);
    ck_assert_uint_eq(rep.done, 600);
    /* 600 jobs at <= 7 per child need >= 86 children: >= 83 replacements. */
    ck_assert_uint_ge(rep.recycled, 600 / 7 - 3);
    ck_assert_uint_eq(rep.deaths, 0);
    ck_assert_uint_eq(rep.restarts, 0); /* replaced at once, not as crashes */
    jobq_pool_destroy(&pool);
    jobq_queue_destroy(&q);
}
END_TEST

/* Leaks 1 MiB per call (touched, so it is resident; kept in a global so that
 * the compiler cannot drop the allocation). */
static char *volatile s_leaked;

static int
s_leaky(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    (void)arg;
    char *p = malloc(1 << 20);
    memset(p, 1, 1 << 20);
    s_leaked = p;
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d", (int)getpid());
    (void)job;
    return jobq_output_append(out, pid, (size_t)n) == JOBQ_OK ? 0 : 1;
}

START_TEST(test_recycling_by_memory_replaces_a_leaking_child)
{
    jobq_queue_t *q = NULL;
    ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.queue = q;
    o.workers = 2;
    o.fn = s_leaky;
    o.max_memory_per_child_mb = 24;
    jobq_pool_t *pool = s_start(&o);
    static char outs[200][32];
    jobq_pool_report_t rep = s_ledger(q, pool, 2, 200, outs, 1);
    ck_assert_uint_eq(rep.done, 200);
    ck_assert_uint_ge(rep.recycled, 3); /* 200 MiB leaked in 24 MiB children */
    ck_assert_uint_eq(rep.deaths, 0);
    ck_assert_uint_le(rep.max_rss_kb, 64 * 1024); /* no child grew far past the cap */
    int pids = 0;
    for (int i = 0; i < 200; i++)
        pids += i == 0 || strcmp(outs[i], outs[0]) != 0;
    ck_assert_int_gt(pids, 2); /* several processes served the jobs */
    jobq_pool_destroy(&pool);
    jobq_queue_destroy(&q);
}
END_TEST

/* "crash" aborts; any other payload returns how many jobs this process ran
 * (a static counter: the state a leak or a crash would leave behind). */
static int
s_stateful(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    static int calls;
    (void)arg;
    if (job->payload_len == 5 && memcmp(job->payload, "crash", 5) == 0)
        abort();
    char text[16];
    int n = snprintf(text, sizeof text, "%d", ++calls);
    return jobq_output_append(out, text, (size_t)n) == JOBQ_OK ? 0 : 1;
}

/* Runs payloads[0..n) one at a time through a one-worker pool; fills res
 * statuses, signals and outputs. Returns the report. */
static jobq_pool_report_t
s_sequence(int fork_per_job, const char *const *payloads, int n, int *status, int *sig,
           char (*outs)[32])
{
    jobq_queue_t *q = NULL;
    ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.queue = q;
    o.workers = 1;
    o.fn = s_stateful;
    o.fork_per_job = fork_per_job;
    o.restart_min_ms = 10;
    jobq_pool_t *pool = s_start(&o);
    for (int i = 0; i < n; i++) {
        jobq_job_t job;
        jobq_job_init(&job);
        s_id((unsigned)i, &job.id);
        job.payload = payloads[i];
        job.payload_len = (uint32_t)strlen(payloads[i]);
        job.max_attempts = 1; /* a crash is reported, not run again */
        ck_assert_jobq_ok(jobq_queue_put(q, &job, 5000));
        jobq_result_t res;
        ck_assert_jobq_ok(jobq_queue_get_result(q, &res, 20000));
        ck_assert_uint_eq(s_index(&res.id), (unsigned)i);
        status[i] = res.status;
        sig[i] = res.signal;
        size_t len = res.output_len < 31 ? res.output_len : 31;
        if (len)
            memcpy(outs[i], res.output, len);
        outs[i][len] = '\0';
    }
    ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 5000));
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 20000, &rep));
    jobq_pool_destroy(&pool);
    jobq_queue_destroy(&q);
    return rep;
}

START_TEST(test_fork_per_job_crash_and_state_do_not_reach_the_next_job)
{
    const char *payloads[] = {"a", "crash", "b", "c"};
    int st[4], sig[4];
    char outs[4][32];
    jobq_pool_report_t rep = s_sequence(1, payloads, 4, st, sig, outs);
    ck_assert_int_eq(st[1], JOBQ_STATUS_CRASHED);
    ck_assert_int_eq(sig[1], SIGABRT);
    for (int i = 0; i < 4; i += 1 + (i == 0)) {
        ck_assert_int_eq(st[i], JOBQ_STATUS_DONE);
        ck_assert_str_eq(outs[i], "1"); /* a fresh process each time */
    }
    ck_assert_uint_eq(rep.deaths, 0); /* the worker itself never died */
    ck_assert_uint_eq(rep.restarts, 0);
    ck_assert_uint_eq(rep.crashed, 1);
}
END_TEST

START_TEST(test_default_mode_crash_is_reported_and_the_child_replaced)
{
    const char *payloads[] = {"a", "b", "crash", "c"};
    int st[4], sig[4];
    char outs[4][32];
    jobq_pool_report_t rep = s_sequence(0, payloads, 4, st, sig, outs);
    ck_assert_str_eq(outs[1], "2"); /* one long-lived child: state carries over */
    ck_assert_int_eq(st[2], JOBQ_STATUS_CRASHED);
    ck_assert_msg(sig[2] == SIGABRT || sig[2] == 0, "signal %d", sig[2]);
    ck_assert_int_eq(st[3], JOBQ_STATUS_DONE);
    ck_assert_str_eq(outs[3], "1"); /* its replacement starts afresh */
    ck_assert_uint_eq(rep.deaths, 1);
    ck_assert_uint_eq(rep.restarts, 1);
}
END_TEST

/* Works until the soft flag rises, then returns what it managed. */
static int
s_polite(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    (void)job;
    (void)arg;
    struct timespec ts = {0, 5L * 1000 * 1000};
    for (int i = 0; i < 4000 && !jobq_job_soft_expired(); i++)
        nanosleep(&ts, NULL);
    static const char text[] = "partial";
    return jobq_output_append(out, text, sizeof text - 1) == JOBQ_OK ? 0 : 1;
}

/* Ignores the soft flag: sleeps 20 s. */
static int
s_stubborn(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    (void)job;
    (void)out;
    (void)arg;
    struct timespec ts = {20, 0};
    nanosleep(&ts, NULL);
    return 0;
}

/* Runs one job through a one-worker pool with the given handler and limits. */
static void
s_one_limited(jobq_handler_fn fn, jobq_pool_mode mode, int fork_per_job, uint32_t soft_ms,
              uint32_t hard_ms, jobq_result_t *res, char *err, size_t err_len, char *out,
              size_t out_len)
{
    jobq_queue_t *q = NULL;
    ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.queue = q;
    o.workers = 1;
    o.mode = mode;
    o.fn = fn;
    o.fork_per_job = fork_per_job;
    o.soft_time_limit_ms = soft_ms;
    o.time_limit_ms = hard_ms;
    jobq_pool_t *pool = s_start(&o);
    jobq_job_t job;
    jobq_job_init(&job);
    s_id(1, &job.id);
    job.payload = "x";
    job.payload_len = 1;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 5000));
    ck_assert_jobq_ok(jobq_queue_get_result(q, res, 20000));
    snprintf(err, err_len, "%.*s", (int)res->error_len, res->error ? res->error : "");
    snprintf(out, out_len, "%.*s", (int)res->output_len, (const char *)res->output);
    ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 5000));
    ck_assert_jobq_ok(jobq_pool_wait(pool, 20000, NULL));
    jobq_pool_destroy(&pool);
    jobq_queue_destroy(&q);
}

START_TEST(test_c_handler_polling_the_soft_flag_ends_timedout_with_its_output)
{
    static const jobq_pool_mode modes[] = {JOBQ_POOL_PROCS, JOBQ_POOL_THREADS};
    for (int m = 0; m < 2; m++) {
        jobq_result_t res;
        char err[256], out[64];
        s_one_limited(s_polite, modes[m], m == 0, 200, 10000, &res, err, sizeof err, out,
                      sizeof out);
        ck_assert_int_eq(res.status, JOBQ_STATUS_TIMEDOUT);
        ck_assert_str_eq(out, "partial");
        ck_assert_msg(strstr(err, "soft time limit of 200 ms reached"), "%s", err);
        ck_assert_uint_ge(res.duration_us, 190000);
        ck_assert_uint_lt(res.duration_us, 8000000);
    }
}
END_TEST

START_TEST(test_c_handler_ignoring_the_soft_flag_is_killed_at_the_hard_limit)
{
    jobq_result_t res;
    char err[256], out[64];
    s_one_limited(s_stubborn, JOBQ_POOL_PROCS, 1, 100, 600, &res, err, sizeof err, out, sizeof out);
    ck_assert_int_eq(res.status, JOBQ_STATUS_TIMEDOUT);
    ck_assert_int_eq(res.signal, SIGKILL);
    ck_assert_msg(strstr(err, "hard time limit of 600 ms reached"), "%s", err);
    ck_assert_uint_ge(res.duration_us, 590000);
    ck_assert_uint_lt(res.duration_us, 10000000);
}
END_TEST

/* Spins past any limit (ignoring the soft flag) on payload "spin", or on
 * payload "spin1" in its first attempt only; echoes anything else. */
static int
s_spin_or_echo(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    (void)arg;
    int spin = job->payload_len == 4 && !memcmp(job->payload, "spin", 4);
    spin |= job->payload_len == 5 && !memcmp(job->payload, "spin1", 5) && job->attempt == 1;
    if (spin) {
        struct timespec ts = {20, 0};
        nanosleep(&ts, NULL);
    }
    return jobq_output_append(out, job->payload, job->payload_len) == JOBQ_OK ? 0 : 1;
}

/* Puts job i with payload text and max_attempts; returns its result. */
static void
s_put_and_wait(jobq_queue_t *q, unsigned i, const char *text, uint32_t max_attempts,
               jobq_result_t *res, char *err, size_t err_len)
{
    jobq_job_t job;
    jobq_job_init(&job);
    s_id(i, &job.id);
    job.payload = text;
    job.payload_len = strlen(text);
    job.max_attempts = max_attempts;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 5000));
    ck_assert_jobq_ok(jobq_queue_get_result(q, res, 30000));
    ck_assert_uint_eq(s_index(&res->id), i);
    snprintf(err, err_len, "%.*s", (int)res->error_len, res->error ? res->error : "");
}

/* A one-worker forked pool (the default long-lived child) with a 300 ms hard
 * limit on the queue at url (NULL: an anonymous queue): a job spinning past
 * it is reported TIMEDOUT with the limit, the child is replaced, and the next
 * job runs fine. */
static void
s_hard_kill_case(const char *url)
{
    jobq_queue_t *q = NULL;
    jobq_queue_opts_t qo = {.flags = JOBQ_QUEUE_CREATE,
                            .max_items = 4}; /* mq: small RLIMIT_MSGQUEUE */
    if (url) {
        jobq_queue_unlink(url);
        ck_assert_jobq_ok(jobq_queue_open(url, &qo, &q));
    } else {
        ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
    }
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    if (url)
        o.url = url;
    else
        o.queue = q;
    o.workers = 1;
    o.fn = s_spin_or_echo;
    o.time_limit_ms = 300;
    o.restart_min_ms = 10;
    jobq_pool_t *pool = s_start(&o);
    jobq_result_t res;
    char err[256];
    int64_t t0 = s_now_ms();
    s_put_and_wait(q, 1, "spin", 1, &res, err, sizeof err);
    int64_t took = s_now_ms() - t0;
    ck_assert_msg(res.status == JOBQ_STATUS_TIMEDOUT, "%s: %s", jobq_status_name(res.status), err);
    ck_assert_int_eq(res.signal, SIGKILL);
    ck_assert_msg(strstr(err, "hard time limit 0.3 s exceeded"), "%s", err);
    ck_assert_int_lt(took, 15000); /* not the handler's 20 s */
    s_put_and_wait(q, 2, "next", 1, &res, err, sizeof err);
    ck_assert_msg(res.status == JOBQ_STATUS_DONE, "%s: %s", jobq_status_name(res.status), err);
    ck_assert_uint_eq(res.output_len, 4);
    ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 5000));
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 20000, &rep));
    ck_assert_uint_eq(rep.deaths, 1);
    ck_assert_uint_eq(rep.restarts, 1); /* the replacement ran the next job */
    ck_assert_uint_eq(rep.failed, 1);   /* a timed-out attempt, not a crash */
    ck_assert_uint_eq(rep.crashed, 0);
    ck_assert_uint_eq(rep.done, 1);
    jobq_pool_destroy(&pool);
    jobq_queue_destroy(&q);
    if (url)
        jobq_queue_unlink(url);
}

START_TEST(test_long_lived_child_past_the_hard_limit_is_reported_timedout_and_replaced)
{
    s_hard_kill_case(NULL);
}
END_TEST

START_TEST(test_hard_limit_kill_on_a_shm_queue_is_reported_timedout)
{
    char url[64];
    snprintf(url, sizeof url, "shm://twops-hard-%d", (int)getpid());
    s_hard_kill_case(url);
}
END_TEST

START_TEST(test_hard_limit_kill_on_an_mq_queue_is_reported_timedout)
{
    char url[64];
    snprintf(url, sizeof url, "mq://twops-hard-%d", (int)getpid());
    s_hard_kill_case(url);
}
END_TEST

/* A forked child takes job 1 from q and is SIGKILLed; the item is then
 * reclaimed as killed at a hard limit of 1500 ms. Returns the result. */
static void
s_reclaim_timedout_case(jobq_queue_t *q, jobq_result_t *res, char *err, size_t err_len)
{
    jobq_job_t job;
    jobq_job_init(&job);
    s_id(1, &job.id);
    job.payload = "x";
    job.payload_len = 1;
    job.max_attempts = 1;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 5000));
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_item_t item;
        char c = jobq_queue_get(q, &item, 5000) == JOBQ_OK ? 'y' : 'n';
        ssize_t w = write(fds[1], &c, 1);
        (void)w;
        pause();
        _exit(0);
    }
    char c = 0;
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    kill(pid, SIGKILL);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    close(fds[0]);
    close(fds[1]);
    ck_assert_int_eq(jobq_queue_reclaim_timedout(q, pid, 1500), 1);
    ck_assert_jobq_ok(jobq_queue_get_result(q, res, 5000));
    snprintf(err, err_len, "%.*s", (int)res->error_len, res->error ? res->error : "");
}

START_TEST(test_reclaim_timedout_reports_the_limit_in_seconds_on_shm_and_mq)
{
    char url[64];
    snprintf(url, sizeof url, "mq://twops-rt-%d", (int)getpid());
    jobq_queue_opts_t qo = {.flags = JOBQ_QUEUE_CREATE, .max_items = 4};
    for (int k = 0; k < 2; k++) {
        jobq_queue_t *q = NULL;
        if (k == 0) {
            ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
        } else {
            jobq_queue_unlink(url);
            ck_assert_jobq_ok(jobq_queue_open(url, &qo, &q));
        }
        jobq_result_t res;
        char err[256];
        s_reclaim_timedout_case(q, &res, err, sizeof err);
        ck_assert_msg(res.status == JOBQ_STATUS_TIMEDOUT, "%d: %s: %s", k,
                      jobq_status_name(res.status), err);
        ck_assert_int_eq(res.signal, SIGKILL);
        ck_assert_msg(strstr(err, "hard time limit 1.5 s exceeded"), "%d: %s", k, err);
        ck_assert_uint_eq(jobq_queue_unfinished(q), 0);
        jobq_queue_destroy(&q);
    }
    jobq_queue_unlink(url);
}
END_TEST

START_TEST(test_plain_reclaim_cannot_forge_a_timeout)
{
    jobq_queue_t *q = NULL;
    ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
    jobq_job_t job;
    jobq_job_init(&job);
    s_id(1, &job.id);
    job.payload = "x";
    job.payload_len = 1;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 5000));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_item_t item;
        _exit(jobq_queue_get(q, &item, 5000) == JOBQ_OK ? 0 : 1); /* dies holding it */
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    /* a sig with the internal timeout bit is taken as "unknown" */
    ck_assert_int_eq(jobq_queue_reclaim(q, pid, 0x40000000 | 2000), 1);
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_queue_get_result(q, &res, 5000));
    ck_assert_int_eq(res.status, JOBQ_STATUS_CRASHED);
    ck_assert_int_eq(res.signal, 0);
    jobq_queue_destroy(&q);
}
END_TEST

START_TEST(test_job_with_attempts_left_is_retried_after_a_hard_timeout)
{
    jobq_queue_t *q = NULL;
    ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.queue = q;
    o.workers = 1;
    o.fn = s_spin_or_echo;
    o.time_limit_ms = 300;
    o.restart_min_ms = 10;
    jobq_pool_t *pool = s_start(&o);
    jobq_result_t res;
    char err[256];
    s_put_and_wait(q, 1, "spin1", 2, &res, err, sizeof err);
    ck_assert_msg(res.status == JOBQ_STATUS_DONE, "%s: %s", jobq_status_name(res.status), err);
    ck_assert_uint_eq(res.attempt, 2); /* the timed-out attempt used one */
    ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 5000));
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 20000, &rep));
    ck_assert_uint_eq(rep.failed, 1);
    ck_assert_uint_eq(rep.crashed, 0);
    ck_assert_uint_eq(rep.done, 1);
    jobq_pool_destroy(&pool);
    jobq_queue_destroy(&q);
}
END_TEST

/* The pool runs in a `jobq worker` process, not in this one: forking from a
 * process whose other threads (the producer's ZeroMQ threads) may hold the
 * ASan allocator's lock can deadlock the child under ASan (GCC 12's libasan
 * does not lock its allocator around fork), and recycling forks often. */
START_TEST(test_broker_recycling_hands_prefetched_jobs_back_and_loses_none)
{
    wc_broker_t broker;
    jobq_producer_t *p = NULL;
    char dir[256], out[320], err[320], report[4096];
    ck_assert_int_eq(wc_broker_start(&broker, NULL), 0);
    ck_assert_jobq_ok(jobq_producer_open(broker.url, NULL, &p));
    ck_assert_int_eq(ns_tempdir(dir, sizeof dir), 0);
    snprintf(out, sizeof out, "%s/worker.out", dir);
    snprintf(err, sizeof err, "%s/worker.err", dir);
    const char *argv[] = {"worker", "-u",        broker.url, "-q",
                          "ops",    "--procs",   "2",        "--prefetch",
                          "8",      "--builtin", "echo",     "--max-jobs-per-child",
                          "5",      "--json",    NULL};
    pid_t w = ns_spawn(argv, out, err);
    ck_assert_int_gt(w, 0);
    enum { N = 150 };
    static jobq_job_t jobs[N];
    static char texts[N][16];
    unsigned char seen[N] = {0};
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "j%d", i);
        ns_job(&jobs[i], "ops", texts[i], 0, 0);
    }
    ck_assert_jobq_ok(jobq_producer_submit_batch(p, jobs, N, NULL, 10000));
    for (int k = 0; k < N; k++) {
        jobq_result_t res;
        ck_assert_jobq_ok(jobq_producer_next_result(p, &res, 30000));
        int i = -1;
        for (int j = 0; j < N && i < 0; j++)
            if (!memcmp(&jobs[j].id, &res.id, sizeof res.id))
                i = j;
        ck_assert_int_ge(i, 0);
        ck_assert_msg(!seen[i], "job %d has two results", i);
        seen[i] = 1;
        ck_assert_msg(res.status == JOBQ_STATUS_DONE, "job %d: %s: %.*s", i,
                      jobq_status_name(res.status), (int)res.error_len, res.error ? res.error : "");
        ck_assert_uint_eq(res.output_len, strlen(texts[i]));
    }
    jobq_result_t extra;
    ck_assert_jobq_err(jobq_producer_next_result(p, &extra, 300), JOBQ_ETIMEDOUT);
    /* A sentinel reaches the workers connected when it is sent (a child ends
     * the whole pool, worker/pool.c): wait until a swap is not in flight. */
    ck_assert_int_eq(ns_wait_stat(broker.url, "worker", 2, 10000), 0);
    ck_assert_int_eq(ns_stat(broker.url, "expired"), 0); /* handed back, not timed out */
    ck_assert_jobq_ok(jobq_producer_stop_workers(p, NULL, 0));
    int st = ns_reap(w, 20000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "jobq worker status %d", st);
    ck_assert_int_gt(ns_read_file(out, report, sizeof report), 0);
    ck_assert_msg(strstr(report, "\"done\":150,"), "report: %s", report); /* none twice */
    ck_assert_msg(strstr(report, "\"deaths\":0,"), "report: %s", report);
    const char *rc = strstr(report, "\"recycled\":");
    ck_assert_msg(rc && atoi(rc + 11) >= N / 5 - 2, "report: %s", report);
    jobq_producer_destroy(&p);
    wc_broker_stop(&broker, 5000);
}
END_TEST

/* Waits for the result of job id. */
static void
s_wait_result(jobq_producer_t *p, const jobq_id_t *id, jobq_result_t *res, int64_t timeout_ms)
{
    ck_assert_jobq_ok(jobq_producer_wait(p, id, res, timeout_ms));
}

START_TEST(test_broker_cold_stop_hands_jobs_back_without_waiting_for_heartbeats)
{
    static const char *args[] = {"--backoff-base", "0", NULL};
    wc_broker_t broker;
    jobq_producer_t *p = NULL;
    ck_assert_int_eq(wc_broker_start(&broker, args), 0);
    ck_assert_jobq_ok(jobq_producer_open(broker.url, NULL, &p));
    static const char *queues[] = {"cold"};
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.url = broker.url;
    o.workers = 1;
    o.builtin = "sleep";
    o.prefetch = 3;
    o.heartbeat_ms = 3000; /* a dead worker would be found after ~9 s */
    o.queues = queues;
    o.nqueues = 1;
    jobq_pool_t *a = s_start(&o);
    jobq_job_t jobs[3];
    ns_job(&jobs[0], "cold", "20000", 60000, 3);
    ns_job(&jobs[1], "cold", "10", 60000, 3);
    ns_job(&jobs[2], "cold", "10", 60000, 3);
    ck_assert_jobq_ok(jobq_producer_submit_batch(p, jobs, 3, NULL, 10000));
    ck_assert_int_eq(ns_wait_stat(broker.url, "reserved", 3, 10000), 0); /* all three at A */
    usleep(200 * 1000);
    int64_t t0 = s_now_ms();
    jobq_pool_stop(a, 1);
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(a, 10000, &rep));
    ck_assert_int_lt(s_now_ms() - t0, 4000); /* not the running 20 s job */
    ck_assert_uint_eq(rep.reports, 1);       /* it exited by itself, with its report */
    ck_assert_uint_eq(rep.deaths, 0);
    jobq_pool_destroy(&a);
    /* B takes the two prefetched jobs at once: DISCONNECT gave them back. */
    o.builtin = "echo";
    o.heartbeat_ms = 1000;
    jobq_pool_t *b = s_start(&o);
    jobq_result_t res;
    for (int i = 1; i < 3; i++) {
        s_wait_result(p, &jobs[i].id, &res, 10000);
        ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    }
    ck_assert_int_lt(s_now_ms() - t0, 6000);    /* well before A's heartbeats could expire */
    s_wait_result(p, &jobs[0].id, &res, 20000); /* the interrupted one, as a new attempt */
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_ge(res.attempt, 2);
    ck_assert_jobq_ok(jobq_producer_stop_workers(p, NULL, 0));
    ck_assert_jobq_ok(jobq_pool_wait(b, 20000, NULL));
    jobq_pool_destroy(&b);
    jobq_producer_destroy(&p);
    wc_broker_stop(&broker, 5000);
}
END_TEST

/* A forked network worker with a C handler past its hard limit: its
 * connection thread reports the attempt TIMEDOUT and the child ends (no
 * SIGKILL, no lost worker); the replacement serves the next jobs; a job with
 * attempts left is retried by the broker. */
START_TEST(test_broker_worker_past_the_hard_limit_reports_timedout_and_is_replaced)
{
    static const char *args[] = {"--backoff-base", "0", NULL};
    wc_broker_t broker;
    jobq_producer_t *p = NULL;
    ck_assert_int_eq(wc_broker_start(&broker, args), 0);
    ck_assert_jobq_ok(jobq_producer_open(broker.url, NULL, &p));
    static const char *queues[] = {"hard"};
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.url = broker.url;
    o.workers = 1;
    o.fn = s_spin_or_echo;
    o.time_limit_ms = 300;
    o.restart_min_ms = 10;
    o.heartbeat_ms = 3000; /* a lost worker would take ~9 s to be noticed */
    o.queues = queues;
    o.nqueues = 1;
    jobq_pool_t *pool = s_start(&o);
    jobq_job_t jobs[3];
    ns_job(&jobs[0], "hard", "spin", 60000, 1);
    ns_job(&jobs[1], "hard", "next", 60000, 1);
    ns_job(&jobs[2], "hard", "spin1", 60000, 2);
    jobq_result_t res;
    int64_t t0 = s_now_ms();
    ck_assert_jobq_ok(jobq_producer_submit(p, &jobs[0], 10000));
    s_wait_result(p, &jobs[0].id, &res, 30000);
    char err[256];
    snprintf(err, sizeof err, "%.*s", (int)res.error_len, res.error ? res.error : "");
    /* its one attempt ended TIMEDOUT, so the broker buried it with that
     * attempt's text and signal (a lost worker would say so, signal 0) */
    ck_assert_msg(res.status == JOBQ_STATUS_DEAD, "%s: %s", jobq_status_name(res.status), err);
    ck_assert_msg(strstr(err, "hard time limit 0.3 s exceeded"), "%s", err);
    ck_assert_int_eq(res.signal, SIGKILL);
    ck_assert_int_lt(s_now_ms() - t0, 8000); /* not a lease or heartbeat expiry */
    ck_assert_jobq_ok(jobq_producer_submit(p, &jobs[1], 10000));
    s_wait_result(p, &jobs[1].id, &res, 30000);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_eq(res.output_len, 4);
    ck_assert_jobq_ok(jobq_producer_submit(p, &jobs[2], 10000));
    s_wait_result(p, &jobs[2].id, &res, 30000);
    ck_assert_msg(res.status == JOBQ_STATUS_DONE, "%s", jobq_status_name(res.status));
    ck_assert_uint_eq(res.attempt, 2); /* the timed-out attempt counted */
    ck_assert_int_eq(ns_wait_stat(broker.url, "worker", 1, 10000), 0);
    ck_assert_jobq_ok(jobq_producer_stop_workers(p, NULL, 0));
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 20000, &rep));
    ck_assert_uint_eq(rep.deaths, 0); /* the supervisor's SIGKILL was not needed */
    ck_assert_uint_eq(rep.restarts, 2);
    ck_assert_uint_eq(rep.failed, 2);
    ck_assert_uint_eq(rep.crashed, 0);
    ck_assert_uint_eq(rep.done, 2);
    jobq_pool_destroy(&pool);
    jobq_producer_destroy(&p);
    wc_broker_stop(&broker, 5000);
}
END_TEST

START_TEST(test_broker_worker_fork_per_job_survives_a_crashing_job)
{
    wc_broker_t broker;
    jobq_producer_t *p = NULL;
    ck_assert_int_eq(wc_broker_start(&broker, NULL), 0);
    ck_assert_jobq_ok(jobq_producer_open(broker.url, NULL, &p));
    static const char *queues[] = {"iso"};
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.url = broker.url;
    o.workers = 1;
    o.fn = s_stateful;
    o.fork_per_job = 1;
    o.queues = queues;
    o.nqueues = 1;
    jobq_pool_t *pool = s_start(&o);
    jobq_job_t jobs[3];
    ns_job(&jobs[0], "iso", "crash", 0, 1);
    ns_job(&jobs[1], "iso", "a", 0, 1);
    ns_job(&jobs[2], "iso", "b", 0, 1);
    ck_assert_jobq_ok(jobq_producer_submit_batch(p, jobs, 3, NULL, 10000));
    jobq_result_t res;
    s_wait_result(p, &jobs[0].id, &res, 20000);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DEAD); /* its one attempt crashed */
    ck_assert_int_eq(res.signal, SIGABRT);
    for (int i = 1; i < 3; i++) {
        s_wait_result(p, &jobs[i].id, &res, 20000);
        ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
        ck_assert_uint_eq(res.attempt, 1); /* the worker kept its leases */
        ck_assert_uint_eq(res.output_len, 1);
        ck_assert_mem_eq(res.output, "1", 1); /* a fresh child each time */
    }
    ck_assert_jobq_ok(jobq_producer_stop_workers(p, NULL, 0));
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 20000, &rep));
    ck_assert_uint_eq(rep.deaths, 0);
    ck_assert_uint_eq(rep.crashed, 1);
    jobq_pool_destroy(&pool);
    jobq_producer_destroy(&p);
    wc_broker_stop(&broker, 5000);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("worker_ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_recycling_by_job_count_loses_and_doubles_no_job);
    tcase_add_test(tc, test_recycling_by_memory_replaces_a_leaking_child);
    tcase_add_test(tc, test_fork_per_job_crash_and_state_do_not_reach_the_next_job);
    tcase_add_test(tc, test_default_mode_crash_is_reported_and_the_child_replaced);
    tcase_add_test(tc, test_c_handler_polling_the_soft_flag_ends_timedout_with_its_output);
    tcase_add_test(tc, test_c_handler_ignoring_the_soft_flag_is_killed_at_the_hard_limit);
    tcase_add_test(tc, test_long_lived_child_past_the_hard_limit_is_reported_timedout_and_replaced);
    tcase_add_test(tc, test_hard_limit_kill_on_a_shm_queue_is_reported_timedout);
    tcase_add_test(tc, test_hard_limit_kill_on_an_mq_queue_is_reported_timedout);
    tcase_add_test(tc, test_job_with_attempts_left_is_retried_after_a_hard_timeout);
    tcase_add_test(tc, test_reclaim_timedout_reports_the_limit_in_seconds_on_shm_and_mq);
    tcase_add_test(tc, test_plain_reclaim_cannot_forge_a_timeout);
    tcase_add_test(tc, test_broker_recycling_hands_prefetched_jobs_back_and_loses_none);
    tcase_add_test(tc, test_broker_cold_stop_hands_jobs_back_without_waiting_for_heartbeats);
    tcase_add_test(tc, test_broker_worker_fork_per_job_survives_a_crashing_job);
    tcase_add_test(tc, test_broker_worker_past_the_hard_limit_reports_timedout_and_is_replaced);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return jobq_test_run(s_suite());
}
