/* test_etcd.c - unit tests of the etcd client's pure parts (common/etcd.c)
 * and of the protobuf metadata encodings (common/meta_pb.c).
 *
 *   - base64 (RFC 4648 vectors, every length, refusals), prefix ends
 *   - request bodies as the gateway expects them
 *   - answer parsing: ranges, txns, and the mapping of etcd's errors
 *     (bodies copied from a real etcd 3.4 gateway)
 *   - the watch stream parser on canned bytes, split every possible way,
 *     and the resume state machine (next revision, duplicates, compaction,
 *     token refusal)
 *   - the retry loop against a scripted fake gateway on loopback: failover,
 *     re-authentication with a new token, and a put whose answer never came
 *     is not repeated (ETCD_ERR_UNKNOWN) while a range is
 *   - TopicConfig / SegmentInfo round trips, values written by another
 *     implementation (typed configs, no topic id), and malformed values
 * The end-to-end test against a real etcd is test/e2e/test_etcd_client.py.
 */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "etcd.h"
#include "kafscale/metadata.pb-c.h"
#include "meta_pb.h"

/* ---- base64 ---- */

START_TEST(b64_matches_rfc4648_vectors) {
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        size_t n = etcd_b64_encode(plain[i], strlen(plain[i]), out);
        ck_assert_uint_eq(n, etcd_b64_encoded_len(strlen(plain[i])));
        ck_assert_str_eq(out, enc[i]);
        uint8_t dec[16];
        long d = etcd_b64_decode(enc[i], strlen(enc[i]), dec);
        ck_assert_int_eq(d, (long)strlen(plain[i]));
        ck_assert(memcmp(dec, plain[i], (size_t)d) == 0);
    }
    /* the gateway's own encodings of "foo" / "bar" and a missing padding */
    uint8_t dec[8];
    ck_assert_int_eq(etcd_b64_decode("Zm8", 3, dec), 2);
    ck_assert(memcmp(dec, "fo", 2) == 0);
}
END_TEST

START_TEST(b64_round_trips_every_byte_and_length) {
    uint8_t in[300], dec[300];
    char enc[420];
    for (int i = 0; i < 300; i++) in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= 300; n++) {
        size_t e = etcd_b64_encode(in, n, enc);
        ck_assert_uint_eq(strlen(enc), e);
        ck_assert(etcd_b64_decoded_max(e) >= n);
        ck_assert_int_eq(etcd_b64_decode(enc, e, dec), (long)n);
        ck_assert(memcmp(in, dec, n) == 0);
    }
}
END_TEST

