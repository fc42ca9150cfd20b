/* test_shm_ring.c - unit tests of common/shm_ring.c, the shared-memory ring
 * between kafscale-cached (its writer) and its readers: publishing and
 * reading back, wrap-around of the data area, eviction (data and table), a
 * reader lapped while it copies (sequences and the data position started
 * right before their 64-bit wrap, so the arithmetic is proven across it), a
 * writer and a reader racing on two threads, adoption of a ring a crashed
 * writer left, one writer only, and truncated or foreign objects refused
 * with a message that says what was found.
 *
 * Every test uses its own shm name (/kafscale-unit-<pid>-<n>) and unlinks it.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm_ring.h"

#define MIB (1u << 20)

static char name[64];

static void setup(void) {
    static int n;
    snprintf(name, sizeof name, "/kafscale-unit-%d-%d", (int)getpid(), n++);
    shm_unlink(name);
}

static void teardown(void) { shm_unlink(name); }

/* Payload byte i of segment `base`: depends on both. */
static uint8_t pat(int64_t base, uint64_t i) { return (uint8_t)(base * 131 + i * 7 + (i >> 9)); }

static uint8_t *payload(int64_t base, uint64_t len) {
    uint8_t *p = malloc(len);
    for (uint64_t i = 0; i < len; i++) p[i] = pat(base, i);
    return p;
}

static shm_ring_key_t key(const char *topic, int32_t part, int64_t base, uint64_t len) {
    return (shm_ring_key_t){topic, strlen(topic), NULL, part, base, base + 99, len};
}

static void publish(shm_ring_t *w, const char *topic, int32_t part, int64_t base, uint64_t len) {
    uint8_t *p = payload(base, len);
    shm_ring_key_t k = key(topic, part, base, len);
    ck_assert_int_eq(shm_ring_publish(w, &k, p, len, SHM_ORIGIN_DEMAND, 10, 0, NULL), SHM_OK);
    free(p);
}

/* Reads the whole segment and checks every byte. */
static int read_check(const shm_ring_t *r, const char *topic, int32_t part, int64_t base, uint64_t len) {
    uint8_t *buf = malloc(len);
    uint64_t got = 0;
    shm_ring_key_t k = key(topic, part, base, len);
    int rc = shm_ring_read(r, &k, 0, 0, buf, len, &got);
    if (rc == SHM_OK) {
        ck_assert_uint_eq(got, len);
        for (uint64_t i = 0; i < len; i++)
            if (buf[i] != pat(base, i)) ck_abort_msg("segment %lld byte %llu differs", (long long)base, (unsigned long long)i);
    }
    free(buf);
    return rc;
}

/* The data area create() below gives (table on whole pages after the header). */
static uint64_t data_of(uint64_t total, uint32_t nent) {
    uint64_t table_end = SHM_RING_HEADER_SIZE + (uint64_t)nent * SHM_RING_ENTRY_SIZE;
    return total - ((table_end + SHM_RING_PAGE - 1) / SHM_RING_PAGE * SHM_RING_PAGE);
}

static void create(shm_ring_t *w, uint64_t total, uint32_t nent, uint64_t first_seq, uint64_t first_head) {
    shm_ring_geom_t g = {total, nent, first_seq, first_head};
    bool adopted = true;
    char err[256];
    int rc = shm_ring_create(w, name, &g, &adopted, err, sizeof err);
    ck_assert_msg(rc == SHM_OK, "create: %s", err);
    ck_assert(!adopted);
}

static void open_reader(shm_ring_t *r) {
    char err[256];
    int rc = shm_ring_open(r, name, err, sizeof err);
    ck_assert_msg(rc == SHM_OK, "open: %s", err);
}

