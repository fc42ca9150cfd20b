/* records.c - decompression and record walking inside a record batch v2
 * (see records.h).
 *
 * Record layout (all varints zig-zag):
 *   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
 *   | keyLength varint | key | valueLength varint | value
 *   | headerCount varint | [headerKeyLength varint | headerKey | headerValueLength varint | value]
 * Every record must use exactly its declared length, the record count in the
 * header must match, and nothing may follow the last record: the same checks
 * Kafka's DefaultRecord/DefaultRecordBatch readers make.
 *
 * Codecs: gzip (zlib, also accepts a zlib header and concatenated gzip
 * members), snappy (xerial snappy-java framing as written by the Java client
 * and librdkafka, or one raw snappy block), lz4 (LZ4 frame format, one or more
 * frames), zstd (one or more frames, streaming). Output goes into the
 * workspace buffer, which doubles as needed up to ws->max and no further.
 * The codec libraries allocate bounded state of their own: zlib's 32 KiB
 * window, lz4's per-frame block buffer (<= 4 MiB by the frame format), zstd's
 * window (<= 128 MiB, zstd's default ZSTD_d_windowLogMax of 27).
 */
#include "records.h"
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

const char *records_strerror(int err) {
    switch (err) {
    case RECORDS_OK: return "ok";
    case RECORDS_EBATCH: return "bad record batch header";
    case RECORDS_ECODEC: return "unknown compression codec";
    case RECORDS_ECORRUPT: return "corrupt compressed records";
    case RECORDS_ETOOBIG: return "records decompress beyond the size cap";
    case RECORDS_ENOMEM: return "out of memory decompressing records";
    case RECORDS_ERECORD: return "malformed record";
    default: return "bad records";
    }
}

void records_ws_init(records_ws_t *ws, size_t max_decompressed) {
    memset(ws, 0, sizeof *ws);
    if (max_decompressed == 0) max_decompressed = RECORDS_MAX_DECOMPRESSED;
    if (max_decompressed > RECORDS_MAX_DECOMPRESSED_LIMIT) max_decompressed = RECORDS_MAX_DECOMPRESSED_LIMIT;
    ws->max = max_decompressed;
}

void records_ws_free(records_ws_t *ws) {
    free(ws->buf);
    if (ws->zlib) {
        inflateEnd(ws->zlib);
        free(ws->zlib);
    }
    if (ws->lz4) LZ4F_freeDecompressionContext(ws->lz4);
    if (ws->zstd) ZSTD_freeDCtx(ws->zstd);
    memset(ws, 0, sizeof *ws);
}

void records_ws_trim(records_ws_t *ws, size_t keep) {
    if (ws->cap <= keep) return;
    free(ws->buf);
    ws->buf = NULL;
    ws->cap = 0;
}

/* Makes room for at least `need` bytes (doubling, capped at ws->max). */
static int ws_reserve(records_ws_t *ws, size_t need) {
    if (need > ws->max) return RECORDS_ETOOBIG;
    if (need <= ws->cap) return RECORDS_OK;
    size_t cap = ws->cap ? ws->cap : 64 * 1024;
    while (cap < need) cap *= 2;
    if (cap > ws->max) cap = ws->max;
    uint8_t *b = realloc(ws->buf, cap);
    if (!b) return RECORDS_ENOMEM;
    ws->buf = b;
    ws->cap = cap;
    return RECORDS_OK;
}

/* The output is full at `used` bytes: doubles the buffer, or says why not. */
static int ws_grow(records_ws_t *ws, size_t used) {
    if (used >= ws->max) return RECORDS_ETOOBIG;
    size_t want = used < 32 * 1024 ? 64 * 1024 : used * 2;
    return ws_reserve(ws, want > ws->max ? ws->max : want);
}

/* First guess at the output size: compressed records shrink 2-5x typically. */
static int ws_start(records_ws_t *ws, size_t in_len) {
    size_t want = in_len > ws->max / 4 ? ws->max : in_len * 4;
    if (want < 64 * 1024) want = 64 * 1024;
    return ws_reserve(ws, want > ws->max ? ws->max : want);
}

static const uint8_t GZIP_MAGIC[2] = {0x1f, 0x8b};

