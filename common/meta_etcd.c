/* meta_etcd.c - the etcd backend of meta.h (the "etcd" ops of
 * meta_backend.h): topics in the JSON snapshot, committed segments and
 * partition states as protobuf values, with the key layout of meta.h.
 *
 * Writes:
 *   - topics: read the snapshot with its mod revision, edit it
 *     (meta_snapshot_edit), and write it back in a txn that compares that
 *     revision (or "absent"), together with the TopicConfig copy (or, for a
 *     deletion, removing it and every /kafscale/partitions/<topic>/ key);
 *     a lost race re-reads and retries (CAS_ATTEMPTS times, with jitter).
 *   - segments: one txn per call (as many as --max-txn-ops needs) comparing
 *     the mod revision of each partition's leader key with its fence
 *     (meta_set_fence). A failed compare is answered in the same round trip:
 *     the failure branch reads every leader key of the txn, so the partitions
 *     whose fence no longer holds are known at once; they are reported fenced
 *     (their fence cleared) and the txn is repeated for the others.
 *   - log starts: read-modify-write of the PartitionState (other fields kept,
 *     unknown ones too), compared on its mod revision and the fence.
 * Reads page through prefixes at one revision (meta_etcd_range_all), so a
 * load is a consistent view. Values that do not decode, or whose key and
 * value disagree, are skipped with a warning (the first few logged).
 *
 * Blocking: every call waits for etcd (the client's timeouts and retries,
 * etcd.h). Calls may come from several threads (the fences have a lock;
 * etcd_t is thread-safe).
 */
#include "meta_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "meta_pb.h"

#define MAX_TXN_OPS 128    /* etcd's default --max-txn-ops (compares and each branch's ops count apart) */
#define CAS_ATTEMPTS 16    /* tries of a compare-and-swap that keeps losing races */
#define MAX_BACKFILL 100   /* TopicConfig copies written along with one snapshot rewrite */
#define FENCE_BUCKETS 1024
#define BAD_LOGGED 10      /* bad values logged per load (then only counted) */

typedef struct fence {
    struct fence *next;
    int32_t partition;
    int64_t rev;
    char topic[];
} fence_t;

typedef struct metcd {
    struct meta base; /* ops = etcd_ops */
    etcd_t *c;
    bool writable;
    pthread_mutex_t mu; /* guards fences */
    fence_t *fences[FENCE_BUCKETS];
    uint64_t rnd;       /* jitter */
} metcd_t;

static const meta_ops_t etcd_ops;

/* ---- keys ---- */

/* "/kafscale/<dir>/<escaped a>/" + rest (printf); -1 when too long. */
static int key_fmt(char *out, size_t sz, const char *dir, const char *a, const char *rest_fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int key_fmt(char *out, size_t sz, const char *dir, const char *a, const char *rest_fmt, ...) {
    char ea[META_KEY_MAX];
    if (meta_key_escape(a, ea, sizeof ea) < 0) return -1;
    int n = snprintf(out, sz, "/kafscale/%s/%s", dir, ea);
    if (n < 0 || (size_t)n >= sz) return -1;
    va_list ap;
    va_start(ap, rest_fmt);
    int k = vsnprintf(out + n, sz - (size_t)n, rest_fmt, ap);
    va_end(ap);
    return k < 0 || (size_t)k >= sz - (size_t)n ? -1 : n + k;
}

static int seg_key(char *out, size_t sz, const char *topic, int32_t p, int64_t base) {
    return key_fmt(out, sz, "segments", topic, "/%" PRId32 "/%020" PRId64, p, base);
}

/* ---- small helpers ---- */

static void jitter_sleep(metcd_t *m, int attempt) {
    m->rnd ^= m->rnd << 13;
    m->rnd ^= m->rnd >> 7;
    m->rnd ^= m->rnd << 17;
    long ms = 1 + (long)(m->rnd % (uint64_t)(5 * (attempt + 1)));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t kv_mod(const etcd_range_result_t *r) { return r->nkvs > 0 ? r->kvs[0].mod_revision : 0; }

/* ---- fences ---- */

static uint32_t fence_hash(const char *topic, int32_t p) {
    uint32_t h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)topic; *s; s++) h = (h ^ *s) * 16777619u;
    return (h ^ (uint32_t)p) * 16777619u % FENCE_BUCKETS;
}

static fence_t *fence_find(metcd_t *m, const char *topic, int32_t p) {
    for (fence_t *f = m->fences[fence_hash(topic, p)]; f; f = f->next)
        if (f->partition == p && !strcmp(f->topic, topic)) return f;
    return NULL;
}

static void op_set_fence(meta_t *mm, const char *topic, int32_t p, int64_t rev) {
    metcd_t *m = (metcd_t *)mm;
    KS_ASSERT(rev >= 0);
    pthread_mutex_lock(&m->mu);
    fence_t *f = fence_find(m, topic, p);
    if (f) {
        f->rev = rev;
    } else if (rev) {
        size_t n = strlen(topic) + 1;
        f = malloc(sizeof *f + n);
        KS_ASSERT(f != NULL);
        memcpy(f->topic, topic, n);
        f->partition = p;
        f->rev = rev;
        uint32_t b = fence_hash(topic, p);
        f->next = m->fences[b];
        m->fences[b] = f;
    }
    pthread_mutex_unlock(&m->mu);
}

