/*
 * tests/fault/test_journal_power.c: whole-system crashes of a journaled
 * `jobq broker` (RELIABILITY.md §3.2): every process dies at once (the broker
 * with `always`, the supervisor of a forked pool and its network workers,
 * while producers run): after a restart on the same journal dir with new
 * workers, every acknowledged job completes and each producer sees exactly
 * one result per job (by wait, or by next_result); next_result gets each
 * result of the jobs accepted before a restart, once; and a power loss under
 * `batch:200` (the segment cut to the synced offset the broker reported just
 * before its SIGKILL): every job lost was acknowledged within the last
 * 200 ms + slack. Fixture: journal_fx.h.
 */
#include "journal_fx.h"

#include "common/clock.h"

/* ---- everything dies at once ------------------------------------------------- */

#define AD_PRODUCERS 3
#define AD_PER_PRODUCER 150
#define AD_JOB_MS "8" /* each job sleeps this long: the run lasts about 2 s */

/* A producer child: submits its jobs in batches of 25 (the producer API
 * resends across the broker's death), waits for each job's result (producer
 * 0 takes them with next_result instead), then checks that no second result
 * arrives. Exit 0 when all is well. */
static int
s_ad_producer(const char *url, int k)
{
    jobq_producer_t *p = NULL;
    if (jobq_producer_open(url, NULL, &p) != JOBQ_OK)
        return 10;
    static jobq_job_t jobs[AD_PER_PRODUCER];
    for (size_t i = 0; i < AD_PER_PRODUCER; i++)
        ns_job(&jobs[i], "q", AD_JOB_MS, 0, 3); /* a crashed attempt is retried */
    for (size_t i = 0; i < AD_PER_PRODUCER; i += 25)
        if (jobq_producer_submit_batch(p, jobs + i, 25, NULL, 60000) != JOBQ_OK)
            return 11;
    static unsigned char seen[AD_PER_PRODUCER];
    for (size_t n = 0; k == 0 && n < AD_PER_PRODUCER; n++) {
        /* Producer 0 takes results in arrival order, across the restart. */
        jobq_result_t r;
        if (jobq_producer_next_result(p, &r, 60000) != JOBQ_OK)
            return 15;
        size_t i = 0;
        while (i < AD_PER_PRODUCER && memcmp(&r.id, &jobs[i].id, sizeof r.id) != 0)
            i++;
        if (i == AD_PER_PRODUCER || seen[i] || r.status != JOBQ_STATUS_DONE) {
            fprintf(stderr, "producer 0 result %zu: job %zu, seen %d, status %d\n", n, i,
                    i < AD_PER_PRODUCER ? seen[i] : -1, (int)r.status);
            return 16;
        }
        seen[i] = 1;
    }
    for (size_t i = 0; k != 0 && i < AD_PER_PRODUCER; i++) {
        jobq_result_t r;
        if (jobq_producer_wait(p, &jobs[i].id, &r, 60000) != JOBQ_OK)
            return 12;
        if (r.status != JOBQ_STATUS_DONE || memcmp(&r.id, &jobs[i].id, sizeof r.id) != 0) {
            fprintf(stderr, "producer %d job %zu: status %d attempts %u error %.*s\n", k, i,
                    (int)r.status, r.attempt, (int)r.error_len, r.error ? r.error : "");
            return 13;
        }
    }
    jobq_result_t extra;
    if (jobq_producer_next_result(p, &extra, 500) == JOBQ_OK)
        return 14; /* a second result for a job */
    jobq_producer_destroy(&p);
    return 0;
}

/* Forks a process that runs a pool of 3 forked network workers (builtin
 * sleep) until a sentinel stops them. Returns its pid. */
static pid_t
s_pool_proc(const char *url)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jobq_pool_t *pool = ns_pool_start(url, 3, "sleep", 200, 4);
        if (!pool)
            _exit(20);
        jobq_pool_report_t rep;
        jobq_pool_wait(pool, 120000, &rep);
        jobq_pool_destroy(&pool);
        _exit(0);
    }
    return pid;
}

/* Reads state and ppid of pid from /proc; returns 0, or -1 when it is gone. */
static int
s_proc(pid_t pid, char *state, int *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (ns_read_file(path, buf, sizeof buf) <= 0)
        return -1;
    const char *rp = strrchr(buf, ')'); /* after "pid (comm)": state ppid */
    return rp && sscanf(rp + 1, " %c %d", state, ppid) == 2 ? 0 : -1;
}

/* Fills pids with the live (not zombie) children of parent; returns how many. */
static int
s_children(pid_t parent, pid_t *pids, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL && n < max) {
        char state;
        int ppid;
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        if (s_proc(pid, &state, &ppid) == 0 && ppid == (int)parent && state != 'Z' && state != 'X')
            pids[n++] = pid;
    }
    if (d)
        closedir(d);
    return n;
}

