/*
 * tests/unit/test_wire.c: the msgpack wire codec (common/wire.h): round trips
 * of every message type and field, rejection of every class of bad input with
 * the right code and an error naming the field, and the allocation bound of
 * the pre-scan (RELIABILITY.md §0 item 3, §3.7).
 *
 * Bad frames are written as hex (see s_hex) inside frames built with
 * msgpack-c's packer, so each case shows exactly the bytes a peer would send.
 */
#include "common/wire.h"
#include "jobq/job.h"
#include "jobq_test.h"

#include <malloc.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define S_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define S_TSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_ASAN 1
#elif __has_feature(thread_sanitizer)
#define S_TSAN 1
#endif
#endif

/* ---- heap accounting ----------------------------------------------------
 * Held bytes come from mallinfo2() (ASan: the sanitizer's allocated-bytes
 * count). The peak during one decode comes from counting every allocation and
 * free while s_tracking is on: in ASan builds through the sanitizer's malloc
 * hooks, otherwise by replacing malloc/calloc/realloc/free in this executable
 * with thin wrappers over glibc's __libc_* functions (glibc allows replacing
 * malloc; the wrappers only count). TSan builds measure no peak. */

static int s_tracking;
static long long s_cur, s_peak;

static void
s_count_alloc(size_t n)
{
    if (!s_tracking)
        return;
    s_cur += (long long)n;
    if (s_cur > s_peak)
        s_peak = s_cur;
}

static void
s_count_free(size_t n)
{
    if (s_tracking)
        s_cur -= (long long)n;
}

#if defined(S_ASAN)
size_t __sanitizer_get_current_allocated_bytes(void);
size_t __sanitizer_get_allocated_size(const volatile void *p);
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void
s_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    s_count_alloc(n);
}

static void
s_free_hook(const volatile void *p)
{
    s_count_free(__sanitizer_get_allocated_size(p));
}

static int
s_peak_tracking_start(void)
{
    static int installed;
    if (!installed)
        __sanitizer_install_malloc_and_free_hooks(s_malloc_hook, s_free_hook);
    installed = 1;
    return 1;
}

static size_t
s_heap_in_use(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
#if !defined(S_TSAN)
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t c, size_t n);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

void *
malloc(size_t n)
{
    void *p = __libc_malloc(n);
    if (p)
        s_count_alloc(malloc_usable_size(p));
    return p;
}

void *
calloc(size_t c, size_t n)
{
    void *p = __libc_calloc(c, n);
    if (p)
        s_count_alloc(malloc_usable_size(p));
    return p;
}

void *
realloc(void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = __libc_realloc(p, n);
    if (q || n == 0) {
        s_count_free(old);
        if (q)
            s_count_alloc(malloc_usable_size(q));
    }
    return q;
}

void
free(void *p)
{
    if (p)
        s_count_free(malloc_usable_size(p));
    __libc_free(p);
}
#endif

static int
s_peak_tracking_start(void)
{
#if defined(S_TSAN)
    return 0;
#else
    return 1;
#endif
}

static size_t
s_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

/* ---- raw frame builders ------------------------------------------------ */

/* Appends the bytes of a hex string ("cc ff"; spaces ignored). */
static void
s_hex(msgpack_sbuffer *sb, const char *hex)
{
    while (*hex) {
        if (*hex == ' ') {
            hex++;
            continue;
        }
        char byte[3] = {hex[0], hex[1], 0};
        char c = (char)strtoul(byte, NULL, 16);
        msgpack_sbuffer_write(sb, &c, 1);
        hex += 2;
    }
}

/* Starts [version, type, {nkeys...}] in a fresh buffer. */
static void
s_begin(msgpack_sbuffer *sb, msgpack_packer *pk, uint64_t version, uint64_t type, size_t nkeys)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, version);
    msgpack_pack_uint64(pk, type);
    msgpack_pack_map(pk, nkeys);
}

static void
s_key(msgpack_packer *pk, const char *key)
{
    msgpack_pack_str_with_body(pk, key, strlen(key));
}

static const char s_id16[16] = "0123456789abcdef";

/* [1, HEARTBEAT, {key: <hex>}]: HEARTBEAT requires nothing, so one body
 * field can be tried alone. */
static void
s_body_frame(msgpack_sbuffer *sb, const char *key, const char *hex)
{
    msgpack_packer pk;
    s_begin(sb, &pk, 1, WIRE_HEARTBEAT, 1);
    s_key(&pk, key);
    s_hex(sb, hex);
}

/* [1, type, {"req": 1, "jobs": [{"q": "a", key: <hex>}]}] ("q" replaced when
 * key is "q"). */
static void
s_job_frame(msgpack_sbuffer *sb, int type, const char *key, const char *hex)
{
    msgpack_packer pk;
    int q = strcmp(key, "q") != 0;
    s_begin(sb, &pk, 1, (uint64_t)type, 2);
    s_key(&pk, "req");
    msgpack_pack_uint64(&pk, 1);
    s_key(&pk, "jobs");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, (size_t)(1 + q));
    if (q) {
        s_key(&pk, "q");
        msgpack_pack_str_with_body(&pk, "a", 1);
    }
    s_key(&pk, key);
    s_hex(sb, hex);
}

/* [1, RESULT, {"results": [{"id", "att", "st" (unless key is one), key: <hex>}]}]. */
static void
s_result_frame(msgpack_sbuffer *sb, const char *key, const char *hex)
{
    msgpack_packer pk;
    int id = strcmp(key, "id") != 0, att = strcmp(key, "att") != 0, st = strcmp(key, "st") != 0;
    s_begin(sb, &pk, 1, WIRE_RESULT, 1);
    s_key(&pk, "results");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, (size_t)(1 + id + att + st));
    if (id) {
        s_key(&pk, "id");
        msgpack_pack_bin_with_body(&pk, s_id16, 16);
    }
    if (att) {
        s_key(&pk, "att");
        msgpack_pack_uint32(&pk, 1);
    }
    if (st) {
        s_key(&pk, "st");
        msgpack_pack_uint32(&pk, 0);
    }
    s_key(&pk, key);
    s_hex(sb, hex);
}

/* Decodes sb and checks the code and that the error contains want_err. */
static void
s_expect(msgpack_sbuffer *sb, int want, const char *want_err)
{
    wire_msg_t m;
    int rc = wire_decode(&m, sb->data, sb->size, 0);
    ck_assert_msg(rc == want, "decode returned %s (%s), expected %s for '%s'", jobq_errname(rc),
                  m.error, jobq_errname(want), want_err);
    if (want_err)
        ck_assert_msg(strstr(m.error, want_err) != NULL, "error '%s' lacks '%s'", m.error,
                      want_err);
    if (want != JOBQ_OK)
        ck_assert_ptr_null(m.owned_);
    wire_msg_fini(&m);
    msgpack_sbuffer_destroy(sb);
}

/* ---- sample messages --------------------------------------------------- */

static char s_payload[] = {'p', 0, 'a', 0, 'y'};
static char s_out[] = {'o', 0, 'u', 't'};

/* A job with every field set to a non-default value. */
static void
s_full_job(jobq_job_t *j, int n)
{
    jobq_job_init(j);
    memset(j->id.b, 0x10 + n, sizeof j->id.b);
    j->queue = "emails.high";
    j->queue_len = 11;
    j->payload = s_payload;
    j->payload_len = sizeof s_payload;
    j->priority = 7 + (uint32_t)n;
    j->delay_ms = 1500;
    j->ttr_ms = 60000;
    j->max_attempts = 5;
    j->attempt = 2;
    j->unique = "order-42";
    j->unique_len = 8;
    j->backoff_ms = 250;
}

/* A result with every field set. */
static void
s_full_result(jobq_result_t *r, int n)
{
    jobq_result_init(r);
    memset(r->id.b, 0x20 + n, sizeof r->id.b);
    r->attempt = 3;
    r->status = JOBQ_STATUS_FAILED;
    r->exit_code = -2;
    r->signal = 9;
    r->duration_us = 123456789012ull;
    r->output = s_out;
    r->output_len = sizeof s_out;
    r->error = "boom";
    r->error_len = 4;
}

static jobq_job_t s_jobs[3];
static jobq_result_t s_results[2];
static jobq_id_t s_ids[3];
static uint32_t s_codes[3] = {JOBQ_OK, JOBQ_ESTALE, JOBQ_EQUEUEFULL};
static wire_lease_t s_leases[2];
static wire_str_t s_queues[2] = {{"a", 1}, {"b.c", 3}};

static wire_str_t
s_str(const char *s)
{
    return (wire_str_t){s, (uint32_t)strlen(s)};
}

/* Fills m with a valid message of type t: its required fields plus the
 * optional ones wire.h lists for it. */
