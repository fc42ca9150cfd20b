/* msg_leave_group.h - LeaveGroup request/response (API key 13), versions
 * 0-5, flexible from 4. Transcribed from Kafka's LeaveGroupRequest.json /
 * LeaveGroupResponse.json. v0-2 name one member; v3 (KIP-345) batches
 * members, each by member id and/or group.instance.id; v5 adds a reason. */
#ifndef KAFSCALE_MSG_LEAVE_GROUP_H
#define KAFSCALE_MSG_LEAVE_GROUP_H
#include "kmsg.h"

typedef struct {
    kstr_t member_id;
    kstr_t group_instance_id; /* nullable, default null */
    kstr_t reason;            /* v5+, nullable, default null */
} leave_group_req_member_t;

typedef struct {
    kstr_t group_id;
    kstr_t member_id; /* v0-2 */
    karray_t members; /* leave_group_req_member_t, v3+ */
} leave_group_req_t;

typedef struct {
    kstr_t member_id;
    kstr_t group_instance_id; /* nullable */
    int16_t error_code;
} leave_group_resp_member_t;

typedef struct {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;
    karray_t members;         /* leave_group_resp_member_t, v3+ */
} leave_group_resp_t;

extern const kschema_t leave_group_req_schema, leave_group_resp_schema;
#endif