START_TEST(test_all_die_at_once_every_acked_job_completes_and_each_result_arrives_once)
{
    fx_t f;
    fx_init(&f, "always");
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    pid_t pool = s_pool_proc(f.url);
    pid_t kids[AD_PRODUCERS];
    for (int k = 0; k < AD_PRODUCERS; k++) {
        fflush(NULL);
        kids[k] = fork();
        if (kids[k] == 0)
            _exit(s_ad_producer(f.url, k));
    }
    /* Mid-run: some results are in, most jobs are still to run. */
    int64_t deadline = jobq_now_ms() + 20000;
    while (ns_stat(f.url, "done") < 40 && jobq_now_ms() < deadline)
        s_nap(20);
    long long done_before = ns_stat(f.url, "done");
    ck_assert_int_ge(done_before, 40);
    ck_assert_int_lt(done_before, AD_PRODUCERS * AD_PER_PRODUCER);
    pid_t workers[8];
    int nworkers = s_children(pool, workers, 8);
    ck_assert_int_eq(nworkers, 3);
    /* SIGKILL the broker, the pool's supervisor and every worker together. */
    kill(f.broker.pid, SIGKILL);
    kill(pool, SIGKILL);
    for (int w = 0; w < nworkers; w++)
        kill(workers[w], SIGKILL);
    ns_broker_stop(&f.broker, SIGKILL, 5000);
    int st = ns_reap(pool, 5000);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "pool status %d", st);
    for (int w = 0; w < nworkers; w++) { /* gone, or a zombie until init reaps it */
        char state = 'R';
        int ppid;
        for (int i = 0; i < 500 && s_proc(workers[w], &state, &ppid) == 0 && state != 'Z'; i++)
            s_nap(10);
        ck_assert_msg(s_proc(workers[w], &state, &ppid) != 0 || state == 'Z',
                      "worker %d still runs", (int)workers[w]);
    }
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    pool = s_pool_proc(f.url);
    for (int k = 0; k < AD_PRODUCERS; k++) {
        int pst = ns_reap(kids[k], 90000);
        ck_assert_msg(WIFEXITED(pst) && WEXITSTATUS(pst) == 0, "producer %d: status %d (exit %d)",
                      k, pst, WIFEXITED(pst) ? WEXITSTATUS(pst) : -1);
    }
    ck_assert_int_eq(ns_stat(f.url, "jobs"), 0); /* nothing left behind */
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    ck_assert_jobq_ok(jobq_producer_stop_workers(p, NULL, 0));
    jobq_producer_destroy(&p);
    st = ns_reap(pool, 20000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pool status %d", st);
    fx_fini(&f);
}
END_TEST

/* ---- results of restored jobs reach next_result -------------------------------- */

#define NR_JOBS 60

START_TEST(test_next_result_gets_each_result_of_jobs_accepted_before_a_restart_once)
{
    fx_t f;
    fx_init(&f, "always");
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    jobq_producer_opts_t po;
    memset(&po, 0, sizeof po);
    po.retry_timeout_ms = 500;
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, &po, &p));
    static jobq_job_t jobs[NR_JOBS];
    static char texts[NR_JOBS][32];
    s_jobs(jobs, NR_JOBS, texts, "nr");
    /* Accepted while no worker runs; then the broker dies and comes back. */
    ck_assert_jobq_ok(jobq_producer_submit_batch(p, jobs, NR_JOBS / 2, NULL, 10000));
    ns_broker_stop(&f.broker, SIGKILL, 5000);
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    /* More, on the same handle (it reconnects): these are pushed as usual. */
    ck_assert_jobq_ok(
        jobq_producer_submit_batch(p, jobs + NR_JOBS / 2, NR_JOBS - NR_JOBS / 2, NULL, 10000));
    jobq_pool_t *pool = ns_pool_start(f.url, 2, "echo", 200, 8);
    ck_assert_ptr_nonnull(pool);
    static int seen[NR_JOBS];
    for (int k = 0; k < NR_JOBS; k++) {
        jobq_result_t r;
        int rc = jobq_producer_next_result(p, &r, 20000);
        ck_assert_msg(rc == JOBQ_OK, "result %d of %d: %s", k + 1, NR_JOBS, jobq_strerror(rc));
        int i = 0;
        while (i < NR_JOBS && memcmp(&jobs[i].id, &r.id, sizeof r.id) != 0)
            i++;
        ck_assert_msg(i < NR_JOBS, "a result for a job not submitted here");
        ck_assert_msg(!seen[i], "job %d: a second result", i);
        seen[i] = 1;
        ck_assert_int_eq(r.status, JOBQ_STATUS_DONE);
        ck_assert_uint_eq(r.output_len, strlen(texts[i]));
        ck_assert_int_eq(memcmp(r.output, texts[i], r.output_len), 0);
    }
    jobq_result_t extra;
    ck_assert_int_eq(jobq_producer_next_result(p, &extra, 700), JOBQ_ETIMEDOUT);
    ck_assert_jobq_ok(jobq_producer_stop_workers(p, NULL, 0));
    jobq_producer_destroy(&p);
    jobq_pool_report_t rep;
    jobq_pool_wait(pool, 20000, &rep);
    jobq_pool_destroy(&pool);
    fx_fini(&f);
}
END_TEST

