/* shm_ring.c - creating, adopting, publishing into and reading the shared
 * memory ring (layout and protocol: shm_ring.h). The writer is
 * kafscale-cached; readers are the broker's worker threads and kafscale-shm.
 *
 * Memory ordering: fields that change while readers look are written with
 * __atomic stores and read with __atomic loads; payload bytes and the other
 * entry fields are plain copies bracketed by fences (the seqlock pattern:
 * release fences on the writer's side order "sequence odd" before the
 * changes and the changes before "sequence even"; readers load the sequence
 * with acquire, copy, then an acquire fence before loading it again).
 */
#include "shm_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

const char *const shm_ring_counter_names[SHM_C_MAX] = {
#define X_NAME(name, help) #name,
    SHM_RING_COUNTERS(X_NAME)
#undef X_NAME
};
const char *const shm_ring_counter_help[SHM_C_MAX] = {
#define X_HELP(name, help) help,
    SHM_RING_COUNTERS(X_HELP)
#undef X_HELP
};

const char *shm_ring_strerror(int rc) {
    switch (rc) {
    case SHM_OK: return "ok";
    case SHM_MISS: return "not in the ring";
    case SHM_LAPPED: return "lapped by the writer";
    case SHM_ENOENT: return "no such shm object";
    case SHM_ENOTREADY: return "ring being created";
    case SHM_EFOREIGN: return "not a Kafscale ring";
    case SHM_EVERSION: return "unknown ring layout version";
    case SHM_ETRUNC: return "ring truncated";
    case SHM_EBADHDR: return "ring header inconsistent";
    case SHM_EBUSY: return "another writer holds the ring";
    case SHM_ETOOBIG: return "segment too big for the ring";
    case SHM_ESYS: return "system error";
    }
    return "?";
}

#define LD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static uint64_t unix_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t fnv64(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

uint64_t shm_ring_key_hash(const char *topic, size_t topic_len, int32_t partition, int64_t base_offset) {
    uint64_t h = fnv64(14695981039346656037ull, topic, topic_len);
    h = fnv64(h, &partition, sizeof partition);
    return fnv64(h, &base_offset, sizeof base_offset);
}

int shm_ring_name(char *out, size_t outsz, const char *explicit_name, const char *data_dir, int32_t node_id,
                  char *err, size_t errsz) {
    if (explicit_name && *explicit_name) {
        const char *n = explicit_name[0] == '/' ? explicit_name + 1 : explicit_name;
        size_t len = strlen(n);
        if (!len || strchr(n, '/') || len + 2 > outsz || len > NAME_MAX) {
            snprintf(err, errsz, "'%s' is not a usable shm name (one path component, at most %d bytes)",
                     explicit_name, NAME_MAX);
            return -1;
        }
        snprintf(out, outsz, "/%s", n);
        return 0;
    }
    char abs[PATH_MAX];
    const char *dir = data_dir && *data_dir ? data_dir : "./data";
    if (!realpath(dir, abs)) snprintf(abs, sizeof abs, "%s", dir);
    uint64_t h = fnv64(14695981039346656037ull, abs, strlen(abs));
    snprintf(out, outsz, "/kafscale-%d-%08x", (int)node_id, (unsigned)(h ^ (h >> 32)));
    return 0;
}

/* ---- layout ---- */

static uint64_t page_up(uint64_t n) { return (n + SHM_RING_PAGE - 1) & ~(uint64_t)(SHM_RING_PAGE - 1); }

static void set_views(shm_ring_t *r) {
    shm_ring_hdr_t *h = (shm_ring_hdr_t *)r->base;
    r->hdr = h;
    r->ents = (shm_ring_entry_t *)(r->base + h->table_off);
    r->data = r->base + h->data_off;
    r->nentries = h->nentries;
    r->data_size = h->data_size;
    r->generation = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
}

