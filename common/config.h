/* config.h - reading KAFSCALE_* settings from the environment.
 * A bad value stops the process at start with a message naming the variable. */
#ifndef KAFSCALE_CONFIG_H
#define KAFSCALE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Integer in [min, max]; accepts suffixes k/m/g (x1024) when `sizes` is set. */
int64_t env_int(const char *name, int64_t dflt, int64_t min, int64_t max);
int64_t env_size(const char *name, int64_t dflt, int64_t min, int64_t max);
bool    env_bool(const char *name, bool dflt);
const char *env_str(const char *name, const char *dflt);
/* Splits "host:port" (host may be empty, or [v6]); exits naming `name` on error. */
void    env_hostport(const char *name, const char *value, char *host, size_t hostsz, int *port);
#endif
