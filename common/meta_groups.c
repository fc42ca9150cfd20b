/* meta_groups.c - the embedded store of consumer groups and committed
 * offsets: <data_dir>/meta/groups.journal, a single-writer journal of
 * CRC-framed JSON lines (see meta_groups.h, and meta_file.c for the format);
 * the "file" ops of meta_backend.h (meta.c picks it when etcd is not
 * configured).
 *
 * Line format: 8 hex digits of CRC-32C over the JSON text, a space, the JSON
 * object, '\n'. Records:
 *   {"t":"group","g":G,"pt":T,"p":P,"l":L,"gen":N,"ts":MS,"m":[{member}...]}
 *        member: {"id":M,"iid":I,"cid":C,"ch":H,"st":MS,"rt":MS,"s":HEX,"a":HEX}
 *   {"t":"offsets","g":G,"o":[{"tp":T,"id":HEX,"p":P,"o":O,"e":E,"md":S,"ct":MS,"xt":MS}...]}
 *   {"t":"deloffsets","g":G,"o":[{"tp":T,"p":P}...]}
 *   {"t":"delgroup","g":G}
 * A group record replaces the previous one of that group; offsets replace
 * earlier offsets of the same partition; "delgroup" drops the group and its
 * offsets. Free-form strings (ids, offset metadata) are JSON strings when
 * they are valid UTF-8 and {"x":HEX} otherwise, so any bytes round-trip.
 * A line whose CRC or JSON is bad ends the replay (a torn tail after a
 * crash); nothing after it was acknowledged.
 *
 * Replay keeps the live state as jansson objects: {group id: {"gid": G,
 * "g": group record, "o": {"P/TOPIC": offset object}}}; compaction writes
 * that state back as one group record and one offsets record per group.
 */
#include "meta_groups.h"
#include "meta_backend.h"
#include "crc32c.h"
#include "fsutil.h"
#include "kafka.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMPACT_BYTES (8u << 20) /* rewrite once past this and twice the live size */

typedef struct mgfile {
    struct meta_groups base; /* ops = the file ops at the end */
    char dir[1024];
    int fd;             /* groups.journal, O_APPEND */
    int lock_fd;        /* flock(LOCK_EX) on groups.lock */
    uint64_t written;   /* bytes in the journal */
    uint64_t live_hint; /* bytes right after the last compaction */
    uint64_t compact_bytes;
} mgfile_t;

static const mg_ops_t file_ops;

/* ---- strings and bytes in JSON ---- */

static char *to_hex(const uint8_t *p, size_t n) {
    char *h = malloc(2 * n + 1);
    if (!h) return NULL;
    for (size_t i = 0; i < n; i++) snprintf(h + 2 * i, 3, "%02x", p[i]);
    h[2 * n] = 0;
    return h;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex into a malloc'ed buffer (NUL-terminated for convenience). */
static uint8_t *from_hex(const char *h, size_t *n) {
    size_t len = h ? strlen(h) : 0;
    if (len % 2) return NULL;
    uint8_t *out = malloc(len / 2 + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < len / 2; i++) {
        int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
        if (a < 0 || b < 0) { free(out); return NULL; }
        out[i] = (uint8_t)(a << 4 | b);
    }
    out[len / 2] = 0;
    *n = len / 2;
    return out;
}

/* A string of n bytes as JSON: a string if valid UTF-8, else {"x":HEX}. NULL
 * (the pointer) becomes JSON null. */
static json_t *jstr(const char *s, size_t n) {
    if (!s) return json_null();
    if (kafka_utf8_valid(s, n)) return json_stringn(s, n);
    char *h = to_hex((const uint8_t *)s, n);
    json_t *o = h ? json_pack("{s:s}", "x", h) : NULL;
    free(h);
    return o;
}

#define JS(s) jstr((s), (s) ? strlen(s) : 0)

static json_t *jbytes(const uint8_t *p, int32_t n) {
    char *h = to_hex(p ? p : (const uint8_t *)"", n > 0 ? (size_t)n : 0);
    json_t *s = h ? json_string(h) : NULL;
    free(h);
    return s;
}

/* Buffers decoded for one callback, freed after it. */
typedef struct scratch {
    void **p;
    int n, cap;
    bool oom;
} scratch_t;

static void *scratch_keep(scratch_t *s, void *p) {
    if (!p) { s->oom = true; return NULL; }
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        void **np = realloc(s->p, (size_t)cap * sizeof *np);
        if (!np) { free(p); s->oom = true; return NULL; }
        s->p = np;
        s->cap = cap;
    }
    s->p[s->n++] = p;
    return p;
}

