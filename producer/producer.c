/*
 * producer/producer.c: the public producer API, a dispatcher over the
 * transports of producer_impl.h, plus the result store they share.
 */
#include "producer/producer_impl.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "jobq/errors.h"

#include <assert.h>
#include <string.h>

struct jobq_producer {
    const producer_ops_t *ops;
    void *impl;
    pstore_t store;
};

static uint32_t
s_seen_hash(const jobq_id_t *id)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, (const unsigned char *)id + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h >> 40) & (2 * PSTORE_SEEN_MAX - 1);
}

/* Remembers id; returns 1 if it was remembered already. */
static int
s_seen_add(pseen_t *s, const jobq_id_t *id)
{
    if (!s->ring) {
        s->ring = jobq_malloc(PSTORE_SEEN_MAX * sizeof *s->ring);
        s->next = jobq_malloc(PSTORE_SEEN_MAX * sizeof *s->next);
        s->buckets = jobq_malloc(2 * PSTORE_SEEN_MAX * sizeof *s->buckets);
        memset(s->buckets, 0xff, 2 * PSTORE_SEEN_MAX * sizeof *s->buckets);
    }
    uint32_t h = s_seen_hash(id);
    for (int32_t i = s->buckets[h]; i >= 0; i = s->next[i])
        if (memcmp(&s->ring[i], id, sizeof *id) == 0)
            return 1;
    uint32_t pos = (s->head + s->count) % PSTORE_SEEN_MAX;
    if (s->count == PSTORE_SEEN_MAX) { /* forget the oldest */
        pos = s->head;
        int32_t *link = &s->buckets[s_seen_hash(&s->ring[pos])];
        while (*link != (int32_t)pos)
            link = &s->next[*link];
        *link = s->next[pos];
        s->head = (s->head + 1) % PSTORE_SEEN_MAX;
        s->count--;
    }
    s->ring[pos] = *id;
    s->next[pos] = s->buckets[h];
    s->buckets[h] = (int32_t)pos;
    s->count++;
    return 0;
}

void
pstore_push(pstore_t *st, const jobq_result_t *res)
{
    if (s_seen_add(&st->seen, &res->id))
        return;
    presult_t *r = jobq_malloc(sizeof *r + res->output_len + res->error_len);
    r->next = NULL;
    r->res = *res;
    if (res->output_len)
        memcpy(r->data, res->output, res->output_len);
    if (res->error_len)
        memcpy(r->data + res->output_len, res->error, res->error_len);
    r->res.output = res->output_len ? r->data : NULL;
    r->res.error = res->error_len ? r->data + res->output_len : NULL;
    if (st->tail)
        st->tail->next = r;
    else
        st->head = r;
    st->tail = r;
    st->count++;
}

int
pstore_take(pstore_t *st, const jobq_id_t *id, jobq_result_t *out)
{
    presult_t *prev = NULL, *r = st->head;
    while (r && id && memcmp(&r->res.id, id, sizeof *id) != 0) {
        prev = r;
        r = r->next;
    }
    if (!r)
        return 0;
    if (prev)
        prev->next = r->next;
    else
        st->head = r->next;
    if (st->tail == r)
        st->tail = prev;
    st->count--;
    jobq_free(st->taken);
    st->taken = r;
    *out = r->res;
    return 1;
}

void
pstore_fini(pstore_t *st)
{
    presult_t *r = st->head;
    while (r) {
        presult_t *next = r->next;
        jobq_free(r);
        r = next;
    }
    jobq_free(st->taken);
    jobq_free(st->seen.ring);
    jobq_free(st->seen.next);
    jobq_free(st->seen.buckets);
    memset(st, 0, sizeof *st);
}

int
jobq_producer_open(const char *url, const jobq_producer_opts_t *opts, jobq_producer_t **out)
{
    static const jobq_producer_opts_t defaults;
    jobq_url_t u;
    const producer_ops_t *ops = NULL;
    void *impl = NULL;
    int rc;
    if (!out)
        return JOBQ_EINVAL;
    *out = NULL;
    if (jobq_url_parse(url, &u, NULL, 0) != JOBQ_OK)
        return JOBQ_EURL;
    if (!opts)
        opts = &defaults;
    if (u.scheme == JOBQ_URL_SHM || u.scheme == JOBQ_URL_MQ)
        rc = producer_local_open(&u, opts, &ops, &impl);
    else
        rc = producer_broker_open(&u, opts, &ops, &impl);
    if (rc != JOBQ_OK)
        return rc;
    jobq_producer_t *p = jobq_calloc(1, sizeof *p);
    p->ops = ops;
    p->impl = impl;
    *out = p;
    return JOBQ_OK;
}

void
jobq_producer_destroy(jobq_producer_t **p_p)
{
    assert(p_p);
    jobq_producer_t *p = *p_p;
    if (!p)
        return;
    p->ops->destroy(p->impl);
    pstore_fini(&p->store);
    jobq_free(p);
    *p_p = NULL;
}

int
jobq_producer_submit_batch(jobq_producer_t *p, jobq_job_t *jobs, size_t n, int *codes,
                           int64_t timeout_ms)
{
    if (!p || (n && !jobs))
        return JOBQ_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const char *why;
        int rc = jobq_job_validate(&jobs[i], &why);
        if (rc != JOBQ_OK) {
            if (codes)
                codes[i] = rc;
            return rc;
        }
    }
    return n ? p->ops->submit_batch(p->impl, jobs, n, codes, timeout_ms) : JOBQ_OK;
}

int
jobq_producer_submit(jobq_producer_t *p, jobq_job_t *job, int64_t timeout_ms)
{
    int code = JOBQ_OK;
    int rc = jobq_producer_submit_batch(p, job, 1, &code, timeout_ms);
    return rc != JOBQ_OK ? rc : code;
}

static int
s_take(jobq_producer_t *p, const jobq_id_t *id, jobq_result_t *res, int64_t timeout_ms)
{
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    for (;;) {
        if (pstore_take(&p->store, id, res))
            return JOBQ_OK;
        int rc = p->ops->pump(p->impl, &p->store, id, deadline);
        if (rc == JOBQ_OK)
            continue;
        if (pstore_take(&p->store, id, res))
            return JOBQ_OK;
        return (rc == JOBQ_ETIMEDOUT && timeout_ms == 0 && !id) ? JOBQ_EEMPTY : rc;
    }
}

int
jobq_producer_wait(jobq_producer_t *p, const jobq_id_t *id, jobq_result_t *res, int64_t timeout_ms)
{
    if (!p || !id || !res)
        return JOBQ_EINVAL;
    return s_take(p, id, res, timeout_ms);
}

int
jobq_producer_next_result(jobq_producer_t *p, jobq_result_t *res, int64_t timeout_ms)
{
    if (!p || !res)
        return JOBQ_EINVAL;
    return s_take(p, NULL, res, timeout_ms);
}

int
jobq_producer_join(jobq_producer_t *p, const char *queue, int64_t timeout_ms)
{
    return p ? p->ops->join(p->impl, queue, timeout_ms) : JOBQ_EINVAL;
}

int
jobq_producer_stop_workers(jobq_producer_t *p, const char *queue, unsigned n)
{
    return p ? p->ops->stop_workers(p->impl, queue, n) : JOBQ_EINVAL;
}
