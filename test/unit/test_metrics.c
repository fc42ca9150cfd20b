/* test_metrics.c - unit tests of the observability pieces that have no
 * process around them: the metric registry and its Prometheus text
 * (common/metrics.c), the STATS encoding between processes, the /proc
 * sampling, the JSON <-> protobuf mapping of the control API
 * (common/pbjson.c) and the JSON log lines (common/log.c).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/broker.pb-c.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "pbjson.h"

/* The exposition as a NUL-terminated string (caller frees). */
static char *render(void) {
    kw_t w;
    kw_init(&w, 1024);
    metrics_render(&w);
    char *s = malloc(w.len + 1);
    memcpy(s, w.buf, w.len);
    s[w.len] = 0;
    kw_free(&w);
    return s;
}

/* The whole line starting with `prefix` (up to the newline), or NULL. */
static char *line_of(const char *text, const char *prefix) {
    static char buf[1024];
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len >= n && !strncmp(p, prefix, n) && (p[n] == ' ' || p[n] == '{' || n == len)) {
            snprintf(buf, sizeof buf, "%.*s", (int)len, p);
            return buf;
        }
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

START_TEST(every_metric_has_help_and_type) {
    metrics_reset_all();
    char *t = render();
    for (int m = 0; m < M__MAX; m++) {
        char want[256];
        snprintf(want, sizeof want, "# HELP %s ", metrics_name(m));
        ck_assert_msg(strstr(t, want), "no HELP for %s", metrics_name(m));
        snprintf(want, sizeof want, "# TYPE %s %s\n", metrics_name(m),
                 metrics_type(m) == MT_COUNTER ? "counter" : metrics_type(m) == MT_GAUGE ? "gauge" : "histogram");
        ck_assert_msg(strstr(t, want), "no TYPE for %s", metrics_name(m));
        /* Prometheus conventions promtool checks: counters end in _total, nothing else does */
        size_t n = strlen(metrics_name(m));
        bool total = n > 6 && !strcmp(metrics_name(m) + n - 6, "_total");
        ck_assert_msg(total == (metrics_type(m) == MT_COUNTER), "%s", metrics_name(m));
    }
    /* unlabeled families always have a sample */
    ck_assert_str_eq(line_of(t, "kafscale_connections"), "kafscale_connections 0");
    ck_assert_str_eq(line_of(t, "kafscale_flush_cycles_total"), "kafscale_flush_cycles_total 0");
    free(t);
}
END_TEST

START_TEST(counters_and_gauges_render_with_labels) {
    metrics_reset_all();
    metrics_add(M_PRODUCE_BYTES, 10, "b-topic");
    metrics_add(M_PRODUCE_BYTES, 5, "a-topic");
    metrics_add(M_PRODUCE_BYTES, 7, "b-topic");
    metrics_set(M_CONNECTIONS, 3);
    metrics_set(M_COMPONENT_UP, 1, "flusher");
    metrics_add(M_REQUEST_ERRORS, 2, "Produce", "CORRUPT_MESSAGE");
    ck_assert(metrics_get(M_PRODUCE_BYTES, "b-topic") == 17);
    ck_assert(metrics_get(M_PRODUCE_BYTES, "never") == 0);
    char *t = render();
    ck_assert_str_eq(line_of(t, "kafscale_connections"), "kafscale_connections 3");
    ck_assert(strstr(t, "kafscale_produce_bytes_total{topic=\"a-topic\"} 5\n"
                        "kafscale_produce_bytes_total{topic=\"b-topic\"} 17\n")); /* sorted by label */
    ck_assert(strstr(t, "kafscale_request_errors_total{api=\"Produce\",error=\"CORRUPT_MESSAGE\"} 2\n"));
    ck_assert(strstr(t, "kafscale_component_up{component=\"flusher\"} 1\n"));
    free(t);
}
END_TEST

START_TEST(label_values_are_escaped) {
    metrics_reset_all();
    metrics_set(M_GROUP_LAG, 4, "g\"1\\x\ny", "t", "0");
    char *t = render();
    ck_assert_msg(strstr(t, "kafscale_consumer_group_lag{group=\"g\\\"1\\\\x\\ny\",topic=\"t\",partition=\"0\"} 4\n"),
                  "%s", t);
    free(t);
}
END_TEST

