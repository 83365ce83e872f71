/*
 * tests/fuzz/tools/gen_frame_corpus.c: writes the seed corpus of the frame
 * fuzzer (tests/fuzz/corpus/frame/) and prints the examples of
 * docs/PROTOCOL.md. Not part of the build; build and run it by hand, with
 * BUILD any configured build directory of the tree:
 *
 *   cmake --build BUILD --target jobq_static
 *   cc -std=c11 -D_GNU_SOURCE -I. -Iinclude tests/fuzz/tools/gen_frame_corpus.c \
 *      BUILD/libjobq.a -lmsgpackc -lzmq -lpthread -lrt -o /tmp/gen_frame_corpus
 *   /tmp/gen_frame_corpus tests/fuzz/corpus/frame   # (re)writes the seed corpus
 *   /tmp/gen_frame_corpus --doc                     # prints hex + rendering
 *
 * (from the top of the source tree). Crash regressions (regress_*) found by
 * the fuzzer are added to the corpus by hand and are not written here.
 *
 * The corpus holds one valid frame of every message type (valid_*), a variant
 * with every field set (full_*), the amplifiers of RELIABILITY.md §3.7 (amp_*)
 * and a few near misses (bad_*).
 */
#include "common/wire.h"
#include "jobq/errors.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jobq_id_t s_id = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
static jobq_job_t s_jobs[2];
static jobq_result_t s_results[1];
static uint32_t s_codes[1];
static wire_lease_t s_leases[1];
static wire_str_t s_queues[1] = {{"emails", 6}};

static wire_str_t
s_str(const char *s)
{
    return (wire_str_t){s, (uint32_t)strlen(s)};
}

/* The small example of each type shown in docs/PROTOCOL.md. */
static void
s_example(wire_msg_t *m, wire_type t)
{
    jobq_job_init(&s_jobs[0]);
    s_jobs[0].queue = "emails";
    s_jobs[0].queue_len = 6;
    s_jobs[0].payload = "hello";
    s_jobs[0].payload_len = 5;
    if (t == WIRE_DELIVER) {
        s_jobs[0].id = s_id;
        s_jobs[0].attempt = 1;
    }
    jobq_result_init(&s_results[0]);
    s_results[0].id = s_id;
    s_results[0].attempt = 1;
    s_results[0].duration_us = 1500;
    s_results[0].output = "ok";
    s_results[0].output_len = 2;
    s_leases[0] = (wire_lease_t){s_id, 1};
    wire_msg_init(m, t);
    m->jobs = s_jobs;
    m->njobs = 1;
    m->results = s_results;
    m->nresults = 1;
    m->ids = &s_id;
    m->nids = 1;
    m->codes = s_codes;
    m->ncodes = 1;
    m->leases = s_leases;
    m->nleases = 1;
    m->queues = s_queues;
    m->nqueues = 1;
    m->queue = s_str("emails");
    m->role = WIRE_ROLE_WORKER;
    m->hb_ms = 1000;
    m->credit = 16;
    m->name = s_str(t == WIRE_ADMIN ? "kick" : "worker-1");
    m->msg = s_str(t == WIRE_ERROR        ? "jobs[0].q: not a valid queue name"
                   : t == WIRE_WELCOME    ? "jobq 0.1.0"
                   : t == WIRE_DISCONNECT ? "bye"
                                          : "");
    m->code = JOBQ_EPROTO;
    m->data = s_str(t == WIRE_REPORT ? "{\"done\":10}" : "{\"queues\":1}");
    static const struct {
        uint64_t req, timeout, count;
        uint32_t fields;
    } ex[WIRE_TYPE_MAX_] = {
        [WIRE_HELLO] = {0, 0, 0, WIRE_F_ROLE | WIRE_F_NAME | WIRE_F_HB},
        [WIRE_WELCOME] = {0, 0, 0, WIRE_F_HB | WIRE_F_FLAGS | WIRE_F_MSG},
        [WIRE_SUBMIT] = {1, 0, 0, WIRE_F_REQ | WIRE_F_JOBS},
        [WIRE_SUBMIT_OK] = {1, 0, 0, WIRE_F_REQ | WIRE_F_IDS | WIRE_F_CODES},
        [WIRE_READY] = {0, 0, 0, WIRE_F_CREDIT | WIRE_F_QUEUES},
        [WIRE_DELIVER] = {0, 0, 0, WIRE_F_JOBS},
        [WIRE_RESULT] = {0, 0, 0, WIRE_F_RESULTS},
        [WIRE_RESULT_OK] = {0, 0, 0, WIRE_F_IDS | WIRE_F_CODES},
        [WIRE_EXTEND] = {0, 30000, 0, WIRE_F_LEASES | WIRE_F_TIMEOUT},
        [WIRE_WAIT] = {2, 5000, 0, WIRE_F_REQ | WIRE_F_IDS | WIRE_F_TIMEOUT},
        [WIRE_RESULTS] = {2, 0, 0, WIRE_F_REQ | WIRE_F_RESULTS},
        [WIRE_JOIN] = {3, 60000, 0, WIRE_F_REQ | WIRE_F_QUEUE | WIRE_F_TIMEOUT},
        [WIRE_JOIN_OK] = {3, 0, 0, WIRE_F_REQ | WIRE_F_QUEUE | WIRE_F_COUNT},
        [WIRE_STATS] = {4, 0, 0, WIRE_F_REQ},
        [WIRE_STATS_REPLY] = {4, 0, 0, WIRE_F_REQ | WIRE_F_DATA},
        [WIRE_STOP_WORKERS] = {5, 0, 0, WIRE_F_REQ | WIRE_F_QUEUE},
        [WIRE_ERROR] = {1, 0, 0, WIRE_F_REQ | WIRE_F_CODE | WIRE_F_MSG},
        [WIRE_DISCONNECT] = {0, 0, 0, WIRE_F_MSG},
        [WIRE_OK] = {5, 0, 2, WIRE_F_REQ | WIRE_F_COUNT},
        [WIRE_ADMIN] = {6, 0, 10, WIRE_F_REQ | WIRE_F_NAME | WIRE_F_QUEUE | WIRE_F_COUNT},
        [WIRE_REPORT] = {0, 0, 0, WIRE_F_DATA},
    };
    m->req = ex[t].req;
    m->timeout_ms = ex[t].timeout;
    m->count = ex[t].count;
    m->fields = ex[t].fields;
}