static int inflate_gzip(records_ws_t *ws, const uint8_t *in, size_t in_len, size_t *out_len) {
    z_stream *zs = ws->zlib;
    if (!zs) {
        zs = calloc(1, sizeof *zs);
        if (!zs) return RECORDS_ENOMEM;
        /* 15 + 32: a 32 KiB window, gzip or zlib header detected. */
        if (inflateInit2(zs, 15 + 32) != Z_OK) {
            free(zs);
            return RECORDS_ENOMEM;
        }
        ws->zlib = zs;
    } else if (inflateReset(zs) != Z_OK) {
        return RECORDS_ECORRUPT;
    }
    if (in_len == 0) return RECORDS_ECORRUPT;
    int rc = ws_start(ws, in_len);
    if (rc) return rc;
    size_t out = 0;
    uint8_t spare;
    zs->next_in = (Bytef *)(uintptr_t)in; /* zlib's API is not const */
    zs->avail_in = (uInt)in_len;
    for (;;) {
        if (out == ws->cap && (rc = ws_grow(ws, out)) && rc != RECORDS_ETOOBIG) return rc;
        /* Full at the cap: offer one spare byte, to tell "the stream ends
         * here" from "there is more". */
        bool at_cap = out == ws->cap;
        zs->next_out = at_cap ? &spare : ws->buf + out;
        zs->avail_out = at_cap ? 1 : (uInt)(ws->cap - out);
        int zrc = inflate(zs, Z_NO_FLUSH);
        if (at_cap && zs->avail_out == 0) return RECORDS_ETOOBIG;
        if (!at_cap) out = ws->cap - zs->avail_out;
        if (zrc == Z_STREAM_END) {
            /* Another gzip member follows (Java's GZIPInputStream reads on);
             * anything else after the stream is ignored, as there. */
            if (zs->avail_in >= 2 && memcmp(zs->next_in, GZIP_MAGIC, 2) == 0) {
                if (inflateReset(zs) != Z_OK) return RECORDS_ECORRUPT;
                continue;
            }
            break;
        }
        if (zrc == Z_OK) continue;
        /* Z_BUF_ERROR with output room left: the input ended mid-stream. */
        if (zrc == Z_BUF_ERROR && zs->avail_out == 0) continue;
        return zrc == Z_MEM_ERROR ? RECORDS_ENOMEM : RECORDS_ECORRUPT;
    }
    *out_len = out;
    return RECORDS_OK;
}

/* One raw snappy block appended at *out. */
static int snappy_block(records_ws_t *ws, const uint8_t *in, size_t n, size_t *out) {
    size_t ulen;
    if (snappy_uncompressed_length((const char *)in, n, &ulen) != SNAPPY_OK) return RECORDS_ECORRUPT;
    if (ulen > ws->max - *out) return RECORDS_ETOOBIG;
    int rc = ws_reserve(ws, *out + ulen);
    if (rc) return rc;
    size_t got = ulen;
    if (snappy_uncompress((const char *)in, n, (char *)ws->buf + *out, &got) != SNAPPY_OK || got != ulen)
        return RECORDS_ECORRUPT;
    *out += ulen;
    return RECORDS_OK;
}

/* xerial snappy-java framing: magic, version and compatible version (i32 BE
 * each), then blocks of [u32 BE length][raw snappy]. */