static int64_t fence_get(metcd_t *m, const char *topic, int32_t p) {
    pthread_mutex_lock(&m->mu);
    fence_t *f = fence_find(m, topic, p);
    int64_t rev = f ? f->rev : 0;
    pthread_mutex_unlock(&m->mu);
    return rev;
}

/* The fence turned out stale: clear it, unless a newer claim replaced it. */
static void fence_lost(metcd_t *m, const char *topic, int32_t p, int64_t stale, int64_t now) {
    pthread_mutex_lock(&m->mu);
    fence_t *f = fence_find(m, topic, p);
    if (f && f->rev == stale) f->rev = 0;
    pthread_mutex_unlock(&m->mu);
    log_warn("metadata: %s[%d] is fenced: its leader key's revision is %lld, this broker claimed it at %lld", topic,
             (int)p, (long long)now, (long long)stale);
}

/* ---- open / close ---- */

meta_t *meta_etcd_open(const etcd_config_t *cfg, const char *writer, char *err, size_t errsz) {
    metcd_t *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, errsz, "out of memory"); return NULL; }
    m->c = etcd_open(cfg, err, errsz);
    if (!m->c) { free(m); return NULL; }
    m->writable = writer != NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->rnd = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid() << 16 ^ (uint64_t)(uintptr_t)m;
    if (!m->rnd) m->rnd = 1;
    m->base = (struct meta){META_MAGIC, &etcd_ops};
    return &m->base;
}

static void op_close(meta_t *mm) {
    metcd_t *m = (metcd_t *)mm;
    for (int b = 0; b < FENCE_BUCKETS; b++)
        while (m->fences[b]) {
            fence_t *f = m->fences[b];
            m->fences[b] = f->next;
            free(f);
        }
    pthread_mutex_destroy(&m->mu);
    etcd_close(m->c);
    free(m);
}

/* ---- loading ---- */

typedef struct load_ctx {
    const meta_load_cb_t *cb;
    const char *only_topic; /* load_partition: the one partition */
    int32_t only_partition;
    int nbad;
} load_ctx_t;

static void bad_value(load_ctx_t *x, const etcd_kv_t *kv, const char *why) {
    if (x->nbad++ < BAD_LOGGED) log_warn("metadata: skipping %s: %s", (const char *)kv->key, why);
}

/* Splits "<escaped topic>/<p>/<leaf>" (what follows a prefix); false when
 * the key does not have that shape. */
static bool split_tp_key(const char *rest, char *topic, size_t tsz, int32_t *p, const char **leaf) {
    const char *s1 = strchr(rest, '/');
    if (!s1) return false;
    const char *s2 = strchr(s1 + 1, '/');
    if (!s2 || strchr(s2 + 1, '/') || !s2[1]) return false;
    if (meta_key_unescape(rest, (size_t)(s1 - rest), topic, tsz) <= 0) return false;
    char *end;
    errno = 0;
    long v = strtol(s1 + 1, &end, 10);
    if (errno || end != s2 || end == s1 + 1 || v < 0 || v > INT32_MAX) return false;
    *p = (int32_t)v;
    *leaf = s2 + 1;
    return true;
}

static int seg_kv(void *arg, const etcd_kv_t *kv) {
    load_ctx_t *x = arg;
    static const char pfx[] = "/kafscale/segments/";
    char topic[256], why[300];
    int32_t p;
    const char *leaf;
    if (strlen((const char *)kv->key) != kv->key_len ||
        !split_tp_key((const char *)kv->key + sizeof pfx - 1, topic, sizeof topic, &p, &leaf)) {
        bad_value(x, kv, "not a segment key (/kafscale/segments/<topic>/<partition>/<base offset>)");
        return 0;
    }
    meta_segment_t s;
    if (meta_pb_segment_decode(kv->value, kv->value_len, &s, why, sizeof why)) {
        bad_value(x, kv, why);
        return 0;
    }
    char *end;
    errno = 0;
    long long base = strtoll(leaf, &end, 10);
    if (errno || *end || strcmp(s.topic, topic) || s.partition != p || s.base_offset != base) {
        bad_value(x, kv, "the value names another segment than the key");
        return 0;
    }
    if (x->only_topic && (p != x->only_partition || strcmp(topic, x->only_topic))) return 0;
    if (x->cb->segment) x->cb->segment(x->cb->arg, &s);
    return 0;
}

