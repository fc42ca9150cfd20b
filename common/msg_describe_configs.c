/* msg_describe_configs.c - schema of DescribeConfigs (API key 32), after
 * Kafka's DescribeConfigsRequest.json and DescribeConfigsResponse.json. */
#include "msg_describe_configs.h"

KSCHEMA_LOCAL(describe_configs_req_resource_schema, describe_configs_req_resource_t,
    KF(describe_configs_req_resource_t, resource_type, KT_INT8, 0, KV_MAX),
    KF(describe_configs_req_resource_t, resource_name, KT_STRING, 0, KV_MAX),
    KFAP(describe_configs_req_resource_t, configuration_keys, KT_STRING, 0, KV_MAX, .nullable = 1,
         .nullable_min = 0));
KSCHEMA(describe_configs_req_schema, describe_configs_req_t,
    KFA(describe_configs_req_t, resources, 0, KV_MAX, &describe_configs_req_resource_schema),
    KF(describe_configs_req_t, include_synonyms, KT_BOOL, 1, KV_MAX),
    KF(describe_configs_req_t, include_documentation, KT_BOOL, 3, KV_MAX));

KSCHEMA_LOCAL(describe_configs_resp_synonym_schema, describe_configs_resp_synonym_t,
    KF(describe_configs_resp_synonym_t, name, KT_STRING, 1, KV_MAX),
    KF(describe_configs_resp_synonym_t, value, KT_STRING, 1, KV_MAX, .nullable = 1, .nullable_min = 0),
    KF(describe_configs_resp_synonym_t, source, KT_INT8, 1, KV_MAX));
KSCHEMA_LOCAL(describe_configs_resp_config_schema, describe_configs_resp_config_t,
    KF(describe_configs_resp_config_t, name, KT_STRING, 0, KV_MAX),
    KF(describe_configs_resp_config_t, value, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0),
    KF(describe_configs_resp_config_t, read_only, KT_BOOL, 0, KV_MAX),
    KF(describe_configs_resp_config_t, is_default, KT_BOOL, 0, 0),
    KF(describe_configs_resp_config_t, config_source, KT_INT8, 1, KV_MAX, .dflt = -1),
    KF(describe_configs_resp_config_t, is_sensitive, KT_BOOL, 0, KV_MAX),
    KFA(describe_configs_resp_config_t, synonyms, 1, KV_MAX, &describe_configs_resp_synonym_schema),
    KF(describe_configs_resp_config_t, config_type, KT_INT8, 3, KV_MAX),
    KF(describe_configs_resp_config_t, documentation, KT_STRING, 3, KV_MAX, .nullable = 1, .nullable_min = 0));
KSCHEMA_LOCAL(describe_configs_resp_result_schema, describe_configs_resp_result_t,
    KF(describe_configs_resp_result_t, error_code, KT_INT16, 0, KV_MAX),
    KF(describe_configs_resp_result_t, error_message, KT_STRING, 0, KV_MAX, .nullable = 1, .nullable_min = 0),
    KF(describe_configs_resp_result_t, resource_type, KT_INT8, 0, KV_MAX),
    KF(describe_configs_resp_result_t, resource_name, KT_STRING, 0, KV_MAX),
    KFA(describe_configs_resp_result_t, configs, 0, KV_MAX, &describe_configs_resp_config_schema));
KSCHEMA(describe_configs_resp_schema, describe_configs_resp_t,
    KF(describe_configs_resp_t, throttle_time_ms, KT_INT32, 0, KV_MAX),
    KFA(describe_configs_resp_t, results, 0, KV_MAX, &describe_configs_resp_result_schema));
