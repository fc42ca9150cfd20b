/* test_store_read.c - unit tests of broker/store_read.c: the range math, the
 * cut after the last whole batch, the read cache's LRU, and store_read() /
 * store_offset_for_time() end to end against an in-memory fake object store
 * (the getter hook), with a real event loop delivering the completions.
 *
 * Segments are built from real v2 batches (correct CRCs, real records with
 * increasing timestamps) through the segment builder, exactly as the flusher
 * writes them.
 */
#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "broker.h"
#include "crc32c.h"
#include "objstore.h"
#include "segment.h"
#include "store_read.h"

#define TS0 1700000000000LL /* record at offset o has timestamp TS0 + 10 * o */

/* A v2 batch of nrec uncompressed records at base (values of vlen bytes),
 * exact-size heap buffer. */
static uint8_t *make_batch(int64_t base, int nrec, size_t vlen, size_t *n) {
    kw_t w;
    kw_init(&w, 256);
    kw_i64(&w, base);
    size_t len_at = kw_reserve(&w, 4);
    kw_i32(&w, 0);
    kw_i8(&w, 2);
    size_t crc_at = kw_reserve(&w, 4);
    kw_i16(&w, 0);
    kw_i32(&w, nrec - 1);
    kw_i64(&w, TS0 + 10 * base);
    kw_i64(&w, TS0 + 10 * (base + nrec - 1));
    kw_i64(&w, -1);
    kw_i16(&w, -1);
    kw_i32(&w, -1);
    kw_i32(&w, nrec);
    uint8_t *val = malloc(vlen + 1);
    for (int i = 0; i < nrec; i++) {
        for (size_t k = 0; k < vlen; k++) val[k] = (uint8_t)(base + i + k);
        kw_t rec;
        kw_init(&rec, 64);
        kw_i8(&rec, 0);
        kw_varint(&rec, 10 * i); /* timestamp delta */
        kw_varint(&rec, i);      /* offset delta */
        kw_varint(&rec, -1);
        kw_varint(&rec, (int64_t)vlen);
        kw_raw(&rec, val, vlen);
        kw_varint(&rec, 0);
        kw_varint(&w, (int64_t)rec.len);
        kw_raw(&w, rec.buf, rec.len);
        kw_free(&rec);
    }
    free(val);
    ck_assert(!w.oom);
    kw_put_i32_at(&w, len_at, (int32_t)(w.len - BATCH_LOG_OVERHEAD));
    kw_put_i32_at(&w, crc_at, (int32_t)crc32c(0, w.buf + 21, w.len - 21));
    uint8_t *b = malloc(w.len);
    memcpy(b, w.buf, w.len);
    *n = w.len;
    kw_free(&w);
    return b;
}

/* Batches back to back in one buffer: nb batches of nrec records from base. */
static uint8_t *make_run(int64_t base, int nb, int nrec, size_t vlen, size_t *n, size_t *lens) {
    uint8_t *out = NULL;
    size_t len = 0;
    for (int i = 0; i < nb; i++) {
        size_t bl;
        uint8_t *b = make_batch(base + (int64_t)i * nrec, nrec, vlen, &bl);
        out = realloc(out, len + bl);
        memcpy(out + len, b, bl);
        len += bl;
        if (lens) lens[i] = bl;
        free(b);
    }
    *n = len;
    return out;
}

/* ---- range math ---- */

START_TEST(chunk_is_request_or_minimum_capped_at_max_and_footer) {
    /* small requests get the minimum chunk */
    ck_assert_uint_eq(sr_chunk_len(1000, 32, 100 << 20, 1 << 20, 8 << 20), 1u << 20);
    /* bigger requests get what they asked for */
    ck_assert_uint_eq(sr_chunk_len(3 << 20, 32, 100 << 20, 1 << 20, 8 << 20), 3u << 20);
    /* never above the cap */
    ck_assert_uint_eq(sr_chunk_len(50 << 20, 32, 100 << 20, 1 << 20, 8 << 20), 8u << 20);
    /* never into the footer */
    ck_assert_uint_eq(sr_chunk_len(1 << 20, 32, 5000, 1 << 20, 8 << 20), 5000u - 32);
    ck_assert_uint_eq(sr_chunk_len(1 << 20, 4999, 5000, 1 << 20, 8 << 20), 1u);
    ck_assert_uint_eq(sr_chunk_len(1 << 20, 5000, 5000, 1 << 20, 8 << 20), 0u);
    ck_assert_uint_eq(sr_chunk_len(1 << 20, 6000, 5000, 1 << 20, 8 << 20), 0u);
    /* a zero or negative request is the minimum */
    ck_assert_uint_eq(sr_chunk_len(0, 32, 100 << 20, 4096, 8 << 20), 4096u);
    ck_assert_uint_eq(sr_chunk_len(-5, 32, 100 << 20, 4096, 8 << 20), 4096u);
}
END_TEST

