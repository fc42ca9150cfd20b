/* memcpy_bench.c - bin/bench-memcpy: the machine's memcpy bandwidth, one of
 * the ceilings `make bench` reports (a broker that copies each byte once
 * can not move data faster than this, per core).
 *
 *   bench-memcpy [BYTES [SECONDS]]
 *
 * Copies a BYTES buffer (default 64 MiB: larger than the caches, so this is
 * memory bandwidth) into another, over and over for about SECONDS (default
 * 1), and prints one JSON line: {"bytes":..,"copies":..,"seconds":..,"gbps":..}
 * where gbps is 10^9 bytes copied per second.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 10) : (64u << 20);
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    if (bytes < 4096 || secs <= 0) {
        fprintf(stderr, "usage: bench-memcpy [BYTES>=4096 [SECONDS]]\n");
        return 2;
    }
    uint8_t *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b) return 1;
    memset(a, 0x5a, bytes);
    memset(b, 0xa5, bytes); /* fault every page in before timing */
    memcpy(b, a, bytes);
    uint64_t copies = 0;
    double t0 = now(), t;
    do {
        memcpy(copies & 1 ? a : b, copies & 1 ? b : a, bytes);
        copies++;
        __asm__ __volatile__("" ::"r"(a), "r"(b) : "memory"); /* keep the copies */
        t = now();
    } while (t - t0 < secs);
    printf("{\"bytes\":%zu,\"copies\":%llu,\"seconds\":%.6f,\"gbps\":%.3f}\n", bytes, (unsigned long long)copies,
           t - t0, (double)bytes * (double)copies / (t - t0) / 1e9);
    free(a);
    free(b);
    return 0;
}
