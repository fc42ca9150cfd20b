/* kfs_dump.c - prints and checks a Kafscale segment (.kfs) and its index.
 *
 *   kfs_dump FILE.kfs [FILE.index]
 *       Prints the header, every batch (position, offsets, record count,
 *       length, batch CRC-32C), the footer and the index entries. Exits 1 on
 *       any inconsistency: whatever seg_parse()/seg_index_parse() refuse, a
 *       batch whose own CRC is wrong, an index that does not belong to the
 *       segment, or a file named segment-<N>.kfs whose base offset is not N.
 *       Exit 2: usage or I/O error.
 *
 *   kfs_dump --make OUT.kfs OUT.index N [BASE_OFFSET [INTERVAL]]
 *       Writes a sample segment of N generated v2 batches (1 to 37 records
 *       each, offsets from BASE_OFFSET, default 0) and its index (INTERVAL
 *       messages between entries, default 10) with the segment builder, for
 *       tests that read segments with another implementation.
 *
 * A test tool: it prints as much as it can read before it stops at an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "crc32c.h"
#include "kbuf.h"
#include "segment.h"

static uint8_t *read_file(const char *path, size_t *n) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "kfs_dump: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fprintf(stderr, "kfs_dump: %s: %s\n", path, strerror(errno));
        close(fd);
        return NULL;
    }
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fprintf(stderr, "kfs_dump: %s: out of memory\n", path);
        close(fd);
        return NULL;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            fprintf(stderr, "kfs_dump: %s: short read\n", path);
            free(buf);
            close(fd);
            return NULL;
        }
        got += (size_t)r;
    }
    close(fd);
    *n = len;
    return buf;
}

static int write_iov(const char *path, const struct iovec *iov, int iovcnt) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "kfs_dump: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                fprintf(stderr, "kfs_dump: %s: %s\n", path, strerror(errno));
                close(fd);
                return -1;
            }
            p += w;
            left -= (size_t)w;
        }
    }
    return close(fd);
}

/* ---- --make ---- */

/* Appends a v2 batch of nrec records at base_offset to w; returns its size. */
static size_t gen_batch(kw_t *w, int64_t base_offset, int nrec, int64_t ts) {
    size_t start = w->len;
    kw_i64(w, base_offset);
    size_t len_at = kw_reserve(w, 4);
    kw_i32(w, 0);   /* partition leader epoch */
    kw_i8(w, 2);    /* magic */
    size_t crc_at = kw_reserve(w, 4);
    kw_i16(w, 0);   /* attributes: no compression, create time */
    kw_i32(w, nrec - 1);
    kw_i64(w, ts);
    kw_i64(w, ts + nrec - 1);
    kw_i64(w, -1);  /* producer id */
    kw_i16(w, -1);
    kw_i32(w, -1);
    kw_i32(w, nrec);
    kw_t rec;
    kw_init(&rec, 128);
    for (int i = 0; i < nrec; i++) {
        char key[32], val[64];
        int kl = snprintf(key, sizeof key, "k%d", i % 7);
        int vl = snprintf(val, sizeof val, "message %lld", (long long)(base_offset + i));
        kw_reset(&rec);
        kw_i8(&rec, 0);
        kw_varint(&rec, i); /* timestamp delta */
        kw_varint(&rec, i); /* offset delta */
        kw_varint(&rec, kl);
        kw_raw(&rec, key, (size_t)kl);
        kw_varint(&rec, vl);
        kw_raw(&rec, val, (size_t)vl);
        kw_varint(&rec, 0); /* headers */
        kw_varint(w, (int64_t)rec.len);
        kw_raw(w, rec.buf, rec.len);
    }
    kw_free(&rec);
    kw_put_i32_at(w, len_at, (int32_t)(w->len - start - BATCH_LOG_OVERHEAD));
    kw_put_i32_at(w, crc_at, (int32_t)crc32c(0, w->buf + start + 21, w->len - start - 21));
    return w->len - start;
}

