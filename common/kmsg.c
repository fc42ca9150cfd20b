/* kmsg.c - the generic schema walker behind every Kafka message codec (see kmsg.h). */
#include "kmsg.h"

#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct karena_chunk {
    karena_chunk_t *next;
    size_t cap;
    _Alignas(16) uint8_t data[];
};

#define ARENA_CHUNK (64 * 1024)
#define ARENA_DEFAULT_LIMIT (64u * 1024 * 1024)

void karena_init(karena_t *a) { memset(a, 0, sizeof *a); }

void *karena_alloc(karena_t *a, size_t n) {
    size_t limit = a->limit ? a->limit : ARENA_DEFAULT_LIMIT;
    if (n > limit) return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n > limit || a->total + n > limit) return NULL;
    if (!a->head || a->head->cap - a->used < n) {
        karena_chunk_t *c = NULL;
        /* Reuse a spare chunk if it is large enough. */
        for (karena_chunk_t **pp = &a->spare; *pp; pp = &(*pp)->next) {
            if ((*pp)->cap >= n) { c = *pp; *pp = c->next; break; }
        }
        if (!c) {
            size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
            c = malloc(sizeof *c + cap);
            if (!c) return NULL;
            c->cap = cap;
        }
        c->next = a->head;
        a->head = c;
        a->used = 0;
    }
    void *p = a->head->data + a->used;
    a->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

#define ARENA_KEEP_BYTES (256 * 1024) /* spare memory kept across resets */

void karena_reset(karena_t *a) {
    while (a->head) {
        karena_chunk_t *c = a->head;
        a->head = c->next;
        c->next = a->spare;
        a->spare = c;
    }
    /* Keep a little for the next request; give back what a large one took. */
    size_t kept = 0;
    for (karena_chunk_t **pp = &a->spare; *pp;) {
        if (kept + (*pp)->cap > ARENA_KEEP_BYTES) {
            karena_chunk_t *c = *pp;
            *pp = c->next;
            free(c);
        } else {
            kept += (*pp)->cap;
            pp = &(*pp)->next;
        }
    }
    a->used = 0;
    a->total = 0;
}

karena_mark_t karena_mark(const karena_t *a) { return (karena_mark_t){a->head, a->used, a->total}; }

void karena_rewind(karena_t *a, karena_mark_t m) {
    while (a->head && a->head != m.head) {
        karena_chunk_t *c = a->head;
        a->head = c->next;
        c->next = a->spare;
        a->spare = c;
    }
    a->used = m.head ? m.used : 0;
    a->total = m.total;
}

static void free_chain(karena_chunk_t *c) {
    while (c) { karena_chunk_t *n = c->next; free(c); c = n; }
}

void karena_free(karena_t *a) {
    free_chain(a->head);
    free_chain(a->spare);
    memset(a, 0, sizeof *a);
}

/* ---- helpers ---- */

static inline bool in_version(const kfield_t *f, int v) { return v >= f->vmin && v <= f->vmax; }
static inline bool nullable_at(const kfield_t *f, int v) { return f->nullable && v >= f->nullable_min; }
static inline void *at(void *base, const kfield_t *f) { return (uint8_t *)base + f->offset; }
static inline const void *cat(const void *base, const kfield_t *f) { return (const uint8_t *)base + f->offset; }

static size_t prim_size(ktype_t t) {
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
    default: return 0;
    }
}

/* Smallest wire size of one element, used to bound array counts. */
static size_t min_wire(ktype_t t, bool flexible) {
    switch (t) {
    case KT_BOOL: case KT_INT8: return 1;
    case KT_INT16: case KT_UINT16: return 2;
    case KT_INT32: case KT_UINT32: return 4;
    case KT_INT64: case KT_FLOAT64: return 8;
    case KT_UUID: return 16;
    case KT_STRING: return flexible ? 1 : 2;
    case KT_BYTES: case KT_RECORDS: return flexible ? 1 : 4;
    default: return 1;
    }
}

