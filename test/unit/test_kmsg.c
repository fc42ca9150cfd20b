/* test_kmsg.c - unit tests of the schema-driven Kafka codec (common/kmsg.c) and
 * of every message schema the broker serves.
 *
 * The core is one generic test over broker/dispatch.c's api_table: for every
 * API, every version min..max, request and response schema, it fills the
 * struct with deterministic pseudo-random values (arrays of 0-3 elements,
 * strings and bytes pointing into static test data, null only where the
 * schema allows it at that version, tagged fields sometimes left at their
 * default), encodes, decodes, re-encodes and requires byte-identical output
 * with every byte consumed. Every prefix of a valid encoding must then fail to
 * decode, and random or mutated bytes must never crash the decoder. A new
 * schema is therefore covered the moment it is added to api_table.
 *
 * Failures name the API, version, direction and seed; re-run one API with
 * CK_RUN_CASE=roundtrip and read the message.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "kmsg.h"
#include "msg_create_topics.h"
#include "msg_fetch.h"
#include "msg_metadata.h"

/* ---- deterministic pseudo-random values (splitmix64) ---- */

typedef struct { uint64_t s; } rng_t;

static uint64_t rnd(rng_t *g) {
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint32_t rndn(rng_t *g, uint32_t n) { return (uint32_t)(rnd(g) % n); }

/* Integers: a quarter of the time an edge value, else random bits. */
static uint64_t rnd_int(rng_t *g, int bits) {
    static const int64_t edges[] = {0, 1, -1, 2, 127, -128};
    uint32_t pick = rndn(g, 16);
    if (pick < 3) return (uint64_t)edges[rndn(g, sizeof edges / sizeof edges[0])];
    if (pick == 3) return bits == 64 ? (uint64_t)INT64_MAX : ((uint64_t)1 << (bits - 1)) - 1; /* max */
    return rnd(g);
}

/* Static data that strings, bytes and records point into. */
static const char text[] = "kafscale.topic_name-0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ \xc3\xa6\xc3\xb8 \xe2\x82\xac";
static uint8_t blob[600];

static void blob_init(void) {
    for (size_t i = 0; i < sizeof blob; i++) blob[i] = (uint8_t)(i * 37 + 11);
}

/* ---- schema helpers (mirroring the rules in kmsg.c) ---- */

static bool in_version(const kfield_t *f, int v) { return v >= f->vmin && v <= f->vmax; }
static bool nullable_at(const kfield_t *f, int v) { return f->nullable && v >= f->nullable_min; }
static void *at(void *base, const kfield_t *f) { return (uint8_t *)base + f->offset; }

/* Size of a value of type t in the C struct (0 for an unknown type). */
static size_t type_size(ktype_t t) {
    switch (t) {
    case KT_BOOL: return sizeof(bool);
    case KT_INT8: return 1;
    case KT_INT16: case KT_UINT16: return 2;
    case KT_INT32: case KT_UINT32: return 4;
    case KT_INT64: return 8;
    case KT_FLOAT64: return sizeof(double);
    case KT_UUID: return sizeof(kuuid_t);
    case KT_STRING: return sizeof(kstr_t);
    case KT_BYTES: return sizeof(kbytes_t);
    case KT_RECORDS: return sizeof(krecords_t);
    case KT_ARRAY: return sizeof(karray_t);
    default: return 0;
    }
}
static size_t field_size(const kfield_t *f) {
    return f->type == KT_STRUCT ? (f->sub ? f->sub->size : 0) : type_size(f->type);
}

/* ---- filling a struct with pseudo-random values ---- */

static void fill_struct(const kschema_t *s, int v, rng_t *g, karena_t *a, void *out, int depth);

static void fill_value(const kfield_t *f, ktype_t t, int v, rng_t *g, karena_t *a, void *p, int depth) {
    bool may_null = f && nullable_at(f, v);
    switch (t) {
    case KT_BOOL: *(bool *)p = rnd(g) & 1; break;
    case KT_INT8: *(int8_t *)p = (int8_t)rnd_int(g, 8); break;
    case KT_INT16: *(int16_t *)p = (int16_t)rnd_int(g, 16); break;
    case KT_UINT16: *(uint16_t *)p = (uint16_t)rnd_int(g, 16); break;
    case KT_INT32: *(int32_t *)p = (int32_t)rnd_int(g, 32); break;
    case KT_UINT32: *(uint32_t *)p = (uint32_t)rnd_int(g, 32); break;
    case KT_INT64: *(int64_t *)p = (int64_t)rnd_int(g, 64); break;
    case KT_FLOAT64: {
        static const double specials[] = {0.0, -0.0, 1.0, -1.5, 1e308, 5e-324};
        double d = rndn(g, 3) == 0 ? specials[rndn(g, 6)] : (double)(int64_t)rnd(g) / 1024.0;
        *(double *)p = d;
        break;
    }
    case KT_UUID:
        for (int i = 0; i < 16; i++) ((kuuid_t *)p)->b[i] = (uint8_t)rnd(g);
        break;
    case KT_STRING:
        if (may_null && rndn(g, 5) == 0) {
            *(kstr_t *)p = KSTR_NULL;
        } else {
            uint32_t len = rndn(g, 4) == 0 ? 0 : rndn(g, sizeof text - 1);
            uint32_t off = rndn(g, (uint32_t)(sizeof text - len));
            *(kstr_t *)p = (kstr_t){text + off, (int32_t)len};
        }
        break;
    case KT_BYTES: case KT_RECORDS: {
        if ((may_null || t == KT_RECORDS) && rndn(g, 5) == 0) {
            if (t == KT_BYTES) *(kbytes_t *)p = (kbytes_t){NULL, -1};
            else *(krecords_t *)p = (krecords_t){NULL, -1, 0, NULL};
            break;
        }
        /* sometimes longer than 127 bytes: two-byte compact lengths */
        uint32_t len = rndn(g, 4) == 0 ? 0 : rndn(g, rndn(g, 2) ? 40 : (uint32_t)sizeof blob);
        uint32_t off = rndn(g, (uint32_t)(sizeof blob - len + 1));
        if (t == KT_BYTES) {
            *(kbytes_t *)p = (kbytes_t){blob + off, (int32_t)len};
        } else if (rndn(g, 2)) {
            *(krecords_t *)p = (krecords_t){blob + off, (int32_t)len, 0, NULL};
        } else {
            /* the same bytes as 1-3 pieces (as a Fetch answer spanning log chunks) */
            int32_t niov = 1 + (int32_t)rndn(g, 3);
            kiov_t *iov = karena_alloc(a, sizeof *iov * (size_t)niov);
            ck_assert_ptr_nonnull(iov);
            uint32_t done = 0;
            for (int32_t i = 0; i < niov; i++) {
                uint32_t piece = i == niov - 1 ? len - done : rndn(g, len - done + 1);
                iov[i] = (kiov_t){blob + off + done, piece};
                done += piece;
            }
            *(krecords_t *)p = (krecords_t){NULL, (int32_t)len, niov, iov};
        }
        break;
    }
    case KT_ARRAY: {
        karray_t *arr = p;
        if (may_null && rndn(g, 5) == 0) { *arr = (karray_t){NULL, -1}; break; }
        int32_t n = depth > 8 ? 0 : (int32_t)rndn(g, 4);
        if (f->max_count && n > f->max_count) n = f->max_count;
        size_t esz = f->sub ? f->sub->size : type_size(f->elem);
        arr->items = karena_alloc(a, esz * (size_t)(n ? n : 1));
        ck_assert_ptr_nonnull(arr->items);
        arr->count = n;
        for (int32_t i = 0; i < n; i++) {
            void *e = (uint8_t *)arr->items + esz * (size_t)i;
            if (f->sub) fill_struct(f->sub, v, g, a, e, depth + 1);
            else fill_value(NULL, f->elem, v, g, a, e, depth + 1);
        }
        break;
    }
    case KT_STRUCT:
        fill_struct(f->sub, v, g, a, p, depth + 1);
        break;
    default:
        ck_abort_msg("field %s: unknown type %d", f ? f->name : "?", (int)t);
    }
}

static void fill_struct(const kschema_t *s, int v, rng_t *g, karena_t *a, void *out, int depth) {
    kmsg_defaults(s, out);
    for (const kfield_t *f = s->fields; f->type != KT_END; f++) {
        if (!in_version(f, v)) continue;
        if (f->tagged && rndn(g, 3) == 0) continue; /* tagged: sometimes left at its default */
        fill_value(f, f->type, v, g, a, at(out, f), depth);
    }
}

/* ---- encoding helpers ---- */

/* The bytes a writer holds, inline pieces and refs in order, in one heap
 * buffer of exactly the right size (caller frees). */
static uint8_t *flatten(const kw_t *w, size_t *np) {
    size_t n = kw_size(w), pos = 0, from = 0;
    uint8_t *out = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < w->nrefs; i++) {
        const kw_ref_t *ref = &w->refs[i];
        ck_assert_uint_ge(ref->at, from);
        ck_assert_uint_le(ref->at, w->len);
        if (ref->at > from) memcpy(out + pos, w->buf + from, ref->at - from);
        pos += ref->at - from;
        from = ref->at;
        if (ref->len) memcpy(out + pos, ref->p, ref->len);
        pos += ref->len;
    }
    if (w->len > from) memcpy(out + pos, w->buf + from, w->len - from);
    pos += w->len - from;
    ck_assert_uint_eq(pos, n);
    *np = n;
    return out;
}

