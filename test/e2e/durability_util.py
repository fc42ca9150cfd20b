"""durability_util.py - shared helpers for the durability, store-layout,
store-outage and retention end-to-end tests (test_durability_file.py,
test_durability_s3.py, test_bucket_layout.py, test_store_outage.py,
test_retention.py). Uses harness.py (brokers by PID, temp dirs) without
changing it.

    import durability_util as du
    b = du.start_broker(env, name="dur")          # a du.Broker (harness.Broker)
    du.kill9_node(b)                              # SIGKILL flusher(s) + broker
    b.restart_same_port()                         # same data dir, same port
    run = du.ProduceRun(b.bootstrap, topic, nparts)
    run.produce_range(0, 1000)                    # sequence ids 0..999
    run.flush(60)
    got = du.consume_all(b.bootstrap, topic, nparts)
    problems = du.verify(run, got)                # [] when all is well

Message values: du.make_value(seq) - a 12-digit sequence id, '|', then a
filler that depends on the id, VALUE_SIZE bytes in all; du.value_seq(v)
reads the id back (None when v is not one of ours or is corrupt).
"""
import os
import signal
import subprocess
import threading
import time

import harness

VALUE_SIZE = 100
_FILLER = bytes(range(33, 127)) * 4  # printable, 376 bytes


def make_value(seq, size=VALUE_SIZE):
    head = b"%012d|" % seq
    k = seq % 89
    n = size - len(head)
    if n <= len(_FILLER) - k:
        return head + _FILLER[k:k + n]
    body = _FILLER[k:] + _FILLER * (n // len(_FILLER) + 1)
    return head + body[:n]


def value_seq(v):
    """The sequence id in a value made by make_value, or None."""
    if v is None or len(v) < 13 or v[12:13] != b"|":
        return None
    try:
        seq = int(v[:12])
    except ValueError:
        return None
    return seq if make_value(seq, len(v)) == v else None


# ---- processes ----


def child_pids(pid):
    """PIDs of the direct children of pid (pgrep -P), [] when none."""
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [int(x) for x in out.split()]


def proc_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rfind(")") + 2:][:1] not in ("Z", "X", "")


class Broker(harness.Broker):
    """harness.Broker plus: the flusher's PID, kill -9 of the whole node, and
    a restart on the same port and data dir."""

    def flusher_pids(self):
        """The supervised kafscale-flusher children of the broker (by PID)."""
        if not self.alive():
            return []
        return [c for c in child_pids(self.pid) if proc_name(c).startswith("kafscale-flush") and pid_alive(c)]

    def wait_flusher(self, timeout=10.0, not_pid=None):
        """Waits for a live flusher child (other than not_pid); returns its
        PID or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [p for p in self.flusher_pids() if p != not_pid]
            if pids:
                return pids[0]
            time.sleep(0.05)
        return None

    def restart_same_port(self, timeout=15.0, attempts=20):
        """Starts the broker again (after it died or was killed) on the same
        port and data dir, appending to the same log."""
        if self.alive():
            raise RuntimeError("%s is still running (pid %d)" % (self.name, self.pid))
        if self._logf and not self._logf.closed:
            self._logf.close()
        last = ""
        for attempt in range(attempts):
            self._logf = open(self.log_path, "ab")
            self._logf.write(("=== restart (attempt %d) on %s ===\n" % (attempt + 1, self.bootstrap)).encode())
            self._logf.flush()
            self.exit_status = None
            self.proc = subprocess.Popen([harness.BROKER_BIN], env=self.env(), stdin=subprocess.DEVNULL,
                                         stdout=self._logf, stderr=self._logf, cwd=self.dir,
                                         start_new_session=True)
            with harness._lock:
                if self not in harness._live:
                    harness._live.append(self)
            if harness.wait_port(self.host, self.port, timeout=timeout, proc=self.proc):
                harness.log("%s restarted: pid %d on %s" % (self.name, self.pid, self.bootstrap))
                return self
            status = harness.stop_process(self.proc, timeout=3)
            self._logf.close()
            last = "exit status %r; log tail:\n%s" % (status, self.log_tail(20))
            harness.log("%s restart attempt %d failed (%s)" % (self.name, attempt + 1, last))
            time.sleep(0.5)  # e.g. the port is still held a moment
        raise RuntimeError("%s did not restart on %s: %s" % (self.name, self.bootstrap, last))


def start_broker(env=None, name="broker", node_id=1, timeout=15.0):
    b = Broker(env=env, name=name, node_id=node_id)
    harness._all_brokers.append(b)
    return b.start(timeout=timeout)


def kill9(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def kill9_node(broker, timeout=10.0):
    """kill -9 of every process of the node: the flusher(s) (the broker's
    children, by PID) and the broker, as close together as possible. Waits
    until they are gone. Returns the flusher PIDs that were killed."""
    fl = broker.flusher_pids()
    for f in fl:
        kill9(f)
    kill9(broker.pid)
    try:
        broker.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("broker pid %d still alive %.0fs after SIGKILL" % (broker.pid, timeout))
    deadline = time.monotonic() + timeout
    while any(pid_alive(f) for f in fl) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [f for f in fl if pid_alive(f)]
    if left:
        raise AssertionError("flusher pid(s) %r still alive after SIGKILL" % left)
    broker.exit_status = broker.proc.returncode
    if broker._logf:
        broker._logf.close()
    with harness._lock:
        if broker in harness._live:
            harness._live.remove(broker)
    harness.log("killed -9 %s pid %d and flusher(s) %r" % (broker.name, broker.pid, fl))
    return fl


def wait_for(cond, timeout, interval=0.1):
    """Polls cond() until it returns a truthy value or timeout passes;
    returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---- admin ----


