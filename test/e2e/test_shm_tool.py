#!/usr/bin/python3
"""kafscale-shm, the read-only inspection tool of the node's ring.

- `kafscale-shm -w` in a tmux pane while a consumer reads old data: two
  captures of the screen a couple of seconds apart differ, both parse, and
  the counters rose between them.
- `--json` and the text output describe the ring the broker uses; the tool
  finds it by the node's data dir and id, as the broker and cached do.
- The tool maps the ring read-only (its mapping in /proc/PID/maps is r--s)
  and leaves an object it reads unchanged.
- It refuses a foreign object, an unknown major version and a truncated ring,
  saying what it found (exit 2); no ring at all is exit 1.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
import unittest

import cached_util as cu
import durability_util as du
import harness

MIB = 1 << 20
COUNTER_RE = re.compile(r"^  (\w+)\s+(\d+)\s+(\S+)\s*$", re.M)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def parse_screen(text):
    """{counter: value} and the writer line of a kafscale-shm text screen."""
    counters = {m.group(1): int(m.group(2)) for m in COUNTER_RE.finditer(text)}
    writer = re.search(r"writer\s+pid (\d+), (\w+), started .*, generation (\d+)", text)
    return counters, writer


class ShmTool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(cu.SHM_BIN, os.X_OK):
            raise unittest.SkipTest("%s missing (run make)" % cu.SHM_BIN)
        cls.node_id = 7
        cls.broker = du.start_broker(env={"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_CACHE_BYTES": "64m",
                                          "KAFSCALE_TAIL_BYTES": "1m"},
                                     name="shmtool", node_id=cls.node_id)
        errs = du.create_topics(cls.broker.bootstrap, [("watch", 1, {"segment.bytes": str(MIB)})])
        if errs:
            raise AssertionError("create topics: %r" % errs)
        cls.n = cu.produce(cls.broker.bootstrap, "watch", 24 * MIB, acks="1")
        # The ring's name as the tool derives it from the data dir and node id.
        cls.tool_env = dict(os.environ, KAFSCALE_DATA_DIR=cls.broker.data_dir, KAFSCALE_BROKER_ID=str(cls.node_id))
        cls.tool_env.pop("KAFSCALE_SHM_NAME", None)
        r = harness.run_cmd([cu.SHM_BIN, "--json"], env=cls.tool_env)
        ring = json.loads(r.stdout.decode()) if r.returncode == 0 else None
        if not ring:
            raise AssertionError("kafscale-shm --json: %s" % r.describe())
        cls.shm = ring["name"]
        cls.tmux_sock = "kafscale-e2e-%d" % os.getpid()
        cls.foreign = "/kafscale-e2e-foreign-%d" % os.getpid()

    @classmethod
    def tearDownClass(cls):
        if shutil.which("tmux"):
            subprocess.run(["tmux", "-L", cls.tmux_sock, "kill-server"], capture_output=True)
        if os.path.exists("/dev/shm" + cls.foreign):
            os.unlink("/dev/shm" + cls.foreign)
        status = cls.broker.stop()
        cu.stop_cached(cls.shm)
        errs = cls.broker.sanitizer_errors()
        if status not in (0, -15) or errs or os.path.exists("/dev/shm" + cls.shm):
            raise AssertionError("broker exit %r, sanitizer %r\n%s" % (status, errs, cls.broker.log_tail()))

    def tool(self, *args):
        return harness.run_cmd([cu.SHM_BIN] + list(args), env=self.tool_env, timeout=10)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.tmux_sock] + list(args), capture_output=True, timeout=10)

    def test_a_json_and_text_describe_the_ring(self):
        r = self.tool("--json")
        self.assertEqual(r.returncode, 0, r.describe())
        ring = json.loads(r.stdout.decode())
        self.assertEqual(ring["layout"]["major"], 1)
        self.assertEqual(ring["layout"]["header_size"], 4096)
        self.assertEqual(ring["size"], 64 * MIB)
        self.assertTrue(ring["writer"]["alive"])
        self.assertEqual(ring["writer"]["state"], "running")
        self.assertGreaterEqual(ring["writer"]["generation"], 1)
        self.assertTrue(re.match(r"^/kafscale-7-[0-9a-f]{8}$", ring["name"]), ring["name"])
        for name in ("hits", "misses", "loads", "bytes_loaded", "evictions", "lapped", "load_errors",
                     "load_latency_us", "readahead_loads", "prefetch_loads"):
            self.assertIn(name, ring["counters"])
        r = self.tool("-s")
        self.assertEqual(r.returncode, 0, r.describe())
        text = r.stdout.decode()
        counters, writer = parse_screen(text)
        self.assertIn("layout      1.0", text)
        self.assertIsNotNone(writer, text)
        self.assertEqual(int(writer.group(1)), ring["writer"]["pid"])
        self.assertIn("hits", counters)

    def test_b_watch_in_tmux_shows_counters_changing(self):
        if not shutil.which("tmux"):
            self.skipTest("tmux missing (make deps)")
        r = self.tmux("new-session", "-d", "-s", "shm", "-x", "160", "-y", "50",
                      "env KAFSCALE_DATA_DIR=%s KAFSCALE_BROKER_ID=%d %s -w" % (
                          self.broker.data_dir, self.node_id, cu.SHM_BIN))
        self.assertEqual(r.returncode, 0, r.stderr)
        result = {}

        # A reader of the old data (from the store, through the ring) slow
        # enough to span both captures: raw fetches, 150 ms apart
        # (a librdkafka consumer would fetch it all ahead at once).
        def run():
            import kproto
            try:
                read = 0
                with kproto.Conn(self.broker.host, self.broker.port, timeout=15) as conn:
                    deadline = time.monotonic() + 60
                    while read < self.n and time.monotonic() < deadline:
                        err, hw, recs = cu.raw_fetch(conn, "watch", read, 256 << 10)
                        for o, v in recs:
                            if o != read or v != cu.value(read):
                                raise AssertionError("offset %d: wrong record (%d)" % (read, o))
                            read += 1
                        time.sleep(0.15)  # a fetch brings one batch of up to ~1 MiB
                result["r"] = "ok" if read == self.n else "read %d of %d" % (read, self.n)
            except BaseException as e:  # reported below
                result["r"] = repr(e)[:500]

        th = threading.Thread(target=run)
        th.start()
        time.sleep(1.3)
        screen1 = self.tmux("capture-pane", "-p", "-t", "shm").stdout.decode()
        time.sleep(1.7)
        screen2 = self.tmux("capture-pane", "-p", "-t", "shm").stdout.decode()
        th.join(90)
        self.assertEqual(result.get("r"), "ok")
        harness.log("screen 1:\n%s\nscreen 2:\n%s" % (screen1, screen2))
        self.assertNotEqual(screen1, screen2)
        c1, w1 = parse_screen(screen1)
        c2, w2 = parse_screen(screen2)
        self.assertIsNotNone(w1, screen1)
        self.assertIsNotNone(w2, screen2)
        self.assertEqual(set(c1), set(c2))
        for name in ("hits", "misses", "loads", "bytes_loaded", "readahead_loads"):
            self.assertIn(name, c1)
        self.assertGreater(c2["loads"] + c2["hits"], c1["loads"] + c1["hits"])
        self.assertGreater(c2["bytes_loaded"], c1["bytes_loaded"])
        self.assertIn("(every 1000 ms; Ctrl-C to stop)", screen2)
        self.assertRegex(screen2, r"watch/0\s+\d+")
        # Its mapping of the ring is read-only (r--s).
        pid = int(self.tmux("display-message", "-p", "-t", "shm", "#{pane_pid}").stdout.decode().strip())
        for _ in range(3):  # the pane may run a shell that runs the tool
            if du.proc_name(pid) == "kafscale-shm":
                break
            kids = du.child_pids(pid)
            self.assertTrue(kids, "no kafscale-shm under the tmux pane (pid %d, %s)" % (pid, du.proc_name(pid)))
            pid = kids[0]
        self.assertEqual(du.proc_name(pid), "kafscale-shm")
        with open("/proc/%d/maps" % pid) as f:
            maps = f.read()
        lines = [l for l in maps.splitlines() if l.endswith("/dev/shm" + self.shm) or
                 ("/dev/shm" + self.shm + " ") in l]
        self.assertTrue(lines, maps)
        for l in lines:
            self.assertTrue(l.split()[1].startswith("r-") and "w" not in l.split()[1], l)
        self.tmux("kill-session", "-t", "shm")

    def test_c_refuses_foreign_unknown_and_truncated(self):
        path = "/dev/shm" + self.foreign
        r = self.tool("-n", self.foreign)
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn("No such file", r.stderr.decode())

        # Not a ring at all.
        with open(path, "wb") as f:
            f.write(b"NOTARING" + bytes(8192))
        before = sha(path)
        r = self.tool("-n", self.foreign)
        self.assertEqual(r.returncode, 2, r.describe())
        err = r.stderr.decode()
        self.assertIn("not a Kafscale ring", err)
        self.assertIn("NOTA", err)
        self.assertIn("0x", err)
        self.assertEqual(sha(path), before)

        # A ring header from a future major version (copied from the live one).
        with open("/dev/shm" + self.shm, "rb") as f:
            head = bytearray(f.read(4096))
        head[4:6] = (9).to_bytes(2, "little")
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(64 * MIB)
        r = self.tool("-n", self.foreign, "--json")
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertRegex(r.stderr.decode(), r"ring layout version 9\.\d+ is not supported")

        # Truncated: the header says 64 MiB, the object holds 1 MiB.
        head[4:6] = (1).to_bytes(2, "little")
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(MIB)
        before = sha(path)
        r = self.tool("-n", self.foreign)
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertIn("truncated", r.stderr.decode())
        self.assertIn(str(64 * MIB), r.stderr.decode())
        self.assertEqual(sha(path), before)

        # The same header at its full size is read (and left as it was).
        with open(path, "r+b") as f:
            f.truncate(64 * MIB)
        before = sha(path)
        r = self.tool("-n", self.foreign, "--json")
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(sha(path), before)
        os.unlink(path)


if __name__ == "__main__":
    harness.main()
