/* main.c - kafscale-cached's entry point (see cached.c). */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cached.h"

int main(int argc, char **argv) {
    bool supervised = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: kafscale-cached [--supervised]\n"
                   "The node's read cache: loads segments from the object store into the shared-memory\n"
                   "ring the broker reads (inspect it with kafscale-shm). Settings come from KAFSCALE_*\n"
                   "environment variables; see README.md. --supervised: started by a broker; exit when\n"
                   "no broker has been connected for KAFSCALE_CACHED_LINGER_MS.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--supervised")) supervised = true;
        else {
            fprintf(stderr, "kafscale-cached: unknown argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    /* A load's buffer is a whole segment (MiBs): keep freed ones in the
     * heap for the next load instead of mmap/munmap and fresh pages each
     * time. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    return cached_main(supervised);
}
