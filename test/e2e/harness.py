"""harness.py - helpers for Kafscale's end-to-end tests (stdlib only).

Every test file starts its own broker(s) on free loopback ports:

    import harness
    class T(harness.BrokerTestCase):
        BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "true"}
        def test_x(self):
            self.broker.bootstrap   # "127.0.0.1:PORT"
    if __name__ == "__main__":
        harness.main()

Brokers are stopped by PID (SIGTERM, then SIGKILL after a timeout) in
tearDownClass, and again at exit (atexit) for anything still running. Each
broker's stderr goes to a log file in its temp dir; harness.main() prints the
tail of every broker log when a test failed, then removes the temp dirs (set
KAFSCALE_E2E_KEEP=1 to keep them).

Environment:
    KAFSCALE_BROKER_BIN   broker binary (default <repo>/bin/kafscale-broker)
    KAFSCALE_E2E_KEEP=1   keep temp dirs (data + logs) after the run
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BROKER_BIN = os.environ.get("KAFSCALE_BROKER_BIN", os.path.join(REPO, "bin", "kafscale-broker"))
NODE_DIR = os.path.join(REPO, "test", "node")
LOOPBACK = "127.0.0.1"

_live = []        # Broker objects not yet cleaned up
_tmpdirs = []     # temp dirs to remove at exit
_lock = threading.Lock()


def log(msg):
    sys.stderr.write("[e2e %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def free_port(host=LOOPBACK):
    """A TCP port on host that was free a moment ago (the OS picks it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def make_tmpdir(prefix="kafscale-e2e-"):
    d = tempfile.mkdtemp(prefix=prefix)
    with _lock:
        _tmpdirs.append(d)
    return d


def wait_port(host, port, timeout=10.0, proc=None):
    """Waits until host:port accepts a TCP connection. Returns True, or False
    on timeout or when proc (a Popen) exited meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _kill_group(proc, sig):
    """Signals the process group led by proc (we start children with
    start_new_session=True, so its pgid is its pid); falls back to the pid."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def stop_process(proc, timeout=5.0):
    """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status."""
    if proc.poll() is None:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log("pid %d did not stop on SIGTERM within %.1fs: SIGKILL" % (proc.pid, timeout))
            _kill_group(proc, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log("pid %d did not die on SIGKILL" % proc.pid)
    return proc.returncode


class CmdResult:
    def __init__(self, args, returncode, stdout, stderr, timed_out, seconds):
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr
        self.timed_out, self.seconds = timed_out, seconds

    def __repr__(self):
        return "CmdResult(rc=%r, timed_out=%r, %.1fs, cmd=%r)" % (
            self.returncode, self.timed_out, self.seconds, self.args)

    def describe(self, limit=2000):
        def tail(b):
            t = b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
            return t[-limit:]
        return "%r\n--- stdout (tail) ---\n%s\n--- stderr (tail) ---\n%s" % (
            self, tail(self.stdout), tail(self.stderr))


def run_cmd(args, timeout=60.0, input=None, env=None, cwd=None, stdin_file=None, stdout_file=None,
            extra_env=None):
    """Runs an external command (list of args) with a timeout; never raises on
    failure or timeout (the whole process group is killed on timeout).
    input: bytes for stdin; stdin_file / stdout_file: paths used instead of
    pipes (for big data). Returns a CmdResult with bytes stdout/stderr
    (stdout is b"" when stdout_file is given)."""
    if extra_env:
        env = dict(env if env is not None else os.environ)
        env.update(extra_env)
    t0 = time.monotonic()
    fin = open(stdin_file, "rb") if stdin_file else None
    fout = open(stdout_file, "wb") if stdout_file else None
    try:
        proc = subprocess.Popen(args, stdin=fin if fin else (subprocess.PIPE if input is not None else subprocess.DEVNULL),
                                stdout=fout if fout else subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=cwd, start_new_session=True)
        timed_out = False
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc, signal.SIGKILL)
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                out, err = b"", b"(output lost: process did not exit after SIGKILL)"
        return CmdResult(args, proc.returncode, out or b"", err or b"", timed_out, time.monotonic() - t0)
    finally:
        if fin:
            fin.close()
        if fout:
            fout.close()


def run_kafkajs(tc, script, bootstrap, prefix, timeout):
    """Runs test/node/<script> (a kafkajs script built on kafkajs_common.js)
    against bootstrap and asserts that node and kafkajs are there, that it
    finished, printed its JSON summary and passed every check. Returns the
    summary (a dict) for the test's own assertions."""
    import json
    import shutil
    node = shutil.which("node")
    tc.assertIsNotNone(node, "node not installed (make deps)")
    modules = os.path.join(NODE_DIR, "node_modules")
    tc.assertTrue(os.path.isdir(os.path.join(modules, "kafkajs")), "kafkajs missing in %s (run `make deps`)" % modules)
    r = run_cmd([node, os.path.join(NODE_DIR, script), bootstrap, prefix], timeout=timeout, cwd=NODE_DIR,
                extra_env={"NODE_PATH": modules})
    tc.assertFalse(r.timed_out, r.describe())
    lines = [l for l in r.stdout.decode("utf-8", "replace").splitlines() if l.startswith("{")]
    tc.assertTrue(lines, "no JSON summary from the script: " + r.describe())
    s = json.loads(lines[-1])
    tc.assertEqual(s["failures"], [], "kafkajs checks failed: " + r.describe(4000))
    tc.assertTrue(s["ok"])
    tc.assertEqual(r.returncode, 0, r.describe())
    return s


class Broker:
    """One kafscale-broker process on a free loopback port, with its own
    temp data dir and a stderr log file."""

    def __init__(self, env=None, name="broker", node_id=1):
        self.name = name
        self.node_id = node_id
        self.extra_env = dict(env or {})
        self.dir = make_tmpdir("kafscale-e2e-%s-" % name)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "broker.log")
        self.proc = None
        self.port = None
        self.host = LOOPBACK
        self.exit_status = None
        self._logf = None

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def env(self):
        e = dict(os.environ)
        e.update({
            "KAFSCALE_BROKER_ADDR": self.bootstrap,
            "KAFSCALE_BROKER_HOST": self.host,
            "KAFSCALE_BROKER_PORT": str(self.port),
            "KAFSCALE_BROKER_ID": str(self.node_id),
            "KAFSCALE_DATA_DIR": self.data_dir,
            "KAFSCALE_LOG_LEVEL": "info",
        })
        e.update(self.extra_env)
        return e

    def start(self, timeout=15.0, attempts=3):
        if not os.access(BROKER_BIN, os.X_OK):
            raise RuntimeError("broker binary %s missing (run `make`)" % BROKER_BIN)
        last = ""
        for attempt in range(attempts):
            self.port = free_port()
            self._logf = open(self.log_path, "ab")
            self._logf.write(("=== start attempt %d on %s ===\n" % (attempt + 1, self.bootstrap)).encode())
            self._logf.flush()
            self.proc = subprocess.Popen([BROKER_BIN], env=self.env(), stdin=subprocess.DEVNULL,
                                         stdout=self._logf, stderr=self._logf, cwd=self.dir,
                                         start_new_session=True)
            with _lock:
                if self not in _live:
                    _live.append(self)
            if wait_port(self.host, self.port, timeout=timeout, proc=self.proc):
                log("%s pid %d listening on %s (log %s)" % (self.name, self.proc.pid, self.bootstrap, self.log_path))
                return self
            # Died (maybe the port was taken meanwhile) or never listened.
            status = stop_process(self.proc, timeout=3)
            self._logf.close()
            last = "exit status %r; log tail:\n%s" % (status, self.log_tail())
            log("%s failed to start on %s (%s)" % (self.name, self.bootstrap, last))
        raise RuntimeError("broker %s did not start after %d attempts: %s" % (self.name, attempts, last))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=8.0):
        """Stops the broker by PID (SIGTERM then SIGKILL). Returns the exit
        status (negative = killed by that signal)."""
        if self.proc is None:
            return None
        if self.exit_status is None:
            self.exit_status = stop_process(self.proc, timeout=timeout)
            if self._logf:
                self._logf.close()
            log("%s pid %d stopped, status %r" % (self.name, self.proc.pid, self.exit_status))
        with _lock:
            if self in _live:
                _live.remove(self)
        return self.exit_status

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def sanitizer_errors(self):
        """Lines of the log that report sanitizer / crash findings."""
        bad = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:", "LeakSanitizer",
               "Segmentation fault", "Assertion", "ThreadSanitizer")
        return [l for l in self.log_text().splitlines() if any(b in l for b in bad)]


