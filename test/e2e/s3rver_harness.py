"""s3rver_harness.py - a local S3 (the npm package s3rver, installed by
`make deps` into test/node) for end-to-end tests, plus helpers to drive the
object store through bin/objstore-cli.

    import harness, s3rver_harness
    s3 = s3rver_harness.S3rver(buckets=["kafscale"]).start()
    env = s3.env("kafscale")          # KAFSCALE_S3_* / AWS_* for our processes
    s3.stop(); ...; s3.start()        # same port, same directory: data kept
    s3.restart(down_seconds=10)       # stop, wait, start again

The server listens on a free loopback port with its data in a temp dir (from
harness.make_tmpdir, removed at exit unless KAFSCALE_E2E_KEEP=1), path-style
only (--no-vhost-buckets), with its built-in credentials S3RVER / S3RVER
(s3rver 3.7 checks the access key id of a SigV4 request but not the
signature: test_s3_sigv4.py checks signatures against botocore). It is
stopped by PID (SIGTERM, then SIGKILL) in stop(), and at exit for anything
still running. Its output goes to
<dir>/s3rver.log (log_tail() shows the end).

Environment:
    KAFSCALE_OBJSTORE_CLI   the CLI binary (default <repo>/bin/objstore-cli or
                            <repo>/bin/objstore_cli, whichever exists)
"""
import atexit
import json
import os
import subprocess
import threading
import time
import urllib.request

import harness

S3RVER_BIN = os.path.join(harness.NODE_DIR, "node_modules", ".bin", "s3rver")
PROXY = os.path.join(harness.REPO, "bench", "s3_delay_proxy.py")
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
REGION = "us-east-1"


def _find_cli():
    """$KAFSCALE_OBJSTORE_CLI, else bin/objstore-cli, else bin/objstore_cli
    (what the Makefile's generic test-tools rule names test/tools/objstore_cli.c)."""
    if os.environ.get("KAFSCALE_OBJSTORE_CLI"):
        return os.environ["KAFSCALE_OBJSTORE_CLI"]
    for name in ("objstore-cli", "objstore_cli"):
        p = os.path.join(harness.REPO, "bin", name)
        if os.access(p, os.X_OK):
            return p
    return os.path.join(harness.REPO, "bin", "objstore-cli")


CLI_BIN = _find_cli()

_live = []
_lock = threading.Lock()


def available():
    """(True, "") when s3rver and node are installed, else (False, why)."""
    if not os.access(S3RVER_BIN, os.X_OK):
        return False, "s3rver missing (%s): run `make deps`" % S3RVER_BIN
    return True, ""


def cli_available():
    if not os.access(CLI_BIN, os.X_OK):
        return False, "%s missing (run `make bin/objstore_cli`)" % CLI_BIN
    return True, ""


