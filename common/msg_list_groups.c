/* msg_list_groups.c - schema of ListGroups (API key 16), after Kafka's
 * ListGroupsRequest/Response.json. */
#include "msg_list_groups.h"

KSCHEMA(list_groups_req_schema, list_groups_req_t,
    KFAP(list_groups_req_t, states_filter, KT_STRING, 4, KV_MAX),
    KFAP(list_groups_req_t, types_filter, KT_STRING, 5, KV_MAX));

KSCHEMA_LOCAL(list_groups_resp_group_schema, list_groups_resp_group_t,
    KF(list_groups_resp_group_t, group_id, KT_STRING, 0, KV_MAX),
    KF(list_groups_resp_group_t, protocol_type, KT_STRING, 0, KV_MAX),
    KF(list_groups_resp_group_t, group_state, KT_STRING, 4, KV_MAX),
    KF(list_groups_resp_group_t, group_type, KT_STRING, 5, KV_MAX));
KSCHEMA(list_groups_resp_schema, list_groups_resp_t,
    KF(list_groups_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX),
    KF(list_groups_resp_t, error_code, KT_INT16, 0, KV_MAX),
    KFA(list_groups_resp_t, groups, 0, KV_MAX, &list_groups_resp_group_schema));
