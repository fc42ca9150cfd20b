/* api_describe_configs.c - DescribeConfigs (API key 32, versions 0-4), and
 * the broker's own configs as the config APIs see them.
 *
 * TOPIC resources list the topic configs of topic_config.c's table with
 * their current values: source TOPIC_CONFIG for a value that differs from
 * the default, DEFAULT_CONFIG otherwise; every topic config is read-write.
 * With IncludeSynonyms (v1+) a config lists the topic value (when set) and
 * the broker config Kafka takes the default from (log.retention.ms for
 * retention.ms, ...). With IncludeDocumentation (v3+) each config carries
 * what it does here (several are validated and ignored: compaction, local
 * flushing, replication). v3+ also give each config's type.
 *
 * BROKER resources (name = this broker's id) list the node's settings, all
 * read-only: the KAFSCALE_* environment variables under Kafka's own names
 * where Kafka has one (num.partitions = KAFSCALE_AUTO_CREATE_PARTITIONS,
 * socket.request.max.bytes = KAFSCALE_MAX_REQUEST_BYTES, ...) and under
 * kafscale.* names otherwise, plus the broker-level defaults of every topic
 * config (log.retention.ms, message.max.bytes, ...). A setting given in the
 * environment reports STATIC_BROKER_CONFIG, one left at its default
 * DEFAULT_CONFIG. Credentials (AWS_*) are never listed. The empty name
 * (cluster-wide dynamic defaults) lists nothing: there are none.
 *
 * Requested keys that do not exist are left out, as Kafka does. Errors are
 * per resource: an invalid topic name INVALID_TOPIC_EXCEPTION, an unknown
 * topic UNKNOWN_TOPIC_OR_PARTITION, another broker's id or an unsupported
 * resource type INVALID_REQUEST.
 *
 * AlterConfigs and IncrementalAlterConfigs refuse every change of a broker
 * config through broker_config_refuse_change() below (INVALID_CONFIG).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker.h"
#include "msg_describe_configs.h"
#include "topic_config.h"

/* ---- the broker's configs ---- */

typedef enum bc_kind {
    BC_FIXED,  /* always dflt (no variable) */
    BC_INT,    /* a number from `env` */
    BC_SIZE,   /* a number from `env`, k/m/g suffixes (x1024) allowed */
    BC_BOOL,   /* true/false (also 1/0, yes/no, on/off) from `env` */
    BC_STRING, /* the text of `env`; null when unset and dflt is NULL */
    BC_FN,     /* computed by fn (from the settings the broker parsed) */
} bc_kind_t;

#define BC_VALMAX 1100

typedef struct bc_def {
    const char *name;
    bc_kind_t kind;
    int8_t type; /* Kafka ConfigType */
    const char *env;
    const char *dflt;
    void (*fn)(char *buf, size_t n); /* BC_FN; also computes the default of others when set */
    const char *doc;
} bc_def_t;