START_TEST(b64_refuses_what_is_not_base64) {
    static const char *const bad[] = {
        "Z",        /* 6 bits cannot end a byte string */
        "Zm9v Zg==", /* whitespace */
        "Zm9v\n",
        "Zg=a",     /* data after padding */
        "Z===",     /* three '=' */
        "Zh==",     /* non-canonical trailing bits */
        "Zm-v",     /* URL-safe alphabet */
        "Zm9vY=",   /* padding that does not complete a quad */
    };
    uint8_t out[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(etcd_b64_decode(bad[i], strlen(bad[i]), out) == -1, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(prefix_end_increments_the_last_byte_below_ff) {
    uint8_t out[8];
    ck_assert_uint_eq(etcd_prefix_end("abc", 3, out), 3);
    ck_assert(memcmp(out, "abd", 3) == 0);
    ck_assert_uint_eq(etcd_prefix_end("a\xff\xff", 3, out), 1);
    ck_assert_int_eq(out[0], 'b');
    ck_assert_uint_eq(etcd_prefix_end("\xff\xff", 2, out), 1);
    ck_assert_int_eq(out[0], 0);
    ck_assert_uint_eq(etcd_prefix_end("", 0, out), 1);
    ck_assert_int_eq(out[0], 0);
}
END_TEST

START_TEST(endpoints_parse_and_refuse) {
    etcd_config_t cfg;
    char err[256];
    etcd_config_defaults(&cfg);
    ck_assert_int_eq(etcd_config_set_endpoints(&cfg, " 127.0.0.1:2379, http://h:1/ ,https://x.example:2379", err,
                                               sizeof err), 0);
    ck_assert_int_eq(cfg.nendpoints, 3);
    ck_assert_str_eq(cfg.endpoints[0], "http://127.0.0.1:2379");
    ck_assert_str_eq(cfg.endpoints[1], "http://h:1");
    ck_assert_str_eq(cfg.endpoints[2], "https://x.example:2379");
    ck_assert_int_eq(etcd_config_set_endpoints(&cfg, "", err, sizeof err), -1);
    ck_assert_int_eq(etcd_config_set_endpoints(&cfg, " , ", err, sizeof err), -1);
    ck_assert_int_eq(etcd_config_set_endpoints(&cfg, "unix://x", err, sizeof err), -1);
    ck_assert_int_eq(etcd_config_set_endpoints(&cfg, "http://u:hunter2@h:1", err, sizeof err), -1);
    ck_assert_ptr_null(strstr(err, "hunter2"));
    ck_assert_int_eq(etcd_config_set_endpoints(&cfg, "http://h:1/v3", err, sizeof err), -1);
    char many[1024] = "";
    for (int i = 0; i < ETCD_MAX_ENDPOINTS + 1; i++) strcat(many, "h:1,");
    ck_assert_int_eq(etcd_config_set_endpoints(&cfg, many, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "more than"));

    /* open refuses bad configurations without any I/O */
    etcd_config_defaults(&cfg);
    ck_assert_ptr_null(etcd_open(&cfg, err, sizeof err));
    etcd_config_set_endpoints(&cfg, "h:1", err, sizeof err);
    snprintf(cfg.password, sizeof cfg.password, "secret");
    ck_assert_ptr_null(etcd_open(&cfg, err, sizeof err));
    ck_assert_ptr_null(strstr(err, "secret"));
    cfg.password[0] = '\0';
    snprintf(cfg.ca_file, sizeof cfg.ca_file, "/nonexistent/ca.pem");
    ck_assert_ptr_null(etcd_open(&cfg, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/ca.pem"));
}
END_TEST

/* ---- request bodies ---- */

static json_t *load(const char *s) {
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    ck_assert_msg(j != NULL, "bad JSON: %s: %s", je.text, s);
    return j;
}

static const char *jstr(json_t *o, const char *path) {
    /* "a.b.c" into nested objects */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *save, *p = strtok_r(buf, ".", &save); p; p = strtok_r(NULL, ".", &save)) cur = json_object_get(cur, p);
    return json_is_string(cur) ? json_string_value(cur) : json_is_true(cur) ? "true" : NULL;
}

START_TEST(range_body_has_base64_keys_and_string_int64s) {
    uint8_t end[8];
    size_t elen = etcd_prefix_end("/p/", 3, end);
    etcd_range_req_t r = {.key = "/p/", .key_len = 3, .range_end = end, .range_end_len = elen,
                          .revision = 9007199254740993LL, .limit = 2, .keys_only = true};
    char *s = etcd_json_range(&r);
    ck_assert_ptr_nonnull(s);
    json_t *j = load(s);
    ck_assert_str_eq(jstr(j, "key"), "L3Av");        /* "/p/" */
    ck_assert_str_eq(jstr(j, "range_end"), "L3Aw");  /* "/p0" */
    ck_assert_str_eq(jstr(j, "revision"), "9007199254740993"); /* exact beyond 2^53 */
    ck_assert_str_eq(jstr(j, "limit"), "2");
    ck_assert_str_eq(jstr(j, "keys_only"), "true");
    ck_assert_ptr_null(json_object_get(j, "count_only"));
    json_decref(j);
    free(s);
    r.key_len = 0; /* etcd refuses an empty key: so do we, before sending */
    ck_assert_ptr_null(etcd_json_range(&r));
}
END_TEST

START_TEST(put_body_carries_value_and_lease) {
    char *s = etcd_json_put("foo", 3, "bar", 3, 7587883212445164545LL);
    json_t *j = load(s);
    ck_assert_str_eq(jstr(j, "key"), "Zm9v");
    ck_assert_str_eq(jstr(j, "value"), "YmFy");
    ck_assert_str_eq(jstr(j, "lease"), "7587883212445164545");
    json_decref(j);
    free(s);
    s = etcd_json_put("k", 1, NULL, 0, 0); /* an empty value, no lease */
    j = load(s);
    ck_assert_str_eq(jstr(j, "value"), "");
    ck_assert_ptr_null(json_object_get(j, "lease"));
    json_decref(j);
    free(s);
}
END_TEST

START_TEST(txn_body_has_every_compare_and_op) {
    etcd_cmp_t cmps[] = {
        {.target = ETCD_CMP_VALUE, .op = ETCD_CMP_EQUAL, .key = "a", .key_len = 1, .value = "x", .value_len = 1},
        {.target = ETCD_CMP_VERSION, .op = ETCD_CMP_GREATER, .key = "b", .key_len = 1, .number = 0},
        {.target = ETCD_CMP_CREATE, .op = ETCD_CMP_EQUAL, .key = "c", .key_len = 1, .number = 0},
        {.target = ETCD_CMP_MOD, .op = ETCD_CMP_LESS, .key = "d", .key_len = 1, .number = 42},
        {.target = ETCD_CMP_LEASE, .op = ETCD_CMP_NOT_EQUAL, .key = "e", .key_len = 1, .number = 5},
    };
    etcd_op_t ok[] = {
        {.kind = ETCD_OP_PUT, .key = "a", .key_len = 1, .value = "y", .value_len = 1, .lease = 5},
        {.kind = ETCD_OP_DELETE, .key = "p", .key_len = 1, .range_end = "q", .range_end_len = 1},
    };
    etcd_op_t ko[] = {{.kind = ETCD_OP_RANGE, .key = "a", .key_len = 1, .limit = 1}};
    char *s = etcd_json_txn(cmps, 5, ok, 2, ko, 1);
    ck_assert_ptr_nonnull(s);
    json_t *j = load(s), *c = json_object_get(j, "compare");
    ck_assert_uint_eq(json_array_size(c), 5);
    static const char *const want[5][4] = {
        {"VALUE", "EQUAL", "value", "eA=="}, {"VERSION", "GREATER", "version", "0"},
        {"CREATE", "EQUAL", "create_revision", "0"}, {"MOD", "LESS", "mod_revision", "42"},
        {"LEASE", "NOT_EQUAL", "lease", "5"},
    };
    for (int i = 0; i < 5; i++) {
        json_t *ci = json_array_get(c, (size_t)i);
        ck_assert_str_eq(jstr(ci, "target"), want[i][0]);
        ck_assert_str_eq(jstr(ci, "result"), want[i][1]);
        ck_assert_str_eq(jstr(ci, want[i][2]), want[i][3]);
    }
    json_t *succ = json_object_get(j, "success"), *fail = json_object_get(j, "failure");
    ck_assert_str_eq(jstr(json_array_get(succ, 0), "request_put.value"), "eQ==");
    ck_assert_str_eq(jstr(json_array_get(succ, 0), "request_put.lease"), "5");
    ck_assert_str_eq(jstr(json_array_get(succ, 1), "request_delete_range.range_end"), "cQ==");
    ck_assert_str_eq(jstr(json_array_get(fail, 0), "request_range.limit"), "1");
    json_decref(j);
    free(s);
    /* an empty branch is an empty array; a bad target is refused */
    s = etcd_json_txn(NULL, 0, NULL, 0, NULL, 0);
    ck_assert_str_eq(s, "{\"compare\":[],\"success\":[],\"failure\":[]}");
    free(s);
    etcd_cmp_t bad = cmps[0];
    bad.target = ETCD_CMP_TARGET_MAX;
    ck_assert_ptr_null(etcd_json_txn(&bad, 1, NULL, 0, NULL, 0));
}
END_TEST

START_TEST(watch_create_body) {
    etcd_watch_req_t r = {.key = "/w/", .key_len = 3, .range_end = "/w0", .range_end_len = 3, .prev_kv = true};
    char *s = etcd_json_watch_create(&r, 17);
    json_t *j = load(s);
    ck_assert_str_eq(jstr(j, "create_request.key"), "L3cv");
    ck_assert_str_eq(jstr(j, "create_request.range_end"), "L3cw");
    ck_assert_str_eq(jstr(j, "create_request.start_revision"), "17");
    ck_assert_str_eq(jstr(j, "create_request.prev_kv"), "true");
    json_decref(j);
    free(s);
    s = etcd_json_watch_create(&r, 0); /* from now: no start_revision */
    ck_assert_ptr_null(strstr(s, "start_revision"));
    free(s);
}
END_TEST

/* ---- answers ---- */

#define HDR "\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\",\"revision\":\"9\",\"raft_term\":\"2\"}"

START_TEST(range_answer_parses) {
    const char *body = "{" HDR ",\"kvs\":[{\"key\":\"L3AvYQ==\",\"create_revision\":\"7\",\"mod_revision\":\"8\","
                       "\"version\":\"2\",\"value\":\"MQ==\",\"lease\":\"7587883212445164545\"},"
                       "{\"key\":\"L3AvYg==\",\"createRevision\":\"5\",\"modRevision\":6,\"version\":\"1\"}],"
                       "\"more\":true,\"count\":\"3\"}";
    etcd_range_result_t r;
    char err[256];
    ck_assert_int_eq(etcd_parse_range(body, strlen(body), &r, err, sizeof err), ETCD_OK);
    ck_assert_int_eq(r.nkvs, 2);
    ck_assert_int_eq(r.revision, 9);
    ck_assert_int_eq(r.count, 3);
    ck_assert(r.more);
    ck_assert_str_eq((char *)r.kvs[0].key, "/p/a");
    ck_assert_uint_eq(r.kvs[0].value_len, 1);
    ck_assert_str_eq((char *)r.kvs[0].value, "1");
    ck_assert_int_eq(r.kvs[0].create_revision, 7);
    ck_assert_int_eq(r.kvs[0].mod_revision, 8);
    ck_assert_int_eq(r.kvs[0].version, 2);
    ck_assert(r.kvs[0].lease == 7587883212445164545LL);
    /* camelCase names (other gateway versions), numbers instead of strings, no value */
    ck_assert_int_eq(r.kvs[1].create_revision, 5);
    ck_assert_int_eq(r.kvs[1].mod_revision, 6);
    ck_assert_uint_eq(r.kvs[1].value_len, 0);
    ck_assert_str_eq((char *)r.kvs[1].value, "");
    etcd_range_result_free(&r);

    const char *empty = "{" HDR "}"; /* no key: no kvs, count omitted */
    ck_assert_int_eq(etcd_parse_range(empty, strlen(empty), &r, err, sizeof err), ETCD_OK);
    ck_assert_int_eq(r.nkvs, 0);
    ck_assert_int_eq(r.count, 0);
    ck_assert_int_eq(r.revision, 9);
    etcd_range_result_free(&r);
}
END_TEST

START_TEST(malformed_answers_are_protocol_errors) {
    static const char *const bad[] = {
        "not json",
        "[1,2]",
        "{" HDR ",\"kvs\":{}}",
        "{" HDR ",\"kvs\":[{\"key\":\"!!!\"}]}",
        "{" HDR ",\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"12x\"}]}",
        "{\"header\":{\"revision\":true}}",
        "{" HDR ",\"count\":[]}",
    };
    etcd_range_result_t r;
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(etcd_parse_range(bad[i], strlen(bad[i]), &r, err, sizeof err) == ETCD_ERR_PROTO, "%s", bad[i]);
        ck_assert_int_eq(r.nkvs, 0);
        ck_assert_ptr_null(r.kvs);
    }
}
END_TEST

START_TEST(etcd_errors_map_to_statuses) {
    static const struct { const char *body; int st, code; } cases[] = {
        {"{\"error\":\"etcdserver: mvcc: required revision has been compacted\",\"message\":\"etcdserver: mvcc: "
         "required revision has been compacted\",\"code\":11}", ETCD_ERR_COMPACTED, 11},
        {"{\"error\":\"etcdserver: mvcc: required revision is a future revision\",\"code\":11}", ETCD_ERR_FUTURE_REV,
         11},
        {"{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested lease not found\","
         "\"code\":5}", ETCD_ERR_NOT_FOUND, 5},
        {"{\"error\":\"etcdserver: invalid auth token\",\"message\":\"etcdserver: invalid auth token\",\"code\":16}",
         ETCD_ERR_AUTH, 16},
        {"{\"error\":\"etcdserver: user name is empty\",\"message\":\"etcdserver: user name is empty\",\"code\":3}",
         ETCD_ERR_AUTH, 3},
        {"{\"error\":\"etcdserver: authentication failed, invalid user ID or password\",\"code\":3}", ETCD_ERR_AUTH,
         3},
        {"{\"error\":\"etcdserver: permission denied\",\"code\":7}", ETCD_ERR_AUTH, 7},
        {"{\"error\":\"etcdserver: key is not provided\",\"code\":3}", ETCD_ERR_INVALID, 3},
        {"{\"error\":\"etcdserver: no leader\",\"code\":14}", ETCD_ERR_UNAVAILABLE, 14},
        {"{\"error\":\"etcdserver: request timed out\",\"code\":14}", ETCD_ERR_UNKNOWN, 14},
        {"{\"error\":\"unexpected EOF\",\"message\":\"unexpected EOF\",\"code\":3}", ETCD_ERR_INVALID, 3},
        /* the stream form */
        {"{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
         "\"http_status\":\"Service Unavailable\"}}", ETCD_ERR_UNAVAILABLE, 14},
        {"{\"error\":\"etcdserver: something new\",\"code\":13}", ETCD_ERR_SERVER, 13},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        int code = -1;
        int st = etcd_parse_error(cases[i].body, strlen(cases[i].body), &code, err, sizeof err);
        ck_assert_msg(st == cases[i].st, "%s -> %s", cases[i].body, etcd_status_name(st));
        ck_assert_int_eq(code, cases[i].code);
        ck_assert(err[0] != '\0');
        /* an error body given to a parser is that error, never a result */
        etcd_range_result_t r;
        ck_assert_int_eq(etcd_parse_range(cases[i].body, strlen(cases[i].body), &r, err, sizeof err), cases[i].st);
    }
    char err[256];
    const char *ok = "{" HDR "}";
    ck_assert_int_eq(etcd_parse_error(ok, strlen(ok), NULL, err, sizeof err), ETCD_ERR_PROTO);
}
END_TEST

START_TEST(txn_answers_parse) {
    const char *won = "{" HDR ",\"succeeded\":true,\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"2\"},"
                      "\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\","
                      "\"value\":\"YmFy\"}],\"count\":\"1\"}},{\"response_put\":{\"header\":{\"revision\":\"3\"}}},"
                      "{\"response_delete_range\":{\"header\":{\"revision\":\"3\"},\"deleted\":\"2\"}}]}";
    etcd_txn_result_t t;
    char err[256];
    ck_assert_int_eq(etcd_parse_txn(won, strlen(won), &t, err, sizeof err), ETCD_OK);
    ck_assert(t.succeeded);
    ck_assert_int_eq(t.revision, 9);
    ck_assert_int_eq(t.nresults, 3);
    ck_assert_int_eq(t.results[0].kind, ETCD_OP_RANGE);
    ck_assert_int_eq(t.results[0].range.nkvs, 1);
    ck_assert_str_eq((char *)t.results[0].range.kvs[0].value, "bar");
    ck_assert_int_eq(t.results[1].kind, ETCD_OP_PUT);
    ck_assert_int_eq(t.results[2].kind, ETCD_OP_DELETE);
    ck_assert_int_eq(t.results[2].deleted, 2);
    etcd_txn_result_free(&t);

    /* a failed txn: "succeeded" omitted (proto3 default), empty delete */
    const char *lost = "{" HDR ",\"responses\":[{\"response_delete_range\":{\"header\":{\"revision\":\"3\"}}}]}";
    ck_assert_int_eq(etcd_parse_txn(lost, strlen(lost), &t, err, sizeof err), ETCD_OK);
    ck_assert(!t.succeeded);
    ck_assert_int_eq(t.nresults, 1);
    ck_assert_int_eq(t.results[0].deleted, 0);
    etcd_txn_result_free(&t);

    const char *odd = "{" HDR ",\"responses\":[{\"response_txn\":{}}]}"; /* we never send nested txns */
    ck_assert_int_eq(etcd_parse_txn(odd, strlen(odd), &t, err, sizeof err), ETCD_ERR_PROTO);
    ck_assert_int_eq(t.nresults, 0);
}
END_TEST

/* ---- watch stream ---- */

/* What a real etcd 3.4 gateway streamed for: a watch created at revision 4,
 * a PUT, a DELETE, a progress answer, then a compaction cancel. */
static const char stream[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
    "\"revision\":\"4\",\"raft_term\":\"2\"},\"created\":true}}\n"
    "{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"kv\":{\"key\":\"d2Ex\",\"create_revision\":\"5\","
    "\"mod_revision\":\"5\",\"version\":\"1\",\"value\":\"MQ==\"}}]}}\n"
    "{\"result\":{\"header\":{\"revision\":\"6\"},\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"d2Ex\","
    "\"mod_revision\":\"6\"},\"prev_kv\":{\"key\":\"d2Ex\",\"value\":\"e30=\",\"mod_revision\":\"5\"}}]}}\n"
    "{\"result\":{\"header\":{\"revision\":\"8\"},\"watch_id\":\"-1\"}}\n"
    "{\"result\":{\"header\":{\"cluster_id\":\"1\",\"raft_term\":\"2\"},\"canceled\":true,"
    "\"compact_revision\":\"3\"}}\n";

typedef struct rec {
    char log[1024];
    int n, stop_at;
    int64_t next;
} rec_t;

static int rec_resp(void *arg, etcd_watch_resp_t *r) {
    rec_t *x = arg;
    etcd_watch_action_t a = etcd_watch_step(&x->next, r);
    size_t l = strlen(x->log);
    snprintf(x->log + l, sizeof x->log - l, "[a%d n%lld", (int)a, (long long)x->next);
    for (int i = 0; i < r->nevents; i++) {
        l = strlen(x->log);
        snprintf(x->log + l, sizeof x->log - l, " %s:%s=%s@%lld%s%s", r->events[i].type ? "DEL" : "PUT",
                 (char *)r->events[i].kv.key, (char *)r->events[i].kv.value, (long long)r->events[i].kv.mod_revision,
                 r->events[i].has_prev ? " prev=" : "", r->events[i].has_prev ? (char *)r->events[i].prev_kv.value : "");
    }
    strcat(x->log, "]");
    x->n++;
    return x->stop_at && x->n == x->stop_at ? 7 : 0;
}

#define WANT_LOG "[a0 n5][a1 n6 PUT:wa1=1@5][a1 n7 DEL:wa1=@6 prev={}][a0 n9][a2 n9]"

START_TEST(watch_stream_parses_whole_and_in_any_split) {
    size_t n = strlen(stream);
    char err[256];
    /* whole */
    rec_t x = {.next = 0};
    etcd_wparser_t *p = etcd_wparser_new(0);
    ck_assert_int_eq(etcd_wparser_feed(p, stream, n, rec_resp, &x, err, sizeof err), 0);
    ck_assert_str_eq(x.log, WANT_LOG);
    /* byte by byte */
    memset(&x, 0, sizeof x);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(etcd_wparser_feed(p, stream + i, 1, rec_resp, &x, err, sizeof err), 0);
    ck_assert_str_eq(x.log, WANT_LOG);
    /* every split into two pieces */
    for (size_t cut = 0; cut <= n; cut++) {
        memset(&x, 0, sizeof x);
        ck_assert_int_eq(etcd_wparser_feed(p, stream, cut, rec_resp, &x, err, sizeof err), 0);
        ck_assert_int_eq(etcd_wparser_feed(p, stream + cut, n - cut, rec_resp, &x, err, sizeof err), 0);
        ck_assert_str_eq(x.log, WANT_LOG);
    }
    etcd_wparser_free(p);
}
END_TEST

START_TEST(watch_stream_objects_back_to_back_and_braces_in_strings) {
    /* no newlines between objects; a cancel reason with braces, quotes and escapes */
    const char *s = "{\"result\":{\"header\":{\"revision\":\"4\"},\"created\":true}}"
                    "{\"result\":{\"header\":{\"revision\":\"4\"},\"canceled\":true,"
                    "\"cancel_reason\":\"odd } { \\\" \\\\\"}}  \r\n";
    char err[256];
    rec_t x = {.next = 0};
    etcd_wparser_t *p = etcd_wparser_new(0);
    ck_assert_int_eq(etcd_wparser_feed(p, s, strlen(s), rec_resp, &x, err, sizeof err), 0);
    ck_assert_str_eq(x.log, "[a0 n5][a4 n5]");
    etcd_wparser_free(p);
}
END_TEST

START_TEST(watch_stream_refuses_garbage_and_oversized_messages) {
    char err[256];
    rec_t x = {.next = 0};
    etcd_wparser_t *p = etcd_wparser_new(64);
    ck_assert_int_eq(etcd_wparser_feed(p, "404 page not found", 18, rec_resp, &x, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "unexpected byte"));
    etcd_wparser_reset(p);
    ck_assert_int_eq(etcd_wparser_feed(p, "{\"a\":1,}", 8, rec_resp, &x, err, sizeof err), -1); /* bad JSON */
    ck_assert_ptr_nonnull(strstr(err, "bad JSON"));
    etcd_wparser_reset(p);
    char big[200];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    ck_assert_int_eq(etcd_wparser_feed(p, big, sizeof big, rec_resp, &x, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "larger than"));
    /* a partial object is dropped by reset (a new connection) */
    etcd_wparser_reset(p);
    ck_assert_int_eq(etcd_wparser_feed(p, "{\"result\":{", 11, rec_resp, &x, err, sizeof err), 0);
    etcd_wparser_reset(p);
    const char *ok = "{\"result\":{\"header\":{\"revision\":\"4\"},\"created\":true}}";
    ck_assert_int_eq(etcd_wparser_feed(p, ok, strlen(ok), rec_resp, &x, err, sizeof err), 0);
    ck_assert_str_eq(x.log, "[a0 n5]");
    /* a callback's stop value comes back */
    memset(&x, 0, sizeof x);
    x.stop_at = 2;
    etcd_wparser_free(p);
    p = etcd_wparser_new(0);
    ck_assert_int_eq(etcd_wparser_feed(p, stream, strlen(stream), rec_resp, &x, err, sizeof err), 7);
    ck_assert_int_eq(x.n, 2);
    etcd_wparser_free(p);
}
END_TEST

START_TEST(watch_step_resumes_without_duplicates) {
    /* resumed at 6 after a reconnect: a history replay that starts earlier
     * delivers only revisions >= 6 */
    const char *s = "{\"result\":{\"header\":{\"revision\":\"9\"},\"created\":true}}\n"
                    "{\"result\":{\"header\":{\"revision\":\"9\"},\"events\":["
                    "{\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"5\",\"value\":\"MQ==\"}},"
                    "{\"kv\":{\"key\":\"Yg==\",\"mod_revision\":\"6\",\"value\":\"Mg==\"}},"
                    "{\"kv\":{\"key\":\"Yw==\",\"mod_revision\":\"8\",\"value\":\"Mw==\"}}]}}\n"
                    "{\"result\":{\"header\":{\"revision\":\"9\"},\"events\":["
                    "{\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"8\",\"value\":\"MQ==\"}}]}}\n";
    char err[256];
    rec_t x = {.next = 6};
    etcd_wparser_t *p = etcd_wparser_new(0);
    ck_assert_int_eq(etcd_wparser_feed(p, s, strlen(s), rec_resp, &x, err, sizeof err), 0);
    /* created keeps the given start; 5 dropped; a repeat of 8 dropped */
    ck_assert_str_eq(x.log, "[a0 n6][a1 n9 PUT:b=2@6 PUT:c=3@8][a0 n9]");
    etcd_wparser_free(p);

    /* errors and cancels */
    etcd_watch_resp_t r = {.is_error = true, .error_code = 16};
    int64_t next = 10;
    snprintf(r.error_msg, sizeof r.error_msg, "etcdserver: invalid auth token");
    ck_assert_int_eq(etcd_watch_step(&next, &r), ETCD_WA_REAUTH);
    snprintf(r.error_msg, sizeof r.error_msg, "etcdserver: no leader");
    ck_assert_int_eq(etcd_watch_step(&next, &r), ETCD_WA_RECONNECT);
    memset(&r, 0, sizeof r);
    r.canceled = r.created = true;
    snprintf(r.cancel_reason, sizeof r.cancel_reason,
             "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token");
    ck_assert_int_eq(etcd_watch_step(&next, &r), ETCD_WA_REAUTH);
    snprintf(r.cancel_reason, sizeof r.cancel_reason, "rpc error: code = PermissionDenied");
    ck_assert_int_eq(etcd_watch_step(&next, &r), ETCD_WA_RECONNECT);
    r.compact_revision = 12;
    ck_assert_int_eq(etcd_watch_step(&next, &r), ETCD_WA_COMPACTED);
    ck_assert_int_eq(next, 10); /* the caller decides where to resume */
}
END_TEST

/* ---- the retry loop against a scripted fake gateway ---- */

typedef struct fake {
    int lfd, port;
    pthread_t thr;
    atomic_int requests, auths, ranges, puts;
    /* behaviour */
    int close_puts;          /* close the connection after reading this many puts */
    int close_ranges;        /* same for ranges */
    char good_token[32];     /* the token range/put accept; auth hands out "tok<N>" */
    char last_auth_header[64];
} fake_t;

static void reply(int fd, int code, const char *body) {
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", code,
                     strlen(body), body);
    ck_assert(write(fd, buf, (size_t)n) == n);
}

typedef struct fake_conn {
    fake_t *f;
    int fd;
} fake_conn_t;

/* One connection, on its own thread (the client keeps connections alive
 * and opens new ones beside them). */
static void *fake_conn_main(void *arg) {
    fake_conn_t *fc = arg;
    fake_t *f = fc->f;
    int fd = fc->fd;
    free(fc);
    {
        for (;;) { /* keep-alive: several requests per connection */
            char req[8192];
            size_t len = 0;
            char *hdr_end = NULL;
            while (!hdr_end && len < sizeof req - 1) {
                ssize_t r = read(fd, req + len, sizeof req - 1 - len);
                if (r <= 0) break;
                len += (size_t)r;
                req[len] = '\0';
                hdr_end = strstr(req, "\r\n\r\n");
            }
            if (!hdr_end) break;
            const char *cl = strcasestr(req, "Content-Length:");
            size_t body_len = cl ? (size_t)atoi(cl + 15) : 0, have = len - (size_t)(hdr_end + 4 - req);
            while (have < body_len && len < sizeof req - 1) {
                ssize_t r = read(fd, req + len, sizeof req - 1 - len);
                if (r <= 0) break;
                len += (size_t)r;
                have += (size_t)r;
            }
            req[len] = '\0';
            atomic_fetch_add(&f->requests, 1);
            const char *auth = strcasestr(req, "\r\nAuthorization: ");
            char token[64] = "";
            if (auth) sscanf(auth + 17, "%63[^\r]", token);
            snprintf(f->last_auth_header, sizeof f->last_auth_header, "%s", token);
            if (strstr(req, "POST /v3/auth/authenticate ")) {
                int n = atomic_fetch_add(&f->auths, 1) + 1;
                if (!strstr(req, "\"password\":\"pw\"")) {
                    reply(fd, 400, "{\"error\":\"etcdserver: authentication failed, invalid user ID or password\","
                                   "\"code\":3}");
                    continue;
                }
                snprintf(f->good_token, sizeof f->good_token, "tok%d", n);
                char body[128];
                snprintf(body, sizeof body, "{\"header\":{\"revision\":\"1\"},\"token\":\"tok%d\"}", n);
                reply(fd, 200, body);
                continue;
            }
            if (f->good_token[0] && strcmp(token, f->good_token)) {
                reply(fd, 401, "{\"error\":\"etcdserver: invalid auth token\",\"code\":16}");
                continue;
            }
            if (strstr(req, "POST /v3/kv/put ")) {
                if (atomic_fetch_add(&f->puts, 1) < f->close_puts) break; /* read, never answered */
                reply(fd, 200, "{\"header\":{\"revision\":\"42\"}}");
            } else if (strstr(req, "POST /v3/kv/range ")) {
                if (atomic_fetch_add(&f->ranges, 1) < f->close_ranges) break;
                reply(fd, 200, "{\"header\":{\"revision\":\"42\"},\"kvs\":[{\"key\":\"YQ==\",\"value\":\"Yg==\"}],"
                               "\"count\":\"1\"}");
            } else {
                reply(fd, 404, "404 page not found");
            }
        }
        close(fd);
    }
    return NULL;
}

static void *fake_main(void *arg) {
    fake_t *f = arg;
    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0) return NULL;
        fake_conn_t *fc = malloc(sizeof *fc);
        ck_assert_ptr_nonnull(fc);
        fc->f = f;
        fc->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, fake_conn_main, fc);
        pthread_detach(t);
    }
}

