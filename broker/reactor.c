/*
 * broker/reactor.c: the broker's event loop: sockets, the poll timeout, the
 * read loop, sends, heartbeats, peer expiry, the stop/drain sequence and the
 * core's events. Handlers live in reactor_msg.c, waits and pushes in
 * reactor_wait.c (see reactor_int.h for the shared types).
 *
 * One pass of reactor_run:
 *   1. core_tick (delays due, leases expired), heartbeats and peer expiry,
 *      parked waits past their deadline, drain progress;
 *   2. deliver READY jobs to workers with credit (rx_deliver_all);
 *   3. drain the core's events and push results, one batch per producer;
 *   4. zmq_poll until the soonest deadline (0 when a socket still had
 *      messages after RX_RECV_BATCH reads);
 *   5. read up to RX_RECV_BATCH messages per socket, each decoded and handed
 *      to its handler, the core's events drained after each.
 */
#include "broker/reactor_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/url.h"
#include "jobq/version.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

void
reactor_opts_init(reactor_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->hb_ms = REACTOR_HB_DEFAULT_MS;
    opts->liveness = REACTOR_LIVENESS_DEFAULT;
    opts->max_frame = WIRE_MAX_FRAME;
    opts->max_credit = REACTOR_CREDIT_MAX_DEFAULT;
    opts->drain_ms = REACTOR_DRAIN_DEFAULT_MS;
    opts->stop_fd = -1;
    opts->handshake_ms = REACTOR_HANDSHAKE_DEFAULT_MS;
    opts->zmtp_hb_ms = REACTOR_ZMTP_HB_DEFAULT_MS;
    opts->max_leases = REACTOR_LEASES_DEFAULT;
    core_config_init(&opts->core);
}

int
broker_default_url(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, len, "ipc://%s/jobq/broker.sock", xdg);
    else
        n = snprintf(buf, len, "ipc:///tmp/jobq-%u/broker.sock", (unsigned)getuid());
    if (n < 0 || (size_t)n >= len || (size_t)n - 6 > JOBQ_URL_IPC_PATH_MAX)
        return JOBQ_ETOOBIG;
    return JOBQ_OK;
}

