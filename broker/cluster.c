/* cluster.c - many brokers over one etcd (the contract is in cluster.h).
 *
 * Threads. etcd calls block, so none runs on the event loop:
 *   - the cluster thread owns the etcd view: it re-reads the registrations,
 *     the topic snapshot and the leader keys whenever a watch says something
 *     changed (and every few seconds anyway), computes who should lead what,
 *     claims, releases, re-registers after a lost lease;
 *   - the keepalive thread renews our lease every TTL/3 and publishes the
 *     time until which the lease is certainly alive (lease_deadline, on the
 *     monotonic clock shared with the flusher);
 *   - three watch threads (etcd.c) only wake the cluster thread.
 * The cluster thread hands its results to the event loop as messages
 * (a locked queue and event_active); the loop hands back RELEASED and drain
 * changes the same way. Partition state (partition_t.lead) is only touched
 * on the loop.
 *
 * Fencing. Produce is taken only while lease_deadline is ahead (a broker
 * paused past its TTL refuses writes the moment it runs again, before it
 * even learns the lease is gone), the flusher uploads only while it is ahead
 * (FP_LEASE), and every segment commit compares the claim's revision, which
 * a lapsed lease or a new owner changes. */
#include "cluster.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "http.h"
#include "etcd.h"
#include "group.h"
#include "meta.h"
#include "metrics.h"
#include "kafscale/metadata.pb-c.h"

#define PFX "/kafscale/"
#define RELEASE_TIMEOUT_MS 15000 /* a release that cannot flush gives up (drops unflushed) */

/* flush_link.c */
void partition_drop_all(partition_t *p, int64_t new_start);
void partition_drop_unflushed(partition_t *p);
/* topics.c */
void topics_apply_snapshot(const meta_topic_t *topics, int n);
int64_t topics_snapshot_revision(void);

/* ---- messages between the threads ---- */

enum { M_VIEW = 1, M_CLAIMED, M_RELEASE, M_LEASE_LOST, /* to the loop */
       M_RELEASED, M_DRAIN, M_RESYNC };            /* to the cluster thread */

typedef struct cleader {
    char topic[250];
    int32_t partition;
    int32_t broker_id, epoch;
    int64_t mod_rev, lease;
} cleader_t;

typedef struct cmsg {
    int type;
    char topic[250];
    int32_t partition, epoch;
    int64_t rev;
    bool flag;
    /* M_VIEW */
    cluster_broker_t *brokers;
    int nbrokers;
    cleader_t *leaders;
    int nleaders;
    meta_topic_t *topics; /* NULL: unchanged */
    int ntopics;
    int64_t snap_rev;     /* the snapshot's mod revision */
    int64_t lease;        /* our lease when the view was read */
    struct cmsg *next;
} cmsg_t;

typedef struct cqueue {
    cmsg_t *head, *tail;
} cqueue_t;

static void cq_push(cqueue_t *q, cmsg_t *m) {
    m->next = NULL;
    if (q->tail) q->tail->next = m;
    else q->head = m;
    q->tail = m;
}

static cmsg_t *cq_take_all(cqueue_t *q) {
    cmsg_t *m = q->head;
    q->head = q->tail = NULL;
    return m;
}

static void cmsg_free(cmsg_t *m) {
    free(m->brokers);
    free(m->leaders);
    free(m->topics);
    free(m);
}

static cmsg_t *cmsg_new(int type) {
    cmsg_t *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->type = type;
    return m;
}

/* ---- state ---- */

typedef struct ctopic {
    char name[250];
    uint8_t id[16];
    int32_t np;
} ctopic_t;

typedef struct released_key { /* a RELEASE we asked the loop for */
    char topic[250];
    int32_t partition;
    int64_t rev;
} released_key_t;

static struct {
    bool enabled;
    etcd_config_t ecfg;
    etcd_t *etcd;
    int64_t ttl_sec;
    int32_t me;
    int64_t started_ms;

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, dirty, lease_lost;
    cqueue_t to_thread, to_loop;
    int64_t lease;           /* current lease id (0: none) */
    _Atomic int64_t lease_deadline; /* mono ms until which the lease is certainly alive */
    _Atomic int releases_pending;   /* handed over on the loop, claim not yet deleted in etcd */

    /* cluster thread only */
    pthread_t thr, ka_thr;
    bool threads_up;
    etcd_watch_t *w_brokers, *w_parts, *w_snap;
    bool draining;
    cluster_broker_t *brokers;
    int nbrokers;
    ctopic_t *topics;
    int ntopics;
    int64_t snap_mod_rev;
    released_key_t *released;
    int nreleased, released_cap;

    /* event loop only */
    struct event *wake_ev, *tick_ev;
    cluster_broker_t *view_brokers;
    int view_nbrokers;
    int64_t last_sent_deadline;
    bool any_releasing;      /* some partition may be PL_RELEASING */
} C;

bool cluster_enabled(void) { return C.enabled; }

bool cluster_lease_alive(void) { return !C.enabled || mono_ms() < atomic_load(&C.lease_deadline); }

bool cluster_can_write(const partition_t *p) { return p->lead == PL_LEADER && cluster_lease_alive(); }

static void post_to_loop(cmsg_t *m) {
    pthread_mutex_lock(&C.mu);
    cq_push(&C.to_loop, m);
    pthread_mutex_unlock(&C.mu);
    event_active(C.wake_ev, EV_READ, 0);
}

static void post_to_thread(cmsg_t *m) {
    pthread_mutex_lock(&C.mu);
    cq_push(&C.to_thread, m);
    pthread_cond_broadcast(&C.cv);
    pthread_mutex_unlock(&C.mu);
}

/* Asks the cluster thread to delete our claim of topic[partition] if it is
 * still the one at rev. counted: the claim is in releases_pending. */
