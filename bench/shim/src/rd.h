/* rd.h - the few librdkafka-internal helpers that librdkafka's example
 * rdkafka_performance.c uses (it is written to build inside librdkafka's
 * source tree: #include "../src/rd.h", "rd.h", "rdtime.h"). `make bench`
 * compiles that file, unchanged, from librdkafka-dev's examples with
 * -I bench/shim/src, so all three includes land here. Only what the
 * example needs: rd_ts_t and rd_clock() (monotonic microseconds, as in
 * librdkafka), rd_snprintf, RD_MIN/RD_MAX, and the libc headers it relies
 * on rd.h for. */
#ifndef KAFSCALE_BENCH_RD_SHIM_H
#define KAFSCALE_BENCH_RD_SHIM_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int64_t rd_ts_t;

static inline rd_ts_t rd_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (rd_ts_t)ts.tv_sec * 1000000 + (rd_ts_t)(ts.tv_nsec / 1000);
}

#define rd_snprintf snprintf

#define RD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RD_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
