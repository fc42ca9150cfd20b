/* test_segment.c - unit tests of the .kfs segment and .index formats and
 * their keys (common/segment.c).
 *
 * Segments are built from real v2 record batches made here by hand (correct
 * batch CRCs), through the builder's iovec pieces into one exact-size heap
 * buffer (so ASan sees any read past the end), then parsed back. Every
 * corruption of a field is refused with its own error code; expected header,
 * footer and index bytes are written out by hand from DESIGN.md, not with the
 * code under test.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "crc32c.h"
#include "kbuf.h"
#include "segment.h"

/* ---- test batches ---- */

/* A v2 batch of nrec uncompressed records (value "v<offset>") at base_offset,
 * in an exact-size heap buffer. nrec 0 gives an empty batch (delta 0). */
static uint8_t *make_batch(int64_t base_offset, int nrec, int64_t ts, size_t *n) {
    kw_t w;
    kw_init(&w, 256);
    kw_i64(&w, base_offset);
    size_t len_at = kw_reserve(&w, 4);
    kw_i32(&w, 0);  /* leader epoch */
    kw_i8(&w, 2);   /* magic */
    size_t crc_at = kw_reserve(&w, 4);
    kw_i16(&w, 0);  /* attributes */
    kw_i32(&w, nrec > 0 ? nrec - 1 : 0);
    kw_i64(&w, ts);
    kw_i64(&w, ts + (nrec > 0 ? nrec - 1 : 0));
    kw_i64(&w, -1); /* producer id */
    kw_i16(&w, -1);
    kw_i32(&w, -1);
    kw_i32(&w, nrec);
    for (int i = 0; i < nrec; i++) {
        char val[40];
        int vlen = snprintf(val, sizeof val, "v%lld", (long long)(base_offset + i));
        kw_t rec;
        kw_init(&rec, 64);
        kw_i8(&rec, 0);
        kw_varint(&rec, i); /* timestamp delta */
        kw_varint(&rec, i); /* offset delta */
        kw_varint(&rec, -1);
        kw_varint(&rec, vlen);
        kw_raw(&rec, val, (size_t)vlen);
        kw_varint(&rec, 0);
        kw_varint(&w, (int64_t)rec.len);
        kw_raw(&w, rec.buf, rec.len);
        kw_free(&rec);
    }
    ck_assert(!w.oom);
    kw_put_i32_at(&w, len_at, (int32_t)(w.len - BATCH_LOG_OVERHEAD));
    kw_put_i32_at(&w, crc_at, (int32_t)crc32c(0, w.buf + 21, w.len - 21));
    uint8_t *b = malloc(w.len);
    memcpy(b, w.buf, w.len);
    *n = w.len;
    kw_free(&w);
    batch_info_t bi;
    /* Producers never send an empty batch (batch_validate refuses it), but a
     * segment may hold one (compaction leaves them): frame it all the same. */
    ck_assert_int_eq(nrec > 0 ? batch_validate(b, *n, &bi) : batch_parse(b, *n, &bi), BATCH_OK);
    return b;
}

#define MAXB 64

/* A set of batches with consecutive offsets. */
typedef struct {
    int nb;
    uint8_t *p[MAXB];
    size_t len[MAXB];
    int64_t base[MAXB];
    int count[MAXB];
} batches_t;

static void batches_make(batches_t *bs, int64_t base, const int *counts, int nb) {
    ck_assert_int_le(nb, MAXB);
    bs->nb = nb;
    for (int i = 0; i < nb; i++) {
        bs->base[i] = base;
        bs->count[i] = counts[i];
        bs->p[i] = make_batch(base, counts[i], 1700000000000 + i * 1000, &bs->len[i]);
        base += counts[i] > 0 ? counts[i] : 1;
    }
}

static void batches_free(batches_t *bs) {
    for (int i = 0; i < bs->nb; i++) free(bs->p[i]);
}

/* Joins iovec pieces into one exact-size heap buffer. */
static uint8_t *join(const struct iovec *iov, int n, size_t *len) {
    size_t t = 0;
    for (int i = 0; i < n; i++) t += iov[i].iov_len;
    uint8_t *b = malloc(t ? t : 1), *q = b;
    for (int i = 0; i < n; i++) {
        memcpy(q, iov[i].iov_base, iov[i].iov_len);
        q += iov[i].iov_len;
    }
    *len = t;
    return b;
}

static uint8_t *exact(const void *p, size_t n) {
    uint8_t *b = malloc(n ? n : 1);
    if (n) memcpy(b, p, n);
    return b;
}

/* Builds a segment from bs; returns the .kfs and (in *idx) the .index, both
 * exact-size heap copies. */
static uint8_t *build(const batches_t *bs, int32_t interval, int64_t created, size_t *n, uint8_t **idx,
                      size_t *idx_n, seg_result_t *res) {
    seg_builder_t b;
    seg_builder_init(&b, interval);
    for (int i = 0; i < bs->nb; i++) ck_assert_int_eq(seg_builder_add(&b, bs->p[i], bs->len[i]), SEG_OK);
    seg_result_t r;
    ck_assert_int_eq(seg_builder_finish(&b, created, &r), SEG_OK);
    uint8_t *seg = join(r.iov, r.iovcnt, n);
    ck_assert_uint_eq(*n, r.size);
    *idx = exact(r.index, r.index_len);
    *idx_n = r.index_len;
    if (res) {
        *res = r;
        res->iov = NULL;
        res->index = NULL;
    }
    seg_builder_free(&b);
    return seg;
}

