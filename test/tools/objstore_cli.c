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
 *
 * -s prints the store's counters to stderr at the end (one "stats:" line).
 * Exit status: 0 ok, 1 error, 2 usage or configuration, 3 not found.
 */
#include <errno.h>
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
            "usage: objstore-cli [-s] put KEY FILE | get KEY [OFF LEN] | head KEY | del KEY | ls [PREFIX]\n");
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