int shm_ring_check(const void *base, uint64_t size, char *err, size_t errsz) {
    if (size < 64) {
        snprintf(err, errsz, "ring truncated: %llu bytes, smaller than a ring header", (unsigned long long)size);
        return size == 0 ? SHM_ENOTREADY : SHM_ETRUNC;
    }
    const shm_ring_hdr_t *h = base;
    uint32_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
    if (magic == 0) {
        snprintf(err, errsz, "ring not initialised yet (magic 0)");
        return SHM_ENOTREADY;
    }
    if (magic != SHM_RING_MAGIC) {
        const uint8_t *m = base;
        char shown[5];
        for (int i = 0; i < 4; i++) shown[i] = m[i] >= 32 && m[i] < 127 ? (char)m[i] : '.';
        shown[4] = 0;
        snprintf(err, errsz, "not a Kafscale ring: magic 0x%08x (\"%s\"), expected 0x%08x", magic, shown,
                 SHM_RING_MAGIC);
        return SHM_EFOREIGN;
    }
    if (h->major != SHM_RING_MAJOR) {
        snprintf(err, errsz, "ring layout version %u.%u is not supported (this program reads %u.x)", h->major,
                 h->minor, SHM_RING_MAJOR);
        return SHM_EVERSION;
    }
    if (size < SHM_RING_HEADER_SIZE || h->header_size < SHM_RING_HEADER_SIZE) {
        snprintf(err, errsz, "ring truncated: %llu bytes, header size %u", (unsigned long long)size, h->header_size);
        return SHM_ETRUNC;
    }
    if (h->total_size > size) {
        snprintf(err, errsz, "ring truncated: the object has %llu bytes, its header says %llu",
                 (unsigned long long)size, (unsigned long long)h->total_size);
        return SHM_ETRUNC;
    }
    uint64_t table_end = h->table_off + (uint64_t)h->nentries * h->entry_size;
    if (h->entry_size < SHM_RING_ENTRY_SIZE || h->nentries == 0 || h->table_off < h->header_size ||
        h->nentries > (1u << 24) || table_end > h->data_off || h->data_size < SHM_RING_MIN_DATA ||
        h->data_off + h->data_size > h->total_size || h->data_off + h->data_size < h->data_off) {
        snprintf(err, errsz,
                 "ring header inconsistent: entries %u x %u at %llu, data %llu bytes at %llu, total %llu",
                 h->nentries, h->entry_size, (unsigned long long)h->table_off, (unsigned long long)h->data_size,
                 (unsigned long long)h->data_off, (unsigned long long)h->total_size);
        return SHM_EBADHDR;
    }
    return SHM_OK;
}

/* ---- readers ---- */

int shm_ring_open(shm_ring_t *r, const char *name, char *err, size_t errsz) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errsz, "cannot open shm %s: %s", name, strerror(errno));
        return errno == ENOENT ? SHM_ENOENT : SHM_ESYS;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errsz, "fstat shm %s: %s", name, strerror(errno));
        close(fd);
        return SHM_ESYS;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < SHM_RING_HEADER_SIZE) {
        /* Still enough to say what it is, if anything is there. */
        uint8_t head[64] = {0};
        ssize_t n = size ? pread(fd, head, sizeof head, 0) : 0;
        int rc = shm_ring_check(head, n > 0 ? (uint64_t)n : 0, err, errsz);
        close(fd);
        if (rc == SHM_OK || rc == SHM_EBADHDR) {
            snprintf(err, errsz, "ring truncated: %llu bytes, smaller than a ring header", (unsigned long long)size);
            rc = SHM_ETRUNC;
        }
        return rc;
    }
    /* MAP_POPULATE: map every page now rather than fault each 4 KiB on its
     * first read (the ring's pages exist: the writer reserved them all). */
    void *p = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errsz, "mmap shm %s: %s", name, strerror(errno));
        close(fd);
        return SHM_ESYS;
    }
    int rc = shm_ring_check(p, size, err, errsz);
    if (rc != SHM_OK) {
        munmap(p, size);
        close(fd);
        return rc;
    }
    r->magic = SHM_RING_T_MAGIC;
    r->fd = fd;
    r->base = p;
    r->size = size;
    r->dev = (uint64_t)st.st_dev;
    r->ino = (uint64_t)st.st_ino;
    snprintf(r->name, sizeof r->name, "%s", name);
    set_views(r);
    return SHM_OK;
}

