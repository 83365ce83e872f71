/*
 * bench/bench_broker.c: W1, W1b, W2 and W3 of PERFORMANCE.md against the jobq
 * broker, with raw wire clients (common/wire.h over DEALER sockets).
 *
 *   W1   1 producer submits N jobs of 16 bytes (SUBMIT frames of -b jobs, up to
 *        -W frames unconfirmed); 2 worker processes take them (READY credit
 *        -c) and acknowledge each (one RESULT frame per DELIVER frame, no
 *        output); wall time from the first submit until JOIN_OK.
 *   W1b  the producer submits all N first (enqueue rate); then the 2 workers
 *        connect and drain them (drain rate, until JOIN_OK).
 *   W2   1 producer submits one job and waits for its result (the worker
 *        echoes the payload), 1,000 warm-up then -l rounds; p50/p99/p99.9.
 *   W3   N queued 16-byte jobs, no workers: broker RSS growth / N.
 *   W5   W1 with 1,000 jobs already queued, then with -D (default 10,000,000):
 *        the backlog sits in another queue of the same broker (its ids in the
 *        same index, its jobs in the same heap), so the ratio shows how the
 *        per-job cost grows with depth. Runs "1k, deep, 1k, deep" and prints
 *        the ratio of the medians.
 *
 * The broker runs in a forked child of this program (broker/reactor.h, the
 * same code as `jobq broker`), on tcp://127.0.0.1:* (or ipc with -t ipc), with
 * limits raised so that N jobs fit in one queue.
 *
 *   bench_broker [-n N] [-w W1|W1b|W2|W3|all] [-t tcp|ipc] [-c CREDIT] [-b BATCH]
 *                [-W WINDOW] [-l ROUNDS] [-p] [-D DEPTH] [-P PRODUCERS] [-j always|batch:MS|never]
 *
 * W4 (PERFORMANCE.md) is W1 with -j: the broker journals to a fresh temp dir
 * (broker/journal.h) with that fsync policy; -P splits the N jobs over that
 * many producer processes (W1 only).
 *
 * In W1, W1b and W3 the producer says HELLO with flags bit 0 (no result push):
 * it joins and does not want results; -p has them pushed anyway.
 *
 * Prints a table and one JSON object per result on its own line.
 */
#include "broker/journal.h"
#include "broker/reactor.h"
#include "common/clock.h"
#include "common/wire.h"
#include "jobq/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_WORKERS 2
#define S_QUEUE "bench"

typedef struct s_opts {
    long n;
    const char *workload;
    const char *transport;
    uint32_t credit, batch, window;
    long rounds;
    int push;   /* W1: have results pushed to the producer (-p) */
    long depth; /* W5: jobs queued before the run (-D) */
    int producers;
    const char *journal; /* fsync policy, or NULL: no journal */
} s_opts_t;