static void
s_sample(wire_msg_t *m, wire_type t)
{
    for (int i = 0; i < 3; i++) {
        s_full_job(&s_jobs[i], i);
        memset(s_ids[i].b, 0x30 + i, 16);
    }
    for (int i = 0; i < 2; i++) {
        s_full_result(&s_results[i], i);
        memset(s_leases[i].id.b, 0x40 + i, 16);
        s_leases[i].attempt = (uint32_t)i + 1;
    }
    wire_msg_init(m, t);
    m->req = 0x1122334455667788ull;
    m->queue = s_str("emails");
    m->jobs = s_jobs;
    m->njobs = 3;
    m->results = s_results;
    m->nresults = 2;
    m->ids = s_ids;
    m->nids = 3;
    m->codes = s_codes;
    m->ncodes = 3;
    m->leases = s_leases;
    m->nleases = 2;
    m->queues = s_queues;
    m->nqueues = 2;
    m->credit = 16;
    m->code = JOBQ_EPROTO;
    m->msg = s_str("jobq 0.1.0");
    m->name = s_str("kick");
    m->data = s_str("{\"ready\": 3}");
    m->timeout_ms = 5000;
    m->count = 99;
    m->role = WIRE_ROLE_WORKER;
    m->hb_ms = 1000;
    m->flags = 3;
    static const uint32_t fields[WIRE_TYPE_MAX_] = {
        [WIRE_HELLO] = WIRE_F_ROLE | WIRE_F_NAME | WIRE_F_HB,
        [WIRE_WELCOME] = WIRE_F_HB | WIRE_F_FLAGS | WIRE_F_MSG,
        [WIRE_SUBMIT] = WIRE_F_REQ | WIRE_F_JOBS,
        [WIRE_SUBMIT_OK] = WIRE_F_REQ | WIRE_F_IDS | WIRE_F_CODES,
        [WIRE_READY] = WIRE_F_CREDIT | WIRE_F_QUEUES,
        [WIRE_DELIVER] = WIRE_F_JOBS,
        [WIRE_RESULT] = WIRE_F_RESULTS,
        [WIRE_RESULT_OK] = WIRE_F_IDS | WIRE_F_CODES,
        [WIRE_EXTEND] = WIRE_F_LEASES | WIRE_F_TIMEOUT,
        [WIRE_HEARTBEAT] = 0,
        [WIRE_WAIT] = WIRE_F_REQ | WIRE_F_IDS | WIRE_F_TIMEOUT,
        [WIRE_RESULTS] = WIRE_F_RESULTS | WIRE_F_REQ,
        [WIRE_JOIN] = WIRE_F_REQ | WIRE_F_QUEUE | WIRE_F_TIMEOUT,
        [WIRE_JOIN_OK] = WIRE_F_REQ | WIRE_F_QUEUE | WIRE_F_COUNT,
        [WIRE_STATS] = WIRE_F_REQ | WIRE_F_QUEUE,
        [WIRE_STATS_REPLY] = WIRE_F_REQ | WIRE_F_DATA,
        [WIRE_STOP_WORKERS] = WIRE_F_REQ | WIRE_F_QUEUE,
        [WIRE_SENTINEL] = 0,
        [WIRE_ERROR] = WIRE_F_REQ | WIRE_F_CODE | WIRE_F_MSG,
        [WIRE_DISCONNECT] = WIRE_F_MSG,
        [WIRE_OK] = WIRE_F_REQ | WIRE_F_COUNT,
        [WIRE_ADMIN] =
            WIRE_F_REQ | WIRE_F_NAME | WIRE_F_QUEUE | WIRE_F_IDS | WIRE_F_COUNT | WIRE_F_TIMEOUT,
        [WIRE_REPORT] = WIRE_F_DATA,
    };
    m->fields = fields[t];
}

/* Encodes in, decodes into out (which the caller finalises), checks equality. */
static void
s_round_trip(wire_msg_t *in, wire_msg_t *out, wire_buf_t *buf)
{
    buf->len = 0;
    int rc = wire_encode(in, buf);
    ck_assert_msg(rc == JOBQ_OK, "encode %s: %s (%s)", wire_type_name(in->type), jobq_errname(rc),
                  in->error);
    rc = wire_decode(out, buf->data, buf->len, 0);
    ck_assert_msg(rc == JOBQ_OK, "decode %s: %s (%s)", wire_type_name(in->type), jobq_errname(rc),
                  out->error);
    ck_assert_int_eq(out->version, WIRE_VERSION);
    ck_assert_msg(wire_msg_equal(in, out), "%s did not round-trip", wire_type_name(in->type));
}

static void
s_assert_bytes(const void *got, uint32_t got_len, const void *want, uint32_t want_len)
{
    ck_assert_uint_eq(got_len, want_len);
    if (want_len)
        ck_assert_int_eq(memcmp(got, want, want_len), 0);
}

/* ---- round trips ------------------------------------------------------- */

START_TEST(test_every_message_type_round_trips)
{
    wire_buf_t buf = {0};
    for (int t = 1; t < WIRE_TYPE_MAX_; t++) {
        wire_msg_t in, out;
        s_sample(&in, (wire_type)t);
        s_round_trip(&in, &out, &buf);
        ck_assert_int_eq(out.type, t);
        ck_assert_uint_eq(out.fields, in.fields);
        ck_assert_str_ne(wire_type_name(t), "?");
        wire_msg_fini(&out);
    }
    ck_assert_str_eq(wire_type_name(WIRE_SUBMIT), "SUBMIT");
    ck_assert_str_eq(wire_type_name(0), "?");
    ck_assert_str_eq(wire_type_name(WIRE_TYPE_MAX_), "?");
    wire_buf_fini(&buf);
}
END_TEST

START_TEST(test_every_body_field_round_trips)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    s_sample(&in, WIRE_ADMIN);
    in.fields = (1u << 18) - 1; /* all 18 keys at once */
    s_round_trip(&in, &out, &buf);
    ck_assert_uint_eq(out.req, 0x1122334455667788ull);
    s_assert_bytes(out.queue.ptr, out.queue.len, "emails", 6);
    s_assert_bytes(out.msg.ptr, out.msg.len, "jobq 0.1.0", 10);
    s_assert_bytes(out.name.ptr, out.name.len, "kick", 4);
    s_assert_bytes(out.data.ptr, out.data.len, "{\"ready\": 3}", 12);
    ck_assert_uint_eq(out.credit, 16);
    ck_assert_uint_eq(out.code, JOBQ_EPROTO);
    ck_assert_uint_eq(out.timeout_ms, 5000);
    ck_assert_uint_eq(out.count, 99);
    ck_assert_uint_eq(out.role, WIRE_ROLE_WORKER);
    ck_assert_uint_eq(out.hb_ms, 1000);
    ck_assert_uint_eq(out.flags, 3);
    ck_assert_uint_eq(out.njobs, 3);
    ck_assert_uint_eq(out.nresults, 2);
    ck_assert_uint_eq(out.nids, 3);
    ck_assert_int_eq(memcmp(out.ids, s_ids, sizeof s_ids), 0);
    ck_assert_uint_eq(out.ncodes, 3);
    ck_assert_uint_eq(out.codes[1], JOBQ_ESTALE);
    ck_assert_uint_eq(out.nleases, 2);
    ck_assert_int_eq(memcmp(&out.leases[1].id, &s_leases[1].id, 16), 0);
    ck_assert_uint_eq(out.leases[1].attempt, 2);
    ck_assert_uint_eq(out.nqueues, 2);
    s_assert_bytes(out.queues[1].ptr, out.queues[1].len, "b.c", 3);
    for (uint32_t f = 1; f < (1u << 18); f <<= 1)
        ck_assert_str_ne(wire_field_name(f), "?");
    ck_assert_str_eq(wire_field_name(WIRE_F_COUNT), "n");
    ck_assert_str_eq(wire_field_name(3), "?");
    wire_msg_fini(&out);
    wire_buf_fini(&buf);
}
END_TEST

START_TEST(test_every_job_field_round_trips_including_nul_bytes)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    s_sample(&in, WIRE_DELIVER);
    s_round_trip(&in, &out, &buf);
    const jobq_job_t *j = &out.jobs[2];
    ck_assert_int_eq(memcmp(&j->id, &s_jobs[2].id, 16), 0);
    s_assert_bytes(j->queue, j->queue_len, "emails.high", 11);
    s_assert_bytes(j->payload, j->payload_len, s_payload, sizeof s_payload);
    ck_assert_uint_eq(j->priority, 9);
    ck_assert_uint_eq(j->delay_ms, 1500);
    ck_assert_uint_eq(j->ttr_ms, 60000);
    ck_assert_uint_eq(j->max_attempts, 5);
    ck_assert_uint_eq(j->attempt, 2);
    s_assert_bytes(j->unique, j->unique_len, "order-42", 8);
    ck_assert_uint_eq(j->backoff_ms, 250);
    wire_msg_fini(&out);
    wire_buf_fini(&buf);
}
END_TEST

