/* msg_offset_for_leader_epoch.c - schema of OffsetForLeaderEpoch (API key
 * 23), after Kafka's OffsetForLeaderEpochRequest.json and
 * OffsetForLeaderEpochResponse.json. */
#include "msg_offset_for_leader_epoch.h"

KSCHEMA_LOCAL(offset_for_leader_epoch_req_part_schema, offset_for_leader_epoch_req_part_t,
    KF(offset_for_leader_epoch_req_part_t, partition, KT_INT32, 0, KV_MAX),
    KF(offset_for_leader_epoch_req_part_t, current_leader_epoch, KT_INT32, 2, KV_MAX, .dflt = -1),
    KF(offset_for_leader_epoch_req_part_t, leader_epoch, KT_INT32, 0, KV_MAX));
KSCHEMA_LOCAL(offset_for_leader_epoch_req_topic_schema, offset_for_leader_epoch_req_topic_t,
    KF(offset_for_leader_epoch_req_topic_t, topic, KT_STRING, 0, KV_MAX),
    KFA(offset_for_leader_epoch_req_topic_t, partitions, 0, KV_MAX, &offset_for_leader_epoch_req_part_schema));
KSCHEMA(offset_for_leader_epoch_req_schema, offset_for_leader_epoch_req_t,
    KF(offset_for_leader_epoch_req_t, replica_id, KT_INT32, 3, KV_MAX, .dflt = -2),
    KFA(offset_for_leader_epoch_req_t, topics, 0, KV_MAX, &offset_for_leader_epoch_req_topic_schema));

KSCHEMA_LOCAL(offset_for_leader_epoch_resp_part_schema, offset_for_leader_epoch_resp_part_t,
    KF(offset_for_leader_epoch_resp_part_t, error_code, KT_INT16, 0, KV_MAX),
    KF(offset_for_leader_epoch_resp_part_t, partition, KT_INT32, 0, KV_MAX),
    KF(offset_for_leader_epoch_resp_part_t, leader_epoch, KT_INT32, 1, KV_MAX, .dflt = -1),
    KF(offset_for_leader_epoch_resp_part_t, end_offset, KT_INT64, 0, KV_MAX));
KSCHEMA_LOCAL(offset_for_leader_epoch_resp_topic_schema, offset_for_leader_epoch_resp_topic_t,
    KF(offset_for_leader_epoch_resp_topic_t, topic, KT_STRING, 0, KV_MAX),
    KFA(offset_for_leader_epoch_resp_topic_t, partitions, 0, KV_MAX, &offset_for_leader_epoch_resp_part_schema));
KSCHEMA(offset_for_leader_epoch_resp_schema, offset_for_leader_epoch_resp_t,
    KF(offset_for_leader_epoch_resp_t, throttle_time_ms, KT_INT32, 2, KV_MAX),
    KFA(offset_for_leader_epoch_resp_t, topics, 0, KV_MAX, &offset_for_leader_epoch_resp_topic_schema));
