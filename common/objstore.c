/* objstore.c - the object-store front: configuration from the environment,
 * key rules, dispatch to the backend (objstore_file.c / objstore_s3.c) and
 * the counters.
 *
 * Every operation goes through objstore_run(): it clears the results, refuses
 * bad keys without any I/O, hands the rest to the backend and counts what
 * came back. Counters are updated with atomic adds, so any number of threads
 * may share one handle; the backends keep their own thread-safety (see their
 * file comments).
 */
#include "objstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#define OBJSTORE_MAGIC 0x0b57043eu

struct objstore {
    uint32_t magic;
    const objstore_backend_ops_t *ops;
    void *impl;
    objstore_config_t cfg;
    objstore_stats_t stats; /* updated with __atomic_fetch_add only */
};

/* ---- configuration ---- */

void objstore_config_defaults(objstore_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->region, sizeof cfg->region, "us-east-1");
    cfg->file_direct = true;
    cfg->max_inflight = 16;
    cfg->max_retries = 5;
    cfg->timeout_ms = 30000;
    cfg->backoff_ms = 100;
    cfg->backoff_max_ms = 5000;
}

static void die_bad(const char *name, const char *value, const char *why) {
    fprintf(stderr, "kafscale: bad value for %s: '%s' (%s)\n", name, value, why);
    exit(2);
}

/* Copies an env var into a fixed field; too long = bad value. Secrets are
 * never echoed back. */
static void env_copy(char *dst, size_t dstsz, const char *name, const char *dflt, bool secret) {
    const char *v = env_str(name, dflt);
    if (strlen(v) >= dstsz) {
        char why[64];
        snprintf(why, sizeof why, "longer than %zu bytes", dstsz - 1);
        die_bad(name, secret ? "(hidden)" : v, why);
    }
    snprintf(dst, dstsz, "%s", v);
}

static void check_endpoint(const char *name, char *ep) {
    if (!*ep) return;
    if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))
        die_bad(name, ep, "expected an http:// or https:// URL");
    const char *host = ep + (ep[4] == 's' ? 8 : 7);
    if (!*host || *host == '/') die_bad(name, ep, "no host");
    const char *slash = strchr(host, '/');
    /* A path after the host is not supported (S3 paths start at the bucket). */
    if (slash && slash[1]) die_bad(name, ep, "no path allowed after the host");
    if (slash) *(char *)slash = '\0'; /* drop a trailing '/' */
    if (strpbrk(host, "?#@ ")) die_bad(name, ep, "unexpected character in the host");
}

static void check_region(const char *name, const char *r) {
    if (!*r) die_bad(name, r, "empty");
    for (const char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            die_bad(name, r, "expected a region name like us-east-1");
}

static void check_bucket(const char *name, const char *b) {
    for (const char *p = b; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '.' || *p == '_'))
            die_bad(name, b, "bucket names use letters, digits, '-', '.' and '_' only");
}

