/* msg_join_group.h - JoinGroup request/response (API key 11), versions 0-9,
 * flexible from 6. Transcribed from Kafka's JoinGroupRequest.json /
 * JoinGroupResponse.json. v1 adds the rebalance timeout (v0: the session
 * timeout is used), v4 the MEMBER_ID_REQUIRED round trip, v5 static
 * membership (group.instance.id), v7 the protocol type in the response and a
 * nullable protocol name, v8 the reason, v9 SkipAssignment (KIP-814). */
#ifndef KAFSCALE_MSG_JOIN_GROUP_H
#define KAFSCALE_MSG_JOIN_GROUP_H
#include "kmsg.h"

typedef struct {
    kstr_t name;
    kbytes_t metadata;
} join_group_req_protocol_t;

typedef struct {
    kstr_t group_id;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* v1+, default -1 */
    kstr_t member_id;
    kstr_t group_instance_id;     /* v5+, nullable, default null */
    kstr_t protocol_type;
    karray_t protocols;           /* join_group_req_protocol_t */
    kstr_t reason;                /* v8+, nullable, default null */
} join_group_req_t;

typedef struct {
    kstr_t member_id;
    kstr_t group_instance_id; /* v5+, nullable */
    kbytes_t metadata;
} join_group_resp_member_t;

typedef struct {
    int32_t throttle_time_ms; /* v2+ */
    int16_t error_code;
    int32_t generation_id;    /* default -1 */
    kstr_t protocol_type;     /* v7+, nullable, default null */
    kstr_t protocol_name;     /* nullable from v7 */
    kstr_t leader;
    bool skip_assignment;     /* v9+ */
    kstr_t member_id;
    karray_t members;         /* join_group_resp_member_t */
} join_group_resp_t;

extern const kschema_t join_group_req_schema, join_group_resp_schema;
#endif
