/*
 * broker/reactor_int.h: the reactor's private types, shared by reactor.c (the
 * loop, sockets, sends, timers), reactor_peers.c (the peer table),
 * reactor_msg.c (one handler per message type), reactor_wait.c (parked WAIT
 * and JOIN requests, result pushes) and reactor_json.c (STATS and peek
 * replies). Nothing outside broker/reactor*.c includes this file.
 *
 * Peers: a peer exists only after its HELLO. It is keyed by (socket index,
 * routing id) and named towards the core by a uint64 handle, (generation <<
 * 32) | (slot + 1), so that a handle is never 0 and never names a later peer
 * in the same slot. Workers use the handle in core_worker_credit/reserve/
 * complete, producers as the submitter of their jobs.
 *
 * Deadlines: hb_due_ms and wait_due_ms are lower bounds of the soonest
 * heartbeat and waiter deadlines, recomputed by a scan when they pass;
 * everything that moves a deadline moves it later, except the creation of
 * a peer or a waiter, which lowers the bound itself.
 */
#ifndef JOBQ_BROKER_REACTOR_INT_H
#define JOBQ_BROKER_REACTOR_INT_H

#include "broker/core.h"
#include "broker/reactor.h"
#include "common/wire.h"

#include <stdint.h>

#define RX_RECV_BATCH 1024u           /* messages read from one socket per wake-up */
#define RX_MAX_ERRORS 10u             /* protocol errors before a peer is dropped */
#define RX_FRAME_BYTES (512u * 1024u) /* payload/output bytes per DELIVER or RESULTS frame */
#define RX_DELIVER_MAX 4096u          /* jobs reserved for one worker per pass */
#define RX_WAITS_PER_PEER 256u        /* parked WAIT + JOIN requests per peer */
#define RX_WAIT_IDS_MAX (1u << 20)    /* ids in parked WAITs, all peers together */
#define RX_NAME_MAX 64u
#define RX_PRINCIPAL_MAX 64u /* bytes of a CURVE principal (broker/zap.h) */
#define RX_HELLO_NO_PUSH                                                                           \
    1u /* HELLO flags bit 0: do not push results */ /* bytes of a HELLO name kept for stats */

/* Roles as bits, for the dispatch table. */
#define RX_R_PRODUCER (1u << WIRE_ROLE_PRODUCER)
#define RX_R_WORKER (1u << WIRE_ROLE_WORKER)
#define RX_R_ADMIN (1u << WIRE_ROLE_ADMIN)
#define RX_R_ANY (RX_R_PRODUCER | RX_R_WORKER | RX_R_ADMIN)

/* Kinds of protocol error, counted in stats. */
typedef enum rx_err_kind {
    RX_ERR_ENVELOPE = 0, /* not [routing id][one non-empty frame] */
    RX_ERR_MALFORMED,    /* wire_decode: JOBQ_EPROTO */
    RX_ERR_VERSION,      /* wire_decode: JOBQ_EVERSION */
    RX_ERR_TOOBIG,       /* wire_decode: JOBQ_ETOOBIG */
    RX_ERR_NO_HELLO,     /* a first message other than HELLO */
    RX_ERR_HELLO_TWICE,  /* HELLO from a peer that already said it */
    RX_ERR_ROLE,         /* a message the peer's role may not send */
    RX_ERR_DIRECTION,    /* a message only the broker sends */
    RX_ERR_PEER_ERROR,   /* an ERROR message from a peer */
    RX_ERR_PRINCIPAL,    /* a message whose CURVE principal is not its peer's (spoof) */
    RX_ERR_COUNT_
} rx_err_kind;

