/* segment.c - the .kfs segment and .index formats and their keys (see segment.h).
 *
 * Owns nothing global. The builder owns two growable arrays (index bytes and
 * iovec pieces) reused across segments; batch bytes always belong to the
 * caller. Readers only look at the buffer they are given, bounded by its size.
 */
#include "segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "crc32c.h"
#include "kbuf.h"
#include "log.h"

const char *seg_strerror(int err) {
    switch (err) {
    case SEG_OK: return "ok";
    case SEG_ETRUNC: return "segment truncated (shorter than its header and footer)";
    case SEG_EMAGIC: return "bad magic (not a Kafscale segment or index)";
    case SEG_EVERSION: return "unsupported segment/index version";
    case SEG_EFLAGS: return "unknown segment flags (e.g. an LZ4 body this reader cannot read)";
    case SEG_EFOOTER: return "bad footer magic (segment truncated or not a segment)";
    case SEG_ECRC: return "segment body CRC-32C mismatch";
    case SEG_EBATCH: return "segment body is not a sequence of whole v2 record batches";
    case SEG_EORDER: return "batch offsets do not ascend";
    case SEG_EBASE: return "header base offset differs from the first batch's";
    case SEG_ECOUNT: return "header message count differs from the batches' record counts";
    case SEG_ELAST: return "footer last offset differs from the last batch's";
    case SEG_EEMPTY: return "segment without batches";
    case SEG_ETOOBIG: return "segment too big (2 GiB of bytes or 2^31 messages)";
    case SEG_ENOMEM: return "out of memory";
    case SEG_EIDX_SIZE: return "index size does not match its entry count";
    case SEG_EIDX_INTERVAL: return "index interval is not positive";
    case SEG_EIDX_ORDER: return "index entries do not ascend";
    case SEG_EIDX_POS: return "index entry does not point at a batch with its offset";
    case SEG_EIDX_RULE: return "index entries differ from the interval rule";
    case SEG_ERANGE: return "offset below the segment";
    case SEG_EKEY: return "not a segment key";
    default: return "unknown segment error";
    }
}

/* ---- header and footer ---- */

void seg_header_encode(uint8_t out[SEG_HEADER_SIZE], int64_t base_offset, int32_t message_count,
                       int64_t created_ms, uint16_t flags) {
    kput32(out, SEG_MAGIC);
    kput16(out + 4, SEG_VERSION);
    kput16(out + 6, flags);
    kput64(out + 8, (uint64_t)base_offset);
    kput32(out + 16, (uint32_t)message_count);
    kput64(out + 20, (uint64_t)created_ms);
    kput32(out + 28, 0); /* reserved */
}

void seg_footer_encode(uint8_t out[SEG_FOOTER_SIZE], uint32_t crc, int64_t last_offset) {
    kput32(out, crc);
    kput64(out + 4, (uint64_t)last_offset);
    kput32(out + 12, SEG_FOOTER_MAGIC);
}

int seg_header_decode(const uint8_t *p, size_t n, seg_info_t *o) {
    if (n < SEG_HEADER_SIZE) return SEG_ETRUNC;
    if (kbe32(p) != SEG_MAGIC) return SEG_EMAGIC;
    o->version = kbe16(p + 4);
    o->flags = kbe16(p + 6);
    if (o->version != SEG_VERSION) return SEG_EVERSION;
    if (o->flags & ~SEG_FLAGS_KNOWN) return SEG_EFLAGS;
    o->base_offset = (int64_t)kbe64(p + 8);
    o->message_count = (int32_t)kbe32(p + 16);
    o->created_ms = (int64_t)kbe64(p + 20);
    /* p[28..31] reserved: written 0, ignored on read (room to grow). */
    return SEG_OK;
}

int seg_footer_decode(const uint8_t *p, size_t n, seg_info_t *o) {
    if (n < SEG_FOOTER_SIZE) return SEG_ETRUNC;
    if (kbe32(p + 12) != SEG_FOOTER_MAGIC) return SEG_EFOOTER;
    o->crc = kbe32(p);
    o->last_offset = (int64_t)kbe64(p + 4);
    return SEG_OK;
}

/* Frames the batch at body position `at` (body_len bytes in all): fills bi
 * with its header. Stricter than the Go reader, which stops quietly at a
 * zero length. */