_all_brokers = []   # every broker ever started in this process (for log dumps)


def start_broker(env=None, name="broker", node_id=1, timeout=15.0):
    b = Broker(env=env, name=name, node_id=node_id)
    _all_brokers.append(b)
    return b.start(timeout=timeout)


def dump_logs(lines=80, out=sys.stderr):
    for b in _all_brokers:
        out.write("\n===== %s log tail (%s, pid %s, exit %r) =====\n%s\n" % (
            b.name, b.log_path, b.pid, b.exit_status, b.log_tail(lines)))
    out.flush()


def _cleanup():
    with _lock:
        live = list(_live)
    for b in live:
        try:
            b.stop(timeout=3)
        except Exception as e:  # pragma: no cover - best effort at exit
            log("cleanup of %s failed: %s" % (b.name, e))
    if os.environ.get("KAFSCALE_E2E_KEEP") == "1":
        for d in _tmpdirs:
            log("kept %s" % d)
        return
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    # Turn SIGTERM (e.g. from run_all.py's timeout) into a normal exit so
    # atexit cleanup stops our brokers.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


class BrokerTestCase(unittest.TestCase):
    """Starts one broker per test class (BROKER_ENV added to its env) and
    stops it afterwards; checks it did not crash and logged no sanitizer
    findings."""
    BROKER_ENV = {}
    broker = None

    @classmethod
    def setUpClass(cls):
        cls.broker = start_broker(env=cls.BROKER_ENV, name=cls.__name__)

    # Exit statuses accepted after SIGTERM (0: clean shutdown; -15: default
    # SIGTERM disposition). Anything else (a crash, a sanitizer exit, a
    # SIGKILL because SIGTERM was ignored) fails the class.
    OK_EXIT = (0, -signal.SIGTERM)

    @classmethod
    def tearDownClass(cls):
        if cls.broker is None:
            return
        was_alive = cls.broker.alive()
        status = cls.broker.stop()
        problems = []
        if not was_alive:
            problems.append("broker had already exited (status %r) before teardown" % status)
        elif status not in cls.OK_EXIT:
            problems.append("broker exit status %r after SIGTERM (expected one of %r)" % (status, cls.OK_EXIT))
        errs = cls.broker.sanitizer_errors()
        if errs:
            problems.append("broker log reports errors:\n" + "\n".join(errs[:20]))
        if problems:
            raise AssertionError("; ".join(problems) + "\nlog tail:\n" + cls.broker.log_tail())

    def assertBrokerAlive(self):
        self.assertTrue(self.broker.alive(), "broker process %d died (status %r); log tail:\n%s" % (
            self.broker.pid, self.broker.proc.poll(), self.broker.log_tail()))

    def assertNoSanitizerErrors(self):
        errs = self.broker.sanitizer_errors()
        self.assertFalse(errs, "broker log reports errors:\n" + "\n".join(errs[:20]))


def main():
    """unittest.main() that prints the broker log tails when a test failed,
    and exits 0 only when every test passed (and at least one ran)."""
    code = 1
    try:
        prog = unittest.main(exit=False, verbosity=2)
        res = prog.result
        ok = res.wasSuccessful() and res.testsRun > 0
        if not ok:
            dump_logs()
        code = 0 if ok else 1
    except BaseException:
        dump_logs()
        raise
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code)
