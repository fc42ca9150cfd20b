/* msg_api_versions.h - ApiVersions request/response (API key 18), versions 0-3. */
#ifndef KAFSCALE_MSG_API_VERSIONS_H
#define KAFSCALE_MSG_API_VERSIONS_H
#include "kmsg.h"

typedef struct {
    kstr_t client_software_name;
    kstr_t client_software_version;
} api_versions_req_t;

typedef struct {
    int16_t api_key;
    int16_t min_version;
    int16_t max_version;
} api_versions_resp_key_t;

typedef struct {
    int16_t error_code;
    karray_t api_keys; /* api_versions_resp_key_t */
    int32_t throttle_time_ms;
} api_versions_resp_t;

extern const kschema_t api_versions_req_schema, api_versions_resp_schema;
#endif
