/* meta_pb.h - the protobuf encodings (kafscale.metadata.*, see
 * proto/kafscale/metadata.proto) of the metadata structs of meta.h, so that
 * the etcd backend of meta.h stores its values as protobuf:
 *
 *   meta_topic_t   <-> TopicConfig  (configs "name=value\n..." <-> the config
 *                                    map, plus the typed copies of
 *                                    retention.ms / retention.bytes /
 *                                    segment.bytes)
 *   meta_segment_t <-> SegmentInfo
 *   meta_pstate_t  <-> PartitionState (and a read-modify-write of its log
 *                                      start that keeps every other field)
 *   mg_group_t     <-> ConsumerGroup  (meta_groups.h)
 *   mg_offset_t    <-> CommittedOffset
 *
 * Encoders return a malloc'd buffer (the caller frees it) or NULL when out
 * of memory; they assert that the struct is well-formed (a NUL-terminated
 * name, npartitions >= 1): an invalid struct is a bug of the caller.
 * Decoders never trust the bytes (they come from etcd, which anyone with
 * access can write): every field is checked against the struct's limits
 * and the rules of meta.h (valid topic name, 16-byte or absent topic id,
 * partitions in 1..100000, offsets ordered, configs that fit), and a bad
 * value returns -1 with a message in err, leaving *out zeroed. Unknown
 * fields (written by a newer version) are ignored.
 */
#ifndef KAFSCALE_META_PB_H
#define KAFSCALE_META_PB_H

#include <stddef.h>
#include <stdint.h>

#include "meta.h"
#include "meta_groups.h"

uint8_t *meta_pb_topic_encode(const meta_topic_t *t, size_t *len);
int meta_pb_topic_decode(const uint8_t *buf, size_t len, meta_topic_t *out, char *err, size_t errsz);

uint8_t *meta_pb_segment_encode(const meta_segment_t *s, size_t *len);
int meta_pb_segment_decode(const uint8_t *buf, size_t len, meta_segment_t *out, char *err, size_t errsz);

/* PartitionState, /kafscale/partitions/<topic>/<p>/state. */
typedef struct meta_pstate {
    char topic[250];   /* "" when the value does not name it */
    int32_t partition;
    int32_t leader_epoch;
    int32_t leader_id; /* -1: none */
    int64_t log_start_offset, log_end_offset, high_watermark;
    uint8_t topic_id[16];
} meta_pstate_t;
uint8_t *meta_pb_state_encode(const meta_pstate_t *s, size_t *len);
int meta_pb_state_decode(const uint8_t *buf, size_t len, meta_pstate_t *out, char *err, size_t errsz);
/* The state old (NULL / 0 bytes: none yet; then leader_epoch 0, leader_id
 * -1) with log_start_offset raised to log_start (never lowered) and topic /
 * partition filled in when empty; every other field, unknown ones included,
 * kept byte for byte. NULL with err set when old does not decode or names
 * another partition (or out of memory). */
uint8_t *meta_pb_state_with_log_start(const uint8_t *old, size_t old_len, const char *topic, int32_t partition,
                                      int64_t log_start, size_t *len, char *err, size_t errsz);

/* ConsumerGroup and CommittedOffset. Decoders fill views whose strings and
 * bytes live in *keep until meta_pb_release(*keep) (also on failure: *keep
 * is then NULL). "" protocol_type / protocol / leader / instance_id decode as
 * NULL; offset metadata keeps NULL, "" and any bytes (metadata_bytes). */
uint8_t *meta_pb_group_encode(const mg_group_t *g, size_t *len);
int meta_pb_group_decode(const uint8_t *buf, size_t len, mg_group_t *out, void **keep, char *err, size_t errsz);
uint8_t *meta_pb_offset_encode(const char *group_id, const mg_offset_t *o, size_t *len);
/* *group_id: the group the value names ("" when it does not). */
int meta_pb_offset_decode(const uint8_t *buf, size_t len, mg_offset_t *out, const char **group_id, void **keep,
                          char *err, size_t errsz);
void meta_pb_release(void *keep);

#endif
