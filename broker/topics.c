/* topics.c - the broker's topics and partitions: a name-hashed registry kept
 * in creation order, creation with validation, deletion, auto-creation, and
 * the changes admin APIs make (configs, more partitions).
 * Topics are kept in the metadata store (the broker writes the topics
 * journal; see common/meta.h) and loaded from it at start together with the
 * committed segments, which give every partition its end offset. */
#include "broker.h"
#include "cluster.h"
#include "meta.h"
#include "topic_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define TOPIC_BUCKETS 1024

static topic_t *buckets[TOPIC_BUCKETS];
static struct topic_list all_topics = TAILQ_HEAD_INITIALIZER(all_topics);
static int ntopics;

static uint32_t name_hash(kstr_t s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int32_t i = 0; i < s.len; i++) h = (h ^ (uint8_t)s.p[i]) * 16777619u;
    return h;
}

void topics_init(void) {}

static meta_t *meta;

static void topic_free(topic_t *t) {
    KS_ASSERT(t->magic == TOPIC_MAGIC);
    for (int32_t i = 0; i < t->npartitions; i++) {
        partition_t *p = &t->partitions[i];
        g_broker.mem_bytes -= p->log.bytes;
        g_broker.unflushed_bytes -= p->unflushed_bytes;
        plog_free(&p->log);
        free(p->segs);
    }
    free(t->partitions);
    t->magic = 0;
    free(t);
}

void topics_shutdown(void) {
    topic_t *t;
    while ((t = TAILQ_FIRST(&all_topics))) {
        TAILQ_REMOVE(&all_topics, t, link);
        topic_free(t);
    }
    memset(buckets, 0, sizeof buckets);
    ntopics = 0;
    meta_close(meta);
    meta = NULL;
}

/* Topic configs that differ from the defaults, as "name=value" lines. */
typedef struct cfg_out { char *p; size_t left; } cfg_out_t;
static void cfg_emit(void *arg, const char *name, const char *value, bool is_default) {
    cfg_out_t *o = arg;
    if (is_default || !value) return;
    int n = snprintf(o->p, o->left, "%s=%s\n", name, value);
    if (n > 0 && (size_t)n < o->left) { o->p += n; o->left -= (size_t)n; }
}

static int persist_topic(topic_t *t) {
    if (!meta) return 0;
    meta_topic_t mt;
    memset(&mt, 0, sizeof mt);
    snprintf(mt.name, sizeof mt.name, "%s", t->name);
    memcpy(mt.id, t->id.b, 16);
    mt.npartitions = t->npartitions;
    cfg_out_t o = {mt.configs, sizeof mt.configs};
    topic_config_describe(&t->config, cfg_emit, &o);
    return meta_put_topic(meta, &mt);
}

/* ---- loading at start ---- */

static void load_topic(void *arg, const meta_topic_t *mt) {
    kstr_t names[64], values[64];
    int n = 0;
    char buf[sizeof mt->configs];
    snprintf(buf, sizeof buf, "%s", mt->configs);
    for (char *line = strtok(buf, "\n"); line && n < 64; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        names[n] = kstr_c(line);
        values[n] = kstr_c(eq + 1);
        n++;
    }
    const char *msg;
    topic_t *t;
    meta_t *saved = meta;
    meta = NULL; /* do not write back what we are reading */
    int16_t err = topic_create(kstr_c(mt->name), mt->npartitions, names, values, n, false, &t, &msg);
    meta = saved;
    if (err) {
        log_error("metadata: cannot restore topic %s: %s", mt->name, msg ? msg : kafka_err_name(err));
        return;
    }
    memcpy(t->id.b, mt->id, 16);
}

static void load_segment(void *arg, const meta_segment_t *s) {
    partition_t *p = partition_find(kstr_c(s->topic), s->partition);
    if (!p) return;
    static const uint8_t zero[16];
    if (memcmp(s->topic_id, zero, 16) && memcmp(s->topic_id, p->topic->id.b, 16)) return; /* an older same-name topic */
    if (arg) { /* reload: only learn segments, offsets come from the flusher */
        partition_add_segment(p, &(pseg_t){s->base_offset, s->last_offset, s->size, s->max_timestamp});
        return;
    }
    partition_add_segment(p, &(pseg_t){s->base_offset, s->last_offset, s->size, s->max_timestamp});
    if (s->last_offset + 1 > p->log.next_offset) {
        p->log.next_offset = p->log.hw = s->last_offset + 1;
    }
    if (p->nsegs == 1 || s->base_offset < p->log.start_offset) p->log.start_offset = p->segs[0].base_offset;
}

