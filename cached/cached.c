/* cached.c - kafscale-cached: the only writer of the node's shared-memory
 * ring of segments (common/shm_ring.h), which the broker reads without
 * locks.
 *
 * One event loop (libevent) owns the ring: every write to it happens on this
 * thread. It listens on <KAFSCALE_RUN_DIR>/cached.sock (common/cproto.h):
 *   - the broker's worker threads send LOAD for a segment they did not find
 *     in the ring and wait for LOADED; the request carries the committed
 *     segments that follow, and the next KAFSCALE_READAHEAD_SEGMENTS of them
 *     are loaded too (read-ahead). A HINT says a reader entered a segment it
 *     found in the ring: the read-ahead moves along with it.
 *   - the flusher sends SEGMENT for every segment it committed; when a reader
 *     of that partition is close behind (its last segment at most
 *     read-ahead segments back, and it asked within 30 s), the new segment
 *     is prefetched.
 *   - the broker's own connection reports the reads it served (STATS), since
 *     readers never write the ring.
 * Loads run on a few worker threads (KAFSCALE_CACHED_THREADS): one GET of
 * the whole .kfs into a private buffer, a full check of the segment
 * (seg_parse: framing, offsets, CRC-32C; corrupt bytes never enter the
 * ring), then the loop thread copies it into the ring (shm_ring_publish) and
 * answers the waiters. Demand loads go before read-ahead and prefetch.
 * Concurrent requests for one segment share one load.
 *
 * Lifetime: the ring is adopted warm when a previous cached left one of the
 * same size (crash, kill -9, upgrade); a clean stop (SIGTERM/SIGINT, or
 * STOP from a broker that stops cleanly) unlinks it, so a stopped node
 * leaves nothing in /dev/shm. Started by a broker (--supervised), cached
 * stops with it (STOP) but outlives a broker that crashed, so that the
 * restarted broker finds the ring warm; it exits once no broker has been
 * connected for KAFSCALE_CACHED_LINGER_MS, or at once when its socket was
 * removed or replaced (no broker can reach it any more). A supervised cached
 * that finds the ring held waits up to 3 s for its holder to go.
 *
 * Metrics: cached keeps its own registry (common/metrics.h: its store GETs,
 * loads in flight, its process) and sends it to each broker connection in
 * METRICS frames once a second; the ring's counters the broker reads from
 * the header itself.
 */
#include "cached.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "cproto.h"
#include "kbuf.h"
#include "log.h"
#include "metrics.h"
#include "objstore.h"
#include "segment.h"
#include "shm_ring.h"

#define PREFETCH_READER_MS 30000 /* a reader counts as active this long after its last request */
#define KNOWN_MAX          64    /* committed segments remembered per partition */
#define MAX_PENDING        256   /* loads queued or running */
#define MAX_BACKGROUND     32    /* of which read-ahead and prefetch */

typedef struct cseg {
    char topic[250];
    uint8_t id[16];
    int32_t partition;
    int64_t base, last, size;
} cseg_t;

#define CCLIENT_MAGIC 0x63636c69u /* "ccli" */
typedef struct cclient {
    uint32_t magic;
    struct bufferevent *bev;
    int role;                 /* CP_ROLE_*, 0 before HELLO */
    int32_t node_id, pid;
    LIST_ENTRY(cclient) link;
} cclient_t;

typedef struct cwaiter {
    cclient_t *c;
    uint32_t id;
    struct cwaiter *next;
} cwaiter_t;

enum { CJ_DEMAND = 1, CJ_READAHEAD = 2, CJ_PREFETCH = 3 };
enum { CJ_QUEUED = 1, CJ_RUNNING = 2, CJ_DONE = 3 };

typedef struct cjob {
    cseg_t seg;
    int kind;                 /* CJ_*: a queued background job becomes DEMAND when asked for */
    int where;                /* CJ_QUEUED/RUNNING/DONE, under D.mu */
    cwaiter_t *waiters;       /* loop only */
    char key[SEG_KEY_MAX];
    int64_t start_us, end_us; /* the worker's GET and check */
    int64_t get_us;           /* the GET alone (-1: none was made) */
    int get_status;           /* its OBJ_* status */
    /* results (worker) */
    int status;               /* CP_LOAD_* */
    char err[256];
    uint8_t *buf;
    size_t len;
    uint32_t crc;
    TAILQ_ENTRY(cjob) qlink;  /* in a queue or the done list, under D.mu */
    LIST_ENTRY(cjob) plink;   /* in D.pending, loop only */
} cjob_t;

TAILQ_HEAD(cjob_q, cjob);

