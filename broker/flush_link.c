/* flush_link.c - the broker's side of the flusher: starting and supervising
 * kafscale-flusher, the UNIX-socket link to it (fproto.h), streaming
 * accepted batches to it, passing on topic changes and DeleteRecords, and
 * applying its DURABLE / LOGSTART / STORE reports (high watermark, committed
 * segments, log start offset).
 *
 * Every batch between a partition's high watermark and its log end is
 * "unflushed". Those bytes stay in the broker's memory until the flusher
 * reports them durable, so a flusher crash loses nothing: on every (re)connect
 * the broker sends all unflushed batches again and the flusher skips what it
 * had already committed. Batch bytes go to the socket by reference to the
 * partition log's chunks (no copy in the broker).
 */
#include "broker.h"
#include "cluster.h"
#include "config.h"
#include "fproto.h"
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

static struct {
    char sock_path[1200];
    char flusher_bin[PATH_MAX];
    bool supervise;
    pid_t pid;                 /* supervised flusher, 0 when none */
    int64_t restart_backoff_ms;
    int64_t last_start_ms;
    struct bufferevent *bev;   /* link, NULL when down */
    bool ready;                /* READY received: appends flow */
    struct event *retry_ev;    /* reconnect / restart timer */
    struct event *flush_ev;    /* deferred FLUSH hint */
    struct event *sigchld_ev;
    bool store_healthy;
    char store_msg[256];
    bool ever_ready;
    void (*on_first_ready)(void);
} L;

static void link_down(const char *why);

bool flink_store_healthy(void) { return L.store_healthy; }
const char *flink_store_message(void) { return L.store_msg; }
bool flink_ready(void) { return L.ready; }
pid_t flink_flusher_pid(void) { return L.pid; }

/* ---- frames to the flusher ---- */

static void frame_begin(kw_t *w, uint8_t type) {
    kw_reset(w);
    kw_i32(w, 0);
    kw_i8(w, (int8_t)type);
}

static void frame_send(kw_t *w, size_t extra) {
    kput32(w->buf, (uint32_t)(w->len - 4 + extra));
    evbuffer_add(bufferevent_get_output(L.bev), w->buf, w->len);
}

static kw_t scratch;

void flink_send_topic(topic_t *t) {
    if (!L.ready) return;
    frame_begin(&scratch, FP_TOPIC);
    kw_str(&scratch, false, kstr_c(t->name));
    kw_raw(&scratch, t->id.b, 16);
    kw_i32(&scratch, t->npartitions);
    kw_i64(&scratch, t->config.retention_ms);
    kw_i64(&scratch, t->config.retention_bytes);
    kw_i64(&scratch, t->config.segment_bytes);
    frame_send(&scratch, 0);
}

void flink_send_delete(const char *name) {
    if (!L.ready) return; /* the flusher finds the topic gone from metadata when it restarts */
    frame_begin(&scratch, FP_DELTOPIC);
    kw_str(&scratch, false, kstr_c(name));
    frame_send(&scratch, 0);
}

void flink_send_delete_records(partition_t *p, int64_t start) {
    if (!L.ready) return; /* sent again after the next READY (see on_frame) */
    frame_begin(&scratch, FP_DELRECORDS);
    kw_str(&scratch, false, kstr_c(p->topic->name));
    kw_i32(&scratch, p->index);
    kw_i64(&scratch, start);
    frame_send(&scratch, 0);
}

/* ---- cluster (cluster.c) ---- */

void flink_send_lead(partition_t *p) {
    if (!L.ready) return; /* cluster_flusher_ready() sends it after READY */
    frame_begin(&scratch, FP_LEAD);
    kw_str(&scratch, false, kstr_c(p->topic->name));
    kw_i32(&scratch, p->index);
    kw_i32(&scratch, p->leader_epoch);
    kw_i64(&scratch, p->lead_rev);
    frame_send(&scratch, 0);
}

void flink_send_unlead(partition_t *p) {
    if (!L.ready) return; /* a new flusher knows nothing of it anyway */
    frame_begin(&scratch, FP_UNLEAD);
    kw_str(&scratch, false, kstr_c(p->topic->name));
    kw_i32(&scratch, p->index);
    frame_send(&scratch, 0);
}

