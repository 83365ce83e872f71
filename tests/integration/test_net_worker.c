/*
 * tests/integration/test_net_worker.c: network workers (jobq_pool_t over a
 * broker URL, and `jobq worker` processes) serving a real `jobq broker` on an
 * ipc:// path in a temp dir, with producers through the producer API.
 *
 * Behaviours: every result exactly once through forked and threaded pools;
 * --exec and built-ins; sentinels end each worker with its report; heartbeats
 * keep flowing while a handler runs; leases are extended for jobs that run
 * past their ttr counted from delivery; the prefetch cap holds; a SIGTERMed
 * pool finishes its running job and hands its prefetched jobs back; a
 * no_results producer gets no pushed results but jobq_producer_wait fetches
 * each.
 */
#include "jobq/errors.h"
#include "jobq/pool.h"
#include "jobq/producer.h"
#include "jobq_test.h"
#include "net_support.h"
#include "wire_client.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A broker, a producer on it, and optionally an in-process pool. */
typedef struct fx {
    wc_broker_t broker;
    jobq_producer_t *p;
    jobq_pool_t *pool;
} fx_t;

static void
fx_start(fx_t *f)
{
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(wc_broker_start(&f->broker, NULL), 0);
    ck_assert_jobq_ok(jobq_producer_open(f->broker.url, NULL, &f->p));
}

/* Starts a pool on the fixture's broker serving queue q. */
static void
fx_pool(fx_t *f, jobq_pool_mode mode, unsigned n, const char *builtin, uint32_t prefetch,
        uint32_t hb_ms, const char *q)
{
    static const char *queues[1];
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    queues[0] = q;
    o.url = f->broker.url;
    o.mode = mode;
    o.workers = n;
    o.builtin = builtin;
    o.prefetch = prefetch;
    o.heartbeat_ms = hb_ms;
    o.queues = queues;
    o.nqueues = 1;
    ck_assert_jobq_ok(jobq_pool_new(&o, &f->pool));
    ck_assert_jobq_ok(jobq_pool_start(f->pool));
}

static void
fx_stop(fx_t *f)
{
    jobq_pool_destroy(&f->pool);
    jobq_producer_destroy(&f->p);
    wc_broker_stop(&f->broker, 5000);
}

/* Submits n jobs "job-I" to q and checks that each result arrives once, with
 * the output out_fn gives (NULL: the payload itself). */
static void
s_roundtrip(fx_t *f, const char *q, int n, const char *upper_prefix)
{
    jobq_job_t *jobs = calloc((size_t)n, sizeof *jobs);
    char(*texts)[16] = calloc((size_t)n, sizeof *texts);
    unsigned char *seen = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) {
        snprintf(texts[i], sizeof texts[i], "job-%d", i);
        ns_job(&jobs[i], q, texts[i], 0, 0);
    }
    ck_assert_jobq_ok(jobq_producer_submit_batch(f->p, jobs, (size_t)n, NULL, 10000));
    for (int k = 0; k < n; k++) {
        jobq_result_t res;
        ck_assert_jobq_ok(jobq_producer_next_result(f->p, &res, 20000));
        int i = -1;
        for (int j = 0; j < n && i < 0; j++)
            if (!memcmp(&jobs[j].id, &res.id, sizeof res.id))
                i = j;
        ck_assert_msg(i >= 0, "a result for a job we did not submit");
        ck_assert_msg(!seen[i], "job %d has two results", i);
        seen[i] = 1;
        ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
        ck_assert_uint_eq(res.attempt, 1);
        char want[32];
        snprintf(want, sizeof want, "%s%d", upper_prefix ? upper_prefix : "job-", i);
        ck_assert_uint_eq(res.output_len, strlen(want));
        ck_assert_mem_eq(res.output, want, res.output_len);
    }
    jobq_result_t extra;
    ck_assert_jobq_err(jobq_producer_next_result(f->p, &extra, 0), JOBQ_EEMPTY);
    free(jobs);
    free(texts);
    free(seen);
}

/* Stops every worker with sentinels and returns the pool's report. */
static jobq_pool_report_t
s_stop_pool(fx_t *f)
{
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_producer_stop_workers(f->p, NULL, 0));
    ck_assert_jobq_ok(jobq_pool_wait(f->pool, 10000, &rep));
    return rep;
}

START_TEST(test_forked_workers_complete_1000_jobs_each_result_once)
{
    fx_t f;
    fx_start(&f);
    fx_pool(&f, JOBQ_POOL_PROCS, 2, "echo", 16, 0, "q");
    s_roundtrip(&f, "q", 1000, NULL);
    ck_assert_jobq_ok(jobq_producer_join(f.p, "q", 5000));
    jobq_pool_report_t rep = s_stop_pool(&f);
    ck_assert_uint_eq(rep.done, 1000);
    ck_assert_uint_eq(rep.failed + rep.crashed + rep.stale, 0);
    ck_assert_uint_eq(rep.reports, 2);
    ck_assert_uint_eq(rep.deaths, 0);
    fx_stop(&f);
}
END_TEST

