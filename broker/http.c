/* http.c - the broker's HTTP listener on KAFSCALE_METRICS_ADDR (default
 * :9093), served by libevent's evhttp on the broker's event loop:
 *
 *   GET  /metrics             Prometheus text (common/metrics.h); the broker's
 *                             state, its read cache and its processes are
 *                             copied into the registry first (collect_cb),
 *                             the flusher's series arrive in STATS frames
 *   GET  /healthz             200 "ok": the process and its event loop run
 *   GET  /readyz              200 "ready", or 503 with the reasons, one per
 *                             line: flusher link down (also while starting),
 *                             object store failing (the flusher's STORE
 *                             reports), metadata store or cached down (hooks
 *                             in http.h), draining, shutting down
 *   POST /control/v1/<Method> the control API (proto/control/broker.proto):
 *                             GetStatus, TriggerFlush, DrainPartitions,
 *                             ResumePartitions; protobuf or JSON bodies
 *
 * TriggerFlush and DrainPartitions park their HTTP request as a "waiter"
 * holding, per partition, the log end offset at the time of the call; a
 * 10 ms timer (armed only while waiters exist) asks the flusher to flush and
 * answers each waiter once every high watermark reached its target, or at
 * its deadline. Waiting for what was accepted before the call, not for
 * hw == log end, lets a flush finish under continuous produce.
 */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "broker.h"
#include "cluster.h"
#include "config.h"
#include "control/broker.pb-c.h"
#include "metrics.h"
#include "pbjson.h"
#include "store_read.h"

/* Shorter names for the generated types. */
typedef Kafscale__Control__V1__Component pb_component_t;
typedef Kafscale__Control__V1__PartitionStatus pb_partition_t;
typedef Kafscale__Control__V1__GetStatusRequest pb_status_req_t;
typedef Kafscale__Control__V1__GetStatusResponse pb_status_resp_t;
typedef Kafscale__Control__V1__TriggerFlushRequest pb_flush_req_t;
typedef Kafscale__Control__V1__TriggerFlushResponse pb_flush_resp_t;
typedef Kafscale__Control__V1__DrainPartitionsRequest pb_drain_req_t;
typedef Kafscale__Control__V1__DrainPartitionsResponse pb_drain_resp_t;
typedef Kafscale__Control__V1__ResumePartitionsResponse pb_resume_resp_t;
typedef Kafscale__Control__V1__Error pb_error_t;

#define WAIT_DEFAULT_MS 30000
#define WAIT_MAX_MS 3600000
#define WAIT_TICK_MS 10
#define MAX_BODY (1 << 20)

typedef struct wait_part {
    char topic[250];
    int32_t partition;
    int64_t target; /* log end offset at the call: durable once hw reaches it */
} wait_part_t;

typedef struct waiter {
    TAILQ_ENTRY(waiter) link;
    struct evhttp_request *r;
    bool json, drain;
    int64_t start_ms, deadline_ms, flushed_bytes;
    int32_t partitions;
    wait_part_t *parts;
    size_t nparts;
} waiter_t;

static struct {
    struct evhttp *http;
    struct event *tick_ev;
    TAILQ_HEAD(, waiter) waiters;
    char addr[300];
} H = {.waiters = TAILQ_HEAD_INITIALIZER(H.waiters)};

/* ---- readiness ---- */

static void why_add(char *why, size_t whysz, const char *line) {
    size_t n = strlen(why);
    if (n + 1 >= whysz) return;
    snprintf(why + n, whysz - n, "%s%s", n ? "\n" : "", line);
}

bool http_node_ready(char *why, size_t whysz) {
    char line[512];
    why[0] = 0;
    if (g_broker.stopping) why_add(why, whysz, "shutting down");
    if (!flink_ready()) why_add(why, whysz, "flusher: not connected (starting, or the flusher is restarting)");
    if (!flink_store_healthy()) {
        snprintf(line, sizeof line, "object store: failing: %s",
                 flink_store_message()[0] ? flink_store_message() : "uploads fail");
        why_add(why, whysz, line);
    }
    if (meta_link_ready) {
        char mwhy[256] = "";
        if (!meta_link_ready(mwhy, sizeof mwhy)) {
            snprintf(line, sizeof line, "metadata store: %s", mwhy[0] ? mwhy : "not reachable");
            why_add(why, whysz, line);
        }
    }
    if (cache_link_ready && !cache_link_ready()) why_add(why, whysz, "cached: not connected");
    if (g_broker.draining) why_add(why, whysz, "draining: writes are fenced (DrainPartitions)");
    return why[0] == 0;
}

