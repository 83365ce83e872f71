/*
 * common/wire.c: the msgpack codec for broker messages (common/wire.h,
 * docs/PROTOCOL.md).
 *
 * Decoding runs in four steps: the frame length against max_frame, the raw
 * pre-scan (common/mpscan.c), the tree reader of common/mpack.h (msgpack-c's
 * object types, built into one array the pre-scan sized), then a schema walk
 * over that tree into a wire_msg_t. str and bin objects point into the input
 * bytes, so every slice of a decoded message points into the caller's buffer
 * and the tree is freed before wire_decode returns:
 * a decoded message holds exactly one allocation (owned_), which carries every
 * array of the message. Encoding appends to a wire_buf_t with the inline
 * writer of common/mpack.h.
 *
 * Invariants: nothing read from the wire reaches an assert; every error names
 * its field in msg->error; a failed decode holds no memory; a failed encode
 * leaves out->len as it was; what wire_encode accepts, wire_decode accepts.
 */
#include "common/wire.h"
#include "common/alloc.h"
#include "common/mpack.h"
#include "common/wire_fast.h"
#include "jobq/errors.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- field descriptors ----------------------------------------------- */

/* The value types of map fields. Slices are (pointer, uint32_t length) pairs
 * whose pointer member is a const char * or const void * (same representation,
 * which the memcpy accessors below rely on). */
typedef enum s_ftype {
    S_U32, /* uint32_t */
    S_U64, /* uint64_t */
    S_I32, /* int32_t */
    S_ST,  /* jobq_status */
    S_ID,  /* jobq_id_t, bin(16) on the wire */
    S_STR, /* slice, str */
    S_BIN, /* slice, bin */
    S_ANY, /* slice, bin or str (encoded as bin) */
    S_QN,  /* slice, str holding a valid queue name */
    S_ARR  /* body arrays: handled by s_arrays */
} s_ftype;

/* One key of a map: its type, whether every map must carry it, its range
 * (integers: lo..hi; slices: hi is the byte limit), the value an encoder
 * leaves out, and where the value lives in the C record. */
typedef struct s_field {
    const char *key;
    uint8_t type, req;
    uint64_t lo, hi, dflt;
    size_t off, len_off;
} s_field_t;

/* clang-format off */
#define S_INT(k, t, lo, hi, dflt, st, m) {k, t, 0, lo, hi, dflt, offsetof(st, m), 0}
#define S_SLICE(k, t, req, max, st, p, n) {k, t, req, 0, max, 0, offsetof(st, p), offsetof(st, n)}
#define S_ARRAY(k) {k, S_ARR, 0, 0, 0, 0, 0, 0}
/* clang-format on */
#define S_NFIELDS(a) ((int)(sizeof(a) / sizeof(a)[0]))
#define S_STACK_OBJS 64u /* tree objects wire_decode keeps on the stack */

static const s_field_t s_job_fields[] = {
    {"id", S_ID, 0, 0, 0, 0, offsetof(jobq_job_t, id), 0},
    S_SLICE("q", S_QN, 1, JOBQ_QUEUE_NAME_MAX, jobq_job_t, queue, queue_len),
    S_SLICE("p", S_BIN, 0, JOBQ_PAYLOAD_MAX, jobq_job_t, payload, payload_len),
    S_INT("pri", S_U32, 0, UINT32_MAX, JOBQ_PRIORITY_DEFAULT, jobq_job_t, priority),
    S_INT("delay", S_U64, 0, UINT64_MAX, 0, jobq_job_t, delay_ms),
    S_INT("ttr", S_U32, 1, UINT32_MAX, JOBQ_TTR_DEFAULT_MS, jobq_job_t, ttr_ms),
    S_INT("max", S_U32, 1, UINT32_MAX, JOBQ_ATTEMPTS_DEFAULT, jobq_job_t, max_attempts),
    S_INT("att", S_U32, 0, UINT32_MAX, 0, jobq_job_t, attempt),
    S_SLICE("uniq", S_STR, 0, JOBQ_UNIQUE_KEY_MAX, jobq_job_t, unique, unique_len),
    S_INT("bo", S_U32, 0, UINT32_MAX, 0, jobq_job_t, backoff_ms),
};

static const s_field_t s_result_fields[] = {
    {"id", S_ID, 1, 0, 0, 0, offsetof(jobq_result_t, id), 0},
    {"att", S_U32, 1, 0, UINT32_MAX, 0, offsetof(jobq_result_t, attempt), 0},
    {"st", S_ST, 1, 0, JOBQ_STATUS_COUNT_ - 1, 0, offsetof(jobq_result_t, status), 0},
    S_INT("exit", S_I32, 0, 0, 0, jobq_result_t, exit_code),
    S_INT("sig", S_I32, 0, 0, 0, jobq_result_t, signal),
    S_INT("dur", S_U64, 0, UINT64_MAX, 0, jobq_result_t, duration_us),
    S_SLICE("out", S_BIN, 0, JOBQ_PAYLOAD_MAX, jobq_result_t, output, output_len),
    S_SLICE("err", S_STR, 0, JOBQ_ERROR_TEXT_MAX, jobq_result_t, error, error_len),
};

enum { S_NBODY = 18, S_ALL_FIELDS = (1u << S_NBODY) - 1 };

