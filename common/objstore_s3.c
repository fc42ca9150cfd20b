/* objstore_s3.c - the S3 backend: any S3 API through libcurl.
 *
 * Signing: AWS SigV4, computed here (objstore_sigv4_authorization: HMAC-SHA256
 * from libcrypto), not with curl's CURLOPT_AWS_SIGV4. Checked on curl 7.88.1
 * (Debian 12): curl does use our x-amz-content-sha256 value, but it sorts the
 * canonical headers as whole "name:value" lines, so with SSE-KMS
 * "x-amz-server-side-encryption-aws-kms-key-id" comes before
 * "x-amz-server-side-encryption" (':' > '-') and AWS refuses the signature;
 * it also signs a header-removal line ("Expect:") it never sends. So every
 * request carries headers we choose and sign ourselves: Host (set
 * explicitly, so what is signed is what is sent), Range (ranged GETs),
 * x-amz-content-sha256 (hex SHA-256 of the body, streamed over the iov
 * pieces; of "" without a body), x-amz-date, x-amz-security-token (session
 * token) and, on PUT, x-amz-server-side-encryption: aws:kms with
 * x-amz-server-side-encryption-aws-kms-key-id. Path and query are built in
 * canonical form by objstore_s3_url (key percent-encoded with '/' kept,
 * query parameters sorted), so the canonical request uses them as they are.
 * test/e2e/test_s3_sigv4.py recomputes every signature with botocore; the
 * unit tests check AWS's published example. Without an access key requests
 * go unsigned (public buckets, local test servers).
 *
 * Transfers: one engine (engine_run) drives a set of transfers through a
 * curl multi handle, at most max_inflight at once, and schedules retries
 * (exponential backoff with "equal jitter") for connection errors, timeouts,
 * 5xx (503 SlowDown included), 429, 408 and 400 RequestTimeout; every other
 * 4xx is final, 404 is OBJ_NOT_FOUND. With a read replica, GET and HEAD make
 * one attempt there first and go to the primary (with all its retries) on
 * 404 or any failure.
 *
 * Threads and connection reuse: the multi handle, with its connection cache,
 * lives in a "context" together with max_inflight easy handles. A store keeps
 * a pool of idle contexts under a mutex; a call takes one (or makes a new one
 * when all are busy), uses it alone, and puts it back, so connections are
 * reused by later calls and no curl handle is ever used by two threads at
 * once. The DNS cache and TLS sessions are shared by all contexts through a
 * CURLSH with per-data mutexes (curl's connection-cache sharing is not used:
 * it is documented as unsafe across threads in this curl).
 *
 * Credentials: the secret key only ever feeds the HMAC; the access key id
 * and the session token go only into request headers. Error strings carry
 * the operation, the key, the HTTP status and S3's <Code>/<Message> (never
 * the rest of an error document, which for SignatureDoesNotMatch holds the
 * canonical request with the token), or curl's message.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "objstore.h"

#define S3_MAGIC 0x53330bbbu
#define S3_IDLE_CTX_MAX 16
#define S3_ERRBODY_MAX 2048
#define S3_LIST_BODY_MAX (64u << 20)
#define S3_URL_MAX (3 * OBJSTORE_KEY_MAX + 2048)
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- pure helpers (unit-tested) ---- */

void objstore_sha256_hex(const struct iovec *iov, int iovcnt, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    KS_ASSERT(c != NULL);
    KS_ASSERT(EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1);
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len) KS_ASSERT(EVP_DigestUpdate(c, iov[i].iov_base, iov[i].iov_len) == 1);
    KS_ASSERT(EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 32);
    EVP_MD_CTX_free(c);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

int objstore_uri_encode(char *out, size_t outsz, const char *s, bool keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        if (keep) {
            if (o + 1 >= outsz) return -1;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outsz) return -1;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= outsz) return -1;
    out[o] = '\0';
    return (int)o;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool bad;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s, size_t n) {
    if (b->bad || b->len + n >= b->cap) {
        b->bad = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}
static void sb_str(sbuf_t *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_enc(sbuf_t *b, const char *s, bool keep_slash) {
    if (b->bad) return;
    int n = objstore_uri_encode(b->p + b->len, b->cap - b->len, s, keep_slash);
    if (n < 0) b->bad = true;
    else b->len += (size_t)n;
}

int objstore_s3_url(char *out, size_t outsz, const char *endpoint, const char *bucket, const char *region,
                    bool path_style, const char *key, const char *prefix, const char *token) {
    const char *scheme, *host;
    size_t hostlen;
    char awshost[128];
    if (!outsz) return -1;
    out[0] = '\0';
    if (endpoint && *endpoint) {
        if (!strncmp(endpoint, "https://", 8)) scheme = "https", host = endpoint + 8;
        else if (!strncmp(endpoint, "http://", 7)) scheme = "http", host = endpoint + 7;
        else return -1;
        hostlen = strcspn(host, "/?#");
        if (!hostlen) return -1;
    } else {
        snprintf(awshost, sizeof awshost, "s3.%s.amazonaws.com", region && *region ? region : "us-east-1");
        scheme = "https";
        host = awshost;
        hostlen = strlen(awshost);
    }
    sbuf_t b = {.p = out, .cap = outsz};
    sb_str(&b, scheme);
    sb_str(&b, "://");
    if (!path_style) {
        sb_str(&b, bucket);
        sb_str(&b, ".");
    }
    sb_add(&b, host, hostlen);
    if (path_style) {
        sb_str(&b, "/");
        sb_enc(&b, bucket, false);
    }
    if (key) {
        sb_str(&b, "/");
        sb_enc(&b, key, true);
    } else {
        /* ListObjectsV2; parameters in SigV4 canonical (sorted) order. */
        sb_str(&b, path_style ? "?" : "/?");
        if (token && *token) {
            sb_str(&b, "continuation-token=");
            sb_enc(&b, token, false);
            sb_str(&b, "&");
        }
        sb_str(&b, "list-type=2");
        if (prefix && *prefix) {
            sb_str(&b, "&prefix=");
            sb_enc(&b, prefix, false);
        }
    }
    return b.bad ? -1 : 0;
}

static int hdr_cmp(const void *a, const void *b) {
    return strcmp(((const objstore_sigv4_header_t *)a)->name, ((const objstore_sigv4_header_t *)b)->name);
}

static void hmac256(const void *key, size_t keylen, const char *msg, unsigned char out[32]) {
    unsigned int len = 0;
    KS_ASSERT(HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &len) && len == 32);
}

/* Appends value with leading/trailing blanks trimmed and inner runs of
 * blanks collapsed to one space (SigV4's Trimall). */
static void sb_trimall(sbuf_t *b, const char *v) {
    while (*v == ' ' || *v == '\t') v++;
    bool space = false;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = true;
            continue;
        }
        if (space) sb_add(b, " ", 1);
        space = false;
        sb_add(b, v, 1);
    }
}

