#!/usr/bin/python3
"""The flusher uploads a cycle on a worker thread while its loop keeps
handling the broker. These tests change a topic while one of its uploads is
in flight, against s3rver behind bench/s3_delay_proxy.py (every PUT held
~800 ms, so "in flight" is a wide window; the proxy counts a PUT when it
arrives, before the delay, which is how a test knows the upload started):
  - DeleteTopics mid-upload, then the same name created again: the old
    upload lands, is not committed, and its objects are removed; the new
    topic holds exactly its own messages, from the store and after a node
    restart;
  - CreatePartitions mid-upload (the topic's partition table moves while
    the worker points into it): every acknowledged message is read back
    exactly once, in order, from the store;
  - the node (broker and flusher, same PIDs) stays up throughout.
Reads come from the store (KAFSCALE_TAIL_BYTES=0).
"""
import time
import unittest

import harness
import durability_util as du
import s3rver_harness

BUCKET = "kafscale-midupload"
PUT_MS = 800


def produce(bootstrap, topic, values, acks, partition=None):
    """Produces values (bytes) in order, to partition (an index, a function
    of the value's position, or None: the client's partitioner); returns
    {partition: [(offset, value)]} acknowledged."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5, "enable.idempotence": False,
                  "max.in.flight.requests.per.connection": 1, "retries": 0, "message.timeout.ms": 30000})
    acked, errors = {}, []

    def dr(err, m):
        if err is not None:
            errors.append(str(err))
        else:
            acked.setdefault(m.partition(), []).append((m.offset(), m.value()))
    for i, v in enumerate(values):
        if partition is None:
            p.produce(topic, value=v, on_delivery=dr)
        else:
            p.produce(topic, value=v, partition=partition(i) if callable(partition) else partition, on_delivery=dr)
        p.poll(0)
    left = p.flush(60)
    if left or errors:
        raise AssertionError("produce to %s: %d not delivered, errors %r" % (topic, left, errors[:5]))
    return acked


def wait_put_in_flight(proxy, before, timeout=5.0):
    """True once the proxy has seen a PUT after `before`: it is then held
    ~PUT_MS, and a request sent now reaches the flusher mid-upload."""
    return du.wait_for(lambda: proxy.puts() > before, timeout, interval=0.01)


class FlusherMidUpload(unittest.TestCase):
    s3 = proxy = broker = None

    @classmethod
    def setUpClass(cls):
        ok, why = s3rver_harness.available()
        if not ok:
            raise RuntimeError(why)
        cls.s3 = s3rver_harness.S3rver(buckets=[BUCKET], name="s3rver-midupload").start()
        cls.proxy = s3rver_harness.DelayProxy(cls.s3.port, PUT_MS, PUT_MS + 100).start()
        env = cls.s3.env(BUCKET, KAFSCALE_S3_ENDPOINT=cls.proxy.endpoint,
                         KAFSCALE_TAIL_BYTES=0, KAFSCALE_FLUSH_INTERVAL_MS=20, KAFSCALE_AUTO_CREATE_TOPICS="false")
        cls.broker = du.start_broker(env=env, name="midupload")
        cls.flusher_pid = cls.broker.wait_flusher()

    @classmethod
    def tearDownClass(cls):
        for x in (cls.broker, cls.proxy, cls.s3):
            if x is not None:
                x.stop()

    def node_intact(self):
        self.assertTrue(self.broker.alive(), "broker died; log tail:\n%s" % self.broker.log_tail())
        self.assertEqual(self.broker.flusher_pids(), [self.flusher_pid],
                         "the flusher was restarted or is gone; log tail:\n%s" % self.broker.log_tail())

    def read_back(self, topic, nparts):
        got = du.consume_all(self.broker.bootstrap, topic, nparts, timeout=60)
        self.assertTrue(got["complete"], "read-back of %s incomplete: %r" % (topic, got["errors"][:5]))
        return got["records"]

    def test_delete_topic_mid_upload_then_recreate(self):
        b, topic = self.broker.bootstrap, "mid-del"
        self.assertEqual(du.create_topics(b, [(topic, 1, {})]), {})
        before = self.proxy.puts()
        produce(b, topic, [b"old-%d" % i for i in range(3000)], acks=1)
        self.assertTrue(wait_put_in_flight(self.proxy, before), "no upload started within 5 s")
        t0 = time.monotonic()
        self.assertEqual(du.delete_topics(b, [topic]), {})
        harness.log("DeleteTopics answered %.0f ms after the upload started (PUTs are held %d ms)" %
                    ((time.monotonic() - t0) * 1000, PUT_MS))
        self.assertTrue(du.wait_for(lambda: du.create_topics(b, [(topic, 1, {})]) == {}, 20),
                        "the topic could not be created again")
        new = [b"new-%d" % i for i in range(500)]
        acked = produce(b, topic, new, acks="all")
        self.assertEqual([v for _, v in acked[0]], new)
        self.assertEqual([o for o, _ in acked[0]], list(range(len(new))), "the new topic's offsets")
        time.sleep(2 * PUT_MS / 1000.0)  # anything of the old topic still in flight has landed
        self.node_intact()
        recs = self.read_back(topic, 1)
        self.assertEqual(recs[0], list(enumerate(new)), "the re-created topic holds something else")
        # The store and the metadata agree after a restart too.
        self.broker.stop()
        self.broker.restart_same_port()
        type(self).flusher_pid = self.broker.wait_flusher()
        recs = self.read_back(topic, 1)
        self.assertEqual(recs[0], list(enumerate(new)), "after a restart the topic holds something else")

    def test_create_partitions_mid_upload(self):
        b, topic = self.broker.bootstrap, "mid-grow"
        self.assertEqual(du.create_topics(b, [(topic, 1, {})]), {})
        from confluent_kafka.admin import AdminClient, NewPartitions
        before = self.proxy.puts()
        first = [b"a-%d" % i for i in range(2000)]
        acked = produce(b, topic, first, acks=1, partition=0)
        self.assertTrue(wait_put_in_flight(self.proxy, before), "no upload started within 5 s")
        t0 = time.monotonic()
        admin = AdminClient({"bootstrap.servers": b})
        for f in admin.create_partitions([NewPartitions(topic, 6)], request_timeout=15).values():
            f.result(timeout=20)
        harness.log("CreatePartitions answered %.0f ms after the upload started (PUTs are held %d ms)" %
                    ((time.monotonic() - t0) * 1000, PUT_MS))
        second = [b"b-%d" % i for i in range(3000)]
        for q, recs in produce(b, topic, second, acks="all", partition=lambda i: i % 6).items():
            acked.setdefault(q, []).extend(recs)
        self.assertEqual(sorted(acked), list(range(6)), "not every partition took writes")
        self.node_intact()
        got = self.read_back(topic, 6)
        for q in range(6):
            self.assertEqual(got[q], sorted(acked.get(q, [])), "partition %d read back differs" % q)
        self.assertEqual(sum(len(v) for v in got.values()), len(first) + len(second))


if __name__ == "__main__":
    harness.main()
