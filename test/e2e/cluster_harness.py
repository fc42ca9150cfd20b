"""cluster_harness.py - a Kafscale cluster on loopback for end-to-end tests:
one etcd (etcd_harness), one s3rver (s3rver_harness) and N brokers, each
with its own Kafka and metrics ports, data dir, run dir and shm name, all
sharing the etcd and the bucket (issue 6).

    import cluster_harness as ch
    c = ch.Cluster(n=3, name="t", lease_ttl=3).start()   # waits until every broker lists all
    c.bootstrap()                         # "127.0.0.1:A,127.0.0.1:B,127.0.0.1:C"
    n2 = c.node(2)                        # a Node: .bootstrap, .metrics_port, .pid, .log_tail()
    n2.kill9(); n2.sigstop(); n2.sigcont(); n2.stop(); n2.start(); n2.restart()
    c.stop_all(); c.start_all()
    c.wait_converged(["t"], {"t": 12})    # every live broker agrees: live ids, leaders
    ch.metadata(n2, ["t"])                # raw Metadata v1 through one broker
    ch.find_coordinator(n2, "group")      # raw FindCoordinator v1 through one broker
    c.etcd_leaders("t")                   # {p: PartitionAssignment} from etcd
    c.etcd_segments("t")                  # {p: [SegmentInfo]} from etcd
    c.snapshot(); c.put_snapshot(obj)     # /kafscale/metadata/snapshot (etcdctl)
    c.dump()                              # log tails of every process

Processes are ours alone and are ended by PID: each broker (SIGTERM, then
SIGKILL; brokers run in the test's process group, so a killed test takes
them along), the kafscale-flusher and kafscale-cached it
supervises (found through /proc/<pid>/task/*/children and the broker's
"started kafscale-... (pid N)" log lines, checked by name and by their
KAFSCALE_DATA_DIR before any signal), etcd and s3rver. A stopped
(SIGSTOP) process gets SIGCONT before it is ended. Everything still running
is ended at exit (atexit, which harness also reaches on SIGTERM), and the
shm objects of the nodes are unlinked. The environment of the test is not
passed on: no KAFSCALE_* / AWS_* variable reaches a broker unless the
cluster sets it.

Environment: KAFSCALE_BROKER_BIN (see harness.py), KAFSCALE_E2E_KEEP=1.
"""
import atexit
import json
import os
import re
import signal
import struct
import subprocess
import threading
import time

import harness
import durability_util as du
from durability_util import pid_alive, proc_name
import etcd_harness
import kproto
import s3rver_harness

CTL_BIN = os.environ.get("KAFSCALE_CTL_BIN", os.path.join(harness.REPO, "bin", "kafscale-ctl"))

# Kafka error codes the tests look for.
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16

API_FIND_COORDINATOR = 10
API_OFFSET_FETCH = 9

_clusters = []
_lock = threading.Lock()


# ---------------------------------------------------------------- processes


