/* cache_link.c - the broker's side of kafscale-cached: starting and
 * supervising it, reading its shared-memory ring (common/shm_ring.h), and the
 * front that store_read.c's worker threads try before the object store.
 *
 * Reads. store_read.c loads ranges of committed segments on worker threads;
 * with cached in use each such read first goes through front() below, on the
 * worker thread:
 *   1. look the segment up in the ring and copy the range out (no lock: the
 *      entry's sequence and the ring's head are checked after the copy; a
 *      lapped copy is tried once more);
 *   2. not there: send LOAD to cached (with the committed segments that
 *      follow, for read-ahead) over this thread's own socket and wait for
 *      LOADED (at most KAFSCALE_CACHED_LOAD_TIMEOUT_MS), then copy;
 *   3. cached down, the load failed, lapped twice: pass, and the worker reads
 *      the object store as it always did.
 * The fetch that wanted the bytes stays parked in the meantime (store_read
 * answers "loading"; other requests keep flowing on the event loop). A hit
 * on a segment's first range sends HINT, so cached keeps reading ahead of a
 * consumer that never misses. Copies out of the ring land in store_read's
 * refcounted range buffers, so no socket write ever points into the ring.
 *
 * Mappings. Each worker thread maps the ring itself (PROT_READ) and keeps
 * its own socket: nothing is shared between threads but a few counters, so
 * nothing needs a lock. A mapping is checked against the header's generation
 * on every read and against the object's inode once a second or whenever the
 * control link saw cached come or go (an epoch counter): a restarted cached
 * (new generation, or a new object) is remapped.
 *
 * Supervision (KAFSCALE_SUPERVISE, default on). The loop holds one BROKER
 * connection to cached.sock: its WELCOME says cached is up (and which ring
 * generation), its EOF that cached is gone. When nothing listens, the broker
 * starts bin/kafscale-cached --supervised in its own session, restarting it
 * (with backoff when it dies young). A broker that stops cleanly (SIGTERM,
 * SIGINT) stops its node's cached with it: it sends STOP and waits until
 * cached is gone (cache_link_shutdown), so that a node restarted at once
 * starts a fresh cached rather than meeting the old one on its way out. A
 * broker that dies (kill -9, a crash) cannot: its cached lives on, and the
 * restarted broker finds it and its warm ring; a cached without a broker
 * exits by itself after KAFSCALE_CACHED_LINGER_MS. cached is optional: if it
 * cannot run, reads go to the object store. KAFSCALE_CACHED=false turns it
 * off; with KAFSCALE_SUPERVISE=false cached is not the broker's to stop.
 *
 * Counters. Readers never write the ring: the hits, misses, lapped reads and
 * fallbacks of the workers are summed here (atomics) and reported to cached
 * every 250 ms (STATS), which adds them to the ring's counters. /metrics
 * shows the ring's counters and occupancy, read from its header when it is
 * scraped (ring_collect: cache="shm"), and cached's own series (its
 * object-store GETs, its process), which it sends in METRICS frames.
 */
#include "broker.h"
#include "config.h"
#include "cproto.h"
#include "metrics.h"
#include "objstore.h"
#include "segment.h"
#include "shm_ring.h"
#include "store_read.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#define TICK_MS          250  /* link up: stats every tick */
#define RETRY_MS         50   /* link down: try to connect this often */
#define CHECK_MS         1000 /* a worker re-stats the ring's object at most this often */
#define HELLO_TIMEOUT_MS 2000
#define STARTUP_GRACE_MS 10000
#define STOP_EOF_MS      3000 /* at shutdown: cached's answer to STOP (it closes the link once its ring is gone) */
#define STOP_EXIT_MS     3000 /* then our child's exit (after a SIGTERM when it did not answer) */

enum { CS_HITS, CS_MISSES, CS_LAPPED, CS_FALLBACKS, CS_MAX };

