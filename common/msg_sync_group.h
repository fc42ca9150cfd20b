/* msg_sync_group.h - SyncGroup request/response (API key 14), versions 0-5,
 * flexible from 4. Transcribed from Kafka's SyncGroupRequest.json /
 * SyncGroupResponse.json. v3 adds group.instance.id, v5 (KIP-559) the
 * protocol type and name in both directions. */
#ifndef KAFSCALE_MSG_SYNC_GROUP_H
#define KAFSCALE_MSG_SYNC_GROUP_H
#include "kmsg.h"

typedef struct {
    kstr_t member_id;
    kbytes_t assignment;
} sync_group_req_assignment_t;

typedef struct {
    kstr_t group_id;
    int32_t generation_id;
    kstr_t member_id;
    kstr_t group_instance_id; /* v3+, nullable, default null */
    kstr_t protocol_type;     /* v5+, nullable, default null */
    kstr_t protocol_name;     /* v5+, nullable, default null */
    karray_t assignments;     /* sync_group_req_assignment_t */
} sync_group_req_t;

typedef struct {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;
    kstr_t protocol_type;     /* v5+, nullable */
    kstr_t protocol_name;     /* v5+, nullable */
    kbytes_t assignment;
} sync_group_resp_t;

extern const kschema_t sync_group_req_schema, sync_group_resp_schema;
#endif
