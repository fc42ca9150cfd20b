/* meta_pb.c - meta.h structs <-> kafscale.metadata protobuf messages
 * (contract in meta_pb.h). Encoding points the generated message's fields
 * at the struct's own bytes (nothing copied but the config entries), packs
 * into one malloc'd buffer; decoding unpacks with protobuf-c, checks every
 * field, then copies into the fixed-size struct.
 */
#include "meta_pb.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "kafscale/metadata.pb-c.h"
#include "log.h"

#define MAX_PARTITIONS 100000
/* more entries than meta_topic_t.configs could ever hold ("k=\n" is 3 bytes) */
#define MAX_CONFIGS (sizeof ((meta_topic_t *)0)->configs / 3 + 1)

static bool topic_name_ok(const char *name) {
    size_t n = strnlen(name, 250);
    return n < 250 && kafka_topic_name_valid((kstr_t){name, (int32_t)n});
}

/* "123" -> 123; false for anything that is not a whole int64. */
static bool parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

uint8_t *meta_pb_topic_encode(const meta_topic_t *t, size_t *len) {
    KS_ASSERT(memchr(t->name, 0, sizeof t->name) && memchr(t->configs, 0, sizeof t->configs));
    KS_ASSERT(t->npartitions >= 1);
    Kafscale__Metadata__TopicConfig m = KAFSCALE__METADATA__TOPIC_CONFIG__INIT;
    m.name = (char *)t->name;
    m.partitions = t->npartitions;
    m.replication_factor = 1;
    m.topic_id.data = (uint8_t *)t->id;
    m.topic_id.len = sizeof t->id;

    /* configs: "name=value\n" lines -> map entries (pointing into a copy) */
    char cfg[sizeof t->configs];
    memcpy(cfg, t->configs, sizeof cfg);
    Kafscale__Metadata__TopicConfig__ConfigEntry entries[MAX_CONFIGS], *ptrs[MAX_CONFIGS];
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(cfg, "\n", &save); line && n < MAX_CONFIGS; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq || eq == line) continue; /* not a config line: meta.h's readers skip it too */
        *eq = '\0';
        kafscale__metadata__topic_config__config_entry__init(&entries[n]);
        entries[n].key = line;
        entries[n].value = eq + 1;
        ptrs[n] = &entries[n];
        int64_t v;
        if (parse_i64(eq + 1, &v)) {
            if (!strcmp(line, "retention.ms")) m.retention_ms = v;
            else if (!strcmp(line, "retention.bytes")) m.retention_bytes = v;
            else if (!strcmp(line, "segment.bytes")) m.segment_bytes = v;
        }
        n++;
    }
    m.n_config = n;
    m.config = ptrs;

    size_t sz = kafscale__metadata__topic_config__get_packed_size(&m);
    uint8_t *buf = malloc(sz ? sz : 1);
    if (!buf) return NULL;
    *len = kafscale__metadata__topic_config__pack(&m, buf);
    KS_ASSERT(*len == sz);
    return buf;
}

/* Appends "key=value\n" to out (cap bytes, NUL-terminated); -1 when it does
 * not fit or the pair could not be read back as one line. */
static int cfg_append(char *out, size_t cap, size_t *used, const char *key, const char *value) {
    if (!key[0] || strpbrk(key, "=\n") || strchr(value, '\n')) return -1;
    int n = snprintf(out + *used, cap - *used, "%s=%s\n", key, value);
    if (n < 0 || (size_t)n >= cap - *used) return -1;
    *used += (size_t)n;
    return 0;
}

