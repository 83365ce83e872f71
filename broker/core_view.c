/*
 * broker/core_view.c: the read side of the broker core: job and result views,
 * lists, join counts, events and counters (see core.h). Apart from draining
 * events and marking a result delivered, nothing here changes the core.
 */
#include "broker/core_int.h"
#include "common/alloc.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

void
core_view_job_(const core_t *c, const core_job_t *j, core_job_view_t *v)
{
    const core_queue_t *q = c->queues[j->queue];
    memset(v, 0, sizeof *v);
    v->id = j->id;
    v->state = (jobq_job_state)j->state;
    v->queue = q->name;
    v->queue_len = q->name_len;
    v->payload = j->payload_len ? j->data : NULL;
    v->payload_len = j->payload_len;
    v->unique = j->unique_len ? (const char *)core_job_unique_(j) : NULL;
    v->unique_len = j->unique_len;
    v->priority = j->priority;
    v->ttr_ms = j->ttr_ms;
    v->max_attempts = j->max_attempts;
    v->attempt = j->attempt;
    v->attempts_used = (uint32_t)(j->attempt - j->free_attempts);
    v->backoff_ms = core_job_backoff_(j);
    v->submitter = core_job_submitter_(j);
    v->since_ms = j->at_ms;
    switch (j->state) {
    case JOBQ_STATE_DELAYED:
        v->since_ms = 0;
        v->ready_at_ms = j->at_ms;
        break;
    case JOBQ_STATE_RESERVED:
        v->deadline_ms = j->u.lease->deadline_ms;
        v->worker = j->u.lease->worker->handle;
        break;
    case JOBQ_STATE_DEAD: {
        const core_result_t *r = j->u.dead;
        v->last_status = (jobq_status)r->last_status;
        v->exit_code = r->exit_code;
        v->signal = r->signal;
        v->error = r->error_len ? (const char *)core_result_error_(r) : NULL;
        v->error_len = r->error_len;
        break;
    }
    default:
        break;
    }
}

/* A finished job whose result is retained, seen as a job. */
static void
s_view_finished(const core_t *c, const core_result_t *r, core_job_view_t *v)
{
    const core_queue_t *q = c->queues[r->queue];
    memset(v, 0, sizeof *v);
    v->id = r->id;
    v->state = r->status == JOBQ_STATUS_DONE ? JOBQ_STATE_DONE : JOBQ_STATE_DEAD;
    v->queue = q->name;
    v->queue_len = q->name_len;
    v->unique = r->unique_len ? (const char *)core_result_unique_(r) : NULL;
    v->unique_len = r->unique_len;
    v->attempt = v->attempts_used = r->attempts;
    v->submitter = r->submitter;
    v->since_ms = r->finished_ms;
    v->last_status = (jobq_status)r->last_status;
    v->exit_code = r->exit_code;
    v->signal = r->signal;
    v->error = r->error_len ? (const char *)core_result_error_(r) : NULL;
    v->error_len = r->error_len;
}

static void
s_view_result(const core_t *c, const core_result_t *r, core_result_view_t *v)
{
    const core_queue_t *q = c->queues[r->queue];
    memset(v, 0, sizeof *v);
    v->id = r->id;
    v->submitter = r->submitter;
    v->queue = q->name;
    v->queue_len = q->name_len;
    v->status = (jobq_status)r->status;
    v->last_status = (jobq_status)r->last_status;
    v->exit_code = r->exit_code;
    v->signal = r->signal;
    v->attempts = r->attempts;
    v->duration_us = r->duration_us;
    v->output = r->output_len ? r->data : NULL;
    v->output_len = r->output_len;
    v->error = r->error_len ? (const char *)core_result_error_(r) : NULL;
    v->error_len = r->error_len;
    v->finished_ms = r->finished_ms;
    v->delivered = (r->flags & CORE_RES_DELIVERED) != 0;
}

static core_result_t *
s_result_find(const core_t *c, const jobq_id_t *id)
{
    return core_tab_find(&c->results, core_id_hash_(c, id), core_id_eq_, id);
}

int
core_result(const core_t *c, const jobq_id_t *id, core_result_view_t *view)
{
    JOBQ_ASSERT(c && view);
    const core_result_t *r = id ? s_result_find(c, id) : NULL;
    if (!r)
        return JOBQ_ENOTFOUND;
    s_view_result(c, r, view);
    return JOBQ_OK;
}

