#!/usr/bin/python3
"""Consumer groups through admin APIs, raw protocol versions and a restart
("What must be shown" 4 and 5).

- kafka-python's KafkaAdminClient: describe_consumer_groups (a Stable group
  with its member's subscription and assignment decoded by the client),
  list_consumer_groups (consumer groups and offsets-only groups),
  list_consumer_group_offsets, delete_consumer_groups (NON_EMPTY_GROUP for a
  live group, success for an empty one, which is then gone).
- Raw sockets: the whole membership cycle at the oldest versions (JoinGroup
  v0 ... OffsetFetch v1, LeaveGroup v0) and at the newest flexible ones
  (JoinGroup v9 with MEMBER_ID_REQUIRED, SyncGroup v5, Heartbeat v4,
  OffsetCommit v8, OffsetFetch v8 with two groups, LeaveGroup v5,
  DescribeGroups v5, ListGroups v4 with a state filter, DeleteGroups v2,
  OffsetDelete v0, FindCoordinator v4 with a batch of keys).
- Committed offsets and group metadata survive a kill -9 of the node and a
  restart (OffsetFetch after the restart returns them; the group comes back).
"""
import struct
import time
import unittest

import durability_util as du
import harness
import kproto as kp
from confluent_kafka import Consumer
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

# ---- flexible (compact) encoders and a reader for them ----


def uv(v):
    return kp.uvarint(v)


def cstr(s):
    if s is None:
        return uv(0)
    b = s.encode() if isinstance(s, str) else s
    return uv(len(b) + 1) + b


def carr(items):
    return uv(0) if items is None else uv(len(items) + 1) + b"".join(items)


TAGS = uv(0)


class R(kp.Reader):
    def uv(self):
        shift = v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    def cstr(self):
        n = self.uv()
        return None if n == 0 else self.take(n - 1).decode("utf-8", "replace")

    def cbytes(self):
        n = self.uv()
        return None if n == 0 else self.take(n - 1)

    def carr(self, item):
        n = self.uv()
        return None if n == 0 else [item(self) for _ in range(n - 1)]

    def tags(self):
        for _ in range(self.uv()):
            self.uv()
            self.take(self.uv())

    def arr(self, item):
        n = self.i32()
        return None if n < 0 else [item(self) for _ in range(n)]

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self.take(n)


API_OFFSET_COMMIT, API_OFFSET_FETCH, API_FIND_COORDINATOR, API_JOIN_GROUP = 8, 9, 10, 11
API_HEARTBEAT, API_LEAVE_GROUP, API_SYNC_GROUP, API_DESCRIBE_GROUPS = 12, 13, 14, 15
API_LIST_GROUPS, API_DELETE_GROUPS, API_OFFSET_DELETE = 16, 42, 47
MEMBER_ID_REQUIRED, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, NON_EMPTY_GROUP = 79, 25, 22, 68
GROUP_ID_NOT_FOUND, COORDINATOR_NOT_AVAILABLE, REBALANCE_IN_PROGRESS = 69, 15, 27


