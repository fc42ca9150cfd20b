/* api_find_coordinator.c - the FindCoordinator handler (API key 10,
 * versions 0-4).
 *
 * A group key is answered with its coordinator's id and advertised address:
 * this node when it runs alone, in a cluster the live broker that
 * cluster_coordinator() picks (every broker computes the same answer).
 * Transaction coordinators do not exist yet: key type 1 gets
 * COORDINATOR_NOT_AVAILABLE, other key types INVALID_REQUEST. v4 answers
 * one entry per key of the batch.
 */
#include "broker.h"
#include "cluster.h"
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

/* The coordinator of `key`, or COORDINATOR_NOT_AVAILABLE while no broker is known. */
static int16_t locate(int8_t key_type, kstr_t key, const char **msg, int32_t *node, kstr_t *host, int32_t *port) {
    *node = -1;
    *host = KSTR_LIT("");
    *port = -1;
    int16_t err = resolve(key_type, msg);
    if (err) return err;
    const cluster_broker_t *b = cluster_broker_find(cluster_coordinator(key));
    if (!b) {
        *msg = "No live broker is known yet.";
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    *node = b->id;
    *host = kstr_c(b->host);
    *port = b->port;
    return KERR_NONE;
}

kh_result_t api_find_coordinator(kreq_t *req) {
    int version = req->hdr.api_version;
    find_coordinator_req_t q;
    if (kmsg_decode(&find_coordinator_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("find_coordinator: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    find_coordinator_resp_t resp;
    kmsg_defaults(&find_coordinator_resp_schema, &resp);
    const char *msg;
    if (version < 4) {
        int16_t err = locate(q.key_type, q.key, &msg, &resp.node_id, &resp.host, &resp.port);
        resp.error_code = err;
        resp.error_message = msg ? kstr_c(msg) : KSTR_NULL;
        return kreq_respond(req, &find_coordinator_resp_schema, &resp);
    }
    int32_t n = q.coordinator_keys.count > 0 ? q.coordinator_keys.count : 0;
    find_coordinator_resp_coordinator_t *cs =
        KARR_NEW(&req->arena, resp.coordinators, find_coordinator_resp_coordinator_t, n);
    if (!cs) return KH_CLOSE;
    for (int32_t i = 0; i < n; i++) {
        cs[i].key = *KARR_AT(q.coordinator_keys, kstr_t, i);
        int16_t err = locate(q.key_type, cs[i].key, &msg, &cs[i].node_id, &cs[i].host, &cs[i].port);
        cs[i].error_code = err;
        cs[i].error_message = msg ? kstr_c(msg) : KSTR_NULL;
    }
    return kreq_respond(req, &find_coordinator_resp_schema, &resp);
}
