/* etcd_cli.c - a small command line over common/etcd.h, for the end-to-end
 * tests and for looking into an etcd by hand. Configured by the same
 * environment as the processes (KAFSCALE_ETCD_ENDPOINTS, _USERNAME,
 * _PASSWORD, _CA_FILE, _TIMEOUT_MS, _MAX_RETRIES). Every command prints one
 * JSON object per line on stdout; several commands run in one process
 * (one etcd_t) when separated by a lone ",":
 *
 *   etcd_cli put a 1 , sleep 3000 , get a , stats
 *
 * Commands:
 *   put KEY VALUE [--lease ID]            {"revision":N}
 *   get KEY [--prefix|--end END] [--rev N] [--limit N] [--keys-only] [--count-only] [--serializable]
 *                                         one {"key","value","create_revision","mod_revision",
 *                                         "version","lease"} line per key, then
 *                                         {"count":N,"more":B,"revision":N}
 *   del KEY [--prefix|--end END]          {"deleted":N,"revision":N}
 *   txn [cmp TARGET KEY OP OPERAND]... [then OP...] [else OP...]
 *        TARGET: value|version|create|mod|lease   OP: = > < !=
 *        OP (then/else): put KEY VALUE | del KEY | get KEY | getprefix KEY
 *                                         {"succeeded":B,"revision":N,"responses":[...]}
 *   lease-grant TTL [ID]                  {"id":N,"ttl":N}
 *   lease-keepalive ID                    {"ttl":N}
 *   lease-ttl ID                          {"ttl":N,"granted_ttl":N}
 *   lease-revoke ID                       {"revoked":ID}
 *   watch KEY [--prefix|--end END] [--rev N] [--prev-kv] [--count N] [--timeout-ms T] [--resync]
 *        prints {"watch":"connected","revision":N} / {"watch":"disconnected","why":..},
 *        one {"type":"PUT"|"DELETE","key",...} line per event, and on a
 *        compaction {"watch":"compacted","compact_revision":N}; with
 *        --resync the compacted callback re-reads the range and resumes
 *        after it ({"watch":"resync","count":N,"revision":N}). Ends after
 *        N events (exit 0) or the timeout (exit 4; default 10000 ms).
 *   stress PREFIX THREADS ROUNDS          THREADS threads share one etcd_t; each round puts
 *        PREFIX/<t>/<i>, reads it back, and txn-updates it only if its version
 *        is still 1; a shared lease is kept alive; a watch on PREFIX must see
 *        every put. {"ok":true,"ops":N,"watch_events":N}; exit 1 on any
 *        mismatch (message on stderr)
 *   sleep MS
 *   stats                                 {"requests":..,"retries":..,"failovers":..,"auths":..,
 *                                          "errors":..,"watch_reconnects":..,"endpoint":..}
 *
 * Exit status: 0 ok, 1 etcd error (message on stderr, with the status
 * name), 2 usage or configuration, 3 lease not found, 4 watch timeout.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd.h"
#include "log.h"

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

/* Prints o as one line (and frees it). */
static void emit(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    pthread_mutex_lock(&out_mu);
    printf("%s\n", s ? s : "{}");
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    free(s);
    json_decref(o);
}

static int usage(void) {
    fprintf(stderr, "usage: etcd_cli COMMAND ARGS... [, COMMAND ARGS...]...  (see test/tools/etcd_cli.c)\n");
    return 2;
}

static int fail(int st, const char *err) {
    fprintf(stderr, "etcd_cli: %s (%s)\n", err, etcd_status_name(st));
    return st == ETCD_ERR_NOT_FOUND ? 3 : 1;
}

static bool parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

/* A byte string as JSON text: the string when it is valid UTF-8, else null
 * (with a "<name>_hex" field beside it). */
static void set_bytes(json_t *o, const char *name, const uint8_t *p, size_t n) {
    json_t *s = json_stringn((const char *)p, n);
    if (s) {
        json_object_set_new(o, name, s);
        return;
    }
    char *hex = malloc(n * 2 + 1), field[64];
    for (size_t i = 0; hex && i < n; i++) sprintf(hex + 2 * i, "%02x", p[i]);
    if (hex) hex[2 * n] = '\0';
    snprintf(field, sizeof field, "%s_hex", name);
    json_object_set_new(o, name, json_null());
    json_object_set_new(o, field, json_string(hex ? hex : ""));
    free(hex);
}

