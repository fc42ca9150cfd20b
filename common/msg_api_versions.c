/* msg_api_versions.c - schema of ApiVersions (API key 18), after Kafka's ApiVersionsRequest/Response.json. */
#include "msg_api_versions.h"

KSCHEMA(api_versions_req_schema, api_versions_req_t,
    KF(api_versions_req_t, client_software_name, KT_STRING, 3, KV_MAX),
    KF(api_versions_req_t, client_software_version, KT_STRING, 3, KV_MAX));

KSCHEMA_LOCAL(api_versions_resp_key_schema, api_versions_resp_key_t,
    KF(api_versions_resp_key_t, api_key, KT_INT16, 0, KV_MAX),
    KF(api_versions_resp_key_t, min_version, KT_INT16, 0, KV_MAX),
    KF(api_versions_resp_key_t, max_version, KT_INT16, 0, KV_MAX));
KSCHEMA(api_versions_resp_schema, api_versions_resp_t,
    KF(api_versions_resp_t, error_code, KT_INT16, 0, KV_MAX),
    KFA(api_versions_resp_t, api_keys, 0, KV_MAX, &api_versions_resp_key_schema),
    KF(api_versions_resp_t, throttle_time_ms, KT_INT32, 1, KV_MAX));
