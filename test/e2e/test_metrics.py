#!/usr/bin/python3
"""/metrics under load: a producer writes (acks=all) while /metrics is scraped
and every scrape passes `promtool check metrics`; then the data is read back
from the object store (KAFSCALE_TAIL_BYTES=0: nothing durable stays in the
broker's memory, so the fetches go through the read cache and the shm ring
of kafscale-cached). The counters must move with what happened:
  - requests and latency per API (every API of the dispatch table has its
    series from the start), and error codes per API and code for every API,
    counted where responses are encoded: CreateTopics, DeleteTopics,
    Metadata, ListOffsets and Heartbeat refusals exactly once each, a fetch
    past the end, a fetch of a segment gone from the store;
  - produce and fetch bytes and records per topic (records exactly what was
    acknowledged / read), flush cycles, segments and bytes, object store PUTs
    (from the flusher's STATS frames);
  - object store GETs per process (cached's from its METRICS frames, the
    broker's own): operations, bytes, latency (one observation per GET) and
    errors (a segment deleted behind the node's back);
  - the broker's read cache and the shm ring (read from the ring's header at
    scrape time): hits, misses, loads, evictions (a 4 MiB ring that a 6 MiB
    read wraps), occupancy within capacity, load errors and reads that fell
    back to the store;
  - CPU and memory of the broker, the flusher and cached.
A second broker without cached (KAFSCALE_CACHED=false) shows its own store
GETs with latency. /healthz answers 200, unknown paths 404.
"""
import os
import re
import time
import unittest

import harness
import cached_util as cu
import durability_util as du
import kproto as kp
import obs_util as ou

TOPIC = "metrics-load"
PARTS = 2
N = 20000
MIB = 1 << 20
KAFKA_STORAGE_ERROR = 56


def dispatch_api_names():
    """The API names of broker/dispatch.c's table (the api label's values)."""
    with open(os.path.join(harness.REPO, "broker", "dispatch.c")) as f:
        return re.findall(r'\{KAPI_\w+,\s*\d+,\s*\d+,\s*(?:\d+|KV_MAX),\s*"(\w+)"', f.read())


def refused_requests(b):
    """One refused request each of CreateTopics (the topic exists), DeleteTopics
    and Metadata (no such topic), ListOffsets (no such partition) and
    Heartbeat (no such group), sent raw; returns the error codes answered."""
    got = {}
    with kp.Conn(b.host, b.port, timeout=15) as c:
        r = kp.Reader(c.call(kp.API_CREATE_TOPICS, 0, 1, kp.create_topics_v0_body([(TOPIC, PARTS)])))
        r.i32()
        r.string()
        got["CreateTopics"] = r.i16()
        r = kp.Reader(c.call(kp.API_DELETE_TOPICS, 0, 2, kp.array([kp.string("metrics-no-such")]) + kp.i32(5000)))
        r.i32()
        r.string()
        got["DeleteTopics"] = r.i16()
        _, _, topics = kp.parse_metadata_v1_response(c.call(kp.API_METADATA, 1, 3,
                                                            kp.metadata_v1_body(["metrics-no-such"])))
        got["Metadata"] = topics[0][0]
        body = kp.i32(-1) + kp.array([kp.string(TOPIC) + kp.array([kp.i32(99) + kp.i64(-1)])])
        r = kp.Reader(c.call(kp.API_LIST_OFFSETS, 1, 4, body))
        r.i32()
        r.string()
        r.i32()
        r.i32()
        got["ListOffsets"] = r.i16()
        r = kp.Reader(c.call(12, 0, 5, kp.string("metrics-no-group") + kp.i32(1) + kp.string("m-1")))
        got["Heartbeat"] = r.i16()
    return got


class MetricsNode(unittest.TestCase):
    """One broker per class, /metrics on a free port, ENV added to its env."""
    ENV = {}
    NAME = "metrics"
    broker = None

    @classmethod
    def setUpClass(cls):
        cls.port = ou.http_port()
        env = {"KAFSCALE_METRICS_ADDR": "127.0.0.1:%d" % cls.port, "KAFSCALE_AUTO_CREATE_TOPICS": "false",
               "KAFSCALE_TAIL_BYTES": "0"}
        env.update(cls.ENV)
        cls.broker = du.start_broker(env=env, name=cls.NAME)

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


