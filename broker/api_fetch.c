/* api_fetch.c - the Fetch handler (API key 1, versions 4-13).
 *
 * For each requested partition it answers whole record batches from the
 * partition log, by reference: plog_read() hands out pieces of the log's
 * chunks, the encoder writes them as KT_RECORDS refs, and holds on req->resp
 * keep the chunks alive until the bytes left the socket. Nothing is copied and
 * nothing is allocated per message.
 *
 * Limits (KIP-74): each partition gets at most its PartitionMaxBytes and what
 * is left of the request's MaxBytes; the first batch of the first partition
 * that has data goes whole even when it is larger, every later partition only
 * gets batches that fit.
 *
 * Long poll: when fewer than MinBytes were gathered, the handler parks the
 * request for what remains of MaxWaitMs (kreq_park drops what was gathered:
 * the chunk holds and the pieces' iov). It runs again when a partition
 * advances or at the deadline (req->timed_out) and gathers afresh; the decoded
 * request and the response skeleton stay in req->state (kreq_keep_state), so a
 * re-run allocates only the pieces' iov, given back on every park.
 *
 * Older data: offsets below the first batch still in memory (plog_mem_start)
 * come from the object store through store_read() (store_read.c): zero copy
 * from its read cache when the bytes are there, else it starts a load and the
 * partition counts as "loading". A request with nothing to send but a load
 * under way parks until the load lands (kreq_wake_parked re-runs it), for up
 * to max(MaxWaitMs, KAFSCALE_FETCH_LOAD_WAIT_MS): even a MaxWaitMs 0 consumer
 * reading old data must get data, not empty answers forever. Store data and
 * memory data are not mixed in one partition's answer; the client asks again
 * from where the store part ends. A store failure answers
 * KAFKA_STORAGE_ERROR (retriable) for that partition only.
 *
 * Fetch sessions (KIP-227) are not kept: every request is served as a full
 * fetch and answered with SessionId 0, which tells clients to keep sending
 * full fetches. There are no transactions, so read_committed sees what
 * read_uncommitted sees (the last stable offset is the high watermark).
 */
#include "broker.h"
#include "metrics.h"
#include "msg_fetch.h"
#include "store_read.h"

#include <string.h>

typedef struct fetch_state {
    fetch_req_t req;
    fetch_resp_t resp;  /* one entry per requested topic/partition, in request order */
    int64_t deadline_us;      /* MaxWaitMs after arrival */
    int64_t load_deadline_us; /* how long a pending store load is waited for */
} fetch_state_t;

static topic_t *topic_by_id(const kuuid_t *id) {
    static const kuuid_t zero;
    if (!memcmp(id, &zero, sizeof zero)) return NULL;
    for (topic_t *t = topics_first(); t; t = topics_next(t))
        if (!memcmp(&t->id, id, sizeof *id)) return t;
    return NULL;
}

/* Builds the response skeleton once: topics and partitions echo the request. */
static bool build_skeleton(kreq_t *req, fetch_state_t *st) {
    const fetch_req_t *fr = &st->req;
    fetch_resp_t *resp = &st->resp;
    kmsg_defaults(&fetch_resp_schema, resp);
    resp->session_id = 0;
    int32_t nt = fr->topics.count > 0 ? fr->topics.count : 0;
    fetch_resp_topic_t *rts = KARR_NEW(&req->arena, resp->responses, fetch_resp_topic_t, nt);
    if (!rts) return false;
    for (int32_t i = 0; i < nt; i++) {
        const fetch_req_topic_t *qt = KARR_AT(fr->topics, fetch_req_topic_t, i);
        fetch_resp_topic_t *rt = &rts[i];
        rt->topic = qt->topic;
        rt->topic_id = qt->topic_id;
        int32_t np = qt->partitions.count > 0 ? qt->partitions.count : 0;
        fetch_resp_part_t *rps = KARR_NEW(&req->arena, rt->partitions, fetch_resp_part_t, np);
        if (!rps) return false;
        for (int32_t j = 0; j < np; j++) {
            const fetch_req_part_t *qp = KARR_AT(qt->partitions, fetch_req_part_t, j);
            /* The tagged structs (DivergingEpoch, CurrentLeader, SnapshotId)
             * keep their -1 defaults, so they are never sent. */
            memset(&rps[j], 0, sizeof rps[j]);
            rps[j].partition_index = qp->partition;
            rps[j].diverging_epoch = (fetch_resp_epoch_end_offset_t){-1, -1};
            rps[j].current_leader = (fetch_resp_leader_t){-1, -1};
            rps[j].snapshot_id = (fetch_resp_snapshot_id_t){-1, -1};
        }
    }
    return true;
}

