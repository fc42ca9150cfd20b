/* api_produce.c - Produce (key 0), v3-v9: validates each partition's record
 * batches, assigns offsets and appends them; answers per acks (0: nothing,
 * 1 and all: once appended and committed). Batches stay opaque bytes. */
#include "broker.h"
#include "msg_produce.h"

kh_result_t api_produce(kreq_t *req) {
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

    produce_resp_t resp = {.throttle_time_ms = 0};
    produce_resp_topic_t *rtopics = KARR_NEW(&req->arena, resp.topics, produce_resp_topic_t, in.topics.count);
    if (!rtopics && in.topics.count > 0) return KH_CLOSE;
    for (int32_t i = 0; i < in.topics.count; i++) {
        produce_req_topic_t *t = KARR_AT(in.topics, produce_req_topic_t, i);
        produce_resp_topic_t *rt = &rtopics[i];
        rt->name = t->name;
        produce_resp_part_t *rparts = KARR_NEW(&req->arena, rt->partitions, produce_resp_part_t, t->partitions.count);
        if (!rparts && t->partitions.count > 0) return KH_CLOSE;
        int16_t topic_err = global_err;
        topic_t *topic = NULL;
        if (!topic_err) topic = topic_auto_create(t->name, &topic_err);
        for (int32_t j = 0; j < t->partitions.count; j++) {
            produce_req_part_t *p = KARR_AT(t->partitions, produce_req_part_t, j);
            produce_resp_part_t *rp = &rparts[j];
            *rp = (produce_resp_part_t){.index = p->index, .base_offset = -1, .log_append_time_ms = -1,
                                        .log_start_offset = -1, .record_errors = {NULL, 0},
                                        .error_message = KSTR_NULL};
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
            /* In-memory build: appended means committed. */
            partition_committed(part, part->log.next_offset);
            rp->log_start_offset = part->log.start_offset;
        }
    }
    if (in.acks == 0) return KH_NO_RESPONSE;
    return kreq_respond(req, &produce_resp_schema, &resp);
}
