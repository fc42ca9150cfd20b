/* msg_metadata.c - schema of Metadata (API key 3), after Kafka's MetadataRequest/Response.json. */
#include "msg_metadata.h"

KSCHEMA_LOCAL(metadata_req_topic_schema, metadata_req_topic_t,
    KF(metadata_req_topic_t, topic_id, KT_UUID, 10, KV_MAX),
    KF(metadata_req_topic_t, name, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 10));
KSCHEMA(metadata_req_schema, metadata_req_t,
    KFA(metadata_req_t, topics, 0, KV_MAX, &metadata_req_topic_schema, .nullable = 1, .nullable_min = 1),
    KF(metadata_req_t, allow_auto_topic_creation, KT_BOOL, 4, KV_MAX, .dflt = 1),
    KF(metadata_req_t, include_cluster_authorized_operations, KT_BOOL, 8, 10),
    KF(metadata_req_t, include_topic_authorized_operations, KT_BOOL, 8, KV_MAX));

KSCHEMA_LOCAL(metadata_resp_broker_schema, metadata_resp_broker_t,
    KF(metadata_resp_broker_t, node_id, KT_INT32, 0, KV_MAX),
    KF(metadata_resp_broker_t, host, KT_STRING, 0, KV_MAX),
    KF(metadata_resp_broker_t, port, KT_INT32, 0, KV_MAX),
    KF(metadata_resp_broker_t, rack, KT_STRING, 1, KV_MAX, .nullable = 1, .nullable_min = 1));
KSCHEMA_LOCAL(metadata_resp_partition_schema, metadata_resp_partition_t,
    KF(metadata_resp_partition_t, error_code, KT_INT16, 0, KV_MAX),
    KF(metadata_resp_partition_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(metadata_resp_partition_t, leader_id, KT_INT32, 0, KV_MAX),
    KF(metadata_resp_partition_t, leader_epoch, KT_INT32, 7, KV_MAX, .dflt = -1),
    KFAP(metadata_resp_partition_t, replica_nodes, KT_INT32, 0, KV_MAX),
    KFAP(metadata_resp_partition_t, isr_nodes, KT_INT32, 0, KV_MAX),
    KFAP(metadata_resp_partition_t, offline_replicas, KT_INT32, 5, KV_MAX));
KSCHEMA_LOCAL(metadata_resp_topic_schema, metadata_resp_topic_t,
    KF(metadata_resp_topic_t, error_code, KT_INT16, 0, KV_MAX),
    KF(metadata_resp_topic_t, name, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 12),
    KF(metadata_resp_topic_t, topic_id, KT_UUID, 10, KV_MAX),
    KF(metadata_resp_topic_t, is_internal, KT_BOOL, 1, KV_MAX),
    KFA(metadata_resp_topic_t, partitions, 0, KV_MAX, &metadata_resp_partition_schema),
    KF(metadata_resp_topic_t, topic_authorized_operations, KT_INT32, 8, KV_MAX, .dflt = INT32_MIN));
KSCHEMA(metadata_resp_schema, metadata_resp_t,
    KF(metadata_resp_t, throttle_time_ms, KT_INT32, 3, KV_MAX),
    KFA(metadata_resp_t, brokers, 0, KV_MAX, &metadata_resp_broker_schema),
    KF(metadata_resp_t, cluster_id, KT_STRING, 2, KV_MAX, .nullable = 1, .nullable_min = 2),
    KF(metadata_resp_t, controller_id, KT_INT32, 1, KV_MAX, .dflt = -1),
    KFA(metadata_resp_t, topics, 0, KV_MAX, &metadata_resp_topic_schema),
    KF(metadata_resp_t, cluster_authorized_operations, KT_INT32, 8, 10, .dflt = INT32_MIN));
