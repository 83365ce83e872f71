/*
 * common/wire_fast.c: the direct encode and decode paths for job and result
 * maps (private to common/wire.c; see common/wire_fast.h).
 *
 * The broker encodes and decodes one job or result map per job it handles,
 * so these read and write them without the descriptor tables of wire.c. They
 * accept only plainly valid maps: for anything else they return 0 and
 * wire.c's generic path handles the map, failing with the exact error text.
 * Both paths write the same bytes and decode to the same records
 * (test_wire's corpus re-encoding test and fuzz_frame check it).
 */
#include "common/wire_fast.h"
#include "common/mpack.h"
#include "jobq/errors.h"

#include <string.h>

/* ---- decoding: the fast paths for jobs and results ---------------------- */

/* Like the encoder's, these read plainly valid job and result maps directly;
 * anything else (a wrong type, a value out of range, a duplicate or missing
 * key) makes them return 0 and the generic s_dec_map decodes the map again,
 * failing with the exact error text. Unknown keys are skipped by both. */

/* Whether key o is the str lit (given with its length). */
#define S_IS(o, lit)                                                                               \
    ((o)->via.str.size == sizeof(lit) - 1 && memcmp((o)->via.str.ptr, (lit), sizeof(lit) - 1) == 0)

/* A uint within max into *v. */
static int
s_u(const msgpack_object *o, uint64_t max, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return 0;
    *v = o->via.u64;
    return 1;
}

/* A str (is_str) or bin of at most max bytes; empty gives (NULL, 0). */
static int
s_sl(const msgpack_object *o, int is_str, uint32_t max, const void **p, uint32_t *n)
{
    if (o->type != (is_str ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN) || o->via.str.size > max)
        return 0;
    *n = o->via.str.size;
    *p = *n ? o->via.str.ptr : NULL;
    return 1;
}

static int
s_i32(const msgpack_object *o, int32_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT32_MAX)
        *v = (int32_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= INT32_MIN)
        *v = (int32_t)o->via.i64;
    else
        return 0;
    return 1;
}

/* Decodes a job map into job (initialised by the caller); 1 on success.
 * (qok, qok_len) is the last queue name found valid in this frame. */
int
wire_dec_job_fast_(const msgpack_object *o, jobq_job_t *j, const char **qok, uint32_t *qok_len)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return 0;
    uint32_t seen = 0, bit;
    uint64_t v = 0;
    const void *p = NULL;
    for (uint32_t k = 0; k < o->via.map.size; k++) {
        const msgpack_object *key = &o->via.map.ptr[k].key, *val = &o->via.map.ptr[k].val;
        int ok = 1;
        if (key->type != MSGPACK_OBJECT_STR)
            return 0;
        if (S_IS(key, "q")) {
            bit = 1u << 0;
            ok = s_sl(val, 1, JOBQ_QUEUE_NAME_MAX, &p, &j->queue_len) && j->queue_len > 0;
            j->queue = p;
            if (ok && (j->queue_len != *qok_len || memcmp(j->queue, *qok, j->queue_len) != 0)) {
                ok = jobq_queue_name_valid(j->queue, j->queue_len);
                *qok = j->queue;
                *qok_len = ok ? j->queue_len : 0;
            }
        } else if (S_IS(key, "p")) {
            bit = 1u << 1;
            ok = s_sl(val, 0, JOBQ_PAYLOAD_MAX, &j->payload, &j->payload_len);
        } else if (S_IS(key, "id")) {
            bit = 1u << 2;
            ok = val->type == MSGPACK_OBJECT_BIN && val->via.bin.size == sizeof j->id.b;
            if (ok)
                memcpy(j->id.b, val->via.bin.ptr, sizeof j->id.b);
        } else if (S_IS(key, "att")) {
            bit = 1u << 3;
            ok = s_u(val, UINT32_MAX, &v);
            j->attempt = (uint32_t)v;
        } else if (S_IS(key, "pri")) {
            bit = 1u << 4;
            ok = s_u(val, UINT32_MAX, &v);
            j->priority = (uint32_t)v;
        } else if (S_IS(key, "ttr")) {
            bit = 1u << 5;
            ok = s_u(val, UINT32_MAX, &v) && v >= 1;
            j->ttr_ms = (uint32_t)v;
        } else if (S_IS(key, "max")) {
            bit = 1u << 6;
            ok = s_u(val, UINT32_MAX, &v) && v >= 1;
            j->max_attempts = (uint32_t)v;
        } else if (S_IS(key, "delay")) {
            bit = 1u << 7;
            ok = s_u(val, UINT64_MAX, &j->delay_ms);
        } else if (S_IS(key, "uniq")) {
            bit = 1u << 8;
            ok = s_sl(val, 1, JOBQ_UNIQUE_KEY_MAX, &p, &j->unique_len);
            j->unique = p;
        } else if (S_IS(key, "bo")) {
            bit = 1u << 9;
            ok = s_u(val, UINT32_MAX, &v);
            j->backoff_ms = (uint32_t)v;
        } else {
            continue; /* unknown keys are skipped */
        }
        if (!ok || (seen & bit))
            return 0;
        seen |= bit;
    }
    return (seen & 1u) != 0; /* q is required */
}

