/* kbuf.c - bounded reads and growable writes of Kafka wire primitives (see kbuf.h). */
#include "kbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool kstr_eq(kstr_t a, kstr_t b) {
    if (a.len != b.len) return false;
    return a.len <= 0 || memcmp(a.p, b.p, (size_t)a.len) == 0;
}

bool kstr_eq_c(kstr_t a, const char *s) {
    if (!s) return a.len < 0;
    return kstr_eq(a, kstr_c(s));
}

char *kstr_cpy(char *dst, size_t dstsz, kstr_t s) {
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    if (dstsz == 0) return dst;
    if (n >= dstsz) n = dstsz - 1;
    if (n) memcpy(dst, s.p, n);
    dst[n] = '\0';
    return dst;
}

/* ---- reader ---- */

static inline const uint8_t *need(kr_t *r, size_t n) {
    if (r->err) return NULL;
    if ((size_t)(r->end - r->p) < n) {
        r->err = KR_ETRUNC;
        r->p = r->end;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

int8_t kr_i8(kr_t *r) { const uint8_t *p = need(r, 1); return p ? (int8_t)p[0] : 0; }
int16_t kr_i16(kr_t *r) { const uint8_t *p = need(r, 2); return p ? (int16_t)kbe16(p) : 0; }
uint16_t kr_u16(kr_t *r) { const uint8_t *p = need(r, 2); return p ? kbe16(p) : 0; }
int32_t kr_i32(kr_t *r) { const uint8_t *p = need(r, 4); return p ? (int32_t)kbe32(p) : 0; }
uint32_t kr_u32(kr_t *r) { const uint8_t *p = need(r, 4); return p ? kbe32(p) : 0; }
int64_t kr_i64(kr_t *r) { const uint8_t *p = need(r, 8); return p ? (int64_t)kbe64(p) : 0; }

double kr_f64(kr_t *r) {
    uint64_t u = (uint64_t)kr_i64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

uint64_t kr_uvarint(kr_t *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const uint8_t *p = need(r, 1);
        if (!p) return 0;
        if (shift == 63 && (*p & 0x7e)) break; /* would overflow 64 bits */
        v |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80)) return v;
    }
    kr_fail(r, KR_EINVAL);
    return 0;
}

int64_t kr_varint(kr_t *r) {
    uint64_t u = kr_uvarint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

int32_t kr_varint32(kr_t *r) {
    int64_t v = kr_varint(r);
    if (v < INT32_MIN || v > INT32_MAX) { kr_fail(r, KR_ERANGE); return 0; }
    return (int32_t)v;
}

void kr_skip(kr_t *r, size_t n) { (void)need(r, n); }
const uint8_t *kr_take(kr_t *r, size_t n) { return need(r, n); }

/* Reads a length prefix: classic (i16 or i32, -1 = null) or compact (uvarint
 * len+1, 0 = null). Returns -1 for null, -2 on error. */
static int64_t read_len(kr_t *r, bool compact, bool wide) {
    int64_t n;
    if (compact) {
        uint64_t u = kr_uvarint(r);
        if (r->err) return -2;
        if (u > INT32_MAX) { kr_fail(r, KR_ERANGE); return -2; }
        n = (int64_t)u - 1;
    } else {
        n = wide ? kr_i32(r) : kr_i16(r);
        if (r->err) return -2;
    }
    if (n < -1) { kr_fail(r, KR_EINVAL); return -2; }
    return n;
}

kstr_t kr_str(kr_t *r, bool compact) {
    int64_t n = read_len(r, compact, false);
    if (n < 0) return KSTR_NULL;
    const uint8_t *p = need(r, (size_t)n);
    if (!p) return KSTR_NULL;
    return (kstr_t){(const char *)p, (int32_t)n};
}

kbytes_t kr_bytes(kr_t *r, bool compact) {
    int64_t n = read_len(r, compact, true);
    if (n < 0) return (kbytes_t){NULL, -1};
    const uint8_t *p = need(r, (size_t)n);
    if (!p) return (kbytes_t){NULL, -1};
    return (kbytes_t){p, (int32_t)n};
}

int32_t kr_arraycnt(kr_t *r, bool compact, int32_t max, size_t min_elem_size) {
    int64_t n = read_len(r, compact, true);
    if (n == -2) return -1;
    if (n == -1) return -1;
    if (n > max || (min_elem_size && (uint64_t)n > kr_left(r) / min_elem_size)) {
        kr_fail(r, KR_ERANGE);
        return -1;
    }
    return (int32_t)n;
}

void kr_skip_tags(kr_t *r) {
    uint64_t n = kr_uvarint(r);
    if (n > kr_left(r)) { kr_fail(r, KR_ERANGE); return; }
    for (uint64_t i = 0; i < n && !r->err; i++) {
        (void)kr_uvarint(r); /* tag */
        uint64_t sz = kr_uvarint(r);
        if (sz > kr_left(r)) { kr_fail(r, KR_ETRUNC); return; }
        kr_skip(r, (size_t)sz);
    }
}

/* ---- writer ---- */

void kw_init(kw_t *w, size_t cap) {
    memset(w, 0, sizeof *w);
    if (cap) {
        w->buf = malloc(cap);
        if (w->buf) w->cap = cap; else w->oom = true;
    }
}

static void release_refs(kw_t *w) {
    for (size_t i = 0; i < w->nrefs; i++)
        if (w->refs[i].release) w->refs[i].release(w->refs[i].arg);
    w->nrefs = 0;
    w->reflen = 0;
}

void kw_reset(kw_t *w) {
    release_refs(w);
    w->len = 0;
    w->oom = false;
}

void kw_free(kw_t *w) {
    release_refs(w);
    free(w->buf);
    free(w->refs);
    memset(w, 0, sizeof *w);
}

static uint8_t *grow(kw_t *w, size_t n) {
    if (w->oom) return NULL;
    if (n > SIZE_MAX / 2 - w->len) { w->oom = true; return NULL; }
    if (w->cap - w->len < n) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < n) cap *= 2;
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) { w->oom = true; return NULL; }
        w->buf = nb;
        w->cap = cap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