static struct {
    bool enabled, supervise;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    pthread_mutex_t name_mu;             /* guards shm_name (cached's WELCOME may correct it) */
    char shm_name[SHM_RING_NAME_MAX];
    char bin[PATH_MAX];
    int64_t load_timeout_ms;
    pid_t pid;                           /* the cached we started, 0 when none */
    int64_t last_start_ms, backoff_ms, next_start_ms;
    struct bufferevent *bev;             /* control link */
    struct event *timer, *sigchld_ev;
    uint64_t generation;                 /* from the last WELCOME */
    int32_t cached_pid;
    uint64_t sent[CS_MAX];               /* loop: counts already reported */
    int64_t init_ms;
    bool ever_up;
    pthread_key_t tkey;
    bool tkey_ok;
    /* shared with the workers (__atomic) */
    int up;                              /* WELCOME received on a live link */
    uint64_t epoch;                      /* bumped when cached came or went */
    uint64_t count[CS_MAX];
} C = {.name_mu = PTHREAD_MUTEX_INITIALIZER};

static void count(int c) { __atomic_add_fetch(&C.count[c], 1, __ATOMIC_RELAXED); }

static void wr_seg(kw_t *w, const char *topic, const kuuid_t *id, int32_t partition, const sr_seg_desc_t *d) {
    kw_str(w, false, kstr_c(topic));
    kw_raw(w, id->b, 16);
    kw_i32(w, partition);
    kw_i64(w, d->base_offset);
    kw_i64(w, d->last_offset);
    kw_i64(w, d->size);
}

/* A frame into w: u32 length, type, then what `body` wrote after it. */
static void frame_begin(kw_t *w, uint8_t type) {
    kw_reset(w);
    kw_i32(w, 0);
    kw_i8(w, (int8_t)type);
}
static void frame_end(kw_t *w) { kput32(w->buf, (uint32_t)(w->len - 4)); }

/* ---- worker threads: their mapping and socket ---- */

typedef struct cthread {
    shm_ring_t ring;
    bool mapped;
    uint64_t epoch;
    int64_t next_check_ms, next_map_ms;
    int fd;
    int64_t next_connect_ms;             /* after a failed connect: not before this, */
    uint64_t connect_epoch;              /* unless the control link saw cached since */
    uint32_t next_id;
    int last_map_rc;
    kw_t w;
} cthread_t;

static void thread_close_fd(cthread_t *t) {
    if (t->fd >= 0) close(t->fd);
    t->fd = -1;
}

static void thread_free(void *arg) {
    cthread_t *t = arg;
    thread_close_fd(t);
    if (t->mapped) shm_ring_close(&t->ring);
    kw_free(&t->w);
    free(t);
}

static cthread_t *tstate(void) {
    if (!C.tkey_ok) return NULL;
    cthread_t *t = pthread_getspecific(C.tkey);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fd = -1;
    kw_init(&t->w, 512);
    pthread_setspecific(C.tkey, t);
    return t;
}

/* Maps the ring, or remaps it when cached restarted or replaced it. */
static void ring_refresh(cthread_t *t) {
    int64_t now = mono_ms();
    uint64_t ep = __atomic_load_n(&C.epoch, __ATOMIC_ACQUIRE);
    if (t->mapped) {
        if (ep == t->epoch && now < t->next_check_ms &&
            __atomic_load_n(&t->ring.hdr->generation, __ATOMIC_ACQUIRE) == t->ring.generation)
            return;
        t->epoch = ep;
        t->next_check_ms = now + CHECK_MS;
        if (!shm_ring_changed(&t->ring)) return;
        log_info("cache: ring %s (generation %llu) was replaced or its writer restarted: remapping", t->ring.name,
                 (unsigned long long)t->ring.generation);
        shm_ring_close(&t->ring);
        t->mapped = false;
        t->next_map_ms = 0;
    }
    if (ep == t->epoch && now < t->next_map_ms) return;
    t->epoch = ep;
    t->next_map_ms = now + CHECK_MS;
    char name[SHM_RING_NAME_MAX], err[300];
    pthread_mutex_lock(&C.name_mu);
    memcpy(name, C.shm_name, sizeof name);
    pthread_mutex_unlock(&C.name_mu);
    int rc = shm_ring_open(&t->ring, name, err, sizeof err);
    if (rc == SHM_OK) {
        t->mapped = true;
        t->next_check_ms = now + CHECK_MS;
        log_info("cache: mapped ring %s read-only (generation %llu, writer pid %d, %u entries, %llu data bytes)", name,
                 (unsigned long long)t->ring.generation, t->ring.hdr->writer_pid, t->ring.nentries,
                 (unsigned long long)t->ring.data_size);
    } else if (rc != t->last_map_rc && rc != SHM_ENOENT && rc != SHM_ENOTREADY) {
        log_warn("cache: cannot use ring %s: %s", name, err);
    }
    t->last_map_rc = rc;
}

