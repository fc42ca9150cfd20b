/* topic_config.c - topic configs: one table, and setting, defaults and listing from it.
 *
 * Every topic config the broker accepts is one row of `tc_table` below: its
 * Kafka name, its type, its default (as Kafka prints it), integer bounds, an
 * optional extra validator, where its value lives in topic_config_t (or
 * nowhere), the broker config Kafka names as its synonym (the default's
 * source, listed by DescribeConfigs) and its documentation. Values are parsed and checked the way Kafka's ConfigDef does
 * (surrounding blanks trimmed, ints and longs in range, enumerations exact),
 * and refusals name the config, as Kafka's messages do.
 *
 * Rows without a field are configs Kafka tools send that have no meaning here
 * (replication, local flushing and compaction tuning): they are validated and
 * then dropped, and describe as their default. Keeping them would need room
 * in topic_config_t (broker.h).
 *
 * The table is kept in name order so that describe lists configs sorted, as
 * Kafka's CreateTopics v5+ response does.
 */
#include "topic_config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum tc_type {
    TC_LONG,   /* int64 in [min, max] */
    TC_INT,    /* int32 in [min, max] */
    TC_DOUBLE, /* checked by the validator */
    TC_BOOL,   /* true|false, any case */
    TC_STRING, /* one of .choices */
    TC_LIST,   /* comma-separated, each item checked by .choices or the validator */
} tc_type_t;

#define TC_NOFIELD ((size_t)-1)
#define TC_VALMAX TOPIC_CONFIG_VALMAX /* longest value we store or print */

/* An extra check of a value (of one item, for lists): NULL when valid, or why not. */
typedef const char *(tc_valid_fn)(const char *v);

typedef struct tc_def {
    const char *name;
    tc_type_t type;
    const char *dflt;
    int64_t min, max;
    const char *const *choices; /* TC_STRING / TC_LIST: the allowed values (NULL-terminated) */
    tc_valid_fn *valid;
    size_t off;                 /* offsetof(topic_config_t, ...) or TC_NOFIELD */
    size_t fsize;               /* sizeof that member */
    const char *synonym;        /* the broker config Kafka takes the default from, or NULL */
    const char *doc;            /* DescribeConfigs v3+ documentation */
} tc_def_t;

static const char *const cleanup_policies[] = {"compact", "delete", NULL};
static const char *const compression_types[] = {"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer", NULL};
static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};

static tc_valid_fn valid_ratio, valid_throttled_replicas;

#define FIELD(m) .off = offsetof(topic_config_t, m), .fsize = sizeof(((topic_config_t *)0)->m)
#define NOFIELD .off = TC_NOFIELD, .fsize = 0
#define LMAX INT64_MAX
#define IMAX INT32_MAX