static int state_kv(void *arg, const etcd_kv_t *kv) {
    load_ctx_t *x = arg;
    static const char pfx[] = "/kafscale/partitions/";
    char topic[256], why[300];
    int32_t p;
    const char *leaf;
    if (strlen((const char *)kv->key) != kv->key_len ||
        !split_tp_key((const char *)kv->key + sizeof pfx - 1, topic, sizeof topic, &p, &leaf))
        return 0; /* not ours to judge: cluster.c owns the other keys here */
    if (strcmp(leaf, "state")) return 0;
    meta_pstate_t st;
    if (meta_pb_state_decode(kv->value, kv->value_len, &st, why, sizeof why)) {
        bad_value(x, kv, why);
        return 0;
    }
    if ((st.topic[0] && strcmp(st.topic, topic)) || st.partition != p) {
        bad_value(x, kv, "the value names another partition than the key");
        return 0;
    }
    if (x->only_topic && (p != x->only_partition || strcmp(topic, x->only_topic))) return 0;
    if (st.log_start_offset > 0 && x->cb->log_start) x->cb->log_start(x->cb->arg, topic, p, st.log_start_offset);
    return 0;
}

static void bad_summary(load_ctx_t *x) {
    if (x->nbad > BAD_LOGGED) log_warn("metadata: ... %d more bad value(s) skipped", x->nbad - BAD_LOGGED);
}

static int op_load(meta_t *mm, const meta_load_cb_t *cb, char *err, size_t errsz) {
    metcd_t *m = (metcd_t *)mm;
    int64_t rev = 0;
    if (cb->topic) {
        etcd_range_result_t r;
        char e[512];
        int st = etcd_get(m->c, META_KEY_SNAPSHOT, &r, e, sizeof e);
        if (st) {
            snprintf(err, errsz, "cannot read %s from etcd: %s (%s)", META_KEY_SNAPSHOT, e, etcd_status_name(st));
            return -1;
        }
        rev = r.revision;
        if (r.nkvs) {
            char perr[600];
            int rc = meta_snapshot_parse((const char *)r.kvs[0].value, r.kvs[0].value_len, cb, perr, sizeof perr);
            if (rc < 0) {
                snprintf(err, errsz, "%s", perr);
                etcd_range_result_free(&r);
                return -1;
            }
            if (rc > 0) log_warn("metadata: %s", perr);
        }
        etcd_range_result_free(&r);
    }
    load_ctx_t x = {.cb = cb};
    int rc = 0;
    if (cb->segment) rc = meta_etcd_range_all(m->c, "/kafscale/segments/", &rev, seg_kv, &x, err, errsz);
    if (!rc && cb->log_start) rc = meta_etcd_range_all(m->c, "/kafscale/partitions/", &rev, state_kv, &x, err, errsz);
    bad_summary(&x);
    return rc;
}

static int op_load_partition(meta_t *mm, const char *topic, int32_t partition, const meta_load_cb_t *cb, char *err,
                             size_t errsz) {
    metcd_t *m = (metcd_t *)mm;
    char skey[META_KEY_MAX], prefix[META_KEY_MAX];
    if (meta_key_partition(skey, sizeof skey, topic, partition, "state") < 0 ||
        key_fmt(prefix, sizeof prefix, "segments", topic, "/%" PRId32 "/", partition) < 0) {
        snprintf(err, errsz, "topic name too long for a key");
        return -1;
    }
    load_ctx_t x = {.cb = cb, .only_topic = topic, .only_partition = partition};
    /* the state first: its answer's revision pins the segments read */
    etcd_range_result_t r;
    char e[512];
    int st = etcd_get(m->c, skey, &r, e, sizeof e);
    if (st) {
        snprintf(err, errsz, "cannot read %s from etcd: %s (%s)", skey, e, etcd_status_name(st));
        return -1;
    }
    int64_t rev = r.revision;
    int rc = meta_etcd_range_all(m->c, prefix, &rev, seg_kv, &x, err, errsz);
    if (!rc && r.nkvs) state_kv(&x, &r.kvs[0]);
    etcd_range_result_free(&r);
    bad_summary(&x);
    return rc;
}

/* ---- topics ---- */