/* Copies from the ring; one retry when lapped. */
static int ring_read(cthread_t *t, const shm_ring_key_t *k, uint64_t off, uint64_t len, uint8_t *buf, size_t cap,
                     size_t *got) {
    if (!t->mapped) return SHM_MISS;
    for (int attempt = 0; attempt < 2; attempt++) {
        uint64_t n = 0;
        int rc = shm_ring_read(&t->ring, k, off, len, buf, cap, &n);
        if (rc != SHM_LAPPED) {
            *got = (size_t)n;
            return rc;
        }
        count(CS_LAPPED);
    }
    return SHM_LAPPED;
}

static int send_all(int fd, const uint8_t *p, size_t n, int64_t deadline) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int left = (int)(deadline - mono_ms());
            struct pollfd pf = {fd, POLLOUT, 0};
            if (left <= 0 || poll(&pf, 1, left) <= 0) return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

static int recv_all(int fd, uint8_t *p, size_t n, int64_t deadline) {
    while (n > 0) {
        int left = (int)(deadline - mono_ms());
        struct pollfd pf = {fd, POLLIN, 0};
        if (left <= 0) return -1;
        int pr = poll(&pf, 1, left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return -1;
        ssize_t k = recv(fd, p, n, MSG_DONTWAIT);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
            return -1;
        }
    }
    return 0;
}

/* One frame (body up to cap bytes) before the deadline. */
static int recv_frame(int fd, uint8_t *type, uint8_t *body, size_t cap, size_t *len, int64_t deadline) {
    uint8_t h[5];
    if (recv_all(fd, h, 5, deadline)) return -1;
    uint32_t n = kbe32(h);
    if (n < 1 || n - 1 > cap) return -1;
    *type = h[4];
    *len = n - 1;
    return recv_all(fd, body, n - 1, deadline);
}

/* This thread's connection to cached (READER role). */
static bool t_connect(cthread_t *t) {
    if (t->fd >= 0) return true;
    int64_t now = mono_ms();
    uint64_t ep = __atomic_load_n(&C.epoch, __ATOMIC_ACQUIRE);
    if (now < t->next_connect_ms && ep == t->connect_epoch) return false;
    t->next_connect_ms = now + 200;
    t->connect_epoch = ep;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, C.sock_path, sizeof C.sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        close(fd);
        return false;
    }
    frame_begin(&t->w, CP_HELLO);
    kw_u32(&t->w, CPROTO_VERSION);
    kw_i8(&t->w, CP_ROLE_READER);
    kw_i32(&t->w, g_broker.cfg.node_id);
    kw_i32(&t->w, (int32_t)getpid());
    frame_end(&t->w);
    uint8_t type, body[600];
    size_t len;
    int64_t deadline = now + HELLO_TIMEOUT_MS;
    if (send_all(fd, t->w.buf, t->w.len, deadline) || recv_frame(fd, &type, body, sizeof body, &len, deadline) ||
        type != CP_WELCOME) {
        close(fd);
        return false;
    }
    kr_t r = kr_init(body, len);
    kr_u32(&r);
    uint64_t gen = (uint64_t)kr_i64(&r);
    if (!t->mapped || gen != t->ring.generation) { /* (re)map before the next read */
        t->epoch = 0;
        t->next_map_ms = 0;
    }
    t->fd = fd;
    return true;
}

/* Asks cached to load the segment; its CP_LOAD_* status, -1 when cached did
 * not answer (down, or slower than KAFSCALE_CACHED_LOAD_TIMEOUT_MS). */
