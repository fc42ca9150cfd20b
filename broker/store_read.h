/* store_read.h - the inside of broker/store_read.c, for the unit tests and for
 * the broker's metrics: range math, cutting loaded bytes after the last whole
 * batch, the read cache (segments, their indexes and loaded ranges, LRU by
 * bytes), the one function through which the object store is read, and the
 * counters. API handlers use only the store_read*() calls in broker.h and the
 * two helpers at the end of this file.
 *
 * Every sr_cache_* function runs on the event loop thread; only the getter
 * (sr_get_fn) runs on the worker threads.
 */
#ifndef KAFSCALE_STORE_READ_H
#define KAFSCALE_STORE_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "broker.h"
#include "segment.h"

/* Loaded ranges are at least KAFSCALE_READ_CHUNK_BYTES (default 1 MiB), at
 * least the partition's max bytes, at most SR_CHUNK_MAX (unless one batch is
 * bigger: it is always loaded whole). */
#define SR_CHUNK_DEFAULT (1u << 20)
#define SR_CHUNK_MAX     (8u << 20)

/* How many bytes to GET from file position pos of a .kfs whose footer starts
 * at footer_start: max(max_bytes, chunk_min) capped at chunk_max and at the
 * footer. 0 when pos is not before the footer. */
uint32_t sr_chunk_len(int64_t max_bytes, uint64_t pos, uint64_t footer_start, uint32_t chunk_min,
                      uint32_t chunk_max);

/* One whole batch of a loaded range. pos/len: where it is in the range's
 * buffer (file position = range pos + pos). */
typedef struct sr_batch {
    int64_t base_offset, last_offset, max_timestamp;
    uint32_t pos, len;
} sr_batch_t;

enum {
    SR_CUT_OK = 0,   /* at least one whole batch */
    SR_CUT_SHORT,    /* the first batch is not whole: *need says how long it is (0: unknown) */
    SR_CUT_CORRUPT,  /* bad framing, a CRC mismatch, offsets not ascending or outside the segment */
};
/* Reads the batches of p[0..n) (bytes of a .kfs starting at a batch
 * boundary) and keeps the whole ones: *whole gets their byte count, *tab a
 * malloc'd table of them (*nb entries; caller frees). Offsets must ascend and
 * lie in [min_base, max_last]. With verify_crc every kept batch's CRC-32C is
 * checked. On SR_CUT_SHORT/CORRUPT *tab is NULL; *why says what was wrong. */
int sr_cut(const uint8_t *p, size_t n, int64_t min_base, int64_t max_last, bool verify_crc, sr_batch_t **tab,
           uint32_t *nb, size_t *whole, size_t *need, const char **why);

/* ---- the read cache ---- */

typedef struct sr_segkey {
    kuuid_t topic_id;  /* not the name: a deleted and re-created topic is another topic */
    int32_t partition;
    int64_t base_offset;
} sr_segkey_t;

enum { SR_LRU_RANGE = 1, SR_LRU_INDEX = 2 };

/* What the LRU list holds: a loaded range or a loaded index. */
typedef struct sr_lru {
    TAILQ_ENTRY(sr_lru) link;
    int64_t charge;     /* bytes counted against the budget */
    uint32_t gen;       /* cache generation when it was inserted */
    uint8_t kind;
} sr_lru_t;

enum { SR_LOADING = 1, SR_READY = 2 };

struct sr_seg;

/* Bytes of one segment from file position pos to end (whole batches). */
typedef struct sr_range {
    sr_lru_t lru;                 /* in the LRU while READY */
    struct sr_seg *seg;
    int state;
    uint32_t pos, req_len;        /* file position; bytes asked for (LOADING) */
    uint32_t end;                 /* READY: file position after the last batch */
    int64_t first_offset, last_offset;
    pchunk_t *buf;                /* READY: the batches; the cache holds one reference */
    sr_batch_t *batches;          /* READY: nb entries */
    uint32_t nb;
    TAILQ_ENTRY(sr_range) seg_link; /* in the segment's list, by position */
} sr_range_t;

