/* plog_time.c - timestamp lookups in a partition log (ListOffsets by time and
 * max timestamp). Placeholder at batch granularity; being replaced by a
 * record-exact version. */
#include "broker.h"

int64_t plog_offset_for_time(plog_t *l, int64_t ts, int64_t *ts_out) {
    for (size_t i = 0; i < l->count; i++) {
        pbatch_t *b = &l->batches[(l->head + i) % l->cap];
        if (b->base_offset >= l->hw) break;
        if (b->max_timestamp >= ts) {
            *ts_out = b->max_timestamp;
            return b->base_offset < l->start_offset ? l->start_offset : b->base_offset;
        }
    }
    *ts_out = -1;
    return -1;
}

int64_t plog_max_timestamp(plog_t *l, int64_t *ts_out) {
    int64_t best = -1, off = -1;
    for (size_t i = 0; i < l->count; i++) {
        pbatch_t *b = &l->batches[(l->head + i) % l->cap];
        if (b->base_offset >= l->hw) break;
        if (b->max_timestamp > best) { best = b->max_timestamp; off = b->last_offset; }
    }
    *ts_out = best;
    return off;
}
