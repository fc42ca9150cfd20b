/* api_delete_groups.c - the DeleteGroups handler (API key 42, versions 0-2):
 * deletes empty groups with their committed offsets (NON_EMPTY_GROUP while
 * members are in, GROUP_ID_NOT_FOUND for unknown groups). A group named
 * twice is answered once, as Kafka handles the names as a set. */
#include "broker.h"
#include "group.h"
#include "msg_delete_groups.h"

kh_result_t api_delete_groups(kreq_t *req) {
    int version = req->hdr.api_version;
    delete_groups_req_t q;
    if (kmsg_decode(&delete_groups_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("delete_groups: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    delete_groups_resp_t resp;
    kmsg_defaults(&delete_groups_resp_schema, &resp);
    int32_t n = q.groups_names.count > 0 ? q.groups_names.count : 0;
    delete_groups_resp_result_t *rs = KARR_NEW(&req->arena, resp.results, delete_groups_resp_result_t, n);
    if (!rs) return KH_CLOSE;
    int k = 0;
    for (int32_t i = 0; i < n; i++) {
        kstr_t id = *KARR_AT(q.groups_names, kstr_t, i);
        bool dup = false;
        for (int j = 0; j < k && !dup; j++) dup = kstr_eq(rs[j].group_id, id);
        if (dup) continue;
        rs[k] = (delete_groups_resp_result_t){id, group_delete(id)};
        k++;
    }
    resp.results.count = k;
    return kreq_respond(req, &delete_groups_resp_schema, &resp);
}
