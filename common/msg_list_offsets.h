/* msg_list_offsets.h - ListOffsets request/response (API key 2), after Kafka's
 * ListOffsetsRequest.json / ListOffsetsResponse.json. The broker serves
 * versions 0-7 (flexible from 6); v10's TimeoutMs is in the table too. */
#ifndef KAFSCALE_MSG_LIST_OFFSETS_H
#define KAFSCALE_MSG_LIST_OFFSETS_H
#include "kmsg.h"

/* Special timestamps a client may ask for. */
#define LIST_OFFSETS_LATEST (-1)        /* the high watermark (or LSO for read_committed) */
#define LIST_OFFSETS_EARLIEST (-2)      /* the log start offset */
#define LIST_OFFSETS_MAX_TIMESTAMP (-3) /* v7+: the offset holding the largest timestamp */

typedef struct {
    int32_t partition_index;
    int32_t current_leader_epoch;   /* v4+, default -1 */
    int64_t timestamp;
    int32_t max_num_offsets;        /* v0 only, default 1 */
} list_offsets_req_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions;            /* list_offsets_req_part_t */
} list_offsets_req_topic_t;

typedef struct {
    int32_t replica_id;
    int8_t isolation_level;         /* v2+ */
    karray_t topics;                /* list_offsets_req_topic_t */
    int32_t timeout_ms;             /* v10+ */
} list_offsets_req_t;

typedef struct {
    int32_t partition_index;
    int16_t error_code;
    karray_t old_style_offsets;     /* v0 only, int64_t */
    int64_t timestamp;              /* v1+, default -1 */
    int64_t offset;                 /* v1+, default -1 */
    int32_t leader_epoch;           /* v4+, default -1 */
} list_offsets_resp_part_t;

typedef struct {
    kstr_t name;
    karray_t partitions;            /* list_offsets_resp_part_t */
} list_offsets_resp_topic_t;

typedef struct {
    int32_t throttle_time_ms;       /* v2+ */
    karray_t topics;                /* list_offsets_resp_topic_t */
} list_offsets_resp_t;

extern const kschema_t list_offsets_req_schema, list_offsets_resp_schema;
#endif
