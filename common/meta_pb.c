/* meta_pb.c - meta.h structs <-> kafscale.metadata protobuf messages
 * (contract in meta_pb.h). Encoding points the generated message's fields
 * at the struct's own bytes (nothing copied but the config entries), packs
 * into one malloc'd buffer; decoding unpacks with protobuf-c, checks every
 * field, then copies into the fixed-size struct.
 */
#include "meta_pb.h"
#include "meta_backend.h"

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

/* Packs msg into one malloc'd buffer (*len set); NULL when out of memory. */
static uint8_t *pack(const ProtobufCMessage *msg, size_t *len) {
    size_t sz = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(sz ? sz : 1);
    if (!buf) return NULL;
    *len = protobuf_c_message_pack(msg, buf);
    KS_ASSERT(*len == sz);
    return buf;
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

    return pack(&m.base, len);
}

/* meta_backend.h (the snapshot reader appends with it too, so both accept the
 * same configs). */
int meta_topic_config_append(char *out, size_t cap, size_t *used, const char *key, const char *value) {
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
        if (meta_topic_config_append(out->configs, sizeof out->configs, &used, k, v)) {
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
        if (meta_topic_config_append(out->configs, sizeof out->configs, &used, typed[i].name, v)) {
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
    return pack(&m.base, len);
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

/* ---- PartitionState ---- */

static const char *state_check(const Kafscale__Metadata__PartitionState *m) {
    if (m->topic && m->topic[0] && !topic_name_ok(m->topic)) return "bad topic name";
    if (m->partition < 0 || m->partition >= MAX_PARTITIONS) return "partition out of range";
    if (m->topic_id.len != 0 && m->topic_id.len != 16) return "topic_id is not 16 bytes";
    if (m->leader_epoch < 0) return "negative leader epoch";
    if (m->leader_id < -1) return "leader_id below -1";
    if (m->log_start_offset < 0 || m->log_end_offset < 0 || m->high_watermark < 0) return "negative offsets";
    return NULL;
}

uint8_t *meta_pb_state_encode(const meta_pstate_t *s, size_t *len) {
    KS_ASSERT(memchr(s->topic, 0, sizeof s->topic));
    Kafscale__Metadata__PartitionState m = KAFSCALE__METADATA__PARTITION_STATE__INIT;
    m.topic = (char *)s->topic;
    m.partition = s->partition;
    m.leader_epoch = s->leader_epoch;
    m.leader_id = s->leader_id;
    m.log_start_offset = s->log_start_offset;
    m.log_end_offset = s->log_end_offset;
    m.high_watermark = s->high_watermark;
    static const uint8_t zero[16];
    if (memcmp(s->topic_id, zero, 16)) {
        m.topic_id.data = (uint8_t *)s->topic_id;
        m.topic_id.len = 16;
    }
    return pack(&m.base, len);
}

int meta_pb_state_decode(const uint8_t *buf, size_t len, meta_pstate_t *out, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    Kafscale__Metadata__PartitionState *m = kafscale__metadata__partition_state__unpack(NULL, len, buf);
    if (!m) {
        snprintf(err, errsz, "PartitionState: not a valid protobuf message");
        return -1;
    }
    const char *why = state_check(m);
    if (why) {
        snprintf(err, errsz, "PartitionState '%.64s'/%d: %s", m->topic ? m->topic : "", (int)m->partition, why);
        kafscale__metadata__partition_state__free_unpacked(m, NULL);
        return -1;
    }
    snprintf(out->topic, sizeof out->topic, "%s", m->topic ? m->topic : "");
    out->partition = m->partition;
    out->leader_epoch = m->leader_epoch;
    out->leader_id = m->leader_id;
    out->log_start_offset = m->log_start_offset;
    out->log_end_offset = m->log_end_offset;
    out->high_watermark = m->high_watermark;
    if (m->topic_id.len) memcpy(out->topic_id, m->topic_id.data, 16);
    kafscale__metadata__partition_state__free_unpacked(m, NULL);
    return 0;
}

uint8_t *meta_pb_state_with_log_start(const uint8_t *old, size_t old_len, const char *topic, int32_t partition,
                                      int64_t log_start, size_t *len, char *err, size_t errsz) {
    if (!old || !old_len) {
        meta_pstate_t s;
        memset(&s, 0, sizeof s);
        snprintf(s.topic, sizeof s.topic, "%s", topic);
        s.partition = partition;
        s.leader_id = -1;
        s.log_start_offset = log_start > 0 ? log_start : 0;
        uint8_t *buf = meta_pb_state_encode(&s, len);
        if (!buf) snprintf(err, errsz, "out of memory");
        return buf;
    }
    Kafscale__Metadata__PartitionState *m = kafscale__metadata__partition_state__unpack(NULL, old_len, old);
    if (!m) {
        snprintf(err, errsz, "PartitionState: not a valid protobuf message");
        return NULL;
    }
    const char *why = state_check(m);
    if (!why && ((m->topic && m->topic[0] && strcmp(m->topic, topic)) || m->partition != partition))
        why = "names another partition than its key";
    if (why) {
        snprintf(err, errsz, "PartitionState '%.64s'/%d: %s", m->topic ? m->topic : "", (int)m->partition, why);
        kafscale__metadata__partition_state__free_unpacked(m, NULL);
        return NULL;
    }
    /* change in place: the message keeps its unknown fields and repeated
     * segments, and packs them back */
    char *old_topic = m->topic;
    if (!m->topic || !m->topic[0]) m->topic = (char *)topic;
    if (log_start > m->log_start_offset) m->log_start_offset = log_start;
    uint8_t *buf = pack(&m->base, len);
    if (!buf) snprintf(err, errsz, "out of memory");
    m->topic = old_topic; /* freed with the message */
    kafscale__metadata__partition_state__free_unpacked(m, NULL);
    return buf;
}

/* ---- ConsumerGroup, CommittedOffset ---- */

#define MAX_MEMBERS (1 << 20)

typedef struct pb_keep {
    ProtobufCMessage *msg;
    void *extra;
} pb_keep_t;

void meta_pb_release(void *keep) {
    pb_keep_t *k = keep;
    if (!k) return;
    if (k->msg) protobuf_c_message_free_unpacked(k->msg, NULL);
    free(k->extra);
    free(k);
}

static char *str_or_empty(const char *s) { return (char *)(s ? s : ""); }
static const char *empty_to_null(const char *s) { return s && s[0] ? s : NULL; }

uint8_t *meta_pb_group_encode(const mg_group_t *g, size_t *len) {
    KS_ASSERT(g->group_id && g->nmembers >= 0);
    Kafscale__Metadata__ConsumerGroup m = KAFSCALE__METADATA__CONSUMER_GROUP__INIT;
    m.group_id = (char *)g->group_id;
    m.state = g->nmembers ? "Stable" : "Empty";
    m.protocol_type = str_or_empty(g->protocol_type);
    m.protocol = str_or_empty(g->protocol);
    m.leader = str_or_empty(g->leader);
    m.generation_id = g->generation;
    m.state_ms = g->state_ms;
    size_t n = (size_t)g->nmembers;
    Kafscale__Metadata__GroupMember *mem = calloc(n ? n : 1, sizeof *mem);
    Kafscale__Metadata__GroupMember **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!mem || !ptrs) { free(mem); free(ptrs); return NULL; }
    for (size_t i = 0; i < n; i++) {
        const mg_member_t *mm = &g->members[i];
        KS_ASSERT(mm->member_id && mm->subscription_len >= 0 && mm->assignment_len >= 0);
        kafscale__metadata__group_member__init(&mem[i]);
        mem[i].member_id = (char *)mm->member_id;
        mem[i].group_instance_id = str_or_empty(mm->instance_id);
        mem[i].client_id = str_or_empty(mm->client_id);
        mem[i].client_host = str_or_empty(mm->client_host);
        mem[i].session_timeout_ms = mm->session_timeout_ms;
        mem[i].rebalance_timeout_ms = mm->rebalance_timeout_ms;
        mem[i].subscription.data = (uint8_t *)mm->subscription;
        mem[i].subscription.len = mm->subscription ? (size_t)mm->subscription_len : 0;
        mem[i].assignment.data = (uint8_t *)mm->assignment;
        mem[i].assignment.len = mm->assignment ? (size_t)mm->assignment_len : 0;
        ptrs[i] = &mem[i];
    }
    m.n_members = n;
    m.members = ptrs;
    uint8_t *buf = pack(&m.base, len);
    free(mem);
    free(ptrs);
    return buf;
}

int meta_pb_group_decode(const uint8_t *buf, size_t len, mg_group_t *out, void **keep, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    *keep = NULL;
    Kafscale__Metadata__ConsumerGroup *m = kafscale__metadata__consumer_group__unpack(NULL, len, buf);
    if (!m) {
        snprintf(err, errsz, "ConsumerGroup: not a valid protobuf message");
        return -1;
    }
    const char *why = NULL;
    if (!m->group_id || !m->group_id[0]) why = "no group id";
    else if (m->generation_id < 0) why = "negative generation";
    else if (m->n_members > MAX_MEMBERS) why = "too many members";
    for (size_t i = 0; !why && i < m->n_members; i++) {
        const Kafscale__Metadata__GroupMember *mm = m->members[i];
        if (!mm->member_id || !mm->member_id[0]) why = "a member without an id";
        else if (mm->session_timeout_ms < 0 || mm->rebalance_timeout_ms < 0) why = "a negative member timeout";
        else if (mm->subscription.len > INT32_MAX || mm->assignment.len > INT32_MAX) why = "a member's metadata too long";
    }
    pb_keep_t *k = why ? NULL : calloc(1, sizeof *k);
    mg_member_t *members = why ? NULL : calloc(m->n_members ? m->n_members : 1, sizeof *members);
    if (!why && (!k || !members)) why = "out of memory";
    if (why) {
        snprintf(err, errsz, "ConsumerGroup '%.64s': %s", m->group_id ? m->group_id : "", why);
        kafscale__metadata__consumer_group__free_unpacked(m, NULL);
        free(k);
        free(members);
        return -1;
    }
    for (size_t i = 0; i < m->n_members; i++) {
        const Kafscale__Metadata__GroupMember *mm = m->members[i];
        members[i] = (mg_member_t){
            .member_id = mm->member_id,
            .instance_id = empty_to_null(mm->group_instance_id),
            .client_id = mm->client_id ? mm->client_id : "",
            .client_host = mm->client_host ? mm->client_host : "",
            .session_timeout_ms = mm->session_timeout_ms,
            .rebalance_timeout_ms = mm->rebalance_timeout_ms,
            .subscription = mm->subscription.data ? mm->subscription.data : (const uint8_t *)"",
            .subscription_len = (int32_t)mm->subscription.len,
            .assignment = mm->assignment.data ? mm->assignment.data : (const uint8_t *)"",
            .assignment_len = (int32_t)mm->assignment.len,
        };
    }
    out->group_id = m->group_id;
    out->protocol_type = empty_to_null(m->protocol_type);
    out->protocol = empty_to_null(m->protocol);
    out->leader = empty_to_null(m->leader);
    out->generation = m->generation_id;
    out->state_ms = m->state_ms;
    out->nmembers = (int)m->n_members;
    out->members = members;
    k->msg = &m->base;
    k->extra = members;
    *keep = k;
    return 0;
}


uint8_t *meta_pb_offset_encode(const char *group_id, const mg_offset_t *o, size_t *len) {
    KS_ASSERT(group_id && o->topic && o->metadata_len >= 0);
    Kafscale__Metadata__CommittedOffset m = KAFSCALE__METADATA__COMMITTED_OFFSET__INIT;
    m.group_id = (char *)group_id;
    m.topic = (char *)o->topic;
    m.partition = o->partition;
    m.offset = o->offset;
    m.leader_epoch = o->leader_epoch;
    m.commit_ms = o->commit_ms;
    m.expire_ms = o->expire_ms;
    m.topic_id.data = (uint8_t *)o->topic_id;
    m.topic_id.len = sizeof o->topic_id;
    char *copy = NULL;
    if (!o->metadata) {
        m.metadata_null = true;
    } else {
        size_t n = (size_t)o->metadata_len;
        const uint8_t *md = (const uint8_t *)o->metadata;
        if (memchr(md, 0, n) || !kafka_utf8_valid(md, n)) {
            m.metadata_bytes.data = (uint8_t *)md;
            m.metadata_bytes.len = n;
        } else {
            if (!(copy = malloc(n + 1))) return NULL;
            memcpy(copy, md, n);
            copy[n] = 0;
            m.metadata = copy;
        }
    }
    uint8_t *buf = pack(&m.base, len);
    free(copy);
    return buf;
}

int meta_pb_offset_decode(const uint8_t *buf, size_t len, mg_offset_t *out, const char **group_id, void **keep,
                          char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    *keep = NULL;
    *group_id = "";
    Kafscale__Metadata__CommittedOffset *m = kafscale__metadata__committed_offset__unpack(NULL, len, buf);
    if (!m) {
        snprintf(err, errsz, "CommittedOffset: not a valid protobuf message");
        return -1;
    }
    const char *why = NULL;
    if (!topic_name_ok(m->topic)) why = "bad topic name";
    else if (m->partition < 0 || m->partition >= MAX_PARTITIONS) why = "partition out of range";
    else if (m->offset < -1) why = "offset below -1";
    else if (m->leader_epoch < -1) why = "leader epoch below -1";
    else if (m->topic_id.len != 0 && m->topic_id.len != 16) why = "topic_id is not 16 bytes";
    else if (m->metadata_bytes.len > INT32_MAX || strlen(m->metadata ? m->metadata : "") > INT32_MAX)
        why = "metadata too long";
    pb_keep_t *k = why ? NULL : calloc(1, sizeof *k);
    if (!why && !k) why = "out of memory";
    if (why) {
        snprintf(err, errsz, "CommittedOffset '%.64s'/%d: %s", m->topic ? m->topic : "", (int)m->partition, why);
        kafscale__metadata__committed_offset__free_unpacked(m, NULL);
        return -1;
    }
    out->topic = m->topic;
    if (m->topic_id.len) memcpy(out->topic_id, m->topic_id.data, 16);
    out->partition = m->partition;
    out->offset = m->offset;
    out->leader_epoch = m->leader_epoch;
    if (m->metadata_bytes.len) {
        out->metadata = (const char *)m->metadata_bytes.data;
        out->metadata_len = (int32_t)m->metadata_bytes.len;
    } else if (!m->metadata_null) {
        out->metadata = m->metadata ? m->metadata : "";
        out->metadata_len = (int32_t)strlen(out->metadata);
    }
    out->commit_ms = m->commit_ms;
    out->expire_ms = m->expire_ms;
    *group_id = m->group_id ? m->group_id : "";
    k->msg = &m->base;
    *keep = k;
    return 0;
}
