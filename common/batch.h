/* batch.h - Kafka record batch (magic 2) headers: parse, validate, rewrite offsets.
 *
 * Batches are moved as opaque bytes: only the 61-byte header is read; records
 * are never decoded, compressed batches are never decompressed. */
#ifndef KAFSCALE_BATCH_H
#define KAFSCALE_BATCH_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define BATCH_HEADER_SIZE 61
#define BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */

typedef struct batch_info {
    int64_t base_offset;
    int32_t length;          /* whole batch size in bytes, header included */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
} batch_info_t;

enum {
    BATCH_OK = 0,
    BATCH_ETRUNC,     /* fewer bytes than the header or the batch length says */
    BATCH_EMAGIC,     /* magic 0 or 1 (old message format) */
    BATCH_EBADMAGIC,  /* any other unknown magic */
    BATCH_ELENGTH,    /* batch length out of range */
    BATCH_ECRC,       /* CRC-32C mismatch */
    BATCH_ECOUNT,     /* record count/last offset delta inconsistent */
};

#define BATCH_ATTR_COMPRESSION_MASK 0x07
#define BATCH_ATTR_TIMESTAMP_LOG_APPEND 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

/* Reads the header of the batch at p (n bytes available). Does not check CRC. */
int batch_parse(const uint8_t *p, size_t n, batch_info_t *out);
/* Parses and checks CRC and counts. */
int batch_validate(const uint8_t *p, size_t n, batch_info_t *out);
const char *batch_strerror(int err);
/* Rewrites the base offset in place (the CRC does not cover it). */
void batch_set_base_offset(uint8_t *p, int64_t base_offset);
/* Sets max timestamp and the log-append-time flag is NOT changed (CRC covers it). */
#endif
