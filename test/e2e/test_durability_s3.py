#!/usr/bin/python3
"""Crash durability on S3 (s3rver on loopback): 200,000 small messages over 4
partitions, acks=all, retries=0. While producing:
  1. kill -9 of the flusher alone (the broker's child, by PID), five times:
     the broker must start a new flusher and hand it every batch that was
     not durable; producing goes on and no message fails meanwhile (the
     broker still holds them all); the new flusher must not write again
     what its predecessor committed;
  2. later kill -9 of every process of the node (flusher + broker); the
     broker is restarted on the same port, data dir (metadata journals) and
     bucket; producing goes on.
Then everything is read back from the beginning: every acknowledged message
exactly once at its acknowledged offset, contiguous offsets, per-partition
order (see durability_util.verify); the restarted broker logged that it
restored its metadata; the bucket holds the topic's segments.

    KAFSCALE_DUR_S3_N   message count (default 200000)
"""
import os
import time
import unittest

import harness
import durability_util as du
import s3rver_harness

N = int(os.environ.get("KAFSCALE_DUR_S3_N", "200000"))
PARTS = 4
TOPIC = "dur-s3"
BUCKET = "kafscale-dur"
KILL_FLUSHER_AT = [int(N * f) for f in (0.1, 0.2, 0.3, 0.4, 0.5)]   # flusher alone, 5 times
KILL_NODE_AT = int(N * 0.65)


