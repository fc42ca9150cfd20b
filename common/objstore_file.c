/* objstore_file.c - the file backend: a directory with the S3 key layout.
 *
 * Key "a/b/c" is the file <root>/a/b/c. A PUT writes <dir>/.kstmp.<name>.<pid>.<n>
 * (O_EXCL), fsyncs it, renames it over the final name and fsyncs the
 * directory, so a reader sees the old object or the whole new one, never a
 * part, and a crash leaves at worst a temp file (never listed, refused as
 * a key, and removed by objstore_clean_temp() when the flusher starts).
 * Directories are created as needed (each new one made durable by an fsync
 * of its parent) and removed again when a DELETE empties them.
 *
 * Objects of DIRECT_MIN_BYTES or more (segments under load) are written with
 * O_DIRECT from a block-aligned bounce buffer: the kernel then moves them to
 * the disk without copying them into the page cache first. That copy was the
 * largest part of the flusher's CPU (a buffered write of 600 MB cost ~1 s of
 * system time here, an O_DIRECT one ~0.06 s). Only an object's last partial
 * block goes through the page cache. A file system that refuses O_DIRECT
 * (tmpfs, some overlays) gets buffered writes from then on.
 *
 * Thread-safety: shared mutable state is an atomic counter for temp names,
 * the "O_DIRECT works" flag and a mutex-guarded pool of bounce buffers;
 * every call works on its own file descriptors. objstore_run() with
 * several ops spreads them over up to min(n, max_inflight, 8) threads, as
 * the fsyncs dominate and run well in parallel.
 *
 * Limits (by nature of a file system): a key cannot be both an object and a
 * "directory" of other keys ("a" and "a/b"): the second PUT fails.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "objstore.h"

#define FILE_MAGIC 0xf11e5703u
#define FILE_MAX_THREADS 8
#define DIRECT_MIN_BYTES (256u << 10) /* smaller objects: buffered writes */
#define DIRECT_ALIGN 4096u            /* a multiple of any logical block size */
#define BOUNCE_BYTES (4u << 20)       /* one O_DIRECT write at most */

typedef struct file_store {
    uint32_t magic;
    int max_threads;
    bool direct_ok;                      /* atomic: cleared when the file system refuses O_DIRECT */
    pthread_mutex_t bounce_lock;
    void *bounce_free[FILE_MAX_THREADS]; /* idle bounce buffers, reused by later PUTs */
    int nbounce_free;
    char root[1024];
} file_store_t;

static uint64_t tmp_counter;

/* Creates dir and its missing parents (mode 0755); each newly made
 * directory is made durable by an fsync of its parent. */
static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int mkdirs(char *path) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return 0;
        errno = ENOTDIR;
        return -1;
    }
    if (errno != ENOENT) return -1;
    char *slash = strrchr(path, '/');
    bool has_parent = slash && slash != path;
    if (has_parent) {
        *slash = '\0';
        int rc = mkdirs(path);
        *slash = '/';
        if (rc < 0) return -1;
    }
    if (mkdir(path, 0755) < 0) {
        if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0; /* raced: fine */
        return -1;
    }
    if (has_parent) {
        *slash = '\0';
        int rc = fsync_dir(path);
        *slash = '/';
        return rc;
    }
    return 0;
}

static void *file_open(const objstore_config_t *cfg, char *err, size_t errsz) {
    if (!cfg->file_root[0]) {
        snprintf(err, errsz, "file object store: no root directory");
        return NULL;
    }
    file_store_t *fs = calloc(1, sizeof *fs);
    if (!fs) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    snprintf(fs->root, sizeof fs->root, "%s", cfg->file_root);
    size_t len = strlen(fs->root);
    while (len > 1 && fs->root[len - 1] == '/') fs->root[--len] = '\0';
    if (mkdirs(fs->root) < 0) {
        snprintf(err, errsz, "file object store: cannot create %.200s: %s", fs->root, strerror(errno));
        free(fs);
        return NULL;
    }
    if (access(fs->root, W_OK | X_OK) < 0) {
        snprintf(err, errsz, "file object store: %.200s is not writable: %s", fs->root, strerror(errno));
        free(fs);
        return NULL;
    }
    fs->max_threads = cfg->max_inflight < FILE_MAX_THREADS ? cfg->max_inflight : FILE_MAX_THREADS;
    fs->direct_ok = cfg->file_direct;
    pthread_mutex_init(&fs->bounce_lock, NULL);
    fs->magic = FILE_MAGIC;
    return fs;
}

