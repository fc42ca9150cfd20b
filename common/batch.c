/* batch.c - record batch v2 header parsing and validation (see batch.h). */
#include "batch.h"
#include "crc32c.h"
#include "kbuf.h"

int batch_parse(const uint8_t *p, size_t n, batch_info_t *b) {
    if (n < 17) return BATCH_ETRUNC;
    b->base_offset = (int64_t)kbe64(p);
    int32_t blen = (int32_t)kbe32(p + 8);
    b->leader_epoch = (int32_t)kbe32(p + 12);
    b->magic = (int8_t)p[16];
    if (b->magic == 0 || b->magic == 1) return BATCH_EMAGIC;
    if (b->magic != 2) return BATCH_EBADMAGIC;
    if (blen < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD || blen > INT32_MAX - BATCH_LOG_OVERHEAD) return BATCH_ELENGTH;
    b->length = blen + BATCH_LOG_OVERHEAD;
    if (n < BATCH_HEADER_SIZE || (size_t)b->length > n) return BATCH_ETRUNC;
    b->crc = kbe32(p + 17);
    b->attributes = (int16_t)kbe16(p + 21);
    b->last_offset_delta = (int32_t)kbe32(p + 23);
    b->base_timestamp = (int64_t)kbe64(p + 27);
    b->max_timestamp = (int64_t)kbe64(p + 35);
    b->producer_id = (int64_t)kbe64(p + 43);
    b->producer_epoch = (int16_t)kbe16(p + 51);
    b->base_sequence = (int32_t)kbe32(p + 53);
    b->record_count = (int32_t)kbe32(p + 57);
    return BATCH_OK;
}

int batch_validate(const uint8_t *p, size_t n, batch_info_t *b) {
    int rc = batch_parse(p, n, b);
    if (rc) return rc;
    /* A producer's batch holds at least one record and its offset deltas run
     * 0..count-1 (Kafka refuses anything else, and a larger delta would let
     * one batch use up the partition's offsets). */
    if (b->record_count <= 0 || b->last_offset_delta != b->record_count - 1) return BATCH_ECOUNT;
    /* Each record takes at least 7 bytes on the wire (uncompressed) - only
     * check what cannot be wrong whatever the compression. */
    if (crc32c(0, p + 21, (size_t)b->length - 21) != b->crc) return BATCH_ECRC;
    return BATCH_OK;
}

const char *batch_strerror(int err) {
    switch (err) {
    case BATCH_OK: return "ok";
    case BATCH_ETRUNC: return "truncated record batch";
    case BATCH_EMAGIC: return "message format v0/v1 is not supported";
    case BATCH_EBADMAGIC: return "unknown record batch magic";
    case BATCH_ELENGTH: return "record batch length out of range";
    case BATCH_ECRC: return "record batch CRC-32C mismatch";
    case BATCH_ECOUNT: return "record count and last offset delta disagree";
    default: return "bad record batch";
    }
}

void batch_set_base_offset(uint8_t *p, int64_t base_offset) { kput64(p, (uint64_t)base_offset); }
