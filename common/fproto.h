/* fproto.h - the broker <-> flusher protocol over a UNIX stream socket
 * (<KAFSCALE_RUN_DIR>/flusher.sock; the flusher listens, the broker connects).
 *
 * Frames: u32 length of what follows (big-endian), u8 type, then the fields
 * below, all big-endian; strings are u16 length + bytes. Record batches are
 * carried verbatim (the broker writes them straight from its partition log by
 * reference; the flusher copies them once into its per-partition buffer).
 *
 * Why a socket and not shared memory: the broker already holds every
 * unflushed batch; a socket gives the flusher its own copy with back-pressure
 * from the kernel, survives either side crashing without shared state to
 * repair, and costs one memcpy per byte (see README, "Flusher IPC").
 *
 * broker -> flusher
 *   HELLO    u32 version, i32 node id
 *   TOPIC    str topic, 16 bytes topic id, i32 partitions, i64 retention_ms,
 *            i64 retention_bytes, i64 segment_bytes
 *                                       (create, config change, more partitions)
 *   DELTOPIC str topic                  (delete the topic's objects and metadata;
 *            an upload of it in flight lands first and is not committed)
 *   DELRECORDS str topic, i32 partition, i64 new log start offset
 *                                       (DeleteRecords: the flusher records the
 *            new log start in metadata with the segments wholly below it
 *            removed, deletes their objects, then answers LOGSTART; an offset
 *            at or below its log start changes nothing, one above its
 *            committed end is capped there. The broker sends it when the
 *            request arrives, and again for every partition whose log start
 *            is above 0 after each READY, in case the flusher missed it)
 *   APPEND   str topic, i32 partition, i32 leader epoch, i64 base offset,
 *            i64 last offset, i64 max timestamp, i32 record count, then the
 *            batches' bytes to the end of the frame (one or more whole batches)
 *   FLUSH    (producers are waiting: start a cycle now if none is running)
 *   LEAD     str topic, i32 partition, i32 leader epoch, i64 claim revision
 *            (cluster: the broker claimed the partition in etcd; the flusher
 *            fences its commits with the revision (meta_set_fence), loads
 *            the partition's committed segments from etcd, reports each as
 *            DURABLE and then answers LED; pending bytes it held for the
 *            partition are dropped)
 *   UNLEAD   str topic, i32 partition (cluster: no longer ours; drop pending
 *            bytes, refuse commits)
 *   LEASE    i64 deadline (CLOCK_MONOTONIC ms): the broker's etcd lease is
 *            certainly alive until then; the flusher starts no upload for a
 *            led partition within a second of it
 * flusher -> broker
 *   READY    (the flusher loaded its metadata and accepts APPENDs)
 *   DURABLE  str topic, i32 partition, i64 end offset (exclusive), i64 segment
 *            base offset, i64 segment size, i64 segment max timestamp,
 *            16 bytes topic id
 *            (end offset only moves forward; segment size 0 = no new segment,
 *            e.g. after a restart found the data already committed; the
 *            broker ignores a report whose topic id is not its topic's: a
 *            topic deleted and created again under the same name)
 *   LOGSTART str topic, i32 partition, i64 new log start offset (retention,
 *            DeleteRecords), 16 bytes topic id
 *   STORE    u8 healthy, str message   (object store state changed)
 *   LED      str topic, i32 partition, i64 claim revision, i64 committed end,
 *            i64 log start (answer to LEAD)
 *   FENCED   str topic, i32 partition, i64 claim revision (a commit failed
 *            the fence: another broker owns the partition now; its pending
 *            bytes were dropped)
 *   STATS    the flusher's metric series, encoded by metrics_encode()
 *            (common/metrics.h: i32 count, then per series its name, label
 *            values and values), about once a second while connected; the
 *            broker merges them into its registry and serves them on /metrics
 *            (counters restart from 0 with a restarted flusher)
 */
#ifndef KAFSCALE_FPROTO_H
#define KAFSCALE_FPROTO_H

#include <stdint.h>

#define FPROTO_VERSION 1
#define FPROTO_MAX_FRAME (256u << 20)

enum fproto_type {
    FP_HELLO = 1,
    FP_TOPIC = 2,
    FP_DELTOPIC = 3,
    FP_APPEND = 4,
    FP_FLUSH = 5,
    FP_DELRECORDS = 6,
    FP_LEAD = 7,
    FP_UNLEAD = 8,
    FP_LEASE = 9,
    FP_READY = 64,
    FP_DURABLE = 65,
    FP_LOGSTART = 66,
    FP_STORE = 67,
    FP_STATS = 68,
    FP_LED = 69,
    FP_FENCED = 70,
};

/* Fixed part of an APPEND after the topic string. */
#define FP_APPEND_FIXED (4 + 4 + 8 + 8 + 8 + 4)

#endif
