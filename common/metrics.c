/* metrics.c - the metric registry declared by KS_METRICS (metrics.h): series
 * storage, the Prometheus text exposition, the STATS encoding between
 * processes, and the /proc sampling of a node's processes.
 *
 * Each family keeps its series in a chained hash table keyed by the label
 * values (FNV-1a over them), grown when it gets full. Label values are copied
 * into the series (one allocation per series). Rendering sorts a family's
 * series by label values so that the output is stable for people and tests.
 */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"

typedef struct metric_def {
    const char *name;
    metric_type_t type;
    metric_buckets_t buckets;
    const char *labels; /* comma-separated names */
    const char *help;
} metric_def_t;

static const metric_def_t defs[M__MAX] = {
#define X(id, name, type, buckets, labels, help) [id] = {name, type, buckets, labels, help},
    KS_METRICS(X)
#undef X
};

static const double bounds_seconds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10, 30};
static const double bounds_bytes[] = {1024,    4096,     16384,    65536,     262144,
                                      1048576, 4194304,  16777216, 67108864, 268435456};
#define NB_SECONDS ((int)(sizeof bounds_seconds / sizeof bounds_seconds[0]))
#define NB_BYTES ((int)(sizeof bounds_bytes / sizeof bounds_bytes[0]))
#define NB_MAX 16
_Static_assert(NB_SECONDS <= NB_MAX && NB_BYTES <= NB_MAX, "bucket sets fit a series");

const double *metrics_bucket_bounds(metric_buckets_t b, int *n) {
    switch (b) {
    case MB_SECONDS: *n = NB_SECONDS; return bounds_seconds;
    case MB_BYTES: *n = NB_BYTES; return bounds_bytes;
    default: *n = 0; return NULL;
    }
}

struct metric_series {
    metric_series_t *next; /* hash chain */
    uint32_t hash;
    uint8_t type, nlabels, nbuckets;
    const double *bounds;  /* histogram: nbuckets upper bounds */
    double value;          /* counter / gauge */
    double sum;            /* histogram */
    uint64_t count;
    uint64_t buckets[NB_MAX]; /* histogram: observations <= bound i (not cumulative) */
    const char *labels[METRICS_MAX_LABELS];
    char text[];           /* label values, NUL-separated */
};

typedef struct family {
    int nlabels;
    char label_names[METRICS_MAX_LABELS][32];
    metric_series_t **tab;
    size_t nbuckets, nseries;
} family_t;

static family_t fams[M__MAX];
static bool inited;

static struct {
    metrics_collector_fn *fn;
    void *arg;
} collectors[16];
static int ncollectors;

/* Parses the label-name lists once. */
static void metrics_init(void) {
    if (inited) return;
    for (int m = 0; m < M__MAX; m++) {
        family_t *f = &fams[m];
        const char *p = defs[m].labels;
        f->nlabels = 0;
        while (p && *p) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            KS_ASSERT(f->nlabels < METRICS_MAX_LABELS && n > 0 && n < sizeof f->label_names[0]);
            memcpy(f->label_names[f->nlabels], p, n);
            f->label_names[f->nlabels][n] = 0;
            f->nlabels++;
            p = comma ? comma + 1 : p + n;
        }
    }
    inited = true;
}

const char *metrics_name(metric_id_t m) { return (unsigned)m < M__MAX ? defs[m].name : NULL; }
metric_type_t metrics_type(metric_id_t m) { return defs[m].type; }
int metrics_nlabels(metric_id_t m) {
    metrics_init();
    return fams[m].nlabels;
}

static uint32_t labels_hash(const char *const *labels, int n) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++) {
        for (const char *p = labels[i]; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
        h = (h ^ 0xff) * 16777619u; /* separator: ("ab","") != ("a","b") */
    }
    return h;
}

static bool labels_equal(const metric_series_t *s, const char *const *labels, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s->labels[i], labels[i])) return false;
    return true;
}

static void family_grow(family_t *f) {
    size_t nb = f->nbuckets ? f->nbuckets * 2 : 16;
    metric_series_t **tab = calloc(nb, sizeof *tab);
    if (!tab) return;
    for (size_t i = 0; i < f->nbuckets; i++) {
        metric_series_t *s = f->tab[i];
        while (s) {
            metric_series_t *next = s->next;
            s->next = tab[s->hash & (nb - 1)];
            tab[s->hash & (nb - 1)] = s;
            s = next;
        }
    }
    free(f->tab);
    f->tab = tab;
    f->nbuckets = nb;
}