static void post_released(const char *topic, int32_t partition, int64_t rev, bool counted) {
    cmsg_t *m = cmsg_new(M_RELEASED);
    snprintf(m->topic, sizeof m->topic, "%s", topic);
    m->partition = partition;
    m->rev = rev;
    m->flag = counted;
    post_to_thread(m);
}

static void kick_thread(void) {
    pthread_mutex_lock(&C.mu);
    C.dirty = true;
    pthread_cond_broadcast(&C.cv);
    pthread_mutex_unlock(&C.mu);
}

/* ---- hashing: who leads what ---- */

static uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t score(const char *key, size_t keylen, int32_t a, int32_t broker) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < keylen; i++) h = (h ^ (uint8_t)key[i]) * 1099511628211ULL;
    h = mix64(h ^ ((uint64_t)(uint32_t)a << 32));
    return mix64(h ^ (uint64_t)(uint32_t)broker);
}

/* The brokers that take work: live and not draining (all live ones when
 * every one drains). */
static int eligible(const cluster_broker_t *b, int n, int32_t *out) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!b[i].draining) out[k++] = b[i].id;
    if (!k)
        for (int i = 0; i < n; i++) out[k++] = b[i].id;
    return k;
}

/* Owners of the np partitions of a topic: each partition goes to the
 * highest-scoring broker that has fewer than ceil(np / n) of this topic's
 * partitions, so a topic spreads evenly and mostly stays put as brokers
 * come and go. */
static void assign_topic(const char *topic, int32_t np, const int32_t *ids, int n, int32_t *owner) {
    if (!n) {
        for (int32_t p = 0; p < np; p++) owner[p] = -1;
        return;
    }
    int32_t cap = (np + n - 1) / n;
    int32_t load[n];
    memset(load, 0, sizeof load);
    size_t tl = strlen(topic);
    for (int32_t p = 0; p < np; p++) {
        int best = -1;
        uint64_t best_s = 0;
        for (int i = 0; i < n; i++) {
            if (load[i] >= cap) continue;
            uint64_t s = score(topic, tl, p, ids[i]);
            if (best < 0 || s > best_s) { best = i; best_s = s; }
        }
        owner[p] = ids[best];
        load[best]++;
    }
}

static int32_t coordinator_of(const char *key, size_t len, const cluster_broker_t *b, int n) {
    int32_t ids[n > 0 ? n : 1];
    int k = eligible(b, n, ids);
    int32_t best = -1;
    uint64_t best_s = 0;
    for (int i = 0; i < k; i++) {
        uint64_t s = score(key, len, -1, ids[i]);
        if (best < 0 || s > best_s) { best = ids[i]; best_s = s; }
    }
    return best;
}

/* ---- etcd helpers (cluster thread) ---- */

static void key_leader(char *out, size_t sz, const char *topic, int32_t p) {
    snprintf(out, sz, PFX "partitions/%s/%d/leader", topic, p);
}

static void key_state(char *out, size_t sz, const char *topic, int32_t p) {
    snprintf(out, sz, PFX "partitions/%s/%d/state", topic, p);
}

static int put_registration(void) {
    char key[64], err[512];
    snprintf(key, sizeof key, PFX "brokers/%d", C.me);
    Kafscale__Metadata__BrokerRegistration r = KAFSCALE__METADATA__BROKER_REGISTRATION__INIT;
    r.host = g_broker.cfg.advertised_host;
    r.port = g_broker.cfg.advertised_port;
    r.rack = (char *)env_str("KAFSCALE_BROKER_RACK", "");
    r.version = (char *)"kafscale-c";
    r.broker_id = C.me;
    r.started_ms = C.started_ms;
    r.lease_id = C.lease;
    r.draining = C.draining;
    size_t n = kafscale__metadata__broker_registration__get_packed_size(&r);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return -1;
    kafscale__metadata__broker_registration__pack(&r, buf);
    int rc = etcd_put(C.etcd, key, strlen(key), buf, n, C.lease, NULL, err, sizeof err);
    free(buf);
    if (rc) log_warn("cluster: cannot register broker %d: %s", C.me, err);
    return rc ? -1 : 0;
}

/* A new lease and our registration under it. A registration left by an
 * earlier run of this broker id has its lease revoked first, so the claims
 * of that run go at once instead of after the TTL. */
static int join(void) {
    char err[512], key[64];
    snprintf(key, sizeof key, PFX "brokers/%d", C.me);
    etcd_range_result_t r = {0};
    /* Our id registered from another address: an earlier run of ours that
     * moved (a pod with a new IP) expires within its TTL; a live broker with
     * the same id keeps renewing it. */
    for (int64_t waited = 0; waited <= C.ttl_sec + 3; waited++) {
        if (etcd_get(C.etcd, key, &r, err, sizeof err) != ETCD_OK || r.nkvs != 1 || !r.kvs[0].lease) break;
        Kafscale__Metadata__BrokerRegistration *reg =
            kafscale__metadata__broker_registration__unpack(NULL, r.kvs[0].value_len, r.kvs[0].value);
        bool elsewhere = reg && (reg->port != g_broker.cfg.advertised_port || !reg->host ||
                                 strcmp(reg->host, g_broker.cfg.advertised_host));
        if (elsewhere && waited == 0)
            log_warn("cluster: broker id %d is registered from %s:%d (we are %s:%d): waiting for that lease to "
                     "expire", C.me, reg->host, reg->port, g_broker.cfg.advertised_host, g_broker.cfg.advertised_port);
        if (reg) kafscale__metadata__broker_registration__free_unpacked(reg, NULL);
        if (!elsewhere) break;
        etcd_range_result_free(&r);
        if (waited == C.ttl_sec + 3) {
            log_error("cluster: broker id %d stays registered by a live broker at another address: broker ids "
                      "must be unique (KAFSCALE_BROKER_ID)", C.me);
            return -2;
        }
        sleep(1);
    }
    if (r.nkvs == 1 && r.kvs[0].lease) {
        int64_t old = r.kvs[0].lease;
        pthread_mutex_lock(&C.mu);
        bool ours = old == C.lease;
        pthread_mutex_unlock(&C.mu);
        if (!ours && etcd_lease_revoke(C.etcd, old, err, sizeof err) == ETCD_OK)
            log_info("cluster: revoked the lease %lld of an earlier run of broker %d", (long long)old, C.me);
    }
    etcd_range_result_free(&r);
    int64_t id = 0, ttl = 0;
    int64_t t0 = mono_ms();
    if (etcd_lease_grant(C.etcd, C.ttl_sec, 0, &id, &ttl, err, sizeof err) != ETCD_OK) {
        log_warn("cluster: cannot get a lease: %s", err);
        return -1;
    }
    pthread_mutex_lock(&C.mu);
    C.lease = id;
    C.lease_lost = false;
    pthread_mutex_unlock(&C.mu);
    atomic_store(&C.lease_deadline, t0 + (ttl > 0 ? ttl : C.ttl_sec) * 1000);
    if (put_registration() != 0) return -1;
    log_info("cluster: broker %d joined (lease %llx, ttl %llds)", C.me, (unsigned long long)id, (long long)ttl);
    C.nreleased = 0;
    return 0;
}

