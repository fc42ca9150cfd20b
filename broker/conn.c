/* conn.c - Kafka client connections: framing, the per-connection state
 * machine, dispatch to API handlers, parked requests, and in-order responses
 * written with scatter-gather (record bytes go out by reference).
 *
 * Each connection reads frames (4-byte big-endian size, then the request),
 * checks the size against KAFSCALE_MAX_REQUEST_BYTES before reading it,
 * decodes the header and refuses unknown API keys and versions before any
 * handler runs.
 *
 * Reading is ours, not libevent's: libevent 2.1 reads a bufferevent 4 KiB
 * per readv (plus an ioctl(FIONREAD) and an epoll round each), which was a
 * third of the broker's CPU on a 1 MiB produce. recv() fills a 64 KiB
 * staging buffer that holds sizes and small frames; a frame that does not
 * fit in what was staged gets its buffer at once and the rest of it is
 * recv()'d straight into that buffer. The bufferevent only writes. Many requests may be in flight on one connection: responses
 * are queued in request order and a finished response waits for those before
 * it. A per-event budget keeps one busy client from starving the others.
 */
#include "broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "metrics.h"
#include "msg_api_versions.h"

#define KCONN_MAGIC 0x6b636f6eu   /* "kcon" */
#define FRAMES_PER_EVENT 64       /* request budget per read event */
#define MAX_QUEUED_FRAME_BYTES (64 << 20)
#define MAX_OUTPUT_BYTES (64 << 20)
#define IBUF_SIZE (64 << 10)      /* staging buffer for sizes and small frames */
#define READ_BYTES_PER_EVENT (8 << 20) /* then other connections get a turn */
#define MAX_SINGLE_WRITE (4 << 20) /* libevent 2.1's default is 16 KiB per writev */

typedef enum conn_state {
    CONN_READING = 0, /* reading and dispatching frames */
    CONN_PAUSED,      /* too much in flight or queued output: not reading */
    CONN_CLOSING,     /* protocol error or peer gone: flushing what is owed, then closing */
    CONN_STATE_MAX
} conn_state_t;

static const char *conn_state_names[CONN_STATE_MAX] = {"reading", "paused", "closing"};

TAILQ_HEAD(kreq_queue, kreq);

typedef struct kconn {
    uint32_t magic;
    conn_state_t state;
    struct bufferevent *bev;  /* writes only: reads are read_ev + recv() */
    evutil_socket_t fd;
    struct event *read_ev;    /* EV_READ | EV_PERSIST, with the idle timeout */
    bool read_on;             /* read_ev added */
    struct event *resume_ev;  /* continues dispatch when the budget ran out */
    uint8_t *ibuf;            /* IBUF_SIZE staging bytes; unparsed are [ipos, ilen) */
    size_t ipos, ilen;
    kreq_t *rd_req;           /* frame being recv()'d straight into its buffer */
    size_t rd_size, rd_have;
    char peer[64];
    struct kreq_queue queue;  /* requests in arrival order, answered in this order */
    int nqueued;
    size_t queued_bytes;      /* frame bytes of queued requests */
    bool producer;            /* has sent Produce: paused while unflushed bytes are over the bound */
    bool unflushed_wait;      /* on the unflushed_waiters list */
    TAILQ_ENTRY(kconn) wait_link;
    kreq_t *free_reqs;        /* recycled requests (arena and writer buffers kept) */
    int nfree;
    TAILQ_ENTRY(kconn) link;
} kconn_t;

TAILQ_HEAD(kconn_list, kconn);
static struct kconn_list all_conns = TAILQ_HEAD_INITIALIZER(all_conns);
TAILQ_HEAD(kconn_wait_list, kconn);
static struct kconn_wait_list unflushed_waiters = TAILQ_HEAD_INITIALIZER(unflushed_waiters);
static struct evconnlistener *listener;
static struct kreq_queue parked = TAILQ_HEAD_INITIALIZER(parked); /* waiting: timer armed */
static struct kreq_queue waking = TAILQ_HEAD_INITIALIZER(waking); /* being re-run by wake_cb */
enum { PARK_NONE = 0, PARK_WAITING, PARK_WAKING };
static struct event *wake_ev;

