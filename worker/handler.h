/*
 * worker/handler.h: running one attempt of a job through a handler.
 *
 * Three kinds: a C callback (embedded use), --exec CMD (run with /bin/sh -c in
 * its own process group; payload on stdin; stdout, bounded, is the result;
 * exit code is the status; JOBQ_JOB_ID, JOBQ_QUEUE, JOBQ_ATTEMPT in the
 * environment; killed with its process group when the time limit ends), and
 * the built-ins echo, upper, md5, sleep, fail, crash.
 */
#ifndef JOBQ_WORKER_HANDLER_H
#define JOBQ_WORKER_HANDLER_H

#include "jobq/worker.h"

#include <stdint.h>

typedef struct handler handler_t;

/* Returns a handler for built-in name, or NULL if there is no such built-in.
 * Caller owns it (handler_destroy). */
handler_t *handler_new_builtin(const char *name);
/* Returns a handler that runs cmd through /bin/sh -c for each job. Caller owns it. */
handler_t *handler_new_exec(const char *cmd);
/* Returns a handler that calls fn(job, out, arg). Caller owns it. */
handler_t *handler_new_callback(jobq_handler_fn fn, void *arg);
/* Frees h; NULL-safe; sets *h_p to NULL. */
void handler_destroy(handler_t **h_p);
/* "echo, upper, md5, sleep, fail, crash": for usage texts. */
const char *handler_builtin_list(void);

/* Runs one attempt of job through h, with a time limit (0 = none) after which
 * an --exec child's process group gets SIGTERM then, after a short grace,
 * SIGKILL (status TIMEDOUT). queue names the queue for JOBQ_QUEUE. out is reset
 * and filled; res is filled (id and attempt from job; status, exit_code,
 * signal, duration_us; output and error slices pointing into out, valid until
 * out is reset). Returns 0, or -1 when the handler could not be started (fork
 * or pipe failed): res then says FAILED with the reason in its error text. */
int handler_run(handler_t *h, const jobq_job_t *job, const char *queue, uint32_t time_limit_ms,
                jobq_output_t *out, jobq_result_t *res);

#endif
