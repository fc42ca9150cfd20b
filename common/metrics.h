/* metrics.h - every metric of every Kafscale process, declared once.
 *
 * KS_METRICS below is the only list: X(id, name, type, buckets, labels, help).
 * Everything else comes from it: the ids (M_*), the Prometheus text
 * exposition (metrics_render), and the frames in which the flusher (STATS,
 * fproto.h) and kafscale-cached (METRICS, cproto.h) ship their own series to
 * the broker (metrics_encode / metrics_merge: one generic encoding, so a new
 * flusher or cached metric is one row here and one metrics_add()).
 * Adding a metric never means touching a second list (memcached's X-macro
 * stats, Varnish's .vsc files).
 *
 * A metric is a family of series, one per combination of label values
 * ("labels" is the comma-separated list of label names, "" for none). Series
 * are created on first use; a family without labels always renders one
 * sample (0 until set). Counters only go up within one process; values are
 * doubles (exact integers up to 2^53). Histograms use one of the fixed bucket
 * sets (MB_*), rendered cumulatively with _bucket{le}, _sum and _count.
 *
 * Threads: the registry is not locked. Each process updates and renders it
 * from its event-loop thread only (worker threads keep their own counters,
 * which a collector copies in at render time: see metrics_add_collector).
 */
#ifndef KAFSCALE_METRICS_H
#define KAFSCALE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kbuf.h"

typedef enum metric_type { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM } metric_type_t;

/* Histogram bucket sets (upper bounds; +Inf is implicit). */
typedef enum metric_buckets { MB_NONE = 0, MB_SECONDS, MB_BYTES, MB__MAX } metric_buckets_t;

