/* test_kbuf.c - unit tests of the bounded wire readers and growable writers (common/kbuf.c).
 *
 * Readers are always run over buffers malloc'ed to the exact size of the
 * input, so that under SANITIZE=address a read one byte past the end is a
 * crash, not a silent pass. Every primitive is read from its full encoding
 * (value checked) and from every shorter prefix (error set, zero value, the
 * reader then stays failed).
 */
#include <signal.h>
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kbuf.h"

/* ---- helpers ---- */

/* A heap copy of exactly n bytes (caller frees). */
static uint8_t *exact(const void *p, size_t n) {
    uint8_t *b = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(b);
    if (n) memcpy(b, p, n);
    return b;
}

/* Runs `body` with a reader `r` over an exact heap copy of the bytes. */
#define WITH_READER(bytes, n, body) do { \
    uint8_t *buf_ = exact((bytes), (n)); \
    kr_t r = kr_init(buf_, (n)); \
    body; \
    free(buf_); \
} while (0)

/* The reader primitives, to test them all the same way. */
enum prim {
    P_I8, P_I16, P_U16, P_I32, P_U32, P_I64, P_F64, P_UVARINT, P_VARINT, P_VARINT32,
    P_STR, P_CSTR, P_BYTES, P_CBYTES, P_ARRAYCNT, P_CARRAYCNT, P_SKIP_TAGS, P_TAKE3, P_SKIP3,
    P__MAX
};

/* Reads one value of kind k; returns it folded into an integer (lengths for
 * strings/bytes, value for integers) so a failed read can be compared with 0. */
static int64_t read_prim(enum prim k, kr_t *r) {
    switch (k) {
    case P_I8: return kr_i8(r);
    case P_I16: return kr_i16(r);
    case P_U16: return kr_u16(r);
    case P_I32: return kr_i32(r);
    case P_U32: return kr_u32(r);
    case P_I64: return kr_i64(r);
    case P_F64: return (int64_t)kr_f64(r);
    case P_UVARINT: return (int64_t)kr_uvarint(r);
    case P_VARINT: return kr_varint(r);
    case P_VARINT32: return kr_varint32(r);
    case P_STR: { kstr_t s = kr_str(r, false); return s.len; }
    case P_CSTR: { kstr_t s = kr_str(r, true); return s.len; }
    case P_BYTES: { kbytes_t b = kr_bytes(r, false); return b.len; }
    case P_CBYTES: { kbytes_t b = kr_bytes(r, true); return b.len; }
    case P_ARRAYCNT: return kr_arraycnt(r, false, 1000, 0);
    case P_CARRAYCNT: return kr_arraycnt(r, true, 1000, 0);
    case P_SKIP_TAGS: kr_skip_tags(r); return 0;
    case P_TAKE3: return kr_take(r, 3) != NULL;
    case P_SKIP3: kr_skip(r, 3); return 0;
    default: return 0;
    }
}

