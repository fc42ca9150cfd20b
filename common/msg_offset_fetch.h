/* msg_offset_fetch.h - OffsetFetch request/response (API key 9), versions
 * 0-8, flexible from 6. Transcribed from Kafka's OffsetFetchRequest.json /
 * OffsetFetchResponse.json. v0-7 ask for one group (topics null from v2:
 * every committed offset) and answer at the top level; v8 asks for several
 * groups and answers one entry per group. The topic and partition entries of
 * v0-7 and v8 have the same shape on the wire and share one C struct here
 * (OffsetFetchRequestTopic/Topics, OffsetFetchResponseTopic/Topics and
 * OffsetFetchResponsePartition/Partitions); v9's member fields are in the
 * tables too. */
#ifndef KAFSCALE_MSG_OFFSET_FETCH_H
#define KAFSCALE_MSG_OFFSET_FETCH_H
#include "kmsg.h"

typedef struct {
    kstr_t name;
    karray_t partition_indexes; /* int32_t */
} offset_fetch_req_topic_t;

typedef struct {
    kstr_t group_id;
    kstr_t member_id;     /* v9+, nullable, default null */
    int32_t member_epoch; /* v9+, default -1 */
    karray_t topics;      /* offset_fetch_req_topic_t, nullable: all topics */
} offset_fetch_req_group_t;

typedef struct {
    kstr_t group_id;     /* v0-7 */
    karray_t topics;     /* offset_fetch_req_topic_t, v0-7, nullable from v2 */
    karray_t groups;     /* offset_fetch_req_group_t, v8+ */
    bool require_stable; /* v7+ */
} offset_fetch_req_t;

typedef struct {
    int32_t partition_index;
    int64_t committed_offset;
    int32_t committed_leader_epoch; /* v5+, default -1 */
    kstr_t metadata;                /* nullable */
    int16_t error_code;
} offset_fetch_resp_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions; /* offset_fetch_resp_part_t */
} offset_fetch_resp_topic_t;

typedef struct {
    kstr_t group_id;
    karray_t topics; /* offset_fetch_resp_topic_t */
    int16_t error_code;
} offset_fetch_resp_group_t;

typedef struct {
    int32_t throttle_time_ms; /* v3+ */
    karray_t topics;          /* offset_fetch_resp_topic_t, v0-7 */
    int16_t error_code;       /* v2-7 */
    karray_t groups;          /* offset_fetch_resp_group_t, v8+ */
} offset_fetch_resp_t;

extern const kschema_t offset_fetch_req_schema, offset_fetch_resp_schema;
#endif
