/*
 * common/mpscan.c: the msgpack pre-scanner, wire_prescan() of common/wire.h.
 *
 * msgpack-c allocates n * 24 bytes as soon as it reads an array or map header
 * that declares n elements, before it has seen a single element
 * (RELIABILITY.md §0 item 3): five bytes can ask for gigabytes. This scanner
 * walks the raw bytes first, iteratively with a fixed stack of WIRE_MAX_DEPTH
 * levels, and allocates nothing. Invariants it establishes for what it accepts:
 *
 *   1. the bytes hold exactly one msgpack value and nothing after it;
 *   2. at every header, the elements declared and not yet read (map pairs count
 *      twice) fit in the bytes that remain, one byte each at least; so the sum
 *      of all declared elements is <= len and msgpack-c's allocation for the
 *      value is O(len);
 *   3. containers nest at most WIRE_MAX_DEPTH deep (msgpack-c's own stack has
 *      32 entries);
 *   4. every str/bin/ext body and every fixed-size scalar lies inside the bytes;
 *   5. the reserved byte 0xc1 does not occur as a header.
 */
#include "common/wire.h"
#include "jobq/errors.h"

#include <stdint.h>

/* What one header says: the bytes that follow it (scalar bodies, str/bin/ext
 * lengths) or the elements it opens (containers). */
typedef struct s_head {
    uint64_t skip;  /* bytes after the header that belong to this value */
    uint64_t elems; /* elements the container declares (map pairs x 2) */
    int container;
} s_head_t;

/* Reads an n-byte big-endian unsigned integer (n is 1, 2 or 4). */
static uint64_t
s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Headers 0xc0..0xdf: a length field of lw bytes, or a fixed body of fixed
 * bytes; kind 0 scalar, 1 str/bin, 2 ext (one more byte: the type), 3 array,
 * 4 map, 5 the reserved byte 0xc1. */
static const struct {
    uint8_t lw, fixed, kind;
} s_var[0x20] = {
    [0x01] = {0, 0, 5},                                          /* reserved */
    [0x04] = {1, 0, 1}, [0x05] = {2, 0, 1},  [0x06] = {4, 0, 1}, /* bin 8/16/32 */
    [0x07] = {1, 0, 2}, [0x08] = {2, 0, 2},  [0x09] = {4, 0, 2}, /* ext 8/16/32 */
    [0x0a] = {0, 4, 0}, [0x0b] = {0, 8, 0},                      /* float 32/64 */
    [0x0c] = {0, 1, 0}, [0x0d] = {0, 2, 0},  [0x0e] = {0, 4, 0}, /* uint 8/16/32 */
    [0x0f] = {0, 8, 0},                                          /* uint 64 */
    [0x10] = {0, 1, 0}, [0x11] = {0, 2, 0},  [0x12] = {0, 4, 0}, /* int 8/16/32 */
    [0x13] = {0, 8, 0},                                          /* int 64 */
    [0x14] = {0, 2, 0}, [0x15] = {0, 3, 0},  [0x16] = {0, 5, 0}, /* fixext 1/2/4 */
    [0x17] = {0, 9, 0}, [0x18] = {0, 17, 0},                     /* fixext 8/16 */
    [0x19] = {1, 0, 1}, [0x1a] = {2, 0, 1},  [0x1b] = {4, 0, 1}, /* str 8/16/32 */
    [0x1c] = {2, 0, 3}, [0x1d] = {4, 0, 3},                      /* array 16/32 */
    [0x1e] = {2, 0, 4}, [0x1f] = {4, 0, 4},                      /* map 16/32 */
};

/* Decodes the header at *pp (advancing past its type byte and length field)
 * into h. Returns 0, or -1 with *why set when the header itself is bad. nil,
 * false and true are the zero entries of s_var: scalars with no body. */
static int
s_header(const uint8_t **pp, const uint8_t *end, s_head_t *h, const char **why)
{
    const uint8_t *p = *pp;
    uint8_t b = *p++;
    *h = (s_head_t){0, 0, 0};
    *pp = p;
    if (b <= 0x7f || b >= 0xe0)
        return 0; /* positive or negative fixint */
    if (b <= 0x9f) {
        h->container = 1; /* fixmap 0x80..0x8f, fixarray 0x90..0x9f */
        h->elems = (uint64_t)(b & 0x0f) * (b <= 0x8f ? 2 : 1);
        return 0;
    }
    if (b <= 0xbf) {
        h->skip = b & 0x1f; /* fixstr */
        return 0;
    }
    unsigned lw = s_var[b - 0xc0].lw, kind = s_var[b - 0xc0].kind;
    if (kind == 5) {
        *why = "reserved byte 0xc1";
        return -1;
    }
    if ((size_t)(end - p) < lw) {
        *why = "truncated inside a header";
        return -1;
    }
    uint64_t n = lw ? s_be(p, (int)lw) : s_var[b - 0xc0].fixed;
    *pp = p + lw;
    if (kind >= 3) {
        h->container = 1;
        h->elems = kind == 4 ? 2 * n : n;
    } else {
        h->skip = n + (kind == 2);
    }
    return 0;
}

/* The walk: the values still to read at each open level (level 0 holds the
 * one top-level value) and their sum. */
typedef struct s_scan {
    const uint8_t *p, *end;
    uint64_t pending[WIRE_MAX_DEPTH + 1];
    int depth; /* open containers */
    uint64_t outstanding;
    uint64_t declared; /* elements declared by every container so far */
} s_scan_t;

/* Reads the next value: skips a scalar's body or opens a container. Returns
 * JOBQ_OK or the error, with *why set. */
static int
s_step(s_scan_t *s, const char **why)
{
    s_head_t h;
    if (s->p == s->end) {
        *why = "truncated: value missing at the end";
        return JOBQ_EPROTO;
    }
    if (s_header(&s->p, s->end, &h, why) != 0)
        return JOBQ_EPROTO;
    size_t left = (size_t)(s->end - s->p);
    if (!h.container) {
        if (h.skip > left) {
            *why = "str/bin/ext/number runs past the end of the frame";
            return JOBQ_EPROTO;
        }
        s->p += h.skip;
        return JOBQ_OK;
    }
    if (s->depth + 1 > WIRE_MAX_DEPTH) {
        *why = "nesting deeper than 32 levels";
        return JOBQ_ETOOBIG;
    }
    if (h.elems > left || s->outstanding + h.elems > left) {
        *why = "array/map declares more elements than bytes remain";
        return JOBQ_EPROTO;
    }
    if (h.elems) {
        s->pending[++s->depth] = h.elems;
        s->outstanding += h.elems;
        s->declared += h.elems;
    }
    return JOBQ_OK;
}

int
wire_prescan(const void *data, size_t len, const char **why)
{
    uint64_t elems;
    return wire_prescan_count(data, len, why, &elems);
}

int
wire_prescan_count(const void *data, size_t len, const char **why, uint64_t *elems)
{
    *elems = 0;
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (len == 0) {
        *why = "empty frame";
        return JOBQ_EPROTO;
    }
    s_scan_t s = {.p = data, .end = (const uint8_t *)data + len, .depth = 0, .outstanding = 1};
    s.pending[0] = 1;
    while (s.outstanding > 0) {
        while (s.pending[s.depth] == 0)
            s.depth--;
        s.pending[s.depth]--;
        s.outstanding--;
        int rc = s_step(&s, why);
        if (rc != JOBQ_OK)
            return rc;
    }
    if (s.p != s.end) {
        *why = "trailing bytes after the value";
        return JOBQ_EPROTO;
    }
    *elems = s.declared;
    return JOBQ_OK;
}
