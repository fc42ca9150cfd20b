/* msg_describe_groups.c - schema of DescribeGroups (API key 15), after
 * Kafka's DescribeGroupsRequest/Response.json. */
#include "msg_describe_groups.h"

KSCHEMA(describe_groups_req_schema, describe_groups_req_t,
    KFAP(describe_groups_req_t, groups, KT_STRING, 0, KV_MAX),
    KF(describe_groups_req_t, include_authorized_operations, KT_BOOL, 3, KV_MAX));

KSCHEMA_LOCAL(describe_groups_resp_member_schema, describe_groups_resp_member_t,
    KF(describe_groups_resp_member_t, member_id, KT_STRING, 0, KV_MAX),
    KF(describe_groups_resp_member_t, group_instance_id, KT_STRING, 4, KV_MAX, .nullable = 1, .nullable_min = 4),
    KF(describe_groups_resp_member_t, client_id, KT_STRING, 0, KV_MAX),
    KF(describe_groups_resp_member_t, client_host, KT_STRING, 0, KV_MAX),
    KF(describe_groups_resp_member_t, member_metadata, KT_BYTES, 0, KV_MAX),
    KF(describe_groups_resp_member_t, member_assignment, KT_BYTES, 0, KV_MAX));
KSCHEMA_LOCAL(describe_groups_resp_group_schema, describe_groups_resp_group_t,
    KF(describe_groups_resp_group_t, error_code, KT_INT16, 0, KV_MAX),
    KF(describe_groups_resp_group_t, group_id, KT_STRING, 0, KV_MAX),
    KF(describe_groups_resp_group_t, group_state, KT_STRING, 0, KV_MAX),
    KF(describe_groups_resp_group_t, protocol_type, KT_STRING, 0, KV_MAX),
    KF(describe_groups_resp_group_t, protocol_data, KT_STRING, 0, KV_MAX),
    KFA(describe_groups_resp_group_t, members, 0, KV_MAX, &describe_groups_resp_member_schema),
    KF(describe_groups_resp_group_t, authorized_operations, KT_INT32, 3, KV_MAX, .dflt = INT32_MIN));
KSCHEMA(describe_groups_resp_schema, describe_groups_resp_t,
    KF(describe_groups_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX),
    KFA(describe_groups_resp_t, groups, 0, KV_MAX, &describe_groups_resp_group_schema));