static int ask_load(cthread_t *t, const sr_seg_ref_t *ref) {
    if (!t_connect(t)) return -1;
    uint32_t id = ++t->next_id;
    frame_begin(&t->w, CP_LOAD);
    kw_u32(&t->w, id);
    wr_seg(&t->w, ref->topic, &ref->topic_id, ref->partition, &ref->seg);
    kw_i8(&t->w, (int8_t)ref->nnext);
    for (int i = 0; i < ref->nnext; i++) wr_seg(&t->w, ref->topic, &ref->topic_id, ref->partition, &ref->next[i]);
    frame_end(&t->w);
    int64_t deadline = mono_ms() + C.load_timeout_ms;
    if (send_all(t->fd, t->w.buf, t->w.len, deadline)) {
        thread_close_fd(t);
        return -1;
    }
    for (;;) {
        uint8_t type, body[600];
        size_t len;
        if (recv_frame(t->fd, &type, body, sizeof body, &len, deadline)) {
            log_warn("cache: no answer from cached for %s/%d segment %lld: reading from the store", ref->topic,
                     ref->partition, (long long)ref->seg.base_offset);
            thread_close_fd(t); /* a late answer must not be taken for the next request's */
            return -1;
        }
        if (type != CP_LOADED) continue;
        kr_t r = kr_init(body, len);
        uint32_t rid = kr_u32(&r);
        int status = (uint8_t)kr_i8(&r);
        kstr_t msg = kr_str(&r, false);
        if (r.err || rid != id) continue;
        if (status != CP_LOAD_OK && msg.len > 0)
            log_debug("cache: cached could not load %s/%d segment %lld: %.*s", ref->topic, ref->partition,
                      (long long)ref->seg.base_offset, (int)msg.len, msg.p);
        return status;
    }
}

/* The reader entered a segment it found in the ring: cached reads ahead. */
static void send_hint(cthread_t *t, const sr_seg_ref_t *ref) {
    if (!__atomic_load_n(&C.up, __ATOMIC_ACQUIRE) || !t_connect(t)) return;
    frame_begin(&t->w, CP_HINT);
    wr_seg(&t->w, ref->topic, &ref->topic_id, ref->partition, &ref->seg);
    kw_i8(&t->w, (int8_t)ref->nnext);
    for (int i = 0; i < ref->nnext; i++) wr_seg(&t->w, ref->topic, &ref->topic_id, ref->partition, &ref->next[i]);
    frame_end(&t->w);
    if (send_all(t->fd, t->w.buf, t->w.len, mono_ms() + 100)) thread_close_fd(t);
}

/* store_read's front (see the top of this file). */
static int front(void *ctx, const sr_seg_ref_t *ref, uint64_t off, uint64_t len, uint8_t *buf, size_t cap,
                 size_t *got) {
    if (ref->index || !buf) return SR_FRONT_PASS; /* indexes are small: straight from the store */
    cthread_t *t = tstate();
    if (!t) return SR_FRONT_PASS;
    shm_ring_key_t k = {ref->topic,           strlen(ref->topic),       ref->topic_id.b,
                        ref->partition,       ref->seg.base_offset,     ref->seg.last_offset,
                        (uint64_t)ref->seg.size};
    ring_refresh(t);
    int rc = ring_read(t, &k, off, len, buf, cap, got);
    if (rc == SHM_OK) {
        count(CS_HITS);
        if (off <= SEG_HEADER_SIZE) send_hint(t, ref);
        return OBJ_OK;
    }
    /* Not there: ask cached, when it is up (or when this thread reaches it
     * before the control link noticed it came back; when it is down that
     * costs one refused connect per thread every 200 ms). */
    if (rc == SHM_MISS && (__atomic_load_n(&C.up, __ATOMIC_ACQUIRE) || t_connect(t))) {
        count(CS_MISSES);
        if (ask_load(t, ref) == CP_LOAD_OK) {
            if (!t->mapped) t->next_map_ms = 0;
            ring_refresh(t);
            if (ring_read(t, &k, off, len, buf, cap, got) == SHM_OK) return OBJ_OK;
        }
    }
    count(CS_FALLBACKS);
    return SR_FRONT_PASS;
}

/* ---- the control link (loop thread) ---- */

static void set_up(bool up) {
    __atomic_store_n(&C.up, up ? 1 : 0, __ATOMIC_RELEASE);
    __atomic_add_fetch(&C.epoch, 1, __ATOMIC_RELEASE);
}

static void link_down(const char *why) {
    if (!C.bev) return;
    bufferevent_free(C.bev);
    C.bev = NULL;
    if (__atomic_load_n(&C.up, __ATOMIC_ACQUIRE))
        log_warn("cache: link to kafscale-cached down (%s): store reads go to the object store until it is back", why);
    set_up(false);
}