/* ---- metrics: the broker's part ---- */

static void collect_cb(void *arg) {
    int64_t partitions = cluster_partitions_led(), topics = 0;
    for (topic_t *t = topics_first(); t; t = topics_next(t)) topics++;
    metrics_set(M_CONNECTIONS, g_broker.nconns);
    metrics_set(M_UNFLUSHED_BYTES, (double)g_broker.unflushed_bytes);
    metrics_set(M_MEMORY_LOG_BYTES, (double)g_broker.mem_bytes);
    metrics_set(M_PARTITIONS, (double)partitions);
    metrics_set(M_TOPICS, (double)topics);
    char why[1024];
    metrics_set(M_READY, http_node_ready(why, sizeof why) ? 1 : 0);
    metrics_set(M_DRAINING, g_broker.draining ? 1 : 0);
    metrics_set(M_COMPONENT_UP, flink_ready() ? 1 : 0, "flusher");
    metrics_set(M_COMPONENT_UP, flink_store_healthy() ? 1 : 0, "object_store");
    if (meta_link_ready) {
        char mwhy[256];
        metrics_set(M_COMPONENT_UP, meta_link_ready(mwhy, sizeof mwhy) ? 1 : 0, "metadata_store");
    } else {
        metrics_set(M_COMPONENT_UP, 1, "metadata_store"); /* embedded: in this process */
    }
    if (cache_link_ready) metrics_set(M_COMPONENT_UP, cache_link_ready() ? 1 : 0, "cached");

    /* The broker's read cache (store_read.c). */
    sr_stats_t st;
    store_read_stats(&st);
    metrics_set(M_CACHE_HITS, (double)st.hits, "broker");
    metrics_set(M_CACHE_MISSES, (double)st.misses, "broker");
    metrics_set(M_CACHE_LOADS, (double)st.loads, "broker");
    metrics_set(M_CACHE_LOAD_BYTES, (double)st.load_bytes, "broker");
    metrics_set(M_CACHE_LOAD_ERRORS, (double)st.errors, "broker");
    metrics_set(M_CACHE_EVICTIONS, (double)st.evictions, "broker");
    metrics_set(M_CACHE_BYTES, (double)st.cache_bytes, "broker");
    metrics_set(M_CACHE_CAPACITY, (double)st.cache_budget, "broker");
    metrics_set(M_CACHE_INFLIGHT, (double)st.inflight, "broker");
    metrics_set(M_OBJ_RETRIES, (double)st.store_retries, "broker");
    /* The store's GETs (kafscale_objstore_*{process="broker"}) are counted by
     * store_read.c as they finish; cached's arrive in its METRICS frames and
     * the ring's counters are read from its header (cache_link.c). */

    /* The node's processes. The flusher also reports itself in STATS
     * (needed when it is not ours to see: KAFSCALE_SUPERVISE=0); cached's
     * process is cache_link.c's collector's. */
    metrics_sample_process("broker", getpid());
    pid_t fp = flink_flusher_pid();
    if (fp > 0) metrics_sample_process("flusher", fp);
}

/* ---- replies ---- */

static void reply(struct evhttp_request *r, int code, const char *reason, const char *ctype, const void *body,
                  size_t len) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    if (b && len) evbuffer_add(b, body, len);
    evhttp_send_reply(r, code, reason, b);
    if (b) evbuffer_free(b);
}

static void reply_textf(struct evhttp_request *r, int code, const char *reason, const char *text) {
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "%s\n", text);
    reply(r, code, reason, "text/plain; charset=utf-8", buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A control API message in the caller's encoding. */
static void reply_msg(struct evhttp_request *r, int code, const char *reason, bool json, const ProtobufCMessage *m) {
    if (json) {
        json_t *o = pbjson_from_message(m);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!s) {
            reply_textf(r, 500, "Internal Server Error", "out of memory");
            return;
        }
        size_t n = strlen(s);
        char *nl = realloc(s, n + 2);
        if (nl) {
            s = nl;
            s[n++] = '\n';
            s[n] = 0;
        }
        reply(r, code, reason, "application/json", s, n);
        free(s);
        return;
    }
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        reply_textf(r, 500, "Internal Server Error", "out of memory");
        return;
    }
    protobuf_c_message_pack(m, buf);
    reply(r, code, reason, "application/x-protobuf", buf, n);
    free(buf);
}