static void fake_start(fake_t *f) {
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(f->lfd, 16), 0);
    socklen_t al = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &al);
    f->port = ntohs(a.sin_port);
    pthread_create(&f->thr, NULL, fake_main, f);
}

/* a loopback port with nothing listening */
static int dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

static etcd_t *open_fake(fake_t *f, bool with_dead_first, const char *user, const char *pw) {
    etcd_config_t cfg;
    etcd_config_defaults(&cfg);
    char eps[128], err[256];
    if (with_dead_first) snprintf(eps, sizeof eps, "127.0.0.1:%d,127.0.0.1:%d", dead_port(), f->port);
    else snprintf(eps, sizeof eps, "127.0.0.1:%d", f->port);
    ck_assert_int_eq(etcd_config_set_endpoints(&cfg, eps, err, sizeof err), 0);
    cfg.backoff_ms = 1;
    cfg.backoff_max_ms = 2;
    cfg.timeout_ms = 2000;
    if (user) snprintf(cfg.username, sizeof cfg.username, "%s", user);
    if (pw) snprintf(cfg.password, sizeof cfg.password, "%s", pw);
    etcd_t *c = etcd_open(&cfg, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    return c;
}

START_TEST(failover_skips_a_dead_endpoint) {
    fake_t f = {0};
    fake_start(&f);
    etcd_t *c = open_fake(&f, true, NULL, NULL);
    char err[256];
    int64_t rev = 0;
    ck_assert_int_eq(etcd_put(c, "a", 1, "b", 1, 0, &rev, err, sizeof err), ETCD_OK);
    ck_assert_int_eq(rev, 42);
    etcd_stats_t s;
    etcd_get_stats(c, &s);
    ck_assert_int_eq(s.failovers, 1);
    ck_assert_int_eq(atomic_load(&f.puts), 1);
    char want[64];
    snprintf(want, sizeof want, "http://127.0.0.1:%d", f.port);
    ck_assert_str_eq(etcd_current_endpoint(c), want);
    etcd_close(c);
}
END_TEST

START_TEST(unanswered_put_is_not_repeated_but_range_is) {
    fake_t f = {.close_puts = 1, .close_ranges = 1};
    fake_start(&f);
    etcd_t *c = open_fake(&f, false, NULL, NULL);
    char err[256];
    ck_assert_int_eq(etcd_put(c, "a", 1, "b", 1, 0, NULL, err, sizeof err), ETCD_ERR_UNKNOWN);
    ck_assert_int_eq(atomic_load(&f.puts), 1); /* sent once: it may have been applied */
    etcd_range_result_t r;
    ck_assert_int_eq(etcd_get(c, "a", &r, err, sizeof err), ETCD_OK);
    ck_assert_int_eq(atomic_load(&f.ranges), 2); /* the first went unanswered, repeated */
    ck_assert_str_eq((char *)r.kvs[0].value, "b");
    etcd_range_result_free(&r);
    /* a wrong path (not the gateway) is a clear protocol error, not retried */
    etcd_close(c);
}
END_TEST

/* libcurl re-sends a request by itself when a reused keep-alive connection
 * dies before any answer byte: for a write that would apply it twice. */
START_TEST(write_on_a_kept_alive_connection_is_not_resent_by_curl) {
    fake_t f = {.close_puts = 1};
    fake_start(&f);
    etcd_t *c = open_fake(&f, false, NULL, NULL);
    char err[256];
    etcd_range_result_t r;
    ck_assert_int_eq(etcd_get(c, "a", &r, err, sizeof err), ETCD_OK); /* leaves a connection to reuse */
    etcd_range_result_free(&r);
    ck_assert_int_eq(etcd_put(c, "a", 1, "b", 1, 0, NULL, err, sizeof err), ETCD_ERR_UNKNOWN);
    ck_assert_int_eq(atomic_load(&f.puts), 1);
    etcd_close(c);
}
END_TEST

START_TEST(expired_token_is_renewed_once_and_never_in_errors) {
    fake_t f = {0};
    fake_start(&f);
    etcd_t *c = open_fake(&f, false, "root", "pw");
    char err[256];
    etcd_range_result_t r;
    ck_assert_int_eq(etcd_get(c, "a", &r, err, sizeof err), ETCD_OK);
    etcd_range_result_free(&r);
    ck_assert_int_eq(atomic_load(&f.auths), 1);
    ck_assert_str_eq(f.last_auth_header, "tok1");
    snprintf(f.good_token, sizeof f.good_token, "rotated"); /* the server forgot tok1 */
    ck_assert_int_eq(etcd_put(c, "a", 1, "b", 1, 0, NULL, err, sizeof err), ETCD_OK);
    ck_assert_int_eq(atomic_load(&f.auths), 2);
    ck_assert_str_eq(f.last_auth_header, "tok2");
    ck_assert_int_eq(atomic_load(&f.puts), 1); /* applied once, after the refusal for the token */
    ck_assert_int_eq(atomic_load(&f.requests), 5); /* auth, range, put (401), auth, put */
    etcd_stats_t s;
    etcd_get_stats(c, &s);
    ck_assert_int_eq(s.auths, 2);
    etcd_close(c);

    /* a wrong password: an auth error naming the user, never the password */
    fake_t g = {0};
    fake_start(&g);
    c = open_fake(&g, false, "root", "hunter2");
    ck_assert_int_eq(etcd_get(c, "a", &r, err, sizeof err), ETCD_ERR_AUTH);
    ck_assert_ptr_nonnull(strstr(err, "root"));
    ck_assert_ptr_null(strstr(err, "hunter2"));
    ck_assert_int_eq(atomic_load(&g.auths), 1); /* a refused password is not retried */
    etcd_close(c);
}
END_TEST

/* ---- protobuf ---- */

START_TEST(topic_round_trips_through_protobuf) {
    meta_topic_t t, back;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "orders.v2_eu-1");
    for (int i = 0; i < 16; i++) t.id[i] = (uint8_t)(0xa0 + i);
    t.npartitions = 12;
    snprintf(t.configs, sizeof t.configs, "retention.ms=3600000\ncleanup.policy=delete\nsegment.bytes=1048576\n");
    size_t len = 0;
    uint8_t *buf = meta_pb_topic_encode(&t, &len);
    ck_assert_ptr_nonnull(buf);
    char err[256];
    ck_assert_int_eq(meta_pb_topic_decode(buf, len, &back, err, sizeof err), 0);
    ck_assert(memcmp(&t, &back, sizeof t) == 0); /* every byte, padding of the arrays included */

    /* readers that only look at the typed fields see them */
    Kafscale__Metadata__TopicConfig *m = kafscale__metadata__topic_config__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->retention_ms, 3600000);
    ck_assert_int_eq(m->segment_bytes, 1048576);
    ck_assert_int_eq(m->retention_bytes, 0);
    ck_assert_int_eq(m->replication_factor, 1);
    ck_assert_uint_eq(m->n_config, 3);
    ck_assert_str_eq(m->config[1]->key, "cleanup.policy");
    kafscale__metadata__topic_config__free_unpacked(m, NULL);
    free(buf);

    /* no configs at all */
    memset(t.configs, 0, sizeof t.configs);
    buf = meta_pb_topic_encode(&t, &len);
    ck_assert_int_eq(meta_pb_topic_decode(buf, len, &back, err, sizeof err), 0);
    ck_assert(memcmp(&t, &back, sizeof t) == 0);
    free(buf);
}
END_TEST