void flink_send_lease(int64_t deadline_mono_ms) {
    if (!L.ready) return;
    frame_begin(&scratch, FP_LEASE);
    kw_i64(&scratch, deadline_mono_ms);
    frame_send(&scratch, 0);
}

static void chunk_unref_cb(const void *data, size_t len, void *arg) { pchunk_release(arg); }

/* Sends the batches of p with offsets in [from, to) as APPEND frames, one per
 * run of batches that are contiguous in one chunk. */
static void send_range(partition_t *p, int64_t from, int64_t to) {
    plog_t *l = &p->log;
    struct evbuffer *out = bufferevent_get_output(L.bev);
    /* Binary search for the first batch whose last offset >= from. */
    size_t lo = 0, hi = l->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->batches[(l->head + mid) % l->cap].last_offset < from) lo = mid + 1;
        else hi = mid;
    }
    size_t i = lo;
    while (i < l->count) {
        pbatch_t *first = &l->batches[(l->head + i) % l->cap];
        if (first->base_offset >= to) break;
        pbatch_t *last = first;
        size_t j = i + 1;
        int64_t max_ts = first->max_timestamp;
        uint32_t len = first->len;
        while (j < l->count) {
            pbatch_t *b = &l->batches[(l->head + j) % l->cap];
            if (b->base_offset >= to || b->chunk != first->chunk || b->pos != last->pos + last->len ||
                len + b->len > (8u << 20))
                break;
            if (b->max_timestamp > max_ts) max_ts = b->max_timestamp;
            len += b->len;
            last = b;
            j++;
        }
        frame_begin(&scratch, FP_APPEND);
        kw_str(&scratch, false, kstr_c(p->topic->name));
        kw_i32(&scratch, p->index);
        kw_i32(&scratch, p->leader_epoch);
        kw_i64(&scratch, first->base_offset);
        kw_i64(&scratch, last->last_offset);
        kw_i64(&scratch, max_ts);
        kw_i32(&scratch, (int32_t)(last->last_offset - first->base_offset + 1));
        frame_send(&scratch, len);
        pchunk_keep(first->chunk);
        evbuffer_add_reference(out, first->chunk->data + first->pos, len, chunk_unref_cb, first->chunk);
        i = j;
    }
}

void flink_append(partition_t *p, int64_t from) {
    if (L.ready) send_range(p, from, p->log.next_offset);
}

static void flush_hint_cb(evutil_socket_t fd, short what, void *arg) {
    if (!L.ready) return;
    frame_begin(&scratch, FP_FLUSH);
    frame_send(&scratch, 0);
}

void flink_flush_hint(void) {
    if (L.ready && L.flush_ev) event_active(L.flush_ev, EV_TIMEOUT, 0);
}

/* ---- reports from the flusher ---- */

static partition_t *part_of(kr_t *r) {
    kstr_t topic = kr_str(r, false);
    int32_t index = kr_i32(r);
    if (r->err) return NULL;
    return partition_find(topic, index);
}

void partition_add_segment(partition_t *p, const pseg_t *s) {
    if (p->nsegs && p->segs[p->nsegs - 1].base_offset >= s->base_offset) {
        /* Already known (e.g. a re-report after a reconnect). */
        for (size_t i = 0; i < p->nsegs; i++)
            if (p->segs[i].base_offset == s->base_offset) return;
    }
    if (p->nsegs == p->segs_cap) {
        size_t cap = p->segs_cap ? p->segs_cap * 2 : 16;
        pseg_t *n = realloc(p->segs, cap * sizeof *n);
        if (!n) return;
        p->segs = n;
        p->segs_cap = cap;
    }
    size_t i = p->nsegs;
    while (i > 0 && p->segs[i - 1].base_offset > s->base_offset) {
        p->segs[i] = p->segs[i - 1];
        i--;
    }
    p->segs[i] = *s;
    p->nsegs++;
}