/* X(id, name, type, buckets, labels, help) */
#define KS_METRICS(X) \
    /* ---- Kafka requests (broker/conn.c, when a request is finished) ---- */ \
    X(M_REQUESTS, "kafscale_requests_total", MT_COUNTER, MB_NONE, "api", \
      "Kafka requests finished (answered, answered with nothing for acks=0, or closed as malformed), per API") \
    X(M_REQUEST_ERRORS, "kafscale_request_errors_total", MT_COUNTER, MB_NONE, "api,error", \
      "Error codes sent in responses (per partition or per request), per API and Kafka error name; " \
      "_MALFORMED_REQUEST counts requests that closed their connection") \
    X(M_REQUEST_SECONDS, "kafscale_request_duration_seconds", MT_HISTOGRAM, MB_SECONDS, "api", \
      "Time from reading a request to finishing its response (parked requests included), per API") \
    /* ---- data volume per topic ---- */ \
    X(M_PRODUCE_BYTES, "kafscale_produce_bytes_total", MT_COUNTER, MB_NONE, "topic", \
      "Record batch bytes accepted by Produce, per topic") \
    X(M_PRODUCE_RECORDS, "kafscale_produce_records_total", MT_COUNTER, MB_NONE, "topic", \
      "Records accepted by Produce, per topic") \
    X(M_FETCH_BYTES, "kafscale_fetch_bytes_total", MT_COUNTER, MB_NONE, "topic", \
      "Record batch bytes sent in Fetch responses, per topic") \
    X(M_FETCH_RECORDS, "kafscale_fetch_records_total", MT_COUNTER, MB_NONE, "topic", \
      "Records sent in Fetch responses, per topic") \
    /* ---- broker state (set at render time) ---- */ \
    X(M_CONNECTIONS, "kafscale_connections", MT_GAUGE, MB_NONE, "", "Open Kafka client connections") \
    X(M_UNFLUSHED_BYTES, "kafscale_unflushed_bytes", MT_GAUGE, MB_NONE, "", \
      "Bytes accepted but not yet durable in the object store") \
    X(M_MEMORY_LOG_BYTES, "kafscale_log_memory_bytes", MT_GAUGE, MB_NONE, "", \
      "Record batch bytes held in the broker's memory (unflushed tail and recent durable data)") \
    X(M_PARTITIONS, "kafscale_partitions", MT_GAUGE, MB_NONE, "", "Partitions this broker leads") \
    X(M_TOPICS, "kafscale_topics", MT_GAUGE, MB_NONE, "", "Topics known to this broker") \
    X(M_READY, "kafscale_ready", MT_GAUGE, MB_NONE, "", "1 when /readyz answers 200") \
    X(M_DRAINING, "kafscale_draining", MT_GAUGE, MB_NONE, "", \
      "1 after DrainPartitions: produce is refused with NOT_LEADER_OR_FOLLOWER") \
    X(M_CLUSTER_BROKERS, "kafscale_cluster_brokers", MT_GAUGE, MB_NONE, "", \
      "Live brokers registered in etcd (1 for a single node)") \
    X(M_CLUSTER_CLAIMS, "kafscale_cluster_claims_total", MT_COUNTER, MB_NONE, "", \
      "Partition leaderships this broker claimed in etcd") \
    X(M_CLUSTER_FENCED, "kafscale_cluster_fenced_total", MT_COUNTER, MB_NONE, "", \
      "Partitions this broker gave up because another broker's claim fenced its commits") \
    X(M_COMPONENT_UP, "kafscale_component_up", MT_GAUGE, MB_NONE, "component", \
      "1 when the broker's link to the component (flusher, cached, object_store, metadata_store) is up") \
    /* ---- flusher (sent to the broker in STATS frames, see fproto.h) ---- */ \
    X(M_FLUSH_CYCLES, "kafscale_flush_cycles_total", MT_COUNTER, MB_NONE, "", "Flush cycles run") \
    X(M_FLUSH_SEGMENTS, "kafscale_flush_segments_total", MT_COUNTER, MB_NONE, "", \
      "Segments uploaded and committed") \
    X(M_FLUSH_BYTES, "kafscale_flush_bytes_total", MT_COUNTER, MB_NONE, "", \
      "Bytes of committed segments (.kfs, headers included)") \
    X(M_FLUSH_UPLOAD_ERRORS, "kafscale_flush_upload_errors_total", MT_COUNTER, MB_NONE, "", \
      "Segment or index uploads that failed after retries") \
    X(M_FLUSH_SECONDS, "kafscale_flush_duration_seconds", MT_HISTOGRAM, MB_SECONDS, "", \
      "Duration of a flush cycle that cut segments: cut, upload, commit, report") \
    X(M_FLUSH_SEGMENT_BYTES, "kafscale_flush_segment_bytes", MT_HISTOGRAM, MB_BYTES, "", \
      "Size of committed segments") \
    X(M_FLUSH_PENDING_BYTES, "kafscale_flusher_pending_bytes", MT_GAUGE, MB_NONE, "", \
      "Bytes the flusher holds that are not committed yet") \
    /* ---- object store, per process and operation (broker: store_read.c's GETs; flusher and cached: \
     * sent to the broker in their STATS / METRICS frames, fproto.h and cproto.h) ---- */ \
    X(M_OBJ_OPS, "kafscale_objstore_operations_total", MT_COUNTER, MB_NONE, "process,op", \
      "Object store operations finished") \
    X(M_OBJ_ERRORS, "kafscale_objstore_errors_total", MT_COUNTER, MB_NONE, "process,op", \
      "Object store operations that failed after retries") \
    X(M_OBJ_BYTES, "kafscale_objstore_bytes_total", MT_COUNTER, MB_NONE, "process,op", \
      "Bytes moved by successful object store operations") \
    X(M_OBJ_RETRIES, "kafscale_objstore_retries_total", MT_COUNTER, MB_NONE, "process", \
      "Object store requests retried") \
    X(M_OBJ_SECONDS, "kafscale_objstore_duration_seconds", MT_HISTOGRAM, MB_SECONDS, "process,op", \
      "Time object store operations took, retries included (a flush cycle's parallel uploads each count " \
      "the whole batch's time)") \
    /* ---- read caches (cache=broker: the broker's store read cache, broker/store_read.c; cache=shm: the \
     * ring of kafscale-cached, read from the ring's header when /metrics is scraped, broker/cache_link.c) */ \
    X(M_CACHE_HITS, "kafscale_cache_hits_total", MT_COUNTER, MB_NONE, "cache", "Reads answered from the cache") \
    X(M_CACHE_MISSES, "kafscale_cache_misses_total", MT_COUNTER, MB_NONE, "cache", \
      "Reads that had to wait for a load") \
    X(M_CACHE_LOADS, "kafscale_cache_loads_total", MT_COUNTER, MB_NONE, "cache", \
      "Ranges loaded from the object store into the cache") \
    X(M_CACHE_LOAD_BYTES, "kafscale_cache_load_bytes_total", MT_COUNTER, MB_NONE, "cache", "Bytes loaded") \
    X(M_CACHE_LOAD_ERRORS, "kafscale_cache_load_errors_total", MT_COUNTER, MB_NONE, "cache", "Loads that failed") \
    X(M_CACHE_EVICTIONS, "kafscale_cache_evictions_total", MT_COUNTER, MB_NONE, "cache", "Entries evicted") \
    X(M_CACHE_BYTES, "kafscale_cache_bytes", MT_GAUGE, MB_NONE, "cache", "Bytes the cache holds (occupancy)") \
    X(M_CACHE_CAPACITY, "kafscale_cache_capacity_bytes", MT_GAUGE, MB_NONE, "cache", \
      "Bytes the cache may hold (the broker's budget; the ring's data area)") \
    X(M_CACHE_ENTRIES, "kafscale_cache_entries", MT_GAUGE, MB_NONE, "cache", \
      "Segments the cache holds (shm)") \
    X(M_CACHE_INFLIGHT, "kafscale_cache_loads_in_flight", MT_GAUGE, MB_NONE, "cache", "Loads queued or running") \
    X(M_CACHE_FALLBACKS, "kafscale_cache_fallbacks_total", MT_COUNTER, MB_NONE, "cache", \
      "Reads the cache did not serve that went to the object store instead (shm: cached down, load failed, " \
      "lapped twice)") \
    /* ---- metadata store (etcd) ---- */ \
    X(M_ETCD_OPS, "kafscale_etcd_operations_total", MT_COUNTER, MB_NONE, "op", "etcd requests made") \
    X(M_ETCD_ERRORS, "kafscale_etcd_errors_total", MT_COUNTER, MB_NONE, "op", "etcd requests that failed") \
    /* ---- consumer groups ---- */ \
    X(M_GROUP_LAG, "kafscale_consumer_group_lag", MT_GAUGE, MB_NONE, "group,topic,partition", \
      "High watermark minus the group's committed offset") \
    /* ---- processes of the node (broker, flusher, cached) ---- */ \
    X(M_PROC_CPU, "kafscale_process_cpu_seconds_total", MT_COUNTER, MB_NONE, "process", \
      "User and system CPU time of the process") \
    X(M_PROC_RSS, "kafscale_process_resident_memory_bytes", MT_GAUGE, MB_NONE, "process", "Resident memory") \
    X(M_PROC_VSZ, "kafscale_process_virtual_memory_bytes", MT_GAUGE, MB_NONE, "process", "Virtual memory size") \
    X(M_PROC_START, "kafscale_process_start_time_seconds", MT_GAUGE, MB_NONE, "process", \
      "Start time of the process (Unix seconds)") \
    X(M_PROC_THREADS, "kafscale_process_threads", MT_GAUGE, MB_NONE, "process", "Threads of the process")

