/* broker.c - the broker's process-wide state and clock helpers (kept out of
 * main.c so unit tests and the fuzzer can link the broker's files). */
#include "broker.h"

#include <time.h>

broker_t g_broker;

int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t now_ms(void) { return now_us() / 1000; }

int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mono_ms(void) { return mono_us() / 1000; }