static json_t *kv_json(const etcd_kv_t *kv) {
    json_t *o = json_object();
    set_bytes(o, "key", kv->key, kv->key_len);
    set_bytes(o, "value", kv->value, kv->value_len);
    json_object_set_new(o, "create_revision", json_integer(kv->create_revision));
    json_object_set_new(o, "mod_revision", json_integer(kv->mod_revision));
    json_object_set_new(o, "version", json_integer(kv->version));
    json_object_set_new(o, "lease", json_integer(kv->lease));
    return o;
}

static json_t *range_json(const etcd_range_result_t *r) {
    json_t *o = json_object(), *a = json_array();
    for (int i = 0; i < r->nkvs; i++) json_array_append_new(a, kv_json(&r->kvs[i]));
    json_object_set_new(o, "kvs", a);
    json_object_set_new(o, "count", json_integer(r->count));
    json_object_set_new(o, "more", json_boolean(r->more));
    json_object_set_new(o, "revision", json_integer(r->revision));
    return o;
}

/* Key range options shared by get, del and watch: --prefix or --end END.
 * end must hold at least strlen(key) (and 1) bytes. Returns 1 when argv[*i]
 * was such an option, 0 when not, -1 on a bad one. */
static int range_opt(int argc, char **argv, int *i, const char *key, uint8_t *end, size_t *end_len,
                     bool *has_end) {
    if (!strcmp(argv[*i], "--prefix")) {
        *end_len = etcd_prefix_end(key, strlen(key), end);
        *has_end = true;
        return 1;
    }
    if (!strcmp(argv[*i], "--end")) {
        if (*i + 1 >= argc) return -1;
        const char *e = argv[++*i];
        *end_len = strlen(e) ? strlen(e) : 1; /* "" means "\0": every key >= KEY */
        if (*end_len > 1024) return -1;
        memcpy(end, strlen(e) ? e : "", *end_len);
        *has_end = true;
        return 1;
    }
    return 0;
}

static int cmd_put(etcd_t *c, int argc, char **argv) {
    if (argc < 3) return usage();
    int64_t lease = 0, rev = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--lease") && i + 1 < argc && parse_i64(argv[i + 1], &lease)) i++;
        else return usage();
    }
    char err[512];
    int st = etcd_put(c, argv[1], strlen(argv[1]), argv[2], strlen(argv[2]), lease, &rev, err, sizeof err);
    if (st) return fail(st, err);
    emit(json_pack("{s:I}", "revision", (json_int_t)rev));
    return 0;
}

static int cmd_get(etcd_t *c, int argc, char **argv) {
    if (argc < 2) return usage();
    const char *key = argv[1];
    uint8_t end[1100];
    size_t end_len = 0;
    bool has_end = false;
    etcd_range_req_t r = {.key = key, .key_len = strlen(key)};
    if (strlen(key) > 1024) return usage();
    for (int i = 2; i < argc; i++) {
        int ro = range_opt(argc, argv, &i, key, end, &end_len, &has_end);
        if (ro < 0) return usage();
        if (ro) continue;
        if (!strcmp(argv[i], "--rev") && i + 1 < argc && parse_i64(argv[i + 1], &r.revision)) i++;
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc && parse_i64(argv[i + 1], &r.limit)) i++;
        else if (!strcmp(argv[i], "--keys-only")) r.keys_only = true;
        else if (!strcmp(argv[i], "--count-only")) r.count_only = true;
        else if (!strcmp(argv[i], "--serializable")) r.serializable = true;
        else return usage();
    }
    if (has_end) {
        r.range_end = end;
        r.range_end_len = end_len;
    }
    etcd_range_result_t res;
    char err[512];
    int st = etcd_range(c, &r, &res, err, sizeof err);
    if (st) return fail(st, err);
    for (int i = 0; i < res.nkvs; i++) emit(kv_json(&res.kvs[i]));
    emit(json_pack("{s:I, s:b, s:I}", "count", (json_int_t)res.count, "more", res.more, "revision",
                   (json_int_t)res.revision));
    etcd_range_result_free(&res);
    return 0;
}

static int cmd_del(etcd_t *c, int argc, char **argv) {
    if (argc < 2 || strlen(argv[1]) > 1024) return usage();
    uint8_t end[1100];
    size_t end_len = 0;
    bool has_end = false;
    for (int i = 2; i < argc; i++)
        if (range_opt(argc, argv, &i, argv[1], end, &end_len, &has_end) != 1) return usage();
    int64_t deleted = 0, rev = 0;
    char err[512];
    int st = etcd_delete(c, argv[1], strlen(argv[1]), has_end ? end : NULL, end_len, &deleted, &rev, err, sizeof err);
    if (st) return fail(st, err);
    emit(json_pack("{s:I, s:I}", "deleted", (json_int_t)deleted, "revision", (json_int_t)rev));
    return 0;
}