/* Body keys, indexed by the bit number of their WIRE_F_* flag. */
static const s_field_t s_body_fields[S_NBODY] = {
    S_INT("req", S_U64, 0, UINT64_MAX, 0, wire_msg_t, req),
    S_SLICE("q", S_QN, 0, JOBQ_QUEUE_NAME_MAX, wire_msg_t, queue.ptr, queue.len),
    S_ARRAY("jobs"),
    S_ARRAY("results"),
    S_ARRAY("ids"),
    S_ARRAY("codes"),
    S_ARRAY("leases"),
    S_ARRAY("queues"),
    S_INT("credit", S_U32, 0, UINT32_MAX, 0, wire_msg_t, credit),
    S_INT("code", S_U32, 0, UINT32_MAX, 0, wire_msg_t, code),
    S_SLICE("msg", S_STR, 0, WIRE_TEXT_MAX, wire_msg_t, msg.ptr, msg.len),
    S_SLICE("name", S_STR, 0, WIRE_TEXT_MAX, wire_msg_t, name.ptr, name.len),
    S_SLICE("data", S_ANY, 0, WIRE_DATA_MAX, wire_msg_t, data.ptr, data.len),
    S_INT("timeout", S_U64, 0, UINT64_MAX, 0, wire_msg_t, timeout_ms),
    S_INT("n", S_U64, 0, UINT64_MAX, 0, wire_msg_t, count),
    S_INT("role", S_U32, WIRE_ROLE_PRODUCER, WIRE_ROLE_ADMIN, 0, wire_msg_t, role),
    S_INT("hb", S_U32, 0, UINT32_MAX, 0, wire_msg_t, hb_ms),
    S_INT("flags", S_U32, 0, UINT32_MAX, 0, wire_msg_t, flags),
};

/* Message type names, indexed by wire_type. */
static const char *const s_type_names[WIRE_TYPE_MAX_] = {
    NULL,       "HELLO",  "WELCOME",    "SUBMIT", "SUBMIT_OK",   "READY",
    "DELIVER",  "RESULT", "RESULT_OK",  "EXTEND", "HEARTBEAT",   "WAIT",
    "RESULTS",  "JOIN",   "JOIN_OK",    "STATS",  "STATS_REPLY", "STOP_WORKERS",
    "SENTINEL", "ERROR",  "DISCONNECT", "OK",     "ADMIN",       "REPORT"};

/* The body keys each message type must carry. */
static const uint32_t s_required[WIRE_TYPE_MAX_] = {
    [WIRE_HELLO] = WIRE_F_ROLE,
    [WIRE_WELCOME] = WIRE_F_HB,
    [WIRE_SUBMIT] = WIRE_F_REQ | WIRE_F_JOBS,
    [WIRE_SUBMIT_OK] = WIRE_F_REQ | WIRE_F_IDS | WIRE_F_CODES,
    [WIRE_READY] = WIRE_F_CREDIT,
    [WIRE_DELIVER] = WIRE_F_JOBS,
    [WIRE_RESULT] = WIRE_F_RESULTS,
    [WIRE_RESULT_OK] = WIRE_F_IDS | WIRE_F_CODES,
    [WIRE_EXTEND] = WIRE_F_LEASES | WIRE_F_TIMEOUT,
    [WIRE_WAIT] = WIRE_F_REQ | WIRE_F_IDS,
    [WIRE_RESULTS] = WIRE_F_RESULTS,
    [WIRE_JOIN] = WIRE_F_REQ | WIRE_F_QUEUE,
    [WIRE_JOIN_OK] = WIRE_F_REQ | WIRE_F_QUEUE,
    [WIRE_STATS] = WIRE_F_REQ,
    [WIRE_STATS_REPLY] = WIRE_F_REQ | WIRE_F_DATA,
    [WIRE_STOP_WORKERS] = WIRE_F_REQ,
    [WIRE_ERROR] = WIRE_F_CODE | WIRE_F_MSG,
    [WIRE_OK] = WIRE_F_REQ,
    [WIRE_ADMIN] = WIRE_F_REQ | WIRE_F_NAME,
    [WIRE_REPORT] = WIRE_F_DATA,
};

/* The array fields: element-count bounds and where count and pointer live. */
static const struct {
    uint32_t bit, min, max;
    size_t count_off, ptr_off;
} s_arrays[] = {
    {WIRE_F_JOBS, 1, WIRE_MAX_BATCH, offsetof(wire_msg_t, njobs), offsetof(wire_msg_t, jobs)},
    {WIRE_F_RESULTS, 1, WIRE_MAX_BATCH, offsetof(wire_msg_t, nresults),
     offsetof(wire_msg_t, results)},
    {WIRE_F_IDS, 0, WIRE_MAX_BATCH, offsetof(wire_msg_t, nids), offsetof(wire_msg_t, ids)},
    {WIRE_F_CODES, 0, WIRE_MAX_BATCH, offsetof(wire_msg_t, ncodes), offsetof(wire_msg_t, codes)},
    {WIRE_F_LEASES, 0, WIRE_MAX_BATCH, offsetof(wire_msg_t, nleases), offsetof(wire_msg_t, leases)},
    {WIRE_F_QUEUES, 0, WIRE_MAX_QUEUES, offsetof(wire_msg_t, nqueues),
     offsetof(wire_msg_t, queues)},
};
#define S_NARRAYS (sizeof s_arrays / sizeof s_arrays[0])

/* Returns the element count of s_arrays[i] in m. */
static uint32_t
s_count(const wire_msg_t *m, size_t i)
{
    return *(const uint32_t *)(const void *)((const char *)m + s_arrays[i].count_off);
}

/* Returns whether the array pointer of s_arrays[i] in m is set (all data
 * pointers share one representation here, which memcpy relies on). */
static int
s_has_ptr(const wire_msg_t *m, size_t i)
{
    const void *p;
    memcpy(&p, (const char *)m + s_arrays[i].ptr_off, sizeof p);
    return p != NULL;
}

static int
s_bit_index(uint32_t bit)
{
    return __builtin_ctz(bit);
}

const char *
wire_type_name(int type)
{
    if (type <= 0 || type >= WIRE_TYPE_MAX_)
        return "?";
    return s_type_names[type];
}

