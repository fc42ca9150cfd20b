/* msg_fetch.c - schema of Fetch (API key 1), after Kafka's FetchRequest.json and
 * FetchResponse.json (field order, versions, nullability, defaults and tags as
 * there). Types and the versions the broker serves: msg_fetch.h. */
#include "msg_fetch.h"

/* ---- request ---- */

KSCHEMA_LOCAL(fetch_req_part_schema, fetch_req_part_t,
    KF(fetch_req_part_t, partition, KT_INT32, 0, KV_MAX),
    KF(fetch_req_part_t, current_leader_epoch, KT_INT32, 9, KV_MAX, .dflt = -1),
    KF(fetch_req_part_t, fetch_offset, KT_INT64, 0, KV_MAX),
    KF(fetch_req_part_t, last_fetched_epoch, KT_INT32, 12, KV_MAX, .dflt = -1),
    KF(fetch_req_part_t, log_start_offset, KT_INT64, 5, KV_MAX, .dflt = -1),
    KF(fetch_req_part_t, partition_max_bytes, KT_INT32, 0, KV_MAX),
    KF(fetch_req_part_t, replica_directory_id, KT_UUID, 17, KV_MAX, .tagged = 1, .tag = 0));
KSCHEMA_LOCAL(fetch_req_topic_schema, fetch_req_topic_t,
    KF(fetch_req_topic_t, topic, KT_STRING, 0, 12),
    KF(fetch_req_topic_t, topic_id, KT_UUID, 13, KV_MAX),
    KFA(fetch_req_topic_t, partitions, 0, KV_MAX, &fetch_req_part_schema));
KSCHEMA_LOCAL(fetch_req_forgotten_schema, fetch_req_forgotten_t,
    KF(fetch_req_forgotten_t, topic, KT_STRING, 7, 12),
    KF(fetch_req_forgotten_t, topic_id, KT_UUID, 13, KV_MAX),
    KFAP(fetch_req_forgotten_t, partitions, KT_INT32, 7, KV_MAX));
KSCHEMA_LOCAL(fetch_req_replica_state_schema, fetch_req_replica_state_t,
    KF(fetch_req_replica_state_t, replica_id, KT_INT32, 15, KV_MAX, .dflt = -1),
    KF(fetch_req_replica_state_t, replica_epoch, KT_INT64, 15, KV_MAX, .dflt = -1));
KSCHEMA(fetch_req_schema, fetch_req_t,
    KF(fetch_req_t, cluster_id, KT_STRING, 12, KV_MAX, .nullable = 1, .nullable_min = 12, .tagged = 1, .tag = 0),
    KF(fetch_req_t, replica_id, KT_INT32, 0, 14, .dflt = -1),
    KFS(fetch_req_t, replica_state, 15, KV_MAX, &fetch_req_replica_state_schema, .tagged = 1, .tag = 1),
    KF(fetch_req_t, max_wait_ms, KT_INT32, 0, KV_MAX),
    KF(fetch_req_t, min_bytes, KT_INT32, 0, KV_MAX),
    KF(fetch_req_t, max_bytes, KT_INT32, 3, KV_MAX, .dflt = 0x7fffffff),
    KF(fetch_req_t, isolation_level, KT_INT8, 4, KV_MAX, .dflt = 0),
    KF(fetch_req_t, session_id, KT_INT32, 7, KV_MAX, .dflt = 0),
    KF(fetch_req_t, session_epoch, KT_INT32, 7, KV_MAX, .dflt = -1),
    KFA(fetch_req_t, topics, 0, KV_MAX, &fetch_req_topic_schema),
    KFA(fetch_req_t, forgotten_topics_data, 7, KV_MAX, &fetch_req_forgotten_schema),
    KF(fetch_req_t, rack_id, KT_STRING, 11, KV_MAX));

/* ---- response ---- */

KSCHEMA_LOCAL(fetch_resp_epoch_end_offset_schema, fetch_resp_epoch_end_offset_t,
    KF(fetch_resp_epoch_end_offset_t, epoch, KT_INT32, 12, KV_MAX, .dflt = -1),
    KF(fetch_resp_epoch_end_offset_t, end_offset, KT_INT64, 12, KV_MAX, .dflt = -1));