static int parse_copy(const uint8_t *p, size_t n, seg_info_t *si) {
    uint8_t *c = exact(p, n);
    int rc = seg_parse(c, n, si);
    free(c);
    return rc;
}

/* Recomputes the footer CRC after a deliberate body change. */
static void fix_seg_crc(uint8_t *seg, size_t n) {
    kput32(seg + n - SEG_FOOTER_SIZE, crc32c(0, seg + SEG_HEADER_SIZE, n - SEG_HEADER_SIZE - SEG_FOOTER_SIZE));
}

static const int counts8[] = {3, 4, 5, 2, 10, 1, 1, 20};

/* ---- header and footer bytes ---- */

START_TEST(header_and_footer_bytes_are_the_documented_layout) {
    uint8_t h[SEG_HEADER_SIZE], f[SEG_FOOTER_SIZE];
    seg_header_encode(h, 0x0102030405060708LL, 0x11223344, 0x0000018BCFE56800LL, 0);
    static const uint8_t want_h[SEG_HEADER_SIZE] = {
        'K', 'A', 'F', 'S', 0, 1, 0, 0,                         /* magic, version 1, flags 0 */
        1, 2, 3, 4, 5, 6, 7, 8,                                 /* base offset */
        0x11, 0x22, 0x33, 0x44,                                 /* message count */
        0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00,         /* created ms */
        0, 0, 0, 0};                                            /* reserved */
    ck_assert_mem_eq(h, want_h, SEG_HEADER_SIZE);
    seg_footer_encode(f, 0xDEADBEEFu, 0x0A0B0C0D0E0F1011LL);
    static const uint8_t want_f[SEG_FOOTER_SIZE] = {
        0xDE, 0xAD, 0xBE, 0xEF, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 'E', 'N', 'D', '!'};
    ck_assert_mem_eq(f, want_f, SEG_FOOTER_SIZE);

    seg_info_t si;
    memset(&si, 0, sizeof si);
    ck_assert_int_eq(seg_header_decode(h, sizeof h, &si), SEG_OK);
    ck_assert_int_eq(si.version, 1);
    ck_assert_int_eq(si.flags, 0);
    ck_assert_int_eq(si.base_offset, 0x0102030405060708LL);
    ck_assert_int_eq(si.message_count, 0x11223344);
    ck_assert_int_eq(si.created_ms, 0x0000018BCFE56800LL);
    ck_assert_int_eq(seg_footer_decode(f, sizeof f, &si), SEG_OK);
    ck_assert_uint_eq(si.crc, 0xDEADBEEFu);
    ck_assert_int_eq(si.last_offset, 0x0A0B0C0D0E0F1011LL);

    ck_assert_int_eq(seg_header_decode(h, SEG_HEADER_SIZE - 1, &si), SEG_ETRUNC);
    ck_assert_int_eq(seg_footer_decode(f, SEG_FOOTER_SIZE - 1, &si), SEG_ETRUNC);
    h[7] = 1; /* LZ4 flag: reserved, not readable yet */
    ck_assert_int_eq(seg_header_decode(h, sizeof h, &si), SEG_EFLAGS);
    h[7] = 0;
    h[5] = 2;
    ck_assert_int_eq(seg_header_decode(h, sizeof h, &si), SEG_EVERSION);
    h[5] = 1;
    h[0] = 'k';
    ck_assert_int_eq(seg_header_decode(h, sizeof h, &si), SEG_EMAGIC);
    f[15] = '?';
    ck_assert_int_eq(seg_footer_decode(f, sizeof f, &si), SEG_EFOOTER);
}
END_TEST

/* ---- round trip ---- */

