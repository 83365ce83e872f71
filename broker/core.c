/*
 * broker/core.c: the broker's scheduling core: the job state machine and
 * every call that changes state (see core.h for the API and its semantics,
 * core_int.h for where each job lives in each state).
 *
 * Job states (include/jobq/job.h) and the one function per transition:
 *
 *            submit(delay>0)          due
 *   (new) ----------------> DELAYED ------> READY <------------------------+
 *     |                                      |  ^                           |
 *     | submit(delay=0)                      |  | lease expired / worker    |
 *     +------------------------------------> |  | died / released / retry   |
 *                                    reserve v  |  (with backoff: DELAYED)  |
 *                                         RESERVED                          |
 *                                         |      |                          |
 *                            complete ok  |      | attempts exhausted       | kick
 *                                         v      v or bury                  |
 *                                       DONE    DEAD -----------------------+
 *
 *   transition                                           function
 *   (new) -> DELAYED       core_submit, delay > 0        s_job_delay
 *   (new) -> READY         core_submit, no delay         s_job_ready
 *   DELAYED -> READY       core_tick, due                s_job_ready
 *   READY -> RESERVED      core_reserve                  s_job_reserve
 *   RESERVED -> DONE       core_complete DONE            s_job_done
 *   RESERVED -> READY      lease expired (core_tick), worker lost
 *                          (core_release_worker), core_release, retry
 *                          with a zero backoff           s_job_ready
 *   RESERVED -> DELAYED    retry with backoff, core_release with a delay
 *                                                        s_job_delay
 *   RESERVED -> DEAD       attempts used up, DEAD verdict s_job_bury
 *   DEAD -> READY          core_kick, core_kick_job      s_job_kick
 *   READY|DELAYED -> DEAD  core_bury, delivery counter exhausted
 *                                                        s_job_bury
 *   any but RESERVED -> (deleted)  core_delete           s_job_delete
 *
 * Only these functions change job->state. Each asserts the states it may
 * leave, takes the job out of the structure of its old state (s_job_unlink)
 * and puts it into the structure of the new one, keeping the per-queue
 * counters in step. Invariants (checked by core_check): each job is in
 * exactly the structure of its state; a result exists for a live job only
 * while it is DEAD (pinned); unique keys map to exactly one job or result.
 */
#include "broker/core_int.h"
#include "common/alloc.h"
#include "common/log.h"

#include <string.h>

/* ---- small helpers -------------------------------------------------------- */

/* now + d without overflow (a far deadline saturates at CORE_FOREVER). */
static inline int64_t
s_after(int64_t now, int64_t d)
{
    return d > CORE_FOREVER - now ? CORE_FOREVER : now + d;
}

static inline core_queue_t *
s_q(const core_t *c, const core_job_t *j)
{
    return c->queues[j->queue];
}

static inline uint64_t
s_unfinished(const core_queue_t *q)
{
    return q->nready + q->ndelayed + q->nreserved;
}

static inline int
s_paused(const core_t *c, const core_queue_t *q)
{
    return q->paused_until != 0 && q->paused_until > c->now_ms;
}

