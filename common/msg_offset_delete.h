/* msg_offset_delete.h - OffsetDelete request/response (API key 47), version
 * 0, never flexible. Transcribed from Kafka's OffsetDeleteRequest.json /
 * OffsetDeleteResponse.json (KIP-496). */
#ifndef KAFSCALE_MSG_OFFSET_DELETE_H
#define KAFSCALE_MSG_OFFSET_DELETE_H
#include "kmsg.h"

typedef struct {
    int32_t partition_index;
} offset_delete_req_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions; /* offset_delete_req_part_t */
} offset_delete_req_topic_t;

typedef struct {
    kstr_t group_id;
    karray_t topics; /* offset_delete_req_topic_t */
} offset_delete_req_t;

typedef struct {
    int32_t partition_index;
    int16_t error_code;
} offset_delete_resp_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions; /* offset_delete_resp_part_t */
} offset_delete_resp_topic_t;

typedef struct {
    int16_t error_code;
    int32_t throttle_time_ms;
    karray_t topics; /* offset_delete_resp_topic_t */
} offset_delete_resp_t;

extern const kschema_t offset_delete_req_schema, offset_delete_resp_schema;
#endif