typedef enum metric_id {
#define X(id, name, type, buckets, labels, help) id,
    KS_METRICS(X)
#undef X
    M__MAX
} metric_id_t;

#define METRICS_MAX_LABELS 4

typedef struct metric_series metric_series_t;

/* The series of metric m with these label values (as many as the metric
 * declares: asserted), created on first use. NULL only out of memory. The
 * pointer stays valid until metrics_clear(m) or metrics_reset_all(). */
metric_series_t *metrics_series(metric_id_t m, const char *const *labels, int nlabels);

/* Series-level updates (cheap; keep the handle for hot paths). */
void metrics_series_add(metric_series_t *s, double v);     /* counter / gauge */
void metrics_series_set(metric_series_t *s, double v);     /* gauge; or a counter mirrored from elsewhere */
void metrics_series_observe(metric_series_t *s, double v); /* histogram */

/* The usual calls: label values as arguments, checked against the
 * declaration, e.g. metrics_add(M_PRODUCE_BYTES, n, topic). */
#define METRICS_LABELS_(...) ((const char *const[]){NULL, __VA_ARGS__} + 1)
#define METRICS_NLABELS_(...) ((int)(sizeof((const char *const[]){NULL, __VA_ARGS__}) / sizeof(const char *)) - 1)
#define metrics_add(m, v, ...) metrics_series_add(metrics_series((m), METRICS_LABELS_(__VA_ARGS__), METRICS_NLABELS_(__VA_ARGS__)), (v))
#define metrics_set(m, v, ...) metrics_series_set(metrics_series((m), METRICS_LABELS_(__VA_ARGS__), METRICS_NLABELS_(__VA_ARGS__)), (v))
#define metrics_observe(m, v, ...) \
    metrics_series_observe(metrics_series((m), METRICS_LABELS_(__VA_ARGS__), METRICS_NLABELS_(__VA_ARGS__)), (v))

