/* objstore.h - the object store: one interface, two backends.
 *
 *   file: a directory with the S3 key layout (the embedded default). Writes
 *         are atomic: temp file, fsync, rename, fsync of the directory.
 *         (objstore_file.c)
 *   s3:   any S3 API through libcurl with AWS SigV4 (signed here with
 *         libcrypto's HMAC-SHA256, payload hash in x-amz-content-sha256:
 *         curl 7.88's CURLOPT_AWS_SIGV4 mis-sorts headers, see
 *         objstore_s3.c), path or virtual-host style, custom
 *         endpoint, region, session token, SSE-KMS, ranged GETs,
 *         ListObjectsV2, DELETE, retries with backoff and jitter on 5xx / 503
 *         SlowDown / 429 / timeouts, many transfers in flight (curl multi,
 *         connection reuse). A read replica (KAFSCALE_S3_READ_*) is tried
 *         first for reads, the primary on a miss. (objstore_s3.c)
 *   objstore.c holds what both share: config from the environment, key
 *   checks, dispatch to the backend, the counters.
 *
 * Threads: every call below except objstore_open/objstore_close may be made
 * from any number of threads at once on the same objstore_t. objstore_run()
 * performs a whole set of operations in parallel (bounded concurrency) and
 * returns when every one finished or failed for good. The flusher uses that
 * for one flush cycle's uploads; readers use the single calls. Credentials
 * never appear in logs or error strings.
 *
 * Keys: 1..1024 bytes, segments separated by '/'; refused (OBJ_ERROR, no I/O)
 * when they start with '/', end with '/', have an empty segment ("a//b"), a
 * "." or ".." segment, a segment starting with ".kstmp." (the file backend's
 * temp files) or a control character. The same rules hold for both backends
 * so that a key that works with one works with the other.
 */
#ifndef KAFSCALE_OBJSTORE_H
#define KAFSCALE_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct objstore objstore_t;

#define OBJSTORE_KEY_MAX 1024

typedef struct objstore_config {
    /* backend selection: s3 when bucket is set, else file under file_root */
    char file_root[1024];
    bool file_direct; /* file backend: big objects with O_DIRECT (KAFSCALE_FILE_STORE_DIRECT) */
    char bucket[256], region[64], endpoint[512];
    /* read replica: used when read_bucket is set; read_region defaults to
     * region; read_endpoint defaults to endpoint (when that is set, e.g. a
     * second bucket on the same MinIO) or else to AWS in read_region. */
    char read_bucket[256], read_region[64], read_endpoint[512];
    /* Path style (endpoint/bucket/key) instead of virtual-host style
     * (bucket.host/key). objstore_config_from_env defaults it to true when an
     * endpoint is given, false for AWS. */
    bool path_style;
    char kms_arn[512];    /* SSE-KMS key for every PUT when set */
    /* No access key = unsigned (anonymous) requests. */
    char access_key[256], secret_key[256], session_token[2048];
    int max_inflight;     /* parallel transfers per objstore_run (default 16) */
    int max_retries;      /* retries after the first attempt, per operation (default 5) */
    int timeout_ms;       /* per attempt (default 30000) */
    int backoff_ms;       /* first retry delay (default 100), doubled per retry ... */
    int backoff_max_ms;   /* ... up to this (default 5000); "equal jitter": the delay
                             actually waited is uniform in [d/2, d] */
} objstore_config_t;

/* Fills cfg from the environment: KAFSCALE_S3_BUCKET, _REGION (default
 * us-east-1), _ENDPOINT (http:// or https:// URL), _PATH_STYLE, _KMS_ARN,
 * _READ_BUCKET, _READ_REGION, _READ_ENDPOINT, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, KAFSCALE_S3_MAX_INFLIGHT,
 * KAFSCALE_S3_MAX_RETRIES, KAFSCALE_S3_TIMEOUT_MS, KAFSCALE_S3_BACKOFF_MS,
 * KAFSCALE_S3_BACKOFF_MAX_MS; file_root = <data_dir>/objects. Exits (status
 * 2) with a message naming the variable on a bad value. */
void objstore_config_from_env(objstore_config_t *cfg, const char *data_dir);

/* Fills cfg with the defaults above and an empty everything else. */
void objstore_config_defaults(objstore_config_t *cfg);

