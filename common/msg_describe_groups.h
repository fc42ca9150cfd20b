/* msg_describe_groups.h - DescribeGroups request/response (API key 15),
 * versions 0-5, flexible from 5. Transcribed from Kafka's
 * DescribeGroupsRequest.json / DescribeGroupsResponse.json. v3 adds
 * authorized operations, v4 members' group.instance.id. */
#ifndef KAFSCALE_MSG_DESCRIBE_GROUPS_H
#define KAFSCALE_MSG_DESCRIBE_GROUPS_H
#include "kmsg.h"

/* AuthorizedOperations when the client did not ask for them. */
#define DESCRIBE_GROUPS_NO_OPERATIONS INT32_MIN

typedef struct {
    karray_t groups;                   /* kstr_t */
    bool include_authorized_operations; /* v3+ */
} describe_groups_req_t;

typedef struct {
    kstr_t member_id;
    kstr_t group_instance_id; /* v4+, nullable, default null */
    kstr_t client_id;
    kstr_t client_host;
    kbytes_t member_metadata;   /* only in the Stable state */
    kbytes_t member_assignment; /* only in the Stable state */
} describe_groups_resp_member_t;

typedef struct {
    int16_t error_code;
    kstr_t group_id;
    kstr_t group_state;
    kstr_t protocol_type;
    kstr_t protocol_data;          /* the protocol name, only in the Stable state */
    karray_t members;              /* describe_groups_resp_member_t */
    int32_t authorized_operations; /* v3+, default INT32_MIN */
} describe_groups_resp_group_t;

typedef struct {
    int32_t throttle_time_ms; /* v1+ */
    karray_t groups;          /* describe_groups_resp_group_t */
} describe_groups_resp_t;

extern const kschema_t describe_groups_req_schema, describe_groups_resp_schema;
#endif
