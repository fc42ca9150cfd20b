/* main.c - kafscale-broker: reads the KAFSCALE_* settings, starts the Kafka
 * listener and runs the event loop until SIGINT/SIGTERM. */
#include "broker.h"
#include "cluster.h"
#include "config.h"
#include "group.h"
#include "http.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <event2/event.h>
#include <event2/thread.h>

static void load_config(broker_config_t *cfg) {
    const char *addr = env_str("KAFSCALE_BROKER_ADDR", "0.0.0.0:9092");
    env_hostport("KAFSCALE_BROKER_ADDR", addr, cfg->listen_host, sizeof cfg->listen_host, &cfg->listen_port);
    const char *wild = cfg->listen_host;
    bool wildcard = !*wild || !strcmp(wild, "0.0.0.0") || !strcmp(wild, "::");
    snprintf(cfg->advertised_host, sizeof cfg->advertised_host, "%s",
             env_str("KAFSCALE_BROKER_HOST", wildcard ? "127.0.0.1" : cfg->listen_host));
    cfg->advertised_port = (int)env_int("KAFSCALE_BROKER_PORT", cfg->listen_port, 1, 65535);
    if (cfg->listen_port == 0 && !getenv("KAFSCALE_BROKER_PORT")) {
        fprintf(stderr, "kafscale: KAFSCALE_BROKER_PORT must be set when KAFSCALE_BROKER_ADDR uses port 0\n");
        exit(2);
    }
    cfg->node_id = (int32_t)env_int("KAFSCALE_BROKER_ID", 0, 0, INT32_MAX);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", env_str("KAFSCALE_DATA_DIR", "./data"));
    snprintf(cfg->cluster_id, sizeof cfg->cluster_id, "%s", env_str("KAFSCALE_CLUSTER_ID", "kafscale"));
    cfg->max_request_bytes = env_size("KAFSCALE_MAX_REQUEST_BYTES", 100 << 20, 1024, INT32_MAX);
    cfg->idle_timeout_ms = env_int("KAFSCALE_IDLE_TIMEOUT_MS", 600000, 0, 86400000);
    cfg->auto_create_topics = env_bool("KAFSCALE_AUTO_CREATE_TOPICS", true);
    cfg->auto_create_partitions = (int32_t)env_int("KAFSCALE_AUTO_CREATE_PARTITIONS", 1, 1, 100000);
    cfg->max_inflight_per_conn = (int32_t)env_int("KAFSCALE_MAX_INFLIGHT_PER_CONN", 1024, 1, 1000000);
    cfg->max_unflushed_bytes = env_size("KAFSCALE_MAX_UNFLUSHED_BYTES", 256LL << 20, 1 << 20, 1LL << 40);
    cfg->tail_bytes = env_size("KAFSCALE_TAIL_BYTES", 256LL << 20, 0, 1LL << 40);
}

static void start_listening(void) {
    if (conn_listen() != 0) {
        log_error("cannot open the Kafka listener; exiting");
        exit(1);
    }
    log_info("kafscale-broker %d listening on %s:%d, advertised as %s:%d", g_broker.cfg.node_id,
             g_broker.cfg.listen_host[0] ? g_broker.cfg.listen_host : "*", g_broker.cfg.listen_port,
             g_broker.cfg.advertised_host, g_broker.cfg.advertised_port);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    log_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    g_broker.stopping = true;
    event_base_loopexit(g_broker.base, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: kafscale-broker\n"
               "A Kafka-compatible broker. All settings come from KAFSCALE_* environment\n"
               "variables; see README.md (Configuration).\n");
        return 0;
    }
    log_init("broker");
    /* Keep freed memory in the heap instead of returning it: big produce
     * frames and log chunks would otherwise fault fresh pages every time. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    load_config(&g_broker.cfg);
    signal(SIGPIPE, SIG_IGN);
    mkdir(g_broker.cfg.data_dir, 0755);

    evthread_use_pthreads();
    g_broker.base = event_base_new();
    if (!g_broker.base) { log_error("cannot create event base"); return 1; }
    g_broker.start_ms = now_ms();
    topics_init();
    cluster_configure(); /* before the metadata is opened: etcd or the embedded journals */
    if (topics_load() != 0) return 1;
    if (group_init() != 0) return 1;
    /* Joins the cluster before any child process starts: a broker that
     * cannot join exits leaving nothing behind. */
    if (cluster_start() != 0) return 1;
    if (cache_link_init() != 0) return 1;
    if (store_read_init() != 0) return 1;
    /* Clients are let in once the flusher reported what is committed: before
     * that, offsets assigned from our metadata could collide with a cycle a
     * previous flusher was still committing. */
    flink_on_first_ready(start_listening);
    if (flink_init() != 0) return 1;
    if (http_init() != 0) return 1; /* /metrics, /healthz, /readyz, control API: before the Kafka port opens */
    struct event *sigint = evsignal_new(g_broker.base, SIGINT, on_signal, NULL);
    struct event *sigterm = evsignal_new(g_broker.base, SIGTERM, on_signal, NULL);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);

    log_info("kafscale-broker %d starting; waiting for the flusher before taking clients", g_broker.cfg.node_id);
    event_base_dispatch(g_broker.base);

    /* Stop taking requests, make everything accepted durable, then stop. */
    conn_shutdown();
    flink_shutdown(now_ms() + env_int("KAFSCALE_SHUTDOWN_TIMEOUT_MS", 30000, 0, 3600000));
    cluster_shutdown(); /* everything is durable: hand our partitions over at once */
    http_shutdown();
    store_read_shutdown();
    cache_link_shutdown();
    group_shutdown();
    topics_shutdown();
    event_free(sigint);
    event_free(sigterm);
    event_base_free(g_broker.base);
    log_info("stopped");
    return 0;
}
