/*
 * worker/md5.c: MD5 per RFC 1321, written from the RFC's description.
 *
 * The message is processed in 64-byte blocks, each read as sixteen
 * little-endian 32-bit words; a block goes through four rounds of sixteen
 * steps a = b + ((a + F(b,c,d) + X[k] + T[i]) <<< s). Invariant between calls:
 * block holds len_bytes % 64 bytes not yet compressed.
 */
#include "worker/md5.h"

#include <string.h>

/* T[i] = floor(2^32 * abs(sin(i + 1))), i = 0..63 (RFC 1321 section 3.4). */
static const uint32_t s_t[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* Left-rotation amounts, four per round. */
static const uint8_t s_shift[4][4] = {
    {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

static uint32_t
s_rotl(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t
s_load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
s_store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Compresses one 64-byte block into state. Step i of round r uses the
 * auxiliary function of that round and message word k(i). */
static void
s_compress(uint32_t state[4], const uint8_t block[64])
{
    uint32_t x[16];
    for (int i = 0; i < 16; i++)
        x[i] = s_load_le32(block + 4 * i);

    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int k;
        switch (i / 16) {
        case 0:
            f = (b & c) | (~b & d); /* F */
            k = i;
            break;
        case 1:
            f = (b & d) | (c & ~d); /* G */
            k = (5 * i + 1) % 16;
            break;
        case 2:
            f = b ^ c ^ d; /* H */
            k = (3 * i + 5) % 16;
            break;
        default:
            f = c ^ (b | ~d); /* I */
            k = (7 * i) % 16;
            break;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + s_rotl(a + f + x[k] + s_t[i], s_shift[i / 16][i % 4]);
        a = t;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

void
md5_init(md5_t *ctx)
{
    ctx->state[0] = 0x67452301;
    ctx->state[1] = 0xefcdab89;
    ctx->state[2] = 0x98badcfe;
    ctx->state[3] = 0x10325476;
    ctx->len_bytes = 0;
}

void
md5_update(md5_t *ctx, const void *data, size_t len)
{
    if (len == 0)
        return; /* data may be NULL */
    const uint8_t *p = data;
    size_t used = (size_t)(ctx->len_bytes % 64);
    ctx->len_bytes += len;
    if (used) {
        size_t take = 64 - used < len ? 64 - used : len;
        memcpy(ctx->block + used, p, take);
        p += take;
        len -= take;
        if (used + take < 64)
            return;
        s_compress(ctx->state, ctx->block);
    }
    for (; len >= 64; p += 64, len -= 64)
        s_compress(ctx->state, p);
    if (len)
        memcpy(ctx->block, p, len);
}

void
md5_final(md5_t *ctx, uint8_t digest[MD5_DIGEST_LEN])
{
    /* Pad with 0x80 then zeros to 56 mod 64, then the bit length (mod 2^64), little-endian. */
    uint64_t bits = ctx->len_bytes * 8;
    static const uint8_t pad[64] = {0x80};
    size_t used = (size_t)(ctx->len_bytes % 64);
    md5_update(ctx, pad, used < 56 ? 56 - used : 120 - used);
    uint8_t len_le[8];
    s_store_le32(len_le, (uint32_t)bits);
    s_store_le32(len_le + 4, (uint32_t)(bits >> 32));
    md5_update(ctx, len_le, 8);
    for (int i = 0; i < 4; i++)
        s_store_le32(digest + 4 * i, ctx->state[i]);
}

void
md5_hex(const void *data, size_t len, char hex[MD5_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    md5_t ctx;
    uint8_t digest[MD5_DIGEST_LEN];
    md5_init(&ctx);
    md5_update(&ctx, data, len);
    md5_final(&ctx, digest);
    for (int i = 0; i < MD5_DIGEST_LEN; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[MD5_HEX_LEN] = '\0';
}