static int __attribute__((format(printf, 4, 5)))
s_why(int code, char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

int
broker_prepare_ipc_dir(const char *url, char *why, size_t why_len)
{
    jobq_url_t u;
    char uwhy[256];
    if (jobq_url_parse(url, &u, uwhy, sizeof uwhy) != JOBQ_OK)
        return s_why(JOBQ_EURL, why, why_len, "%s", uwhy);
    if (u.scheme != JOBQ_URL_IPC)
        return JOBQ_OK;
    char dir[JOBQ_URL_IPC_PATH_MAX + 1];
    snprintf(dir, sizeof dir, "%s", u.path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return JOBQ_OK;
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return s_why(JOBQ_ESYS, why, why_len, "cannot create %s: %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0)
        return s_why(JOBQ_ESYS, why, why_len, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return s_why(JOBQ_EFORBIDDEN, why, why_len, "%s is not a directory", dir);
    if (st.st_uid != getuid() || (st.st_mode & 022))
        return s_why(JOBQ_EFORBIDDEN, why, why_len,
                     "%s must belong to you and not be group- or world-writable", dir);
    return JOBQ_OK;
}

/* 1 if host names the loopback interface. */
static int
s_loopback(const char *host)
{
    unsigned char a[16];
    if (strcmp(host, "localhost") == 0 || strcmp(host, "lo") == 0)
        return 1;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1)
        return memcmp(a, in6addr_loopback.s6_addr, 16) == 0;
    return 0;
}

/* JOBQ_EBUSY when a process accepts connections on the ipc path. */
static int
s_ipc_in_use(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return 0;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int busy = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return busy;
}

static void
s_setopt_int(void *sock, int opt, int v)
{
    if (zmq_setsockopt(sock, opt, &v, sizeof v) != 0)
        LOG_WARN("zmq_setsockopt(%d): %s", opt, zmq_strerror(errno));
}

/* Creates, configures and binds the ROUTER socket of one endpoint. */
static int
s_bind(reactor_t *r, const char *url, char *why, size_t why_len)
{
    jobq_url_t u;
    char uwhy[256];
    if (jobq_url_parse(url, &u, uwhy, sizeof uwhy) != JOBQ_OK)
        return s_why(JOBQ_EURL, why, why_len, "%s", uwhy);
    if (u.scheme != JOBQ_URL_TCP && u.scheme != JOBQ_URL_IPC)
        return s_why(JOBQ_EURL, why, why_len, "%s: the broker listens on tcp:// or ipc://", url);
    if (u.scheme == JOBQ_URL_IPC && s_ipc_in_use(u.path))
        return s_why(JOBQ_EBUSY, why, why_len, "%s: another process is listening there", url);
    void *s = zmq_socket(r->ctx, ZMQ_ROUTER);
    if (!s)
        return s_why(JOBQ_ESYS, why, why_len, "zmq_socket: %s", zmq_strerror(errno));
    int tcp = u.scheme == JOBQ_URL_TCP;
    int rc = rx_sec_socket(r, s, url, tcp, tcp && s_loopback(u.host), why, why_len);
    if (rc != JOBQ_OK) { /* reactor_sec.c: CURVE, handshake, ZMTP heartbeats, --insecure */
        zmq_close(s);
        return rc;
    }
    int64_t maxmsg = (int64_t)r->opts.max_frame;
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    s_setopt_int(s, ZMQ_ROUTER_MANDATORY, 1);
    s_setopt_int(s, ZMQ_LINGER, 100);
    s_setopt_int(s, ZMQ_SNDHWM, 1000);
    s_setopt_int(s, ZMQ_RCVHWM, 1000);
    if (zmq_bind(s, u.endpoint) != 0) {
        int e = errno;
        zmq_close(s);
        return s_why(JOBQ_ESYS, why, why_len, "cannot listen on %s: %s", url, zmq_strerror(e));
    }
    char last[JOBQ_URL_MAX + 64];
    size_t ll = sizeof last;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, last, &ll) != 0)
        snprintf(last, sizeof last, "%s", url);
    r->socks[r->nsocks] = s;
    r->endpoints[r->nsocks++] = jobq_strdup(last);
    return JOBQ_OK;
}

static int
s_check_opts(const reactor_opts_t *o, char *why, size_t why_len)
{
    if (o->nlisten > REACTOR_LISTEN_MAX)
        return s_why(JOBQ_EINVAL, why, why_len, "at most %d endpoints", REACTOR_LISTEN_MAX);
    if (o->hb_ms < REACTOR_HB_MIN_MS || o->hb_ms > REACTOR_HB_MAX_MS)
        return s_why(JOBQ_EINVAL, why, why_len, "heartbeat must be %u..%u ms", REACTOR_HB_MIN_MS,
                     REACTOR_HB_MAX_MS);
    if (o->liveness < 1 || o->liveness > 100)
        return s_why(JOBQ_EINVAL, why, why_len, "liveness must be 1..100");
    if (o->max_frame < 1024 || o->max_frame > WIRE_MAX_FRAME)
        return s_why(JOBQ_EINVAL, why, why_len, "max frame must be 1024..%u bytes",
                     (unsigned)WIRE_MAX_FRAME);
    if (o->max_credit < 1 || o->drain_ms < 0)
        return s_why(JOBQ_EINVAL, why, why_len, "max credit must be >= 1, drain time >= 0");
    return JOBQ_OK;
}

int
reactor_new(const reactor_opts_t *opts, reactor_t **out, char *why, size_t why_len)
{
    *out = NULL;
    int rc = s_check_opts(opts, why, why_len);
    if (rc)
        return rc;
    reactor_t *r = jobq_calloc(1, sizeof *r);
    r->opts = *opts;
    r->core = core_new(&opts->core);
    if (!r->core) {
        jobq_free(r);
        return s_why(JOBQ_EINVAL, why, why_len, "limits out of range");
    }
    r->ctx = zmq_ctx_new();
    rx_peers_init(&r->peers);
    rx_waits_init(&r->waits);
    r->views = jobq_malloc(RX_DELIVER_MAX * sizeof *r->views);
    r->leasebuf = jobq_malloc(RX_DELIVER_MAX * sizeof *r->leasebuf);
    r->jobbuf = jobq_malloc(RX_DELIVER_MAX * sizeof *r->jobbuf);
    r->rbuf = jobq_malloc(WIRE_MAX_BATCH * sizeof *r->rbuf);
    r->idbuf = jobq_malloc(WIRE_MAX_BATCH * sizeof *r->idbuf);
    r->codebuf = jobq_malloc(WIRE_MAX_BATCH * sizeof *r->codebuf);
    r->now_ms = r->started_ms = jobq_now_ms();
    r->hb_due_ms = r->wait_due_ms = r->blocked_due_ms = r->drain_deadline_ms = CORE_FOREVER;
    char def[JOBQ_URL_MAX];
    const char *one = def;
    const char *const *list = opts->listen;
    size_t n = opts->nlisten;
    if (n == 0) {
        rc = broker_default_url(def, sizeof def);
        list = &one;
        n = 1;
    }
    if (rc == JOBQ_OK)
        rc = rx_sec_init(r, why, why_len); /* the ZAP handler exists before any bind */
    for (size_t i = 0; rc == JOBQ_OK && i < n; i++)
        rc = s_bind(r, list[i], why, why_len);
    if (r->sec)
        rx_sec_bound(r);
    if (rc) {
        reactor_destroy(&r);
        return rc;
    }
    *out = r;
    return JOBQ_OK;
}

void
reactor_destroy(reactor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    reactor_t *r = *self_p;
    for (size_t i = 0; i < r->nsocks; i++)
        zmq_close(r->socks[i]);
    rx_sec_fini(r);
    if (r->ctx)
        zmq_ctx_term(r->ctx);
    for (size_t i = 0; i < r->nsocks; i++) { /* libzmq may leave the socket file behind */
        if (strncmp(r->endpoints[i], "ipc://", 6) == 0)
            unlink(r->endpoints[i] + 6);
        jobq_free(r->endpoints[i]);
    }
    rx_waits_fini(&r->waits);
    rx_peers_fini(&r->peers);
    core_destroy(&r->core);
    wire_buf_fini(&r->obuf);
    jobq_free(r->views);
    jobq_free(r->leasebuf);
    jobq_free(r->jobbuf);
    jobq_free(r->rbuf);
    jobq_free(r->idbuf);
    jobq_free(r->codebuf);
    jobq_free(r->pushq);
    jobq_free(r->allq);
    rx_journal_fini(r);
    rx_rates_fini(&r->rates);
    jobq_free(r);
    *self_p = NULL;
}

size_t
reactor_endpoint_count(const reactor_t *r)
{
    return r->nsocks;
}

const char *
reactor_endpoint(const reactor_t *r, size_t i)
{
    return i < r->nsocks ? r->endpoints[i] : NULL;
}

core_t *
reactor_core(reactor_t *r)
{
    return r->core;
}

/* ---- sending ------------------------------------------------------------- */

static int
s_send_frames(reactor_t *r, uint32_t sock, const void *rid, size_t rid_len, const void *buf,
              size_t len)
{
    void *s = r->socks[sock];
    if (zmq_send(s, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(s, buf, len, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        if (e == EAGAIN)
            r->cnt.send_blocked++;
        else if (e == EHOSTUNREACH)
            r->cnt.send_unroutable++;
        else
            LOG_WARN("zmq_send: %s", zmq_strerror(e));
        errno = e;
        return -1;
    }
    r->cnt.msgs_out++;
    return 0;
}

static int
s_encode(reactor_t *r, wire_msg_t *m)
{
    r->obuf.len = 0;
    if (wire_encode(m, &r->obuf) != JOBQ_OK) {
        LOG_ERR("cannot encode %s: %s", wire_type_name(m->type), m->error);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int
rx_send_buf(reactor_t *r, rx_peer_t *p, const void *buf, size_t len)
{
    if (s_send_frames(r, p->sock, p->rid, p->rid_len, buf, len) != 0) {
        if (errno == EHOSTUNREACH && !p->gone) { /* its connection is closed */
            p->gone = 1;
            r->ngone++;
            errno = EHOSTUNREACH;
        }
        return -1;
    }
    p->last_send_ms = r->now_ms;
    return 0;
}

int
rx_send(reactor_t *r, rx_peer_t *p, wire_msg_t *m)
{
    if (s_encode(r, m) != 0)
        return -1;
    return rx_send_buf(r, p, r->obuf.data, r->obuf.len);
}

int
rx_send_raw(reactor_t *r, uint32_t sock, const void *rid, size_t rid_len, wire_msg_t *m)
{
    if (s_encode(r, m) != 0)
        return -1;
    return s_send_frames(r, sock, rid, rid_len, r->obuf.data, r->obuf.len);
}

void
rx_error(reactor_t *r, rx_peer_t *p, int has_req, uint64_t req, int code, const char *fmt, ...)
{
    char text[WIRE_TEXT_MAX < 512 ? WIRE_TEXT_MAX : 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_ERROR);
    m.fields = WIRE_F_CODE | WIRE_F_MSG | (has_req ? WIRE_F_REQ : 0);
    m.req = req;
    m.code = (uint32_t)code;
    m.msg = (wire_str_t){text, (uint32_t)strlen(text)};
    if (rx_send(r, p, &m) != 0)
        r->cnt.replies_dropped++;
}

static void
s_disconnect(reactor_t *r, rx_peer_t *p, const char *msg)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_DISCONNECT);
    m.fields = WIRE_F_MSG;
    m.msg = (wire_str_t){msg, (uint32_t)strlen(msg)};
    if (rx_send(r, p, &m) != 0)
        r->cnt.replies_dropped++;
}

/* ---- peers --------------------------------------------------------------- */

void
rx_peer_forget(reactor_t *r, rx_peer_t *p, core_release_reason reason, const char *msg)
{
    if (msg)
        s_disconnect(r, p, msg);
    if (p->role == WIRE_ROLE_WORKER) {
        size_t n = 0;
        if (core_release_worker(r->core, p->handle, r->now_ms, reason, &n) == JOBQ_OK && n)
            LOG_INFO("worker %s left holding %zu jobs: back to ready", p->name, n);
        r->work_maybe = 1;
    }
    rx_waits_drop_peer(r, p->handle);
    rx_peers_remove(&r->peers, p);
}

int
rx_protocol_error(reactor_t *r, rx_peer_t *p, rx_err_kind kind)
{
    r->cnt.errors[kind]++;
    if (!p || ++p->errors < RX_MAX_ERRORS)
        return 0;
    r->cnt.peers_dropped++;
    LOG_NOTICE("dropping peer %s after %u protocol errors", p->name, p->errors);
    rx_peer_forget(r, p, CORE_RELEASE_LOST, "too many protocol errors");
    return 1;
}

/* Expires silent peers and sends due heartbeats; sets hb_due_ms. */
static void
s_heartbeats(reactor_t *r)
{
    int64_t now = r->now_ms, next = CORE_FOREVER;
    for (uint32_t i = 0; i < r->peers.cap; i++) {
        rx_peer_t *p = r->peers.slots[i];
        if (!p || p->gone)
            continue;
        int64_t dead_at = p->last_recv_ms + (int64_t)p->hb_ms * r->opts.liveness;
        if (now >= dead_at) {
            r->cnt.peers_expired++;
            if (p->role == WIRE_ROLE_WORKER)
                r->cnt.workers_lost++;
            LOG_INFO("peer %s silent for %" PRId64 " ms: dropped", p->name, now - p->last_recv_ms);
            rx_peer_forget(r, p, CORE_RELEASE_LOST, "heartbeat lost: reconnect");
            continue;
        }
        if (now >= p->last_send_ms + p->hb_ms) {
            wire_msg_t m;
            wire_msg_init(&m, WIRE_HEARTBEAT);
            if (rx_send(r, p, &m) != 0)
                p->last_send_ms = now; /* retry next interval */
        }
        int64_t hb_at = p->last_send_ms + p->hb_ms;
        next = dead_at < next ? dead_at : next;
        next = hb_at < next ? hb_at : next;
    }
    r->hb_due_ms = next;
}

/* ---- core events --------------------------------------------------------- */

void
rx_drain_events(reactor_t *r)
{
    core_event_t ev;
    while (core_event_next(r->core, &ev)) {
        switch (ev.type) {
        case CORE_EV_RESULT: {
            if (rx_waits_on_result(r, &ev.id, ev.submitter))
                break;
            rx_peer_t *p = rx_peers_by_handle(&r->peers, ev.submitter);
            if (p && p->role == WIRE_ROLE_PRODUCER && !p->no_push)
                rx_push_add(r, p, &ev.id);
            break;
        }
        case CORE_EV_JOIN:
            rx_waits_on_join(r, ev.queue, ev.queue_len);
            break;
        case CORE_EV_READY:
            r->work_maybe = 1;
            break;
        case CORE_EV_EXPIRED: {
            /* A frozen or too slow worker: its held count dropped, so without
             * this it could get the same job back at once (RELIABILITY.md 3.1). */
            rx_peer_t *p = rx_peers_by_handle(&r->peers, ev.worker);
            if (p && p->role == WIRE_ROLE_WORKER && !p->suspect) {
                p->suspect = 1;
                LOG_INFO("worker %.*s let a lease expire: no deliveries until it is heard from",
                         (int)p->name_len, p->name);
            }
            r->work_maybe = 1;
            break;
        }
        }
    }
}

void
rx_refresh_queues(reactor_t *r)
{
    uint32_t n = core_queue_count(r->core);
    if (n == r->nallq)
        return;
    if (n > r->capallq) {
        r->capallq = n * 2;
        r->allq = jobq_realloc(r->allq, r->capallq * sizeof *r->allq);
    }
    for (uint32_t i = r->nallq; i < n; i++) {
        core_queue_stats_t st;
        if (core_queue_stats_at(r->core, i, &st) != JOBQ_OK)
            break;
        r->allq[r->nallq++] = (core_name_t){st.name, st.name_len};
    }
}

/* ---- reading ------------------------------------------------------------- */

/* Records that peer p sent something now: it is alive, and a suspect worker
 * (see CORE_EV_EXPIRED) may be given jobs again in this pass. */
static void
s_heard(reactor_t *r, rx_peer_t *p)
{
    p->last_recv_ms = r->now_ms;
    if (p->suspect) {
        p->suspect = 0;
        r->work_maybe = 1;
    }
}

/* Answers a frame that failed decoding with rc: ERROR with the decoder's text
 * (and req when it was read); a version mismatch also ends the session. */
static void
s_bad_frame(reactor_t *r, uint32_t sock, const void *rid, size_t rid_len, rx_peer_t *p,
            const wire_msg_t *m, int rc)
{
    rx_err_kind kind = rc == JOBQ_EVERSION  ? RX_ERR_VERSION
                       : rc == JOBQ_ETOOBIG ? RX_ERR_TOOBIG
                                            : RX_ERR_MALFORMED;
    wire_msg_t e;
    wire_msg_init(&e, WIRE_ERROR);
    e.fields = WIRE_F_CODE | WIRE_F_MSG | (m->fields & WIRE_F_REQ);
    e.req = m->req;
    e.code = (uint32_t)rc;
    e.msg = (wire_str_t){m->error, (uint32_t)strlen(m->error)};
    if ((p ? rx_send(r, p, &e) : rx_send_raw(r, sock, rid, rid_len, &e)) != 0)
        r->cnt.replies_dropped++;
    if (rc != JOBQ_EVERSION) {
        rx_protocol_error(r, p, kind);
        return;
    }
    r->cnt.errors[kind]++; /* the connection is not used further (PROTOCOL.md section 3) */
    if (p) {
        rx_peer_forget(r, p, CORE_RELEASE_LOST, "protocol version mismatch");
        return;
    }
    wire_msg_t d;
    wire_msg_init(&d, WIRE_DISCONNECT);
    d.fields = WIRE_F_MSG;
    d.msg = (wire_str_t){"protocol version mismatch", 25};
    rx_send_raw(r, sock, rid, rid_len, &d);
}

/* Decodes and handles one message from routing id `id` on socket sock. */
static void
s_on_message(reactor_t *r, uint32_t sock, zmq_msg_t *id, zmq_msg_t *body)
{
    const void *rid = zmq_msg_data(id);
    size_t rid_len = zmq_msg_size(id);
    rx_peer_t *p = rx_peers_find(&r->peers, sock, rid, rid_len);
    r->cnt.msgs_in++;
    const char *user = rx_sec_user(body);
    if (p && rx_sec_admit(r, p, user) != 0)
        return; /* another principal on this routing id: refused (reactor_sec.c) */
    if (p) {
        s_heard(r, p);
        p->msgs++;
    }
    wire_msg_t m;
    int rc = wire_decode(&m, zmq_msg_data(body), zmq_msg_size(body), r->opts.max_frame);
    if (rc == JOBQ_OK) {
        rx_dispatch(r, sock, rid, rid_len, p, &m);
        if (!p && m.type == WIRE_HELLO && (p = rx_peers_find(&r->peers, sock, rid, rid_len))) {
            rx_sec_hello(r, p, user);
            const char *addr = zmq_msg_gets(body, "Peer-Address");
            snprintf(p->addr, sizeof p->addr, "%s", addr ? addr : "");
        }
        rx_drain_events(r);
    } else {
        s_bad_frame(r, sock, rid, rid_len, p, &m, rc);
    }
    wire_msg_fini(&m);
}

/* Reads up to RX_RECV_BATCH messages from socket i. Returns 1 if it stopped
 * at the bound (more may be waiting). */
static int
s_read_socket(reactor_t *r, uint32_t i)
{
    void *s = r->socks[i];
    for (uint32_t n = 0; n < RX_RECV_BATCH; n++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            if (errno != EAGAIN && errno != EINTR)
                LOG_WARN("zmq_msg_recv: %s", zmq_strerror(errno));
            return 0;
        }
        int parts = 1, more = zmq_msg_more(&id), empty = 1;
        zmq_msg_init(&body);
        if (more && zmq_msg_recv(&body, s, ZMQ_DONTWAIT) >= 0) {
            parts++;
            empty = zmq_msg_size(&body) == 0;
            more = zmq_msg_more(&body);
        }
        while (more) { /* a ROUTER delivers every part at once: nothing blocks */
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            more = zmq_msg_recv(&extra, s, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&extra);
            zmq_msg_close(&extra);
            parts++;
        }
        if (parts == 2 && !empty) {
            s_on_message(r, i, &id, &body);
        } else {
            rx_peer_t *p = rx_peers_find(&r->peers, i, zmq_msg_data(&id), zmq_msg_size(&id));
            if (p && parts >= 2 && strcmp(rx_sec_user(&body), p->principal) != 0)
                p = NULL; /* another principal's connection: not counted against p */
            if (p)
                s_heard(r, p);
            rx_protocol_error(r, p, RX_ERR_ENVELOPE);
        }
        zmq_msg_close(&body);
        zmq_msg_close(&id);
    }
    return 1;
}

/* ---- the loop ------------------------------------------------------------ */

static void
s_start_drain(reactor_t *r)
{
    if (r->stopping) {
        r->stopping = 2;
        return;
    }
    r->stopping = 1;
    r->drain_deadline_ms = r->now_ms + r->opts.drain_ms;
    LOG_NOTICE("stopping: no new jobs; waiting up to %" PRId64 " ms for leased jobs",
               r->opts.drain_ms);
}

static void
s_on_stop_fd(reactor_t *r)
{
    char buf[64];
    ssize_t n = read(r->opts.stop_fd, buf, sizeof buf);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        r->opts.stop_fd = -1; /* closed: stop once, poll it no more */
        n = 1;
    }
    for (ssize_t i = 0; i < n && r->stopping < 2; i++)
        s_start_drain(r);
}

/* Ends the drain once nothing is leased, no worker is left, or time is up. */
static void
s_drain_progress(reactor_t *r)
{
    if (r->stopping != 1)
        return;
    core_stats_t st;
    core_stats(r->core, &st);
    if (st.reserved == 0 || r->peers.by_role[WIRE_ROLE_WORKER] == 0 ||
        r->now_ms >= r->drain_deadline_ms) {
        if (st.reserved)
            LOG_NOTICE("stopping with %" PRIu64 " jobs still leased", st.reserved);
        r->stopping = 2;
    }
}

static void
s_timers(reactor_t *r)
{
    int64_t now = r->now_ms;
    if (now >= r->core_due_ms)
        r->work_maybe = 1;
    r->core_due_ms = core_tick(r->core, now);
    rx_rates_sample(r);
    if (now >= r->hb_due_ms)
        s_heartbeats(r);
    if (now >= r->wait_due_ms)
        r->wait_due_ms = rx_waits_expire(r);
    if (now >= r->blocked_due_ms) {
        r->blocked_due_ms = CORE_FOREVER;
        r->work_maybe = 1;
    }
    s_drain_progress(r);
}

static int
s_poll_timeout(const reactor_t *r, int more)
{
    if (more)
        return 0;
    int64_t due = r->core_due_ms;
    const int64_t others[] = {r->hb_due_ms, r->wait_due_ms, r->blocked_due_ms,
                              r->stopping ? r->drain_deadline_ms : CORE_FOREVER, rx_journal_due(r)};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        due = others[i] < due ? others[i] : due;
    if (due == CORE_FOREVER)
        return -1;
    int64_t left = due - r->now_ms;
    return left <= 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
}

static void
s_goodbye(reactor_t *r)
{
    for (uint32_t i = 0; i < r->peers.cap; i++) {
        rx_peer_t *p = r->peers.slots[i];
        if (p)
            rx_peer_forget(r, p, CORE_RELEASE_GRACEFUL, "broker shutting down");
    }
    LOG_NOTICE("stopped");
}

/* Forgets the peers whose connection turned out to be closed. */
static void
s_sweep_gone(reactor_t *r)
{
    for (uint32_t i = 0; r->ngone && i < r->peers.cap; i++) {
        rx_peer_t *p = r->peers.slots[i];
        if (!p || !p->gone)
            continue;
        r->ngone--;
        if (p->role == WIRE_ROLE_WORKER)
            r->cnt.workers_lost++;
        LOG_INFO("%.*s disconnected", (int)p->name_len, p->name);
        rx_peer_forget(r, p, CORE_RELEASE_LOST, NULL);
    }
    r->ngone = 0;
}

/* One pass of work between polls: timers, deliveries, events, pushes. */
static void
s_pass(reactor_t *r)
{
    r->now_ms = jobq_now_ms();
    s_timers(r);
    s_sweep_gone(r);
    rx_drain_events(r);
    if (r->work_maybe && !r->stopping) {
        r->work_maybe = 0;
        rx_deliver_all(r);
        rx_drain_events(r);
    }
    rx_journal_commit(r);
    rx_push_flush(r);
    s_sweep_gone(r);
}

int
reactor_run(reactor_t *r)
{
    zmq_pollitem_t items[REACTOR_LISTEN_MAX + 1];
    int more = 0;
    r->work_maybe = 1;
    while (r->stopping < 2) {
        s_pass(r);
        if (r->stopping >= 2)
            break;
        size_t n = 0;
        for (; n < r->nsocks; n++)
            items[n] = (zmq_pollitem_t){.socket = r->socks[n], .events = ZMQ_POLLIN};
        if (r->opts.stop_fd >= 0)
            items[n++] = (zmq_pollitem_t){.fd = r->opts.stop_fd, .events = ZMQ_POLLIN};
        int rc = zmq_poll(items, (int)n, s_poll_timeout(r, more));
        if (rc < 0 && errno != EINTR) {
            LOG_ERR("zmq_poll: %s", zmq_strerror(errno));
            return JOBQ_ESYS;
        }
        r->now_ms = jobq_now_ms();
        more = 0;
        if (rc <= 0)
            continue;
        if (r->opts.stop_fd >= 0 && (items[r->nsocks].revents & ZMQ_POLLIN))
            s_on_stop_fd(r);
        for (uint32_t i = 0; i < r->nsocks; i++)
            if (items[i].revents & ZMQ_POLLIN)
                more |= s_read_socket(r, i);
    }
    s_goodbye(r);
    return JOBQ_OK;
}

void
rx_request_stop(reactor_t *r)
{
    if (!r->stopping)
        s_start_drain(r);
}