static void load_log_start(void *arg, const char *topic, int32_t partition, int64_t start) {
    partition_t *p = partition_find(kstr_c(topic), partition);
    if (p) partition_set_log_start(p, start);
}

/* Re-reads the committed segments (after the flusher reported commits we had
 * not heard of), so that reads of them find them. */
void topics_reload_segments(void) {
    char err[512];
    meta_load_cb_t cb = {NULL, load_segment, NULL, (void *)1};
    if (meta && meta_load(meta, &cb, err, sizeof err)) log_warn("metadata: %s", err);
}

int topics_load(void) {
    char err[512];
    meta = meta_open(g_broker.cfg.data_dir, "topics", err, sizeof err);
    if (!meta) { log_error("metadata: %s", err); return -1; }
    meta_load_cb_t cb = {load_topic, load_segment, load_log_start, NULL};
    /* A cluster's broker learns a partition's segments when it takes the
     * partition over (the flusher loads them then): reading every segment of
     * every partition at start would be read again, or never used. */
    if (cluster_enabled()) cb.segment = NULL, cb.log_start = NULL;
    if (meta_load(meta, &cb, err, sizeof err)) { log_error("metadata: %s", err); return -1; }
    int n = 0;
    int64_t msgs = 0;
    for (topic_t *t = topics_first(); t; t = topics_next(t), n++)
        for (int32_t i = 0; i < t->npartitions; i++) {
            partition_t *p = &t->partitions[i];
            p->log.start_offset = p->nsegs ? (p->log.start_offset > p->segs[0].base_offset ? p->log.start_offset : p->segs[0].base_offset) : p->log.next_offset;
            msgs += p->log.next_offset - p->log.start_offset;
        }
    if (n) log_info("metadata: restored %d topic(s), %lld message(s) in committed segments", n, (long long)msgs);
    return 0;
}

topic_t *topic_find(kstr_t name) {
    if (name.len <= 0) return NULL;
    for (topic_t *t = buckets[name_hash(name) % TOPIC_BUCKETS]; t; t = t->hash_next)
        if (kstr_eq_c(name, t->name)) return t;
    return NULL;
}

partition_t *partition_find(kstr_t name, int32_t index) {
    topic_t *t = topic_find(name);
    if (!t || index < 0 || index >= t->npartitions) return NULL;
    return &t->partitions[index];
}

topic_t *topics_first(void) { return TAILQ_FIRST(&all_topics); }
topic_t *topics_next(topic_t *t) { return TAILQ_NEXT(t, link); }
int topics_count(void) { return ntopics; }

#define MAX_PARTITIONS 100000

