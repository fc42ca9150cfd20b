/* msg_leave_group.c - schema of LeaveGroup (API key 13), after Kafka's
 * LeaveGroupRequest/Response.json. */
#include "msg_leave_group.h"

KSCHEMA_LOCAL(leave_group_req_member_schema, leave_group_req_member_t,
    KF(leave_group_req_member_t, member_id, KT_STRING, 3, KV_MAX),
    KF(leave_group_req_member_t, group_instance_id, KT_STRING, 3, KV_MAX, .nullable = 1, .nullable_min = 3),
    KF(leave_group_req_member_t, reason, KT_STRING, 5, KV_MAX, .nullable = 1, .nullable_min = 5));
KSCHEMA(leave_group_req_schema, leave_group_req_t,
    KF(leave_group_req_t, group_id, KT_STRING, 0, KV_MAX),
    KF(leave_group_req_t, member_id, KT_STRING, 0, 2),
    KFA(leave_group_req_t, members, 3, KV_MAX, &leave_group_req_member_schema));

KSCHEMA_LOCAL(leave_group_resp_member_schema, leave_group_resp_member_t,
    KF(leave_group_resp_member_t, member_id, KT_STRING, 3, KV_MAX),
    KF(leave_group_resp_member_t, group_instance_id, KT_STRING, 3, KV_MAX, .nullable = 1, .nullable_min = 3),
    KF(leave_group_resp_member_t, error_code, KT_INT16, 3, KV_MAX));
KSCHEMA(leave_group_resp_schema, leave_group_resp_t,
    KF(leave_group_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX),
    KF(leave_group_resp_t, error_code, KT_INT16, 0, KV_MAX),
    KFA(leave_group_resp_t, members, 3, KV_MAX, &leave_group_resp_member_schema));
