/* api_api_versions.c - ApiVersions (key 18): the versions of every API we
 * serve, generated from the dispatch table. (A too-new version is answered
 * in conn.c, before the handler, as Kafka does.) */
#include "broker.h"
#include "msg_api_versions.h"

kh_result_t api_api_versions(kreq_t *req) {
    api_versions_req_t in;
    if (kmsg_decode(&api_versions_req_schema, req->hdr.api_version, req->flexible, &req->body, &in, &req->arena)) {
        /* Kafka answers a malformed ApiVersions with INVALID_REQUEST rather than closing. */
        api_versions_resp_t bad = {.error_code = KERR_INVALID_REQUEST, .api_keys = {NULL, 0}};
        return kreq_respond(req, &api_versions_resp_schema, &bad);
    }
    api_versions_resp_t resp = {.error_code = KERR_NONE, .throttle_time_ms = 0};
    api_versions_resp_key_t *keys = KARR_NEW(&req->arena, resp.api_keys, api_versions_resp_key_t, api_table_len);
    if (!keys) return KH_CLOSE;
    for (int i = 0; i < api_table_len; i++)
        keys[i] = (api_versions_resp_key_t){api_table[i].key, api_table[i].min_version, api_table[i].max_version};
    return kreq_respond(req, &api_versions_resp_schema, &resp);
}