START_TEST(topic_from_another_writer_takes_typed_configs) {
    /* no topic id, typed retention only, one map entry, an unknown field */
    Kafscale__Metadata__TopicConfig m = KAFSCALE__METADATA__TOPIC_CONFIG__INIT;
    Kafscale__Metadata__TopicConfig__ConfigEntry e = KAFSCALE__METADATA__TOPIC_CONFIG__CONFIG_ENTRY__INIT, *ep = &e;
    m.name = "legacy";
    m.partitions = 3;
    m.retention_ms = 86400000;
    m.segment_bytes = 999; /* overridden by the map */
    e.key = "segment.bytes";
    e.value = "4096";
    m.n_config = 1;
    m.config = &ep;
    uint8_t buf[256];
    size_t len = kafscale__metadata__topic_config__pack(&m, buf);
    buf[len++] = 0x98; /* tag (99 << 3 | varint) = 792 as a varint: a newer writer's field 99 ... */
    buf[len++] = 0x06;
    buf[len++] = 5;    /* ... = 5 */
    meta_topic_t t;
    char err[256];
    ck_assert_int_eq(meta_pb_topic_decode(buf, len, &t, err, sizeof err), 0);
    ck_assert_str_eq(t.name, "legacy");
    ck_assert_int_eq(t.npartitions, 3);
    static const uint8_t zero[16];
    ck_assert(memcmp(t.id, zero, 16) == 0);
    ck_assert_str_eq(t.configs, "segment.bytes=4096\nretention.ms=86400000\n");
}
END_TEST

