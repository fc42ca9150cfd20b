/* api_heartbeat.c - the Heartbeat handler (API key 12, versions 0-4): keeps
 * a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
 * Checks member, generation and (v3+) group.instance.id (group.c). Never
 * written to the metadata store. */
#include "broker.h"
#include "group.h"
#include "msg_heartbeat.h"

kh_result_t api_heartbeat(kreq_t *req) {
    int version = req->hdr.api_version;
    heartbeat_req_t q;
    if (kmsg_decode(&heartbeat_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("heartbeat: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    heartbeat_resp_t resp;
    kmsg_defaults(&heartbeat_resp_schema, &resp);
    resp.error_code = group_heartbeat(q.group_id, q.member_id, version >= 3 ? q.group_instance_id : KSTR_NULL,
                                      q.generation_id);
    return kreq_respond(req, &heartbeat_resp_schema, &resp);
}
