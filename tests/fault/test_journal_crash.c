/*
 * tests/fault/test_journal_crash.c: crashes of a journaled `jobq broker`
 * (RELIABILITY.md §3.2, sized for CI per §3.9): SIGKILL under load (4
 * producers, 2 workers) with `always` (3 cycles) and with batch:50 and never
 * (every acknowledged job completes, each producer sees exactly one result per
 * job); a kill at the N-th fdatasync (strace inject) for N = 2, 3, 10 (every
 * job whose ack arrived is there after a restart); power loss (the journal cut
 * to its synced end plus a torn record: the broker starts, says it ignored the
 * torn tail, every acked job is back). Tests that need strace pass with no
 * check when it is absent. Fixture: journal_fx.h.
 */
#include "journal_fx.h"

/* ---- SIGKILL under load ----------------------------------------------------- */

#define PRODUCERS 4
#define PER_PRODUCER 200

/* A producer child: submits PER_PRODUCER jobs in batches, waits for each
 * result, then checks no second result arrives. Exit 0 when all is well. */
static int
s_producer_child(const char *url, int k)
{
    jobq_producer_t *p = NULL;
    if (jobq_producer_open(url, NULL, &p) != JOBQ_OK)
        return 10;
    static jobq_job_t jobs[PER_PRODUCER];
    static char texts[PER_PRODUCER][32];
    char tag[16];
    snprintf(tag, sizeof tag, "p%d", k);
    s_jobs(jobs, PER_PRODUCER, texts, tag);
    for (size_t i = 0; i < PER_PRODUCER; i += 50)
        if (jobq_producer_submit_batch(p, jobs + i, 50, NULL, 60000) != JOBQ_OK)
            return 11;
    for (size_t i = 0; i < PER_PRODUCER; i++) {
        jobq_result_t r;
        if (jobq_producer_wait(p, &jobs[i].id, &r, 60000) != JOBQ_OK)
            return 12;
        if (r.status != JOBQ_STATUS_DONE || r.output_len != strlen(texts[i]) ||
            memcmp(r.output, texts[i], r.output_len) != 0)
            return 13;
    }
    jobq_result_t extra;
    if (jobq_producer_next_result(p, &extra, 500) == JOBQ_OK)
        return 14; /* a second result for a job */
    jobq_producer_destroy(&p);
    return 0;
}

