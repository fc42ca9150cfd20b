/* topic_config.h - the topic configs the broker knows, listed from one table.
 *
 * topic_config.c holds a single table of every topic config we accept
 * ({name, type, default, bounds, validator, where it is stored}). Setting a
 * config (topic_config_set, declared in broker.h), the defaults
 * (topic_config_defaults) and listing every config with its current value
 * (topic_config_describe, for CreateTopics v5+ and DescribeConfigs) all walk
 * that table, so a new config is added in exactly one place.
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

#endif