class DurabilityS3(unittest.TestCase):
    s3 = None
    broker = None

    @classmethod
    def setUpClass(cls):
        ok, why = s3rver_harness.available()
        if not ok:
            raise RuntimeError(why)
        cls.s3 = s3rver_harness.S3rver(buckets=[BUCKET], name="s3rver-dur").start()
        env = cls.s3.env(BUCKET)
        env["KAFSCALE_AUTO_CREATE_TOPICS"] = "false"
        env["KAFSCALE_TAIL_BYTES"] = "0"   # the read-back reads the bucket
        cls.broker = du.start_broker(env=env, name="dur-s3")

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            cls.broker.stop()
        if cls.s3 is not None:
            cls.s3.stop()

    def test_kill9_flusher_then_node(self):
        b = self.broker
        errs = du.create_topics(b.bootstrap, [(TOPIC, PARTS, {})])
        self.assertEqual(errs, {}, "CreateTopics failed")
        self.assertIsNotNone(b.wait_flusher(10), "no kafscale-flusher child of broker pid %d" % b.pid)

        run = du.ProduceRun(b.bootstrap, TOPIC, PARTS)
        st = {}
        t_start = time.monotonic()

        def on_progress(seq):
            if st["flusher_kills"] < len(KILL_FLUSHER_AT) and seq >= KILL_FLUSHER_AT[st["flusher_kills"]]:
                if not st["flusher_kills"]:
                    self.assertTrue(run.wait_acked(N // 20, 60), "only %d acknowledged before killing the flusher; "
                                    "errors %r" % (run.nacked, run.errors[:5]))
                old = b.flusher_pids()
                self.assertEqual(len(old), 1, "want exactly one flusher child, got %r" % old)
                errors0, produced0 = len(run.errors), run.produced
                du.kill9(old[0])
                st["flusher_kills"] += 1
                st["old_flushers"].append(old[0])
                harness.log("kill -9 flusher pid %d at seq %d (%d acked)" % (old[0], seq, run.nacked))
                new = b.wait_flusher(15, not_pid=old[0])
                self.assertIsNotNone(new, "the broker did not start a new flusher within 15 s; log tail:\n%s"
                                     % b.log_tail(30))
                self.assertTrue(b.alive(), "broker died with its flusher; log tail:\n%s" % b.log_tail(30))
                # Everything produced before the kill gets acknowledged: the
                # broker holds what was not durable and hands it over again.
                ok = run.wait_acked(produced0 - errors0, 40)
                self.assertTrue(ok, "after the flusher restart only %d of %d acknowledged; errors %r"
                                % (run.nacked, produced0, run.errors[-5:]))
                self.assertEqual(len(run.errors), st["errors_before_flusher_kills"],
                                 "messages failed after the flusher alone was killed (the broker holds them): %r"
                                 % run.errors[st["errors_before_flusher_kills"]:][:5])
            if "node_killed" not in st and seq >= KILL_NODE_AT:
                self.assertEqual(st["flusher_kills"], len(KILL_FLUSHER_AT))
                acked = run.nacked
                self.assertTrue(run.wait_acked(acked + 1, 30),
                                "producing did not go on after the flusher restarts: %d acknowledged" % run.nacked)
                fl = du.kill9_node(b)
                self.assertTrue(fl, "found no flusher to kill")
                st.update(node_killed=seq, acked2=run.nacked)
                harness.log("kill -9 node at seq %d (%d acked)" % (seq, run.nacked))
                run.poll(0.3)
                b.restart_same_port()

        st.update(flusher_kills=0, old_flushers=[], errors_before_flusher_kills=0)
        run.produce_range(0, N, deadline=time.monotonic() + 120, on_progress=on_progress)
        left = run.flush(90)
        run.p = None
        harness.log("produced %d in %.1fs: %d acked, %d errors; first errors %r"
                    % (N, time.monotonic() - t_start, run.nacked, len(run.errors), run.errors[:3]))
        self.assertEqual(left, 0, "%d delivery reports still missing after flush" % left)
        self.assertIn("node_killed", st, "the node was never killed")
        after = run.nacked - st["acked2"]
        self.assertGreaterEqual(after, (N - st["node_killed"]) // 2,
                                "producing did not resume after the restart: %d acknowledged; errors %r"
                                % (after, run.errors[-5:]))

        text = b.log_text()
        for pid in st["old_flushers"]:
            self.assertRegex(text, r"kafscale-flusher \(pid %d\) killed by signal 9" % pid,
                             "broker did not report its flusher's death")
        self.assertIn("metadata: restored", text[text.rfind("=== restart"):],
                      "restarted broker did not log its recovery; log tail:\n%s" % b.log_tail(40))

        got = du.consume_all(b.bootstrap, TOPIC, PARTS, timeout=90)
        harness.log("read back: %s" % du.summary(run.acked, got))
        problems = du.verify(run.acked, got)
        # (A restarted flusher that re-commits offsets its predecessor had
        # committed logs "straddles committed end"; two segments with one base
        # offset then share one object key.)
        hints = [l for l in b.log_text().splitlines() if "straddles" in l]
        self.assertEqual(problems, [], "\n".join(problems + hints))

        # The bucket holds exactly the committed segments: contiguous, paired
        # with their indexes, covering [earliest, high watermark) (uploads of
        # the killed flushers' cycles were cleaned up).
        client = self.s3.boto3_client()
        keys = du.list_bucket(client, BUCKET)
        wm = {q: (got["starts"][q], got["ends"][q]) for q in range(PARTS)}
        chain = du.check_chain(keys, TOPIC, wm, lambda k: du.s3_seg_bounds(client, BUCKET, k))
        client.close()
        self.assertEqual(chain, [], "segments in the bucket:\n" + "\n".join(chain[:20]))
        other = [k for k in keys if not k.startswith("default/%s/" % TOPIC)]
        self.assertEqual(other, [], "unexpected keys in the bucket")
        self.assertTrue(b.alive(), "broker died; log tail:\n%s" % b.log_tail())
        status = b.stop()
        self.assertIn(status, (0, -15), "broker exit status %r after SIGTERM" % status)
        self.assertEqual(b.sanitizer_errors(), [])


class BrokerCrashDuringOutage(unittest.TestCase):
    """kill -9 of the broker alone while the object store is down: its
    flusher (SIGTERM via PDEATHSIG) keeps trying to flush the batches it
    holds; the broker is restarted at once and takes new acks=all produce.
    When the store comes back, the old flusher must not commit data at
    offsets the new broker has meanwhile given to other (acknowledged)
    messages: every acknowledged message must be readable at its offset,
    also after a restart."""
    s3 = None
    broker = None

    @classmethod
    def setUpClass(cls):
        ok, why = s3rver_harness.available()
        if not ok:
            raise RuntimeError(why)
        cls.s3 = s3rver_harness.S3rver(buckets=[BUCKET], name="s3rver-crash-outage").start()
        cls.broker = du.start_broker(env=cls.s3.env(BUCKET, KAFSCALE_AUTO_CREATE_TOPICS="false"),
                                     name="crash-outage")

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            cls.broker.stop()
        if cls.s3 is not None:
            cls.s3.stop()

    def test_kill9_broker_alone_while_store_down(self):
        b, s3, topic = self.broker, self.s3, "crash-outage"
        self.assertEqual(du.create_topics(b.bootstrap, [(topic, 1, {})]), {}, "CreateTopics failed")
        r0 = du.ProduceRun(b.bootstrap, topic, 1)
        r0.produce_range(0, 100)
        self.assertEqual((r0.flush(30), r0.nacked), (0, 100), "phase 0 not acknowledged: %r" % r0.errors[:3])
        s3.stop()
        # acks=1: accepted into the broker and handed to the flusher, which
        # cannot upload them now.
        r1 = du.ProduceRun(b.bootstrap, topic, 1, extra_conf={"acks": "1"})
        r1.produce_range(1000, 2000)
        self.assertEqual(r1.flush(30), 0)
        time.sleep(0.3)
        old = b.flusher_pids()
        du.kill9(b.pid)
        b.proc.wait(10)
        b.restart_same_port()
        wm0 = du.watermarks(b.bootstrap, topic, 1)[0]
        time.sleep(1.0)
        s3.start()
        r2 = du.ProduceRun(b.bootstrap, topic, 1)
        r2.produce_range(5000, 5200)
        self.assertEqual(r2.flush(60), 0)
        harness.log("old flusher %r; watermarks after the restart %r; phase 2: %d acked at offsets %r..%r, "
                    "errors %r" % (old, wm0, r2.nacked, r2.acked[0][:1], r2.acked[0][-1:], r2.errors[:2]))
        for r in (r0, r1, r2):
            r.p = None
        acked = du.merge_acked(r0, r2)
        got = du.consume_all(b.bootstrap, topic, 1, timeout=8)
        problems = ["before a restart: " + x for x in du.verify(acked, got)]
        b.stop()
        b.restart_same_port()
        got = du.consume_all(b.bootstrap, topic, 1, timeout=15)
        problems += ["after a graceful restart: " + x for x in du.verify(acked, got)]
        self.assertEqual(problems, [], "acknowledged messages lost or replaced (%s):\n%s"
                         % (du.summary(acked, got), "\n".join(problems)))


if __name__ == "__main__":
    harness.main()
