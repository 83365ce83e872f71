/*
 * bench/bench_core.c: the broker core alone, no sockets (PERFORMANCE.md W3, W5).
 *
 * W3: queue N 16-byte jobs (default 1,000,000) in one core and report the
 * growth of the resident set (/proc/self/statm) divided by N: the memory a
 * queued job costs, id index and queue slots included.
 * W5: with D jobs already queued (1,000, then 10,000,000), run cycles of
 * submit B / reserve B / complete B (B = 64, the default credit) and report
 * jobs per second, overall and per phase; the target is a rate at 10 M that is
 * at least 0.7x the rate at 1 k. Each cycle runs twice: with one core call per
 * job ("single") and with the batch calls the reactor makes for a frame of
 * jobs or results ("batch": core_submit_batch, core_complete_batch).
 *
 * The machine is shared, so the shallow and the deep core stay alive side by
 * side and the W5 rounds alternate between them in chunks, timed with the
 * thread's CPU clock: time slices lost to other processes count for neither.
 *
 * Output: a table, with one JSON object per result on its own line
 * ({"workload","system":"core","n","seconds","rate",...}).
 *
 * Usage: bench_core [--n N] [--depths D1,D2] [--cycles C] [--batch B]
 *                   [--results R] [--quick]
 * (--results: the cores' results_max, default 100,000; --quick: N = 100,000,
 * depths 1,000 and 1,000,000, 200,000 cycles).
 */
#include "broker/core.h"
#include "common/clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char s_payload[16] = "0123456789abcdef";

typedef struct opts {
    uint64_t n;
    uint32_t results; /* results_max of the cores */
    uint64_t depths[2];
    uint64_t cycles;
    uint32_t batch;
} opts_t;

typedef struct w5 {
    uint64_t depth, jobs;
    int batched;
    double seconds;                         /* thread CPU time, all chunks */
    double submit_s, reserve_s, complete_s; /* wall time per phase */
    double *chunk_ns;                       /* ns per job of each chunk */
    size_t nchunks;
    double median_rate; /* jobs/s from the median chunk */
} w5_t;

static int64_t
s_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : (int64_t)resident * sysconf(_SC_PAGESIZE);
}

static uint32_t s_results_max = CORE_RESULTS_MAX_DEFAULT;

static core_t *
s_core(uint64_t max_jobs)
{
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.results_max = s_results_max;
    cfg.max_jobs = max_jobs > UINT32_MAX ? UINT32_MAX : (uint32_t)max_jobs;
    cfg.max_bytes = UINT64_MAX;
    core_t *c = core_new(&cfg);
    if (!c) {
        fprintf(stderr, "bench_core: core_new failed\n");
        exit(1);
    }
    return c;
}

static void
s_submit(core_t *c, const jobq_job_t *job, int64_t now)
{
    int rc = core_submit(c, job, 1, now, NULL, NULL);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "bench_core: submit: %s\n", jobq_strerror(rc));
        exit(1);
    }
}

static void
s_fill(core_t *c, const jobq_job_t *job, uint64_t n)
{
    int64_t now = jobq_now_ms();
    for (uint64_t i = 0; i < n; i++) {
        if ((i & 4095) == 0)
            now = jobq_now_ms();
        s_submit(c, job, now);
    }
}

/* W3: resident bytes per queued 16-byte job. */
static void
s_w3(const opts_t *o, const jobq_job_t *job)
{
    core_t *c = s_core(o->n);
    int64_t before = s_rss_bytes();
    int64_t t0 = jobq_now_ns();
    s_fill(c, job, o->n);
    double secs = (double)(jobq_now_ns() - t0) / 1e9;
    int64_t after = s_rss_bytes();
    double per_job = (double)(after - before) / (double)o->n;
    printf("%-28s %12" PRIu64 " %10.3f %14.0f %14.1f\n", "W3 queue 16-byte jobs", o->n, secs,
           (double)o->n / secs, per_job);
    printf("{\"workload\":\"W3\",\"system\":\"core\",\"n\":%" PRIu64
           ",\"seconds\":%.6f,\"rate\":%.0f,\"bytes_per_job\":%.1f,\"rss_before\":%" PRId64
           ",\"rss_after\":%" PRId64 "}\n",
           o->n, secs, (double)o->n / secs, per_job, before, after);
    fflush(stdout);
    core_destroy(&c);
}

static int64_t
s_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A filled core and the buffers for its rounds. */
typedef struct bed {
    core_t *core;
    uint64_t depth;
    jobq_job_t *jobs;
    core_job_view_t *views;
    jobq_result_t *res;
    int *rcs;
} bed_t;