static void *keepalive_main(void *arg) {
    int64_t period = C.ttl_sec * 1000 / 3;
    if (period < 200) period = 200;
    int64_t due = mono_ms() + period;
    pthread_mutex_lock(&C.mu);
    while (!C.stop) {
        /* The condition variable is shared with the cluster thread: wake-ups
         * meant for it must not renew early. */
        int64_t wait = due - mono_ms();
        if (wait > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
            pthread_cond_timedwait(&C.cv, &C.mu, &ts);
            continue;
        }
        due = mono_ms() + period;
        if (C.stop) break;
        int64_t lease = C.lease;
        if (!lease || C.lease_lost) continue;
        pthread_mutex_unlock(&C.mu);
        char err[512];
        int64_t ttl = 0, t0 = mono_ms();
        int rc = etcd_lease_keepalive(C.etcd, lease, &ttl, err, sizeof err);
        pthread_mutex_lock(&C.mu);
        if (lease != C.lease) continue;
        if (rc == ETCD_OK && ttl > 0) {
            atomic_store(&C.lease_deadline, t0 + ttl * 1000);
        } else if (rc == ETCD_OK || rc == ETCD_ERR_NOT_FOUND) {
            log_warn("cluster: our lease expired");
            C.lease_lost = true;
            atomic_store(&C.lease_deadline, 0);
            pthread_cond_broadcast(&C.cv);
        } else {
            log_warn("cluster: lease keepalive failed: %s", err);
        }
    }
    pthread_mutex_unlock(&C.mu);
    return NULL;
}

/* Reads [prefix, prefix end). */
static int range_prefix(const char *prefix, etcd_range_result_t *out) {
    char err[512];
    uint8_t end[256];
    size_t kl = strlen(prefix);
    size_t el = etcd_prefix_end(prefix, kl, end);
    etcd_range_req_t rq = {.key = prefix, .key_len = kl, .range_end = end, .range_end_len = el};
    int rc = etcd_range(C.etcd, &rq, out, err, sizeof err);
    if (rc) log_warn("cluster: cannot read %s: %s", prefix, err);
    return rc;
}

static int cmp_broker(const void *a, const void *b) {
    const cluster_broker_t *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int read_brokers(void) {
    etcd_range_result_t r = {0};
    if (range_prefix(PFX "brokers/", &r)) return -1;
    cluster_broker_t *b = calloc((size_t)r.nkvs + 1, sizeof *b);
    if (!b) abort();
    int n = 0;
    for (int i = 0; i < r.nkvs; i++) {
        Kafscale__Metadata__BrokerRegistration *reg =
            kafscale__metadata__broker_registration__unpack(NULL, r.kvs[i].value_len, r.kvs[i].value);
        if (!reg) { log_warn("cluster: bad registration at %s", (char *)r.kvs[i].key); continue; }
        if (reg->broker_id >= 0 && reg->port > 0 && reg->port < 65536 && reg->host && *reg->host) {
            b[n].id = reg->broker_id;
            snprintf(b[n].host, sizeof b[n].host, "%s", reg->host);
            b[n].port = reg->port;
            snprintf(b[n].rack, sizeof b[n].rack, "%s", reg->rack ? reg->rack : "");
            b[n].draining = reg->draining;
            n++;
        }
        kafscale__metadata__broker_registration__free_unpacked(reg, NULL);
    }
    etcd_range_result_free(&r);
    qsort(b, (size_t)n, sizeof *b, cmp_broker);
    free(C.brokers);
    C.brokers = b;
    C.nbrokers = n;
    return 0;
}

typedef struct snap_acc {
    meta_topic_t *t;
    int n, cap;
} snap_acc_t;

static void snap_topic_cb(void *arg, const meta_topic_t *t) {
    snap_acc_t *a = arg;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->t = realloc(a->t, (size_t)a->cap * sizeof *a->t);
        if (!a->t) abort();
    }
    a->t[a->n++] = *t;
}

