/* msg_describe_configs.h - DescribeConfigs request/response (API key 32),
 * versions 0-4, flexible from 4. Transcribed from Kafka's
 * DescribeConfigsRequest.json / DescribeConfigsResponse.json: v1 adds
 * IncludeSynonyms, ConfigSource and the synonyms (and drops IsDefault), v3
 * IncludeDocumentation, ConfigType and Documentation. */
#ifndef KAFSCALE_MSG_DESCRIBE_CONFIGS_H
#define KAFSCALE_MSG_DESCRIBE_CONFIGS_H
#include "kmsg.h"

/* Resource types (Kafka's ConfigResource.Type). */
enum { CONFIG_RESOURCE_TOPIC = 2, CONFIG_RESOURCE_BROKER = 4, CONFIG_RESOURCE_BROKER_LOGGER = 8 };

/* ConfigSource ids (DescribeConfigsResponse.ConfigSource). */
enum {
    CONFIG_SOURCE_UNKNOWN = 0,
    CONFIG_SOURCE_TOPIC_CONFIG = 1,
    CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG = 2,
    CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG = 3,
    CONFIG_SOURCE_STATIC_BROKER_CONFIG = 4,
    CONFIG_SOURCE_DEFAULT_CONFIG = 5,
};

/* ConfigType ids (DescribeConfigsResponse.ConfigType, v3+). */
enum {
    CONFIG_TYPE_UNKNOWN = 0,
    CONFIG_TYPE_BOOLEAN = 1,
    CONFIG_TYPE_STRING = 2,
    CONFIG_TYPE_INT = 3,
    CONFIG_TYPE_SHORT = 4,
    CONFIG_TYPE_LONG = 5,
    CONFIG_TYPE_DOUBLE = 6,
    CONFIG_TYPE_LIST = 7,
    CONFIG_TYPE_CLASS = 8,
    CONFIG_TYPE_PASSWORD = 9,
};

typedef struct {
    int8_t resource_type;
    kstr_t resource_name;
    karray_t configuration_keys; /* kstr_t, nullable: null lists every config */
} describe_configs_req_resource_t;

typedef struct {
    karray_t resources;         /* describe_configs_req_resource_t */
    bool include_synonyms;      /* v1+ */
    bool include_documentation; /* v3+ */
} describe_configs_req_t;

typedef struct {
    kstr_t name;
    kstr_t value; /* nullable */
    int8_t source;
} describe_configs_resp_synonym_t;

typedef struct {
    kstr_t name;
    kstr_t value;          /* nullable (sensitive configs) */
    bool read_only;
    bool is_default;       /* v0 only */
    int8_t config_source;  /* v1+, default -1 */
    bool is_sensitive;
    karray_t synonyms;     /* describe_configs_resp_synonym_t, v1+ */
    int8_t config_type;    /* v3+ */
    kstr_t documentation;  /* v3+, nullable */
} describe_configs_resp_config_t;

typedef struct {
    int16_t error_code;
    kstr_t error_message; /* nullable */
    int8_t resource_type;
    kstr_t resource_name;
    karray_t configs;     /* describe_configs_resp_config_t */
} describe_configs_resp_result_t;

typedef struct {
    int32_t throttle_time_ms;
    karray_t results; /* describe_configs_resp_result_t */
} describe_configs_resp_t;

extern const kschema_t describe_configs_req_schema, describe_configs_resp_schema;
#endif
