/* pbjson.c - protobuf-c messages to and from JSON through their descriptors
 * (see pbjson.h). Messages built here use the system allocator, as
 * protobuf_c_message_free_unpacked(m, NULL) expects. */
#include "pbjson.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t scalar_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* ---- to JSON ---- */

static json_t *value_to_json(const ProtobufCFieldDescriptor *f, const void *p) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, v);
        return json_string(buf);
    }
    case PROTOBUF_C_TYPE_FLOAT: return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        int32_t v = *(const int32_t *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? pbjson_from_message(m) : json_null();
    }
    case PROTOBUF_C_TYPE_BYTES: return json_null(); /* not supported (see pbjson.h) */
    }
    return json_null();
}

json_t *pbjson_from_message(const ProtobufCMessage *m) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    if (!o) return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m + f->offset;
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            const char *arr = *(char *const *)base;
            v = json_array();
            for (size_t k = 0; v && k < n; k++) json_array_append_new(v, value_to_json(f, arr + k * scalar_size(f->type)));
        } else {
            v = value_to_json(f, base);
        }
        if (v) json_object_set_new(o, f->name, v);
    }
    return o;
}

/* ---- from JSON ---- */

static int err_out(char *err, size_t errsz, const char *fmt, const char *a, const char *b) {
    snprintf(err, errsz, fmt, a, b);
    return -1;
}

static int json_int(const json_t *j, long long lo, unsigned long long hi, long long *s, unsigned long long *u) {
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (v < lo || (v >= 0 && (unsigned long long)v > hi)) return -1;
        *s = v;
        *u = (unsigned long long)v;
        return 0;
    }
    if (json_is_string(j)) { /* proto3 JSON writes 64-bit integers as strings */
        const char *str = json_string_value(j);
        char *end;
        errno = 0;
        if (str[0] == '-') {
            long long v = strtoll(str, &end, 10);
            if (errno || *end || !*str || v < lo) return -1;
            *s = v;
            *u = 0;
        } else {
            unsigned long long v = strtoull(str, &end, 10);
            if (errno || *end || !*str || v > hi) return -1;
            *s = (long long)v;
            *u = v;
        }
        return 0;
    }
    return -1;
}

static int value_from_json(const ProtobufCFieldDescriptor *f, const json_t *j, void *p, char *err, size_t errsz) {
    long long s;
    unsigned long long u;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        if (json_int(j, INT32_MIN, INT32_MAX, &s, &u)) break;
        *(int32_t *)p = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        if (json_int(j, 0, UINT32_MAX, &s, &u)) break;
        *(uint32_t *)p = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        if (json_int(j, INT64_MIN, INT64_MAX, &s, &u)) break;
        *(int64_t *)p = (int64_t)s;
        return 0;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        if (json_int(j, 0, UINT64_MAX, &s, &u)) break;
        *(uint64_t *)p = (uint64_t)u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!json_is_number(j)) break;
        *(float *)p = (float)json_number_value(j);
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(j)) break;
        *(double *)p = json_number_value(j);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(j)) break;
        *(protobuf_c_boolean *)p = json_is_true(j);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        const ProtobufCEnumValue *ev = NULL;
        if (json_is_string(j)) ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));
        else if (json_is_integer(j)) ev = protobuf_c_enum_descriptor_get_value(ed, (int)json_integer_value(j));
        if (!ev) break;
        *(int32_t *)p = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(j)) break;
        char *dup = strdup(json_string_value(j));
        if (!dup) return err_out(err, errsz, "out of memory%s%s", "", "");
        *(char **)p = dup;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (json_is_null(j)) return 0;
        ProtobufCMessage *sub = pbjson_to_message(f->descriptor, j, err, errsz);
        if (!sub) return -1;
        *(ProtobufCMessage **)p = sub;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return err_out(err, errsz, "field %s: bytes fields are not supported in JSON%s", f->name, "");
    }
    return err_out(err, errsz, "field %s: wrong type or value out of range%s", f->name, "");
}

/* The field named `key`: its proto name, or its lowerCamelCase JSON name. */
static const ProtobufCFieldDescriptor *field_by_key(const ProtobufCMessageDescriptor *d, const char *key) {
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f) return f;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const char *n = d->fields[i].name, *k = key;
        while (*n && *k) {
            if (*n == '_' && n[1] && *k == (n[1] >= 'a' && n[1] <= 'z' ? n[1] - 32 : n[1])) {
                n += 2;
                k++;
            } else if (*n == *k) {
                n++;
                k++;
            } else {
                break;
            }
        }
        if (!*n && !*k) return &d->fields[i];
    }
    return NULL;
}

ProtobufCMessage *pbjson_to_message(const ProtobufCMessageDescriptor *d, const json_t *j, char *err, size_t errsz) {
    if (!json_is_object(j)) {
        err_out(err, errsz, "%s: expected a JSON object%s", d->short_name, "");
        return NULL;
    }
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (!m) {
        err_out(err, errsz, "out of memory%s%s", "", "");
        return NULL;
    }
    d->message_init(m);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        const ProtobufCFieldDescriptor *f = field_by_key(d, key);
        if (!f) {
            err_out(err, errsz, "unknown field '%s' in %s", key, d->short_name);
            goto fail;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            err_out(err, errsz, "field %s: oneof fields are not supported in JSON%s", f->name, "");
            goto fail;
        }
        char *base = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (json_is_null(v)) continue;
            if (!json_is_array(v)) {
                err_out(err, errsz, "field %s: expected an array%s", f->name, "");
                goto fail;
            }
            size_t n = json_array_size(v), sz = scalar_size(f->type);
            char *arr = n ? calloc(n, sz) : NULL;
            if (n && !arr) {
                err_out(err, errsz, "out of memory%s%s", "", "");
                goto fail;
            }
            *(char **)base = arr;
            size_t *count = (size_t *)((char *)m + f->quantifier_offset);
            for (size_t k = 0; k < n; k++) {
                if (value_from_json(f, json_array_get(v, k), arr + k * sz, err, errsz)) goto fail;
                *count = k + 1; /* what is filled is freed by free_unpacked */
            }
            continue;
        }
        if (f->label != PROTOBUF_C_LABEL_REPEATED && json_is_null(v) && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        /* a string field still holds its default (not allocated): replace it */
        if (value_from_json(f, v, base, err, errsz)) goto fail;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_MESSAGE &&
            f->type != PROTOBUF_C_TYPE_STRING)
            *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    }
    return m;
fail:
    protobuf_c_message_free_unpacked(m, NULL);
    return NULL;
}
