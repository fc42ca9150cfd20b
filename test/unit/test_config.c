/* test_config.c - unit tests of KAFSCALE_* environment parsing (common/config.c).
 *
 * Good values are read back; every bad value must stop the process with exit
 * status 2 (Check exit tests: each runs in its own forked child) and a
 * message naming the variable.
 */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"

#define VAR "KAFSCALE_TEST_VALUE"

START_TEST(env_int_reads_good_values) {
    unsetenv(VAR);
    ck_assert_int_eq(env_int(VAR, 7, 0, 10), 7);
    setenv(VAR, "", 1);
    ck_assert_int_eq(env_int(VAR, 7, 0, 10), 7); /* empty means unset */
    static const struct { const char *v; int64_t want; } ok[] = {
        {"0", 0}, {"10", 10}, {"-10", -10}, {"3", 3}, {"007", 7},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        setenv(VAR, ok[i].v, 1);
        ck_assert_int_eq(env_int(VAR, 1, -10, 10), ok[i].want);
    }
    setenv(VAR, "9223372036854775807", 1);
    ck_assert(env_int(VAR, 0, 0, INT64_MAX) == INT64_MAX);
    setenv(VAR, "-9223372036854775808", 1);
    ck_assert(env_int(VAR, 0, INT64_MIN, 0) == INT64_MIN);
}
END_TEST

START_TEST(env_size_reads_suffixes) {
    unsetenv(VAR);
    ck_assert_int_eq(env_size(VAR, 4096, 0, INT64_MAX), 4096);
    static const struct { const char *v; int64_t want; } ok[] = {
        {"0", 0}, {"5", 5}, {"10k", 10240}, {"10K", 10240}, {"3m", 3 << 20}, {"3M", 3 << 20},
        {"2g", 2LL << 30}, {"2G", 2LL << 30}, {"1KiB", 1024}, {"4kb", 4096}, {"4KB", 4096}, {"7mib", 7 << 20},
        {"8388607g", 8388607LL << 30},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        setenv(VAR, ok[i].v, 1);
        ck_assert_msg(env_size(VAR, 1, 0, INT64_MAX) == ok[i].want, "'%s'", ok[i].v);
    }
}
END_TEST