START_TEST(histograms_are_cumulative) {
    metrics_reset_all();
    metrics_observe(M_REQUEST_SECONDS, 0.0001, "Fetch");  /* <= 0.0005 */
    metrics_observe(M_REQUEST_SECONDS, 0.003, "Fetch");   /* <= 0.005 */
    metrics_observe(M_REQUEST_SECONDS, 0.005, "Fetch");   /* bounds are inclusive */
    metrics_observe(M_REQUEST_SECONDS, 100, "Fetch");     /* only +Inf */
    char *t = render();
    ck_assert_str_eq(line_of(t, "kafscale_request_duration_seconds_bucket{api=\"Fetch\",le=\"0.0005\"}"),
                     "kafscale_request_duration_seconds_bucket{api=\"Fetch\",le=\"0.0005\"} 1");
    ck_assert(strstr(t, "kafscale_request_duration_seconds_bucket{api=\"Fetch\",le=\"0.0025\"} 1\n"));
    ck_assert(strstr(t, "kafscale_request_duration_seconds_bucket{api=\"Fetch\",le=\"0.005\"} 3\n"));
    ck_assert(strstr(t, "kafscale_request_duration_seconds_bucket{api=\"Fetch\",le=\"30\"} 3\n"));
    ck_assert(strstr(t, "kafscale_request_duration_seconds_bucket{api=\"Fetch\",le=\"+Inf\"} 4\n"));
    ck_assert(strstr(t, "kafscale_request_duration_seconds_count{api=\"Fetch\"} 4\n"));
    ck_assert(strstr(t, "kafscale_request_duration_seconds_sum{api=\"Fetch\"} 100.0081\n"));
    /* an unlabeled histogram renders empty buckets */
    ck_assert(strstr(t, "kafscale_flush_segment_bytes_bucket{le=\"1024\"} 0\n"));
    ck_assert(strstr(t, "kafscale_flush_segment_bytes_count 0\n"));
    free(t);
}
END_TEST

START_TEST(helpers_count_errors_requests_and_lag) {
    metrics_reset_all();
    metrics_count_error("Fetch", KERR_NONE);
    metrics_count_error("Fetch", KERR_OFFSET_OUT_OF_RANGE);
    metrics_count_request("Fetch", 0.01);
    ck_assert(metrics_get(M_REQUEST_ERRORS, "Fetch", "OFFSET_OUT_OF_RANGE") == 1);
    ck_assert(metrics_get(M_REQUEST_ERRORS, "Fetch", "NONE") == 0);
    ck_assert(metrics_get(M_REQUESTS, "Fetch") == 1);
    ck_assert(metrics_get(M_REQUEST_SECONDS, "Fetch") == 1); /* histogram: the count */
    metrics_set_group_lag("g", "t", 3, 42);
    ck_assert(metrics_get(M_GROUP_LAG, "g", "t", "3") == 42);
    metrics_set_group_lag("g", "t", 3, -1); /* removes it */
    char *t = render();
    ck_assert(!strstr(t, "kafscale_consumer_group_lag{"));
    free(t);
    metrics_set(M_PROC_RSS, 1, "flusher");
    metrics_set(M_PROC_RSS, 2, "broker");
    metrics_clear_matching(M_PROC_RSS, 0, "flusher");
    ck_assert(metrics_get(M_PROC_RSS, "flusher") == 0 && metrics_get(M_PROC_RSS, "broker") == 2);
}
END_TEST

static double collected;
static void collector(void *arg) { metrics_set(M_UNFLUSHED_BYTES, *(double *)arg); }

START_TEST(collectors_run_before_rendering) {
    metrics_reset_all();
    collected = 1234;
    metrics_add_collector(collector, &collected);
    char *t = render();
    ck_assert_str_eq(line_of(t, "kafscale_unflushed_bytes"), "kafscale_unflushed_bytes 1234");
    free(t);
}
END_TEST

START_TEST(process_sampling_reads_proc) {
    metrics_reset_all();
    ck_assert_int_eq(metrics_sample_process("broker", getpid()), 0);
    ck_assert(metrics_get(M_PROC_RSS, "broker") > 0);
    ck_assert(metrics_get(M_PROC_VSZ, "broker") > 0);
    ck_assert(metrics_get(M_PROC_THREADS, "broker") >= 1);
    ck_assert(metrics_get(M_PROC_START, "broker") > 1e9); /* Unix seconds */
    ck_assert_int_eq(metrics_sample_process("broker", 0x7ffffff0), -1); /* gone: series dropped */
    ck_assert(metrics_get(M_PROC_RSS, "broker") == 0);
}
END_TEST

