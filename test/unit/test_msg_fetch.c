/* test_msg_fetch.c - the Fetch and ListOffsets codecs against bytes written by
 * hand from Kafka's protocol description (not produced by our encoder), so a
 * field out of order or in the wrong versions shows up here.
 *
 * msg_fetch_suite(): Fetch v4 and ListOffsets v1/v0 requests decoded field by
 * field; truncated bodies refused; Fetch v12 and ListOffsets v0 responses
 * encoded and compared byte for byte, records going out by reference. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "kmsg.h"
#include "msg_fetch.h"
#include "msg_list_offsets.h"

/* The writer's inline bytes and refs laid out in order, as on the wire. */
static uint8_t *flatten(const kw_t *w, size_t *len) {
    size_t n = kw_size(w), at = 0, o = 0;
    uint8_t *out = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < w->nrefs; i++) {
        memcpy(out + o, w->buf + at, w->refs[i].at - at);
        o += w->refs[i].at - at;
        at = w->refs[i].at;
        if (w->refs[i].len) memcpy(out + o, w->refs[i].p, w->refs[i].len);
        o += w->refs[i].len;
    }
    memcpy(out + o, w->buf + at, w->len - at);
    o += w->len - at;
    *len = o;
    return out;
}

/* Fetch v4: ReplicaId, MaxWaitMs, MinBytes, MaxBytes, IsolationLevel,
 * Topics[Name, Partitions[Partition, FetchOffset, PartitionMaxBytes]]. */
static const uint8_t fetch_v4_req[] = {
    0xff, 0xff, 0xff, 0xff,             /* replica_id -1 */
    0x00, 0x00, 0x01, 0xf4,             /* max_wait_ms 500 */
    0x00, 0x00, 0x00, 0x01,             /* min_bytes 1 */
    0x03, 0x20, 0x00, 0x00,             /* max_bytes 52428800 */
    0x01,                               /* isolation_level read_committed */
    0x00, 0x00, 0x00, 0x01,             /* 1 topic */
    0x00, 0x02, 't', '1',               /*   name "t1" */
    0x00, 0x00, 0x00, 0x02,             /*   2 partitions */
    0x00, 0x00, 0x00, 0x00,             /*     partition 0 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, /* fetch_offset 5 */
    0x00, 0x10, 0x00, 0x00,             /*     partition_max_bytes 1 MiB */
    0x00, 0x00, 0x00, 0x03,             /*     partition 3 */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* fetch_offset */
    0x7f, 0xff, 0xff, 0xff,             /*     partition_max_bytes */
};