/* ---- cutting ---- */

START_TEST(cut_keeps_only_whole_batches) {
    size_t n, lens[4];
    uint8_t *p = make_run(100, 4, 5, 30, &n, lens);
    sr_batch_t *t;
    uint32_t nb;
    size_t whole, need;
    const char *why;
    /* everything */
    ck_assert_int_eq(sr_cut(p, n, 100, 119, true, &t, &nb, &whole, &need, &why), SR_CUT_OK);
    ck_assert_uint_eq(nb, 4);
    ck_assert_uint_eq(whole, n);
    for (uint32_t i = 0; i < 4; i++) {
        ck_assert_int_eq(t[i].base_offset, 100 + 5 * i);
        ck_assert_int_eq(t[i].last_offset, 104 + 5 * i);
        ck_assert_int_eq(t[i].max_timestamp, TS0 + 10 * (104 + 5 * i));
        ck_assert_uint_eq(t[i].len, lens[i]);
    }
    ck_assert_uint_eq(t[3].pos, lens[0] + lens[1] + lens[2]);
    free(t);
    /* the last batch cut short, at every length that is not whole */
    for (size_t cut = 1; cut < lens[3]; cut += 7) {
        ck_assert_int_eq(sr_cut(p, n - cut, 100, 119, true, &t, &nb, &whole, &need, &why), SR_CUT_OK);
        ck_assert_uint_eq(nb, 3);
        ck_assert_uint_eq(whole, lens[0] + lens[1] + lens[2]);
        free(t);
    }
    free(p);
}
END_TEST

START_TEST(cut_of_a_first_batch_longer_than_the_chunk_says_how_long_it_is) {
    size_t n;
    uint8_t *p = make_run(0, 1, 3, 5000, &n, NULL);
    sr_batch_t *t;
    uint32_t nb;
    size_t whole, need;
    const char *why;
    ck_assert_int_eq(sr_cut(p, 4096, 0, 2, true, &t, &nb, &whole, &need, &why), SR_CUT_SHORT);
    ck_assert_ptr_null(t);
    ck_assert_uint_eq(need, n);
    ck_assert_int_eq(sr_cut(p, 20, 0, 2, true, &t, &nb, &whole, &need, &why), SR_CUT_SHORT);
    ck_assert_uint_eq(need, n); /* the length field is in the first 12 bytes */
    ck_assert_int_eq(sr_cut(p, 10, 0, 2, true, &t, &nb, &whole, &need, &why), SR_CUT_SHORT);
    ck_assert_uint_eq(need, 0); /* not even that */
    ck_assert_int_eq(sr_cut(p, 0, 0, 2, true, &t, &nb, &whole, &need, &why), SR_CUT_SHORT);
    free(p);
}
END_TEST

START_TEST(cut_refuses_bad_crc_magic_and_offsets) {
    size_t n, lens[3];
    uint8_t *p = make_run(10, 3, 4, 20, &n, lens);
    sr_batch_t *t;
    uint32_t nb;
    size_t whole, need;
    const char *why;
    /* a flipped record byte in the second batch: CRC */
    p[lens[0] + 70] ^= 1;
    ck_assert_int_eq(sr_cut(p, n, 10, 21, true, &t, &nb, &whole, &need, &why), SR_CUT_CORRUPT);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(why);
    /* ... which a cut without CRC checks lets through */
    ck_assert_int_eq(sr_cut(p, n, 10, 21, false, &t, &nb, &whole, &need, &why), SR_CUT_OK);
    free(t);
    p[lens[0] + 70] ^= 1;
    /* offsets outside the segment */
    ck_assert_int_eq(sr_cut(p, n, 11, 21, true, &t, &nb, &whole, &need, &why), SR_CUT_CORRUPT);
    ck_assert_int_eq(sr_cut(p, n, 10, 20, true, &t, &nb, &whole, &need, &why), SR_CUT_CORRUPT);
    /* offsets going back: the third batch claims the second's base */
    kput64(p + lens[0] + lens[1], 14);
    ck_assert_int_eq(sr_cut(p, n, 10, 21, false, &t, &nb, &whole, &need, &why), SR_CUT_CORRUPT);
    kput64(p + lens[0] + lens[1], 18);
    /* old message format */
    p[lens[0] + 16] = 1;
    ck_assert_int_eq(sr_cut(p, n, 10, 21, false, &t, &nb, &whole, &need, &why), SR_CUT_CORRUPT);
    p[lens[0] + 16] = 2;
    ck_assert_int_eq(sr_cut(p, n, 10, 21, true, &t, &nb, &whole, &need, &why), SR_CUT_OK);
    ck_assert_uint_eq(nb, 3);
    free(t);
    free(p);
}
END_TEST