static void
s_bed_init(bed_t *b, const opts_t *o, const jobq_job_t *job, uint64_t depth)
{
    b->depth = depth;
    b->core = s_core(depth + o->batch + 1);
    s_fill(b->core, job, depth);
    core_worker_credit(b->core, 42, o->batch, jobq_now_ms());
    b->jobs = calloc(o->batch, sizeof *b->jobs);
    b->views = calloc(o->batch, sizeof *b->views);
    b->res = calloc(o->batch, sizeof *b->res);
    b->rcs = calloc(o->batch, sizeof *b->rcs);
    for (uint32_t i = 0; i < o->batch; i++) {
        b->jobs[i] = *job;
        jobq_result_init(&b->res[i]);
    }
}

static void
s_bed_fini(bed_t *b)
{
    core_destroy(&b->core);
    free(b->jobs);
    free(b->views);
    free(b->res);
    free(b->rcs);
}

/* One round of the W5 cycle: submit B, reserve B, complete B; single calls
 * (one core call per job) or batch calls (one per round, as the reactor makes
 * them for a frame). Adds the phase (wall) times and the jobs to r. */
static void
s_round(bed_t *b, uint32_t batch, int batched, w5_t *r)
{
    static const uint64_t worker = 42;
    core_t *c = b->core;
    core_name_t q = {b->jobs[0].queue, b->jobs[0].queue_len};
    int64_t now = jobq_now_ms();
    int64_t t0 = jobq_now_ns();
    if (batched) {
        core_submit_batch(c, b->jobs, batch, 1, now, b->rcs, NULL, NULL);
        for (uint32_t i = 0; i < batch; i++)
            if (b->rcs[i] != JOBQ_OK)
                exit(1);
    } else {
        for (uint32_t i = 0; i < batch; i++)
            s_submit(c, &b->jobs[i], now);
    }
    int64_t t1 = jobq_now_ns();
    size_t n = 0;
    core_reserve(c, worker, &q, 1, now, batch, b->views, &n);
    for (size_t i = 0; i < n; i++) { /* the reactor encodes the views before its next call */
        b->res[i].id = b->views[i].id;
        b->res[i].attempt = b->views[i].attempt;
    }
    int64_t t2 = jobq_now_ns();
    if (batched) {
        core_complete_batch(c, worker, b->res, n, now, b->rcs);
    } else {
        for (size_t i = 0; i < n; i++)
            b->rcs[i] = core_complete(c, worker, &b->res[i], now);
    }
    for (size_t i = 0; i < n; i++)
        if (b->rcs[i] != JOBQ_OK) {
            fprintf(stderr, "bench_core: complete refused: %s\n", jobq_strerror(b->rcs[i]));
            exit(1);
        }
    core_event_t ev;
    while (core_event_next(c, &ev))
        ;
    int64_t t3 = jobq_now_ns();
    r->submit_s += (double)(t1 - t0) / 1e9;
    r->reserve_s += (double)(t2 - t1) / 1e9;
    r->complete_s += (double)(t3 - t2) / 1e9;
    r->jobs += n;
}

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* W5: the same cycle on a shallow and a deep core, in alternating chunks of
 * rounds so that both see the same machine (this one is shared and noisy),
 * first with single calls, then with batch calls. The rate reported is that
 * of the median chunk (robust against chunks another process disturbed); the
 * mean over all chunks is in the JSON as mean_rate. */
static void
s_w5(const opts_t *o, const jobq_job_t *job, w5_t shallow[2], w5_t deep[2])
{
    bed_t beds[2];
    s_bed_init(&beds[0], o, job, o->depths[0]);
    s_bed_init(&beds[1], o, job, o->depths[1]);
    const uint32_t chunk = 32; /* rounds per turn: 2,048 jobs with B = 64 */
    for (int batched = 0; batched < 2; batched++) {
        w5_t *r[2] = {&shallow[batched], &deep[batched]};
        for (int k = 0; k < 2; k++) {
            *r[k] = (w5_t){.depth = beds[k].depth, .batched = batched};
            for (uint32_t i = 0; i < 16; i++) { /* warm up, not counted */
                w5_t scratch = {0};
                s_round(&beds[k], o->batch, batched, &scratch);
            }
        }
        size_t maxchunks = (size_t)(o->cycles / ((uint64_t)o->batch * chunk)) + 2;
        for (int k = 0; k < 2; k++)
            r[k]->chunk_ns = calloc(maxchunks, sizeof(double));
        for (uint64_t turn = 0; r[0]->jobs < o->cycles || r[1]->jobs < o->cycles; turn++)
            for (int k = 0; k < 2; k++) {
                bed_t *b = &beds[(k + turn) % 2];
                w5_t *w = r[(k + turn) % 2];
                if (w->jobs >= o->cycles)
                    continue;
                uint64_t j0 = w->jobs;
                int64_t c0 = s_cpu_ns();
                for (uint32_t i = 0; i < chunk && w->jobs < o->cycles; i++)
                    s_round(b, o->batch, batched, w);
                double ns = (double)(s_cpu_ns() - c0);
                w->seconds += ns / 1e9;
                w->chunk_ns[w->nchunks++] = ns / (double)(w->jobs - j0);
            }
        for (int k = 0; k < 2; k++) {
            qsort(r[k]->chunk_ns, r[k]->nchunks, sizeof(double), s_cmp_double);
            r[k]->median_rate = 1e9 / r[k]->chunk_ns[r[k]->nchunks / 2];
            free(r[k]->chunk_ns);
            r[k]->chunk_ns = NULL;
        }
    }
    s_bed_fini(&beds[0]);
    s_bed_fini(&beds[1]);
}

