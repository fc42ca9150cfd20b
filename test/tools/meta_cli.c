/* meta_cli.c - a command line over the metadata interfaces (common/meta.h,
 * common/meta_groups.h) for the end-to-end tests: with KAFSCALE_ETCD_ENDPOINTS
 * set it drives the real etcd backend (otherwise the file journals under
 * --data-dir, default ./data). Every command prints one JSON object per line
 * on stdout; several commands run in one process (the same handles, so a
 * fence set by one command holds for the next) when separated by a lone ",":
 *
 *   meta_cli fence t 0 42 , commit t:0:0:9 t:1:0:4
 *
 * Commands:
 *   backend                                  {"meta":"etcd"|"file","groups":...}
 *   put-topic NAME PARTITIONS [--id HEX32] [--config K=V]...        {"rc":N}
 *   put-topics PREFIX COUNT [PARTITIONS]     puts PREFIX-0 .. PREFIX-(COUNT-1) one call each
 *                                            {"rc":N,"count":N}
 *   delete-topic NAME                        {"rc":N}
 *   load                                     {"topic":NAME,"id":HEX,"partitions":N,"configs":{..}},
 *                                            {"segment":{..}}, {"log_start":{"topic","partition","offset"}}
 *                                            lines, then {"loaded":true,"topics":N,"segments":N,"log_starts":N}
 *                                            or {"error":MSG} (exit 1)
 *   load-partition TOPIC P                   the same for one partition
 *   parse-snapshot FILE                      meta_snapshot_parse of FILE: topic lines, then {"rc":N,"err":MSG}
 *   fence TOPIC P REV                        meta_set_fence                 {"fence":REV}
 *   commit SEG...                            SEG = TOPIC:P:BASE:LAST[:EPOCH[:IDHEX32]]
 *                                            {"rc":N,"fenced":[0|1,...]}
 *   remove TOPIC P NEW_START [BASE...]       meta_remove_segments           {"rc":N}
 *   drop TOPIC                               meta_drop_topic_segments       {"rc":N}
 *   put-group GROUP [--protocol-type T] [--protocol P] [--leader L] [--generation N] [--state-ms MS]
 *             [--member ID[:INSTANCE[:SUBHEX[:ASSIGNHEX]]]]...                     {"rc":N}
 *   put-offsets GROUP OFF...                 OFF = TOPIC:P:OFFSET[:META]; META "@null" = null,
 *                                            "@hex:HEX" = those bytes, else the text   {"rc":N}
 *   delete-offsets GROUP TOPIC:P...          {"rc":N}
 *   delete-group GROUP                       {"rc":N}
 *   load-groups                              {"group":{..}} lines, {"offset":{..}} lines,
 *                                            then {"loaded":true,"groups":N,"offsets":N}
 *   load-group GROUP                         the same for one group
 *
 * Byte strings (member metadata, offset metadata that is not text) print as
 * hex. Exit status: 0, 1 when a call returned -1 (or a load failed; the
 * message on stdout and in the log on stderr), 2 usage or configuration.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "meta.h"
#include "meta_groups.h"

static const char *data_dir = "data";
static meta_t *mt, *ms, *mr;  /* writer "topics", "segments", read-only */
static meta_groups_t *mg;
static int exit_status;

static void emit(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    printf("%s\n", s ? s : "{}");
    fflush(stdout);
    free(s);
    json_decref(o);
}

static int usage(void) {
    fprintf(stderr, "usage: meta_cli [--data-dir DIR] COMMAND ARGS... [, COMMAND ARGS...]...  (see test/tools/meta_cli.c)\n");
    return 2;
}

static meta_t *handle(meta_t **h, const char *writer) {
    if (!*h) {
        char err[512];
        *h = meta_open(data_dir, writer, err, sizeof err);
        if (!*h) {
            fprintf(stderr, "meta_cli: %s\n", err);
            exit(2);
        }
    }
    return *h;
}

static meta_groups_t *groups(void) {
    if (!mg) {
        char err[512];
        mg = meta_groups_open(data_dir, err, sizeof err);
        if (!mg) {
            fprintf(stderr, "meta_cli: %s\n", err);
            exit(2);
        }
    }
    return mg;
}

