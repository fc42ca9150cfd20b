/* objstore_cli.c - a tiny command line over common/objstore.h, for tests and
 * for looking into a store by hand. Configured by the same environment as the
 * processes (KAFSCALE_S3_*, AWS_*; without KAFSCALE_S3_BUCKET the file
 * backend under $KAFSCALE_DATA_DIR/objects, default ./data/objects).
 *
 *   objstore-cli [-s] put KEY FILE      FILE "-" = stdin; sent as 1 MiB pieces
 *   objstore-cli [-s] get KEY [OFF LEN] body to stdout (LEN 0 = to the end)
 *   objstore-cli [-s] head KEY          prints the size
 *   objstore-cli [-s] del KEY
 *   objstore-cli [-s] ls [PREFIX]       prints "KEY<TAB>SIZE" lines
 *   objstore-cli [-s] putn PREFIX N FILE  N objects PREFIX00000.. with FILE's
 *                                       bytes, in one objstore_run (parallel)
 *   objstore-cli [-s] delprefix PREFIX  lists PREFIX, deletes all in one
 *                                       objstore_run; prints the count
 *   objstore-cli [-s] stress PREFIX T N T threads share the store, each N
 *                                       rounds of a 4-PUT objstore_run, GETs
 *                                       (whole and ranged), HEADs, DELETEs,
 *                                       checking every byte; exit 1 on a
 *                                       mismatch
 *
 * -s prints the store's counters to stderr at the end (one "stats:" line).
 * Exit status: 0 ok, 1 error, 2 usage or configuration, 3 not found.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "config.h"
#include "log.h"
#include "objstore.h"

#define PIECE (1u << 20)

static int usage(void) {
    fprintf(stderr,
            "usage: objstore-cli [-s] put KEY FILE | get KEY [OFF LEN] | head KEY | del KEY | ls [PREFIX]\n"
            "                         | putn PREFIX N FILE | delprefix PREFIX | stress PREFIX THREADS ROUNDS\n");
    return 2;
}

static int status_exit(int st, const char *err) {
    if (st == OBJ_OK) return 0;
    fprintf(stderr, "objstore-cli: %s\n", err);
    return st == OBJ_NOT_FOUND ? 3 : 1;
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin) fclose(f);
    *len = n;
    return buf;
}

static int print_key(const char *key, uint64_t size, void *arg) {
    printf("%s\t%" PRIu64 "\n", key, size);
    return 0;
}

typedef struct keys {
    char **v;
    size_t n, cap;
} keys_t;

static int collect_key(const char *key, uint64_t size, void *arg) {
    keys_t *k = arg;
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 256;
        k->v = realloc(k->v, k->cap * sizeof *k->v);
        if (!k->v) abort();
    }
    if (!(k->v[k->n++] = strdup(key))) abort();
    return 0;
}

/* Reports every failed op of a run; returns the exit status. */
static int report_ops(const objstore_op_t *ops, size_t n) {
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (ops[i].status == OBJ_ERROR) {
            fprintf(stderr, "objstore-cli: %s\n", ops[i].err);
            rc = 1;
        }
    return rc;
}

typedef struct stress {
    objstore_t *st;
    const char *prefix;
    int id, rounds, failures;
} stress_t;

static void stress_fail(stress_t *a, const char *what, const char *err) {
    fprintf(stderr, "objstore-cli: stress thread %d: %s: %s\n", a->id, what, err);
    a->failures++;
}

/* Deterministic content of (thread, round, piece), 1..20000 bytes. */
static size_t stress_fill(uint8_t *buf, int id, int round, int piece) {
    uint32_t x = (uint32_t)(id * 7919 + round * 104729 + piece * 1299709) | 1;
    size_t n = 1 + x % 20000;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
    return n;
}

