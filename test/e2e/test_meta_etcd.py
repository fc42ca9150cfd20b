#!/usr/bin/python3
"""The etcd backend of the metadata interfaces (common/meta_etcd.c,
common/meta_groups_etcd.c) against a real etcd (Debian's etcd-server on
loopback, etcd_harness), driven through bin/meta_cli; what the backend wrote
is read back with etcdctl and its protobuf values are decoded here by a
small wire-format reader (independent of protobuf-c).

Proves: topics round trip through the JSON snapshot (also one written by
`etcdctl put` without id or configs, whose derived id is then written back);
two processes putting topics at the same time both keep all of theirs (the
compare-and-swap retries); commits with a valid fence land in ONE txn and are
loaded back; a commit whose fence went stale (the leader key was deleted and
created again) is refused and reported fenced while the call's other
partitions commit; a partition without a fence is refused without a txn;
calls larger than etcd's 128 ops per txn are split; removing segments moves
the log start and keeps the PartitionState fields cluster.c wrote, and is
refused when fenced; dropping a topic's segments spares those of a topic
created again under the name; groups and offsets round trip (ids with '/',
'%', spaces; metadata null / bytes) and load-group returns only that group;
bad values in etcd give a clear message, never a crash.

Environment: KAFSCALE_META_CLI, the CLI binary (default <repo>/bin/meta_cli).
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import unittest

import etcd_harness
import harness

CLI_BIN = os.environ.get("KAFSCALE_META_CLI", os.path.join(harness.REPO, "bin", "meta_cli"))

# ---- protobuf wire format (enough to check field numbers and values) ----


def _varint(b, i):
    v = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def pb_fields(b):
    """{field number: [values]}: ints for varints (two's complement int64
    made negative), bytes for length-delimited fields. Raises ValueError on
    anything that is not a well-formed message."""
    out = {}
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError("field number 0")
        if wt == 0:
            v, i = _varint(b, i)
            if v >= 1 << 63:
                v -= 1 << 64
        elif wt == 2:
            n, i = _varint(b, i)
            if i + n > len(b):
                raise ValueError("truncated bytes")
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def pb_one(f, num, default=None):
    return f.get(num, [default])[-1]


def pb_varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        c = v & 0x7F
        v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)


def pb_encode(fields):
    """[(number, int | bytes | str)] -> message bytes."""
    out = bytearray()
    for num, v in fields:
        if isinstance(v, int):
            out += pb_varint(num << 3) + pb_varint(v)
        else:
            if isinstance(v, str):
                v = v.encode()
            out += pb_varint(num << 3 | 2) + pb_varint(len(v)) + v
    return bytes(out)


def derived_id(name):
    return hashlib.sha256(b"kafscale-topic:" + name.encode()).hexdigest()[:32]


class MetaEtcdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ok, why = etcd_harness.available()
        if not ok:
            raise RuntimeError(why)
        if not os.access(CLI_BIN, os.X_OK):
            raise RuntimeError("%s missing: run make" % CLI_BIN)
        cls.etcd = etcd_harness.Etcd("meta").start()
        cls.tmp = harness.make_tmpdir("kafscale-e2e-meta-etcd-")

    # ---- helpers ----

    def env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("KAFSCALE_ETCD_"):
                del env[k]
        env["KAFSCALE_ETCD_ENDPOINTS"] = self.etcd.url
        env["KAFSCALE_ETCD_TIMEOUT_MS"] = "3000"
        return env

    def cli(self, *args, rc=0, timeout=60):
        r = harness.run_cmd([CLI_BIN, "--data-dir", self.tmp] + list(args), timeout=timeout, env=self.env())
        if rc is not None:
            self.assertEqual(r.returncode, rc, r.describe())
        return [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()], r

    def load(self, *args):
        out, _ = self.cli(*(args or ("load",)))
        self.assertTrue(out and out[-1].get("loaded"), out)
        topics = {o["topic"]: o for o in out if "topic" in o}
        segs = [o["segment"] for o in out if "segment" in o]
        starts = {(o["log_start"]["topic"], o["log_start"]["partition"]): o["log_start"]["offset"]
                  for o in out if "log_start" in o}
        return topics, segs, starts

    def claim(self, topic, p):
        """A leader key as cluster.c would put it; its mod revision (the fence)."""
        self.etcd.ctl_ok("put", "/kafscale/partitions/%s/%d/leader" % (topic, p), "claim")
        return int(self.etcd.range_json("/kafscale/partitions/%s/%d/leader" % (topic, p))["kvs"][0]["mod_revision"])

    def txns(self):
        m = self.etcd.metrics()
        return sum(v for k, v in m.items()
                   if k.startswith("grpc_server_started_total{") and 'grpc_method="Txn"' in k)

    def put_raw(self, key, value):
        # the value on stdin: binary protobuf does not fit an argv string
        r = harness.run_cmd([etcd_harness.ETCDCTL_BIN, "--endpoints", self.etcd.url, "put", key], input=value,
                            extra_env={"ETCDCTL_API": "3"}, timeout=20)
        self.assertEqual(r.returncode, 0, r.describe())

    # ---- topics ----

    def test_topics_round_trip_through_the_snapshot(self):
        self.cli("put-topic", "rt-a", "3", "--id", "00112233445566778899aabbccddeeff", "--config",
                 "retention.ms=1000", "--config", "cleanup.policy=delete")
        self.cli("put-topic", "rt-b", "2")
        topics, _, _ = self.load()
        self.assertEqual(topics["rt-a"]["id"], "00112233445566778899aabbccddeeff")
        self.assertEqual(topics["rt-a"]["partitions"], 3)
        self.assertEqual(topics["rt-a"]["configs"], {"retention.ms": "1000", "cleanup.policy": "delete"})
        self.assertEqual(topics["rt-b"]["id"], derived_id("rt-b"))
        snap = json.loads(self.etcd.get("/kafscale/metadata/snapshot"))
        self.assertEqual(snap["version"], 1)
        ent = {t["name"]: t for t in snap["topics"]}
        self.assertEqual(ent["rt-a"], {"name": "rt-a", "id": "00112233445566778899aabbccddeeff", "partitions": 3,
                                       "configs": {"retention.ms": "1000", "cleanup.policy": "delete"}})
        # the TopicConfig copy is protobuf: name 1, partitions 2, config map 8, topic_id 16
        f = pb_fields(self.etcd.get("/kafscale/topics/rt-a"))
        self.assertEqual(pb_one(f, 1), b"rt-a")
        self.assertEqual(pb_one(f, 2), 3)
        self.assertEqual(pb_one(f, 4), 1000)  # typed retention_ms
        self.assertEqual(pb_one(f, 16).hex(), "00112233445566778899aabbccddeeff")
        cfg = {}
        for entry in f[8]:
            e = pb_fields(entry)
            cfg[pb_one(e, 1).decode()] = pb_one(e, 2).decode()
        self.assertEqual(cfg, {"retention.ms": "1000", "cleanup.policy": "delete"})
        # grow it (CreatePartitions), then delete the other one with its partition keys
        self.cli("put-topic", "rt-a", "6", "--id", "00112233445566778899aabbccddeeff")
        self.etcd.ctl_ok("put", "/kafscale/partitions/rt-b/0/state", "x")
        self.etcd.ctl_ok("put", "/kafscale/partitions/rt-bb/0/state", "y")
        self.cli("delete-topic", "rt-b")
        topics, _, _ = self.load()
        self.assertEqual(topics["rt-a"]["partitions"], 6)
        self.assertNotIn("rt-b", topics)
        self.assertIsNone(self.etcd.get("/kafscale/topics/rt-b"))
        self.assertEqual(self.etcd.get_prefix("/kafscale/partitions/rt-b/"), {})
        self.assertEqual(self.etcd.get("/kafscale/partitions/rt-bb/0/state"), b"y")  # "/"-terminated prefix

    def test_topic_written_with_etcdctl_gets_its_id_written_back(self):
        snap = json.loads(self.etcd.get("/kafscale/metadata/snapshot") or b'{"topics":[]}')
        snap["topics"] = [t for t in snap.get("topics", []) if t.get("name") != "by-hand"]
        snap["topics"].append({"name": "by-hand", "partitions": 3})
        self.etcd.ctl_ok("put", "/kafscale/metadata/snapshot", json.dumps(snap))
        topics, _, _ = self.load()
        self.assertEqual(topics["by-hand"]["id"], derived_id("by-hand"))
        self.assertEqual(topics["by-hand"]["partitions"], 3)
        self.assertEqual(topics["by-hand"]["configs"], {})
        self.cli("put-topic", "after-hand", "1")  # any rewrite of the snapshot
        ent = {t["name"]: t for t in json.loads(self.etcd.get("/kafscale/metadata/snapshot"))["topics"]}
        self.assertEqual(ent["by-hand"]["id"], derived_id("by-hand"))
        f = pb_fields(self.etcd.get("/kafscale/topics/by-hand"))
        self.assertEqual(pb_one(f, 16).hex(), derived_id("by-hand"))

    def test_concurrent_put_topic_from_two_processes_both_survive(self):
        n = 15
        procs = [subprocess.Popen([CLI_BIN, "--data-dir", self.tmp, "put-topics", "race-%s" % w, str(n), "2"],
                                  env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for w in ("x", "y")]
        for p in procs:
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode())
            self.assertEqual(json.loads(out.decode().splitlines()[-1]), {"rc": 0, "count": n})
        topics, _, _ = self.load()
        for w in ("x", "y"):
            for i in range(n):
                self.assertIn("race-%s-%d" % (w, i), topics)
                self.assertIsNotNone(self.etcd.get("/kafscale/topics/race-%s-%d" % (w, i)))

    # ---- segments and fences ----

    def test_commit_with_valid_fences_is_one_txn_and_loads_back(self):
        f0, f1 = self.claim("cm", 0), self.claim("cm", 1)
        t0 = self.txns()
        out, _ = self.cli("fence", "cm", "0", str(f0), ",", "fence", "cm", "1", str(f1), ",",
                          "commit", "cm:0:0:9:3", "cm:1:0:4:3", "cm:0:10:19:3")
        self.assertEqual(out[-1], {"rc": 0, "fenced": [0, 0, 0]})
        self.assertEqual(self.txns() - t0, 1)
        _, segs, _ = self.load("load-partition", "cm", "0")
        self.assertEqual([(s["base_offset"], s["last_offset"], s["leader_epoch"]) for s in segs],
                         [(0, 9, 3), (10, 19, 3)])
        _, segs, _ = self.load()
        self.assertIn({"topic": "cm", "partition": 1, "base_offset": 0, "last_offset": 4},
                      [{k: s[k] for k in ("topic", "partition", "base_offset", "last_offset")} for s in segs])
        # the value is a SegmentInfo: base 1, size 2, topic 16, partition 18, epoch 19, last 20
        f = pb_fields(self.etcd.get("/kafscale/segments/cm/0/%020d" % 10))
        self.assertEqual((pb_one(f, 1), pb_one(f, 2), pb_one(f, 16), pb_one(f, 18, 0), pb_one(f, 19), pb_one(f, 20)),
                         (10, 1000, b"cm", 0, 3, 19))

    def test_stale_fence_is_refused_and_the_other_partitions_commit(self):
        f0, f1, f2 = self.claim("st", 0), self.claim("st", 1), self.claim("st", 2)
        # partition 1 moved on: its leader key was deleted (lease expiry) and claimed again
        self.etcd.ctl_ok("del", "/kafscale/partitions/st/1/leader")
        self.claim("st", 1)
        t0 = self.txns()
        out, r = self.cli("fence", "st", "0", str(f0), ",", "fence", "st", "1", str(f1), ",", "fence", "st", "2",
                          str(f2), ",", "commit", "st:0:0:9", "st:1:0:9", "st:2:0:9", "st:1:10:19", ",",
                          "commit", "st:1:20:29", "st:0:10:19")
        self.assertEqual(out[3], {"rc": 0, "fenced": [0, 1, 0, 1]})
        self.assertEqual(out[4], {"rc": 0, "fenced": [1, 0]})
        self.assertEqual(self.txns() - t0, 3)  # refused + retried; the second call: no question for partition 1
        self.assertIn(b"st[1] is fenced", r.stderr)
        keys = sorted(self.etcd.get_prefix("/kafscale/segments/st/"))
        self.assertEqual(keys, ["/kafscale/segments/st/0/%020d" % 0, "/kafscale/segments/st/0/%020d" % 10,
                                "/kafscale/segments/st/2/%020d" % 0])
        # a leader key that is simply gone (lease expired, nobody claimed yet)
        f3 = self.claim("st", 3)
        self.etcd.ctl_ok("del", "/kafscale/partitions/st/3/leader")
        out, _ = self.cli("fence", "st", "3", str(f3), ",", "commit", "st:3:0:1")
        self.assertEqual(out[-1], {"rc": 0, "fenced": [1]})
        self.assertEqual(self.etcd.get_prefix("/kafscale/segments/st/3/"), {})

    def test_unanswered_commit_is_checked_not_guessed(self):
        f0 = self.claim("ua", 0)
        env = self.env()
        env["KAFSCALE_ETCD_TIMEOUT_MS"] = "1000"
        # etcd frozen: the txn is sent (the kernel accepts the connection) but not answered
        os.kill(self.etcd.pid, signal.SIGSTOP)
        try:
            p = subprocess.Popen([CLI_BIN, "--data-dir", self.tmp, "fence", "ua", "0", str(f0), ",", "commit",
                                  "ua:0:0:9"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(1.6)
        finally:
            os.kill(self.etcd.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err.decode())
        self.assertEqual(json.loads(out.decode().splitlines()[-1]), {"rc": 0, "fenced": [0]})
        self.assertIn("a segment commit went unanswered", err.decode())
        self.assertIsNotNone(self.etcd.get("/kafscale/segments/ua/0/%020d" % 0))

    def test_partition_without_fence_is_refused_without_a_txn(self):
        self.claim("nf", 0)
        t0 = self.txns()
        out, _ = self.cli("commit", "nf:0:0:9")
        self.assertEqual(out[-1], {"rc": 0, "fenced": [1]})
        self.assertEqual(self.txns(), t0)
        self.assertEqual(self.etcd.get_prefix("/kafscale/segments/nf/"), {})

    def test_calls_beyond_128_ops_are_split(self):
        fences = []
        for p in range(3):
            fences += ["fence", "big", str(p), str(self.claim("big", p)), ","]
        segs = ["big:0:%d:%d" % (i * 10, i * 10 + 9) for i in range(200)]
        segs += ["big:%d:%d:%d" % (p, i * 10, i * 10 + 9) for i in range(100) for p in (1, 2)]
        t0 = self.txns()
        out, _ = self.cli(*(fences + ["commit"] + segs))
        self.assertEqual(out[-1]["rc"], 0)
        self.assertEqual(sum(out[-1]["fenced"]), 0)
        self.assertGreaterEqual(self.txns() - t0, 3)
        self.assertEqual(len(self.etcd.get_prefix("/kafscale/segments/big/")), 400)
        _, segs, _ = self.load("load-partition", "big", "0")
        self.assertEqual([s["base_offset"] for s in segs], [i * 10 for i in range(200)])

    def test_remove_moves_the_log_start_and_keeps_the_claim(self):
        f0 = self.claim("rm", 0)
        # what cluster.c wrote at claim: leader_epoch 5 (4), leader_id 2 (17), topic (1)
        self.put_raw("/kafscale/partitions/rm/0/state", pb_encode([(1, "rm"), (4, 5), (17, 2)]))
        out, _ = self.cli("fence", "rm", "0", str(f0), ",", "commit", "rm:0:0:9", "rm:0:10:19", "rm:0:20:29", ",",
                          "remove", "rm", "0", "20", "0", "10")
        self.assertEqual(out[-1], {"rc": 0})
        self.assertEqual(sorted(self.etcd.get_prefix("/kafscale/segments/rm/")), ["/kafscale/segments/rm/0/%020d" % 20])
        f = pb_fields(self.etcd.get("/kafscale/partitions/rm/0/state"))
        self.assertEqual((pb_one(f, 4), pb_one(f, 17), pb_one(f, 5)), (5, 2, 20))
        _, segs, starts = self.load("load-partition", "rm", "0")
        self.assertEqual(starts, {("rm", 0): 20})
        self.assertEqual([s["base_offset"] for s in segs], [20])
        # DeleteRecords inside a segment: only the log start moves
        out, _ = self.cli("fence", "rm", "0", str(f0), ",", "remove", "rm", "0", "25")
        self.assertEqual(out[-1], {"rc": 0})
        self.assertEqual(self.load()[2][("rm", 0)], 25)
        # fenced: nothing changes
        self.claim("rm", 0)
        out, _ = self.cli("fence", "rm", "0", str(f0), ",", "remove", "rm", "0", "30", "20")
        self.assertEqual(out[-1], {"rc": -2})
        out, _ = self.cli("remove", "rm", "0", "30", "20")  # no fence at all
        self.assertEqual(out[-1], {"rc": -2})
        self.assertEqual(len(self.etcd.get_prefix("/kafscale/segments/rm/")), 1)
        self.assertEqual(pb_one(pb_fields(self.etcd.get("/kafscale/partitions/rm/0/state")), 5), 25)

    def test_drop_spares_the_segments_of_a_topic_created_again(self):
        old, new = "aa" * 16, "bb" * 16
        fences = ["fence", "dr", "0", str(self.claim("dr", 0)), ",", "fence", "gone", "0",
                  str(self.claim("gone", 0)), ","]
        out, _ = self.cli(*(fences + ["commit", "dr:0:0:9:1:" + old, "dr:0:10:19:1:" + old, "gone:0:0:9:1:" + old]))
        self.assertEqual(out[-1]["rc"], 0)
        # "dr" deleted and created again with id bb..; its new leader wrote base 20 (and 0 again)
        self.cli("put-topic", "dr", "1", "--id", new)
        out, _ = self.cli(*(fences + ["commit", "dr:0:0:4:2:" + new, "dr:0:20:29:2:" + new]))
        self.assertEqual(out[-1]["rc"], 0)
        self.cli("drop", "dr", ",", "drop", "gone")
        self.assertEqual(sorted(self.etcd.get_prefix("/kafscale/segments/dr/")),
                         ["/kafscale/segments/dr/0/%020d" % 0, "/kafscale/segments/dr/0/%020d" % 20])
        self.assertEqual(self.etcd.get_prefix("/kafscale/segments/gone/"), {})

    # ---- groups ----

    def test_groups_and_offsets_round_trip_and_load_one_group(self):
        g = "gr/1 %x"
        self.cli("put-group", g, "--protocol-type", "consumer", "--protocol", "range", "--leader", "m1",
                 "--generation", "7", "--state-ms", "1234", "--member", "m1:static-1:0a0b:ff", "--member", "m2")
        self.cli("put-group", "gr", "--protocol-type", "consumer")
        self.cli("put-offsets", g, "gt:0:42:hello", "gt:1:7:@null", "gt:2:9:@hex:00ff01", "gt:0:43:again")
        self.cli("put-offsets", "gr", "gt:0:1")
        self.cli("put-offsets", "gr%2F1 %x", "gt:0:2")  # escapes of its own, not gr/1 %x
        out, _ = self.cli("load-group", g)
        self.assertEqual(out[-1], {"loaded": True, "groups": 1, "offsets": 3})
        grp = out[0]["group"]
        self.assertEqual((grp["group_id"], grp["protocol_type"], grp["protocol"], grp["leader"], grp["generation"],
                          grp["state_ms"]), (g, "consumer", "range", "m1", 7, 1234))
        self.assertEqual([(m["member_id"], m["instance_id"], m["subscription"], m["assignment"])
                          for m in grp["members"]], [("m1", "static-1", "0a0b", "ff"), ("m2", None, "", "")])
        offs = {o["offset"]["partition"]: o["offset"] for o in out if "offset" in o}
        self.assertEqual(offs[0]["offset"], 43)  # the later entry of the same partition wins
        self.assertEqual(offs[0]["metadata"], {"hex": b"again".hex()})
        self.assertIsNone(offs[1]["metadata"])
        self.assertEqual(offs[2]["metadata"], {"hex": "00ff01"})
        self.assertTrue(all(o["group_id"] == g for o in offs.values()))
        # keys: the group id escaped into one component; values decode
        grp_val = self.etcd.get("/kafscale/groups/gr%2F1%20%25x")
        f = pb_fields(grp_val)
        self.assertEqual((pb_one(f, 1), pb_one(f, 2), pb_one(f, 6)), (g.encode(), b"Stable", 7))
        self.assertEqual(len(f[16]), 2)
        self.assertEqual(pb_one(pb_fields(f[16][0]), 16), b"m1")
        f = pb_fields(self.etcd.get("/kafscale/offsets/gr%2F1%20%25x/gt/2"))
        self.assertEqual((pb_one(f, 1), pb_one(f, 20), pb_one(f, 21), pb_one(f, 22), pb_one(f, 23)),
                         (9, g.encode(), b"gt", 2, b"\x00\xff\x01"))
        self.assertEqual(pb_one(pb_fields(self.etcd.get("/kafscale/offsets/gr%2F1%20%25x/gt/1")), 18), 1)
        # the other groups load on their own
        out, _ = self.cli("load-group", "gr")
        self.assertEqual(out[-1], {"loaded": True, "groups": 1, "offsets": 1})
        out, _ = self.cli("load-group", "no-such-group")
        self.assertEqual(out[-1], {"loaded": True, "groups": 0, "offsets": 0})
        # deletions
        self.cli("delete-offsets", g, "gt:1")
        out, _ = self.cli("load-group", g)
        self.assertEqual(out[-1]["offsets"], 2)
        self.cli("delete-group", g)
        out, _ = self.cli("load-groups")
        ids = {o["group"]["group_id"] for o in out if "group" in o}
        oids = {o["offset"]["group_id"] for o in out if "offset" in o}
        self.assertNotIn(g, ids | oids)
        self.assertIn("gr", ids)
        self.assertIn("gr%2F1 %x", oids)
        self.assertEqual(self.etcd.get_prefix("/kafscale/offsets/gr%2F1%20%25x/"), {})

    # ---- bad values ----

    def test_bad_values_give_clear_errors_not_crashes(self):
        f = self.claim("bad", 0)
        out, _ = self.cli("fence", "bad", "0", str(f), ",", "commit", "bad:0:0:9")
        self.assertEqual(out[-1]["rc"], 0)
        self.etcd.ctl_ok("put", "/kafscale/segments/bad/0/%020d" % 10, "not protobuf \xff")
        self.put_raw("/kafscale/segments/bad/0/%020d" % 20, pb_encode([(1, 99), (16, "bad"), (20, 5)]))  # last < base
        self.etcd.ctl_ok("put", "/kafscale/segments/bad/zz", "x")
        self.etcd.ctl_ok("put", "/kafscale/partitions/bad/0/state", "garbage")
        self.etcd.ctl_ok("put", "/kafscale/groups/badgroup", "\x0a")
        self.etcd.ctl_ok("put", "/kafscale/offsets/badgroup/bad/0", "nope")
        _, segs, _ = self.load("load-partition", "bad", "0")
        self.assertEqual([s["base_offset"] for s in segs], [0])
        out, r = self.cli("load")
        self.assertTrue(out[-1].get("loaded"))
        err = r.stderr.decode()
        self.assertIn("skipping /kafscale/segments/bad/0/%020d: SegmentInfo: not a valid protobuf message" % 10, err)
        self.assertIn("offsets out of order", err)
        self.assertIn("/kafscale/segments/bad/zz", err)
        self.assertIn("/kafscale/partitions/bad/0/state: PartitionState", err)
        out, r = self.cli("load-groups")
        self.assertTrue(out[-1].get("loaded"))
        self.assertIn("/kafscale/groups/badgroup", r.stderr.decode())
        self.assertIn("/kafscale/offsets/badgroup/bad/0: CommittedOffset", r.stderr.decode())
        # a state that does not decode stops retention with a message, nothing written
        out, r = self.cli("fence", "bad", "0", str(f), ",", "remove", "bad", "0", "5", rc=1)
        self.assertEqual(out[-1], {"rc": -1})
        self.assertIn("fix or remove the key", r.stderr.decode())
        self.etcd.ctl_ok("del", "--prefix", "/kafscale/segments/bad/")
        self.etcd.ctl_ok("del", "/kafscale/partitions/bad/0/state")
        self.etcd.ctl_ok("del", "/kafscale/groups/badgroup")
        self.etcd.ctl_ok("del", "/kafscale/offsets/badgroup/bad/0")

    def test_bad_snapshot_is_a_clear_error(self):
        good = self.etcd.get("/kafscale/metadata/snapshot")
        try:
            # bad entries: skipped with a message, the good ones still load
            self.etcd.ctl_ok("put", "/kafscale/metadata/snapshot",
                             '{"topics":[{"name":"fine","partitions":2},{"name":"bad name","partitions":1},'
                             '{"name":"np","partitions":0}]}')
            out, r = self.cli("load")
            self.assertEqual([o["topic"] for o in out if "topic" in o], ["fine"])
            self.assertIn("skipped 2 invalid topic entries", r.stderr.decode())
            # not JSON: load fails naming the key; a topic write refuses to overwrite it
            self.etcd.ctl_ok("put", "/kafscale/metadata/snapshot", "{not json")
            out, r = self.cli("load", rc=1)
            self.assertIn("/kafscale/metadata/snapshot", out[-1]["error"])
            self.assertIn("not valid JSON", out[-1]["error"])
            out, r = self.cli("put-topic", "x", "1", rc=1)
            self.assertEqual(out[-1], {"rc": -1})
            self.assertIn("fix or remove the key", r.stderr.decode())
            self.assertEqual(self.etcd.get("/kafscale/metadata/snapshot"), b"{not json")
            self.etcd.ctl_ok("put", "/kafscale/metadata/snapshot", '{"version":7,"topics":[]}')
            out, r = self.cli("load", rc=1)
            self.assertIn("unsupported \"version\"", out[-1]["error"])
        finally:
            if good is not None:
                self.put_raw("/kafscale/metadata/snapshot", good)
            else:
                self.etcd.ctl_ok("del", "/kafscale/metadata/snapshot")

    def test_backend_is_etcd_when_endpoints_are_set(self):
        out, _ = self.cli("backend")
        self.assertEqual(out, [{"meta": "etcd", "groups": "etcd"}])
        env = self.env()
        del env["KAFSCALE_ETCD_ENDPOINTS"]
        r = harness.run_cmd([CLI_BIN, "--data-dir", self.tmp, "backend"], env=env, timeout=30)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(json.loads(r.stdout.decode()), {"meta": "file", "groups": "file"})


if __name__ == "__main__":
    code = 1
    try:
        prog = unittest.main(exit=False, verbosity=2)
        ok = prog.result.wasSuccessful() and prog.result.testsRun > 0
        if not ok:
            etcd_harness.dump_logs(30)
        code = 0 if ok else 1
    finally:
        etcd_harness.stop_all()
    sys.exit(code)