typedef struct cpart {
    char topic[250];
    int32_t partition;
    int64_t reader_base;      /* the last segment a reader asked for or entered */
    int64_t reader_ms;        /* when (0: never) */
    cseg_t *known;            /* committed segments heard of, by base offset */
    size_t n, cap;
    struct cpart *next;
} cpart_t;

#define NPART_BUCKETS 256

static struct {
    struct event_base *base;
    shm_ring_t ring;
    objstore_t *store;
    char ns[256];
    char shm_name[SHM_RING_NAME_MAX];
    char sock_path[1200];
    uint64_t sock_dev, sock_ino;           /* of the socket we bound (see tick_cb) */
    int readahead;
    int nthreads;
    bool supervised;
    int64_t linger_ms;
    /* workers */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct cjob_q demand, background, done; /* under mu */
    bool stop;                             /* under mu */
    int busy;                              /* under mu: workers inside a load */
    int efd;
    struct event *done_ev;
    /* loop */
    LIST_HEAD(, cjob) pending;
    int npending, nbackground;
    LIST_HEAD(, cclient) clients;
    int nbrokers;
    int64_t last_broker_ms;
    cpart_t *parts[NPART_BUCKETS];
    struct evconnlistener *listener;
    struct event *tick_ev;
} D = {.efd = -1};

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t unix_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static shm_ring_key_t seg_rkey(const cseg_t *s) {
    return (shm_ring_key_t){s->topic, strlen(s->topic), s->id, s->partition, s->base, s->last, (uint64_t)s->size};
}

static bool same_seg(const cseg_t *a, const cseg_t *b) {
    return a->partition == b->partition && a->base == b->base && !strcmp(a->topic, b->topic);
}

/* ---- frames ---- */

static bool rd_seg(kr_t *r, cseg_t *s) {
    kstr_t t = kr_str(r, false);
    const uint8_t *id = kr_take(r, 16);
    s->partition = kr_i32(r);
    s->base = kr_i64(r);
    s->last = kr_i64(r);
    s->size = kr_i64(r);
    if (r->err || t.len <= 0 || (size_t)t.len >= sizeof s->topic || s->partition < 0 || s->base < 0 ||
        s->last < s->base || s->size <= SEG_HEADER_SIZE + SEG_FOOTER_SIZE || (uint64_t)s->size > SEG_MAX_SIZE)
        return false;
    kstr_cpy(s->topic, sizeof s->topic, t);
    memcpy(s->id, id, 16);
    return true;
}

static void send_frame(cclient_t *c, uint8_t type, const kw_t *w) {
    uint8_t hdr[5];
    kput32(hdr, (uint32_t)(w->len + 1));
    hdr[4] = type;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, hdr, 5);
    if (w->len) evbuffer_add(out, w->buf, w->len);
}

static void reply_loaded(cclient_t *c, uint32_t id, int status, const char *msg) {
    kw_t w;
    kw_init(&w, 64);
    kw_u32(&w, id);
    kw_i8(&w, (int8_t)status);
    kw_str(&w, false, kstr_c(msg ? msg : ""));
    send_frame(c, CP_LOADED, &w);
    kw_free(&w);
}

/* ---- partitions: readers' positions and the segments we heard of ---- */

static cpart_t *part_get(const char *topic, int32_t partition, bool create) {
    uint32_t h = (uint32_t)shm_ring_key_hash(topic, strlen(topic), partition, 0) % NPART_BUCKETS;
    for (cpart_t *p = D.parts[h]; p; p = p->next)
        if (p->partition == partition && !strcmp(p->topic, topic)) return p;
    if (!create) return NULL;
    cpart_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    p->partition = partition;
    p->next = D.parts[h];
    D.parts[h] = p;
    return p;
}

static void part_learn(cpart_t *p, const cseg_t *s) {
    size_t i = 0;
    while (i < p->n && p->known[i].base < s->base) i++;
    if (i < p->n && p->known[i].base == s->base) {
        p->known[i] = *s; /* a re-created topic: the newer facts */
        return;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        if (cap > KNOWN_MAX) cap = KNOWN_MAX;
        if (p->n == cap) { /* full: forget the oldest */
            if (i == 0) return;
            memmove(p->known, p->known + 1, (p->n - 1) * sizeof *p->known);
            p->n--;
            i--;
        } else {
            cseg_t *k = realloc(p->known, cap * sizeof *k);
            if (!k) return;
            p->known = k;
            p->cap = cap;
        }
    }
    memmove(p->known + i + 1, p->known + i, (p->n - i) * sizeof *p->known);
    p->known[i] = *s;
    p->n++;
}

/* ---- loads ---- */

static cjob_t *pending_find(const cseg_t *s) {
    cjob_t *j;
    LIST_FOREACH(j, &D.pending, plink)
        if (same_seg(&j->seg, s)) return j;
    return NULL;
}

