/*
 * tests/fault/test_net_faults.c: network workers under faults, with real
 * `jobq broker` and `jobq worker` processes and a producer through the
 * producer API (RELIABILITY.md §3.1 and §3.5):
 *   - a worker SIGKILLed mid-job (heartbeats 200 ms x 3): its job runs again
 *     on another worker within 1 s, and the producer sees one result;
 *   - a worker SIGSTOPped past its lease while another completes the job, then
 *     SIGCONTed: its late result is refused as stale (its report says so), and
 *     the producer still sees one result;
 *   - a forked worker killed under its pool: restarted, and its job done;
 *   - the broker killed (SIGKILL) or stopped (SIGTERM) under its workers and
 *     started again on the same ipc path: the workers register again and new
 *     jobs complete.
 */
#include "jobq/errors.h"
#include "jobq/pool.h"
#include "jobq/producer.h"
#include "jobq_test.h"
#include "net_support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct fx {
    char dir[256];
    char url[320];
    ns_broker_t broker;
    jobq_producer_t *p;
} fx_t;

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
fx_start(fx_t *f)
{
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(ns_tempdir(f->dir, sizeof f->dir), 0);
    snprintf(f->url, sizeof f->url, "ipc://%s/b.sock", f->dir);
    ck_assert_int_eq(ns_broker_start(&f->broker, f->url, NULL), 0);
    ck_assert_jobq_ok(jobq_producer_open(f->url, NULL, &f->p));
}

static void
fx_stop(fx_t *f)
{
    char path[400];
    jobq_producer_destroy(&f->p);
    ns_broker_stop(&f->broker, SIGTERM, 5000);
    snprintf(path, sizeof path, "%s/b.sock", f->dir);
    unlink(path);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/w%d.out", f->dir, i);
        unlink(path);
        snprintf(path, sizeof path, "%s/w%d.err", f->dir, i);
        unlink(path);
    }
    rmdir(f->dir);
}

/* A `jobq worker --threads 1` on queue q (one process: a kill is final). */
static pid_t
s_worker(fx_t *f, int i, const char *hb, const char *builtin)
{
    char out[400], err[400];
    snprintf(out, sizeof out, "%s/w%d.out", f->dir, i);
    snprintf(err, sizeof err, "%s/w%d.err", f->dir, i);
    const char *argv[] = {"worker",      "-u", f->url,   "-q",        "q",     "--threads", "1",
                          "--heartbeat", hb,   "--json", "--builtin", builtin, NULL};
    setenv("JOBQ_LOG", "info", 1); /* the worker logs why a result was refused */
    pid_t pid = ns_spawn(argv, out, err);
    ck_assert_int_gt(pid, 0);
    return pid;
}

/* Checks that no second result arrives within ms. */
static void
s_no_more_results(fx_t *f, int64_t ms)
{
    jobq_result_t res;
    int rc = jobq_producer_next_result(f->p, &res, ms);
    ck_assert_msg(rc == JOBQ_ETIMEDOUT || rc == JOBQ_EEMPTY, "a second result: %s",
                  jobq_errname(rc));
}

START_TEST(test_killed_worker_job_runs_again_elsewhere_within_a_second)
{
    fx_t f;
    fx_start(&f);
    pid_t a = s_worker(&f, 0, "200", "sleep");
    ck_assert_int_eq(ns_wait_stat(f.url, "worker", 1, 10000), 0);
    jobq_job_t job;
    ns_job(&job, "q", "1500", 20000, 3); /* the lease alone would take 20 s */
    ck_assert_jobq_ok(jobq_producer_submit(f.p, &job, 10000));
    ck_assert_int_eq(ns_wait_stat(f.url, "held", 1, 10000), 0); /* A holds it */
    pid_t b = s_worker(&f, 1, "200", "sleep");
    ck_assert_int_eq(ns_wait_stat(f.url, "worker", 2, 10000), 0);
    int64_t killed = s_now_ms();
    kill(a, SIGKILL);
    ns_reap(a, 5000);
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_producer_next_result(f.p, &res, 20000));
    int64_t started = s_now_ms() - (int64_t)(res.duration_us / 1000);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_eq(res.attempt, 2);
    ck_assert_msg(started - killed <= 1000, "ran again %lld ms after the kill",
                  (long long)(started - killed));
    s_no_more_results(&f, 500);
    kill(b, SIGTERM);
    ck_assert_int_eq(ns_reap(b, 10000), 0);
    fx_stop(&f);
}
END_TEST

/* B connects first (the broker serves workers in connection order) but is busy
 * with a blocker while A takes the job, so that when A's lease expires the job
 * goes to B, not back to the frozen A. */