/* The snapshot; *topics_out is set (malloc'd) when it changed since the last read. */
static int read_snapshot(meta_topic_t **topics_out, int *ntopics_out) {
    char err[512];
    etcd_range_result_t r = {0};
    *topics_out = NULL;
    if (etcd_get(C.etcd, PFX "metadata/snapshot", &r, err, sizeof err)) {
        log_warn("cluster: cannot read the snapshot: %s", err);
        return -1;
    }
    int64_t rev = r.nkvs ? r.kvs[0].mod_revision : 0;
    if (rev == C.snap_mod_rev && C.topics) {
        etcd_range_result_free(&r);
        return 0;
    }
    snap_acc_t acc = {0};
    if (r.nkvs) {
        meta_load_cb_t cb = {.topic = snap_topic_cb, .arg = &acc};
        int bad = meta_snapshot_parse((const char *)r.kvs[0].value, r.kvs[0].value_len, &cb, err, sizeof err);
        if (bad < 0) {
            /* Unusable (someone wrote garbage): keep the topics we have. */
            log_error("cluster: ignoring the topic snapshot at revision %lld: %s", (long long)rev, err);
            C.snap_mod_rev = rev;
            etcd_range_result_free(&r);
            free(acc.t);
            return 0;
        }
        if (bad > 0) log_warn("cluster: the topic snapshot has %d bad entr%s (skipped): %s", bad, bad == 1 ? "y" : "ies", err);
    }
    etcd_range_result_free(&r);
    ctopic_t *ct = calloc((size_t)acc.n + 1, sizeof *ct);
    if (!ct) abort();
    for (int i = 0; i < acc.n; i++) {
        snprintf(ct[i].name, sizeof ct[i].name, "%s", acc.t[i].name);
        memcpy(ct[i].id, acc.t[i].id, 16);
        ct[i].np = acc.t[i].npartitions;
    }
    free(C.topics);
    C.topics = ct;
    C.ntopics = acc.n;
    C.snap_mod_rev = rev;
    *topics_out = acc.t ? acc.t : calloc(1, sizeof(meta_topic_t));
    *ntopics_out = acc.n;
    return 0;
}

static int read_leaders(cleader_t **out, int *nout) {
    etcd_range_result_t r = {0};
    if (range_prefix(PFX "partitions/", &r)) return -1;
    cleader_t *l = calloc((size_t)r.nkvs + 1, sizeof *l);
    if (!l) abort();
    int n = 0;
    for (int i = 0; i < r.nkvs; i++) {
        const char *k = (const char *)r.kvs[i].key;
        size_t kl = r.kvs[i].key_len;
        if (kl < 7 || strcmp(k + kl - 7, "/leader")) continue;
        Kafscale__Metadata__PartitionAssignment *a =
            kafscale__metadata__partition_assignment__unpack(NULL, r.kvs[i].value_len, r.kvs[i].value);
        if (!a) { log_warn("cluster: bad leader key %s", k); continue; }
        /* The key names the partition; the value says who holds it. */
        const char *t0 = k + strlen(PFX "partitions/");
        const char *slash = strchr(t0, '/');
        if (slash && (size_t)(slash - t0) < sizeof l[n].topic) {
            memcpy(l[n].topic, t0, (size_t)(slash - t0));
            l[n].partition = (int32_t)strtol(slash + 1, NULL, 10);
            l[n].broker_id = a->broker_id;
            l[n].epoch = a->epoch;
            l[n].mod_rev = r.kvs[i].mod_revision;
            l[n].lease = r.kvs[i].lease;
            n++;
        }
        kafscale__metadata__partition_assignment__free_unpacked(a, NULL);
    }
    etcd_range_result_free(&r);
    *out = l;
    *nout = n;
    return 0;
}

static const cleader_t *leader_of(const cleader_t *l, int n, const char *topic, int32_t p) {
    for (int i = 0; i < n; i++)
        if (l[i].partition == p && !strcmp(l[i].topic, topic)) return &l[i];
    return NULL;
}

/* Claims a partition: see cluster.h. */
static void claim(const ctopic_t *t, int32_t p) {
    char kl[400], ks[400], err[512];
    key_leader(kl, sizeof kl, t->name, p);
    key_state(ks, sizeof ks, t->name, p);
    etcd_range_result_t r = {0};
    if (etcd_get(C.etcd, ks, &r, err, sizeof err)) { log_warn("cluster: claim %s: %s", ks, err); return; }
    Kafscale__Metadata__PartitionState *old = NULL;
    int64_t state_mod = 0;
    if (r.nkvs) {
        state_mod = r.kvs[0].mod_revision;
        old = kafscale__metadata__partition_state__unpack(NULL, r.kvs[0].value_len, r.kvs[0].value);
        if (!old) log_warn("cluster: %s holds a bad PartitionState: it is rewritten", ks);
    }
    int32_t epoch = (old ? old->leader_epoch : 0) + 1;
    Kafscale__Metadata__PartitionState st = KAFSCALE__METADATA__PARTITION_STATE__INIT;
    st.topic = (char *)t->name;
    st.partition = p;
    st.leader_epoch = epoch;
    st.log_start_offset = old ? old->log_start_offset : 0;
    st.log_end_offset = old ? old->log_end_offset : 0;
    st.high_watermark = old ? old->high_watermark : 0;
    st.topic_id = (ProtobufCBinaryData){16, (uint8_t *)t->id};
    st.leader_id = C.me;
    size_t sn = kafscale__metadata__partition_state__get_packed_size(&st);
    uint8_t *sbuf = malloc(sn + 1);
    Kafscale__Metadata__PartitionAssignment a = KAFSCALE__METADATA__PARTITION_ASSIGNMENT__INIT;
    a.epoch = epoch;
    a.broker_id = C.me;
    a.lease_id = C.lease;
    a.assigned_ms = now_ms();
    a.topic = (char *)t->name;
    a.partition = p;
    a.topic_id = (ProtobufCBinaryData){16, (uint8_t *)t->id};
    size_t an = kafscale__metadata__partition_assignment__get_packed_size(&a);
    uint8_t *abuf = malloc(an + 1);
    if (!sbuf || !abuf) abort();
    kafscale__metadata__partition_state__pack(&st, sbuf);
    kafscale__metadata__partition_assignment__pack(&a, abuf);
    if (old) kafscale__metadata__partition_state__free_unpacked(old, NULL);
    etcd_range_result_free(&r);

    etcd_cmp_t cmps[2] = {
        {.target = ETCD_CMP_CREATE, .op = ETCD_CMP_EQUAL, .key = kl, .key_len = strlen(kl), .number = 0},
        {.target = ETCD_CMP_MOD, .op = ETCD_CMP_EQUAL, .key = ks, .key_len = strlen(ks), .number = state_mod},
    };
    etcd_op_t ops[2] = {
        {.kind = ETCD_OP_PUT, .key = kl, .key_len = strlen(kl), .value = abuf, .value_len = an, .lease = C.lease},
        {.kind = ETCD_OP_PUT, .key = ks, .key_len = strlen(ks), .value = sbuf, .value_len = sn},
    };
    etcd_txn_result_t tr = {0};
    int rc = etcd_txn(C.etcd, cmps, 2, ops, 2, NULL, 0, &tr, err, sizeof err);
    free(abuf);
    free(sbuf);
    if (rc) {
        log_warn("cluster: claim of %s[%d] failed: %s", t->name, p, err);
    } else if (tr.succeeded) {
        log_info("cluster: leading %s[%d] (epoch %d)", t->name, p, epoch);
        metrics_add(M_CLUSTER_CLAIMS, 1);
        cmsg_t *m = cmsg_new(M_CLAIMED);
        snprintf(m->topic, sizeof m->topic, "%s", t->name);
        m->partition = p;
        m->epoch = epoch;
        m->rev = tr.revision;
        post_to_loop(m);
    }
    etcd_txn_result_free(&tr);
}

