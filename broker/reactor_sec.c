/*
 * broker/reactor_sec.c: the reactor's security: CURVE on tcp:// endpoints
 * with the ZAP allow-list (broker/zap.h), the socket limits against
 * exhaustion (handshake timeout, ZMTP heartbeats), principals on peers and
 * the per-principal lease cap. docs/SECURITY.md is the contract.
 *
 * Invariants:
 *   - the ZAP handler is bound in r->ctx before any CURVE socket binds
 *     (reactor_new calls rx_sec_init first), and every CURVE socket sets
 *     ZMQ_ZAP_ENFORCE_DOMAIN, so no handler means no admission;
 *   - the server's secret key is in memory only between rx_sec_init and
 *     rx_sec_bound, and is never logged;
 *   - a peer's principal is fixed at HELLO; a later message on the same
 *     routing id from another principal is refused without touching the
 *     peer (its leases stay its own: the core fences them by peer handle).
 */
#include "broker/reactor_int.h"
#include "broker/zap.h"
#include "common/alloc.h"
#include "common/curve.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

typedef struct s_principal {
    char name[RX_PRINCIPAL_MAX + 1];
    uint32_t held; /* leases held by its workers, recounted each delivery round */
} s_principal_t;

struct rx_sec {
    int curve;
    jobq_curve_pair_t kp; /* wiped by rx_sec_bound */
    zap_t *zap;
    s_principal_t *pr;
    uint32_t npr, cappr;
    uint64_t refused;      /* messages refused: principal not the peer's */
    uint64_t lease_capped; /* delivery rounds a worker got less for its principal's cap */
};

static int __attribute__((format(printf, 4, 5)))
s_why(int code, char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return code;
}

int
rx_sec_init(reactor_t *r, char *why, size_t why_len)
{
    struct rx_sec *sec = jobq_calloc(1, sizeof *sec);
    r->sec = sec;
    const reactor_opts_t *o = &r->opts;
    if (!o->curve_key && !o->curve_clients)
        return JOBQ_OK;
    if (!o->curve_key || !o->curve_clients)
        return s_why(JOBQ_EINVAL, why, why_len, "--curve-key and --curve-clients go together");
    if (!zmq_has("curve"))
        return s_why(JOBQ_EUNSUPPORTED, why, why_len, "this libzmq has no CURVE support");
    int rc = jobq_curve_load_secret(o->curve_key, &sec->kp, why, why_len);
    if (rc == JOBQ_OK)
        rc = zap_start(r->ctx, o->curve_clients, &sec->zap, why, why_len);
    if (rc != JOBQ_OK) {
        jobq_curve_wipe(&sec->kp, sizeof sec->kp);
        return rc;
    }
    sec->curve = 1;
    LOG_NOTICE("CURVE on tcp:// endpoints: %u principals allowed from %s", zap_principals(sec->zap),
               o->curve_clients);
    return JOBQ_OK;
}

static int
s_setopt(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v);
}

int
rx_sec_socket(reactor_t *r, void *s, const char *url, int tcp, int loopback, char *why,
              size_t why_len)
{
    struct rx_sec *sec = r->sec;
    if (tcp && !loopback && !sec->curve) {
        if (!r->opts.insecure)
            return s_why(JOBQ_EFORBIDDEN, why, why_len,
                         "%s is not a loopback address: use --curve-key/--curve-clients, "
                         "or --insecure to listen on it unauthenticated",
                         url);
        LOG_WARN("listening on %s WITHOUT AUTHENTICATION (--insecure): anyone who can reach it "
                 "may submit, take and delete jobs",
                 url);
    }
    int hb = (int)r->opts.zmtp_hb_ms;
    if (s_setopt(s, ZMQ_HANDSHAKE_IVL, (int)r->opts.handshake_ms) != 0 ||
        (tcp && (s_setopt(s, ZMQ_HEARTBEAT_IVL, hb) != 0 ||
                 s_setopt(s, ZMQ_HEARTBEAT_TIMEOUT, 3 * hb) != 0 ||
                 s_setopt(s, ZMQ_HEARTBEAT_TTL, 3 * hb) != 0)))
        return s_why(JOBQ_ESYS, why, why_len, "socket options: %s", zmq_strerror(errno));
    if (tcp && sec->curve && jobq_curve_server_setup(s, sec->kp.sec) != 0)
        return s_why(JOBQ_ESYS, why, why_len, "CURVE options refused: %s", zmq_strerror(errno));
    return JOBQ_OK;
}

void
rx_sec_bound(reactor_t *r)
{
    jobq_curve_wipe(&r->sec->kp, sizeof r->sec->kp);
}

