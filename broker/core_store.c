/*
 * broker/core_store.c: the broker core's storage: the seeded hashes and the
 * callbacks of its indexes, queues and their priority levels, workers and
 * their leases, stored results and their retention, the event list, and the
 * core's lifecycle (see core_int.h for where each job lives by state; the
 * state machine itself is in core.c).
 */
#include "broker/core_int.h"
#include "common/alloc.h"
#include "common/log.h"

#include <string.h>

/* ---- hashing (seeded, so crafted ids or names cannot pile into one run) --- */

static inline uint64_t
s_mix(uint64_t a, uint64_t b)
{
    unsigned __int128 m =
        (unsigned __int128)(a ^ 0xa0761d6478bd642full) * (b ^ 0xe7037ed1a0b428dbull);
    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

static uint64_t
s_bytes_hash(uint64_t h, const void *data, uint32_t len)
{
    const unsigned char *p = data;
    uint32_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = s_mix(h ^ w, 0x8ebc6af09c88c6e3ull);
    }
    uint64_t w = 0;
    memcpy(&w, p + i, len - i);
    return s_mix(h ^ w, (uint64_t)len ^ 0x589965cc75374cc3ull);
}

uint64_t
core_id_hash_(const core_t *core, const jobq_id_t *id)
{
    uint64_t lo, hi;
    memcpy(&lo, id->b, 8);
    memcpy(&hi, id->b + 8, 8);
    return s_mix(lo ^ core->seed, hi ^ (core->seed >> 7));
}

uint64_t
core_name_hash_(const core_t *core, const char *name, uint32_t len)
{
    return s_bytes_hash(core->seed, name, len);
}

uint64_t
core_ukey_hash_(const core_t *core, const core_ukey_t *k)
{
    return s_bytes_hash(core->seed ^ ((uint64_t)k->queue << 40), k->ptr, k->len);
}

static uint64_t
s_level_key_hash(const core_t *core, uint16_t queue, uint32_t priority)
{
    return s_mix(((uint64_t)queue << 32 | priority) ^ core->seed, 0x1d8e4e27c47d124full);
}

static uint64_t
s_handle_hash(const core_t *core, uint64_t handle)
{
    return s_mix(handle ^ core->seed, 0x72be5d74f27b1a3dull);
}

/* Table callbacks: ctx is the core. */
static uint64_t
s_tab_id_hash(const void *elem, const void *ctx)
{
    return core_id_hash_(ctx, elem); /* jobs and results start with their id */
}

void
core_ukey_of_(const void *tagged, core_ukey_t *k)
{
    if (core_is_result_(tagged)) {
        const core_result_t *r = core_untag_(tagged);
        *k = (core_ukey_t){r->queue, r->unique_len, core_result_unique_(r)};
    } else {
        const core_job_t *j = tagged;
        *k = (core_ukey_t){j->queue, j->unique_len, core_job_unique_(j)};
    }
}

static uint64_t
s_tab_ukey_hash(const void *elem, const void *ctx)
{
    core_ukey_t k;
    core_ukey_of_(elem, &k);
    return core_ukey_hash_(ctx, &k);
}

int
core_ukey_eq_(const void *elem, const void *key)
{
    const core_ukey_t *want = key;
    core_ukey_t k;
    core_ukey_of_(elem, &k);
    return k.queue == want->queue && k.len == want->len && memcmp(k.ptr, want->ptr, k.len) == 0;
}

static uint64_t
s_tab_name_hash(const void *elem, const void *ctx)
{
    const core_queue_t *q = elem;
    return core_name_hash_(ctx, q->name, q->name_len);
}

static int
s_name_eq(const void *elem, const void *key)
{
    const core_queue_t *q = elem;
    const core_name_t *n = key;
    return q->name_len == n->len && memcmp(q->name, n->ptr, n->len) == 0;
}

static uint64_t
s_tab_level_hash(const void *elem, const void *ctx)
{
    const core_level_t *l = elem;
    return s_level_key_hash(ctx, l->queue, l->priority);
}

static int
s_level_eq(const void *elem, const void *key)
{
    const core_level_t *l = elem, *k = key;
    return l->queue == k->queue && l->priority == k->priority;
}

static uint64_t
s_tab_worker_hash(const void *elem, const void *ctx)
{
    return s_handle_hash(ctx, ((const core_worker_t *)elem)->handle);
}

static int
s_worker_eq(const void *elem, const void *key)
{
    return ((const core_worker_t *)elem)->handle == *(const uint64_t *)key;
}

int
core_id_eq_(const void *elem, const void *key)
{
    return memcmp(elem, key, sizeof(jobq_id_t)) == 0;
}