/* Deletes our leader key if it still is the claim at `rev`. */
static void delete_claim(const char *topic, int32_t p, int64_t rev) {
    char kl[400], err[512];
    key_leader(kl, sizeof kl, topic, p);
    etcd_cmp_t cmp = {.target = ETCD_CMP_MOD, .op = ETCD_CMP_EQUAL, .key = kl, .key_len = strlen(kl), .number = rev};
    etcd_op_t op = {.kind = ETCD_OP_DELETE, .key = kl, .key_len = strlen(kl)};
    etcd_txn_result_t tr = {0};
    if (etcd_txn(C.etcd, &cmp, 1, &op, 1, NULL, 0, &tr, err, sizeof err))
        log_warn("cluster: cannot release %s[%d]: %s", topic, p, err);
    else if (tr.succeeded)
        log_info("cluster: released %s[%d]", topic, p);
    etcd_txn_result_free(&tr);
}

/* The index of a RELEASE we asked the loop for, -1 none. */
static int release_find(const char *topic, int32_t p, int64_t rev) {
    for (int i = 0; i < C.nreleased; i++)
        if (C.released[i].rev == rev && C.released[i].partition == p && !strcmp(C.released[i].topic, topic))
            return i;
    return -1;
}

static void release_remember(const char *topic, int32_t p, int64_t rev) {
    if (C.nreleased == C.released_cap) {
        C.released_cap = C.released_cap ? C.released_cap * 2 : 64;
        C.released = realloc(C.released, (size_t)C.released_cap * sizeof *C.released);
        if (!C.released) abort();
    }
    released_key_t *k = &C.released[C.nreleased++];
    snprintf(k->topic, sizeof k->topic, "%s", topic);
    k->partition = p;
    k->rev = rev;
}

static void release_forget(const char *topic, int32_t p, int64_t rev) {
    int i = release_find(topic, p, rev);
    if (i >= 0) C.released[i] = C.released[--C.nreleased];
}

/* Re-reads everything, tells the loop, claims and releases. */
static void resync(void) {
    if (read_brokers()) return;
    meta_topic_t *topics = NULL;
    int ntopics = 0;
    if (read_snapshot(&topics, &ntopics)) return;
    cleader_t *leaders = NULL;
    int nleaders = 0;
    if (read_leaders(&leaders, &nleaders)) { free(topics); return; }

    cmsg_t *v = cmsg_new(M_VIEW);
    v->brokers = malloc(((size_t)C.nbrokers + 1) * sizeof *v->brokers);
    v->leaders = malloc(((size_t)nleaders + 1) * sizeof *v->leaders);
    if (!v->brokers || !v->leaders) abort();
    memcpy(v->brokers, C.brokers, (size_t)C.nbrokers * sizeof *v->brokers);
    v->nbrokers = C.nbrokers;
    memcpy(v->leaders, leaders, (size_t)nleaders * sizeof *v->leaders);
    v->nleaders = nleaders;
    v->topics = topics;
    v->ntopics = ntopics;
    v->snap_rev = C.snap_mod_rev;
    v->lease = C.lease;
    post_to_loop(v);

    bool registered = false;
    for (int i = 0; i < C.nbrokers; i++) registered |= C.brokers[i].id == C.me;
    if (!registered) {
        /* Our registration is gone (lease lost, or someone deleted it). */
        if (put_registration() == 0) kick_thread();
        free(leaders);
        return;
    }
    if (__atomic_load_n(&g_broker.stopping, __ATOMIC_RELAXED)) { /* shutting down: claim nothing more */
        free(leaders);
        return;
    }
    int32_t ids[C.nbrokers > 0 ? C.nbrokers : 1];
    int nids = eligible(C.brokers, C.nbrokers, ids);
    int64_t lease = C.lease;
    for (int ti = 0; ti < C.ntopics; ti++) {
        const ctopic_t *t = &C.topics[ti];
        int32_t *owner = malloc((size_t)t->np * sizeof *owner);
        if (!owner) abort();
        assign_topic(t->name, t->np, ids, nids, owner);
        for (int32_t p = 0; p < t->np; p++) {
            const cleader_t *l = leader_of(leaders, nleaders, t->name, p);
            if (l && l->broker_id == C.me) {
                if (l->lease != lease) {
                    delete_claim(t->name, p, l->mod_rev); /* an earlier run's */
                } else if (owner[p] != C.me && release_find(t->name, p, l->mod_rev) < 0) {
                    release_remember(t->name, p, l->mod_rev);
                    cmsg_t *m = cmsg_new(M_RELEASE);
                    snprintf(m->topic, sizeof m->topic, "%s", t->name);
                    m->partition = p;
                    m->rev = l->mod_rev;
                    post_to_loop(m);
                }
            } else if (!l && owner[p] == C.me) {
                claim(t, p);
            }
        }
        free(owner);
    }
    /* Claims of ours on topics that are gone. */
    for (int i = 0; i < nleaders; i++) {
        if (leaders[i].broker_id != C.me) continue;
        bool known = false;
        for (int ti = 0; ti < C.ntopics && !known; ti++)
            known = !strcmp(C.topics[ti].name, leaders[i].topic) && leaders[i].partition < C.topics[ti].np;
        if (!known) delete_claim(leaders[i].topic, leaders[i].partition, leaders[i].mod_rev);
    }
    free(leaders);
}

