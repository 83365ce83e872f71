/*
 * worker/networker_box.c: the network worker's mailbox and handler thread
 * (see networker.c for the threads, their ownership and the invariants;
 * networker_int.h for the types).
 *
 * The mailbox (networker_box_t, under its mutex) is the only thing the two
 * threads share: the handler thread pops jobs off its ring, runs them one at
 * a time (the one running is b->running) and appends the results to its out
 * list; the connection thread pushes the delivered jobs, takes the results
 * (networker_take_results_), reads the running attempt's start and limit to
 * enforce the hard time limit (networker_hard_due_) and sees recycling.
 *
 * Invariants kept here:
 *   - a job's batch reference is dropped (under the mutex) exactly once: when
 *     its attempt finished, or when it is taken off the ring unstarted;
 *   - the eventfd is written only when the out list goes from taken to
 *     pending (b->woken: invariant 2 of networker.c);
 *   - a result finished after its attempt was abandoned is dropped, never
 *     posted (invariant 4 of networker.c).
 */
#include "worker/networker_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/queue_impl.h"
#include "jobq/errors.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define S_HARD_GRACE_MS                                                                            \
    200 /* on_hard: past its limit this long, an attempt is TIMEDOUT (the                          \
           handler's own verdict right at the limit wins; the pool's                               \
           backstop SIGKILL comes 1 s past it) */

static uint32_t
s_min_limit(uint32_t a, uint32_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* Drops a reference of batch b; frees it with its last job. Mutex held. */
void
networker_batch_unref_(networker_batch_t *b)
{
    if (--b->left == 0)
        jobq_free(b);
}

void
networker_ring_push_(networker_box_t *b, networker_job_t *j)
{
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        networker_job_t **ring = jobq_malloc(cap * sizeof *ring);
        for (size_t i = 0; i < b->count; i++)
            ring[i] = b->ring[(b->head + i) % b->cap];
        jobq_free(b->ring);
        b->ring = ring;
        b->cap = cap;
        b->head = 0;
    }
    b->ring[(b->head + b->count++) % b->cap] = j;
}

networker_job_t *
networker_ring_pop_(networker_box_t *b)
{
    networker_job_t *j = b->ring[b->head];
    b->head = (b->head + 1) % b->cap;
    b->count--;
    return j;
}

/* ---- the handler thread -------------------------------------------------- */

/* Copies res and the bytes it points to into one allocation. */
networker_res_t *
networker_res_copy_(const jobq_result_t *res)
{
    networker_res_t *r = jobq_malloc(sizeof *r + res->output_len + res->error_len);
    r->next = NULL;
    r->res = *res;
    if (res->output_len)
        memcpy(r->data, res->output, res->output_len);
    if (res->error_len)
        memcpy(r->data + res->output_len, res->error, res->error_len);
    r->res.output = res->output_len ? r->data : NULL;
    r->res.error = res->error_len ? r->data + res->output_len : NULL;
    return r;
}

/* Runs one attempt and counts it; returns its result (caller owns it). */
static networker_res_t *
s_run_one(networker_t *nw, const jobq_job_t *job, uint32_t limit, jobq_output_t *out)
{
    jobq_result_t res;
    jobq_result_init(&res);
    int64_t t0 = jobq_now_us();
    worker_mark_deadline(nw->cfg->counters, limit);
    if (handler_run(nw->cfg->handler, job, NULL, limit, out, &res) != 0)
        LOG_WARN("handler could not start: %.*s", (int)res.error_len, res.error ? res.error : "");
    worker_mark_deadline(nw->cfg->counters, 0);
    uint64_t took = (uint64_t)(jobq_now_us() - t0);
    res.id = job->id;
    res.attempt = job->attempt;
    if (res.duration_us == 0)
        res.duration_us = took;
    worker_counters_t *c = nw->cfg->counters;
    if (c) {
        if (res.status == JOBQ_STATUS_DONE)
            networker_add_(&c->done, 1);
        else if (res.status == JOBQ_STATUS_CRASHED)
            networker_add_(&c->crashed, 1);
        else
            networker_add_(&c->failed, 1);
        networker_add_(&c->busy_us, took);
    }
    return networker_res_copy_(&res);
}