int meta_pb_topic_decode(const uint8_t *buf, size_t len, meta_topic_t *out, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    Kafscale__Metadata__TopicConfig *m = kafscale__metadata__topic_config__unpack(NULL, len, buf);
    if (!m) {
        snprintf(err, errsz, "TopicConfig: not a valid protobuf message");
        return -1;
    }
    const char *why = NULL;
    if (!topic_name_ok(m->name)) why = "bad topic name";
    else if (m->partitions < 1 || m->partitions > MAX_PARTITIONS) why = "partitions out of range 1..100000";
    else if (m->topic_id.len != 0 && m->topic_id.len != 16) why = "topic_id is not 16 bytes";
    else if (m->n_config > MAX_CONFIGS) why = "too many configs";
    if (why) goto bad;

    snprintf(out->name, sizeof out->name, "%s", m->name);
    out->npartitions = m->partitions;
    if (m->topic_id.len) memcpy(out->id, m->topic_id.data, 16);
    size_t used = 0;
    bool has_rms = false, has_rbytes = false, has_sbytes = false;
    for (size_t i = 0; i < m->n_config; i++) {
        const char *k = m->config[i]->key ? m->config[i]->key : "", *v = m->config[i]->value ? m->config[i]->value : "";
        if (cfg_append(out->configs, sizeof out->configs, &used, k, v)) {
            why = "a config that does not fit (too long, or '=' / newline in a name)";
            goto bad;
        }
        has_rms |= !strcmp(k, "retention.ms");
        has_rbytes |= !strcmp(k, "retention.bytes");
        has_sbytes |= !strcmp(k, "segment.bytes");
    }
    /* the typed copies count only when the map lacks them (another writer) */
    const struct { bool has; const char *name; int64_t v; } typed[] = {
        {has_rms, "retention.ms", m->retention_ms},
        {has_rbytes, "retention.bytes", m->retention_bytes},
        {has_sbytes, "segment.bytes", m->segment_bytes},
    };
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
        if (typed[i].has || typed[i].v == 0) continue;
        char v[24];
        snprintf(v, sizeof v, "%" PRId64, typed[i].v);
        if (cfg_append(out->configs, sizeof out->configs, &used, typed[i].name, v)) {
            why = "configs too long";
            goto bad;
        }
    }
    kafscale__metadata__topic_config__free_unpacked(m, NULL);
    return 0;
bad:
    snprintf(err, errsz, "TopicConfig '%.64s': %s", m->name ? m->name : "", why);
    kafscale__metadata__topic_config__free_unpacked(m, NULL);
    memset(out, 0, sizeof *out);
    return -1;
}

uint8_t *meta_pb_segment_encode(const meta_segment_t *s, size_t *len) {
    KS_ASSERT(memchr(s->topic, 0, sizeof s->topic));
    Kafscale__Metadata__SegmentInfo m = KAFSCALE__METADATA__SEGMENT_INFO__INIT;
    m.topic = (char *)s->topic;
    m.topic_id.data = (uint8_t *)s->topic_id;
    m.topic_id.len = sizeof s->topic_id;
    m.partition = s->partition;
    m.leader_epoch = s->leader_epoch;
    m.base_offset = s->base_offset;
    m.last_offset = s->last_offset;
    m.size_bytes = s->size;
    m.max_timestamp = s->max_timestamp;
    m.created_ms = s->created_ms;
    size_t sz = kafscale__metadata__segment_info__get_packed_size(&m);
    uint8_t *buf = malloc(sz ? sz : 1);
    if (!buf) return NULL;
    *len = kafscale__metadata__segment_info__pack(&m, buf);
    KS_ASSERT(*len == sz);
    return buf;
}

int meta_pb_segment_decode(const uint8_t *buf, size_t len, meta_segment_t *out, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    Kafscale__Metadata__SegmentInfo *m = kafscale__metadata__segment_info__unpack(NULL, len, buf);
    if (!m) {
        snprintf(err, errsz, "SegmentInfo: not a valid protobuf message");
        return -1;
    }
    const char *why = NULL;
    if (!topic_name_ok(m->topic)) why = "bad topic name";
    else if (m->topic_id.len != 0 && m->topic_id.len != 16) why = "topic_id is not 16 bytes";
    else if (m->partition < 0 || m->partition >= MAX_PARTITIONS) why = "partition out of range";
    else if (m->base_offset < 0 || m->last_offset < m->base_offset) why = "offsets out of order";
    else if (m->size_bytes < 0) why = "negative size";
    if (why) {
        snprintf(err, errsz, "SegmentInfo '%.64s'/%d: %s", m->topic ? m->topic : "", (int)m->partition, why);
        kafscale__metadata__segment_info__free_unpacked(m, NULL);
        return -1;
    }
    snprintf(out->topic, sizeof out->topic, "%s", m->topic);
    if (m->topic_id.len) memcpy(out->topic_id, m->topic_id.data, 16);
    out->partition = m->partition;
    out->leader_epoch = m->leader_epoch;
    out->base_offset = m->base_offset;
    out->last_offset = m->last_offset;
    out->size = m->size_bytes;
    out->max_timestamp = m->max_timestamp;
    out->created_ms = m->created_ms;
    kafscale__metadata__segment_info__free_unpacked(m, NULL);
    return 0;
}
