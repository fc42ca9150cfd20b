/* msg_delete_groups.h - DeleteGroups request/response (API key 42),
 * versions 0-2, flexible from 2. Transcribed from Kafka's
 * DeleteGroupsRequest.json / DeleteGroupsResponse.json. */
#ifndef KAFSCALE_MSG_DELETE_GROUPS_H
#define KAFSCALE_MSG_DELETE_GROUPS_H
#include "kmsg.h"

typedef struct {
    karray_t groups_names; /* kstr_t */
} delete_groups_req_t;

typedef struct {
    kstr_t group_id;
    int16_t error_code;
} delete_groups_resp_result_t;

typedef struct {
    int32_t throttle_time_ms;
    karray_t results; /* delete_groups_resp_result_t */
} delete_groups_resp_t;

extern const kschema_t delete_groups_req_schema, delete_groups_resp_schema;
#endif
