/* etcd.h - a client for etcd v3 over its JSON gateway (grpc-gateway,
 * http(s)://host:2379/v3/...), built on libcurl and jansson.
 *
 * What it covers: range (single key, key ranges and prefixes, at a revision,
 * limit, keys only, count only), put (with a lease), delete (ranges), txn
 * (compares on value, version, create/mod revision and lease; success and
 * failure branches of put / delete / range), lease grant / keepalive /
 * time-to-live / revoke, and watch as a long-lived stream that resumes by
 * itself. Keys and values are byte strings (base64 on the wire).
 *
 * Endpoints and failover. Several endpoints may be given; calls go to the
 * current one and move to the next when it cannot be reached. Every call
 * makes at most (max_retries + number of endpoints) attempts, with
 * exponential backoff and jitter once every endpoint was tried.
 *   - A failure before the request left (connection refused, DNS, TLS
 *     handshake) is retried for every call.
 *   - A failure after it left (timeout, reset, "etcdserver: request timed
 *     out") is retried only for calls that are safe to repeat (range, lease
 *     keepalive / time-to-live / revoke, authenticate). A put, delete, txn or
 *     lease grant then returns ETCD_ERR_UNKNOWN: it may or may not have been
 *     applied, and the caller must find out (read the key, compare the
 *     revision) before acting on either assumption. Writes go on a fresh
 *     connection so that libcurl never re-sends one by itself (it does, on
 *     a kept-alive connection that dies before answering).
 *
 * Authentication. With a username and password, the client authenticates
 * (POST /v3/auth/authenticate) before its first call, sends the token in the
 * Authorization header and authenticates again when etcd answers "invalid
 * auth token" (tokens expire: --auth-token-ttl, 300 s by default) or "auth
 * revision is old", then repeats the call once. The password and the token
 * never appear in logs or error strings; the password is wiped on close.
 * https endpoints are verified against the system CA store, or only against
 * ca_file when it is set.
 *
 * Threads. Every call on an etcd_t (range, put, ..., watch start/stop,
 * stats) may be made from any number of threads at once; each call blocks
 * its thread for its own duration only (a pool of curl handles, one per
 * call in progress, keeps connections alive between calls). Watches run on
 * their own thread each (see etcd_watch_start). etcd_open and etcd_close
 * are not concurrent with anything else on the same etcd_t.
 *
 * Memory. Results (etcd_range_result_t, etcd_txn_result_t) own their keys
 * and values until the matching *_free; keys and values are also
 * NUL-terminated (not counted in the length) so text keys print as C
 * strings. Everything a watch callback receives lives only during the call.
 */
#ifndef KAFSCALE_ETCD_H
#define KAFSCALE_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct etcd etcd_t;
typedef struct etcd_watch etcd_watch_t;

/* ---- status codes (0 or negative; etcd_status_name for logs) ---- */
enum {
    ETCD_OK = 0,
    ETCD_ERR_INVALID = -1,     /* refused: a bad argument (ours or etcd's InvalidArgument) */
    ETCD_ERR_UNAVAILABLE = -2, /* no endpoint answered within the attempts */
    ETCD_ERR_UNKNOWN = -3,     /* a write was sent but no answer came: outcome unknown */
    ETCD_ERR_AUTH = -4,        /* authentication failed, required, or permission denied */
    ETCD_ERR_NOT_FOUND = -5,   /* lease not found (expired or revoked) */
    ETCD_ERR_COMPACTED = -6,   /* the requested revision was compacted */
    ETCD_ERR_FUTURE_REV = -7,  /* the requested revision is newer than the store */
    ETCD_ERR_PROTO = -8,       /* an answer we could not understand */
    ETCD_ERR_SERVER = -9,      /* any other error etcd reported (message in err) */
};
const char *etcd_status_name(int st);

/* ---- configuration ---- */
#define ETCD_MAX_ENDPOINTS 16

