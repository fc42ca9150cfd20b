/* msg_create_topics.h - CreateTopics request/response (API key 19), versions 0-7, flexible from 5.
 * Transcribed from Kafka's CreateTopicsRequest.json / CreateTopicsResponse.json. */
#ifndef KAFSCALE_MSG_CREATE_TOPICS_H
#define KAFSCALE_MSG_CREATE_TOPICS_H
#include "kmsg.h"

typedef struct {
    int32_t partition_index;
    karray_t broker_ids; /* int32_t */
} create_topics_req_assignment_t;

typedef struct {
    kstr_t name;
    kstr_t value; /* nullable */
} create_topics_req_config_t;

typedef struct {
    kstr_t name;
    int32_t num_partitions;     /* -1: the default, or a manual assignment */
    int16_t replication_factor; /* -1: the default, or a manual assignment */
    karray_t assignments;       /* create_topics_req_assignment_t */
    karray_t configs;           /* create_topics_req_config_t */
} create_topics_req_topic_t;

typedef struct {
    karray_t topics;    /* create_topics_req_topic_t */
    int32_t timeout_ms; /* default 60000 */
    bool validate_only; /* v1+ */
} create_topics_req_t;

typedef struct {
    kstr_t name;
    kstr_t value;        /* nullable */
    bool read_only;
    int8_t config_source; /* default -1 */
    bool is_sensitive;
} create_topics_resp_config_t;

typedef struct {
    kstr_t name;
    kuuid_t topic_id;                /* v7+ */
    int16_t error_code;
    kstr_t error_message;            /* v1+, nullable */
    int16_t topic_config_error_code; /* v5+, tagged field 0 */
    int32_t num_partitions;          /* v5+, default -1 */
    int16_t replication_factor;      /* v5+, default -1 */
    karray_t configs;                /* create_topics_resp_config_t, v5+, nullable */
} create_topics_resp_topic_t;

typedef struct {
    int32_t throttle_time_ms; /* v2+ */
    karray_t topics;          /* create_topics_resp_topic_t */
} create_topics_resp_t;

extern const kschema_t create_topics_req_schema, create_topics_resp_schema;
#endif
