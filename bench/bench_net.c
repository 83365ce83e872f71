/*
 * bench/bench_net.c: W1 and W2 of PERFORMANCE.md over a `jobq broker`,
 * through the full client stack: the producer API (include/jobq/producer.h)
 * and a pool of network workers (include/jobq/pool.h). Only the public API
 * is used; the broker is the real `jobq broker` process.
 *
 *   W1  1 producer submits N jobs of 16 bytes (one jobq_producer_submit_batch
 *       call: frames of 1,024 jobs, 16 in flight); a forked pool of 2 workers
 *       with a no-op C handler and prefetch -c takes them; wall time from the
 *       first submit until jobq_producer_join returns.
 *   W2  1 producer submits one job and waits for its result (jobq_producer_
 *       submit then jobq_producer_wait; 1 worker process, built-in echo,
 *       prefetch 1), 1,000 warm-up rounds then -l rounds; p50/p99/p99.9.
 *
 *   bench_net [-n N] [-w W1|W2|all] [-t tcp|ipc|both] [-c PREFETCH] [-l ROUNDS]
 *             [-B PATH_TO_JOBQ] [-K KEYDIR]
 *
 * -K KEYDIR: CURVE on tcp (ipc never uses it): KEYDIR holds broker.key,
 * broker.pub, client.key (jobq keygen) and clients/client.pub, the allow-list.
 *
 * The jobq binary is -B, else $JOBQ_BIN, else ../jobq next to this program.
 * Prints a table and one JSON object per result on its own line.
 */
#include "jobq/errors.h"
#include "jobq/pool.h"
#include "jobq/producer.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_QUEUE "bench"
#define S_PAYLOAD "0123456789abcdef" /* 16 bytes */

typedef struct s_opts {
    long n;
    const char *workload;
    const char *transport;
    uint32_t prefetch;
    long rounds;
    char jobq[PATH_MAX];
} s_opts_t;

/* CURVE files (-K), or NULL. */
static char s_bkey[PATH_MAX], s_allow[PATH_MAX], s_ckey[PATH_MAX], s_spub[PATH_MAX];
static int s_curve;

typedef struct s_broker {
    pid_t pid;
    char url[512];
    char dir[128];
} s_broker_t;

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
s_die(const char *what, int rc)
{
    fprintf(stderr, "bench_net: %s: %s\n", what, rc ? jobq_strerror(rc) : strerror(errno));
    exit(1);
}

/* Reads the broker's "listening on URL" line into b->url (a tcp port 0 becomes
 * the real one). Returns 0 or -1. */
static int
s_read_url(int fd, s_broker_t *b)
{
    char line[1024];
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 10000) <= 0)
            return -1;
        ssize_t n = read(fd, line + len, sizeof line - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        line[len] = '\0';
        char *at = strstr(line, "listening on "), *nl = at ? strchr(at, '\n') : NULL;
        if (nl) {
            *nl = '\0';
            snprintf(b->url, sizeof b->url, "%s", at + strlen("listening on "));
            return 0;
        }
    }
}