/* Decodes a result map into r (initialised by the caller); 1 on success. */
int
wire_dec_result_fast_(const msgpack_object *o, jobq_result_t *r)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return 0;
    uint32_t seen = 0, bit;
    uint64_t v = 0;
    const void *p = NULL;
    for (uint32_t k = 0; k < o->via.map.size; k++) {
        const msgpack_object *key = &o->via.map.ptr[k].key, *val = &o->via.map.ptr[k].val;
        int ok = 1;
        if (key->type != MSGPACK_OBJECT_STR)
            return 0;
        if (S_IS(key, "id")) {
            bit = 1u << 0;
            ok = val->type == MSGPACK_OBJECT_BIN && val->via.bin.size == sizeof r->id.b;
            if (ok)
                memcpy(r->id.b, val->via.bin.ptr, sizeof r->id.b);
        } else if (S_IS(key, "att")) {
            bit = 1u << 1;
            ok = s_u(val, UINT32_MAX, &v);
            r->attempt = (uint32_t)v;
        } else if (S_IS(key, "st")) {
            bit = 1u << 2;
            ok = s_u(val, JOBQ_STATUS_COUNT_ - 1, &v);
            r->status = (jobq_status)v;
        } else if (S_IS(key, "exit")) {
            bit = 1u << 3;
            ok = s_i32(val, &r->exit_code);
        } else if (S_IS(key, "sig")) {
            bit = 1u << 4;
            ok = s_i32(val, &r->signal);
        } else if (S_IS(key, "dur")) {
            bit = 1u << 5;
            ok = s_u(val, UINT64_MAX, &r->duration_us);
        } else if (S_IS(key, "out")) {
            bit = 1u << 6;
            ok = s_sl(val, 0, JOBQ_PAYLOAD_MAX, &r->output, &r->output_len);
        } else if (S_IS(key, "err")) {
            bit = 1u << 7;
            ok = s_sl(val, 1, JOBQ_ERROR_TEXT_MAX, &p, &r->error_len);
            r->error = p;
        } else {
            continue;
        }
        if (!ok || (seen & bit))
            return 0;
        seen |= bit;
    }
    return (seen & 7u) == 7u; /* id, att and st are required */
}

/* ---- encoding: the fast paths for jobs and results ---------------------- */

/* The broker encodes one job or result map per job it handles, so these two
 * write them directly, with the checks that matter for valid records. Any
 * value the fast check does not accept goes to the generic s_enc_map, which
 * fails with the exact error text; the bytes written are the same either
 * way (test_wire and fuzz_frame compare them). */

/* Appends a key given as a fixstr (the key's bytes with their header, the
 * header in octal: "\242id" is fixstr(2) "id"). */
#define S_KEY(pk, lit) mpack_body((pk), (lit), sizeof(lit) - 1)
/* Appends a key and its value, written by mpack_KIND(pk, args...). */
#define S_KV(pk, lit, kind, ...) (S_KEY(pk, lit), mpack_##kind((pk), __VA_ARGS__))

