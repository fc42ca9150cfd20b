#!/usr/bin/python3
"""The bucket the flusher writes (s3rver, path style), read with boto3 and
the independent parser kfs_reader.py:
  - every key is {ns}/{topic}/{partition}/segment-%020d.{kfs,index} with
    ns "default", a topic we produced to, a partition it has; every .kfs has
    its .index and vice versa; nothing else is in the bucket;
  - every segment parses (magics, version 1, flags 0, CRC-32C of the body,
    batch CRCs, message count, footer last offset) and its key names its base
    offset; every index parses and points at batch starts by the interval
    rule;
  - a partition's segments are contiguous (base = previous last + 1) and
    together cover exactly [earliest, high watermark) from ListOffsets;
  - the records in the segments are the acknowledged messages at their
    acknowledged offsets.
KAFSCALE_SEGMENT_BYTES is at its minimum (64 KiB) so partitions hold several
segments.
"""
import time
import unittest

import harness
import durability_util as du
import kfs_reader as kr
import s3rver_harness

BUCKET = "kafscale-layout"
NS = "default"
# topic -> (partitions, messages, value size, compression)
TOPICS = {
    "lay-one": (1, 3000, 200, "none"),
    "lay.dots_and-dash": (3, 6000, 100, "none"),
    "lay-gzip": (2, 2000, 400, "gzip"),
    "lay-big": (2, 120, 9000, "none"),
}


