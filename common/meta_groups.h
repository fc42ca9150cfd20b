/* meta_groups.h - the metadata store of the group coordinator: each group's
 * metadata (generation, protocol, leader, members with their subscription and
 * assignment) and its committed offsets.
 *
 * The embedded backend (meta_groups.c) is a third single-writer journal,
 * <data_dir>/meta/groups.journal, written only by the broker, in the same
 * CRC-framed JSON-lines format as meta_file.c's journals (see there): a torn
 * tail after a crash is recognised and ignored, every record is fsynced
 * before the call returns, and the journal is compacted (snapshot to a temp
 * file, fsync, rename) when it grew large. The coordinator writes only when
 * a group changes meaningfully - a new generation's assignment, the group
 * becoming empty, a commit, a deletion - never per heartbeat.
 *
 * The etcd backend (meta_groups_etcd.c), chosen by meta_groups_open when
 * KAFSCALE_ETCD_ENDPOINTS is set, implements the same calls over
 * /kafscale/groups/<group> (ConsumerGroup) and
 * /kafscale/offsets/<group>/<topic>/<partition> (CommittedOffset), with the
 * group id escaped as meta.h's meta_key_escape says. There, "" and NULL are
 * the same for protocol_type, protocol, leader and instance_id (proto3
 * strings have no presence); offset metadata keeps NULL, "" and any bytes.
 *
 * Strings are C strings (ids never contain NUL: the coordinator refuses such
 * ids); offset metadata, subscriptions and assignments are counted byte
 * strings. Everything a callback receives lives only during the callback.
 */
#ifndef KAFSCALE_META_GROUPS_H
#define KAFSCALE_META_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct meta_groups meta_groups_t;

typedef struct mg_member {
    const char *member_id;
    const char *instance_id; /* group.instance.id, NULL for a dynamic member */
    const char *client_id;
    const char *client_host;
    int32_t session_timeout_ms, rebalance_timeout_ms;
    const uint8_t *subscription; /* the member's metadata for the group's protocol */
    int32_t subscription_len;
    const uint8_t *assignment;
    int32_t assignment_len;
} mg_member_t;

typedef struct mg_group {
    const char *group_id;
    const char *protocol_type; /* NULL: none (a group that only holds offsets) */
    const char *protocol;      /* NULL when the group is empty */
    const char *leader;        /* NULL when the group is empty */
    int32_t generation;
    int64_t state_ms;          /* when the group entered its current state (Stable or Empty) */
    int nmembers;
    const mg_member_t *members;
} mg_group_t;

typedef struct mg_offset {
    const char *topic;
    uint8_t topic_id[16]; /* the topic's id at commit time: a re-created topic is another topic */
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;  /* -1: none */
    const char *metadata;  /* NULL: null metadata */
    int32_t metadata_len;
    int64_t commit_ms;
    int64_t expire_ms;     /* -1: the broker's retention applies (OffsetCommit v2-4 may set it) */
} mg_offset_t;

typedef struct mg_load_cb {
    /* every live group record first, then every live offset */
    void (*group)(void *arg, const mg_group_t *g);
    void (*offset)(void *arg, const char *group_id, const mg_offset_t *o);
    void *arg;
} mg_load_cb_t;

/* Opens (creates) <data_dir>/meta/groups.journal for writing; one writer per
 * data directory (flock on groups.lock). With KAFSCALE_ETCD_ENDPOINTS set:
 * the etcd backend (data_dir unused). NULL with err set on failure. */
meta_groups_t *meta_groups_open(const char *data_dir, char *err, size_t errsz);
void meta_groups_close(meta_groups_t *m);
bool meta_groups_is_etcd(const meta_groups_t *m);

/* Replays the journal: live groups and offsets through the callbacks.
 * Returns 0 or -1 (err set). */
int meta_groups_load(meta_groups_t *m, const mg_load_cb_t *cb, char *err, size_t errsz);
/* One group (if it exists) and its offsets, freshest from the store (for a
 * broker becoming the group's coordinator). 0 or -1 (err set). */
int meta_groups_load_group(meta_groups_t *m, const char *group_id, const mg_load_cb_t *cb, char *err, size_t errsz);

/* One durable record (file) / transaction (etcd; a call with more than 128
 * offsets is split into several) per call; 0 or -1. */
int meta_groups_put_group(meta_groups_t *m, const mg_group_t *g);
int meta_groups_put_offsets(meta_groups_t *m, const char *group_id, const mg_offset_t *o, int n);
/* Removes offsets (only .topic and .partition of each entry are read). */
int meta_groups_delete_offsets(meta_groups_t *m, const char *group_id, const mg_offset_t *o, int n);
/* Removes a group and all of its offsets. */
int meta_groups_delete_group(meta_groups_t *m, const char *group_id);

/* Bytes in the journal file (for tests and logs; 0 with etcd). */
uint64_t meta_groups_journal_bytes(const meta_groups_t *m);
/* Lowers the compaction threshold (tests). */
void meta_groups_set_compact_bytes(meta_groups_t *m, uint64_t bytes);

#endif
