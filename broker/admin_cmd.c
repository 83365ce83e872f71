/*
 * broker/admin_cmd.c: the broker's operator commands: `jobq stats`, `pause`,
 * `resume`, `kick`, `delete`, `peek` and `broker-stop`. Each opens one DEALER
 * socket to the broker (-u URL, else $JOBQ_URL, else broker_default_url()),
 * says HELLO as an admin, sends one request (STATS or ADMIN, docs/PROTOCOL.md
 * "Broker behaviour") and prints the reply. They speak the wire protocol
 * through common/wire.h directly: the requests are one round trip each.
 *
 * `jobq stats --prometheus` prints the same STATS document in the Prometheus
 * text exposition format (version 0.0.4): one # HELP and # TYPE line per
 * metric family, then its samples, label values escaped (\\, \", \n).
 *
 * Exit codes: 0 done, 1 the broker refused or did not answer in --timeout
 * (default 5 s), 2 bad usage.
 */
#include "broker/reactor.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/curve.h"
#include "common/url.h"
#include "common/wire.h"
#include "jobq/errors.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int stats_main(int argc, char **argv);
int pause_main(int argc, char **argv);
int resume_main(int argc, char **argv);
int kick_main(int argc, char **argv);
int delete_main(int argc, char **argv);
int peek_main(int argc, char **argv);
int broker_stop_main(int argc, char **argv);

/* ---- options ------------------------------------------------------------- */

typedef struct s_args {
    const char *cmd;
    const char *url;
    const char *queue;
    int json;
    int prometheus;
    int state; /* peek: 'r' ready, 'd' delayed, 'D' dead, 0 ids */
    uint64_t n;
    int has_n;
    int64_t timeout_ms;
    char **rest; /* positional arguments */
    int nrest;
} s_args_t;

static int
s_parse(int argc, char **argv, const char *cmd, s_args_t *a)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},   {"queue", required_argument, NULL, 'q'},
        {"count", required_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
        {"prometheus", no_argument, NULL, 'P'},  {"timeout", required_argument, NULL, 'T'},
        {"ready", no_argument, NULL, 'r'},       {"delayed", no_argument, NULL, 'd'},
        {"dead", no_argument, NULL, 'D'},        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->timeout_ms = 5000;
    optind = 1;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "+u:q:n:T:", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            a->url = optarg;
            break;
        case 'q':
            a->queue = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'P':
            a->prometheus = 1;
            break;
        case 'r':
        case 'd':
        case 'D':
            a->state = c;
            break;
        case 'n':
            errno = 0;
            a->n = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || *optarg == '-')
                return jobq_cli_usage_error(cmd, "-n wants a count, got '%s'", optarg);
            a->has_n = 1;
            break;
        case 'T': {
            double s = strtod(optarg, &end);
            if (end == optarg || *end || !(s > 0) || s > 1e6)
                return jobq_cli_usage_error(cmd, "--timeout wants seconds, got '%s'", optarg);
            a->timeout_ms = (int64_t)(s * 1000);
            break;
        }
        default:
            return jobq_cli_usage_error(cmd, "bad option");
        }
    }
    if (a->url) {
        jobq_url_t u;
        char why[256];
        if (jobq_url_parse(a->url, &u, why, sizeof why) != JOBQ_OK)
            return jobq_cli_usage_error(cmd, "bad URL '%s': %s", a->url, why);
        if (u.scheme != JOBQ_URL_TCP && u.scheme != JOBQ_URL_IPC)
            return jobq_cli_usage_error(cmd, "'%s' is not a broker URL (tcp:// or ipc://)", a->url);
    }
    if (a->queue && !jobq_queue_name_valid(a->queue, strlen(a->queue)))
        return jobq_cli_usage_error(cmd, "'%s' is not a valid queue name", a->queue);
    a->rest = argv + optind;
    a->nrest = argc - optind;
    return 0;
}

/* ---- one connection to the broker ---------------------------------------- */

typedef struct s_conn {
    void *ctx, *sock;
    void *mon; /* CURVE: handshake-failure events (common/curve.h), or NULL */
    uint64_t req;
    int64_t deadline_ms;
    zmq_msg_t frame; /* the last reply's bytes (a decoded reply points into them) */
} s_conn_t;

static int s_send(s_conn_t *c, wire_msg_t *m);

/* Says DISCONNECT (so the broker forgets this client at once) and closes. */
static void
s_close(s_conn_t *c)
{
    zmq_msg_close(&c->frame);
    if (c->mon) {
        zmq_socket_monitor(c->sock, NULL, 0);
        zmq_close(c->mon);
    }
    if (c->sock) {
        wire_msg_t d;
        int linger = 100;
        wire_msg_init(&d, WIRE_DISCONNECT);
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
        s_send(c, &d);
        zmq_close(c->sock);
    }
    if (c->ctx)
        zmq_ctx_term(c->ctx);
}