static void *cluster_main(void *arg) {
    int64_t next_full = 0;
    pthread_mutex_lock(&C.mu);
    while (!C.stop) {
        cmsg_t *in = cq_take_all(&C.to_thread);
        bool lost = C.lease_lost, dirty = C.dirty;
        C.dirty = false;
        pthread_mutex_unlock(&C.mu);
        bool changed = dirty || mono_ms() >= next_full;
        for (cmsg_t *m = in, *next; m; m = next) {
            next = m->next;
            if (m->type == M_RELEASED) {
                delete_claim(m->topic, m->partition, m->rev);
                release_forget(m->topic, m->partition, m->rev);
                if (m->flag) atomic_fetch_sub(&C.releases_pending, 1);
            } else if (m->type == M_DRAIN) {
                C.draining = m->flag;
                put_registration();
            }
            changed = true;
            cmsg_free(m);
        }
        if (lost || !C.lease) {
            if (C.lease) post_to_loop(cmsg_new(M_LEASE_LOST));
            pthread_mutex_lock(&C.mu);
            C.lease = 0;
            pthread_mutex_unlock(&C.mu);
            if (join() != 0) {
                pthread_mutex_lock(&C.mu);
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                if (!C.stop) pthread_cond_timedwait(&C.cv, &C.mu, &ts);
                continue;
            }
            changed = true;
        }
        if (changed) {
            resync();
            next_full = mono_ms() + 2000;
        }
        pthread_mutex_lock(&C.mu);
        if (C.stop || C.dirty || C.to_thread.head || C.lease_lost) continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        pthread_cond_timedwait(&C.cv, &C.mu, &ts);
    }
    pthread_mutex_unlock(&C.mu);
    return NULL;
}

static void watch_events(void *arg, const etcd_event_t *ev, int n) { kick_thread(); }
static void watch_status(void *arg, bool connected, int64_t rev, const char *why) {
    if (connected) kick_thread(); /* events may have been missed while it was down */
}

static etcd_watch_t *watch(const char *key, bool prefix) {
    static uint8_t ends[3][256];
    static int nend;
    char err[256];
    etcd_watch_req_t rq = {.key = key, .key_len = strlen(key)};
    if (prefix) {
        uint8_t *end = ends[nend++ % 3];
        rq.range_end = end;
        rq.range_end_len = etcd_prefix_end(key, strlen(key), end);
    }
    etcd_watch_cb_t cb = {.events = watch_events, .status = watch_status};
    etcd_watch_t *w = etcd_watch_start(C.etcd, &rq, &cb, err, sizeof err);
    if (!w) log_error("cluster: cannot watch %s: %s", key, err);
    return w;
}

/* ---- the event loop's side ---- */

/* We no longer lead p: the flusher is told, and everything held for it goes
 * (waiting producers are told to retry). */
static void partition_unlead(partition_t *p) {
    flink_send_unlead(p);
    partition_drop_all(p, 0);
    p->lead = PL_NONE;
    p->lead_rev = 0;
    p->leader_id = -1;
}

static void release_finish(partition_t *p) {
    log_info("cluster: %s[%d] handed over at offset %lld", p->topic->name, p->index, (long long)p->log.hw);
    int64_t rev = p->lead_rev;
    partition_unlead(p);
    atomic_fetch_add(&C.releases_pending, 1);
    post_released(p->topic->name, p->index, rev, true);
}

static void release_check(partition_t *p) {
    if (p->lead != PL_RELEASING) return;
    if (p->log.hw >= p->log.next_offset) {
        release_finish(p);
    } else if (now_ms() >= p->release_deadline_ms) {
        log_warn("cluster: %s[%d]: %lld offset(s) could not be made durable before the handover: dropped",
                 p->topic->name, p->index, (long long)(p->log.next_offset - p->log.hw));
        partition_drop_unflushed(p);
        release_finish(p);
    } else {
        flink_flush_hint();
    }
}

void cluster_on_committed(partition_t *p) {
    if (p->lead == PL_RELEASING) release_check(p);
}

static void lose_all(const char *why) {
    int n = 0;
    for (topic_t *t = topics_first(); t; t = topics_next(t))
        for (int32_t i = 0; i < t->npartitions; i++) {
            partition_t *p = &t->partitions[i];
            if (p->lead == PL_NONE) continue;
            partition_unlead(p);
            n++;
        }
    if (n) log_warn("cluster: %s: gave up %d partition(s); waiting producers are told to retry", why, n);
    group_forget_all();
    kreq_wake_parked();
}

