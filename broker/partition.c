/* partition.c - appending produced batches to a partition and advancing its
 * high watermark.
 *
 * partition_append() checks every batch of a Produce's records field (magic,
 * lengths, CRC-32C, size limit) before it appends any, assigns offsets by
 * rewriting each batch's base offset in place, and copies the batches into
 * the partition log. What happens next is the durability step: with no
 * flusher (this in-memory build) the batches count as committed at once and
 * partition_committed() moves the high watermark; with the flusher, its
 * durable(...) report calls it instead. */
#include "broker.h"
#include "cluster.h"
#include "batch.h"
#include "crc32c.h"
#include "metrics.h"

int16_t partition_append(partition_t *p, uint8_t *records, int32_t len, int64_t *base_out, int64_t *log_append_ms,
                         const char **errmsg) {
    *errmsg = NULL;
    *base_out = -1;
    *log_append_ms = -1;
    if (len <= 0) {
        *errmsg = "Produce request carries no record batch";
        return KERR_CORRUPT_MESSAGE;
    }
    if (!cluster_can_write(p)) {
        /* Cluster: another broker leads it, we are handing it over, or our
         * lease may have lapsed (paused past the TTL): clients look again. */
        *errmsg = "This broker is not the leader of the partition";
        return KERR_NOT_LEADER_OR_FOLLOWER;
    }
    if (g_broker.draining && !cluster_enabled()) {
        /* Drained (control API): clients look for another leader. */
        *errmsg = "This broker is drained and takes no writes";
        return KERR_NOT_LEADER_OR_FOLLOWER;
    }
    /* Pass 1: validate everything; nothing is appended unless all is good. */
    int32_t pos = 0;
    int nbatches = 0;
    int64_t nrecords = 0;
    while (pos < len) {
        batch_info_t b;
        int rc = batch_validate(records + pos, (size_t)(len - pos), &b);
        if (rc == BATCH_EMAGIC) {
            *errmsg = "Message format v0/v1 is not supported: use a client that writes record batches (magic 2)";
            return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
        }
        if (rc == BATCH_ECOUNT) {
            *errmsg = batch_strerror(rc);
            return KERR_INVALID_RECORD;
        }
        if (rc) {
            *errmsg = batch_strerror(rc);
            return KERR_CORRUPT_MESSAGE;
        }
        if (b.length > p->topic->config.max_message_bytes) {
            *errmsg = "Record batch is larger than max.message.bytes";
            return KERR_MESSAGE_TOO_LARGE;
        }
        if (b.attributes & BATCH_ATTR_TRANSACTIONAL) {
            *errmsg = "Transactional batches are not supported";
            return KERR_INVALID_REQUEST;
        }
        pos += b.length;
        nbatches++;
        nrecords += b.record_count;
    }
    bool log_append_time = p->topic->config.timestamp_type[0] == 'L';
    int64_t now = log_append_time ? now_ms() : -1;
    /* Pass 2: assign offsets and append. */
    pos = 0;
    while (pos < len) {
        batch_info_t b;
        uint8_t *bp = records + pos;
        batch_parse(bp, (size_t)(len - pos), &b);
        int64_t base = p->log.next_offset;
        int64_t last = base + b.last_offset_delta;
        batch_set_base_offset(bp, base);
        int64_t max_ts = b.max_timestamp;
        if (log_append_time) {
            /* LogAppendTime: the broker stamps the batch (and so redoes the CRC). */
            kput16(bp + 21, (uint16_t)(b.attributes | BATCH_ATTR_TIMESTAMP_LOG_APPEND));
            kput64(bp + 35, (uint64_t)now);
            kput32(bp + 17, crc32c(0, bp + 21, (size_t)b.length - 21));
            max_ts = now;
        }
        if (plog_append(&p->log, bp, (uint32_t)b.length, base, last, max_ts) != 0) {
            *errmsg = "Out of memory";
            return KERR_KAFKA_STORAGE_ERROR;
        }
        if (*base_out < 0) *base_out = base;
        p->unflushed_bytes += b.length;
        g_broker.unflushed_bytes += b.length;
        g_broker.mem_bytes += b.length;
        pos += b.length;
    }
    *log_append_ms = now;
    metrics_add(M_PRODUCE_BYTES, len, p->topic->name);
    metrics_add(M_PRODUCE_RECORDS, (double)nrecords, p->topic->name);
    (void)nbatches;
    return KERR_NONE;
}

/* Keeps durable data in memory within KAFSCALE_TAIL_BYTES: the oldest
 * durable batches of this partition go first, then other partitions'. */
static void trim_tail(partition_t *p) {
    g_broker.tail_bytes = g_broker.mem_bytes - g_broker.unflushed_bytes;
    int64_t excess = g_broker.tail_bytes - g_broker.cfg.tail_bytes;
    if (excess <= 0) return;
    int64_t freed = plog_trim_front(&p->log, p->log.hw, excess);
    for (topic_t *t = topics_first(); t && freed < excess; t = topics_next(t))
        for (int32_t i = 0; i < t->npartitions && freed < excess; i++)
            freed += plog_trim_front(&t->partitions[i].log, t->partitions[i].log.hw, excess - freed);
    g_broker.mem_bytes -= freed;
    g_broker.tail_bytes -= freed;
}

void partition_committed(partition_t *p, int64_t end_offset) {
    if (end_offset <= p->log.hw) return;
    int64_t became = plog_bytes_between(&p->log, p->log.hw, end_offset);
    p->unflushed_bytes -= became;
    g_broker.unflushed_bytes -= became;
    p->log.hw = end_offset;
    if (p->log.next_offset < end_offset) p->log.next_offset = end_offset;
    kreq_wake_parked();
    if (g_broker.unflushed_bytes < g_broker.cfg.max_unflushed_bytes) conn_unflushed_resume();
    trim_tail(p);
    cluster_on_committed(p);
}
