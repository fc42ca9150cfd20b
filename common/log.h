/* log.h - leveled logging to stderr, one JSON object per line:
 *   {"time":"2024-05-01T12:00:00.123Z","level":"info","component":"broker",
 *    "pid":42,"message":"...","fields":{...}}
 * ("fields" only when the call gives some: log_fields()). The message text is
 * kept as written, so a substring of it is still found in the line (JSON
 * escapes only quotes, backslashes and control characters).
 * KAFSCALE_LOG_LEVEL = debug|info|warn|error (default info).
 * Never a credential: log_init() notes the values of the secret variables
 * (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, KAFSCALE_ETCD_PASSWORD) and every
 * occurrence of one in a message or a field becomes "[redacted]"; fields
 * whose key names a secret (password, secret, token, credential) are
 * redacted whatever their value. */
#ifndef KAFSCALE_LOG_H
#define KAFSCALE_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
extern int log_level;
extern const char *log_component;

void log_init(const char *component);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Structured fields: log_fields(LOG_INFO, LOG_F(LF_STR("topic", name),
 * LF_INT("partition", 3)), "retention dropped %d segments", n). */
typedef struct log_field {
    const char *key;
    const char *str; /* is_str: the value (NULL is written as "") */
    long long num;   /* !is_str: the value */
    bool is_str;
} log_field_t;
#define LF_STR(k, v) ((log_field_t){(k), (v), 0, true})
#define LF_INT(k, v) ((log_field_t){(k), NULL, (long long)(v), false})
#define LOG_F(...) (const log_field_t[]){__VA_ARGS__}, (int)(sizeof((const log_field_t[]){__VA_ARGS__}) / sizeof(log_field_t))
void log_msg_fields(int level, const log_field_t *fields, int nfields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define log_fields(level, ...) do { if (log_level <= (level)) log_msg_fields((level), __VA_ARGS__); } while (0)

#define log_debug(...) do { if (log_level <= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_level <= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...)  do { if (log_level <= LOG_WARN) log_msg(LOG_WARN, __VA_ARGS__); } while (0)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Assertions that stay on in release builds (data-guarding checks). */
void ks_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define KS_ASSERT(e) ((e) ? (void)0 : ks_assert_fail(#e, __FILE__, __LINE__))
#endif
