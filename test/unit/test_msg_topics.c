/* test_msg_topics.c - the Metadata, CreateTopics and DeleteTopics codecs, and
 * the topic config table, against bytes written by hand from Kafka's protocol
 * description (not produced by our encoder), so a field out of order, in the
 * wrong versions or with the wrong nullability shows up here.
 *
 * msg_topics_suite():
 *   metadata      - v0 and v9 requests decoded field by field (v9 skipping an
 *                   unknown tag), null/empty topic arrays per version, v12 by
 *                   id, truncated bodies refused, a v0 response byte for byte
 *   create/delete - CreateTopics v5/v7 responses with the tagged
 *                   TopicConfigErrorCode, DeleteTopics v3 and v6 requests
 *   topic_config  - defaults, validation messages, normalisation, describe
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "kmsg.h"
#include "msg_create_topics.h"
#include "msg_delete_topics.h"
#include "msg_metadata.h"
#include "topic_config.h"

/* ---- Metadata ---- */

/* v0: Topics[Name] (classic array and strings). */
static const uint8_t metadata_v0_req[] = {
    0x00, 0x00, 0x00, 0x02, /* 2 topics */
    0x00, 0x01, 'a',        /*   "a" */
    0x00, 0x02, 'b', 'c',   /*   "bc" */
};

