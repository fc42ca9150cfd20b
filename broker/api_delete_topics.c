/* api_delete_topics.c - DeleteTopics (API key 20).
 *
 * v0-5 name the topics; v6 names each topic either by name or by id (not
 * both). Unknown names answer UNKNOWN_TOPIC_OR_PARTITION, unknown ids
 * UNKNOWN_TOPIC_ID. A name (or id) given twice is refused with one
 * INVALID_REQUEST result and not deleted, as Kafka's controller does.
 * Deletion itself is topic_delete().
 */
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "msg_delete_topics.h"

/* One topic to delete, as the request named it. */
typedef struct dt_item {
    kstr_t name;  /* null when named by id */
    kuuid_t id;   /* zero when named by name */
    kstr_t key;   /* name, or the id's 16 bytes; null when neither/both (invalid) */
    bool by_id;
    uint8_t rep;  /* 0 unique, 1 first of a repeated key, 2 a later repeat */
} dt_item_t;

typedef struct dt_key {
    const dt_item_t *it;
    int32_t i;
} dt_key_t;

static int dt_key_cmp(const void *a, const void *b) {
    const dt_key_t *x = a, *y = b;
    if (x->it->by_id != y->it->by_id) return x->it->by_id ? 1 : -1;
    kstr_t p = x->it->key, q = y->it->key;
    int32_t n = p.len < q.len ? p.len : q.len;
    int c = n > 0 ? memcmp(p.p, q.p, (size_t)n) : 0;
    if (!c) c = (p.len > q.len) - (p.len < q.len);
    if (!c) c = (x->i > y->i) - (x->i < y->i);
    return c;
}

/* Marks repeated keys (names and ids apart). Returns -1 out of memory. */
static int mark_repeats(dt_item_t *items, int32_t n, karena_t *a) {
    if (n < 2) return 0;
    dt_key_t *s = karena_alloc(a, sizeof *s * (size_t)n);
    if (!s) return -1;
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (items[i].key.len >= 0) s[m++] = (dt_key_t){&items[i], i};
    qsort(s, (size_t)m, sizeof *s, dt_key_cmp);
    for (int32_t j = 1; j < m; j++) {
        if (s[j].it->by_id != s[j - 1].it->by_id || !kstr_eq(s[j].it->key, s[j - 1].it->key)) continue;
        if (!items[s[j - 1].i].rep) items[s[j - 1].i].rep = 1;
        items[s[j].i].rep = 2;
    }
    return 0;
}

static bool uuid_zero(const kuuid_t *id) {
    static const kuuid_t z;
    return memcmp(id, &z, sizeof z) == 0;
}

static topic_t *topic_find_id(const kuuid_t *id) {
    for (topic_t *t = topics_first(); t; t = topics_next(t))
        if (memcmp(&t->id, id, sizeof *id) == 0) return t;
    return NULL;
}

/* Copies a topic's name into the arena: the topic is gone once deleted. */
static kstr_t name_copy(karena_t *a, const topic_t *t) {
    size_t n = strnlen(t->name, sizeof t->name);
    char *p = karena_alloc(a, n + 1);
    if (!p) return KSTR_NULL;
    memcpy(p, t->name, n);
    return (kstr_t){p, (int32_t)n};
}

/* Deletes one topic and fills its result. Returns -1 out of memory. */
static int delete_one(kreq_t *req, const dt_item_t *it, delete_topics_resp_topic_t *o) {
    o->name = it->name;
    o->topic_id = it->id;
    o->error_code = KERR_NONE;
    o->error_message = KSTR_NULL;
    if (it->key.len < 0) {
        o->error_code = KERR_INVALID_REQUEST;
        o->error_message = it->name.len >= 0 ? KSTR_LIT("You may not specify both topic name and topic id.")
                                             : KSTR_LIT("Neither topic name nor id were specified.");
        return 0;
    }
    if (it->rep) {
        o->error_code = KERR_INVALID_REQUEST;
        o->error_message = it->by_id ? KSTR_LIT("Duplicate topic id.") : KSTR_LIT("Duplicate topic name.");
        return 0;
    }
    topic_t *t = it->by_id ? topic_find_id(&it->id) : topic_find(it->name);
    if (!t) {
        o->error_code = it->by_id ? KERR_UNKNOWN_TOPIC_ID : KERR_UNKNOWN_TOPIC_OR_PARTITION;
        o->error_message = it->by_id ? KSTR_LIT("This server does not host this topic ID.")
                                     : KSTR_LIT("This server does not host this topic-partition.");
        return 0;
    }
    KS_ASSERT(t->magic == TOPIC_MAGIC);
    kstr_t name = name_copy(&req->arena, t);
    if (name.len < 0) return -1;
    o->name = name;
    o->topic_id = t->id;
    int16_t err = topic_delete(name); /* t is freed from here on; topic_delete() logs */
    if (err) {
        o->error_code = err;
        o->error_message = kstr_c(kafka_err_name(err));
    }
    return 0;
}

kh_result_t api_delete_topics(kreq_t *req) {
    int v = req->hdr.api_version;
    delete_topics_req_t dr;
    if (kmsg_decode(&delete_topics_req_schema, v, req->flexible, &req->body, &dr, &req->arena)) {
        log_warn("delete_topics: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }

    int32_t n = v >= 6 ? dr.topics.count : dr.topic_names.count;
    dt_item_t *items = karena_alloc(&req->arena, sizeof *items * (size_t)(n ? n : 1));
    if (!items) goto oom;
    for (int32_t i = 0; i < n; i++) {
        dt_item_t *it = &items[i];
        if (v >= 6) {
            const delete_topics_req_topic_t *rt = KARR_AT(dr.topics, delete_topics_req_topic_t, i);
            it->name = rt->name;
            it->id = rt->topic_id;
        } else {
            it->name = *KARR_AT(dr.topic_names, kstr_t, i);
        }
        bool has_id = !uuid_zero(&it->id), has_name = it->name.len >= 0;
        it->by_id = has_id && !has_name;
        if (has_id == has_name) it->key = KSTR_NULL; /* both, or neither: refused */
        else it->key = has_id ? (kstr_t){(const char *)it->id.b, 16} : it->name;
    }
    if (mark_repeats(items, n, &req->arena)) goto oom;

    delete_topics_resp_t resp;
    kmsg_defaults(&delete_topics_resp_schema, &resp);
    delete_topics_resp_topic_t *out = KARR_NEW(&req->arena, resp.responses, delete_topics_resp_topic_t, n);
    if (!out) goto oom;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (items[i].rep == 2) continue;
        if (delete_one(req, &items[i], &out[k++])) goto oom;
    }
    resp.responses.count = k;
    return kreq_respond(req, &delete_topics_resp_schema, &resp);

oom:
    log_error("delete_topics: out of request memory answering a v%d request, closing", v);
    return KH_CLOSE;
}