/* Keep in name order (see the file comment). */
static const tc_def_t tc_table[] = {
    {"cleanup.policy", TC_LIST, "delete", .choices = cleanup_policies, FIELD(cleanup_policy),
     .synonym = "log.cleanup.policy",
     .doc = "A list of 'delete' and/or 'compact'. Old segments are deleted by retention.ms and retention.bytes; "
            "compaction is accepted but not performed."},
    {"compression.type", TC_STRING, "producer", .choices = compression_types, FIELD(compression_type),
     .synonym = "compression.type",
     .doc = "Accepted and reported; batches are always stored as the producer compressed them (as with 'producer')."},
    {"delete.retention.ms", TC_LONG, "86400000", 0, LMAX, NOFIELD,
     .synonym = "log.cleaner.delete.retention.ms",
     .doc = "Validated and ignored: there is no log compaction, so no delete tombstones to retain."},
    {"file.delete.delay.ms", TC_LONG, "60000", 0, LMAX, NOFIELD,
     .synonym = "log.segment.delete.delay.ms",
     .doc = "Validated and ignored: segments are objects in the object store, deleted at once."},
    {"flush.messages", TC_LONG, "9223372036854775807", 1, LMAX, NOFIELD,
     .synonym = "log.flush.interval.messages",
     .doc = "Validated and ignored: data is durable once the flusher committed it to the object store (see "
            "KAFSCALE_FLUSH_INTERVAL_MS)."},
    {"flush.ms", TC_LONG, "9223372036854775807", 0, LMAX, NOFIELD,
     .synonym = "log.flush.interval.ms",
     .doc = "Validated and ignored: data is durable once the flusher committed it to the object store (see "
            "KAFSCALE_FLUSH_INTERVAL_MS)."},
    {"follower.replication.throttled.replicas", TC_LIST, "", .valid = valid_throttled_replicas, NOFIELD,
     .synonym = NULL,
     .doc = "Validated and ignored: brokers do not replicate; the object store does."},
    {"index.interval.bytes", TC_INT, "4096", 0, IMAX, NOFIELD,
     .synonym = "log.index.interval.bytes",
     .doc = "Validated and ignored: segment indexes get an entry every 100 messages."},
    {"leader.replication.throttled.replicas", TC_LIST, "", .valid = valid_throttled_replicas, NOFIELD,
     .synonym = NULL,
     .doc = "Validated and ignored: brokers do not replicate; the object store does."},
    {"max.compaction.lag.ms", TC_LONG, "9223372036854775807", 1, LMAX, NOFIELD,
     .synonym = "log.cleaner.max.compaction.lag.ms",
     .doc = "Validated and ignored: there is no log compaction."},
    {"max.message.bytes", TC_INT, "1048588", 0, IMAX, FIELD(max_message_bytes),
     .synonym = "message.max.bytes",
     .doc = "The largest record batch the broker accepts for this topic (MESSAGE_TOO_LARGE above it)."},
    {"message.downconversion.enable", TC_BOOL, "true", NOFIELD,
     .synonym = "log.message.downconversion.enable",
     .doc = "Validated and ignored: batches are never down-converted."},
    {"message.timestamp.difference.max.ms", TC_LONG, "9223372036854775807", 0, LMAX, NOFIELD,
     .synonym = "log.message.timestamp.difference.max.ms",
     .doc = "Validated and ignored."},
    {"message.timestamp.type", TC_STRING, "CreateTime", .choices = timestamp_types, FIELD(timestamp_type),
     .synonym = "log.message.timestamp.type",
     .doc = "CreateTime keeps the producer's timestamps; LogAppendTime sets the broker's time on every batch."},
    {"min.cleanable.dirty.ratio", TC_DOUBLE, "0.5", .valid = valid_ratio, NOFIELD,
     .synonym = "log.cleaner.min.cleanable.ratio",
     .doc = "Validated and ignored: there is no log compaction."},
    {"min.compaction.lag.ms", TC_LONG, "0", 0, LMAX, NOFIELD,
     .synonym = "log.cleaner.min.compaction.lag.ms",
     .doc = "Validated and ignored: there is no log compaction."},
    {"min.insync.replicas", TC_INT, "1", 1, IMAX, NOFIELD,
     .synonym = "min.insync.replicas",
     .doc = "Validated and ignored: acks=all waits for the object store, which does the replication."},
    {"preallocate", TC_BOOL, "false", NOFIELD,
     .synonym = "log.preallocate",
     .doc = "Validated and ignored: there are no local segment files."},
    {"retention.bytes", TC_LONG, "-1", INT64_MIN, LMAX, FIELD(retention_bytes),
     .synonym = "log.retention.bytes",
     .doc = "Most bytes a partition keeps; whole old segments are deleted above it (-1: no limit)."},
    {"retention.ms", TC_LONG, "604800000", -1, LMAX, FIELD(retention_ms),
     .synonym = "log.retention.ms",
     .doc = "How long a segment is kept after its newest record's timestamp; whole old segments are deleted (-1: "
            "forever)."},
    /* Kafka's default is 1 GiB; segments here are cut by the flusher, so the
     * default is small. The broker may replace it with KAFSCALE_SEGMENT_BYTES. */
    {"segment.bytes", TC_INT, "4194304", 14, IMAX, FIELD(segment_bytes),
     .synonym = "log.segment.bytes",
     .doc = "Size at which the flusher cuts a partition's segment (never above KAFSCALE_SEGMENT_BYTES)."},
    {"segment.index.bytes", TC_INT, "10485760", 4, IMAX, NOFIELD,
     .synonym = "log.index.size.max.bytes",
     .doc = "Validated and ignored: index size follows the segment."},
    {"segment.jitter.ms", TC_LONG, "0", 0, LMAX, NOFIELD,
     .synonym = "log.roll.jitter.ms",
     .doc = "Validated and ignored: segments are cut by size and flush cycles."},
    {"segment.ms", TC_LONG, "604800000", 1, LMAX, NOFIELD,
     .synonym = "log.roll.ms",
     .doc = "Validated and ignored: segments are cut by size and flush cycles."},
    {"unclean.leader.election.enable", TC_BOOL, "false", NOFIELD,
     .synonym = "unclean.leader.election.enable",
     .doc = "Validated and ignored: every committed record is in the object store, so no election loses data."},
};
#define TC_COUNT ((int)(sizeof tc_table / sizeof tc_table[0]))