/* A valid encoding of one value of every kind, the value read_prim() returns. */
static const struct {
    enum prim k;
    const char *name;
    uint8_t bytes[16];
    size_t n;
    int64_t value;
} good[] = {
    {P_I8, "i8", {0xfe}, 1, -2},
    {P_I16, "i16", {0x80, 0x01}, 2, -32767},
    {P_U16, "u16", {0xff, 0xfe}, 2, 0xfffe},
    {P_I32, "i32", {0x80, 0, 0, 1}, 4, INT32_MIN + 1},
    {P_U32, "u32", {0xff, 0xff, 0xff, 0xfe}, 4, 0xfffffffe},
    {P_I64, "i64", {1, 2, 3, 4, 5, 6, 7, 8}, 8, 0x0102030405060708},
    {P_F64, "f64", {0x40, 0x45, 0, 0, 0, 0, 0, 0}, 8, 42},     /* 42.0 */
    {P_UVARINT, "uvarint", {0xac, 0x02}, 2, 300},
    {P_VARINT, "varint", {0x03}, 1, -2},
    {P_VARINT32, "varint32", {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5, INT32_MAX},
    {P_STR, "str", {0, 3, 'a', 'b', 'c'}, 5, 3},
    {P_CSTR, "compact str", {4, 'a', 'b', 'c'}, 4, 3},
    {P_BYTES, "bytes", {0, 0, 0, 2, 9, 9}, 6, 2},
    {P_CBYTES, "compact bytes", {3, 9, 9}, 3, 2},
    {P_ARRAYCNT, "arraycnt", {0, 0, 0, 7}, 4, 7},
    {P_CARRAYCNT, "compact arraycnt", {8}, 1, 7},
    {P_SKIP_TAGS, "tags", {2, 0, 1, 0xaa, 5, 2, 0xbb, 0xcc}, 8, 0},
    {P_TAKE3, "take", {1, 2, 3}, 3, 1},
    {P_SKIP3, "skip", {1, 2, 3}, 3, 0},
};
#define NGOOD (int)(sizeof good / sizeof good[0])

/* ---- reader: every primitive on good and truncated input ---- */

START_TEST(reader_reads_every_primitive_and_consumes_exactly_its_bytes) {
    const int i = _i;
    WITH_READER(good[i].bytes, good[i].n, {
        int64_t v = read_prim(good[i].k, &r);
        ck_assert_msg(r.err == KR_OK, "%s: err %d", good[i].name, r.err);
        ck_assert_msg(v == good[i].value, "%s: got %lld want %lld", good[i].name, (long long)v,
                      (long long)good[i].value);
        ck_assert_msg(kr_left(&r) == 0, "%s: %zu bytes left", good[i].name, kr_left(&r));
    });
}
END_TEST

START_TEST(reader_fails_on_every_truncation_without_reading_past_the_end) {
    const int i = _i;
    for (size_t n = 0; n < good[i].n; n++) {
        WITH_READER(good[i].bytes, n, {
            int64_t v = read_prim(good[i].k, &r);
            ck_assert_msg(r.err != KR_OK, "%s: prefix %zu accepted", good[i].name, n);
            if (good[i].k <= P_VARINT32 || good[i].k == P_TAKE3)
                ck_assert_msg(v == 0, "%s: prefix %zu returned %lld", good[i].name, n, (long long)v);
            ck_assert_uint_eq(kr_left(&r), 0);
            /* The error sticks: later reads fail and return zero values. */
            int err = r.err;
            ck_assert_int_eq(kr_i8(&r), 0);
            ck_assert_int_eq(kr_i64(&r), 0);
            ck_assert_ptr_null(kr_take(&r, 0));
            ck_assert_int_eq(kr_str(&r, true).len, -1);
            ck_assert_int_eq(r.err, err);
        });
    }
}
END_TEST

START_TEST(reader_reads_big_endian_sequences) {
    static const uint8_t b[] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44,
                                0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80};
    WITH_READER(b, sizeof b, {
        ck_assert_int_eq(kr_i16(&r), 0x1234);
        ck_assert_uint_eq(kr_u16(&r), 0x5678);
        ck_assert_uint_eq(kr_u32(&r), 0x9abcdef0u);
        ck_assert_int_eq(kr_i32(&r), 0x11223344);
        ck_assert_int_eq(kr_i64(&r), INT64_MAX);
        ck_assert_int_eq(kr_i8(&r), -128);
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_uint_eq(kr_left(&r), 0);
        ck_assert_int_eq(kr_i8(&r), 0);
        ck_assert_int_eq(r.err, KR_ETRUNC);
    });
}
END_TEST

START_TEST(reader_take_returns_a_view_and_zero_length_take_succeeds) {
    static const uint8_t b[] = {1, 2, 3, 4};
    WITH_READER(b, sizeof b, {
        const uint8_t *p = kr_take(&r, 0);
        ck_assert_ptr_eq(p, buf_);
        p = kr_take(&r, 3);
        ck_assert_ptr_eq(p, buf_);
        ck_assert_int_eq(p[2], 3);
        kr_skip(&r, 1);
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_ptr_null(kr_take(&r, 1));
        ck_assert_int_eq(r.err, KR_ETRUNC);
    });
    /* A huge length is a truncation, not a pointer overflow. */
    WITH_READER(b, sizeof b, {
        ck_assert_ptr_null(kr_take(&r, SIZE_MAX));
        ck_assert_int_eq(r.err, KR_ETRUNC);
    });
}
END_TEST