static void *stress_thread(void *arg) {
    stress_t *a = arg;
    static __thread uint8_t bodies[4][20000];
    char keys[4][600], err[512];
    for (int r = 0; r < a->rounds; r++) {
        objstore_op_t ops[4];
        struct iovec iov[4][2];
        size_t lens[4];
        for (int k = 0; k < 4; k++) {
            snprintf(keys[k], sizeof keys[k], "%st%02d/r%04d/p%d", a->prefix, a->id, r, k);
            lens[k] = stress_fill(bodies[k], a->id, r, k);
            size_t half = lens[k] / 2; /* two pieces per body */
            iov[k][0] = (struct iovec){bodies[k], half};
            iov[k][1] = (struct iovec){bodies[k] + half, lens[k] - half};
            ops[k] = (objstore_op_t){.kind = OBJ_PUT, .key = keys[k], .iov = iov[k], .iovcnt = 2};
        }
        if (objstore_run(a->st, ops, 4)) {
            for (int k = 0; k < 4; k++)
                if (ops[k].status != OBJ_OK) stress_fail(a, "run PUT", ops[k].err);
            continue;
        }
        for (int k = 0; k < 4; k++) {
            uint8_t *out = NULL;
            size_t n = 0;
            if (objstore_get(a->st, keys[k], 0, 0, &out, &n, err, sizeof err) != OBJ_OK) stress_fail(a, "GET", err);
            else if (n != lens[k] || memcmp(out, bodies[k], n)) stress_fail(a, "GET", "content differs");
            free(out);
            uint64_t off = lens[k] / 3, len = lens[k] / 4 + 1;
            if (objstore_get(a->st, keys[k], off, len, &out, &n, err, sizeof err) != OBJ_OK)
                stress_fail(a, "ranged GET", err);
            else if (n != len || memcmp(out, bodies[k] + off, n)) stress_fail(a, "ranged GET", "content differs");
            free(out);
            uint64_t size = 0;
            if (objstore_head(a->st, keys[k], &size, err, sizeof err) != OBJ_OK || size != lens[k])
                stress_fail(a, "HEAD", err);
        }
        objstore_op_t dels[4];
        for (int k = 0; k < 4; k++) dels[k] = (objstore_op_t){.kind = OBJ_DELETE, .key = keys[k]};
        if (objstore_run(a->st, dels, 4)) stress_fail(a, "run DELETE", dels[0].err);
        if (objstore_head(a->st, keys[0], NULL, err, sizeof err) != OBJ_NOT_FOUND)
            stress_fail(a, "HEAD after DELETE", "still there");
    }
    return NULL;
}

static bool parse_u64(const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return false;
    *v = x;
    return true;
}