typedef struct rx_peer {
    uint64_t handle; /* core handle; see the file comment */
    uint32_t slot;
    int32_t next; /* hash chain */
    uint32_t sock;
    uint8_t rid_len;
    uint8_t role;     /* WIRE_ROLE_* */
    uint8_t stopping; /* SENTINEL sent: no more deliveries */
    uint8_t pushing;  /* in the reactor's push list */
    uint8_t no_push;  /* producer: HELLO flags bit 0, results only by WAIT */
    uint8_t gone;     /* a send found it unroutable: forgotten at the end of the pass */
    uint8_t suspect;  /* worker: a lease of it expired (CORE_EV_EXPIRED); no deliveries
                         until it sends any message (proof of life) */
    uint8_t rid[255]; /* ZeroMQ routing id */
    uint32_t hb_ms;   /* heartbeat interval agreed in WELCOME */
    int64_t since_ms, last_recv_ms, last_send_ms;
    int64_t blocked_until_ms; /* a DELIVER hit EAGAIN: no deliveries before this */
    uint32_t errors;          /* protocol errors so far */
    uint32_t credit;          /* worker: the credit of its last READY (capped) */
    core_name_t *queues;      /* worker: queues of its last READY; NULL = all */
    uint32_t nqueues;
    char *qbuf;      /* storage of the queue names */
    uint32_t nwaits; /* parked WAIT and JOIN requests */
    uint64_t msgs;   /* messages received */
    jobq_id_t *push; /* producer: results to push at the end of the pass */
    uint32_t npush, cappush;
    char name[RX_NAME_MAX];
    uint32_t name_len;
    char principal[RX_PRINCIPAL_MAX + 1]; /* CURVE User-Id at HELLO; "" = none (ipc, NULL) */
    char addr[64];                        /* ZeroMQ Peer-Address at HELLO; "" when unknown */
    int32_t pidx;                         /* its row in the principal table, -1 = none */
} rx_peer_t;

typedef struct rx_peers {
    rx_peer_t **slots; /* cap entries, NULL = free */
    uint32_t cap, count;
    uint32_t gen;
    int32_t *buckets; /* nbuckets heads of chains by (sock, rid) */
    uint32_t nbuckets;
    uint64_t seed;
    uint32_t by_role[4]; /* peers per WIRE_ROLE_* */
} rx_peers_t;

/* A parked WAIT or JOIN. */
typedef struct rx_wait {
    uint64_t peer; /* handle of the asker; 0 = free slot */
    uint64_t req;
    int64_t deadline_ms; /* CORE_FOREVER = none */
    uint8_t join;
    uint32_t nids, npending;
    jobq_id_t *ids;
    uint8_t *have; /* per id: 0 pending, 1 result known, 2 unknown id */
    uint32_t qlen;
    char q[JOBQ_QUEUE_NAME_MAX];
} rx_wait_t;

/* Index entry: id -> (wait slot, position in its ids). */
typedef struct rx_wait_ent {
    jobq_id_t id;
    uint32_t wait, pos;
    int32_t next;
} rx_wait_ent_t;

typedef struct rx_waits {
    rx_wait_t *w;
    uint32_t cap, used; /* slots, and slots in use */
    rx_wait_ent_t *ents;
    uint32_t ecap, eused;
    int32_t efree;
    int32_t *buckets;
    uint32_t nbuckets;
    uint32_t njoins;
    uint64_t seed;
} rx_waits_t;

/* SUBMIT_OK replies held until the journal commit at the end of the pass. */
typedef struct rx_held_item {
    uint64_t peer, req;
    size_t off, len; /* the encoded reply in rx_held_t.buf */
} rx_held_item_t;

typedef struct rx_held {
    wire_buf_t buf;
    rx_held_item_t *items;
    size_t n, cap;
} rx_held_t;

typedef struct rx_counters {
    uint64_t msgs_in, msgs_out;
    uint64_t errors[RX_ERR_COUNT_];
    uint64_t send_blocked;    /* sends refused with EAGAIN (peer's queue full) */
    uint64_t send_unroutable; /* sends refused with EHOSTUNREACH (peer gone) */
    uint64_t jobs_returned;   /* jobs put back to READY after a failed DELIVER */
    uint64_t replies_dropped; /* other messages that could not be sent */
    uint64_t peers_dropped;   /* peers dropped after too many protocol errors */
    uint64_t peers_expired;   /* peers silent for liveness x heartbeat */
    uint64_t workers_lost;    /* of those, workers (their jobs went back) */
    uint64_t sentinels, reports;
    uint64_t results_pushed;
} rx_counters_t;

