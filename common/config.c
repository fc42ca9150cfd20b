/* config.c - strict parsing of KAFSCALE_* environment variables. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die_bad(const char *name, const char *value, const char *why) {
    fprintf(stderr, "kafscale: bad value for %s: '%s' (%s)\n", name, value, why);
    exit(2);
}

static int64_t parse_int(const char *name, const char *v, bool sizes, int64_t min, int64_t max) {
    char *end;
    errno = 0;
    /* strtoll would skip blanks and take a '+': accept digits, or '-' then digits. */
    if (!(isdigit((unsigned char)v[0]) || (v[0] == '-' && isdigit((unsigned char)v[1])))) die_bad(name, v, "not a number");
    long long n = strtoll(v, &end, 10);
    if (errno || end == v) die_bad(name, v, "not a number");
    int64_t mul = 1;
    if (sizes && *end) {
        switch (*end) {
        case 'k': case 'K': mul = 1024; break;
        case 'm': case 'M': mul = 1024 * 1024; break;
        case 'g': case 'G': mul = 1024LL * 1024 * 1024; break;
        default: die_bad(name, v, "unknown size suffix; use k, m or g");
        }
        end++;
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'b' || *end == 'B') end++;
    }
    if (*end) die_bad(name, v, "trailing characters");
    if (n > INT64_MAX / mul || n < INT64_MIN / mul) die_bad(name, v, "out of range");
    n *= mul;
    if (n < min || n > max) {
        char why[96];
        snprintf(why, sizeof why, "must be between %lld and %lld", (long long)min, (long long)max);
        die_bad(name, v, why);
    }
    return n;
}

int64_t env_int(const char *name, int64_t dflt, int64_t min, int64_t max) {
    const char *v = getenv(name);
    return (v && *v) ? parse_int(name, v, false, min, max) : dflt;
}

int64_t env_size(const char *name, int64_t dflt, int64_t min, int64_t max) {
    const char *v = getenv(name);
    return (v && *v) ? parse_int(name, v, true, min, max) : dflt;
}

bool env_bool(const char *name, bool dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) return true;
    if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) return false;
    die_bad(name, v, "expected true or false");
    return dflt;
}

const char *env_str(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return (v && *v) ? v : dflt;
}

void env_hostport(const char *name, const char *value, char *host, size_t hostsz, int *port) {
    const char *colon;
    if (value[0] == '[') {
        const char *rb = strchr(value, ']');
        if (!rb || rb[1] != ':') die_bad(name, value, "expected [v6addr]:port");
        size_t n = (size_t)(rb - value - 1);
        if (n >= hostsz) die_bad(name, value, "host too long");
        memcpy(host, value + 1, n);
        host[n] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(value, ':');
        if (!colon) die_bad(name, value, "expected host:port");
        size_t n = (size_t)(colon - value);
        if (n >= hostsz) die_bad(name, value, "host too long");
        memcpy(host, value, n);
        host[n] = '\0';
    }
    *port = (int)parse_int(name, colon + 1, false, 0, 65535);
}