void partition_set_log_start(partition_t *p, int64_t start) {
    if (start <= p->log.start_offset) return;
    p->log.start_offset = start;
    size_t drop = 0;
    while (drop < p->nsegs && p->segs[drop].last_offset < start) drop++;
    if (drop) {
        memmove(p->segs, p->segs + drop, (p->nsegs - drop) * sizeof *p->segs);
        p->nsegs -= drop;
    }
    g_broker.mem_bytes -= plog_trim_front(&p->log, start, INT64_MAX);
    if (p->log.hw < start) p->log.hw = start;
    if (p->log.next_offset < start) p->log.next_offset = start;
}

/* Drops a partition's batches at and above `from` (never durable) and moves
 * it to `end`: what the flusher reports committed is the truth. */
static void partition_reset(partition_t *p, int64_t end) {
    plog_t *l = &p->log;
    int64_t dropped = 0;
    while (l->count) {
        pbatch_t *b = &l->batches[(l->head + l->count - 1) % l->cap];
        if (b->base_offset < l->hw) break;
        pchunk_t *c = b->chunk;
        dropped += b->len;
        l->count--;
        /* The log's reference on a chunk goes with its last batch (the
         * current chunk keeps its own). */
        bool last_of_chunk = !l->count || l->batches[(l->head + l->count - 1) % l->cap].chunk != c;
        if (last_of_chunk && c != l->cur) pchunk_release(c);
    }
    l->bytes -= dropped;
    g_broker.mem_bytes -= dropped;
    g_broker.unflushed_bytes -= p->unflushed_bytes;
    p->unflushed_bytes = 0;
    p->prev_gen_hw = l->hw;
    l->hw = l->next_offset = end;
    p->generation++; /* producers waiting on the dropped batches get an error */
    kreq_wake_parked();
}

/* Drops batches that are not durable; their producers get an error. */
void partition_drop_unflushed(partition_t *p) { partition_reset(p, p->log.hw); }

/* Forgets everything held for p (we no longer lead it, or we take it over
 * and the flusher tells where it stands): batches, segments; offsets move
 * to new_start. */
void partition_drop_all(partition_t *p, int64_t new_start) {
    plog_t *l = &p->log;
    g_broker.mem_bytes -= l->bytes;
    g_broker.unflushed_bytes -= p->unflushed_bytes;
    p->unflushed_bytes = 0;
    p->prev_gen_hw = l->hw;
    plog_free(l);
    plog_init(l, new_start);
    l->hw = l->next_offset = new_start;
    p->nsegs = 0;
    p->generation++;
    g_broker.tail_bytes = g_broker.mem_bytes - g_broker.unflushed_bytes;
    kreq_wake_parked();
    if (g_broker.unflushed_bytes < g_broker.cfg.max_unflushed_bytes) conn_unflushed_resume();
}

void topics_reload_segments(void);

/* READY: the flusher's committed end of every partition it knows. Our view
 * can be behind it (the flusher committed a cycle but died before telling us)
 * — then those batches are durable. It can also be ahead of everything we
 * hold (a previous incarnation's flusher committed after we loaded metadata);
 * then our unflushed batches were never acknowledged as durable and are
 * dropped, and waiting producers are told to retry. */
static int reconcile(kr_t *r) {
    int32_t n = kr_i32(r);
    bool reload = false;
    for (int32_t i = 0; i < n && !r->err; i++) {
        partition_t *p = part_of(r);
        int64_t end = kr_i64(r);
        int64_t start = kr_i64(r);
        if (r->err || !p) continue;
        if (start > p->log.start_offset) partition_set_log_start(p, start);
        if (end <= p->log.hw) continue;
        reload = true;
        if (end <= p->log.next_offset) {
            partition_committed(p, end);
        } else {
            log_warn("%s[%d]: committed end %lld is past our log end %lld: dropping %lld unflushed offset(s)",
                     p->topic->name, p->index, (long long)end, (long long)p->log.next_offset,
                     (long long)(p->log.next_offset - p->log.hw));
            partition_reset(p, end);
        }
    }
    if (r->err) return -1;
    if (reload) topics_reload_segments();
    return 0;
}

void flink_on_first_ready(void (*fn)(void)) { L.on_first_ready = fn; }