static void
s_print_w5(const w5_t *r, double ratio)
{
    char label[64];
    snprintf(label, sizeof label, "W5 %s, %" PRIu64 " queued", r->batched ? "batch" : "single",
             r->depth);
    printf("%-28s %12" PRIu64 " %10.3f %14.0f %14s   submit %.0f/s reserve %.0f/s complete %.0f/s",
           label, r->jobs, r->seconds, r->median_rate, "-", (double)r->jobs / r->submit_s,
           (double)r->jobs / r->reserve_s, (double)r->jobs / r->complete_s);
    if (ratio > 0)
        printf("   ratio %.2f", ratio);
    printf("\n{\"workload\":\"W5\",\"system\":\"core\",\"n\":%" PRIu64
           ",\"seconds\":%.6f,\"rate\":%.0f,\"depth\":%" PRIu64
           ",\"calls\":\"%s\",\"clock\":\"thread_cpu\",\"mean_rate\":%.0f,\"submit_rate\":%.0f,"
           "\"reserve_rate\":%.0f,\"complete_rate\":%.0f",
           r->jobs, r->seconds, r->median_rate, r->depth, r->batched ? "batch" : "single",
           (double)r->jobs / r->seconds, (double)r->jobs / r->submit_s,
           (double)r->jobs / r->reserve_s, (double)r->jobs / r->complete_s);
    if (ratio > 0)
        printf(",\"ratio_to_shallow\":%.3f", ratio);
    printf("}\n");
    fflush(stdout);
}

static int
s_parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){1000000, CORE_RESULTS_MAX_DEFAULT, {1000, 10000000}, 1000000, 64};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            *o = (opts_t){100000, CORE_RESULTS_MAX_DEFAULT, {1000, 1000000}, 200000, 64};
        } else if (!strcmp(a, "--n") && v) {
            o->n = strtoull(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--depths") && v) {
            char *end;
            o->depths[0] = strtoull(v, &end, 10);
            o->depths[1] = *end == ',' ? strtoull(end + 1, NULL, 10) : o->depths[0];
            i++;
        } else if (!strcmp(a, "--results") && v) {
            o->results = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--cycles") && v) {
            o->cycles = strtoull(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--batch") && v) {
            o->batch = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else {
            fprintf(stderr, "usage: bench_core [--n N] [--depths D1,D2] [--cycles C] [--batch B] "
                            "[--quick]\n");
            return -1;
        }
    }
    if (o->n == 0 || o->cycles == 0 || o->batch == 0) {
        fprintf(stderr, "bench_core: N, C and B must be positive\n");
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    opts_t o;
    if (s_parse(argc, argv, &o) != 0)
        return 2;
    jobq_job_t job;
    jobq_job_init(&job);
    job.queue = "bench";
    job.queue_len = 5;
    job.payload = s_payload;
    job.payload_len = sizeof s_payload;

    printf("%-28s %12s %10s %14s %14s\n", "workload", "jobs", "seconds", "jobs/s", "bytes/job");
    s_w3(&o, &job);
    w5_t shallow[2], deep[2];
    s_w5(&o, &job, shallow, deep);
    double ratio[2];
    for (int b = 0; b < 2; b++) {
        ratio[b] = deep[b].median_rate / shallow[b].median_rate;
        s_print_w5(&shallow[b], 0);
        s_print_w5(&deep[b], ratio[b]);
    }
    printf("W5 ratio (%" PRIu64 " queued / %" PRIu64
           " queued): %.2f with batch calls, %.2f with single calls (target >= 0.70)\n",
           o.depths[1], o.depths[0], ratio[1], ratio[0]);
    return 0;
}