/* Refusal messages live here until the next call (the broker is one thread). */
static char errbuf[512];

static const tc_def_t *tc_find(kstr_t name) {
    for (int i = 0; i < TC_COUNT; i++)
        if (kstr_eq_c(name, tc_table[i].name)) return &tc_table[i];
    return NULL;
}

bool topic_config_known(kstr_t name) { return tc_find(name) != NULL; }

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Copies s into out trimmed of surrounding blanks. false if it does not fit. */
static bool trim_copy(kstr_t s, char *out, size_t outsz) {
    int32_t a = 0, b = s.len > 0 ? s.len : 0;
    while (a < b && is_blank(s.p[a])) a++;
    while (b > a && is_blank(s.p[b - 1])) b--;
    if ((size_t)(b - a) >= outsz) return false;
    memcpy(out, s.p + a, (size_t)(b - a));
    out[b - a] = '\0';
    return memchr(out, '\0', (size_t)(b - a)) == NULL; /* no embedded NULs */
}

static bool in_choices(const char *const *choices, const char *v) {
    for (; *choices; choices++)
        if (strcmp(*choices, v) == 0) return true;
    return false;
}

static const char *valid_ratio(const char *v) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(d)) return "Not a number of type DOUBLE";
    if (d < 0.0 || d > 1.0) return "Value must be between 0 and 1";
    return NULL;
}

/* "*" or a list of partition:broker pairs (Kafka's ThrottledReplicaListValidator;
 * checked per item, so "*" mixed with pairs passes here though Kafka refuses it). */
static const char *valid_throttled_replicas(const char *item) {
    if (strcmp(item, "*") == 0 || !*item) return NULL;
    const char *p = item;
    size_t n = strspn(p, "0123456789");
    if (n && p[n] == ':') {
        p += n + 1;
        size_t m = strspn(p, "0123456789");
        if (m && !p[m]) return NULL;
    }
    return "must be the literal '*' or a list of replicas in the following format: "
           "[partitionId]:[brokerId],[partitionId]:[brokerId],...";
}

static int16_t refuse(const char **errmsg, const tc_def_t *d, const char *value, const char *why) {
    snprintf(errbuf, sizeof errbuf, "Invalid value %.100s for configuration %s: %s", value, d->name, why);
    if (errmsg) *errmsg = errbuf;
    return KERR_INVALID_CONFIG;
}

/* Parses and checks `value` (NUL-terminated, trimmed) for d; on success
 * writes the normalized text to norm and, for integers, the number to *num. */