int objstore_sigv4_authorization(char *out, size_t outsz, const char *method, const char *canonical_uri,
                                 const char *canonical_query, const objstore_sigv4_header_t *hdrs, int nhdrs,
                                 const char *payload_hash, const char *amz_date, const char *region,
                                 const char *access_key, const char *secret_key) {
    if (nhdrs < 1 || nhdrs > 16 || strlen(amz_date) != 16) return -1;
    objstore_sigv4_header_t h[16];
    memcpy(h, hdrs, (size_t)nhdrs * sizeof *h);
    qsort(h, (size_t)nhdrs, sizeof *h, hdr_cmp);
    size_t cap = strlen(method) + strlen(canonical_uri) + strlen(canonical_query) + strlen(payload_hash) + 64;
    for (int i = 0; i < nhdrs; i++) cap += 2 * strlen(h[i].name) + strlen(h[i].value) + 4;
    char *cr = malloc(cap), signed_hdrs[512];
    if (!cr) return -1;
    /* CanonicalRequest */
    sbuf_t b = {.p = cr, .cap = cap};
    sbuf_t sh = {.p = signed_hdrs, .cap = sizeof signed_hdrs};
    sb_str(&b, method);
    sb_str(&b, "\n");
    sb_str(&b, canonical_uri);
    sb_str(&b, "\n");
    sb_str(&b, canonical_query);
    sb_str(&b, "\n");
    for (int i = 0; i < nhdrs; i++) {
        sb_str(&b, h[i].name);
        sb_str(&b, ":");
        sb_trimall(&b, h[i].value);
        sb_str(&b, "\n");
        if (i) sb_str(&sh, ";");
        sb_str(&sh, h[i].name);
    }
    sb_str(&b, "\n");
    sb_str(&b, signed_hdrs);
    sb_str(&b, "\n");
    sb_str(&b, payload_hash);
    if (b.bad || sh.bad) {
        free(cr);
        return -1;
    }
    char cr_hash[65];
    struct iovec v = {cr, b.len};
    objstore_sha256_hex(&v, 1, cr_hash);
    free(cr);
    /* StringToSign */
    char date[9], scope[128], sts[512];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    if (snprintf(scope, sizeof scope, "%s/%s/s3/aws4_request", date, region) >= (int)sizeof scope) return -1;
    if (snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, cr_hash) >= (int)sizeof sts)
        return -1;
    /* signing key = HMAC chain over "AWS4"+secret, date, region, "s3", "aws4_request" */
    size_t sl = strlen(secret_key);
    char *k0 = malloc(sl + 5);
    if (!k0) return -1;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret_key, sl + 1);
    unsigned char k[32], sig[32];
    hmac256(k0, sl + 4, date, k);
    memset(k0, 0, sl + 4);
    free(k0);
    hmac256(k, 32, region, k);
    hmac256(k, 32, "s3", k);
    hmac256(k, 32, "aws4_request", k);
    hmac256(k, 32, sts, sig);
    memset(k, 0, sizeof k);
    char sighex[65];
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        sighex[2 * i] = hex[sig[i] >> 4];
        sighex[2 * i + 1] = hex[sig[i] & 15];
    }
    sighex[64] = '\0';
    int n = snprintf(out, outsz, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", access_key, scope,
                     signed_hdrs, sighex);
    return n > 0 && (size_t)n < outsz ? 0 : -1;
}

static void put_utf8(char *out, size_t *o, uint32_t cp) {
    if (cp < 0x80) out[(*o)++] = (char)cp;
    else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

int objstore_xml_decode(char *out, size_t outsz, const char *src, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (o + 4 >= outsz) return -1;
        char c = src[i];
        if (c == '\0') return -1;
        if (c != '&') {
            out[o++] = c;
            i++;
            continue;
        }
        size_t rest = len - i;
        const char *semi = memchr(src + i, ';', rest < 12 ? rest : 12);
        if (!semi) return -1;
        const char *e = src + i + 1;
        size_t n = (size_t)(semi - e);
        uint32_t cp;
        if (n == 3 && !memcmp(e, "amp", 3)) cp = '&';
        else if (n == 2 && !memcmp(e, "lt", 2)) cp = '<';
        else if (n == 2 && !memcmp(e, "gt", 2)) cp = '>';
        else if (n == 4 && !memcmp(e, "quot", 4)) cp = '"';
        else if (n == 4 && !memcmp(e, "apos", 4)) cp = '\'';
        else if (n >= 2 && e[0] == '#') {
            bool hexa = e[1] == 'x' || e[1] == 'X';
            size_t k = hexa ? 2 : 1;
            if (k >= n) return -1;
            cp = 0;
            for (; k < n; k++) {
                char d = e[k];
                uint32_t v;
                if (d >= '0' && d <= '9') v = (uint32_t)(d - '0');
                else if (hexa && d >= 'a' && d <= 'f') v = (uint32_t)(d - 'a' + 10);
                else if (hexa && d >= 'A' && d <= 'F') v = (uint32_t)(d - 'A' + 10);
                else return -1;
                cp = cp * (hexa ? 16 : 10) + v;
                if (cp > 0x10FFFF) return -1;
            }
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
        } else return -1;
        put_utf8(out, &o, cp);
        i += n + 2;
    }
    if (o >= outsz) return -1;
    out[o] = '\0';
    return (int)o;
}