def pid_state(pid):
    """The one-letter state of pid (R, S, T, Z, ...), "" when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return ""
    return st[st.rfind(")") + 2:][:1]


def proc_env(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            out[k.decode("utf-8", "replace")] = v.decode("utf-8", "replace")
    return out


def proc_children(pid):
    """Direct children of pid, from /proc/<pid>/task/*/children."""
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


_STARTED_RE = re.compile(r"started kafscale-(flusher|cached) \(pid (\d+)\)")


class Node:
    """One broker of a Cluster (and the flusher and cached it supervises).
    Ports, data dir and shm name stay the same across restarts."""

    def __init__(self, cluster, node_id, extra_env=None):
        self.cluster = cluster
        self.id = node_id
        self.node_id = node_id
        self.name = "%s-b%d" % (cluster.name, node_id)
        self.extra_env = dict(extra_env or {})
        self.dir = harness.make_tmpdir("kafscale-e2e-%s-" % self.name)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "broker.log")
        self.host = harness.LOOPBACK
        self.port = harness.free_port()
        self.metrics_port = harness.free_port()
        self.shm_name = "/kafscale-test-%d-%s-%d" % (os.getpid(), cluster.name, node_id)
        self.proc = None
        self.exit_status = None
        self.started_once = False
        self.stopped = False     # SIGSTOPped by us
        self.children = set()    # every flusher/cached pid seen (by PID, checked before use)
        self.starts = 0
        self._logf = None

    # ---- addresses ----

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def metrics_addr(self):
        return "%s:%d" % (self.host, self.metrics_port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def env(self):
        e = {k: v for k, v in os.environ.items() if not (k.startswith("KAFSCALE_") or k.startswith("AWS_"))}
        e.update(self.cluster.node_env())
        e.update({
            "KAFSCALE_BROKER_ID": str(self.id),
            "KAFSCALE_BROKER_ADDR": self.bootstrap,
            "KAFSCALE_BROKER_HOST": self.host,
            "KAFSCALE_BROKER_PORT": str(self.port),
            "KAFSCALE_METRICS_ADDR": self.metrics_addr,
            "KAFSCALE_DATA_DIR": self.data_dir,
            "KAFSCALE_SHM_NAME": self.shm_name,
        })
        e.update({k: str(v) for k, v in self.extra_env.items()})
        return e

    # ---- processes ----

    def spawn(self):
        """Starts the broker process without waiting for its port."""
        if not os.access(harness.BROKER_BIN, os.X_OK):
            raise RuntimeError("broker binary %s missing (run `make`)" % harness.BROKER_BIN)
        if self.alive():
            raise RuntimeError("%s is already running (pid %d)" % (self.name, self.pid))
        if self._logf and not self._logf.closed:
            self._logf.close()
        self.starts += 1
        self._logf = open(self.log_path, "ab")
        self._logf.write(("=== start %d of %s on %s (metrics %s) ===\n" % (
            self.starts, self.name, self.bootstrap, self.metrics_addr)).encode())
        self._logf.flush()
        self.exit_status = None
        self.stopped = False
        # In the test's process group (not a session of its own): whoever
        # ends the test's group (run_all.py after a timeout, `timeout`, a
        # terminal's Ctrl-C) ends the brokers too, even when the test had no
        # chance to run its cleanup. Their flushers follow them
        # (PDEATHSIG); cached, in a session of its own, exits by itself
        # (KAFSCALE_CACHED_LINGER_MS) once no broker is connected.
        self.proc = subprocess.Popen([harness.BROKER_BIN], env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf, cwd=self.dir)
        self.start_mono = time.monotonic()
        return self

    def wait_listening(self, timeout=30.0):
        """Waits until the Kafka port accepts connections; on failure stops
        the process and raises with the log tail."""
        if harness.wait_port(self.host, self.port, timeout=timeout, proc=self.proc):
            self.started_once = True
            self.track()
            harness.log("%s pid %d listening on %s" % (self.name, self.pid, self.bootstrap))
            return self
        status = self._end(signal.SIGKILL, 3)
        raise RuntimeError("%s did not listen on %s within %.0fs (exit status %r); log tail:\n%s"
                           % (self.name, self.bootstrap, timeout, status, self.log_tail(40)))

    def start(self, timeout=30.0, attempts=3):
        last = None
        for attempt in range(attempts):
            try:
                return self.spawn().wait_listening(timeout)
            except RuntimeError as e:
                last = e
                harness.log("%s start attempt %d failed: %s" % (self.name, attempt + 1, str(e)[-4000:]))
                if not self.started_once:   # maybe a port was taken meanwhile: pick new ones
                    self.port, self.metrics_port = harness.free_port(), harness.free_port()
                time.sleep(0.5)
        raise last

    def track(self):
        """Records the flusher/cached children of the broker (by PID)."""
        if self.alive():
            for c in proc_children(self.pid):
                if proc_name(c).startswith("kafscale-"):
                    self.children.add(c)
        for kind, pid in _STARTED_RE.findall(self.log_text()):
            self.children.add(int(pid))
        return self

    def _ours(self, pid):
        """pid is a live kafscale-* process of this node (name and data dir)."""
        return (pid_alive(pid) and proc_name(pid).startswith("kafscale-")
                and proc_env(pid).get("KAFSCALE_DATA_DIR") == self.data_dir)

    def child_pids(self, kind=None):
        """Live flusher/cached processes of this node (kind: "flusher",
        "cached" or None for both)."""
        self.track()
        out = []
        for p in sorted(self.children):
            if self._ours(p) and (kind is None or proc_name(p).startswith("kafscale-" + kind[:6])):
                out.append(p)
        return out

    def flusher_pids(self):
        return self.child_pids("flusher")

    def _close_log(self):
        if self._logf and not self._logf.closed:
            self._logf.close()

    def _end(self, sig, timeout):
        """Sends sig to the broker (by PID), waits up to timeout, then
        SIGKILLs its process group. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.sigcont()
            _signal(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                harness.log("%s pid %d still running %.0fs after signal %d: SIGKILL" % (
                    self.name, self.proc.pid, timeout, sig))
                _signal(self.proc.pid, signal.SIGKILL)
                for p in self.child_pids("flusher"):
                    _signal(p, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.exit_status = self.proc.returncode
        self._close_log()
        return self.exit_status

    def stop(self, timeout=25.0, wait_children=True):
        """SIGTERM to the broker (by PID): a clean shutdown (everything
        accepted becomes durable, leadership is released). Waits for it and
        its flusher to exit. Returns the broker's exit status."""
        self.track()
        fl = self.flusher_pids()
        status = self._end(signal.SIGTERM, timeout)
        if wait_children:
            deadline = time.monotonic() + 10
            while any(pid_alive(p) for p in fl) and time.monotonic() < deadline:
                time.sleep(0.05)
            for p in fl:
                if self._ours(p):
                    harness.log("%s: flusher pid %d outlived its broker: SIGKILL" % (self.name, p))
                    _signal(p, signal.SIGKILL)
        harness.log("%s pid %s stopped (SIGTERM), status %r" % (self.name, self.pid, status))
        return status

    def kill9(self, with_children=True):
        """kill -9 of the node: the broker and (with_children) its flusher
        and cached, as close together as possible, as a crashed machine.
        Waits until they are gone; returns the child PIDs killed."""
        if not self.alive():
            raise AssertionError("%s is not running" % self.name)
        kids = self.child_pids() if with_children else []
        for p in kids:
            _signal(p, signal.SIGKILL)
        _signal(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s pid %d alive 10 s after SIGKILL" % (self.name, self.proc.pid))
        deadline = time.monotonic() + 10
        while any(pid_alive(p) for p in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.exit_status = self.proc.returncode
        self.stopped = False
        self._close_log()
        harness.log("kill -9 %s pid %d and children %r" % (self.name, self.proc.pid, kids))
        return kids

    def _node_pids(self, with_children):
        pids = [self.proc.pid] if self.alive() else []
        if with_children:
            pids += self.child_pids()
        return pids

    def sigstop(self, with_children=True):
        """SIGSTOP of the broker and (with_children) its flusher and cached:
        a paused machine. Returns the PIDs stopped."""
        pids = self._node_pids(with_children)
        for p in pids:
            _signal(p, signal.SIGSTOP)
        self.stopped_pids = pids
        self.stopped = True
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(pid_state(p) in ("T", "t", "") for p in pids):
            time.sleep(0.01)
        harness.log("SIGSTOP %s: pids %r" % (self.name, pids))
        return pids

    def sigcont(self):
        if not self.stopped:
            return []
        pids = list(getattr(self, "stopped_pids", []))
        if self.alive() and self.proc.pid not in pids:
            pids.append(self.proc.pid)
        for p in pids:
            _signal(p, signal.SIGCONT)
        self.stopped = False
        harness.log("SIGCONT %s: pids %r" % (self.name, pids))
        return pids

    def restart(self, timeout=30.0):
        """SIGTERM (when running), then start again on the same ports."""
        if self.alive():
            self.stop()
        return self.start(timeout=timeout)

    def cleanup(self):
        """Ends everything of this node that still runs (at exit)."""
        try:
            if self.stopped:
                self.sigcont()
            if self.alive():
                self._end(signal.SIGTERM, 8)
        except Exception as e:  # pragma: no cover - best effort
            harness.log("cleanup of %s failed: %s" % (self.name, e))
        self._close_log()
        kids = [p for p in sorted(self.children) if self._ours(p)]
        for p in kids:
            _signal(p, signal.SIGCONT)
            _signal(p, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while any(pid_alive(p) for p in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in kids:
            if self._ours(p):
                _signal(p, signal.SIGKILL)
        try:
            os.unlink("/dev/shm" + self.shm_name)
        except OSError:
            pass

    # ---- logs ----

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def sanitizer_errors(self):
        bad = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:", "LeakSanitizer",
               "Segmentation fault", "Assertion", "ThreadSanitizer")
        return [l for l in self.log_text().splitlines() if any(b in l for b in bad)]

    def ctl(self, *args, timeout=60.0):
        """bin/kafscale-ctl --addr <metrics addr> args... (harness.CmdResult)."""
        return harness.run_cmd([CTL_BIN, "--addr", self.metrics_addr] + [str(a) for a in args], timeout=timeout)


# ---------------------------------------------------------------- the cluster


class Cluster:
    """One etcd, one s3rver and n brokers (Nodes with ids 1..n)."""

    def __init__(self, n=3, name="cluster", lease_ttl=3, flush_interval_ms=50, bucket="kafscale",
                 env=None, node_env=None):
        self.name = name
        self.lease_ttl = lease_ttl
        self.flush_interval_ms = flush_interval_ms
        self.bucket = bucket
        self.extra_env = dict(env or {})
        self.etcd = etcd_harness.Etcd(name)
        self.s3 = s3rver_harness.S3rver(buckets=[bucket], name="s3rver-" + name)
        self.nodes = [Node(self, i + 1, (node_env or {}).get(i + 1)) for i in range(n)]
        for nd in self.nodes:
            harness._all_brokers.append(nd)  # harness.main() prints their log tails on failure
        with _lock:
            _clusters.append(self)

    def node_env(self):
        """What every broker of the cluster gets (before its own settings)."""
        e = self.s3.env(self.bucket)
        e.update({
            "KAFSCALE_ETCD_ENDPOINTS": self.etcd.url,
            "KAFSCALE_LEASE_TTL_SEC": str(self.lease_ttl),
            "KAFSCALE_AUTO_CREATE_TOPICS": "false",
            "KAFSCALE_CACHE_BYTES": str(32 << 20),
            "KAFSCALE_CACHED_LINGER_MS": "3000",
            "KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS": "500",
            "KAFSCALE_SHUTDOWN_TIMEOUT_MS": "20000",
            "KAFSCALE_LOG_LEVEL": "info",
        })
        if self.flush_interval_ms is not None:   # None: the broker's default
            e["KAFSCALE_FLUSH_INTERVAL_MS"] = str(self.flush_interval_ms)
        e.update({k: str(v) for k, v in self.extra_env.items()})
        return e

    # ---- lifecycle ----

    def start(self, wait=True, timeout=40.0):
        ok, why = etcd_harness.available()
        if not ok:
            raise RuntimeError(why)
        ok, why = s3rver_harness.available()
        if not ok:
            raise RuntimeError(why)
        self.etcd.start()
        self.s3.start()
        self.start_all(wait=wait, timeout=timeout)
        return self

    def start_all(self, wait=True, timeout=40.0):
        """Starts every broker that is not running (all at once), waits for
        their Kafka ports and (wait) until every broker lists them all."""
        todo = [n for n in self.nodes if not n.alive()]
        for n in todo:
            n.spawn()
        for n in todo:
            try:
                n.wait_listening(timeout)
            except RuntimeError:
                n.start(timeout)   # one more go (e.g. a port taken meanwhile)
        if wait:
            self.wait_converged(timeout=timeout)
        return self

    def stop_all(self, timeout=25.0):
        """SIGTERM to every running broker at once; waits for them. Returns
        {node id: exit status}."""
        live = [n for n in self.nodes if n.alive()]
        for n in live:
            n.track()
            n.sigcont()
            _signal(n.proc.pid, signal.SIGTERM)
        out = {}
        for n in live:
            out[n.id] = n.stop(timeout=timeout)
        return out

    def shutdown_checked(self):
        """Stops every broker with SIGTERM, cleans everything up, then raises
        AssertionError when a broker exited other than cleanly or a sanitizer
        reported (tearDownClass of the cluster tests)."""
        statuses = self.stop_all()
        errs = self.sanitizer_errors()
        self.cleanup()
        bad = {i: s for i, s in statuses.items() if s not in (0, -15)}
        if bad or errs:
            raise AssertionError("broker exit statuses after SIGTERM %r; sanitizer reports %r" % (bad, errs))

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()
        for f in (self.s3.stop, self.etcd.stop):
            try:
                f()
            except Exception as e:  # pragma: no cover
                harness.log("cleanup of %s: %s" % (self.name, e))

    # ---- who is who ----

    def node(self, node_id):
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def live(self):
        return [n for n in self.nodes if n.alive() and not n.stopped]

    def bootstrap(self, nodes=None):
        return ",".join(n.bootstrap for n in (nodes or self.nodes))

    # ---- etcd ----

    def etcd_brokers(self):
        """{broker id: BrokerRegistration dict (plus etcd_lease)} under
        /kafscale/brokers/."""
        out = {}
        for kv in self.etcd.get_prefix_kvs("/kafscale/brokers/"):
            d = decode_broker_registration(kv["v"])
            d["etcd_lease"] = kv["lease"]
            d["key"] = kv["k"]
            try:
                out[int(kv["k"].rsplit("/", 1)[1])] = d
            except ValueError:
                out[kv["k"]] = d
        return out

    def etcd_leaders(self, topic):
        """{partition: PartitionAssignment dict (plus etcd_lease)} from
        /kafscale/partitions/<topic>/<p>/leader."""
        out = {}
        pre = "/kafscale/partitions/%s/" % topic
        for kv in self.etcd.get_prefix_kvs(pre):
            rest = kv["k"][len(pre):].split("/")
            if len(rest) == 2 and rest[1] == "leader" and rest[0].isdigit():
                d = decode_partition_assignment(kv["v"])
                d["etcd_lease"] = kv["lease"]
                out[int(rest[0])] = d
        return out

    def etcd_segments(self, topic):
        """{partition: [SegmentInfo dicts, by base offset]} from
        /kafscale/segments/<topic>/<p>/<base>; each dict also has key_base
        (the base offset the key names) and key."""
        out = {}
        pre = "/kafscale/segments/%s/" % topic
        for kv in self.etcd.get_prefix_kvs(pre):
            rest = kv["k"][len(pre):].split("/")
            if len(rest) != 2 or not rest[0].isdigit():
                continue
            d = decode_segment_info(kv["v"])
            d["key"] = kv["k"]
            d["key_base"] = int(rest[1]) if rest[1].isdigit() else None
            out.setdefault(int(rest[0]), []).append(d)
        for lst in out.values():
            lst.sort(key=lambda d: (d["key_base"] if d["key_base"] is not None else -1))
        return out

    def snapshot(self):
        """The parsed JSON of /kafscale/metadata/snapshot (None when absent)."""
        v = self.etcd.get("/kafscale/metadata/snapshot")
        return None if v is None else json.loads(v.decode())

    def put_snapshot(self, obj):
        return self.etcd.put("/kafscale/metadata/snapshot", json.dumps(obj) if not isinstance(obj, str) else obj)

    # ---- waiting ----

    def cluster_view(self, topics=None, nodes=None):
        """{node id: metadata(node, topics) or the exception text} from the
        given (default: live) nodes."""
        out = {}
        for n in nodes or self.live():
            try:
                out[n.id] = metadata(n, topics)
            except Exception as e:
                out[n.id] = "error: %r" % e
        return out

    def converged(self, topics=None, partitions=None, nodes=None, ready=True):
        """(True, leaders) when every live broker's Metadata lists exactly
        the live broker ids (with their addresses) and, for each topic,
        every partition (partitions[topic] of them, when given) with a live
        leader, the same from every broker, and (ready) each leader answers
        ListOffsets(latest) for its partitions without an error (a leader
        that has not loaded the committed end yet answers
        LEADER_NOT_AVAILABLE). (False, why) otherwise. leaders: {topic: {p:
        leader id}}."""
        live = nodes or self.live()
        ids = sorted(n.id for n in live)
        view = self.cluster_view(topics, live)
        leaders = None
        for nid, md in view.items():
            if isinstance(md, str):
                return False, "broker %d: %s" % (nid, md)
            got = sorted(md["brokers"])
            if got != ids:
                return False, "broker %d lists brokers %r, live are %r" % (nid, got, ids)
            for bid, (h, p, _r) in md["brokers"].items():
                nd = self.node(bid)
                if (h, p) != (nd.host, nd.port):
                    return False, "broker %d lists broker %d at %s:%d, it is at %s" % (nid, bid, h, p, nd.bootstrap)
            mine = {}
            for t in topics or []:
                tm = md["topics"].get(t)
                if tm is None or tm["error"] != 0:
                    return False, "broker %d: topic %s %s" % (nid, t, "missing" if tm is None else
                                                               "error %d" % tm["error"])
                want = (partitions or {}).get(t)
                if want is not None and sorted(tm["partitions"]) != list(range(want)):
                    return False, "broker %d: topic %s has partitions %r, want %d" % (
                        nid, t, sorted(tm["partitions"]), want)
                for p, pm in tm["partitions"].items():
                    if pm["error"] != 0 or pm["leader"] not in ids:
                        return False, "broker %d: %s[%d] error %d leader %d (live %r)" % (
                            nid, t, p, pm["error"], pm["leader"], ids)
                mine[t] = {p: pm["leader"] for p, pm in tm["partitions"].items()}
            if leaders is None:
                leaders = mine
            elif leaders != mine:
                return False, "brokers disagree on leaders: %r vs broker %d %r" % (leaders, nid, mine)
        if ready:
            for t, lm in (leaders or {}).items():
                by = {}
                for p, l in lm.items():
                    by.setdefault(l, []).append(p)
                for l, ps in by.items():
                    try:
                        res = list_offsets(self.node(l), t, ps)
                    except Exception as e:
                        return False, "ListOffsets %s %r at leader %d: %r" % (t, ps, l, e)
                    bad = {p: e for p, (e, _o) in res.items() if e != 0}
                    if bad or sorted(res) != sorted(ps):
                        return False, "ListOffsets(latest) at leader %d of %s: errors %r" % (l, t, bad or res)
        return True, leaders or {}

    def wait_converged(self, topics=None, partitions=None, timeout=30.0, nodes=None, ready=True):
        """Polls converged() until it holds; returns the leaders. Raises
        AssertionError with the last reason and the broker log tails on
        timeout."""
        deadline = time.monotonic() + timeout
        why = ""
        while True:
            ok, res = self.converged(topics, partitions, nodes, ready)
            if ok:
                return res
            why = res
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise AssertionError("cluster did not converge within %.0fs: %s" % (timeout, why))

    def wait_for(self, cond, timeout, interval=0.1):
        return du.wait_for(cond, timeout, interval)

    # ---- diagnostics ----

    def dump(self, lines=60, out=None):
        import sys
        out = out or sys.stderr
        for n in self.nodes:
            out.write("\n===== %s log tail (%s, pid %s, exit %r) =====\n%s\n" % (
                n.name, n.log_path, n.pid, n.exit_status, n.log_tail(lines)))
        out.write("\n===== etcd %s =====\n%s\n" % (self.name, self.etcd.log_tail(20)))
        out.write("\n===== s3rver %s =====\n%s\n" % (self.name, self.s3.log_tail(10)))
        out.flush()

    def sanitizer_errors(self):
        return {n.id: n.sanitizer_errors() for n in self.nodes if n.sanitizer_errors()}


def _cleanup_all():
    with _lock:
        cl = list(_clusters)
    for c in cl:
        c.cleanup()


# Registered after harness's and etcd_harness's (imported above), so it runs
# first at exit: brokers before etcd, everything before the temp dirs go.
atexit.register(_cleanup_all)


# ---------------------------------------------------------------- raw Kafka requests

_corr = [1000]


def _next_corr():
    _corr[0] += 1
    return _corr[0]


def call(node, api_key, version, body, timeout=5.0):
    """One raw request to one broker (a fresh connection); the response body."""
    with kproto.Conn(node.host, node.port, timeout=timeout) as c:
        return c.call(api_key, version, _next_corr(), body)


def metadata(node, topics=None, timeout=5.0):
    """Metadata v1 through one broker: {"brokers": {id: (host, port, rack)},
    "controller": id, "topics": {name: {"error": e, "partitions": {p:
    {"error": e, "leader": id, "replicas": [..], "isr": [..]}}}}}."""
    body = call(node, kproto.API_METADATA, 1, kproto.metadata_v1_body(topics), timeout)
    brokers, controller, tops = kproto.parse_metadata_v1_response(body)
    out = {"brokers": {b[0]: (b[1], b[2], b[3]) for b in brokers}, "controller": controller, "topics": {}}
    for err, name, _internal, parts in tops:
        out["topics"][name] = {"error": err, "partitions": {
            p[1]: {"error": p[0], "leader": p[2], "replicas": p[3], "isr": p[4]} for p in parts}}
    return out


def find_coordinator(node, group, timeout=5.0):
    """FindCoordinator v1 (group key) through one broker: (error, node id,
    host, port)."""
    body = call(node, API_FIND_COORDINATOR, 1, kproto.string(group) + kproto.i8(0), timeout)
    r = kproto.Reader(body)
    r.i32()  # throttle
    err = r.i16()
    r.string()  # error message
    nid, host, port = r.i32(), r.string(), r.i32()
    return err, nid, host, port


def offset_fetch(node, group, topics=None, timeout=5.0):
    """OffsetFetch v3 through one broker: (top-level error, {(topic, p):
    (offset, error)}). topics: {topic: [partitions]} or None (all)."""
    if topics is None:
        tb = kproto.i32(-1)
    else:
        tb = kproto.array([kproto.string(t) + kproto.array([kproto.i32(p) for p in ps]) for t, ps in topics.items()])
    body = call(node, API_OFFSET_FETCH, 3, kproto.string(group) + tb, timeout)
    r = kproto.Reader(body)
    r.i32()  # throttle
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p, off = r.i32(), r.i64()
            r.string()
            out[(t, p)] = (off, r.i16())
    return r.i16(), out


def produce_raw(node, topic, partition, values, acks=-1, timeout_ms=10000, timeout=15.0):
    """Produce v3 of one uncompressed batch through one broker: (error,
    base offset)."""
    batch = kproto.record_batch([(None, v) for v in values])
    body = call(node, kproto.API_PRODUCE, 3, kproto.produce_v3_body(topic, partition, batch, acks, timeout_ms),
                timeout)
    res, _ = kproto.parse_produce_v3_response(body)
    return res[0][2], res[0][3]


def create_topic_raw(node, name, partitions, timeout_ms=10000, timeout=15.0):
    """CreateTopics v0 through one broker: the error code for the topic."""
    body = call(node, kproto.API_CREATE_TOPICS, 0, kproto.create_topics_v0_body([(name, partitions)], timeout_ms),
                timeout)
    res = kproto.parse_create_topics_v0_response(body)
    return dict(res).get(name)


# ---------------------------------------------------------------- protobuf (kafscale.metadata)


def _pb_fields(data):
    """Decodes protobuf wire format: {field number: [values]} (varints as
    ints, length-delimited as bytes, fixed as ints)."""
    out = {}
    i, n = 0, len(data)

    def varint():
        nonlocal i
        shift = v = 0
        while True:
            if i >= n:
                raise ValueError("protobuf: truncated varint")
            b = data[i]
            i += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    while i < n:
        key = varint()
        fno, wt = key >> 3, key & 7
        if wt == 0:
            v = varint()
        elif wt == 1:
            v = struct.unpack_from("<Q", data, i)[0]
            i += 8
        elif wt == 2:
            ln = varint()
            v = bytes(data[i:i + ln])
            if len(v) != ln:
                raise ValueError("protobuf: truncated field %d" % fno)
            i += ln
        elif wt == 5:
            v = struct.unpack_from("<I", data, i)[0]
            i += 4
        else:
            raise ValueError("protobuf: wire type %d" % wt)
        out.setdefault(fno, []).append(v)
    return out


def _s64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _pb(data, spec):
    """spec: {field: (name, kind)} with kind i32, i64, str, bytes."""
    f = _pb_fields(data)
    out = {}
    for fno, (name, kind) in spec.items():
        vals = f.get(fno)
        if not vals:
            out[name] = {"i32": 0, "i64": 0, "str": "", "bytes": b""}[kind]
            continue
        v = vals[-1]
        if kind == "i32":
            v = _s32(v)
        elif kind == "i64":
            v = _s64(v)
        elif kind == "str":
            v = v.decode("utf-8", "replace")
        out[name] = v
    return out


def decode_partition_assignment(data):
    return _pb(data, {2: ("epoch", "i32"), 16: ("broker_id", "i32"), 17: ("lease_id", "i64"),
                      18: ("assigned_ms", "i64"), 19: ("topic", "str"), 20: ("partition", "i32"),
                      21: ("topic_id", "bytes")})


def decode_segment_info(data):
    return _pb(data, {1: ("base_offset", "i64"), 2: ("size_bytes", "i64"), 16: ("topic", "str"),
                      17: ("topic_id", "bytes"), 18: ("partition", "i32"), 19: ("leader_epoch", "i32"),
                      20: ("last_offset", "i64"), 21: ("max_timestamp", "i64"), 22: ("created_ms", "i64")})


def decode_broker_registration(data):
    return _pb(data, {2: ("host", "str"), 3: ("port", "i32"), 4: ("rack", "str"), 7: ("version", "str"),
                      16: ("broker_id", "i32"), 17: ("started_ms", "i64"), 18: ("lease_id", "i64")})


def decode_committed_offset(data):
    return _pb(data, {1: ("offset", "i64"), 2: ("metadata", "str"), 4: ("leader_epoch", "i32"),
                      20: ("group_id", "str"), 21: ("topic", "str"), 22: ("partition", "i32")})


# ---------------------------------------------------------------- the bucket


def bucket_segments(cluster, topic, parse=True):
    """{partition: {base: {"kfs": key, "index": key, "size": n, "seg":
    parsed segment or None, "error": str or None}}} of the topic's objects
    in the cluster's bucket. parse: GET and check every .kfs (and its index)
    with kfs_reader."""
    import kfs_reader as kr
    client = cluster.s3.boto3_client()
    try:
        keys = du.list_bucket(client, cluster.bucket, "default/%s/" % topic)
        out = {}
        for k, size in keys.items():
            try:
                info = kr.parse_key(k)
            except ValueError:
                out.setdefault(-1, {}).setdefault(k, {"error": "not a segment key", "size": size})
                continue
            if info["topic"] != topic:
                continue
            e = out.setdefault(info["partition"], {}).setdefault(info["base_offset"], {"seg": None, "error": None})
            e[info["ext"]] = k
            if info["ext"] == "kfs":
                e["size"] = size
        if parse:
            for q, segs in out.items():
                if q < 0:
                    continue
                for base, e in segs.items():
                    if "kfs" not in e:
                        e["error"] = "index without segment"
                        continue
                    try:
                        data = client.get_object(Bucket=cluster.bucket, Key=e["kfs"])["Body"].read()
                        e["seg"] = kr.parse_segment(data)
                        if "index" in e:
                            idx = kr.parse_index(client.get_object(Bucket=cluster.bucket,
                                                                   Key=e["index"])["Body"].read())
                            kr.check_index(e["seg"], idx)
                        else:
                            e["error"] = "segment without index"
                    except Exception as ex:
                        e["error"] = str(ex)
        return out
    finally:
        client.close()


def segment_keys_differ(cluster, topic):
    """Cheap comparison (listings only): the (partition, base offset) pairs
    of .kfs objects in the bucket that etcd does not name, and those etcd
    names that the bucket lacks: (only_in_bucket, only_in_etcd)."""
    import kfs_reader as kr
    client = cluster.s3.boto3_client()
    try:
        keys = du.list_bucket(client, cluster.bucket, "default/%s/" % topic)
    finally:
        client.close()
    in_bucket = set()
    for k in keys:
        try:
            info = kr.parse_key(k)
        except ValueError:
            continue
        if info["ext"] == "kfs" and info["topic"] == topic:
            in_bucket.add((info["partition"], info["base_offset"]))
    in_etcd = {(q, d["base_offset"]) for q, lst in cluster.etcd_segments(topic).items() for d in lst}
    return sorted(in_bucket - in_etcd), sorted(in_etcd - in_bucket)


def check_bucket_against_etcd(cluster, topic, nparts, bucket=None, wm=None):
    """Per partition: the bucket's segments parse, do not overlap, are
    contiguous, and are exactly the ones etcd's segment keys name (same
    base, last offset and size); etcd's leader epochs of segments never go
    down with the offset; with wm ({p: (earliest, high watermark)}) the
    segments cover [earliest, high watermark). bucket: what
    bucket_segments() returned (fetched when None). Returns a list of
    problems ([] when all is well)."""
    problems = []
    if bucket is None:
        bucket = bucket_segments(cluster, topic)
    etcd = cluster.etcd_segments(topic)
    for k in bucket.get(-1, {}):
        problems.append("foreign key in the topic's prefix: %s" % k)
    for q in range(nparts):
        b = bucket.get(q, {})
        e = {d["base_offset"]: d for d in etcd.get(q, [])}
        for d in etcd.get(q, []):
            if d["key_base"] != d["base_offset"]:
                problems.append("%s[%d]: etcd key %s names base %r, value says %d"
                                % (topic, q, d["key"], d["key_base"], d["base_offset"]))
        # overlap and parse errors in the bucket
        prev = None
        for base in sorted(b):
            ent = b[base]
            if ent.get("error"):
                problems.append("%s[%d] segment %d in the bucket: %s" % (topic, q, base, ent["error"]))
            seg = ent.get("seg")
            if seg is None:
                continue
            if seg["base_offset"] != base:
                problems.append("%s[%d] object %s holds base offset %d" % (topic, q, ent["kfs"], seg["base_offset"]))
            if prev is not None and seg["base_offset"] <= prev[1]:
                problems.append("%s[%d]: bucket segments overlap: %d..%d and %d..%d" % (
                    topic, q, prev[0], prev[1], seg["base_offset"], seg["last_offset"]))
            elif prev is not None and seg["base_offset"] != prev[1] + 1:
                problems.append("%s[%d]: hole in the bucket between %d and %d" % (
                    topic, q, prev[1], seg["base_offset"]))
            prev = (seg["base_offset"], seg["last_offset"])
        if wm is not None and q in wm:
            lo, hi = wm[q]
            parsed = [b[base]["seg"] for base in sorted(b) if b[base].get("seg")]
            if hi > lo and not parsed:
                problems.append("%s[%d]: no segments for offsets [%d, %d)" % (topic, q, lo, hi))
            elif parsed:
                if parsed[0]["base_offset"] > lo:
                    problems.append("%s[%d]: first segment starts at %d, earliest offset is %d" % (
                        topic, q, parsed[0]["base_offset"], lo))
                if parsed[-1]["last_offset"] + 1 != hi:
                    problems.append("%s[%d]: segments end at %d, high watermark is %d" % (
                        topic, q, parsed[-1]["last_offset"] + 1, hi))
        # bucket vs etcd
        for base in sorted(set(b) | set(e)):
            if base not in e:
                seg = b[base].get("seg")
                problems.append("%s[%d]: segment %s in the bucket (offsets %s) that etcd does not name" % (
                    topic, q, base, "%d..%d" % (seg["base_offset"], seg["last_offset"]) if seg else "?"))
                continue
            if base not in b:
                problems.append("%s[%d]: etcd names segment %d..%d, missing from the bucket" % (
                    topic, q, base, e[base]["last_offset"]))
                continue
            seg = b[base].get("seg")
            if seg is None:
                continue
            if seg["last_offset"] != e[base]["last_offset"]:
                problems.append("%s[%d] segment %d: bucket ends at %d, etcd says %d (overwritten?)" % (
                    topic, q, base, seg["last_offset"], e[base]["last_offset"]))
            if b[base].get("size") != e[base]["size_bytes"]:
                problems.append("%s[%d] segment %d: %r bytes in the bucket, etcd says %d" % (
                    topic, q, base, b[base].get("size"), e[base]["size_bytes"]))
        epochs = [(d["base_offset"], d["leader_epoch"]) for d in sorted(etcd.get(q, []), key=lambda d: d["base_offset"])]
        for (b0, e0), (b1, e1) in zip(epochs, epochs[1:]):
            if e1 < e0:
                problems.append("%s[%d]: segment %d committed by epoch %d after segment %d by epoch %d" % (
                    topic, q, b1, e1, b0, e0))
    return problems


def fetch_raw(node, topic, partition, offset, max_wait_ms=500, max_bytes=1 << 20, timeout=15.0):
    """Fetch v4 of one partition through one broker: (error, high
    watermark, log start (-1: not in v4), records bytes)."""
    body = (kproto.i32(-1) + kproto.i32(max_wait_ms) + kproto.i32(1) + kproto.i32(max_bytes) + kproto.i8(0)
            + kproto.array([kproto.string(topic) + kproto.array([
                kproto.i32(partition) + kproto.i64(offset) + kproto.i32(max_bytes)])]))
    resp = call(node, kproto.API_FETCH, 4, body, timeout)
    r = kproto.Reader(resp)
    r.i32()  # throttle
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            r.i32()
            err, hw = r.i16(), r.i64()
            r.i64()  # last stable offset
            n = r.i32()
            for _ in range(max(n, 0)):
                r.i64()
                r.i64()
            ln = r.i32()
            recs = r.take(ln) if ln > 0 else b""
            return err, hw, -1, recs
    raise ValueError("fetch: no partition in the response")


def list_offsets(node, topic, partitions, timestamp=-1, timeout=5.0):
    """ListOffsets v1 through one broker (-1 latest, -2 earliest): {p:
    (error, offset)}."""
    body = kproto.i32(-1) + kproto.array([kproto.string(topic) + kproto.array(
        [kproto.i32(p) + kproto.i64(timestamp) for p in partitions])])
    r = kproto.Reader(call(node, kproto.API_LIST_OFFSETS, 1, body, timeout))
    out = {}
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            p, err = r.i32(), r.i16()
            r.i64()  # timestamp
            off = r.i64()
            out[p] = (err, off)
    return out


def main():
    """unittest.main() for the cluster tests: on failure, the log tails of
    every broker and etcd, then the failures again (run_all.py shows the
    last 150 lines of a failing file: the reason must be there). Exits 0
    only when every test passed and at least one ran."""
    import sys
    import unittest
    ok = False
    try:
        prog = unittest.main(exit=False, verbosity=2)
        res = prog.result
        ok = res.wasSuccessful() and res.testsRun > 0
        if not ok:
            harness.dump_logs(40)
            etcd_harness.dump_logs(10)
            sys.stderr.write("\n===== failures (repeated after the logs) =====\n")
            for test, tb in res.failures + res.errors:
                sys.stderr.write("--- %s\n%s\n" % (test, tb[-2500:]))
            if res.testsRun == 0:
                sys.stderr.write("no test ran\n")
    except BaseException:
        harness.dump_logs(40)
        raise
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(0 if ok else 1)