START_TEST(test_layout_and_roundtrip) {
    shm_ring_t w, r;
    create(&w, 4 * MIB, 16, 0, 0);
    ck_assert_uint_eq(w.hdr->magic, SHM_RING_MAGIC);
    ck_assert_uint_eq(w.hdr->major, SHM_RING_MAJOR);
    ck_assert_uint_eq(w.hdr->header_size, SHM_RING_HEADER_SIZE);
    ck_assert_uint_eq(w.hdr->table_off, SHM_RING_HEADER_SIZE);
    ck_assert_uint_eq(w.hdr->data_off % SHM_RING_PAGE, 0);
    ck_assert_uint_ge(w.hdr->data_off, w.hdr->table_off + 16 * SHM_RING_ENTRY_SIZE);
    ck_assert_uint_eq(w.hdr->data_off + w.hdr->data_size, 4 * MIB);
    ck_assert_uint_eq(w.hdr->generation, 1);
    ck_assert_int_eq(w.hdr->writer_pid, getpid());
    ck_assert_uint_eq(w.hdr->writer_state, SHM_WRITER_RUNNING);

    publish(&w, "orders", 0, 0, 100000);
    publish(&w, "orders", 0, 100, 50000);
    publish(&w, "orders", 3, 0, 70000);
    open_reader(&r);
    ck_assert_int_eq(read_check(&r, "orders", 0, 0, 100000), SHM_OK);
    ck_assert_int_eq(read_check(&r, "orders", 0, 100, 50000), SHM_OK);
    ck_assert_int_eq(read_check(&r, "orders", 3, 0, 70000), SHM_OK);
    ck_assert_int_eq(read_check(&r, "orders", 1, 0, 70000), SHM_MISS);
    ck_assert_int_eq(read_check(&r, "order", 0, 0, 100000), SHM_MISS);

    /* A range, cut at the end of the segment. */
    uint8_t buf[4096];
    uint64_t got;
    shm_ring_key_t k = key("orders", 0, 100, 50000);
    ck_assert_int_eq(shm_ring_read(&r, &k, 49000, 4096, buf, sizeof buf, &got), SHM_OK);
    ck_assert_uint_eq(got, 1000);
    for (uint64_t i = 0; i < got; i++) ck_assert_uint_eq(buf[i], pat(100, 49000 + i));
    ck_assert_int_eq(shm_ring_read(&r, &k, 50000, 10, buf, sizeof buf, &got), SHM_MISS);

    /* An entry of another size, last offset or topic id is another segment. */
    k.size = 49999;
    ck_assert_int_eq(shm_ring_read(&r, &k, 0, 10, buf, sizeof buf, &got), SHM_MISS);
    k = key("orders", 0, 100, 50000);
    k.last_offset = 5;
    ck_assert_int_eq(shm_ring_read(&r, &k, 0, 10, buf, sizeof buf, &got), SHM_MISS);
    uint8_t id1[16] = {1}, id2[16] = {2};
    shm_ring_key_t kid = key("ids", 0, 0, 5000);
    kid.topic_id = id1;
    uint8_t *p = payload(0, 5000);
    ck_assert_int_eq(shm_ring_publish(&w, &kid, p, 5000, SHM_ORIGIN_PREFETCH, 1, 0, NULL), SHM_OK);
    free(p);
    ck_assert_int_eq(shm_ring_read(&r, &kid, 0, 10, buf, sizeof buf, &got), SHM_OK);
    kid.topic_id = id2;
    ck_assert_int_eq(shm_ring_read(&r, &kid, 0, 10, buf, sizeof buf, &got), SHM_MISS);
    ck_assert(shm_ring_contains(&w, &k) == false);
    ck_assert(shm_ring_contains(&w, &(shm_ring_key_t){"orders", 6, NULL, 3, 0, -1, 0}));

    /* Counters and occupancy. */
    shm_ring_hdr_t h;
    shm_ring_header_snapshot(&r, &h);
    ck_assert_uint_eq(h.counters[SHM_C_loads], 4);
    ck_assert_uint_eq(h.counters[SHM_C_bytes_loaded], 225000);
    ck_assert_uint_eq(h.live_entries, 4);
    ck_assert_uint_eq(h.live_bytes, 225000);
    ck_assert(!shm_ring_changed(&r));
    /* Too big: more than half the data area. */
    shm_ring_key_t kb = key("big", 0, 0, w.data_size / 2 + 1);
    ck_assert_int_eq(shm_ring_publish(&w, &kb, buf, w.data_size / 2 + 1, 1, 0, 0, NULL), SHM_ETOOBIG);
    shm_ring_close(&r);
    shm_ring_writer_close(&w, true);
}
END_TEST

