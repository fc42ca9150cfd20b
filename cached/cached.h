/* cached.h - kafscale-cached, the node's read-ahead cache daemon: the only
 * writer of the shared-memory ring (common/shm_ring.h). See cached.c. */
#ifndef KAFSCALE_CACHED_H
#define KAFSCALE_CACHED_H

#include <stdbool.h>

/* Runs the daemon until SIGTERM/SIGINT (or, when started by a broker, until
 * no broker has been connected for KAFSCALE_CACHED_LINGER_MS). Returns the
 * process exit status: 0 clean, 1 error, 3 another cached holds the ring. */
int cached_main(bool supervised);

#endif
