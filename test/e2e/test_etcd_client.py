#!/usr/bin/python3
"""The etcd client (common/etcd.c) against a real etcd (Debian's etcd-server,
/usr/bin/etcd), driven through bin/etcd_cli; every write the client must see
is made by etcdctl (an independent client) and every write of the client is
read back by etcdctl.

Three etcd servers, each on free loopback ports with a temp --data-dir,
stopped by PID:
  - plain http: put/get, prefix ranges (limit, keys only, count only, at a
    revision), deletes, txn compare success and failure (value, version,
    create and mod revision), lease grant + keepalive + expiry + revoke,
    watch (events from a concurrent etcdctl, history from a revision,
    compaction with a resync, resuming after the stream broke without a
    duplicate or a gap), failover when the first endpoint is dead, and a
    clear error for something that is not an etcd;
  - auth enabled (user root, simple tokens living 2 s): no credentials, a
    wrong password (never echoed), a token that expires between two calls
    and is renewed, a watch with a token, permission denied for a user
    whose role covers another prefix;
  - https with a test CA (openssl): verified with KAFSCALE_ETCD_CA_FILE,
    refused without it.

Environment: KAFSCALE_ETCD_CLI, the CLI binary (default <repo>/bin/etcd_cli;
e.g. a sanitizer build run with ASAN_OPTIONS=exitcode=86, so that a report
fails every test's exit status check).
"""
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import unittest

import harness
from etcd_harness import ETCDCTL_BIN, Etcd  # the etcd starter (and its cleanup at exit)
import etcd_harness

CLI_BIN = os.environ.get("KAFSCALE_ETCD_CLI", os.path.join(harness.REPO, "bin", "etcd_cli"))


def cli_env(endpoints, **extra):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("KAFSCALE_ETCD_"):
            del env[k]
    env["KAFSCALE_ETCD_ENDPOINTS"] = endpoints
    env["KAFSCALE_ETCD_TIMEOUT_MS"] = "3000"
    env.update(extra)
    return env


def cli(env, *args, timeout=60):
    return harness.run_cmd([CLI_BIN] + list(args), timeout=timeout, env=env)


def lines(r):
    return [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]


