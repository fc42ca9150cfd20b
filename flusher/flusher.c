/* flusher.c - kafscale-flusher: turns the batches the broker accepted into
 * segments in the object store and commits them to metadata.
 *
 * One event loop. The broker connects to <run dir>/flusher.sock and streams
 * APPEND frames (fproto.h); each partition's batches are copied once into
 * that partition's pending buffer. A flush cycle starts when the flush
 * interval has passed since the oldest pending byte, when a partition holds
 * KAFSCALE_SEGMENT_BYTES, or at once when the broker says producers are
 * waiting (FLUSH). A cycle moves each dirty partition's pending buffer out
 * (it becomes the partition's in-flight buffer, fbuf; the partition goes on
 * with its spare, so later APPENDs never move memory an upload points into),
 * builds one segment per partition there (more when a partition holds more
 * than a segment's worth) and hands every .kfs and .index of the cycle to ONE
 * upload thread (objstore_run, in parallel). The loop keeps reading the
 * broker meanwhile. When the worker is done (eventfd) the loop commits all
 * segments that were uploaded in ONE metadata record and only then reports
 * DURABLE; committed bytes are dropped, the rest of a failed upload goes back
 * in front of what arrived since (retry with backoff), and the in-flight
 * buffer becomes the spare again. At most one cycle is in flight: one asked
 * for meanwhile (FLUSH, a full segment, the interval) starts when it
 * completes and takes everything that arrived (group commit). A partition
 * that stops being ours while it uploads (UNLEAD, LEAD, a fenced commit)
 * bumps its gen: its in-flight segments are neither committed nor kept. LEAD
 * and DELTOPIC of a partition in flight, and SIGTERM, wait for the cycle.
 *
 * A restarted flusher replays the metadata journals: batches the broker sends
 * again below a partition's committed end are dropped and reported durable.
 * Objects that no committed segment names (uploads of a cycle that crashed
 * before its commit) are deleted at start. Retention runs every few seconds;
 * DeleteRecords (DELRECORDS from the broker) moves a log start at once.
 */
#include "flusher.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "batch.h"
#include "config.h"
#include "cproto.h"
#include "fproto.h"
#include "kbuf.h"
#include "log.h"
#include "metrics.h"
#include "segment.h"

flusher_t F;

/* Monotonic microseconds, for durations (metrics). */
static int64_t now_us_f(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- topics and partitions ---- */

static uint32_t name_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static ftopic_t *topic_get(const char *name, size_t n) {
    for (ftopic_t *t = F.topics[name_hash(name, n) % FTOPIC_BUCKETS]; t; t = t->next)
        if (strlen(t->name) == n && !memcmp(t->name, name, n)) return t;
    return NULL;
}

/* The partitions of a topic that were at [old_lo, old_hi) moved to `now`
 * (a topic grew: CreatePartitions): pending ones are linked from F.dirty
 * through their dirty_next, so re-point every link into the old array. */
static void dirty_list_moved(uintptr_t old_lo, uintptr_t old_hi, fpart_t *now) {
    for (fpart_t **pp = &F.dirty; *pp; pp = &(*pp)->dirty_next) {
        uintptr_t a = (uintptr_t)*pp;
        if (a >= old_lo && a < old_hi) *pp = now + (a - old_lo) / sizeof(fpart_t);
    }
}

/* Finds or creates a topic with at least np partitions (more partitions
 * come with TOPIC frames after CreatePartitions). */
static ftopic_t *topic_ensure(const char *name, size_t n, int32_t np) {
    ftopic_t *t = topic_get(name, n);
    if (!t) {
        if (n >= sizeof t->name) return NULL;
        t = calloc(1, sizeof *t);
        if (!t) return NULL;
        memcpy(t->name, name, n);
        t->retention_ms = 7LL * 24 * 3600 * 1000;
        t->retention_bytes = -1;
        t->segment_bytes = F.segment_bytes;
        uint32_t b = name_hash(name, n) % FTOPIC_BUCKETS;
        t->next = F.topics[b];
        F.topics[b] = t;
    }
    if (np > t->np) {
        uintptr_t old_lo = (uintptr_t)t->parts, old_hi = old_lo + (size_t)t->np * sizeof *t->parts;
        fpart_t *np_ = realloc(t->parts, (size_t)np * sizeof *np_);
        if (!np_) return NULL;
        memset(np_ + t->np, 0, (size_t)(np - t->np) * sizeof *np_);
        for (int32_t i = t->np; i < np; i++) {
            np_[i].topic = t;
            np_[i].partition = i;
        }
        t->parts = np_;
        t->np = np;
        for (int32_t i = 0; i < np; i++) t->parts[i].topic = t; /* realloc moved them */
        if ((uintptr_t)np_ != old_lo) dirty_list_moved(old_lo, old_hi, np_);
    }
    return t;
}

static void part_free(fpart_t *p) {
    free(p->buf);
    free(p->fbuf);
    free(p->segs);
    memset(p, 0, sizeof *p);
}

static void topic_drop(ftopic_t *t) {
    for (ftopic_t **pp = &F.topics[name_hash(t->name, strlen(t->name)) % FTOPIC_BUCKETS]; *pp; pp = &(*pp)->next)
        if (*pp == t) { *pp = t->next; break; }
    for (int32_t i = 0; i < t->np; i++) part_free(&t->parts[i]);
    free(t->parts);
    free(t);
}

static void part_add_seg(fpart_t *p, const meta_segment_t *s) {
    if (p->nsegs == p->segs_cap) {
        size_t cap = p->segs_cap ? p->segs_cap * 2 : 16;
        meta_segment_t *n = realloc(p->segs, cap * sizeof *n);
        if (!n) return;
        p->segs = n;
        p->segs_cap = cap;
    }
    p->segs[p->nsegs++] = *s;
    if (s->last_offset + 1 > p->committed_end) p->committed_end = s->last_offset + 1;
}

/* ---- talking to the broker ---- */

static void send_frame(uint8_t type, const void *payload, size_t len) {
    if (!F.broker) return;
    uint8_t hdr[5];
    kput32(hdr, (uint32_t)(len + 1));
    hdr[4] = type;
    struct evbuffer *out = bufferevent_get_output(F.broker);
    evbuffer_add(out, hdr, 5);
    if (len) evbuffer_add(out, payload, len);
}

/* DURABLE: p is committed up to end (exclusive); s, when not NULL, is the
 * segment that got it there. */
static void send_durable_at(fpart_t *p, int64_t end, const meta_segment_t *s) {
    kw_t w;
    kw_init(&w, 128);
    kw_str(&w, false, kstr_c(p->topic->name));
    kw_i32(&w, p->partition);
    kw_i64(&w, end);
    kw_i64(&w, s ? s->base_offset : -1);
    kw_i64(&w, s ? s->size : 0);
    kw_i64(&w, s ? s->max_timestamp : -1);
    kw_raw(&w, p->topic->id, 16);
    send_frame(FP_DURABLE, w.buf, w.len);
    kw_free(&w);
}

static void send_durable(fpart_t *p, const meta_segment_t *s) { send_durable_at(p, p->committed_end, s); }

static void send_logstart(fpart_t *p) {
    kw_t w;
    kw_init(&w, 64);
    kw_str(&w, false, kstr_c(p->topic->name));
    kw_i32(&w, p->partition);
    kw_i64(&w, p->log_start);
    kw_raw(&w, p->topic->id, 16);
    send_frame(FP_LOGSTART, w.buf, w.len);
    kw_free(&w);
}

/* ---- cluster: partitions the broker leads (fproto.h LEAD/UNLEAD/LEASE) ---- */

/* The broker that started us died (see on_signal). */
static bool broker_died(void) { return F.cluster && F.parent > 1 && getppid() != F.parent; }

static int64_t mono_ms_f(void) { return now_us_f() / 1000; }

/* Forgets what is pending for p (it is not ours: nobody may commit it),
 * and what a cycle in flight uploads for it (gen: dropped when it completes). */
static void part_drop_pending(fpart_t *p) {
    F.pending_bytes -= p->len < F.pending_bytes ? p->len : F.pending_bytes;
    p->len = 0;
    p->gen++;
}

static void cycle_wait(void);

static void part_unlead(fpart_t *p) {
    p->fence_rev = 0;
    meta_set_fence(F.meta, p->topic->name, p->partition, 0);
    part_drop_pending(p);
}

static void send_fenced(fpart_t *p, int64_t rev) {
    kw_t w;
    kw_init(&w, 64);
    kw_str(&w, false, kstr_c(p->topic->name));
    kw_i32(&w, p->partition);
    kw_i64(&w, rev);
    send_frame(FP_FENCED, w.buf, w.len);
    kw_free(&w);
}

/* A commit for p failed the fence: another broker leads it now. */
static void part_fenced(fpart_t *p) {
    int64_t rev = p->fence_rev;
    log_warn("%s[%d]: another broker took the partition over: %zu pending byte(s) are not ours to commit",
             p->topic->name, p->partition, p->len);
    part_unlead(p);
    send_fenced(p, rev);
}

static void lead_segment_cb(void *arg, const meta_segment_t *s) {
    fpart_t *p = arg;
    static const uint8_t zero[16];
    if (s->partition != p->partition || strcmp(s->topic, p->topic->name)) return;
    if (memcmp(s->topic_id, zero, 16) && memcmp(p->topic->id, zero, 16) && memcmp(s->topic_id, p->topic->id, 16))
        return; /* an older topic of the same name */
    part_add_seg(p, s);
}

static void lead_logstart_cb(void *arg, const char *topic, int32_t partition, int64_t start) {
    fpart_t *p = arg;
    if (partition != p->partition || strcmp(topic, p->topic->name)) return;
    p->log_start = start;
    if (start > p->committed_end) p->committed_end = start;
}

/* Object keys collected from a listing (orphans, a deleted topic's objects). */
typedef struct key_list { char **keys; size_t n, cap; } key_list_t;

static int key_list_add(key_list_t *l, const char *key) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **nk = realloc(l->keys, cap * sizeof *nk);
        if (!nk) return 1;
        l->keys = nk;
        l->cap = cap;
    }
    l->keys[l->n] = strdup(key);
    if (!l->keys[l->n]) return 1;
    l->n++;
    return 0;
}

