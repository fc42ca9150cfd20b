/* api_offset_fetch.c - the OffsetFetch handler (API key 9, versions 0-8).
 *
 * Committed offsets come from the coordinator (group.c) whatever the group's
 * state (groups that only store offsets included); a partition without a
 * committed offset answers -1 with empty metadata and no error. A null
 * topic list (v2+) asks for every committed offset of the group. v0-7 ask
 * for one group (v0-1 put a group-level error on every partition, v2+ in
 * the top-level error code); v8 asks for several groups at once. Offsets of
 * deleted (or re-created) topics are not reported.
 */
#include "broker.h"
#include "group.h"
#include "msg_offset_fetch.h"

#include <stdlib.h>
#include <string.h>

/* Answers one group: fills *topics and returns the group's error. */
static int16_t fetch_group(kreq_t *req, kstr_t group_id, const karray_t *qtopics, karray_t *topics, bool *oom) {
    int version = req->hdr.api_version;
    *topics = (karray_t){NULL, 0};
    if (qtopics->count < 0) {
        /* Every committed offset, grouped by topic (sorted by the coordinator). */
        gfetched_t *f;
        int n;
        int16_t err = group_fetch_all_offsets(group_id, &f, &n);
        if (err) return err;
        int nt = 0;
        for (int i = 0; i < n; i++) nt += i == 0 || !kstr_eq(f[i].topic, f[i - 1].topic);
        offset_fetch_resp_topic_t *ts = KARR_NEW(&req->arena, *topics, offset_fetch_resp_topic_t, nt);
        if (!ts) { free(f); *oom = true; return KERR_NONE; }
        offset_fetch_resp_part_t *ps = NULL;
        for (int i = 0, t = -1, j = 0; i < n; i++, j++) {
            if (i == 0 || !kstr_eq(f[i].topic, f[i - 1].topic)) {
                int run = 1;
                while (i + run < n && kstr_eq(f[i + run].topic, f[i].topic)) run++;
                t++;
                j = 0;
                /* Names and metadata are copied: f's strings live in the coordinator. */
                char *name = karena_alloc(&req->arena, (size_t)f[i].topic.len + 1);
                ps = KARR_NEW(&req->arena, ts[t].partitions, offset_fetch_resp_part_t, run);
                if (!name || !ps) { free(f); *oom = true; return KERR_NONE; }
                ts[t].name = (kstr_t){kstr_cpy(name, (size_t)f[i].topic.len + 1, f[i].topic), f[i].topic.len};
            }
            char *md = karena_alloc(&req->arena, (size_t)f[i].metadata.len + 1);
            if (!md) { free(f); *oom = true; return KERR_NONE; }
            if (f[i].metadata.len > 0) memcpy(md, f[i].metadata.p, (size_t)f[i].metadata.len);
            ps[j] = (offset_fetch_resp_part_t){f[i].partition, f[i].offset, f[i].leader_epoch,
                                               (kstr_t){md, f[i].metadata.len}, f[i].error};
        }
        free(f);
        return KERR_NONE;
    }
    int nt = qtopics->count;
    int total = 0;
    for (int i = 0; i < nt; i++) {
        const offset_fetch_req_topic_t *qt = KARR_AT(*qtopics, offset_fetch_req_topic_t, i);
        total += qt->partition_indexes.count > 0 ? qt->partition_indexes.count : 0;
    }
    gfetched_t *f = karena_alloc(&req->arena, sizeof *f * (size_t)(total ? total : 1));
    offset_fetch_resp_topic_t *ts = KARR_NEW(&req->arena, *topics, offset_fetch_resp_topic_t, nt);
    if (!f || !ts) { *oom = true; return KERR_NONE; }
    int k = 0;
    for (int i = 0; i < nt; i++) {
        const offset_fetch_req_topic_t *qt = KARR_AT(*qtopics, offset_fetch_req_topic_t, i);
        for (int32_t j = 0; j < qt->partition_indexes.count; j++)
            f[k++] = (gfetched_t){.topic = qt->name, .partition = *KARR_AT(qt->partition_indexes, int32_t, j)};
    }
    int16_t err = group_fetch_offsets(group_id, f, total);
    k = 0;
    for (int i = 0; i < nt; i++) {
        const offset_fetch_req_topic_t *qt = KARR_AT(*qtopics, offset_fetch_req_topic_t, i);
        int np = qt->partition_indexes.count > 0 ? qt->partition_indexes.count : 0;
        ts[i].name = qt->name;
        offset_fetch_resp_part_t *ps = KARR_NEW(&req->arena, ts[i].partitions, offset_fetch_resp_part_t, np);
        if (!ps) { *oom = true; return KERR_NONE; }
        for (int j = 0; j < np; j++, k++) {
            if (err) {
                /* The group's error: per partition before v2 (no top-level code). */
                ps[j] = (offset_fetch_resp_part_t){f[k].partition, -1, -1, KSTR_LIT(""),
                                                   version < 2 ? err : KERR_NONE};
                continue;
            }
            /* Metadata points into the coordinator: copy it. */
            char *md = karena_alloc(&req->arena, (size_t)f[k].metadata.len + 1);
            if (!md) { *oom = true; return KERR_NONE; }
            if (f[k].metadata.len > 0) memcpy(md, f[k].metadata.p, (size_t)f[k].metadata.len);
            ps[j] = (offset_fetch_resp_part_t){f[k].partition, f[k].offset, f[k].leader_epoch,
                                               (kstr_t){md, f[k].metadata.len}, f[k].error};
        }
    }
    return err;
}

kh_result_t api_offset_fetch(kreq_t *req) {
    int version = req->hdr.api_version;
    offset_fetch_req_t q;
    if (kmsg_decode(&offset_fetch_req_schema, version, req->flexible, &req->body, &q, &req->arena)) {
        log_warn("offset_fetch: malformed v%d request, closing", version);
        return KH_CLOSE;
    }
    offset_fetch_resp_t resp;
    kmsg_defaults(&offset_fetch_resp_schema, &resp);
    bool oom = false;
    if (version < 8) {
        resp.error_code = fetch_group(req, q.group_id, &q.topics, &resp.topics, &oom);
    } else {
        int32_t ng = q.groups.count > 0 ? q.groups.count : 0;
        offset_fetch_resp_group_t *gs = KARR_NEW(&req->arena, resp.groups, offset_fetch_resp_group_t, ng);
        if (!gs) return KH_CLOSE;
        for (int32_t i = 0; i < ng && !oom; i++) {
            const offset_fetch_req_group_t *qg = KARR_AT(q.groups, offset_fetch_req_group_t, i);
            gs[i].group_id = qg->group_id;
            gs[i].error_code = fetch_group(req, qg->group_id, &qg->topics, &gs[i].topics, &oom);
        }
    }
    if (oom) {
        log_warn("offset_fetch: out of request memory (v%d)", version);
        return KH_CLOSE;
    }
    return kreq_respond(req, &offset_fetch_resp_schema, &resp);
}
