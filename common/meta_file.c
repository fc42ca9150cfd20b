/* meta_file.c - the embedded metadata store: two single-writer journals of
 * CRC-framed JSON lines under <data_dir>/meta/ (see meta.h); the "file"
 * ops of meta_backend.h (meta.c picks it when etcd is not configured).
 *
 * Line format: 8 hex digits of CRC-32C over the JSON text, a space, the JSON
 * object, '\n'. Records:
 *   {"t":"topic","name":N,"id":HEX,"np":P,"cfg":C}      topics.journal
 *   {"t":"deltopic","name":N}                           topics.journal
 *   {"t":"commit","segs":[{seg}...]}                    segments.journal
 *   {"t":"remove","tp":N,"p":P,"start":S,"segs":[B...]} segments.journal
 *   {"t":"droptopic","tp":N}                            segments.journal
 * A line whose CRC or JSON is bad ends the replay of that file (a torn tail
 * after a crash); nothing after it was acknowledged.
 */
#include "meta.h"
#include "meta_backend.h"
#include "crc32c.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COMPACT_BYTES (8u << 20) /* rewrite a journal once it passes this and doubled its live size */

typedef struct mfile {
    struct meta base;     /* ops = the file ops below */
    char dir[1024];
    char writer[16];
    int fd;               /* the journal this process appends to, or -1 */
    int lock_fd;          /* holds flock(LOCK_EX) on <writer>.lock: one writer per journal */
    uint64_t written;     /* bytes in it */
    uint64_t live_hint;   /* bytes after the last compaction */
} mfile_t;

static const meta_ops_t file_ops;
static int file_put_topic(mfile_t *m, const meta_topic_t *t);
static int file_commit_segments(mfile_t *m, const meta_segment_t *segs, int n, uint8_t *fenced);
static int file_remove_segments(mfile_t *m, const meta_segment_t *segs, int n, const char *topic, int32_t partition,
                                int64_t new_log_start);

static void path_of(const mfile_t *m, const char *name, char *out, size_t sz) {
    snprintf(out, sz, "%s/%s.journal", m->dir, name);
}


/* Length of the journal's prefix made of whole, valid records (what replay
 * reads). Anything after it is a torn tail from a crash. */
static off_t good_prefix(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    off_t good = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (n < 11 || line[n - 1] != '\n' || line[8] != ' ') break;
        unsigned crc;
        if (sscanf(line, "%8x", &crc) != 1 || crc != crc32c(0, line + 9, (size_t)n - 10)) break;
        line[n - 1] = 0;
        json_t *rec = json_loads(line + 9, 0, NULL);
        if (!rec) break;
        json_decref(rec);
        good += n;
    }
    free(line);
    fclose(f);
    return good;
}

meta_t *meta_file_open(const char *data_dir, const char *writer, char *err, size_t errsz) {
    mfile_t *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, errsz, "out of memory"); return NULL; }
    m->base = (struct meta){META_MAGIC, &file_ops};
    snprintf(m->dir, sizeof m->dir, "%s/meta", data_dir);
    m->fd = m->lock_fd = -1;
    if (fs_mkdirs(m->dir)) {
        snprintf(err, errsz, "cannot create %s: %s", m->dir, strerror(errno));
        free(m);
        return NULL;
    }
    if (writer) {
        snprintf(m->writer, sizeof m->writer, "%s", writer);
        /* One writer per journal. The flusher waits for a predecessor that
         * is still flushing on its way out; a second broker on the same data
         * directory is refused. */
        char lp[1100];
        snprintf(lp, sizeof lp, "%s/%s.lock", m->dir, writer);
        m->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        int wait_ms = strcmp(writer, "segments") ? 0 : 60000;
        while (m->lock_fd >= 0 && flock(m->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK || wait_ms <= 0) {
                snprintf(err, errsz, "%s is locked by another process (is another %s using this data directory?)", lp,
                         strcmp(writer, "segments") ? "kafscale-broker" : "kafscale-flusher");
                close(m->lock_fd);
                free(m);
                return NULL;
            }
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
            wait_ms -= 50;
        }
        if (m->lock_fd < 0) {
            snprintf(err, errsz, "cannot open %s: %s", lp, strerror(errno));
            free(m);
            return NULL;
        }
        char p[1100];
        path_of(m, writer, p, sizeof p);
        m->fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (m->fd < 0) {
            snprintf(err, errsz, "cannot open %s: %s", p, strerror(errno));
            close(m->lock_fd);
            free(m);
            return NULL;
        }
        struct stat st;
        if (fstat(m->fd, &st) == 0) {
            /* Cut a torn tail left by a crash: records appended after it
             * would never be replayed. */
            off_t good = good_prefix(p);
            if (good < st.st_size) {
                fprintf(stderr, "metadata: %s: dropping %lld byte(s) of a torn record at the end\n", p,
                        (long long)(st.st_size - good));
                if (ftruncate(m->fd, good) != 0 || fsync(m->fd) != 0) {
                    snprintf(err, errsz, "cannot truncate the torn tail of %s: %s", p, strerror(errno));
                    close(m->fd);
                    close(m->lock_fd);
                    free(m);
                    return NULL;
                }
                st.st_size = good;
            }
            m->written = m->live_hint = (uint64_t)st.st_size;
        }
    }
    return &m->base;
}

