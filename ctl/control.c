/* control.c - kafscale-ctl's control API commands: status, flush, drain,
 * resume. Each is one POST of a protobuf message to
 * http://<addr>/control/v1/<Method> (libcurl); the answer is a protobuf
 * message too, printed as a table or, with --json, through pbjson.h. */
#include "ctl.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/broker.pb-c.h"
#include "pbjson.h"

typedef struct body {
    uint8_t *p;
    size_t len;
} body_t;

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *arg) {
    body_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > (64u << 20)) return 0;
    uint8_t *np = realloc(b->p, b->len + n + 1);
    if (!np) return 0;
    memcpy(np + b->len, ptr, n);
    b->p = np;
    b->len += n;
    return n;
}

/* Calls method with req; on HTTP 200 returns the unpacked answer (free with
 * protobuf_c_message_free_unpacked), else NULL with a message printed. */
static ProtobufCMessage *call(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_d,
                              long wait_s, bool quiet) {
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *out = malloc(n ? n : 1);
    if (!out) return NULL;
    protobuf_c_message_pack(req, out);
    char url[512];
    snprintf(url, sizeof url, "http://%s/control/v1/%s", g_opts.addr, method);
    CURL *h = curl_easy_init();
    if (!h) {
        free(out);
        return NULL;
    }
    body_t b = {NULL, 0};
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/x-protobuf");
    hdrs = curl_slist_append(hdrs, "Accept: application/x-protobuf");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)out);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)n);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, wait_s + 15);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(out);
    ProtobufCMessage *m = NULL;
    if (rc != CURLE_OK) {
        if (!quiet) ctl_err("%s: cannot reach the control API at %s: %s", method, g_opts.addr, curl_easy_strerror(rc));
    } else if (status != 200) {
        Kafscale__Control__V1__Error *e = kafscale__control__v1__error__unpack(NULL, b.len, b.p);
        if (!quiet)
            ctl_err("%s: HTTP %ld from %s: %s", method, status, g_opts.addr, e && e->error[0] ? e->error : "(no message)");
        if (e) kafscale__control__v1__error__free_unpacked(e, NULL);
    } else {
        m = protobuf_c_message_unpack(resp_d, NULL, b.len, b.p);
        if (!m && !quiet) ctl_err("%s: malformed answer from %s", method, g_opts.addr);
    }
    free(b.p);
    return m;
}

static const char *state_name(int s) {
    switch (s) {
    case KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_UP: return "up";
    case KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_DOWN: return "DOWN";
    case KAFSCALE__CONTROL__V1__COMPONENT_STATE__COMPONENT_ABSENT: return "absent";
    default: return "?";
    }
}

int control_kafka_address(char *buf, size_t bufsz) {
    Kafscale__Control__V1__GetStatusRequest req = KAFSCALE__CONTROL__V1__GET_STATUS_REQUEST__INIT;
    req.omit_partitions = true;
    ProtobufCMessage *m = call("GetStatus", &req.base, &kafscale__control__v1__get_status_response__descriptor, 10, true);
    if (!m) return -1;
    Kafscale__Control__V1__GetStatusResponse *s = (Kafscale__Control__V1__GetStatusResponse *)m;
    snprintf(buf, bufsz, "%s", s->kafka_address);
    protobuf_c_message_free_unpacked(m, NULL);
    return buf[0] ? 0 : -1;
}