typedef struct etcd_config {
    char endpoints[ETCD_MAX_ENDPOINTS][256]; /* "http(s)://host:port", no trailing '/' */
    int nendpoints;
    char username[256], password[256];       /* empty username: no authentication */
    char ca_file[1024];                      /* https: trust only this CA bundle (PEM) */
    int timeout_ms;      /* per attempt (default 5000); connecting: at most 2000 of it */
    int max_retries;     /* retries after every endpoint was tried once (default 3) */
    int backoff_ms;      /* first backoff (default 100), doubled per retry ... */
    int backoff_max_ms;  /* ... up to this (default 2000); the delay waited is uniform in [d/2, d] */
} etcd_config_t;

void etcd_config_defaults(etcd_config_t *cfg);

/* Parses a comma-separated endpoint list into cfg->endpoints. Accepts
 * "http://h:p", "https://h:p" and bare "h:p" (http); trailing '/' removed,
 * blanks around commas ignored. 0, or -1 with a message in err. */
int etcd_config_set_endpoints(etcd_config_t *cfg, const char *list, char *err, size_t errsz);

/* Fills cfg from KAFSCALE_ETCD_ENDPOINTS, _USERNAME, _PASSWORD, _CA_FILE,
 * _TIMEOUT_MS, _MAX_RETRIES. Returns false (cfg = defaults) when
 * KAFSCALE_ETCD_ENDPOINTS is unset or empty. Exits (status 2) with a
 * message naming the variable on a bad value. */
bool etcd_config_from_env(etcd_config_t *cfg);

/* No I/O: authentication happens on the first call. cfg is copied. NULL
 * with a message in err on a bad configuration (no endpoints, unreadable
 * CA file, a password without a username). */
etcd_t *etcd_open(const etcd_config_t *cfg, char *err, size_t errsz);
/* Every watch of c must be stopped first. */
void etcd_close(etcd_t *c);

typedef struct etcd_stats {
    uint64_t requests;   /* HTTP requests made (attempts, authentication included) */
    uint64_t retries;    /* attempts after the first, per call */
    uint64_t failovers;  /* moves to the next endpoint */
    uint64_t auths;      /* successful authentications */
    uint64_t errors;     /* calls that returned an error */
    uint64_t watch_reconnects;
    uint64_t watch_events;
} etcd_stats_t;
void etcd_get_stats(etcd_t *c, etcd_stats_t *out);
/* The endpoint calls currently go to (for logs and tests). */
const char *etcd_current_endpoint(etcd_t *c);

/* ---- keys and values ---- */
typedef struct etcd_kv {
    uint8_t *key;        /* NUL-terminated (not counted in key_len) */
    size_t key_len;
    uint8_t *value;      /* NUL-terminated; "" for keys_only results and deletions */
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
} etcd_kv_t;

typedef struct etcd_range_result {
    etcd_kv_t *kvs;
    int nkvs;
    int64_t count;       /* keys in the range (may exceed nkvs with a limit) */
    bool more;           /* the limit cut the answer */
    int64_t revision;    /* the store revision the answer reflects */
} etcd_range_result_t;
void etcd_range_result_free(etcd_range_result_t *r);

/* A range is [key, range_end). range_end NULL: key alone. A prefix's
 * range_end comes from etcd_prefix_end; "\0" (length 1) with any key means
 * "every key >= key". */
typedef struct etcd_range_req {
    const void *key;
    size_t key_len;
    const void *range_end;
    size_t range_end_len;
    int64_t revision;    /* 0: the newest */
    int64_t limit;       /* 0: no limit */
    bool keys_only, count_only, serializable;
} etcd_range_req_t;

/* The range_end that makes [key, end) the keys starting with key: key with
 * its last byte below 0xff incremented and what follows dropped; "\0" when
 * every byte is 0xff (or key is empty). out needs key_len (>= 1) bytes;
 * returns the end's length. */
size_t etcd_prefix_end(const void *key, size_t key_len, uint8_t *out);

int etcd_range(etcd_t *c, const etcd_range_req_t *req, etcd_range_result_t *out, char *err, size_t errsz);
/* One key: ETCD_OK with out->nkvs 0 or 1. */
int etcd_get(etcd_t *c, const char *key, etcd_range_result_t *out, char *err, size_t errsz);

