/* msg_create_topics.c - schema of CreateTopics (API key 19), after Kafka's CreateTopicsRequest/Response.json. */
#include "msg_create_topics.h"

KSCHEMA_LOCAL(create_topics_req_assignment_schema, create_topics_req_assignment_t,
    KF(create_topics_req_assignment_t, partition_index, KT_INT32, 0, KV_MAX),
    KFAP(create_topics_req_assignment_t, broker_ids, KT_INT32, 0, KV_MAX));
KSCHEMA_LOCAL(create_topics_req_config_schema, create_topics_req_config_t,
    KF(create_topics_req_config_t, name, KT_STRING, 0, KV_MAX),
    KF(create_topics_req_config_t, value, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0));
KSCHEMA_LOCAL(create_topics_req_topic_schema, create_topics_req_topic_t,
    KF(create_topics_req_topic_t, name, KT_STRING, 0, KV_MAX),
    KF(create_topics_req_topic_t, num_partitions, KT_INT32, 0, KV_MAX),
    KF(create_topics_req_topic_t, replication_factor, KT_INT16, 0, KV_MAX),
    KFA(create_topics_req_topic_t, assignments, 0, KV_MAX, &create_topics_req_assignment_schema),
    KFA(create_topics_req_topic_t, configs, 0, KV_MAX, &create_topics_req_config_schema));
KSCHEMA(create_topics_req_schema, create_topics_req_t,
    KFA(create_topics_req_t, topics, 0, KV_MAX, &create_topics_req_topic_schema),
    KF(create_topics_req_t, timeout_ms, KT_INT32, 0, KV_MAX, .dflt = 60000),
    KF(create_topics_req_t, validate_only, KT_BOOL, 1, KV_MAX));

KSCHEMA_LOCAL(create_topics_resp_config_schema, create_topics_resp_config_t,
    KF(create_topics_resp_config_t, name, KT_STRING, 5, KV_MAX),
    KF(create_topics_resp_config_t, value, KT_STRING, 5, KV_MAX, .nullable = 1, .nullable_min = 5),
    KF(create_topics_resp_config_t, read_only, KT_BOOL, 5, KV_MAX),
    KF(create_topics_resp_config_t, config_source, KT_INT8, 5, KV_MAX, .dflt = -1),
    KF(create_topics_resp_config_t, is_sensitive, KT_BOOL, 5, KV_MAX));
KSCHEMA_LOCAL(create_topics_resp_topic_schema, create_topics_resp_topic_t,
    KF(create_topics_resp_topic_t, name, KT_STRING, 0, KV_MAX),
    KF(create_topics_resp_topic_t, topic_id, KT_UUID, 7, KV_MAX),
    KF(create_topics_resp_topic_t, error_code, KT_INT16, 0, KV_MAX),
    KF(create_topics_resp_topic_t, error_message, KT_STRING, 1, KV_MAX, .nullable = 1, .nullable_min = 0),
    KF(create_topics_resp_topic_t, topic_config_error_code, KT_INT16, 5, KV_MAX, .tagged = 1, .tag = 0),
    KF(create_topics_resp_topic_t, num_partitions, KT_INT32, 5, KV_MAX, .dflt = -1),
    KF(create_topics_resp_topic_t, replication_factor, KT_INT16, 5, KV_MAX, .dflt = -1),
    KFA(create_topics_resp_topic_t, configs, 5, KV_MAX, &create_topics_resp_config_schema,
        .nullable = 1, .nullable_min = 5));
KSCHEMA(create_topics_resp_schema, create_topics_resp_t,
    KF(create_topics_resp_t, throttle_time_ms, KT_INT32, 2, KV_MAX),
    KFA(create_topics_resp_t, topics, 0, KV_MAX, &create_topics_resp_topic_schema));