static const char *tc_parse(const tc_def_t *d, const char *value, char *norm, int64_t *num) {
    switch (d->type) {
    case TC_LONG: case TC_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        bool bad = end == value || *end || errno;
        if (d->type == TC_INT && (v < INT32_MIN || v > INT32_MAX)) bad = true;
        if (bad) return d->type == TC_INT ? "Not a number of type INT" : "Not a number of type LONG";
        if (v < d->min) {
            static char why[64];
            snprintf(why, sizeof why, "Value must be at least %" PRId64, d->min);
            return why;
        }
        if (v > d->max) {
            static char why[64];
            snprintf(why, sizeof why, "Value must be no more than %" PRId64, d->max);
            return why;
        }
        *num = v;
        snprintf(norm, TC_VALMAX, "%lld", v);
        return NULL;
    }
    case TC_DOUBLE:
        snprintf(norm, TC_VALMAX, "%s", value);
        return d->valid ? d->valid(value) : NULL;
    case TC_BOOL:
        if (strcasecmp(value, "true") == 0) snprintf(norm, TC_VALMAX, "true");
        else if (strcasecmp(value, "false") == 0) snprintf(norm, TC_VALMAX, "false");
        else return "Expected value to be either true or false";
        return NULL;
    case TC_STRING:
        if (d->choices && !in_choices(d->choices, value)) return "String must be one of the allowed values";
        snprintf(norm, TC_VALMAX, "%s", value);
        return d->valid ? d->valid(value) : NULL;
    case TC_LIST: {
        /* Items trimmed, repeats dropped, joined with ','. */
        char item[TC_VALMAX];
        size_t nlen = 0;
        int nitems = 0;
        norm[0] = '\0';
        const char *p = value;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (!trim_copy((kstr_t){p, (int32_t)len}, item, sizeof item)) return "Value is too long";
            if (d->choices && !in_choices(d->choices, item)) return "List contains an invalid value";
            if (d->valid) {
                const char *why = d->valid(item);
                if (why) return why;
            }
            if (*item) {
                /* drop a repeat of an item already in norm */
                bool seen = false;
                for (const char *q = norm; *q && !seen;) {
                    size_t ql = strcspn(q, ",");
                    seen = ql == strlen(item) && strncmp(q, item, ql) == 0;
                    q += ql + (q[ql] == ',');
                }
                if (!seen) {
                    int w = snprintf(norm + nlen, TC_VALMAX - nlen, "%s%s", nitems ? "," : "", item);
                    if (w < 0 || (size_t)w >= TC_VALMAX - nlen) return "Value is too long";
                    nlen += (size_t)w;
                    nitems++;
                }
            }
            if (!comma) break;
            p = comma + 1;
        }
        if (d->choices && nitems == 0) return "List must not be empty";
        return NULL;
    }
    }
    return "Unknown type";
}

/* Stores the parsed value into cfg (when the config has a field). Returns
 * false when a string does not fit its field. */
static bool tc_store(const tc_def_t *d, topic_config_t *cfg, const char *norm, int64_t num) {
    if (d->off == TC_NOFIELD) return true;
    void *p = (uint8_t *)cfg + d->off;
    switch (d->type) {
    case TC_LONG: case TC_INT:
        if (d->fsize == sizeof(int64_t)) *(int64_t *)p = num;
        else { KS_ASSERT(d->fsize == sizeof(int32_t)); *(int32_t *)p = (int32_t)num; }
        return true;
    case TC_STRING: case TC_LIST:
        if (strlen(norm) >= d->fsize) return false;
        memcpy(p, norm, strlen(norm) + 1);
        return true;
    default:
        KS_ASSERT(!"config type without a field representation");
        return false;
    }
}