static bool fits(const cseg_t *s) { return (uint64_t)s->size <= D.ring.data_size / 2; }

/* Queues a load (loop thread). NULL when it could not. */
static cjob_t *job_start(const cseg_t *s, int kind) {
    if (D.npending >= MAX_PENDING) return NULL;
    if (kind != CJ_DEMAND && D.nbackground >= MAX_BACKGROUND) return NULL;
    cjob_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->seg = *s;
    j->kind = kind;
    if (seg_key(j->key, sizeof j->key, D.ns, s->topic, s->partition, s->base, "kfs") != SEG_OK) {
        log_warn("no object key for %s/%d segment %lld", s->topic, s->partition, (long long)s->base);
        free(j);
        return NULL;
    }
    LIST_INSERT_HEAD(&D.pending, j, plink);
    D.npending++;
    if (kind != CJ_DEMAND) D.nbackground++;
    pthread_mutex_lock(&D.mu);
    j->where = CJ_QUEUED;
    TAILQ_INSERT_TAIL(kind == CJ_DEMAND ? &D.demand : &D.background, j, qlink);
    pthread_cond_signal(&D.cv);
    pthread_mutex_unlock(&D.mu);
    return j;
}

/* A reader now waits for a background load: it goes first. */
static void job_promote(cjob_t *j) {
    if (j->kind == CJ_DEMAND) return;
    pthread_mutex_lock(&D.mu);
    if (j->where == CJ_QUEUED) {
        TAILQ_REMOVE(&D.background, j, qlink);
        TAILQ_INSERT_TAIL(&D.demand, j, qlink);
    }
    pthread_mutex_unlock(&D.mu);
    /* It keeps counting as what it was started as (read-ahead loads that a
     * reader then waited for still were read-ahead). */
}

static void run_job(cjob_t *j) {
    j->start_us = mono_us();
    j->get_us = -1;
    size_t size = (size_t)j->seg.size;
    uint8_t *buf = malloc(size);
    if (!buf) {
        j->status = CP_LOAD_ERROR;
        snprintf(j->err, sizeof j->err, "out of memory for %zu bytes", size);
        return;
    }
    objstore_op_t op;
    memset(&op, 0, sizeof op);
    op.kind = OBJ_GET;
    op.key = j->key;
    op.buf = buf;
    op.cap = size;
    objstore_run(D.store, &op, 1);
    j->end_us = mono_us();
    j->get_us = j->end_us - j->start_us;
    j->get_status = op.status;
    if (op.status != OBJ_OK) {
        free(buf);
        j->status = op.status == OBJ_NOT_FOUND ? CP_LOAD_NOT_FOUND : CP_LOAD_ERROR;
        snprintf(j->err, sizeof j->err, "%s", op.status == OBJ_NOT_FOUND ? "not found" : op.err);
        return;
    }
    seg_info_t info;
    int rc = op.out_len == size ? seg_parse(buf, size, &info) : SEG_ETRUNC;
    if (rc != SEG_OK || info.base_offset != j->seg.base || info.last_offset != j->seg.last) {
        free(buf);
        j->status = CP_LOAD_ERROR;
        if (op.out_len != size)
            snprintf(j->err, sizeof j->err, "object has %zu bytes, metadata says %zu", op.out_len, size);
        else if (rc != SEG_OK)
            snprintf(j->err, sizeof j->err, "corrupt segment: %s (at byte %llu)", seg_strerror(rc),
                     (unsigned long long)info.err_pos);
        else
            snprintf(j->err, sizeof j->err, "segment holds offsets %lld..%lld, metadata says %lld..%lld",
                     (long long)info.base_offset, (long long)info.last_offset, (long long)j->seg.base,
                     (long long)j->seg.last);
        return;
    }
    j->buf = buf;
    j->len = size;
    j->crc = info.crc;
    j->status = CP_LOAD_OK;
    j->end_us = mono_us();
}

static void *worker_main(void *arg) {
    pthread_mutex_lock(&D.mu);
    for (;;) {
        while (!D.stop && TAILQ_EMPTY(&D.demand) && TAILQ_EMPTY(&D.background)) pthread_cond_wait(&D.cv, &D.mu);
        if (D.stop) break;
        struct cjob_q *q = !TAILQ_EMPTY(&D.demand) ? &D.demand : &D.background;
        cjob_t *j = TAILQ_FIRST(q);
        TAILQ_REMOVE(q, j, qlink);
        j->where = CJ_RUNNING;
        D.busy++;
        pthread_mutex_unlock(&D.mu);

        run_job(j);

        pthread_mutex_lock(&D.mu);
        D.busy--;
        j->where = CJ_DONE;
        TAILQ_INSERT_TAIL(&D.done, j, qlink);
        uint64_t one = 1;
        if (write(D.efd, &one, sizeof one) < 0 && errno != EAGAIN) log_warn("eventfd write: %s", strerror(errno));
    }
    pthread_mutex_unlock(&D.mu);
    return NULL;
}