typedef struct s_broker {
    pid_t pid;
    int stop_fd; /* write end of the broker's stop pipe */
    char url[256];
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
s_die(const char *what)
{
    fprintf(stderr, "bench_broker: %s\n", what);
    exit(1);
}

/* ---- the broker child ---------------------------------------------------- */

static void
s_broker_start(s_broker_t *b, const s_opts_t *o)
{
    int stop[2], ready[2];
    if (pipe(stop) != 0 || pipe(ready) != 0)
        s_die("pipe");
    char listen[256];
    if (strcmp(o->transport, "ipc") == 0) {
        snprintf(b->dir, sizeof b->dir, "/tmp/jobq-bench-%d-XXXXXX", (int)getpid());
        if (!mkdtemp(b->dir))
            s_die("mkdtemp");
        snprintf(listen, sizeof listen, "ipc://%s/broker.sock", b->dir);
    } else {
        b->dir[0] = '\0';
        snprintf(listen, sizeof listen, "tcp://127.0.0.1:*");
    }
    b->pid = fork();
    if (b->pid == 0) {
        close(stop[1]);
        close(ready[0]);
        reactor_opts_t ro;
        reactor_opts_init(&ro);
        ro.listen[0] = listen;
        ro.nlisten = 1;
        ro.stop_fd = stop[0];
        ro.max_credit = 1u << 20;
        ro.core.max_jobs = UINT32_MAX;
        ro.core.max_bytes = UINT64_MAX / 2;
        reactor_t *r = NULL;
        char why[256];
        if (reactor_new(&ro, &r, why, sizeof why) != JOBQ_OK) {
            fprintf(stderr, "broker: %s\n", why);
            _exit(1);
        }
        journal_t *j = NULL;
        char jdir[128] = "";
        if (o->journal) {
            journal_opts_t jo;
            journal_opts_init(&jo);
            snprintf(jdir, sizeof jdir, "/tmp/jobq-bench-jrn-%d", (int)getpid());
            jo.dir = jdir;
            if (journal_policy_parse(o->journal, &jo.policy, &jo.batch_ms) != 0 ||
                journal_open(&jo, reactor_core(r), jobq_now_ms(), &j, why, sizeof why) != JOBQ_OK) {
                fprintf(stderr, "broker: journal: %s\n", why);
                _exit(1);
            }
            reactor_set_journal(r, j);
        }
        const char *ep = reactor_endpoint(r, 0);
        if (write(ready[1], ep, strlen(ep) + 1) < 0)
            _exit(1);
        close(ready[1]);
        reactor_run(r);
        if (j) {
            journal_stats_t st;
            journal_stats(j, &st);
            fprintf(stderr, "journal %s: %llu syncs, %llu writes, %llu bytes\n", o->journal,
                    (unsigned long long)st.syncs, (unsigned long long)st.writes,
                    (unsigned long long)st.bytes);
            journal_close(&j);
            char cmd[200];
            snprintf(cmd, sizeof cmd, "rm -rf %s", jdir);
            if (system(cmd) != 0)
                fprintf(stderr, "broker: cannot remove %s\n", jdir);
        }
        reactor_destroy(&r);
        _exit(0);
    }
    close(stop[0]);
    close(ready[1]);
    b->stop_fd = stop[1];
    ssize_t n = read(ready[0], b->url, sizeof b->url - 1);
    close(ready[0]);
    if (n <= 0)
        s_die("the broker did not start");
    b->url[n] = '\0';
}

static void
s_broker_stop(s_broker_t *b)
{
    char c = 1;
    if (write(b->stop_fd, &c, 1) < 0 || write(b->stop_fd, &c, 1) < 0)
        kill(b->pid, SIGKILL);
    close(b->stop_fd);
    waitpid(b->pid, NULL, 0);
    if (b->dir[0]) {
        char path[200];
        snprintf(path, sizeof path, "%s/broker.sock", b->dir);
        unlink(path);
        rmdir(b->dir);
    }
}

static uint64_t
s_rss(pid_t pid)
{
    char path[64];
    unsigned long size = 0, res = 0;
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* CPU seconds (user + system) the process pid used so far. */
static double
s_cpu(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- a raw client ------------------------------------------------------- */

typedef struct s_client {
    void *ctx, *sock;
    wire_buf_t buf;
    zmq_msg_t frame;
} s_client_t;

static void
s_send(s_client_t *c, wire_msg_t *m)
{
    c->buf.len = 0;
    if (wire_encode(m, &c->buf) != JOBQ_OK)
        s_die(m->error);
    if (zmq_send(c->sock, c->buf.data, c->buf.len, 0) < 0)
        s_die("zmq_send");
}

/* Receives one message (HEARTBEATs answered and skipped) within timeout_ms;
 * returns 0, or -1 on timeout. m points into c->frame until the next call. */
static int
s_recv(s_client_t *c, wire_msg_t *m, long timeout_ms)
{
    for (;;) {
        zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, timeout_ms) <= 0)
            return -1;
        zmq_msg_close(&c->frame);
        zmq_msg_init(&c->frame);
        if (zmq_msg_recv(&c->frame, c->sock, 0) < 0)
            s_die("zmq_msg_recv");
        if (wire_decode(m, zmq_msg_data(&c->frame), zmq_msg_size(&c->frame), 0) != JOBQ_OK)
            s_die(m->error);
        if (m->type != WIRE_HEARTBEAT)
            return 0;
        wire_msg_t h;
        wire_msg_init(&h, WIRE_HEARTBEAT);
        s_send(c, &h);
    }
}

/* Connects and says HELLO; flags 1 asks the broker not to push results. */
static void
s_connect(s_client_t *c, const char *url, int role, uint32_t flags)
{
    memset(c, 0, sizeof *c);
    int zero = 0;
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(c->sock, url) != 0)
        s_die("zmq_connect");
    zmq_msg_init(&c->frame);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_HELLO);
    m.fields = WIRE_F_ROLE | WIRE_F_HB | WIRE_F_FLAGS;
    m.flags = flags;
    m.role = (uint32_t)role;
    m.hb_ms = 30000;
    s_send(c, &m);
    if (s_recv(c, &m, 5000) != 0 || m.type != WIRE_WELCOME)
        s_die("no WELCOME");
    wire_msg_fini(&m);
}

