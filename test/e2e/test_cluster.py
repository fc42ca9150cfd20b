#!/usr/bin/python3
"""A cluster of three brokers on one etcd and one s3rver (issue 6, "What must
be shown"), all on loopback, lease TTL 3 s, started by cluster_harness:

  1. Metadata from every broker lists all three (ids and addresses, as
     registered in etcd) and the same leader for each of 12 partitions,
     spread over all three (as etcd's leader keys say); only the leader
     takes a produce (the others answer NOT_LEADER_OR_FOLLOWER);
     FindCoordinator for 12 groups gives the same answer from every broker
     and a non-coordinator answers NOT_COORDINATOR.
  2. A confluent-kafka producer (acks=all, retries=0, every message tagged
     with a sequence id) writes while the broker leading the most
     partitions is kill -9ed (with its flusher and cached): the partitions
     it led take writes again at another broker; a read-back finds every
     acknowledged message exactly once at its acknowledged offset, in
     order per partition, contiguous offsets.
  3. The same, but the broker (and its flusher and cached) is SIGSTOPped
     for twice the lease TTL, then SIGCONTed (it rejoins, partitions move
     back to it): the others take over with a higher leader epoch; the
     bucket is consistent: every segment (parsed with kfs_reader, CRCs and
     index checked) is one etcd names with the same base, last offset and
     size, none overlap, they cover [earliest, high watermark), epochs
     never go down, every acknowledged message is in the bucket at its
     acknowledged offset and no message is stored twice (the producer has
     retries=0; librdkafka still resends a batch answered with
     NOT_LEADER_OR_FOLLOWER, which by Kafka's contract was not appended:
     a second copy means a broker refused a batch and committed it
     anyway); a consumer reads every acknowledged message, and exactly
     what the bucket holds.
  4. A consumer group whose coordinator broker is kill -9ed while a member
     consumes and commits: the group moves to a new coordinator, keeps its
     committed offsets (no re-delivery below them, no gap), the member
     finishes, and the final offsets are in etcd and served by the new
     coordinator.
  5. The whole cluster (three brokers, etcd, s3rver) stopped and started
     again: topics with their configs, data, committed offsets and groups
     are intact; a member resumes at the committed offsets; new messages
     continue the old offsets.
  6. A topic created through one broker is listed by the others within a
     second (measured); a topic added by `etcdctl put` of the snapshot key
     appears on every broker and takes produce.

Each test starts from a healthy cluster (setUp restarts whatever a previous
test left down and waits until all three agree).
"""
import collections
import time
import unittest

import harness
import cluster_harness as ch
import durability_util as du
import kfs_reader as kr

RUN_ALL_TIMEOUT = 240          # run_all.py: six scenarios with failovers need more than 150 s
TTL = 3
FAILOVER_LIMIT = TTL + 15     # seconds from the kill to a new leader taking writes
RATE = 3000                   # messages per second of the background producers
FENCE_RATE = 1000             # test 3 reads the whole bucket back: fewer flush cycles
# A producer that notices a paused (SIGSTOP) broker within a few seconds.
FAST_FAIL = {"request.timeout.ms": 4000, "message.timeout.ms": 20000, "socket.timeout.ms": 4000,
             "metadata.max.age.ms": 3000}


def lead_counts(leaders):
    return collections.Counter(leaders.values())