static uint64_t
s_rand(core_t *c)
{
    uint64_t x = c->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Called after a queue's unfinished count went down by one. */
static void
s_unfinished_dropped(core_t *c, const core_queue_t *q)
{
    if (s_unfinished(q) == 0)
        core_emit_(c, CORE_EV_JOIN, q, NULL, 0);
}

/* ---- the transitions ------------------------------------------------------ */

/* Takes j out of the structure and the counter of its state. For a DEAD job,
 * returns its result (the caller drops or keeps it) and moves the submitter
 * back into the job; else returns NULL. */
static core_result_t *
s_job_unlink(core_t *c, core_job_t *j)
{
    core_queue_t *q = s_q(c, j);
    core_result_t *dead = NULL;
    switch (j->state) {
    case JOBQ_STATE_DELAYED:
        core_heap_remove(&c->delays, j->pos);
        q->ndelayed--;
        break;
    case JOBQ_STATE_READY: {
        core_level_t *l = q->last;
        if (!l || l->priority != j->priority)
            l = core_level_find_(c, q->idx, j->priority);
        JOBQ_ASSERT(l != NULL);
        core_fifo_remove(&l->fifo, j->pos);
        core_level_retire_(c, q, l);
        q->nready--;
        break;
    }
    case JOBQ_STATE_RESERVED: {
        core_lease_t *l = j->u.lease;
        core_heap_remove(&c->leases, l->heap_pos);
        core_held_remove_(l->worker, l);
        j->u.submitter = l->submitter;
        core_block_put_(c, l, sizeof *l);
        q->nreserved--;
        break;
    }
    case JOBQ_STATE_DEAD:
        core_fifo_remove(&q->dead, j->pos);
        dead = j->u.dead;
        j->u.submitter = dead->submitter;
        q->ndead--;
        break;
    default:
        JOBQ_ASSERT(j->state == CORE_STATE_NEW);
    }
    return dead;
}

static void
s_enter_ready(core_t *c, core_job_t *j)
{
    core_queue_t *q = s_q(c, j);
    j->state = JOBQ_STATE_READY;
    j->at_ms = c->now_ms;
    core_fifo_push(&core_level_get_(c, q, j->priority)->fifo, j);
    if (q->nready++ == 0 && !s_paused(c, q))
        core_emit_(c, CORE_EV_READY, q, NULL, 0);
}

/* (new) -> DELAYED; RESERVED -> DELAYED (retry with backoff, release with delay). */
static void
s_job_delay(core_t *c, core_job_t *j, int64_t ready_at_ms)
{
    JOBQ_ASSERT(j->state == CORE_STATE_NEW || j->state == JOBQ_STATE_RESERVED);
    int fresh = j->state == CORE_STATE_NEW;
    s_job_unlink(c, j);
    j->state = JOBQ_STATE_DELAYED;
    j->at_ms = ready_at_ms;
    core_heap_push(&c->delays, j);
    s_q(c, j)->ndelayed++;
    if (c->hook)
        core_hook_job_(c, fresh ? CORE_CH_SUBMIT : CORE_CH_STATE, j);
}

/* (new) -> READY; DELAYED -> READY (due); RESERVED -> READY (lease expired,
 * worker lost, released, retry without backoff). */
static void
s_job_ready(core_t *c, core_job_t *j)
{
    JOBQ_ASSERT(j->state == CORE_STATE_NEW || j->state == JOBQ_STATE_DELAYED ||
                j->state == JOBQ_STATE_RESERVED);
    unsigned old = j->state;
    s_job_unlink(c, j);
    s_enter_ready(c, j);
    if (c->hook && old != JOBQ_STATE_DELAYED)
        core_hook_job_(c, old == CORE_STATE_NEW ? CORE_CH_SUBMIT : CORE_CH_STATE, j);
}

/* READY -> RESERVED: attempt + 1, a lease until now + ttr held by w. */
static void
s_job_reserve(core_t *c, core_job_t *j, core_worker_t *w)
{
    JOBQ_ASSERT(j->state == JOBQ_STATE_READY && j->attempt < CORE_ATTEMPTS_MAX);
    s_job_unlink(c, j);
    core_lease_t *l = core_block_get_(c, sizeof *l);
    l->job = j;
    l->worker = w;
    l->submitter = j->u.submitter;
    l->deadline_ms = s_after(c->now_ms, j->ttr_ms);
    j->u.lease = l;
    j->state = JOBQ_STATE_RESERVED;
    j->attempt++;
    j->at_ms = c->now_ms;
    core_heap_push(&c->leases, l);
    core_held_add_(w, l);
    s_q(c, j)->nreserved++;
    w->delivered++;
    if (c->hook)
        core_hook_job_(c, CORE_CH_STATE, j);
}

/* The bytes of a job block: the header, payload, unique key and, when the job
 * has its own backoff, its 4 bytes. */
static size_t
s_job_size(uint32_t payload_len, uint32_t unique_len, int has_backoff)
{
    return sizeof(core_job_t) + payload_len + unique_len + (has_backoff ? sizeof(uint32_t) : 0);
}

/* Frees job j once it has left every structure; its unique key passes to
 * res (its result) or is released. */
static void
s_job_free(core_t *c, core_job_t *j, core_result_t *res)
{
    core_queue_t *q = s_q(c, j);
    core_tab_remove(&c->jobs, core_id_hash_(c, &j->id), j);
    if (j->unique_len) {
        core_ukey_t k = {j->queue, j->unique_len, core_job_unique_(j)};
        uint64_t h = core_ukey_hash_(c, &k);
        if (res)
            core_tab_replace(&c->uniques, h, j, (void *)((uintptr_t)res | 1u));
        else
            core_tab_remove(&c->uniques, h, j);
    }
    q->bytes -= core_job_bytes_(j);
    c->bytes -= core_job_bytes_(j);
    core_block_put_(c, j, s_job_size(j->payload_len, j->unique_len, j->has_backoff));
}

/* RESERVED -> DONE: the result is stored and announced, the job freed. */
static void
s_job_done(core_t *c, core_job_t *j, const core_outcome_t *o)
{
    JOBQ_ASSERT(j->state == JOBQ_STATE_RESERVED);
    core_queue_t *q = s_q(c, j);
    s_job_unlink(c, j);
    core_result_t *r = core_result_new_(c, j, JOBQ_STATUS_DONE, o, j->u.submitter);
    core_result_keep_(c, r);
    q->done++;
    c->done++;
    if (c->hook)
        core_hook_done_(c, r);
    s_job_free(c, j, r);
    core_emit_(c, CORE_EV_RESULT, q, &r->id, r->submitter);
    s_unfinished_dropped(c, q);
}

/* RESERVED -> DEAD (attempts used up, DEAD verdict); READY|DELAYED -> DEAD
 * (core_bury, delivery counter exhausted). The DEAD result is announced. */
static void
s_job_bury(core_t *c, core_job_t *j, const core_outcome_t *o)
{
    JOBQ_ASSERT(j->state == JOBQ_STATE_RESERVED || j->state == JOBQ_STATE_READY ||
                j->state == JOBQ_STATE_DELAYED);
    core_queue_t *q = s_q(c, j);
    s_job_unlink(c, j);
    core_result_t *r = core_result_new_(c, j, JOBQ_STATUS_DEAD, o, j->u.submitter);
    r->flags |= CORE_RES_PINNED;
    c->npinned++;
    j->u.dead = r;
    j->state = JOBQ_STATE_DEAD;
    j->at_ms = c->now_ms;
    core_fifo_push(&q->dead, j);
    q->ndead++;
    q->buried++;
    c->buried++;
    if (c->hook)
        core_hook_job_(c, CORE_CH_DEAD, j);
    core_emit_(c, CORE_EV_RESULT, q, &r->id, r->submitter);
    s_unfinished_dropped(c, q);
}

/* DEAD -> READY: the DEAD result is discarded, used attempts start over. */
static void
s_job_kick(core_t *c, core_job_t *j)
{
    JOBQ_ASSERT(j->state == JOBQ_STATE_DEAD);
    core_result_drop_(c, s_job_unlink(c, j));
    j->free_attempts = j->attempt;
    s_q(c, j)->kicked++;
    s_enter_ready(c, j);
    if (c->hook)
        core_hook_job_(c, CORE_CH_STATE, j);
}

/* DELAYED|READY|DEAD -> (deleted). A job that had not finished gets a DEAD
 * result "deleted"; a DEAD job's result starts its retention. */
static void
s_job_delete(core_t *c, core_job_t *j)
{
    static const char why[] = "deleted";
    JOBQ_ASSERT(j->state == JOBQ_STATE_DELAYED || j->state == JOBQ_STATE_READY ||
                j->state == JOBQ_STATE_DEAD);
    core_queue_t *q = s_q(c, j);
    int was_dead = j->state == JOBQ_STATE_DEAD;
    core_result_t *r = s_job_unlink(c, j);
    if (was_dead) {
        c->npinned--;
    } else {
        core_outcome_t o = {
            .last_status = JOBQ_STATUS_DEAD, .error = why, .error_len = sizeof why - 1};
        r = core_result_new_(c, j, JOBQ_STATUS_DEAD, &o, j->u.submitter);
    }
    core_result_keep_(c, r);
    q->deleted++;
    if (c->hook)
        core_hook_id_(c, CORE_CH_DELETE, &j->id);
    s_job_free(c, j, r);
    if (!was_dead) {
        core_emit_(c, CORE_EV_RESULT, q, &r->id, r->submitter);
        s_unfinished_dropped(c, q);
    }
}

/* ---- failures and backoff ------------------------------------------------- */

/* Returns the delay before the retry that follows `used` failed attempts of j:
 * base * 2^(used-1), capped, then jittered by +-jitter_pct. base is the job's
 * own backoff when it has one, else the core's; a job's base above the cap
 * raises the cap to it. */
static int64_t
s_backoff_ms(core_t *c, const core_job_t *j, uint32_t used)
{
    int64_t d = c->cfg.backoff_base_ms, cap = c->cfg.backoff_max_ms;
    uint32_t own = core_job_backoff_(j);
    if (own) {
        d = own;
        cap = cap > d ? cap : d;
    }
    if (d <= 0)
        return 0;
    for (uint32_t i = 1; i < used && d < cap; i++)
        d = d > cap / 2 ? cap : d * 2;
    if (d > cap)
        d = cap;
    uint32_t pct = c->cfg.backoff_jitter_pct;
    if (pct)
        d = d * (int64_t)(100 - pct + s_rand(c) % (2 * pct + 1)) / 100;
    return d;
}

/* A failed attempt of RESERVED job j: retry (after a backoff when asked) while
 * attempts remain, else bury. A DEAD verdict buries at once. */
static void
s_job_failed(core_t *c, core_job_t *j, const core_outcome_t *o, int backoff)
{
    core_queue_t *q = s_q(c, j);
    uint32_t used = (uint32_t)(j->attempt - j->free_attempts);
    if (o->last_status != JOBQ_STATUS_DEAD)
        q->failed++;
    if (o->last_status == JOBQ_STATUS_DEAD || used >= j->max_attempts) {
        s_job_bury(c, j, o);
        return;
    }
    q->retried++;
    int64_t d = backoff ? s_backoff_ms(c, j, used) : 0;
    if (d > 0)
        s_job_delay(c, j, s_after(c->now_ms, d));
    else
        s_job_ready(c, j);
}

/* Checks the fence: (id, attempt) must be the current lease, held by worker. */
static int
s_fence(core_t *c, uint64_t worker, const jobq_id_t *id, uint32_t attempt, core_job_t **jp)
{
    uint64_t h = core_id_hash_(c, id);
    core_job_t *j = core_tab_find(&c->jobs, h, core_id_eq_, id);
    if (!j)
        return core_tab_find(&c->results, h, core_id_eq_, id) ? JOBQ_ESTALE : JOBQ_ENOTFOUND;
    if (j->state != JOBQ_STATE_RESERVED || j->attempt != attempt)
        return JOBQ_ESTALE;
    if (j->u.lease->worker->handle != worker)
        return JOBQ_EFORBIDDEN;
    j->u.lease->worker->last_ms = c->now_ms;
    *jp = j;
    return JOBQ_OK;
}

/* ---- submit --------------------------------------------------------------- */

static int
s_job_args_ok(const jobq_job_t *job)
{
    if (!job->queue || job->queue_len == 0)
        return JOBQ_EINVAL;
    if (job->queue_len > JOBQ_QUEUE_NAME_MAX || job->payload_len > JOBQ_PAYLOAD_MAX ||
        job->unique_len > JOBQ_UNIQUE_KEY_MAX)
        return JOBQ_ETOOBIG;
    if ((job->payload_len && !job->payload) || (job->unique_len && !job->unique))
        return JOBQ_EINVAL;
    if (job->max_attempts < 1 || job->max_attempts > CORE_ATTEMPTS_MAX ||
        job->attempt >= job->max_attempts || job->ttr_ms < 1 ||
        job->delay_ms > (uint64_t)CORE_DELAY_MAX_MS)
        return JOBQ_EINVAL;
    return JOBQ_OK;
}

/* Looks for id among live jobs and retained results; fills *state. */
static int
s_id_taken(const core_t *c, const jobq_id_t *id, jobq_job_state *state)
{
    uint64_t h = core_id_hash_(c, id);
    const core_job_t *j = core_tab_find(&c->jobs, h, core_id_eq_, id);
    if (j) {
        *state = (jobq_job_state)j->state;
        return 1;
    }
    const core_result_t *r = core_tab_find(&c->results, h, core_id_eq_, id);
    if (r) {
        *state = r->status == JOBQ_STATUS_DONE ? JOBQ_STATE_DONE : JOBQ_STATE_DEAD;
        return 1;
    }
    return 0;
}

/* Returns the job or result holding the unique key of job in queue q, or NULL. */
static const void *
s_unique_taken(const core_t *c, const core_queue_t *q, const jobq_job_t *job, jobq_id_t *id,
               jobq_job_state *state)
{
    core_ukey_t k = {q->idx, job->unique_len, job->unique};
    const void *e = core_tab_find(&c->uniques, core_ukey_hash_(c, &k), core_ukey_eq_, &k);
    if (!e)
        return NULL;
    if (core_is_result_(e)) {
        const core_result_t *r = core_untag_(e);
        *id = r->id;
        *state = r->status == JOBQ_STATUS_DONE ? JOBQ_STATE_DONE : JOBQ_STATE_DEAD;
    } else {
        const core_job_t *j = e;
        *id = j->id;
        *state = (jobq_job_state)j->state;
    }
    return e;
}

static core_job_t *
s_job_new(core_t *c, core_queue_t *q, const jobq_job_t *job, const jobq_id_t *id,
          uint64_t submitter)
{
    core_job_t *j =
        core_block_get_(c, s_job_size(job->payload_len, job->unique_len, job->backoff_ms != 0));
    memset(j, 0, sizeof *j);
    j->id = *id;
    j->u.submitter = submitter;
    j->priority = job->priority;
    j->ttr_ms = job->ttr_ms;
    j->payload_len = job->payload_len;
    j->unique_len = job->unique_len;
    j->state = CORE_STATE_NEW;
    j->queue = q->idx;
    j->attempt = (uint16_t)job->attempt;
    j->max_attempts = (uint16_t)job->max_attempts;
    if (job->payload_len)
        memcpy(j->data, job->payload, job->payload_len);
    if (job->unique_len)
        memcpy(j->data + job->payload_len, job->unique, job->unique_len);
    if (job->backoff_ms) {
        j->has_backoff = 1;
        memcpy(j->data + job->payload_len + job->unique_len, &job->backoff_ms,
               sizeof job->backoff_ms);
    }
    core_tab_insert(&c->jobs, core_id_hash_(c, id), j);
    if (job->unique_len) {
        core_ukey_t k = {q->idx, job->unique_len, core_job_unique_(j)};
        core_tab_insert(&c->uniques, core_ukey_hash_(c, &k), j);
    }
    q->bytes += core_job_bytes_(j);
    c->bytes += core_job_bytes_(j);
    return j;
}

/* Submits a validated job at the core's current time. fresh, when not NULL,
 * is the id drawn for a job that came without one. */
static int
s_submit(core_t *c, const jobq_job_t *job, const jobq_id_t *fresh, uint64_t submitter,
         jobq_id_t *id_out, jobq_job_state *state_out)
{
    jobq_id_t id = fresh ? *fresh : job->id;
    if (fresh) {
        while (s_id_taken(c, &id, state_out))
            core_id_next_(c, &id);
    } else if (s_id_taken(c, &id, state_out)) {
        *id_out = id;
        c->duplicates++;
        return JOBQ_EDUPLICATE;
    }
    core_queue_t *q = core_queue_find_(c, job->queue, job->queue_len);
    if (q && job->unique_len && s_unique_taken(c, q, job, id_out, state_out)) {
        c->duplicates++;
        return JOBQ_EDUPLICATE;
    }
    if (!q)
        q = core_queue_get_(c, job->queue, job->queue_len);
    uint64_t bytes = (uint64_t)job->payload_len + job->unique_len;
    if (!q || q->nready + q->ndelayed + q->nreserved + q->ndead >= c->cfg.max_jobs ||
        q->bytes + bytes > c->cfg.max_bytes) {
        c->refused_full++;
        return JOBQ_EQUEUEFULL;
    }
    core_job_t *j = s_job_new(c, q, job, &id, submitter);
    q->submitted++;
    c->submitted++;
    if (job->delay_ms > 0)
        s_job_delay(c, j, s_after(c->now_ms, (int64_t)job->delay_ms));
    else
        s_job_ready(c, j);
    *id_out = id;
    *state_out = (jobq_job_state)j->state;
    return JOBQ_OK;
}

int
core_submit(core_t *c, const jobq_job_t *job, uint64_t submitter, int64_t now_ms, jobq_id_t *id_out,
            jobq_job_state *state_out)
{
    JOBQ_ASSERT(c);
    jobq_id_t id_tmp, fresh;
    jobq_job_state st_tmp;
    if (!job)
        return JOBQ_EINVAL;
    int rc = s_job_args_ok(job);
    if (rc)
        return rc;
    core_now_(c, now_ms);
    int zero = jobq_id_is_zero(&job->id);
    if (zero)
        core_id_next_(c, &fresh);
    return s_submit(c, job, zero ? &fresh : NULL, submitter, id_out ? id_out : &id_tmp,
                    state_out ? state_out : &st_tmp);
}

/* The batch calls prefetch the index slots of the item S_AHEAD places ahead
 * of the one they process (a window: a burst of prefetches would overflow the
 * CPU's miss buffers). Submit ids are drawn S_BATCH at a time. */
#define S_BATCH 64
#define S_AHEAD 8

/* Starts loading the index slots a lookup of id will touch. */
static void
s_prefetch_id(const core_t *c, const jobq_id_t *id)
{
    uint64_t h = core_id_hash_(c, id);
    core_tab_prefetch(&c->jobs, h);
    core_tab_prefetch(&c->results, h);
}

void
core_submit_batch(core_t *c, const jobq_job_t *jobs, size_t n, uint64_t submitter, int64_t now_ms,
                  int *rcs, jobq_id_t *ids_out, jobq_job_state *states_out)
{
    JOBQ_ASSERT(c && (n == 0 || (jobs && rcs)));
    core_now_(c, now_ms);
    for (size_t base = 0; base < n; base += S_BATCH) {
        size_t m = n - base < S_BATCH ? n - base : S_BATCH;
        jobq_id_t ids[S_BATCH];
        for (size_t i = 0; i < m; i++) {
            const jobq_job_t *job = &jobs[base + i];
            if ((rcs[base + i] = s_job_args_ok(job)) != JOBQ_OK)
                continue;
            if (jobq_id_is_zero(&job->id))
                core_id_next_(c, &ids[i]);
            else
                ids[i] = job->id;
            if (i < S_AHEAD)
                s_prefetch_id(c, &ids[i]);
        }
        for (size_t i = 0; i < m; i++) {
            size_t k = base + i;
            jobq_id_t id_tmp;
            jobq_job_state st_tmp;
            if (i + S_AHEAD < m && rcs[k + S_AHEAD] == JOBQ_OK)
                s_prefetch_id(c, &ids[i + S_AHEAD]);
            if (rcs[k] != JOBQ_OK)
                continue;
            rcs[k] =
                s_submit(c, &jobs[k], jobq_id_is_zero(&jobs[k].id) ? &ids[i] : NULL, submitter,
                         ids_out ? &ids_out[k] : &id_tmp, states_out ? &states_out[k] : &st_tmp);
        }
    }
}

/* ---- workers: credit, reserve, complete, extend, release ----------------- */

int
core_worker_credit(core_t *c, uint64_t worker, uint32_t credit, int64_t now_ms)
{
    JOBQ_ASSERT(c);
    core_worker_t *w = core_worker_get_(c, worker);
    w->credit = credit;
    w->last_ms = core_now_(c, now_ms);
    return JOBQ_OK;
}

int
core_reserve(core_t *c, uint64_t worker, const core_name_t *queues, size_t nqueues, int64_t now_ms,
             size_t max, core_job_view_t *out, size_t *nout)
{
    JOBQ_ASSERT(c && nout);
    *nout = 0;
    if ((nqueues && !queues) || nqueues > CORE_RESERVE_QUEUES_MAX || (max && !out))
        return JOBQ_EINVAL;
    for (size_t i = 0; i < nqueues; i++)
        if (!core_name_ok_(queues[i].ptr, queues[i].len))
            return JOBQ_EINVAL;
    core_now_(c, now_ms);
    core_worker_t *w = core_worker_find_(c, worker);
    if (!w)
        return JOBQ_ENOTFOUND;
    w->last_ms = c->now_ms;
    core_queue_t *qs[CORE_RESERVE_QUEUES_MAX];
    size_t nq = 0, n = 0;
    for (size_t i = 0; i < nqueues; i++) {
        core_queue_t *q = core_queue_find_(c, queues[i].ptr, queues[i].len);
        if (q && !s_paused(c, q))
            qs[nq++] = q;
    }
    while (n < max && w->nheld < w->credit) {
        /* Lowest priority number wins; among ties, the first queue after the
         * one served last (round robin). */
        core_level_t *best = NULL;
        size_t start = nq ? w->rr % nq : 0, best_at = 0;
        for (size_t k = 0; k < nq; k++) {
            size_t at = (start + k) % nq;
            core_level_t *l = core_heap_top(&qs[at]->levels);
            if (l && (!best || l->priority < best->priority)) {
                best = l;
                best_at = at;
            }
        }
        if (!best)
            break;
        w->rr = (uint32_t)(best_at + 1);
        core_job_t *j = core_fifo_front(&best->fifo);
        /* The first jobs of a deep queue were queued long ago: not cached. */
        const core_job_t *ahead = core_fifo_at(&best->fifo, best->fifo.head + 6);
        if (ahead) {
            __builtin_prefetch(ahead);
            __builtin_prefetch((const char *)ahead + 64);
        }
        if (j->attempt >= CORE_ATTEMPTS_MAX) { /* the fence cannot grow: never deliver */
            static const char why[] = "delivery counter exhausted";
            core_outcome_t o = {
                .last_status = JOBQ_STATUS_DEAD, .error = why, .error_len = sizeof why - 1};
            s_job_bury(c, j, &o);
            continue;
        }
        s_job_reserve(c, j, w);
        core_view_job_(c, j, &out[n++]);
    }
    *nout = n;
    return JOBQ_OK;
}

static int
s_result_args_ok(const jobq_result_t *res)
{
    if ((unsigned)res->status > JOBQ_STATUS_DEAD)
        return JOBQ_EINVAL;
    if (res->output_len > JOBQ_PAYLOAD_MAX || res->error_len > JOBQ_ERROR_TEXT_MAX)
        return JOBQ_ETOOBIG;
    if ((res->output_len && !res->output) || (res->error_len && !res->error))
        return JOBQ_EINVAL;
    return JOBQ_OK;
}

/* Records one validated result at the core's current time. */
static int
s_complete(core_t *c, uint64_t worker, const jobq_result_t *res)
{
    core_job_t *j;
    int rc = s_fence(c, worker, &res->id, res->attempt, &j);
    if (rc != JOBQ_OK)
        return rc;
    core_worker_t *w = j->u.lease->worker;
    s_q(c, j)->completed++;
    core_outcome_t o = {res->status, res->exit_code,  res->signal, res->duration_us,
                        res->output, res->output_len, res->error,  res->error_len};
    if (res->status == JOBQ_STATUS_DONE) {
        w->done++;
        s_job_done(c, j, &o);
    } else {
        w->failed++;
        s_job_failed(c, j, &o, 1);
    }
    return JOBQ_OK;
}

int
core_complete(core_t *c, uint64_t worker, const jobq_result_t *res, int64_t now_ms)
{
    JOBQ_ASSERT(c);
    if (!res)
        return JOBQ_EINVAL;
    int rc = s_result_args_ok(res);
    if (rc)
        return rc;
    core_now_(c, now_ms);
    return s_complete(c, worker, res);
}

void
core_complete_batch(core_t *c, uint64_t worker, const jobq_result_t *res, size_t n, int64_t now_ms,
                    int *rcs)
{
    JOBQ_ASSERT(c && (n == 0 || (res && rcs)));
    core_now_(c, now_ms);
    for (size_t i = 0; i < n; i++)
        if ((rcs[i] = s_result_args_ok(&res[i])) == JOBQ_OK && i < S_AHEAD)
            s_prefetch_id(c, &res[i].id);
    for (size_t i = 0; i < n; i++) {
        if (i + S_AHEAD < n && rcs[i + S_AHEAD] == JOBQ_OK)
            s_prefetch_id(c, &res[i + S_AHEAD].id); /* the job, and where its result goes */
        if (rcs[i] == JOBQ_OK)
            rcs[i] = s_complete(c, worker, &res[i]);
    }
}

int
core_extend(core_t *c, uint64_t worker, const jobq_id_t *id, uint32_t attempt, uint32_t ttr_ms,
            int64_t now_ms, int64_t *deadline_out)
{
    JOBQ_ASSERT(c);
    if (!id)
        return JOBQ_EINVAL;
    core_now_(c, now_ms);
    core_job_t *j;
    int rc = s_fence(c, worker, id, attempt, &j);
    if (rc)
        return rc;
    core_lease_t *l = j->u.lease;
    l->deadline_ms = s_after(c->now_ms, ttr_ms ? ttr_ms : j->ttr_ms);
    core_heap_update(&c->leases, l->heap_pos);
    l->worker->extended++;
    if (deadline_out)
        *deadline_out = l->deadline_ms;
    return JOBQ_OK;
}

int
core_release(core_t *c, uint64_t worker, const jobq_id_t *id, uint32_t attempt, uint64_t delay_ms,
             int64_t now_ms)
{
    JOBQ_ASSERT(c);
    if (!id || delay_ms > (uint64_t)CORE_DELAY_MAX_MS)
        return JOBQ_EINVAL;
    core_now_(c, now_ms);
    core_job_t *j;
    int rc = s_fence(c, worker, id, attempt, &j);
    if (rc)
        return rc;
    j->u.lease->worker->released++;
    s_q(c, j)->released++;
    j->free_attempts++;
    if (delay_ms > 0)
        s_job_delay(c, j, s_after(c->now_ms, (int64_t)delay_ms));
    else
        s_job_ready(c, j);
    return JOBQ_OK;
}

int
core_release_worker(core_t *c, uint64_t worker, int64_t now_ms, core_release_reason reason,
                    size_t *nreleased)
{
    static const char lost[] = "worker lost", died[] = "worker died";
    JOBQ_ASSERT(c);
    if ((unsigned)reason > CORE_RELEASE_GRACEFUL)
        return JOBQ_EINVAL;
    core_now_(c, now_ms);
    core_worker_t *w = core_worker_find_(c, worker);
    if (!w)
        return JOBQ_ENOTFOUND;
    size_t n = 0;
    while (w->nheld) {
        core_job_t *j = w->held[w->nheld - 1]->job;
        n++;
        if (reason == CORE_RELEASE_GRACEFUL) {
            s_q(c, j)->released++;
            j->free_attempts++;
            s_job_ready(c, j);
            continue;
        }
        core_outcome_t o = {.last_status = JOBQ_STATUS_CRASHED};
        o.error = reason == CORE_RELEASE_LOST ? lost : died;
        o.error_len = (uint32_t)strlen(o.error);
        s_job_failed(c, j, &o, 0);
    }
    core_worker_free_(c, w);
    if (nreleased)
        *nreleased = n;
    return JOBQ_OK;
}

/* ---- time ----------------------------------------------------------------- */

int64_t
core_next_deadline(const core_t *c)
{
    int64_t next = CORE_FOREVER;
    const core_job_t *j = core_heap_top(&c->delays);
    if (j && j->at_ms < next)
        next = j->at_ms;
    const core_lease_t *l = core_heap_top(&c->leases);
    if (l && l->deadline_ms < next)
        next = l->deadline_ms;
    for (uint32_t i = 0; i < c->npaused; i++)
        if (c->paused[i]->paused_until < next)
            next = c->paused[i]->paused_until;
    return next;
}

int64_t
core_tick(core_t *c, int64_t now_ms)
{
    static const char expired[] = "lease expired";
    JOBQ_ASSERT(c);
    int64_t now = core_now_(c, now_ms);
    core_job_t *j;
    while ((j = core_heap_top(&c->delays)) != NULL && j->at_ms <= now)
        s_job_ready(c, j);
    core_lease_t *l;
    while ((l = core_heap_top(&c->leases)) != NULL && l->deadline_ms <= now) {
        core_queue_t *q = s_q(c, l->job);
        q->expired++;
        core_emit_(c, CORE_EV_EXPIRED, q, &l->job->id, 0)->worker = l->worker->handle;
        core_outcome_t o = {
            .last_status = JOBQ_STATUS_TIMEDOUT, .error = expired, .error_len = sizeof expired - 1};
        s_job_failed(c, l->job, &o, 0);
    }
    for (uint32_t i = 0; i < c->npaused;) {
        if (c->paused[i]->paused_until <= now)
            core_unpause_(c, c->paused[i]); /* moves the last one into slot i */
        else
            i++;
    }
    return core_next_deadline(c);
}

/* ---- dead set, bury, delete ----------------------------------------------- */

int
core_kick(core_t *c, const char *queue, uint32_t queue_len, uint64_t n, int64_t now_ms,
          uint64_t *kicked)
{
    JOBQ_ASSERT(c);
    if (kicked)
        *kicked = 0;
    if (!core_name_ok_(queue, queue_len))
        return JOBQ_EINVAL;
    core_now_(c, now_ms);
    core_queue_t *q = core_queue_find_(c, queue, queue_len);
    if (!q)
        return JOBQ_ENOTFOUND;
    uint64_t k = 0;
    core_job_t *j;
    while (k < n && (j = core_fifo_front(&q->dead)) != NULL) {
        s_job_kick(c, j);
        k++;
    }
    if (kicked)
        *kicked = k;
    return JOBQ_OK;
}

static core_job_t *
s_job_find(const core_t *c, const jobq_id_t *id)
{
    return core_tab_find(&c->jobs, core_id_hash_(c, id), core_id_eq_, id);
}

int
core_kick_job(core_t *c, const jobq_id_t *id, int64_t now_ms)
{
    JOBQ_ASSERT(c);
    if (!id)
        return JOBQ_EINVAL;
    core_now_(c, now_ms);
    core_job_t *j = s_job_find(c, id);
    if (!j)
        return JOBQ_ENOTFOUND;
    if (j->state != JOBQ_STATE_DEAD)
        return JOBQ_ESTATE;
    s_job_kick(c, j);
    return JOBQ_OK;
}

int
core_bury(core_t *c, const jobq_id_t *id, jobq_status last_status, const char *error,
          uint32_t error_len, int64_t now_ms)
{
    JOBQ_ASSERT(c);
    if (!id || (unsigned)last_status > JOBQ_STATUS_DEAD || (error_len && !error))
        return JOBQ_EINVAL;
    if (error_len > JOBQ_ERROR_TEXT_MAX)
        return JOBQ_ETOOBIG;
    core_now_(c, now_ms);
    core_job_t *j = s_job_find(c, id);
    if (!j)
        return JOBQ_ENOTFOUND;
    if (j->state != JOBQ_STATE_READY && j->state != JOBQ_STATE_DELAYED)
        return JOBQ_ESTATE;
    core_outcome_t o = {.last_status = last_status, .error = error, .error_len = error_len};
    s_job_bury(c, j, &o);
    return JOBQ_OK;
}

int
core_delete(core_t *c, const jobq_id_t *id, int64_t now_ms)
{
    JOBQ_ASSERT(c);
    if (!id)
        return JOBQ_EINVAL;
    core_now_(c, now_ms);
    core_job_t *j = s_job_find(c, id);
    if (j) {
        if (j->state == JOBQ_STATE_RESERVED)
            return JOBQ_ESTATE;
        s_job_delete(c, j);
        return JOBQ_OK;
    }
    core_result_t *r = core_tab_find(&c->results, core_id_hash_(c, id), core_id_eq_, id);
    if (!r)
        return JOBQ_ENOTFOUND;
    core_result_drop_(c, r);
    return JOBQ_OK;
}

int
core_unsubmit(core_t *c, const jobq_id_t *id)
{
    JOBQ_ASSERT(c);
    core_job_t *j = id ? s_job_find(c, id) : NULL;
    if (!j)
        return JOBQ_ENOTFOUND;
    if (j->state != JOBQ_STATE_READY && j->state != JOBQ_STATE_DELAYED)
        return JOBQ_ESTATE;
    core_queue_t *q = s_q(c, j);
    s_job_unlink(c, j);
    q->submitted--;
    c->submitted--;
    s_job_free(c, j, NULL);
    return JOBQ_OK;
}

/* ---- pause ---------------------------------------------------------------- */

int
core_pause(core_t *c, const char *queue, uint32_t queue_len, int64_t until_ms, int64_t now_ms)
{
    JOBQ_ASSERT(c);
    if (!core_name_ok_(queue, queue_len))
        return JOBQ_EINVAL;
    int64_t now = core_now_(c, now_ms);
    core_queue_t *q = core_queue_get_(c, queue, queue_len);
    if (!q) {
        c->refused_full++;
        return JOBQ_EQUEUEFULL;
    }
    if (until_ms <= now) {
        core_unpause_(c, q);
        if (c->hook)
            core_hook_pause_(c, q);
        return JOBQ_OK;
    }
    if (q->paused_until == 0) {
        if (c->npaused == c->cappaused) {
            c->cappaused = c->cappaused ? c->cappaused * 2 : 8;
            c->paused = jobq_realloc(c->paused, c->cappaused * sizeof *c->paused);
        }
        q->paused_pos = c->npaused;
        c->paused[c->npaused++] = q;
    }
    q->paused_until = until_ms;
    if (c->hook)
        core_hook_pause_(c, q);
    return JOBQ_OK;
}

int
core_resume(core_t *c, const char *queue, uint32_t queue_len, int64_t now_ms)
{
    JOBQ_ASSERT(c);
    if (!core_name_ok_(queue, queue_len))
        return JOBQ_EINVAL;
    core_now_(c, now_ms);
    core_queue_t *q = core_queue_find_(c, queue, queue_len);
    if (!q)
        return JOBQ_ENOTFOUND;
    core_unpause_(c, q);
    if (c->hook)
        core_hook_pause_(c, q);
    return JOBQ_OK;
}
