/* store_read.c - reading committed data that is no longer in the broker's
 * memory: from the object store, through a read cache, without ever blocking
 * the event loop.
 *
 * A read at an offset picks the committed segment holding it
 * (partition_t.segs), then the range of that segment's .kfs to load:
 *   - right after a cached range that ends just below the offset (sequential
 *     consumers never need the index), or at the segment's first batch;
 *   - else where the segment's .index says (seg_index_find), loaded once per
 *     segment and cached;
 * and GETs [pos, pos + chunk) of the .kfs, chunk = max(partition max bytes,
 * KAFSCALE_READ_CHUNK_BYTES) capped at 8 MiB and at the footer. A worker
 * keeps the whole batches (sr_cut: framing, offsets and CRC-32C checked); a
 * first batch longer than the chunk is fetched again whole. Loaded ranges are
 * refcounted buffers (pchunk_t, as in the memory log): a response holds a
 * reference on what it sends, so eviction never pulls bytes from under a
 * socket write.
 *
 * Threads: the object store is called only from a small pool of workers
 * (KAFSCALE_STORE_READ_THREADS, default 2). The loop thread queues jobs;
 * workers put finished jobs on a done list and poke an eventfd; the loop's
 * done_cb installs the results in the cache and calls kreq_wake_parked(), so
 * parked fetches run again and find their bytes. The cache itself is touched
 * only by the loop thread: no locks around it, plain reference counts.
 *
 * Coalescing: one load per segment and position; a read whose start falls in
 * the window of a load in flight waits for that load instead of starting
 * another. Read-ahead: after serving, the ranges that follow (through the
 * next segments when segments are small) are loaded until about two fetches'
 * worth lies ahead, so a sequential consumer rarely waits; an answer chains
 * the cached ranges that follow one another, up to the partition's max bytes.
 *
 * Budget: loaded ranges and indexes count against KAFSCALE_READ_CACHE_BYTES
 * (default 64 MiB), least recently used first out. Entries inserted by one
 * completion pass are not evicted by the same pass, so the requests waiting
 * for them always get them once (the budget may be exceeded by one pass's
 * loads). Bytes being loaded are bounded by the same number (and at most 64
 * loads): a read that would pass it waits for a load in flight to land;
 * read-ahead stops at half of it.
 *
 * The shm ring: with kafscale-cached in use, broker/cache_link.c installs a
 * front (store_read_set_front) that the workers try before the store: it
 * copies the range out of the ring (a lock-free lookup), or asks cached to
 * load the segment and waits, and passes the read to the store whenever it
 * cannot serve it (cached down, load failed, lapped twice). The cache here
 * then only stages copies of what the ring holds (default budget 16 MiB).
 *
 * Errors: a failed load marks its segment failed for SR_ERROR_TTL_MS: reads
 * of it answer KAFKA_STORAGE_ERROR (retriable) for that partition only, then
 * the next read tries again. Offsets below the first segment, or past the
 * last one, are OFFSET_OUT_OF_RANGE.
 */
#include "store_read.h"

#include "batch.h"
#include "config.h"
#include "metrics.h"
#include "objstore.h"
#include "records.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#define SR_ERROR_TTL_MS 1000
#define SR_MAX_QUEUED   64 /* loads queued or running; above, reads wait for one to land */
#define SR_JOB_GETS     2  /* store GETs one job makes at most (a range is fetched again once, whole) */

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* ---- pure helpers ---- */

uint32_t sr_chunk_len(int64_t max_bytes, uint64_t pos, uint64_t footer_start, uint32_t chunk_min,
                      uint32_t chunk_max) {
    if (pos >= footer_start) return 0;
    uint64_t len = max_bytes > (int64_t)chunk_min ? (uint64_t)max_bytes : chunk_min;
    if (len > chunk_max) len = chunk_max;
    if (len > footer_start - pos) len = footer_start - pos;
    return (uint32_t)len;
}

int sr_cut(const uint8_t *p, size_t n, int64_t min_base, int64_t max_last, bool verify_crc, sr_batch_t **tab,
           uint32_t *nb, size_t *whole, size_t *need, const char **why) {
    *tab = NULL;
    *nb = 0;
    *whole = 0;
    *need = 0;
    *why = NULL;
    /* Pass 1: count and check. */
    size_t off = 0;
    uint32_t count = 0;
    int64_t prev_last = min_base - 1;
    while (off < n) {
        batch_info_t b;
        b.length = 0;
        int rc = batch_parse(p + off, n - off, &b);
        if (rc == BATCH_ETRUNC) {
            if (count == 0) {
                *need = b.length > 0 ? (size_t)b.length : 0;
                *why = "first batch not whole";
                return SR_CUT_SHORT;
            }
            break;
        }
        if (rc != BATCH_OK) {
            *why = batch_strerror(rc);
            return SR_CUT_CORRUPT;
        }
        int64_t last = b.base_offset + b.last_offset_delta;
        if (b.last_offset_delta < 0 || b.base_offset <= prev_last || last > max_last) {
            *why = "batch offsets out of order or outside the segment";
            return SR_CUT_CORRUPT;
        }
        if (verify_crc && batch_validate(p + off, (size_t)b.length, &b) != BATCH_OK) {
            *why = "record batch CRC-32C mismatch";
            return SR_CUT_CORRUPT;
        }
        prev_last = last;
        off += (size_t)b.length;
        count++;
    }
    if (count == 0) {
        *why = "no batch";
        return SR_CUT_SHORT;
    }
    /* Pass 2: the table. */
    sr_batch_t *t = malloc(count * sizeof *t);
    if (!t) {
        *why = "out of memory";
        return SR_CUT_CORRUPT;
    }
    off = 0;
    for (uint32_t i = 0; i < count; i++) {
        batch_info_t b;
        batch_parse(p + off, n - off, &b);
        t[i] = (sr_batch_t){b.base_offset, b.base_offset + b.last_offset_delta, b.max_timestamp, (uint32_t)off,
                            (uint32_t)b.length};
        off += (size_t)b.length;
    }
    *tab = t;
    *nb = count;
    *whole = off;
    return SR_CUT_OK;
}

/* ---- the cache (loop thread only) ---- */

