/*
 * common/conn.c: the client side of a broker connection (see conn.h).
 *
 * Liveness: every frame from the broker refreshes last_recv; while waiting we
 * send HEARTBEAT when we have been quiet for an interval; when the broker has
 * been silent for CONN_LIVENESS intervals the connection counts as lost and
 * callers reconnect (Paranoid Pirate, client side).
 */
#include "common/conn.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/curve.h"
#include "common/log.h"
#include "jobq/errors.h"
#include "jobq/version.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

struct conn {
    void *ctx;
    void *sock;
    char *endpoint;
    char *name;
    char *curve_key, *curve_server; /* CURVE key files, read at each socket open; NULL = none */
    int role;
    uint32_t hb_wanted_ms, hb_ms, flags;
    uint32_t hello_flags; /* sent in HELLO when non-zero */
    int connected;
    int handshaking;  /* HELLO sent, WELCOME not yet: conn_connect's timeout rules */
    void *mon;        /* CURVE: PAIR receiving the socket's handshake-failure events */
    unsigned mon_seq; /* makes each monitor endpoint name unique */
    int64_t last_send_ms, last_recv_ms;
    uint64_t next_req;
    zmq_msg_t frame; /* the last frame received: decoded slices point into it */
    int have_frame;
    wire_buf_t out;
};

conn_t *
conn_new(const char *endpoint, int role, const char *name, uint32_t hb_ms)
{
    conn_t *c = jobq_calloc(1, sizeof *c);
    c->ctx = zmq_ctx_new();
    JOBQ_ASSERT(c->ctx);
    c->endpoint = jobq_strdup(endpoint);
    c->name = name ? jobq_strdup(name) : NULL;
    c->role = role;
    c->hb_wanted_ms = hb_ms ? hb_ms : CONN_HB_DEFAULT_MS;
    c->hb_ms = c->hb_wanted_ms;
    c->next_req = 1;
    return c;
}

void
conn_set_curve(conn_t *c, const char *key_file, const char *server_pub)
{
    jobq_free(c->curve_key);
    jobq_free(c->curve_server);
    c->curve_key = key_file ? jobq_strdup(key_file) : NULL;
    c->curve_server = server_pub ? jobq_strdup(server_pub) : NULL;
}

void
conn_set_hello_flags(conn_t *c, uint32_t flags)
{
    c->hello_flags = flags;
}

static void
s_close_socket(conn_t *c)
{
    if (c->have_frame) {
        zmq_msg_close(&c->frame);
        c->have_frame = 0;
    }
    if (c->mon) {
        zmq_socket_monitor(c->sock, NULL, 0);
        zmq_close(c->mon);
        c->mon = NULL;
    }
    if (c->sock) {
        int linger = 0;
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(c->sock);
        c->sock = NULL;
    }
    c->connected = 0;
}

static int
s_send_simple(conn_t *c, wire_type type)
{
    wire_msg_t m;
    wire_msg_init(&m, type);
    return conn_send(c, &m, 0);
}

void
conn_destroy(conn_t **c_p)
{
    conn_t *c = *c_p;
    if (!c)
        return;
    if (c->connected)
        s_send_simple(c, WIRE_DISCONNECT);
    s_close_socket(c);
    zmq_ctx_term(c->ctx);
    wire_buf_fini(&c->out);
    jobq_free(c->endpoint);
    jobq_free(c->name);
    jobq_free(c->curve_key);
    jobq_free(c->curve_server);
    jobq_free(c);
    *c_p = NULL;
}

static int
s_open_socket(conn_t *c)
{
    int zero = 0, hwm = 10000, ivl = 1000, tmo = 3000;
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (!c->sock)
        return JOBQ_ESYS;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(c->sock, ZMQ_HEARTBEAT_TIMEOUT, &tmo, sizeof tmo);
    if (c->curve_key || c->curve_server) {
        char why[512];
        int rc =
            !c->curve_key || !c->curve_server
                ? JOBQ_EINVAL
                : jobq_curve_client_setup(c->sock, c->curve_key, c->curve_server, why, sizeof why);
        if (rc != JOBQ_OK) {
            LOG_WARN("%s", rc == JOBQ_EINVAL ? "CURVE needs both a key file and the server's "
                                               "public key file"
                                             : why);
            s_close_socket(c);
            return rc;
        }
        char ep[96];
        snprintf(ep, sizeof ep, "inproc://jobq-conn-mon-%p-%u", (void *)c, c->mon_seq++);
        c->mon = jobq_curve_monitor(c->ctx, c->sock, ep);
    }
    if (zmq_connect(c->sock, c->endpoint) != 0) {
        LOG_WARN("cannot connect to %s: %s", c->endpoint, zmq_strerror(zmq_errno()));
        s_close_socket(c);
        return JOBQ_ESYS;
    }
    return JOBQ_OK;
}

