/*
 * producer/local.c: the producer API over a local JoinableQueue (shm://, mq://).
 * Submits are puts; results come from the queue's results channel; join is
 * the queue's join; stop_workers puts sentinels.
 */
#include "common/alloc.h"
#include "common/clock.h"
#include "jobq/errors.h"
#include "jobq/queue.h"
#include "producer/producer_impl.h"

#include <stdio.h>
#include <string.h>

typedef struct plocal {
    jobq_queue_t *q;
} plocal_t;

static int
s_submit_batch(void *impl, jobq_job_t *jobs, size_t n, int *codes, int64_t timeout_ms)
{
    plocal_t *pl = impl;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    int first = JOBQ_OK;
    for (size_t i = 0; i < n; i++) {
        int64_t left = timeout_ms < 0 ? -1 : jobq_remaining_ms(deadline);
        int rc = jobq_queue_put(pl->q, &jobs[i], left);
        if (codes)
            codes[i] = rc;
        if (rc != JOBQ_OK && first == JOBQ_OK)
            first = rc;
    }
    return first;
}

static int
s_pump(void *impl, pstore_t *st, const jobq_id_t *id, int64_t deadline_ms)
{
    plocal_t *pl = impl;
    jobq_result_t res;
    for (;;) {
        int64_t left = jobq_remaining_ms(deadline_ms);
        int rc = jobq_queue_get_result(pl->q, &res, left);
        if (rc == JOBQ_EEMPTY)
            return JOBQ_ETIMEDOUT;
        if (rc != JOBQ_OK)
            return rc;
        pstore_push(st, &res);
        if (!id || jobq_id_is_zero(id) || memcmp(&res.id, id, sizeof *id) == 0)
            return JOBQ_OK;
        if (left == 0)
            return JOBQ_ETIMEDOUT;
    }
}

static int
s_join(void *impl, const char *queue, int64_t timeout_ms)
{
    (void)queue;
    return jobq_queue_join(((plocal_t *)impl)->q, timeout_ms);
}

static int
s_stop_workers(void *impl, const char *queue, unsigned n)
{
    plocal_t *pl = impl;
    (void)queue;
    for (unsigned i = 0; i < n; i++) {
        int rc = jobq_queue_put_sentinel(pl->q, -1);
        if (rc != JOBQ_OK)
            return rc;
    }
    return JOBQ_OK;
}

static void
s_destroy(void *impl)
{
    plocal_t *pl = impl;
    jobq_queue_destroy(&pl->q);
    jobq_free(pl);
}

static const producer_ops_t s_ops = {s_submit_batch, s_pump, s_join, s_stop_workers, s_destroy};

int
producer_local_open(const jobq_url_t *url, const jobq_producer_opts_t *opts,
                    const producer_ops_t **ops, void **impl)
{
    char text[JOBQ_URL_MAX];
    jobq_queue_opts_t qo = {.flags = JOBQ_QUEUE_CREATE, .max_items = opts->max_items};
    jobq_queue_t *q = NULL;
    snprintf(text, sizeof text, "%s://%s", jobq_url_scheme_name(url->scheme), url->name);
    int rc = jobq_queue_open(text, &qo, &q);
    if (rc != JOBQ_OK)
        return rc;
    plocal_t *pl = jobq_calloc(1, sizeof *pl);
    pl->q = q;
    *ops = &s_ops;
    *impl = pl;
    return JOBQ_OK;
}
