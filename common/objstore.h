/* objstore.h - the object store: one interface, two backends.
 *
 *   file: a directory with the S3 key layout (the embedded default). Writes
 *         are atomic: temp file, fsync, rename, fsync of the directory.
 *   s3:   any S3 API through libcurl with AWS SigV4 (CURLOPT_AWS_SIGV4 plus an
 *         x-amz-content-sha256 header), path or virtual-host style, custom
 *         endpoint, region, session token, SSE-KMS, ranged GETs,
 *         ListObjectsV2, DELETE, retries with backoff and jitter on 5xx / 503
 *         SlowDown / timeouts, many transfers in flight (curl multi,
 *         connection reuse). A read replica (KAFSCALE_S3_READ_*) is tried
 *         first for reads, the primary on a miss.
 *
 * Calls are blocking and thread-safe per store handle only if said so below;
 * objstore_run() performs a whole set of operations in parallel (bounded
 * concurrency) and returns when every one finished or failed for good. The
 * flusher uses that for one flush cycle's uploads; readers use the single
 * calls. Credentials never appear in logs or error strings.
 */
#ifndef KAFSCALE_OBJSTORE_H
#define KAFSCALE_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct objstore objstore_t;

typedef struct objstore_config {
    /* backend selection: s3 when bucket is set, else file under file_root */
    char file_root[1024];
    char bucket[256], region[64], endpoint[512];
    char read_bucket[256], read_region[64], read_endpoint[512];
    bool path_style;
    char kms_arn[512];
    char access_key[256], secret_key[256], session_token[2048];
    int max_inflight;     /* parallel transfers (default 16) */
    int max_retries;      /* per operation (default 5) */
    int timeout_ms;       /* per attempt (default 30000) */
} objstore_config_t;

/* Fills cfg from the environment: KAFSCALE_S3_BUCKET, _REGION (default
 * us-east-1), _ENDPOINT, _PATH_STYLE, _KMS_ARN, _READ_BUCKET, _READ_REGION,
 * _READ_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
 * KAFSCALE_S3_MAX_INFLIGHT, KAFSCALE_S3_MAX_RETRIES, KAFSCALE_S3_TIMEOUT_MS;
 * file_root = <data_dir>/objects. Exits with a message naming the variable
 * on a bad value. */
void objstore_config_from_env(objstore_config_t *cfg, const char *data_dir);

objstore_t *objstore_open(const objstore_config_t *cfg, char *err, size_t errsz);
void objstore_close(objstore_t *s);
const char *objstore_backend(const objstore_t *s); /* "file" or "s3" */

typedef enum objstore_op_kind { OBJ_PUT, OBJ_GET, OBJ_HEAD, OBJ_DELETE } objstore_op_kind_t;

/* Status of a finished operation. */
enum {
    OBJ_OK = 0,
    OBJ_NOT_FOUND = 1,  /* 404 / ENOENT (for DELETE this counts as success: see ok) */
    OBJ_ERROR = 2,      /* failed after retries (message in err) */
};

typedef struct objstore_op {
    objstore_op_kind_t kind;
    const char *key;
    /* PUT: the body as pieces (written in order, not copied into one buffer). */
    const struct iovec *iov;
    int iovcnt;
    /* GET: range [offset, offset+length); length 0 = to the end. The body goes
     * into buf (caller-allocated, cap bytes) or, if buf is NULL, into a
     * malloc'd buffer returned in out (caller frees). */
    uint64_t offset, length;
    uint8_t *buf;
    size_t cap;
    /* results */
    uint8_t *out;
    size_t out_len;        /* GET: bytes received; HEAD: object size */
    int status;            /* OBJ_OK / OBJ_NOT_FOUND / OBJ_ERROR */
    int http_code;         /* s3: last HTTP status (0 for file) */
    int attempts;
    char err[256];
} objstore_op_t;

/* Runs all n operations, in parallel up to max_inflight, retrying as above.
 * Returns the number of operations that ended with OBJ_ERROR. */
int objstore_run(objstore_t *s, objstore_op_t *ops, int n);

/* Single-operation helpers (each is objstore_run over one op). */
int objstore_put(objstore_t *s, const char *key, const struct iovec *iov, int iovcnt, char *err, size_t errsz);
int objstore_get(objstore_t *s, const char *key, uint64_t offset, uint64_t length, uint8_t **out, size_t *out_len,
                 char *err, size_t errsz);
int objstore_head(objstore_t *s, const char *key, uint64_t *size, char *err, size_t errsz);
int objstore_delete(objstore_t *s, const char *key, char *err, size_t errsz);

/* Lists keys under prefix (ListObjectsV2 with continuation; for file, a
 * directory walk), calling fn(key, size, arg) for each in lexical order.
 * fn returns non-zero to stop. Returns OBJ_OK or OBJ_ERROR. */
int objstore_list(objstore_t *s, const char *prefix, int (*fn)(const char *key, uint64_t size, void *arg), void *arg,
                  char *err, size_t errsz);

/* Counters since open (for metrics and tests). */
typedef struct objstore_stats {
    uint64_t puts, gets, heads, deletes, lists;
    uint64_t bytes_put, bytes_got;
    uint64_t retries, errors;
} objstore_stats_t;
void objstore_get_stats(objstore_t *s, objstore_stats_t *out);

#endif
