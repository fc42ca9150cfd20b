/* api_create_topics.c - CreateTopics (API key 19).
 *
 * Checks each topic the way Kafka's controller does, in the same order: the
 * name, whether it exists, a manual assignment (accepted only when every
 * partition is placed on this node alone) or the partition count and
 * replication factor, then the configs; then topic_create() creates it
 * (or, with validate_only, only checks). Replication factor 1 (or -1, the
 * default) is the only one accepted: brokers do not replicate, the object
 * store does. A name given twice in one request is refused for all of its
 * entries with one INVALID_REQUEST result, as Kafka does.
 *
 * v5+ results carry the partition count, the replication factor and every
 * config of the topic (from the one table in topic_config.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "msg_create_topics.h"
#include "topic_config.h"

enum { CONFIG_SOURCE_TOPIC = 1, CONFIG_SOURCE_DEFAULT = 5 }; /* DescribeConfigs ConfigSource ids */

/* A message formatted into the request arena (lives as long as the request). */
static kstr_t arena_fmt(karena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kstr_t arena_fmt(karena_t *a, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return KSTR_NULL;
    if ((size_t)n >= sizeof tmp) n = (int)sizeof tmp - 1;
    char *p = karena_alloc(a, (size_t)n + 1);
    if (!p) return KSTR_NULL;
    memcpy(p, tmp, (size_t)n + 1);
    return (kstr_t){p, n};
}

/* Sorting keys to find repeated names. */
typedef struct ct_key {
    kstr_t k;
    int32_t i;
} ct_key_t;

static int ct_key_cmp(const void *a, const void *b) {
    const ct_key_t *x = a, *y = b;
    int32_t n = x->k.len < y->k.len ? x->k.len : y->k.len;
    int c = n > 0 ? memcmp(x->k.p, y->k.p, (size_t)n) : 0;
    if (!c) c = (x->k.len > y->k.len) - (x->k.len < y->k.len);
    if (!c) c = (x->i > y->i) - (x->i < y->i);
    return c;
}

/* For each topic: rep[i] = 0 when its name is unique, 1 for the first entry of
 * a repeated name, 2 for its later entries. Returns -1 out of memory. */
static int mark_repeats(const karray_t *topics, uint8_t *rep, karena_t *a) {
    int32_t n = topics->count;
    if (n < 2) return 0;
    ct_key_t *s = karena_alloc(a, sizeof *s * (size_t)n);
    if (!s) return -1;
    for (int32_t i = 0; i < n; i++) s[i] = (ct_key_t){KARR_AT(*topics, create_topics_req_topic_t, i)->name, i};
    qsort(s, (size_t)n, sizeof *s, ct_key_cmp);
    for (int32_t j = 1; j < n; j++) {
        if (!kstr_eq(s[j].k, s[j - 1].k)) continue;
        if (!rep[s[j - 1].i]) rep[s[j - 1].i] = 1; /* sorted by index within equal names: j-1 is first */
        rep[s[j].i] = 2;
    }
    return 0;
}

/* Collects the configs of a topic as CreateTopics v5+ reports them. */
typedef struct cfg_list {
    karena_t *arena;
    const karray_t *asked;             /* create_topics_req_config_t: what the request set */
    create_topics_resp_config_t *items; /* NULL while counting */
    int32_t n;
    bool oom;
} cfg_list_t;

static kstr_t arena_str(karena_t *a, const char *s) {
    size_t n = strlen(s);
    char *p = karena_alloc(a, n + 1);
    if (!p) return KSTR_NULL;
    memcpy(p, s, n + 1);
    return (kstr_t){p, (int32_t)n};
}

static void cfg_emit(void *arg, const char *name, const char *value, bool is_default) {
    cfg_list_t *l = arg;
    if (l->items) {
        bool set = false;
        for (int32_t i = 0; i < l->asked->count && !set; i++) {
            const create_topics_req_config_t *c = KARR_AT(*l->asked, create_topics_req_config_t, i);
            set = c->value.len >= 0 && kstr_eq_c(c->name, name);
        }
        create_topics_resp_config_t *o = &l->items[l->n];
        o->name = kstr_c(name); /* the table's names are static */
        o->value = arena_str(l->arena, value);
        if (o->value.len < 0) l->oom = true;
        o->read_only = false;
        o->config_source = set ? CONFIG_SOURCE_TOPIC : CONFIG_SOURCE_DEFAULT;
        o->is_sensitive = false;
    }
    l->n++;
}

/* Fills out->configs from cfg. Returns -1 out of memory. */
static int list_configs(kreq_t *req, const topic_config_t *cfg, const karray_t *asked,
                        create_topics_resp_topic_t *out) {
    cfg_list_t l = {.arena = &req->arena, .asked = asked};
    topic_config_describe(cfg, cfg_emit, &l);
    l.items = KARR_NEW(&req->arena, out->configs, create_topics_resp_config_t, l.n);
    if (!l.items) return -1;
    int32_t count = l.n;
    l.n = 0;
    topic_config_describe(cfg, cfg_emit, &l);
    KS_ASSERT(l.n == count);
    return l.oom ? -1 : 0;
}

/* Checks a manual assignment: partitions 0..n-1, each exactly once, each on
 * this node alone. Returns KERR_NONE or an error with *msg set. */
static int16_t check_assignments(kreq_t *req, const create_topics_req_topic_t *in, kstr_t *msg) {
    int32_t n = in->assignments.count;
    int32_t node = g_broker.cfg.node_id;
    if (in->replication_factor != -1) {
        *msg = KSTR_LIT("A manual partition assignment was specified, but replication factor was not set to -1.");
        return KERR_INVALID_REQUEST;
    }
    if (in->num_partitions != -1) {
        *msg = KSTR_LIT("A manual partition assignment was specified, but numPartitions was not set to -1.");
        return KERR_INVALID_REQUEST;
    }
    bool *seen = karena_alloc(&req->arena, (size_t)n);
    if (!seen) { *msg = KSTR_LIT("Out of memory."); return KERR_UNKNOWN_SERVER_ERROR; }
    for (int32_t i = 0; i < n; i++) {
        const create_topics_req_assignment_t *as = KARR_AT(in->assignments, create_topics_req_assignment_t, i);
        int32_t p = as->partition_index;
        if (p < 0 || p >= n) {
            *msg = KSTR_LIT("partitions should be a consecutive 0-based integer sequence");
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        if (seen[p]) {
            *msg = arena_fmt(&req->arena, "Found multiple manual partition assignments for partition %d", p);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        seen[p] = true;
        if (as->broker_ids.count != 1 || *KARR_AT(as->broker_ids, int32_t, 0) != node) {
            *msg = arena_fmt(&req->arena,
                             "Partition %d must be assigned to broker %d alone: this cluster has one broker, "
                             "and replication is done by the object store.", p, node);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    }
    return KERR_NONE;
}

/* Handles one topic; fills out (name, error and, on success, the v5+ details).
 * Returns -1 out of memory. */
static int create_one(kreq_t *req, bool validate_only, const create_topics_req_topic_t *in,
                      create_topics_resp_topic_t *out) {
    int v = req->hdr.api_version;
    kstr_t msg = KSTR_NULL;
    int16_t err = KERR_NONE;
    int32_t npart = 0;

    if (!kafka_topic_name_valid(in->name)) {
        err = KERR_INVALID_TOPIC_EXCEPTION;
        msg = arena_fmt(&req->arena,
                        "Topic name \"%.*s\" is illegal: it must be 1 to 249 characters of ASCII "
                        "alphanumerics, '.', '_' and '-', and not \".\" or \"..\".",
                        in->name.len > 255 ? 255 : in->name.len, in->name.p);
        goto fail;
    }
    if (topic_find(in->name)) {
        err = KERR_TOPIC_ALREADY_EXISTS;
        msg = arena_fmt(&req->arena, "Topic '%.*s' already exists.", in->name.len, in->name.p);
        goto fail;
    }
    if (in->assignments.count > 0) {
        err = check_assignments(req, in, &msg);
        if (err) goto fail;
        npart = in->assignments.count;
    } else {
        if (in->replication_factor < -1 || in->replication_factor == 0) {
            err = KERR_INVALID_REPLICATION_FACTOR;
            msg = KSTR_LIT("Replication factor must be larger than 0, or -1 to use the default value.");
            goto fail;
        }
        if (in->replication_factor > 1) {
            err = KERR_INVALID_REPLICATION_FACTOR;
            msg = arena_fmt(&req->arena,
                            "Unable to replicate the partition %d time(s): this broker keeps data in the object "
                            "store, which does the replication. Use replication factor 1 or -1.",
                            in->replication_factor);
            goto fail;
        }
        if (in->num_partitions < -1 || in->num_partitions == 0) {
            err = KERR_INVALID_PARTITIONS;
            msg = KSTR_LIT("Number of partitions was set to an invalid non-positive value.");
            goto fail;
        }
        npart = in->num_partitions == -1 ? g_broker.cfg.auto_create_partitions : in->num_partitions;
    }

    /* Configs: checked here too, to report the effective ones when only validating. */
    int32_t nc = in->configs.count;
    kstr_t *names = karena_alloc(&req->arena, sizeof *names * (size_t)(nc ? nc : 1));
    kstr_t *values = karena_alloc(&req->arena, sizeof *values * (size_t)(nc ? nc : 1));
    if (!names || !values) return -1;
    topic_config_t cfg;
    topic_config_defaults(&cfg);
    for (int32_t i = 0; i < nc; i++) {
        const create_topics_req_config_t *c = KARR_AT(in->configs, create_topics_req_config_t, i);
        names[i] = c->name;
        values[i] = c->value;
        const char *cmsg = NULL;
        err = topic_config_set(&cfg, c->name, c->value, &cmsg);
        if (err) {
            msg = cmsg ? arena_str(&req->arena, cmsg) : KSTR_NULL;
            goto fail;
        }
    }

    topic_t *t = NULL;
    const char *cmsg = NULL;
    err = topic_create(in->name, npart, names, values, (int)nc, validate_only, &t, &cmsg);
    if (err) {
        msg = cmsg ? arena_str(&req->arena, cmsg) : KSTR_NULL;
        goto fail;
    }
    out->error_code = KERR_NONE;
    out->error_message = KSTR_NULL;
    if (t) {
        KS_ASSERT(t->magic == TOPIC_MAGIC);
        out->topic_id = t->id;
        npart = t->npartitions;
    }
    if (v >= 5) {
        out->num_partitions = npart;
        out->replication_factor = 1;
        if (list_configs(req, t ? &t->config : &cfg, &in->configs, out)) return -1;
    }
    return 0;

fail:
    out->error_code = err;
    out->error_message = msg.len >= 0 ? msg : kstr_c(kafka_err_name(err));
    return 0;
}

kh_result_t api_create_topics(kreq_t *req) {
    int v = req->hdr.api_version;
    create_topics_req_t cr;
    if (kmsg_decode(&create_topics_req_schema, v, req->flexible, &req->body, &cr, &req->arena)) {
        log_warn("create_topics: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }

    create_topics_resp_t resp;
    kmsg_defaults(&create_topics_resp_schema, &resp);
    int32_t n = cr.topics.count;
    uint8_t *rep = karena_alloc(&req->arena, (size_t)(n ? n : 1));
    create_topics_resp_topic_t *out = KARR_NEW(&req->arena, resp.topics, create_topics_resp_topic_t, n);
    if (!rep || !out || mark_repeats(&cr.topics, rep, &req->arena)) goto oom;

    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (rep[i] == 2) continue;
        const create_topics_req_topic_t *in = KARR_AT(cr.topics, create_topics_req_topic_t, i);
        create_topics_resp_topic_t *o = &out[k++];
        /* Kafka's defaults for a result: no id, -1 counts, no configs (empty, not null). */
        *o = (create_topics_resp_topic_t){
            .name = in->name,
            .error_message = KSTR_NULL,
            .num_partitions = -1,
            .replication_factor = -1,
            .configs = {NULL, 0},
        };
        if (rep[i] == 1) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = KSTR_LIT("Duplicate topic name.");
            continue;
        }
        if (create_one(req, cr.validate_only, in, o)) goto oom;
        if (o->error_code) /* successes are logged by topic_create() */
            log_info("create_topics: %.*s refused: %s: %.*s", in->name.len > 0 ? in->name.len : 0,
                     in->name.len > 0 ? in->name.p : "", kafka_err_name(o->error_code),
                     o->error_message.len > 0 ? o->error_message.len : 0,
                     o->error_message.len > 0 ? o->error_message.p : "");
    }
    resp.topics.count = k;
    return kreq_respond(req, &create_topics_resp_schema, &resp);

oom:
    log_error("create_topics: out of request memory answering a v%d request, closing", v);
    return KH_CLOSE;
}
