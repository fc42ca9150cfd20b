/* msg_delete_topics.c - schema of DeleteTopics (API key 20), after Kafka's DeleteTopicsRequest/Response.json. */
#include "msg_delete_topics.h"

KSCHEMA_LOCAL(delete_topics_req_topic_schema, delete_topics_req_topic_t,
    KF(delete_topics_req_topic_t, name, KT_STRING, 6, KV_MAX, .nullable = 1, .nullable_min = 6),
    KF(delete_topics_req_topic_t, topic_id, KT_UUID, 6, KV_MAX));
KSCHEMA(delete_topics_req_schema, delete_topics_req_t,
    KFA(delete_topics_req_t, topics, 6, KV_MAX, &delete_topics_req_topic_schema),
    KFAP(delete_topics_req_t, topic_names, KT_STRING, 0, 5),
    KF(delete_topics_req_t, timeout_ms, KT_INT32, 0, KV_MAX));

KSCHEMA_LOCAL(delete_topics_resp_topic_schema, delete_topics_resp_topic_t,
    KF(delete_topics_resp_topic_t, name, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 6),
    KF(delete_topics_resp_topic_t, topic_id, KT_UUID, 6, KV_MAX),
    KF(delete_topics_resp_topic_t, error_code, KT_INT16, 0, KV_MAX),
    KF(delete_topics_resp_topic_t, error_message, KT_STRING, 5, KV_MAX, .nullable = 1, .nullable_min = 5));
KSCHEMA(delete_topics_resp_schema, delete_topics_resp_t,
    KF(delete_topics_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX),
    KFA(delete_topics_resp_t, responses, 0, KV_MAX, &delete_topics_resp_topic_schema));
