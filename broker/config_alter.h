/* config_alter.h - what AlterConfigs (api_alter_configs.c) and
 * IncrementalAlterConfigs (api_incremental_alter_configs.c) share, in
 * config_alter.c: the answer to one resource of either request.
 *
 * A TOPIC resource: its name must be legal and the topic must exist, no
 * config name may be listed twice (INVALID_REQUEST, Kafka's rule); then the
 * API's own callback computes the new configs (the legacy API from the
 * defaults, the incremental one from the topic's current configs), and
 * unless validate_only they are kept (topic_set_config: the topics journal,
 * the flusher). A BROKER resource is read-only: any config listed is refused
 * (broker_config_refuse_change). Other types get INVALID_REQUEST. A refusal
 * is logged with the API's name.
 */
#ifndef KAFSCALE_CONFIG_ALTER_H
#define KAFSCALE_CONFIG_ALTER_H

#include <stdbool.h>
#include <stddef.h>

#include "broker.h"

/* Computes the topic's new configs into *cfg from the resource's configs
 * (an array of the API's config structs). Returns KERR_NONE, or the error
 * for the whole resource with *msg set (nothing is changed then). */
typedef int16_t config_alter_topic_fn(kreq_t *req, const topic_t *t, const karray_t *configs, topic_config_t *cfg,
                                      kstr_t *msg);

typedef struct config_alter_api {
    const char *name;           /* for the log, e.g. "alter_configs" */
    size_t config_size;         /* sizeof one element of a resource's configs */
    size_t config_name_off;     /* offsetof its name (a kstr_t) */
    config_alter_topic_fn *topic;
} config_alter_api_t;

/* The error code (and *msg) of resource {type, name, configs}. */
int16_t config_alter_resource(kreq_t *req, const config_alter_api_t *api, bool validate_only, int8_t type,
                              kstr_t name, const karray_t *configs, kstr_t *msg);

/* printf(fmt, arg) into the request's arena; fmt holds one "%.*s" for arg. */
kstr_t config_alter_msg(karena_t *a, const char *fmt, kstr_t arg);

#endif
