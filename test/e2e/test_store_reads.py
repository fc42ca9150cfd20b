#!/usr/bin/python3
"""Reads of data that is no longer in the broker's memory: from committed
segments in the object store (broker/store_read.c).

- After a restart the broker's memory is empty: a confluent-kafka consumer
  reads 50,000 x 1 KiB messages (acks=all) back from offset 0, byte-exact and
  with offsets 0..N-1, with fetch.wait.max.ms=0 (a consumer that never long
  polls must still get the old data), seeks into the middle of segments
  (index-guided loads), and finds offsets by timestamp record-exact.
- With a tiny KAFSCALE_TAIL_BYTES and read cache, reads come from the store
  while the broker runs, with several consumers at once (coalesced loads, LRU
  eviction).
- Through the S3 backend (s3rver), a consumer of old data rides out a store
  outage (retriable KAFKA_STORAGE_ERROR meanwhile) and then reads it all.
Each test checks the broker's own counters (the `store read:` line it logs at
exit) to prove the data really came from the store.
"""
import os
import re
import threading
import time
import unittest

import harness
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

N = 50000
SIZE = 1024
T0 = int(time.time() * 1000) - 3600 * 1000  # message i gets timestamp T0 + 10*i (recent: retention keeps it)


_PATTERN = bytes(range(256)) * (SIZE // 256 + 2)


def value(i):
    """Message i: its number, then bytes that differ from its neighbours'."""
    head = b"msg-%08d-" % i
    k = (i * 7) & 0xFF
    return head + _PATTERN[k:k + SIZE - len(head)]


def store_stats(broker):
    """The counters of the broker's last `store read:` exit line."""
    m = None
    for m in re.finditer(r"store read: (\d+) hits, (\d+) misses, (\d+) loads \((\d+) bytes\), (\d+) index loads, "
                         r"(\d+) errors, (\d+) evictions", broker.log_text()):
        pass
    if not m:
        return None
    keys = ("hits", "misses", "loads", "bytes", "index_loads", "errors", "evictions")
    return dict(zip(keys, map(int, m.groups())))


def create_topic(bootstrap, name, parts=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1)],
                                 operation_timeout=10, request_timeout=15).values():
        f.result(timeout=20)