START_TEST(malformed_topics_are_refused) {
    uint8_t buf[4096];
    meta_topic_t t;
    char err[256];
    /* not protobuf at all */
    ck_assert_int_eq(meta_pb_topic_decode((const uint8_t *)"\xff\xff\xff", 3, &t, err, sizeof err), -1);
    struct {
        const char *name;
        int32_t parts;
        size_t idlen;
        const char *ck, *cv;
        const char *why;
    } bad[] = {
        {"", 1, 16, NULL, NULL, "bad topic name"},
        {"a/b", 1, 16, NULL, NULL, "bad topic name"},
        {"..", 1, 16, NULL, NULL, "bad topic name"},
        {"ok", 0, 16, NULL, NULL, "partitions"},
        {"ok", 100001, 16, NULL, NULL, "partitions"},
        {"ok", 1, 5, NULL, NULL, "16 bytes"},
        {"ok", 1, 16, "a=b", "c", "config"},
        {"ok", 1, 16, "a", "line\nbreak", "config"},
        {"ok", 1, 16, "", "x", "config"},
    };
    uint8_t id[16] = {1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Kafscale__Metadata__TopicConfig m = KAFSCALE__METADATA__TOPIC_CONFIG__INIT;
        Kafscale__Metadata__TopicConfig__ConfigEntry e = KAFSCALE__METADATA__TOPIC_CONFIG__CONFIG_ENTRY__INIT,
                                                     *ep = &e;
        m.name = (char *)bad[i].name;
        m.partitions = bad[i].parts;
        m.topic_id.data = id;
        m.topic_id.len = bad[i].idlen;
        if (bad[i].ck) {
            e.key = (char *)bad[i].ck;
            e.value = (char *)bad[i].cv;
            m.n_config = 1;
            m.config = &ep;
        }
        size_t len = kafscale__metadata__topic_config__pack(&m, buf);
        memset(&t, 0x55, sizeof t);
        ck_assert_msg(meta_pb_topic_decode(buf, len, &t, err, sizeof err) == -1, "case %zu accepted", i);
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "case %zu: %s", i, err);
        ck_assert_int_eq(t.npartitions, 0); /* zeroed on failure */
    }
    /* configs that cannot fit meta_topic_t.configs */
    Kafscale__Metadata__TopicConfig m = KAFSCALE__METADATA__TOPIC_CONFIG__INIT;
    Kafscale__Metadata__TopicConfig__ConfigEntry e = KAFSCALE__METADATA__TOPIC_CONFIG__CONFIG_ENTRY__INIT, *ep = &e;
    char longv[3000];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    m.name = "ok";
    m.partitions = 1;
    e.key = "k";
    e.value = longv;
    m.n_config = 1;
    m.config = &ep;
    size_t len = kafscale__metadata__topic_config__pack(&m, buf);
    ck_assert_int_eq(meta_pb_topic_decode(buf, len, &t, err, sizeof err), -1);
}
END_TEST