/* Heap and FIFO callbacks. */
static int
s_delay_less(const void *a, const void *b)
{
    return ((const core_job_t *)a)->at_ms < ((const core_job_t *)b)->at_ms;
}

static int
s_lease_less(const void *a, const void *b)
{
    return ((const core_lease_t *)a)->deadline_ms < ((const core_lease_t *)b)->deadline_ms;
}

static int
s_level_less(const void *a, const void *b)
{
    return ((const core_level_t *)a)->priority < ((const core_level_t *)b)->priority;
}

static void
s_job_setpos(void *e, uint32_t pos)
{
    ((core_job_t *)e)->pos = pos;
}

static void
s_lease_setpos(void *e, uint32_t pos)
{
    ((core_lease_t *)e)->heap_pos = pos;
}

static void
s_level_setpos(void *e, uint32_t pos)
{
    ((core_level_t *)e)->heap_pos = pos;
}

static void
s_result_setpos(void *e, uint32_t pos)
{
    ((core_result_t *)e)->pos = pos;
}

/* ---- small helpers -------------------------------------------------------- */

int
core_name_ok_(const char *name, uint32_t len)
{
    return name != NULL && len >= 1 && len <= JOBQ_QUEUE_NAME_MAX;
}

uint64_t
core_job_bytes_(const core_job_t *j)
{
    return (uint64_t)j->payload_len + j->unique_len;
}

uint64_t
core_result_bytes_(const core_result_t *r)
{
    return (uint64_t)r->output_len + r->error_len + r->unique_len;
}

uint64_t
core_job_submitter_(const core_job_t *j)
{
    switch (j->state) {
    case JOBQ_STATE_RESERVED:
        return j->u.lease->submitter;
    case JOBQ_STATE_DEAD:
        return j->u.dead->submitter;
    default:
        return j->u.submitter;
    }
}

core_event_t *
core_emit_(core_t *c, core_event_type type, const core_queue_t *q, const jobq_id_t *id,
           uint64_t submitter)
{
    if (c->nevents == c->capevents) {
        c->capevents = c->capevents ? c->capevents * 2 : 64;
        c->events = jobq_realloc(c->events, c->capevents * sizeof *c->events);
    }
    core_event_t *ev = &c->events[c->nevents++];
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    if (id)
        ev->id = *id;
    ev->submitter = submitter;
    ev->queue = q->name;
    ev->queue_len = q->name_len;
    return ev;
}

/* ---- queues and priority levels ------------------------------------------ */

core_queue_t *
core_queue_find_(const core_t *c, const char *name, uint32_t len)
{
    core_name_t key = {name, len};
    return core_tab_find(&c->names, core_name_hash_(c, name, len), s_name_eq, &key);
}

/* Returns the queue, creating it; NULL when max_queues is reached. */
core_queue_t *
core_queue_get_(core_t *c, const char *name, uint32_t len)
{
    core_queue_t *q = core_queue_find_(c, name, len);
    if (q || c->nqueues >= c->cfg.max_queues)
        return q;
    q = jobq_calloc(1, sizeof *q);
    q->idx = (uint16_t)c->nqueues;
    q->name_len = (uint8_t)len;
    memcpy(q->name, name, len);
    core_heap_init(&q->levels, s_level_less, s_level_setpos);
    core_fifo_init(&q->dead, s_job_setpos);
    c->queues = jobq_realloc(c->queues, (c->nqueues + 1) * sizeof *c->queues);
    c->queues[c->nqueues++] = q;
    core_tab_insert(&c->names, core_name_hash_(c, name, len), q);
    return q;
}

core_level_t *
core_level_find_(const core_t *c, uint16_t queue, uint32_t priority)
{
    core_level_t key = {.priority = priority, .queue = queue};
    return core_tab_find(&c->levels, s_level_key_hash(c, queue, priority), s_level_eq, &key);
}

core_level_t *
core_level_get_(core_t *c, core_queue_t *q, uint32_t priority)
{
    core_level_t *l = q->last;
    if (l && l->priority == priority)
        return l;
    l = core_level_find_(c, q->idx, priority);
    if (!l) {
        l = q->spare;
        q->spare = NULL;
        if (!l) {
            l = jobq_calloc(1, sizeof *l);
            core_fifo_init(&l->fifo, s_job_setpos);
        }
        l->priority = priority;
        l->queue = q->idx;
        core_heap_push(&q->levels, l);
        core_tab_insert(&c->levels, s_level_key_hash(c, q->idx, priority), l);
    }
    q->last = l;
    return l;
}