START_TEST(segment_of_real_batches_round_trips) {
    batches_t bs;
    batches_make(&bs, 1000, counts8, 8);
    size_t n, xn;
    uint8_t *idx;
    seg_result_t r;
    uint8_t *seg = build(&bs, 10, 1712345678901LL, &n, &idx, &xn, &r);

    int total = 0;
    size_t body = 0;
    for (int i = 0; i < bs.nb; i++) total += bs.count[i], body += bs.len[i];
    int64_t last = bs.base[7] + bs.count[7] - 1;
    ck_assert_uint_eq(n, SEG_HEADER_SIZE + body + SEG_FOOTER_SIZE);
    ck_assert_int_eq(r.iovcnt, bs.nb + 2);
    ck_assert_int_eq(r.base_offset, 1000);
    ck_assert_int_eq(r.last_offset, last);
    ck_assert_int_eq(r.message_count, total);
    ck_assert_int_eq(r.batch_count, 8);
    ck_assert_int_eq(r.max_timestamp, 1700000000000 + 7 * 1000 + 19);

    /* the header and footer, byte for byte */
    uint8_t want[SEG_HEADER_SIZE];
    seg_header_encode(want, 1000, total, 1712345678901LL, 0);
    ck_assert_mem_eq(seg, want, SEG_HEADER_SIZE);
    ck_assert_mem_eq(seg, "KAFS\0\1\0\0", 8);
    ck_assert_mem_eq(seg + n - 4, "END!", 4);
    uint32_t crc = 0;
    for (int i = 0; i < bs.nb; i++) crc = crc32c_sw(crc, bs.p[i], bs.len[i]);
    ck_assert_uint_eq(kbe32(seg + n - 16), crc);
    ck_assert_uint_eq(r.crc, crc);
    ck_assert_int_eq((int64_t)kbe64(seg + n - 12), last);

    seg_info_t si;
    uint8_t *c = exact(seg, n);
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_OK);
    ck_assert_int_eq(si.version, 1);
    ck_assert_int_eq(si.flags, 0);
    ck_assert_int_eq(si.base_offset, 1000);
    ck_assert_int_eq(si.message_count, total);
    ck_assert_int_eq(si.created_ms, 1712345678901LL);
    ck_assert_int_eq(si.last_offset, last);
    ck_assert_int_eq(si.batch_count, 8);
    ck_assert_int_eq(si.max_timestamp, r.max_timestamp);
    ck_assert_uint_eq(si.body_len, body);
    ck_assert_ptr_eq(si.body, c + SEG_HEADER_SIZE);

    /* the batches come back verbatim, in order */
    size_t pos = SEG_HEADER_SIZE, len;
    const uint8_t *bp;
    int i = 0;
    while (seg_next_batch(c, n, &pos, &bp, &len)) {
        ck_assert_int_lt(i, bs.nb);
        ck_assert_uint_eq(len, bs.len[i]);
        ck_assert_mem_eq(bp, bs.p[i], len);
        i++;
    }
    ck_assert_int_eq(i, bs.nb);
    ck_assert_uint_eq(pos, n - SEG_FOOTER_SIZE);

    /* index: entries at batches 0, 3 and 5 for interval 10 (3+4+5 >= 10,
     * then 2+10 >= 10), by hand */
    ck_assert_int_eq(r.index_entries, 3);
    ck_assert_uint_eq(xn, SEG_IDX_HEADER_SIZE + 3 * SEG_IDX_ENTRY_SIZE);
    uint8_t wx[SEG_IDX_HEADER_SIZE + 3 * SEG_IDX_ENTRY_SIZE] = {'I', 'D', 'X', 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 10, 0, 0};
    size_t p0 = SEG_HEADER_SIZE, p3 = p0 + bs.len[0] + bs.len[1] + bs.len[2], p5 = p3 + bs.len[3] + bs.len[4];
    kput64(wx + 16, 1000);
    kput32(wx + 24, (uint32_t)p0);
    kput64(wx + 28, (uint64_t)bs.base[3]);
    kput32(wx + 36, (uint32_t)p3);
    kput64(wx + 40, (uint64_t)bs.base[5]);
    kput32(wx + 48, (uint32_t)p5);
    ck_assert_mem_eq(idx, wx, sizeof wx);
    seg_index_t x;
    ck_assert_int_eq(seg_index_parse(idx, xn, &x), SEG_OK);
    ck_assert_int_eq(x.count, 3);
    ck_assert_int_eq(x.interval, 10);
    int32_t bad = 99;
    ck_assert_int_eq(seg_index_check(c, n, &x, &bad), SEG_OK);
    ck_assert_int_eq(bad, -1);

    free(c);
    free(seg);
    free(idx);
    batches_free(&bs);
}
END_TEST

START_TEST(one_batch_segment_and_interval_one_and_default) {
    batches_t bs;
    static const int one[] = {1};
    batches_make(&bs, 0, one, 1);
    size_t n, xn;
    uint8_t *idx;
    uint8_t *seg = build(&bs, 0, 0, &n, &idx, &xn, NULL);
    seg_info_t si;
    ck_assert_int_eq(parse_copy(seg, n, &si), SEG_OK);
    ck_assert_int_eq(si.base_offset, 0);
    ck_assert_int_eq(si.last_offset, 0);
    ck_assert_int_eq(si.message_count, 1);
    seg_index_t x;
    ck_assert_int_eq(seg_index_parse(idx, xn, &x), SEG_OK);
    ck_assert_int_eq(x.interval, SEG_INDEX_INTERVAL_DEFAULT);
    ck_assert_int_eq(x.count, 1);
    ck_assert_int_eq(seg_index_offset(&x, 0), 0);
    ck_assert_int_eq(seg_index_position(&x, 0), SEG_HEADER_SIZE);
    free(seg);
    free(idx);
    batches_free(&bs);

    /* interval 1: one entry per batch, including an empty (0-record) batch's
     * successor: the rule counts messages, so after a 0-record batch the
     * next batch still gets an entry only if >= 1 message passed. */
    static const int c[] = {2, 0, 1, 3};
    batches_make(&bs, 50, c, 4);
    seg = build(&bs, 1, 0, &n, &idx, &xn, NULL);
    ck_assert_int_eq(parse_copy(seg, n, &si), SEG_OK);
    ck_assert_int_eq(si.message_count, 6);
    ck_assert_int_eq(si.last_offset, bs.base[3] + 2);
    ck_assert_int_eq(seg_index_parse(idx, xn, &x), SEG_OK);
    /* batch0 entry (since=2), batch1 entry (2>=1, since=0), batch2 no entry
     * (0<1, since=1), batch3 entry */
    ck_assert_int_eq(x.count, 3);
    ck_assert_int_eq(seg_index_offset(&x, 0), bs.base[0]);
    ck_assert_int_eq(seg_index_offset(&x, 1), bs.base[1]);
    ck_assert_int_eq(seg_index_offset(&x, 2), bs.base[3]);
    ck_assert_int_eq(seg_index_check(seg, n, &x, NULL), SEG_OK);
    free(seg);
    free(idx);
    batches_free(&bs);
}
END_TEST