const char *
wire_field_name(uint32_t field)
{
    if (field == 0 || (field & (field - 1)) || (field & ~(uint32_t)S_ALL_FIELDS))
        return "?";
    return s_body_fields[s_bit_index(field)].key;
}

/* ---- messages and buffers ---------------------------------------------- */

void
wire_msg_init(wire_msg_t *msg, wire_type type)
{
    memset(msg, 0, sizeof *msg);
    msg->version = WIRE_VERSION;
    msg->type = type;
}

void
wire_msg_fini(wire_msg_t *msg)
{
    jobq_free(msg->owned_);
    memset(msg, 0, sizeof *msg);
}

void
wire_buf_fini(wire_buf_t *buf)
{
    jobq_free(buf->data);
    memset(buf, 0, sizeof *buf);
}

/* ---- error texts ------------------------------------------------------- */

/* Where a value sits: body.KEY, ARR[IDX] or ARR[IDX].KEY. */
typedef struct s_at {
    const char *arr; /* "jobs", "results", ... or NULL for a body field */
    uint32_t idx;
    const char *key; /* key inside the element, or NULL */
} s_at_t;

static int s_fail(wire_msg_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_failat(wire_msg_t *m, int code, s_at_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the formatted text into m->error and returns code. */
static int
s_fail(wire_msg_t *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->error, sizeof m->error, fmt, ap);
    va_end(ap);
    return code;
}

/* Writes "PATH: text" into m->error and returns code. */
static int
s_failat(wire_msg_t *m, int code, s_at_t at, const char *fmt, ...)
{
    int n;
    if (!at.arr && !at.key)
        n = snprintf(m->error, sizeof m->error, "body: ");
    else if (!at.arr)
        n = snprintf(m->error, sizeof m->error, "body.%s: ", at.key);
    else if (at.key)
        n = snprintf(m->error, sizeof m->error, "%s[%" PRIu32 "].%s: ", at.arr, at.idx, at.key);
    else
        n = snprintf(m->error, sizeof m->error, "%s[%" PRIu32 "]: ", at.arr, at.idx);
    if (n < 0 || (size_t)n >= sizeof m->error)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->error + n, sizeof m->error - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

/* Names the msgpack type of o for error texts. */
static const char *
s_kind(const msgpack_object *o)
{
    static const char *const names[] = {"nil",   "bool", "uint", "negative int", "float", "str",
                                        "array", "map",  "bin",  "ext",          "float"};
    return (unsigned)o->type < sizeof names / sizeof names[0] ? names[o->type] : "?";
}

/* ---- field accessors --------------------------------------------------- */

static int
s_is_slice(const s_field_t *d)
{
    return d->type >= S_STR && d->type <= S_QN;
}

/* Reads an integer field of base as a uint64_t (an int32 sign-extended). */
static uint64_t
s_get_int(const s_field_t *d, const void *base)
{
    const char *p = (const char *)base + d->off;
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    jobq_status st;
    switch (d->type) {
    case S_U32:
        memcpy(&u32, p, sizeof u32);
        return u32;
    case S_U64:
        memcpy(&u64, p, sizeof u64);
        return u64;
    case S_I32:
        memcpy(&i32, p, sizeof i32);
        return (uint64_t)(int64_t)i32;
    default:
        memcpy(&st, p, sizeof st);
        return (uint64_t)st;
    }
}

/* Stores v (already range-checked for the field's type) into base. */
static void
s_set_int(const s_field_t *d, void *base, uint64_t v)
{
    char *p = (char *)base + d->off;
    uint32_t u32 = (uint32_t)v;
    int32_t i32 = (int32_t)(int64_t)v;
    jobq_status st = (jobq_status)v;
    if (d->type == S_U32)
        memcpy(p, &u32, sizeof u32);
    else if (d->type == S_U64)
        memcpy(p, &v, sizeof v);
    else if (d->type == S_I32)
        memcpy(p, &i32, sizeof i32);
    else
        memcpy(p, &st, sizeof st);
}

/* Reads a slice field: returns its length and sets *ptr. */
static uint32_t
s_get_slice(const s_field_t *d, const void *base, const void **ptr)
{
    uint32_t n;
    memcpy(ptr, (const char *)base + d->off, sizeof *ptr);
    memcpy(&n, (const char *)base + d->len_off, sizeof n);
    return n;
}

static void
s_set_slice(const s_field_t *d, void *base, const void *ptr, uint32_t n)
{
    memcpy((char *)base + d->off, &ptr, sizeof ptr);
    memcpy((char *)base + d->len_off, &n, sizeof n);
}

/* ---- decoding: values -------------------------------------------------- */

/* Names the wire type a field wants, for "expected X, got Y". */
static const char *
s_want(const s_field_t *d)
{
    static const char *const names[] = {"uint32", "uint64", "int32",      "uint", "bin(16)",
                                        "str",    "bin",    "bin or str", "str",  "array"};
    return names[d->type];
}

static int
s_dec_uint(wire_msg_t *m, const s_field_t *d, const msgpack_object *o, s_at_t at, void *base)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return s_failat(m, JOBQ_EPROTO, at, "expected %s, got %s", s_want(d), s_kind(o));
    uint64_t v = o->via.u64;
    if (v < d->lo)
        return s_failat(m, JOBQ_EPROTO, at, "%" PRIu64 " below the minimum %" PRIu64, v, d->lo);
    if (v > d->hi)
        return s_failat(m, JOBQ_EPROTO, at, "%" PRIu64 " out of range for %s (max %" PRIu64 ")", v,
                        s_want(d), d->hi);
    s_set_int(d, base, v);
    return 0;
}

static int
s_dec_i32(wire_msg_t *m, const s_field_t *d, const msgpack_object *o, s_at_t at, void *base)
{
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT32_MAX)
        v = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= INT32_MIN)
        v = o->via.i64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return s_failat(m, JOBQ_EPROTO, at, "%" PRIu64 " out of range for int32", o->via.u64);
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return s_failat(m, JOBQ_EPROTO, at, "%" PRId64 " out of range for int32", o->via.i64);
    else
        return s_failat(m, JOBQ_EPROTO, at, "expected int32, got %s", s_kind(o));
    s_set_int(d, base, (uint64_t)v);
    return 0;
}

