/* test_objstore.c - unit tests of the object store (common/objstore*.c):
 * the file backend end to end in a temp dir (put/get/range/head/delete/list,
 * atomicity, key rules, many threads), configuration from the environment,
 * and the S3 backend's pure parts (SHA-256, URI encoding, URLs, the
 * ListObjectsV2 parser). The S3 wire is tested by test/e2e/test_s3_sigv4.py
 * and test/e2e/test_objstore_s3.py.
 */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "objstore.h"

/* ---- helpers ---- */

static char tmproot[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

static objstore_t *open_tmp_store(void) {
    snprintf(tmproot, sizeof tmproot, "/tmp/kafscale-objstore-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmproot));
    objstore_config_t cfg;
    objstore_config_defaults(&cfg);
    snprintf(cfg.file_root, sizeof cfg.file_root, "%s/objects", tmproot);
    char err[256];
    objstore_t *s = objstore_open(&cfg, err, sizeof err);
    ck_assert_msg(s != NULL, "open: %s", err);
    ck_assert_str_eq(objstore_backend(s), "file");
    return s;
}

static void close_tmp_store(objstore_t *s) {
    objstore_close(s);
    nftw(tmproot, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int put_str(objstore_t *s, const char *key, const char *val) {
    struct iovec v = {(void *)val, strlen(val)};
    char err[256];
    return objstore_put(s, key, &v, 1, err, sizeof err);
}

static char *get_str(objstore_t *s, const char *key) {
    uint8_t *out = NULL;
    size_t n = 0;
    char err[256];
    if (objstore_get(s, key, 0, 0, &out, &n, err, sizeof err) != OBJ_OK) return NULL;
    char *r = malloc(n + 1);
    memcpy(r, out, n);
    r[n] = '\0';
    free(out);
    return r;
}

typedef struct listed {
    char keys[64][128];
    uint64_t sizes[64];
    int n, stop_after;
} listed_t;

static int collect(const char *key, uint64_t size, void *arg) {
    listed_t *l = arg;
    ck_assert_int_lt(l->n, 64);
    snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
    l->sizes[l->n++] = size;
    return l->stop_after && l->n >= l->stop_after;
}

static int tmp_files_found;
static int find_tmp_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    if (strstr(p + ftw->base, ".kstmp.")) tmp_files_found++;
    return 0;
}

/* ---- file backend ---- */

START_TEST(file_put_get_roundtrip_with_pieces) {
    objstore_t *s = open_tmp_store();
    size_t big = 1 << 20;
    uint8_t *b = malloc(big);
    for (size_t i = 0; i < big; i++) b[i] = (uint8_t)(i * 131 + 7);
    struct iovec v[5] = {{(void *)"head", 4}, {(void *)"", 0}, {b, big}, {(void *)"", 0}, {(void *)"tail", 4}};
    char err[256];
    ck_assert_int_eq(objstore_put(s, "t/0/00000000000000000000.kfs", v, 5, err, sizeof err), OBJ_OK);
    uint8_t *out;
    size_t n;
    ck_assert_int_eq(objstore_get(s, "t/0/00000000000000000000.kfs", 0, 0, &out, &n, err, sizeof err), OBJ_OK);
    ck_assert_uint_eq(n, big + 8);
    ck_assert(!memcmp(out, "head", 4) && !memcmp(out + 4, b, big) && !memcmp(out + 4 + big, "tail", 4));
    free(out);
    /* empty object: OBJ_OK, a freeable non-NULL buffer, 0 bytes */
    ck_assert_int_eq(objstore_put(s, "empty", NULL, 0, err, sizeof err), OBJ_OK);
    ck_assert_int_eq(objstore_get(s, "empty", 0, 0, &out, &n, err, sizeof err), OBJ_OK);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(n, 0);
    free(out);
    /* overwrite replaces whole */
    ck_assert_int_eq(put_str(s, "k", "first-version"), OBJ_OK);
    ck_assert_int_eq(put_str(s, "k", "v2"), OBJ_OK);
    char *str = get_str(s, "k");
    ck_assert_str_eq(str, "v2");
    free(str);
    objstore_stats_t st;
    objstore_get_stats(s, &st);
    ck_assert_uint_eq(st.puts, 4);
    ck_assert_uint_eq(st.gets, 3);
    ck_assert_uint_eq(st.bytes_put, big + 8 + 13 + 2);
    ck_assert_uint_eq(st.bytes_got, big + 8 + 2);
    ck_assert_uint_eq(st.errors, 0);
    free(b);
    close_tmp_store(s);
}
END_TEST

/* Objects around the O_DIRECT threshold and the 4 MiB bounce buffer, made
 * of odd-sized pieces, read back byte for byte with their exact size;
 * _i = 0 with O_DIRECT (the default), 1 through the page cache. */
START_TEST(file_put_direct_and_buffered_sizes) {
    snprintf(tmproot, sizeof tmproot, "/tmp/kafscale-objstore-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmproot));
    objstore_config_t cfg;
    objstore_config_defaults(&cfg);
    ck_assert(cfg.file_direct);
    cfg.file_direct = _i == 0;
    snprintf(cfg.file_root, sizeof cfg.file_root, "%s/objects", tmproot);
    char err[256];
    objstore_t *s = objstore_open(&cfg, err, sizeof err);
    ck_assert_msg(s != NULL, "open: %s", err);
    const size_t sizes[] = {(256u << 10) - 1, 256u << 10, (256u << 10) + 3, (4u << 20) - 1, 4u << 20,
                            (4u << 20) + 1, (8u << 20) + 4097};
    size_t maxsz = (8u << 20) + 4097;
    uint8_t *b = malloc(maxsz);
    for (size_t i = 0; i < maxsz; i++) b[i] = (uint8_t)(i * 131 + (i >> 12) + 7);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        /* pieces of 1, 7, 4093, 65537, ... bytes, then the rest */
        struct iovec v[16];
        int nv = 0;
        size_t off = 0, piece[] = {1, 7, 4093, 65537, 1000003};
        for (int j = 0; j < 5 && off + piece[j] < sizes[k]; j++) {
            v[nv++] = (struct iovec){b + off, piece[j]};
            off += piece[j];
        }
        v[nv++] = (struct iovec){b + off, sizes[k] - off};
        char key[64];
        snprintf(key, sizeof key, "t/0/%020zu.kfs", k);
        ck_assert_msg(objstore_put(s, key, v, nv, err, sizeof err) == OBJ_OK, "put %zu: %s", sizes[k], err);
        struct stat st;
        char path[600];
        snprintf(path, sizeof path, "%s/objects/%s", tmproot, key);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq((size_t)st.st_size, sizes[k]);
        uint8_t *out;
        size_t n;
        ck_assert_int_eq(objstore_get(s, key, 0, 0, &out, &n, err, sizeof err), OBJ_OK);
        ck_assert_uint_eq(n, sizes[k]);
        ck_assert_msg(!memcmp(out, b, n), "object of %zu bytes differs", sizes[k]);
        free(out);
    }
    /* an overwrite by a shorter object leaves no bytes of the longer one */
    struct iovec v = {b, (300u << 10) + 5};
    ck_assert_int_eq(objstore_put(s, "t/0/00000000000000000004.kfs", &v, 1, err, sizeof err), OBJ_OK);
    uint8_t *out;
    size_t n;
    ck_assert_int_eq(objstore_get(s, "t/0/00000000000000000004.kfs", 0, 0, &out, &n, err, sizeof err), OBJ_OK);
    ck_assert_uint_eq(n, v.iov_len);
    ck_assert(!memcmp(out, b, n));
    free(out);
    free(b);
    close_tmp_store(s);
}
END_TEST

START_TEST(file_get_ranges) {
    objstore_t *s = open_tmp_store();
    ck_assert_int_eq(put_str(s, "r", "0123456789"), OBJ_OK);
    static const struct { uint64_t off, len; const char *want; } ok[] = {
        {0, 0, "0123456789"}, {3, 4, "3456"}, {0, 1, "0"}, {9, 1, "9"}, {7, 0, "789"}, {7, 100, "789"}, {0, 10, "0123456789"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint8_t *out;
        size_t n;
        ck_assert_int_eq(objstore_get(s, "r", ok[i].off, ok[i].len, &out, &n, err, sizeof err), OBJ_OK);
        ck_assert_msg(n == strlen(ok[i].want) && !memcmp(out, ok[i].want, n), "range %d", (int)i);
        free(out);
    }
    /* starting at or past the end: error, like S3's 416 */
    uint8_t *out = (uint8_t *)"x";
    size_t n = 99;
    ck_assert_int_eq(objstore_get(s, "r", 10, 0, &out, &n, err, sizeof err), OBJ_ERROR);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(n, 0);
    ck_assert(strstr(err, "range not satisfiable"));
    ck_assert_int_eq(objstore_get(s, "r", 11, 2, &out, &n, err, sizeof err), OBJ_ERROR);
    /* into a caller buffer: fits, and too small */
    uint8_t buf[8];
    objstore_op_t ops[2] = {
        {.kind = OBJ_GET, .key = "r", .offset = 2, .length = 8, .buf = buf, .cap = sizeof buf},
        {.kind = OBJ_GET, .key = "r", .buf = buf, .cap = sizeof buf},
    };
    ck_assert_int_eq(objstore_run(s, ops, 2), 1);
    ck_assert_int_eq(ops[0].status, OBJ_OK);
    ck_assert_ptr_null(ops[0].out);
    ck_assert_uint_eq(ops[0].out_len, 8);
    ck_assert(!memcmp(buf, "23456789", 8));
    ck_assert_int_eq(ops[1].status, OBJ_ERROR);
    ck_assert(strstr(ops[1].err, "larger than the buffer"));
    close_tmp_store(s);
}
END_TEST

START_TEST(file_head_delete_and_not_found) {
    objstore_t *s = open_tmp_store();
    char err[256];
    uint64_t size = 7;
    ck_assert_int_eq(objstore_head(s, "nope", &size, err, sizeof err), OBJ_NOT_FOUND);
    ck_assert_uint_eq(size, 0);
    uint8_t *out = (uint8_t *)"x";
    ck_assert_int_eq(objstore_get(s, "nope/deeper", 0, 0, &out, NULL, err, sizeof err), OBJ_NOT_FOUND);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(put_str(s, "ns/t/0/a.kfs", "hello"), OBJ_OK);
    ck_assert_int_eq(objstore_head(s, "ns/t/0/a.kfs", &size, err, sizeof err), OBJ_OK);
    ck_assert_uint_eq(size, 5);
    /* a "directory" is not an object */
    ck_assert_int_eq(objstore_head(s, "ns/t", &size, err, sizeof err), OBJ_NOT_FOUND);
    ck_assert_int_eq(objstore_get(s, "ns/t", 0, 0, &out, NULL, err, sizeof err), OBJ_NOT_FOUND);
    ck_assert_int_eq(objstore_delete(s, "ns/t", err, sizeof err), OBJ_NOT_FOUND);
    /* a file is not a directory */
    ck_assert_int_eq(objstore_head(s, "ns/t/0/a.kfs/x", &size, err, sizeof err), OBJ_NOT_FOUND);
    ck_assert_int_eq(put_str(s, "ns/t/0/a.kfs/x", "y"), OBJ_ERROR);

    ck_assert_int_eq(objstore_delete(s, "ns/t/0/a.kfs", err, sizeof err), OBJ_OK);
    ck_assert_int_eq(objstore_delete(s, "ns/t/0/a.kfs", err, sizeof err), OBJ_NOT_FOUND);
    ck_assert(strstr(err, "not found"));
    /* the emptied directories are gone, the root stays */
    char p[400];
    struct stat st;
    snprintf(p, sizeof p, "%s/objects/ns", tmproot);
    ck_assert_int_ne(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/objects", tmproot);
    ck_assert_int_eq(stat(p, &st), 0);
    /* and a PUT recreates them */
    ck_assert_int_eq(put_str(s, "ns/t/0/a.kfs", "again"), OBJ_OK);
    /* a missing DELETE is no failure for objstore_run */
    objstore_op_t ops[2] = {{.kind = OBJ_DELETE, .key = "ns/t/0/a.kfs"}, {.kind = OBJ_DELETE, .key = "ns/missing"}};
    ck_assert_int_eq(objstore_run(s, ops, 2), 0);
    ck_assert_int_eq(ops[0].status, OBJ_OK);
    ck_assert_int_eq(ops[1].status, OBJ_NOT_FOUND);
    objstore_stats_t sst;
    objstore_get_stats(s, &sst);
    ck_assert_uint_eq(sst.deletes, 5);
    ck_assert_uint_eq(sst.not_found, 8);
    ck_assert_uint_eq(sst.errors, 1);
    close_tmp_store(s);
}
END_TEST

START_TEST(file_list_in_byte_order_with_prefixes) {
    objstore_t *s = open_tmp_store();
    /* '-' (2d) < '.' (2e) < '/' (2f) < '0' (30): a naive directory walk
     * would list "a/..." before "a.b". */
    static const char *keys[] = {"b", "a/x", "a.b", "a-b", "a0", "a/b/c", "a/b.c", "a/bb", "ab/z", "a/b/d/e"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) ck_assert_int_eq(put_str(s, keys[i], keys[i]), OBJ_OK);
    static const char *sorted[] = {"a-b", "a.b", "a/b.c", "a/b/c", "a/b/d/e", "a/bb", "a/x", "a0", "ab/z", "b"};
    listed_t l = {0};
    char err[256];
    ck_assert_int_eq(objstore_list(s, "", collect, &l, err, sizeof err), OBJ_OK);
    ck_assert_int_eq(l.n, 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_str_eq(l.keys[i], sorted[i]);
        ck_assert_uint_eq(l.sizes[i], strlen(sorted[i]));
    }
    static const struct { const char *prefix; int n; const char *first, *last; } q[] = {
        {"a/", 5, "a/b.c", "a/x"}, {"a/b", 4, "a/b.c", "a/bb"}, {"a/b/", 2, "a/b/c", "a/b/d/e"},
        {"a", 9, "a-b", "ab/z"}, {"a/b/d/e", 1, "a/b/d/e", "a/b/d/e"}, {"a/b/d/e/", 0, NULL, NULL},
        {"zzz/", 0, NULL, NULL}, {"zz", 0, NULL, NULL}, {"a/x/", 0, NULL, NULL}, {"a/xx", 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        memset(&l, 0, sizeof l);
        ck_assert_int_eq(objstore_list(s, q[i].prefix, collect, &l, err, sizeof err), OBJ_OK);
        ck_assert_msg(l.n == q[i].n, "prefix '%s': %d keys", q[i].prefix, l.n);
        if (q[i].n) {
            ck_assert_str_eq(l.keys[0], q[i].first);
            ck_assert_str_eq(l.keys[l.n - 1], q[i].last);
        }
    }
    /* stop early */
    memset(&l, 0, sizeof l);
    l.stop_after = 3;
    ck_assert_int_eq(objstore_list(s, "", collect, &l, err, sizeof err), OBJ_OK);
    ck_assert_int_eq(l.n, 3);
    /* a prefix that tries to leave the root */
    ck_assert_int_eq(objstore_list(s, "../", collect, &l, err, sizeof err), OBJ_ERROR);
    ck_assert_int_eq(objstore_list(s, "a/../../x", collect, &l, err, sizeof err), OBJ_ERROR);
    ck_assert_int_eq(objstore_list(s, "/etc", collect, &l, err, sizeof err), OBJ_ERROR);
    close_tmp_store(s);
}
END_TEST

START_TEST(file_put_is_atomic_and_leaves_no_temp_files) {
    objstore_t *s = open_tmp_store();
    objstore_op_t ops[40];
    char keys[40][32];
    for (int i = 0; i < 40; i++) {
        snprintf(keys[i], sizeof keys[i], "t/%d/seg-%02d", i % 4, i);
        static const struct iovec v = {(void *)"payload", 7};
        ops[i] = (objstore_op_t){.kind = OBJ_PUT, .key = keys[i], .iov = &v, .iovcnt = 1};
    }
    ck_assert_int_eq(objstore_run(s, ops, 40), 0);
    for (int i = 0; i < 40; i++) ck_assert_int_eq(ops[i].status, OBJ_OK);
    tmp_files_found = 0;
    nftw(tmproot, find_tmp_cb, 16, FTW_PHYS);
    ck_assert_int_eq(tmp_files_found, 0);
    /* A temp file left by a crash is neither listed nor readable as a key. */
    char p[400];
    snprintf(p, sizeof p, "%s/objects/t/0/.kstmp.seg-99.1.1", tmproot);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("partial", f);
    fclose(f);
    listed_t l = {0};
    char err[256];
    ck_assert_int_eq(objstore_list(s, "t/0/", collect, &l, err, sizeof err), OBJ_OK);
    ck_assert_int_eq(l.n, 10);
    for (int i = 0; i < l.n; i++) ck_assert(!strstr(l.keys[i], "kstmp"));
    uint64_t size;
    ck_assert_int_eq(objstore_head(s, "t/0/.kstmp.seg-99.1.1", &size, err, sizeof err), OBJ_ERROR);
    close_tmp_store(s);
}
END_TEST

/* Writes a file (a temp file left by an interrupted PUT) and sets its mtime
 * age_s seconds back. */
static void plant(const char *rel, int age_s) {
    char p[400];
    snprintf(p, sizeof p, "%s/objects/%s", tmproot, rel);
    FILE *f = fopen(p, "w");
    ck_assert_msg(f != NULL, "%s", p);
    fputs("partial", f);
    fclose(f);
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= age_s;
    ts[1] = ts[0];
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static bool exists_rel(const char *rel) {
    char p[400];
    snprintf(p, sizeof p, "%s/objects/%s", tmproot, rel);
    return access(p, F_OK) == 0;
}

START_TEST(file_clean_temp_removes_only_old_temp_files) {
    objstore_t *s = open_tmp_store();
    ck_assert_int_eq(put_str(s, "ns/t/0/seg-1", "x"), OBJ_OK);
    ck_assert_int_eq(put_str(s, "ns/t/1/deep/seg-2", "y"), OBJ_OK);
    plant("ns/t/0/.kstmp.seg-3.111.1", 120);        /* a kill -9 two minutes ago */
    plant("ns/t/1/deep/.kstmp.seg-4.111.2", 3600);  /* deeper, older */
    plant("ns/t/0/.kstmp.seg-5.222.1", 0);          /* an upload in progress */
    plant("ns/t/0/old-but-not-temp", 3600);         /* not ours to judge */
    char err[256] = "x";
    ck_assert_int_eq(objstore_clean_temp(s, 60000, err, sizeof err), 2);
    ck_assert_str_eq(err, "");
    ck_assert(!exists_rel("ns/t/0/.kstmp.seg-3.111.1"));
    ck_assert(!exists_rel("ns/t/1/deep/.kstmp.seg-4.111.2"));
    ck_assert(exists_rel("ns/t/0/.kstmp.seg-5.222.1"));
    ck_assert(exists_rel("ns/t/0/old-but-not-temp"));
    char *v = get_str(s, "ns/t/0/seg-1");
    ck_assert_str_eq(v, "x");
    free(v);
    v = get_str(s, "ns/t/1/deep/seg-2");
    ck_assert_str_eq(v, "y");
    free(v);
    /* Nothing left to do; then with no age limit the fresh one goes too. */
    ck_assert_int_eq(objstore_clean_temp(s, 60000, err, sizeof err), 0);
    ck_assert_int_eq(objstore_clean_temp(s, 0, err, sizeof err), 1);
    ck_assert(!exists_rel("ns/t/0/.kstmp.seg-5.222.1"));
    close_tmp_store(s);
}
END_TEST

static const char *bad_keys[] = {
    "", "/a", "a/", "a//b", "..", ".", "../x", "a/../b", "a/..", "a/./b", "./a", ".kstmp.x", "a/.kstmp.y",
    "a\nb", "tab\tkey", "del\x7f",
};
static const char *good_keys[] = {"a..b", "...", ".hidden", "a/b.c", "x/..y/z", "a b", "ns/t/0/00000000000000000042.kfs",
                                  "\xc3\xa9t\xc3\xa9"};

START_TEST(key_rules_refuse_bad_keys_without_io) {
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
        ck_assert_msg(!objstore_key_valid(bad_keys[i]), "accepted '%s'", bad_keys[i]);
    for (size_t i = 0; i < sizeof good_keys / sizeof good_keys[0]; i++)
        ck_assert_msg(objstore_key_valid(good_keys[i]), "refused '%s'", good_keys[i]);
    ck_assert(!objstore_key_valid(NULL));
    char long_key[OBJSTORE_KEY_MAX + 2];
    memset(long_key, 'k', sizeof long_key);
    long_key[OBJSTORE_KEY_MAX] = '\0';
    ck_assert(objstore_key_valid(long_key));
    long_key[OBJSTORE_KEY_MAX] = 'k';
    long_key[OBJSTORE_KEY_MAX + 1] = '\0';
    ck_assert(!objstore_key_valid(long_key));

    objstore_t *s = open_tmp_store();
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        objstore_op_t ops[4] = {
            {.kind = OBJ_PUT, .key = bad_keys[i]}, {.kind = OBJ_GET, .key = bad_keys[i]},
            {.kind = OBJ_HEAD, .key = bad_keys[i]}, {.kind = OBJ_DELETE, .key = bad_keys[i]},
        };
        ck_assert_int_eq(objstore_run(s, ops, 4), 4);
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(ops[k].status, OBJ_ERROR);
            ck_assert(strstr(ops[k].err, "invalid key"));
            ck_assert_int_eq(ops[k].attempts, 0);
        }
    }
    /* nothing escaped the root */
    char p[400];
    struct stat st;
    snprintf(p, sizeof p, "%s/x", tmproot);
    ck_assert_int_ne(stat(p, &st), 0);
    for (size_t i = 0; i < sizeof good_keys / sizeof good_keys[0]; i++)
        ck_assert_msg(put_str(s, good_keys[i], "v") == OBJ_OK, "'%s'", good_keys[i]);
    listed_t l = {0};
    char err[256];
    ck_assert_int_eq(objstore_list(s, "", collect, &l, err, sizeof err), OBJ_OK);
    ck_assert_int_eq(l.n, (int)(sizeof good_keys / sizeof good_keys[0]));
    close_tmp_store(s);
}
END_TEST

typedef struct thr_arg {
    objstore_t *s;
    int id;
    int failures;
} thr_arg_t;

static void *hammer(void *arg) {
    thr_arg_t *a = arg;
    char key[64], val[64], err[256];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "shared/%d/k%d", i % 3, (i + a->id) % 7);
        snprintf(val, sizeof val, "thread-%d-iteration-%d", a->id, i);
        struct iovec v = {val, strlen(val)};
        if (objstore_put(a->s, key, &v, 1, err, sizeof err) != OBJ_OK) a->failures++;
        uint8_t *out = NULL;
        size_t n;
        int rc = objstore_get(a->s, key, 0, 0, &out, &n, err, sizeof err);
        /* another thread may have deleted it; what is there is always whole */
        if (rc == OBJ_OK && (n < 20 || memcmp(out, "thread-", 7))) a->failures++;
        if (rc == OBJ_ERROR) a->failures++;
        free(out);
        if (i % 5 == 0 && objstore_delete(a->s, key, err, sizeof err) == OBJ_ERROR) a->failures++;
    }
    return NULL;
}

START_TEST(file_store_is_thread_safe) {
    objstore_t *s = open_tmp_store();
    pthread_t th[8];
    thr_arg_t args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (thr_arg_t){.s = s, .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].failures, 0);
    }
    tmp_files_found = 0;
    nftw(tmproot, find_tmp_cb, 16, FTW_PHYS);
    ck_assert_int_eq(tmp_files_found, 0);
    objstore_stats_t st;
    objstore_get_stats(s, &st);
    ck_assert_uint_eq(st.puts, 1600);
    ck_assert_uint_eq(st.gets, 1600);
    close_tmp_store(s);
}
END_TEST

/* ---- configuration ---- */

static void clear_env(void) {
    static const char *vars[] = {
        "KAFSCALE_S3_BUCKET", "KAFSCALE_S3_REGION", "KAFSCALE_S3_ENDPOINT", "KAFSCALE_S3_PATH_STYLE",
        "KAFSCALE_S3_KMS_ARN", "KAFSCALE_S3_READ_BUCKET", "KAFSCALE_S3_READ_REGION", "KAFSCALE_S3_READ_ENDPOINT",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "KAFSCALE_S3_MAX_INFLIGHT",
        "KAFSCALE_S3_MAX_RETRIES", "KAFSCALE_S3_TIMEOUT_MS", "KAFSCALE_S3_BACKOFF_MS", "KAFSCALE_S3_BACKOFF_MAX_MS",
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

START_TEST(config_defaults_and_values) {
    clear_env();
    objstore_config_t c;
    objstore_config_from_env(&c, "/var/lib/kafscale");
    ck_assert_str_eq(c.file_root, "/var/lib/kafscale/objects");
    ck_assert_str_eq(c.bucket, "");
    ck_assert_str_eq(c.region, "us-east-1");
    ck_assert(!c.path_style);
    ck_assert_int_eq(c.max_inflight, 16);
    ck_assert_int_eq(c.max_retries, 5);
    ck_assert_int_eq(c.timeout_ms, 30000);
    ck_assert_int_eq(c.backoff_ms, 100);
    ck_assert_int_eq(c.backoff_max_ms, 5000);

    setenv("KAFSCALE_S3_BUCKET", "my-bucket", 1);
    setenv("KAFSCALE_S3_REGION", "eu-central-1", 1);
    setenv("KAFSCALE_S3_ENDPOINT", "http://minio:9000/", 1);
    setenv("KAFSCALE_S3_READ_BUCKET", "replica", 1);
    setenv("KAFSCALE_S3_KMS_ARN", "arn:aws:kms:eu-central-1:111122223333:key/abcd", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SECRET", 1);
    setenv("AWS_SESSION_TOKEN", "TOKEN", 1);
    setenv("KAFSCALE_S3_MAX_INFLIGHT", "64", 1);
    setenv("KAFSCALE_S3_MAX_RETRIES", "0", 1);
    setenv("KAFSCALE_S3_TIMEOUT_MS", "1500", 1);
    objstore_config_from_env(&c, "d");
    ck_assert_str_eq(c.bucket, "my-bucket");
    ck_assert_str_eq(c.region, "eu-central-1");
    ck_assert_str_eq(c.endpoint, "http://minio:9000"); /* trailing '/' dropped */
    ck_assert(c.path_style);                           /* default with an endpoint */
    ck_assert_str_eq(c.read_bucket, "replica");
    ck_assert_str_eq(c.read_region, "eu-central-1"); /* defaults to region */
    ck_assert_str_eq(c.kms_arn, "arn:aws:kms:eu-central-1:111122223333:key/abcd");
    ck_assert_str_eq(c.access_key, "AKID");
    ck_assert_str_eq(c.secret_key, "SECRET");
    ck_assert_str_eq(c.session_token, "TOKEN");
    ck_assert_int_eq(c.max_inflight, 64);
    ck_assert_int_eq(c.max_retries, 0);
    ck_assert_int_eq(c.timeout_ms, 1500);
    setenv("KAFSCALE_S3_PATH_STYLE", "false", 1);
    objstore_config_from_env(&c, "d");
    ck_assert(!c.path_style);
    unsetenv("KAFSCALE_S3_ENDPOINT");
    unsetenv("KAFSCALE_S3_PATH_STYLE");
    objstore_config_from_env(&c, "d");
    ck_assert(!c.path_style); /* AWS: virtual-host style */
    setenv("KAFSCALE_S3_PATH_STYLE", "1", 1);
    objstore_config_from_env(&c, "d");
    ck_assert(c.path_style);
    clear_env();
}
END_TEST

static const struct { const char *var, *value; } bad_cfg[] = {
    {"KAFSCALE_S3_ENDPOINT", "ftp://x"},       {"KAFSCALE_S3_ENDPOINT", "minio:9000"},
    {"KAFSCALE_S3_ENDPOINT", "http://"},       {"KAFSCALE_S3_ENDPOINT", "http://h:1/path"},
    {"KAFSCALE_S3_READ_ENDPOINT", "nope"},     {"KAFSCALE_S3_PATH_STYLE", "maybe"},
    {"KAFSCALE_S3_MAX_INFLIGHT", "0"},         {"KAFSCALE_S3_MAX_INFLIGHT", "many"},
    {"KAFSCALE_S3_MAX_RETRIES", "-1"},         {"KAFSCALE_S3_TIMEOUT_MS", "5"},
    {"KAFSCALE_S3_BACKOFF_MS", "0"},           {"KAFSCALE_S3_BACKOFF_MAX_MS", "x"},
    {"KAFSCALE_S3_REGION", "US EAST"},         {"KAFSCALE_S3_BUCKET", "bad/bucket"},
    {"AWS_ACCESS_KEY_ID", "only-the-key-id"},  {"AWS_SECRET_ACCESS_KEY", "only-the-secret"},
    {"KAFSCALE_S3_KMS_ARN", "has space"},
};

START_TEST(config_bad_values_exit_naming_the_variable) {
    clear_env();
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        setenv(bad_cfg[_i].var, bad_cfg[_i].value, 1);
        objstore_config_t c;
        objstore_config_from_env(&c, "d");
        _exit(0);
    }
    close(fds[1]);
    char msg[512];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof msg - 1 && (k = read(fds[0], msg + n, sizeof msg - 1 - n)) > 0) n += (size_t)k;
    msg[n] = '\0';
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s=%s accepted", bad_cfg[_i].var, bad_cfg[_i].value);
    /* the key id without a secret names the missing one */
    const char *name = !strcmp(bad_cfg[_i].var, "AWS_ACCESS_KEY_ID")       ? "AWS_SECRET_ACCESS_KEY"
                       : !strcmp(bad_cfg[_i].var, "AWS_SECRET_ACCESS_KEY") ? "AWS_ACCESS_KEY_ID"
                                                                            : bad_cfg[_i].var;
    ck_assert_msg(strstr(msg, name), "message does not name %s: %s", name, msg);
    ck_assert_msg(!strstr(msg, "only-the-secret"), "secret echoed: %s", msg);
}
END_TEST

/* ---- S3 pure parts ---- */

START_TEST(sha256_known_vectors) {
    static const struct { const char *in, *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct iovec one = {(void *)v[i].in, strlen(v[i].in)};
        objstore_sha256_hex(&one, 1, hex);
        ck_assert_str_eq(hex, v[i].hex);
    }
    objstore_sha256_hex(NULL, 0, hex);
    ck_assert_str_eq(hex, v[0].hex);
    /* the same bytes in uneven pieces hash the same */
    const char *s = v[2].in;
    struct iovec parts[4] = {{(void *)s, 1}, {(void *)(s + 1), 0}, {(void *)(s + 1), 30}, {(void *)(s + 31), 25}};
    objstore_sha256_hex(parts, 4, hex);
    ck_assert_str_eq(hex, v[2].hex);
    /* a million 'a' in 1000 pieces */
    char *a = malloc(1000);
    memset(a, 'a', 1000);
    struct iovec *many = malloc(1000 * sizeof *many);
    for (int i = 0; i < 1000; i++) many[i] = (struct iovec){a, 1000};
    objstore_sha256_hex(many, 1000, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(many);
    free(a);
}
END_TEST

START_TEST(uri_encode_as_sigv4_wants) {
    char out[128];
    ck_assert_int_eq(objstore_uri_encode(out, sizeof out, "a/b c+d&e=f~g.h-_", true), 25);
    ck_assert_str_eq(out, "a/b%20c%2Bd%26e%3Df~g.h-_");
    objstore_uri_encode(out, sizeof out, "a/b=", false);
    ck_assert_str_eq(out, "a%2Fb%3D");
    objstore_uri_encode(out, sizeof out, "\xc3\xa9*!'()%", true);
    ck_assert_str_eq(out, "%C3%A9%2A%21%27%28%29%25");
    ck_assert_int_eq(objstore_uri_encode(out, sizeof out, "", true), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(objstore_uri_encode(out, 4, "abc", true), 3);
    ck_assert_int_eq(objstore_uri_encode(out, 3, "abc", true), -1);
    ck_assert_int_eq(objstore_uri_encode(out, 5, "ab c", true), -1);
}
END_TEST

START_TEST(s3_urls_path_and_virtual_host) {
    char u[512];
    ck_assert_int_eq(objstore_s3_url(u, sizeof u, "", "bk", "eu-west-1", false, "t/0/00.kfs", NULL, NULL), 0);
    ck_assert_str_eq(u, "https://bk.s3.eu-west-1.amazonaws.com/t/0/00.kfs");
    objstore_s3_url(u, sizeof u, "", "bk", "eu-west-1", true, "t/0/00.kfs", NULL, NULL);
    ck_assert_str_eq(u, "https://s3.eu-west-1.amazonaws.com/bk/t/0/00.kfs");
    objstore_s3_url(u, sizeof u, "http://127.0.0.1:9000", "bk", "us-east-1", true, "a b/c+d", NULL, NULL);
    ck_assert_str_eq(u, "http://127.0.0.1:9000/bk/a%20b/c%2Bd");
    objstore_s3_url(u, sizeof u, "http://127.0.0.1:9000/", "bk", "us-east-1", true, "k", NULL, NULL);
    ck_assert_str_eq(u, "http://127.0.0.1:9000/bk/k");
    objstore_s3_url(u, sizeof u, "https://minio.example:443", "bk", "us-east-1", false, "k", NULL, NULL);
    ck_assert_str_eq(u, "https://bk.minio.example:443/k");
    /* ListObjectsV2: parameters sorted, values encoded */
    objstore_s3_url(u, sizeof u, "http://h:1", "bk", "r", true, NULL, "ns/t/", "a/b=+c");
    ck_assert_str_eq(u, "http://h:1/bk?continuation-token=a%2Fb%3D%2Bc&list-type=2&prefix=ns%2Ft%2F");
    objstore_s3_url(u, sizeof u, "", "bk", "us-east-1", false, NULL, "", NULL);
    ck_assert_str_eq(u, "https://bk.s3.us-east-1.amazonaws.com/?list-type=2");
    objstore_s3_url(u, sizeof u, "", "bk", "us-east-1", false, NULL, "p", "");
    ck_assert_str_eq(u, "https://bk.s3.us-east-1.amazonaws.com/?list-type=2&prefix=p");
    ck_assert_int_eq(objstore_s3_url(u, sizeof u, "ftp://h", "bk", "r", true, "k", NULL, NULL), -1);
    ck_assert_int_eq(objstore_s3_url(u, sizeof u, "http://", "bk", "r", true, "k", NULL, NULL), -1);
    ck_assert_int_eq(objstore_s3_url(u, 20, "http://h:1", "bk", "r", true, "a-rather-long-key", NULL, NULL), -1);
}
END_TEST

START_TEST(sigv4_matches_the_aws_example) {
    /* AWS S3 docs, "Signature Calculations for the Authorization Header",
     * example GET Object (also what botocore computes). Headers given out of
     * order and with blanks to trim. */
    objstore_sigv4_header_t h[] = {
        {"x-amz-date", "20130524T000000Z"},
        {"range", "  bytes=0-9 "},
        {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"host", "examplebucket.s3.amazonaws.com"},
    };
    char auth[512];
    ck_assert_int_eq(objstore_sigv4_authorization(auth, sizeof auth, "GET", "/test.txt", "", h, 4, h[2].value,
                                                  "20130524T000000Z", "us-east-1", "AKIAIOSFODNN7EXAMPLE",
                                                  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                     0);
    ck_assert_str_eq(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                           "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                           "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    /* Headers whose names prefix one another sort by name (the curl 7.88
     * bug this code exists for). */
    objstore_sigv4_header_t k[] = {
        {"x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:us-east-1:1:key/x"},
        {"x-amz-server-side-encryption", "aws:kms"},
        {"host", "h"},
    };
    ck_assert_int_eq(objstore_sigv4_authorization(auth, sizeof auth, "PUT", "/b/k", "", k, 3, "UNSIGNED-PAYLOAD",
                                                  "20240101T000000Z", "eu-west-1", "AK", "SK"),
                     0);
    ck_assert(strstr(auth, "SignedHeaders=host;x-amz-server-side-encryption;x-amz-server-side-encryption-aws-kms-key-id,"));
    ck_assert(!strstr(auth, "SK"));
    ck_assert_int_eq(objstore_sigv4_authorization(auth, 40, "GET", "/", "", h, 4, h[2].value, "20130524T000000Z",
                                                  "us-east-1", "AKIAIOSFODNN7EXAMPLE", "x"),
                     -1);
}
END_TEST

static const char list_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bk</Name><Prefix>ns/</Prefix>"
    "<KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"
    "<Contents><Key>ns/a&amp;b</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
    "<ETag>&quot;abc&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents>\n  <Key>ns/&lt;x&gt; &#x41;&#66;&apos;&#xe9;</Key>\n  <Size>0</Size>\n</Contents>"
    "<Contents><Size>18446744073709551615</Size><Key>ns/z</Key></Contents>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&amp;x</NextContinuationToken>"
    "</ListBucketResult>";

START_TEST(s3_list_xml_parsing) {
    listed_t l = {0};
    bool trunc, stopped;
    char tok[256], err[256];
    ck_assert_int_eq(objstore_s3_parse_list(list_xml, strlen(list_xml), collect, &l, &trunc, tok, sizeof tok, &stopped,
                                            err, sizeof err),
                     0);
    ck_assert(trunc);
    ck_assert(!stopped);
    ck_assert_str_eq(tok, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&x");
    ck_assert_int_eq(l.n, 3);
    ck_assert_str_eq(l.keys[0], "ns/a&b");
    ck_assert_uint_eq(l.sizes[0], 12);
    ck_assert_str_eq(l.keys[1], "ns/<x> AB'\xc3\xa9");
    ck_assert_uint_eq(l.sizes[1], 0);
    ck_assert_str_eq(l.keys[2], "ns/z");
    ck_assert(l.sizes[2] == UINT64_MAX);
    /* stop after the first */
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    ck_assert_int_eq(objstore_s3_parse_list(list_xml, strlen(list_xml), collect, &l, &trunc, tok, sizeof tok, &stopped,
                                            err, sizeof err),
                     0);
    ck_assert(stopped);
    ck_assert_int_eq(l.n, 1);
    /* an empty, final page */
    static const char empty[] = "<ListBucketResult><Name>bk</Name><KeyCount>0</KeyCount>"
                                "<IsTruncated>false</IsTruncated></ListBucketResult>";
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(objstore_s3_parse_list(empty, strlen(empty), collect, &l, &trunc, tok, sizeof tok, &stopped, err,
                                            sizeof err),
                     0);
    ck_assert(!trunc);
    ck_assert_int_eq(l.n, 0);
    ck_assert_str_eq(tok, "");
    /* malformed */
    static const char *bad[] = {
        "<Error><Code>AccessDenied</Code></Error>",
        "<ListBucketResult><Contents><Key>a</Key><Size>1</Size>",
        "<ListBucketResult><Contents><Key>a</Key><Size>1x</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size></Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>99999999999999999999</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&l, 0, sizeof l);
        ck_assert_msg(objstore_s3_parse_list(bad[i], strlen(bad[i]), collect, &l, &trunc, tok, sizeof tok, &stopped,
                                             err, sizeof err) == -1,
                      "accepted: %s", bad[i]);
    }
}
END_TEST

START_TEST(xml_entity_decoding) {
    char out[64];
    static const struct { const char *in, *want; } ok[] = {
        {"plain", "plain"}, {"&amp;&lt;&gt;&quot;&apos;", "&<>\"'"}, {"&#65;&#x42;&#X43;", "ABC"},
        {"&#xe9;", "\xc3\xa9"}, {"&#x20AC;", "\xe2\x82\xac"}, {"&#x10FFFF;", "\xf4\x8f\xbf\xbf"}, {"", ""},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_int_eq(objstore_xml_decode(out, sizeof out, ok[i].in, strlen(ok[i].in)), (int)strlen(ok[i].want));
        ck_assert_str_eq(out, ok[i].want);
    }
    static const char *bad[] = {"&amp", "&bogus;", "&#0;", "&#xD800;", "&#x110000;", "&#;", "&#x;", "&#12a;", "&;"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(objstore_xml_decode(out, sizeof out, bad[i], strlen(bad[i])) == -1, "accepted %s", bad[i]);
    ck_assert_int_eq(objstore_xml_decode(out, 4, "abcdef", 6), -1);
}
END_TEST

START_TEST(s3_open_refuses_bad_endpoint) {
    objstore_config_t c;
    objstore_config_defaults(&c);
    snprintf(c.bucket, sizeof c.bucket, "bk");
    snprintf(c.endpoint, sizeof c.endpoint, "gopher://x");
    char err[256];
    ck_assert_ptr_null(objstore_open(&c, err, sizeof err));
    ck_assert(strstr(err, "endpoint"));
    snprintf(c.endpoint, sizeof c.endpoint, "http://127.0.0.1:1");
    objstore_t *s = objstore_open(&c, err, sizeof err);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(objstore_backend(s), "s3");
    objstore_close(s);
}
END_TEST

Suite *objstore_suite(void) {
    Suite *s = suite_create("objstore");
    TCase *tc = tcase_create("file");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, file_put_get_roundtrip_with_pieces);
    tcase_add_loop_test(tc, file_put_direct_and_buffered_sizes, 0, 2);
    tcase_add_test(tc, file_get_ranges);
    tcase_add_test(tc, file_head_delete_and_not_found);
    tcase_add_test(tc, file_list_in_byte_order_with_prefixes);
    tcase_add_test(tc, file_put_is_atomic_and_leaves_no_temp_files);
    tcase_add_test(tc, file_clean_temp_removes_only_old_temp_files);
    tcase_add_test(tc, key_rules_refuse_bad_keys_without_io);
    tcase_add_test(tc, file_store_is_thread_safe);
    suite_add_tcase(s, tc);

    tc = tcase_create("config");
    tcase_add_test(tc, config_defaults_and_values);
    tcase_add_loop_test(tc, config_bad_values_exit_naming_the_variable, 0, (int)(sizeof bad_cfg / sizeof bad_cfg[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("s3");
    tcase_add_test(tc, sha256_known_vectors);
    tcase_add_test(tc, uri_encode_as_sigv4_wants);
    tcase_add_test(tc, s3_urls_path_and_virtual_host);
    tcase_add_test(tc, sigv4_matches_the_aws_example);
    tcase_add_test(tc, s3_list_xml_parsing);
    tcase_add_test(tc, xml_entity_decoding);
    tcase_add_test(tc, s3_open_refuses_bad_endpoint);
    suite_add_tcase(s, tc);
    return s;
}