/* Receives the next message other than HEARTBEAT before the deadline. */
static int
s_recv(s_conn_t *c, wire_msg_t *m)
{
    wire_msg_init(m, (wire_type)0);
    for (;;) {
        int64_t left = jobq_remaining_ms(c->deadline_ms);
        zmq_pollitem_t it[2] = {{.socket = c->sock, .events = ZMQ_POLLIN},
                                {.socket = c->mon, .events = ZMQ_POLLIN}};
        if (left <= 0 || zmq_poll(it, c->mon ? 2 : 1, (long)left) <= 0)
            return JOBQ_ETIMEDOUT;
        if (c->mon && jobq_curve_handshake_failed(c->mon))
            return JOBQ_EAUTH; /* the broker refused our CURVE key */
        zmq_msg_close(&c->frame);
        zmq_msg_init(&c->frame);
        if (zmq_msg_recv(&c->frame, c->sock, ZMQ_DONTWAIT) < 0)
            continue;
        int rc = wire_decode(m, zmq_msg_data(&c->frame), zmq_msg_size(&c->frame), 0);
        if (rc != JOBQ_OK)
            return rc;
        if (m->type != WIRE_HEARTBEAT)
            return JOBQ_OK;
        wire_msg_fini(m);
    }
}

static int
s_send(s_conn_t *c, wire_msg_t *m)
{
    wire_buf_t b = {0};
    int rc = wire_encode(m, &b);
    if (rc == JOBQ_OK && zmq_send(c->sock, b.data, b.len, ZMQ_DONTWAIT) < 0)
        rc = JOBQ_ESYS;
    wire_buf_fini(&b);
    return rc;
}

/* Resolves the URL, connects and completes HELLO/WELCOME. */
static int
s_open(s_conn_t *c, const s_args_t *a)
{
    char def[JOBQ_URL_MAX], why[256];
    const char *url = a->url ? a->url : getenv("JOBQ_URL");
    if (!url || !*url) {
        broker_default_url(def, sizeof def);
        url = def;
    }
    jobq_url_t u;
    memset(c, 0, sizeof *c);
    zmq_msg_init(&c->frame);
    if (jobq_url_parse(url, &u, why, sizeof why) != JOBQ_OK ||
        (u.scheme != JOBQ_URL_TCP && u.scheme != JOBQ_URL_IPC)) {
        fprintf(stderr, "jobq %s: '%s' is not a broker URL (tcp:// or ipc://)\n", a->cmd, url);
        return JOBQ_EURL;
    }
    int zero = 0, rc;
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    c->deadline_ms = jobq_deadline_ms(a->timeout_ms);
    const char *ck = jobq_cli_curve_key(), *cs = jobq_cli_curve_server();
    if ((ck || cs) && (!ck || !cs)) {
        fprintf(stderr, "jobq %s: CURVE needs both --curve-key and --curve-server\n", a->cmd);
        return JOBQ_EINVAL;
    }
    if (ck && (rc = jobq_curve_client_setup(c->sock, ck, cs, why, sizeof why)) != JOBQ_OK) {
        fprintf(stderr, "jobq %s: %s\n", a->cmd, why);
        return rc;
    }
    if (ck)
        c->mon = jobq_curve_monitor(c->ctx, c->sock, "inproc://jobq-admin-monitor");
    if (zmq_connect(c->sock, u.endpoint) != 0)
        return JOBQ_ESYS;
    wire_msg_t h, w;
    wire_msg_init(&w, WIRE_ERROR);
    wire_msg_init(&h, WIRE_HELLO);
    h.fields = WIRE_F_ROLE | WIRE_F_NAME;
    h.role = WIRE_ROLE_ADMIN;
    h.name = (wire_str_t){"jobq-admin", 10};
    rc = s_send(c, &h);
    if (rc == JOBQ_OK)
        rc = s_recv(c, &w);
    if (rc == JOBQ_OK && w.type != WIRE_WELCOME)
        rc = w.type == WIRE_ERROR ? (int)w.code : JOBQ_EPROTO;
    wire_msg_fini(&w);
    if (rc != JOBQ_OK)
        fprintf(stderr,
                rc == JOBQ_EAUTH ? "jobq %s: the broker at %s refused our CURVE key (is it in its "
                                   "allow-list, and is --curve-server the broker's key?): %s\n"
                                 : "jobq %s: no broker answered at %s: %s\n",
                a->cmd, url, jobq_strerror(rc));
    return rc;
}

