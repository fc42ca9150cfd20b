/* meta_groups_etcd.c - the etcd backend of meta_groups.h (the "etcd" ops of
 * meta_backend.h): each group's ConsumerGroup at /kafscale/groups/<group>,
 * each committed offset's CommittedOffset at
 * /kafscale/offsets/<group>/<topic>/<partition> (group and topic escaped,
 * meta_key_escape). A commit of several offsets is one txn (128 puts a txn:
 * etcd's --max-txn-ops); deleting a group removes its key and its offsets
 * prefix in one txn. Loads page through the prefixes at one revision; values
 * that do not decode, or disagree with their key, are skipped with a warning.
 * Blocking calls (etcd.h); etcd_t is thread-safe, nothing else is kept here.
 */
#include "meta_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "meta_pb.h"

#define MAX_TXN_OPS 128
#define BAD_LOGGED 10

typedef struct mgetcd {
    struct meta_groups base; /* ops = etcd_ops */
    etcd_t *c;
} mgetcd_t;

static const mg_ops_t etcd_ops;

meta_groups_t *meta_groups_etcd_open(const etcd_config_t *cfg, char *err, size_t errsz) {
    mgetcd_t *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, errsz, "out of memory"); return NULL; }
    m->c = etcd_open(cfg, err, errsz);
    if (!m->c) { free(m); return NULL; }
    m->base = (struct meta_groups){META_GROUPS_MAGIC, &etcd_ops};
    return &m->base;
}

static void op_close(meta_groups_t *mm) {
    mgetcd_t *m = (mgetcd_t *)mm;
    etcd_close(m->c);
    free(m);
}

/* ---- keys (malloc'd: group ids may be long) ---- */

static char *escaped(const char *s) {
    size_t cap = 3 * strlen(s) + 1;
    char *e = malloc(cap);
    if (e && meta_key_escape(s, e, cap) < 0) { free(e); e = NULL; }
    return e;
}

/* "/kafscale/groups/<g>" (topic NULL, partition < 0), "/kafscale/offsets/<g>/"
 * (topic NULL, partition >= 0) or "/kafscale/offsets/<g>/<topic>/<p>". */
static char *gkey(const char *group_id, const char *topic, int32_t partition) {
    char *eg = escaped(group_id), *et = topic ? escaped(topic) : NULL;
    char *k = NULL;
    if (eg && (!topic || et)) {
        size_t cap = strlen(eg) + (et ? strlen(et) : 0) + 64;
        if ((k = malloc(cap))) {
            if (partition < 0) snprintf(k, cap, "/kafscale/groups/%s", eg);
            else if (!topic) snprintf(k, cap, "/kafscale/offsets/%s/", eg);
            else snprintf(k, cap, "/kafscale/offsets/%s/%s/%" PRId32, eg, et, partition);
        }
    }
    free(eg);
    free(et);
    return k;
}

/* ---- writes ---- */

static int op_put_group(meta_groups_t *mm, const mg_group_t *g) {
    mgetcd_t *m = (mgetcd_t *)mm;
    char *key = gkey(g->group_id, NULL, -1);
    size_t len = 0;
    uint8_t *val = key ? meta_pb_group_encode(g, &len) : NULL;
    int rc = -1;
    if (key && val) {
        char e[512];
        int st = etcd_put(m->c, key, strlen(key), val, len, 0, NULL, e, sizeof e);
        if (st) { meta_etcd_log_error("cannot write a group", st, e); errno = EIO; }
        else rc = 0;
    } else {
        errno = ENOMEM;
    }
    free(key);
    free(val);
    return rc;
}

/* Offsets of one call in (topic, partition, position) order, so that a
 * later entry for the same partition replaces an earlier one (etcd refuses
 * one key twice in a txn). */
static __thread const mg_offset_t *tl_offs;
static int off_cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    int c = strcmp(tl_offs[x].topic, tl_offs[y].topic);
    if (c) return c;
    if (tl_offs[x].partition != tl_offs[y].partition) return tl_offs[x].partition < tl_offs[y].partition ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Puts (put true) or deletes the offsets, in txns of up to 128 ops. */