void kw_raw(kw_t *w, const void *p, size_t n) {
    uint8_t *d = grow(w, n);
    if (d && n) memcpy(d, p, n);
}
void kw_i8(kw_t *w, int8_t v) { uint8_t *d = grow(w, 1); if (d) d[0] = (uint8_t)v; }
void kw_i16(kw_t *w, int16_t v) { uint8_t *d = grow(w, 2); if (d) kput16(d, (uint16_t)v); }
void kw_u16(kw_t *w, uint16_t v) { uint8_t *d = grow(w, 2); if (d) kput16(d, v); }
void kw_i32(kw_t *w, int32_t v) { uint8_t *d = grow(w, 4); if (d) kput32(d, (uint32_t)v); }
void kw_u32(kw_t *w, uint32_t v) { uint8_t *d = grow(w, 4); if (d) kput32(d, v); }
void kw_i64(kw_t *w, int64_t v) { uint8_t *d = grow(w, 8); if (d) kput64(d, (uint64_t)v); }
void kw_f64(kw_t *w, double v) { uint64_t u; memcpy(&u, &v, sizeof u); kw_i64(w, (int64_t)u); }

void kw_uvarint(kw_t *w, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) { tmp[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    tmp[n++] = (uint8_t)v;
    kw_raw(w, tmp, n);
}

void kw_varint(kw_t *w, int64_t v) { kw_uvarint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63)); }

void kw_str(kw_t *w, bool compact, kstr_t s) {
    if (compact) kw_uvarint(w, (uint64_t)((int64_t)s.len + 1));
    else kw_i16(w, (int16_t)s.len);
    if (s.len > 0) kw_raw(w, s.p, (size_t)s.len);
}

void kw_bytes(kw_t *w, bool compact, kbytes_t b) {
    if (compact) kw_uvarint(w, (uint64_t)((int64_t)b.len + 1));
    else kw_i32(w, b.len);
    if (b.len > 0) kw_raw(w, b.p, (size_t)b.len);
}

void kw_arraycnt(kw_t *w, bool compact, int32_t n) {
    if (compact) kw_uvarint(w, (uint64_t)((int64_t)n + 1));
    else kw_i32(w, n);
}

void kw_empty_tags(kw_t *w) { kw_i8(w, 0); }

size_t kw_reserve(kw_t *w, size_t n) {
    size_t at = w->len;
    uint8_t *d = grow(w, n);
    if (d) memset(d, 0, n);
    return at;
}

void kw_put_i32_at(kw_t *w, size_t at, int32_t v) {
    if (w->oom) return;
    if (at > w->len || w->len - at < 4) abort(); /* a position not from kw_reserve: a bug */
    kput32(w->buf + at, (uint32_t)v);
}

void kw_ref(kw_t *w, const void *p, size_t len, kw_release_fn *release, void *arg) {
    if (w->nrefs == w->refcap) {
        size_t cap = w->refcap ? w->refcap * 2 : 16;
        kw_ref_t *nr = realloc(w->refs, cap * sizeof *nr);
        if (!nr) {
            w->oom = true;
            if (release) release(arg);
            return;
        }
        w->refs = nr;
        w->refcap = cap;
    }
    w->refs[w->nrefs++] = (kw_ref_t){w->len, p, len, release, arg};
    w->reflen += len;
}