static void file_close(void *impl) {
    file_store_t *fs = impl;
    KS_ASSERT(fs->magic == FILE_MAGIC);
    fs->magic = 0;
    for (int i = 0; i < fs->nbounce_free; i++) free(fs->bounce_free[i]);
    pthread_mutex_destroy(&fs->bounce_lock);
    free(fs);
}

static bool key_path(const file_store_t *fs, const char *key, char *path, size_t pathsz) {
    int n = snprintf(path, pathsz, "%s/%s", fs->root, key);
    return n > 0 && (size_t)n < pathsz;
}

#define OPERR(op, fmt, ...) snprintf((op)->err, sizeof (op)->err, "%s %.160s: " fmt, kind_str[(op)->kind], (op)->key, __VA_ARGS__)
static const char *kind_str[] = {"PUT", "GET", "HEAD", "DELETE"};

/* Writes the pieces in order, resuming after short writes. */
static int write_buffered(int fd, const struct iovec *iov, int iovcnt) {
    int i = 0;
    size_t off = 0;
    while (i < iovcnt) {
        struct iovec v[64];
        int k = 0;
        for (int j = i; j < iovcnt && k < 64; j++) {
            size_t skip = j == i ? off : 0;
            if (iov[j].iov_len == skip) continue;
            v[k].iov_base = (char *)iov[j].iov_base + skip;
            v[k].iov_len = iov[j].iov_len - skip;
            k++;
        }
        if (k == 0) break;
        ssize_t w = writev(fd, v, k);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        size_t left = (size_t)w;
        while (i < iovcnt && left >= iov[i].iov_len - off) {
            left -= iov[i].iov_len - off;
            i++;
            off = 0;
        }
        off += left;
    }
    return 0;
}

static void *bounce_get(file_store_t *fs) {
    void *b = NULL;
    pthread_mutex_lock(&fs->bounce_lock);
    if (fs->nbounce_free > 0) b = fs->bounce_free[--fs->nbounce_free];
    pthread_mutex_unlock(&fs->bounce_lock);
    if (!b && posix_memalign(&b, DIRECT_ALIGN, BOUNCE_BYTES) != 0) b = NULL;
    return b;
}

static void bounce_put(file_store_t *fs, void *b) {
    pthread_mutex_lock(&fs->bounce_lock);
    if (fs->nbounce_free < FILE_MAX_THREADS) {
        fs->bounce_free[fs->nbounce_free++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&fs->bounce_lock);
    free(b);
}

/* Later writes to fd go through the page cache. 0 or -1 (errno). */
static int direct_off(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags & ~O_DIRECT);
}

/* The file system refused `what` with errno: every later PUT writes through
 * the page cache (logged once). */
static void direct_refused(file_store_t *fs, const char *what) {
    if (__atomic_exchange_n(&fs->direct_ok, false, __ATOMIC_RELAXED))
        log_info("file store %s: %s refused (%s); writing through the page cache", fs->root, what, strerror(errno));
}