/* The valid_* and full_* frames of the fuzz corpus were written by the
 * canonical encoder when the corpus was made (tests/fuzz/tools): decoding each
 * and encoding it again must give the very same bytes, whichever encoding
 * path (the job/result fast paths or the generic one) writes them. */
START_TEST(test_corpus_frames_re_encode_to_the_same_bytes)
{
    const char *src = getenv("JOBQ_SOURCE_DIR");
    ck_assert_ptr_nonnull(src);
    static const char *const names[] = {
        "full_submit",    "full_deliver",     "full_result",  "full_results",
        "full_submit_ok", "full_extend",      "full_ready",   "full_hello",
        "full_error",     "full_stats_reply", "valid_submit", "valid_deliver",
        "valid_result",   "valid_results",    "full_wait",    "full_admin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/frame/%s", src, names[i]);
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "%s", path);
        static char bytes[1 << 16];
        size_t n = fread(bytes, 1, sizeof bytes, f);
        fclose(f);
        wire_msg_t m;
        ck_assert_msg(wire_decode(&m, bytes, n, 0) == JOBQ_OK, "%s: %s", names[i], m.error);
        wire_buf_t buf = {0};
        ck_assert_jobq_ok(wire_encode(&m, &buf));
        ck_assert_msg(buf.len == n && memcmp(buf.data, bytes, n) == 0,
                      "%s: %zu bytes re-encoded to %zu different ones", names[i], n, buf.len);
        wire_buf_fini(&buf);
        wire_msg_fini(&m);
    }
}
END_TEST

START_TEST(test_absent_job_keys_take_the_job_init_defaults)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    jobq_job_t job, def;
    jobq_job_init(&job);
    jobq_job_init(&def);
    job.queue = "q1";
    job.queue_len = 2;
    wire_msg_init(&in, WIRE_SUBMIT);
    in.fields = WIRE_F_REQ | WIRE_F_JOBS;
    in.jobs = &job;
    in.njobs = 1;
    s_round_trip(&in, &out, &buf);
    /* [1, 3, {"req": 0, "jobs": [{"q": "q1"}]}]: nothing else is sent. */
    ck_assert_uint_eq(buf.len, 21);
    const jobq_job_t *j = &out.jobs[0];
    ck_assert(jobq_id_is_zero(&j->id));
    ck_assert_uint_eq(j->payload_len, 0);
    ck_assert_uint_eq(j->priority, def.priority);
    ck_assert_uint_eq(j->delay_ms, def.delay_ms);
    ck_assert_uint_eq(j->ttr_ms, def.ttr_ms);
    ck_assert_uint_eq(j->max_attempts, def.max_attempts);
    ck_assert_uint_eq(j->attempt, 0);
    ck_assert_uint_eq(j->backoff_ms, 0);
    ck_assert_uint_eq(j->unique_len, 0);
    ck_assert_ptr_null(j->unique);
    wire_msg_fini(&out);
    wire_buf_fini(&buf);
}
END_TEST

START_TEST(test_every_result_field_round_trips)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    s_sample(&in, WIRE_RESULTS);
    s_results[1].exit_code = INT32_MIN;
    s_results[1].signal = INT32_MAX;
    s_results[1].status = JOBQ_STATUS_DEAD;
    s_round_trip(&in, &out, &buf);
    const jobq_result_t *r = &out.results[0];
    ck_assert_int_eq(memcmp(&r->id, &s_results[0].id, 16), 0);
    ck_assert_uint_eq(r->attempt, 3);
    ck_assert_int_eq(r->status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(r->exit_code, -2);
    ck_assert_int_eq(r->signal, 9);
    ck_assert_uint_eq(r->duration_us, 123456789012ull);
    s_assert_bytes(r->output, r->output_len, s_out, sizeof s_out);
    s_assert_bytes(r->error, r->error_len, "boom", 4);
    ck_assert_int_eq(out.results[1].exit_code, INT32_MIN);
    ck_assert_int_eq(out.results[1].signal, INT32_MAX);
    ck_assert_int_eq(out.results[1].status, JOBQ_STATUS_DEAD);
    wire_msg_fini(&out);
    wire_buf_fini(&buf);
}
END_TEST

START_TEST(test_empty_and_1_mib_payloads_round_trip)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    s_sample(&in, WIRE_SUBMIT);
    char *big = malloc(JOBQ_PAYLOAD_MAX);
    for (size_t i = 0; i < JOBQ_PAYLOAD_MAX; i++)
        big[i] = (char)(i * 7);
    s_jobs[0].payload = NULL;
    s_jobs[0].payload_len = 0;
    s_jobs[1].payload = big;
    s_jobs[1].payload_len = JOBQ_PAYLOAD_MAX;
    in.njobs = 2;
    s_round_trip(&in, &out, &buf);
    ck_assert_uint_eq(out.jobs[0].payload_len, 0);
    s_assert_bytes(out.jobs[1].payload, out.jobs[1].payload_len, big, JOBQ_PAYLOAD_MAX);
    wire_msg_fini(&out);
    /* A result output of 1 MiB too. */
    s_sample(&in, WIRE_RESULT);
    s_results[0].output = big;
    s_results[0].output_len = JOBQ_PAYLOAD_MAX;
    s_round_trip(&in, &out, &buf);
    s_assert_bytes(out.results[0].output, out.results[0].output_len, big, JOBQ_PAYLOAD_MAX);
    wire_msg_fini(&out);
    free(big);
    wire_buf_fini(&buf);
}
END_TEST

START_TEST(test_empty_strings_and_arrays_round_trip)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    wire_msg_init(&in, WIRE_ADMIN);
    in.fields = WIRE_F_REQ | WIRE_F_MSG | WIRE_F_NAME | WIRE_F_DATA | WIRE_F_IDS | WIRE_F_CODES |
                WIRE_F_LEASES | WIRE_F_QUEUES;
    in.msg = (wire_str_t){"", 0};
    in.name = (wire_str_t){NULL, 0};
    s_round_trip(&in, &out, &buf);
    ck_assert_uint_eq(out.fields, in.fields);
    ck_assert_uint_eq(out.msg.len, 0);
    ck_assert_ptr_null(out.msg.ptr);
    ck_assert_uint_eq(out.nids + out.ncodes + out.nleases + out.nqueues, 0);
    ck_assert_ptr_null(out.owned_);
    /* A decoded empty str re-encodes (the fuzzer's first finding). */
    wire_buf_t again = {0};
    ck_assert_jobq_ok(wire_encode(&out, &again));
    ck_assert_uint_eq(again.len, buf.len);
    ck_assert_int_eq(memcmp(again.data, buf.data, buf.len), 0);
    wire_msg_fini(&out);
    wire_buf_fini(&again);
    wire_buf_fini(&buf);
}
END_TEST

START_TEST(test_msg_equal_notices_every_difference)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    s_sample(&in, WIRE_ADMIN);
    in.fields = (1u << 18) - 1;
    s_round_trip(&in, &out, &buf);
    ck_assert(wire_msg_equal(&out, &in));
    char q2[] = "emailz";
    jobq_id_t id = s_ids[1];
    id.b[7] ^= 1;
#define S_DIFFERS(stmt, undo)                                                                      \
    do {                                                                                           \
        stmt;                                                                                      \
        ck_assert_msg(!wire_msg_equal(&in, &out), "not noticed: %s", #stmt);                       \
        undo;                                                                                      \
        ck_assert(wire_msg_equal(&in, &out));                                                      \
    } while (0)
    S_DIFFERS(in.type = WIRE_OK, in.type = WIRE_ADMIN);
    S_DIFFERS(in.fields &= ~WIRE_F_FLAGS, in.fields |= WIRE_F_FLAGS);
    S_DIFFERS(in.req++, in.req--);
    S_DIFFERS(in.queue.ptr = q2, in.queue.ptr = "emails");
    S_DIFFERS(in.data.len--, in.data.len++);
    S_DIFFERS(in.role = 1, in.role = WIRE_ROLE_WORKER);
    S_DIFFERS(in.njobs--, in.njobs++);
    S_DIFFERS(s_jobs[1].priority++, s_jobs[1].priority--);
    S_DIFFERS(s_jobs[2].payload_len--, s_jobs[2].payload_len++);
    S_DIFFERS(s_jobs[0].id.b[0]++, s_jobs[0].id.b[0]--);
    S_DIFFERS(s_results[1].exit_code++, s_results[1].exit_code--);
    S_DIFFERS(s_results[0].error = "bam!", s_results[0].error = "boom");
    S_DIFFERS(s_ids[1] = id, id.b[7] ^= 1; s_ids[1] = id);
    S_DIFFERS(s_codes[2]++, s_codes[2]--);
    S_DIFFERS(s_leases[0].attempt++, s_leases[0].attempt--);
    S_DIFFERS(s_leases[1].id.b[3]++, s_leases[1].id.b[3]--);
    S_DIFFERS(s_queues[0].ptr = "z", s_queues[0].ptr = "a");
#undef S_DIFFERS
    wire_msg_fini(&out);
    wire_buf_fini(&buf);
}
END_TEST

