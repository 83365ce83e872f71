/*
 * common/queue.c: the public JoinableQueue API (include/jobq/queue.h), a thin
 * dispatcher over the transport table of common/queue_impl.h.
 */
#include "common/queue_impl.h"
#include "common/alloc.h"
#include "jobq/errors.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

struct jobq_queue {
    const jobq_queue_ops_t *ops;
    void *impl;
};

static int
s_wrap(int rc, const jobq_queue_ops_t *ops, void *impl, jobq_queue_t **out)
{
    if (rc != JOBQ_OK)
        return rc;
    jobq_queue_t *q = jobq_calloc(1, sizeof *q);
    q->ops = ops;
    q->impl = impl;
    *out = q;
    return JOBQ_OK;
}

int
jobq_queue_open(const char *url, const jobq_queue_opts_t *opts, jobq_queue_t **out)
{
    jobq_url_t u;
    const jobq_queue_ops_t *ops = NULL;
    void *impl = NULL;
    static const jobq_queue_opts_t defaults;
    if (!out)
        return JOBQ_EINVAL;
    *out = NULL;
    if (jobq_url_parse(url, &u, NULL, 0) != JOBQ_OK)
        return JOBQ_EURL;
    if (!opts)
        opts = &defaults;
    /* Each call runs before s_wrap reads ops and impl (argument evaluation
     * order is unspecified, so the call cannot be an argument of s_wrap). */
    int rc;
    switch (u.scheme) {
    case JOBQ_URL_SHM:
        rc = shmq_open(&u, opts, &ops, &impl);
        break;
    case JOBQ_URL_MQ:
        rc = mqq_open(&u, opts, &ops, &impl);
        break;
    default:
        return JOBQ_EUNSUPPORTED; /* tcp:// and ipc:// go through the producer API */
    }
    return s_wrap(rc, ops, impl, out);
}

int
jobq_queue_new_anon(const jobq_queue_opts_t *opts, jobq_queue_t **out)
{
    const jobq_queue_ops_t *ops = NULL;
    void *impl = NULL;
    static const jobq_queue_opts_t defaults;
    if (!out)
        return JOBQ_EINVAL;
    *out = NULL;
    int rc = shmq_new_anon(opts ? opts : &defaults, &ops, &impl);
    return s_wrap(rc, ops, impl, out);
}

void
jobq_queue_destroy(jobq_queue_t **q_p)
{
    assert(q_p);
    if (!*q_p)
        return;
    (*q_p)->ops->destroy((*q_p)->impl);
    jobq_free(*q_p);
    *q_p = NULL;
}

int
jobq_queue_unlink(const char *url)
{
    jobq_url_t u;
    if (jobq_url_parse(url, &u, NULL, 0) != JOBQ_OK)
        return JOBQ_EURL;
    if (u.scheme == JOBQ_URL_SHM)
        return shmq_unlink(&u);
    if (u.scheme == JOBQ_URL_MQ)
        return mqq_unlink(&u);
    return JOBQ_EUNSUPPORTED;
}

int
jobq_queue_put(jobq_queue_t *q, jobq_job_t *job, int64_t timeout_ms)
{
    if (!q || !job)
        return JOBQ_EINVAL;
    return q->ops->put(q->impl, job, 0, timeout_ms);
}

int
jobq_queue_put_bytes(jobq_queue_t *q, const void *data, size_t len, jobq_id_t *id_out,
                     int64_t timeout_ms)
{
    jobq_job_t job;
    if (!q || (len && !data))
        return JOBQ_EINVAL;
    if (len > JOBQ_PAYLOAD_MAX)
        return JOBQ_ETOOBIG;
    jobq_job_init(&job);
    job.payload = data;
    job.payload_len = (uint32_t)len;
    int rc = q->ops->put(q->impl, &job, 0, timeout_ms);
    if (rc == JOBQ_OK && id_out)
        *id_out = job.id;
    return rc;
}

