/* http.h - the broker's HTTP listener (KAFSCALE_METRICS_ADDR, default :9093):
 * /metrics, /healthz, /readyz and the control API (broker/http.c). */
#ifndef KAFSCALE_HTTP_H
#define KAFSCALE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Starts the listener on g_broker.base. Returns 0; -1 when an explicitly
 * set KAFSCALE_METRICS_ADDR cannot be bound (the default :9093 only logs a
 * warning then: a second node on one machine must still start). */
int http_init(void);
/* Answers what is still waiting (TriggerFlush, DrainPartitions) with 503
 * and closes the listener. */
void http_shutdown(void);

/* Whether the node is ready (what /readyz says); on false, why holds the
 * reasons, one per line. */
bool http_node_ready(char *why, size_t whysz);

/* Hooks other parts of the node may define (weak: absent means "not part of
 * this node yet"):
 *   cache_link_ready()   the broker's link to kafscale-cached is up
 *   cache_link_pid()     the supervised kafscale-cached, 0 when none
 *   meta_link_ready()    the metadata store (etcd) answers; false with a
 *                        reason in why */
bool cache_link_ready(void) __attribute__((weak));
pid_t cache_link_pid(void) __attribute__((weak));
bool meta_link_ready(char *why, size_t whysz) __attribute__((weak));

#endif