static int frame_batch(const uint8_t *body, size_t body_len, size_t at, batch_info_t *bi) {
    if (batch_parse(body + at, body_len - at, bi) != BATCH_OK) return SEG_EBATCH;
    if (bi->record_count < 0 || bi->last_offset_delta < 0) return SEG_EBATCH;
    if (bi->base_offset < 0 || bi->base_offset > INT64_MAX - bi->last_offset_delta) return SEG_EBATCH;
    return SEG_OK;
}

int seg_parse(const uint8_t *p, size_t n, seg_info_t *o) {
    memset(o, 0, sizeof *o);
    if (n < SEG_HEADER_SIZE + SEG_FOOTER_SIZE) return SEG_ETRUNC;
    int rc = seg_header_decode(p, n, o);
    if (rc) return rc;
    o->err_pos = n - SEG_FOOTER_SIZE;
    if ((rc = seg_footer_decode(p + n - SEG_FOOTER_SIZE, SEG_FOOTER_SIZE, o))) return rc;
    o->err_pos = 0;
    if ((uint64_t)n > SEG_MAX_SIZE) return SEG_ETOOBIG;
    o->body = p + SEG_HEADER_SIZE;
    o->body_len = n - SEG_HEADER_SIZE - SEG_FOOTER_SIZE;
    o->err_pos = SEG_HEADER_SIZE;
    if (o->body_len == 0) return SEG_EEMPTY;
    if (crc32c(0, o->body, o->body_len) != o->crc) return SEG_ECRC;

    int64_t last = -1, count = 0;
    o->max_timestamp = -1;
    for (size_t at = 0; at < o->body_len;) {
        batch_info_t bi;
        o->err_pos = SEG_HEADER_SIZE + at;
        if ((rc = frame_batch(o->body, o->body_len, at, &bi))) return rc;
        if (at == 0 && bi.base_offset != o->base_offset) return SEG_EBASE;
        if (at > 0 && bi.base_offset <= last) return SEG_EORDER;
        last = bi.base_offset + bi.last_offset_delta;
        count += bi.record_count;
        if (bi.max_timestamp > o->max_timestamp) o->max_timestamp = bi.max_timestamp;
        o->batch_count++;
        at += (size_t)bi.length;
    }
    o->err_pos = 16;
    if (count != o->message_count) return SEG_ECOUNT;
    o->err_pos = n - SEG_FOOTER_SIZE + 4;
    if (last != o->last_offset) return SEG_ELAST;
    o->err_pos = 0;
    return SEG_OK;
}

bool seg_next_batch(const uint8_t *seg, size_t n, size_t *pos, const uint8_t **batch, size_t *len) {
    if (n < SEG_HEADER_SIZE + SEG_FOOTER_SIZE) return false;
    size_t end = n - SEG_FOOTER_SIZE;
    if (*pos < SEG_HEADER_SIZE || *pos >= end) return false;
    batch_info_t bi;
    if (batch_parse(seg + *pos, end - *pos, &bi) != BATCH_OK) return false;
    *batch = seg + *pos;
    *len = (size_t)bi.length;
    *pos += (size_t)bi.length;
    return true;
}

/* ---- builder ---- */

#define CHECK_BUILDER(b) KS_ASSERT((b) != NULL && (b)->magic == SEG_BUILDER_MAGIC)
#define SEG_CRC_FOLD_MIN 4096 /* batches this long get their body CRC from the batch's own */

/* Layout of b->buf: header and footer live on the heap, not in the struct,
 * so that the iovecs handed out stay valid when the builder is moved. */
#define BUF_HEADER 0
#define BUF_FOOTER SEG_HEADER_SIZE
#define BUF_INDEX (SEG_HEADER_SIZE + SEG_FOOTER_SIZE)

static void builder_clear(seg_builder_t *b) {
    b->base_offset = -1;
    b->last_offset = -1;
    b->max_timestamp = -1;
    b->message_count = 0;
    b->batch_count = 0;
    b->since_entry = 0;
    b->body_len = 0;
    b->crc = 0;
    b->finished = false;
    b->buf_len = BUF_INDEX + SEG_IDX_HEADER_SIZE; /* index header written by finish */
    b->iov_len = 1;                   /* iov[0] = header */
}

void seg_builder_init(seg_builder_t *b, int32_t interval) {
    KS_ASSERT(interval >= 0);
    memset(b, 0, sizeof *b);
    b->magic = SEG_BUILDER_MAGIC;
    b->interval = interval ? interval : SEG_INDEX_INTERVAL_DEFAULT;
    builder_clear(b);
}

void seg_builder_reset(seg_builder_t *b) {
    CHECK_BUILDER(b);
    builder_clear(b);
}