START_TEST(test_wrap_around_keeps_the_newest) {
    shm_ring_t w, r;
    create(&w, 4 * MIB, 64, 0, 0);
    open_reader(&r);
    uint64_t len = 700 * 1024, data = w.data_size;
    uint64_t prev_off = 0;
    bool wrapped = false;
    int n = 25;
    for (int i = 0; i < n; i++) {
        publish(&w, "wrap", 0, i * 1000, len + (uint64_t)i); /* sizes differ: offsets never line up */
        uint64_t off = w.hdr->head_off;
        if (off < prev_off) wrapped = true;
        prev_off = off;
        ck_assert_uint_le(w.hdr->live_bytes, data);
    }
    ck_assert(wrapped);
    ck_assert_uint_gt(w.hdr->head_seq, 3 * data); /* lapped the area several times */
    /* The newest segments that fit are all there and intact, the older gone. */
    int live = 0;
    for (int i = 0; i < n; i++) {
        int rc = read_check(&r, "wrap", 0, i * 1000, len + (uint64_t)i);
        if (rc == SHM_OK) live++;
        else ck_assert_int_eq(rc, SHM_MISS);
        if (i < n - (int)(data / len)) ck_assert_int_eq(rc, SHM_MISS);
    }
    ck_assert_int_ge(live, (int)(data / (len + n)) - 1);
    ck_assert_int_eq(read_check(&r, "wrap", 0, (n - 1) * 1000, len + (uint64_t)(n - 1)), SHM_OK);
    ck_assert_uint_eq(w.hdr->live_entries, (uint64_t)live);
    ck_assert_uint_eq(w.hdr->counters[SHM_C_evictions], (uint64_t)(n - live));
    shm_ring_close(&r);
    shm_ring_writer_close(&w, true);
}
END_TEST

START_TEST(test_eviction_when_the_table_is_full) {
    shm_ring_t w, r;
    create(&w, 4 * MIB, 4, 0, 0);
    open_reader(&r);
    for (int i = 0; i < 10; i++) publish(&w, "t", 1, i * 10, 1000);
    /* Four slots: the four newest, oldest first out. */
    for (int i = 0; i < 10; i++) ck_assert_int_eq(read_check(&r, "t", 1, i * 10, 1000), i >= 6 ? SHM_OK : SHM_MISS);
    ck_assert_uint_eq(w.hdr->live_entries, 4);
    ck_assert_uint_eq(w.hdr->counters[SHM_C_evictions], 6);
    ck_assert_uint_eq(w.hdr->next_slot, 10);
    shm_ring_close(&r);
    shm_ring_writer_close(&w, true);
}
END_TEST

/* The writer laps a reader between its copy and its check. Sequences start
 * three steps before 2^64 and the data position less than one lap before
 * it, so both wrap during the test. */
START_TEST(test_reader_lapped_while_copying_across_the_wrap) {
    shm_ring_t w, r;
    uint64_t data = data_of(4 * MIB, 8);
    create(&w, 4 * MIB, 8, UINT64_MAX - 3, UINT64_MAX - data / 2);
    ck_assert_uint_eq(w.data_size, data);
    ck_assert_uint_eq(w.hdr->head_seq, UINT64_MAX - data / 2);
    open_reader(&r);
    uint64_t len = data / 3;
    publish(&w, "lap", 0, 0, len);
    ck_assert_uint_eq(w.ents[0].seq, UINT64_MAX - 1); /* ...FC, odd ...FD while written, even ...FE after */

    shm_ring_key_t k = key("lap", 0, 0, len);
    shm_ring_cursor_t c;
    uint8_t *buf = malloc(len);

    /* 1. A publish that touches neither the entry nor its bytes: intact, even
     * though the data position wrapped past 2^64 meanwhile. */
    ck_assert_int_eq(shm_ring_find(&r, &k, &c), SHM_OK);
    shm_ring_copy(&r, &c, 0, len, buf);
    publish(&w, "lap", 0, 1000, len);
    ck_assert_uint_lt(w.hdr->head_seq, UINT64_MAX / 2); /* wrapped */
    ck_assert_int_eq(shm_ring_validate(&r, &c), SHM_OK);
    for (uint64_t i = 0; i < len; i += 997) ck_assert_uint_eq(buf[i], pat(0, i));

    /* 2. The writer wraps the data area over the entry while we copy. */
    ck_assert_int_eq(shm_ring_find(&r, &k, &c), SHM_OK);
    shm_ring_copy(&r, &c, 0, len / 2, buf);
    publish(&w, "lap", 0, 2000, len); /* third third: fits */
    publish(&w, "lap", 0, 3000, len); /* wraps to 0: over segment 0 */
    shm_ring_copy(&r, &c, len / 2, len - len / 2, buf + len / 2);
    ck_assert_int_eq(shm_ring_validate(&r, &c), SHM_LAPPED);
    ck_assert_int_eq(read_check(&r, "lap", 0, 0, len), SHM_MISS);

    /* 3. The entry's slot is reused (table lapped), bytes elsewhere. */
    ck_assert_int_eq(shm_ring_find(&r, &(shm_ring_key_t){"lap", 3, NULL, 0, 3000, -1, len}, &c), SHM_OK);
    uint32_t slot = c.slot;
    for (int i = 0; i < 8; i++) publish(&w, "small", 0, i, 100);
    ck_assert_int_eq(shm_ring_validate(&r, &c), SHM_LAPPED);
    /* Every slot's sequence went through 2^64 and back to even. */
    ck_assert_uint_lt(w.ents[slot].seq, 16);
    ck_assert_uint_eq(w.ents[slot].seq % 2, 0);

    /* 4. The writer changes only the data position past the payload plus one
     * lap: the position check alone catches it. */
    publish(&w, "pos", 0, 0, 5000);
    ck_assert_int_eq(shm_ring_find(&r, &(shm_ring_key_t){"pos", 3, NULL, 0, 0, -1, 5000}, &c), SHM_OK);
    ck_assert_int_eq(shm_ring_validate(&r, &c), SHM_OK);
    c.e.data_seq -= data + 1; /* as if the writer had gone round once more */
    ck_assert_int_eq(shm_ring_validate(&r, &c), SHM_LAPPED);
    free(buf);
    shm_ring_close(&r);
    shm_ring_writer_close(&w, true);
}
END_TEST