void shm_ring_close(shm_ring_t *r) {
    if (r->magic != SHM_RING_T_MAGIC) return;
    KS_ASSERT(!r->writer);
    munmap(r->base, r->size);
    close(r->fd);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

bool shm_ring_changed(const shm_ring_t *r) {
    KS_ASSERT(r->magic == SHM_RING_T_MAGIC);
    if (__atomic_load_n(&r->hdr->generation, __ATOMIC_ACQUIRE) != r->generation) return true;
    int fd = shm_open(r->name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return true;
    struct stat st;
    bool changed = fstat(fd, &st) != 0 || (uint64_t)st.st_ino != r->ino || (uint64_t)st.st_dev != r->dev ||
                   (uint64_t)st.st_size != r->size;
    close(fd);
    return changed;
}

static bool key_matches(const shm_ring_entry_t *e, const shm_ring_key_t *k) {
    static const uint8_t zero[16];
    if (e->state != SHM_ENTRY_SEGMENT || e->partition != k->partition || e->base_offset != k->base_offset ||
        e->topic_len != k->topic_len || k->topic_len >= SHM_RING_TOPIC_MAX || memcmp(e->topic, k->topic, k->topic_len))
        return false;
    if (k->last_offset >= 0 && e->last_offset != k->last_offset) return false;
    if (k->size && e->len != k->size) return false;
    if (k->topic_id && memcmp(k->topic_id, zero, 16) && memcmp(e->topic_id, zero, 16) &&
        memcmp(e->topic_id, k->topic_id, 16))
        return false;
    return true;
}

/* Payload bounds of a snapshot are sane for this mapping (a torn snapshot
 * is caught by the sequence check, but we must never copy outside the
 * mapping before we get there). */
static bool payload_ok(const shm_ring_t *r, const shm_ring_entry_t *e) {
    return e->len > 0 && e->len <= r->data_size && e->data_off <= r->data_size - e->len;
}

bool shm_ring_entry_snapshot(const shm_ring_t *r, uint32_t slot, shm_ring_entry_t *out) {
    KS_ASSERT(slot < r->nentries);
    const shm_ring_entry_t *e = &r->ents[slot];
    for (int tries = 0; tries < 4; tries++) {
        uint64_t s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) continue;
        if (LD(&e->state) != SHM_ENTRY_SEGMENT) return false;
        memcpy(out, (const void *)e, sizeof *out);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LD(&e->seq) == s1) {
            out->seq = s1;
            return out->state == SHM_ENTRY_SEGMENT && out->topic_len < SHM_RING_TOPIC_MAX;
        }
    }
    return false;
}

int shm_ring_find(const shm_ring_t *r, const shm_ring_key_t *k, shm_ring_cursor_t *c) {
    KS_ASSERT(r->magic == SHM_RING_T_MAGIC);
    uint64_t h = shm_ring_key_hash(k->topic, k->topic_len, k->partition, k->base_offset);
    for (uint32_t i = 0; i < r->nentries; i++) {
        const shm_ring_entry_t *e = &r->ents[i];
        if (LD(&e->key_hash) != h || LD(&e->state) != SHM_ENTRY_SEGMENT) continue;
        if (!shm_ring_entry_snapshot(r, i, &c->e)) continue;
        if (!key_matches(&c->e, k) || !payload_ok(r, &c->e)) continue;
        c->slot = i;
        c->seq = c->e.seq;
        return SHM_OK;
    }
    return SHM_MISS;
}

void shm_ring_copy(const shm_ring_t *r, const shm_ring_cursor_t *c, uint64_t off, uint64_t len, uint8_t *dst) {
    KS_ASSERT(off <= c->e.len && len <= c->e.len - off && payload_ok(r, &c->e));
    memcpy(dst, r->data + c->e.data_off + off, len);
}

