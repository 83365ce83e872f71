/*
 * bench/bench_queue.c: W1 and W1b of PERFORMANCE.md for the local queues.
 *
 *   W1   1 producer puts N jobs of 16 bytes; 2 forked consumers get() and
 *        task_done() each; wall time from the first put until join() returns.
 *   W1b  the producer puts all N first (enqueue rate), then the 2 consumers,
 *        started and parked beforehand, drain them (drain rate, until join()).
 *
 * Systems: any jobq URL (shm://NAME, mq://NAME), and a raw POSIX mq baseline
 * (depth 10, the limit here; 1 sender, 2 receivers, no bookkeeping: W1 only).
 * A system that fails (e.g. mq:// not built yet) is reported with its error
 * and the run goes on.
 *
 *   bench_queue [-n N] [-w W1|W1b|all] [SYSTEM...]
 *     SYSTEM: shm, mq, rawmq, or a URL; default: shm mq rawmq
 *
 * Prints a table and one JSON object per result on its own line:
 *   {"workload":"W1","system":"shm","n":1000000,"seconds":0.42,"rate":2380952}
 */
#include "jobq/errors.h"
#include "jobq/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_PAYLOAD 16
#define S_CONSUMERS 2
#define S_STEP_TIMEOUT_MS 120000 /* no single put or join may take longer */
#define S_BURST_PUT_TIMEOUT_MS 10000

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
s_report(const char *workload, const char *system, long n, double seconds, const char *error)
{
    if (error) {
        printf("%-12s %-10s %10ld  error: %s\n", workload, system, n, error);
        printf("{\"workload\":\"%s\",\"system\":\"%s\",\"n\":%ld,\"error\":\"%s\"}\n", workload,
               system, n, error);
    } else {
        double rate = seconds > 0 ? (double)n / seconds : 0;
        printf("%-12s %-10s %10ld %10.3f s %14.0f jobs/s\n", workload, system, n, seconds, rate);
        printf("{\"workload\":\"%s\",\"system\":\"%s\",\"n\":%ld,\"seconds\":%.6f,\"rate\":%.0f}\n",
               workload, system, n, seconds, rate);
    }
    fflush(stdout);
}

static void
s_kill_all(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
    }
}