static void file_close(mfile_t *m) {
    if (!m) return;
    if (m->fd >= 0) close(m->fd);
    if (m->lock_fd >= 0) close(m->lock_fd);
    free(m);
}

/* Appends one record durably: write, fsync. */
static int append_record(mfile_t *m, json_t *rec) {
    if (m->fd < 0) { json_decref(rec); return -1; }
    char *js = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    if (!js) return -1;
    size_t n = strlen(js);
    size_t linelen = n + 10;
    char *line = malloc(linelen + 1);
    if (!line) { free(js); return -1; }
    snprintf(line, linelen + 1, "%08x %s\n", crc32c(0, js, n), js);
    free(js);
    ssize_t w = write(m->fd, line, linelen);
    free(line);
    if (w != (ssize_t)linelen) return -1;
    if (fdatasync(m->fd)) return -1;
    m->written += linelen;
    return 0;
}

/* ---- replay ---- */

typedef struct seg_node {
    meta_segment_t s;
    bool removed;
} seg_node_t;

typedef struct replay {
    meta_topic_t *topics;
    bool *topic_live;
    int ntopics, topics_cap;
    seg_node_t *segs;
    size_t nsegs, segs_cap;
    struct { char topic[250]; int32_t p; int64_t start; } *starts;
    int nstarts, starts_cap;
} replay_t;

static int topic_index(replay_t *r, const char *name) {
    for (int i = r->ntopics - 1; i >= 0; i--)
        if (r->topic_live[i] && !strcmp(r->topics[i].name, name)) return i;
    return -1;
}

static void hex_to_id(const char *hex, uint8_t id[16]) {
    memset(id, 0, 16);
    for (int i = 0; hex && i < 16 && hex[2 * i] && hex[2 * i + 1]; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) break;
        id[i] = (uint8_t)v;
    }
}

static void apply_topics_record(replay_t *r, json_t *rec) {
    const char *t = json_string_value(json_object_get(rec, "t"));
    const char *name = json_string_value(json_object_get(rec, "name"));
    if (!t || !name) return;
    int i = topic_index(r, name);
    if (!strcmp(t, "deltopic")) {
        if (i >= 0) r->topic_live[i] = false;
        return;
    }
    if (strcmp(t, "topic")) return;
    if (i < 0) {
        if (r->ntopics == r->topics_cap) {
            int cap = r->topics_cap ? r->topics_cap * 2 : 16;
            meta_topic_t *nt = realloc(r->topics, (size_t)cap * sizeof *nt);
            bool *nl = realloc(r->topic_live, (size_t)cap * sizeof *nl);
            if (!nt || !nl) { free(nt == r->topics ? NULL : nt); return; }
            r->topics = nt;
            r->topic_live = nl;
            r->topics_cap = cap;
        }
        i = r->ntopics++;
    }
    meta_topic_t *mt = &r->topics[i];
    memset(mt, 0, sizeof *mt);
    r->topic_live[i] = true;
    snprintf(mt->name, sizeof mt->name, "%s", name);
    hex_to_id(json_string_value(json_object_get(rec, "id")), mt->id);
    mt->npartitions = (int32_t)json_integer_value(json_object_get(rec, "np"));
    const char *cfg = json_string_value(json_object_get(rec, "cfg"));
    snprintf(mt->configs, sizeof mt->configs, "%s", cfg ? cfg : "");
}