int
conn_connect(conn_t *c, int64_t timeout_ms)
{
    wire_msg_t m;
    s_close_socket(c);
    int rc = s_open_socket(c);
    if (rc != JOBQ_OK)
        return rc;
    c->connected = 1; /* provisionally, so that send and recv work */
    c->last_recv_ms = jobq_now_ms();
    wire_msg_init(&m, WIRE_HELLO);
    m.fields = WIRE_F_ROLE | WIRE_F_HB;
    m.role = (uint32_t)c->role;
    m.hb_ms = c->hb_wanted_ms;
    if (c->hello_flags) {
        m.fields |= WIRE_F_FLAGS;
        m.flags = c->hello_flags;
    }
    if (c->name) {
        m.fields |= WIRE_F_NAME;
        m.name.ptr = c->name;
        m.name.len = (uint32_t)strnlen(c->name, WIRE_TEXT_MAX);
    }
    rc = conn_send(c, &m, timeout_ms);
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    c->handshaking = 1;
    while (rc == JOBQ_OK) {
        int64_t left = jobq_remaining_ms(deadline);
        rc = conn_recv(c, &m, c->mon && (left < 0 || left > 100) ? 100 : left);
        if (rc == JOBQ_ETIMEDOUT && c->mon) { /* CURVE: look for a refused handshake */
            if (jobq_curve_handshake_failed(c->mon)) {
                LOG_WARN("broker %s refused the CURVE handshake: is our public key in its "
                         "allow-list, and is the server key the broker's?",
                         c->endpoint);
                rc = JOBQ_EAUTH;
                break;
            }
            if (jobq_remaining_ms(deadline) != 0)
                rc = JOBQ_OK;
            continue;
        }
        if (rc != JOBQ_OK)
            break;
        if (m.type == WIRE_WELCOME) {
            c->handshaking = 0;
            c->hb_ms = m.hb_ms ? m.hb_ms : c->hb_wanted_ms;
            c->flags = (m.fields & WIRE_F_FLAGS) ? m.flags : 0;
            c->last_recv_ms = jobq_now_ms();
            return JOBQ_OK;
        }
        if (m.type == WIRE_ERROR) {
            rc = m.code == JOBQ_EVERSION ? JOBQ_EVERSION : JOBQ_EPROTO;
            LOG_WARN("broker %s refused HELLO: %.*s", c->endpoint, (int)m.msg.len, m.msg.ptr);
        }
        /* Anything else before WELCOME is a leftover: ignore it. */
    }
    c->handshaking = 0;
    s_close_socket(c);
    return rc == JOBQ_ECLOSED ? JOBQ_ETIMEDOUT : rc;
}

int
conn_send(conn_t *c, wire_msg_t *msg, int64_t timeout_ms)
{
    if (!c->connected || !c->sock)
        return JOBQ_ECLOSED;
    c->out.len = 0;
    int rc = wire_encode(msg, &c->out);
    if (rc != JOBQ_OK)
        return rc;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    for (;;) {
        if (zmq_send(c->sock, c->out.data, c->out.len, ZMQ_DONTWAIT) >= 0) {
            c->last_send_ms = jobq_now_ms();
            return JOBQ_OK;
        }
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
            return JOBQ_ESYS;
        int64_t left = jobq_remaining_ms(deadline);
        if (left == 0)
            return JOBQ_ETIMEDOUT;
        zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLOUT, 0};
        zmq_poll(&item, 1, left < 0 || left > 100 ? 100 : (long)left);
    }
}

