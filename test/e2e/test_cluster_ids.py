#!/usr/bin/python3
"""Broker ids in a cluster (broker/cluster.c, join):

  - a second broker started with the id of a live broker, at another
    address, waits for that registration to expire, then gives up with a
    clear error naming KAFSCALE_BROKER_ID and exits non-zero; the live broker
    keeps its registration and its partitions all along (two brokers with one
    id would otherwise take each other's partitions in turns);
  - a broker restarted with its id at a new address (a pod that got a new IP
    after kill -9) joins once its earlier registration expired, and leads
    partitions again.

One etcd, one s3rver, brokers on loopback (cluster_harness), lease TTL 2 s.
"""
import time
import unittest

import harness
import cluster_harness as ch

TTL = 2


class ClusterIds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = ch.Cluster(n=2, name="ids", lease_ttl=TTL).start()

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def test_1_duplicate_id_is_refused(self):
        c = self.c
        first = c.node(1)
        before = c.etcd_brokers()
        self.assertIn(1, before)
        dup = ch.Node(c, 1)           # id 1 again, its own ports and data dir
        dup.shm_name += "-dup"
        harness._all_brokers.append(dup)
        t0 = time.monotonic()
        dup.spawn()
        try:
            status = dup.proc.wait(timeout=TTL + 20)
        except Exception:
            dup.cleanup()
            self.fail("a broker with a duplicate id did not exit; log tail:\n%s" % dup.log_tail(20))
        took = time.monotonic() - t0
        harness.log("duplicate id 1 exited with status %r after %.1fs" % (status, took))
        self.assertNotEqual(status, 0, dup.log_tail(20))
        self.assertGreaterEqual(took, TTL, "gave up before the other lease could have expired")
        log = dup.log_text()
        self.assertIn("KAFSCALE_BROKER_ID", log)
        self.assertIn("waiting for that lease to expire", log)
        self.assertFalse(harness.wait_port(dup.host, dup.port, timeout=0.2), "the duplicate opened its Kafka port")
        # The live broker kept its registration at its own address all along.
        self.assertTrue(first.alive())
        regs = c.etcd_brokers()
        self.assertEqual((regs[1]["host"], regs[1]["port"]), (first.host, first.port), regs)
        dup.cleanup()

    def test_2_moved_broker_rejoins_after_its_lease(self):
        c = self.c
        old = c.node(2)
        old.kill9()
        moved = ch.Node(c, 2)          # the same id from a new address
        moved.shm_name += "-moved"
        harness._all_brokers.append(moved)
        try:
            t0 = time.monotonic()
            moved.start(timeout=TTL + 30)
            harness.log("broker 2 at a new address listening %.1fs after the kill" % (time.monotonic() - t0))
            ok = c.wait_for(lambda: c.etcd_brokers().get(2, {}).get("port") == moved.port, TTL + 10)
            self.assertTrue(ok, "broker 2's registration does not name its new address: %r" % c.etcd_brokers())
            self.assertIn("waiting for that lease to expire", moved.log_text())
        finally:
            moved.cleanup()


if __name__ == "__main__":
    harness.main()