void objstore_config_from_env(objstore_config_t *cfg, const char *data_dir) {
    objstore_config_defaults(cfg);
    int n = snprintf(cfg->file_root, sizeof cfg->file_root, "%s/objects", data_dir ? data_dir : ".");
    if (n < 0 || (size_t)n >= sizeof cfg->file_root) die_bad("KAFSCALE_DATA_DIR", data_dir, "path too long");
    cfg->file_direct = env_bool("KAFSCALE_FILE_STORE_DIRECT", true);

    env_copy(cfg->bucket, sizeof cfg->bucket, "KAFSCALE_S3_BUCKET", "", false);
    check_bucket("KAFSCALE_S3_BUCKET", cfg->bucket);
    env_copy(cfg->region, sizeof cfg->region, "KAFSCALE_S3_REGION", "us-east-1", false);
    check_region("KAFSCALE_S3_REGION", cfg->region);
    env_copy(cfg->endpoint, sizeof cfg->endpoint, "KAFSCALE_S3_ENDPOINT", "", false);
    check_endpoint("KAFSCALE_S3_ENDPOINT", cfg->endpoint);
    cfg->path_style = env_bool("KAFSCALE_S3_PATH_STYLE", cfg->endpoint[0] != '\0');

    env_copy(cfg->read_bucket, sizeof cfg->read_bucket, "KAFSCALE_S3_READ_BUCKET", "", false);
    check_bucket("KAFSCALE_S3_READ_BUCKET", cfg->read_bucket);
    env_copy(cfg->read_region, sizeof cfg->read_region, "KAFSCALE_S3_READ_REGION", cfg->region, false);
    check_region("KAFSCALE_S3_READ_REGION", cfg->read_region);
    env_copy(cfg->read_endpoint, sizeof cfg->read_endpoint, "KAFSCALE_S3_READ_ENDPOINT", "", false);
    check_endpoint("KAFSCALE_S3_READ_ENDPOINT", cfg->read_endpoint);

    env_copy(cfg->kms_arn, sizeof cfg->kms_arn, "KAFSCALE_S3_KMS_ARN", "", false);
    for (const char *p = cfg->kms_arn; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == 0x7f) die_bad("KAFSCALE_S3_KMS_ARN", cfg->kms_arn, "no spaces or control characters");

    env_copy(cfg->access_key, sizeof cfg->access_key, "AWS_ACCESS_KEY_ID", "", true);
    env_copy(cfg->secret_key, sizeof cfg->secret_key, "AWS_SECRET_ACCESS_KEY", "", true);
    env_copy(cfg->session_token, sizeof cfg->session_token, "AWS_SESSION_TOKEN", "", true);
    if (cfg->access_key[0] && !cfg->secret_key[0])
        die_bad("AWS_SECRET_ACCESS_KEY", "", "must be set when AWS_ACCESS_KEY_ID is");
    if (!cfg->access_key[0] && cfg->secret_key[0])
        die_bad("AWS_ACCESS_KEY_ID", "", "must be set when AWS_SECRET_ACCESS_KEY is");
    /* Header values: a CR or LF would let a value inject headers. */
    if (strpbrk(cfg->session_token, "\r\n")) die_bad("AWS_SESSION_TOKEN", "(hidden)", "contains a line break");

    cfg->max_inflight = (int)env_int("KAFSCALE_S3_MAX_INFLIGHT", 16, 1, 1024);
    cfg->max_retries = (int)env_int("KAFSCALE_S3_MAX_RETRIES", 5, 0, 100);
    cfg->timeout_ms = (int)env_int("KAFSCALE_S3_TIMEOUT_MS", 30000, 100, 3600 * 1000);
    cfg->backoff_ms = (int)env_int("KAFSCALE_S3_BACKOFF_MS", 100, 1, 600 * 1000);
    cfg->backoff_max_ms = (int)env_int("KAFSCALE_S3_BACKOFF_MAX_MS", 5000, 1, 3600 * 1000);
    if (cfg->backoff_max_ms < cfg->backoff_ms) {
        char v[32];
        snprintf(v, sizeof v, "%d", cfg->backoff_max_ms);
        die_bad("KAFSCALE_S3_BACKOFF_MAX_MS", v, "must be >= KAFSCALE_S3_BACKOFF_MS");
    }
}

/* ---- keys ---- */

bool objstore_key_valid(const char *key) {
    if (!key || !*key || key[0] == '/') return false;
    size_t len = strlen(key);
    if (len > OBJSTORE_KEY_MAX || key[len - 1] == '/') return false;
    const char *seg = key;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0) return false;
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.')) return false;
        if (n >= 7 && !memcmp(seg, ".kstmp.", 7)) return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)seg[i] < 0x20 || seg[i] == 0x7f) return false;
        if (!end) break;
        seg = end + 1;
    }
    return true;
}

/* ---- open / close ---- */

objstore_t *objstore_open(const objstore_config_t *cfg, char *err, size_t errsz) {
    objstore_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (s->cfg.max_inflight < 1) s->cfg.max_inflight = 1;
    if (s->cfg.max_retries < 0) s->cfg.max_retries = 0;
    if (s->cfg.timeout_ms < 1) s->cfg.timeout_ms = 30000;
    if (s->cfg.backoff_ms < 1) s->cfg.backoff_ms = 100;
    if (s->cfg.backoff_max_ms < s->cfg.backoff_ms) s->cfg.backoff_max_ms = s->cfg.backoff_ms;
    if (!s->cfg.read_region[0]) snprintf(s->cfg.read_region, sizeof s->cfg.read_region, "%s", s->cfg.region);
    s->ops = s->cfg.bucket[0] ? &objstore_s3_ops : &objstore_file_ops;
    s->impl = s->ops->open(&s->cfg, err, errsz);
    if (!s->impl) {
        free(s);
        return NULL;
    }
    s->magic = OBJSTORE_MAGIC;
    return s;
}

