/* msg_alter_configs.c - schema of AlterConfigs (API key 33), after Kafka's
 * AlterConfigsRequest.json and AlterConfigsResponse.json. */
#include "msg_alter_configs.h"

KSCHEMA_LOCAL(alter_configs_req_config_schema, alter_configs_req_config_t,
    KF(alter_configs_req_config_t, name, KT_STRING, 0, KV_MAX),
    KF(alter_configs_req_config_t, value, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0));
KSCHEMA_LOCAL(alter_configs_req_resource_schema, alter_configs_req_resource_t,
    KF(alter_configs_req_resource_t, resource_type, KT_INT8, 0, KV_MAX),
    KF(alter_configs_req_resource_t, resource_name, KT_STRING, 0, KV_MAX),
    KFA(alter_configs_req_resource_t, configs, 0, KV_MAX, &alter_configs_req_config_schema));
KSCHEMA(alter_configs_req_schema, alter_configs_req_t,
    KFA(alter_configs_req_t, resources, 0, KV_MAX, &alter_configs_req_resource_schema),
    KF(alter_configs_req_t, validate_only, KT_BOOL, 0, KV_MAX));

KSCHEMA_LOCAL(alter_configs_resp_resource_schema, alter_configs_resp_resource_t,
    KF(alter_configs_resp_resource_t, error_code, KT_INT16, 0, KV_MAX),
    KF(alter_configs_resp_resource_t, error_message, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0),
    KF(alter_configs_resp_resource_t, resource_type, KT_INT8, 0, KV_MAX),
    KF(alter_configs_resp_resource_t, resource_name, KT_STRING, 0, KV_MAX));
KSCHEMA(alter_configs_resp_schema, alter_configs_resp_t,
    KF(alter_configs_resp_t, throttle_time_ms, KT_INT32, 0, KV_MAX),
    KFA(alter_configs_resp_t, responses, 0, KV_MAX, &alter_configs_resp_resource_schema));