/* Per-queue rate samples (reactor_rates.c). */
#define RX_RATE_SLOTS 10u     /* the window: this many samples */
#define RX_RATE_EVERY_MS 1000 /* at most one sample per second */
typedef struct rx_rate_sample {
    int64_t t_ms;
    uint64_t submitted, completed;
    int set;
} rx_rate_sample_t;

typedef struct rx_rates {
    rx_rate_sample_t *s; /* nq rows of RX_RATE_SLOTS, by queue creation index */
    uint32_t nq, head;   /* head: the slot the next sample goes to */
    uint32_t nseen;      /* queues that have samples */
    int64_t last_ms;
} rx_rates_t;

struct reactor {
    reactor_opts_t opts;
    core_t *core;
    void *ctx;
    void *socks[REACTOR_LISTEN_MAX];
    char *endpoints[REACTOR_LISTEN_MAX];
    size_t nsocks;
    int64_t now_ms, started_ms;
    int stopping; /* 0 running, 1 draining, 2 stop now */
    int64_t drain_deadline_ms;
    int work_maybe; /* a worker may be able to take jobs */
    uint32_t ngone; /* peers marked gone */
    int64_t hb_due_ms, wait_due_ms, blocked_due_ms, core_due_ms;
    rx_peers_t peers;
    rx_waits_t waits;
    rx_counters_t cnt;
    uint64_t *pushq; /* handles of peers with results to push */
    uint32_t npushq, cappushq;
    core_name_t *allq; /* every queue name the core knows (for "all queues") */
    uint32_t nallq, capallq, allq_rr;
    wire_buf_t obuf;        /* encode buffer, reused */
    core_job_view_t *views; /* scratch for core_reserve */
    jobq_result_t *rbuf;    /* scratch for RESULTS */
    jobq_id_t *idbuf;       /* scratch for SUBMIT_OK / RESULT_OK */
    uint32_t *codebuf;
    wire_lease_t *leasebuf; /* scratch for DELIVER: what to hand back on failure */
    jobq_job_t *jobbuf;     /* scratch for DELIVER: the jobs as sent */
    core_name_t qwindow[CORE_RESERVE_QUEUES_MAX]; /* scratch: a window of r->allq */
    struct rx_sec *sec;  /* CURVE, ZAP and principals (reactor_sec.c); never NULL once built */
    struct journal *jrn; /* NULL: memory only */
    rx_rates_t rates;    /* per-queue rates for STATS */
    rx_held_t held;      /* SUBMIT_OKs waiting for the journal */
};

/* ---- reactor.c ----------------------------------------------------------- */

/* Encodes m and sends it to p (ZMQ_DONTWAIT). Returns 0, or -1 with errno
 * EAGAIN / EHOSTUNREACH (counted). An encode failure is a bug: asserted. */