START_TEST(segment_round_trips_and_refuses_bad_offsets) {
    meta_segment_t s, back;
    memset(&s, 0, sizeof s);
    snprintf(s.topic, sizeof s.topic, "orders");
    for (int i = 0; i < 16; i++) s.topic_id[i] = (uint8_t)i;
    s.partition = 7;
    s.leader_epoch = 3;
    s.base_offset = 1000;
    s.last_offset = 1999;
    s.size = 4194304;
    s.max_timestamp = 1700000000123LL;
    s.created_ms = 1700000000456LL;
    size_t len;
    uint8_t *buf = meta_pb_segment_encode(&s, &len);
    char err[256];
    ck_assert_int_eq(meta_pb_segment_decode(buf, len, &back, err, sizeof err), 0);
    ck_assert(memcmp(&s, &back, sizeof s) == 0);
    free(buf);

    /* partition 0 and offset 0 are proto3 defaults: absent on the wire, still round trip */
    s.partition = 0;
    s.base_offset = 0;
    s.leader_epoch = 0;
    buf = meta_pb_segment_encode(&s, &len);
    ck_assert_int_eq(meta_pb_segment_decode(buf, len, &back, err, sizeof err), 0);
    ck_assert(memcmp(&s, &back, sizeof s) == 0);
    free(buf);

    meta_segment_t bad[4];
    for (int i = 0; i < 4; i++) bad[i] = s;
    bad[0].last_offset = -1;           /* before base */
    bad[1].partition = -1;
    bad[2].size = -5;
    snprintf(bad[3].topic, sizeof bad[3].topic, "no spaces");
    for (int i = 0; i < 4; i++) {
        buf = meta_pb_segment_encode(&bad[i], &len);
        ck_assert_msg(meta_pb_segment_decode(buf, len, &back, err, sizeof err) == -1, "case %d accepted", i);
        free(buf);
    }
    ck_assert_int_eq(meta_pb_segment_decode((const uint8_t *)"\x0a\xff", 2, &back, err, sizeof err), -1);
}
END_TEST