/* A slice that the generic check accepts: within max, not NULL when set. */
static int
s_slice_ok(const void *p, uint32_t n, uint32_t max)
{
    return n <= max && (n == 0 || p != NULL);
}

/* Returns 1 and packs job when every field is plainly valid; else 0 and
 * writes nothing. *qok caches the last queue name found valid. */
int
wire_enc_job_fast_(wire_buf_t *pk, const jobq_job_t *j, const void **qok, uint32_t *qok_len)
{
    if (j->queue_len < 1 || !s_slice_ok(j->payload, j->payload_len, JOBQ_PAYLOAD_MAX) ||
        !s_slice_ok(j->unique, j->unique_len, JOBQ_UNIQUE_KEY_MAX) || j->ttr_ms < 1 ||
        j->max_attempts < 1 || !j->queue)
        return 0;
    if (j->queue != *qok || j->queue_len != *qok_len) {
        if (!jobq_queue_name_valid(j->queue, j->queue_len))
            return 0;
        *qok = j->queue;
        *qok_len = j->queue_len;
    }
    int id = !jobq_id_is_zero(&j->id);
    unsigned n = (unsigned)id + 1 + (j->payload_len > 0) + (j->priority != JOBQ_PRIORITY_DEFAULT) +
                 (j->delay_ms != 0) + (j->ttr_ms != JOBQ_TTR_DEFAULT_MS) +
                 (j->max_attempts != JOBQ_ATTEMPTS_DEFAULT) + (j->attempt != 0) +
                 (j->unique_len > 0) + (j->backoff_ms != 0);
    mpack_map(pk, n);
    if (id)
        S_KV(pk, "\242id", bin, j->id.b, sizeof j->id.b);
    S_KV(pk, "\241q", str, j->queue, j->queue_len);
    if (j->payload_len)
        S_KV(pk, "\241p", bin, j->payload, j->payload_len);
    if (j->priority != JOBQ_PRIORITY_DEFAULT)
        S_KV(pk, "\243pri", uint, j->priority);
    if (j->delay_ms)
        S_KV(pk, "\245delay", uint, j->delay_ms);
    if (j->ttr_ms != JOBQ_TTR_DEFAULT_MS)
        S_KV(pk, "\243ttr", uint, j->ttr_ms);
    if (j->max_attempts != JOBQ_ATTEMPTS_DEFAULT)
        S_KV(pk, "\243max", uint, j->max_attempts);
    if (j->attempt)
        S_KV(pk, "\243att", uint, j->attempt);
    if (j->unique_len)
        S_KV(pk, "\244uniq", str, j->unique, j->unique_len);
    if (j->backoff_ms)
        S_KV(pk, "\242bo", uint, j->backoff_ms);
    return 1;
}

/* Returns 1 and packs r when every field is plainly valid; else 0. */
int
wire_enc_result_fast_(wire_buf_t *pk, const jobq_result_t *r)
{
    if ((unsigned)r->status >= JOBQ_STATUS_COUNT_ ||
        !s_slice_ok(r->output, r->output_len, JOBQ_PAYLOAD_MAX) ||
        !s_slice_ok(r->error, r->error_len, JOBQ_ERROR_TEXT_MAX))
        return 0;
    unsigned n = 3 + (r->exit_code != 0) + (r->signal != 0) + (r->duration_us != 0) +
                 (r->output_len > 0) + (r->error_len > 0);
    mpack_map(pk, n);
    S_KV(pk, "\242id", bin, r->id.b, sizeof r->id.b);
    S_KV(pk, "\243att", uint, r->attempt);
    S_KV(pk, "\242st", uint, (uint64_t)r->status);
    if (r->exit_code)
        S_KV(pk, "\244exit", int, r->exit_code);
    if (r->signal)
        S_KV(pk, "\243sig", int, r->signal);
    if (r->duration_us)
        S_KV(pk, "\243dur", uint, r->duration_us);
    if (r->output_len)
        S_KV(pk, "\243out", bin, r->output, r->output_len);
    if (r->error_len)
        S_KV(pk, "\243err", str, r->error, r->error_len);
    return 1;
}