START_TEST(builder_is_reused_without_allocating_and_refuses_bad_input) {
    batches_t bs;
    batches_make(&bs, 10, counts8, 8);
    seg_builder_t b;
    seg_builder_init(&b, 5);
    seg_result_t r1, r2;
    for (int i = 0; i < 8; i++) ck_assert_int_eq(seg_builder_add(&b, bs.p[i], bs.len[i]), SEG_OK);
    ck_assert_int_eq(seg_builder_finish(&b, 1, &r1), SEG_OK);
    size_t n1;
    uint8_t *s1 = join(r1.iov, r1.iovcnt, &n1);
    uint8_t *idx1 = exact(r1.index, r1.index_len);
    size_t xn1 = r1.index_len;
    /* the batches are referenced, not copied */
    for (int i = 0; i < 8; i++) ck_assert_ptr_eq(r1.iov[i + 1].iov_base, bs.p[i]);
    void *buf_arr = b.buf, *iov_arr = b.iov;

    seg_builder_reset(&b);
    ck_assert_int_eq(seg_builder_finish(&b, 1, &r2), SEG_EEMPTY);
    seg_builder_reset(&b);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(seg_builder_add(&b, bs.p[i], bs.len[i]), SEG_OK);
    ck_assert_int_eq(seg_builder_finish(&b, 1, &r2), SEG_OK);
    ck_assert_ptr_eq(b.buf, buf_arr);
    ck_assert_ptr_eq(b.iov, iov_arr);
    size_t n2;
    uint8_t *s2 = join(r2.iov, r2.iovcnt, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(s1, s2, n1);
    ck_assert_uint_eq(r2.index_len, xn1);
    ck_assert_mem_eq(r2.index, idx1, xn1);

    /* refusals leave the builder as it was */
    seg_builder_reset(&b);
    ck_assert_int_eq(seg_builder_add(&b, bs.p[2], bs.len[2]), SEG_OK);
    uint32_t crc = b.crc;
    uint64_t body = b.body_len;
    ck_assert_int_eq(seg_builder_add(&b, bs.p[1], bs.len[1]), SEG_EORDER);  /* older */
    ck_assert_int_eq(seg_builder_add(&b, bs.p[2], bs.len[2]), SEG_EORDER);  /* same */
    ck_assert_int_eq(seg_builder_add(&b, bs.p[3], bs.len[3] - 1), SEG_EBATCH); /* short */
    uint8_t *two = malloc(bs.len[3] + bs.len[4]);
    memcpy(two, bs.p[3], bs.len[3]);
    memcpy(two + bs.len[3], bs.p[4], bs.len[4]);
    ck_assert_int_eq(seg_builder_add(&b, two, bs.len[3] + bs.len[4]), SEG_EBATCH); /* two batches */
    free(two);
    uint8_t *m = exact(bs.p[3], bs.len[3]);
    m[16] = 1; /* magic 1 */
    ck_assert_int_eq(seg_builder_add(&b, m, bs.len[3]), SEG_EBATCH);
    free(m);
    ck_assert_int_eq(b.batch_count, 1);
    ck_assert_uint_eq(b.crc, crc);
    ck_assert_uint_eq(b.body_len, body);
    ck_assert_int_eq(seg_builder_add(&b, bs.p[4], bs.len[4]), SEG_OK); /* gap allowed */
    ck_assert_int_eq(seg_builder_finish(&b, 1, &r2), SEG_OK);
    size_t n3;
    uint8_t *s3 = join(r2.iov, r2.iovcnt, &n3);
    seg_info_t si;
    ck_assert_int_eq(parse_copy(s3, n3, &si), SEG_OK);
    ck_assert_int_eq(si.batch_count, 2);
    ck_assert_int_eq(si.base_offset, bs.base[2]);

    seg_builder_free(&b);
    ck_assert_uint_eq(b.magic, 0);
    free(s1);
    free(s2);
    free(s3);
    free(idx1);
    batches_free(&bs);
}
END_TEST

/* The flusher keeps builders in an array it reallocs while earlier ones
 * hold finished segments waiting for upload: a moved builder's result must
 * still describe the same bytes. */
START_TEST(finished_builder_can_be_moved) {
    batches_t bs;
    batches_make(&bs, 3, counts8, 8);
    seg_builder_t *b = malloc(sizeof *b);
    seg_builder_init(b, 4);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(seg_builder_add(b, bs.p[i], bs.len[i]), SEG_OK);
    seg_result_t r;
    ck_assert_int_eq(seg_builder_finish(b, 42, &r), SEG_OK);
    size_t n0;
    uint8_t *before = join(r.iov, r.iovcnt, &n0);
    uint8_t *idx0 = exact(r.index, r.index_len);
    seg_builder_t *moved = malloc(sizeof *moved);
    memcpy(moved, b, sizeof *b);
    memset(b, 0xA5, sizeof *b);
    free(b);
    size_t n1;
    uint8_t *after = join(r.iov, r.iovcnt, &n1);
    ck_assert_uint_eq(n0, n1);
    ck_assert_mem_eq(before, after, n0);
    ck_assert_mem_eq(r.index, idx0, r.index_len);
    seg_info_t si;
    ck_assert_int_eq(parse_copy(after, n1, &si), SEG_OK);
    seg_builder_reset(moved);
    seg_builder_free(moved);
    free(moved);
    free(before);
    free(after);
    free(idx0);
    batches_free(&bs);
}
END_TEST

/* ---- corruption ---- */

START_TEST(every_flipped_body_byte_is_a_crc_mismatch) {
    batches_t bs;
    batches_make(&bs, 0, counts8, 8);
    size_t n, xn;
    uint8_t *idx;
    uint8_t *seg = build(&bs, 10, 0, &n, &idx, &xn, NULL);
    seg_info_t si;
    for (size_t at = SEG_HEADER_SIZE; at < n - SEG_FOOTER_SIZE; at++) {
        uint8_t *c = exact(seg, n);
        c[at] ^= 0x10;
        int rc = seg_parse(c, n, &si);
        ck_assert_msg(rc == SEG_ECRC, "byte %zu: %s", at, seg_strerror(rc));
        free(c);
    }
    /* footer CRC itself */
    uint8_t *c = exact(seg, n);
    c[n - 16] ^= 1;
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_ECRC);
    free(c);
    free(seg);
    free(idx);
    batches_free(&bs);
}
END_TEST