static int make(const char *kfs, const char *idx, long nb, long long base, long interval) {
    if (nb < 1 || nb > 1000000 || base < 0 || interval < 1 || interval > INT32_MAX) {
        fprintf(stderr, "kfs_dump --make: N >= 1, BASE_OFFSET >= 0, INTERVAL >= 1\n");
        return 2;
    }
    /* The batches go into one writer first (its buffer moves while it
     * grows), then into the builder by reference. */
    kw_t w;
    kw_init(&w, 4096);
    size_t *lens = malloc((size_t)nb * sizeof *lens);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t created = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int64_t off = base;
    uint32_t x = 2463534242u;
    for (long i = 0; i < nb; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        int nrec = 1 + (int)(x % 37);
        lens[i] = gen_batch(&w, off, nrec, created - 60000 + i);
        off += nrec;
    }
    if (w.oom || !lens) {
        fprintf(stderr, "kfs_dump: out of memory\n");
        return 2;
    }
    seg_builder_t b;
    seg_builder_init(&b, (int32_t)interval);
    size_t at = 0;
    for (long i = 0; i < nb; i++) {
        int rc = seg_builder_add(&b, w.buf + at, lens[i]);
        if (rc) {
            fprintf(stderr, "kfs_dump: batch %ld: %s\n", i, seg_strerror(rc));
            return 1;
        }
        at += lens[i];
    }
    seg_result_t r;
    int rc = seg_builder_finish(&b, created, &r);
    if (rc) {
        fprintf(stderr, "kfs_dump: %s\n", seg_strerror(rc));
        return 1;
    }
    struct iovec xiov = {.iov_base = (void *)r.index, .iov_len = r.index_len};
    if (write_iov(kfs, r.iov, r.iovcnt) != 0 || write_iov(idx, &xiov, 1) != 0) return 2;
    printf("wrote %s (%llu bytes, %d batches, offsets %lld..%lld, %d messages) and %s (%d entries)\n", kfs,
           (unsigned long long)r.size, r.batch_count, (long long)r.base_offset, (long long)r.last_offset,
           r.message_count, idx, r.index_entries);
    seg_builder_free(&b);
    free(lens);
    kw_free(&w);
    return 0;
}

/* ---- dump ---- */

/* n bytes as text, non-printable ones as \xNN (into a static buffer). */
static const char *printable(const uint8_t *p, size_t n) {
    static char out[64];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof out; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') out[o++] = (char)p[i];
        else o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", p[i]);
    }
    out[o] = '\0';
    return out;
}

static int bad; /* inconsistencies found */

#define FAIL(...) do { bad++; printf("ERROR: " __VA_ARGS__); printf("\n"); } while (0)

/* Prints the batches in p[32..end) (end = n - 16, or n when the footer is
 * missing, to show where a truncated segment stops). */
static void dump_batches(const uint8_t *p, size_t end) {
    size_t at = SEG_HEADER_SIZE;
    int i = 0;
    int64_t prev_last = -1;
    while (at < end) {
        batch_info_t bi;
        int rc = batch_validate(p + at, end - at, &bi);
        if (rc == BATCH_ETRUNC || rc == BATCH_EMAGIC || rc == BATCH_EBADMAGIC || rc == BATCH_ELENGTH) {
            FAIL("batch %d at position %zu: %s (%zu bytes left)", i, at, batch_strerror(rc),
                 end - at);
            return;
        }
        printf("batch %d: position %zu base_offset %lld last_offset %lld records %d length %d max_timestamp %lld "
               "crc %s\n",
               i, at, (long long)bi.base_offset, (long long)(bi.base_offset + bi.last_offset_delta),
               bi.record_count, bi.length, (long long)bi.max_timestamp, rc == BATCH_OK ? "ok" : batch_strerror(rc));
        if (rc != BATCH_OK) FAIL("batch %d at position %zu: %s", i, at, batch_strerror(rc));
        if (i > 0 && bi.base_offset <= prev_last)
            FAIL("batch %d: base offset %lld not above the previous last offset %lld", i,
                 (long long)bi.base_offset, (long long)prev_last);
        prev_last = bi.base_offset + bi.last_offset_delta;
        at += (size_t)bi.length;
        i++;
    }
}

/* Checks a file named ...segment-<20 digits>.kfs against the header. */
static void check_name(const char *path, int64_t base) {
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    char key[SEG_KEY_MAX];
    snprintf(key, sizeof key, "n/t/0/%s", name);
    seg_key_info_t ki;
    if (seg_key_parse(key, &ki) != SEG_OK) return; /* not named like a segment */
    if (ki.base_offset != base)
        FAIL("file name says base offset %lld, header says %lld", (long long)ki.base_offset, (long long)base);
}