static void set_error(fetch_resp_part_t *rp, int16_t err) {
    rp->error_code = err;
    rp->high_watermark = -1;
    rp->last_stable_offset = -1;
    rp->log_start_offset = -1;
    rp->aborted_transactions = (karray_t){NULL, -1};
    rp->preferred_read_replica = -1;
    rp->records = (krecords_t){NULL, 0, 0, NULL};
}

/* Fills every partition of the response from the logs as they are now.
 * Returns the record bytes gathered; *any_error says whether a partition
 * answered with an error (which, as in Kafka, ends the long poll); *loading
 * counts partitions waiting for a store load. */
static int64_t gather(kreq_t *req, fetch_state_t *st, bool *any_error, int *loading) {
    const fetch_req_t *fr = &st->req;
    bool by_id = req->hdr.api_version >= 13;
    bool read_committed = fr->isolation_level == 1;
    int64_t left = fr->max_bytes > 0 ? fr->max_bytes : 0; /* the response's MaxBytes */
    bool first = true;                                      /* no partition has data yet */
    int64_t total = 0;
    *any_error = false;
    *loading = 0;

    for (int32_t i = 0; i < st->resp.responses.count; i++) {
        const fetch_req_topic_t *qt = KARR_AT(fr->topics, fetch_req_topic_t, i);
        fetch_resp_topic_t *rt = KARR_AT(st->resp.responses, fetch_resp_topic_t, i);
        /* Looked up on every run: a topic may be deleted while we are parked. */
        topic_t *t = by_id ? topic_by_id(&qt->topic_id) : topic_find(qt->topic);
        for (int32_t j = 0; j < rt->partitions.count; j++) {
            const fetch_req_part_t *qp = KARR_AT(qt->partitions, fetch_req_part_t, j);
            fetch_resp_part_t *rp = KARR_AT(rt->partitions, fetch_resp_part_t, j);
            if (!t || qp->partition < 0 || qp->partition >= t->npartitions) {
                set_error(rp, !t && by_id ? KERR_UNKNOWN_TOPIC_ID : KERR_UNKNOWN_TOPIC_OR_PARTITION);
                *any_error = true;
                continue;
            }
            partition_t *p = &t->partitions[qp->partition];
            if (!partition_serves_reads(p)) { /* cluster: another broker leads it */
                set_error(rp, p->lead == PL_LOADING ? KERR_LEADER_NOT_AVAILABLE : KERR_NOT_LEADER_OR_FOLLOWER);
                *any_error = true;
                continue;
            }
            /* KIP-320 fencing: a client that knows a different epoch is told so. */
            if (qp->current_leader_epoch >= 0 && qp->current_leader_epoch != p->leader_epoch) {
                set_error(rp, qp->current_leader_epoch < p->leader_epoch ? KERR_FENCED_LEADER_EPOCH
                                                                        : KERR_UNKNOWN_LEADER_EPOCH);
                *any_error = true;
                continue;
            }
            plog_t *l = &p->log;
            if (qp->fetch_offset < l->start_offset || qp->fetch_offset > l->hw) {
                set_error(rp, KERR_OFFSET_OUT_OF_RANGE);
                rp->high_watermark = l->hw;
                rp->last_stable_offset = l->hw;
                rp->log_start_offset = l->start_offset;
                *any_error = true;
                continue;
            }
            rp->error_code = KERR_NONE;
            rp->high_watermark = l->hw;
            rp->last_stable_offset = l->hw;
            rp->log_start_offset = l->start_offset;
            /* Kafka sends a null list to read_uncommitted and an empty one to read_committed. */
            rp->aborted_transactions = read_committed ? (karray_t){NULL, 0} : (karray_t){NULL, -1};
            rp->preferred_read_replica = -1;
            rp->records = (krecords_t){NULL, 0, 0, NULL};
            if (qp->fetch_offset == l->hw) continue;
            int64_t max = qp->partition_max_bytes > 0 ? qp->partition_max_bytes : 0;
            if (max > left) max = left;
            if (max <= 0 && !first) continue;
            int32_t n;
            if (qp->fetch_offset < plog_mem_start(l)) {
                int16_t err;
                int rc = store_read(p, qp->fetch_offset, max, first, &req->resp, &req->arena, &rp->records, &err);
                if (rc < 0) {
                    set_error(rp, err);
                    rp->high_watermark = l->hw;
                    rp->last_stable_offset = l->hw;
                    rp->log_start_offset = l->start_offset;
                    *any_error = true;
                    continue;
                }
                if (rc == 0) {
                    (*loading)++;
                    continue;
                }
                n = rp->records.len;
            } else {
                n = plog_read(l, qp->fetch_offset, max, first, &req->resp, &req->arena, &rp->records);
            }
            if (n > 0) {
                first = false;
                total += n;
                left = left > n ? left - n : 0;
            }
        }
    }
    return total;
}

