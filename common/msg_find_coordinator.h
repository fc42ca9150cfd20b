/* msg_find_coordinator.h - FindCoordinator request/response (API key 10),
 * versions 0-4, flexible from 3. Transcribed from Kafka's
 * FindCoordinatorRequest.json / FindCoordinatorResponse.json: v0-3 ask for
 * one key and answer at the top level; v4 (KIP-699) batches keys and answers
 * one Coordinator entry per key. */
#ifndef KAFSCALE_MSG_FIND_COORDINATOR_H
#define KAFSCALE_MSG_FIND_COORDINATOR_H
#include "kmsg.h"

#define COORDINATOR_KEY_GROUP 0
#define COORDINATOR_KEY_TRANSACTION 1

typedef struct {
    kstr_t key;                /* v0-3 */
    int8_t key_type;           /* v1+, default 0 (group) */
    karray_t coordinator_keys; /* kstr_t, v4+ */
} find_coordinator_req_t;

typedef struct {
    kstr_t key;
    int32_t node_id;
    kstr_t host;
    int32_t port;
    int16_t error_code;
    kstr_t error_message; /* nullable */
} find_coordinator_resp_coordinator_t;

typedef struct {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;       /* v0-3 */
    kstr_t error_message;     /* v1-3, nullable */
    int32_t node_id;          /* v0-3 */
    kstr_t host;              /* v0-3 */
    int32_t port;             /* v0-3 */
    karray_t coordinators;    /* find_coordinator_resp_coordinator_t, v4+ */
} find_coordinator_resp_t;

extern const kschema_t find_coordinator_req_schema, find_coordinator_resp_schema;
#endif