START_TEST(reader_f64_round_trips_bits) {
    double vals[] = {0.0, -0.0, 1.5, -1e300, 4.9e-324};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        kw_t w;
        kw_init(&w, 0);
        kw_f64(&w, vals[i]);
        WITH_READER(w.buf, w.len, {
            double d = kr_f64(&r);
            ck_assert(memcmp(&d, &vals[i], sizeof d) == 0);
            ck_assert_int_eq(r.err, KR_OK);
        });
        kw_free(&w);
    }
}
END_TEST

/* ---- varints ---- */

START_TEST(varint_ten_byte_maximum_is_accepted) {
    static const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    WITH_READER(max, sizeof max, {
        ck_assert(kr_uvarint(&r) == UINT64_MAX);
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_uint_eq(kr_left(&r), 0);
    });
    /* The same bytes as a zig-zag varint are INT64_MIN. */
    WITH_READER(max, sizeof max, {
        ck_assert(kr_varint(&r) == INT64_MIN);
        ck_assert_int_eq(r.err, KR_OK);
    });
}
END_TEST

START_TEST(varint_overflowing_64_bits_is_refused) {
    /* 10th byte carrying bits above bit 63. */
    static const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    WITH_READER(over, sizeof over, {
        ck_assert(kr_uvarint(&r) == 0);
        ck_assert_int_eq(r.err, KR_EINVAL);
    });
    static const uint8_t over7f[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f};
    WITH_READER(over7f, sizeof over7f, {
        (void)kr_uvarint(&r);
        ck_assert_int_eq(r.err, KR_EINVAL);
    });
}
END_TEST

START_TEST(varint_longer_than_ten_bytes_is_refused) {
    /* Continuation bit still set on the 10th byte: an 11-byte varint. */
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81, 0x00};
    WITH_READER(eleven, sizeof eleven, {
        ck_assert(kr_uvarint(&r) == 0);
        ck_assert_int_eq(r.err, KR_EINVAL);
    });
    static const uint8_t all_ff[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    WITH_READER(all_ff, sizeof all_ff, {
        (void)kr_uvarint(&r);
        ck_assert_int_ne(r.err, KR_OK);
    });
}
END_TEST