static void v_node_id(char *b, size_t n) { snprintf(b, n, "%d", g_broker.cfg.node_id); }
static void v_listeners(char *b, size_t n) {
    const char *h = g_broker.cfg.listen_host;
    bool v6 = strchr(h, ':') != NULL;
    snprintf(b, n, "PLAINTEXT://%s%s%s:%d", v6 ? "[" : "", h, v6 ? "]" : "", g_broker.cfg.listen_port);
}
static void v_advertised(char *b, size_t n) {
    const char *h = g_broker.cfg.advertised_host;
    bool v6 = strchr(h, ':') != NULL;
    snprintf(b, n, "PLAINTEXT://%s%s%s:%d", v6 ? "[" : "", h, v6 ? "]" : "", g_broker.cfg.advertised_port);
}
static void v_max_request(char *b, size_t n) { snprintf(b, n, "%" PRId64, g_broker.cfg.max_request_bytes); }
static void v_idle(char *b, size_t n) { snprintf(b, n, "%" PRId64, g_broker.cfg.idle_timeout_ms); }
static void v_auto_create(char *b, size_t n) { snprintf(b, n, "%s", g_broker.cfg.auto_create_topics ? "true" : "false"); }
static void v_partitions(char *b, size_t n) { snprintf(b, n, "%d", g_broker.cfg.auto_create_partitions); }
static void v_inflight(char *b, size_t n) { snprintf(b, n, "%d", g_broker.cfg.max_inflight_per_conn); }
static void v_unflushed(char *b, size_t n) { snprintf(b, n, "%" PRId64, g_broker.cfg.max_unflushed_bytes); }
static void v_tail(char *b, size_t n) { snprintf(b, n, "%" PRId64, g_broker.cfg.tail_bytes); }
static void v_cluster(char *b, size_t n) { snprintf(b, n, "%s", g_broker.cfg.cluster_id); }
static void v_data_dir(char *b, size_t n) { snprintf(b, n, "%s", g_broker.cfg.data_dir); }
static void v_run_dir(char *b, size_t n) {
    const char *v = getenv("KAFSCALE_RUN_DIR");
    if (v && *v) snprintf(b, n, "%s", v);
    else snprintf(b, n, "%s/run", g_broker.cfg.data_dir);
}
/* Defaults that depend on other settings. */
static bool s3_selected(void) {
    const char *b = getenv("KAFSCALE_S3_BUCKET");
    return b && *b;
}
static void d_flush_interval(char *b, size_t n) { snprintf(b, n, "%s", s3_selected() ? "100" : "20"); }
static void d_path_style(char *b, size_t n) {
    const char *e = getenv("KAFSCALE_S3_ENDPOINT");
    snprintf(b, n, "%s", e && *e ? "true" : "false");
}
static void d_read_region(char *b, size_t n) {
    const char *r = getenv("KAFSCALE_S3_REGION");
    snprintf(b, n, "%s", r && *r ? r : "us-east-1");
}

#define CT_BOOL 1
#define CT_STRING 2
#define CT_INT 3
#define CT_LONG 5
#define CT_LIST 7

/* The broker's settings, by name. Topic config defaults (log.*,
 * message.max.bytes, ...) are added from topic_config.c's synonyms. */
