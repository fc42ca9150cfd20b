/* meta.c - the front of the metadata interfaces (meta.h, meta_groups.h):
 * picks the backend at open - etcd when KAFSCALE_ETCD_ENDPOINTS is set, the
 * file journals otherwise - and dispatches every call through the backend's
 * ops table (meta_backend.h), checking the handle's magic first.
 */
#include "meta_backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define CHECK_META(m) KS_ASSERT((m) != NULL && (m)->magic == META_MAGIC)
#define CHECK_GROUPS(m) KS_ASSERT((m) != NULL && (m)->magic == META_GROUPS_MAGIC)

/* ---- meta.h ---- */

meta_t *meta_open(const char *data_dir, const char *writer, char *err, size_t errsz) {
    etcd_config_t cfg;
    meta_t *m = etcd_config_from_env(&cfg) ? meta_etcd_open(&cfg, writer, err, errsz)
                                           : meta_file_open(data_dir, writer, err, errsz);
    if (m) CHECK_META(m);
    return m;
}

void meta_close(meta_t *m) {
    if (!m) return;
    CHECK_META(m);
    m->magic = 0;
    m->ops->close(m);
}

int64_t meta_snapshot_revision(const meta_t *m) {
    CHECK_META(m);
    return m->snapshot_rev;
}

bool meta_is_etcd(const meta_t *m) {
    CHECK_META(m);
    return !strcmp(m->ops->name, "etcd");
}

int meta_load(meta_t *m, const meta_load_cb_t *cb, char *err, size_t errsz) {
    CHECK_META(m);
    return m->ops->load(m, cb, err, errsz);
}

int meta_load_partition(meta_t *m, const char *topic, int32_t partition, const meta_load_cb_t *cb, char *err,
                        size_t errsz) {
    CHECK_META(m);
    return m->ops->load_partition(m, topic, partition, cb, err, errsz);
}

int meta_put_topic(meta_t *m, const meta_topic_t *t) {
    CHECK_META(m);
    return m->ops->put_topic(m, t);
}

int meta_delete_topic(meta_t *m, const char *name) {
    CHECK_META(m);
    return m->ops->delete_topic(m, name);
}

void meta_set_fence(meta_t *m, const char *topic, int32_t partition, int64_t leader_rev) {
    CHECK_META(m);
    if (m->ops->set_fence) m->ops->set_fence(m, topic, partition, leader_rev);
}

int meta_commit_segments(meta_t *m, const meta_segment_t *segs, int n, uint8_t *fenced) {
    CHECK_META(m);
    KS_ASSERT(n >= 0);
    return m->ops->commit_segments(m, segs, n, fenced);
}

int meta_remove_segments(meta_t *m, const meta_segment_t *segs, int n, const char *topic, int32_t partition,
                         int64_t new_log_start) {
    CHECK_META(m);
    KS_ASSERT(n >= 0);
    return m->ops->remove_segments(m, segs, n, topic, partition, new_log_start);
}

int meta_drop_topic_segments(meta_t *m, const char *topic) {
    CHECK_META(m);
    return m->ops->drop_topic_segments(m, topic);
}

/* ---- meta_groups.h ---- */

meta_groups_t *meta_groups_open(const char *data_dir, char *err, size_t errsz) {
    etcd_config_t cfg;
    meta_groups_t *m = etcd_config_from_env(&cfg) ? meta_groups_etcd_open(&cfg, err, errsz)
                                                  : meta_groups_file_open(data_dir, err, errsz);
    if (m) CHECK_GROUPS(m);
    return m;
}

void meta_groups_close(meta_groups_t *m) {
    if (!m) return;
    CHECK_GROUPS(m);
    m->magic = 0;
    m->ops->close(m);
}

bool meta_groups_is_etcd(const meta_groups_t *m) {
    CHECK_GROUPS(m);
    return !strcmp(m->ops->name, "etcd");
}

int meta_groups_load(meta_groups_t *m, const mg_load_cb_t *cb, char *err, size_t errsz) {
    CHECK_GROUPS(m);
    return m->ops->load(m, cb, err, errsz);
}

int meta_groups_load_group(meta_groups_t *m, const char *group_id, const mg_load_cb_t *cb, char *err, size_t errsz) {
    CHECK_GROUPS(m);
    return m->ops->load_group(m, group_id, cb, err, errsz);
}

int meta_groups_put_group(meta_groups_t *m, const mg_group_t *g) {
    CHECK_GROUPS(m);
    return m->ops->put_group(m, g);
}

int meta_groups_put_offsets(meta_groups_t *m, const char *group_id, const mg_offset_t *o, int n) {
    CHECK_GROUPS(m);
    KS_ASSERT(n >= 0);
    return m->ops->put_offsets(m, group_id, o, n);
}

int meta_groups_delete_offsets(meta_groups_t *m, const char *group_id, const mg_offset_t *o, int n) {
    CHECK_GROUPS(m);
    KS_ASSERT(n >= 0);
    return m->ops->delete_offsets(m, group_id, o, n);
}

int meta_groups_delete_group(meta_groups_t *m, const char *group_id) {
    CHECK_GROUPS(m);
    return m->ops->delete_group(m, group_id);
}

uint64_t meta_groups_journal_bytes(const meta_groups_t *m) {
    CHECK_GROUPS(m);
    return m->ops->journal_bytes ? m->ops->journal_bytes(m) : 0;
}

void meta_groups_set_compact_bytes(meta_groups_t *m, uint64_t bytes) {
    CHECK_GROUPS(m);
    if (m->ops->set_compact_bytes) m->ops->set_compact_bytes(m, bytes);
}