static int dump(const char *kfs_path, const char *idx_path) {
    size_t n;
    uint8_t *p = read_file(kfs_path, &n);
    if (!p) return 2;
    printf("segment %s: %zu bytes\n", kfs_path, n);
    seg_info_t h, f;
    memset(&h, 0, sizeof h);
    memset(&f, 0, sizeof f);
    int hrc = seg_header_decode(p, n, &h);
    if (n >= 8)
        printf("header: magic %s version %u flags 0x%04x", printable(p, 4), kbe16(p + 4), kbe16(p + 6));
    if (n >= SEG_HEADER_SIZE) {
        int64_t created = (int64_t)kbe64(p + 20);
        time_t secs = (time_t)(created / 1000);
        struct tm tm;
        char when[32] = "?";
        if (gmtime_r(&secs, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf(" base_offset %lld message_count %d created_ms %lld (%s)", (long long)(int64_t)kbe64(p + 8),
               (int32_t)kbe32(p + 16), (long long)created, when);
    }
    if (n >= 8) printf("\n");
    if (hrc) FAIL("header: %s", seg_strerror(hrc));
    int frc = n >= SEG_HEADER_SIZE + SEG_FOOTER_SIZE ? seg_footer_decode(p + n - SEG_FOOTER_SIZE, SEG_FOOTER_SIZE, &f)
                                                     : SEG_ETRUNC;
    if (hrc == SEG_OK) dump_batches(p, frc == SEG_OK ? n - SEG_FOOTER_SIZE : n);
    if (n >= SEG_HEADER_SIZE + SEG_FOOTER_SIZE) {
        const uint8_t *q = p + n - SEG_FOOTER_SIZE;
        uint32_t body_crc = crc32c(0, p + SEG_HEADER_SIZE, n - SEG_HEADER_SIZE - SEG_FOOTER_SIZE);
        printf("footer: crc 0x%08x (%s, body 0x%08x) last_offset %lld magic %s\n", kbe32(q),
               kbe32(q) == body_crc ? "ok" : "MISMATCH", body_crc, (long long)(int64_t)kbe64(q + 4),
               printable(q + 12, 4));
    }
    if (frc) FAIL("footer: %s", seg_strerror(frc));

    seg_info_t si;
    int src = seg_parse(p, n, &si);
    if (src) {
        /* header/footer errors were reported above */
        if (src != hrc && src != frc) FAIL("segment: %s (at byte %llu)", seg_strerror(src), (unsigned long long)si.err_pos);
    } else {
        printf("segment: ok (%d batches, offsets %lld..%lld, %d messages)\n", si.batch_count,
               (long long)si.base_offset, (long long)si.last_offset, si.message_count);
        check_name(kfs_path, si.base_offset);
    }

    if (idx_path) {
        size_t xn;
        uint8_t *x = read_file(idx_path, &xn);
        if (!x) {
            free(p);
            return 2;
        }
        printf("index %s: %zu bytes\n", idx_path, xn);
        if (xn >= SEG_IDX_HEADER_SIZE)
            printf("index header: magic %s version %u entries %d interval %d\n", printable(x, 4),
                   kbe16(x + 4), (int32_t)kbe32(x + 6), (int32_t)kbe32(x + 10));
        seg_index_t ix;
        int xrc = seg_index_parse(x, xn, &ix);
        /* print the entries that are there, even when the count is wrong */
        size_t have = xn >= SEG_IDX_HEADER_SIZE ? (xn - SEG_IDX_HEADER_SIZE) / SEG_IDX_ENTRY_SIZE : 0;
        seg_index_t raw = {.count = (int32_t)(have > INT32_MAX ? INT32_MAX : have), .entries = x + SEG_IDX_HEADER_SIZE};
        for (int32_t i = 0; i < raw.count; i++) {
            int32_t pos = seg_index_position(&raw, i);
            const char *what = "";
            if (src == SEG_OK) {
                if (pos < SEG_HEADER_SIZE || (size_t)pos + BATCH_LOG_OVERHEAD > n - SEG_FOOTER_SIZE)
                    what = " (outside the batches)";
                else if ((int64_t)kbe64(p + pos) == seg_index_offset(&raw, i))
                    what = " (batch ok)";
                else
                    what = " (NOT a batch with this offset)";
            }
            printf("entry %d: offset %lld position %d%s\n", i, (long long)seg_index_offset(&raw, i), pos, what);
        }
        if (xrc) FAIL("index: %s", seg_strerror(xrc));
        else if (src == SEG_OK) {
            int32_t e;
            int crc = seg_index_check(p, n, &ix, &e);
            if (crc) FAIL("index entry %d: %s", e, seg_strerror(crc));
            else printf("index: ok (%d entries, interval %d)\n", ix.count, ix.interval);
        }
        free(x);
    }
    free(p);
    if (bad) printf("%d error(s)\n", bad);
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 5 && argc <= 7 && strcmp(argv[1], "--make") == 0) {
        char *e;
        long nb = strtol(argv[4], &e, 10);
        if (*e) nb = -1;
        long long base = argc > 5 ? strtoll(argv[5], &e, 10) : 0;
        if (argc > 5 && *e) base = -1;
        long interval = argc > 6 ? strtol(argv[6], &e, 10) : 10;
        if (argc > 6 && *e) interval = -1;
        return make(argv[2], argv[3], nb, base, interval);
    }
    if (argc < 2 || argc > 3 || argv[1][0] == '-') {
        fprintf(stderr, "usage: kfs_dump FILE.kfs [FILE.index]\n"
                        "       kfs_dump --make OUT.kfs OUT.index N [BASE_OFFSET [INTERVAL]]\n");
        return 2;
    }
    return dump(argv[1], argc == 3 ? argv[2] : NULL);
}