/* Retires level l once its FIFO is empty (kept as the queue's spare). */
void
core_level_retire_(core_t *c, core_queue_t *q, core_level_t *l)
{
    if (l->fifo.live)
        return;
    core_heap_remove(&q->levels, l->heap_pos);
    core_tab_remove(&c->levels, s_level_key_hash(c, q->idx, l->priority), l);
    if (q->last == l)
        q->last = NULL;
    if (!q->spare) {
        q->spare = l;
    } else {
        core_fifo_fini(&l->fifo);
        jobq_free(l);
    }
}

void
core_unpause_(core_t *c, core_queue_t *q)
{
    if (q->paused_until == 0)
        return;
    core_queue_t *last = c->paused[--c->npaused];
    c->paused[q->paused_pos] = last;
    last->paused_pos = q->paused_pos;
    q->paused_until = 0;
    if (q->nready)
        core_emit_(c, CORE_EV_READY, q, NULL, 0);
}

/* ---- workers -------------------------------------------------------------- */

core_worker_t *
core_worker_find_(const core_t *c, uint64_t handle)
{
    return core_tab_find(&c->wtab, s_handle_hash(c, handle), s_worker_eq, &handle);
}

core_worker_t *
core_worker_get_(core_t *c, uint64_t handle)
{
    core_worker_t *w = core_worker_find_(c, handle);
    if (w)
        return w;
    w = jobq_calloc(1, sizeof *w);
    w->handle = handle;
    if (c->nworkers == c->capworkers) {
        c->capworkers = c->capworkers ? c->capworkers * 2 : 16;
        c->workers = jobq_realloc(c->workers, c->capworkers * sizeof *c->workers);
    }
    w->idx = c->nworkers;
    c->workers[c->nworkers++] = w;
    core_tab_insert(&c->wtab, s_handle_hash(c, handle), w);
    return w;
}

void
core_worker_free_(core_t *c, core_worker_t *w)
{
    JOBQ_ASSERT(w->nheld == 0);
    core_tab_remove(&c->wtab, s_handle_hash(c, w->handle), w);
    core_worker_t *last = c->workers[--c->nworkers];
    c->workers[w->idx] = last;
    last->idx = w->idx;
    jobq_free(w->held);
    jobq_free(w);
}

void
core_held_add_(core_worker_t *w, core_lease_t *l)
{
    if (w->nheld == w->capheld) {
        w->capheld = w->capheld ? w->capheld * 2 : 8;
        w->held = jobq_realloc(w->held, w->capheld * sizeof *w->held);
    }
    l->held_pos = w->nheld;
    w->held[w->nheld++] = l;
}

void
core_held_remove_(core_worker_t *w, core_lease_t *l)
{
    core_lease_t *last = w->held[--w->nheld];
    w->held[l->held_pos] = last;
    last->held_pos = l->held_pos;
}

/* ---- block cache ------------------------------------------------------------ */

/* Size class k holds blocks of S_CLASS_BYTES(k) bytes: glibc's malloc hands
 * out chunks in 16-byte steps with 8 bytes of header, so asking for 16k + 8
 * bytes costs no more memory than asking for any n in its class (W3 counts
 * bytes per queued job). */
#define S_CLASS_BYTES(k) (16u * (size_t)(k) + 8u)

/* Size class of an n-byte block, or -1 when it is not cached. */
static int
s_class(size_t n)
{
    if (n == 0 || n > S_CLASS_BYTES(CORE_CACHE_CLASSES - 1))
        return -1;
    return n <= 24 ? 1 : (int)((n - 8 + 15) / 16u);
}

void *
core_block_get_(core_t *c, size_t n)
{
    int k = s_class(n);
    if (k < 0 || !c->cache[k])
        return jobq_malloc(k < 0 ? n : S_CLASS_BYTES(k));
    void *p = c->cache[k];
    memcpy(&c->cache[k], p, sizeof(void *));
    c->ncache[k]--;
    return p;
}

void
core_block_put_(core_t *c, void *p, size_t n)
{
    int k = s_class(n);
    if (k < 0 || c->ncache[k] >= CORE_CACHE_KEEP) {
        jobq_free(p);
        return;
    }
    memcpy(p, &c->cache[k], sizeof(void *));
    c->cache[k] = p;
    c->ncache[k]++;
}

/* Frees every cached block. */
static void
s_cache_free(core_t *c)
{
    for (int k = 0; k < (int)CORE_CACHE_CLASSES; k++) {
        while (c->cache[k]) {
            void *p = c->cache[k];
            memcpy(&c->cache[k], p, sizeof(void *));
            jobq_free(p);
        }
        c->ncache[k] = 0;
    }
}

/* ---- results -------------------------------------------------------------- */