static metric_series_t *find(family_t *f, const char *const *labels, int n, uint32_t h) {
    if (!f->nbuckets) return NULL;
    for (metric_series_t *s = f->tab[h & (f->nbuckets - 1)]; s; s = s->next)
        if (s->hash == h && labels_equal(s, labels, n)) return s;
    return NULL;
}

metric_series_t *metrics_series(metric_id_t m, const char *const *labels, int nlabels) {
    metrics_init();
    KS_ASSERT((unsigned)m < M__MAX);
    family_t *f = &fams[m];
    KS_ASSERT(nlabels == f->nlabels);
    for (int i = 0; i < nlabels; i++) KS_ASSERT(labels[i] != NULL);
    uint32_t h = labels_hash(labels, nlabels);
    metric_series_t *s = find(f, labels, nlabels, h);
    if (s) return s;
    if (f->nseries >= f->nbuckets) family_grow(f);
    if (!f->nbuckets) return NULL;
    size_t text = 0;
    for (int i = 0; i < nlabels; i++) text += strlen(labels[i]) + 1;
    s = calloc(1, sizeof *s + text);
    if (!s) return NULL;
    s->hash = h;
    s->type = (uint8_t)defs[m].type;
    s->nlabels = (uint8_t)nlabels;
    int nb;
    s->bounds = metrics_bucket_bounds(defs[m].buckets, &nb);
    s->nbuckets = (uint8_t)nb;
    char *p = s->text;
    for (int i = 0; i < nlabels; i++) {
        size_t n = strlen(labels[i]) + 1;
        memcpy(p, labels[i], n);
        s->labels[i] = p;
        p += n;
    }
    s->next = f->tab[h & (f->nbuckets - 1)];
    f->tab[h & (f->nbuckets - 1)] = s;
    f->nseries++;
    return s;
}

void metrics_series_add(metric_series_t *s, double v) {
    if (s) s->value += v;
}

void metrics_series_set(metric_series_t *s, double v) {
    if (s) s->value = v;
}

void metrics_series_observe(metric_series_t *s, double v) {
    if (!s) return;
    KS_ASSERT(s->type == MT_HISTOGRAM);
    s->count++;
    s->sum += v;
    for (int i = 0; i < s->nbuckets; i++)
        if (v <= s->bounds[i]) {
            s->buckets[i]++;
            return;
        }
    /* above the last bound: only in +Inf (count) */
}

double metrics_value(metric_id_t m, const char *const *labels, int nlabels) {
    metrics_init();
    family_t *f = &fams[m];
    KS_ASSERT(nlabels == f->nlabels);
    metric_series_t *s = find(f, labels, nlabels, labels_hash(labels, nlabels));
    if (!s) return 0;
    return s->type == MT_HISTOGRAM ? (double)s->count : s->value;
}

static void family_drop_if(family_t *f, int label, const char *value) {
    for (size_t i = 0; i < f->nbuckets; i++) {
        metric_series_t **pp = &f->tab[i];
        while (*pp) {
            metric_series_t *s = *pp;
            if (label < 0 || !strcmp(s->labels[label], value)) {
                *pp = s->next;
                free(s);
                f->nseries--;
            } else {
                pp = &s->next;
            }
        }
    }
}

void metrics_clear(metric_id_t m) {
    metrics_init();
    family_drop_if(&fams[m], -1, NULL);
}

void metrics_clear_matching(metric_id_t m, int label, const char *value) {
    metrics_init();
    KS_ASSERT(label >= 0 && label < fams[m].nlabels);
    family_drop_if(&fams[m], label, value);
}

void metrics_reset_all(void) {
    metrics_init();
    for (int m = 0; m < M__MAX; m++) {
        family_drop_if(&fams[m], -1, NULL);
        free(fams[m].tab);
        fams[m].tab = NULL;
        fams[m].nbuckets = 0;
    }
    ncollectors = 0;
}

