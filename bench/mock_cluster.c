/* mock_cluster.c - bin/bench-mock: librdkafka's in-memory mock cluster
 * (rdkafka_mock.h) on loopback, the bar `make bench` measures Kafscale
 * against. It keeps every message in memory and does no I/O besides the
 * sockets, so it is what a Kafka hot path costs in librdkafka's own code.
 *
 *   bench-mock [-b BROKERS] [-t TOPIC:PARTITIONS]...
 *
 * Prints "BOOTSTRAP host:port[,...]" on stdout (flushed), then runs until
 * SIGTERM or SIGINT. Topics not created with -t are auto-created by the
 * mock on first use (with its default partition count).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static int usage(void) {
    fprintf(stderr, "usage: bench-mock [-b BROKERS] [-t TOPIC:PARTITIONS]...\n");
    return 2;
}

int main(int argc, char **argv) {
    int brokers = 1, opt;
    char *topics[64];
    int ntopics = 0;
    while ((opt = getopt(argc, argv, "b:t:")) != -1) {
        switch (opt) {
        case 'b': brokers = atoi(optarg); break;
        case 't':
            if (ntopics == 64) return usage();
            topics[ntopics++] = optarg;
            break;
        default: return usage();
        }
    }
    if (brokers < 1 || brokers > 16 || optind != argc) return usage();

    /* Block the stop signals before librdkafka starts its threads, so only
     * sigwait below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "bench-mock: rd_kafka_new: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "bench-mock: rd_kafka_mock_cluster_new failed\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < ntopics; i++) {
        char *colon = strrchr(topics[i], ':');
        int parts = colon ? atoi(colon + 1) : 1;
        if (colon) *colon = '\0';
        if (parts < 1) return usage();
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, topics[i], parts, 1);
        if (err) {
            fprintf(stderr, "bench-mock: topic %s: %s\n", topics[i], rd_kafka_err2str(err));
            return 1;
        }
    }
    printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
