/* msg_fetch.h - Fetch request/response (API key 1), after Kafka's
 * FetchRequest.json / FetchResponse.json. The broker serves versions 4-13
 * (flexible from 12); the tables also carry the fields of later versions
 * (v15 ReplicaState, v16 NodeEndpoints, v17 ReplicaDirectoryId) so the codec
 * is ready when the dispatch table widens.
 *
 * Response records are a krecords_t (KT_RECORDS): the encoder references
 * them instead of copying (zero copy); whoever fills them keeps the bytes alive
 * until the response left the socket (see plog_read in broker/broker.h). */
#ifndef KAFSCALE_MSG_FETCH_H
#define KAFSCALE_MSG_FETCH_H
#include "kmsg.h"

/* ---- request ---- */

typedef struct {
    int32_t partition;
    int32_t current_leader_epoch;   /* v9+, default -1 */
    int64_t fetch_offset;
    int32_t last_fetched_epoch;     /* v12+, default -1 */
    int64_t log_start_offset;       /* v5+, default -1 (followers only) */
    int32_t partition_max_bytes;
    kuuid_t replica_directory_id;   /* v17+ tagged 0 */
} fetch_req_part_t;

typedef struct {
    kstr_t topic;                   /* v0-12 */
    kuuid_t topic_id;               /* v13+ */
    karray_t partitions;            /* fetch_req_part_t */
} fetch_req_topic_t;

typedef struct {
    kstr_t topic;                   /* v7-12 */
    kuuid_t topic_id;               /* v13+ */
    karray_t partitions;            /* int32_t */
} fetch_req_forgotten_t;

typedef struct {
    int32_t replica_id;             /* default -1 */
    int64_t replica_epoch;          /* default -1 */
} fetch_req_replica_state_t;

typedef struct {
    kstr_t cluster_id;              /* v12+ tagged 0, nullable, default null */
    int32_t replica_id;             /* v0-14, default -1 */
    fetch_req_replica_state_t replica_state; /* v15+ tagged 1 */
    int32_t max_wait_ms;
    int32_t min_bytes;
    int32_t max_bytes;              /* v3+, default 0x7fffffff */
    int8_t isolation_level;         /* v4+, 0 read_uncommitted, 1 read_committed */
    int32_t session_id;             /* v7+, default 0 */
    int32_t session_epoch;          /* v7+, default -1 */
    karray_t topics;                /* fetch_req_topic_t */
    karray_t forgotten_topics_data; /* v7+, fetch_req_forgotten_t */
    kstr_t rack_id;                 /* v11+, default "" */
} fetch_req_t;

/* ---- response ---- */

typedef struct {
    int32_t epoch;                  /* default -1 */
    int64_t end_offset;             /* default -1 */
} fetch_resp_epoch_end_offset_t;

typedef struct {
    int32_t leader_id;              /* default -1 */
    int32_t leader_epoch;           /* default -1 */
} fetch_resp_leader_t;

typedef struct {
    int64_t end_offset;             /* default -1 */
    int32_t epoch;                  /* default -1 */
} fetch_resp_snapshot_id_t;

typedef struct {
    int64_t producer_id;
    int64_t first_offset;
} fetch_resp_aborted_t;

typedef struct {
    int32_t partition_index;
    int16_t error_code;
    int64_t high_watermark;
    int64_t last_stable_offset;     /* v4+, default -1 */
    int64_t log_start_offset;       /* v5+, default -1 */
    fetch_resp_epoch_end_offset_t diverging_epoch; /* v12+ tagged 0 */
    fetch_resp_leader_t current_leader;            /* v12+ tagged 1 */
    fetch_resp_snapshot_id_t snapshot_id;          /* v12+ tagged 2 */
    karray_t aborted_transactions;  /* v4+, nullable, fetch_resp_aborted_t */
    int32_t preferred_read_replica; /* v11+, default -1 */
    krecords_t records;             /* nullable, by reference (iov pieces) */
} fetch_resp_part_t;

typedef struct {
    kstr_t topic;                   /* v0-12 */
    kuuid_t topic_id;               /* v13+ */
    karray_t partitions;            /* fetch_resp_part_t */
} fetch_resp_topic_t;

typedef struct {
    int32_t node_id;
    kstr_t host;
    int32_t port;
    kstr_t rack;                    /* nullable, default null */
} fetch_resp_node_endpoint_t;

typedef struct {
    int32_t throttle_time_ms;       /* v1+ */
    int16_t error_code;             /* v7+ */
    int32_t session_id;             /* v7+, default 0 */
    karray_t responses;             /* fetch_resp_topic_t */
    karray_t node_endpoints;        /* v16+ tagged 0, fetch_resp_node_endpoint_t */
} fetch_resp_t;

extern const kschema_t fetch_req_schema, fetch_resp_schema;
#endif