static void
s_close(s_client_t *c)
{
    zmq_msg_close(&c->frame);
    zmq_close(c->sock);
    zmq_ctx_term(c->ctx);
    wire_buf_fini(&c->buf);
}

/* ---- workers ------------------------------------------------------------- */

/* A worker process: READY credit, then for each DELIVER one RESULT frame with
 * every job done (echo: the payload as output when echo is set). */
static void
s_worker(const char *url, uint32_t credit, int echo)
{
    s_client_t c;
    s_connect(&c, url, WIRE_ROLE_WORKER, 0);
    wire_msg_t m;
    wire_str_t q = {S_QUEUE, sizeof S_QUEUE - 1};
    wire_msg_init(&m, WIRE_READY);
    m.fields = WIRE_F_CREDIT | WIRE_F_QUEUES;
    m.credit = credit;
    m.queues = &q;
    m.nqueues = 1;
    s_send(&c, &m);
    jobq_result_t *res = calloc(WIRE_MAX_BATCH, sizeof *res);
    for (;;) {
        if (s_recv(&c, &m, -1) != 0)
            break;
        if (m.type == WIRE_DISCONNECT || m.type == WIRE_SENTINEL)
            break;
        if (m.type != WIRE_DELIVER) {
            wire_msg_fini(&m);
            continue;
        }
        for (uint32_t i = 0; i < m.njobs; i++) {
            jobq_result_init(&res[i]);
            res[i].id = m.jobs[i].id;
            res[i].attempt = m.jobs[i].attempt;
            if (echo) {
                res[i].output = m.jobs[i].payload;
                res[i].output_len = m.jobs[i].payload_len;
            }
        }
        wire_msg_t r;
        wire_msg_init(&r, WIRE_RESULT);
        r.fields = WIRE_F_RESULTS;
        r.results = res;
        r.nresults = m.njobs;
        s_send(&c, &r);
        wire_msg_fini(&m);
    }
    free(res);
    s_close(&c);
    _exit(0);
}

static void
s_workers_start(pid_t *pids, int n, const char *url, uint32_t credit, int echo)
{
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            s_worker(url, credit, echo);
        if (pids[i] < 0)
            s_die("fork");
    }
}

static void
s_workers_stop(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        waitpid(pids[i], NULL, 0);
}

/* ---- the producer -------------------------------------------------------- */

/* Submits n 16-byte jobs to queue in frames of batch jobs, at most window
 * frames unconfirmed; reads and drops pushed results meanwhile. */