static int topic_txn(metcd_t *m, const meta_topic_t *put, const char *del) {
    static const uint8_t zero[16];
    meta_topic_t with_id;
    if (put && !memcmp(put->id, zero, 16)) { /* as the snapshot will have it */
        with_id = *put;
        meta_topic_id_from_name(with_id.name, with_id.id);
        put = &with_id;
    }
    const char *name = put ? put->name : del;
    if (!m->writable) { errno = EBADF; return -1; }
    char tkey[META_KEY_MAX], pprefix[META_KEY_MAX];
    if (key_fmt(tkey, sizeof tkey, "topics", name, "%s", "") < 0 ||
        key_fmt(pprefix, sizeof pprefix, "partitions", name, "/") < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    uint8_t pend[META_KEY_MAX];
    size_t pend_len = etcd_prefix_end(pprefix, strlen(pprefix), pend);
    size_t tc_len = 0;
    uint8_t *tc = put ? meta_pb_topic_encode(put, &tc_len) : NULL;
    if (put && !tc) { errno = ENOMEM; return -1; }
    meta_topic_t *backfill = malloc(MAX_BACKFILL * sizeof *backfill);
    if (!backfill) { free(tc); errno = ENOMEM; return -1; }
    int rc = -1;
    bool gave_up = true; /* false once an error ends the attempts */
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        if (attempt) jitter_sleep(m, attempt);
        char e[600];
        etcd_range_result_t r;
        int st = etcd_get(m->c, META_KEY_SNAPSHOT, &r, e, sizeof e);
        if (st) { meta_etcd_log_error("cannot read " META_KEY_SNAPSHOT, st, e); errno = EIO; gave_up = false; break; }
        int nb = 0;
        char *doc = meta_snapshot_edit(r.nkvs ? (const char *)r.kvs[0].value : NULL, r.nkvs ? r.kvs[0].value_len : 0,
                                       put, del, backfill, MAX_BACKFILL, &nb, e, sizeof e);
        int64_t mod = kv_mod(&r);
        etcd_range_result_free(&r);
        if (!doc) {
            log_error("metadata: cannot %s topic %s: %s (fix or remove the key)", put ? "write" : "delete", name, e);
            errno = EINVAL;
            gave_up = false;
            break;
        }
        etcd_cmp_t cmp = {.target = mod ? ETCD_CMP_MOD : ETCD_CMP_VERSION, .op = ETCD_CMP_EQUAL,
                          .key = META_KEY_SNAPSHOT, .key_len = strlen(META_KEY_SNAPSHOT), .number = mod};
        etcd_op_t ops[3 + MAX_BACKFILL];
        uint8_t *bvals[MAX_BACKFILL];
        char bkeys[MAX_BACKFILL][300];
        int nops = 0;
        ops[nops++] = (etcd_op_t){.kind = ETCD_OP_PUT, .key = META_KEY_SNAPSHOT, .key_len = strlen(META_KEY_SNAPSHOT),
                                  .value = doc, .value_len = strlen(doc)};
        if (put) {
            ops[nops++] = (etcd_op_t){.kind = ETCD_OP_PUT, .key = tkey, .key_len = strlen(tkey), .value = tc,
                                      .value_len = tc_len};
        } else {
            ops[nops++] = (etcd_op_t){.kind = ETCD_OP_DELETE, .key = tkey, .key_len = strlen(tkey)};
            ops[nops++] = (etcd_op_t){.kind = ETCD_OP_DELETE, .key = pprefix, .key_len = strlen(pprefix),
                                      .range_end = pend, .range_end_len = pend_len};
        }
        int nbv = 0;
        for (int i = 0; i < nb; i++) {
            size_t bl;
            if (key_fmt(bkeys[nbv], sizeof bkeys[nbv], "topics", backfill[i].name, "%s", "") < 0) continue;
            if (!(bvals[nbv] = meta_pb_topic_encode(&backfill[i], &bl))) continue;
            ops[nops++] = (etcd_op_t){.kind = ETCD_OP_PUT, .key = bkeys[nbv], .key_len = strlen(bkeys[nbv]),
                                      .value = bvals[nbv], .value_len = bl};
            nbv++;
        }
        etcd_txn_result_t tr;
        st = etcd_txn(m->c, &cmp, 1, ops, nops, NULL, 0, &tr, e, sizeof e);
        free(doc);
        for (int i = 0; i < nbv; i++) free(bvals[i]);
        if (st == ETCD_OK) {
            bool ok = tr.succeeded;
            if (ok && tr.revision > m->base.snapshot_rev) m->base.snapshot_rev = tr.revision;
            etcd_txn_result_free(&tr);
            if (ok) {
                if (nbv) log_info("metadata: wrote the derived id of %d topic(s) into the snapshot", nbv);
                rc = 0;
                gave_up = false;
                break;
            }
            continue; /* another broker changed the snapshot: read it again */
        }
        if (st == ETCD_ERR_UNKNOWN) continue; /* maybe applied; applying it again is harmless */
        meta_etcd_log_error(put ? "cannot write a topic" : "cannot delete a topic", st, e);
        errno = EIO;
        gave_up = false;
        break;
    }
    if (gave_up) {
        log_error("metadata: topic %s: the snapshot kept changing, gave up after %d attempts", name, CAS_ATTEMPTS);
        errno = EAGAIN;
    }
    free(backfill);
    free(tc);
    return rc;
}

static int op_put_topic(meta_t *mm, const meta_topic_t *t) { return topic_txn((metcd_t *)mm, t, NULL); }
static int op_delete_topic(meta_t *mm, const char *name) { return topic_txn((metcd_t *)mm, NULL, name); }

/* ---- segments ---- */

typedef struct cpart {
    const char *topic;
    int32_t partition;
    int64_t fence;
    bool fenced;
    char leader_key[META_KEY_MAX];
} cpart_t;

typedef struct cseg {
    int idx;  /* into the caller's segs */
    int part; /* into parts */
    bool skip; /* a later segment of the call has the same key */
    char *key;
    uint8_t *val;
    size_t val_len;
} cseg_t;