/* ---- the cache ---- */

/* A READY range of `size` buffer bytes at pos of segment s, in a new pass
 * unless same_pass. */
static sr_range_t *ready(sr_cache_t *c, sr_seg_t *s, uint32_t pos, uint32_t size, int64_t first, bool same_pass) {
    if (!same_pass) sr_cache_begin_pass(c);
    sr_range_t *r = sr_cache_range_new(c, s, pos, size);
    ck_assert_ptr_nonnull(r);
    pchunk_t *b = malloc(sizeof *b + size);
    b->refs = 1;
    b->cap = b->len = size;
    memset(b->data, 0xab, size);
    sr_batch_t *t = malloc(sizeof *t);
    t[0] = (sr_batch_t){first, first + 9, 0, 0, size};
    sr_cache_range_ready(c, r, b, t, 1);
    return r;
}

static sr_segkey_t key(int64_t base) {
    sr_segkey_t k;
    memset(&k, 0, sizeof k);
    k.topic_id.b[0] = 7;
    k.partition = 3;
    k.base_offset = base;
    return k;
}

static int64_t charge_of(uint32_t size) {
    return (int64_t)(sizeof(pchunk_t) + size + sizeof(sr_batch_t) + sizeof(sr_range_t));
}

START_TEST(lru_evicts_the_least_recently_used_first) {
    sr_cache_t c;
    sr_cache_init(&c, 3 * charge_of(1000));
    sr_segkey_t k = key(0);
    sr_seg_t *s = sr_cache_seg(&c, &k, true);
    ready(&c, s, 32, 1000, 0, false);
    ready(&c, s, 1032, 1000, 10, false);
    ready(&c, s, 2032, 1000, 20, false);
    ck_assert_int_eq(c.bytes, 3 * charge_of(1000));
    /* use the oldest: the second becomes least recently used */
    sr_cache_touch(&c, &sr_cache_range_covering(s, 5)->lru);
    ready(&c, s, 3032, 1000, 30, false);
    ck_assert_ptr_nonnull(sr_cache_range_covering(s, 5));
    ck_assert_ptr_null(sr_cache_range_covering(s, 15));
    ck_assert_ptr_nonnull(sr_cache_range_covering(s, 25));
    ck_assert_ptr_nonnull(sr_cache_range_covering(s, 35));
    ck_assert_uint_eq(c.evictions, 1);
    ck_assert_int_le(c.bytes, c.budget);
    /* ranges stay in position order whatever the insertion order */
    ready(&c, s, 1032, 10, 10, false);
    uint32_t prev = 0;
    sr_range_t *r;
    TAILQ_FOREACH(r, &s->ranges, seg_link) {
        ck_assert_uint_gt(r->pos, prev);
        prev = r->pos;
    }
    sr_cache_free(&c);
}
END_TEST

START_TEST(one_pass_never_evicts_its_own_insertions) {
    sr_cache_t c;
    sr_cache_init(&c, charge_of(1000));
    sr_segkey_t k1 = key(0), k2 = key(100);
    sr_seg_t *s1 = sr_cache_seg(&c, &k1, true), *s2 = sr_cache_seg(&c, &k2, true);
    ready(&c, s1, 32, 1000, 0, false);
    /* one completion pass lands three ranges, each as big as the budget */
    sr_cache_begin_pass(&c);
    ready(&c, s2, 32, 1000, 100, true);
    ready(&c, s2, 1032, 1000, 110, true);
    ready(&c, s2, 2032, 1000, 120, true);
    /* the older one went; the pass's own are all there for their waiters */
    ck_assert_ptr_null(sr_cache_seg(&c, &k1, false)); /* segment entry freed when empty */
    ck_assert_ptr_nonnull(sr_cache_range_covering(s2, 100));
    ck_assert_ptr_nonnull(sr_cache_range_covering(s2, 110));
    ck_assert_ptr_nonnull(sr_cache_range_covering(s2, 120));
    ck_assert_int_eq(c.bytes, 3 * charge_of(1000));
    /* the next pass brings the cache back under its budget */
    sr_segkey_t k3 = key(200);
    sr_seg_t *s3 = sr_cache_seg(&c, &k3, true);
    ready(&c, s3, 32, 100, 200, false);
    ck_assert_ptr_null(sr_cache_seg(&c, &k2, false));
    ck_assert_int_le(c.bytes, c.budget);
    ck_assert_uint_eq(c.nsegs, 1);
    sr_cache_free(&c);
}
END_TEST