static const bc_def_t bc_table[] = {
    {"advertised.listeners", BC_FN, CT_STRING, "KAFSCALE_BROKER_HOST", NULL, v_advertised,
     "The address clients are told to connect to (KAFSCALE_BROKER_HOST, KAFSCALE_BROKER_PORT)."},
    {"auto.create.topics.enable", BC_FN, CT_BOOL, "KAFSCALE_AUTO_CREATE_TOPICS", "true", v_auto_create,
     "Create unknown topics on Metadata and Produce (KAFSCALE_AUTO_CREATE_TOPICS)."},
    {"broker.id", BC_FN, CT_INT, "KAFSCALE_BROKER_ID", "0", v_node_id, "This broker's id (KAFSCALE_BROKER_ID)."},
    {"connections.max.idle.ms", BC_FN, CT_LONG, "KAFSCALE_IDLE_TIMEOUT_MS", "600000", v_idle,
     "Connections that sent nothing for this long are closed; 0: never (KAFSCALE_IDLE_TIMEOUT_MS)."},
    {"default.replication.factor", BC_FIXED, CT_INT, NULL, "1", NULL,
     "Always 1: brokers do not replicate, the object store does."},
    {"delete.topic.enable", BC_FIXED, CT_BOOL, NULL, "true", NULL, "DeleteTopics is always allowed."},
    {"kafscale.cluster.id", BC_FN, CT_STRING, "KAFSCALE_CLUSTER_ID", "kafscale", v_cluster,
     "Cluster id reported in Metadata and DescribeCluster (KAFSCALE_CLUSTER_ID)."},
    {"kafscale.data.dir", BC_FN, CT_STRING, "KAFSCALE_DATA_DIR", "./data", v_data_dir,
     "Local directory of the embedded file store and metadata (KAFSCALE_DATA_DIR)."},
    {"kafscale.fetch.load.wait.ms", BC_INT, CT_LONG, "KAFSCALE_FETCH_LOAD_WAIT_MS", "5000", NULL,
     "How long a fetch of old data waits for a store read (KAFSCALE_FETCH_LOAD_WAIT_MS)."},
    {"kafscale.flush.interval.ms", BC_INT, CT_LONG, "KAFSCALE_FLUSH_INTERVAL_MS", NULL, d_flush_interval,
     "Longest time accepted data waits before a flush cycle to the object store (KAFSCALE_FLUSH_INTERVAL_MS)."},
    {"kafscale.log.level", BC_STRING, CT_STRING, "KAFSCALE_LOG_LEVEL", "info", NULL,
     "debug, info, warn or error (KAFSCALE_LOG_LEVEL)."},
    {"kafscale.max.inflight.per.conn", BC_FN, CT_INT, "KAFSCALE_MAX_INFLIGHT_PER_CONN", "1024", v_inflight,
     "Requests one connection may have in flight before the broker stops reading it "
     "(KAFSCALE_MAX_INFLIGHT_PER_CONN)."},
    {"kafscale.max.unflushed.bytes", BC_FN, CT_LONG, "KAFSCALE_MAX_UNFLUSHED_BYTES", "268435456", v_unflushed,
     "Accepted but not yet durable bytes above which producers are paused (KAFSCALE_MAX_UNFLUSHED_BYTES)."},
    {"kafscale.read.cache.bytes", BC_SIZE, CT_LONG, "KAFSCALE_READ_CACHE_BYTES", "67108864", NULL,
     "Broker-side cache of ranges read from the object store (KAFSCALE_READ_CACHE_BYTES)."},
    {"kafscale.read.chunk.bytes", BC_SIZE, CT_LONG, "KAFSCALE_READ_CHUNK_BYTES", "1048576", NULL,
     "Size of one ranged GET for reads (KAFSCALE_READ_CHUNK_BYTES)."},
    {"kafscale.run.dir", BC_FN, CT_STRING, "KAFSCALE_RUN_DIR", NULL, v_run_dir,
     "UNIX sockets between the node's processes (KAFSCALE_RUN_DIR)."},
    {"kafscale.s3.backoff.max.ms", BC_INT, CT_INT, "KAFSCALE_S3_BACKOFF_MAX_MS", "5000", NULL,
     "Longest backoff between object store retries (KAFSCALE_S3_BACKOFF_MAX_MS)."},
    {"kafscale.s3.backoff.ms", BC_INT, CT_INT, "KAFSCALE_S3_BACKOFF_MS", "100", NULL,
     "First backoff between object store retries (KAFSCALE_S3_BACKOFF_MS)."},
    {"kafscale.s3.bucket", BC_STRING, CT_STRING, "KAFSCALE_S3_BUCKET", NULL, NULL,
     "S3 bucket; unset: the file store under the data directory (KAFSCALE_S3_BUCKET)."},
    {"kafscale.s3.endpoint", BC_STRING, CT_STRING, "KAFSCALE_S3_ENDPOINT", NULL, NULL,
     "Custom S3 endpoint; unset: AWS (KAFSCALE_S3_ENDPOINT)."},
    {"kafscale.s3.kms.arn", BC_STRING, CT_STRING, "KAFSCALE_S3_KMS_ARN", NULL, NULL,
     "SSE-KMS key of every PUT (KAFSCALE_S3_KMS_ARN)."},
    {"kafscale.s3.max.inflight", BC_INT, CT_INT, "KAFSCALE_S3_MAX_INFLIGHT", "16", NULL,
     "Parallel object store transfers (KAFSCALE_S3_MAX_INFLIGHT)."},
    {"kafscale.s3.max.retries", BC_INT, CT_INT, "KAFSCALE_S3_MAX_RETRIES", "5", NULL,
     "Retries per object store operation (KAFSCALE_S3_MAX_RETRIES)."},
    {"kafscale.s3.namespace", BC_STRING, CT_STRING, "KAFSCALE_S3_NAMESPACE", "default", NULL,
     "First component of every object key (KAFSCALE_S3_NAMESPACE)."},
    {"kafscale.s3.path.style", BC_BOOL, CT_BOOL, "KAFSCALE_S3_PATH_STYLE", NULL, d_path_style,
     "Path-style S3 URLs (KAFSCALE_S3_PATH_STYLE)."},
    {"kafscale.s3.read.bucket", BC_STRING, CT_STRING, "KAFSCALE_S3_READ_BUCKET", NULL, NULL,
     "Read replica bucket tried first for reads (KAFSCALE_S3_READ_BUCKET)."},
    {"kafscale.s3.read.endpoint", BC_STRING, CT_STRING, "KAFSCALE_S3_READ_ENDPOINT", NULL, NULL,
     "Read replica endpoint (KAFSCALE_S3_READ_ENDPOINT)."},
    {"kafscale.s3.read.region", BC_STRING, CT_STRING, "KAFSCALE_S3_READ_REGION", NULL, d_read_region,
     "Read replica region (KAFSCALE_S3_READ_REGION)."},
    {"kafscale.s3.region", BC_STRING, CT_STRING, "KAFSCALE_S3_REGION", "us-east-1", NULL,
     "Region used for signing (KAFSCALE_S3_REGION)."},
    {"kafscale.s3.timeout.ms", BC_INT, CT_INT, "KAFSCALE_S3_TIMEOUT_MS", "30000", NULL,
     "Per attempt timeout of an object store operation (KAFSCALE_S3_TIMEOUT_MS)."},
    {"kafscale.segment.bytes", BC_SIZE, CT_LONG, "KAFSCALE_SEGMENT_BYTES", "4194304", NULL,
     "Largest segment the flusher writes; a topic's segment.bytes may only lower it (KAFSCALE_SEGMENT_BYTES)."},
    {"kafscale.shutdown.timeout.ms", BC_INT, CT_LONG, "KAFSCALE_SHUTDOWN_TIMEOUT_MS", "30000", NULL,
     "On SIGTERM, how long the broker waits for accepted data to become durable (KAFSCALE_SHUTDOWN_TIMEOUT_MS)."},
    {"kafscale.store.read.threads", BC_INT, CT_INT, "KAFSCALE_STORE_READ_THREADS", "2", NULL,
     "Threads reading old data from the object store (KAFSCALE_STORE_READ_THREADS)."},
    {"kafscale.supervise", BC_BOOL, CT_BOOL, "KAFSCALE_SUPERVISE", "true", NULL,
     "The broker starts and restarts kafscale-flusher (KAFSCALE_SUPERVISE)."},
    {"kafscale.tail.bytes", BC_FN, CT_LONG, "KAFSCALE_TAIL_BYTES", "268435456", v_tail,
     "Durable data kept in the broker's memory for consumers at the tail (KAFSCALE_TAIL_BYTES)."},
    {"listeners", BC_FN, CT_STRING, "KAFSCALE_BROKER_ADDR", "PLAINTEXT://0.0.0.0:9092", v_listeners,
     "The Kafka listener (KAFSCALE_BROKER_ADDR)."},
    {"node.id", BC_FN, CT_INT, "KAFSCALE_BROKER_ID", "0", v_node_id, "This broker's id (KAFSCALE_BROKER_ID)."},
    {"num.partitions", BC_FN, CT_INT, "KAFSCALE_AUTO_CREATE_PARTITIONS", "1", v_partitions,
     "Partitions of auto-created topics and of CreateTopics with -1 (KAFSCALE_AUTO_CREATE_PARTITIONS)."},
    {"socket.request.max.bytes", BC_FN, CT_INT, "KAFSCALE_MAX_REQUEST_BYTES", "104857600", v_max_request,
     "Largest request frame (KAFSCALE_MAX_REQUEST_BYTES)."},
};
#define BC_COUNT ((int)(sizeof bc_table / sizeof bc_table[0]))

