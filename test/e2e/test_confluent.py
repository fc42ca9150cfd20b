#!/usr/bin/python3
"""confluent-kafka (librdkafka) producer with every compression codec, and an
assign()-based consumer reading everything back byte-exact; the stored
segments hold every codec's batches compressed with that codec (librdkafka
only compresses with a codec it believes the broker supports: lz4 needs
FindCoordinator in ApiVersions)."""
import glob
import os
import random
import time
import unittest

import harness
import kfs_reader
from confluent_kafka import Consumer, KafkaError, KafkaException, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}  # batch attributes & 7
N = 3000
PARTS = 3


def gen_messages(codec):
    rnd = random.Random("confluent-" + codec)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"\x00\x01\xff", b"kafscale", b"\xe2\x82\xac"]
    msgs = []
    for i in range(N):
        # Compressible but varied; some binary, some empty, one big.
        n = rnd.choice([0, 1, 5, 20, 100, 400]) if i % 500 else 20000
        value = b" ".join(rnd.choice(words) for _ in range(n)) + (b"#%d" % i)
        key = None if i % 10 == 7 else (b"key-%d" % (i % 37))
        if i % 4 == 0:
            headers = []
        else:
            headers = [("h", b"%d" % i), ("bin", bytes([i % 256, 0, 255])), ("dup", b"a"), ("dup", b"b")]
            # (No None header values: confluent-kafka 1.7.0 drops a reference
            # to None for each one it returns, crashing the interpreter.)
        msgs.append((key, value, headers))
    return msgs


class Confluent(harness.BrokerTestCase):
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        admin = AdminClient({"bootstrap.servers": cls.broker.bootstrap})
        fs = admin.create_topics([NewTopic("cf-%s" % c, num_partitions=PARTS, replication_factor=1) for c in CODECS],
                                 operation_timeout=10, request_timeout=15)
        cls.create_errors = {}
        for t, f in fs.items():
            try:
                f.result(timeout=20)
            except Exception as e:  # checked in the test
                cls.create_errors[t] = repr(e)

    def test_topics_created(self):
        self.assertEqual(self.create_errors, {})
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        md = admin.list_topics(timeout=10)
        for c in CODECS:
            t = md.topics.get("cf-%s" % c)
            self.assertIsNotNone(t, "topic cf-%s missing from metadata: %r" % (c, list(md.topics)))
            self.assertIsNone(t.error)
            self.assertEqual(sorted(t.partitions), list(range(PARTS)))
            for p in t.partitions.values():
                self.assertEqual(p.leader, 1)
        self.assertEqual(list(md.brokers), [1])

    def roundtrip(self, codec):
        self.assertEqual(self.create_errors, {}, "topic creation failed")
        topic = "cf-%s" % codec
        msgs = gen_messages(codec)
        delivered = {}   # index -> (partition, offset)
        errors = []

        def on_delivery(i):
            def cb(err, m):
                if err is not None:
                    errors.append((i, err))
                else:
                    delivered[i] = (m.partition(), m.offset())
            return cb

        p = Producer({"bootstrap.servers": self.broker.bootstrap, "compression.type": codec,
                      "linger.ms": 10, "batch.num.messages": 500, "enable.idempotence": False,
                      "message.timeout.ms": 30000, "acks": "all"})
        for i, (k, v, h) in enumerate(msgs):
            for _ in range(100):
                try:
                    # Spread over partitions deterministically, including null keys.
                    p.produce(topic, value=v, key=k, headers=h, partition=i % PARTS, on_delivery=on_delivery(i))
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        left = p.flush(60)
        self.assertEqual(left, 0, "%d messages not delivered after flush" % left)
        self.assertEqual(errors[:5], [], "delivery errors (%d)" % len(errors))
        self.assertEqual(len(delivered), N)

        # Delivery offsets: 0..n-1 per partition, in produce order.
        by_part = {q: [] for q in range(PARTS)}
        for i in range(N):
            part, off = delivered[i]
            self.assertEqual(part, i % PARTS)
            by_part[part].append((off, i))
        expect = {}  # (partition, offset) -> index
        for part, lst in by_part.items():
            offs = [o for o, _ in lst]
            self.assertEqual(offs, list(range(len(lst))), "partition %d delivery offsets not 0..n-1" % part)
            for o, i in lst:
                expect[(part, o)] = i

        c = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "e2e-unused-" + codec,
                      "enable.auto.commit": False, "enable.auto.offset.store": False,
                      "auto.offset.reset": "earliest", "enable.partition.eof": True,
                      "fetch.wait.max.ms": 100})
        try:
            c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in range(PARTS)])
            got = {q: [] for q in range(PARTS)}
            eof = set()
            deadline = time.monotonic() + 60
            polls = 0
            while time.monotonic() < deadline and polls < 100000 and (sum(map(len, got.values())) < N or len(eof) < PARTS):
                polls += 1
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    self.fail("consumer error: %s" % m.error())
                got[m.partition()].append(m)
                eof.discard(m.partition())
        finally:
            c.close()

        total = sum(map(len, got.values()))
        self.assertEqual(total, N, "consumed %d of %d" % (total, N))
        for part, lst in got.items():
            offs = [m.offset() for m in lst]
            self.assertEqual(offs, list(range(len(by_part[part]))), "partition %d: offsets not 0..n-1 without gaps" % part)
            for m in lst:
                i = expect[(part, m.offset())]
                k, v, h = msgs[i]
                self.assertEqual(m.topic(), topic)
                self.assertEqual(m.key(), k, "key of message %d (p%d@%d)" % (i, part, m.offset()))
                self.assertEqual(m.value(), v, "value of message %d (p%d@%d)" % (i, part, m.offset()))
                self.assertEqual(m.headers() or [], h, "headers of message %d" % i)
                ts_type, ts = m.timestamp()
                self.assertGreater(ts, 1_600_000_000_000, "timestamp of message %d" % i)

        # The stored segments (acks=all: committed before the acks came)
        # hold the batches as produced: compressed with this codec.
        codecs = {}
        nrec = 0
        for q in range(PARTS):
            pattern = os.path.join(self.broker.data_dir, "objects", "default", topic, str(q), "*.kfs")
            for path in sorted(glob.glob(pattern)):
                with open(path, "rb") as f:
                    seg = kfs_reader.parse_segment(f.read())
                for b in seg["batches"]:
                    codecs[b["attributes"] & 7] = codecs.get(b["attributes"] & 7, 0) + 1
                    nrec += b["record_count"]
        self.assertEqual(nrec, N, "records in the stored segments of %s" % topic)
        self.assertEqual(list(codecs), [CODEC_IDS[codec]], "batch codecs stored for %s: %r" % (codec, codecs))

    def test_none(self):
        self.roundtrip("none")

    def test_gzip(self):
        self.roundtrip("gzip")

    def test_snappy(self):
        self.roundtrip("snappy")

    def test_lz4(self):
        self.roundtrip("lz4")

    def test_zstd(self):
        self.roundtrip("zstd")

    def test_zz_alive(self):
        self.assertBrokerAlive()
        self.assertNoSanitizerErrors()


if __name__ == "__main__":
    harness.main()
