/* api_incremental_alter_configs.c - IncrementalAlterConfigs (API key 44,
 * versions 0-1).
 *
 * Each TOPIC resource starts from the topic's current configs and applies
 * its operations in order: SET (0) a value, DELETE (1) back to the default,
 * APPEND (2) / SUBTRACT (3) items of a list config (cleanup.policy, the
 * throttled replica lists). Everything is checked against topic_config.c's
 * table before anything changes: an unknown name, a bad value, or APPEND /
 * SUBTRACT on a config that is not a list is INVALID_CONFIG; a name listed
 * twice, an unknown operation or a null value for SET / APPEND / SUBTRACT
 * is INVALID_REQUEST (Kafka's rules). Unless validate_only, the result is
 * kept, written to the topics journal and sent to the flusher
 * (topic_set_config).
 *
 * BROKER resources are read-only: any operation is refused with
 * INVALID_CONFIG (broker_config_refuse_change). Other resource types get
 * INVALID_REQUEST. What the two config-altering APIs share (these checks,
 * validate_only, keeping the result) is in config_alter.c; this file only
 * computes a topic's new configs.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "config_alter.h"
#include "msg_incremental_alter_configs.h"
#include "topic_config.h"

typedef incremental_alter_configs_req_config_t iac_config_t;

/* Whether `item` (trimmed) is one of the comma-separated items of list. */
static bool list_has(kstr_t list, const char *item, size_t ilen) {
    int32_t i = 0;
    while (i <= list.len && list.len > 0) {
        int32_t j = i;
        while (j < list.len && list.p[j] != ',') j++;
        int32_t a = i, b = j;
        while (a < b && list.p[a] == ' ') a++;
        while (b > a && list.p[b - 1] == ' ') b--;
        if ((size_t)(b - a) == ilen && !memcmp(list.p + a, item, ilen)) return true;
        i = j + 1;
    }
    return false;
}

/* The list `cur` with the items of `arg` appended (APPEND) or removed
 * (SUBTRACT), into buf. topic_config_set() trims and drops repeats. */
static kstr_t list_op(int8_t op, const char *cur, kstr_t arg, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    if (op == CONFIG_OP_APPEND) {
        int w = snprintf(buf, n, "%s%s%.*s", cur, *cur && arg.len > 0 ? "," : "", arg.len, arg.p);
        return w < 0 || (size_t)w >= n ? KSTR_NULL : (kstr_t){buf, w};
    }
    const char *p = cur;
    for (;;) {
        size_t il = strcspn(p, ",");
        const char *a = p, *b = p + il;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        if (b > a && !list_has(arg, a, (size_t)(b - a))) {
            int w = snprintf(buf + len, n - len, "%s%.*s", len ? "," : "", (int)(b - a), a);
            if (w < 0 || (size_t)w >= n - len) return KSTR_NULL;
            len += (size_t)w;
        }
        if (!p[il]) break;
        p += il + 1;
    }
    return (kstr_t){buf, (int32_t)len};
}

/* The operations in order, from the topic's current configs. */
static int16_t topic_configs(kreq_t *req, const topic_t *t, const karray_t *configs, topic_config_t *cfg,
                             kstr_t *msg) {
    *cfg = t->config;
    for (int32_t i = 0; i < configs->count; i++) {
        const iac_config_t *c = KARR_AT(*configs, iac_config_t, i);
        int8_t op = c->config_operation;
        if (op < CONFIG_OP_SET || op > CONFIG_OP_SUBTRACT) {
            char fmt[96];
            snprintf(fmt, sizeof fmt, "Unknown config operation %d for config %%.*s", op);
            *msg = config_alter_msg(&req->arena, fmt, c->name);
            return KERR_INVALID_REQUEST;
        }
        topic_config_entry_t e;
        char cur[TOPIC_CONFIG_VALMAX];
        if (!topic_config_get(cfg, c->name, &e, cur)) {
            *msg = config_alter_msg(&req->arena, "Unknown topic config name: %.*s", c->name);
            return KERR_INVALID_CONFIG;
        }
        if (op != CONFIG_OP_DELETE && c->value.len < 0) {
            *msg = config_alter_msg(&req->arena, "Null value not supported for : %.*s", c->name);
            return KERR_INVALID_REQUEST;
        }
        kstr_t value = c->value;
        char buf[2 * TOPIC_CONFIG_VALMAX];
        if (op == CONFIG_OP_DELETE) {
            value = KSTR_NULL; /* back to the default */
        } else if (op == CONFIG_OP_APPEND || op == CONFIG_OP_SUBTRACT) {
            if (!e.is_list) {
                *msg = config_alter_msg(&req->arena,
                                        op == CONFIG_OP_APPEND
                                            ? "Config value append is not allowed for config key: %.*s"
                                            : "Config value subtract is not allowed for config key: %.*s",
                                        c->name);
                return KERR_INVALID_CONFIG;
            }
            value = list_op(op, e.value, c->value, buf, sizeof buf);
            if (value.len < 0) {
                *msg = config_alter_msg(&req->arena, "Value is too long for config %.*s", c->name);
                return KERR_INVALID_CONFIG;
            }
        }
        const char *why = NULL;
        int16_t err = topic_config_set(cfg, c->name, value, &why);
        if (err) {
            *msg = why ? config_alter_msg(&req->arena, "%.*s", kstr_c(why)) : KSTR_NULL;
            return err;
        }
    }
    return KERR_NONE;
}

static const config_alter_api_t api = {"incremental_alter_configs", sizeof(iac_config_t),
                                       offsetof(iac_config_t, name), topic_configs};

kh_result_t api_incremental_alter_configs(kreq_t *req) {
    int v = req->hdr.api_version;
    incremental_alter_configs_req_t in;
    if (kmsg_decode(&incremental_alter_configs_req_schema, v, req->flexible, &req->body, &in, &req->arena)) {
        log_warn("incremental_alter_configs: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }
    incremental_alter_configs_resp_t resp;
    kmsg_defaults(&incremental_alter_configs_resp_schema, &resp);
    int32_t n = in.resources.count > 0 ? in.resources.count : 0;
    incremental_alter_configs_resp_resource_t *out =
        KARR_NEW(&req->arena, resp.responses, incremental_alter_configs_resp_resource_t, n);
    if (!out) {
        log_error("incremental_alter_configs: out of request memory answering a v%d request, closing", v);
        return KH_CLOSE;
    }
    for (int32_t i = 0; i < n; i++) {
        const incremental_alter_configs_req_resource_t *r =
            KARR_AT(in.resources, incremental_alter_configs_req_resource_t, i);
        out[i] = (incremental_alter_configs_resp_resource_t){.resource_type = r->resource_type,
                                                             .resource_name = r->resource_name};
        out[i].error_code = config_alter_resource(req, &api, in.validate_only, r->resource_type, r->resource_name,
                                                  &r->configs, &out[i].error_message);
    }
    return kreq_respond(req, &incremental_alter_configs_resp_schema, &resp);
}
