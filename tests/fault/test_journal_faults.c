/*
 * tests/fault/test_journal_faults.c: storage faults and operations of a
 * journaled `jobq broker` (RELIABILITY.md §3.2-3.3): the batch flush timer
 * syncs an idle broker within MS; two restarts without traffic give the same
 * state; a second broker on the same journal exits non-zero with "journal
 * locked"; a flipped bit mid-file refuses to start (exit 3, naming the
 * offset) and --recover starts with a prefix; disk full (fallocate ENOSPC
 * injected with strace): submits refused with JOBQ_ENOSPC, nothing acked, the
 * broker up, completions still journaled; fdatasync EIO: no acknowledgement
 * after the first failure (fail-stop). Fixture: journal_fx.h.
 */
#include "journal_fx.h"

/* ---- batch flush timer, idempotent restarts, lock, bit flip ------------------ */

START_TEST(test_the_batch_timer_syncs_an_idle_broker_within_its_window)
{
    fx_t f;
    fx_init(&f, "batch:200");
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    long long base = ns_stat(f.url, "syncs");
    ck_assert_int_ge(base, 0);
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    jobq_job_t job;
    ns_job(&job, "q", "idle", 0, 0);
    ck_assert_jobq_ok(jobq_producer_submit(p, &job, 5000));
    int64_t t0 = wc_now_ms();
    jobq_producer_destroy(&p);
    while (ns_stat(f.url, "syncs") <= base && wc_now_ms() - t0 < 5000)
        s_nap(5);
    int64_t took = wc_now_ms() - t0;
    ck_assert_int_gt(ns_stat(f.url, "syncs"), base);
    ck_assert_msg(took <= 200 + 800, "the sync came %lld ms after the ack", (long long)took);
    fx_fini(&f);
}
END_TEST

/* "jobs", "bytes" and "results" of the broker's STATS, as one string. */
static void
s_state(const fx_t *f, char *out, size_t len)
{
    snprintf(out, len, "jobs=%lld bytes=%lld results=%lld ready=%lld delayed=%lld dead=%lld",
             ns_stat(f->url, "jobs"), ns_stat(f->url, "bytes"), ns_stat(f->url, "results"),
             ns_stat(f->url, "ready"), ns_stat(f->url, "delayed"), ns_stat(f->url, "dead"));
}

START_TEST(test_two_restarts_without_traffic_give_the_same_state)
{
    fx_t f;
    fx_init(&f, "batch:20");
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    static jobq_job_t jobs[30];
    static char texts[30][32];
    s_jobs(jobs, 30, texts, "r");
    for (int i = 0; i < 10; i++)
        jobs[i].delay_ms = 600000;
    ck_assert_jobq_ok(jobq_producer_submit_batch(p, jobs, 30, NULL, 10000));
    jobq_producer_destroy(&p);
    s_nap(100);
    ns_broker_stop(&f.broker, SIGKILL, 5000);
    char a[256], b[256];
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    s_state(&f, a, sizeof a);
    ck_assert_int_eq(ns_broker_stop(&f.broker, SIGTERM, 10000), 0);
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    s_state(&f, b, sizeof b);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(ns_stat(f.url, "jobs"), 30);
    fx_fini(&f);
}
END_TEST

START_TEST(test_a_second_broker_on_the_same_journal_exits_with_journal_locked)
{
    fx_t f;
    fx_init(&f, "always");
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    char url2[400], err[400];
    snprintf(url2, sizeof url2, "ipc://%s/b2.sock", f.dir);
    snprintf(err, sizeof err, "%s/b2.err", f.dir);
    const char *argv[] = {"broker", "--listen", url2, "--journal", f.jdir, NULL};
    pid_t pid = ns_spawn(argv, NULL, err);
    int st = ns_reap(pid, 10000);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    char buf[2048];
    ck_assert_int_gt(ns_read_file(err, buf, sizeof buf), 0);
    ck_assert_msg(strstr(buf, "journal locked") != NULL, "%s", buf);
    ck_assert_int_ge(ns_stat(f.url, "jobs"), 0); /* the first is unaffected */
    fx_fini(&f);
}
END_TEST

START_TEST(test_a_flipped_bit_mid_file_refuses_to_start_and_recover_keeps_a_prefix)
{
    fx_t f;
    fx_init(&f, "always");
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    static jobq_job_t jobs[60];
    static char texts[60][32];
    s_jobs(jobs, 60, texts, "bf");
    for (int i = 0; i < 60; i++)
        ck_assert_jobq_ok(jobq_producer_submit(p, &jobs[i], 5000));
    jobq_producer_destroy(&p);
    ck_assert_int_eq(ns_broker_stop(&f.broker, SIGTERM, 10000), 0);
    char seg[700];
    s_last_segment(&f, seg, sizeof seg);
    int fd = open(seg, O_RDWR);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    off_t at = sb.st_size / 2;
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x04;
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);
    char err[400], buf[4096];
    snprintf(err, sizeof err, "%s/b2.err", f.dir);
    const char *argv[] = {"broker", "--listen", f.url, "--journal", f.jdir, NULL};
    int st = ns_reap(ns_spawn(argv, NULL, err), 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 3, "status %d", st);
    ck_assert_int_gt(ns_read_file(err, buf, sizeof buf), 0);
    ck_assert_msg(strstr(buf, "corrupt at offset") && strstr(buf, "--recover"), "%s", buf);
    ck_assert_int_eq(fx_start(&f, "--recover"), 0);
    long long n = ns_stat(f.url, "jobs");
    ck_assert_int_gt(n, 0);
    ck_assert_int_lt(n, 60);
    fx_fini(&f);
}
END_TEST