#define TXN_MAX 64

static int cmd_txn(etcd_t *c, int argc, char **argv) {
    etcd_cmp_t cmps[TXN_MAX];
    etcd_op_t ops[2][TXN_MAX];
    uint8_t ends[2][TXN_MAX][1100];
    int ncmp = 0, nops[2] = {0, 0}, branch = -1;
    for (int i = 1; i < argc;) {
        const char *w = argv[i];
        if (!strcmp(w, "cmp")) {
            if (i + 4 >= argc || ncmp == TXN_MAX || branch >= 0) return usage();
            etcd_cmp_t *cp = &cmps[ncmp++];
            memset(cp, 0, sizeof *cp);
            const char *t = argv[i + 1], *op = argv[i + 3], *operand = argv[i + 4];
            static const char *const targets[] = {"version", "create", "mod", "value", "lease"};
            static const char *const opnames[] = {"=", ">", "<", "!="};
            cp->target = ETCD_CMP_TARGET_MAX;
            cp->op = ETCD_CMP_OP_MAX;
            for (int k = 0; k < 5; k++) if (!strcmp(t, targets[k])) cp->target = (etcd_cmp_target_t)k;
            for (int k = 0; k < 4; k++) if (!strcmp(op, opnames[k])) cp->op = (etcd_cmp_op_t)k;
            if (cp->target == ETCD_CMP_TARGET_MAX || cp->op == ETCD_CMP_OP_MAX) return usage();
            cp->key = argv[i + 2];
            cp->key_len = strlen(argv[i + 2]);
            if (cp->target == ETCD_CMP_VALUE) {
                cp->value = operand;
                cp->value_len = strlen(operand);
            } else if (!parse_i64(operand, &cp->number)) {
                return usage();
            }
            i += 5;
        } else if (!strcmp(w, "then")) {
            branch = 0;
            i++;
        } else if (!strcmp(w, "else")) {
            branch = 1;
            i++;
        } else if (branch >= 0 && nops[branch] < TXN_MAX && i + 1 < argc) {
            etcd_op_t *o = &ops[branch][nops[branch]];
            memset(o, 0, sizeof *o);
            o->key = argv[i + 1];
            o->key_len = strlen(argv[i + 1]);
            if (o->key_len > 1024) return usage();
            if (!strcmp(w, "put") && i + 2 < argc) {
                o->kind = ETCD_OP_PUT;
                o->value = argv[i + 2];
                o->value_len = strlen(argv[i + 2]);
                i += 3;
            } else if (!strcmp(w, "del") || !strcmp(w, "get") || !strcmp(w, "getprefix")) {
                o->kind = !strcmp(w, "del") ? ETCD_OP_DELETE : ETCD_OP_RANGE;
                if (!strcmp(w, "getprefix")) {
                    o->range_end = ends[branch][nops[branch]];
                    o->range_end_len = etcd_prefix_end(o->key, o->key_len, ends[branch][nops[branch]]);
                }
                i += 2;
            } else {
                return usage();
            }
            nops[branch]++;
        } else {
            return usage();
        }
    }
    etcd_txn_result_t res;
    char err[512];
    int st = etcd_txn(c, cmps, ncmp, ops[0], nops[0], ops[1], nops[1], &res, err, sizeof err);
    if (st) return fail(st, err);
    json_t *o = json_object(), *a = json_array();
    json_object_set_new(o, "succeeded", json_boolean(res.succeeded));
    json_object_set_new(o, "revision", json_integer(res.revision));
    for (int i = 0; i < res.nresults; i++) {
        const etcd_op_result_t *r = &res.results[i];
        if (r->kind == ETCD_OP_RANGE) json_array_append_new(a, json_pack("{s:o}", "range", range_json(&r->range)));
        else if (r->kind == ETCD_OP_PUT) json_array_append_new(a, json_pack("{s:b}", "put", 1));
        else json_array_append_new(a, json_pack("{s:I}", "deleted", (json_int_t)r->deleted));
    }
    json_object_set_new(o, "responses", a);
    emit(o);
    etcd_txn_result_free(&res);
    return 0;
}