/* Decodes a slice; it points into the input, and an empty one is (NULL, 0). */
static int
s_dec_slice(wire_msg_t *m, const s_field_t *d, const msgpack_object *o, s_at_t at, void *base)
{
    int str_ok = d->type != S_BIN, bin_ok = d->type == S_BIN || d->type == S_ANY;
    const char *p;
    uint32_t n;
    if (o->type == MSGPACK_OBJECT_STR && str_ok) {
        p = o->via.str.ptr;
        n = o->via.str.size;
    } else if (o->type == MSGPACK_OBJECT_BIN && bin_ok) {
        p = o->via.bin.ptr;
        n = o->via.bin.size;
    } else {
        return s_failat(m, JOBQ_EPROTO, at, "expected %s, got %s", s_want(d), s_kind(o));
    }
    if (n > d->hi)
        return s_failat(m, JOBQ_ETOOBIG, at, "%" PRIu32 " bytes, limit %" PRIu64, n, d->hi);
    if (d->type == S_QN && !jobq_queue_name_valid(p, n))
        return s_failat(m, JOBQ_EPROTO, at, "not a valid queue name");
    s_set_slice(d, base, n ? p : NULL, n);
    return 0;
}

static int
s_dec_id(wire_msg_t *m, const msgpack_object *o, s_at_t at, jobq_id_t *id)
{
    if (o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == sizeof id->b) {
        memcpy(id->b, o->via.bin.ptr, sizeof id->b);
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_BIN)
        return s_failat(m, JOBQ_EPROTO, at, "expected bin(16), got bin(%" PRIu32 ")",
                        o->via.bin.size);
    return s_failat(m, JOBQ_EPROTO, at, "expected bin(16), got %s", s_kind(o));
}

static int
s_dec_field(wire_msg_t *m, const s_field_t *d, const msgpack_object *o, s_at_t at, void *base)
{
    switch (d->type) {
    case S_U32:
    case S_U64:
    case S_ST:
        return s_dec_uint(m, d, o, at, base);
    case S_I32:
        return s_dec_i32(m, d, o, at, base);
    case S_ID:
        return s_dec_id(m, o, at, (jobq_id_t *)(void *)((char *)base + d->off));
    default:
        return s_dec_slice(m, d, o, at, base);
    }
}

/* ---- decoding: maps ---------------------------------------------------- */

/* Whether the NUL-terminated key equals k[0..len) (k may hold NULs). */
static int
s_key_is(const char *key, const char *k, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        if (key[i] == '\0' || key[i] != k[i])
            return 0;
    return key[len] == '\0';
}

/* Looks key up in fs[0..n). Sets *idx to its index, or -1 for an unknown key
 * (skipped). A non-str key or a known key already in seen is an error. */
static int
s_key(wire_msg_t *m, const msgpack_object *key, const s_field_t *fs, int n, s_at_t at,
      uint32_t *seen, int *idx)
{
    *idx = -1;
    if (key->type != MSGPACK_OBJECT_STR)
        return s_failat(m, JOBQ_EPROTO, at, "map key is a %s, expected str", s_kind(key));
    const char *k = key->via.str.ptr;
    uint32_t len = key->via.str.size;
    for (int i = 0; i < n && len; i++) {
        if (fs[i].key[0] != k[0] || !s_key_is(fs[i].key, k, len))
            continue;
        if (*seen & (1u << i)) {
            at.key = fs[i].key;
            return s_failat(m, JOBQ_EPROTO, at, "duplicate key");
        }
        *idx = i; /* the caller sets the seen bit once the value decoded */
        break;
    }
    return 0;
}

/* Decodes a map with the keys fs[0..n) into base; unknown keys are skipped,
 * required ones checked. Array fields (S_ARR) are not decoded: their objects
 * go to keep[] for the caller. */
static int
s_dec_map(wire_msg_t *m, const msgpack_object *o, const s_field_t *fs, int n, s_at_t at, void *base,
          uint32_t *seen, const msgpack_object **keep)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return s_failat(m, JOBQ_EPROTO, at, "expected map, got %s", s_kind(o));
    *seen = 0;
    for (uint32_t k = 0; k < o->via.map.size; k++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[k];
        int f, rc = s_key(m, &kv->key, fs, n, at, seen, &f);
        s_at_t fat = {at.arr, at.idx, f >= 0 ? fs[f].key : NULL};
        if (rc == 0 && f >= 0 && fs[f].type == S_ARR)
            keep[f] = &kv->val;
        else if (rc == 0 && f >= 0)
            rc = s_dec_field(m, &fs[f], &kv->val, fat, base);
        if (rc)
            return rc;
        if (f >= 0)
            *seen |= 1u << f;
    }
    for (int f = 0; f < n; f++)
        if (fs[f].req && !(*seen & (1u << f)))
            return s_failat(m, JOBQ_EPROTO, (s_at_t){at.arr, at.idx, fs[f].key}, "required");
    return 0;
}

/* A DELIVER job carries a non-zero id and its attempt (>= 1): the lease fence. */
static int
s_deliver_check(wire_msg_t *m, const jobq_job_t *j, uint32_t i, int code)
{
    if (jobq_id_is_zero(&j->id))
        return s_failat(m, code, (s_at_t){"jobs", i, "id"}, "required (non-zero) in DELIVER");
    if (j->attempt < 1)
        return s_failat(m, code, (s_at_t){"jobs", i, "att"}, "required (>= 1) in DELIVER");
    return 0;
}