static void reply_error(struct evhttp_request *r, int code, const char *reason, bool json, const char *msg) {
    pb_error_t e = KAFSCALE__CONTROL__V1__ERROR__INIT;
    e.error = (char *)msg;
    reply_msg(r, code, reason, json, &e.base);
}

/* ---- the control API ---- */

static pb_component_t component(const char *name, int state, pid_t pid, const char *msg) {
    pb_component_t c = KAFSCALE__CONTROL__V1__COMPONENT__INIT;
    c.name = (char *)name;
    c.state = state;
    c.pid = (int32_t)pid;
    c.message = (char *)(msg ? msg : "");
    return c;
}

static void ctl_get_status(struct evhttp_request *r, bool json, const ProtobufCMessage *in_) {
    const pb_status_req_t *in = (const pb_status_req_t *)in_;
    pb_status_resp_t s = KAFSCALE__CONTROL__V1__GET_STATUS_RESPONSE__INIT;
    char addr[300], why[2048], meta_msg[256] = "";
    broker_config_t *cfg = &g_broker.cfg;
    s.node_id = cfg->node_id;
    s.cluster_id = cfg->cluster_id;
    snprintf(addr, sizeof addr, "%s:%d", cfg->advertised_host, cfg->advertised_port);
    s.kafka_address = addr;
    s.uptime_ms = now_ms() - g_broker.start_ms;
    s.ready = http_node_ready(why, sizeof why);
    s.not_ready_reason = why;
    s.draining = g_broker.draining;
    s.unflushed_bytes = g_broker.unflushed_bytes;
    s.connections = g_broker.nconns;
    for (topic_t *t = topics_first(); t; t = topics_next(t)) s.topics++;
    size_t np = (size_t)cluster_partitions_led();
    s.partitions_led = (int32_t)np;

    bool store_ok = flink_store_healthy();
    pb_component_t flusher = component("flusher", flink_ready() ? KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_UP
                                                                : KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_DOWN,
                                       flink_flusher_pid(), flink_ready() ? "" : "link down");
    pb_component_t cached =
        cache_link_ready ? component("cached",
                                     cache_link_ready() ? KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_UP
                                                        : KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_DOWN,
                                     cache_link_pid ? cache_link_pid() : 0, "")
                         : component("cached", KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_ABSENT, 0,
                                     "not part of this build");
    pb_component_t store = component("object_store",
                                     store_ok ? KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_UP
                                              : KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_DOWN,
                                     0, store_ok ? "" : flink_store_message());
    bool meta_ok = meta_link_ready ? meta_link_ready(meta_msg, sizeof meta_msg) : true;
    pb_component_t meta = component("metadata_store",
                                    meta_ok ? KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_UP
                                            : KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_DOWN,
                                    0, meta_link_ready ? meta_msg : "embedded (single node)");
    s.flusher = &flusher;
    s.cached = &cached;
    s.object_store = &store;
    s.metadata_store = &meta;

    pb_partition_t *parts = NULL;
    pb_partition_t **pp = NULL;
    if (!in->omit_partitions && np) {
        parts = calloc(np, sizeof *parts);
        pp = calloc(np, sizeof *pp);
        if (!parts || !pp) {
            free(parts);
            free(pp);
            reply_error(r, 500, "Internal Server Error", json, "out of memory");
            return;
        }
        size_t k = 0;
        for (topic_t *t = topics_first(); t; t = topics_next(t))
            for (int32_t i = 0; i < t->npartitions && k < np; i++) {
                partition_t *p = &t->partitions[i];
                if (p->lead == PL_NONE) continue; /* cluster: another broker's */
                pb_partition_t x = KAFSCALE__CONTROL__V1__PARTITION_STATUS__INIT;
                x.topic = t->name;
                x.partition = i;
                x.leader_epoch = p->leader_epoch;
                x.log_start_offset = p->log.start_offset;
                x.high_watermark = p->log.hw;
                x.log_end_offset = p->log.next_offset;
                x.unflushed_bytes = p->unflushed_bytes;
                x.segments = (int32_t)p->nsegs;
                parts[k] = x;
                pp[k] = &parts[k];
                k++;
            }
        s.n_partitions = k;
        s.partitions = pp;
    }
    reply_msg(r, 200, "OK", json, &s.base);
    free(parts);
    free(pp);
}

