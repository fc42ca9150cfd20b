/* log.c - leveled logging to stderr as one JSON object per line (log.h),
 * secrets redacted, and always-on assertions. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO;
const char *log_component = "kafscale";

/* Values that must never reach a log line (see log.h). */
static const char *secret_vars[] = {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "KAFSCALE_ETCD_PASSWORD"};
#define NSECRETS (sizeof secret_vars / sizeof secret_vars[0])
static const char *secrets[NSECRETS];

void log_init(const char *component) {
    log_component = component;
    for (size_t i = 0; i < NSECRETS; i++) {
        const char *v = getenv(secret_vars[i]);
        secrets[i] = v && strlen(v) >= 4 ? v : NULL; /* shorter ones would redact ordinary words */
    }
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

/* A log line under construction. Pieces go in whole or not at all (`full`
 * then says something was left out), so an escape is never cut in half. */
typedef struct lbuf { char *p; size_t len, cap; bool full; } lbuf_t;

static void lb_put(lbuf_t *b, const char *s, size_t n) {
    if (b->full || b->len + n > b->cap) {
        b->full = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* Copies s into out (NUL-terminated, cut at outsz) with every known secret
 * replaced by [redacted]: done before any cut, so that no prefix of a secret
 * survives. */
static void redact(char *out, size_t outsz, const char *s) {
    size_t o = 0, n = strlen(s);
    for (size_t i = 0; i < n && o + 1 < outsz;) {
        size_t skip = 0;
        for (size_t k = 0; k < NSECRETS && !skip; k++) {
            size_t sl = secrets[k] ? strlen(secrets[k]) : 0;
            if (sl && sl <= n - i && !memcmp(s + i, secrets[k], sl)) skip = sl;
        }
        if (skip) {
            size_t r = o + 10 < outsz ? 10 : outsz - 1 - o;
            memcpy(out + o, "[redacted]", r);
            o += r;
            i += skip;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = 0;
}

/* Appends s as JSON string content (no quotes); invalid UTF-8 bytes become
 * U+FFFD. */
static void lb_json(lbuf_t *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            lb_put(b, e, 2);
            i++;
        } else if (c == '\n') {
            lb_put(b, "\\n", 2);
            i++;
        } else if (c == '\t') {
            lb_put(b, "\\t", 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            lb_put(b, e, 6);
            i++;
        } else if (c < 0x80) {
            lb_put(b, (const char *)&s[i], 1);
            i++;
        } else {
            /* a UTF-8 sequence: copied when well-formed */
            size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            bool ok = len && i + len <= n;
            for (size_t k = 1; ok && k < len; k++) ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
            if (ok) {
                lb_put(b, s + i, len);
                i += len;
            } else {
                lb_put(b, "\\ufffd", 6);
                i++;
            }
        }
    }
}

static bool secret_key(const char *k) {
    static const char *words[] = {"password", "secret", "token", "credential"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(k, words[i])) return true;
    return false;
}

static void lb_head(lbuf_t *b, int level, const char *msg) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    char head[160];
    int hn = snprintf(head, sizeof head, "{\"time\":\"%s.%03dZ\",\"level\":\"%s\",\"component\":\"", ts,
                      (int)(tv.tv_usec / 1000), names[level & 3]);
    lb_put(b, head, (size_t)hn);
    lb_json(b, log_component);
    hn = snprintf(head, sizeof head, "\",\"pid\":%d,\"message\":\"", (int)getpid());
    lb_put(b, head, (size_t)hn);
    lb_json(b, msg);
    lb_put(b, "\"", 1);
}

static void log_emit(int level, const log_field_t *fields, int nfields, const char *fmt, va_list ap) {
    char raw[2048], msg[2048], val[1024];
    vsnprintf(raw, sizeof raw, fmt, ap);
    redact(msg, sizeof msg, raw);
    char line[16384];
    lbuf_t b = {line, 0, sizeof line - 2, false}; /* room for "}\n" */
    lb_head(&b, level, msg);
    if (nfields > 0) {
        lb_put(&b, ",\"fields\":{", 11);
        for (int i = 0; i < nfields; i++) {
            if (i) lb_put(&b, ",", 1);
            lb_put(&b, "\"", 1);
            lb_json(&b, fields[i].key);
            lb_put(&b, "\":", 2);
            if (fields[i].is_str || secret_key(fields[i].key)) {
                redact(val, sizeof val, fields[i].str ? fields[i].str : "");
                lb_put(&b, "\"", 1);
                lb_json(&b, secret_key(fields[i].key) ? "[redacted]" : val);
                lb_put(&b, "\"", 1);
            } else {
                char num[32];
                int nn = snprintf(num, sizeof num, "%lld", fields[i].num);
                lb_put(&b, num, (size_t)nn);
            }
        }
        lb_put(&b, "}", 1);
    }
    if (b.full) {
        /* Too long: the message alone, cut, and say so. */
        msg[512] = 0;
        b = (lbuf_t){line, 0, sizeof line - 2, false};
        lb_head(&b, level, msg);
        lb_put(&b, ",\"truncated\":true", 17);
    }
    line[b.len++] = '}';
    line[b.len++] = '\n';
    fwrite(line, 1, b.len, stderr);
}

void log_msg(int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_emit(level, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_msg_fields(int level, const log_field_t *fields, int nfields, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_emit(level, fields, nfields, fmt, ap);
    va_end(ap);
}

void ks_assert_fail(const char *expr, const char *file, int line) {
    log_msg(LOG_ERROR, "assertion failed: %s at %s:%d", expr, file, line);
    abort();
}
