/*
 * broker/core_check.c: core_check(), the broker core's invariant checker.
 *
 * It walks every structure and cross-checks it against the others: each job
 * is in exactly the structure its state names (and only there), every
 * recorded position points back at its element, heaps and tables are
 * ordered, counters equal what the walk counts, results and unique keys are
 * owned as core_int.h says. O(everything): tests call it after each step.
 */
#include "broker/core_int.h"
#include "common/alloc.h"

#include <string.h>

#define CHECK(cond, text)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            *why = (text);                                                                         \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* Per-queue totals found by the walk. */
typedef struct s_tally {
    uint64_t ready, delayed, reserved, dead, bytes;
} s_tally_t;

/* Checks where job j lives; returns NULL or the broken invariant. */
static const char *
s_check_job(const core_t *c, const core_job_t *j)
{
    const core_queue_t *q = c->queues[j->queue];
    if (j->free_attempts > j->attempt || j->max_attempts < 1)
        return "job attempts out of range";
    switch (j->state) {
    case JOBQ_STATE_DELAYED:
        if (j->pos >= c->delays.len || c->delays.items[j->pos] != j)
            return "DELAYED job not at its delay heap position";
        break;
    case JOBQ_STATE_READY: {
        const core_level_t *l = core_level_find_(c, j->queue, j->priority);
        if (!l || core_fifo_at(&l->fifo, j->pos) != j)
            return "READY job not at its level FIFO position";
        break;
    }
    case JOBQ_STATE_RESERVED: {
        const core_lease_t *l = j->u.lease;
        if (l->job != j || l->heap_pos >= c->leases.len || c->leases.items[l->heap_pos] != l)
            return "RESERVED job's lease not on the lease heap";
        const core_worker_t *w = l->worker;
        if (core_worker_find_(c, w->handle) != w || l->held_pos >= w->nheld ||
            w->held[l->held_pos] != l)
            return "RESERVED job's lease not on its worker";
        if (j->attempt < 1)
            return "RESERVED job with attempt 0";
        break;
    }
    case JOBQ_STATE_DEAD: {
        const core_result_t *r = j->u.dead;
        if (core_fifo_at(&q->dead, j->pos) != j)
            return "DEAD job not at its dead FIFO position";
        if (!(r->flags & CORE_RES_PINNED) ||
            core_tab_find(&c->results, core_id_hash_(c, &j->id), core_id_eq_, &j->id) != r)
            return "DEAD job without its pinned result";
        break;
    }
    default:
        return "job in an impossible state";
    }
    if (j->unique_len) {
        core_ukey_t k = {j->queue, j->unique_len, core_job_unique_(j)};
        if (core_tab_find(&c->uniques, core_ukey_hash_(c, &k), core_ukey_eq_, &k) != j)
            return "job's unique key does not lead to it";
    }
    return NULL;
}

static const char *
s_check_queue(const core_t *c, uint32_t i, const s_tally_t *t)
{
    const core_queue_t *q = c->queues[i];
    if (q->idx != i || core_queue_find_(c, q->name, q->name_len) != q)
        return "queue not indexed by name";
    if (t->ready != q->nready || t->delayed != q->ndelayed || t->reserved != q->nreserved ||
        t->dead != q->ndead || t->bytes != q->bytes)
        return "queue counters differ from its jobs";
    if (q->dead.live != q->ndead)
        return "dead FIFO length differs from the DEAD count";
    if (!core_heap_valid(&q->levels))
        return "priority levels out of heap order";
    uint64_t ready = 0;
    for (uint32_t k = 0; k < q->levels.len; k++) {
        const core_level_t *l = q->levels.items[k];
        if (l->heap_pos != k || l->queue != q->idx || l->fifo.live == 0 ||
            core_level_find_(c, q->idx, l->priority) != l)
            return "priority level misplaced, empty or not indexed";
        ready += l->fifo.live;
    }
    if (ready != q->nready)
        return "level FIFOs hold a different number of READY jobs";
    if (q->paused_until != 0 && (q->paused_pos >= c->npaused || c->paused[q->paused_pos] != q))
        return "paused queue not on the paused list";
    return NULL;
}

static const char *
s_check_workers(const core_t *c)
{
    uint64_t held = 0;
    if (c->wtab.count != c->nworkers)
        return "worker table and worker list differ";
    for (uint32_t i = 0; i < c->nworkers; i++) {
        const core_worker_t *w = c->workers[i];
        if (w->idx != i || core_worker_find_(c, w->handle) != w)
            return "worker misplaced";
        for (uint32_t k = 0; k < w->nheld; k++)
            if (w->held[k]->worker != w || w->held[k]->held_pos != k ||
                w->held[k]->job->state != JOBQ_STATE_RESERVED)
                return "worker holds a lease that is not its own";
        held += w->nheld;
    }
    if (held != c->leases.len || !core_heap_valid(&c->leases))
        return "lease heap and workers' leases differ";
    for (uint32_t i = 0; i < c->leases.len; i++) {
        const core_lease_t *l = c->leases.items[i];
        if (l->heap_pos != i || l->job->u.lease != l)
            return "lease heap position wrong";
    }
    return NULL;
}