START_TEST(test_thread_pool_serves_the_broker)
{
    fx_t f;
    fx_start(&f);
    fx_pool(&f, JOBQ_POOL_THREADS, 2, "upper", 8, 0, "q");
    s_roundtrip(&f, "q", 300, "JOB-");
    jobq_pool_report_t rep = s_stop_pool(&f);
    ck_assert_uint_eq(rep.done, 300);
    ck_assert_uint_eq(rep.reports, 2);
    fx_stop(&f);
}
END_TEST

START_TEST(test_worker_command_runs_exec_jobs_with_their_queue)
{
    fx_t f;
    char dir[256], out[320], err[320], report[4096];
    fx_start(&f);
    ck_assert_int_eq(ns_tempdir(dir, sizeof dir), 0);
    snprintf(out, sizeof out, "%s/worker.out", dir);
    snprintf(err, sizeof err, "%s/worker.err", dir);
    const char *argv[] = {"worker", "-u",     f.broker.url,
                          "-q",     "mail",   "--procs",
                          "1",      "--exec", "printf '%s:' \"$JOBQ_QUEUE\"; tr a-z A-Z",
                          "--json", NULL};
    pid_t w = ns_spawn(argv, out, err);
    ck_assert_int_gt(w, 0);
    jobq_job_t job;
    ns_job(&job, "mail", "hello", 0, 0);
    ck_assert_jobq_ok(jobq_producer_submit(f.p, &job, 10000));
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_producer_wait(f.p, &job.id, &res, 20000));
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_eq(res.output_len, 10);
    ck_assert_mem_eq(res.output, "mail:HELLO", 10);
    ck_assert_jobq_ok(jobq_producer_stop_workers(f.p, "mail", 0));
    int st = ns_reap(w, 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "jobq worker status %d", st);
    ck_assert_int_gt(ns_read_file(out, report, sizeof report), 0);
    ck_assert_msg(strstr(report, "\"done\":1,") && strstr(report, "\"reports\":1,"), "%s", report);
    unlink(out);
    unlink(err);
    rmdir(dir);
    fx_stop(&f);
}
END_TEST

START_TEST(test_stop_workers_makes_each_worker_report_and_the_pool_exit)
{
    fx_t f;
    fx_start(&f);
    fx_pool(&f, JOBQ_POOL_PROCS, 2, "echo", 4, 0, "q");
    ck_assert_int_eq(ns_wait_stat(f.broker.url, "worker", 2, 10000), 0);
    jobq_pool_report_t rep = s_stop_pool(&f);
    ck_assert_uint_eq(rep.reports, 2);
    ck_assert_uint_eq(rep.deaths, 0);
    ck_assert_uint_eq(rep.restarts, 0);
    /* Each worker's REPORT reached the broker before it left. */
    ck_assert_int_eq(ns_wait_stat(f.broker.url, "reports", 2, 5000), 0);
    ck_assert_int_eq(ns_wait_stat(f.broker.url, "worker", 0, 5000), 0);
    ck_assert_int_eq(ns_stat(f.broker.url, "sentinels"), 2);
    fx_stop(&f);
}
END_TEST

START_TEST(test_job_longer_than_three_heartbeats_is_not_redelivered)
{
    fx_t f;
    fx_start(&f);
    fx_pool(&f, JOBQ_POOL_PROCS, 1, "sleep", 1, 200, "q");
    jobq_job_t job;
    ns_job(&job, "q", "1500", 10000, 3);
    ck_assert_jobq_ok(jobq_producer_submit(f.p, &job, 10000));
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_producer_wait(f.p, &job.id, &res, 20000));
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_eq(res.attempt, 1);
    ck_assert_uint_ge(res.duration_us, 1500000);
    ck_assert_int_eq(ns_stat(f.broker.url, "workers_lost"), 0);
    ck_assert_int_eq(ns_stat(f.broker.url, "peers_expired"), 0);
    fx_stop(&f);
}
END_TEST

/* Two 700 ms jobs with a 1000 ms ttr delivered together (prefetch 2): the
 * second starts 700 ms after its delivery and ends at 1400 ms, past its ttr
 * counted from delivery; the worker's EXTENDs keep its lease. */
START_TEST(test_job_running_past_its_ttr_from_delivery_keeps_its_lease)
{
    fx_t f;
    fx_start(&f);
    fx_pool(&f, JOBQ_POOL_PROCS, 1, "sleep", 2, 200, "q");
    jobq_job_t jobs[2];
    ns_job(&jobs[0], "q", "700", 1000, 3);
    ns_job(&jobs[1], "q", "700", 1000, 3);
    ck_assert_jobq_ok(jobq_producer_submit_batch(f.p, jobs, 2, NULL, 10000));
    for (int i = 0; i < 2; i++) {
        jobq_result_t res;
        ck_assert_jobq_ok(jobq_producer_wait(f.p, &jobs[i].id, &res, 20000));
        ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
        ck_assert_uint_eq(res.attempt, 1); /* delivered once */
    }
    ck_assert_int_eq(ns_stat(f.broker.url, "expired"), 0);
    ck_assert_int_gt(ns_stat(f.broker.url, "extended"), 0);
    fx_stop(&f);
}
END_TEST

