/* api_find_coordinator.c - the FindCoordinator handler (API key 10,
 * versions 0-4).
 *
 * This node coordinates every group: a group key is answered with this
 * broker's id and advertised address. (With etcd, the coordinator of a
 * group will be chosen among the live brokers, as partition leaders are.)
 * Transaction coordinators do not exist yet: key type 1 gets
 * COORDINATOR_NOT_AVAILABLE, other key types INVALID_REQUEST. v4 answers
 * one entry per key of the batch.
 */
#include "broker.h"
#include "metrics.h"
#include "msg_find_coordinator.h"

static int16_t resolve(int8_t key_type, const char **msg) {
    *msg = NULL;
    if (key_type == COORDINATOR_KEY_GROUP) return KERR_NONE;
    if (key_type == COORDINATOR_KEY_TRANSACTION) {
        *msg = "Transactions are not supported by this broker.";
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    *msg = "Unknown coordinator key type.";
    return KERR_INVALID_REQUEST;
}

kh_result_t api_find_coordinator(kreq_t *req) {
    int version = req->hdr.api_version;
    find_coordinator_req_t q;
    if (kmsg_decode(&find_coordinator_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("find_coordinator: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    broker_config_t *cfg = &g_broker.cfg;
    find_coordinator_resp_t resp;
    kmsg_defaults(&find_coordinator_resp_schema, &resp);
    const char *msg;
    if (version < 4) {
        int16_t err = resolve(q.key_type, &msg);
        resp.error_code = err;
        metrics_count_error(req->api->name, err);
        resp.error_message = msg ? kstr_c(msg) : KSTR_NULL;
        resp.node_id = err ? -1 : cfg->node_id;
        resp.host = err ? KSTR_LIT("") : kstr_c(cfg->advertised_host);
        resp.port = err ? -1 : cfg->advertised_port;
        return kreq_respond(req, &find_coordinator_resp_schema, &resp);
    }
    int32_t n = q.coordinator_keys.count > 0 ? q.coordinator_keys.count : 0;
    find_coordinator_resp_coordinator_t *cs =
        KARR_NEW(&req->arena, resp.coordinators, find_coordinator_resp_coordinator_t, n);
    if (!cs) return KH_CLOSE;
    for (int32_t i = 0; i < n; i++) {
        int16_t err = resolve(q.key_type, &msg);
        cs[i].key = *KARR_AT(q.coordinator_keys, kstr_t, i);
        cs[i].error_code = err;
        metrics_count_error(req->api->name, err);
        cs[i].error_message = msg ? kstr_c(msg) : KSTR_NULL;
        cs[i].node_id = err ? -1 : cfg->node_id;
        cs[i].host = err ? KSTR_LIT("") : kstr_c(cfg->advertised_host);
        cs[i].port = err ? -1 : cfg->advertised_port;
    }
    return kreq_respond(req, &find_coordinator_resp_schema, &resp);
}
