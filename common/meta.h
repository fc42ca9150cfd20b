/* meta.h - the metadata store interface: topics, partition states and the
 * committed segments of each partition.
 *
 * The embedded backend (meta_file.c, the single-node default) keeps two
 * append-only journals under <data_dir>/meta/: topics.journal, written only
 * by the broker, and segments.journal, written only by the flusher. One
 * writer per file means no locks; every record carries a CRC-32C, so a torn
 * tail left by a crash is recognised and ignored. Each writer compacts its
 * journal (snapshot to a temp file, fsync, rename) when it grew large.
 * A commit of a flush cycle is ONE record listing every segment of the cycle,
 * written with one fsync: the cycle is committed entirely or not at all.
 *
 * The etcd backend (meta_etcd.c), chosen by meta_open when
 * KAFSCALE_ETCD_ENDPOINTS is set, implements the same calls with etcd
 * transactions over this key layout (values are kafscale.metadata protobuf
 * messages, proto/kafscale/metadata.proto, unless said otherwise):
 *
 *   /kafscale/metadata/snapshot                  JSON, the authority for topics:
 *       {"version":1,"topics":[{"name":"t","id":"<32 hex>","partitions":12,
 *        "configs":{"retention.ms":"1000"}}]}   ("id", "configs" optional)
 *   /kafscale/topics/<topic>                     TopicConfig (informational copy)
 *   /kafscale/partitions/<topic>/<p>/leader      PartitionAssignment, under the
 *                                                leader's lease (broker/cluster.c)
 *   /kafscale/partitions/<topic>/<p>/state       PartitionState
 *   /kafscale/segments/<topic>/<p>/<base %020d>  SegmentInfo
 *   /kafscale/groups/<group>                     ConsumerGroup      (meta_groups.h)
 *   /kafscale/offsets/<group>/<topic>/<p>        CommittedOffset    (meta_groups.h)
 *
 * Key components are escaped (meta_key_escape): '/', '%' and bytes below
 * 0x21 become %XX, so a group id never adds a level; prefixes used for
 * ranges end in '/', so topic "t" never matches "t2".
 *
 * Fencing (etcd only): a commit, removal of segments or move of a log start
 * is a transaction comparing the mod revision of the partition's leader key
 * with the fence meta_set_fence recorded when this broker claimed it; a
 * broker that lost the partition (its lease expired, another claimed it)
 * cannot write its segments.
 */
#ifndef KAFSCALE_META_H
#define KAFSCALE_META_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

typedef struct meta meta_t;

typedef struct meta_topic {
    char name[250];
    uint8_t id[16];
    int32_t npartitions;
    /* topic configs explicitly set, as "name=value" pairs separated by '\n' */
    char configs[2048];
} meta_topic_t;

typedef struct meta_segment {
    char topic[250];
    uint8_t topic_id[16];  /* the topic's id: a same-name topic created later is another topic */
    int32_t partition;
    int32_t leader_epoch;
    int64_t base_offset, last_offset;
    int64_t size;          /* bytes of the .kfs object */
    int64_t max_timestamp; /* largest batch max timestamp in the segment */
    int64_t created_ms;
} meta_segment_t;

/* What replaying the journals found, handed out through callbacks. */
typedef struct meta_load_cb {
    void (*topic)(void *arg, const meta_topic_t *t);
    void (*segment)(void *arg, const meta_segment_t *s);
    /* log start offset moved (retention, DeleteRecords) */
    void (*log_start)(void *arg, const char *topic, int32_t partition, int64_t start_offset);
    void *arg;
} meta_load_cb_t;

/* writer: which journal this process writes ("topics" for the broker,
 * "segments" for the flusher, NULL for read-only). With
 * KAFSCALE_ETCD_ENDPOINTS set the etcd backend is used (data_dir unused; a
 * writer may then make every call, NULL still means read-only). */
meta_t *meta_open(const char *data_dir, const char *writer, char *err, size_t errsz);
void meta_close(meta_t *m);
bool meta_is_etcd(const meta_t *m);
/* etcd: the revision at which this handle last wrote the topic snapshot
 * (meta_put_topic / meta_delete_topic), 0 when it never did. A snapshot read
 * at an older revision does not show that write yet. */