/* Builds the result of job j (output kept only for DONE) and indexes it by id. */
core_result_t *
core_result_new_(core_t *c, const core_job_t *j, jobq_status status, const core_outcome_t *o,
                 uint64_t submitter)
{
    uint32_t out_len = status == JOBQ_STATUS_DONE ? o->output_len : 0;
    core_result_t *r = core_block_get_(c, sizeof *r + out_len + o->error_len + j->unique_len);
    memset(r, 0, sizeof *r);
    r->id = j->id;
    r->submitter = submitter;
    r->finished_ms = r->kept_ms = c->now_ms;
    r->duration_us = o->duration_us;
    r->exit_code = o->exit_code;
    r->signal = o->signal;
    r->output_len = out_len;
    r->error_len = (uint16_t)o->error_len;
    r->queue = j->queue;
    r->attempts = (uint16_t)(j->attempt - j->free_attempts);
    r->unique_len = (uint8_t)j->unique_len;
    r->status = (uint8_t)status;
    r->last_status = (uint8_t)o->last_status;
    if (out_len)
        memcpy(r->data, o->output, out_len);
    if (o->error_len)
        memcpy(r->data + out_len, o->error, o->error_len);
    if (j->unique_len)
        memcpy(r->data + out_len + o->error_len, core_job_unique_(j), j->unique_len);
    core_tab_insert(&c->results, core_id_hash_(c, &r->id), r);
    return r;
}

/* Starts the retention of r. */
void
core_result_keep_(core_t *c, core_result_t *r)
{
    r->flags &= (uint8_t)~CORE_RES_PINNED;
    r->kept_ms = c->now_ms;
    core_fifo_push(&c->kept, r);
    c->result_bytes += core_result_bytes_(r);
}

/* Forgets result r: its id, its unique key (if it still holds it), its memory. */
void
core_result_drop_(core_t *c, core_result_t *r)
{
    if (r->flags & CORE_RES_PINNED) {
        c->npinned--;
    } else {
        core_fifo_remove(&c->kept, r->pos);
        c->result_bytes -= core_result_bytes_(r);
        if (c->hook)
            core_hook_id_(c, CORE_CH_FORGET, &r->id);
    }
    core_tab_remove(&c->results, core_id_hash_(c, &r->id), r);
    if (r->unique_len) {
        core_ukey_t k = {r->queue, r->unique_len, core_result_unique_(r)};
        core_tab_remove(&c->uniques, core_ukey_hash_(c, &k), (void *)((uintptr_t)r | 1u));
    }
    core_block_put_(c, r, sizeof *r + r->output_len + r->error_len + r->unique_len);
}

/* Drops the oldest retained results while over a retention bound. The ones
 * about to go are old, so not cached: look a few ahead and prefetch them. */
static void
s_results_prune(core_t *c)
{
    core_result_t *r;
    while ((r = core_fifo_front(&c->kept)) != NULL) {
        if (c->kept.live <= c->cfg.results_max && c->result_bytes <= c->cfg.result_bytes_max &&
            c->now_ms - r->kept_ms < c->cfg.result_age_ms)
            break;
        const core_result_t *ahead = core_fifo_at(&c->kept, c->kept.head + 8);
        if (ahead)
            __builtin_prefetch(ahead);
        ahead = core_fifo_at(&c->kept, c->kept.head + 4);
        if (ahead)
            core_tab_prefetch(&c->results, core_id_hash_(c, &ahead->id));
        core_result_drop_(c, r);
    }
}

/* Every call that changes the core starts here, so a result stored during one
 * call survives until the next one (its event can be served first). */
int64_t
core_now_(core_t *c, int64_t now_ms)
{
    if (now_ms > c->now_ms)
        c->now_ms = now_ms;
    s_results_prune(c);
    return c->now_ms;
}

/* ---- lifecycle ------------------------------------------------------------ */

void
core_config_init(core_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_queues = CORE_MAX_QUEUES_DEFAULT;
    cfg->max_jobs = CORE_MAX_JOBS_DEFAULT;
    cfg->max_bytes = CORE_MAX_BYTES_DEFAULT;
    cfg->backoff_base_ms = CORE_BACKOFF_BASE_DEFAULT_MS;
    cfg->backoff_max_ms = CORE_BACKOFF_MAX_DEFAULT_MS;
    cfg->backoff_jitter_pct = CORE_BACKOFF_JITTER_DEFAULT_PCT;
    cfg->results_max = CORE_RESULTS_MAX_DEFAULT;
    cfg->result_bytes_max = CORE_RESULT_BYTES_DEFAULT;
    cfg->result_age_ms = CORE_RESULT_AGE_DEFAULT_MS;
}

