/* msg_heartbeat.c - schema of Heartbeat (API key 12), after Kafka's
 * HeartbeatRequest/Response.json. */
#include "msg_heartbeat.h"

KSCHEMA(heartbeat_req_schema, heartbeat_req_t,
    KF(heartbeat_req_t, group_id, KT_STRING, 0, KV_MAX),
    KF(heartbeat_req_t, generation_id, KT_INT32, 0, KV_MAX),
    KF(heartbeat_req_t, member_id, KT_STRING, 0, KV_MAX),
    KF(heartbeat_req_t, group_instance_id, KT_STRING, 3, KV_MAX, .nullable = 1, .nullable_min = 3));

KSCHEMA(heartbeat_resp_schema, heartbeat_resp_t,
    KF(heartbeat_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX),
    KF(heartbeat_resp_t, error_code, KT_INT16, 0, KV_MAX));