class BucketLayout(unittest.TestCase):
    s3 = None
    broker = None

    @classmethod
    def setUpClass(cls):
        ok, why = s3rver_harness.available()
        if not ok:
            raise RuntimeError(why)
        cls.s3 = s3rver_harness.S3rver(buckets=[BUCKET], name="s3rver-layout").start()
        env = cls.s3.env(BUCKET, KAFSCALE_SEGMENT_BYTES=65536, KAFSCALE_AUTO_CREATE_TOPICS="false")
        cls.broker = du.start_broker(env=env, name="layout")

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            cls.broker.stop()
        if cls.s3 is not None:
            cls.s3.stop()

    def test_layout(self):
        b = self.broker
        t_begin_ms = int(time.time() * 1000)
        errs = du.create_topics(b.bootstrap, [(t, p, {}) for t, (p, _, _, _) in TOPICS.items()])
        self.assertEqual(errs, {}, "CreateTopics failed")
        acked = {}
        for topic, (parts, n, size, codec) in TOPICS.items():
            run = du.ProduceRun(b.bootstrap, topic, parts, value_size=size,
                                extra_conf={"compression.type": codec, "linger.ms": 5, "batch.num.messages": 500})
            run.produce_range(0, n, deadline=time.monotonic() + 60)
            left = run.flush(60)
            self.assertEqual(left, 0, "%s: %d delivery reports missing" % (topic, left))
            self.assertEqual(run.errors, [], "%s: delivery errors %r" % (topic, run.errors[:5]))
            acked[topic] = run.acked
            run.p = None
        t_end_ms = int(time.time() * 1000)

        wm = {t: du.watermarks(b.bootstrap, t, TOPICS[t][0]) for t in TOPICS}
        for t, (parts, n, _, _) in TOPICS.items():
            self.assertEqual(sum(hi - lo for lo, hi in wm[t].values()), n, "%s: watermarks %r" % (t, wm[t]))

        client = self.s3.boto3_client()
        keys = du.list_bucket(client, BUCKET)
        self.assertTrue(keys, "bucket %s is empty" % BUCKET)
        bad = []
        segs = {}   # (topic, partition) -> {base: {"kfs": key, "index": key}}
        for k in keys:
            try:
                info = kr.parse_key(k)
            except ValueError as e:
                bad.append(str(e))
                continue
            if info["ns"] != NS or info["topic"] not in TOPICS or info["partition"] >= TOPICS[info["topic"]][0]:
                bad.append("unexpected key %r" % k)
                continue
            if k != kr.segment_key(info["ns"], info["topic"], info["partition"], info["base_offset"], info["ext"]):
                bad.append("key %r is not canonical" % k)
            segs.setdefault((info["topic"], info["partition"]), {}).setdefault(info["base_offset"], {})[info["ext"]] = k
        self.assertEqual(bad, [], "keys outside the layout")

        problems = []
        nsegs = 0
        for t, (parts, n, size, codec) in TOPICS.items():
            for q in range(parts):
                lo, hi = wm[t][q]
                by_base = segs.get((t, q), {})
                if hi > lo and not by_base:
                    problems.append("%s[%d]: no segments in the bucket, watermarks [%d, %d)" % (t, q, lo, hi))
                    continue
                expect_off = lo
                acked_at = dict(acked[t][q])
                for base in sorted(by_base):
                    pair = by_base[base]
                    where = "%s[%d] segment %d" % (t, q, base)
                    if set(pair) != {"kfs", "index"}:
                        problems.append("%s: only %r in the bucket" % (where, sorted(pair)))
                        continue
                    kfs = client.get_object(Bucket=BUCKET, Key=pair["kfs"])["Body"].read()
                    idx = client.get_object(Bucket=BUCKET, Key=pair["index"])["Body"].read()
                    if len(kfs) != keys[pair["kfs"]] or len(idx) != keys[pair["index"]]:
                        problems.append("%s: GET sizes %d/%d differ from the listing %d/%d"
                                        % (where, len(kfs), len(idx), keys[pair["kfs"]], keys[pair["index"]]))
                    try:
                        seg = kr.parse_segment(kfs)
                        ix = kr.parse_index(idx)
                        kr.check_index(seg, ix)
                    except ValueError as e:
                        problems.append("%s: %s" % (where, e))
                        continue
                    nsegs += 1
                    if seg["base_offset"] != base:
                        problems.append("%s: key says base %d, header %d" % (where, base, seg["base_offset"]))
                    if seg["flags"] != 0 or seg["version"] != 1:
                        problems.append("%s: version %d flags %d" % (where, seg["version"], seg["flags"]))
                    if base != expect_off:
                        problems.append("%s: starts at %d, previous segment ended at %d (earliest %d)"
                                        % (where, base, expect_off - 1, lo))
                    expect_off = seg["last_offset"] + 1
                    if not t_begin_ms - 5000 <= seg["created_ms"] <= t_end_ms + 5000:
                        problems.append("%s: created %d, outside the test's run [%d, %d]"
                                        % (where, seg["created_ms"], t_begin_ms, t_end_ms))
                    if len(kfs) > 65536 and len(seg["batches"]) > 1:
                        problems.append("%s: %d bytes in %d batches, above KAFSCALE_SEGMENT_BYTES=65536"
                                        % (where, len(kfs), len(seg["batches"])))
                    for bt in seg["batches"]:
                        for rec in kr.batch_records(bt["bytes"]):
                            want = acked_at.get(rec["offset"])
                            got = du.value_seq(rec["value"])
                            if got is None or len(rec["value"]) != size or (want is not None and want != got):
                                problems.append("%s: offset %d holds %r, acknowledged seq %r"
                                                % (where, rec["offset"], rec["value"][:20], want))
                                break
                if by_base and expect_off != hi:
                    problems.append("%s[%d]: segments end at %d, high watermark %d" % (t, q, expect_off, hi))
                if by_base and min(by_base) != lo:
                    problems.append("%s[%d]: first segment %d, earliest offset %d" % (t, q, min(by_base), lo))
        client.close()
        harness.log("checked %d segments in %d keys" % (nsegs, len(keys)))
        self.assertEqual(problems, [], "\n".join(problems[:30]))
        multi = [tq for tq, v in segs.items() if len(v) > 1]
        self.assertTrue(multi, "no partition holds more than one segment: %r" % {k: len(v) for k, v in segs.items()})
        self.assertTrue(b.alive(), "broker died; log tail:\n%s" % b.log_tail())
        self.assertEqual(b.sanitizer_errors(), [])


if __name__ == "__main__":
    harness.main()
