/* broker.h - the broker process: its settings, connections, requests, the API
 * dispatch table and the interfaces API handlers use.
 *
 * Request life cycle: conn.c reads a frame, decodes the header, looks the API
 * up in the dispatch table (dispatch.c) and refuses unknown keys/versions
 * before any handler runs. The handler (api_*.c, one file per API) decodes the
 * body with the API's schema (common/msg_*.c), does its work and either
 * answers at once (KH_RESPOND), parks the request to answer later
 * (KH_PARKED: Fetch long-poll, acks=all produce), answers nothing (acks=0)
 * or asks to close the connection (a malformed request). Responses go out in
 * request order, however many requests are in flight on a connection.
 */
#ifndef KAFSCALE_BROKER_H
#define KAFSCALE_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <event2/event.h>

#include "kafka.h"
#include "kbuf.h"
#include "kmsg.h"
#include "log.h"

struct kconn;
struct kreq;
struct topic;
struct partition;

/* ---- settings (read once at start from KAFSCALE_*; see README) ---- */
typedef struct broker_config {
    char listen_host[256];
    int listen_port;
    char advertised_host[256];
    int advertised_port;
    int32_t node_id;
    char data_dir[1024];
    char cluster_id[64];
    int64_t max_request_bytes;
    int64_t idle_timeout_ms;
    bool auto_create_topics;
    int32_t auto_create_partitions;
    int32_t max_inflight_per_conn; /* requests decoded ahead of the response in order */
    int64_t max_unflushed_bytes;   /* producers pause above this (KAFSCALE_MAX_UNFLUSHED_BYTES) */
    int64_t tail_bytes;            /* durable bytes kept in memory for tail reads (KAFSCALE_TAIL_BYTES) */
} broker_config_t;

/* ---- handler results ---- */
typedef enum kh_result {
    KH_RESPOND = 0,   /* req->resp holds the response body: send it */
    KH_PARKED,        /* the handler will call kreq_finish() later */
    KH_NO_RESPONSE,   /* nothing is sent (Produce with acks=0) */
    KH_CLOSE,         /* malformed request: close the connection */
} kh_result_t;

typedef kh_result_t(kh_fn)(struct kreq *req);

/* One row per API: the only place versions are declared. ApiVersions is
 * generated from this table. */
typedef struct api_def {
    int16_t key;
    int16_t min_version, max_version;
    int16_t first_flexible; /* first version with flexible encoding (KV_MAX: none) */
    const char *name;
    kh_fn *handler;
    const kschema_t *req_schema;  /* body schemas (common/msg_*.h), used by the */
    const kschema_t *resp_schema; /* handlers, the fuzzer and round-trip tests */
} api_def_t;

const api_def_t *api_lookup(int16_t key); /* NULL when we do not serve this key */
extern const api_def_t api_table[];
extern const int api_table_len;

/* ---- a request in flight ---- */
#define KREQ_MAGIC 0x6b726571u /* "kreq" */

typedef struct kreq {
    uint32_t magic;
    struct kconn *conn;          /* NULL once the connection went away while parked */
    kreq_hdr_t hdr;
    const api_def_t *api;
    bool flexible;               /* body (and header v2/v1) are flexible */
    uint8_t *frame;              /* the request frame, owned by the request (kept for reuse) */
    size_t frame_len, frame_cap;
    kr_t body;                   /* reader positioned at the body */
    karena_t arena;              /* decoded arrays; reset when the request ends */
    kw_t resp;                   /* response body */
    void *state;                 /* the handler's decoded request / progress (in arena) */
    karena_mark_t state_mark;    /* arena position after the state: a re-run starts here */
    bool done;                   /* response ready (or none to send) */
    bool no_response;
    bool timed_out;              /* set before re-running a parked handler at its deadline */
    struct event *timer;         /* park deadline */
    uint8_t park;                /* conn.c: which parked list holds it, if any */
    int64_t received_us;
    TAILQ_ENTRY(kreq) conn_link; /* in the connection's in-order queue */
    TAILQ_ENTRY(kreq) park_link; /* in the broker's parked list */
} kreq_t;

/* Encodes `resp` with the request's version into req->resp, and counts every
 * non-zero error code it carries (kafscale_request_errors_total{api,error}):
 * the one place response errors are counted, for every API. */
kh_result_t kreq_respond(kreq_t *req, const kschema_t *schema, const void *resp);
/* Counts the error codes of a response that is not sent (Produce acks=0)
 * as kreq_respond() would have. */