static void conn_close(kconn_t *c, const char *why);
static void conn_free(kconn_t *c);
static void conn_dispatch(kconn_t *c);
static void conn_send_ready(kconn_t *c);
static void conn_resume(kconn_t *c);

static void conn_set_state(kconn_t *c, conn_state_t s) {
    KS_ASSERT(c->magic == KCONN_MAGIC);
    KS_ASSERT(s < CONN_STATE_MAX);
    /* Nothing leaves CLOSING but conn_close(). */
    KS_ASSERT(c->state != CONN_CLOSING || s == CONN_CLOSING);
    if (c->state != s) log_debug("conn %s: %s -> %s", c->peer, conn_state_names[c->state], conn_state_names[s]);
    c->state = s;
}

/* ---- requests ---- */

static kreq_t *req_get(kconn_t *c) {
    kreq_t *r = c->free_reqs;
    if (r) {
        c->free_reqs = (kreq_t *)r->state;
        c->nfree--;
    } else {
        r = calloc(1, sizeof *r);
        if (!r) return NULL;
        karena_init(&r->arena);
        kw_init(&r->resp, 0);
    }
    r->magic = KREQ_MAGIC;
    r->conn = c;
    r->state = NULL;
    r->state_mark = karena_mark(&r->arena);
    r->done = r->no_response = r->timed_out = false;
    r->park = PARK_NONE;
    r->received_us = now_us();
    return r;
}

static void req_unpark(kreq_t *r) {
    if (r->park == PARK_WAITING) {
        evtimer_del(r->timer);
        TAILQ_REMOVE(&parked, r, park_link);
    } else if (r->park == PARK_WAKING) {
        TAILQ_REMOVE(&waking, r, park_link);
    }
    r->park = PARK_NONE;
}

/* Ends a request: gives back its frame and buffers, keeps a few for reuse. */
static void req_put(kconn_t *c, kreq_t *r) {
    KS_ASSERT(r->magic == KREQ_MAGIC);
    req_unpark(r);
    /* Keep a modest frame buffer with the recycled request: fresh memory for
     * every 1 MiB produce costs a page fault per 4 KiB. */
    if (!c || r->frame_cap > (8u << 20)) {
        free(r->frame);
        r->frame = NULL;
        r->frame_cap = 0;
    }
    kw_reset(&r->resp);
    karena_reset(&r->arena);
    if (c && c->nfree < 8 && r->resp.cap <= (1 << 20)) {
        r->state = c->free_reqs;
        c->free_reqs = r;
        c->nfree++;
        return;
    }
    if (r->timer) event_free(r->timer);
    free(r->frame);
    kw_free(&r->resp);
    karena_free(&r->arena);
    r->magic = 0;
    free(r);
}

static void count_error_cb(int16_t code, void *api) { metrics_count_error(api, code); }

void kreq_count_errors(const kreq_t *req, const kschema_t *schema, const void *resp) {
    kmsg_each_error(schema, req->hdr.api_version, req->flexible, resp, count_error_cb, (void *)req->api->name);
}

kh_result_t kreq_respond(kreq_t *req, const kschema_t *schema, const void *resp) {
    if (kmsg_encode(schema, req->hdr.api_version, req->flexible, &req->resp, resp) != 0) {
        log_error("cannot encode %s v%d response (correlation id %d)", req->api->name, req->hdr.api_version,
                  req->hdr.correlation_id);
        return KH_CLOSE;
    }
    kreq_count_errors(req, schema, resp);
    return KH_RESPOND;
}

void kreq_keep_state(kreq_t *req, void *state) {
    req->state = state;
    req->state_mark = karena_mark(&req->arena);
}

static void park_timeout_cb(evutil_socket_t fd, short what, void *arg) {
    kreq_t *r = arg;
    KS_ASSERT(r->park == PARK_WAITING);
    TAILQ_REMOVE(&parked, r, park_link);
    r->park = PARK_NONE;
    r->timed_out = true;
    kh_result_t res = r->api->handler(r);
    if (res != KH_PARKED) kreq_finish(r, res);
}

