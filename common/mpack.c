/*
 * common/mpack.c: mpack_unpack (common/mpack.h), the msgpack tree reader.
 *
 * A recursive descent over bytes the pre-scan accepted (common/mpscan.c):
 * depth <= WIRE_MAX_DEPTH, every declared element backed by a byte, every
 * body inside the buffer. The reader still checks the end of the buffer and
 * the room left in objs at every step, so a broken promise is an error, never
 * a read or write out of bounds. Values follow msgpack-c's rules (unpack.c):
 * signed formats holding values >= 0 are POSITIVE_INTEGER, float32 is
 * FLOAT32, fixext/ext are EXT with their type byte.
 */
#include "common/mpack.h"

#include <stdint.h>

_Static_assert(sizeof(msgpack_object_kv) == 2 * sizeof(msgpack_object),
               "a map pair takes two objects of the arena");

typedef struct s_rd {
    const uint8_t *p, *end;
    msgpack_object *objs; /* next free object */
    uint64_t left;        /* free objects */
    int depth;
} s_rd_t;

static uint64_t
s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Takes n bytes (a length field or a fixed body); NULL if they are not there. */
static const uint8_t *
s_take(s_rd_t *r, uint64_t n)
{
    if ((uint64_t)(r->end - r->p) < n)
        return NULL;
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

static int s_value(s_rd_t *r, msgpack_object *o);

/* Reads n elements (maps: n pairs) of a container into o. */
static int
s_container(s_rd_t *r, msgpack_object *o, uint64_t n, int map)
{
    uint64_t k = map ? 2 * n : n;
    if (k > r->left || ++r->depth > WIRE_MAX_DEPTH)
        return -1;
    msgpack_object *e = r->objs;
    r->objs += k;
    r->left -= k;
    if (map) {
        o->type = MSGPACK_OBJECT_MAP;
        o->via.map.size = (uint32_t)n;
        o->via.map.ptr = n ? (msgpack_object_kv *)(void *)e : NULL;
    } else {
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t)n;
        o->via.array.ptr = n ? e : NULL;
    }
    for (uint64_t i = 0; i < k; i++)
        if (s_value(r, &e[i]) != 0)
            return -1;
    r->depth--;
    return 0;
}

/* A str (kind 0), bin (1) or ext (2, one type byte first) of n bytes. */
static int
s_bytes(s_rd_t *r, msgpack_object *o, uint64_t n, int kind)
{
    int8_t ext_type = 0;
    if (kind == 2) {
        const uint8_t *t = s_take(r, 1);
        if (!t)
            return -1;
        ext_type = (int8_t)*t;
    }
    const uint8_t *body = s_take(r, n);
    if (!body || n > UINT32_MAX)
        return -1;
    if (kind == 0) {
        o->type = MSGPACK_OBJECT_STR;
        o->via.str.size = (uint32_t)n;
        o->via.str.ptr = (const char *)body;
    } else if (kind == 1) {
        o->type = MSGPACK_OBJECT_BIN;
        o->via.bin.size = (uint32_t)n;
        o->via.bin.ptr = (const char *)body;
    } else {
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = ext_type;
        o->via.ext.size = (uint32_t)n;
        o->via.ext.ptr = (const char *)body;
    }
    return 0;
}

static void
s_signed(msgpack_object *o, int64_t v)
{
    if (v >= 0) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = (uint64_t)v;
    } else {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = v;
    }
}

/* Numbers of 0xca..0xd3: floats, unsigned and signed integers. */
static int
s_number(s_rd_t *r, msgpack_object *o, uint8_t b)
{
    static const uint8_t width[10] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
    int n = width[b - 0xca];
    const uint8_t *p = s_take(r, (uint64_t)n);
    if (!p)
        return -1;
    uint64_t u = s_be(p, n);
    if (b == 0xca) {
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, sizeof f);
        o->type = MSGPACK_OBJECT_FLOAT32;
        o->via.f64 = (double)f;
    } else if (b == 0xcb) {
        double d;
        memcpy(&d, &u, sizeof d);
        o->type = MSGPACK_OBJECT_FLOAT64;
        o->via.f64 = d;
    } else if (b <= 0xcf) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = u;
    } else if (b == 0xd0) {
        s_signed(o, (int8_t)u);
    } else if (b == 0xd1) {
        s_signed(o, (int16_t)u);
    } else if (b == 0xd2) {
        s_signed(o, (int32_t)u);
    } else {
        s_signed(o, (int64_t)u);
    }
    return 0;
}

/* Reads a length field of w bytes. */
static int
s_len(s_rd_t *r, int w, uint64_t *n)
{
    const uint8_t *p = s_take(r, (uint64_t)w);
    if (!p)
        return -1;
    *n = s_be(p, w);
    return 0;
}

static int
s_value(s_rd_t *r, msgpack_object *o)
{
    const uint8_t *t = s_take(r, 1);
    uint64_t n;
    if (!t)
        return -1;
    uint8_t b = *t;
    if (b <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = b;
        return 0;
    }
    if (b >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)b;
        return 0;
    }
    if (b <= 0x8f)
        return s_container(r, o, b & 0x0f, 1);
    if (b <= 0x9f)
        return s_container(r, o, b & 0x0f, 0);
    if (b <= 0xbf)
        return s_bytes(r, o, b & 0x1f, 0);
    switch (b) {
    case 0xc0:
        o->type = MSGPACK_OBJECT_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = b == 0xc3;
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6: /* bin 8/16/32 */
        return s_len(r, 1 << (b - 0xc4), &n) ? -1 : s_bytes(r, o, n, 1);
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext 8/16/32 */
        return s_len(r, 1 << (b - 0xc7), &n) ? -1 : s_bytes(r, o, n, 2);
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext 1/2/4/8/16 */
        return s_bytes(r, o, 1u << (b - 0xd4), 2);
    case 0xd9:
    case 0xda:
    case 0xdb: /* str 8/16/32 */
        return s_len(r, 1 << (b - 0xd9), &n) ? -1 : s_bytes(r, o, n, 0);
    case 0xdc:
    case 0xdd: /* array 16/32 */
        return s_len(r, 2 << (b - 0xdc), &n) ? -1 : s_container(r, o, n, 0);
    case 0xde:
    case 0xdf: /* map 16/32 */
        return s_len(r, 2 << (b - 0xde), &n) ? -1 : s_container(r, o, n, 1);
    case 0xc1:
        return -1;
    default: /* 0xca..0xd3 */
        return s_number(r, o, b);
    }
}

int
mpack_unpack(const void *data, size_t len, uint64_t elems, msgpack_object *objs,
             msgpack_object *root)
{
    s_rd_t r = {(const uint8_t *)data, (const uint8_t *)data + len, objs, elems, 0};
    if (s_value(&r, root) != 0)
        return -1;
    return r.p == r.end ? 0 : -1;
}