static void set_default(const kfield_t *f, void *p) {
    switch (f->type) {
    case KT_BOOL: *(bool *)p = f->dflt != 0; break;
    case KT_INT8: *(int8_t *)p = (int8_t)f->dflt; break;
    case KT_INT16: *(int16_t *)p = (int16_t)f->dflt; break;
    case KT_UINT16: *(uint16_t *)p = (uint16_t)f->dflt; break;
    case KT_INT32: *(int32_t *)p = (int32_t)f->dflt; break;
    case KT_UINT32: *(uint32_t *)p = (uint32_t)f->dflt; break;
    case KT_INT64: *(int64_t *)p = f->dflt; break;
    case KT_FLOAT64: *(double *)p = (double)f->dflt; break;
    case KT_UUID: memset(p, 0, sizeof(kuuid_t)); break;
    case KT_STRING: *(kstr_t *)p = f->nullable ? KSTR_NULL : (kstr_t){"", 0}; break;
    case KT_BYTES: *(kbytes_t *)p = f->nullable ? (kbytes_t){NULL, -1} : (kbytes_t){(const uint8_t *)"", 0}; break;
    case KT_RECORDS: *(krecords_t *)p = (krecords_t){NULL, -1, 0, NULL}; break;
    case KT_ARRAY: *(karray_t *)p = (karray_t){NULL, f->nullable ? -1 : 0}; break;
    case KT_STRUCT: kmsg_defaults(f->sub, p); break;
    default: break;
    }
}

void kmsg_defaults(const kschema_t *s, void *out) {
    memset(out, 0, s->size);
    for (const kfield_t *f = s->fields; f->type != KT_END; f++) set_default(f, at(out, f));
}

/* ---- decode ---- */

static int decode_struct(const kschema_t *s, int v, bool flex, kr_t *r, void *out, karena_t *a, int depth);

static void decode_value(const kfield_t *f, ktype_t t, int v, bool flex, kr_t *r, void *p, karena_t *a, int depth) {
    switch (t) {
    case KT_BOOL: *(bool *)p = kr_i8(r) != 0; break;
    case KT_INT8: *(int8_t *)p = kr_i8(r); break;
    case KT_INT16: *(int16_t *)p = kr_i16(r); break;
    case KT_UINT16: *(uint16_t *)p = kr_u16(r); break;
    case KT_INT32: *(int32_t *)p = kr_i32(r); break;
    case KT_UINT32: *(uint32_t *)p = kr_u32(r); break;
    case KT_INT64: *(int64_t *)p = kr_i64(r); break;
    case KT_FLOAT64: *(double *)p = kr_f64(r); break;
    case KT_UUID: {
        const uint8_t *b = kr_take(r, 16);
        if (b) memcpy(p, b, 16);
        break;
    }
    case KT_STRING: {
        kstr_t s = kr_str(r, flex);
        if (!r->err && s.len < 0 && !(f && nullable_at(f, v))) kr_fail(r, KR_EINVAL);
        *(kstr_t *)p = s;
        break;
    }
    case KT_BYTES: {
        kbytes_t b = kr_bytes(r, flex);
        if (!r->err && b.len < 0 && !(f && nullable_at(f, v))) kr_fail(r, KR_EINVAL);
        *(kbytes_t *)p = b;
        break;
    }
    case KT_RECORDS: {
        kbytes_t b = kr_bytes(r, flex);
        *(krecords_t *)p = (krecords_t){b.p, b.len, 0, NULL};
        break;
    }
    case KT_ARRAY: {
        karray_t *arr = p;
        size_t esz = f->sub ? f->sub->size : prim_size(f->elem);
        int32_t max = f->max_count ? f->max_count : 100000;
        int32_t n = kr_arraycnt(r, flex, max, f->sub ? 1 : min_wire(f->elem, flex));
        if (r->err) break;
        if (n < 0) {
            if (!nullable_at(f, v)) { kr_fail(r, KR_EINVAL); break; }
            *arr = (karray_t){NULL, -1};
            break;
        }
        arr->count = n;
        arr->items = n ? karena_alloc(a, esz * (size_t)n) : NULL;
        if (n && !arr->items) { kr_fail(r, KR_ERANGE); arr->count = 0; break; }
        for (int32_t i = 0; i < n && !r->err; i++) {
            void *e = (uint8_t *)arr->items + esz * (size_t)i;
            if (f->sub) decode_struct(f->sub, v, flex, r, e, a, depth + 1);
            else decode_value(NULL, f->elem, v, flex, r, e, a, depth + 1);
        }
        break;
    }
    case KT_STRUCT:
        decode_struct(f->sub, v, flex, r, p, a, depth + 1);
        break;
    default:
        kr_fail(r, KR_EINVAL);
    }
}

static const kfield_t *find_tag(const kschema_t *s, int v, uint64_t tag) {
    for (const kfield_t *f = s->fields; f->type != KT_END; f++)
        if (f->tagged && f->tag == tag && in_version(f, v)) return f;
    return NULL;
}

