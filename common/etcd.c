/* etcd.c - the etcd v3 client over the JSON gateway (see etcd.h for the
 * contract: failover, retries, authentication, threads, watch).
 *
 * Layout of this file:
 *   1. status names, base64
 *   2. JSON helpers (int64 as strings, bytes as base64, snake/camel names)
 *   3. request builders and answer parsers (pure, unit-tested)
 *   4. configuration
 *   5. the HTTP core: a pool of curl handles, one attempt, the retry loop
 *      with failover and re-authentication
 *   6. the public calls
 *   7. the watch stream: incremental parser, message decoding, the resume
 *      state machine (pure), and the watch thread
 *
 * The gateway (etcd 3.4/3.5) speaks proto3 JSON: int64 fields are strings,
 * bytes are base64, fields with default values are omitted (a PUT event has
 * no "type", a failed txn no "succeeded"), names are the proto names
 * (snake_case; camelCase is accepted too). Errors come as HTTP 4xx/5xx with
 * {"error": "...", "message": "...", "code": <gRPC code>}; inside a stream
 * as {"error": {"grpc_code": N, "message": ...}}.
 */
#include "etcd.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "log.h"

#define ETCD_MAGIC 0xe7cd0c11u
#define WATCH_MAGIC 0xe7cd0a7cu
#define ETCD_MAX_BODY ((size_t)256 << 20)   /* largest answer accepted */
#define WATCH_MAX_MSG ((size_t)64 << 20)    /* largest watch stream message */
#define ETCD_MAX_KVS 10000000               /* kvs in one answer */
#define POOL_MAX 8                          /* idle curl handles kept */
#define CONNECT_TIMEOUT_MAX_MS 2000
#define WATCH_BACKOFF_MIN_MS 100
#define WATCH_BACKOFF_MAX_MS 5000

/* ------------------------------------------------------------------ */
/* 1. status names, base64                                             */

const char *etcd_status_name(int st) {
    switch (st) {
    case ETCD_OK: return "ok";
    case ETCD_ERR_INVALID: return "invalid";
    case ETCD_ERR_UNAVAILABLE: return "unavailable";
    case ETCD_ERR_UNKNOWN: return "unknown-outcome";
    case ETCD_ERR_AUTH: return "auth";
    case ETCD_ERR_NOT_FOUND: return "not-found";
    case ETCD_ERR_COMPACTED: return "compacted";
    case ETCD_ERR_FUTURE_REV: return "future-revision";
    case ETCD_ERR_PROTO: return "protocol";
    case ETCD_ERR_SERVER: return "server";
    }
    return "?";
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t etcd_b64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }
size_t etcd_b64_decoded_max(size_t n) { return (n + 3) / 4 * 3; }

size_t etcd_b64_encode(const void *in, size_t n, char *out) {
    const uint8_t *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_val(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

long etcd_b64_decode(const char *in, size_t n, uint8_t *out) {
    /* padding: at most two '=' and only at the end */
    size_t data = n;
    while (data > 0 && in[data - 1] == '=' && n - data < 2) data--;
    if (n != data && n % 4) return -1;       /* padded input comes in whole quads */
    if (data % 4 == 1) return -1;            /* 6 bits cannot end a byte string */
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < data; i++) {
        int v = b64_val((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1))) return -1; /* non-canonical trailing bits */
    if (o > (size_t)LONG_MAX) return -1;
    return (long)o;
}

/* ------------------------------------------------------------------ */
/* 2. JSON helpers                                                     */

/* o[name], or o[camelName] (some gateway versions use JSON names). */
static json_t *jget(const json_t *o, const char *name) {
    if (!json_is_object(o)) return NULL;
    json_t *v = json_object_get(o, name);
    if (v || !strchr(name, '_')) return v;
    char camel[64];
    size_t j = 0;
    for (size_t i = 0; name[i] && j + 1 < sizeof camel; i++) {
        if (name[i] == '_' && name[i + 1]) camel[j++] = (char)toupper((unsigned char)name[++i]);
        else camel[j++] = name[i];
    }
    camel[j] = '\0';
    return json_object_get(o, camel);
}

/* An int64 field: a JSON string of digits (proto3 JSON) or a number.
 * Missing: 0. Anything else sets *bad. */
static int64_t jget_i64(const json_t *o, const char *name, bool *bad) {
    json_t *v = jget(o, name);
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (!errno && end != s && !*end) return n;
    }
    *bad = true;
    return 0;
}

static bool jget_bool(const json_t *o, const char *name) {
    json_t *v = jget(o, name);
    return v && json_is_true(v);
}

