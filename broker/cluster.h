/* cluster.h - many brokers over one etcd: membership, partition leadership,
 * group coordinators (cluster.c). Active when KAFSCALE_ETCD_ENDPOINTS is set;
 * a single node (no etcd) leads every partition and coordinates every group.
 *
 * In etcd (values are kafscale.metadata protobuf, see proto/):
 *   /kafscale/brokers/<id>                   BrokerRegistration, under our lease
 *   /kafscale/partitions/<topic>/<p>/leader  PartitionAssignment, under the leader's lease
 *   /kafscale/partitions/<topic>/<p>/state   PartitionState (the leader epoch only grows)
 *   /kafscale/metadata/snapshot              the topics (JSON; common/meta_etcd.c)
 *
 * Who leads what is computed by every broker alike from the live, not
 * draining registrations (rendezvous hashing with a per-topic load bound),
 * and claimed with a transaction: the leader key must not exist, the state
 * key must be unchanged since read; the claim writes the key under our lease
 * and the state with epoch + 1. The claim's revision fences the flusher's
 * segment commits (common/meta.h, meta_set_fence). A broker that should no
 * longer lead a partition (another joined, or we drain) stops taking produce
 * for it, lets the flusher make everything durable and only then deletes its
 * leader key; the new owner claims and resumes from the committed end. A
 * broker whose lease expired (it died, or was paused past the TTL) loses
 * every claim with it; its flusher's commits fail the fence.
 */
#ifndef KAFSCALE_CLUSTER_H
#define KAFSCALE_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker.h"

typedef struct cluster_broker {
    int32_t id;
    char host[256];
    int32_t port;
    char rack[64];
    bool draining;
} cluster_broker_t;

/* Reads KAFSCALE_ETCD_ENDPOINTS (and KAFSCALE_LEASE_TTL_SEC): false when the
 * broker runs alone. Called before topics are loaded. */
bool cluster_configure(void);
/* Starts membership: lease, registration, watches, the cluster thread.
 * After topics_load and flink_init. 0 or -1. */
int cluster_start(void);
/* Graceful stop after the flusher made everything durable: revokes our lease
 * so the other brokers take over at once. */
void cluster_shutdown(void);

/* Our etcd lease is certainly alive (always true for a single node): a
 * broker paused past its TTL writes nothing (produce, group state) until it
 * rejoined. */
bool cluster_lease_alive(void);

/* The live brokers (ours included once registered); valid until the next
 * event-loop turn. */
int cluster_brokers(const cluster_broker_t **out);
/* The coordinator of a group / transactional id: a live broker id. */
int32_t cluster_coordinator(kstr_t key);
const cluster_broker_t *cluster_broker_find(int32_t id);

/* DrainPartitions / ResumePartitions (http.c): hand every partition and group
 * away, or take a share again. */
void cluster_set_draining(bool on);
/* Partitions we lead or are loading/releasing (GetStatus, drain progress). */
int cluster_partitions_led(void);

/* flush_link.c calls these on the flusher's reports. */
void cluster_flusher_ready(void);                      /* re-sends LEAD for what we lead */
void cluster_on_led(partition_t *p, int64_t rev, int64_t end, int64_t log_start);
void cluster_on_fenced(partition_t *p, int64_t rev);
/* partition.c: p's high watermark moved (a release may complete). */
void cluster_on_committed(partition_t *p);

#endif