static void hex(const uint8_t *p, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * n] = 0;
}

static json_t *jhex(const void *p, size_t n) {
    char *h = malloc(2 * n + 1);
    hex(p, n, h);
    json_t *s = json_string(h);
    free(h);
    return s;
}

/* Decodes hex into out (cap bytes); the length or -1. */
static long unhex(const char *h, uint8_t *out, size_t cap) {
    size_t n = strlen(h);
    if (n % 2 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}

static bool parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

static void rc_line(int rc) {
    emit(json_pack("{s:i}", "rc", rc));
    if (rc == -1) exit_status = 1;
}

/* ---- load callbacks ---- */

typedef struct counts { int topics, segments, log_starts, groups, offsets; } counts_t;

static void on_topic(void *arg, const meta_topic_t *t) {
    ((counts_t *)arg)->topics++;
    json_t *cfg = json_object();
    char buf[sizeof t->configs];
    snprintf(buf, sizeof buf, "%s", t->configs);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        json_object_set_new(cfg, line, json_string(eq + 1));
    }
    emit(json_pack("{s:s,s:o,s:i,s:o}", "topic", t->name, "id", jhex(t->id, 16), "partitions",
                   (int)t->npartitions, "configs", cfg));
}

static void on_segment(void *arg, const meta_segment_t *s) {
    ((counts_t *)arg)->segments++;
    emit(json_pack("{s:{s:s,s:o,s:i,s:i,s:I,s:I,s:I,s:I,s:I}}", "segment", "topic", s->topic, "topic_id",
                   jhex(s->topic_id, 16), "partition", (int)s->partition, "leader_epoch", (int)s->leader_epoch,
                   "base_offset", (json_int_t)s->base_offset, "last_offset", (json_int_t)s->last_offset, "size",
                   (json_int_t)s->size, "max_timestamp", (json_int_t)s->max_timestamp, "created_ms",
                   (json_int_t)s->created_ms));
}

static void on_log_start(void *arg, const char *topic, int32_t p, int64_t start) {
    ((counts_t *)arg)->log_starts++;
    emit(json_pack("{s:{s:s,s:i,s:I}}", "log_start", "topic", topic, "partition", (int)p, "offset",
                   (json_int_t)start));
}

static json_t *jstr_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static void on_group(void *arg, const mg_group_t *g) {
    ((counts_t *)arg)->groups++;
    json_t *mem = json_array();
    for (int i = 0; i < g->nmembers; i++) {
        const mg_member_t *m = &g->members[i];
        json_array_append_new(
            mem, json_pack("{s:s,s:o,s:s,s:s,s:i,s:i,s:o,s:o}", "member_id", m->member_id, "instance_id",
                           jstr_or_null(m->instance_id), "client_id", m->client_id ? m->client_id : "",
                           "client_host", m->client_host ? m->client_host : "", "session_timeout_ms",
                           (int)m->session_timeout_ms, "rebalance_timeout_ms", (int)m->rebalance_timeout_ms,
                           "subscription", jhex(m->subscription, (size_t)m->subscription_len), "assignment",
                           jhex(m->assignment, (size_t)m->assignment_len)));
    }
    emit(json_pack("{s:{s:s,s:o,s:o,s:o,s:i,s:I,s:o}}", "group", "group_id", g->group_id, "protocol_type",
                   jstr_or_null(g->protocol_type), "protocol", jstr_or_null(g->protocol), "leader",
                   jstr_or_null(g->leader), "generation", (int)g->generation, "state_ms", (json_int_t)g->state_ms,
                   "members", mem));
}

static void on_offset(void *arg, const char *group_id, const mg_offset_t *o) {
    ((counts_t *)arg)->offsets++;
    json_t *md;
    if (!o->metadata) md = json_null();
    else md = json_pack("{s:o}", "hex", jhex(o->metadata, (size_t)o->metadata_len));
    emit(json_pack("{s:{s:s,s:s,s:o,s:i,s:I,s:i,s:o,s:I,s:I}}", "offset", "group_id", group_id, "topic", o->topic,
                   "topic_id", jhex(o->topic_id, 16), "partition", (int)o->partition, "offset",
                   (json_int_t)o->offset, "leader_epoch", (int)o->leader_epoch, "metadata", md, "commit_ms",
                   (json_int_t)o->commit_ms, "expire_ms", (json_int_t)o->expire_ms));
}

