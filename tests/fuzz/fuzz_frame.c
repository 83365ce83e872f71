/*
 * tests/fuzz/fuzz_frame.c: libFuzzer target for the frame decoder
 * (RELIABILITY.md §3.7 fuzz_frame_decoder): pre-scan, msgpack_unpack_next and
 * schema validation, via wire_decode.
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
