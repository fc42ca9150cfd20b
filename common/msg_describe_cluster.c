/* msg_describe_cluster.c - schema of DescribeCluster (API key 60), after
 * Kafka's DescribeClusterRequest.json and DescribeClusterResponse.json. */
#include "msg_describe_cluster.h"

KSCHEMA(describe_cluster_req_schema, describe_cluster_req_t,
    KF(describe_cluster_req_t, include_cluster_authorized_operations, KT_BOOL, 0, KV_MAX));

KSCHEMA_LOCAL(describe_cluster_resp_broker_schema, describe_cluster_resp_broker_t,
    KF(describe_cluster_resp_broker_t, broker_id, KT_INT32, 0, KV_MAX),
    KF(describe_cluster_resp_broker_t, host, KT_STRING, 0, KV_MAX),
    KF(describe_cluster_resp_broker_t, port, KT_INT32, 0, KV_MAX),
    KF(describe_cluster_resp_broker_t, rack, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0));
KSCHEMA(describe_cluster_resp_schema, describe_cluster_resp_t,
    KF(describe_cluster_resp_t, throttle_time_ms, KT_INT32, 0, KV_MAX),
    KF(describe_cluster_resp_t, error_code, KT_INT16, 0, KV_MAX),
    KF(describe_cluster_resp_t, error_message, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0),
    KF(describe_cluster_resp_t, endpoint_type, KT_INT8, 1, KV_MAX, .dflt = 1),
    KF(describe_cluster_resp_t, cluster_id, KT_STRING, 0, KV_MAX),
    KF(describe_cluster_resp_t, controller_id, KT_INT32, 0, KV_MAX, .dflt = -1),
    KFA(describe_cluster_resp_t, brokers, 0, KV_MAX, &describe_cluster_resp_broker_schema),
    KF(describe_cluster_resp_t, cluster_authorized_operations, KT_INT32, 0, KV_MAX, .dflt = INT32_MIN));