class GroupsAdmin(harness.BrokerTestCase):
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"}

    @classmethod
    def setUpClass(cls):
        cls.broker = du.start_broker(env=cls.BROKER_ENV, name=cls.__name__)
        cls.admin = KafkaAdminClient(bootstrap_servers=cls.broker.bootstrap, request_timeout_ms=15000)
        cls.admin.create_topics([NewTopic("ad-t", 3, 1)], timeout_ms=10000)
        p = KafkaProducer(bootstrap_servers=cls.broker.bootstrap, acks="all")
        for i in range(30):
            p.send("ad-t", value=b"x%d" % i, partition=i % 3)
        p.flush(30)
        p.close()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.admin.close()
        finally:
            super().tearDownClass()

    def conn(self):
        return kp.Conn(self.broker.host, self.broker.port, timeout=15)

    # ---- admin client ----

    def test_1_admin_describe_list_offsets_delete(self):
        c = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "ad-live", "client.id": "ad-client",
                      "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "log_level": 3})
        try:
            c.subscribe(["ad-t"])
            n = 0
            deadline = time.monotonic() + 20
            while n < 30 and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is not None and not m.error():
                    n += 1
            self.assertEqual(n, 30)
            c.commit(asynchronous=False)
            # An offsets-only group (assign() mode commit through the admin-ish path).
            self.admin_commit_solo()

            (d,) = self.admin.describe_consumer_groups(["ad-live"])
            self.assertEqual(d.error_code, 0)
            self.assertEqual(d.group, "ad-live")
            self.assertEqual(d.state, "Stable")
            self.assertEqual(d.protocol_type, "consumer")
            self.assertEqual(d.protocol, "range")
            self.assertEqual(len(d.members), 1)
            mem = d.members[0]
            self.assertEqual(mem.client_id, "ad-client")
            self.assertEqual(mem.client_host[:1], "/")
            self.assertEqual(list(mem.member_metadata.subscription), ["ad-t"])
            self.assertEqual(sorted(p for t, ps in mem.member_assignment.assignment for p in ps), [0, 1, 2])

            (dead,) = self.admin.describe_consumer_groups(["ad-nobody"])
            self.assertEqual(dead.state, "Dead")
            self.assertEqual(dead.members, [])

            listed = dict(self.admin.list_consumer_groups())
            self.assertEqual(listed.get("ad-live"), "consumer")
            self.assertEqual(listed.get("ad-solo"), "")

            offs = self.admin.list_consumer_group_offsets("ad-live")
            self.assertEqual({tp.partition: om.offset for tp, om in offs.items()}, {0: 10, 1: 10, 2: 10})
            part = self.admin.list_consumer_group_offsets("ad-live", partitions=[TopicPartition("ad-t", 1)])
            self.assertEqual({tp.partition: om.offset for tp, om in part.items()}, {1: 10})
            none = self.admin.list_consumer_group_offsets("ad-nobody", partitions=[TopicPartition("ad-t", 0)])
            self.assertEqual(none[TopicPartition("ad-t", 0)].offset, -1)

            res = dict(self.admin.delete_consumer_groups(["ad-live", "ad-solo"]))
            self.assertEqual(res["ad-live"].errno, NON_EMPTY_GROUP)
            self.assertEqual(res["ad-solo"].errno, 0)
            listed = dict(self.admin.list_consumer_groups())
            self.assertNotIn("ad-solo", listed)
            self.assertEqual(self.admin.list_consumer_group_offsets("ad-solo"), {})
        finally:
            c.close()
        # Now empty: it can go.
        res = dict(self.admin.delete_consumer_groups(["ad-live"]))
        self.assertEqual(res["ad-live"].errno, 0)
        res = dict(self.admin.delete_consumer_groups(["ad-live"]))
        self.assertEqual(res["ad-live"].errno, GROUP_ID_NOT_FOUND)

    def admin_commit_solo(self):
        with self.conn() as s:
            body = kp.string("ad-solo") + kp.i32(-1) + kp.string("") + kp.i64(-1) + kp.array([
                kp.string("ad-t") + kp.array([kp.i32(0) + kp.i64(7) + kp.string("solo-md")])])
            r = R(s.call(API_OFFSET_COMMIT, 2, 1, body))
            topics = r.arr(lambda r: (r.string(), r.arr(lambda r: (r.i32(), r.i16()))))
            self.assertEqual(topics, [("ad-t", [(0, 0)])])

    # ---- raw protocol, oldest versions ----

    def test_2_oldest_versions_membership_cycle(self):
        with self.conn() as s:
            join = kp.string("ad-v0") + kp.i32(6000) + kp.string("") + kp.string("consumer") + kp.array(
                [kp.string("range") + kp.kbytes(b"meta-v0")])
            r = R(s.call(API_JOIN_GROUP, 0, 1, join))
            err, gen, proto, leader, member = r.i16(), r.i32(), r.string(), r.string(), r.string()
            members = r.arr(lambda r: (r.string(), r.bytes_()))
            self.assertEqual((err, gen, proto), (0, 1, "range"))
            self.assertEqual(leader, member)
            self.assertEqual(members, [(member, b"meta-v0")])
            r = R(s.call(API_SYNC_GROUP, 0, 2, kp.string("ad-v0") + kp.i32(gen) + kp.string(member) +
                         kp.array([kp.string(member) + kp.kbytes(b"\x00\x00assign-v0")])))
            self.assertEqual((r.i16(), r.bytes_()), (0, b"\x00\x00assign-v0"))
            r = R(s.call(API_HEARTBEAT, 0, 3, kp.string("ad-v0") + kp.i32(gen) + kp.string(member)))
            self.assertEqual(r.i16(), 0)
            r = R(s.call(API_HEARTBEAT, 0, 4, kp.string("ad-v0") + kp.i32(gen + 1) + kp.string(member)))
            self.assertEqual(r.i16(), ILLEGAL_GENERATION)
            # OffsetCommit v0 (no generation: accepted only for an empty group) and v1.
            r = R(s.call(API_OFFSET_COMMIT, 0, 5, kp.string("ad-v0") + kp.array([
                kp.string("ad-t") + kp.array([kp.i32(0) + kp.i64(3) + kp.string("m")])])))
            self.assertEqual(r.arr(lambda r: (r.string(), r.arr(lambda r: (r.i32(), r.i16())))),
                             [("ad-t", [(0, UNKNOWN_MEMBER_ID)])])
            r = R(s.call(API_OFFSET_COMMIT, 1, 6, kp.string("ad-v0") + kp.i32(gen) + kp.string(member) + kp.array([
                kp.string("ad-t") + kp.array([kp.i32(0) + kp.i64(3) + kp.i64(-1) + kp.string("m1"),
                                              kp.i32(9) + kp.i64(3) + kp.i64(-1) + kp.string("")])])))
            self.assertEqual(r.arr(lambda r: (r.string(), r.arr(lambda r: (r.i32(), r.i16())))),
                             [("ad-t", [(0, 0), (9, 3)])])  # partition 9: UNKNOWN_TOPIC_OR_PARTITION
            r = R(s.call(API_OFFSET_FETCH, 1, 7, kp.string("ad-v0") + kp.array([
                kp.string("ad-t") + kp.array([kp.i32(0), kp.i32(1)])])))
            got = r.arr(lambda r: (r.string(), r.arr(lambda r: (r.i32(), r.i64(), r.string(), r.i16()))))
            self.assertEqual(got, [("ad-t", [(0, 3, "m1", 0), (1, -1, "", 0)])])
            r = R(s.call(API_LEAVE_GROUP, 0, 8, kp.string("ad-v0") + kp.string(member)))
            self.assertEqual(r.i16(), 0)
            r = R(s.call(API_LEAVE_GROUP, 0, 9, kp.string("ad-v0") + kp.string(member)))
            self.assertEqual(r.i16(), UNKNOWN_MEMBER_ID)
            r = R(s.call(API_FIND_COORDINATOR, 0, 10, kp.string("ad-v0")))
            self.assertEqual((r.i16(), r.i32(), r.string(), r.i32()), (0, 1, self.broker.host, self.broker.port))

    # ---- raw protocol, newest (flexible) versions ----

    def test_3_newest_versions_membership_cycle(self):
        with self.conn() as s:
            def join(member):
                body = (cstr("ad-v9") + kp.i32(6000) + kp.i32(8000) + cstr(member) + cstr(None) + cstr("consumer") +
                        carr([cstr("range") + cstr(b"meta-v9") + TAGS]) + cstr("testing") + TAGS)
                r = R(s.call(API_JOIN_GROUP, 9, 1, body, flexible=True))
                res = dict(throttle=r.i32(), err=r.i16(), gen=r.i32(), ptype=r.cstr(), pname=r.cstr(),
                           leader=r.cstr(), skip=r.i8(), member=r.cstr(),
                           members=r.carr(lambda r: (r.cstr(), r.cstr(), r.cbytes(), r.tags())[:3]))
                r.tags()
                return res

            first = join("")
            self.assertEqual(first["err"], MEMBER_ID_REQUIRED)
            self.assertTrue(first["member"].startswith("e2e-raw-"))
            j = join(first["member"])  # parked until the (0 ms) initial delay passed
            self.assertEqual((j["err"], j["gen"], j["ptype"], j["pname"], j["skip"]), (0, 1, "consumer", "range", 0))
            self.assertEqual(j["leader"], first["member"])
            self.assertEqual(j["members"], [(first["member"], None, b"meta-v9")])
            member, gen = j["member"], j["gen"]
            body = (cstr("ad-v9") + kp.i32(gen) + cstr(member) + cstr(None) + cstr("consumer") + cstr("range") +
                    carr([cstr(member) + cstr(b"assign-v9") + TAGS]) + TAGS)
            r = R(s.call(API_SYNC_GROUP, 5, 2, body, flexible=True))
            self.assertEqual((r.i32(), r.i16(), r.cstr(), r.cstr(), r.cbytes()), (0, 0, "consumer", "range",
                                                                                   b"assign-v9"))
            bad = (cstr("ad-v9") + kp.i32(gen) + cstr(member) + cstr(None) + cstr("other") + cstr(None) +
                   carr([]) + TAGS)
            r = R(s.call(API_SYNC_GROUP, 5, 3, bad, flexible=True))
            self.assertEqual((r.i32(), r.i16()), (0, 23))  # INCONSISTENT_GROUP_PROTOCOL
            r = R(s.call(API_HEARTBEAT, 4, 4, cstr("ad-v9") + kp.i32(gen) + cstr(member) + cstr(None) + TAGS,
                         flexible=True))
            self.assertEqual((r.i32(), r.i16()), (0, 0))
            body = (cstr("ad-v9") + kp.i32(gen) + cstr(member) + cstr(None) + carr([
                cstr("ad-t") + carr([kp.i32(q) + kp.i64(5 + q) + kp.i32(0) + cstr("md%d" % q) + TAGS
                                     for q in (0, 2)]) + TAGS]) + TAGS)
            r = R(s.call(API_OFFSET_COMMIT, 8, 5, body, flexible=True))
            r.i32()
            self.assertEqual(r.carr(lambda r: (r.cstr(), r.carr(lambda r: (r.i32(), r.i16(), r.tags())[:2]),
                                               r.tags())[:2]), [("ad-t", [(0, 0), (2, 0)])])
            # OffsetFetch v8: two groups, one with every offset (null topics).
            body = carr([cstr("ad-v9") + carr([cstr("ad-t") + carr([kp.i32(0), kp.i32(1)]) + TAGS]) + TAGS,
                         cstr("ad-v9") + carr(None) + TAGS,
                         cstr("ad-none") + carr([cstr("ad-t") + carr([kp.i32(0)]) + TAGS]) + TAGS]) + kp.i8(0) + TAGS
            r = R(s.call(API_OFFSET_FETCH, 8, 6, body, flexible=True))
            r.i32()
            part = lambda r: (r.i32(), r.i64(), r.i32(), r.cstr(), r.i16(), r.tags())[:5]
            groups = r.carr(lambda r: (r.cstr(), r.carr(lambda r: (r.cstr(), r.carr(part), r.tags())[:2]),
                                       r.i16(), r.tags())[:3])
            self.assertEqual(groups, [
                ("ad-v9", [("ad-t", [(0, 5, 0, "md0", 0), (1, -1, -1, "", 0)])], 0),
                ("ad-v9", [("ad-t", [(0, 5, 0, "md0", 0), (2, 7, 0, "md2", 0)])], 0),
                ("ad-none", [("ad-t", [(0, -1, -1, "", 0)])], 0)])
            # DescribeGroups v5 (Stable: metadata and assignment) and ListGroups v4 with a filter.
            r = R(s.call(API_DESCRIBE_GROUPS, 5, 7, carr([cstr("ad-v9"), cstr("ad-none")]) + kp.i8(1) + TAGS,
                         flexible=True))
            r.i32()
            mem = lambda r: (r.cstr(), r.cstr(), r.cstr(), r.cstr(), r.cbytes(), r.cbytes(), r.tags())[:6]
            described = r.carr(lambda r: (r.i16(), r.cstr(), r.cstr(), r.cstr(), r.cstr(), r.carr(mem), r.i32(),
                                          r.tags())[:7])
            self.assertEqual(described[0][:5], (0, "ad-v9", "Stable", "consumer", "range"))
            self.assertEqual(described[0][5], [(member, None, "e2e-raw", described[0][5][0][3], b"meta-v9",
                                                b"assign-v9")])
            self.assertEqual(described[0][6], (1 << 3) | (1 << 6) | (1 << 8))
            self.assertEqual(described[1][:6], (0, "ad-none", "Dead", "", "", []))
            r = R(s.call(API_LIST_GROUPS, 4, 8, carr([cstr("stable")]) + TAGS, flexible=True))
            r.i32()
            self.assertEqual(r.i16(), 0)
            listed = r.carr(lambda r: (r.cstr(), r.cstr(), r.cstr(), r.tags())[:3])
            self.assertIn(("ad-v9", "consumer", "Stable"), listed)
            self.assertTrue(all(st == "Stable" for _, _, st in listed), listed)
            # DeleteGroups v2 on a live group; FindCoordinator v4 with a batch.
            r = R(s.call(API_DELETE_GROUPS, 2, 9, carr([cstr("ad-v9")]) + TAGS, flexible=True))
            r.i32()
            self.assertEqual(r.carr(lambda r: (r.cstr(), r.i16(), r.tags())[:2]), [("ad-v9", NON_EMPTY_GROUP)])
            r = R(s.call(API_FIND_COORDINATOR, 4, 10, kp.i8(0) + carr([cstr("a"), cstr("ad-v9")]) + TAGS,
                         flexible=True))
            r.i32()
            coords = r.carr(lambda r: (r.cstr(), r.i32(), r.cstr(), r.i32(), r.i16(), r.cstr(), r.tags())[:6])
            self.assertEqual(coords, [(k, 1, self.broker.host, self.broker.port, 0, None) for k in ("a", "ad-v9")])
            r = R(s.call(API_FIND_COORDINATOR, 4, 11, kp.i8(1) + carr([cstr("txn")]) + TAGS, flexible=True))
            r.i32()
            self.assertEqual(r.carr(lambda r: (r.cstr(), r.i32(), r.cstr(), r.i32(), r.i16(), r.cstr(),
                                               r.tags())[4])[0], COORDINATOR_NOT_AVAILABLE)
            # LeaveGroup v5, then OffsetDelete v0 and DeleteGroups v2 on the empty group.
            r = R(s.call(API_LEAVE_GROUP, 5, 12, cstr("ad-v9") + carr([cstr(member) + cstr(None) + cstr("bye") +
                                                                       TAGS]) + TAGS, flexible=True))
            r.i32()
            self.assertEqual(r.i16(), 0)
            self.assertEqual(r.carr(lambda r: (r.cstr(), r.cstr(), r.i16(), r.tags())[:3]), [(member, None, 0)])
            r = R(s.call(API_OFFSET_DELETE, 0, 13, kp.string("ad-v9") + kp.array([
                kp.string("ad-t") + kp.array([kp.i32(0)]), kp.string("ad-gone") + kp.array([kp.i32(0)])])))
            self.assertEqual((r.i16(), r.i32()), (0, 0))
            self.assertEqual(r.arr(lambda r: (r.string(), r.arr(lambda r: (r.i32(), r.i16())))),
                             [("ad-t", [(0, 0)]), ("ad-gone", [(0, 3)])])
            r = R(s.call(API_DELETE_GROUPS, 2, 14, carr([cstr("ad-v9"), cstr("ad-v9")]) + TAGS, flexible=True))
            r.i32()
            self.assertEqual(r.carr(lambda r: (r.cstr(), r.i16(), r.tags())[:2]), [("ad-v9", 0)])

    # ---- persistence ----

    def test_4_commits_and_groups_survive_kill9_and_restart(self):
        c = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "ad-persist",
                      "session.timeout.ms": 6000, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "log_level": 3})
        try:
            c.subscribe(["ad-t"])
            n = 0
            deadline = time.monotonic() + 20
            while n < 30 and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is not None and not m.error():
                    n += 1
                    if n == 25:
                        c.commit(asynchronous=False)
            self.assertEqual(n, 30)
            before = self.admin.list_consumer_group_offsets("ad-persist")
        finally:
            c.close()
        self.assertEqual(sum(om.offset for om in before.values()), 25)
        # Metadata from an assign()-mode client as well.
        with self.conn() as s:
            body = kp.string("ad-persist-solo") + kp.i32(-1) + kp.string("") + kp.i64(-1) + kp.array([
                kp.string("ad-t") + kp.array([kp.i32(2) + kp.i64(9) + kp.string("keep-me")])])
            s.call(API_OFFSET_COMMIT, 2, 1, body)
        self.admin.close()
        du.kill9_node(self.broker)
        self.broker.restart_same_port()
        self.__class__.admin = KafkaAdminClient(bootstrap_servers=self.broker.bootstrap, request_timeout_ms=15000)
        after = self.admin.list_consumer_group_offsets("ad-persist")
        self.assertEqual({tp: om.offset for tp, om in after.items()}, {tp: om.offset for tp, om in before.items()})
        solo = self.admin.list_consumer_group_offsets("ad-persist-solo")
        self.assertEqual(solo, {TopicPartition("ad-t", 2): OffsetAndMetadata(9, "keep-me")})
        (d,) = self.admin.describe_consumer_groups(["ad-persist"])
        self.assertEqual((d.state, d.protocol_type), ("Empty", "consumer"))
        listed = dict(self.admin.list_consumer_groups())
        self.assertEqual(listed.get("ad-persist"), "consumer")
        self.assertNotIn("ad-v9", listed)  # deleted before the restart: stays deleted
        # A consumer of the group resumes from the commit.
        c = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "ad-persist",
                      "session.timeout.ms": 6000, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "log_level": 3})
        try:
            c.subscribe(["ad-t"])
            got = []
            deadline = time.monotonic() + 20
            while len(got) < 5 and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is not None and not m.error():
                    got.append(m)
            self.assertEqual(len(got), 5)
            self.assertIsNone(c.poll(1.0))
        finally:
            c.close()

    def test_zz_alive(self):
        self.assertBrokerAlive()
        self.assertNoSanitizerErrors()


if __name__ == "__main__":
    harness.main()
