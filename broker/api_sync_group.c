/* api_sync_group.c - the SyncGroup handler (API key 14, versions 0-5).
 *
 * The leader's SyncGroup carries every member's assignment; the coordinator
 * (group.c) stores them and hands each member its bytes unchanged. A member
 * that syncs before the leader parks with its ticket until the assignment is
 * there (or the rebalance restarts: REBALANCE_IN_PROGRESS). v5 checks and
 * returns the protocol type and name (KIP-559).
 */
#include "broker.h"
#include "group.h"
#include "msg_sync_group.h"

typedef struct sg_state {
    sync_group_req_t req;
    uint64_t ticket;
} sg_state_t;

#define SYNC_PARK_MS 30000 /* bounds a lost wake-up only: the handler re-parks */

static kh_result_t respond(kreq_t *req, ganswer_t *a) {
    sync_group_resp_t resp;
    kmsg_defaults(&sync_group_resp_schema, &resp);
    resp.error_code = a->error;
    resp.protocol_type = a->protocol_type ? kstr_c(a->protocol_type) : KSTR_NULL;
    resp.protocol_name = a->protocol_name ? kstr_c(a->protocol_name) : KSTR_NULL;
    resp.assignment = (kbytes_t){a->assignment ? a->assignment : (const uint8_t *)"", a->assignment_len};
    kh_result_t r = kreq_respond(req, &sync_group_resp_schema, &resp);
    group_answer_free(a);
    return r;
}

kh_result_t api_sync_group(kreq_t *req) {
    int version = req->hdr.api_version;
    sg_state_t *st = req->state;
    if (st) {
        ganswer_t *a = group_poll(st->req.group_id, st->ticket);
        return a ? respond(req, a) : kreq_park(req, SYNC_PARK_MS);
    }
    st = karena_alloc(&req->arena, sizeof *st);
    if (!st) return KH_CLOSE;
    if (kmsg_decode(&sync_group_req_schema, version, req->flexible, &req->body, &st->req, &req->arena)) {
        log_warn("sync_group: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    kreq_keep_state(req, st);
    sync_group_req_t *q = &st->req;
    int n = q->assignments.count > 0 ? q->assignments.count : 0;
    gassignment_t *as = karena_alloc(&req->arena, sizeof *as * (size_t)(n ? n : 1));
    if (!as) return KH_CLOSE;
    for (int i = 0; i < n; i++) {
        const sync_group_req_assignment_t *x = KARR_AT(q->assignments, sync_group_req_assignment_t, i);
        as[i] = (gassignment_t){x->member_id, x->assignment};
    }
    gsync_args_t args = {
        .group_id = q->group_id, .generation = q->generation_id, .member_id = q->member_id,
        .instance_id = version >= 3 ? q->group_instance_id : KSTR_NULL,
        .protocol_type = version >= 5 ? q->protocol_type : KSTR_NULL,
        .protocol_name = version >= 5 ? q->protocol_name : KSTR_NULL, .nassignments = n, .assignments = as};
    ganswer_t *a = group_sync(&args, &st->ticket);
    return a ? respond(req, a) : kreq_park(req, SYNC_PARK_MS);
}
