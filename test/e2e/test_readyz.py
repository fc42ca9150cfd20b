#!/usr/bin/python3
"""/readyz follows the object store: a broker on s3rver is ready; s3rver is
stopped (by PID) while a producer keeps writing (acks=1, so that the flusher
tries to upload and fails); /readyz turns 503 naming the object store, while
/healthz stays 200, GetStatus shows object_store DOWN and kafscale_ready is
0. s3rver is started again on the same port and directory: /readyz is 200
again, and every message produced before, during and after the outage is
there (the broker kept what was not durable).
"""
import time
import unittest

import harness
import durability_util as du
import obs_util as ou
import s3rver_harness

TOPIC = "readyz"
BUCKET = "kafscale-readyz"


class Readyz(unittest.TestCase):
    s3 = None
    broker = None

    @classmethod
    def setUpClass(cls):
        ok, why = s3rver_harness.available()
        if not ok:
            raise RuntimeError(why)
        cls.s3 = s3rver_harness.S3rver(buckets=[BUCKET], name="s3rver-readyz").start()
        cls.port = ou.http_port()
        env = cls.s3.env(BUCKET, KAFSCALE_METRICS_ADDR="127.0.0.1:%d" % cls.port, KAFSCALE_AUTO_CREATE_TOPICS="false",
                         KAFSCALE_S3_MAX_RETRIES=1, KAFSCALE_S3_BACKOFF_MS=50, KAFSCALE_S3_BACKOFF_MAX_MS=200,
                         KAFSCALE_S3_TIMEOUT_MS=3000)
        cls.broker = du.start_broker(env=env, name="readyz")

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            cls.broker.stop()
        if cls.s3 is not None:
            cls.s3.stop()

    def readyz(self):
        st, _, body = ou.http(self.port, "/readyz")
        return st, body.decode()

    def produce(self, p, start, n):
        for i in range(start, start + n):
            p.produce(TOPIC, value=du.make_value(i), partition=0)
        p.poll(0)

    def test_readyz_follows_the_object_store(self):
        b, s3 = self.broker, self.s3
        st, body = self.readyz()
        self.assertEqual((st, body.strip()), (200, "ready"))
        self.assertEqual(du.create_topics(b.bootstrap, [(TOPIC, 1, {})]), {})
        from confluent_kafka import Producer
        errors = []
        acked = []

        def on_delivery(err, m):
            if err is not None:
                errors.append(str(err))
            else:
                acked.append((m.offset(), du.value_seq(m.value())))

        p = Producer({"bootstrap.servers": b.bootstrap, "acks": 1, "linger.ms": 5, "retries": 0,
                      "enable.idempotence": False, "on_delivery": on_delivery, "log_level": 3})
        self.produce(p, 0, 100)
        self.assertEqual(p.flush(20), 0)
        self.assertEqual(du.wait_for(lambda: self.readyz()[0] == 200, 10), True)

        s3.stop()
        t_stop = time.monotonic()
        # Writes keep coming: the flusher's uploads fail and it says so.
        seq = 100

        def not_ready():
            nonlocal seq
            self.produce(p, seq, 10)
            seq += 10
            p.poll(0.05)
            st, body = self.readyz()
            return (st, body) if st == 503 else None
        got = du.wait_for(not_ready, 40, 0.2)
        self.assertTrue(got, "/readyz still 200 %.0f s after s3rver stopped:\n%s"
                        % (time.monotonic() - t_stop, b.log_tail(20)))
        st, body = got
        harness.log("/readyz %d after %.1f s: %r" % (st, time.monotonic() - t_stop, body))
        self.assertIn("object store", body)
        self.assertEqual(ou.http(self.port, "/healthz")[0], 200)
        cst, status = ou.control(self.port, "GetStatus", {"omit_partitions": True})
        self.assertEqual(cst, 200)
        self.assertFalse(status["ready"])
        self.assertIn("object store", status["not_ready_reason"])
        self.assertEqual(status["object_store"]["state"], "COMPONENT_DOWN")
        m = ou.scrape(self.port)
        self.assertEqual(ou.value(m, "kafscale_ready"), 0)
        self.assertEqual(ou.value(m, "kafscale_component_up", component="object_store"), 0)
        self.assertGreater(ou.value(m, "kafscale_unflushed_bytes"), 0)

        s3.start()
        t_up = time.monotonic()

        def ready():
            p.poll(0.05)
            return self.readyz()[0] == 200
        self.assertTrue(du.wait_for(ready, 40, 0.2), "/readyz not 200 %.0f s after s3rver came back: %r\n%s"
                        % (time.monotonic() - t_up, self.readyz(), b.log_tail(20)))
        harness.log("/readyz 200 again %.1f s after s3rver came back" % (time.monotonic() - t_up))
        self.produce(p, seq, 100)
        seq += 100
        self.assertEqual(p.flush(30), 0)
        self.assertEqual(errors, [])
        self.assertEqual(len(acked), seq)
        # The flusher's counters reach the broker in its STATS frames (about
        # once a second): poll briefly instead of racing the next frame.
        deadline = time.monotonic() + 10
        while True:
            m = ou.scrape(self.port)
            if (ou.value(m, "kafscale_flush_upload_errors_total") or 0) > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        self.assertEqual(ou.value(m, "kafscale_ready"), 1)
        self.assertGreater(ou.value(m, "kafscale_flush_upload_errors_total"), 0)
        self.assertGreater(ou.value(m, "kafscale_objstore_errors_total", process="flusher", op="put"), 0)

        # Nothing was lost: everything acknowledged is durable and readable.
        st, fl = ou.control(self.port, "TriggerFlush", {"timeout_ms": 30000})
        self.assertEqual(st, 200)
        self.assertTrue(fl["durable"], fl)
        got = du.consume_all(b.bootstrap, TOPIC, 1, timeout=60)
        self.assertEqual(du.verify({0: acked}, got), [])
        self.assertTrue(b.alive())
        self.assertEqual(b.sanitizer_errors(), [])


if __name__ == "__main__":
    harness.main()