static int
s_dec_job(wire_msg_t *m, const msgpack_object *o, uint32_t i, jobq_job_t *job, const char **qok,
          uint32_t *qok_len)
{
    uint32_t seen;
    int rc = 0;
    jobq_job_init(job);
    if (!wire_dec_job_fast_(o, job, qok, qok_len)) {
        jobq_job_init(job);
        rc = s_dec_map(m, o, s_job_fields, S_NFIELDS(s_job_fields), (s_at_t){"jobs", i, NULL}, job,
                       &seen, NULL);
    }
    if (rc == 0 && m->type == WIRE_DELIVER)
        rc = s_deliver_check(m, job, i, JOBQ_EPROTO);
    return rc;
}

static int
s_dec_result(wire_msg_t *m, const msgpack_object *o, uint32_t i, jobq_result_t *r)
{
    uint32_t seen;
    jobq_result_init(r);
    if (wire_dec_result_fast_(o, r))
        return 0;
    jobq_result_init(r);
    return s_dec_map(m, o, s_result_fields, S_NFIELDS(s_result_fields),
                     (s_at_t){"results", i, NULL}, r, &seen, NULL);
}

static int
s_dec_lease(wire_msg_t *m, const msgpack_object *o, uint32_t i, wire_lease_t *l)
{
    s_at_t at = {"leases", i, NULL};
    static const s_field_t att = {"att", S_U32, 0, 0, UINT32_MAX, 0, 0, 0};
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2)
        return s_failat(m, JOBQ_EPROTO, at, "expected [bin(16), uint32], got %s", s_kind(o));
    int rc = s_dec_id(m, &o->via.array.ptr[0], at, &l->id);
    return rc ? rc : s_dec_uint(m, &att, &o->via.array.ptr[1], at, &l->attempt);
}

/* ---- decoding: the message --------------------------------------------- */

/* Checks the array fields' types and sizes, sets the counts, and carves every
 * array out of one allocation (owned_), largest alignment first. */
static int
s_alloc_arrays(wire_msg_t *m, const msgpack_object *const *keep)
{
    for (size_t i = 0; i < S_NARRAYS; i++) {
        const msgpack_object *o = keep[s_bit_index(s_arrays[i].bit)];
        if (!o)
            continue;
        s_at_t at = {NULL, 0, wire_field_name(s_arrays[i].bit)};
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return s_failat(m, JOBQ_EPROTO, at, "expected array, got %s", s_kind(o));
        uint32_t n = o->via.array.size;
        if (n > s_arrays[i].max)
            return s_failat(m, JOBQ_ETOOBIG, at, "%" PRIu32 " entries, limit %" PRIu32, n,
                            s_arrays[i].max);
        if (n < s_arrays[i].min)
            return s_failat(m, JOBQ_EPROTO, at, "empty");
        *(uint32_t *)(void *)((char *)m + s_arrays[i].count_off) = n;
    }
    size_t o_res = m->njobs * sizeof(jobq_job_t);
    size_t o_q = o_res + m->nresults * sizeof(jobq_result_t);
    size_t o_lease = o_q + m->nqueues * sizeof(wire_str_t);
    size_t o_code = o_lease + m->nleases * sizeof(wire_lease_t);
    size_t o_id = o_code + m->ncodes * sizeof(uint32_t);
    size_t total = o_id + m->nids * sizeof(jobq_id_t);
    if (total == 0)
        return 0;
    char *base = jobq_malloc(total);
    m->owned_ = base;
    m->jobs = m->njobs ? (jobq_job_t *)(void *)base : NULL;
    m->results = m->nresults ? (jobq_result_t *)(void *)(base + o_res) : NULL;
    m->queues = m->nqueues ? (wire_str_t *)(void *)(base + o_q) : NULL;
    m->leases = m->nleases ? (wire_lease_t *)(void *)(base + o_lease) : NULL;
    m->codes = m->ncodes ? (uint32_t *)(void *)(base + o_code) : NULL;
    m->ids = m->nids ? (jobq_id_t *)(void *)(base + o_id) : NULL;
    return 0;
}

/* Returns the elements of a present array field. */
static const msgpack_object *
s_elems(const msgpack_object *const *keep, uint32_t bit)
{
    return keep[s_bit_index(bit)]->via.array.ptr;
}

/* Fills the arrays s_alloc_arrays made room for. */
static int
s_fill_arrays(wire_msg_t *m, const msgpack_object *const *keep)
{
    static const s_field_t code = {"codes", S_U32, 0, 0, UINT32_MAX, 0, 0, 0};
    static const s_field_t queue = {
        "queues", S_QN, 0, 0, JOBQ_QUEUE_NAME_MAX, 0, 0, offsetof(wire_str_t, len)};
    int rc = 0;
    const msgpack_object *a;
    const char *qok = NULL;
    uint32_t qok_len = 0;
    a = m->njobs ? s_elems(keep, WIRE_F_JOBS) : NULL;
    for (uint32_t i = 0; rc == 0 && i < m->njobs; i++)
        rc = s_dec_job(m, &a[i], i, &m->jobs[i], &qok, &qok_len);
    a = m->nresults ? s_elems(keep, WIRE_F_RESULTS) : NULL;
    for (uint32_t i = 0; rc == 0 && i < m->nresults; i++)
        rc = s_dec_result(m, &a[i], i, &m->results[i]);
    a = m->nids ? s_elems(keep, WIRE_F_IDS) : NULL;
    for (uint32_t i = 0; rc == 0 && i < m->nids; i++)
        rc = s_dec_id(m, &a[i], (s_at_t){"ids", i, NULL}, &m->ids[i]);
    a = m->ncodes ? s_elems(keep, WIRE_F_CODES) : NULL;
    for (uint32_t i = 0; rc == 0 && i < m->ncodes; i++)
        rc = s_dec_uint(m, &code, &a[i], (s_at_t){"codes", i, NULL}, &m->codes[i]);
    a = m->nleases ? s_elems(keep, WIRE_F_LEASES) : NULL;
    for (uint32_t i = 0; rc == 0 && i < m->nleases; i++)
        rc = s_dec_lease(m, &a[i], i, &m->leases[i]);
    a = m->nqueues ? s_elems(keep, WIRE_F_QUEUES) : NULL;
    for (uint32_t i = 0; rc == 0 && i < m->nqueues; i++)
        rc = s_dec_slice(m, &queue, &a[i], (s_at_t){"queues", i, NULL}, &m->queues[i]);
    return rc;
}

