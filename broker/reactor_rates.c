/*
 * broker/reactor_rates.c: per-queue submit and completion rates for STATS.
 *
 * Once a second at most (from the reactor's pass, so an idle broker takes no
 * samples and needs no timer), the reactor records each queue's submitted and
 * completed counters in a ring of RX_RATE_SLOTS samples. A rate is the
 * difference between the current counter and the oldest sample in the ring,
 * over the time between them: the average of the last RX_RATE_SLOTS seconds
 * of activity, or since the queue appeared (a queue first seen by a sample
 * gets a zero sample at the time of the one before). Queues are indexed in creation
 * order (core_queue_stats_at), which never changes.
 */
#include "broker/reactor_int.h"
#include "common/alloc.h"

#include <string.h>

/* Grows the sample table to n queues (new rows: no samples yet). */
static void
s_grow(rx_rates_t *rt, uint32_t n)
{
    if (n <= rt->nq)
        return;
    uint32_t cap = rt->nq ? rt->nq : 8;
    while (cap < n)
        cap *= 2;
    rx_rate_sample_t *s = jobq_calloc((size_t)cap * RX_RATE_SLOTS, sizeof *s);
    if (rt->s)
        memcpy(s, rt->s, (size_t)rt->nq * RX_RATE_SLOTS * sizeof *s);
    jobq_free(rt->s);
    rt->s = s;
    rt->nq = cap;
}

void
rx_rates_sample(reactor_t *r)
{
    rx_rates_t *rt = &r->rates;
    if (rt->last_ms && r->now_ms - rt->last_ms < RX_RATE_EVERY_MS)
        return;
    int64_t prev = rt->last_ms ? rt->last_ms : r->started_ms;
    rt->last_ms = r->now_ms;
    uint32_t n = core_queue_count(r->core);
    s_grow(rt, n);
    for (uint32_t i = rt->nseen; i < n; i++) { /* new since the last sample: had nothing then */
        rx_rate_sample_t *row = &rt->s[(size_t)i * RX_RATE_SLOTS];
        row[(rt->head + RX_RATE_SLOTS - 1) % RX_RATE_SLOTS] = (rx_rate_sample_t){prev, 0, 0, 1};
    }
    rt->nseen = n;
    for (uint32_t i = 0; i < n; i++) {
        core_queue_stats_t st;
        if (core_queue_stats_at(r->core, i, &st) != JOBQ_OK)
            continue;
        rx_rate_sample_t *row = &rt->s[(size_t)i * RX_RATE_SLOTS];
        row[rt->head] = (rx_rate_sample_t){r->now_ms, st.submitted, st.completed, 1};
    }
    rt->head = (rt->head + 1) % RX_RATE_SLOTS;
}

void
rx_rates_get(const reactor_t *r, uint32_t i, const core_queue_stats_t *st, double *submit,
             double *done)
{
    const rx_rates_t *rt = &r->rates;
    *submit = *done = 0;
    if (i >= rt->nseen) { /* not sampled yet: it had nothing at the last sample */
        int64_t since = rt->last_ms ? rt->last_ms : r->started_ms;
        if (r->now_ms > since) {
            *submit = (double)st->submitted * 1000.0 / (double)(r->now_ms - since);
            *done = (double)st->completed * 1000.0 / (double)(r->now_ms - since);
        }
        return;
    }
    const rx_rate_sample_t *row = &rt->s[(size_t)i * RX_RATE_SLOTS], *old = NULL;
    for (uint32_t k = 0; k < RX_RATE_SLOTS; k++) /* the oldest: the slot after head, onwards */
        if (row[(rt->head + k) % RX_RATE_SLOTS].set) {
            old = &row[(rt->head + k) % RX_RATE_SLOTS];
            break;
        }
    if (!old || r->now_ms <= old->t_ms)
        return;
    double secs = (double)(r->now_ms - old->t_ms) / 1000.0;
    *submit = (double)(st->submitted - old->submitted) / secs;
    *done = (double)(st->completed - old->completed) / secs;
}

void
rx_rates_fini(rx_rates_t *rt)
{
    jobq_free(rt->s);
    memset(rt, 0, sizeof *rt);
}