START_TEST(bad_magics_versions_flags_and_truncation_are_refused) {
    batches_t bs;
    batches_make(&bs, 7, counts8, 4);
    size_t n, xn;
    uint8_t *idx;
    uint8_t *seg = build(&bs, 10, 0, &n, &idx, &xn, NULL);
    seg_info_t si;
    struct {
        size_t at;
        uint8_t val;
        int want;
    } cases[] = {
        {0, 'X', SEG_EMAGIC},  {3, 'T', SEG_EMAGIC},    {4, 1, SEG_EVERSION},   {5, 0, SEG_EVERSION},
        {5, 2, SEG_EVERSION},  {7, 1, SEG_EFLAGS},      {6, 0x80, SEG_EFLAGS},  {7, 0x40, SEG_EFLAGS},
        {n - 4, 'e', SEG_EFOOTER}, {n - 1, '?', SEG_EFOOTER},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t *c = exact(seg, n);
        c[cases[k].at] = cases[k].val;
        int rc = seg_parse(c, n, &si);
        ck_assert_msg(rc == cases[k].want, "case %zu: got %s", k, seg_strerror(rc));
        free(c);
    }
    /* every truncation is refused, whatever the length */
    for (size_t len = 0; len < n; len++) {
        uint8_t *c = exact(seg, len);
        int rc = seg_parse(c, len, &si);
        ck_assert_msg(rc != SEG_OK, "truncated to %zu accepted", len);
        if (len < SEG_HEADER_SIZE + SEG_FOOTER_SIZE) ck_assert_int_eq(rc, SEG_ETRUNC);
        free(c);
    }
    /* reserved bytes are ignored */
    uint8_t *c = exact(seg, n);
    c[31] = 0xFF;
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_OK);
    free(c);
    free(seg);
    free(idx);
    batches_free(&bs);
}
END_TEST

START_TEST(header_and_footer_fields_must_match_the_batches) {
    batches_t bs;
    batches_make(&bs, 100, counts8, 5);
    size_t n, xn;
    uint8_t *idx;
    uint8_t *seg = build(&bs, 10, 0, &n, &idx, &xn, NULL);
    seg_info_t si;
    int64_t last = bs.base[4] + bs.count[4] - 1;

    uint8_t *c = exact(seg, n);
    kput64(c + n - 12, (uint64_t)(last + 1));
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_ELAST);
    ck_assert_uint_eq(si.err_pos, n - 12);
    kput64(c + n - 12, (uint64_t)(last - 1));
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_ELAST);
    free(c);

    c = exact(seg, n);
    kput32(c + 16, kbe32(c + 16) + 1);
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_ECOUNT);
    free(c);

    c = exact(seg, n);
    kput64(c + 8, 99);
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_EBASE);
    free(c);

    /* batches out of order (the batch CRC does not cover the base offset;
     * the segment CRC is fixed so only the order is wrong) */
    c = exact(seg, n);
    size_t b2 = SEG_HEADER_SIZE + bs.len[0] + bs.len[1];
    kput64(c + b2, (uint64_t)bs.base[1]);
    fix_seg_crc(c, n);
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_EORDER);
    ck_assert_uint_eq(si.err_pos, b2);
    free(c);

    /* a batch length that runs into the footer, with a good segment CRC */
    c = exact(seg, n);
    kput32(c + b2 + 8, kbe32(c + b2 + 8) + 1000);
    fix_seg_crc(c, n);
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_EBATCH);
    ck_assert_uint_eq(si.err_pos, b2);
    free(c);

    /* a batch length that splits the body in the wrong place */
    c = exact(seg, n);
    kput32(c + b2 + 8, kbe32(c + b2 + 8) - 5);
    fix_seg_crc(c, n);
    ck_assert_int_eq(seg_parse(c, n, &si), SEG_EBATCH);
    free(c);

    /* trailing garbage after the last batch, with a good segment CRC */
    size_t gn = n + 3;
    c = malloc(gn);
    memcpy(c, seg, n - SEG_FOOTER_SIZE);
    memset(c + n - SEG_FOOTER_SIZE, 0, 3);
    memcpy(c + gn - SEG_FOOTER_SIZE, seg + n - SEG_FOOTER_SIZE, SEG_FOOTER_SIZE);
    fix_seg_crc(c, gn);
    ck_assert_int_eq(seg_parse(c, gn, &si), SEG_EBATCH);
    free(c);

    /* no body at all */
    uint8_t empty[SEG_HEADER_SIZE + SEG_FOOTER_SIZE];
    seg_header_encode(empty, 0, 0, 0, 0);
    seg_footer_encode(empty + SEG_HEADER_SIZE, 0, -1);
    ck_assert_int_eq(parse_copy(empty, sizeof empty, &si), SEG_EEMPTY);

    free(seg);
    free(idx);
    batches_free(&bs);
}
END_TEST