static void scratch_free(scratch_t *s) {
    for (int i = 0; i < s->n; i++) free(s->p[i]);
    free(s->p);
    memset(s, 0, sizeof *s);
}

/* The string a jstr() value holds (NULL for null); *n its length. Owned by
 * the JSON value or by the scratch. */
static const char *jstr_get(json_t *v, int32_t *n, scratch_t *s) {
    if (n) *n = 0;
    if (!v || json_is_null(v)) return NULL;
    if (json_is_string(v)) {
        if (n) *n = (int32_t)json_string_length(v);
        return json_string_value(v);
    }
    size_t len = 0;
    uint8_t *b = from_hex(json_string_value(json_object_get(v, "x")), &len);
    if (!scratch_keep(s, b)) return NULL;
    if (n) *n = (int32_t)len;
    return (const char *)b;
}

static const uint8_t *jbytes_get(json_t *v, int32_t *n, scratch_t *s) {
    size_t len = 0;
    uint8_t *b = from_hex(json_string_value(v), &len);
    *n = b ? (int32_t)len : 0;
    return scratch_keep(s, b);
}

/* ---- the journal file ---- */


static void journal_path(const mgfile_t *m, char *out, size_t sz) {
    snprintf(out, sz, "%s/groups.journal", m->dir);
}

meta_groups_t *meta_groups_file_open(const char *data_dir, char *err, size_t errsz) {
    mgfile_t *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, errsz, "out of memory"); return NULL; }
    m->base = (struct meta_groups){META_GROUPS_MAGIC, &file_ops};
    snprintf(m->dir, sizeof m->dir, "%s/meta", data_dir);
    m->fd = m->lock_fd = -1;
    m->compact_bytes = COMPACT_BYTES;
    if (fs_mkdirs(m->dir)) {
        snprintf(err, errsz, "cannot create %s: %s", m->dir, strerror(errno));
        free(m);
        return NULL;
    }
    char lp[1100];
    snprintf(lp, sizeof lp, "%s/groups.lock", m->dir);
    m->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (m->lock_fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", lp, strerror(errno));
        free(m);
        return NULL;
    }
    if (flock(m->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errsz, "%s is locked by another process (is another kafscale-broker using this data directory?)",
                 lp);
        close(m->lock_fd);
        free(m);
        return NULL;
    }
    char p[1100];
    journal_path(m, p, sizeof p);
    m->fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (m->fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", p, strerror(errno));
        close(m->lock_fd);
        free(m);
        return NULL;
    }
    struct stat st;
    if (fstat(m->fd, &st) == 0) m->written = m->live_hint = (uint64_t)st.st_size;
    fs_fsync_dir(m->dir); /* the journal's directory entry, when it was just created */
    return &m->base;
}

static void file_close(mgfile_t *m) {
    if (!m) return;
    if (m->fd >= 0) close(m->fd);
    if (m->lock_fd >= 0) close(m->lock_fd);
    free(m);
}

static uint64_t file_journal_bytes(const mgfile_t *m) { return m->written; }
static void file_set_compact_bytes(mgfile_t *m, uint64_t bytes) { m->compact_bytes = bytes; }

