/* msg_describe_cluster.h - DescribeCluster request/response (API key 60),
 * version 0 served, flexible from 0. Transcribed from Kafka's
 * DescribeClusterRequest.json / DescribeClusterResponse.json (the response's
 * v1 EndpointType is transcribed too, for when v1 is served). */
#ifndef KAFSCALE_MSG_DESCRIBE_CLUSTER_H
#define KAFSCALE_MSG_DESCRIBE_CLUSTER_H
#include "kmsg.h"

typedef struct {
    bool include_cluster_authorized_operations;
} describe_cluster_req_t;

typedef struct {
    int32_t broker_id;
    kstr_t host;
    int32_t port;
    kstr_t rack; /* nullable, default null */
} describe_cluster_resp_broker_t;

typedef struct {
    int32_t throttle_time_ms;
    int16_t error_code;
    kstr_t error_message;  /* nullable, default null */
    int8_t endpoint_type;  /* v1+, default 1 (brokers) */
    kstr_t cluster_id;
    int32_t controller_id; /* default -1 */
    karray_t brokers;      /* describe_cluster_resp_broker_t */
    int32_t cluster_authorized_operations; /* default INT32_MIN: not asked */
} describe_cluster_resp_t;

extern const kschema_t describe_cluster_req_schema, describe_cluster_resp_schema;
#endif