class Proxy:
    """A TCP forwarder on a free loopback port to target_port; kill() drops
    every connection and stops listening (a dead endpoint from then on)."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def kill(self):
        self.lsock.close()
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass


class Watcher:
    """bin/etcd_cli watch ... running in the background; its stdout lines
    (JSON) arrive on a queue."""

    def __init__(self, env, *args):
        self.proc = subprocess.Popen([CLI_BIN, "watch"] + list(args), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.q = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for l in self.proc.stdout:
            if l.strip():
                self.q.put(json.loads(l))
        self.q.put(None)

    def next(self, timeout=15):
        m = self.q.get(timeout=timeout)
        if m is not None:
            self.seen.append(m)
        return m

    def wait_for(self, pred, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(max(0.1, deadline - time.monotonic()))
            if m is None:
                raise AssertionError("watcher ended; seen %r; stderr %s" % (self.seen, self.stderr()))
            if pred(m):
                return m

    def events(self, n, timeout=15):
        out = []
        while len(out) < n:
            m = self.wait_for(lambda x: "type" in x, timeout)
            out.append(m)
        return out

    def finish(self, timeout=20):
        rc = self.proc.wait(timeout=timeout)
        while True:  # drain
            try:
                m = self.q.get(timeout=2)
            except queue.Empty:
                break
            if m is None:
                break
            self.seen.append(m)
        return rc

    def stderr(self):
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read().decode("utf-8", "replace")[-3000:]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def setUpModule():
    if not os.access(CLI_BIN, os.X_OK):
        raise RuntimeError("%s missing: run `make bin/etcd_cli`" % CLI_BIN)
    if not os.access(ETCDCTL_BIN, os.X_OK):
        raise RuntimeError("%s missing: install etcd-client (make deps)" % ETCDCTL_BIN)


class PlainEtcd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.etcd = Etcd("plain").start()
        cls.env = cli_env(cls.etcd.url)

    @classmethod
    def tearDownClass(cls):
        cls.etcd.stop()

    def run_ok(self, *args, env=None, timeout=60):
        r = cli(env or self.env, *args, timeout=timeout)
        self.assertEqual(r.returncode, 0, r.describe())
        return lines(r)

    def test_put_get_cross_checked_with_etcdctl(self):
        out = self.run_ok("put", "/t/a", "hello world")
        self.assertGreater(out[0]["revision"], 1)
        self.assertEqual(self.etcd.ctl_ok("get", "/t/a", "--print-value-only").strip(), "hello world")
        self.etcd.ctl_ok("put", "/t/b", "from etcdctl ünïcode")
        out = self.run_ok("get", "/t/b")
        self.assertEqual(out[0]["key"], "/t/b")
        self.assertEqual(out[0]["value"], "from etcdctl ünïcode")
        self.assertEqual(out[0]["version"], 1)
        self.assertEqual(out[-1]["count"], 1)
        # a missing key: no kvs, count 0, exit 0
        out = self.run_ok("get", "/t/missing")
        self.assertEqual(out, [{"count": 0, "more": False, "revision": out[0]["revision"]}])
        # an overwrite moves mod_revision and version, not create_revision
        self.run_ok("put", "/t/a", "again")
        a = self.run_ok("get", "/t/a")[0]
        self.assertEqual((a["value"], a["version"]), ("again", 2))
        self.assertGreater(a["mod_revision"], a["create_revision"])

    def test_prefix_range_limit_keys_only_revision_and_delete(self):
        for k, v in (("/r/1", "one"), ("/r/2", "two"), ("/r/3", "three"), ("/r0", "outside"), ("/r", "outside")):
            self.etcd.ctl_ok("put", k, v)
        out = self.run_ok("get", "/r/", "--prefix")
        self.assertEqual([(o["key"], o["value"]) for o in out[:-1]], [("/r/1", "one"), ("/r/2", "two"),
                                                                       ("/r/3", "three")])
        self.assertEqual(out[-1]["count"], 3)
        out = self.run_ok("get", "/r/", "--prefix", "--limit", "2")
        self.assertEqual(len(out) - 1, 2)
        self.assertEqual((out[-1]["count"], out[-1]["more"]), (3, True))
        out = self.run_ok("get", "/r/", "--prefix", "--keys-only")
        self.assertEqual([o["value"] for o in out[:-1]], ["", "", ""])
        out = self.run_ok("get", "/r/", "--prefix", "--count-only")
        self.assertEqual(len(out), 1)
        self.assertEqual(out[0]["count"], 3)
        # [key, "\0"): every key from /r/2 on
        out = self.run_ok("get", "/r/2", "--end", "")
        self.assertEqual([o["key"] for o in out[:-1]], ["/r/2", "/r/3", "/r0"])
        # reading at an older revision
        before = self.run_ok("get", "/r/1")[0]["mod_revision"]
        self.etcd.ctl_ok("put", "/r/1", "uno")
        self.assertEqual(self.run_ok("get", "/r/1")[0]["value"], "uno")
        self.assertEqual(self.run_ok("get", "/r/1", "--rev", str(before))[0]["value"], "one")
        # a future revision is a clear error
        r = cli(self.env, "get", "/r/1", "--rev", "999999")
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"future-revision", r.stderr)
        # delete the prefix: exactly the three, not /r0 or /r
        out = self.run_ok("del", "/r/", "--prefix")
        self.assertEqual(out[0]["deleted"], 3)
        left = self.etcd.ctl_ok("get", "/r", "--prefix", "--keys-only").split()
        self.assertEqual(sorted(left), ["/r", "/r0"])
        self.assertEqual(self.run_ok("del", "/r0")[0]["deleted"], 1)
        self.assertEqual(self.run_ok("del", "/r0")[0]["deleted"], 0)

    def test_txn_compare_success_and_failure(self):
        self.etcd.ctl_ok("put", "/x", "v1")
        t = self.run_ok("txn", "cmp", "value", "/x", "=", "v1", "then", "put", "/x", "v2", "get", "/x",
                        "else", "get", "/x")[0]
        self.assertTrue(t["succeeded"])
        self.assertEqual(t["responses"][1]["range"]["kvs"][0]["value"], "v2")
        self.assertEqual(self.etcd.ctl_ok("get", "/x", "--print-value-only").strip(), "v2")
        # the same compare now fails: the else branch runs, nothing written
        t = self.run_ok("txn", "cmp", "value", "/x", "=", "v1", "then", "put", "/x", "v3",
                        "else", "get", "/x")[0]
        self.assertFalse(t["succeeded"])
        self.assertEqual(t["responses"][0]["range"]["kvs"][0]["value"], "v2")
        self.assertEqual(self.etcd.ctl_ok("get", "/x", "--print-value-only").strip(), "v2")
        # create-if-absent: create revision 0 means "does not exist"
        ok = self.run_ok("txn", "cmp", "create", "/new", "=", "0", "then", "put", "/new", "first")[0]
        again = self.run_ok("txn", "cmp", "create", "/new", "=", "0", "then", "put", "/new", "second")[0]
        self.assertEqual((ok["succeeded"], again["succeeded"]), (True, False))
        self.assertEqual(self.etcd.ctl_ok("get", "/new", "--print-value-only").strip(), "first")
        # fencing-style compare on the mod revision, and on the version
        mod = self.run_ok("get", "/x")[0]["mod_revision"]
        self.etcd.ctl_ok("put", "/x", "by someone else")
        stale = self.run_ok("txn", "cmp", "mod", "/x", "=", str(mod), "then", "del", "/x")[0]
        self.assertFalse(stale["succeeded"])
        mod = self.run_ok("get", "/x")[0]["mod_revision"]
        fresh = self.run_ok("txn", "cmp", "mod", "/x", "=", str(mod), "cmp", "version", "/x", ">", "2",
                            "then", "del", "/x")[0]
        self.assertTrue(fresh["succeeded"])
        self.assertEqual(fresh["responses"], [{"deleted": 1}])
        self.assertEqual(self.etcd.ctl_ok("get", "/x").strip(), "")

    def test_lease_grant_keepalive_expiry_and_revoke(self):
        g = self.run_ok("lease-grant", "2")[0]
        lid, ttl = g["id"], g["ttl"]
        self.assertGreaterEqual(ttl, 2)
        self.run_ok("put", "/l/k", "leased", "--lease", str(lid))
        self.assertEqual(self.run_ok("get", "/l/k")[0]["lease"], lid)
        # kept alive for longer than its TTL: still there
        out = self.run_ok("lease-keepalive", str(lid), ",", "sleep", "900", ",", "lease-keepalive", str(lid), ",",
                          "sleep", "900", ",", "lease-keepalive", str(lid), ",", "sleep", "900", ",",
                          "lease-keepalive", str(lid), ",", "lease-ttl", str(lid))
        self.assertEqual([o["ttl"] for o in out[:4]], [ttl] * 4)
        self.assertGreater(out[4]["ttl"], 0)
        self.assertEqual(self.etcd.ctl_ok("get", "/l/k", "--print-value-only").strip(), "leased")
        # left alone it expires, and its key goes with it
        deadline = time.monotonic() + 3 * ttl + 5
        while self.etcd.ctl_ok("get", "/l/k").strip() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.etcd.ctl_ok("get", "/l/k").strip(), "", "leased key outlived its lease")
        r = cli(self.env, "lease-keepalive", str(lid))
        self.assertEqual(r.returncode, 3, r.describe())
        self.assertIn(b"not found", r.stderr)
        self.assertEqual(self.run_ok("lease-ttl", str(lid))[0]["ttl"], -1)
        # revoke deletes its keys at once
        lid = self.run_ok("lease-grant", "60")[0]["id"]
        self.run_ok("put", "/l/r", "x", "--lease", str(lid), ",", "lease-revoke", str(lid))
        self.assertEqual(self.etcd.ctl_ok("get", "/l/r").strip(), "")
        self.assertEqual(cli(self.env, "lease-revoke", str(lid)).returncode, 3)
        # a put under a lease that does not exist
        r = cli(self.env, "put", "/l/z", "x", "--lease", "12345")
        self.assertEqual(r.returncode, 3, r.describe())

    def test_watch_receives_events_from_a_concurrent_etcdctl(self):
        w = Watcher(self.env, "/wt/", "--prefix", "--prev-kv", "--count", "3", "--timeout-ms", "20000")
        try:
            w.wait_for(lambda m: m.get("watch") == "connected")
            self.etcd.ctl_ok("put", "/wt/a", "1")
            self.etcd.ctl_ok("put", "/outside", "not watched")
            self.etcd.ctl_ok("put", "/wt/a", "2")
            self.etcd.ctl_ok("del", "/wt/a")
            ev = w.events(3)
            self.assertEqual(w.finish(), 0, w.stderr())
        finally:
            w.kill()
        self.assertEqual([(e["type"], e["key"], e["value"]) for e in ev],
                         [("PUT", "/wt/a", "1"), ("PUT", "/wt/a", "2"), ("DELETE", "/wt/a", "")])
        self.assertNotIn("prev_value", ev[0])
        self.assertEqual((ev[1]["prev_value"], ev[2]["prev_value"]), ("1", "2"))
        revs = [e["mod_revision"] for e in ev]
        self.assertEqual(revs, sorted(revs))
        self.assertEqual(len(set(revs)), 3)

    def test_watch_from_a_revision_and_across_a_compaction(self):
        revs = []
        for i in range(3):
            self.run_ok("put", "/wh/k", "h%d" % i)
            revs.append(self.run_ok("get", "/wh/k")[0]["mod_revision"])
        # history: from the first revision on
        r = cli(self.env, "watch", "/wh/", "--prefix", "--rev", str(revs[0]), "--count", "3")
        self.assertEqual(r.returncode, 0, r.describe())
        ev = [m for m in lines(r) if "type" in m]
        self.assertEqual([e["value"] for e in ev], ["h0", "h1", "h2"])
        # compact past revs[1]: a watch from revs[0] learns it, resyncs, and goes on
        self.etcd.ctl_ok("compact", str(revs[1]))
        w = Watcher(self.env, "/wh/", "--prefix", "--rev", str(revs[0]), "--resync", "--count", "1",
                    "--timeout-ms", "20000")
        try:
            c = w.wait_for(lambda m: m.get("watch") == "compacted")
            self.assertEqual(c["compact_revision"], revs[1])
            rs = w.wait_for(lambda m: m.get("watch") == "resync")
            self.assertEqual(rs["count"], 1)
            w.wait_for(lambda m: m.get("watch") == "connected" and m["revision"] == rs["revision"] + 1)
            self.etcd.ctl_ok("put", "/wh/k", "after")
            ev = w.events(1)
            self.assertEqual(w.finish(), 0, w.stderr())
        finally:
            w.kill()
        self.assertEqual(ev[0]["value"], "after")
        # the same request through the client's range call is a clear error
        r = cli(self.env, "get", "/wh/k", "--rev", str(revs[0]))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"compacted", r.stderr)

    def test_watch_resumes_after_the_stream_breaks_without_duplicates(self):
        proxy = Proxy(self.etcd.port)
        env = cli_env("http://127.0.0.1:%d,%s" % (proxy.port, self.etcd.url))
        w = Watcher(env, "/wr/", "--prefix", "--count", "4", "--timeout-ms", "30000")
        try:
            w.wait_for(lambda m: m.get("watch") == "connected")
            self.etcd.ctl_ok("put", "/wr/a", "1")
            first = w.events(1)
            proxy.kill()  # the stream breaks; the proxy's port is dead from now on
            for k in ("b", "c", "d"):
                self.etcd.ctl_ok("put", "/wr/" + k, "1")
            rest = w.events(3)
            self.assertEqual(w.finish(), 0, w.stderr())
        finally:
            w.kill()
            proxy.kill()
        keys = [e["key"] for e in first + rest]
        self.assertEqual(keys, ["/wr/a", "/wr/b", "/wr/c", "/wr/d"])
        disc = [m for m in w.seen if m.get("watch") == "disconnected"]
        self.assertTrue(disc, w.seen)
        # resumed right after the last event it delivered
        self.assertEqual(disc[0]["revision"], first[0]["mod_revision"] + 1)
        conns = [m for m in w.seen if m.get("watch") == "connected"]
        self.assertGreaterEqual(len(conns), 2)
        self.assertEqual(conns[-1]["revision"], first[0]["mod_revision"] + 1)

    def test_failover_when_the_first_endpoint_is_dead(self):
        dead = harness.free_port()
        env = cli_env("http://127.0.0.1:%d,%s" % (dead, self.etcd.url))
        out = self.run_ok("put", "/f/k", "v", ",", "get", "/f/k", ",", "stats", env=env)
        self.assertEqual(out[1]["value"], "v")
        st = out[-1]
        self.assertEqual(st["failovers"], 1)
        self.assertEqual(st["endpoint"], self.etcd.url)
        self.assertEqual(st["errors"], 0)
        # every endpoint dead: a clear error within the bounded retries
        env = cli_env("http://127.0.0.1:%d,http://127.0.0.1:%d" % (dead, harness.free_port()),
                      KAFSCALE_ETCD_MAX_RETRIES="2")
        r = cli(env, "get", "/f/k", timeout=30)
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"unavailable", r.stderr)
        self.assertIn(b"Couldn't connect", r.stderr)
        self.assertLess(r.seconds, 10)

    def test_credentials_for_an_etcd_without_auth_are_not_needed(self):
        env = cli_env(self.etcd.url, KAFSCALE_ETCD_USERNAME="root", KAFSCALE_ETCD_PASSWORD="unused")
        r = cli(env, "put", "/na/k", "v", ",", "get", "/na/k")
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(lines(r)[1]["value"], "v")
        self.assertIn(b"authentication is not enabled", r.stderr)
        self.assertNotIn(b"unused", r.stderr)

    def test_something_that_is_not_etcd_is_a_clear_error(self):
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4)

        def serve():
            while True:
                try:
                    c, _ = lsock.accept()
                except OSError:
                    return
                c.recv(65536)
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 18\r\nConnection: close\r\n\r\n"
                          b"404 page not found")
                c.close()
        threading.Thread(target=serve, daemon=True).start()
        try:
            r = cli(cli_env("http://127.0.0.1:%d" % lsock.getsockname()[1]), "get", "/k")
        finally:
            lsock.close()
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"HTTP 404", r.stderr)
        self.assertIn(b"404 page not found", r.stderr)
        # a bad endpoint setting stops at once, naming the variable
        r = cli(cli_env("ftp://127.0.0.1:1"), "get", "/k")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"KAFSCALE_ETCD_ENDPOINTS", r.stderr)


class AuthEtcd(unittest.TestCase):
    PASSWORD = "s3cret-Pa55"

    @classmethod
    def setUpClass(cls):
        # simple tokens that live 2 s: expiry is seen within the test
        cls.etcd = Etcd("auth", ["--auth-token", "simple", "--auth-token-ttl", "2"]).start()
        e = cls.etcd
        e.ctl_ok("user", "add", "root:" + cls.PASSWORD)
        e.ctl_ok("role", "add", "alice-role")
        e.ctl_ok("role", "grant-permission", "alice-role", "--prefix=true", "readwrite", "/alice/")
        e.ctl_ok("user", "add", "alice:alicepw")
        e.ctl_ok("user", "grant-role", "alice", "alice-role")
        e.ctl_ok("auth", "enable")
        cls.root = "root:" + cls.PASSWORD

    @classmethod
    def tearDownClass(cls):
        cls.etcd.stop()

    def env(self, user="root", password=None, **extra):
        return cli_env(self.etcd.url, KAFSCALE_ETCD_USERNAME=user,
                       KAFSCALE_ETCD_PASSWORD=self.PASSWORD if password is None else password, **extra)

    def assertNoSecrets(self, r):
        both = r.stdout + r.stderr
        self.assertNotIn(self.PASSWORD.encode(), both)
        self.assertNotIn(b"Authorization", both)

    def test_without_credentials_the_error_says_what_to_set(self):
        r = cli(cli_env(self.etcd.url), "get", "/k")
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"KAFSCALE_ETCD_USERNAME", r.stderr)
        self.assertIn(b"(auth)", r.stderr)

    def test_wrong_password_is_refused_and_never_echoed(self):
        r = cli(self.env(password="not-the-password"), "get", "/k")
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"authentication as 'root' failed", r.stderr)
        self.assertNotIn(b"not-the-password", r.stdout + r.stderr)

    def test_expired_token_is_renewed(self):
        r = cli(self.env(KAFSCALE_LOG_LEVEL="debug"), "put", "/a/k", "v1", ",", "sleep", "3500", ",", "get", "/a/k",
                ",", "put", "/a/k", "v2", ",", "stats")
        self.assertEqual(r.returncode, 0, r.describe())
        out = lines(r)
        self.assertEqual(out[1]["value"], "v1")
        self.assertEqual(out[-1]["auths"], 2)  # once at the start, once after the token expired
        self.assertEqual(out[-1]["errors"], 0)
        self.assertEqual(self.etcd.ctl_ok("get", "/a/k", "--print-value-only", user=self.root).strip(), "v2")
        self.assertNoSecrets(r)

    def test_watch_with_a_token(self):
        w = Watcher(self.env(), "/aw/", "--prefix", "--count", "1", "--timeout-ms", "20000")
        try:
            w.wait_for(lambda m: m.get("watch") == "connected")
            self.etcd.ctl_ok("put", "/aw/x", "y", user=self.root)
            ev = w.events(1)
            self.assertEqual(w.finish(), 0, w.stderr())
        finally:
            w.kill()
        self.assertEqual((ev[0]["key"], ev[0]["value"]), ("/aw/x", "y"))

    def test_watch_authenticates_again_when_it_reconnects_after_the_token_expired(self):
        proxy = Proxy(self.etcd.port)
        env = cli_env("http://127.0.0.1:%d,%s" % (proxy.port, self.etcd.url), KAFSCALE_ETCD_USERNAME="root",
                      KAFSCALE_ETCD_PASSWORD=self.PASSWORD)
        w = Watcher(env, "/ar/", "--prefix", "--count", "2", "--timeout-ms", "30000")
        try:
            w.wait_for(lambda m: m.get("watch") == "connected")
            self.etcd.ctl_ok("put", "/ar/a", "1", user=self.root)
            first = w.events(1)
            time.sleep(3.5)  # the client's token (2 s) expires meanwhile
            proxy.kill()
            self.etcd.ctl_ok("put", "/ar/b", "2", user=self.root)
            second = w.events(1, timeout=20)
            self.assertEqual(w.finish(), 0, w.stderr())
        finally:
            w.kill()
            proxy.kill()
        self.assertEqual([e["key"] for e in first + second], ["/ar/a", "/ar/b"])
        why = [m["why"] for m in w.seen if m.get("watch") == "disconnected"]
        self.assertTrue(any("invalid auth token" in x for x in why), w.seen)

    def test_threads_share_a_client_while_the_auth_store_changes(self):
        # a change of users or roles makes etcd refuse the requests in flight
        # ("revision of auth store is old"); whoever hits it authenticates
        # again, and every thread gets through without an error, with at most
        # one new token per change between them (how many requests were in
        # flight at the change is up to timing: not asserted)
        proc = subprocess.Popen([CLI_BIN, "stress", "/st", "4", "500", ",", "stats"], env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for i in range(2):
                time.sleep(0.4)
                self.etcd.ctl_ok("role", "add", "stress-role-%d" % i, user=self.root)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, err.decode("utf-8", "replace")[-3000:])
        res = [json.loads(l) for l in out.decode().splitlines()]
        self.assertEqual((res[0]["ok"], res[0]["watch_events"]), (True, 4 * 500 * 2))
        self.assertEqual(res[1]["errors"], 0)
        self.assertIn(res[1]["auths"], (1, 2, 3), res)  # at most one per change, not one per thread
        self.assertNotIn(self.PASSWORD.encode(), out + err)

    def test_a_role_limited_to_another_prefix_is_denied(self):
        env = self.env(user="alice", password="alicepw")
        r = cli(env, "put", "/alice/k", "mine", ",", "get", "/alice/k")
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(lines(r)[1]["value"], "mine")
        r = cli(env, "put", "/bob/k", "not mine")
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"permission denied", r.stderr)
        self.assertIn(b"(auth)", r.stderr)


class TlsEtcd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = harness.make_tmpdir("kafscale-e2e-etcd-pki-")
        ca, cakey = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
        cert, key, csr = os.path.join(d, "server.pem"), os.path.join(d, "server.key"), os.path.join(d, "server.csr")
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        for cmd in (
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cakey, "-out", ca,
             "-days", "2", "-subj", "/CN=kafscale-test-ca"],
            ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=127.0.0.1"],
            ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial", "-out", cert,
             "-days", "2", "-extfile", ext],
        ):
            r = harness.run_cmd(cmd, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("openssl failed: " + r.describe())
        cls.ca = ca
        cls.etcd = Etcd("tls", tls=(ca, cert, key)).start()

    @classmethod
    def tearDownClass(cls):
        cls.etcd.stop()

    def test_https_with_the_ca_file(self):
        env = cli_env(self.etcd.url, KAFSCALE_ETCD_CA_FILE=self.ca)
        r = cli(env, "put", "/tls/k", "secure", ",", "get", "/tls/k")
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(lines(r)[1]["value"], "secure")
        self.assertEqual(self.etcd.ctl_ok("get", "/tls/k", "--print-value-only").strip(), "secure")
        w = Watcher(env, "/tls/", "--prefix", "--count", "1", "--timeout-ms", "20000")
        try:
            w.wait_for(lambda m: m.get("watch") == "connected")
            self.etcd.ctl_ok("put", "/tls/w", "1")
            self.assertEqual(w.events(1)[0]["key"], "/tls/w")
            self.assertEqual(w.finish(), 0, w.stderr())
        finally:
            w.kill()

    def test_https_without_the_ca_is_refused(self):
        r = cli(cli_env(self.etcd.url, KAFSCALE_ETCD_MAX_RETRIES="0"), "get", "/tls/k")
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"certificate", r.stderr.lower())
        r = cli(cli_env(self.etcd.url, KAFSCALE_ETCD_CA_FILE="/nonexistent/ca.pem"), "get", "/tls/k")
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertIn(b"/nonexistent/ca.pem", r.stderr)


def _dump_etcd_logs():
    etcd_harness.dump_logs(30)


if __name__ == "__main__":
    code = 1
    try:
        prog = unittest.main(exit=False, verbosity=2)
        ok = prog.result.wasSuccessful() and prog.result.testsRun > 0
        if not ok:
            _dump_etcd_logs()
        code = 0 if ok else 1
    finally:
        etcd_harness.stop_all()
    sys.exit(code)