void kreq_count_errors(const kreq_t *req, const kschema_t *schema, const void *resp);
/* Keeps the handler's decoded request across re-runs of a parked request:
 * sets req->state and marks the arena there. */
void kreq_keep_state(kreq_t *req, void *state);
/* Parks the request until kreq_wake_parked() re-runs its handler, or until
 * timeout_ms passes (then the handler runs again with req->timed_out set).
 * Parking drops what the attempt wrote into req->resp (and its holds) and
 * gives back arena memory allocated after kreq_keep_state(). */
kh_result_t kreq_park(kreq_t *req, int64_t timeout_ms);
/* Completes a parked request whose handler produced the result `r`. */
void kreq_finish(kreq_t *req, kh_result_t r);
/* Re-runs the handlers of all parked requests (after a partition advanced).
 * Deferred to the event loop: cheap to call often. */
void kreq_wake_parked(void);
/* The client's address ("host:port", conn.c), or NULL when unknown. */
const char *kreq_peer(const kreq_t *req);

/* ---- partition log (in memory; the flusher makes it durable in issue 3) ---- */

/* A refcounted chunk of batch bytes. Fetch responses reference chunks
 * directly (zero copy) and release them when the bytes left the socket. */
typedef struct pchunk {
    uint32_t refs;
    uint32_t cap, len;
    uint32_t kind;        /* plog.c: PCHUNK_SMALL / PCHUNK_HUGE (pooled); anything else is free()d */
    _Alignas(16) uint8_t data[];
} pchunk_t;
void pchunk_keep(pchunk_t *c);
void pchunk_release(void *c); /* kw_release_fn-compatible */

typedef struct pbatch {
    int64_t base_offset, last_offset;
    int64_t max_timestamp;
    pchunk_t *chunk;
    uint32_t pos, len;
} pbatch_t;

typedef struct plog {
    pbatch_t *batches;    /* ring of batches in offset order */
    size_t head, count, cap;
    pchunk_t *cur;        /* chunk being appended to */
    int64_t start_offset; /* log start offset (earliest) */
    int64_t next_offset;  /* log end offset: the next offset to assign */
    int64_t hw;           /* high watermark: end of what consumers may see */
    int64_t bytes;        /* bytes held */
} plog_t;

void plog_init(plog_t *l, int64_t start_offset);
void plog_free(plog_t *l);
/* Appends a validated batch (whose base offset was already rewritten). Copies
 * the bytes. Returns 0, or -1 out of memory. */
int plog_append(plog_t *l, const uint8_t *batch, uint32_t len, int64_t base, int64_t last, int64_t max_ts);
/* Gathers whole batches from `offset` (the batch holding it first) up to the
 * high watermark, stopping before max_bytes unless `first` is set and nothing
 * was gathered yet (KIP-74: the first batch of a response always goes whole).
 * The pieces (iov from the arena, zero copy) go into *out, ready to encode as
 * a KT_RECORDS field; the log chunks they point into are kept alive by holds
 * added to `hold` (the response writer: req->resp), released when the response
 * has left the socket. Returns the bytes gathered (out->len). */
int32_t plog_read(plog_t *l, int64_t offset, int64_t max_bytes, bool first, kw_t *hold, karena_t *a,
                  krecords_t *out);
/* Drops whole batches below `below` from the front, at most max_bytes worth
 * (rounded up to a batch); returns bytes dropped. */
int64_t plog_trim_front(plog_t *l, int64_t below, int64_t max_bytes);
void plog_trim_below(plog_t *l, int64_t offset);
int64_t plog_bytes_between(plog_t *l, int64_t from, int64_t to);
/* First offset whose batch max timestamp >= ts, or -1 (with *ts_out the batch's). */
int64_t plog_offset_for_time(plog_t *l, int64_t ts, int64_t *ts_out);
/* Offset and timestamp of the batch with the largest max timestamp, or -1. */
int64_t plog_max_timestamp(plog_t *l, int64_t *ts_out);

/* ---- topics ---- */
#define TOPIC_MAGIC 0x746f7063u /* "topc" */

/* A committed segment in the object store (from metadata or the flusher's
 * DURABLE reports), kept per partition in base-offset order. */
typedef struct pseg {
    int64_t base_offset, last_offset;
    int64_t size, max_timestamp;
} pseg_t;

