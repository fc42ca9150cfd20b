/* api_offset_commit.c - the OffsetCommit handler (API key 8, versions 0-8).
 *
 * Every partition of the request goes to the coordinator (group.c) in one
 * batch: unknown topics or partitions get UNKNOWN_TOPIC_OR_PARTITION, the
 * rest are checked against the group (member, generation; assign()-mode
 * commits with generation -1 and no member id are accepted while the group
 * is empty) and written to the metadata store in one record. v1 carries a
 * per-partition commit timestamp, v2-4 a retention time (the offset then
 * expires at commit time + retention, whatever the group does).
 */
#include "broker.h"
#include "group.h"
#include "msg_offset_commit.h"

kh_result_t api_offset_commit(kreq_t *req) {
    int version = req->hdr.api_version;
    offset_commit_req_t q;
    if (kmsg_decode(&offset_commit_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("offset_commit: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    int64_t now = now_ms();
    int64_t expire = version >= 2 && version <= 4 && q.retention_time_ms != -1 ? now + q.retention_time_ms : -1;
    int32_t nt = q.topics.count > 0 ? q.topics.count : 0;
    int total = 0;
    for (int32_t i = 0; i < nt; i++) {
        const offset_commit_req_topic_t *t = KARR_AT(q.topics, offset_commit_req_topic_t, i);
        total += t->partitions.count > 0 ? t->partitions.count : 0;
    }
    gcommit_t *c = karena_alloc(&req->arena, sizeof *c * (size_t)(total ? total : 1));
    if (!c) return KH_CLOSE;
    int k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const offset_commit_req_topic_t *t = KARR_AT(q.topics, offset_commit_req_topic_t, i);
        for (int32_t j = 0; j < t->partitions.count; j++) {
            const offset_commit_req_part_t *p = KARR_AT(t->partitions, offset_commit_req_part_t, j);
            c[k++] = (gcommit_t){
                .topic = t->name, .partition = p->partition_index, .offset = p->committed_offset,
                .leader_epoch = p->committed_leader_epoch, .metadata = p->committed_metadata,
                .commit_ms = version == 1 ? p->commit_timestamp : -1, .expire_ms = expire};
        }
    }
    group_commit(q.group_id, q.member_id, version >= 7 ? q.group_instance_id : KSTR_NULL,
                 q.generation_id_or_member_epoch, c, total);

    offset_commit_resp_t resp;
    kmsg_defaults(&offset_commit_resp_schema, &resp);
    offset_commit_resp_topic_t *rts = KARR_NEW(&req->arena, resp.topics, offset_commit_resp_topic_t, nt);
    if (!rts) return KH_CLOSE;
    k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const offset_commit_req_topic_t *t = KARR_AT(q.topics, offset_commit_req_topic_t, i);
        int32_t np = t->partitions.count > 0 ? t->partitions.count : 0;
        rts[i].name = t->name;
        offset_commit_resp_part_t *rps = KARR_NEW(&req->arena, rts[i].partitions, offset_commit_resp_part_t, np);
        if (!rps) return KH_CLOSE;
        for (int32_t j = 0; j < np; j++, k++) rps[j] = (offset_commit_resp_part_t){c[k].partition, c[k].error};
    }
    return kreq_respond(req, &offset_commit_resp_schema, &resp);
}
