/* test_batch.c - unit tests of CRC-32C (common/crc32c.c) and record batch v2
 * header parsing and validation (common/batch.c).
 *
 * Batches are built here by hand from the Kafka record batch layout (not with
 * the code under test), then corrupted one field at a time; each corruption
 * must be refused with its own error code. Every buffer handed to the parser
 * is malloc'ed to its exact size so that ASan catches a read past its end.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "crc32c.h"
#include "kbuf.h"

/* ---- CRC-32C ---- */

START_TEST(crc32c_known_vectors) {
    ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    static const uint8_t zeros[32], ones[32] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ck_assert_uint_eq(crc32c(0, zeros, 32), 0x8A9136AAu);
    ck_assert_uint_eq(crc32c_sw(0, zeros, 32), 0x8A9136AAu);
    ck_assert_uint_eq(crc32c(0, ones, 32), 0x62A8AB43u); /* RFC 3720 B.4 */
    ck_assert_uint_eq(crc32c_sw(0, ones, 32), 0x62A8AB43u);
    uint8_t inc[32];
    for (int i = 0; i < 32; i++) inc[i] = (uint8_t)i;
    ck_assert_uint_eq(crc32c(0, inc, 32), 0x46DD794Eu);
    ck_assert_uint_eq(crc32c_sw(0, inc, 32), 0x46DD794Eu);
    ck_assert_uint_eq(crc32c(0, "", 0), 0);
    ck_assert_uint_eq(crc32c_sw(0, NULL, 0), 0);
}
END_TEST

START_TEST(crc32c_can_be_continued) {
    static const char s[] = "The quick brown fox jumps over the lazy dog, twice: the quick brown fox...";
    size_t n = sizeof s - 1;
    uint32_t whole = crc32c(0, s, n);
    for (size_t cut = 0; cut <= n; cut++) {
        ck_assert_uint_eq(crc32c(crc32c(0, s, cut), s + cut, n - cut), whole);
        ck_assert_uint_eq(crc32c_sw(crc32c_sw(0, s, cut), s + cut, n - cut), whole);
    }
}
END_TEST

START_TEST(crc32c_combine_joins_two_crcs) {
    enum { MAX = 100000 };
    uint8_t *buf = malloc(MAX);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < MAX; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(x >> 56);
    }
    static const size_t cuts[] = {0, 1, 7, 21, 255, 4096, 30001, MAX};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        size_t a = cuts[i];
        uint32_t whole = crc32c_sw(0, buf, MAX);
        ck_assert_uint_eq(crc32c_combine(crc32c(0, buf, a), crc32c(0, buf + a, MAX - a), MAX - a), whole);
    }
    free(buf);
}
END_TEST

START_TEST(crc32c_hardware_and_table_agree_on_long_buffers) {
    /* Long buffers take three interleaved streams (8 KiB and 256-byte blocks). */
    enum { MAX = 3 * 8192 * 2 + 3 * 256 + 100 };
    uint8_t *buf = malloc(MAX + 8);
    uint64_t x = 0x12345678u;
    for (size_t i = 0; i < MAX + 8; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(x >> 56);
    }
    for (size_t align = 0; align < 8; align += 3)
        for (size_t len = 700; len <= MAX; len += 997)
            ck_assert_uint_eq(crc32c(7, buf + align, len), crc32c_sw(7, buf + align, len));
    free(buf);
}
END_TEST

START_TEST(crc32c_hardware_and_table_agree_on_every_length_and_alignment) {
    enum { MAX = 1100 };
    uint8_t *buf = malloc(MAX + 8);
    uint64_t x = 0x12345678u;
    for (size_t i = 0; i < MAX + 8; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(x >> 56);
    }
    for (size_t align = 0; align < 8; align++)
        for (size_t len = 0; len <= MAX; len += (len < 80 ? 1 : 37)) {
            /* exact-sized copy so an overread past `len` is caught */
            uint8_t *p = malloc(len + align + 1);
            memcpy(p + align, buf, len);
            uint32_t hw = crc32c(0, p + align, len), sw = crc32c_sw(0, p + align, len);
            ck_assert_msg(hw == sw, "len %zu align %zu: %08x vs %08x", len, align, hw, sw);
            ck_assert_uint_eq(crc32c(0x9abcdef0u, p + align, len), crc32c_sw(0x9abcdef0u, p + align, len));
            free(p);
        }
    free(buf);
}
END_TEST

/* ---- building record batches by hand ---- */

typedef struct {
    int64_t base_offset;
    int32_t leader_epoch;
    int8_t magic;
    int16_t attributes;
    int64_t base_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
} batch_spec_t;