/* Encodes `in`; returns the flattened bytes (caller frees), NULL if the encoder refused. */
static uint8_t *encode(const kschema_t *s, int v, bool flex, const void *in, size_t *np) {
    kw_t w;
    kw_init(&w, 0);
    int rc = kmsg_encode(s, v, flex, &w, in);
    uint8_t *out = rc ? NULL : flatten(&w, np);
    kw_free(&w);
    return out;
}

/* Decodes an exact heap copy of p[0..n) (so ASan sees any overread). Returns
 * the KR_* result; *left gets the bytes not consumed. The decoded views point
 * into the copy: with `keep` the caller gets it (and frees it), else it is
 * freed at once and `out` must not be looked at. */
static int decode_exact(const kschema_t *s, int v, bool flex, const uint8_t *p, size_t n, void *out, karena_t *a,
                        size_t *left, uint8_t **keep) {
    uint8_t *copy = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(copy);
    if (n) memcpy(copy, p, n);
    kr_t r = kr_init(copy, n);
    int rc = kmsg_decode(s, v, flex, &r, out, a);
    if (left) *left = kr_left(&r);
    ck_assert_int_eq(rc, r.err);
    if (keep) *keep = copy;
    else free(copy);
    return rc;
}

static const char *dir_name(bool resp) { return resp ? "response" : "request"; }
static const kschema_t *schema_of(const api_def_t *api, bool resp) { return resp ? api->resp_schema : api->req_schema; }
static bool is_flexible(const api_def_t *api, int v) { return v >= api->first_flexible; }

/* One round trip of one seed. With `truncations`, also every prefix. Uses
 * the arena (reset by the caller). */
static void roundtrip(const api_def_t *api, bool resp, int v, uint64_t seed, bool truncations, karena_t *a) {
    const kschema_t *s = schema_of(api, resp);
    bool flex = is_flexible(api, v);
    rng_t g = {seed * 7919 + (uint64_t)api->key * 131 + (uint64_t)v};
    void *in = karena_alloc(a, s->size);
    ck_assert_ptr_nonnull(in);
    fill_struct(s, v, &g, a, in, 0);

    size_t n1, n2;
    uint8_t *b1 = encode(s, v, flex, in, &n1);
    ck_assert_msg(b1, "%s v%d %s seed %llu: encoding a valid struct failed", api->name, v, dir_name(resp),
                  (unsigned long long)seed);

    /* Decode from b1 itself (not a copy): the decoded views point into it and
     * must outlive the second encoding. */
    void *out = karena_alloc(a, s->size);
    ck_assert_ptr_nonnull(out);
    kr_t r = kr_init(b1, n1);
    int rc = kmsg_decode(s, v, flex, &r, out, a);
    ck_assert_msg(rc == 0, "%s v%d %s seed %llu: decoding our own %zu-byte encoding failed (err %d at byte %td)",
                  api->name, v, dir_name(resp), (unsigned long long)seed, n1, rc, r.p - b1);
    ck_assert_msg(kr_left(&r) == 0, "%s v%d %s seed %llu: %zu of %zu bytes not consumed", api->name, v,
                  dir_name(resp), (unsigned long long)seed, kr_left(&r), n1);

    uint8_t *b2 = encode(s, v, flex, out, &n2);
    ck_assert_msg(b2, "%s v%d %s seed %llu: re-encoding the decoded struct failed", api->name, v, dir_name(resp),
                  (unsigned long long)seed);
    size_t diff = 0;
    while (diff < n1 && diff < n2 && b1[diff] == b2[diff]) diff++;
    ck_assert_msg(n1 == n2 && diff == n1, "%s v%d %s seed %llu: re-encoding differs (%zu vs %zu bytes, first at %zu)",
                  api->name, v, dir_name(resp), (unsigned long long)seed, n1, n2, diff);

    if (truncations) {
        for (size_t len = 0; len < n1; len++) {
            void *t = karena_alloc(a, s->size);
            ck_assert_ptr_nonnull(t);
            rc = decode_exact(s, v, flex, b1, len, t, a, NULL, NULL);
            ck_assert_msg(rc != 0, "%s v%d %s seed %llu: a %zu-byte prefix of %zu bytes decoded", api->name, v,
                          dir_name(resp), (unsigned long long)seed, len, n1);
            karena_reset(a); /* t and its arrays; in/out are not used past this point */
        }
    }
    free(b1);
    free(b2);
}

/* ---- the generic round trip over api_table ---- */

#define ROUNDTRIP_SEEDS 40
#define TRUNCATION_SEEDS 3

START_TEST(roundtrip_every_version_of_every_api) {
    const api_def_t *api = &api_table[_i];
    blob_init();
    karena_t a;
    karena_init(&a);
    for (int v = api->min_version; v <= api->max_version; v++)
        for (int resp = 0; resp <= 1; resp++)
            for (uint64_t seed = 0; seed < ROUNDTRIP_SEEDS; seed++) {
                karena_reset(&a);
                roundtrip(api, resp, v, seed, seed < TRUNCATION_SEEDS, &a);
            }
    karena_free(&a);
}
END_TEST

/* Encodes a struct whose top-level tagged fields are all at their defaults,
 * so that the encoding ends with the top-level tag count 0. */