static int
s_wait_all(pid_t *pids, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st = 0;
        if (pids[i] > 0 &&
            (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
            bad = 1;
        pids[i] = 0;
    }
    return bad ? -1 : 0;
}

/* ---- jobq queues ---------------------------------------------------------- */

/* Consumer: open the queue by URL, say ready, wait for "go", then get +
 * task_done until a sentinel. */
static void
s_consumer(const char *url, int ready_fd, int go_fd)
{
    jobq_queue_t *q = NULL;
    char b = 'r';
    if (jobq_queue_open(url, NULL, &q) != JOBQ_OK)
        _exit(1);
    if (write(ready_fd, &b, 1) != 1 || read(go_fd, &b, 1) != 1)
        _exit(2);
    for (;;) {
        jobq_item_t it;
        int rc = jobq_queue_get(q, &it, S_STEP_TIMEOUT_MS);
        if (rc != JOBQ_OK)
            _exit(3);
        int stop = it.sentinel;
        jobq_queue_task_done(q, &it);
        jobq_item_fini(&it);
        if (stop)
            break;
    }
    jobq_queue_destroy(&q);
    _exit(0);
}

/* Puts n jobs, releasing the parked consumers before (W1) or after (W1b) the
 * puts, then joins. Fills t[0..2] (start, puts done, join done). Returns 0, or
 * -1 with the reason in err. */
static int
s_timed_run(jobq_queue_t *q, long n, int burst, int go_fd, double t[3], char *err, size_t len)
{
    uint8_t payload[S_PAYLOAD] = {0};
    if (!burst)
        for (int c = 0; c < S_CONSUMERS; c++)
            (void)!write(go_fd, "g", 1);
    t[0] = s_now();
    for (long i = 0; i < n; i++) {
        memcpy(payload, &i, sizeof i);
        /* A burst that does not fit shows as a put timing out, 10 s at most. */
        int rc = jobq_queue_put_bytes(q, payload, sizeof payload, NULL,
                                      burst ? S_BURST_PUT_TIMEOUT_MS : S_STEP_TIMEOUT_MS);
        if (rc != JOBQ_OK) {
            snprintf(err, len, "put %ld: %s", i, jobq_errname(rc));
            return -1;
        }
    }
    t[1] = s_now();
    if (burst)
        for (int c = 0; c < S_CONSUMERS; c++)
            (void)!write(go_fd, "g", 1);
    int rc = jobq_queue_join(q, S_STEP_TIMEOUT_MS);
    t[2] = s_now();
    if (rc != JOBQ_OK) {
        snprintf(err, len, "join: %s", jobq_errname(rc));
        return -1;
    }
    return 0;
}

/* Runs W1 (burst 0) or W1b (burst 1) on url. */
static void
s_run_jobq(const char *system, const char *url, long n, int burst)
{
    const char *wl = burst ? "W1b" : "W1";
    jobq_queue_opts_t o = {JOBQ_QUEUE_CREATE | JOBQ_QUEUE_EXCL, 0, 0, 0};
    jobq_queue_t *q = NULL;
    pid_t pids[S_CONSUMERS] = {0};
    int ready[2], go[2];
    char err[160], b = 0;
    double t[3];
    if (burst) { /* the whole burst must fit */
        o.max_items = (uint32_t)n;
        o.max_bytes = (uint64_t)n * S_PAYLOAD;
    }
    jobq_queue_unlink(url);
    int rc = jobq_queue_open(url, &o, &q);
    if (rc != JOBQ_OK) {
        snprintf(err, sizeof err, "open %s: %s", url, jobq_errname(rc));
        s_report(wl, system, n, 0, err);
        return;
    }
    if (pipe(ready) != 0 || pipe(go) != 0) {
        perror("pipe");
        exit(1);
    }
    for (int c = 0; c < S_CONSUMERS; c++)
        if ((pids[c] = fork()) == 0)
            s_consumer(url, ready[1], go[0]);
    int ok = 1;
    for (int c = 0; c < S_CONSUMERS && ok; c++)
        if (read(ready[0], &b, 1) != 1 || b != 'r') {
            snprintf(err, sizeof err, "a consumer could not open the queue");
            ok = 0;
        }
    if (ok && s_timed_run(q, n, burst, go[1], t, err, sizeof err) != 0)
        ok = 0;
    if (!ok) {
        s_report(wl, system, n, 0, err);
    } else if (burst) {
        s_report("W1b_enqueue", system, n, t[1] - t[0], NULL);
        s_report("W1b_drain", system, n, t[2] - t[1], NULL);
    } else {
        s_report("W1", system, n, t[2] - t[0], NULL);
    }
    if (ok) {
        for (int c = 0; c < S_CONSUMERS; c++)
            jobq_queue_put_sentinel(q, S_STEP_TIMEOUT_MS);
        if (s_wait_all(pids, S_CONSUMERS) != 0)
            fprintf(stderr, "bench_queue: a %s consumer failed\n", system);
    }
    s_kill_all(pids, S_CONSUMERS);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    jobq_queue_destroy(&q);
    jobq_queue_unlink(url);
}

/* ---- raw POSIX mq baseline ---------------------------------------------------- */

static void
s_raw_receiver(const char *name)
{
    mqd_t mq = mq_open(name, O_RDONLY);
    char buf[S_PAYLOAD];
    if (mq == (mqd_t)-1)
        _exit(1);
    for (;;) {
        ssize_t n = mq_receive(mq, buf, sizeof buf, NULL);
        if (n < 0)
            _exit(2);
        if (n == 1) /* the stop message */
            break;
    }
    mq_close(mq);
    _exit(0);
}

static void
s_run_rawmq(long n)
{
    char name[64], err[160];
    struct mq_attr attr = {0};
    pid_t pids[S_CONSUMERS] = {0};
    attr.mq_maxmsg = 10;
    attr.mq_msgsize = S_PAYLOAD;
    snprintf(name, sizeof name, "/jobq-bench-raw-%d", (int)getpid());
    mq_unlink(name);
    mqd_t mq = mq_open(name, O_WRONLY | O_CREAT | O_EXCL, 0600, &attr);
    if (mq == (mqd_t)-1) {
        snprintf(err, sizeof err, "mq_open: %s", strerror(errno));
        s_report("W1", "posix_mq_raw", n, 0, err);
        return;
    }
    for (int c = 0; c < S_CONSUMERS; c++)
        if ((pids[c] = fork()) == 0)
            s_raw_receiver(name);
    uint8_t payload[S_PAYLOAD] = {0};
    double t0 = s_now();
    for (long i = 0; i < n; i++) {
        memcpy(payload, &i, sizeof i);
        if (mq_send(mq, (const char *)payload, sizeof payload, 0) != 0) {
            snprintf(err, sizeof err, "mq_send: %s", strerror(errno));
            s_report("W1", "posix_mq_raw", n, 0, err);
            s_kill_all(pids, S_CONSUMERS);
            goto out;
        }
    }
    for (int c = 0; c < S_CONSUMERS; c++)
        mq_send(mq, "s", 1, 0);
    if (s_wait_all(pids, S_CONSUMERS) != 0)
        s_report("W1", "posix_mq_raw", n, 0, "a receiver failed");
    else
        s_report("W1", "posix_mq_raw", n, s_now() - t0, NULL);
out:
    mq_close(mq);
    mq_unlink(name);
}

/* ---- main --------------------------------------------------------------------- */

static void
s_usage(void)
{
    fprintf(stderr, "usage: bench_queue [-n N] [-w W1|W1b|all] [shm|mq|rawmq|URL...]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    long n = 1000000;
    int w1 = 1, w1b = 1, opt;
    while ((opt = getopt(argc, argv, "n:w:h")) != -1) {
        if (opt == 'n') {
            n = strtol(optarg, NULL, 10);
        } else if (opt == 'w') {
            w1 = !strcmp(optarg, "W1") || !strcmp(optarg, "all");
            w1b = !strcmp(optarg, "W1b") || !strcmp(optarg, "all");
        } else {
            s_usage();
        }
    }
    if (n <= 0 || (!w1 && !w1b))
        s_usage();
    static const char *defaults[] = {"shm", "mq", "rawmq"};
    const char **systems = optind < argc ? (const char **)argv + optind : defaults;
    int nsys = optind < argc ? argc - optind : 3;
    printf("%-12s %-10s %10s %12s %21s\n", "workload", "system", "n", "seconds", "rate");
    for (int i = 0; i < nsys; i++) {
        char url[128];
        const char *sys = systems[i];
        if (!strcmp(sys, "rawmq")) {
            if (w1)
                s_run_rawmq(n);
            continue;
        }
        if (!strcmp(sys, "shm") || !strcmp(sys, "mq"))
            snprintf(url, sizeof url, "%s://bench-%d", sys, (int)getpid());
        else
            snprintf(url, sizeof url, "%s", sys);
        /* A URL is labelled by its scheme ("shm", "mq"). */
        char label[16];
        const char *sep = strstr(url, "://");
        snprintf(label, sizeof label, "%.*s", sep ? (int)(sep - url) : 15, sep ? url : sys);
        if (w1)
            s_run_jobq(label, url, n, 0);
        if (w1b)
            s_run_jobq(label, url, n, 1);
    }
    return 0;
}
