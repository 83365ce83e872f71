/*
 * tests/support/wire_client.h: a raw DEALER client of the jobq broker for
 * tests (encode, send, receive and decode wire messages with a timeout), and
 * a real `jobq broker` process on an ipc:// path in a fresh temp dir.
 *
 * Readiness without sleeps: the broker prints "listening on URL" on stdout
 * once it is bound; wc_broker_start reads that line through a pipe (bounded by
 * a timeout). Teardown sends SIGTERM and reaps the process (SIGKILL after a
 * bound), then removes the temp dir.
 *
 * Heartbeats: a client with autohb on (the default after wc_hello) sends a
 * HEARTBEAT every hb/2 ms while it waits in wc_recv, and wc_recv skips the
 * broker's HEARTBEATs; a test that wants a client to go silent simply stops
 * calling wc_recv on it (or turns autohb off).
 */
#ifndef JOBQ_TEST_WIRE_CLIENT_H
#define JOBQ_TEST_WIRE_CLIENT_H

#include "common/wire.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct wc wc_t;

/* Connects a DEALER to url (linger 0). Never NULL (aborts on failure). */
wc_t *wc_connect(const char *url);

/* Closes the socket and frees the client; NULL-safe; sets *c_p to NULL. */
void wc_close(wc_t **c_p);

/* Encodes m and sends it as one frame. Returns 0, or -1 (encode failure or
 * the send failed). */
int wc_send(wc_t *c, wire_msg_t *m);

/* Sends nframes raw frames as one multipart message. Returns 0 or -1. */
int wc_send_frames(wc_t *c, const void *const *frames, const size_t *lens, size_t nframes);

/* Receives the next message (HEARTBEATs skipped unless keep_hb is set) within
 * timeout_ms. m stays valid until the next wc_recv on c or wc_close (it points
 * into the received frame). Returns JOBQ_OK, JOBQ_ETIMEDOUT, or the decoder's
 * error code. */
int wc_recv(wc_t *c, wire_msg_t *m, int64_t timeout_ms);

/* Like wc_recv, but skips messages until one of type arrives. */
int wc_recv_type(wc_t *c, wire_type type, wire_msg_t *m, int64_t timeout_ms);

/* Sends HELLO {role, hb (0: none), name} and waits for WELCOME; sets the
 * client's heartbeat interval and turns autohb on. Returns JOBQ_OK, the
 * ERROR code, or JOBQ_ETIMEDOUT. */
int wc_hello(wc_t *c, int role, uint32_t hb_ms, const char *name);

/* Turns the automatic heartbeats (and the skipping of HEARTBEATs) on or off. */
void wc_set_autohb(wc_t *c, int on);
/* Makes wc_recv return HEARTBEAT messages too. */
void wc_keep_heartbeats(wc_t *c, int on);

/* SUBMIT {req, jobs: one per payload in queue q, ttr_ms and max attempts}.
 * ids may be NULL (the broker assigns them) or n ids to use. */
int wc_submit(wc_t *c, uint64_t req, const char *q, const char *const *payloads, size_t n,
              uint32_t ttr_ms, uint32_t max_attempts, const jobq_id_t *ids);

/* READY {credit, queues: q (NULL: no queues key)}. */
int wc_ready(wc_t *c, uint32_t credit, const char *q);

/* RESULT {results: one result (id, attempt, status, output)}. */
int wc_result(wc_t *c, const jobq_id_t *id, uint32_t attempt, jobq_status st, const char *out);

/* A `jobq broker` child process on ipc://DIR/broker.sock. */
typedef struct wc_broker {
    pid_t pid;
    int out_fd; /* read end of the broker's stdout */
    char dir[256];
    char url[320];
} wc_broker_t;

/* Starts $JOBQ_BIN broker --listen URL ARGS... (args NULL-terminated, may be
 * NULL) in a new temp dir and waits (at most 10 s) for its "listening on"
 * line. Returns 0 or -1. */
int wc_broker_start(wc_broker_t *b, const char *const *args);

/* 1 if the broker process still runs (not exited, not a zombie). */
int wc_broker_alive(wc_broker_t *b);

/* SIGTERM, then waits (at most timeout_ms, then SIGKILL) and reaps it; removes
 * the temp dir. Returns the wait status, or -1. */
int wc_broker_stop(wc_broker_t *b, int64_t timeout_ms);

/* Monotonic milliseconds. */
int64_t wc_now_ms(void);

/* Returns the value of the number after "\"key\":" in json (first match), or
 * -1 when absent. For counters in STATS replies. */
long long wc_json_num(const char *json, size_t len, const char *key);

#endif