/* Submits n jobs of 16-byte payloads and checks them after a round trip. */
static void
s_batch_round_trip(uint32_t n)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    jobq_job_t *jobs = calloc(n, sizeof *jobs);
    char payload[16] = "0123456789abcde";
    for (uint32_t i = 0; i < n; i++) {
        jobq_job_init(&jobs[i]);
        jobs[i].queue = "batch";
        jobs[i].queue_len = 5;
        jobs[i].payload = payload;
        jobs[i].payload_len = sizeof payload;
        jobs[i].priority = i;
    }
    wire_msg_init(&in, WIRE_SUBMIT);
    in.fields = WIRE_F_REQ | WIRE_F_JOBS;
    in.req = n;
    in.jobs = jobs;
    in.njobs = n;
    s_round_trip(&in, &out, &buf);
    ck_assert_uint_eq(out.njobs, n);
    ck_assert_uint_eq(out.jobs[n - 1].priority, n - 1);
    wire_msg_fini(&out);
    free(jobs);
    wire_buf_fini(&buf);
}

START_TEST(test_batches_of_1_and_max_jobs_round_trip)
{
    s_batch_round_trip(1);
    s_batch_round_trip(WIRE_MAX_BATCH);
}
END_TEST

START_TEST(test_decoded_slices_point_into_the_input_buffer)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    s_sample(&in, WIRE_SUBMIT);
    in.fields |= WIRE_F_QUEUE | WIRE_F_MSG | WIRE_F_DATA | WIRE_F_QUEUES;
    s_round_trip(&in, &out, &buf);
    const char *lo = buf.data, *hi = buf.data + buf.len;
#define S_INSIDE(p, n) ck_assert((const char *)(p) >= lo && (const char *)(p) + (n) <= hi)
    S_INSIDE(out.queue.ptr, out.queue.len);
    S_INSIDE(out.msg.ptr, out.msg.len);
    S_INSIDE(out.data.ptr, out.data.len);
    S_INSIDE(out.queues[0].ptr, out.queues[0].len);
    for (uint32_t i = 0; i < out.njobs; i++) {
        S_INSIDE(out.jobs[i].queue, out.jobs[i].queue_len);
        S_INSIDE(out.jobs[i].payload, out.jobs[i].payload_len);
        S_INSIDE(out.jobs[i].unique, out.jobs[i].unique_len);
    }
#undef S_INSIDE
    /* One allocation holds every array: the jobs array is its start. */
    ck_assert_ptr_eq(out.owned_, out.jobs);
    wire_msg_fini(&out);
    ck_assert_ptr_null(out.owned_);
    wire_msg_fini(&out); /* twice is safe */
    wire_buf_fini(&buf);
}
END_TEST

START_TEST(test_encode_appends_and_reuses_the_buffer)
{
    wire_buf_t buf = {0};
    wire_msg_t a, b, out;
    s_sample(&a, WIRE_HEARTBEAT);
    s_sample(&b, WIRE_READY);
    ck_assert_jobq_ok(wire_encode(&a, &buf));
    size_t first = buf.len;
    ck_assert_jobq_ok(wire_encode(&b, &buf));
    ck_assert_uint_gt(buf.len, first);
    ck_assert_jobq_ok(wire_decode(&out, buf.data + first, buf.len - first, 0));
    ck_assert_int_eq(out.type, WIRE_READY);
    ck_assert_uint_eq(out.credit, 16);
    wire_msg_fini(&out);
    char *data = buf.data;
    buf.len = 0;
    ck_assert_jobq_ok(wire_encode(&a, &buf));
    ck_assert_ptr_eq(buf.data, data);
    ck_assert_uint_eq(buf.len, first);
    wire_buf_fini(&buf);
    ck_assert_ptr_null(buf.data);
}
END_TEST

/* ---- rejection --------------------------------------------------------- */

START_TEST(test_truncation_at_every_byte_offset_is_rejected)
{
    wire_buf_t buf = {0};
    wire_msg_t in, out;
    s_sample(&in, WIRE_SUBMIT);
    ck_assert_jobq_ok(wire_encode(&in, &buf));
    for (size_t n = 0; n < buf.len; n++) {
        char *copy = malloc(n ? n : 1); /* exactly n bytes, so ASan sees overreads */
        memcpy(copy, buf.data, n);
        int rc = wire_decode(&out, copy, n, 0);
        ck_assert_msg(rc == JOBQ_EPROTO, "prefix of %zu bytes: %s", n, jobq_errname(rc));
        ck_assert_msg(strncmp(out.error, "frame: ", 7) == 0, "prefix %zu: '%s'", n, out.error);
        ck_assert_ptr_null(out.owned_);
        wire_msg_fini(&out);
        free(copy);
    }
    ck_assert_jobq_ok(wire_decode(&out, buf.data, buf.len, 0));
    wire_msg_fini(&out);
    wire_buf_fini(&buf);
}
END_TEST

static const struct {
    const char *key, *hex;
    int code;
    const char *err;
} s_body_cases[] = {
    {"credit", "a1 78", JOBQ_EPROTO, "body.credit: expected uint32, got str"},
    {"credit", "ca 3f 80 00 00", JOBQ_EPROTO, "body.credit: expected uint32, got float"},
    {"credit", "cb 3f f0 00 00 00 00 00 00", JOBQ_EPROTO,
     "body.credit: expected uint32, got float"},
    {"credit", "c3", JOBQ_EPROTO, "body.credit: expected uint32, got bool"},
    {"credit", "c0", JOBQ_EPROTO, "body.credit: expected uint32, got nil"},
    {"credit", "ff", JOBQ_EPROTO, "body.credit: expected uint32, got negative int"},
    {"credit", "cf 00 00 00 01 00 00 00 00", JOBQ_EPROTO, "body.credit: 4294967296 out of range"},
    {"credit", "ce ff ff ff ff", JOBQ_OK, NULL},
    {"req", "91 01", JOBQ_EPROTO, "body.req: expected uint64, got array"},
    {"req", "d3 ff ff ff ff ff ff ff ff", JOBQ_EPROTO, "body.req: expected uint64, got negative"},
    {"req", "cf ff ff ff ff ff ff ff ff", JOBQ_OK, NULL},
    {"timeout", "80", JOBQ_EPROTO, "body.timeout: expected uint64, got map"},
    {"n", "d4 01 02", JOBQ_EPROTO, "body.n: expected uint64, got ext"},
    {"hb", "c4 00", JOBQ_EPROTO, "body.hb: expected uint32, got bin"},
    {"flags", "ce 00 00 00 01 ", JOBQ_OK, NULL},
    {"code", "a0", JOBQ_EPROTO, "body.code: expected uint32, got str"},
    {"role", "04", JOBQ_EPROTO, "body.role: 4 out of range"},
    {"role", "00", JOBQ_EPROTO, "body.role: 0 below the minimum 1"},
    {"role", "03", JOBQ_OK, NULL},
    {"q", "01", JOBQ_EPROTO, "body.q: expected str, got uint"},
    {"q", "a2 2d 61", JOBQ_EPROTO, "body.q: not a valid queue name"},
    {"q", "a0", JOBQ_EPROTO, "body.q: not a valid queue name"},
    {"q", "a3 61 00 62", JOBQ_EPROTO, "body.q: not a valid queue name"},
    {"msg", "c4 01 41", JOBQ_EPROTO, "body.msg: expected str, got bin"},
    {"name", "01", JOBQ_EPROTO, "body.name: expected str, got uint"},
    {"data", "01", JOBQ_EPROTO, "body.data: expected bin or str, got uint"},
    {"data", "c4 02 00 01", JOBQ_OK, NULL},
    {"data", "a2 7b 7d", JOBQ_OK, NULL},
    {"jobs", "80", JOBQ_EPROTO, "body.jobs: expected array, got map"},
    {"jobs", "90", JOBQ_EPROTO, "body.jobs: empty"},
    {"jobs", "91 01", JOBQ_EPROTO, "jobs[0]: expected map, got uint"},
    {"jobs", "91 80", JOBQ_EPROTO, "jobs[0].q: required"},
    {"results", "90", JOBQ_EPROTO, "body.results: empty"},
    {"results", "91 a0", JOBQ_EPROTO, "results[0]: expected map, got str"},
    {"ids", "90", JOBQ_OK, NULL},
    {"ids", "91 a1 78", JOBQ_EPROTO, "ids[0]: expected bin(16), got str"},
    {"ids", "91 c4 01 00", JOBQ_EPROTO, "ids[0]: expected bin(16), got bin(1)"},
    {"codes", "92 00 ff", JOBQ_EPROTO, "codes[1]: expected uint32, got negative int"},
    {"leases", "91 91 01", JOBQ_EPROTO, "leases[0]: expected [bin(16), uint32], got array"},
    {"leases", "91 92 c4 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 a0", JOBQ_EPROTO,
     "leases[0]: expected uint32, got str"},
    {"leases", "91 92 c4 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 07", JOBQ_OK, NULL},
    {"queues", "92 a1 61 a2 2d 61", JOBQ_EPROTO, "queues[1]: not a valid queue name"},
    {"queues", "92 a1 61 02", JOBQ_EPROTO, "queues[1]: expected str, got uint"},
    {"zzz", "93 c0 c3 82 a1 61 01 01 91 90", JOBQ_OK, NULL}, /* unknown keys are skipped */
};

