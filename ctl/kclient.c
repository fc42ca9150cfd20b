/* kclient.c - kafscale-ctl's Kafka client: one blocking TCP connection,
 * requests encoded and responses decoded with the project's schema codec
 * (common/kmsg.h), versions chosen from the broker's ApiVersions answer.
 * Frames are size-prefixed; the size of an answer is checked against a
 * maximum before it is read. */
#include "ctl.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "msg_api_versions.h"

#define MAX_RESPONSE (64u << 20)

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One request/response exchange; the body is already in c->w after the
 * 4-byte size and the header. Returns the response frame in c->buf. */
static int exchange(kc_t *c, const char *what) {
    kput32(c->w.buf, (uint32_t)(c->w.len - 4));
    if (c->w.oom || write_all(c->fd, c->w.buf, c->w.len)) {
        ctl_err("%s: cannot send to %s: %s", what, c->addr, c->w.oom ? "out of memory" : strerror(errno));
        return -1;
    }
    uint8_t szb[4];
    if (read_all(c->fd, szb, 4)) {
        ctl_err("%s: no answer from %s (%s)", what, c->addr, errno ? strerror(errno) : "connection closed");
        return -1;
    }
    uint32_t n = kbe32(szb);
    if (n < 4 || n > MAX_RESPONSE) {
        ctl_err("%s: bad response size %u from %s", what, n, c->addr);
        return -1;
    }
    uint8_t *b = realloc(c->buf, n);
    if (!b) {
        ctl_err("%s: out of memory", what);
        return -1;
    }
    c->buf = b;
    c->buflen = n;
    if (read_all(c->fd, c->buf, n)) {
        ctl_err("%s: answer from %s cut short", what, c->addr);
        return -1;
    }
    return 0;
}

static void header(kc_t *c, int16_t key, int version, bool flexible) {
    kw_reset(&c->w);
    kw_i32(&c->w, 0); /* size, filled in by exchange() */
    kw_i16(&c->w, key);
    kw_i16(&c->w, (int16_t)version);
    kw_i32(&c->w, ++c->corr);
    kw_str(&c->w, false, KSTR_LIT("kafscale-ctl")); /* client id: classic string in every header version */
    if (flexible) kw_empty_tags(&c->w);
}

int kc_open(kc_t *c, const char *addr) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    karena_init(&c->arena);
    kw_init(&c->w, 1024);
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    for (int i = 0; i < KAPI__MAX; i++) c->vmax[i] = -1;

    char host[256], port[16];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host) {
        ctl_err("bad Kafka address '%s' (expected host:port)", addr);
        return -1;
    }
    size_t hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') { /* [v6]:port */
        memcpy(host, addr + 1, hl - 2);
        host[hl - 2] = 0;
    } else {
        memcpy(host, addr, hl);
        host[hl] = 0;
    }
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc || !ai) {
        ctl_err("cannot resolve %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *a = ai; a && c->fd < 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        struct timeval tv = {g_opts.timeout_ms / 1000 + 10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->fd = fd;
        } else {
            close(fd);
        }
    }
    freeaddrinfo(ai);
    if (c->fd < 0) {
        ctl_err("cannot connect to the Kafka listener at %s: %s", addr, strerror(errno));
        return -1;
    }
    /* ApiVersions v0: every broker answers it. */
    api_versions_req_t req = {KSTR_NULL, KSTR_NULL};
    header(c, KAPI_API_VERSIONS, 0, false);
    kmsg_encode(&api_versions_req_schema, 0, false, &c->w, &req);
    if (exchange(c, "ApiVersions")) return -1;
    kr_t r = kr_init(c->buf + 4, c->buflen - 4);
    api_versions_resp_t resp;
    if (kmsg_decode(&api_versions_resp_schema, 0, false, &r, &resp, &c->arena) || resp.error_code) {
        ctl_err("ApiVersions: bad answer from %s", addr);
        return -1;
    }
    for (int32_t i = 0; i < resp.api_keys.count; i++) {
        api_versions_resp_key_t *k = KARR_AT(resp.api_keys, api_versions_resp_key_t, i);
        if (k->api_key >= 0 && k->api_key < KAPI__MAX) {
            c->vmin[k->api_key] = k->min_version;
            c->vmax[k->api_key] = k->max_version;
        }
    }
    kc_reset(c);
    return 0;
}

void kc_close(kc_t *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    karena_free(&c->arena);
    kw_free(&c->w);
    free(c->buf);
    c->buf = NULL;
}

void kc_reset(kc_t *c) { karena_reset(&c->arena); }

int kc_version(kc_t *c, int16_t key, const char *name, int lo, int hi) {
    if (key < 0 || key >= KAPI__MAX || c->vmax[key] < 0) {
        ctl_err("the broker at %s does not serve %s", c->addr, name);
        return -1;
    }
    int v = hi < c->vmax[key] ? hi : c->vmax[key];
    if (v < lo || v < c->vmin[key]) {
        ctl_err("the broker at %s serves %s v%d-v%d; kafscale-ctl needs v%d-v%d", c->addr, name, c->vmin[key],
                c->vmax[key], lo, hi);
        return -1;
    }
    return v;
}

int kc_call(kc_t *c, int16_t key, int version, int first_flexible, const kschema_t *req_schema, const void *req,
            const kschema_t *resp_schema, void *resp) {
    bool flexible = version >= first_flexible;
    header(c, key, version, flexible);
    if (kmsg_encode(req_schema, version, flexible, &c->w, req)) {
        ctl_err("%s v%d: cannot encode the request", req_schema->name, version);
        return -1;
    }
    if (exchange(c, req_schema->name)) return -1;
    kr_t r = kr_init(c->buf, c->buflen);
    int32_t corr = kr_i32(&r);
    if (flexible && key != KAPI_API_VERSIONS) kr_skip_tags(&r);
    if (r.err || corr != c->corr) {
        ctl_err("%s: answer out of order from %s", resp_schema->name, c->addr);
        return -1;
    }
    if (kmsg_decode(resp_schema, version, flexible, &r, resp, &c->arena)) {
        ctl_err("%s v%d: cannot decode the answer from %s", resp_schema->name, version, c->addr);
        return -1;
    }
    return 0;
}
