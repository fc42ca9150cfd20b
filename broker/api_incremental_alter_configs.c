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
 * INVALID_REQUEST.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "msg_describe_configs.h"
#include "msg_incremental_alter_configs.h"
#include "topic_config.h"

#define KS_ARGS(s) ((s).len > 0 ? ((s).len > 255 ? 255 : (int)(s).len) : 0), ((s).len > 0 ? (s).p : "")

static kstr_t arena_msg(karena_t *a, const char *fmt, kstr_t arg) {
    char tmp[512];
    int n = snprintf(tmp, sizeof tmp, fmt, KS_ARGS(arg));
    if (n < 0) return KSTR_NULL;
    if ((size_t)n >= sizeof tmp) n = (int)sizeof tmp - 1;
    char *p = karena_alloc(a, (size_t)n + 1);
    if (!p) return KSTR_NULL;
    memcpy(p, tmp, (size_t)n + 1);
    return (kstr_t){p, n};
}

typedef incremental_alter_configs_req_config_t iac_config_t;

static int name_cmp(const void *a, const void *b) {
    const kstr_t *x = a, *y = b;
    int32_t n = x->len < y->len ? x->len : y->len;
    int c = n > 0 ? memcmp(x->p, y->p, (size_t)n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Whether a config name is listed twice (sorted copy of the names); -1 out of memory. */
static int has_repeats(const karray_t *configs, karena_t *a) {
    int32_t n = configs->count;
    if (n < 2) return 0;
    kstr_t *names = karena_alloc(a, sizeof *names * (size_t)n);
    if (!names) return -1;
    for (int32_t i = 0; i < n; i++) names[i] = KARR_AT(*configs, iac_config_t, i)->name;
    qsort(names, (size_t)n, sizeof *names, name_cmp);
    for (int32_t i = 1; i < n; i++)
        if (kstr_eq(names[i], names[i - 1])) return 1;
    return 0;
}

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

static void alter_topic(kreq_t *req, bool validate_only, const incremental_alter_configs_req_resource_t *in,
                        incremental_alter_configs_resp_resource_t *out) {
    if (!kafka_topic_name_valid(in->resource_name)) {
        out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
        out->error_message = arena_msg(&req->arena, "Topic name \"%.*s\" is illegal", in->resource_name);
        return;
    }
    topic_t *t = topic_find(in->resource_name);
    if (!t) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        out->error_message = arena_msg(&req->arena, "Topic %.*s does not exist", in->resource_name);
        return;
    }
    int rep = has_repeats(&in->configs, &req->arena);
    if (rep) {
        out->error_code = rep < 0 ? KERR_UNKNOWN_SERVER_ERROR : KERR_INVALID_REQUEST;
        out->error_message = rep < 0 ? KSTR_LIT("Out of request memory.") : KSTR_LIT("Error due to duplicate config keys");
        return;
    }
    topic_config_t cfg = t->config;
    for (int32_t i = 0; i < in->configs.count; i++) {
        const iac_config_t *c = KARR_AT(in->configs, iac_config_t, i);
        int8_t op = c->config_operation;
        if (op < CONFIG_OP_SET || op > CONFIG_OP_SUBTRACT) {
            out->error_code = KERR_INVALID_REQUEST;
            char fmt[96];
            snprintf(fmt, sizeof fmt, "Unknown config operation %d for config %%.*s", op);
            out->error_message = arena_msg(&req->arena, fmt, c->name);
            return;
        }
        topic_config_entry_t e;
        char cur[TOPIC_CONFIG_VALMAX];
        if (!topic_config_get(&cfg, c->name, &e, cur)) {
            out->error_code = KERR_INVALID_CONFIG;
            out->error_message = arena_msg(&req->arena, "Unknown topic config name: %.*s", c->name);
            return;
        }
        if (op != CONFIG_OP_DELETE && c->value.len < 0) {
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = arena_msg(&req->arena, "Null value not supported for : %.*s", c->name);
            return;
        }
        kstr_t value = c->value;
        char buf[2 * TOPIC_CONFIG_VALMAX];
        if (op == CONFIG_OP_DELETE) {
            value = KSTR_NULL; /* back to the default */
        } else if (op == CONFIG_OP_APPEND || op == CONFIG_OP_SUBTRACT) {
            if (!e.is_list) {
                out->error_code = KERR_INVALID_CONFIG;
                out->error_message =
                    arena_msg(&req->arena,
                              op == CONFIG_OP_APPEND ? "Config value append is not allowed for config key: %.*s"
                                                     : "Config value subtract is not allowed for config key: %.*s",
                              c->name);
                return;
            }
            value = list_op(op, e.value, c->value, buf, sizeof buf);
            if (value.len < 0) {
                out->error_code = KERR_INVALID_CONFIG;
                out->error_message = arena_msg(&req->arena, "Value is too long for config %.*s", c->name);
                return;
            }
        }
        const char *msg = NULL;
        int16_t err = topic_config_set(&cfg, c->name, value, &msg);
        if (err) {
            out->error_code = err;
            out->error_message = msg ? arena_msg(&req->arena, "%.*s", kstr_c(msg)) : KSTR_NULL;
            return;
        }
    }
    if (validate_only) return;
    const char *msg = NULL;
    out->error_code = topic_set_config(t, &cfg, &msg);
    if (out->error_code && msg) out->error_message = kstr_c(msg);
}

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
        incremental_alter_configs_resp_resource_t *o = &out[i];
        *o = (incremental_alter_configs_resp_resource_t){.error_code = KERR_NONE, .error_message = KSTR_NULL,
                                                         .resource_type = r->resource_type,
                                                         .resource_name = r->resource_name};
        switch (r->resource_type) {
        case CONFIG_RESOURCE_TOPIC: alter_topic(req, in.validate_only, r, o); break;
        case CONFIG_RESOURCE_BROKER:
            o->error_code = broker_config_check_resource(req, r->resource_name, &o->error_message);
            for (int32_t j = 0; j < r->configs.count && !o->error_code; j++)
                o->error_code = broker_config_refuse_change(req, r->resource_name,
                                                            KARR_AT(r->configs, iac_config_t, j)->name,
                                                            &o->error_message);
            break;
        default:
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = KSTR_LIT("Unsupported resource type");
            break;
        }
        if (o->error_code)
            log_info("incremental_alter_configs: %d/%.*s refused: %s: %.*s", r->resource_type,
                     KS_ARGS(r->resource_name), kafka_err_name(o->error_code), KS_ARGS(o->error_message));
    }
    return kreq_respond(req, &incremental_alter_configs_resp_schema, &resp);
}