static __thread const meta_segment_t *tl_segs; /* the segments cseg_cmp sorts (qsort has no argument) */

static int cseg_cmp(const void *a, const void *b) {
    const cseg_t *x = a, *y = b;
    if (x->part != y->part) return x->part < y->part ? -1 : 1;
    int64_t bx = tl_segs[x->idx].base_offset, by = tl_segs[y->idx].base_offset;
    if (bx != by) return bx < by ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* After a commit txn whose answer was lost: did it apply? Reads the keys it
 * put (one txn of ranges) and compares the values byte for byte. 1 yes, 0 no
 * (not, or not yet: repeating it is safe, it compares the fences again), -1
 * when even that read fails. */
static int puts_applied(metcd_t *m, const etcd_op_t *puts, int np) {
    etcd_op_t reads[MAX_TXN_OPS];
    for (int i = 0; i < np; i++)
        reads[i] = (etcd_op_t){.kind = ETCD_OP_RANGE, .key = puts[i].key, .key_len = puts[i].key_len};
    etcd_txn_result_t tr;
    char e[512];
    int st = etcd_txn(m->c, NULL, 0, reads, np, NULL, 0, &tr, e, sizeof e);
    if (st) {
        meta_etcd_log_error("cannot check an unanswered segment commit", st, e);
        return -1;
    }
    int applied = tr.nresults == np;
    for (int i = 0; applied && i < np; i++) {
        const etcd_range_result_t *r = &tr.results[i].range;
        applied = r->nkvs == 1 && r->kvs[0].value_len == puts[i].value_len &&
                  !memcmp(r->kvs[0].value, puts[i].value, puts[i].value_len);
    }
    etcd_txn_result_free(&tr);
    return applied;
}

/* A run of one partition's segments (at most MAX_TXN_OPS) in csegs. */
typedef struct piece { int part, from, n; } piece_t;

static int op_commit_segments(meta_t *mm, const meta_segment_t *segs, int n, uint8_t *fenced) {
    metcd_t *m = (metcd_t *)mm;
    if (fenced && n > 0) memset(fenced, 0, (size_t)n);
    if (n == 0) return 0;
    if (!m->writable) { errno = EBADF; return -1; }
    cpart_t *parts = calloc((size_t)n, sizeof *parts);
    cseg_t *cs = calloc((size_t)n, sizeof *cs);
    piece_t *pieces = calloc((size_t)n, sizeof *pieces);
    etcd_cmp_t *cmps = calloc(MAX_TXN_OPS, sizeof *cmps);
    etcd_op_t *puts = calloc(MAX_TXN_OPS, sizeof *puts), *reads = calloc(MAX_TXN_OPS, sizeof *reads);
    int *live = calloc(MAX_TXN_OPS, sizeof *live);
    int rc = -1, nparts = 0, ncs = 0, npieces = 0;
    if (!parts || !cs || !pieces || !cmps || !puts || !reads || !live) { errno = ENOMEM; goto out; }

    /* 1. the partitions of the call and their fences */
    int last = -1;
    for (int i = 0; i < n; i++) {
        const meta_segment_t *s = &segs[i];
        int k = last >= 0 && parts[last].partition == s->partition && !strcmp(parts[last].topic, s->topic) ? last : -1;
        for (int j = 0; k < 0 && j < nparts; j++)
            if (parts[j].partition == s->partition && !strcmp(parts[j].topic, s->topic)) k = j;
        if (k < 0) {
            k = nparts++;
            cpart_t *p = &parts[k];
            p->topic = s->topic;
            p->partition = s->partition;
            p->fence = fence_get(m, s->topic, s->partition);
            p->fenced = p->fence == 0;
            if (meta_key_partition(p->leader_key, sizeof p->leader_key, s->topic, s->partition, "leader") < 0) {
                errno = ENAMETOOLONG;
                goto out;
            }
        }
        last = k;
        if (parts[k].fenced) continue;
        cseg_t *c = &cs[ncs++];
        c->idx = i;
        c->part = k;
        char key[META_KEY_MAX];
        if (seg_key(key, sizeof key, s->topic, s->partition, s->base_offset) < 0) { errno = ENAMETOOLONG; goto out; }
        c->key = strdup(key);
        c->val = meta_pb_segment_encode(s, &c->val_len);
        if (!c->key || !c->val) { errno = ENOMEM; goto out; }
    }

    /* 2. by partition and base offset; a later segment of the same key wins
     * (etcd refuses two puts of one key in a txn) */
    tl_segs = segs;
    qsort(cs, (size_t)ncs, sizeof *cs, cseg_cmp);
    for (int i = 0; i + 1 < ncs; i++)
        if (cs[i].part == cs[i + 1].part && segs[cs[i].idx].base_offset == segs[cs[i + 1].idx].base_offset)
            cs[i].skip = true;
    /* pieces: one partition's segments, at most MAX_TXN_OPS each */
    for (int i = 0; i < ncs;) {
        int j = i, cnt = 0, from = -1;
        while (j < ncs && cs[j].part == cs[i].part) {
            if (!cs[j].skip) {
                if (from < 0) from = j;
                if (++cnt == MAX_TXN_OPS) { pieces[npieces++] = (piece_t){cs[i].part, from, cnt}; cnt = 0; from = -1; }
            }
            j++;
        }
        if (cnt) pieces[npieces++] = (piece_t){cs[i].part, from, cnt};
        i = j;
    }

    /* 3. transactions: pieces in order, as many per txn as the limits allow */
    for (int pi = 0; pi < npieces;) {
        int pj = pi, nput = 0;
        while (pj < npieces && pj - pi < MAX_TXN_OPS && nput + pieces[pj].n <= MAX_TXN_OPS) nput += pieces[pj++].n;
        int unknowns = 0;
        for (;;) {
            int ncmp = 0, np = 0;
            for (int q = pi; q < pj; q++) {
                cpart_t *p = &parts[pieces[q].part];
                if (p->fenced) continue;
                live[ncmp] = pieces[q].part;
                cmps[ncmp] = (etcd_cmp_t){.target = ETCD_CMP_MOD, .op = ETCD_CMP_EQUAL, .key = p->leader_key,
                                          .key_len = strlen(p->leader_key), .number = p->fence};
                reads[ncmp] = (etcd_op_t){.kind = ETCD_OP_RANGE, .key = p->leader_key,
                                          .key_len = strlen(p->leader_key), .keys_only = true};
                ncmp++;
                for (int k = pieces[q].from, left = pieces[q].n; left > 0; k++) {
                    if (cs[k].skip) continue;
                    puts[np++] = (etcd_op_t){.kind = ETCD_OP_PUT, .key = cs[k].key, .key_len = strlen(cs[k].key),
                                             .value = cs[k].val, .value_len = cs[k].val_len};
                    left--;
                }
            }
            if (!ncmp) break;
            etcd_txn_result_t tr;
            char e[512];
            int st = etcd_txn(m->c, cmps, ncmp, puts, np, reads, ncmp, &tr, e, sizeof e);
            if (st == ETCD_ERR_UNKNOWN && unknowns++ < 3) {
                /* sent, unanswered: find out before acting on either guess */
                int a = puts_applied(m, puts, np);
                if (a >= 0)
                    log_warn("metadata: a segment commit went unanswered (%s); it was %s", e,
                             a ? "applied" : "not applied: sending it again");
                if (a == 1) break;
                if (a == 0) continue;
            }
            if (st) {
                meta_etcd_log_error("cannot commit segments", st, e);
                errno = st == ETCD_ERR_UNKNOWN ? ETIMEDOUT : EIO;
                goto out;
            }
            if (tr.succeeded) { etcd_txn_result_free(&tr); break; }
            int newly = 0;
            for (int q = 0; q < ncmp && q < tr.nresults; q++) {
                cpart_t *p = &parts[live[q]];
                int64_t now = kv_mod(&tr.results[q].range);
                if (now != p->fence && !p->fenced) {
                    fence_lost(m, p->topic, p->partition, p->fence, now);
                    p->fenced = true;
                    newly++;
                }
            }
            etcd_txn_result_free(&tr);
            if (!newly) {
                log_warn("metadata: a segment commit failed although every fence holds");
                errno = EIO;
                goto out;
            }
        }
        pi = pj;
    }
    if (fenced)
        for (int i = 0; i < nparts; i++)
            if (parts[i].fenced)
                for (int k = 0; k < n; k++)
                    if (segs[k].partition == parts[i].partition && !strcmp(segs[k].topic, parts[i].topic)) fenced[k] = 1;
    rc = 0;
out:
    for (int i = 0; cs && i < ncs; i++) {
        free(cs[i].key);
        free(cs[i].val);
    }
    free(parts);
    free(cs);
    free(pieces);
    free(cmps);
    free(puts);
    free(reads);
    free(live);
    return rc;
}

/* A txn compared on the fence: ETCD status, with *fenced_now set (and the
 * fence cleared) when it failed because of the leader key. */
static int fenced_txn(metcd_t *m, const char *topic, int32_t p, const char *lkey, int64_t fence, etcd_cmp_t *cmps,
                      int ncmps, const etcd_op_t *ops, int nops, bool *succeeded, bool *fenced_now) {
    cmps[0] = (etcd_cmp_t){.target = ETCD_CMP_MOD, .op = ETCD_CMP_EQUAL, .key = lkey, .key_len = strlen(lkey),
                           .number = fence};
    etcd_op_t read = {.kind = ETCD_OP_RANGE, .key = lkey, .key_len = strlen(lkey), .keys_only = true};
    etcd_txn_result_t tr;
    char e[512];
    int st = etcd_txn(m->c, cmps, ncmps, ops, nops, &read, 1, &tr, e, sizeof e);
    *succeeded = *fenced_now = false;
    if (st) { meta_etcd_log_error("cannot remove segments", st, e); return st; }
    *succeeded = tr.succeeded;
    if (!tr.succeeded && tr.nresults >= 1) {
        int64_t now = kv_mod(&tr.results[0].range);
        if (now != fence) {
            fence_lost(m, topic, p, fence, now);
            *fenced_now = true;
        }
    }
    etcd_txn_result_free(&tr);
    return ETCD_OK;
}

static int op_remove_segments(meta_t *mm, const meta_segment_t *segs, int n, const char *topic, int32_t partition,
                              int64_t new_log_start) {
    metcd_t *m = (metcd_t *)mm;
    if (!m->writable) { errno = EBADF; return -1; }
    int64_t fence = fence_get(m, topic, partition);
    if (!fence) return -2;
    char lkey[META_KEY_MAX], skey[META_KEY_MAX];
    if (meta_key_partition(lkey, sizeof lkey, topic, partition, "leader") < 0 ||
        meta_key_partition(skey, sizeof skey, topic, partition, "state") < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char (*keys)[300] = calloc((size_t)(n ? n : 1), sizeof *keys);
    etcd_op_t *ops = calloc(MAX_TXN_OPS, sizeof *ops);
    etcd_cmp_t cmps[2];
    int rc = -1;
    if (!keys || !ops) { errno = ENOMEM; goto out; }
    for (int i = 0; i < n; i++)
        if (seg_key(keys[i], sizeof keys[i], topic, partition, segs[i].base_offset) < 0) {
            errno = ENAMETOOLONG;
            goto out;
        }
    /* the oldest segments first, 128 a txn; the last txn also moves the
     * log start (up to 127 deletes and the put of the state) */
    int split = n - (n < MAX_TXN_OPS - 1 ? n : MAX_TXN_OPS - 1);
    for (int from = 0; from < split; from += MAX_TXN_OPS) {
        int k = split - from < MAX_TXN_OPS ? split - from : MAX_TXN_OPS;
        for (int i = 0; i < k; i++)
            ops[i] = (etcd_op_t){.kind = ETCD_OP_DELETE, .key = keys[from + i], .key_len = strlen(keys[from + i])};
        bool ok, lost;
        if (fenced_txn(m, topic, partition, lkey, fence, cmps, 1, ops, k, &ok, &lost)) { errno = EIO; goto out; }
        if (!ok) { rc = lost ? -2 : -1; goto out; }
    }
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        if (attempt) jitter_sleep(m, attempt);
        etcd_range_result_t r;
        char e[512];
        int st = etcd_get(m->c, skey, &r, e, sizeof e);
        if (st) { meta_etcd_log_error("cannot read a partition state", st, e); errno = EIO; goto out; }
        size_t len = 0;
        uint8_t *val = meta_pb_state_with_log_start(r.nkvs ? r.kvs[0].value : NULL, r.nkvs ? r.kvs[0].value_len : 0,
                                                     topic, partition, new_log_start, &len, e, sizeof e);
        int64_t smod = kv_mod(&r);
        etcd_range_result_free(&r);
        if (!val) {
            log_error("metadata: %s: %s (fix or remove the key)", skey, e);
            errno = EINVAL;
            goto out;
        }
        int k = 0;
        for (int i = split; i < n; i++)
            ops[k++] = (etcd_op_t){.kind = ETCD_OP_DELETE, .key = keys[i], .key_len = strlen(keys[i])};
        ops[k++] = (etcd_op_t){.kind = ETCD_OP_PUT, .key = skey, .key_len = strlen(skey), .value = val, .value_len = len};
        cmps[1] = (etcd_cmp_t){.target = ETCD_CMP_MOD, .op = ETCD_CMP_EQUAL, .key = skey, .key_len = strlen(skey),
                               .number = smod};
        bool ok, lost;
        st = fenced_txn(m, topic, partition, lkey, fence, cmps, 2, ops, k, &ok, &lost);
        free(val);
        if (st == ETCD_ERR_UNKNOWN) continue; /* re-read: applying it again is harmless */
        if (st) { errno = EIO; goto out; }
        if (ok) { rc = 0; goto out; }
        if (lost) { rc = -2; goto out; }
        /* the state changed under us (a claim wrote the epoch): again */
    }
    log_error("metadata: %s kept changing, gave up after %d attempts", skey, CAS_ATTEMPTS);
    errno = EAGAIN;
out:
    free(keys);
    free(ops);
    return rc;
}

/* ---- dropping a deleted topic's segments ---- */

typedef struct find_topic { const char *name; bool found; uint8_t id[16]; } find_topic_t;

static void ft_topic(void *arg, const meta_topic_t *t) {
    find_topic_t *f = arg;
    if (!strcmp(t->name, f->name)) {
        f->found = true;
        memcpy(f->id, t->id, 16);
    }
}

typedef struct stale_keys {
    const uint8_t *keep_id;
    char **keys;
    int n, cap;
    bool oom;
} stale_keys_t;

static int stale_kv(void *arg, const etcd_kv_t *kv) {
    stale_keys_t *s = arg;
    meta_segment_t seg;
    char why[300];
    static const uint8_t zero[16];
    if (meta_pb_segment_decode(kv->value, kv->value_len, &seg, why, sizeof why)) return 0; /* not judged here */
    if (!memcmp(seg.topic_id, zero, 16) || !memcmp(seg.topic_id, s->keep_id, 16)) return 0;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **nk = realloc(s->keys, (size_t)cap * sizeof *nk);
        if (!nk) { s->oom = true; return -1; }
        s->keys = nk;
        s->cap = cap;
    }
    if (!(s->keys[s->n] = strdup((const char *)kv->key))) { s->oom = true; return -1; }
    s->n++;
    return 0;
}

