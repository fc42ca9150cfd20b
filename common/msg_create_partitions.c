/* msg_create_partitions.c - schema of CreatePartitions (API key 37), after
 * Kafka's CreatePartitionsRequest.json and CreatePartitionsResponse.json. */
#include "msg_create_partitions.h"

KSCHEMA_LOCAL(create_partitions_req_assignment_schema, create_partitions_req_assignment_t,
    KFAP(create_partitions_req_assignment_t, broker_ids, KT_INT32, 0, KV_MAX));
KSCHEMA_LOCAL(create_partitions_req_topic_schema, create_partitions_req_topic_t,
    KF(create_partitions_req_topic_t, name, KT_STRING, 0, KV_MAX),
    KF(create_partitions_req_topic_t, count, KT_INT32, 0, KV_MAX),
    KFA(create_partitions_req_topic_t, assignments, 0, KV_MAX, &create_partitions_req_assignment_schema,
        .nullable = 1, .nullable_min = 0));
KSCHEMA(create_partitions_req_schema, create_partitions_req_t,
    KFA(create_partitions_req_t, topics, 0, KV_MAX, &create_partitions_req_topic_schema),
    KF(create_partitions_req_t, timeout_ms, KT_INT32, 0, KV_MAX),
    KF(create_partitions_req_t, validate_only, KT_BOOL, 0, KV_MAX));

KSCHEMA_LOCAL(create_partitions_resp_result_schema, create_partitions_resp_result_t,
    KF(create_partitions_resp_result_t, name, KT_STRING, 0, KV_MAX),
    KF(create_partitions_resp_result_t, error_code, KT_INT16, 0, KV_MAX),
    KF(create_partitions_resp_result_t, error_message, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0));
KSCHEMA(create_partitions_resp_schema, create_partitions_resp_t,
    KF(create_partitions_resp_t, throttle_time_ms, KT_INT32, 0, KV_MAX),
    KFA(create_partitions_resp_t, results, 0, KV_MAX, &create_partitions_resp_result_schema));