class Cluster3(unittest.TestCase):
    c = None
    converged_once = False
    tried = False

    @classmethod
    def setUpClass(cls):
        cls.c = ch.Cluster(n=3, name="cl", lease_ttl=TTL).start(wait=False)

    @classmethod
    def tearDownClass(cls):
        if cls.c is None:
            return
        cls.c.shutdown_checked()

    def setUp(self):
        c = self.c
        for n in c.nodes:
            if n.stopped:
                n.sigcont()
            if not n.alive():
                n.start()
        # Until the cluster has agreed once, do not wait long in every test.
        timeout = TTL + 20 if Cluster3.converged_once else (5 if Cluster3.tried else 20)
        Cluster3.tried = True
        ok, why = False, ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok, why = c.converged()
            if ok:
                break
            time.sleep(0.1)
        self.assertTrue(ok, "the three brokers do not agree on the live brokers: %s" % why)
        Cluster3.converged_once = True

    # ---- helpers ----

    def create(self, topic, parts, via=1):
        err = ch.create_topic_raw(self.c.node(via), topic, parts)
        self.assertEqual(err, 0, "CreateTopics %s through broker %d: error %r" % (topic, via, err))
        return self.c.wait_converged([topic], {topic: parts}, timeout=15)[topic]

    def start_producer(self, topic, parts, extra=None, rate=RATE):
        run = du.ProduceRun(self.c.bootstrap(), topic, parts, extra_conf=extra)
        bp = du.BackgroundProducer(run, rate=rate)
        bp.start()
        return run, bp

    def stop_producer(self, run, bp):
        self.assertTrue(bp.stop(120), "producer thread did not finish")
        self.assertIsNone(bp.error, "producer thread failed: %r" % bp.error)
        self.assertEqual(bp.left, 0, "%s delivery reports missing after flush" % bp.left)
        run.p = None   # the producer goes (it would keep reconnecting to brokers the tests stop)

    def acked_since(self, run, parts, seq0):
        """Partitions (of parts) with an acknowledged message of sequence
        id >= seq0."""
        return {q for q in parts if any(s >= seq0 for _, s in list(run.acked[q])[-200:])}

    def readback(self, run, topic, parts):
        got = du.consume_all(self.c.bootstrap(self.c.live()), topic, parts, timeout=30)
        harness.log("read back %s: %s" % (topic, du.summary(run.acked, got)))
        problems = du.verify(run.acked, got)
        if problems:
            # What the leaders answer a raw Fetch at the partitions' start.
            try:
                leaders = self.c.wait_converged([topic], {topic: parts}, timeout=5)[topic]
                for q in range(parts):
                    if got["positions"].get(q, got["starts"][q]) < got["ends"][q]:
                        at = got["positions"].get(q, got["starts"][q])
                        err, hw, _, recs = ch.fetch_raw(self.c.node(leaders[q]), topic, q, at)
                        problems.append("%s[%d]: raw Fetch at offset %d from leader %d: error %d, high watermark "
                                        "%d, %d record bytes" % (topic, q, at, leaders[q], err, hw, len(recs)))
            except Exception as e:
                problems.append("(diagnosis failed: %r)" % e)
        self.assertEqual(problems, [], "read-back of %s:\n%s" % (topic, "\n".join(problems)))
        return got

    # ---- 1 ----

    def test_1_metadata_leaders_and_coordinators(self):
        c = self.c
        regs = c.etcd_brokers()
        self.assertEqual(sorted(regs), [1, 2, 3], "registrations under /kafscale/brokers/: %r" % regs)
        for i, r in regs.items():
            n = c.node(i)
            self.assertEqual((r["broker_id"], r["host"], r["port"]), (i, n.host, n.port), "registration %r" % r)
            self.assertNotEqual(r["etcd_lease"], 0, "broker %d registered without a lease" % i)

        leaders = self.create("spread", 12, via=1)
        for n in c.nodes:
            md = ch.metadata(n, ["spread"])
            self.assertEqual(md["brokers"], {m.id: (m.host, m.port, None) for m in c.nodes},
                             "brokers listed by broker %d" % n.id)
            t = md["topics"]["spread"]
            self.assertEqual(t["error"], 0)
            self.assertEqual({p: pm["leader"] for p, pm in t["partitions"].items()}, leaders,
                             "leaders according to broker %d" % n.id)
        counts = lead_counts(leaders)
        harness.log("leaders of 12 partitions: %r (per broker %r)" % (leaders, dict(counts)))
        self.assertEqual(sorted(counts), [1, 2, 3], "12 partitions are led by %r only" % dict(counts))

        el = c.etcd_leaders("spread")
        self.assertEqual({p: a["broker_id"] for p, a in el.items()}, leaders, "etcd's leader keys vs Metadata")
        for p, a in el.items():
            self.assertNotEqual(a["etcd_lease"], 0, "spread[%d]'s leader key has no lease" % p)
            self.assertEqual((a["topic"], a["partition"]), ("spread", p), a)

        # Only the leader takes a produce.
        for p in range(3):
            for n in c.nodes:
                err, base = ch.produce_raw(n, "spread", p, [b"p%d-via-%d" % (p, n.id)])
                if n.id == leaders[p]:
                    self.assertEqual(err, 0, "leader %d refused a produce to spread[%d]" % (n.id, p))
                else:
                    self.assertEqual(err, ch.NOT_LEADER_OR_FOLLOWER,
                                     "broker %d (not the leader of spread[%d], %d is) answered %d"
                                     % (n.id, p, leaders[p], err))

        coords = {}
        for i in range(12):
            g = "spread-group-%d" % i
            answers = {n.id: ch.find_coordinator(n, g) for n in c.nodes}
            self.assertEqual(len(set(answers.values())), 1, "FindCoordinator(%s) answers differ: %r" % (g, answers))
            err, nid, host, port = answers[1]
            self.assertEqual(err, 0, "FindCoordinator(%s): error %d" % (g, err))
            self.assertIn(nid, (1, 2, 3))
            self.assertEqual((host, port), (c.node(nid).host, c.node(nid).port), answers)
            coords[g] = nid
        harness.log("coordinators: %r" % coords)
        self.assertGreaterEqual(len(set(coords.values())), 2, "one broker coordinates all 12 groups: %r" % coords)
        for g in list(coords)[:3]:
            for n in c.nodes:
                err, _ = ch.offset_fetch(n, g, {"spread": [0]})
                want = 0 if n.id == coords[g] else ch.NOT_COORDINATOR
                self.assertEqual(err, want, "OffsetFetch(%s) through broker %d (coordinator %d): error %d"
                                 % (g, n.id, coords[g], err))

    # ---- 2 ----

    def test_2_kill9_leader_while_producing(self):
        c, topic, parts = self.c, "failover", 6
        leaders = self.create(topic, parts)
        victim = c.node(lead_counts(leaders).most_common(1)[0][0])
        moved = sorted(p for p, l in leaders.items() if l == victim.id)
        run, bp = self.start_producer(topic, parts)
        try:
            self.assertTrue(du.wait_for(lambda: run.nacked >= 2 * RATE, 20),
                            "only %d acknowledged before the kill; errors %r" % (run.nacked, run.errors[:5]))
            seq0 = bp.seq
            t0 = time.monotonic()
            victim.kill9()
            ok = du.wait_for(lambda: self.acked_since(run, moved, seq0) == set(moved), FAILOVER_LIMIT)
            took = time.monotonic() - t0
            self.assertTrue(ok, "%.0fs after kill -9 of broker %d, partitions %r took no write (acknowledged "
                            "since: %r; errors %d, last %r)" % (took, victim.id, moved,
                                                                sorted(self.acked_since(run, moved, seq0)),
                                                                len(run.errors), run.errors[-3:]))
            harness.log("failover: partitions %r of broker %d take writes again %.1fs after kill -9"
                        % (moved, victim.id, took))
            n1 = run.nacked
            self.assertTrue(du.wait_for(lambda: run.nacked >= n1 + RATE, 10), "producer did not carry on")
        finally:
            self.stop_producer(run, bp)
        harness.log("produced %d: %d acknowledged, %d errors (first %r)" % (bp.seq, run.nacked, len(run.errors),
                                                                           run.errors[:3]))
        others = [e for e in run.errors if e[1] not in moved]
        self.assertEqual(others, [], "messages to partitions the killed broker did not lead failed")
        after = c.wait_converged([topic], {topic: parts}, timeout=10)[topic]
        self.assertTrue(all(after[p] != victim.id for p in range(parts)), after)
        harness.log("leaders before %r, after %r" % (leaders, after))
        self.assertNotIn(victim.id, c.etcd_brokers(), "the killed broker is still registered")
        el = c.etcd_leaders(topic)
        self.assertEqual({p: a["broker_id"] for p, a in el.items()}, after)
        self.readback(run, topic, parts)

    # ---- 3 ----

    def test_3_sigstop_past_the_lease_then_sigcont(self):
        c, topic, parts = self.c, "fence", 6
        leaders = self.create(topic, parts)
        victim = c.node(lead_counts(leaders).most_common(1)[0][0])
        moved = sorted(p for p, l in leaders.items() if l == victim.id)
        epochs0 = {p: a["epoch"] for p, a in c.etcd_leaders(topic).items()}
        run, bp = self.start_producer(topic, parts, extra=FAST_FAIL, rate=FENCE_RATE)
        try:
            self.assertTrue(du.wait_for(lambda: run.nacked >= 2 * FENCE_RATE, 20),
                            "only %d acknowledged before the pause; errors %r" % (run.nacked, run.errors[:5]))
            seq0 = bp.seq
            t0 = time.monotonic()
            victim.sigstop()
            others = [n for n in c.nodes if n is not victim]
            took_over = c.wait_for(lambda: c.converged([topic], {topic: parts}, nodes=others)[0], FAILOVER_LIMIT)
            self.assertTrue(took_over, "with broker %d paused, the others did not take over within %ds: %s"
                            % (victim.id, FAILOVER_LIMIT, c.converged([topic], {topic: parts}, nodes=others)[1]))
            ok = du.wait_for(lambda: self.acked_since(run, moved, seq0) == set(moved), FAILOVER_LIMIT)
            self.assertTrue(ok, "partitions %r of the paused broker took no write elsewhere (errors %r)"
                            % (moved, run.errors[-3:]))
            el = c.etcd_leaders(topic)
            for p in moved:
                self.assertNotEqual(el[p]["broker_id"], victim.id)
                self.assertGreater(el[p]["epoch"], epochs0[p], "%s[%d] changed leader without a higher epoch"
                                   % (topic, p))
            # paused for at least twice the TTL
            time.sleep(max(0.0, 2 * TTL - (time.monotonic() - t0)))
            harness.log("broker %d paused for %.1fs" % (victim.id, time.monotonic() - t0))
            n1 = run.nacked
            victim.sigcont()
            self.assertTrue(du.wait_for(lambda: run.nacked >= n1 + 2 * FENCE_RATE, 20),
                            "producer did not carry on after SIGCONT")
            c.wait_converged([topic], {topic: parts}, timeout=TTL + 20)
        finally:
            if victim.stopped:
                victim.sigcont()
            self.stop_producer(run, bp)
        harness.log("produced %d: %d acknowledged, %d errors (first %r)" % (bp.seq, run.nacked, len(run.errors),
                                                                           run.errors[:3]))
        self.assertTrue(victim.alive(), "the paused broker died after SIGCONT; log tail:\n%s" % victim.log_tail(30))

        # The bucket: flush what is pending, give a fenced flusher's uploads
        # a moment to be cleaned up, then check every segment against etcd
        # and every acknowledged message against the bucket (without the
        # broker's read path), then against what a consumer reads.
        for n in c.nodes:
            r = n.ctl("--json", "flush")
            self.assertEqual(r.returncode, 0, r.describe())
        c.wait_for(lambda: ch.segment_keys_differ(c, topic) == ([], []), 15, 0.5)
        wm = du.watermarks(c.bootstrap(), topic, parts)
        t0 = time.monotonic()
        segs = ch.bucket_segments(c, topic)
        problems = ch.check_bucket_against_etcd(c, topic, parts, bucket=segs, wm=wm)
        stored = {q: {} for q in range(parts)}   # offset -> seq, from the bucket's records
        where = {}
        for q in range(parts):
            for base, e in sorted(segs.get(q, {}).items()):
                for b in (e["seg"]["batches"] if e.get("seg") else []):
                    for rec in kr.batch_records(b["bytes"]):
                        seq = du.value_seq(rec["value"])
                        if rec["offset"] in stored[q]:
                            problems.append("%s[%d]: offset %d twice in the bucket" % (topic, q, rec["offset"]))
                        if seq in where:
                            problems.append("%s: message %r in the bucket twice: %r and %r" % (
                                topic, seq, where[seq], (q, rec["offset"])))
                        stored[q][rec["offset"]] = seq
                        where[seq] = (q, rec["offset"])
        twice = [x for x in problems if "in the bucket twice" in x]
        if twice:
            # Which segments (and which leader epochs) hold the two copies of
            # the first duplicated message, and what the producer was told.
            etcd_segs = c.etcd_segments(topic)
            seq = int(twice[0].split("message ")[1].split(" ")[0])
            q = seq % parts
            copies = sorted(o for o, v in stored[q].items() if v == seq)

            def seg_of(off):
                for d in etcd_segs.get(q, []):
                    if d["base_offset"] <= off <= d["last_offset"]:
                        return "segment %d..%d epoch %d created %d" % (
                            d["base_offset"], d["last_offset"], d["leader_epoch"], d["created_ms"])
                return "no etcd segment"
            acks = [o for o, sq in run.acked[q] if sq == seq]
            errs = [e for e in run.errors if e[0] == seq]
            problems.insert(0, "%s[%d]: message %d stored at offsets %r (%s); the producer (retries=0) got %s" % (
                topic, q, seq, copies, "; ".join(seg_of(o) for o in copies),
                ("an ack at offset %r" % acks) if acks else ("the error %r" % errs if errs else "no report")))
        lost = [(q, off, seq, stored[q].get(off)) for q in range(parts) for off, seq in run.acked[q]
                if stored[q].get(off) != seq]
        if lost:
            problems.append("%d acknowledged message(s) not in the bucket at their offset, first (p, offset, seq, "
                            "seq in the bucket) %r" % (len(lost), lost[:10]))
        harness.log("bucket: %d segments read and checked in %.1fs" % (
            sum(len(v) for q, v in segs.items() if q >= 0), time.monotonic() - t0))
        self.assertEqual(problems, [], "the bucket after the pause:\n" + "\n".join(problems[:30]))

        got = self.readback(run, topic, parts)
        diff = []
        for q in range(parts):
            read = {off: du.value_seq(v) for off, v in got["records"][q]}
            mine = {o: v for o, v in stored[q].items() if got["starts"][q] <= o < got["ends"][q]}
            if mine != read:
                bad = sorted(o for o in set(mine) | set(read) if mine.get(o) != read.get(o))
                diff.append("%s[%d]: bucket and consumer differ at %d offset(s), first (offset, bucket seq, "
                            "read seq) %r" % (topic, q, len(bad), [(o, mine.get(o), read.get(o)) for o in bad[:5]]))
        self.assertEqual(diff, [], "\n".join(diff[:20]))

    # ---- 4 ----

    def test_4_group_coordinator_killed(self):
        c, topic, parts, per = self.c, "grp", 6, 200
        self.create(topic, parts)
        run = du.ProduceRun(c.bootstrap(), topic, parts)
        run.produce_range(0, parts * per)
        self.assertEqual(run.flush(30), 0)
        run.p = None
        self.assertEqual((run.nacked, run.errors[:3]), (parts * per, []), "produce before the test")
        group = "grp-coord"
        ans = {n.id: ch.find_coordinator(n, group) for n in c.nodes}
        self.assertEqual(len(set(ans.values())), 1, ans)
        victim = c.node(ans[1][1])

        from confluent_kafka import Consumer, KafkaException, TopicPartition
        cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                         "heartbeat.interval.ms": 500, "max.poll.interval.ms": 60000,
                         "fetch.wait.max.ms": 100, "topic.metadata.refresh.interval.ms": 2000, "log_level": 3})
        seen = {q: [] for q in range(parts)}     # offsets in delivery order
        committed = {q: 0 for q in range(parts)}  # last commit that succeeded
        events = []                               # (what, partition, offset, committed then)
        commit_errors = []
        killed_at = None
        t_end = time.monotonic() + 90
        try:
            cons.subscribe([topic])
            while time.monotonic() < t_end:
                msgs = cons.consume(num_messages=50, timeout=0.2)
                batch = {}
                for m in msgs:
                    if m.error():
                        continue
                    q, off = m.partition(), m.offset()
                    prev = seen[q][-1] if seen[q] else -1
                    if off <= prev:
                        events.append(("rewind", q, off, committed[q], prev))
                    elif off != prev + 1:
                        events.append(("gap", q, off, committed[q], prev))
                    seen[q].append(off)
                    batch[q] = off + 1
                if batch:
                    try:
                        cons.commit(offsets=[TopicPartition(topic, q, o) for q, o in batch.items()],
                                    asynchronous=False)
                        committed.update(batch)
                    except KafkaException as e:
                        commit_errors.append(str(e))
                    time.sleep(0.05)
                total = sum(len(set(v)) for v in seen.values())
                if killed_at is None and total >= parts * per // 3:
                    harness.log("killing coordinator %d of %s after %d messages (committed %r)"
                                % (victim.id, group, total, committed))
                    victim.kill9()
                    killed_at = dict(committed)
                if all(committed[q] == per for q in range(parts)):
                    break
        finally:
            cons.close()
        harness.log("consumed %r; events %r; commit errors %d %r" % (
            {q: len(v) for q, v in seen.items()}, events[:10], len(commit_errors), commit_errors[:3]))
        self.assertIsNotNone(killed_at, "the coordinator was never killed")
        for what, q, off, comm, prev in events:
            self.assertNotEqual(what, "gap", "partition %d jumped from %d to %d" % (q, prev, off))
            self.assertGreaterEqual(off, comm, "partition %d re-delivered from %d after offset %d was committed"
                                    % (q, off, comm))
        self.assertEqual({q: sorted(set(v)) for q, v in seen.items()}, {q: list(range(per)) for q in range(parts)},
                         "the member did not consume every message after the coordinator moved")
        self.assertEqual(committed, {q: per for q in range(parts)},
                         "final commits did not all succeed (errors %r)" % commit_errors[-3:])
        ans = {n.id: ch.find_coordinator(n, group) for n in c.live()}
        self.assertEqual(len(set(ans.values())), 1, "FindCoordinator answers differ: %r" % ans)
        err, nid, _, _ = ans[c.live()[0].id]
        self.assertEqual(err, 0)
        self.assertNotEqual(nid, victim.id, "the dead broker is still named coordinator")
        err, offs = ch.offset_fetch(c.node(nid), group, {topic: list(range(parts))})
        self.assertEqual(err, 0)
        self.assertEqual({q: offs[(topic, q)][0] for q in range(parts)}, {q: per for q in range(parts)},
                         "offsets served by the new coordinator %d" % nid)
        stored = {}
        for v in c.etcd.get_prefix("/kafscale/offsets/").values():
            co = ch.decode_committed_offset(v)
            if co["group_id"] == group and co["topic"] == topic:
                stored[co["partition"]] = co["offset"]
        self.assertEqual(stored, {q: per for q in range(parts)}, "committed offsets in etcd")

    # ---- 5 ----

    def test_5_whole_cluster_restart(self):
        c, topic, parts = self.c, "persist", 4
        boot = c.bootstrap()
        self.assertEqual(du.create_topics(boot, [(topic, parts, {"retention.ms": "86400000"})]), {})
        c.wait_converged([topic], {topic: parts}, timeout=15)
        run = du.ProduceRun(boot, topic, parts)
        run.produce_range(0, 2000)
        self.assertEqual(run.flush(30), 0)
        run.p = None
        self.assertEqual((run.nacked, run.errors[:3]), (2000, []))
        group = "persist-g"
        from confluent_kafka import Consumer
        from confluent_kafka.admin import AdminClient, ConfigResource
        cons = Consumer({"bootstrap.servers": boot, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "log_level": 3})
        cons.subscribe([topic])
        n, t_end = 0, time.monotonic() + 30
        while n < 800 and time.monotonic() < t_end:
            for m in cons.consume(100, 0.5):
                if not m.error():
                    n += 1
        self.assertGreaterEqual(n, 800)
        cons.commit(asynchronous=False)
        cons.close()

        def state():
            md = ch.metadata(c.live()[0])
            topics = {t: len(v["partitions"]) for t, v in md["topics"].items() if v["error"] == 0}
            _, nid, _, _ = ch.find_coordinator(c.live()[0], group)
            err, offs = ch.offset_fetch(c.node(nid), group, {topic: list(range(parts))})
            self.assertEqual(err, 0)
            admin = AdminClient({"bootstrap.servers": boot})
            res = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
            cfg = {k: v.value for k, v in list(res.values())[0].result(timeout=15).items()}
            groups = {g.id for g in admin.list_groups(timeout=15)}
            return topics, {q: offs[(topic, q)][0] for q in range(parts)}, cfg["retention.ms"], groups

        before = state()
        got_before = du.consume_all(boot, topic, parts, timeout=30)
        self.assertEqual(du.verify(run.acked, got_before), [])
        self.assertEqual(sum(max(0, o) for o in before[1].values()), n,
                         "committed offsets before the restart: %r" % (before[1],))
        self.assertIn(group, before[3])

        statuses = c.stop_all()
        self.assertEqual({i: s in (0, -15) for i, s in statuses.items()}, {1: True, 2: True, 3: True},
                         "exit statuses after SIGTERM: %r" % statuses)
        gone = c.wait_for(lambda: not c.etcd_brokers(), TTL + 3)
        self.assertTrue(gone, "registrations outlived the brokers: %r" % c.etcd_brokers())
        c.s3.stop()
        c.etcd.stop()
        c.etcd.start()
        c.s3.start()
        t0 = time.monotonic()
        c.start_all(wait=False)
        c.wait_converged([topic], {topic: parts}, timeout=30)
        harness.log("cluster back in %.1fs" % (time.monotonic() - t0))

        after = state()
        self.assertEqual(after[0], before[0], "topics (name: partitions) before and after")
        self.assertEqual(after[1], before[1], "committed offsets of %s before and after" % group)
        self.assertEqual(after[2], "86400000", "retention.ms of %s after the restart" % topic)
        self.assertIn(group, after[3], "groups after the restart")
        got = du.consume_all(c.bootstrap(), topic, parts, timeout=30)
        self.assertEqual(du.verify(run.acked, got), [])
        self.assertEqual(got["records"], got_before["records"], "data before and after the restart")

        # A member resumes at the committed offsets.
        cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "log_level": 3})
        first = {}
        want = {q: max(0, before[1][q]) for q in range(parts) if before[1][q] < got["ends"][q]}
        try:
            cons.subscribe([topic])
            t_end = time.monotonic() + 30
            while set(first) != set(want) and time.monotonic() < t_end:
                for m in cons.consume(100, 0.5):
                    if not m.error():
                        first.setdefault(m.partition(), m.offset())
        finally:
            cons.close()
        self.assertEqual(first, want,
                         "first offsets the member got after the restart")

        # New messages continue the old offsets.
        run2 = du.ProduceRun(c.bootstrap(), topic, parts)
        run2.produce_range(10000, 10000 + 4 * parts)
        self.assertEqual(run2.flush(30), 0)
        run2.p = None
        self.assertEqual(run2.errors, [])
        self.assertEqual({q: min(o for o, _ in run2.acked[q]) for q in range(parts)},
                         {q: got["ends"][q] for q in range(parts)}, "offsets of the first new messages")

    # ---- 6 ----

    def test_6_topic_visibility(self):
        c = self.c
        topic = "visible"
        t0 = time.monotonic()
        self.assertEqual(ch.create_topic_raw(c.node(1), topic, 5), 0)
        t_created = time.monotonic()
        seen, usable = {}, {}
        deadline = t_created + 10
        while (len(seen) < 2 or len(usable) < 2) and time.monotonic() < deadline:
            for n in c.nodes[1:]:
                md = ch.metadata(n, [topic])["topics"].get(topic)
                now = time.monotonic()
                if md and md["error"] == 0 and sorted(md["partitions"]) == list(range(5)):
                    seen.setdefault(n.id, now - t_created)
                    if all(pm["error"] == 0 and pm["leader"] in (1, 2, 3) for pm in md["partitions"].values()):
                        usable.setdefault(n.id, now - t_created)
            time.sleep(0.01)
        harness.log("CreateTopics through broker 1 took %.3fs; listed by %r s, with leaders %r s" % (
            t_created - t0, seen, usable))
        self.assertEqual(sorted(seen), [2, 3], "topic created through broker 1 never listed by %r"
                         % sorted({2, 3} - set(seen)))
        for nid, s in seen.items():
            self.assertLess(s, 1.0, "broker %d listed the topic %.3fs after it was created" % (nid, s))
        self.assertEqual(sorted(usable), [2, 3], "partitions without leaders")
        for nid, s in usable.items():
            self.assertLess(s, 3.0, "broker %d had leaders for every partition only after %.3fs" % (nid, s))
        c.wait_converged([topic], {topic: 5}, timeout=5)

        # An operator adds a topic to the snapshot with etcdctl.
        snap = c.snapshot()
        self.assertIsInstance(snap, dict, "no /kafscale/metadata/snapshot")
        names = [t["name"] for t in snap.get("topics", [])]
        self.assertIn(topic, names, "the snapshot does not list the topic created through Kafka")
        snap["topics"].append({"name": "from-etcdctl", "partitions": 3})
        t0 = time.monotonic()
        c.put_snapshot(snap)   # etcdctl put
        leaders = c.wait_converged(["from-etcdctl"], {"from-etcdctl": 3}, timeout=10)
        harness.log("topic from etcdctl on every broker after %.3fs, leaders %r" % (time.monotonic() - t0, leaders))
        run = du.ProduceRun(c.bootstrap(), "from-etcdctl", 3)
        run.produce_range(0, 30)
        self.assertEqual(run.flush(30), 0)
        run.p = None
        self.assertEqual((run.nacked, run.errors), (30, []), "produce to the topic from etcdctl")
        got = du.consume_all(c.bootstrap(), "from-etcdctl", 3)
        self.assertEqual(du.verify(run.acked, got), [])
        for t in c.snapshot()["topics"]:
            if t["name"] == "from-etcdctl":
                self.assertEqual(t["partitions"], 3)
        # every other topic is still there
        md = ch.metadata(c.node(3))
        for name in names:
            self.assertIn(name, md["topics"], "topic %s vanished after the snapshot was written" % name)


if __name__ == "__main__":
    ch.main()