static void on_welcome(kr_t *r) {
    uint32_t ver = kr_u32(r);
    uint64_t gen = (uint64_t)kr_i64(r);
    uint64_t size = (uint64_t)kr_i64(r);
    kstr_t name = kr_str(r, false);
    int32_t pid = kr_i32(r);
    int32_t ra = kr_i32(r);
    if (r->err || name.len <= 0 || (size_t)name.len >= SHM_RING_NAME_MAX) {
        link_down("malformed WELCOME");
        return;
    }
    char nm[SHM_RING_NAME_MAX];
    kstr_cpy(nm, sizeof nm, name);
    pthread_mutex_lock(&C.name_mu);
    if (strcmp(nm, C.shm_name)) {
        log_warn("cache: cached uses ring %s, not %s (KAFSCALE_SHM_NAME differs?): following cached", nm, C.shm_name);
        memcpy(C.shm_name, nm, sizeof nm);
    }
    pthread_mutex_unlock(&C.name_mu);
    log_info("cache: kafscale-cached (pid %d, protocol v%u) up: ring %s generation %llu, %llu bytes, read-ahead %d",
             pid, ver, nm, (unsigned long long)gen, (unsigned long long)size, ra);
    C.generation = gen;
    C.cached_pid = pid;
    C.ever_up = true;
    C.backoff_ms = 100;
    set_up(true);
}

static void read_cb(struct bufferevent *bev, void *arg) {
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        uint8_t szb[4];
        if (evbuffer_copyout(in, szb, 4) < 4) return;
        uint32_t len = kbe32(szb);
        if (len < 1 || len > CPROTO_MAX_FRAME) {
            link_down("bad frame from cached");
            return;
        }
        if (evbuffer_get_length(in) < 4 + (size_t)len) return;
        evbuffer_drain(in, 4);
        uint8_t *frame = evbuffer_pullup(in, len);
        kr_t r = kr_init(frame + 1, len - 1);
        if (frame[0] == CP_WELCOME) on_welcome(&r);
        else if (frame[0] == CP_METRICS && metrics_merge(&r) != 0) log_warn("cache: malformed METRICS from cached");
        evbuffer_drain(in, len);
        if (!C.bev) return;
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) link_down(what & BEV_EVENT_EOF ? "closed" : strerror(errno));
}

/* 0 connected, -1 nobody listens. */
static int try_connect(void) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, C.sock_path, sizeof C.sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        close(fd);
        return -1;
    }
    evutil_make_socket_nonblocking(fd);
    C.bev = bufferevent_socket_new(g_broker.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!C.bev) {
        close(fd);
        return -1;
    }
    bufferevent_setcb(C.bev, read_cb, NULL, event_cb, NULL);
    bufferevent_enable(C.bev, EV_READ | EV_WRITE);
    kw_t w;
    kw_init(&w, 64);
    frame_begin(&w, CP_HELLO);
    kw_u32(&w, CPROTO_VERSION);
    kw_i8(&w, CP_ROLE_BROKER);
    kw_i32(&w, g_broker.cfg.node_id);
    kw_i32(&w, (int32_t)getpid());
    frame_end(&w);
    evbuffer_add(bufferevent_get_output(C.bev), w.buf, w.len);
    kw_free(&w);
    return 0;
}

static void send_stats(void) {
    uint64_t now[CS_MAX];
    bool any = false;
    for (int i = 0; i < CS_MAX; i++) {
        now[i] = __atomic_load_n(&C.count[i], __ATOMIC_RELAXED);
        any |= now[i] != C.sent[i];
    }
    if (!any) return;
    kw_t w;
    kw_init(&w, 64);
    frame_begin(&w, CP_STATS);
    for (int i = 0; i < CS_MAX; i++) kw_i64(&w, (int64_t)(now[i] - C.sent[i]));
    frame_end(&w);
    evbuffer_add(bufferevent_get_output(C.bev), w.buf, w.len);
    kw_free(&w);
    memcpy(C.sent, now, sizeof now);
}