static void jget_str(const json_t *o, const char *name, char *out, size_t outsz) {
    json_t *v = jget(o, name);
    snprintf(out, outsz, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static json_t *j_i64(int64_t v) {
    char b[24];
    snprintf(b, sizeof b, "%" PRId64, v);
    return json_string(b);
}

static json_t *j_bytes(const void *p, size_t n) {
    char *s = malloc(etcd_b64_encoded_len(n) + 1);
    if (!s) return NULL;
    size_t len = etcd_b64_encode(p, n, s);
    json_t *j = json_stringn(s, len);
    free(s);
    return j;
}

/* Sets o[name] = v and reports failure of either (v may be NULL on OOM). */
static bool jset(json_t *o, const char *name, json_t *v) { return v && json_object_set_new(o, name, v) == 0; }

/* A base64 field into a malloc'd NUL-terminated buffer. Missing: "". */
static int jget_bytes(const json_t *o, const char *name, uint8_t **out, size_t *len) {
    json_t *v = jget(o, name);
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    if (v && !json_is_string(v) && !json_is_null(v)) return -1;
    uint8_t *b = malloc(etcd_b64_decoded_max(n) + 1);
    if (!b) return -1;
    long d = etcd_b64_decode(s, n, b);
    if (d < 0) {
        free(b);
        return -1;
    }
    b[d] = '\0';
    *out = b;
    *len = (size_t)d;
    return 0;
}

static void kv_free(etcd_kv_t *kv) {
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

static int kv_decode(const json_t *o, etcd_kv_t *kv, char *err, size_t errsz) {
    memset(kv, 0, sizeof *kv);
    bool bad = false;
    if (!json_is_object(o)) goto fail;
    if (jget_bytes(o, "key", &kv->key, &kv->key_len) < 0 || jget_bytes(o, "value", &kv->value, &kv->value_len) < 0)
        goto fail;
    kv->create_revision = jget_i64(o, "create_revision", &bad);
    kv->mod_revision = jget_i64(o, "mod_revision", &bad);
    kv->version = jget_i64(o, "version", &bad);
    kv->lease = jget_i64(o, "lease", &bad);
    if (bad) goto fail;
    return ETCD_OK;
fail:
    kv_free(kv);
    snprintf(err, errsz, "etcd: malformed key-value in answer");
    return ETCD_ERR_PROTO;
}

/* ------------------------------------------------------------------ */
/* 3. request builders and answer parsers                              */

static char *dump_free(json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static bool set_range(json_t *o, const void *key, size_t key_len, const void *end, size_t end_len) {
    if (!key || key_len == 0) return false; /* etcd refuses an empty key */
    if (!jset(o, "key", j_bytes(key, key_len))) return false;
    if (end && !jset(o, "range_end", j_bytes(end, end_len))) return false;
    return true;
}

static json_t *range_obj(const void *key, size_t key_len, const void *end, size_t end_len, int64_t revision,
                         int64_t limit, bool keys_only, bool count_only, bool serializable) {
    json_t *o = json_object();
    if (!o || !set_range(o, key, key_len, end, end_len)) goto fail;
    if (revision && !jset(o, "revision", j_i64(revision))) goto fail;
    if (limit && !jset(o, "limit", j_i64(limit))) goto fail;
    if (keys_only && !jset(o, "keys_only", json_true())) goto fail;
    if (count_only && !jset(o, "count_only", json_true())) goto fail;
    if (serializable && !jset(o, "serializable", json_true())) goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

static json_t *put_obj(const void *key, size_t key_len, const void *value, size_t value_len, int64_t lease) {
    json_t *o = json_object();
    if (!o || !set_range(o, key, key_len, NULL, 0)) goto fail;
    if (!jset(o, "value", j_bytes(value ? value : "", value ? value_len : 0))) goto fail;
    if (lease && !jset(o, "lease", j_i64(lease))) goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

char *etcd_json_range(const etcd_range_req_t *r) {
    return dump_free(range_obj(r->key, r->key_len, r->range_end, r->range_end_len, r->revision, r->limit, r->keys_only,
                               r->count_only, r->serializable));
}

char *etcd_json_put(const void *key, size_t key_len, const void *value, size_t value_len, int64_t lease) {
    return dump_free(put_obj(key, key_len, value, value_len, lease));
}

static const char *const cmp_target_names[ETCD_CMP_TARGET_MAX] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const cmp_target_fields[ETCD_CMP_TARGET_MAX] = {"version", "create_revision", "mod_revision",
                                                                   "value", "lease"};
static const char *const cmp_op_names[ETCD_CMP_OP_MAX] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

static json_t *cmp_obj(const etcd_cmp_t *c) {
    if ((unsigned)c->target >= ETCD_CMP_TARGET_MAX || (unsigned)c->op >= ETCD_CMP_OP_MAX) return NULL;
    json_t *o = json_object();
    if (!o || !set_range(o, c->key, c->key_len, c->range_end, c->range_end_len)) goto fail;
    if (!jset(o, "result", json_string(cmp_op_names[c->op])) ||
        !jset(o, "target", json_string(cmp_target_names[c->target])))
        goto fail;
    json_t *operand = c->target == ETCD_CMP_VALUE ? j_bytes(c->value ? c->value : "", c->value ? c->value_len : 0)
                                                  : j_i64(c->number);
    if (!jset(o, cmp_target_fields[c->target], operand)) goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

static json_t *op_obj(const etcd_op_t *op) {
    json_t *inner = NULL;
    const char *name = NULL;
    switch (op->kind) {
    case ETCD_OP_RANGE:
        inner = range_obj(op->key, op->key_len, op->range_end, op->range_end_len, op->revision, op->limit,
                          op->keys_only, false, false);
        name = "request_range";
        break;
    case ETCD_OP_PUT:
        inner = put_obj(op->key, op->key_len, op->value, op->value_len, op->lease);
        name = "request_put";
        break;
    case ETCD_OP_DELETE:
        inner = json_object();
        if (inner && !set_range(inner, op->key, op->key_len, op->range_end, op->range_end_len)) {
            json_decref(inner);
            inner = NULL;
        }
        name = "request_delete_range";
        break;
    default: return NULL;
    }
    if (!inner) return NULL;
    json_t *o = json_object();
    if (!o || !jset(o, name, inner)) {
        if (!o) json_decref(inner);
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *ops_array(const etcd_op_t *ops, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *o = op_obj(&ops[i]);
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

char *etcd_json_txn(const etcd_cmp_t *cmps, int ncmps, const etcd_op_t *success, int nsuccess,
                    const etcd_op_t *failure, int nfailure) {
    if (ncmps < 0 || nsuccess < 0 || nfailure < 0) return NULL;
    json_t *o = json_object(), *ca = json_array();
    if (!o || !ca) goto fail;
    for (int i = 0; i < ncmps; i++) {
        json_t *c = cmp_obj(&cmps[i]);
        if (!c || json_array_append_new(ca, c)) goto fail;
    }
    if (json_object_set_new(o, "compare", ca)) {
        ca = NULL;
        goto fail;
    }
    ca = NULL;
    if (!jset(o, "success", ops_array(success, nsuccess)) || !jset(o, "failure", ops_array(failure, nfailure)))
        goto fail;
    return dump_free(o);
fail:
    json_decref(ca);
    json_decref(o);
    return NULL;
}

char *etcd_json_watch_create(const etcd_watch_req_t *r, int64_t start_revision) {
    json_t *cr = json_object(), *o = json_object();
    if (!cr || !o || !set_range(cr, r->key, r->key_len, r->range_end, r->range_end_len)) goto fail;
    if (start_revision > 0 && !jset(cr, "start_revision", j_i64(start_revision))) goto fail;
    if (r->prev_kv && !jset(cr, "prev_kv", json_true())) goto fail;
    if (json_object_set_new(o, "create_request", cr)) {
        cr = NULL;
        goto fail;
    }
    return dump_free(o);
fail:
    json_decref(cr);
    json_decref(o);
    return NULL;
}

/* Error objects. Returns true when top holds one: the flat HTTP form
 * {"error": "...", "message": "...", "code": N} or the stream form
 * {"error": {"grpc_code": N, "message": "..."}}. */
static bool error_from_json(const json_t *top, int *code, char *msg, size_t msgsz) {
    json_t *e = json_object_get(top, "error");
    bool bad = false;
    if (json_is_object(e)) {
        *code = (int)jget_i64(e, "grpc_code", &bad);
        if (!*code) *code = (int)jget_i64(e, "code", &bad);
        jget_str(e, "message", msg, msgsz);
        if (!msg[0]) jget_str(e, "error", msg, msgsz);
        return true;
    }
    json_t *c = json_object_get(top, "code");
    if (!c && !(json_is_string(e) && json_string_length(e) > 0 && !json_object_get(top, "header"))) return false;
    *code = (int)jget_i64(top, "code", &bad);
    if (!*code) *code = 2; /* UNKNOWN */
    jget_str(top, "message", msg, msgsz);
    if (!msg[0]) jget_str(top, "error", msg, msgsz);
    return true;
}

/* What an error from etcd means for the caller and for the retry loop. */
enum { EK_FINAL, EK_REAUTH, EK_RETRY_SAFE, EK_RETRY_IDEMPOTENT };

static bool msg_has(const char *msg, const char *needle) { return strstr(msg, needle) != NULL; }

static bool is_token_refusal(const char *msg) {
    return msg_has(msg, "invalid auth token") || msg_has(msg, "auth store is old") ||
           msg_has(msg, "auth revision is old");
}

static int classify_error(int code, const char *msg, int *status) {
    if (is_token_refusal(msg)) {
        *status = ETCD_ERR_AUTH;
        return EK_REAUTH;
    }
    switch (code) {
    case 16: /* Unauthenticated */
    case 7:  /* PermissionDenied */
        *status = ETCD_ERR_AUTH;
        return EK_FINAL;
    case 3: /* InvalidArgument */
        *status = (msg_has(msg, "user name is empty") || msg_has(msg, "authentication failed") ||
                   msg_has(msg, "auth: ") || msg_has(msg, "user name not found"))
                      ? ETCD_ERR_AUTH
                      : ETCD_ERR_INVALID;
        return EK_FINAL;
    case 5: *status = ETCD_ERR_NOT_FOUND; return EK_FINAL;
    case 11:
        *status = msg_has(msg, "compacted") ? ETCD_ERR_COMPACTED
                  : msg_has(msg, "future rev") ? ETCD_ERR_FUTURE_REV
                                               : ETCD_ERR_INVALID;
        return EK_FINAL;
    case 8: /* ResourceExhausted: "too many requests" was refused before being proposed */
        if (msg_has(msg, "too many requests")) {
            *status = ETCD_ERR_UNAVAILABLE;
            return EK_RETRY_SAFE;
        }
        *status = ETCD_ERR_INVALID;
        return EK_FINAL;
    case 14: /* Unavailable */
    case 4:  /* DeadlineExceeded */
    case 10: /* Aborted */
        if (msg_has(msg, "no leader") || msg_has(msg, "not capable") || msg_has(msg, "too many requests")) {
            *status = ETCD_ERR_UNAVAILABLE;
            return EK_RETRY_SAFE;
        }
        *status = ETCD_ERR_UNKNOWN; /* "request timed out", "leader changed": maybe applied */
        return EK_RETRY_IDEMPOTENT;
    }
    *status = ETCD_ERR_SERVER;
    return EK_FINAL;
}

int etcd_parse_error(const char *body, size_t len, int *grpc_code, char *err, size_t errsz) {
    json_error_t je;
    json_t *top = json_loadb(body, len, 0, &je);
    int code = 0, st = ETCD_ERR_PROTO;
    char msg[512] = "";
    if (top && error_from_json(top, &code, msg, sizeof msg)) {
        classify_error(code, msg, &st);
        snprintf(err, errsz, "%s", msg[0] ? msg : "etcd: error without a message");
    } else {
        snprintf(err, errsz, "etcd: answer holds no error");
    }
    if (grpc_code) *grpc_code = code;
    json_decref(top);
    return st;
}

void etcd_range_result_free(etcd_range_result_t *r) {
    if (!r) return;
    for (int i = 0; i < r->nkvs; i++) kv_free(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof *r);
}

static int header_revision(const json_t *o, int64_t *rev) {
    bool bad = false;
    *rev = jget_i64(jget(o, "header"), "revision", &bad);
    return bad ? -1 : 0;
}

static int range_from_json(const json_t *o, etcd_range_result_t *out, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    bool bad = false;
    if (!json_is_object(o) || header_revision(o, &out->revision) < 0) goto proto;
    out->count = jget_i64(o, "count", &bad);
    out->more = jget_bool(o, "more");
    if (bad) goto proto;
    json_t *kvs = jget(o, "kvs");
    if (kvs && !json_is_array(kvs)) goto proto;
    size_t n = kvs ? json_array_size(kvs) : 0;
    if (n > ETCD_MAX_KVS) goto proto;
    if (n) {
        out->kvs = calloc(n, sizeof *out->kvs);
        if (!out->kvs) {
            snprintf(err, errsz, "etcd: out of memory for %zu keys", n);
            return ETCD_ERR_PROTO;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int st = kv_decode(json_array_get(kvs, i), &out->kvs[i], err, errsz);
        if (st) {
            etcd_range_result_free(out);
            return st;
        }
        out->nkvs++;
    }
    return ETCD_OK;
proto:
    etcd_range_result_free(out);
    snprintf(err, errsz, "etcd: malformed range answer");
    return ETCD_ERR_PROTO;
}

/* Parses body; an error object becomes its status. *top is the parsed
 * answer on ETCD_OK (caller decrefs). */
static int load_answer(const char *body, size_t len, json_t **top, char *err, size_t errsz) {
    json_error_t je;
    *top = json_loadb(body, len, 0, &je);
    if (!*top || !json_is_object(*top)) {
        json_decref(*top);
        *top = NULL;
        snprintf(err, errsz, "etcd: answer is not a JSON object (%s)", je.text);
        return ETCD_ERR_PROTO;
    }
    int code;
    char msg[512];
    if (error_from_json(*top, &code, msg, sizeof msg)) {
        int st;
        classify_error(code, msg, &st);
        snprintf(err, errsz, "%s", msg);
        json_decref(*top);
        *top = NULL;
        return st;
    }
    return ETCD_OK;
}

int etcd_parse_range(const char *body, size_t len, etcd_range_result_t *out, char *err, size_t errsz) {
    json_t *top;
    memset(out, 0, sizeof *out);
    int st = load_answer(body, len, &top, err, errsz);
    if (st) return st;
    st = range_from_json(top, out, err, errsz);
    json_decref(top);
    return st;
}

void etcd_txn_result_free(etcd_txn_result_t *r) {
    if (!r) return;
    for (int i = 0; i < r->nresults; i++)
        if (r->results[i].kind == ETCD_OP_RANGE) etcd_range_result_free(&r->results[i].range);
    free(r->results);
    memset(r, 0, sizeof *r);
}

static int txn_from_json(const json_t *o, etcd_txn_result_t *out, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    bool bad = false;
    if (header_revision(o, &out->revision) < 0) goto proto;
    out->succeeded = jget_bool(o, "succeeded");
    json_t *rs = jget(o, "responses");
    if (rs && !json_is_array(rs)) goto proto;
    size_t n = rs ? json_array_size(rs) : 0;
    if (n > 1000000) goto proto;
    if (n && !(out->results = calloc(n, sizeof *out->results))) goto proto;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rs, i), *v;
        etcd_op_result_t *res = &out->results[i];
        if ((v = jget(r, "response_range"))) {
            res->kind = ETCD_OP_RANGE;
            int st = range_from_json(v, &res->range, err, errsz);
            if (st) {
                etcd_txn_result_free(out);
                return st;
            }
        } else if ((v = jget(r, "response_put"))) {
            res->kind = ETCD_OP_PUT;
        } else if ((v = jget(r, "response_delete_range"))) {
            res->kind = ETCD_OP_DELETE;
            res->deleted = jget_i64(v, "deleted", &bad);
        } else {
            goto proto; /* a nested txn: we never send one */
        }
        out->nresults++;
        if (bad) goto proto;
    }
    return ETCD_OK;
proto:
    etcd_txn_result_free(out);
    snprintf(err, errsz, "etcd: malformed txn answer");
    return ETCD_ERR_PROTO;
}

int etcd_parse_txn(const char *body, size_t len, etcd_txn_result_t *out, char *err, size_t errsz) {
    json_t *top;
    memset(out, 0, sizeof *out);
    int st = load_answer(body, len, &top, err, errsz);
    if (st) return st;
    st = txn_from_json(top, out, err, errsz);
    json_decref(top);
    return st;
}

size_t etcd_prefix_end(const void *key, size_t key_len, uint8_t *out) {
    const uint8_t *k = key;
    for (size_t i = key_len; i > 0; i--) {
        if (k[i - 1] != 0xff) {
            memcpy(out, k, i);
            out[i - 1]++;
            return i;
        }
    }
    out[0] = 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* 4. configuration                                                    */

void etcd_config_defaults(etcd_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout_ms = 5000;
    cfg->max_retries = 3;
    cfg->backoff_ms = 100;
    cfg->backoff_max_ms = 2000;
}

int etcd_config_set_endpoints(etcd_config_t *cfg, const char *list, char *err, size_t errsz) {
    cfg->nendpoints = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && isspace((unsigned char)*p)) p++, n--;
        while (n && isspace((unsigned char)p[n - 1])) n--;
        while (n && p[n - 1] == '/') n--;
        if (n) {
            if (cfg->nendpoints == ETCD_MAX_ENDPOINTS) {
                snprintf(err, errsz, "more than %d endpoints", ETCD_MAX_ENDPOINTS);
                return -1;
            }
            char *e = cfg->endpoints[cfg->nendpoints];
            bool has_scheme = (n > 7 && !strncmp(p, "http://", 7)) || (n > 8 && !strncmp(p, "https://", 8));
            if (!has_scheme && memmem(p, n, "://", 3)) {
                snprintf(err, errsz, "endpoint '%.*s': only http:// and https:// are supported", (int)n, p);
                return -1;
            }
            if (n + (has_scheme ? 0 : 7) >= sizeof cfg->endpoints[0]) {
                snprintf(err, errsz, "endpoint too long");
                return -1;
            }
            snprintf(e, sizeof cfg->endpoints[0], "%s%.*s", has_scheme ? "" : "http://", (int)n, p);
            const char *host = strstr(e, "://") + 3;
            if (strchr(host, '@')) { /* never echo what may be a password */
                snprintf(err, errsz, "endpoint %d: credentials in the URL are not supported (use "
                                     "KAFSCALE_ETCD_USERNAME and KAFSCALE_ETCD_PASSWORD)", cfg->nendpoints + 1);
                return -1;
            }
            for (const char *c = host; *c; c++) {
                if (*c == '/' || isspace((unsigned char)*c) || iscntrl((unsigned char)*c)) {
                    snprintf(err, errsz, "endpoint '%s': expected scheme://host:port only", e);
                    return -1;
                }
            }
            if (!*host) {
                snprintf(err, errsz, "endpoint '%s' has no host", e);
                return -1;
            }
            cfg->nendpoints++;
        }
        if (!comma) break;
        p = comma + 1;
    }
    if (!cfg->nendpoints) {
        snprintf(err, errsz, "no endpoint given");
        return -1;
    }
    return 0;
}

static void die_env(const char *name, const char *why) {
    fprintf(stderr, "kafscale: bad value for %s (%s)\n", name, why);
    exit(2);
}

bool etcd_config_from_env(etcd_config_t *cfg) {
    etcd_config_defaults(cfg);
    const char *eps = env_str("KAFSCALE_ETCD_ENDPOINTS", "");
    if (!eps || !*eps) return false;
    char err[256];
    if (etcd_config_set_endpoints(cfg, eps, err, sizeof err) < 0) die_env("KAFSCALE_ETCD_ENDPOINTS", err);
    const char *user = env_str("KAFSCALE_ETCD_USERNAME", "");
    const char *pass = env_str("KAFSCALE_ETCD_PASSWORD", "");
    const char *ca = env_str("KAFSCALE_ETCD_CA_FILE", "");
    if (strlen(user) >= sizeof cfg->username) die_env("KAFSCALE_ETCD_USERNAME", "too long");
    if (strlen(pass) >= sizeof cfg->password) die_env("KAFSCALE_ETCD_PASSWORD", "too long"); /* never printed */
    if (*pass && !*user) die_env("KAFSCALE_ETCD_PASSWORD", "set without KAFSCALE_ETCD_USERNAME");
    if (strlen(ca) >= sizeof cfg->ca_file) die_env("KAFSCALE_ETCD_CA_FILE", "path too long");
    snprintf(cfg->username, sizeof cfg->username, "%s", user);
    snprintf(cfg->password, sizeof cfg->password, "%s", pass);
    snprintf(cfg->ca_file, sizeof cfg->ca_file, "%s", ca);
    cfg->timeout_ms = (int)env_int("KAFSCALE_ETCD_TIMEOUT_MS", cfg->timeout_ms, 100, 600000);
    cfg->max_retries = (int)env_int("KAFSCALE_ETCD_MAX_RETRIES", cfg->max_retries, 0, 100);
    return true;
}

/* ------------------------------------------------------------------ */
/* 5. the HTTP core                                                    */

struct etcd {
    uint32_t magic;
    etcd_config_t cfg;
    _Atomic int cur;                 /* endpoint calls go to */
    pthread_mutex_t pool_mu;
    CURL *pool[POOL_MAX];
    int npool;
    /* authentication: token and its generation (bumped per authentication) */
    pthread_mutex_t auth_mu;
    char token[512];
    uint64_t token_gen;
    bool auth_off;                   /* the server said authentication is not enabled */
    _Atomic int nwatches;            /* running watches: etcd_close asserts none */
    /* stats */
    _Atomic uint64_t n_requests, n_retries, n_failovers, n_auths, n_errors, n_watch_reconnects, n_watch_events;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

#define STAT_ADD(c, f, n) atomic_fetch_add_explicit(&(c)->f, (n), memory_order_relaxed)

etcd_t *etcd_open(const etcd_config_t *cfg, char *err, size_t errsz) {
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errsz, "etcd: curl_global_init failed: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    if (cfg->nendpoints < 1 || cfg->nendpoints > ETCD_MAX_ENDPOINTS) {
        snprintf(err, errsz, "etcd: no endpoints");
        return NULL;
    }
    if (cfg->password[0] && !cfg->username[0]) {
        snprintf(err, errsz, "etcd: a password without a username");
        return NULL;
    }
    if (cfg->ca_file[0] && access(cfg->ca_file, R_OK) != 0) {
        snprintf(err, errsz, "etcd: CA file %s: %s", cfg->ca_file, strerror(errno));
        return NULL;
    }
    if (cfg->timeout_ms <= 0 || cfg->max_retries < 0 || cfg->backoff_ms < 0 || cfg->backoff_max_ms < cfg->backoff_ms) {
        snprintf(err, errsz, "etcd: bad timeout / retry settings");
        return NULL;
    }
    etcd_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errsz, "etcd: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    pthread_mutex_init(&c->pool_mu, NULL);
    pthread_mutex_init(&c->auth_mu, NULL);
    c->magic = ETCD_MAGIC;
    return c;
}

void etcd_close(etcd_t *c) {
    if (!c) return;
    KS_ASSERT(c->magic == ETCD_MAGIC);
    KS_ASSERT(atomic_load(&c->nwatches) == 0); /* a watch thread would use c after free */
    for (int i = 0; i < c->npool; i++) curl_easy_cleanup(c->pool[i]);
    explicit_bzero(c->cfg.password, sizeof c->cfg.password);
    explicit_bzero(c->token, sizeof c->token);
    pthread_mutex_destroy(&c->pool_mu);
    pthread_mutex_destroy(&c->auth_mu);
    c->magic = 0;
    free(c);
}

void etcd_get_stats(etcd_t *c, etcd_stats_t *o) {
    KS_ASSERT(c->magic == ETCD_MAGIC);
    o->requests = atomic_load(&c->n_requests);
    o->retries = atomic_load(&c->n_retries);
    o->failovers = atomic_load(&c->n_failovers);
    o->auths = atomic_load(&c->n_auths);
    o->errors = atomic_load(&c->n_errors);
    o->watch_reconnects = atomic_load(&c->n_watch_reconnects);
    o->watch_events = atomic_load(&c->n_watch_events);
}

const char *etcd_current_endpoint(etcd_t *c) {
    KS_ASSERT(c->magic == ETCD_MAGIC);
    return c->cfg.endpoints[atomic_load(&c->cur)];
}

/* Moves the shared endpoint past ep (unless another thread already did). */
static void failover(etcd_t *c, int ep, const char *why) {
    int next = (ep + 1) % c->cfg.nendpoints;
    if (c->cfg.nendpoints > 1 && atomic_compare_exchange_strong(&c->cur, &ep, next)) {
        STAT_ADD(c, n_failovers, 1);
        if (strstr(why, c->cfg.endpoints[ep])) log_warn("etcd: %s; switching to %s", why, c->cfg.endpoints[next]);
        else log_warn("etcd: %s: %s; switching to %s", c->cfg.endpoints[ep], why, c->cfg.endpoints[next]);
    }
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Exponential backoff with equal jitter: uniform in [d/2, d]. */
static int backoff_delay(int base, int max, int n) {
    static _Thread_local unsigned seed;
    if (!seed) seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    int64_t d = base;
    for (int i = 0; i < n && d < max; i++) d *= 2;
    if (d > max) d = max;
    if (d <= 1) return (int)d;
    return (int)(d / 2 + rand_r(&seed) % (d / 2 + 1));
}

typedef struct body_buf {
    char *p;
    size_t n, cap;
    bool overflow;
} body_buf_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    body_buf_t *b = ud;
    size_t n = size * nmemb;
    if (b->n + n + 1 > ETCD_MAX_BODY) {
        b->overflow = true;
        return 0;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return 0;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, ptr, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static CURL *easy_take(etcd_t *c) {
    CURL *e = NULL;
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool) e = c->pool[--c->npool];
    pthread_mutex_unlock(&c->pool_mu);
    return e ? e : curl_easy_init();
}

static void easy_give(etcd_t *c, CURL *e) {
    curl_easy_reset(e); /* keeps the connection cache */
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    if (e) curl_easy_cleanup(e);
}

/* Options shared by calls and watches. hdrs carries the token: the caller
 * frees it with free_headers (which wipes the copy we built). */
static struct curl_slist *make_headers(const char *token) {
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h) h = curl_slist_append(h, "Expect:");
    if (h && token && token[0]) {
        char line[600];
        snprintf(line, sizeof line, "Authorization: %s", token);
        struct curl_slist *h2 = curl_slist_append(h, line);
        explicit_bzero(line, sizeof line);
        if (!h2) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = h2;
    }
    return h;
}

static void free_headers(struct curl_slist *h) {
    for (struct curl_slist *p = h; p; p = p->next)
        if (!strncmp(p->data, "Authorization:", 14)) explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

static void common_opts(etcd_t *c, CURL *e, const char *url, struct curl_slist *hdrs, char *curl_err) {
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* HTTP/1.1: the gateway shares its port with gRPC over HTTP/2 */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kafscale-etcd/1");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 5L);
    long ct = c->cfg.timeout_ms < CONNECT_TIMEOUT_MAX_MS ? c->cfg.timeout_ms : CONNECT_TIMEOUT_MAX_MS;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ct);
    if (c->cfg.ca_file[0]) curl_easy_setopt(e, CURLOPT_CAINFO, c->cfg.ca_file);
}

/* One attempt's outcome, for the retry loop. */
enum { AT_DONE, AT_NOT_SENT, AT_NO_ANSWER };

/* POSTs body to endpoint ep. AT_DONE: an HTTP answer (code and body);
 * otherwise a transport failure described in err.
 *
 * A write (!idempotent) goes on a fresh connection: libcurl re-sends a
 * request by itself when a reused keep-alive connection dies before the
 * first answer byte, which would apply a write twice and, worse, could turn
 * "sent, no answer" into a clean-looking error on the retry. A fresh
 * connection costs one TCP (and TLS) handshake per write; etcd writes are
 * few (one txn per flush cycle), reads keep reusing connections. */
static int attempt(etcd_t *c, int ep, const char *path, const char *body, bool idempotent, const char *token,
                   body_buf_t *out, long *http, char *err, size_t errsz) {
    char url[512], curl_err[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s%s", c->cfg.endpoints[ep], path);
    CURL *e = easy_take(c);
    struct curl_slist *hdrs = make_headers(token);
    if (!e || !hdrs) {
        if (e) easy_give(c, e);
        free_headers(hdrs);
        snprintf(err, errsz, "etcd: out of memory");
        return AT_NOT_SENT;
    }
    common_opts(c, e, url, hdrs, curl_err);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->cfg.timeout_ms);
    if (!idempotent) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    STAT_ADD(c, n_requests, 1);
    CURLcode rc = curl_easy_perform(e);
    long req_size = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, http);
    curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &req_size);
    easy_give(c, e);
    free_headers(hdrs);
    if (rc == CURLE_OK) return AT_DONE;
    if (out->overflow) {
        snprintf(err, errsz, "etcd %s: answer larger than %zu bytes", url, ETCD_MAX_BODY);
        return AT_DONE;
    }
    snprintf(err, errsz, "etcd %s: %s", url, curl_err[0] ? curl_err : curl_easy_strerror(rc));
    bool not_sent = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                    rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_SSL_CONNECT_ERROR ||
                    rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || req_size == 0;
    return not_sent ? AT_NOT_SENT : AT_NO_ANSWER;
}

static int call_raw(etcd_t *c, const char *path, const char *body, bool idempotent, bool use_token, json_t **resp,
                    char *err, size_t errsz);

/* The current token (authenticating first when there is none) and its
 * generation. Serialised on auth_mu: one authentication at a time. */
static int get_token(etcd_t *c, char *tok, size_t toksz, uint64_t *gen, char *err, size_t errsz) {
    int st = ETCD_OK;
    pthread_mutex_lock(&c->auth_mu);
    if (!c->token[0] && !c->auth_off) {
        json_t *b = json_pack("{s:s, s:s}", "name", c->cfg.username, "password", c->cfg.password);
        char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b); /* jansson's copy of the password is freed, not wiped: unavoidable */
        json_t *ans = NULL;
        if (!body) {
            snprintf(err, errsz, "etcd: out of memory");
            st = ETCD_ERR_INVALID;
        } else {
            st = call_raw(c, "/v3/auth/authenticate", body, true, false, &ans, err, errsz);
            explicit_bzero(body, strlen(body));
            free(body);
        }
        if (st == ETCD_OK) {
            json_t *t = json_object_get(ans, "token");
            if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) >= sizeof c->token) {
                snprintf(err, errsz, "etcd: authenticate answered without a usable token");
                st = ETCD_ERR_PROTO;
            } else {
                snprintf(c->token, sizeof c->token, "%s", json_string_value(t));
                c->token_gen++;
                STAT_ADD(c, n_auths, 1);
                log_info("etcd: authenticated as %s", c->cfg.username);
            }
        } else if (msg_has(err, "authentication is not enabled")) {
            /* credentials given but not needed: go on without a token until
             * etcd asks for one ("user name is empty") */
            log_warn("etcd: authentication is not enabled on the server; continuing without a token");
            c->auth_off = true;
            st = ETCD_OK;
        } else if (st == ETCD_ERR_AUTH) {
            char m[256];
            snprintf(m, sizeof m, "%s", err);
            snprintf(err, errsz, "etcd: authentication as '%s' failed: %s", c->cfg.username, m);
        }
        json_decref(ans);
    }
    if (st == ETCD_OK) {
        snprintf(tok, toksz, "%s", c->token);
        *gen = c->token_gen;
    }
    pthread_mutex_unlock(&c->auth_mu);
    return st;
}

/* When msg says our token (or its absence) was refused and we have
 * credentials: forgets the token of generation gen (a newer one stays) so
 * that the next get_token authenticates, and returns true. */
static bool token_refused(etcd_t *c, const char *msg, uint64_t gen) {
    if (!c->cfg.username[0] || !(is_token_refusal(msg) || msg_has(msg, "user name is empty"))) return false;
    pthread_mutex_lock(&c->auth_mu);
    c->auth_off = false;
    if (c->token_gen == gen) explicit_bzero(c->token, sizeof c->token);
    pthread_mutex_unlock(&c->auth_mu);
    return true;
}

/* The retry loop: attempts over the endpoints, backoff, re-authentication.
 * *resp: the parsed answer on ETCD_OK (caller decrefs). */
static int call_raw(etcd_t *c, const char *path, const char *body, bool idempotent, bool use_token, json_t **resp,
                    char *err, size_t errsz) {
    int n_ep = c->cfg.nendpoints, max_attempts = c->cfg.max_retries + n_ep, reauths = 0, st = ETCD_ERR_UNAVAILABLE;
    bool auth = use_token && c->cfg.username[0];
    *resp = NULL;
    for (int att = 0; att < max_attempts; att++) {
        if (att > 0) {
            STAT_ADD(c, n_retries, 1);
            if (att >= n_ep) sleep_ms(backoff_delay(c->cfg.backoff_ms, c->cfg.backoff_max_ms, att - n_ep));
        }
        char token[512] = "";
        uint64_t gen = 0;
        if (auth && (st = get_token(c, token, sizeof token, &gen, err, errsz)) != ETCD_OK) goto out;
        int ep = atomic_load(&c->cur);
        body_buf_t b = {0};
        long http = 0;
        int at = attempt(c, ep, path, body, idempotent, token, &b, &http, err, errsz);
        explicit_bzero(token, sizeof token);
        if (at != AT_DONE) {
            free(b.p);
            st = at == AT_NOT_SENT ? ETCD_ERR_UNAVAILABLE : ETCD_ERR_UNKNOWN;
            failover(c, ep, err);
            if (at == AT_NO_ANSWER && !idempotent) goto out; /* maybe applied: the caller must find out */
            continue;
        }
        if (b.overflow) {
            free(b.p);
            st = ETCD_ERR_PROTO;
            goto out;
        }
        json_error_t je;
        json_t *top = json_loadb(b.p ? b.p : "", b.n, 0, &je);
        int code = 0;
        char msg[512] = "";
        if (top && json_is_object(top) && !error_from_json(top, &code, msg, sizeof msg)) {
            if (http == 200) {
                free(b.p);
                *resp = top;
                return ETCD_OK;
            }
            snprintf(msg, sizeof msg, "HTTP %ld", http);
            code = 2;
        }
        json_decref(top);
        if (!code) { /* no JSON: a proxy, a wrong port, or not the gateway */
            snprintf(err, errsz, "etcd %s%s: HTTP %ld: %.120s", c->cfg.endpoints[ep], path, http,
                     b.p ? b.p : "(no body)");
            free(b.p);
            st = ETCD_ERR_PROTO;
            if (http >= 500 || http == 429) {
                st = ETCD_ERR_UNAVAILABLE;
                failover(c, ep, "HTTP error");
                if (idempotent) continue;
                st = ETCD_ERR_UNKNOWN;
            }
            goto out;
        }
        free(b.p);
        int kind = classify_error(code, msg, &st);
        snprintf(err, errsz, "etcd %s: %s", path, msg);
        if (auth && reauths < 2 && token_refused(c, msg, gen)) {
            reauths++;
            att--; /* not an endpoint failure: does not use up an attempt */
            continue;
        }
        if (kind == EK_REAUTH) goto out;
        if (st == ETCD_ERR_AUTH && !auth && msg_has(msg, "user name is empty")) {
            snprintf(err, errsz, "etcd %s: %s (authentication is enabled: set KAFSCALE_ETCD_USERNAME and _PASSWORD)",
                     path, msg);
            goto out;
        }
        if (kind == EK_RETRY_SAFE || (kind == EK_RETRY_IDEMPOTENT && idempotent)) {
            failover(c, ep, msg);
            continue;
        }
        goto out;
    }
out:
    if (idempotent && st == ETCD_ERR_UNKNOWN) st = ETCD_ERR_UNAVAILABLE; /* a read has no unknown outcome */
    STAT_ADD(c, n_errors, 1);
    log_debug("etcd: %s failed: %s (%s)", path, err, etcd_status_name(st));
    return st;
}

static int call(etcd_t *c, const char *path, char *body, bool idempotent, json_t **resp, char *err, size_t errsz) {
    KS_ASSERT(c && c->magic == ETCD_MAGIC);
    if (!body) {
        *resp = NULL;
        snprintf(err, errsz, "etcd %s: bad request (empty key or bad argument)", path);
        STAT_ADD(c, n_errors, 1);
        return ETCD_ERR_INVALID;
    }
    int st = call_raw(c, path, body, idempotent, true, resp, err, errsz);
    free(body);
    return st;
}

/* ------------------------------------------------------------------ */
/* 6. the public calls                                                 */

int etcd_range(etcd_t *c, const etcd_range_req_t *req, etcd_range_result_t *out, char *err, size_t errsz) {
    json_t *ans;
    memset(out, 0, sizeof *out);
    int st = call(c, "/v3/kv/range", etcd_json_range(req), true, &ans, err, errsz);
    if (st) return st;
    st = range_from_json(ans, out, err, errsz);
    json_decref(ans);
    return st;
}

int etcd_get(etcd_t *c, const char *key, etcd_range_result_t *out, char *err, size_t errsz) {
    etcd_range_req_t r = {.key = key, .key_len = strlen(key)};
    return etcd_range(c, &r, out, err, errsz);
}

int etcd_put(etcd_t *c, const void *key, size_t key_len, const void *value, size_t value_len, int64_t lease,
             int64_t *revision, char *err, size_t errsz) {
    json_t *ans;
    int st = call(c, "/v3/kv/put", etcd_json_put(key, key_len, value, value_len, lease), false, &ans, err, errsz);
    if (st) return st;
    int64_t rev;
    if (header_revision(ans, &rev) < 0) {
        snprintf(err, errsz, "etcd: malformed put answer");
        st = ETCD_ERR_PROTO;
    } else if (revision) {
        *revision = rev;
    }
    json_decref(ans);
    return st;
}

int etcd_delete(etcd_t *c, const void *key, size_t key_len, const void *range_end, size_t range_end_len,
                int64_t *deleted, int64_t *revision, char *err, size_t errsz) {
    json_t *o = json_object(), *ans;
    char *body = NULL;
    if (o && set_range(o, key, key_len, range_end, range_end_len)) body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int st = call(c, "/v3/kv/deleterange", body, false, &ans, err, errsz);
    if (st) return st;
    bool bad = false;
    int64_t rev, del = jget_i64(ans, "deleted", &bad);
    if (header_revision(ans, &rev) < 0 || bad) {
        snprintf(err, errsz, "etcd: malformed delete answer");
        st = ETCD_ERR_PROTO;
    } else {
        if (deleted) *deleted = del;
        if (revision) *revision = rev;
    }
    json_decref(ans);
    return st;
}

int etcd_txn(etcd_t *c, const etcd_cmp_t *cmps, int ncmps, const etcd_op_t *success, int nsuccess,
             const etcd_op_t *failure, int nfailure, etcd_txn_result_t *out, char *err, size_t errsz) {
    json_t *ans;
    memset(out, 0, sizeof *out);
    /* a txn of ranges only is safe to repeat */
    bool ro = true;
    for (int i = 0; i < nsuccess; i++) ro = ro && success[i].kind == ETCD_OP_RANGE;
    for (int i = 0; i < nfailure; i++) ro = ro && failure[i].kind == ETCD_OP_RANGE;
    int st = call(c, "/v3/kv/txn", etcd_json_txn(cmps, ncmps, success, nsuccess, failure, nfailure), ro, &ans, err,
                  errsz);
    if (st) return st;
    st = txn_from_json(ans, out, err, errsz);
    json_decref(ans);
    return st;
}

/* Lease answers come flat, except keepalive (a stream: {"result": {...}}). */
static const json_t *unwrap_result(const json_t *ans) {
    json_t *r = json_object_get(ans, "result");
    return json_is_object(r) ? r : ans;
}

int etcd_lease_grant(etcd_t *c, int64_t ttl_sec, int64_t id, int64_t *granted_id, int64_t *granted_ttl, char *err,
                     size_t errsz) {
    if (ttl_sec <= 0) {
        snprintf(err, errsz, "etcd: lease TTL must be positive");
        return ETCD_ERR_INVALID;
    }
    json_t *o = json_object(), *ans;
    char *body = NULL;
    if (o && jset(o, "TTL", j_i64(ttl_sec)) && (!id || jset(o, "ID", j_i64(id)))) body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int st = call(c, "/v3/lease/grant", body, false, &ans, err, errsz);
    if (st) return st;
    bool bad = false;
    int64_t gid = jget_i64(ans, "ID", &bad), gttl = jget_i64(ans, "TTL", &bad);
    json_t *e = json_object_get(ans, "error");
    if (json_is_string(e) && json_string_length(e)) {
        snprintf(err, errsz, "etcd lease grant: %s", json_string_value(e));
        st = ETCD_ERR_SERVER;
    } else if (bad || gid == 0) {
        snprintf(err, errsz, "etcd: malformed lease grant answer");
        st = ETCD_ERR_PROTO;
    } else {
        if (granted_id) *granted_id = gid;
        if (granted_ttl) *granted_ttl = gttl;
    }
    json_decref(ans);
    return st;
}

static char *lease_body(int64_t id) {
    json_t *o = json_object();
    char *body = NULL;
    if (o && jset(o, "ID", j_i64(id))) body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return body;
}

int etcd_lease_keepalive(etcd_t *c, int64_t id, int64_t *ttl, char *err, size_t errsz) {
    json_t *ans;
    int st = call(c, "/v3/lease/keepalive", lease_body(id), true, &ans, err, errsz);
    if (st) return st;
    bool bad = false;
    int64_t t = jget_i64(unwrap_result(ans), "TTL", &bad);
    if (bad) {
        snprintf(err, errsz, "etcd: malformed keepalive answer");
        st = ETCD_ERR_PROTO;
    } else if (t <= 0) {
        snprintf(err, errsz, "etcd: lease %" PRId64 " not found (expired or revoked)", id);
        st = ETCD_ERR_NOT_FOUND;
    } else if (ttl) {
        *ttl = t;
    }
    json_decref(ans);
    return st;
}

int etcd_lease_ttl(etcd_t *c, int64_t id, int64_t *ttl, int64_t *granted_ttl, char *err, size_t errsz) {
    json_t *ans;
    int st = call(c, "/v3/lease/timetolive", lease_body(id), true, &ans, err, errsz);
    if (st) return st;
    bool bad = false;
    int64_t t = jget_i64(ans, "TTL", &bad), g = jget_i64(ans, "grantedTTL", &bad);
    if (bad) {
        snprintf(err, errsz, "etcd: malformed time-to-live answer");
        st = ETCD_ERR_PROTO;
    } else {
        if (ttl) *ttl = t;
        if (granted_ttl) *granted_ttl = g;
    }
    json_decref(ans);
    return st;
}

int etcd_lease_revoke(etcd_t *c, int64_t id, char *err, size_t errsz) {
    json_t *ans;
    int st = call(c, "/v3/lease/revoke", lease_body(id), true, &ans, err, errsz);
    json_decref(ans);
    return st;
}

/* ------------------------------------------------------------------ */
/* 7. the watch stream                                                 */

struct etcd_wparser {
    char *buf;          /* the current object's bytes so far */
    size_t len, cap, max;
    int depth;          /* 0: between objects */
    bool in_str, esc;
};

etcd_wparser_t *etcd_wparser_new(size_t max_msg) {
    etcd_wparser_t *p = calloc(1, sizeof *p);
    if (p) p->max = max_msg ? max_msg : WATCH_MAX_MSG;
    return p;
}

void etcd_wparser_free(etcd_wparser_t *p) {
    if (!p) return;
    free(p->buf);
    free(p);
}

void etcd_wparser_reset(etcd_wparser_t *p) {
    p->len = 0;
    p->depth = 0;
    p->in_str = p->esc = false;
}

static int wp_append(etcd_wparser_t *p, const char *d, size_t n, char *err, size_t errsz) {
    if (p->len + n > p->max) {
        snprintf(err, errsz, "etcd watch: stream message larger than %zu bytes", p->max);
        return -1;
    }
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + n) cap *= 2;
        char *nb = realloc(p->buf, cap);
        if (!nb) {
            snprintf(err, errsz, "etcd watch: out of memory");
            return -1;
        }
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, d, n);
    p->len += n;
    return 0;
}

void etcd_watch_resp_free(etcd_watch_resp_t *r) {
    if (!r) return;
    for (int i = 0; i < r->nevents; i++) {
        kv_free(&r->events[i].kv);
        kv_free(&r->events[i].prev_kv);
    }
    free(r->events);
    r->events = NULL;
    r->nevents = 0;
}

static int watch_resp_decode(const json_t *msg, etcd_watch_resp_t *r, char *err, size_t errsz) {
    memset(r, 0, sizeof *r);
    json_t *res = json_object_get(msg, "result");
    if (!res) {
        int code = 0;
        if (error_from_json(msg, &code, r->error_msg, sizeof r->error_msg)) {
            r->is_error = true;
            r->error_code = code;
            return 0;
        }
        res = (json_t *)msg; /* an unwrapped WatchResponse */
    }
    bool bad = false;
    if (!json_is_object(res) || header_revision(res, &r->header_revision) < 0) goto proto;
    r->watch_id = jget_i64(res, "watch_id", &bad);
    r->created = jget_bool(res, "created");
    r->canceled = jget_bool(res, "canceled");
    r->compact_revision = jget_i64(res, "compact_revision", &bad);
    jget_str(res, "cancel_reason", r->cancel_reason, sizeof r->cancel_reason);
    if (bad) goto proto;
    json_t *evs = jget(res, "events");
    if (evs && !json_is_array(evs)) goto proto;
    size_t n = evs ? json_array_size(evs) : 0;
    if (n > ETCD_MAX_KVS) goto proto;
    if (n && !(r->events = calloc(n, sizeof *r->events))) goto proto;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(evs, i), *t = jget(e, "type"), *pkv;
        etcd_event_t *ev = &r->events[i];
        if (!t || (json_is_string(t) && !strcmp(json_string_value(t), "PUT")) ||
            (json_is_integer(t) && json_integer_value(t) == 0))
            ev->type = ETCD_EVENT_PUT;
        else if ((json_is_string(t) && !strcmp(json_string_value(t), "DELETE")) ||
                 (json_is_integer(t) && json_integer_value(t) == 1))
            ev->type = ETCD_EVENT_DELETE;
        else
            goto proto;
        if (kv_decode(jget(e, "kv"), &ev->kv, err, errsz)) goto proto;
        r->nevents++; /* from here on, freed with r */
        if ((pkv = jget(e, "prev_kv")) && !json_is_null(pkv)) {
            if (kv_decode(pkv, &ev->prev_kv, err, errsz)) goto proto;
            ev->has_prev = true;
        }
    }
    return 0;
proto:
    etcd_watch_resp_free(r);
    snprintf(err, errsz, "etcd watch: malformed stream message");
    return -1;
}