/* A writer thread publishing as fast as it can over a reader thread that
 * reads recent segments and checks every byte of what it is told is intact. */
typedef struct race {
    shm_ring_t *w;
    volatile int64_t published; /* highest base published */
    volatile bool stop;
} race_t;

static void *race_writer(void *arg) {
    race_t *rc = arg;
    uint64_t len = 300 * 1024;
    uint8_t *p = malloc(len + 64 * 1024);
    for (int64_t b = 0; !rc->stop && b < 1500; b++) {
        uint64_t n = len + (uint64_t)(b % 17) * 4096;
        for (uint64_t i = 0; i < n; i++) p[i] = pat(b, i);
        shm_ring_key_t k = key("race", 0, b, n);
        shm_ring_publish(rc->w, &k, p, n, SHM_ORIGIN_READAHEAD, 1, 0, NULL);
        __atomic_store_n(&rc->published, b, __ATOMIC_RELEASE);
    }
    free(p);
    rc->stop = true;
    return NULL;
}

START_TEST(test_writer_and_reader_race) {
    shm_ring_t w, r;
    create(&w, 2 * MIB + 64 * 1024, 8, UINT64_MAX - 40, UINT64_MAX - 10 * data_of(2 * MIB + 64 * 1024, 8));
    open_reader(&r);
    race_t rc = {&w, -1, false};
    pthread_t th;
    pthread_create(&th, NULL, race_writer, &rc);
    uint8_t *buf = malloc(400 * 1024);
    int ok = 0, lapped = 0, miss = 0;
    while (!rc.stop) {
        int64_t top = __atomic_load_n(&rc.published, __ATOMIC_ACQUIRE);
        if (top < 0) continue;
        int64_t b = top - (ok + lapped + miss) % 6; /* recent ones, some about to be evicted */
        if (b < 0) continue;
        uint64_t n = 300 * 1024 + (uint64_t)(b % 17) * 4096;
        int res = read_check(&r, "race", 0, b, n); /* aborts on a wrong byte in an SHM_OK read */
        if (res == SHM_OK) ok++;
        else if (res == SHM_LAPPED) lapped++;
        else miss++;
    }
    pthread_join(th, NULL);
    free(buf);
    ck_assert_msg(ok > 10, "ok %d lapped %d miss %d", ok, lapped, miss);
    ck_assert_uint_lt(w.hdr->head_seq, UINT64_MAX / 2); /* the position wrapped */
    shm_ring_close(&r);
    shm_ring_writer_close(&w, true);
}
END_TEST

