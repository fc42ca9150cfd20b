/* log.h - leveled logging, one line per event, to stderr.
 * KAFSCALE_LOG_LEVEL = debug|info|warn|error (default info). */
#ifndef KAFSCALE_LOG_H
#define KAFSCALE_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
extern int log_level;
extern const char *log_component;

void log_init(const char *component);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_level <= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_level <= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...)  do { if (log_level <= LOG_WARN) log_msg(LOG_WARN, __VA_ARGS__); } while (0)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Assertions that stay on in release builds (data-guarding checks). */
void ks_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define KS_ASSERT(e) ((e) ? (void)0 : ks_assert_fail(#e, __FILE__, __LINE__))
#endif
