/* msg_alter_configs.h - AlterConfigs request/response (API key 33), versions
 * 0-2, flexible from 2 (v1 is the same as v0). Transcribed from Kafka's
 * AlterConfigsRequest.json / AlterConfigsResponse.json. Resource types are in
 * msg_describe_configs.h. */
#ifndef KAFSCALE_MSG_ALTER_CONFIGS_H
#define KAFSCALE_MSG_ALTER_CONFIGS_H
#include "kmsg.h"

typedef struct {
    kstr_t name;
    kstr_t value; /* nullable */
} alter_configs_req_config_t;

typedef struct {
    int8_t resource_type;
    kstr_t resource_name;
    karray_t configs; /* alter_configs_req_config_t */
} alter_configs_req_resource_t;

typedef struct {
    karray_t resources; /* alter_configs_req_resource_t */
    bool validate_only;
} alter_configs_req_t;

typedef struct {
    int16_t error_code;
    kstr_t error_message; /* nullable */
    int8_t resource_type;
    kstr_t resource_name;
} alter_configs_resp_resource_t;

typedef struct {
    int32_t throttle_time_ms;
    karray_t responses; /* alter_configs_resp_resource_t */
} alter_configs_resp_t;

extern const kschema_t alter_configs_req_schema, alter_configs_resp_schema;
#endif
