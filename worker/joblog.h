/*
 * worker/joblog.h: a job log in GNU parallel's --joblog layout, and reading
 * one back for --resume / --resume-failed (docs/WORKERS.md).
 *
 * One tab-separated line per finished job, after the header
 *   Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
 * Seq counts inputs from 1, Host is ":" (this machine, as GNU parallel
 * writes it), Starttime is Unix seconds with 3 decimals, JobRuntime seconds
 * with 3 decimals, Send/Receive the input/output bytes, Exitval the exit code
 * (1 for a failure without one), Signal the signal that ended it (0 if none),
 * Command the input with tabs, CR and LF turned into spaces.
 */
#ifndef JOBQ_WORKER_JOBLOG_H
#define JOBQ_WORKER_JOBLOG_H

#include "jobq/job.h"

#include <stddef.h>
#include <stdint.h>

typedef struct joblog joblog_t;

/* Opens path for appending (creating it 0644), writing the header when the
 * file is empty. Returns the log (caller owns it: joblog_close) or NULL with
 * errno set. */
joblog_t *joblog_open(const char *path);

/* Appends the line of result res for input number seq (from 1), which started
 * at start_ms (Unix ms) with input bytes in[0..len). Flushed at once, so an
 * interrupted run leaves whole lines. Returns 0 or -1. */
int joblog_write(joblog_t *jl, long long seq, int64_t start_ms, const jobq_result_t *res,
                 const void *in, size_t len);

/* Closes the log; NULL-safe; sets *jl_p to NULL. */
void joblog_close(joblog_t **jl_p);

/* What an existing log says, for resuming. */
typedef struct joblog_index joblog_index_t;

/* Reads the log at path (a missing file is an empty log). Returns the index
 * (caller owns it: joblog_index_free) or NULL with errno set. */
joblog_index_t *joblog_index_load(const char *path);

/* Returns 1 if input number seq with bytes in[0..len) should be skipped: it
 * is in the log with the same command and succeeded (Exitval and Signal 0),
 * or, when failed_too is set (--resume), ran at all. */
int joblog_index_skip(const joblog_index_t *ix, long long seq, const void *in, size_t len,
                      int failed_too);

/* Frees ix; NULL-safe. */
void joblog_index_free(joblog_index_t *ix);

#endif