START_TEST(test_wrong_body_types_and_ranges_are_rejected_naming_the_field)
{
    for (size_t i = 0; i < sizeof s_body_cases / sizeof s_body_cases[0]; i++) {
        msgpack_sbuffer sb;
        s_body_frame(&sb, s_body_cases[i].key, s_body_cases[i].hex);
        s_expect(&sb, s_body_cases[i].code, s_body_cases[i].err);
    }
}
END_TEST

static const struct {
    const char *key, *hex;
    int code;
    const char *err;
} s_job_cases[] = {
    {"q", "01", JOBQ_EPROTO, "jobs[0].q: expected str, got uint"},
    {"q", "a3 61 20 62", JOBQ_EPROTO, "jobs[0].q: not a valid queue name"},
    {"id", "c4 0f 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", JOBQ_EPROTO,
     "jobs[0].id: expected bin(16), got bin(15)"},
    {"id", "a1 78", JOBQ_EPROTO, "jobs[0].id: expected bin(16), got str"},
    {"p", "a1 78", JOBQ_EPROTO, "jobs[0].p: expected bin, got str"},
    {"p", "c4 00", JOBQ_OK, NULL},
    {"pri", "ca 3f 80 00 00", JOBQ_EPROTO, "jobs[0].pri: expected uint32, got float"},
    {"pri", "cf 00 00 00 01 00 00 00 00", JOBQ_EPROTO, "jobs[0].pri: 4294967296 out of range"},
    {"delay", "c2", JOBQ_EPROTO, "jobs[0].delay: expected uint64, got bool"},
    {"ttr", "00", JOBQ_EPROTO, "jobs[0].ttr: 0 below the minimum 1"},
    {"ttr", "d0 ff", JOBQ_EPROTO, "jobs[0].ttr: expected uint32, got negative int"},
    {"max", "00", JOBQ_EPROTO, "jobs[0].max: 0 below the minimum 1"},
    {"att", "cb 40 00 00 00 00 00 00 00", JOBQ_EPROTO, "jobs[0].att: expected uint32, got float"},
    {"uniq", "c4 01 61", JOBQ_EPROTO, "jobs[0].uniq: expected str, got bin"},
    {"extra", "92 c0 c0", JOBQ_OK, NULL},
};

START_TEST(test_wrong_job_types_and_ranges_are_rejected_naming_the_field)
{
    for (size_t i = 0; i < sizeof s_job_cases / sizeof s_job_cases[0]; i++) {
        msgpack_sbuffer sb;
        s_job_frame(&sb, WIRE_SUBMIT, s_job_cases[i].key, s_job_cases[i].hex);
        s_expect(&sb, s_job_cases[i].code, s_job_cases[i].err);
    }
}
END_TEST

static const struct {
    const char *key, *hex;
    int code;
    const char *err;
} s_result_cases[] = {
    {"st", "05", JOBQ_EPROTO, "results[0].st: 5 out of range"},
    {"st", "a1 78", JOBQ_EPROTO, "results[0].st: expected uint, got str"},
    {"exit", "ce 80 00 00 00", JOBQ_EPROTO, "results[0].exit: 2147483648 out of range for int32"},
    {"exit", "d3 ff ff ff ff 7f ff ff ff", JOBQ_EPROTO,
     "results[0].exit: -2147483649 out of range for int32"},
    {"exit", "d2 80 00 00 00", JOBQ_OK, NULL},
    {"sig", "c3", JOBQ_EPROTO, "results[0].sig: expected int32, got bool"},
    {"dur", "ca 00 00 00 00", JOBQ_EPROTO, "results[0].dur: expected uint64, got float"},
    {"out", "a1 41", JOBQ_EPROTO, "results[0].out: expected bin, got str"},
    {"err", "c4 01 41", JOBQ_EPROTO, "results[0].err: expected str, got bin"},
    {"att", "a0", JOBQ_EPROTO, "results[0].att: expected uint32, got str"},
    {"id", "c0", JOBQ_EPROTO, "results[0].id: expected bin(16), got nil"},
    {"unknown", "c0", JOBQ_OK, NULL},
};

START_TEST(test_wrong_result_types_and_ranges_are_rejected_naming_the_field)
{
    for (size_t i = 0; i < sizeof s_result_cases / sizeof s_result_cases[0]; i++) {
        msgpack_sbuffer sb;
        s_result_frame(&sb, s_result_cases[i].key, s_result_cases[i].hex);
        s_expect(&sb, s_result_cases[i].code, s_result_cases[i].err);
    }
}
END_TEST

START_TEST(test_any_integer_encoding_in_range_is_accepted)
{
    static const struct {
        const char *hex;
        int64_t want;
    } cases[] = {
        {"05", 5},
        {"cc 05", 5},
        {"cd 00 05", 5},
        {"ce 00 00 00 05", 5},
        {"cf 00 00 00 00 00 00 00 05", 5},
        {"d0 05", 5},
        {"d1 00 05", 5},
        {"d2 00 00 00 05", 5},
        {"d3 00 00 00 00 00 00 00 05", 5},
        {"e0", -32},
        {"d0 80", -128},
        {"d1 ff 00", -256},
        {"d2 ff ff ff fe", -2},
        {"d3 ff ff ff ff 80 00 00 00", INT32_MIN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer sb;
        wire_msg_t m;
        s_result_frame(&sb, "exit", cases[i].hex);
        ck_assert_jobq_ok(wire_decode(&m, sb.data, sb.size, 0));
        ck_assert_int_eq(m.results[0].exit_code, cases[i].want);
        wire_msg_fini(&m);
        msgpack_sbuffer_destroy(&sb);
        if (cases[i].want < 0)
            continue;
        s_body_frame(&sb, "credit", cases[i].hex);
        ck_assert_jobq_ok(wire_decode(&m, sb.data, sb.size, 0));
        ck_assert_uint_eq(m.credit, (uint64_t)cases[i].want);
        wire_msg_fini(&m);
        msgpack_sbuffer_destroy(&sb);
    }
}
END_TEST

START_TEST(test_error_names_the_index_of_the_bad_job)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    s_begin(&sb, &pk, 1, WIRE_SUBMIT, 2);
    s_key(&pk, "req");
    msgpack_pack_uint64(&pk, 7);
    s_key(&pk, "jobs");
    msgpack_pack_array(&pk, 5);
    for (int i = 0; i < 5; i++) {
        msgpack_pack_map(&pk, 1);
        s_key(&pk, "q");
        msgpack_pack_str_with_body(&pk, i == 3 ? "no spaces" : "ok", i == 3 ? 9 : 2);
    }
    s_expect(&sb, JOBQ_EPROTO, "jobs[3].q: not a valid queue name");
}
END_TEST

START_TEST(test_failed_decode_keeps_type_and_req_for_the_error_reply)
{
    msgpack_sbuffer sb;
    wire_msg_t m;
    s_job_frame(&sb, WIRE_SUBMIT, "pri", "a1 78"); /* "req": 1 comes first */
    ck_assert_jobq_err(wire_decode(&m, sb.data, sb.size, 0), JOBQ_EPROTO);
    ck_assert_int_eq(m.type, WIRE_SUBMIT);
    ck_assert_uint_eq(m.fields, WIRE_F_REQ);
    ck_assert_uint_eq(m.req, 1);
    ck_assert_ptr_null(m.jobs);
    ck_assert_uint_eq(m.njobs, 0);
    ck_assert_ptr_nonnull(strstr(m.error, "jobs[0].pri"));
    wire_msg_fini(&m);
    msgpack_sbuffer_destroy(&sb);
    s_body_frame(&sb, "req", "a1 78"); /* a req that is not a uint is not kept */
    ck_assert_jobq_err(wire_decode(&m, sb.data, sb.size, 0), JOBQ_EPROTO);
    ck_assert_uint_eq(m.fields, 0);
    wire_msg_fini(&m);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_deliver_jobs_must_carry_id_and_attempt)
{
    msgpack_sbuffer sb;
    s_job_frame(&sb, WIRE_DELIVER, "att", "01");
    s_expect(&sb, JOBQ_EPROTO, "jobs[0].id: required (non-zero) in DELIVER");
    s_job_frame(&sb, WIRE_DELIVER, "id", "c4 10 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10");
    s_expect(&sb, JOBQ_EPROTO, "jobs[0].att: required (>= 1) in DELIVER");
    /* The same job is fine in a SUBMIT, where the broker assigns ids. */
    s_job_frame(&sb, WIRE_SUBMIT, "att", "01");
    s_expect(&sb, JOBQ_OK, NULL);
}
END_TEST

