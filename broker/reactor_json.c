/*
 * broker/reactor_json.c: the JSON texts the broker sends in STATS_REPLY
 * (STATS, and ADMIN peek verbs). The text is capped at WIRE_DATA_MAX: lists
 * stop early with "truncated": true rather than exceed it, so the reply is
 * always valid JSON. Strings from peers (names, payloads, error texts) are
 * escaped; bytes >= 0x80 are written as \u00XX so the text is plain ASCII.
 */
#include "broker/reactor_int.h"
#include "common/alloc.h"
#include "jobq/version.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define S_ENTRY_RESERVE 8192 /* room kept for one list entry and the closing text */
#define S_PAYLOAD_SHOWN 1024 /* payload bytes shown by peek */
#define S_QUEUES_SHOWN 16    /* queue names shown per worker */
#define S_JOBS_SHOWN 8       /* ids of the jobs a worker holds, shown per worker */

static void
s_reserve(rx_text_t *t, size_t more)
{
    if (t->len + more + 1 <= t->cap)
        return;
    size_t ncap = t->cap ? t->cap : 1024;
    while (ncap < t->len + more + 1)
        ncap *= 2;
    t->s = jobq_realloc(t->s, ncap);
    t->cap = ncap;
}

void
rx_text_add(rx_text_t *t, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (t->max && t->len + (size_t)n > t->max) {
        t->over = 1;
        return;
    }
    s_reserve(t, (size_t)n);
    if ((size_t)n < sizeof small) {
        memcpy(t->s + t->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    t->len += (size_t)n;
}

void
rx_text_str(rx_text_t *t, const void *s, size_t len)
{
    const unsigned char *p = s;
    if (t->max && t->len + len * 6 + 2 > t->max) {
        t->over = 1;
        return;
    }
    s_reserve(t, len * 6 + 2);
    char *o = t->s + t->len;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += sprintf(o, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    t->len = (size_t)(o - t->s);
}

void
rx_text_fini(rx_text_t *t)
{
    jobq_free(t->s);
    memset(t, 0, sizeof *t);
}

/* 1 if another list entry still fits (else marks the text truncated). */
static int
s_room(rx_text_t *t, int *truncated)
{
    if (t->max && t->len + S_ENTRY_RESERVE > t->max)
        *truncated = 1;
    return !*truncated;
}

static uint64_t
s_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void
s_broker_json(reactor_t *r, rx_text_t *t)
{
    static const char *const kinds[RX_ERR_COUNT_] = {
        "envelope",    "malformed",  "bad_version",     "too_big",    "no_hello",
        "hello_twice", "wrong_role", "wrong_direction", "peer_error", "principal"};
    const rx_counters_t *c = &r->cnt;
    core_stats_t st;
    core_stats(r->core, &st);
    rx_text_add(t,
                "\"broker\":{\"version\":\"%s\",\"uptime_ms\":%" PRId64 ",\"rss_bytes\":%" PRIu64
                ",\"durable\":%s,\"draining\":%s,",
                jobq_version(), r->now_ms - r->started_ms, s_rss_bytes(), r->jrn ? "true" : "false",
                r->stopping ? "true" : "false");
    rx_text_add(t, "\"connections\":{\"producer\":%u,\"worker\":%u,\"admin\":%u},",
                r->peers.by_role[WIRE_ROLE_PRODUCER], r->peers.by_role[WIRE_ROLE_WORKER],
                r->peers.by_role[WIRE_ROLE_ADMIN]);
    rx_text_add(t, "\"protocol_errors\":{");
    for (int k = 0; k < RX_ERR_COUNT_; k++)
        rx_text_add(t, "%s\"%s\":%" PRIu64, k ? "," : "", kinds[k], c->errors[k]);
    rx_text_add(t,
                "},\"send_blocked\":%" PRIu64 ",\"send_unroutable\":%" PRIu64
                ",\"jobs_returned\":%" PRIu64 ",\"replies_dropped\":%" PRIu64,
                c->send_blocked, c->send_unroutable, c->jobs_returned, c->replies_dropped);
    rx_text_add(t,
                ",\"peers_dropped\":%" PRIu64 ",\"peers_expired\":%" PRIu64
                ",\"workers_lost\":%" PRIu64 ",\"sentinels\":%" PRIu64 ",\"reports\":%" PRIu64,
                c->peers_dropped, c->peers_expired, c->workers_lost, c->sentinels, c->reports);
    rx_text_add(t, ",\"msgs_in\":%" PRIu64 ",\"msgs_out\":%" PRIu64 ",\"results_pushed\":%" PRIu64,
                c->msgs_in, c->msgs_out, c->results_pushed);
    rx_text_add(t,
                ",\"queues\":%u,\"jobs\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"results\":%" PRIu64
                ",\"result_bytes\":%" PRIu64,
                st.queues, st.jobs, st.bytes, st.results, st.result_bytes);
    rx_text_add(t,
                ",\"submitted\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"refused_full\":%" PRIu64
                ",\"done\":%" PRIu64 ",\"buried\":%" PRIu64,
                st.submitted, st.duplicates, st.refused_full, st.done, st.buried);
    rx_journal_json(r, t);
    rx_text_add(t, "}");
}

static void
s_queue_json(reactor_t *r, rx_text_t *t, uint32_t idx, const core_queue_stats_t *q)
{
    double sub_rate, done_rate;
    rx_rates_get(r, idx, q, &sub_rate, &done_rate);
    rx_text_add(t, "{\"name\":");
    rx_text_str(t, q->name, q->name_len);
    rx_text_add(t,
                ",\"ready\":%" PRIu64 ",\"delayed\":%" PRIu64 ",\"reserved\":%" PRIu64
                ",\"dead\":%" PRIu64 ",\"unfinished\":%" PRIu64,
                q->ready, q->delayed, q->reserved, q->dead, q->unfinished);
    rx_text_add(t,
                ",\"submitted\":%" PRIu64 ",\"done\":%" PRIu64 ",\"completed\":%" PRIu64
                ",\"failed\":%" PRIu64 ",\"retried\":%" PRIu64 ",\"buried\":%" PRIu64,
                q->submitted, q->done, q->completed, q->failed, q->retried, q->buried);
    rx_text_add(t,
                ",\"expired\":%" PRIu64 ",\"released\":%" PRIu64 ",\"kicked\":%" PRIu64
                ",\"deleted\":%" PRIu64 ",\"jobs\":%" PRIu64 ",\"bytes\":%" PRIu64,
                q->expired, q->released, q->kicked, q->deleted, q->jobs, q->bytes);
    int64_t left = !q->paused                           ? 0
                   : q->paused_until_ms == CORE_FOREVER ? -1
                                                        : q->paused_until_ms - r->now_ms;
    rx_text_add(t,
                ",\"submitted_per_s\":%.1f,\"completed_per_s\":%.1f,\"paused\":%s,"
                "\"paused_for_ms\":%" PRId64 "}",
                sub_rate, done_rate, q->paused ? "true" : "false", left);
}

static void
s_worker_json(reactor_t *r, rx_text_t *t, const rx_peer_t *p)
{
    char hex[2 * 255 + 1];
    core_worker_stats_t w;
    if (core_worker_stats(r->core, p->handle, &w) != JOBQ_OK)
        memset(&w, 0, sizeof w);
    rx_peer_rid_hex(p, hex);
    rx_text_add(t, "{\"id\":\"%s\",\"name\":", hex);
    rx_text_str(t, p->name, p->name_len);
    rx_text_add(t, ",\"principal\":");
    rx_text_str(t, p->principal, (uint32_t)strlen(p->principal));
    rx_text_add(t, ",\"address\":");
    rx_text_str(t, p->addr, (uint32_t)strlen(p->addr));
    jobq_id_t held[S_JOBS_SHOWN];
    uint32_t nh = core_worker_jobs(r->core, p->handle, held, S_JOBS_SHOWN);
    rx_text_add(t, ",\"jobs\":[");
    for (uint32_t i = 0; i < nh; i++) {
        char id[JOBQ_ID_HEX_LEN + 1];
        jobq_id_format(&held[i], id);
        rx_text_add(t, "%s\"%s\"", i ? "," : "", id);
    }
    rx_text_add(t, "]");
    rx_text_add(t, ",\"queues\":[");
    for (uint32_t i = 0; i < p->nqueues && i < S_QUEUES_SHOWN; i++) {
        if (i)
            rx_text_add(t, ",");
        rx_text_str(t, p->queues[i].ptr, p->queues[i].len);
    }
    rx_text_add(t,
                "],\"all_queues\":%s,\"credit\":%u,\"held\":%u,\"delivered\":%" PRIu64
                ",\"done\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"extended\":%" PRIu64,
                p->nqueues ? "false" : "true", p->credit, w.held, w.delivered, w.done, w.failed,
                w.extended);
    rx_text_add(t,
                ",\"heartbeat_ms\":%u,\"last_heard_ms\":%" PRId64 ",\"connected_ms\":%" PRId64
                ",\"stopping\":%s}",
                p->hb_ms, r->now_ms - p->last_recv_ms, r->now_ms - p->since_ms,
                p->stopping ? "true" : "false");
}

int
rx_stats_json(reactor_t *r, const char *q, uint32_t qlen, rx_text_t *t)
{
    core_queue_stats_t qs;
    if (qlen && core_queue_stats(r->core, q, qlen, &qs) != JOBQ_OK)
        return JOBQ_ENOTFOUND;
    int truncated = 0;
    rx_rates_sample(r); /* a broker idle since its last pass has a stale window */
    rx_text_add(t, "{");
    s_broker_json(r, t);
    rx_sec_json(r, t);
    rx_text_add(t, ",\"queues\":[");
    if (qlen) {
        uint32_t idx = 0, n = core_queue_count(r->core);
        core_queue_stats_t each;
        while (idx < n && !(core_queue_stats_at(r->core, idx, &each) == JOBQ_OK &&
                            each.name_len == qlen && memcmp(each.name, q, qlen) == 0))
            idx++; /* the queue's creation index, for its rates */
        s_queue_json(r, t, idx, &qs);
    } else {
        uint32_t n = core_queue_count(r->core), shown = 0;
        for (uint32_t i = 0; i < n && s_room(t, &truncated); i++) {
            if (core_queue_stats_at(r->core, i, &qs) != JOBQ_OK)
                continue;
            if (shown++)
                rx_text_add(t, ",");
            s_queue_json(r, t, i, &qs);
        }
    }
    rx_text_add(t, "],\"workers\":[");
    int first = 1;
    for (uint32_t i = 0; i < r->peers.cap && s_room(t, &truncated); i++) {
        const rx_peer_t *p = r->peers.slots[i];
        if (!p || p->role != WIRE_ROLE_WORKER)
            continue;
        if (qlen) {
            int serves = p->nqueues == 0;
            for (uint32_t k = 0; k < p->nqueues && !serves; k++)
                serves = p->queues[k].len == qlen && memcmp(p->queues[k].ptr, q, qlen) == 0;
            if (!serves)
                continue;
        }
        if (!first)
            rx_text_add(t, ",");
        first = 0;
        s_worker_json(r, t, p);
    }
    rx_text_add(t, "],\"truncated\":%s}", truncated ? "true" : "false");
    return JOBQ_OK;
}

void
rx_job_json(rx_text_t *t, const core_job_view_t *v)
{
    char hex[JOBQ_ID_HEX_LEN + 1];
    jobq_id_format(&v->id, hex);
    rx_text_add(t, "{\"id\":\"%s\",\"queue\":", hex);
    rx_text_str(t, v->queue, v->queue_len);
    rx_text_add(t,
                ",\"state\":\"%s\",\"priority\":%u,\"ttr_ms\":%u,\"max_attempts\":%u"
                ",\"attempt\":%u,\"attempts_used\":%u,\"payload_len\":%u,\"payload\":",
                jobq_state_name(v->state), v->priority, v->ttr_ms, v->max_attempts, v->attempt,
                v->attempts_used, v->payload_len);
    uint32_t shown = v->payload_len < S_PAYLOAD_SHOWN ? v->payload_len : S_PAYLOAD_SHOWN;
    rx_text_str(t, v->payload ? v->payload : "", v->payload ? shown : 0);
    if (v->backoff_ms)
        rx_text_add(t, ",\"backoff_ms\":%u", v->backoff_ms);
    if (v->unique_len) {
        rx_text_add(t, ",\"unique\":");
        rx_text_str(t, v->unique, v->unique_len);
    }
    if (v->state == JOBQ_STATE_DEAD || v->state == JOBQ_STATE_DONE) {
        rx_text_add(t, ",\"last_status\":\"%s\",\"exit_code\":%d,\"signal\":%d,\"error\":",
                    jobq_status_name(v->last_status), v->exit_code, v->signal);
        rx_text_str(t, v->error ? v->error : "", v->error ? v->error_len : 0);
    }
    rx_text_add(t, "}");
}
