/* admin.c - kafscale-ctl's topics, groups and configs commands, through the
 * Kafka protocol (kclient.c) so that they work against any broker:
 *
 *   topics list | describe [TOPIC...] | create TOPIC [-p N] [-c k=v]... | delete TOPIC...
 *   groups list | describe GROUP...            (lag = end offset - committed offset)
 *   configs describe topic|broker NAME
 *   configs alter topic|broker NAME k=v... [--delete k]...
 *
 * Decoded answers are views into the client's last response: what must
 * outlive the next request is copied first.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_alter_configs.h"
#include "msg_create_topics.h"
#include "msg_delete_topics.h"
#include "msg_describe_configs.h"
#include "msg_describe_groups.h"
#include "msg_find_coordinator.h"
#include "msg_incremental_alter_configs.h"
#include "msg_list_groups.h"
#include "msg_list_offsets.h"
#include "msg_metadata.h"
#include "msg_offset_fetch.h"

/* First flexible version of each API we send (Kafka's message definitions). */
enum {
    FLEX_METADATA = 9, FLEX_CREATE_TOPICS = 5, FLEX_DELETE_TOPICS = 4, FLEX_LIST_OFFSETS = 6,
    FLEX_LIST_GROUPS = 3, FLEX_DESCRIBE_GROUPS = 5, FLEX_OFFSET_FETCH = 6, FLEX_FIND_COORDINATOR = 3,
    FLEX_DESCRIBE_CONFIGS = 4, FLEX_ALTER_CONFIGS = 2, FLEX_INCREMENTAL_ALTER_CONFIGS = 1,
};

static int kafka_connect(kc_t *c) {
    char addr[300];
    if (g_opts.bootstrap) snprintf(addr, sizeof addr, "%s", g_opts.bootstrap);
    else if (control_kafka_address(addr, sizeof addr) != 0) snprintf(addr, sizeof addr, "127.0.0.1:9092");
    return kc_open(c, addr);
}

static const char *err_name(int16_t e) {
    const char *n = kafka_err_name(e);
    return n ? n : "UNKNOWN_ERROR";
}

/* ---- offsets ---- */

typedef struct poff {
    char topic[250];
    int32_t partition;
    int64_t committed, earliest, latest;
    int16_t err;
} poff_t;

/* Fills earliest/latest of every entry (ListOffsets, one request per kind). */
static int list_offsets(kc_t *c, poff_t *p, size_t n, bool earliest_too) {
    int v = kc_version(c, KAPI_LIST_OFFSETS, "ListOffsets", 1, 7);
    if (v < 0) return -1;
    for (int pass = earliest_too ? 0 : 1; pass < 2; pass++) {
        kc_reset(c);
        list_offsets_req_t req;
        kmsg_defaults(&list_offsets_req_schema, &req);
        req.replica_id = -1;
        req.isolation_level = 0;
        /* one topic entry per partition: simple, and Kafka accepts repeated topic names */
        list_offsets_req_topic_t *ts = KARR_NEW(&c->arena, req.topics, list_offsets_req_topic_t, (int32_t)n);
        if (!ts && n) return -1;
        for (size_t i = 0; i < n; i++) {
            ts[i].name = kstr_c(p[i].topic);
            list_offsets_req_part_t *pp = KARR_NEW(&c->arena, ts[i].partitions, list_offsets_req_part_t, 1);
            if (!pp) return -1;
            pp->partition_index = p[i].partition;
            pp->current_leader_epoch = -1;
            pp->timestamp = pass == 0 ? LIST_OFFSETS_EARLIEST : LIST_OFFSETS_LATEST;
            pp->max_num_offsets = 1;
        }
        list_offsets_resp_t resp;
        if (kc_call(c, KAPI_LIST_OFFSETS, v, FLEX_LIST_OFFSETS, &list_offsets_req_schema, &req, &list_offsets_resp_schema,
                    &resp))
            return -1;
        for (int32_t i = 0; i < resp.topics.count; i++) {
            list_offsets_resp_topic_t *t = KARR_AT(resp.topics, list_offsets_resp_topic_t, i);
            for (int32_t j = 0; j < t->partitions.count; j++) {
                list_offsets_resp_part_t *rp = KARR_AT(t->partitions, list_offsets_resp_part_t, j);
                for (size_t k = 0; k < n; k++)
                    if (kstr_eq_c(t->name, p[k].topic) && p[k].partition == rp->partition_index) {
                        if (rp->error_code) p[k].err = rp->error_code;
                        else if (pass == 0) p[k].earliest = rp->offset;
                        else p[k].latest = rp->offset;
                    }
            }
        }
    }
    return 0;
}

/* ---- topics ---- */