START_TEST(test_missing_required_fields_are_rejected)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    s_begin(&sb, &pk, 1, WIRE_SUBMIT, 1);
    s_key(&pk, "req");
    msgpack_pack_uint64(&pk, 1);
    s_expect(&sb, JOBQ_EPROTO, "body.jobs: required by SUBMIT");
    s_begin(&sb, &pk, 1, WIRE_HELLO, 0);
    s_expect(&sb, JOBQ_EPROTO, "body.role: required by HELLO");
    s_begin(&sb, &pk, 1, WIRE_ERROR, 1);
    s_key(&pk, "code");
    msgpack_pack_uint64(&pk, 7);
    s_expect(&sb, JOBQ_EPROTO, "body.msg: required by ERROR");
    s_begin(&sb, &pk, 1, WIRE_EXTEND, 1);
    s_key(&pk, "leases");
    msgpack_pack_array(&pk, 0);
    s_expect(&sb, JOBQ_EPROTO, "body.timeout: required by EXTEND");
    s_begin(&sb, &pk, 1, WIRE_RESULT, 1);
    s_key(&pk, "results");
    s_hex(&sb, "91 82 a2 69 64 c4 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 a2 73 74 00");
    s_expect(&sb, JOBQ_EPROTO, "results[0].att: required");
    /* One code per id in SUBMIT_OK. */
    s_begin(&sb, &pk, 1, WIRE_SUBMIT_OK, 3);
    s_key(&pk, "req");
    msgpack_pack_uint64(&pk, 1);
    s_key(&pk, "ids");
    s_hex(&sb, "91 c4 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    s_key(&pk, "codes");
    s_hex(&sb, "92 00 00");
    s_expect(&sb, JOBQ_EPROTO, "body.codes: 2 codes for 1 ids");
    /* Every type with no fields at all: only those requiring nothing pass. */
    for (int t = 1; t < WIRE_TYPE_MAX_; t++) {
        s_begin(&sb, &pk, 1, (uint64_t)t, 0);
        int none = t == WIRE_HEARTBEAT || t == WIRE_SENTINEL || t == WIRE_DISCONNECT;
        s_expect(&sb, none ? JOBQ_OK : JOBQ_EPROTO, none ? NULL : "required by");
    }
}
END_TEST

START_TEST(test_duplicate_keys_are_rejected)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    s_begin(&sb, &pk, 1, WIRE_READY, 2);
    s_key(&pk, "credit");
    msgpack_pack_uint64(&pk, 1);
    s_key(&pk, "credit");
    msgpack_pack_uint64(&pk, 2);
    s_expect(&sb, JOBQ_EPROTO, "body.credit: duplicate key");
    s_begin(&sb, &pk, 1, WIRE_SUBMIT, 2);
    s_key(&pk, "req");
    msgpack_pack_uint64(&pk, 1);
    s_key(&pk, "jobs");
    s_hex(&sb, "91 82 a1 71 a1 61 a1 71 a1 62");
    s_expect(&sb, JOBQ_EPROTO, "jobs[0].q: duplicate key");
    s_begin(&sb, &pk, 1, WIRE_READY, 1);
    s_hex(&sb, "05 01"); /* a non-str key */
    s_expect(&sb, JOBQ_EPROTO, "body: map key is a uint, expected str");
}
END_TEST

START_TEST(test_bad_versions_types_and_frame_shapes_are_rejected)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    wire_msg_t m;
    s_begin(&sb, &pk, 2, WIRE_HEARTBEAT, 0);
    ck_assert_jobq_err(wire_decode(&m, sb.data, sb.size, 0), JOBQ_EVERSION);
    ck_assert_uint_eq(m.version, 2);
    ck_assert_ptr_nonnull(strstr(m.error, "version: peer speaks 2"));
    wire_msg_fini(&m);
    msgpack_sbuffer_destroy(&sb);
    /* A later version may change the shape: the version is judged first. */
    msgpack_sbuffer_init(&sb);
    s_hex(&sb, "92 07 c0");
    s_expect(&sb, JOBQ_EVERSION, "version");
    s_begin(&sb, &pk, 0, WIRE_HEARTBEAT, 0);
    s_expect(&sb, JOBQ_EVERSION, "peer speaks 0");
    static const struct {
        const char *hex, *err;
    } cases[] = {
        {"93 a1 31 0a 80", "version: expected uint, got str"},
        {"93 01 00 80", "type: unknown message type 0"},
        {"93 01 18 80", "type: unknown message type 24"},
        {"93 01 63 80", "type: unknown message type 99"},
        {"93 01 c2 80", "type: expected uint, got bool"},
        {"93 01 0a 90", "body: expected map, got array"},
        {"94 01 0a 80 c0", "frame: expected [version, type, body], got 4 elements"},
        {"92 01 0a", "frame: expected [version, type, body], got 2 elements"},
        {"90", "version: expected uint, got nothing"},
        {"80", "frame: expected array, got map"},
        {"01", "frame: expected array, got uint"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer_init(&sb);
        s_hex(&sb, cases[i].hex);
        s_expect(&sb, JOBQ_EPROTO, cases[i].err);
    }
}
END_TEST

START_TEST(test_trailing_bytes_and_reserved_byte_are_rejected)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_hex(&sb, "93 01 0a 80 c0");
    s_expect(&sb, JOBQ_EPROTO, "frame: trailing bytes after the value");
    msgpack_sbuffer_init(&sb);
    s_hex(&sb, "93 01 0a 80 93 01 0a 80");
    s_expect(&sb, JOBQ_EPROTO, "trailing bytes");
    msgpack_sbuffer_init(&sb);
    s_hex(&sb, "93 01 0a 81 a3 7a 7a 7a c1");
    s_expect(&sb, JOBQ_EPROTO, "frame: reserved byte 0xc1");
    msgpack_sbuffer_init(&sb);
    s_expect(&sb, JOBQ_EPROTO, "frame: empty frame");
    ck_assert_jobq_err(wire_prescan("\xc1", 1, NULL), JOBQ_EPROTO);
}
END_TEST

START_TEST(test_nesting_is_limited_to_32_levels)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    const char *why;
    char deep[40];
    /* 32 levels of arrays, the innermost empty: accepted by the pre-scan. */
    memset(deep, 0x91, sizeof deep);
    deep[31] = (char)0x90;
    ck_assert_jobq_ok(wire_prescan(deep, 32, &why));
    /* 33 levels: 33 x 0x91 then nil. */
    deep[31] = (char)0x91;
    deep[33] = (char)0xc0;
    ck_assert_jobq_err(wire_prescan(deep, 34, &why), JOBQ_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(why, "nesting"));
    deep[32] = (char)0x90;
    ck_assert_jobq_err(wire_prescan(deep, 33, &why), JOBQ_ETOOBIG); /* 33rd level empty */
    /* Inside a frame the body is level 2: an unknown key may hold 30 more. */
    s_begin(&sb, &pk, 1, WIRE_HEARTBEAT, 1);
    s_key(&pk, "deep");
    for (int i = 0; i < 29; i++)
        s_hex(&sb, "91");
    s_hex(&sb, "90");
    s_expect(&sb, JOBQ_OK, NULL);
    s_begin(&sb, &pk, 1, WIRE_HEARTBEAT, 1);
    s_key(&pk, "deep");
    for (int i = 0; i < 30; i++)
        s_hex(&sb, "91");
    s_hex(&sb, "90");
    s_expect(&sb, JOBQ_ETOOBIG, "frame: nesting deeper than 32 levels");
}
END_TEST

