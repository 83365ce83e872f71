/*
 * common/mpack.h: jobq's own msgpack writer and tree reader, used by the
 * codec (common/wire.c) in place of msgpack-c's packer and unpacker, which
 * cost about a third of the broker's instructions per job (bench/RESULTS.md).
 *
 * Writer: static inline functions that append one msgpack item to a
 * wire_buf_t, growing it first. They produce the same bytes as msgpack-c's
 * msgpack_pack_* (the smallest format for every integer, str8 for strings of
 * 32..255 bytes), so the canonical encoding of docs/PROTOCOL.md is unchanged.
 *
 * Reader: mpack_unpack builds msgpack-c's msgpack_object tree (the same types
 * and the same value rules: a signed format holding a value >= 0 reads as a
 * positive integer) into one caller-provided array of objects, for bytes that
 * wire_prescan() accepted: the pre-scan's element count sizes that array and
 * bounds the depth, so the reader needs no checks of its own beyond them.
 * Strings, bins and exts point into the input bytes.
 */
#ifndef JOBQ_COMMON_MPACK_H
#define JOBQ_COMMON_MPACK_H

#include "common/alloc.h"
#include "common/wire.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- writer ---------------------------------------------------------------- */

/* Makes room for n more bytes in b; returns where they go. */
static inline uint8_t *
mpack_room(wire_buf_t *b, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        b->data = jobq_realloc(b->data, cap);
        b->cap = cap;
    }
    return (uint8_t *)b->data + b->len;
}

/* Writes a type byte followed by v as an n-byte big-endian number. */
static inline void
mpack_put_be(wire_buf_t *b, uint8_t type, uint64_t v, int n)
{
    uint8_t *p = mpack_room(b, (size_t)n + 1);
    p[0] = type;
    for (int i = n; i >= 1; i--, v >>= 8)
        p[i] = (uint8_t)v;
    b->len += (size_t)n + 1;
}

static inline void
mpack_uint(wire_buf_t *b, uint64_t v)
{
    if (v < 128) {
        *mpack_room(b, 1) = (uint8_t)v;
        b->len++;
    } else if (v <= UINT8_MAX) {
        mpack_put_be(b, 0xcc, v, 1);
    } else if (v <= UINT16_MAX) {
        mpack_put_be(b, 0xcd, v, 2);
    } else if (v <= UINT32_MAX) {
        mpack_put_be(b, 0xce, v, 4);
    } else {
        mpack_put_be(b, 0xcf, v, 8);
    }
}

static inline void
mpack_int(wire_buf_t *b, int64_t v)
{
    if (v >= 0) {
        mpack_uint(b, (uint64_t)v);
    } else if (v >= -32) {
        *mpack_room(b, 1) = (uint8_t)(int8_t)v;
        b->len++;
    } else if (v >= INT8_MIN) {
        mpack_put_be(b, 0xd0, (uint64_t)v, 1);
    } else if (v >= INT16_MIN) {
        mpack_put_be(b, 0xd1, (uint64_t)v, 2);
    } else if (v >= INT32_MIN) {
        mpack_put_be(b, 0xd2, (uint64_t)v, 4);
    } else {
        mpack_put_be(b, 0xd3, (uint64_t)v, 8);
    }
}

/* A container header: fix (0x90 arrays, 0x80 maps) below 16, then 16/32 bits. */
static inline void
mpack_container(wire_buf_t *b, uint8_t fix, uint8_t t16, uint64_t n)
{
    if (n < 16) {
        *mpack_room(b, 1) = (uint8_t)(fix | n);
        b->len++;
    } else if (n <= UINT16_MAX) {
        mpack_put_be(b, t16, n, 2);
    } else {
        mpack_put_be(b, (uint8_t)(t16 + 1), n, 4);
    }
}

static inline void
mpack_array(wire_buf_t *b, uint64_t n)
{
    mpack_container(b, 0x90, 0xdc, n);
}

static inline void
mpack_map(wire_buf_t *b, uint64_t n)
{
    mpack_container(b, 0x80, 0xde, n);
}

/* Appends len bytes of body (which may be NULL when len is 0). */
static inline void
mpack_body(wire_buf_t *b, const void *body, size_t len)
{
    if (len) {
        memcpy(mpack_room(b, len), body, len);
        b->len += len;
    }
}

static inline void
mpack_str(wire_buf_t *b, const void *s, size_t len)
{
    if (len < 32) {
        *mpack_room(b, 1) = (uint8_t)(0xa0 | len);
        b->len++;
    } else if (len <= UINT8_MAX) {
        mpack_put_be(b, 0xd9, len, 1);
    } else if (len <= UINT16_MAX) {
        mpack_put_be(b, 0xda, len, 2);
    } else {
        mpack_put_be(b, 0xdb, len, 4);
    }
    mpack_body(b, s, len);
}

static inline void
mpack_bin(wire_buf_t *b, const void *s, size_t len)
{
    if (len <= UINT8_MAX)
        mpack_put_be(b, 0xc4, len, 1);
    else if (len <= UINT16_MAX)
        mpack_put_be(b, 0xc5, len, 2);
    else
        mpack_put_be(b, 0xc6, len, 4);
    mpack_body(b, s, len);
}

/* ---- reader ---------------------------------------------------------------- */

/* Builds the tree of the one msgpack value in data[0..len) into *root, with
 * every array element and map pair in objs (room for elems objects: the count
 * wire_prescan_count() returned; a map pair takes two). data must be what
 * wire_prescan accepted. Returns 0, or -1 if the bytes break the pre-scan's
 * promises after all (then *root is unusable). Allocates nothing. */
int mpack_unpack(const void *data, size_t len, uint64_t elems, msgpack_object *objs,
                 msgpack_object *root);

#endif
