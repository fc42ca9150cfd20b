/* kmsg.h - schema-driven encoder/decoder for Kafka request and response bodies.
 *
 * Each Kafka message is described once, as a table of fields (kfield_t) that
 * mirrors Apache Kafka's own message schemas: type, the versions a field is
 * present in, the versions it may be null in, whether it is a tagged field, and
 * where it lives in a C struct (offsetof). One generic walker decodes a body of
 * any version into the struct and encodes the struct back. That keeps every
 * version of every API behind the same bounded, fuzzed code, and lets the unit
 * tests round-trip every version of every schema without per-API test code.
 *
 * Memory: strings, bytes and records decode as views into the request buffer.
 * Arrays are allocated from a karena_t that the caller resets per request
 * (bump allocation, chunks reused: no malloc per message in steady state).
 *
 * Flexible versions (KIP-482): the caller passes `flexible`; strings, bytes and
 * arrays then use compact encodings and every struct ends with tagged fields.
 * Tagged fields the schema knows are decoded; unknown ones are skipped.
 */
#ifndef KAFSCALE_KMSG_H
#define KAFSCALE_KMSG_H

#include <stddef.h>
#include "kbuf.h"

/* ---- arena ---- */
typedef struct karena_chunk karena_chunk_t;
typedef struct karena {
    karena_chunk_t *head;  /* chunks in use, newest first */
    karena_chunk_t *spare; /* chunks kept for reuse after a reset */
    size_t used;           /* bytes used in head */
    size_t total;          /* bytes handed out since the last reset */
    size_t limit;          /* refuse allocations beyond this (0 = 64 MiB) */
} karena_t;

void  karena_init(karena_t *a);
void *karena_alloc(karena_t *a, size_t n); /* zeroed, 16-aligned; NULL over limit */
void  karena_reset(karena_t *a);
/* A position to go back to: everything allocated after karena_mark() is
 * given back by karena_rewind() (earlier allocations stay valid). */
typedef struct karena_mark { karena_chunk_t *head; size_t used, total; } karena_mark_t;
karena_mark_t karena_mark(const karena_t *a);
void  karena_rewind(karena_t *a, karena_mark_t m);
void  karena_free(karena_t *a);

/* ---- schema ---- */
typedef enum ktype {
    KT_END = 0,
    KT_BOOL,     /* bool */
    KT_INT8,     /* int8_t */
    KT_INT16,    /* int16_t */
    KT_UINT16,   /* uint16_t */
    KT_INT32,    /* int32_t */
    KT_UINT32,   /* uint32_t */
    KT_INT64,    /* int64_t */
    KT_FLOAT64,  /* double */
    KT_UUID,     /* kuuid_t */
    KT_STRING,   /* kstr_t */
    KT_BYTES,    /* kbytes_t */
    KT_RECORDS,  /* krecords_t, always nullable; encoded by reference (zero copy) */
    KT_ARRAY,    /* karray_t of .sub structs, or of .elem primitives */
    KT_STRUCT,   /* an embedded struct described by .sub */
} ktype_t;

#define KV_MAX 127 /* "and every later version" */

typedef struct { uint8_t b[16]; } kuuid_t;

/* An array: `items` points at `count` elements (structs of sub->size bytes, or
 * primitives of .elem). count == -1 means a null array. */
typedef struct karray {
    void *items;
    int32_t count;
} karray_t;

struct kschema;

/* Record batches as a KT_RECORDS field holds them. Decoded: `p`/`len` view
 * the request bytes (len -1 = null). To encode bytes that are not contiguous
 * (a Fetch answer spanning several log chunks) set `iov`/`niov` instead: the
 * pieces go out in order by reference, and len must be their total. */
typedef struct kiov {
    const uint8_t *p;
    uint32_t len;
} kiov_t;
typedef struct krecords {
    const uint8_t *p;
    int32_t len;
    int32_t niov;
    const kiov_t *iov;
} krecords_t;

