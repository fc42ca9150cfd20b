/* api_delete_records.c - DeleteRecords (API key 21, versions 0-2).
 *
 * Moves a partition's log start offset forward: offset -1 means the high
 * watermark; an offset below 0 or above the high watermark is
 * OFFSET_OUT_OF_RANGE; one at or below the current log start changes
 * nothing. The broker's own view moves at once (partition_set_log_start:
 * ListOffsets(earliest) and fetches below it see the new start, in-memory
 * batches wholly below it are dropped), and the flusher is told
 * (flink_send_delete_records, a DELRECORDS frame): it records the new log
 * start in metadata together with the segments wholly below it, deletes
 * those objects and reports LOGSTART back. A segment that straddles the new
 * start stays; its records below the start are no longer served (fetches
 * below the log start are OFFSET_OUT_OF_RANGE).
 *
 * The answer does not wait for the flusher: the new start is in the
 * flusher's metadata within one socket round trip. Were the node to die in
 * between, the old start would come back after the restart (Kafka, too,
 * checkpoints log start offsets lazily). Each partition's low watermark in
 * the answer is its log start after the deletion.
 */
#include "broker.h"
#include "msg_delete_records.h"

kh_result_t api_delete_records(kreq_t *req) {
    int v = req->hdr.api_version;
    delete_records_req_t in;
    if (kmsg_decode(&delete_records_req_schema, v, req->flexible, &req->body, &in, &req->arena)) {
        log_warn("delete_records: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }
    delete_records_resp_t resp;
    kmsg_defaults(&delete_records_resp_schema, &resp);
    int32_t nt = in.topics.count > 0 ? in.topics.count : 0;
    delete_records_resp_topic_t *rts = KARR_NEW(&req->arena, resp.topics, delete_records_resp_topic_t, nt);
    if (!rts) goto oom;
    bool moved = false;
    for (int32_t i = 0; i < nt; i++) {
        const delete_records_req_topic_t *qt = KARR_AT(in.topics, delete_records_req_topic_t, i);
        delete_records_resp_topic_t *rt = &rts[i];
        rt->name = qt->name;
        topic_t *t = topic_find(qt->name);
        int32_t np = qt->partitions.count > 0 ? qt->partitions.count : 0;
        delete_records_resp_part_t *rps = KARR_NEW(&req->arena, rt->partitions, delete_records_resp_part_t, np);
        if (!rps) goto oom;
        for (int32_t j = 0; j < np; j++) {
            const delete_records_req_part_t *qp = KARR_AT(qt->partitions, delete_records_req_part_t, j);
            delete_records_resp_part_t *rp = &rps[j];
            rp->partition_index = qp->partition_index;
            rp->low_watermark = -1;
            rp->error_code = KERR_NONE;
            if (!t || qp->partition_index < 0 || qp->partition_index >= t->npartitions) {
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            partition_t *p = &t->partitions[qp->partition_index];
            if (p->lead != PL_LEADER) { /* cluster: another broker leads it */
                rp->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
                continue;
            }
            int64_t off = qp->offset == -1 ? p->log.hw : qp->offset;
            if (off < 0 || off > p->log.hw) {
                rp->error_code = KERR_OFFSET_OUT_OF_RANGE;
                log_info("delete_records: %s[%d]: offset %lld is outside [0, %lld]", t->name, p->index,
                         (long long)qp->offset, (long long)p->log.hw);
                continue;
            }
            if (off > p->log.start_offset) {
                int64_t was = p->log.start_offset;
                partition_set_log_start(p, off);
                flink_send_delete_records(p, off);
                moved = true;
                log_info("delete_records: %s[%d]: log start %lld -> %lld", t->name, p->index, (long long)was,
                         (long long)off);
            }
            rp->low_watermark = p->log.start_offset;
        }
    }
    if (moved) kreq_wake_parked(); /* parked fetches below the new start answer OFFSET_OUT_OF_RANGE */
    return kreq_respond(req, &delete_records_resp_schema, &resp);

oom:
    log_error("delete_records: out of request memory answering a v%d request, closing", v);
    return KH_CLOSE;
}