START_TEST(evicted_bytes_live_while_a_response_holds_them) {
    sr_cache_t c;
    sr_cache_init(&c, charge_of(4096));
    sr_segkey_t k = key(0);
    sr_seg_t *s = sr_cache_seg(&c, &k, true);
    sr_range_t *r = ready(&c, s, 32, 4096, 0, false);
    pchunk_t *held = r->buf;
    kw_t resp;
    kw_init(&resp, 0);
    pchunk_keep(held); /* what serve() does for a response */
    kw_ref(&resp, NULL, 0, pchunk_release, held);
    ready(&c, s, 5000, 4096, 10, false); /* evicts r */
    ck_assert_ptr_null(sr_cache_range_covering(s, 0));
    ck_assert_uint_eq(held->refs, 1);
    for (int i = 0; i < 4096; i++) ck_assert_uint_eq(held->data[i], 0xab); /* ASan: still allocated */
    kw_free(&resp); /* the response left: the last reference goes */
    sr_cache_free(&c);
}
END_TEST

START_TEST(loading_windows_coalesce_and_errors_expire) {
    sr_cache_t c;
    sr_cache_init(&c, 1 << 20);
    sr_segkey_t k = key(0);
    sr_seg_t *s = sr_cache_seg(&c, &k, true);
    sr_range_t *l = sr_cache_range_new(&c, s, 1000, 500);
    ck_assert_ptr_eq(sr_cache_loading_over(s, 1000), l);
    ck_assert_ptr_eq(sr_cache_loading_over(s, 1499), l);
    ck_assert_ptr_null(sr_cache_loading_over(s, 1500));
    ck_assert_ptr_null(sr_cache_loading_over(s, 999));
    ck_assert_ptr_eq(sr_cache_range_at(s, 1000), l);
    ck_assert_ptr_null(sr_cache_range_covering(s, 0)); /* LOADING covers nothing yet */
    ck_assert_int_eq(s->nloading, 1);
    /* a failed load: the segment answers the error until it expires */
    sr_cache_seg_error(&c, s, KERR_KAFKA_STORAGE_ERROR, 1000, 500);
    sr_cache_range_drop(&c, l);
    ck_assert_int_eq(s->nloading, 0);
    ck_assert_ptr_eq(sr_cache_seg(&c, &k, false), s); /* kept for its error */
    sr_cache_purge_errors(&c, 1499);
    ck_assert_ptr_eq(sr_cache_seg(&c, &k, false), s);
    ck_assert_int_eq(s->err, KERR_KAFKA_STORAGE_ERROR);
    sr_cache_purge_errors(&c, 1500);
    ck_assert_ptr_null(sr_cache_seg(&c, &k, false));
    ck_assert_uint_eq(c.nsegs, 0);
    /* many segments: the hash grows and finds them all */
    for (int i = 0; i < 2000; i++) {
        sr_segkey_t ki = key(i * 10);
        ck_assert_ptr_nonnull(sr_cache_seg(&c, &ki, true));
    }
    for (int i = 0; i < 2000; i++) {
        sr_segkey_t ki = key(i * 10);
        sr_seg_t *si = sr_cache_seg(&c, &ki, false);
        ck_assert_ptr_nonnull(si);
        ck_assert_int_eq(si->key.base_offset, i * 10);
    }
    ck_assert_uint_eq(c.nsegs, 2000);
    sr_cache_free(&c);
}
END_TEST

/* ---- store_read() against a fake store ---- */

#define MAXOBJ 16
static struct {
    char key[MAXOBJ][SEG_KEY_MAX];
    uint8_t *p[MAXOBJ];
    size_t n[MAXOBJ];
    int nobj;
    int fail;      /* answer OBJ_ERROR */
    int gets;      /* GETs served */
} F;

