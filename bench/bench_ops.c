/*
 * bench/bench_ops.c: the per-job cost of each isolation mode of a worker
 * (docs/WORKERS.md): the long-lived child running a built-in, the same with
 * --fork-per-job (a fresh child per call), --exec true (a shell per job),
 * and the long-lived child with recycling every 100 jobs.
 *
 * usage: bench_ops [N] [WORKERS]   (default 5000 jobs, 1 worker)
 *
 * Each mode: an anonymous queue, a forked pool of WORKERS, N jobs put while
 * results are taken, then sentinels. Wall time and CPU time (this process
 * and its reaped children, user + sys) per job; a table, then one JSON
 * object per mode (workload, system, n, seconds, rate, per_job_us,
 * cpu_us_per_job). The first row is the machine's floor for a process per
 * job: a bare fork + _exit + waitpid from this process, no queue.
 */
#include "jobq/errors.h"
#include "jobq/pool.h"
#include "jobq/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct s_mode {
    const char *name;
    const char *builtin, *exec;
    int fork_per_job;
    uint32_t max_jobs;
} s_mode_t;

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
s_cpu(void)
{
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    getrusage(RUSAGE_CHILDREN, &b);
    return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec) +
           (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
                    b.ru_stime.tv_usec) /
               1e6;
}

/* Runs n jobs through mode m; returns 0 and the wall and CPU seconds, or -1. */
static int
s_run(const s_mode_t *m, long n, unsigned workers, double *wall, double *cpu)
{
    jobq_queue_t *q = NULL;
    jobq_pool_t *pool = NULL;
    if (jobq_queue_new_anon(NULL, &q) != JOBQ_OK)
        return -1;
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.queue = q;
    o.workers = workers;
    o.builtin = m->builtin;
    o.exec = m->exec;
    o.fork_per_job = m->fork_per_job;
    o.max_jobs_per_child = m->max_jobs;
    double t0 = s_now(), c0 = s_cpu();
    if (jobq_pool_new(&o, &pool) != JOBQ_OK || jobq_pool_start(pool) != JOBQ_OK) {
        jobq_pool_destroy(&pool);
        jobq_queue_destroy(&q);
        return -1;
    }
    long put = 0, got = 0;
    while (got < n) {
        while (put < n) {
            jobq_job_t job;
            jobq_job_init(&job);
            job.id.b[0] = 1;
            memcpy(&job.id.b[8], &put, sizeof put);
            job.payload = "x";
            job.payload_len = 1;
            if (jobq_queue_put(q, &job, 0) != JOBQ_OK)
                break;
            put++;
        }
        jobq_result_t res;
        int rc = jobq_queue_get_result(q, &res, 30000);
        if (rc != JOBQ_OK) {
            fprintf(stderr, "bench_ops: %s: no result: %s\n", m->name, jobq_strerror(rc));
            break;
        }
        got++;
    }
    for (unsigned i = 0; i < workers; i++)
        jobq_queue_put_sentinel(q, 10000);
    jobq_pool_wait(pool, 30000, NULL);
    jobq_pool_destroy(&pool);
    *wall = s_now() - t0;
    *cpu = s_cpu() - c0;
    jobq_queue_destroy(&q);
    return got == n ? 0 : -1;
}

/* The floor: n bare fork + _exit + waitpid. */
static void
s_bare_fork(long n, double *wall, double *cpu)
{
    double t0 = s_now(), c0 = s_cpu();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    *wall = s_now() - t0;
    *cpu = s_cpu() - c0;
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5000;
    unsigned workers = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
    if (n < 1 || workers < 1) {
        fprintf(stderr, "usage: bench_ops [N] [WORKERS]\n");
        return 2;
    }
    static const s_mode_t modes[] = {
        {"bare fork+_exit+waitpid (floor)", NULL, NULL, 0, 0},
        {"long-lived child, builtin echo", "echo", NULL, 0, 0},
        {"long-lived, recycled every 100 jobs", "echo", NULL, 0, 100},
        {"fork-per-job, builtin echo", "echo", NULL, 1, 0},
        {"exec true (a shell per job)", NULL, "true", 0, 0},
    };
    enum { NMODES = sizeof modes / sizeof modes[0] };
    double wall[NMODES], cpu[NMODES];
    printf("per-job cost of each worker mode: %ld jobs, %u worker(s)\n", n, workers);
    printf("%-38s %10s %12s %14s\n", "mode", "jobs/s", "us/job", "CPU us/job");
    for (int i = 0; i < NMODES; i++) {
        if (i == 0)
            s_bare_fork(n, &wall[i], &cpu[i]);
        else if (s_run(&modes[i], n, workers, &wall[i], &cpu[i]) != 0) {
            fprintf(stderr, "bench_ops: %s failed\n", modes[i].name);
            return 1;
        }
        printf("%-38s %10.0f %12.1f %14.1f\n", modes[i].name, (double)n / wall[i],
               1e6 * wall[i] / (double)n, 1e6 * cpu[i] / (double)n);
    }
    for (int i = 0; i < NMODES; i++)
        printf("{\"workload\":\"ops\",\"system\":\"%s\",\"n\":%ld,\"seconds\":%.3f,\"rate\":%.1f,"
               "\"per_job_us\":%.2f,\"cpu_us_per_job\":%.2f}\n",
               modes[i].name, n, wall[i], (double)n / wall[i], 1e6 * wall[i] / (double)n,
               1e6 * cpu[i] / (double)n);
    return 0;
}
