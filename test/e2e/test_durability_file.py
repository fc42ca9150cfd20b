#!/usr/bin/python3
"""Crash durability on the file object store: 1,000,000 small messages over
8 partitions, acks=all, retries=0 (an acknowledged message was written
exactly once); mid-stream every process of the node (the flusher, found as
the broker's child by PID, and the broker) gets SIGKILL; the broker is
restarted on the same data dir and port and the same producer carries on.
Then everything is read back from the beginning with assign():
  - every acknowledged message is there exactly once, at the offset its
    delivery report gave (offsets from before the crash stay valid),
  - offsets are contiguous up to the high watermark, per-partition order
    holds, no value appears twice or corrupt,
  - the restarted broker logged that it restored its metadata.
Unacknowledged messages may or may not be there.

    KAFSCALE_DUR_N   message count (default 1000000)
"""
import os
import time
import unittest

import harness
import durability_util as du

N = int(os.environ.get("KAFSCALE_DUR_N", "1000000"))
PARTS = 8
TOPIC = "dur-file"
KILL_AT = int(N * 0.4)          # kill when this many were produced ...
KILL_MIN_ACKED = int(N * 0.15)  # ... and at least this many acknowledged


class DurabilityFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # KAFSCALE_TAIL_BYTES=0: durable data leaves the broker's memory, so
        # the read-back reads what is in the store.
        cls.broker = du.start_broker(env={"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_TAIL_BYTES": "0"},
                                     name="dur-file")

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            cls.broker.stop()

    def test_kill9_node_mid_stream(self):
        b = self.broker
        errs = du.create_topics(b.bootstrap, [(TOPIC, PARTS, {})])
        self.assertEqual(errs, {}, "CreateTopics failed")
        flusher1 = b.wait_flusher(10)
        self.assertIsNotNone(flusher1, "no kafscale-flusher child of broker pid %d" % b.pid)

        run = du.ProduceRun(b.bootstrap, TOPIC, PARTS)
        state = {"killed": False}
        t_start = time.monotonic()

        def on_progress(seq):
            if state["killed"] or seq < KILL_AT:
                return
            ok = run.wait_acked(KILL_MIN_ACKED, 60)
            self.assertTrue(ok, "only %d messages acknowledged before the kill (want %d); errors %r"
                            % (run.nacked, KILL_MIN_ACKED, run.errors[:5]))
            in_flight = run.produced - run.nacked - len(run.errors)
            fl = du.kill9_node(b)
            self.assertTrue(fl, "found no flusher to kill")
            state.update(killed=True, seq=seq, acked=run.nacked, errors=len(run.errors), in_flight=in_flight,
                         t=time.monotonic())
            harness.log("killed at seq %d: %d acked, %d in flight" % (seq, run.nacked, in_flight))
            run.poll(0.3)  # let the producer notice
            b.restart_same_port()
            state["t_restart"] = time.monotonic() - state["t"]

        run.produce_range(0, N, deadline=time.monotonic() + 150, on_progress=on_progress)
        left = run.flush(90)
        run.p = None
        t_prod = time.monotonic() - t_start
        self.assertEqual(left, 0, "%d delivery reports still missing after flush" % left)
        self.assertTrue(state["killed"], "the node was never killed")
        self.assertGreater(state["in_flight"], 0, "no message was in flight when the node was killed")
        after = run.nacked - state["acked"]
        produced_after = N - state["seq"]
        harness.log("produced %d in %.1fs: %d acked (%d after the restart), %d errors, restart took %.1fs; "
                    "first errors %r" % (N, t_prod, run.nacked, after, len(run.errors), state["t_restart"],
                                         run.errors[:3]))
        self.assertEqual(run.nacked + len(run.errors), N)
        self.assertGreaterEqual(after, produced_after // 2,
                                "producing did not resume after the restart: %d of %d acknowledged; errors %r"
                                % (after, produced_after, run.errors[-5:]))

        # The restarted broker restored its topics and committed segments.
        text = b.log_text()
        restart_log = text[text.rfind("=== restart"):]
        self.assertIn("metadata: restored", restart_log,
                      "restarted broker did not log its recovery; log tail:\n%s" % b.log_tail(40))
        self.assertIsNotNone(b.wait_flusher(5), "restarted broker has no flusher")

        t0 = time.monotonic()
        got = du.consume_all(b.bootstrap, TOPIC, PARTS, timeout=100)
        harness.log("read back in %.1fs: %s" % (time.monotonic() - t0, du.summary(run.acked, got)))
        for q in range(PARTS):
            self.assertEqual(got["starts"][q], 0, "partition %d: earliest offset %d, want 0" % (q, got["starts"][q]))
        problems = du.verify(run.acked, got)
        self.assertEqual(problems, [], "\n".join(problems))

        # The store holds exactly the committed segments: contiguous, paired
        # with their indexes, covering [earliest, high watermark) (the crashed
        # cycle's uploads were cleaned up).
        wm = {q: (got["starts"][q], got["ends"][q]) for q in range(PARTS)}
        keys = du.list_file_objects(b.data_dir, "default/%s/" % TOPIC)
        chain = du.check_chain(keys, TOPIC, wm, lambda k: du.file_seg_bounds(b.data_dir, k))
        self.assertEqual(chain, [], "segments in the file store:\n" + "\n".join(chain[:20]))
        temps = du.list_temp_files(b.data_dir)
        if temps:
            harness.log("note: %d temp upload file(s) left in the store after the crash: %r" % (len(temps), temps[:3]))
        self.assertTrue(b.alive(), "broker died; log tail:\n%s" % b.log_tail())
        status = b.stop()
        self.assertIn(status, (0, -15), "broker exit status %r after SIGTERM; log tail:\n%s" % (status, b.log_tail()))
        self.assertEqual(b.sanitizer_errors(), [])


if __name__ == "__main__":
    harness.main()