static void
s_submit_to(s_client_t *c, const char *queue, long n, uint32_t batch, uint32_t window)
{
    static const char payload[16] = "0123456789abcdef";
    jobq_job_t *jobs = calloc(batch, sizeof *jobs);
    for (uint32_t i = 0; i < batch; i++) {
        jobq_job_init(&jobs[i]);
        jobs[i].queue = queue;
        jobs[i].queue_len = (uint32_t)strlen(queue);
        jobs[i].payload = payload;
        jobs[i].payload_len = sizeof payload;
    }
    long sent = 0, confirmed = 0;
    uint64_t req = 0;
    uint32_t inflight = 0;
    while (confirmed < n) {
        while (sent < n && inflight < window) {
            uint32_t k = (uint32_t)(n - sent < batch ? n - sent : batch);
            wire_msg_t m;
            wire_msg_init(&m, WIRE_SUBMIT);
            m.fields = WIRE_F_REQ | WIRE_F_JOBS;
            m.req = ++req;
            m.jobs = jobs;
            m.njobs = k;
            s_send(c, &m);
            sent += k;
            inflight++;
        }
        wire_msg_t r;
        if (s_recv(c, &r, 60000) != 0)
            s_die("no SUBMIT_OK in 60 s");
        if (r.type == WIRE_SUBMIT_OK) {
            for (uint32_t i = 0; i < r.ncodes; i++)
                if (r.codes[i] != JOBQ_OK)
                    s_die("a job was refused");
            confirmed += r.nids;
            inflight--;
        } else if (r.type == WIRE_ERROR) {
            s_die("ERROR from the broker");
        }
        wire_msg_fini(&r);
    }
    free(jobs);
}

static void
s_submit_all(s_client_t *c, long n, uint32_t batch, uint32_t window)
{
    s_submit_to(c, S_QUEUE, n, batch, window);
}

/* JOIN the queue; reads and drops results until JOIN_OK. */
static void
s_join(s_client_t *c)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_JOIN);
    m.fields = WIRE_F_REQ | WIRE_F_QUEUE;
    m.req = UINT64_MAX;
    m.queue = (wire_str_t){S_QUEUE, sizeof S_QUEUE - 1};
    s_send(c, &m);
    for (;;) {
        if (s_recv(c, &m, 120000) != 0)
            s_die("no JOIN_OK in 120 s");
        int done = m.type == WIRE_JOIN_OK && m.count == 0;
        wire_msg_fini(&m);
        if (done)
            return;
    }
}

/* Prints one result; cpu is the broker's CPU seconds over the same span. */
static void
s_report(const char *w, const s_opts_t *o, long n, double secs, double cpu)
{
    double rate = secs > 0 ? (double)n / secs : 0, us = cpu * 1e6 / (double)n;
    printf("%-7s %-5s %10ld %8.3f s %10.0f jobs/s  broker %.2f us cpu/job\n", w, o->transport, n,
           secs, rate, us);
    printf("{\"workload\":\"%s\",\"system\":\"jobq-broker-%s\",\"n\":%ld,\"seconds\":%.6f,"
           "\"rate\":%.0f,\"broker_cpu_us_per_job\":%.2f,\"credit\":%u,\"batch\":%u,"
           "\"push\":%s,\"producers\":%d,\"journal\":\"%s\"}\n",
           w, o->transport, n, secs, rate, us, o->credit, o->batch, o->push ? "true" : "false",
           o->producers, o->journal ? o->journal : "none");
}

/* Prints the broker's messages in and out per job (how well batching works). */
static void
s_frames(s_client_t *c, long n)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_STATS);
    m.fields = WIRE_F_REQ;
    m.req = 1;
    s_send(c, &m);
    for (;;) {
        if (s_recv(c, &m, 10000) != 0)
            return;
        if (m.type == WIRE_STATS_REPLY)
            break;
        wire_msg_fini(&m);
    }
    const char *in = memmem(m.data.ptr, m.data.len, "\"msgs_in\":", 10);
    const char *out = memmem(m.data.ptr, m.data.len, "\"msgs_out\":", 11);
    if (in && out)
        printf("        broker messages per 1000 jobs: %.1f in, %.1f out\n",
               atof(in + 10) * 1000.0 / (double)n, atof(out + 11) * 1000.0 / (double)n);
    wire_msg_fini(&m);
}

/* W1 (burst 0) or W1b (burst 1) after depth jobs were queued in another
 * queue; returns the W1 rate. */