static const batch_spec_t default_spec = {
    .base_offset = 0, .leader_epoch = 3, .magic = 2, .attributes = 0, .base_timestamp = 1700000000000,
    .producer_id = -1, .producer_epoch = -1, .base_sequence = -1,
};

/* Builds a v2 batch of `nrec` uncompressed records with value "value-<i>" and
 * no key/headers, into w. Record i has offset delta i and timestamp delta i. */
static void build_batch(kw_t *w, const batch_spec_t *sp, int nrec) {
    size_t start = w->len;
    kw_i64(w, sp->base_offset);
    size_t len_at = kw_reserve(w, 4);
    kw_i32(w, sp->leader_epoch);
    kw_i8(w, sp->magic);
    size_t crc_at = kw_reserve(w, 4);
    kw_i16(w, sp->attributes);
    kw_i32(w, nrec > 0 ? nrec - 1 : 0);              /* lastOffsetDelta */
    kw_i64(w, sp->base_timestamp);
    kw_i64(w, sp->base_timestamp + (nrec > 0 ? nrec - 1 : 0)); /* maxTimestamp */
    kw_i64(w, sp->producer_id);
    kw_i16(w, sp->producer_epoch);
    kw_i32(w, sp->base_sequence);
    kw_i32(w, nrec);
    for (int i = 0; i < nrec; i++) {
        char val[32];
        int vlen = snprintf(val, sizeof val, "value-%d", i);
        kw_t rec;
        kw_init(&rec, 64);
        kw_i8(&rec, 0);         /* attributes */
        kw_varint(&rec, i);     /* timestampDelta */
        kw_varint(&rec, i);     /* offsetDelta */
        kw_varint(&rec, -1);    /* key: null */
        kw_varint(&rec, vlen);
        kw_raw(&rec, val, (size_t)vlen);
        kw_varint(&rec, 0);     /* headers */
        kw_varint(w, (int64_t)rec.len);
        kw_raw(w, rec.buf, rec.len);
        kw_free(&rec);
    }
    ck_assert(!w->oom);
    kw_put_i32_at(w, len_at, (int32_t)(w->len - start - BATCH_LOG_OVERHEAD));
    kw_put_i32_at(w, crc_at, (int32_t)crc32c(0, w->buf + start + 21, w->len - start - 21));
}

/* Recomputes the CRC of the batch at p (after a deliberate header change). */
static void fix_crc(uint8_t *p, size_t n) { kput32(p + 17, crc32c(0, p + 21, n - 21)); }

/* An exact-size heap copy. */
static uint8_t *exact(const void *p, size_t n) {
    uint8_t *b = malloc(n ? n : 1);
    if (n) memcpy(b, p, n);
    return b;
}

static int validate_exact(const uint8_t *p, size_t n, batch_info_t *bi) {
    uint8_t *c = exact(p, n);
    int rc = batch_validate(c, n, bi);
    free(c);
    return rc;
}

/* A fresh valid batch of nrec records in an exact heap buffer. */
static uint8_t *make_batch(int nrec, size_t *n) {
    kw_t w;
    kw_init(&w, 0);
    build_batch(&w, &default_spec, nrec);
    uint8_t *b = exact(w.buf, w.len);
    *n = w.len;
    kw_free(&w);
    return b;
}

/* ---- valid batches ---- */

START_TEST(valid_batch_parses_every_header_field) {
    batch_spec_t sp = default_spec;
    sp.base_offset = 1234567;
    sp.leader_epoch = 9;
    sp.producer_id = 77;
    sp.producer_epoch = 2;
    sp.base_sequence = 5;
    sp.attributes = BATCH_ATTR_TRANSACTIONAL;
    kw_t w;
    kw_init(&w, 0);
    build_batch(&w, &sp, 5);
    batch_info_t bi;
    memset(&bi, 0, sizeof bi);
    uint8_t *b = exact(w.buf, w.len);
    ck_assert_int_eq(batch_validate(b, w.len, &bi), BATCH_OK);
    ck_assert_int_eq(bi.base_offset, 1234567);
    ck_assert_int_eq(bi.length, (int32_t)w.len);
    ck_assert_int_eq(bi.leader_epoch, 9);
    ck_assert_int_eq(bi.magic, 2);
    ck_assert_uint_eq(bi.crc, kbe32(w.buf + 17));
    ck_assert_int_eq(bi.attributes, BATCH_ATTR_TRANSACTIONAL);
    ck_assert_int_eq(bi.last_offset_delta, 4);
    ck_assert_int_eq(bi.base_timestamp, 1700000000000);
    ck_assert_int_eq(bi.max_timestamp, 1700000000004);
    ck_assert_int_eq(bi.producer_id, 77);
    ck_assert_int_eq(bi.producer_epoch, 2);
    ck_assert_int_eq(bi.base_sequence, 5);
    ck_assert_int_eq(bi.record_count, 5);
    free(b);
    kw_free(&w);
}
END_TEST