/* ---- index ---- */

START_TEST(index_lookup_on_boundaries) {
    batches_t bs;
    batches_make(&bs, 1000, counts8, 8);
    size_t n, xn;
    uint8_t *idx;
    uint8_t *seg = build(&bs, 10, 0, &n, &idx, &xn, NULL);
    /* entries: (1000, p0) (base3, p3) (base5, p5) */
    int32_t p0 = SEG_HEADER_SIZE, p3 = p0 + (int32_t)(bs.len[0] + bs.len[1] + bs.len[2]),
            p5 = p3 + (int32_t)(bs.len[3] + bs.len[4]);
    struct {
        int64_t off;
        int rc;
        int64_t eo;
        int32_t pos;
    } cases[] = {
        {999, SEG_ERANGE, 0, 0},       {0, SEG_ERANGE, 0, 0},          {-1, SEG_ERANGE, 0, 0},
        {1000, SEG_OK, 1000, p0},      {1001, SEG_OK, 1000, p0},       {bs.base[3] - 1, SEG_OK, 1000, p0},
        {bs.base[3], SEG_OK, bs.base[3], p3}, {bs.base[4], SEG_OK, bs.base[3], p3},
        {bs.base[5] - 1, SEG_OK, bs.base[3], p3}, {bs.base[5], SEG_OK, bs.base[5], p5},
        {bs.base[7] + 19, SEG_OK, bs.base[5], p5}, {INT64_MAX, SEG_OK, bs.base[5], p5},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t eo = -7;
        int32_t pos = -7;
        int rc = seg_index_lookup(idx, xn, cases[k].off, &eo, &pos);
        ck_assert_msg(rc == cases[k].rc, "case %zu (offset %lld): %s", k, (long long)cases[k].off,
                      seg_strerror(rc));
        if (rc == SEG_OK) {
            ck_assert_int_eq(eo, cases[k].eo);
            ck_assert_int_eq(pos, cases[k].pos);
            /* the position is a batch start whose base offset is the entry's */
            ck_assert_int_eq((int64_t)kbe64(seg + pos), eo);
        }
    }
    /* with an entry per batch, every offset of every batch finds its batch */
    uint8_t *idx1;
    size_t n1, xn1;
    uint8_t *seg1 = build(&bs, 1, 0, &n1, &idx1, &xn1, NULL);
    size_t at = SEG_HEADER_SIZE;
    for (int i = 0; i < bs.nb; i++) {
        for (int k = 0; k < bs.count[i]; k++) {
            int64_t eo;
            int32_t pos;
            ck_assert_int_eq(seg_index_lookup(idx1, xn1, bs.base[i] + k, &eo, &pos), SEG_OK);
            ck_assert_int_eq(eo, bs.base[i]);
            ck_assert_int_eq(pos, (int32_t)at);
        }
        at += bs.len[i];
    }
    free(seg1);
    free(idx1);
    free(seg);
    free(idx);
    batches_free(&bs);
}
END_TEST

