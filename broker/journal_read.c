/*
 * broker/journal_read.c: reading the journal back. journal_scan_buf checks a
 * segment image record by record; the replay table applies the records in
 * order (each record says what a job became, so applying one twice, or a
 * snapshot after the records it summarises, gives the same table) and then
 * loads the survivors into a core.
 *
 * Tail rule: a record that fails its checks (framing, header or body CRC) ends
 * the segment. It is a torn or zero-filled tail when no valid record follows it
 * at any 8-byte aligned offset; else the segment is corrupt at that offset
 * (JOBQ_ECORRUPT). Nothing here trusts a length before its CRC matched, and
 * nothing reads outside the image.
 */
#include "broker/journal_int.h"
#include "broker/core_tab.h"
#include "common/alloc.h"
#include "common/crc32c.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdint.h>

/* ---- scanning ------------------------------------------------------------- */

/* 1 when a whole valid record starts at off; *total gets its framed size. */
static int
s_valid_at(const unsigned char *d, size_t len, size_t off, uint64_t *total)
{
    if (len - off < JRN_REC_HDR)
        return 0;
    const unsigned char *h = d + off;
    if (jrn_get32(h + 8) != jobq_crc32c(0, h, 8))
        return 0;
    uint32_t blen = jrn_get32(h);
    if (h[4] == 0 || h[4] > JRN_TYPE_MAX_ || h[5] || h[6] || h[7] || blen > JRN_REC_MAX)
        return 0;
    if (len - off - JRN_REC_HDR < blen)
        return 0;
    if (jrn_get32(h + 12) != jobq_crc32c(0, h + JRN_REC_HDR, blen))
        return 0;
    *total = JRN_ALIGN(JRN_REC_HDR + (uint64_t)blen);
    /* The padding must be zero too (and present, but for the last record). */
    for (uint64_t i = JRN_REC_HDR + (uint64_t)blen; i < *total && off + i < len; i++)
        if (h[i] != 0)
            return 0;
    return 1;
}

int
journal_scan_buf(const unsigned char *d, size_t len, journal_record_fn fn, void *arg,
                 journal_scan_t *scan)
{
    memset(scan, 0, sizeof *scan);
    if (len < JRN_SEG_HDR || memcmp(d, JRN_MAGIC, 8) != 0 ||
        jrn_get32(d + 24) != jobq_crc32c(0, d, 24) || jrn_get32(d + 8) != JRN_VERSION ||
        jrn_get32(d + 12) != JRN_SEG_HDR)
        return JOBQ_EVERSION;
    size_t off = JRN_SEG_HDR;
    uint64_t total;
    while (off < len && s_valid_at(d, len, off, &total)) {
        const unsigned char *h = d + off;
        scan->records++;
        if (fn && fn(arg, h[4], h + JRN_REC_HDR, jrn_get32(h)) != 0)
            break;
        off = total > len - off ? len : off + (size_t)total;
    }
    scan->end = off;
    if (off >= len)
        return JOBQ_OK;
    for (size_t at = off + 8; at + JRN_REC_HDR <= len; at += 8) {
        if (s_valid_at(d, len, at, &total)) {
            scan->bad_at = off;
            return JOBQ_ECORRUPT;
        }
    }
    scan->torn = 1;
    return JOBQ_OK;
}

/* ---- the replay table ----------------------------------------------------- */

typedef struct s_ent {
    jobq_id_t id; /* first: hashed as an id */
    uint8_t live; /* a job exists (else only a result, or nothing) */
    uint8_t state;
    uint32_t attempt, used;
    int64_t ready_wall;
    unsigned char *sub; /* the last SUBMIT body */
    uint32_t sub_len;
    unsigned char *res; /* the last DONE/DEAD body */
    uint32_t res_len;
} s_ent_t;

typedef struct s_pause {
    char q[JOBQ_QUEUE_NAME_MAX];
    uint32_t qlen;
    int64_t until_wall;
} s_pause_t;

struct journal_replay {
    core_tab_t tab;
    s_ent_t **ents; /* in order of first appearance */
    size_t nents, cap;
    s_pause_t *pauses;
    size_t npauses;
    uint64_t skipped;
};

static uint64_t
s_hash_id(const jobq_id_t *id)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, (const unsigned char *)id + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

static uint64_t
s_tab_hash(const void *elem, const void *ctx)
{
    (void)ctx;
    return s_hash_id((const jobq_id_t *)elem);
}

static int
s_tab_eq(const void *elem, const void *key)
{
    return memcmp(elem, key, sizeof(jobq_id_t)) == 0;
}