typedef struct partition {
    struct topic *topic;
    int32_t index;
    int32_t leader_epoch;
    plog_t log;              /* in memory: the unflushed tail and recent durable data */
    pseg_t *segs;            /* committed segments; offsets below the in-memory log come from here */
    size_t nsegs, segs_cap;
    int64_t unflushed_bytes; /* bytes appended but not yet durable */
    uint32_t generation;     /* bumped when unflushed batches are dropped (see flush_link.c) */
    int64_t prev_gen_hw;     /* the high watermark when the generation was last bumped: what was durable */
    /* Leadership (cluster.c). A single node leads every partition; in a
     * cluster a partition goes NONE -> LOADING (claimed in etcd, the flusher
     * loads its committed end) -> LEADER -> RELEASING (handing it to another
     * broker: flushing what it holds) -> NONE. */
    uint8_t lead;            /* PL_* */
    int32_t leader_id;       /* the broker that leads it (Metadata), -1 none known */
    int64_t lead_rev;        /* etcd revision of our claim: the flusher's fence */
    int64_t release_deadline_ms;
} partition_t;

enum { PL_NONE = 0, PL_LOADING, PL_LEADER, PL_RELEASING };

/* First offset held in memory (data below it is read from the store). */
static inline int64_t plog_mem_start(const plog_t *l) {
    return l->count ? l->batches[l->head].base_offset : l->next_offset;
}

/* store_read.c - reading committed data that is no longer in memory.
 * store_read() serves a fetch at `offset` (below plog_mem_start) from the
 * store: returns 1 with *out filled like plog_read() (zero copy; holds added
 * to `hold`) when the bytes are in the read cache; 0 when a load was started
 * or is in flight (the caller parks; kreq_wake_parked() runs when it lands);
 * -1 when no committed segment holds the offset or the store failed (*err
 * set to a Kafka error code). */
int store_read_init(void);
void store_read_shutdown(void);
int store_read(partition_t *p, int64_t offset, int64_t max_bytes, bool first, kw_t *hold, karena_t *a,
               krecords_t *out, int16_t *err);

typedef struct topic_config {
    int64_t retention_ms;
    int64_t retention_bytes;
    int64_t segment_bytes;
    int32_t max_message_bytes;
    char cleanup_policy[32];
    char compression_type[16];
    char timestamp_type[16]; /* CreateTime or LogAppendTime */
} topic_config_t;

typedef struct topic {
    uint32_t magic;
    char name[250];
    kuuid_t id;
    int32_t npartitions;
    partition_t *partitions;
    topic_config_t config;
    struct topic *hash_next;
    TAILQ_ENTRY(topic) link;
} topic_t;

TAILQ_HEAD(topic_list, topic);

void topics_init(void);
void topics_shutdown(void);
topic_t *topic_find(kstr_t name);
partition_t *partition_find(kstr_t topic, int32_t index);
/* Creates a topic; returns a Kafka error code (KERR_NONE on success) and an
 * optional message (static storage). validate_only checks without creating.
 * configs: pairs of name/value (count n), may be NULL. */
int16_t topic_create(kstr_t name, int32_t npartitions, const kstr_t *config_names, const kstr_t *config_values,
                     int nconfigs, bool validate_only, topic_t **out, const char **errmsg);
int16_t topic_delete(kstr_t name);
/* Replaces t's configs with cfg (already validated), writes the topic to the
 * metadata store and sends it to the flusher (retention, segment size).
 * Returns KERR_NONE, or KAFKA_STORAGE_ERROR with the old configs kept. */
int16_t topic_set_config(topic_t *t, const topic_config_t *cfg, const char **errmsg);
/* Grows t to `count` partitions, persists it and tells the flusher;
 * INVALID_PARTITIONS unless count is above the current count (and at most
 * 100000). validate_only only checks. errmsg: static storage. */
int16_t topic_add_partitions(topic_t *t, int32_t count, bool validate_only, const char **errmsg);
/* Iteration in creation order. */
topic_t *topics_first(void);
topic_t *topics_next(topic_t *t);
int topics_count(void);
/* Validates and applies one topic config to cfg; returns KERR_NONE or INVALID_CONFIG. */
int16_t topic_config_set(topic_config_t *cfg, kstr_t name, kstr_t value, const char **errmsg);
void topic_config_defaults(topic_config_t *cfg);

/* partition.c: validates and appends a Produce's records (rewriting base
 * offsets in place); returns a Kafka error code and message. */
int16_t partition_append(partition_t *p, uint8_t *records, int32_t len, int64_t *base_out, int64_t *log_append_ms,
                         const char **errmsg);
/* Records that everything below end_offset is committed (durable): moves the
 * high watermark and wakes parked fetches and producers. */
void partition_committed(partition_t *p, int64_t end_offset);

void partition_add_segment(partition_t *p, const pseg_t *s);
void partition_set_log_start(partition_t *p, int64_t start);