START_TEST(corrupt_indexes_are_refused) {
    batches_t bs;
    batches_make(&bs, 0, counts8, 8);
    size_t n, xn;
    uint8_t *idx;
    uint8_t *seg = build(&bs, 10, 0, &n, &idx, &xn, NULL);
    seg_index_t x;
    struct {
        size_t at;
        uint8_t val;
        int want;
    } cases[] = {
        {0, 'i', SEG_EMAGIC},       {3, '0', SEG_EMAGIC},         {5, 2, SEG_EVERSION},
        {9, 2, SEG_EIDX_SIZE},      {9, 4, SEG_EIDX_SIZE},        {9, 0, SEG_EIDX_SIZE},
        {6, 0x80, SEG_EIDX_SIZE},   {13, 0, SEG_EIDX_INTERVAL},   {10, 0x80, SEG_EIDX_INTERVAL},
        {16 + 12 + 7, 0, SEG_EIDX_ORDER}, /* entry 1 offset below entry 0's */
        {16 + 12 + 8, 0x80, SEG_EIDX_ORDER}, /* entry 1 position negative */
        {16 + 8 + 3, 31, SEG_EIDX_ORDER},  /* entry 0 position inside the header */
        {16, 0x80, SEG_EIDX_ORDER},        /* negative offset */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t *c = exact(idx, xn);
        c[cases[k].at] = cases[k].val;
        int rc = seg_index_parse(c, xn, &x);
        ck_assert_msg(rc == cases[k].want, "case %zu: got %s", k, seg_strerror(rc));
        free(c);
    }
    for (size_t len = 0; len < xn; len++) {
        uint8_t *c = exact(idx, len);
        ck_assert_int_ne(seg_index_parse(c, len, &x), SEG_OK);
        free(c);
    }
    uint8_t *c = exact(idx, xn); /* entry 1 at entry 0's position */
    kput32(c + 16 + 12 + 8, SEG_HEADER_SIZE);
    ck_assert_int_eq(seg_index_parse(c, xn, &x), SEG_EIDX_ORDER);
    free(c);
    c = malloc(xn + 1);
    memcpy(c, idx, xn);
    c[xn] = 0;
    ck_assert_int_eq(seg_index_parse(c, xn + 1, &x), SEG_EIDX_SIZE);
    free(c);

    /* well-formed indexes that do not belong to the segment */
    int32_t bad;
    c = exact(idx, xn); /* entry 1 moved one byte into its batch */
    kput32(c + 16 + 12 + 8, kbe32(c + 16 + 12 + 8) + 1);
    ck_assert_int_eq(seg_index_parse(c, xn, &x), SEG_OK);
    ck_assert_int_eq(seg_index_check(seg, n, &x, &bad), SEG_EIDX_POS);
    ck_assert_int_eq(bad, 1);
    free(c);
    c = exact(idx, xn); /* entry 2 with the wrong offset */
    kput64(c + 16 + 24, kbe64(c + 16 + 24) + 1);
    ck_assert_int_eq(seg_index_parse(c, xn, &x), SEG_OK);
    ck_assert_int_eq(seg_index_check(seg, n, &x, &bad), SEG_EIDX_POS);
    ck_assert_int_eq(bad, 2);
    free(c);
    c = exact(idx, xn); /* another interval: the same entries break the rule */
    kput32(c + 10, 3);
    ck_assert_int_eq(seg_index_parse(c, xn, &x), SEG_OK);
    ck_assert_int_eq(seg_index_check(seg, n, &x, &bad), SEG_EIDX_RULE);
    free(c);
    c = exact(idx, xn - 12); /* last entry missing */
    kput32(c + 6, 2);
    ck_assert_int_eq(seg_index_parse(c, xn - 12, &x), SEG_OK);
    ck_assert_int_eq(seg_index_check(seg, n, &x, &bad), SEG_EIDX_RULE);
    free(c);
    c = malloc(xn + 12); /* an entry past the last batch */
    memcpy(c, idx, xn);
    kput32(c + 6, 4);
    kput64(c + xn, 10000);
    kput32(c + xn + 8, (uint32_t)n);
    ck_assert_int_eq(seg_index_parse(c, xn + 12, &x), SEG_OK);
    ck_assert_int_eq(seg_index_check(seg, n, &x, &bad), SEG_EIDX_POS);
    ck_assert_int_eq(bad, 3);
    free(c);

    free(seg);
    free(idx);
    batches_free(&bs);
}
END_TEST

/* ---- keys ---- */

START_TEST(keys_have_the_documented_format_and_parse_back) {
    char k[SEG_KEY_MAX];
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "orders", 3, 42, "kfs"), SEG_OK);
    ck_assert_str_eq(k, "default/orders/3/segment-00000000000000000042.kfs");
    ck_assert_int_eq(seg_key(k, sizeof k, "prod/eu", "a.b_c-D9", 0, 0, "index"), SEG_OK);
    ck_assert_str_eq(k, "prod/eu/a.b_c-D9/0/segment-00000000000000000000.index");
    ck_assert_int_eq(seg_key(k, sizeof k, "ns", "t", INT32_MAX, INT64_MAX, "kfs"), SEG_OK);
    ck_assert_str_eq(k, "ns/t/2147483647/segment-09223372036854775807.kfs");

    seg_key_info_t ki;
    ck_assert_int_eq(seg_key_parse(k, &ki), SEG_OK);
    ck_assert_int_eq(ki.partition, INT32_MAX);
    ck_assert_int_eq(ki.base_offset, INT64_MAX);
    ck_assert_int_eq(ki.kind, SEG_KEY_KFS);
    ck_assert_int_eq(seg_key_parse("prod/eu/a.b_c-D9/0/segment-00000000000000000000.index", &ki), SEG_OK);
    ck_assert_uint_eq(ki.ns_len, 7);
    ck_assert_mem_eq(ki.ns, "prod/eu", 7);
    ck_assert_uint_eq(ki.topic_len, 8);
    ck_assert_mem_eq(ki.topic, "a.b_c-D9", 8);
    ck_assert_int_eq(ki.partition, 0);
    ck_assert_int_eq(ki.base_offset, 0);
    ck_assert_int_eq(ki.kind, SEG_KEY_INDEX);

    /* round trip */
    for (int64_t off = 1; off > 0 && off < INT64_MAX / 7; off *= 7) {
        char k2[SEG_KEY_MAX];
        ck_assert_int_eq(seg_key(k, sizeof k, "default", "topic", (int32_t)(off % 1000), off, "kfs"), SEG_OK);
        ck_assert_int_eq(seg_key_parse(k, &ki), SEG_OK);
        char ns[64], tp[64];
        snprintf(ns, sizeof ns, "%.*s", (int)ki.ns_len, ki.ns);
        snprintf(tp, sizeof tp, "%.*s", (int)ki.topic_len, ki.topic);
        ck_assert_int_eq(seg_key(k2, sizeof k2, ns, tp, ki.partition, ki.base_offset, "kfs"), SEG_OK);
        ck_assert_str_eq(k, k2);
    }

    /* what makes no key */
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "orders", -1, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "orders", 0, -1, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "orders", 0, 0, "log"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "", "orders", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "a//b", "orders", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "/a", "orders", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "a/", "orders", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "a/../b", "orders", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "a/b", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "..", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "sp ace", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_int_eq(seg_key(k, 20, "default", "orders", 0, 0, "kfs"), SEG_EKEY);
    ck_assert_str_eq(k, "");
    /* exactly fits */
    ck_assert_int_eq(seg_key(k, 50, "default", "orders", 3, 42, "kfs"), SEG_OK);
    ck_assert_int_eq(seg_key(k, 49, "default", "orders", 3, 42, "kfs"), SEG_EKEY);

    static const char *bad[] = {
        "",
        "segment-00000000000000000000.kfs",
        "0/segment-00000000000000000000.kfs",
        "t/0/segment-00000000000000000000.kfs",            /* no namespace */
        "ns/t/0/segment-0000000000000000000.kfs",          /* 19 digits */
        "ns/t/0/segment-000000000000000000000.kfs",        /* 21 digits */
        "ns/t/0/segment-00000000000000000000.kfs.tmp",
        "ns/t/0/segment-00000000000000000000.log",
        "ns/t/0/segment-0000000000000000000x.kfs",
        "ns/t/0/segment-99999999999999999999.kfs",         /* past INT64_MAX */
        "ns/t/0/Segment-00000000000000000000.kfs",
        "ns/t/01/segment-00000000000000000000.kfs",        /* leading zero */
        "ns/t/-1/segment-00000000000000000000.kfs",
        "ns/t/2147483648/segment-00000000000000000000.kfs",
        "ns/t//segment-00000000000000000000.kfs",
        "ns//0/segment-00000000000000000000.kfs",
        "/t/0/segment-00000000000000000000.kfs",
        "ns/t/0/",
        "ns/t/0/segment-.kfs",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(seg_key_parse(bad[i], &ki) == SEG_EKEY, "accepted %s", bad[i]);
}
END_TEST