/* ---- commands ---- */

/* TOPIC:P:A[:B[:C[:D]]] split in place; the number of fields or -1. */
static int split(char *s, char **f, int max) {
    int n = 0;
    f[n++] = s;
    for (char *p = s; *p && n < max; p++)
        if (*p == ':') {
            *p = 0;
            f[n++] = p + 1;
        }
    return n;
}

static int cmd_put_topic(int argc, char **argv) {
    if (argc < 3) return usage();
    meta_topic_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", argv[1]);
    t.npartitions = atoi(argv[2]);
    if (t.npartitions < 1) return usage();
    size_t used = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--id") && i + 1 < argc) {
            if (unhex(argv[++i], t.id, 16) != 16) return usage();
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            int n = snprintf(t.configs + used, sizeof t.configs - used, "%s\n", argv[++i]);
            if (n < 0 || (size_t)n >= sizeof t.configs - used) return usage();
            used += (size_t)n;
        } else {
            return usage();
        }
    }
    /* without --id the id is all zero: the backend derives one from the name */
    rc_line(meta_put_topic(handle(&mt, "topics"), &t));
    return 0;
}

static int cmd_put_topics(int argc, char **argv) {
    if (argc < 3) return usage();
    int count = atoi(argv[2]), np = argc > 3 ? atoi(argv[3]) : 1, rc = 0;
    for (int i = 0; i < count && !rc; i++) {
        meta_topic_t t;
        memset(&t, 0, sizeof t);
        snprintf(t.name, sizeof t.name, "%s-%d", argv[1], i);
        t.npartitions = np;
        for (int k = 0; k < 16; k++) t.id[k] = (uint8_t)(i * 16 + k + 1);
        rc = meta_put_topic(handle(&mt, "topics"), &t);
    }
    emit(json_pack("{s:i,s:i}", "rc", rc, "count", count));
    if (rc) exit_status = 1;
    return 0;
}

static int cmd_load(int argc, char **argv, bool one) {
    if (one && argc != 3) return usage();
    counts_t c = {0};
    meta_load_cb_t cb = {on_topic, on_segment, on_log_start, &c};
    char err[1024];
    meta_t *m = handle(&mr, NULL);
    int rc = one ? meta_load_partition(m, argv[1], atoi(argv[2]), &cb, err, sizeof err)
                 : meta_load(m, &cb, err, sizeof err);
    if (rc) {
        emit(json_pack("{s:s}", "error", err));
        exit_status = 1;
        return 0;
    }
    emit(json_pack("{s:b,s:i,s:i,s:i}", "loaded", 1, "topics", c.topics, "segments", c.segments, "log_starts",
                   c.log_starts));
    return 0;
}

static int cmd_parse_snapshot(int argc, char **argv) {
    if (argc != 2) return usage();
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    counts_t c = {0};
    meta_load_cb_t cb = {.topic = on_topic, .arg = &c};
    char err[1024] = "";
    int rc = meta_snapshot_parse(buf, n, &cb, err, sizeof err);
    free(buf);
    emit(json_pack("{s:i,s:s}", "rc", rc, "err", err));
    return 0;
}

static int cmd_fence(int argc, char **argv) {
    int64_t rev;
    if (argc != 4 || !parse_i64(argv[3], &rev)) return usage();
    meta_set_fence(handle(&ms, "segments"), argv[1], atoi(argv[2]), rev);
    emit(json_pack("{s:I}", "fence", (json_int_t)rev));
    return 0;
}

