/* api_metadata.c - Metadata (API key 3): this broker, the cluster id and the topics.
 *
 * Brokers are the live ones (cluster.c; a single node lists itself), and
 * each partition names its leader as its only replica: the data itself is
 * replicated by the object store, not by brokers. A partition whose leader
 * is not known yet (being claimed after a broker died) answers
 * LEADER_NOT_AVAILABLE, which clients retry. A null topic
 * list (or, in v0, an empty one) asks for every topic. Topics asked for by
 * name that do not exist are created when the request allows it (v4+) and
 * the broker's auto-create setting does (checked inside topic_auto_create);
 * v12 may ask for topics by id instead. Repeated topics are answered once,
 * as Kafka does (it treats the request as a set).
 */
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cluster.h"
#include "msg_metadata.h"

/* Authorized operations with no authorizer: everything Kafka supports on the
 * resource (AclEntry.supportedOperations), as a bitfield of AclOperation codes. */
#define OPS_TOPIC ((1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11))
#define OPS_CLUSTER ((1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12))
#define OPS_NOT_ASKED INT32_MIN

typedef struct md_ctx {
    kreq_t *req;
    int32_t topic_ops;
} md_ctx_t;

/* Sorting keys to find repeats. A key is a name, or the 16 bytes of an id. */
typedef struct md_key {
    kstr_t k;
    int32_t i;
} md_key_t;

static int md_key_cmp(const void *a, const void *b) {
    const md_key_t *x = a, *y = b;
    int32_t n = x->k.len < y->k.len ? x->k.len : y->k.len;
    int c = n > 0 ? memcmp(x->k.p, y->k.p, (size_t)n) : 0;
    if (!c) c = (x->k.len > y->k.len) - (x->k.len < y->k.len);
    if (!c) c = (x->i > y->i) - (x->i < y->i);
    return c;
}

/* Sets repeat[i] for every key equal to an earlier one. Null keys (len < 0)
 * never repeat. Returns -1 out of memory. */