KSCHEMA_LOCAL(fetch_resp_leader_schema, fetch_resp_leader_t,
    KF(fetch_resp_leader_t, leader_id, KT_INT32, 12, KV_MAX, .dflt = -1),
    KF(fetch_resp_leader_t, leader_epoch, KT_INT32, 12, KV_MAX, .dflt = -1));
KSCHEMA_LOCAL(fetch_resp_snapshot_id_schema, fetch_resp_snapshot_id_t,
    KF(fetch_resp_snapshot_id_t, end_offset, KT_INT64, 0, KV_MAX, .dflt = -1),
    KF(fetch_resp_snapshot_id_t, epoch, KT_INT32, 0, KV_MAX, .dflt = -1));
KSCHEMA_LOCAL(fetch_resp_aborted_schema, fetch_resp_aborted_t,
    KF(fetch_resp_aborted_t, producer_id, KT_INT64, 4, KV_MAX),
    KF(fetch_resp_aborted_t, first_offset, KT_INT64, 4, KV_MAX));
KSCHEMA_LOCAL(fetch_resp_part_schema, fetch_resp_part_t,
    KF(fetch_resp_part_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(fetch_resp_part_t, error_code, KT_INT16, 0, KV_MAX),
    KF(fetch_resp_part_t, high_watermark, KT_INT64, 0, KV_MAX),
    KF(fetch_resp_part_t, last_stable_offset, KT_INT64, 4, KV_MAX, .dflt = -1),
    KF(fetch_resp_part_t, log_start_offset, KT_INT64, 5, KV_MAX, .dflt = -1),
    KFS(fetch_resp_part_t, diverging_epoch, 12, KV_MAX, &fetch_resp_epoch_end_offset_schema, .tagged = 1, .tag = 0),
    KFS(fetch_resp_part_t, current_leader, 12, KV_MAX, &fetch_resp_leader_schema, .tagged = 1, .tag = 1),
    KFS(fetch_resp_part_t, snapshot_id, 12, KV_MAX, &fetch_resp_snapshot_id_schema, .tagged = 1, .tag = 2),
    KFA(fetch_resp_part_t, aborted_transactions, 4, KV_MAX, &fetch_resp_aborted_schema, .nullable = 1, .nullable_min = 4),
    KF(fetch_resp_part_t, preferred_read_replica, KT_INT32, 11, KV_MAX, .dflt = -1),
    KF(fetch_resp_part_t, records, KT_RECORDS, 0, KV_MAX, .nullable = 1, .nullable_min = 0));
KSCHEMA_LOCAL(fetch_resp_topic_schema, fetch_resp_topic_t,
    KF(fetch_resp_topic_t, topic, KT_STRING, 0, 12),
    KF(fetch_resp_topic_t, topic_id, KT_UUID, 13, KV_MAX),
    KFA(fetch_resp_topic_t, partitions, 0, KV_MAX, &fetch_resp_part_schema));
KSCHEMA_LOCAL(fetch_resp_node_endpoint_schema, fetch_resp_node_endpoint_t,
    KF(fetch_resp_node_endpoint_t, node_id, KT_INT32, 16, KV_MAX),
    KF(fetch_resp_node_endpoint_t, host, KT_STRING, 16, KV_MAX),
    KF(fetch_resp_node_endpoint_t, port, KT_INT32, 16, KV_MAX),
    KF(fetch_resp_node_endpoint_t, rack, KT_STRING, 16, KV_MAX, .nullable = 1, .nullable_min = 16));
KSCHEMA(fetch_resp_schema, fetch_resp_t,
    KF(fetch_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX),
    KF(fetch_resp_t, error_code, KT_INT16, 7, KV_MAX),
    KF(fetch_resp_t, session_id, KT_INT32, 7, KV_MAX, .dflt = 0),
    KFA(fetch_resp_t, responses, 0, KV_MAX, &fetch_resp_topic_schema),
    KFA(fetch_resp_t, node_endpoints, 16, KV_MAX, &fetch_resp_node_endpoint_schema, .tagged = 1, .tag = 0));