/* Current value of a counter/gauge series (histograms: the count); 0 when the
 * series does not exist. Does not create it. */
double metrics_value(metric_id_t m, const char *const *labels, int nlabels);
#define metrics_get(m, ...) metrics_value((m), METRICS_LABELS_(__VA_ARGS__), METRICS_NLABELS_(__VA_ARGS__))

/* Drops every series of m (e.g. a collector that rebuilds a family). */
void metrics_clear(metric_id_t m);
/* Drops the series of m whose label number `label` equals `value` (e.g. a
 * deleted topic's or group's series). */
void metrics_clear_matching(metric_id_t m, int label, const char *value);
/* Drops every series of every metric (tests). */
void metrics_reset_all(void);

/* ---- helpers for the common cases ---- */

/* An error code in a response (per partition or per request) of `api`
 * (the dispatch table's name). KERR_NONE is not counted. Call it where the
 * response is built. */
void metrics_count_error(const char *api, int16_t code);
/* A finished request of `api` that took `seconds`. */
void metrics_count_request(const char *api, double seconds);
/* Consumer group lag of group/topic/partition (a negative lag removes the
 * series). For the group coordinator, or a collector it registers. */
void metrics_set_group_lag(const char *group, const char *topic, int32_t partition, int64_t lag);
/* Reads /proc/<pid>/stat and /proc/<pid>/status into the M_PROC_* series of
 * `process` (broker, flusher, cached). Returns 0, or -1 when the process is
 * not there (its series are then dropped). */
int metrics_sample_process(const char *process, pid_t pid);

/* Functions run at the start of metrics_render(), in registration order, to
 * copy state (gauges, other threads' counters) into the registry. At most 16. */
typedef void metrics_collector_fn(void *arg);
void metrics_add_collector(metrics_collector_fn *fn, void *arg);

/* ---- output ---- */

/* Prometheus text format 0.0.4 (Content-Type: text/plain; version=0.0.4):
 * runs the collectors, then every metric in table order, series sorted by
 * label values. Appends to w. */
void metrics_render(kw_t *w);

/* The STATS frame payload: every series of this process's registry (name,
 * label values, values). metrics_merge() applies one to this registry: each
 * series is set to the received values (a counter of a restarted sender goes
 * back to 0, as it would when scraping that process directly). Series whose
 * name, type, label count or bucket count this process does not know are
 * skipped (version skew between processes). Returns 0, or -1 when the
 * payload is malformed (what was merged before the error stays). */
void metrics_encode(kw_t *w);
int metrics_merge(kr_t *r);

/* Names and bucket bounds, for tests and tools. */
const char *metrics_name(metric_id_t m);
metric_type_t metrics_type(metric_id_t m);
int metrics_nlabels(metric_id_t m);
const double *metrics_bucket_bounds(metric_buckets_t b, int *n);

#endif