void seg_builder_free(seg_builder_t *b) {
    CHECK_BUILDER(b);
    free(b->buf);
    free(b->iov);
    memset(b, 0, sizeof *b); /* clears magic: a later use asserts */
}

/* Grows the arrays so that one more batch (and the footer) fits. */
static int builder_reserve(seg_builder_t *b) {
    if (b->buf_len + SEG_IDX_ENTRY_SIZE > b->buf_cap) {
        size_t cap = b->buf_cap ? b->buf_cap * 2 : BUF_INDEX + SEG_IDX_HEADER_SIZE + 64 * SEG_IDX_ENTRY_SIZE;
        uint8_t *np = realloc(b->buf, cap);
        if (!np) return SEG_ENOMEM;
        b->buf = np;
        b->buf_cap = cap;
    }
    if (b->iov_len + 2 > b->iov_cap) { /* this batch + the footer */
        int cap = b->iov_cap ? b->iov_cap * 2 : 256;
        struct iovec *np = realloc(b->iov, (size_t)cap * sizeof *np);
        if (!np) return SEG_ENOMEM;
        b->iov = np;
        b->iov_cap = cap;
    }
    return SEG_OK;
}

int seg_builder_add(seg_builder_t *b, const uint8_t *p, size_t len) {
    CHECK_BUILDER(b);
    KS_ASSERT(!b->finished);
    batch_info_t bi;
    int rc = frame_batch(p, len, 0, &bi);
    if (rc) return rc;
    if ((size_t)bi.length != len) return SEG_EBATCH; /* exactly one batch */
    if (b->batch_count > 0 && bi.base_offset <= b->last_offset) return SEG_EORDER;
    if (seg_builder_size(b) + len > SEG_MAX_SIZE) return SEG_ETOOBIG;
    if ((int64_t)b->message_count + bi.record_count > INT32_MAX) return SEG_ETOOBIG;
    if ((rc = builder_reserve(b))) return rc;

    if (b->batch_count == 0 || b->since_entry >= b->interval) {
        uint8_t *e = b->buf + b->buf_len;
        kput64(e, (uint64_t)bi.base_offset);
        kput32(e + 8, (uint32_t)(SEG_HEADER_SIZE + b->body_len)); /* < SEG_MAX_SIZE */
        b->buf_len += SEG_IDX_ENTRY_SIZE;
        b->since_entry = 0;
    }
    b->since_entry += bi.record_count;
    if (b->batch_count == 0) b->base_offset = bi.base_offset;
    b->last_offset = bi.base_offset + bi.last_offset_delta;
    if (bi.max_timestamp > b->max_timestamp) b->max_timestamp = bi.max_timestamp;
    b->message_count += bi.record_count;
    b->batch_count++;
    /* The body CRC. A v2 batch carries the CRC-32C of its bytes from offset
     * 21 (attributes) to its end, which the broker checked when it was
     * produced: for a long batch, combine that with the CRC of its first 21
     * bytes instead of reading it all once more (it was 15 % of the
     * flusher's CPU). Should a batch's stored CRC not match its bytes, the
     * footer CRC then does not match the body and readers refuse the
     * segment, as they would have refused the batch. */
    if (len >= SEG_CRC_FOLD_MIN) /* the body so far and the first 21 bytes, then the rest */
        b->crc = crc32c_combine(crc32c(b->crc, p, 21), bi.crc, len - 21);
    else
        b->crc = crc32c(b->crc, p, len);
    b->body_len += len;
    b->iov[b->iov_len++] = (struct iovec){.iov_base = (void *)p, .iov_len = len};
    return SEG_OK;
}

int seg_builder_finish(seg_builder_t *b, int64_t created_ms, seg_result_t *out) {
    CHECK_BUILDER(b);
    KS_ASSERT(!b->finished);
    if (b->batch_count == 0) return SEG_EEMPTY;
    uint8_t *hdr = b->buf + BUF_HEADER, *ftr = b->buf + BUF_FOOTER, *idx = b->buf + BUF_INDEX;
    size_t idx_len = b->buf_len - BUF_INDEX;
    seg_header_encode(hdr, b->base_offset, b->message_count, created_ms, 0);
    seg_footer_encode(ftr, b->crc, b->last_offset);
    int32_t entries = (int32_t)((idx_len - SEG_IDX_HEADER_SIZE) / SEG_IDX_ENTRY_SIZE);
    kput32(idx, SEG_IDX_MAGIC);
    kput16(idx + 4, SEG_IDX_VERSION);
    kput32(idx + 6, (uint32_t)entries);
    kput32(idx + 10, (uint32_t)b->interval);
    kput16(idx + 14, 0); /* reserved */
    b->iov[0] = (struct iovec){.iov_base = hdr, .iov_len = SEG_HEADER_SIZE};
    b->iov[b->iov_len] = (struct iovec){.iov_base = ftr, .iov_len = SEG_FOOTER_SIZE};
    b->finished = true;
    *out = (seg_result_t){
        .iov = b->iov,
        .iovcnt = b->iov_len + 1,
        .size = seg_builder_size(b),
        .index = idx,
        .index_len = idx_len,
        .index_entries = entries,
        .base_offset = b->base_offset,
        .last_offset = b->last_offset,
        .max_timestamp = b->max_timestamp,
        .created_ms = created_ms,
        .message_count = b->message_count,
        .batch_count = b->batch_count,
        .crc = b->crc,
    };
    return SEG_OK;
}

