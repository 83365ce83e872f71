/*
 * common/wire.h: the msgpack codec for broker messages, with bounded decoding.
 *
 * A message is one ZeroMQ frame holding one msgpack value:
 *
 *     [ version: uint, type: uint, body: map ]
 *
 * The body's keys are short strings (docs/PROTOCOL.md lists every key, its
 * type and which message types require it). Unknown keys are skipped, so a
 * peer may add optional keys without a version bump.
 *
 * WIRE_VERSION: bump it when a key changes meaning or type, or a required key
 * is added; adding an optional key or a new message type does not bump it.
 *
 * Decoding is bounded (RELIABILITY.md §0 item 3): wire_prescan() walks the raw
 * bytes first and refuses input whose declared element count exceeds the bytes
 * that remain, that nests deeper than WIRE_MAX_DEPTH, that has a str/bin/ext
 * length past the end, uses the reserved byte 0xc1, or has trailing bytes. Only
 * then does msgpack-c see it, so its allocation is O(frame bytes). Then the
 * schema check: types, ranges, required keys; errors name the field.
 *
 * Error codes of wire_decode: JOBQ_ETOOBIG for a frame over max_frame, nesting
 * deeper than WIRE_MAX_DEPTH, or a str/bin/array over its own limit (payload,
 * text, batch); JOBQ_EVERSION for a version other than WIRE_VERSION;
 * JOBQ_EPROTO for everything else (malformed msgpack, wrong type, value out of
 * range, unknown message type, missing or duplicate key). wire_encode returns
 * JOBQ_EINVAL where the decoder would say JOBQ_EPROTO.
 */
#ifndef JOBQ_COMMON_WIRE_H
#define JOBQ_COMMON_WIRE_H

#include "jobq/job.h"

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
#define WIRE_MAX_DEPTH 32
#define WIRE_MAX_BATCH 4096                           /* jobs, results or ids in one frame */
#define WIRE_MAX_FRAME (JOBQ_PAYLOAD_MAX + 64 * 1024) /* default frame size limit */
#define WIRE_TEXT_MAX 4096                            /* "msg" and "name" strings */
#define WIRE_DATA_MAX (1024u * 1024u)                 /* "data" bytes */
#define WIRE_MAX_QUEUES 256                           /* names in "queues" */

/* Message types. Numbers are stable wire values. */
typedef enum wire_type {
    WIRE_HELLO = 1,         /* client -> broker: role, name, hb */
    WIRE_WELCOME = 2,       /* broker -> client: hb, flags, msg (server version) */
    WIRE_SUBMIT = 3,        /* producer -> broker: req, jobs */
    WIRE_SUBMIT_OK = 4,     /* broker -> producer: req, ids, codes (one per job) */
    WIRE_READY = 5,         /* worker -> broker: credit, queues */
    WIRE_DELIVER = 6,       /* broker -> worker: jobs (each with its attempt) */
    WIRE_RESULT = 7,        /* worker -> broker: results (fenced by id+attempt) */
    WIRE_RESULT_OK = 8,     /* broker -> worker: ids, codes (OK, STALE, FORBIDDEN...) */
    WIRE_EXTEND = 9,        /* worker -> broker: leases, timeout (new lease length) */
    WIRE_HEARTBEAT = 10,    /* either way: no body fields required */
    WIRE_WAIT = 11,         /* producer -> broker: req, ids, timeout */
    WIRE_RESULTS = 12,      /* broker -> producer: results (reply to WAIT or pushed) */
    WIRE_JOIN = 13,         /* producer -> broker: req, queue, timeout */
    WIRE_JOIN_OK = 14,      /* broker -> producer: req, queue, count */
    WIRE_STATS = 15,        /* admin -> broker: req, queue (optional) */
    WIRE_STATS_REPLY = 16,  /* broker -> admin: req, data (JSON text) */
    WIRE_STOP_WORKERS = 17, /* admin -> broker: req, queue (optional) */
    WIRE_SENTINEL = 18,     /* broker -> worker: finish the current job, report, exit */
    WIRE_ERROR = 19,        /* either way: req (if any), code, msg */
    WIRE_DISCONNECT = 20,   /* either way: msg (optional) */
    WIRE_OK = 21,           /* broker -> client: req, count (generic acknowledgement) */
    WIRE_ADMIN = 22,        /* admin -> broker: req, name (verb), queue, ids, count, timeout */
    WIRE_REPORT = 23,       /* worker -> broker: data (final report, JSON text) */
    WIRE_TYPE_MAX_ = 24
} wire_type;