static void apply_view(cmsg_t *m) {
    /* A snapshot read before our own latest change to it (CreateTopics
     * here, say) would undo that change locally: the watch brings a newer one. */
    if (m->topics && m->snap_rev >= topics_snapshot_revision()) topics_apply_snapshot(m->topics, m->ntopics);
    else if (m->topics) kick_thread();
    free(C.view_brokers);
    C.view_brokers = m->brokers;
    C.view_nbrokers = m->nbrokers;
    m->brokers = NULL;
    for (topic_t *t = topics_first(); t; t = topics_next(t))
        for (int32_t i = 0; i < t->npartitions; i++)
            if (t->partitions[i].lead == PL_NONE) t->partitions[i].leader_id = -1;
    for (int i = 0; i < m->nleaders; i++) {
        const cleader_t *l = &m->leaders[i];
        partition_t *p = partition_find(kstr_c(l->topic), l->partition);
        if (p && p->lead == PL_NONE && l->broker_id == C.me && l->lease == m->lease && m->lease) {
            /* etcd says we lead it but we do not (our state of it was lost,
             * e.g. the topic was briefly forgotten): give the claim back so
             * it is claimed afresh. Deleting it twice is harmless. */
            post_released(l->topic, l->partition, l->mod_rev, false);
            continue;
        }
        if (!p || p->lead != PL_NONE) continue;
        /* A leader whose registration is gone is about to lose its lease. */
        if (cluster_broker_find(l->broker_id)) p->leader_id = l->broker_id;
        if (l->epoch > p->leader_epoch) p->leader_epoch = l->epoch;
    }
    group_coordinators_changed();
}

static void apply_claimed(cmsg_t *m) {
    partition_t *p = partition_find(kstr_c(m->topic), m->partition);
    if (!p) {
        /* The topic is not here (yet, or any more): give the claim back. */
        post_released(m->topic, m->partition, m->rev, false);
        return;
    }
    if (p->lead != PL_NONE) partition_drop_all(p, 0);
    p->lead = PL_LOADING;
    p->lead_rev = m->rev;
    p->leader_epoch = m->epoch;
    p->leader_id = C.me;
    flink_send_lead(p); /* the flusher loads its committed end and answers LED */
}

static void apply_release(cmsg_t *m) {
    partition_t *p = partition_find(kstr_c(m->topic), m->partition);
    if (!p || p->lead_rev != m->rev || p->lead == PL_NONE) {
        post_released(m->topic, m->partition, m->rev, false);
        return;
    }
    if (p->lead == PL_RELEASING) return;
    log_info("cluster: handing %s[%d] over", p->topic->name, p->index);
    p->lead = PL_RELEASING;
    C.any_releasing = true; /* tick_cb moves it along (timeout) */
    p->release_deadline_ms = now_ms() + RELEASE_TIMEOUT_MS;
    release_check(p);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) {
    pthread_mutex_lock(&C.mu);
    cmsg_t *in = cq_take_all(&C.to_loop);
    pthread_mutex_unlock(&C.mu);
    for (cmsg_t *m = in, *next; m; m = next) {
        next = m->next;
        switch (m->type) {
        case M_VIEW: apply_view(m); break;
        case M_CLAIMED: apply_claimed(m); break;
        case M_RELEASE: apply_release(m); break;
        case M_LEASE_LOST: lose_all("our etcd lease was lost"); break;
        }
        cmsg_free(m);
    }
}

/* Every 100 ms: pass the lease deadline to the flusher, notice a lapsed
 * lease at once, move releases along. */
static void tick_cb(evutil_socket_t fd, short what, void *arg) {
    int64_t d = atomic_load(&C.lease_deadline);
    if (d != C.last_sent_deadline) {
        flink_send_lease(d);
        C.last_sent_deadline = d;
    }
    if (!C.any_releasing) return;
    bool still = false;
    for (topic_t *t = topics_first(); t; t = topics_next(t))
        for (int32_t i = 0; i < t->npartitions; i++) {
            partition_t *p = &t->partitions[i];
            if (p->lead != PL_RELEASING) continue;
            release_check(p);
            still |= p->lead == PL_RELEASING;
        }
    C.any_releasing = still;
}

void cluster_flusher_ready(void) {
    if (!C.enabled) return;
    C.last_sent_deadline = -1;
    tick_cb(-1, 0, NULL);
    for (topic_t *t = topics_first(); t; t = topics_next(t))
        for (int32_t i = 0; i < t->npartitions; i++) {
            partition_t *p = &t->partitions[i];
            if (p->lead != PL_NONE) flink_send_lead(p);
        }
}

void cluster_on_led(partition_t *p, int64_t rev, int64_t end, int64_t log_start) {
    if (p->lead_rev != rev || p->lead == PL_NONE) return;
    if (p->lead == PL_LOADING) {
        /* The log was emptied at the claim and the flusher's DURABLE
         * reports since then listed the committed segments. */
        plog_t *l = &p->log;
        KS_ASSERT(l->count == 0);
        l->next_offset = l->hw = end;
        l->start_offset = log_start < end ? log_start : end;
        if (p->nsegs && p->segs[0].base_offset > l->start_offset) l->start_offset = p->segs[0].base_offset;
        p->lead = PL_LEADER;
        log_info("cluster: %s[%d] ready at offset %lld (log start %lld, epoch %d)", p->topic->name, p->index,
                 (long long)end, (long long)p->log.start_offset, p->leader_epoch);
    } else if (end > p->log.hw && end <= p->log.next_offset) {
        /* A restarted flusher found more committed than we knew. */
        partition_committed(p, end);
    }
    kreq_wake_parked();
}

void cluster_on_fenced(partition_t *p, int64_t rev) {
    if (p->lead_rev != rev || p->lead == PL_NONE) return;
    log_warn("cluster: %s[%d]: our claim was taken over (fenced); giving the partition up", p->topic->name, p->index);
    metrics_add(M_CLUSTER_FENCED, 1);
    partition_unlead(p);
    /* If the claim is still ours (the flusher could not load the partition),
     * give it back so that it is claimed afresh. */
    post_released(p->topic->name, p->index, rev, false);
}

