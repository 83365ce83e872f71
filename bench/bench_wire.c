/*
 * bench/bench_wire.c: encode and decode rate of the msgpack wire codec
 * (common/wire.c) on SUBMIT frames of 1, 64 and 1024 jobs with 16-byte
 * payloads, the frames a producer sends the broker.
 *
 * Usage: bench_wire [SECONDS_PER_CASE]   (default 0.5)
 *
 * Prints a table, then one JSON object per result (PERFORMANCE.md): workload,
 * system, batch, n (jobs), seconds, rate (jobs/s), frames_per_s, frame_bytes.
 * Encoding reuses one wire_buf_t; decoding decodes and finalises one frame per
 * iteration, as the broker does.
 *
 * The decode cases run twice: with glibc's default malloc settings (system
 * "jobq-wire"), and after mallopt raised M_TRIM_THRESHOLD and M_TOP_PAD
 * (system "jobq-wire+mallopt"). Large frames allocate and free more than the
 * default 128 KiB trim threshold per decode, and glibc then returns the heap
 * top to the kernel and faults it back in on every frame; a broker binary can
 * avoid that with the same two mallopt calls.
 */
#include "common/clock.h"
#include "common/wire.h"
#include "jobq/errors.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_result {
    const char *workload, *system;
    uint32_t batch;
    uint64_t jobs, frames;
    double seconds;
    size_t frame_bytes;
} bench_result_t;

/* Fills msg with a SUBMIT of n jobs of 16-byte payloads (jobs: n entries). */
static void
s_make_submit(wire_msg_t *msg, jobq_job_t *jobs, uint32_t n)
{
    static const char payload[16] = "0123456789abcdef";
    for (uint32_t i = 0; i < n; i++) {
        jobq_job_init(&jobs[i]);
        jobs[i].queue = "bench";
        jobs[i].queue_len = 5;
        jobs[i].payload = payload;
        jobs[i].payload_len = sizeof payload;
    }
    wire_msg_init(msg, WIRE_SUBMIT);
    msg->fields = WIRE_F_REQ | WIRE_F_JOBS;
    msg->req = 1;
    msg->jobs = jobs;
    msg->njobs = n;
}

/* Encodes msg repeatedly for about budget_s seconds. */
static bench_result_t
s_bench_encode(wire_msg_t *msg, double budget_s)
{
    wire_buf_t buf = {0};
    bench_result_t r = {"wire_encode_submit", "jobq-wire", msg->njobs, 0, 0, 0, 0};
    int64_t start = jobq_now_ns(), end = start + (int64_t)(budget_s * 1e9), now;
    do {
        for (int k = 0; k < 64; k++) {
            buf.len = 0;
            if (wire_encode(msg, &buf) != JOBQ_OK) {
                fprintf(stderr, "encode: %s\n", msg->error);
                exit(1);
            }
        }
        r.frames += 64;
        now = jobq_now_ns();
    } while (now < end);
    r.seconds = (double)(now - start) / 1e9;
    r.jobs = r.frames * msg->njobs;
    r.frame_bytes = buf.len;
    wire_buf_fini(&buf);
    return r;
}

/* Decodes the frame in buf repeatedly for about budget_s seconds. */
static bench_result_t
s_bench_decode(const wire_buf_t *buf, uint32_t batch, double budget_s)
{
    bench_result_t r = {"wire_decode_submit", "jobq-wire", batch, 0, 0, 0, buf->len};
    int64_t start = jobq_now_ns(), end = start + (int64_t)(budget_s * 1e9), now;
    do {
        for (int k = 0; k < 64; k++) {
            wire_msg_t m;
            if (wire_decode(&m, buf->data, buf->len, 0) != JOBQ_OK || m.njobs != batch) {
                fprintf(stderr, "decode: %s\n", m.error);
                exit(1);
            }
            wire_msg_fini(&m);
        }
        r.frames += 64;
        now = jobq_now_ns();
    } while (now < end);
    r.seconds = (double)(now - start) / 1e9;
    r.jobs = r.frames * batch;
    return r;
}

static void
s_print_row(const bench_result_t *r)
{
    printf("%-20s %-18s %6u %12.0f %12.0f %11zu\n", r->workload, r->system, r->batch,
           (double)r->jobs / r->seconds, (double)r->frames / r->seconds, r->frame_bytes);
}

static void
s_print_json(const bench_result_t *r)
{
    printf("{\"workload\": \"%s\", \"system\": \"%s\", \"batch\": %u, \"n\": %llu, "
           "\"seconds\": %.4f, \"rate\": %.0f, \"frames_per_s\": %.0f, \"frame_bytes\": %zu}\n",
           r->workload, r->system, r->batch, (unsigned long long)r->jobs, r->seconds,
           (double)r->jobs / r->seconds, (double)r->frames / r->seconds, r->frame_bytes);
}

/* Runs the encode (unless decode_only) and decode cases of every batch size,
 * appending to results. */
static int
s_run(bench_result_t *results, int *nres, double budget, int decode_only, const char *system)
{
    static const uint32_t batches[] = {1, 64, 1024};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        jobq_job_t *jobs = calloc(batches[i], sizeof *jobs);
        wire_msg_t msg;
        wire_buf_t frame = {0};
        s_make_submit(&msg, jobs, batches[i]);
        if (!decode_only)
            results[(*nres)++] = s_bench_encode(&msg, budget);
        if (wire_encode(&msg, &frame) != JOBQ_OK)
            return -1;
        results[*nres] = s_bench_decode(&frame, batches[i], budget);
        results[(*nres)++].system = system;
        wire_buf_fini(&frame);
        free(jobs);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    double budget = argc > 1 ? atof(argv[1]) : 0.5;
    if (budget <= 0 || budget > 60) {
        fprintf(stderr, "usage: %s [SECONDS_PER_CASE (0-60], default 0.5]\n", argv[0]);
        return 2;
    }
    bench_result_t results[9];
    int nres = 0;
    if (s_run(results, &nres, budget, 0, "jobq-wire") != 0)
        return 1;
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    if (s_run(results, &nres, budget, 1, "jobq-wire+mallopt") != 0)
        return 1;
    printf("%-20s %-18s %6s %12s %12s %11s\n", "workload", "system", "batch", "jobs/s", "frames/s",
           "frame bytes");
    for (int i = 0; i < nres; i++)
        s_print_row(&results[i]);
    for (int i = 0; i < nres; i++)
        s_print_json(&results[i]);
    return 0;
}