void objstore_close(objstore_t *s) {
    if (!s) return;
    KS_ASSERT(s->magic == OBJSTORE_MAGIC);
    s->ops->close(s->impl);
    explicit_bzero(&s->cfg, sizeof s->cfg); /* the secret key */
    s->magic = 0;
    free(s);
}

const char *objstore_backend(const objstore_t *s) {
    KS_ASSERT(s && s->magic == OBJSTORE_MAGIC);
    return s->ops->name;
}

void objstore_get_stats(objstore_t *s, objstore_stats_t *out) {
    KS_ASSERT(s && s->magic == OBJSTORE_MAGIC);
    uint64_t *dst = (uint64_t *)out;
    const uint64_t *src = (const uint64_t *)&s->stats;
    for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++) dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

#define STAT_ADD(s, field, n) __atomic_fetch_add(&(s)->stats.field, (uint64_t)(n), __ATOMIC_RELAXED)

/* ---- operations ---- */

static void count_op(objstore_t *s, const objstore_op_t *op) {
    switch (op->kind) {
    case OBJ_PUT:
        STAT_ADD(s, puts, 1);
        if (op->status == OBJ_OK)
            for (int i = 0; i < op->iovcnt; i++) STAT_ADD(s, bytes_put, op->iov[i].iov_len);
        break;
    case OBJ_GET:
        STAT_ADD(s, gets, 1);
        if (op->status == OBJ_OK) STAT_ADD(s, bytes_got, op->out_len);
        break;
    case OBJ_HEAD: STAT_ADD(s, heads, 1); break;
    case OBJ_DELETE: STAT_ADD(s, deletes, 1); break;
    }
    if (op->attempts > 1) STAT_ADD(s, retries, op->attempts - 1);
    if (op->status == OBJ_ERROR) STAT_ADD(s, errors, 1);
    if (op->status == OBJ_NOT_FOUND) STAT_ADD(s, not_found, 1);
}

static const char *kind_name(objstore_op_kind_t k) {
    static const char *names[] = {"PUT", "GET", "HEAD", "DELETE"};
    return (unsigned)k < 4 ? names[k] : "?";
}

int objstore_run(objstore_t *s, objstore_op_t *ops, int n) {
    KS_ASSERT(s && s->magic == OBJSTORE_MAGIC);
    KS_ASSERT(n >= 0 && (n == 0 || ops));
    if (n == 0) return 0;
    objstore_op_t *stackv[16];
    objstore_op_t **todo = n <= 16 ? stackv : malloc((size_t)n * sizeof *todo);
    int ntodo = 0;
    for (int i = 0; i < n; i++) {
        objstore_op_t *op = &ops[i];
        KS_ASSERT((unsigned)op->kind <= OBJ_DELETE);
        KS_ASSERT(op->kind != OBJ_PUT || op->iovcnt == 0 || (op->iovcnt > 0 && op->iov));
        op->out = NULL;
        op->out_len = 0;
        op->status = OBJ_ERROR;
        op->http_code = 0;
        op->attempts = 0;
        op->err[0] = '\0';
        if (!objstore_key_valid(op->key)) {
            snprintf(op->err, sizeof op->err, "%s: invalid key '%.180s'", kind_name(op->kind), op->key ? op->key : "(null)");
            continue;
        }
        if (todo) todo[ntodo++] = op;
        else snprintf(op->err, sizeof op->err, "%s %.180s: out of memory", kind_name(op->kind), op->key);
    }
    if (ntodo) s->ops->run(s->impl, todo, ntodo);
    if (todo != stackv) free(todo);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        count_op(s, &ops[i]);
        if (ops[i].status == OBJ_ERROR) failed++;
    }
    return failed;
}

static void copy_err(char *err, size_t errsz, const objstore_op_t *op) {
    if (!err || !errsz) return;
    if (op->status == OBJ_NOT_FOUND) snprintf(err, errsz, "%s %.200s: not found", kind_name(op->kind), op->key);
    else if (op->status == OBJ_ERROR) snprintf(err, errsz, "%s", op->err);
    else err[0] = '\0';
}