static const char *
s_check_results(const core_t *c, uint64_t *unique_results)
{
    uint32_t cur = 0;
    const core_result_t *r;
    uint64_t pinned = 0, kept = 0, bytes = 0;
    while ((r = core_tab_next(&c->results, &cur)) != NULL) {
        if (r->queue >= c->nqueues)
            return "result of an unknown queue";
        const core_job_t *j =
            core_tab_find(&c->jobs, core_id_hash_(c, &r->id), core_id_eq_, &r->id);
        if (r->flags & CORE_RES_PINNED) {
            if (!j || j->state != JOBQ_STATE_DEAD || j->u.dead != r)
                return "pinned result without its DEAD job";
            pinned++;
            continue;
        }
        if (j)
            return "retained result of a live job";
        if (core_fifo_at(&c->kept, r->pos) != r)
            return "retained result not at its retention position";
        kept++;
        bytes += core_result_bytes_(r);
        if (r->unique_len) {
            core_ukey_t k = {r->queue, r->unique_len, core_result_unique_(r)};
            const void *e = core_tab_find(&c->uniques, core_ukey_hash_(c, &k), core_ukey_eq_, &k);
            if (e != (const void *)((uintptr_t)r | 1u))
                return "retained result's unique key does not lead to it";
            (*unique_results)++;
        }
    }
    if (pinned != c->npinned || kept != c->kept.live || bytes != c->result_bytes)
        return "result counters differ from the results";
    uint32_t pos = c->kept.head;
    int64_t last = INT64_MIN;
    while ((r = core_fifo_next(&c->kept, &pos)) != NULL) {
        if (r->kept_ms < last)
            return "retention FIFO out of time order";
        last = r->kept_ms;
    }
    return NULL;
}

/* Every entry of the unique table is a live job or a retained result, and the
 * only entry with its key. */
static const char *
s_check_uniques(const core_t *c, uint64_t expect)
{
    if (c->uniques.count != expect)
        return "unique table size differs from the keyed jobs and results";
    uint32_t cur = 0;
    const void *e;
    while ((e = core_tab_next(&c->uniques, &cur)) != NULL) {
        if (core_is_result_(e)) {
            const core_result_t *r = core_untag_(e);
            if (r->flags & CORE_RES_PINNED || r->unique_len == 0)
                return "unique key held by a pinned or keyless result";
            if (core_tab_find(&c->results, core_id_hash_(c, &r->id), core_id_eq_, &r->id) != r)
                return "unique key held by a dropped result";
        } else {
            const core_job_t *j = e;
            if (core_tab_find(&c->jobs, core_id_hash_(c, &j->id), core_id_eq_, &j->id) != j)
                return "unique key held by a freed job";
        }
        core_ukey_t k;
        core_ukey_of_(e, &k);
        if (core_tab_find(&c->uniques, core_ukey_hash_(c, &k), core_ukey_eq_, &k) != e)
            return "two entries share a unique key";
    }
    return NULL;
}

int
core_check(const core_t *c, const char **why_out)
{
    const char *dummy = NULL, **why = why_out ? why_out : &dummy;
    *why = NULL;
    s_tally_t *t = jobq_calloc(c->nqueues + 1, sizeof *t);
    const core_tab_t *tabs[] = {&c->jobs,  &c->results, &c->uniques,
                                &c->names, &c->levels,  &c->wtab};
    for (size_t i = 0; i < sizeof tabs / sizeof tabs[0]; i++)
        CHECK(core_tab_valid(tabs[i]), "an index table is out of order");
    CHECK(core_heap_valid(&c->delays), "delay heap out of order");
    CHECK(c->names.count == c->nqueues, "queue table and queue list differ");
    uint32_t cur = 0;
    const core_job_t *j;
    uint64_t bytes = 0, keyed = 0;
    while ((j = core_tab_next(&c->jobs, &cur)) != NULL) {
        CHECK(j->queue < c->nqueues, "job of an unknown queue");
        CHECK(core_tab_find(&c->jobs, core_id_hash_(c, &j->id), core_id_eq_, &j->id) == j,
              "job not found by its id");
        const char *bad = s_check_job(c, j);
        CHECK(bad == NULL, bad);
        s_tally_t *q = &t[j->queue];
        q->ready += j->state == JOBQ_STATE_READY;
        q->delayed += j->state == JOBQ_STATE_DELAYED;
        q->reserved += j->state == JOBQ_STATE_RESERVED;
        q->dead += j->state == JOBQ_STATE_DEAD;
        q->bytes += core_job_bytes_(j);
        bytes += core_job_bytes_(j);
        keyed += j->unique_len != 0;
    }
    CHECK(bytes == c->bytes, "core byte count differs from its jobs");
    uint64_t levels = 0;
    for (uint32_t i = 0; i < c->nqueues; i++) {
        const char *bad = s_check_queue(c, i, &t[i]);
        CHECK(bad == NULL, bad);
        levels += c->queues[i]->levels.len;
    }
    CHECK(levels == c->levels.count, "level table and queues' levels differ");
    for (uint32_t i = 0; i < c->delays.len; i++) {
        const core_job_t *d = c->delays.items[i];
        CHECK(d->state == JOBQ_STATE_DELAYED && d->pos == i, "delay heap holds a stray job");
    }
    uint32_t npaused = 0;
    for (uint32_t i = 0; i < c->nqueues; i++)
        npaused += c->queues[i]->paused_until != 0;
    CHECK(npaused == c->npaused, "paused list and queues differ");
    const char *bad = s_check_workers(c);
    CHECK(bad == NULL, bad);
    uint64_t keyed_results = 0;
    bad = s_check_results(c, &keyed_results);
    CHECK(bad == NULL, bad);
    bad = s_check_uniques(c, keyed + keyed_results);
    CHECK(bad == NULL, bad);
    jobq_free(t);
    return 0;
fail:
    jobq_free(t);
    return -1;
}