START_TEST(varint_overlong_zero_padding_within_ten_bytes_decodes_like_kafka) {
    /* Java's ByteUtils accepts redundant 0x80 continuation bytes; so do we,
     * as long as the whole varint stays within 10 bytes. */
    static const uint8_t two[] = {0x81, 0x00};
    WITH_READER(two, sizeof two, {
        ck_assert(kr_uvarint(&r) == 1);
        ck_assert_int_eq(r.err, KR_OK);
    });
    static const uint8_t ten[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    WITH_READER(ten, sizeof ten, {
        ck_assert(kr_uvarint(&r) == 0);
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_uint_eq(kr_left(&r), 0);
    });
}
END_TEST

START_TEST(varint_zigzag_extremes_round_trip) {
    static const int64_t vals[] = {0, -1, 1, -64, 63, -65, 64, INT32_MIN, INT32_MAX,
                                   (int64_t)INT32_MIN - 1, (int64_t)INT32_MAX + 1, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        kw_t w;
        kw_init(&w, 0);
        kw_varint(&w, vals[i]);
        ck_assert_uint_le(w.len, 10);
        WITH_READER(w.buf, w.len, {
            ck_assert(kr_varint(&r) == vals[i]);
            ck_assert_int_eq(r.err, KR_OK);
            ck_assert_uint_eq(kr_left(&r), 0);
        });
        bool fits32 = vals[i] >= INT32_MIN && vals[i] <= INT32_MAX;
        WITH_READER(w.buf, w.len, {
            int32_t v = kr_varint32(&r);
            if (fits32) {
                ck_assert_int_eq(v, vals[i]);
                ck_assert_int_eq(r.err, KR_OK);
            } else {
                ck_assert_int_eq(v, 0);
                ck_assert_int_eq(r.err, KR_ERANGE);
            }
        });
        kw_free(&w);
    }
}
END_TEST

START_TEST(varint_known_encodings) {
    static const struct { int64_t v; uint8_t b[10]; size_t n; } zz[] = {
        {0, {0x00}, 1}, {-1, {0x01}, 1}, {1, {0x02}, 1}, {-2, {0x03}, 1},
        {63, {0x7e}, 1}, {-64, {0x7f}, 1}, {64, {0x80, 0x01}, 2},
        {INT64_MAX, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
        {INT64_MIN, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    };
    for (size_t i = 0; i < sizeof zz / sizeof zz[0]; i++) {
        kw_t w;
        kw_init(&w, 0);
        kw_varint(&w, zz[i].v);
        ck_assert_uint_eq(w.len, zz[i].n);
        ck_assert(memcmp(w.buf, zz[i].b, zz[i].n) == 0);
        kw_free(&w);
    }
    kw_t w;
    kw_init(&w, 0);
    kw_uvarint(&w, UINT64_MAX);
    ck_assert_uint_eq(w.len, 10);
    ck_assert_int_eq(w.buf[9], 0x01);
    kw_free(&w);
}
END_TEST

/* ---- strings and bytes ---- */

START_TEST(strings_classic_null_empty_and_value) {
    static const uint8_t b[] = {0xff, 0xff, 0, 0, 0, 2, 'h', 'i'};
    WITH_READER(b, sizeof b, {
        kstr_t s = kr_str(&r, false);
        ck_assert_int_eq(s.len, -1);
        ck_assert_ptr_null(s.p);
        s = kr_str(&r, false);
        ck_assert_int_eq(s.len, 0);
        s = kr_str(&r, false);
        ck_assert_int_eq(s.len, 2);
        ck_assert_ptr_eq(s.p, (const char *)buf_ + 6); /* a view, not a copy */
        ck_assert(kstr_eq_c(s, "hi"));
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_uint_eq(kr_left(&r), 0);
    });
}
END_TEST

START_TEST(strings_compact_null_empty_and_value) {
    static const uint8_t b[] = {0, 1, 3, 'h', 'i'};
    WITH_READER(b, sizeof b, {
        ck_assert_int_eq(kr_str(&r, true).len, -1);
        ck_assert_int_eq(kr_str(&r, true).len, 0);
        kstr_t s = kr_str(&r, true);
        ck_assert(kstr_eq_c(s, "hi"));
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_uint_eq(kr_left(&r), 0);
    });
}
END_TEST

START_TEST(strings_bad_lengths_are_refused) {
    /* classic length below -1 */
    static const uint8_t neg[] = {0xff, 0xfe, 'x', 'x'};
    WITH_READER(neg, sizeof neg, {
        kstr_t s = kr_str(&r, false);
        ck_assert_int_eq(s.len, -1);
        ck_assert_int_eq(r.err, KR_EINVAL);
    });
    /* classic length past the end */
    static const uint8_t longer[] = {0, 5, 'a', 'b'};
    WITH_READER(longer, sizeof longer, {
        kstr_t s = kr_str(&r, false);
        ck_assert_int_eq(s.len, -1);
        ck_assert_int_eq(r.err, KR_ETRUNC);
    });
    /* compact length that does not fit int32 */
    static const uint8_t huge[] = {0x81, 0x80, 0x80, 0x80, 0x08, 'a'}; /* 2^31 + 1 */
    WITH_READER(huge, sizeof huge, {
        kstr_t s = kr_str(&r, true);
        ck_assert_int_eq(s.len, -1);
        ck_assert_int_eq(r.err, KR_ERANGE);
    });
    /* compact length INT32_MAX (a 2^31-2 byte string) past the end */
    static const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x07, 'a'};
    WITH_READER(big, sizeof big, {
        (void)kr_str(&r, true);
        ck_assert_int_eq(r.err, KR_ETRUNC);
    });
}
END_TEST

START_TEST(bytes_classic_and_compact_incl_null) {
    static const uint8_t b[] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa, 0, 1, 2, 0xbb};
    WITH_READER(b, sizeof b, {
        kbytes_t x = kr_bytes(&r, false);
        ck_assert_int_eq(x.len, -1);
        ck_assert_ptr_null(x.p);
        ck_assert_int_eq(kr_bytes(&r, false).len, 0);
        x = kr_bytes(&r, false);
        ck_assert_int_eq(x.len, 1);
        ck_assert_int_eq(x.p[0], 0xaa);
        ck_assert_int_eq(kr_bytes(&r, true).len, -1);
        ck_assert_int_eq(kr_bytes(&r, true).len, 0);
        x = kr_bytes(&r, true);
        ck_assert_int_eq(x.len, 1);
        ck_assert_int_eq(x.p[0], 0xbb);
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_uint_eq(kr_left(&r), 0);
    });
    static const uint8_t neg[] = {0xff, 0xff, 0xff, 0xfe};
    WITH_READER(neg, sizeof neg, {
        (void)kr_bytes(&r, false);
        ck_assert_int_eq(r.err, KR_EINVAL);
    });
    static const uint8_t past[] = {0x7f, 0xff, 0xff, 0xff, 1};
    WITH_READER(past, sizeof past, {
        (void)kr_bytes(&r, false);
        ck_assert_int_eq(r.err, KR_ETRUNC);
    });
}
END_TEST

START_TEST(kstr_helpers) {
    ck_assert(kstr_eq(KSTR_NULL, KSTR_NULL));
    ck_assert(!kstr_eq(KSTR_NULL, KSTR_LIT("")));
    ck_assert(kstr_eq(KSTR_LIT(""), (kstr_t){"zzz", 0}));
    ck_assert(kstr_eq((kstr_t){"abcd", 3}, KSTR_LIT("abc")));
    ck_assert(!kstr_eq(KSTR_LIT("abc"), KSTR_LIT("abd")));
    ck_assert(kstr_eq_c(KSTR_NULL, NULL));
    ck_assert(!kstr_eq_c(KSTR_LIT(""), NULL));
    ck_assert(!kstr_eq_c(KSTR_NULL, ""));
    ck_assert_int_eq(kstr_c(NULL).len, -1);
    ck_assert_int_eq(kstr_c("four").len, 4);
    char d[4];
    ck_assert_str_eq(kstr_cpy(d, sizeof d, KSTR_LIT("abcdef")), "abc");
    ck_assert_str_eq(kstr_cpy(d, sizeof d, KSTR_NULL), "");
    ck_assert_str_eq(kstr_cpy(d, sizeof d, KSTR_LIT("ab")), "ab");
    d[0] = 'q';
    kstr_cpy(d, 0, KSTR_LIT("ab")); /* no room: dst untouched */
    ck_assert_int_eq(d[0], 'q');
}
END_TEST

/* ---- array counts ---- */

START_TEST(arraycnt_null_and_counts) {
    static const uint8_t b[] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1, 4};
    WITH_READER(b, sizeof b, {
        ck_assert_int_eq(kr_arraycnt(&r, false, 10, 4), -1); /* null */
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_int_eq(kr_arraycnt(&r, false, 10, 4), 0);
        ck_assert_int_eq(kr_arraycnt(&r, true, 10, 4), -1);  /* compact null */
        ck_assert_int_eq(kr_arraycnt(&r, true, 10, 4), 0);
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_int_eq(kr_arraycnt(&r, true, 10, 0), 3);   /* nothing follows, min size 0 */
        ck_assert_int_eq(r.err, KR_OK);
    });
}
END_TEST

