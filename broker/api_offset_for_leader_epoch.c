/* api_offset_for_leader_epoch.c - OffsetForLeaderEpoch (API key 23,
 * versions 0-4).
 *
 * Clients (KIP-320) ask, after a leader change or an unclean restart, where
 * the epoch they last saw ends, to detect a truncated log. One broker leads
 * every partition and a partition keeps one leader epoch (p->leader_epoch)
 * for its whole life, so the answers, as Kafka's LeaderEpochFileCache
 * gives them for a log with a single epoch, are:
 *   requested == current epoch   the end offset is the high watermark (what
 *                                consumers can see; unflushed data is not
 *                                part of the log yet)
 *   requested > current, or -1   UNDEFINED_EPOCH (-1) and offset -1
 *   requested < current          that epoch, ending where the current one
 *                                starts: the log start offset
 * CurrentLeaderEpoch (v2+) fences as in Fetch: older than ours
 * FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH. Unknown topics or
 * partitions get UNKNOWN_TOPIC_OR_PARTITION. ReplicaId (v3+) is ignored:
 * there are no followers.
 */
#include "broker.h"
#include "msg_offset_for_leader_epoch.h"

static void answer(const partition_t *p, const offset_for_leader_epoch_req_part_t *qp,
                   offset_for_leader_epoch_resp_part_t *rp) {
    int32_t cur = p->leader_epoch;
    if (qp->current_leader_epoch >= 0 && qp->current_leader_epoch != cur) {
        rp->error_code = qp->current_leader_epoch < cur ? KERR_FENCED_LEADER_EPOCH : KERR_UNKNOWN_LEADER_EPOCH;
        return;
    }
    if (qp->leader_epoch == cur) {
        rp->leader_epoch = cur;
        rp->end_offset = p->log.hw;
    } else if (qp->leader_epoch < cur && qp->leader_epoch != -1) {
        rp->leader_epoch = qp->leader_epoch;
        rp->end_offset = p->log.start_offset;
    } /* else: undefined (-1, -1) */
}

kh_result_t api_offset_for_leader_epoch(kreq_t *req) {
    int v = req->hdr.api_version;
    offset_for_leader_epoch_req_t in;
    if (kmsg_decode(&offset_for_leader_epoch_req_schema, v, req->flexible, &req->body, &in, &req->arena)) {
        log_warn("offset_for_leader_epoch: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }
    offset_for_leader_epoch_resp_t resp;
    kmsg_defaults(&offset_for_leader_epoch_resp_schema, &resp);
    int32_t nt = in.topics.count > 0 ? in.topics.count : 0;
    offset_for_leader_epoch_resp_topic_t *rts =
        KARR_NEW(&req->arena, resp.topics, offset_for_leader_epoch_resp_topic_t, nt);
    if (!rts) goto oom;
    for (int32_t i = 0; i < nt; i++) {
        const offset_for_leader_epoch_req_topic_t *qt = KARR_AT(in.topics, offset_for_leader_epoch_req_topic_t, i);
        offset_for_leader_epoch_resp_topic_t *rt = &rts[i];
        rt->topic = qt->topic;
        topic_t *t = topic_find(qt->topic);
        int32_t np = qt->partitions.count > 0 ? qt->partitions.count : 0;
        offset_for_leader_epoch_resp_part_t *rps =
            KARR_NEW(&req->arena, rt->partitions, offset_for_leader_epoch_resp_part_t, np);
        if (!rps) goto oom;
        for (int32_t j = 0; j < np; j++) {
            const offset_for_leader_epoch_req_part_t *qp =
                KARR_AT(qt->partitions, offset_for_leader_epoch_req_part_t, j);
            offset_for_leader_epoch_resp_part_t *rp = &rps[j];
            *rp = (offset_for_leader_epoch_resp_part_t){.error_code = KERR_NONE, .partition = qp->partition,
                                                        .leader_epoch = -1, .end_offset = -1};
            if (!t || qp->partition < 0 || qp->partition >= t->npartitions) {
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (!partition_serves_reads(&t->partitions[qp->partition])) {
                rp->error_code = KERR_NOT_LEADER_OR_FOLLOWER; /* cluster: another broker leads it */
                continue;
            }
            answer(&t->partitions[qp->partition], qp, rp);
        }
    }
    return kreq_respond(req, &offset_for_leader_epoch_resp_schema, &resp);

oom:
    log_error("offset_for_leader_epoch: out of request memory answering a v%d request, closing", v);
    return KH_CLOSE;
}