static void
s_kill9_under_load(const char *policy, int cycles)
{
    fx_t f;
    fx_init(&f, policy);
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    jobq_pool_t *pool = ns_pool_start(f.url, 2, "echo", 200, 16);
    ck_assert_ptr_nonnull(pool);
    pid_t kids[PRODUCERS];
    for (int k = 0; k < PRODUCERS; k++) {
        fflush(NULL);
        kids[k] = fork();
        if (kids[k] == 0)
            _exit(s_producer_child(f.url, k));
    }
    srand((unsigned)getpid());
    for (int c = 0; c < cycles; c++) {
        s_nap(200 + rand() % 400);
        ns_broker_stop(&f.broker, SIGKILL, 5000);
        ck_assert_int_eq(fx_start(&f, NULL), 0);
    }
    for (int k = 0; k < PRODUCERS; k++) {
        int st = ns_reap(kids[k], 120000);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "producer %d: status %d (exit %d)", k,
                      st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    ck_assert_jobq_ok(jobq_producer_stop_workers(p, NULL, 0));
    jobq_producer_destroy(&p);
    jobq_pool_report_t rep;
    jobq_pool_wait(pool, 20000, &rep);
    jobq_pool_destroy(&pool);
    fx_fini(&f);
}

START_TEST(test_kill9_under_load_always_loses_no_acked_job_and_no_result_twice)
{
    s_kill9_under_load("always", 3);
}
END_TEST

START_TEST(test_kill9_under_load_batch_and_never_lose_no_acked_job)
{
    s_kill9_under_load("batch:50", 1);
    s_kill9_under_load("never", 1);
}
END_TEST

/* ---- kill at the N-th fdatasync --------------------------------------------- */

static void
s_kill_at_sync(int n)
{
    fx_t f;
    fx_init(&f, "always");
    char inject[64];
    snprintf(inject, sizeof inject, "inject=fdatasync:signal=KILL:when=%d", n);
    ck_assert_int_eq(s_strace_broker(&f, "trace=fdatasync", inject), 0);
    jobq_producer_opts_t po;
    memset(&po, 0, sizeof po);
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    static jobq_job_t jobs[40];
    static char texts[40][32];
    s_jobs(jobs, 40, texts, "s");
    size_t acked = 0;
    while (acked < 40 && jobq_producer_submit(p, &jobs[acked], 1000) == JOBQ_OK)
        acked++;
    jobq_producer_destroy(&p);
    int st = ns_reap(f.strace, 10000);
    f.strace = 0;
    ck_assert_msg(st != -1, "the broker was not killed at fdatasync %d (acked %zu)", n, acked);
    ck_assert_uint_lt(acked, 40);
    ck_assert_int_eq(fx_start(&f, NULL), 0); /* no startup error */
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    for (size_t i = 0; i < acked; i++) {
        jobq_job_t again = jobs[i];
        ck_assert_int_eq(jobq_producer_submit(p, &again, 5000), JOBQ_EDUPLICATE);
    }
    jobq_producer_destroy(&p);
    fx_fini(&f);
}

START_TEST(test_a_kill_at_the_nth_fdatasync_loses_no_acked_job)
{
    if (!s_have_strace())
        return;
    static const int ns[] = {2, 3, 10};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        s_kill_at_sync(ns[i]);
}
END_TEST

/* ---- power loss --------------------------------------------------------------- */

START_TEST(test_power_loss_cut_at_the_synced_end_plus_a_torn_record_keeps_every_acked_job)
{
    fx_t f;
    fx_init(&f, "always");
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    static jobq_job_t jobs[200];
    static char texts[200][32];
    s_jobs(jobs, 200, texts, "pl");
    for (size_t i = 0; i < 200; i += 20)
        ck_assert_jobq_ok(jobq_producer_submit_batch(p, jobs + i, 20, NULL, 10000));
    jobq_producer_destroy(&p);
    ns_broker_stop(&f.broker, SIGKILL, 5000);
    /* With `always` everything acked was synced: the synced end is the end of
     * the valid records; the preallocated zeros after it could be lost. */
    char seg[700];
    s_last_segment(&f, seg, sizeof seg);
    int fd = open(seg, O_RDWR);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    unsigned char *b = malloc((size_t)sb.st_size);
    ck_assert_int_eq(pread(fd, b, (size_t)sb.st_size, 0), (int)sb.st_size);
    journal_scan_t sc;
    ck_assert_jobq_ok(journal_scan_buf(b, (size_t)sb.st_size, NULL, NULL, &sc));
    ck_assert_int_eq(ftruncate(fd, (off_t)sc.end), 0);
    /* A torn tail: the first 40 bytes of a record (its header and part of its body). */
    ck_assert_int_eq(pwrite(fd, b + 32, 40, (off_t)sc.end), 40);
    close(fd);
    free(b);
    char out[400], err[400];
    snprintf(out, sizeof out, "%s/b2.out", f.dir);
    snprintf(err, sizeof err, "%s/b2.err", f.dir);
    setenv("JOBQ_LOG", "notice", 1);
    const char *argv[] = {"broker", "--listen", f.url, "--journal", f.jdir, NULL};
    pid_t pid = ns_spawn(argv, out, err);
    char buf[8192];
    int up = 0;
    for (int i = 0; i < 1000 && !up; i++, s_nap(10))
        up = ns_read_file(out, buf, sizeof buf) > 0 && strstr(buf, "listening on") != NULL;
    ck_assert_msg(up, "the broker did not start after the power loss");
    ck_assert_int_eq(ns_stat(f.url, "jobs"), 200);
    kill(pid, SIGTERM);
    ns_reap(pid, 10000);
    ck_assert_int_gt(ns_read_file(err, buf, sizeof buf), 0);
    ck_assert_msg(strstr(buf, "torn") != NULL, "no torn-tail note in: %s", buf);
    fx_fini(&f);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("journal_crash");
    TCase *tc = tcase_create("journal_crash");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, test_kill9_under_load_always_loses_no_acked_job_and_no_result_twice);
    tcase_add_test(tc, test_kill9_under_load_batch_and_never_lose_no_acked_job);
    tcase_add_test(tc, test_a_kill_at_the_nth_fdatasync_loses_no_acked_job);
    tcase_add_test(tc,
                   test_power_loss_cut_at_the_synced_end_plus_a_torn_record_keeps_every_acked_job);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
