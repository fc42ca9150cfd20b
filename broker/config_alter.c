/* config_alter.c - the answer to one resource of AlterConfigs or
 * IncrementalAlterConfigs (see config_alter.h): the checks and the outcome
 * both APIs share; each API only computes a topic's new configs. */
#include "config_alter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_describe_configs.h"

#define KS_ARGS(s) ((s).len > 0 ? ((s).len > 255 ? 255 : (int)(s).len) : 0), ((s).len > 0 ? (s).p : "")

kstr_t config_alter_msg(karena_t *a, const char *fmt, kstr_t arg) {
    char tmp[512];
    int n = snprintf(tmp, sizeof tmp, fmt, KS_ARGS(arg));
    if (n < 0) return KSTR_NULL;
    if ((size_t)n >= sizeof tmp) n = (int)sizeof tmp - 1;
    char *p = karena_alloc(a, (size_t)n + 1);
    if (!p) return KSTR_NULL;
    memcpy(p, tmp, (size_t)n + 1);
    return (kstr_t){p, n};
}

static kstr_t config_name(const config_alter_api_t *api, const karray_t *configs, int32_t i) {
    return *(const kstr_t *)((const uint8_t *)configs->items + api->config_size * (size_t)i + api->config_name_off);
}

static int name_cmp(const void *a, const void *b) {
    const kstr_t *x = a, *y = b;
    int32_t n = x->len < y->len ? x->len : y->len;
    int c = n > 0 ? memcmp(x->p, y->p, (size_t)n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Whether a config name is listed twice (sorted copy of the names); -1 out of memory. */
static int has_repeats(const config_alter_api_t *api, const karray_t *configs, karena_t *a) {
    int32_t n = configs->count;
    if (n < 2) return 0;
    kstr_t *names = karena_alloc(a, sizeof *names * (size_t)n);
    if (!names) return -1;
    for (int32_t i = 0; i < n; i++) names[i] = config_name(api, configs, i);
    qsort(names, (size_t)n, sizeof *names, name_cmp);
    for (int32_t i = 1; i < n; i++)
        if (kstr_eq(names[i], names[i - 1])) return 1;
    return 0;
}

static int16_t alter_topic(kreq_t *req, const config_alter_api_t *api, bool validate_only, kstr_t name,
                           const karray_t *configs, kstr_t *msg) {
    if (!kafka_topic_name_valid(name)) {
        *msg = config_alter_msg(&req->arena, "Topic name \"%.*s\" is illegal", name);
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    topic_t *t = topic_find(name);
    if (!t) {
        *msg = config_alter_msg(&req->arena, "Topic %.*s does not exist", name);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    int rep = has_repeats(api, configs, &req->arena);
    if (rep) {
        *msg = rep < 0 ? KSTR_LIT("Out of request memory.") : KSTR_LIT("Error due to duplicate config keys");
        return rep < 0 ? KERR_UNKNOWN_SERVER_ERROR : KERR_INVALID_REQUEST;
    }
    topic_config_t cfg;
    int16_t err = api->topic(req, t, configs, &cfg, msg);
    if (err || validate_only) return err;
    const char *why = NULL;
    err = topic_set_config(t, &cfg, &why);
    if (err && why) *msg = kstr_c(why);
    return err;
}

int16_t config_alter_resource(kreq_t *req, const config_alter_api_t *api, bool validate_only, int8_t type,
                              kstr_t name, const karray_t *configs, kstr_t *msg) {
    int16_t err = KERR_NONE;
    *msg = KSTR_NULL;
    switch (type) {
    case CONFIG_RESOURCE_TOPIC: err = alter_topic(req, api, validate_only, name, configs, msg); break;
    case CONFIG_RESOURCE_BROKER:
        err = broker_config_check_resource(req, name, msg);
        for (int32_t j = 0; j < configs->count && !err; j++)
            err = broker_config_refuse_change(req, name, config_name(api, configs, j), msg);
        break;
    default:
        err = KERR_INVALID_REQUEST;
        *msg = KSTR_LIT("Unsupported resource type");
        break;
    }
    if (err)
        log_info("%s: %d/%.*s refused: %s: %.*s", api->name, type, KS_ARGS(name), kafka_err_name(err),
                 KS_ARGS(*msg));
    return err;
}
