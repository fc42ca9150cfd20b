/* main.c - kafscale-flusher's entry point (see flusher.c). */
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
    return flusher_main();
}