journal_replay_t *
journal_replay_new(void)
{
    journal_replay_t *rp = jobq_calloc(1, sizeof *rp);
    core_tab_init(&rp->tab, s_tab_hash, NULL);
    return rp;
}

void
journal_replay_destroy(journal_replay_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    journal_replay_t *rp = *self_p;
    for (size_t i = 0; i < rp->nents; i++) {
        jobq_free(rp->ents[i]->sub);
        jobq_free(rp->ents[i]->res);
        jobq_free(rp->ents[i]);
    }
    jobq_free(rp->ents);
    jobq_free(rp->pauses);
    core_tab_fini(&rp->tab);
    jobq_free(rp);
    *self_p = NULL;
}

static s_ent_t *
s_find(journal_replay_t *rp, const unsigned char *idp)
{
    jobq_id_t id;
    memcpy(&id, idp, sizeof id);
    return core_tab_find(&rp->tab, s_hash_id(&id), s_tab_eq, &id);
}

static s_ent_t *
s_get(journal_replay_t *rp, const unsigned char *idp)
{
    s_ent_t *e = s_find(rp, idp);
    if (e)
        return e;
    e = jobq_calloc(1, sizeof *e);
    memcpy(&e->id, idp, sizeof e->id);
    core_tab_insert(&rp->tab, s_hash_id(&e->id), e);
    if (rp->nents == rp->cap) {
        rp->cap = rp->cap ? rp->cap * 2 : 1024;
        rp->ents = jobq_realloc(rp->ents, rp->cap * sizeof *rp->ents);
    }
    rp->ents[rp->nents++] = e;
    return e;
}

static unsigned char *
s_dup(const unsigned char *p, uint32_t len)
{
    unsigned char *d = jobq_malloc(len ? len : 1);
    memcpy(d, p, len);
    return d;
}

/* Checks that a SUBMIT body's lengths add up. */
static int
s_submit_ok(const unsigned char *b, uint32_t len)
{
    if (len < JRN_SUBMIT_FIXED)
        return 0;
    uint64_t want = (uint64_t)JRN_SUBMIT_FIXED + b[53] + b[54] + jrn_get32(b + 56);
    return want == len && b[53] > 0 && b[52] <= JOBQ_STATE_DEAD;
}

static int
s_result_ok(const unsigned char *b, uint32_t len)
{
    if (len < JRN_RESULT_FIXED)
        return 0;
    uint64_t want =
        (uint64_t)JRN_RESULT_FIXED + b[54] + b[55] + jrn_get32(b + 60) + jrn_get32(b + 64);
    return want == len && b[54] > 0;
}

static void
s_set_res(s_ent_t *e, const unsigned char *b, uint32_t len)
{
    jobq_free(e->res);
    e->res = s_dup(b, len);
    e->res_len = len;
}

/* DELETE of a live job that was not DEAD: a DEAD result "deleted". */
static void
s_deleted_result(s_ent_t *e, int64_t wall)
{
    static const char why[] = "deleted";
    const unsigned char *s = e->sub;
    core_result_view_t r;
    memset(&r, 0, sizeof r);
    memcpy(&r.id, s, 16);
    r.submitter = jrn_get64(s + 16);
    r.queue = (const char *)s + JRN_SUBMIT_FIXED;
    r.queue_len = s[53];
    r.status = JOBQ_STATUS_DEAD;
    r.last_status = JOBQ_STATUS_DEAD;
    r.attempts = e->used;
    r.error = why;
    r.error_len = sizeof why - 1;
    r.finished_ms = wall;
    jrn_buf_t b = {0};
    jrn_enc_result(&b, JRN_DEAD, &r, s + JRN_SUBMIT_FIXED + s[53], s[54], 0);
    s_set_res(e, b.p + JRN_REC_HDR, jrn_get32(b.p));
    jobq_free(b.p);
}

static void
s_on_pause(journal_replay_t *rp, const unsigned char *b, uint32_t len)
{
    uint32_t qlen = b[8];
    if (len != JRN_PAUSE_FIXED + qlen || qlen == 0 || qlen > JOBQ_QUEUE_NAME_MAX) {
        rp->skipped++;
        return;
    }
    size_t i = 0;
    while (i < rp->npauses &&
           !(rp->pauses[i].qlen == qlen && memcmp(rp->pauses[i].q, b + JRN_PAUSE_FIXED, qlen) == 0))
        i++;
    if (i == rp->npauses) {
        rp->pauses = jobq_realloc(rp->pauses, (rp->npauses + 1) * sizeof *rp->pauses);
        rp->npauses++;
        memcpy(rp->pauses[i].q, b + JRN_PAUSE_FIXED, qlen);
        rp->pauses[i].qlen = qlen;
    }
    rp->pauses[i].until_wall = (int64_t)jrn_get64(b);
}