static uint8_t *encode_without_top_tags(const api_def_t *api, bool resp, int v, uint64_t seed, karena_t *a,
                                        size_t *np) {
    const kschema_t *s = schema_of(api, resp);
    rng_t g = {seed};
    void *in = karena_alloc(a, s->size), *dflt = karena_alloc(a, s->size);
    fill_struct(s, v, &g, a, in, 0);
    kmsg_defaults(s, dflt);
    for (const kfield_t *f = s->fields; f->type != KT_END; f++)
        if (f->tagged) memcpy(at(in, f), at(dflt, f), field_size(f));
    uint8_t *b = encode(s, v, true, in, np);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_ge(*np, 1);
    ck_assert_int_eq(b[*np - 1], 0);
    return b;
}

/* A tag number no field of s uses. */
static unsigned unknown_tag(const kschema_t *s) {
    unsigned t = 0;
    for (const kfield_t *f = s->fields; f->type != KT_END; f++)
        if (f->tagged && f->tag >= t) t = f->tag + 1u;
    return t + 1000;
}

/* b[0..n-1) followed by `tail`, in an exact heap buffer. */
static uint8_t *replace_last_byte(const uint8_t *b, size_t n, const uint8_t *tail, size_t tn, size_t *outn) {
    uint8_t *o = malloc(n - 1 + tn);
    memcpy(o, b, n - 1);
    memcpy(o + n - 1, tail, tn);
    *outn = n - 1 + tn;
    return o;
}

START_TEST(unknown_tags_are_skipped_in_every_flexible_version) {
    const api_def_t *api = &api_table[_i];
    blob_init();
    karena_t a;
    karena_init(&a);
    for (int v = api->first_flexible; v <= api->max_version; v++)
        for (int resp = 0; resp <= 1; resp++) {
            karena_reset(&a);
            const kschema_t *s = schema_of(api, resp);
            size_t n, mn, n2, left;
            uint8_t *b = encode_without_top_tags(api, resp, v, 99, &a, &n);
            unsigned tag = unknown_tag(s);
            uint8_t tail[] = {2, (uint8_t)(0x80 | (tag & 0x7f)), (uint8_t)(tag >> 7), 3, 0xde, 0xad, 0xbe,
                              (uint8_t)(0x80 | ((tag + 1) & 0x7f)), (uint8_t)((tag + 1) >> 7), 0};
            uint8_t *m = replace_last_byte(b, n, tail, sizeof tail, &mn);
            void *out = karena_alloc(&a, s->size);
            kr_t r = kr_init(m, mn);
            int rc = kmsg_decode(s, v, true, &r, out, &a);
            ck_assert_msg(rc == 0, "%s v%d %s: unknown tags not skipped (err %d)", api->name, v, dir_name(resp), rc);
            left = kr_left(&r);
            ck_assert_uint_eq(left, 0);
            uint8_t *b2 = encode(s, v, true, out, &n2);
            ck_assert_ptr_nonnull(b2);
            ck_assert_msg(n2 == n && memcmp(b, b2, n) == 0, "%s v%d %s: unknown tags changed the decoding",
                          api->name, v, dir_name(resp));
            free(b2);
            free(m);
            free(b);
        }
    karena_free(&a);
}
END_TEST

START_TEST(tags_out_of_order_or_repeated_are_refused_in_every_flexible_version) {
    const api_def_t *api = &api_table[_i];
    blob_init();
    karena_t a;
    karena_init(&a);
    for (int v = api->first_flexible; v <= api->max_version; v++)
        for (int resp = 0; resp <= 1; resp++) {
            karena_reset(&a);
            const kschema_t *s = schema_of(api, resp);
            size_t n, mn;
            uint8_t *b = encode_without_top_tags(api, resp, v, 7, &a, &n);
            unsigned tag = unknown_tag(s);
            uint8_t t_hi = (uint8_t)(0x80 | ((tag + 1) & 0x7f)), t_lo = (uint8_t)(0x80 | (tag & 0x7f));
            uint8_t hi2 = (uint8_t)((tag + 1) >> 7), lo2 = (uint8_t)(tag >> 7);
            const uint8_t descending[] = {2, t_hi, hi2, 0, t_lo, lo2, 0};
            const uint8_t repeated[] = {2, t_lo, lo2, 0, t_lo, lo2, 0};
            const uint8_t *tails[] = {descending, repeated};
            for (int k = 0; k < 2; k++) {
                uint8_t *m = replace_last_byte(b, n, tails[k], 7, &mn);
                void *out = karena_alloc(&a, s->size);
                int rc = decode_exact(s, v, true, m, mn, out, &a, NULL, NULL);
                ck_assert_msg(rc == KR_EINVAL, "%s v%d %s: %s tags accepted (rc %d)", api->name, v, dir_name(resp),
                              k ? "repeated" : "descending", rc);
                free(m);
            }
            /* A tag whose size runs past the end. */
            const uint8_t past[] = {1, t_lo, lo2, 5, 0};
            uint8_t *m = replace_last_byte(b, n, past, sizeof past, &mn);
            void *out = karena_alloc(&a, s->size);
            ck_assert_int_ne(decode_exact(s, v, true, m, mn, out, &a, NULL, NULL), 0);
            free(m);
            free(b);
        }
    karena_free(&a);
}
END_TEST

/* ---- random and mutated input never crashes the decoder ---- */

START_TEST(garbage_and_mutations_never_crash_and_decoded_input_reencodes_stably) {
    const api_def_t *api = &api_table[_i];
    blob_init();
    karena_t a;
    karena_init(&a);
    rng_t g = {0x5eed0000u + (uint64_t)api->key};
    for (int v = api->min_version; v <= api->max_version; v++)
        for (int resp = 0; resp <= 1; resp++) {
            const kschema_t *s = schema_of(api, resp);
            bool flex = is_flexible(api, v);
            for (int iter = 0; iter < 300; iter++) {
                karena_reset(&a);
                size_t n;
                uint8_t *b;
                if (iter < 60) {
                    /* random bytes, biased to small values so counts and lengths are plausible */
                    n = rndn(&g, 200);
                    b = malloc(n ? n : 1);
                    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(rndn(&g, 3) ? rndn(&g, 4) : rnd(&g));
                } else {
                    /* a valid encoding with a few bytes changed, inserted or cut */
                    void *in = karena_alloc(&a, s->size);
                    rng_t fg = {rnd(&g)};
                    fill_struct(s, v, &fg, &a, in, 0);
                    b = encode(s, v, flex, in, &n);
                    ck_assert_ptr_nonnull(b);
                    int muts = 1 + (int)rndn(&g, 3);
                    for (int m = 0; m < muts && n; m++) {
                        size_t pos = rndn(&g, (uint32_t)n);
                        switch (rndn(&g, 4)) {
                        case 0: b[pos] ^= (uint8_t)(1u << rndn(&g, 8)); break;
                        case 1: b[pos] = (uint8_t)rnd(&g); break;
                        case 2: b[pos] = (uint8_t)(rndn(&g, 2) ? 0xff : 0x00); break;
                        case 3: n = pos; break; /* cut */
                        }
                    }
                }
                void *out = karena_alloc(&a, s->size);
                size_t left;
                uint8_t *copy;
                int rc = decode_exact(s, v, flex, b, n, out, &a, &left, &copy);
                if (rc == 0) {
                    /* Whatever decoded must encode, and that encoding must be a fixed point. */
                    size_t n1, n2;
                    uint8_t *e1 = encode(s, v, flex, out, &n1);
                    ck_assert_msg(e1, "%s v%d %s iter %d: decoded input does not re-encode", api->name, v,
                                  dir_name(resp), iter);
                    void *out2 = karena_alloc(&a, s->size);
                    kr_t r = kr_init(e1, n1);
                    ck_assert_int_eq(kmsg_decode(s, v, flex, &r, out2, &a), 0);
                    ck_assert_uint_eq(kr_left(&r), 0);
                    uint8_t *e2 = encode(s, v, flex, out2, &n2);
                    ck_assert_ptr_nonnull(e2);
                    ck_assert_msg(n1 == n2 && memcmp(e1, e2, n1) == 0, "%s v%d %s iter %d: re-encoding not stable",
                                  api->name, v, dir_name(resp), iter);
                    free(e1);
                    free(e2);
                }
                free(copy);
                free(b);
            }
        }
    karena_free(&a);
}
END_TEST