kh_result_t kreq_park(kreq_t *req, int64_t timeout_ms) {
    KS_ASSERT(req->magic == KREQ_MAGIC);
    kw_reset(&req->resp);
    karena_rewind(&req->arena, req->state_mark);
    if (!req->timer) {
        req->timer = evtimer_new(g_broker.base, park_timeout_cb, req);
        if (!req->timer) return KH_CLOSE;
    }
    req_unpark(req);
    if (timeout_ms < 0) timeout_ms = 0;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(req->timer, &tv);
    TAILQ_INSERT_TAIL(&parked, req, park_link);
    req->park = PARK_WAITING;
    return KH_PARKED;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) {
    /* Re-run every parked handler once; those still waiting park again. A
     * handler may close its connection, which drops that connection's other
     * requests from `waking` (req_unpark), so always take the list head. */
    kreq_t *r;
    while ((r = TAILQ_FIRST(&parked))) {
        TAILQ_REMOVE(&parked, r, park_link);
        evtimer_del(r->timer);
        TAILQ_INSERT_TAIL(&waking, r, park_link);
        r->park = PARK_WAKING;
    }
    while ((r = TAILQ_FIRST(&waking))) {
        TAILQ_REMOVE(&waking, r, park_link);
        r->park = PARK_NONE;
        kh_result_t res = r->api->handler(r);
        if (res != KH_PARKED) kreq_finish(r, res);
    }
}

void kreq_wake_parked(void) {
    if (wake_ev && !TAILQ_EMPTY(&parked)) event_active(wake_ev, EV_TIMEOUT, 0);
}

void kreq_finish(kreq_t *req, kh_result_t res) {
    KS_ASSERT(req->magic == KREQ_MAGIC);
    kconn_t *c = req->conn;
    req->done = true;
    req->no_response = (res == KH_NO_RESPONSE);
    /* The one place requests are counted (metrics.h); the error codes inside
     * responses are counted by kreq_respond(). */
    metrics_count_request(req->api ? req->api->name : NULL, (double)(now_us() - req->received_us) / 1e6);
    if (res == KH_CLOSE) metrics_add(M_REQUEST_ERRORS, 1, req->api ? req->api->name : "unknown", "_MALFORMED_REQUEST");
    if (res == KH_CLOSE) {
        log_warn("closing connection from %s: malformed %s v%d request (correlation id %d)", c->peer,
                 req->api ? req->api->name : "?", req->hdr.api_version, req->hdr.correlation_id);
        conn_close(c, NULL);
        return;
    }
    conn_send_ready(c);
}

/* ---- responses ---- */

/* Keeps the release callbacks of one response alive until libevent has
 * written (and freed) every referenced piece of it. */
typedef struct resp_hold {
    int pending;
    size_t n;
    kw_ref_t rel[];
} resp_hold_t;

static void hold_run(resp_hold_t *h) {
    for (size_t i = 0; i < h->n; i++) h->rel[i].release(h->rel[i].arg);
    free(h);
}

static void hold_cleanup_cb(const void *data, size_t len, void *arg) {
    resp_hold_t *h = arg;
    if (--h->pending == 0) hold_run(h);
}

/* Moves the response (header + body pieces) into the output buffer. */
static void write_response(kconn_t *c, kreq_t *r) {
    struct evbuffer *out = bufferevent_get_output(c->bev);
    kw_t *w = &r->resp;
    /* ApiVersions always answers with response header v0 (no tagged fields),
     * so that a client can parse it whatever version it asked for. */
    bool hdr_tags = r->flexible && r->hdr.api_key != KAPI_API_VERSIONS;
    uint8_t hdr[9];
    size_t hlen = hdr_tags ? 9 : 8;
    kput32(hdr, (uint32_t)(hlen - 4 + kw_size(w)));
    kput32(hdr + 4, (uint32_t)r->hdr.correlation_id);
    hdr[8] = 0;
    evbuffer_add(out, hdr, hlen);

    size_t nrel = 0, nref = 0;
    for (size_t i = 0; i < w->nrefs; i++) {
        if (w->refs[i].release) nrel++;
        if (w->refs[i].len) nref++;
    }
    resp_hold_t *h = NULL;
    if (nrel) {
        h = malloc(sizeof *h + nrel * sizeof(kw_ref_t));
        KS_ASSERT(h != NULL);
        h->n = 0;
        h->pending = 1; /* ours until every piece is added */
        for (size_t i = 0; i < w->nrefs; i++)
            if (w->refs[i].release) h->rel[h->n++] = w->refs[i];
    }
    size_t pos = 0;
    for (size_t i = 0; i < w->nrefs; i++) {
        kw_ref_t *ref = &w->refs[i];
        if (ref->at > pos) { evbuffer_add(out, w->buf + pos, ref->at - pos); pos = ref->at; }
        if (!ref->len) continue;
        if (h) {
            h->pending++;
            evbuffer_add_reference(out, ref->p, ref->len, hold_cleanup_cb, h);
        } else {
            evbuffer_add_reference(out, ref->p, ref->len, NULL, NULL);
        }
    }
    if (w->len > pos) evbuffer_add(out, w->buf + pos, w->len - pos);
    /* The evbuffer owns the releases now. */
    w->nrefs = 0;
    w->reflen = 0;
    if (h && --h->pending == 0) hold_run(h);
    (void)nref;
}