/* DURABLE and LOGSTART end with the topic id the flusher knows the topic
 * by. A report about an earlier topic of the same name (deleted and created
 * again while the flusher still worked on it) is not about this one. An id
 * of zeros (the flusher has not learnt it) is taken as a match. */
static bool same_topic(const partition_t *p, kr_t *r) {
    static const uint8_t zero[16];
    const uint8_t *id = kr_take(r, 16);
    if (!id) {
        log_error("malformed report from the flusher: no topic id");
        return false;
    }
    if (!p) return false;
    if (!memcmp(id, zero, 16) || !memcmp(id, p->topic->id.b, 16)) return true;
    log_debug("%s[%d]: report about an earlier topic of that name ignored", p->topic->name, p->index);
    return false;
}

static void on_durable(kr_t *r) {
    partition_t *p = part_of(r);
    int64_t end = kr_i64(r);
    int64_t seg_base = kr_i64(r);
    int64_t seg_size = kr_i64(r);
    int64_t seg_max_ts = kr_i64(r);
    if (r->err) { log_error("malformed DURABLE from the flusher"); return; }
    if (!p) return; /* topic deleted meanwhile */
    if (!same_topic(p, r)) return;
    if (seg_size > 0 && seg_base >= 0)
        partition_add_segment(p, &(pseg_t){seg_base, end - 1, seg_size, seg_max_ts});
    partition_committed(p, end);
}

static void on_frame(uint8_t type, kr_t *r) {
    switch (type) {
    case FP_READY: {
        if (reconcile(r) != 0) { link_down("malformed READY from the flusher"); return; }
        L.ready = true;
        L.restart_backoff_ms = 100;
        log_info("flusher link up");
        if (!L.ever_ready) {
            L.ever_ready = true;
            if (L.on_first_ready) L.on_first_ready();
        }
        frame_begin(&scratch, FP_HELLO);
        kw_u32(&scratch, FPROTO_VERSION);
        kw_i32(&scratch, g_broker.cfg.node_id);
        frame_send(&scratch, 0);
        /* Topics first, then (cluster) what we lead, then every batch that
         * is not durable yet. */
        for (topic_t *t = topics_first(); t; t = topics_next(t)) flink_send_topic(t);
        cluster_flusher_ready();
        /* A DeleteRecords the flusher may have missed (it was down): log
         * starts it already has are no-ops there. */
        for (topic_t *t = topics_first(); t; t = topics_next(t))
            for (int32_t i = 0; i < t->npartitions; i++)
                if (t->partitions[i].log.start_offset > 0 && t->partitions[i].lead != PL_NONE)
                    flink_send_delete_records(&t->partitions[i], t->partitions[i].log.start_offset);
        bool any = false;
        for (topic_t *t = topics_first(); t; t = topics_next(t))
            for (int32_t i = 0; i < t->npartitions; i++) {
                partition_t *p = &t->partitions[i];
                if (p->log.hw < p->log.next_offset) {
                    send_range(p, p->log.hw, p->log.next_offset);
                    any = true;
                }
            }
        if (any) flink_flush_hint();
        break;
    }
    case FP_DURABLE: on_durable(r); break;
    case FP_LOGSTART: {
        partition_t *p = part_of(r);
        int64_t start = kr_i64(r);
        if (!r->err && p && same_topic(p, r)) partition_set_log_start(p, start);
        break;
    }
    case FP_STORE: {
        bool healthy = kr_i8(r) != 0;
        kstr_t msg = kr_str(r, false);
        if (r->err) break;
        L.store_healthy = healthy;
        kstr_cpy(L.store_msg, sizeof L.store_msg, msg);
        if (healthy) log_info("flusher reports the object store is healthy again");
        else log_warn("flusher reports the object store is failing: %s", L.store_msg);
        break;
    }
    case FP_STATS:
        if (metrics_merge(r) != 0) log_warn("malformed STATS from the flusher");
        break;
    case FP_LED: {
        partition_t *p = part_of(r);
        int64_t rev = kr_i64(r), end = kr_i64(r), start = kr_i64(r);
        if (r->err) { log_error("malformed LED from the flusher"); break; }
        if (p) cluster_on_led(p, rev, end, start);
        break;
    }
    case FP_FENCED: {
        partition_t *p = part_of(r);
        int64_t rev = kr_i64(r);
        if (r->err) { log_error("malformed FENCED from the flusher"); break; }
        if (p) cluster_on_fenced(p, rev);
        break;
    }
    default: log_warn("unknown frame type %u from the flusher", type);
    }
}

