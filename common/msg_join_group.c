/* msg_join_group.c - schema of JoinGroup (API key 11), after Kafka's
 * JoinGroupRequest/Response.json. */
#include "msg_join_group.h"

KSCHEMA_LOCAL(join_group_req_protocol_schema, join_group_req_protocol_t,
    KF(join_group_req_protocol_t, name, KT_STRING, 0, KV_MAX),
    KF(join_group_req_protocol_t, metadata, KT_BYTES, 0, KV_MAX));
KSCHEMA(join_group_req_schema, join_group_req_t,
    KF(join_group_req_t, group_id, KT_STRING, 0, KV_MAX),
    KF(join_group_req_t, session_timeout_ms, KT_INT32, 0, KV_MAX),
    KF(join_group_req_t, rebalance_timeout_ms, KT_INT32, 1, KV_MAX, .dflt = -1),
    KF(join_group_req_t, member_id, KT_STRING, 0, KV_MAX),
    KF(join_group_req_t, group_instance_id, KT_STRING, 5, KV_MAX, .nullable = 1, .nullable_min = 5),
    KF(join_group_req_t, protocol_type, KT_STRING, 0, KV_MAX),
    KFA(join_group_req_t, protocols, 0, KV_MAX, &join_group_req_protocol_schema),
    KF(join_group_req_t, reason, KT_STRING, 8, KV_MAX, .nullable = 1, .nullable_min = 8));

KSCHEMA_LOCAL(join_group_resp_member_schema, join_group_resp_member_t,
    KF(join_group_resp_member_t, member_id, KT_STRING, 0, KV_MAX),
    KF(join_group_resp_member_t, group_instance_id, KT_STRING, 5, KV_MAX, .nullable = 1, .nullable_min = 5),
    KF(join_group_resp_member_t, metadata, KT_BYTES, 0, KV_MAX));
KSCHEMA(join_group_resp_schema, join_group_resp_t,
    KF(join_group_resp_t, throttle_time_ms, KT_INT32, 2, KV_MAX),
    KF(join_group_resp_t, error_code, KT_INT16, 0, KV_MAX),
    KF(join_group_resp_t, generation_id, KT_INT32, 0, KV_MAX, .dflt = -1),
    KF(join_group_resp_t, protocol_type, KT_STRING, 7, KV_MAX, .nullable = 1, .nullable_min = 7),
    KF(join_group_resp_t, protocol_name, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 7),
    KF(join_group_resp_t, leader, KT_STRING, 0, KV_MAX),
    KF(join_group_resp_t, skip_assignment, KT_BOOL, 9, KV_MAX),
    KF(join_group_resp_t, member_id, KT_STRING, 0, KV_MAX),
    KFA(join_group_resp_t, members, 0, KV_MAX, &join_group_resp_member_schema));