/* Records in whole batches (as Fetch sends them): the count field of each
 * batch header (offset 57), piece by piece. */
static int64_t records_in(const krecords_t *rec) {
    int64_t n = 0;
    kiov_t one = {rec->p, rec->len > 0 ? (uint32_t)rec->len : 0};
    const kiov_t *iov = rec->niov > 0 ? rec->iov : &one;
    int32_t niov = rec->niov > 0 ? rec->niov : 1;
    for (int32_t i = 0; i < niov; i++)
        for (uint32_t pos = 0; iov[i].p && pos + 61 <= iov[i].len;) {
            n += (int32_t)kbe32(iov[i].p + pos + 57);
            pos += 12 + kbe32(iov[i].p + pos + 8);
        }
    return n;
}

/* Counts a finished response (metrics.h): bytes and records per topic (its
 * error codes are counted by kreq_respond). */
static void count_response(kreq_t *req, const fetch_state_t *st) {
    for (int32_t i = 0; i < st->resp.responses.count; i++) {
        const fetch_resp_topic_t *rt = KARR_AT(st->resp.responses, fetch_resp_topic_t, i);
        char name[256] = "";
        for (int32_t j = 0; j < rt->partitions.count; j++) {
            const fetch_resp_part_t *rp = KARR_AT(rt->partitions, fetch_resp_part_t, j);
            if (rp->records.len <= 0) continue;
            if (!name[0]) {
                const topic_t *t = req->hdr.api_version >= 13 ? topic_by_id(&rt->topic_id) : NULL;
                if (t) snprintf(name, sizeof name, "%s", t->name);
                else kstr_cpy(name, sizeof name, rt->topic);
            }
            metrics_add(M_FETCH_BYTES, rp->records.len, name);
            metrics_add(M_FETCH_RECORDS, (double)records_in(&rp->records), name);
        }
    }
}

kh_result_t api_fetch(kreq_t *req) {
    fetch_state_t *st = req->state;
    if (!st) {
        st = karena_alloc(&req->arena, sizeof *st);
        if (!st) {
            log_warn("fetch: out of request memory (v%d)", req->hdr.api_version);
            return KH_CLOSE;
        }
        int rc = kmsg_decode(&fetch_req_schema, req->hdr.api_version, req->flexible, &req->body, &st->req,
                             &req->arena);
        if (rc) {
            log_warn("fetch: malformed v%d request (error %d), closing", req->hdr.api_version, rc);
            return KH_CLOSE;
        }
        if (!build_skeleton(req, st)) {
            log_warn("fetch: out of request memory for %d topics (v%d)", st->req.topics.count,
                     req->hdr.api_version);
            return KH_CLOSE;
        }
        int64_t start = req->received_us > 0 ? req->received_us : now_us();
        int64_t wait = st->req.max_wait_ms > 0 ? st->req.max_wait_ms : 0;
        st->deadline_us = start + wait * 1000;
        int64_t load_wait = store_read_load_wait_ms();
        st->load_deadline_us = start + (load_wait > wait ? load_wait : wait) * 1000;
        kreq_keep_state(req, st); /* a re-run keeps st; what gather() allocates goes back on park */
    }

    bool any_error;
    int loading;
    int64_t total = gather(req, st, &any_error, &loading);

    if (!req->timed_out && !any_error) {
        /* Not enough yet: wait for more (long poll), and for a pending store
         * load when nothing else is to be sent, even with MaxWaitMs 0. */
        int64_t until = -1;
        int64_t min_bytes = st->req.min_bytes > 1 ? st->req.min_bytes : 1;
        if (loading && total < min_bytes) until = st->load_deadline_us;
        else if (total < st->req.min_bytes && st->req.max_wait_ms > 0) until = st->deadline_us;
        if (until >= 0) {
            int64_t remaining_ms = (until - now_us() + 999) / 1000;
            if (remaining_ms > 0) return kreq_park(req, remaining_ms); /* drops the holds gathered */
        }
    }
    count_response(req, st);
    return kreq_respond(req, &fetch_resp_schema, &st->resp);
}