/* A complete object in p->buf: decode and hand over. */
static int wp_deliver(etcd_wparser_t *p, int (*on_resp)(void *, etcd_watch_resp_t *), void *arg, char *err,
                      size_t errsz) {
    json_error_t je;
    json_t *msg = json_loadb(p->buf, p->len, 0, &je);
    p->len = 0;
    if (!msg) {
        snprintf(err, errsz, "etcd watch: bad JSON in stream: %s", je.text);
        return -1;
    }
    etcd_watch_resp_t r;
    int rc = watch_resp_decode(msg, &r, err, errsz);
    json_decref(msg);
    if (rc) return -1;
    rc = on_resp(arg, &r);
    etcd_watch_resp_free(&r);
    return rc;
}

int etcd_wparser_feed(etcd_wparser_t *p, const char *d, size_t n, int (*on_resp)(void *, etcd_watch_resp_t *),
                      void *arg, char *err, size_t errsz) {
    size_t start = 0; /* first byte of the current object within d */
    for (size_t i = 0; i < n; i++) {
        char ch = d[i];
        if (p->depth == 0) {
            if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
            if (ch != '{') {
                snprintf(err, errsz, "etcd watch: unexpected byte 0x%02x between stream messages", (unsigned char)ch);
                return -1;
            }
            start = i;
            p->depth = 1;
            p->in_str = p->esc = false;
            continue;
        }
        if (p->in_str) {
            if (p->esc) p->esc = false;
            else if (ch == '\\') p->esc = true;
            else if (ch == '"') p->in_str = false;
            continue;
        }
        if (ch == '"') {
            p->in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++p->depth > 512) {
                snprintf(err, errsz, "etcd watch: stream message nested too deeply");
                return -1;
            }
        } else if (ch == '}' || ch == ']') {
            if (--p->depth == 0) {
                if (wp_append(p, d + start, i + 1 - start, err, errsz)) return -1;
                int rc = wp_deliver(p, on_resp, arg, err, errsz);
                if (rc) return rc;
            }
        }
    }
    if (p->depth > 0 && wp_append(p, d + start, n - start, err, errsz)) return -1;
    return 0;
}