/* ---- schema and table sanity ---- */

static void check_schema(const api_def_t *api, const kschema_t *s, int depth) {
    ck_assert_msg(depth < 10, "%s: schema nesting too deep at %s", api->name, s->name);
    ck_assert_ptr_nonnull(s->fields);
    ck_assert_uint_gt(s->size, 0);
    for (const kfield_t *f = s->fields; f->type != KT_END; f++) {
        const char *fn = f->name ? f->name : "?";
        ck_assert_msg(f->name, "%s.%s: field without a name", api->name, s->name);
        ck_assert_msg(f->type > KT_END && f->type <= KT_STRUCT, "%s %s.%s: bad type %d", api->name, s->name, fn,
                      (int)f->type);
        ck_assert_msg(f->vmin <= f->vmax, "%s %s.%s: versions %d..%d", api->name, s->name, fn, f->vmin, f->vmax);
        ck_assert_msg(f->max_count >= 0, "%s %s.%s: negative max_count", api->name, s->name, fn);
        if (f->type == KT_ARRAY) {
            ck_assert_msg(f->sub || (f->elem > KT_END && f->elem < KT_ARRAY), "%s %s.%s: array without element type",
                          api->name, s->name, fn);
        }
        if (f->type == KT_STRUCT) ck_assert_msg(f->sub, "%s %s.%s: struct without schema", api->name, s->name, fn);
        size_t sz = field_size(f);
        ck_assert_msg(sz && f->offset + sz <= s->size, "%s %s.%s: field (offset %u, %zu bytes) outside the %zu-byte struct",
                      api->name, s->name, fn, f->offset, sz, s->size);
        /* Fields must not overlap: a wrong KT_ type for a member usually shows here. */
        for (const kfield_t *g = s->fields; g < f; g++) {
            size_t gsz = field_size(g);
            ck_assert_msg(f->offset >= g->offset + gsz || g->offset >= f->offset + sz,
                          "%s %s: fields %s and %s overlap in the C struct (wrong type?)", api->name, s->name, g->name,
                          fn);
        }
        if (f->tagged) {
            ck_assert_msg(f->vmin >= api->first_flexible,
                          "%s %s.%s: tagged field in version %d, before the first flexible version %d", api->name,
                          s->name, fn, f->vmin, api->first_flexible);
            for (const kfield_t *g = s->fields; g < f; g++)
                ck_assert_msg(!(g->tagged && g->tag == f->tag && g->vmin <= f->vmax && f->vmin <= g->vmax),
                              "%s %s: fields %s and %s share tag %u", api->name, s->name, g->name, fn, f->tag);
        }
        if ((f->type == KT_ARRAY || f->type == KT_STRUCT) && f->sub) check_schema(api, f->sub, depth + 1);
    }
}

START_TEST(api_table_and_schemas_are_consistent) {
    ck_assert_int_gt(api_table_len, 0);
    for (int i = 0; i < api_table_len; i++) {
        const api_def_t *api = &api_table[i];
        ck_assert_msg(api->name && api->req_schema && api->resp_schema, "api_table[%d] incomplete", i);
        ck_assert_msg(api->key >= 0 && api->key < KAPI__MAX, "%s: key %d", api->name, api->key);
        ck_assert_msg(api->min_version >= 0 && api->min_version <= api->max_version, "%s: versions %d..%d", api->name,
                      api->min_version, api->max_version);
        ck_assert_msg(api->first_flexible >= 0, "%s: first flexible version %d", api->name, api->first_flexible);
        ck_assert_ptr_eq(api_lookup(api->key), api);
        for (int j = 0; j < i; j++) ck_assert_msg(api_table[j].key != api->key, "%s: key listed twice", api->name);
        check_schema(api, api->req_schema, 0);
        check_schema(api, api->resp_schema, 0);
    }
    ck_assert_ptr_null(api_lookup(-1));
    ck_assert_ptr_null(api_lookup(KAPI__MAX));
    ck_assert_ptr_null(api_lookup(INT16_MAX));
}
END_TEST

/* ---- targeted tests on a small local schema ---- */

typedef struct {
    int32_t a;
    karray_t small;     /* int32, at most 3 */
    karray_t names;     /* strings, at most 2 */
    int64_t t_num;      /* tag 1, default -1 */
    kstr_t t_str;       /* tag 4, nullable */
} tt_t;

KSCHEMA_LOCAL(tt_schema, tt_t,
    KF(tt_t, a, KT_INT32, 0, KV_MAX),
    KFAP(tt_t, small, KT_INT32, 0, KV_MAX, .max_count = 3),
    KFAP(tt_t, names, KT_STRING, 0, KV_MAX, .max_count = 2),
    KF(tt_t, t_num, KT_INT64, 1, KV_MAX, .tagged = 1, .tag = 1, .dflt = -1),
    KF(tt_t, t_str, KT_STRING, 1, KV_MAX, .tagged = 1, .tag = 4, .nullable = 1));

/* Decodes b in place (the tests' buffers are static and outlive the views). */
static int tt_decode_v(int v, bool flex, const uint8_t *b, size_t n, tt_t *out, karena_t *a, size_t *left) {
    kr_t r = kr_init(b, n);
    int rc = kmsg_decode(&tt_schema, v, flex, &r, out, a);
    if (left) *left = kr_left(&r);
    /* and the same on an exact heap copy, for ASan */
    tt_t tmp;
    ck_assert_int_eq(decode_exact(&tt_schema, v, flex, b, n, &tmp, a, NULL, NULL), rc);
    return rc;
}
static int tt_decode(const uint8_t *b, size_t n, tt_t *out, karena_t *a, size_t *left) {
    return tt_decode_v(1, true, b, n, out, a, left);
}