static int cmd_lease(etcd_t *c, int argc, char **argv) {
    int64_t a = 0, b = 0, x = 0;
    char err[512];
    int st;
    if (argc < 2 || !parse_i64(argv[1], &a)) return usage();
    if (!strcmp(argv[0], "lease-grant")) {
        int64_t id = 0;
        if (argc > 2 && !parse_i64(argv[2], &id)) return usage();
        if ((st = etcd_lease_grant(c, a, id, &x, &b, err, sizeof err))) return fail(st, err);
        emit(json_pack("{s:I, s:I}", "id", (json_int_t)x, "ttl", (json_int_t)b));
    } else if (!strcmp(argv[0], "lease-keepalive")) {
        if ((st = etcd_lease_keepalive(c, a, &x, err, sizeof err))) return fail(st, err);
        emit(json_pack("{s:I}", "ttl", (json_int_t)x));
    } else if (!strcmp(argv[0], "lease-ttl")) {
        if ((st = etcd_lease_ttl(c, a, &x, &b, err, sizeof err))) return fail(st, err);
        emit(json_pack("{s:I, s:I}", "ttl", (json_int_t)x, "granted_ttl", (json_int_t)b));
    } else {
        if ((st = etcd_lease_revoke(c, a, err, sizeof err))) return fail(st, err);
        emit(json_pack("{s:I}", "revoked", (json_int_t)a));
    }
    return 0;
}

/* ---- watch ---- */

typedef struct wstate {
    etcd_t *c;
    etcd_range_req_t range; /* what the watch covers, for --resync */
    bool resync;
    int want, got;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} wstate_t;

static void w_events(void *arg, const etcd_event_t *ev, int n) {
    wstate_t *ws = arg;
    for (int i = 0; i < n; i++) {
        json_t *o = kv_json(&ev[i].kv);
        json_object_set_new(o, "type", json_string(ev[i].type == ETCD_EVENT_DELETE ? "DELETE" : "PUT"));
        if (ev[i].has_prev) set_bytes(o, "prev_value", ev[i].prev_kv.value, ev[i].prev_kv.value_len);
        emit(o);
    }
    pthread_mutex_lock(&ws->mu);
    ws->got += n;
    pthread_cond_broadcast(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
}

static int64_t w_compacted(void *arg, int64_t compact_rev) {
    wstate_t *ws = arg;
    emit(json_pack("{s:s, s:I}", "watch", "compacted", "compact_revision", (json_int_t)compact_rev));
    if (!ws->resync) return 0;
    etcd_range_result_t r;
    char err[512];
    if (etcd_range(ws->c, &ws->range, &r, err, sizeof err)) {
        emit(json_pack("{s:s, s:s}", "watch", "resync-failed", "why", err));
        return 0;
    }
    emit(json_pack("{s:s, s:I, s:I}", "watch", "resync", "count", (json_int_t)r.count, "revision",
                   (json_int_t)r.revision));
    int64_t from = r.revision + 1;
    etcd_range_result_free(&r);
    return from;
}

static void w_status(void *arg, bool connected, int64_t rev, const char *why) {
    if (connected) emit(json_pack("{s:s, s:I}", "watch", "connected", "revision", (json_int_t)rev));
    else emit(json_pack("{s:s, s:s, s:I}", "watch", "disconnected", "why", why, "revision", (json_int_t)rev));
}

static int cmd_watch(etcd_t *c, int argc, char **argv) {
    if (argc < 2 || strlen(argv[1]) > 1024) return usage();
    uint8_t end[1100];
    size_t end_len = 0;
    bool has_end = false;
    etcd_watch_req_t req = {.key = argv[1], .key_len = strlen(argv[1])};
    int64_t count = 1, timeout_ms = 10000;
    wstate_t ws = {.c = c};
    for (int i = 2; i < argc; i++) {
        int ro = range_opt(argc, argv, &i, argv[1], end, &end_len, &has_end);
        if (ro < 0) return usage();
        if (ro) continue;
        if (!strcmp(argv[i], "--rev") && i + 1 < argc && parse_i64(argv[i + 1], &req.start_revision)) i++;
        else if (!strcmp(argv[i], "--count") && i + 1 < argc && parse_i64(argv[i + 1], &count)) i++;
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc && parse_i64(argv[i + 1], &timeout_ms)) i++;
        else if (!strcmp(argv[i], "--prev-kv")) req.prev_kv = true;
        else if (!strcmp(argv[i], "--resync")) ws.resync = true;
        else return usage();
    }
    if (has_end) {
        req.range_end = end;
        req.range_end_len = end_len;
    }
    ws.range = (etcd_range_req_t){.key = req.key, .key_len = req.key_len, .range_end = req.range_end,
                                  .range_end_len = req.range_end_len, .count_only = true};
    ws.want = (int)count;
    pthread_mutex_init(&ws.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ws.cv, &ca);
    etcd_watch_cb_t cb = {.events = w_events, .compacted = w_compacted, .status = w_status, .arg = &ws};
    char err[512];
    etcd_watch_t *w = etcd_watch_start(c, &req, &cb, err, sizeof err);
    if (!w) return fail(ETCD_ERR_INVALID, err);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&ws.mu);
    while (ws.got < ws.want)
        if (pthread_cond_timedwait(&ws.cv, &ws.mu, &dl) == ETIMEDOUT) break;
    bool done = ws.got >= ws.want;
    pthread_mutex_unlock(&ws.mu);
    etcd_watch_stop(w);
    pthread_cond_destroy(&ws.cv);
    pthread_mutex_destroy(&ws.mu);
    if (!done) {
        fprintf(stderr, "etcd_cli: watch: %d of %d events before the timeout\n", ws.got, ws.want);
        return 4;
    }
    return 0;
}