static void
s_broker_start(const s_opts_t *o, const char *transport, s_broker_t *b)
{
    char listen[512];
    int fds[2];
    memset(b, 0, sizeof *b);
    if (strcmp(transport, "ipc") == 0) {
        snprintf(b->dir, sizeof b->dir, "/tmp/jobq-bench-net-%d-XXXXXX", (int)getpid());
        if (!mkdtemp(b->dir))
            s_die("mkdtemp", 0);
        snprintf(listen, sizeof listen, "ipc://%s/b.sock", b->dir);
    } else {
        snprintf(listen, sizeof listen, "tcp://127.0.0.1:0");
    }
    if (pipe(fds) != 0)
        s_die("pipe", 0);
    pid_t parent = getpid();
    b->pid = fork();
    if (b->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        if (s_curve && strcmp(transport, "tcp") == 0)
            execl(o->jobq, o->jobq, "broker", "--listen", listen, "--max-jobs", "100000000",
                  "--max-bytes", "17179869184", "--curve-key", s_bkey, "--curve-clients", s_allow,
                  (char *)NULL);
        execl(o->jobq, o->jobq, "broker", "--listen", listen, "--max-jobs", "100000000",
              "--max-bytes", "17179869184", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (b->pid < 0 || s_read_url(fds[0], b) != 0)
        s_die("the broker did not start", 0);
    close(fds[0]);
}

static void
s_broker_stop(s_broker_t *b)
{
    kill(b->pid, SIGTERM);
    waitpid(b->pid, NULL, 0);
    if (b->dir[0]) {
        char path[256];
        snprintf(path, sizeof path, "%s/b.sock", b->dir);
        unlink(path);
        rmdir(b->dir);
    }
}

static int
s_noop(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    (void)job, (void)out, (void)arg;
    return 0;
}

static jobq_pool_t *
s_pool_start(const char *url, unsigned workers, uint32_t prefetch, const char *builtin)
{
    static const char *queues[] = {S_QUEUE};
    jobq_pool_opts_t po;
    jobq_pool_opts_init(&po);
    po.url = url;
    if (s_curve) {
        po.curve_key = s_ckey;
        po.curve_server = s_spub;
    }
    po.workers = workers;
    po.prefetch = prefetch;
    po.queues = queues;
    po.nqueues = 1;
    if (builtin)
        po.builtin = builtin;
    else
        po.fn = s_noop;
    jobq_pool_t *pool = NULL;
    int rc = jobq_pool_new(&po, &pool);
    if (rc == JOBQ_OK)
        rc = jobq_pool_start(pool);
    if (rc != JOBQ_OK)
        s_die("pool", rc);
    return pool;
}

static void
s_pool_stop(jobq_producer_t *p, jobq_pool_t **pool)
{
    jobq_pool_report_t rep;
    jobq_producer_stop_workers(p, S_QUEUE, 0);
    if (jobq_pool_wait(*pool, 20000, &rep) != JOBQ_OK)
        fprintf(stderr, "bench_net: pool stuck\n");
    jobq_pool_destroy(pool);
}

static void
s_job(jobq_job_t *job)
{
    jobq_job_init(job);
    job->queue = S_QUEUE;
    job->queue_len = sizeof S_QUEUE - 1;
    job->payload = S_PAYLOAD;
    job->payload_len = sizeof S_PAYLOAD - 1;
}

/* Runs a few jobs through, so that the workers are connected before timing. */
static void
s_warm_up(jobq_producer_t *p, int n)
{
    jobq_job_t jobs[64];
    for (int i = 0; i < n; i++)
        s_job(&jobs[i]);
    int rc = jobq_producer_submit_batch(p, jobs, (size_t)n, NULL, 20000);
    if (rc != JOBQ_OK)
        s_die("warm-up submit", rc);
    for (int i = 0; i < n; i++) {
        jobq_result_t res;
        if ((rc = jobq_producer_wait(p, &jobs[i].id, &res, 20000)) != JOBQ_OK)
            s_die("warm-up wait", rc);
    }
}

/* The number after "key": in the broker's STATS (`jobq stats --json`), or -1. */
static long long
s_broker_stat(const s_opts_t *o, const char *url, const char *key)
{
    char cmd[4 * PATH_MAX + 600], buf[1 << 16], pat[64];
    snprintf(cmd, sizeof cmd, "'%s' stats -u '%s' --json --curve-key '%s' --curve-server '%s'",
             o->jobq, url, s_curve ? s_ckey : "", s_curve ? s_spub : "");
    if (!s_curve || strncmp(url, "tcp://", 6) != 0)
        snprintf(cmd, sizeof cmd, "'%s' stats -u '%s' --json", o->jobq, url);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    pclose(f);
    buf[len] = '\0';
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(buf, pat);
    return at ? strtoll(at + strlen(pat), NULL, 10) : -1;
}

static void
s_w1(const s_opts_t *o, const char *transport)
{
    s_broker_t b;
    s_broker_start(o, transport, &b);
    jobq_pool_t *pool = s_pool_start(b.url, 2, o->prefetch, NULL);
    jobq_producer_t *p = NULL;
    jobq_producer_opts_t po = {0};
    po.no_results = 1; /* W1 only joins: the warm-up fetches its results with WAIT */
    if (s_curve && strcmp(transport, "tcp") == 0) {
        po.curve_key = s_ckey;
        po.curve_server = s_spub;
    }
    int rc = jobq_producer_open(b.url, &po, &p);
    if (rc != JOBQ_OK)
        s_die("producer", rc);
    s_warm_up(p, 64);
    jobq_job_t *jobs = malloc((size_t)o->n * sizeof *jobs);
    if (!jobs)
        s_die("malloc", 0);
    for (long i = 0; i < o->n; i++)
        s_job(&jobs[i]);
    double t0 = s_now();
    if ((rc = jobq_producer_submit_batch(p, jobs, (size_t)o->n, NULL, -1)) != JOBQ_OK)
        s_die("submit", rc);
    double t1 = s_now();
    if ((rc = jobq_producer_join(p, S_QUEUE, -1)) != JOBQ_OK)
        s_die("join", rc);
    double t2 = s_now();
    long long in = s_broker_stat(o, b.url, "msgs_in"), out = s_broker_stat(o, b.url, "msgs_out");
    s_pool_stop(p, &pool);
    jobq_producer_destroy(&p);
    s_broker_stop(&b);
    free(jobs);
    double secs = t2 - t0;
    printf("W1  %-4s n=%-8ld prefetch=%-4u %8.3f s  %10.0f jobs/s  (submit done at %.3f s; "
           "broker frames in/out per 1000 jobs: %.1f / %.1f)\n",
           transport, o->n, o->prefetch, secs, (double)o->n / secs, t1 - t0,
           1000.0 * (double)in / (double)o->n, 1000.0 * (double)out / (double)o->n);
    printf("{\"workload\":\"W1\",\"system\":\"jobq-%s\",\"n\":%ld,\"seconds\":%.6f,\"rate\":%.1f,"
           "\"prefetch\":%u,\"submit_seconds\":%.6f}\n",
           transport, o->n, secs, (double)o->n / secs, o->prefetch, t1 - t0);
    fflush(stdout);
}

static int
s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void
s_w2(const s_opts_t *o, const char *transport)
{
    s_broker_t b;
    s_broker_start(o, transport, &b);
    jobq_pool_t *pool = s_pool_start(b.url, 1, 1, "echo");
    jobq_producer_t *p = NULL;
    jobq_producer_opts_t po = {0};
    if (s_curve && strcmp(transport, "tcp") == 0) {
        po.curve_key = s_ckey;
        po.curve_server = s_spub;
    }
    int rc = jobq_producer_open(b.url, &po, &p);
    if (rc != JOBQ_OK)
        s_die("producer", rc);
    double *lat = malloc((size_t)o->rounds * sizeof *lat);
    if (!lat)
        s_die("malloc", 0);
    double start = 0;
    for (long i = -1000; i < o->rounds; i++) {
        if (i == 0)
            start = s_now();
        jobq_job_t job;
        jobq_result_t res;
        s_job(&job);
        double t0 = s_now();
        if ((rc = jobq_producer_submit(p, &job, 20000)) != JOBQ_OK)
            s_die("submit", rc);
        if ((rc = jobq_producer_wait(p, &job.id, &res, 20000)) != JOBQ_OK)
            s_die("wait", rc);
        if (res.output_len != job.payload_len)
            s_die("echo output", 0);
        if (i >= 0)
            lat[i] = (s_now() - t0) * 1e6;
    }
    double secs = s_now() - start;
    s_pool_stop(p, &pool);
    jobq_producer_destroy(&p);
    s_broker_stop(&b);
    qsort(lat, (size_t)o->rounds, sizeof *lat, s_cmp);
    double p50 = lat[o->rounds / 2], p99 = lat[o->rounds * 99 / 100],
           p999 = lat[o->rounds * 999 / 1000];
    printf("W2  %-4s rounds=%-7ld p50 %7.1f us  p99 %7.1f us  p99.9 %7.1f us\n", transport,
           o->rounds, p50, p99, p999);
    printf("{\"workload\":\"W2\",\"system\":\"jobq-%s\",\"n\":%ld,\"seconds\":%.6f,\"rate\":%.1f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f}\n",
           transport, o->rounds, secs, (double)o->rounds / secs, p50, p99, p999);
    fflush(stdout);
    free(lat);
}

static void
s_parse(int argc, char **argv, s_opts_t *o)
{
    *o = (s_opts_t){
        .n = 200000, .workload = "all", .transport = "both", .prefetch = 256, .rounds = 20000};
    const char *bin = getenv("JOBQ_BIN");
    int c;
    while ((c = getopt(argc, argv, "n:w:t:c:l:B:K:")) != -1) {
        if (c == 'n')
            o->n = atol(optarg);
        else if (c == 'w')
            o->workload = optarg;
        else if (c == 't')
            o->transport = optarg;
        else if (c == 'c')
            o->prefetch = (uint32_t)atol(optarg);
        else if (c == 'l')
            o->rounds = atol(optarg);
        else if (c == 'B')
            bin = optarg;
        else if (c == 'K') {
            s_curve = 1;
            snprintf(s_bkey, sizeof s_bkey, "%s/broker.key", optarg);
            snprintf(s_allow, sizeof s_allow, "%s/clients", optarg);
            snprintf(s_ckey, sizeof s_ckey, "%s/client.key", optarg);
            snprintf(s_spub, sizeof s_spub, "%s/broker.pub", optarg);
        } else {
            fprintf(stderr, "usage: bench_net [-n N] [-w W1|W2|all] [-t tcp|ipc|both] "
                            "[-c PREFETCH] [-l ROUNDS] [-B JOBQ] [-K KEYDIR]\n");
            exit(2);
        }
    }
    if (o->n < 1 || o->rounds < 1000 || o->prefetch < 1) {
        fprintf(stderr, "bench_net: -n >= 1, -l >= 1000, -c >= 1\n");
        exit(2);
    }
    if (bin) {
        snprintf(o->jobq, sizeof o->jobq, "%s", bin);
    } else {
        char self[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len < 0)
            s_die("readlink /proc/self/exe", 0);
        self[len] = '\0';
        snprintf(o->jobq, sizeof o->jobq, "%s/../jobq", dirname(self));
    }
}

int
main(int argc, char **argv)
{
    s_opts_t o;
    s_parse(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    const char *ts[2] = {"tcp", "ipc"};
    for (int t = 0; t < 2; t++) {
        if (strcmp(o.transport, "both") != 0 && strcmp(o.transport, ts[t]) != 0)
            continue;
        if (strcmp(o.workload, "W2") != 0)
            s_w1(&o, ts[t]);
        if (strcmp(o.workload, "W1") != 0)
            s_w2(&o, ts[t]);
    }
    return 0;
}
