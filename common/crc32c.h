/* crc32c.h - CRC-32C (Castagnoli), as Kafka record batches and Kafscale segments use it.
 * Hardware (SSE4.2 crc32) when the CPU has it, a slicing-by-8 table otherwise. */
#ifndef KAFSCALE_CRC32C_H
#define KAFSCALE_CRC32C_H
#include <stddef.h>
#include <stdint.h>
/* crc32c(0, p, n) is the CRC of p; pass a previous result to continue it. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n); /* table version, for tests */
/* The CRC of A followed by B, from crc32c(0, A) = crc_a, crc32c(0, B) = crc_b
 * and len_b = |B| (as zlib's crc32_combine; O(log len_b), well under a
 * microsecond). */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b);
#endif