START_TEST(metadata_v0_request_decodes_every_field) {
    karena_t a;
    karena_init(&a);
    metadata_req_t r;
    kr_t rd = kr_init(metadata_v0_req, sizeof metadata_v0_req);
    ck_assert_int_eq(kmsg_decode(&metadata_req_schema, 0, false, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.topics.count, 2);
    ck_assert(kstr_eq_c(KARR_AT(r.topics, metadata_req_topic_t, 0)->name, "a"));
    ck_assert(kstr_eq_c(KARR_AT(r.topics, metadata_req_topic_t, 1)->name, "bc"));
    /* Fields of later versions take their defaults. */
    ck_assert(r.allow_auto_topic_creation);
    ck_assert(!r.include_cluster_authorized_operations);
    ck_assert(!r.include_topic_authorized_operations);
    karena_free(&a);
}
END_TEST

START_TEST(metadata_v0_request_refuses_null_array_v1_accepts_it) {
    static const uint8_t null_topics[] = {0xff, 0xff, 0xff, 0xff};
    karena_t a;
    karena_init(&a);
    metadata_req_t r;
    kr_t rd = kr_init(null_topics, sizeof null_topics);
    ck_assert_int_ne(kmsg_decode(&metadata_req_schema, 0, false, &rd, &r, &a), 0);
    rd = kr_init(null_topics, sizeof null_topics);
    ck_assert_int_eq(kmsg_decode(&metadata_req_schema, 1, false, &rd, &r, &a), 0);
    ck_assert_int_eq(r.topics.count, -1);
    /* A null topic name is refused before v10. */
    static const uint8_t null_name[] = {0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0x01};
    rd = kr_init(null_name, sizeof null_name);
    ck_assert_int_ne(kmsg_decode(&metadata_req_schema, 4, false, &rd, &r, &a), 0);
    karena_free(&a);
}
END_TEST

/* v9 (flexible): Topics[Name, tags], AllowAutoTopicCreation,
 * IncludeClusterAuthorizedOperations, IncludeTopicAuthorizedOperations, tags. */
static const uint8_t metadata_v9_req[] = {
    0x02,                   /* compact array: 1 topic */
    0x03, 't', '1',         /*   name "t1" (compact: len+1) */
    0x00,                   /*   no tagged fields */
    0x00,                   /* allow_auto_topic_creation false */
    0x01,                   /* include_cluster_authorized_operations true */
    0x00,                   /* include_topic_authorized_operations false */
    0x01, 0x07, 0x02, 0xab, 0xcd, /* one unknown tagged field (tag 7, 2 bytes): skipped */
};

START_TEST(metadata_v9_request_decodes_every_field) {
    karena_t a;
    karena_init(&a);
    metadata_req_t r;
    kr_t rd = kr_init(metadata_v9_req, sizeof metadata_v9_req);
    ck_assert_int_eq(kmsg_decode(&metadata_req_schema, 9, true, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.topics.count, 1);
    ck_assert(kstr_eq_c(KARR_AT(r.topics, metadata_req_topic_t, 0)->name, "t1"));
    ck_assert(!r.allow_auto_topic_creation);
    ck_assert(r.include_cluster_authorized_operations);
    ck_assert(!r.include_topic_authorized_operations);
    karena_free(&a);
}
END_TEST

START_TEST(metadata_v9_request_truncated_is_refused) {
    karena_t a;
    karena_init(&a);
    metadata_req_t r;
    for (size_t n = 0; n < sizeof metadata_v9_req; n++) {
        kr_t rd = kr_init(metadata_v9_req, n);
        ck_assert_msg(kmsg_decode(&metadata_req_schema, 9, true, &rd, &r, &a) != 0, "accepted %zu bytes", n);
        karena_reset(&a);
    }
    karena_free(&a);
}
END_TEST

START_TEST(metadata_v9_request_null_topics_means_all) {
    static const uint8_t req[] = {0x00, 0x01, 0x00, 0x00, 0x00};
    karena_t a;
    karena_init(&a);
    metadata_req_t r;
    kr_t rd = kr_init(req, sizeof req);
    ck_assert_int_eq(kmsg_decode(&metadata_req_schema, 9, true, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.topics.count, -1);
    ck_assert(r.allow_auto_topic_creation);
    karena_free(&a);
}
END_TEST

/* v12: Topics[TopicId, Name (nullable), tags], AllowAutoTopicCreation,
 * IncludeTopicAuthorizedOperations (the cluster flag ended at v10), tags. */
START_TEST(metadata_v12_request_by_id_with_null_name) {
    static const uint8_t req[] = {
        0x02,
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* topic id */
        0x00,                                                   /* name null */
        0x00,
        0x01, /* allow_auto_topic_creation */
        0x01, /* include_topic_authorized_operations */
        0x00,
    };
    karena_t a;
    karena_init(&a);
    metadata_req_t r;
    kr_t rd = kr_init(req, sizeof req);
    ck_assert_int_eq(kmsg_decode(&metadata_req_schema, 12, true, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.topics.count, 1);
    const metadata_req_topic_t *t = KARR_AT(r.topics, metadata_req_topic_t, 0);
    ck_assert_int_eq(t->topic_id.b[0], 1);
    ck_assert_int_eq(t->topic_id.b[15], 16);
    ck_assert_int_eq(t->name.len, -1);
    ck_assert(r.allow_auto_topic_creation);
    ck_assert(!r.include_cluster_authorized_operations);
    ck_assert(r.include_topic_authorized_operations);
    karena_free(&a);
}
END_TEST

/* v0 response: Brokers[NodeId, Host, Port], Topics[ErrorCode, Name,
 * Partitions[ErrorCode, PartitionIndex, LeaderId, ReplicaNodes, IsrNodes]]. */
START_TEST(metadata_v0_response_encodes_bytes) {
    int32_t self = 7;
    metadata_resp_broker_t b = {.node_id = 7, .host = KSTR_LIT("h"), .port = 9092, .rack = KSTR_NULL};
    metadata_resp_partition_t p = {.partition_index = 0, .leader_id = 7, .leader_epoch = 3,
                                   .replica_nodes = {&self, 1}, .isr_nodes = {&self, 1}};
    metadata_resp_topic_t t = {.name = KSTR_LIT("t"), .partitions = {&p, 1}};
    metadata_resp_t resp;
    kmsg_defaults(&metadata_resp_schema, &resp);
    resp.brokers = (karray_t){&b, 1};
    resp.topics = (karray_t){&t, 1};
    resp.cluster_id = KSTR_LIT("c"); /* v2+: not written */
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x01,             /* 1 broker */
        0x00, 0x00, 0x00, 0x07,             /*   node_id */
        0x00, 0x01, 'h',                    /*   host */
        0x00, 0x00, 0x23, 0x84,             /*   port 9092 */
        0x00, 0x00, 0x00, 0x01,             /* 1 topic */
        0x00, 0x00,                         /*   error_code */
        0x00, 0x01, 't',                    /*   name */
        0x00, 0x00, 0x00, 0x01,             /*   1 partition */
        0x00, 0x00,                         /*     error_code */
        0x00, 0x00, 0x00, 0x00,             /*     partition_index */
        0x00, 0x00, 0x00, 0x07,             /*     leader_id */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, /* replicas [7] */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, /* isr [7] */
    };
    kw_t w;
    kw_init(&w, 64);
    ck_assert_int_eq(kmsg_encode(&metadata_resp_schema, 0, false, &w, &resp), 0);
    ck_assert_uint_eq(w.len, sizeof want);
    ck_assert_mem_eq(w.buf, want, sizeof want);
    kw_free(&w);
}
END_TEST

/* ---- CreateTopics / DeleteTopics ---- */

START_TEST(create_topics_v5_response_carries_tagged_config_error) {
    create_topics_resp_topic_t t = {
        .name = KSTR_LIT("t"), .error_code = 40, .error_message = KSTR_LIT("x"),
        .topic_config_error_code = 40, .num_partitions = -1, .replication_factor = -1, .configs = {NULL, 0},
    };
    create_topics_resp_t resp = {.throttle_time_ms = 0, .topics = {&t, 1}};
    static const uint8_t want5[] = {
        0x00, 0x00, 0x00, 0x00,       /* throttle_time_ms */
        0x02,                         /* 1 topic */
        0x02, 't',                    /*   name */
        0x00, 0x28,                   /*   error_code 40 */
        0x02, 'x',                    /*   error_message */
        0xff, 0xff, 0xff, 0xff,       /*   num_partitions -1 */
        0xff, 0xff,                   /*   replication_factor -1 */
        0x01,                         /*   configs: empty */
        0x01, 0x00, 0x02, 0x00, 0x28, /*   tags: TopicConfigErrorCode (tag 0) = 40 */
        0x00,                         /* no tagged fields */
    };
    kw_t w;
    kw_init(&w, 64);
    ck_assert_int_eq(kmsg_encode(&create_topics_resp_schema, 5, true, &w, &resp), 0);
    ck_assert_uint_eq(w.len, sizeof want5);
    ck_assert_mem_eq(w.buf, want5, sizeof want5);

    /* v7 adds the topic id after the name; a zero config error is left out. */
    kw_reset(&w);
    t.topic_config_error_code = 0;
    memset(t.topic_id.b, 0xaa, sizeof t.topic_id.b);
    ck_assert_int_eq(kmsg_encode(&create_topics_resp_schema, 7, true, &w, &resp), 0);
    ck_assert_uint_eq(w.len, sizeof want5 - 4 + 16);
    ck_assert_int_eq(w.buf[7], 0xaa);
    ck_assert_int_eq(w.buf[22], 0xaa);
    ck_assert_int_eq(w.buf[23], 0x00);
    ck_assert_int_eq(w.buf[w.len - 2], 0x00);
    kw_free(&w);
}
END_TEST

/* v1: Topics[Name, NumPartitions, ReplicationFactor, Assignments, Configs], TimeoutMs, ValidateOnly. */
START_TEST(create_topics_v1_request_decodes_every_field) {
    static const uint8_t req[] = {
        0x00, 0x00, 0x00, 0x01,
        0x00, 0x01, 'n',
        0xff, 0xff, 0xff, 0xff,                         /* num_partitions -1 */
        0xff, 0xff,                                     /* replication_factor -1 */
        0x00, 0x00, 0x00, 0x01,                         /* 1 assignment */
        0x00, 0x00, 0x00, 0x00,                         /*   partition 0 */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, /*   brokers [3] */
        0x00, 0x00, 0x00, 0x02,                         /* 2 configs */
        0x00, 0x01, 'k', 0x00, 0x01, 'v',
        0x00, 0x01, 'z', 0xff, 0xff,                    /*   value null */
        0x00, 0x00, 0x75, 0x30,                         /* timeout_ms 30000 */
        0x01,                                           /* validate_only */
    };
    karena_t a;
    karena_init(&a);
    create_topics_req_t r;
    kr_t rd = kr_init(req, sizeof req);
    ck_assert_int_eq(kmsg_decode(&create_topics_req_schema, 1, false, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.topics.count, 1);
    const create_topics_req_topic_t *t = KARR_AT(r.topics, create_topics_req_topic_t, 0);
    ck_assert(kstr_eq_c(t->name, "n"));
    ck_assert_int_eq(t->num_partitions, -1);
    ck_assert_int_eq(t->replication_factor, -1);
    ck_assert_int_eq(t->assignments.count, 1);
    const create_topics_req_assignment_t *as = KARR_AT(t->assignments, create_topics_req_assignment_t, 0);
    ck_assert_int_eq(as->broker_ids.count, 1);
    ck_assert_int_eq(*KARR_AT(as->broker_ids, int32_t, 0), 3);
    ck_assert_int_eq(t->configs.count, 2);
    ck_assert(kstr_eq_c(KARR_AT(t->configs, create_topics_req_config_t, 0)->value, "v"));
    ck_assert_int_eq(KARR_AT(t->configs, create_topics_req_config_t, 1)->value.len, -1);
    ck_assert_int_eq(r.timeout_ms, 30000);
    ck_assert(r.validate_only);
    karena_free(&a);
}
END_TEST

START_TEST(delete_topics_v3_and_v6_requests_decode) {
    static const uint8_t v3[] = {
        0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 'a', 0x00, 0x02, 'b', 'c', /* topic_names */
        0x00, 0x00, 0x03, 0xe8,                                        /* timeout_ms 1000 */
    };
    static const uint8_t v6[] = {
        0x03,                                   /* 2 topics */
        0x02, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, /* by name */
        0x00, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x22, 0x00, /* by id */
        0x00, 0x00, 0x03, 0xe8,
        0x00,
    };
    karena_t a;
    karena_init(&a);
    delete_topics_req_t r;
    kr_t rd = kr_init(v3, sizeof v3);
    ck_assert_int_eq(kmsg_decode(&delete_topics_req_schema, 3, false, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.topic_names.count, 2);
    ck_assert(kstr_eq_c(*KARR_AT(r.topic_names, kstr_t, 1), "bc"));
    ck_assert_int_eq(r.topics.count, 0);
    ck_assert_int_eq(r.timeout_ms, 1000);

    rd = kr_init(v6, sizeof v6);
    ck_assert_int_eq(kmsg_decode(&delete_topics_req_schema, 6, true, &rd, &r, &a), 0);
    ck_assert_int_eq(kr_left(&rd), 0);
    ck_assert_int_eq(r.topic_names.count, 0);
    ck_assert_int_eq(r.topics.count, 2);
    const delete_topics_req_topic_t *t0 = KARR_AT(r.topics, delete_topics_req_topic_t, 0);
    const delete_topics_req_topic_t *t1 = KARR_AT(r.topics, delete_topics_req_topic_t, 1);
    ck_assert(kstr_eq_c(t0->name, "a"));
    ck_assert_int_eq(t1->name.len, -1);
    ck_assert_int_eq(t1->topic_id.b[0], 0x11);
    ck_assert_int_eq(t1->topic_id.b[15], 0x22);
    ck_assert_int_eq(r.timeout_ms, 1000);
    karena_free(&a);
}
END_TEST

START_TEST(delete_topics_v6_response_null_name_v5_refuses_it) {
    delete_topics_resp_topic_t t = {.name = KSTR_NULL, .error_code = 100, .error_message = KSTR_NULL};
    t.topic_id.b[0] = 9;
    delete_topics_resp_t resp = {.responses = {&t, 1}};
    kw_t w;
    kw_init(&w, 64);
    ck_assert_int_eq(kmsg_encode(&delete_topics_resp_schema, 6, true, &w, &resp), 0);
    /* throttle(4) count(1) name-null(1) id(16) error(2) message-null(1) tags(1) tags(1) */
    ck_assert_uint_eq(w.len, 4 + 1 + 1 + 16 + 2 + 1 + 1 + 1);
    ck_assert_int_eq(w.buf[5], 0x00);
    ck_assert_int_eq(w.buf[6], 9);
    kw_reset(&w);
    ck_assert_int_ne(kmsg_encode(&delete_topics_resp_schema, 5, true, &w, &resp), 0);
    kw_free(&w);
}
END_TEST

/* ---- topic configs ---- */

START_TEST(topic_config_defaults_are_kafkas) {
    topic_config_t c;
    topic_config_defaults(&c);
    ck_assert(c.retention_ms == 604800000);
    ck_assert(c.retention_bytes == -1);
    ck_assert(c.segment_bytes == 4194304);
    ck_assert_int_eq(c.max_message_bytes, 1048588);
    ck_assert_str_eq(c.cleanup_policy, "delete");
    ck_assert_str_eq(c.compression_type, "producer");
    ck_assert_str_eq(c.timestamp_type, "CreateTime");
}
END_TEST

START_TEST(topic_config_set_validates_and_names_the_config) {
    topic_config_t c;
    topic_config_defaults(&c);
    const char *msg = NULL;
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("retention.ms"), KSTR_LIT(" 1000 "), &msg), KERR_NONE);
    ck_assert(c.retention_ms == 1000);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("retention.ms"), KSTR_LIT("-2"), &msg), KERR_INVALID_CONFIG);
    ck_assert_ptr_nonnull(strstr(msg, "retention.ms"));
    ck_assert(c.retention_ms == 1000);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("retention.ms"), KSTR_LIT("12x"), &msg), KERR_INVALID_CONFIG);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("foo.bar"), KSTR_LIT("1"), &msg), KERR_INVALID_CONFIG);
    ck_assert_str_eq(msg, "Unknown topic config name: foo.bar");
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("segment.bytes"), KSTR_LIT("13"), &msg), KERR_INVALID_CONFIG);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("segment.bytes"), KSTR_LIT("2147483648"), &msg),
                     KERR_INVALID_CONFIG);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("segment.bytes"), KSTR_LIT("14"), &msg), KERR_NONE);
    ck_assert(c.segment_bytes == 14);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("compression.type"), KSTR_LIT("ZSTD"), &msg),
                     KERR_INVALID_CONFIG);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("compression.type"), KSTR_LIT("zstd"), &msg), KERR_NONE);
    ck_assert_str_eq(c.compression_type, "zstd");
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("cleanup.policy"), KSTR_LIT("compact, delete,compact"), &msg),
                     KERR_NONE);
    ck_assert_str_eq(c.cleanup_policy, "compact,delete");
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("cleanup.policy"), KSTR_LIT(""), &msg), KERR_INVALID_CONFIG);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("message.timestamp.type"), KSTR_LIT("LogAppendTime"), &msg),
                     KERR_NONE);
    ck_assert_str_eq(c.timestamp_type, "LogAppendTime");
    /* Accepted but not stored. */
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("min.insync.replicas"), KSTR_LIT("0"), &msg),
                     KERR_INVALID_CONFIG);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("min.insync.replicas"), KSTR_LIT("2"), &msg), KERR_NONE);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("min.cleanable.dirty.ratio"), KSTR_LIT("1.5"), &msg),
                     KERR_INVALID_CONFIG);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("preallocate"), KSTR_LIT("TRUE"), &msg), KERR_NONE);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("leader.replication.throttled.replicas"), KSTR_LIT("0:1, 1:1"),
                                      &msg), KERR_NONE);
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("leader.replication.throttled.replicas"), KSTR_LIT("x"), &msg),
                     KERR_INVALID_CONFIG);
    /* A null value restores the default. */
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("retention.ms"), KSTR_NULL, &msg), KERR_NONE);
    ck_assert(c.retention_ms == 604800000);
}
END_TEST