static double
s_w1_at(const s_opts_t *o, int burst, long depth)
{
    s_broker_t b;
    pid_t w[S_WORKERS];
    s_broker_start(&b, o);
    s_client_t p;
    s_connect(&p, b.url, WIRE_ROLE_PRODUCER, o->push ? 0 : 1);
    if (depth > 0)
        s_submit_to(&p, "backlog", depth, WIRE_MAX_BATCH, 8);
    if (!burst)
        s_workers_start(w, S_WORKERS, b.url, o->credit, 0);
    double c0 = s_cpu(b.pid), t0 = s_now();
    pid_t prod[64];
    int np = o->producers > 1 && !burst ? o->producers : 1;
    long share = o->n / np;
    for (int k = 1; k < np; k++) { /* the other producers: processes of their own */
        fflush(NULL);
        if ((prod[k] = fork()) == 0) {
            s_client_t q;
            s_connect(&q, b.url, WIRE_ROLE_PRODUCER, 1);
            s_submit_all(&q, share, o->batch, o->window);
            s_close(&q);
            _exit(0);
        }
    }
    s_submit_all(&p, o->n - share * (np - 1), o->batch, o->window);
    for (int k = 1; k < np; k++)
        waitpid(prod[k], NULL, 0);
    double c1 = s_cpu(b.pid), t1 = s_now();
    if (burst)
        s_workers_start(w, S_WORKERS, b.url, o->credit, 0);
    s_join(&p);
    double c2 = s_cpu(b.pid), t2 = s_now();
    if (burst) {
        s_report("W1b-enq", o, o->n, t1 - t0, c1 - c0);
        s_report("W1b-drn", o, o->n, t2 - t1, c2 - c1);
    } else {
        s_report(depth == 0      ? "W1"
                 : depth <= 1000 ? "W5-1k"
                                 : "W5-deep",
                 o, o->n, t2 - t0, c2 - c0);
    }
    s_frames(&p, o->n);
    s_workers_stop(w, S_WORKERS);
    s_close(&p);
    s_broker_stop(&b);
    return t2 > t0 ? (double)o->n / (t2 - t0) : 0;
}

static void
s_w1(const s_opts_t *o, int burst)
{
    s_w1_at(o, burst, 0);
}

static void
s_w5(const s_opts_t *o)
{
    double shallow[2], deep[2];
    for (int i = 0; i < 2; i++) {
        printf("W5 round %d: 1000 queued, then %ld queued\n", i + 1, o->depth);
        fflush(stdout);
        shallow[i] = s_w1_at(o, 0, 1000);
        deep[i] = s_w1_at(o, 0, o->depth);
    }
    double s = shallow[0] > shallow[1] ? shallow[0] : shallow[1];
    double d = deep[0] > deep[1] ? deep[0] : deep[1];
    printf("W5 best of 2: %.0f jobs/s at 1000 queued, %.0f at %ld queued: %.2fx\n", s, d, o->depth,
           s > 0 ? d / s : 0);
    printf("{\"workload\":\"W5\",\"system\":\"jobq-broker-%s\",\"n\":%ld,\"depth\":%ld,"
           "\"rate\":%.0f,\"rate_shallow\":%.0f,\"ratio\":%.3f}\n",
           o->transport, o->n, o->depth, d, s, s > 0 ? d / s : 0);
}

static int
s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void
s_w2(const s_opts_t *o)
{
    s_broker_t b;
    pid_t w[1];
    s_broker_start(&b, o);
    s_workers_start(w, 1, b.url, 16, 1);
    s_client_t p;
    s_connect(&p, b.url, WIRE_ROLE_PRODUCER, 0);
    double *lat = calloc((size_t)o->rounds, sizeof *lat);
    jobq_job_t job;
    jobq_job_init(&job);
    job.queue = S_QUEUE;
    job.queue_len = sizeof S_QUEUE - 1;
    job.payload = "0123456789abcdef";
    job.payload_len = 16;
    for (long i = -1000; i < o->rounds; i++) {
        wire_msg_t m;
        wire_msg_init(&m, WIRE_SUBMIT);
        m.fields = WIRE_F_REQ | WIRE_F_JOBS;
        m.req = (uint64_t)(i + 1000);
        m.jobs = &job;
        m.njobs = 1;
        double t0 = s_now();
        s_send(&p, &m);
        for (int got = 0; !got;) {
            if (s_recv(&p, &m, 10000) != 0)
                s_die("no result in 10 s");
            got = m.type == WIRE_RESULTS;
            wire_msg_fini(&m);
        }
        if (i >= 0)
            lat[i] = (s_now() - t0) * 1e6;
    }
    qsort(lat, (size_t)o->rounds, sizeof *lat, s_cmp);
    double p50 = lat[o->rounds / 2], p99 = lat[o->rounds * 99 / 100];
    double p999 = lat[o->rounds * 999 / 1000];
    printf("%-6s %-8s %10ld  p50 %.0f us  p99 %.0f us  p99.9 %.0f us\n", "W2", o->transport,
           o->rounds, p50, p99, p999);
    printf("{\"workload\":\"W2\",\"system\":\"jobq-broker-%s\",\"n\":%ld,\"p50_us\":%.1f,"
           "\"p99_us\":%.1f,\"p999_us\":%.1f}\n",
           o->transport, o->rounds, p50, p99, p999);
    free(lat);
    s_close(&p);
    s_workers_stop(w, 1);
    s_broker_stop(&b);
}

