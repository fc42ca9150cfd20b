/* msg_offset_for_leader_epoch.h - OffsetForLeaderEpoch request/response (API
 * key 23), versions 0-4, flexible from 4. Transcribed from Kafka's
 * OffsetForLeaderEpochRequest.json / OffsetForLeaderEpochResponse.json: v1
 * adds the leader epoch to the response, v2 CurrentLeaderEpoch (fencing,
 * KIP-320) and the throttle time, v3 ReplicaId. */
#ifndef KAFSCALE_MSG_OFFSET_FOR_LEADER_EPOCH_H
#define KAFSCALE_MSG_OFFSET_FOR_LEADER_EPOCH_H
#include "kmsg.h"

typedef struct {
    int32_t partition;
    int32_t current_leader_epoch; /* v2+, default -1 */
    int32_t leader_epoch;         /* the epoch to look up */
} offset_for_leader_epoch_req_part_t;

typedef struct {
    kstr_t topic;
    karray_t partitions; /* offset_for_leader_epoch_req_part_t */
} offset_for_leader_epoch_req_topic_t;

typedef struct {
    int32_t replica_id; /* v3+, default -2 */
    karray_t topics;    /* offset_for_leader_epoch_req_topic_t */
} offset_for_leader_epoch_req_t;

typedef struct {
    int16_t error_code;
    int32_t partition;
    int32_t leader_epoch; /* v1+, default -1 */
    int64_t end_offset;
} offset_for_leader_epoch_resp_part_t;

typedef struct {
    kstr_t topic;
    karray_t partitions; /* offset_for_leader_epoch_resp_part_t */
} offset_for_leader_epoch_resp_topic_t;

typedef struct {
    int32_t throttle_time_ms; /* v2+ */
    karray_t topics;          /* offset_for_leader_epoch_resp_topic_t */
} offset_for_leader_epoch_resp_t;

extern const kschema_t offset_for_leader_epoch_req_schema, offset_for_leader_epoch_resp_schema;
#endif