/* Sends every finished response at the head of the queue, in order. */
static void conn_send_ready(kconn_t *c) {
    kreq_t *r;
    while ((r = TAILQ_FIRST(&c->queue)) && r->done) {
        TAILQ_REMOVE(&c->queue, r, conn_link);
        c->nqueued--;
        c->queued_bytes -= r->frame_len;
        if (!r->no_response) write_response(c, r);
        req_put(c, r);
    }
    if (c->state == CONN_PAUSED && c->nqueued < g_broker.cfg.max_inflight_per_conn &&
        c->queued_bytes < MAX_QUEUED_FRAME_BYTES &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) < MAX_OUTPUT_BYTES)
        conn_resume(c);
}

/* Answers an ApiVersions request of a version we do not know, as Kafka does:
 * UNSUPPORTED_VERSION with a v0 body listing what we support. */
static void answer_unsupported_api_versions(kreq_t *r) {
    api_versions_resp_t resp = {.error_code = KERR_UNSUPPORTED_VERSION};
    metrics_count_error(r->api->name, KERR_UNSUPPORTED_VERSION);
    api_versions_resp_key_t *keys = KARR_NEW(&r->arena, resp.api_keys, api_versions_resp_key_t, api_table_len);
    for (int i = 0; keys && i < api_table_len; i++)
        keys[i] = (api_versions_resp_key_t){api_table[i].key, api_table[i].min_version, api_table[i].max_version};
    r->flexible = false;
    kmsg_encode(&api_versions_resp_schema, 0, false, &r->resp, &resp);
}

/* Handles one complete frame (4-byte size already stripped), read into r->frame. */
static void conn_handle_frame(kconn_t *c, kreq_t *r, size_t len) {
    r->frame_len = len;
    r->body = kr_init(r->frame, len);
    kreq_hdr_read_fixed(&r->body, &r->hdr);
    r->api = NULL;
    TAILQ_INSERT_TAIL(&c->queue, r, conn_link);
    c->nqueued++;
    c->queued_bytes += len;
    if (r->body.err) { conn_close(c, "request shorter than its header"); return; }

    const api_def_t *api = api_lookup(r->hdr.api_key);
    if (!api) {
        log_warn("closing connection from %s: unknown API key %d (correlation id %d)", c->peer, r->hdr.api_key,
                 r->hdr.correlation_id);
        conn_close(c, NULL);
        return;
    }
    r->api = api;
    if (r->hdr.api_version < api->min_version || r->hdr.api_version > api->max_version) {
        if (api->key == KAPI_API_VERSIONS && r->hdr.api_version > api->max_version) {
            answer_unsupported_api_versions(r);
            kreq_finish(r, KH_RESPOND);
            return;
        }
        log_warn("closing connection from %s: %s v%d is not supported (we serve v%d-v%d)", c->peer, api->name,
                 r->hdr.api_version, api->min_version, api->max_version);
        conn_close(c, NULL);
        return;
    }
    r->flexible = r->hdr.api_version >= api->first_flexible;
    if (api->key == KAPI_PRODUCE) c->producer = true;
    kreq_hdr_read_rest(&r->body, &r->hdr, r->flexible);
    if (r->body.err) { conn_close(c, "malformed request header"); return; }
    kh_result_t res = api->handler(r);
    if (res != KH_PARKED) kreq_finish(r, res);
}