/* ---- stress ---- */

typedef struct stress {
    etcd_t *c;
    const char *prefix;
    int rounds, id;
    int64_t lease;
    atomic_int *failed;
    atomic_long *ops;
} stress_t;

static void *stress_main(void *arg) {
    stress_t *s = arg;
    char key[512], val[64], err[512];
    for (int i = 0; i < s->rounds && !atomic_load(s->failed); i++) {
        snprintf(key, sizeof key, "%s/%d/%d", s->prefix, s->id, i);
        snprintf(val, sizeof val, "v%d.%d", s->id, i);
        size_t kl = strlen(key);
        int st = etcd_put(s->c, key, kl, val, strlen(val), 0, NULL, err, sizeof err);
        etcd_range_result_t r;
        if (!st) st = etcd_range(s->c, &(etcd_range_req_t){.key = key, .key_len = kl}, &r, err, sizeof err);
        if (!st) {
            bool same = r.nkvs == 1 && r.kvs[0].value_len == strlen(val) && !memcmp(r.kvs[0].value, val, strlen(val));
            etcd_range_result_free(&r);
            if (!same) {
                snprintf(err, sizeof err, "%.400s: read back something else", key);
                st = ETCD_ERR_PROTO;
            }
        }
        if (!st) {
            etcd_cmp_t cmp = {.target = ETCD_CMP_VERSION, .op = ETCD_CMP_EQUAL, .key = key, .key_len = kl, .number = 1};
            etcd_op_t op = {.kind = ETCD_OP_PUT, .key = key, .key_len = kl, .value = "2", .value_len = 1};
            etcd_txn_result_t t;
            st = etcd_txn(s->c, &cmp, 1, &op, 1, NULL, 0, &t, err, sizeof err);
            if (!st && !t.succeeded) {
                snprintf(err, sizeof err, "%.400s: txn on version 1 failed", key);
                st = ETCD_ERR_PROTO;
            }
            if (!st) etcd_txn_result_free(&t);
        }
        if (!st && i % 10 == 0) st = etcd_lease_keepalive(s->c, s->lease, NULL, err, sizeof err);
        if (st) {
            fprintf(stderr, "etcd_cli: stress thread %d round %d: %s (%s)\n", s->id, i, err, etcd_status_name(st));
            atomic_store(s->failed, 1);
            break;
        }
        atomic_fetch_add(s->ops, 4);
    }
    return NULL;
}

static void stress_events(void *arg, const etcd_event_t *ev, int n) {
    atomic_fetch_add((atomic_long *)arg, n);
}

