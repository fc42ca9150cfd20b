/* meta_backend.h - what a metadata backend provides behind meta.h and
 * meta_groups.h (private to common/meta*.c): an ops table per backend ("file":
 * meta_file.c / meta_groups.c, "etcd": meta_etcd.c / meta_groups_etcd.c) and
 * the handle header every backend's struct starts with. meta.c picks the
 * backend at open and dispatches every call through the table.
 */
#ifndef KAFSCALE_META_BACKEND_H
#define KAFSCALE_META_BACKEND_H

#include "etcd.h"
#include "meta.h"
#include "meta_groups.h"

#define META_MAGIC 0x4d455441u        /* "META" */
#define META_GROUPS_MAGIC 0x4d475250u /* "MGRP" */

typedef struct meta_ops {
    const char *name;
    void (*close)(meta_t *m);
    int (*load)(meta_t *m, const meta_load_cb_t *cb, char *err, size_t errsz);
    int (*load_partition)(meta_t *m, const char *topic, int32_t partition, const meta_load_cb_t *cb, char *err,
                          size_t errsz);
    int (*put_topic)(meta_t *m, const meta_topic_t *t);
    int (*delete_topic)(meta_t *m, const char *name);
    void (*set_fence)(meta_t *m, const char *topic, int32_t partition, int64_t leader_rev); /* NULL: ignored */
    int (*commit_segments)(meta_t *m, const meta_segment_t *segs, int n, uint8_t *fenced);
    int (*remove_segments)(meta_t *m, const meta_segment_t *segs, int n, const char *topic, int32_t partition,
                           int64_t new_log_start);
    int (*drop_topic_segments)(meta_t *m, const char *topic);
} meta_ops_t;

/* The first member of every backend's handle. */
struct meta {
    uint32_t magic; /* META_MAGIC while open */
    const meta_ops_t *ops;
    int64_t snapshot_rev; /* etcd: revision of this handle's last snapshot write (0: none) */
};

typedef struct mg_ops {
    const char *name;
    void (*close)(meta_groups_t *m);
    int (*load)(meta_groups_t *m, const mg_load_cb_t *cb, char *err, size_t errsz);
    int (*load_group)(meta_groups_t *m, const char *group_id, const mg_load_cb_t *cb, char *err, size_t errsz);
    int (*put_group)(meta_groups_t *m, const mg_group_t *g);
    int (*put_offsets)(meta_groups_t *m, const char *group_id, const mg_offset_t *o, int n);
    int (*delete_offsets)(meta_groups_t *m, const char *group_id, const mg_offset_t *o, int n);
    int (*delete_group)(meta_groups_t *m, const char *group_id);
    uint64_t (*journal_bytes)(const meta_groups_t *m);       /* NULL: 0 */
    void (*set_compact_bytes)(meta_groups_t *m, uint64_t b); /* NULL: ignored */
} mg_ops_t;

struct meta_groups {
    uint32_t magic; /* META_GROUPS_MAGIC while open */
    const mg_ops_t *ops;
};

/* Backend constructors (they set the header). */
meta_t *meta_file_open(const char *data_dir, const char *writer, char *err, size_t errsz);
meta_t *meta_etcd_open(const etcd_config_t *cfg, const char *writer, char *err, size_t errsz);
meta_groups_t *meta_groups_file_open(const char *data_dir, char *err, size_t errsz);
meta_groups_t *meta_groups_etcd_open(const etcd_config_t *cfg, char *err, size_t errsz);

/* ---- the snapshot document (meta_snapshot.c) ---- */

/* Edits the snapshot text old (NULL / len 0: there is none yet) for a put of
 * `put` (replacing the entry of that name, or appending one) or, with put
 * NULL, a deletion of the entry named del_name; entries without an id get
 * one (meta_topic_id_from_name) and up to max_backfill of them are copied to
 * backfill[] (so their TopicConfig can be written too; *nbackfill counts
 * them). Entries it cannot read are kept as they are. Returns the new text
 * (malloc'd, the caller frees) or NULL with err set when old is unusable. */
char *meta_snapshot_edit(const char *old, size_t old_len, const meta_topic_t *put, const char *del_name,
                         meta_topic_t *backfill, int max_backfill, int *nbackfill, char *err, size_t errsz);

/* Appends "key=value\n" to out (a meta_topic_t.configs of cap bytes,
 * NUL-terminated; *used bytes in it); -1 when it does not fit or the pair
 * could not be read back as one line (meta_pb.c; the snapshot uses it too). */
int meta_topic_config_append(char *out, size_t cap, size_t *used, const char *key, const char *value);

/* ---- small helpers shared by the etcd backends (meta_keys.c) ---- */

/* An etcd status and message as one line for logs. */
void meta_etcd_log_error(const char *what, int st, const char *err);
/* Pages through every key starting with prefix, at revision *rev (0: the
 * newest, then set to the revision read), calling fn for each in key order;
 * fn returns 0 to go on. 0 or -1 (err set). */
int meta_etcd_range_all(etcd_t *c, const char *prefix, int64_t *rev, int (*fn)(void *arg, const etcd_kv_t *kv),
                        void *arg, char *err, size_t errsz);

#endif
