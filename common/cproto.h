/* cproto.h - the socket protocol of kafscale-cached
 * (<KAFSCALE_RUN_DIR>/cached.sock; cached listens, the broker and the flusher
 * connect). The ring itself is in shm_ring.h; this is how its writer hears
 * what to put there.
 *
 * Frames: u32 length of what follows (big-endian), u8 type, then the fields
 * below, big-endian; strings are u16 length + bytes. A SEG is
 *   str topic, 16 bytes topic id, i32 partition, i64 base offset,
 *   i64 last offset, i64 size (bytes of the .kfs)
 *
 * Roles (HELLO): the broker's event loop holds one BROKER connection (its
 * liveness is how the broker knows cached is up, and how a supervised cached
 * knows it still has a broker); each of the broker's store-read worker
 * threads holds its own READER connection for blocking LOAD requests; the
 * flusher holds a FLUSHER connection and only sends SEGMENT.
 *
 * client -> cached
 *   HELLO    u32 version, u8 role, i32 node id, i32 pid
 *   LOAD     u32 request id, SEG, u8 n, n x SEG (the committed segments that
 *            follow, oldest first: read-ahead candidates)
 *            -> LOADED once the segment is in the ring (or failed)
 *   HINT     SEG, u8 n, n x SEG: a reader entered this segment (served from
 *            the ring, so cached did not see it): keep reading ahead of it
 *   STATS    u64 hits, u64 misses, u64 lapped, u64 fallbacks: the broker's
 *            reads since its last STATS (readers never write the ring)
 *   SEGMENT  SEG: the flusher committed it (prefetch for readers close behind)
 *   STOP     (BROKER only, no fields) the broker stops cleanly (SIGTERM,
 *            SIGINT) and so does its node: a supervised cached exits at once
 *            (a clean stop: its ring is removed) and the broker waits for it,
 *            so a node restarted right away starts a fresh cached instead of
 *            meeting the old one on its way out. A cached that is not
 *            supervised (its own systemd unit or container) ignores it.
 * cached -> client
 *   WELCOME  u32 version, u64 ring generation, u64 ring size, str shm name,
 *            i32 cached pid, i32 read-ahead segments
 *   LOADED   u32 request id, u8 status (CP_LOAD_*), str message
 *   METRICS  cached's own metric series, encoded by metrics_encode()
 *            (common/metrics.h): its object-store GETs (operations, bytes,
 *            errors, latency), loads in flight, its process; to BROKER
 *            connections after WELCOME and then about once a second. The
 *            broker merges them into its /metrics (counters restart from 0
 *            with a restarted cached). The ring's own counters are not in
 *            it: the broker reads them from the ring's header.
 *
 * Compatibility: a receiver ignores frame types it does not know, so STOP
 * and METRICS (added after version 1 shipped) need no new version.
 */
#ifndef KAFSCALE_CPROTO_H
#define KAFSCALE_CPROTO_H

#define CPROTO_VERSION   1
#define CPROTO_MAX_FRAME (64u << 10)
#define CPROTO_MAX_NEXT  8
#define CPROTO_SOCK_NAME "cached.sock"

enum cproto_type {
    CP_HELLO = 1,
    CP_LOAD = 2,
    CP_HINT = 3,
    CP_STATS = 4,
    CP_SEGMENT = 5,
    CP_STOP = 6,
    CP_WELCOME = 64,
    CP_LOADED = 65,
    CP_METRICS = 66,
};

enum cproto_role { CP_ROLE_BROKER = 1, CP_ROLE_READER = 2, CP_ROLE_FLUSHER = 3 };

enum cproto_status {
    CP_LOAD_OK = 0,
    CP_LOAD_ERROR = 1,     /* store error or corrupt segment */
    CP_LOAD_NOT_FOUND = 2, /* no such object */
    CP_LOAD_TOO_BIG = 3,   /* more than half the ring */
    CP_LOAD_BUSY = 4,      /* queue full: read from the store */
};

#endif