/* ---- index ---- */

int seg_index_parse(const uint8_t *p, size_t n, seg_index_t *o) {
    memset(o, 0, sizeof *o);
    if (n < SEG_IDX_HEADER_SIZE) return SEG_ETRUNC;
    if (kbe32(p) != SEG_IDX_MAGIC) return SEG_EMAGIC;
    o->version = kbe16(p + 4);
    if (o->version != SEG_IDX_VERSION) return SEG_EVERSION;
    o->count = (int32_t)kbe32(p + 6);
    o->interval = (int32_t)kbe32(p + 10);
    /* p[14..15] reserved, ignored */
    if (o->count < 1 || (n - SEG_IDX_HEADER_SIZE) % SEG_IDX_ENTRY_SIZE != 0 ||
        (n - SEG_IDX_HEADER_SIZE) / SEG_IDX_ENTRY_SIZE != (size_t)o->count)
        return SEG_EIDX_SIZE;
    if (o->interval <= 0) return SEG_EIDX_INTERVAL;
    o->entries = p + SEG_IDX_HEADER_SIZE;
    for (int32_t i = 0; i < o->count; i++) {
        int64_t off = seg_index_offset(o, i);
        int32_t pos = seg_index_position(o, i);
        if (off < 0 || pos < SEG_HEADER_SIZE) return SEG_EIDX_ORDER;
        if (i > 0 && (off <= seg_index_offset(o, i - 1) || pos <= seg_index_position(o, i - 1)))
            return SEG_EIDX_ORDER;
    }
    return SEG_OK;
}

int seg_index_find(const seg_index_t *x, int64_t offset, int64_t *entry_offset, int32_t *position) {
    if (x->count < 1 || offset < seg_index_offset(x, 0)) return SEG_ERANGE;
    int32_t lo = 0, hi = x->count - 1; /* invariant: entry lo <= offset */
    while (lo < hi) {
        int32_t mid = lo + (hi - lo + 1) / 2;
        if (seg_index_offset(x, mid) <= offset) lo = mid;
        else hi = mid - 1;
    }
    if (entry_offset) *entry_offset = seg_index_offset(x, lo);
    if (position) *position = seg_index_position(x, lo);
    return SEG_OK;
}

int seg_index_lookup(const uint8_t *idx, size_t n, int64_t offset, int64_t *entry_offset, int32_t *position) {
    seg_index_t x;
    int rc = seg_index_parse(idx, n, &x);
    if (rc) return rc;
    return seg_index_find(&x, offset, entry_offset, position);
}

int seg_index_check(const uint8_t *seg, size_t seg_n, const seg_index_t *x, int32_t *err_entry) {
    int32_t i = 0; /* next index entry to match; positions ascend (seg_index_parse) */
    int64_t since = 0;
    bool first = true;
    size_t pos = SEG_HEADER_SIZE;
    const uint8_t *bp;
    size_t len;
    int rc = SEG_OK;
    for (size_t at = pos; seg_next_batch(seg, seg_n, &pos, &bp, &len); at = pos) {
        batch_info_t bi;
        batch_parse(bp, len, &bi);
        int64_t ep = i < x->count ? seg_index_position(x, i) : -1;
        if (ep >= 0 && ep < (int64_t)pos && ep != (int64_t)at) {
            rc = SEG_EIDX_POS; /* inside this batch */
            break;
        }
        bool have = ep == (int64_t)at;
        if (have && seg_index_offset(x, i) != bi.base_offset) {
            rc = SEG_EIDX_POS;
            break;
        }
        if (have != (first || since >= x->interval)) {
            rc = SEG_EIDX_RULE;
            break;
        }
        if (have) {
            i++;
            since = 0;
        }
        since += bi.record_count;
        first = false;
    }
    if (!rc && i < x->count) rc = SEG_EIDX_POS; /* past the last batch */
    if (err_entry) *err_entry = rc ? i : -1;
    return rc;
}

