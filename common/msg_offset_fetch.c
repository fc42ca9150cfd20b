/* msg_offset_fetch.c - schema of OffsetFetch (API key 9), after Kafka's
 * OffsetFetchRequest/Response.json. */
#include "msg_offset_fetch.h"

KSCHEMA_LOCAL(offset_fetch_req_topic_schema, offset_fetch_req_topic_t,
    KF(offset_fetch_req_topic_t, name, KT_STRING, 0, KV_MAX),
    KFAP(offset_fetch_req_topic_t, partition_indexes, KT_INT32, 0, KV_MAX));
KSCHEMA_LOCAL(offset_fetch_req_group_schema, offset_fetch_req_group_t,
    KF(offset_fetch_req_group_t, group_id, KT_STRING, 8, KV_MAX),
    KF(offset_fetch_req_group_t, member_id, KT_STRING, 9, KV_MAX, .nullable = 1, .nullable_min = 9),
    KF(offset_fetch_req_group_t, member_epoch, KT_INT32, 9, KV_MAX, .dflt = -1),
    KFA(offset_fetch_req_group_t, topics, 8, KV_MAX, &offset_fetch_req_topic_schema, .nullable = 1,
        .nullable_min = 8));
KSCHEMA(offset_fetch_req_schema, offset_fetch_req_t,
    KF(offset_fetch_req_t, group_id, KT_STRING, 0, 7),
    KFA(offset_fetch_req_t, topics, 0, 7, &offset_fetch_req_topic_schema, .nullable = 1, .nullable_min = 2),
    KFA(offset_fetch_req_t, groups, 8, KV_MAX, &offset_fetch_req_group_schema),
    KF(offset_fetch_req_t, require_stable, KT_BOOL, 7, KV_MAX));

KSCHEMA_LOCAL(offset_fetch_resp_part_schema, offset_fetch_resp_part_t,
    KF(offset_fetch_resp_part_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(offset_fetch_resp_part_t, committed_offset, KT_INT64, 0, KV_MAX),
    KF(offset_fetch_resp_part_t, committed_leader_epoch, KT_INT32, 5, KV_MAX, .dflt = -1),
    KF(offset_fetch_resp_part_t, metadata, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0),
    KF(offset_fetch_resp_part_t, error_code, KT_INT16, 0, KV_MAX));
KSCHEMA_LOCAL(offset_fetch_resp_topic_schema, offset_fetch_resp_topic_t,
    KF(offset_fetch_resp_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(offset_fetch_resp_topic_t, partitions, 0, KV_MAX, &offset_fetch_resp_part_schema));
KSCHEMA_LOCAL(offset_fetch_resp_group_schema, offset_fetch_resp_group_t,
    KF(offset_fetch_resp_group_t, group_id, KT_STRING, 8, KV_MAX),
    KFA(offset_fetch_resp_group_t, topics, 8, KV_MAX, &offset_fetch_resp_topic_schema),
    KF(offset_fetch_resp_group_t, error_code, KT_INT16, 8, KV_MAX));
KSCHEMA(offset_fetch_resp_schema, offset_fetch_resp_t,
    KF(offset_fetch_resp_t, throttle_time_ms, KT_INT32, 3, KV_MAX),
    KFA(offset_fetch_resp_t, topics, 0, 7, &offset_fetch_resp_topic_schema),
    KF(offset_fetch_resp_t, error_code, KT_INT16, 2, 7),
    KFA(offset_fetch_resp_t, groups, 8, KV_MAX, &offset_fetch_resp_group_schema));