etcd_watch_action_t etcd_watch_step(int64_t *next_rev, etcd_watch_resp_t *r) {
    if (r->is_error) return is_token_refusal(r->error_msg) ? ETCD_WA_REAUTH : ETCD_WA_RECONNECT;
    if (r->canceled) {
        if (r->compact_revision > 0) return ETCD_WA_COMPACTED;
        return is_token_refusal(r->cancel_reason) ? ETCD_WA_REAUTH : ETCD_WA_RECONNECT;
    }
    if (r->created) {
        if (*next_rev <= 0) *next_rev = r->header_revision + 1;
        return ETCD_WA_NONE;
    }
    if (r->nevents == 0) { /* progress: everything up to the header revision was sent */
        if (*next_rev > 0 && r->header_revision >= *next_rev) *next_rev = r->header_revision + 1;
        return ETCD_WA_NONE;
    }
    /* never deliver a revision twice (a resumed stream starts at *next_rev) */
    int keep = 0;
    for (int i = 0; i < r->nevents; i++) {
        if (r->events[i].kv.mod_revision < *next_rev) {
            kv_free(&r->events[i].kv);
            kv_free(&r->events[i].prev_kv);
        } else {
            r->events[keep++] = r->events[i];
        }
    }
    r->nevents = keep;
    if (!keep) return ETCD_WA_NONE;
    *next_rev = r->events[keep - 1].kv.mod_revision + 1;
    return ETCD_WA_EVENTS;
}