/* Metadata for the named topics (n 0: all). Copies out the partitions. */
static int metadata(kc_t *c, char **names, int n, poff_t **out, size_t *nout, json_t *brokers) {
    int v = kc_version(c, KAPI_METADATA, "Metadata", 1, 12);
    if (v < 0) return -1;
    kc_reset(c);
    metadata_req_t req;
    kmsg_defaults(&metadata_req_schema, &req);
    req.allow_auto_topic_creation = false;
    if (n > 0) {
        metadata_req_topic_t *ts = KARR_NEW(&c->arena, req.topics, metadata_req_topic_t, n);
        if (!ts) return -1;
        for (int i = 0; i < n; i++) ts[i].name = kstr_c(names[i]);
    } else {
        req.topics = (karray_t){NULL, -1};
    }
    metadata_resp_t resp;
    if (kc_call(c, KAPI_METADATA, v, FLEX_METADATA, &metadata_req_schema, &req, &metadata_resp_schema, &resp)) return -1;
    size_t total = 0;
    for (int32_t i = 0; i < resp.topics.count; i++) {
        metadata_resp_topic_t *t = KARR_AT(resp.topics, metadata_resp_topic_t, i);
        total += t->partitions.count > 0 ? (size_t)t->partitions.count : 1;
    }
    poff_t *p = calloc(total ? total : 1, sizeof *p);
    if (!p) return -1;
    size_t k = 0;
    for (int32_t i = 0; i < resp.topics.count; i++) {
        metadata_resp_topic_t *t = KARR_AT(resp.topics, metadata_resp_topic_t, i);
        if (t->error_code || t->partitions.count <= 0) { /* the topic's error, as one entry with partition -1 */
            kstr_z(p[k].topic, sizeof p[k].topic, t->name);
            p[k].partition = -1;
            p[k].err = t->error_code;
            k++;
            continue;
        }
        for (int32_t j = 0; j < t->partitions.count; j++, k++) {
            metadata_resp_partition_t *mp = KARR_AT(t->partitions, metadata_resp_partition_t, j);
            kstr_z(p[k].topic, sizeof p[k].topic, t->name);
            p[k].partition = mp->partition_index;
            p[k].err = mp->error_code;
            p[k].committed = mp->leader_id; /* reused: leader id */
            p[k].earliest = p[k].latest = -1;
        }
    }
    if (brokers)
        for (int32_t i = 0; i < resp.brokers.count; i++) {
            metadata_resp_broker_t *b = KARR_AT(resp.brokers, metadata_resp_broker_t, i);
            char host[256], addr[300];
            snprintf(addr, sizeof addr, "%s:%d", kstr_z(host, sizeof host, b->host), b->port);
            json_array_append_new(brokers, json_string(addr));
        }
    *out = p;
    *nout = k;
    return 0;
}

static int poff_cmp(const void *a, const void *b) {
    const poff_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static int topics_list(kc_t *c) {
    poff_t *p;
    size_t n;
    if (metadata(c, NULL, 0, &p, &n, NULL)) return 1;
    qsort(p, n, sizeof *p, poff_cmp);
    json_t *arr = g_opts.json ? json_array() : NULL;
    static const char *const head[] = {"TOPIC", "PARTITIONS"};
    ctl_table_t t;
    table_init(&t, 2, head);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && !strcmp(p[j].topic, p[i].topic)) j++;
        char np[16];
        snprintf(np, sizeof np, "%zu", j - i);
        if (arr) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(p[i].topic));
            json_object_set_new(o, "partitions", json_integer((json_int_t)(j - i)));
            json_array_append_new(arr, o);
        } else {
            table_add(&t, p[i].topic, np);
        }
        i = j;
    }
    if (arr) json_print(arr);
    else table_print(&t);
    table_free(&t);
    free(p);
    return 0;
}

/* Topic configs that differ from the defaults (source TOPIC_CONFIG), as k=v. */
static json_t *topic_overrides(kc_t *c, const char *topic) {
    int v = kc_version(c, KAPI_DESCRIBE_CONFIGS, "DescribeConfigs", 1, 4);
    if (v < 0) return NULL;
    kc_reset(c);
    describe_configs_req_t req;
    kmsg_defaults(&describe_configs_req_schema, &req);
    describe_configs_req_resource_t *r = KARR_NEW(&c->arena, req.resources, describe_configs_req_resource_t, 1);
    if (!r) return NULL;
    r->resource_type = CONFIG_RESOURCE_TOPIC;
    r->resource_name = kstr_c(topic);
    r->configuration_keys = (karray_t){NULL, -1};
    describe_configs_resp_t resp;
    if (kc_call(c, KAPI_DESCRIBE_CONFIGS, v, FLEX_DESCRIBE_CONFIGS, &describe_configs_req_schema, &req,
                &describe_configs_resp_schema, &resp))
        return NULL;
    json_t *o = json_object();
    for (int32_t i = 0; i < resp.results.count; i++) {
        describe_configs_resp_result_t *res = KARR_AT(resp.results, describe_configs_resp_result_t, i);
        for (int32_t j = 0; j < res->configs.count; j++) {
            describe_configs_resp_config_t *cf = KARR_AT(res->configs, describe_configs_resp_config_t, j);
            if (cf->config_source != CONFIG_SOURCE_TOPIC_CONFIG) continue;
            char k[256], val[1024];
            json_object_set_new(o, kstr_z(k, sizeof k, cf->name),
                                cf->value.len < 0 ? json_null() : json_string(kstr_z(val, sizeof val, cf->value)));
        }
    }
    return o;
}

