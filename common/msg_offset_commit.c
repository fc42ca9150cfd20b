/* msg_offset_commit.c - schema of OffsetCommit (API key 8), after Kafka's
 * OffsetCommitRequest/Response.json. */
#include "msg_offset_commit.h"

KSCHEMA_LOCAL(offset_commit_req_part_schema, offset_commit_req_part_t,
    KF(offset_commit_req_part_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(offset_commit_req_part_t, committed_offset, KT_INT64, 0, KV_MAX),
    KF(offset_commit_req_part_t, committed_leader_epoch, KT_INT32, 6, KV_MAX, .dflt = -1),
    KF(offset_commit_req_part_t, commit_timestamp, KT_INT64, 1, 1, .dflt = -1),
    KF(offset_commit_req_part_t, committed_metadata, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0));
KSCHEMA_LOCAL(offset_commit_req_topic_schema, offset_commit_req_topic_t,
    KF(offset_commit_req_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(offset_commit_req_topic_t, partitions, 0, KV_MAX, &offset_commit_req_part_schema));
KSCHEMA(offset_commit_req_schema, offset_commit_req_t,
    KF(offset_commit_req_t, group_id, KT_STRING, 0, KV_MAX),
    KF(offset_commit_req_t, generation_id_or_member_epoch, KT_INT32, 1, KV_MAX, .dflt = -1),
    KF(offset_commit_req_t, member_id, KT_STRING, 1, KV_MAX),
    KF(offset_commit_req_t, group_instance_id, KT_STRING, 7, KV_MAX, .nullable = 1, .nullable_min = 7),
    KF(offset_commit_req_t, retention_time_ms, KT_INT64, 2, 4, .dflt = -1),
    KFA(offset_commit_req_t, topics, 0, KV_MAX, &offset_commit_req_topic_schema));

KSCHEMA_LOCAL(offset_commit_resp_part_schema, offset_commit_resp_part_t,
    KF(offset_commit_resp_part_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(offset_commit_resp_part_t, error_code, KT_INT16, 0, KV_MAX));
KSCHEMA_LOCAL(offset_commit_resp_topic_schema, offset_commit_resp_topic_t,
    KF(offset_commit_resp_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(offset_commit_resp_topic_t, partitions, 0, KV_MAX, &offset_commit_resp_part_schema));
KSCHEMA(offset_commit_resp_schema, offset_commit_resp_t,
    KF(offset_commit_resp_t, throttle_time_ms, KT_INT32, 3, KV_MAX),
    KFA(offset_commit_resp_t, topics, 0, KV_MAX, &offset_commit_resp_topic_schema));