int
jobq_queue_put_sentinel(jobq_queue_t *q, int64_t timeout_ms)
{
    jobq_job_t job;
    if (!q)
        return JOBQ_EINVAL;
    jobq_job_init(&job);
    return q->ops->put(q->impl, &job, 1, timeout_ms);
}

int
jobq_queue_get(jobq_queue_t *q, jobq_item_t *item, int64_t timeout_ms)
{
    if (!q || !item)
        return JOBQ_EINVAL;
    memset(item, 0, sizeof *item);
    return q->ops->get(q->impl, item, timeout_ms);
}

void
jobq_item_fini(jobq_item_t *item)
{
    if (!item)
        return;
    jobq_free(item->payload);
    memset(item, 0, sizeof *item);
}

int
jobq_queue_task_done(jobq_queue_t *q, const jobq_item_t *item)
{
    return q ? q->ops->task_done(q->impl, item) : JOBQ_EINVAL;
}

int
jobq_queue_join(jobq_queue_t *q, int64_t timeout_ms)
{
    return q ? q->ops->join(q->impl, timeout_ms) : JOBQ_EINVAL;
}

int
jobq_queue_close(jobq_queue_t *q)
{
    return q ? q->ops->close(q->impl) : JOBQ_EINVAL;
}

size_t
jobq_queue_size(jobq_queue_t *q)
{
    return q ? q->ops->size(q->impl) : 0;
}

int
jobq_queue_empty(jobq_queue_t *q)
{
    return jobq_queue_size(q) == 0;
}

int
jobq_queue_full(jobq_queue_t *q)
{
    return q ? q->ops->full(q->impl) : 0;
}

size_t
jobq_queue_unfinished(jobq_queue_t *q)
{
    return q ? q->ops->unfinished(q->impl) : 0;
}

int
jobq_queue_reclaim(jobq_queue_t *q, pid_t pid, int sig)
{
    if (sig < 0 || (sig & QUEUE_RECLAIM_HARD))
        sig = 0; /* that bit is jobq_queue_reclaim_timedout's */
    return q ? q->ops->reclaim(q->impl, pid, sig) : -1;
}

int
jobq_queue_reclaim_timedout(jobq_queue_t *q, pid_t pid, uint32_t limit_ms)
{
    uint32_t ms = limit_ms > QUEUE_RECLAIM_MS_MASK ? QUEUE_RECLAIM_MS_MASK : limit_ms;
    return q ? q->ops->reclaim(q->impl, pid, QUEUE_RECLAIM_HARD | (int)ms) : -1;
}

int
queue_reclaim_verdict(int sig, pid_t holder, uint32_t *status, int *signal, char *text, size_t len)
{
    if (!(sig & QUEUE_RECLAIM_HARD)) {
        *status = JOBQ_STATUS_CRASHED;
        *signal = sig;
        return -1;
    }
    uint32_t ms = (uint32_t)sig & QUEUE_RECLAIM_MS_MASK;
    char secs[32];
    int n = snprintf(secs, sizeof secs, "%u.%03u", ms / 1000, ms % 1000);
    while (n > 0 && secs[n - 1] == '0') /* 1.500 -> 1.5, 2.000 -> 2 */
        secs[--n] = '\0';
    if (n > 0 && secs[n - 1] == '.')
        secs[--n] = '\0';
    *status = JOBQ_STATUS_TIMEDOUT;
    *signal = SIGKILL;
    n = snprintf(text, len, "hard time limit %s s exceeded: worker pid %d killed", secs,
                 (int)holder);
    return n < 0 ? 0 : (size_t)n >= len ? (int)len - 1 : n;
}

int
jobq_queue_put_result(jobq_queue_t *q, const jobq_result_t *res, int64_t timeout_ms)
{
    if (!q || !res)
        return JOBQ_EINVAL;
    return q->ops->put_result(q->impl, res, timeout_ms);
}

int
jobq_queue_get_result(jobq_queue_t *q, jobq_result_t *res, int64_t timeout_ms)
{
    if (!q || !res)
        return JOBQ_EINVAL;
    return q->ops->get_result(q->impl, res, timeout_ms);
}