/* Finds <name>value</name> in [p, end); element text never holds a '<'. */
static bool xml_elem(const char *p, const char *end, const char *name, const char **vs, const char **ve) {
    char open[64], close[64];
    int ol = snprintf(open, sizeof open, "<%s>", name), cl = snprintf(close, sizeof close, "</%s>", name);
    const char *a = memmem(p, (size_t)(end - p), open, (size_t)ol);
    if (!a) return false;
    a += ol;
    const char *b = memmem(a, (size_t)(end - a), close, (size_t)cl);
    if (!b) return false;
    *vs = a;
    *ve = b;
    return true;
}

int objstore_s3_parse_list(const char *xml, size_t len, objstore_list_fn fn, void *arg, bool *truncated,
                           char *token, size_t tokcap, bool *stopped, char *err, size_t errsz) {
    const char *end = xml + len, *vs, *ve;
    *truncated = false;
    *stopped = false;
    if (tokcap) token[0] = '\0';
    if (!memmem(xml, len, "<ListBucketResult", 17)) {
        snprintf(err, errsz, "LIST: answer is not a ListBucketResult");
        return -1;
    }
    /* Top-level fields: Contents never holds these names. */
    if (xml_elem(xml, end, "IsTruncated", &vs, &ve)) {
        if (ve - vs == 4 && !memcmp(vs, "true", 4)) *truncated = true;
        else if (!(ve - vs == 5 && !memcmp(vs, "false", 5))) {
            snprintf(err, errsz, "LIST: bad IsTruncated");
            return -1;
        }
    }
    if (xml_elem(xml, end, "NextContinuationToken", &vs, &ve) &&
        objstore_xml_decode(token, tokcap, vs, (size_t)(ve - vs)) < 0) {
        snprintf(err, errsz, "LIST: bad NextContinuationToken");
        return -1;
    }
    char key[4 * OBJSTORE_KEY_MAX + 8];
    const char *p = xml;
    for (;;) {
        const char *c = memmem(p, (size_t)(end - p), "<Contents>", 10);
        if (!c) break;
        const char *ce = memmem(c, (size_t)(end - c), "</Contents>", 11);
        if (!ce) {
            snprintf(err, errsz, "LIST: unterminated Contents");
            return -1;
        }
        if (!xml_elem(c, ce, "Key", &vs, &ve) || objstore_xml_decode(key, sizeof key, vs, (size_t)(ve - vs)) <= 0) {
            snprintf(err, errsz, "LIST: Contents without a valid Key");
            return -1;
        }
        if (!xml_elem(c, ce, "Size", &vs, &ve) || ve == vs || ve - vs > 20) {
            snprintf(err, errsz, "LIST: Contents without a valid Size");
            return -1;
        }
        uint64_t size = 0;
        for (const char *q = vs; q < ve; q++) {
            if (*q < '0' || *q > '9' || size > (UINT64_MAX - (uint64_t)(*q - '0')) / 10) {
                snprintf(err, errsz, "LIST: bad Size");
                return -1;
            }
            size = size * 10 + (uint64_t)(*q - '0');
        }
        if (fn(key, size, arg)) {
            *stopped = true;
            return 0;
        }
        p = ce + 11;
    }
    return 0;
}

/* ---- the store ---- */

typedef struct s3_target {
    char bucket[256], region[64], endpoint[512];
    bool path_style;
} s3_target_t;

typedef enum { XK_PUT = OBJ_PUT, XK_GET = OBJ_GET, XK_HEAD = OBJ_HEAD, XK_DELETE = OBJ_DELETE, XK_LIST } xkind_t;

/* One operation's state across attempts (small: thousands may be queued). */
typedef struct s3_xfer {
    objstore_op_t *op;
    xkind_t kind;
    const char *list_prefix, *list_token;
    bool on_replica;
    int tries;          /* attempts against the current target */
    uint64_t ready_at;  /* monotonic ms: not before this (retry backoff) */
    char sha[65];       /* PUT payload hash, computed at the first attempt */
    uint8_t *rbuf;      /* GET/LIST body (malloc'd unless op->buf) */
    size_t rlen, rcap;
} s3_xfer_t;

/* One running attempt: an easy handle and its scratch buffers. */
typedef struct s3_slot {
    CURL *easy;
    s3_xfer_t *x;
    struct curl_slist *hdrs;
    int iov_i;          /* PUT read position */
    size_t iov_off;
    bool checked;       /* first body byte seen: status known */
    bool to_body;       /* 2xx: body is the object; else an error document */
    bool overflow;      /* the body did not fit: abort, final */
    uint64_t skip, limit;
    char ebody[S3_ERRBODY_MAX];
    size_t elen;
    char curl_err[CURL_ERROR_SIZE];
} s3_slot_t;