int objstore_put(objstore_t *s, const char *key, const struct iovec *iov, int iovcnt, char *err, size_t errsz) {
    objstore_op_t op = {.kind = OBJ_PUT, .key = key, .iov = iov, .iovcnt = iovcnt};
    objstore_run(s, &op, 1);
    copy_err(err, errsz, &op);
    return op.status;
}

int objstore_get(objstore_t *s, const char *key, uint64_t offset, uint64_t length, uint8_t **out, size_t *out_len,
                 char *err, size_t errsz) {
    objstore_op_t op = {.kind = OBJ_GET, .key = key, .offset = offset, .length = length};
    objstore_run(s, &op, 1);
    copy_err(err, errsz, &op);
    if (op.status != OBJ_OK) {
        free(op.out);
        op.out = NULL;
        op.out_len = 0;
    }
    *out = op.out;
    if (out_len) *out_len = op.out_len;
    return op.status;
}

int objstore_head(objstore_t *s, const char *key, uint64_t *size, char *err, size_t errsz) {
    objstore_op_t op = {.kind = OBJ_HEAD, .key = key};
    objstore_run(s, &op, 1);
    copy_err(err, errsz, &op);
    if (size) *size = op.status == OBJ_OK ? op.out_len : 0;
    return op.status;
}

int objstore_delete(objstore_t *s, const char *key, char *err, size_t errsz) {
    objstore_op_t op = {.kind = OBJ_DELETE, .key = key};
    objstore_run(s, &op, 1);
    copy_err(err, errsz, &op);
    return op.status;
}

/* A prefix may end anywhere (mid-segment, or with '/'), but what it has of
 * whole segments must obey the key rules, so a walk never leaves the root. */
static bool prefix_valid(const char *prefix) {
    if (!*prefix) return true;
    if (strlen(prefix) > OBJSTORE_KEY_MAX) return false;
    char tmp[OBJSTORE_KEY_MAX + 2];
    snprintf(tmp, sizeof tmp, "%s", prefix);
    size_t len = strlen(tmp);
    if (tmp[len - 1] == '/') tmp[len - 1] = '\0';
    else {
        /* A trailing partial segment: "." or ".." may be the start of a
         * longer name ("..x"), so only the whole segments before it count,
         * plus a stand-in that makes the partial one valid. */
        char *last = strrchr(tmp, '/');
        char *part = last ? last + 1 : tmp;
        for (char *p = part; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) return false;
        if (!last) return true;
        *last = '\0';
    }
    return objstore_key_valid(tmp);
}

int objstore_list(objstore_t *s, const char *prefix, objstore_list_fn fn, void *arg, char *err, size_t errsz) {
    KS_ASSERT(s && s->magic == OBJSTORE_MAGIC);
    KS_ASSERT(fn);
    char dummy[8];
    if (!err || !errsz) {
        err = dummy;
        errsz = sizeof dummy;
    }
    err[0] = '\0';
    if (!prefix) prefix = "";
    STAT_ADD(s, lists, 1);
    if (!prefix_valid(prefix)) {
        snprintf(err, errsz, "LIST: invalid prefix '%.200s'", prefix);
        STAT_ADD(s, errors, 1);
        return OBJ_ERROR;
    }
    int rc = s->ops->list(s->impl, prefix, fn, arg, err, errsz);
    if (rc != OBJ_OK) STAT_ADD(s, errors, 1);
    return rc;
}

int objstore_clean_temp(objstore_t *s, int64_t min_age_ms, char *err, size_t errsz) {
    KS_ASSERT(s && s->magic == OBJSTORE_MAGIC);
    char dummy[8];
    if (!err || !errsz) {
        err = dummy;
        errsz = sizeof dummy;
    }
    err[0] = '\0';
    if (!s->ops->clean_temp) return 0;
    int n = s->ops->clean_temp(s->impl, min_age_ms, err, errsz);
    if (n < 0) log_warn("object store: cleaning temp files of interrupted uploads: %s", err);
    else if (n > 0)
        log_info("object store: removed %d temp file(s) of interrupted uploads (older than %lld ms)", n,
                 (long long)min_age_ms);
    return n;
}