/* Opens the backend cfg selects (the file backend creates file_root). NULL
 * with a message in err on failure. cfg is copied. */
objstore_t *objstore_open(const objstore_config_t *cfg, char *err, size_t errsz);
void objstore_close(objstore_t *s);
const char *objstore_backend(const objstore_t *s); /* "file" or "s3" */

typedef enum objstore_op_kind { OBJ_PUT, OBJ_GET, OBJ_HEAD, OBJ_DELETE } objstore_op_kind_t;

/* Status of a finished operation. */
enum {
    OBJ_OK = 0,
    OBJ_NOT_FOUND = 1,  /* 404 / ENOENT. For DELETE this is harmless: the key
                           is gone either way (S3 itself answers 204), and
                           objstore_run does not count it as a failure. */
    OBJ_ERROR = 2,      /* failed after retries, or for good (message in err) */
};

typedef struct objstore_op {
    objstore_op_kind_t kind;
    const char *key;
    /* PUT: the body as pieces (written in order, not copied into one buffer).
     * They must stay valid and unchanged until objstore_run returns. */
    const struct iovec *iov;
    int iovcnt;
    /* GET: range [offset, offset+length); length 0 = to the end. A range that
     * runs past the end is cut at the end (as S3 does); one that starts past
     * the end is an OBJ_ERROR ("range not satisfiable", HTTP 416). The body
     * goes into buf (caller-allocated, cap bytes; a bigger body is an
     * OBJ_ERROR; out stays NULL) or, if buf is NULL, into a malloc'd buffer
     * returned in out (caller frees; non-NULL on OBJ_OK even when empty). */
    uint64_t offset, length;
    uint8_t *buf;
    size_t cap;
    /* results (objstore_run clears them first) */
    uint8_t *out;
    size_t out_len;        /* GET: bytes received; HEAD: object size */
    int status;            /* OBJ_OK / OBJ_NOT_FOUND / OBJ_ERROR */
    int http_code;         /* s3: last HTTP status (0 for file, or no answer) */
    int attempts;          /* requests made (s3: a replica read counts as one) */
    char err[256];
} objstore_op_t;

/* Runs all n operations, in parallel up to max_inflight, retrying as above.
 * Returns the number of operations that ended with OBJ_ERROR. */
int objstore_run(objstore_t *s, objstore_op_t *ops, int n);

/* Single-operation helpers (each is objstore_run over one op). They return
 * the op's status (OBJ_OK / OBJ_NOT_FOUND / OBJ_ERROR); err gets the message
 * of an OBJ_ERROR (and "not found" for OBJ_NOT_FOUND). */
int objstore_put(objstore_t *s, const char *key, const struct iovec *iov, int iovcnt, char *err, size_t errsz);
/* *out is malloc'd (caller frees) on OBJ_OK, NULL otherwise. */
int objstore_get(objstore_t *s, const char *key, uint64_t offset, uint64_t length, uint8_t **out, size_t *out_len,
                 char *err, size_t errsz);
int objstore_head(objstore_t *s, const char *key, uint64_t *size, char *err, size_t errsz);
int objstore_delete(objstore_t *s, const char *key, char *err, size_t errsz);

/* Lists keys under prefix (ListObjectsV2 with continuation; for file, a
 * directory walk), calling fn(key, size, arg) for each in lexical (byte)
 * order. key is valid only during the call. fn returns non-zero to stop
 * (that is still OBJ_OK). Returns OBJ_OK or OBJ_ERROR. Lists always go to
 * the primary bucket. */
typedef int (*objstore_list_fn)(const char *key, uint64_t size, void *arg);
int objstore_list(objstore_t *s, const char *prefix, objstore_list_fn fn, void *arg, char *err, size_t errsz);

/* Removes what uploads that were interrupted (kill -9, a crash) left
 * behind: the file backend's temp files (.kstmp.*, see objstore_file.c)
 * anywhere in the store whose last change is at least min_age_ms old. A PUT in progress keeps writing its temp file until the
 * rename, so a temp file untouched for a minute belongs to nobody. Nothing
 * to do for s3 (an interrupted PUT leaves no object there). Logs what it
 * removed. Returns that number, or -1 with a message in err. The flusher,
 * which owns the store's writes, calls it when it starts. */
int objstore_clean_temp(objstore_t *s, int64_t min_age_ms, char *err, size_t errsz);