/* Roles in HELLO. */
enum { WIRE_ROLE_PRODUCER = 1, WIRE_ROLE_WORKER = 2, WIRE_ROLE_ADMIN = 3 };

/* Body keys, as bits in wire_msg_t.fields (which of them were present / are to be encoded). */
enum wire_field {
    WIRE_F_REQ = 1u << 0,      /* "req": uint64 request id, echoed in the reply */
    WIRE_F_QUEUE = 1u << 1,    /* "q": str, a valid queue name */
    WIRE_F_JOBS = 1u << 2,     /* "jobs": array of job maps, 1..WIRE_MAX_BATCH */
    WIRE_F_RESULTS = 1u << 3,  /* "results": array of result maps, 1..WIRE_MAX_BATCH */
    WIRE_F_IDS = 1u << 4,      /* "ids": array of bin(16), 0..WIRE_MAX_BATCH */
    WIRE_F_CODES = 1u << 5,    /* "codes": array of uint (jobq_err), 0..WIRE_MAX_BATCH */
    WIRE_F_LEASES = 1u << 6,   /* "leases": array of [bin(16) id, uint attempt] */
    WIRE_F_QUEUES = 1u << 7,   /* "queues": array of str queue names, 0..256 */
    WIRE_F_CREDIT = 1u << 8,   /* "credit": uint32 */
    WIRE_F_CODE = 1u << 9,     /* "code": uint (jobq_err) */
    WIRE_F_MSG = 1u << 10,     /* "msg": str, <= WIRE_TEXT_MAX */
    WIRE_F_NAME = 1u << 11,    /* "name": str, <= WIRE_TEXT_MAX */
    WIRE_F_DATA = 1u << 12,    /* "data": bin or str, <= WIRE_DATA_MAX */
    WIRE_F_TIMEOUT = 1u << 13, /* "timeout": uint64 milliseconds */
    WIRE_F_COUNT = 1u << 14,   /* "n": uint64 */
    WIRE_F_ROLE = 1u << 15,    /* "role": uint, a WIRE_ROLE_* */
    WIRE_F_HB = 1u << 16,      /* "hb": uint32 heartbeat interval in ms */
    WIRE_F_FLAGS = 1u << 17    /* "flags": uint32 */
};

/* A string slice (not NUL-terminated). */
typedef struct wire_str {
    const char *ptr;
    uint32_t len;
} wire_str_t;

/* A delivery token: the lease fence. */
typedef struct wire_lease {
    jobq_id_t id;
    uint32_t attempt;
} wire_lease_t;

/* A decoded or to-be-encoded message. For encoding, set type, fields and the
 * fields named in it; arrays and slices are borrowed. After wire_decode the
 * arrays are owned by the message (one allocation, freed by wire_msg_fini) and
 * the slices (strings, payloads, outputs) point INTO the input buffer: keep
 * that buffer alive and unchanged until wire_msg_fini. An empty slice is
 * (NULL, 0). Job and result keys absent on the wire take the values of
 * jobq_job_init / jobq_result_init; a DELIVER job always has a non-zero id and
 * an attempt >= 1. */