/* flush_link.c: the flusher (see that file). */
int flink_init(void);
void flink_shutdown(int64_t deadline_ms);
void flink_send_topic(topic_t *t);
void flink_send_delete(const char *name);
/* DeleteRecords: the flusher records `start` as p's log start offset and
 * deletes the segments wholly below it (then reports LOGSTART). */
void flink_send_delete_records(partition_t *p, int64_t start);
void flink_append(partition_t *p, int64_t from);
void flink_flush_hint(void);
/* Cluster (cluster.c): p is ours now / no longer ours; the lease deadline. */
void flink_send_lead(partition_t *p);
void flink_send_unlead(partition_t *p);
void flink_send_lease(int64_t deadline_mono_ms);
/* fn runs once, when the flusher first reports READY (the node can take writes). */
void flink_on_first_ready(void (*fn)(void));
void topics_reload_segments(void);
bool flink_ready(void);
pid_t flink_flusher_pid(void); /* the supervised flusher, 0 when none runs (or KAFSCALE_SUPERVISE=0) */
bool flink_store_healthy(void);
const char *flink_store_message(void);

/* cache_link.c: kafscale-cached and its shm ring (see that file). init
 * before store_read_init() (it installs store_read's front), shutdown after
 * store_read_shutdown(); cache_link_ready() and cache_link_pid() are
 * declared in http.h. */
int cache_link_init(void);
void cache_link_shutdown(void);

/* metadata (topics journal), topics.c */
int topics_load(void);
/* Produce back-pressure, conn.c: connections paused while unflushed bytes are
 * over KAFSCALE_MAX_UNFLUSHED_BYTES resume when this is called below it. */
void conn_unflushed_resume(void);

/* Auto-creation used by Metadata/Produce (honours KAFSCALE_AUTO_CREATE_*). */
topic_t *topic_auto_create(kstr_t name, int16_t *err);

/* cluster.c: many brokers over one etcd (see cluster.h). */
bool cluster_enabled(void);
/* Produce may append to p: we lead it and our etcd lease is certainly alive. */
bool cluster_can_write(const partition_t *p);
/* Fetch / ListOffsets may be served: we lead it (or are handing it over). */
static inline bool partition_serves_reads(const partition_t *p) {
    return p->lead == PL_LEADER || p->lead == PL_RELEASING;
}

/* ---- the broker ---- */
typedef struct broker {
    broker_config_t cfg;
    int64_t unflushed_bytes;     /* all partitions: appended, not yet durable */
    int64_t tail_bytes;          /* all partitions: durable bytes still held in memory */
    int64_t mem_bytes;           /* all partitions: batch bytes held in memory */
    struct event_base *base;
    struct kconn_list *conns;
    int nconns;
    bool stopping;
    bool draining;               /* DrainPartitions (broker/http.c): produce answers NOT_LEADER_OR_FOLLOWER */
    int64_t start_ms;
} broker_t;

extern broker_t g_broker;

int64_t now_ms(void);
int64_t now_us(void);
/* The monotonic clock (timeouts, the etcd lease; shared with the flusher). */
int64_t mono_ms(void);
int64_t mono_us(void);

/* conn.c */
int conn_listen(void);
void conn_shutdown(void);

/* API handlers (one file each). */
kh_fn api_produce, api_fetch, api_list_offsets, api_metadata, api_api_versions, api_create_topics,
    api_delete_topics;
/* The consumer group APIs (group.h: the coordinator behind them). */
kh_fn api_find_coordinator, api_join_group, api_sync_group, api_heartbeat, api_leave_group, api_offset_commit,
    api_offset_fetch, api_describe_groups, api_list_groups, api_delete_groups, api_offset_delete;
kh_fn api_describe_configs, api_alter_configs, api_incremental_alter_configs, api_create_partitions,
    api_delete_records, api_offset_for_leader_epoch, api_describe_cluster;
/* api_describe_configs.c: broker resources of the config APIs (read-only).
 * Checks the resource name (this broker's id, or "" for cluster defaults) and
 * refuses a change of config `name`; returns the Kafka error and *msg (in
 * the request arena). */
int16_t broker_config_refuse_change(kreq_t *req, kstr_t resource_name, kstr_t name, kstr_t *msg);
/* Checks a BROKER resource name: KERR_NONE when it is this broker's id or
 * empty (cluster-wide defaults), else INVALID_REQUEST with *msg. */
int16_t broker_config_check_resource(kreq_t *req, kstr_t resource_name, kstr_t *msg);

#endif
