/* api_describe_cluster.c - DescribeCluster (API key 60, version 0).
 *
 * Java's admin client (KIP-700) asks this instead of Metadata. The answer
 * is the node itself: the only broker (its advertised host and port, no
 * rack), the controller, and the cluster id (KAFSCALE_CLUSTER_ID). Asked
 * for the cluster's authorized operations, it gives every operation Kafka
 * supports on a cluster, as a broker without an authorizer does (the same
 * set Metadata v8-10 reports).
 */
#include "broker.h"
#include "cluster.h"
#include "msg_describe_cluster.h"

/* ALTER, CLUSTER_ACTION, CREATE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS,
 * IDEMPOTENT_WRITE as a bitfield of AclOperation codes. */
#define OPS_CLUSTER ((1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12))

kh_result_t api_describe_cluster(kreq_t *req) {
    int v = req->hdr.api_version;
    describe_cluster_req_t in;
    if (kmsg_decode(&describe_cluster_req_schema, v, req->flexible, &req->body, &in, &req->arena)) {
        log_warn("describe_cluster: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }
    describe_cluster_resp_t resp;
    kmsg_defaults(&describe_cluster_resp_schema, &resp);
    resp.error_code = KERR_NONE;
    resp.cluster_id = kstr_c(g_broker.cfg.cluster_id);
    const cluster_broker_t *live;
    int n = cluster_brokers(&live);
    resp.controller_id = g_broker.cfg.node_id;
    describe_cluster_resp_broker_t *b = KARR_NEW(&req->arena, resp.brokers, describe_cluster_resp_broker_t, n);
    if (!b && n) {
        log_error("describe_cluster: out of request memory, closing");
        return KH_CLOSE;
    }
    for (int i = 0; i < n; i++) {
        b[i].broker_id = live[i].id;
        b[i].host = kstr_c(live[i].host);
        b[i].port = live[i].port;
        b[i].rack = live[i].rack[0] ? kstr_c(live[i].rack) : KSTR_NULL;
        if (i == 0 || live[i].id < resp.controller_id) resp.controller_id = live[i].id;
    }
    resp.cluster_authorized_operations = in.include_cluster_authorized_operations ? OPS_CLUSTER : INT32_MIN;
    return kreq_respond(req, &describe_cluster_resp_schema, &resp);
}