static void job_free(cjob_t *j) {
    cwaiter_t *w = j->waiters;
    while (w) {
        cwaiter_t *n = w->next;
        free(w);
        w = n;
    }
    free(j->buf);
    free(j);
}

/* Loop: finished loads into the ring, then answers. */
static void done_cb(evutil_socket_t fd, short what, void *arg) {
    uint64_t v;
    if (read(D.efd, &v, sizeof v) < 0 && errno != EAGAIN) log_warn("eventfd read: %s", strerror(errno));
    struct cjob_q list = TAILQ_HEAD_INITIALIZER(list);
    pthread_mutex_lock(&D.mu);
    TAILQ_CONCAT(&list, &D.done, qlink);
    pthread_mutex_unlock(&D.mu);
    cjob_t *j;
    while ((j = TAILQ_FIRST(&list))) {
        TAILQ_REMOVE(&list, j, qlink);
        LIST_REMOVE(j, plink);
        D.npending--;
        if (j->kind != CJ_DEMAND) D.nbackground--;
        if (j->get_us >= 0) { /* kafscale_objstore_*{process="cached",op="get"}: not found is an error too */
            metrics_observe(M_OBJ_SECONDS, (double)j->get_us / 1e6, "cached", "get");
            metrics_add(M_OBJ_OPS, 1, "cached", "get");
            if (j->get_status != OBJ_OK) metrics_add(M_OBJ_ERRORS, 1, "cached", "get");
            else metrics_add(M_OBJ_BYTES, (double)j->seg.size, "cached", "get");
        }
        int status = j->status;
        const char *msg = j->err;
        if (status == CP_LOAD_OK) {
            shm_ring_key_t k = seg_rkey(&j->seg);
            uint32_t load_us = (uint32_t)(j->end_us - j->start_us);
            if (!shm_ring_contains(&D.ring, &k)) {
                int64_t t0 = mono_us();
                int origin = j->kind == CJ_DEMAND ? SHM_ORIGIN_DEMAND
                             : j->kind == CJ_READAHEAD ? SHM_ORIGIN_READAHEAD
                                                       : SHM_ORIGIN_PREFETCH;
                int rc = shm_ring_publish(&D.ring, &k, j->buf, j->len, (uint32_t)origin, load_us, j->crc, NULL);
                if (rc != SHM_OK) {
                    status = CP_LOAD_TOO_BIG;
                    msg = shm_ring_strerror(rc);
                } else {
                    load_us += (uint32_t)(mono_us() - t0);
                    shm_ring_count(&D.ring, SHM_C_load_latency_us, load_us);
                    shm_ring_count_max(&D.ring, SHM_C_load_latency_max_us, load_us);
                    if (j->kind == CJ_READAHEAD) shm_ring_count(&D.ring, SHM_C_readahead_loads, 1);
                    if (j->kind == CJ_PREFETCH) shm_ring_count(&D.ring, SHM_C_prefetch_loads, 1);
                    log_debug("loaded %s (%zu bytes, %u us, %s)", j->key, j->len, load_us,
                              origin == SHM_ORIGIN_DEMAND ? "demand" : origin == SHM_ORIGIN_READAHEAD ? "read-ahead"
                                                                                                      : "prefetch");
                }
            }
        } else {
            shm_ring_count(&D.ring, SHM_C_load_errors, 1);
            log_warn("load of %s failed: %s", j->key, j->err);
        }
        for (cwaiter_t *w = j->waiters; w; w = w->next) reply_loaded(w->c, w->id, status, msg);
        job_free(j);
    }
}

/* Read-ahead: the first KAFSCALE_READAHEAD_SEGMENTS of `next` that are
 * neither in the ring nor coming. */
static void read_ahead(const cseg_t *next, int n) {
    for (int i = 0; i < n && i < D.readahead; i++) {
        const cseg_t *s = &next[i];
        shm_ring_key_t k = seg_rkey(s);
        if (!fits(s) || pending_find(s) || shm_ring_contains(&D.ring, &k)) continue;
        if (!job_start(s, CJ_READAHEAD)) break;
    }
}

/* A reader is at segment s of its partition (LOAD or HINT). */
static void reader_at(const cseg_t *s, const cseg_t *next, int n) {
    cpart_t *p = part_get(s->topic, s->partition, true);
    if (p) {
        p->reader_base = s->base;
        p->reader_ms = mono_ms();
        part_learn(p, s);
        for (int i = 0; i < n; i++) part_learn(p, &next[i]);
    }
    read_ahead(next, n);
}

