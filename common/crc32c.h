/*
 * common/crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of the broker journal's records. Pure function, no state beyond a
 * table built at compile time.
 */
#ifndef JOBQ_COMMON_CRC32C_H
#define JOBQ_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Returns the CRC-32C of len bytes at data continuing from crc (0 to start):
 * jobq_crc32c(jobq_crc32c(0, a, n), b, m) equals the CRC of a then b. The
 * check value of "123456789" is 0xE3069283. */
uint32_t jobq_crc32c(uint32_t crc, const void *data, size_t len);

/* The same CRC by table lookups only (what jobq_crc32c falls back to on a CPU
 * without SSE4.2); for tests that check both agree. */
uint32_t jobq_crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
