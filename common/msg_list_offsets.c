/* msg_list_offsets.c - schema of ListOffsets (API key 2), after Kafka's
 * ListOffsetsRequest.json and ListOffsetsResponse.json. */
#include "msg_list_offsets.h"

KSCHEMA_LOCAL(list_offsets_req_part_schema, list_offsets_req_part_t,
    KF(list_offsets_req_part_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(list_offsets_req_part_t, current_leader_epoch, KT_INT32, 4, KV_MAX, .dflt = -1),
    KF(list_offsets_req_part_t, timestamp, KT_INT64, 0, KV_MAX),
    KF(list_offsets_req_part_t, max_num_offsets, KT_INT32, 0, 0, .dflt = 1));
KSCHEMA_LOCAL(list_offsets_req_topic_schema, list_offsets_req_topic_t,
    KF(list_offsets_req_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(list_offsets_req_topic_t, partitions, 0, KV_MAX, &list_offsets_req_part_schema));
KSCHEMA(list_offsets_req_schema, list_offsets_req_t,
    KF(list_offsets_req_t, replica_id, KT_INT32, 0, KV_MAX),
    KF(list_offsets_req_t, isolation_level, KT_INT8, 2, KV_MAX),
    KFA(list_offsets_req_t, topics, 0, KV_MAX, &list_offsets_req_topic_schema),
    KF(list_offsets_req_t, timeout_ms, KT_INT32, 10, KV_MAX));

KSCHEMA_LOCAL(list_offsets_resp_part_schema, list_offsets_resp_part_t,
    KF(list_offsets_resp_part_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(list_offsets_resp_part_t, error_code, KT_INT16, 0, KV_MAX),
    KFAP(list_offsets_resp_part_t, old_style_offsets, KT_INT64, 0, 0),
    KF(list_offsets_resp_part_t, timestamp, KT_INT64, 1, KV_MAX, .dflt = -1),
    KF(list_offsets_resp_part_t, offset, KT_INT64, 1, KV_MAX, .dflt = -1),
    KF(list_offsets_resp_part_t, leader_epoch, KT_INT32, 4, KV_MAX, .dflt = -1));
KSCHEMA_LOCAL(list_offsets_resp_topic_schema, list_offsets_resp_topic_t,
    KF(list_offsets_resp_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(list_offsets_resp_topic_t, partitions, 0, KV_MAX, &list_offsets_resp_part_schema));
KSCHEMA(list_offsets_resp_schema, list_offsets_resp_t,
    KF(list_offsets_resp_t, throttle_time_ms, KT_INT32, 2, KV_MAX),
    KFA(list_offsets_resp_t, topics, 0, KV_MAX, &list_offsets_resp_topic_schema));
