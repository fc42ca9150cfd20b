#!/usr/bin/python3
"""Admin APIs (issue 7): DescribeConfigs, AlterConfigs,
IncrementalAlterConfigs, CreatePartitions, DeleteRecords,
OffsetForLeaderEpoch and DescribeCluster, through real clients and through
requests this file builds byte by byte (struct; not the project's codec):

  - kafka-python (python3-kafka 2.0.2) KafkaAdminClient: describe_configs
    (topic with synonyms, broker), alter_configs (good, unknown name, bad
    value, read-only broker config), create_partitions (grow, same count,
    fewer, validate_only), describe_cluster (kafka-python 2.0.2 answers it
    from a Metadata request: it has no DescribeCluster; the raw test below
    covers the API);
  - confluent-kafka AdminClient: describe_configs and alter_configs;
  - kafkajs admin (test/node/kafkajs_admin.js): describeConfigs,
    alterConfigs, createPartitions, deleteTopicRecords; then this file
    checks that the segment objects wholly below the new log start left the
    file store and that ListOffsets(earliest) moved;
  - raw IncrementalAlterConfigs v0 (classic) and v1 (flexible): SET,
    DELETE, APPEND, SUBTRACT, validate_only and every refusal; raw
    DescribeConfigs v0 and v4 (types, documentation); raw DescribeCluster
    v0; raw OffsetForLeaderEpoch v0/v2/v4; raw DeleteRecords v2; the
    ApiVersions ranges;
  - a retention change made with AlterConfigs reaches the flusher (old
    segments are deleted), and configs, partition counts and log starts
    survive a broker restart.
"""
import struct
import time
import unittest

import durability_util as du
import harness
import kproto as kp

NS = "default"

TOPIC, BROKER = 2, 4  # config resource types
SRC_TOPIC, SRC_STATIC, SRC_DEFAULT = 1, 4, 5  # config sources
INVALID_CONFIG, INVALID_REQUEST, INVALID_PARTITIONS = 40, 42, 37
UNKNOWN_TOPIC, OFFSET_OUT_OF_RANGE = 3, 1
FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH = 74, 75
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3

# ---------------------------------------------------------------- flexible encoding, by hand


def cstr(s):
    """COMPACT_(NULLABLE_)STRING"""
    if s is None:
        return kp.uvarint(0)
    b = s.encode() if isinstance(s, str) else s
    return kp.uvarint(len(b) + 1) + b


def carr(items):
    return kp.uvarint(len(items) + 1) + b"".join(items)


TAGS = kp.uvarint(0)  # an empty tagged-field section


def nstring(s):
    """classic NULLABLE_STRING"""
    return kp.string(s)


def boolean(v):
    return b"\x01" if v else b"\x00"