typedef struct s3_ctx {
    CURLM *multi;
    s3_slot_t *slots;
    int *free_slots, nfree, nslots;
    struct s3_ctx *next;
} s3_ctx_t;

typedef struct s3_store {
    uint32_t magic;
    objstore_config_t cfg;
    s3_target_t primary, replica;
    bool has_replica, sign;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_mu;
    s3_ctx_t *idle;
    int nidle, nactive;
} s3_store_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rand64(void) {
    static __thread uint64_t r;
    if (!r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&r ^ 0x9E3779B97F4A7C15ull;
    }
    r ^= r << 13;
    r ^= r >> 7;
    r ^= r << 17;
    return r;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access acc, void *arg) {
    s3_store_t *st = arg;
    pthread_mutex_lock(&st->share_mu[(unsigned)data < CURL_LOCK_DATA_LAST ? data : 0]);
}
static void share_unlock(CURL *h, curl_lock_data data, void *arg) {
    s3_store_t *st = arg;
    pthread_mutex_unlock(&st->share_mu[(unsigned)data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static void target_init(s3_target_t *t, const char *bucket, const char *region, const char *endpoint, bool path_style) {
    snprintf(t->bucket, sizeof t->bucket, "%s", bucket);
    snprintf(t->region, sizeof t->region, "%s", region);
    snprintf(t->endpoint, sizeof t->endpoint, "%s", endpoint);
    t->path_style = path_style;
}

static void *s3_open(const objstore_config_t *cfg, char *err, size_t errsz) {
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errsz, "s3: curl_global_init failed: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    s3_store_t *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    st->cfg = *cfg;
    target_init(&st->primary, cfg->bucket, cfg->region, cfg->endpoint, cfg->path_style);
    if (cfg->read_bucket[0]) {
        st->has_replica = true;
        target_init(&st->replica, cfg->read_bucket, cfg->read_region[0] ? cfg->read_region : cfg->region,
                    cfg->read_endpoint[0] ? cfg->read_endpoint : cfg->endpoint, cfg->path_style);
    }
    char probe[S3_URL_MAX];
    if (objstore_s3_url(probe, sizeof probe, st->primary.endpoint, st->primary.bucket, st->primary.region,
                        st->primary.path_style, "k", NULL, NULL) < 0 ||
        (st->has_replica && objstore_s3_url(probe, sizeof probe, st->replica.endpoint, st->replica.bucket,
                                            st->replica.region, st->replica.path_style, "k", NULL, NULL) < 0)) {
        snprintf(err, errsz, "s3: bad endpoint (expected http:// or https://host[:port])");
        free(st);
        return NULL;
    }
    st->sign = cfg->access_key[0] != '\0';
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&st->share_mu[i], NULL);
    pthread_mutex_init(&st->pool_mu, NULL);
    st->share = curl_share_init();
    if (!st->share) {
        snprintf(err, errsz, "s3: curl_share_init failed");
        free(st);
        return NULL;
    }
    curl_share_setopt(st->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(st->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(st->share, CURLSHOPT_USERDATA, st);
    curl_share_setopt(st->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(st->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    st->magic = S3_MAGIC;
    return st;
}

static void ctx_destroy(s3_ctx_t *c) {
    for (int i = 0; i < c->nslots; i++)
        if (c->slots[i].easy) curl_easy_cleanup(c->slots[i].easy);
    if (c->multi) curl_multi_cleanup(c->multi);
    free(c->slots);
    free(c->free_slots);
    free(c);
}

static void s3_close(void *impl) {
    s3_store_t *st = impl;
    KS_ASSERT(st->magic == S3_MAGIC);
    pthread_mutex_lock(&st->pool_mu);
    KS_ASSERT(st->nactive == 0); /* closing while another thread still runs ops is a bug */
    while (st->idle) {
        s3_ctx_t *c = st->idle;
        st->idle = c->next;
        ctx_destroy(c);
    }
    pthread_mutex_unlock(&st->pool_mu);
    curl_share_cleanup(st->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&st->share_mu[i]);
    pthread_mutex_destroy(&st->pool_mu);
    explicit_bzero(&st->cfg, sizeof st->cfg); /* the secret key */
    st->magic = 0;
    free(st);
}

static s3_ctx_t *ctx_acquire(s3_store_t *st) {
    pthread_mutex_lock(&st->pool_mu);
    s3_ctx_t *c = st->idle;
    if (c) {
        st->idle = c->next;
        st->nidle--;
    }
    st->nactive++;
    pthread_mutex_unlock(&st->pool_mu);
    if (c) return c;
    int n = st->cfg.max_inflight;
    c = calloc(1, sizeof *c);
    if (c) {
        c->slots = calloc((size_t)n, sizeof *c->slots);
        c->free_slots = calloc((size_t)n, sizeof *c->free_slots);
        c->multi = curl_multi_init();
    }
    if (!c || !c->slots || !c->free_slots || !c->multi) {
        if (c) ctx_destroy(c);
        pthread_mutex_lock(&st->pool_mu);
        st->nactive--;
        pthread_mutex_unlock(&st->pool_mu);
        return NULL;
    }
    c->nslots = n;
    for (int i = 0; i < n; i++) c->free_slots[c->nfree++] = n - 1 - i;
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)(n < 4 ? 8 : 2 * n));
    return c;
}

static void ctx_release(s3_store_t *st, s3_ctx_t *c) {
    pthread_mutex_lock(&st->pool_mu);
    st->nactive--;
    if (st->nidle < S3_IDLE_CTX_MAX) {
        c->next = st->idle;
        st->idle = c;
        st->nidle++;
        c = NULL;
    }
    pthread_mutex_unlock(&st->pool_mu);
    if (c) ctx_destroy(c);
}

/* ---- curl callbacks ---- */

static size_t on_read(char *dst, size_t size, size_t nmemb, void *arg) {
    s3_slot_t *sl = arg;
    const objstore_op_t *op = sl->x->op;
    size_t want = size * nmemb, n = 0;
    while (n < want && sl->iov_i < op->iovcnt) {
        const struct iovec *v = &op->iov[sl->iov_i];
        size_t avail = v->iov_len - sl->iov_off;
        if (!avail) {
            sl->iov_i++;
            sl->iov_off = 0;
            continue;
        }
        size_t k = avail < want - n ? avail : want - n;
        memcpy(dst + n, (const char *)v->iov_base + sl->iov_off, k);
        sl->iov_off += k;
        n += k;
    }
    return n;
}

static int on_seek(void *arg, curl_off_t offset, int origin) {
    s3_slot_t *sl = arg;
    const objstore_op_t *op = sl->x->op;
    if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
    uint64_t left = (uint64_t)offset;
    sl->iov_i = 0;
    sl->iov_off = 0;
    while (sl->iov_i < op->iovcnt && left >= op->iov[sl->iov_i].iov_len) {
        left -= op->iov[sl->iov_i].iov_len;
        sl->iov_i++;
    }
    if (sl->iov_i == op->iovcnt && left) return CURL_SEEKFUNC_FAIL;
    sl->iov_off = (size_t)left;
    return CURL_SEEKFUNC_OK;
}

static bool rbuf_reserve(s3_xfer_t *x, size_t need) {
    if (need <= x->rcap) return true;
    /* Exact when the first call knows the size (Content-Length), else doubling. */
    size_t cap = x->rcap ? x->rcap : need;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(x->rbuf, cap);
    if (!p) return false;
    x->rbuf = p;
    x->rcap = cap;
    return true;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg) {
    s3_slot_t *sl = arg;
    s3_xfer_t *x = sl->x;
    objstore_op_t *op = x->op;
    size_t n = size * nmemb;
    if (!sl->checked) {
        sl->checked = true;
        long code = 0;
        curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &code);
        sl->to_body = code >= 200 && code < 300 && (x->kind == XK_GET || x->kind == XK_LIST);
        sl->skip = 0;
        sl->limit = UINT64_MAX;
        if (sl->to_body && x->kind == XK_GET) {
            /* A 200 to a ranged GET means the server ignored Range: cut it here. */
            if (code == 200 && op->offset) sl->skip = op->offset;
            if (op->length) sl->limit = op->length;
            curl_off_t cl = -1;
            curl_easy_getinfo(sl->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            if (!op->buf && cl > 0) {
                uint64_t want = (uint64_t)cl > sl->skip ? (uint64_t)cl - sl->skip : 0;
                if (want > sl->limit) want = sl->limit;
                if (want && want < SIZE_MAX && !rbuf_reserve(x, (size_t)want)) {
                    sl->overflow = true;
                    return 0;
                }
            }
        }
    }
    if (!sl->to_body) { /* an error document (kept in part), or a body we do not need */
        size_t k = sizeof sl->ebody - 1 - sl->elen;
        if (k > n) k = n;
        memcpy(sl->ebody + sl->elen, data, k);
        sl->elen += k;
        sl->ebody[sl->elen] = '\0';
        return n;
    }
    const char *p = data;
    size_t k = n;
    if (sl->skip) {
        size_t d = sl->skip < k ? (size_t)sl->skip : k;
        sl->skip -= d;
        p += d;
        k -= d;
    }
    if (x->rlen + k > sl->limit) k = (size_t)(sl->limit - x->rlen);
    if (!k) return n;
    if (op->buf) {
        if (x->rlen + k > op->cap) {
            sl->overflow = true;
            return 0;
        }
        memcpy(op->buf + x->rlen, p, k);
    } else {
        if ((x->kind == XK_LIST && x->rlen + k > S3_LIST_BODY_MAX) || !rbuf_reserve(x, x->rlen + k)) {
            sl->overflow = true;
            return 0;
        }
        memcpy(x->rbuf + x->rlen, p, k);
    }
    x->rlen += k;
    return n;
}

/* ---- one attempt ---- */

static const char *kind_str(xkind_t k) {
    static const char *names[] = {"PUT", "GET", "HEAD", "DELETE", "LIST"};
    return names[k];
}

static void op_fail(s3_xfer_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void op_fail(s3_xfer_t *x, const char *fmt, ...) {
    objstore_op_t *op = x->op;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (x->kind == XK_LIST)
        snprintf(op->err, sizeof op->err, "s3 LIST %.80s: %.150s", x->list_prefix ? x->list_prefix : "", msg);
    else snprintf(op->err, sizeof op->err, "s3 %s %.80s: %.150s", kind_str(x->kind), op->key, msg);
    op->status = OBJ_ERROR;
}

/* Returns 0 when the attempt is running, -1 when the op failed for good. */
static int attempt_start(s3_store_t *st, s3_ctx_t *ctx, s3_slot_t *sl, s3_xfer_t *x) {
    objstore_op_t *op = x->op;
    const s3_target_t *t = x->on_replica ? &st->replica : &st->primary;
    char url[S3_URL_MAX];
    int rc = x->kind == XK_LIST
                 ? objstore_s3_url(url, sizeof url, t->endpoint, t->bucket, t->region, t->path_style, NULL,
                                   x->list_prefix, x->list_token)
                 : objstore_s3_url(url, sizeof url, t->endpoint, t->bucket, t->region, t->path_style, op->key, NULL,
                                   NULL);
    if (rc < 0) {
        op_fail(x, "URL too long");
        return -1;
    }
    if (x->kind == XK_PUT && !x->sha[0]) objstore_sha256_hex(op->iov, op->iovcnt, x->sha);
    if (!sl->easy && !(sl->easy = curl_easy_init())) {
        op_fail(x, "curl_easy_init failed");
        return -1;
    }
    CURL *e = sl->easy;
    curl_easy_reset(e);
    sl->x = x;
    sl->iov_i = 0;
    sl->iov_off = 0;
    sl->checked = sl->to_body = sl->overflow = false;
    sl->elen = 0;
    sl->ebody[0] = '\0';
    sl->curl_err[0] = '\0';
    x->rlen = 0;

    /* Split scheme://authority/path?query for the Host header and the
     * canonical request. */
    const char *authority = strstr(url, "://") + 3;
    size_t alen = strcspn(authority, "/?");
    char host[600];
    if (alen >= sizeof host) {
        op_fail(x, "host name too long");
        return -1;
    }
    memcpy(host, authority, alen);
    host[alen] = '\0';
    bool https = !strncmp(url, "https:", 6);
    size_t hl = strlen(host);
    if (https && hl > 4 && !strcmp(host + hl - 4, ":443")) host[hl - 4] = '\0';
    else if (!https && hl > 3 && !strcmp(host + hl - 3, ":80")) host[hl - 3] = '\0';
    const char *path = authority + alen;
    size_t plen = strcspn(path, "?");
    char curi[S3_URL_MAX];
    if (plen == 0) snprintf(curi, sizeof curi, "/");
    else {
        memcpy(curi, path, plen);
        curi[plen] = '\0';
    }
    const char *query = path[plen] == '?' ? path + plen + 1 : "";

    char amzdate[20], range[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amzdate, sizeof amzdate, "%Y%m%dT%H%M%SZ", &tm);
    objstore_sigv4_header_t hv[8];
    int nh = 0;
    hv[nh++] = (objstore_sigv4_header_t){"host", host};
    if (x->kind == XK_GET && (op->offset || op->length)) {
        if (op->length)
            snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, op->offset, op->offset + op->length - 1);
        else snprintf(range, sizeof range, "bytes=%" PRIu64 "-", op->offset);
        hv[nh++] = (objstore_sigv4_header_t){"range", range};
    }
    const char *payload_hash = x->kind == XK_PUT ? x->sha : EMPTY_SHA256;
    hv[nh++] = (objstore_sigv4_header_t){"x-amz-content-sha256", payload_hash};
    if (st->sign) hv[nh++] = (objstore_sigv4_header_t){"x-amz-date", amzdate};
    if (st->cfg.session_token[0]) hv[nh++] = (objstore_sigv4_header_t){"x-amz-security-token", st->cfg.session_token};
    if (x->kind == XK_PUT && st->cfg.kms_arn[0]) {
        hv[nh++] = (objstore_sigv4_header_t){"x-amz-server-side-encryption", "aws:kms"};
        hv[nh++] = (objstore_sigv4_header_t){"x-amz-server-side-encryption-aws-kms-key-id", st->cfg.kms_arn};
    }
    static const char *methods[] = {"PUT", "GET", "HEAD", "DELETE", "GET"};
    struct curl_slist *hl_list = NULL;
    bool oom = false;
    char line[2600];
    for (int i = 0; i < nh && !oom; i++) {
        snprintf(line, sizeof line, "%s: %s", hv[i].name, hv[i].value);
        struct curl_slist *n2 = curl_slist_append(hl_list, line);
        if (!n2) oom = true;
        else hl_list = n2;
    }
    if (!oom && st->sign) {
        char authz[1024];
        if (objstore_sigv4_authorization(authz, sizeof authz, methods[x->kind], curi, query, hv, nh, payload_hash,
                                         amzdate, t->region, st->cfg.access_key, st->cfg.secret_key) < 0) {
            curl_slist_free_all(hl_list);
            op_fail(x, "cannot sign the request (access key or region too long)");
            return -1;
        }
        snprintf(line, sizeof line, "Authorization: %s", authz);
        struct curl_slist *n2 = curl_slist_append(hl_list, line);
        if (!n2) oom = true;
        else hl_list = n2;
        memset(line, 0, sizeof line);
    }
    if (!oom && x->kind == XK_PUT) {
        /* No "Expect: 100-continue" (curl's default for uploads): it costs a
         * round trip per PUT before the body goes. A removal line: not sent,
         * so not signed. */
        struct curl_slist *n2 = curl_slist_append(hl_list, "Expect:");
        if (!n2) oom = true;
        else hl_list = n2;
    }
    if (oom) {
        curl_slist_free_all(hl_list);
        op_fail(x, "out of memory");
        return -1;
    }
    sl->hdrs = hl_list;

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, sl);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, st->share);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)st->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(st->cfg.timeout_ms < 10000 ? st->cfg.timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, sl->curl_err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sl);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kafscale-objstore/1");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl_list);
    switch (x->kind) {
    case XK_PUT: {
        uint64_t total = 0;
        for (int i = 0; i < op->iovcnt; i++) total += op->iov[i].iov_len;
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, sl);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, sl);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)total);
        /* Bigger pieces than curl's 64 KiB default: fewer on_read calls and sends. */
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 512L << 10);
        break;
    }
    case XK_GET: /* Range is among the signed headers above */
        /* Segment reads are MiBs: 256 KiB recv()s and on_write calls rather
         * than curl's 16 KiB default. */
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L << 10);
        break;
    case XK_HEAD: curl_easy_setopt(e, CURLOPT_NOBODY, 1L); break;
    case XK_DELETE: curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE"); break;
    case XK_LIST: break;
    }
    CURLMcode mc = curl_multi_add_handle(ctx->multi, e);
    if (mc != CURLM_OK) {
        curl_slist_free_all(sl->hdrs);
        sl->hdrs = NULL;
        op_fail(x, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        return -1;
    }
    op->attempts++;
    x->tries++;
    return 0;
}

