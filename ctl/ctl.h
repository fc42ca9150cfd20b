/* ctl.h - kafscale-ctl, the command-line client for operators:
 *
 *   control.c  the broker's control API over HTTP (proto/control/broker.proto):
 *              status, flush, drain, resume
 *   kclient.c  a small blocking Kafka client built on the project's wire
 *              codec (common/kmsg.h, common/msg_*.h): connect, negotiate
 *              versions with ApiVersions, call
 *   admin.c    topics, groups and configs through the Kafka protocol
 *              (Metadata, CreateTopics, DeleteTopics, ListOffsets,
 *              ListGroups, DescribeGroups, OffsetFetch, FindCoordinator,
 *              DescribeConfigs, IncrementalAlterConfigs / AlterConfigs), so
 *              they work against any broker of a cluster, or any Kafka
 *   main.c     arguments, the command table, table and JSON output
 *
 * Output: aligned tables for people by default; --json prints one JSON
 * document (the control API's messages as pbjson.h writes them; the Kafka
 * commands' own objects) for scripts. Exit status: 0 done, 1 the operation
 * failed (an error code, not durable in time, broker unreachable), 2 usage.
 */
#ifndef KAFSCALE_CTL_H
#define KAFSCALE_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "kafka.h"
#include "kbuf.h"
#include "kmsg.h"

typedef struct ctl_opts {
    const char *addr;      /* control API host:port */
    const char *bootstrap; /* Kafka host:port (NULL: from GetStatus, else 127.0.0.1:9092) */
    bool json;
    int64_t timeout_ms;    /* flush/drain wait, Kafka request timeout */
} ctl_opts_t;

extern ctl_opts_t g_opts;

/* ---- output (main.c) ---- */

/* A table: add rows of strings (copied), print aligned with a header. */
typedef struct ctl_table {
    int ncols;
    const char *const *head;
    char ***rows;
    int nrows, cap;
} ctl_table_t;
void table_init(ctl_table_t *t, int ncols, const char *const *head);
void table_add(ctl_table_t *t, ...); /* ncols const char * values */
void table_print(ctl_table_t *t);
void table_free(ctl_table_t *t);
/* Prints j (pretty) to stdout and drops the reference. */
void json_print(json_t *j);
/* A message on stderr: "kafscale-ctl: ..." */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* kstr to a NUL-terminated copy in buf. */
const char *kstr_z(char *buf, size_t bufsz, kstr_t s);

/* ---- control API (control.c) ---- */
int cmd_status(int argc, char **argv);
int cmd_flush(int argc, char **argv);
int cmd_drain(int argc, char **argv);
int cmd_resume(int argc, char **argv);
/* The Kafka address the broker advertises (GetStatus), into buf; -1 if the
 * control API does not answer. */
int control_kafka_address(char *buf, size_t bufsz);

/* ---- Kafka client (kclient.c) ---- */
typedef struct kc {
    int fd;
    char addr[300];
    int32_t corr;
    int16_t vmin[KAPI__MAX], vmax[KAPI__MAX]; /* served versions; vmax -1 = not served */
    karena_t arena;                           /* decoded responses; reset by kc_reset() */
    kw_t w;
    uint8_t *buf;                             /* last response frame (decoded views point here) */
    size_t buflen;
} kc_t;

/* Connects to host:port and asks ApiVersions. 0, or -1 with a message printed. */
int kc_open(kc_t *c, const char *addr);
void kc_close(kc_t *c);
/* Frees what earlier responses decoded into. */
void kc_reset(kc_t *c);
/* The highest version in [lo, hi] the broker serves, or -1 (message printed). */
int kc_version(kc_t *c, int16_t key, const char *name, int lo, int hi);
/* Sends req (encoded as `version`, flexible from first_flexible) and decodes
 * the response into resp (views into c->buf, arrays in c->arena: valid
 * until the next call or kc_reset). 0, or -1 with a message printed. */
int kc_call(kc_t *c, int16_t key, int version, int first_flexible, const kschema_t *req_schema, const void *req,
            const kschema_t *resp_schema, void *resp);

/* ---- admin commands (admin.c) ---- */
int cmd_topics(int argc, char **argv);
int cmd_groups(int argc, char **argv);
int cmd_configs(int argc, char **argv);

#endif
