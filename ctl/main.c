/* main.c - kafscale-ctl: options, the command table, and the output helpers
 * (aligned tables, JSON). See ctl.h for the parts. */
#include "ctl.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

ctl_opts_t g_opts;

/* ---- output ---- */

void ctl_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("kafscale-ctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *kstr_z(char *buf, size_t bufsz, kstr_t s) {
    if (s.len < 0) {
        buf[0] = 0;
        return buf;
    }
    return kstr_cpy(buf, bufsz, s);
}

void json_print(json_t *j) {
    if (!j) {
        ctl_err("out of memory");
        return;
    }
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(j);
}

void table_init(ctl_table_t *t, int ncols, const char *const *head) {
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->head = head;
}

void table_add(ctl_table_t *t, ...) {
    if (t->nrows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char ***r = realloc(t->rows, (size_t)cap * sizeof *r);
        if (!r) return;
        t->rows = r;
        t->cap = cap;
    }
    char **row = calloc((size_t)t->ncols, sizeof *row);
    if (!row) return;
    va_list ap;
    va_start(ap, t);
    for (int i = 0; i < t->ncols; i++) {
        const char *v = va_arg(ap, const char *);
        row[i] = strdup(v ? v : "");
    }
    va_end(ap);
    t->rows[t->nrows++] = row;
}

void table_print(ctl_table_t *t) {
    int w[16] = {0};
    for (int c = 0; c < t->ncols && c < 16; c++) {
        w[c] = (int)strlen(t->head[c]);
        for (int r = 0; r < t->nrows; r++) {
            int n = t->rows[r][c] ? (int)strlen(t->rows[r][c]) : 0;
            if (n > w[c]) w[c] = n;
        }
    }
    for (int r = -1; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols && c < 16; c++) {
            const char *v = r < 0 ? t->head[c] : t->rows[r][c] ? t->rows[r][c] : "";
            if (c == t->ncols - 1) printf("%s", v);
            else printf("%-*s  ", w[c], v);
        }
        printf("\n");
    }
}

void table_free(ctl_table_t *t) {
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) free(t->rows[r][c]);
        free(t->rows[r]);
    }
    free(t->rows);
    memset(t, 0, sizeof *t);
}

/* ---- commands ---- */

typedef int cmd_fn(int argc, char **argv);

static const struct command {
    const char *name;
    cmd_fn *fn;
    const char *usage;
} commands[] = {
    {"status", cmd_status, "status                       node, components, partitions (control API)"},
    {"flush", cmd_flush, "flush                        flush now; answers when what was accepted is durable"},
    {"drain", cmd_drain,
     "drain                        flush, commit and refuse produce (NOT_LEADER_OR_FOLLOWER): with a\n"
     "                               cluster, leadership moves away; with one node, \"flush and fence writes\""},
    {"resume", cmd_resume, "resume                       take produce again after a drain"},
    {"topics", cmd_topics,
     "topics list | describe [TOPIC...] | create TOPIC [-p N] [-c name=value]... | delete TOPIC..."},
    {"groups", cmd_groups, "groups list | describe GROUP...   (lag per partition)"},
    {"configs", cmd_configs,
     "configs describe topic|broker NAME\n"
     "  configs alter topic|broker NAME name=value... [--delete name]..."},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: kafscale-ctl [options] COMMAND [ARGS]\n"
            "\n"
            "options:\n"
            "  -a, --addr HOST:PORT        control API (KAFSCALE_CTL_ADDR, default 127.0.0.1:9093)\n"
            "  -b, --bootstrap HOST:PORT   Kafka listener for topics/groups/configs (KAFSCALE_CTL_BOOTSTRAP,\n"
            "                              default: what the broker at --addr advertises, else 127.0.0.1:9092)\n"
            "  -t, --timeout-ms N          how long flush and drain wait (default 30000)\n"
            "  -j, --json                  JSON output for scripts\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  %s\n", commands[i].usage);
    fprintf(f, "\nExit status: 0 done, 1 the operation failed, 2 usage.\n");
}

int main(int argc, char **argv) {
    log_init("ctl");
    g_opts.addr = getenv("KAFSCALE_CTL_ADDR");
    if (!g_opts.addr || !*g_opts.addr) g_opts.addr = "127.0.0.1:9093";
    g_opts.bootstrap = getenv("KAFSCALE_CTL_BOOTSTRAP");
    if (g_opts.bootstrap && !*g_opts.bootstrap) g_opts.bootstrap = NULL;
    g_opts.timeout_ms = 30000;
    int i = 1;
    /* options before the command, and also anywhere after it (--json last is common) */
    char *rest[256];
    int nrest = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-a") || !strcmp(a, "--addr")) && i + 1 < argc) g_opts.addr = argv[++i];
        else if ((!strcmp(a, "-b") || !strcmp(a, "--bootstrap")) && i + 1 < argc) g_opts.bootstrap = argv[++i];
        else if ((!strcmp(a, "-t") || !strcmp(a, "--timeout-ms")) && i + 1 < argc) g_opts.timeout_ms = atoll(argv[++i]);
        else if (!strcmp(a, "-j") || !strcmp(a, "--json")) g_opts.json = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (nrest < 256) {
            rest[nrest++] = argv[i];
        }
    }
    if (nrest == 0) {
        usage(stderr);
        return 2;
    }
    if (g_opts.timeout_ms <= 0) {
        ctl_err("--timeout-ms must be positive");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 2;
    bool found = false;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (!strcmp(rest[0], commands[k].name)) {
            found = true;
            rc = commands[k].fn(nrest - 1, rest + 1);
        }
    if (!found) {
        ctl_err("unknown command '%s'", rest[0]);
        usage(stderr);
    }
    curl_global_cleanup();
    return rc;
}