/* Sends m with a fresh req and receives its reply into *reply (an ERROR
 * reply is printed and its code returned). */
static int
s_call(s_conn_t *c, const s_args_t *a, wire_msg_t *m, wire_msg_t *reply)
{
    m->fields |= WIRE_F_REQ;
    m->req = ++c->req;
    int rc = s_send(c, m);
    while (rc == JOBQ_OK) {
        rc = s_recv(c, reply);
        if (rc != JOBQ_OK)
            break;
        if (reply->type == WIRE_DISCONNECT)
            rc = JOBQ_ECLOSED;
        else if (!(reply->fields & WIRE_F_REQ) || reply->req != m->req) {
            wire_msg_fini(reply);
            continue;
        } else if (reply->type == WIRE_ERROR) {
            fprintf(stderr, "jobq %s: %s: %.*s\n", a->cmd, jobq_errname((int)reply->code),
                    (int)reply->msg.len, reply->msg.ptr ? reply->msg.ptr : "");
            rc = (int)reply->code ? (int)reply->code : JOBQ_EPROTO;
            wire_msg_fini(reply);
            return rc;
        }
        return rc;
    }
    fprintf(stderr, "jobq %s: %s\n", a->cmd, jobq_strerror(rc));
    return rc;
}

/* Opens, runs one request, closes. The reply's text data (STATS_REPLY) or
 * count (OK) is copied out. */
static int
s_request(const s_args_t *a, wire_msg_t *m, char **data, uint64_t *count)
{
    s_conn_t c;
    int rc = s_open(&c, a);
    wire_msg_t r;
    if (rc == JOBQ_OK && (rc = s_call(&c, a, m, &r)) == JOBQ_OK) {
        if (data && r.type == WIRE_STATS_REPLY) {
            *data = malloc(r.data.len + 1);
            if (*data) {
                memcpy(*data, r.data.ptr, r.data.len);
                (*data)[r.data.len] = '\0';
            }
        }
        if (count)
            *count = r.count;
        wire_msg_fini(&r);
    }
    s_close(&c);
    return rc;
}

/* ---- a small JSON reader (for the stats table) ---------------------------- */

typedef struct s_node {
    char t; /* o object, a array, s string, n number, b true, f false, z null */
    const char *k, *v;
    uint32_t klen, vlen;
    double num;
    uint32_t end; /* index after this node's subtree */
} s_node_t;

typedef struct s_json {
    s_node_t *n;
    uint32_t len, cap;
} s_json_t;