def produce(bootstrap, topic, n, partition=0, timestamps=True):
    errors = []

    def cb(err, m):
        if err is not None:
            errors.append(err)

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "batch.num.messages": 200,
                  "enable.idempotence": False, "message.timeout.ms": 60000,
                  "queue.buffering.max.kbytes": 65536})
    for i in range(n):
        kw = {"timestamp": T0 + 10 * i} if timestamps else {}
        while True:
            try:
                p.produce(topic, value=value(i), key=b"k%d" % i, partition=partition, on_delivery=cb, **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(120)
    if left or errors:
        raise AssertionError("%d messages not delivered, delivery errors: %r" % (left, errors[:3]))


def consume(tc, bootstrap, topic, start, count, partition=0, wait_ms=0, timeout=90):
    """Reads `count` messages from `start`; checks offsets and bytes."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "store-reads", "enable.auto.commit": False,
                  "enable.auto.offset.store": False, "fetch.wait.max.ms": wait_ms,
                  "enable.partition.eof": False})
    got = []
    try:
        c.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            for m in c.consume(min(1000, count - len(got)), 0.5):
                if m.error():
                    tc.fail("consumer error at %d messages: %s" % (len(got), m.error()))
                got.append((m.offset(), m.value(), m.timestamp()[1]))
    finally:
        c.close()
    tc.assertEqual(len(got), count, "consumed %d of %d from offset %d" % (len(got), count, start))
    for k, (off, val, ts) in enumerate(got):
        i = start + k
        if off != i:
            tc.fail("message %d from offset %d: offset %d, expected %d" % (k, start, off, i))
        if val != value(i):
            tc.fail("offset %d: value differs (%r...)" % (off, val[:20]))
    return got


class StoreReadsAfterRestart(unittest.TestCase):
    """Everything is read from the store: the broker restarted, memory is empty."""

    @classmethod
    def setUpClass(cls):
        cls.broker = harness.start_broker(env={"KAFSCALE_AUTO_CREATE_TOPICS": "false"}, name="store-restart")
        create_topic(cls.broker.bootstrap, "old")
        produce(cls.broker.bootstrap, "old", N)
        status = cls.broker.stop()
        if status != 0:
            raise AssertionError("broker exit status %r on SIGTERM" % status)
        cls.broker.exit_status = None
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        status = cls.broker.stop()
        errs = cls.broker.sanitizer_errors()
        if status not in (0, -15) or errs:
            raise AssertionError("exit %r, %s\n%s" % (status, errs, cls.broker.log_tail()))
        st = store_stats(cls.broker)
        # The whole log came from the store at least once, without errors.
        if not (st and st["errors"] == 0 and st["bytes"] >= N * SIZE):
            raise AssertionError("store read counters: %r" % st)

    # Test names sort: the full read runs first (class order is alphabetical).
    def test_a_reads_everything_byte_exact_with_max_wait_0(self):
        t = time.monotonic()
        consume(self, self.broker.bootstrap, "old", 0, N, wait_ms=0)
        harness.log("read %d messages from the store in %.1fs" % (N, time.monotonic() - t))

    def test_b_seeks_into_the_middle_of_segments(self):
        for start in (N // 2 + 17, 12345, N - 3, 1):
            consume(self, self.broker.bootstrap, "old", start, min(500, N - start), wait_ms=100)

    def test_c_list_offsets(self):
        c = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "store-reads-lo"})
        try:
            lo, hi = c.get_watermark_offsets(TopicPartition("old", 0), timeout=10)
            self.assertEqual((lo, hi), (0, N))
            # Record-exact timestamp lookups in store data (several records per batch).
            for i in (0, 1, 777, 12345, N - 1):
                for delta, want in ((0, i), (-5, i), (1, i + 1)):
                    ts = T0 + 10 * i + delta
                    r = c.offsets_for_times([TopicPartition("old", 0, ts)], timeout=15)[0]
                    self.assertIsNone(r.error)
                    self.assertEqual(r.offset, want if want < N else -1, "offsets_for_times(%d)" % ts)
            r = c.offsets_for_times([TopicPartition("old", 0, T0 + 10 * N + 1)], timeout=15)[0]
            self.assertEqual(r.offset, -1)
        finally:
            c.close()


class StoreReadsWhileRunning(harness.BrokerTestCase):
    """A tiny in-memory tail and read cache: older data comes from the store
    while the broker runs, for several consumers at once."""
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_TAIL_BYTES": "1m",
                  "KAFSCALE_READ_CACHE_BYTES": "3m", "KAFSCALE_SEGMENT_BYTES": "1m",
                  "KAFSCALE_READ_CHUNK_BYTES": "256k"}
    M = 20000

    def test_concurrent_consumers_read_from_the_store(self):
        create_topic(self.broker.bootstrap, "tail")
        produce(self.broker.bootstrap, "tail", self.M)
        results = {}

        def run(name, start, count, wait):
            try:
                consume(self, self.broker.bootstrap, "tail", start, count, wait_ms=wait)
                results[name] = "ok"
            except BaseException as e:  # reported below
                results[name] = repr(e)[:500]

        ths = [threading.Thread(target=run, args=("full-0", 0, self.M, 0)),
               threading.Thread(target=run, args=("full-1", 0, self.M, 500)),
               threading.Thread(target=run, args=("mid", 7777, 5000, 100))]
        for t in ths:
            t.start()
        for t in ths:
            t.join(120)
        self.assertEqual(results, {"full-0": "ok", "full-1": "ok", "mid": "ok"})
        self.assertBrokerAlive()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        st = store_stats(cls.broker)
        # 20 MB through a 3 MB cache: loads, evictions, no errors.
        if not (st and st["errors"] == 0 and st["loads"] > 0 and st["evictions"] > 0):
            raise AssertionError("store read counters: %r" % st)


class StoreReadsOverS3WithOutage(unittest.TestCase):
    """The same through the S3 backend (s3rver), with the store down while a
    consumer reads old data: the partition answers the retriable
    KAFKA_STORAGE_ERROR meanwhile (the client retries on its own), nothing
    crashes, and once the store is back the read completes byte-exact."""
    M = 10000

    @classmethod
    def setUpClass(cls):
        import s3rver_harness
        ok, why = s3rver_harness.available()
        if not ok:
            raise unittest.SkipTest(why)
        cls.s3 = s3rver_harness.S3rver(buckets=["reads"], name="s3rver-store-reads").start()
        cls.broker = harness.start_broker(
            env=cls.s3.env("reads", KAFSCALE_AUTO_CREATE_TOPICS="false", KAFSCALE_TAIL_BYTES="1m",
                           KAFSCALE_S3_MAX_RETRIES="1", KAFSCALE_S3_TIMEOUT_MS="2000"),
            name="store-reads-s3")

    @classmethod
    def tearDownClass(cls):
        status = cls.broker.stop()
        cls.s3.stop()
        errs = cls.broker.sanitizer_errors()
        if status not in (0, -15) or errs:
            raise AssertionError("exit %r, %s\n%s" % (status, errs, cls.broker.log_tail()))
        st = store_stats(cls.broker)
        if not (st and st["loads"] > 0 and st["errors"] > 0):
            raise AssertionError("store read counters: %r (expected loads and, during the outage, errors)" % st)

    def test_reads_survive_a_store_outage(self):
        create_topic(self.broker.bootstrap, "s3old")
        produce(self.broker.bootstrap, "s3old", self.M)
        self.s3.stop()
        result = {}

        def run():
            try:
                consume(self, self.broker.bootstrap, "s3old", 0, self.M, wait_ms=100, timeout=90)
                result["r"] = "ok"
            except BaseException as e:  # reported below
                result["r"] = repr(e)[:800]

        th = threading.Thread(target=run)
        th.start()
        time.sleep(4)  # the consumer meets the outage
        self.assertTrue(th.is_alive(), "consumer finished while the store was down: %r" % result)
        self.assertTrue(self.broker.alive())
        self.s3.start()
        th.join(120)
        self.assertEqual(result.get("r"), "ok")


if __name__ == "__main__":
    harness.main()
