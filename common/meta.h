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
 * The etcd backend (later) implements the same calls with etcd transactions.
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
 * "segments" for the flusher, NULL for read-only). */
meta_t *meta_open(const char *data_dir, const char *writer, char *err, size_t errsz);
void meta_close(meta_t *m);

/* Replays both journals in order; deleted topics and segments removed by
 * retention are not reported. Returns 0 or -1 (err set). */
int meta_load(meta_t *m, const meta_load_cb_t *cb, char *err, size_t errsz);

/* broker (topics journal) */
int meta_put_topic(meta_t *m, const meta_topic_t *t);
int meta_delete_topic(meta_t *m, const char *name);

/* flusher (segments journal): one durable record per call */
int meta_commit_segments(meta_t *m, const meta_segment_t *segs, int n);
int meta_remove_segments(meta_t *m, const meta_segment_t *segs, int n, const char *topic, int32_t partition,
                         int64_t new_log_start);
int meta_drop_topic_segments(meta_t *m, const char *topic);

#endif