int shm_ring_validate(const shm_ring_t *r, const shm_ring_cursor_t *c) {
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (LD(&r->ents[c->slot].seq) != c->seq) return SHM_LAPPED;
    /* Bytes at data position x are overwritten only once the writer reserved
     * past x + data_size (it advances head_seq before writing). */
    if (LD(&r->hdr->head_seq) - c->e.data_seq > r->data_size) return SHM_LAPPED;
    return SHM_OK;
}

int shm_ring_read(const shm_ring_t *r, const shm_ring_key_t *k, uint64_t off, uint64_t len, uint8_t *dst,
                  size_t cap, uint64_t *got) {
    *got = 0;
    shm_ring_cursor_t c;
    int rc = shm_ring_find(r, k, &c);
    if (rc != SHM_OK) return rc;
    if (off >= c.e.len) return SHM_MISS;
    uint64_t n = c.e.len - off;
    if (len && len < n) n = len;
    if (n > cap) return SHM_MISS; /* the caller asked for less room than the range: not ours to cut */
    shm_ring_copy(r, &c, off, n, dst);
    rc = shm_ring_validate(r, &c);
    if (rc == SHM_OK) *got = n;
    return rc;
}

void shm_ring_header_snapshot(const shm_ring_t *r, shm_ring_hdr_t *out) {
    const shm_ring_hdr_t *h = r->hdr;
    memcpy(out, (const void *)h, 64); /* line 0 never changes */
    out->generation = LD(&h->generation);
    out->writer_pid = LD(&h->writer_pid);
    out->writer_state = LD(&h->writer_state);
    out->writer_start_us = LD(&h->writer_start_us);
    out->head_seq = LD(&h->head_seq);
    out->head_off = LD(&h->head_off);
    out->next_slot = LD(&h->next_slot);
    out->live_entries = LD(&h->live_entries);
    out->live_bytes = LD(&h->live_bytes);
    out->heartbeat_ms = LD(&h->heartbeat_ms);
    for (int i = 0; i < SHM_RING_COUNTER_SLOTS; i++) out->counters[i] = LD(&h->counters[i]);
}

/* ---- the writer ---- */

static void entry_evict(shm_ring_t *r, shm_ring_entry_t *e) {
    shm_ring_hdr_t *h = r->hdr;
    uint64_t s = e->seq;
    if (!(s & 1)) ST(&e->seq, ++s);
    __atomic_thread_fence(__ATOMIC_RELEASE); /* odd before anything that follows, payload bytes included */
    if (e->state == SHM_ENTRY_SEGMENT) {
        ST(&h->live_entries, h->live_entries - 1);
        ST(&h->live_bytes, h->live_bytes - e->len);
    }
    ST(&e->state, SHM_ENTRY_EMPTY);
    ST(&e->key_hash, 0);
    __atomic_store_n(&e->seq, s + 1, __ATOMIC_RELEASE);
}

/* Writes the header of a fresh ring (magic last). */
static void init_header(shm_ring_t *r, uint64_t total, uint32_t nent, uint64_t table_off, uint64_t data_off,
                        const shm_ring_geom_t *g) {
    shm_ring_hdr_t *h = (shm_ring_hdr_t *)r->base;
    h->major = SHM_RING_MAJOR;
    h->minor = SHM_RING_MINOR;
    h->header_size = SHM_RING_HEADER_SIZE;
    h->entry_size = SHM_RING_ENTRY_SIZE;
    h->total_size = total;
    h->table_off = table_off;
    h->nentries = nent;
    h->flags = 0;
    h->data_off = data_off;
    h->data_size = total - data_off;
    h->created_us = unix_us();
    h->generation = 0;
    h->head_seq = g->first_head_seq;
    h->head_off = 0;
    h->next_slot = 0;
    shm_ring_entry_t *ents = (shm_ring_entry_t *)(r->base + table_off);
    uint64_t s0 = g->first_seq & ~(uint64_t)1;
    if (s0)
        for (uint32_t i = 0; i < nent; i++) ents[i].seq = s0;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&h->magic, SHM_RING_MAGIC, __ATOMIC_RELEASE);
}

/* Starts this writer on a mapped ring: generation, identity, clean-up of
 * what a dead writer left half done, fresh counters. */