typedef struct wire_msg {
    uint32_t version; /* decode: the peer's version (always WIRE_VERSION on success) */
    wire_type type;
    uint32_t fields; /* WIRE_F_* bits */
    uint64_t req;
    wire_str_t queue;
    wire_str_t msg;
    wire_str_t name;
    wire_str_t data;
    uint32_t credit, code, role, hb_ms, flags;
    uint64_t timeout_ms, count;
    jobq_job_t *jobs;
    uint32_t njobs;
    jobq_result_t *results;
    uint32_t nresults;
    jobq_id_t *ids;
    uint32_t nids;
    uint32_t *codes;
    uint32_t ncodes;
    wire_lease_t *leases;
    uint32_t nleases;
    wire_str_t *queues;
    uint32_t nqueues;
    void *owned_;    /* decoder-owned storage; NULL for caller-built messages */
    char error[160]; /* after a failed decode/encode: what was wrong, naming the field */
} wire_msg_t;

/* A growable output buffer. Zero-initialise it, reuse it across encodes with
 * len = 0, free with wire_buf_fini. */
typedef struct wire_buf {
    char *data;
    size_t len, cap;
} wire_buf_t;

/* Frees buf's storage and zeroes it (safe twice). */
void wire_buf_fini(wire_buf_t *buf);

/* Zero-initialises msg, sets version to WIRE_VERSION and type to type. */
void wire_msg_init(wire_msg_t *msg, wire_type type);

/* Frees what wire_decode allocated and zeroes msg. Safe on an initialised,
 * decoded or failed message, and twice. */
void wire_msg_fini(wire_msg_t *msg);

/* Checks the raw bytes of one msgpack value (see the file comment). Returns
 * JOBQ_OK, JOBQ_EPROTO (malformed) or JOBQ_ETOOBIG (over the limits); when why
 * is not NULL it receives a static text naming the problem. Allocates nothing. */
int wire_prescan(const void *data, size_t len, const char **why);

/* wire_prescan, and on JOBQ_OK *elems gets the number of elements every array
 * and map declares (a map pair counts two): at most len, the room the tree
 * reader (common/mpack.h) needs. */
int wire_prescan_count(const void *data, size_t len, const char **why, uint64_t *elems);

/* Decodes one frame into msg (which it initialises). max_frame limits len
 * (0 means WIRE_MAX_FRAME). Returns JOBQ_OK; JOBQ_ETOOBIG; JOBQ_EPROTO for
 * malformed msgpack or a schema violation; JOBQ_EVERSION for another version
 * (msg->version then holds the peer's). On failure msg->error names the field
 * ("jobs[3].q: not a valid queue name"), msg->type holds the type if it was
 * read, msg->req the request number if it was read (then fields has
 * WIRE_F_REQ), so that an ERROR reply can echo it; msg holds nothing to free
 * (but wire_msg_fini is still safe). Allocation: none for a frame the pre-scan
 * refuses; else the object tree (on the stack for small frames, else one block
 * of 24 bytes per declared element, freed before returning) and one block for
 * the arrays, never anything per job. */
int wire_decode(wire_msg_t *msg, const void *data, size_t len, size_t max_frame);

/* Appends the encoding of msg to out (out->len grows). Validates what it
 * encodes as the decoder would (queue names, ranges, limits, required keys,
 * a frame of at most WIRE_MAX_FRAME bytes) and returns JOBQ_OK, or
 * JOBQ_EINVAL / JOBQ_ETOOBIG with msg->error set, leaving out->len unchanged.
 * The encoding is canonical: smallest integer formats, body keys in WIRE_F_*
 * bit order, job and result keys left out when they equal the defaults,
 * "data" as bin. Allocates only when out must grow. */
int wire_encode(wire_msg_t *msg, wire_buf_t *out);

/* Returns "SUBMIT" etc., or "?" for an unknown type. */
const char *wire_type_name(int type);

/* Returns the body key of one WIRE_F_* bit ("req", "q", ...), or "?". */
const char *wire_field_name(uint32_t field);

/* Returns 1 if a and b carry the same message: same type and fields bits, and
 * equal values for every field in them (slices compared by content, jobs and
 * results field by field), else 0. The version and error texts are ignored. */
int wire_msg_equal(const wire_msg_t *a, const wire_msg_t *b);

#endif
