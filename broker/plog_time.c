/* plog_time.c - timestamp lookups in a partition log, record-exact as Kafka
 * answers them (ListOffsets by time and MAX_TIMESTAMP).
 *
 *   by time ts     the first record, in offset order, whose timestamp >= ts
 *   MAX_TIMESTAMP  the record with the largest timestamp (the first of them
 *                  on ties)
 *
 * Only records consumers may see count: offsets in [start_offset, hw).
 * A LogAppendTime batch gives every record its max timestamp (records.c).
 *
 * Batch headers carry the batch's max timestamp, so the search runs over the
 * batch descriptors and decodes only batches that can hold the answer: a
 * batch whose max timestamp is below ts cannot, nor can one whose max
 * timestamp is below the largest timestamp already found. Decoding (and
 * decompressing) uses one static workspace, kept between lookups; lookups run
 * on the event-loop thread only (asserted).
 *
 * The log stores batches after checking only their header and CRC, so a
 * batch's records may fail to decode; such a batch answers at batch
 * granularity (its first visible offset and its max timestamp), as the
 * header alone allows, and is logged.
 */
#include "broker.h"
#include "records.h"

#include <pthread.h>

/* Decompressed records of an unusually large batch are let go after the
 * lookup rather than kept for the process's lifetime. */
#define WS_KEEP_BYTES ((size_t)4 << 20)

static records_ws_t ws;
static bool ws_ready;
static pthread_t ws_thread;

static records_ws_t *workspace(void) {
    if (!ws_ready) {
        records_ws_init(&ws, 0);
        ws_thread = pthread_self();
        ws_ready = true;
    }
    KS_ASSERT(pthread_equal(ws_thread, pthread_self()));
    return &ws;
}

static inline const pbatch_t *batch_at(const plog_t *l, size_t i) { return &l->batches[(l->head + i) % l->cap]; }

static inline bool visible(const plog_t *l, int64_t offset) { return offset >= l->start_offset && offset < l->hw; }

static void undecodable(const pbatch_t *b, int err) {
    static uint64_t n;
    if (n++ % 1000 == 0)
        log_warn("timestamp lookup: batch at offset %lld (%u bytes) cannot be decoded (%s); answering at batch "
                 "granularity (%llu such so far)",
                 (long long)b->base_offset, b->len, records_strerror(err), (unsigned long long)n);
}

/* The batch-granularity answer for an undecodable batch: its first visible
 * offset at or after `from`, with the batch's max timestamp; -1 if none. */
static int64_t batch_answer(const plog_t *l, const pbatch_t *b, int64_t from, int64_t *ts_out) {
    int64_t off = from > l->start_offset ? from : l->start_offset;
    if (off > b->last_offset || off >= l->hw) return -1;
    *ts_out = b->max_timestamp;
    return off;
}

/* In batch b, the first visible record with timestamp >= ts: its offset (and
 * timestamp in *ts_out), or -1 when it has none. */
static int64_t batch_first_at_or_after(const plog_t *l, const pbatch_t *b, int64_t ts, int64_t *ts_out) {
    records_ws_t *w = workspace();
    records_iter_t it;
    krecord_t r;
    int64_t next = b->base_offset; /* first offset not yet ruled out */
    int rc = records_iter_init(&it, b->chunk->data + b->pos, b->len, w);
    if (rc == RECORDS_OK) {
        while ((rc = records_next(&it, &r)) > 0) {
            if (!visible(l, r.offset)) continue;
            if (r.timestamp >= ts) {
                *ts_out = r.timestamp;
                return r.offset;
            }
            next = r.offset + 1;
        }
        if (rc == 0) return -1;
    }
    undecodable(b, it.err);
    return batch_answer(l, b, next, ts_out);
}

int64_t plog_offset_for_time(plog_t *l, int64_t ts, int64_t *ts_out) {
    int64_t off = -1;
    *ts_out = -1;
    for (size_t i = 0; i < l->count && off < 0; i++) {
        const pbatch_t *b = batch_at(l, i);
        if (b->base_offset >= l->hw) break;
        if (b->last_offset < l->start_offset || b->max_timestamp < ts) continue;
        off = batch_first_at_or_after(l, b, ts, ts_out);
    }
    records_ws_trim(&ws, WS_KEEP_BYTES);
    if (off < 0) *ts_out = -1;
    return off;
}

/* In batch b, the first visible record holding the batch's largest visible
 * timestamp (timestamps below 0 do not count): its offset and *ts_out, or
 * -1 when it has none. */
static int64_t batch_max(const plog_t *l, const pbatch_t *b, int64_t *ts_out) {
    records_ws_t *w = workspace();
    records_iter_t it;
    krecord_t r;
    int64_t best = -1, best_ts = -1;
    int rc = records_iter_init(&it, b->chunk->data + b->pos, b->len, w);
    if (rc == RECORDS_OK) {
        while ((rc = records_next(&it, &r)) > 0) {
            if (visible(l, r.offset) && r.timestamp > best_ts) {
                best_ts = r.timestamp;
                best = r.offset;
            }
        }
        if (rc == 0) {
            *ts_out = best_ts;
            return best;
        }
    }
    undecodable(b, it.err);
    return batch_answer(l, b, b->base_offset, ts_out);
}

/* MAX_TIMESTAMP's order over (timestamp, batch index): a larger timestamp
 * first, then the earlier batch. */
static inline bool ahead(int64_t ts_a, size_t ia, int64_t ts_b, size_t ib) {
    return ts_a > ts_b || (ts_a == ts_b && ia < ib);
}

/* Batches are taken in that order by their header max timestamp (an upper
 * bound of what their visible records hold), each decoded for its exact
 * answer, until no batch left can beat the best found: normally one decode,
 * more only when a batch straddles start_offset or the high watermark, or
 * its header overstates its records. */
int64_t plog_max_timestamp(plog_t *l, int64_t *ts_out) {
    int64_t best_off = -1, best_ts = -1;
    size_t best_i = 0;          /* with best_ts -1: only timestamps >= 0 can beat it */
    bool any_done = false;      /* batches up to (done_ts, done_i) in the order are decoded */
    int64_t done_ts = 0;
    size_t done_i = 0;
    for (;;) {
        size_t pick = SIZE_MAX;
        int64_t pick_ts = 0;
        for (size_t i = 0; i < l->count; i++) {
            const pbatch_t *b = batch_at(l, i);
            if (b->base_offset >= l->hw) break;
            if (b->last_offset < l->start_offset) continue;
            int64_t ub = b->max_timestamp;
            if (any_done && !ahead(done_ts, done_i, ub, i)) continue; /* decoded already */
            if (!ahead(ub, i, best_ts, best_i)) continue;             /* cannot beat the best */
            if (pick == SIZE_MAX || ahead(ub, i, pick_ts, pick)) {
                pick = i;
                pick_ts = ub;
            }
        }
        if (pick == SIZE_MAX) break;
        int64_t ts = -1, off = batch_max(l, batch_at(l, pick), &ts);
        if (off >= 0 && ahead(ts, pick, best_ts, best_i)) {
            best_off = off;
            best_ts = ts;
            best_i = pick;
        }
        any_done = true;
        done_ts = pick_ts;
        done_i = pick;
        if (best_off >= 0 && best_i == pick && best_ts >= pick_ts) break; /* reached its upper bound */
    }
    records_ws_trim(&ws, WS_KEEP_BYTES);
    *ts_out = best_off >= 0 ? best_ts : -1;
    return best_off;
}