static int fake_get(void *ctx, const char *k, uint64_t off, uint64_t len, uint8_t *buf, size_t cap, uint8_t **out,
                    size_t *got, char *err, size_t errsz) {
    __atomic_fetch_add(&F.gets, 1, __ATOMIC_SEQ_CST);
    *got = 0;
    if (out) *out = NULL;
    if (__atomic_load_n(&F.fail, __ATOMIC_SEQ_CST)) {
        snprintf(err, errsz, "injected failure");
        return OBJ_ERROR;
    }
    for (int i = 0; i < F.nobj; i++) {
        if (strcmp(F.key[i], k)) continue;
        if (off > F.n[i]) {
            snprintf(err, errsz, "range not satisfiable");
            return OBJ_ERROR;
        }
        size_t want = len && len < F.n[i] - off ? len : F.n[i] - off;
        if (buf) {
            if (want > cap) return OBJ_ERROR;
            memcpy(buf, F.p[i] + off, want);
        } else {
            *out = malloc(want ? want : 1);
            memcpy(*out, F.p[i] + off, want);
        }
        *got = want;
        return OBJ_OK;
    }
    snprintf(err, errsz, "not found");
    return OBJ_NOT_FOUND;
}

static topic_t T;
static partition_t P;
static pseg_t SEGS[4];
static uint8_t *KFS[4];
static size_t KFS_N[4];

static void put_obj(const char *k, uint8_t *p, size_t n) {
    ck_assert_int_lt(F.nobj, MAXOBJ);
    snprintf(F.key[F.nobj], SEG_KEY_MAX, "%s", k);
    F.p[F.nobj] = p;
    F.n[F.nobj] = n;
    F.nobj++;
}

/* Segment i: nb batches of nrec records of vlen bytes from base. */
static void add_segment(int i, int64_t base, int nb, int nrec, size_t vlen) {
    seg_builder_t b;
    seg_builder_init(&b, 10);
    uint8_t *bs[64];
    ck_assert_int_le(nb, 64);
    for (int j = 0; j < nb; j++) {
        size_t n;
        bs[j] = make_batch(base + (int64_t)j * nrec, nrec, vlen, &n);
        ck_assert_int_eq(seg_builder_add(&b, bs[j], n), SEG_OK);
    }
    seg_result_t r;
    ck_assert_int_eq(seg_builder_finish(&b, TS0, &r), SEG_OK);
    uint8_t *kfs = malloc(r.size), *q = kfs;
    for (int j = 0; j < r.iovcnt; j++) {
        memcpy(q, r.iov[j].iov_base, r.iov[j].iov_len);
        q += r.iov[j].iov_len;
    }
    uint8_t *idx = malloc(r.index_len);
    memcpy(idx, r.index, r.index_len);
    char k[SEG_KEY_MAX];
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "t", 0, base, "kfs"), SEG_OK);
    put_obj(k, kfs, r.size);
    ck_assert_int_eq(seg_key(k, sizeof k, "default", "t", 0, base, "index"), SEG_OK);
    put_obj(k, idx, r.index_len);
    SEGS[i] = (pseg_t){base, r.last_offset, (int64_t)r.size, r.max_timestamp};
    KFS[i] = kfs;
    KFS_N[i] = r.size;
    P.nsegs = (size_t)i + 1;
    P.log.next_offset = P.log.hw = r.last_offset + 1;
    seg_builder_free(&b);
    for (int j = 0; j < nb; j++) free(bs[j]);
}

static struct event_base *base;

static void setup_store(const char *chunk) {
    memset(&F, 0, sizeof F);
    memset(&T, 0, sizeof T);
    memset(&P, 0, sizeof P);
    T.magic = TOPIC_MAGIC;
    snprintf(T.name, sizeof T.name, "t");
    T.id.b[15] = 42;
    T.npartitions = 1;
    T.partitions = &P;
    P.topic = &T;
    P.index = 0;
    plog_init(&P.log, 0);
    P.segs = SEGS;
    base = event_base_new();
    g_broker.base = base;
    setenv("KAFSCALE_READ_CHUNK_BYTES", chunk, 1);
    setenv("KAFSCALE_READ_CACHE_BYTES", "1m", 1);
    setenv("KAFSCALE_STORE_READ_THREADS", "2", 1);
    unsetenv("KAFSCALE_S3_NAMESPACE");
    store_read_set_getter(fake_get, NULL);
}

static void start_store(void) { ck_assert_int_eq(store_read_init(), 0); }

static void teardown_store(void) {
    store_read_shutdown();
    event_base_free(base);
    g_broker.base = NULL;
    for (int i = 0; i < F.nobj; i++) free(F.p[i]);
    plog_free(&P.log);
}

/* Runs the loop until a completion pass ran (or 5 s passed). */
static void pump(void) {
    struct timeval tv = {5, 0};
    event_base_loopexit(base, &tv);
    event_base_loop(base, EVLOOP_ONCE);
}