START_TEST(test_limits_on_sizes_give_etoobig)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    wire_msg_t m;
    char *big = calloc(1, WIRE_MAX_FRAME + 1);
    s_begin(&sb, &pk, 1, WIRE_SUBMIT, 2);
    s_key(&pk, "req");
    msgpack_pack_uint64(&pk, 1);
    s_key(&pk, "jobs");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    s_key(&pk, "q");
    msgpack_pack_str_with_body(&pk, "a", 1);
    s_key(&pk, "p");
    msgpack_pack_bin_with_body(&pk, big, JOBQ_PAYLOAD_MAX + 1);
    s_expect(&sb, JOBQ_ETOOBIG, "jobs[0].p: 1048577 bytes, limit 1048576");
    s_job_frame(&sb, WIRE_SUBMIT, "uniq", "");
    msgpack_pack_str_with_body(&pk, big, JOBQ_UNIQUE_KEY_MAX + 1); /* pk writes to sb too */
    s_expect(&sb, JOBQ_ETOOBIG, "jobs[0].uniq: 201 bytes, limit 200");
    s_begin(&sb, &pk, 1, WIRE_HEARTBEAT, 1);
    s_key(&pk, "msg");
    msgpack_pack_str_with_body(&pk, big, WIRE_TEXT_MAX + 1);
    s_expect(&sb, JOBQ_ETOOBIG, "body.msg: 4097 bytes, limit 4096");
    s_begin(&sb, &pk, 1, WIRE_HEARTBEAT, 1);
    s_key(&pk, "q");
    memset(big, 'a', JOBQ_QUEUE_NAME_MAX + 1);
    msgpack_pack_str_with_body(&pk, big, JOBQ_QUEUE_NAME_MAX + 1);
    s_expect(&sb, JOBQ_ETOOBIG, "body.q: 201 bytes, limit 200");
    /* WIRE_MAX_BATCH + 1 ids. */
    s_begin(&sb, &pk, 1, WIRE_HEARTBEAT, 1);
    s_key(&pk, "ids");
    msgpack_pack_array(&pk, WIRE_MAX_BATCH + 1);
    for (int i = 0; i <= WIRE_MAX_BATCH; i++)
        msgpack_pack_bin_with_body(&pk, s_id16, 16);
    s_expect(&sb, JOBQ_ETOOBIG, "body.ids: 4097 entries, limit 4096");
    /* A frame over max_frame is refused before it is read. */
    msgpack_sbuffer_init(&sb);
    s_hex(&sb, "93 01 0a 80");
    ck_assert_jobq_err(wire_decode(&m, sb.data, sb.size, 3), JOBQ_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(m.error, "frame: 4 bytes, limit 3"));
    ck_assert_jobq_ok(wire_decode(&m, sb.data, sb.size, 4));
    wire_msg_fini(&m);
    ck_assert_jobq_err(wire_decode(&m, big, WIRE_MAX_FRAME + 1, 0), JOBQ_ETOOBIG);
    msgpack_sbuffer_destroy(&sb);
    free(big);
}
END_TEST

START_TEST(test_prescan_walks_every_msgpack_type)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    /* Under an unknown key: one value of every format family. */
    s_begin(&sb, &pk, 1, WIRE_HEARTBEAT, 1);
    s_key(&pk, "all");
    s_hex(&sb, "dc 00 20"); /* array 16 of 32 */
    s_hex(&sb, "00 7f e0 ff c0 c2 c3");
    s_hex(&sb, "cc 01 cd 00 01 ce 00 00 00 01 cf 00 00 00 00 00 00 00 01");
    s_hex(&sb, "d0 ff d1 ff ff d2 ff ff ff ff d3 ff ff ff ff ff ff ff ff");
    s_hex(&sb, "ca 00 00 00 00 cb 00 00 00 00 00 00 00 00");
    s_hex(&sb, "a1 61 d9 01 61 da 00 01 61 db 00 00 00 01 61");
    s_hex(&sb, "c4 01 00 c5 00 01 00 c6 00 00 00 01 00");
    s_hex(&sb, "d4 01 00 d5 01 00 00 d6 01 00 00 00 00");
    s_hex(&sb, "d7 01 00 00 00 00 00 00 00 00");
    s_hex(&sb, "d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    s_hex(&sb, "c7 01 05 00 c8 00 01 05 00 c9 00 00 00 01 05 00");
    ck_assert_jobq_ok(wire_prescan(sb.data, sb.size, NULL));
    msgpack_sbuffer_destroy(&sb);
    /* The same count of values but containers of every width. */
    s_begin(&sb, &pk, 1, WIRE_HEARTBEAT, 1);
    s_key(&pk, "c");
    s_hex(&sb, "95 80 90 de 00 01 01 01 dd 00 00 00 01 c0 df 00 00 00 01 c0 c0");
    s_expect(&sb, JOBQ_OK, NULL);
}
END_TEST

/* ---- amplification bound ---------------------------------------------- */

/* Decodes data, checks the code, and returns the peak of extra heap use
 * during the decode (0 when it cannot be measured); *held gets what the
 * decoded message still holds, by mallinfo2(). */
static size_t
s_decode_peak(const void *data, size_t len, int want, size_t *held)
{
    wire_msg_t m;
    int measured = s_peak_tracking_start();
    size_t before = s_heap_in_use();
    s_cur = s_peak = 0;
    s_tracking = measured;
    int rc = wire_decode(&m, data, len, 0);
    s_tracking = 0;
    *held = s_heap_in_use() - before;
    ck_assert_msg(rc == want, "decode: %s (%s)", jobq_errname(rc), m.error);
    wire_msg_fini(&m);
    return (size_t)s_peak;
}

/* A rejected amplifier allocates nothing at all, not even for a moment. */
static void
s_assert_no_allocation(const void *data, size_t len, int want)
{
    size_t held, peak = s_decode_peak(data, len, want, &held);
    ck_assert_uint_eq(held, 0);
    ck_assert_uint_eq(peak, 0);
}

START_TEST(test_amplifiers_are_rejected_without_allocating)
{
    static const struct {
        const char *hex;
        int code;
    } amps[] = {
        {"dd 00 ff ff ff", JOBQ_EPROTO},
        {"df 00 ff ff ff", JOBQ_EPROTO},
        {"df ff ff ff ff 93 2e", JOBQ_EPROTO},
        {"db 7f ff ff ff", JOBQ_EPROTO},
        {"93 01 0a 81 a1 78 dd ff ff ff ff", JOBQ_EPROTO},
    };
    for (size_t i = 0; i < sizeof amps / sizeof amps[0]; i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        s_hex(&sb, amps[i].hex);
        s_assert_no_allocation(sb.data, sb.size, amps[i].code);
        msgpack_sbuffer_destroy(&sb);
    }
    char deep[34];
    memset(deep, 0x91, 33);
    deep[33] = (char)0xc0;
    s_assert_no_allocation(deep, sizeof deep, JOBQ_ETOOBIG);
    enum { N = 10000 };
    char *chain = malloc(3 * N);
    for (int i = 0; i < N; i++)
        memcpy(chain + 3 * i, "\xdc\xff\xff", 3);
    s_assert_no_allocation(chain, 3 * N, JOBQ_EPROTO);
    free(chain);
}
END_TEST

/* Checks that decoding one valid frame peaks at <= 64 x len + 64 KiB of heap
 * and holds no more than that afterwards. */
static void
s_assert_bounded(const wire_buf_t *buf, const char *what)
{
    size_t held, peak = s_decode_peak(buf->data, buf->len, JOBQ_OK, &held);
    size_t bound = 64 * buf->len + 64 * 1024;
    ck_assert_msg(peak <= bound && held <= bound,
                  "%s: peak %zu, held %zu bytes for a %zu-byte frame (bound %zu)", what, peak, held,
                  buf->len, bound);
}

START_TEST(test_valid_frame_decode_allocation_is_bounded)
{
    wire_buf_t buf = {0};
    wire_msg_t m;
    /* The densest jobs: {"q": "a"}, 5 bytes each, WIRE_MAX_BATCH of them. */
    jobq_job_t *jobs = calloc(WIRE_MAX_BATCH, sizeof *jobs);
    for (int i = 0; i < WIRE_MAX_BATCH; i++) {
        jobq_job_init(&jobs[i]);
        jobs[i].queue = "a";
        jobs[i].queue_len = 1;
    }
    wire_msg_init(&m, WIRE_SUBMIT);
    m.fields = WIRE_F_REQ | WIRE_F_JOBS;
    m.jobs = jobs;
    m.njobs = WIRE_MAX_BATCH;
    ck_assert_jobq_ok(wire_encode(&m, &buf));
    s_assert_bounded(&buf, "4096 minimal jobs");
    /* A 1 MiB payload. */
    char *big = calloc(1, JOBQ_PAYLOAD_MAX);
    jobs[0].payload = big;
    jobs[0].payload_len = JOBQ_PAYLOAD_MAX;
    m.njobs = 1;
    buf.len = 0;
    ck_assert_jobq_ok(wire_encode(&m, &buf));
    s_assert_bounded(&buf, "1 MiB payload");
    /* Unknown keys holding the densest containers: nils and pairs of nils. */
    for (int k = 0; k < 2; k++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        s_begin(&sb, &pk, 1, WIRE_HEARTBEAT, 1);
        s_key(&pk, "x");
        if (k == 0)
            msgpack_pack_array(&pk, 500000);
        else
            msgpack_pack_map(&pk, 250000);
        for (int i = 0; i < 500000; i++)
            msgpack_pack_nil(&pk);
        wire_buf_t raw = {sb.data, sb.size, sb.size};
        s_assert_bounded(&raw, k == 0 ? "array of 500k nils" : "map of 250k nil pairs");
        msgpack_sbuffer_destroy(&sb);
    }
    free(big);
    free(jobs);
    wire_buf_fini(&buf);
}
END_TEST

