/*
 * common/conn.h: a client's connection to a jobq broker: one ZeroMQ DEALER
 * socket, the HELLO/WELCOME handshake, heartbeats both ways, and reconnection.
 * Shared by the producer client, the network worker and the admin commands.
 *
 * Not thread-safe: one thread uses a connection (ZeroMQ sockets are not
 * shared between threads).
 */
#ifndef JOBQ_COMMON_CONN_H
#define JOBQ_COMMON_CONN_H

#include "common/wire.h"

#include <stddef.h>
#include <stdint.h>

typedef struct conn conn_t;

#define CONN_HB_DEFAULT_MS 1000u
#define CONN_LIVENESS 3 /* heartbeat intervals of silence before the broker counts as lost */

/* Returns a connection (not yet connected) to endpoint ("tcp://..." or
 * "ipc://...") for role (WIRE_ROLE_*), announcing name (may be NULL) and
 * asking for heartbeats every hb_ms (0: CONN_HB_DEFAULT_MS). Caller owns it. */
conn_t *conn_new(const char *endpoint, int role, const char *name, uint32_t hb_ms);

/* Makes the connection a CURVE client from the next conn_connect on:
 * key_file is this client's key pair (jobq keygen's NAME.key), server_pub
 * the broker's public key file; both paths are copied and the files read at
 * each socket open (keys are not kept in memory between opens). NULL, NULL
 * turns CURVE off. A file that cannot be used makes conn_connect return
 * JOBQ_EFORBIDDEN, JOBQ_ECORRUPT, JOBQ_ENOTFOUND or JOBQ_EINVAL (one given
 * without the other), with the reason logged. */
void conn_set_curve(conn_t *c, const char *key_file, const char *server_pub);

/* Sets the flags sent in HELLO from the next conn_connect on (WIRE HELLO
 * flags; bit 0, producers: the broker pushes no results). 0, the default,
 * sends no flags field. */
void conn_set_hello_flags(conn_t *c, uint32_t flags);

/* Sends DISCONNECT if connected, closes the socket (without lingering on
 * unsent messages) and frees the connection. NULL-safe; sets *c_p to NULL. */
void conn_destroy(conn_t **c_p);

/* Opens a fresh socket, sends HELLO and waits up to timeout_ms for WELCOME.
 * Returns JOBQ_OK; JOBQ_ETIMEDOUT (no broker answered); JOBQ_EAUTH (CURVE:
 * the broker refused the handshake, noticed within ~100 ms); JOBQ_EVERSION;
 * JOBQ_EPROTO (an unexpected answer); JOBQ_ESYS. Any earlier socket is closed
 * first, dropping whatever it had not sent. */
int conn_connect(conn_t *c, int64_t timeout_ms);

/* Encodes msg and sends it (blocking at most timeout_ms when the socket's
 * queue is full). Returns JOBQ_OK, JOBQ_ETIMEDOUT, JOBQ_EINVAL/JOBQ_ETOOBIG
 * (msg->error says why), JOBQ_ECLOSED (not connected). */
int conn_send(conn_t *c, wire_msg_t *msg, int64_t timeout_ms);

/* Receives the next message other than HEARTBEAT into msg, sending our own
 * heartbeats while it waits. msg's slices stay valid until the next
 * conn_recv or conn_destroy (the connection keeps the frame). Returns JOBQ_OK;
 * JOBQ_ETIMEDOUT; JOBQ_ECLOSED when the broker was silent for CONN_LIVENESS
 * intervals or told us to DISCONNECT (reconnect with conn_connect);
 * JOBQ_EPROTO for a frame that does not decode (skipped; msg->error says why). */
int conn_recv(conn_t *c, wire_msg_t *msg, int64_t timeout_ms);

/* Sends a HEARTBEAT when nothing was sent for an interval. Returns JOBQ_OK or
 * JOBQ_ECLOSED when the broker has been silent too long. */
int conn_tick(conn_t *c);

/* A fresh request number (never 0). */
uint64_t conn_next_req(conn_t *c);

/* The heartbeat interval agreed in WELCOME (ms), WELCOME's flags, and whether
 * the connection is up. */
uint32_t conn_hb_ms(const conn_t *c);
uint32_t conn_flags(const conn_t *c);
int conn_is_connected(const conn_t *c);

/* The ZeroMQ socket, for zmq_poll by callers that wait on more than one thing. */
void *conn_socket(conn_t *c);

/* The raw bytes of the last frame conn_recv returned (the slices of the
 * message it decoded point into them), or NULL. Valid until the next
 * conn_recv, conn_connect or conn_destroy; *len receives the size. */
const void *conn_frame(const conn_t *c, size_t *len);

/* Ends the session: sends DISCONNECT carrying leases[0..n) (the jobs a worker
 * holds and never started; may be NULL/0), then closes the socket, letting
 * ZeroMQ flush what is still queued for up to linger_ms. The connection stays
 * usable for conn_connect. Returns JOBQ_OK or conn_send's error (the socket is
 * closed either way). */
int conn_disconnect(conn_t *c, const wire_lease_t *leases, uint32_t n, int linger_ms);

#endif