START_TEST(fetch_v4_request_decodes_every_field) {
    karena_t a;
    karena_init(&a);
    fetch_req_t r;
    kr_t rd = kr_init(fetch_v4_req, sizeof fetch_v4_req);
    ck_assert_int_eq(kmsg_decode(&fetch_req_schema, 4, false, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.replica_id, -1);
    ck_assert_int_eq(r.max_wait_ms, 500);
    ck_assert_int_eq(r.min_bytes, 1);
    ck_assert_int_eq(r.max_bytes, 52428800);
    ck_assert_int_eq(r.isolation_level, 1);
    /* Fields of later versions keep their defaults. */
    ck_assert_int_eq(r.session_id, 0);
    ck_assert_int_eq(r.session_epoch, -1);
    ck_assert_int_eq(r.forgotten_topics_data.count, 0);
    ck_assert_int_eq(r.rack_id.len, 0);
    ck_assert_int_eq(r.cluster_id.len, -1);
    ck_assert_int_eq(r.replica_state.replica_id, -1);
    ck_assert_int_eq(r.replica_state.replica_epoch, -1);

    ck_assert_int_eq(r.topics.count, 1);
    fetch_req_topic_t *t = KARR_AT(r.topics, fetch_req_topic_t, 0);
    ck_assert(kstr_eq_c(t->topic, "t1"));
    ck_assert_int_eq(t->partitions.count, 2);
    fetch_req_part_t *p0 = KARR_AT(t->partitions, fetch_req_part_t, 0);
    fetch_req_part_t *p1 = KARR_AT(t->partitions, fetch_req_part_t, 1);
    ck_assert_int_eq(p0->partition, 0);
    ck_assert_int_eq(p0->fetch_offset, 5);
    ck_assert_int_eq(p0->partition_max_bytes, 1048576);
    ck_assert_int_eq(p0->current_leader_epoch, -1);
    ck_assert_int_eq(p0->last_fetched_epoch, -1);
    ck_assert_int_eq(p0->log_start_offset, -1);
    ck_assert_int_eq(p1->partition, 3);
    ck_assert(p1->fetch_offset == 0x0102030405060708LL);
    ck_assert_int_eq(p1->partition_max_bytes, 0x7fffffff);
    karena_free(&a);
}
END_TEST

START_TEST(fetch_v4_request_truncated_is_refused) {
    karena_t a;
    karena_init(&a);
    for (size_t n = 0; n < sizeof fetch_v4_req; n++) {
        fetch_req_t r;
        kr_t rd = kr_init(fetch_v4_req, n);
        ck_assert_msg(kmsg_decode(&fetch_req_schema, 4, false, &rd, &r, &a) != 0, "accepted %zu bytes", n);
        karena_reset(&a);
    }
    karena_free(&a);
}
END_TEST

/* Fetch v13 (flexible): topic ids instead of names, the ClusterId tag. */
START_TEST(fetch_v13_request_decodes_topic_id_and_tags) {
    static const uint8_t req[] = {
        0xff, 0xff, 0xff, 0xff,         /* replica_id -1 */
        0x00, 0x00, 0x00, 0x64,         /* max_wait_ms 100 */
        0x00, 0x00, 0x00, 0x00,         /* min_bytes 0 */
        0x7f, 0xff, 0xff, 0xff,         /* max_bytes */
        0x00,                           /* isolation_level */
        0x00, 0x00, 0x00, 0x07,         /* session_id 7 */
        0x00, 0x00, 0x00, 0x02,         /* session_epoch 2 */
        0x02,                           /* 1 topic (compact) */
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* topic_id */
        0x02,                           /*   1 partition */
        0x00, 0x00, 0x00, 0x01,         /*     partition 1 */
        0x00, 0x00, 0x00, 0x04,         /*     current_leader_epoch 4 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* fetch_offset 42 */
        0x00, 0x00, 0x00, 0x03,         /*     last_fetched_epoch 3 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* log_start_offset -1 */
        0x00, 0x00, 0x10, 0x00,         /*     partition_max_bytes 4096 */
        0x00,                           /*     no tags */
        0x00,                           /*   no tags */
        0x01,                           /* no forgotten topics (compact 0) */
        0x03, 'r', '1',                 /* rack_id "r1" */
        0x01, 0x00, 0x03, 0x03, 'c', 'i', /* tags: 1 field, tag 0 (ClusterId), 3 bytes: "ci" */
    };
    karena_t a;
    karena_init(&a);
    fetch_req_t r;
    kr_t rd = kr_init(req, sizeof req);
    ck_assert_int_eq(kmsg_decode(&fetch_req_schema, 13, true, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.session_id, 7);
    ck_assert_int_eq(r.session_epoch, 2);
    ck_assert(kstr_eq_c(r.cluster_id, "ci"));
    ck_assert(kstr_eq_c(r.rack_id, "r1"));
    ck_assert_int_eq(r.forgotten_topics_data.count, 0);
    ck_assert_int_eq(r.topics.count, 1);
    fetch_req_topic_t *t = KARR_AT(r.topics, fetch_req_topic_t, 0);
    ck_assert_int_eq(t->topic_id.b[0], 1);
    ck_assert_int_eq(t->topic_id.b[15], 16);
    fetch_req_part_t *p = KARR_AT(t->partitions, fetch_req_part_t, 0);
    ck_assert_int_eq(p->partition, 1);
    ck_assert_int_eq(p->current_leader_epoch, 4);
    ck_assert_int_eq(p->fetch_offset, 42);
    ck_assert_int_eq(p->last_fetched_epoch, 3);
    ck_assert_int_eq(p->log_start_offset, -1);
    ck_assert_int_eq(p->partition_max_bytes, 4096);
    karena_free(&a);
}
END_TEST

/* ListOffsets v1: ReplicaId, Topics[Name, Partitions[PartitionIndex, Timestamp]]. */
START_TEST(list_offsets_v1_request_decodes_every_field) {
    static const uint8_t req[] = {
        0xff, 0xff, 0xff, 0xff,         /* replica_id -1 */
        0x00, 0x00, 0x00, 0x01,         /* 1 topic */
        0x00, 0x06, 'o', 'r', 'd', 'e', 'r', 's',
        0x00, 0x00, 0x00, 0x02,         /*   2 partitions */
        0x00, 0x00, 0x00, 0x02,         /*     partition 2 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, /* timestamp -2 (earliest) */
        0x00, 0x00, 0x00, 0x05,         /*     partition 5 */
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* timestamp 1700000000000 */
    };
    karena_t a;
    karena_init(&a);
    list_offsets_req_t r;
    kr_t rd = kr_init(req, sizeof req);
    ck_assert_int_eq(kmsg_decode(&list_offsets_req_schema, 1, false, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.replica_id, -1);
    ck_assert_int_eq(r.isolation_level, 0);
    ck_assert_int_eq(r.topics.count, 1);
    list_offsets_req_topic_t *t = KARR_AT(r.topics, list_offsets_req_topic_t, 0);
    ck_assert(kstr_eq_c(t->name, "orders"));
    ck_assert_int_eq(t->partitions.count, 2);
    list_offsets_req_part_t *p0 = KARR_AT(t->partitions, list_offsets_req_part_t, 0);
    list_offsets_req_part_t *p1 = KARR_AT(t->partitions, list_offsets_req_part_t, 1);
    ck_assert_int_eq(p0->partition_index, 2);
    ck_assert_int_eq(p0->timestamp, -2);
    ck_assert_int_eq(p0->current_leader_epoch, -1);
    ck_assert_int_eq(p0->max_num_offsets, 1); /* v0-only field keeps its default */
    ck_assert_int_eq(p1->partition_index, 5);
    ck_assert(p1->timestamp == 1700000000000LL);

    /* One byte short fails. */
    rd = kr_init(req, sizeof req - 1);
    ck_assert_int_ne(kmsg_decode(&list_offsets_req_schema, 1, false, &rd, &r, &a), 0);
    karena_free(&a);
}
END_TEST

/* ListOffsets v0 carries MaxNumOffsets after the timestamp. */
START_TEST(list_offsets_v0_request_has_max_num_offsets) {
    static const uint8_t req[] = {
        0xff, 0xff, 0xff, 0xff,
        0x00, 0x00, 0x00, 0x01,
        0x00, 0x01, 'x',
        0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* latest */
        0x00, 0x00, 0x00, 0x0a,         /* max_num_offsets 10 */
    };
    karena_t a;
    karena_init(&a);
    list_offsets_req_t r;
    kr_t rd = kr_init(req, sizeof req);
    ck_assert_int_eq(kmsg_decode(&list_offsets_req_schema, 0, false, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    list_offsets_req_part_t *p = KARR_AT(KARR_AT(r.topics, list_offsets_req_topic_t, 0)->partitions,
                                         list_offsets_req_part_t, 0);
    ck_assert_int_eq(p->timestamp, -1);
    ck_assert_int_eq(p->max_num_offsets, 10);
    karena_free(&a);
}
END_TEST

START_TEST(list_offsets_v0_response_has_old_style_offsets) {
    int64_t offs[] = {42};
    list_offsets_resp_part_t p;
    memset(&p, 0, sizeof p);
    p.partition_index = 1;
    p.error_code = 0;
    p.old_style_offsets = (karray_t){offs, 1};
    p.timestamp = -1;
    p.offset = 42;
    p.leader_epoch = -1;
    list_offsets_resp_topic_t t = {KSTR_LIT("x"), {&p, 1}};
    list_offsets_resp_t resp = {0, {&t, 1}};
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x01,         /* 1 topic (no throttle time in v0) */
        0x00, 0x01, 'x',
        0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x01,         /* partition 1 */
        0x00, 0x00,                     /* error 0 */
        0x00, 0x00, 0x00, 0x01,         /* 1 old-style offset */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,
    };
    kw_t w;
    kw_init(&w, 64);
    ck_assert_int_eq(kmsg_encode(&list_offsets_resp_schema, 0, false, &w, &resp), 0);
    ck_assert_uint_eq(w.len, sizeof want);
    ck_assert_mem_eq(w.buf, want, sizeof want);
    kw_free(&w);
}
END_TEST

/* Fetch v12 response: flexible, records by reference from two pieces. */
START_TEST(fetch_v12_response_encodes_bytes_and_refs) {
    static const uint8_t piece1[] = {'a', 'b', 'c'}, piece2[] = {'d', 'e'};
    kiov_t iov[] = {{piece1, 3}, {piece2, 2}};
    fetch_resp_part_t p;
    memset(&p, 0, sizeof p);
    p.partition_index = 0;
    p.error_code = 0;
    p.high_watermark = 10;
    p.last_stable_offset = 10;
    p.log_start_offset = 0;
    p.diverging_epoch = (fetch_resp_epoch_end_offset_t){-1, -1};
    p.current_leader = (fetch_resp_leader_t){1, 5};
    p.snapshot_id = (fetch_resp_snapshot_id_t){-1, -1};
    p.aborted_transactions = (karray_t){NULL, -1};
    p.preferred_read_replica = -1;
    p.records = (krecords_t){piece1, 5, 2, iov};
    fetch_resp_topic_t t;
    memset(&t, 0, sizeof t);
    t.topic = KSTR_LIT("t1");
    t.partitions = (karray_t){&p, 1};
    fetch_resp_t resp;
    kmsg_defaults(&fetch_resp_schema, &resp);
    resp.responses = (karray_t){&t, 1};

    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x00,         /* throttle_time_ms */
        0x00, 0x00,                     /* error_code */
        0x00, 0x00, 0x00, 0x00,         /* session_id */
        0x02,                           /* 1 topic */
        0x03, 't', '1',
        0x02,                           /*   1 partition */
        0x00, 0x00, 0x00, 0x00,         /*     partition_index */
        0x00, 0x00,                     /*     error_code */
        0, 0, 0, 0, 0, 0, 0, 10,        /*     high_watermark */
        0, 0, 0, 0, 0, 0, 0, 10,        /*     last_stable_offset */
        0, 0, 0, 0, 0, 0, 0, 0,         /*     log_start_offset */
        0x00,                           /*     aborted_transactions null */
        0xff, 0xff, 0xff, 0xff,         /*     preferred_read_replica -1 */
        0x06, 'a', 'b', 'c', 'd', 'e',  /*     records: 5 bytes + 1, then the refs */
        0x01,                           /*     1 tagged field: */
        0x01, 0x09,                     /*       CurrentLeader (tag 1), 9 bytes */
        0x00, 0x00, 0x00, 0x01,         /*       leader_id 1 */
        0x00, 0x00, 0x00, 0x05,         /*       leader_epoch 5 */
        0x00,                           /*       its tags */
        0x00,                           /*   topic tags */
        0x00,                           /* response tags */
    };
    kw_t w;
    kw_init(&w, 64);
    ck_assert_int_eq(kmsg_encode(&fetch_resp_schema, 12, true, &w, &resp), 0);
    ck_assert_uint_eq(w.nrefs, 2);      /* the batches were not copied */
    ck_assert_uint_eq(w.reflen, 5);
    size_t n;
    uint8_t *got = flatten(&w, &n);
    ck_assert_uint_eq(n, sizeof want);
    ck_assert_mem_eq(got, want, sizeof want);
    free(got);

    /* v11 (not flexible): no tags, i32 lengths, the topic as an i16 string. */
    kw_reset(&w);
    p.current_leader = (fetch_resp_leader_t){-1, -1};
    ck_assert_int_eq(kmsg_encode(&fetch_resp_schema, 11, false, &w, &resp), 0);
    got = flatten(&w, &n);
    /* header 10, topic count 4 + name 4, partition count 4, partition 4 + 2 + 24,
     * aborted null 4, preferred replica 4, records 4 + 5 */
    ck_assert_uint_eq(n, 10 + 8 + 4 + 30 + 4 + 4 + 9);
    ck_assert_mem_eq(got + 10, "\x00\x00\x00\x01\x00\x02t1", 8);
    ck_assert_mem_eq(got + n - 17, "\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x05" "abcde", 17);
    free(got);
    kw_free(&w);
}
END_TEST

/* Fetch v13 response: the topic id replaces the name. */
START_TEST(fetch_v13_response_sends_topic_id) {
    fetch_resp_part_t p;
    memset(&p, 0, sizeof p);
    p.diverging_epoch = (fetch_resp_epoch_end_offset_t){-1, -1};
    p.current_leader = (fetch_resp_leader_t){-1, -1};
    p.snapshot_id = (fetch_resp_snapshot_id_t){-1, -1};
    p.aborted_transactions = (karray_t){NULL, -1};
    p.preferred_read_replica = -1;
    p.error_code = 100; /* UNKNOWN_TOPIC_ID */
    p.records = (krecords_t){NULL, 0, 0, NULL};
    fetch_resp_topic_t t;
    memset(&t, 0, sizeof t);
    t.topic = KSTR_LIT("ignored");
    for (int i = 0; i < 16; i++) t.topic_id.b[i] = (uint8_t)(0xa0 + i);
    t.partitions = (karray_t){&p, 1};
    fetch_resp_t resp;
    kmsg_defaults(&fetch_resp_schema, &resp);
    resp.responses = (karray_t){&t, 1};
    kw_t w;
    kw_init(&w, 64);
    ck_assert_int_eq(kmsg_encode(&fetch_resp_schema, 13, true, &w, &resp), 0);
    ck_assert_uint_eq(w.nrefs, 0);
    ck_assert_uint_eq(w.len, 10 + 1 + 16 + 1 + 4 + 2 + 24 + 1 + 4 + 1 + 1 + 1 + 1);
    ck_assert_int_eq(w.buf[10], 0x02);
    ck_assert_int_eq(w.buf[11], 0xa0);
    ck_assert_int_eq(w.buf[26], 0xaf);
    ck_assert_int_eq(w.buf[28 + 4], 0x00);
    ck_assert_int_eq(w.buf[28 + 5], 100);
    kw_free(&w);
}
END_TEST

Suite *msg_fetch_suite(void) {
    Suite *s = suite_create("msg_fetch");
    TCase *tc = tcase_create("fetch");
    tcase_add_test(tc, fetch_v4_request_decodes_every_field);
    tcase_add_test(tc, fetch_v4_request_truncated_is_refused);
    tcase_add_test(tc, fetch_v13_request_decodes_topic_id_and_tags);
    tcase_add_test(tc, fetch_v12_response_encodes_bytes_and_refs);
    tcase_add_test(tc, fetch_v13_response_sends_topic_id);
    suite_add_tcase(s, tc);
    tc = tcase_create("list_offsets");
    tcase_add_test(tc, list_offsets_v1_request_decodes_every_field);
    tcase_add_test(tc, list_offsets_v0_request_has_max_num_offsets);
    tcase_add_test(tc, list_offsets_v0_response_has_old_style_offsets);
    suite_add_tcase(s, tc);
    return s;
}