/* Appends one record durably to fd (write, fdatasync); takes `rec`. */
static int append_to(int fd, uint64_t *written, json_t *rec) {
    if (!rec) return -1;
    char *js = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    if (!js) return -1;
    size_t n = strlen(js);
    size_t linelen = n + 10;
    char *line = malloc(linelen + 1);
    if (!line) { free(js); return -1; }
    snprintf(line, linelen + 1, "%08x %s\n", crc32c(0, js, n), js);
    free(js);
    ssize_t w = write(fd, line, linelen);
    free(line);
    if (w != (ssize_t)linelen) {
        /* Never leave half a record: records appended after it would be
         * hidden behind it at the next replay. */
        if (w > 0 && ftruncate(fd, (off_t)*written) != 0) return -1;
        return -1;
    }
    if (fdatasync(fd)) return -1;
    *written += linelen;
    return 0;
}

/* ---- replay ---- */

static json_t *state_group(json_t *state, json_t *gid, const char *key, bool create) {
    json_t *e = json_object_get(state, key);
    if (e || !create) return e;
    e = json_pack("{s:O,s:o}", "gid", gid, "o", json_object());
    if (!e || json_object_set_new_nocheck(state, key, e)) return NULL;
    return e;
}

static void offset_key(char *out, size_t sz, const char *topic, json_int_t p) {
    snprintf(out, sz, "%lld/%s", (long long)p, topic ? topic : "");
}

static void apply_record(json_t *state, json_t *rec) {
    const char *t = json_string_value(json_object_get(rec, "t"));
    json_t *gid = json_object_get(rec, "g");
    if (!t || !gid) return;
    scratch_t s = {0};
    const char *g = jstr_get(gid, NULL, &s);
    if (!g) { scratch_free(&s); return; }
    if (!strcmp(t, "delgroup")) {
        json_object_del(state, g);
    } else if (!strcmp(t, "group")) {
        json_t *e = state_group(state, gid, g, true);
        if (e) json_object_set(e, "g", rec);
    } else if (!strcmp(t, "offsets") || !strcmp(t, "deloffsets")) {
        bool del = t[0] == 'd';
        json_t *e = state_group(state, gid, g, !del);
        json_t *offs = e ? json_object_get(e, "o") : NULL;
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(rec, "o"), i, o) {
            if (!offs) break;
            const char *tp = json_string_value(json_object_get(o, "tp"));
            if (!tp) continue;
            char key[300];
            offset_key(key, sizeof key, tp, json_integer_value(json_object_get(o, "p")));
            if (del) json_object_del(offs, key);
            else json_object_set(offs, key, o);
        }
    }
    scratch_free(&s);
}

/* Replays the journal into a new state object; NULL with err set on
 * failure. A torn tail (a crash mid-write) is cut off the file, so that
 * records appended later are not hidden behind it. */
static json_t *replay(mgfile_t *m, char *err, size_t errsz) {
    json_t *state = json_object();
    if (!state) { snprintf(err, errsz, "out of memory"); return NULL; }
    char p[1100];
    journal_path(m, p, sizeof p);
    FILE *f = fopen(p, "r");
    if (!f) {
        if (errno == ENOENT) return state;
        snprintf(err, errsz, "cannot read %s: %s", p, strerror(errno));
        json_decref(state);
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    off_t good = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (n < 11 || line[n - 1] != '\n' || line[8] != ' ') break;
        line[n - 1] = 0;
        unsigned crc;
        if (sscanf(line, "%8x", &crc) != 1 || crc != crc32c(0, line + 9, (size_t)n - 10)) break;
        json_t *rec = json_loads(line + 9, 0, NULL);
        if (!rec) break;
        apply_record(state, rec);
        json_decref(rec);
        good += n;
    }
    free(line);
    struct stat st;
    if (m->fd >= 0 && fstat(fileno(f), &st) == 0 && st.st_size > good) {
        log_warn("metadata: %s: dropping %lld byte(s) of a torn or damaged tail", p,
                 (long long)(st.st_size - good));
        if (ftruncate(m->fd, good) == 0 && fdatasync(m->fd) == 0) m->written = (uint64_t)good;
    }
    fclose(f);
    return state;
}