START_TEST(known_tags_are_decoded_and_unknown_ones_skipped) {
    static const uint8_t b[] = {
        0, 0, 0, 5,                      /* a = 5 */
        1,                               /* small: empty (compact) */
        1,                               /* names: empty */
        3,                               /* three tags */
        1, 8, 0, 0, 0, 0, 0, 0, 0, 77,   /* tag 1: t_num = 77 */
        2, 3, 'x', 'y', 'z',             /* tag 2: unknown, skipped */
        4, 3, 3, 'h', 'i',               /* tag 4: t_str = "hi" */
    };
    karena_t a;
    karena_init(&a);
    tt_t out;
    size_t left;
    ck_assert_int_eq(tt_decode(b, sizeof b, &out, &a, &left), 0);
    ck_assert_uint_eq(left, 0);
    ck_assert_int_eq(out.a, 5);
    ck_assert_int_eq(out.t_num, 77);
    ck_assert(kstr_eq_c(out.t_str, "hi"));

    /* Absent tags take their defaults. */
    static const uint8_t none[] = {0, 0, 0, 5, 1, 1, 0};
    ck_assert_int_eq(tt_decode(none, sizeof none, &out, &a, &left), 0);
    ck_assert_int_eq(out.t_num, -1);
    ck_assert_int_eq(out.t_str.len, -1);

    /* Re-encoding writes the known tags only, in ascending order. */
    out.t_num = 77;
    out.t_str = KSTR_LIT("hi");
    size_t n;
    uint8_t *e = encode(&tt_schema, 1, true, &out, &n);
    static const uint8_t want[] = {0, 0, 0, 5, 1, 1, 2, 1, 8, 0, 0, 0, 0, 0, 0, 0, 77, 4, 3, 3, 'h', 'i'};
    ck_assert_uint_eq(n, sizeof want);
    ck_assert(memcmp(e, want, n) == 0);
    free(e);

    /* In a version without the tagged fields, the same tag numbers are unknown. */
    ck_assert_int_eq(tt_decode_v(0, true, b, sizeof b, &out, &a, &left), 0);
    ck_assert_int_eq(out.t_num, -1);
    ck_assert_int_eq(out.t_str.len, -1);
    karena_free(&a);
}
END_TEST

START_TEST(bad_tag_sections_are_refused) {
    karena_t a;
    karena_init(&a);
    tt_t out;
    static const uint8_t desc[] = {0, 0, 0, 5, 1, 1, 2, 4, 1, 1, 1, 8, 0, 0, 0, 0, 0, 0, 0, 77};
    ck_assert_int_eq(tt_decode(desc, sizeof desc, &out, &a, NULL), KR_EINVAL);
    static const uint8_t dup[] = {0, 0, 0, 5, 1, 1, 2, 2, 0, 2, 0};
    ck_assert_int_eq(tt_decode(dup, sizeof dup, &out, &a, NULL), KR_EINVAL);
    /* A known tag whose content is malformed (the int64 needs 8 bytes, the tag holds 2). */
    static const uint8_t shortval[] = {0, 0, 0, 5, 1, 1, 1, 1, 2, 0, 0};
    ck_assert_int_ne(tt_decode(shortval, sizeof shortval, &out, &a, NULL), 0);
    /* More tags announced than bytes left. */
    static const uint8_t many[] = {0, 0, 0, 5, 1, 1, 9, 0, 0};
    ck_assert_int_ne(tt_decode(many, sizeof many, &out, &a, NULL), 0);
    /* A tag size past the end. */
    static const uint8_t past[] = {0, 0, 0, 5, 1, 1, 1, 9, 4, 'a'};
    ck_assert_int_ne(tt_decode(past, sizeof past, &out, &a, NULL), 0);
    karena_free(&a);
}
END_TEST

START_TEST(known_tag_whose_size_runs_past_the_end_is_refused_without_overread) {
    /* tag 4 (t_str) claims 20 bytes, its string claims 19, 3 bytes follow:
     * the field must not be decoded from bytes past the end of the buffer. */
    static const uint8_t b[] = {0, 0, 0, 5, 1, 1, 1, 4, 20, 20, 'a', 'b'};
    /* tag 1 (t_num, an int64) claims its 8 bytes, 3 follow: under ASan,
     * reading the int64 from them would be reported. */
    static const uint8_t c[] = {0, 0, 0, 5, 1, 1, 1, 1, 8, 0, 0, 0};
    karena_t a;
    karena_init(&a);
    tt_t out;
    ck_assert_int_ne(tt_decode(b, sizeof b, &out, &a, NULL), 0);
    ck_assert_int_ne(tt_decode(c, sizeof c, &out, &a, NULL), 0);
    karena_free(&a);
}
END_TEST

/* One field of every type, each nullable from version 2 on. */
typedef struct {
    kstr_t s;
    kbytes_t b;
    karray_t arr;   /* int32 */
    karray_t sarr;  /* of tt_t-like nothing: of kstr_t */
} nl_t;
KSCHEMA_LOCAL(nl_schema, nl_t,
    KF(nl_t, s, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 2),
    KF(nl_t, b, KT_BYTES, 0, KV_MAX, .nullable = 1, .nullable_min = 2),
    KFAP(nl_t, arr, KT_INT32, 0, KV_MAX, .nullable = 1, .nullable_min = 2),
    KFAP(nl_t, sarr, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 2));

START_TEST(null_is_accepted_only_from_nullable_min_on) {
    /* Field k null, the others empty; classic and compact encodings. */
    static const uint8_t classic_null[4][4] = {{0xff, 0xff}, {0xff, 0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xff},
                                               {0xff, 0xff, 0xff, 0xff}};
    static const size_t classic_null_len[4] = {2, 4, 4, 4};
    static const uint8_t classic_empty[4][4] = {{0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}};
    karena_t a;
    karena_init(&a);
    for (int flex = 0; flex <= 1; flex++)
        for (int k = 0; k < 4; k++)
            for (int v = 1; v <= 2; v++) {
                uint8_t buf[32];
                size_t n = 0;
                for (int f = 0; f < 4; f++) {
                    if (flex) {
                        buf[n++] = f == k ? 0 : 1;
                    } else {
                        const uint8_t *src = f == k ? classic_null[f] : classic_empty[f];
                        memcpy(buf + n, src, classic_null_len[f]);
                        n += classic_null_len[f];
                    }
                }
                if (flex) buf[n++] = 0; /* tags */
                nl_t out;
                size_t left;
                int rc = decode_exact(&nl_schema, v, flex, buf, n, &out, &a, &left, NULL);
                if (v < 2) {
                    ck_assert_msg(rc == KR_EINVAL, "flex %d field %d v%d: null accepted (rc %d)", flex, k, v, rc);
                } else {
                    ck_assert_msg(rc == 0 && left == 0, "flex %d field %d v%d: null refused (rc %d)", flex, k, v, rc);
                }
                /* and the encoder agrees */
                nl_t in;
                kmsg_defaults(&nl_schema, &in);
                in.s = KSTR_LIT("");
                in.b = (kbytes_t){(const uint8_t *)"", 0};
                in.arr = (karray_t){NULL, 0};
                in.sarr = (karray_t){NULL, 0};
                if (k == 0) in.s = KSTR_NULL;
                if (k == 1) in.b = (kbytes_t){NULL, -1};
                if (k == 2) in.arr = (karray_t){NULL, -1};
                if (k == 3) in.sarr = (karray_t){NULL, -1};
                size_t en;
                uint8_t *e = encode(&nl_schema, v, flex, &in, &en);
                if (v < 2) {
                    ck_assert_ptr_null(e);
                } else {
                    ck_assert_ptr_nonnull(e);
                    ck_assert_uint_eq(en, n);
                    ck_assert(memcmp(e, buf, n) == 0);
                }
                free(e);
            }
    karena_free(&a);
}
END_TEST