/* lease 0: none. *revision (may be NULL) receives the revision of the put. */
int etcd_put(etcd_t *c, const void *key, size_t key_len, const void *value, size_t value_len, int64_t lease,
             int64_t *revision, char *err, size_t errsz);
/* Deletes [key, range_end) (range_end NULL: key alone). *deleted and
 * *revision may be NULL. */
int etcd_delete(etcd_t *c, const void *key, size_t key_len, const void *range_end, size_t range_end_len,
                int64_t *deleted, int64_t *revision, char *err, size_t errsz);

/* ---- transactions ---- */
typedef enum etcd_cmp_target {
    ETCD_CMP_VERSION, ETCD_CMP_CREATE, ETCD_CMP_MOD, ETCD_CMP_VALUE, ETCD_CMP_LEASE, ETCD_CMP_TARGET_MAX
} etcd_cmp_target_t;
typedef enum etcd_cmp_op {
    ETCD_CMP_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS, ETCD_CMP_NOT_EQUAL, ETCD_CMP_OP_MAX
} etcd_cmp_op_t;

/* "target(key) op operand". A key that does not exist has version,
 * create and mod revision 0 and lease 0 (so "create(k) = 0" means "k does
 * not exist"); a value compare against a missing key is false. */
typedef struct etcd_cmp {
    etcd_cmp_target_t target;
    etcd_cmp_op_t op;
    const void *key;
    size_t key_len;
    const void *range_end;   /* optional: compare every key of the range */
    size_t range_end_len;
    int64_t number;          /* VERSION, CREATE, MOD, LEASE */
    const void *value;       /* VALUE */
    size_t value_len;
} etcd_cmp_t;

typedef enum etcd_op_kind { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_KIND_MAX } etcd_op_kind_t;

typedef struct etcd_op {
    etcd_op_kind_t kind;
    const void *key;
    size_t key_len;
    const void *range_end;   /* RANGE, DELETE */
    size_t range_end_len;
    const void *value;       /* PUT */
    size_t value_len;
    int64_t lease;           /* PUT */
    int64_t limit, revision; /* RANGE */
    bool keys_only;          /* RANGE */
} etcd_op_t;

typedef struct etcd_op_result {
    etcd_op_kind_t kind;
    etcd_range_result_t range; /* RANGE */
    int64_t deleted;           /* DELETE */
} etcd_op_result_t;

typedef struct etcd_txn_result {
    bool succeeded;            /* every compare held: the success ops ran */
    int64_t revision;          /* store revision after the txn */
    etcd_op_result_t *results; /* one per op of the branch that ran */
    int nresults;
} etcd_txn_result_t;
void etcd_txn_result_free(etcd_txn_result_t *r);

/* Atomically: if every compare holds, run success[], else failure[]. */
int etcd_txn(etcd_t *c, const etcd_cmp_t *cmps, int ncmps, const etcd_op_t *success, int nsuccess,
             const etcd_op_t *failure, int nfailure, etcd_txn_result_t *out, char *err, size_t errsz);

/* ---- leases ---- */
/* id 0: etcd picks one. *granted_id receives it, *granted_ttl the TTL
 * etcd granted (may be NULL). */
int etcd_lease_grant(etcd_t *c, int64_t ttl_sec, int64_t id, int64_t *granted_id, int64_t *granted_ttl, char *err,
                     size_t errsz);
/* One keepalive round trip: the lease lives ttl seconds from now
 * (*ttl may be NULL). ETCD_ERR_NOT_FOUND when it already expired. Callers
 * keep a lease alive by calling this every ttl/3 seconds. */