typedef struct lead_orphans { fpart_t *p; key_list_t l; } lead_orphans_t;

static int lead_orphan_cb(const char *key, uint64_t size, void *arg) {
    lead_orphans_t *o = arg;
    seg_key_info_t k;
    if (seg_key_parse(key, &k) != SEG_OK || k.base_offset < o->p->committed_end) return 0;
    return key_list_add(&o->l, key);
}

/* LEAD: the broker claimed p. Load its committed state from etcd, remove
 * uploads a predecessor never committed, report every segment (DURABLE)
 * and the end (LED). */
static void on_lead(kr_t *r) {
    kstr_t topic = kr_str(r, false);
    int32_t partition = kr_i32(r);
    int32_t epoch = kr_i32(r);
    int64_t rev = kr_i64(r);
    if (r->err || topic.len <= 0 || partition < 0 || rev <= 0) { log_error("malformed LEAD from broker"); return; }
    ftopic_t *t = topic_ensure(topic.p, (size_t)topic.len, partition + 1);
    if (!t) return;
    fpart_t *p = &t->parts[partition];
    part_drop_pending(p);
    /* An upload in flight for it must land before the orphan listing below
     * (it is dropped uncommitted: gen changed). */
    if (p->inflight) cycle_wait();
    p->leader_epoch = epoch;
    p->nsegs = 0;
    p->committed_end = p->log_start = 0;
    char err[512];
    meta_load_cb_t cb = {NULL, lead_segment_cb, lead_logstart_cb, p};
    int rc = -1;
    for (int tries = 0; tries < 5 && rc; tries++) {
        if (tries) usleep(200000);
        rc = meta_load_partition(F.meta, t->name, partition, &cb, err, sizeof err);
        if (rc) {
            log_warn("%s[%d]: cannot load the committed segments: %s", t->name, partition, err);
            p->nsegs = 0;
            p->committed_end = p->log_start = 0;
        }
    }
    if (rc) {
        /* Tell the broker it cannot lead it now: it gives the claim back
         * and claims again. */
        log_warn("%s[%d]: giving the claim back", t->name, partition);
        p->fence_rev = 0;
        meta_set_fence(F.meta, t->name, partition, 0);
        send_fenced(p, rev);
        return;
    }
    p->fence_rev = rev;
    meta_set_fence(F.meta, t->name, partition, rev);
    lead_orphans_t o = {.p = p};
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s/%s/%d/", F.ns, t->name, partition);
    if (objstore_list(F.store, prefix, lead_orphan_cb, &o, err, sizeof err) != OBJ_OK)
        log_warn("%s[%d]: cannot list uncommitted objects: %s", t->name, partition, err);
    for (size_t i = 0; i < o.l.n; i++) {
        if (objstore_delete(F.store, o.l.keys[i], err, sizeof err) == OBJ_OK)
            log_info("deleted %s: uploaded by an earlier leader, never committed", o.l.keys[i]);
        free(o.l.keys[i]);
    }
    free(o.l.keys);
    for (size_t i = 0; i < p->nsegs; i++) send_durable_at(p, p->segs[i].last_offset + 1, &p->segs[i]);
    kw_t w;
    kw_init(&w, 128);
    kw_str(&w, false, kstr_c(t->name));
    kw_i32(&w, partition);
    kw_i64(&w, rev);
    kw_i64(&w, p->committed_end);
    kw_i64(&w, p->log_start);
    send_frame(FP_LED, w.buf, w.len);
    kw_free(&w);
    log_info("%s[%d]: leading (epoch %d): %zu committed segment(s), end %lld", t->name, partition, epoch, p->nsegs,
             (long long)p->committed_end);
}

static void on_unlead(kr_t *r) {
    kstr_t topic = kr_str(r, false);
    int32_t partition = kr_i32(r);
    if (r->err || topic.len <= 0 || partition < 0) { log_error("malformed UNLEAD from broker"); return; }
    ftopic_t *t = topic_get(topic.p, (size_t)topic.len);
    if (!t || partition >= t->np) return;
    fpart_t *p = &t->parts[partition];
    part_unlead(p);
    p->nsegs = 0;
    p->committed_end = p->log_start = 0;
}

static void set_store_health(bool healthy, const char *msg) {
    if (healthy == F.store_healthy) return;
    F.store_healthy = healthy;
    if (healthy) log_info("object store is reachable again");
    else log_warn("object store is failing: %s", msg);
    kw_t w;
    kw_init(&w, 64);
    kw_i8(&w, healthy ? 1 : 0);
    kw_str(&w, false, kstr_c(msg ? msg : ""));
    send_frame(FP_STORE, w.buf, w.len);
    kw_free(&w);
}

/* ---- telling kafscale-cached (common/cproto.h) ---- */

/* cached prefetches new segments for readers close behind them, so it hears
 * of every committed segment: one SEGMENT frame on a plain non-blocking
 * socket to <run dir>/cached.sock. Best effort and never in the way: when
 * cached is not there, or not reading, the notice is dropped (the socket
 * closed, retried a second later); the broker's loads carry what cached
 * needs to read ahead anyway. */
static struct {
    bool inited, off;
    int fd;
    int64_t next_try_ms;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} CN = {.fd = -1};