static void read_enable(kconn_t *c) {
    if (c->read_on) return;
    struct timeval tv, *tvp = NULL;
    if (g_broker.cfg.idle_timeout_ms > 0) {
        tv = (struct timeval){g_broker.cfg.idle_timeout_ms / 1000, (g_broker.cfg.idle_timeout_ms % 1000) * 1000};
        tvp = &tv;
    }
    event_add(c->read_ev, tvp);
    c->read_on = true;
}

static void read_disable(kconn_t *c) {
    if (!c->read_on) return;
    event_del(c->read_ev);
    c->read_on = false;
}

/* Stops reading: too much in flight, or producers over the unflushed bound. */
static void conn_pause(kconn_t *c) {
    conn_set_state(c, CONN_PAUSED);
    read_disable(c);
}

static void conn_resume(kconn_t *c) {
    conn_set_state(c, CONN_READING);
    read_enable(c);
    event_active(c->resume_ev, EV_TIMEOUT, 0);
}

/* recv() into p, counted in this event's *read_bytes; > 0 bytes, 0 nothing
 * there now, -1 the connection is done (closed here: EOF or an error).
 * A recv() that returned less than it asked for emptied the socket
 * (*drained): the next one would only say EAGAIN, so it is not made (epoll
 * will tell when more came). */
static ssize_t conn_recv(kconn_t *c, void *p, size_t n, size_t *read_bytes, bool *drained) {
    if (*drained) return 0;
    for (;;) {
        ssize_t got = recv(c->fd, p, n, 0);
        if (got > 0) {
            *drained = (size_t)got < n;
            *read_bytes += (size_t)got;
            return got;
        }
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        conn_close(c, NULL); /* EOF, or reset */
        return -1;
    }
}

/* Takes the next frame's request: the whole frame when it is staged, else
 * what is staged of it, and the rest is read into r->frame (c->rd_req).
 * Returns false when the connection was closed. */
static bool conn_take_frame(kconn_t *c, size_t size) {
    kreq_t *r = req_get(c);
    if (r && r->frame_cap < size) {
        /* No realloc: the old contents do not matter, a copy would be waste. */
        free(r->frame);
        r->frame = malloc(size);
        r->frame_cap = r->frame ? size : 0;
    }
    if (!r || r->frame_cap < size) {
        if (r) req_put(c, r);
        conn_close(c, "out of memory");
        return false;
    }
    size_t staged = c->ilen - c->ipos - 4;
    if (staged > size) staged = size;
    memcpy(r->frame, c->ibuf + c->ipos + 4, staged);
    c->ipos += 4 + staged;
    if (staged == size) {
        conn_handle_frame(c, r, size);
    } else {
        c->rd_req = r;
        c->rd_size = size;
        c->rd_have = staged;
    }
    return true;
}

/* Moves the unhandled staged bytes to the front and recv()s more after them.
 * 1: bytes came; 0: stop (the socket is drained, or the connection ended);
 * -1: this event's read budget is used up. */
static int stage_more(kconn_t *c, size_t *read_bytes, bool *drained) {
    if (*read_bytes >= READ_BYTES_PER_EVENT) return -1;
    memmove(c->ibuf, c->ibuf + c->ipos, c->ilen - c->ipos);
    c->ilen -= c->ipos;
    c->ipos = 0;
    ssize_t got = conn_recv(c, c->ibuf + c->ilen, IBUF_SIZE - c->ilen, read_bytes, drained);
    if (got <= 0) return 0;
    c->ilen += (size_t)got;
    return 1;
}

/* Reads and dispatches complete frames, at most FRAMES_PER_EVENT and
 * READ_BYTES_PER_EVENT at a time. */