void *
networker_handler_main_(void *arg)
{
    networker_t *nw = arg;
    networker_box_t *b = &nw->box;
    jobq_output_t *out = jobq_output_new(0);
    uint64_t jobs = 0;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        while ((!b->count || b->recycle) && !b->quit)
            pthread_cond_wait(&b->cv, &b->mu);
        if (!b->count || b->recycle) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        networker_job_t *j = networker_ring_pop_(b);
        uint32_t limit = s_min_limit(nw->cfg->time_limit_ms, j->job.ttr_ms);
        b->running = j;
        b->running_since_ms = jobq_now_ms();
        b->running_limit_ms = limit;
        pthread_mutex_unlock(&b->mu);
        networker_res_t *r = s_run_one(nw, &j->job, limit, out);
        int recycle = worker_recycle_due(&nw->cfg->recycle, ++jobs);
        pthread_mutex_lock(&b->mu);
        b->recycle = recycle;
        b->running = NULL;
        networker_batch_unref_(j->batch);
        if (b->abandoned) { /* invariant 4: its TIMEDOUT went out already */
            pthread_mutex_unlock(&b->mu);
            jobq_free(r);
            continue;
        }
        if (b->out_tail)
            b->out_tail->next = r;
        else
            b->out_head = r;
        b->out_tail = r;
        int wake = !b->woken;
        b->woken = 1;
        pthread_mutex_unlock(&b->mu);
        uint64_t one = 1;
        if (wake && write(b->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            LOG_WARN("eventfd write: %s", strerror(errno));
    }
    jobq_output_destroy(&out);
    return NULL;
}

/* ---- the connection thread's side of the mailbox ------------------------ */

/* Moves the results the handler finished to the unsent list. */
void
networker_take_results_(networker_t *nw)
{
    networker_box_t *b = &nw->box;
    uint64_t v;
    while (read(b->efd, &v, sizeof v) > 0)
        ;
    pthread_mutex_lock(&b->mu);
    networker_res_t *head = b->out_head, *tail = b->out_tail;
    b->out_head = b->out_tail = NULL;
    b->woken = 0;
    pthread_mutex_unlock(&b->mu);
    if (!head)
        return;
    if (nw->unsent_tail)
        nw->unsent_tail->next = head;
    else
        nw->unsent_head = head;
    nw->unsent_tail = tail;
}

/* 1 once the handler thread has stopped taking jobs to be recycled. */
int
networker_recycling_(networker_t *nw)
{
    pthread_mutex_lock(&nw->box.mu);
    int r = nw->box.recycle;
    pthread_mutex_unlock(&nw->box.mu);
    return r;
}

/* on_hard: if the running attempt is past its hard limit (plus the grace),
 * marks it abandoned (invariant 4) and fills *res with its TIMEDOUT result
 * (text in text, len bytes), returning 1; else sets nw->hard_due_ms and
 * returns 0. */
int
networker_hard_due_(networker_t *nw, jobq_result_t *res, char *text, size_t len)
{
    networker_box_t *b = &nw->box;
    int64_t now = jobq_now_ms();
    nw->hard_due_ms = INT64_MAX;
    pthread_mutex_lock(&b->mu);
    int64_t due = b->running_since_ms + b->running_limit_ms + S_HARD_GRACE_MS;
    int running = b->running && b->running_limit_ms && !b->abandoned;
    if (!running || now < due) {
        if (running)
            nw->hard_due_ms = due;
        pthread_mutex_unlock(&b->mu);
        return 0;
    }
    jobq_result_init(res);
    res->id = b->running->job.id;
    res->attempt = b->running->job.attempt;
    res->duration_us = (uint64_t)(now - b->running_since_ms) * 1000;
    int sig = QUEUE_RECLAIM_HARD | (int)(b->running_limit_ms & QUEUE_RECLAIM_MS_MASK);
    uint32_t status;
    int n = queue_reclaim_verdict(sig, getpid(), &status, &res->signal, text, len);
    res->status = (jobq_status)status;
    res->error = text;
    res->error_len = n > 0 ? (uint32_t)n : 0;
    b->abandoned = 1;
    b->quit = 1; /* take no other job */
    pthread_mutex_unlock(&b->mu);
    return 1;
}