class S3rver:
    def __init__(self, buckets=("kafscale",), name="s3rver"):
        self.name = name
        self.buckets = list(buckets)
        self.dir = harness.make_tmpdir("kafscale-e2e-%s-" % name)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "s3rver.log")
        self.host = harness.LOOPBACK
        self.port = None
        self.proc = None
        self._logf = None

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def env(self, bucket=None, **extra):
        """Environment for kafscale processes and the CLI, pointing at this
        server (path style, its credentials). extra: more variables."""
        e = {
            "KAFSCALE_S3_BUCKET": bucket or self.buckets[0],
            "KAFSCALE_S3_REGION": REGION,
            "KAFSCALE_S3_ENDPOINT": self.endpoint,
            "KAFSCALE_S3_PATH_STYLE": "true",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        e.update({k: str(v) for k, v in extra.items()})
        return e

    @staticmethod
    def _node_env():
        # s3rver 3.7 makes ListObjectsV2 continuation tokens with DES, which
        # OpenSSL 3 (Node 17+) keeps in its legacy provider: without this a
        # truncated listing answers 500.
        e = dict(os.environ)
        opts = e.get("NODE_OPTIONS", "")
        if "--openssl-legacy-provider" not in opts:
            e["NODE_OPTIONS"] = (opts + " --openssl-legacy-provider").strip()
        return e

    def _args(self):
        args = [S3RVER_BIN, "-d", self.data_dir, "-a", self.host, "-p", str(self.port), "--no-vhost-buckets"]
        for b in self.buckets:
            args += ["--configure-bucket", b]
        return args

    def start(self, timeout=20.0, attempts=3):
        """Starts the server; on its old port and directory when it ran before."""
        ok, why = available()
        if not ok:
            raise RuntimeError(why)
        if self.alive():
            return self
        keep_port = self.port is not None
        last = ""
        for attempt in range(attempts):
            if not keep_port:
                self.port = harness.free_port()
            self._logf = open(self.log_path, "ab")
            self._logf.write(("=== start attempt %d on %s ===\n" % (attempt + 1, self.endpoint)).encode())
            self._logf.flush()
            self.proc = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL, stdout=self._logf,
                                         stderr=self._logf, cwd=self.dir, start_new_session=True,
                                         env=self._node_env())
            with _lock:
                if self not in _live:
                    _live.append(self)
            if harness.wait_port(self.host, self.port, timeout=timeout, proc=self.proc):
                harness.log("%s pid %d listening on %s" % (self.name, self.proc.pid, self.endpoint))
                return self
            status = harness.stop_process(self.proc, timeout=3)
            self._logf.close()
            last = "exit status %r; log tail:\n%s" % (status, self.log_tail())
            harness.log("%s failed to start on %s (%s)" % (self.name, self.endpoint, last))
            if keep_port:
                time.sleep(1.0)  # the old socket may linger a moment
        raise RuntimeError("%s did not start after %d attempts: %s" % (self.name, attempts, last))

    def stop(self, timeout=5.0):
        """Stops the server by PID. The port and directory are kept for start()."""
        if self.proc is None:
            return None
        status = None
        if self.proc.poll() is None or self._logf:
            status = harness.stop_process(self.proc, timeout=timeout)
            harness.log("%s pid %d stopped, status %r" % (self.name, self.proc.pid, status))
        if self._logf:
            self._logf.close()
            self._logf = None
        with _lock:
            if self in _live:
                _live.remove(self)
        return status

    def restart(self, down_seconds=0.0):
        """Stops the server, waits down_seconds, starts it again on the same
        port with the same data."""
        self.stop()
        if down_seconds:
            time.sleep(down_seconds)
        return self.start()

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def boto3_client(self):
        """A boto3 S3 client for this server (path style, SigV4)."""
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                          retries={"max_attempts": 2}))


def cli(env, *args, input=None, timeout=120.0, stdin_file=None, stdout_file=None):
    """Runs bin/objstore-cli with env added to a copy of os.environ minus any
    KAFSCALE_S3_* / AWS_* already there (the test's env is the whole config).
    Returns harness.CmdResult."""
    base = {k: v for k, v in os.environ.items() if not (k.startswith("KAFSCALE_S3_") or k.startswith("AWS_"))}
    base.update(env)
    return harness.run_cmd([CLI_BIN] + [str(a) for a in args], timeout=timeout, input=input, env=base,
                           stdin_file=stdin_file, stdout_file=stdout_file)


def _cleanup():
    with _lock:
        live = list(_live)
    for s in live:
        try:
            s.stop(timeout=3)
        except Exception as e:  # pragma: no cover - best effort at exit
            harness.log("cleanup of %s failed: %s" % (s.name, e))


# Registered after harness's own atexit, so it runs before harness removes
# the temp dirs.
atexit.register(_cleanup)


class DelayProxy:
    """bench/s3_delay_proxy.py in front of an S3rver's port: every PUT is
    held for a lognormal delay (median_ms, p99_ms) before it is forwarded;
    puts() counts the PUTs it has received (counted on arrival, before the
    delay: a PUT counted is in flight). Stopped by PID."""

    def __init__(self, upstream_port, median_ms, p99_ms):
        self.dir = harness.make_tmpdir("kafscale-e2e-proxy-")
        self.port_file = os.path.join(self.dir, "port")
        self.logf = open(os.path.join(self.dir, "proxy.log"), "wb")
        self.proc = subprocess.Popen(["/usr/bin/python3", PROXY, "--listen", "0", "--upstream", str(upstream_port),
                                      "--median-ms", str(median_ms), "--p99-ms", str(p99_ms),
                                      "--port-file", self.port_file], stdout=self.logf, stderr=self.logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.name = "s3 delay proxy"
        self.port = None
        with _lock:
            _live.append(self)   # stopped at exit if the test is not

    def start(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not os.path.exists(self.port_file):
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())
        if not harness.wait_port(harness.LOOPBACK, self.port, 10, self.proc):
            raise RuntimeError("delay proxy did not start")
        return self

    @property
    def endpoint(self):
        return "http://%s:%d" % (harness.LOOPBACK, self.port)

    def puts(self):
        url = "http://%s:%d/__bench/stats" % (harness.LOOPBACK, self.port)
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())["requests"].get("PUT", 0)

    def stop(self, timeout=5.0):
        harness.stop_process(self.proc, timeout=timeout)
        self.logf.close()
        with _lock:
            if self in _live:
                _live.remove(self)
