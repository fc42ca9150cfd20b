/* flusher.h - kafscale-flusher's state: topics and partitions with their
 * pending batches, the batches a cycle is uploading and committed segments,
 * the cycle's reusable buffers and its upload worker. */
#ifndef KAFSCALE_FLUSHER_H
#define KAFSCALE_FLUSHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "meta.h"
#include "objstore.h"

#define FTOPIC_BUCKETS 1024

struct ftopic;

typedef struct fpart {
    struct ftopic *topic;
    int32_t partition;
    int32_t leader_epoch;
    int64_t committed_end;      /* everything below is in committed segments */
    int64_t log_start;
    uint8_t *buf;               /* pending whole batches, in offset order */
    size_t len, cap;
    /* The cycle in flight uploads from fbuf (the pending buffer moved out
     * at cycle start; later APPENDs go to buf). Between cycles fbuf is the
     * spare that becomes buf at the next move: no allocation per cycle. */
    uint8_t *fbuf;
    size_t flen, fcap;
    bool inflight;              /* fbuf holds bytes of the cycle in flight */
    uint64_t gen;               /* bumped when pending/in-flight bytes stop being ours */
    bool dirty;                 /* on F.dirty */
    struct fpart *dirty_next;
    meta_segment_t *segs;       /* committed segments, by base offset */
    size_t nsegs, segs_cap;
    int64_t fence_rev;          /* cluster: our broker's claim (LEAD); 0 = not ours */
} fpart_t;

typedef struct ftopic {
    char name[250];
    int32_t np;
    fpart_t *parts;
    int64_t retention_ms, retention_bytes, segment_bytes;
    bool known;                 /* the broker told us its configs */
    bool from_meta;
    uint8_t id[16];             /* topic id (from metadata or the broker) */
    bool stale_segments;        /* metadata holds segments of an older topic of this name */
    struct ftopic *next;
} ftopic_t;

struct seg_job;
struct cycle_part;
struct event_base;
struct event;
struct bufferevent;

typedef struct flusher {
    struct event_base *base;
    struct bufferevent *broker;
    struct event *cycle_ev;
    bool cycle_scheduled, stopping, store_healthy;
    ftopic_t *topics[FTOPIC_BUCKETS];
    fpart_t *dirty;             /* partitions with pending bytes */
    size_t pending_bytes;
    objstore_t *store;
    meta_t *meta;
    char ns[256];
    int64_t segment_bytes, flush_interval_ms, retry_backoff_ms;
    /* reused across cycles */
    struct seg_job *jobs;
    size_t jobs_cap;
    objstore_op_t *ops;
    size_t ops_cap;
    meta_segment_t *commit;
    size_t commit_cap;
    struct cycle_part *cparts;  /* partitions whose bytes the cycle moved */
    size_t cparts_cap;
    /* the cycle in flight (at most one): uploads on the worker thread */
    bool in_flight, cycle_wanted;
    size_t njobs, ncparts;
    int64_t cycle_t0, cycle_t0_us;
    size_t inflight_bytes;
    struct { uint64_t cycles, segments, bytes, upload_errors; } stats;
    bool cluster;               /* metadata in etcd: commits are fenced per partition */
    pid_t parent;               /* who started us (the supervising broker, or init/systemd) */
    int64_t lease_deadline;     /* cluster: CLOCK_MONOTONIC ms until which the broker's lease lives (LEASE) */
    uint8_t *fenced;            /* per commit entry of a cycle (commit_cap of them) */
} flusher_t;

extern flusher_t F;

static inline int64_t now_ms_f(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void flusher_cycle(void);
int flusher_main(void);

#endif
