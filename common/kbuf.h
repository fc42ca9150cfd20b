/* kbuf.h - bounded readers and growable writers for the Kafka wire format.
 *
 * kr_t reads big-endian integers, varints, strings and bytes out of a buffer
 * it does not own. Every read is bounded: on the first failure the reader's
 * `err` is set, every later read returns zero values, and the caller checks
 * `err` once at the end (or jumps to its err_parse label). Strings and bytes
 * come back as views (kstr_t/kbytes_t) into the reader's buffer: they live as
 * long as that buffer does.
 *
 * kw_t appends to a growable byte buffer it owns. Large opaque payloads
 * (record batches served by Fetch) can be added by reference instead of being
 * copied: kw_ref() records a pointer, a length and a release callback at the
 * current position; broker/conn.c hands the inline bytes and the references
 * to libevent in order for scatter-gather writes.
 */
#ifndef KAFSCALE_KBUF_H
#define KAFSCALE_KBUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/uio.h>

/* A string view. len == -1 means null. Not NUL-terminated. */
typedef struct kstr {
    const char *p;
    int32_t len;
} kstr_t;

/* A bytes view. len == -1 means null. */
typedef struct kbytes {
    const uint8_t *p;
    int32_t len;
} kbytes_t;

#define KSTR_NULL ((kstr_t){NULL, -1})
#define KSTR_LIT(s) ((kstr_t){(s), (int32_t)(sizeof(s) - 1)})
static inline kstr_t kstr_c(const char *s) {
    return s ? (kstr_t){s, (int32_t)__builtin_strlen(s)} : KSTR_NULL;
}
bool kstr_eq(kstr_t a, kstr_t b);
bool kstr_eq_c(kstr_t a, const char *s);
/* Copies into dst (size dstsz), NUL-terminated, truncating. Returns dst. */
char *kstr_cpy(char *dst, size_t dstsz, kstr_t s);

/* Reader errors. */
enum { KR_OK = 0, KR_ETRUNC = 1, KR_ERANGE = 2, KR_EINVAL = 3 };

typedef struct kr {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last readable byte */
    int err;            /* first error, KR_OK while all reads succeeded */
} kr_t;

static inline kr_t kr_init(const void *p, size_t len) {
    return (kr_t){(const uint8_t *)p, (const uint8_t *)p + len, KR_OK};
}
static inline size_t kr_left(const kr_t *r) { return r->err ? 0 : (size_t)(r->end - r->p); }
static inline void kr_fail(kr_t *r, int e) { if (!r->err) r->err = e; }

int8_t   kr_i8(kr_t *r);
int16_t  kr_i16(kr_t *r);
uint16_t kr_u16(kr_t *r);
int32_t  kr_i32(kr_t *r);
uint32_t kr_u32(kr_t *r);
int64_t  kr_i64(kr_t *r);
double   kr_f64(kr_t *r);
uint64_t kr_uvarint(kr_t *r);  /* unsigned LEB128, at most 10 bytes */
int64_t  kr_varint(kr_t *r);   /* zig-zag signed varint (64-bit) */
int32_t  kr_varint32(kr_t *r); /* zig-zag signed varint that must fit 32 bits */
void     kr_skip(kr_t *r, size_t n);
const uint8_t *kr_take(kr_t *r, size_t n); /* view of n bytes, NULL on error */

/* Strings/bytes: classic (i16/i32 length, -1 null) or compact (uvarint len+1, 0 null). */
kstr_t   kr_str(kr_t *r, bool compact);
kbytes_t kr_bytes(kr_t *r, bool compact);
/* Array count: classic i32 (-1 null) or compact uvarint-1. A count above max,
 * or one that could not fit in the bytes left (each element >= min_elem_size
 * bytes), fails with KR_ERANGE. Returns -1 for a null array. */
int32_t  kr_arraycnt(kr_t *r, bool compact, int32_t max, size_t min_elem_size);
/* Skips a whole tagged-fields section (flexible versions). */
void     kr_skip_tags(kr_t *r);

/* ---- writer ---- */

typedef void (kw_release_fn)(void *arg);

typedef struct kw_ref {
    size_t at;              /* position in buf where the referenced bytes go */
    const uint8_t *p;
    size_t len;
    kw_release_fn *release; /* called once when the writer no longer needs p */
    void *arg;
} kw_ref_t;

typedef struct kw {
    uint8_t *buf;
    size_t len, cap;
    kw_ref_t *refs;
    size_t nrefs, refcap;
    size_t reflen;          /* sum of refs[].len */
    bool oom;
} kw_t;

void kw_init(kw_t *w, size_t cap);
void kw_reset(kw_t *w);     /* releases refs, keeps buffers for reuse */
void kw_free(kw_t *w);
/* Total size of what was written (inline bytes plus referenced bytes). */
static inline size_t kw_size(const kw_t *w) { return w->len + w->reflen; }

void kw_raw(kw_t *w, const void *p, size_t n);
void kw_i8(kw_t *w, int8_t v);
void kw_i16(kw_t *w, int16_t v);
void kw_u16(kw_t *w, uint16_t v);
void kw_i32(kw_t *w, int32_t v);
void kw_u32(kw_t *w, uint32_t v);
void kw_i64(kw_t *w, int64_t v);
void kw_f64(kw_t *w, double v);
void kw_uvarint(kw_t *w, uint64_t v);
void kw_varint(kw_t *w, int64_t v);
void kw_str(kw_t *w, bool compact, kstr_t s);
void kw_bytes(kw_t *w, bool compact, kbytes_t b);
void kw_arraycnt(kw_t *w, bool compact, int32_t n); /* -1 for null */
void kw_empty_tags(kw_t *w);
/* Reserves n bytes to fill in later with kw_put_i32_at(); returns position. */
size_t kw_reserve(kw_t *w, size_t n);
void kw_put_i32_at(kw_t *w, size_t at, int32_t v);
/* Adds bytes by reference: p must stay valid until release(arg) is called
 * (by kw_reset/kw_free, or by whoever took the pieces over). A ref of length 0
 * with a release is a "hold": it keeps something alive as long as the
 * response's bytes are in use. */
void kw_ref(kw_t *w, const void *p, size_t len, kw_release_fn *release, void *arg);

/* Byte-order helpers for code that patches buffers in place. */
static inline uint32_t kbe32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t kbe16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint64_t kbe64(const uint8_t *p) { return (uint64_t)kbe32(p) << 32 | kbe32(p + 4); }
static inline void kput32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void kput16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void kput64(uint8_t *p, uint64_t v) { kput32(p, (uint32_t)(v >> 32)); kput32(p + 4, (uint32_t)v); }

#endif