static uint64_t key_hash(const sr_segkey_t *k) {
    uint64_t h = 1469598103934665603ull;
    const uint8_t *b = k->topic_id.b;
    for (int i = 0; i < 16; i++) h = (h ^ b[i]) * 1099511628211ull;
    h = (h ^ (uint32_t)k->partition) * 1099511628211ull;
    h = (h ^ (uint64_t)k->base_offset) * 1099511628211ull;
    return h ^ (h >> 29);
}

static bool key_eq(const sr_segkey_t *a, const sr_segkey_t *b) {
    return a->partition == b->partition && a->base_offset == b->base_offset &&
           !memcmp(&a->topic_id, &b->topic_id, sizeof a->topic_id);
}

void sr_cache_init(sr_cache_t *c, int64_t budget) {
    memset(c, 0, sizeof *c);
    c->magic = SR_CACHE_MAGIC;
    TAILQ_INIT(&c->lru);
    TAILQ_INIT(&c->errs);
    c->budget = budget;
}

static void range_free(sr_range_t *r) {
    if (r->buf) pchunk_release(r->buf);
    free(r->batches);
    free(r);
}

void sr_cache_free(sr_cache_t *c) {
    KS_ASSERT(c->magic == SR_CACHE_MAGIC);
    for (size_t i = 0; i < c->nbuckets; i++) {
        sr_seg_t *s = c->buckets[i];
        while (s) {
            sr_seg_t *next = s->hnext;
            sr_range_t *r;
            while ((r = TAILQ_FIRST(&s->ranges))) {
                TAILQ_REMOVE(&s->ranges, r, seg_link);
                range_free(r);
            }
            free(s->idx_buf);
            free(s);
            s = next;
        }
    }
    free(c->buckets);
    c->magic = 0;
}