def create_topics(bootstrap, specs, timeout=20):
    """specs: list of (name, partitions, {config}). Returns {name: error
    repr} for failures ({} when all were created)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1, config=dict(c or {}))
                              for n, p, c in specs], operation_timeout=10, request_timeout=15)
    errs = {}
    for t, f in fs.items():
        try:
            f.result(timeout=timeout)
        except Exception as e:
            errs[t] = repr(e)
    return errs


def delete_topics(bootstrap, names, timeout=20):
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.delete_topics(list(names), operation_timeout=10, request_timeout=15)
    errs = {}
    for t, f in fs.items():
        try:
            f.result(timeout=timeout)
        except Exception as e:
            errs[t] = repr(e)
    return errs


def watermarks(bootstrap, topic, nparts, timeout=10.0):
    """{partition: (earliest, high watermark)} from ListOffsets."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-watermarks", "enable.auto.commit": False})
    try:
        return {q: tuple(c.get_watermark_offsets(TopicPartition(topic, q), timeout=timeout, cached=False))
                for q in range(nparts)}
    finally:
        c.close()


# ---- producing ----


class ProduceRun:
    """An acks=all, retries=0 confluent_kafka producer with a delivery
    report for every message: acked[partition] is a list of (offset, seq),
    errors a list of (seq, partition, error string). Sequence ids go to
    partition seq % nparts unless part_of is given."""

    def __init__(self, bootstrap, topic, nparts, extra_conf=None, part_of=None, value_size=VALUE_SIZE):
        from confluent_kafka import Producer
        self.topic = topic
        self.nparts = nparts
        self.part_of = part_of or (lambda s: s % nparts)
        self.value_size = value_size
        self.acked = {q: [] for q in range(nparts)}
        self.nacked = 0
        self.errors = []
        self.produced = 0
        self.lock = threading.Lock()
        conf = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": False,
            "retries": 0,                    # an acked message was written exactly once
            "linger.ms": 10,
            "batch.num.messages": 10000,
            "batch.size": 1000000,
            "queue.buffering.max.messages": 200000,
            "queue.buffering.max.kbytes": 262144,
            "message.timeout.ms": 60000,
            "request.timeout.ms": 30000,
            "socket.timeout.ms": 30000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 2000,
            "on_delivery": self._on_delivery,
            "log_level": 3,
        }
        conf.update(extra_conf or {})
        self.p = Producer(conf)

    def _on_delivery(self, err, m):
        v = m.value()
        seq = int(v[:12])
        if err is None:
            self.acked[m.partition()].append((m.offset(), seq))
            self.nacked += 1
        else:
            self.errors.append((seq, m.partition(), str(err)))

    def produce_one(self, seq, deadline):
        v = make_value(seq, self.value_size)
        q = self.part_of(seq)
        while True:
            try:
                self.p.produce(self.topic, value=v, partition=q)
                self.produced += 1
                return True
            except BufferError:
                if time.monotonic() > deadline:
                    return False
                self.p.poll(0.02)

    def produce_range(self, start, end, deadline=None, on_progress=None, every=2000, rate=None):
        """Produces sequence ids [start, end). on_progress(seq) runs every
        `every` messages (e.g. to kill something mid-stream). rate: messages
        per second (None: as fast as possible). Raises AssertionError when
        the local queue stays full past deadline."""
        deadline = deadline or time.monotonic() + 120
        t0 = time.monotonic()
        for seq in range(start, end):
            if not self.produce_one(seq, deadline):
                raise AssertionError("producer queue full until the deadline at seq %d (acked %d, errors %d)"
                                     % (seq, self.nacked, len(self.errors)))
            if (seq - start) % every == 0:
                self.p.poll(0)
                if on_progress:
                    on_progress(seq)
                if rate:
                    ahead = (seq - start) / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        self.p.poll(ahead)
        self.p.poll(0)

    def poll(self, t=0.0):
        self.p.poll(t)

    def wait_acked(self, n, timeout):
        """Polls until at least n messages were acknowledged; returns True
        when they were."""
        deadline = time.monotonic() + timeout
        while self.nacked < n and time.monotonic() < deadline:
            self.poll(0.05)
        return self.nacked >= n

    def flush(self, timeout=60.0):
        """Waits for every delivery report; returns how many are missing."""
        return self.p.flush(timeout)

    def acked_total(self):
        return sum(len(v) for v in self.acked.values())


