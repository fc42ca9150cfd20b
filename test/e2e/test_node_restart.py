#!/usr/bin/python3
"""A node restarted on the same data dir right after it stopped, and what a
node that was killed leaves behind (file object store, kafscale-cached on,
KAFSCALE_TAIL_BYTES=0 so reads of old data go through the shm ring):

  1. SIGTERM, then at once a new broker on the same data dir: the old broker
     stopped its cached (STOP) and waited for it, so the ring left
     /dev/shm and the new node's cached starts at once (not after the old
     one's 15 s linger, not refused because "another cached holds the
     ring"); data from before the stop is read back through the new ring,
     and a new topic is produced and consumed;
  2. kill -9 of the node (cached lives on, as meant for a crash), then its
     socket is removed (a wiped run dir): no broker can reach that cached,
     so it goes by itself within a second or two, and the restarted node's
     cached takes the ring over, well before the linger time;
  3. temp files of uploads a kill -9 cut short (.kstmp.*, planted: one two
     minutes old, one fresh) are removed by the restarted flusher when old,
     kept when they might belong to an upload in progress.
"""
import os
import re
import time
import unittest

import cached_util as cu
import durability_util as du
import harness

MIB = 1 << 20


class NodeRestart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.shm = "/kafscale-e2e-restart-%d" % os.getpid()
        env = {"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_TAIL_BYTES": "0", "KAFSCALE_SEGMENT_BYTES": "256k",
               "KAFSCALE_SHM_NAME": cls.shm, "KAFSCALE_CACHE_BYTES": "64m", "KAFSCALE_METRICS_ADDR": "off"}
        cls.broker = du.start_broker(env=env, name="restart")
        if not cu.wait_link(cls.broker):
            raise AssertionError("the broker never reached cached:\n%s" % cls.broker.log_tail())
        if du.create_topics(cls.broker.bootstrap, [("before", 1, {})]):
            raise AssertionError("create topics failed")
        cls.n_before = cu.produce(cls.broker.bootstrap, "before", 2 * MIB)

    @classmethod
    def tearDownClass(cls):
        status = cls.broker.stop()
        cu.stop_cached(cls.shm)
        left = os.path.exists("/dev/shm" + cls.shm)
        errs = cls.broker.sanitizer_errors()
        if status not in (0, -15) or errs or left:
            raise AssertionError("broker exit %r, sanitizer %r, ring left in /dev/shm: %r\n%s" % (
                status, errs, left, cls.broker.log_tail()))

    def since_restart(self):
        """The broker's log (cached and the flusher write to it too) since the last restart."""
        return self.broker.log_text().rsplit("=== restart", 1)[-1]

    def writer(self):
        ring = cu.shm_json(self.shm)
        return ring["writer"] if ring else None

    def wait_new_writer(self, old_pid, timeout):
        """The ring's writer once it is alive and not old_pid (None when that did not happen)."""
        ring = cu.wait_ring(self.shm, lambda r: r["writer"]["alive"] and r["writer"]["pid"] != old_pid, timeout)
        w = ring and ring["writer"]
        return w if w and w["alive"] and w["pid"] != old_pid else None

    def wait_link_since_restart(self, pid, timeout):
        deadline = time.monotonic() + timeout
        pat = r"cache: kafscale-cached \(pid %d, protocol v\d+\) up" % pid
        while time.monotonic() < deadline:
            if re.search(pat, self.since_restart()):
                return True
            time.sleep(0.05)
        return False

    def read_through_the_ring(self, topic, count, group):
        """Reads topic from offset 0 (every byte checked); the ring's counters
        of its current writer must show the reads."""
        c0 = cu.counters(cu.shm_json(self.shm))
        cu.consume(self, self.broker.bootstrap, topic, count, group)
        time.sleep(0.6)  # the broker reports its ring hits every 250 ms
        c1 = cu.counters(cu.shm_json(self.shm))
        self.assertGreater(c1["loads"], c0["loads"], "no segment was loaded into the ring")
        self.assertGreater(c1["hits"] + c1["misses"], c0["hits"] + c0["misses"], "the reads did not use the ring")

    def test_1_sigterm_then_immediate_restart(self):
        b = self.broker
        self.read_through_the_ring("before", self.n_before, "g1")
        old = self.writer()
        self.assertTrue(old and old["alive"], old)

        t = time.monotonic()
        self.assertEqual(b.stop(), 0)
        stop_s = time.monotonic() - t
        # The broker stopped its cached and waited for it: the ring is gone.
        self.assertFalse(cu.pid_alive(old["pid"]), "cached (pid %d) outlived its broker's SIGTERM" % old["pid"])
        self.assertFalse(os.path.exists("/dev/shm" + self.shm), "the stopped node left its ring in /dev/shm")
        self.assertRegex(b.log_text(), r"cache: kafscale-cached \(pid %d\) stopped with the node" % old["pid"])
        self.assertLess(stop_s, 6, "stopping took %.1fs" % stop_s)

        t = time.monotonic()
        b.restart_same_port()
        new = self.wait_new_writer(old["pid"], 10)
        self.assertIsNotNone(new, "no new cached after the restart:\n%s" % self.since_restart()[-3000:])
        self.assertTrue(self.wait_link_since_restart(new["pid"], 10), self.since_restart()[-3000:])
        harness.log("restart: new cached pid %d serving after %.1fs" % (new["pid"], time.monotonic() - t))
        self.assertLess(time.monotonic() - t, 10)
        log = self.since_restart()
        self.assertNotIn("another writer", log)
        self.assertNotIn("another cached holds the ring", log)

        # Old data, read back through the new cached's ring; new data too.
        self.read_through_the_ring("before", self.n_before, "g2")
        self.assertEqual(self.writer()["pid"], new["pid"])
        self.assertEqual(du.create_topics(b.bootstrap, [("after", 1, {})]), {})
        n = cu.produce(b.bootstrap, "after", MIB)
        self.read_through_the_ring("after", n, "g3")
        self.assertEqual(b.sanitizer_errors(), [])

    def test_2_cached_left_unreachable_by_a_crash_is_replaced(self):
        b = self.broker
        old = self.writer()
        self.assertTrue(old and old["alive"], old)
        du.kill9_node(b)
        time.sleep(0.3)
        self.assertTrue(cu.pid_alive(old["pid"]), "cached should outlive a broker that crashed")
        sock = os.path.join(b.data_dir, "run", "cached.sock")
        self.assertTrue(os.path.exists(sock))
        os.unlink(sock)  # as if the run dir had been wiped

        t = time.monotonic()
        b.restart_same_port()
        new = self.wait_new_writer(old["pid"], 12)
        self.assertIsNotNone(new, "no new cached after the restart:\n%s" % self.since_restart()[-3000:])
        self.assertTrue(self.wait_link_since_restart(new["pid"], 10), self.since_restart()[-3000:])
        took = time.monotonic() - t
        harness.log("unreachable cached replaced in %.1fs" % took)
        self.assertLess(took, 10, "took about as long as the linger time (15 s)")
        self.assertFalse(cu.pid_alive(old["pid"]))
        self.assertRegex(self.since_restart(), r"socket .*cached\.sock was removed or replaced")
        self.read_through_the_ring("before", self.n_before, "g4")

    def test_3_temp_files_of_interrupted_uploads_are_cleaned_at_start(self):
        b = self.broker
        du.kill9_node(b)
        pdir = os.path.join(b.data_dir, "objects", "default", "before", "0")
        old = os.path.join(pdir, ".kstmp.segment-00000000000000099999.kfs.4242.1")
        fresh = os.path.join(pdir, ".kstmp.segment-00000000000000099999.index.4243.1")
        for path in (old, fresh):
            with open(path, "wb") as f:
                f.write(b"partial upload")
        two_minutes_ago = time.time() - 120
        os.utime(old, (two_minutes_ago, two_minutes_ago))
        self.assertEqual(len(du.list_temp_files(b.data_dir)), 2)

        b.restart_same_port()
        self.assertIsNotNone(b.wait_flusher(10))
        self.assertTrue(du.wait_for(lambda: not os.path.exists(old), 10), "the old temp file is still there")
        self.assertTrue(os.path.exists(fresh), "a temp file less than a minute old was removed")
        self.assertEqual(du.list_temp_files(b.data_dir), [fresh])
        self.assertRegex(self.since_restart(), r"removed 1 temp file\(s\) of interrupted uploads")
        # The node works on: the data is all there.
        cu.consume(self, b.bootstrap, "before", self.n_before, "g5")


if __name__ == "__main__":
    harness.main()
