#!/usr/bin/python3
"""/metrics under load: a producer writes (acks=all) while /metrics is scraped
and every scrape passes `promtool check metrics`; then the data is read back
from the object store (KAFSCALE_TAIL_BYTES=0: nothing durable stays in the
broker's memory, so the fetches go through the read cache). The counters
must move with what happened: requests and latency per API, produce and
fetch bytes and records per topic (records exactly what was acknowledged /
read), flush cycles, segments and bytes, object store PUTs (from the flusher's
STATS frames), cache misses and loads, error codes (a fetch past the end),
and the processes' CPU and memory. /healthz answers 200, unknown paths 404.
"""
import time
import unittest

import harness
import durability_util as du
import obs_util as ou

TOPIC = "metrics-load"
PARTS = 2
N = 20000


class Metrics(unittest.TestCase):
    broker = None

    @classmethod
    def setUpClass(cls):
        cls.port = ou.http_port()
        env = {"KAFSCALE_METRICS_ADDR": "127.0.0.1:%d" % cls.port, "KAFSCALE_AUTO_CREATE_TOPICS": "false",
               "KAFSCALE_TAIL_BYTES": "0", "KAFSCALE_SEGMENT_BYTES": "256k"}
        cls.broker = du.start_broker(env=env, name="metrics")

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            status = cls.broker.stop()
            if status not in (0, -15):
                raise AssertionError("broker exit status %r\n%s" % (status, cls.broker.log_tail()))

    def check(self, text, when):
        ok, out = ou.promtool_check(text)
        if ok is None:
            self.skipTest(out)
        self.assertTrue(ok, "promtool check metrics failed %s:\n%s" % (when, out))

    def test_metrics_move_with_traffic(self):
        b, port = self.broker, self.port
        st, _, body = ou.http(port, "/healthz")
        self.assertEqual((st, body.strip()), (200, b"ok"))
        st, _, _ = ou.http(port, "/nope")
        self.assertEqual(st, 404)
        self.assertEqual(du.create_topics(b.bootstrap, [(TOPIC, PARTS, {})]), {})

        before_text = ou.scrape_text(port)
        self.check(before_text, "before any traffic")
        before = ou.parse(before_text)
        self.assertEqual(ou.value(before, "kafscale_produce_records_total", topic=TOPIC), None)

        run = du.ProduceRun(b.bootstrap, TOPIC, PARTS)
        bg = du.BackgroundProducer(run, rate=8000)
        bg.start()
        scrapes = 0
        try:
            # Scrape during the load, each one checked by promtool.
            deadline = time.monotonic() + 60
            while run.nacked < N and time.monotonic() < deadline:
                text = ou.scrape_text(port)
                self.check(text, "during the load (%d acknowledged)" % run.nacked)
                scrapes += 1
                time.sleep(0.3)
        finally:
            self.assertTrue(bg.stop(), "producer did not stop")
        self.assertIsNone(bg.error)
        self.assertEqual(run.errors, [])
        self.assertGreaterEqual(scrapes, 2, "the load ended before two scrapes")
        acked = run.nacked
        harness.log("%d acknowledged, %d scrapes during the load" % (acked, scrapes))

        # Everything is durable and the flusher's STATS (about every second)
        # caught up: its segments hold at least the bytes produced.
        def flushed():
            m = ou.scrape(port)
            pb = ou.value(m, "kafscale_produce_bytes_total", topic=TOPIC) or 0
            return (ou.value(m, "kafscale_unflushed_bytes") == 0 and pb > 0 and
                    (ou.value(m, "kafscale_flush_bytes_total") or 0) > pb and m)
        m = du.wait_for(flushed, 20, 0.3)
        self.assertTrue(m, "unflushed bytes did not reach 0, or the flusher's STATS did not catch up:\n%s"
                        % ou.scrape_text(port)[-3000:])

        self.assertEqual(ou.value(m, "kafscale_produce_records_total", topic=TOPIC), acked)
        pbytes = ou.value(m, "kafscale_produce_bytes_total", topic=TOPIC)
        self.assertGreater(pbytes, acked * du.VALUE_SIZE)
        self.assertGreater(ou.value(m, "kafscale_requests_total", api="Produce"), 0)
        self.assertEqual(ou.value(m, "kafscale_request_duration_seconds_count", api="Produce"),
                         ou.value(m, "kafscale_requests_total", api="Produce"))
        self.assertGreater(ou.value(m, "kafscale_request_duration_seconds_sum", api="Produce"), 0)
        self.assertGreater(ou.value(m, "kafscale_flush_cycles_total"), 0)
        self.assertGreater(ou.value(m, "kafscale_flush_bytes_total"), pbytes)  # segments add headers
        self.assertGreater(ou.value(m, "kafscale_flush_segment_bytes_count"), 0)
        self.assertGreater(ou.value(m, "kafscale_flush_duration_seconds_count"), 0)
        puts = ou.value(m, "kafscale_objstore_operations_total", process="flusher", op="put")
        self.assertGreaterEqual(puts, 2 * ou.value(m, "kafscale_flush_segments_total"))  # .kfs + .index
        self.assertGreater(ou.value(m, "kafscale_objstore_bytes_total", process="flusher", op="put"), pbytes)
        self.assertEqual(ou.value(m, "kafscale_objstore_duration_seconds_count", process="flusher", op="put"), puts)
        self.assertEqual(ou.value(m, "kafscale_component_up", component="flusher"), 1)
        self.assertEqual(ou.value(m, "kafscale_ready"), 1)
        self.assertEqual(ou.value(m, "kafscale_partitions"), PARTS)
        for proc in ("broker", "flusher"):
            self.assertGreater(ou.value(m, "kafscale_process_cpu_seconds_total", process=proc), 0, proc)
            self.assertGreater(ou.value(m, "kafscale_process_resident_memory_bytes", process=proc), 1 << 20, proc)
            self.assertGreater(ou.value(m, "kafscale_process_start_time_seconds", process=proc), 1e9, proc)
        cache0 = ou.value(m, "kafscale_cache_loads_total", cache="broker") or 0

        # Read it all back: from the object store, through the read cache.
        got = du.consume_all(b.bootstrap, TOPIC, PARTS, timeout=60)
        self.assertEqual(du.verify(run.acked, got), [])
        # A fetch past the end answers OFFSET_OUT_OF_RANGE, counted per code.
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "metrics-oor", "auto.offset.reset": "error",
                      "enable.auto.commit": False, "log_level": 0})
        try:
            c.assign([TopicPartition(TOPIC, 0, 10 ** 9)])
            end = time.monotonic() + 10
            while time.monotonic() < end:
                msg = c.poll(0.2)
                if msg is not None and msg.error():
                    break
        finally:
            c.close()

        after_text = ou.scrape_text(port)
        self.check(after_text, "after the read-back")
        a = ou.parse(after_text)
        self.assertGreaterEqual(ou.value(a, "kafscale_fetch_records_total", topic=TOPIC), acked)
        self.assertGreaterEqual(ou.value(a, "kafscale_fetch_bytes_total", topic=TOPIC), pbytes)
        self.assertGreater(ou.value(a, "kafscale_requests_total", api="Fetch"), 0)
        self.assertGreater(ou.value(a, "kafscale_cache_misses_total", cache="broker"), 0)
        self.assertGreater(ou.value(a, "kafscale_cache_loads_total", cache="broker"), cache0)
        self.assertGreater(ou.value(a, "kafscale_cache_load_bytes_total", cache="broker"), 0)
        self.assertGreater(ou.value(a, "kafscale_cache_hits_total", cache="broker"), 0)
        self.assertGreater(ou.value(a, "kafscale_objstore_operations_total", process="broker", op="get"), 0)
        self.assertGreaterEqual(ou.value(a, "kafscale_request_errors_total", api="Fetch",
                                         error="OFFSET_OUT_OF_RANGE") or 0, 1)
        self.assertGreater(ou.value(a, "kafscale_connections"), -1)
        # Counters never went backwards.
        for key, v in m.items():
            if key[0].endswith("_total") and key in a:
                self.assertGreaterEqual(a[key], v, key)
        self.assertTrue(b.alive())
        self.assertEqual(b.sanitizer_errors(), [])


if __name__ == "__main__":
    harness.main()
