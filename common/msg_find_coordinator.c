/* msg_find_coordinator.c - schema of FindCoordinator (API key 10), after
 * Kafka's FindCoordinatorRequest/Response.json. */
#include "msg_find_coordinator.h"

KSCHEMA(find_coordinator_req_schema, find_coordinator_req_t,
    KF(find_coordinator_req_t, key, KT_STRING, 0, 3),
    KF(find_coordinator_req_t, key_type, KT_INT8, 1, KV_MAX),
    KFAP(find_coordinator_req_t, coordinator_keys, KT_STRING, 4, KV_MAX));

KSCHEMA_LOCAL(find_coordinator_resp_coordinator_schema, find_coordinator_resp_coordinator_t,
    KF(find_coordinator_resp_coordinator_t, key, KT_STRING, 4, KV_MAX),
    KF(find_coordinator_resp_coordinator_t, node_id, KT_INT32, 4, KV_MAX),
    KF(find_coordinator_resp_coordinator_t, host, KT_STRING, 4, KV_MAX),
    KF(find_coordinator_resp_coordinator_t, port, KT_INT32, 4, KV_MAX),
    KF(find_coordinator_resp_coordinator_t, error_code, KT_INT16, 4, KV_MAX),
    KF(find_coordinator_resp_coordinator_t, error_message, KT_STRING, 4, KV_MAX, .nullable = 1, .nullable_min = 4));
KSCHEMA(find_coordinator_resp_schema, find_coordinator_resp_t,
    KF(find_coordinator_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX),
    KF(find_coordinator_resp_t, error_code, KT_INT16, 0, 3),
    KF(find_coordinator_resp_t, error_message, KT_STRING, 1, 3, .nullable = 1, .nullable_min = 1),
    KF(find_coordinator_resp_t, node_id, KT_INT32, 0, 3),
    KF(find_coordinator_resp_t, host, KT_STRING, 0, 3),
    KF(find_coordinator_resp_t, port, KT_INT32, 0, 3),
    KFA(find_coordinator_resp_t, coordinators, 4, KV_MAX, &find_coordinator_resp_coordinator_schema));