static bool cache_grow(sr_cache_t *c) {
    size_t nb = c->nbuckets ? c->nbuckets * 2 : 256;
    sr_seg_t **b = calloc(nb, sizeof *b);
    if (!b) return false;
    for (size_t i = 0; i < c->nbuckets; i++) {
        sr_seg_t *s = c->buckets[i];
        while (s) {
            sr_seg_t *next = s->hnext;
            size_t h = key_hash(&s->key) & (nb - 1);
            s->hnext = b[h];
            b[h] = s;
            s = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
    return true;
}

sr_seg_t *sr_cache_seg(sr_cache_t *c, const sr_segkey_t *k, bool create) {
    KS_ASSERT(c->magic == SR_CACHE_MAGIC);
    if (c->nbuckets) {
        for (sr_seg_t *s = c->buckets[key_hash(k) & (c->nbuckets - 1)]; s; s = s->hnext)
            if (key_eq(&s->key, k)) return s;
    }
    if (!create) return NULL;
    if (c->nsegs >= c->nbuckets && !cache_grow(c)) return NULL;
    sr_seg_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->key = *k;
    TAILQ_INIT(&s->ranges);
    size_t h = key_hash(k) & (c->nbuckets - 1);
    s->hnext = c->buckets[h];
    c->buckets[h] = s;
    c->nsegs++;
    return s;
}

void sr_cache_seg_maybe_free(sr_cache_t *c, sr_seg_t *s) {
    if (s->idx_state || !TAILQ_EMPTY(&s->ranges) || s->on_err_list) return;
    sr_seg_t **pp = &c->buckets[key_hash(&s->key) & (c->nbuckets - 1)];
    while (*pp != s) {
        KS_ASSERT(*pp != NULL);
        pp = &(*pp)->hnext;
    }
    *pp = s->hnext;
    c->nsegs--;
    free(s);
}

sr_range_t *sr_cache_range_new(sr_cache_t *c, sr_seg_t *s, uint32_t pos, uint32_t req_len) {
    sr_range_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->lru.kind = SR_LRU_RANGE;
    r->seg = s;
    r->state = SR_LOADING;
    r->pos = pos;
    r->req_len = req_len;
    sr_range_t *at = TAILQ_LAST(&s->ranges, sr_range_list);
    while (at && at->pos > pos) at = TAILQ_PREV(at, sr_range_list, seg_link);
    if (at) TAILQ_INSERT_AFTER(&s->ranges, at, r, seg_link);
    else TAILQ_INSERT_HEAD(&s->ranges, r, seg_link);
    s->nloading++;
    return r;
}

sr_range_t *sr_cache_range_at(sr_seg_t *s, uint32_t pos) {
    sr_range_t *r;
    TAILQ_FOREACH(r, &s->ranges, seg_link) {
        if (r->pos == pos) return r;
        if (r->pos > pos) break;
    }
    return NULL;
}

sr_range_t *sr_cache_range_covering(sr_seg_t *s, int64_t offset) {
    sr_range_t *r;
    TAILQ_FOREACH(r, &s->ranges, seg_link)
        if (r->state == SR_READY && r->first_offset <= offset && offset <= r->last_offset) return r;
    return NULL;
}

sr_range_t *sr_cache_loading_over(sr_seg_t *s, uint32_t pos) {
    sr_range_t *r;
    TAILQ_FOREACH(r, &s->ranges, seg_link) {
        if (r->pos > pos) break;
        if (r->state == SR_LOADING && (uint64_t)pos < (uint64_t)r->pos + r->req_len) return r;
    }
    return NULL;
}

void sr_cache_begin_pass(sr_cache_t *c) { c->gen++; }

static void lru_evict_one(sr_cache_t *c, sr_lru_t *e) {
    TAILQ_REMOVE(&c->lru, e, link);
    c->bytes -= e->charge;
    c->evictions++;
    if (e->kind == SR_LRU_RANGE) {
        sr_range_t *r = container_of(e, sr_range_t, lru);
        sr_seg_t *s = r->seg;
        TAILQ_REMOVE(&s->ranges, r, seg_link);
        range_free(r);
        sr_cache_seg_maybe_free(c, s);
    } else {
        sr_seg_t *s = container_of(e, sr_seg_t, idx_lru);
        free(s->idx_buf);
        s->idx_buf = NULL;
        s->idx_len = 0;
        s->idx_state = 0;
        sr_cache_seg_maybe_free(c, s);
    }
}

static void lru_insert(sr_cache_t *c, sr_lru_t *e, int64_t charge) {
    e->charge = charge;
    e->gen = c->gen;
    TAILQ_INSERT_HEAD(&c->lru, e, link);
    c->bytes += charge;
    sr_lru_t *t;
    while (c->bytes > c->budget && (t = TAILQ_LAST(&c->lru, sr_lru_list)) && t->gen != c->gen)
        lru_evict_one(c, t);
}

void sr_cache_range_ready(sr_cache_t *c, sr_range_t *r, pchunk_t *buf, sr_batch_t *tab, uint32_t nb) {
    KS_ASSERT(r->state == SR_LOADING && nb > 0);
    r->seg->nloading--;
    r->state = SR_READY;
    r->buf = buf;
    r->batches = tab;
    r->nb = nb;
    r->first_offset = tab[0].base_offset;
    r->last_offset = tab[nb - 1].last_offset;
    r->end = r->pos + tab[nb - 1].pos + tab[nb - 1].len;
    lru_insert(c, &r->lru, (int64_t)(sizeof *buf + buf->cap + nb * sizeof *tab + sizeof *r));
}

void sr_cache_range_drop(sr_cache_t *c, sr_range_t *r) {
    sr_seg_t *s = r->seg;
    if (r->state == SR_READY) {
        TAILQ_REMOVE(&c->lru, &r->lru, link);
        c->bytes -= r->lru.charge;
    } else {
        s->nloading--;
    }
    TAILQ_REMOVE(&s->ranges, r, seg_link);
    range_free(r);
    sr_cache_seg_maybe_free(c, s);
}

void sr_cache_index_ready(sr_cache_t *c, sr_seg_t *s, uint8_t *buf, size_t len, const seg_index_t *idx) {
    KS_ASSERT(s->idx_state == SR_LOADING);
    s->idx_state = SR_READY;
    s->idx_buf = buf;
    s->idx_len = len;
    s->idx = *idx;
    s->idx_lru.kind = SR_LRU_INDEX;
    lru_insert(c, &s->idx_lru, (int64_t)len + 64);
}

void sr_cache_touch(sr_cache_t *c, sr_lru_t *e) {
    if (TAILQ_FIRST(&c->lru) == e) return;
    TAILQ_REMOVE(&c->lru, e, link);
    TAILQ_INSERT_HEAD(&c->lru, e, link);
}

void sr_cache_seg_error(sr_cache_t *c, sr_seg_t *s, int16_t err, int64_t now, int64_t ttl_ms) {
    s->err = err;
    s->err_until_ms = now + ttl_ms;
    if (s->on_err_list) TAILQ_REMOVE(&c->errs, s, err_link);
    TAILQ_INSERT_TAIL(&c->errs, s, err_link);
    s->on_err_list = true;
}

void sr_cache_purge_errors(sr_cache_t *c, int64_t now) {
    sr_seg_t *s;
    while ((s = TAILQ_FIRST(&c->errs)) && s->err_until_ms <= now) {
        TAILQ_REMOVE(&c->errs, s, err_link);
        s->on_err_list = false;
        s->err = KERR_NONE;
        sr_cache_seg_maybe_free(c, s);
    }
}

/* ---- workers ---- */

enum { JOB_RANGE = 1, JOB_INDEX = 2 };

typedef struct sr_job {
    int kind;
    sr_seg_t *seg;            /* loop-owned: the worker never touches these two */
    sr_range_t *range;
    char key[SEG_KEY_MAX];
    /* what the front (cache_link.c) sees; ref's pointers point into this job */
    sr_seg_ref_t ref;
    char topic[250];
    sr_seg_desc_t follow[SR_NEXT_MAX];
    uint64_t pos, len, footer_start;
    int64_t seg_base, seg_last;
    /* the store GETs the job made (not the reads the front served), for the
     * metrics: counted by done_cb on the loop, as the registry wants */
    int ngets, nget_errors;
    uint64_t get_bytes;
    int64_t get_us[SR_JOB_GETS];
    /* results */
    int status;               /* OBJ_OK / OBJ_NOT_FOUND / OBJ_ERROR; corrupt data is OBJ_ERROR */
    char err[300];
    pchunk_t *buf;
    sr_batch_t *tab;
    uint32_t nb;
    uint8_t *idx;
    size_t idx_len;
    seg_index_t index;
    struct sr_job *next;
} sr_job_t;

static struct {
    bool inited;
    objstore_t *store;
    sr_get_fn *get;
    void *get_ctx;
    sr_front_fn *front;
    void *front_ctx;
    char ns[256];
    uint32_t chunk_min;
    int64_t load_wait_ms;
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sr_job_t *todo, **todo_tail;   /* under mu */
    sr_job_t *done, **done_tail;   /* under mu */
    bool stop;                     /* under mu */
    int efd;
    struct event *done_ev;
    int inflight;                  /* loop: jobs queued or running */
    int64_t inflight_bytes;        /* loop: bytes those jobs asked for */
    sr_cache_t cache;
    sr_stats_t st;
    records_ws_t ws;               /* loop: record walks for timestamp lookups */
} S = {.efd = -1};

static int store_get_objstore(void *ctx, const char *key, uint64_t off, uint64_t len, uint8_t *buf, size_t cap,
                              uint8_t **out, size_t *got, char *err, size_t errsz) {
    objstore_op_t op;
    memset(&op, 0, sizeof op);
    op.kind = OBJ_GET;
    op.key = key;
    op.offset = off;
    op.length = len;
    op.buf = buf;
    op.cap = cap;
    objstore_run(ctx, &op, 1);
    *got = op.out_len;
    if (out) *out = op.out;
    else free(op.out);
    if (op.status != OBJ_OK) snprintf(err, errsz, "%s", op.status == OBJ_NOT_FOUND ? "not found" : op.err);
    return op.status;
}

void store_read_set_getter(sr_get_fn *fn, void *ctx) {
    S.get = fn;
    S.get_ctx = ctx;
}

void store_read_set_front(sr_front_fn *fn, void *ctx) {
    S.front = fn;
    S.front_ctx = ctx;
}

/* A read into buf: the front first (the shm ring), the store when it passes.
 * Store GETs are timed into the job (worker thread; counted on the loop). */
static int job_get(sr_job_t *j, uint64_t off, uint64_t len, uint8_t *buf, size_t cap, uint8_t **out, size_t *got,
                   char *err, size_t errsz) {
    if (S.front && buf) {
        int st = S.front(S.front_ctx, &j->ref, off, len, buf, cap, got);
        if (st != SR_FRONT_PASS) return st;
    }
    int64_t t0 = mono_us();
    int st = S.get(S.get_ctx, j->key, off, len, buf, cap, out, got, err, errsz);
    if (j->ngets < SR_JOB_GETS) j->get_us[j->ngets] = mono_us() - t0;
    j->ngets++;
    if (st != OBJ_OK) j->nget_errors++;
    else j->get_bytes += *got;
    return st;
}

/* The job's store GETs into kafscale_objstore_*{process="broker",op="get"}
 * (loop thread). A GET that failed or found nothing is an error: the
 * segment was committed, so it should be there. */
static void count_gets(const sr_job_t *j) {
    if (!j->ngets) return;
    static const char *const lv[] = {"broker", "get"};
    metrics_series_add(metrics_series(M_OBJ_OPS, lv, 2), j->ngets);
    metrics_series_add(metrics_series(M_OBJ_ERRORS, lv, 2), j->nget_errors);
    metrics_series_add(metrics_series(M_OBJ_BYTES, lv, 2), (double)j->get_bytes);
    metric_series_t *lat = metrics_series(M_OBJ_SECONDS, lv, 2);
    for (int i = 0; i < j->ngets && i < SR_JOB_GETS; i++) metrics_series_observe(lat, (double)j->get_us[i] / 1e6);
}

/* Range buffers are pchunk_t allocated like the memory log's (malloc of
 * header + cap), so responses hold them with pchunk_keep/pchunk_release
 * exactly as they hold log chunks. pchunk_release() may put a chunk in the
 * log's (loop-only) pool: workers never call it, they free() a buffer that
 * was never shared. */
static pchunk_t *chunk_alloc(size_t cap) {
    pchunk_t *c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->refs = 1;
    c->cap = (uint32_t)cap;
    c->len = 0;
    c->kind = 0; /* plain malloc: pchunk_release() frees it */
    return c;
}

static void job_fail(sr_job_t *j, int status, const char *why) {
    j->status = status;
    snprintf(j->err, sizeof j->err, "%s", why);
}

static void run_range(sr_job_t *j) {
    uint64_t len = j->len;
    for (int attempt = 0; attempt < 2; attempt++) {
        pchunk_t *c = chunk_alloc(len);
        if (!c) {
            job_fail(j, OBJ_ERROR, "out of memory");
            return;
        }
        size_t got = 0;
        char err[256] = "";
        int st = job_get(j, j->pos, len, c->data, len, NULL, &got, err, sizeof err);
        if (st != OBJ_OK) {
            free(c);
            job_fail(j, st, err);
            return;
        }
        size_t whole, need;
        const char *why;
        int rc = sr_cut(c->data, got, j->seg_base, j->seg_last, true, &j->tab, &j->nb, &whole, &need, &why);
        if (rc == SR_CUT_OK) {
            if (whole + (64 << 10) < c->cap) { /* give back what the cut left over */
                pchunk_t *s = realloc(c, sizeof *c + whole);
                if (s) {
                    c = s;
                    c->cap = (uint32_t)whole;
                }
            }
            c->len = (uint32_t)whole;
            j->buf = c;
            j->status = OBJ_OK;
            return;
        }
        free(c);
        /* A first batch longer than what we asked for: once more, whole. */
        if (rc == SR_CUT_SHORT && attempt == 0 && need > len && j->pos + need <= j->footer_start) {
            len = need;
            continue;
        }
        snprintf(j->err, sizeof j->err, "corrupt segment data at position %llu: %s", (unsigned long long)j->pos,
                 why ? why : "?");
        j->status = OBJ_ERROR;
        return;
    }
}

static void run_index(sr_job_t *j) {
    uint8_t *p = NULL;
    size_t got = 0;
    char err[256] = "";
    int st = job_get(j, 0, 0, NULL, 0, &p, &got, err, sizeof err);
    if (st != OBJ_OK) {
        free(p);
        job_fail(j, st, err);
        return;
    }
    int rc = seg_index_parse(p, got, &j->index);
    if (rc == SEG_OK) {
        int32_t n = j->index.count;
        if (seg_index_offset(&j->index, 0) < j->seg_base || seg_index_offset(&j->index, n - 1) > j->seg_last ||
            (uint64_t)seg_index_position(&j->index, n - 1) >= j->footer_start) {
            free(p);
            job_fail(j, OBJ_ERROR, "index does not match the segment's offsets or size");
            return;
        }
        j->idx = p;
        j->idx_len = got;
        j->status = OBJ_OK;
        return;
    }
    free(p);
    snprintf(j->err, sizeof j->err, "corrupt index: %s", seg_strerror(rc));
    j->status = OBJ_ERROR;
}

static void *worker_main(void *arg) {
    pthread_mutex_lock(&S.mu);
    for (;;) {
        while (!S.stop && !S.todo) pthread_cond_wait(&S.cv, &S.mu);
        if (S.stop) break;
        sr_job_t *j = S.todo;
        S.todo = j->next;
        if (!S.todo) S.todo_tail = &S.todo;
        pthread_mutex_unlock(&S.mu);

        if (j->kind == JOB_RANGE) run_range(j);
        else run_index(j);

        pthread_mutex_lock(&S.mu);
        j->next = NULL;
        *S.done_tail = j;
        S.done_tail = &j->next;
        uint64_t one = 1;
        if (write(S.efd, &one, sizeof one) < 0 && errno != EAGAIN) log_warn("store read: eventfd write: %s", strerror(errno));
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

static void job_free(sr_job_t *j) {
    if (j->buf) pchunk_release(j->buf);
    free(j->tab);
    free(j->idx);
    free(j);
}

/* Completion pass, on the loop: results into the cache, then wake the parked. */
static void done_cb(evutil_socket_t fd, short what, void *arg) {
    uint64_t v;
    if (read(S.efd, &v, sizeof v) < 0 && errno != EAGAIN) log_warn("store read: eventfd read: %s", strerror(errno));
    pthread_mutex_lock(&S.mu);
    sr_job_t *list = S.done;
    S.done = NULL;
    S.done_tail = &S.done;
    pthread_mutex_unlock(&S.mu);
    if (!list) return;

    int64_t now = now_ms();
    sr_cache_t *c = &S.cache;
    sr_cache_begin_pass(c);
    while (list) {
        sr_job_t *j = list;
        list = j->next;
        S.inflight--;
        S.inflight_bytes -= (int64_t)j->len;
        count_gets(j);
        sr_seg_t *s = j->seg;
        if (j->kind == JOB_RANGE) {
            if (j->status == OBJ_OK) {
                S.st.loads++;
                S.st.load_bytes += j->buf->len;
                sr_cache_range_ready(c, j->range, j->buf, j->tab, j->nb);
                j->buf = NULL;
                j->tab = NULL;
            } else {
                S.st.errors++;
                log_warn("store read: %s [%llu, +%llu): %s", j->key, (unsigned long long)j->pos,
                         (unsigned long long)j->len, j->err);
                sr_cache_seg_error(c, s, KERR_KAFKA_STORAGE_ERROR, now, SR_ERROR_TTL_MS);
                sr_cache_range_drop(c, j->range);
            }
        } else {
            if (j->status == OBJ_OK) {
                S.st.index_loads++;
                sr_cache_index_ready(c, s, j->idx, j->idx_len, &j->index);
                j->idx = NULL;
            } else {
                S.st.errors++;
                log_warn("store read: %s: %s", j->key, j->err);
                s->idx_state = 0;
                sr_cache_seg_error(c, s, KERR_KAFKA_STORAGE_ERROR, now, SR_ERROR_TTL_MS);
            }
        }
        job_free(j);
    }
    kreq_wake_parked();
}

static void submit(sr_job_t *j) {
    j->next = NULL;
    pthread_mutex_lock(&S.mu);
    *S.todo_tail = j;
    S.todo_tail = &j->next;
    pthread_cond_signal(&S.cv);
    pthread_mutex_unlock(&S.mu);
    S.inflight++;
    S.inflight_bytes += (int64_t)j->len;
}

/* Room for a demand load of len bytes: a bounded number of loads, and of
 * bytes in flight (at most the cache budget, but always one load). */
static bool room_for(uint64_t len) {
    if (S.inflight >= SR_MAX_QUEUED) return false;
    return S.inflight == 0 || S.inflight_bytes + (int64_t)len <= S.cache.budget;
}

/* ---- init / shutdown ---- */

int store_read_init(void) {
    KS_ASSERT(!S.inited);
    snprintf(S.ns, sizeof S.ns, "%s", env_str("KAFSCALE_S3_NAMESPACE", "default"));
    S.nthreads = (int)env_int("KAFSCALE_STORE_READ_THREADS", 2, 1, 64);
    int64_t budget = env_size("KAFSCALE_READ_CACHE_BYTES", S.front ? 16LL << 20 : 64LL << 20, 64 << 10, 1LL << 40);
    S.chunk_min = (uint32_t)env_size("KAFSCALE_READ_CHUNK_BYTES", SR_CHUNK_DEFAULT, 4 << 10, SR_CHUNK_MAX);
    S.load_wait_ms = env_int("KAFSCALE_FETCH_LOAD_WAIT_MS", 5000, 0, 600000);
    if (!S.get) {
        objstore_config_t cfg;
        objstore_config_from_env(&cfg, g_broker.cfg.data_dir);
        char err[512];
        S.store = objstore_open(&cfg, err, sizeof err);
        if (!S.store) {
            log_error("store read: cannot open the object store: %s", err);
            return -1;
        }
        S.get = store_get_objstore;
        S.get_ctx = S.store;
    }
    sr_cache_init(&S.cache, budget);
    records_ws_init(&S.ws, 0);
    /* The broker's store GET series exist (at 0) before the first read. */
    static const char *const lv[] = {"broker", "get"};
    metrics_series(M_OBJ_OPS, lv, 2);
    metrics_series(M_OBJ_ERRORS, lv, 2);
    metrics_series(M_OBJ_BYTES, lv, 2);
    metrics_series(M_OBJ_SECONDS, lv, 2);
    S.todo = S.done = NULL;
    S.todo_tail = &S.todo;
    S.done_tail = &S.done;
    S.stop = false;
    S.inflight = 0;
    S.inflight_bytes = 0;
    memset(&S.st, 0, sizeof S.st);
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.cv, NULL);
    S.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (S.efd < 0) {
        log_error("store read: eventfd: %s", strerror(errno));
        return -1;
    }
    S.done_ev = event_new(g_broker.base, S.efd, EV_READ | EV_PERSIST, done_cb, NULL);
    if (!S.done_ev || event_add(S.done_ev, NULL) != 0) {
        log_error("store read: cannot create the completion event");
        return -1;
    }
    S.threads = calloc((size_t)S.nthreads, sizeof *S.threads);
    if (!S.threads) return -1;
    for (int i = 0; i < S.nthreads; i++) {
        int rc = pthread_create(&S.threads[i], NULL, worker_main, NULL);
        if (rc) {
            log_error("store read: cannot start worker thread: %s", strerror(rc));
            S.nthreads = i;
            return -1;
        }
    }
    S.inited = true;
    log_info("store read: %d thread(s), cache %lld bytes, chunk %u bytes, %s store", S.nthreads, (long long)budget,
             S.chunk_min, S.store ? objstore_backend(S.store) : "custom");
    return 0;
}

void store_read_shutdown(void) {
    if (!S.threads && !S.store && S.efd < 0) return;
    pthread_mutex_lock(&S.mu);
    S.stop = true;
    pthread_cond_broadcast(&S.cv);
    pthread_mutex_unlock(&S.mu);
    for (int i = 0; i < S.nthreads; i++) pthread_join(S.threads[i], NULL);
    free(S.threads);
    S.threads = NULL;
    for (sr_job_t *j = S.todo, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    for (sr_job_t *j = S.done, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    S.todo = S.done = NULL;
    if (S.inited) {
        log_info("store read: %llu hits, %llu misses, %llu loads (%llu bytes), %llu index loads, %llu errors, "
                 "%llu evictions",
                 (unsigned long long)S.st.hits, (unsigned long long)S.st.misses, (unsigned long long)S.st.loads,
                 (unsigned long long)S.st.load_bytes, (unsigned long long)S.st.index_loads,
                 (unsigned long long)S.st.errors, (unsigned long long)S.cache.evictions);
        sr_cache_free(&S.cache);
        records_ws_free(&S.ws);
    }
    if (S.done_ev) event_free(S.done_ev);
    S.done_ev = NULL;
    if (S.efd >= 0) close(S.efd);
    S.efd = -1;
    if (S.store) {
        objstore_close(S.store);
        S.store = NULL;
        S.get = NULL;
        S.get_ctx = NULL;
    }
    pthread_mutex_destroy(&S.mu);
    pthread_cond_destroy(&S.cv);
    S.inited = false;
}

void store_read_stats(sr_stats_t *out) {
    *out = S.st;
    out->evictions = S.cache.evictions;
    out->cache_bytes = S.cache.bytes;
    out->cache_budget = S.cache.budget;
    if (S.store) {
        objstore_stats_t os;
        objstore_get_stats(S.store, &os);
        out->store_retries = os.retries;
    }
    out->inflight = S.inflight;
    out->inflight_bytes = S.inflight_bytes;
}

int64_t store_read_load_wait_ms(void) { return S.inited ? S.load_wait_ms : 5000; }

/* ---- reads ---- */

/* The first segment whose last offset is >= offset (nsegs when none). */
static size_t seg_find(const partition_t *p, int64_t offset) {
    size_t lo = 0, hi = p->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid].last_offset < offset) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static uint64_t footer_start(const pseg_t *ps) {
    return ps->size > SEG_HEADER_SIZE + SEG_FOOTER_SIZE ? (uint64_t)ps->size - SEG_FOOTER_SIZE : SEG_HEADER_SIZE;
}

static sr_job_t *job_new(int kind, partition_t *p, const pseg_t *ps, const char *ext) {
    sr_job_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    j->seg_base = ps->base_offset;
    j->seg_last = ps->last_offset;
    j->footer_start = footer_start(ps);
    if (seg_key(j->key, sizeof j->key, S.ns, p->topic->name, p->index, ps->base_offset, ext) != SEG_OK) {
        log_warn("store read: no object key for %s/%d segment %lld", p->topic->name, p->index,
                 (long long)ps->base_offset);
        free(j);
        return NULL;
    }
    /* For the front: the segment, and the committed ones after it that only
     * the store holds (what a cache would read ahead). */
    snprintf(j->topic, sizeof j->topic, "%s", p->topic->name);
    j->ref.key = j->key;
    j->ref.index = kind == JOB_INDEX;
    j->ref.topic = j->topic;
    j->ref.topic_id = p->topic->id;
    j->ref.partition = p->index;
    j->ref.seg = (sr_seg_desc_t){ps->base_offset, ps->last_offset, ps->size};
    j->ref.next = j->follow;
    KS_ASSERT(ps >= p->segs && ps < p->segs + p->nsegs);
    int64_t mem = plog_mem_start(&p->log);
    for (size_t k = (size_t)(ps - p->segs) + 1; k < p->nsegs && j->ref.nnext < SR_NEXT_MAX; k++) {
        if (p->segs[k].base_offset >= mem) break;
        j->follow[j->ref.nnext++] = (sr_seg_desc_t){p->segs[k].base_offset, p->segs[k].last_offset, p->segs[k].size};
    }
    return j;
}

/* Starts loading [pos, pos+len) of the segment. false when it could not. */
static bool start_range(partition_t *p, const pseg_t *ps, sr_seg_t *s, uint32_t pos, uint32_t len) {
    sr_job_t *j = job_new(JOB_RANGE, p, ps, "kfs");
    if (!j) return false;
    sr_range_t *r = sr_cache_range_new(&S.cache, s, pos, len);
    if (!r) {
        free(j);
        return false;
    }
    j->seg = s;
    j->range = r;
    j->pos = pos;
    j->len = len;
    submit(j);
    return true;
}

static bool start_index(partition_t *p, const pseg_t *ps, sr_seg_t *s) {
    sr_job_t *j = job_new(JOB_INDEX, p, ps, "index");
    if (!j) return false;
    j->seg = s;
    s->idx_state = SR_LOADING;
    submit(j);
    return true;
}

static sr_seg_t *seg_entry(partition_t *p, const pseg_t *ps) {
    sr_segkey_t k;
    memset(&k, 0, sizeof k);
    k.topic_id = p->topic->id;
    k.partition = p->index;
    k.base_offset = ps->base_offset;
    return sr_cache_seg(&S.cache, &k, true);
}

/* Read-ahead: walks forward from file position pos of segment k (entry s)
 * over what is cached or coming, and starts loads for what is neither, until
 * about two fetches' worth (max(max_bytes, chunk), at most 16 MiB and a
 * quarter of the cache) lies ahead. Small segments are each one load, so the
 * walk goes on through the next segments. It stops at data the memory log
 * serves anyway, and leaves room for demand loads. */
static void read_ahead(partition_t *p, size_t k, sr_seg_t *s, uint32_t pos, int64_t ahead, int64_t max_bytes) {
    int64_t window = 2 * (max_bytes > (int64_t)S.chunk_min ? max_bytes : (int64_t)S.chunk_min);
    if (window > 2 * (int64_t)SR_CHUNK_MAX) window = 2 * (int64_t)SR_CHUNK_MAX;
    if (window > S.cache.budget / 4) window = S.cache.budget / 4;
    int64_t mem = plog_mem_start(&p->log);
    for (int steps = 0; steps < 256 && ahead < window; steps++) {
        const pseg_t *ps = &p->segs[k];
        uint64_t foot = footer_start(ps);
        if (pos >= foot) {
            sr_cache_seg_maybe_free(&S.cache, s);
            if (++k >= p->nsegs || p->segs[k].base_offset >= mem) return;
            ps = &p->segs[k];
            foot = footer_start(ps);
            if (!(s = seg_entry(p, ps))) return;
            pos = SEG_HEADER_SIZE;
        }
        sr_range_t *r = sr_cache_range_at(s, pos);
        if (r && r->state == SR_READY) {
            if (r->last_offset + 1 >= mem) break;
            ahead += r->end - r->pos;
            pos = r->end;
            continue;
        }
        if (!r) r = sr_cache_loading_over(s, pos);
        if (r) { /* coming; past it only when it runs to the footer */
            ahead += (int64_t)r->pos + r->req_len - pos;
            if ((uint64_t)r->pos + r->req_len < foot) break;
            pos = (uint32_t)foot;
            continue;
        }
        if (s->on_err_list || S.inflight >= 4 * S.nthreads) break;
        uint32_t len = sr_chunk_len(max_bytes, pos, foot, S.chunk_min, SR_CHUNK_MAX);
        if (S.inflight_bytes + (int64_t)len > S.cache.budget / 2) break;
        if (!len || !start_range(p, ps, s, pos, len)) break;
        S.st.readaheads++;
        ahead += len;
        if ((uint64_t)pos + len < foot) break;
        pos = (uint32_t)foot;
    }
    sr_cache_seg_maybe_free(&S.cache, s);
}

/* Serves from READY range r at offset, chaining the ranges that follow it
 * while max_bytes allows. */
static int serve(partition_t *p, size_t k, sr_seg_t *s, sr_range_t *r, int64_t offset, int64_t max_bytes,
                 bool first, kw_t *hold, karena_t *a, krecords_t *out) {
    int cap = 8, n = 0;
    kiov_t *iov = karena_alloc(a, (size_t)cap * sizeof *iov);
    if (!iov) return 0; /* the request's arena is full: like plog_read, nothing */
    int64_t hw = p->log.hw, total = 0;
    /* first batch with last_offset >= offset */
    uint32_t lo = 0, hi = r->nb;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->batches[mid].last_offset < offset) lo = mid + 1;
        else hi = mid;
    }
    uint32_t i = lo;
    sr_range_t *last_r = r;
    size_t last_k = k;
    uint32_t last_end = 0; /* position in last_r's buffer after what was served */
    for (;;) {
        uint32_t j = i;
        int64_t piece = 0;
        bool full = false;
        while (j < r->nb) {
            const sr_batch_t *b = &r->batches[j];
            if (b->last_offset >= hw) {
                full = true;
                break;
            }
            if (total + piece + b->len > max_bytes && !(first && total + piece == 0)) {
                full = true;
                break;
            }
            piece += b->len;
            j++;
        }
        sr_cache_touch(&S.cache, &r->lru);
        if (piece > 0) {
            if (n == cap) {
                kiov_t *more = karena_alloc(a, (size_t)cap * 2 * sizeof *iov);
                if (!more) break;
                memcpy(more, iov, (size_t)n * sizeof *iov);
                iov = more;
                cap *= 2;
            }
            iov[n++] = (kiov_t){r->buf->data + r->batches[i].pos, (uint32_t)piece};
            pchunk_keep(r->buf);
            kw_ref(hold, NULL, 0, pchunk_release, r->buf);
            total += piece;
            last_r = r;
            last_k = k;
            last_end = r->batches[j - 1].pos + r->batches[j - 1].len;
        }
        if (full || total >= INT32_MAX - SR_CHUNK_MAX) break;
        /* This range is used up: go on with the next one if it is here. */
        sr_range_t *next = NULL;
        const pseg_t *ps = &p->segs[k];
        if (r->end < footer_start(ps)) {
            next = sr_cache_range_at(s, r->end);
        } else if (k + 1 < p->nsegs) {
            sr_segkey_t key = s->key;
            key.base_offset = p->segs[k + 1].base_offset;
            sr_seg_t *ns = sr_cache_seg(&S.cache, &key, false);
            if (ns && (next = sr_cache_range_at(ns, SEG_HEADER_SIZE))) {
                k++;
                s = ns;
            }
        }
        if (!next || next->state != SR_READY || next->first_offset != r->last_offset + 1) break;
        r = next;
        i = 0;
    }
    if (n > 0) {
        out->p = iov[0].p;
        out->len = (int32_t)total;
        out->iov = iov;
        out->niov = n;
        /* What the client asks for next: have it loaded before it asks. */
        read_ahead(p, last_k, last_r->seg, last_r->end, (int64_t)(last_r->end - last_r->pos) - last_end, max_bytes);
    }
    return 1;
}

/* store_read() for segment k, whose cache entry is s. */
static int read_seg(partition_t *p, size_t k, sr_seg_t *s, int64_t offset, int64_t max_bytes, bool first,
                    kw_t *hold, karena_t *a, krecords_t *out, int16_t *err) {
    const pseg_t *ps = &p->segs[k];
    if (offset < ps->base_offset) offset = ps->base_offset; /* a gap between segments: the next data */
    sr_range_t *r = sr_cache_range_covering(s, offset);
    if (r) {
        S.st.hits++;
        return serve(p, k, s, r, offset, max_bytes, first, hold, a, out);
    }
    if (s->on_err_list) {
        *err = s->err;
        return -1;
    }

    /* Where to load from: after the cached range that ends nearest below the
     * offset, at the first batch, or where the index says. */
    uint32_t pos = 0;
    int64_t best_last = -1;
    uint32_t best_end = 0;
    sr_range_t *it;
    TAILQ_FOREACH(it, &s->ranges, seg_link)
        if (it->state == SR_READY && it->last_offset < offset && it->last_offset > best_last) {
            best_last = it->last_offset;
            best_end = it->end;
        }
    if (offset == ps->base_offset) pos = SEG_HEADER_SIZE;
    else if (best_last >= 0 && best_last + 1 == offset) pos = best_end;
    else if (s->idx_state == SR_READY) {
        int64_t eo;
        int32_t ep;
        if (seg_index_find(&s->idx, offset, &eo, &ep) != SEG_OK) ep = SEG_HEADER_SIZE;
        pos = (uint32_t)ep;
        if (best_last >= 0 && best_end > pos) pos = best_end;
        sr_cache_touch(&S.cache, &s->idx_lru);
    } else {
        S.st.misses++;
        if (s->idx_state == SR_LOADING || !room_for(0)) return 0;
        if (!start_index(p, ps, s)) {
            *err = KERR_KAFKA_STORAGE_ERROR;
            return -1;
        }
        return 0;
    }

    r = sr_cache_range_at(s, pos);
    if (r && r->state == SR_READY) {
        if (r->last_offset >= offset) { /* its first batch starts past the offset: a gap */
            S.st.hits++;
            return serve(p, k, s, r, offset, max_bytes, first, hold, a, out);
        }
        log_warn("store read: %s/%d segment %lld: the range at %u ends at offset %lld, below %lld",
                 p->topic->name, p->index, (long long)ps->base_offset, pos, (long long)r->last_offset,
                 (long long)offset);
        *err = KERR_KAFKA_STORAGE_ERROR;
        return -1;
    }
    S.st.misses++;
    if (r || sr_cache_loading_over(s, pos)) return 0; /* coming */
    uint32_t len = sr_chunk_len(max_bytes, pos, footer_start(ps), S.chunk_min, SR_CHUNK_MAX);
    if (len && !room_for(len)) return 0; /* a load in flight will land and wake us */
    if (!len || !start_range(p, ps, s, pos, len)) {
        if (!len)
            log_warn("store read: %s/%d segment %lld: offset %lld maps past the segment's batches",
                     p->topic->name, p->index, (long long)ps->base_offset, (long long)offset);
        *err = KERR_KAFKA_STORAGE_ERROR;
        return -1;
    }
    read_ahead(p, k, s, pos, 0, max_bytes); /* sees the load just started, goes on past it */
    return 0;
}

int store_read(partition_t *p, int64_t offset, int64_t max_bytes, bool first, kw_t *hold, karena_t *a,
               krecords_t *out, int16_t *err) {
    *out = (krecords_t){NULL, 0, 0, NULL};
    *err = KERR_NONE;
    if (!S.inited) {
        *err = KERR_KAFKA_STORAGE_ERROR;
        return -1;
    }
    sr_cache_purge_errors(&S.cache, now_ms());
    size_t k = seg_find(p, offset);
    if (p->nsegs == 0 || offset < p->segs[0].base_offset || k == p->nsegs) {
        *err = KERR_OFFSET_OUT_OF_RANGE;
        return -1;
    }
    sr_seg_t *s = seg_entry(p, &p->segs[k]);
    if (!s) {
        *err = KERR_KAFKA_STORAGE_ERROR;
        return -1;
    }
    int rc = read_seg(p, k, s, offset, max_bytes, first, hold, a, out, err);
    sr_cache_seg_maybe_free(&S.cache, s); /* when nothing was started for it */
    return rc;
}

/* ---- timestamps ---- */

/* The first record of the batch at b with timestamp >= ts (batch base offset
 * when the records cannot be read). */
static int64_t record_for_time(const uint8_t *b, size_t len, int64_t ts, int64_t batch_base, int64_t *ts_out) {
    records_iter_t itr;
    krecord_t rec;
    if (records_iter_init(&itr, b, len, &S.ws) == RECORDS_OK)
        while (records_next(&itr, &rec) > 0)
            if (rec.timestamp >= ts) {
                *ts_out = rec.timestamp;
                return rec.offset;
            }
    return batch_base;
}

static int time_in_seg(partition_t *p, const pseg_t *ps, sr_seg_t *s, int64_t ts, int64_t start, int64_t *off,
                       int64_t *ts_out, int16_t *err);

int store_offset_for_time(partition_t *p, int64_t ts, bool coarse, int64_t *off, int64_t *ts_out, int16_t *err) {
    *off = -1;
    *ts_out = -1;
    *err = KERR_NONE;
    int64_t mem = plog_mem_start(&p->log);
    size_t k = 0;
    while (k < p->nsegs && p->segs[k].base_offset < mem && p->segs[k].max_timestamp < ts) k++;
    if (k == p->nsegs || p->segs[k].base_offset >= mem) return 1; /* not in store-only data */
    const pseg_t *ps = &p->segs[k];
    int64_t start = ps->base_offset > p->log.start_offset ? ps->base_offset : p->log.start_offset;
    if (coarse || !S.inited) {
        *off = start;
        *ts_out = ps->max_timestamp;
        return 1;
    }
    sr_seg_t *s = seg_entry(p, ps);
    if (!s) {
        *err = KERR_KAFKA_STORAGE_ERROR;
        return -1;
    }
    int rc = time_in_seg(p, ps, s, ts, start, off, ts_out, err);
    sr_cache_seg_maybe_free(&S.cache, s);
    return rc;
}

/* Walks the segment's ranges from its first batch. */
static int time_in_seg(partition_t *p, const pseg_t *ps, sr_seg_t *s, int64_t ts, int64_t start, int64_t *off,
                       int64_t *ts_out, int16_t *err) {
    uint32_t pos = SEG_HEADER_SIZE;
    for (;;) {
        sr_range_t *r = sr_cache_range_at(s, pos);
        if (!r || r->state != SR_READY) {
            if (s->on_err_list) {
                *err = s->err;
                return -1;
            }
            if (r || sr_cache_loading_over(s, pos)) return 0;
            uint32_t len = sr_chunk_len(SR_CHUNK_MAX, pos, footer_start(ps), S.chunk_min, SR_CHUNK_MAX);
            if (!len) break;
            if (!room_for(len)) return 0;
            if (!start_range(p, ps, s, pos, len)) {
                *err = KERR_KAFKA_STORAGE_ERROR;
                return -1;
            }
            return 0;
        }
        sr_cache_touch(&S.cache, &r->lru);
        for (uint32_t i = 0; i < r->nb; i++) {
            const sr_batch_t *b = &r->batches[i];
            if (b->max_timestamp >= ts && b->last_offset >= start) {
                *ts_out = b->max_timestamp;
                int64_t o = record_for_time(r->buf->data + b->pos, b->len, ts, b->base_offset, ts_out);
                *off = o > start ? o : start;
                return 1;
            }
        }
        if (r->end >= footer_start(ps)) break;
        pos = r->end;
    }
    /* The metadata's max timestamp promised a match the batches do not hold. */
    *off = start;
    *ts_out = ps->max_timestamp;
    return 1;
}
