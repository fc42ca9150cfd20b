/* shm_tool.c - kafscale-shm: read-only inspection of a node's shared-memory
 * ring (common/shm_ring.h), like varnishstat.
 *
 *   kafscale-shm [-n NAME | -d DATA_DIR] [-w] [-i MS] [-s] [--json]
 *
 * Prints the header (layout version, sizes, writer pid, start time,
 * generation), the occupancy, the cached segments per topic and partition
 * (each segment with -s) and the counters with their rates. -w refreshes
 * every second (-i) in the terminal until Ctrl-C, following the ring when
 * its writer restarts or replaces it. --json prints one JSON object (with
 * -w: one per refresh, one per line). The ring is mapped PROT_READ: this
 * program cannot write to it. It refuses a ring of an unknown magic or major
 * version (exit 2) saying what it found; no ring at all is exit 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "shm_ring.h"

typedef struct seginfo {
    shm_ring_entry_t e;
} seginfo_t;

typedef struct partinfo {
    const char *topic;
    int32_t partition;
    uint64_t segments, bytes;
    int64_t first, last;
    size_t from, n; /* its segments in the sorted table */
} partinfo_t;

/* One consistent-enough look at the ring. */
typedef struct snap {
    shm_ring_hdr_t h;
    seginfo_t *segs;
    size_t nsegs;
    partinfo_t *parts;
    size_t nparts;
    double t;      /* monotonic seconds */
    bool alive;    /* the writer process exists and is running */
} snap_t;

static volatile sig_atomic_t stop;
static void on_sig(int s) { stop = 1; }

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_seg(const void *a, const void *b) {
    const shm_ring_entry_t *x = &((const seginfo_t *)a)->e, *y = &((const seginfo_t *)b)->e;
    int c = strcmp(x->topic, y->topic);
    if (c) return c;
    if (x->partition != y->partition) return x->partition < y->partition ? -1 : 1;
    return x->base_offset < y->base_offset ? -1 : x->base_offset > y->base_offset;
}

static void snap_free(snap_t *s) {
    free(s->segs);
    free(s->parts);
    memset(s, 0, sizeof *s);
}

static int snap_take(const shm_ring_t *r, snap_t *s) {
    memset(s, 0, sizeof *s);
    s->t = mono_s();
    shm_ring_header_snapshot(r, &s->h);
    s->segs = calloc(r->nentries ? r->nentries : 1, sizeof *s->segs);
    s->parts = calloc(r->nentries ? r->nentries : 1, sizeof *s->parts);
    if (!s->segs || !s->parts) return -1;
    for (uint32_t i = 0; i < r->nentries; i++) {
        shm_ring_entry_t e;
        if (!shm_ring_entry_snapshot(r, i, &e)) continue;
        e.topic[e.topic_len] = 0;
        s->segs[s->nsegs++].e = e;
    }
    qsort(s->segs, s->nsegs, sizeof *s->segs, cmp_seg);
    for (size_t i = 0; i < s->nsegs; i++) {
        const shm_ring_entry_t *e = &s->segs[i].e;
        partinfo_t *p = s->nparts ? &s->parts[s->nparts - 1] : NULL;
        if (!p || strcmp(p->topic, e->topic) || p->partition != e->partition) {
            p = &s->parts[s->nparts++];
            p->topic = s->segs[i].e.topic;
            p->partition = e->partition;
            p->first = e->base_offset;
            p->from = i;
        }
        p->segments++;
        p->n++;
        p->bytes += e->len;
        p->last = e->last_offset;
    }
    s->alive = s->h.writer_state == SHM_WRITER_RUNNING && s->h.writer_pid > 0 &&
               (kill(s->h.writer_pid, 0) == 0 || errno == EPERM);
    return 0;
}

static const char *writer_state(const snap_t *s) {
    if (s->h.writer_state == SHM_WRITER_STOPPED) return "stopped";
    if (s->h.writer_state == SHM_WRITER_RUNNING) return s->alive ? "running" : "dead";
    return "none";
}