int rx_send(reactor_t *r, rx_peer_t *p, wire_msg_t *m);
/* Same, to a routing id with no peer entry (replies to unknown peers). */
int rx_send_raw(reactor_t *r, uint32_t sock, const void *rid, size_t rid_len, wire_msg_t *m);
/* Sends the already-encoded frame buf to p. Same returns as rx_send. */
int rx_send_buf(reactor_t *r, rx_peer_t *p, const void *buf, size_t len);
/* Replies ERROR {req (when has_req), code, msg} to p. */
void rx_error(reactor_t *r, rx_peer_t *p, int has_req, uint64_t req, int code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Counts a protocol error of kind against p (may be NULL) and drops p after
 * RX_MAX_ERRORS. Returns 1 if p was dropped (p is then freed). */
int rx_protocol_error(reactor_t *r, rx_peer_t *p, rx_err_kind kind);
/* Forgets p: a worker's jobs go back (reason), its waits are dropped, the
 * peer is told DISCONNECT with msg when msg is not NULL. Frees p. */
void rx_peer_forget(reactor_t *r, rx_peer_t *p, core_release_reason reason, const char *msg);
/* Drains the core's events: results to waiters and producers, joins, READY. */
void rx_drain_events(reactor_t *r);
/* Refreshes r->allq from the core's queue list. */
void rx_refresh_queues(reactor_t *r);
/* Starts the drain, as a first stop signal would (ADMIN "shutdown"). */
void rx_request_stop(reactor_t *r);

/* ---- reactor_peers.c ----------------------------------------------------- */

void rx_peers_init(rx_peers_t *t);
void rx_peers_fini(rx_peers_t *t);
rx_peer_t *rx_peers_find(rx_peers_t *t, uint32_t sock, const void *rid, size_t len);
/* Adds a peer (role and times left zero). The pointer is stable until removed. */
rx_peer_t *rx_peers_add(rx_peers_t *t, uint32_t sock, const void *rid, size_t len);
rx_peer_t *rx_peers_by_handle(const rx_peers_t *t, uint64_t handle);
/* Unlinks and frees p. */
void rx_peers_remove(rx_peers_t *t, rx_peer_t *p);
/* Sets the queues of worker p (copied); n 0 means every queue. */
void rx_peer_set_queues(rx_peer_t *p, const wire_str_t *queues, uint32_t n);
/* Formats p's routing id as hex into out (at least 2 * 255 + 1 bytes). */
void rx_peer_rid_hex(const rx_peer_t *p, char *out);

/* ---- reactor_msg.c ------------------------------------------------------- */

/* Handles one decoded message from p (NULL: a peer not known yet). */
void rx_dispatch(reactor_t *r, uint32_t sock, const void *rid, size_t rid_len, rx_peer_t *p,
                 wire_msg_t *m);
/* Hands READY jobs to every worker that has credit left. */
void rx_deliver_all(reactor_t *r);

/* ---- reactor_wait.c ------------------------------------------------------ */

void rx_waits_init(rx_waits_t *w);
void rx_waits_fini(rx_waits_t *w);
/* WAIT and JOIN handlers: reply now or park. */
void rx_wait_request(reactor_t *r, rx_peer_t *p, const wire_msg_t *m);
void rx_join_request(reactor_t *r, rx_peer_t *p, const wire_msg_t *m);
/* A result for id is stored: completes waits on it. Returns 1 if a wait of
 * peer submitter will carry it (so no push is needed), else 0. */
int rx_waits_on_result(reactor_t *r, const jobq_id_t *id, uint64_t submitter);
/* Queue q reached zero unfinished jobs: answers its JOINs. */
void rx_waits_on_join(reactor_t *r, const char *q, uint32_t qlen);
/* Answers waits whose deadline passed; returns the next deadline. */
int64_t rx_waits_expire(reactor_t *r);
/* Drops every wait of peer handle (no reply). */
void rx_waits_drop_peer(reactor_t *r, uint64_t handle);
/* Queues the result of id to be pushed to p at the end of the pass. */
void rx_push_add(reactor_t *r, rx_peer_t *p, const jobq_id_t *id);
/* Sends every queued push. */
void rx_push_flush(reactor_t *r);
/* Sends the results of ids (those the core still has) to p as RESULTS
 * frames, with req when has_req; marks the sent ones delivered. Returns the
 * number of results sent. */
uint32_t rx_send_results(reactor_t *r, rx_peer_t *p, int has_req, uint64_t req,
                         const jobq_id_t *ids, uint32_t n);

/* ---- reactor_json.c ------------------------------------------------------ */

/* A growable text buffer. */
typedef struct rx_text {
    char *s;
    size_t len, cap, max; /* max: hard cap; past it appends are dropped, over = 1 */
    int over;
} rx_text_t;

void rx_text_add(rx_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends bytes as a JSON string (quoted, escaped; bytes >= 0x80 as \u00XX). */
void rx_text_str(rx_text_t *t, const void *s, size_t len);
void rx_text_fini(rx_text_t *t);
/* Builds the STATS JSON (one queue when q is set). Returns JOBQ_OK or
 * JOBQ_ENOTFOUND for an unknown queue. The caller frees t. */
int rx_stats_json(reactor_t *r, const char *q, uint32_t qlen, rx_text_t *t);
/* Appends the JSON object of one job view. */
void rx_job_json(rx_text_t *t, const core_job_view_t *v);

/* ---- reactor_sec.c ------------------------------------------------------- */

/* Creates r->sec; with opts.curve_key, loads the server key and starts the
 * ZAP handler in r->ctx (before any socket binds). Returns a jobq_err with
 * a reason in why. */
int rx_sec_init(reactor_t *r, char *why, size_t why_len);
/* Sets the handshake, ZMTP heartbeat and (tcp with CURVE) CURVE server
 * options on socket s before it binds; refuses a non-loopback tcp endpoint
 * without CURVE or --insecure. Returns a jobq_err with a reason in why. */
int rx_sec_socket(reactor_t *r, void *s, const char *url, int tcp, int loopback, char *why,
                  size_t why_len);
/* Every endpoint is bound: wipes the server's secret key from memory. */
void rx_sec_bound(reactor_t *r);
/* Stops the ZAP handler and frees r->sec; before the context ends. */
void rx_sec_fini(reactor_t *r);
/* The CURVE principal of a received message ("User-Id"), "" when none. */
const char *rx_sec_user(void *zmsg);
/* Checks that a message from known peer p carries p's principal. Returns 0,
 * or -1 after answering the sender ERROR JOBQ_EFORBIDDEN (p, the peer that
 * owns the routing id, is left alone and nothing is counted against it). */
int rx_sec_admit(reactor_t *r, rx_peer_t *p, const char *user);
/* Records user as the principal of p, just created by HELLO. */
void rx_sec_hello(reactor_t *r, rx_peer_t *p, const char *user);
/* Lease accounting per principal: recount before a delivery round, cap a
 * worker's room, and add what was just reserved. */
void rx_sec_count_leases(reactor_t *r);
size_t rx_sec_lease_room(reactor_t *r, const rx_peer_t *p, size_t room);
void rx_sec_leased(reactor_t *r, const rx_peer_t *p, size_t n);
/* Appends ,"security":{...} to the STATS JSON. */
void rx_sec_json(reactor_t *r, rx_text_t *t);
/* ---- reactor_rates.c ----------------------------------------------------- */

/* Samples every queue's counters, at most once per RX_RATE_EVERY_MS. */
void rx_rates_sample(reactor_t *r);
/* Jobs per second submitted and completed (worker reports) for queue i
 * (creation order) with counters st, over the sampled window; 0 without samples. */
void rx_rates_get(const reactor_t *r, uint32_t i, const core_queue_stats_t *st, double *submit,
                  double *done);
void rx_rates_fini(rx_rates_t *rt);

/* ---- reactor_journal.c --------------------------------------------------- */

/* SUBMIT with a journal: admit, apply, write, hold the reply. */
void rx_journal_submit(reactor_t *r, rx_peer_t *p, wire_msg_t *m);
/* Commits the journal (write + sync per policy), then sends the held
 * replies (or ERROR JOBQ_EIO when the journal failed). No-op without one. */
void rx_journal_commit(reactor_t *r);
/* When the journal next needs a sync (batch timer), or CORE_FOREVER. */
int64_t rx_journal_due(const reactor_t *r);
void rx_journal_fini(reactor_t *r);
/* Appends ,"journal":{...} (or null) to the broker object of STATS. */
void rx_journal_json(reactor_t *r, rx_text_t *t);

#endif