void metrics_add_collector(metrics_collector_fn *fn, void *arg) {
    KS_ASSERT(ncollectors < (int)(sizeof collectors / sizeof collectors[0]));
    collectors[ncollectors].fn = fn;
    collectors[ncollectors].arg = arg;
    ncollectors++;
}

/* ---- helpers ---- */

void metrics_count_error(const char *api, int16_t code) {
    if (code == KERR_NONE) return;
    const char *name = kafka_err_name(code);
    char buf[16];
    if (!name) {
        snprintf(buf, sizeof buf, "%d", code);
        name = buf;
    }
    metrics_add(M_REQUEST_ERRORS, 1, api ? api : "unknown", name);
}

void metrics_count_request(const char *api, double seconds) {
    if (!api) api = "unknown";
    metrics_add(M_REQUESTS, 1, api);
    metrics_observe(M_REQUEST_SECONDS, seconds, api);
}

void metrics_set_group_lag(const char *group, const char *topic, int32_t partition, int64_t lag) {
    char pbuf[16];
    snprintf(pbuf, sizeof pbuf, "%d", partition);
    const char *const lv[] = {group, topic, pbuf};
    if (lag < 0) {
        /* remove just this series */
        metrics_init();
        family_t *f = &fams[M_GROUP_LAG];
        uint32_t h = labels_hash(lv, 3);
        if (!f->nbuckets) return;
        for (metric_series_t **pp = &f->tab[h & (f->nbuckets - 1)]; *pp; pp = &(*pp)->next)
            if ((*pp)->hash == h && labels_equal(*pp, lv, 3)) {
                metric_series_t *s = *pp;
                *pp = s->next;
                free(s);
                f->nseries--;
                return;
            }
        return;
    }
    metrics_series_set(metrics_series(M_GROUP_LAG, lv, 3), (double)lag);
}

/* Reads a whole small /proc file into buf (NUL-terminated). */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return (ssize_t)n;
}

static double boot_time_s(void) {
    static double bt = -1;
    if (bt >= 0) return bt;
    char buf[8192];
    bt = 0;
    if (read_small("/proc/stat", buf, sizeof buf) > 0) {
        const char *p = strstr(buf, "\nbtime ");
        if (p) bt = strtod(p + 7, NULL);
    }
    return bt;
}

int metrics_sample_process(const char *process, pid_t pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (pid <= 0 || read_small(path, buf, sizeof buf) <= 0) goto gone;
    /* Fields after the command name, which may hold spaces and parentheses:
     * start after the last ')'. Field 3 (state) is the first after it. */
    const char *p = strrchr(buf, ')');
    if (!p) goto gone;
    p++;
    unsigned long long v[24] = {0}; /* v[i]: field i + 3 */
    for (int field = 3; field <= 24 && *p; field++) {
        while (*p == ' ') p++;
        v[field - 3] = strtoull(p, NULL, 10);
        while (*p && *p != ' ') p++;
    }
    /* utime 14, stime 15, num_threads 20, starttime 22, vsize 23 (1-based) */
    double hz = (double)sysconf(_SC_CLK_TCK);
    if (hz <= 0) hz = 100;
    metrics_set(M_PROC_CPU, (double)(v[14 - 3] + v[15 - 3]) / hz, process);
    metrics_set(M_PROC_THREADS, (double)v[20 - 3], process);
    metrics_set(M_PROC_START, boot_time_s() + (double)v[22 - 3] / hz, process);
    metrics_set(M_PROC_VSZ, (double)v[23 - 3], process);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (read_small(path, buf, sizeof buf) > 0) {
        const char *r = strstr(buf, "\nVmRSS:");
        if (r) metrics_set(M_PROC_RSS, strtod(r + 7, NULL) * 1024, process);
    }
    return 0;
gone:
    metrics_clear_matching(M_PROC_CPU, 0, process);
    metrics_clear_matching(M_PROC_THREADS, 0, process);
    metrics_clear_matching(M_PROC_START, 0, process);
    metrics_clear_matching(M_PROC_VSZ, 0, process);
    metrics_clear_matching(M_PROC_RSS, 0, process);
    return -1;
}

/* ---- Prometheus text ---- */

static void put_str(kw_t *w, const char *s) { kw_raw(w, s, strlen(s)); }

