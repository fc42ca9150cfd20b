/* meta_keys.c - the etcd key layout of the metadata (see meta.h): escaping
 * of key components, the partition keys, and the paged prefix read both etcd
 * backends (meta_etcd.c, meta_groups_etcd.c) load with.
 */
#include "meta_backend.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define RANGE_PAGE 1000 /* keys per range request when loading */

static bool must_escape(unsigned char c) { return c < 0x21 || c == '/' || c == '%'; }

int meta_key_escape(const char *in, char *out, size_t outsz) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (must_escape(*p)) {
            if (o + 3 >= outsz) return -1;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            if (o + 1 >= outsz) return -1;
            out[o++] = (char)*p;
        }
    }
    if (o >= outsz) return -1;
    out[o] = 0;
    return (int)o;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int meta_key_unescape(const char *in, size_t n, char *out, size_t outsz) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int a = hexval(in[i + 1]), b = hexval(in[i + 2]);
            if (a < 0 || b < 0) return -1;
            c = a << 4 | b;
            i += 2;
        }
        if (c == 0 || o + 1 >= outsz) return -1;
        out[o++] = (char)c;
    }
    if (o >= outsz) return -1;
    out[o] = 0;
    return (int)o;
}

int meta_key_partition(char *out, size_t outsz, const char *topic, int32_t partition, const char *leaf) {
    char et[META_KEY_MAX];
    if (meta_key_escape(topic, et, sizeof et) < 0) return -1;
    int n = snprintf(out, outsz, "/kafscale/partitions/%s/%" PRId32 "/%s", et, partition, leaf);
    return n < 0 || (size_t)n >= outsz ? -1 : n;
}

void meta_etcd_log_error(const char *what, int st, const char *err) {
    log_warn("metadata: %s: %s (%s)", what, err && err[0] ? err : "failed", etcd_status_name(st));
}

int meta_etcd_range_all(etcd_t *c, const char *prefix, int64_t *rev, int (*fn)(void *arg, const etcd_kv_t *kv),
                        void *arg, char *err, size_t errsz) {
    size_t plen = strlen(prefix);
    KS_ASSERT(plen >= 1);
    uint8_t *end = malloc(plen), *from = malloc(plen + 1);
    if (!end || !from) { free(end); free(from); snprintf(err, errsz, "out of memory"); return -1; }
    size_t end_len = etcd_prefix_end(prefix, plen, end);
    memcpy(from, prefix, plen);
    size_t from_len = plen;
    int rc = 0;
    for (;;) {
        etcd_range_req_t req = {.key = from, .key_len = from_len, .range_end = end, .range_end_len = end_len,
                                .revision = *rev, .limit = RANGE_PAGE};
        etcd_range_result_t res;
        char e[512];
        int st = etcd_range(c, &req, &res, e, sizeof e);
        if (st) {
            snprintf(err, errsz, "cannot read %s from etcd: %s (%s)", prefix, e, etcd_status_name(st));
            rc = -1;
            break;
        }
        if (*rev == 0) *rev = res.revision;
        for (int i = 0; i < res.nkvs && !rc; i++) rc = fn(arg, &res.kvs[i]);
        bool more = res.more && res.nkvs > 0;
        if (more && !rc) {
            /* the next page starts right after the last key: last key + "\0" */
            const etcd_kv_t *last = &res.kvs[res.nkvs - 1];
            uint8_t *nf = realloc(from, last->key_len + 1);
            if (!nf) { etcd_range_result_free(&res); snprintf(err, errsz, "out of memory"); rc = -1; break; }
            from = nf;
            memcpy(from, last->key, last->key_len);
            from[last->key_len] = 0;
            from_len = last->key_len + 1;
        }
        etcd_range_result_free(&res);
        if (!more || rc) break;
    }
    free(from);
    free(end);
    return rc;
}