static const bc_def_t *bc_find(kstr_t name) {
    for (int i = 0; i < BC_COUNT; i++)
        if (kstr_eq_c(name, bc_table[i].name)) return &bc_table[i];
    return NULL;
}

/* Parses a number as config.c does (digits, optional size suffix); false
 * when it does not parse (the raw text is then reported). */
static bool parse_number(const char *v, bool sizes, int64_t *out) {
    if (!(isdigit((unsigned char)v[0]) || (v[0] == '-' && isdigit((unsigned char)v[1])))) return false;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno) return false;
    int64_t mul = 1;
    if (sizes && *end) {
        switch (*end) {
        case 'k': case 'K': mul = 1024; break;
        case 'm': case 'M': mul = 1024 * 1024; break;
        case 'g': case 'G': mul = 1024LL * 1024 * 1024; break;
        default: return false;
        }
        end++;
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'b' || *end == 'B') end++;
    }
    if (*end || n > INT64_MAX / mul || n < INT64_MIN / mul) return false;
    *out = n * mul;
    return true;
}

/* The value of d as text into buf (or NULL: no value), its source, and its
 * default (into dbuf, or NULL). */
static const char *bc_value(const bc_def_t *d, char *buf, size_t n, int8_t *source, char *dbuf, const char **dflt) {
    const char *env = d->env ? getenv(d->env) : NULL;
    bool set = env && *env;
    *source = set ? CONFIG_SOURCE_STATIC_BROKER_CONFIG : CONFIG_SOURCE_DEFAULT_CONFIG;
    *dflt = d->dflt;
    if (d->kind != BC_FN && d->fn) {
        d->fn(dbuf, BC_VALMAX);
        *dflt = dbuf;
    }
    switch (d->kind) {
    case BC_FIXED: return d->dflt;
    case BC_FN: d->fn(buf, n); return buf;
    default: break;
    }
    if (!set) return *dflt;
    int64_t num;
    switch (d->kind) {
    case BC_INT: case BC_SIZE:
        if (parse_number(env, d->kind == BC_SIZE, &num)) {
            snprintf(buf, n, "%" PRId64, num);
            return buf;
        }
        break;
    case BC_BOOL:
        if (!strcmp(env, "1") || !strcasecmp(env, "true") || !strcasecmp(env, "yes") || !strcasecmp(env, "on"))
            return "true";
        if (!strcmp(env, "0") || !strcasecmp(env, "false") || !strcasecmp(env, "no") || !strcasecmp(env, "off"))
            return "false";
        break;
    default: break;
    }
    snprintf(buf, n, "%s", env);
    return buf;
}