static int topics_describe(kc_t *c, char **names, int nnames) {
    poff_t *p;
    size_t n;
    if (metadata(c, names, nnames, &p, &n, NULL)) return 1;
    qsort(p, n, sizeof *p, poff_cmp);
    /* offsets of the partitions without errors */
    size_t ok = 0;
    poff_t *q = calloc(n ? n : 1, sizeof *q);
    for (size_t i = 0; q && i < n; i++)
        if (!p[i].err && p[i].partition >= 0) q[ok++] = p[i];
    if (!q || list_offsets(c, q, ok, true)) {
        free(p);
        free(q);
        return 1;
    }
    for (size_t i = 0, k = 0; i < n; i++)
        if (!p[i].err && p[i].partition >= 0) p[i] = q[k++];
    free(q);
    int rc = 0;
    json_t *arr = g_opts.json ? json_array() : NULL;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && !strcmp(p[j].topic, p[i].topic)) j++;
        if (p[i].partition < 0) {
            ctl_err("topic %s: %s", p[i].topic, err_name(p[i].err));
            rc = 1;
            i = j;
            continue;
        }
        json_t *cfg = topic_overrides(c, p[i].topic);
        if (arr) {
            json_t *o = json_object(), *parts = json_array();
            json_object_set_new(o, "name", json_string(p[i].topic));
            for (size_t k = i; k < j; k++) {
                json_t *po = json_object();
                json_object_set_new(po, "partition", json_integer(p[k].partition));
                json_object_set_new(po, "leader", json_integer(p[k].committed));
                json_object_set_new(po, "earliest_offset", json_integer(p[k].earliest));
                json_object_set_new(po, "latest_offset", json_integer(p[k].latest));
                if (p[k].err) json_object_set_new(po, "error", json_string(err_name(p[k].err)));
                json_array_append_new(parts, po);
            }
            json_object_set_new(o, "partitions", parts);
            json_object_set_new(o, "configs", cfg ? cfg : json_object());
            json_array_append_new(arr, o);
        } else {
            printf("topic %s: %zu partition(s)\n", p[i].topic, j - i);
            if (cfg && json_object_size(cfg)) {
                const char *k;
                json_t *v;
                printf("  configs:");
                json_object_foreach(cfg, k, v) printf(" %s=%s", k, json_is_string(v) ? json_string_value(v) : "(null)");
                printf("\n");
            }
            json_decref(cfg);
            static const char *const head[] = {"PARTITION", "LEADER", "EARLIEST", "LATEST", "ERROR"};
            ctl_table_t t;
            table_init(&t, 5, head);
            for (size_t k = i; k < j; k++) {
                char a[3][24];
                snprintf(a[0], 24, "%d", p[k].partition);
                snprintf(a[1], 24, "%lld", (long long)p[k].committed);
                snprintf(a[2], 24, "%lld", (long long)p[k].earliest);
                char l[24];
                snprintf(l, sizeof l, "%lld", (long long)p[k].latest);
                table_add(&t, a[0], a[1], a[2], l, p[k].err ? err_name(p[k].err) : "");
            }
            table_print(&t);
            table_free(&t);
            printf("\n");
        }
        i = j;
    }
    if (arr) json_print(arr);
    free(p);
    return rc;
}

static int topics_create(kc_t *c, int argc, char **argv) {
    const char *name = NULL;
    int32_t partitions = -1;
    int16_t rf = -1;
    int nconf = 0;
    char *confs[256];
    bool validate = false;
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--partitions")) && i + 1 < argc) partitions = atoi(argv[++i]);
        else if ((!strcmp(argv[i], "-r") || !strcmp(argv[i], "--replication-factor")) && i + 1 < argc)
            rf = (int16_t)atoi(argv[++i]);
        else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc && nconf < 256)
            confs[nconf++] = argv[++i];
        else if (!strcmp(argv[i], "--validate-only")) validate = true;
        else if (argv[i][0] != '-' && !name) name = argv[i];
        else {
            ctl_err("topics create: unexpected '%s'", argv[i]);
            return 2;
        }
    }
    if (!name) {
        ctl_err("usage: kafscale-ctl topics create TOPIC [-p PARTITIONS] [-c name=value]... [--validate-only]");
        return 2;
    }
    int v = kc_version(c, KAPI_CREATE_TOPICS, "CreateTopics", 0, 7);
    if (v < 0) return 1;
    kc_reset(c);
    create_topics_req_t req;
    kmsg_defaults(&create_topics_req_schema, &req);
    req.timeout_ms = 30000;
    req.validate_only = validate;
    create_topics_req_topic_t *t = KARR_NEW(&c->arena, req.topics, create_topics_req_topic_t, 1);
    if (!t) return 1;
    t->name = kstr_c(name);
    t->num_partitions = partitions;
    t->replication_factor = rf;
    t->assignments = (karray_t){NULL, 0};
    create_topics_req_config_t *cf = KARR_NEW(&c->arena, t->configs, create_topics_req_config_t, nconf);
    for (int i = 0; cf && i < nconf; i++) {
        char *eq = strchr(confs[i], '=');
        if (!eq) {
            ctl_err("topics create: config '%s' is not name=value", confs[i]);
            return 2;
        }
        cf[i].name = (kstr_t){confs[i], (int32_t)(eq - confs[i])};
        cf[i].value = kstr_c(eq + 1);
    }
    if (v == 0 && partitions < 0) t->num_partitions = 1; /* v0 has no "broker default" */
    if (v == 0 && rf < 0) t->replication_factor = 1;
    create_topics_resp_t resp;
    if (kc_call(c, KAPI_CREATE_TOPICS, v, FLEX_CREATE_TOPICS, &create_topics_req_schema, &req, &create_topics_resp_schema,
                &resp))
        return 1;
    int rc = 0;
    json_t *arr = g_opts.json ? json_array() : NULL;
    for (int32_t i = 0; i < resp.topics.count; i++) {
        create_topics_resp_topic_t *rt = KARR_AT(resp.topics, create_topics_resp_topic_t, i);
        char n[256], m[512];
        kstr_z(n, sizeof n, rt->name);
        kstr_z(m, sizeof m, rt->error_message);
        if (rt->error_code) rc = 1;
        if (arr) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(n));
            json_object_set_new(o, "error", rt->error_code ? json_string(err_name(rt->error_code)) : json_null());
            json_object_set_new(o, "message", json_string(m));
            json_object_set_new(o, "partitions", json_integer(rt->num_partitions));
            json_array_append_new(arr, o);
        } else if (rt->error_code) {
            ctl_err("cannot create topic %s: %s%s%s", n, err_name(rt->error_code), m[0] ? ": " : "", m);
        } else {
            printf("%s topic %s", validate ? "would create" : "created", n);
            if (rt->num_partitions > 0) printf(" with %d partition(s)", rt->num_partitions);
            printf("\n");
        }
    }
    if (arr) json_print(arr);
    return rc;
}

