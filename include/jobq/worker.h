/*
 * jobq/worker.h: writing a job handler in C, and running pools of workers.
 *
 * A handler is called once per attempt of a job. It reads job->payload and
 * appends its result bytes to out; its return value is the verdict: 0 = done,
 * a positive number = failed with that exit code. The worker runtime reports
 * every result back to the producer (status, output, exit code or signal,
 * duration), whatever the transport.
 */
#ifndef JOBQ_WORKER_H
#define JOBQ_WORKER_H

#include "jobq/job.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A bounded, growable result buffer owned by the worker runtime. */
typedef struct jobq_output jobq_output_t;

/* Appends len bytes of data to out. Returns JOBQ_OK, or JOBQ_ETOOBIG (nothing
 * appended) when out would exceed its limit (JOBQ_PAYLOAD_MAX by default). */
int jobq_output_append(jobq_output_t *out, const void *data, size_t len);

/* Sets the error text reported with a failed result (copied, truncated to
 * JOBQ_ERROR_TEXT_MAX). */
void jobq_output_set_error(jobq_output_t *out, const char *text);

/* The handler signature. job and its slices are valid only during the call.
 * Returns 0 for done, > 0 for failed (the exit code to report). */
typedef int (*jobq_handler_fn)(const jobq_job_t *job, jobq_output_t *out, void *arg);

/* Returns 1 once the running attempt has passed its soft time limit (pool
 * option soft_time_limit_ms, `--soft-time-limit`), else 0. A long handler
 * polls it and wraps up: whatever it then returns, the attempt is reported
 * TIMEDOUT with "soft time limit of N ms reached" and its output kept. Only
 * meaningful inside a handler call, on the thread that runs it; no signal is
 * involved. The hard limit is not cooperative (docs/WORKERS.md). */
int jobq_job_soft_expired(void);

/* Creates an output buffer holding at most limit bytes (0 = JOBQ_PAYLOAD_MAX).
 * Caller owns it: free with jobq_output_destroy. */
jobq_output_t *jobq_output_new(size_t limit);
/* Frees out; NULL-safe; sets *out_p to NULL. */
void jobq_output_destroy(jobq_output_t **out_p);
/* Empties out (keeps its memory) for the next job. */
void jobq_output_reset(jobq_output_t *out);
/* The bytes appended so far (valid until the next append or reset) and their count. */
const void *jobq_output_data(const jobq_output_t *out);
size_t jobq_output_len(const jobq_output_t *out);
/* The error text set so far ("" when none). */
const char *jobq_output_error(const jobq_output_t *out);
/* 1 if an append was refused because of the limit since the last reset. */
int jobq_output_truncated(const jobq_output_t *out);

#ifdef __cplusplus
}
#endif
#endif
