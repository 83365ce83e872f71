/*
 * tests/support/sec_support.h: helpers for the security tests: a temp dir
 * with real key files (broker, alice, bob, mallory; alice and bob in the
 * allow-list directory), a real `jobq broker` with CURVE on
 * tcp://127.0.0.1:0 (the port read back from its "listening on" line) plus
 * an ipc:// endpoint for unauthenticated observation (stats), its stderr in
 * a file, and raw DEALER clients with or without CURVE.
 *
 * Every child gets PR_SET_PDEATHSIG(SIGKILL); readiness is read from the
 * broker's stdout file, never slept for.
 */
#ifndef JOBQ_TEST_SEC_SUPPORT_H
#define JOBQ_TEST_SEC_SUPPORT_H

#include "common/wire.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zmq.h>

typedef struct ss_env {
    char dir[256];     /* the temp dir (0700) */
    char clients[320]; /* DIR/clients: alice.pub, bob.pub */
} ss_env_t;

typedef struct ss_broker {
    pid_t pid;
    char tcp[128]; /* tcp://127.0.0.1:PORT */
    char ipc[320]; /* ipc://DIR/b-N.sock, no CURVE */
    char err[320]; /* its stderr */
    char out[320]; /* its stdout */
} ss_broker_t;

/* Makes the temp dir and the key files DIR/NAME.key and DIR/NAME.pub for
 * broker, alice, bob, mallory; copies alice.pub and bob.pub to the
 * clients dir. Returns 0 or -1. */
int ss_env_init(ss_env_t *e);

/* Removes the temp dir and everything in it. */
void ss_env_fini(ss_env_t *e);

/* Polls the broker's STATS (at url) until the number after "key": is at
 * least want, up to timeout_ms. Returns 0 when reached, -1 otherwise. */
int ss_wait_ge(const char *url, const char *key, long long want, int64_t timeout_ms);

/* DIR/NAME.key or DIR/NAME.pub into buf. */
const char *ss_path(const ss_env_t *e, const char *name, const char *ext, char *buf, size_t len);

/* Starts $JOBQ_BIN broker -l tcp://127.0.0.1:0 -l ipc://DIR/... --curve-key
 * DIR/broker.key --curve-clients DIR/clients ARGS... (curve = 0 leaves the
 * two CURVE options out), with JOBQ_FAULT=fault when fault is not NULL and
 * JOBQ_LOG=info. Waits up to 10 s for both "listening on" lines. Returns 0
 * or -1. */
int ss_broker_start(ss_broker_t *b, const ss_env_t *e, int curve, const char *fault,
                    const char *const *args);

/* SIGTERM, then reaps (SIGKILL after 5 s). Returns the wait status. */
int ss_broker_stop(ss_broker_t *b);

/* A DEALER in ctx connected to url; CURVE client with DIR/key.key and
 * DIR/server.pub when key is not NULL; routing id rid when not NULL. Linger
 * 0, handshake ivl 2 s. Never NULL. */
void *ss_dealer(void *ctx, const ss_env_t *e, const char *url, const char *key, const char *server,
                const char *rid);

/* Encodes and sends m. Returns 0 or -1. */
int ss_send(void *sock, wire_msg_t *m);

/* Receives the next message other than HEARTBEAT within timeout_ms into m
 * (decoded from *frame, which the caller zmq_msg_init'ed and closes).
 * Returns JOBQ_OK, JOBQ_ETIMEDOUT or the decode error. */
int ss_recv(void *sock, zmq_msg_t *frame, wire_msg_t *m, int64_t timeout_ms);

/* HELLO {role, name} and waits for WELCOME. Returns JOBQ_OK, JOBQ_ETIMEDOUT
 * (no answer: e.g. a refused handshake) or the ERROR's code. */
int ss_hello(void *sock, int role, const char *name, int64_t timeout_ms);

/* 1 if the file contains needle. */
int ss_file_has(const char *path, const char *needle);

/* The first "secret Z85" of a .key file into out[41]. Returns 0 or -1. */
int ss_secret_of(const char *key_path, char *out);

/* Runs $JOBQ_BIN args... with stdout and stderr to files (NULL: /dev/null)
 * and waits up to timeout_ms; returns the exit code, or -1 if it had to be
 * killed or died by a signal. */
int ss_run(const char *const *args, const char *out, const char *err, int64_t timeout_ms);

/* Monotonic ms. */
int64_t ss_now_ms(void);

#endif