static int topics_delete(kc_t *c, char **names, int n) {
    if (n == 0) {
        ctl_err("usage: kafscale-ctl topics delete TOPIC...");
        return 2;
    }
    int v = kc_version(c, KAPI_DELETE_TOPICS, "DeleteTopics", 0, 6);
    if (v < 0) return 1;
    kc_reset(c);
    delete_topics_req_t req;
    kmsg_defaults(&delete_topics_req_schema, &req);
    req.timeout_ms = 30000;
    delete_topics_req_topic_t *ts = KARR_NEW(&c->arena, req.topics, delete_topics_req_topic_t, n);
    kstr_t *tn = KARR_NEW(&c->arena, req.topic_names, kstr_t, n);
    if (!ts || !tn) return 1;
    for (int i = 0; i < n; i++) {
        ts[i].name = kstr_c(names[i]);
        tn[i] = kstr_c(names[i]);
    }
    delete_topics_resp_t resp;
    if (kc_call(c, KAPI_DELETE_TOPICS, v, FLEX_DELETE_TOPICS, &delete_topics_req_schema, &req, &delete_topics_resp_schema,
                &resp))
        return 1;
    int rc = 0;
    json_t *arr = g_opts.json ? json_array() : NULL;
    for (int32_t i = 0; i < resp.responses.count; i++) {
        delete_topics_resp_topic_t *rt = KARR_AT(resp.responses, delete_topics_resp_topic_t, i);
        char nm[256], m[512];
        kstr_z(nm, sizeof nm, rt->name);
        kstr_z(m, sizeof m, rt->error_message);
        if (rt->error_code) rc = 1;
        if (arr) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(nm));
            json_object_set_new(o, "error", rt->error_code ? json_string(err_name(rt->error_code)) : json_null());
            json_array_append_new(arr, o);
        } else if (rt->error_code) {
            ctl_err("cannot delete topic %s: %s%s%s", nm, err_name(rt->error_code), m[0] ? ": " : "", m);
        } else {
            printf("deleted topic %s\n", nm);
        }
    }
    if (arr) json_print(arr);
    return rc;
}

int cmd_topics(int argc, char **argv) {
    const char *sub = argc > 0 ? argv[0] : "list";
    kc_t c;
    int rc;
    if (strcmp(sub, "list") && strcmp(sub, "describe") && strcmp(sub, "create") && strcmp(sub, "delete")) {
        ctl_err("usage: kafscale-ctl topics list | describe [TOPIC...] | create TOPIC [-p N] [-c k=v]... | delete TOPIC...");
        return 2;
    }
    if (kafka_connect(&c)) {
        kc_close(&c);
        return 1;
    }
    if (!strcmp(sub, "list")) rc = topics_list(&c);
    else if (!strcmp(sub, "describe")) rc = topics_describe(&c, argv + 1, argc - 1);
    else if (!strcmp(sub, "create")) rc = topics_create(&c, argc - 1, argv + 1);
    else rc = topics_delete(&c, argv + 1, argc - 1);
    kc_close(&c);
    return rc;
}

/* ---- groups ---- */

static int groups_list(kc_t *c) {
    /* Every broker knows only the groups it coordinates: ask each one. */
    json_t *brokers = json_array();
    poff_t *p;
    size_t n;
    if (metadata(c, NULL, 0, &p, &n, brokers)) {
        json_decref(brokers);
        return 1;
    }
    free(p);
    json_t *arr = g_opts.json ? json_array() : NULL;
    static const char *const head[] = {"GROUP", "STATE", "PROTOCOL_TYPE"};
    ctl_table_t t;
    table_init(&t, 3, head);
    int rc = 0;
    char **names = NULL;
    size_t nn = 0;
    for (size_t b = 0; b < json_array_size(brokers) || (b == 0 && json_array_size(brokers) == 0); b++) {
        kc_t bc, *k = c;
        const char *addr = json_array_size(brokers) ? json_string_value(json_array_get(brokers, b)) : c->addr;
        if (strcmp(addr, c->addr)) {
            if (kc_open(&bc, addr)) {
                kc_close(&bc);
                rc = 1;
                continue;
            }
            k = &bc;
        }
        int v = kc_version(k, KAPI_LIST_GROUPS, "ListGroups", 0, 4);
        list_groups_req_t req;
        list_groups_resp_t resp;
        kc_reset(k);
        kmsg_defaults(&list_groups_req_schema, &req);
        req.states_filter = (karray_t){NULL, 0};
        req.types_filter = (karray_t){NULL, 0};
        if (v < 0 || kc_call(k, KAPI_LIST_GROUPS, v, FLEX_LIST_GROUPS, &list_groups_req_schema, &req,
                             &list_groups_resp_schema, &resp)) {
            rc = 1;
        } else if (resp.error_code) {
            ctl_err("ListGroups at %s: %s", addr, err_name(resp.error_code));
            rc = 1;
        } else {
            for (int32_t i = 0; i < resp.groups.count; i++) {
                list_groups_resp_group_t *g = KARR_AT(resp.groups, list_groups_resp_group_t, i);
                char id[256], st[64], pt[64];
                kstr_z(id, sizeof id, g->group_id);
                kstr_z(st, sizeof st, g->group_state);
                kstr_z(pt, sizeof pt, g->protocol_type);
                bool seen = false;
                for (size_t x = 0; x < nn; x++) seen |= !strcmp(names[x], id);
                if (seen) continue;
                char **nn2 = realloc(names, (nn + 1) * sizeof *names);
                if (!nn2) break;
                names = nn2;
                names[nn++] = strdup(id);
                if (arr) {
                    json_t *o = json_object();
                    json_object_set_new(o, "group", json_string(id));
                    json_object_set_new(o, "state", json_string(st));
                    json_object_set_new(o, "protocol_type", json_string(pt));
                    json_array_append_new(arr, o);
                } else {
                    table_add(&t, id, st[0] ? st : "-", pt[0] ? pt : "-");
                }
            }
        }
        if (k != c) kc_close(&bc);
    }
    for (size_t x = 0; x < nn; x++) free(names[x]);
    free(names);
    json_decref(brokers);
    if (arr) json_print(arr);
    else table_print(&t);
    table_free(&t);
    return rc;
}