static void start_cached(void) {
    C.last_start_ms = mono_ms();
    pid_t pid = fork();
    if (pid < 0) {
        log_error("cache: cannot fork kafscale-cached: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        /* Its own session: signals meant for the broker's process group
         * (Ctrl-C, a test harness's killpg) leave the ring's writer alone;
         * it goes by itself once no broker is connected (--supervised). */
        setsid();
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        close_range(3, ~0u, 0); /* client sockets and the like are not cached's to hold */
        execl(C.bin, C.bin, "--supervised", (char *)NULL);
        fprintf(stderr, "cannot exec %s: %s\n", C.bin, strerror(errno));
        _exit(127);
    }
    C.pid = pid;
    log_info("cache: started kafscale-cached (pid %d)", (int)pid);
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg) {
    if (C.pid <= 0) return;
    int status = 0;
    pid_t r = waitpid(C.pid, &status, WNOHANG);
    if (r == 0) return;
    /* r == -1 (ECHILD): another SIGCHLD handler (flush_link.c) reaped it. */
    if (r == C.pid) {
        if (WIFSIGNALED(status)) log_warn("cache: kafscale-cached (pid %d) killed by signal %d", (int)r, WTERMSIG(status));
        else if (WEXITSTATUS(status) == 3) log_info("cache: kafscale-cached (pid %d): another cached holds the ring", (int)r);
        else log_warn("cache: kafscale-cached (pid %d) exited with status %d", (int)r, WEXITSTATUS(status));
    } else {
        log_warn("cache: kafscale-cached (pid %d) is gone", (int)C.pid);
    }
    C.pid = 0;
    int64_t age = mono_ms() - C.last_start_ms;
    C.backoff_ms = age > 10000 ? 100 : (C.backoff_ms < 5000 ? C.backoff_ms * 2 : 5000);
    C.next_start_ms = mono_ms() + C.backoff_ms;
}

static void tick_arm(int64_t ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(C.timer, &tv);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg) {
    if (g_broker.stopping) return;
    if (C.bev) {
        if (__atomic_load_n(&C.up, __ATOMIC_ACQUIRE)) send_stats();
        tick_arm(TICK_MS);
        return;
    }
    if (try_connect() != 0 && C.supervise && C.pid == 0 && mono_ms() >= C.next_start_ms) start_cached();
    tick_arm(RETRY_MS);
}

/* ---- the ring on /metrics (loop thread, when /metrics is scraped) ---- */

static cthread_t loop_view = {.fd = -1}; /* the loop's own read-only mapping */

pid_t cache_link_pid(void); /* below; declared weak in http.h */

/* cached's process and the ring into the registry.
 * Process: a supervised cached runs beside us, so /proc shows it; one that
 * is not ours to see (KAFSCALE_SUPERVISE=false: maybe another container,
 * another pid namespace) reports itself in its METRICS frames; a cached
 * that is down has no process series.
 * Ring: its counters and occupancy into kafscale_cache_*{cache="shm"}. The
 * reads the workers made since the last STATS are not in the ring yet: they
 * are added, so a scrape right after a read sees it. While the ring cannot
 * be mapped (cached down and its ring gone) the series keep their last
 * values. */
static void ring_collect(void *arg) {
    pid_t pid = cache_link_pid();
    if (C.supervise && pid > 0) metrics_sample_process("cached", pid);
    else if (!__atomic_load_n(&C.up, __ATOMIC_ACQUIRE)) metrics_sample_process("cached", 0); /* drops them */
    cthread_t *t = &loop_view;
    ring_refresh(t);
    if (!t->mapped) return;
    shm_ring_hdr_t h;
    shm_ring_header_snapshot(&t->ring, &h);
    const uint64_t *c = h.counters;
    uint64_t unsent[CS_MAX];
    for (int i = 0; i < CS_MAX; i++) unsent[i] = __atomic_load_n(&C.count[i], __ATOMIC_RELAXED) - C.sent[i];
    metrics_set(M_CACHE_HITS, (double)(c[SHM_C_hits] + unsent[CS_HITS]), "shm");
    metrics_set(M_CACHE_MISSES, (double)(c[SHM_C_misses] + unsent[CS_MISSES]), "shm");
    metrics_set(M_CACHE_FALLBACKS, (double)(c[SHM_C_fallbacks] + unsent[CS_FALLBACKS]), "shm");
    metrics_set(M_CACHE_LOADS, (double)c[SHM_C_loads], "shm");
    metrics_set(M_CACHE_LOAD_BYTES, (double)c[SHM_C_bytes_loaded], "shm");
    metrics_set(M_CACHE_LOAD_ERRORS, (double)c[SHM_C_load_errors], "shm");
    metrics_set(M_CACHE_EVICTIONS, (double)c[SHM_C_evictions], "shm");
    metrics_set(M_CACHE_BYTES, (double)h.live_bytes, "shm");
    metrics_set(M_CACHE_ENTRIES, (double)h.live_entries, "shm");
    metrics_set(M_CACHE_CAPACITY, (double)h.data_size, "shm");
}

/* For http.c (/readyz, metrics, GetStatus; declared weak in http.h). Ready:
 * the link is up; or cached is turned off (KAFSCALE_CACHED=false: the node
 * reads the object store itself); or the broker started less than
 * STARTUP_GRACE_MS ago and has not seen cached yet (it reserves its ring
 * first: a node is not "unready" for the few hundred ms that takes). */
bool cache_link_ready(void) {
    if (!C.enabled || __atomic_load_n(&C.up, __ATOMIC_ACQUIRE)) return true;
    return !C.ever_up && mono_ms() - C.init_ms < STARTUP_GRACE_MS;
}

/* The cached the broker talks to (its own child, or one it found running),
 * 0 when none. */
pid_t cache_link_pid(void) {
    if (__atomic_load_n(&C.up, __ATOMIC_ACQUIRE) && C.cached_pid > 0) return C.cached_pid;
    return C.pid;
}

int cache_link_init(void) {
    C.enabled = env_bool("KAFSCALE_CACHED", true);
    if (!C.enabled) {
        log_info("cache: kafscale-cached off (KAFSCALE_CACHED=false): store reads go to the object store");
        return 0;
    }
    const char *data_dir = g_broker.cfg.data_dir;
    char run_default[1100], err[300];
    snprintf(run_default, sizeof run_default, "%s/run", data_dir);
    const char *run_dir = env_str("KAFSCALE_RUN_DIR", run_default);
    if (strlen(run_dir) + 1 + strlen(CPROTO_SOCK_NAME) >= sizeof C.sock_path) {
        log_error("KAFSCALE_RUN_DIR: '%s' is too long for a UNIX socket path", run_dir);
        return -1;
    }
    snprintf(C.sock_path, sizeof C.sock_path, "%s/%s", run_dir, CPROTO_SOCK_NAME);
    if (shm_ring_name(C.shm_name, sizeof C.shm_name, getenv("KAFSCALE_SHM_NAME"), data_dir, g_broker.cfg.node_id, err,
                      sizeof err) != 0) {
        fprintf(stderr, "kafscale: bad value for KAFSCALE_SHM_NAME: %s\n", err);
        exit(2);
    }
    C.load_timeout_ms = env_int("KAFSCALE_CACHED_LOAD_TIMEOUT_MS", 10000, 100, 600000);
    /* cached reads these too: refuse bad values here, at the broker's start */
    env_size("KAFSCALE_CACHE_BYTES", 256LL << 20, 4LL << 20, 1LL << 40);
    env_int("KAFSCALE_READAHEAD_SEGMENTS", 2, 0, CPROTO_MAX_NEXT);
    C.supervise = env_bool("KAFSCALE_SUPERVISE", true);
    const char *bin = getenv("KAFSCALE_CACHED_BIN");
    if (bin && *bin) {
        snprintf(C.bin, sizeof C.bin, "%s", bin);
    } else {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0) n = 0;
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) *slash = 0;
        if (!n) snprintf(self, sizeof self, ".");
        size_t sl = strlen(self);
        if (sl + sizeof "/kafscale-cached" > sizeof C.bin) sl = 0;
        memcpy(C.bin, self, sl);
        memcpy(C.bin + sl, "/kafscale-cached", sizeof "/kafscale-cached");
    }
    if (C.supervise && access(C.bin, X_OK) != 0) {
        log_warn("cache: cannot run kafscale-cached at %s (set KAFSCALE_CACHED_BIN): store reads go to the object "
                 "store unless a cached is started separately", C.bin);
        C.supervise = false;
    }
    if (pthread_key_create(&C.tkey, thread_free) != 0) {
        log_error("cache: pthread_key_create failed");
        return -1;
    }
    C.tkey_ok = true;
    C.backoff_ms = 100;
    C.init_ms = mono_ms();
    store_read_set_front(front, NULL);
    metrics_add_collector(ring_collect, NULL);
    C.timer = evtimer_new(g_broker.base, tick_cb, NULL);
    tick_arm(RETRY_MS);
    if (C.supervise) {
        C.sigchld_ev = evsignal_new(g_broker.base, SIGCHLD, sigchld_cb, NULL);
        evsignal_add(C.sigchld_ev, NULL);
    }
    if (try_connect() != 0 && C.supervise) start_cached();
    log_info("cache: ring %s, socket %s%s", C.shm_name, C.sock_path, C.supervise ? ", supervised" : "");
    return 0;
}