/* store_read until it answers; returns its result. */
static int read_at(int64_t off, int64_t max, bool first, kw_t *hold, karena_t *a, krecords_t *out, int16_t *err) {
    for (int i = 0; i < 20; i++) {
        int rc = store_read(&P, off, max, first, hold, a, out, err);
        if (rc != 0) return rc;
        pump();
    }
    return 0;
}

/* The last offset of the last batch of a read's answer. */
static int64_t last_of(const krecords_t *out) {
    int64_t last = -1;
    for (int i = 0; i < out->niov; i++) {
        batch_info_t b;
        for (size_t pos = 0; pos < out->iov[i].len; pos += (size_t)b.length) {
            ck_assert_int_eq(batch_parse(out->iov[i].p + pos, out->iov[i].len - pos, &b), BATCH_OK);
            last = b.base_offset + b.last_offset_delta;
        }
    }
    return last;
}

/* Checks a read's answer: whole valid batches with contiguous offsets from
 * first_base to last_last and, when seg >= 0, the very bytes of segment seg. */
static void expect_batches(const krecords_t *out, int seg, int64_t first_base, int64_t last_last) {
    /* flatten */
    uint8_t *got = malloc((size_t)out->len + 1), *q = got;
    for (int i = 0; i < out->niov; i++) {
        memcpy(q, out->iov[i].p, out->iov[i].len);
        q += out->iov[i].len;
    }
    ck_assert_int_eq(q - got, out->len);
    /* walk: whole batches, contiguous offsets, from first_base */
    size_t pos = 0;
    int64_t expect = first_base;
    while (pos < (size_t)out->len) {
        batch_info_t b;
        ck_assert_int_eq(batch_validate(got + pos, (size_t)out->len - pos, &b), BATCH_OK);
        ck_assert_int_eq(b.base_offset, expect);
        expect = b.base_offset + b.last_offset_delta + 1;
        pos += (size_t)b.length;
    }
    ck_assert_int_eq(expect - 1, last_last);
    /* and the very bytes of the segment (when it is one segment's) */
    if (seg >= 0) {
        size_t sp = SEG_HEADER_SIZE;
        const uint8_t *bp = NULL;
        size_t bl, at = 0;
        bool found = false;
        while (!found && seg_next_batch(KFS[seg], KFS_N[seg], &sp, &bp, &bl)) {
            batch_info_t b;
            batch_parse(bp, bl, &b);
            found = b.base_offset == first_base;
            at = (size_t)(bp - KFS[seg]);
        }
        ck_assert(found);
        ck_assert_uint_le(at + (size_t)out->len, KFS_N[seg] - SEG_FOOTER_SIZE);
        ck_assert_mem_eq(got, bp, (size_t)out->len);
    }
    free(got);
}

START_TEST(reads_load_then_serve_whole_batches_zero_copy) {
    setup_store("4k");
    add_segment(0, 0, 40, 5, 100);    /* ~25 KB: several 4 KiB ranges */
    add_segment(1, 200, 10, 5, 100);
    start_store();
    kw_t hold;
    kw_init(&hold, 0);
    karena_t a;
    karena_init(&a);
    krecords_t out;
    int16_t err;
    batch_info_t b;
    /* a read in the middle of a segment: the index says where to GET from,
     * and the answer starts at the batch holding the offset */
    ck_assert_int_eq(store_read(&P, 123, 3000, true, &hold, &a, &out, &err), 0); /* a load started */
    ck_assert_int_eq(out.len, 0);
    ck_assert_int_eq(read_at(123, 3000, true, &hold, &a, &out, &err), 1);
    ck_assert_int_gt(out.len, 0);
    ck_assert_uint_gt(hold.nrefs, 0); /* holds on the cache buffers */
    ck_assert_int_eq(batch_parse(out.iov[0].p, out.iov[0].len, &b), BATCH_OK);
    ck_assert_int_eq(b.base_offset, 120);
    expect_batches(&out, 0, 120, last_of(&out));
    sr_stats_t st;
    store_read_stats(&st);
    ck_assert_uint_eq(st.index_loads, 1);
    /* the second segment */
    ck_assert_int_eq(read_at(237, 1 << 20, true, &hold, &a, &out, &err), 1);
    ck_assert_int_eq(batch_parse(out.iov[0].p, out.iov[0].len, &b), BATCH_OK);
    ck_assert_int_eq(b.base_offset, 235);
    expect_batches(&out, 1, 235, 249);
    /* both segments, sequentially in small reads (4 KiB ranges, read-ahead,
     * ranges and segments chained), come back byte-exact */
    int64_t off = 0;
    while (off < 250) {
        ck_assert_int_eq(read_at(off, 3000, true, &hold, &a, &out, &err), 1);
        ck_assert_int_gt(out.len, 0);
        ck_assert_int_le(out.len, 3000); /* batches of ~600 bytes: only whole ones that fit */
        int64_t end = last_of(&out) + 1;
        expect_batches(&out, end <= 200 || off >= 200 ? (off >= 200) : -1, off, end - 1);
        off = end;
    }
    kw_free(&hold); /* releases every hold */
    karena_free(&a);
    store_read_stats(&st);
    ck_assert_uint_gt(st.loads, 5);
    ck_assert_uint_gt(st.readaheads, 0);
    ck_assert_uint_eq(st.errors, 0);
    teardown_store();
}
END_TEST

