#!/usr/bin/python3
"""Consumer groups with kafka-python and kcat -G ("What must be shown" 3):
a kafka-python group consumer reads a topic end to end and commits; a new
member of the group resumes exactly after the commits; two kafka-python
members split the partitions; kcat's balanced consumer (-G) reads a topic,
commits on exit, and a second run resumes from the commits."""
import threading
import time
import unittest

import harness
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

GROUP_KW = dict(session_timeout_ms=6000, heartbeat_interval_ms=1000, auto_offset_reset="earliest",
                request_timeout_ms=15000, fetch_max_wait_ms=100, max_poll_interval_ms=10000)


class GroupsKafkaPython(harness.BrokerTestCase):
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS": "300"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = KafkaAdminClient(bootstrap_servers=cls.broker.bootstrap, request_timeout_ms=15000)
        cls.admin.create_topics([NewTopic("kp-grp", 3, 1), NewTopic("kp-two", 4, 1), NewTopic("kp-kcat", 2, 1)],
                                timeout_ms=10000)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.admin.close()
        finally:
            super().tearDownClass()

    def produce(self, topic, nparts, n, start=0):
        p = KafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all", linger_ms=5)
        for i in range(start, start + n):
            p.send(topic, value=b"v-%d" % i, partition=i % nparts)
        p.flush(30)
        p.close()

    def consume(self, consumer, want, timeout=30):
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=200).items():
                got.extend((tp.partition, m.offset, m.value) for m in msgs)
        return got

    def committed(self, group):
        offs = self.admin.list_consumer_group_offsets(group)
        return {tp.partition: om.offset for tp, om in offs.items()}

    def test_group_consumer_commits_and_resumes(self):
        self.produce("kp-grp", 3, 300)
        c = KafkaConsumer("kp-grp", bootstrap_servers=self.broker.bootstrap, group_id="kp-g",
                          enable_auto_commit=False, **GROUP_KW)
        try:
            got = self.consume(c, 300)
            self.assertEqual(len(got), 300)
            self.assertEqual(sorted(v for _, _, v in got), sorted(b"v-%d" % i for i in range(300)))
            self.assertEqual(c.assignment(), {TopicPartition("kp-grp", q) for q in range(3)})
            c.commit()
            self.assertEqual({tp.partition: c.committed(tp) for tp in c.assignment()}, {0: 100, 1: 100, 2: 100})
        finally:
            c.close()
        self.assertEqual(self.committed("kp-g"), {0: 100, 1: 100, 2: 100})
        # A new member of the group starts after the commits.
        self.produce("kp-grp", 3, 30, start=300)
        c = KafkaConsumer("kp-grp", bootstrap_servers=self.broker.bootstrap, group_id="kp-g",
                          enable_auto_commit=True, auto_commit_interval_ms=500, **GROUP_KW)
        try:
            got = self.consume(c, 30)
            self.assertEqual(sorted(v for _, _, v in got), sorted(b"v-%d" % i for i in range(300, 330)))
            self.assertEqual(sorted(o for _, o, _ in got), sorted(list(range(100, 110)) * 3))
            extra = self.consume(c, 1, timeout=1.0)
            self.assertEqual(extra, [])
        finally:
            c.close()  # commits (auto commit on close)
        self.assertEqual(self.committed("kp-g"), {0: 110, 1: 110, 2: 110})

    def test_two_members_split_partitions(self):
        # One thread per member: kafka-python's poll() blocks while its
        # member rejoins, so members polled in turn by one thread would hold
        # each other's rebalance up.
        self.produce("kp-two", 4, 80)
        stop = threading.Event()
        got = [[], []]
        assigned = [set(), set()]
        errors = []

        def member(i):
            try:
                c = KafkaConsumer("kp-two", bootstrap_servers=self.broker.bootstrap, group_id="kp-two-g",
                                  enable_auto_commit=False, **GROUP_KW)
                try:
                    while not stop.is_set():
                        for tp, msgs in c.poll(timeout_ms=100).items():
                            got[i].extend((tp.partition, m.offset) for m in msgs)
                        assigned[i] = {tp.partition for tp in c.assignment()}
                        c.commit()
                finally:
                    c.close()
            except Exception as e:  # reported below
                errors.append(repr(e))

        ts = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(2)]
        for t in ts:
            t.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not errors:
                a = list(assigned)
                if len(got[0]) + len(got[1]) >= 80 and a[0] and a[1] and not (a[0] & a[1]) \
                        and a[0] | a[1] == set(range(4)):
                    break
                time.sleep(0.1)
        finally:
            stop.set()
            for t in ts:
                t.join(20)
        self.assertEqual(errors, [])
        a = assigned
        self.assertEqual(a[0] | a[1], set(range(4)), a)
        self.assertFalse(a[0] & a[1], a)
        self.assertTrue(a[0] and a[1], a)
        self.assertEqual({(q, o) for g in got for q, o in g}, {(q, o) for q in range(4) for o in range(20)})

    def test_kcat_balanced_consumer(self):
        r = harness.run_cmd(["kcat", "-b", self.broker.bootstrap, "-P", "-t", "kp-kcat", "-K", ":"],
                            input=b"".join(b"k%d:m%d\n" % (i, i) for i in range(50)), timeout=30)
        self.assertEqual(r.returncode, 0, r.describe())
        args = ["kcat", "-b", self.broker.bootstrap, "-G", "kcat-g", "kp-kcat", "-X", "auto.offset.reset=earliest", "-e", "-q",
                "-f", "%p %o %s\n", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]
        r = harness.run_cmd(args, timeout=60)
        self.assertEqual(r.returncode, 0, r.describe())
        msgs = sorted(l.split()[2] for l in r.stdout.decode().splitlines() if l.strip())
        self.assertEqual(msgs, sorted("m%d" % i for i in range(50)), r.describe())
        committed = self.committed("kcat-g")
        self.assertEqual(sum(committed.values()), 50, committed)
        # The second run resumes from the committed offsets: nothing new.
        r = harness.run_cmd(args, timeout=60)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(r.stdout.strip(), b"", r.describe())

    def test_zz_alive(self):
        self.assertBrokerAlive()
        self.assertNoSanitizerErrors()


if __name__ == "__main__":
    harness.main()