START_TEST(arraycnt_bounded_by_max) {
    static const uint8_t c11[] = {0, 0, 0, 11};
    WITH_READER(c11, sizeof c11, {
        ck_assert_int_eq(kr_arraycnt(&r, false, 11, 0), 11);
        ck_assert_int_eq(r.err, KR_OK);
    });
    WITH_READER(c11, sizeof c11, {
        ck_assert_int_eq(kr_arraycnt(&r, false, 10, 0), -1);
        ck_assert_int_eq(r.err, KR_ERANGE);
    });
    static const uint8_t cc11[] = {12};
    WITH_READER(cc11, sizeof cc11, {
        ck_assert_int_eq(kr_arraycnt(&r, true, 10, 0), -1);
        ck_assert_int_eq(r.err, KR_ERANGE);
    });
    static const uint8_t neg[] = {0xff, 0xff, 0xff, 0xfe};
    WITH_READER(neg, sizeof neg, {
        ck_assert_int_eq(kr_arraycnt(&r, false, 10, 0), -1);
        ck_assert_int_eq(r.err, KR_EINVAL);
    });
    static const uint8_t big[] = {0x7f, 0xff, 0xff, 0xff};
    WITH_READER(big, sizeof big, {
        ck_assert_int_eq(kr_arraycnt(&r, false, INT32_MAX, 1), -1);
        ck_assert_int_eq(r.err, KR_ERANGE);
    });
}
END_TEST