static void seg_from_json(json_t *o, meta_segment_t *s) {
    memset(s, 0, sizeof *s);
    const char *tp = json_string_value(json_object_get(o, "tp"));
    snprintf(s->topic, sizeof s->topic, "%s", tp ? tp : "");
    s->partition = (int32_t)json_integer_value(json_object_get(o, "p"));
    s->leader_epoch = (int32_t)json_integer_value(json_object_get(o, "e"));
    s->base_offset = json_integer_value(json_object_get(o, "b"));
    s->last_offset = json_integer_value(json_object_get(o, "l"));
    s->size = json_integer_value(json_object_get(o, "sz"));
    s->max_timestamp = json_integer_value(json_object_get(o, "mt"));
    s->created_ms = json_integer_value(json_object_get(o, "c"));
    hex_to_id(json_string_value(json_object_get(o, "id")), s->topic_id);
}

static void id_to_hex(const uint8_t id[16], char out[33]);

static json_t *seg_to_json(const meta_segment_t *s) {
    char hex[33];
    id_to_hex(s->topic_id, hex);
    return json_pack("{s:s,s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:I}", "tp", s->topic, "id", hex, "p", (int)s->partition, "e",
                     (int)s->leader_epoch, "b", (json_int_t)s->base_offset, "l", (json_int_t)s->last_offset, "sz",
                     (json_int_t)s->size, "mt", (json_int_t)s->max_timestamp, "c", (json_int_t)s->created_ms);
}

static void add_seg(replay_t *r, const meta_segment_t *s) {
    if (r->nsegs == r->segs_cap) {
        size_t cap = r->segs_cap ? r->segs_cap * 2 : 256;
        seg_node_t *ns = realloc(r->segs, cap * sizeof *ns);
        if (!ns) return;
        r->segs = ns;
        r->segs_cap = cap;
    }
    r->segs[r->nsegs++] = (seg_node_t){*s, false};
}

static void set_start(replay_t *r, const char *topic, int32_t p, int64_t start) {
    for (int i = 0; i < r->nstarts; i++)
        if (r->starts[i].p == p && !strcmp(r->starts[i].topic, topic)) {
            if (start > r->starts[i].start) r->starts[i].start = start;
            return;
        }
    if (r->nstarts == r->starts_cap) {
        int cap = r->starts_cap ? r->starts_cap * 2 : 16;
        void *n = realloc(r->starts, (size_t)cap * sizeof *r->starts);
        if (!n) return;
        r->starts = n;
        r->starts_cap = cap;
    }
    snprintf(r->starts[r->nstarts].topic, sizeof r->starts[0].topic, "%s", topic);
    r->starts[r->nstarts].p = p;
    r->starts[r->nstarts].start = start;
    r->nstarts++;
}

static void apply_segments_record(replay_t *r, json_t *rec) {
    const char *t = json_string_value(json_object_get(rec, "t"));
    if (!t) return;
    if (!strcmp(t, "commit")) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(rec, "segs"), i, o) {
            meta_segment_t s;
            seg_from_json(o, &s);
            add_seg(r, &s);
        }
    } else if (!strcmp(t, "remove")) {
        const char *tp = json_string_value(json_object_get(rec, "tp"));
        int32_t p = (int32_t)json_integer_value(json_object_get(rec, "p"));
        if (!tp) return;
        size_t i;
        json_t *b;
        json_array_foreach(json_object_get(rec, "segs"), i, b) {
            int64_t base = json_integer_value(b);
            for (size_t k = 0; k < r->nsegs; k++)
                if (!r->segs[k].removed && r->segs[k].s.partition == p && r->segs[k].s.base_offset == base &&
                    !strcmp(r->segs[k].s.topic, tp))
                    r->segs[k].removed = true;
        }
        set_start(r, tp, p, json_integer_value(json_object_get(rec, "start")));
    } else if (!strcmp(t, "droptopic")) {
        const char *tp = json_string_value(json_object_get(rec, "tp"));
        if (!tp) return;
        for (size_t k = 0; k < r->nsegs; k++)
            if (!strcmp(r->segs[k].s.topic, tp)) r->segs[k].removed = true;
        for (int i = 0; i < r->nstarts; i++)
            if (!strcmp(r->starts[i].topic, tp)) r->starts[i].topic[0] = 0;
    }
}

