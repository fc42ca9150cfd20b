#!/usr/bin/python3
"""kafscale-cached end to end: catch-up reads served from the shared-memory
ring, through the S3 backend (s3rver), checked with `kafscale-shm --json`,
s3rver's own log of GETs and every byte the consumers read.

Data: KAFSCALE_CACHED_E2E_MB (default 64) MiB to topic "big" in 8 MiB
segments, and half that to "kill" in 1 MiB segments (many small segments, so
that a read is still loading when cached dies). The issue asks for 500 MB;
that takes minutes on two cores, so the size is a knob:
KAFSCALE_CACHED_E2E_MB=500 runs the full size.

In order (test names sort):
  1. after a node restart (broker and cached), a consumer reads "big" from the
     start: misses, loads and read-ahead in the ring's counters; every segment
     loaded once by cached (whole-object GETs), no ranged GET by the broker;
  2. a second consumer reads it again from the ring: hits rise, loads and
     store GETs do not;
  3. a broker that crashed (kill -9; a broker that stops cleanly stops its
     cached, see test_node_restart.py) finds the ring warm when restarted:
     cached lives on, the new broker maps its ring, a third read is all
     hits, still no GET;
  4. kill -9 of cached while a consumer catches up on "kill": the consumer
     gets every byte (from the store meanwhile), the broker restarts cached,
     which adopts the ring (next generation), and the broker remaps and uses
     it (loads and hits in the new generation);
  then cached is stopped (SIGTERM) and its ring leaves /dev/shm.
"""
import os
import re
import threading
import time
import unittest

import cached_util as cu
import durability_util as du
import harness

MB = int(os.environ.get("KAFSCALE_CACHED_E2E_MB", "64"))
MIB = 1 << 20


class CachedEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import s3rver_harness
        ok, why = s3rver_harness.available()
        if not ok:
            raise unittest.SkipTest(why)
        if not os.access(cu.SHM_BIN, os.X_OK):
            raise unittest.SkipTest("%s missing (run make)" % cu.SHM_BIN)
        cls.s3 = s3rver_harness.S3rver(buckets=["cached"], name="s3rver-cached").start()
        cls.shm = "/kafscale-e2e-cached-%d" % os.getpid()
        # cached is started by the broker through a wrapper that waits half
        # a second first: after the kill -9 below, reads are served by the
        # store for a moment that does not depend on the machine's speed.
        d = harness.make_tmpdir("kafscale-e2e-cachedbin-")
        wrapper = os.path.join(d, "kafscale-cached")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nsleep 0.5\nexec %s \"$@\"\n" % os.path.join(harness.REPO, "bin", "kafscale-cached"))
        os.chmod(wrapper, 0o755)
        cls.env = cls.s3.env("cached", KAFSCALE_AUTO_CREATE_TOPICS="false", KAFSCALE_SEGMENT_BYTES="8m",
                             KAFSCALE_SHM_NAME=cls.shm, KAFSCALE_CACHE_BYTES="%dm" % max(256, 2 * MB + 64),
                             KAFSCALE_READAHEAD_SEGMENTS="2", KAFSCALE_FLUSH_INTERVAL_MS="2000",
                             KAFSCALE_CACHED_BIN=wrapper)
        cls.broker = du.start_broker(env=cls.env, name="node")
        errs = du.create_topics(cls.broker.bootstrap, [("big", 1, {"segment.bytes": str(8 * MIB)}),
                                                     ("kill", 1, {"segment.bytes": str(MIB)})])
        if errs:
            raise AssertionError("create topics: %r" % errs)
        t = time.monotonic()
        # acks=1: segments are cut by size (8 MiB, and 1 MiB for "kill"),
        # then produce() waits until all of it is durable.
        cls.n_big = cu.produce(cls.broker.bootstrap, "big", MB * MIB, acks="1")
        cls.n_kill = cu.produce(cls.broker.bootstrap, "kill", MB * MIB // 2, acks="1")
        harness.log("produced %d + %d MiB in %.1fs" % (MB, MB // 2, time.monotonic() - t))
        # The node restarts: the broker stops (its memory is gone) and stops
        # its cached (a clean stop removes the ring), both start again.
        ring = cu.shm_json(cls.shm)
        if not ring:
            raise AssertionError("no ring %s after producing; broker log:\n%s" % (cls.shm, cls.broker.log_tail()))
        cls.first_pid = ring["writer"]["pid"]
        st = cls.broker.stop()
        if st != 0:
            raise AssertionError("broker exit status %r" % st)
        cu.stop_cached(cls.shm)
        if os.path.exists("/dev/shm" + cls.shm):
            raise AssertionError("a clean stop of cached left its ring in /dev/shm")
        cls.broker.restart_same_port()
        ring = cu.wait_ring(cls.shm, lambda r: r["writer"]["alive"])
        if not ring or ring["writer"]["pid"] == cls.first_pid:
            raise AssertionError("no new cached after the restart: %r" % (ring and ring["writer"]))
        if not cu.wait_link(cls.broker):
            raise AssertionError("the broker never reached cached:\n%s" % cls.broker.log_tail())
        cls.nseg_big, cls.biggest = cls.count_segments("big")
        cls.nseg_kill, _ = cls.count_segments("kill")
        harness.log("segments: big %d (largest %d bytes), kill %d" % (cls.nseg_big, cls.biggest, cls.nseg_kill))

    @classmethod
    def count_segments(cls, topic):
        """(number of .kfs objects, size of the largest) of the topic."""
        c = cls.s3.boto3_client()
        n = biggest = 0
        for page in c.get_paginator("list_objects_v2").paginate(Bucket="cached", Prefix="default/%s/0/" % topic):
            for o in page.get("Contents", []):
                if o["Key"].endswith(".kfs"):
                    n += 1
                    biggest = max(biggest, o["Size"])
        c.close()
        return n, biggest

    @classmethod
    def tearDownClass(cls):
        status = cls.broker.stop()
        cu.stop_cached(cls.shm)
        cls.s3.stop()
        left = os.path.exists("/dev/shm" + cls.shm)
        errs = cls.broker.sanitizer_errors()
        if status not in (0, -15) or errs or left:
            raise AssertionError("broker exit %r, sanitizer %r, ring left in /dev/shm: %r\n%s" % (
                status, errs, left, cls.broker.log_tail()))

    def read(self, topic, count, group, **kw):
        t = time.monotonic()
        cu.consume(self, self.broker.bootstrap, topic, count, group, **kw)
        secs = time.monotonic() - t
        harness.log("%s read %s (%d messages, %.0f MiB) in %.1fs" % (group, topic, count,
                                                                    count * cu.VALUE_SIZE / MIB, secs))

    def settle(self):
        """The broker reports its hits to cached every 250 ms."""
        time.sleep(0.6)
        return cu.shm_json(self.shm)

    def test_1_first_read_misses_loads_and_reads_ahead(self):
        # 8 MiB segments (a flush cycle also cuts what is left after the
        # full ones, so some are smaller).
        self.assertGreaterEqual(self.nseg_big, MB // 8)
        self.assertGreater(self.biggest, 7 * MIB)
        self.assertLessEqual(self.biggest, 8 * MIB)
        gets0 = cu.kfs_gets(self.s3)
        c0 = cu.counters(cu.shm_json(self.shm))
        self.read("big", self.n_big, "first")
        ring = self.settle()
        c1 = cu.counters(ring)
        gets1 = cu.kfs_gets(self.s3)
        harness.log("counters after the first read: %r; .kfs GETs (whole, ranged) %r -> %r" % (c1, gets0, gets1))
        self.assertGreater(c1["misses"], c0["misses"])
        self.assertGreaterEqual(c1["loads"] - c0["loads"], self.nseg_big)
        self.assertGreater(c1["readahead_loads"], c0["readahead_loads"])
        self.assertGreaterEqual(c1["bytes_loaded"] - c0["bytes_loaded"], self.n_big * cu.VALUE_SIZE)
        self.assertGreater(c1["hits"], c0["hits"])
        self.assertEqual(c1["load_errors"], 0)
        self.assertEqual(c1["fallbacks"], 0)
        self.assertGreater(c1["load_latency_us"], 0)
        # Read-ahead kept most reads from waiting: far fewer misses than segments.
        self.assertLess(c1["misses"] - c0["misses"], self.nseg_big)
        # The ring holds every segment of "big", some of them read ahead.
        parts = {(p["topic"], p["partition"]): p for p in ring["partitions"]}
        self.assertIn(("big", 0), parts)
        self.assertEqual(parts[("big", 0)]["segments"], self.nseg_big)
        self.assertEqual(parts[("big", 0)]["first_offset"], 0)
        self.assertEqual(parts[("big", 0)]["last_offset"], self.n_big - 1)
        origins = {s["origin"] for s in parts[("big", 0)]["segment_list"]}
        self.assertIn("read-ahead", origins)
        # Every segment came from the store once, whole, through cached; the
        # broker made no ranged GET of its own.
        self.assertEqual(gets1[0] - gets0[0], self.nseg_big)
        self.assertEqual(gets1[1] - gets0[1], 0)

    def test_2_second_reader_is_served_from_the_ring(self):
        c0 = cu.counters(cu.shm_json(self.shm))
        gets0 = cu.kfs_gets(self.s3)
        self.read("big", self.n_big, "second")
        c1 = cu.counters(self.settle())
        gets1 = cu.kfs_gets(self.s3)
        harness.log("second read: hits %d -> %d, loads %d -> %d, GETs %r -> %r" % (
            c0["hits"], c1["hits"], c0["loads"], c1["loads"], gets0, gets1))
        # ~1 MiB per range read: at least one hit per MiB, minus what the
        # broker's own 16 MiB staging cache still held.
        self.assertGreaterEqual(c1["hits"] - c0["hits"], MB - 20)
        self.assertEqual(c1["loads"], c0["loads"])
        self.assertEqual(c1["misses"], c0["misses"])
        self.assertEqual(gets1, gets0)

    def test_3_broker_crash_restart_finds_the_ring_warm(self):
        ring0 = cu.shm_json(self.shm)
        du.kill9_node(self.broker)  # a crash: no STOP for cached, which lives on
        self.broker.restart_same_port()
        ring1 = cu.shm_json(self.shm)
        # cached lived on: same writer, same generation, same segments.
        self.assertEqual(ring1["writer"]["pid"], ring0["writer"]["pid"])
        self.assertEqual(ring1["writer"]["generation"], ring0["writer"]["generation"])
        self.assertEqual(ring1["occupancy"]["segments"], ring0["occupancy"]["segments"])
        gets0 = cu.kfs_gets(self.s3)
        c0 = cu.counters(ring1)
        self.read("big", self.n_big, "third")
        c1 = cu.counters(self.settle())
        self.assertGreaterEqual(c1["hits"] - c0["hits"], MB - 20)
        self.assertEqual(c1["loads"], c0["loads"])
        self.assertEqual(cu.kfs_gets(self.s3), gets0)
        self.assertRegex(self.broker.log_text(), r"cache: mapped ring %s read-only" % self.shm)

    def test_4_kill9_of_cached_during_a_catch_up_read(self):
        ring0 = cu.shm_json(self.shm)
        old_pid, old_gen = ring0["writer"]["pid"], ring0["writer"]["generation"]
        gets0 = cu.kfs_gets(self.s3)
        killed = threading.Event()
        reached = threading.Event()
        progress = [0]
        result = {}
        third = self.n_kill // 3

        def pause(n):
            if n >= third and not reached.is_set():
                reached.set()
                killed.wait(20)
            elif killed.is_set():
                time.sleep(0.005)  # keep reading while cached comes back

        def run():
            try:
                cu.consume(self, self.broker.bootstrap, "kill", self.n_kill, "catch-up", progress=progress,
                           pause=pause, timeout=120)
                result["r"] = "ok"
            except BaseException as e:  # reported below
                result["r"] = repr(e)[:800]

        th = threading.Thread(target=run)
        th.start()
        self.assertTrue(reached.wait(60), "the consumer never got a third of the way (%d)" % progress[0])
        self.assertTrue(du.kill9(old_pid))
        harness.log("killed -9 cached pid %d at %d of %d messages" % (old_pid, progress[0], self.n_kill))
        killed.set()
        th.join(150)
        self.assertFalse(th.is_alive(), "consumer still running")
        self.assertEqual(result.get("r"), "ok")
        # cached is back (started by the broker), adopted the ring (warm), and
        # the broker uses it.
        ring1 = cu.wait_ring(self.shm, lambda r: r["writer"]["alive"] and r["writer"]["pid"] != old_pid)
        self.assertNotEqual(ring1["writer"]["pid"], old_pid)
        self.assertEqual(ring1["writer"]["generation"], old_gen + 1)
        up = re.compile(r"cache: kafscale-cached \(pid %d, protocol v1\) up: ring %s generation %d" % (
            ring1["writer"]["pid"], self.shm, old_gen + 1))
        du.wait_for(lambda: up.search(self.broker.log_text()), 10)
        text = self.broker.log_text()
        self.assertRegex(text, r"cache: link to kafscale-cached down")
        self.assertRegex(text, up)
        self.assertRegex(text, r"adopted ring %s: .* generation %d" % (self.shm, old_gen + 1))
        # Read it all again: the new generation serves it (its counters
        # started at 0 when it adopted the ring).
        self.read("kill", self.n_kill, "after-kill")
        ring2 = self.settle()
        c2 = cu.counters(ring2)
        gets2 = cu.kfs_gets(self.s3)
        harness.log("after the kill: %r, GETs %r -> %r" % (c2, gets0, gets2))
        # While cached was down the broker read the store itself (ranged
        # GETs), and said so to the new cached.
        self.assertGreater(gets2[1], gets0[1])
        self.assertGreater(c2["fallbacks"], 0)
        self.assertEqual(ring2["writer"]["generation"], old_gen + 1)
        # (the last ~16 MiB may come from the broker's own staging cache)
        self.assertGreaterEqual(c2["hits"] + c2["misses"], self.nseg_kill // 4)
        parts = {(p["topic"], p["partition"]): p for p in ring2["partitions"]}
        self.assertGreaterEqual(parts[("kill", 0)]["segments"], self.nseg_kill // 2)
        self.assertRegex(self.broker.log_text(), r"cache: mapped ring %s read-only \(generation %d" % (
            self.shm, old_gen + 1))
        self.assertRegex(self.broker.log_text(), r"ring %s \(generation %d\) was replaced or its writer restarted: "
                         r"remapping" % (self.shm, old_gen))


class CachedPrefetch(unittest.TestCase):
    """The flusher tells cached about every committed segment; one a reader
    of the store is close behind gets prefetched. A consumer stays about a
    segment and a half behind a producer (with a 1 MiB in-memory tail, so its
    reads come from the store) while segments of ~1 MiB are committed."""

    @classmethod
    def setUpClass(cls):
        cls.shm = "/kafscale-e2e-prefetch-%d" % os.getpid()
        cls.broker = du.start_broker(env={"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_TAIL_BYTES": "1m",
                                          "KAFSCALE_SHM_NAME": cls.shm, "KAFSCALE_CACHE_BYTES": "64m"},
                                     name="prefetch")
        errs = du.create_topics(cls.broker.bootstrap, [("live", 1, {"segment.bytes": str(MIB)})])
        if errs:
            raise AssertionError("create topics: %r" % errs)
        if not cu.wait_link(cls.broker):
            raise AssertionError("the broker never reached cached:\n%s" % cls.broker.log_tail())

    @classmethod
    def tearDownClass(cls):
        status = cls.broker.stop()
        cu.stop_cached(cls.shm)
        errs = cls.broker.sanitizer_errors()
        if status not in (0, -15) or errs or os.path.exists("/dev/shm" + cls.shm):
            raise AssertionError("broker exit %r, sanitizer %r\n%s" % (status, errs, cls.broker.log_tail()))

    def test_segments_committed_ahead_of_a_reader_are_prefetched(self):
        import kproto
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.broker.bootstrap, "acks": "all", "linger.ms": 5,
                      "enable.idempotence": False})
        conn = kproto.Conn(self.broker.host, self.broker.port, timeout=15)
        per_round, produced, read, bad = 256, 0, 0, []  # 1 MiB per round

        def read_until(upto):
            nonlocal read
            deadline = time.monotonic() + 30
            while read < upto and time.monotonic() < deadline:
                err, hw, recs = cu.raw_fetch(conn, "live", read, 256 << 10)
                self.assertEqual(err, 0)
                for o, v in recs:
                    if o >= upto:
                        break
                    if o != read or v != cu.value(read):
                        bad.append(o)
                    read = o + 1

        try:
            for rnd in range(12):
                for i in range(produced, produced + per_round):
                    p.produce("live", value=cu.value(i), partition=0)
                p.flush(30)
                produced += per_round
                # A segment and a half behind, and a moment later: a prefetch
                # of a file-store segment written with O_DIRECT reads it from
                # the disk (2-10 ms), and a reader that comes at once can win
                # that race (then it waits for the same load: a miss).
                time.sleep(0.1)
                read_until(max(0, produced - 3 * per_round // 2))
            read_until(produced)
        finally:
            conn.close()
        self.assertEqual(bad, [])
        self.assertEqual(read, produced)
        time.sleep(0.6)
        ring = cu.shm_json(self.shm)
        harness.log("close behind: %r" % cu.counters(ring))
        self.assertGreater(cu.counters(ring)["prefetch_loads"], 0)
        self.assertGreater(cu.counters(ring)["hits"], 0)
        self.assertEqual(cu.counters(ring)["load_errors"], 0)
        self.assertRegex(self.broker.log_text(), r"flusher \(pid \d+\) connected")
        origins = {s["origin"] for p in ring["partitions"] for s in p["segment_list"]}
        self.assertIn("prefetch", origins)

if __name__ == "__main__":
    harness.main()
