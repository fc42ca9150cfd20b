/* records.h - reads the records inside a Kafka record batch (magic 2).
 *
 * batch.h only looks at the 61-byte batch header. This module goes inside:
 * it decompresses the records section when the batch is compressed
 * (attributes & 7: none, gzip, snappy, lz4, zstd) and walks the records one
 * by one, giving each record's absolute offset (base offset + offset delta)
 * and timestamp (base timestamp + timestamp delta, or the batch's max
 * timestamp for LogAppendTime batches), with views of its key, value and
 * headers.
 *
 * Nothing here trusts the bytes: decompression writes into a caller-owned,
 * reusable workspace that never grows past a hard cap (64 MiB by default),
 * and every record field is read through the bounded kr_t readers. A
 * malformed batch ends the walk with an error code, never with a crash.
 *
 *   records_ws_t ws;  records_ws_init(&ws, 0);
 *   records_iter_t it;  krecord_t rec;
 *   if (records_iter_init(&it, p, len, &ws) == RECORDS_OK)
 *       while (records_next(&it, &rec) > 0) use(rec.offset, rec.timestamp);
 *   if (it.err) log it (records_strerror(it.err));
 *   records_ws_free(&ws);
 *
 * Lifetimes: a record's key/value/headers views point into the batch bytes
 * (uncompressed batches) or into the workspace (compressed ones); they stay
 * valid until the workspace is used for another batch or freed, and as long
 * as the batch bytes do. A workspace serves one iterator at a time and is not
 * thread-safe.
 */
#ifndef KAFSCALE_RECORDS_H
#define KAFSCALE_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "kbuf.h"

/* Default cap on the decompressed size of one batch's records. */
#define RECORDS_MAX_DECOMPRESSED ((size_t)64 << 20)
/* Upper bound for any cap asked of records_ws_init (zlib counts in 32 bits). */
#define RECORDS_MAX_DECOMPRESSED_LIMIT ((size_t)1 << 30)

/* Compression codecs (batch attributes & 7). */
enum { RECORDS_CODEC_NONE = 0, RECORDS_CODEC_GZIP, RECORDS_CODEC_SNAPPY, RECORDS_CODEC_LZ4, RECORDS_CODEC_ZSTD };

enum {
    RECORDS_OK = 0,
    RECORDS_EBATCH,   /* batch header truncated, not magic 2, or counts out of range */
    RECORDS_ECODEC,   /* compression codec 5..7 */
    RECORDS_ECORRUPT, /* compressed data is malformed or truncated */
    RECORDS_ETOOBIG,  /* records decompress to more than the workspace cap */
    RECORDS_ENOMEM,   /* out of memory (buffer or codec context) */
    RECORDS_ERECORD,  /* a record is malformed, or the records disagree with the header */
};
const char *records_strerror(int err);

/* Decompression workspace: a reusable output buffer (grown by doubling, never
 * past max) and the codec contexts, created on first use. Owned by the
 * caller; one per thread. */
typedef struct records_ws {
    uint8_t *buf;
    size_t cap;      /* bytes allocated in buf */
    size_t max;      /* hard cap on the decompressed records of one batch */
    void *zlib;      /* z_stream *, inflate state (gzip) */
    void *lz4;       /* LZ4F_dctx * */
    void *zstd;      /* ZSTD_DCtx * */
} records_ws_t;

/* max_decompressed 0 means RECORDS_MAX_DECOMPRESSED; larger than
 * RECORDS_MAX_DECOMPRESSED_LIMIT is clamped to it. Allocates nothing. */
void records_ws_init(records_ws_t *ws, size_t max_decompressed);
/* Frees the buffer and the codec contexts; the workspace can be reused after
 * records_ws_init. */
void records_ws_free(records_ws_t *ws);

/* One record. Views (len -1 = null) live as described at the top. */
typedef struct krecord {
    int64_t offset;       /* base offset + offset delta */
    int64_t timestamp;    /* base timestamp + delta, or max timestamp (LogAppendTime) */
    int32_t index;        /* 0-based position in the batch */
    int8_t attributes;    /* record attributes (unused by Kafka so far) */
    kbytes_t key, value;
    int32_t header_count;
    kbytes_t headers;     /* the raw, already validated headers: walk with records_header_next */
} krecord_t;

typedef struct records_iter {
    /* From the batch header. */
    int64_t base_offset;
    int32_t last_offset_delta;
    int64_t base_timestamp, max_timestamp;
    int16_t attributes;
    int32_t count;        /* records the header announces */
    /* Walk state. */
    int32_t index;        /* records returned so far */
    kr_t r;               /* over the (decompressed) records */
    int err;              /* RECORDS_OK, or why the walk stopped early */
} records_iter_t;

/* Starts a walk over the batch at p (len bytes available; the batch length in
 * its header decides how many are used). Decompresses into ws when the batch
 * is compressed; ws may be NULL for batches known to be uncompressed (a
 * compressed one then fails with RECORDS_ECODEC). Does not check the CRC
 * (batch_validate does). Returns RECORDS_OK or an error (also in it->err). */
int records_iter_init(records_iter_t *it, const uint8_t *p, size_t len, records_ws_t *ws);
/* Next record: 1 and *rec filled; 0 at the end of a well-formed batch; -1 on
 * a malformed record or trailing bytes after the last one (it->err says why;
 * the walk stays stopped). */
int records_next(records_iter_t *it, krecord_t *rec);
/* Walks a record's headers: r starts as kr_init(rec.headers.p, rec.headers.len).
 * Returns false after the last header. Header values may be null (len -1). */
bool records_header_next(kr_t *r, kstr_t *key, kbytes_t *value);

/* Gives back the output buffer if it grew past `keep` bytes (after an odd
 * large batch), keeping the codec contexts. */
void records_ws_trim(records_ws_t *ws, size_t keep);

/* Decompresses the records section of a batch (the bytes after the 61-byte
 * header) with the given codec into ws->buf; *out and *out_len give the result
 * (for RECORDS_CODEC_NONE, the input itself). Exposed for tests and tools. */
int records_decompress(records_ws_t *ws, int codec, const uint8_t *in, size_t in_len, const uint8_t **out,
                       size_t *out_len);

#endif
