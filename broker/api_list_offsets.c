/* api_list_offsets.c - the ListOffsets handler (API key 2, versions 0-7).
 *
 * Resolves, per partition, a timestamp to an offset:
 *   -2 EARLIEST       the log start offset
 *   -1 LATEST         the high watermark (the last stable offset for
 *                     read_committed, which is the same here: no transactions)
 *   -3 MAX_TIMESTAMP  (v7) the batch holding the largest timestamp
 *   otherwise         the first batch whose max timestamp reaches it; -1/-1
 *                     when no batch does.
 * In-memory lookups are at batch granularity (the batch header's max
 * timestamp), and never look past the high watermark. v0 answers
 * OldStyleOffsets = [offset].
 *
 * Data older than the memory log is in committed segments: their max
 * timestamps (metadata) pick the first segment that reaches the timestamp,
 * then store_offset_for_time() walks its batches through the read cache and
 * the records of the batch found, for the exact record. That may need loads:
 * the request then parks until they land (kreq_wake_parked re-runs it), for
 * at most KAFSCALE_FETCH_LOAD_WAIT_MS; past that it answers the segment's
 * base offset (never past the right answer: a consumer starting there reads
 * a few older records, never misses one).
 */
#include "broker.h"
#include "msg_list_offsets.h"
#include "store_read.h"

typedef struct lo_state {
    list_offsets_req_t req;
    int64_t deadline_us; /* how long store loads are waited for */
} lo_state_t;

/* Fills rp; returns false when a store load is under way (park and re-run). */
static bool resolve(kreq_t *req, partition_t *p, const list_offsets_req_part_t *qp, list_offsets_resp_part_t *rp) {
    plog_t *l = &p->log;
    int64_t ts = -1, off;
    bool coarse = req->timed_out;
    int16_t err = KERR_NONE;
    int rc = 1;
    switch (qp->timestamp) {
    case LIST_OFFSETS_EARLIEST: off = l->start_offset; break;
    case LIST_OFFSETS_LATEST: off = l->hw; break;
    case LIST_OFFSETS_MAX_TIMESTAMP: {
        off = plog_max_timestamp(l, &ts);
        /* A segment below the memory log may hold a larger timestamp. */
        int64_t mem = plog_mem_start(l), best = off >= 0 ? ts : -1;
        bool in_store = false;
        for (size_t i = 0; i < p->nsegs && p->segs[i].base_offset < mem; i++)
            if (p->segs[i].max_timestamp > best) {
                best = p->segs[i].max_timestamp;
                in_store = true;
            }
        if (in_store) {
            int64_t soff, sts;
            rc = store_offset_for_time(p, best, coarse, &soff, &sts, &err);
            if (rc == 1 && soff >= 0) {
                off = soff;
                ts = sts;
            }
        }
        break;
    }
    default: {
        int64_t soff, sts;
        rc = store_offset_for_time(p, qp->timestamp, coarse, &soff, &sts, &err);
        if (rc == 1 && soff >= 0) {
            off = soff;
            ts = sts;
        } else {
            off = plog_offset_for_time(l, qp->timestamp, &ts);
        }
        break;
    }
    }
    if (rc == 0) return false;
    if (rc < 0) {
        rp->error_code = err;
        rp->offset = -1;
        rp->timestamp = -1;
        rp->leader_epoch = -1;
        return true;
    }
    if (off < 0) ts = -1;
    rp->error_code = KERR_NONE;
    rp->offset = off;
    rp->timestamp = ts;
    rp->leader_epoch = off < 0 ? -1 : p->leader_epoch;
    return true;
}

kh_result_t api_list_offsets(kreq_t *req) {
    int version = req->hdr.api_version;
    lo_state_t *st = req->state;
    if (!st) {
        st = karena_alloc(&req->arena, sizeof *st);
        if (!st) {
            log_warn("list_offsets: out of request memory (v%d)", version);
            return KH_CLOSE;
        }
        int rc = kmsg_decode(&list_offsets_req_schema, version, req->flexible, &req->body, &st->req, &req->arena);
        if (rc) {
            log_warn("list_offsets: malformed v%d request (error %d), closing", version, rc);
            return KH_CLOSE;
        }
        int64_t start = req->received_us > 0 ? req->received_us : now_us();
        st->deadline_us = start + store_read_load_wait_ms() * 1000;
        kreq_keep_state(req, st);
    }
    list_offsets_req_t *lr = &st->req;
    bool loading = false;

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
            if (!partition_serves_reads(p)) { /* cluster: another broker leads it */
                rp->error_code = p->lead == PL_LOADING ? KERR_LEADER_NOT_AVAILABLE : KERR_NOT_LEADER_OR_FOLLOWER;
                continue;
            }
            /* KIP-320 fencing, as in Fetch. */
            if (qp->current_leader_epoch >= 0 && qp->current_leader_epoch != p->leader_epoch) {
                rp->error_code = qp->current_leader_epoch < p->leader_epoch ? KERR_FENCED_LEADER_EPOCH
                                                                           : KERR_UNKNOWN_LEADER_EPOCH;
                continue;
            }
            if (!resolve(req, p, qp, rp)) {
                loading = true;
                continue;
            }
            if (version == 0 && rp->offset >= 0 && qp->max_num_offsets > 0) {
                int64_t *o = KARR_NEW(&req->arena, rp->old_style_offsets, int64_t, 1);
                if (!o) goto oom;
                *o = rp->offset;
            }
        }
    }
    if (loading) {
        int64_t remaining_ms = (st->deadline_us - now_us() + 999) / 1000;
        /* At the deadline the re-run has req->timed_out set: coarse answers. */
        return kreq_park(req, remaining_ms > 0 ? remaining_ms : 0);
    }
    return kreq_respond(req, &list_offsets_resp_schema, &resp);

oom:
    log_warn("list_offsets: out of request memory for %d topics (v%d)", nt, version);
    return KH_CLOSE;
}
