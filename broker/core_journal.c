/*
 * broker/core_journal.c: what the broker's journal needs from the core: the
 * change hook (every state change, told after it happened), taking back a
 * submit the journal could not record, restoring a retained result on replay,
 * and iterating every live job and retained result for a snapshot.
 *
 * Invariant: the hook sees the core in a consistent state and never calls
 * back into it; nothing here runs when no hook is installed except the
 * explicit restore and iteration calls.
 */
#include "broker/core_int.h"
#include "common/alloc.h"
#include "common/log.h"

#include <string.h>

void
core_set_hook(core_t *c, core_hook_fn hook, void *arg)
{
    JOBQ_ASSERT(c);
    c->hook = hook;
    c->hook_arg = arg;
}

void
core_hook_job_(core_t *c, core_change_kind kind, const core_job_t *j)
{
    core_job_view_t v;
    core_result_view_t rv;
    core_change_t ch = {.kind = kind, .id = j->id, .job = &v};
    core_view_job_(c, j, &v);
    if (kind == CORE_CH_DEAD) {
        core_view_result_(c, j->u.dead, &rv);
        ch.res = &rv;
        ch.unique = v.unique;
        ch.unique_len = v.unique_len;
    }
    c->hook(c->hook_arg, &ch);
}

void
core_hook_done_(core_t *c, const core_result_t *r)
{
    core_result_view_t rv;
    core_view_result_(c, r, &rv);
    core_change_t ch = {.kind = CORE_CH_DONE, .id = r->id, .res = &rv};
    if (r->unique_len) {
        ch.unique = core_result_unique_(r);
        ch.unique_len = r->unique_len;
    }
    c->hook(c->hook_arg, &ch);
}

void
core_hook_id_(core_t *c, core_change_kind kind, const jobq_id_t *id)
{
    core_change_t ch = {.kind = kind, .id = *id};
    c->hook(c->hook_arg, &ch);
}

void
core_hook_pause_(core_t *c, const core_queue_t *q)
{
    core_change_t ch = {.kind = CORE_CH_PAUSE,
                        .queue = q->name,
                        .queue_len = q->name_len,
                        .until_ms = q->paused_until};
    c->hook(c->hook_arg, &ch);
}

int
core_restore_result(core_t *c, const core_result_view_t *v, const void *unique, uint32_t unique_len,
                    int64_t now_ms)
{
    JOBQ_ASSERT(c);
    if (!v || !core_name_ok_(v->queue, v->queue_len) || (unique_len && !unique) ||
        (v->status != JOBQ_STATUS_DONE && v->status != JOBQ_STATUS_DEAD) ||
        (unsigned)v->last_status > JOBQ_STATUS_DEAD || (v->output_len && !v->output) ||
        (v->error_len && !v->error))
        return JOBQ_EINVAL;
    if (unique_len > JOBQ_UNIQUE_KEY_MAX || v->error_len > JOBQ_ERROR_TEXT_MAX ||
        v->output_len > JOBQ_PAYLOAD_MAX || v->attempts > CORE_ATTEMPTS_MAX)
        return JOBQ_ETOOBIG;
    core_now_(c, now_ms);
    if (core_tab_find(&c->jobs, core_id_hash_(c, &v->id), core_id_eq_, &v->id) ||
        core_tab_find(&c->results, core_id_hash_(c, &v->id), core_id_eq_, &v->id))
        return JOBQ_EDUPLICATE;
    core_queue_t *q = core_queue_get_(c, v->queue, v->queue_len);
    if (!q)
        return JOBQ_EQUEUEFULL;
    core_ukey_t k = {q->idx, unique_len, unique};
    uint64_t kh = unique_len ? core_ukey_hash_(c, &k) : 0;
    if (unique_len && core_tab_find(&c->uniques, kh, core_ukey_eq_, &k))
        return JOBQ_EDUPLICATE;
    /* core_result_new_ takes the job's id, queue, attempts and key. */
    core_job_t *j = jobq_calloc(1, sizeof *j + unique_len + 1);
    j->id = v->id;
    j->queue = q->idx;
    j->attempt = (uint16_t)v->attempts;
    j->unique_len = unique_len;
    if (unique_len)
        memcpy(j->data, unique, unique_len);
    core_outcome_t o = {.last_status = v->last_status,
                        .exit_code = v->exit_code,
                        .signal = v->signal,
                        .duration_us = v->duration_us,
                        .output = v->output,
                        .output_len = v->output_len,
                        .error = v->error,
                        .error_len = v->error_len};
    core_result_t *r = core_result_new_(c, j, v->status, &o, v->submitter);
    jobq_free(j);
    r->finished_ms = v->finished_ms;
    if (v->delivered)
        r->flags |= CORE_RES_DELIVERED;
    core_result_keep_(c, r);
    if (unique_len)
        core_tab_insert(&c->uniques, kh, (void *)((uintptr_t)r | 1u));
    return JOBQ_OK;
}

int
core_restore_attempts(core_t *c, const jobq_id_t *id, uint32_t attempt, uint32_t used)
{
    JOBQ_ASSERT(c);
    if (!id || used > attempt || attempt > CORE_ATTEMPTS_MAX)
        return JOBQ_EINVAL;
    core_job_t *j = core_tab_find(&c->jobs, core_id_hash_(c, id), core_id_eq_, id);
    if (!j)
        return JOBQ_ENOTFOUND;
    if (j->state == JOBQ_STATE_RESERVED)
        return JOBQ_ESTATE;
    j->attempt = (uint16_t)attempt;
    j->free_attempts = (uint16_t)(attempt - used);
    if (j->state == JOBQ_STATE_DEAD)
        j->u.dead->attempts = (uint16_t)used;
    return JOBQ_OK;
}

int
core_restore_dead_outcome(core_t *c, const jobq_id_t *id, int32_t exit_code, int32_t signal,
                          uint64_t duration_us, int64_t finished_ms)
{
    JOBQ_ASSERT(c);
    if (!id)
        return JOBQ_EINVAL;
    core_job_t *j = core_tab_find(&c->jobs, core_id_hash_(c, id), core_id_eq_, id);
    if (!j)
        return JOBQ_ENOTFOUND;
    if (j->state != JOBQ_STATE_DEAD)
        return JOBQ_ESTATE;
    core_result_t *r = j->u.dead;
    r->exit_code = exit_code;
    r->signal = signal;
    r->duration_us = duration_us;
    r->finished_ms = finished_ms;
    return JOBQ_OK;
}

int
core_job_next(const core_t *c, uint32_t *cursor, core_job_view_t *view)
{
    JOBQ_ASSERT(c && cursor && view);
    const core_job_t *j = core_tab_next(&c->jobs, cursor);
    if (!j)
        return 0;
    core_view_job_(c, j, view);
    return 1;
}

int
core_result_next(const core_t *c, uint32_t *cursor, core_result_view_t *view, const void **unique,
                 uint32_t *unique_len)
{
    JOBQ_ASSERT(c && cursor && view && unique && unique_len);
    const core_result_t *r;
    while ((r = core_tab_next(&c->results, cursor)) != NULL)
        if (!(r->flags & CORE_RES_PINNED))
            break;
    if (!r)
        return 0;
    core_view_result_(c, r, view);
    *unique = r->unique_len ? core_result_unique_(r) : NULL;
    *unique_len = r->unique_len;
    return 1;
}