/* The coordinator of group (FindCoordinator), into addr; the bootstrap
 * broker when FindCoordinator is not served. */
static int coordinator(kc_t *c, const char *group, char *addr, size_t addrsz) {
    snprintf(addr, addrsz, "%s", c->addr);
    if (c->vmax[KAPI_FIND_COORDINATOR] < 0) return 0;
    int v = kc_version(c, KAPI_FIND_COORDINATOR, "FindCoordinator", 0, 3);
    if (v < 0) return -1;
    kc_reset(c);
    find_coordinator_req_t req;
    kmsg_defaults(&find_coordinator_req_schema, &req);
    req.key = kstr_c(group);
    req.key_type = COORDINATOR_KEY_GROUP;
    req.coordinator_keys = (karray_t){NULL, 0};
    find_coordinator_resp_t resp;
    if (kc_call(c, KAPI_FIND_COORDINATOR, v, FLEX_FIND_COORDINATOR, &find_coordinator_req_schema, &req,
                &find_coordinator_resp_schema, &resp))
        return -1;
    if (resp.error_code) {
        ctl_err("group %s: FindCoordinator: %s", group, err_name(resp.error_code));
        return -1;
    }
    char host[256];
    snprintf(addr, addrsz, "%s:%d", kstr_z(host, sizeof host, resp.host), resp.port);
    return 0;
}

