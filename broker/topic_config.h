/* topic_config.h - the topic configs the broker knows, listed from one table.
 *
 * topic_config.c holds a single table of every topic config we accept
 * ({name, type, default, bounds, validator, where it is stored}). Setting a
 * config (topic_config_set, declared in broker.h), the defaults
 * (topic_config_defaults) and listing every config with its current value
 * (topic_config_describe for CreateTopics v5+, topic_config_list with types,
 * broker synonyms and documentation for DescribeConfigs) all walk that
 * table, so a new config is added in exactly one place.
 *
 * Configs Kafka tools commonly send but which mean nothing to a broker whose
 * data lives in the object store (min.insync.replicas, flush.ms, ...) are
 * validated like Kafka validates them and then ignored: they always describe
 * as their default.
 */
#ifndef KAFSCALE_TOPIC_CONFIG_H
#define KAFSCALE_TOPIC_CONFIG_H

#include <stdbool.h>
#include "broker.h"

/* Called once per config, in name order. `name` and `value` are valid only
 * during the call (copy them to keep them). is_default: the value equals the
 * config's default. */
typedef void(topic_config_emit_fn)(void *arg, const char *name, const char *value, bool is_default);

/* Lists every known topic config of `cfg` through emit(). Returns how many. */
int topic_config_describe(const topic_config_t *cfg, topic_config_emit_fn *emit, void *arg);

/* Whether `name` is a topic config we know. */
bool topic_config_known(kstr_t name);

#define TOPIC_CONFIG_VALMAX 256 /* longest value text, NUL included */

/* One config of a topic with what DescribeConfigs reports about it. Strings
 * are static, except `value`, valid only as long as the buffer it was
 * formatted into (the callback's duration for topic_config_list). */
typedef struct topic_config_entry {
    const char *name;
    const char *value;
    const char *dflt;
    bool is_default; /* value equals the default */
    int8_t type;     /* Kafka ConfigType: 1 BOOLEAN, 2 STRING, 3 INT, 5 LONG, 6 DOUBLE, 7 LIST */
    bool is_list;    /* comma-separated list: IncrementalAlterConfigs may APPEND / SUBTRACT */
    bool kept;       /* the broker keeps the value; false: validated, then ignored (reads as default) */
    const char *synonym; /* the broker config supplying the default (e.g. log.retention.ms), or NULL */
    const char *doc;
} topic_config_entry_t;

typedef void(topic_config_entry_fn)(void *arg, const topic_config_entry_t *e);

/* Lists every known topic config of `cfg`, in name order. Returns how many. */
int topic_config_list(const topic_config_t *cfg, topic_config_entry_fn *fn, void *arg);
/* The entry of config `name` in cfg (its value formatted into buf); false
 * when the name is unknown. */
bool topic_config_get(const topic_config_t *cfg, kstr_t name, topic_config_entry_t *out,
                      char buf[TOPIC_CONFIG_VALMAX]);

#endif