int64_t meta_snapshot_revision(const meta_t *m);

/* Replays both journals in order; deleted topics and segments removed by
 * retention are not reported. Returns 0 or -1 (err set). */
int meta_load(meta_t *m, const meta_load_cb_t *cb, char *err, size_t errsz);

/* The freshest committed segments (ascending base offset) and log start
 * (cb->log_start, only when one was recorded) of one partition; cb->topic is
 * not called. For a broker taking over a partition. 0 or -1 (err set). */
int meta_load_partition(meta_t *m, const char *topic, int32_t partition, const meta_load_cb_t *cb, char *err,
                        size_t errsz);

/* broker (topics journal). etcd: a compare-and-swap of the snapshot (with
 * the TopicConfig copy, and for a deletion every /kafscale/partitions/<name>/
 * key), retried when another broker changed the snapshot in between. */
int meta_put_topic(meta_t *m, const meta_topic_t *t);
int meta_delete_topic(meta_t *m, const char *name);

/* flusher. The fence of a partition this broker leads: leader_rev is the
 * mod revision of its leader key at claim; 0 = not led (commits for it are
 * refused without asking etcd). Call again after every claim. The file
 * backend ignores fences. Any thread. */
void meta_set_fence(meta_t *m, const char *topic, int32_t partition, int64_t leader_rev);

/* One durable record (file) / one transaction (etcd) per call. fenced (may be
 * NULL) gets one byte per segment: 1 = refused because this broker no longer
 * leads the partition (its fence is stale or 0; the fence is then cleared),
 * 0 = committed. Returns 0 when every segment not fenced is committed, -1 on
 * an error (errno set; nothing committed - except that a call too large for
 * one etcd transaction (--max-txn-ops, 128) is split by partitions, and an
 * error in a later transaction leaves the earlier ones committed: re-committing
 * the same segments is harmless). */
int meta_commit_segments(meta_t *m, const meta_segment_t *segs, int n, uint8_t *fenced);
/* Drops segs (only base_offset is read) and moves the log start of the
 * partition to new_log_start (never backwards). etcd: fenced like a commit;
 * 0, -1 on an error, -2 when fenced (nothing changed). */
int meta_remove_segments(meta_t *m, const meta_segment_t *segs, int n, const char *topic, int32_t partition,
                         int64_t new_log_start);
/* Forgets every segment of a deleted topic (etcd: those whose topic id is
 * not the id of a topic of that name that exists now). 0 or -1. */
int meta_drop_topic_segments(meta_t *m, const char *topic);

/* ---- the topics snapshot (etcd) ---- */

/* Parses the JSON of /kafscale/metadata/snapshot (no I/O) and calls
 * cb->topic for every valid topic, in document order. A topic without "id"
 * (or with an all-zero one) gets meta_topic_id_from_name(name). Returns the
 * number of entries skipped as invalid (0: all good; err then describes the
 * first and how many), or -1 when the document itself is unusable (not
 * JSON, not an object, "topics" not an array, a version other than 1):
 * no callback was made. */
int meta_snapshot_parse(const char *json, size_t len, const meta_load_cb_t *cb, char *err, size_t errsz);

/* The id of a topic the snapshot names without one: the first 16 bytes of
 * SHA-256("kafscale-topic:" + name). */
void meta_topic_id_from_name(const char *name, uint8_t id[16]);

/* ---- etcd key layout (see the top of this file) ---- */
#define META_KEY_SNAPSHOT "/kafscale/metadata/snapshot"
#define META_KEY_MAX 1024

/* Escapes one key component ('/', '%' and bytes below 0x21 -> %XX, upper-case
 * hex). Returns the length written (out NUL-terminated), or -1 when it does
 * not fit in outsz. */
int meta_key_escape(const char *in, char *out, size_t outsz);
/* Reverses it over n bytes; -1 on a bad escape, a NUL byte, or no room. */
int meta_key_unescape(const char *in, size_t n, char *out, size_t outsz);
/* "/kafscale/partitions/<topic>/<partition>/<leaf>" (leaf "leader" or
 * "state"); the length, or -1 when it does not fit. */
int meta_key_partition(char *out, size_t outsz, const char *topic, int32_t partition, const char *leaf);

#endif