int cmd_status(int argc, char **argv) {
    Kafscale__Control__V1__GetStatusRequest req = KAFSCALE__CONTROL__V1__GET_STATUS_REQUEST__INIT;
    ProtobufCMessage *m = call("GetStatus", &req.base, &kafscale__control__v1__get_status_response__descriptor, 10, false);
    if (!m) return 1;
    Kafscale__Control__V1__GetStatusResponse *s = (Kafscale__Control__V1__GetStatusResponse *)m;
    int rc = 0;
    if (g_opts.json) {
        json_print(pbjson_from_message(m));
    } else {
        printf("node %d of cluster %s, Kafka at %s, up %.1f s\n", s->node_id, s->cluster_id, s->kafka_address,
               (double)s->uptime_ms / 1000);
        if (s->ready) {
            printf("ready\n");
        } else {
            printf("NOT READY:\n");
            for (const char *p = s->not_ready_reason; *p;) {
                const char *nl = strchr(p, '\n');
                int len = nl ? (int)(nl - p) : (int)strlen(p);
                printf("  %.*s\n", len, p);
                p += len + (nl ? 1 : 0);
            }
        }
        if (s->draining) printf("draining: produce is refused (NOT_LEADER_OR_FOLLOWER); `kafscale-ctl resume` undoes it\n");
        printf("%d topic(s), %d partition(s) led, %lld unflushed byte(s), %d connection(s)\n\n", s->topics,
               s->partitions_led, (long long)s->unflushed_bytes, s->connections);
        static const char *const ch[] = {"COMPONENT", "STATE", "PID", "MESSAGE"};
        ctl_table_t t;
        table_init(&t, 4, ch);
        Kafscale__Control__V1__Component *cs[] = {s->flusher, s->cached, s->object_store, s->metadata_store};
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
            if (!cs[i]) continue;
            char pid[16];
            snprintf(pid, sizeof pid, "%d", cs[i]->pid);
            table_add(&t, cs[i]->name, state_name(cs[i]->state), cs[i]->pid ? pid : "-", cs[i]->message);
        }
        table_print(&t);
        table_free(&t);
        if (s->n_partitions) {
            printf("\n");
            static const char *const ph[] = {"TOPIC", "PARTITION", "EPOCH", "START", "HW", "END", "UNFLUSHED", "SEGMENTS"};
            table_init(&t, 8, ph);
            for (size_t i = 0; i < s->n_partitions; i++) {
                Kafscale__Control__V1__PartitionStatus *p = s->partitions[i];
                char a[5][24];
                snprintf(a[0], 24, "%d", p->partition);
                snprintf(a[1], 24, "%d", p->leader_epoch);
                snprintf(a[2], 24, "%lld", (long long)p->log_start_offset);
                snprintf(a[3], 24, "%lld", (long long)p->high_watermark);
                snprintf(a[4], 24, "%lld", (long long)p->log_end_offset);
                char u[24], sg[24];
                snprintf(u, sizeof u, "%lld", (long long)p->unflushed_bytes);
                snprintf(sg, sizeof sg, "%d", p->segments);
                table_add(&t, p->topic, a[0], a[1], a[2], a[3], a[4], u, sg);
            }
            table_print(&t);
            table_free(&t);
        }
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

static int64_t wait_ms(void) { return g_opts.timeout_ms > 0 ? g_opts.timeout_ms : 30000; }

int cmd_flush(int argc, char **argv) {
    Kafscale__Control__V1__TriggerFlushRequest req = KAFSCALE__CONTROL__V1__TRIGGER_FLUSH_REQUEST__INIT;
    req.timeout_ms = wait_ms();
    ProtobufCMessage *m =
        call("TriggerFlush", &req.base, &kafscale__control__v1__trigger_flush_response__descriptor, req.timeout_ms / 1000, false);
    if (!m) return 1;
    Kafscale__Control__V1__TriggerFlushResponse *f = (Kafscale__Control__V1__TriggerFlushResponse *)m;
    int rc = f->durable ? 0 : 1;
    if (g_opts.json) json_print(pbjson_from_message(m));
    else if (f->durable)
        printf("durable: %lld byte(s) flushed in %lld ms\n", (long long)f->flushed_bytes, (long long)f->elapsed_ms);
    else
        printf("NOT durable after %lld ms: %s (%lld byte(s) still unflushed)\n", (long long)f->elapsed_ms, f->message,
               (long long)f->unflushed_bytes);
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

int cmd_drain(int argc, char **argv) {
    Kafscale__Control__V1__DrainPartitionsRequest req = KAFSCALE__CONTROL__V1__DRAIN_PARTITIONS_REQUEST__INIT;
    req.timeout_ms = wait_ms();
    ProtobufCMessage *m = call("DrainPartitions", &req.base, &kafscale__control__v1__drain_partitions_response__descriptor,
                               req.timeout_ms / 1000, false);
    if (!m) return 1;
    Kafscale__Control__V1__DrainPartitionsResponse *d = (Kafscale__Control__V1__DrainPartitionsResponse *)m;
    int rc = d->drained ? 0 : 1;
    if (g_opts.json) json_print(pbjson_from_message(m));
    else if (d->drained)
        printf("drained: %d partition(s), %lld byte(s) flushed in %lld ms; produce is refused until `kafscale-ctl "
               "resume` or a restart\n",
               d->partitions, (long long)d->flushed_bytes, (long long)d->elapsed_ms);
    else
        printf("NOT drained after %lld ms: %s (writes are fenced)\n", (long long)d->elapsed_ms, d->message);
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

int cmd_resume(int argc, char **argv) {
    Kafscale__Control__V1__ResumePartitionsRequest req = KAFSCALE__CONTROL__V1__RESUME_PARTITIONS_REQUEST__INIT;
    ProtobufCMessage *m =
        call("ResumePartitions", &req.base, &kafscale__control__v1__resume_partitions_response__descriptor, 10, false);
    if (!m) return 1;
    if (g_opts.json) json_print(pbjson_from_message(m));
    else printf("writes are taken again\n");
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
