/* api_create_partitions.c - CreatePartitions (API key 37, versions 0-3).
 *
 * Grows a topic to the requested partition count (topic_add_partitions:
 * the new count is written to the topics journal and reaches the flusher in
 * the next TOPIC frame). As in Kafka: a topic named twice is refused with
 * INVALID_REQUEST for every entry, an unknown topic gets
 * UNKNOWN_TOPIC_OR_PARTITION, a count that is not above the current one
 * INVALID_PARTITIONS. Manual assignments must give one list per new
 * partition naming this broker alone (there is one broker, and replication
 * is the object store's), else INVALID_REPLICA_ASSIGNMENT. validate_only
 * checks everything and changes nothing. New partitions start empty at
 * offset 0 with leader epoch 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "msg_create_partitions.h"

#define KS_ARGS(s) ((s).len > 0 ? ((s).len > 255 ? 255 : (int)(s).len) : 0), ((s).len > 0 ? (s).p : "")

static kstr_t arena_text(karena_t *a, const char *s) {
    size_t n = strlen(s);
    char *p = karena_alloc(a, n + 1);
    if (!p) return KSTR_NULL;
    memcpy(p, s, n + 1);
    return (kstr_t){p, (int32_t)n};
}

/* Sorting keys to find repeated names. */
typedef struct cp_key {
    kstr_t k;
    int32_t i;
} cp_key_t;

static int cp_key_cmp(const void *a, const void *b) {
    const cp_key_t *x = a, *y = b;
    int32_t n = x->k.len < y->k.len ? x->k.len : y->k.len;
    int c = n > 0 ? memcmp(x->k.p, y->k.p, (size_t)n) : 0;
    if (!c) c = (x->k.len > y->k.len) - (x->k.len < y->k.len);
    return c;
}

/* rep[i] = whether topic i's name is in the request more than once.
 * Returns -1 out of memory. */
static int mark_repeats(const karray_t *topics, bool *rep, karena_t *a) {
    int32_t n = topics->count;
    if (n < 2) return 0;
    cp_key_t *s = karena_alloc(a, sizeof *s * (size_t)n);
    if (!s) return -1;
    for (int32_t i = 0; i < n; i++) s[i] = (cp_key_t){KARR_AT(*topics, create_partitions_req_topic_t, i)->name, i};
    qsort(s, (size_t)n, sizeof *s, cp_key_cmp);
    for (int32_t j = 1; j < n; j++)
        if (kstr_eq(s[j].k, s[j - 1].k)) rep[s[j].i] = rep[s[j - 1].i] = true;
    return 0;
}

static int16_t check_assignments(kreq_t *req, const create_partitions_req_topic_t *in, const topic_t *t,
                                 kstr_t *msg) {
    char tmp[256];
    int32_t added = in->count - t->npartitions;
    if (in->assignments.count != added) {
        snprintf(tmp, sizeof tmp, "Increasing the number of partitions by %d but %d assignments provided.", added,
                 in->assignments.count);
        *msg = arena_text(&req->arena, tmp);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    for (int32_t i = 0; i < in->assignments.count; i++) {
        const create_partitions_req_assignment_t *as = KARR_AT(in->assignments, create_partitions_req_assignment_t, i);
        if (as->broker_ids.count != 1 || *KARR_AT(as->broker_ids, int32_t, 0) != g_broker.cfg.node_id) {
            snprintf(tmp, sizeof tmp,
                     "Partition %d must be assigned to broker %d alone: this cluster has one broker, and "
                     "replication is done by the object store.", t->npartitions + i, g_broker.cfg.node_id);
            *msg = arena_text(&req->arena, tmp);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    }
    return KERR_NONE;
}

static void create_one(kreq_t *req, bool validate_only, const create_partitions_req_topic_t *in,
                       create_partitions_resp_result_t *out) {
    topic_t *t = topic_find(in->name);
    if (!t) {
        char tmp[320];
        snprintf(tmp, sizeof tmp, "The topic '%.*s' does not exist.", KS_ARGS(in->name));
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        out->error_message = arena_text(&req->arena, tmp);
        return;
    }
    /* The count first (Kafka checks it before the assignments). */
    const char *msg = NULL;
    out->error_code = topic_add_partitions(t, in->count, true, &msg);
    if (!out->error_code && in->assignments.count >= 0)
        out->error_code = check_assignments(req, in, t, &out->error_message);
    if (!out->error_code && !validate_only) out->error_code = topic_add_partitions(t, in->count, false, &msg);
    if (out->error_code && msg) out->error_message = arena_text(&req->arena, msg);
}

kh_result_t api_create_partitions(kreq_t *req) {
    int v = req->hdr.api_version;
    create_partitions_req_t in;
    if (kmsg_decode(&create_partitions_req_schema, v, req->flexible, &req->body, &in, &req->arena)) {
        log_warn("create_partitions: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }
    create_partitions_resp_t resp;
    kmsg_defaults(&create_partitions_resp_schema, &resp);
    int32_t n = in.topics.count > 0 ? in.topics.count : 0;
    create_partitions_resp_result_t *out = KARR_NEW(&req->arena, resp.results, create_partitions_resp_result_t, n);
    bool *rep = karena_alloc(&req->arena, (size_t)(n ? n : 1));
    if (!out || !rep || mark_repeats(&in.topics, rep, &req->arena)) {
        log_error("create_partitions: out of request memory answering a v%d request, closing", v);
        return KH_CLOSE;
    }
    for (int32_t i = 0; i < n; i++) {
        const create_partitions_req_topic_t *r = KARR_AT(in.topics, create_partitions_req_topic_t, i);
        create_partitions_resp_result_t *o = &out[i];
        *o = (create_partitions_resp_result_t){.name = r->name, .error_code = KERR_NONE, .error_message = KSTR_NULL};
        if (rep[i]) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = KSTR_LIT("Duplicate topic in request.");
        } else {
            create_one(req, in.validate_only, r, o);
        }
        if (o->error_code)
            log_info("create_partitions: %.*s refused: %s: %.*s", KS_ARGS(r->name), kafka_err_name(o->error_code),
                     KS_ARGS(o->error_message));
    }
    return kreq_respond(req, &create_partitions_resp_schema, &resp);
}