/* Waits until cached closes the link (it does once it stopped and its ring
 * is gone); false when it did not before the deadline. */
static bool wait_link_eof(evutil_socket_t fd, int64_t deadline) {
    for (;;) {
        int left = (int)(deadline - mono_ms());
        if (left <= 0) return false;
        struct pollfd pf = {fd, POLLIN, 0};
        int pr = poll(&pf, 1, left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return false;
        uint8_t scratch[4096]; /* METRICS frames still on their way: not needed any more */
        ssize_t k = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) return true;
    }
}

/* Our child's exit (reaped here: the event loop that would have is done).
 * true when it is gone. */
static bool wait_child(pid_t pid, int64_t deadline) {
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) return true; /* ECHILD: flush_link.c reaped it */
        if (mono_ms() >= deadline) return false;
        usleep(10000);
    }
}

/* After store_read_shutdown() (the workers are gone). The node stops, and
 * with it the cached the broker supervises (see the top of this file):
 * STOP, then wait for it; a child that does not answer (an older cached, or
 * one still starting) gets SIGTERM. A cached that is not ours to supervise
 * (KAFSCALE_SUPERVISE=false) stays. */
void cache_link_shutdown(void) {
    if (!C.enabled) return;
    bool asked = false, gone = false;
    if (C.bev && __atomic_load_n(&C.up, __ATOMIC_ACQUIRE)) {
        send_stats();
        if (C.supervise) {
            kw_t w;
            kw_init(&w, 16);
            frame_begin(&w, CP_STOP);
            frame_end(&w);
            evbuffer_add(bufferevent_get_output(C.bev), w.buf, w.len);
            kw_free(&w);
        }
        /* Push what is buffered before the socket goes (by hand: the loop
         * is done, and a socket bufferevent's output cannot be drained from
         * outside it). */
        evutil_socket_t fd = bufferevent_getfd(C.bev);
        struct evbuffer *out = bufferevent_get_output(C.bev);
        size_t n = evbuffer_get_length(out);
        const uint8_t *p = n ? evbuffer_pullup(out, (ev_ssize_t)n) : NULL;
        bool sent = !n || (p && send_all(fd, p, n, mono_ms() + 500) == 0);
        if (C.supervise && sent) {
            asked = true;
            gone = wait_link_eof(fd, mono_ms() + STOP_EOF_MS);
            if (gone) log_info("cache: kafscale-cached (pid %d) stopped with the node", C.cached_pid);
            else log_warn("cache: kafscale-cached (pid %d) did not answer STOP within %d ms", C.cached_pid, STOP_EOF_MS);
        }
    }
    if (C.bev) bufferevent_free(C.bev);
    C.bev = NULL;
    set_up(false);
    if (C.supervise && C.pid > 0) {
        if (!gone) {
            log_info("cache: stopping kafscale-cached (pid %d): SIGTERM%s", (int)C.pid,
                     asked ? "" : " (not connected yet)");
            kill(C.pid, SIGTERM);
        }
        if (!wait_child(C.pid, mono_ms() + STOP_EXIT_MS))
            log_warn("cache: kafscale-cached (pid %d) still runs %d ms after it was asked to stop", (int)C.pid,
                     STOP_EXIT_MS);
        C.pid = 0;
    }
    if (loop_view.mapped) shm_ring_close(&loop_view.ring);
    loop_view.mapped = false;
    if (C.timer) event_free(C.timer);
    if (C.sigchld_ev) event_free(C.sigchld_ev);
    C.timer = C.sigchld_ev = NULL;
    log_info("cache: %llu ring hits, %llu misses, %llu lapped, %llu reads from the store",
             (unsigned long long)C.count[CS_HITS], (unsigned long long)C.count[CS_MISSES],
             (unsigned long long)C.count[CS_LAPPED], (unsigned long long)C.count[CS_FALLBACKS]);
    if (C.tkey_ok) {
        pthread_key_delete(C.tkey);
        C.tkey_ok = false;
    }
}