static void writer_start(shm_ring_t *r) {
    shm_ring_hdr_t *h = r->hdr;
    __atomic_store_n(&h->generation, h->generation + 1, __ATOMIC_RELEASE);
    ST(&h->writer_pid, (int32_t)getpid());
    ST(&h->writer_start_us, unix_us());
    ST(&h->writer_state, SHM_WRITER_RUNNING);
    r->generation = h->generation;
    if (h->head_off >= h->data_size) ST(&h->head_off, 0);
    uint64_t live = 0, bytes = 0;
    for (uint32_t i = 0; i < r->nentries; i++) {
        shm_ring_entry_t *e = &r->ents[i];
        bool bad = (e->seq & 1) || (e->state != SHM_ENTRY_EMPTY && e->state != SHM_ENTRY_SEGMENT);
        if (!bad && e->state == SHM_ENTRY_SEGMENT)
            bad = !payload_ok(r, e) || e->topic_len >= SHM_RING_TOPIC_MAX ||
                  e->key_hash != shm_ring_key_hash(e->topic, e->topic_len, e->partition, e->base_offset);
        if (bad) {
            uint64_t s = e->seq | 1;
            ST(&e->seq, s);
            __atomic_thread_fence(__ATOMIC_RELEASE);
            ST(&e->state, SHM_ENTRY_EMPTY);
            ST(&e->key_hash, 0);
            __atomic_store_n(&e->seq, s + 1, __ATOMIC_RELEASE);
        } else if (e->state == SHM_ENTRY_SEGMENT) {
            live++;
            bytes += e->len;
        }
    }
    ST(&h->live_entries, live);
    ST(&h->live_bytes, bytes);
    for (int i = 0; i < SHM_RING_COUNTER_SLOTS; i++) ST(&h->counters[i], 0);
    ST(&h->heartbeat_ms, unix_us() / 1000);
}

static int map_rw(shm_ring_t *r, int fd, uint64_t size, char *err, size_t errsz) {
    /* MAP_POPULATE: the pages are reserved (posix_fallocate) anyway; mapping
     * them all at once here is far cheaper than a page fault per 4 KiB on
     * the first publish into each (a quarter of cached's CPU on a cold
     * read under a hypervisor). */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errsz, "mmap: %s", strerror(errno));
        return SHM_ESYS;
    }
    r->base = p;
    r->size = size;
    return SHM_OK;
}

