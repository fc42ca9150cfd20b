/* api_leave_group.c - the LeaveGroup handler (API key 13, versions 0-5).
 *
 * v0-2 name one member and answer with one error code (the group's error,
 * else the member's); v3+ (KIP-345) remove a batch of members, each by
 * member id or, with an empty member id, by group.instance.id (admin
 * removal), and answer per member. A top-level error leaves the member list
 * empty, as Kafka does.
 */
#include "broker.h"
#include "group.h"
#include "msg_leave_group.h"

kh_result_t api_leave_group(kreq_t *req) {
    int version = req->hdr.api_version;
    leave_group_req_t q;
    if (kmsg_decode(&leave_group_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("leave_group: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    int n = version < 3 ? 1 : (q.members.count > 0 ? q.members.count : 0);
    gleave_t *ls = karena_alloc(&req->arena, sizeof *ls * (size_t)(n ? n : 1));
    if (!ls) return KH_CLOSE;
    if (version < 3) {
        ls[0] = (gleave_t){q.member_id, KSTR_NULL, KERR_NONE};
    } else {
        for (int i = 0; i < n; i++) {
            const leave_group_req_member_t *m = KARR_AT(q.members, leave_group_req_member_t, i);
            ls[i] = (gleave_t){m->member_id, m->group_instance_id, KERR_NONE};
        }
    }
    int16_t top = group_leave(q.group_id, ls, n);
    leave_group_resp_t resp;
    kmsg_defaults(&leave_group_resp_schema, &resp);
    if (version < 3) {
        resp.error_code = top ? top : ls[0].error;
        return kreq_respond(req, &leave_group_resp_schema, &resp);
    }
    resp.error_code = top;
    int nr = top ? 0 : n;
    leave_group_resp_member_t *rs = KARR_NEW(&req->arena, resp.members, leave_group_resp_member_t, nr);
    if (!rs) return KH_CLOSE;
    for (int i = 0; i < nr; i++)
        rs[i] = (leave_group_resp_member_t){ls[i].member_id, ls[i].instance_id, ls[i].error};
    return kreq_respond(req, &leave_group_resp_schema, &resp);
}
