/* msg_produce.c - schema of Produce (API key 0), after Kafka's ProduceRequest/Response.json. */
#include "msg_produce.h"

KSCHEMA_LOCAL(produce_req_part_schema, produce_req_part_t,
    KF(produce_req_part_t, index, KT_INT32, 0, KV_MAX),
    KF(produce_req_part_t, records, KT_RECORDS, 0, KV_MAX, .nullable = 1));
KSCHEMA_LOCAL(produce_req_topic_schema, produce_req_topic_t,
    KF(produce_req_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(produce_req_topic_t, partitions, 0, KV_MAX, &produce_req_part_schema));
KSCHEMA(produce_req_schema, produce_req_t,
    KF(produce_req_t, transactional_id, KT_STRING, 3, KV_MAX, .nullable = 1, .nullable_min = 3),
    KF(produce_req_t, acks, KT_INT16, 0, KV_MAX),
    KF(produce_req_t, timeout_ms, KT_INT32, 0, KV_MAX),
    KFA(produce_req_t, topics, 0, KV_MAX, &produce_req_topic_schema));

KSCHEMA_LOCAL(produce_resp_record_error_schema, produce_resp_record_error_t,
    KF(produce_resp_record_error_t, batch_index, KT_INT32, 8, KV_MAX),
    KF(produce_resp_record_error_t, message, KT_STRING, 8, KV_MAX, .nullable = 1, .nullable_min = 8));
KSCHEMA_LOCAL(produce_resp_part_schema, produce_resp_part_t,
    KF(produce_resp_part_t, index, KT_INT32, 0, KV_MAX),
    KF(produce_resp_part_t, error_code, KT_INT16, 0, KV_MAX),
    KF(produce_resp_part_t, base_offset, KT_INT64, 0, KV_MAX),
    KF(produce_resp_part_t, log_append_time_ms, KT_INT64, 2, KV_MAX, .dflt = -1),
    KF(produce_resp_part_t, log_start_offset, KT_INT64, 5, KV_MAX, .dflt = -1),
    KFA(produce_resp_part_t, record_errors, 8, KV_MAX, &produce_resp_record_error_schema),
    KF(produce_resp_part_t, error_message, KT_STRING, 8, KV_MAX, .nullable = 1, .nullable_min = 8));
KSCHEMA_LOCAL(produce_resp_topic_schema, produce_resp_topic_t,
    KF(produce_resp_topic_t, name, KT_STRING, 0, KV_MAX),
    KFA(produce_resp_topic_t, partitions, 0, KV_MAX, &produce_resp_part_schema));
KSCHEMA(produce_resp_schema, produce_resp_t,
    KFA(produce_resp_t, topics, 0, KV_MAX, &produce_resp_topic_schema),
    KF(produce_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX));
