/* log.c - leveled one-line logging to stderr and always-on assertions. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO;
const char *log_component = "kafscale";

void log_init(const char *component) {
    log_component = component;
    const char *lv = getenv("KAFSCALE_LOG_LEVEL");
    if (!lv || !*lv) return;
    if (!strcmp(lv, "debug")) log_level = LOG_DEBUG;
    else if (!strcmp(lv, "info")) log_level = LOG_INFO;
    else if (!strcmp(lv, "warn")) log_level = LOG_WARN;
    else if (!strcmp(lv, "error")) log_level = LOG_ERROR;
    else {
        fprintf(stderr, "KAFSCALE_LOG_LEVEL: '%s' is not one of debug, info, warn, error\n", lv);
        exit(2);
    }
}

void log_msg(int level, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03dZ %s %s[%d]: %s\n", ts, (int)(tv.tv_usec / 1000), names[level & 3], log_component,
            (int)getpid(), msg);
}

void ks_assert_fail(const char *expr, const char *file, int line) {
    log_msg(LOG_ERROR, "assertion failed: %s at %s:%d", expr, file, line);
    abort();
}
