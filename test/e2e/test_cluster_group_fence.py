#!/usr/bin/python3
"""A group coordinator paused past its lease (SIGSTOP, then SIGCONT) does not
serve the group from the state it held before the pause:

  - while it is paused another broker coordinates the group and takes a new
    offset commit;
  - after SIGCONT the paused broker rejoins and (the live brokers being the
    same again) becomes the group's coordinator once more: OffsetFetch through
    it, and through every broker's FindCoordinator answer, returns the commit
    made during the pause, read again from etcd, not the one it held.

One etcd, one s3rver, three brokers on loopback (cluster_harness), lease
TTL 3 s.
"""
import time
import unittest

import harness
import cluster_harness as ch

TTL = 3
TOPIC = "gfence"
GROUP = "gfence-group"


def commit(bootstrap, offset):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                  "log_level": 3})
    try:
        got = c.commit(offsets=[TopicPartition(TOPIC, 0, offset)], asynchronous=False)
        return [(tp.partition, tp.offset, tp.error) for tp in got]
    finally:
        c.close()


class GroupFence(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = ch.Cluster(n=3, name="gf", lease_ttl=TTL).start()

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def coordinator(self, via):
        err, nid, _, _ = ch.find_coordinator(via, GROUP)
        return nid if err == 0 else None

    def test_paused_coordinator_reads_the_group_again(self):
        c = self.c
        ch.create_topic_raw(c.nodes[0], TOPIC, 1)
        c.wait_converged([TOPIC], {TOPIC: 1}, timeout=20)
        x = c.node(self.coordinator(c.nodes[0]))
        self.assertEqual(commit(c.bootstrap(), 10), [(0, 10, None)])
        err, offs = ch.offset_fetch(x, GROUP, {TOPIC: [0]})
        self.assertEqual((err, offs[(TOPIC, 0)][0]), (0, 10))

        x.sigstop()
        others = [n for n in c.nodes if n is not x]
        try:
            moved = c.wait_for(lambda: all(self.coordinator(n) not in (None, x.id) for n in others), TTL + 15)
            self.assertTrue(moved, "the group's coordinator did not move off paused broker %d" % x.id)
            y = self.coordinator(others[0])
            harness.log("coordinator %d paused; broker %d coordinates %s now" % (x.id, y, GROUP))
            self.assertEqual(commit(c.bootstrap(others), 20), [(0, 20, None)])
            time.sleep(2 * TTL - 1)  # well past the lease of the paused broker
        finally:
            x.sigcont()
        c.wait_converged([TOPIC], {TOPIC: 1}, timeout=TTL + 20)

        def settled():
            ids = {self.coordinator(n) for n in c.nodes}
            return len(ids) == 1 and None not in ids
        self.assertTrue(c.wait_for(settled, 20), "brokers do not agree on the coordinator after SIGCONT")
        z = c.node(self.coordinator(c.nodes[0]))
        harness.log("after SIGCONT broker %d coordinates %s (the paused one was %d)" % (z.id, GROUP, x.id))
        for via in (z, x):
            ok = c.wait_for(lambda: ch.offset_fetch(via, GROUP, {TOPIC: [0]})[0] == 0 or via is not z, 10)
            err, offs = ch.offset_fetch(via, GROUP, {TOPIC: [0]})
            if via is z:
                self.assertTrue(ok)
                self.assertEqual((err, offs[(TOPIC, 0)][0]), (0, 20),
                                 "broker %d (coordinator) answers a stale offset" % z.id)
            else:
                self.assertIn(err, (0, ch.NOT_COORDINATOR))
                if err == 0:
                    self.assertEqual(offs[(TOPIC, 0)][0], 20, "the paused broker answers its stale offset")


if __name__ == "__main__":
    harness.main()
