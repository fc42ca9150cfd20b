/* msg_metadata.h - Metadata request/response (API key 3), versions 0-12, flexible from 9.
 *
 * Transcribed from Kafka's MetadataRequest.json / MetadataResponse.json.
 * Topic names in requests: v0 sends an empty array for "all topics", v1+ a
 * null array. From v10 a topic may carry an id (and, in v12, a null name).
 */
#ifndef KAFSCALE_MSG_METADATA_H
#define KAFSCALE_MSG_METADATA_H
#include "kmsg.h"

typedef struct {
    kuuid_t topic_id; /* v10+ */
    kstr_t name;      /* nullable in v10+ (a request by id) */
} metadata_req_topic_t;

typedef struct {
    karray_t topics;                            /* metadata_req_topic_t; null (v1+) = all topics */
    bool allow_auto_topic_creation;             /* v4+, default true */
    bool include_cluster_authorized_operations; /* v8-10 */
    bool include_topic_authorized_operations;   /* v8+ */
} metadata_req_t;

typedef struct {
    int32_t node_id;
    kstr_t host;
    int32_t port;
    kstr_t rack; /* v1+, nullable */
} metadata_resp_broker_t;

typedef struct {
    int16_t error_code;
    int32_t partition_index;
    int32_t leader_id;
    int32_t leader_epoch;       /* v7+, default -1 */
    karray_t replica_nodes;     /* int32_t */
    karray_t isr_nodes;         /* int32_t */
    karray_t offline_replicas;  /* int32_t, v5+ */
} metadata_resp_partition_t;

typedef struct {
    int16_t error_code;
    kstr_t name;                         /* nullable in v12+ (unknown topic asked for by id) */
    kuuid_t topic_id;                    /* v10+ */
    bool is_internal;                    /* v1+ */
    karray_t partitions;                 /* metadata_resp_partition_t */
    int32_t topic_authorized_operations; /* v8+, default INT32_MIN */
} metadata_resp_topic_t;

typedef struct {
    int32_t throttle_time_ms;              /* v3+ */
    karray_t brokers;                      /* metadata_resp_broker_t */
    kstr_t cluster_id;                     /* v2+, nullable */
    int32_t controller_id;                 /* v1+, default -1 */
    karray_t topics;                       /* metadata_resp_topic_t */
    int32_t cluster_authorized_operations; /* v8-10, default INT32_MIN */
} metadata_resp_t;

extern const kschema_t metadata_req_schema, metadata_resp_schema;
#endif
