/* msg_create_partitions.h - CreatePartitions request/response (API key 37),
 * versions 0-3, flexible from 2 (v1 and v3 change nothing on the wire).
 * Transcribed from Kafka's CreatePartitionsRequest.json /
 * CreatePartitionsResponse.json. */
#ifndef KAFSCALE_MSG_CREATE_PARTITIONS_H
#define KAFSCALE_MSG_CREATE_PARTITIONS_H
#include "kmsg.h"

typedef struct {
    karray_t broker_ids; /* int32_t */
} create_partitions_req_assignment_t;

typedef struct {
    kstr_t name;
    int32_t count;        /* the new partition count */
    karray_t assignments; /* create_partitions_req_assignment_t, nullable: one per new partition */
} create_partitions_req_topic_t;

typedef struct {
    karray_t topics; /* create_partitions_req_topic_t */
    int32_t timeout_ms;
    bool validate_only;
} create_partitions_req_t;

typedef struct {
    kstr_t name;
    int16_t error_code;
    kstr_t error_message; /* nullable, default null */
} create_partitions_resp_result_t;

typedef struct {
    int32_t throttle_time_ms;
    karray_t results; /* create_partitions_resp_result_t */
} create_partitions_resp_t;

extern const kschema_t create_partitions_req_schema, create_partitions_resp_schema;
#endif