/* S3 error document: "<Code>SlowDown</Code>...<Message>...</Message>". */
static void s3_error_text(const s3_slot_t *sl, char *code, size_t codesz, char *msg, size_t msgsz) {
    const char *vs, *ve, *end = sl->ebody + sl->elen;
    code[0] = msg[0] = '\0';
    if (xml_elem(sl->ebody, end, "Code", &vs, &ve) && objstore_xml_decode(code, codesz, vs, (size_t)(ve - vs)) < 0)
        code[0] = '\0';
    if (xml_elem(sl->ebody, end, "Message", &vs, &ve) && objstore_xml_decode(msg, msgsz, vs, (size_t)(ve - vs)) < 0)
        msg[0] = '\0';
}

static bool curl_final(CURLcode cc) {
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_ABORTED_BY_CALLBACK:
        return true;
    default:
        return false;
    }
}

static uint64_t backoff_ms(const objstore_config_t *cfg, int tries) {
    uint64_t d = (uint64_t)cfg->backoff_ms;
    for (int i = 1; i < tries && d < (uint64_t)cfg->backoff_max_ms; i++) d *= 2;
    if (d > (uint64_t)cfg->backoff_max_ms) d = (uint64_t)cfg->backoff_max_ms;
    return d / 2 + rand64() % (d - d / 2 + 1);
}