typedef struct seen {
    int n;
    char last[64];
    bool sorted;
    bool retention_default;
    char retention[32];
} seen_t;

static void collect(void *arg, const char *name, const char *value, bool is_default) {
    seen_t *s = arg;
    if (s->n && strcmp(s->last, name) >= 0) s->sorted = false;
    snprintf(s->last, sizeof s->last, "%s", name);
    if (strcmp(name, "retention.ms") == 0) {
        s->retention_default = is_default;
        snprintf(s->retention, sizeof s->retention, "%s", value);
    }
    s->n++;
}

START_TEST(topic_config_describe_lists_every_config_sorted) {
    topic_config_t c;
    topic_config_defaults(&c);
    seen_t s = {.sorted = true};
    int n = topic_config_describe(&c, collect, &s);
    ck_assert_int_eq(n, s.n);
    ck_assert_int_ge(n, 25);
    ck_assert(s.sorted);
    ck_assert(s.retention_default);
    ck_assert_str_eq(s.retention, "604800000");
    ck_assert_int_eq(topic_config_set(&c, KSTR_LIT("retention.ms"), KSTR_LIT("-1"), NULL), KERR_NONE);
    s = (seen_t){.sorted = true};
    topic_config_describe(&c, collect, &s);
    ck_assert(!s.retention_default);
    ck_assert_str_eq(s.retention, "-1");
    ck_assert(topic_config_known(KSTR_LIT("segment.ms")));
    ck_assert(!topic_config_known(KSTR_LIT("segment")));
}
END_TEST