/* Counters since open (for metrics and tests). Ops are counted when they
 * finish; retries = attempts beyond the first; errors = OBJ_ERROR results;
 * bytes_* only for successful transfers. */
typedef struct objstore_stats {
    uint64_t puts, gets, heads, deletes, lists;
    uint64_t bytes_put, bytes_got;
    uint64_t retries, errors;
    uint64_t not_found;
} objstore_stats_t;
void objstore_get_stats(objstore_t *s, objstore_stats_t *out);

/* ---- Below: for the backends (objstore_*.c) and the unit tests only. ---- */

/* true when key obeys the key rules at the top of this file. */
bool objstore_key_valid(const char *key);

/* A backend: objstore.c checks keys and counts; the backend does the I/O.
 * run() gets only ops with valid keys and cleared results and must set
 * status (and err on OBJ_ERROR) of each; it is called from many threads. */
typedef struct objstore_backend_ops {
    const char *name;
    void *(*open)(const objstore_config_t *cfg, char *err, size_t errsz);
    void (*close)(void *impl);
    void (*run)(void *impl, objstore_op_t **ops, int n);
    int (*list)(void *impl, const char *prefix, objstore_list_fn fn, void *arg, char *err, size_t errsz);
    /* objstore_clean_temp(); NULL when the backend leaves nothing behind */
    int (*clean_temp)(void *impl, int64_t min_age_ms, char *err, size_t errsz);
} objstore_backend_ops_t;
extern const objstore_backend_ops_t objstore_file_ops;
extern const objstore_backend_ops_t objstore_s3_ops;

/* Hex SHA-256 (64 chars + NUL) of the concatenation of the pieces. */
void objstore_sha256_hex(const struct iovec *iov, int iovcnt, char out[65]);

/* S3 percent-encoding (RFC 3986 unreserved A-Z a-z 0-9 - _ . ~ kept, '/'
 * kept when keep_slash, the rest as %XX upper-case): what SigV4's canonical
 * URI and query want. Returns the length written, or -1 if out is too small. */
int objstore_uri_encode(char *out, size_t outsz, const char *s, bool keep_slash);

/* URL of an object (key != NULL) or, key == NULL, of a ListObjectsV2 page
 * (prefix and token may be NULL or ""). endpoint "" means AWS:
 * https://<bucket>.s3.<region>.amazonaws.com (path style:
 * https://s3.<region>.amazonaws.com/<bucket>). Returns 0, or -1 if out is
 * too small or the endpoint is not an http(s) URL. */
int objstore_s3_url(char *out, size_t outsz, const char *endpoint, const char *bucket, const char *region,
                    bool path_style, const char *key, const char *prefix, const char *token);

/* AWS SigV4 for S3: the value of the Authorization header. canonical_uri
 * and canonical_query must already be in canonical form (as objstore_s3_url
 * builds them); headers: lower-case names in any order (sorted here by
 * name), values trimmed here; at most 16. amz_date: "YYYYMMDDTHHMMSSZ".
 * Returns 0, or -1 when out is too small. */
typedef struct objstore_sigv4_header {
    const char *name, *value;
} objstore_sigv4_header_t;
int objstore_sigv4_authorization(char *out, size_t outsz, const char *method, const char *canonical_uri,
                                 const char *canonical_query, const objstore_sigv4_header_t *hdrs, int nhdrs,
                                 const char *payload_hash, const char *amz_date, const char *region,
                                 const char *access_key, const char *secret_key);

/* Parses one ListObjectsV2 answer: fn for each Contents (Key decoded from
 * XML entities, Size), *truncated from IsTruncated, token from
 * NextContinuationToken ("" when absent), *stopped when fn returned
 * non-zero. Returns 0, or -1 with a message in err on malformed XML. */
int objstore_s3_parse_list(const char *xml, size_t len, objstore_list_fn fn, void *arg, bool *truncated,
                           char *token, size_t tokcap, bool *stopped, char *err, size_t errsz);

/* Decodes XML character data (&amp; &lt; &gt; &quot; &apos; &#N; &#xH;) of
 * src[0..len) into out (NUL-terminated). Returns the decoded length, or -1
 * on a bad entity, a NUL, or when out is too small. */
int objstore_xml_decode(char *out, size_t outsz, const char *src, size_t len);

#endif
