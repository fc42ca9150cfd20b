/* s3get.c - bin/bench-s3get: reads every object under a prefix straight from
 * the object store with parallel ranged GETs, the baseline `make bench`
 * compares the broker's cold catch-up read against ("how fast could anyone
 * read these bytes from this S3 server").
 *
 *   bench-s3get PREFIX [SUFFIX [CHUNK_BYTES [PARALLEL]]]
 *
 * Configured like the node (KAFSCALE_S3_*, AWS_*; without a bucket the file
 * store under $KAFSCALE_DATA_DIR/objects). Lists PREFIX, keeps the keys that
 * end with SUFFIX (default ".kfs"), cuts each object into CHUNK_BYTES ranges
 * (default 1 MiB, the broker's KAFSCALE_READ_CHUNK_BYTES default) and GETs
 * them with PARALLEL threads (default 16) sharing one store, each GET into a
 * reused buffer (no allocation per request). Prints one JSON line:
 * {"objects":..,"bytes":..,"gets":..,"seconds":..,"mbps":..,"parallel":..,"chunk":..}
 * (mbps = 10^6 bytes per second, listing excluded). Exit 1 on any failed GET.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "objstore.h"

typedef struct obj {
    char *key;
    uint64_t size;
} obj_t;

typedef struct job {
    const char *key;
    uint64_t off, len;
} job_t;

static struct {
    objstore_t *st;
    const char *suffix;
    obj_t *objs;
    size_t nobj, cap;
    job_t *jobs;
    size_t njobs;
    atomic_size_t next;
    atomic_uint_fast64_t bytes;
    atomic_int failures;
    uint64_t chunk;
} G;

static int collect(const char *key, uint64_t size, void *arg) {
    size_t kl = strlen(key), sl = strlen(G.suffix);
    if (kl < sl || strcmp(key + kl - sl, G.suffix)) return 0;
    if (G.nobj == G.cap) {
        G.cap = G.cap ? 2 * G.cap : 256;
        G.objs = realloc(G.objs, G.cap * sizeof *G.objs);
        if (!G.objs) abort();
    }
    G.objs[G.nobj].key = strdup(key);
    G.objs[G.nobj].size = size;
    if (!G.objs[G.nobj].key) abort();
    G.nobj++;
    return 0;
}

static void *worker(void *arg) {
    uint8_t *buf = malloc(G.chunk);
    if (!buf) abort();
    for (;;) {
        size_t i = atomic_fetch_add(&G.next, 1);
        if (i >= G.njobs) break;
        objstore_op_t op = {.kind = OBJ_GET, .key = G.jobs[i].key, .offset = G.jobs[i].off,
                            .length = G.jobs[i].len, .buf = buf, .cap = G.chunk};
        objstore_run(G.st, &op, 1);
        if (op.status != OBJ_OK) {
            fprintf(stderr, "bench-s3get: GET %s @%" PRIu64 ": %s\n", op.key, op.offset, op.err);
            atomic_fetch_add(&G.failures, 1);
        } else {
            atomic_fetch_add(&G.bytes, op.out_len);
        }
    }
    free(buf);
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    log_init("bench-s3get");
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: bench-s3get PREFIX [SUFFIX [CHUNK_BYTES [PARALLEL]]]\n");
        return 2;
    }
    const char *prefix = argv[1];
    G.suffix = argc > 2 ? argv[2] : ".kfs";
    G.chunk = argc > 3 ? strtoull(argv[3], NULL, 10) : (1u << 20);
    int parallel = argc > 4 ? atoi(argv[4]) : 16;
    if (G.chunk < 4096 || G.chunk > (256u << 20) || parallel < 1 || parallel > 256) {
        fprintf(stderr, "bench-s3get: bad CHUNK_BYTES or PARALLEL\n");
        return 2;
    }
    objstore_config_t cfg;
    objstore_config_from_env(&cfg, env_str("KAFSCALE_DATA_DIR", "./data"));
    char err[512];
    G.st = objstore_open(&cfg, err, sizeof err);
    if (!G.st) {
        fprintf(stderr, "bench-s3get: %s\n", err);
        return 2;
    }
    if (objstore_list(G.st, prefix, collect, NULL, err, sizeof err) != OBJ_OK) {
        fprintf(stderr, "bench-s3get: list %s: %s\n", prefix, err);
        return 1;
    }
    for (size_t i = 0; i < G.nobj; i++) G.njobs += (G.objs[i].size + G.chunk - 1) / G.chunk;
    G.jobs = calloc(G.njobs ? G.njobs : 1, sizeof *G.jobs);
    if (!G.jobs) abort();
    size_t k = 0;
    for (size_t i = 0; i < G.nobj; i++)
        for (uint64_t off = 0; off < G.objs[i].size; off += G.chunk) {
            uint64_t len = G.objs[i].size - off < G.chunk ? G.objs[i].size - off : G.chunk;
            G.jobs[k++] = (job_t){G.objs[i].key, off, len};
        }
    pthread_t th[256];
    double t0 = now();
    for (int i = 0; i < parallel; i++)
        if (pthread_create(&th[i], NULL, worker, NULL)) abort();
    for (int i = 0; i < parallel; i++) pthread_join(th[i], NULL);
    double secs = now() - t0;
    uint64_t bytes = atomic_load(&G.bytes);
    printf("{\"objects\":%zu,\"bytes\":%" PRIu64 ",\"gets\":%zu,\"seconds\":%.6f,\"mbps\":%.2f,\"parallel\":%d,"
           "\"chunk\":%" PRIu64 "}\n",
           G.nobj, bytes, G.njobs, secs, secs > 0 ? (double)bytes / secs / 1e6 : 0.0, parallel, G.chunk);
    objstore_close(G.st);
    for (size_t i = 0; i < G.nobj; i++) free(G.objs[i].key);
    free(G.objs);
    free(G.jobs);
    return atomic_load(&G.failures) ? 1 : 0;
}
