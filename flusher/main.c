/* main.c - kafscale-flusher's entry point (see flusher.c). */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "flusher.h"

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: kafscale-flusher\n"
               "Uploads the batches a kafscale-broker accepted as segments to the object store.\n"
               "Settings come from KAFSCALE_* environment variables; see README.md.\n");
        return 0;
    }
    /* The flusher's big buffers (pending batches that grow by realloc, the
     * upload's segment and index pieces, O_DIRECT bounce buffers) come and
     * go every cycle: with glibc's defaults that memory was mmap'd or the
     * heap top trimmed and touched anew each time (a page fault per 4 KiB
     * was a fifth of the flusher's CPU when measured). Keep freed memory. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    return flusher_main();
}