static int pwrite_all(int fd, const uint8_t *b, size_t len, off_t at) {
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, b + done, len - done, at + (off_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

/* Writes total bytes of pieces to fd (opened with O_DIRECT) through a
 * bounce buffer, whole blocks at a time; the last partial block goes
 * through the page cache (O_DIRECT cleared). Not padding it and cutting the
 * file back: ext4 reads the last block from the disk to zero its tail on
 * such a truncate (~3 ms per object here). Returns 0, or -1 with errno
 * (EINVAL: the file system wants other alignment or no O_DIRECT). */
static int write_direct(file_store_t *fs, int fd, const struct iovec *iov, int iovcnt, size_t total) {
    uint8_t *b = bounce_get(fs);
    if (!b) {
        errno = ENOMEM;
        return -1;
    }
    int i = 0, rc = 0;
    size_t off = 0, written = 0;
    while (written < total) {
        size_t fill = 0;
        while (fill < BOUNCE_BYTES && i < iovcnt) {
            size_t n = iov[i].iov_len - off;
            if (n > BOUNCE_BYTES - fill) n = BOUNCE_BYTES - fill;
            memcpy(b + fill, (const uint8_t *)iov[i].iov_base + off, n);
            fill += n;
            off += n;
            if (off == iov[i].iov_len) {
                i++;
                off = 0;
            }
        }
        if (fill == 0) { /* pieces shorter than total: cannot happen */
            errno = EIO;
            rc = -1;
            break;
        }
        size_t whole = fill & ~(size_t)(DIRECT_ALIGN - 1);
        if (whole && (rc = pwrite_all(fd, b, whole, (off_t)written)) < 0) break;
        if (whole < fill) { /* the object's last partial block */
            if (direct_off(fd) < 0 || pwrite_all(fd, b + whole, fill - whole, (off_t)(written + whole)) < 0) {
                rc = -1;
                break;
            }
        }
        written += fill;
    }
    bounce_put(fs, b);
    return rc;
}

static void do_put(file_store_t *fs, objstore_op_t *op) {
    char path[PATH_MAX], tmp[PATH_MAX + 64];
    if (!key_path(fs, op->key, path, sizeof path)) {
        OPERR(op, "%s", "path too long");
        return;
    }
    size_t total = 0;
    for (int j = 0; j < op->iovcnt; j++) total += op->iov[j].iov_len;
    bool direct = total >= DIRECT_MIN_BYTES && __atomic_load_n(&fs->direct_ok, __ATOMIC_RELAXED);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    const char *dir = path, *name = slash + 1;
    int fd = -1;
    /* A concurrent DELETE may remove an emptied directory between our mkdir
     * and open: then make it again. */
    for (int tries = 0; fd < 0 && tries < 10; tries++) {
        if (mkdirs(path) < 0) {
            int e = errno;
            *slash = '/';
            OPERR(op, "cannot create its directory: %s", strerror(e));
            return;
        }
        uint64_t n = __atomic_add_fetch(&tmp_counter, 1, __ATOMIC_RELAXED);
        if (snprintf(tmp, sizeof tmp, "%s/.kstmp.%s.%d.%llu", dir, name, (int)getpid(), (unsigned long long)n) >=
            (int)sizeof tmp) {
            *slash = '/';
            OPERR(op, "%s", "path too long");
            return;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
        if (fd < 0 && direct && errno == EINVAL) { /* no O_DIRECT here: buffered from now on */
            direct_refused(fs, "O_DIRECT");
            direct = false;
            tries--;
            continue;
        }
        if (fd < 0 && errno != ENOENT) break;
    }
    if (fd < 0) {
        int e = errno;
        *slash = '/';
        OPERR(op, "cannot create temp file: %s", strerror(e));
        return;
    }
    if (direct && write_direct(fs, fd, op->iov, op->iovcnt, total) < 0) {
        if (errno != EINVAL) goto fail_io;
        /* The file system takes O_DIRECT opens but not our alignment:
         * start this file over through the page cache, and stay there. */
        direct_refused(fs, "O_DIRECT writes");
        if (direct_off(fd) < 0 || ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) goto fail_io;
        direct = false;
    }
    if (!direct && write_buffered(fd, op->iov, op->iovcnt) < 0) goto fail_io;
    if (fsync(fd) < 0) goto fail_io;
    if (close(fd) < 0) {
        fd = -1;
        goto fail_io;
    }
    fd = -1;
    *slash = '/';
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        OPERR(op, "rename: %s", strerror(e));
        return;
    }
    *slash = '\0';
    if (fsync_dir(dir) < 0) {
        int e = errno;
        *slash = '/';
        OPERR(op, "fsync of directory: %s", strerror(e));
        return;
    }
    op->status = OBJ_OK;
    return;
fail_io: {
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    *slash = '/';
    OPERR(op, "write: %s", strerror(e));
}
}

static void do_get(const file_store_t *fs, objstore_op_t *op) {
    char path[PATH_MAX];
    if (!key_path(fs, op->key, path, sizeof path)) {
        op->status = OBJ_NOT_FOUND;
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR) op->status = OBJ_NOT_FOUND;
        else OPERR(op, "open: %s", strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        OPERR(op, "fstat: %s", strerror(errno));
        close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        op->status = OBJ_NOT_FOUND;
        close(fd);
        return;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (op->offset >= size && !(op->offset == 0 && size == 0)) {
        op->http_code = 0;
        OPERR(op, "range not satisfiable (offset %llu, size %llu)", (unsigned long long)op->offset,
              (unsigned long long)size);
        close(fd);
        return;
    }
    uint64_t want = size - op->offset;
    if (op->length && op->length < want) want = op->length;
    uint8_t *dst;
    if (op->buf) {
        if (want > op->cap) {
            OPERR(op, "object larger than the buffer (%llu > %zu)", (unsigned long long)want, op->cap);
            close(fd);
            return;
        }
        dst = op->buf;
    } else {
        if (want > SIZE_MAX - 1 || !(dst = malloc(want ? (size_t)want : 1))) {
            OPERR(op, "%s", "out of memory");
            close(fd);
            return;
        }
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, dst + got, (size_t)want - got, (off_t)(op->offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            OPERR(op, "read: %s", strerror(errno));
            if (!op->buf) free(dst);
            close(fd);
            return;
        }
        if (r == 0) break; /* file shrank under us: cannot happen with atomic PUTs */
        got += (size_t)r;
    }
    close(fd);
    if (!op->buf) op->out = dst;
    op->out_len = got;
    op->status = OBJ_OK;
}

static void do_head(const file_store_t *fs, objstore_op_t *op) {
    char path[PATH_MAX];
    struct stat st;
    if (!key_path(fs, op->key, path, sizeof path)) {
        op->status = OBJ_NOT_FOUND;
        return;
    }
    if (stat(path, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR) op->status = OBJ_NOT_FOUND;
        else OPERR(op, "stat: %s", strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        op->status = OBJ_NOT_FOUND;
        return;
    }
    op->out_len = (size_t)st.st_size;
    op->status = OBJ_OK;
}

static void do_delete(const file_store_t *fs, objstore_op_t *op) {
    char path[PATH_MAX];
    if (!key_path(fs, op->key, path, sizeof path)) {
        op->status = OBJ_NOT_FOUND;
        return;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        op->status = OBJ_NOT_FOUND; /* "a" when only "a/b" exists */
        return;
    }
    if (unlink(path) < 0) {
        if (errno == ENOENT || errno == ENOTDIR) op->status = OBJ_NOT_FOUND;
        else OPERR(op, "unlink: %s", strerror(errno));
        return;
    }
    /* Remove the directories this emptied, up to (not including) the root. */
    size_t rootlen = strlen(fs->root);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    fsync_dir(path);
    while (strlen(path) > rootlen) {
        if (rmdir(path) < 0) break; /* not empty (or raced with a PUT): fine */
        slash = strrchr(path, '/');
        *slash = '\0';
    }
    op->status = OBJ_OK;
}

static void do_op(file_store_t *fs, objstore_op_t *op) {
    op->attempts = 1;
    switch (op->kind) {
    case OBJ_PUT: do_put(fs, op); break;
    case OBJ_GET: do_get(fs, op); break;
    case OBJ_HEAD: do_head(fs, op); break;
    case OBJ_DELETE: do_delete(fs, op); break;
    }
}

typedef struct run_ctx {
    file_store_t *fs;
    objstore_op_t **ops;
    int n;
    int next; /* atomic */
} run_ctx_t;

static void *run_worker(void *arg) {
    run_ctx_t *rc = arg;
    for (;;) {
        int i = __atomic_fetch_add(&rc->next, 1, __ATOMIC_RELAXED);
        if (i >= rc->n) break;
        do_op(rc->fs, rc->ops[i]);
    }
    return NULL;
}

static void file_run(void *impl, objstore_op_t **ops, int n) {
    file_store_t *fs = impl;
    KS_ASSERT(fs->magic == FILE_MAGIC);
    run_ctx_t rc = {.fs = fs, .ops = ops, .n = n, .next = 0};
    int nthreads = n < fs->max_threads ? n : fs->max_threads;
    pthread_t th[FILE_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&th[started], NULL, run_worker, &rc) != 0) break;
        started++;
    }
    run_worker(&rc); /* this thread works too */
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
}

/* ---- list: a depth-first walk in byte order ----
 *
 * Siblings are sorted with directories compared as "name/": then the walk
 * meets keys in the same order as a sort of the full keys would ("a.b" <
 * "a/x" because '.' < '/'). */

typedef struct dent {
    char *name; /* directories carry a trailing '/' */
    uint64_t size;
    bool dir;
} dent_t;

static int dent_cmp(const void *a, const void *b) {
    return strcmp(((const dent_t *)a)->name, ((const dent_t *)b)->name);
}

typedef struct walk {
    const char *prefix;
    size_t prefix_len;
    objstore_list_fn fn;
    void *arg;
    char *err;
    size_t errsz;
    bool stopped;
} walk_t;

/* path: the directory on disk; key: its key prefix ("" or "a/b/"). */
static int walk_dir(walk_t *w, char *path, size_t pathlen, char *key, size_t keylen) {
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR) return 0; /* removed meanwhile */
        snprintf(w->err, w->errsz, "LIST: opendir %.200s: %s", path, strerror(errno));
        return -1;
    }
    dent_t *ents = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..") || !strncmp(nm, ".kstmp.", 7)) continue;
        size_t nl = strlen(nm);
        if (keylen + nl > OBJSTORE_KEY_MAX) continue; /* not a key we could have written */
        bool isdir;
        uint64_t size = 0;
        if (de->d_type == DT_DIR) isdir = true;
        else if (de->d_type == DT_REG) isdir = false;
        else if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) < 0) continue; /* deleted meanwhile */
            if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) continue;
            isdir = S_ISDIR(st.st_mode);
        } else continue; /* symlinks, sockets...: not objects */
        /* The candidate (key + name, '/' for a directory) must agree with the
         * prefix over their common length; a file must also be as long. */
        memcpy(key + keylen, nm, nl);
        size_t cl = keylen + nl;
        if (isdir) key[cl++] = '/';
        if (memcmp(key, w->prefix, cl < w->prefix_len ? cl : w->prefix_len)) continue;
        if (!isdir && cl < w->prefix_len) continue;
        if (!isdir) {
            struct stat st;
            if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) continue;
            size = (uint64_t)st.st_size;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            dent_t *ne = realloc(ents, cap * sizeof *ne);
            if (!ne) {
                snprintf(w->err, w->errsz, "LIST: out of memory");
                rc = -1;
                break;
            }
            ents = ne;
        }
        ents[n].name = malloc(nl + 2);
        if (!ents[n].name) {
            snprintf(w->err, w->errsz, "LIST: out of memory");
            rc = -1;
            break;
        }
        memcpy(ents[n].name, nm, nl);
        ents[n].name[nl] = isdir ? '/' : '\0';
        ents[n].name[nl + 1] = '\0';
        ents[n].dir = isdir;
        ents[n].size = size;
        n++;
    }
    closedir(d);
    key[keylen] = '\0';
    if (rc == 0 && n) qsort(ents, n, sizeof *ents, dent_cmp);
    for (size_t i = 0; rc == 0 && i < n && !w->stopped; i++) {
        size_t nl = strlen(ents[i].name);
        if (pathlen + 1 + nl >= PATH_MAX) continue;
        memcpy(key + keylen, ents[i].name, nl + 1);
        if (ents[i].dir) {
            path[pathlen] = '/';
            memcpy(path + pathlen + 1, ents[i].name, nl - 1);
            path[pathlen + nl] = '\0';
            rc = walk_dir(w, path, pathlen + nl, key, keylen + nl);
            path[pathlen] = '\0';
        } else if (w->fn(key, ents[i].size, w->arg)) {
            w->stopped = true;
        }
        key[keylen] = '\0';
    }
    for (size_t i = 0; i < n; i++) free(ents[i].name);
    free(ents);
    return rc;
}