START_TEST(stats_encoding_round_trips) {
    metrics_reset_all();
    metrics_add(M_FLUSH_CYCLES, 7);
    metrics_add(M_OBJ_OPS, 3, "flusher", "put");
    metrics_observe(M_FLUSH_SEGMENT_BYTES, 5000);
    metrics_observe(M_FLUSH_SEGMENT_BYTES, 2e9);
    kw_t w;
    kw_init(&w, 256);
    metrics_encode(&w);
    char *before = render();
    metrics_reset_all();
    metrics_add(M_FLUSH_CYCLES, 100); /* overwritten: the sender's value wins */
    kr_t r = kr_init(w.buf, w.len);
    ck_assert_int_eq(metrics_merge(&r), 0);
    char *after = render();
    ck_assert_str_eq(before, after);
    /* truncated payloads are refused, never read past */
    for (size_t cut = 0; cut < w.len; cut++) {
        kr_t t = kr_init(w.buf, cut);
        ck_assert_int_eq(metrics_merge(&t), -1);
    }
    free(before);
    free(after);
    kw_free(&w);
}
END_TEST

START_TEST(stats_merge_skips_unknown_series) {
    metrics_reset_all();
    kw_t w;
    kw_init(&w, 256);
    kw_i32(&w, 3);
    /* a metric this process does not know */
    kw_str(&w, false, KSTR_LIT("kafscale_from_the_future_total"));
    kw_i8(&w, 0);
    kw_i8(&w, MT_COUNTER);
    kw_f64(&w, 1);
    /* a known name with the wrong label count */
    kw_str(&w, false, KSTR_LIT("kafscale_produce_bytes_total"));
    kw_i8(&w, 0);
    kw_i8(&w, MT_COUNTER);
    kw_f64(&w, 2);
    /* a good one */
    kw_str(&w, false, KSTR_LIT("kafscale_flush_bytes_total"));
    kw_i8(&w, 0);
    kw_i8(&w, MT_COUNTER);
    kw_f64(&w, 3);
    kr_t r = kr_init(w.buf, w.len);
    ck_assert_int_eq(metrics_merge(&r), 0);
    ck_assert(metrics_get(M_FLUSH_BYTES) == 3);
    kw_free(&w);
}
END_TEST

/* ---- pbjson ---- */

