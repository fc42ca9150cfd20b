/* api_alter_configs.c - AlterConfigs (API key 33, versions 0-2).
 *
 * The legacy, non-incremental form: a TOPIC resource's configs become
 * exactly the ones listed, every other config goes back to its default (as
 * Kafka does). Each config is checked with topic_config_set() against the
 * one table in topic_config.c: an unknown name or a bad value refuses the
 * whole resource with INVALID_CONFIG and changes nothing; a name listed
 * twice, or a null value, is INVALID_REQUEST (Kafka's rules). Unless
 * validate_only, the new configs are kept, written to the topics journal and
 * sent to the flusher (topic_set_config), so retention changes apply there.
 *
 * BROKER resources are read-only: any config listed is refused with
 * INVALID_CONFIG (broker_config_refuse_change), an empty list succeeds.
 * Other resource types get INVALID_REQUEST.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "msg_alter_configs.h"
#include "msg_describe_configs.h"

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
    for (int32_t i = 0; i < n; i++) names[i] = KARR_AT(*configs, alter_configs_req_config_t, i)->name;
    qsort(names, (size_t)n, sizeof *names, name_cmp);
    for (int32_t i = 1; i < n; i++)
        if (kstr_eq(names[i], names[i - 1])) return 1;
    return 0;
}

static void alter_topic(kreq_t *req, bool validate_only, const alter_configs_req_resource_t *in,
                        alter_configs_resp_resource_t *out) {
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
    topic_config_t cfg;
    topic_config_defaults(&cfg);
    for (int32_t i = 0; i < in->configs.count; i++) {
        const alter_configs_req_config_t *c = KARR_AT(in->configs, alter_configs_req_config_t, i);
        if (c->value.len < 0) {
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = arena_msg(&req->arena, "Null value not supported for topic configs: %.*s", c->name);
            return;
        }
        const char *msg = NULL;
        int16_t err = topic_config_set(&cfg, c->name, c->value, &msg);
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

kh_result_t api_alter_configs(kreq_t *req) {
    int v = req->hdr.api_version;
    alter_configs_req_t in;
    if (kmsg_decode(&alter_configs_req_schema, v, req->flexible, &req->body, &in, &req->arena)) {
        log_warn("alter_configs: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }
    alter_configs_resp_t resp;
    kmsg_defaults(&alter_configs_resp_schema, &resp);
    int32_t n = in.resources.count > 0 ? in.resources.count : 0;
    alter_configs_resp_resource_t *out = KARR_NEW(&req->arena, resp.responses, alter_configs_resp_resource_t, n);
    if (!out) {
        log_error("alter_configs: out of request memory answering a v%d request, closing", v);
        return KH_CLOSE;
    }
    for (int32_t i = 0; i < n; i++) {
        const alter_configs_req_resource_t *r = KARR_AT(in.resources, alter_configs_req_resource_t, i);
        alter_configs_resp_resource_t *o = &out[i];
        *o = (alter_configs_resp_resource_t){.error_code = KERR_NONE, .error_message = KSTR_NULL,
                                             .resource_type = r->resource_type, .resource_name = r->resource_name};
        switch (r->resource_type) {
        case CONFIG_RESOURCE_TOPIC: alter_topic(req, in.validate_only, r, o); break;
        case CONFIG_RESOURCE_BROKER:
            o->error_code = broker_config_check_resource(req, r->resource_name, &o->error_message);
            for (int32_t j = 0; j < r->configs.count && !o->error_code; j++)
                o->error_code = broker_config_refuse_change(
                    req, r->resource_name, KARR_AT(r->configs, alter_configs_req_config_t, j)->name, &o->error_message);
            break;
        default:
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = KSTR_LIT("Unsupported resource type");
            break;
        }
        if (o->error_code)
            log_info("alter_configs: %d/%.*s refused: %s: %.*s", r->resource_type, KS_ARGS(r->resource_name),
                     kafka_err_name(o->error_code), KS_ARGS(o->error_message));
    }
    return kreq_respond(req, &alter_configs_resp_schema, &resp);
}