static void cached_notify(const meta_segment_t *s) {
    if (!CN.inited) {
        CN.inited = true;
        const char *data_dir = env_str("KAFSCALE_DATA_DIR", "./data");
        char run_default[1100];
        snprintf(run_default, sizeof run_default, "%s/run", data_dir);
        const char *run_dir = env_str("KAFSCALE_RUN_DIR", run_default);
        CN.off = !env_bool("KAFSCALE_CACHED", true) ||
                 strlen(run_dir) + 1 + strlen(CPROTO_SOCK_NAME) >= sizeof CN.path;
        snprintf(CN.path, sizeof CN.path, "%s/%s", run_dir, CPROTO_SOCK_NAME);
    }
    if (CN.off) return;
    kw_t w;
    kw_init(&w, 128);
    if (CN.fd < 0) {
        int64_t now = now_ms_f();
        if (now < CN.next_try_ms) goto out;
        CN.next_try_ms = now + 1000;
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        memcpy(sun.sun_path, CN.path, sizeof CN.path);
        CN.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (CN.fd < 0) goto out;
        if (connect(CN.fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
            close(CN.fd);
            CN.fd = -1;
            goto out;
        }
        kw_i32(&w, 0);
        kw_i8(&w, CP_HELLO);
        kw_u32(&w, CPROTO_VERSION);
        kw_i8(&w, CP_ROLE_FLUSHER);
        kw_i32(&w, -1);
        kw_i32(&w, (int32_t)getpid());
        kput32(w.buf, (uint32_t)(w.len - 4));
    }
    size_t at = w.len;
    kw_i32(&w, 0);
    kw_i8(&w, CP_SEGMENT);
    kw_str(&w, false, kstr_c(s->topic));
    kw_raw(&w, s->topic_id, 16);
    kw_i32(&w, s->partition);
    kw_i64(&w, s->base_offset);
    kw_i64(&w, s->last_offset);
    kw_i64(&w, s->size);
    kput32(w.buf + at, (uint32_t)(w.len - at - 4));
    if (send(CN.fd, w.buf, w.len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)w.len) {
        close(CN.fd); /* gone, or not reading: a part of a frame must not stay behind */
        CN.fd = -1;
    }
out:
    kw_free(&w);
}

/* ---- the flush cycle ---- */

static void schedule_cycle(int64_t delay_ms);
static void broker_read_resume(void);

static void mark_dirty(fpart_t *p) {
    if (!p->dirty) {
        p->dirty = true;
        p->dirty_next = F.dirty;
        F.dirty = p;
    }
}

/* A partition whose pending bytes the cycle in flight moved to its fbuf.
 * Named by topic and index: a topic that grows (CreatePartitions) moves its
 * partitions while the upload runs; topics themselves stay put (DELTOPIC
 * waits for the cycle). */
typedef struct cycle_part {
    ftopic_t *topic;
    int32_t idx;
    uint64_t gen;               /* p->gen at the move: changed = not ours any more */
    size_t done_to;             /* bytes of fbuf committed */
} cycle_part_t;

static fpart_t *cp_part(const cycle_part_t *c) { return &c->topic->parts[c->idx]; }

/* Upload job for one segment. */
typedef struct seg_job {
    size_t cp;                  /* F.cparts[cp]: the partition */
    size_t body_from, body_to;  /* byte range of the partition's fbuf in this segment */
    seg_builder_t b;
    seg_result_t res;
    meta_segment_t meta;
    char kfs_key[SEG_KEY_MAX], idx_key[SEG_KEY_MAX];
    struct iovec idx_iov;
    bool ok;
} seg_job_t;

/* The upload worker: runs one cycle's objstore_run at a time on F.store
 * (objstore.h: safe to share between threads) and pokes an eventfd when it
 * is done; the loop does everything else. */
static struct {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, go, done, quit;
    objstore_op_t *ops;
    int n;
    int failed;
    int64_t up_us;
    int efd;
    struct event *ev;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .efd = -1};

static void *upload_worker(void *arg) {
    (void)arg;
    pthread_mutex_lock(&W.mu);
    for (;;) {
        while (!W.go && !W.quit) pthread_cond_wait(&W.cv, &W.mu);
        if (!W.go) break;
        W.go = false;
        objstore_op_t *ops = W.ops;
        int n = W.n;
        pthread_mutex_unlock(&W.mu);
        int64_t t = now_us_f();
        int failed = objstore_run(F.store, ops, n);
        t = now_us_f() - t;
        pthread_mutex_lock(&W.mu);
        W.failed = failed;
        W.up_us = t;
        W.done = true;
        pthread_cond_broadcast(&W.cv);
        uint64_t one = 1;
        if (write(W.efd, &one, sizeof one) < 0 && errno != EAGAIN) { /* the loop also waits on cv */ }
    }
    pthread_mutex_unlock(&W.mu);
    return NULL;
}

/* F.commit and F.fenced (one flag per commit entry) grow together. */
static void commit_buf_ensure(size_t n) {
    if (n <= F.commit_cap) return;
    size_t cap = F.commit_cap ? F.commit_cap * 2 : 64;
    while (cap < n) cap *= 2;
    meta_segment_t *c = realloc(F.commit, cap * sizeof *c);
    if (!c) abort();
    F.commit = c;
    uint8_t *fe = realloc(F.fenced, cap);
    if (!fe) abort();
    F.fenced = fe;
    F.commit_cap = cap;
}

static void cparts_ensure(size_t n) {
    if (n <= F.cparts_cap) return;
    size_t cap = F.cparts_cap ? F.cparts_cap * 2 : 64;
    while (cap < n) cap *= 2;
    cycle_part_t *c = realloc(F.cparts, cap * sizeof *c);
    if (!c) abort();
    F.cparts = c;
    F.cparts_cap = cap;
}

/* Puts bytes of a failed upload back in front of what p received since. */
static void part_give_back(fpart_t *p, size_t from) {
    size_t n = p->flen - from;
    if (!p->len) {
        /* Nothing arrived meanwhile: the in-flight buffer becomes the pending one. */
        memmove(p->fbuf, p->fbuf + from, n);
        uint8_t *b = p->buf;
        size_t c = p->cap;
        p->buf = p->fbuf;
        p->cap = p->fcap;
        p->fbuf = b;
        p->fcap = c;
        p->len = n;
    } else {
        if (p->len + n > p->cap) {
            size_t cap = p->cap ? p->cap : 64 * 1024;
            while (cap < p->len + n) cap *= 2;
            uint8_t *nb = realloc(p->buf, cap);
            if (!nb) {
                log_error("%s[%d]: out of memory keeping %zu byte(s) of a failed upload: dropped", p->topic->name,
                          p->partition, n);
                return;
            }
            p->buf = nb;
            p->cap = cap;
        }
        memmove(p->buf + n, p->buf, p->len);
        memcpy(p->buf, p->fbuf + from, n);
        p->len += n;
    }
    F.pending_bytes += n;
    mark_dirty(p);
}

static void cycle_finish(void);

/* Starts a cycle: moves every dirty partition's pending bytes to its fbuf,
 * cuts segments there and hands the uploads to the worker. At most one cycle
 * is in flight; asked while one is, the next starts when it completes. */
void flusher_cycle(void) {
    if (F.in_flight) {
        F.cycle_wanted = true;
        return;
    }
    if (!F.dirty) return;
    if (F.cluster && mono_ms_f() + 1000 > F.lease_deadline) {
        /* The broker's lease may lapse before an upload lands: a new leader
         * could be writing the same keys. Wait for a keepalive (LEASE) or
         * for the broker to give the partitions up (UNLEAD). */
        static int64_t last_log;
        if (mono_ms_f() - last_log > 5000) {
            log_warn("the broker's etcd lease is not known to be alive: uploads wait");
            last_log = mono_ms_f();
        }
        schedule_cycle(100);
        return;
    }
    int64_t t0 = now_ms_f(), t0_us = now_us_f();
    /* 1. Move the pending bytes out (later APPENDs never move memory the
     * upload points into) and cut segments at batch boundaries. */
    size_t njobs = 0, ncp = 0;
    for (fpart_t *p = F.dirty; p; p = p->dirty_next) {
        if (F.cluster && !p->fence_rev) part_drop_pending(p);
        if (!p->len) continue;
        uint8_t *b = p->fbuf;
        size_t c = p->fcap;
        p->fbuf = p->buf;
        p->fcap = p->cap;
        p->flen = p->len;
        p->buf = b;
        p->cap = c;
        p->len = 0;
        p->inflight = true;
        F.inflight_bytes += p->flen;
        cparts_ensure(ncp + 1);
        F.cparts[ncp] = (cycle_part_t){.topic = p->topic, .idx = p->partition, .gen = p->gen, .done_to = 0};
        size_t pos = 0;
        while (pos < p->flen) {
            if (njobs == F.jobs_cap) {
                size_t cap = F.jobs_cap ? F.jobs_cap * 2 : 64;
                seg_job_t *nj = realloc(F.jobs, cap * sizeof *nj);
                if (!nj) break;
                memset(nj + F.jobs_cap, 0, (cap - F.jobs_cap) * sizeof *nj);
                for (size_t k = F.jobs_cap; k < cap; k++) seg_builder_init(&nj[k].b, 0);
                F.jobs = nj;
                F.jobs_cap = cap;
            }
            seg_job_t *j = &F.jobs[njobs];
            seg_builder_reset(&j->b);
            j->cp = ncp;
            j->body_from = pos;
            j->ok = false;
            int64_t limit = p->topic->segment_bytes > 0 ? p->topic->segment_bytes : F.segment_bytes;
            while (pos < p->flen) {
                batch_info_t bi;
                if (batch_parse(p->fbuf + pos, p->flen - pos, &bi) != BATCH_OK) {
                    /* The broker validated every batch: this is a bug. */
                    log_error("%s[%d]: bad batch at pending byte %zu; dropping the rest", p->topic->name,
                              p->partition, pos);
                    F.inflight_bytes -= p->flen - pos;
                    p->flen = pos;
                    break;
                }
                if (j->b.batch_count > 0 && (int64_t)(seg_builder_size(&j->b) + (uint64_t)bi.length) > limit) break;
                int rc = seg_builder_add(&j->b, p->fbuf + pos, (size_t)bi.length);
                if (rc) {
                    if (j->b.batch_count > 0) break; /* e.g. too big: next segment */
                    log_error("%s[%d]: cannot add batch: %s", p->topic->name, p->partition, seg_strerror(rc));
                    F.inflight_bytes -= p->flen - pos;
                    p->flen = pos;
                    break;
                }
                pos += (size_t)bi.length;
            }
            j->body_to = pos;
            if (j->b.batch_count == 0) break;
            if (seg_builder_finish(&j->b, t0, &j->res) != SEG_OK) break;
            seg_key(j->kfs_key, sizeof j->kfs_key, F.ns, p->topic->name, p->partition, j->res.base_offset, "kfs");
            seg_key(j->idx_key, sizeof j->idx_key, F.ns, p->topic->name, p->partition, j->res.base_offset, "index");
            j->meta = (meta_segment_t){.partition = p->partition, .leader_epoch = p->leader_epoch,
                                       .base_offset = j->res.base_offset, .last_offset = j->res.last_offset,
                                       .size = (int64_t)j->res.size, .max_timestamp = j->res.max_timestamp,
                                       .created_ms = t0};
            snprintf(j->meta.topic, sizeof j->meta.topic, "%s", p->topic->name);
            memcpy(j->meta.topic_id, p->topic->id, 16);
            njobs++;
        }
        ncp++;
    }
    /* Every pending byte moved: later APPENDs make their partitions dirty again. */
    for (fpart_t *p = F.dirty, *next; p; p = next) {
        next = p->dirty_next;
        p->dirty = false;
        p->dirty_next = NULL;
    }
    F.dirty = NULL;
    F.pending_bytes = 0;
    F.njobs = njobs;
    F.ncparts = ncp;
    F.cycle_t0 = t0;
    F.cycle_t0_us = t0_us;
    if (!ncp) return;
    F.in_flight = true;

    /* 2. Upload all .kfs and .index objects of the cycle in parallel, on the
     * worker: the loop keeps reading the broker meanwhile. */
    if (njobs && F.ops_cap < 2 * njobs) {
        free(F.ops);
        F.ops_cap = 2 * njobs;
        F.ops = calloc(F.ops_cap, sizeof *F.ops);
        if (!F.ops) {
            F.ops_cap = 0;
            F.njobs = njobs = 0; /* everything goes back to pending */
        }
    }
    for (size_t i = 0; i < njobs; i++) {
        seg_job_t *j = &F.jobs[i];
        j->idx_iov = (struct iovec){(void *)j->res.index, j->res.index_len};
        F.ops[2 * i] = (objstore_op_t){.kind = OBJ_PUT, .key = j->kfs_key, .iov = j->res.iov, .iovcnt = j->res.iovcnt};
        F.ops[2 * i + 1] = (objstore_op_t){.kind = OBJ_PUT, .key = j->idx_key, .iov = &j->idx_iov, .iovcnt = 1};
    }
    pthread_mutex_lock(&W.mu);
    W.done = false;
    if (njobs && W.started) {
        W.ops = F.ops;
        W.n = (int)(2 * njobs);
        W.go = true;
        pthread_cond_broadcast(&W.cv);
        pthread_mutex_unlock(&W.mu);
        return;
    }
    pthread_mutex_unlock(&W.mu);
    /* No worker (or nothing to upload): the same, in line. */
    int64_t up0 = now_us_f();
    int failed = njobs ? objstore_run(F.store, F.ops, (int)(2 * njobs)) : 0;
    pthread_mutex_lock(&W.mu);
    W.failed = failed;
    W.up_us = now_us_f() - up0;
    W.done = true;
    pthread_mutex_unlock(&W.mu);
    cycle_finish();
}

/* Blocks until the cycle in flight (if any) uploaded, then completes it. */
static void cycle_wait(void) {
    if (!F.in_flight) return;
    pthread_mutex_lock(&W.mu);
    while (!W.done) pthread_cond_wait(&W.cv, &W.mu);
    pthread_mutex_unlock(&W.mu);
    cycle_finish();
}

/* The worker finished the cycle's uploads: commit, report, give back. */
static void cycle_finish(void) {
    pthread_mutex_lock(&W.mu);
    int failed = W.failed;
    int64_t up_us = W.up_us;
    W.done = false;
    pthread_mutex_unlock(&W.mu);
    F.in_flight = false;
    size_t njobs = F.njobs;
    int64_t t0 = F.cycle_t0;
    const char *first_err = NULL;
    size_t ncommit = 0;
    if (njobs) {
        double up_s = (double)up_us / 1e6;
        metric_series_t *put_lat = metrics_series(M_OBJ_SECONDS, (const char *const[]){"flusher", "put"}, 2);
        for (size_t i = 0; i < 2 * njobs; i++) metrics_series_observe(put_lat, up_s);
    }
    for (size_t i = 0; i < njobs; i++) {
        seg_job_t *j = &F.jobs[i];
        const cycle_part_t *c = &F.cparts[j->cp];
        j->ok = F.ops[2 * i].status == OBJ_OK && F.ops[2 * i + 1].status == OBJ_OK;
        if (!j->ok && !first_err) first_err = F.ops[2 * i].status != OBJ_OK ? F.ops[2 * i].err : F.ops[2 * i + 1].err;
        /* UNLEAD, LEAD or FENCED while it uploaded: not ours to commit. */
        if (cp_part(c)->gen != c->gen) j->ok = false;
        /* A partition's segments commit in order: after a failed one, the
         * later ones of the same partition wait for the next cycle. */
        if (j->ok && i > 0 && F.jobs[i - 1].cp == j->cp && !F.jobs[i - 1].ok) j->ok = false;
        if (j->ok) {
            commit_buf_ensure(ncommit + 1);
            F.commit[ncommit++] = j->meta;
        }
    }
    if (failed) {
        F.stats.upload_errors += (uint64_t)failed;
        metrics_add(M_FLUSH_UPLOAD_ERRORS, failed);
        metrics_add(M_OBJ_ERRORS, failed, "flusher", "put");
        set_store_health(false, first_err);
    }

    /* 3. One metadata record (etcd: one fenced transaction) for the whole cycle. */
    if (ncommit) memset(F.fenced, 0, ncommit);
    if (ncommit && broker_died()) {
        log_warn("our broker died during the cycle: its %zu segment(s) are not committed", ncommit);
        for (size_t i = 0; i < njobs; i++) F.jobs[i].ok = false;
        ncommit = 0;
        F.stopping = true;
        event_base_loopexit(F.base, NULL);
    }
    if (ncommit && meta_commit_segments(F.meta, F.commit, (int)ncommit, F.fenced) != 0) {
        log_error("cannot commit %zu segment(s) to metadata: %s; will retry", ncommit, strerror(errno));
        for (size_t i = 0; i < njobs; i++) F.jobs[i].ok = false;
        ncommit = 0;
    }
    for (size_t i = 0, c = 0; i < njobs && ncommit; i++) {
        seg_job_t *j = &F.jobs[i];
        if (!j->ok) continue;
        if (F.fenced[c++]) {
            j->ok = false;
            fpart_t *p = cp_part(&F.cparts[j->cp]);
            if (p->fence_rev) part_fenced(p);
        }
    }
    if (ncommit && !failed) set_store_health(true, NULL);

    /* 4. Report durable. */
    for (size_t i = 0; i < njobs; i++) {
        seg_job_t *j = &F.jobs[i];
        if (!j->ok) continue;
        cycle_part_t *c = &F.cparts[j->cp];
        fpart_t *p = cp_part(c);
        part_add_seg(p, &j->meta);
        c->done_to = j->body_to;
        send_durable(p, &j->meta);
        cached_notify(&j->meta);
        F.stats.segments++;
        F.stats.bytes += j->res.size;
        metrics_add(M_FLUSH_SEGMENTS, 1);
        metrics_add(M_FLUSH_BYTES, (double)j->res.size);
        metrics_observe(M_FLUSH_SEGMENT_BYTES, (double)j->res.size);
    }
    if (njobs) {
        F.stats.cycles++;
        metrics_add(M_FLUSH_CYCLES, 1);
        metrics_observe(M_FLUSH_SECONDS, (double)(now_us_f() - F.cycle_t0_us) / 1e6);
        if (log_level <= LOG_DEBUG)
            log_debug("cycle: %zu segment(s), %zu committed, %lld ms", njobs, ncommit, (long long)(now_ms_f() - t0));
    }

    /* 5. Committed bytes go; the rest of a failed upload returns to the
     * front of its partition's pending bytes (unless the partition stopped
     * being ours meanwhile); the in-flight buffer becomes the spare. */
    for (size_t k = 0; k < F.ncparts; k++) {
        cycle_part_t *c = &F.cparts[k];
        fpart_t *p = cp_part(c);
        F.inflight_bytes -= p->flen < F.inflight_bytes ? p->flen : F.inflight_bytes;
        if (p->gen == c->gen && c->done_to < p->flen) part_give_back(p, c->done_to);
        p->flen = 0;
        p->inflight = false;
    }
    F.ncparts = F.njobs = 0;
    bool wanted = F.cycle_wanted;
    F.cycle_wanted = false;
    if (F.dirty && !F.stopping) schedule_cycle(failed ? F.retry_backoff_ms : wanted ? 0 : F.flush_interval_ms);
    F.retry_backoff_ms = failed ? (F.retry_backoff_ms < 2000 ? F.retry_backoff_ms * 2 : 2000) : 100;
}

static void broker_read(size_t budget);

/* Takes in everything the broker has sent so far, so one cycle carries it. */
static void drain_broker(void) { broker_read(64u << 20); }

static void cycle_cb(evutil_socket_t fd, short what, void *arg) {
    F.cycle_scheduled = false;
    if (F.in_flight) {
        F.cycle_wanted = true; /* starts when the one in flight completes */
        return;
    }
    drain_broker();
    flusher_cycle();
    broker_read_resume();
}

/* The worker's eventfd: the cycle's uploads are done. */
static void upload_done_cb(evutil_socket_t fd, short what, void *arg) {
    uint64_t v;
    if (read(W.efd, &v, sizeof v) < 0 && errno != EAGAIN) log_warn("flusher: eventfd read: %s", strerror(errno));
    pthread_mutex_lock(&W.mu);
    bool done = W.done;
    pthread_mutex_unlock(&W.mu);
    if (!done || !F.in_flight) return;
    cycle_finish();
    broker_read_resume();
}

static void schedule_cycle(int64_t delay_ms) {
    if (F.cycle_scheduled && delay_ms > 0) return;
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(F.cycle_ev, &tv); /* re-adding moves an earlier deadline */
    F.cycle_scheduled = true;
}

/* ---- frames from the broker ---- */

static void on_append(kr_t *r) {
    kstr_t topic = kr_str(r, false);
    int32_t partition = kr_i32(r);
    int32_t epoch = kr_i32(r);
    int64_t base = kr_i64(r);
    int64_t last = kr_i64(r);
    int64_t max_ts = kr_i64(r);
    int32_t count = kr_i32(r);
    (void)max_ts;
    (void)count;
    if (r->err || topic.len <= 0 || partition < 0) { log_error("malformed APPEND from broker"); return; }
    ftopic_t *t = topic_ensure(topic.p, (size_t)topic.len, partition + 1);
    if (!t) return;
    fpart_t *p = &t->parts[partition];
    if (F.cluster && !p->fence_rev) {
        log_debug("%s[%d]: APPEND for a partition the broker does not lead: dropped", t->name, partition);
        return;
    }
    p->leader_epoch = epoch;
    const uint8_t *data = r->p;
    size_t n = kr_left(r);
    if (last < p->committed_end) {
        /* Already durable (we restarted, the broker re-sent): say so again. */
        send_durable(p, NULL);
        return;
    }
    if (base < p->committed_end) {
        /* The frame straddles the committed end (a predecessor committed part
         * of it): skip the batches that are already in segments. */
        while (n > 0) {
            batch_info_t bi;
            if (batch_parse(data, n, &bi) != BATCH_OK) { log_error("%s[%d]: bad batch in APPEND", t->name, partition); return; }
            if (bi.base_offset + bi.last_offset_delta >= p->committed_end) break;
            data += bi.length;
            n -= (size_t)bi.length;
        }
        send_durable(p, NULL);
        if (!n) return;
    }
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 64 * 1024;
        while (cap < p->len + n) cap *= 2;
        uint8_t *nb = realloc(p->buf, cap);
        if (!nb) { log_error("out of memory buffering %zu bytes", n); return; }
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, n);
    p->len += n;
    F.pending_bytes += n;
    mark_dirty(p);
    int64_t limit = t->segment_bytes > 0 ? t->segment_bytes : F.segment_bytes;
    if ((int64_t)p->len >= limit) schedule_cycle(0);
    else schedule_cycle(F.flush_interval_ms);
}