static void
s_ws(const char **p, const char *e)
{
    while (*p < e && (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r'))
        (*p)++;
}

/* Scans a string at *p (at the quote); sets its raw contents. */
static int
s_str(const char **p, const char *e, const char **s, uint32_t *len)
{
    const char *q = ++*p;
    while (q < e && *q != '"')
        q += *q == '\\' ? 2 : 1;
    if (q >= e)
        return -1;
    *s = *p;
    *len = (uint32_t)(q - *p);
    *p = q + 1;
    return 0;
}

static int
s_value(s_json_t *j, const char **p, const char *e, const char *k, uint32_t klen, int depth)
{
    s_ws(p, e);
    if (*p >= e || depth > 32)
        return -1;
    if (j->len == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 256;
        s_node_t *nn = realloc(j->n, j->cap * sizeof *nn);
        if (!nn)
            return -1;
        j->n = nn;
    }
    uint32_t me = j->len++;
    s_node_t *n = &j->n[me];
    memset(n, 0, sizeof *n);
    n->k = k;
    n->klen = klen;
    char c = **p;
    if (c == '{' || c == '[') {
        j->n[me].t = c == '{' ? 'o' : 'a';
        (*p)++;
        s_ws(p, e);
        while (*p < e && **p != (c == '{' ? '}' : ']')) {
            const char *ck = NULL;
            uint32_t cklen = 0;
            if (c == '{') {
                if (**p != '"' || s_str(p, e, &ck, &cklen) != 0)
                    return -1;
                s_ws(p, e);
                if (*p >= e || *(*p)++ != ':')
                    return -1;
            }
            if (s_value(j, p, e, ck, cklen, depth + 1) != 0)
                return -1;
            s_ws(p, e);
            if (*p < e && **p == ',')
                (*p)++, s_ws(p, e);
        }
        if (*p >= e)
            return -1;
        (*p)++;
    } else if (c == '"') {
        n->t = 's';
        if (s_str(p, e, &n->v, &n->vlen) != 0)
            return -1;
    } else if (c == 't' || c == 'f' || c == 'n') {
        n->t = c == 't' ? 'b' : c == 'f' ? 'f' : 'z';
        while (*p < e && **p >= 'a' && **p <= 'z')
            (*p)++;
    } else {
        char *end;
        n->t = 'n';
        n->num = strtod(*p, &end);
        if (end == *p)
            return -1;
        *p = end;
    }
    j->n[me].end = j->len;
    return 0;
}

/* Child of node i named key, or 0 (node 0 is the root, never a child). */
static uint32_t
s_get(const s_json_t *j, uint32_t i, const char *key)
{
    size_t kl = strlen(key);
    for (uint32_t c = i + 1; c < j->n[i].end; c = j->n[c].end)
        if (j->n[c].klen == kl && memcmp(j->n[c].k, key, kl) == 0)
            return c;
    return 0;
}

static double
s_num_at(const s_json_t *j, uint32_t i, const char *key)
{
    uint32_t c = s_get(j, i, key);
    return c && j->n[c].t == 'n' ? j->n[c].num : 0;
}

static const char *
s_yes(const s_json_t *j, uint32_t i, const char *key)
{
    uint32_t c = s_get(j, i, key);
    return c && j->n[c].t == 'b' ? "yes" : "no";
}

/* ---- stats --------------------------------------------------------------- */

static void
s_print_broker(const s_json_t *j, uint32_t b)
{
    uint32_t conn = s_get(j, b, "connections"), err = s_get(j, b, "protocol_errors");
    printf("broker: up %.1f s, rss %.1f MiB, %s, %s\n", s_num_at(j, b, "uptime_ms") / 1000.0,
           s_num_at(j, b, "rss_bytes") / 1048576.0,
           s_get(j, b, "durable") && j->n[s_get(j, b, "durable")].t == 'b'
               ? "durable"
               : "jobs in memory only (not durable)",
           j->n[s_get(j, b, "draining")].t == 'b' ? "draining" : "running");
    printf("connections: %.0f producers, %.0f workers, %.0f admins\n",
           s_num_at(j, conn, "producer"), s_num_at(j, conn, "worker"), s_num_at(j, conn, "admin"));
    printf("protocol errors:");
    for (uint32_t c = err + 1; err && c < j->n[err].end; c = j->n[c].end)
        printf(" %.*s %.0f", (int)j->n[c].klen, j->n[c].k, j->n[c].num);
    printf("\nsends refused: %.0f blocked, %.0f unroutable; jobs returned %.0f; peers expired "
           "%.0f, dropped %.0f\n",
           s_num_at(j, b, "send_blocked"), s_num_at(j, b, "send_unroutable"),
           s_num_at(j, b, "jobs_returned"), s_num_at(j, b, "peers_expired"),
           s_num_at(j, b, "peers_dropped"));
}

static void
s_print_tables(const s_json_t *j)
{
    uint32_t qs = s_get(j, 0, "queues"), ws = s_get(j, 0, "workers");
    printf("\n%-24s %9s %8s %8s %7s %10s %8s %10s %6s %9s %9s\n", "QUEUE", "READY", "DELAYED",
           "RESERVED", "DEAD", "DONE", "FAILED", "SUBMITTED", "PAUSED", "IN/S", "OUT/S");
    for (uint32_t q = qs + 1; qs && q < j->n[qs].end; q = j->n[q].end) {
        uint32_t nm = s_get(j, q, "name");
        printf("%-24.*s %9.0f %8.0f %8.0f %7.0f %10.0f %8.0f %10.0f %6s %9.1f %9.1f\n",
               (int)j->n[nm].vlen, j->n[nm].v, s_num_at(j, q, "ready"), s_num_at(j, q, "delayed"),
               s_num_at(j, q, "reserved"), s_num_at(j, q, "dead"), s_num_at(j, q, "done"),
               s_num_at(j, q, "failed"), s_num_at(j, q, "submitted"), s_yes(j, q, "paused"),
               s_num_at(j, q, "submitted_per_s"), s_num_at(j, q, "completed_per_s"));
    }
    printf("\n%-14s %-16s %7s %6s %9s %7s %10s %9s %-10s %-21s %s\n", "WORKER", "NAME", "CREDIT",
           "HELD", "DONE", "FAILED", "HEARD (ms)", "STOPPING", "PRINCIPAL", "ADDRESS", "JOB");
    for (uint32_t w = ws + 1; ws && w < j->n[ws].end; w = j->n[w].end) {
        uint32_t id = s_get(j, w, "id"), nm = s_get(j, w, "name"), pr = s_get(j, w, "principal");
        uint32_t ad = s_get(j, w, "address"), jobs = s_get(j, w, "jobs");
        uint32_t job = jobs && j->n[jobs].end > jobs + 1 ? jobs + 1 : 0; /* the first held job */
        printf("%-14.*s %-16.*s %7.0f %6.0f %9.0f %7.0f %10.0f %9s %-10.*s %-21.*s %.*s\n",
               (int)j->n[id].vlen, j->n[id].v, (int)j->n[nm].vlen, j->n[nm].v,
               s_num_at(j, w, "credit"), s_num_at(j, w, "held"), s_num_at(j, w, "done"),
               s_num_at(j, w, "failed"), s_num_at(j, w, "last_heard_ms"), s_yes(j, w, "stopping"),
               pr && j->n[pr].vlen ? (int)j->n[pr].vlen : 1, pr && j->n[pr].vlen ? j->n[pr].v : "-",
               ad && j->n[ad].vlen ? (int)j->n[ad].vlen : 1, ad && j->n[ad].vlen ? j->n[ad].v : "-",
               job ? (int)j->n[job].vlen : 1, job ? j->n[job].v : "-");
    }
}

/* ---- stats --prometheus ---------------------------------------------------- */

/* Writes a JSON string's raw contents (escapes included) as a Prometheus
 * label value: JSON's \" \\ \n carry over; \uXXXX is decoded (other control
 * characters and non-ASCII become UTF-8 bytes, \n stays escaped). */
static void
s_prom_label(const char *v, uint32_t len)
{
    putchar('"');
    for (uint32_t i = 0; i < len; i++) {
        unsigned c = (unsigned char)v[i];
        if (c == '\\' && i + 1 < len) {
            char e = v[++i];
            if (e == 'u' && i + 4 < len) {
                char hex[5] = {v[i + 1], v[i + 2], v[i + 3], v[i + 4], 0};
                c = (unsigned)strtoul(hex, NULL, 16);
                i += 4;
            } else {
                c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : (unsigned char)e;
            }
            if (c == '\n')
                fputs("\\n", stdout);
            else if (c == '"' || c == '\\')
                printf("\\%c", c);
            else if (c < 0x80)
                putchar((int)c);
            else if (c < 0x800)
                printf("%c%c", 0xc0 | (c >> 6), 0x80 | (c & 0x3f));
            else
                printf("%c%c%c", 0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
        } else {
            putchar((int)c);
        }
    }
    putchar('"');
}

static void
s_prom_head(const char *name, const char *type, const char *help)
{
    printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One metric family per {JSON key, name, type, help}. */
typedef struct s_prom {
    const char *key, *name, *type, *help;
} s_prom_t;

static const s_prom_t s_broker_metrics[] = {
    {"rss_bytes", "jobq_broker_resident_memory_bytes", "gauge", "Resident memory of the broker."},
    {"jobs", "jobq_broker_jobs", "gauge", "Jobs the broker holds."},
    {"bytes", "jobq_broker_job_bytes", "gauge", "Payload and unique key bytes of the jobs held."},
    {"results", "jobq_broker_results", "gauge", "Results retained."},
    {"result_bytes", "jobq_broker_result_bytes", "gauge", "Bytes of the results retained."},
    {"submitted", "jobq_broker_submitted_total", "counter", "Jobs accepted."},
    {"duplicates", "jobq_broker_duplicates_total", "counter", "Submits refused as duplicates."},
    {"refused_full", "jobq_broker_refused_full_total", "counter", "Submits refused: queue full."},
    {"done", "jobq_broker_done_total", "counter", "Jobs finished done."},
    {"buried", "jobq_broker_buried_total", "counter", "Times a job went dead."},
    {"send_blocked", "jobq_broker_send_blocked_total", "counter",
     "Sends refused: peer queue full."},
    {"send_unroutable", "jobq_broker_send_unroutable_total", "counter", "Sends to gone peers."},
    {"jobs_returned", "jobq_broker_jobs_returned_total", "counter", "Deliveries put back."},
    {"peers_expired", "jobq_broker_peers_expired_total", "counter", "Peers lost by heartbeat."},
    {"peers_dropped", "jobq_broker_peers_dropped_total", "counter", "Peers dropped for errors."},
    {"workers_lost", "jobq_broker_workers_lost_total", "counter", "Workers forgotten with jobs."},
    {"msgs_in", "jobq_broker_messages_received_total", "counter", "Messages received."},
    {"msgs_out", "jobq_broker_messages_sent_total", "counter", "Messages sent."},
};

static const s_prom_t s_security_metrics[] = {
    /* STATS "security" (broker/reactor_sec.c) */
    {"zap_allowed", "jobq_broker_curve_admitted_total", "counter", "CURVE handshakes admitted."},
    {"zap_denied", "jobq_broker_curve_denied_total", "counter", "CURVE handshakes denied."},
    {"principal_refused", "jobq_broker_principal_refused_total", "counter",
     "Messages refused: another principal on a peer's routing id."},
    {"lease_capped", "jobq_broker_lease_capped_total", "counter",
     "Deliveries cut short by a principal's lease cap."},
};

static const s_prom_t s_queue_metrics[] = {
    {"submitted", "jobq_queue_submitted_total", "counter", "Jobs accepted into the queue."},
    {"done", "jobq_queue_done_total", "counter", "Jobs of the queue finished done."},
    {"completed", "jobq_queue_completed_total", "counter", "Worker reports accepted."},
    {"failed", "jobq_queue_failed_total", "counter", "Failed attempts."},
    {"retried", "jobq_queue_retried_total", "counter", "Failed attempts retried."},
    {"buried", "jobq_queue_buried_total", "counter", "Times a job went dead."},
    {"expired", "jobq_queue_expired_total", "counter", "Leases that ran out."},
    {"kicked", "jobq_queue_kicked_total", "counter", "Dead jobs kicked back to ready."},
    {"deleted", "jobq_queue_deleted_total", "counter", "Jobs deleted."},
};

static const s_prom_t s_worker_metrics[] = {
    {"credit", "jobq_worker_credit", "gauge", "Jobs the worker may hold."},
    {"held", "jobq_worker_held_jobs", "gauge", "Jobs the worker holds."},
    {"delivered", "jobq_worker_delivered_total", "counter", "Jobs delivered to the worker."},
    {"done", "jobq_worker_done_total", "counter", "Jobs the worker finished done."},
    {"failed", "jobq_worker_failed_total", "counter", "Attempts the worker failed."},
};

/* Prints the samples of one metric over every entry of the list node. */
static void
s_prom_list(const s_json_t *j, uint32_t list, const s_prom_t *m, int worker)
{
    s_prom_head(m->name, m->type, m->help);
    for (uint32_t e = list + 1; list && e < j->n[list].end; e = j->n[e].end) {
        uint32_t nm = s_get(j, e, "name"), id = s_get(j, e, "id");
        if (worker) {
            printf("%s{worker=", m->name);
            s_prom_label(id ? j->n[id].v : "", id ? j->n[id].vlen : 0);
            printf(",name=");
        } else {
            printf("%s{queue=", m->name);
        }
        s_prom_label(nm ? j->n[nm].v : "", nm ? j->n[nm].vlen : 0);
        printf("} %.0f\n", s_num_at(j, e, m->key));
    }
}

static void
s_prom_queues(const s_json_t *j, uint32_t qs)
{
    static const char *states[] = {"ready", "delayed", "reserved", "dead"};
    s_prom_head("jobq_queue_jobs", "gauge", "Jobs of the queue by state.");
    for (uint32_t q = qs + 1; qs && q < j->n[qs].end; q = j->n[q].end) {
        uint32_t nm = s_get(j, q, "name");
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
            printf("jobq_queue_jobs{queue=");
            s_prom_label(nm ? j->n[nm].v : "", nm ? j->n[nm].vlen : 0);
            printf(",state=\"%s\"} %.0f\n", states[i], s_num_at(j, q, states[i]));
        }
    }
    s_prom_head("jobq_queue_paused", "gauge", "1 while the queue is paused.");
    for (uint32_t q = qs + 1; qs && q < j->n[qs].end; q = j->n[q].end) {
        uint32_t nm = s_get(j, q, "name");
        printf("jobq_queue_paused{queue=");
        s_prom_label(nm ? j->n[nm].v : "", nm ? j->n[nm].vlen : 0);
        printf("} %d\n", s_get(j, q, "paused") && j->n[s_get(j, q, "paused")].t == 'b');
    }
    for (size_t i = 0; i < sizeof s_queue_metrics / sizeof s_queue_metrics[0]; i++)
        s_prom_list(j, qs, &s_queue_metrics[i], 0);
}

/* Prints the STATS document j as Prometheus text exposition. */
static void
s_print_prometheus(const s_json_t *j)
{
    uint32_t b = s_get(j, 0, "broker"), conn = s_get(j, b, "connections");
    uint32_t err = s_get(j, b, "protocol_errors");
    s_prom_head("jobq_broker_uptime_seconds", "gauge", "Seconds since the broker started.");
    printf("jobq_broker_uptime_seconds %.3f\n", s_num_at(j, b, "uptime_ms") / 1000.0);
    s_prom_head("jobq_broker_draining", "gauge", "1 while the broker drains before stopping.");
    printf("jobq_broker_draining %d\n",
           s_get(j, b, "draining") && j->n[s_get(j, b, "draining")].t == 'b');
    for (size_t i = 0; i < sizeof s_broker_metrics / sizeof s_broker_metrics[0]; i++) {
        s_prom_head(s_broker_metrics[i].name, s_broker_metrics[i].type, s_broker_metrics[i].help);
        printf("%s %.0f\n", s_broker_metrics[i].name, s_num_at(j, b, s_broker_metrics[i].key));
    }
    s_prom_head("jobq_broker_connections", "gauge", "Connections by role.");
    for (uint32_t c = conn + 1; conn && c < j->n[conn].end; c = j->n[c].end) {
        printf("jobq_broker_connections{role=");
        s_prom_label(j->n[c].k, j->n[c].klen);
        printf("} %.0f\n", j->n[c].num);
    }
    s_prom_head("jobq_protocol_errors_total", "counter", "Protocol errors by kind.");
    for (uint32_t c = err + 1; err && c < j->n[err].end; c = j->n[c].end) {
        printf("jobq_protocol_errors_total{kind=");
        s_prom_label(j->n[c].k, j->n[c].klen);
        printf("} %.0f\n", j->n[c].num);
    }
    uint32_t sec = s_get(j, 0, "security");
    for (size_t i = 0; sec && i < sizeof s_security_metrics / sizeof s_security_metrics[0]; i++) {
        s_prom_head(s_security_metrics[i].name, s_security_metrics[i].type,
                    s_security_metrics[i].help);
        printf("%s %.0f\n", s_security_metrics[i].name,
               s_num_at(j, sec, s_security_metrics[i].key));
    }
    s_prom_queues(j, s_get(j, 0, "queues"));
    uint32_t ws = s_get(j, 0, "workers");
    for (size_t i = 0; i < sizeof s_worker_metrics / sizeof s_worker_metrics[0]; i++)
        s_prom_list(j, ws, &s_worker_metrics[i], 1);
}

int
stats_main(int argc, char **argv)
{
    s_args_t a;
    int rc = s_parse(argc, argv, "stats", &a);
    if (rc)
        return rc;
    if (a.nrest)
        return jobq_cli_usage_error("stats", "unexpected '%s'", a.rest[0]);
    if (a.json && a.prometheus)
        return jobq_cli_usage_error("stats", "--json and --prometheus exclude each other");
    wire_msg_t m;
    wire_msg_init(&m, WIRE_STATS);
    if (a.queue) {
        m.fields |= WIRE_F_QUEUE;
        m.queue = (wire_str_t){a.queue, (uint32_t)strlen(a.queue)};
    }
    char *data = NULL;
    if (s_request(&a, &m, &data, NULL) != JOBQ_OK || !data)
        return JOBQ_EXIT_FAIL;
    s_json_t j = {0};
    const char *p = data;
    if (a.json) {
        printf("%s\n", data);
    } else if (s_value(&j, &p, data + strlen(data), NULL, 0, 0) != 0 || j.n[0].t != 'o') {
        fprintf(stderr, "jobq stats: the broker's reply is not JSON\n");
        rc = JOBQ_EXIT_FAIL;
    } else if (a.prometheus) {
        s_print_prometheus(&j);
    } else {
        s_print_broker(&j, s_get(&j, 0, "broker"));
        s_print_tables(&j);
    }
    free(j.n);
    free(data);
    return rc;
}

/* ---- admin verbs --------------------------------------------------------- */

/* Builds ADMIN {name: verb} with the queue, -n and the ids in rest. */
static int
s_admin(const s_args_t *a, const char *verb, wire_msg_t *m, jobq_id_t *ids)
{
    wire_msg_init(m, WIRE_ADMIN);
    m->fields = WIRE_F_NAME;
    m->name = (wire_str_t){verb, (uint32_t)strlen(verb)};
    if (a->queue) {
        m->fields |= WIRE_F_QUEUE;
        m->queue = (wire_str_t){a->queue, (uint32_t)strlen(a->queue)};
    }
    if (a->has_n) {
        m->fields |= WIRE_F_COUNT;
        m->count = a->n;
    }
    for (int i = 0; ids && i < a->nrest; i++)
        if (jobq_id_parse(a->rest[i], &ids[i]) != JOBQ_OK)
            return jobq_cli_usage_error(a->cmd, "'%s' is not a job id (32 hex digits)", a->rest[i]);
    if (ids && a->nrest) {
        m->fields |= WIRE_F_IDS;
        m->ids = ids;
        m->nids = (uint32_t)a->nrest;
    }
    return 0;
}

/* Runs a verb that answers OK {n}; prints "WHAT N" when what is set. */
static int
s_simple(const s_args_t *a, const char *verb, jobq_id_t *ids, const char *what)
{
    wire_msg_t m;
    int rc = s_admin(a, verb, &m, ids);
    if (rc)
        return rc;
    uint64_t n = 0;
    if (s_request(a, &m, NULL, &n) != JOBQ_OK)
        return JOBQ_EXIT_FAIL;
    if (what)
        printf("%s %llu\n", what, (unsigned long long)n);
    return JOBQ_EXIT_OK;
}

static jobq_id_t *
s_ids(const s_args_t *a)
{
    return a->nrest ? calloc((size_t)a->nrest, sizeof(jobq_id_t)) : NULL;
}

int
pause_main(int argc, char **argv)
{
    s_args_t a;
    int rc = s_parse(argc, argv, "pause", &a);
    if (rc)
        return rc;
    if (!a.queue || a.nrest > 1)
        return jobq_cli_usage_error("pause", "usage: -q QUEUE [SECONDS]");
    wire_msg_t m;
    s_admin(&a, "pause", &m, NULL);
    if (a.nrest) {
        char *end;
        double s = strtod(a.rest[0], &end);
        if (end == a.rest[0] || *end || !(s > 0) || s > 3e8)
            return jobq_cli_usage_error("pause", "SECONDS must be > 0, got '%s'", a.rest[0]);
        m.fields |= WIRE_F_TIMEOUT;
        m.timeout_ms = (uint64_t)(s * 1000);
    }
    return s_request(&a, &m, NULL, NULL) == JOBQ_OK ? JOBQ_EXIT_OK : JOBQ_EXIT_FAIL;
}

int
resume_main(int argc, char **argv)
{
    s_args_t a;
    int rc = s_parse(argc, argv, "resume", &a);
    if (rc)
        return rc;
    if (!a.queue || a.nrest)
        return jobq_cli_usage_error("resume", "usage: -q QUEUE");
    return s_simple(&a, "resume", NULL, NULL);
}

int
kick_main(int argc, char **argv)
{
    s_args_t a;
    int rc = s_parse(argc, argv, "kick", &a);
    if (rc)
        return rc;
    if (a.queue && a.nrest == 1 && !a.has_n && strlen(a.rest[0]) < 20) { /* -q QUEUE N */
        char *end;
        a.n = strtoull(a.rest[0], &end, 10);
        if (*end || end == a.rest[0])
            return jobq_cli_usage_error("kick", "N must be a count");
        a.has_n = 1;
        a.nrest = 0;
    }
    if (!a.queue && !a.nrest)
        return jobq_cli_usage_error("kick", "give -q QUEUE [N] or job ids");
    jobq_id_t *ids = s_ids(&a);
    rc = s_simple(&a, "kick", ids, "kicked");
    free(ids);
    return rc;
}

int
delete_main(int argc, char **argv)
{
    s_args_t a;
    int rc = s_parse(argc, argv, "delete", &a);
    if (rc)
        return rc;
    if (!a.nrest || a.queue)
        return jobq_cli_usage_error("delete", "give job ids");
    jobq_id_t *ids = s_ids(&a);
    rc = s_simple(&a, "delete", ids, "deleted");
    free(ids);
    return rc;
}

int
peek_main(int argc, char **argv)
{
    s_args_t a;
    int rc = s_parse(argc, argv, "peek", &a);
    if (rc)
        return rc;
    if (!a.nrest == !a.queue)
        return jobq_cli_usage_error("peek", "give -q QUEUE or job ids");
    const char *verb = !a.queue         ? "peek"
                       : a.state == 'd' ? "peek-delayed"
                       : a.state == 'D' ? "peek-dead"
                                        : "peek-ready";
    jobq_id_t *ids = s_ids(&a);
    wire_msg_t m;
    char *data = NULL;
    rc = s_admin(&a, verb, &m, ids);
    if (rc == 0)
        rc = s_request(&a, &m, &data, NULL) == JOBQ_OK ? JOBQ_EXIT_OK : JOBQ_EXIT_FAIL;
    if (data)
        printf("%s\n", data);
    free(data);
    free(ids);
    return rc;
}

int
broker_stop_main(int argc, char **argv)
{
    s_args_t a;
    int rc = s_parse(argc, argv, "broker-stop", &a);
    if (rc)
        return rc;
    if (a.nrest || a.queue)
        return jobq_cli_usage_error("broker-stop", "takes only -u URL");
    return s_simple(&a, "shutdown", NULL, NULL);
}