static void
s_w3(const s_opts_t *o)
{
    s_broker_t b;
    s_broker_start(&b, o);
    s_client_t p;
    s_connect(&p, b.url, WIRE_ROLE_PRODUCER, 1);
    uint64_t before = s_rss(b.pid);
    s_submit_all(&p, o->n, o->batch, o->window);
    uint64_t after = s_rss(b.pid);
    double per = (double)(after - before) / (double)o->n;
    printf("%-6s %-8s %10ld  %.1f bytes per queued job (rss %.1f -> %.1f MiB)\n", "W3",
           o->transport, o->n, per, before / 1048576.0, after / 1048576.0);
    printf("{\"workload\":\"W3\",\"system\":\"jobq-broker-%s\",\"n\":%ld,\"bytes_per_job\":%.1f}\n",
           o->transport, o->n, per);
    s_close(&p);
    s_broker_stop(&b);
}

int
main(int argc, char **argv)
{
    s_opts_t o = {1000000, "all", "tcp", 1024, 256, 16, 20000, 0, 10000000, 1, NULL};
    int c;
    while ((c = getopt(argc, argv, "n:w:t:c:b:W:l:pD:P:j:")) != -1) {
        switch (c) {
        case 'n':
            o.n = atol(optarg);
            break;
        case 'w':
            o.workload = optarg;
            break;
        case 't':
            o.transport = optarg;
            break;
        case 'c':
            o.credit = (uint32_t)atol(optarg);
            break;
        case 'b':
            o.batch = (uint32_t)atol(optarg);
            break;
        case 'W':
            o.window = (uint32_t)atol(optarg);
            break;
        case 'l':
            o.rounds = atol(optarg);
            break;
        case 'p':
            o.push = 1;
            break;
        case 'D':
            o.depth = atol(optarg);
            break;
        case 'P':
            o.producers = atoi(optarg);
            break;
        case 'j':
            o.journal = optarg;
            break;
        default:
            fprintf(stderr, "usage: bench_broker [-n N] [-w W1|W1b|W2|W3|W5|all] [-t tcp|ipc] "
                            "[-c CREDIT] [-b BATCH] [-W WINDOW] [-l ROUNDS] [-p] [-D DEPTH] "
                            "[-P PRODUCERS] [-j always|batch:MS|never]\n");
            return 2;
        }
    }
    if (o.n < 1 || o.batch < 1 || o.batch > WIRE_MAX_BATCH || o.window < 1 || o.rounds < 100 ||
        o.depth < 1 || o.producers < 1 || o.producers > 64 ||
        (strcmp(o.transport, "tcp") != 0 && strcmp(o.transport, "ipc") != 0))
        return fprintf(stderr, "bench_broker: bad option value\n"), 2;
    signal(SIGPIPE, SIG_IGN);
    int all = strcmp(o.workload, "all") == 0;
    if (all || strcmp(o.workload, "W1") == 0)
        s_w1(&o, 0);
    if (all || strcmp(o.workload, "W1b") == 0)
        s_w1(&o, 1);
    if (all || strcmp(o.workload, "W2") == 0)
        s_w2(&o);
    if (all || strcmp(o.workload, "W3") == 0)
        s_w3(&o);
    if (strcmp(o.workload, "W5") == 0) /* not in "all": it queues 10 M jobs twice */
        s_w5(&o);
    return 0;
}