enum { FIN_DONE, FIN_RETRY };

/* An attempt ended (the handle is already out of the multi). Sets the op's
 * result, or schedules the next attempt. */
static int attempt_finish(s3_store_t *st, s3_slot_t *sl, CURLcode cc) {
    s3_xfer_t *x = sl->x;
    objstore_op_t *op = x->op;
    long code = 0;
    curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &code);
    op->http_code = (int)code;
    curl_slist_free_all(sl->hdrs);
    sl->hdrs = NULL;

    enum { R_OK, R_NOTFOUND, R_RETRY, R_FINAL } r;
    char why[200] = "";
    if (cc == CURLE_OK && code >= 200 && code < 300) r = R_OK;
    else if (cc == CURLE_OK) {
        char s3code[64], s3msg[120];
        s3_error_text(sl, s3code, sizeof s3code, s3msg, sizeof s3msg);
        bool retry = code >= 500 || code == 429 || code == 408 || (code == 400 && !strcmp(s3code, "RequestTimeout"));
        r = retry ? R_RETRY : R_FINAL;
        /* 404 is a missing key, except a missing bucket (a configuration
         * error, not an empty store): PUT and LIST can only mean that, GET
         * and DELETE say so in <Code>; HEAD answers have no body. */
        if (code == 404 && x->kind != XK_PUT && x->kind != XK_LIST && strcmp(s3code, "NoSuchBucket")) r = R_NOTFOUND;
        if (code == 416) snprintf(why, sizeof why, "HTTP 416 range not satisfiable");
        else snprintf(why, sizeof why, "HTTP %ld%s%s%s%s", code, s3code[0] ? " " : "", s3code, s3msg[0] ? ": " : "",
                      s3msg);
    } else if (sl->overflow) {
        r = R_FINAL;
        if (x->kind == XK_GET && op->buf)
            snprintf(why, sizeof why, "object larger than the buffer (%zu bytes)", op->cap);
        else snprintf(why, sizeof why, "answer too large or out of memory");
    } else {
        r = curl_final(cc) ? R_FINAL : R_RETRY;
        snprintf(why, sizeof why, "%.190s", sl->curl_err[0] ? sl->curl_err : curl_easy_strerror(cc));
    }

    if (x->on_replica) {
        if (r == R_OK) goto ok;
        /* Replica miss or failure: the primary, with its own retries. */
        log_debug("s3 %s %s: replica %s: %s; trying the primary", kind_str(x->kind), op->key,
                  r == R_NOTFOUND ? "miss" : "failed", r == R_NOTFOUND ? "404" : why);
        x->on_replica = false;
        x->tries = 0;
        x->ready_at = 0;
        return FIN_RETRY;
    }
    switch (r) {
    case R_OK: goto ok;
    case R_NOTFOUND:
        op->status = OBJ_NOT_FOUND;
        return FIN_DONE;
    case R_RETRY:
        if (x->tries <= st->cfg.max_retries) {
            uint64_t d = backoff_ms(&st->cfg, x->tries);
            x->ready_at = now_ms() + d;
            log_debug("s3 %s %s: %s; retry %d/%d in %llu ms", kind_str(x->kind),
                      x->kind == XK_LIST ? (x->list_prefix ? x->list_prefix : "") : op->key, why, x->tries,
                      st->cfg.max_retries, (unsigned long long)d);
            return FIN_RETRY;
        }
        op_fail(x, "%s (after %d attempts)", why, op->attempts);
        return FIN_DONE;
    case R_FINAL:
        op_fail(x, "%s", why);
        return FIN_DONE;
    }