static void delete_topic_objects(const char *topic);
static void on_delete_records(kr_t *r);

/* READY carries what is committed, so that the broker starts from the truth:
 * u32 count, then per partition: topic, partition, committed end, log start. */
static void send_ready(void) {
    kw_t w;
    kw_init(&w, 4096);
    size_t count_at = kw_reserve(&w, 4);
    int32_t count = 0;
    /* A cluster's partitions are reported one by one as the broker leads them (LEAD / LED). */
    for (int b = 0; b < FTOPIC_BUCKETS && !F.cluster; b++)
        for (ftopic_t *t = F.topics[b]; t; t = t->next)
            for (int32_t i = 0; i < t->np; i++) {
                fpart_t *p = &t->parts[i];
                if (!p->committed_end && !p->log_start) continue;
                kw_str(&w, false, kstr_c(t->name));
                kw_i32(&w, p->partition);
                kw_i64(&w, p->committed_end);
                kw_i64(&w, p->log_start);
                count++;
            }
    kw_put_i32_at(&w, count_at, count);
    send_frame(FP_READY, w.buf, w.len);
    kw_free(&w);
}

static void on_frame(uint8_t type, kr_t *r) {
    switch (type) {
    case FP_HELLO: {
        uint32_t ver = kr_u32(r);
        int32_t node = kr_i32(r);
        log_info("broker %d connected (protocol v%u)", node, ver);
        break;
    }
    case FP_TOPIC: {
        kstr_t name = kr_str(r, false);
        const uint8_t *id = kr_take(r, 16);
        int32_t np = kr_i32(r);
        int64_t rms = kr_i64(r), rbytes = kr_i64(r), segb = kr_i64(r);
        if (r->err || name.len <= 0 || np <= 0) { log_error("malformed TOPIC from broker"); return; }
        ftopic_t *t = topic_ensure(name.p, (size_t)name.len, np);
        if (!t) return;
        memcpy(t->id, id, 16);
        t->retention_ms = rms;
        t->retention_bytes = rbytes;
        t->segment_bytes = segb > 0 && segb < F.segment_bytes ? segb : F.segment_bytes;
        t->known = true;
        break;
    }
    case FP_DELTOPIC: {
        kstr_t name = kr_str(r, false);
        if (r->err || name.len <= 0) return;
        char tn[250];
        kstr_cpy(tn, sizeof tn, name);
        ftopic_t *t = topic_get(name.p, (size_t)name.len);
        bool busy = false;
        for (int32_t i = 0; t && i < t->np; i++) {
            if (!t->parts[i].inflight) continue;
            busy = true;
            t->parts[i].gen++; /* nothing of the deleted topic is committed or reported */
        }
        /* Its uploads in flight land before it goes: the objects must not
         * reappear after the deletion below (the broker may already have
         * created a topic of the same name, whose keys they would take). */
        if (busy) cycle_wait();
        if (t) {
            /* Unlink from the dirty list first. */
            fpart_t **pp = &F.dirty;
            while (*pp) {
                if ((*pp)->topic == t) *pp = (*pp)->dirty_next;
                else pp = &(*pp)->dirty_next;
            }
            topic_drop(t);
        }
        meta_drop_topic_segments(F.meta, tn);
        delete_topic_objects(tn);
        break;
    }
    case FP_APPEND: on_append(r); break;
    case FP_LEAD: on_lead(r); break;
    case FP_UNLEAD: on_unlead(r); break;
    case FP_LEASE: {
        int64_t d = kr_i64(r);
        if (!r->err) F.lease_deadline = d;
        if (F.dirty) schedule_cycle(0);
        break;
    }
    case FP_DELRECORDS: on_delete_records(r); break;
    case FP_FLUSH: if (F.dirty) schedule_cycle(0); break;
    default: log_warn("unknown frame type %u from broker", type);
    }
}

