/* msg_list_groups.h - ListGroups request/response (API key 16), versions
 * 0-4, flexible from 3. Transcribed from Kafka's ListGroupsRequest.json /
 * ListGroupsResponse.json; v4 (KIP-518) adds the states filter and each
 * group's state; v5's type filter and group type are in the tables too. */
#ifndef KAFSCALE_MSG_LIST_GROUPS_H
#define KAFSCALE_MSG_LIST_GROUPS_H
#include "kmsg.h"

typedef struct {
    karray_t states_filter; /* kstr_t, v4+ */
    karray_t types_filter;  /* kstr_t, v5+ */
} list_groups_req_t;

typedef struct {
    kstr_t group_id;
    kstr_t protocol_type;
    kstr_t group_state; /* v4+ */
    kstr_t group_type;  /* v5+ */
} list_groups_resp_group_t;

typedef struct {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;
    karray_t groups;          /* list_groups_resp_group_t */
} list_groups_resp_t;

extern const kschema_t list_groups_req_schema, list_groups_resp_schema;
#endif
