/* api_offset_delete.c - the OffsetDelete handler (API key 47, version 0,
 * KIP-496): removes committed offsets of a group. An empty group loses any
 * of them; a consumer group with members only those of topics it does not
 * subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise). Unknown topics get
 * UNKNOWN_TOPIC_OR_PARTITION; a group-level error answers no topics. */
#include "broker.h"
#include "group.h"
#include "msg_offset_delete.h"

kh_result_t api_offset_delete(kreq_t *req) {
    int version = req->hdr.api_version;
    offset_delete_req_t q;
    if (kmsg_decode(&offset_delete_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("offset_delete: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    int32_t nt = q.topics.count > 0 ? q.topics.count : 0;
    int total = 0;
    for (int32_t i = 0; i < nt; i++) {
        const offset_delete_req_topic_t *t = KARR_AT(q.topics, offset_delete_req_topic_t, i);
        total += t->partitions.count > 0 ? t->partitions.count : 0;
    }
    gdelete_offset_t *d = karena_alloc(&req->arena, sizeof *d * (size_t)(total ? total : 1));
    if (!d) return KH_CLOSE;
    int k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const offset_delete_req_topic_t *t = KARR_AT(q.topics, offset_delete_req_topic_t, i);
        for (int32_t j = 0; j < t->partitions.count; j++)
            d[k++] = (gdelete_offset_t){t->name, KARR_AT(t->partitions, offset_delete_req_part_t, j)->partition_index,
                                        KERR_NONE};
    }
    offset_delete_resp_t resp;
    kmsg_defaults(&offset_delete_resp_schema, &resp);
    resp.error_code = group_delete_offsets(q.group_id, d, total);
    if (resp.error_code) return kreq_respond(req, &offset_delete_resp_schema, &resp);
    offset_delete_resp_topic_t *rts = KARR_NEW(&req->arena, resp.topics, offset_delete_resp_topic_t, nt);
    if (!rts) return KH_CLOSE;
    k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const offset_delete_req_topic_t *t = KARR_AT(q.topics, offset_delete_req_topic_t, i);
        int32_t np = t->partitions.count > 0 ? t->partitions.count : 0;
        rts[i].name = t->name;
        offset_delete_resp_part_t *rps = KARR_NEW(&req->arena, rts[i].partitions, offset_delete_resp_part_t, np);
        if (!rps) return KH_CLOSE;
        for (int32_t j = 0; j < np; j++, k++) rps[j] = (offset_delete_resp_part_t){d[k].partition, d[k].error};
    }
    return kreq_respond(req, &offset_delete_resp_schema, &resp);
}