/* ---- disk full and I/O errors ---------------------------------------------- */

START_TEST(test_disk_full_refuses_submits_and_still_journals_completions)
{
    if (!s_have_strace())
        return;
    fx_t f;
    fx_init(&f, "always");
    ck_assert_int_eq(
        s_strace_broker(&f, "trace=fallocate", "inject=fallocate:error=ENOSPC:when=2+"), 0);
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    static jobq_job_t jobs[100];
    static char texts[100][32];
    static char big[1024];
    memset(big, 'z', sizeof big);
    int codes[100], refused = 0, accepted = 0;
    jobq_id_t first;
    for (int round = 0; round < 40 && !refused; round++) {
        s_jobs(jobs, 100, texts, "ns");
        for (int i = 0; i < 100; i++) {
            jobs[i].payload = big;
            jobs[i].payload_len = sizeof big;
        }
        jobq_producer_submit_batch(p, jobs, 100, codes, 10000);
        for (int i = 0; i < 100; i++) {
            if (codes[i] == JOBQ_OK && accepted++ == 0)
                first = jobs[i].id;
            else if (codes[i] != JOBQ_OK) {
                ck_assert_int_eq(codes[i], JOBQ_ENOSPC);
                refused++;
            }
        }
    }
    ck_assert_int_gt(accepted, 0);
    ck_assert_int_eq(refused, 100); /* the whole batch, nothing acked */
    /* A worker finishes an accepted job: the completion journals. */
    wc_t *w = wc_connect(f.url);
    ck_assert_jobq_ok(wc_hello(w, 2, 0, "w"));
    ck_assert_int_eq(wc_ready(w, 1, "q"), 0);
    wire_msg_t m;
    ck_assert_jobq_ok(wc_recv_type(w, WIRE_DELIVER, &m, 5000));
    jobq_id_t did = m.jobs[0].id;
    uint32_t attempt = m.jobs[0].attempt;
    wire_msg_fini(&m);
    ck_assert_int_eq(wc_result(w, &did, attempt, JOBQ_STATUS_DONE, "fine"), 0);
    ck_assert_jobq_ok(wc_recv_type(w, WIRE_RESULT_OK, &m, 5000));
    wire_msg_fini(&m);
    wc_close(&w);
    ck_assert_int_eq(ns_stat(f.url, "done"), 1);
    char sbuf[16384];
    ck_assert_int_gt(ns_stats(f.url, sbuf, sizeof sbuf), 0);
    ck_assert_ptr_nonnull(strstr(sbuf, "\"failed\":false"));
    /* The broker, killed and started without the fault, still has the result. */
    s_kill_traced(&f);
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    jobq_producer_destroy(&p);
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    jobq_result_t r;
    ck_assert_jobq_ok(jobq_producer_wait(p, &did, &r, 5000));
    ck_assert_int_eq(r.status, JOBQ_STATUS_DONE);
    ck_assert_uint_eq(r.output_len, 4);
    (void)first;
    /* Room again: submits are accepted. */
    jobq_job_t job;
    ns_job(&job, "q", "after", 0, 0);
    ck_assert_jobq_ok(jobq_producer_submit(p, &job, 5000));
    jobq_producer_destroy(&p);
    fx_fini(&f);
}
END_TEST

START_TEST(test_an_fdatasync_error_stops_every_later_acknowledgement)
{
    if (!s_have_strace())
        return;
    fx_t f;
    fx_init(&f, "always");
    ck_assert_int_eq(s_strace_broker(&f, "trace=fdatasync", "inject=fdatasync:error=EIO:when=4+"),
                     0);
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    static jobq_job_t jobs[20];
    static char texts[20][32];
    s_jobs(jobs, 20, texts, "eio");
    int ok = 0, failed_at = -1;
    for (int i = 0; i < 20; i++) {
        int rc = jobq_producer_submit(p, &jobs[i], 3000);
        if (rc == JOBQ_OK) {
            ck_assert_msg(failed_at < 0, "job %d acked after the failure at %d", i, failed_at);
            ok++;
        } else {
            ck_assert_msg(rc == JOBQ_EIO, "job %d: %s", i, jobq_errname(rc));
            if (failed_at < 0)
                failed_at = i;
        }
    }
    ck_assert_int_eq(ok, 2); /* fdatasync 1 is the start, 2 and 3 ack two jobs */
    char sbuf[16384];
    ck_assert_int_gt(ns_stats(f.url, sbuf, sizeof sbuf), 0);
    ck_assert_ptr_nonnull(strstr(sbuf, "\"failed\":true"));
    jobq_producer_destroy(&p);
    fx_fini(&f);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("journal_faults");
    TCase *tc = tcase_create("journal_faults");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, test_the_batch_timer_syncs_an_idle_broker_within_its_window);
    tcase_add_test(tc, test_two_restarts_without_traffic_give_the_same_state);
    tcase_add_test(tc, test_a_second_broker_on_the_same_journal_exits_with_journal_locked);
    tcase_add_test(tc, test_a_flipped_bit_mid_file_refuses_to_start_and_recover_keeps_a_prefix);
    tcase_add_test(tc, test_disk_full_refuses_submits_and_still_journals_completions);
    tcase_add_test(tc, test_an_fdatasync_error_stops_every_later_acknowledgement);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