static int decode_struct(const kschema_t *s, int v, bool flex, kr_t *r, void *out, karena_t *a, int depth) {
    if (depth > 16) { kr_fail(r, KR_ERANGE); return r->err; }
    kmsg_defaults(s, out);
    for (const kfield_t *f = s->fields; f->type != KT_END && !r->err; f++) {
        if (f->tagged || !in_version(f, v)) continue;
        decode_value(f, f->type, v, flex, r, at(out, f), a, depth);
    }
    if (flex && !r->err) {
        uint64_t n = kr_uvarint(r);
        if (n > kr_left(r)) kr_fail(r, KR_ERANGE);
        uint64_t last = 0;
        for (uint64_t i = 0; i < n && !r->err; i++) {
            uint64_t tag = kr_uvarint(r);
            uint64_t sz = kr_uvarint(r);
            if (r->err) break;
            if (i > 0 && tag <= last) { kr_fail(r, KR_EINVAL); break; } /* tags ascend, no repeats */
            last = tag;
            if (sz > kr_left(r)) { kr_fail(r, KR_ETRUNC); break; }
            const kfield_t *f = find_tag(s, v, tag);
            if (!f) { kr_skip(r, (size_t)sz); continue; }
            kr_t sub = kr_init(r->p, (size_t)sz);
            decode_value(f, f->type, v, flex, &sub, at(out, f), a, depth);
            if (sub.err) kr_fail(r, sub.err);
            kr_skip(r, (size_t)sz);
        }
    }
    return r->err;
}

int kmsg_decode(const kschema_t *s, int version, bool flexible, kr_t *r, void *out, karena_t *a) {
    return decode_struct(s, version, flexible, r, out, a, 0);
}

/* ---- encode ---- */

static int encode_struct(const kschema_t *s, int v, bool flex, kw_t *w, const void *in);

static int encode_value(const kfield_t *f, ktype_t t, int v, bool flex, kw_t *w, const void *p) {
    switch (t) {
    case KT_BOOL: kw_i8(w, *(const bool *)p ? 1 : 0); break;
    case KT_INT8: kw_i8(w, *(const int8_t *)p); break;
    case KT_INT16: kw_i16(w, *(const int16_t *)p); break;
    case KT_UINT16: kw_u16(w, *(const uint16_t *)p); break;
    case KT_INT32: kw_i32(w, *(const int32_t *)p); break;
    case KT_UINT32: kw_u32(w, *(const uint32_t *)p); break;
    case KT_INT64: kw_i64(w, *(const int64_t *)p); break;
    case KT_FLOAT64: kw_f64(w, *(const double *)p); break;
    case KT_UUID: kw_raw(w, p, 16); break;
    case KT_STRING: {
        kstr_t s = *(const kstr_t *)p;
        if (s.len < 0 && !(f && nullable_at(f, v))) return -1;
        if (!flex && s.len > INT16_MAX) return -1;
        kw_str(w, flex, s);
        break;
    }
    case KT_BYTES: {
        kbytes_t b = *(const kbytes_t *)p;
        if (b.len < 0 && !(f && nullable_at(f, v))) return -1;
        kw_bytes(w, flex, b);
        break;
    }
    case KT_RECORDS: {
        /* Records go by reference: the length prefix inline, the batches as refs. */
        const krecords_t *rec = p;
        if (rec->len < -1) return -1;
        if (flex) kw_uvarint(w, (uint64_t)((int64_t)rec->len + 1));
        else kw_i32(w, rec->len);
        if (rec->iov) {
            uint64_t sum = 0;
            for (int32_t i = 0; i < rec->niov; i++) {
                kw_ref(w, rec->iov[i].p, rec->iov[i].len, NULL, NULL);
                sum += rec->iov[i].len;
            }
            if (sum != (uint64_t)(rec->len < 0 ? 0 : rec->len)) return -1;
        } else if (rec->len > 0) {
            kw_ref(w, rec->p, (size_t)rec->len, NULL, NULL);
        }
        break;
    }
    case KT_ARRAY: {
        const karray_t *arr = p;
        if (arr->count < 0) {
            if (!nullable_at(f, v)) return -1;
            kw_arraycnt(w, flex, -1);
            break;
        }
        kw_arraycnt(w, flex, arr->count);
        size_t esz = f->sub ? f->sub->size : prim_size(f->elem);
        for (int32_t i = 0; i < arr->count; i++) {
            const void *e = (const uint8_t *)arr->items + esz * (size_t)i;
            int rc = f->sub ? encode_struct(f->sub, v, flex, w, e) : encode_value(NULL, f->elem, v, flex, w, e);
            if (rc) return rc;
        }
        break;
    }
    case KT_STRUCT:
        return encode_struct(f->sub, v, flex, w, p);
    default:
        return -1;
    }
    return 0;
}