static const uint8_t XERIAL_MAGIC[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16

static int uncompress_snappy(records_ws_t *ws, const uint8_t *in, size_t in_len, size_t *out_len) {
    size_t out = 0;
    int rc;
    if (in_len >= XERIAL_HEADER_SIZE && memcmp(in, XERIAL_MAGIC, sizeof XERIAL_MAGIC) == 0) {
        kr_t r = kr_init(in + XERIAL_HEADER_SIZE, in_len - XERIAL_HEADER_SIZE);
        while (kr_left(&r) > 0) {
            uint32_t n = kr_u32(&r);
            const uint8_t *blk = kr_take(&r, n);
            if (r.err) return RECORDS_ECORRUPT;
            if ((rc = snappy_block(ws, blk, n, &out))) return rc;
        }
        if (r.err) return RECORDS_ECORRUPT;
    } else if ((rc = snappy_block(ws, in, in_len, &out))) {
        return rc;
    }
    *out_len = out;
    return RECORDS_OK;
}

static int decompress_lz4(records_ws_t *ws, const uint8_t *in, size_t in_len, size_t *out_len) {
    if (!ws->lz4) {
        LZ4F_dctx *d;
        if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) return RECORDS_ENOMEM;
        ws->lz4 = d;
    }
    LZ4F_dctx *d = ws->lz4;
    LZ4F_resetDecompressionContext(d);
    if (in_len == 0) return RECORDS_ECORRUPT;
    int rc = ws_start(ws, in_len);
    if (rc) return rc;
    size_t in_pos = 0, out = 0;
    uint8_t spare;
    for (;;) {
        if (out == ws->cap && (rc = ws_grow(ws, out)) && rc != RECORDS_ETOOBIG) goto fail;
        bool at_cap = out == ws->cap; /* then offer one spare byte, as for gzip */
        size_t dn = at_cap ? 1 : ws->cap - out, sn = in_len - in_pos;
        size_t hint = LZ4F_decompress(d, at_cap ? &spare : ws->buf + out, &dn, in + in_pos, &sn, NULL);
        if (LZ4F_isError(hint)) {
            rc = RECORDS_ECORRUPT;
            goto fail;
        }
        if (at_cap && dn) {
            rc = RECORDS_ETOOBIG;
            goto fail;
        }
        in_pos += sn;
        out += dn;
        /* 0: a frame ended and was flushed; more input is a further frame. */
        if (hint == 0 && in_pos == in_len) break;
        if (sn == 0 && dn == 0) { /* input ended mid-frame */
            rc = RECORDS_ECORRUPT;
            goto fail;
        }
    }
    *out_len = out;
    return RECORDS_OK;
fail:
    LZ4F_resetDecompressionContext(d);
    return rc;
}

static int decompress_zstd(records_ws_t *ws, const uint8_t *in, size_t in_len, size_t *out_len) {
    if (!ws->zstd) {
        ws->zstd = ZSTD_createDCtx();
        if (!ws->zstd) return RECORDS_ENOMEM;
    }
    ZSTD_DCtx *d = ws->zstd;
    ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
    if (in_len == 0) return RECORDS_ECORRUPT;
    int rc = ws_start(ws, in_len);
    if (rc) return rc;
    ZSTD_inBuffer ib = {in, in_len, 0};
    size_t out = 0;
    uint8_t spare;
    for (;;) {
        if (out == ws->cap && (rc = ws_grow(ws, out)) && rc != RECORDS_ETOOBIG) goto fail;
        bool at_cap = out == ws->cap; /* then offer one spare byte, as for gzip */
        ZSTD_outBuffer ob = at_cap ? (ZSTD_outBuffer){&spare, 1, 0} : (ZSTD_outBuffer){ws->buf, ws->cap, out};
        size_t in_before = ib.pos;
        size_t zrc = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(zrc)) {
            rc = ZSTD_getErrorCode(zrc) == ZSTD_error_memory_allocation ? RECORDS_ENOMEM : RECORDS_ECORRUPT;
            goto fail;
        }
        if (at_cap && ob.pos) {
            rc = RECORDS_ETOOBIG;
            goto fail;
        }
        bool progress = (!at_cap && ob.pos != out) || ib.pos != in_before;
        if (!at_cap) out = ob.pos;
        /* 0: a frame ended and was flushed; more input is a further frame. */
        if (zrc == 0 && ib.pos == ib.size) break;
        if (!progress) { /* input ended mid-frame */
            rc = RECORDS_ECORRUPT;
            goto fail;
        }
    }
    *out_len = out;
    return RECORDS_OK;
fail:
    ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
    return rc;
}

int records_decompress(records_ws_t *ws, int codec, const uint8_t *in, size_t in_len, const uint8_t **out,
                       size_t *out_len) {
    if (codec == RECORDS_CODEC_NONE) {
        *out = in;
        *out_len = in_len;
        return RECORDS_OK;
    }
    if (!ws || codec > RECORDS_CODEC_ZSTD || codec < 0) return RECORDS_ECODEC;
    size_t n = 0;
    int rc;
    switch (codec) {
    case RECORDS_CODEC_GZIP: rc = inflate_gzip(ws, in, in_len, &n); break;
    case RECORDS_CODEC_SNAPPY: rc = uncompress_snappy(ws, in, in_len, &n); break;
    case RECORDS_CODEC_LZ4: rc = decompress_lz4(ws, in, in_len, &n); break;
    default: rc = decompress_zstd(ws, in, in_len, &n); break;
    }
    if (rc) return rc;
    *out = ws->buf;
    *out_len = n;
    return RECORDS_OK;
}