static int run(objstore_t *st, int argc, char **argv) {
    char err[512] = "";
    const char *cmd = argv[0];
    if (!strcmp(cmd, "put") && argc == 3) {
        size_t len;
        uint8_t *data = read_all(argv[2], &len);
        if (!data) {
            fprintf(stderr, "objstore-cli: cannot read %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        int n = (int)(len / PIECE) + 1;
        struct iovec *iov = calloc((size_t)n, sizeof *iov);
        int k = 0;
        for (size_t off = 0; off < len; off += PIECE, k++) {
            iov[k].iov_base = data + off;
            iov[k].iov_len = len - off < PIECE ? len - off : PIECE;
        }
        int rc = objstore_put(st, argv[1], iov, k, err, sizeof err);
        free(iov);
        free(data);
        return status_exit(rc, err);
    }
    if (!strcmp(cmd, "get") && (argc == 2 || argc == 4)) {
        uint64_t off = 0, len = 0;
        if (argc == 4 && (!parse_u64(argv[2], &off) || !parse_u64(argv[3], &len))) return usage();
        uint8_t *out = NULL;
        size_t n = 0;
        int rc = objstore_get(st, argv[1], off, len, &out, &n, err, sizeof err);
        if (rc == OBJ_OK && n && fwrite(out, 1, n, stdout) != n) {
            fprintf(stderr, "objstore-cli: write to stdout failed\n");
            rc = OBJ_ERROR;
            snprintf(err, sizeof err, "stdout");
        }
        free(out);
        if (fflush(stdout) != 0) return 1;
        return status_exit(rc, err);
    }
    if (!strcmp(cmd, "head") && argc == 2) {
        uint64_t size = 0;
        int rc = objstore_head(st, argv[1], &size, err, sizeof err);
        if (rc == OBJ_OK) printf("%" PRIu64 "\n", size);
        return status_exit(rc, err);
    }
    if (!strcmp(cmd, "del") && argc == 2) return status_exit(objstore_delete(st, argv[1], err, sizeof err), err);
    if (!strcmp(cmd, "ls") && argc <= 2) {
        int rc = objstore_list(st, argc == 2 ? argv[1] : "", print_key, NULL, err, sizeof err);
        return status_exit(rc, err);
    }
    if (!strcmp(cmd, "putn") && argc == 4) {
        uint64_t count;
        if (!parse_u64(argv[2], &count) || count == 0 || count > 1000000) return usage();
        size_t len;
        uint8_t *data = read_all(argv[3], &len);
        if (!data) {
            fprintf(stderr, "objstore-cli: cannot read %s: %s\n", argv[3], strerror(errno));
            return 1;
        }
        struct iovec v = {data, len};
        objstore_op_t *ops = calloc(count, sizeof *ops);
        char (*names)[1100] = calloc(count, sizeof *names);
        if (!ops || !names) abort();
        for (uint64_t i = 0; i < count; i++) {
            snprintf(names[i], sizeof names[i], "%s%05" PRIu64, argv[1], i);
            ops[i] = (objstore_op_t){.kind = OBJ_PUT, .key = names[i], .iov = &v, .iovcnt = 1};
        }
        objstore_run(st, ops, (int)count);
        int rc = report_ops(ops, count);
        free(ops);
        free(names);
        free(data);
        return rc;
    }
    if (!strcmp(cmd, "stress") && argc == 4) {
        uint64_t nthreads, rounds;
        if (!parse_u64(argv[2], &nthreads) || !parse_u64(argv[3], &rounds) || !nthreads || nthreads > 64 ||
            rounds > 100000)
            return usage();
        pthread_t th[64];
        stress_t args[64];
        for (int i = 0; i < (int)nthreads; i++) {
            args[i] = (stress_t){.st = st, .prefix = argv[1], .id = i, .rounds = (int)rounds};
            if (pthread_create(&th[i], NULL, stress_thread, &args[i]) != 0) abort();
        }
        int failures = 0;
        for (int i = 0; i < (int)nthreads; i++) {
            pthread_join(th[i], NULL);
            failures += args[i].failures;
        }
        printf("%d failures\n", failures);
        return failures ? 1 : 0;
    }
    if (!strcmp(cmd, "delprefix") && argc == 2) {
        keys_t k = {0};
        if (objstore_list(st, argv[1], collect_key, &k, err, sizeof err) != OBJ_OK) return status_exit(OBJ_ERROR, err);
        objstore_op_t *ops = calloc(k.n ? k.n : 1, sizeof *ops);
        if (!ops) abort();
        for (size_t i = 0; i < k.n; i++) ops[i] = (objstore_op_t){.kind = OBJ_DELETE, .key = k.v[i]};
        if (k.n) objstore_run(st, ops, (int)k.n);
        int rc = report_ops(ops, k.n);
        printf("%zu\n", k.n);
        for (size_t i = 0; i < k.n; i++) free(k.v[i]);
        free(k.v);
        free(ops);
        return rc;
    }
    return usage();
}

int main(int argc, char **argv) {
    log_init("objstore-cli");
    bool stats = false;
    int a = 1;
    if (a < argc && !strcmp(argv[a], "-s")) {
        stats = true;
        a++;
    }
    if (a >= argc) return usage();
    objstore_config_t cfg;
    objstore_config_from_env(&cfg, env_str("KAFSCALE_DATA_DIR", "./data"));
    char err[256];
    objstore_t *st = objstore_open(&cfg, err, sizeof err);
    if (!st) {
        fprintf(stderr, "objstore-cli: %s\n", err);
        return 2;
    }
    int rc = run(st, argc - a, argv + a);
    if (stats) {
        objstore_stats_t s;
        objstore_get_stats(st, &s);
        fprintf(stderr,
                "stats: backend=%s puts=%" PRIu64 " gets=%" PRIu64 " heads=%" PRIu64 " deletes=%" PRIu64
                " lists=%" PRIu64 " bytes_put=%" PRIu64 " bytes_got=%" PRIu64 " retries=%" PRIu64 " errors=%" PRIu64
                " not_found=%" PRIu64 "\n",
                objstore_backend(st), s.puts, s.gets, s.heads, s.deletes, s.lists, s.bytes_put, s.bytes_got, s.retries,
                s.errors, s.not_found);
    }
    objstore_close(st);
    return rc;
}
