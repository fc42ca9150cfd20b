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
 * Other resource types get INVALID_REQUEST. What the two config-altering
 * APIs share (these checks, validate_only, keeping the result) is in
 * config_alter.c; this file only computes a topic's new configs.
 */
#include <stddef.h>

#include "broker.h"
#include "config_alter.h"
#include "msg_alter_configs.h"

/* The topic's configs become exactly the ones listed: from the defaults. */
static int16_t topic_configs(kreq_t *req, const topic_t *t, const karray_t *configs, topic_config_t *cfg,
                             kstr_t *msg) {
    topic_config_defaults(cfg);
    for (int32_t i = 0; i < configs->count; i++) {
        const alter_configs_req_config_t *c = KARR_AT(*configs, alter_configs_req_config_t, i);
        if (c->value.len < 0) {
            *msg = config_alter_msg(&req->arena, "Null value not supported for topic configs: %.*s", c->name);
            return KERR_INVALID_REQUEST;
        }
        const char *why = NULL;
        int16_t err = topic_config_set(cfg, c->name, c->value, &why);
        if (err) {
            *msg = why ? config_alter_msg(&req->arena, "%.*s", kstr_c(why)) : KSTR_NULL;
            return err;
        }
    }
    return KERR_NONE;
}

static const config_alter_api_t api = {"alter_configs", sizeof(alter_configs_req_config_t),
                                       offsetof(alter_configs_req_config_t, name), topic_configs};

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
        out[i] = (alter_configs_resp_resource_t){.resource_type = r->resource_type, .resource_name = r->resource_name};
        out[i].error_code = config_alter_resource(req, &api, in.validate_only, r->resource_type, r->resource_name,
                                                  &r->configs, &out[i].error_message);
    }
    return kreq_respond(req, &alter_configs_resp_schema, &resp);
}