START_TEST(arraycnt_bounded_by_bytes_left) {
    /* 3 elements of at least 4 bytes need 12 bytes; 12 are there. */
    uint8_t b[16] = {0, 0, 0, 3};
    WITH_READER(b, 16, {
        ck_assert_int_eq(kr_arraycnt(&r, false, 100, 4), 3);
        ck_assert_int_eq(r.err, KR_OK);
    });
    /* 11 bytes: refused before any allocation. */
    WITH_READER(b, 15, {
        ck_assert_int_eq(kr_arraycnt(&r, false, 100, 4), -1);
        ck_assert_int_eq(r.err, KR_ERANGE);
    });
    /* A huge count times a large element size must not wrap around. */
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
    WITH_READER(huge, sizeof huge, {
        ck_assert_int_eq(kr_arraycnt(&r, false, INT32_MAX, SIZE_MAX / 2), -1);
        ck_assert_int_eq(r.err, KR_ERANGE);
    });
}
END_TEST

/* ---- tagged fields ---- */

START_TEST(skip_tags_skips_every_tag) {
    /* two tags: 0 (2 bytes), 300 (varint 0xac 0x02, 1 byte), then a marker */
    static const uint8_t b[] = {2, 0, 2, 0xaa, 0xbb, 0xac, 0x02, 1, 0xcc, 0x5a};
    WITH_READER(b, sizeof b, {
        kr_skip_tags(&r);
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_int_eq(kr_i8(&r), 0x5a);
        ck_assert_uint_eq(kr_left(&r), 0);
    });
    static const uint8_t none[] = {0};
    WITH_READER(none, sizeof none, {
        kr_skip_tags(&r);
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_uint_eq(kr_left(&r), 0);
    });
}
END_TEST