static void schedule_retry(int64_t ms);

static void link_down(const char *why) {
    if (L.bev) {
        log_warn("flusher link down: %s", why);
        bufferevent_free(L.bev);
        L.bev = NULL;
    }
    L.ready = false;
    if (!g_broker.stopping) schedule_retry(L.supervise && L.pid == 0 ? L.restart_backoff_ms : 200);
}

static void read_cb(struct bufferevent *bev, void *arg) {
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        uint8_t szb[4];
        if (evbuffer_copyout(in, szb, 4) < 4) return;
        uint32_t len = kbe32(szb);
        if (len < 1 || len > FPROTO_MAX_FRAME) { link_down("bad frame from the flusher"); return; }
        if (evbuffer_get_length(in) < 4 + (size_t)len) return;
        evbuffer_drain(in, 4);
        uint8_t *frame = evbuffer_pullup(in, len);
        kr_t r = kr_init(frame + 1, len - 1);
        on_frame(frame[0], &r);
        evbuffer_drain(in, len);
        if (!L.bev) return;
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
    if (what & BEV_EVENT_CONNECTED) return;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) link_down(what & BEV_EVENT_EOF ? "closed" : strerror(errno));
}

static void try_connect(void) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, L.sock_path, strlen(L.sock_path) + 1); /* length checked in flink_init */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { schedule_retry(200); return; }
    /* A deep socket buffer lets a cycle carry what arrived while the previous
     * one uploaded (the kernel caps it at net.core.wmem_max). */
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        close(fd);
        schedule_retry(100);
        return;
    }
    evutil_make_socket_nonblocking(fd);
    L.bev = bufferevent_socket_new(g_broker.base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(L.bev, read_cb, NULL, event_cb, NULL);
    bufferevent_enable(L.bev, EV_READ | EV_WRITE);
    /* libevent 2.1 writes 16 KiB per write event by default: that capped the
     * stream of batches to the flusher at one 16 KiB piece per loop turn. */
    bufferevent_set_max_single_write(L.bev, 4 << 20);
}

/* ---- supervision ---- */

static void start_flusher(void) {
    L.last_start_ms = now_ms();
    pid_t pid = fork();
    if (pid < 0) { log_error("cannot fork the flusher: %s", strerror(errno)); return; }
    if (pid == 0) {
        /* Child: default signal dispositions, same environment. */
        signal(SIGPIPE, SIG_DFL);
        /* If the broker dies, the flusher flushes what it holds and exits. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1) _exit(0);
        signal(SIGINT, SIG_IGN); /* Ctrl-C reaches the whole group: the broker drives the shutdown */
        execl(L.flusher_bin, L.flusher_bin, (char *)NULL);
        fprintf(stderr, "cannot exec %s: %s\n", L.flusher_bin, strerror(errno));
        _exit(127);
    }
    L.pid = pid;
    log_info("started kafscale-flusher (pid %d)", (int)pid);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg) {
    if (g_broker.stopping) return;
    if (L.supervise && L.pid == 0) start_flusher();
    if (!L.bev) try_connect();
}

static void schedule_retry(int64_t ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(L.retry_ev, &tv);
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid != L.pid) continue;
        L.pid = 0;
        if (WIFSIGNALED(status)) log_warn("kafscale-flusher (pid %d) killed by signal %d", (int)pid, WTERMSIG(status));
        else log_warn("kafscale-flusher (pid %d) exited with status %d", (int)pid, WEXITSTATUS(status));
        if (g_broker.stopping) continue;
        /* Restart at once unless it keeps dying young. */
        int64_t age = now_ms() - L.last_start_ms;
        L.restart_backoff_ms = age > 10000 ? 100 : (L.restart_backoff_ms < 5000 ? L.restart_backoff_ms * 2 : 5000);
        link_down("flusher exited");
    }
}