Suite *etcd_suite(void) {
    Suite *s = suite_create("etcd");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, b64_matches_rfc4648_vectors);
    tcase_add_test(tc, b64_round_trips_every_byte_and_length);
    tcase_add_test(tc, b64_refuses_what_is_not_base64);
    tcase_add_test(tc, prefix_end_increments_the_last_byte_below_ff);
    tcase_add_test(tc, endpoints_parse_and_refuse);
    tcase_add_test(tc, range_body_has_base64_keys_and_string_int64s);
    tcase_add_test(tc, put_body_carries_value_and_lease);
    tcase_add_test(tc, txn_body_has_every_compare_and_op);
    tcase_add_test(tc, watch_create_body);
    tcase_add_test(tc, range_answer_parses);
    tcase_add_test(tc, malformed_answers_are_protocol_errors);
    tcase_add_test(tc, etcd_errors_map_to_statuses);
    tcase_add_test(tc, txn_answers_parse);
    suite_add_tcase(s, tc);

    tc = tcase_create("watch");
    tcase_add_test(tc, watch_stream_parses_whole_and_in_any_split);
    tcase_add_test(tc, watch_stream_objects_back_to_back_and_braces_in_strings);
    tcase_add_test(tc, watch_stream_refuses_garbage_and_oversized_messages);
    tcase_add_test(tc, watch_step_resumes_without_duplicates);
    suite_add_tcase(s, tc);

    tc = tcase_create("http");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, failover_skips_a_dead_endpoint);
    tcase_add_test(tc, unanswered_put_is_not_repeated_but_range_is);
    tcase_add_test(tc, write_on_a_kept_alive_connection_is_not_resent_by_curl);
    tcase_add_test(tc, expired_token_is_renewed_once_and_never_in_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("protobuf");
    tcase_add_test(tc, topic_round_trips_through_protobuf);
    tcase_add_test(tc, topic_from_another_writer_takes_typed_configs);
    tcase_add_test(tc, malformed_topics_are_refused);
    tcase_add_test(tc, segment_round_trips_and_refuses_bad_offsets);
    suite_add_tcase(s, tc);
    return s;
}
