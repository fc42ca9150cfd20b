/* msg_offset_delete.c - schema of OffsetDelete (API key 47), after Kafka's
 * OffsetDeleteRequest/Response.json. */
#include "msg_offset_delete.h"

KSCHEMA_LOCAL(offset_delete_req_part_schema, offset_delete_req_part_t,
    KF(offset_delete_req_part_t, partition_index, KT_INT32, 0, KV_MAX));
KSCHEMA_LOCAL(offset_delete_req_topic_schema, offset_delete_req_topic_t,
    KF(offset_delete_req_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(offset_delete_req_topic_t, partitions, 0, KV_MAX, &offset_delete_req_part_schema));
KSCHEMA(offset_delete_req_schema, offset_delete_req_t,
    KF(offset_delete_req_t, group_id, KT_STRING, 0, KV_MAX),
    KFA(offset_delete_req_t, topics, 0, KV_MAX, &offset_delete_req_topic_schema));

KSCHEMA_LOCAL(offset_delete_resp_part_schema, offset_delete_resp_part_t,
    KF(offset_delete_resp_part_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(offset_delete_resp_part_t, error_code, KT_INT16, 0, KV_MAX));
KSCHEMA_LOCAL(offset_delete_resp_topic_schema, offset_delete_resp_topic_t,
    KF(offset_delete_resp_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(offset_delete_resp_topic_t, partitions, 0, KV_MAX, &offset_delete_resp_part_schema));
KSCHEMA(offset_delete_resp_schema, offset_delete_resp_t,
    KF(offset_delete_resp_t, error_code, KT_INT16, 0, KV_MAX),
    KF(offset_delete_resp_t, throttle_time_ms, KT_INT32, 0, KV_MAX),
    KFA(offset_delete_resp_t, topics, 0, KV_MAX, &offset_delete_resp_topic_schema));