START_TEST(env_bool_reads_every_spelling) {
    unsetenv(VAR);
    ck_assert(env_bool(VAR, true));
    ck_assert(!env_bool(VAR, false));
    static const char *yes[] = {"1", "true", "TRUE", "True", "yes", "YES", "on", "On"};
    static const char *no[] = {"0", "false", "FALSE", "no", "No", "off", "OFF"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        setenv(VAR, yes[i], 1);
        ck_assert_msg(env_bool(VAR, false), "'%s'", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        setenv(VAR, no[i], 1);
        ck_assert_msg(!env_bool(VAR, true), "'%s'", no[i]);
    }
}
END_TEST

START_TEST(env_str_falls_back_when_unset_or_empty) {
    unsetenv(VAR);
    ck_assert_str_eq(env_str(VAR, "dflt"), "dflt");
    ck_assert_ptr_null(env_str(VAR, NULL));
    setenv(VAR, "", 1);
    ck_assert_str_eq(env_str(VAR, "dflt"), "dflt");
    setenv(VAR, "/data/x", 1);
    ck_assert_str_eq(env_str(VAR, "dflt"), "/data/x");
}
END_TEST

START_TEST(env_hostport_splits_host_and_port) {
    static const struct { const char *v, *host; int port; } ok[] = {
        {"0.0.0.0:9092", "0.0.0.0", 9092},
        {"localhost:0", "localhost", 0},
        {":9092", "", 9092},
        {"broker-1.example.com:65535", "broker-1.example.com", 65535},
        {"[::1]:9093", "::1", 9093},
        {"[fe80::1%eth0]:1", "fe80::1%eth0", 1},
        {"[]:80", "", 80},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char host[64];
        int port = -1;
        memset(host, 'x', sizeof host);
        env_hostport(VAR, ok[i].v, host, sizeof host, &port);
        ck_assert_msg(strcmp(host, ok[i].host) == 0, "'%s': host '%s'", ok[i].v, host);
        ck_assert_msg(port == ok[i].port, "'%s': port %d", ok[i].v, port);
    }
    /* a host that exactly fills the buffer */
    char small[5];
    int port;
    env_hostport(VAR, "abcd:1", small, sizeof small, &port);
    ck_assert_str_eq(small, "abcd");
    ck_assert_int_eq(port, 1);
}
END_TEST

/* ---- bad values exit(2) ---- */

enum { K_INT, K_SIZE, K_BOOL, K_HOSTPORT };
static const struct { int kind; const char *v; } bad[] = {
    {K_INT, "abc"}, {K_INT, "12x"}, {K_INT, "10k"}, {K_INT, "11"}, {K_INT, "-1"}, {K_INT, "0x10"},
    {K_INT, " "}, {K_INT, "-"}, {K_INT, "99999999999999999999"}, {K_INT, "-99999999999999999999"},
    {K_INT, "1.5"}, {K_INT, "5 "},
    {K_SIZE, "10q"}, {K_SIZE, "10kx"}, {K_SIZE, "10kbb"}, {K_SIZE, "k"}, {K_SIZE, "2g"}, {K_SIZE, "-1k"},
    {K_SIZE, "9223372036854775807k"}, {K_SIZE, "8589934592g"}, {K_SIZE, "10 k"},
    {K_BOOL, "maybe"}, {K_BOOL, "2"}, {K_BOOL, "truee"}, {K_BOOL, "y"}, {K_BOOL, " true"},
    {K_HOSTPORT, "nohostport"}, {K_HOSTPORT, "h:"}, {K_HOSTPORT, "h:abc"}, {K_HOSTPORT, "h:65536"},
    {K_HOSTPORT, "h:-1"}, {K_HOSTPORT, "[::1]9092"}, {K_HOSTPORT, "[::1"}, {K_HOSTPORT, "[::1]"},
    {K_HOSTPORT, "a-much-too-long-host-name:80"}, {K_HOSTPORT, "[a-much-too-long-v6-name]:80"}, {K_HOSTPORT, ""},
    {K_HOSTPORT, "h:80x"},
};

START_TEST(bad_values_exit_with_status_2) {
    /* Runs in a forked child: silence the expected message. */
    if (!freopen("/dev/null", "w", stderr)) abort();
    setenv(VAR, bad[_i].v, 1);
    char host[16];
    int port;
    switch (bad[_i].kind) {
    case K_INT: (void)env_int(VAR, 0, 0, 10); break;
    case K_SIZE: (void)env_size(VAR, 0, 0, 1LL << 30); break;
    case K_BOOL: (void)env_bool(VAR, false); break;
    case K_HOSTPORT: env_hostport(VAR, bad[_i].v, host, sizeof host, &port); break;
    }
    /* Reaching here means the value was accepted: Check sees exit status 0. */
}
END_TEST

START_TEST(bad_value_message_names_the_variable_and_value) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        setenv("KAFSCALE_SOME_PORT", "12x", 1);
        (void)env_int("KAFSCALE_SOME_PORT", 0, 0, 10);
        _exit(0);
    }
    close(fds[1]);
    char msg[512];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof msg - 1 && (k = read(fds[0], msg + n, sizeof msg - 1 - n)) > 0) n += (size_t)k;
    msg[n] = '\0';
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 2);
    ck_assert_msg(strstr(msg, "KAFSCALE_SOME_PORT") && strstr(msg, "12x"), "message: %s", msg);
}
END_TEST

Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("good");
    tcase_add_test(tc, env_int_reads_good_values);
    tcase_add_test(tc, env_size_reads_suffixes);
    tcase_add_test(tc, env_bool_reads_every_spelling);
    tcase_add_test(tc, env_str_falls_back_when_unset_or_empty);
    tcase_add_test(tc, env_hostport_splits_host_and_port);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad");
    tcase_add_loop_exit_test(tc, bad_values_exit_with_status_2, 2, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, bad_value_message_names_the_variable_and_value);
    suite_add_tcase(s, tc);
    return s;
}
