/* test_meta.c - the embedded metadata journals (common/meta_file.c): replay,
 * topic ids on segments, and recovery from a torn tail left by a crash; the
 * pure parts of the etcd backend: the topics snapshot (meta_snapshot.c), key
 * escaping (meta_keys.c), the PartitionState / ConsumerGroup /
 * CommittedOffset encodings (meta_pb.c); the file backend's one-partition
 * and one-group loads. The etcd backend itself: test/e2e/test_meta_etcd.py. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta.h"
#include "meta_backend.h"
#include "meta_groups.h"
#include "meta_pb.h"
#include "kafscale/metadata.pb-c.h"

static char dir[256];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/kafscale-meta-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

typedef struct seen { int topics, segs; int64_t last_base; } seen_t;
static void on_topic(void *arg, const meta_topic_t *t) { ((seen_t *)arg)->topics++; }
static void on_seg(void *arg, const meta_segment_t *s) {
    ((seen_t *)arg)->segs++;
    ((seen_t *)arg)->last_base = s->base_offset;
}

static meta_segment_t seg(int64_t base, int64_t last) {
    meta_segment_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.topic, sizeof s.topic, "t");
    s.base_offset = base;
    s.last_offset = last;
    s.size = 100;
    return s;
}

static seen_t load(void) {
    char err[256];
    meta_t *m = meta_open(dir, NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    seen_t s = {0};
    meta_load_cb_t cb = {on_topic, on_seg, NULL, &s};
    ck_assert_int_eq(meta_load(m, &cb, err, sizeof err), 0);
    meta_close(m);
    return s;
}

START_TEST(commits_replay_in_order) {
    char err[256];
    meta_t *m = meta_open(dir, "segments", err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    meta_segment_t a = seg(0, 9), b = seg(10, 19);
    ck_assert_int_eq(meta_commit_segments(m, &a, 1, NULL), 0);
    ck_assert_int_eq(meta_commit_segments(m, &b, 1, NULL), 0);
    meta_close(m);
    seen_t s = load();
    ck_assert_int_eq(s.segs, 2);
    ck_assert_int_eq(s.last_base, 10);
}
END_TEST

/* Regression: a crash mid-append leaves a partial line; the next writer must
 * cut it, or every record appended after it is invisible to replay. */