struct etcd_watch {
    uint32_t magic;
    etcd_t *c;
    etcd_watch_cb_t cb;
    etcd_watch_req_t req;    /* key and range_end point into keybuf */
    uint8_t *keybuf;
    _Atomic int64_t next_rev;
    atomic_bool stop;
    CURLM *multi;
    etcd_wparser_t *parser;
    pthread_t thr;
    /* one stream's outcome, set from the write callback */
    etcd_watch_action_t ended_by;
    int64_t compact_rev;
    bool established;
    char why[256];
};

static int watch_on_resp(void *arg, etcd_watch_resp_t *r) {
    etcd_watch_t *w = arg;
    int64_t next = atomic_load(&w->next_rev);
    etcd_watch_action_t a = etcd_watch_step(&next, r);
    atomic_store(&w->next_rev, next);
    switch (a) {
    case ETCD_WA_NONE:
        if (r->created && !w->established) {
            w->established = true;
            if (w->cb.status) w->cb.status(w->cb.arg, true, next, "watching");
        }
        return 0;
    case ETCD_WA_EVENTS:
        STAT_ADD(w->c, n_watch_events, (uint64_t)r->nevents);
        if (w->cb.events) w->cb.events(w->cb.arg, r->events, r->nevents);
        return 0;
    case ETCD_WA_COMPACTED:
        w->compact_rev = r->compact_revision;
        snprintf(w->why, sizeof w->why, "revision %" PRId64 " was compacted (compact revision %" PRId64 ")", next,
                 r->compact_revision);
        break;
    case ETCD_WA_REAUTH:
    case ETCD_WA_RECONNECT:
        snprintf(w->why, sizeof w->why, "%s",
                 r->is_error ? r->error_msg : r->cancel_reason[0] ? r->cancel_reason : "watch canceled");
        break;
    }
    w->ended_by = a;
    return 1; /* stop this stream */
}