/* Whether a tagged field holds its default (then it is left out). */
static bool is_default(const kfield_t *f, ktype_t t, const void *p) {
    switch (t) {
    case KT_BOOL: return *(const bool *)p == (f->dflt != 0);
    case KT_INT8: return *(const int8_t *)p == (int8_t)f->dflt;
    case KT_INT16: return *(const int16_t *)p == (int16_t)f->dflt;
    case KT_UINT16: return *(const uint16_t *)p == (uint16_t)f->dflt;
    case KT_INT32: return *(const int32_t *)p == (int32_t)f->dflt;
    case KT_UINT32: return *(const uint32_t *)p == (uint32_t)f->dflt;
    case KT_INT64: return *(const int64_t *)p == f->dflt;
    case KT_FLOAT64: return *(const double *)p == (double)f->dflt;
    case KT_UUID: { static const kuuid_t z; return memcmp(p, &z, sizeof z) == 0; }
    case KT_STRING: { kstr_t s = *(const kstr_t *)p; return f->nullable ? s.len < 0 : s.len <= 0; }
    case KT_BYTES: { kbytes_t b = *(const kbytes_t *)p; return f->nullable ? b.len < 0 : b.len <= 0; }
    case KT_RECORDS: return ((const krecords_t *)p)->len < 0;
    case KT_ARRAY: { const karray_t *a = p; return f->nullable ? a->count < 0 : a->count <= 0; }
    case KT_STRUCT:
        for (const kfield_t *g = f->sub->fields; g->type != KT_END; g++)
            if (!is_default(g, g->type, cat(p, g))) return false;
        return true;
    default: return true;
    }
}

static int encode_struct(const kschema_t *s, int v, bool flex, kw_t *w, const void *in) {
    for (const kfield_t *f = s->fields; f->type != KT_END; f++) {
        if (f->tagged || !in_version(f, v)) continue;
        int rc = encode_value(f, f->type, v, flex, w, cat(in, f));
        if (rc) return rc;
    }
    if (!flex) return 0;
    /* Tagged fields, ascending by tag, only those not at their default. */
    uint32_t ntags = 0;
    for (const kfield_t *f = s->fields; f->type != KT_END; f++)
        if (f->tagged && in_version(f, v) && !is_default(f, f->type, cat(in, f))) ntags++;
    kw_uvarint(w, ntags);
    if (!ntags) return 0;
    int last = -1;
    for (uint32_t k = 0; k < ntags; k++) {
        const kfield_t *next = NULL;
        for (const kfield_t *f = s->fields; f->type != KT_END; f++)
            if (f->tagged && in_version(f, v) && (int)f->tag > last && !is_default(f, f->type, cat(in, f)) &&
                (!next || f->tag < next->tag))
                next = f;
        if (!next) return -1;
        last = next->tag;
        kw_t tmp;
        kw_init(&tmp, 64);
        int rc = encode_value(next, next->type, v, flex, &tmp, cat(in, next));
        if (rc || tmp.oom || tmp.nrefs) { kw_free(&tmp); return -1; }
        kw_uvarint(w, next->tag);
        kw_uvarint(w, tmp.len);
        kw_raw(w, tmp.buf, tmp.len);
        kw_free(&tmp);
    }
    return 0;
}

int kmsg_encode(const kschema_t *s, int version, bool flexible, kw_t *w, const void *in) {
    int rc = encode_struct(s, version, flexible, w, in);
    return rc ? rc : (w->oom ? -1 : 0);
}

/* ---- error codes in a message ---- */

static bool is_error_field(const kfield_t *f) {
    if (f->type != KT_INT16 || !f->name) return false;
    size_t n = strlen(f->name);
    return n >= 10 && !strcmp(f->name + n - 10, "error_code") && (n == 10 || f->name[n - 11] == '_');
}

void kmsg_each_error(const kschema_t *s, int version, bool flexible, const void *in, kmsg_error_fn *fn, void *arg) {
    for (const kfield_t *f = s->fields; f->type != KT_END; f++) {
        if (!in_version(f, version) || (f->tagged && !flexible)) continue;
        const void *p = cat(in, f);
        if (is_error_field(f)) {
            fn(*(const int16_t *)p, arg);
        } else if (f->type == KT_STRUCT) {
            kmsg_each_error(f->sub, version, flexible, p, fn, arg);
        } else if (f->type == KT_ARRAY && f->sub) {
            const karray_t *a = p;
            for (int32_t i = 0; i < a->count; i++)
                kmsg_each_error(f->sub, version, flexible, (const uint8_t *)a->items + f->sub->size * (size_t)i, fn,
                                arg);
        }
    }
}
