/* msg_offset_commit.h - OffsetCommit request/response (API key 8), versions
 * 0-8, flexible from 8. Transcribed from Kafka's OffsetCommitRequest.json /
 * OffsetCommitResponse.json. v1 adds the generation, member id and a
 * per-partition commit timestamp (v1 only); v2-4 carry a retention time;
 * v6 the committed leader epoch; v7 group.instance.id. */
#ifndef KAFSCALE_MSG_OFFSET_COMMIT_H
#define KAFSCALE_MSG_OFFSET_COMMIT_H
#include "kmsg.h"

typedef struct {
    int32_t partition_index;
    int64_t committed_offset;
    int32_t committed_leader_epoch; /* v6+, default -1 */
    int64_t commit_timestamp;       /* v1 only, default -1 */
    kstr_t committed_metadata;      /* nullable */
} offset_commit_req_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions; /* offset_commit_req_part_t */
} offset_commit_req_topic_t;

typedef struct {
    kstr_t group_id;
    int32_t generation_id_or_member_epoch; /* v1+, default -1 */
    kstr_t member_id;                      /* v1+ */
    kstr_t group_instance_id;              /* v7+, nullable, default null */
    int64_t retention_time_ms;             /* v2-4, default -1 */
    karray_t topics;                       /* offset_commit_req_topic_t */
} offset_commit_req_t;

typedef struct {
    int32_t partition_index;
    int16_t error_code;
} offset_commit_resp_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions; /* offset_commit_resp_part_t */
} offset_commit_resp_topic_t;

typedef struct {
    int32_t throttle_time_ms; /* v3+ */
    karray_t topics;          /* offset_commit_resp_topic_t */
} offset_commit_resp_t;

extern const kschema_t offset_commit_req_schema, offset_commit_resp_schema;
#endif