/* Partitions not durable up to their target yet. */
static size_t waiter_pending(waiter_t *w) {
    size_t pending = 0;
    for (size_t i = 0; i < w->nparts; i++) {
        wait_part_t *wp = &w->parts[i];
        if (wp->target < 0) continue;
        partition_t *p = partition_find(kstr_c(wp->topic), wp->partition);
        /* gone (deleted), or reset to less than we waited for: nothing to wait for */
        if (!p || p->log.hw >= wp->target || p->log.next_offset < wp->target) {
            wp->target = -1;
            continue;
        }
        pending++;
    }
    /* A cluster's drain is over when every partition went to another broker. */
    if (w->drain && cluster_enabled()) pending += (size_t)cluster_partitions_led();
    return pending;
}

static void waiter_answer(waiter_t *w, bool durable, const char *msg) {
    int64_t elapsed = now_ms() - w->start_ms;
    int64_t left = durable ? 0 : g_broker.unflushed_bytes;
    if (w->drain) {
        pb_drain_resp_t d = KAFSCALE__CONTROL__V1__DRAIN_PARTITIONS_RESPONSE__INIT;
        d.drained = durable;
        d.partitions = w->partitions;
        d.flushed_bytes = w->flushed_bytes;
        d.elapsed_ms = elapsed;
        d.message = (char *)msg;
        reply_msg(w->r, 200, "OK", w->json, &d.base);
    } else {
        pb_flush_resp_t f = KAFSCALE__CONTROL__V1__TRIGGER_FLUSH_RESPONSE__INIT;
        f.durable = durable;
        f.flushed_bytes = w->flushed_bytes;
        f.unflushed_bytes = left;
        f.elapsed_ms = elapsed;
        f.message = (char *)msg;
        reply_msg(w->r, 200, "OK", w->json, &f.base);
    }
    log_fields(LOG_INFO, LOG_F(LF_INT("elapsed_ms", elapsed), LF_INT("flushed_bytes", w->flushed_bytes)),
               "control: %s %s", w->drain ? "DrainPartitions" : "TriggerFlush", msg);
    TAILQ_REMOVE(&H.waiters, w, link);
    free(w->parts);
    free(w);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg) {
    int64_t now = now_ms();
    bool any_pending = false;
    waiter_t *w, *next;
    for (w = TAILQ_FIRST(&H.waiters); w; w = next) {
        next = TAILQ_NEXT(w, link);
        size_t pending = waiter_pending(w);
        if (!pending) {
            waiter_answer(w, true,
                          w->drain ? "drained: everything accepted is durable and writes are fenced"
                                   : "everything accepted before the call is durable");
        } else if (now >= w->deadline_ms) {
            char msg[160];
            snprintf(msg, sizeof msg, "timed out: %zu partition(s) not durable yet%s", pending,
                     flink_ready() ? "" : " (the flusher is not connected)");
            waiter_answer(w, false, msg);
        } else {
            any_pending = true;
        }
    }
    if (any_pending) flink_flush_hint();
    if (!TAILQ_EMPTY(&H.waiters)) {
        struct timeval tv = {0, WAIT_TICK_MS * 1000};
        evtimer_add(H.tick_ev, &tv);
    }
}

/* Parks r until what every partition holds now is durable. */
static void waiter_start(struct evhttp_request *r, bool json, bool drain, int64_t timeout_ms) {
    if (timeout_ms <= 0) timeout_ms = WAIT_DEFAULT_MS;
    if (timeout_ms > WAIT_MAX_MS) timeout_ms = WAIT_MAX_MS;
    waiter_t *w = calloc(1, sizeof *w);
    size_t np = 0;
    for (topic_t *t = topics_first(); t; t = topics_next(t)) np += (size_t)t->npartitions;
    if (w && np) w->parts = calloc(np, sizeof *w->parts);
    if (!w || (np && !w->parts)) {
        if (w) free(w);
        reply_error(r, 500, "Internal Server Error", json, "out of memory");
        return;
    }
    w->r = r;
    w->json = json;
    w->drain = drain;
    w->start_ms = now_ms();
    w->deadline_ms = w->start_ms + timeout_ms;
    w->flushed_bytes = g_broker.unflushed_bytes;
    w->partitions = (int32_t)(cluster_enabled() ? cluster_partitions_led() : (int)np);
    for (topic_t *t = topics_first(); t; t = topics_next(t))
        for (int32_t i = 0; i < t->npartitions && w->nparts < np; i++) {
            wait_part_t *wp = &w->parts[w->nparts++];
            snprintf(wp->topic, sizeof wp->topic, "%s", t->name);
            wp->partition = i;
            wp->target = t->partitions[i].log.next_offset;
        }
    TAILQ_INSERT_TAIL(&H.waiters, w, link);
    flink_flush_hint();
    tick_cb(-1, 0, NULL); /* answers at once when nothing is unflushed */
}