static void conn_dispatch(kconn_t *c) {
    size_t read_bytes = 0;
    bool drained = false; /* see conn_recv */
    for (int n = 0; n < FRAMES_PER_EVENT;) {
        if (c->state != CONN_READING) return;
        if (c->rd_req) { /* a frame's body, straight into its buffer */
            kreq_t *r = c->rd_req;
            if (read_bytes >= READ_BYTES_PER_EVENT) break;
            ssize_t got = conn_recv(c, r->frame + c->rd_have, c->rd_size - c->rd_have, &read_bytes, &drained);
            if (got <= 0) return;
            c->rd_have += (size_t)got;
            if (c->rd_have < c->rd_size) continue;
            c->rd_req = NULL;
            n++;
            conn_handle_frame(c, r, c->rd_size);
            continue;
        }
        if (c->ilen - c->ipos < 4) { /* need a size: stage more */
            int st = stage_more(c, &read_bytes, &drained);
            if (st < 0) break;
            if (st == 0) return;
            continue;
        }
        if (c->nqueued >= g_broker.cfg.max_inflight_per_conn || c->queued_bytes >= MAX_QUEUED_FRAME_BYTES ||
            evbuffer_get_length(bufferevent_get_output(c->bev)) >= MAX_OUTPUT_BYTES) {
            conn_pause(c);
            return;
        }
        if (c->producer && g_broker.unflushed_bytes >= g_broker.cfg.max_unflushed_bytes) {
            /* Back-pressure: producers wait until the flusher catches up. */
            conn_pause(c);
            if (!c->unflushed_wait) {
                TAILQ_INSERT_TAIL(&unflushed_waiters, c, wait_link);
                c->unflushed_wait = true;
            }
            return;
        }
        int32_t size = (int32_t)kbe32(c->ibuf + c->ipos);
        if (size < 8 || (int64_t)size > g_broker.cfg.max_request_bytes) {
            log_warn("closing connection from %s: request size %d is outside 8..%lld (KAFSCALE_MAX_REQUEST_BYTES)",
                     c->peer, size, (long long)g_broker.cfg.max_request_bytes);
            conn_close(c, NULL);
            return;
        }
        /* A small frame not staged whole: stage the rest first (one more
         * recv) rather than give it a buffer of its own now. */
        if (c->ilen - c->ipos - 4 < (size_t)size && (size_t)size + 4 <= IBUF_SIZE / 4) {
            int st = stage_more(c, &read_bytes, &drained);
            if (st < 0) break;
            if (st == 0) return;
            continue;
        }
        if (!conn_take_frame(c, (size_t)size)) return;
        if (!c->rd_req) n++;
    }
    /* Budget used up: continue after other connections had their turn. */
    if (c->state == CONN_READING) event_active(c->resume_ev, EV_TIMEOUT, 0);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg) {
    kconn_t *c = arg;
    if (c->state == CONN_CLOSING) conn_free(c);
    else if (c->state == CONN_READING) conn_dispatch(c);
}

static void read_cb(evutil_socket_t fd, short what, void *arg) {
    kconn_t *c = arg;
    if (what & EV_TIMEOUT) {
        if (c->nqueued > 0 || c->rd_req) return; /* waiting on our own parked requests, or mid-frame: not idle */
        log_info("closing idle connection from %s (KAFSCALE_IDLE_TIMEOUT_MS=%lld)", c->peer,
                 (long long)g_broker.cfg.idle_timeout_ms);
        conn_close(c, NULL);
        return;
    }
    if (c->state == CONN_READING) conn_dispatch(c);
}

static void write_cb(struct bufferevent *bev, void *arg) {
    kconn_t *c = arg;
    if (c->state != CONN_CLOSING) conn_send_ready(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
    kconn_t *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) conn_close(c, NULL);
}

const char *kreq_peer(const kreq_t *req) { return req->conn ? req->conn->peer : NULL; }

void conn_unflushed_resume(void) {
    kconn_t *c;
    while ((c = TAILQ_FIRST(&unflushed_waiters))) {
        TAILQ_REMOVE(&unflushed_waiters, c, wait_link);
        c->unflushed_wait = false;
        if (c->state == CONN_PAUSED) conn_resume(c);
    }
}

/* Frees the connection. Only from resume_cb or shutdown: never while a
 * callback of this connection is on the stack. */