int etcd_lease_keepalive(etcd_t *c, int64_t id, int64_t *ttl, char *err, size_t errsz);
/* Remaining TTL (-1 when expired or unknown) and granted TTL. */
int etcd_lease_ttl(etcd_t *c, int64_t id, int64_t *ttl, int64_t *granted_ttl, char *err, size_t errsz);
/* Revokes the lease and deletes its keys. ETCD_ERR_NOT_FOUND when gone. */
int etcd_lease_revoke(etcd_t *c, int64_t id, char *err, size_t errsz);

/* ---- watch ----
 *
 * Design choice: each watch runs on its own thread with its own HTTP
 * stream (POST /v3/watch, the answer a never-ending sequence of JSON
 * objects). A thread keeps the client simple and independent of who uses
 * it: the flusher has no event loop, and the broker's libevent loop
 * receives events by queueing them in the callback and waking the loop
 * (event_active on an event created with libevent_pthreads' locking).
 * The stream parser (etcd_wparser_*) is incremental and driven by bytes
 * only, so a later fd-based variant could reuse it unchanged.
 *
 * Resuming: the thread remembers the next revision it needs (the last
 * event's revision + 1, or the creation revision + 1) and, when the stream
 * breaks (endpoint down, stream ended, watch canceled, token expired),
 * reconnects - to the next endpoint, authenticating again when the token
 * was refused - from that revision, with backoff (100 ms doubling to 5 s,
 * reset once a stream is established). No event is delivered twice or
 * skipped, except across a compaction (below). A silent dead peer is
 * detected by TCP keepalive (probes after 5 s idle, every 5 s).
 *
 * Compaction: when the revision to resume from was compacted, events are
 * lost for good. The compacted callback is told the compaction revision and
 * returns the revision to resume from - typically after re-reading the
 * watched range with etcd_range (which reports the revision it reflects,
 * R) and returning R + 1. Returning 0, or having no callback, resumes at the
 * compaction revision (the oldest one still available).
 */
enum { ETCD_EVENT_PUT = 0, ETCD_EVENT_DELETE = 1 };

typedef struct etcd_event {
    int type;            /* ETCD_EVENT_PUT / _DELETE; a DELETE's kv has key and mod_revision only */
    etcd_kv_t kv;
    bool has_prev;       /* prev_kv was requested and the key existed */
    etcd_kv_t prev_kv;
} etcd_event_t;

typedef struct etcd_watch_cb {
    /* Events in revision order (one call per watch response: all events of
     * a revision arrive in one call). Runs on the watch thread. */
    void (*events)(void *arg, const etcd_event_t *ev, int n);
    /* See "Compaction" above. Optional; may call etcd_range on the same
     * etcd_t. Runs on the watch thread. */
    int64_t (*compacted)(void *arg, int64_t compact_revision);
    /* The stream is established (connected, revision = the revision the
     * watch resumes from), or broke (connected false, why says how; the
     * thread reconnects by itself). Optional. Runs on the watch thread. */
    void (*status)(void *arg, bool connected, int64_t revision, const char *why);
    void *arg;
} etcd_watch_cb_t;

typedef struct etcd_watch_req {
    const void *key;         /* [key, range_end) as for etcd_range */
    size_t key_len;
    const void *range_end;
    size_t range_end_len;
    int64_t start_revision;  /* 0: from the revision current when the stream is first established */
    bool prev_kv;            /* events carry the previous value */
} etcd_watch_req_t;

/* Starts the watch thread and returns at once (the stream is established
 * in the background; the status callback says when). The request is
 * copied. NULL with err set only when the thread cannot start. Callbacks
 * must not call etcd_watch_stop on their own watch. */
etcd_watch_t *etcd_watch_start(etcd_t *c, const etcd_watch_req_t *req, const etcd_watch_cb_t *cb, char *err,
                               size_t errsz);
/* Stops the stream promptly (curl_multi_wakeup), joins the thread, frees w.
 * No callback runs after it returns. */
void etcd_watch_stop(etcd_watch_t *w);
/* The revision the watch would resume from (for logs and tests). */
int64_t etcd_watch_next_revision(etcd_watch_t *w);

/* ---- building blocks, exposed for the unit tests ---- */

