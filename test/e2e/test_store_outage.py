#!/usr/bin/python3
"""Object-store outage: a producer writes continuously (acks=all, retries=0,
~5,000 messages/s over 4 partitions) to a broker on s3rver; s3rver is
stopped (by PID) for 10 s and started again on the same port and directory.
  - while the store is down nothing new is acknowledged (acks=all means
    durable in the store); producers only wait or get retriable errors;
  - the flusher reports the failure and the recovery (broker log);
  - after the restart the backlog drains and new messages are acknowledged
    within a bounded time;
  - read-back: every acknowledged message exactly once at its offset,
    contiguous offsets, order (durability_util.verify).
"""
import time
import unittest

import harness
import durability_util as du
import s3rver_harness

PARTS = 4
TOPIC = "outage"
BUCKET = "kafscale-outage"
RATE = 5000
DOWN_S = 10.0
RECOVER_S = 40.0
RETRIABLE = ("REQUEST_TIMED_OUT", "_MSG_TIMED_OUT", "KAFKA_STORAGE_ERROR", "_TIMED_OUT", "NOT_ENOUGH_REPLICAS")


class StoreOutage(unittest.TestCase):
    s3 = None
    broker = None

    @classmethod
    def setUpClass(cls):
        ok, why = s3rver_harness.available()
        if not ok:
            raise RuntimeError(why)
        cls.s3 = s3rver_harness.S3rver(buckets=[BUCKET], name="s3rver-outage").start()
        # A small unflushed bound: the outage also exercises back-pressure
        # (the broker stops reading producers, then resumes).
        env = cls.s3.env(BUCKET, KAFSCALE_AUTO_CREATE_TOPICS="false", KAFSCALE_MAX_UNFLUSHED_BYTES=2 << 20,
                         KAFSCALE_TAIL_BYTES=0)  # the read-back reads the bucket
        cls.broker = du.start_broker(env=env, name="outage")

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            cls.broker.stop()
        if cls.s3 is not None:
            cls.s3.stop()

    def test_outage(self):
        b, s3 = self.broker, self.s3
        self.assertEqual(du.create_topics(b.bootstrap, [(TOPIC, PARTS, {})]), {}, "CreateTopics failed")
        run = du.ProduceRun(b.bootstrap, TOPIC, PARTS, extra_conf={"message.timeout.ms": 90000,
                                                                   "request.timeout.ms": 60000})
        bg = du.BackgroundProducer(run, rate=RATE)
        bg.start()
        try:
            self.assertTrue(du.wait_for(lambda: run.nacked >= RATE, 20),
                            "only %d acknowledged before the outage; errors %r" % (run.nacked, run.errors[:5]))
            time.sleep(1.0)
            before = run.nacked
            t_stop = time.monotonic()
            s3.stop()
            harness.log("s3rver stopped with %d acknowledged, %d produced" % (before, run.produced))
            time.sleep(2.0)
            acked_2s = run.nacked
            time.sleep(max(0.0, DOWN_S - (time.monotonic() - t_stop)))
            acked_down = run.nacked
            produced_down = run.produced
            errors_down = len(run.errors)
            s3.start()
            t_up = time.monotonic()
            harness.log("s3rver back after %.1fs: %d acknowledged (%d in the first 2 s of the outage), "
                        "%d produced, %d errors" % (t_up - t_stop, acked_down, acked_2s - before, produced_down,
                                                    errors_down))
            self.assertTrue(b.alive(), "broker died during the outage; log tail:\n%s" % b.log_tail())
            self.assertEqual(acked_down, acked_2s,
                             "%d messages acknowledged while the object store was down" % (acked_down - acked_2s))
            # The backlog drains and new messages keep being acknowledged.
            drained = du.wait_for(lambda: run.nacked + len(run.errors) >= produced_down, RECOVER_S)
            t_drained = time.monotonic() - t_up
            self.assertTrue(drained, "%.0fs after the store came back only %d of the %d messages produced meanwhile "
                            "are acknowledged (%d errors); log tail:\n%s"
                            % (RECOVER_S, run.nacked, produced_down, len(run.errors), b.log_tail(30)))
            mark = run.nacked
            more = du.wait_for(lambda: run.nacked >= mark + RATE, 15)
            self.assertTrue(more, "throughput did not return: %d acknowledged in 15 s after the backlog"
                            % (run.nacked - mark))
            harness.log("backlog drained %.1fs after the restart; now %d acknowledged" % (t_drained, run.nacked))
        finally:
            stopped = bg.stop()
        self.assertTrue(stopped, "producer thread did not finish")
        self.assertIsNone(bg.error, "producer thread failed: %r" % bg.error)
        self.assertEqual(bg.left, 0, "%d delivery reports missing" % (bg.left or -1))
        bad = [e for e in run.errors if not any(r in e[2] for r in RETRIABLE)]
        self.assertEqual(bad, [], "non-retriable delivery errors during the outage")
        harness.log("total %d produced, %d acknowledged, %d retriable errors %r"
                    % (run.produced, run.nacked, len(run.errors), run.errors[:3]))

        text = b.log_text()
        self.assertIn("object store is failing", text, "the outage was not reported")
        self.assertRegex(text, r"object store is (reachable|healthy) again", "the recovery was not reported")

        got = du.consume_all(b.bootstrap, TOPIC, PARTS, timeout=60)
        harness.log("read back: %s" % du.summary(run.acked, got))
        problems = du.verify(run.acked, got)
        self.assertEqual(problems, [], "\n".join(problems))
        self.assertTrue(b.alive(), "broker died; log tail:\n%s" % b.log_tail())
        self.assertEqual(b.sanitizer_errors(), [])


if __name__ == "__main__":
    harness.main()
