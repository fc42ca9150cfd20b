/* api_list_groups.c - the ListGroups handler (API key 16, versions 0-4):
 * every group this node coordinates (offsets-only groups too, with an empty
 * protocol type), optionally filtered by state (v4, KIP-518; names compared
 * without regard to case, as Kafka does). */
#include "broker.h"
#include "group.h"
#include "msg_list_groups.h"

#include <string.h>
#include <strings.h>

static bool state_wanted(const karray_t *filter, gstate_t s) {
    if (filter->count <= 0) return true;
    const char *name = group_state_name(s);
    for (int32_t i = 0; i < filter->count; i++) {
        kstr_t f = *KARR_AT(*filter, kstr_t, i);
        if (f.len == (int32_t)strlen(name) && !strncasecmp(f.p, name, (size_t)f.len)) return true;
    }
    return false;
}

kh_result_t api_list_groups(kreq_t *req) {
    int version = req->hdr.api_version;
    list_groups_req_t q;
    if (kmsg_decode(&list_groups_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("list_groups: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    list_groups_resp_t resp;
    kmsg_defaults(&list_groups_resp_schema, &resp);
    int n = 0;
    for (const group_t *g = groups_first(); g; g = groups_next(g)) n += state_wanted(&q.states_filter, g->state);
    list_groups_resp_group_t *rs = KARR_NEW(&req->arena, resp.groups, list_groups_resp_group_t, n);
    if (!rs) return KH_CLOSE;
    int k = 0;
    for (const group_t *g = groups_first(); g; g = groups_next(g)) {
        if (!state_wanted(&q.states_filter, g->state)) continue;
        rs[k++] = (list_groups_resp_group_t){kstr_c(g->id), kstr_c(g->protocol_type ? g->protocol_type : ""),
                                             kstr_c(group_state_name(g->state)), KSTR_LIT("classic")};
    }
    return kreq_respond(req, &list_groups_resp_schema, &resp);
}