/* The example with every field of its jobs and results set. */
static void
s_full(wire_msg_t *m, wire_type t)
{
    s_example(m, t);
    for (int i = 0; i < 2; i++) {
        jobq_job_t *j = &s_jobs[i];
        jobq_job_init(j);
        j->id = s_id;
        j->id.b[15] = (uint8_t)i;
        j->queue = "emails.high";
        j->queue_len = 11;
        j->payload = "p\0y";
        j->payload_len = 3;
        j->priority = 10;
        j->delay_ms = 2000;
        j->ttr_ms = 60000;
        j->max_attempts = 5;
        j->attempt = 2;
        j->unique = "order-42";
        j->unique_len = 8;
    }
    m->njobs = 2;
    s_results[0].status = JOBQ_STATUS_FAILED;
    s_results[0].exit_code = -1;
    s_results[0].signal = 9;
    s_results[0].error = "killed";
    s_results[0].error_len = 6;
    m->fields |= WIRE_F_REQ;
}

static void
s_write(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static void
s_lower(char *out, const char *in)
{
    for (; *in; in++)
        *out++ = (char)(*in >= 'A' && *in <= 'Z' ? *in + 32 : *in);
    *out = '\0';
}

/* Prints o in a JSON-like notation: bin as h'hex', str quoted. */
static void
s_render(const msgpack_object *o)
{
    uint32_t i;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        printf("%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        printf("%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_STR:
        printf("\"%.*s\"", (int)o->via.str.size, o->via.str.ptr);
        break;
    case MSGPACK_OBJECT_BIN:
        printf("h'");
        for (i = 0; i < o->via.bin.size; i++)
            printf("%02x", (unsigned char)o->via.bin.ptr[i]);
        printf("'");
        break;
    case MSGPACK_OBJECT_ARRAY:
        printf("[");
        for (i = 0; i < o->via.array.size; i++) {
            printf(i ? ", " : "");
            s_render(&o->via.array.ptr[i]);
        }
        printf("]");
        break;
    case MSGPACK_OBJECT_MAP:
        printf("{");
        for (i = 0; i < o->via.map.size; i++) {
            printf(i ? ", " : "");
            s_render(&o->via.map.ptr[i].key);
            printf(": ");
            s_render(&o->via.map.ptr[i].val);
        }
        printf("}");
        break;
    default:
        printf("?");
    }
}

static void
s_doc(void)
{
    wire_buf_t buf = {0};
    for (int t = 1; t < WIRE_TYPE_MAX_; t++) {
        wire_msg_t m;
        s_example(&m, (wire_type)t);
        buf.len = 0;
        if (wire_encode(&m, &buf) != JOBQ_OK) {
            fprintf(stderr, "%s: %s\n", wire_type_name(t), m.error);
            exit(1);
        }
        printf("### %s (%zu bytes)\n", wire_type_name(t), buf.len);
        for (size_t i = 0; i < buf.len; i++)
            printf("%02x%s", (unsigned char)buf.data[i], (i % 32 == 31) ? "\n" : " ");
        printf("\n");
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        msgpack_unpack_next(&up, buf.data, buf.len, NULL);
        s_render(&up.data);
        printf("\n\n");
        msgpack_unpacked_destroy(&up);
    }
    wire_buf_fini(&buf);
}

static void
s_corpus(const char *dir)
{
    wire_buf_t buf = {0};
    char name[64], lower[32];
    for (int t = 1; t < WIRE_TYPE_MAX_; t++) {
        for (int full = 0; full < 2; full++) {
            wire_msg_t m;
            (full ? s_full : s_example)(&m, (wire_type)t);
            buf.len = 0;
            if (wire_encode(&m, &buf) != JOBQ_OK) {
                fprintf(stderr, "%s: %s\n", wire_type_name(t), m.error);
                exit(1);
            }
            s_lower(lower, wire_type_name(t));
            snprintf(name, sizeof name, "%s_%s", full ? "full" : "valid", lower);
            s_write(dir, name, buf.data, buf.len);
            if (t == WIRE_SUBMIT && !full) /* a truncated and an over-long SUBMIT */
                s_write(dir, "bad_truncated_submit", buf.data, buf.len - 1);
            if (t == WIRE_SUBMIT && !full) {
                char *more = malloc(buf.len + 1);
                memcpy(more, buf.data, buf.len);
                more[buf.len] = (char)0xc0;
                s_write(dir, "bad_trailing_byte", more, buf.len + 1);
                free(more);
            }
        }
    }
    s_write(dir, "amp_dd00ffffff", "\xdd\x00\xff\xff\xff", 5);
    s_write(dir, "amp_df00ffffff", "\xdf\x00\xff\xff\xff", 5);
    s_write(dir, "amp_dfffffffff932e", "\xdf\xff\xff\xff\xff\x93\x2e", 7);
    s_write(dir, "amp_db7fffffff", "\xdb\x7f\xff\xff\xff", 5);
    char deep[34];
    memset(deep, 0x91, 33);
    deep[33] = (char)0xc0;
    s_write(dir, "amp_deep33", deep, sizeof deep);
    char *chain = malloc(30000);
    for (int i = 0; i < 10000; i++)
        memcpy(chain + 3 * i, "\xdc\xff\xff", 3);
    s_write(dir, "amp_dcffff_chain", chain, 30000);
    free(chain);
    s_write(dir, "bad_reserved_c1", "\x93\x01\x0a\x81\xa1\x78\xc1", 7);
    s_write(dir, "bad_version_2", "\x93\x02\x0a\x80", 4);
    s_write(dir, "bad_type_99", "\x93\x01\x63\x80", 4);
    wire_buf_fini(&buf);
}

int
main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--doc") == 0) {
        s_doc();
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR | --doc\n", argv[0]);
        return 2;
    }
    s_corpus(argv[1]);
    return 0;
}