int
core_take_result(core_t *c, const jobq_id_t *id, core_result_view_t *view)
{
    JOBQ_ASSERT(c && view);
    core_result_t *r = id ? s_result_find(c, id) : NULL;
    if (!r)
        return JOBQ_ENOTFOUND;
    s_view_result(c, r, view);
    r->flags |= CORE_RES_DELIVERED;
    return JOBQ_OK;
}

int
core_peek(const core_t *c, const jobq_id_t *id, core_job_view_t *view)
{
    JOBQ_ASSERT(c && view);
    if (!id)
        return JOBQ_EINVAL;
    const core_job_t *j = core_tab_find(&c->jobs, core_id_hash_(c, id), core_id_eq_, id);
    if (j) {
        core_view_job_(c, j, view);
        return JOBQ_OK;
    }
    const core_result_t *r = s_result_find(c, id);
    if (!r)
        return JOBQ_ENOTFOUND;
    s_view_finished(c, r, view);
    return JOBQ_OK;
}

static int
s_level_cmp(const void *a, const void *b)
{
    const core_level_t *x = *(const core_level_t *const *)a, *y = *(const core_level_t *const *)b;
    return x->priority < y->priority ? -1 : x->priority > y->priority;
}

/* READY jobs in hand-out order: levels by priority, each oldest first. */
static size_t
s_list_ready(const core_t *c, const core_queue_t *q, size_t max, core_job_view_t *out)
{
    size_t n = 0, nl = q->levels.len;
    if (nl == 0)
        return 0;
    core_level_t **ls = jobq_malloc(nl * sizeof *ls);
    memcpy(ls, q->levels.items, nl * sizeof *ls);
    qsort(ls, nl, sizeof *ls, s_level_cmp);
    for (size_t i = 0; i < nl && n < max; i++) {
        uint32_t cur = ls[i]->fifo.head;
        const core_job_t *j;
        while (n < max && (j = core_fifo_next(&ls[i]->fifo, &cur)) != NULL)
            core_view_job_(c, j, &out[n++]);
    }
    jobq_free(ls);
    return n;
}

int
core_list(const core_t *c, const char *queue, uint32_t queue_len, jobq_job_state state, size_t max,
          core_job_view_t *out, size_t *nout)
{
    JOBQ_ASSERT(c && nout);
    *nout = 0;
    if (!core_name_ok_(queue, queue_len) || (max && !out))
        return JOBQ_EINVAL;
    if (state != JOBQ_STATE_READY && state != JOBQ_STATE_DELAYED && state != JOBQ_STATE_DEAD)
        return JOBQ_EINVAL;
    const core_queue_t *q = core_queue_find_(c, queue, queue_len);
    if (!q)
        return JOBQ_OK;
    size_t n = 0;
    if (state == JOBQ_STATE_READY) {
        n = s_list_ready(c, q, max, out);
    } else if (state == JOBQ_STATE_DEAD) {
        uint32_t cur = q->dead.head;
        const core_job_t *j;
        while (n < max && (j = core_fifo_next(&q->dead, &cur)) != NULL)
            core_view_job_(c, j, &out[n++]);
    } else {
        for (uint32_t i = 0; i < c->delays.len && n < max; i++) {
            const core_job_t *j = c->delays.items[i];
            if (j->queue == q->idx)
                core_view_job_(c, j, &out[n++]);
        }
    }
    *nout = n;
    return JOBQ_OK;
}

int
core_queue_unfinished(const core_t *c, const char *queue, uint32_t queue_len, uint64_t *count)
{
    JOBQ_ASSERT(c && count);
    *count = 0;
    if (!core_name_ok_(queue, queue_len))
        return JOBQ_EINVAL;
    const core_queue_t *q = core_queue_find_(c, queue, queue_len);
    if (q)
        *count = q->nready + q->ndelayed + q->nreserved;
    return JOBQ_OK;
}

int
core_event_next(core_t *c, core_event_t *ev)
{
    JOBQ_ASSERT(c && ev);
    if (c->evhead == c->nevents)
        return 0;
    *ev = c->events[c->evhead++];
    if (c->evhead == c->nevents)
        c->evhead = c->nevents = 0;
    return 1;
}