/* Tagged fields of every type, with non-zero defaults where the type has one. */
typedef struct { int32_t x; kstr_t y; } tg_sub_t;
KSCHEMA_LOCAL(tg_sub_schema, tg_sub_t,
    KF(tg_sub_t, x, KT_INT32, 0, KV_MAX, .dflt = 7),
    KF(tg_sub_t, y, KT_STRING, 0, KV_MAX));
typedef struct {
    int32_t plain;
    bool t_bool;
    int8_t t_i8;
    int16_t t_i16;
    uint16_t t_u16;
    int32_t t_i32;
    uint32_t t_u32;
    int64_t t_i64;
    double t_f64;
    kuuid_t t_uuid;
    kstr_t t_str;
    kstr_t t_nstr;
    kbytes_t t_bytes;
    karray_t t_arr;
    tg_sub_t t_sub;
} tg_t;
KSCHEMA_LOCAL(tg_schema, tg_t,
    KF(tg_t, plain, KT_INT32, 0, KV_MAX),
    KF(tg_t, t_bool, KT_BOOL, 0, KV_MAX, .tagged = 1, .tag = 0, .dflt = 1),
    KF(tg_t, t_i8, KT_INT8, 0, KV_MAX, .tagged = 1, .tag = 1, .dflt = -1),
    KF(tg_t, t_i16, KT_INT16, 0, KV_MAX, .tagged = 1, .tag = 2, .dflt = -1),
    KF(tg_t, t_u16, KT_UINT16, 0, KV_MAX, .tagged = 1, .tag = 3, .dflt = 9),
    KF(tg_t, t_i32, KT_INT32, 0, KV_MAX, .tagged = 1, .tag = 4, .dflt = -1),
    KF(tg_t, t_u32, KT_UINT32, 0, KV_MAX, .tagged = 1, .tag = 5, .dflt = 9),
    KF(tg_t, t_i64, KT_INT64, 0, KV_MAX, .tagged = 1, .tag = 6, .dflt = -1),
    KF(tg_t, t_f64, KT_FLOAT64, 0, KV_MAX, .tagged = 1, .tag = 7, .dflt = 2),
    KF(tg_t, t_uuid, KT_UUID, 0, KV_MAX, .tagged = 1, .tag = 8),
    KF(tg_t, t_str, KT_STRING, 0, KV_MAX, .tagged = 1, .tag = 9),
    KF(tg_t, t_nstr, KT_STRING, 0, KV_MAX, .tagged = 1, .tag = 10, .nullable = 1),
    KF(tg_t, t_bytes, KT_BYTES, 0, KV_MAX, .tagged = 1, .tag = 11),
    KFAP(tg_t, t_arr, KT_INT64, 0, KV_MAX, .tagged = 1, .tag = 12),
    KFS(tg_t, t_sub, 0, KV_MAX, &tg_sub_schema, .tagged = 1, .tag = 200));
#define TG_NTAGGED 14

START_TEST(tagged_fields_are_written_only_when_not_at_their_default) {
    tg_t in;
    kmsg_defaults(&tg_schema, &in);
    ck_assert(in.t_bool);
    ck_assert_int_eq(in.t_i32, -1);
    ck_assert_int_eq(in.t_u16, 9);
    ck_assert(in.t_f64 == 2.0);
    ck_assert_int_eq(in.t_sub.x, 7);
    ck_assert_int_eq(in.t_nstr.len, -1);
    size_t n;
    uint8_t *e = encode(&tg_schema, 0, true, &in, &n);
    ck_assert_uint_eq(n, 5); /* plain + an empty tag section */
    ck_assert_int_eq(e[4], 0);
    free(e);

    /* Each field moved off its default (to zero/empty-but-present) is written alone. */
    static const int64_t three[] = {1, 2, 3};
    for (int k = 0; k < TG_NTAGGED; k++) {
        kmsg_defaults(&tg_schema, &in);
        switch (k) {
        case 0: in.t_bool = false; break;
        case 1: in.t_i8 = 0; break;
        case 2: in.t_i16 = 0; break;
        case 3: in.t_u16 = 0; break;
        case 4: in.t_i32 = 0; break;
        case 5: in.t_u32 = 0; break;
        case 6: in.t_i64 = 0; break;
        case 7: in.t_f64 = 0; break;
        case 8: in.t_uuid.b[15] = 1; break;
        case 9: in.t_str = KSTR_LIT("s"); break;
        case 10: in.t_nstr = KSTR_LIT(""); break;
        case 11: in.t_bytes = (kbytes_t){(const uint8_t *)"b", 1}; break;
        case 12: in.t_arr = (karray_t){(void *)three, 3}; break;
        case 13: in.t_sub.x = 0; break;
        }
        e = encode(&tg_schema, 0, true, &in, &n);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(e[4] == 1, "field %d: %d tags written", k, e[4]);
        karena_t a;
        karena_init(&a);
        tg_t out;
        size_t left;
        uint8_t *keep;
        ck_assert_int_eq(decode_exact(&tg_schema, 0, true, e, n, &out, &a, &left, &keep), 0);
        ck_assert_uint_eq(left, 0);
        size_t n2;
        uint8_t *e2 = encode(&tg_schema, 0, true, &out, &n2);
        ck_assert_msg(n2 == n && memcmp(e, e2, n) == 0, "field %d does not round-trip", k);
        free(e2);
        free(keep);
        free(e);
        karena_free(&a);
    }
}
END_TEST

START_TEST(tagged_fields_of_every_type_round_trip_with_random_values) {
    const api_def_t fake = {0, 0, 1, 0, "TaggedTest", NULL, &tg_schema, &tt_schema};
    blob_init();
    karena_t a;
    karena_init(&a);
    for (int v = 0; v <= 1; v++)
        for (int resp = 0; resp <= 1; resp++)
            for (uint64_t seed = 0; seed < 200; seed++) {
                karena_reset(&a);
                roundtrip(&fake, resp, v, seed, seed < 5, &a);
            }
    karena_free(&a);
}
END_TEST

START_TEST(array_counts_above_max_count_are_refused) {
    karena_t a;
    karena_init(&a);
    tt_t out;
    size_t left;
    /* flexible: 3 elements is the maximum, 4 is refused although the bytes are there */
    static const uint8_t three[] = {0, 0, 0, 1, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 0};
    ck_assert_int_eq(tt_decode(three, sizeof three, &out, &a, &left), 0);
    ck_assert_int_eq(out.small.count, 3);
    ck_assert_int_eq(((int32_t *)out.small.items)[2], 3);
    static const uint8_t four[] = {0, 0, 0, 1, 5, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 1, 0};
    ck_assert_int_eq(tt_decode(four, sizeof four, &out, &a, &left), KR_ERANGE);
    /* classic encoding, and on a string array */
    static const uint8_t four_classic[] = {0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
                                           0, 0, 0, 4, 0, 0, 0, 0};
    ck_assert_int_eq(tt_decode_v(0, false, four_classic, sizeof four_classic, &out, &a, NULL), KR_ERANGE);
    static const uint8_t names3[] = {0, 0, 0, 1, 1, 4, 1, 1, 1, 0};
    ck_assert_int_eq(tt_decode(names3, sizeof names3, &out, &a, NULL), KR_ERANGE);
    /* A huge count is refused before anything is allocated. */
    static const uint8_t huge[] = {0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x07, 0};
    ck_assert_int_eq(tt_decode(huge, sizeof huge, &out, &a, NULL), KR_ERANGE);
    /* null where not nullable */
    static const uint8_t null_arr[] = {0, 0, 0, 1, 0, 1, 0};
    ck_assert_int_eq(tt_decode(null_arr, sizeof null_arr, &out, &a, NULL), KR_EINVAL);
    static const uint8_t null_elem[] = {0, 0, 0, 1, 1, 2, 0, 0};
    ck_assert_int_eq(tt_decode(null_elem, sizeof null_elem, &out, &a, NULL), KR_EINVAL);
    karena_free(&a);
}
END_TEST