ok:
    op->status = OBJ_OK;
    if (x->kind == XK_HEAD) {
        curl_off_t cl = -1;
        curl_easy_getinfo(sl->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl < 0) {
            op_fail(x, "HEAD answer without Content-Length");
            return FIN_DONE;
        }
        op->out_len = (size_t)cl;
    } else if (x->kind == XK_GET || x->kind == XK_LIST) {
        op->out_len = x->rlen;
        if (!op->buf) {
            if (!x->rbuf && !(x->rbuf = malloc(1))) {
                op_fail(x, "out of memory");
                return FIN_DONE;
            }
            op->out = x->rbuf;
            x->rbuf = NULL;
            x->rcap = 0;
        }
    }
    return FIN_DONE;
}

/* ---- the engine: n transfers, max_inflight at a time, with retries ---- */

static void engine_run(s3_store_t *st, s3_xfer_t *xs, int n) {
    s3_ctx_t *ctx = ctx_acquire(st);
    int *retryq = malloc((size_t)n * sizeof *retryq);
    if (!ctx || !retryq) {
        for (int i = 0; i < n; i++) op_fail(&xs[i], "out of memory");
        if (ctx) ctx_release(st, ctx);
        free(retryq);
        return;
    }
    int next = 0, done = 0, running = 0, nretry = 0;
    while (done < n) {
        uint64_t now = now_ms();
        while (running < ctx->nslots) {
            int pick = -1;
            for (int r = 0; r < nretry; r++)
                if (xs[retryq[r]].ready_at <= now) {
                    pick = retryq[r];
                    retryq[r] = retryq[--nretry];
                    break;
                }
            if (pick < 0 && next < n) pick = next++;
            if (pick < 0) break;
            KS_ASSERT(ctx->nfree > 0);
            s3_slot_t *sl = &ctx->slots[ctx->free_slots[--ctx->nfree]];
            if (attempt_start(st, ctx, sl, &xs[pick]) < 0) {
                ctx->free_slots[ctx->nfree++] = (int)(sl - ctx->slots);
                done++;
                continue;
            }
            running++;
        }
        if (done >= n) break;
        int still = 0;
        curl_multi_perform(ctx->multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(ctx->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *e = m->easy_handle;
            CURLcode cc = m->data.result;
            s3_slot_t *sl = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&sl);
            curl_multi_remove_handle(ctx->multi, e);
            running--;
            s3_xfer_t *x = sl->x;
            if (attempt_finish(st, sl, cc) == FIN_DONE) done++;
            else retryq[nretry++] = (int)(x - xs);
            ctx->free_slots[ctx->nfree++] = (int)(sl - ctx->slots);
        }
        if (done >= n) break;
        /* Work that can start now (slots were just freed): no waiting. */
        if (running < ctx->nslots && next < n) continue;
        int wait = 1000;
        if (nretry && running < ctx->nslots) {
            now = now_ms();
            for (int r = 0; r < nretry; r++) {
                uint64_t d = xs[retryq[r]].ready_at > now ? xs[retryq[r]].ready_at - now : 0;
                if (d < (uint64_t)wait) wait = (int)d;
            }
        }
        if (running > 0 || wait > 0) curl_multi_poll(ctx->multi, NULL, 0, wait, NULL);
    }
    free(retryq);
    ctx_release(st, ctx);
}