/* The flusher committed s: prefetch it when a reader is close behind. */
static void on_segment(const cseg_t *s) {
    cpart_t *p = part_get(s->topic, s->partition, true);
    if (!p) return;
    part_learn(p, s);
    if (!p->reader_ms || mono_ms() - p->reader_ms > PREFETCH_READER_MS || s->base <= p->reader_base) return;
    int behind = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->known[i].base > p->reader_base && p->known[i].base <= s->base) behind++;
    if (behind > D.readahead) return;
    shm_ring_key_t k = seg_rkey(s);
    if (!fits(s) || pending_find(s) || shm_ring_contains(&D.ring, &k)) return;
    job_start(s, CJ_PREFETCH);
}

static void on_load(cclient_t *c, kr_t *r) {
    uint32_t id = kr_u32(r);
    cseg_t s, next[CPROTO_MAX_NEXT];
    if (!rd_seg(r, &s)) {
        log_warn("malformed LOAD from pid %d", c->pid);
        reply_loaded(c, id, CP_LOAD_ERROR, "malformed LOAD");
        return;
    }
    int n = (uint8_t)kr_i8(r);
    if (n > CPROTO_MAX_NEXT) n = CPROTO_MAX_NEXT;
    int got = 0;
    for (int i = 0; i < n; i++)
        if (rd_seg(r, &next[got])) got++;
    shm_ring_count(&D.ring, SHM_C_requests, 1);
    shm_ring_key_t k = seg_rkey(&s);
    if (shm_ring_contains(&D.ring, &k)) {
        reply_loaded(c, id, CP_LOAD_OK, "");
    } else if (!fits(&s)) {
        reply_loaded(c, id, CP_LOAD_TOO_BIG, "segment larger than half the ring (KAFSCALE_CACHE_BYTES)");
    } else {
        cjob_t *j = pending_find(&s);
        if (j) job_promote(j);
        else j = job_start(&s, CJ_DEMAND);
        cwaiter_t *w = j ? calloc(1, sizeof *w) : NULL;
        if (!w) {
            reply_loaded(c, id, CP_LOAD_BUSY, "load queue full");
        } else {
            w->c = c;
            w->id = id;
            w->next = j->waiters;
            j->waiters = w;
        }
    }
    reader_at(&s, next, got);
}

/* METRICS (cproto.h): this process's series, to one broker connection. */
static void send_metrics(cclient_t *c) {
    objstore_stats_t os;
    objstore_get_stats(D.store, &os);
    metrics_set(M_OBJ_RETRIES, (double)os.retries, "cached");
    metrics_set(M_CACHE_INFLIGHT, (double)D.npending, "shm");
    metrics_sample_process("cached", getpid());
    kw_t w;
    kw_init(&w, 4096);
    metrics_encode(&w);
    if (w.oom || w.len + 1 > CPROTO_MAX_FRAME) log_warn("metrics: %zu bytes do not fit a frame; not sent", w.len);
    else send_frame(c, CP_METRICS, &w);
    kw_free(&w);
}

static void send_welcome(cclient_t *c) {
    kw_t w;
    kw_init(&w, 128);
    kw_u32(&w, CPROTO_VERSION);
    kw_i64(&w, (int64_t)D.ring.generation);
    kw_i64(&w, (int64_t)D.ring.size);
    kw_str(&w, false, kstr_c(D.shm_name));
    kw_i32(&w, (int32_t)getpid());
    kw_i32(&w, D.readahead);
    send_frame(c, CP_WELCOME, &w);
    kw_free(&w);
}