START_TEST(encoder_refuses_values_the_version_cannot_carry) {
    tt_t in;
    kmsg_defaults(&tt_schema, &in);
    kw_t w;
    kw_init(&w, 0);
    in.small = (karray_t){NULL, -1}; /* not nullable */
    ck_assert_int_ne(kmsg_encode(&tt_schema, 1, true, &w, &in), 0);
    kmsg_defaults(&tt_schema, &in);
    kstr_t nul = KSTR_NULL;
    in.names = (karray_t){&nul, 1}; /* null string element */
    kw_reset(&w);
    ck_assert_int_ne(kmsg_encode(&tt_schema, 1, true, &w, &in), 0);
    static char big[40000];
    kstr_t longs = {big, (int32_t)sizeof big};
    in.names = (karray_t){&longs, 1};
    kw_reset(&w);
    ck_assert_int_ne(kmsg_encode(&tt_schema, 0, false, &w, &in), 0); /* longer than int16 */
    kw_reset(&w);
    ck_assert_int_eq(kmsg_encode(&tt_schema, 1, true, &w, &in), 0);   /* compact: fine */
    kw_free(&w);
}
END_TEST

START_TEST(defaults_follow_the_schema) {
    tt_t d;
    memset(&d, 0xa5, sizeof d);
    kmsg_defaults(&tt_schema, &d);
    ck_assert_int_eq(d.a, 0);
    ck_assert_int_eq(d.small.count, 0);
    ck_assert_int_eq(d.t_num, -1);
    ck_assert_int_eq(d.t_str.len, -1);
}
END_TEST

/* ---- arena ---- */

START_TEST(arena_reset_reuses_memory) {
    karena_t a;
    karena_init(&a);
    void *p[8];
    static const size_t sizes[] = {1, 100, 4000, 70000, 16, 30000, 30000, 5};
    for (int i = 0; i < 8; i++) {
        p[i] = karena_alloc(&a, sizes[i]);
        ck_assert_ptr_nonnull(p[i]);
        ck_assert_uint_eq((uintptr_t)p[i] % 16, 0);
        memset(p[i], 0x5a, sizes[i]);
    }
    for (int round = 0; round < 3; round++) {
        karena_reset(&a);
        for (int i = 0; i < 8; i++) {
            void *q = karena_alloc(&a, sizes[i]);
            ck_assert_msg(q == p[i], "round %d alloc %d: not reused", round, i);
            for (size_t k = 0; k < sizes[i]; k++) ck_assert_int_eq(((uint8_t *)q)[k], 0); /* zeroed again */
            memset(q, 0x5a, sizes[i]);
        }
    }
    karena_free(&a);
    ck_assert_ptr_null(a.head);
    ck_assert_ptr_null(a.spare);
}
END_TEST

START_TEST(arena_limit_is_enforced_per_reset) {
    karena_t a;
    karena_init(&a);
    a.limit = 4096;
    ck_assert_ptr_null(karena_alloc(&a, 4097));
    ck_assert_ptr_nonnull(karena_alloc(&a, 4000));
    ck_assert_ptr_null(karena_alloc(&a, 200));
    ck_assert_ptr_nonnull(karena_alloc(&a, 96));
    karena_reset(&a);
    ck_assert_ptr_nonnull(karena_alloc(&a, 4000));
    ck_assert_ptr_null(karena_alloc(&a, SIZE_MAX / 2));
    karena_free(&a);
}
END_TEST

START_TEST(arena_decoding_many_messages_does_not_grow) {
    /* Decode the same request 1000 times with a reset in between: the arena
     * must come back to the same chunk every time. */
    blob_init();
    const api_def_t *api = &api_table[0];
    const kschema_t *s = api->req_schema;
    int v = api->max_version;
    bool flex = is_flexible(api, v);
    karena_t a;
    karena_init(&a);
    rng_t g = {42};
    void *in = karena_alloc(&a, s->size);
    fill_struct(s, v, &g, &a, in, 0);
    size_t n;
    uint8_t *b = encode(s, v, flex, in, &n);
    ck_assert_ptr_nonnull(b);
    karena_reset(&a);
    void *first = NULL;
    for (int i = 0; i < 1000; i++) {
        karena_reset(&a);
        void *out = karena_alloc(&a, s->size);
        if (!first) first = out;
        ck_assert_ptr_eq(out, first);
        kr_t r = kr_init(b, n);
        ck_assert_int_eq(kmsg_decode(s, v, flex, &r, out, &a), 0);
    }
    free(b);
    karena_free(&a);
}
END_TEST

START_TEST(arena_rewind_gives_back_only_what_came_after_the_mark) {
    karena_t a;
    karena_init(&a);
    /* mark on an empty arena, then rewind: as good as a reset */
    karena_mark_t m0 = karena_mark(&a);
    void *x = karena_alloc(&a, 100);
    karena_rewind(&a, m0);
    ck_assert_ptr_eq(karena_alloc(&a, 100), x);
    karena_reset(&a);

    uint8_t *keep = karena_alloc(&a, 1000);
    memset(keep, 0x77, 1000);
    karena_mark_t m = karena_mark(&a);
    for (int round = 0; round < 3; round++) {
        /* within the same chunk, then across chunks, then a large one */
        void *b1 = karena_alloc(&a, 500);
        void *b2 = karena_alloc(&a, 60000);
        void *b3 = karena_alloc(&a, 100000);
        ck_assert(b1 && b2 && b3);
        memset(b1, 1, 500);
        memset(b2, 2, 60000);
        memset(b3, 3, 100000);
        karena_rewind(&a, m);
        ck_assert_uint_eq(a.total, m.total);
        void *c1 = karena_alloc(&a, 500);
        ck_assert_ptr_eq(c1, b1); /* the space after the mark is handed out again */
        ck_assert_int_eq(((uint8_t *)c1)[0], 0);
        karena_rewind(&a, m);
        for (int i = 0; i < 1000; i++) ck_assert_int_eq(keep[i], 0x77); /* before the mark: untouched */
    }
    karena_free(&a);
}
END_TEST