Suite *msg_topics_suite(void) {
    Suite *s = suite_create("msg_topics");
    TCase *tc = tcase_create("metadata");
    tcase_add_test(tc, metadata_v0_request_decodes_every_field);
    tcase_add_test(tc, metadata_v0_request_refuses_null_array_v1_accepts_it);
    tcase_add_test(tc, metadata_v9_request_decodes_every_field);
    tcase_add_test(tc, metadata_v9_request_truncated_is_refused);
    tcase_add_test(tc, metadata_v9_request_null_topics_means_all);
    tcase_add_test(tc, metadata_v12_request_by_id_with_null_name);
    tcase_add_test(tc, metadata_v0_response_encodes_bytes);
    suite_add_tcase(s, tc);
    tc = tcase_create("create_delete");
    tcase_add_test(tc, create_topics_v5_response_carries_tagged_config_error);
    tcase_add_test(tc, create_topics_v1_request_decodes_every_field);
    tcase_add_test(tc, delete_topics_v3_and_v6_requests_decode);
    tcase_add_test(tc, delete_topics_v6_response_null_name_v5_refuses_it);
    suite_add_tcase(s, tc);
    tc = tcase_create("topic_config");
    tcase_add_test(tc, topic_config_defaults_are_kafkas);
    tcase_add_test(tc, topic_config_set_validates_and_names_the_config);
    tcase_add_test(tc, topic_config_describe_lists_every_config_sorted);
    suite_add_tcase(s, tc);
    return s;
}
