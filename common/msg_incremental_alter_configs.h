/* msg_incremental_alter_configs.h - IncrementalAlterConfigs request/response
 * (API key 44), versions 0-1, flexible from 1. Transcribed from Kafka's
 * IncrementalAlterConfigsRequest.json / IncrementalAlterConfigsResponse.json.
 * Resource types are in msg_describe_configs.h. */
#ifndef KAFSCALE_MSG_INCREMENTAL_ALTER_CONFIGS_H
#define KAFSCALE_MSG_INCREMENTAL_ALTER_CONFIGS_H
#include "kmsg.h"

/* ConfigOperation (AlterConfigOp.OpType). */
enum { CONFIG_OP_SET = 0, CONFIG_OP_DELETE = 1, CONFIG_OP_APPEND = 2, CONFIG_OP_SUBTRACT = 3 };

typedef struct {
    kstr_t name;
    int8_t config_operation;
    kstr_t value; /* nullable */
} incremental_alter_configs_req_config_t;

typedef struct {
    int8_t resource_type;
    kstr_t resource_name;
    karray_t configs; /* incremental_alter_configs_req_config_t */
} incremental_alter_configs_req_resource_t;

typedef struct {
    karray_t resources; /* incremental_alter_configs_req_resource_t */
    bool validate_only;
} incremental_alter_configs_req_t;

typedef struct {
    int16_t error_code;
    kstr_t error_message; /* nullable */
    int8_t resource_type;
    kstr_t resource_name;
} incremental_alter_configs_resp_resource_t;

typedef struct {
    int32_t throttle_time_ms;
    karray_t responses; /* incremental_alter_configs_resp_resource_t */
} incremental_alter_configs_resp_t;

extern const kschema_t incremental_alter_configs_req_schema, incremental_alter_configs_resp_schema;
#endif