START_TEST(test_adopts_what_a_crashed_writer_left) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) { /* the writer that crashes mid-publish */
        shm_ring_t w;
        shm_ring_geom_t g = {4 * MIB, 16, 0, 0};
        bool adopted;
        char err[256];
        if (shm_ring_create(&w, name, &g, &adopted, err, sizeof err) != SHM_OK) _exit(1);
        for (int i = 0; i < 3; i++) {
            uint8_t *p = payload(i, 10000);
            shm_ring_key_t k = key("crash", 0, i, 10000);
            shm_ring_publish(&w, &k, p, 10000, 1, 0, 0, NULL);
            free(p);
        }
        w.ents[1].seq |= 1; /* killed while rewriting entry 1 */
        _exit(0);           /* no clean close: state stays "running" */
    }
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    shm_ring_t r, w;
    open_reader(&r);
    ck_assert_uint_eq(r.hdr->writer_state, SHM_WRITER_RUNNING);
    ck_assert_int_eq(r.hdr->writer_pid, pid);
    ck_assert_int_eq(read_check(&r, "crash", 0, 1, 10000), SHM_MISS); /* odd: changing */

    shm_ring_geom_t g = {4 * MIB, 16, 0, 0};
    bool adopted = false;
    char err[256];
    ck_assert_int_eq(shm_ring_create(&w, name, &g, &adopted, err, sizeof err), SHM_OK);
    ck_assert(adopted);
    ck_assert_uint_eq(w.hdr->generation, 2);
    ck_assert_int_eq(w.hdr->writer_pid, getpid());
    ck_assert_uint_eq(w.hdr->live_entries, 2);
    ck_assert_uint_eq(w.hdr->counters[SHM_C_loads], 0); /* a new writer's counters */
    ck_assert(shm_ring_changed(&r));                    /* readers notice the new generation */
    ck_assert_int_eq(read_check(&r, "crash", 0, 0, 10000), SHM_OK); /* and the ring is warm */
    ck_assert_int_eq(read_check(&r, "crash", 0, 2, 10000), SHM_OK);
    ck_assert_int_eq(read_check(&r, "crash", 0, 1, 10000), SHM_MISS);
    /* Going on from where the dead writer stopped. */
    publish(&w, "crash", 0, 3, 10000);
    ck_assert_int_eq(read_check(&r, "crash", 0, 3, 10000), SHM_OK);
    ck_assert_int_eq(read_check(&r, "crash", 0, 0, 10000), SHM_OK);

    /* One writer at a time. */
    shm_ring_t w2;
    ck_assert_int_eq(shm_ring_create(&w2, name, &g, &adopted, err, sizeof err), SHM_EBUSY);
    ck_assert_msg(strstr(err, "another writer"), "%s", err);
    shm_ring_close(&r);

    /* A clean stop marks the ring stopped; another size replaces the object. */
    shm_ring_writer_close(&w, false);
    open_reader(&r);
    ck_assert_uint_eq(r.hdr->writer_state, SHM_WRITER_STOPPED);
    g.total_size = 6 * MIB;
    ck_assert_int_eq(shm_ring_create(&w, name, &g, &adopted, err, sizeof err), SHM_OK);
    ck_assert(!adopted);
    ck_assert(shm_ring_changed(&r)); /* another inode */
    ck_assert_uint_eq(w.hdr->generation, 1);
    ck_assert_uint_eq(w.hdr->live_entries, 0);
    shm_ring_close(&r);
    shm_ring_writer_close(&w, true);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_ENOENT);
}
END_TEST

/* Writes raw bytes as the shm object `name`. */
static void raw_object(const void *p, size_t n, size_t size) {
    int fd = shm_open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    if (n) ck_assert_int_eq(pwrite(fd, p, n, 0), (ssize_t)n);
    close(fd);
}