def merge_acked(*runs):
    """{partition: [(offset, seq)]} over several ProduceRuns of one topic."""
    out = {}
    for r in runs:
        for q, lst in r.acked.items():
            out.setdefault(q, []).extend(lst)
    return out


class BackgroundProducer(threading.Thread):
    """Runs a ProduceRun in its own thread: sequence ids from `start` on, at
    `rate` messages per second, until stop() (then flushes). The thread
    alone touches the producer; others read run.nacked / run.produced /
    run.errors. error: the exception that ended the thread early, if any."""

    def __init__(self, run, rate=10000, start=0, flush_timeout=90.0):
        super().__init__(daemon=True)
        self.run_ = run
        self.rate = rate
        self.seq = start
        self.flush_timeout = flush_timeout
        self._stop_ev = threading.Event()
        self.error = None
        self.left = None

    def run(self):
        r = self.run_
        try:
            t0 = time.monotonic()
            sent = 0
            while not self._stop_ev.is_set():
                for _ in range(200):
                    if not r.produce_one(self.seq, time.monotonic() + 0.5):
                        break   # queue full: keep polling until there is room or stop()
                    self.seq += 1
                    sent += 1
                r.poll(0)
                ahead = sent / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(min(ahead, 0.1))  # (poll(t) returns at the first event)
            self.left = r.flush(self.flush_timeout)
        except Exception as e:  # reported by the test
            self.error = e

    def stop(self, timeout=120.0):
        self._stop_ev.set()
        self.join(timeout)
        return not self.is_alive()


# ---- consuming ----


