"""etcd_harness.py - a real etcd (Debian's etcd-server, /usr/bin/etcd) for
end-to-end tests, started on free loopback ports with a temp --data-dir and
stopped by PID, plus etcdctl helpers.

    import etcd_harness
    e = etcd_harness.Etcd("meta").start()
    e.url                                  # "http://127.0.0.1:PORT" (client URL)
    e.ctl_ok("put", "/k", "v")             # etcdctl (ETCDCTL_API=3), raises on failure
    e.get("/k")                            # b"v", or None when the key is absent
    e.get_prefix("/kafscale/brokers/")     # {key str: value bytes} (binary-safe, -w json)
    e.metrics()                            # etcd's own /metrics, parsed {name{labels}: float}
    e.stop(); e.start()                    # same ports and data dir: data kept
    etcd_harness.dump_logs()               # tails of every etcd's log

Every Etcd ever started in the process is stopped at exit (atexit) and on
SIGTERM (harness turns SIGTERM into an exit). Each etcd runs in the test's
process group, so run_all.py's final group kill reaches it too. Logs go to
<dir>/etcd.log (log_tail()).

Used by test_etcd_client.py (the etcd client against etcd) and the cluster
tests (cluster_harness.py).
"""
import atexit
import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import harness

ETCD_BIN = "/usr/bin/etcd"
ETCDCTL_BIN = "/usr/bin/etcdctl"

_etcds = []
_lock = threading.Lock()


def available():
    """(True, "") when etcd and etcdctl are installed, else (False, why)."""
    if not os.access(ETCD_BIN, os.X_OK):
        return False, "%s missing: install etcd-server (make deps)" % ETCD_BIN
    if not os.access(ETCDCTL_BIN, os.X_OK):
        return False, "%s missing: install etcd-client (make deps)" % ETCDCTL_BIN
    return True, ""


class Etcd:
    """One single-member etcd on free loopback ports."""

    def __init__(self, name, extra_args=(), tls=None):
        self.name = name
        self.extra_args = list(extra_args)
        self.tls = tls  # (ca, cert, key) paths, or None
        self.dir = harness.make_tmpdir("kafscale-e2e-etcd-%s-" % name)
        self.log_path = os.path.join(self.dir, "etcd.log")
        self.proc = None
        self.port = self.peer_port = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=20.0):
        """Starts etcd; on its old ports and data dir when it ran before."""
        if not os.access(ETCD_BIN, os.X_OK):
            raise RuntimeError("%s missing: install etcd-server (make deps)" % ETCD_BIN)
        if self.alive():
            return self
        keep_ports = self.port is not None
        for attempt in range(3):
            if not keep_ports:
                self.port, self.peer_port = harness.free_port(), harness.free_port()
            peer = "http://127.0.0.1:%d" % self.peer_port
            args = [ETCD_BIN, "--name", self.name, "--data-dir", os.path.join(self.dir, "data"),
                    "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", "%s=%s" % (self.name, peer), "--initial-cluster-state", "new"]
            if self.tls:
                args += ["--cert-file", self.tls[1], "--key-file", self.tls[2]]
            args += self.extra_args
            with open(self.log_path, "ab") as log:
                # same process group as the test: run_all's cleanup reaches it
                self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            with _lock:
                if self not in _etcds:
                    _etcds.append(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                r = self.ctl("endpoint", "health", timeout=5)
                if r.returncode == 0:
                    harness.log("etcd %s up at %s (pid %d)" % (self.name, self.url, self.proc.pid))
                    return self
                time.sleep(0.2)
            self.stop()
            if keep_ports:
                time.sleep(1.0)  # the old sockets may linger a moment
        raise RuntimeError("etcd %s did not start; log tail:\n%s" % (self.name, self.log_tail()))

    def stop(self):
        """SIGTERM by PID, SIGKILL after 10 s. Ports and data dir are kept."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # by PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            harness.log("etcd %s pid %d stopped, status %r" % (self.name, self.proc.pid, self.proc.returncode))

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # ---- etcdctl ----

    def ctl(self, *args, user=None, timeout=20):
        cmd = [ETCDCTL_BIN, "--endpoints", self.url, "--dial-timeout", "3s"]
        if self.tls:
            cmd += ["--cacert", self.tls[0]]
        if user:
            cmd += ["--user", user]
        return harness.run_cmd(cmd + list(args), timeout=timeout, extra_env={"ETCDCTL_API": "3"})

    def ctl_ok(self, *args, user=None, timeout=20):
        r = self.ctl(*args, user=user, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("etcdctl failed: " + r.describe())
        return r.stdout.decode()

    def range_json(self, key, prefix=False, user=None):
        """etcdctl get -w json: the decoded answer (kvs with base64 key and
        value decoded to bytes under "k" and "v")."""
        args = ["get", key, "-w", "json"]
        if prefix:
            args.append("--prefix")
        j = json.loads(self.ctl_ok(*args, user=user))
        for kv in j.get("kvs", []) or []:
            kv["k"] = base64.b64decode(kv.get("key", "")).decode("utf-8", "replace")
            kv["v"] = base64.b64decode(kv.get("value", ""))
        return j

    def get(self, key, user=None):
        """The value (bytes) of key, or None when it does not exist."""
        kvs = self.range_json(key, user=user).get("kvs") or []
        return kvs[0]["v"] if kvs else None

    def get_prefix(self, prefix, user=None):
        """{key: value bytes} of every key under prefix."""
        return {kv["k"]: kv["v"] for kv in self.range_json(prefix, prefix=True, user=user).get("kvs") or []}

    def get_prefix_kvs(self, prefix, user=None):
        """[kv dicts] under prefix: k, v, lease (int, 0 when none),
        create_revision, mod_revision, version."""
        out = []
        for kv in self.range_json(prefix, prefix=True, user=user).get("kvs") or []:
            kv["lease"] = int(kv.get("lease", 0) or 0)
            out.append(kv)
        return out

    def put(self, key, value, user=None):
        return self.ctl_ok("put", key, value, user=user)

    # ---- /metrics ----

    def metrics_text(self, timeout=10.0):
        with urllib.request.urlopen(self.url + "/metrics", timeout=timeout) as r:
            return r.read().decode("utf-8", "replace")

    def metrics(self, timeout=10.0):
        """etcd's Prometheus metrics: {"name" or "name{labels}": float}."""
        return parse_metrics(self.metrics_text(timeout))


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)')


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            try:
                out[m.group(1)] = float(m.group(2))
            except ValueError:
                pass
    return out


def metric_sum(m, name):
    """Sum of every sample of metric name (any labels)."""
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def stop_all():
    with _lock:
        live = list(_etcds)
    for e in live:
        try:
            e.stop()
        except Exception as ex:  # pragma: no cover - best effort at exit
            harness.log("cleanup of etcd %s failed: %s" % (e.name, ex))


def dump_logs(lines=30, out=sys.stderr):
    with _lock:
        all_ = list(_etcds)
    for e in all_:
        out.write("\n--- etcd %s log tail (%s) ---\n%s\n" % (e.name, e.log_path, e.log_tail(lines)))
    out.flush()


# Registered after harness's own atexit (harness is imported first), so it
# runs before harness removes the temp dirs.
atexit.register(stop_all)