static void ctl_trigger_flush(struct evhttp_request *r, bool json, const ProtobufCMessage *in) {
    waiter_start(r, json, false, ((const pb_flush_req_t *)in)->timeout_ms);
}

static void ctl_drain(struct evhttp_request *r, bool json, const ProtobufCMessage *in) {
    if (!g_broker.draining) {
        /* Fence first: what is accepted from now on is refused, so the
         * snapshot below is everything there will be. */
        g_broker.draining = true;
        if (cluster_enabled()) {
            /* Partitions and groups move to the other brokers one by one:
             * each is flushed, committed and released before its new
             * leader claims it, so clients only see retriable errors. */
            cluster_set_draining(true);
            log_warn("control: DrainPartitions: handing every partition and group to the other brokers");
        } else {
            log_warn("control: DrainPartitions: produce is refused from now on (NOT_LEADER_OR_FOLLOWER)");
        }
    }
    waiter_start(r, json, true, ((const pb_drain_req_t *)in)->timeout_ms);
}

static void ctl_resume(struct evhttp_request *r, bool json, const ProtobufCMessage *in) {
    if (g_broker.draining) log_warn("control: ResumePartitions: produce is taken again");
    g_broker.draining = false;
    cluster_set_draining(false);
    pb_resume_resp_t x = KAFSCALE__CONTROL__V1__RESUME_PARTITIONS_RESPONSE__INIT;
    x.draining = false;
    reply_msg(r, 200, "OK", json, &x.base);
}

typedef void ctl_fn(struct evhttp_request *r, bool json, const ProtobufCMessage *in);

/* The control API's methods: the only list (broker.proto documents them). */
static const struct ctl_method {
    const char *name;
    const ProtobufCMessageDescriptor *req;
    ctl_fn *fn;
    bool get_ok; /* may be called with GET and no body */
} methods[] = {
    {"GetStatus", &kafscale__control__v1__get_status_request__descriptor, ctl_get_status, true},
    {"TriggerFlush", &kafscale__control__v1__trigger_flush_request__descriptor, ctl_trigger_flush, false},
    {"DrainPartitions", &kafscale__control__v1__drain_partitions_request__descriptor, ctl_drain, false},
    {"ResumePartitions", &kafscale__control__v1__resume_partitions_request__descriptor, ctl_resume, false},
};

static bool has_token(const char *header, const char *tok) { return header && strstr(header, tok) != NULL; }

static void control_cb(struct evhttp_request *r, const char *method_name) {
    struct evkeyvalq *in_h = evhttp_request_get_input_headers(r);
    const char *ctype = evhttp_find_header(in_h, "Content-Type");
    const char *accept = evhttp_find_header(in_h, "Accept");
    bool pb_in = has_token(ctype, "protobuf");
    bool json = !pb_in;
    if (has_token(accept, "protobuf")) json = false;
    else if (has_token(accept, "application/json")) json = true;

    const struct ctl_method *m = NULL;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(methods[i].name, method_name)) m = &methods[i];
    if (!m) {
        reply_error(r, 404, "Not Found", json, "unknown control method");
        return;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(r);
    if (cmd != EVHTTP_REQ_POST && !(cmd == EVHTTP_REQ_GET && m->get_ok)) {
        reply_error(r, 405, "Method Not Allowed", json, m->get_ok ? "use GET or POST" : "use POST");
        return;
    }
    struct evbuffer *body = evhttp_request_get_input_buffer(r);
    size_t len = evbuffer_get_length(body);
    const uint8_t *p = len ? evbuffer_pullup(body, (ev_ssize_t)len) : NULL;
    ProtobufCMessage *in = NULL;
    char err[256] = "malformed request";
    if (pb_in) {
        in = protobuf_c_message_unpack(m->req, NULL, len, p);
    } else if (len == 0) {
        json_t *empty = json_object();
        in = pbjson_to_message(m->req, empty, err, sizeof err);
        json_decref(empty);
    } else {
        json_error_t je;
        json_t *j = json_loadb((const char *)p, len, 0, &je);
        if (!j) snprintf(err, sizeof err, "malformed JSON: %s", je.text);
        else in = pbjson_to_message(m->req, j, err, sizeof err);
        json_decref(j);
    }
    if (!in) {
        reply_error(r, 400, "Bad Request", json, err);
        return;
    }
    m->fn(r, json, in);
    protobuf_c_message_free_unpacked(in, NULL);
}