int
journal_replay_record(void *arg, unsigned type, const unsigned char *b, uint32_t len)
{
    journal_replay_t *rp = arg;
    s_ent_t *e;
    switch (type) {
    case JRN_SUBMIT:
        if (!s_submit_ok(b, len))
            break;
        e = s_get(rp, b);
        jobq_free(e->sub);
        jobq_free(e->res);
        e->res = NULL;
        e->sub = s_dup(b, len);
        e->sub_len = len;
        e->live = 1;
        e->state = b[52];
        e->ready_wall = (int64_t)jrn_get64(b + 24);
        e->attempt = jrn_get32(b + 44);
        e->used = jrn_get32(b + 48);
        return 0;
    case JRN_STATE:
        if (len != JRN_STATE_FIXED || !(e = s_find(rp, b)) || !e->live || b[32] > JOBQ_STATE_DEAD)
            break;
        e->state = b[32];
        e->ready_wall = (int64_t)jrn_get64(b + 16);
        e->attempt = jrn_get32(b + 24);
        e->used = jrn_get32(b + 28);
        return 0;
    case JRN_DONE:
    case JRN_DEAD:
        if (!s_result_ok(b, len))
            break;
        e = s_get(rp, b);
        s_set_res(e, b, len);
        e->used = jrn_get32(b + 48);
        if (type == JRN_DONE || !e->live) {
            e->live = 0;
            jobq_free(e->sub);
            e->sub = NULL;
        } else {
            e->state = JOBQ_STATE_DEAD;
        }
        return 0;
    case JRN_DELETE:
        if (len != JRN_DELETE_LEN || !(e = s_find(rp, b)) || !e->live)
            break;
        if (e->state != JOBQ_STATE_DEAD || !e->res)
            s_deleted_result(e, (int64_t)jrn_get64(b + 16));
        e->live = 0;
        jobq_free(e->sub);
        e->sub = NULL;
        return 0;
    case JRN_FORGET:
        if (len != JRN_FORGET_LEN || !(e = s_find(rp, b)) || e->live)
            break;
        jobq_free(e->res);
        e->res = NULL;
        return 0;
    case JRN_PAUSE:
        if (len < JRN_PAUSE_FIXED)
            break;
        s_on_pause(rp, b, len);
        return 0;
    default:
        break;
    }
    rp->skipped++;
    return 0;
}

void
journal_replay_counts(const journal_replay_t *rp, uint64_t *jobs, uint64_t *results)
{
    *jobs = *results = 0;
    for (size_t i = 0; i < rp->nents; i++) {
        *jobs += rp->ents[i]->live;
        *results += !rp->ents[i]->live && rp->ents[i]->res;
    }
}

/* ---- loading into a core -------------------------------------------------- */

/* Converts a wall-clock time to the core's clock. */
static int64_t
s_mono(int64_t wall, int64_t now_ms, int64_t now_wall)
{
    if (wall == INT64_MAX)
        return CORE_FOREVER;
    return now_ms + (wall - now_wall);
}

static void
s_res_view(const unsigned char *b, core_result_view_t *r, const void **unique, uint32_t *ulen,
           int64_t now_ms, int64_t now_wall)
{
    memset(r, 0, sizeof *r);
    memcpy(&r->id, b, 16);
    r->submitter = 0; /* the submitter's connection is gone: results by WAIT only */
    r->finished_ms = s_mono((int64_t)jrn_get64(b + 24), now_ms, now_wall);
    r->duration_us = jrn_get64(b + 32);
    r->exit_code = (int32_t)jrn_get32(b + 40);
    r->signal = (int32_t)jrn_get32(b + 44);
    r->attempts = jrn_get32(b + 48);
    r->status = (jobq_status)b[52];
    r->last_status = (jobq_status)b[53];
    r->queue_len = b[54];
    r->delivered = b[56] != 0;
    r->output_len = jrn_get32(b + 60);
    r->error_len = jrn_get32(b + 64);
    const unsigned char *q = b + JRN_RESULT_FIXED;
    r->queue = (const char *)q;
    *unique = b[55] ? q + b[54] : NULL;
    *ulen = b[55];
    r->output = r->output_len ? q + b[54] + b[55] : NULL;
    r->error = r->error_len ? (const char *)q + b[54] + b[55] + r->output_len : NULL;
}