START_TEST(test_prefetch_caps_the_jobs_a_worker_holds)
{
    fx_t f;
    fx_start(&f);
    fx_pool(&f, JOBQ_POOL_PROCS, 1, "sleep", 3, 0, "q");
    jobq_job_t jobs[12];
    for (int i = 0; i < 12; i++)
        ns_job(&jobs[i], "q", "100", 0, 0);
    ck_assert_jobq_ok(jobq_producer_submit_batch(f.p, jobs, 12, NULL, 10000));
    long long most = 0;
    int results = 0;
    while (results < 12) {
        long long held = ns_stat(f.broker.url, "held");
        ck_assert_int_le(held, 3);
        if (held > most)
            most = held;
        jobq_result_t res;
        int rc = jobq_producer_next_result(f.p, &res, 20);
        if (rc == JOBQ_OK)
            results++;
        else
            ck_assert_msg(rc == JOBQ_ETIMEDOUT || rc == JOBQ_EEMPTY, "%s", jobq_errname(rc));
    }
    ck_assert_int_eq(most, 3);
    ck_assert_int_eq(ns_stat(f.broker.url, "credit"), 3);
    fx_stop(&f);
}
END_TEST

START_TEST(test_sigterm_finishes_the_running_job_and_hands_back_the_rest)
{
    fx_t f;
    fx_start(&f);
    fx_pool(&f, JOBQ_POOL_PROCS, 1, "sleep", 3, 0, "q");
    jobq_job_t jobs[3];
    for (int i = 0; i < 3; i++)
        ns_job(&jobs[i], "q", "600", 0, 0);
    ck_assert_jobq_ok(jobq_producer_submit_batch(f.p, jobs, 3, NULL, 10000));
    ck_assert_int_eq(ns_wait_stat(f.broker.url, "held", 3, 10000), 0);
    jobq_pool_stop(f.pool, 0); /* what the binary does on SIGTERM */
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_producer_wait(f.p, &jobs[0].id, &res, 10000));
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(f.pool, 10000, &rep));
    ck_assert_uint_eq(rep.done, 1);
    ck_assert_uint_eq(rep.reports, 1);
    /* The two prefetched jobs went back to ready at no cost. */
    ck_assert_int_eq(ns_wait_stat(f.broker.url, "ready", 2, 5000), 0);
    ck_assert_int_eq(ns_stat(f.broker.url, "released"), 2);
    fx_stop(&f);
}
END_TEST

/* A producer opened with no_results gets no pushed results (next_result
 * times out after join), yet jobq_producer_wait still fetches each one. */
START_TEST(test_no_results_producer_gets_no_pushes_but_wait_fetches_each)
{
    fx_t f;
    fx_start(&f);
    fx_pool(&f, JOBQ_POOL_THREADS, 2, "echo", 4, 0, "q");
    jobq_producer_opts_t po = {0};
    po.no_results = 1;
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.broker.url, &po, &p));
    jobq_job_t jobs[10];
    char texts[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(texts[i], sizeof texts[i], "quiet-%d", i);
        ns_job(&jobs[i], "q", texts[i], 0, 0);
    }
    ck_assert_jobq_ok(jobq_producer_submit_batch(p, jobs, 10, NULL, 10000));
    ck_assert_jobq_ok(jobq_producer_join(p, "q", 10000));
    jobq_result_t res;
    ck_assert_jobq_err(jobq_producer_next_result(p, &res, 200), JOBQ_ETIMEDOUT);
    for (int i = 0; i < 10; i++) {
        ck_assert_jobq_ok(jobq_producer_wait(p, &jobs[i].id, &res, 5000));
        ck_assert_mem_eq(&res.id, &jobs[i].id, sizeof res.id);
        ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
        ck_assert_uint_eq(res.output_len, strlen(texts[i]));
        ck_assert_mem_eq(res.output, texts[i], res.output_len);
    }
    jobq_producer_destroy(&p);
    fx_stop(&f);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("net_worker");
    TCase *tc = tcase_create("net_worker");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_forked_workers_complete_1000_jobs_each_result_once);
    tcase_add_test(tc, test_thread_pool_serves_the_broker);
    tcase_add_test(tc, test_worker_command_runs_exec_jobs_with_their_queue);
    tcase_add_test(tc, test_stop_workers_makes_each_worker_report_and_the_pool_exit);
    tcase_add_test(tc, test_job_longer_than_three_heartbeats_is_not_redelivered);
    tcase_add_test(tc, test_job_running_past_its_ttr_from_delivery_keeps_its_lease);
    tcase_add_test(tc, test_prefetch_caps_the_jobs_a_worker_holds);
    tcase_add_test(tc, test_sigterm_finishes_the_running_job_and_hands_back_the_rest);
    tcase_add_test(tc, test_no_results_producer_gets_no_pushes_but_wait_fetches_each);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return jobq_test_run(s_suite());
}