/* ---- encoder validation ------------------------------------------------ */

/* Encodes m into a buffer that already holds a 4-byte HEARTBEAT and checks the code, the
 * error text, and that the buffer was left as it was. */
static void
s_encode_fails(wire_msg_t *m, int want, const char *err)
{
    wire_buf_t buf = {0};
    wire_msg_t prefix;
    wire_msg_init(&prefix, WIRE_HEARTBEAT);
    ck_assert_jobq_ok(wire_encode(&prefix, &buf));
    size_t len = buf.len;
    int rc = wire_encode(m, &buf);
    ck_assert_msg(rc == want, "encode: %s (%s), expected %s", jobq_errname(rc), m->error,
                  jobq_errname(want));
    ck_assert_msg(strstr(m->error, err) != NULL, "error '%s' lacks '%s'", m->error, err);
    ck_assert_uint_eq(buf.len, len);
    ck_assert_int_eq(memcmp(buf.data, "\x93\x01\x0a\x80", 4), 0);
    wire_buf_fini(&buf);
}

START_TEST(test_encode_validates_and_leaves_the_buffer_unchanged)
{
    wire_msg_t m;
    s_sample(&m, WIRE_SUBMIT);
    s_jobs[2].queue = "bad name";
    s_jobs[2].queue_len = 8;
    s_encode_fails(&m, JOBQ_EINVAL, "jobs[2].q: not a valid queue name");
    s_sample(&m, WIRE_SUBMIT);
    s_jobs[1].ttr_ms = 0;
    s_encode_fails(&m, JOBQ_EINVAL, "jobs[1].ttr");
    s_sample(&m, WIRE_SUBMIT);
    s_jobs[0].payload_len = JOBQ_PAYLOAD_MAX + 1;
    s_encode_fails(&m, JOBQ_ETOOBIG, "jobs[0].p: 1048577 bytes");
    s_sample(&m, WIRE_SUBMIT);
    s_jobs[0].payload = NULL;
    s_encode_fails(&m, JOBQ_EINVAL, "jobs[0].p: NULL with length 5");
    s_sample(&m, WIRE_DELIVER);
    s_jobs[1].attempt = 0;
    s_encode_fails(&m, JOBQ_EINVAL, "jobs[1].att: required (>= 1) in DELIVER");
    s_sample(&m, WIRE_RESULT);
    s_results[1].status = (jobq_status)7;
    s_encode_fails(&m, JOBQ_EINVAL, "results[1].st: 7 out of range");
    s_sample(&m, WIRE_HELLO);
    m.role = 9;
    s_encode_fails(&m, JOBQ_EINVAL, "body.role: 9 out of range");
    s_sample(&m, WIRE_SUBMIT);
    m.fields &= ~WIRE_F_REQ;
    s_encode_fails(&m, JOBQ_EINVAL, "body.req: required by SUBMIT");
    s_sample(&m, WIRE_SUBMIT);
    m.njobs = 0;
    s_encode_fails(&m, JOBQ_EINVAL, "body.jobs: empty");
    s_sample(&m, WIRE_SUBMIT);
    m.njobs = WIRE_MAX_BATCH + 1;
    s_encode_fails(&m, JOBQ_ETOOBIG, "body.jobs: 4097 entries");
    s_sample(&m, WIRE_SUBMIT);
    m.jobs = NULL;
    s_encode_fails(&m, JOBQ_EINVAL, "body.jobs: NULL with 3 entries");
    s_sample(&m, WIRE_SUBMIT_OK);
    m.ncodes = 2;
    s_encode_fails(&m, JOBQ_EINVAL, "body.codes: 2 codes for 3 ids");
    s_sample(&m, WIRE_READY);
    s_queues[1] = s_str("");
    s_encode_fails(&m, JOBQ_EINVAL, "queues[1]: not a valid queue name");
    s_queues[1] = s_str("b.c");
    s_sample(&m, WIRE_ERROR);
    m.msg.len = WIRE_TEXT_MAX + 1;
    s_encode_fails(&m, JOBQ_ETOOBIG, "body.msg: 4097 bytes");
    s_sample(&m, (wire_type)0);
    s_encode_fails(&m, JOBQ_EINVAL, "type: unknown message type 0");
    s_sample(&m, WIRE_HEARTBEAT);
    m.fields = 1u << 20;
    s_encode_fails(&m, JOBQ_EINVAL, "fields: unknown bits 0x100000");
}
END_TEST

START_TEST(test_encode_refuses_frames_over_the_frame_limit)
{
    wire_msg_t m;
    char *big = calloc(1, JOBQ_PAYLOAD_MAX);
    s_sample(&m, WIRE_SUBMIT);
    for (int i = 0; i < 3; i++) {
        s_jobs[i].payload = big;
        s_jobs[i].payload_len = JOBQ_PAYLOAD_MAX;
    }
    s_encode_fails(&m, JOBQ_ETOOBIG, "jobs[1]: frame grows past");
    /* 1 MiB of data plus 4096 ids: every field within its limit, the frame not. */
    jobq_id_t *ids = calloc(WIRE_MAX_BATCH, sizeof *ids);
    s_sample(&m, WIRE_STATS_REPLY);
    m.data = (wire_str_t){big, WIRE_DATA_MAX};
    m.fields |= WIRE_F_IDS;
    m.ids = ids;
    m.nids = WIRE_MAX_BATCH;
    s_encode_fails(&m, JOBQ_ETOOBIG, "frame: 1122");
    free(ids);
    free(big);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("wire");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_every_message_type_round_trips);
    tcase_add_test(tc, test_every_body_field_round_trips);
    tcase_add_test(tc, test_every_job_field_round_trips_including_nul_bytes);
    tcase_add_test(tc, test_absent_job_keys_take_the_job_init_defaults);
    tcase_add_test(tc, test_every_result_field_round_trips);
    tcase_add_test(tc, test_empty_and_1_mib_payloads_round_trip);
    tcase_add_test(tc, test_empty_strings_and_arrays_round_trip);
    tcase_add_test(tc, test_msg_equal_notices_every_difference);
    tcase_add_test(tc, test_batches_of_1_and_max_jobs_round_trip);
    tcase_add_test(tc, test_decoded_slices_point_into_the_input_buffer);
    tcase_add_test(tc, test_encode_appends_and_reuses_the_buffer);
    tcase_add_test(tc, test_truncation_at_every_byte_offset_is_rejected);
    tcase_add_test(tc, test_wrong_body_types_and_ranges_are_rejected_naming_the_field);
    tcase_add_test(tc, test_wrong_job_types_and_ranges_are_rejected_naming_the_field);
    tcase_add_test(tc, test_wrong_result_types_and_ranges_are_rejected_naming_the_field);
    tcase_add_test(tc, test_any_integer_encoding_in_range_is_accepted);
    tcase_add_test(tc, test_error_names_the_index_of_the_bad_job);
    tcase_add_test(tc, test_failed_decode_keeps_type_and_req_for_the_error_reply);
    tcase_add_test(tc, test_deliver_jobs_must_carry_id_and_attempt);
    tcase_add_test(tc, test_missing_required_fields_are_rejected);
    tcase_add_test(tc, test_duplicate_keys_are_rejected);
    tcase_add_test(tc, test_bad_versions_types_and_frame_shapes_are_rejected);
    tcase_add_test(tc, test_trailing_bytes_and_reserved_byte_are_rejected);
    tcase_add_test(tc, test_nesting_is_limited_to_32_levels);
    tcase_add_test(tc, test_limits_on_sizes_give_etoobig);
    tcase_add_test(tc, test_prescan_walks_every_msgpack_type);
    tcase_add_test(tc, test_amplifiers_are_rejected_without_allocating);
    tcase_add_test(tc, test_valid_frame_decode_allocation_is_bounded);
    tcase_add_test(tc, test_encode_validates_and_leaves_the_buffer_unchanged);
    tcase_add_test(tc, test_encode_refuses_frames_over_the_frame_limit);
    tcase_add_test(tc, test_corpus_frames_re_encode_to_the_same_bytes);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