static void
s_queue_stats(const core_t *c, const core_queue_t *q, core_queue_stats_t *st)
{
    memset(st, 0, sizeof *st);
    st->name = q->name;
    st->name_len = q->name_len;
    st->ready = q->nready;
    st->delayed = q->ndelayed;
    st->reserved = q->nreserved;
    st->dead = q->ndead;
    st->unfinished = q->nready + q->ndelayed + q->nreserved;
    st->jobs = st->unfinished + q->ndead;
    st->bytes = q->bytes;
    st->submitted = q->submitted;
    st->done = q->done;
    st->completed = q->completed;
    st->failed = q->failed;
    st->retried = q->retried;
    st->buried = q->buried;
    st->expired = q->expired;
    st->released = q->released;
    st->kicked = q->kicked;
    st->deleted = q->deleted;
    st->paused = q->paused_until != 0 && q->paused_until > c->now_ms;
    st->paused_until_ms = st->paused ? q->paused_until : 0;
}

int
core_queue_stats(const core_t *c, const char *queue, uint32_t queue_len, core_queue_stats_t *st)
{
    JOBQ_ASSERT(c && st);
    if (!core_name_ok_(queue, queue_len))
        return JOBQ_EINVAL;
    const core_queue_t *q = core_queue_find_(c, queue, queue_len);
    if (!q)
        return JOBQ_ENOTFOUND;
    s_queue_stats(c, q, st);
    return JOBQ_OK;
}

uint32_t
core_queue_count(const core_t *c)
{
    return c->nqueues;
}

int
core_queue_stats_at(const core_t *c, uint32_t i, core_queue_stats_t *st)
{
    JOBQ_ASSERT(c && st);
    if (i >= c->nqueues)
        return JOBQ_ENOTFOUND;
    s_queue_stats(c, c->queues[i], st);
    return JOBQ_OK;
}

static void
s_worker_stats(const core_worker_t *w, core_worker_stats_t *st)
{
    memset(st, 0, sizeof *st);
    st->worker = w->handle;
    st->credit = w->credit;
    st->held = w->nheld;
    st->delivered = w->delivered;
    st->done = w->done;
    st->failed = w->failed;
    st->extended = w->extended;
    st->released = w->released;
    st->last_ms = w->last_ms;
}

int
core_worker_stats(const core_t *c, uint64_t worker, core_worker_stats_t *st)
{
    JOBQ_ASSERT(c && st);
    const core_worker_t *w = core_worker_find_(c, worker);
    if (!w)
        return JOBQ_ENOTFOUND;
    s_worker_stats(w, st);
    return JOBQ_OK;
}

uint32_t
core_worker_jobs(const core_t *c, uint64_t worker, jobq_id_t *ids, uint32_t max)
{
    JOBQ_ASSERT(c && (ids || max == 0));
    const core_worker_t *w = core_worker_find_(c, worker);
    uint32_t n = 0;
    for (; w && n < w->nheld && n < max; n++)
        ids[n] = w->held[n]->job->id;
    return n;
}

uint32_t
core_worker_count(const core_t *c)
{
    return c->nworkers;
}

int
core_worker_stats_at(const core_t *c, uint32_t i, core_worker_stats_t *st)
{
    JOBQ_ASSERT(c && st);
    if (i >= c->nworkers)
        return JOBQ_ENOTFOUND;
    s_worker_stats(c->workers[i], st);
    return JOBQ_OK;
}

void
core_stats(const core_t *c, core_stats_t *st)
{
    JOBQ_ASSERT(c && st);
    memset(st, 0, sizeof *st);
    st->queues = c->nqueues;
    st->workers = c->nworkers;
    st->jobs = c->jobs.count;
    st->bytes = c->bytes;
    st->delayed = c->delays.len;
    st->reserved = c->leases.len;
    st->results = c->kept.live;
    st->result_bytes = c->result_bytes;
    st->dead_results = c->npinned;
    st->submitted = c->submitted;
    st->duplicates = c->duplicates;
    st->refused_full = c->refused_full;
    st->done = c->done;
    st->buried = c->buried;
}

void
core_view_result_(const core_t *c, const core_result_t *r, core_result_view_t *v)
{
    s_view_result(c, r, v);
}