static size_t watch_on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    etcd_watch_t *w = ud;
    size_t n = size * nmemb;
    char err[256];
    int rc = etcd_wparser_feed(w->parser, ptr, n, watch_on_resp, w, err, sizeof err);
    if (rc < 0) {
        w->ended_by = ETCD_WA_RECONNECT;
        snprintf(w->why, sizeof w->why, "%s", err);
    }
    return rc ? 0 : n; /* 0 aborts the transfer */
}

/* Waits ms unless etcd_watch_stop wakes us (curl_multi_wakeup). */
static void watch_sleep(etcd_watch_t *w, int ms) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&w->stop)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) break;
        curl_multi_poll(w->multi, NULL, 0, (int)left, NULL);
    }
}

/* One stream: connect, create the watch, read until it ends or stop. */
static void watch_stream(etcd_watch_t *w, int ep, const char *token) {
    etcd_t *c = w->c;
    char url[512], curl_err[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s/v3/watch", c->cfg.endpoints[ep]);
    char *body = etcd_json_watch_create(&w->req, atomic_load(&w->next_rev));
    CURL *e = curl_easy_init();
    struct curl_slist *hdrs = make_headers(token);
    if (!body || !e || !hdrs) {
        snprintf(w->why, sizeof w->why, "out of memory");
        goto out;
    }
    common_opts(c, e, url, hdrs, curl_err);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, watch_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
    etcd_wparser_reset(w->parser);
    STAT_ADD(c, n_requests, 1);
    curl_multi_add_handle(w->multi, e);
    int running = 1;
    CURLcode rc = CURLE_OK;
    while (!atomic_load(&w->stop)) {
        curl_multi_perform(w->multi, &running);
        if (!running) break;
        curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
    }
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left)))
        if (m->msg == CURLMSG_DONE) rc = m->data.result;
    long http = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
    curl_multi_remove_handle(w->multi, e);
    if (w->ended_by == ETCD_WA_NONE && !atomic_load(&w->stop)) {
        w->ended_by = ETCD_WA_RECONNECT;
        if (rc != CURLE_OK)
            snprintf(w->why, sizeof w->why, "%.120s: %.120s", url, curl_err[0] ? curl_err : curl_easy_strerror(rc));
        else
            snprintf(w->why, sizeof w->why, "%.200s: stream ended (HTTP %ld)", url, http);
    }