static void on_frame(cclient_t *c, uint8_t type, kr_t *r) {
    switch (type) {
    case CP_HELLO: {
        uint32_t ver = kr_u32(r);
        int role = (uint8_t)kr_i8(r);
        c->node_id = kr_i32(r);
        c->pid = kr_i32(r);
        if (r->err || role < CP_ROLE_BROKER || role > CP_ROLE_FLUSHER || c->role) {
            log_warn("malformed HELLO");
            return;
        }
        c->role = role;
        if (role == CP_ROLE_BROKER) {
            D.nbrokers++;
            log_info("broker %d (pid %d) connected (protocol v%u)", c->node_id, c->pid, ver);
        } else if (role == CP_ROLE_FLUSHER) {
            log_info("flusher (pid %d) connected", c->pid);
        }
        send_welcome(c);
        if (role == CP_ROLE_BROKER) send_metrics(c);
        break;
    }
    case CP_LOAD: on_load(c, r); break;
    case CP_STOP:
        if (c->role != CP_ROLE_BROKER) return;
        if (!D.supervised) {
            log_info("broker %d (pid %d) stops; not supervised, so this cached keeps running", c->node_id, c->pid);
            return;
        }
        log_info("broker %d (pid %d) stops the node: stopping too", c->node_id, c->pid);
        event_base_loopexit(D.base, NULL);
        break;
    case CP_HINT: {
        cseg_t s, next[CPROTO_MAX_NEXT];
        if (!rd_seg(r, &s)) return;
        int n = (uint8_t)kr_i8(r), got = 0;
        if (n > CPROTO_MAX_NEXT) n = CPROTO_MAX_NEXT;
        for (int i = 0; i < n; i++)
            if (rd_seg(r, &next[got])) got++;
        reader_at(&s, next, got);
        break;
    }
    case CP_STATS: {
        uint64_t hits = (uint64_t)kr_i64(r), misses = (uint64_t)kr_i64(r), lapped = (uint64_t)kr_i64(r),
                 fallbacks = (uint64_t)kr_i64(r);
        if (r->err) return;
        shm_ring_count(&D.ring, SHM_C_hits, hits);
        shm_ring_count(&D.ring, SHM_C_misses, misses);
        shm_ring_count(&D.ring, SHM_C_lapped, lapped);
        shm_ring_count(&D.ring, SHM_C_fallbacks, fallbacks);
        break;
    }
    case CP_SEGMENT: {
        cseg_t s;
        if (rd_seg(r, &s)) on_segment(&s);
        break;
    }
    default: log_warn("unknown frame type %u from pid %d", type, c->pid);
    }
}

