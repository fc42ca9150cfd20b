/* msg_heartbeat.h - Heartbeat request/response (API key 12), versions 0-4,
 * flexible from 4. Transcribed from Kafka's HeartbeatRequest.json /
 * HeartbeatResponse.json; v3 adds group.instance.id. */
#ifndef KAFSCALE_MSG_HEARTBEAT_H
#define KAFSCALE_MSG_HEARTBEAT_H
#include "kmsg.h"

typedef struct {
    kstr_t group_id;
    int32_t generation_id;
    kstr_t member_id;
    kstr_t group_instance_id; /* v3+, nullable, default null */
} heartbeat_req_t;

typedef struct {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;
} heartbeat_resp_t;

extern const kschema_t heartbeat_req_schema, heartbeat_resp_schema;
#endif
