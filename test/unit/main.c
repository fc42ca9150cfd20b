/* main.c - the Check runner for bin/unit-tests.
 *
 * Every test file exposes one `Suite *NAME_suite(void)`; this file lists them
 * all in one table and runs them in fork mode (a crash or a sanitizer abort in
 * one test is reported as an error in that test, the others still run).
 * A new test file adds its suite here (declaration and table row); a suite
 * listed here whose file is missing fails the link, never a silent skip.
 *
 *   bin/unit-tests                     every suite (CK_NORMAL summary line)
 *   CK_RUN_SUITE=kbuf bin/unit-tests   one suite (CK_RUN_CASE: one test case)
 *   CK_FORK=no bin/unit-tests          no fork, for gdb (exit tests then fail)
 *
 * Exit status: 0 when every check passed, 1 otherwise.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

typedef Suite *(suite_fn)(void);

suite_fn etcd_suite;
suite_fn group_suite;
suite_fn metrics_suite;
suite_fn kbuf_suite, kmsg_suite, batch_suite, config_suite, msg_topics_suite, msg_fetch_suite, segment_suite,
    objstore_suite, records_suite, store_read_suite, meta_suite, shm_ring_suite;

static suite_fn *const suites[] = {
    kbuf_suite,
    kmsg_suite,
    batch_suite,
    config_suite,
    msg_topics_suite,
    msg_fetch_suite,
    segment_suite,
    objstore_suite,
    records_suite,
    store_read_suite,
    meta_suite,
    shm_ring_suite,
    etcd_suite,
    metrics_suite,
    group_suite,
};

int main(void) {
    SRunner *sr = NULL;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        Suite *s = suites[i]();
        if (!sr) sr = srunner_create(s);
        else srunner_add_suite(sr, s);
    }
    if (!sr) {
        fprintf(stderr, "unit-tests: no suites\n");
        return 1;
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
