/* meta_snapshot.c - the topics snapshot of the etcd metadata, the JSON at
 * /kafscale/metadata/snapshot (see meta.h): parsing it into topics
 * (meta_snapshot_parse, no I/O, also what a broker's watch on the key uses)
 * and editing it for a put or a deletion (meta_snapshot_edit, meta_etcd.c
 * writes the result with a compare-and-swap).
 *
 * The document is written by brokers and by operators (`etcdctl put`), so
 * nothing in it is trusted: each topic entry is checked on its own (name,
 * partitions 1..100000, optional 32-hex id, optional configs object of
 * strings or integers that fit meta_topic_t) and a bad one is skipped with a
 * message while the good ones still apply. An edit keeps entries it cannot
 * read as they are (an operator's typo is not silently destroyed) and
 * unknown fields of the document and of entries it does not touch.
 */
#include "meta_backend.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"

#define SNAPSHOT_VERSION 1
#define MAX_PARTITIONS 100000

void meta_topic_id_from_name(const char *name, uint8_t id[16]) {
    static const char pfx[] = "kafscale-topic:";
    size_t n = strlen(name);
    char *buf = malloc(sizeof pfx + n);
    KS_ASSERT(buf != NULL);
    memcpy(buf, pfx, sizeof pfx - 1);
    memcpy(buf + sizeof pfx - 1, name, n);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    KS_ASSERT(EVP_Digest(buf, sizeof pfx - 1 + n, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen >= 16);
    free(buf);
    memcpy(id, md, 16);
}

static bool id_is_zero(const uint8_t id[16]) {
    for (int i = 0; i < 16; i++)
        if (id[i]) return false;
    return true;
}

static void id_hex(const uint8_t id[16], char out[33]) {
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads one entry of "topics" into t. 0, or -1 with why set. *had_id: the
 * entry carried a usable id (else t->id is the derived one). */
static int entry_read(json_t *e, meta_topic_t *t, bool *had_id, char *why, size_t whysz) {
    memset(t, 0, sizeof *t);
    *had_id = false;
    if (!json_is_object(e)) { snprintf(why, whysz, "not an object"); return -1; }
    json_t *jn = json_object_get(e, "name");
    if (!json_is_string(jn)) { snprintf(why, whysz, "no \"name\" string"); return -1; }
    const char *name = json_string_value(jn);
    size_t nlen = json_string_length(jn);
    if (strlen(name) != nlen || nlen >= sizeof t->name ||
        !kafka_topic_name_valid((kstr_t){name, (int32_t)nlen})) {
        snprintf(why, whysz, "bad topic name \"%.64s\" (1-249 of [a-zA-Z0-9._-])", name);
        return -1;
    }
    memcpy(t->name, name, nlen);
    json_t *jp = json_object_get(e, "partitions");
    if (!json_is_integer(jp) || json_integer_value(jp) < 1 || json_integer_value(jp) > MAX_PARTITIONS) {
        snprintf(why, whysz, "topic %s: \"partitions\" is not an integer in 1..%d", name, MAX_PARTITIONS);
        return -1;
    }
    t->npartitions = (int32_t)json_integer_value(jp);
    json_t *ji = json_object_get(e, "id");
    if (ji && !json_is_null(ji)) {
        const char *h = json_string_value(ji);
        if (!h || json_string_length(ji) != 32) {
            snprintf(why, whysz, "topic %s: \"id\" is not 32 hex digits", name);
            return -1;
        }
        for (int i = 0; i < 16; i++) {
            int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
            if (a < 0 || b < 0) {
                snprintf(why, whysz, "topic %s: \"id\" is not 32 hex digits", name);
                return -1;
            }
            t->id[i] = (uint8_t)(a << 4 | b);
        }
        *had_id = !id_is_zero(t->id);
    }
    if (!*had_id) meta_topic_id_from_name(t->name, t->id);
    json_t *jc = json_object_get(e, "configs");
    if (jc && !json_is_null(jc)) {
        if (!json_is_object(jc)) {
            snprintf(why, whysz, "topic %s: \"configs\" is not an object", name);
            return -1;
        }
        size_t used = 0;
        const char *k;
        json_t *v;
        json_object_foreach(jc, k, v) {
            char num[32];
            const char *val;
            if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v)) {
                val = json_string_value(v);
            } else if (json_is_integer(v)) {
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                val = num;
            } else {
                snprintf(why, whysz, "topic %s: config \"%.64s\" is not a string or an integer", name, k);
                return -1;
            }
            if (meta_topic_config_append(t->configs, sizeof t->configs, &used, k, val)) {
                snprintf(why, whysz, "topic %s: config \"%.64s\" is malformed or the configs are too long", name, k);
                return -1;
            }
        }
    }
    return 0;
}

/* Loads and checks the document: an object, version absent or 1, "topics"
 * absent, null or an array. NULL with err set otherwise. */
