/*
 * tests/fault/test_pool_faults.c: the pool under process faults, with real
 * processes: the supervisor SIGKILLed (its children are gone within 1 s),
 * 1,000 spawn/kill cycles (no zombies), a worker SIGKILLed mid-job (the job
 * runs again and join returns).
 *
 * Each test makes itself a child subreaper, so the orphans of a killed
 * supervisor become its children: it can tell that they died (and reap them)
 * whatever this machine's init does with zombies.
 */
#include "jobq_test.h"

#include "jobq/errors.h"
#include "jobq/pool.h"
#include "jobq/queue.h"
#include "jobq/worker.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

static void
s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Counts this process's children in state Z, from /proc/PID/stat. */
static int
s_zombie_children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int zombies = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')'); /* the command name may hold spaces */
        char state;
        int ppid;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid() && state == 'Z')
            zombies++;
    }
    closedir(d);
    return zombies;
}

/* ---- the supervisor SIGKILLed ------------------------------------------- */

/* The supervisor process: a forked pool of n idle workers; writes their pids
 * to fd, then waits to be killed. */
static _Noreturn void
s_supervisor(int fd, unsigned n)
{
    jobq_queue_t *q = NULL;
    jobq_pool_t *pool = NULL;
    jobq_pool_opts_t o;
    if (jobq_queue_new_anon(NULL, &q) != JOBQ_OK)
        _exit(3);
    jobq_pool_opts_init(&o);
    o.queue = q;
    o.workers = n;
    o.builtin = "sleep";
    if (jobq_pool_new(&o, &pool) != JOBQ_OK || jobq_pool_start(pool) != JOBQ_OK)
        _exit(4);
    pid_t pids[64];
    struct timespec ts = {0, 200L * 1000 * 1000};
    nanosleep(&ts, NULL); /* let the children reach their loop (PDEATHSIG set) */
    size_t got = jobq_pool_pids(pool, pids, 64);
    if (write(fd, pids, got * sizeof pids[0]) < 0)
        _exit(5);
    close(fd);
    for (;;)
        pause();
}

START_TEST(test_children_die_within_1s_of_the_supervisor)
{
    enum { N = 8 };
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t sup = fork();
    ck_assert_int_ge(sup, 0);
    if (sup == 0) {
        close(fds[0]);
        s_supervisor(fds[1], N);
    }
    close(fds[1]);
    pid_t pids[N];
    size_t got = 0;
    while (got < sizeof pids) {
        ssize_t r = read(fds[0], (char *)pids + got, sizeof pids - got);
        ck_assert_msg(r > 0, "the supervisor did not report its children");
        got += (size_t)r;
    }
    close(fds[0]);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(kill(pids[i], 0), 0);
    ck_assert_int_eq(kill(sup, SIGKILL), 0);
    ck_assert_int_eq(waitpid(sup, NULL, 0), sup);
    int64_t t0 = s_now_ms();
    int gone = 0;
    int reaped[N] = {0};
    while (gone < N && s_now_ms() - t0 < 1000) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG); /* orphans are ours now (subreaper) */
        for (int i = 0; p > 0 && i < N; i++)
            if (p == pids[i] && !reaped[i]) {
                /* SIGKILL from PDEATHSIG; or, for a child that had not run
                 * prctl yet, its own exit after the getppid() check. */
                ck_assert_msg((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) || WIFEXITED(st),
                              "worker %d ended oddly (status 0x%x)", (int)p, st);
                reaped[i] = 1;
                gone++;
            }
        if (p <= 0)
            s_sleep_ms(5);
    }
    ck_assert_msg(gone == N, "%d of %d workers still alive 1 s after the supervisor died", N - gone,
                  N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(kill(pids[i], 0), -1);
}
END_TEST

/* ---- 1,000 spawn/kill cycles -------------------------------------------- */