/* Restores one live job; returns 0 or -1 (refused, logged). */
static int
s_load_job(const s_ent_t *e, core_t *core, int64_t now_ms, int64_t now_wall)
{
    static const char crashed[] = "the broker stopped while the job ran";
    const unsigned char *s = e->sub;
    jobq_job_t job;
    memset(&job, 0, sizeof job);
    memcpy(&job.id, s, 16);
    job.queue = (const char *)s + JRN_SUBMIT_FIXED;
    job.queue_len = s[53];
    job.unique = s[54] ? (const char *)s + JRN_SUBMIT_FIXED + s[53] : NULL;
    job.unique_len = s[54];
    job.payload_len = jrn_get32(s + 56);
    job.payload = job.payload_len ? s + JRN_SUBMIT_FIXED + s[53] + s[54] : NULL;
    job.priority = jrn_get32(s + 32);
    job.ttr_ms = jrn_get32(s + 36);
    job.max_attempts = jrn_get32(s + 40);
    job.backoff_ms = jrn_get32(s + 60);
    uint32_t used = e->used + (e->state == JOBQ_STATE_RESERVED); /* a crashed attempt */
    int bury = e->state == JOBQ_STATE_DEAD || (job.max_attempts && used >= job.max_attempts);
    job.attempt = job.max_attempts && used >= job.max_attempts ? job.max_attempts - 1 : used;
    if (e->state == JOBQ_STATE_DELAYED && e->ready_wall > now_wall)
        job.delay_ms = (uint64_t)(e->ready_wall - now_wall) > (uint64_t)CORE_DELAY_MAX_MS
                           ? (uint64_t)CORE_DELAY_MAX_MS
                           : (uint64_t)(e->ready_wall - now_wall);
    int rc = core_submit(core, &job, 0, now_ms, NULL, NULL);
    if (rc == JOBQ_OK && bury) {
        core_result_view_t r;
        const void *u;
        uint32_t ul;
        jobq_status last = JOBQ_STATUS_CRASHED;
        const char *err = crashed;
        uint32_t elen = sizeof crashed - 1;
        if (e->state == JOBQ_STATE_DEAD && e->res) {
            s_res_view(e->res, &r, &u, &ul, now_ms, now_wall);
            last = r.last_status;
            err = r.error;
            elen = r.error_len;
        }
        rc = core_bury(core, &job.id, last, err, elen, now_ms);
        if (rc == JOBQ_OK && e->state == JOBQ_STATE_DEAD && e->res)
            rc = core_restore_dead_outcome(core, &job.id, r.exit_code, r.signal, r.duration_us,
                                           r.finished_ms);
    }
    uint32_t attempt = e->attempt > used ? e->attempt : used;
    if (rc == JOBQ_OK)
        rc = core_restore_attempts(core, &job.id, attempt, used);
    if (rc != JOBQ_OK) {
        LOG_WARN("journal: job could not be restored: %s", jobq_strerror(rc));
        return -1;
    }
    return 0;
}

uint64_t
journal_replay_load(journal_replay_t *rp, core_t *core, int64_t now_ms, int64_t now_wall)
{
    uint64_t refused = 0;
    for (size_t i = 0; i < rp->nents; i++) {
        const s_ent_t *e = rp->ents[i];
        if (e->live && e->sub) {
            refused += s_load_job(e, core, now_ms, now_wall) != 0;
        } else if (e->res) {
            core_result_view_t r;
            const void *u;
            uint32_t ul;
            s_res_view(e->res, &r, &u, &ul, now_ms, now_wall);
            int rc = core_restore_result(core, &r, u, ul, now_ms);
            if (rc != JOBQ_OK) {
                LOG_WARN("journal: result could not be restored: %s", jobq_strerror(rc));
                refused++;
            }
        }
    }
    for (size_t i = 0; i < rp->npauses; i++) {
        const s_pause_t *p = &rp->pauses[i];
        if (p->until_wall == 0)
            continue;
        int64_t until = s_mono(p->until_wall, now_ms, now_wall);
        if (until > now_ms && core_pause(core, p->q, p->qlen, until, now_ms) != JOBQ_OK)
            refused++;
    }
    if (rp->skipped)
        LOG_WARN("journal: %" PRIu64 " records did not apply (malformed or out of order)",
                 rp->skipped);
    return refused;
}