START_TEST(valid_batches_of_many_sizes_validate) {
    for (int nrec = 1; nrec <= 300; nrec += (nrec < 5 ? 1 : 59)) {
        size_t n;
        uint8_t *b = make_batch(nrec, &n);
        batch_info_t bi;
        ck_assert_msg(batch_validate(b, n, &bi) == BATCH_OK, "%d records", nrec);
        ck_assert_int_eq(bi.record_count, nrec);
        ck_assert_int_eq(bi.length, (int32_t)n);
        free(b);
    }
}
END_TEST

START_TEST(base_offset_is_outside_the_crc_and_can_be_rewritten) {
    size_t n;
    uint8_t *b = make_batch(3, &n);
    batch_set_base_offset(b, 987654321012345);
    batch_info_t bi;
    ck_assert_int_eq(batch_validate(b, n, &bi), BATCH_OK);
    ck_assert_int_eq(bi.base_offset, 987654321012345);
    ck_assert_int_eq((int64_t)kbe64(b), 987654321012345);
    /* The partition leader epoch is not covered either (Kafka rewrites it too). */
    kput32(b + 12, 42);
    ck_assert_int_eq(batch_validate(b, n, &bi), BATCH_OK);
    ck_assert_int_eq(bi.leader_epoch, 42);
    free(b);
}
END_TEST

START_TEST(batches_back_to_back_are_walked_by_their_length) {
    kw_t w;
    kw_init(&w, 0);
    batch_spec_t sp = default_spec;
    for (int i = 0; i < 3; i++) {
        sp.base_offset = i * 10;
        build_batch(&w, &sp, i + 1);
    }
    uint8_t *b = exact(w.buf, w.len);
    size_t off = 0;
    int count = 0;
    while (off < w.len) {
        batch_info_t bi;
        ck_assert_int_eq(batch_validate(b + off, w.len - off, &bi), BATCH_OK);
        ck_assert_int_eq(bi.base_offset, count * 10);
        ck_assert_int_eq(bi.record_count, count + 1);
        off += (size_t)bi.length;
        count++;
    }
    ck_assert_int_eq(count, 3);
    ck_assert_uint_eq(off, w.len);
    free(b);
    kw_free(&w);
}
END_TEST

/* ---- corruptions ---- */

START_TEST(crc_mismatch_is_refused) {
    size_t n;
    uint8_t *b = make_batch(4, &n);
    batch_info_t bi;
    /* a flipped bit anywhere from the CRC field to the end */
    for (size_t pos = 17; pos < n; pos++) {
        for (int bit = 0; bit < 8; bit += 3) {
            b[pos] ^= (uint8_t)(1u << bit);
            int rc = validate_exact(b, n, &bi);
            /* a flip in the counts may be caught by the count check first */
            ck_assert_msg(rc == BATCH_ECRC || (pos >= 23 && pos < 27) || (pos >= 57 && pos < 61),
                          "flip at %zu bit %d: rc %d", pos, bit, rc);
            ck_assert_int_ne(rc, BATCH_OK);
            b[pos] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_OK);
    /* parse alone does not check the CRC */
    b[n - 1] ^= 1;
    ck_assert_int_eq(batch_parse(b, n, &bi), BATCH_OK);
    ck_assert_int_eq(batch_validate(b, n, &bi), BATCH_ECRC);
    free(b);
}
END_TEST

START_TEST(every_truncation_is_refused) {
    size_t n;
    uint8_t *b = make_batch(3, &n);
    batch_info_t bi;
    for (size_t len = 0; len < n; len++) {
        int rc = validate_exact(b, len, &bi);
        ck_assert_msg(rc == BATCH_ETRUNC, "prefix %zu of %zu: rc %d", len, n, rc);
        uint8_t *c = exact(b, len);
        ck_assert_int_eq(batch_parse(c, len, &bi), BATCH_ETRUNC);
        free(c);
    }
    /* a batch claiming more bytes than follow */
    kput32(b + 8, (uint32_t)(n - BATCH_LOG_OVERHEAD + 1));
    ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_ETRUNC);
    free(b);
}
END_TEST

START_TEST(old_message_formats_are_refused_as_emagic) {
    size_t n;
    uint8_t *b = make_batch(2, &n);
    batch_info_t bi;
    for (int magic = 0; magic <= 1; magic++) {
        b[16] = (uint8_t)magic;
        ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_EMAGIC);
        /* even when only the bytes up to the magic are there */
        ck_assert_int_eq(validate_exact(b, 17, &bi), BATCH_EMAGIC);
    }
    free(b);
}
END_TEST