START_TEST(every_error_has_a_message) {
    for (int e = 0; e < SEG_E_MAX; e++) {
        const char *m = seg_strerror(e);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_ne(m, "unknown segment error");
    }
    ck_assert_str_eq(seg_strerror(SEG_E_MAX), "unknown segment error");
}
END_TEST

/* Batches of 4 KiB and more get their part of the body CRC from the CRC
 * they carry (seg_builder_add): the footer must still be the CRC of the
 * body's bytes, and a long batch whose own CRC is wrong must make a segment
 * that readers refuse. */
START_TEST(long_batches_body_crc_is_the_crc_of_the_bytes) {
    static const int counts[] = {3, 700, 1, 1500, 2};
    batches_t bs;
    batches_make(&bs, 50, counts, 5);
    ck_assert_uint_ge(bs.len[1], 4096);
    ck_assert_uint_ge(bs.len[3], 4096);
    size_t n, idx_n;
    uint8_t *idx;
    uint8_t *seg = build(&bs, 0, 1, &n, &idx, &idx_n, NULL);
    uint32_t want = crc32c_sw(0, seg + SEG_HEADER_SIZE, n - SEG_HEADER_SIZE - SEG_FOOTER_SIZE);
    ck_assert_uint_eq(kbe32(seg + n - SEG_FOOTER_SIZE), want);
    seg_info_t si;
    ck_assert_int_eq(parse_copy(seg, n, &si), SEG_OK);
    free(seg);
    free(idx);

    bs.p[3][200] ^= 0x5a; /* a byte changed after the batch's CRC was made */
    seg = build(&bs, 0, 1, &n, &idx, &idx_n, NULL);
    ck_assert_int_eq(parse_copy(seg, n, &si), SEG_ECRC);
    free(seg);
    free(idx);
    batches_free(&bs);
}
END_TEST

Suite *segment_suite(void) {
    Suite *s = suite_create("segment");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, header_and_footer_bytes_are_the_documented_layout);
    tcase_add_test(tc, segment_of_real_batches_round_trips);
    tcase_add_test(tc, long_batches_body_crc_is_the_crc_of_the_bytes);
    tcase_add_test(tc, one_batch_segment_and_interval_one_and_default);
    tcase_add_test(tc, builder_is_reused_without_allocating_and_refuses_bad_input);
    tcase_add_test(tc, finished_builder_can_be_moved);
    suite_add_tcase(s, tc);
    tc = tcase_create("corruption");
    tcase_add_test(tc, every_flipped_body_byte_is_a_crc_mismatch);
    tcase_add_test(tc, bad_magics_versions_flags_and_truncation_are_refused);
    tcase_add_test(tc, header_and_footer_fields_must_match_the_batches);
    suite_add_tcase(s, tc);
    tc = tcase_create("index");
    tcase_add_test(tc, index_lookup_on_boundaries);
    tcase_add_test(tc, corrupt_indexes_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("keys");
    tcase_add_test(tc, keys_have_the_documented_format_and_parse_back);
    tcase_add_test(tc, every_error_has_a_message);
    suite_add_tcase(s, tc);
    return s;
}