int
conn_tick(conn_t *c)
{
    int64_t now = jobq_now_ms();
    if (!c->connected)
        return JOBQ_ECLOSED;
    if (c->handshaking)
        return JOBQ_OK; /* no heartbeats before WELCOME; the connect timeout bounds the wait */
    if (now - c->last_recv_ms > (int64_t)c->hb_ms * CONN_LIVENESS) {
        LOG_NOTICE("broker %s silent for %lld ms: reconnecting", c->endpoint,
                   (long long)(now - c->last_recv_ms));
        c->connected = 0;
        return JOBQ_ECLOSED;
    }
    if (now - c->last_send_ms >= (int64_t)c->hb_ms)
        s_send_simple(c, WIRE_HEARTBEAT);
    return JOBQ_OK;
}

static int
s_take_frame(conn_t *c, wire_msg_t *msg)
{
    if (c->have_frame)
        zmq_msg_close(&c->frame);
    zmq_msg_init(&c->frame);
    c->have_frame = 1;
    if (zmq_msg_recv(&c->frame, c->sock, ZMQ_DONTWAIT) < 0)
        return zmq_errno() == EAGAIN ? JOBQ_ETIMEDOUT : JOBQ_ESYS;
    c->last_recv_ms = jobq_now_ms();
    return wire_decode(msg, zmq_msg_data(&c->frame), zmq_msg_size(&c->frame), 0);
}

int
conn_recv(conn_t *c, wire_msg_t *msg, int64_t timeout_ms)
{
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    wire_msg_fini(msg);
    for (;;) {
        if (!c->connected || !c->sock)
            return JOBQ_ECLOSED;
        int rc = s_take_frame(c, msg);
        if (rc == JOBQ_OK && msg->type == WIRE_HEARTBEAT) {
            wire_msg_fini(msg);
            continue;
        }
        if (rc == JOBQ_OK && msg->type == WIRE_DISCONNECT) {
            LOG_NOTICE("broker %s disconnected us: %.*s", c->endpoint, (int)msg->msg.len,
                       msg->msg.ptr ? msg->msg.ptr : "");
            c->connected = 0;
            return JOBQ_ECLOSED;
        }
        if (rc != JOBQ_ETIMEDOUT)
            return rc;
        if (conn_tick(c) != JOBQ_OK)
            return JOBQ_ECLOSED;
        int64_t left = jobq_remaining_ms(deadline);
        if (left == 0)
            return JOBQ_ETIMEDOUT;
        long wait = (long)c->hb_ms;
        if (left > 0 && left < wait)
            wait = (long)left;
        zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, wait);
    }
}

uint64_t
conn_next_req(conn_t *c)
{
    return c->next_req++;
}

uint32_t
conn_hb_ms(const conn_t *c)
{
    return c->hb_ms;
}

uint32_t
conn_flags(const conn_t *c)
{
    return c->flags;
}

int
conn_is_connected(const conn_t *c)
{
    return c->connected;
}

void *
conn_socket(conn_t *c)
{
    return c->sock;
}

const void *
conn_frame(const conn_t *c, size_t *len)
{
    if (!c->have_frame) {
        *len = 0;
        return NULL;
    }
    *len = zmq_msg_size((zmq_msg_t *)&c->frame);
    return zmq_msg_data((zmq_msg_t *)&c->frame);
}

int
conn_disconnect(conn_t *c, const wire_lease_t *leases, uint32_t n, int linger_ms)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_DISCONNECT);
    if (n) {
        m.fields = WIRE_F_LEASES;
        m.leases = (wire_lease_t *)leases;
        m.nleases = n;
    }
    int rc = conn_send(c, &m, 0);
    if (rc == JOBQ_EINVAL || rc == JOBQ_ETOOBIG) { /* too many leases: a plain goodbye */
        wire_msg_init(&m, WIRE_DISCONNECT);
        rc = conn_send(c, &m, 0);
    }
    if (c->have_frame) {
        zmq_msg_close(&c->frame);
        c->have_frame = 0;
    }
    if (c->sock) {
        int linger = linger_ms < 0 ? 0 : linger_ms;
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(c->sock);
        c->sock = NULL;
    }
    c->connected = 0;
    return rc;
}