static void s3_run(void *impl, objstore_op_t **ops, int n) {
    s3_store_t *st = impl;
    KS_ASSERT(st->magic == S3_MAGIC);
    s3_xfer_t *xs = calloc((size_t)n, sizeof *xs);
    if (!xs) {
        for (int i = 0; i < n; i++) snprintf(ops[i]->err, sizeof ops[i]->err, "s3: out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        xs[i].op = ops[i];
        xs[i].kind = (xkind_t)ops[i]->kind;
        xs[i].on_replica = st->has_replica && (ops[i]->kind == OBJ_GET || ops[i]->kind == OBJ_HEAD);
    }
    engine_run(st, xs, n);
    for (int i = 0; i < n; i++) free(xs[i].rbuf); /* bodies of failed GETs */
    free(xs);
}

static int s3_list(void *impl, const char *prefix, objstore_list_fn fn, void *arg, char *err, size_t errsz) {
    s3_store_t *st = impl;
    KS_ASSERT(st->magic == S3_MAGIC);
    char *token = malloc(4096), *next = malloc(4096);
    if (!token || !next) {
        free(token);
        free(next);
        snprintf(err, errsz, "s3 LIST: out of memory");
        return OBJ_ERROR;
    }
    token[0] = '\0';
    int rc = OBJ_OK;
    for (int page = 0;; page++) {
        objstore_op_t op = {.kind = OBJ_GET, .key = prefix};
        s3_xfer_t x = {.op = &op, .kind = XK_LIST, .list_prefix = prefix, .list_token = token};
        engine_run(st, &x, 1);
        free(x.rbuf);
        if (op.status != OBJ_OK) {
            snprintf(err, errsz, "%s", op.err);
            free(op.out);
            rc = OBJ_ERROR;
            break;
        }
        bool truncated = false, stopped = false;
        int prc = objstore_s3_parse_list((const char *)op.out, op.out_len, fn, arg, &truncated, next, 4096, &stopped,
                                         err, errsz);
        free(op.out);
        if (prc < 0) {
            rc = OBJ_ERROR;
            break;
        }
        if (stopped || !truncated) break;
        if (!next[0] || !strcmp(next, token)) {
            snprintf(err, errsz, "s3 LIST %.100s: truncated answer without a new continuation token", prefix);
            rc = OBJ_ERROR;
            break;
        }
        memcpy(token, next, strlen(next) + 1);
    }
    free(token);
    free(next);
    return rc;
}

const objstore_backend_ops_t objstore_s3_ops = {
    .name = "s3",
    .open = s3_open,
    .close = s3_close,
    .run = s3_run,
    .list = s3_list,
};
