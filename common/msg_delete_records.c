/* msg_delete_records.c - schema of DeleteRecords (API key 21), after Kafka's
 * DeleteRecordsRequest.json and DeleteRecordsResponse.json. */
#include "msg_delete_records.h"

KSCHEMA_LOCAL(delete_records_req_part_schema, delete_records_req_part_t,
    KF(delete_records_req_part_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(delete_records_req_part_t, offset, KT_INT64, 0, KV_MAX));
KSCHEMA_LOCAL(delete_records_req_topic_schema, delete_records_req_topic_t,
    KF(delete_records_req_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(delete_records_req_topic_t, partitions, 0, KV_MAX, &delete_records_req_part_schema));
KSCHEMA(delete_records_req_schema, delete_records_req_t,
    KFA(delete_records_req_t, topics, 0, KV_MAX, &delete_records_req_topic_schema),
    KF(delete_records_req_t, timeout_ms, KT_INT32, 0, KV_MAX));

KSCHEMA_LOCAL(delete_records_resp_part_schema, delete_records_resp_part_t,
    KF(delete_records_resp_part_t, partition_index, KT_INT32, 0, KV_MAX),
    KF(delete_records_resp_part_t, low_watermark, KT_INT64, 0, KV_MAX),
    KF(delete_records_resp_part_t, error_code, KT_INT16, 0, KV_MAX));
KSCHEMA_LOCAL(delete_records_resp_topic_schema, delete_records_resp_topic_t,
    KF(delete_records_resp_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(delete_records_resp_topic_t, partitions, 0, KV_MAX, &delete_records_resp_part_schema));
KSCHEMA(delete_records_resp_schema, delete_records_resp_t,
    KF(delete_records_resp_t, throttle_time_ms, KT_INT32, 0, KV_MAX),
    KFA(delete_records_resp_t, topics, 0, KV_MAX, &delete_records_resp_topic_schema));