/* Is fd still the object `name` refers to? */
static bool same_object(const char *name, int fd) {
    struct stat a, b;
    int fd2 = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (fd2 < 0) return false;
    bool same = fstat(fd, &a) == 0 && fstat(fd2, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
    close(fd2);
    return same;
}

int shm_ring_create(shm_ring_t *r, const char *name, const shm_ring_geom_t *g, bool *adopted, char *err,
                    size_t errsz) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    *adopted = false;
    /* Geometry. */
    uint64_t total = g->total_size & ~(uint64_t)(SHM_RING_PAGE - 1);
    uint64_t table_off = SHM_RING_HEADER_SIZE;
    uint64_t guess_data = total > table_off ? total - table_off : 0;
    uint64_t nent = g->nentries ? g->nentries : guess_data / (64u << 10);
    if (!g->nentries) nent = nent < 64 ? 64 : nent > 65536 ? 65536 : nent;
    uint64_t data_off = page_up(table_off + nent * SHM_RING_ENTRY_SIZE);
    if (nent == 0 || nent > (1u << 24) || total < data_off + SHM_RING_MIN_DATA) {
        snprintf(err, errsz, "a ring of %llu bytes is too small for %llu entries and 1 MiB of data",
                 (unsigned long long)g->total_size, (unsigned long long)nent);
        return SHM_ETOOBIG;
    }

    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
        if (fd >= 0) {
            if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
                int pid = 0;
                shm_ring_t tmp;
                char e2[64];
                if (shm_ring_open(&tmp, name, e2, sizeof e2) == SHM_OK) {
                    pid = tmp.hdr->writer_pid;
                    shm_ring_close(&tmp);
                }
                snprintf(err, errsz, "another writer (pid %d) holds the ring %s", pid, name);
                close(fd);
                return SHM_EBUSY;
            }
            if (!same_object(name, fd)) { /* replaced while we waited: look again */
                close(fd);
                continue;
            }
            struct stat st;
            if (fstat(fd, &st) != 0) {
                snprintf(err, errsz, "fstat %s: %s", name, strerror(errno));
                close(fd);
                return SHM_ESYS;
            }
            uint64_t size = (uint64_t)st.st_size;
            bool ours = false, keep = false;
            if (size >= 64) {
                uint8_t head[SHM_RING_HEADER_SIZE];
                size_t want = size < sizeof head ? (size_t)size : sizeof head;
                ssize_t n = pread(fd, head, want, 0);
                const shm_ring_hdr_t *h = (const shm_ring_hdr_t *)head;
                uint32_t magic = n >= 8 ? h->magic : 0;
                if (magic && magic != SHM_RING_MAGIC) {
                    char why[200];
                    shm_ring_check(head, (uint64_t)n, why, sizeof why);
                    snprintf(err, errsz, "%s: %s; not replacing it (set KAFSCALE_SHM_NAME)", name, why);
                    close(fd);
                    return SHM_EFOREIGN;
                }
                ours = magic == SHM_RING_MAGIC;
                char why[200];
                keep = ours && n == SHM_RING_HEADER_SIZE && shm_ring_check(head, size, why, sizeof why) == SHM_OK &&
                       h->total_size == total && size == total && h->nentries == nent && h->table_off == table_off &&
                       h->data_off == data_off && h->entry_size == SHM_RING_ENTRY_SIZE && h->minor == SHM_RING_MINOR;
            }
            if (keep) {
                int rc = map_rw(r, fd, size, err, errsz);
                if (rc != SHM_OK) {
                    close(fd);
                    return rc;
                }
                r->fd = fd;
                r->writer = true;
                r->magic = SHM_RING_T_MAGIC;
                r->dev = (uint64_t)st.st_dev;
                r->ino = (uint64_t)st.st_ino;
                snprintf(r->name, sizeof r->name, "%s", name);
                set_views(r);
                writer_start(r);
                *adopted = true;
                return SHM_OK;
            }
            /* Ours in another size or layout, or never initialised: replace. */
            shm_unlink(name);
            close(fd);
        }
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST) continue; /* someone else created it: look again */
            snprintf(err, errsz, "cannot create shm %s: %s", name, strerror(errno));
            return SHM_ESYS;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) { /* another writer got it first */
            close(fd);
            continue;
        }
        int e = ftruncate(fd, (off_t)total) != 0 ? errno : posix_fallocate(fd, 0, (off_t)total);
        if (e) {
            snprintf(err, errsz, "cannot reserve %llu bytes for shm %s: %s (make KAFSCALE_CACHE_BYTES smaller or "
                                 "/dev/shm bigger)",
                     (unsigned long long)total, name, strerror(e));
            shm_unlink(name);
            close(fd);
            return SHM_ESYS;
        }
        int rc = map_rw(r, fd, total, err, errsz);
        if (rc != SHM_OK) {
            shm_unlink(name);
            close(fd);
            return rc;
        }
        struct stat st;
        fstat(fd, &st);
        r->fd = fd;
        r->writer = true;
        r->magic = SHM_RING_T_MAGIC;
        r->dev = (uint64_t)st.st_dev;
        r->ino = (uint64_t)st.st_ino;
        snprintf(r->name, sizeof r->name, "%s", name);
        init_header(r, total, (uint32_t)nent, table_off, data_off, g);
        set_views(r);
        writer_start(r);
        return SHM_OK;
    }
    snprintf(err, errsz, "shm %s keeps changing under us; is another writer starting?", name);
    return SHM_EBUSY;
}