out:
    if (!w->why[0]) snprintf(w->why, sizeof w->why, "stream ended");
    if (e) curl_easy_cleanup(e);
    free_headers(hdrs);
    free(body);
}

static void *watch_main(void *arg) {
    etcd_watch_t *w = arg;
    etcd_t *c = w->c;
    int backoff = 0, reauths = 0;
    bool first = true;
    while (!atomic_load(&w->stop)) {
        if (!first) {
            STAT_ADD(c, n_watch_reconnects, 1);
            if (backoff) watch_sleep(w, backoff);
            if (atomic_load(&w->stop)) break;
        }
        first = false;
        char token[512] = "", err[256] = "";
        uint64_t gen = 0;
        if (c->cfg.username[0] && get_token(c, token, sizeof token, &gen, err, sizeof err) != ETCD_OK) {
            if (w->cb.status) w->cb.status(w->cb.arg, false, atomic_load(&w->next_rev), err);
            backoff = backoff ? backoff * 2 : WATCH_BACKOFF_MIN_MS;
            if (backoff > WATCH_BACKOFF_MAX_MS) backoff = WATCH_BACKOFF_MAX_MS;
            continue;
        }
        int ep = atomic_load(&c->cur);
        w->ended_by = ETCD_WA_NONE;
        w->established = false;
        w->why[0] = '\0';
        watch_stream(w, ep, token);
        explicit_bzero(token, sizeof token);
        if (atomic_load(&w->stop)) break;
        if (w->established) backoff = 0, reauths = 0;
        int64_t next = atomic_load(&w->next_rev);
        if (w->ended_by == ETCD_WA_COMPACTED) {
            log_warn("etcd watch: %s; resynchronising", w->why);
            if (w->cb.status) w->cb.status(w->cb.arg, false, next, w->why);
            int64_t from = w->cb.compacted ? w->cb.compacted(w->cb.arg, w->compact_rev) : 0;
            atomic_store(&w->next_rev, from >= w->compact_rev ? from : w->compact_rev);
            backoff = 0;
            continue;
        }
        if (w->cb.status) w->cb.status(w->cb.arg, false, next, w->why);
        /* a refused token is always dropped (the next stream authenticates
         * again); only the first two retries in a row skip the backoff */
        bool refused = token_refused(c, w->why, gen);
        if (refused && reauths++ < 2) {
            log_info("etcd watch: token refused; authenticating again");
            backoff = 0;
            continue;
        }
        log_warn("etcd watch: %s; reconnecting from revision %" PRId64, w->why, next);
        if (!refused) failover(c, ep, w->why);
        backoff = backoff ? backoff * 2 : WATCH_BACKOFF_MIN_MS;
        if (backoff > WATCH_BACKOFF_MAX_MS) backoff = WATCH_BACKOFF_MAX_MS;
    }
    return NULL;
}