TAILQ_HEAD(sr_range_list, sr_range);

typedef struct sr_seg {
    sr_segkey_t key;
    struct sr_seg *hnext;
    /* index: idx_state 0 (none), SR_LOADING or SR_READY */
    int idx_state;
    sr_lru_t idx_lru;             /* in the LRU while READY */
    uint8_t *idx_buf;
    size_t idx_len;
    seg_index_t idx;              /* views into idx_buf */
    /* ranges, by position, any state */
    struct sr_range_list ranges;
    int nloading;                 /* ranges LOADING */
    /* last store error: every read of this segment gets err until err_until_ms */
    int16_t err;
    int64_t err_until_ms;
    bool on_err_list;
    TAILQ_ENTRY(sr_seg) err_link;
} sr_seg_t;

TAILQ_HEAD(sr_lru_list, sr_lru);
TAILQ_HEAD(sr_seg_list, sr_seg);

#define SR_CACHE_MAGIC 0x73726361u /* "srca" */

typedef struct sr_cache {
    uint32_t magic;
    sr_seg_t **buckets;
    size_t nbuckets, nsegs;
    struct sr_lru_list lru;       /* most recently used first */
    struct sr_seg_list errs;      /* segments with an error, oldest first */
    int64_t bytes, budget;
    uint32_t gen;
    uint64_t evictions;
} sr_cache_t;

void sr_cache_init(sr_cache_t *c, int64_t budget);
/* Frees everything (ranges still LOADING too: only after the workers
 * stopped). Buffers that responses still hold stay alive until released. */
void sr_cache_free(sr_cache_t *c);
/* The segment's entry, created when `create` (NULL out of memory / absent). */
sr_seg_t *sr_cache_seg(sr_cache_t *c, const sr_segkey_t *k, bool create);
/* Frees the segment's entry if it holds nothing (no index, no ranges, no
 * live error). */
void sr_cache_seg_maybe_free(sr_cache_t *c, sr_seg_t *s);
/* A new LOADING range at pos (kept in position order); NULL out of memory. */
sr_range_t *sr_cache_range_new(sr_cache_t *c, sr_seg_t *s, uint32_t pos, uint32_t req_len);
/* The range at exactly pos (any state), or NULL. */
sr_range_t *sr_cache_range_at(sr_seg_t *s, uint32_t pos);
/* The READY range holding offset (first_offset <= offset <= last_offset), or NULL. */
sr_range_t *sr_cache_range_covering(sr_seg_t *s, int64_t offset);
/* A LOADING range whose requested window [pos, pos+req_len) holds pos. */
sr_range_t *sr_cache_loading_over(sr_seg_t *s, uint32_t pos);
/* Starts a batch of insertions (one completion pass): what is inserted from
 * now on is never evicted by insertions of the same pass, so the requests
 * waiting for it see it when they re-run. */
void sr_cache_begin_pass(sr_cache_t *c);
/* A LOADING range became READY with buf (the reference passes to the cache)
 * and its batch table (ownership passes too); evicts least recently used
 * entries of earlier passes while over the budget. */
void sr_cache_range_ready(sr_cache_t *c, sr_range_t *r, pchunk_t *buf, sr_batch_t *tab, uint32_t nb);
/* Drops a range in any state (a LOADING one only from the completion). */
void sr_cache_range_drop(sr_cache_t *c, sr_range_t *r);
/* The segment's index was loaded (buf malloc'd, ownership passes). */
void sr_cache_index_ready(sr_cache_t *c, sr_seg_t *s, uint8_t *buf, size_t len, const seg_index_t *idx);
/* Marks an entry most recently used. */
void sr_cache_touch(sr_cache_t *c, sr_lru_t *e);
/* Records a store error on the segment for ttl_ms. */
void sr_cache_seg_error(sr_cache_t *c, sr_seg_t *s, int16_t err, int64_t now, int64_t ttl_ms);
/* Forgets errors that expired (and the segments left empty). */
void sr_cache_purge_errors(sr_cache_t *c, int64_t now);

/* ---- the store ---- */