static int group_describe(kc_t *c0, const char *group, json_t *arr) {
    char addr[300];
    if (coordinator(c0, group, addr, sizeof addr)) return 1;
    kc_t other, *c = c0;
    if (strcmp(addr, c0->addr)) {
        if (kc_open(&other, addr)) {
            kc_close(&other);
            return 1;
        }
        c = &other;
    }
    int rc = 1;
    poff_t *offs = NULL;
    size_t noffs = 0;
    json_t *g = json_object(), *members = json_array();
    char state[64] = "", ptype[64] = "", proto[128] = "";
    /* DescribeGroups: state and members */
    int v = kc_version(c, KAPI_DESCRIBE_GROUPS, "DescribeGroups", 0, 5);
    if (v < 0) goto out;
    kc_reset(c);
    describe_groups_req_t dreq;
    kmsg_defaults(&describe_groups_req_schema, &dreq);
    kstr_t *gs = KARR_NEW(&c->arena, dreq.groups, kstr_t, 1);
    if (!gs) goto out;
    gs[0] = kstr_c(group);
    describe_groups_resp_t dresp;
    if (kc_call(c, KAPI_DESCRIBE_GROUPS, v, FLEX_DESCRIBE_GROUPS, &describe_groups_req_schema, &dreq,
                &describe_groups_resp_schema, &dresp))
        goto out;
    for (int32_t i = 0; i < dresp.groups.count; i++) {
        describe_groups_resp_group_t *dg = KARR_AT(dresp.groups, describe_groups_resp_group_t, i);
        if (dg->error_code) {
            ctl_err("group %s: DescribeGroups: %s", group, err_name(dg->error_code));
            goto out;
        }
        kstr_z(state, sizeof state, dg->group_state);
        kstr_z(ptype, sizeof ptype, dg->protocol_type);
        kstr_z(proto, sizeof proto, dg->protocol_data);
        for (int32_t j = 0; j < dg->members.count; j++) {
            describe_groups_resp_member_t *m = KARR_AT(dg->members, describe_groups_resp_member_t, j);
            char a[256], b[256], h[256];
            json_t *mo = json_object();
            json_object_set_new(mo, "member_id", json_string(kstr_z(a, sizeof a, m->member_id)));
            json_object_set_new(mo, "client_id", json_string(kstr_z(b, sizeof b, m->client_id)));
            json_object_set_new(mo, "client_host", json_string(kstr_z(h, sizeof h, m->client_host)));
            json_array_append_new(members, mo);
        }
    }
    /* OffsetFetch: every committed offset of the group */
    v = kc_version(c, KAPI_OFFSET_FETCH, "OffsetFetch", 2, 7);
    if (v < 0) goto out;
    kc_reset(c);
    offset_fetch_req_t oreq;
    kmsg_defaults(&offset_fetch_req_schema, &oreq);
    oreq.group_id = kstr_c(group);
    oreq.topics = (karray_t){NULL, -1};
    oreq.groups = (karray_t){NULL, 0};
    offset_fetch_resp_t oresp;
    if (kc_call(c, KAPI_OFFSET_FETCH, v, FLEX_OFFSET_FETCH, &offset_fetch_req_schema, &oreq, &offset_fetch_resp_schema,
                &oresp))
        goto out;
    if (oresp.error_code) {
        ctl_err("group %s: OffsetFetch: %s", group, err_name(oresp.error_code));
        goto out;
    }
    for (int32_t i = 0; i < oresp.topics.count; i++)
        noffs += (size_t)KARR_AT(oresp.topics, offset_fetch_resp_topic_t, i)->partitions.count;
    offs = calloc(noffs ? noffs : 1, sizeof *offs);
    if (!offs) goto out;
    noffs = 0;
    for (int32_t i = 0; i < oresp.topics.count; i++) {
        offset_fetch_resp_topic_t *t = KARR_AT(oresp.topics, offset_fetch_resp_topic_t, i);
        for (int32_t j = 0; j < t->partitions.count; j++) {
            offset_fetch_resp_part_t *op = KARR_AT(t->partitions, offset_fetch_resp_part_t, j);
            poff_t *p = &offs[noffs++];
            kstr_z(p->topic, sizeof p->topic, t->name);
            p->partition = op->partition_index;
            p->committed = op->committed_offset;
            p->err = op->error_code;
            p->earliest = p->latest = -1;
        }
    }
    qsort(offs, noffs, sizeof *offs, poff_cmp);
    /* end offsets from the partitions' leader (the bootstrap broker on one node) */
    if (list_offsets(c0, offs, noffs, false)) goto out;
    rc = 0;
    json_t *jo = json_array();
    static const char *const head[] = {"TOPIC", "PARTITION", "COMMITTED", "END", "LAG"};
    ctl_table_t tab;
    table_init(&tab, 5, head);
    int64_t total = 0;
    for (size_t i = 0; i < noffs; i++) {
        poff_t *p = &offs[i];
        int64_t lag = p->committed >= 0 && p->latest >= 0 ? p->latest - p->committed : -1;
        if (lag > 0) total += lag;
        json_t *o = json_object();
        json_object_set_new(o, "topic", json_string(p->topic));
        json_object_set_new(o, "partition", json_integer(p->partition));
        json_object_set_new(o, "committed_offset", json_integer(p->committed));
        json_object_set_new(o, "end_offset", json_integer(p->latest));
        json_object_set_new(o, "lag", lag >= 0 ? json_integer(lag) : json_null());
        if (p->err) json_object_set_new(o, "error", json_string(err_name(p->err)));
        json_array_append_new(jo, o);
        char a[4][24];
        snprintf(a[0], 24, "%d", p->partition);
        snprintf(a[1], 24, "%lld", (long long)p->committed);
        snprintf(a[2], 24, "%lld", (long long)p->latest);
        if (lag >= 0) snprintf(a[3], 24, "%lld", (long long)lag);
        else snprintf(a[3], 24, "-");
        table_add(&tab, p->topic, a[0], a[1], a[2], a[3]);
    }
    json_object_set_new(g, "group", json_string(group));
    json_object_set_new(g, "coordinator", json_string(addr));
    json_object_set_new(g, "state", json_string(state));
    json_object_set_new(g, "protocol_type", json_string(ptype));
    json_object_set_new(g, "protocol", json_string(proto));
    json_object_set_new(g, "members", json_incref(members));
    json_object_set_new(g, "offsets", jo);
    json_object_set_new(g, "total_lag", json_integer(total));
    if (arr) {
        json_array_append(arr, g);
    } else {
        printf("group %s: %s, %zu member(s), protocol %s%s%s, coordinator %s, total lag %lld\n", group,
               state[0] ? state : "?", json_array_size(members), ptype[0] ? ptype : "-", proto[0] ? "/" : "", proto,
               addr, (long long)total);
        for (size_t i = 0; i < json_array_size(members); i++) {
            json_t *m = json_array_get(members, i);
            printf("  member %s (client %s at %s)\n", json_string_value(json_object_get(m, "member_id")),
                   json_string_value(json_object_get(m, "client_id")),
                   json_string_value(json_object_get(m, "client_host")));
        }
        if (noffs) table_print(&tab);
        else printf("  no committed offsets\n");
        printf("\n");
    }
    table_free(&tab);
out:
    json_decref(g);
    json_decref(members);
    free(offs);
    if (c != c0) kc_close(&other);
    return rc;
}

int cmd_groups(int argc, char **argv) {
    const char *sub = argc > 0 ? argv[0] : "list";
    if (strcmp(sub, "list") && strcmp(sub, "describe")) {
        ctl_err("usage: kafscale-ctl groups list | describe GROUP...");
        return 2;
    }
    if (!strcmp(sub, "describe") && argc < 2) {
        ctl_err("usage: kafscale-ctl groups describe GROUP...");
        return 2;
    }
    kc_t c;
    if (kafka_connect(&c)) {
        kc_close(&c);
        return 1;
    }
    int rc = 0;
    if (!strcmp(sub, "list")) {
        rc = groups_list(&c);
    } else {
        json_t *arr = g_opts.json ? json_array() : NULL;
        for (int i = 1; i < argc; i++) rc |= group_describe(&c, argv[i], arr);
        if (arr) json_print(arr);
    }
    kc_close(&c);
    return rc;
}

/* ---- configs ---- */

static const char *source_name(int8_t s) {
    static const char *names[] = {"unknown", "topic", "dynamic_broker", "dynamic_default_broker", "static_broker",
                                  "default", "dynamic_broker_logger"};
    return s >= 0 && s < (int8_t)(sizeof names / sizeof names[0]) ? names[s] : "?";
}

static int resource_type(const char *s) {
    if (!strcmp(s, "topic")) return CONFIG_RESOURCE_TOPIC;
    if (!strcmp(s, "broker")) return CONFIG_RESOURCE_BROKER;
    return -1;
}