int16_t topic_config_set(topic_config_t *cfg, kstr_t name, kstr_t value, const char **errmsg) {
    const tc_def_t *d = tc_find(name);
    if (errmsg) *errmsg = NULL;
    if (!d) {
        snprintf(errbuf, sizeof errbuf, "Unknown topic config name: %.*s", name.len > 255 ? 255 : (name.len > 0 ? name.len : 0),
                 name.len > 0 ? name.p : "");
        if (errmsg) *errmsg = errbuf;
        return KERR_INVALID_CONFIG;
    }
    char v[TC_VALMAX], norm[TC_VALMAX];
    if (value.len < 0) {
        /* A null value puts the config back to its default. */
        snprintf(v, sizeof v, "%s", d->dflt);
    } else if (!trim_copy(value, v, sizeof v)) {
        return refuse(errmsg, d, "(too long)", "Value is too long");
    }
    int64_t num = 0;
    const char *why = tc_parse(d, v, norm, &num);
    if (why) return refuse(errmsg, d, v, why);
    if (!tc_store(d, cfg, norm, num)) return refuse(errmsg, d, v, "Value is too long");
    return KERR_NONE;
}

void topic_config_defaults(topic_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < TC_COUNT; i++) {
        const tc_def_t *d = &tc_table[i];
        if (d->off == TC_NOFIELD) continue;
        char norm[TC_VALMAX];
        int64_t num = 0;
        KS_ASSERT(tc_parse(d, d->dflt, norm, &num) == NULL);
        KS_ASSERT(tc_store(d, cfg, norm, num));
    }
}

/* The current value of d in cfg as text: buf (TC_VALMAX bytes) or the default. */
static const char *tc_value(const tc_def_t *d, const topic_config_t *cfg, char *buf) {
    if (d->off == TC_NOFIELD) return d->dflt;
    const void *p = (const uint8_t *)cfg + d->off;
    switch (d->type) {
    case TC_LONG: case TC_INT:
        snprintf(buf, TC_VALMAX, "%" PRId64,
                 d->fsize == sizeof(int64_t) ? *(const int64_t *)p : (int64_t) * (const int32_t *)p);
        break;
    default:
        snprintf(buf, TC_VALMAX, "%.*s", (int)d->fsize, (const char *)p);
        break;
    }
    return buf;
}

int topic_config_describe(const topic_config_t *cfg, topic_config_emit_fn *emit, void *arg) {
    for (int i = 0; i < TC_COUNT; i++) {
        const tc_def_t *d = &tc_table[i];
        char buf[TC_VALMAX];
        const char *value = tc_value(d, cfg, buf);
        emit(arg, d->name, value, strcmp(value, d->dflt) == 0);
    }
    return TC_COUNT;
}

/* Kafka's ConfigType ids (DescribeConfigs v3+). */
static int8_t tc_kafka_type(tc_type_t t) {
    switch (t) {
    case TC_LONG: return 5;
    case TC_INT: return 3;
    case TC_DOUBLE: return 6;
    case TC_BOOL: return 1;
    case TC_STRING: return 2;
    case TC_LIST: return 7;
    }
    return 0;
}

static void tc_entry(const tc_def_t *d, const topic_config_t *cfg, char *buf, topic_config_entry_t *e) {
    e->name = d->name;
    e->value = tc_value(d, cfg, buf);
    e->dflt = d->dflt;
    e->is_default = strcmp(e->value, d->dflt) == 0;
    e->type = tc_kafka_type(d->type);
    e->is_list = d->type == TC_LIST;
    e->kept = d->off != TC_NOFIELD;
    e->synonym = d->synonym;
    e->doc = d->doc;
}

int topic_config_list(const topic_config_t *cfg, topic_config_entry_fn *fn, void *arg) {
    for (int i = 0; i < TC_COUNT; i++) {
        char buf[TC_VALMAX];
        topic_config_entry_t e;
        tc_entry(&tc_table[i], cfg, buf, &e);
        fn(arg, &e);
    }
    return TC_COUNT;
}

bool topic_config_get(const topic_config_t *cfg, kstr_t name, topic_config_entry_t *out,
                      char buf[TOPIC_CONFIG_VALMAX]) {
    const tc_def_t *d = tc_find(name);
    if (!d) return false;
    tc_entry(d, cfg, buf, out);
    return true;
}