static void put_fmt(kw_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(kw_t *w, const char *fmt, ...) {
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) kw_raw(w, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void put_value(kw_t *w, double v) {
    if (isnan(v)) put_str(w, "NaN");
    else if (isinf(v)) put_str(w, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15) put_fmt(w, "%.0f", v);
    else put_fmt(w, "%.15g", v); /* 15 digits: exact for what we count, readable for sums */
}

/* HELP text: backslash and newline escaped. */
static void put_help(kw_t *w, const char *s) {
    for (; *s; s++) {
        if (*s == '\\') put_str(w, "\\\\");
        else if (*s == '\n') put_str(w, "\\n");
        else kw_raw(w, s, 1);
    }
}

/* Label values: backslash, double quote and newline escaped. */
static void put_label_value(kw_t *w, const char *s) {
    for (; *s; s++) {
        if (*s == '\\') put_str(w, "\\\\");
        else if (*s == '"') put_str(w, "\\\"");
        else if (*s == '\n') put_str(w, "\\n");
        else kw_raw(w, s, 1);
    }
}

/* {a="x",b="y"[,le="bound"]}: nothing when there are no labels at all. */
static void put_labels(kw_t *w, const family_t *f, const metric_series_t *s, const char *le) {
    int n = s ? s->nlabels : 0;
    if (!n && !le) return;
    kw_raw(w, "{", 1);
    for (int i = 0; i < n; i++) {
        if (i) kw_raw(w, ",", 1);
        put_str(w, f->label_names[i]);
        put_str(w, "=\"");
        put_label_value(w, s->labels[i]);
        kw_raw(w, "\"", 1);
    }
    if (le) {
        if (n) kw_raw(w, ",", 1);
        put_str(w, "le=\"");
        put_str(w, le);
        kw_raw(w, "\"", 1);
    }
    kw_raw(w, "}", 1);
}

static void put_series(kw_t *w, int m, const family_t *f, const metric_series_t *s) {
    const metric_def_t *d = &defs[m];
    if (d->type != MT_HISTOGRAM) {
        put_str(w, d->name);
        put_labels(w, f, s, NULL);
        kw_raw(w, " ", 1);
        put_value(w, s ? s->value : 0);
        kw_raw(w, "\n", 1);
        return;
    }
    int nb;
    const double *b = metrics_bucket_bounds(d->buckets, &nb);
    uint64_t cum = 0;
    for (int i = 0; i <= nb; i++) {
        char le[32];
        if (i < nb) {
            cum += s ? s->buckets[i] : 0;
            snprintf(le, sizeof le, "%g", b[i]);
        } else {
            cum = s ? s->count : 0;
            snprintf(le, sizeof le, "+Inf");
        }
        put_str(w, d->name);
        put_str(w, "_bucket");
        put_labels(w, f, s, le);
        put_fmt(w, " %llu\n", (unsigned long long)cum);
    }
    put_str(w, d->name);
    put_str(w, "_sum");
    put_labels(w, f, s, NULL);
    kw_raw(w, " ", 1);
    put_value(w, s ? s->sum : 0);
    kw_raw(w, "\n", 1);
    put_str(w, d->name);
    put_str(w, "_count");
    put_labels(w, f, s, NULL);
    put_fmt(w, " %llu\n", (unsigned long long)(s ? s->count : 0));
}

static int series_cmp(const void *a, const void *b) {
    const metric_series_t *x = *(metric_series_t *const *)a, *y = *(metric_series_t *const *)b;
    for (int i = 0; i < x->nlabels; i++) {
        int c = strcmp(x->labels[i], y->labels[i]);
        if (c) return c;
    }
    return 0;
}

void metrics_render(kw_t *w) {
    metrics_init();
    for (int i = 0; i < ncollectors; i++) collectors[i].fn(collectors[i].arg);
    metric_series_t **sorted = NULL;
    size_t sorted_cap = 0;
    for (int m = 0; m < M__MAX; m++) {
        const metric_def_t *d = &defs[m];
        family_t *f = &fams[m];
        put_str(w, "# HELP ");
        put_str(w, d->name);
        kw_raw(w, " ", 1);
        put_help(w, d->help);
        put_str(w, "\n# TYPE ");
        put_str(w, d->name);
        put_str(w, d->type == MT_COUNTER ? " counter\n" : d->type == MT_GAUGE ? " gauge\n" : " histogram\n");
        if (f->nlabels == 0) {
            /* One sample, created or not. */
            put_series(w, m, f, f->nseries ? find(f, NULL, 0, labels_hash(NULL, 0)) : NULL);
            continue;
        }
        if (f->nseries > sorted_cap) {
            size_t cap = f->nseries * 2;
            metric_series_t **n = realloc(sorted, cap * sizeof *n);
            if (!n) continue;
            sorted = n;
            sorted_cap = cap;
        }
        size_t k = 0;
        for (size_t i = 0; i < f->nbuckets; i++)
            for (metric_series_t *s = f->tab[i]; s; s = s->next) sorted[k++] = s;
        qsort(sorted, k, sizeof *sorted, series_cmp);
        for (size_t i = 0; i < k; i++) put_series(w, m, f, sorted[i]);
    }
    free(sorted);
}

/* ---- STATS encoding ----
 * i32 series count, then per series: str name, u8 label count, str values...,
 * u8 type, then counter/gauge: f64 value; histogram: u8 bucket count, that
 * many u64 (per bucket, not cumulative), u64 count, f64 sum. */

void metrics_encode(kw_t *w) {
    metrics_init();
    size_t at = kw_reserve(w, 4);
    int32_t n = 0;
    for (int m = 0; m < M__MAX; m++) {
        family_t *f = &fams[m];
        for (size_t i = 0; i < f->nbuckets; i++)
            for (metric_series_t *s = f->tab[i]; s; s = s->next) {
                kw_str(w, false, kstr_c(defs[m].name));
                kw_i8(w, (int8_t)s->nlabels);
                for (int l = 0; l < s->nlabels; l++) kw_str(w, false, kstr_c(s->labels[l]));
                kw_i8(w, (int8_t)s->type);
                if (s->type == MT_HISTOGRAM) {
                    kw_i8(w, (int8_t)s->nbuckets);
                    for (int b = 0; b < s->nbuckets; b++) kw_i64(w, (int64_t)s->buckets[b]);
                    kw_i64(w, (int64_t)s->count);
                    kw_f64(w, s->sum);
                } else {
                    kw_f64(w, s->value);
                }
                n++;
            }
    }
    kw_put_i32_at(w, at, n);
}

static int metric_by_name(kstr_t name) {
    for (int m = 0; m < M__MAX; m++)
        if (kstr_eq_c(name, defs[m].name)) return m;
    return -1;
}

int metrics_merge(kr_t *r) {
    metrics_init();
    int32_t n = kr_i32(r);
    if (r->err || n < 0 || n > 1000000) return -1;
    for (int32_t i = 0; i < n; i++) {
        kstr_t name = kr_str(r, false);
        int nl = kr_i8(r);
        if (r->err || nl < 0 || nl > METRICS_MAX_LABELS) return -1;
        char vals[METRICS_MAX_LABELS][256];
        const char *lv[METRICS_MAX_LABELS];
        for (int l = 0; l < nl; l++) {
            kstr_t v = kr_str(r, false);
            if (v.len < 0) return -1;
            kstr_cpy(vals[l], sizeof vals[l], v);
            lv[l] = vals[l];
        }
        int type = kr_i8(r);
        uint64_t buckets[NB_MAX] = {0}, count = 0;
        double value = 0, sum = 0;
        int nb = 0;
        if (type == MT_HISTOGRAM) {
            nb = kr_i8(r);
            if (nb < 0 || nb > NB_MAX) return -1;
            for (int b = 0; b < nb; b++) buckets[b] = (uint64_t)kr_i64(r);
            count = (uint64_t)kr_i64(r);
            sum = kr_f64(r);
        } else {
            value = kr_f64(r);
        }
        if (r->err) return -1;
        int m = metric_by_name(name);
        if (m < 0 || (int)defs[m].type != type || fams[m].nlabels != nl) continue;
        metric_series_t *s = metrics_series((metric_id_t)m, lv, nl);
        if (!s) continue;
        if (type == MT_HISTOGRAM) {
            if (nb != s->nbuckets) continue;
            memcpy(s->buckets, buckets, sizeof buckets);
            s->count = count;
            s->sum = sum;
        } else {
            s->value = value;
        }
    }
    return 0;
}
