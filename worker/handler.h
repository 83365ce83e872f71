/*
 * worker/handler.h: running one attempt of a job through a handler.
 *
 * Three kinds: a C callback (embedded use), --exec CMD (run with /bin/sh -c in
 * its own process group; payload on stdin; stdout, bounded, is the result;
 * exit code is the status; JOBQ_JOB_ID, JOBQ_QUEUE, JOBQ_ATTEMPT in the
 * environment; killed with its process group when the time limit ends), and
 * the built-ins echo, upper, md5, sleep, fail, crash.
 *
 * How an attempt maps to a result (handler_run):
 *   built-in echo    output = payload; DONE
 *            upper   output = payload with a-z upper-cased (other bytes kept); DONE
 *            md5     output = 32 lowercase hex digits of MD5(payload); DONE
 *            sleep   payload = decimal milliseconds ("250", blanks around are
 *                    fine); DONE after that long; TIMEDOUT at the time limit if
 *                    it is shorter; a bad number: FAILED, exit code 1, error text
 *            fail    FAILED, exit code 1, "fail: the built-in always fails"
 *            crash   !!! calls abort(): the CALLING PROCESS dies of SIGABRT and
 *                    handler_run never returns. It exists to test crash
 *                    handling; in a pool of threads it kills the whole pool.
 *   callback         returns 0: DONE; > 0: FAILED with that exit code; < 0:
 *                    FAILED with exit code 1. Output as appended, error text as
 *                    set (none is added).
 *   --exec CMD       exit 0: DONE; exit N: FAILED, exit_code N; killed by a
 *                    signal: CRASHED, signal set; time limit reached: TIMEDOUT
 *                    (signal = the signal that ended it, or SIGTERM if it exited
 *                    by itself after SIGTERM; exit_code then its code). Failed,
 *                    crashed and timed-out results carry an error text.
 *   any kind         an output cut at out's limit is never DONE: FAILED (exit
 *                    code kept) with error text "output truncated at N bytes"
 *                    (appended after "; " to any text already set). The first N
 *                    bytes are kept; an --exec command's further output is read
 *                    and discarded so that it never blocks on a full pipe.
 *
 * --exec in detail: the command runs as `/bin/sh -c CMD` in a new process group
 * (its pid), with the default signal dispositions and an empty signal mask, fd
 * 0 a pipe carrying the payload (then EOF), fd 1 a pipe to the worker, fd 2 the
 * worker's stderr, and no other fd. Its environment is the worker's, with
 * JOBQ_JOB_ID (32 hex digits), JOBQ_QUEUE and JOBQ_ATTEMPT replaced. A command
 * may ignore its stdin: the worker neither blocks nor dies of SIGPIPE (SIGPIPE
 * is blocked in the calling thread while it writes, and a SIGPIPE it raised is
 * consumed before the mask is restored; no signal handler is installed). The
 * shell gets PR_SET_PDEATHSIG(SIGKILL), so it dies if the thread that started
 * it dies. The attempt ends when the shell exits (not when stdout reaches EOF);
 * what is left of its process group then gets SIGKILL, so a job's background
 * processes do not outlive it (use setsid in CMD to detach a process on
 * purpose). The child is reaped before handler_run returns.
 *
 * Threads: handler_run may be called from several threads at once, on the same
 * or different handlers (a handler is read-only while it runs), each thread
 * with its own out and res. The process must not reap children it did not
 * start (no waitpid(-1) or wait() in other threads, SIGCHLD not set to
 * SIG_IGN) while --exec handlers run: a stolen child is reported as FAILED
 * ("lost the command's exit status"). handler_run uses about 20 KiB of the
 * calling thread's stack (the child's stack until exec, then a read buffer).
 */
#ifndef JOBQ_WORKER_HANDLER_H
#define JOBQ_WORKER_HANDLER_H

#include "jobq/worker.h"

#include <stdint.h>

typedef struct handler handler_t;

/* Returns a handler for built-in name, or NULL if there is no such built-in.
 * Caller owns it (handler_destroy). */
handler_t *handler_new_builtin(const char *name);
/* Returns a handler that runs cmd through /bin/sh -c for each job (cmd is
 * copied). Caller owns it. */