class R(kp.Reader):
    """kproto.Reader plus the flexible (compact) forms."""

    def uvarint(self):
        v = shift = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def cstring(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode("utf-8", "replace")

    def carray_len(self):
        n = self.uvarint()
        return -1 if n == 0 else n - 1

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def boolean(self):
        return self.i8() != 0

    def done(self):
        if self.p != len(self.b):
            raise ValueError("%d unread byte(s) at the end of the response" % (len(self.b) - self.p))


# ---------------------------------------------------------------- raw requests


def iac_body(resources, validate_only, flexible):
    """IncrementalAlterConfigs: resources = [(type, name, [(config, op, value)])]"""
    if flexible:
        return carr([kp.i8(t) + cstr(n) + carr([cstr(c) + kp.i8(op) + cstr(v) + TAGS for c, op, v in cfgs]) + TAGS
                     for t, n, cfgs in resources]) + boolean(validate_only) + TAGS
    return kp.array([kp.i8(t) + kp.string(n) + kp.array([kp.string(c) + kp.i8(op) + nstring(v) for c, op, v in cfgs])
                     for t, n, cfgs in resources]) + boolean(validate_only)


def parse_alter_response(body, flexible):
    """-> [(error, message, type, name)] (AlterConfigs / IncrementalAlterConfigs)"""
    r = R(body)
    r.i32()  # throttle
    out = []
    n = r.carray_len() if flexible else r.i32()
    for _ in range(n):
        err = r.i16()
        msg = r.cstring() if flexible else r.string()
        typ = r.i8()
        name = r.cstring() if flexible else r.string()
        if flexible:
            r.tags()
        out.append((err, msg, typ, name))
    if flexible:
        r.tags()
    r.done()
    return out


def describe_configs_body(resources, version, synonyms=False, docs=False):
    """resources = [(type, name, keys or None)]"""
    if version >= 4:
        body = carr([kp.i8(t) + cstr(n) + (kp.uvarint(0) if k is None else carr([cstr(x) for x in k])) + TAGS
                     for t, n, k in resources])
        return body + boolean(synonyms) + boolean(docs) + TAGS
    body = kp.array([kp.i8(t) + kp.string(n) + (kp.i32(-1) if k is None else kp.array([kp.string(x) for x in k]))
                     for t, n, k in resources])
    if version >= 1:
        body += boolean(synonyms)
    if version >= 3:
        body += boolean(docs)
    return body


def parse_describe_configs(body, version):
    """-> [(error, message, type, name, {config: dict})]"""
    flex = version >= 4
    r = R(body)
    r.i32()
    s = r.cstring if flex else r.string
    out = []
    for _ in range(r.carray_len() if flex else r.i32()):
        err, msg, typ, name = r.i16(), s(), r.i8(), s()
        cfgs = {}
        for _ in range(r.carray_len() if flex else r.i32()):
            c = {"name": s(), "value": s(), "read_only": r.boolean()}
            if version == 0:
                c["is_default"] = r.boolean()
            else:
                c["source"] = r.i8()
            c["sensitive"] = r.boolean()
            if version >= 1:
                c["synonyms"] = []
                for _ in range(r.carray_len() if flex else r.i32()):
                    c["synonyms"].append((s(), s(), r.i8()))
                    if flex:
                        r.tags()
            if version >= 3:
                c["type"] = r.i8()
                c["doc"] = s()
            if flex:
                r.tags()
            cfgs[c["name"]] = c
        if flex:
            r.tags()
        out.append((err, msg, typ, name, cfgs))
    if flex:
        r.tags()
    r.done()
    return out


class AdminAPIs(unittest.TestCase):
    broker = None
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_AUTO_CREATE_PARTITIONS": "3",
                  "KAFSCALE_FLUSH_INTERVAL_MS": "20", "KAFSCALE_CLUSTER_ID": "admin-e2e"}

    @classmethod
    def setUpClass(cls):
        cls.broker = du.start_broker(env=cls.BROKER_ENV, name="admin")
        cls.corr = 100

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            alive = cls.broker.alive()
            status = cls.broker.stop()
            errs = cls.broker.sanitizer_errors()
            if not alive or status not in (0, -15) or errs:
                raise AssertionError("broker: alive=%r status=%r errors=%r\n%s" % (alive, status, errs[:10],
                                                                                  cls.broker.log_tail()))

    # ---- helpers ----

    def call(self, api, version, body, flexible):
        AdminAPIs.corr += 1
        with kp.Conn(self.broker.host, self.broker.port, timeout=10) as c:
            return c.call(api, version, AdminAPIs.corr, body, flexible=flexible)

    def create(self, topic, partitions, configs=None):
        errs = du.create_topics(self.broker.bootstrap, [(topic, partitions, configs or {})])
        self.assertEqual(errs, {}, "CreateTopics %s failed" % topic)

    def kafka_python_admin(self):
        from kafka.admin import KafkaAdminClient
        return KafkaAdminClient(bootstrap_servers=self.broker.bootstrap, client_id="e2e-admin",
                                request_timeout_ms=15000)

    def describe_raw(self, resources, version=4, synonyms=False, docs=False):
        body = self.call(32, version, describe_configs_body(resources, version, synonyms, docs), version >= 4)
        return parse_describe_configs(body, version)

    def topic_configs(self, topic, keys=None):
        (err, msg, _, _, cfgs), = self.describe_raw([(TOPIC, topic, keys)])
        self.assertEqual(err, 0, msg)
        return cfgs

    def iac(self, resources, validate_only=False, version=1):
        body = self.call(44, version, iac_body(resources, validate_only, version >= 1), version >= 1)
        return parse_alter_response(body, version >= 1)

    def produce(self, topic, partition, n, value=b"v" * 100):
        batch = kp.record_batch([(b"k%d" % i, value) for i in range(n)], base_ts=int(time.time() * 1000))
        body = self.call(kp.API_PRODUCE, 3, kp.produce_v3_body(topic, partition, batch, acks=-1, timeout_ms=10000),
                         False)
        res, _ = kp.parse_produce_v3_response(body)
        self.assertEqual([r[2] for r in res], [0], "produce to %s[%d]: %r" % (topic, partition, res))
        return res[0][3]

    def kfs_bases(self, topic, partition):
        prefix = "%s/%s/%d/" % (NS, topic, partition)
        out = set()
        for k in du.list_file_objects(self.broker.data_dir, prefix):
            name = k.rsplit("/", 1)[1]
            if name.startswith("segment-") and name.endswith(".kfs"):
                out.add(int(name[len("segment-"):-len(".kfs")]))
        return sorted(out)

    # ---- ApiVersions ----

    def test_01_api_versions(self):
        err, apis = kp.parse_api_versions_v0_response(self.call(kp.API_API_VERSIONS, 0, b"", False))
        self.assertEqual(err, 0)
        want = {21: (0, 2), 23: (0, 4), 32: (0, 4), 33: (0, 2), 37: (0, 3), 44: (0, 1), 60: (0, 0)}
        self.assertEqual({k: apis.get(k) for k in want}, want)

    # ---- kafka-python ----

    def test_02_kafka_python(self):
        from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
        from kafka.errors import InvalidPartitionsError
        a = self.kafka_python_admin()
        try:
            a.create_topics([NewTopic("kp-admin", 2, 1, topic_configs={"retention.bytes": "1000000"})])
            # Topic configs, with synonyms (kafka-python uses DescribeConfigs v2).
            (resp,) = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin")], include_synonyms=True)
            (err, msg, typ, name, entries), = resp.resources
            self.assertEqual((err, typ, name), (0, TOPIC, "kp-admin"), msg)
            cfg = {e[0]: e for e in entries}
            self.assertIn("retention.ms", cfg)
            self.assertEqual(cfg["retention.ms"][1:4], ("604800000", False, SRC_DEFAULT))
            self.assertEqual(cfg["retention.ms"][5], [("log.retention.ms", "604800000", SRC_DEFAULT)])
            self.assertEqual(cfg["retention.bytes"][1:4], ("1000000", False, SRC_TOPIC))
            self.assertEqual(cfg["retention.bytes"][5], [("retention.bytes", "1000000", SRC_TOPIC),
                                                         ("log.retention.bytes", "-1", SRC_DEFAULT)])
            self.assertEqual(cfg["max.message.bytes"][1], "1048588")
            self.assertEqual(len(cfg), 25)
            # Broker configs: read-only, from the environment where set.
            (resp,) = a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
            (err, msg, typ, name, entries), = resp.resources
            self.assertEqual((err, typ, name), (0, BROKER, "1"), msg)
            b = {e[0]: e for e in entries}
            self.assertTrue(all(e[2] for e in entries), "broker configs must all be read-only")
            self.assertEqual(b["num.partitions"][1:4], ("3", True, SRC_STATIC))
            self.assertEqual(b["auto.create.topics.enable"][1:4], ("false", True, SRC_STATIC))
            self.assertEqual(b["kafscale.cluster.id"][1:4], ("admin-e2e", True, SRC_STATIC))
            self.assertEqual(b["broker.id"][1], "1")
            self.assertEqual(b["message.max.bytes"][1:4], ("1048588", True, SRC_DEFAULT))
            self.assertEqual(b["log.retention.ms"][1:4], ("604800000", True, SRC_DEFAULT))
            self.assertEqual(b["default.replication.factor"][1], "1")
            self.assertEqual(b["socket.request.max.bytes"][1], "104857600")
            self.assertEqual(b["listeners"][1], "PLAINTEXT://%s" % self.broker.bootstrap)
            self.assertFalse([k for k in b if "secret" in k or "access.key" in k], "credentials must not be listed")

            # AlterConfigs (v1): the listed configs replace the topic's.
            (resp) = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin",
                                                     configs={"retention.ms": "7200000", "cleanup.policy": "delete"})])
            self.assertEqual([r[:2] for r in resp.resources], [(0, None)])
            c = self.topic_configs("kp-admin", ["retention.ms", "retention.bytes", "cleanup.policy"])
            self.assertEqual((c["retention.ms"]["value"], c["retention.ms"]["source"]), ("7200000", SRC_TOPIC))
            self.assertEqual((c["retention.bytes"]["value"], c["retention.bytes"]["source"]), ("-1", SRC_DEFAULT),
                             "AlterConfigs puts configs it does not list back to their defaults")
            for configs, rtype, rname, code, text in (
                    ({"retention.ms": "1", "no.such.config": "x"}, ConfigResourceType.TOPIC, "kp-admin",
                     INVALID_CONFIG, "no.such.config"),
                    ({"retention.ms": "forever"}, ConfigResourceType.TOPIC, "kp-admin", INVALID_CONFIG, "retention.ms"),
                    ({"min.insync.replicas": "0"}, ConfigResourceType.TOPIC, "kp-admin", INVALID_CONFIG, "at least 1"),
                    ({"retention.ms": "1"}, ConfigResourceType.TOPIC, "kp-missing", UNKNOWN_TOPIC, None),
                    ({"num.partitions": "9"}, ConfigResourceType.BROKER, "1", INVALID_CONFIG, "KAFSCALE_AUTO_CREATE"),
                    ({"no.such.broker.config": "9"}, ConfigResourceType.BROKER, "1", INVALID_CONFIG, "Unknown")):
                resp = a.alter_configs([ConfigResource(rtype, rname, configs=configs)])
                (err, msg, _, _), = resp.resources
                self.assertEqual(err, code, "%r: %r" % (configs, msg))
                if text:
                    self.assertIn(text, msg or "")
            self.assertEqual(self.topic_configs("kp-admin", ["retention.ms"])["retention.ms"]["value"], "7200000",
                             "a refused AlterConfigs must change nothing")

            # CreatePartitions (v1).
            resp = a.create_partitions({"kp-admin": NewPartitions(5)})
            self.assertEqual(resp.topic_errors, [("kp-admin", 0, None)])
            (t,) = a.describe_topics(["kp-admin"])
            self.assertEqual(sorted(p["partition"] for p in t["partitions"]), [0, 1, 2, 3, 4])
            for count, validate in ((5, False), (3, False), (9, True)):
                if count <= 5:
                    with self.assertRaises(InvalidPartitionsError):
                        a.create_partitions({"kp-admin": NewPartitions(count)}, validate_only=validate)
                else:
                    resp = a.create_partitions({"kp-admin": NewPartitions(count)}, validate_only=True)
                    self.assertEqual(resp.topic_errors, [("kp-admin", 0, None)])
            (t,) = a.describe_topics(["kp-admin"])
            self.assertEqual(len(t["partitions"]), 5, "validate_only must not grow the topic")
            # A new partition takes data.
            self.assertEqual(self.produce("kp-admin", 4, 3), 0)

            # describe_cluster (kafka-python 2.0.2 builds it from Metadata).
            cl = a.describe_cluster()
            self.assertEqual(cl["cluster_id"], "admin-e2e")
            self.assertEqual(cl["controller_id"], 1)
            self.assertEqual([(x["node_id"], x["host"], x["port"]) for x in cl["brokers"]],
                             [(1, self.broker.host, self.broker.port)])
        finally:
            a.close()

    # ---- confluent-kafka ----

    def test_03_confluent(self):
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, ConfigResource
        self.create("ck-admin", 1, {"segment.bytes": "65536"})
        a = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        fs = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "ck-admin"),
                                 ConfigResource(ConfigResource.Type.BROKER, "1")])
        got = {r.restype: f.result(15) for r, f in fs.items()}
        t = got[ConfigResource.Type.TOPIC]
        self.assertEqual(t["segment.bytes"].value, "65536")
        self.assertEqual(int(t["segment.bytes"].source), SRC_TOPIC)
        self.assertFalse(t["segment.bytes"].is_read_only)
        self.assertEqual(t["retention.ms"].value, "604800000")
        self.assertTrue(t["retention.ms"].is_default)
        self.assertIn("log.retention.ms", t["retention.ms"].synonyms)
        b = got[ConfigResource.Type.BROKER]
        self.assertEqual(b["num.partitions"].value, "3")
        self.assertTrue(b["num.partitions"].is_read_only)
        self.assertEqual(int(b["num.partitions"].source), SRC_STATIC)
        self.assertEqual(b["log.segment.bytes"].value, "4194304")

        fs = a.alter_configs([ConfigResource(ConfigResource.Type.TOPIC, "ck-admin",
                                             set_config={"retention.ms": "123456", "segment.bytes": "65536",
                                                         "message.timestamp.type": "LogAppendTime"})])
        for f in fs.values():
            self.assertIsNone(f.result(15))
        fs = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "ck-admin")])
        t = list(fs.values())[0].result(15)
        self.assertEqual((t["retention.ms"].value, t["message.timestamp.type"].value), ("123456", "LogAppendTime"))
        for restype, name, cfg, code in ((ConfigResource.Type.TOPIC, "ck-admin", {"retention.mss": "1"}, INVALID_CONFIG),
                                         (ConfigResource.Type.TOPIC, "ck-admin", {"compression.type": "brotli"},
                                          INVALID_CONFIG),
                                         (ConfigResource.Type.BROKER, "1", {"log.retention.ms": "1"}, INVALID_CONFIG)):
            fs = a.alter_configs([ConfigResource(restype, name, set_config=cfg)])
            with self.assertRaises(KafkaException) as cm:
                list(fs.values())[0].result(15)
            self.assertEqual(cm.exception.args[0].code(), code, "%r: %s" % (cfg, cm.exception))
        t = list(a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "ck-admin")]).values())[0].result(15)
        self.assertEqual(t["retention.ms"].value, "123456")

    # ---- kafkajs ----

    def test_04_kafkajs(self):
        s = harness.run_kafkajs(self, "kafkajs_admin.js", self.broker.bootstrap, "kjs", timeout=100)
        self.assertGreaterEqual(s["checks"], 25)
        topic, cut = s["topic"], s["cut"]

        # DeleteRecords moved ListOffsets(earliest) ...
        wm = du.watermarks(self.broker.bootstrap, topic, 4)
        self.assertEqual(wm[0], (cut, 400))
        self.assertEqual(wm[1], (2, 2))
        # ... and the segments wholly below the cut left the store (the one
        # holding the cut stays).
        def indexes():
            return sorted(int(k.rsplit("-", 1)[1][:-len(".index")])
                          for k in du.list_file_objects(self.broker.data_dir, "%s/%s/0/" % (NS, topic))
                          if k.endswith(".index"))

        def settled():
            bases = self.kfs_bases(topic, 0)
            return bases and bases[0] <= cut and (len(bases) < 2 or bases[1] > cut) and indexes() == bases
        self.assertTrue(du.wait_for(settled, 10.0), "segments below offset %d still in the store: %r, indexes %r"
                        % (cut, self.kfs_bases(topic, 0), indexes()))
        bases = self.kfs_bases(topic, 0)
        self.assertGreater(bases[0], 0, "nothing was deleted: %r" % bases)
        # Fetching below the new start is OFFSET_OUT_OF_RANGE, from it works (kcat).
        r = harness.run_cmd(["kcat", "-b", self.broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning",
                             "-e", "-f", "%o\n"], timeout=60)
        self.assertEqual(r.returncode, 0, r.describe())
        offs = [int(x) for x in r.stdout.split()]
        self.assertEqual(offs, list(range(cut, 400)))

    # ---- raw IncrementalAlterConfigs ----

    def test_05_raw_incremental_alter_configs(self):
        self.create("raw-iac", 1)
        # v1 (flexible): SET and APPEND; a second resource in the same request.
        self.create("raw-iac2", 1)
        res = self.iac([(TOPIC, "raw-iac", [("retention.ms", OP_SET, "3600000"), ("cleanup.policy", OP_APPEND, "compact")]),
                        (TOPIC, "raw-iac2", [("retention.bytes", OP_SET, "5000000")])])
        self.assertEqual(res, [(0, None, TOPIC, "raw-iac"), (0, None, TOPIC, "raw-iac2")])
        c = self.topic_configs("raw-iac", ["retention.ms", "cleanup.policy", "retention.bytes"])
        self.assertEqual((c["retention.ms"]["value"], c["retention.ms"]["source"]), ("3600000", SRC_TOPIC))
        self.assertEqual(c["cleanup.policy"]["value"], "delete,compact")
        self.assertEqual(c["retention.bytes"]["value"], "-1", "other configs are kept as they were")
        self.assertEqual(self.topic_configs("raw-iac2", ["retention.bytes"])["retention.bytes"]["value"], "5000000")
        # v0 (classic): SUBTRACT and DELETE.
        res = self.iac([(TOPIC, "raw-iac", [("cleanup.policy", OP_SUBTRACT, "delete"), ("retention.ms", OP_DELETE, None)])],
                       version=0)
        self.assertEqual(res, [(0, None, TOPIC, "raw-iac")])
        c = self.topic_configs("raw-iac", ["retention.ms", "cleanup.policy"])
        self.assertEqual((c["cleanup.policy"]["value"], c["cleanup.policy"]["source"]), ("compact", SRC_TOPIC))
        self.assertEqual((c["retention.ms"]["value"], c["retention.ms"]["source"]), ("604800000", SRC_DEFAULT))
        # validate_only changes nothing.
        res = self.iac([(TOPIC, "raw-iac", [("retention.ms", OP_SET, "1")])], validate_only=True)
        self.assertEqual(res, [(0, None, TOPIC, "raw-iac")])
        self.assertEqual(self.topic_configs("raw-iac", ["retention.ms"])["retention.ms"]["value"], "604800000")
        # Refusals, each alone in a request; none changes anything.
        for version in (0, 1):
            for what, resource, code, text in (
                    ("unknown name", (TOPIC, "raw-iac", [("retention.mss", OP_SET, "1")]), INVALID_CONFIG,
                     "retention.mss"),
                    ("bad value", (TOPIC, "raw-iac", [("retention.ms", OP_SET, "-5")]), INVALID_CONFIG, "at least -1"),
                    ("append to a non-list", (TOPIC, "raw-iac", [("retention.ms", OP_APPEND, "5")]), INVALID_CONFIG,
                     "append"),
                    ("subtract from a non-list", (TOPIC, "raw-iac", [("segment.bytes", OP_SUBTRACT, "5")]),
                     INVALID_CONFIG, "subtract"),
                    ("bad list item", (TOPIC, "raw-iac", [("cleanup.policy", OP_APPEND, "shred")]), INVALID_CONFIG,
                     "cleanup.policy"),
                    ("null SET", (TOPIC, "raw-iac", [("retention.ms", OP_SET, None)]), INVALID_REQUEST, "Null"),
                    ("repeated name", (TOPIC, "raw-iac", [("retention.ms", OP_SET, "1"), ("retention.ms", OP_DELETE, None)]),
                     INVALID_REQUEST, "duplicate"),
                    ("unknown operation", (TOPIC, "raw-iac", [("retention.ms", 9, "1")]), INVALID_REQUEST, "operation"),
                    ("a good then a bad config", (TOPIC, "raw-iac", [("retention.ms", OP_SET, "1"),
                                                                      ("max.message.bytes", OP_SET, "x")]),
                     INVALID_CONFIG, "max.message.bytes"),
                    ("unknown topic", (TOPIC, "raw-missing", [("retention.ms", OP_SET, "1")]), UNKNOWN_TOPIC, None),
                    ("read-only broker config", (BROKER, "1", [("num.partitions", OP_SET, "4")]), INVALID_CONFIG,
                     "KAFSCALE_AUTO_CREATE_PARTITIONS"),
                    ("another broker", (BROKER, "7", [("num.partitions", OP_SET, "4")]), INVALID_REQUEST, "broker id"),
                    ("unsupported resource type", (16, "x", [("a", OP_SET, "1")]), INVALID_REQUEST, "resource type")):
                (err, msg, typ, name), = self.iac([resource], version=version)
                self.assertEqual((err, typ, name), (code, resource[0], resource[1]), "v%d %s: %r" % (version, what, msg))
                if text:
                    self.assertIn(text.lower(), (msg or "").lower(), "v%d %s" % (version, what))
        c = self.topic_configs("raw-iac", ["retention.ms", "cleanup.policy", "max.message.bytes"])
        self.assertEqual([c[k]["value"] for k in ("retention.ms", "cleanup.policy", "max.message.bytes")],
                         ["604800000", "compact", "1048588"])

    # ---- raw DescribeConfigs v0 and v4 ----

    def test_06_raw_describe_configs(self):
        self.create("raw-dc", 1, {"retention.ms": "60000", "cleanup.policy": "compact"})
        (err, msg, typ, name, c), = self.describe_raw([(TOPIC, "raw-dc", None)], version=4, synonyms=True, docs=True)
        self.assertEqual((err, typ, name), (0, TOPIC, "raw-dc"), msg)
        self.assertEqual(len(c), 25)
        self.assertEqual((c["retention.ms"]["value"], c["retention.ms"]["source"], c["retention.ms"]["type"]),
                         ("60000", SRC_TOPIC, 5))  # LONG
        self.assertEqual(c["retention.ms"]["synonyms"], [("retention.ms", "60000", SRC_TOPIC),
                                                         ("log.retention.ms", "604800000", SRC_DEFAULT)])
        self.assertEqual(c["cleanup.policy"]["type"], 7)  # LIST
        self.assertEqual(c["preallocate"]["type"], 1)  # BOOLEAN
        self.assertEqual(c["segment.bytes"]["type"], 3)  # INT
        self.assertEqual(c["compression.type"]["type"], 2)  # STRING
        self.assertTrue(all(x["doc"] for x in c.values()), "documentation asked for, some missing")
        # Without documentation: null docs; only the keys asked for; unknown keys left out.
        (err, _, _, _, c), = self.describe_raw([(TOPIC, "raw-dc", ["retention.ms", "nope"])], version=4)
        self.assertEqual(list(c), ["retention.ms"])
        self.assertIsNone(c["retention.ms"]["doc"])
        self.assertEqual(c["retention.ms"]["synonyms"], [])
        # v0: IsDefault instead of the source; a broker resource; errors per resource.
        res = self.describe_raw([(TOPIC, "raw-dc", ["retention.ms", "segment.ms"]), (BROKER, "1", ["num.partitions"]),
                                 (TOPIC, "raw-none", None), (BROKER, "5", None), (TOPIC, "bad name!", None),
                                 (BROKER, "", None)], version=0)
        self.assertEqual([r[0] for r in res], [0, 0, UNKNOWN_TOPIC, INVALID_REQUEST, 17, 0])
        self.assertEqual((res[0][4]["retention.ms"]["is_default"], res[0][4]["segment.ms"]["is_default"]), (False, True))
        self.assertEqual(res[1][4]["num.partitions"], {"name": "num.partitions", "value": "3", "read_only": True,
                                                       "is_default": False, "sensitive": False})
        self.assertEqual(res[5][4], {}, "no cluster-wide dynamic defaults")
        # v3 (classic, with types), broker resource, everything.
        (err, msg, _, _, b), = self.describe_raw([(BROKER, "1", None)], version=3, docs=True)
        self.assertEqual(err, 0, msg)
        self.assertGreater(len(b), 50)
        self.assertEqual((b["num.partitions"]["value"], b["num.partitions"]["type"]), ("3", 3))
        self.assertIn("KAFSCALE_AUTO_CREATE_PARTITIONS", b["num.partitions"]["doc"])
        self.assertEqual(b["kafscale.s3.bucket"]["value"], None)
        self.assertTrue(all(x["read_only"] for x in b.values()))

    # ---- raw DescribeCluster ----

    def test_07_raw_describe_cluster(self):
        for ops in (False, True):
            body = self.call(60, 0, boolean(ops) + TAGS, True)
            r = R(body)
            throttle, err, msg, cluster, controller = r.i32(), r.i16(), r.cstring(), r.cstring(), r.i32()
            brokers = []
            for _ in range(r.carray_len()):
                brokers.append((r.i32(), r.cstring(), r.i32(), r.cstring()))
                r.tags()
            auth_ops = r.i32()
            r.tags()
            r.done()
            self.assertEqual((throttle, err, msg, cluster, controller), (0, 0, None, "admin-e2e", 1))
            self.assertEqual(brokers, [(1, self.broker.host, self.broker.port, None)])
            if ops:
                # ALTER, CLUSTER_ACTION, CREATE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE
                self.assertEqual(auth_ops, sum(1 << b for b in (5, 7, 8, 9, 10, 11, 12)))
            else:
                self.assertEqual(auth_ops, -2 ** 31)

    # ---- raw OffsetForLeaderEpoch ----

    def test_08_raw_offset_for_leader_epoch(self):
        self.create("raw-ofle", 2)
        self.produce("raw-ofle", 0, 7)
        hw = du.wait_for(lambda: du.watermarks(self.broker.bootstrap, "raw-ofle", 1)[0][1] == 7 and 7, 10.0)
        self.assertEqual(hw, 7)
        # v4 (flexible): (partition, current epoch, epoch) -> (error, partition, epoch, end offset)
        asks = [(0, -1, 0), (0, 0, 0), (0, -1, 3), (0, -1, -1), (0, 2, 0), (1, -1, 0), (9, -1, 0)]
        body = kp.i32(-1) + carr([cstr("raw-ofle") + carr([kp.i32(p) + kp.i32(c) + kp.i32(e) + TAGS
                                                            for p, c, e in asks]) + TAGS,
                                  cstr("raw-nothere") + carr([kp.i32(0) + kp.i32(-1) + kp.i32(0) + TAGS]) + TAGS]) + TAGS
        r = R(self.call(23, 4, body, True))
        self.assertEqual(r.i32(), 0)
        got = {}
        for _ in range(r.carray_len()):
            t = r.cstring()
            got[t] = []
            for _ in range(r.carray_len()):
                got[t].append((r.i16(), r.i32(), r.i32(), r.i64()))
                r.tags()
            r.tags()
        r.tags()
        r.done()
        self.assertEqual(got["raw-ofle"], [(0, 0, 0, 7), (0, 0, 0, 7), (0, 0, -1, -1), (0, 0, -1, -1),
                                           (UNKNOWN_LEADER_EPOCH, 0, -1, -1), (0, 1, 0, 0), (UNKNOWN_TOPIC, 9, -1, -1)])
        self.assertEqual(got["raw-nothere"], [(UNKNOWN_TOPIC, 0, -1, -1)])
        # v2 (classic, with the current epoch) and v0 (no epochs in the answer).
        body = kp.array([kp.string("raw-ofle") + kp.array([kp.i32(0) + kp.i32(-1) + kp.i32(0)])])
        r = R(self.call(23, 2, body, False))
        self.assertEqual(r.i32(), 0)
        self.assertEqual((r.i32(), r.string(), r.i32(), r.i16(), r.i32(), r.i32(), r.i64()), (1, "raw-ofle", 1, 0, 0, 0, 7))
        r.done()
        body = kp.array([kp.string("raw-ofle") + kp.array([kp.i32(0) + kp.i32(0)])])
        r = R(self.call(23, 0, body, False))
        self.assertEqual((r.i32(), r.string(), r.i32(), r.i16(), r.i32(), r.i64()), (1, "raw-ofle", 1, 0, 0, 7))
        r.done()

    # ---- raw DeleteRecords v2 ----

    def test_09_raw_delete_records(self):
        self.create("raw-dr", 2)
        self.produce("raw-dr", 0, 10)
        self.produce("raw-dr", 0, 10)
        du.wait_for(lambda: du.watermarks(self.broker.bootstrap, "raw-dr", 1)[0][1] == 20, 10.0)
        asks = [(0, 5), (1, 1), (1, -2), (7, 0)]
        body = carr([cstr("raw-dr") + carr([kp.i32(p) + kp.i64(o) + TAGS for p, o in asks]) + TAGS]) + kp.i32(5000) + TAGS
        r = R(self.call(21, 2, body, True))
        self.assertEqual(r.i32(), 0)
        self.assertEqual(r.carray_len(), 1)
        self.assertEqual(r.cstring(), "raw-dr")
        got = []
        for _ in range(r.carray_len()):
            got.append((r.i32(), r.i64(), r.i16()))
            r.tags()
        r.tags()
        r.tags()
        r.done()
        self.assertEqual(got, [(0, 5, 0), (1, -1, OFFSET_OUT_OF_RANGE), (1, -1, OFFSET_OUT_OF_RANGE),
                               (7, -1, UNKNOWN_TOPIC)])
        self.assertEqual(du.watermarks(self.broker.bootstrap, "raw-dr", 2), {0: (5, 20), 1: (0, 0)})
        # Below the start: nothing moves; -1: the high watermark.
        body = carr([cstr("raw-dr") + carr([kp.i32(0) + kp.i64(3) + TAGS]) + TAGS]) + kp.i32(5000) + TAGS
        r = R(self.call(21, 2, body, True))
        r.i32(), r.carray_len(), r.cstring(), r.carray_len()
        self.assertEqual((r.i32(), r.i64(), r.i16()), (0, 5, 0))
        body = kp.array([kp.string("raw-dr") + kp.array([kp.i32(0) + kp.i64(-1)])]) + kp.i32(5000)
        r = R(self.call(21, 0, body, False))
        r.i32(), r.i32(), r.string(), r.i32()
        self.assertEqual((r.i32(), r.i64(), r.i16()), (0, 20, 0))
        self.assertEqual(du.watermarks(self.broker.bootstrap, "raw-dr", 1)[0], (20, 20))

    # ---- retention changed by AlterConfigs reaches the flusher ----

    def test_10_retention_change_applies(self):
        from kafka.admin import ConfigResource, ConfigResourceType
        self.create("ret-alter", 1, {"segment.bytes": "16384"})
        for _ in range(12):
            self.produce("ret-alter", 0, 40, value=b"r" * 300)
        self.assertTrue(du.wait_for(lambda: du.watermarks(self.broker.bootstrap, "ret-alter", 1)[0][1] == 480, 10.0))
        before = self.kfs_bases("ret-alter", 0)
        self.assertGreater(len(before), 3, "expected several segments: %r" % before)
        time.sleep(1.2)  # the newest record must be older than the new retention.ms
        a = self.kafka_python_admin()
        try:
            resp = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "ret-alter",
                                                   configs={"segment.bytes": "16384", "retention.ms": "1000"})])
            self.assertEqual([r[0] for r in resp.resources], [0])
        finally:
            a.close()
        gone = du.wait_for(lambda: not self.kfs_bases("ret-alter", 0), 15.0, interval=0.25)
        self.assertTrue(gone, "segments still there 15 s after retention.ms=1000: %r" % self.kfs_bases("ret-alter", 0))
        moved = du.wait_for(lambda: du.watermarks(self.broker.bootstrap, "ret-alter", 1)[0] == (480, 480), 5.0)
        self.assertTrue(moved, "earliest offset did not follow retention: %r"
                        % (du.watermarks(self.broker.bootstrap, "ret-alter", 1),))

    # ---- everything survives a restart ----

    def test_11_restart_keeps_changes(self):
        b = self.broker
        self.create("keep", 1, {"segment.bytes": "16384"})
        for _ in range(6):
            self.produce("keep", 0, 40, value=b"k" * 300)
        self.assertTrue(du.wait_for(lambda: du.watermarks(b.bootstrap, "keep", 1)[0][1] == 240, 10.0))
        res = self.iac([(TOPIC, "keep", [("retention.bytes", OP_SET, "900000000"), ("cleanup.policy", OP_APPEND, "compact")])])
        self.assertEqual(res[0][0], 0)
        body = carr([cstr("keep") + carr([kp.i32(0) + kp.i64(130) + TAGS]) + TAGS]) + kp.i32(5000) + TAGS
        self.call(21, 2, body, True)
        def settled():  # no segment wholly below 130 left (nor its index)
            bases = self.kfs_bases("keep", 0)
            idx = [k for k in du.list_file_objects(b.data_dir, "%s/keep/0/" % NS) if k.endswith(".index")]
            return bases and bases[0] > 0 and (len(bases) < 2 or bases[1] > 130) and len(idx) == len(bases)
        self.assertTrue(du.wait_for(settled, 10.0), "segments below 130: %r" % self.kfs_bases("keep", 0))
        bases = self.kfs_bases("keep", 0)
        from kafka.admin import NewPartitions
        a = self.kafka_python_admin()
        try:
            a.create_partitions({"keep": NewPartitions(3)})
        finally:
            a.close()
        self.produce("keep", 2, 5)

        status = b.stop()
        self.assertIn(status, (0, -15), b.log_tail())
        b.restart_same_port()
        self.assertTrue(du.wait_for(lambda: du.watermarks(b.bootstrap, "keep", 3).get(2) == (0, 5), 15.0))
        self.assertEqual(du.watermarks(b.bootstrap, "keep", 3), {0: (130, 240), 1: (0, 0), 2: (0, 5)})
        c = self.topic_configs("keep", ["retention.bytes", "cleanup.policy", "segment.bytes"])
        self.assertEqual([c[k]["value"] for k in ("retention.bytes", "cleanup.policy", "segment.bytes")],
                         ["900000000", "delete,compact", "16384"])
        self.assertEqual(self.topic_configs("raw-iac", ["cleanup.policy"])["cleanup.policy"]["value"], "compact")
        self.assertEqual(self.kfs_bases("keep", 0), bases)
        # The grown partitions take data after the restart, on both sides.
        self.assertEqual(self.produce("keep", 1, 4), 0)
        self.assertEqual(self.produce("keep", 2, 1), 5)
        self.assertTrue(du.wait_for(lambda: self.kfs_bases("keep", 1) == [0], 10.0), "partition 1 never flushed")
        self.assertTrue(b.alive())

    # ---- malformed requests close the connection, nothing else ----

    def test_12_malformed_requests(self):
        # (key, version, flexible, body): counts promising more than is there,
        # cut strings, a negative non-null array count.
        cases = [(32, 0, False, kp.i32(3) + kp.i8(2)), (32, 4, True, kp.uvarint(2) + kp.i8(2) + kp.uvarint(40) + b"ab"),
                 (33, 1, False, kp.i32(1) + kp.i8(2) + kp.string("t") + kp.i32(1000000)),
                 (44, 1, True, kp.uvarint(2) + kp.i8(2) + cstr("t") + kp.uvarint(2)),
                 (37, 2, True, carr([cstr("t") + kp.i32(5) + kp.uvarint(3)])),
                 (21, 0, False, kp.i32(1) + kp.string("t") + kp.i32(-7)),
                 (23, 4, True, kp.i32(-1) + kp.uvarint(5)), (60, 0, True, b"")]
        for key, version, flexible, body in cases:
            with kp.Conn(self.broker.host, self.broker.port, timeout=5) as c:
                c.send(kp.request(key, version, 7, body, flexible=flexible))
                closed, got = c.wait_closed(5.0)
                self.assertTrue(closed and not got, "api %d v%d: malformed request answered %r" % (key, version, got))
        self.assertTrue(self.broker.alive())
        err, apis = kp.parse_api_versions_v0_response(self.call(kp.API_API_VERSIONS, 0, b"", False))
        self.assertEqual(err, 0)


if __name__ == "__main__":
    harness.main()