int records_iter_init(records_iter_t *it, const uint8_t *p, size_t len, records_ws_t *ws) {
    memset(it, 0, sizeof *it);
    batch_info_t b;
    if (batch_parse(p, len, &b) != BATCH_OK || b.record_count < 0 || b.last_offset_delta < 0) {
        it->err = RECORDS_EBATCH;
        return it->err;
    }
    it->base_offset = b.base_offset;
    it->last_offset_delta = b.last_offset_delta;
    it->base_timestamp = b.base_timestamp;
    it->max_timestamp = b.max_timestamp;
    it->attributes = b.attributes;
    it->count = b.record_count;
    const uint8_t *recs;
    size_t n;
    int rc = records_decompress(ws, b.attributes & BATCH_ATTR_COMPRESSION_MASK, p + BATCH_HEADER_SIZE,
                                (size_t)b.length - BATCH_HEADER_SIZE, &recs, &n);
    if (rc) {
        it->err = rc;
        return rc;
    }
    it->r = kr_init(recs, n);
    return RECORDS_OK;
}

/* Reads a varint length that may be -1 (null) and the bytes it announces. */
static kbytes_t read_bytes(kr_t *r) {
    int32_t n = kr_varint32(r);
    if (r->err) return (kbytes_t){NULL, -1};
    if (n < -1) {
        kr_fail(r, KR_EINVAL);
        return (kbytes_t){NULL, -1};
    }
    if (n == -1) return (kbytes_t){NULL, -1};
    const uint8_t *b = kr_take(r, (size_t)n);
    return b ? (kbytes_t){b, n} : (kbytes_t){NULL, -1};
}

bool records_header_next(kr_t *r, kstr_t *key, kbytes_t *value) {
    if (kr_left(r) == 0) return false;
    kbytes_t k = read_bytes(r);
    kbytes_t v = read_bytes(r);
    if (r->err || k.len < 0) {
        kr_fail(r, KR_EINVAL);
        return false;
    }
    *key = (kstr_t){(const char *)k.p, k.len};
    *value = v;
    return true;
}

static int fail(records_iter_t *it, int err) {
    it->err = err;
    return -1;
}

int records_next(records_iter_t *it, krecord_t *rec) {
    if (it->err) return -1;
    kr_t *r = &it->r;
    if (it->index >= it->count) {
        /* Bytes after the last announced record: the header lies. */
        return kr_left(r) ? fail(it, RECORDS_ERECORD) : 0;
    }
    int32_t len = kr_varint32(r);
    if (r->err || len < 0) return fail(it, RECORDS_ERECORD);
    const uint8_t *body = kr_take(r, (size_t)len);
    if (!body) return fail(it, RECORDS_ERECORD);
    kr_t rr = kr_init(body, (size_t)len);
    rec->attributes = kr_i8(&rr);
    int64_t ts_delta = kr_varint(&rr);
    int32_t off_delta = kr_varint32(&rr);
    rec->key = read_bytes(&rr);
    rec->value = read_bytes(&rr);
    int32_t nh = kr_varint32(&rr);
    /* A header takes at least two bytes (two one-byte lengths). */
    if (rr.err || nh < 0 || (size_t)nh > kr_left(&rr) / 2) return fail(it, RECORDS_ERECORD);
    const uint8_t *h0 = rr.p;
    for (int32_t i = 0; i < nh; i++) {
        kbytes_t k = read_bytes(&rr);
        read_bytes(&rr);
        if (k.len < 0) kr_fail(&rr, KR_EINVAL); /* header keys are never null */
    }
    if (rr.err || kr_left(&rr) != 0) return fail(it, RECORDS_ERECORD);
    if (off_delta < 0 || off_delta > it->last_offset_delta) return fail(it, RECORDS_ERECORD);
    rec->header_count = nh;
    rec->headers = (kbytes_t){h0, (int32_t)(rr.p - h0)};
    rec->index = it->index++;
    rec->offset = (int64_t)((uint64_t)it->base_offset + (uint64_t)off_delta);
    if (it->attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND)
        rec->timestamp = it->max_timestamp;
    else /* wraps instead of overflowing on nonsense deltas */
        rec->timestamp = (int64_t)((uint64_t)it->base_timestamp + (uint64_t)ts_delta);
    return 1;
}