void shm_ring_writer_close(shm_ring_t *r, bool unlink) {
    if (r->magic != SHM_RING_T_MAGIC) return;
    KS_ASSERT(r->writer);
    ST(&r->hdr->writer_state, SHM_WRITER_STOPPED);
    if (unlink) shm_unlink(r->name);
    munmap(r->base, r->size);
    close(r->fd); /* drops the lock */
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

void shm_ring_heartbeat(shm_ring_t *r, uint64_t now_ms) { ST(&r->hdr->heartbeat_ms, now_ms); }

bool shm_ring_contains(const shm_ring_t *r, const shm_ring_key_t *k) {
    uint64_t h = shm_ring_key_hash(k->topic, k->topic_len, k->partition, k->base_offset);
    for (uint32_t i = 0; i < r->nentries; i++) {
        const shm_ring_entry_t *e = &r->ents[i];
        if (e->key_hash == h && key_matches(e, k)) return true;
    }
    return false;
}

/* Evicts every entry whose payload overlaps [from, to) of the data area. */
static uint32_t evict_range(shm_ring_t *r, uint64_t from, uint64_t to) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->nentries; i++) {
        shm_ring_entry_t *e = &r->ents[i];
        if (e->state != SHM_ENTRY_SEGMENT) continue;
        if (e->data_off < to && e->data_off + e->len > from) {
            entry_evict(r, e);
            n++;
        }
    }
    return n;
}

int shm_ring_publish(shm_ring_t *r, const shm_ring_key_t *k, const void *payload, uint64_t len, uint32_t origin,
                     uint32_t load_us, uint32_t crc, uint32_t *evicted) {
    KS_ASSERT(r->magic == SHM_RING_T_MAGIC && r->writer);
    if (evicted) *evicted = 0;
    if (len == 0 || len > r->data_size / 2 || k->topic_len >= SHM_RING_TOPIC_MAX) return SHM_ETOOBIG;
    shm_ring_hdr_t *h = r->hdr;
    uint64_t head_seq = h->head_seq, off = h->head_off;
    uint32_t n = 0;
    /* 1. Reserve: wrap when the payload does not fit before the end; the
     * skipped tail counts as written (its entries go too). */
    if (off + len > r->data_size) {
        n += evict_range(r, off, r->data_size);
        head_seq += r->data_size - off;
        off = 0;
    }
    n += evict_range(r, off, off + len);
    uint64_t slot_no = h->next_slot;
    shm_ring_entry_t *e = &r->ents[slot_no % r->nentries];
    if (e->state == SHM_ENTRY_SEGMENT) {
        entry_evict(r, e);
        n++;
    }
    /* 2. Advance the cursor before a byte changes. */
    ST(&h->head_seq, head_seq + len);
    ST(&h->head_off, off + len == r->data_size ? 0 : off + len);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    /* 3. The payload. */
    memcpy(r->data + off, payload, len);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    /* 4. The entry's header words, under an odd sequence. */
    uint64_t s = e->seq | 1;
    ST(&e->seq, s);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    e->topic_len = (uint32_t)k->topic_len;
    memset(e->topic, 0, sizeof e->topic);
    memcpy(e->topic, k->topic, k->topic_len);
    e->partition = k->partition;
    e->base_offset = k->base_offset;
    e->last_offset = k->last_offset;
    e->origin = origin;
    e->data_seq = head_seq;
    e->data_off = off;
    e->len = len;
    if (k->topic_id) memcpy(e->topic_id, k->topic_id, 16);
    else memset(e->topic_id, 0, 16);
    e->loaded_us = unix_us();
    e->load_us = load_us;
    e->crc = crc;
    memset(e->reserved, 0, sizeof e->reserved);
    ST(&e->key_hash, shm_ring_key_hash(k->topic, k->topic_len, k->partition, k->base_offset));
    ST(&e->state, SHM_ENTRY_SEGMENT);
    __atomic_store_n(&e->seq, s + 1, __ATOMIC_RELEASE);
    ST(&h->next_slot, slot_no + 1);
    ST(&h->live_entries, h->live_entries + 1);
    ST(&h->live_bytes, h->live_bytes + len);
    shm_ring_count(r, SHM_C_loads, 1);
    shm_ring_count(r, SHM_C_bytes_loaded, len);
    if (n) shm_ring_count(r, SHM_C_evictions, n);
    if (evicted) *evicted = n;
    return SHM_OK;
}