START_TEST(test_sigstopped_worker_late_result_is_refused_as_stale)
{
    fx_t f;
    char out[400], report[4096];
    fx_start(&f);
    pid_t b = s_worker(&f, 1, "1000", "sleep");
    ck_assert_int_eq(ns_wait_stat(f.url, "worker", 1, 10000), 0);
    jobq_job_t blocker, job;
    ns_job(&blocker, "q", "3000", 30000, 1); /* long enough for A to start on a loaded machine */
    ck_assert_jobq_ok(jobq_producer_submit(f.p, &blocker, 10000));
    ck_assert_int_eq(ns_wait_stat(f.url, "held", 1, 10000), 0); /* B is busy */
    /* A's heartbeat: found silent only after 9 s, so that the 1 s lease ends first and A
     * is still a connected (suspect) peer when it resumes and reports late */
    pid_t a = s_worker(&f, 0, "3000", "sleep");
    ck_assert_int_eq(ns_wait_stat(f.url, "worker", 2, 10000), 0);
    ns_job(&job, "q", "400", 1000, 3);
    ck_assert_jobq_ok(jobq_producer_submit(f.p, &job, 10000));
    ck_assert_int_eq(ns_wait_stat(f.url, "reserved", 2, 10000), 0); /* A holds it */
    kill(a, SIGSTOP);
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_producer_wait(f.p, &job.id, &res, 10000));
    ck_assert_msg(res.status == JOBQ_STATUS_DONE, "status %s, attempt %u: %.*s",
                  jobq_status_name(res.status), res.attempt, (int)res.error_len,
                  res.error ? res.error : "");
    ck_assert_uint_eq(res.attempt, 2); /* B's attempt, after A's lease expired */
    ck_assert_int_eq(ns_stat(f.url, "expired"), 1);
    kill(a, SIGCONT);
    ck_assert_jobq_ok(jobq_producer_wait(f.p, &blocker.id, &res, 10000));
    s_no_more_results(&f, 1000); /* A's late result completes nothing */
    ck_assert_int_eq(ns_stat(f.url, "done"), 2);
    kill(a, SIGTERM);
    kill(b, SIGTERM);
    ck_assert_int_eq(ns_reap(a, 10000), 0);
    ck_assert_int_eq(ns_reap(b, 10000), 0);
    snprintf(out, sizeof out, "%s/w0.out", f.dir);
    ck_assert_int_gt(ns_read_file(out, report, sizeof report), 0);
    ck_assert_msg(strstr(report, "\"stale\":1}"), "A's report: %s", report);
    snprintf(out, sizeof out, "%s/w0.err", f.dir);
    ck_assert_int_gt(ns_read_file(out, report, sizeof report), 0);
    ck_assert_msg(strstr(report, "refused (JOBQ_ESTALE)"), "A's log: %s", report);
    fx_stop(&f);
}
END_TEST

START_TEST(test_forked_worker_killed_under_its_pool_is_restarted_and_its_job_done)
{
    fx_t f;
    fx_start(&f);
    jobq_pool_t *pool = ns_pool_start(f.url, 1, "sleep", 200, 0);
    ck_assert_ptr_nonnull(pool);
    jobq_job_t job;
    ns_job(&job, "q", "800", 20000, 3);
    ck_assert_jobq_ok(jobq_producer_submit(f.p, &job, 10000));
    ck_assert_int_eq(ns_wait_stat(f.url, "held", 1, 10000), 0);
    pid_t pid;
    ck_assert_uint_eq(jobq_pool_pids(pool, &pid, 1), 1);
    kill(pid, SIGKILL);
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_producer_wait(f.p, &job.id, &res, 20000));
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_eq(res.attempt, 2);
    ck_assert_jobq_ok(jobq_producer_stop_workers(f.p, NULL, 0));
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 10000, &rep));
    ck_assert_uint_eq(rep.deaths, 1);
    ck_assert_uint_eq(rep.restarts, 1);
    ck_assert_uint_eq(rep.done, 1);
    jobq_pool_destroy(&pool);
    fx_stop(&f);
}
END_TEST

/* Submits n echo jobs and checks each result. */
static void
s_echo_round(jobq_producer_t *p, int n)
{
    jobq_job_t jobs[16];
    char texts[16][16];
    for (int i = 0; i < n; i++) {
        snprintf(texts[i], sizeof texts[i], "r-%d", i);
        ns_job(&jobs[i], "q", texts[i], 0, 0);
    }
    ck_assert_jobq_ok(jobq_producer_submit_batch(p, jobs, (size_t)n, NULL, 10000));
    for (int i = 0; i < n; i++) {
        jobq_result_t res;
        ck_assert_jobq_ok(jobq_producer_wait(p, &jobs[i].id, &res, 20000));
        ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
        ck_assert_uint_eq(res.output_len, strlen(texts[i]));
        ck_assert_mem_eq(res.output, texts[i], res.output_len);
    }
}

static void
s_broker_restart(int sig)
{
    fx_t f;
    fx_start(&f);
    jobq_pool_t *pool = ns_pool_start(f.url, 2, "echo", 200, 4);
    ck_assert_ptr_nonnull(pool);
    s_echo_round(f.p, 10);
    jobq_producer_destroy(&f.p);
    int st = ns_broker_stop(&f.broker, sig, 10000);
    ck_assert_msg(sig == SIGKILL || (WIFEXITED(st) && WEXITSTATUS(st) == 0), "broker %d", st);
    ck_assert_int_eq(ns_broker_start(&f.broker, f.url, NULL), 0);
    /* The workers find the new broker and say HELLO and READY again. */
    ck_assert_int_eq(ns_wait_stat(f.url, "worker", 2, 15000), 0);
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &f.p));
    s_echo_round(f.p, 10);
    ck_assert_jobq_ok(jobq_producer_stop_workers(f.p, NULL, 0));
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 10000, &rep));
    ck_assert_uint_eq(rep.done, 20);
    ck_assert_uint_eq(rep.deaths, 0);
    jobq_pool_destroy(&pool);
    fx_stop(&f);
}

START_TEST(test_broker_killed_and_restarted_workers_register_again)
{
    s_broker_restart(SIGKILL);
}
END_TEST

START_TEST(test_broker_stopped_and_restarted_workers_register_again)
{
    s_broker_restart(SIGTERM);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("net_faults");
    TCase *tc = tcase_create("net_faults");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_killed_worker_job_runs_again_elsewhere_within_a_second);
    tcase_add_test(tc, test_sigstopped_worker_late_result_is_refused_as_stale);
    tcase_add_test(tc, test_forked_worker_killed_under_its_pool_is_restarted_and_its_job_done);
    tcase_add_test(tc, test_broker_killed_and_restarted_workers_register_again);
    tcase_add_test(tc, test_broker_stopped_and_restarted_workers_register_again);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return jobq_test_run(s_suite());
}