START_TEST(kip74_first_batch_goes_whole_others_only_if_they_fit) {
    setup_store("4k");
    add_segment(0, 0, 10, 5, 100);
    start_store();
    kw_t hold;
    kw_init(&hold, 0);
    karena_t a;
    karena_init(&a);
    krecords_t out;
    int16_t err;
    ck_assert_int_eq(read_at(0, 10, true, &hold, &a, &out, &err), 1);
    batch_info_t b;
    ck_assert_int_eq(batch_parse(out.p, (size_t)out.len, &b), BATCH_OK);
    ck_assert_int_eq(out.len, b.length); /* exactly one batch */
    ck_assert_int_eq(read_at(0, 10, false, &hold, &a, &out, &err), 1);
    ck_assert_int_eq(out.len, 0); /* nothing fits: nothing, but no error */
    /* never at or above the high watermark */
    P.log.hw = 7;
    ck_assert_int_eq(read_at(0, 1 << 20, true, &hold, &a, &out, &err), 1);
    ck_assert_int_eq(out.len, b.length); /* batch [0,4] only; [5,9] reaches the watermark */
    P.log.hw = 50;
    kw_free(&hold);
    karena_free(&a);
    teardown_store();
}
END_TEST

START_TEST(a_batch_longer_than_the_chunk_is_loaded_whole) {
    setup_store("4k");
    add_segment(0, 0, 3, 2, 6000); /* ~12 KB batches */
    start_store();
    kw_t hold;
    kw_init(&hold, 0);
    karena_t a;
    karena_init(&a);
    krecords_t out;
    int16_t err;
    ck_assert_int_eq(read_at(2, 100, true, &hold, &a, &out, &err), 1);
    expect_batches(&out, 0, 2, 3);
    kw_free(&hold);
    karena_free(&a);
    teardown_store();
}
END_TEST

START_TEST(concurrent_reads_of_one_range_load_it_once) {
    setup_store("64k");
    add_segment(0, 0, 20, 5, 100);
    start_store();
    kw_t hold;
    kw_init(&hold, 0);
    karena_t a;
    karena_init(&a);
    krecords_t out;
    int16_t err;
    for (int i = 0; i < 10; i++) ck_assert_int_eq(store_read(&P, 0, 1 << 20, true, &hold, &a, &out, &err), 0);
    ck_assert_int_eq(read_at(0, 1 << 20, true, &hold, &a, &out, &err), 1);
    ck_assert_int_eq(__atomic_load_n(&F.gets, __ATOMIC_SEQ_CST), 1); /* the whole segment in one GET */
    expect_batches(&out, 0, 0, 99);
    kw_free(&hold);
    karena_free(&a);
    teardown_store();
}
END_TEST

START_TEST(store_errors_and_out_of_range_are_per_partition_answers) {
    setup_store("4k");
    add_segment(0, 100, 10, 5, 100);
    start_store();
    kw_t hold;
    kw_init(&hold, 0);
    karena_t a;
    karena_init(&a);
    krecords_t out;
    int16_t err;
    /* below the first segment, above the last */
    ck_assert_int_eq(store_read(&P, 99, 1 << 20, true, &hold, &a, &out, &err), -1);
    ck_assert_int_eq(err, KERR_OFFSET_OUT_OF_RANGE);
    ck_assert_int_eq(store_read(&P, 150, 1 << 20, true, &hold, &a, &out, &err), -1);
    ck_assert_int_eq(err, KERR_OFFSET_OUT_OF_RANGE);
    /* a failing store: retriable KAFKA_STORAGE_ERROR, then retried after a while */
    F.fail = 1;
    ck_assert_int_eq(read_at(100, 1 << 20, true, &hold, &a, &out, &err), -1);
    ck_assert_int_eq(err, KERR_KAFKA_STORAGE_ERROR);
    ck_assert_int_eq(store_read(&P, 100, 1 << 20, true, &hold, &a, &out, &err), -1); /* no retry storm */
    F.fail = 0;
    usleep(1100 * 1000);
    ck_assert_int_eq(read_at(100, 1 << 20, true, &hold, &a, &out, &err), 1);
    expect_batches(&out, 0, 100, last_of(&out));
    kw_free(&hold);
    karena_free(&a);
    sr_stats_t st;
    store_read_stats(&st);
    ck_assert_uint_ge(st.errors, 1);
    teardown_store();
}
END_TEST