START_TEST(torn_tail_is_cut_before_appending) {
    char err[256];
    meta_t *m = meta_open(dir, "segments", err, sizeof err);
    meta_segment_t a = seg(0, 9);
    ck_assert_int_eq(meta_commit_segments(m, &a, 1, NULL), 0);
    meta_close(m);
    char path[400];
    snprintf(path, sizeof path, "%s/meta/segments.journal", dir);
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    fputs("1234abcd {\"t\":\"commit\",\"segs\":[{\"tp\"", f); /* torn: no newline, bad CRC */
    fclose(f);
    m = meta_open(dir, "segments", err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    meta_segment_t b = seg(10, 19);
    ck_assert_int_eq(meta_commit_segments(m, &b, 1, NULL), 0);
    meta_close(m);
    seen_t s = load();
    ck_assert_int_eq(s.segs, 2);
    ck_assert_int_eq(s.last_base, 10);
}
END_TEST

START_TEST(second_writer_of_topics_is_refused) {
    char err[256];
    meta_t *m = meta_open(dir, "topics", err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    meta_t *m2 = meta_open(dir, "topics", err, sizeof err);
    ck_assert_ptr_null(m2);
    ck_assert(strstr(err, "locked") != NULL);
    meta_close(m);
}
END_TEST

/* ---- the topics snapshot ---- */

typedef struct snap_seen {
    int n;
    meta_topic_t t[8];
} snap_seen_t;

static void snap_topic(void *arg, const meta_topic_t *t) {
    snap_seen_t *s = arg;
    ck_assert_int_lt(s->n, 8);
    s->t[s->n++] = *t;
}

static int parse(const char *js, snap_seen_t *seen, char *err, size_t errsz) {
    memset(seen, 0, sizeof *seen);
    meta_load_cb_t cb = {.topic = snap_topic, .arg = seen};
    err[0] = 0;
    return meta_snapshot_parse(js, strlen(js), &cb, err, errsz);
}

static void hex16(const char *h, uint8_t out[16]) {
    for (int i = 0; i < 16; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

START_TEST(snapshot_topics_parse_with_and_without_id_and_configs) {
    char err[512];
    snap_seen_t s;
    const char *js = "{\"version\":1,\"topics\":["
                     "{\"name\":\"t\",\"id\":\"00112233445566778899AABBCCDDEEFF\",\"partitions\":12,"
                     "\"configs\":{\"retention.ms\":\"1000\",\"segment.bytes\":1048576}},"
                     "{\"name\":\"orders\",\"partitions\":3},"
                     "{\"name\":\"z\",\"id\":\"00000000000000000000000000000000\",\"partitions\":1,\"configs\":null,"
                     "\"future\":true}],\"future\":{}}";
    ck_assert_int_eq(parse(js, &s, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(s.n, 3);
    ck_assert_str_eq(s.t[0].name, "t");
    ck_assert_int_eq(s.t[0].npartitions, 12);
    uint8_t id[16];
    hex16("00112233445566778899aabbccddeeff", id);
    ck_assert(memcmp(s.t[0].id, id, 16) == 0);
    ck_assert_str_eq(s.t[0].configs, "retention.ms=1000\nsegment.bytes=1048576\n");
    /* no id: the first 16 bytes of SHA-256("kafscale-topic:orders") */
    hex16("0933ee659433914b59e812bc35a6deab", id);
    ck_assert(memcmp(s.t[1].id, id, 16) == 0);
    ck_assert_str_eq(s.t[1].configs, "");
    uint8_t derived[16];
    meta_topic_id_from_name("z", derived);
    ck_assert(memcmp(s.t[2].id, derived, 16) == 0); /* all-zero id: derived too */
    /* no "version", no "topics": an empty cluster */
    ck_assert_int_eq(parse("{}", &s, err, sizeof err), 0);
    ck_assert_int_eq(s.n, 0);
    /* what an operator writes with etcdctl */
    ck_assert_int_eq(parse("{\"topics\":[{\"name\":\"x\",\"partitions\":3}]}", &s, err, sizeof err), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.t[0].npartitions, 3);
}
END_TEST

START_TEST(snapshot_bad_entries_are_skipped_and_named) {
    char err[512];
    snap_seen_t s;
    const char *js = "{\"topics\":["
                     "{\"name\":\"good\",\"partitions\":2},"
                     "{\"name\":\"bad name!\",\"partitions\":2},"
                     "{\"name\":\"np0\",\"partitions\":0},"
                     "{\"name\":\"np\",\"partitions\":\"3\"},"
                     "{\"name\":\"id\",\"partitions\":1,\"id\":\"xyz\"},"
                     "{\"name\":\"cfg\",\"partitions\":1,\"configs\":{\"a\":[1]}},"
                     "{\"name\":\"cfg2\",\"partitions\":1,\"configs\":{\"a=b\":\"1\"}},"
                     "{\"name\":\"good\",\"partitions\":5},"
                     "42,"
                     "{\"partitions\":1},"
                     "{\"name\":\"good2\",\"partitions\":100000}]}";
    ck_assert_int_eq(parse(js, &s, err, sizeof err), 9);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.t[0].name, "good");
    ck_assert_int_eq(s.t[0].npartitions, 2); /* the first of two entries of one name wins */
    ck_assert_str_eq(s.t[1].name, "good2");
    ck_assert_msg(strstr(err, "skipped 9") && strstr(err, "topics[1]") && strstr(err, "bad topic name"), "%s", err);
    /* unusable documents: -1, no callback */
    const char *bad[] = {"", "not json", "[1,2]", "{\"topics\":{}}", "{\"version\":2,\"topics\":[]}",
                         "{\"version\":\"1\"}", "{\"topics\":[{\"name\":\"a\",\"partitions\":1}]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(parse(bad[i], &s, err, sizeof err) == -1, "accepted: %s", bad[i]);
        ck_assert_int_eq(s.n, 0);
        ck_assert_msg(strstr(err, "/kafscale/metadata/snapshot") != NULL, "%s", err);
    }
    /* NUL inside a name or a config value is not smuggled through */
    const char nul[] = "{\"topics\":[{\"name\":\"a\\u0000b\",\"partitions\":1},"
                       "{\"name\":\"c\",\"partitions\":1,\"configs\":{\"k\":\"v\\u0000w\"}}]}";
    ck_assert_int_eq(parse(nul, &s, err, sizeof err), 2);
}
END_TEST

static meta_topic_t mk_topic(const char *name, int np, uint8_t idbyte, const char *cfg) {
    meta_topic_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.npartitions = np;
    memset(t.id, idbyte, 16);
    snprintf(t.configs, sizeof t.configs, "%s", cfg);
    return t;
}

START_TEST(snapshot_edit_puts_replaces_deletes_and_backfills_ids) {
    char err[512];
    meta_topic_t bf[4];
    int nb = -1;
    meta_topic_t a = mk_topic("a", 3, 0xaa, "retention.ms=1000\n");
    char *doc = meta_snapshot_edit(NULL, 0, &a, NULL, bf, 4, &nb, err, sizeof err);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(nb, 0);
    ck_assert_str_eq(doc, "{\"version\":1,\"topics\":[{\"name\":\"a\",\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                          "\"partitions\":3,\"configs\":{\"retention.ms\":\"1000\"}}]}");
    snap_seen_t s;
    ck_assert_int_eq(parse(doc, &s, err, sizeof err), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert(memcmp(&s.t[0], &a, sizeof a) == 0); /* round trip, every byte */
    free(doc);

    /* an operator's entry without id, a bad entry and an unknown field */
    const char *op = "{\"topics\":[{\"name\":\"x\",\"partitions\":3},{\"name\":\"bad!\"},"
                     "{\"name\":\"a\",\"partitions\":1}],\"owner\":\"ops\"}";
    meta_topic_t a2 = mk_topic("a", 6, 0xab, "");
    doc = meta_snapshot_edit(op, strlen(op), &a2, NULL, bf, 4, &nb, err, sizeof err);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(nb, 1);
    ck_assert_str_eq(bf[0].name, "x");
    uint8_t xid[16];
    meta_topic_id_from_name("x", xid);
    ck_assert(memcmp(bf[0].id, xid, 16) == 0);
    ck_assert_msg(strstr(doc, "\"owner\":\"ops\"") && strstr(doc, "{\"name\":\"bad!\"}"), "%s", doc);
    ck_assert_int_eq(parse(doc, &s, err, sizeof err), 1); /* the bad entry, kept as it was */
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.t[0].name, "x");
    ck_assert(memcmp(s.t[0].id, xid, 16) == 0);
    ck_assert_str_eq(s.t[1].name, "a"); /* replaced in place */
    ck_assert_int_eq(s.t[1].npartitions, 6);
    char *doc2 = meta_snapshot_edit(doc, strlen(doc), NULL, "a", bf, 4, &nb, err, sizeof err);
    ck_assert_ptr_nonnull(doc2);
    ck_assert_int_eq(nb, 0); /* x has its id now */
    ck_assert_int_eq(parse(doc2, &s, err, sizeof err), 1);
    ck_assert_int_eq(s.n, 1);
    ck_assert_str_eq(s.t[0].name, "x");
    free(doc);
    free(doc2);

    /* a document that is not a snapshot is refused, not overwritten */
    ck_assert_ptr_null(meta_snapshot_edit("nope", 4, &a, NULL, bf, 4, &nb, err, sizeof err));
    ck_assert(strstr(err, "not valid JSON") != NULL);
}
END_TEST

/* ---- keys ---- */

START_TEST(key_components_escape_and_round_trip) {
    char out[64], back[64];
    ck_assert_int_eq(meta_key_escape("a/b%c d\x01\xc3\xa9.", out, sizeof out), 19);
    ck_assert_str_eq(out, "a%2Fb%25c%20d%01\xc3\xa9.");
    ck_assert_int_eq(meta_key_unescape(out, strlen(out), back, sizeof back), 11);
    ck_assert_str_eq(back, "a/b%c d\x01\xc3\xa9.");
    ck_assert_int_eq(meta_key_escape("orders.v2_eu-1", out, sizeof out), 14); /* topic names pass as they are */
    ck_assert_int_eq(meta_key_escape("////", out, 12), -1);                 /* 12 bytes + NUL do not fit */
    ck_assert_int_eq(meta_key_escape("////", out, 13), 12);
    ck_assert_int_eq(meta_key_unescape("%2", 2, back, sizeof back), -1);
    ck_assert_int_eq(meta_key_unescape("%zz", 3, back, sizeof back), -1);
    ck_assert_int_eq(meta_key_unescape("a%00", 4, back, sizeof back), -1); /* no NUL */
    ck_assert_int_eq(meta_key_partition(out, sizeof out, "t", 7, "leader"), 31);
    ck_assert_str_eq(out, "/kafscale/partitions/t/7/leader");
}
END_TEST

/* ---- protobuf values of the etcd backend ---- */

START_TEST(partition_state_log_start_keeps_every_other_field) {
    char err[256];
    meta_pstate_t st;
    memset(&st, 0, sizeof st);
    snprintf(st.topic, sizeof st.topic, "t");
    st.partition = 3;
    st.leader_epoch = 7;
    st.leader_id = 2;
    st.log_start_offset = 100;
    size_t len;
    uint8_t *buf = meta_pb_state_encode(&st, &len);
    ck_assert_ptr_nonnull(buf);
    /* plus a field from the future: number 99, varint 5 (tag 99<<3 = 0x318) */
    uint8_t *ext = malloc(len + 3);
    memcpy(ext, buf, len);
    ext[len] = 0x98;
    ext[len + 1] = 0x06;
    ext[len + 2] = 0x05;
    size_t nlen;
    uint8_t *nb = meta_pb_state_with_log_start(ext, len + 3, "t", 3, 250, &nlen, err, sizeof err);
    ck_assert_msg(nb != NULL, "%s", err);
    meta_pstate_t back;
    ck_assert_int_eq(meta_pb_state_decode(nb, nlen, &back, err, sizeof err), 0);
    ck_assert_int_eq(back.leader_epoch, 7);
    ck_assert_int_eq(back.leader_id, 2);
    ck_assert_int_eq(back.log_start_offset, 250);
    ck_assert(nlen >= 3 && memcmp(nb + nlen - 3, "\x98\x06\x05", 3) == 0); /* the unknown field survived */
    free(nb);
    /* never backwards */
    nb = meta_pb_state_with_log_start(ext, len + 3, "t", 3, 50, &nlen, err, sizeof err);
    ck_assert_int_eq(meta_pb_state_decode(nb, nlen, &back, err, sizeof err), 0);
    ck_assert_int_eq(back.log_start_offset, 100);
    free(nb);
    /* another partition's state under this key, or garbage: refused */
    ck_assert_ptr_null(meta_pb_state_with_log_start(ext, len + 3, "t", 4, 50, &nlen, err, sizeof err));
    ck_assert_ptr_null(meta_pb_state_with_log_start(ext, len + 3, "u", 3, 50, &nlen, err, sizeof err));
    ck_assert_ptr_null(meta_pb_state_with_log_start((const uint8_t *)"\xff\xff", 2, "t", 3, 50, &nlen, err, sizeof err));
    ck_assert(strstr(err, "PartitionState") != NULL);
    /* none yet: a fresh state without a leader */
    nb = meta_pb_state_with_log_start(NULL, 0, "t", 3, 9, &nlen, err, sizeof err);
    ck_assert_int_eq(meta_pb_state_decode(nb, nlen, &back, err, sizeof err), 0);
    ck_assert_int_eq(back.leader_id, -1);
    ck_assert_int_eq(back.log_start_offset, 9);
    ck_assert_str_eq(back.topic, "t");
    free(nb);
    free(buf);
    free(ext);
    /* decoder limits */
    Kafscale__Metadata__PartitionState m = KAFSCALE__METADATA__PARTITION_STATE__INIT;
    m.topic = "t";
    m.log_start_offset = -5;
    uint8_t raw[64];
    len = kafscale__metadata__partition_state__pack(&m, raw);
    ck_assert_int_eq(meta_pb_state_decode(raw, len, &back, err, sizeof err), -1);
    ck_assert(strstr(err, "negative offsets") != NULL);
}
END_TEST

START_TEST(group_and_offsets_round_trip_through_protobuf) {
    char err[256];
    mg_member_t mem[2] = {
        {.member_id = "m-1", .instance_id = "i1", .client_id = "c", .client_host = "/1.2.3.4",
         .session_timeout_ms = 10000, .rebalance_timeout_ms = 30000, .subscription = (const uint8_t *)"\x00\x01",
         .subscription_len = 2, .assignment = (const uint8_t *)"\xff", .assignment_len = 1},
        {.member_id = "m-2", .client_id = "c2", .client_host = "/h"},
    };
    mg_group_t g = {.group_id = "g/\xc3", .protocol_type = "consumer", .protocol = "range", .leader = "m-1",
                    .generation = 4, .state_ms = 1234, .nmembers = 2, .members = mem};
    size_t len;
    uint8_t *buf = meta_pb_group_encode(&g, &len);
    ck_assert_ptr_nonnull(buf);
    mg_group_t back;
    void *keep;
    ck_assert_int_eq(meta_pb_group_decode(buf, len, &back, &keep, err, sizeof err), 0);
    ck_assert_str_eq(back.group_id, "g/\xc3");
    ck_assert_str_eq(back.protocol, "range");
    ck_assert_int_eq(back.generation, 4);
    ck_assert_int_eq(back.state_ms, 1234);
    ck_assert_int_eq(back.nmembers, 2);
    ck_assert_str_eq(back.members[0].instance_id, "i1");
    ck_assert_ptr_null(back.members[1].instance_id);
    ck_assert_int_eq(back.members[0].subscription_len, 2);
    ck_assert(memcmp(back.members[0].subscription, "\x00\x01", 2) == 0);
    ck_assert_int_eq(back.members[1].assignment_len, 0);
    meta_pb_release(keep);
    free(buf);
    /* an offsets-only group: NULL protocol type and protocol come back NULL */
    mg_group_t e = {.group_id = "solo"};
    buf = meta_pb_group_encode(&e, &len);
    ck_assert_int_eq(meta_pb_group_decode(buf, len, &back, &keep, err, sizeof err), 0);
    ck_assert_ptr_null(back.protocol_type);
    ck_assert_ptr_null(back.protocol);
    ck_assert_int_eq(back.nmembers, 0);
    meta_pb_release(keep);
    free(buf);
    ck_assert_int_eq(meta_pb_group_decode((const uint8_t *)"\x0a\x05g", 3, &back, &keep, err, sizeof err), -1);
    ck_assert_ptr_null(keep);

    /* offset metadata: text, NULL, "" and bytes with a NUL all come back */
    const char *mds[] = {"hello", NULL, "", "a\0b\xff"};
    int32_t mlen[] = {5, 0, 0, 4};
    for (int i = 0; i < 4; i++) {
        mg_offset_t o = {.topic = "orders", .partition = 5, .offset = 77, .leader_epoch = -1, .metadata = mds[i],
                         .metadata_len = mlen[i], .commit_ms = 99, .expire_ms = -1};
        memset(o.topic_id, 0x5a, 16);
        buf = meta_pb_offset_encode("grp", &o, &len);
        mg_offset_t ob;
        const char *gid;
        ck_assert_int_eq(meta_pb_offset_decode(buf, len, &ob, &gid, &keep, err, sizeof err), 0);
        ck_assert_str_eq(gid, "grp");
        ck_assert_str_eq(ob.topic, "orders");
        ck_assert_int_eq(ob.partition, 5);
        ck_assert_int_eq(ob.offset, 77);
        ck_assert_int_eq(ob.leader_epoch, -1);
        ck_assert_int_eq(ob.expire_ms, -1);
        ck_assert(memcmp(ob.topic_id, o.topic_id, 16) == 0);
        if (!mds[i]) {
            ck_assert_ptr_null(ob.metadata);
        } else {
            ck_assert_ptr_nonnull(ob.metadata);
            ck_assert_int_eq(ob.metadata_len, mlen[i]);
            ck_assert(memcmp(ob.metadata, mds[i], (size_t)mlen[i]) == 0);
        }
        meta_pb_release(keep);
        free(buf);
    }
    Kafscale__Metadata__CommittedOffset bad = KAFSCALE__METADATA__COMMITTED_OFFSET__INIT;
    bad.topic = "ok";
    bad.offset = -7;
    uint8_t raw[64];
    len = kafscale__metadata__committed_offset__pack(&bad, raw);
    mg_offset_t ob;
    const char *gid;
    ck_assert_int_eq(meta_pb_offset_decode(raw, len, &ob, &gid, &keep, err, sizeof err), -1);
    ck_assert(strstr(err, "offset below -1") != NULL);
}
END_TEST

/* ---- the file backend's new calls ---- */

static void count_seg(void *arg, const meta_segment_t *s) {
    ck_assert_str_eq(s->topic, "t");
    ck_assert_int_eq(s->partition, 1);
    ((seen_t *)arg)->segs++;
}

START_TEST(file_backend_loads_one_partition_and_ignores_fences) {
    char err[256];
    meta_t *m = meta_open(dir, "segments", err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert(!meta_is_etcd(m));
    meta_set_fence(m, "t", 1, 0); /* no fencing in the file backend */
    meta_segment_t s[3] = {seg(0, 9), seg(0, 4), seg(5, 9)};
    s[1].partition = s[2].partition = 1;
    uint8_t fenced[3] = {7, 7, 7};
    ck_assert_int_eq(meta_commit_segments(m, s, 3, fenced), 0);
    ck_assert(fenced[0] == 0 && fenced[1] == 0 && fenced[2] == 0);
    seen_t seen = {0};
    meta_load_cb_t cb = {NULL, count_seg, NULL, &seen};
    ck_assert_int_eq(meta_load_partition(m, "t", 1, &cb, err, sizeof err), 0);
    ck_assert_int_eq(seen.segs, 2);
    meta_close(m);
}
END_TEST

static void lg_group(void *arg, const mg_group_t *g) {
    ck_assert_str_eq(g->group_id, "a");
    ((int *)arg)[0]++;
}
static void lg_offset(void *arg, const char *gid, const mg_offset_t *o) {
    ck_assert_str_eq(gid, "a");
    ((int *)arg)[1]++;
}

START_TEST(file_backend_loads_one_group) {
    char err[256];
    meta_groups_t *g = meta_groups_open(dir, err, sizeof err);
    ck_assert_msg(g != NULL, "%s", err);
    ck_assert(!meta_groups_is_etcd(g));
    mg_group_t a = {.group_id = "a", .protocol_type = "consumer"}, b = {.group_id = "ab"};
    ck_assert_int_eq(meta_groups_put_group(g, &a), 0);
    ck_assert_int_eq(meta_groups_put_group(g, &b), 0);
    mg_offset_t o = {.topic = "t", .partition = 0, .offset = 5, .leader_epoch = -1, .expire_ms = -1};
    ck_assert_int_eq(meta_groups_put_offsets(g, "a", &o, 1), 0);
    ck_assert_int_eq(meta_groups_put_offsets(g, "ab", &o, 1), 0);
    int n[2] = {0, 0};
    mg_load_cb_t cb = {lg_group, lg_offset, n};
    ck_assert_int_eq(meta_groups_load_group(g, "a", &cb, err, sizeof err), 0);
    ck_assert_int_eq(n[0], 1);
    ck_assert_int_eq(n[1], 1);
    meta_groups_close(g);
}
END_TEST

Suite *meta_suite(void) {
    Suite *s = suite_create("meta");
    TCase *tc = tcase_create("journals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, commits_replay_in_order);
    tcase_add_test(tc, torn_tail_is_cut_before_appending);
    tcase_add_test(tc, second_writer_of_topics_is_refused);
    tcase_add_test(tc, file_backend_loads_one_partition_and_ignores_fences);
    tcase_add_test(tc, file_backend_loads_one_group);
    suite_add_tcase(s, tc);
    tc = tcase_create("etcd_values");
    tcase_add_test(tc, snapshot_topics_parse_with_and_without_id_and_configs);
    tcase_add_test(tc, snapshot_bad_entries_are_skipped_and_named);
    tcase_add_test(tc, snapshot_edit_puts_replaces_deletes_and_backfills_ids);
    tcase_add_test(tc, key_components_escape_and_round_trip);
    tcase_add_test(tc, partition_state_log_start_keeps_every_other_field);
    tcase_add_test(tc, group_and_offsets_round_trip_through_protobuf);
    suite_add_tcase(s, tc);
    return s;
}