/* DescribeConfigs of one resource; fn gets every config. */
typedef void config_fn(void *arg, const describe_configs_resp_config_t *cf);
static int describe(kc_t *c, int8_t type, const char *name, config_fn *fn, void *arg) {
    int v = kc_version(c, KAPI_DESCRIBE_CONFIGS, "DescribeConfigs", 1, 4);
    if (v < 0) return 1;
    kc_reset(c);
    describe_configs_req_t req;
    kmsg_defaults(&describe_configs_req_schema, &req);
    describe_configs_req_resource_t *r = KARR_NEW(&c->arena, req.resources, describe_configs_req_resource_t, 1);
    if (!r) return 1;
    r->resource_type = type;
    r->resource_name = kstr_c(name);
    r->configuration_keys = (karray_t){NULL, -1};
    describe_configs_resp_t resp;
    if (kc_call(c, KAPI_DESCRIBE_CONFIGS, v, FLEX_DESCRIBE_CONFIGS, &describe_configs_req_schema, &req,
                &describe_configs_resp_schema, &resp))
        return 1;
    for (int32_t i = 0; i < resp.results.count; i++) {
        describe_configs_resp_result_t *res = KARR_AT(resp.results, describe_configs_resp_result_t, i);
        if (res->error_code) {
            char m[512];
            ctl_err("DescribeConfigs %s %s: %s%s%s", type == CONFIG_RESOURCE_TOPIC ? "topic" : "broker", name,
                    err_name(res->error_code), res->error_message.len > 0 ? ": " : "",
                    kstr_z(m, sizeof m, res->error_message));
            return 1;
        }
        for (int32_t j = 0; j < res->configs.count; j++) fn(arg, KARR_AT(res->configs, describe_configs_resp_config_t, j));
    }
    return 0;
}

typedef struct show_ctx {
    ctl_table_t t;
    json_t *arr;
} show_ctx_t;

static void show_cb(void *arg, const describe_configs_resp_config_t *cf) {
    show_ctx_t *s = arg;
    char n[256], v[1024];
    kstr_z(n, sizeof n, cf->name);
    bool null = cf->value.len < 0;
    kstr_z(v, sizeof v, cf->value);
    if (s->arr) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(n));
        json_object_set_new(o, "value", null ? json_null() : json_string(v));
        json_object_set_new(o, "source", json_string(source_name(cf->config_source)));
        json_object_set_new(o, "read_only", json_boolean(cf->read_only));
        json_object_set_new(o, "sensitive", json_boolean(cf->is_sensitive));
        json_array_append_new(s->arr, o);
    } else {
        table_add(&s->t, n, null ? (cf->is_sensitive ? "(sensitive)" : "(null)") : v, source_name(cf->config_source),
                  cf->read_only ? "yes" : "no");
    }
}

typedef struct merge_ctx {
    kc_t *c;
    alter_configs_req_config_t *cfg;
    int n, cap;
} merge_ctx_t;

/* AlterConfigs replaces a resource's whole set: keep what was set before. */
static void keep_cb(void *arg, const describe_configs_resp_config_t *cf) {
    merge_ctx_t *m = arg;
    if (cf->config_source != CONFIG_SOURCE_TOPIC_CONFIG && cf->config_source != CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG)
        return;
    if (m->n == m->cap) return;
    char *n = malloc((size_t)cf->name.len + 1), *v = cf->value.len >= 0 ? malloc((size_t)cf->value.len + 1) : NULL;
    if (!n) return;
    kstr_z(n, (size_t)cf->name.len + 1, cf->name);
    if (v) kstr_z(v, (size_t)cf->value.len + 1, cf->value);
    m->cfg[m->n++] = (alter_configs_req_config_t){kstr_c(n), v ? kstr_c(v) : KSTR_NULL};
}

