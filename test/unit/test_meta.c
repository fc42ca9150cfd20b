/* test_meta.c - the embedded metadata journals (common/meta_file.c): replay,
 * topic ids on segments, and recovery from a torn tail left by a crash. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta.h"

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

Suite *meta_suite(void) {
    Suite *s = suite_create("meta");
    TCase *tc = tcase_create("journals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, commits_replay_in_order);
    tcase_add_test(tc, torn_tail_is_cut_before_appending);
    tcase_add_test(tc, second_writer_of_topics_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
