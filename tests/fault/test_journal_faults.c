/*
 * tests/fault/test_journal_faults.c: the broker journal with real `jobq
 * broker` processes (RELIABILITY.md §3.2 and §3.3, sized for CI per §3.9):
 *   - SIGKILL of the broker under load (4 producers, 2 workers) with
 *     `always` (3 cycles) and with batch:50 and never: every acknowledged job
 *     completes, and each producer sees exactly one result per job;
 *   - a kill at the N-th fdatasync (strace inject) for N = 2, 3, 10: every job
 *     whose ack arrived is there after a restart;
 *   - power loss: the journal cut to its synced end plus a torn record: the
 *     broker starts, says it ignored the torn tail, and every acked job is back;
 *   - the batch flush timer syncs an idle broker within MS;
 *   - two restarts without traffic give the same state;
 *   - a second broker on the same journal exits non-zero with "journal locked";
 *   - a flipped bit mid-file refuses to start (exit 3, naming the offset) and
 *     --recover starts with a prefix;
 *   - disk full (fallocate ENOSPC injected): submits refused with
 *     JOBQ_ENOSPC, nothing acked, the broker up, completions still journaled;
 *   - fdatasync EIO: no acknowledgement after the first failure (fail-stop).
 * Tests that need strace skip themselves (pass with a note) when it is absent.
 */
#include "broker/journal.h"
#include "jobq/errors.h"
#include "jobq/pool.h"
#include "jobq/producer.h"
#include "jobq_test.h"
#include "net_support.h"
#include "wire_client.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct fx {
    char dir[256];
    char url[320];
    char jdir[320];
    char policy[32];
    ns_broker_t broker;
    pid_t strace; /* a broker run under strace, or 0 */
} fx_t;

static void
s_nap(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void
fx_init(fx_t *f, const char *policy)
{
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(ns_tempdir(f->dir, sizeof f->dir), 0);
    snprintf(f->url, sizeof f->url, "ipc://%s/b.sock", f->dir);
    snprintf(f->jdir, sizeof f->jdir, "%s/j", f->dir);
    snprintf(f->policy, sizeof f->policy, "%s", policy);
}

static int
fx_start(fx_t *f, const char *extra)
{
    const char *args[] = {"--journal", f->jdir, "--fsync", f->policy, extra, NULL};
    return ns_broker_start(&f->broker, f->url, args);
}

static void
fx_rm(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[700];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0)
            fx_rm(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* SIGKILLs a broker run under strace (its pid is in the journal's lock
 * file: killing strace alone would leave the broker running), reaps strace. */
static void
s_kill_traced(fx_t *f)
{
    char path[400], buf[32];
    snprintf(path, sizeof path, "%s/lock", f->jdir);
    if (ns_read_file(path, buf, sizeof buf) > 0 && atoi(buf) > 1)
        kill((pid_t)atoi(buf), SIGKILL);
    ns_reap(f->strace, 5000);
    f->strace = 0;
}

static void
fx_fini(fx_t *f)
{
    if (f->broker.pid > 0)
        ns_broker_stop(&f->broker, SIGKILL, 5000);
    if (f->strace > 0)
        s_kill_traced(f);
    fx_rm(f->dir);
}

static int
s_have_strace(void)
{
    return system("strace -V >/dev/null 2>&1") == 0;
}

/* Starts the broker under strace with the given -e options; waits for its
 * "listening on" line in DIR/st.out. Returns 0 or -1. */
static int
s_strace_broker(fx_t *f, const char *trace, const char *inject)
{
    char out[400], err[400];
    snprintf(out, sizeof out, "%s/st.out", f->dir);
    snprintf(err, sizeof err, "%s/st.err", f->dir);
    const char *bin = getenv("JOBQ_BIN");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        execlp("strace", "strace", "-o", "/dev/null", "-e", trace, "-e", inject, bin, "broker",
               "--listen", f->url, "--journal", f->jdir, "--fsync", f->policy, (char *)NULL);
        _exit(127);
    }
    f->strace = pid;
    for (int i = 0; i < 1000; i++) {
        char buf[4096];
        if (ns_read_file(out, buf, sizeof buf) > 0 && strstr(buf, "listening on"))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            f->strace = 0;
            return -1;
        }
        s_nap(10);
    }
    return -1;
}

static void
s_jobs(jobq_job_t *jobs, size_t n, char (*texts)[32], const char *tag)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(texts[i], 32, "%s-%zu", tag, i);
        ns_job(&jobs[i], "q", texts[i], 0, 0);
    }
}

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
    static const char *queues[] = {"q"};
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.url = f.url;
    o.workers = 2;
    o.builtin = "echo";
    o.heartbeat_ms = 200;
    o.prefetch = 16;
    o.queues = queues;
    o.nqueues = 1;
    jobq_pool_t *pool = NULL;
    ck_assert_jobq_ok(jobq_pool_new(&o, &pool));
    ck_assert_jobq_ok(jobq_pool_start(pool));
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
    s_kill9_under_load("batch:50", 2);
    s_kill9_under_load("never", 2);
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

/* The path of the newest segment. */
static void
s_last_segment(const fx_t *f, char *out, size_t len)
{
    DIR *d = opendir(f->jdir);
    struct dirent *e;
    char best[256] = "";
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "seg-", 4) == 0 && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    ck_assert_str_ne(best, "");
    snprintf(out, len, "%s/%s", f->jdir, best);
}

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
    tcase_add_test(tc, test_kill9_under_load_always_loses_no_acked_job_and_no_result_twice);
    tcase_add_test(tc, test_kill9_under_load_batch_and_never_lose_no_acked_job);
    tcase_add_test(tc, test_a_kill_at_the_nth_fdatasync_loses_no_acked_job);
    tcase_add_test(tc,
                   test_power_loss_cut_at_the_synced_end_plus_a_torn_record_keeps_every_acked_job);
    tcase_add_test(tc, test_the_batch_timer_syncs_an_idle_broker_within_its_window);
    tcase_add_test(tc, test_two_restarts_without_traffic_give_the_same_state);
    tcase_add_test(tc, test_a_second_broker_on_the_same_journal_exits_with_journal_locked);
    tcase_add_test(tc, test_a_flipped_bit_mid_file_refuses_to_start_and_recover_keeps_a_prefix);
    tcase_add_test(tc, test_disk_full_refuses_submits_and_still_journals_completions);
    tcase_add_test(tc, test_an_fdatasync_error_stops_every_later_acknowledgement);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