int cluster_brokers(const cluster_broker_t **out) {
    static cluster_broker_t self;
    if (C.enabled) {
        *out = C.view_brokers;
        return C.view_nbrokers;
    }
    self.id = g_broker.cfg.node_id;
    snprintf(self.host, sizeof self.host, "%s", g_broker.cfg.advertised_host);
    self.port = g_broker.cfg.advertised_port;
    *out = &self;
    return 1;
}

const cluster_broker_t *cluster_broker_find(int32_t id) {
    const cluster_broker_t *b;
    int n = cluster_brokers(&b);
    for (int i = 0; i < n; i++)
        if (b[i].id == id) return &b[i];
    return NULL;
}

int32_t cluster_coordinator(kstr_t key) {
    if (!C.enabled) return g_broker.cfg.node_id;
    return coordinator_of(key.p ? key.p : "", key.len > 0 ? (size_t)key.len : 0, C.view_brokers, C.view_nbrokers);
}

void cluster_set_draining(bool on) {
    if (!C.enabled) return;
    cmsg_t *m = cmsg_new(M_DRAIN);
    m->flag = on;
    post_to_thread(m);
}

/* /readyz (http.h): the metadata store is etcd; ready while our lease is
 * certainly alive. */
bool meta_link_ready(char *why, size_t whysz) {
    if (cluster_lease_alive()) return true;
    snprintf(why, whysz, "etcd: our lease is not known to be alive (etcd unreachable, or we were paused)");
    return false;
}

int cluster_partitions_led(void) {
    int n = atomic_load(&C.releases_pending); /* handed over, claim not yet deleted */
    for (topic_t *t = topics_first(); t; t = topics_next(t))
        for (int32_t i = 0; i < t->npartitions; i++) n += t->partitions[i].lead != PL_NONE;
    return n;
}

/* /metrics: the cluster's etcd client (the metadata stores keep their own). */
static void etcd_collector(void *arg) {
    if (!C.etcd) return;
    etcd_stats_t st;
    etcd_get_stats(C.etcd, &st);
    metrics_set(M_ETCD_OPS, (double)st.requests, "cluster");
    metrics_set(M_ETCD_ERRORS, (double)st.errors, "cluster");
    metrics_set(M_CLUSTER_BROKERS, C.view_nbrokers);
}

/* ---- start and stop ---- */

bool cluster_configure(void) {
    C.enabled = etcd_config_from_env(&C.ecfg);
    C.ttl_sec = env_int("KAFSCALE_LEASE_TTL_SEC", 10, 2, 3600);
    return C.enabled;
}

int cluster_start(void) {
    if (!C.enabled) return 0;
    char err[512];
    C.me = g_broker.cfg.node_id;
    C.started_ms = now_ms();
    C.etcd = etcd_open(&C.ecfg, err, sizeof err);
    if (!C.etcd) { log_error("cluster: %s", err); return -1; }
    pthread_mutex_init(&C.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&C.cv, &ca);
    metrics_add_collector(etcd_collector, NULL);
    C.wake_ev = event_new(g_broker.base, -1, EV_PERSIST, wake_cb, NULL);
    C.tick_ev = event_new(g_broker.base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tick = {0, 100000};
    event_add(C.wake_ev, NULL);
    event_add(C.tick_ev, &tick);
    int jrc = join();
    if (jrc != 0) {
        if (jrc == -1) log_error("cluster: cannot join through etcd at %s", C.ecfg.endpoints[0]);
        return -1;
    }
    C.w_brokers = watch(PFX "brokers/", true);
    C.w_parts = watch(PFX "partitions/", true);
    C.w_snap = watch(PFX "metadata/snapshot", false);
    /* The first view before the Kafka port opens: Metadata names every broker. */
    resync();
    wake_cb(-1, 0, NULL);
    if (pthread_create(&C.thr, NULL, cluster_main, NULL) || pthread_create(&C.ka_thr, NULL, keepalive_main, NULL)) {
        log_error("cluster: cannot start threads");
        return -1;
    }
    C.threads_up = true;
    log_info("cluster: broker %d of %d live, etcd %s, lease ttl %llds", C.me, C.nbrokers, C.ecfg.endpoints[0],
             (long long)C.ttl_sec);
    return 0;
}

void cluster_shutdown(void) {
    if (!C.enabled || !C.etcd) return;
    pthread_mutex_lock(&C.mu);
    C.stop = true;
    pthread_cond_broadcast(&C.cv);
    pthread_mutex_unlock(&C.mu);
    if (C.threads_up) {
        pthread_join(C.thr, NULL);
        pthread_join(C.ka_thr, NULL);
    }
    if (C.w_brokers) etcd_watch_stop(C.w_brokers);
    if (C.w_parts) etcd_watch_stop(C.w_parts);
    if (C.w_snap) etcd_watch_stop(C.w_snap);
    char err[256];
    /* Everything is durable by now (flink_shutdown): our claims and
     * registration go with the lease, and the others take over at once. */
    if (C.lease && etcd_lease_revoke(C.etcd, C.lease, err, sizeof err) == ETCD_OK)
        log_info("cluster: left (lease revoked)");
    for (cmsg_t *m = cq_take_all(&C.to_loop), *n; m; m = n) { n = m->next; cmsg_free(m); }
    for (cmsg_t *m = cq_take_all(&C.to_thread), *n; m; m = n) { n = m->next; cmsg_free(m); }
    if (C.wake_ev) event_free(C.wake_ev);
    if (C.tick_ev) event_free(C.tick_ev);
    etcd_close(C.etcd);
    C.etcd = NULL;
    free(C.brokers);
    free(C.topics);
    free(C.released);
    free(C.view_brokers);
}