class Metrics(MetricsNode):
    ENV = {"KAFSCALE_SEGMENT_BYTES": "256k", "KAFSCALE_CACHE_BYTES": "4m"}

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
        # Every API has its request counter and latency from the start.
        apis = dispatch_api_names()
        self.assertGreaterEqual(len(apis), 25)
        for api in apis:
            self.assertIsNotNone(ou.value(before, "kafscale_requests_total", api=api), api)
            self.assertIsNotNone(ou.value(before, "kafscale_request_duration_seconds_count", api=api), api)

        # Errors are counted for every API, per code, where responses are
        # encoded: one refusal each, counted exactly once.
        got = refused_requests(b)
        self.assertEqual(got, {"CreateTopics": 36, "DeleteTopics": 3, "Metadata": 3, "ListOffsets": 3,
                               "Heartbeat": got["Heartbeat"]})
        self.assertNotEqual(got["Heartbeat"], 0)
        m = ou.scrape(port)
        for api, code in (("CreateTopics", "TOPIC_ALREADY_EXISTS"), ("DeleteTopics", "UNKNOWN_TOPIC_OR_PARTITION"),
                          ("Metadata", "UNKNOWN_TOPIC_OR_PARTITION"), ("ListOffsets", "UNKNOWN_TOPIC_OR_PARTITION")):
            self.assertEqual(ou.value(m, "kafscale_request_errors_total", api=api, error=code), 1, (api, code))
        self.assertEqual(ou.total(m, "kafscale_request_errors_total", api="Heartbeat"), 1)
        self.assertEqual(ou.value(m, "kafscale_requests_total", api="Heartbeat"), 1)

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
        self.assertEqual(ou.value(m, "kafscale_component_up", component="cached"), 1)
        self.assertGreaterEqual(ou.value(m, "kafscale_process_cpu_seconds_total", process="cached"), 0)
        self.assertGreater(ou.value(m, "kafscale_process_resident_memory_bytes", process="cached"), 1 << 20)
        self.assertGreater(ou.value(m, "kafscale_process_start_time_seconds", process="cached"), 1e9)
        # The ring, read at scrape time: nothing read yet, its size known.
        ring_cap = ou.value(m, "kafscale_cache_capacity_bytes", cache="shm")
        self.assertTrue(3 * MIB < ring_cap <= 4 * MIB, ring_cap)
        self.assertEqual(ou.value(m, "kafscale_cache_loads_total", cache="shm"), 0)
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
        self.assertGreaterEqual(ou.value(a, "kafscale_request_errors_total", api="Fetch",
                                         error="OFFSET_OUT_OF_RANGE") or 0, 1)
        self.assertGreater(ou.value(a, "kafscale_connections"), -1)
        # The segments came through cached: its GETs (METRICS frames, about
        # every second) and the ring's counters (its header).
        a = du.wait_for(lambda: (lambda x: (ou.value(x, "kafscale_objstore_operations_total", process="cached",
                                                      op="get") or 0) > 0 and x)(ou.scrape(port)), 10, 0.3)
        self.assertTrue(a, "no GETs of cached on /metrics")
        gets = ou.value(a, "kafscale_objstore_operations_total", process="cached", op="get")
        self.assertEqual(ou.value(a, "kafscale_objstore_duration_seconds_count", process="cached", op="get"), gets)
        self.assertGreater(ou.value(a, "kafscale_objstore_duration_seconds_sum", process="cached", op="get"), 0)
        self.assertGreater(ou.value(a, "kafscale_objstore_bytes_total", process="cached", op="get"), pbytes)
        self.assertEqual(ou.value(a, "kafscale_objstore_errors_total", process="cached", op="get") or 0, 0)
        self.assertIsNotNone(ou.value(a, "kafscale_objstore_retries_total", process="cached"))
        self.assertGreater(ou.value(a, "kafscale_cache_loads_total", cache="shm"), 0)
        self.assertGreater(ou.value(a, "kafscale_cache_load_bytes_total", cache="shm"), pbytes)
        self.assertGreater(ou.value(a, "kafscale_cache_misses_total", cache="shm"), 0)
        self.assertGreater(ou.value(a, "kafscale_cache_entries", cache="shm"), 0)
        self.assertTrue(0 < ou.value(a, "kafscale_cache_bytes", cache="shm") <= ring_cap)

        # 6 MiB more read through the 4 MiB ring: it wraps (evictions), read
        # ahead of the consumer (hits).
        self.assertEqual(du.create_topics(b.bootstrap, [("metrics-evict", 1, {})]), {})
        n_evict = cu.produce(b.bootstrap, "metrics-evict", 6 * MIB, acks="1")
        cu.consume(self, b.bootstrap, "metrics-evict", n_evict, "metrics-evict")
        time.sleep(0.6)  # the broker reports its ring hits to cached every 250 ms
        e = ou.scrape(port)
        self.assertGreater(ou.value(e, "kafscale_cache_evictions_total", cache="shm"), 0)
        self.assertGreater(ou.value(e, "kafscale_cache_hits_total", cache="shm"), 0)
        self.assertGreater(ou.value(e, "kafscale_cache_loads_total", cache="shm"),
                           ou.value(a, "kafscale_cache_loads_total", cache="shm"))
        self.assertTrue(0 < ou.value(e, "kafscale_cache_bytes", cache="shm") <= ring_cap)
        self.assertGreater(ou.value(e, "kafscale_process_cpu_seconds_total", process="cached"), 0)

        # A segment deleted behind the node's back: cached's GET fails, the
        # broker reads the store itself, fails too, and the fetch answers
        # KAFKA_STORAGE_ERROR: errors per process and operation.
        self.assertEqual(du.create_topics(b.bootstrap, [("metrics-gone", 1, {"segment.bytes": "16384"})]), {})
        cu.produce(b.bootstrap, "metrics-gone", 64 << 10)
        kfs = sorted(k for k in du.list_file_objects(b.data_dir, "default/metrics-gone/0/") if k.endswith(".kfs"))
        self.assertGreaterEqual(len(kfs), 1, kfs)
        os.unlink(os.path.join(b.data_dir, "objects", kfs[0]))
        err = None
        with kp.Conn(b.host, b.port, timeout=15) as conn:
            deadline = time.monotonic() + 20
            while err != KAFKA_STORAGE_ERROR and time.monotonic() < deadline:
                err, _, _ = cu.raw_fetch(conn, "metrics-gone", 0, 64 << 10)
        self.assertEqual(err, KAFKA_STORAGE_ERROR)
        g = du.wait_for(lambda: (lambda x: (ou.value(x, "kafscale_objstore_errors_total", process="cached",
                                                      op="get") or 0) > 0 and x)(ou.scrape(port)), 10, 0.3)
        self.assertTrue(g, "cached's failed GET never showed on /metrics")
        self.assertGreater(ou.value(g, "kafscale_cache_load_errors_total", cache="shm"), 0)
        self.assertGreater(ou.value(g, "kafscale_cache_fallbacks_total", cache="shm"), 0)
        bget = ou.value(g, "kafscale_objstore_operations_total", process="broker", op="get")
        self.assertGreaterEqual(bget, 1)
        self.assertGreaterEqual(ou.value(g, "kafscale_objstore_errors_total", process="broker", op="get"), 1)
        self.assertEqual(ou.value(g, "kafscale_objstore_duration_seconds_count", process="broker", op="get"), bget)
        self.assertGreaterEqual(ou.value(g, "kafscale_request_errors_total", api="Fetch",
                                         error="KAFKA_STORAGE_ERROR"), 1)
        self.check(ou.scrape_text(port), "after the store errors")

        # Counters never went backwards.
        for key, v in m.items():
            if key[0].endswith("_total") and key in g:
                self.assertGreaterEqual(g[key], v, key)
        self.assertTrue(b.alive())
        self.assertEqual(b.sanitizer_errors(), [])