static int op_drop_topic_segments(meta_t *mm, const char *topic) {
    metcd_t *m = (metcd_t *)mm;
    if (!m->writable) { errno = EBADF; return -1; }
    char prefix[META_KEY_MAX];
    if (key_fmt(prefix, sizeof prefix, "segments", topic, "/") < 0) { errno = ENAMETOOLONG; return -1; }
    uint8_t pend[META_KEY_MAX];
    size_t pend_len = etcd_prefix_end(prefix, strlen(prefix), pend);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        if (attempt) jitter_sleep(m, attempt);
        etcd_range_result_t r;
        char e[600];
        int st = etcd_get(m->c, META_KEY_SNAPSHOT, &r, e, sizeof e);
        if (st) { meta_etcd_log_error("cannot read " META_KEY_SNAPSHOT, st, e); errno = EIO; return -1; }
        find_topic_t f = {.name = topic};
        meta_load_cb_t cb = {.topic = ft_topic, .arg = &f};
        if (r.nkvs && meta_snapshot_parse((const char *)r.kvs[0].value, r.kvs[0].value_len, &cb, e, sizeof e) < 0) {
            log_error("metadata: cannot drop the segments of %s: %s", topic, e);
            etcd_range_result_free(&r);
            errno = EINVAL;
            return -1;
        }
        int64_t smod = kv_mod(&r), rev = r.revision;
        etcd_range_result_free(&r);
        etcd_cmp_t cmp = {.target = ETCD_CMP_MOD, .op = ETCD_CMP_EQUAL, .key = META_KEY_SNAPSHOT,
                          .key_len = strlen(META_KEY_SNAPSHOT), .number = smod};
        etcd_txn_result_t tr;
        if (!f.found) {
            /* no such topic (as of that snapshot): every segment goes */
            etcd_op_t del = {.kind = ETCD_OP_DELETE, .key = prefix, .key_len = strlen(prefix), .range_end = pend,
                             .range_end_len = pend_len};
            st = etcd_txn(m->c, &cmp, 1, &del, 1, NULL, 0, &tr, e, sizeof e);
            if (st == ETCD_ERR_UNKNOWN) continue;
            if (st) { meta_etcd_log_error("cannot drop segments", st, e); errno = EIO; return -1; }
            bool ok = tr.succeeded;
            etcd_txn_result_free(&tr);
            if (ok) return 0;
            continue;
        }
        /* the name was created again: only the previous topic's segments go */
        stale_keys_t s = {.keep_id = f.id};
        int rc = meta_etcd_range_all(m->c, prefix, &rev, stale_kv, &s, e, sizeof e);
        if (rc && !s.oom) log_warn("metadata: %s", e);
        bool again = false;
        for (int from = 0; !rc && from < s.n && !again; from += MAX_TXN_OPS) {
            etcd_op_t ops[MAX_TXN_OPS];
            int k = s.n - from < MAX_TXN_OPS ? s.n - from : MAX_TXN_OPS;
            for (int i = 0; i < k; i++)
                ops[i] = (etcd_op_t){.kind = ETCD_OP_DELETE, .key = s.keys[from + i], .key_len = strlen(s.keys[from + i])};
            st = etcd_txn(m->c, &cmp, 1, ops, k, NULL, 0, &tr, e, sizeof e);
            if (st == ETCD_ERR_UNKNOWN) { again = true; break; }
            if (st) { meta_etcd_log_error("cannot drop segments", st, e); rc = -1; break; }
            again = !tr.succeeded;
            etcd_txn_result_free(&tr);
        }
        for (int i = 0; i < s.n; i++) free(s.keys[i]);
        free(s.keys);
        if (rc) { errno = s.oom ? ENOMEM : EIO; return -1; }
        if (!again) return 0;
    }
    log_error("metadata: dropping the segments of %s: the snapshot kept changing, gave up", topic);
    errno = EAGAIN;
    return -1;
}

static const meta_ops_t etcd_ops = {
    .name = "etcd",
    .close = op_close,
    .load = op_load,
    .load_partition = op_load_partition,
    .put_topic = op_put_topic,
    .delete_topic = op_delete_topic,
    .set_fence = op_set_fence,
    .commit_segments = op_commit_segments,
    .remove_segments = op_remove_segments,
    .drop_topic_segments = op_drop_topic_segments,
};