static void group_from_json(json_t *rec, scratch_t *s, mg_group_t *g, mg_member_t *members, int cap) {
    memset(g, 0, sizeof *g);
    g->group_id = jstr_get(json_object_get(rec, "g"), NULL, s);
    g->protocol_type = jstr_get(json_object_get(rec, "pt"), NULL, s);
    g->protocol = jstr_get(json_object_get(rec, "p"), NULL, s);
    g->leader = jstr_get(json_object_get(rec, "l"), NULL, s);
    g->generation = (int32_t)json_integer_value(json_object_get(rec, "gen"));
    g->state_ms = json_integer_value(json_object_get(rec, "ts"));
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(rec, "m"), i, o) {
        if (g->nmembers >= cap) break;
        mg_member_t *mm = &members[g->nmembers];
        memset(mm, 0, sizeof *mm);
        mm->member_id = jstr_get(json_object_get(o, "id"), NULL, s);
        mm->instance_id = jstr_get(json_object_get(o, "iid"), NULL, s);
        mm->client_id = jstr_get(json_object_get(o, "cid"), NULL, s);
        mm->client_host = jstr_get(json_object_get(o, "ch"), NULL, s);
        mm->session_timeout_ms = (int32_t)json_integer_value(json_object_get(o, "st"));
        mm->rebalance_timeout_ms = (int32_t)json_integer_value(json_object_get(o, "rt"));
        mm->subscription = jbytes_get(json_object_get(o, "s"), &mm->subscription_len, s);
        mm->assignment = jbytes_get(json_object_get(o, "a"), &mm->assignment_len, s);
        if (!mm->member_id) continue;
        g->nmembers++;
    }
    g->members = members;
}

static void offset_from_json(json_t *o, scratch_t *s, mg_offset_t *mo) {
    memset(mo, 0, sizeof *mo);
    mo->topic = json_string_value(json_object_get(o, "tp"));
    size_t n = 0;
    uint8_t *id = from_hex(json_string_value(json_object_get(o, "id")), &n);
    if (id && n == 16) memcpy(mo->topic_id, id, 16);
    free(id);
    mo->partition = (int32_t)json_integer_value(json_object_get(o, "p"));
    mo->offset = json_integer_value(json_object_get(o, "o"));
    mo->leader_epoch = (int32_t)json_integer_value(json_object_get(o, "e"));
    mo->metadata = jstr_get(json_object_get(o, "md"), &mo->metadata_len, s);
    mo->commit_ms = json_integer_value(json_object_get(o, "ct"));
    mo->expire_ms = json_integer_value(json_object_get(o, "xt"));
}

static int file_load(mgfile_t *m, const mg_load_cb_t *cb, char *err, size_t errsz) {
    json_t *state = replay(m, err, errsz);
    if (!state) return -1;
    const char *key;
    json_t *e;
    int rc = 0;
    json_object_foreach(state, key, e) {
        json_t *rec = json_object_get(e, "g");
        if (!rec || !cb->group) continue;
        size_t nm = json_array_size(json_object_get(rec, "m"));
        mg_member_t *members = calloc(nm ? nm : 1, sizeof *members);
        if (!members) { rc = -1; break; }
        scratch_t s = {0};
        mg_group_t g;
        group_from_json(rec, &s, &g, members, (int)nm);
        if (!s.oom && g.group_id) cb->group(cb->arg, &g);
        else rc = -1;
        scratch_free(&s);
        free(members);
        if (rc) break;
    }
    json_object_foreach(state, key, e) {
        if (rc || !cb->offset) break;
        scratch_t s = {0};
        const char *g = jstr_get(json_object_get(e, "gid"), NULL, &s);
        const char *okey;
        json_t *o;
        json_object_foreach(json_object_get(e, "o"), okey, o) {
            scratch_t os = {0};
            mg_offset_t mo;
            offset_from_json(o, &os, &mo);
            if (g && mo.topic) cb->offset(cb->arg, g, &mo);
            scratch_free(&os);
        }
        scratch_free(&s);
    }
    json_decref(state);
    if (rc) snprintf(err, errsz, "out of memory (or a damaged record) loading %s/groups.journal", m->dir);
    return rc;
}