static const char *origin_name(uint32_t o) {
    return o == SHM_ORIGIN_DEMAND ? "demand" : o == SHM_ORIGIN_READAHEAD ? "read-ahead" : o == SHM_ORIGIN_PREFETCH ? "prefetch" : "?";
}

static void fmt_time(char *out, size_t n, uint64_t us) {
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static void fmt_bytes(char *out, size_t n, double b) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void print_text(const char *name, const snap_t *s, const snap_t *prev, bool each_segment) {
    const shm_ring_hdr_t *h = &s->h;
    char t1[64], t2[64], b1[32], b2[32], b3[32];
    fmt_time(t1, sizeof t1, h->created_us);
    fmt_time(t2, sizeof t2, h->writer_start_us);
    fmt_bytes(b1, sizeof b1, (double)h->total_size);
    fmt_bytes(b2, sizeof b2, (double)h->data_size);
    printf("kafscale ring %s\n", name);
    printf("  layout      %u.%u  header %u B, %u entries x %u B\n", h->major, h->minor, h->header_size, h->nentries,
           h->entry_size);
    printf("  size        %" PRIu64 " B (%s), data area %s, created %s\n", h->total_size, b1, b2, t1);
    printf("  writer      pid %d, %s, started %s, generation %" PRIu64 "\n", h->writer_pid, writer_state(s), t2,
           h->generation);
    fmt_bytes(b3, sizeof b3, (double)h->live_bytes);
    double pct = h->data_size ? 100.0 * (double)h->live_bytes / (double)h->data_size : 0;
    printf("occupancy     %" PRIu64 " segment(s), %s (%.1f%% of the data area), %" PRIu64 " published, head at %" PRIu64
           "\n",
           h->live_entries, b3, pct, h->next_slot, h->head_off);
    printf("counters      %-20s %14s %12s\n", "", "value", "per second");
    double dt = prev ? s->t - prev->t : 0;
    for (int i = 0; i < SHM_C_MAX; i++) {
        uint64_t v = h->counters[i];
        if (prev && dt > 0 && prev->h.generation == h->generation) {
            double rate = (double)(v - prev->h.counters[i]) / dt;
            printf("  %-32s %14" PRIu64 " %12.1f\n", shm_ring_counter_names[i], v, rate);
        } else {
            printf("  %-32s %14" PRIu64 " %12s\n", shm_ring_counter_names[i], v, "-");
        }
    }
    uint64_t loads = h->counters[SHM_C_loads];
    if (loads)
        printf("  %-32s %14.0f\n", "load_latency_avg_us", (double)h->counters[SHM_C_load_latency_us] / (double)loads);
    printf("segments      %-34s %9s %12s  %s\n", "topic/partition", "segments", "bytes", "offsets");
    for (size_t i = 0; i < s->nparts; i++) {
        const partinfo_t *p = &s->parts[i];
        char tp[300], b[32];
        snprintf(tp, sizeof tp, "%s/%d", p->topic, p->partition);
        fmt_bytes(b, sizeof b, (double)p->bytes);
        printf("  %-46s %9" PRIu64 " %12s  %" PRId64 "..%" PRId64 "\n", tp, p->segments, b, p->first, p->last);
        if (each_segment)
            for (size_t k = p->from; k < p->from + p->n; k++) {
                const shm_ring_entry_t *e = &s->segs[k].e;
                char lt[64];
                fmt_time(lt, sizeof lt, e->loaded_us);
                printf("      base %-12" PRId64 " last %-12" PRId64 " %10" PRIu64 " B  %-10s loaded %s in %u us\n",
                       e->base_offset, e->last_offset, e->len, origin_name(e->origin), lt, e->load_us);
            }
    }
    if (!s->nparts) printf("  (none)\n");
}

static json_t *to_json(const char *name, const snap_t *s, const snap_t *prev) {
    const shm_ring_hdr_t *h = &s->h;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "layout", json_pack("{s:i,s:i,s:i,s:i,s:I}", "major", h->major, "minor", h->minor,
                                               "header_size", h->header_size, "entry_size", h->entry_size,
                                               "entries", (json_int_t)h->nentries));
    json_object_set_new(o, "size", json_integer((json_int_t)h->total_size));
    json_object_set_new(o, "data_size", json_integer((json_int_t)h->data_size));
    json_object_set_new(o, "created_us", json_integer((json_int_t)h->created_us));
    json_object_set_new(o, "writer", json_pack("{s:i,s:s,s:b,s:I,s:I,s:I}", "pid", h->writer_pid, "state",
                                               writer_state(s), "alive", s->alive, "start_us",
                                               (json_int_t)h->writer_start_us, "generation",
                                               (json_int_t)h->generation, "heartbeat_ms", (json_int_t)h->heartbeat_ms));
    json_object_set_new(o, "occupancy",
                        json_pack("{s:I,s:I,s:f,s:I,s:I,s:I}", "segments", (json_int_t)h->live_entries, "bytes",
                                  (json_int_t)h->live_bytes, "fraction",
                                  h->data_size ? (double)h->live_bytes / (double)h->data_size : 0.0, "published",
                                  (json_int_t)h->next_slot, "head_seq", (json_int_t)h->head_seq, "head_off",
                                  (json_int_t)h->head_off));
    json_t *c = json_object(), *rates = json_object();
    double dt = prev ? s->t - prev->t : 0;
    for (int i = 0; i < SHM_C_MAX; i++) {
        json_object_set_new(c, shm_ring_counter_names[i], json_integer((json_int_t)h->counters[i]));
        if (prev && dt > 0 && prev->h.generation == h->generation)
            json_object_set_new(rates, shm_ring_counter_names[i],
                                json_real((double)(h->counters[i] - prev->h.counters[i]) / dt));
    }
    json_object_set_new(o, "counters", c);
    json_object_set_new(o, "rates", rates);
    json_t *parts = json_array();
    for (size_t i = 0; i < s->nparts; i++) {
        const partinfo_t *p = &s->parts[i];
        json_t *segs = json_array();
        for (size_t k = p->from; k < p->from + p->n; k++) {
            const shm_ring_entry_t *e = &s->segs[k].e;
            json_array_append_new(segs, json_pack("{s:I,s:I,s:I,s:s,s:I,s:I}", "base_offset",
                                                  (json_int_t)e->base_offset, "last_offset",
                                                  (json_int_t)e->last_offset, "bytes", (json_int_t)e->len, "origin",
                                                  origin_name(e->origin), "loaded_us", (json_int_t)e->loaded_us,
                                                  "load_us", (json_int_t)e->load_us));
        }
        json_array_append_new(parts, json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:o}", "topic", p->topic, "partition",
                                               p->partition, "segments", (json_int_t)p->segments, "bytes",
                                               (json_int_t)p->bytes, "first_offset", (json_int_t)p->first,
                                               "last_offset", (json_int_t)p->last, "segment_list", segs));
    }
    json_object_set_new(o, "partitions", parts);
    return o;
}