START_TEST(unknown_magic_is_refused) {
    size_t n;
    uint8_t *b = make_batch(2, &n);
    batch_info_t bi;
    static const int8_t bad[] = {3, 4, 127, -1, -128};
    for (size_t i = 0; i < sizeof bad; i++) {
        b[16] = (uint8_t)bad[i];
        ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_EBADMAGIC);
    }
    free(b);
}
END_TEST

START_TEST(bad_lengths_are_refused) {
    size_t n;
    uint8_t *b = make_batch(2, &n);
    batch_info_t bi;
    static const int32_t bad[] = {-1, INT32_MIN, 0, BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD - 1,
                                  INT32_MAX - BATCH_LOG_OVERHEAD + 1, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kput32(b + 8, (uint32_t)bad[i]);
        ck_assert_msg(validate_exact(b, n, &bi) == BATCH_ELENGTH, "length %d", bad[i]);
    }
    /* the largest representable length is only a truncation */
    kput32(b + 8, (uint32_t)(INT32_MAX - BATCH_LOG_OVERHEAD));
    ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_ETRUNC);
    free(b);

    /* A header-only batch (no records) has a valid length: whatever else is
     * said about it, it is not a length or truncation error. */
    uint8_t *e = make_batch(0, &n);
    ck_assert_uint_eq(n, BATCH_HEADER_SIZE);
    int rc = validate_exact(e, n, &bi);
    ck_assert_int_ne(rc, BATCH_ELENGTH);
    ck_assert_int_ne(rc, BATCH_ETRUNC);
    free(e);
}
END_TEST

START_TEST(count_and_last_offset_delta_must_agree) {
    size_t n;
    uint8_t *b = make_batch(5, &n);
    batch_info_t bi;
    /* lastOffsetDelta smaller than count - 1 (CRC fixed so the count check is what fails) */
    kput32(b + 23, 3);
    fix_crc(b, n);
    ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_ECOUNT);
    /* negative lastOffsetDelta */
    kput32(b + 23, (uint32_t)-1);
    fix_crc(b, n);
    ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_ECOUNT);
    /* negative record count */
    kput32(b + 23, 4);
    kput32(b + 57, (uint32_t)-5);
    fix_crc(b, n);
    ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_ECOUNT);
    /* more records than offsets */
    kput32(b + 57, 6);
    fix_crc(b, n);
    ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_ECOUNT);
    /* and back to consistent values: valid again */
    kput32(b + 23, 4);
    kput32(b + 57, 5);
    fix_crc(b, n);
    ck_assert_int_eq(validate_exact(b, n, &bi), BATCH_OK);
    free(b);
}
END_TEST

START_TEST(strerror_names_every_code) {
    static const int codes[] = {BATCH_OK, BATCH_ETRUNC, BATCH_EMAGIC, BATCH_EBADMAGIC, BATCH_ELENGTH,
                                BATCH_ECRC, BATCH_ECOUNT};
    const size_t nc = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < nc; i++) {
        ck_assert_ptr_nonnull(batch_strerror(codes[i]));
        for (size_t j = 0; j < i; j++) ck_assert_str_ne(batch_strerror(codes[i]), batch_strerror(codes[j]));
    }
    ck_assert_ptr_nonnull(batch_strerror(-1));
    ck_assert_ptr_nonnull(batch_strerror(1000));
}
END_TEST

Suite *batch_suite(void) {
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("crc32c");
    tcase_add_test(tc, crc32c_known_vectors);
    tcase_add_test(tc, crc32c_can_be_continued);
    tcase_add_test(tc, crc32c_hardware_and_table_agree_on_every_length_and_alignment);
    tcase_add_test(tc, crc32c_hardware_and_table_agree_on_long_buffers);
    tcase_add_test(tc, crc32c_combine_joins_two_crcs);
    suite_add_tcase(s, tc);

    tc = tcase_create("valid");
    tcase_add_test(tc, valid_batch_parses_every_header_field);
    tcase_add_test(tc, valid_batches_of_many_sizes_validate);
    tcase_add_test(tc, base_offset_is_outside_the_crc_and_can_be_rewritten);
    tcase_add_test(tc, batches_back_to_back_are_walked_by_their_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("corrupt");
    tcase_add_test(tc, crc_mismatch_is_refused);
    tcase_add_test(tc, every_truncation_is_refused);
    tcase_add_test(tc, old_message_formats_are_refused_as_emagic);
    tcase_add_test(tc, unknown_magic_is_refused);
    tcase_add_test(tc, bad_lengths_are_refused);
    tcase_add_test(tc, count_and_last_offset_delta_must_agree);
    tcase_add_test(tc, strerror_names_every_code);
    suite_add_tcase(s, tc);
    return s;
}