etcd_watch_t *etcd_watch_start(etcd_t *c, const etcd_watch_req_t *req, const etcd_watch_cb_t *cb, char *err,
                               size_t errsz) {
    KS_ASSERT(c && c->magic == ETCD_MAGIC);
    if (!req->key || !req->key_len) {
        snprintf(err, errsz, "etcd watch: empty key");
        return NULL;
    }
    etcd_watch_t *w = calloc(1, sizeof *w);
    if (!w) goto oom;
    w->keybuf = malloc(req->key_len + (req->range_end ? req->range_end_len : 0) + 1);
    w->parser = etcd_wparser_new(WATCH_MAX_MSG);
    w->multi = curl_multi_init();
    if (!w->keybuf || !w->parser || !w->multi) goto oom;
    w->c = c;
    w->cb = *cb;
    w->req = *req;
    memcpy(w->keybuf, req->key, req->key_len);
    w->req.key = w->keybuf;
    if (req->range_end) {
        memcpy(w->keybuf + req->key_len, req->range_end, req->range_end_len);
        w->req.range_end = w->keybuf + req->key_len;
    }
    atomic_store(&w->next_rev, req->start_revision > 0 ? req->start_revision : 0);
    w->magic = WATCH_MAGIC;
    int rc = pthread_create(&w->thr, NULL, watch_main, w);
    if (rc) {
        snprintf(err, errsz, "etcd watch: pthread_create: %s", strerror(rc));
        w->magic = 0;
        goto fail;
    }
    pthread_setname_np(w->thr, "etcd-watch");
    atomic_fetch_add(&c->nwatches, 1);
    return w;
oom:
    snprintf(err, errsz, "etcd watch: out of memory");
fail:
    if (w) {
        if (w->multi) curl_multi_cleanup(w->multi);
        etcd_wparser_free(w->parser);
        free(w->keybuf);
        free(w);
    }
    return NULL;
}

void etcd_watch_stop(etcd_watch_t *w) {
    if (!w) return;
    KS_ASSERT(w->magic == WATCH_MAGIC);
    atomic_store(&w->stop, true);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thr, NULL);
    atomic_fetch_sub(&w->c->nwatches, 1);
    curl_multi_cleanup(w->multi);
    etcd_wparser_free(w->parser);
    free(w->keybuf);
    w->magic = 0;
    free(w);
}

int64_t etcd_watch_next_revision(etcd_watch_t *w) {
    KS_ASSERT(w->magic == WATCH_MAGIC);
    return atomic_load(&w->next_rev);
}