/* ---- records ---- */

static json_t *group_record(const mg_group_t *g) {
    json_t *members = json_array();
    for (int i = 0; members && i < g->nmembers; i++) {
        const mg_member_t *mm = &g->members[i];
        json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:i,s:i,s:o,s:o}", "id",
                              jstr(mm->member_id, strlen(mm->member_id)), "iid",
                              jstr(mm->instance_id, mm->instance_id ? strlen(mm->instance_id) : 0), "cid",
                              jstr(mm->client_id ? mm->client_id : "", mm->client_id ? strlen(mm->client_id) : 0),
                              "ch", jstr(mm->client_host ? mm->client_host : "",
                                         mm->client_host ? strlen(mm->client_host) : 0),
                              "st", (int)mm->session_timeout_ms, "rt", (int)mm->rebalance_timeout_ms, "s",
                              jbytes(mm->subscription, mm->subscription_len), "a",
                              jbytes(mm->assignment, mm->assignment_len));
        if (!o || json_array_append_new(members, o)) { json_decref(members); return NULL; }
    }
    if (!members) return NULL;
    return json_pack("{s:s,s:o,s:o,s:o,s:o,s:i,s:I,s:o}", "t", "group", "g", JS(g->group_id), "pt",
                     JS(g->protocol_type), "p", JS(g->protocol), "l", JS(g->leader), "gen", (int)g->generation,
                     "ts", (json_int_t)g->state_ms, "m", members);
}

static json_t *offset_json(const mg_offset_t *o) {
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", o->topic_id[i]);
    return json_pack("{s:s,s:s,s:i,s:I,s:i,s:o,s:I,s:I}", "tp", o->topic, "id", hex, "p", (int)o->partition, "o",
                     (json_int_t)o->offset, "e", (int)o->leader_epoch, "md",
                     jstr(o->metadata, o->metadata_len > 0 ? (size_t)o->metadata_len : 0), "ct",
                     (json_int_t)o->commit_ms, "xt", (json_int_t)o->expire_ms);
}

/* Rewrites the journal as a snapshot of its live state. */
static int compact(mgfile_t *m) {
    char err[256];
    json_t *state = replay(m, err, sizeof err);
    if (!state) return -1;
    char p[1100], tmp[1200];
    journal_path(m, p, sizeof p);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) { json_decref(state); return -1; }
    uint64_t written = 0;
    int rc = 0;
    const char *key;
    json_t *e;
    json_object_foreach(state, key, e) {
        json_t *rec = json_object_get(e, "g");
        if (rec && (rc = append_to(fd, &written, json_incref(rec)))) break;
        json_t *offs = json_object_get(e, "o");
        if (!json_object_size(offs)) continue;
        json_t *arr = json_array();
        const char *okey;
        json_t *o;
        json_object_foreach(offs, okey, o) json_array_append(arr, o);
        if ((rc = append_to(fd, &written, json_pack("{s:s,s:O,s:o}", "t", "offsets", "g",
                                                    json_object_get(e, "gid"), "o", arr))))
            break;
    }
    json_decref(state);
    if (rc || fsync(fd) || rename(tmp, p)) { close(fd); unlink(tmp); return -1; }
    fs_fsync_dir(m->dir);
    close(m->fd);
    m->fd = fd;
    m->written = m->live_hint = written;
    return 0;
}

