/* msg_delete_topics.h - DeleteTopics request/response (API key 20), versions 0-6, flexible from 4.
 * Transcribed from Kafka's DeleteTopicsRequest.json / DeleteTopicsResponse.json.
 * v0-5 name topics in `topic_names`; v6 uses `topics`, each by name or by id. */
#ifndef KAFSCALE_MSG_DELETE_TOPICS_H
#define KAFSCALE_MSG_DELETE_TOPICS_H
#include "kmsg.h"

typedef struct {
    kstr_t name;      /* nullable: null when the topic is named by id */
    kuuid_t topic_id; /* zero when the topic is named by name */
} delete_topics_req_topic_t;

typedef struct {
    karray_t topics;      /* delete_topics_req_topic_t, v6+ */
    karray_t topic_names; /* kstr_t, v0-5 */
    int32_t timeout_ms;
} delete_topics_req_t;

typedef struct {
    kstr_t name;          /* nullable in v6+ */
    kuuid_t topic_id;     /* v6+ */
    int16_t error_code;
    kstr_t error_message; /* v5+, nullable */
} delete_topics_resp_topic_t;

typedef struct {
    int32_t throttle_time_ms; /* v1+ */
    karray_t responses;       /* delete_topics_resp_topic_t */
} delete_topics_resp_t;

extern const kschema_t delete_topics_req_schema, delete_topics_resp_schema;
#endif
