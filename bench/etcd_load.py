#!/usr/bin/python3
"""etcd_load.py - measures how much a Kafscale cluster writes to etcd under a
steady produce load (issue 6: "etcd load stays small: one transaction per
flush cycle for all partitions that flushed, no write per heartbeat or per
fetch. Measure and report etcd writes per second under a steady 10 MB/s
produce load over 64 partitions").

Starts (on loopback, by PID, all stopped at the end) one etcd, one s3rver
and --brokers brokers (test/e2e/cluster_harness.py), creates a topic of
--partitions partitions, measures etcd while idle for --idle seconds, then
produces --mb-per-s MB/s (rate-limited confluent-kafka producer, explicit
round-robin partitions, --size byte messages, --acks) for --seconds seconds
and reads etcd's /metrics before and after each phase:

  etcd_mvcc_put_total, etcd_mvcc_delete_total    keys written / deleted
  etcd_mvcc_txn_total                            write transactions
  etcd_server_proposals_committed_total          raft proposals committed

and the brokers' own counters (kafscale_flush_cycles_total,
kafscale_flush_segments_total, kafscale_etcd_operations_total by op).
Prints the figures (per second, and per flush cycle); --json also prints
them as one JSON object. Never passes or fails on speed: the exit status is
non-zero only when the measurement could not run (the cluster did not form,
a tool is missing). Bounded in time (about a minute with the defaults; a
hard limit of --seconds + 240 s ends everything).

    /usr/bin/python3 bench/etcd_load.py                 # 3 brokers, 64 partitions, 10 MB/s, 20 s
    /usr/bin/python3 bench/etcd_load.py --brokers 1 --seconds 10 --json
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))

import harness            # noqa: E402  (temp dirs, process cleanup at exit)
import cluster_harness as ch  # noqa: E402
import etcd_harness       # noqa: E402
import obs_util           # noqa: E402

ETCD_COUNTERS = ("etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_txn_total",
                 "etcd_server_proposals_committed_total", "etcd_mvcc_range_total")


def etcd_sample(cluster):
    m = cluster.etcd.metrics()
    return {k: etcd_harness.metric_sum(m, k) for k in ETCD_COUNTERS}


def broker_sample(cluster):
    """Sums over the live brokers: flush cycles, segments, etcd operations
    by op."""
    out = {"flush_cycles": 0.0, "flush_segments": 0.0, "etcd_ops": {}}
    for n in cluster.live():
        try:
            m = obs_util.scrape(n.metrics_port)
        except Exception as e:  # a broker without metrics: report, go on
            harness.log("scrape of broker %d failed: %r" % (n.id, e))
            continue
        for (name, labels), v in m.items():
            if name == "kafscale_flush_cycles_total":
                out["flush_cycles"] += v
            elif name == "kafscale_flush_segments_total":
                out["flush_segments"] += v
            elif name == "kafscale_etcd_operations_total":
                op = dict(labels).get("op", "?")
                out["etcd_ops"][op] = out["etcd_ops"].get(op, 0.0) + v
    return out


def delta(a, b, secs):
    return {k: (b[k] - a[k], (b[k] - a[k]) / secs) for k in a}


class RateProducer(threading.Thread):
    """Produces `rate` bytes per second of `size`-byte messages, round robin
    over the partitions, until stop(); counts acknowledged bytes."""

    def __init__(self, bootstrap, topic, partitions, rate, size, acks):
        super().__init__(daemon=True)
        from confluent_kafka import Producer
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "enable.idempotence": False,
                           "linger.ms": 5, "batch.size": 1000000, "queue.buffering.max.kbytes": 262144,
                           "message.timeout.ms": 60000, "log_level": 3})
        self.topic, self.partitions, self.rate, self.size = topic, partitions, rate, size
        self.value = (b"x" * size)
        self.sent = self.acked = self.errors = 0
        self.first_error = None
        self._stop_ev = threading.Event()
        self.left = None

    def _cb(self, err, m):
        if err is None:
            self.acked += 1
        else:
            self.errors += 1
            self.first_error = self.first_error or str(err)

    def run(self):
        t0 = time.monotonic()
        i = 0
        while not self._stop_ev.is_set():
            due = int((time.monotonic() - t0) * self.rate / self.size)
            while i < due and not self._stop_ev.is_set():
                try:
                    self.p.produce(self.topic, value=self.value, partition=i % self.partitions, on_delivery=self._cb)
                    i += 1
                    self.sent = i
                except BufferError:
                    self.p.poll(0.01)
            self.p.poll(0.005)
        self.left = self.p.flush(60)

    def stop(self):
        self._stop_ev.set()
        self.join(90)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=64)
    ap.add_argument("--mb-per-s", type=float, default=10.0, help="offered load, 10^6 bytes per second")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the measured load phase")
    ap.add_argument("--idle", type=float, default=5.0, help="length of the idle measurement")
    ap.add_argument("--size", type=int, default=1024, help="message size (bytes)")
    ap.add_argument("--acks", default="all", choices=("all", "1", "0"))
    ap.add_argument("--flush-ms", type=int, default=None, help="KAFSCALE_FLUSH_INTERVAL_MS (default: the broker's)")
    ap.add_argument("--ttl", type=int, default=10, help="KAFSCALE_LEASE_TTL_SEC")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = ap.parse_args()

    # A hard bound on the whole run: SIGALRM ends it (cleanup by atexit).
    def on_alarm(signum, frame):
        raise SystemExit("etcd_load.py: time limit reached")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.seconds + args.idle + 240))

    topic = "etcd-load"
    c = ch.Cluster(n=args.brokers, name="etcdload", lease_ttl=args.ttl, flush_interval_ms=args.flush_ms)
    try:
        c.start(wait=False)
        c.wait_converged(timeout=40)
        err = ch.create_topic_raw(c.node(1), topic, args.partitions)
        if err != 0:
            raise RuntimeError("CreateTopics %s: error %d" % (topic, err))
        leaders = c.wait_converged([topic], {topic: args.partitions}, timeout=40)[topic]
    except Exception as e:
        sys.stderr.write("etcd_load.py: the cluster did not form: %s\n" % e)
        c.dump(30)
        return 1
    per_broker = {}
    for p, l in leaders.items():
        per_broker[l] = per_broker.get(l, 0) + 1

    # idle
    e0, t0 = etcd_sample(c), time.monotonic()
    time.sleep(args.idle)
    e1, t1 = etcd_sample(c), time.monotonic()
    idle = delta(e0, e1, t1 - t0)

    # load
    prod = RateProducer(c.bootstrap(), topic, args.partitions, args.mb_per_s * 1e6, args.size, args.acks)
    prod.start()
    time.sleep(min(3.0, args.seconds / 4))        # warm-up, not measured
    e2, b2, s2, a2, t2 = etcd_sample(c), broker_sample(c), prod.sent, prod.acked, time.monotonic()
    time.sleep(args.seconds)
    e3, b3, s3, a3, t3 = etcd_sample(c), broker_sample(c), prod.sent, prod.acked, time.monotonic()
    prod.stop()
    secs = t3 - t2
    load = delta(e2, e3, secs)
    cycles = b3["flush_cycles"] - b2["flush_cycles"]
    segments = b3["flush_segments"] - b2["flush_segments"]
    ops = {op: (b3["etcd_ops"].get(op, 0) - b2["etcd_ops"].get(op, 0)) / secs
           for op in sorted(set(b3["etcd_ops"]) | set(b2["etcd_ops"]))}
    c.stop_all()

    offered_mb = (s3 - s2) * args.size / 1e6 / secs
    acked_mb = (a3 - a2) * args.size / 1e6 / secs
    writes = load["etcd_mvcc_put_total"][1] + load["etcd_mvcc_delete_total"][1]
    idle_writes = idle["etcd_mvcc_put_total"][1] + idle["etcd_mvcc_delete_total"][1]
    print("etcd load of a Kafscale cluster: %d broker(s), %d partitions (leaders per broker %r), "
          "%d-byte messages, acks=%s, flush interval %s, lease TTL %d s"
          % (args.brokers, args.partitions, per_broker, args.size, args.acks,
             "%d ms" % args.flush_ms if args.flush_ms else "default", args.ttl))
    print("load phase: %.1f s, produced %.2f MB/s, acknowledgements %.2f MB/s (offered %.2f MB/s); "
          "producer errors %d%s" % (secs, offered_mb, acked_mb, args.mb_per_s, prod.errors,
                                    " (first: %s)" % prod.first_error if prod.first_error else ""))
    print("")
    print("%-44s %12s %12s" % ("etcd (its /metrics)", "idle /s", "load /s"))
    for k in ETCD_COUNTERS:
        print("%-44s %12.2f %12.2f" % (k, idle[k][1], load[k][1]))
    print("%-44s %12.2f %12.2f" % ("writes (put + delete)", idle_writes, writes))
    print("")
    print("brokers: flush cycles %.2f/s, segments committed %.2f/s (%.1f per cycle)" % (
        cycles / secs, segments / secs, segments / cycles if cycles else 0.0))
    if cycles:
        print("etcd per flush cycle: %.2f txns, %.2f puts, %.2f proposals" % (
            load["etcd_mvcc_txn_total"][0] / cycles, load["etcd_mvcc_put_total"][0] / cycles,
            load["etcd_server_proposals_committed_total"][0] / cycles))
    if acked_mb > 0:
        print("etcd per MB acknowledged: %.2f writes, %.2f proposals" % (
            writes / acked_mb, load["etcd_server_proposals_committed_total"][1] / acked_mb))
    if ops:
        print("etcd requests made by the brokers (kafscale_etcd_operations_total), per second: %s" % (
            ", ".join("%s %.2f" % (op, v) for op, v in ops.items())))
    if args.json:
        print(json.dumps({
            "brokers": args.brokers, "partitions": args.partitions, "size": args.size, "acks": args.acks,
            "flush_ms": args.flush_ms, "seconds": round(secs, 2), "produced_mb_s": round(offered_mb, 3),
            "acked_mb_s": round(acked_mb, 3), "producer_errors": prod.errors,
            "etcd_idle_per_s": {k: round(v[1], 3) for k, v in idle.items()},
            "etcd_load_per_s": {k: round(v[1], 3) for k, v in load.items()},
            "etcd_writes_per_s": round(writes, 3),
            "flush_cycles_per_s": round(cycles / secs, 3), "segments_per_s": round(segments / secs, 3),
            "broker_etcd_ops_per_s": {k: round(v, 3) for k, v in ops.items()},
        }, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
