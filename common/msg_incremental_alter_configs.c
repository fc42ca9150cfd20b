/* msg_incremental_alter_configs.c - schema of IncrementalAlterConfigs (API
 * key 44), after Kafka's IncrementalAlterConfigsRequest.json and
 * IncrementalAlterConfigsResponse.json. */
#include "msg_incremental_alter_configs.h"

KSCHEMA_LOCAL(incremental_alter_configs_req_config_schema, incremental_alter_configs_req_config_t,
    KF(incremental_alter_configs_req_config_t, name, KT_STRING, 0, KV_MAX),
    KF(incremental_alter_configs_req_config_t, config_operation, KT_INT8, 0, KV_MAX),
    KF(incremental_alter_configs_req_config_t, value, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0));
KSCHEMA_LOCAL(incremental_alter_configs_req_resource_schema, incremental_alter_configs_req_resource_t,
    KF(incremental_alter_configs_req_resource_t, resource_type, KT_INT8, 0, KV_MAX),
    KF(incremental_alter_configs_req_resource_t, resource_name, KT_STRING, 0, KV_MAX),
    KFA(incremental_alter_configs_req_resource_t, configs, 0, KV_MAX, &incremental_alter_configs_req_config_schema));
KSCHEMA(incremental_alter_configs_req_schema, incremental_alter_configs_req_t,
    KFA(incremental_alter_configs_req_t, resources, 0, KV_MAX, &incremental_alter_configs_req_resource_schema),
    KF(incremental_alter_configs_req_t, validate_only, KT_BOOL, 0, KV_MAX));

KSCHEMA_LOCAL(incremental_alter_configs_resp_resource_schema, incremental_alter_configs_resp_resource_t,
    KF(incremental_alter_configs_resp_resource_t, error_code, KT_INT16, 0, KV_MAX),
    KF(incremental_alter_configs_resp_resource_t, error_message, KT_STRING, 0, KV_MAX, .nullable = 1,
       .nullable_min = 0),
    KF(incremental_alter_configs_resp_resource_t, resource_type, KT_INT8, 0, KV_MAX),
    KF(incremental_alter_configs_resp_resource_t, resource_name, KT_STRING, 0, KV_MAX));
KSCHEMA(incremental_alter_configs_resp_schema, incremental_alter_configs_resp_t,
    KF(incremental_alter_configs_resp_t, throttle_time_ms, KT_INT32, 0, KV_MAX),
    KFA(incremental_alter_configs_resp_t, responses, 0, KV_MAX, &incremental_alter_configs_resp_resource_schema));