/* Reads one journal, applying each good record; stops at the first bad line. */
static int replay_file(mfile_t *m, const char *name, replay_t *r, void (*apply)(replay_t *, json_t *)) {
    char p[1100];
    path_of(m, name, p, sizeof p);
    FILE *f = fopen(p, "r");
    if (!f) return errno == ENOENT ? 0 : -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (n < 11 || line[n - 1] != '\n' || line[8] != ' ') break;
        line[n - 1] = 0;
        unsigned crc;
        if (sscanf(line, "%8x", &crc) != 1 || crc != crc32c(0, line + 9, (size_t)n - 10)) break;
        json_t *rec = json_loads(line + 9, 0, NULL);
        if (!rec) break;
        apply(r, rec);
        json_decref(rec);
    }
    free(line);
    fclose(f);
    return 0;
}

static void replay_free(replay_t *r) {
    free(r->topics);
    free(r->topic_live);
    free(r->segs);
    free(r->starts);
}

static int seg_cmp(const void *a, const void *b) {
    const seg_node_t *x = a, *y = b;
    int c = strcmp(x->s.topic, y->s.topic);
    if (c) return c;
    if (x->s.partition != y->s.partition) return x->s.partition < y->s.partition ? -1 : 1;
    return x->s.base_offset < y->s.base_offset ? -1 : x->s.base_offset > y->s.base_offset;
}

static int do_replay(mfile_t *m, replay_t *r, char *err, size_t errsz) {
    memset(r, 0, sizeof *r);
    if (replay_file(m, "topics", r, apply_topics_record) || replay_file(m, "segments", r, apply_segments_record)) {
        snprintf(err, errsz, "cannot read metadata journals in %s: %s", m->dir, strerror(errno));
        replay_free(r);
        return -1;
    }
    if (r->nsegs) qsort(r->segs, r->nsegs, sizeof *r->segs, seg_cmp);
    return 0;
}

/* Rewrites this process's journal as a snapshot of the live state. */
static int compact(mfile_t *m, replay_t *r) {
    char p[1100], tmp[1200];
    path_of(m, m->writer, p, sizeof p);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    mfile_t w = *m;
    w.fd = fd;
    w.written = 0;
    int rc = 0;
    if (!strcmp(m->writer, "topics")) {
        for (int i = 0; i < r->ntopics && !rc; i++) {
            if (!r->topic_live[i]) continue;
            rc = file_put_topic(&w, &r->topics[i]);
        }
    } else {
        for (size_t i = 0; i < r->nsegs && !rc; i++) {
            if (r->segs[i].removed) continue;
            rc = file_commit_segments(&w, &r->segs[i].s, 1, NULL);
        }
        for (int i = 0; i < r->nstarts && !rc; i++) {
            if (!r->starts[i].topic[0]) continue;
            rc = file_remove_segments(&w, NULL, 0, r->starts[i].topic, r->starts[i].p, r->starts[i].start);
        }
    }
    if (rc || fsync(fd)) { close(fd); unlink(tmp); return -1; }
    if (rename(tmp, p)) { close(fd); unlink(tmp); return -1; }
    fs_fsync_dir(m->dir);
    close(m->fd);
    m->fd = fd;
    m->written = m->live_hint = w.written;
    return 0;
}

static void maybe_compact(mfile_t *m) {
    if (m->written < COMPACT_BYTES || m->written < 2 * m->live_hint) return;
    replay_t r;
    char err[256];
    if (do_replay(m, &r, err, sizeof err)) return;
    compact(m, &r);
    replay_free(&r);
}

static int file_load(mfile_t *m, const meta_load_cb_t *cb, char *err, size_t errsz) {
    replay_t r;
    if (do_replay(m, &r, err, errsz)) return -1;
    for (int i = 0; i < r.ntopics; i++)
        if (r.topic_live[i] && cb->topic) cb->topic(cb->arg, &r.topics[i]);
    for (size_t i = 0; i < r.nsegs; i++)
        if (!r.segs[i].removed && cb->segment) cb->segment(cb->arg, &r.segs[i].s);
    for (int i = 0; i < r.nstarts; i++)
        if (r.starts[i].topic[0] && cb->log_start) cb->log_start(cb->arg, r.starts[i].topic, r.starts[i].p, r.starts[i].start);
    replay_free(&r);
    return 0;
}