static json_t *doc_load(const char *js, size_t len, char *err, size_t errsz) {
    json_error_t je;
    json_t *doc = json_loadb(js, len, JSON_ALLOW_NUL, &je); /* a NUL fails its entry only */
    if (!doc) {
        snprintf(err, errsz, "snapshot %s: not valid JSON: %s (line %d, column %d)", META_KEY_SNAPSHOT, je.text,
                 je.line, je.column);
        return NULL;
    }
    const char *why = NULL;
    json_t *v = json_object_get(doc, "version");
    json_t *tp = json_object_get(doc, "topics");
    if (!json_is_object(doc)) why = "not a JSON object";
    else if (v && (!json_is_integer(v) || json_integer_value(v) != SNAPSHOT_VERSION))
        why = "unsupported \"version\" (this broker reads version 1)";
    else if (tp && !json_is_null(tp) && !json_is_array(tp)) why = "\"topics\" is not an array";
    if (why) {
        snprintf(err, errsz, "snapshot %s: %s", META_KEY_SNAPSHOT, why);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int meta_snapshot_parse(const char *js, size_t len, const meta_load_cb_t *cb, char *err, size_t errsz) {
    json_t *doc = doc_load(js, len, err, errsz);
    if (!doc) return -1;
    json_t *seen = json_object();
    KS_ASSERT(seen != NULL);
    int skipped = 0;
    char first[480] = "";
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "topics"), i, e) {
        meta_topic_t t;
        bool had_id;
        char why[400];
        int rc = entry_read(e, &t, &had_id, why, sizeof why);
        if (!rc && json_object_get(seen, t.name)) {
            snprintf(why, sizeof why, "topic %s named a second time", t.name);
            rc = -1;
        }
        if (rc) {
            if (!skipped++) snprintf(first, sizeof first, "topics[%zu]: %s", i, why);
            continue;
        }
        json_object_set_new(seen, t.name, json_true());
        if (cb && cb->topic) cb->topic(cb->arg, &t);
    }
    json_decref(seen);
    json_decref(doc);
    if (skipped)
        snprintf(err, errsz, "snapshot %s: skipped %d invalid topic entr%s; first: %s", META_KEY_SNAPSHOT, skipped,
                 skipped == 1 ? "y" : "ies", first);
    return skipped;
}

/* The JSON entry of a topic (its id: derived when all zero). */
static json_t *entry_json(const meta_topic_t *t) {
    uint8_t id[16];
    memcpy(id, t->id, 16);
    if (id_is_zero(id)) meta_topic_id_from_name(t->name, id);
    char hex[33];
    id_hex(id, hex);
    json_t *cfg = json_object();
    char buf[sizeof t->configs];
    snprintf(buf, sizeof buf, "%s", t->configs);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); cfg && line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq || eq == line) continue; /* not a config line: readers skip it too */
        *eq = 0;
        json_object_set_new(cfg, line, json_string(eq + 1));
    }
    return json_pack("{s:s,s:s,s:i,s:o}", "name", t->name, "id", hex, "partitions", (int)t->npartitions, "configs",
                     cfg ? cfg : json_object());
}

char *meta_snapshot_edit(const char *old, size_t old_len, const meta_topic_t *put, const char *del_name,
                         meta_topic_t *backfill, int max_backfill, int *nbackfill, char *err, size_t errsz) {
    KS_ASSERT(put || del_name);
    *nbackfill = 0;
    json_t *doc = old && old_len ? doc_load(old, old_len, err, errsz)
                                : json_pack("{s:i,s:[]}", "version", SNAPSHOT_VERSION, "topics");
    if (!doc) return NULL;
    json_t *topics = json_object_get(doc, "topics");
    if (!json_is_array(topics)) {
        topics = json_array();
        json_object_set_new(doc, "topics", topics);
    }
    const char *name = put ? put->name : del_name;
    bool replaced = false;
    for (size_t i = 0; i < json_array_size(topics);) {
        json_t *e = json_array_get(topics, i);
        const char *en = json_string_value(json_object_get(e, "name"));
        if (en && !strcmp(en, name)) {
            if (put && !replaced) {
                json_array_set_new(topics, i, entry_json(put));
                replaced = true;
                i++;
            } else {
                json_array_remove(topics, i);
            }
            continue;
        }
        meta_topic_t t;
        bool had_id;
        char why[400];
        if (!entry_read(e, &t, &had_id, why, sizeof why) && !had_id) {
            char hex[33];
            id_hex(t.id, hex);
            json_object_set_new(e, "id", json_string(hex)); /* the derived id, written back */
            if (*nbackfill < max_backfill) backfill[(*nbackfill)++] = t;
        }
        i++;
    }
    if (put && !replaced) json_array_append_new(topics, entry_json(put));
    json_object_set_new(doc, "version", json_integer(SNAPSHOT_VERSION));
    char *out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!out) snprintf(err, errsz, "out of memory");
    return out;
}