/* Input from the broker is read with recv() into one linear buffer and
 * frames are handled in place: libevent 2.1 reads a bufferevent 4 KiB per
 * readv (plus an ioctl each) into malloc'd pieces and copies every ~1 MiB
 * APPEND once more to make it contiguous. F.broker only writes. */
#define BIN_MIN_CAP (4u << 20)
/* Reading stops while this much is pending (until a cycle took it): what is
 * not durable yet stays in the broker, which holds it anyway, rather than
 * twice in memory. */
#define BIN_PENDING_MAX (32u << 20)
static struct {
    struct event *ev;          /* EV_READ | EV_PERSIST on the broker's socket */
    bool paused;               /* ev deleted: BIN_PENDING_MAX reached */
    uint8_t *buf;              /* unhandled bytes are [pos, len) */
    size_t pos, len, cap;
} BIN;

static void broker_drop(const char *why) {
    if (why) log_warn("%s", why);
    if (BIN.ev) event_free(BIN.ev);
    BIN.ev = NULL;
    BIN.paused = false;
    BIN.pos = BIN.len = 0;
    if (F.broker) bufferevent_free(F.broker); /* closes the socket */
    F.broker = NULL;
}

/* Reads what the broker sent (up to about `budget` bytes) and handles every
 * whole frame. */