/* ---- routing ---- */

static void request_cb(struct evhttp_request *r, void *arg) {
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(r);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    if (!path) path = "/";
    enum evhttp_cmd_type cmd = evhttp_request_get_command(r);
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    if (!strncmp(path, "/control/v1/", 12)) {
        control_cb(r, path + 12);
        return;
    }
    if (!get) {
        reply_textf(r, 405, "Method Not Allowed", "use GET");
        return;
    }
    if (!strcmp(path, "/metrics")) {
        kw_t w;
        kw_init(&w, 64 << 10);
        metrics_render(&w);
        reply(r, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", w.buf, w.len);
        kw_free(&w);
    } else if (!strcmp(path, "/healthz")) {
        reply_textf(r, 200, "OK", "ok");
    } else if (!strcmp(path, "/readyz")) {
        char why[2048];
        if (http_node_ready(why, sizeof why)) reply_textf(r, 200, "OK", "ready");
        else reply_textf(r, 503, "Service Unavailable", why);
    } else if (!strcmp(path, "/")) {
        reply_textf(r, 200, "OK",
                    "kafscale-broker\n"
                    "  GET  /metrics   Prometheus metrics\n"
                    "  GET  /healthz   liveness\n"
                    "  GET  /readyz    readiness (503 with the reasons when not ready)\n"
                    "  POST /control/v1/{GetStatus,TriggerFlush,DrainPartitions,ResumePartitions}\n"
                    "       protobuf (application/x-protobuf) or JSON bodies: proto/control/broker.proto");
    } else {
        reply_textf(r, 404, "Not Found", "not found");
    }
}

/* ---- start and stop ---- */

int http_init(void) {
    const char *set = getenv("KAFSCALE_METRICS_ADDR");
    const char *addr = env_str("KAFSCALE_METRICS_ADDR", ":9093");
    metrics_add_collector(collect_cb, NULL);
    /* Every API's request counter and latency exist (at 0) from the start,
     * so a rate over an API that was never called is 0, not absent. */
    for (int i = 0; i < api_table_len; i++) {
        const char *lv[] = {api_table[i].name};
        metrics_series(M_REQUESTS, lv, 1);
        metrics_series(M_REQUEST_SECONDS, lv, 1);
    }
    if (!strcmp(addr, "off") || !strcmp(addr, "none")) {
        log_info("HTTP listener off (KAFSCALE_METRICS_ADDR=%s)", addr);
        return 0;
    }
    char host[256];
    int port;
    env_hostport("KAFSCALE_METRICS_ADDR", addr, host, sizeof host, &port);
    H.http = evhttp_new(g_broker.base);
    H.tick_ev = evtimer_new(g_broker.base, tick_cb, NULL);
    if (!H.http || !H.tick_ev) {
        log_error("cannot create the HTTP listener");
        return -1;
    }
    evhttp_set_max_body_size(H.http, MAX_BODY);
    evhttp_set_timeout(H.http, 60);
    evhttp_set_allowed_methods(H.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_gencb(H.http, request_cb, NULL);
    if (!evhttp_bind_socket_with_handle(H.http, host[0] ? host : "0.0.0.0", (ev_uint16_t)port)) {
        if (set && *set) {
            log_error("KAFSCALE_METRICS_ADDR: cannot listen on %s: %s", addr, strerror(errno));
            return -1;
        }
        log_warn("cannot listen on %s for /metrics and the control API (%s); set KAFSCALE_METRICS_ADDR to another "
                 "address. Running without them.",
                 addr, strerror(errno));
        evhttp_free(H.http);
        H.http = NULL;
        return 0;
    }
    snprintf(H.addr, sizeof H.addr, "%s:%d", host[0] ? host : "*", port);
    log_info("HTTP listening on %s: /metrics /healthz /readyz /control/v1/", H.addr);
    return 0;
}

void http_shutdown(void) {
    waiter_t *w;
    while ((w = TAILQ_FIRST(&H.waiters))) {
        reply_error(w->r, 503, "Service Unavailable", w->json, "the broker is shutting down");
        TAILQ_REMOVE(&H.waiters, w, link);
        free(w->parts);
        free(w);
    }
    if (H.tick_ev) event_free(H.tick_ev);
    H.tick_ev = NULL;
    if (H.http) evhttp_free(H.http);
    H.http = NULL;
}
