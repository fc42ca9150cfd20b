#!/usr/bin/python3
"""Retention and topic deletion on the file object store (the flusher
enforces retention.ms / retention.bytes every 5 s by deleting whole old
segments; the earliest offset moves):
  - retention.bytes=200000 with segment.bytes=65536 (accepted at
    CreateTopics; segments in the store stay about that size): after ~2 MB,
    ListOffsets(earliest) moves above 0, the dropped segments' objects are
    gone, what is kept is the newest segments holding >= retention.bytes
    (minus at most one segment), the high watermark does not move, and
    consuming from earliest (and from the deleted offset 0) works;
  - retention.ms=1000: all old segments vanish, earliest = high watermark;
  - DeleteTopics removes every object of the topic within a few seconds;
  - after a kill -9 and a graceful broker restart the earliest offsets stay
    where retention put them and the deleted topic stays deleted.
RecreateWhileFlusherDown: DeleteTopics + CreateTopics of the same name
while the flusher is down must not hand the old topic's segments to the new
one.
"""
import os
import subprocess
import time
import unittest

import harness
import durability_util as du
import kfs_reader as kr

NS = "default"
SEG_BYTES = 65536
RET_BYTES = 200000
VALUE = 1000


class Retention(unittest.TestCase):
    broker = None

    @classmethod
    def setUpClass(cls):
        cls.broker = du.start_broker(env={"KAFSCALE_AUTO_CREATE_TOPICS": "false",
                                          "KAFSCALE_FLUSH_INTERVAL_MS": "20",
                                          "KAFSCALE_TAIL_BYTES": "0"}, name="retention")

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            cls.broker.stop()

    def objects(self, topic, partition=None):
        prefix = "%s/%s/" % (NS, topic) + ("" if partition is None else "%d/" % partition)
        return du.list_file_objects(self.broker.data_dir, prefix)

    def produce(self, topic, parts, n, size=VALUE):
        run = du.ProduceRun(self.broker.bootstrap, topic, parts, value_size=size,
                            extra_conf={"linger.ms": 20, "batch.num.messages": 50})
        run.produce_range(0, n, deadline=time.monotonic() + 60)
        left = run.flush(60)
        self.assertEqual(left, 0, "%s: %d delivery reports missing" % (topic, left))
        self.assertEqual(run.errors, [], "%s: delivery errors %r" % (topic, run.errors[:5]))
        run.p = None
        return run

    def seg_sizes(self, topic, q):
        """{base offset: .kfs size} and the set of .index bases of a partition."""
        kfs, idx = {}, set()
        for k, size in self.objects(topic, q).items():
            info = kr.parse_key(k)
            if info["ext"] == "kfs":
                kfs[info["base_offset"]] = size
            else:
                idx.add(info["base_offset"])
        return kfs, idx

    def test_retention_bytes_ms_and_delete(self):
        b = self.broker
        errs = du.create_topics(b.bootstrap, [
            ("ret-bytes", 2, {"retention.bytes": str(RET_BYTES), "segment.bytes": str(SEG_BYTES)}),
            ("ret-ms", 1, {"retention.ms": "1000", "segment.bytes": str(SEG_BYTES)}),
            ("ret-del", 2, {}),
        ])
        self.assertEqual(errs, {}, "CreateTopics with retention/segment configs refused")

        n_bytes = 1000   # per partition: ~1 MB each, ~2 MB in all
        t0 = time.monotonic()
        run_b = self.produce("ret-bytes", 2, 2 * n_bytes)
        self.produce("ret-ms", 1, 300)
        self.produce("ret-del", 2, 300)
        harness.log("produced in %.1fs" % (time.monotonic() - t0))
        # segment.bytes is applied: several segments, none (much) above 64 KiB.
        for q in range(2):
            kfs, _ = self.seg_sizes("ret-bytes", q)
            self.assertGreater(len(kfs), 3, "ret-bytes[%d]: only %d segment(s) for ~1 MB with segment.bytes=%d"
                               % (q, len(kfs), SEG_BYTES))
            big = {k: v for k, v in kfs.items() if v > SEG_BYTES + VALUE + 200}
            self.assertEqual(big, {}, "ret-bytes[%d]: segments above segment.bytes=%d" % (q, SEG_BYTES))
        self.assertTrue(self.objects("ret-del"), "ret-del has no objects in the store")

        # --- DeleteTopics removes every object of the topic. ---
        self.assertEqual(du.delete_topics(b.bootstrap, ["ret-del"]), {}, "DeleteTopics failed")
        t_del = time.monotonic()
        gone = du.wait_for(lambda: not self.objects("ret-del"), 5.0)
        self.assertTrue(gone, "objects of deleted topic ret-del still there after 5 s: %r"
                        % sorted(self.objects("ret-del"))[:10])
        harness.log("ret-del objects gone %.1fs after DeleteTopics" % (time.monotonic() - t_del))

        # --- retention.bytes ---
        def settled():
            for q in range(2):
                kfs, _ = self.seg_sizes("ret-bytes", q)
                if not kfs or min(kfs) == 0:
                    return False
                total = sum(kfs.values())
                if total - kfs[min(kfs)] >= RET_BYTES:
                    return False
            return True
        ok = du.wait_for(settled, 16.0, interval=0.25)

        # The flusher deletes the objects first, then tells the broker the new
        # log start (LOGSTART): give that report a moment to arrive.
        def log_start_moved():
            w = du.watermarks(b.bootstrap, "ret-bytes", 2)
            return all(w[q][0] > 0 and w[q][0] == min(self.seg_sizes("ret-bytes", q)[0] or [-1]) for q in range(2))
        du.wait_for(log_start_moved, 5.0, interval=0.1)
        wm = du.watermarks(b.bootstrap, "ret-bytes", 2)
        for q in range(2):
            kfs, idx = self.seg_sizes("ret-bytes", q)
            lo, hi = wm[q]
            desc = "ret-bytes[%d]: watermarks [%d, %d), segments (base: size) %r" % (q, lo, hi, sorted(kfs.items()))
            self.assertTrue(ok, "retention.bytes not enforced within 16 s: " + desc)
            self.assertEqual(hi, n_bytes, desc)
            self.assertGreater(lo, 0, "earliest offset did not move: " + desc)
            self.assertEqual(min(kfs), lo, "first segment in the store is not the earliest offset: " + desc)
            self.assertEqual(set(kfs), idx, "ret-bytes[%d]: .kfs and .index objects differ: %r vs %r"
                             % (q, sorted(kfs), sorted(idx)))
            total = sum(kfs.values())
            self.assertGreaterEqual(total, RET_BYTES, "retention deleted too much: " + desc)
            self.assertLess(total - kfs[lo], RET_BYTES, "retention kept too much: " + desc)
        self.assertRegex(b.log_text(), r"retention: ret-bytes\[\d\] dropped \d+ segment")

        # Consume from earliest (ListOffsets), and from the deleted offset 0
        # (OFFSET_OUT_OF_RANGE, then auto.offset.reset=earliest).
        got = du.consume_all(b.bootstrap, "ret-bytes", 2, timeout=30)
        problems = du.verify({}, got)
        self.assertEqual(problems, [], "\n".join(problems))
        for q in range(2):
            recs = got["records"][q]
            self.assertTrue(recs and recs[0][0] == wm[q][0], "ret-bytes[%d]: read starts at %r, earliest %d"
                            % (q, recs[0][0] if recs else None, wm[q][0]))
            acked = dict(run_b.acked[q])
            wrong = [(off, du.value_seq(v), acked.get(off)) for off, v in recs if du.value_seq(v) != acked.get(off)]
            self.assertEqual(wrong[:5], [], "ret-bytes[%d]: offsets hold other messages than acknowledged" % q)
        got0 = du.consume_all(b.bootstrap, "ret-bytes", 2, timeout=30, start={0: 0, 1: 0})
        self.assertTrue(got0["complete"], "reading ret-bytes from the deleted offset 0 did not reach the end: "
                        "%r (errors %r)" % (got0["positions"], got0["errors"][:3]))
        for q in range(2):
            self.assertEqual(got0["records"][q][:1], got["records"][q][:1],
                             "ret-bytes[%d]: reading from offset 0 did not start at the earliest offset" % q)

        # --- retention.ms ---
        def ms_done():
            kfs, idx = self.seg_sizes("ret-ms", 0)
            return not kfs and not idx
        ok = du.wait_for(ms_done, 12.0, interval=0.25)
        wm_ms = du.watermarks(b.bootstrap, "ret-ms", 1)[0]
        self.assertTrue(ok, "retention.ms=1000: segments still there after 12 s: %r, watermarks %r"
                        % (sorted(self.seg_sizes("ret-ms", 0)[0].items()), wm_ms))
        self.assertEqual(wm_ms, (300, 300), "retention.ms=1000: watermarks after every segment expired")

        # --- kill -9 and graceful restarts: log start offsets and the deletion persist ---
        du.kill9_node(b)
        b.restart_same_port()
        self.assertEqual(du.watermarks(b.bootstrap, "ret-bytes", 2), wm, "ret-bytes watermarks after kill -9")
        status = b.stop()
        self.assertIn(status, (0, -15), "broker exit status %r after SIGTERM" % status)
        b.restart_same_port()
        wm2 = du.watermarks(b.bootstrap, "ret-bytes", 2)
        self.assertEqual(wm2, wm, "ret-bytes watermarks changed across a restart")
        self.assertEqual(du.watermarks(b.bootstrap, "ret-ms", 1)[0], (300, 300), "ret-ms watermarks after restart")
        from confluent_kafka.admin import AdminClient
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        self.assertNotIn("ret-del", md.topics, "deleted topic is back after a restart")
        time.sleep(0.5)
        self.assertEqual(self.objects("ret-del"), {}, "objects of the deleted topic reappeared")
        self.assertTrue(b.alive(), "broker died; log tail:\n%s" % b.log_tail())
        self.assertEqual(b.sanitizer_errors(), [])