static int offsets_txn(mgetcd_t *m, const char *group_id, const mg_offset_t *o, int n, bool put) {
    if (n <= 0) return 0;
    int *order = calloc((size_t)n, sizeof *order);
    char **keys = calloc((size_t)n, sizeof *keys);
    uint8_t **vals = calloc((size_t)n, sizeof *vals);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    etcd_op_t *ops = calloc(MAX_TXN_OPS, sizeof *ops);
    int rc = -1, nk = 0;
    if (!order || !keys || !vals || !lens || !ops) { errno = ENOMEM; goto out; }
    for (int i = 0; i < n; i++) order[i] = i;
    tl_offs = o;
    qsort(order, (size_t)n, sizeof *order, off_cmp);
    for (int j = 0; j < n; j++) {
        int i = order[j];
        if (j + 1 < n && o[order[j + 1]].partition == o[i].partition && !strcmp(o[order[j + 1]].topic, o[i].topic))
            continue; /* replaced by a later entry */
        if (!(keys[nk] = gkey(group_id, o[i].topic, o[i].partition))) { errno = ENOMEM; goto out; }
        if (put && !(vals[nk] = meta_pb_offset_encode(group_id, &o[i], &lens[nk]))) {
            nk++;
            errno = ENOMEM;
            goto out;
        }
        nk++;
    }
    for (int from = 0; from < nk; from += MAX_TXN_OPS) {
        int k = nk - from < MAX_TXN_OPS ? nk - from : MAX_TXN_OPS;
        for (int i = 0; i < k; i++)
            ops[i] = put ? (etcd_op_t){.kind = ETCD_OP_PUT, .key = keys[from + i], .key_len = strlen(keys[from + i]),
                                       .value = vals[from + i], .value_len = lens[from + i]}
                         : (etcd_op_t){.kind = ETCD_OP_DELETE, .key = keys[from + i],
                                       .key_len = strlen(keys[from + i])};
        etcd_txn_result_t tr;
        char e[512];
        int st = etcd_txn(m->c, NULL, 0, ops, k, NULL, 0, &tr, e, sizeof e);
        if (st) {
            meta_etcd_log_error(put ? "cannot write committed offsets" : "cannot delete committed offsets", st, e);
            errno = EIO;
            goto out;
        }
        etcd_txn_result_free(&tr);
    }
    rc = 0;
out:
    for (int i = 0; i < nk; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(order);
    free(keys);
    free(vals);
    free(lens);
    free(ops);
    return rc;
}

static int op_put_offsets(meta_groups_t *mm, const char *group_id, const mg_offset_t *o, int n) {
    return offsets_txn((mgetcd_t *)mm, group_id, o, n, true);
}

static int op_delete_offsets(meta_groups_t *mm, const char *group_id, const mg_offset_t *o, int n) {
    return offsets_txn((mgetcd_t *)mm, group_id, o, n, false);
}

static int op_delete_group(meta_groups_t *mm, const char *group_id) {
    mgetcd_t *m = (mgetcd_t *)mm;
    char *gk = gkey(group_id, NULL, -1), *ok = gkey(group_id, NULL, 0);
    uint8_t *end = ok ? malloc(strlen(ok)) : NULL;
    int rc = -1;
    if (!gk || !ok || !end) {
        errno = ENOMEM;
    } else {
        size_t end_len = etcd_prefix_end(ok, strlen(ok), end);
        etcd_op_t ops[2] = {
            {.kind = ETCD_OP_DELETE, .key = gk, .key_len = strlen(gk)},
            {.kind = ETCD_OP_DELETE, .key = ok, .key_len = strlen(ok), .range_end = end, .range_end_len = end_len},
        };
        etcd_txn_result_t tr;
        char e[512];
        int st = etcd_txn(m->c, NULL, 0, ops, 2, NULL, 0, &tr, e, sizeof e);
        if (st) {
            meta_etcd_log_error("cannot delete a group", st, e);
            errno = EIO;
        } else {
            etcd_txn_result_free(&tr);
            rc = 0;
        }
    }
    free(gk);
    free(ok);
    free(end);
    return rc;
}

/* ---- loading ---- */

typedef struct gload {
    const mg_load_cb_t *cb;
    int nbad;
} gload_t;

static void bad_value(gload_t *x, const etcd_kv_t *kv, const char *why) {
    if (x->nbad++ < BAD_LOGGED) log_warn("metadata: skipping %s: %s", (const char *)kv->key, why);
}

static int group_kv(void *arg, const etcd_kv_t *kv) {
    gload_t *x = arg;
    static const char pfx[] = "/kafscale/groups/";
    const char *rest = (const char *)kv->key + sizeof pfx - 1;
    size_t rlen = kv->key_len - (sizeof pfx - 1);
    char *gid = malloc(rlen + 1);
    if (!gid) return -1;
    char why[300];
    mg_group_t g;
    void *keep = NULL;
    if (strlen((const char *)kv->key) != kv->key_len || memchr(rest, '/', rlen) ||
        meta_key_unescape(rest, rlen, gid, rlen + 1) <= 0) {
        bad_value(x, kv, "not a group key (/kafscale/groups/<group>)");
    } else if (meta_pb_group_decode(kv->value, kv->value_len, &g, &keep, why, sizeof why)) {
        bad_value(x, kv, why);
    } else if (strcmp(g.group_id, gid)) {
        bad_value(x, kv, "the value names another group than the key");
    } else if (x->cb->group) {
        x->cb->group(x->cb->arg, &g);
    }
    meta_pb_release(keep);
    free(gid);
    return 0;
}

static int offset_kv(void *arg, const etcd_kv_t *kv) {
    gload_t *x = arg;
    static const char pfx[] = "/kafscale/offsets/";
    const char *rest = (const char *)kv->key + sizeof pfx - 1;
    size_t rlen = kv->key_len - (sizeof pfx - 1);
    char *gid = malloc(rlen + 1);
    if (!gid) return -1;
    char topic[256], why[300];
    const char *s1 = memchr(rest, '/', rlen);
    const char *s2 = s1 ? memchr(s1 + 1, '/', rlen - (size_t)(s1 + 1 - rest)) : NULL;
    char *end = NULL;
    long p = -1;
    if (s2) {
        errno = 0;
        p = strtol(s2 + 1, &end, 10);
        if (errno || end == s2 + 1 || *end) p = -1;
    }
    mg_offset_t o;
    const char *vgid;
    void *keep = NULL;
    if (strlen((const char *)kv->key) != kv->key_len || !s2 || p < 0 || p > INT32_MAX ||
        meta_key_unescape(rest, (size_t)(s1 - rest), gid, rlen + 1) <= 0 ||
        meta_key_unescape(s1 + 1, (size_t)(s2 - s1 - 1), topic, sizeof topic) <= 0) {
        bad_value(x, kv, "not an offset key (/kafscale/offsets/<group>/<topic>/<partition>)");
    } else if (meta_pb_offset_decode(kv->value, kv->value_len, &o, &vgid, &keep, why, sizeof why)) {
        bad_value(x, kv, why);
    } else if (strcmp(o.topic, topic) || o.partition != (int32_t)p || (vgid[0] && strcmp(vgid, gid))) {
        bad_value(x, kv, "the value names another offset than the key");
    } else if (x->cb->offset) {
        x->cb->offset(x->cb->arg, gid, &o);
    }
    meta_pb_release(keep);
    free(gid);
    return 0;
}

static void bad_summary(gload_t *x) {
    if (x->nbad > BAD_LOGGED) log_warn("metadata: ... %d more bad value(s) skipped", x->nbad - BAD_LOGGED);
}

static int op_load(meta_groups_t *mm, const mg_load_cb_t *cb, char *err, size_t errsz) {
    mgetcd_t *m = (mgetcd_t *)mm;
    gload_t x = {cb, 0};
    int64_t rev = 0;
    int rc = meta_etcd_range_all(m->c, "/kafscale/groups/", &rev, group_kv, &x, err, errsz);
    if (!rc) rc = meta_etcd_range_all(m->c, "/kafscale/offsets/", &rev, offset_kv, &x, err, errsz);
    bad_summary(&x);
    return rc;
}

static int op_load_group(meta_groups_t *mm, const char *group_id, const mg_load_cb_t *cb, char *err, size_t errsz) {
    mgetcd_t *m = (mgetcd_t *)mm;
    char *gk = gkey(group_id, NULL, -1), *ok = gkey(group_id, NULL, 0);
    gload_t x = {cb, 0};
    int rc = -1;
    if (!gk || !ok) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    etcd_range_result_t r;
    char e[512];
    int st = etcd_get(m->c, gk, &r, e, sizeof e);
    if (st) {
        snprintf(err, errsz, "cannot read %s from etcd: %s (%s)", gk, e, etcd_status_name(st));
        goto out;
    }
    int64_t rev = r.revision; /* the offsets as of the same revision */
    if (r.nkvs) group_kv(&x, &r.kvs[0]);
    etcd_range_result_free(&r);
    rc = meta_etcd_range_all(m->c, ok, &rev, offset_kv, &x, err, errsz);
    bad_summary(&x);
out:
    free(gk);
    free(ok);
    return rc;
}

static const mg_ops_t etcd_ops = {
    .name = "etcd",
    .close = op_close,
    .load = op_load,
    .load_group = op_load_group,
    .put_group = op_put_group,
    .put_offsets = op_put_offsets,
    .delete_offsets = op_delete_offsets,
    .delete_group = op_delete_group,
    .journal_bytes = NULL,
    .set_compact_bytes = NULL,
};