/* Standard base64 with padding (what the gateway's JSON uses for bytes).
 * encode: out needs etcd_b64_encoded_len(n) + 1 bytes (NUL-terminated);
 * returns the length. decode: accepts missing padding, refuses anything
 * else that is not base64 (whitespace included); out needs
 * etcd_b64_decoded_max(n) bytes; returns the length or -1. */
size_t etcd_b64_encoded_len(size_t n);
size_t etcd_b64_encode(const void *in, size_t n, char *out);
size_t etcd_b64_decoded_max(size_t n);
long etcd_b64_decode(const char *in, size_t n, uint8_t *out);

/* Request bodies as the gateway expects them (malloc'd JSON text, caller
 * frees; NULL on a bad argument: empty key, unknown kind/target/op). */
char *etcd_json_range(const etcd_range_req_t *req);
char *etcd_json_put(const void *key, size_t key_len, const void *value, size_t value_len, int64_t lease);
char *etcd_json_txn(const etcd_cmp_t *cmps, int ncmps, const etcd_op_t *success, int nsuccess,
                    const etcd_op_t *failure, int nfailure);
char *etcd_json_watch_create(const etcd_watch_req_t *req, int64_t start_revision);

/* Answer parsers over a gateway answer's body (ETCD_OK or an error with a
 * message in err). etcd_parse_error reads {"error":..,"code":N,"message":..}
 * (also the stream form {"error":{"grpc_code":N,"message":..}}) and maps it
 * to a status; it returns ETCD_ERR_PROTO when body holds no error. */
int etcd_parse_range(const char *body, size_t len, etcd_range_result_t *out, char *err, size_t errsz);
int etcd_parse_txn(const char *body, size_t len, etcd_txn_result_t *out, char *err, size_t errsz);
int etcd_parse_error(const char *body, size_t len, int *grpc_code, char *err, size_t errsz);

/* One decoded message of the watch stream. */
typedef struct etcd_watch_resp {
    int64_t header_revision;
    int64_t watch_id;
    bool created, canceled;
    int64_t compact_revision;  /* > 0: the start revision was compacted (with canceled) */
    char cancel_reason[256];
    bool is_error;             /* {"error": ...}: the stream failed */
    int error_code;            /* its gRPC code */
    char error_msg[256];
    etcd_event_t *events;
    int nevents;
} etcd_watch_resp_t;
void etcd_watch_resp_free(etcd_watch_resp_t *r);

/* The incremental splitter of the watch stream: bytes in any pieces,
 * complete top-level JSON objects out (newline-delimited or back to back),
 * each decoded and handed to on_resp (which returns 0 to go on, anything
 * else to stop: feed then returns that value). Returns 0 after consuming
 * all bytes, or -1 (err set) on bytes that are not a JSON object stream or
 * an object larger than max_msg. */
typedef struct etcd_wparser etcd_wparser_t;
etcd_wparser_t *etcd_wparser_new(size_t max_msg);
void etcd_wparser_free(etcd_wparser_t *p);
void etcd_wparser_reset(etcd_wparser_t *p);  /* a new stream: drop any partial object */
int etcd_wparser_feed(etcd_wparser_t *p, const char *data, size_t len,
                      int (*on_resp)(void *arg, etcd_watch_resp_t *r), void *arg, char *err, size_t errsz);

/* What the watch thread does with one stream message, and how it moves
 * *next_rev (the revision to resume from). Events older than *next_rev are
 * dropped from r (never delivered twice). */
typedef enum etcd_watch_action {
    ETCD_WA_NONE,       /* created / progress: nothing to deliver */
    ETCD_WA_EVENTS,     /* deliver r->events */
    ETCD_WA_COMPACTED,  /* canceled: the start revision was compacted */
    ETCD_WA_REAUTH,     /* refused for the token: authenticate, reconnect */
    ETCD_WA_RECONNECT,  /* canceled or failed otherwise: reconnect with backoff */
} etcd_watch_action_t;
etcd_watch_action_t etcd_watch_step(int64_t *next_rev, etcd_watch_resp_t *r);

#endif