int flink_init(void) {
    const char *data_dir = g_broker.cfg.data_dir;
    char run_default[1100];
    snprintf(run_default, sizeof run_default, "%s/run", data_dir);
    const char *run_dir = env_str("KAFSCALE_RUN_DIR", run_default);
    snprintf(L.sock_path, sizeof L.sock_path, "%s/flusher.sock", run_dir);
    if (strlen(L.sock_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        log_error("KAFSCALE_RUN_DIR: '%s' is too long for a UNIX socket path", run_dir);
        return -1;
    }
    L.supervise = env_bool("KAFSCALE_SUPERVISE", true);
    L.store_healthy = true;
    L.restart_backoff_ms = 100;
    kw_init(&scratch, 256);
    const char *bin = getenv("KAFSCALE_FLUSHER_BIN");
    if (bin && *bin) {
        snprintf(L.flusher_bin, sizeof L.flusher_bin, "%s", bin);
    } else {
        /* Beside our own executable. */
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0) n = 0;
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) *slash = 0;
        if (!n) snprintf(self, sizeof self, ".");
        size_t sl = strlen(self);
        if (sl + sizeof "/kafscale-flusher" > sizeof L.flusher_bin) sl = 0;
        memcpy(L.flusher_bin, self, sl);
        memcpy(L.flusher_bin + sl, "/kafscale-flusher", sizeof "/kafscale-flusher");
    }
    if (L.supervise && access(L.flusher_bin, X_OK) != 0) {
        log_error("cannot run the flusher at %s (set KAFSCALE_FLUSHER_BIN, or KAFSCALE_SUPERVISE=0 to run it yourself)",
                  L.flusher_bin);
        return -1;
    }
    L.retry_ev = evtimer_new(g_broker.base, retry_cb, NULL);
    L.flush_ev = event_new(g_broker.base, -1, 0, flush_hint_cb, NULL);
    if (L.supervise) {
        L.sigchld_ev = evsignal_new(g_broker.base, SIGCHLD, sigchld_cb, NULL);
        evsignal_add(L.sigchld_ev, NULL);
        /* A flusher left over from a broker that died must not keep the socket. */
        unlink(L.sock_path);
        start_flusher();
    }
    schedule_retry(20);
    return 0;
}

/* Graceful stop: called once the broker stopped taking produce; waits (running
 * the loop) until every partition is durable or the deadline passes, then
 * stops the supervised flusher, which flushes whatever it still holds. */
void flink_shutdown(int64_t deadline_ms) {
    while (now_ms() < deadline_ms) {
        int64_t unflushed = 0;
        for (topic_t *t = topics_first(); t; t = topics_next(t))
            for (int32_t i = 0; i < t->npartitions; i++)
                unflushed += t->partitions[i].log.next_offset - t->partitions[i].log.hw;
        if (!unflushed) break;
        if (L.ready) {
            flink_flush_hint();
        } else {
            /* The flusher went away (e.g. the same SIGTERM reached it): bring it back to flush the rest. */
            if (L.supervise && L.pid == 0) start_flusher();
            if (!L.bev) try_connect();
        }
        struct timeval tv = {0, 20000};
        event_base_loopexit(g_broker.base, &tv);
        event_base_dispatch(g_broker.base);
    }
    if (L.bev) {
        bufferevent_free(L.bev);
        L.bev = NULL;
    }
    L.ready = false;
    if (L.pid > 0) {
        kill(L.pid, SIGTERM);
        int status;
        for (int i = 0; i < 600; i++) { /* up to 30 s */
            if (waitpid(L.pid, &status, WNOHANG) == L.pid) { L.pid = 0; break; }
            usleep(50000);
        }
        if (L.pid > 0) {
            log_warn("flusher did not stop in 30 s; killing it");
            kill(L.pid, SIGKILL);
            waitpid(L.pid, &status, 0);
            L.pid = 0;
        }
    }
    if (L.retry_ev) event_free(L.retry_ev);
    if (L.flush_ev) event_free(L.flush_ev);
    if (L.sigchld_ev) event_free(L.sigchld_ev);
    L.retry_ev = L.flush_ev = L.sigchld_ev = NULL;
    kw_free(&scratch);
}
