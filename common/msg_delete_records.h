/* msg_delete_records.h - DeleteRecords request/response (API key 21),
 * versions 0-2, flexible from 2 (v1 is the same as v0). Transcribed from
 * Kafka's DeleteRecordsRequest.json / DeleteRecordsResponse.json. */
#ifndef KAFSCALE_MSG_DELETE_RECORDS_H
#define KAFSCALE_MSG_DELETE_RECORDS_H
#include "kmsg.h"

typedef struct {
    int32_t partition_index;
    int64_t offset; /* records below it are deleted; -1: the high watermark */
} delete_records_req_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions; /* delete_records_req_part_t */
} delete_records_req_topic_t;

typedef struct {
    karray_t topics; /* delete_records_req_topic_t */
    int32_t timeout_ms;
} delete_records_req_t;

typedef struct {
    int32_t partition_index;
    int64_t low_watermark;
    int16_t error_code;
} delete_records_resp_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions; /* delete_records_resp_part_t */
} delete_records_resp_topic_t;

typedef struct {
    int32_t throttle_time_ms;
    karray_t topics; /* delete_records_resp_topic_t */
} delete_records_resp_t;

extern const kschema_t delete_records_req_schema, delete_records_resp_schema;
#endif