/* ---- request-arena strings ---- */

static kstr_t arena_str(karena_t *a, const char *s) {
    if (!s) return KSTR_NULL;
    size_t n = strlen(s);
    char *p = karena_alloc(a, n + 1);
    if (!p) return KSTR_NULL;
    memcpy(p, s, n + 1);
    return (kstr_t){p, (int32_t)n};
}

static kstr_t arena_fmt(karena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kstr_t arena_fmt(karena_t *a, const char *fmt, ...) {
    char tmp[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return KSTR_NULL;
    return arena_str(a, tmp);
}

/* A kstr_t for %.*s: length and pointer, empty when null. */
#define KS_ARGS(s) ((s).len > 0 ? ((s).len > 255 ? 255 : (int)(s).len) : 0), ((s).len > 0 ? (s).p : "")

/* ---- resource checks shared with AlterConfigs / IncrementalAlterConfigs ---- */

int16_t broker_config_check_resource(kreq_t *req, kstr_t resource_name, kstr_t *msg) {
    if (resource_name.len <= 0) return KERR_NONE;
    int64_t id;
    char tmp[32];
    kstr_cpy(tmp, sizeof tmp, resource_name);
    if (resource_name.len >= (int32_t)sizeof tmp || !parse_number(tmp, false, &id) || id < 0 || id > INT32_MAX) {
        *msg = arena_fmt(&req->arena, "Broker id must be an integer, but it is: %.*s", KS_ARGS(resource_name));
        return KERR_INVALID_REQUEST;
    }
    if (id != g_broker.cfg.node_id) {
        *msg = arena_fmt(&req->arena, "Unexpected broker id, expected %d or empty string, but received %.*s",
                         g_broker.cfg.node_id, KS_ARGS(resource_name));
        return KERR_INVALID_REQUEST;
    }
    return KERR_NONE;
}

/* Finds the topic config whose broker-level default is `name`. */
typedef struct syn_find {
    kstr_t name;
    const char *topic_config; /* static, or NULL */
} syn_find_t;
static void syn_find_cb(void *arg, const topic_config_entry_t *e) {
    syn_find_t *f = arg;
    if (!f->topic_config && e->synonym && kstr_eq_c(f->name, e->synonym)) f->topic_config = e->name;
}

int16_t broker_config_refuse_change(kreq_t *req, kstr_t resource_name, kstr_t name, kstr_t *msg) {
    int16_t err = broker_config_check_resource(req, resource_name, msg);
    if (err) return err;
    const bc_def_t *d = bc_find(name);
    if (d) {
        *msg = d->env ? arena_fmt(&req->arena,
                                  "Cannot update these configs dynamically: %s (read-only: set %s and restart "
                                  "the broker)", d->name, d->env)
                      : arena_fmt(&req->arena, "Cannot update these configs dynamically: %s (read-only)", d->name);
        return KERR_INVALID_CONFIG;
    }
    topic_config_t dflt;
    topic_config_defaults(&dflt);
    syn_find_t f = {.name = name};
    topic_config_list(&dflt, syn_find_cb, &f);
    if (f.topic_config) {
        *msg = arena_fmt(&req->arena,
                         "Cannot update these configs dynamically: %.*s (read-only: set the topic config %s on "
                         "each topic instead)", KS_ARGS(name), f.topic_config);
        return KERR_INVALID_CONFIG;
    }
    *msg = arena_fmt(&req->arena, "Unknown broker config name: %.*s", KS_ARGS(name));
    return KERR_INVALID_CONFIG;
}

/* ---- building one result ---- */

typedef struct dc_ctx {
    kreq_t *req;
    kstr_t *keys;          /* the requested names, sorted */
    int32_t nkeys;         /* -1: every config */
    bool synonyms, docs;
    describe_configs_resp_config_t *items;
    int32_t n, cap;
    bool oom;
} dc_ctx_t;

static int key_cmp(const void *a, const void *b) {
    const kstr_t *x = a, *y = b;
    int32_t n = x->len < y->len ? x->len : y->len;
    int c = n > 0 ? memcmp(x->p, y->p, (size_t)n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static bool wanted(const dc_ctx_t *c, const char *name) {
    if (c->nkeys < 0) return true;
    kstr_t k = kstr_c(name);
    return c->nkeys && bsearch(&k, c->keys, (size_t)c->nkeys, sizeof k, key_cmp) != NULL;
}

/* Appends a config; synonyms (at most 2) are filled by the caller. */
static describe_configs_resp_config_t *dc_add(dc_ctx_t *c, const char *name, const char *value, bool read_only,
                                              int8_t source, int8_t type, const char *doc) {
    KS_ASSERT(c->n < c->cap);
    describe_configs_resp_config_t *o = &c->items[c->n++];
    o->name = kstr_c(name); /* names are static */
    o->value = arena_str(&c->req->arena, value);
    if (value && o->value.len < 0) c->oom = true;
    o->read_only = read_only;
    o->is_default = source == CONFIG_SOURCE_DEFAULT_CONFIG;
    o->config_source = source;
    o->is_sensitive = false;
    o->synonyms = (karray_t){NULL, 0};
    o->config_type = type;
    o->documentation = c->docs ? kstr_c(doc) : KSTR_NULL;
    return o;
}

static void dc_synonym(dc_ctx_t *c, describe_configs_resp_config_t *o, const char *name, const char *value,
                       int8_t source) {
    if (!c->synonyms) return;
    if (!o->synonyms.items) {
        if (!KARR_NEW(&c->req->arena, o->synonyms, describe_configs_resp_synonym_t, 2)) {
            c->oom = true;
            return;
        }
        o->synonyms.count = 0;
    }
    KS_ASSERT(o->synonyms.count < 2);
    describe_configs_resp_synonym_t *s = KARR_AT(o->synonyms, describe_configs_resp_synonym_t, o->synonyms.count);
    s->name = kstr_c(name);
    s->value = arena_str(&c->req->arena, value);
    if (value && s->value.len < 0) c->oom = true;
    s->source = source;
    o->synonyms.count++;
}

static void topic_cb(void *arg, const topic_config_entry_t *e) {
    dc_ctx_t *c = arg;
    if (!wanted(c, e->name)) return;
    int8_t source = e->is_default ? CONFIG_SOURCE_DEFAULT_CONFIG : CONFIG_SOURCE_TOPIC_CONFIG;
    describe_configs_resp_config_t *o = dc_add(c, e->name, e->value, false, source, e->type, e->doc);
    if (!e->is_default) dc_synonym(c, o, e->name, e->value, CONFIG_SOURCE_TOPIC_CONFIG);
    if (e->synonym) dc_synonym(c, o, e->synonym, e->dflt, CONFIG_SOURCE_DEFAULT_CONFIG);
}

/* The broker-level defaults of topic configs (log.retention.ms, ...). */
static void broker_syn_cb(void *arg, const topic_config_entry_t *e) {
    dc_ctx_t *c = arg;
    if (!e->synonym || !wanted(c, e->synonym) || bc_find(kstr_c(e->synonym))) return;
    const char *doc = NULL;
    if (c->docs) {
        kstr_t d = arena_fmt(&c->req->arena, "Default of the topic config %s: %s", e->name, e->doc);
        if (d.len < 0) c->oom = true;
        doc = d.p;
    }
    describe_configs_resp_config_t *o =
        dc_add(c, e->synonym, e->dflt, true, CONFIG_SOURCE_DEFAULT_CONFIG, e->type, NULL);
    if (doc) o->documentation = (kstr_t){doc, (int32_t)strlen(doc)};
    dc_synonym(c, o, e->synonym, e->dflt, CONFIG_SOURCE_DEFAULT_CONFIG);
}

static int cfg_name_cmp(const void *a, const void *b) {
    const describe_configs_resp_config_t *x = a, *y = b;
    return strcmp(x->name.p, y->name.p); /* static, NUL-terminated names */
}

static void count_cb(void *arg, const topic_config_entry_t *e) { (void)arg; (void)e; }

/* Fills res for one resource. Returns -1 out of memory. */
static int describe_one(dc_ctx_t *c, const describe_configs_req_resource_t *in, describe_configs_resp_result_t *res) {
    kreq_t *req = c->req;
    res->resource_type = in->resource_type;
    res->resource_name = in->resource_name;
    res->error_code = KERR_NONE;
    res->error_message = KSTR_NULL;
    res->configs = (karray_t){NULL, 0};
    c->n = 0;
    c->nkeys = in->configuration_keys.count;
    if (c->nkeys > 0) {
        c->keys = karena_alloc(&req->arena, sizeof *c->keys * (size_t)c->nkeys);
        if (!c->keys) return -1;
        memcpy(c->keys, in->configuration_keys.items, sizeof *c->keys * (size_t)c->nkeys);
        qsort(c->keys, (size_t)c->nkeys, sizeof *c->keys, key_cmp);
    }
    topic_config_t dflt;
    topic_config_defaults(&dflt);
    int ntopic = topic_config_list(&dflt, count_cb, NULL);
    topic_t *t = NULL;

    switch (in->resource_type) {
    case CONFIG_RESOURCE_TOPIC:
        if (!kafka_topic_name_valid(in->resource_name)) {
            res->error_code = KERR_INVALID_TOPIC_EXCEPTION;
            res->error_message = arena_fmt(&req->arena, "Topic name \"%.*s\" is illegal", KS_ARGS(in->resource_name));
            return 0;
        }
        t = topic_find(in->resource_name);
        if (!t) {
            res->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            res->error_message = arena_fmt(&req->arena, "Topic %.*s does not exist", KS_ARGS(in->resource_name));
            return 0;
        }
        c->cap = ntopic;
        break;
    case CONFIG_RESOURCE_BROKER:
        res->error_code = broker_config_check_resource(req, in->resource_name, &res->error_message);
        if (res->error_code) return 0;
        if (in->resource_name.len <= 0) return 0; /* no cluster-wide dynamic defaults */
        c->cap = ntopic + BC_COUNT;
        break;
    case CONFIG_RESOURCE_BROKER_LOGGER:
        res->error_code = KERR_INVALID_REQUEST;
        res->error_message = KSTR_LIT("BROKER_LOGGER resources are not supported: the log level is "
                                      "KAFSCALE_LOG_LEVEL (see the broker resource's kafscale.log.level)");
        return 0;
    default:
        res->error_code = KERR_INVALID_REQUEST;
        res->error_message = arena_fmt(&req->arena, "Unsupported resource type: %d", in->resource_type);
        return 0;
    }

    c->items = KARR_NEW(&req->arena, res->configs, describe_configs_resp_config_t, c->cap);
    if (!c->items) return -1;
    if (t) {
        KS_ASSERT(t->magic == TOPIC_MAGIC);
        topic_config_list(&t->config, topic_cb, c);
    } else {
        char buf[BC_VALMAX], dbuf[BC_VALMAX];
        for (int i = 0; i < BC_COUNT; i++) {
            const bc_def_t *d = &bc_table[i];
            if (!wanted(c, d->name)) continue;
            int8_t source;
            const char *dv;
            const char *v = bc_value(d, buf, sizeof buf, &source, dbuf, &dv);
            describe_configs_resp_config_t *o = dc_add(c, d->name, v, true, source, d->type, d->doc);
            dc_synonym(c, o, d->name, v, source);
            if (source != CONFIG_SOURCE_DEFAULT_CONFIG && dv)
                dc_synonym(c, o, d->name, dv, CONFIG_SOURCE_DEFAULT_CONFIG);
        }
        topic_config_list(&dflt, broker_syn_cb, c);
        qsort(c->items, (size_t)c->n, sizeof *c->items, cfg_name_cmp);
    }
    res->configs.count = c->n;
    return c->oom ? -1 : 0;
}

kh_result_t api_describe_configs(kreq_t *req) {
    int v = req->hdr.api_version;
    describe_configs_req_t in;
    if (kmsg_decode(&describe_configs_req_schema, v, req->flexible, &req->body, &in, &req->arena)) {
        log_warn("describe_configs: malformed v%d request (decode error %d), closing", v, req->body.err);
        return KH_CLOSE;
    }
    describe_configs_resp_t resp;
    kmsg_defaults(&describe_configs_resp_schema, &resp);
    int32_t n = in.resources.count > 0 ? in.resources.count : 0;
    describe_configs_resp_result_t *out = KARR_NEW(&req->arena, resp.results, describe_configs_resp_result_t, n);
    if (!out) goto oom;
    dc_ctx_t c = {.req = req, .synonyms = v >= 1 && in.include_synonyms,
                  .docs = v >= 3 && in.include_documentation};
    for (int32_t i = 0; i < n; i++) {
        const describe_configs_req_resource_t *r = KARR_AT(in.resources, describe_configs_req_resource_t, i);
        if (describe_one(&c, r, &out[i])) goto oom;
        if (out[i].error_code)
            log_debug("describe_configs: %d/%.*s: %s", r->resource_type, KS_ARGS(r->resource_name),
                      kafka_err_name(out[i].error_code));
    }
    return kreq_respond(req, &describe_configs_resp_schema, &resp);

oom:
    log_error("describe_configs: out of request memory answering a v%d request, closing", v);
    return KH_CLOSE;
}