static int mark_repeats(const kstr_t *keys, int32_t n, bool *repeat, karena_t *a) {
    if (n < 2) return 0;
    md_key_t *s = karena_alloc(a, sizeof *s * (size_t)n);
    if (!s) return -1;
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (keys[i].len >= 0) s[m++] = (md_key_t){keys[i], i};
    qsort(s, (size_t)m, sizeof *s, md_key_cmp);
    for (int32_t j = 1; j < m; j++)
        if (kstr_eq(s[j].k, s[j - 1].k)) repeat[s[j].i] = true;
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

/* A topic that could not be described: an error and no partitions. */
static void fill_error(md_ctx_t *c, metadata_resp_topic_t *rt, kstr_t name, const kuuid_t *id, int16_t err) {
    rt->error_code = err;
    rt->name = name;
    if (id) rt->topic_id = *id;
    rt->is_internal = false;
    rt->partitions = (karray_t){NULL, 0};
    rt->topic_authorized_operations = err == KERR_UNKNOWN_TOPIC_ID ? OPS_NOT_ASKED : c->topic_ops;
}

/* Describes topic t. Returns -1 out of memory. */
static int fill_topic(md_ctx_t *c, metadata_resp_topic_t *rt, const topic_t *t) {
    KS_ASSERT(t->magic == TOPIC_MAGIC);
    rt->error_code = KERR_NONE;
    rt->name = kstr_c(t->name);
    rt->topic_id = t->id;
    rt->is_internal = false;
    rt->topic_authorized_operations = c->topic_ops;
    metadata_resp_partition_t *ps = KARR_NEW(&c->req->arena, rt->partitions, metadata_resp_partition_t, t->npartitions);
    int32_t *leaders = karena_alloc(&c->req->arena, sizeof *leaders * (size_t)(t->npartitions ? t->npartitions : 1));
    if (!ps || !leaders) return -1;
    for (int32_t i = 0; i < t->npartitions; i++) {
        const partition_t *p = &t->partitions[i];
        leaders[i] = p->leader_id;
        bool known = p->leader_id >= 0;
        ps[i] = (metadata_resp_partition_t){
            .error_code = known ? KERR_NONE : KERR_LEADER_NOT_AVAILABLE,
            .partition_index = p->index,
            .leader_id = p->leader_id,
            .leader_epoch = p->leader_epoch,
            .replica_nodes = {known ? &leaders[i] : NULL, known ? 1 : 0},
            .isr_nodes = {known ? &leaders[i] : NULL, known ? 1 : 0},
            .offline_replicas = {NULL, 0},
        };
    }
    return 0;
}

/* Describes one requested topic (by name, or in v12 by id). */
static int describe_requested(md_ctx_t *c, const metadata_req_t *mr, const metadata_req_topic_t *rq,
                              metadata_resp_topic_t *rt) {
    int v = c->req->hdr.api_version;
    bool by_id = !uuid_zero(&rq->topic_id);

    if (v < 12 && (by_id || rq->name.len < 0)) {
        /* Versions 10 and 11 carry ids but Kafka never served them. */
        fill_error(c, rt, rq->name.len < 0 ? KSTR_LIT("") : rq->name, NULL, KERR_INVALID_REQUEST);
        return 0;
    }
    if (by_id) {
        topic_t *t = topic_find_id(&rq->topic_id);
        if (!t) { fill_error(c, rt, KSTR_NULL, &rq->topic_id, KERR_UNKNOWN_TOPIC_ID); return 0; }
        return fill_topic(c, rt, t);
    }
    if (rq->name.len < 0) { fill_error(c, rt, KSTR_NULL, NULL, KERR_INVALID_REQUEST); return 0; }
    if (!kafka_topic_name_valid(rq->name)) {
        fill_error(c, rt, rq->name, NULL, KERR_INVALID_TOPIC_EXCEPTION);
        return 0;
    }
    topic_t *t = topic_find(rq->name);
    if (!t) {
        int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        if (v < 4 || mr->allow_auto_topic_creation) {
            int16_t aerr = KERR_NONE;
            t = topic_auto_create(rq->name, &aerr);
            if (!t && aerr != KERR_NONE) err = aerr;
        }
        if (!t) { fill_error(c, rt, rq->name, NULL, err); return 0; }
    }
    return fill_topic(c, rt, t);
}

kh_result_t api_metadata(kreq_t *req) {
    int v = req->hdr.api_version;
    metadata_req_t mr;
    if (kmsg_decode(&metadata_req_schema, v, req->flexible, &req->body, &mr, &req->arena)) {
        log_warn("metadata: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }

    md_ctx_t c = {.req = req};
    c.topic_ops = v >= 8 && mr.include_topic_authorized_operations ? OPS_TOPIC : OPS_NOT_ASKED;

    metadata_resp_t resp;
    kmsg_defaults(&metadata_resp_schema, &resp);
    const cluster_broker_t *live;
    int nlive = cluster_brokers(&live);
    metadata_resp_broker_t *b = KARR_NEW(&req->arena, resp.brokers, metadata_resp_broker_t, nlive);
    if (!b && nlive) goto oom;
    resp.controller_id = nlive ? live[0].id : g_broker.cfg.node_id; /* the lowest live id: Kafka clients want one */
    for (int i = 0; i < nlive; i++) {
        b[i].node_id = live[i].id;
        b[i].host = kstr_c(live[i].host);
        b[i].port = live[i].port;
        b[i].rack = live[i].rack[0] ? kstr_c(live[i].rack) : KSTR_NULL;
        if (live[i].id < resp.controller_id) resp.controller_id = live[i].id;
    }
    resp.cluster_id = g_broker.cfg.cluster_id[0] ? kstr_c(g_broker.cfg.cluster_id) : KSTR_NULL;
    resp.cluster_authorized_operations =
        v >= 8 && v <= 10 && mr.include_cluster_authorized_operations ? OPS_CLUSTER : OPS_NOT_ASKED;

    bool all = mr.topics.count < 0 || (v == 0 && mr.topics.count == 0);
    if (all) {
        int n = topics_count();
        metadata_resp_topic_t *rt = KARR_NEW(&req->arena, resp.topics, metadata_resp_topic_t, n);
        if (!rt) goto oom;
        int i = 0;
        for (topic_t *t = topics_first(); t && i < n; t = topics_next(t), i++)
            if (fill_topic(&c, &rt[i], t)) goto oom;
        resp.topics.count = i;
    } else {
        int32_t n = mr.topics.count;
        /* Repeats are found among names and among ids apart. */
        kstr_t *names = karena_alloc(&req->arena, sizeof *names * (size_t)(n ? n : 1));
        kstr_t *ids = karena_alloc(&req->arena, sizeof *ids * (size_t)(n ? n : 1));
        bool *repeat = karena_alloc(&req->arena, sizeof *repeat * (size_t)(n ? n : 1));
        metadata_resp_topic_t *rt = KARR_NEW(&req->arena, resp.topics, metadata_resp_topic_t, n);
        if (!names || !ids || !repeat || !rt) goto oom;
        for (int32_t i = 0; i < n; i++) {
            const metadata_req_topic_t *rq = KARR_AT(mr.topics, metadata_req_topic_t, i);
            bool by_id = !uuid_zero(&rq->topic_id);
            names[i] = by_id ? KSTR_NULL : rq->name;
            ids[i] = by_id ? (kstr_t){(const char *)rq->topic_id.b, 16} : KSTR_NULL;
        }
        if (mark_repeats(names, n, repeat, &req->arena) || mark_repeats(ids, n, repeat, &req->arena)) goto oom;
        int32_t out = 0;
        for (int32_t i = 0; i < n; i++) {
            if (repeat[i]) continue;
            if (describe_requested(&c, &mr, KARR_AT(mr.topics, metadata_req_topic_t, i), &rt[out])) goto oom;
            out++;
        }
        resp.topics.count = out;
    }
    return kreq_respond(req, &metadata_resp_schema, &resp);

oom:
    log_error("metadata: out of request memory answering a v%d request, closing", v);
    return KH_CLOSE;
}
