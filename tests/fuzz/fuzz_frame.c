/*
 * tests/fuzz/fuzz_frame.c: libFuzzer target for the frame decoder
 * (RELIABILITY.md §3.7 fuzz_frame_decoder): pre-scan, msgpack_unpack_next and
 * schema validation, via wire_decode.
 *
 * Differential check of the tree reader (common/mpack.h): for every input the
 * pre-scan accepts, jobq's reader and msgpack-c's msgpack_unpack_next must
 * build the same tree (floats compared bit for bit).
 *
 * Every input must be decoded or rejected cleanly. A rejection must carry an
 * error text and hold no memory. A frame that decodes must re-encode, decode
 * again to an equal message, and encode to the same bytes a second time (the
 * encoding of a message is canonical).
 *
 * Built twice (tests/CMakeLists.txt): as the libFuzzer binary fuzz_frame with
 * -DJOBQ_FUZZ=ON and clang, and always as replay_frame, which feeds it every
 * file of tests/fuzz/corpus/frame (CTest fuzz_corpus_replay_frame).
 */
#include "common/mpack.h"
#include "common/wire.h"
#include "jobq/errors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise of the codec: say which, then crash so the fuzzer keeps
 * the input. */
static void
s_fail(const char *what, const wire_msg_t *m)
{
    fprintf(stderr, "fuzz_frame: %s (type %d, error '%s')\n", what, (int)m->type, m->error);
    abort();
}

/* Re-encodes a decoded message and checks the round trip. */
static void
s_round_trip(wire_msg_t *a, size_t size)
{
    wire_buf_t buf = {0}, again = {0};
    wire_msg_t b;
    int rc = wire_encode(a, &buf);
    if (rc == JOBQ_ETOOBIG && size > WIRE_MAX_FRAME - 64) {
        /* "data" sent as a short str comes back as bin, one byte longer. */
        wire_buf_fini(&buf);
        return;
    }
    if (rc != JOBQ_OK)
        s_fail("a decoded message does not encode", a);
    if (wire_decode(&b, buf.data, buf.len, 0) != JOBQ_OK)
        s_fail("a re-encoded message does not decode", &b);
    if (!wire_msg_equal(a, &b))
        s_fail("the round trip changed the message", a);
    if (wire_encode(&b, &again) != JOBQ_OK || again.len != buf.len ||
        memcmp(again.data, buf.data, buf.len) != 0)
        s_fail("the encoding is not canonical", &b);
    wire_msg_fini(&b);
    wire_buf_fini(&again);
    wire_buf_fini(&buf);
}

/* Whether two trees are equal: same types, values, and contents. */
static int
s_same(const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof a->via.f64) == 0;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        return a->via.str.size == b->via.str.size &&
               (a->via.str.size == 0 ||
                memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
    case MSGPACK_OBJECT_EXT:
        return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size &&
               (a->via.ext.size == 0 ||
                memcmp(a->via.ext.ptr, b->via.ext.ptr, a->via.ext.size) == 0);
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return 0;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!s_same(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                return 0;
        return 1;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size)
            return 0;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!s_same(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
                !s_same(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                return 0;
        return 1;
    case MSGPACK_OBJECT_BOOLEAN:
        return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_NIL:
        return 1;
    default: /* integers */
        return a->via.u64 == b->via.u64;
    }
}

/* jobq's tree reader against msgpack-c's, on bytes the pre-scan accepted. */
static void
s_differential(const uint8_t *data, size_t size)
{
    uint64_t elems;
    if (wire_prescan_count(data, size, NULL, &elems) != JOBQ_OK)
        return;
    if (elems > size) {
        fprintf(stderr, "fuzz_frame: the pre-scan counted %llu elements in %zu bytes\n",
                (unsigned long long)elems, size);
        abort();
    }
    msgpack_object *objs = malloc((elems ? elems : 1) * sizeof *objs), root;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int theirs = msgpack_unpack_next(&up, (const char *)data, size, &off);
    int ours = mpack_unpack(data, size, elems, objs, &root);
    if (ours != 0 || theirs != MSGPACK_UNPACK_SUCCESS || off != size || !s_same(&root, &up.data)) {
        fprintf(stderr, "fuzz_frame: tree readers disagree (ours %d, msgpack-c %d at %zu of %zu)\n",
                ours, theirs, off, size);
        abort();
    }
    msgpack_unpacked_destroy(&up);
    free(objs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_differential(data, size);
    wire_msg_t m;
    int rc = wire_decode(&m, data, size, 0);
    if (rc == JOBQ_OK) {
        s_round_trip(&m, size);
    } else {
        if (rc != JOBQ_EPROTO && rc != JOBQ_ETOOBIG && rc != JOBQ_EVERSION)
            s_fail("unexpected error code", &m);
        if (m.error[0] == '\0' || m.owned_ != NULL || m.jobs != NULL)
            s_fail("a rejected frame left no error text or held memory", &m);
    }
    wire_msg_fini(&m);
    return 0;
}