static int
s_config_ok(const core_config_t *g)
{
    return g->max_queues >= 1 && g->max_queues <= CORE_QUEUES_LIMIT && g->max_jobs >= 1 &&
           g->max_bytes >= 1 && g->backoff_base_ms >= 0 &&
           g->backoff_base_ms <= CORE_DELAY_MAX_MS && g->backoff_max_ms >= g->backoff_base_ms &&
           g->backoff_max_ms <= CORE_DELAY_MAX_MS && g->backoff_jitter_pct <= 100 &&
           g->result_age_ms >= 0;
}

core_t *
core_new(const core_config_t *cfg)
{
    core_config_t def;
    if (!cfg) {
        core_config_init(&def);
        cfg = &def;
    }
    if (!s_config_ok(cfg))
        return NULL;
    core_t *c = jobq_calloc(1, sizeof *c);
    c->cfg = *cfg;
    c->seed = cfg->seed;
    if (c->seed == 0) {
        jobq_id_t r;
        jobq_id_generate(&r);
        c->seed = core_id_hash_(c, &r) | 1u;
    }
    c->rng = s_mix(c->seed, 0x9e3779b97f4a7c15ull) | 1u;
    jobq_id_t r;
    jobq_id_generate(&r); /* the id prefix is random even with a fixed seed */
    memcpy(&c->id_prefix, r.b, 8);
    memcpy(&c->id_counter, r.b + 8, 8);
    core_tab_init(&c->jobs, s_tab_id_hash, c);
    core_tab_init(&c->results, s_tab_id_hash, c);
    core_tab_init(&c->uniques, s_tab_ukey_hash, c);
    core_tab_init(&c->names, s_tab_name_hash, c);
    core_tab_init(&c->levels, s_tab_level_hash, c);
    core_tab_init(&c->wtab, s_tab_worker_hash, c);
    core_heap_init(&c->delays, s_delay_less, s_job_setpos);
    core_heap_init(&c->leases, s_lease_less, s_lease_setpos);
    core_fifo_init(&c->kept, s_result_setpos);
    return c;
}

void
core_destroy(core_t **self_p)
{
    JOBQ_ASSERT(self_p);
    core_t *c = *self_p;
    if (!c)
        return;
    c->hook = NULL;
    uint32_t cur = 0;
    core_job_t *j;
    while ((j = core_tab_next(&c->jobs, &cur)) != NULL) {
        if (j->state == JOBQ_STATE_RESERVED)
            jobq_free(j->u.lease);
        jobq_free(j);
    }
    cur = 0;
    core_result_t *r;
    while ((r = core_tab_next(&c->results, &cur)) != NULL)
        jobq_free(r);
    cur = 0;
    core_level_t *l;
    while ((l = core_tab_next(&c->levels, &cur)) != NULL) {
        core_fifo_fini(&l->fifo);
        jobq_free(l);
    }
    for (uint32_t i = 0; i < c->nqueues; i++) {
        core_queue_t *q = c->queues[i];
        if (q->spare)
            core_fifo_fini(&q->spare->fifo);
        jobq_free(q->spare);
        core_heap_fini(&q->levels);
        core_fifo_fini(&q->dead);
        jobq_free(q);
    }
    for (uint32_t i = 0; i < c->nworkers; i++) {
        jobq_free(c->workers[i]->held);
        jobq_free(c->workers[i]);
    }
    core_tab_t *tabs[] = {&c->jobs, &c->results, &c->uniques, &c->names, &c->levels, &c->wtab};
    for (size_t i = 0; i < sizeof tabs / sizeof tabs[0]; i++)
        core_tab_fini(tabs[i]);
    core_heap_fini(&c->delays);
    core_heap_fini(&c->leases);
    core_fifo_fini(&c->kept);
    jobq_free(c->queues);
    jobq_free(c->workers);
    jobq_free(c->paused);
    jobq_free(c->events);
    s_cache_free(c);
    jobq_free(c);
    *self_p = NULL;
}

/* Writes the next core-assigned id: a random 64-bit prefix drawn once per core
 * (jobq_id_generate, at core_new) and a splitmix64 of a counter: unique across
 * cores and restarts without a system call per id (jobq_id_generate calls
 * getpid() each time, about 1.5 us here). A peer can predict the next ids;
 * that is harmless, as core_submit checks every id it draws and draws again
 * if a client took it first. */
void
core_id_next_(core_t *c, jobq_id_t *id)
{
    uint64_t z = ++c->id_counter + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    memcpy(id->b, &c->id_prefix, 8);
    memcpy(id->b + 8, &z, 8);
}
