/* meta_pb.h - the protobuf encodings (kafscale.metadata.*, see
 * proto/kafscale/metadata.proto) of the metadata structs of meta.h, so that
 * the etcd backend of meta.h stores its values as protobuf:
 *
 *   meta_topic_t   <-> TopicConfig  (configs "name=value\n..." <-> the config
 *                                    map, plus the typed copies of
 *                                    retention.ms / retention.bytes /
 *                                    segment.bytes)
 *   meta_segment_t <-> SegmentInfo
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

uint8_t *meta_pb_topic_encode(const meta_topic_t *t, size_t *len);
int meta_pb_topic_decode(const uint8_t *buf, size_t len, meta_topic_t *out, char *err, size_t errsz);

uint8_t *meta_pb_segment_encode(const meta_segment_t *s, size_t *len);
int meta_pb_segment_decode(const uint8_t *buf, size_t len, meta_segment_t *out, char *err, size_t errsz);

#endif