class MetricsWithoutCached(MetricsNode):
    """KAFSCALE_CACHED=false: the broker GETs old data from the store itself."""
    ENV = {"KAFSCALE_SEGMENT_BYTES": "64k", "KAFSCALE_CACHED": "false"}
    NAME = "metrics-nocache"

    def test_broker_store_gets_have_latency(self):
        b, port = self.broker, self.port
        m0 = ou.scrape(port)
        self.assertEqual(ou.value(m0, "kafscale_objstore_operations_total", process="broker", op="get"), 0)
        self.assertEqual(ou.value(m0, "kafscale_objstore_duration_seconds_count", process="broker", op="get"), 0)
        self.assertEqual(du.create_topics(b.bootstrap, [("nocache", 1, {})]), {})
        n = cu.produce(b.bootstrap, "nocache", 512 << 10)
        cu.consume(self, b.bootstrap, "nocache", n, "nocache")
        text = ou.scrape_text(port)
        self.check(text, "after the reads")
        m = ou.parse(text)
        gets = ou.value(m, "kafscale_objstore_operations_total", process="broker", op="get")
        self.assertGreater(gets, 0)
        self.assertEqual(ou.value(m, "kafscale_objstore_duration_seconds_count", process="broker", op="get"), gets)
        self.assertGreater(ou.value(m, "kafscale_objstore_duration_seconds_sum", process="broker", op="get"), 0)
        self.assertGreaterEqual(ou.value(m, "kafscale_objstore_bytes_total", process="broker", op="get"),
                                n * cu.VALUE_SIZE)
        self.assertEqual(ou.value(m, "kafscale_objstore_errors_total", process="broker", op="get"), 0)
        self.assertEqual(ou.value(m, "kafscale_objstore_retries_total", process="broker"), 0)
        self.assertIsNone(ou.value(m, "kafscale_process_resident_memory_bytes", process="cached"))
        self.assertIsNone(ou.value(m, "kafscale_cache_loads_total", cache="shm"))
        self.assertEqual(b.sanitizer_errors(), [])


if __name__ == "__main__":
    harness.main()