/* The one door to the object store (the shm ring is tried first: see
 * sr_front_fn below).
 * Reads [off, off+len) of key (len 0: to the end) into buf (cap bytes) or,
 * when buf is NULL, into a malloc'd *out (caller frees). *got: bytes read.
 * Returns OBJ_OK / OBJ_NOT_FOUND / OBJ_ERROR (message in err). Called from
 * the worker threads: must be thread-safe. */
typedef int sr_get_fn(void *ctx, const char *key, uint64_t off, uint64_t len, uint8_t *buf, size_t cap,
                      uint8_t **out, size_t *got, char *err, size_t errsz);
/* Replaces the getter (tests); before store_read_init(), which then opens no
 * object store. NULL restores the object store. */
void store_read_set_getter(sr_get_fn *fn, void *ctx);

/* ---- a cache in front of the store (kafscale-cached: broker/cache_link.c) ---- */

/* A committed segment as the front sees it. */
typedef struct sr_seg_desc {
    int64_t base_offset, last_offset, size;
} sr_seg_desc_t;

#define SR_NEXT_MAX 8
typedef struct sr_seg_ref {
    const char *key;           /* the object key the store would be asked for */
    bool index;                /* the segment's .index (else its .kfs) */
    const char *topic;
    kuuid_t topic_id;
    int32_t partition;
    sr_seg_desc_t seg;
    const sr_seg_desc_t *next; /* the committed segments that follow (read-ahead candidates), */
    int nnext;                 /* oldest first, up to SR_NEXT_MAX, none the memory log holds */
} sr_seg_ref_t;

/* Tried first by the worker threads for every read of a segment into a
 * caller's buffer: fills buf with [off, off+len) of the object (cut at its
 * end; *got bytes) and returns OBJ_OK, or returns SR_FRONT_PASS and the read
 * goes to the getter (the store) as before: the front never fails a read,
 * it only serves or passes. Thread-safe, may block (it waits for cached). */
#define SR_FRONT_PASS (-1)
typedef int sr_front_fn(void *ctx, const sr_seg_ref_t *seg, uint64_t off, uint64_t len, uint8_t *buf, size_t cap,
                        size_t *got);
/* Before store_read_init(). With a front, KAFSCALE_READ_CACHE_BYTES defaults
 * to 16 MiB (the broker's own cache only stages what the ring holds). */
void store_read_set_front(sr_front_fn *fn, void *ctx);

typedef struct sr_stats {
    uint64_t hits, misses;         /* store_read() answered from the cache / had to wait */
    uint64_t loads, load_bytes;    /* ranges loaded and their bytes */
    uint64_t index_loads;
    uint64_t errors;               /* loads that failed */
    uint64_t evictions;
    uint64_t readaheads;
    int64_t cache_bytes, cache_budget;
    int64_t inflight;              /* loads queued or running */
    int64_t inflight_bytes;        /* bytes they asked for */
    uint64_t store_retries;        /* the object store's retried requests (its GETs themselves are
                                      counted in kafscale_objstore_*{process="broker"} as they finish) */
} sr_stats_t;
void store_read_stats(sr_stats_t *out);

/* ---- for the API handlers ---- */

/* How long a fetch that has nothing but a pending store load waits for it,
 * even with MaxWaitMs 0 (KAFSCALE_FETCH_LOAD_WAIT_MS, default 5000). */
int64_t store_read_load_wait_ms(void);

/* ListOffsets by timestamp in store data: the first offset whose record
 * timestamp is >= ts, looked up in the first committed segment below the
 * in-memory log whose max timestamp reaches ts. Returns 1 with *off (-1 when
 * no segment below the memory reaches ts; then look in memory) and *ts_out;
 * 0 when a load was started or is in flight (park; kreq_wake_parked() runs
 * when it lands); -1 on a store error (*err). With `coarse`, never loads:
 * answers the segment's base offset (and its max timestamp). */
int store_offset_for_time(partition_t *p, int64_t ts, bool coarse, int64_t *off, int64_t *ts_out, int16_t *err);

#endif