/* Checks rules that span fields: required keys, one code per id. */
static int
s_check_message(wire_msg_t *m, int code)
{
    uint32_t missing = s_required[m->type] & ~m->fields;
    if (missing)
        return s_failat(m, code, (s_at_t){NULL, 0, wire_field_name(missing & -missing)},
                        "required by %s", wire_type_name(m->type));
    if ((m->type == WIRE_SUBMIT_OK || m->type == WIRE_RESULT_OK) && m->ncodes != m->nids)
        return s_failat(m, code, (s_at_t){NULL, 0, "codes"},
                        "%" PRIu32 " codes for %" PRIu32 " ids", m->ncodes, m->nids);
    return 0;
}

/* Decodes [version, type, body]. */
static int
s_frame(wire_msg_t *m, const msgpack_object *root)
{
    if (root->type != MSGPACK_OBJECT_ARRAY)
        return s_fail(m, JOBQ_EPROTO, "frame: expected array, got %s", s_kind(root));
    const msgpack_object *e = root->via.array.ptr;
    uint32_t n = root->via.array.size;
    if (n < 1 || e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return s_fail(m, JOBQ_EPROTO, "version: expected uint, got %s",
                      n < 1 ? "nothing" : s_kind(&e[0]));
    if (e[0].via.u64 != WIRE_VERSION) {
        m->version = e[0].via.u64 > UINT32_MAX ? UINT32_MAX : (uint32_t)e[0].via.u64;
        return s_fail(m, JOBQ_EVERSION, "version: peer speaks %" PRIu64 ", we speak %d",
                      e[0].via.u64, WIRE_VERSION);
    }
    if (n != 3)
        return s_fail(m, JOBQ_EPROTO,
                      "frame: expected [version, type, body], got %" PRIu32 " elements", n);
    if (e[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return s_fail(m, JOBQ_EPROTO, "type: expected uint, got %s", s_kind(&e[1]));
    if (e[1].via.u64 < 1 || e[1].via.u64 >= WIRE_TYPE_MAX_)
        return s_fail(m, JOBQ_EPROTO, "type: unknown message type %" PRIu64, e[1].via.u64);
    m->type = (wire_type)e[1].via.u64;
    const msgpack_object *keep[S_NBODY] = {0};
    int rc =
        s_dec_map(m, &e[2], s_body_fields, S_NBODY, (s_at_t){NULL, 0, NULL}, m, &m->fields, keep);
    if (rc == 0)
        rc = s_alloc_arrays(m, keep);
    if (rc == 0)
        rc = s_check_message(m, JOBQ_EPROTO);
    return rc ? rc : s_fill_arrays(m, keep);
}

int
wire_decode(wire_msg_t *msg, const void *data, size_t len, size_t max_frame)
{
    wire_msg_init(msg, (wire_type)0);
    if (max_frame == 0)
        max_frame = WIRE_MAX_FRAME;
    if (len > max_frame)
        return s_fail(msg, JOBQ_ETOOBIG, "frame: %zu bytes, limit %zu", len, max_frame);
    const char *why;
    uint64_t elems;
    int rc = wire_prescan_count(data, len, &why, &elems);
    if (rc != JOBQ_OK)
        return s_fail(msg, rc, "frame: %s", why);
    /* The tree: on the stack for small frames (a heartbeat, a one-job
     * submit), else one block sized by the pre-scan's element count. */
    msgpack_object stack[S_STACK_OBJS], root, *objs = stack;
    if (elems > S_STACK_OBJS)
        objs = jobq_malloc((size_t)elems * sizeof *objs);
    if (mpack_unpack(data, len, elems, objs, &root) != 0)
        rc = s_fail(msg, JOBQ_EPROTO, "frame: not one msgpack value");
    else
        rc = s_frame(msg, &root);
    if (objs != stack)
        jobq_free(objs);
    if (rc != JOBQ_OK) { /* hold nothing; keep what a reply needs */
        wire_msg_t keep = *msg;
        wire_msg_fini(msg);
        memcpy(msg->error, keep.error, sizeof msg->error);
        msg->type = keep.type;
        msg->version = keep.version;
        msg->req = keep.req;
        msg->fields = keep.fields & WIRE_F_REQ;
    }
    return rc;
}

/* ---- encoding ---------------------------------------------------------- */

/* Checks a field value the way the decoder will. */
static int
s_chk_field(wire_msg_t *m, const s_field_t *d, const void *base, s_at_t at)
{
    if (s_is_slice(d)) {
        const void *p;
        uint32_t n = s_get_slice(d, base, &p);
        if (n > d->hi)
            return s_failat(m, JOBQ_ETOOBIG, at, "%" PRIu32 " bytes, limit %" PRIu64, n, d->hi);
        if (n && !p)
            return s_failat(m, JOBQ_EINVAL, at, "NULL with length %" PRIu32, n);
        if (d->type == S_QN && !jobq_queue_name_valid(p, n))
            return s_failat(m, JOBQ_EINVAL, at, "not a valid queue name");
        return 0;
    }
    if (d->type == S_ID || d->type == S_I32)
        return 0;
    uint64_t v = s_get_int(d, base);
    if (v < d->lo || v > d->hi)
        return s_failat(m, JOBQ_EINVAL, at, "%" PRIu64 " out of range %" PRIu64 "..%" PRIu64, v,
                        d->lo, d->hi);
    return 0;
}

/* Whether an encoder writes the field of a job or result map: required keys
 * always, others when they differ from what the decoder assumes for absence. */
static int
s_emit(const s_field_t *d, const void *base)
{
    const void *p;
    if (d->req)
        return 1;
    if (d->type == S_ID)
        return !jobq_id_is_zero((const jobq_id_t *)(const void *)((const char *)base + d->off));
    if (s_is_slice(d))
        return s_get_slice(d, base, &p) > 0;
    return s_get_int(d, base) != d->dflt;
}

/* Packs key and value of one field. "data" (S_ANY) goes out as bin. */
static void
s_enc_field(wire_buf_t *pk, const s_field_t *d, const void *base)
{
    const void *p;
    mpack_str(pk, d->key, strlen(d->key));
    if (d->type == S_ID) {
        mpack_bin(pk, (const char *)base + d->off, sizeof(jobq_id_t));
    } else if (s_is_slice(d)) {
        uint32_t n = s_get_slice(d, base, &p);
        if (d->type == S_STR || d->type == S_QN)
            mpack_str(pk, p, n);
        else
            mpack_bin(pk, p, n);
    } else if (d->type == S_I32)
        mpack_int(pk, (int64_t)s_get_int(d, base));
    else
        mpack_uint(pk, s_get_int(d, base));
}

/* Checks every field of a job or result, then packs the map. */
static int
s_enc_map(wire_msg_t *m, wire_buf_t *pk, const s_field_t *fs, int n, s_at_t at, const void *base)
{
    size_t count = 0;
    for (int f = 0; f < n; f++) {
        int rc = s_chk_field(m, &fs[f], base, (s_at_t){at.arr, at.idx, fs[f].key});
        if (rc)
            return rc;
        count += (size_t)s_emit(&fs[f], base);
    }
    mpack_map(pk, count);
    for (int f = 0; f < n; f++)
        if (s_emit(&fs[f], base))
            s_enc_field(pk, &fs[f], base);
    return 0;
}

/* Packs the jobs or results array, checking each entry and the frame size. */
static int
s_enc_batch(wire_msg_t *m, wire_buf_t *pk, wire_buf_t *out, size_t start, uint32_t bit)
{
    int jobs = bit == WIRE_F_JOBS, rc = 0;
    uint32_t n = jobs ? m->njobs : m->nresults;
    const void *qok = NULL;
    uint32_t qok_len = 0;
    mpack_array(pk, n);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        if (jobs && m->type == WIRE_DELIVER)
            rc = s_deliver_check(m, &m->jobs[i], i, JOBQ_EINVAL);
        if (rc == 0 && jobs && wire_enc_job_fast_(pk, &m->jobs[i], &qok, &qok_len))
            ;
        else if (rc == 0 && !jobs && wire_enc_result_fast_(pk, &m->results[i]))
            ;
        else if (rc == 0 && jobs)
            rc = s_enc_map(m, pk, s_job_fields, S_NFIELDS(s_job_fields), (s_at_t){"jobs", i, NULL},
                           &m->jobs[i]);
        else if (rc == 0)
            rc = s_enc_map(m, pk, s_result_fields, S_NFIELDS(s_result_fields),
                           (s_at_t){"results", i, NULL}, &m->results[i]);
        if (rc == 0 && out->len - start > WIRE_MAX_FRAME)
            rc = s_failat(m, JOBQ_ETOOBIG, (s_at_t){jobs ? "jobs" : "results", i, NULL},
                          "frame grows past %u bytes", (unsigned)WIRE_MAX_FRAME);
    }
    return rc;
}

/* Packs the ids, codes, leases or queues array. */
static int
s_enc_list(wire_msg_t *m, wire_buf_t *pk, uint32_t bit)
{
    uint32_t n = bit == WIRE_F_IDS      ? m->nids
                 : bit == WIRE_F_CODES  ? m->ncodes
                 : bit == WIRE_F_LEASES ? m->nleases
                                        : m->nqueues;
    mpack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        if (bit == WIRE_F_IDS) {
            mpack_bin(pk, m->ids[i].b, sizeof m->ids[i].b);
        } else if (bit == WIRE_F_CODES) {
            mpack_uint(pk, m->codes[i]);
        } else if (bit == WIRE_F_LEASES) {
            mpack_array(pk, 2);
            mpack_bin(pk, m->leases[i].id.b, sizeof m->leases[i].id.b);
            mpack_uint(pk, m->leases[i].attempt);
        } else if (jobq_queue_name_valid(m->queues[i].ptr, m->queues[i].len)) {
            mpack_str(pk, m->queues[i].ptr, m->queues[i].len);
        } else {
            return s_failat(m, JOBQ_EINVAL, (s_at_t){"queues", i, NULL}, "not a valid queue name");
        }
    }
    return 0;
}

/* Checks the message as a whole: type, field bits, required keys, array sizes. */
static int
s_check_encode(wire_msg_t *m)
{
    if (m->type <= 0 || m->type >= WIRE_TYPE_MAX_)
        return s_fail(m, JOBQ_EINVAL, "type: unknown message type %d", (int)m->type);
    if (m->fields & ~(uint32_t)S_ALL_FIELDS)
        return s_fail(m, JOBQ_EINVAL, "fields: unknown bits 0x%" PRIx32,
                      m->fields & ~(uint32_t)S_ALL_FIELDS);
    for (size_t i = 0; i < S_NARRAYS; i++) {
        if (!(m->fields & s_arrays[i].bit))
            continue;
        s_at_t at = {NULL, 0, wire_field_name(s_arrays[i].bit)};
        uint32_t n = s_count(m, i);
        if (n > s_arrays[i].max)
            return s_failat(m, JOBQ_ETOOBIG, at, "%" PRIu32 " entries, limit %" PRIu32, n,
                            s_arrays[i].max);
        if (n < s_arrays[i].min)
            return s_failat(m, JOBQ_EINVAL, at, "empty");
        if (n && !s_has_ptr(m, i))
            return s_failat(m, JOBQ_EINVAL, at, "NULL with %" PRIu32 " entries", n);
    }
    return s_check_message(m, JOBQ_EINVAL);
}

int
wire_encode(wire_msg_t *msg, wire_buf_t *out)
{
    msg->error[0] = '\0';
    int rc = s_check_encode(msg);
    if (rc != JOBQ_OK)
        return rc;
    size_t start = out->len;
    wire_buf_t *pk = out;
    mpack_array(pk, 3);
    mpack_uint(pk, WIRE_VERSION);
    mpack_uint(pk, (uint32_t)msg->type);
    mpack_map(pk, (size_t)__builtin_popcount(msg->fields));
    for (int i = 0; rc == 0 && i < S_NBODY; i++) {
        const s_field_t *d = &s_body_fields[i];
        uint32_t bit = 1u << i;
        if (!(msg->fields & bit))
            continue;
        if (d->type != S_ARR) {
            rc = s_chk_field(msg, d, msg, (s_at_t){NULL, 0, d->key});
            if (rc == 0)
                s_enc_field(pk, d, msg);
            continue;
        }
        mpack_str(pk, d->key, strlen(d->key));
        if (bit == WIRE_F_JOBS || bit == WIRE_F_RESULTS)
            rc = s_enc_batch(msg, pk, out, start, bit);
        else
            rc = s_enc_list(msg, pk, bit);
    }
    if (rc == 0 && out->len - start > WIRE_MAX_FRAME)
        rc = s_fail(msg, JOBQ_ETOOBIG, "frame: %zu bytes, limit %u", out->len - start,
                    (unsigned)WIRE_MAX_FRAME);
    if (rc != JOBQ_OK)
        out->len = start;
    return rc;
}

/* ---- comparison -------------------------------------------------------- */

static int
s_bytes_eq(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int
s_field_eq(const s_field_t *d, const void *a, const void *b)
{
    const void *pa, *pb;
    if (d->type == S_ID)
        return memcmp((const char *)a + d->off, (const char *)b + d->off, sizeof(jobq_id_t)) == 0;
    if (s_is_slice(d)) {
        uint32_t na = s_get_slice(d, a, &pa), nb = s_get_slice(d, b, &pb);
        return s_bytes_eq(pa, na, pb, nb);
    }
    return s_get_int(d, a) == s_get_int(d, b);
}

/* Compares n records of size sz at a and b, field by field. */
static int
s_records_eq(const s_field_t *fs, int nf, const void *a, const void *b, uint32_t n, size_t sz)
{
    for (uint32_t i = 0; i < n; i++)
        for (int f = 0; f < nf; f++)
            if (!s_field_eq(&fs[f], (const char *)a + i * sz, (const char *)b + i * sz))
                return 0;
    return 1;
}

/* Compares the array fields (fields bits already equal). */
static int
s_arrays_eq(const wire_msg_t *a, const wire_msg_t *b)
{
    uint32_t f = a->fields;
    for (size_t i = 0; i < S_NARRAYS; i++)
        if ((f & s_arrays[i].bit) && s_count(a, i) != s_count(b, i))
            return 0;
    for (uint32_t i = 0; (f & WIRE_F_LEASES) && i < a->nleases; i++)
        if (memcmp(&a->leases[i].id, &b->leases[i].id, sizeof(jobq_id_t)) != 0 ||
            a->leases[i].attempt != b->leases[i].attempt)
            return 0;
    for (uint32_t i = 0; (f & WIRE_F_QUEUES) && i < a->nqueues; i++)
        if (!s_bytes_eq(a->queues[i].ptr, a->queues[i].len, b->queues[i].ptr, b->queues[i].len))
            return 0;
    return (!(f & WIRE_F_JOBS) || s_records_eq(s_job_fields, S_NFIELDS(s_job_fields), a->jobs,
                                               b->jobs, a->njobs, sizeof(jobq_job_t))) &&
           (!(f & WIRE_F_RESULTS) ||
            s_records_eq(s_result_fields, S_NFIELDS(s_result_fields), a->results, b->results,
                         a->nresults, sizeof(jobq_result_t))) &&
           (!(f & WIRE_F_IDS) ||
            s_bytes_eq(a->ids, a->nids * sizeof(jobq_id_t), b->ids, b->nids * sizeof(jobq_id_t))) &&
           (!(f & WIRE_F_CODES) || s_bytes_eq(a->codes, a->ncodes * sizeof(uint32_t), b->codes,
                                              b->ncodes * sizeof(uint32_t)));
}

int
wire_msg_equal(const wire_msg_t *a, const wire_msg_t *b)
{
    if (a->type != b->type || a->fields != b->fields)
        return 0;
    for (int i = 0; i < S_NBODY; i++)
        if ((a->fields & (1u << i)) && s_body_fields[i].type != S_ARR &&
            !s_field_eq(&s_body_fields[i], a, b))
            return 0;
    return s_arrays_eq(a, b);
}