typedef struct kfield {
    const char *name;
    ktype_t type;
    uint16_t offset;        /* offsetof(struct, member) */
    int8_t vmin, vmax;      /* present in versions vmin..vmax (KV_MAX = no upper bound) */
    bool nullable;          /* may be null in versions >= nullable_min */
    int8_t nullable_min;
    bool tagged;            /* a tagged field (flexible versions only) with tag number .tag */
    uint16_t tag;
    ktype_t elem;           /* element type of a primitive array (KT_ARRAY with sub == NULL) */
    const struct kschema *sub; /* element/struct schema for KT_ARRAY / KT_STRUCT */
    int64_t dflt;           /* default for integers/bools when absent in a version */
    int32_t max_count;      /* arrays: most elements accepted when decoding (0 = 100000) */
} kfield_t;

typedef struct kschema {
    const char *name;
    size_t size;            /* sizeof the C struct */
    const kfield_t *fields; /* terminated by a KT_END entry */
} kschema_t;

/* Table-writing helpers. Extra designated initializers may follow, e.g.
 *   KF(produce_req_t, transactional_id, KT_STRING, 3, KV_MAX, .nullable = 1),
 *   KFA(produce_req_t, topics, 0, KV_MAX, &produce_req_topic_schema),
 */
#define KF(st, m, t, v0, v1, ...) \
    { .name = #m, .type = (t), .offset = (uint16_t)offsetof(st, m), .vmin = (v0), .vmax = (v1), __VA_ARGS__ }
#define KFA(st, m, v0, v1, subschema, ...) \
    KF(st, m, KT_ARRAY, v0, v1, .sub = (subschema), __VA_ARGS__)
#define KFAP(st, m, elemtype, v0, v1, ...) \
    KF(st, m, KT_ARRAY, v0, v1, .elem = (elemtype), __VA_ARGS__)
#define KFS(st, m, v0, v1, subschema, ...) \
    KF(st, m, KT_STRUCT, v0, v1, .sub = (subschema), __VA_ARGS__)
#define KF_END { .type = KT_END }
/* KSCHEMA defines an exported schema, KSCHEMA_LOCAL one private to its file. */
#define KSCHEMA(var, st, ...) \
    static const kfield_t var##_fields[] = { __VA_ARGS__, KF_END }; \
    const kschema_t var = { #st, sizeof(st), var##_fields }
#define KSCHEMA_LOCAL(var, st, ...) \
    static const kfield_t var##_fields[] = { __VA_ARGS__, KF_END }; \
    static const kschema_t var = { #st, sizeof(st), var##_fields }

/* Decodes a body of `version` into `out` (s->size bytes, zeroed first, defaults
 * applied). Returns 0, or a KR_* error with r->err set. */
int  kmsg_decode(const kschema_t *s, int version, bool flexible, kr_t *r, void *out, karena_t *a);
/* Encodes `in` as a body of `version`. Returns 0, or -1 when a value cannot be
 * represented in this version (e.g. null where not nullable). */
int  kmsg_encode(const kschema_t *s, int version, bool flexible, kw_t *w, const void *in);
/* Calls fn(code, arg) for every error code a message of `version` carries:
 * each KT_INT16 field named "error_code" or "..._error_code" that the version
 * encodes (tagged ones only when `flexible`), at any depth of structs and
 * array elements, zero codes included. The broker counts the error codes of
 * every response this way, in one place (broker/conn.c). */
typedef void kmsg_error_fn(int16_t code, void *arg);
void kmsg_each_error(const kschema_t *s, int version, bool flexible, const void *in, kmsg_error_fn *fn, void *arg);

/* Sets every field of `out` to its default (ints to .dflt, strings/arrays to
 * empty, nullable ones to null). Nested arrays stay empty. */
void kmsg_defaults(const kschema_t *s, void *out);

/* Array accessor: element i of a struct array. */
#define KARR_AT(arr, type, i) (&((type *)(arr).items)[i])
/* Allocates an array of n elements of `type` from the arena (zeroed). */
#define KARR_NEW(arena, arr, type, n) \
    ((arr).items = karena_alloc((arena), sizeof(type) * (size_t)((n) > 0 ? (n) : 1)), \
     (arr).count = (arr).items ? (int32_t)(n) : 0, (type *)(arr).items)

#endif