START_TEST(records_given_as_pieces_encode_as_their_concatenation) {
    /* A one-field schema of records (nullable, as KT_RECORDS always is). */
    typedef struct { krecords_t r; } rec_t;
    static const kfield_t fields[] = {KF(rec_t, r, KT_RECORDS, 0, KV_MAX, .nullable = 1), KF_END};
    static const kschema_t sch = {"rec_t", sizeof(rec_t), fields};
    static const uint8_t data[] = "0123456789";
    kiov_t iov[3] = {{data, 4}, {data + 4, 0}, {data + 4, 6}};
    rec_t in = {{NULL, 10, 3, iov}};
    for (int flex = 0; flex <= 1; flex++) {
        size_t n;
        uint8_t *b = encode(&sch, 0, flex, &in, &n);
        ck_assert_ptr_nonnull(b);
        size_t hdr = flex ? 1 : 4;
        ck_assert_uint_eq(n, hdr + 10 + (size_t)flex);
        ck_assert(memcmp(b + hdr, data, 10) == 0);
        rec_t out;
        karena_t a;
        karena_init(&a);
        kr_t r = kr_init(b, n);
        ck_assert_int_eq(kmsg_decode(&sch, 0, flex, &r, &out, &a), 0);
        ck_assert_int_eq(out.r.len, 10);
        ck_assert(memcmp(out.r.p, data, 10) == 0);
        karena_free(&a);
        free(b);
    }
    /* pieces that do not add up to len are refused */
    in.r.len = 9;
    size_t n;
    ck_assert_ptr_null(encode(&sch, 0, false, &in, &n));
    /* null records */
    in.r = (krecords_t){NULL, -1, 0, NULL};
    uint8_t *b = encode(&sch, 0, false, &in, &n);
    ck_assert_uint_eq(n, 4);
    ck_assert(memcmp(b, "\xff\xff\xff\xff", 4) == 0);
    free(b);
}
END_TEST

/* ---- error codes in a response (kmsg_each_error: the broker's error counting) ---- */

typedef struct seen_errors {
    int16_t codes[16];
    int n;
} seen_errors_t;

static void seen_cb(int16_t code, void *arg) {
    seen_errors_t *e = arg;
    ck_assert_int_lt(e->n, 16);
    e->codes[e->n++] = code;
}

START_TEST(each_error_visits_every_error_code_the_version_carries) {
    /* Metadata: per topic and per partition, at any depth. */
    metadata_resp_partition_t parts[2] = {{.error_code = 0, .partition_index = 0},
                                          {.error_code = KERR_LEADER_NOT_AVAILABLE, .partition_index = 1}};
    metadata_resp_topic_t topics[2] = {{.error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION, .name = KSTR_LIT("gone")},
                                       {.error_code = 0, .name = KSTR_LIT("t"), .partitions = {parts, 2}}};
    metadata_resp_t md;
    kmsg_defaults(&metadata_resp_schema, &md);
    md.topics = (karray_t){topics, 2};
    seen_errors_t e = {.n = 0};
    kmsg_each_error(&metadata_resp_schema, 9, true, &md, seen_cb, &e);
    ck_assert_int_eq(e.n, 4); /* zero codes too: the caller counts what is not NONE */
    ck_assert_int_eq(e.codes[0], KERR_UNKNOWN_TOPIC_OR_PARTITION);
    ck_assert_int_eq(e.codes[1], 0);
    ck_assert_int_eq(e.codes[2], 0);
    ck_assert_int_eq(e.codes[3], KERR_LEADER_NOT_AVAILABLE);

    /* Fetch: the top-level error_code exists from v7 only. */
    fetch_resp_part_t fp = {.partition_index = 0, .error_code = KERR_OFFSET_OUT_OF_RANGE};
    fetch_resp_topic_t ft = {.topic = KSTR_LIT("t"), .partitions = {&fp, 1}};
    fetch_resp_t fr;
    kmsg_defaults(&fetch_resp_schema, &fr);
    fr.error_code = KERR_FETCH_SESSION_ID_NOT_FOUND;
    fr.responses = (karray_t){&ft, 1};
    e.n = 0;
    kmsg_each_error(&fetch_resp_schema, 6, false, &fr, seen_cb, &e);
    ck_assert_int_eq(e.n, 1);
    ck_assert_int_eq(e.codes[0], KERR_OFFSET_OUT_OF_RANGE);
    e.n = 0;
    kmsg_each_error(&fetch_resp_schema, 7, false, &fr, seen_cb, &e);
    ck_assert_int_eq(e.n, 2);
    ck_assert_int_eq(e.codes[0], KERR_FETCH_SESSION_ID_NOT_FOUND);

    /* CreateTopics: topic_config_error_code is a tagged field (flexible
     * versions only); replication_factor, an INT16 too, is no error code. */
    create_topics_resp_topic_t ct;
    memset(&ct, 0, sizeof ct);
    ct.name = KSTR_LIT("t");
    ct.error_code = KERR_TOPIC_ALREADY_EXISTS;
    ct.topic_config_error_code = KERR_INVALID_CONFIG;
    ct.replication_factor = 1;
    create_topics_resp_t cr = {.topics = {&ct, 1}};
    e.n = 0;
    kmsg_each_error(&create_topics_resp_schema, 5, true, &cr, seen_cb, &e);
    ck_assert_int_eq(e.n, 2);
    ck_assert_int_eq(e.codes[0], KERR_TOPIC_ALREADY_EXISTS);
    ck_assert_int_eq(e.codes[1], KERR_INVALID_CONFIG);
    e.n = 0;
    kmsg_each_error(&create_topics_resp_schema, 4, false, &cr, seen_cb, &e);
    ck_assert_int_eq(e.n, 1);
    ck_assert_int_eq(e.codes[0], KERR_TOPIC_ALREADY_EXISTS);
}
END_TEST

Suite *kmsg_suite(void) {
    Suite *s = suite_create("kmsg");
    TCase *tc = tcase_create("schemas");
    tcase_add_test(tc, api_table_and_schemas_are_consistent);
    suite_add_tcase(s, tc);

    tc = tcase_create("roundtrip");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, roundtrip_every_version_of_every_api, 0, api_table_len);
    tcase_add_loop_test(tc, unknown_tags_are_skipped_in_every_flexible_version, 0, api_table_len);
    tcase_add_loop_test(tc, tags_out_of_order_or_repeated_are_refused_in_every_flexible_version, 0, api_table_len);
    suite_add_tcase(s, tc);

    tc = tcase_create("garbage");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, garbage_and_mutations_never_crash_and_decoded_input_reencodes_stably, 0, api_table_len);
    suite_add_tcase(s, tc);

    tc = tcase_create("codec");
    tcase_add_test(tc, known_tags_are_decoded_and_unknown_ones_skipped);
    tcase_add_test(tc, bad_tag_sections_are_refused);
    tcase_add_test(tc, known_tag_whose_size_runs_past_the_end_is_refused_without_overread);
    tcase_add_test(tc, null_is_accepted_only_from_nullable_min_on);
    tcase_add_test(tc, tagged_fields_are_written_only_when_not_at_their_default);
    tcase_add_test(tc, tagged_fields_of_every_type_round_trip_with_random_values);
    tcase_add_test(tc, array_counts_above_max_count_are_refused);
    tcase_add_test(tc, encoder_refuses_values_the_version_cannot_carry);
    tcase_add_test(tc, defaults_follow_the_schema);
    tcase_add_test(tc, each_error_visits_every_error_code_the_version_carries);
    tcase_add_test(tc, records_given_as_pieces_encode_as_their_concatenation);
    suite_add_tcase(s, tc);

    tc = tcase_create("arena");
    tcase_add_test(tc, arena_reset_reuses_memory);
    tcase_add_test(tc, arena_limit_is_enforced_per_reset);
    tcase_add_test(tc, arena_decoding_many_messages_does_not_grow);
    tcase_add_test(tc, arena_rewind_gives_back_only_what_came_after_the_mark);
    suite_add_tcase(s, tc);
    return s;
}
