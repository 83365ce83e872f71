/*
 * broker/reactor.h: the jobq broker's ZeroMQ reactor, the I/O shell around
 * the scheduling core (broker/core.h).
 *
 * One thread, one ROUTER socket per listen endpoint, zmq_poll with a timeout
 * computed from the soonest deadline (the core's delays and leases, peer
 * heartbeats, parked WAIT/JOIN requests): no fixed tick. Each wake-up drains
 * up to a bounded number of messages per socket with ZMQ_DONTWAIT, hands
 * every one to a small handler chosen from a {type, roles, handler} table,
 * then delivers READY jobs to workers with credit and pushes results to
 * their producers, batched per peer. Sends never block (ZMQ_DONTWAIT with
 * ZMQ_ROUTER_MANDATORY): a DELIVER that cannot be sent puts its jobs back to
 * READY at once and is counted. docs/PROTOCOL.md sections 9-11 and "Broker
 * behaviour" are the contract this module implements.
 *
 * Invariants: nothing a peer sends reaches an assert; the reactor never
 * prints, exits or installs signal handlers (the `jobq broker` command does,
 * and asks the reactor to stop through stop_fd); every job the core hands out
 * is either sent or handed back (core_release) before the pass ends.
 */
#ifndef JOBQ_BROKER_REACTOR_H
#define JOBQ_BROKER_REACTOR_H

#include "broker/core.h"

#include <stddef.h>
#include <stdint.h>

typedef struct reactor reactor_t;

#define REACTOR_LISTEN_MAX 8        /* endpoints per broker */
#define REACTOR_HB_DEFAULT_MS 1000u /* heartbeat interval when HELLO asks none */
#define REACTOR_HB_MIN_MS 10u       /* a HELLO's hb wish is clamped to these */
#define REACTOR_HB_MAX_MS 60000u
#define REACTOR_LIVENESS_DEFAULT 3u      /* silent intervals before a peer is dead */
#define REACTOR_CREDIT_MAX_DEFAULT 1024u /* per-worker prefetch cap */
#define REACTOR_DRAIN_DEFAULT_MS 10000   /* SIGTERM: longest wait for leased jobs */

/* Security limits (broker/reactor_sec.c, docs/SECURITY.md). */
#define REACTOR_HANDSHAKE_DEFAULT_MS 10000u /* ZMQ_HANDSHAKE_IVL: unfinished handshakes close */
#define REACTOR_ZMTP_HB_DEFAULT_MS 1000u    /* ZMQ_HEARTBEAT_IVL on tcp (timeout and TTL 3x) */
#define REACTOR_LEASES_DEFAULT 1000u        /* jobs one CURVE principal may hold at once */

typedef struct reactor_opts {
    const char *listen[REACTOR_LISTEN_MAX]; /* endpoint URLs (tcp:// or ipc://) */
    size_t nlisten;                         /* 0: broker_default_url() */
    uint32_t hb_ms;                         /* default heartbeat interval, ms */
    uint32_t liveness;                      /* intervals of silence before a peer is dead */
    size_t max_frame;                       /* ZMQ_MAXMSGSIZE and decode limit, bytes */
    uint32_t max_credit;                    /* cap on a worker's READY credit */
    int64_t drain_ms;                       /* bounded drain on stop, ms */
    int insecure;                           /* allow non-loopback tcp without CURVE */
    int stop_fd;        /* readable = stop: first time drain, second time at once; -1 = none */
    core_config_t core; /* limits and retention of the core */
    /* Security (reactor_sec.c). curve_key: the broker's key pair file (jobq
     * keygen), NULL = no CURVE; with it every tcp:// endpoint requires CURVE
     * and admits the PRINCIPAL.pub keys of the curve_clients directory
     * (ipc:// stays protected by its 0700 directory). handshake_ms is
     * ZMQ_HANDSHAKE_IVL, zmtp_hb_ms the tcp ZMTP PING interval (a peer silent
     * for 3 is closed), max_leases the jobs one principal may hold at once. */
    const char *curve_key;
    const char *curve_clients;
    uint32_t handshake_ms;
    uint32_t zmtp_hb_ms;
    uint32_t max_leases;
} reactor_opts_t;

/* Fills opts with the defaults above, the core's defaults, no endpoints and
 * stop_fd -1. */
void reactor_opts_init(reactor_opts_t *opts);

/* Writes the default broker endpoint into buf: ipc://$XDG_RUNTIME_DIR/jobq/
 * broker.sock when XDG_RUNTIME_DIR is set to an absolute path, else
 * ipc:///tmp/jobq-UID/broker.sock. Clients use the same function. Creates
 * nothing. Returns JOBQ_OK, or JOBQ_ETOOBIG when buf is too small or the path
 * is over the ipc limit (107 bytes). */
int broker_default_url(char *buf, size_t len);

/* Creates the directory of an ipc:// endpoint's socket, mode 0700, when it is
 * missing (one level), and refuses a directory that is group- or
 * world-writable or owned by another user. Returns JOBQ_OK (also for tcp://),
 * JOBQ_EURL, JOBQ_EFORBIDDEN or JOBQ_ESYS, with a reason in why. */
int broker_prepare_ipc_dir(const char *url, char *why, size_t why_len);

/* Creates the core and a ROUTER socket bound to each endpoint (the ZeroMQ
 * context is the reactor's own; with opts->curve_key the ZAP handler starts
 * in it first, docs/SECURITY.md). Refuses a non-loopback tcp:// endpoint
 * without CURVE unless opts->insecure (JOBQ_EFORBIDDEN), unusable key files
 * or allow-list (JOBQ_EFORBIDDEN, JOBQ_ECORRUPT, JOBQ_ENOTFOUND), a bad URL
 * (JOBQ_EURL), an ipc://
 * path where another broker answers (JOBQ_EBUSY), a bind failure (JOBQ_ESYS)
 * and bad options (JOBQ_EINVAL); why gets a one-line reason. On success *out
 * owns a new reactor (reactor_destroy); on failure *out is NULL. */
int reactor_new(const reactor_opts_t *opts, reactor_t **out, char *why, size_t why_len);

/* Number of bound endpoints, and the i-th as ZeroMQ reports it
 * (ZMQ_LAST_ENDPOINT: a tcp port 0 or * shows the port chosen). The string
 * belongs to the reactor. */
size_t reactor_endpoint_count(const reactor_t *r);
const char *reactor_endpoint(const reactor_t *r, size_t i);

/* Runs the loop until stop_fd turns readable (or an ADMIN "shutdown"), then
 * drains: no new submits (ERROR JOBQ_ECLOSED), no new deliveries, RESULTs
 * still accepted, until no job is leased, every worker has left, or drain_ms
 * passed (a second stop ends it at once); then tells every peer DISCONNECT
 * and returns JOBQ_OK. JOBQ_ESYS on a fatal zmq_poll failure. */
int reactor_run(reactor_t *r);

/* Closes the sockets and the context and frees the reactor and its core.
 * NULL-safe; sets *self_p to NULL. */
void reactor_destroy(reactor_t **self_p);

/* The reactor's core, for tests and the journal (owned by the reactor). */
core_t *reactor_core(reactor_t *r);

/* Makes the reactor journal through j (broker/journal.h, opened on this
 * reactor's core; the caller keeps ownership and closes it after
 * reactor_run returned, before reactor_destroy): SUBMIT_OK only after the
 * records are journaled per policy, WELCOME's durable flag set
 * (broker/reactor_journal.c). */
struct journal;
void reactor_set_journal(reactor_t *r, struct journal *j);

#endif
