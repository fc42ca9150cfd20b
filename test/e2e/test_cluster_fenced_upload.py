#!/usr/bin/python3
"""A cluster broker's upload lands after another broker took its partition
over: the flusher's commit at the end of that upload must fail the etcd
fence, and nothing of it may become durable.

Two brokers (lease TTL 3 s) on one etcd and one s3rver behind
bench/s3_delay_proxy.py holding every PUT ~7 s. A producer (acks=all)
writes to the partition broker A leads; as soon as A's flusher has an upload
in flight (the proxy has counted its PUT), A's broker process alone is
stopped (SIGSTOP; its flusher keeps running): no more keepalives, A's lease
lapses, B claims the partition, and only then does A's upload complete.
  - A's flusher logs that another broker took the partition over (the
    fenced commit), and A's broker gives the partition up after SIGCONT;
  - the producer's retries land on B: every message is acknowledged;
  - read back: every acknowledged message exactly once at its offset (A's
    fenced data was not committed, so nothing is doubled);
  - the bucket's segments of the topic are exactly the ones etcd names, and
    parse (A's orphan object was replaced or removed).
"""
import re
import time
import unittest

import harness
import cluster_harness as ch
import durability_util as du
import s3rver_harness

TTL = 3
PUT_MS = 7000
TOPIC = "fenced-upload"
PARTS = 2
COUNT = 2000


class FencedUpload(unittest.TestCase):
    c = proxy = None

    @classmethod
    def setUpClass(cls):
        cls.c = ch.Cluster(n=2, name="fencedup", lease_ttl=TTL)
        c = cls.c
        ok, why = s3rver_harness.available()
        if not ok:
            raise RuntimeError(why)
        c.etcd.start()
        c.s3.start()
        cls.proxy = s3rver_harness.DelayProxy(c.s3.port, PUT_MS, PUT_MS + 200).start()
        c.extra_env["KAFSCALE_S3_ENDPOINT"] = cls.proxy.endpoint
        c.extra_env["KAFSCALE_S3_TIMEOUT_MS"] = str(4 * PUT_MS)
        c.start_all()

    @classmethod
    def tearDownClass(cls):
        if cls.c is not None:
            for n in cls.c.nodes:
                n.sigcont()
            cls.c.shutdown_checked()
            cls.c.cleanup()
        if cls.proxy is not None:
            cls.proxy.stop()

    def test_commit_after_takeover_is_fenced(self):
        c = self.c
        err = ch.create_topic_raw(c.node(1), TOPIC, PARTS)
        self.assertEqual(err, 0, "CreateTopics: error %r" % err)
        leaders = c.wait_converged([TOPIC], {TOPIC: PARTS}, timeout=20)[TOPIC]
        part = 0
        victim = c.node(leaders[part])
        other = [n for n in c.nodes if n is not victim][0]
        epoch0 = c.etcd_leaders(TOPIC)[part]["epoch"]

        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all", "enable.idempotence": False,
                      "linger.ms": 5, "request.timeout.ms": 4 * PUT_MS, "message.timeout.ms": 120000,
                      "topic.metadata.refresh.interval.ms": 1000, "log_level": 3})
        acked, errors = [], []

        def dr(e, m):
            if e is not None:
                errors.append(str(e))
            else:
                acked.append((m.offset(), m.value()))
        before = self.proxy.puts()
        for i in range(COUNT):
            p.produce(TOPIC, value=du.make_value(i), partition=part, on_delivery=dr)
        p.poll(0)
        self.assertTrue(du.wait_for(lambda: self.proxy.puts() > before, 10, 0.01),
                        "broker %d started no upload within 10 s" % victim.id)
        t0 = time.monotonic()
        victim.sigstop(with_children=False)   # the broker only: its flusher finishes the upload
        try:
            took_over = c.wait_for(lambda: c.etcd_leaders(TOPIC).get(part, {}).get("broker_id") == other.id,
                                   PUT_MS / 1000.0)
            t_claim = time.monotonic() - t0
            self.assertTrue(took_over, "broker %d did not take %s[%d] over within %.0f s of the pause"
                            % (other.id, TOPIC, part, PUT_MS / 1000.0))
            harness.log("broker %d claimed %s[%d] %.1f s after broker %d stopped (its upload is held %.1f s)"
                        % (other.id, TOPIC, part, t_claim, victim.id, PUT_MS / 1000.0))
            self.assertLess(t_claim, PUT_MS / 1000.0 - 1.0, "the takeover came too late to fence the upload")
            fenced = re.compile(r"%s\[%d\]: another broker took the partition over" % (TOPIC, part))
            self.assertTrue(c.wait_for(lambda: fenced.search(victim.log_text()), PUT_MS / 1000.0 + 10, 0.2),
                            "the stopped broker's flusher did not report a fenced commit; log tail:\n%s"
                            % victim.log_tail(30))
        finally:
            victim.sigcont()
        left = p.flush(90)
        self.assertEqual(left, 0, "%d messages not delivered; errors %r" % (left, errors[:5]))
        self.assertEqual(errors, [], "produce errors reached the application")
        self.assertEqual(len(acked), COUNT)
        self.assertGreater(c.etcd_leaders(TOPIC)[part]["epoch"], epoch0)
        gave_up = "cluster: %s[%d]: our claim was taken over (fenced)" % (TOPIC, part)
        self.assertTrue(c.wait_for(lambda: gave_up in victim.log_text(), 15, 0.2),
                        "broker %d did not act on the fenced commit after SIGCONT; log tail:\n%s"
                        % (victim.id, victim.log_tail(30)))

        # Exactly once, at the acknowledged offsets.
        got = du.consume_all(c.bootstrap(), TOPIC, PARTS, timeout=60)
        self.assertTrue(got["complete"], "read-back incomplete: %r" % got["errors"][:5])
        self.assertEqual(sorted(got["records"][part]), sorted(acked), "read-back differs from what was acknowledged")
        seqs = [du.value_seq(v) for _, v in got["records"][part]]
        self.assertEqual(sorted(seqs), list(range(COUNT)), "a message is missing or doubled")

        # The bucket agrees with etcd once everything pending is flushed.
        for n in c.nodes:
            r = n.ctl("--json", "flush")
            self.assertEqual(r.returncode, 0, r.describe())
        c.wait_for(lambda: ch.segment_keys_differ(c, TOPIC) == ([], []), PUT_MS / 1000.0 + 10, 0.5)
        wm = du.watermarks(c.bootstrap(), TOPIC, PARTS)
        problems = ch.check_bucket_against_etcd(c, TOPIC, PARTS, wm=wm)
        self.assertEqual(problems, [], "bucket vs etcd:\n%s" % "\n".join(problems))


if __name__ == "__main__":
    harness.main()