def consume_all(bootstrap, topic, nparts, timeout=90.0, ends=None, start=None):
    """Reads every partition from the earliest offset (or start[q]) up to
    its high watermark at the time of the call (or ends[q]) with assign().
    Returns {"records": {q: [(offset, value)]}, "ends": {q: hw}, "starts":
    {q: earliest}, "errors": [str], "complete": bool}."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING
    wm = watermarks(bootstrap, topic, nparts)
    if ends is None:
        ends = {q: wm[q][1] for q in range(nparts)}
    starts = {q: wm[q][0] for q in range(nparts)}
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-readback", "enable.auto.commit": False,
                  "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": False, "fetch.wait.max.ms": 100,
                  "fetch.max.bytes": 8 << 20, "max.partition.fetch.bytes": 4 << 20,
                  "queued.max.messages.kbytes": 65536, "log_level": 3})
    recs = {q: [] for q in range(nparts)}
    errors = []
    pos = {}
    try:
        assign = []
        for q in range(nparts):
            off = start[q] if start and q in start else OFFSET_BEGINNING
            if ends[q] > (starts[q] if off == OFFSET_BEGINNING else off):
                assign.append(TopicPartition(topic, q, off))
        c.assign(assign)
        todo = {tp.partition for tp in assign}
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            msgs = c.consume(num_messages=20000, timeout=0.5)
            for m in msgs:
                e = m.error()
                if e is not None:
                    if e.code() != KafkaError._PARTITION_EOF and len(errors) < 50:
                        errors.append("p%s: %s" % (m.partition(), e))
                    continue
                q = m.partition()
                off = m.offset()
                if off < ends[q]:
                    recs[q].append((off, m.value()))
                pos[q] = off + 1
                if off + 1 >= ends[q]:
                    todo.discard(q)
        complete = not todo
    finally:
        c.close()
    return {"records": recs, "ends": ends, "starts": starts, "errors": errors, "complete": complete,
            "positions": pos}


# ---- checking ----


def verify(acked, got, max_report=10):
    """Checks a read-back (consume_all) against acknowledged messages
    ({partition: [(offset, seq)]}): every acknowledged message is there once,
    at its acknowledged offset; offsets are contiguous from the earliest
    offset to the high watermark; per partition, sequence ids increase with
    offsets (one producer at a time, each partition written in order); no
    value appears twice; every value is intact. Returns a list of problem
    strings ([] when all is well)."""
    problems = []
    recs = got["records"]
    if not got["complete"]:
        problems.append("read-back incomplete: reached %r, high watermarks %r (consumer errors: %r)"
                        % (got["positions"], got["ends"], got["errors"][:5]))
    seen = {}           # seq -> (partition, offset)
    by_off = {}         # partition -> {offset: seq}
    dup = []
    bad_values = []
    for q, lst in recs.items():
        want = got["starts"][q]
        gaps = []
        last_seq = -1
        order = []
        offs = by_off[q] = {}
        for off, v in lst:
            if off != want:
                gaps.append((want, off))
            want = off + 1
            seq = value_seq(v)
            offs[off] = seq
            if seq is None:
                bad_values.append((q, off, v[:40] if v else v))
                continue
            if seq in seen:
                dup.append((seq, seen[seq], (q, off)))
            seen[seq] = (q, off)
            if seq <= last_seq:
                order.append((q, off, seq, last_seq))
            last_seq = seq
        if gaps:
            problems.append("partition %d: %d offset gap(s)/repeat(s) below the high watermark, first (expected, got): %r"
                            % (q, len(gaps), gaps[:max_report]))
        if got["complete"] and want != got["ends"][q] and lst:
            problems.append("partition %d: read up to %d, high watermark %d" % (q, want, got["ends"][q]))
        if order:
            problems.append("partition %d: %d sequence id(s) out of order, first (p, offset, seq, previous): %r"
                            % (q, len(order), order[:max_report]))
    if dup:
        problems.append("%d value(s) appear more than once, first (seq, first at, again at): %r"
                        % (len(dup), dup[:max_report]))
    if bad_values:
        problems.append("%d corrupt/foreign value(s), first (p, offset, value): %r" % (len(bad_values),
                                                                                      bad_values[:max_report]))
    missing, wrong, not_once = [], [], []
    nacked = 0
    for q, lst in acked.items():
        offs = by_off.get(q, {})
        for off, seq in lst:
            nacked += 1
            if off not in offs:
                missing.append((q, off, seq))
            elif offs[off] != seq:
                wrong.append((q, off, seq, offs[off]))
            elif seen.get(seq) != (q, off):
                not_once.append((q, off, seq, seen.get(seq)))
    if missing:
        problems.append("%d of %d acknowledged message(s) MISSING, first (p, offset, seq): %r (partition ranges read: %r)"
                        % (len(missing), nacked, missing[:max_report],
                           {q: (got["starts"][q], got["ends"][q]) for q in recs}))
    if wrong:
        problems.append("%d acknowledged offset(s) hold another message, first (p, offset, acked seq, found seq): %r"
                        % (len(wrong), wrong[:max_report]))
    if not_once:
        problems.append("%d acknowledged message(s) not exactly once: %r" % (len(not_once), not_once[:max_report]))
    # The acknowledged offsets of one partition are distinct.
    for q, lst in acked.items():
        offs = [o for o, _ in lst]
        if len(set(offs)) != len(offs):
            problems.append("partition %d: the same offset acknowledged for two messages" % q)
    return problems


def summary(acked, got):
    n = sum(len(v) for v in got["records"].values())
    a = sum(len(v) for v in acked.values())
    return "%d acknowledged, %d read back, ranges %r" % (
        a, n, {q: (got["starts"][q], got["ends"][q]) for q in got["records"]})


# ---- object stores ----


def list_file_objects(data_dir, prefix=""):
    """{key: size} of the file backend's objects under data_dir/objects,
    ignoring in-progress temp files (.kstmp.*)."""
    root = os.path.join(data_dir, "objects")
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith(".kstmp."):
                continue
            path = os.path.join(d, f)
            key = os.path.relpath(path, root)
            if key.startswith(prefix):
                try:
                    out[key] = os.path.getsize(path)
                except OSError:
                    pass
    return out


def list_temp_files(data_dir):
    root = os.path.join(data_dir, "objects")
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.startswith(".kstmp.")]


def list_bucket(client, bucket, prefix=""):
    """{key: size} of every object in an S3 bucket (ListObjectsV2, paged)."""
    out = {}
    token = None
    for _ in range(10000):
        kw = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
        if token:
            kw["ContinuationToken"] = token
        r = client.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            out[o["Key"]] = o["Size"]
        if not r.get("IsTruncated"):
            break
        token = r.get("NextContinuationToken")
    return out


# ---- segment chains in a store (headers and footers only: fast) ----


def seg_bounds(head, foot):
    """(base offset, message count, last offset) from a .kfs's first 32 and
    last 16 bytes; ValueError when the magics are wrong."""
    import struct
    if len(head) < 32 or len(foot) < 16:
        raise ValueError("segment shorter than header + footer")
    magic, version, flags, base, count = struct.unpack_from(">4sHHqi", head, 0)
    _, last, fmagic = struct.unpack_from(">Iq4s", foot, len(foot) - 16)
    if magic != b"KAFS" or fmagic != b"END!" or version != 1:
        raise ValueError("bad magic/version: %r %r v%d" % (magic, fmagic, version))
    return base, count, last


def file_seg_bounds(data_dir, key):
    with open(os.path.join(data_dir, "objects", key), "rb") as f:
        head = f.read(32)
        f.seek(-16, os.SEEK_END)
        foot = f.read(16)
    return seg_bounds(head, foot)


def s3_seg_bounds(client, bucket, key):
    head = client.get_object(Bucket=bucket, Key=key, Range="bytes=0-31")["Body"].read()
    foot = client.get_object(Bucket=bucket, Key=key, Range="bytes=-16")["Body"].read()
    if len(head) != 32 or len(foot) != 16:   # a server that ignores Range
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        head, foot = data[:32], data[-16:]
    return seg_bounds(head, foot)


def check_chain(keys, topic, wm, bounds_of):
    """keys: every object key of the store (or a superset); wm: {partition:
    (earliest, high watermark)}; bounds_of(key) -> seg_bounds. Checks that
    each partition's .kfs objects, in base order, are contiguous (base =
    previous last + 1), each paired with its .index, with the key naming the
    header's base offset and count = last - base + 1, and that together
    they cover exactly [earliest, high watermark). Returns problems."""
    import kfs_reader as kr
    problems = []
    parts = {}
    for k in keys:
        try:
            info = kr.parse_key(k)
        except ValueError:
            continue
        if info["topic"] != topic:
            continue
        parts.setdefault(info["partition"], {}).setdefault(info["base_offset"], {})[info["ext"]] = k
    for q in sorted(set(parts) - set(wm)):
        problems.append("%s[%d]: objects for a partition that does not exist" % (topic, q))
    for q, (lo, hi) in sorted(wm.items()):
        segs = parts.get(q, {})
        if hi > lo and not segs:
            problems.append("%s[%d]: no segments for [%d, %d)" % (topic, q, lo, hi))
            continue
        expect = lo
        for base in sorted(segs):
            pair = segs[base]
            where = "%s[%d] segment %d" % (topic, q, base)
            if set(pair) != {"kfs", "index"}:
                problems.append("%s: only %r present" % (where, sorted(pair)))
                if "kfs" not in pair:
                    continue
            try:
                b, count, last = bounds_of(pair["kfs"])
            except (ValueError, OSError) as e:
                problems.append("%s: %s" % (where, e))
                continue
            if b != base:
                problems.append("%s: header base offset %d" % (where, b))
            if count != last - base + 1:
                problems.append("%s: %d messages for offsets %d..%d" % (where, count, base, last))
            if base != expect:
                problems.append("%s: covers %d..%d, expected to start at %d (overlap or hole)"
                                % (where, base, last, expect))
            expect = max(expect, last + 1)
        if segs and expect != hi:
            problems.append("%s[%d]: segments end at %d, high watermark %d" % (topic, q, expect, hi))
    return problems