START_TEST(corrupt_segment_bytes_are_a_storage_error_not_data) {
    setup_store("64k");
    add_segment(0, 0, 10, 5, 100);
    F.p[0][SEG_HEADER_SIZE + 200] ^= 0x10; /* a record byte of the first batch */
    start_store();
    kw_t hold;
    kw_init(&hold, 0);
    karena_t a;
    karena_init(&a);
    krecords_t out;
    int16_t err;
    ck_assert_int_eq(read_at(0, 1 << 20, true, &hold, &a, &out, &err), -1);
    ck_assert_int_eq(err, KERR_KAFKA_STORAGE_ERROR);
    ck_assert_int_eq(out.len, 0);
    kw_free(&hold);
    karena_free(&a);
    teardown_store();
}
END_TEST

START_TEST(timestamps_resolve_to_the_exact_record_in_store_data) {
    setup_store("4k");
    add_segment(0, 0, 20, 5, 100);
    add_segment(1, 100, 20, 5, 100);
    start_store();
    int64_t off, ts;
    int16_t err;
    struct {
        int64_t ts, off;
    } cases[] = {
        {TS0, 0}, {TS0 - 5000, 0}, {TS0 + 10 * 37, 37}, {TS0 + 10 * 37 + 1, 38}, {TS0 + 10 * 37 - 9, 37},
        {TS0 + 10 * 150, 150}, {TS0 + 10 * 199, 199},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = 0;
        for (int t = 0; t < 20 && (rc = store_offset_for_time(&P, cases[i].ts, false, &off, &ts, &err)) == 0; t++)
            pump();
        ck_assert_int_eq(rc, 1);
        ck_assert_int_eq(off, cases[i].off);
        ck_assert_int_eq(ts, TS0 + 10 * cases[i].off);
    }
    /* past every segment: not in the store (the caller looks in memory) */
    ck_assert_int_eq(store_offset_for_time(&P, TS0 + 10 * 200, false, &off, &ts, &err), 1);
    ck_assert_int_eq(off, -1);
    /* coarse (no loads): the segment's base offset, never past the answer */
    ck_assert_int_eq(store_offset_for_time(&P, TS0 + 10 * 150, true, &off, &ts, &err), 1);
    ck_assert_int_eq(off, 100);
    teardown_store();
}
END_TEST

Suite *store_read_suite(void) {
    Suite *s = suite_create("store_read");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, chunk_is_request_or_minimum_capped_at_max_and_footer);
    tcase_add_test(tc, cut_keeps_only_whole_batches);
    tcase_add_test(tc, cut_of_a_first_batch_longer_than_the_chunk_says_how_long_it_is);
    tcase_add_test(tc, cut_refuses_bad_crc_magic_and_offsets);
    suite_add_tcase(s, tc);
    tc = tcase_create("cache");
    tcase_add_test(tc, lru_evicts_the_least_recently_used_first);
    tcase_add_test(tc, one_pass_never_evicts_its_own_insertions);
    tcase_add_test(tc, evicted_bytes_live_while_a_response_holds_them);
    tcase_add_test(tc, loading_windows_coalesce_and_errors_expire);
    suite_add_tcase(s, tc);
    tc = tcase_create("reads");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, reads_load_then_serve_whole_batches_zero_copy);
    tcase_add_test(tc, kip74_first_batch_goes_whole_others_only_if_they_fit);
    tcase_add_test(tc, a_batch_longer_than_the_chunk_is_loaded_whole);
    tcase_add_test(tc, concurrent_reads_of_one_range_load_it_once);
    tcase_add_test(tc, store_errors_and_out_of_range_are_per_partition_answers);
    tcase_add_test(tc, corrupt_segment_bytes_are_a_storage_error_not_data);
    tcase_add_test(tc, timestamps_resolve_to_the_exact_record_in_store_data);
    suite_add_tcase(s, tc);
    return s;
}
