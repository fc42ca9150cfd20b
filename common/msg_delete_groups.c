/* msg_delete_groups.c - schema of DeleteGroups (API key 42), after Kafka's
 * DeleteGroupsRequest/Response.json. */
#include "msg_delete_groups.h"

KSCHEMA(delete_groups_req_schema, delete_groups_req_t,
    KFAP(delete_groups_req_t, groups_names, KT_STRING, 0, KV_MAX));

KSCHEMA_LOCAL(delete_groups_resp_result_schema, delete_groups_resp_result_t,
    KF(delete_groups_resp_result_t, group_id, KT_STRING, 0, KV_MAX),
    KF(delete_groups_resp_result_t, error_code, KT_INT16, 0, KV_MAX));
KSCHEMA(delete_groups_resp_schema, delete_groups_resp_t,
    KF(delete_groups_resp_t, throttle_time_ms, KT_INT32, 0, KV_MAX),
    KFA(delete_groups_resp_t, results, 0, KV_MAX, &delete_groups_resp_result_schema));
