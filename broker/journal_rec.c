/*
 * broker/journal_rec.c: framing and encoding of journal records (the layout
 * is in journal_int.h). Every encoder appends one sealed record to a buffer;
 * times go to disk as wall-clock milliseconds so that delays and retention
 * survive a restart.
 */
#include "broker/journal_int.h"
#include "common/alloc.h"
#include "common/crc32c.h"

static void
s_reserve(jrn_buf_t *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap < b->len + more)
        cap *= 2;
    b->p = jobq_realloc(b->p, cap);
    b->cap = cap;
}

unsigned char *
jrn_rec_begin(jrn_buf_t *b, unsigned type, uint32_t len)
{
    size_t total = (size_t)JRN_ALIGN(JRN_REC_HDR + (uint64_t)len);
    s_reserve(b, total);
    unsigned char *h = b->p + b->len;
    memset(h, 0, total);
    jrn_put32(h, len);
    h[4] = (unsigned char)type;
    b->len += total;
    return h + JRN_REC_HDR;
}

void
jrn_rec_seal(jrn_buf_t *b, size_t at)
{
    unsigned char *h = b->p + at;
    uint32_t len = jrn_get32(h);
    jrn_put32(h + 8, jobq_crc32c(0, h, 8));
    jrn_put32(h + 12, jobq_crc32c(0, h + JRN_REC_HDR, len));
}

void
jrn_seg_header(unsigned char *out, uint64_t seq)
{
    memset(out, 0, JRN_SEG_HDR);
    memcpy(out, JRN_MAGIC, 8);
    jrn_put32(out + 8, JRN_VERSION);
    jrn_put32(out + 12, JRN_SEG_HDR);
    jrn_put64(out + 16, seq);
    jrn_put32(out + 24, jobq_crc32c(0, out, 24));
}

static int64_t
s_wall(int64_t mono, int64_t off_ms)
{
    if (mono == CORE_FOREVER)
        return INT64_MAX;
    return mono + off_ms;
}

uint64_t
jrn_submit_size(uint32_t queue_len, uint32_t unique_len, uint32_t payload_len)
{
    return JRN_ALIGN(JRN_REC_HDR + (uint64_t)JRN_SUBMIT_FIXED + queue_len + unique_len +
                     payload_len);
}

void
jrn_enc_submit(jrn_buf_t *b, const core_job_view_t *v, int64_t off_ms)
{
    size_t at = b->len;
    uint32_t len = JRN_SUBMIT_FIXED + v->queue_len + v->unique_len + v->payload_len;
    unsigned char *p = jrn_rec_begin(b, JRN_SUBMIT, len);
    memcpy(p, &v->id, 16);
    jrn_put64(p + 16, v->submitter);
    jrn_put64(p + 24,
              (uint64_t)(v->state == JOBQ_STATE_DELAYED ? s_wall(v->ready_at_ms, off_ms) : 0));
    jrn_put32(p + 32, v->priority);
    jrn_put32(p + 36, v->ttr_ms);
    jrn_put32(p + 40, v->max_attempts);
    jrn_put32(p + 44, v->attempt);
    jrn_put32(p + 48, v->attempts_used);
    p[52] = (unsigned char)v->state;
    p[53] = (unsigned char)v->queue_len;
    p[54] = (unsigned char)v->unique_len;
    jrn_put32(p + 56, v->payload_len);
    jrn_put32(p + 60, v->backoff_ms);
    unsigned char *q = p + JRN_SUBMIT_FIXED;
    memcpy(q, v->queue, v->queue_len);
    q += v->queue_len;
    if (v->unique_len)
        memcpy(q, v->unique, v->unique_len);
    q += v->unique_len;
    if (v->payload_len)
        memcpy(q, v->payload, v->payload_len);
    jrn_rec_seal(b, at);
}

void
jrn_enc_state(jrn_buf_t *b, const core_job_view_t *v, int64_t off_ms)
{
    size_t at = b->len;
    unsigned char *p = jrn_rec_begin(b, JRN_STATE, JRN_STATE_FIXED);
    memcpy(p, &v->id, 16);
    jrn_put64(p + 16,
              (uint64_t)(v->state == JOBQ_STATE_DELAYED ? s_wall(v->ready_at_ms, off_ms) : 0));
    jrn_put32(p + 24, v->attempt);
    jrn_put32(p + 28, v->attempts_used);
    p[32] = (unsigned char)v->state;
    jrn_rec_seal(b, at);
}

void
jrn_enc_result(jrn_buf_t *b, unsigned type, const core_result_view_t *r, const void *unique,
               uint32_t unique_len, int64_t off_ms)
{
    size_t at = b->len;
    uint32_t len = JRN_RESULT_FIXED + r->queue_len + unique_len + r->output_len + r->error_len;
    unsigned char *p = jrn_rec_begin(b, type, len);
    memcpy(p, &r->id, 16);
    jrn_put64(p + 16, r->submitter);
    jrn_put64(p + 24, (uint64_t)s_wall(r->finished_ms, off_ms));
    jrn_put64(p + 32, r->duration_us);
    jrn_put32(p + 40, (uint32_t)r->exit_code);
    jrn_put32(p + 44, (uint32_t)r->signal);
    jrn_put32(p + 48, r->attempts);
    p[52] = (unsigned char)r->status;
    p[53] = (unsigned char)r->last_status;
    p[54] = (unsigned char)r->queue_len;
    p[55] = (unsigned char)unique_len;
    p[56] = (unsigned char)(r->delivered != 0);
    jrn_put32(p + 60, r->output_len);
    jrn_put32(p + 64, r->error_len);
    unsigned char *q = p + JRN_RESULT_FIXED;
    memcpy(q, r->queue, r->queue_len);
    q += r->queue_len;
    if (unique_len)
        memcpy(q, unique, unique_len);
    q += unique_len;
    if (r->output_len)
        memcpy(q, r->output, r->output_len);
    q += r->output_len;
    if (r->error_len)
        memcpy(q, r->error, r->error_len);
    jrn_rec_seal(b, at);
}

void
jrn_enc_id(jrn_buf_t *b, unsigned type, const jobq_id_t *id, int64_t wall_ms)
{
    size_t at = b->len;
    unsigned char *p = jrn_rec_begin(b, type, type == JRN_DELETE ? JRN_DELETE_LEN : JRN_FORGET_LEN);
    memcpy(p, id, 16);
    if (type == JRN_DELETE)
        jrn_put64(p + 16, (uint64_t)wall_ms);
    jrn_rec_seal(b, at);
}

void
jrn_enc_pause(jrn_buf_t *b, const char *q, uint32_t qlen, int64_t until_ms, int64_t off_ms)
{
    size_t at = b->len;
    unsigned char *p = jrn_rec_begin(b, JRN_PAUSE, JRN_PAUSE_FIXED + qlen);
    jrn_put64(p, (uint64_t)(until_ms == 0 ? 0 : s_wall(until_ms, off_ms)));
    p[8] = (unsigned char)qlen;
    memcpy(p + JRN_PAUSE_FIXED, q, qlen);
    jrn_rec_seal(b, at);
}

uint64_t
journal_submit_size(uint32_t queue_len, uint32_t unique_len, uint32_t payload_len)
{
    return jrn_submit_size(queue_len, unique_len, payload_len);
}