static int append(mgfile_t *m, json_t *rec) {
    int rc = append_to(m->fd, &m->written, rec);
    if (!rc && m->written >= m->compact_bytes && m->written >= 2 * m->live_hint) compact(m);
    return rc;
}

static int file_put_group(mgfile_t *m, const mg_group_t *g) { return append(m, group_record(g)); }

static int file_put_offsets(mgfile_t *m, const char *group_id, const mg_offset_t *o, int n) {
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        json_t *j = offset_json(&o[i]);
        if (!j || json_array_append_new(arr, j)) { json_decref(arr); return -1; }
    }
    if (!arr) return -1;
    return append(m, json_pack("{s:s,s:o,s:o}", "t", "offsets", "g", JS(group_id), "o", arr));
}

static int file_delete_offsets(mgfile_t *m, const char *group_id, const mg_offset_t *o, int n) {
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        json_t *j = json_pack("{s:s,s:i}", "tp", o[i].topic, "p", (int)o[i].partition);
        if (!j || json_array_append_new(arr, j)) { json_decref(arr); return -1; }
    }
    if (!arr) return -1;
    return append(m, json_pack("{s:s,s:o,s:o}", "t", "deloffsets", "g", JS(group_id), "o", arr));
}

static int file_delete_group(mgfile_t *m, const char *group_id) {
    return append(m, json_pack("{s:s,s:o}", "t", "delgroup", "g", JS(group_id)));
}

/* ---- the ops table (meta_backend.h) ---- */

/* One group: a full replay, filtered. */
typedef struct group_filter {
    const char *group_id;
    const mg_load_cb_t *cb;
} group_filter_t;

static void gf_group(void *arg, const mg_group_t *g) {
    group_filter_t *f = arg;
    if (!strcmp(g->group_id, f->group_id) && f->cb->group) f->cb->group(f->cb->arg, g);
}

static void gf_offset(void *arg, const char *group_id, const mg_offset_t *o) {
    group_filter_t *f = arg;
    if (!strcmp(group_id, f->group_id) && f->cb->offset) f->cb->offset(f->cb->arg, group_id, o);
}

static void op_close(meta_groups_t *m) { file_close((mgfile_t *)m); }
static int op_load(meta_groups_t *m, const mg_load_cb_t *cb, char *err, size_t errsz) {
    return file_load((mgfile_t *)m, cb, err, errsz);
}
static int op_load_group(meta_groups_t *m, const char *group_id, const mg_load_cb_t *cb, char *err, size_t errsz) {
    group_filter_t f = {group_id, cb};
    mg_load_cb_t fcb = {gf_group, gf_offset, &f};
    return file_load((mgfile_t *)m, &fcb, err, errsz);
}
static int op_put_group(meta_groups_t *m, const mg_group_t *g) { return file_put_group((mgfile_t *)m, g); }
static int op_put_offsets(meta_groups_t *m, const char *group_id, const mg_offset_t *o, int n) {
    return file_put_offsets((mgfile_t *)m, group_id, o, n);
}
static int op_delete_offsets(meta_groups_t *m, const char *group_id, const mg_offset_t *o, int n) {
    return file_delete_offsets((mgfile_t *)m, group_id, o, n);
}
static int op_delete_group(meta_groups_t *m, const char *group_id) {
    return file_delete_group((mgfile_t *)m, group_id);
}
static uint64_t op_journal_bytes(const meta_groups_t *m) { return file_journal_bytes((const mgfile_t *)m); }
static void op_set_compact_bytes(meta_groups_t *m, uint64_t b) { file_set_compact_bytes((mgfile_t *)m, b); }

static const mg_ops_t file_ops = {
    .name = "file",
    .close = op_close,
    .load = op_load,
    .load_group = op_load_group,
    .put_group = op_put_group,
    .put_offsets = op_put_offsets,
    .delete_offsets = op_delete_offsets,
    .delete_group = op_delete_group,
    .journal_bytes = op_journal_bytes,
    .set_compact_bytes = op_set_compact_bytes,
};
