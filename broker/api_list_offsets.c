/* api_list_offsets.c - the ListOffsets handler (API key 2, versions 0-7).
 *
 * Resolves, per partition, a timestamp to an offset:
 *   -2 EARLIEST       the log start offset
 *   -1 LATEST         the high watermark (the last stable offset for
 *                     read_committed, which is the same here: no transactions)
 *   -3 MAX_TIMESTAMP  (v7) the batch holding the largest timestamp
 *   otherwise         the first batch whose max timestamp reaches it; -1/-1
 *                     when no batch does.
 * Lookups are at batch granularity (the batch header's max timestamp), and
 * never look past the high watermark. v0 answers OldStyleOffsets = [offset].
 */
#include "broker.h"
#include "msg_list_offsets.h"

static void resolve(partition_t *p, const list_offsets_req_part_t *qp, list_offsets_resp_part_t *rp) {
    plog_t *l = &p->log;
    int64_t ts = -1, off;
    switch (qp->timestamp) {
    case LIST_OFFSETS_EARLIEST: off = l->start_offset; break;
    case LIST_OFFSETS_LATEST: off = l->hw; break;
    case LIST_OFFSETS_MAX_TIMESTAMP: off = plog_max_timestamp(l, &ts); break;
    default: off = plog_offset_for_time(l, qp->timestamp, &ts); break;
    }
    if (off < 0) ts = -1;
    rp->error_code = KERR_NONE;
    rp->offset = off;
    rp->timestamp = ts;
    rp->leader_epoch = off < 0 ? -1 : p->leader_epoch;
}

kh_result_t api_list_offsets(kreq_t *req) {
    int version = req->hdr.api_version;
    list_offsets_req_t *lr = req->state;
    if (!lr) {
        lr = karena_alloc(&req->arena, sizeof *lr);
        if (!lr) {
            log_warn("list_offsets: out of request memory (v%d)", version);
            return KH_CLOSE;
        }
        int rc = kmsg_decode(&list_offsets_req_schema, version, req->flexible, &req->body, lr, &req->arena);
        if (rc) {
            log_warn("list_offsets: malformed v%d request (error %d), closing", version, rc);
            return KH_CLOSE;
        }
        kreq_keep_state(req, lr);
    }

    list_offsets_resp_t resp;
    kmsg_defaults(&list_offsets_resp_schema, &resp);
    int32_t nt = lr->topics.count > 0 ? lr->topics.count : 0;
    list_offsets_resp_topic_t *rts = KARR_NEW(&req->arena, resp.topics, list_offsets_resp_topic_t, nt);
    if (!rts) goto oom;
    for (int32_t i = 0; i < nt; i++) {
        const list_offsets_req_topic_t *qt = KARR_AT(lr->topics, list_offsets_req_topic_t, i);
        list_offsets_resp_topic_t *rt = &rts[i];
        rt->name = qt->name;
        topic_t *t = topic_find(qt->name);
        int32_t np = qt->partitions.count > 0 ? qt->partitions.count : 0;
        list_offsets_resp_part_t *rps = KARR_NEW(&req->arena, rt->partitions, list_offsets_resp_part_t, np);
        if (!rps) goto oom;
        for (int32_t j = 0; j < np; j++) {
            const list_offsets_req_part_t *qp = KARR_AT(qt->partitions, list_offsets_req_part_t, j);
            list_offsets_resp_part_t *rp = &rps[j];
            rp->partition_index = qp->partition_index;
            rp->old_style_offsets = (karray_t){NULL, 0};
            rp->timestamp = -1;
            rp->offset = -1;
            rp->leader_epoch = -1;
            if (!t || qp->partition_index < 0 || qp->partition_index >= t->npartitions) {
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            partition_t *p = &t->partitions[qp->partition_index];
            /* KIP-320 fencing, as in Fetch. */
            if (qp->current_leader_epoch >= 0 && qp->current_leader_epoch != p->leader_epoch) {
                rp->error_code = qp->current_leader_epoch < p->leader_epoch ? KERR_FENCED_LEADER_EPOCH
                                                                           : KERR_UNKNOWN_LEADER_EPOCH;
                continue;
            }
            resolve(p, qp, rp);
            if (version == 0 && rp->offset >= 0 && qp->max_num_offsets > 0) {
                int64_t *o = KARR_NEW(&req->arena, rp->old_style_offsets, int64_t, 1);
                if (!o) goto oom;
                *o = rp->offset;
            }
        }
    }
    return kreq_respond(req, &list_offsets_resp_schema, &resp);

oom:
    log_warn("list_offsets: out of request memory for %d topics (v%d)", nt, version);
    return KH_CLOSE;
}