START_TEST(skip_tags_refuses_bad_sections) {
    /* tag size past the end */
    static const uint8_t past[] = {1, 0, 5, 1, 2};
    WITH_READER(past, sizeof past, {
        kr_skip_tags(&r);
        ck_assert_int_ne(r.err, KR_OK);
    });
    /* more tags than bytes left */
    static const uint8_t many[] = {0xff, 0x01, 0, 0};
    WITH_READER(many, sizeof many, {
        kr_skip_tags(&r);
        ck_assert_int_eq(r.err, KR_ERANGE);
    });
    /* a tag size that does not fit size_t arithmetic */
    static const uint8_t huge[] = {1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    WITH_READER(huge, sizeof huge, {
        kr_skip_tags(&r);
        ck_assert_int_ne(r.err, KR_OK);
    });
}
END_TEST

/* ---- writer ---- */

START_TEST(writer_round_trips_every_primitive) {
    kw_t w;
    kw_init(&w, 4); /* small: forces growth */
    kw_i8(&w, -5);
    kw_i16(&w, -12345);
    kw_u16(&w, 65000);
    kw_i32(&w, INT32_MIN);
    kw_u32(&w, 0xdeadbeef);
    kw_i64(&w, INT64_MIN + 7);
    kw_f64(&w, -2.25);
    kw_uvarint(&w, 1ull << 40);
    kw_varint(&w, -123456789);
    kw_str(&w, false, KSTR_LIT("classic"));
    kw_str(&w, false, KSTR_NULL);
    kw_str(&w, true, KSTR_LIT("compact"));
    kw_str(&w, true, KSTR_NULL);
    kw_str(&w, true, KSTR_LIT(""));
    kw_bytes(&w, false, (kbytes_t){(const uint8_t *)"\x01\x02", 2});
    kw_bytes(&w, false, (kbytes_t){NULL, -1});
    kw_bytes(&w, true, (kbytes_t){(const uint8_t *)"\x03", 1});
    kw_bytes(&w, true, (kbytes_t){NULL, -1});
    kw_arraycnt(&w, false, 3);
    kw_arraycnt(&w, false, -1);
    kw_arraycnt(&w, true, 2);
    kw_arraycnt(&w, true, -1);
    kw_empty_tags(&w);
    kw_raw(&w, "xyz", 3);
    ck_assert(!w.oom);
    ck_assert_uint_eq(kw_size(&w), w.len);

    WITH_READER(w.buf, w.len, {
        ck_assert_int_eq(kr_i8(&r), -5);
        ck_assert_int_eq(kr_i16(&r), -12345);
        ck_assert_uint_eq(kr_u16(&r), 65000);
        ck_assert_int_eq(kr_i32(&r), INT32_MIN);
        ck_assert_uint_eq(kr_u32(&r), 0xdeadbeef);
        ck_assert(kr_i64(&r) == INT64_MIN + 7);
        ck_assert(kr_f64(&r) == -2.25);
        ck_assert(kr_uvarint(&r) == 1ull << 40);
        ck_assert(kr_varint(&r) == -123456789);
        ck_assert(kstr_eq_c(kr_str(&r, false), "classic"));
        ck_assert_int_eq(kr_str(&r, false).len, -1);
        ck_assert(kstr_eq_c(kr_str(&r, true), "compact"));
        ck_assert_int_eq(kr_str(&r, true).len, -1);
        ck_assert_int_eq(kr_str(&r, true).len, 0);
        kbytes_t b = kr_bytes(&r, false);
        ck_assert(b.len == 2 && b.p[0] == 1 && b.p[1] == 2);
        ck_assert_int_eq(kr_bytes(&r, false).len, -1);
        b = kr_bytes(&r, true);
        ck_assert(b.len == 1 && b.p[0] == 3);
        ck_assert_int_eq(kr_bytes(&r, true).len, -1);
        ck_assert_int_eq(kr_arraycnt(&r, false, 10, 0), 3);
        ck_assert_int_eq(kr_arraycnt(&r, false, 10, 0), -1);
        ck_assert_int_eq(kr_arraycnt(&r, true, 10, 0), 2);
        ck_assert_int_eq(kr_arraycnt(&r, true, 10, 0), -1);
        kr_skip_tags(&r);
        ck_assert(memcmp(kr_take(&r, 3), "xyz", 3) == 0);
        ck_assert_int_eq(r.err, KR_OK);
        ck_assert_uint_eq(kr_left(&r), 0);
    });
    kw_free(&w);
}
END_TEST

START_TEST(writer_grows_across_many_writes) {
    kw_t w;
    kw_init(&w, 0);
    for (int i = 0; i < 100000; i++) kw_i32(&w, i);
    ck_assert(!w.oom);
    ck_assert_uint_eq(w.len, 400000);
    ck_assert_uint_ge(w.cap, w.len);
    WITH_READER(w.buf, w.len, {
        for (int i = 0; i < 100000; i++) ck_assert_int_eq(kr_i32(&r), i);
        ck_assert_uint_eq(kr_left(&r), 0);
    });
    /* kw_reset keeps the buffer for reuse. */
    uint8_t *buf = w.buf;
    kw_reset(&w);
    ck_assert_uint_eq(w.len, 0);
    kw_i8(&w, 1);
    ck_assert_ptr_eq(w.buf, buf);
    kw_free(&w);
    ck_assert_ptr_null(w.buf);
    ck_assert_uint_eq(w.len, 0);
}
END_TEST

/* Patching a position that kw_reserve() did not hand out is a bug: abort. */
START_TEST(writer_put_i32_at_past_end_aborts) {
    kw_t w;
    kw_init(&w, 0);
    kw_i32(&w, 0);
    kw_put_i32_at(&w, w.len - 3, 0x11111111);
}
END_TEST

START_TEST(writer_reserve_then_put_i32_at) {
    kw_t w;
    kw_init(&w, 0);
    kw_i8(&w, 7);
    size_t at = kw_reserve(&w, 4);
    ck_assert_uint_eq(at, 1);
    ck_assert_uint_eq(w.len, 5);
    ck_assert(memcmp(w.buf + 1, "\0\0\0\0", 4) == 0); /* reserved bytes are zeroed */
    kw_str(&w, true, KSTR_LIT("body"));
    kw_put_i32_at(&w, at, (int32_t)(w.len - at - 4));
    WITH_READER(w.buf, w.len, {
        ck_assert_int_eq(kr_i8(&r), 7);
        ck_assert_int_eq(kr_i32(&r), 5);
        ck_assert(kstr_eq_c(kr_str(&r, true), "body"));
        ck_assert_uint_eq(kr_left(&r), 0);
    });
    kw_free(&w);
}
END_TEST

static int released[4];
static void on_release(void *arg) { released[(intptr_t)arg]++; }

START_TEST(writer_refs_are_released_exactly_once_by_reset_and_free) {
    static const uint8_t big1[] = "AAAA", big2[] = "BBBBBB";
    memset(released, 0, sizeof released);
    kw_t w;
    kw_init(&w, 16);
    kw_i8(&w, 1);
    kw_ref(&w, big1, 4, on_release, (void *)(intptr_t)0);
    kw_i8(&w, 2);
    kw_ref(&w, big2, 6, on_release, (void *)(intptr_t)1);
    kw_ref(&w, big1, 2, NULL, NULL); /* no release callback is fine */
    ck_assert_uint_eq(w.nrefs, 3);
    ck_assert_uint_eq(w.refs[0].at, 1);
    ck_assert_uint_eq(w.refs[1].at, 2);
    ck_assert_uint_eq(w.refs[2].at, 2);
    ck_assert_uint_eq(w.reflen, 12);
    ck_assert_uint_eq(kw_size(&w), 14);
    ck_assert_int_eq(released[0] + released[1], 0);

    kw_reset(&w);
    ck_assert_int_eq(released[0], 1);
    ck_assert_int_eq(released[1], 1);
    ck_assert_uint_eq(w.nrefs, 0);
    ck_assert_uint_eq(kw_size(&w), 0);
    kw_reset(&w); /* nothing left to release */
    ck_assert_int_eq(released[0], 1);
    ck_assert_int_eq(released[1], 1);

    /* Many refs (growth of the ref array), then kw_free releases each once. */
    for (int i = 0; i < 100; i++) {
        kw_i8(&w, (int8_t)i);
        kw_ref(&w, big1, 1, on_release, (void *)(intptr_t)2);
    }
    ck_assert_uint_eq(w.nrefs, 100);
    ck_assert_int_eq(released[2], 0);
    kw_free(&w);
    ck_assert_int_eq(released[2], 100);
    ck_assert_int_eq(released[0], 1);
    kw_free(&w); /* a freed writer is empty: freeing again is harmless */
    ck_assert_int_eq(released[2], 100);
}
END_TEST

Suite *kbuf_suite(void) {
    Suite *s = suite_create("kbuf");
    TCase *tc = tcase_create("reader");
    tcase_add_loop_test(tc, reader_reads_every_primitive_and_consumes_exactly_its_bytes, 0, NGOOD);
    tcase_add_loop_test(tc, reader_fails_on_every_truncation_without_reading_past_the_end, 0, NGOOD);
    tcase_add_test(tc, reader_reads_big_endian_sequences);
    tcase_add_test(tc, reader_take_returns_a_view_and_zero_length_take_succeeds);
    tcase_add_test(tc, reader_f64_round_trips_bits);
    suite_add_tcase(s, tc);

    tc = tcase_create("varint");
    tcase_add_test(tc, varint_ten_byte_maximum_is_accepted);
    tcase_add_test(tc, varint_overflowing_64_bits_is_refused);
    tcase_add_test(tc, varint_longer_than_ten_bytes_is_refused);
    tcase_add_test(tc, varint_overlong_zero_padding_within_ten_bytes_decodes_like_kafka);
    tcase_add_test(tc, varint_zigzag_extremes_round_trip);
    tcase_add_test(tc, varint_known_encodings);
    suite_add_tcase(s, tc);

    tc = tcase_create("strings");
    tcase_add_test(tc, strings_classic_null_empty_and_value);
    tcase_add_test(tc, strings_compact_null_empty_and_value);
    tcase_add_test(tc, strings_bad_lengths_are_refused);
    tcase_add_test(tc, bytes_classic_and_compact_incl_null);
    tcase_add_test(tc, kstr_helpers);
    suite_add_tcase(s, tc);

    tc = tcase_create("arrays_tags");
    tcase_add_test(tc, arraycnt_null_and_counts);
    tcase_add_test(tc, arraycnt_bounded_by_max);
    tcase_add_test(tc, arraycnt_bounded_by_bytes_left);
    tcase_add_test(tc, skip_tags_skips_every_tag);
    tcase_add_test(tc, skip_tags_refuses_bad_sections);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_test(tc, writer_round_trips_every_primitive);
    tcase_add_test(tc, writer_grows_across_many_writes);
    tcase_add_test(tc, writer_reserve_then_put_i32_at);
    tcase_add_test_raise_signal(tc, writer_put_i32_at_past_end_aborts, SIGABRT);
    tcase_add_test(tc, writer_refs_are_released_exactly_once_by_reset_and_free);
    suite_add_tcase(s, tc);
    return s;
}
