/* msg_sync_group.c - schema of SyncGroup (API key 14), after Kafka's
 * SyncGroupRequest/Response.json. */
#include "msg_sync_group.h"

KSCHEMA_LOCAL(sync_group_req_assignment_schema, sync_group_req_assignment_t,
    KF(sync_group_req_assignment_t, member_id, KT_STRING, 0, KV_MAX),
    KF(sync_group_req_assignment_t, assignment, KT_BYTES, 0, KV_MAX));
KSCHEMA(sync_group_req_schema, sync_group_req_t,
    KF(sync_group_req_t, group_id, KT_STRING, 0, KV_MAX),
    KF(sync_group_req_t, generation_id, KT_INT32, 0, KV_MAX),
    KF(sync_group_req_t, member_id, KT_STRING, 0, KV_MAX),
    KF(sync_group_req_t, group_instance_id, KT_STRING, 3, KV_MAX, .nullable = 1, .nullable_min = 3),
    KF(sync_group_req_t, protocol_type, KT_STRING, 5, KV_MAX, .nullable = 1, .nullable_min = 5),
    KF(sync_group_req_t, protocol_name, KT_STRING, 5, KV_MAX, .nullable = 1, .nullable_min = 5),
    KFA(sync_group_req_t, assignments, 0, KV_MAX, &sync_group_req_assignment_schema));

KSCHEMA(sync_group_resp_schema, sync_group_resp_t,
    KF(sync_group_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX),
    KF(sync_group_resp_t, error_code, KT_INT16, 0, KV_MAX),
    KF(sync_group_resp_t, protocol_type, KT_STRING, 5, KV_MAX, .nullable = 1, .nullable_min = 5),
    KF(sync_group_resp_t, protocol_name, KT_STRING, 5, KV_MAX, .nullable = 1, .nullable_min = 5),
    KF(sync_group_resp_t, assignment, KT_BYTES, 0, KV_MAX));
