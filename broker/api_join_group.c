/* api_join_group.c - the JoinGroup handler (API key 11, versions 0-9).
 *
 * Decodes the request and hands it to the coordinator (group.c). When the
 * member must wait for the rebalance to complete, the request parks with its
 * ticket and polls when woken (the coordinator wakes parked requests
 * whenever an answer is ready); the park deadline only bounds a lost wake-up
 * and re-parks. v0 has no rebalance timeout: the session timeout stands in,
 * as in Kafka. v4+ without a group.instance.id must learn its member id
 * first (MEMBER_ID_REQUIRED). Before v7 a missing protocol name goes out as
 * "" (the field is not nullable there).
 */
#include "broker.h"
#include "group.h"
#include "msg_join_group.h"

#include <string.h>

typedef struct jg_state {
    join_group_req_t req;
    uint64_t ticket;
    int64_t park_ms;
} jg_state_t;

/* Kafka reports a member's host as InetAddress.toString(): "/127.0.0.1". */
static void client_host(const kreq_t *req, char *out, size_t sz) {
    const char *peer = kreq_peer(req);
    if (!peer) { snprintf(out, sz, "/"); return; }
    const char *colon = strrchr(peer, ':');
    int n = colon ? (int)(colon - peer) : (int)strlen(peer);
    snprintf(out, sz, "/%.*s", n, peer);
}

static kh_result_t respond(kreq_t *req, ganswer_t *a) {
    int version = req->hdr.api_version;
    join_group_resp_t resp;
    kmsg_defaults(&join_group_resp_schema, &resp);
    resp.error_code = a->error;
    resp.generation_id = a->generation;
    resp.protocol_type = a->protocol_type ? kstr_c(a->protocol_type) : KSTR_NULL;
    resp.protocol_name = a->protocol_name ? kstr_c(a->protocol_name) : version >= 7 ? KSTR_NULL : KSTR_LIT("");
    resp.leader = kstr_c(a->leader ? a->leader : "");
    resp.skip_assignment = a->skip_assignment;
    resp.member_id = kstr_c(a->member_id ? a->member_id : "");
    join_group_resp_member_t *ms = KARR_NEW(&req->arena, resp.members, join_group_resp_member_t, a->nmembers);
    if (!ms) { group_answer_free(a); return KH_CLOSE; }
    for (int i = 0; i < a->nmembers; i++) {
        ms[i].member_id = kstr_c(a->members[i].member_id);
        ms[i].group_instance_id = a->members[i].instance_id ? kstr_c(a->members[i].instance_id) : KSTR_NULL;
        ms[i].metadata = (kbytes_t){a->members[i].metadata, a->members[i].len};
    }
    kh_result_t r = kreq_respond(req, &join_group_resp_schema, &resp);
    group_answer_free(a);
    return r;
}

kh_result_t api_join_group(kreq_t *req) {
    int version = req->hdr.api_version;
    jg_state_t *st = req->state;
    if (st) {
        ganswer_t *a = group_poll(st->req.group_id, st->ticket);
        return a ? respond(req, a) : kreq_park(req, st->park_ms);
    }
    st = karena_alloc(&req->arena, sizeof *st);
    if (!st) return KH_CLOSE;
    if (kmsg_decode(&join_group_req_schema, version, req->flexible, &req->body, &st->req, &req->arena)) {
        log_warn("join_group: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    kreq_keep_state(req, st);
    join_group_req_t *q = &st->req;
    int32_t rebalance_ms =
        version == 0 || q->rebalance_timeout_ms < 0 ? q->session_timeout_ms : q->rebalance_timeout_ms;
    int n = q->protocols.count > 0 ? q->protocols.count : 0;
    kstr_t *names = karena_alloc(&req->arena, sizeof *names * (size_t)(n ? n : 1));
    kbytes_t *metas = karena_alloc(&req->arena, sizeof *metas * (size_t)(n ? n : 1));
    if (!names || !metas) return KH_CLOSE;
    for (int i = 0; i < n; i++) {
        const join_group_req_protocol_t *p = KARR_AT(q->protocols, join_group_req_protocol_t, i);
        names[i] = p->name;
        metas[i] = p->metadata;
    }
    char host[80];
    client_host(req, host, sizeof host);
    gjoin_args_t args = {
        .group_id = q->group_id, .member_id = q->member_id,
        .instance_id = version >= 5 ? q->group_instance_id : KSTR_NULL, .client_id = req->hdr.client_id,
        .client_host = host, .session_timeout_ms = q->session_timeout_ms, .rebalance_timeout_ms = rebalance_ms,
        .protocol_type = q->protocol_type, .nprotocols = n, .protocol_names = names, .protocol_metadata = metas,
        .require_known_member_id = version >= 4 && (version < 5 || q->group_instance_id.len < 0), /* v4+, dynamic */
        .supports_skip_assignment = version >= 9};
    ganswer_t *a = group_join(&args, &st->ticket);
    if (a) return respond(req, a);
    /* Wait for the rebalance; past this the handler polls again and re-parks. */
    st->park_ms = (int64_t)(rebalance_ms > q->session_timeout_ms ? rebalance_ms : q->session_timeout_ms) + 5000;
    return kreq_park(req, st->park_ms);
}