handler_t *handler_new_exec(const char *cmd);
/* Returns a handler that calls fn(job, out, arg). Caller owns it; arg stays the
 * caller's. */
handler_t *handler_new_callback(jobq_handler_fn fn, void *arg);
/* Frees h; NULL-safe; sets *h_p to NULL. */
void handler_destroy(handler_t **h_p);
/* "echo, upper, md5, sleep, fail, crash": for usage texts. */
const char *handler_builtin_list(void);

/* Per-handler worker operations (docs/WORKERS.md), all off when zeroed. */
typedef struct handler_limits {
    uint32_t soft_ms; /* soft time limit per attempt (0 = none): --exec gets SIGTERM on
                         its process group, a C handler sees jobq_job_soft_expired() */
    uint32_t mem_mb;  /* --exec: RLIMIT_AS of the command, MiB (0 = inherited) */
    uint32_t cpu_s;   /* --exec: RLIMIT_CPU of the command, seconds (0 = inherited) */
    uint32_t files;   /* --exec: RLIMIT_NOFILE of the command (0 = inherited) */
    int fork_per_job; /* run each C or built-in call in a fresh child (worker/isolate.c) */
} handler_limits_t;

/* Sets h's limits (copied); call before the handler is used. */
void handler_set_limits(handler_t *h, const handler_limits_t *lim);

/* Runs one attempt of job through h, with a time limit (0 = none) after which
 * an --exec child's process group gets SIGTERM then, after a short grace
 * (half the limit, 10 ms to 1 s), SIGKILL (status TIMEDOUT); the sleep
 * built-in honours it too. With h's soft limit set (handler_set_limits), the
 * command gets SIGTERM at the soft limit and SIGKILL at the hard one, and a C
 * handler sees jobq_job_soft_expired(); with fork_per_job a C or built-in call
 * runs through isolate_run. queue names the queue for JOBQ_QUEUE (NULL: the
 * job's own queue). out is reset and filled; res is filled (id and attempt
 * from job; status, exit_code, signal, duration_us on the monotonic clock;
 * output and error slices pointing into out, valid until out is reset).
 * Returns 0, or -1 when the handler could not be started (fork or pipe
 * failed): res then says FAILED with the reason in its error text. */
int handler_run(handler_t *h, const jobq_job_t *job, const char *queue, uint32_t time_limit_ms,
                jobq_output_t *out, jobq_result_t *res);

/* handler_run without the fork-per-job indirection: what the per-job child of
 * worker/isolate.c calls. Same contract as handler_run. */
int handler_run_here(handler_t *h, const jobq_job_t *job, const char *queue, uint32_t time_limit_ms,
                     jobq_output_t *out, jobq_result_t *res);

/* The effective soft limit of an attempt with hard limit hard_ms: h's soft
 * limit when it is set and below the hard one, else 0. */
uint32_t handler_soft_ms(const handler_t *h, uint32_t hard_ms);

/* Runs h's command (cmd, limits lim, effective soft limit soft_ms) for job:
 * the --exec kind of handler_run_here, in worker/exec.c. Same contract. */
int exec_run(const char *cmd, const handler_limits_t *lim, uint32_t soft_ms, const jobq_job_t *job,
             const char *queue, uint32_t time_limit_ms, jobq_output_t *out, jobq_result_t *res);

/* Appends as much of data as out still holds, byte-exact up to its limit.
 * Returns 0 if all of data went in, -1 if some was dropped (out is then
 * marked truncated). */
int handler_append_bounded(jobq_output_t *out, const void *data, size_t len);

/* Sets res FAILED with exit_code and the error text (printf-style) in out. */
__attribute__((format(printf, 4, 5))) void handler_fail(jobq_output_t *out, jobq_result_t *res,
                                                        int exit_code, const char *fmt, ...);

/* Runs a C or built-in attempt in a fresh child of the calling process
 * (worker/isolate.c): the child calls handler_run_here and sends the result
 * back through a pipe; a child that dies is reported CRASHED with its signal,
 * one still running at the hard limit is SIGKILLed and reported TIMEDOUT.
 * Returns 0, or -1 when the child could not be started (res FAILED). */
int isolate_run(handler_t *h, const jobq_job_t *job, const char *queue, uint32_t time_limit_ms,
                jobq_output_t *out, jobq_result_t *res);

#endif
