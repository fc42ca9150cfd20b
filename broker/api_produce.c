/* api_produce.c - Produce (key 0), v3-v9: validates each partition's record
 * batches, assigns offsets, appends them to the partition log and hands them
 * to the flusher. Answers per acks: 0 never; 1 once appended; all (-1) once
 * every appended batch is durable in the object store and committed (the
 * request parks until the flusher's report moves the high watermark, or
 * times out after the request's timeout_ms with REQUEST_TIMED_OUT).
 * Batches stay opaque bytes throughout. */
#include "broker.h"
#include "metrics.h"
#include "msg_produce.h"

/* What a parked acks=all request waits for. */
typedef struct produce_state {
    produce_resp_t resp;
    int64_t deadline_ms;
    int32_t nwait;               /* partitions not durable yet */
    int64_t *need_end;           /* per response partition, in order: end offset to reach, -1 = nothing */
    uint32_t *generation;        /* the partition's generation when we appended */
} produce_state_t;

/* Re-checks a parked acks=all request; true when it can be answered. */
static bool produce_check_durable(kreq_t *req, produce_state_t *st) {
    int32_t k = 0, waiting = 0;
    for (int32_t i = 0; i < st->resp.topics.count; i++) {
        produce_resp_topic_t *rt = KARR_AT(st->resp.topics, produce_resp_topic_t, i);
        for (int32_t j = 0; j < rt->partitions.count; j++, k++) {
            if (st->need_end[k] < 0) continue;
            produce_resp_part_t *rp = KARR_AT(rt->partitions, produce_resp_part_t, j);
            partition_t *p = partition_find(rt->name, rp->index);
            if (!p) { /* deleted while we waited */
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                rp->base_offset = -1;
                st->need_end[k] = -1;
                continue;
            }
            if (p->generation == st->generation[k] + 1 && st->need_end[k] <= p->prev_gen_hw) {
                /* Durable before the partition was reset (handed over to
                 * another broker, say) and not answered yet: it is done. */
                rp->log_start_offset = -1;
                st->need_end[k] = -1;
                continue;
            }
            if (p->generation != st->generation[k]) {
                /* Our batches were dropped (see flush_link.c reconcile). */
                rp->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
                rp->base_offset = -1;
                rp->error_message = KSTR_LIT("The batch was not made durable; retry");
                st->need_end[k] = -1;
                continue;
            }
            if (p->log.hw >= st->need_end[k]) {
                rp->log_start_offset = p->log.start_offset;
                st->need_end[k] = -1;
                continue;
            }
            if (req->timed_out) {
                rp->error_code = KERR_REQUEST_TIMED_OUT;
                rp->error_message = KSTR_LIT("Not durable in the object store within the request timeout");
                st->need_end[k] = -1;
                continue;
            }
            waiting++;
        }
    }
    st->nwait = waiting;
    return waiting == 0;
}

kh_result_t api_produce(kreq_t *req) {
    produce_state_t *st = req->state;
    if (st) { /* a parked acks=all request re-run */
        if (!produce_check_durable(req, st)) {
            flink_flush_hint();
            return kreq_park(req, st->deadline_ms - now_ms());
        }
        return kreq_respond(req, &produce_resp_schema, &st->resp);
    }

    produce_req_t in;
    if (kmsg_decode(&produce_req_schema, req->hdr.api_version, req->flexible, &req->body, &in, &req->arena)) {
        log_warn("malformed Produce v%d request", req->hdr.api_version);
        return KH_CLOSE;
    }
    int16_t global_err = KERR_NONE;
    const char *global_msg = NULL;
    if (in.acks != 0 && in.acks != 1 && in.acks != -1) {
        global_err = KERR_INVALID_REQUIRED_ACKS;
        global_msg = "acks must be -1, 0 or 1";
    } else if (in.transactional_id.len >= 0) {
        global_err = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        global_msg = "Transactions are not supported by this broker";
    }

    st = karena_alloc(&req->arena, sizeof *st);
    if (!st) return KH_CLOSE;
    produce_resp_t *resp = &st->resp;
    int32_t nparts = 0;
    for (int32_t i = 0; i < in.topics.count; i++) nparts += KARR_AT(in.topics, produce_req_topic_t, i)->partitions.count;
    st->need_end = karena_alloc(&req->arena, sizeof(int64_t) * (size_t)(nparts > 0 ? nparts : 1));
    st->generation = karena_alloc(&req->arena, sizeof(uint32_t) * (size_t)(nparts > 0 ? nparts : 1));
    produce_resp_topic_t *rtopics = KARR_NEW(&req->arena, resp->topics, produce_resp_topic_t, in.topics.count);
    if (!st->need_end || !st->generation || (!rtopics && in.topics.count > 0)) return KH_CLOSE;
    int32_t k = 0;
    bool wait = false;
    for (int32_t i = 0; i < in.topics.count; i++) {
        produce_req_topic_t *t = KARR_AT(in.topics, produce_req_topic_t, i);
        produce_resp_topic_t *rt = &rtopics[i];
        rt->name = t->name;
        produce_resp_part_t *rparts = KARR_NEW(&req->arena, rt->partitions, produce_resp_part_t, t->partitions.count);
        if (!rparts && t->partitions.count > 0) return KH_CLOSE;
        int16_t topic_err = global_err;
        topic_t *topic = NULL;
        if (!topic_err) topic = topic_auto_create(t->name, &topic_err);
        for (int32_t j = 0; j < t->partitions.count; j++, k++) {
            produce_req_part_t *p = KARR_AT(t->partitions, produce_req_part_t, j);
            produce_resp_part_t *rp = &rparts[j];
            *rp = (produce_resp_part_t){.index = p->index, .base_offset = -1, .log_append_time_ms = -1,
                                        .log_start_offset = -1, .record_errors = {NULL, 0},
                                        .error_message = KSTR_NULL};
            st->need_end[k] = -1;
            const char *msg = global_msg;
            int16_t err = topic_err;
            partition_t *part = NULL;
            if (!err && (p->index < 0 || p->index >= topic->npartitions)) err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (!err) {
                part = &topic->partitions[p->index];
                /* The records bytes are a view into our own frame: safe to patch in place. */
                err = partition_append(part, (uint8_t *)p->records.p, p->records.len, &rp->base_offset,
                                       &rp->log_append_time_ms, &msg);
            }
            rp->error_code = err;
            if (err) {
                if (msg) rp->error_message = kstr_c(msg);
                log_debug("produce to %.*s[%d] refused: %s", t->name.len > 0 ? t->name.len : 0, t->name.p, p->index,
                          kafka_err_name(err));
                continue;
            }
            flink_append(part, rp->base_offset);
            rp->log_start_offset = part->log.start_offset;
            if (in.acks == -1 && part->log.hw < part->log.next_offset) {
                st->need_end[k] = part->log.next_offset;
                st->generation[k] = part->generation;
                wait = true;
            }
        }
    }
    if (in.acks == 0) {
        kreq_count_errors(req, &produce_resp_schema, resp); /* no response, but the refusals count */
        return KH_NO_RESPONSE;
    }
    if (wait) {
        st->deadline_ms = now_ms() + (in.timeout_ms > 0 ? in.timeout_ms : 0);
        kreq_keep_state(req, st);
        flink_flush_hint();
        if (in.timeout_ms <= 0) {
            req->timed_out = true;
            produce_check_durable(req, st);
            return kreq_respond(req, &produce_resp_schema, resp);
        }
        return kreq_park(req, in.timeout_ms);
    }
    return kreq_respond(req, &produce_resp_schema, resp);
}