static void broker_read(size_t budget) {
    size_t got = 0;
    while (F.broker) {
        /* Whole frames first. */
        size_t need = 4;
        while (BIN.len - BIN.pos >= 4) {
            uint32_t flen = kbe32(BIN.buf + BIN.pos);
            if (flen < 1 || flen > FPROTO_MAX_FRAME) {
                log_error("bad frame length %u from broker; dropping the connection", flen);
                broker_drop(NULL);
                return;
            }
            if (BIN.len - BIN.pos < 4 + (size_t)flen) {
                need = 4 + (size_t)flen;
                break;
            }
            uint8_t *frame = BIN.buf + BIN.pos + 4;
            BIN.pos += 4 + (size_t)flen;
            kr_t r = kr_init(frame + 1, flen - 1);
            on_frame(frame[0], &r);
            if (!F.broker) return;
        }
        if (got >= budget) return;
        if (F.pending_bytes >= BIN_PENDING_MAX && !F.stopping) {
            if (!BIN.paused) event_del(BIN.ev);
            BIN.paused = true;
            return;
        }
        /* Room for the frame in progress and a good gulp after it. */
        if (BIN.pos == BIN.len) BIN.pos = BIN.len = 0;
        if (BIN.pos && (BIN.cap - BIN.len < (64u << 10) || BIN.pos + need > BIN.cap)) {
            memmove(BIN.buf, BIN.buf + BIN.pos, BIN.len - BIN.pos);
            BIN.len -= BIN.pos;
            BIN.pos = 0;
        }
        if (need > BIN.cap || !BIN.buf) {
            size_t cap = need > BIN_MIN_CAP ? need : BIN_MIN_CAP;
            uint8_t *nb = realloc(BIN.buf, cap);
            if (!nb) { broker_drop("out of memory reading from the broker; dropping the connection"); return; }
            BIN.buf = nb;
            BIN.cap = cap;
        }
        ssize_t n = recv(bufferevent_getfd(F.broker), BIN.buf + BIN.len, BIN.cap - BIN.len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            broker_drop("broker disconnected");
            return;
        }
        BIN.len += (size_t)n;
        got += (size_t)n;
    }
}

static void broker_in_cb(evutil_socket_t fd, short what, void *arg) { broker_read(16u << 20); }

/* After a cycle: read again if BIN_PENDING_MAX had stopped us. */
static void broker_read_resume(void) {
    if (!BIN.paused || !BIN.ev) return;
    BIN.paused = false;
    event_add(BIN.ev, NULL);
    broker_read(16u << 20);
}

