/*
 * tests/support/net_support.h: helpers for tests of network workers and
 * producers over a real `jobq broker`: a broker on a chosen ipc:// URL (so a
 * test can restart it on the same path), `jobq` child processes with their
 * output in files, bounded reaping, and the broker's STATS as JSON.
 *
 * Every child gets PR_SET_PDEATHSIG(SIGKILL), so a failed test (its process
 * ends) never leaves one behind. Readiness is read, never slept for: the
 * broker's "listening on" line, or a STATS counter polled until a deadline.
 */
#ifndef JOBQ_TEST_NET_SUPPORT_H
#define JOBQ_TEST_NET_SUPPORT_H

#include "jobq/job.h"
#include "jobq/pool.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A `jobq broker --listen URL` child process. */
typedef struct ns_broker {
    pid_t pid;
    int out_fd; /* read end of its stdout */
    char url[320];
} ns_broker_t;

/* Makes a fresh temp dir (mode 0700) named after the test and pid into dir
 * (at least 256 bytes). Returns 0 or -1. */
int ns_tempdir(char *dir, size_t len);

/* Starts $JOBQ_BIN broker --listen url ARGS... (args NULL-terminated, may be
 * NULL) and waits up to 10 s for its "listening on" line. Returns 0 or -1. */
int ns_broker_start(ns_broker_t *b, const char *url, const char *const *args);

/* Sends sig to the broker and reaps it (SIGKILL after timeout_ms). Returns the
 * wait status, or -1. */
int ns_broker_stop(ns_broker_t *b, int sig, int64_t timeout_ms);

/* Starts $JOBQ_BIN with argv (NULL-terminated, argv[0] is the subcommand),
 * stdout and stderr to the files out and err (NULL: /dev/null). Returns the
 * pid, or -1. */
pid_t ns_spawn(const char *const *argv, const char *out, const char *err);

/* Waits up to timeout_ms for pid to end and reaps it; SIGKILLs it after the
 * timeout. Returns its wait status, or -1 if it had to be killed. */
int ns_reap(pid_t pid, int64_t timeout_ms);

/* Fetches the broker's STATS JSON into buf (NUL-terminated). Returns its
 * length, or -1 (no answer within 2 s). */
long ns_stats(const char *url, char *buf, size_t cap);

/* The number after "key": in the broker's STATS (first match), or -1. */
long long ns_stat(const char *url, const char *key);

/* Polls STATS every 10 ms until ns_stat(url, key) == want or timeout_ms
 * passes. Returns 0 when reached, -1 otherwise. */
int ns_wait_stat(const char *url, const char *key, long long want, int64_t timeout_ms);

/* Reads a whole (small) file into buf, NUL-terminated. Returns its length or -1. */
long ns_read_file(const char *path, char *buf, size_t cap);

/* Creates and starts a forked pool of `workers` network workers on url,
 * serving queue "q" with the built-in `builtin`, heartbeat hb_ms and prefetch
 * (0: the default). Returns the pool (the caller destroys it), or NULL. */
jobq_pool_t *ns_pool_start(const char *url, unsigned workers, const char *builtin, uint32_t hb_ms,
                           uint32_t prefetch);

/* Fills job with queue q and payload text (borrowed), ttr and max attempts
 * (0: defaults). */
void ns_job(jobq_job_t *job, const char *q, const char *text, uint32_t ttr_ms,
            uint32_t max_attempts);

#endif
