/* crc32c.c - CRC-32C with SSE4.2 acceleration and a portable slicing-by-8 fallback. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t n) {
    pthread_once(&table_once, table_init);
    const uint8_t *p = buf;
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) { crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8); n--; }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc; /* little-endian hosts */
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
              table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
              table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
/* The crc32 instruction has a latency of 3 cycles and a throughput of 1:
 * one stream runs at a third of what the unit can do. Long buffers are
 * taken as three interleaved streams over adjacent blocks whose CRCs are
 * then combined: the CRC state of a block followed by n more bytes is the
 * state advanced over n zero bytes (a linear map over GF(2), tabulated once
 * for the two block lengths used) xor the CRC of those n bytes from zero.
 * (Mark Adler's method, as in zlib's crc32_combine.) */
#define CRC_LONG 8192
#define CRC_SHORT 256
static uint32_t zeros_long[4][256], zeros_short[4][256];
static pthread_once_t zeros_once = PTHREAD_ONCE_INIT;

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1) sum ^= *mat;
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_times(mat, mat[n]);
}

/* The operator that advances a CRC state over len zero bytes, len a power
 * of two: one zero bit, squared to 2, 4, 8 bits (one byte), and on. */
static void zeros_op(uint32_t even[32], size_t len) {
    uint32_t odd[32];
    odd[0] = 0x82F63B78u;
    for (int n = 1; n < 32; n++) odd[n] = 1u << (n - 1);
    gf2_square(even, odd); /* two zero bits */
    gf2_square(odd, even); /* four */
    for (;;) {
        gf2_square(even, odd); /* one byte, then four, ... */
        len >>= 1;
        if (!len) return;
        gf2_square(odd, even); /* two bytes, then eight, ... */
        len >>= 1;
        if (!len) break;
    }
    memcpy(even, odd, sizeof odd);
}

static void zeros_table(uint32_t zeros[4][256], size_t len) {
    uint32_t op[32];
    zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_times(op, n);
        zeros[1][n] = gf2_times(op, n << 8);
        zeros[2][n] = gf2_times(op, n << 16);
        zeros[3][n] = gf2_times(op, n << 24);
    }
}

static void zeros_init(void) {
    zeros_table(zeros_long, CRC_LONG);
    zeros_table(zeros_short, CRC_SHORT);
}

static inline uint32_t crc_shift(uint32_t zeros[4][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

static inline uint64_t load64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* c0 continued over the 3 * blk bytes at p, as three streams of blk bytes. */
__attribute__((target("sse4.2"), always_inline)) static inline uint64_t crc3(uint64_t c0, const uint8_t *p,
                                                                             size_t blk, uint32_t zeros[4][256]) {
    uint64_t c1 = 0, c2 = 0;
    for (const uint8_t *end = p + blk; p < end; p += 8) {
        c0 = __builtin_ia32_crc32di(c0, load64(p));
        c1 = __builtin_ia32_crc32di(c1, load64(p + blk));
        c2 = __builtin_ia32_crc32di(c2, load64(p + 2 * blk));
    }
    c0 = crc_shift(zeros, (uint32_t)c0) ^ c1;
    return crc_shift(zeros, (uint32_t)c0) ^ c2;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t n) {
    const uint8_t *p = buf;
    uint64_t c0 = ~crc;
    while (n && ((uintptr_t)p & 7)) { c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++); n--; }
    if (n >= 3 * CRC_SHORT) pthread_once(&zeros_once, zeros_init);
    for (; n >= 3 * CRC_LONG; p += 3 * CRC_LONG, n -= 3 * CRC_LONG) c0 = crc3(c0, p, CRC_LONG, zeros_long);
    for (; n >= 3 * CRC_SHORT; p += 3 * CRC_SHORT, n -= 3 * CRC_SHORT) c0 = crc3(c0, p, CRC_SHORT, zeros_short);
    while (n >= 8) {
        c0 = __builtin_ia32_crc32di(c0, load64(p));
        p += 8;
        n -= 8;
    }
    while (n--) c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++);
    return ~(uint32_t)c0;
}
#endif

/* ---- combining (zlib's crc32_combine, for the CRC-32C polynomial) ---- */

/* a * b modulo the polynomial (reflected bit order). */
static uint32_t multmodp(uint32_t a, uint32_t b) {
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ 0x82F63B78u : b >> 1;
    }
    return p;
}

static uint32_t x2n_table[32]; /* x^(2^n) mod p */
static pthread_once_t x2n_once = PTHREAD_ONCE_INIT;

static void x2n_init(void) {
    uint32_t p = 1u << 30; /* x^1 */
    x2n_table[0] = p;
    for (int n = 1; n < 32; n++) x2n_table[n] = p = multmodp(p, p);
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b) {
    pthread_once(&x2n_once, x2n_init);
    /* x^(8 * len_b) mod p: appending len_b zero bytes to A. */
    uint32_t p = 1u << 31; /* x^0 */
    unsigned k = 3;
    for (size_t n = len_b; n; n >>= 1, k++)
        if (n & 1) p = multmodp(x2n_table[k & 31], p);
    return multmodp(p, crc_a) ^ crc_b;
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n) {
#if defined(__x86_64__)
    static int hw = -1;
    if (hw < 0) hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (hw) return crc32c_hw(crc, p, n);
#endif
    return crc32c_sw(crc, p, n);
}