int16_t topic_create(kstr_t name, int32_t npartitions, const kstr_t *config_names, const kstr_t *config_values,
                     int nconfigs, bool validate_only, topic_t **out, const char **errmsg) {
    *errmsg = NULL;
    if (out) *out = NULL;
    if (!kafka_topic_name_valid(name)) {
        *errmsg = "Topic name is illegal: it must be 1 to 249 characters of [a-zA-Z0-9._-] and not '.' or '..'";
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    if (topic_find(name)) {
        *errmsg = "Topic already exists.";
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    if (npartitions <= 0 || npartitions > MAX_PARTITIONS) {
        *errmsg = "Number of partitions must be between 1 and 100000.";
        return KERR_INVALID_PARTITIONS;
    }
    topic_config_t cfg;
    topic_config_defaults(&cfg);
    for (int i = 0; i < nconfigs; i++) {
        int16_t e = topic_config_set(&cfg, config_names[i], config_values[i], errmsg);
        if (e) return e;
    }
    if (validate_only) return KERR_NONE;

    topic_t *t = calloc(1, sizeof *t);
    partition_t *parts = calloc((size_t)npartitions, sizeof *parts);
    if (!t || !parts) {
        free(t);
        free(parts);
        *errmsg = "Out of memory.";
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    t->magic = TOPIC_MAGIC;
    kstr_cpy(t->name, sizeof t->name, name);
    if (getrandom(t->id.b, sizeof t->id.b, 0) != (ssize_t)sizeof t->id.b)
        for (size_t i = 0; i < sizeof t->id.b; i++) t->id.b[i] = (uint8_t)rand();
    t->id.b[6] = (uint8_t)((t->id.b[6] & 0x0f) | 0x40); /* a version 4 UUID */
    t->id.b[8] = (uint8_t)((t->id.b[8] & 0x3f) | 0x80);
    t->npartitions = npartitions;
    t->partitions = parts;
    t->config = cfg;
    for (int32_t i = 0; i < npartitions; i++) {
        parts[i].topic = t;
        parts[i].index = i;
        parts[i].leader_epoch = 0;
        plog_init(&parts[i].log, 0);
        parts[i].lead = cluster_enabled() ? PL_NONE : PL_LEADER;
        parts[i].leader_id = cluster_enabled() ? -1 : g_broker.cfg.node_id;
    }
    uint32_t b = name_hash(name) % TOPIC_BUCKETS;
    t->hash_next = buckets[b];
    buckets[b] = t;
    TAILQ_INSERT_TAIL(&all_topics, t, link);
    ntopics++;
    if (persist_topic(t) != 0) {
        log_error("cannot write topic %s to the metadata store", t->name);
        TAILQ_REMOVE(&all_topics, t, link);
        buckets[b] = t->hash_next;
        ntopics--;
        topic_free(t);
        *errmsg = "Cannot write the topic to the metadata store.";
        return KERR_KAFKA_STORAGE_ERROR;
    }
    if (meta) {
        log_info("created topic %s with %d partition(s)", t->name, npartitions);
        flink_send_topic(t);
    }
    if (out) *out = t;
    return KERR_NONE;
}

int16_t topic_set_config(topic_t *t, const topic_config_t *cfg, const char **errmsg) {
    KS_ASSERT(t->magic == TOPIC_MAGIC);
    *errmsg = NULL;
    topic_config_t old = t->config;
    t->config = *cfg;
    if (persist_topic(t) != 0) {
        t->config = old;
        log_error("cannot write the new configs of topic %s to the metadata store", t->name);
        *errmsg = "Cannot write the topic to the metadata store.";
        return KERR_KAFKA_STORAGE_ERROR;
    }
    log_info("topic %s: configs changed", t->name);
    flink_send_topic(t); /* retention and segment size reach the flusher */
    return KERR_NONE;
}

/* The partitions array is reallocated: nothing keeps a partition_t pointer
 * across event-loop turns (parked requests and store reads look partitions
 * up by topic name and index again). */
int16_t topic_add_partitions(topic_t *t, int32_t count, bool validate_only, const char **errmsg) {
    KS_ASSERT(t->magic == TOPIC_MAGIC);
    static char msg[160];
    *errmsg = NULL;
    if (count < t->npartitions) {
        snprintf(msg, sizeof msg, "Topic currently has %d partitions, which is higher than the requested %d.",
                 t->npartitions, count);
        *errmsg = msg;
        return KERR_INVALID_PARTITIONS;
    }
    if (count == t->npartitions) {
        snprintf(msg, sizeof msg, "Topic already has %d partitions.", t->npartitions);
        *errmsg = msg;
        return KERR_INVALID_PARTITIONS;
    }
    if (count > MAX_PARTITIONS) {
        *errmsg = "Number of partitions must be between 1 and 100000.";
        return KERR_INVALID_PARTITIONS;
    }
    if (validate_only) return KERR_NONE;
    partition_t *parts = realloc(t->partitions, (size_t)count * sizeof *parts);
    if (!parts) {
        *errmsg = "Out of memory.";
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    t->partitions = parts;
    int32_t old = t->npartitions;
    memset(parts + old, 0, (size_t)(count - old) * sizeof *parts);
    for (int32_t i = old; i < count; i++) {
        parts[i].topic = t;
        parts[i].index = i;
        parts[i].leader_epoch = 0;
        plog_init(&parts[i].log, 0);
        parts[i].lead = cluster_enabled() ? PL_NONE : PL_LEADER;
        parts[i].leader_id = cluster_enabled() ? -1 : g_broker.cfg.node_id;
    }
    t->npartitions = count;
    if (persist_topic(t) != 0) {
        for (int32_t i = old; i < count; i++) plog_free(&parts[i].log);
        t->npartitions = old;
        log_error("cannot write the new partition count of topic %s to the metadata store", t->name);
        *errmsg = "Cannot write the topic to the metadata store.";
        return KERR_KAFKA_STORAGE_ERROR;
    }
    log_info("topic %s: grown from %d to %d partition(s)", t->name, old, count);
    flink_send_topic(t); /* the flusher grows its view from the TOPIC frame */
    return KERR_NONE;
}

static bool forgetting; /* topics_apply_snapshot: a delete that another broker did */

int16_t topic_delete(kstr_t name) {
    topic_t *t = topic_find(name);
    if (!t) return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    for (topic_t **pp = &buckets[name_hash(name) % TOPIC_BUCKETS]; *pp; pp = &(*pp)->hash_next) {
        if (*pp == t) { *pp = t->hash_next; break; }
    }
    TAILQ_REMOVE(&all_topics, t, link);
    ntopics--;
    if (meta && meta_delete_topic(meta, t->name) != 0) log_error("cannot record the deletion of %s in metadata", t->name);
    if (cluster_enabled())
        for (int32_t i = 0; i < t->npartitions; i++)
            if (t->partitions[i].lead != PL_NONE) flink_send_unlead(&t->partitions[i]);
    if (!forgetting) flink_send_delete(t->name); /* the objects go once, by the broker that deleted it */
    log_info("deleted topic %s", t->name);
    topic_free(t);
    /* Parked fetches may refer to the topic by name: let them re-check. */
    kreq_wake_parked();
    return KERR_NONE;
}

topic_t *topic_auto_create(kstr_t name, int16_t *err) {
    topic_t *t = topic_find(name);
    if (t) { *err = KERR_NONE; return t; }
    if (!kafka_topic_name_valid(name)) { *err = KERR_INVALID_TOPIC_EXCEPTION; return NULL; }
    if (!g_broker.cfg.auto_create_topics) { *err = KERR_UNKNOWN_TOPIC_OR_PARTITION; return NULL; }
    const char *msg;
    *err = topic_create(name, g_broker.cfg.auto_create_partitions, NULL, NULL, 0, false, &t, &msg);
    if (*err == KERR_TOPIC_ALREADY_EXISTS) { *err = KERR_NONE; return topic_find(name); }
    return *err ? NULL : t;
}

/* Cluster: the revision of our own last change to the topic snapshot. */
int64_t topics_snapshot_revision(void) { return meta ? meta_snapshot_revision(meta) : 0; }

/* Cluster: the topic snapshot in etcd is the truth (cluster.c reads it when
 * its watch fires). Topics are created, grown, re-configured and forgotten
 * here to match it, without writing back. */
void topics_apply_snapshot(const meta_topic_t *mt, int n) {
    meta_t *saved = meta;
    meta = NULL;
    for (topic_t *t = topics_first(), *next; t; t = next) {
        next = topics_next(t);
        const meta_topic_t *m = NULL;
        for (int i = 0; i < n && !m; i++)
            if (!strcmp(mt[i].name, t->name)) m = &mt[i];
        if (!m || memcmp(m->id, t->id.b, 16)) {
            log_info("cluster: topic %s is gone from the snapshot%s", t->name, m ? " (re-created)" : "");
            forgetting = true;
            topic_delete(kstr_c(t->name));
            forgetting = false;
        }
    }
    for (int i = 0; i < n; i++) {
        topic_t *t = topic_find(kstr_c(mt[i].name));
        if (!t) {
            load_topic(NULL, &mt[i]);
            t = topic_find(kstr_c(mt[i].name));
            if (t) {
                log_info("cluster: topic %s with %d partition(s)", t->name, t->npartitions);
                flink_send_topic(t);
            }
            continue;
        }
        const char *msg;
        if (mt[i].npartitions > t->npartitions) topic_add_partitions(t, mt[i].npartitions, false, &msg);
        char now[sizeof mt[i].configs] = "";
        cfg_out_t o = {now, sizeof now};
        topic_config_describe(&t->config, cfg_emit, &o);
        if (strcmp(now, mt[i].configs)) {
            topic_config_t cfg;
            topic_config_defaults(&cfg);
            char buf[sizeof mt[i].configs];
            snprintf(buf, sizeof buf, "%s", mt[i].configs);
            for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                char *eq = strchr(line, '=');
                if (!eq) continue;
                *eq = 0;
                if (topic_config_set(&cfg, kstr_c(line), kstr_c(eq + 1), &msg))
                    log_warn("cluster: topic %s: config %s ignored: %s", t->name, line, msg ? msg : "invalid");
            }
            topic_set_config(t, &cfg, &msg);
        }
    }
    meta = saved;
}