START_TEST(test_refuses_truncated_and_foreign_objects) {
    shm_ring_t r;
    char err[256];
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_ENOENT);

    /* Foreign magic, in a big and in a tiny object. */
    char junk[8192];
    memset(junk, 0, sizeof junk);
    memcpy(junk, "GARBAGE!", 8);
    raw_object(junk, sizeof junk, 1 * MIB);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_EFOREIGN);
    ck_assert_msg(strstr(err, "not a Kafscale ring") && strstr(err, "GARB"), "%s", err);
    raw_object(junk, 100, 100);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_EFOREIGN);
    /* A writer does not overwrite what is not a ring. */
    shm_ring_t w;
    shm_ring_geom_t g = {4 * MIB, 0, 0, 0};
    bool adopted;
    ck_assert_int_eq(shm_ring_create(&w, name, &g, &adopted, err, sizeof err), SHM_EFOREIGN);
    ck_assert_msg(strstr(err, "not replacing"), "%s", err);
    int fd = shm_open(name, O_RDONLY, 0);
    char back[8];
    ck_assert_int_eq(pread(fd, back, 8, 0), 8);
    close(fd);
    ck_assert(!memcmp(back, "GARBAGE!", 8));

    /* Magic 0: not initialised yet (a writer between create and magic). */
    raw_object(NULL, 0, 1 * MIB);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_ENOTREADY);
    raw_object(NULL, 0, 0);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_ENOTREADY);

    /* A real ring header with an unknown major version. */
    shm_unlink(name);
    g.total_size = 4 * MIB;
    ck_assert_int_eq(shm_ring_create(&w, name, &g, &adopted, err, sizeof err), SHM_OK);
    uint8_t head[SHM_RING_HEADER_SIZE];
    memcpy(head, w.base, sizeof head);
    shm_ring_writer_close(&w, true);
    shm_ring_hdr_t *h = (shm_ring_hdr_t *)head;
    h->major = 2;
    h->minor = 7;
    raw_object(head, sizeof head, 4 * MIB);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_EVERSION);
    ck_assert_msg(strstr(err, "2.7") && strstr(err, "not supported"), "%s", err);
    /* A newer minor version of our major is read. */
    h->major = SHM_RING_MAJOR;
    raw_object(head, sizeof head, 4 * MIB);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_OK);
    shm_ring_close(&r);

    /* Truncated: smaller than its header says, or than a header. */
    h->minor = SHM_RING_MINOR;
    raw_object(head, sizeof head, 2 * MIB);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_ETRUNC);
    ck_assert_msg(strstr(err, "truncated") && strstr(err, "4194304"), "%s", err);
    raw_object(head, 2000, 2000);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_ETRUNC);
    ck_assert_msg(strstr(err, "truncated"), "%s", err);
    /* Inconsistent offsets. */
    h->data_off = 3 * MIB;
    raw_object(head, sizeof head, 4 * MIB);
    ck_assert_int_eq(shm_ring_open(&r, name, err, sizeof err), SHM_EBADHDR);
}
END_TEST

START_TEST(test_names) {
    char out[SHM_RING_NAME_MAX], err[256], out2[SHM_RING_NAME_MAX];
    ck_assert_int_eq(shm_ring_name(out, sizeof out, "ring-a", NULL, 0, err, sizeof err), 0);
    ck_assert_str_eq(out, "/ring-a");
    ck_assert_int_eq(shm_ring_name(out, sizeof out, "/ring-b", NULL, 0, err, sizeof err), 0);
    ck_assert_str_eq(out, "/ring-b");
    ck_assert_int_eq(shm_ring_name(out, sizeof out, "a/b", NULL, 0, err, sizeof err), -1);
    ck_assert_int_eq(shm_ring_name(out, sizeof out, "/", NULL, 0, err, sizeof err), -1);
    ck_assert_int_eq(shm_ring_name(out, sizeof out, NULL, "/tmp", 7, err, sizeof err), 0);
    ck_assert_msg(!strncmp(out, "/kafscale-7-", 12) && strlen(out) == 20, "%s", out);
    ck_assert_int_eq(shm_ring_name(out2, sizeof out2, "", "/var", 7, err, sizeof err), 0);
    ck_assert_str_ne(out, out2); /* another data dir, another ring */
    ck_assert_str_eq(shm_ring_counter_names[SHM_C_hits], "hits");
    ck_assert_str_eq(shm_ring_counter_names[SHM_C_fallbacks], "fallbacks");
}
END_TEST

Suite *shm_ring_suite(void) {
    Suite *s = suite_create("shm_ring");
    TCase *tc = tcase_create("ring");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_layout_and_roundtrip);
    tcase_add_test(tc, test_wrap_around_keeps_the_newest);
    tcase_add_test(tc, test_eviction_when_the_table_is_full);
    tcase_add_test(tc, test_reader_lapped_while_copying_across_the_wrap);
    tcase_add_test(tc, test_writer_and_reader_race);
    tcase_add_test(tc, test_adopts_what_a_crashed_writer_left);
    tcase_add_test(tc, test_refuses_truncated_and_foreign_objects);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