START_TEST(pbjson_writes_every_field) {
    Kafscale__Control__V1__Component c = KAFSCALE__CONTROL__V1__COMPONENT__INIT;
    c.name = "flusher";
    c.state = KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_UP;
    c.pid = 42;
    Kafscale__Control__V1__PartitionStatus p1 = KAFSCALE__CONTROL__V1__PARTITION_STATUS__INIT, *pp[1] = {&p1};
    p1.topic = "t";
    p1.high_watermark = 1LL << 40;
    Kafscale__Control__V1__GetStatusResponse s = KAFSCALE__CONTROL__V1__GET_STATUS_RESPONSE__INIT;
    s.flusher = &c;
    s.n_partitions = 1;
    s.partitions = pp;
    s.ready = true;
    json_t *j = pbjson_from_message(&s.base);
    char *txt = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_msg(strstr(txt, "\"flusher\":{\"message\":\"\",\"name\":\"flusher\",\"pid\":42,\"state\":\"COMPONENT_UP\"}"),
                  "%s", txt);
    ck_assert(strstr(txt, "\"high_watermark\":1099511627776"));
    ck_assert(strstr(txt, "\"ready\":true"));
    ck_assert(strstr(txt, "\"cached\":null"));
    ck_assert(strstr(txt, "\"draining\":false")); /* defaults are written */
    free(txt);
    /* and back */
    char err[256];
    ProtobufCMessage *m = pbjson_to_message(&kafscale__control__v1__get_status_response__descriptor, j, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    Kafscale__Control__V1__GetStatusResponse *b = (Kafscale__Control__V1__GetStatusResponse *)m;
    ck_assert_int_eq(b->n_partitions, 1);
    ck_assert(b->partitions[0]->high_watermark == 1LL << 40);
    ck_assert_str_eq(b->flusher->name, "flusher");
    ck_assert_int_eq(b->flusher->state, KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_UP);
    ck_assert(b->ready);
    protobuf_c_message_free_unpacked(m, NULL);
    json_decref(j);
}
END_TEST

START_TEST(pbjson_reads_requests_strictly) {
    char err[256];
    static const struct { const char *json; bool ok; int64_t timeout; } cases[] = {
        {"{}", true, 0},
        {"{\"timeout_ms\": 5000}", true, 5000},
        {"{\"timeoutMs\": 7}", true, 7},              /* lowerCamelCase */
        {"{\"timeout_ms\": \"9000000000\"}", true, 9000000000LL}, /* int64 as a string */
        {"{\"timeout_ms\": \"12x\"}", false, 0},
        {"{\"timeout_ms\": true}", false, 0},
        {"{\"timeout_ms\": 1.5}", false, 0},
        {"{\"bogus\": 1}", false, 0},
        {"[]", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loads(cases[i].json, 0, NULL);
        ck_assert(j != NULL);
        ProtobufCMessage *m =
            pbjson_to_message(&kafscale__control__v1__trigger_flush_request__descriptor, j, err, sizeof err);
        ck_assert_msg((m != NULL) == cases[i].ok, "%s: %s", cases[i].json, m ? "accepted" : err);
        if (m) {
            ck_assert(((Kafscale__Control__V1__TriggerFlushRequest *)m)->timeout_ms == cases[i].timeout);
            protobuf_c_message_free_unpacked(m, NULL);
        }
        json_decref(j);
    }
    /* int32 range is enforced */
    json_t *j = json_loads("{\"node_id\": 4294967296}", 0, NULL);
    ck_assert(pbjson_to_message(&kafscale__control__v1__get_status_response__descriptor, j, err, sizeof err) == NULL);
    json_decref(j);
}
END_TEST

/* ---- log lines ---- */

START_TEST(log_lines_are_json_without_secrets) {
    setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-v4lue", 1);
    FILE *tmp = tmpfile();
    ck_assert(tmp != NULL);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    log_init("unit");
    log_info("plain \"quoted\" tab\there key=s3cr3t-v4lue");
    log_fields(LOG_WARN, LOG_F(LF_STR("topic", "t1"), LF_INT("partition", 7), LF_STR("password", "hunter2")),
               "with fields");
    log_debug("not shown at info");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, tmp)) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        ck_assert_msg(j != NULL, "not JSON: %s (%s)", line, je.text);
        ck_assert(!strstr(line, "s3cr3t") && !strstr(line, "hunter2"));
        ck_assert_str_eq(json_string_value(json_object_get(j, "component")), "unit");
        ck_assert(json_is_string(json_object_get(j, "time")));
        const char *msg = json_string_value(json_object_get(j, "message"));
        if (n == 0) {
            ck_assert_str_eq(json_string_value(json_object_get(j, "level")), "info");
            ck_assert_str_eq(msg, "plain \"quoted\" tab\there key=[redacted]");
        } else {
            ck_assert_str_eq(json_string_value(json_object_get(j, "level")), "warn");
            json_t *f = json_object_get(j, "fields");
            ck_assert_str_eq(json_string_value(json_object_get(f, "topic")), "t1");
            ck_assert_int_eq(json_integer_value(json_object_get(f, "partition")), 7);
            ck_assert_str_eq(json_string_value(json_object_get(f, "password")), "[redacted]");
        }
        json_decref(j);
        n++;
    }
    ck_assert_int_eq(n, 2);
    fclose(tmp);
}
END_TEST

Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, every_metric_has_help_and_type);
    tcase_add_test(tc, counters_and_gauges_render_with_labels);
    tcase_add_test(tc, label_values_are_escaped);
    tcase_add_test(tc, histograms_are_cumulative);
    tcase_add_test(tc, helpers_count_errors_requests_and_lag);
    tcase_add_test(tc, collectors_run_before_rendering);
    tcase_add_test(tc, process_sampling_reads_proc);
    suite_add_tcase(s, tc);
    tc = tcase_create("stats");
    tcase_add_test(tc, stats_encoding_round_trips);
    tcase_add_test(tc, stats_merge_skips_unknown_series);
    suite_add_tcase(s, tc);
    tc = tcase_create("pbjson");
    tcase_add_test(tc, pbjson_writes_every_field);
    tcase_add_test(tc, pbjson_reads_requests_strictly);
    suite_add_tcase(s, tc);
    tc = tcase_create("log");
    tcase_add_test(tc, log_lines_are_json_without_secrets);
    suite_add_tcase(s, tc);
    return s;
}