static void client_free(cclient_t *c) {
    KS_ASSERT(c->magic == CCLIENT_MAGIC);
    /* Its waiters go; the loads themselves go on (others may want them). */
    cjob_t *j;
    LIST_FOREACH(j, &D.pending, plink) {
        cwaiter_t **pp = &j->waiters;
        while (*pp) {
            if ((*pp)->c == c) {
                cwaiter_t *w = *pp;
                *pp = w->next;
                free(w);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    if (c->role == CP_ROLE_BROKER) {
        D.nbrokers--;
        D.last_broker_ms = mono_ms();
        log_info("broker %d (pid %d) disconnected", c->node_id, c->pid);
    }
    LIST_REMOVE(c, link);
    bufferevent_free(c->bev);
    c->magic = 0;
    free(c);
}

static void client_read_cb(struct bufferevent *bev, void *arg) {
    cclient_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        uint8_t szb[4];
        if (evbuffer_copyout(in, szb, 4) < 4) return;
        uint32_t len = kbe32(szb);
        if (len < 1 || len > CPROTO_MAX_FRAME) {
            log_warn("bad frame length %u from pid %d; closing", len, c->pid);
            client_free(c);
            return;
        }
        if (evbuffer_get_length(in) < 4 + (size_t)len) return;
        evbuffer_drain(in, 4);
        uint8_t *frame = evbuffer_pullup(in, len);
        if (!frame) return;
        kr_t r = kr_init(frame + 1, len - 1);
        on_frame(c, frame[0], &r);
        evbuffer_drain(in, len);
    }
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg) {
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) client_free(arg);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg) {
    cclient_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->magic = CCLIENT_MAGIC;
    c->bev = bufferevent_socket_new(D.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    LIST_INSERT_HEAD(&D.clients, c, link);
    bufferevent_setcb(c->bev, client_read_cb, NULL, client_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Every second: heartbeat and METRICS to the brokers. A supervised cached
 * goes when no broker has been connected for the linger time, or at once
 * when its socket was removed or replaced (the data or run dir was wiped,
 * or another cached took the name): no broker can reach it any more, and
 * the ring it holds would keep a new cached of the node from starting. */
static void tick_cb(evutil_socket_t fd, short what, void *arg) {
    shm_ring_heartbeat(&D.ring, (uint64_t)unix_ms());
    cclient_t *c, *next;
    for (c = LIST_FIRST(&D.clients); c; c = next) {
        next = LIST_NEXT(c, link);
        if (c->role == CP_ROLE_BROKER) send_metrics(c);
    }
    if (!D.supervised) return;
    struct stat st;
    if (stat(D.sock_path, &st) != 0 || st.st_ino != D.sock_ino || st.st_dev != D.sock_dev) {
        log_warn("socket %s was removed or replaced: no broker can reach this cached; exiting", D.sock_path);
        event_base_loopexit(D.base, NULL);
    } else if (D.nbrokers == 0 && mono_ms() - D.last_broker_ms > D.linger_ms) {
        log_info("no broker connected for %lld ms: exiting", (long long)(mono_ms() - D.last_broker_ms));
        event_base_loopexit(D.base, NULL);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    log_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopexit(D.base, NULL);
}

/* Stops the workers; true when they all stopped (none stuck in a GET). */
static bool workers_stop(void) {
    pthread_mutex_lock(&D.mu);
    D.stop = true;
    pthread_cond_broadcast(&D.cv);
    pthread_mutex_unlock(&D.mu);
    for (int i = 0; i < 100; i++) { /* up to 2 s for loads in flight */
        pthread_mutex_lock(&D.mu);
        int busy = D.busy;
        pthread_mutex_unlock(&D.mu);
        if (!busy) break;
        usleep(20000);
    }
    pthread_mutex_lock(&D.mu);
    int busy = D.busy;
    pthread_mutex_unlock(&D.mu);
    if (busy) return false;
    for (int i = 0; i < D.nthreads; i++) pthread_join(D.threads[i], NULL);
    return true;
}

/* Removes our socket, unless another cached bound the name since. */
static void unlink_own_socket(void) {
    struct stat st;
    if (stat(D.sock_path, &st) == 0 && st.st_ino == D.sock_ino && st.st_dev == D.sock_dev) unlink(D.sock_path);
}

int cached_main(bool supervised) {
    log_init("cached");
    signal(SIGPIPE, SIG_IGN);
    /* SIGTERM / SIGINT wait until the loop handles them (a clean stop that
     * removes the ring): one arriving while the ring is being set up would
     * otherwise kill us half-way and leave the ring in /dev/shm. */
    sigset_t stopsigs;
    sigemptyset(&stopsigs);
    sigaddset(&stopsigs, SIGTERM);
    sigaddset(&stopsigs, SIGINT);
    sigprocmask(SIG_BLOCK, &stopsigs, NULL);
    D.supervised = supervised;
    const char *data_dir = env_str("KAFSCALE_DATA_DIR", "./data");
    char run_default[1100];
    snprintf(run_default, sizeof run_default, "%s/run", data_dir);
    const char *run_dir = env_str("KAFSCALE_RUN_DIR", run_default);
    int32_t node_id = (int32_t)env_int("KAFSCALE_BROKER_ID", 0, 0, INT32_MAX);
    int64_t cache_bytes = env_size("KAFSCALE_CACHE_BYTES", 256LL << 20, 4LL << 20, 1LL << 40);
    int64_t entries = env_int("KAFSCALE_CACHE_ENTRIES", 0, 0, 1 << 20);
    D.readahead = (int)env_int("KAFSCALE_READAHEAD_SEGMENTS", 2, 0, CPROTO_MAX_NEXT);
    D.nthreads = (int)env_int("KAFSCALE_CACHED_THREADS", 4, 1, 64);
    D.linger_ms = env_int("KAFSCALE_CACHED_LINGER_MS", 15000, 0, 86400000);
    snprintf(D.ns, sizeof D.ns, "%s", env_str("KAFSCALE_S3_NAMESPACE", "default"));
    char err[512];
    mkdir(data_dir, 0755);
    if (shm_ring_name(D.shm_name, sizeof D.shm_name, getenv("KAFSCALE_SHM_NAME"), data_dir, node_id, err,
                      sizeof err) != 0) {
        fprintf(stderr, "kafscale: bad value for KAFSCALE_SHM_NAME: %s\n", err);
        return 2;
    }
    snprintf(D.sock_path, sizeof D.sock_path, "%s/%s", run_dir, CPROTO_SOCK_NAME);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(D.sock_path) >= sizeof sun.sun_path) {
        log_error("KAFSCALE_RUN_DIR: '%s' is too long for a UNIX socket path", run_dir);
        return 2;
    }

    objstore_config_t scfg;
    objstore_config_from_env(&scfg, data_dir);
    D.store = objstore_open(&scfg, err, sizeof err);
    if (!D.store) {
        log_error("cannot open the object store: %s", err);
        return 1;
    }

    /* The ring: the lock on it makes us the only writer. */
    shm_ring_geom_t geom = {.total_size = (uint64_t)cache_bytes, .nentries = (uint32_t)entries};
    bool adopted;
    int rc = shm_ring_create(&D.ring, D.shm_name, &geom, &adopted, err, sizeof err);
    /* Started by a broker that found no cached on its socket: a writer that
     * still holds the ring is on its way out (a node stopping, or one whose
     * socket is gone, see tick_cb). Wait a little for it. */
    for (int i = 0; supervised && rc == SHM_EBUSY && i < 30; i++) {
        usleep(100000);
        rc = shm_ring_create(&D.ring, D.shm_name, &geom, &adopted, err, sizeof err);
    }
    if (rc != SHM_OK) {
        log_error("cannot take the ring: %s", err);
        objstore_close(D.store);
        return rc == SHM_EBUSY ? 3 : 1;
    }
    log_info("%s ring %s: %llu bytes, %u entries, %llu data bytes, generation %llu", adopted ? "adopted" : "created",
             D.shm_name, (unsigned long long)D.ring.size, D.ring.nentries, (unsigned long long)D.ring.data_size,
             (unsigned long long)D.ring.generation);
    if (adopted)
        log_info("the ring is warm: %llu segment(s), %llu bytes kept",
                 (unsigned long long)D.ring.hdr->live_entries, (unsigned long long)D.ring.hdr->live_bytes);

    D.base = event_base_new();
    LIST_INIT(&D.pending);
    LIST_INIT(&D.clients);
    TAILQ_INIT(&D.demand);
    TAILQ_INIT(&D.background);
    TAILQ_INIT(&D.done);
    pthread_mutex_init(&D.mu, NULL);
    pthread_cond_init(&D.cv, NULL);
    D.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (D.efd < 0) {
        log_error("eventfd: %s", strerror(errno));
        shm_ring_writer_close(&D.ring, true); /* a cached that cannot run leaves no ring behind */
        return 1;
    }
    D.done_ev = event_new(D.base, D.efd, EV_READ | EV_PERSIST, done_cb, NULL);
    event_add(D.done_ev, NULL);
    D.threads = calloc((size_t)D.nthreads, sizeof *D.threads);
    for (int i = 0; i < D.nthreads; i++) {
        if (pthread_create(&D.threads[i], NULL, worker_main, NULL) != 0) {
            log_error("cannot start a worker thread");
            shm_ring_writer_close(&D.ring, true);
            return 1;
        }
    }

    mkdir(run_dir, 0755);
    strcpy(sun.sun_path, D.sock_path);
    unlink(D.sock_path); /* a socket left by a cached that died: the ring lock says we are the one */
    D.listener = evconnlistener_new_bind(D.base, accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                         (struct sockaddr *)&sun, (int)sizeof sun);
    if (!D.listener) {
        log_error("cannot listen on %s: %s", D.sock_path, strerror(errno));
        shm_ring_writer_close(&D.ring, true);
        return 1;
    }
    struct stat sst;
    if (stat(D.sock_path, &sst) == 0) {
        D.sock_dev = (uint64_t)sst.st_dev;
        D.sock_ino = (uint64_t)sst.st_ino;
    }
    D.last_broker_ms = mono_ms();
    D.tick_ev = event_new(D.base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval one = {1, 0};
    event_add(D.tick_ev, &one);
    struct event *sigint = evsignal_new(D.base, SIGINT, on_signal, NULL);
    struct event *sigterm = evsignal_new(D.base, SIGTERM, on_signal, NULL);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    sigprocmask(SIG_UNBLOCK, &stopsigs, NULL); /* one that came meanwhile is delivered now */
    log_info("kafscale-cached ready: %s store, socket %s, read-ahead %d segment(s), %d thread(s)%s",
             objstore_backend(D.store), D.sock_path, D.readahead, D.nthreads, supervised ? ", supervised" : "");

    event_base_dispatch(D.base);

    /* Clean stop: nobody reads a stopped node's ring, so it goes. */
    evconnlistener_free(D.listener);
    unlink_own_socket();
    const shm_ring_hdr_t *h = D.ring.hdr;
    log_info("stopping: %llu hits, %llu misses, %llu loads (%llu bytes), %llu evictions, %llu lapped, %llu load errors",
             (unsigned long long)h->counters[SHM_C_hits], (unsigned long long)h->counters[SHM_C_misses],
             (unsigned long long)h->counters[SHM_C_loads], (unsigned long long)h->counters[SHM_C_bytes_loaded],
             (unsigned long long)h->counters[SHM_C_evictions], (unsigned long long)h->counters[SHM_C_lapped],
             (unsigned long long)h->counters[SHM_C_load_errors]);
    shm_ring_writer_close(&D.ring, true);
    while (!LIST_EMPTY(&D.clients)) client_free(LIST_FIRST(&D.clients));
    bool stopped = workers_stop();
    if (stopped) {
        /* Everything is ours again: free it (leak checkers stay quiet). */
        cjob_t *j;
        while ((j = LIST_FIRST(&D.pending))) {
            LIST_REMOVE(j, plink);
            job_free(j);
        }
        for (int b = 0; b < NPART_BUCKETS; b++)
            while (D.parts[b]) {
                cpart_t *p = D.parts[b];
                D.parts[b] = p->next;
                free(p->known);
                free(p);
            }
        free(D.threads);
        objstore_close(D.store);
    }
    event_free(D.done_ev);
    event_free(D.tick_ev);
    event_free(sigint);
    event_free(sigterm);
    event_base_free(D.base);
    close(D.efd);
    log_info("stopped");
    return 0;
}