START_TEST(test_1000_spawn_kill_cycles_leave_no_zombies)
{
    enum { N = 20, CYCLES = 1000 };
    jobq_queue_t *q = NULL;
    jobq_pool_t *pool = NULL;
    jobq_pool_opts_t o;
    ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
    jobq_pool_opts_init(&o);
    o.queue = q;
    o.workers = N;
    o.builtin = "echo";
    o.restart_min_ms = 1;
    o.restart_max_ms = 2;
    ck_assert_jobq_ok(jobq_pool_new(&o, &pool));
    ck_assert_jobq_ok(jobq_pool_start(pool));
    static pid_t killed[CYCLES];
    int kills = 0;
    int64_t t0 = s_now_ms();
    while (kills < CYCLES) {
        ck_assert_msg(s_now_ms() - t0 < 90000, "only %d kills in 90 s", kills);
        pid_t pids[N];
        size_t n = jobq_pool_pids(pool, pids, N);
        for (size_t i = 0; i < n && kills < CYCLES; i++) {
            int seen = 0; /* a dead child stays listed until it is reaped */
            for (int k = kills - 1; k >= 0 && !seen; k--)
                seen = killed[k] == pids[i];
            if (!seen && kill(pids[i], SIGKILL) == 0)
                killed[kills++] = pids[i];
        }
        s_sleep_ms(2);
    }
    jobq_pool_stop(pool, 0);
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 10000, &rep));
    ck_assert_uint_eq(rep.deaths, CYCLES);
    ck_assert_uint_ge(rep.restarts, CYCLES - N); /* the last ones may not be restarted yet */
    ck_assert_int_eq(s_zombie_children(), 0);
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* no child left at all */
    ck_assert_int_eq(errno, ECHILD);
    jobq_pool_destroy(&pool);
    jobq_queue_destroy(&q);
}
END_TEST

/* ---- a worker SIGKILLed mid-job ------------------------------------------ */

static int s_pid_pipe = -1;

/* First attempt: tell the test our pid, then hang; later attempts: succeed. */
static int
s_hang_first(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    (void)arg;
    if (job->attempt <= 1) {
        pid_t me = getpid();
        if (write(s_pid_pipe, &me, sizeof me) != sizeof me)
            return 1;
        s_sleep_ms(30000);
        return 1;
    }
    return jobq_output_append(out, "second", 6) == JOBQ_OK ? 0 : 1;
}

START_TEST(test_worker_killed_mid_job_the_job_runs_again_and_join_returns)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    s_pid_pipe = fds[1];
    jobq_queue_t *q = NULL;
    jobq_pool_t *pool = NULL;
    jobq_pool_opts_t o;
    ck_assert_jobq_ok(jobq_queue_new_anon(NULL, &q));
    jobq_pool_opts_init(&o);
    o.queue = q;
    o.workers = 2;
    o.fn = s_hang_first;
    o.poll_ms = 20;
    ck_assert_jobq_ok(jobq_pool_new(&o, &pool));
    ck_assert_jobq_ok(jobq_pool_start(pool));
    jobq_job_t job;
    jobq_job_init(&job);
    job.payload = "work";
    job.payload_len = 4;
    job.max_attempts = 2;
    ck_assert_jobq_ok(jobq_queue_put(q, &job, 1000));
    pid_t holder;
    ck_assert_int_eq(read(fds[0], &holder, sizeof holder), (ssize_t)sizeof holder);
    ck_assert_int_eq(kill(holder, SIGKILL), 0);
    ck_assert_jobq_ok(jobq_queue_join(q, 5000));
    jobq_result_t res;
    ck_assert_jobq_ok(jobq_queue_get_result(q, &res, 1000));
    ck_assert_mem_eq(res.id.b, job.id.b, sizeof job.id.b);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_eq(res.attempt, 2);
    ck_assert_uint_eq(res.output_len, 6);
    ck_assert_mem_eq(res.output, "second", 6);
    ck_assert_jobq_err(jobq_queue_get_result(q, &res, 100), JOBQ_ETIMEDOUT); /* only once */
    for (int i = 0; i < 2; i++)
        ck_assert_jobq_ok(jobq_queue_put_sentinel(q, 1000));
    jobq_pool_report_t rep;
    ck_assert_jobq_ok(jobq_pool_wait(pool, 10000, &rep));
    ck_assert_uint_eq(rep.deaths, 1);
    ck_assert_uint_eq(rep.restarts, 1);
    ck_assert_uint_eq(rep.done, 1);
    ck_assert_uint_eq(rep.crashed, 1); /* the first attempt died with its worker */
    jobq_pool_destroy(&pool);
    jobq_queue_destroy(&q);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("pool_faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_children_die_within_1s_of_the_supervisor);
    tcase_add_test(tc, test_1000_spawn_kill_cycles_leave_no_zombies);
    tcase_add_test(tc, test_worker_killed_mid_job_the_job_runs_again_and_join_returns);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return jobq_test_run(s_suite());
}