static void usage(FILE *f) {
    fprintf(f, "usage: kafscale-shm [-n NAME | -d DATA_DIR] [-w] [-i MS] [-s] [--json]\n"
               "Shows a Kafscale node's shared-memory read cache (read-only).\n"
               "  -n, --name NAME      shm object (default: KAFSCALE_SHM_NAME, else derived from\n"
               "                       KAFSCALE_DATA_DIR and KAFSCALE_BROKER_ID as the node does)\n"
               "  -d, --data-dir DIR   derive the name from this data dir\n"
               "  -w, --watch          refresh until Ctrl-C\n"
               "  -i, --interval MS    refresh interval with -w (default 1000)\n"
               "  -s, --segments       list every cached segment\n"
               "      --json           one JSON object (with -w: one per line and refresh)\n");
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'}, {"data-dir", required_argument, NULL, 'd'},
        {"watch", no_argument, NULL, 'w'},      {"interval", required_argument, NULL, 'i'},
        {"segments", no_argument, NULL, 's'},   {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *name_arg = getenv("KAFSCALE_SHM_NAME");
    const char *data_dir = getenv("KAFSCALE_DATA_DIR");
    bool watch = false, json = false, each = false;
    long interval_ms = 1000;
    int c;
    while ((c = getopt_long(argc, argv, "n:d:wi:sjh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': name_arg = optarg; break;
        case 'd':
            data_dir = optarg;
            name_arg = NULL;
            break;
        case 'w': watch = true; break;
        case 'i':
            interval_ms = strtol(optarg, NULL, 10);
            if (interval_ms < 50 || interval_ms > 3600000) {
                fprintf(stderr, "kafscale-shm: -i wants 50..3600000 ms\n");
                return 2;
            }
            break;
        case 's': each = true; break;
        case 'j': json = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    const char *idv = getenv("KAFSCALE_BROKER_ID");
    int32_t node_id = idv && *idv ? (int32_t)strtol(idv, NULL, 10) : 0;
    char name[SHM_RING_NAME_MAX], err[512];
    if (shm_ring_name(name, sizeof name, name_arg, data_dir ? data_dir : "./data", node_id, err, sizeof err) != 0) {
        fprintf(stderr, "kafscale-shm: %s\n", err);
        return 2;
    }
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);

    shm_ring_t ring;
    memset(&ring, 0, sizeof ring);
    bool mapped = false;
    snap_t prev = {0}, cur;
    bool have_prev = false;
    int rc = 0;
    do {
        if (mapped && shm_ring_changed(&ring)) { /* a new writer or a new object: follow it */
            shm_ring_close(&ring);
            mapped = false;
            if (have_prev) snap_free(&prev);
            have_prev = false;
        }
        if (!mapped) {
            int orc = shm_ring_open(&ring, name, err, sizeof err);
            if (orc == SHM_OK) {
                mapped = true;
            } else {
                bool refused = orc == SHM_EFOREIGN || orc == SHM_EVERSION || orc == SHM_ETRUNC || orc == SHM_EBADHDR;
                if (!watch) {
                    fprintf(stderr, "kafscale-shm: %s: %s\n", name, err);
                    return refused ? 2 : 1;
                }
                if (json) {
                    json_t *o = json_pack("{s:s,s:s,s:s}", "name", name, "error", shm_ring_strerror(orc), "message", err);
                    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
                    printf("%s\n", s ? s : "{}");
                    free(s);
                    json_decref(o);
                } else printf("\033[H\033[2Jkafscale ring %s\n  %s\n  (waiting; Ctrl-C to stop)\n", name, err);
                fflush(stdout);
                usleep((useconds_t)interval_ms * 1000);
                continue;
            }
        }
        if (snap_take(&ring, &cur) != 0) {
            fprintf(stderr, "kafscale-shm: out of memory\n");
            return 1;
        }
        if (json) {
            json_t *o = to_json(name, &cur, have_prev ? &prev : NULL);
            char *s = json_dumps(o, JSON_COMPACT);
            printf("%s\n", s ? s : "{}");
            free(s);
            json_decref(o);
        } else {
            if (watch) printf("\033[H\033[2J");
            print_text(name, &cur, have_prev ? &prev : NULL, each);
            if (watch) printf("(every %ld ms; Ctrl-C to stop)\n", interval_ms);
        }
        fflush(stdout);
        if (have_prev) snap_free(&prev);
        prev = cur;
        have_prev = true;
        if (watch && !stop) usleep((useconds_t)interval_ms * 1000);
    } while (watch && !stop);
    if (have_prev) snap_free(&prev);
    if (mapped) shm_ring_close(&ring);
    return rc;
}