void
rx_sec_fini(reactor_t *r)
{
    if (!r->sec)
        return;
    zap_stop(&r->sec->zap);
    jobq_curve_wipe(&r->sec->kp, sizeof r->sec->kp);
    jobq_free(r->sec->pr);
    jobq_free(r->sec);
    r->sec = NULL;
}

const char *
rx_sec_user(void *zmsg)
{
    const char *u = zmq_msg_gets(zmsg, "User-Id");
    return u ? u : "";
}

int
rx_sec_admit(reactor_t *r, rx_peer_t *p, const char *user)
{
    if (strcmp(user, p->principal) == 0)
        return 0;
    r->sec->refused++;
    r->cnt.errors[RX_ERR_PRINCIPAL]++;
    LOG_NOTICE("refused a message on %.*s's routing id from principal '%.64s' (the peer is '%s')",
               (int)p->name_len, p->name, user, p->principal);
    const char *text = "this routing id belongs to another principal";
    wire_msg_t e;
    wire_msg_init(&e, WIRE_ERROR);
    e.fields = WIRE_F_CODE | WIRE_F_MSG;
    e.code = JOBQ_EFORBIDDEN;
    e.msg = (wire_str_t){text, (uint32_t)strlen(text)};
    if (rx_send_raw(r, p->sock, p->rid, p->rid_len, &e) != 0)
        r->cnt.replies_dropped++;
    return -1;
}

/* The row of principal name, added when new. */
static int32_t
s_principal_row(struct rx_sec *sec, const char *name)
{
    for (uint32_t i = 0; i < sec->npr; i++)
        if (strcmp(sec->pr[i].name, name) == 0)
            return (int32_t)i;
    if (sec->npr == sec->cappr) {
        sec->cappr = sec->cappr ? sec->cappr * 2 : 8;
        sec->pr = jobq_realloc(sec->pr, sec->cappr * sizeof *sec->pr);
    }
    s_principal_t *e = &sec->pr[sec->npr];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    return (int32_t)sec->npr++;
}

void
rx_sec_hello(reactor_t *r, rx_peer_t *p, const char *user)
{
    snprintf(p->principal, sizeof p->principal, "%s", user);
    p->pidx = user[0] ? s_principal_row(r->sec, p->principal) : -1;
    if (user[0])
        LOG_INFO("%.*s is principal %s", (int)p->name_len, p->name, p->principal);
}

void
rx_sec_count_leases(reactor_t *r)
{
    struct rx_sec *sec = r->sec;
    if (!sec->npr)
        return;
    for (uint32_t i = 0; i < sec->npr; i++)
        sec->pr[i].held = 0;
    for (uint32_t i = 0; i < r->peers.cap; i++) {
        const rx_peer_t *p = r->peers.slots[i];
        core_worker_stats_t st;
        if (p && p->role == WIRE_ROLE_WORKER && p->pidx >= 0 &&
            core_worker_stats(r->core, p->handle, &st) == JOBQ_OK)
            sec->pr[p->pidx].held += st.held;
    }
}

size_t
rx_sec_lease_room(reactor_t *r, const rx_peer_t *p, size_t room)
{
    if (p->pidx < 0)
        return room;
    uint32_t held = r->sec->pr[p->pidx].held, max = r->opts.max_leases;
    size_t left = held >= max ? 0 : max - held;
    if (left < room)
        r->sec->lease_capped++;
    return left < room ? left : room;
}

void
rx_sec_leased(reactor_t *r, const rx_peer_t *p, size_t n)
{
    if (p->pidx >= 0)
        r->sec->pr[p->pidx].held += (uint32_t)n;
}

void
rx_sec_json(reactor_t *r, rx_text_t *t)
{
    struct rx_sec *sec = r->sec;
    uint64_t allowed = 0, denied = 0;
    if (sec->zap)
        zap_counts(sec->zap, &allowed, &denied);
    rx_text_add(t,
                ",\"security\":{\"curve\":%s,\"zap_allowed\":%" PRIu64 ",\"zap_denied\":%" PRIu64
                ",\"principal_refused\":%" PRIu64 ",\"lease_capped\":%" PRIu64
                ",\"max_leases\":%u,\"principals\":[",
                sec->curve ? "true" : "false", allowed, denied, sec->refused, sec->lease_capped,
                r->opts.max_leases);
    for (uint32_t i = 0; i < sec->npr; i++) {
        rx_text_add(t, "%s{\"name\":", i ? "," : "");
        rx_text_str(t, sec->pr[i].name, (uint32_t)strlen(sec->pr[i].name));
        rx_text_add(t, ",\"held\":%u}", sec->pr[i].held);
    }
    rx_text_add(t, "]}");
}
