/* api_describe_groups.c - the DescribeGroups handler (API key 15, versions
 * 0-5).
 *
 * As Kafka's GroupMetadata.summary: a Stable group reports its protocol and
 * every member's metadata (for that protocol) and assignment; other states
 * report members without them; an unknown group is "Dead" with no members.
 * v3+ may ask for the authorized operations: without ACLs every group
 * operation is allowed (READ, DELETE, DESCRIBE).
 */
#include "broker.h"
#include "group.h"
#include "msg_describe_groups.h"

/* Bits of AclOperation codes READ (3), DELETE (6), DESCRIBE (8). */
#define GROUP_AUTHORIZED_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

kh_result_t api_describe_groups(kreq_t *req) {
    int version = req->hdr.api_version;
    describe_groups_req_t q;
    if (kmsg_decode(&describe_groups_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("describe_groups: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    describe_groups_resp_t resp;
    kmsg_defaults(&describe_groups_resp_schema, &resp);
    int32_t n = q.groups.count > 0 ? q.groups.count : 0;
    describe_groups_resp_group_t *rs = KARR_NEW(&req->arena, resp.groups, describe_groups_resp_group_t, n);
    if (!rs) return KH_CLOSE;
    for (int32_t i = 0; i < n; i++) {
        describe_groups_resp_group_t *r = &rs[i];
        const group_t *g;
        r->group_id = *KARR_AT(q.groups, kstr_t, i);
        r->error_code = group_describe(r->group_id, &g);
        r->authorized_operations =
            q.include_authorized_operations ? GROUP_AUTHORIZED_OPERATIONS : DESCRIBE_GROUPS_NO_OPERATIONS;
        r->protocol_type = KSTR_LIT("");
        r->protocol_data = KSTR_LIT("");
        r->members = (karray_t){NULL, 0};
        if (r->error_code) {
            r->group_state = KSTR_LIT("");
            continue;
        }
        if (!g) {
            r->group_state = kstr_c(group_state_name(GS_DEAD));
            continue;
        }
        bool stable = g->state == GS_STABLE;
        r->group_state = kstr_c(group_state_name(g->state));
        r->protocol_type = kstr_c(g->protocol_type ? g->protocol_type : "");
        r->protocol_data = kstr_c(stable && g->protocol ? g->protocol : "");
        describe_groups_resp_member_t *ms =
            KARR_NEW(&req->arena, r->members, describe_groups_resp_member_t, g->nmembers);
        if (!ms) return KH_CLOSE;
        int k = 0;
        const gmember_t *m;
        TAILQ_FOREACH(m, &g->members, link) {
            describe_groups_resp_member_t *dm = &ms[k++];
            dm->member_id = kstr_c(m->id);
            dm->group_instance_id = m->instance_id ? kstr_c(m->instance_id) : KSTR_NULL;
            dm->client_id = kstr_c(m->client_id);
            dm->client_host = kstr_c(m->client_host);
            const gprotocol_t *p = stable ? gmember_protocol(m, g->protocol) : NULL;
            dm->member_metadata = p ? (kbytes_t){p->metadata, p->len} : (kbytes_t){(const uint8_t *)"", 0};
            dm->member_assignment = stable && m->assignment_len
                                        ? (kbytes_t){m->assignment, m->assignment_len}
                                        : (kbytes_t){(const uint8_t *)"", 0};
        }
    }
    return kreq_respond(req, &describe_groups_resp_schema, &resp);
}