static void id_to_hex(const uint8_t id[16], char out[33]) {
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int file_put_topic(mfile_t *m, const meta_topic_t *t) {
    char hex[33];
    id_to_hex(t->id, hex);
    json_t *rec = json_pack("{s:s,s:s,s:s,s:i,s:s}", "t", "topic", "name", t->name, "id", hex, "np",
                            (int)t->npartitions, "cfg", t->configs);
    int rc = append_record(m, rec);
    if (!rc) maybe_compact(m);
    return rc;
}

static int file_delete_topic(mfile_t *m, const char *name) {
    int rc = append_record(m, json_pack("{s:s,s:s}", "t", "deltopic", "name", name));
    if (!rc) maybe_compact(m);
    return rc;
}

static int file_commit_segments(mfile_t *m, const meta_segment_t *segs, int n, uint8_t *fenced) {
    if (fenced && n > 0) memset(fenced, 0, (size_t)n);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(arr, seg_to_json(&segs[i]));
    int rc = append_record(m, json_pack("{s:s,s:o}", "t", "commit", "segs", arr));
    if (!rc && m->written >= COMPACT_BYTES) maybe_compact(m);
    return rc;
}

static int file_remove_segments(mfile_t *m, const meta_segment_t *segs, int n, const char *topic, int32_t partition,
                                int64_t new_log_start) {
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(arr, json_integer(segs[i].base_offset));
    return append_record(m, json_pack("{s:s,s:s,s:i,s:I,s:o}", "t", "remove", "tp", topic, "p", (int)partition,
                                      "start", (json_int_t)new_log_start, "segs", arr));
}

static int file_drop_topic_segments(mfile_t *m, const char *topic) {
    return append_record(m, json_pack("{s:s,s:s}", "t", "droptopic", "tp", topic));
}

/* ---- the ops table (meta_backend.h) ---- */

/* One partition: a full replay, filtered. */
typedef struct part_filter {
    const char *topic;
    int32_t partition;
    const meta_load_cb_t *cb;
} part_filter_t;

static void pf_segment(void *arg, const meta_segment_t *s) {
    part_filter_t *f = arg;
    if (s->partition == f->partition && !strcmp(s->topic, f->topic) && f->cb->segment) f->cb->segment(f->cb->arg, s);
}

static void pf_log_start(void *arg, const char *topic, int32_t partition, int64_t start) {
    part_filter_t *f = arg;
    if (partition == f->partition && !strcmp(topic, f->topic) && f->cb->log_start)
        f->cb->log_start(f->cb->arg, topic, partition, start);
}

static void op_close(meta_t *m) { file_close((mfile_t *)m); }
static int op_load(meta_t *m, const meta_load_cb_t *cb, char *err, size_t errsz) {
    return file_load((mfile_t *)m, cb, err, errsz);
}
static int op_load_partition(meta_t *m, const char *topic, int32_t partition, const meta_load_cb_t *cb, char *err,
                             size_t errsz) {
    part_filter_t f = {topic, partition, cb};
    meta_load_cb_t fcb = {NULL, pf_segment, pf_log_start, &f};
    return file_load((mfile_t *)m, &fcb, err, errsz);
}
static int op_put_topic(meta_t *m, const meta_topic_t *t) { return file_put_topic((mfile_t *)m, t); }
static int op_delete_topic(meta_t *m, const char *name) { return file_delete_topic((mfile_t *)m, name); }
static int op_commit_segments(meta_t *m, const meta_segment_t *segs, int n, uint8_t *fenced) {
    return file_commit_segments((mfile_t *)m, segs, n, fenced);
}
static int op_remove_segments(meta_t *m, const meta_segment_t *segs, int n, const char *topic, int32_t partition,
                              int64_t new_log_start) {
    return file_remove_segments((mfile_t *)m, segs, n, topic, partition, new_log_start);
}
static int op_drop_topic_segments(meta_t *m, const char *topic) {
    return file_drop_topic_segments((mfile_t *)m, topic);
}

static const meta_ops_t file_ops = {
    .name = "file",
    .close = op_close,
    .load = op_load,
    .load_partition = op_load_partition,
    .put_topic = op_put_topic,
    .delete_topic = op_delete_topic,
    .set_fence = NULL, /* one writer per journal: nothing to fence */
    .commit_segments = op_commit_segments,
    .remove_segments = op_remove_segments,
    .drop_topic_segments = op_drop_topic_segments,
};