static int file_list(void *impl, const char *prefix, objstore_list_fn fn, void *arg, char *err, size_t errsz) {
    file_store_t *fs = impl;
    KS_ASSERT(fs->magic == FILE_MAGIC);
    walk_t w = {.prefix = prefix, .prefix_len = strlen(prefix), .fn = fn, .arg = arg, .err = err, .errsz = errsz};
    char *path = malloc(PATH_MAX), *key = malloc(OBJSTORE_KEY_MAX + 3);
    if (!path || !key) {
        free(path);
        free(key);
        snprintf(err, errsz, "LIST: out of memory");
        return OBJ_ERROR;
    }
    /* Start in the deepest directory the prefix names whole. */
    const char *slash = strrchr(prefix, '/');
    size_t keylen = slash ? (size_t)(slash - prefix) + 1 : 0;
    int pl = snprintf(path, PATH_MAX, "%s%s%.*s", fs->root, keylen ? "/" : "", (int)(keylen ? keylen - 1 : 0), prefix);
    int rc = 0;
    if (pl <= 0 || pl >= PATH_MAX) {
        snprintf(err, errsz, "LIST: prefix too long");
        rc = -1;
    } else {
        memcpy(key, prefix, keylen);
        key[keylen] = '\0';
        rc = walk_dir(&w, path, (size_t)pl, key, keylen);
    }
    free(path);
    free(key);
    return rc == 0 ? OBJ_OK : OBJ_ERROR;
}