static int cmd_stress(etcd_t *c, int argc, char **argv) {
    int64_t nthreads, rounds;
    if (argc != 4 || !parse_i64(argv[2], &nthreads) || !parse_i64(argv[3], &rounds) || nthreads < 1 ||
        nthreads > 64 || rounds < 1 || strlen(argv[1]) > 400)
        return usage();
    char err[512];
    int64_t lease;
    int st = etcd_lease_grant(c, 30, 0, &lease, NULL, err, sizeof err);
    if (st) return fail(st, err);
    atomic_long events = 0, ops = 0;
    atomic_int failed = 0;
    uint8_t end[512];
    size_t end_len = etcd_prefix_end(argv[1], strlen(argv[1]), end);
    etcd_watch_req_t wr = {.key = argv[1], .key_len = strlen(argv[1]), .range_end = end, .range_end_len = end_len};
    /* from the current revision on: every put of the run is after it */
    etcd_range_result_t now;
    if ((st = etcd_range(c, &(etcd_range_req_t){.key = argv[1], .key_len = strlen(argv[1]), .count_only = true},
                         &now, err, sizeof err)))
        return fail(st, err);
    wr.start_revision = now.revision + 1;
    etcd_range_result_free(&now);
    etcd_watch_cb_t cb = {.events = stress_events, .arg = &events};
    etcd_watch_t *w = etcd_watch_start(c, &wr, &cb, err, sizeof err);
    if (!w) return fail(ETCD_ERR_INVALID, err);
    pthread_t th[64];
    stress_t ss[64];
    for (int t = 0; t < nthreads; t++) {
        ss[t] = (stress_t){.c = c, .prefix = argv[1], .rounds = (int)rounds, .id = t, .lease = lease,
                           .failed = &failed, .ops = &ops};
        pthread_create(&th[t], NULL, stress_main, &ss[t]);
    }
    for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
    long want = nthreads * rounds * 2; /* a put and a txn put per round */
    for (int i = 0; i < 300 && !failed && atomic_load(&events) < want; i++) nanosleep(&(struct timespec){0, 50000000}, NULL);
    etcd_watch_stop(w);
    etcd_lease_revoke(c, lease, err, sizeof err);
    if (failed) return 1;
    if (atomic_load(&events) != want) {
        fprintf(stderr, "etcd_cli: stress: the watch saw %ld of %ld puts\n", (long)atomic_load(&events), want);
        return 1;
    }
    emit(json_pack("{s:b, s:I, s:I}", "ok", 1, "ops", (json_int_t)atomic_load(&ops), "watch_events",
                   (json_int_t)atomic_load(&events)));
    return 0;
}

static int cmd_stats(etcd_t *c) {
    etcd_stats_t s;
    etcd_get_stats(c, &s);
    emit(json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "requests", (json_int_t)s.requests, "retries",
                   (json_int_t)s.retries, "failovers", (json_int_t)s.failovers, "auths", (json_int_t)s.auths,
                   "errors", (json_int_t)s.errors, "watch_reconnects", (json_int_t)s.watch_reconnects,
                   "watch_events", (json_int_t)s.watch_events, "endpoint", etcd_current_endpoint(c)));
    return 0;
}

static int run_one(etcd_t *c, int argc, char **argv) {
    const char *cmd = argv[0];
    if (!strcmp(cmd, "put")) return cmd_put(c, argc, argv);
    if (!strcmp(cmd, "get")) return cmd_get(c, argc, argv);
    if (!strcmp(cmd, "del")) return cmd_del(c, argc, argv);
    if (!strcmp(cmd, "txn")) return cmd_txn(c, argc, argv);
    if (!strncmp(cmd, "lease-", 6) &&
        (!strcmp(cmd, "lease-grant") || !strcmp(cmd, "lease-keepalive") || !strcmp(cmd, "lease-ttl") ||
         !strcmp(cmd, "lease-revoke")))
        return cmd_lease(c, argc, argv);
    if (!strcmp(cmd, "watch")) return cmd_watch(c, argc, argv);
    if (!strcmp(cmd, "stats")) return cmd_stats(c);
    if (!strcmp(cmd, "stress")) return cmd_stress(c, argc, argv);
    if (!strcmp(cmd, "sleep")) {
        int64_t ms;
        if (argc != 2 || !parse_i64(argv[1], &ms) || ms < 0) return usage();
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    return usage();
}

int main(int argc, char **argv) {
    log_init("etcd-cli");
    if (argc < 2) return usage();
    etcd_config_t cfg;
    if (!etcd_config_from_env(&cfg)) {
        fprintf(stderr, "etcd_cli: set KAFSCALE_ETCD_ENDPOINTS\n");
        return 2;
    }
    char err[512];
    etcd_t *c = etcd_open(&cfg, err, sizeof err);
    explicit_bzero(cfg.password, sizeof cfg.password);
    if (!c) {
        fprintf(stderr, "etcd_cli: %s\n", err);
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc && rc == 0;) {
        int j = i;
        while (j < argc && strcmp(argv[j], ",")) j++;
        if (j == i) {
            rc = usage();
            break;
        }
        rc = run_one(c, j - i, argv + i);
        i = j + 1;
    }
    etcd_close(c);
    return rc;
}