class RecreateWhileFlusherDown(unittest.TestCase):
    """DeleteTopics and CreateTopics of the same name while the flusher is
    not running (KAFSCALE_SUPERVISE=0: the test runs the flusher itself, by
    PID). The restarted flusher must not take the deleted topic's committed
    segments for the new topic's: acks=all messages of the new topic must be
    stored at their offsets, the old data must not come back."""
    broker = None
    flusher = None

    @classmethod
    def setUpClass(cls):
        # The broker opens its Kafka port once the flusher is up, so the
        # flusher starts first.
        cls.broker = du.Broker(env={"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_SUPERVISE": "0"},
                               name="recreate")
        harness._all_brokers.append(cls.broker)
        cls.flusher_bin = os.environ.get("KAFSCALE_FLUSHER_BIN") or os.path.join(
            os.path.dirname(harness.BROKER_BIN), "kafscale-flusher")
        cls.start_flusher()
        cls.broker.start(timeout=15.0)

    @classmethod
    def tearDownClass(cls):
        cls.stop_flusher()
        if cls.broker is not None:
            cls.broker.stop()

    @classmethod
    def start_flusher(cls):
        cls.flusher_log = open(os.path.join(cls.broker.dir, "flusher.log"), "ab")
        env = dict(os.environ)
        env.update(cls.broker.extra_env)
        env.update({"KAFSCALE_DATA_DIR": cls.broker.data_dir, "KAFSCALE_LOG_LEVEL": "info"})
        cls.flusher = subprocess.Popen([cls.flusher_bin], env=env, stdin=subprocess.DEVNULL,
                                       stdout=cls.flusher_log, stderr=cls.flusher_log, start_new_session=True)

    @classmethod
    def stop_flusher(cls):
        if cls.flusher is not None:
            st = harness.stop_process(cls.flusher)
            cls.flusher_log.close()
            cls.flusher = None
            return st

    def test_delete_recreate_while_flusher_down(self):
        b, topic = self.broker, "recreated"
        self.assertEqual(du.create_topics(b.bootstrap, [(topic, 1, {})]), {})
        r1 = du.ProduceRun(b.bootstrap, topic, 1)
        r1.produce_range(0, 1000)
        self.assertEqual((r1.flush(30), r1.nacked), (0, 1000), "first topic not acknowledged: %r" % r1.errors[:3])
        self.assertEqual(self.stop_flusher(), 0)
        self.assertEqual(du.delete_topics(b.bootstrap, [topic]), {}, "DeleteTopics failed")
        self.assertEqual(du.create_topics(b.bootstrap, [(topic, 1, {})]), {}, "CreateTopics (again) failed")
        self.start_flusher()
        r2 = du.ProduceRun(b.bootstrap, topic, 1)
        r2.produce_range(5000, 5010)
        self.assertEqual(r2.flush(30), 0)
        r1.p = r2.p = None
        self.assertEqual(r2.errors, [])
        wm = du.watermarks(b.bootstrap, topic, 1)[0]
        self.stop_flusher()
        b.stop()
        self.start_flusher()
        b.restart_same_port()
        got = du.consume_all(b.bootstrap, topic, 1, timeout=15)
        problems = du.verify(r2.acked, got)
        if wm != (0, 10):
            problems.insert(0, "watermarks of the new topic after 10 messages: %r" % (wm,))
        old = [(o, du.value_seq(v)) for o, v in got["records"][0] if du.value_seq(v) is not None and du.value_seq(v) < 5000]
        if old:
            problems.append("%d messages of the deleted topic came back, first %r" % (len(old), old[:3]))
        self.assertEqual(problems, [], "\n".join(problems))


if __name__ == "__main__":
    harness.main()