static void conn_free(kconn_t *c) {
    KS_ASSERT(c->magic == KCONN_MAGIC);
    kreq_t *r;
    while ((r = TAILQ_FIRST(&c->queue))) {
        TAILQ_REMOVE(&c->queue, r, conn_link);
        r->conn = NULL;
        req_put(NULL, r);
    }
    while ((r = c->free_reqs)) {
        c->free_reqs = (kreq_t *)r->state;
        req_put(NULL, r);
    }
    if (c->rd_req) {
        c->rd_req->conn = NULL;
        req_put(NULL, c->rd_req);
        c->rd_req = NULL;
    }
    TAILQ_REMOVE(&all_conns, c, link);
    if (c->unflushed_wait) TAILQ_REMOVE(&unflushed_waiters, c, wait_link);
    g_broker.nconns--;
    event_free(c->resume_ev);
    event_free(c->read_ev);
    bufferevent_free(c->bev); /* closes the socket */
    free(c->ibuf);
    c->magic = 0;
    free(c);
}

/* Closes the connection: stops reading and writing, drops queued requests
 * (parked ones are unparked), and frees it from the event loop. With `why`,
 * logs it. */
static void conn_close(kconn_t *c, const char *why) {
    KS_ASSERT(c->magic == KCONN_MAGIC);
    if (c->state == CONN_CLOSING) return;
    if (why) log_warn("closing connection from %s: %s", c->peer, why);
    conn_set_state(c, CONN_CLOSING);
    read_disable(c);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    if (c->rd_req) {
        req_put(c, c->rd_req);
        c->rd_req = NULL;
    }
    kreq_t *r;
    while ((r = TAILQ_FIRST(&c->queue))) {
        TAILQ_REMOVE(&c->queue, r, conn_link);
        c->nqueued--;
        req_put(c, r);
    }
    event_active(c->resume_ev, EV_TIMEOUT, 0);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg) {
    kconn_t *c = calloc(1, sizeof *c);
    if (!c) { evutil_closesocket(fd); return; }
    c->magic = KCONN_MAGIC;
    c->state = CONN_READING;
    TAILQ_INIT(&c->queue);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        port = ntohs(s6->sin6_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->bev = bufferevent_socket_new(g_broker.base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->resume_ev = event_new(g_broker.base, -1, 0, resume_cb, c);
    c->read_ev = event_new(g_broker.base, fd, EV_READ | EV_PERSIST, read_cb, c);
    c->ibuf = malloc(IBUF_SIZE);
    if (!c->bev || !c->resume_ev || !c->read_ev || !c->ibuf) {
        if (c->read_ev) event_free(c->read_ev);
        if (c->bev) bufferevent_free(c->bev); else evutil_closesocket(fd);
        if (c->resume_ev) event_free(c->resume_ev);
        free(c->ibuf);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, NULL, write_cb, event_cb, c);
    bufferevent_set_max_single_write(c->bev, MAX_SINGLE_WRITE);
    bufferevent_enable(c->bev, EV_WRITE);
    read_enable(c);
    TAILQ_INSERT_TAIL(&all_conns, c, link);
    g_broker.nconns++;
    log_debug("connection from %s", c->peer);
}

static void accept_error_cb(struct evconnlistener *l, void *arg) {
    log_warn("accept failed: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

int conn_listen(void) {
    broker_config_t *cfg = &g_broker.cfg;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", cfg->listen_port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = EVUTIL_AI_PASSIVE};
    struct evutil_addrinfo *ai = NULL;
    const char *host = cfg->listen_host[0] ? cfg->listen_host : NULL;
    int rc = evutil_getaddrinfo(host, portstr, &hints, &ai);
    if (rc || !ai) {
        log_error("KAFSCALE_BROKER_ADDR: cannot resolve '%s': %s", cfg->listen_host, evutil_gai_strerror(rc));
        return -1;
    }
    listener = evconnlistener_new_bind(g_broker.base, accept_cb, NULL,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024,
                                       ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (!listener) {
        log_error("cannot listen on %s:%d: %s", cfg->listen_host, cfg->listen_port, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(listener, accept_error_cb);
    wake_ev = event_new(g_broker.base, -1, 0, wake_cb, NULL);
    return 0;
}

void conn_shutdown(void) {
    if (listener) evconnlistener_free(listener);
    listener = NULL;
    kconn_t *c;
    while ((c = TAILQ_FIRST(&all_conns))) conn_free(c);
    if (wake_ev) event_free(wake_ev);
    wake_ev = NULL;
}