static int cmd_commit(int argc, char **argv) {
    int n = argc - 1;
    meta_segment_t *segs = calloc((size_t)(n ? n : 1), sizeof *segs);
    uint8_t *fenced = calloc((size_t)(n ? n : 1), 1);
    for (int i = 0; i < n; i++) {
        char *f[6];
        int k = split(argv[i + 1], f, 6);
        int64_t base, last;
        if (k < 4 || !parse_i64(f[2], &base) || !parse_i64(f[3], &last)) return usage();
        meta_segment_t *s = &segs[i];
        snprintf(s->topic, sizeof s->topic, "%s", f[0]);
        s->partition = atoi(f[1]);
        s->base_offset = base;
        s->last_offset = last;
        s->leader_epoch = k > 4 ? atoi(f[4]) : 0;
        if (k > 5 && unhex(f[5], s->topic_id, 16) != 16) return usage();
        s->size = 100 * (last - base + 1);
        s->max_timestamp = 1700000000000 + last;
        s->created_ms = 1700000000000;
    }
    memset(fenced, 0xee, (size_t)(n ? n : 1)); /* the call must overwrite every byte */
    int rc = meta_commit_segments(handle(&ms, "segments"), segs, n, fenced);
    json_t *fa = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(fa, json_integer(fenced[i]));
    emit(json_pack("{s:i,s:o}", "rc", rc, "fenced", fa));
    if (rc == -1) exit_status = 1;
    free(segs);
    free(fenced);
    return 0;
}

static int cmd_remove(int argc, char **argv) {
    int64_t start;
    if (argc < 4 || !parse_i64(argv[3], &start)) return usage();
    int n = argc - 4;
    meta_segment_t *segs = calloc((size_t)(n ? n : 1), sizeof *segs);
    for (int i = 0; i < n; i++) {
        snprintf(segs[i].topic, sizeof segs[i].topic, "%s", argv[1]);
        segs[i].partition = atoi(argv[2]);
        if (!parse_i64(argv[4 + i], &segs[i].base_offset)) return usage();
    }
    rc_line(meta_remove_segments(handle(&ms, "segments"), segs, n, argv[1], atoi(argv[2]), start));
    free(segs);
    return 0;
}

static int cmd_put_group(int argc, char **argv) {
    if (argc < 2) return usage();
    mg_group_t g = {.group_id = argv[1]};
    mg_member_t mem[64];
    uint8_t bufs[64][2][256];
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) return usage();
        const char *o = argv[i], *v = argv[++i];
        if (!strcmp(o, "--protocol-type")) g.protocol_type = v;
        else if (!strcmp(o, "--protocol")) g.protocol = v;
        else if (!strcmp(o, "--leader")) g.leader = v;
        else if (!strcmp(o, "--generation")) g.generation = atoi(v);
        else if (!strcmp(o, "--state-ms")) g.state_ms = atoll(v);
        else if (!strcmp(o, "--member") && g.nmembers < 64) {
            char *f[4];
            int k = split(argv[i], f, 4);
            mg_member_t *m = &mem[g.nmembers];
            memset(m, 0, sizeof *m);
            m->member_id = f[0];
            m->instance_id = k > 1 && f[1][0] ? f[1] : NULL;
            m->client_id = "meta_cli";
            m->client_host = "/127.0.0.1";
            m->session_timeout_ms = 10000;
            m->rebalance_timeout_ms = 30000;
            long sl = k > 2 ? unhex(f[2], bufs[g.nmembers][0], 256) : 0;
            long al = k > 3 ? unhex(f[3], bufs[g.nmembers][1], 256) : 0;
            if (sl < 0 || al < 0) return usage();
            m->subscription = bufs[g.nmembers][0];
            m->subscription_len = (int32_t)sl;
            m->assignment = bufs[g.nmembers][1];
            m->assignment_len = (int32_t)al;
            g.nmembers++;
        } else return usage();
    }
    g.members = mem;
    rc_line(meta_groups_put_group(groups(), &g));
    return 0;
}

