#!/usr/bin/python3
"""kafka-python against the broker: admin create/delete/list topics and their
errors, producer, assign()-based consumer, beginning/end offsets and
offsets_for_times."""
import time
import unittest

import harness
import kafka.errors as Errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

T0 = 1_700_000_000_000


class KafkaPython(harness.BrokerTestCase):
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = KafkaAdminClient(bootstrap_servers=cls.broker.bootstrap, client_id="e2e-admin",
                                     request_timeout_ms=15000)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.admin.close()
        finally:
            super().tearDownClass()

    def producer(self, **kw):
        return KafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all", request_timeout_ms=15000,
                             max_block_ms=15000, **kw)

    def consumer(self):
        return KafkaConsumer(bootstrap_servers=self.broker.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=15000, fetch_max_wait_ms=100,
                             consumer_timeout_ms=1000)

    def create(self, name, partitions=3):
        self.admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)], timeout_ms=10000)

    def wait_listed(self, name, present, timeout=10):
        deadline = time.monotonic() + timeout
        topics = []
        while time.monotonic() < deadline:
            topics = self.admin.list_topics()
            if (name in topics) == present:
                return topics
            time.sleep(0.2)
        self.fail("topic %s %s in list_topics after %ds: %r" % (name, "not" if present else "still", timeout, topics))

    def test_create_list_delete(self):
        self.create("kp-admin", 3)
        self.wait_listed("kp-admin", True)
        c = self.consumer()
        try:
            self.assertEqual(c.partitions_for_topic("kp-admin"), {0, 1, 2})
        finally:
            c.close()
        with self.assertRaises(Errors.TopicAlreadyExistsError):
            self.create("kp-admin", 3)
        with self.assertRaises(Errors.TopicAlreadyExistsError):
            self.create("kp-admin", 5)
        self.admin.delete_topics(["kp-admin"], timeout_ms=10000)
        self.wait_listed("kp-admin", False)
        with self.assertRaises(Errors.UnknownTopicOrPartitionError):
            self.admin.delete_topics(["kp-admin"], timeout_ms=10000)
        # It can be created again after deletion.
        self.create("kp-admin", 1)
        self.wait_listed("kp-admin", True)
        c = self.consumer()
        try:
            self.assertEqual(c.partitions_for_topic("kp-admin"), {0})
        finally:
            c.close()

    def test_invalid_topic_names(self):
        for name in ["", ".", "..", "has space", "slash/name", "q?", "a" * 250, "ünï"]:
            with self.subTest(name=name):
                with self.assertRaises(Errors.InvalidTopicError, msg="name %r accepted" % name):
                    self.create(name, 1)
        topics = self.admin.list_topics()
        for name in ["", ".", "..", "has space", "slash/name"]:
            self.assertNotIn(name, topics)
        # The longest legal name (249 chars) and all legal characters work.
        ok = "a" * 240 + "._-Az09xx"
        self.create(ok, 1)
        self.wait_listed(ok, True)

    def test_invalid_partitions_and_replication(self):
        with self.assertRaises(Errors.InvalidPartitionsError):
            self.create("kp-zero-parts", 0)
        with self.assertRaises(Errors.InvalidReplicationFactorError):
            self.admin.create_topics([NewTopic("kp-rf3", num_partitions=1, replication_factor=3)], timeout_ms=10000)
        topics = self.admin.list_topics()
        self.assertNotIn("kp-zero-parts", topics)
        self.assertNotIn("kp-rf3", topics)
        # validate_only creates nothing.
        self.admin.create_topics([NewTopic("kp-validate", num_partitions=2, replication_factor=1)],
                                 timeout_ms=10000, validate_only=True)
        time.sleep(0.3)
        self.assertNotIn("kp-validate", self.admin.list_topics())

    def test_produce_consume_offsets(self):
        topic = "kp-data"
        self.create(topic, 3)
        self.wait_listed(topic, True)
        n = 300
        p = self.producer(linger_ms=5)
        futs = []
        for i in range(n):
            futs.append(p.send(topic, key=b"k%d" % i, value=b"value-%d-" % i + b"z" * (i % 50),
                               headers=[("idx", b"%d" % i), ("empty", b"")], partition=i % 3))
        p.flush(30)
        metas = [f.get(timeout=30) for f in futs]
        p.close(10)
        per_part = {0: [], 1: [], 2: []}
        for i, md in enumerate(metas):
            self.assertEqual(md.partition, i % 3)
            per_part[md.partition].append(md.offset)
        for q, offs in per_part.items():
            self.assertEqual(offs, list(range(n // 3)), "partition %d offsets" % q)

        c = self.consumer()
        try:
            tps = [TopicPartition(topic, q) for q in range(3)]
            c.assign(tps)
            c.seek_to_beginning()
            got = {q: [] for q in range(3)}
            deadline = time.monotonic() + 30
            for _ in range(200):
                if time.monotonic() > deadline or sum(map(len, got.values())) >= n:
                    break
                for tp, recs in c.poll(timeout_ms=500).items():
                    got[tp.partition].extend(recs)
            self.assertEqual(sum(map(len, got.values())), n)
            for q in range(3):
                recs = got[q]
                self.assertEqual([r.offset for r in recs], list(range(n // 3)), "partition %d" % q)
                for r in recs:
                    i = q + 3 * r.offset
                    self.assertEqual(r.key, b"k%d" % i)
                    self.assertEqual(r.value, b"value-%d-" % i + b"z" * (i % 50))
                    self.assertEqual(list(r.headers), [("idx", b"%d" % i), ("empty", b"")])
            self.assertEqual(c.end_offsets(tps), {tp: n // 3 for tp in tps})
            self.assertEqual(c.beginning_offsets(tps), {tp: 0 for tp in tps})
            # Reading again from a seek position.
            c.seek(tps[1], 95)
            recs = []
            for _ in range(20):
                recs += c.poll(timeout_ms=500).get(tps[1], [])
                if len(recs) >= 5:
                    break
            self.assertEqual([r.offset for r in recs[:5]], [95, 96, 97, 98, 99])
        finally:
            c.close()

    def check_times(self, c, tp):
        res = c.offsets_for_times({tp: T0 + 4500})
        self.assertIsNotNone(res[tp], "%s: no offset for T0+4500" % (tp,))
        self.assertEqual((res[tp].offset, res[tp].timestamp), (5, T0 + 5000),
                         "%s: offsets_for_times(T0+4500) must be the first record with ts >= target" % (tp,))
        res = c.offsets_for_times({tp: T0 + 3000})
        self.assertEqual((res[tp].offset, res[tp].timestamp), (3, T0 + 3000), "%s, exact ts" % (tp,))
        res = c.offsets_for_times({tp: T0 - 10})
        self.assertEqual((res[tp].offset, res[tp].timestamp), (0, T0), "%s, before all" % (tp,))
        res = c.offsets_for_times({tp: T0 + 9000})
        self.assertEqual(res[tp].offset, 9, "%s, last" % (tp,))
        res = c.offsets_for_times({tp: T0 + 9001})
        self.assertIsNone(res[tp], "%s: after all timestamps must give no offset" % (tp,))

    def test_offsets_for_times_batch_per_message(self):
        topic = "kp-times-1"
        self.create(topic, 3)
        self.wait_listed(topic, True)
        # Partition 0: one batch per message (wait for each).
        p = self.producer(linger_ms=0)
        for i in range(10):
            md = p.send(topic, value=b"t%d" % i, partition=0, timestamp_ms=T0 + 1000 * i).get(timeout=30)
            self.assertEqual(md.offset, i)
        p.close(10)
        c = self.consumer()
        try:
            self.check_times(c, TopicPartition(topic, 0))
            tp2 = TopicPartition(topic, 2)
            self.assertIsNone(c.offsets_for_times({tp2: T0})[tp2], "empty partition")
            tps = [TopicPartition(topic, q) for q in range(3)]
            self.assertEqual(c.end_offsets(tps), {tps[0]: 10, tps[1]: 0, tps[2]: 0})
            self.assertEqual(c.beginning_offsets(tps), {tp: 0 for tp in tps})
        finally:
            c.close()

    def test_offsets_for_times_within_one_batch(self):
        topic = "kp-times-2"
        self.create(topic, 3)
        self.wait_listed(topic, True)
        # Partition 1: all ten records in one batch.
        p = self.producer(linger_ms=2000, batch_size=1 << 20)
        futs = [p.send(topic, value=b"t%d" % i, partition=1, timestamp_ms=T0 + 1000 * i) for i in range(10)]
        p.flush(30)
        offs = [f.get(timeout=30).offset for f in futs]
        p.close(10)
        self.assertEqual(offs, list(range(10)))
        c = self.consumer()
        try:
            tp = TopicPartition(topic, 1)
            # The records carry the timestamps we gave.
            c.assign([tp])
            c.seek(tp, 0)
            recs = []
            for _ in range(20):
                recs += c.poll(timeout_ms=500).get(tp, [])
                if len(recs) >= 10:
                    break
            self.assertEqual([r.timestamp for r in recs], [T0 + 1000 * i for i in range(10)])
            self.assertEqual([r.value for r in recs], [b"t%d" % i for i in range(10)])
            self.assertEqual(c.end_offsets([tp]), {tp: 10})
            self.check_times(c, tp)
        finally:
            c.close()

    def test_zz_alive(self):
        self.assertBrokerAlive()
        self.assertNoSanitizerErrors()


if __name__ == "__main__":
    harness.main()
