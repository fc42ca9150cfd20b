/* msg_produce.h - Produce request/response (API key 0), versions 3-9. */
#ifndef KAFSCALE_MSG_PRODUCE_H
#define KAFSCALE_MSG_PRODUCE_H
#include "kmsg.h"

typedef struct {
    int32_t index;
    krecords_t records; /* view into the request frame; the broker rewrites base offsets in place */
} produce_req_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions; /* produce_req_part_t */
} produce_req_topic_t;

typedef struct {
    kstr_t transactional_id;
    int16_t acks;
    int32_t timeout_ms;
    karray_t topics; /* produce_req_topic_t */
} produce_req_t;

typedef struct {
    int32_t batch_index;
    kstr_t message;
} produce_resp_record_error_t;

typedef struct {
    int32_t index;
    int16_t error_code;
    int64_t base_offset;
    int64_t log_append_time_ms;
    int64_t log_start_offset;
    karray_t record_errors; /* produce_resp_record_error_t */
    kstr_t error_message;
} produce_resp_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions; /* produce_resp_part_t */
} produce_resp_topic_t;

typedef struct {
    karray_t topics; /* produce_resp_topic_t */
    int32_t throttle_time_ms;
} produce_resp_t;

extern const kschema_t produce_req_schema, produce_resp_schema;
#endif