static void broker_event_cb(struct bufferevent *bev, short what, void *arg) {
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) broker_drop("broker disconnected");
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg) {
    if (F.broker) broker_drop("a second broker connected; replacing the first");
    F.broker = bufferevent_socket_new(F.base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(F.broker, NULL, NULL, broker_event_cb, NULL);
    bufferevent_enable(F.broker, EV_WRITE);
    BIN.ev = event_new(F.base, fd, EV_READ | EV_PERSIST, broker_in_cb, NULL);
    event_add(BIN.ev, NULL);
    send_ready();
    if (!F.store_healthy) {
        F.store_healthy = true; /* so that the next call sends the state */
        set_store_health(false, "object store failing");
    }
}

/* ---- metrics: STATS to the broker ---- */

/* Copies the object store's counters and our own state into the registry
 * and sends every series to the broker (fproto.h STATS). */
static void stats_cb(evutil_socket_t fd, short what, void *arg) {
    if (!F.broker) return;
    objstore_stats_t st;
    objstore_get_stats(F.store, &st);
    static const struct { const char *op; size_t off; } ops[] = {
        {"put", offsetof(objstore_stats_t, puts)},       {"get", offsetof(objstore_stats_t, gets)},
        {"head", offsetof(objstore_stats_t, heads)},     {"delete", offsetof(objstore_stats_t, deletes)},
        {"list", offsetof(objstore_stats_t, lists)},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        metrics_set(M_OBJ_OPS, (double)*(const uint64_t *)((const char *)&st + ops[i].off), "flusher", ops[i].op);
    metrics_set(M_OBJ_BYTES, (double)st.bytes_put, "flusher", "put");
    metrics_set(M_OBJ_BYTES, (double)st.bytes_got, "flusher", "get");
    metrics_set(M_OBJ_RETRIES, (double)st.retries, "flusher");
    /* Failed uploads are counted per cycle (op put); the store's other
     * failures (deletes, lists, reads at start) go under op "other". */
    double put_errors = metrics_get(M_OBJ_ERRORS, "flusher", "put");
    metrics_set(M_OBJ_ERRORS, (double)st.errors > put_errors ? (double)st.errors - put_errors : 0, "flusher", "other");
    metrics_set(M_FLUSH_PENDING_BYTES, (double)(F.pending_bytes + F.inflight_bytes));
    metrics_sample_process("flusher", getpid());
    kw_t w;
    kw_init(&w, 4096);
    metrics_encode(&w);
    send_frame(FP_STATS, w.buf, w.len);
    kw_free(&w);
}

/* ---- retention and DeleteRecords ---- */

/* Moves p's log start to new_start, dropping its first `drop` segments (all
 * below new_start): metadata first (so a crash never leaves metadata naming
 * deleted objects), then the objects; then tells the broker (LOGSTART).
 * Returns -1 when metadata could not be written (nothing changed). */
static int log_start_advance(fpart_t *p, size_t drop, int64_t new_start, const char *why) {
    ftopic_t *t = p->topic;
    if (F.cluster && !p->fence_rev) return -1; /* not ours */
    int rc = meta_remove_segments(F.meta, p->segs, (int)drop, t->name, p->partition, new_start);
    if (rc == -2) {
        part_fenced(p);
        return -1;
    }
    if (rc) {
        log_error("%s: %s[%d]: cannot record log start %lld in metadata", why, t->name, p->partition,
                  (long long)new_start);
        return -1;
    }
    char err[256];
    for (size_t i = 0; i < drop; i++) {
        char key[SEG_KEY_MAX];
        seg_key(key, sizeof key, F.ns, t->name, p->partition, p->segs[i].base_offset, "kfs");
        objstore_delete(F.store, key, err, sizeof err);
        seg_key(key, sizeof key, F.ns, t->name, p->partition, p->segs[i].base_offset, "index");
        objstore_delete(F.store, key, err, sizeof err);
    }
    log_info("%s: %s[%d] dropped %zu segment(s); log start %lld", why, t->name, p->partition, drop,
             (long long)new_start);
    memmove(p->segs, p->segs + drop, (p->nsegs - drop) * sizeof *p->segs);
    p->nsegs -= drop;
    p->log_start = new_start;
    send_logstart(p);
    return 0;
}

/* DELRECORDS: the log start moves to `offset` (capped at the committed end);
 * segments whose last offset is below it go. */
static void on_delete_records(kr_t *r) {
    kstr_t topic = kr_str(r, false);
    int32_t partition = kr_i32(r);
    int64_t offset = kr_i64(r);
    if (r->err || topic.len <= 0 || partition < 0) { log_error("malformed DELRECORDS from broker"); return; }
    ftopic_t *t = topic_get(topic.p, (size_t)topic.len);
    if (!t || partition >= t->np) return; /* deleted meanwhile */
    fpart_t *p = &t->parts[partition];
    if (offset > p->committed_end) {
        log_warn("delete records: %s[%d]: offset %lld is past the committed end %lld; capped", t->name, partition,
                 (long long)offset, (long long)p->committed_end);
        offset = p->committed_end;
    }
    if (offset <= p->log_start) return;
    size_t drop = 0;
    while (drop < p->nsegs && p->segs[drop].last_offset < offset) drop++;
    log_start_advance(p, drop, offset, "delete records");
}

static void retention_part(fpart_t *p, int64_t now) {
    ftopic_t *t = p->topic;
    if (!p->nsegs) return;
    size_t drop = 0;
    int64_t total = 0;
    for (size_t i = 0; i < p->nsegs; i++) total += p->segs[i].size;
    while (drop < p->nsegs) {
        meta_segment_t *s = &p->segs[drop];
        bool by_time = t->retention_ms >= 0 && s->max_timestamp >= 0 && now - s->max_timestamp > t->retention_ms;
        bool by_size = t->retention_bytes >= 0 && total - s->size >= t->retention_bytes;
        if (!by_time && !by_size) break;
        total -= s->size;
        drop++;
    }
    if (!drop) return;
    int64_t new_start = drop < p->nsegs ? p->segs[drop].base_offset : p->committed_end;
    if (new_start < p->log_start) new_start = p->log_start; /* DeleteRecords moved it inside a segment */
    log_start_advance(p, drop, new_start, "retention");
}

static void retention_cb(evutil_socket_t fd, short what, void *arg) {
    int64_t now = now_ms_f();
    for (int b = 0; b < FTOPIC_BUCKETS; b++)
        for (ftopic_t *t = F.topics[b]; t; t = t->next)
            if (t->known)
                for (int32_t i = 0; i < t->np; i++) retention_part(&t->parts[i], now);
}

/* ---- start-up: metadata, orphans ---- */

static void load_topic_cb(void *arg, const meta_topic_t *mt) {
    ftopic_t *t = topic_ensure(mt->name, strlen(mt->name), mt->npartitions);
    if (!t) return;
    t->from_meta = true;
    memcpy(t->id, mt->id, 16);
}

static bool id_zero(const uint8_t id[16]) {
    static const uint8_t z[16];
    return !memcmp(id, z, 16);
}

static void load_segment_cb(void *arg, const meta_segment_t *s) {
    ftopic_t *t = topic_get(s->topic, strlen(s->topic));
    if (t && t->from_meta && !id_zero(s->topic_id) && memcmp(t->id, s->topic_id, 16)) {
        t->stale_segments = true; /* an older topic of the same name */
        return;
    }
    t = topic_ensure(s->topic, strlen(s->topic), s->partition + 1);
    if (t) part_add_seg(&t->parts[s->partition], s);
}

static void load_logstart_cb(void *arg, const char *topic, int32_t partition, int64_t start) {
    ftopic_t *t = topic_ensure(topic, strlen(topic), partition + 1);
    if (!t) return;
    fpart_t *p = &t->parts[partition];
    p->log_start = start;
    if (start > p->committed_end) p->committed_end = start;
}

static bool is_committed(const seg_key_info_t *k) {
    ftopic_t *t = topic_get(k->topic, k->topic_len);
    if (!t || k->partition >= t->np) return false;
    fpart_t *p = &t->parts[k->partition];
    for (size_t i = 0; i < p->nsegs; i++)
        if (p->segs[i].base_offset == k->base_offset) return true;
    return false;
}

typedef key_list_t orphan_list_t;

static int orphan_cb(const char *key, uint64_t size, void *arg) {
    orphan_list_t *o = arg;
    seg_key_info_t k;
    if (seg_key_parse(key, &k) != SEG_OK) return 0;
    if (k.ns_len != strlen(F.ns) || memcmp(k.ns, F.ns, k.ns_len)) return 0;
    if (is_committed(&k)) return 0;
    return key_list_add(o, key);
}

static void delete_orphans(void) {
    orphan_list_t o = {0};
    char prefix[300], err[256];
    snprintf(prefix, sizeof prefix, "%s/", F.ns);
    if (objstore_list(F.store, prefix, orphan_cb, &o, err, sizeof err) != OBJ_OK) {
        log_warn("cannot list the object store to find orphan segments: %s", err);
    }
    for (size_t i = 0; i < o.n; i++) {
        if (objstore_delete(F.store, o.keys[i], err, sizeof err) == OBJ_OK)
            log_info("deleted orphan object %s (never committed)", o.keys[i]);
        free(o.keys[i]);
    }
    free(o.keys);
}

typedef key_list_t del_list_t;

static int collect_cb(const char *key, uint64_t size, void *arg) { return key_list_add(arg, key); }

static void delete_topic_objects(const char *topic) {
    del_list_t d = {0};
    char prefix[600], err[256];
    snprintf(prefix, sizeof prefix, "%s/%s/", F.ns, topic);
    objstore_list(F.store, prefix, collect_cb, &d, err, sizeof err);
    if (d.n) {
        objstore_op_t *ops = calloc(d.n, sizeof *ops);
        for (size_t i = 0; ops && i < d.n; i++) ops[i] = (objstore_op_t){.kind = OBJ_DELETE, .key = d.keys[i]};
        if (ops) objstore_run(F.store, ops, (int)d.n);
        free(ops);
    }
    for (size_t i = 0; i < d.n; i++) free(d.keys[i]);
    free(d.keys);
    log_info("deleted topic %s: %zu object(s) removed", topic, d.n);
}

/* ---- main ---- */

/* Cluster: the broker that started us died (kill -9). What it had not
 * answered yet must not become durable behind the producers' backs: they
 * retry with the partition's next leader, and a late commit here would
 * deliver those messages twice. The single node keeps its promise instead:
 * whatever the broker accepted gets flushed. */
static void on_signal(evutil_socket_t sig, short what, void *arg) {
    if (broker_died()) {
        log_warn("received %s after our broker died: dropping %zu pending byte(s), not committing them",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", F.pending_bytes);
        event_base_loopexit(F.base, NULL);
        F.stopping = true;
        return;
    }
    log_info("received %s: flushing what is pending, then exiting", sig == SIGINT ? "SIGINT" : "SIGTERM");
    F.stopping = true;
    /* Take in whatever the broker already sent, then flush it all (after
     * the cycle in flight). */
    drain_broker();
    cycle_wait();
    for (int tries = 0; F.dirty && tries < 20; tries++) {
        flusher_cycle();
        cycle_wait();
    }
    event_base_loopexit(F.base, NULL);
}


int flusher_main(void) {
    log_init("flusher");
    signal(SIGPIPE, SIG_IGN);
    const char *data_dir = env_str("KAFSCALE_DATA_DIR", "./data");
    char run_dir_default[1100];
    snprintf(run_dir_default, sizeof run_dir_default, "%s/run", data_dir);
    const char *run_dir = env_str("KAFSCALE_RUN_DIR", run_dir_default);
    snprintf(F.ns, sizeof F.ns, "%s", env_str("KAFSCALE_S3_NAMESPACE", "default"));
    F.segment_bytes = env_size("KAFSCALE_SEGMENT_BYTES", 4 << 20, 64 << 10, 1 << 30);

    objstore_config_t scfg;
    objstore_config_from_env(&scfg, data_dir);
    char err[512];
    F.store = objstore_open(&scfg, err, sizeof err);
    if (!F.store) { log_error("cannot open the object store: %s", err); return 1; }
    objstore_clean_temp(F.store, 60000, err, sizeof err); /* .kstmp.* of uploads a kill -9 cut short */
    bool s3 = !strcmp(objstore_backend(F.store), "s3");
    F.flush_interval_ms = env_int("KAFSCALE_FLUSH_INTERVAL_MS", s3 ? 100 : 20, 1, 600000);
    F.retry_backoff_ms = 100;
    F.store_healthy = true;

    F.meta = meta_open(data_dir, "segments", err, sizeof err);
    if (!F.meta) { log_error("cannot open metadata: %s", err); return 1; }
    F.cluster = meta_is_etcd(F.meta);
    F.parent = getppid();
    meta_load_cb_t cb = {load_topic_cb, load_segment_cb, load_logstart_cb, NULL};
    /* A cluster's flusher loads each partition when its broker leads it (LEAD). */
    if (!F.cluster && meta_load(F.meta, &cb, err, sizeof err)) { log_error("%s", err); return 1; }
    /* Segments of topics deleted while we were down: their objects go now. */
    for (int b = 0; b < FTOPIC_BUCKETS; b++) {
        ftopic_t *t = F.topics[b];
        while (t) {
            ftopic_t *next = t->next;
            if (!t->from_meta) {
                char tn[250];
                snprintf(tn, sizeof tn, "%s", t->name);
                topic_drop(t);
                meta_drop_topic_segments(F.meta, tn);
                delete_topic_objects(tn);
            } else if (t->stale_segments) {
                /* Deleted and created again while we were down: the old
                 * topic's segments go before the new one writes any. */
                log_info("topic %s was re-created: removing the previous topic's segments", t->name);
                meta_drop_topic_segments(F.meta, t->name);
                delete_topic_objects(t->name);
                for (int32_t i = 0; i < t->np; i++) {
                    fpart_t *fp = &t->parts[i];
                    fp->nsegs = 0;
                    fp->committed_end = fp->log_start = 0;
                }
                t->stale_segments = false;
            }
            t = next;
        }
    }
    if (!F.cluster) delete_orphans(); /* a cluster's leaders clean up per partition (on_lead) */

    mkdir(data_dir, 0755);
    mkdir(run_dir, 0755);
    char sock[1200];
    snprintf(sock, sizeof sock, "%s/flusher.sock", run_dir);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof sun.sun_path) { log_error("KAFSCALE_RUN_DIR path too long for a socket: %s", sock); return 2; }
    strcpy(sun.sun_path, sock);
    unlink(sock);

    F.base = event_base_new();
    F.cycle_ev = evtimer_new(F.base, cycle_cb, NULL);
    W.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (W.efd < 0) log_warn("eventfd: %s; uploads run on the event loop", strerror(errno));
    else {
        W.ev = event_new(F.base, W.efd, EV_READ | EV_PERSIST, upload_done_cb, NULL);
        event_add(W.ev, NULL);
        if (pthread_create(&W.thr, NULL, upload_worker, NULL) == 0) W.started = true;
        else log_warn("cannot start the upload thread; uploads run on the event loop");
    }
    struct evconnlistener *l = evconnlistener_new_bind(F.base, accept_cb, NULL,
                                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 4,
                                                       (struct sockaddr *)&sun, (int)sizeof sun);
    if (!l) { log_error("cannot listen on %s: %s", sock, strerror(errno)); return 1; }
    struct event *ret_ev = event_new(F.base, -1, EV_PERSIST, retention_cb, NULL);
    struct timeval five = {5, 0};
    event_add(ret_ev, &five);
    struct event *stats_ev = event_new(F.base, -1, EV_PERSIST, stats_cb, NULL);
    struct timeval one = {1, 0};
    event_add(stats_ev, &one);
    struct event *sigint = evsignal_new(F.base, SIGINT, on_signal, NULL);
    struct event *sigterm = evsignal_new(F.base, SIGTERM, on_signal, NULL);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    log_info("kafscale-flusher ready: %s store, socket %s, segment %lld bytes, flush interval %lld ms",
             objstore_backend(F.store), sock, (long long)F.segment_bytes, (long long)F.flush_interval_ms);

    event_base_dispatch(F.base);

    evconnlistener_free(l);
    unlink(sock);
    broker_drop(NULL);
    free(BIN.buf);
    event_free(ret_ev);
    event_free(stats_ev);
    event_free(sigint);
    event_free(sigterm);
    event_free(F.cycle_ev);
    if (W.started) {
        /* An upload still in flight (our broker died) lands uncommitted. */
        pthread_mutex_lock(&W.mu);
        while (F.in_flight && !W.done) pthread_cond_wait(&W.cv, &W.mu);
        W.quit = true;
        pthread_cond_broadcast(&W.cv);
        pthread_mutex_unlock(&W.mu);
        pthread_join(W.thr, NULL);
    }
    if (W.ev) event_free(W.ev);
    if (W.efd >= 0) close(W.efd);
    for (int b = 0; b < FTOPIC_BUCKETS; b++)
        while (F.topics[b]) topic_drop(F.topics[b]);
    for (size_t i = 0; i < F.jobs_cap; i++) seg_builder_free(&F.jobs[i].b);
    free(F.jobs);
    free(F.ops);
    free(F.commit);
    free(F.cparts);
    free(F.fenced);
    meta_close(F.meta);
    objstore_close(F.store);
    event_base_free(F.base);
    log_info("stopped");
    return 0;
}