static int cmd_offsets(int argc, char **argv, bool del) {
    if (argc < 3) return usage();
    int n = argc - 2;
    mg_offset_t *o = calloc((size_t)n, sizeof *o);
    uint8_t (*mdb)[512] = calloc((size_t)n, sizeof *mdb);
    for (int i = 0; i < n; i++) {
        char *f[4];
        int k = split(argv[i + 2], f, 4);
        if (k < 2 || (!del && k < 3)) return usage();
        o[i].topic = f[0];
        o[i].partition = atoi(f[1]);
        if (del) continue;
        if (!parse_i64(f[2], &o[i].offset)) return usage();
        o[i].leader_epoch = -1;
        o[i].commit_ms = 1700000000000;
        o[i].expire_ms = -1;
        for (int b = 0; b < 16; b++) o[i].topic_id[b] = (uint8_t)(0xc0 + b);
        if (k < 4) {
            o[i].metadata = "";
        } else if (!strcmp(f[3], "@null")) {
            o[i].metadata = NULL;
        } else if (!strncmp(f[3], "@hex:", 5)) {
            long len = unhex(f[3] + 5, mdb[i], sizeof mdb[i]);
            if (len < 0) return usage();
            o[i].metadata = (const char *)mdb[i];
            o[i].metadata_len = (int32_t)len;
        } else {
            o[i].metadata = f[3];
            o[i].metadata_len = (int32_t)strlen(f[3]);
        }
    }
    rc_line(del ? meta_groups_delete_offsets(groups(), argv[1], o, n) : meta_groups_put_offsets(groups(), argv[1], o, n));
    free(o);
    free(mdb);
    return 0;
}

static int cmd_load_groups(int argc, char **argv, bool one) {
    if (one ? argc != 2 : argc != 1) return usage();
    counts_t c = {0};
    mg_load_cb_t cb = {on_group, on_offset, &c};
    char err[1024];
    int rc = one ? meta_groups_load_group(groups(), argv[1], &cb, err, sizeof err)
                 : meta_groups_load(groups(), &cb, err, sizeof err);
    if (rc) {
        emit(json_pack("{s:s}", "error", err));
        exit_status = 1;
        return 0;
    }
    emit(json_pack("{s:b,s:i,s:i}", "loaded", 1, "groups", c.groups, "offsets", c.offsets));
    return 0;
}

static int run(int argc, char **argv) {
    const char *c = argv[0];
    if (!strcmp(c, "backend")) {
        emit(json_pack("{s:s,s:s}", "meta", meta_is_etcd(handle(&mr, NULL)) ? "etcd" : "file", "groups",
                       meta_groups_is_etcd(groups()) ? "etcd" : "file"));
        return 0;
    }
    if (!strcmp(c, "put-topic")) return cmd_put_topic(argc, argv);
    if (!strcmp(c, "put-topics")) return cmd_put_topics(argc, argv);
    if (!strcmp(c, "delete-topic")) {
        if (argc != 2) return usage();
        rc_line(meta_delete_topic(handle(&mt, "topics"), argv[1]));
        return 0;
    }
    if (!strcmp(c, "load")) return cmd_load(argc, argv, false);
    if (!strcmp(c, "load-partition")) return cmd_load(argc, argv, true);
    if (!strcmp(c, "parse-snapshot")) return cmd_parse_snapshot(argc, argv);
    if (!strcmp(c, "fence")) return cmd_fence(argc, argv);
    if (!strcmp(c, "commit")) return cmd_commit(argc, argv);
    if (!strcmp(c, "remove")) return cmd_remove(argc, argv);
    if (!strcmp(c, "drop")) {
        if (argc != 2) return usage();
        rc_line(meta_drop_topic_segments(handle(&ms, "segments"), argv[1]));
        return 0;
    }
    if (!strcmp(c, "put-group")) return cmd_put_group(argc, argv);
    if (!strcmp(c, "put-offsets")) return cmd_offsets(argc, argv, false);
    if (!strcmp(c, "delete-offsets")) return cmd_offsets(argc, argv, true);
    if (!strcmp(c, "delete-group")) {
        if (argc != 2) return usage();
        rc_line(meta_groups_delete_group(groups(), argv[1]));
        return 0;
    }
    if (!strcmp(c, "load-groups")) return cmd_load_groups(argc, argv, false);
    if (!strcmp(c, "load-group")) return cmd_load_groups(argc, argv, true);
    return usage();
}

int main(int argc, char **argv) {
    log_init("meta-cli");
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "--data-dir")) {
        data_dir = argv[i + 1];
        i += 2;
    }
    if (i >= argc) return usage();
    while (i < argc) {
        int j = i;
        while (j < argc && strcmp(argv[j], ",")) j++;
        if (j == i) return usage();
        int rc = run(j - i, argv + i);
        if (rc) return rc;
        i = j + 1;
    }
    meta_close(mt);
    meta_close(ms);
    meta_close(mr);
    meta_groups_close(mg);
    return exit_status;
}