/* ---- keys ---- */

static bool topic_char_ok(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

static bool topic_ok(const char *t, size_t n) {
    if (n == 0 || n > 249) return false;
    if ((n == 1 && t[0] == '.') || (n == 2 && t[0] == '.' && t[1] == '.')) return false;
    for (size_t i = 0; i < n; i++)
        if (!topic_char_ok(t[i])) return false;
    return true;
}

/* A namespace is one or more '/'-separated components, none empty, "." or
 * ".." (Go's path.Join would clean those away and write another key). */
static bool ns_ok(const char *s, size_t n) {
    if (n == 0) return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && (unsigned char)s[i] < 0x20) return false;
        if (i == n || s[i] == '/') {
            size_t cl = i - start;
            if (cl == 0) return false;
            if ((cl == 1 && s[start] == '.') || (cl == 2 && s[start] == '.' && s[start + 1] == '.')) return false;
            start = i + 1;
        }
    }
    return true;
}

int seg_key(char *out, size_t sz, const char *ns, const char *topic, int32_t partition, int64_t base_offset,
            const char *ext) {
    if (sz) out[0] = '\0';
    if (!ns || !topic || !ext || partition < 0 || base_offset < 0) return SEG_EKEY;
    if (strcmp(ext, "kfs") != 0 && strcmp(ext, "index") != 0) return SEG_EKEY;
    if (!ns_ok(ns, strlen(ns)) || !topic_ok(topic, strlen(topic))) return SEG_EKEY;
    int w = snprintf(out, sz, "%s/%s/%d/segment-%020lld.%s", ns, topic, (int)partition, (long long)base_offset, ext);
    if (w < 0 || (size_t)w >= sz) {
        if (sz) out[0] = '\0';
        return SEG_EKEY;
    }
    return SEG_OK;
}

/* Parses exactly n decimal digits at s (no sign); false on overflow past max. */
static bool parse_digits(const char *s, size_t n, int64_t max, int64_t *v) {
    if (n == 0) return false;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        int d = s[i] - '0';
        if (x > (max - d) / 10) return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

int seg_key_parse(const char *key, seg_key_info_t *o) {
    memset(o, 0, sizeof *o);
    if (!key) return SEG_EKEY;
    size_t n = strlen(key);
    /* file name: segment-<20 digits>.kfs|.index */
    const char *slash3 = memrchr(key, '/', n);
    if (!slash3) return SEG_EKEY;
    const char *name = slash3 + 1;
    size_t name_len = (size_t)(key + n - name);
    static const char pre[] = "segment-";
    if (name_len < sizeof pre - 1 + 20 + 1 || memcmp(name, pre, sizeof pre - 1) != 0) return SEG_EKEY;
    const char *digits = name + sizeof pre - 1;
    const char *ext = digits + 20;
    if (*ext != '.') return SEG_EKEY;
    if (strcmp(ext + 1, "kfs") == 0) o->kind = SEG_KEY_KFS;
    else if (strcmp(ext + 1, "index") == 0) o->kind = SEG_KEY_INDEX;
    else return SEG_EKEY;
    if (!parse_digits(digits, 20, INT64_MAX, &o->base_offset)) return SEG_EKEY;
    /* partition */
    const char *slash2 = memrchr(key, '/', (size_t)(slash3 - key));
    if (!slash2) return SEG_EKEY;
    const char *part = slash2 + 1;
    size_t part_len = (size_t)(slash3 - part);
    int64_t pv;
    if (part_len == 0 || (part_len > 1 && part[0] == '0') || !parse_digits(part, part_len, INT32_MAX, &pv))
        return SEG_EKEY;
    o->partition = (int32_t)pv;
    /* topic, then the namespace is everything before it */
    const char *slash1 = memrchr(key, '/', (size_t)(slash2 - key));
    if (!slash1) return SEG_EKEY;
    o->topic = slash1 + 1;
    o->topic_len = (size_t)(slash2 - o->topic);
    o->ns = key;
    o->ns_len = (size_t)(slash1 - key);
    if (!topic_ok(o->topic, o->topic_len) || !ns_ok(o->ns, o->ns_len)) return SEG_EKEY;
    return SEG_OK;
}