static int configs_alter(kc_t *c, int8_t type, const char *name, int argc, char **argv) {
    int nset = 0, ndel = 0;
    char *sets[256], *dels[256];
    bool validate = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--delete") && i + 1 < argc && ndel < 256) dels[ndel++] = argv[++i];
        else if (!strcmp(argv[i], "--validate-only")) validate = true;
        else if (strchr(argv[i], '=') && nset < 256) sets[nset++] = argv[i];
        else {
            ctl_err("configs alter: '%s' is not name=value (or --delete name)", argv[i]);
            return 2;
        }
    }
    if (!nset && !ndel) {
        ctl_err("usage: kafscale-ctl configs alter topic|broker NAME name=value... [--delete name]... [--validate-only]");
        return 2;
    }
    int16_t err = 0;
    char msg[512] = "";
    if (c->vmax[KAPI_INCREMENTAL_ALTER_CONFIGS] >= 0) {
        int v = kc_version(c, KAPI_INCREMENTAL_ALTER_CONFIGS, "IncrementalAlterConfigs", 0, 1);
        if (v < 0) return 1;
        kc_reset(c);
        incremental_alter_configs_req_t req;
        kmsg_defaults(&incremental_alter_configs_req_schema, &req);
        req.validate_only = validate;
        incremental_alter_configs_req_resource_t *r =
            KARR_NEW(&c->arena, req.resources, incremental_alter_configs_req_resource_t, 1);
        incremental_alter_configs_req_config_t *cf =
            r ? KARR_NEW(&c->arena, r->configs, incremental_alter_configs_req_config_t, nset + ndel) : NULL;
        if (!cf) return 1;
        r->resource_type = type;
        r->resource_name = kstr_c(name);
        for (int i = 0; i < nset; i++) {
            char *eq = strchr(sets[i], '=');
            cf[i] = (incremental_alter_configs_req_config_t){{sets[i], (int32_t)(eq - sets[i])}, CONFIG_OP_SET,
                                                             kstr_c(eq + 1)};
        }
        for (int i = 0; i < ndel; i++)
            cf[nset + i] = (incremental_alter_configs_req_config_t){kstr_c(dels[i]), CONFIG_OP_DELETE, KSTR_NULL};
        incremental_alter_configs_resp_t resp;
        if (kc_call(c, KAPI_INCREMENTAL_ALTER_CONFIGS, v, FLEX_INCREMENTAL_ALTER_CONFIGS,
                    &incremental_alter_configs_req_schema, &req, &incremental_alter_configs_resp_schema, &resp))
            return 1;
        for (int32_t i = 0; i < resp.responses.count; i++) {
            incremental_alter_configs_resp_resource_t *rr =
                KARR_AT(resp.responses, incremental_alter_configs_resp_resource_t, i);
            if (rr->error_code && !err) {
                err = rr->error_code;
                kstr_z(msg, sizeof msg, rr->error_message);
            }
        }
    } else {
        /* AlterConfigs: the resource's current overrides, changed as asked. */
        merge_ctx_t m = {c, calloc(512, sizeof(alter_configs_req_config_t)), 0, 512 - nset};
        if (!m.cfg) return 1;
        int rc = describe(c, type, name, keep_cb, &m);
        for (int i = 0; i < m.n && !rc; i++) {
            bool drop = false;
            for (int k = 0; k < ndel; k++) drop |= kstr_eq_c(m.cfg[i].name, dels[k]);
            for (int k = 0; k < nset; k++) {
                char *eq = strchr(sets[k], '=');
                drop |= kstr_eq(m.cfg[i].name, (kstr_t){sets[k], (int32_t)(eq - sets[k])});
            }
            if (drop) m.cfg[i].name.len = -2; /* marked */
        }
        int v = rc ? -1 : kc_version(c, KAPI_ALTER_CONFIGS, "AlterConfigs", 0, 2);
        if (v >= 0) {
            kc_reset(c);
            alter_configs_req_t req;
            kmsg_defaults(&alter_configs_req_schema, &req);
            req.validate_only = validate;
            alter_configs_req_resource_t *r = KARR_NEW(&c->arena, req.resources, alter_configs_req_resource_t, 1);
            alter_configs_req_config_t *cf = r ? KARR_NEW(&c->arena, r->configs, alter_configs_req_config_t, m.n + nset) : NULL;
            if (cf) {
                int k = 0;
                r->resource_type = type;
                r->resource_name = kstr_c(name);
                for (int i = 0; i < m.n; i++)
                    if (m.cfg[i].name.len != -2) cf[k++] = m.cfg[i];
                for (int i = 0; i < nset; i++) {
                    char *eq = strchr(sets[i], '=');
                    cf[k++] = (alter_configs_req_config_t){{sets[i], (int32_t)(eq - sets[i])}, kstr_c(eq + 1)};
                }
                r->configs.count = k;
                alter_configs_resp_t resp;
                if (kc_call(c, KAPI_ALTER_CONFIGS, v, FLEX_ALTER_CONFIGS, &alter_configs_req_schema, &req,
                            &alter_configs_resp_schema, &resp) == 0) {
                    for (int32_t i = 0; i < resp.responses.count; i++) {
                        alter_configs_resp_resource_t *rr = KARR_AT(resp.responses, alter_configs_resp_resource_t, i);
                        if (rr->error_code && !err) {
                            err = rr->error_code;
                            kstr_z(msg, sizeof msg, rr->error_message);
                        }
                    }
                } else {
                    rc = 1;
                }
            }
        } else {
            rc = 1;
        }
        for (int i = 0; i < m.n; i++) {
            free((char *)m.cfg[i].name.p);
            free((char *)m.cfg[i].value.p);
        }
        free(m.cfg);
        if (rc) return 1;
    }
    if (g_opts.json) {
        json_t *o = json_object();
        json_object_set_new(o, "resource_type", json_string(type == CONFIG_RESOURCE_TOPIC ? "topic" : "broker"));
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "error", err ? json_string(err_name(err)) : json_null());
        json_object_set_new(o, "message", json_string(msg));
        json_print(o);
    } else if (err) {
        ctl_err("cannot alter configs of %s %s: %s%s%s", type == CONFIG_RESOURCE_TOPIC ? "topic" : "broker", name,
                err_name(err), msg[0] ? ": " : "", msg);
    } else {
        printf("%s configs of %s %s\n", validate ? "validated" : "altered",
               type == CONFIG_RESOURCE_TOPIC ? "topic" : "broker", name);
    }
    return err ? 1 : 0;
}

int cmd_configs(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[0], "describe") && strcmp(argv[0], "alter")) || resource_type(argv[1]) < 0) {
        ctl_err("usage: kafscale-ctl configs describe topic|broker NAME\n"
                "       kafscale-ctl configs alter topic|broker NAME name=value... [--delete name]... [--validate-only]");
        return 2;
    }
    int8_t type = (int8_t)resource_type(argv[1]);
    const char *name = argv[2];
    kc_t c;
    if (kafka_connect(&c)) {
        kc_close(&c);
        return 1;
    }
    int rc;
    if (!strcmp(argv[0], "alter")) {
        rc = configs_alter(&c, type, name, argc - 3, argv + 3);
    } else {
        show_ctx_t s = {.arr = g_opts.json ? json_array() : NULL};
        static const char *const head[] = {"NAME", "VALUE", "SOURCE", "READ_ONLY"};
        table_init(&s.t, 4, head);
        rc = describe(&c, type, name, show_cb, &s);
        if (!rc) {
            if (s.arr) {
                json_t *o = json_object();
                json_object_set_new(o, "resource_type", json_string(argv[1]));
                json_object_set_new(o, "name", json_string(name));
                json_object_set_new(o, "configs", s.arr);
                s.arr = NULL;
                json_print(o);
            } else {
                table_print(&s.t);
            }
        }
        json_decref(s.arr);
        table_free(&s.t);
    }
    kc_close(&c);
    return rc;
}