/* ---- power loss inside the batch window ------------------------------------- */

#define PL_MAX 3000
#define PL_RUN_MS 1500
#define PL_WINDOW_MS 200
#define PL_SLACK_MS 800 /* the sync's own time and a loaded machine */

/* The unsigned value of "key": in a stats document, or -1. */
static long long
s_json_num(const char *doc, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(doc, pat);
    return at ? strtoll(at + strlen(pat), NULL, 10) : -1;
}

START_TEST(test_power_loss_with_batch_200_loses_only_jobs_acked_in_the_last_window)
{
    fx_t f;
    char policy[32];
    snprintf(policy, sizeof policy, "batch:%d", PL_WINDOW_MS);
    fx_init(&f, policy);
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    jobq_producer_t *p = NULL;
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    static jobq_job_t jobs[PL_MAX];
    static char texts[PL_MAX][32];
    static int64_t acked_ms[PL_MAX];
    s_jobs(jobs, PL_MAX, texts, "bw");
    size_t n = 0;
    int64_t start = jobq_now_ms();
    while (n < PL_MAX && jobq_now_ms() - start < PL_RUN_MS) {
        ck_assert_jobq_ok(jobq_producer_submit(p, &jobs[n], 10000));
        acked_ms[n++] = jobq_now_ms();
        s_nap(1);
    }
    jobq_producer_destroy(&p);
    /* What the broker has on disk, then its death at once. */
    char doc[1 << 16];
    ck_assert_int_gt(ns_stats(f.url, doc, sizeof doc), 0);
    kill(f.broker.pid, SIGKILL);
    int64_t kill_ms = jobq_now_ms();
    ns_broker_stop(&f.broker, SIGKILL, 5000);
    long long seq = s_json_num(doc, "segment");
    long long synced = s_json_num(doc, "synced_offset");
    ck_assert_int_ge(seq, 0);
    ck_assert_int_ge(synced, 32);
    char seg[700], want[700];
    s_last_segment(&f, seg, sizeof seg);
    snprintf(want, sizeof want, "%s/seg-%016llx.jrn", f.jdir, seq);
    ck_assert_str_eq(seg, want);
    /* The power loss: the page cache beyond the synced offset is gone. */
    int fd = open(seg, O_RDWR);
    ck_assert_int_ge(fd, 0);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    ck_assert_int_le(synced, (long long)sb.st_size);
    ck_assert_int_eq(ftruncate(fd, (off_t)synced), 0);
    close(fd);
    ck_assert_int_eq(fx_start(&f, NULL), 0);
    /* Resubmitting tells which jobs the broker still has (EDUPLICATE). */
    static int codes[PL_MAX];
    static jobq_job_t again[PL_MAX];
    memcpy(again, jobs, n * sizeof *jobs);
    ck_assert_jobq_ok(jobq_producer_open(f.url, NULL, &p));
    jobq_producer_submit_batch(p, again, n, codes, 20000);
    jobq_producer_destroy(&p);
    size_t lost = 0, old = 0;
    int64_t oldest_lost = -1;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(codes[i] == JOBQ_EDUPLICATE || codes[i] == JOBQ_OK, "job %zu: code %d", i,
                      codes[i]);
        int64_t age = kill_ms - acked_ms[i];
        old += age > PL_WINDOW_MS + PL_SLACK_MS;
        if (codes[i] == JOBQ_OK) {
            lost++;
            oldest_lost = age > oldest_lost ? age : oldest_lost;
            ck_assert_msg(age <= PL_WINDOW_MS + PL_SLACK_MS,
                          "job %zu was acked %lld ms before the power loss and is gone", i,
                          (long long)age);
        }
    }
    ck_assert_uint_gt(old, 0); /* the assertion above covered jobs */
    if (getenv("JOBQ_LOG"))
        fprintf(stderr,
                "power loss: %zu of %zu acked jobs lost, the oldest acked %lld ms before the "
                "kill (synced offset %lld of %lld)\n",
                lost, n, (long long)oldest_lost, synced, (long long)sb.st_size);
    fx_fini(&f);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("journal_power");
    TCase *tc = tcase_create("journal_power");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_all_die_at_once_every_acked_job_completes_and_each_result_arrives_once);
    tcase_add_test(tc, test_next_result_gets_each_result_of_jobs_accepted_before_a_restart_once);
    tcase_add_test(tc, test_power_loss_with_batch_200_loses_only_jobs_acked_in_the_last_window);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