/* ---- temp files of interrupted PUTs ---- */

/* Removes the .kstmp.* files under path (recursively) last changed before
 * `before` (CLOCK_REALTIME, ns). Returns how many, or -1 (err set). */
static int clean_dir(char *path, size_t pathlen, int64_t before, int depth, char *err, size_t errsz) {
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR) return 0;
        snprintf(err, errsz, "opendir %.200s: %s", path, strerror(errno));
        return -1;
    }
    int n = 0;
    struct dirent *de;
    while (n >= 0 && (de = readdir(d))) {
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        struct stat st;
        if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) < 0) continue; /* gone meanwhile */
        size_t nl = strlen(nm);
        if (S_ISDIR(st.st_mode)) {
            if (depth >= 64 || pathlen + 1 + nl >= PATH_MAX) continue; /* deeper than any key goes */
            path[pathlen] = '/';
            memcpy(path + pathlen + 1, nm, nl + 1);
            int k = clean_dir(path, pathlen + 1 + nl, before, depth + 1, err, errsz);
            path[pathlen] = '\0';
            n = k < 0 ? -1 : n + k;
        } else if (S_ISREG(st.st_mode) && !strncmp(nm, ".kstmp.", 7) &&
                   (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec < before) {
            if (unlinkat(dirfd(d), nm, 0) == 0) n++;
            else if (errno != ENOENT) {
                snprintf(err, errsz, "unlink %.200s/%.100s: %s", path, nm, strerror(errno));
                n = -1;
            }
        }
    }
    closedir(d);
    return n;
}

static int file_clean_temp(void *impl, int64_t min_age_ms, char *err, size_t errsz) {
    file_store_t *fs = impl;
    KS_ASSERT(fs->magic == FILE_MAGIC);
    char *path = malloc(PATH_MAX);
    if (!path) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    snprintf(path, PATH_MAX, "%s", fs->root);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t before = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - min_age_ms * 1000000;
    int n = clean_dir(path, strlen(path), before, 0, err, errsz);
    free(path);
    return n;
}

const objstore_backend_ops_t objstore_file_ops = {
    .name = "file",
    .open = file_open,
    .close = file_close,
    .run = file_run,
    .list = file_list,
    .clean_temp = file_clean_temp,
};
