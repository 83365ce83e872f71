/*
 * worker/md5.h: MD5 message digest (RFC 1321), for the md5 built-in handler.
 *
 * MD5 is broken as a cryptographic hash; it is here only as a cheap, well-known
 * checksum that demos and benchmarks can verify against md5sum(1). An md5_t is
 * a plain value: md5_init, any number of md5_update calls, then one md5_final.
 */
#ifndef JOBQ_WORKER_MD5_H
#define JOBQ_WORKER_MD5_H

#include <stddef.h>
#include <stdint.h>

#define MD5_DIGEST_LEN 16 /* bytes in a digest */
#define MD5_HEX_LEN 32    /* characters in its lowercase hex form, without the NUL */

typedef struct md5 {
    uint32_t state[4];  /* A, B, C, D of the RFC */
    uint64_t len_bytes; /* message bytes hashed so far */
    uint8_t block[64];  /* the partial block not yet compressed */
} md5_t;

/* Starts a new digest in ctx. */
void md5_init(md5_t *ctx);
/* Feeds len bytes of data (data may be NULL when len is 0). */
void md5_update(md5_t *ctx, const void *data, size_t len);
/* Pads the message, writes the 16-byte digest into digest; ctx must be
 * initialised again before reuse. */
void md5_final(md5_t *ctx, uint8_t digest[MD5_DIGEST_LEN]);
/* One-shot: writes the 32 lowercase hex digits of MD5(data) plus a NUL into hex. */
void md5_hex(const void *data, size_t len, char hex[MD5_HEX_LEN + 1]);

#endif
