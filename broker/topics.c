/* topics.c - the broker's topics and partitions: a name-hashed registry kept
 * in creation order, creation with validation, deletion and auto-creation.
 * Metadata persistence arrives with the metadata store (issue 3/6); until
 * then topics live as long as the process. */
#include "broker.h"

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

static void topic_free(topic_t *t) {
    KS_ASSERT(t->magic == TOPIC_MAGIC);
    for (int32_t i = 0; i < t->npartitions; i++) plog_free(&t->partitions[i].log);
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
    }
    uint32_t b = name_hash(name) % TOPIC_BUCKETS;
    t->hash_next = buckets[b];
    buckets[b] = t;
    TAILQ_INSERT_TAIL(&all_topics, t, link);
    ntopics++;
    log_info("created topic %s with %d partition(s)", t->name, npartitions);
    if (out) *out = t;
    return KERR_NONE;
}

int16_t topic_delete(kstr_t name) {
    topic_t *t = topic_find(name);
    if (!t) return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    for (topic_t **pp = &buckets[name_hash(name) % TOPIC_BUCKETS]; *pp; pp = &(*pp)->hash_next) {
        if (*pp == t) { *pp = t->hash_next; break; }
    }
    TAILQ_REMOVE(&all_topics, t, link);
    ntopics--;
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
