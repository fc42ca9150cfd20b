#!/usr/bin/python3
"""bench.py - what `make bench` runs: Kafscale against librdkafka's in-memory
mock cluster and against the machine's limits, on loopback, in one go.
Prints a table, writes every figure to build/bench/results.json and records
the tables (with the command and settings) in BENCHMARKS.md between the
"bench:results" markers. Figures are ratios against baselines measured in
the same run; nothing here passes or fails: the exit status is non-zero only
when the bench itself could not run (a tool missing, a section that broke:
the other sections are still measured and recorded, the traceback is in the
JSON under "errors").

Sections (BENCHMARKS.md explains each and what was found):
  ceilings    iperf3 over loopback; memcpy (bin/bench-memcpy); the disk's
              durable write bandwidth (dd, O_DIRECT + fdatasync)
  throughput  produce 1 KiB and 100 B, acks=1 and acks=all, file store, vs the
              mock (bin/bench-mock); broker/flusher peak RSS, CPU s per GB
  latency     produce-ack and end-to-end p50/p99/p99.9 at 1k, 5k, 20k msg/s
  sweep       flush interval 25..500 ms x 1/16/64 partitions against s3rver
              behind bench/s3_delay_proxy.py (PUTs ~100 ms p50 / 400 ms p99):
              produce p50/p99 (acks=all), PUT/s, monthly PUT cost
  catchup     read BENCH_READ_MB back: warm (node's memory), cold (after a
              node restart, from s3rver), vs loopback and vs parallel ranged
              GETs straight from s3rver (bin/bench-s3get)
  memory      broker peak RSS while producing 4 x BENCH_MEM_STEP_MB with small
              tail/unflushed settings: bounded by settings or by data?

Settings (environment):
  BENCH_SCALE=1        multiplies message counts, durations and data sizes
  BENCH_REPEAT=3       runs of each throughput and latency point (median
                       reported)
  BENCH_LATENCY_SECONDS=4  seconds per latency run (x BENCH_SCALE)
  BENCH_READ_MB=2048   catch-up data set (MB of 1 KiB messages; x BENCH_SCALE);
                       the warm read keeps it all in the broker's tail
                       (KAFSCALE_TAIL_BYTES = 1.3 x this: ~2.7 GB of RAM)
  BENCH_READ_PARTITIONS=1  partitions of the catch-up topic
  BENCH_MEM_STEP_MB=256    memory section: MB produced per step (>= 128:
                       4 steps must be well past the 144 MiB of settings)
  BENCH_SWEEP_RATE=100     msg/s (1 KiB) offered in the flush sweep
  BENCH_SWEEP_SECONDS=6    seconds per sweep point
  BENCH_SWEEP_PARTITIONS=1,16,64  BENCH_SWEEP_INTERVALS=25,50,100,250,500
  BENCH_SWEEP_ACKS1_PARTITIONS=16  the same sweep with acks=1 (PUT cost
                       when nobody waits: the interval sets the pace)
  BENCH_ONLY=a,b       run only these sections (names above)
  BENCH_PROFILE=1      also `perf record --call-graph dwarf` the broker during
                       the first 1 KiB throughput runs (reports into
                       build/bench/perf-*.txt; needs linux-perf)
  BENCH_RECORD=0       do not touch BENCHMARKS.md
  BENCH_OUT=path       JSON output (default build/bench/results.json)
  BENCH_KEEP=1         keep the temp dirs (logs, data) under build/bench/tmp

Every process is started here, on 127.0.0.1, in its own session, and stopped
by PID (SIGTERM, then SIGKILL after a timeout) at the end of its run and,
for anything left, at exit.
"""
import atexit
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
BIN = os.path.join(REPO, "bin")
BROKER_BIN = os.path.join(BIN, "kafscale-broker")
RDKPERF = os.path.join(BIN, "rdkafka_performance")
MOCK_BIN = os.path.join(BIN, "bench-mock")
MEMCPY_BIN = os.path.join(BIN, "bench-memcpy")
S3GET_BIN = os.path.join(BIN, "bench-s3get")
PROXY = os.path.join(HERE, "s3_delay_proxy.py")
S3RVER_BIN = os.path.join(REPO, "test", "node", "node_modules", ".bin", "s3rver")
LOOP = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_num(name, default, kind=float):
    v = os.environ.get(name, "")
    if v == "":
        return default
    try:
        return kind(v)
    except ValueError:
        sys.exit("bench: %s=%r is not a number" % (name, v))


SCALE = env_num("BENCH_SCALE", 1.0)
REPEAT = max(1, env_num("BENCH_REPEAT", 3, int))
READ_MB = max(16, env_num("BENCH_READ_MB", 2048 * SCALE, float))
READ_PARTS = max(1, env_num("BENCH_READ_PARTITIONS", 1, int))
LAT_SECONDS = max(1.0, env_num("BENCH_LATENCY_SECONDS", 4.0, float))
MEM_STEP_MB = max(128, env_num("BENCH_MEM_STEP_MB", 256 * SCALE, float))
SWEEP_RATE = max(10, env_num("BENCH_SWEEP_RATE", 100, int))
SWEEP_SECONDS = max(2.0, env_num("BENCH_SWEEP_SECONDS", 6 * SCALE, float))


def env_list(name, default):
    v = os.environ.get(name, "")
    try:
        return [int(x) for x in v.split(",") if x.strip()] if v.strip() else default
    except ValueError:
        sys.exit("bench: %s=%r: want comma-separated integers" % (name, v))


SWEEP_PARTITIONS = env_list("BENCH_SWEEP_PARTITIONS", [1, 16, 64])
SWEEP_INTERVALS = env_list("BENCH_SWEEP_INTERVALS", [25, 50, 100, 250, 500])
SWEEP_ACKS1_PARTITIONS = env_list("BENCH_SWEEP_ACKS1_PARTITIONS", [16])
PROFILE = os.environ.get("BENCH_PROFILE", "0") not in ("", "0")
RECORD = os.environ.get("BENCH_RECORD", "1") not in ("", "0")
KEEP = os.environ.get("BENCH_KEEP", "0") not in ("", "0")
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "build", "bench", "results.json"))
SECTIONS = ["ceilings", "throughput", "latency", "sweep", "catchup", "memory"]
ONLY = [s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()]
for s in ONLY:
    if s not in SECTIONS:
        sys.exit("bench: BENCH_ONLY: unknown section %r (one of %s)" % (s, ", ".join(SECTIONS)))

OUT_DIR = os.path.dirname(os.path.abspath(OUT))
os.makedirs(OUT_DIR, exist_ok=True)
TMP_ROOT = os.path.join(REPO, "build", "bench", "tmp")
os.makedirs(TMP_ROOT, exist_ok=True)
TMP = tempfile.mkdtemp(prefix="run-", dir=TMP_ROOT)

T0 = time.time()


def log(msg):
    sys.stderr.write("[bench %5.0fs] %s\n" % (time.time() - T0, msg))
    sys.stderr.flush()


# ---------------------------------------------------------------- processes

_live = []  # Popen objects we started and have not reaped


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOP, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_port(port, timeout, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((LOOP, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def spawn(args, log_path, env=None, stdout=None):
    """Starts args in its own session (so a signal to the group reaches only
    what we started), output to log_path."""
    logf = open(log_path, "ab")
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stdout if stdout is not None else logf,
                         stderr=logf, env=env, cwd=TMP, start_new_session=True)
    p._bench_log = logf
    _live.append(p)
    return p


def stop(p, timeout=10.0, sig=signal.SIGTERM):
    """Stops a process we started, by its PID (and its process group, which
    is its own: start_new_session), SIGTERM then SIGKILL."""
    if p is None:
        return None
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    if p in _live:
        _live.remove(p)
    try:
        p._bench_log.close()
    except Exception:
        pass
    return p.returncode


def _cleanup():
    for p in list(_live):
        try:
            stop(p, timeout=3)
        except Exception:
            pass
    if not KEEP:
        shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    log("signal %d: stopping what was started" % signum)
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def run(args, timeout, env=None, log_path=None):
    """Runs a command to completion (killed by PID after timeout). Returns
    (returncode, stdout text)."""
    out_path = log_path or os.path.join(TMP, "cmd-%d.out" % time.monotonic_ns())
    with open(out_path, "wb") as out:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                             cwd=TMP, start_new_session=True)
        _live.append(p)
        p._bench_log = None
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log("%s: timed out after %.0fs, stopping it" % (os.path.basename(args[0]), timeout))
            stop(p, timeout=3, sig=signal.SIGINT)
        if p in _live:
            _live.remove(p)
    with open(out_path, "rb") as f:
        return p.returncode, f.read().decode("utf-8", "replace")


# -------------------------------------------------------- /proc measurements

def proc_cpu_s(pid):
    """utime + stime of pid in seconds (None if gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (clear_refs 5), so the next reading
    is the peak of what follows."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
    except OSError:
        pass


def children(pid):
    """{pid: comm} of pid's children."""
    out = {}
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        kids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                            kids.append(int(d))
                except (OSError, IndexError, ValueError):
                    pass
    for k in kids:
        try:
            with open("/proc/%d/comm" % k) as f:
                out[k] = f.read().strip()
        except OSError:
            pass
    return out


class ProcWatch:
    """CPU seconds and peak RSS of a set of named processes over a run:
    start() resets their peaks and notes their CPU, finish() reads both."""

    def __init__(self, procs):
        self.procs = {k: v for k, v in procs.items() if v}
        self.cpu0 = {}

    def start(self):
        for name, pid in self.procs.items():
            reset_hwm(pid)
            self.cpu0[name] = proc_cpu_s(pid)
        self.t0 = time.time()
        return self

    def finish(self):
        res = {}
        for name, pid in self.procs.items():
            c1 = proc_cpu_s(pid)
            c0 = self.cpu0.get(name)
            res[name] = {
                "pid": pid,
                "hwm_mb": round((proc_status_kb(pid, "VmHWM") or 0) / 1024.0, 1),
                "rss_mb": round((proc_status_kb(pid, "VmRSS") or 0) / 1024.0, 1),
                "cpu_s": round(c1 - c0, 3) if c1 is not None and c0 is not None else None,
            }
        res["wall_s"] = round(time.time() - self.t0, 3)
        return res


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


# ------------------------------------------------------------- the systems

class Mock:
    """bin/bench-mock: librdkafka's mock cluster, one broker."""
    kind = "mock"

    def __init__(self, name, topics=()):
        self.name = name
        self.topics = list(topics)
        self.proc = None
        self.bootstrap = None

    def start(self):
        path = os.path.join(TMP, "%s.out" % self.name)
        args = [MOCK_BIN]
        for t in self.topics:
            args += ["-t", t]
        self.proc = spawn(args, path + ".log", stdout=open(path, "wb"))
        end = time.time() + 10
        while time.time() < end and self.proc.poll() is None:
            with open(path) as f:
                m = re.search(r"BOOTSTRAP (\S+)", f.read())
            if m:
                self.bootstrap = m.group(1)
                return self
            time.sleep(0.05)
        raise RuntimeError("bench-mock did not start (see %s.log)" % path)

    def pids(self):
        return {"mock": self.proc.pid}

    def stop(self):
        stop(self.proc)


class Node:
    """One Kafscale node: bin/kafscale-broker supervising its flusher (and
    kafscale-cached when this build has it), on a free loopback port."""
    kind = "kafscale"

    def __init__(self, name, env=None, data_dir=None):
        self.name = name
        self.extra = dict(env or {})
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.proc = None
        self.port = None

    @property
    def bootstrap(self):
        return "%s:%d" % (LOOP, self.port)

    def start(self, timeout=60.0):
        for attempt in range(3):
            self.port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFSCALE_", "AWS_"))}
            env.update({
                "KAFSCALE_BROKER_ADDR": self.bootstrap,
                "KAFSCALE_DATA_DIR": self.data_dir,
                "KAFSCALE_LOG_LEVEL": "info",
                # the HTTP listener (metrics, control API) on loopback too
                "KAFSCALE_METRICS_ADDR": "%s:%d" % (LOOP, free_port()),
            })
            env.update({k: str(v) for k, v in self.extra.items()})
            self.proc = spawn([BROKER_BIN], os.path.join(self.dir, "broker.log"), env=env)
            if wait_port(self.port, timeout, self.proc):
                return self
            stop(self.proc, timeout=5)
            log("%s: broker did not start on port %d (attempt %d)" % (self.name, self.port, attempt + 1))
        raise RuntimeError("kafscale-broker did not start; log: %s" % os.path.join(self.dir, "broker.log"))

    def pids(self):
        out = {"broker": self.proc.pid}
        for pid, comm in children(self.proc.pid).items():
            if comm.startswith("kafscale-flush"):
                out["flusher"] = pid
            elif comm.startswith("kafscale-cache"):
                out["cached"] = pid
        return out

    def stop(self, timeout=60.0):
        """SIGTERM to the broker alone (it makes accepted data durable and
        stops its flusher and cached), then waits until its children are
        gone too, so a node restarted on the same data dir finds nothing of
        the old one. A child still there after 1 s is stopped by its PID
        (SIGTERM, then SIGKILL)."""
        kids = list(children(self.proc.pid)) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log("%s: broker still running %.0f s after SIGTERM" % (self.name, timeout))
        rc = stop(self.proc, timeout=5)  # reaps it (SIGKILL only if it ignored SIGTERM)
        if rc not in (0, -signal.SIGTERM, None):
            log("%s: broker exit status %r (log %s)" % (self.name, rc, os.path.join(self.dir, "broker.log")))
        for sig, wait in ((None, 1.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            alive = [k for k in kids if pid_alive(k)]
            if not alive:
                break
            if sig is not None:
                log("%s: %s still running after the broker stopped: %s" % (
                    self.name, ", ".join("%d" % k for k in alive), "SIGTERM" if sig == signal.SIGTERM else "SIGKILL"))
                if sig == signal.SIGTERM:
                    ORPHANS.extend("%s:%s" % (self.name, comm_of(k)) for k in alive)
                for k in alive:
                    try:
                        os.kill(k, sig)
                    except ProcessLookupError:
                        pass
            end = time.time() + wait
            while time.time() < end and any(pid_alive(k) for k in alive):
                time.sleep(0.02)
        return rc


ORPHANS = []  # children of a broker still running after it exited ("node:comm")


def comm_of(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# ------------------------------------------------- the load generator

TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
CPU_RE = re.compile(r"BENCHCPU ([\d.]+) ([\d.]+)")


def timed(args):
    """args run under /usr/bin/time, which prints the client's CPU seconds
    (user, system) as a BENCHCPU line on stderr."""
    return [TIME_BIN, "-f", "BENCHCPU %U %S"] + args if TIME_BIN else args


def client_cpu(text):
    m = None
    for m in CPU_RE.finditer(text):
        pass
    return round(float(m.group(1)) + float(m.group(2)), 2) if m else None


PROD_RE = re.compile(r"(\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset (-?\d+), (\d+) failed\) "
                     r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s")
CONS_RE = re.compile(r"(\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s \(([\d.]+) MB/s\)")


def perf_produce(bootstrap, topic, size, count, acks, partition=0, rate=None, latency_file=None, props=None,
                 timeout=None):
    """rdkafka_performance -P; returns a dict with msgs, bytes (payload),
    seconds, msg_s, mb_s (10^6 B/s), failed, and the raw summary."""
    args = [RDKPERF, "-P", "-t", topic, "-b", bootstrap, "-s", str(size), "-c", str(count), "-a", str(acks)]
    if partition is not None:
        args += ["-p", str(partition)]
    if rate:
        args += ["-r", str(rate)]
    if latency_file:
        args += ["-l", "-A", latency_file]
    for k, v in (props or {}).items():
        args += ["-X", "%s=%s" % (k, v)]
    if timeout is None:
        timeout = 120 + (count / rate * 2 if rate else count * size / 20e6)
    rc, out = run(timed(args), timeout)
    m = None
    for m in PROD_RE.finditer(out):
        pass
    if not m:
        raise RuntimeError("rdkafka_performance -P gave no summary (rc %r):\n%s" % (rc, out[-2000:]))
    delivered, ms = int(m.group(3)), max(1, int(m.group(6)))
    return {
        "rc": rc,
        "msgs": delivered,
        "failed": int(m.group(5)),
        "bytes": delivered * size,
        "seconds": ms / 1000.0,
        "msg_s": round(delivered / (ms / 1000.0), 1),
        "mb_s": round(delivered * size / 1e6 / (ms / 1000.0), 2),
        "client_cpu_s": client_cpu(out),
    }


def perf_consume_start(bootstrap, topic, partitions, count, offset="end", latency_file=None, props=None, name="c"):
    """Starts rdkafka_performance -C in the background (line-buffered output
    into a file); returns (proc, output path)."""
    out = os.path.join(TMP, "%s-%d.out" % (name, time.monotonic_ns()))
    args = timed(["stdbuf", "-oL", RDKPERF]) + ["-C", "-t", topic, "-b", bootstrap, "-o", offset, "-c", str(count)]
    for p in partitions:
        args += ["-p", str(p)]
    if latency_file:
        args += ["-l", "-A", latency_file]
    for k, v in (props or {}).items():
        args += ["-X", "%s=%s" % (k, v)]
    proc = spawn(args, out + ".err", stdout=open(out, "wb"))
    return proc, out


def wait_text(path, pattern, timeout, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path, errors="replace") as f:
                if re.search(pattern, f.read()):
                    return True
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def perf_consume_finish(proc, out, timeout):
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log("consumer did not finish in %.0fs: stopping it" % timeout)
        try:
            os.killpg(proc.pid, signal.SIGINT)  # rdkafka_performance prints its summary on SIGINT
            proc.wait(10)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    stop(proc, timeout=3)
    with open(out, errors="replace") as f:
        text = f.read()
    try:
        with open(out + ".err", errors="replace") as f:
            cpu = client_cpu(f.read())
    except OSError:
        cpu = None
    m = None
    for m in CONS_RE.finditer(text):
        pass
    if not m:
        return {"msgs": 0, "bytes": 0, "seconds": None, "msg_s": None, "mb_s": None, "client_cpu_s": cpu}
    msgs, nbytes, ms = int(m.group(1)), int(m.group(2)), max(1, int(m.group(3)))
    return {"msgs": msgs, "bytes": nbytes, "seconds": ms / 1000.0, "msg_s": round(msgs / (ms / 1000.0), 1),
            "mb_s": round(nbytes / 1e6 / (ms / 1000.0), 2), "client_cpu_s": cpu}


def read_latencies(path, skip=0):
    """Latencies in ms from an -A file (microseconds, one a line)."""
    try:
        with open(path) as f:
            v = [int(x) / 1000.0 for x in f if x.strip()]
    except OSError:
        return []
    return v[skip:]


def pct(values, q):
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))
    return round(s[k], 3)


def lat_summary(values):
    return {"n": len(values), "p50_ms": pct(values, 0.50), "p99_ms": pct(values, 0.99),
            "p999_ms": pct(values, 0.999), "max_ms": round(max(values), 3) if values else None}


def cpu_per_gb(watch, nbytes, names):
    if not nbytes:
        return None
    tot = 0.0
    for n in names:
        c = watch.get(n, {}).get("cpu_s")
        if c is not None:
            tot += c
    return round(tot / (nbytes / 1e9), 2)


def median(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


# ------------------------------------------------------------ the sections

def ceiling_sample(when):
    res = {"when": when, "loadavg": loadavg()}
    port = free_port()
    slog = os.path.join(TMP, "iperf3-server-%d.log" % time.monotonic_ns())
    srv = spawn(["iperf3", "-s", "--forceflush", "-B", LOOP, "-p", str(port)], slog)
    try:
        if not wait_text(slog, r"listening", 10, srv):
            raise RuntimeError("iperf3 server did not start")
        rc, out = run(["iperf3", "-c", LOOP, "-p", str(port), "-t", str(max(2, int(3 * SCALE))), "-J"], 60)
        d = json.loads(out[out.index("{"):])
        if "sum_received" not in d.get("end", {}):
            raise RuntimeError("iperf3: %s" % d.get("error", out[-500:]))
        res["loopback_mb_s"] = round(d["end"]["sum_received"]["bits_per_second"] / 8e6, 1)
        res["iperf3_cpu"] = d["end"].get("cpu_utilization_percent")
    finally:
        stop(srv, timeout=3)
    for label, nbytes in (("memcpy_64m_gb_s", 64 << 20), ("memcpy_1m_gb_s", 1 << 20)):
        rc, out = run([MEMCPY_BIN, str(nbytes), "1"], 30)
        res[label] = json.loads(out.strip().splitlines()[-1])["gbps"]
    res["disk_mb_s"] = disk_write_mb_s()
    log("ceilings (%s): loopback %.0f MB/s, memcpy %.1f GB/s (64 MiB), %.1f GB/s (1 MiB), disk %.0f MB/s" %
        (when, res["loopback_mb_s"], res["memcpy_64m_gb_s"], res["memcpy_1m_gb_s"], res["disk_mb_s"]))
    return res


def disk_write_mb_s():
    """What the disk under the bench's data takes durably: 512 MB (x
    BENCH_SCALE) of 4 MiB O_DIRECT writes and an fdatasync, by one dd and
    by four side by side; the better of the two. A durable file store
    cannot take data faster than this for long."""
    total = max(64, int(512 * SCALE)) << 20
    best = 0.0
    for writers in (1, 4):
        count = max(1, total // writers // (4 << 20))
        paths = [os.path.join(TMP, "disk-ceiling-%d" % i) for i in range(writers)]
        t0 = time.time()
        procs = [subprocess.Popen(["dd", "if=/dev/zero", "of=" + pth, "bs=4M", "count=%d" % count, "oflag=direct",
                                   "conv=fdatasync"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for pth in paths]
        outs = [pr.communicate(timeout=120)[1].decode(errors="replace") for pr in procs]
        secs = time.time() - t0
        for pth in paths:
            try:
                os.unlink(pth)
            except OSError:
                pass
        failed = [o for pr, o in zip(procs, outs) if pr.returncode != 0]
        if failed:
            raise RuntimeError("dd (disk ceiling): %s" % failed[0][-300:])
        best = max(best, writers * count * (4 << 20) / 1e6 / secs)
    return round(best, 1)


def ceilings_summary(samples):
    """The machine's limits: the best of the samples (taken at the start,
    before the catch-up reads and at the end: on a shared machine a single
    sample can catch a busy moment)."""
    out = {"samples": samples}
    for k in ("loopback_mb_s", "memcpy_64m_gb_s", "memcpy_1m_gb_s", "disk_mb_s"):
        out[k] = max(x[k] for x in samples)
    return out


def profile_start(pid, tag):
    data = os.path.join(OUT_DIR, "perf-%s.data" % tag)
    if not shutil.which("perf"):
        return None
    p = spawn(["perf", "record", "--call-graph", "dwarf,16384", "-F", "499", "-o", data, "-p", str(pid)],
              os.path.join(TMP, "perf-%s.log" % tag))
    time.sleep(0.3)
    return (p, data, tag)


def profile_finish(h):
    if not h:
        return None
    p, data, tag = h
    stop(p, timeout=20, sig=signal.SIGINT)
    report = os.path.join(OUT_DIR, "perf-%s.txt" % tag)
    _, self_txt = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                       "--percent-limit", "0.5", "-g", "none"], 300)
    _, incl_txt = run(["perf", "report", "-i", data, "--stdio", "--children", "--sort", "symbol",
                       "--percent-limit", "2", "-g", "none"], 300)
    with open(report, "w") as f:
        f.write("# self time (dso, symbol)\n" + self_txt + "\n# inclusive time (symbol)\n" + incl_txt)
    log("profile: %s" % report)
    return report


# Produce-throughput runs use librdkafka's own default linger (5 ms), not
# rdkafka_performance's 1000 ms: with that, the last partial batch of a run
# waits up to a second, which made up most of a 1-2 s run for both systems.
TP_PROPS = {"linger.ms": "5"}


def section_throughput():
    """Each point on a fresh node (or mock): a first run that pays the
    process's first touches of its memory (kept as the "fresh node"
    figure), then the measured run on the same node and topic, as a node
    that has been running a while sees it."""
    counts = {"1024": int(600000 * SCALE), "100": int(2000000 * SCALE)}  # str keys: as in the JSON
    points = [(1024, "1"), (1024, "all"), (100, "1"), (100, "all")]
    runs = []
    profiled = set()
    for rep in range(REPEAT):
        for size, acks in points:
            for kind in ("mock", "kafscale"):
                topic = "tp-%d-%s" % (size, acks)
                sysm = Mock("mock-tp") if kind == "mock" else Node("tp-%d-%s-%d" % (size, acks, rep))
                sysm.start()
                try:
                    a = -1 if acks == "all" else 1
                    first = perf_produce(sysm.bootstrap, topic, size, counts[str(size)], a, props=TP_PROPS)
                    watch = ProcWatch(sysm.pids()).start()
                    prof = None
                    if PROFILE and kind == "kafscale" and size == 1024 and (size, acks) not in profiled:
                        profiled.add((size, acks))
                        prof = profile_start(sysm.proc.pid, "produce-%d-acks%s" % (size, acks))
                    r = perf_produce(sysm.bootstrap, topic, size, counts[str(size)], a, props=TP_PROPS)
                    w = watch.finish()
                    if prof:
                        r["profile"] = profile_finish(prof)
                finally:
                    sysm.stop()
                r.update({"system": kind, "size": size, "acks": acks, "rep": rep, "procs": w,
                          "first_run_msg_s": first["msg_s"],
                          "cpu_s_per_gb": cpu_per_gb(w, r["bytes"], ("broker", "flusher", "cached", "mock"))})
                runs.append(r)
                log("throughput %-8s %4d B acks=%-3s run %d: %9.0f msg/s %7.1f MB/s (fresh node: %9.0f msg/s)  "
                    "cpu %s s/GB  rss %s" % (kind, size, acks, rep + 1, r["msg_s"], r["mb_s"], first["msg_s"],
                                             r["cpu_s_per_gb"],
                                             {k: v["hwm_mb"] for k, v in w.items() if isinstance(v, dict)}))
    table = []
    for size, acks in points:
        row = {"size": size, "acks": acks}
        for kind in ("mock", "kafscale"):
            rs = [r for r in runs if r["system"] == kind and r["size"] == size and r["acks"] == acks]
            row[kind] = {
                "msg_s": median([r["msg_s"] for r in rs]),
                "mb_s": median([r["mb_s"] for r in rs]),
                "msg_s_all": [r["msg_s"] for r in rs],
                "first_run_msg_s": median([r["first_run_msg_s"] for r in rs]),
                "cpu_s_per_gb": median([r["cpu_s_per_gb"] for r in rs]),
                "cpu_s_per_gb_by_proc": {n: median([cpu_per_gb(r["procs"], r["bytes"], (n,)) for r in rs if n in r["procs"]])
                                         for n in ("broker", "flusher", "cached", "mock")
                                         if any(n in r["procs"] for r in rs)},
                "client_cpu_s_per_gb": median([r["client_cpu_s"] / (r["bytes"] / 1e9) for r in rs
                                               if r.get("client_cpu_s") is not None and r["bytes"]]),
                "hwm_mb": {n: median([r["procs"].get(n, {}).get("hwm_mb") for r in rs])
                           for n in ("broker", "flusher", "cached", "mock") if any(n in r["procs"] for r in rs)},
            }
        row["ratio_to_mock"] = ratio(row["kafscale"]["msg_s"], row["mock"]["msg_s"])
        row["first_run_ratio_to_mock"] = ratio(row["kafscale"]["first_run_msg_s"], row["mock"]["first_run_msg_s"])
        table.append(row)
    return {"counts": counts, "props": TP_PROPS, "runs": runs, "table": table}


def latency_point(kind, rate, acks, rep, size=1024, seconds=5.0):
    count = max(500, int(rate * seconds * SCALE))
    topic = "lat-%d-%s-%d" % (rate, acks, rep)
    sysm = Mock("mock-lat", topics=[topic + ":1"]) if kind == "mock" else Node("lat-%d-%s-%d" % (rate, acks, rep))
    sysm.start()
    pfile = os.path.join(TMP, "lat-p-%s-%d-%s-%d.txt" % (kind, rate, acks, rep))
    cfile = os.path.join(TMP, "lat-c-%s-%d-%s-%d.txt" % (kind, rate, acks, rep))
    # The mock holds an empty Fetch for its whole max wait instead of
    # answering when data arrives, so its consumer polls with 1 ms (its best
    # case); Kafscale's consumer keeps librdkafka's default (500 ms long poll).
    # allow.auto.create.topics: the consumer starts first (at the end of the
    # topic), so it is the one that creates the topic on Kafscale.
    cprops = {"fetch.wait.max.ms": "1"} if kind == "mock" else {"allow.auto.create.topics": "true"}
    try:
        cons, cout = perf_consume_start(sysm.bootstrap, topic, [0], count, "end", cfile, cprops, name="lat-c")
        if not wait_text(cout, r"reached end", 20, cons):
            log("latency: consumer did not reach the end of %s in 20 s; starting anyway" % topic)
        watch = ProcWatch(sysm.pids()).start()
        r = perf_produce(sysm.bootstrap, topic, size, count, -1 if acks == "all" else 1, partition=0, rate=rate,
                         latency_file=pfile, props={"linger.ms": "0"})
        c = perf_consume_finish(cons, cout, timeout=30)
        w = watch.finish()
    finally:
        sysm.stop()
    skip = int(rate * 0.2)  # the first 200 ms include connection set-up
    out = {"system": kind, "rate": rate, "acks": acks, "rep": rep, "msgs": r["msgs"], "achieved_msg_s": r["msg_s"],
           "produce": lat_summary(read_latencies(pfile, skip)), "e2e": lat_summary(read_latencies(cfile, skip)),
           "consumed": c["msgs"], "procs": w}
    log("latency %-8s %5d msg/s acks=%-3s run %d: produce p50/p99/p99.9 %s/%s/%s ms, e2e %s/%s/%s ms" % (
        kind, rate, acks, rep + 1, out["produce"]["p50_ms"], out["produce"]["p99_ms"], out["produce"]["p999_ms"],
        out["e2e"]["p50_ms"], out["e2e"]["p99_ms"], out["e2e"]["p999_ms"]))
    return out


def section_latency():
    runs = []
    for rate in (1000, 5000, 20000):
        for acks in ("1", "all"):
            for rep in range(REPEAT):
                for kind in ("mock", "kafscale"):
                    runs.append(latency_point(kind, rate, acks, rep, seconds=LAT_SECONDS))
    table = []
    for rate in (1000, 5000, 20000):
        for acks in ("1", "all"):
            row = {"rate": rate, "acks": acks}
            for kind in ("mock", "kafscale"):
                rs = [r for r in runs if r["system"] == kind and r["rate"] == rate and r["acks"] == acks]
                row[kind] = {}
                for what in ("produce", "e2e"):
                    row[kind][what] = {k: median([r[what][k] for r in rs]) for k in ("p50_ms", "p99_ms", "p999_ms")}
                row[kind]["achieved_msg_s"] = median([r["achieved_msg_s"] for r in rs])
                row[kind]["runs"] = len(rs)
                row[kind]["produce_p99_all"] = [r["produce"]["p99_ms"] for r in rs]
                row[kind]["e2e_p99_all"] = [r["e2e"]["p99_ms"] for r in rs]
            table.append(row)
    return {"message_bytes": 1024, "linger_ms": 0, "runs": runs, "table": table}


class S3rver:
    def __init__(self, name):
        self.name = name
        self.dir = os.path.join(TMP, name)
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.proc = None
        self.port = None

    def start(self):
        if not os.access(S3RVER_BIN, os.X_OK):
            raise RuntimeError("s3rver missing (%s): run `make deps`" % S3RVER_BIN)
        env = dict(os.environ)
        if "--openssl-legacy-provider" not in env.get("NODE_OPTIONS", ""):
            env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --openssl-legacy-provider").strip()
        for _ in range(3):
            self.port = free_port()
            self.proc = spawn([S3RVER_BIN, "-d", os.path.join(self.dir, "data"), "-a", LOOP, "-p", str(self.port),
                               "--no-vhost-buckets", "--configure-bucket", "kafscale"],
                              os.path.join(self.dir, "s3rver.log"), env=env)
            if wait_port(self.port, 30, self.proc):
                return self
            stop(self.proc, timeout=3)
        raise RuntimeError("s3rver did not start (log %s)" % os.path.join(self.dir, "s3rver.log"))

    def stop(self):
        stop(self.proc, timeout=5)


class DelayProxy:
    def __init__(self, upstream_port, median_ms=100, p99_ms=400):
        self.upstream = upstream_port
        self.median_ms, self.p99_ms = median_ms, p99_ms
        self.proc = None
        self.port = None

    def start(self):
        pf = os.path.join(TMP, "proxy.port")
        self.proc = spawn(["/usr/bin/python3", PROXY, "--listen", "0", "--upstream", str(self.upstream),
                           "--median-ms", str(self.median_ms), "--p99-ms", str(self.p99_ms), "--port-file", pf],
                          os.path.join(TMP, "proxy.log"))
        end = time.time() + 10
        while time.time() < end and not os.path.exists(pf):
            time.sleep(0.05)
        with open(pf) as f:
            self.port = int(f.read())
        if not wait_port(self.port, 10, self.proc):
            raise RuntimeError("delay proxy did not start")
        return self

    def stats(self):
        with urllib.request.urlopen("http://%s:%d/__bench/stats" % (LOOP, self.port), timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        stop(self.proc, timeout=5)


def s3_env(port, namespace, **extra):
    e = {"KAFSCALE_S3_BUCKET": "kafscale", "KAFSCALE_S3_ENDPOINT": "http://%s:%d" % (LOOP, port),
         "KAFSCALE_S3_REGION": "us-east-1", "KAFSCALE_S3_PATH_STYLE": "true", "KAFSCALE_S3_NAMESPACE": namespace,
         "AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}
    e.update({k: str(v) for k, v in extra.items()})
    return e


PUT_PRICE = 0.005 / 1000.0  # $ per PUT (S3 Standard)
MONTH_S = 30 * 86400


def section_sweep():
    s3 = S3rver("s3-sweep").start()
    proxy = DelayProxy(s3.port).start()
    runs = []
    points = [("all", p, i) for p in SWEEP_PARTITIONS for i in SWEEP_INTERVALS]
    points += [("1", p, i) for p in SWEEP_ACKS1_PARTITIONS for i in SWEEP_INTERVALS]
    try:
        for acks, parts, interval in points:
            ns = "sweep-a%s-p%d-i%d" % (acks, parts, interval)
            node = Node(ns, s3_env(proxy.port, ns, KAFSCALE_FLUSH_INTERVAL_MS=interval,
                                   KAFSCALE_AUTO_CREATE_PARTITIONS=parts))
            node.start()
            lfile = os.path.join(TMP, "sweep-%s.txt" % ns)
            try:
                watch = ProcWatch(node.pids()).start()
                s0 = proxy.stats()
                count = int(SWEEP_RATE * SWEEP_SECONDS)
                r = perf_produce(node.bootstrap, "sweep", 1024, count, -1 if acks == "all" else 1, partition=None,
                                 rate=SWEEP_RATE, latency_file=lfile, props={"linger.ms": "5"})
                if acks == "1":
                    # acks=1 returns before the data is durable: count the
                    # PUTs over the same window as long as the flusher keeps
                    # its interval (the producer finished; wait one more).
                    time.sleep(max(0.0, SWEEP_SECONDS - r["seconds"]))
                s1 = proxy.stats()
                w = watch.finish()
            finally:
                node.stop()
            window = max(r["seconds"], SWEEP_SECONDS) if acks == "1" else r["seconds"]
            puts = s1["puts"] - s0["puts"]
            put_s = puts / window
            lat = lat_summary(read_latencies(lfile, int(SWEEP_RATE * 0.5)))
            row = {"acks": acks, "partitions": parts, "flush_ms": interval, "msgs": r["msgs"],
                   "achieved_msg_s": r["msg_s"], "seconds": r["seconds"], "puts": puts, "put_s": round(put_s, 2),
                   "put_mb": round((s1["put_bytes"] - s0["put_bytes"]) / 1e6, 2),
                   "cost_month_usd": round(put_s * MONTH_S * PUT_PRICE, 2), "produce": lat, "procs": w}
            runs.append(row)
            log("sweep acks=%-3s p=%-2d flush=%3d ms: produce p50/p99 %s/%s ms, %.1f PUT/s, $%.0f/month, "
                "%.0f msg/s" % (acks, parts, interval, lat["p50_ms"], lat["p99_ms"], put_s, row["cost_month_usd"],
                                r["msg_s"]))
        delays = proxy.stats().get("delays_ms")
    finally:
        proxy.stop()
        s3.stop()
    return {"rate_msg_s": SWEEP_RATE, "seconds": SWEEP_SECONDS, "message_bytes": 1024, "linger_ms": 5,
            "put_delay_ms": delays, "put_price_usd": 0.005, "per_puts": 1000, "table": runs}


def section_catchup(ceil):
    s3 = S3rver("s3-read").start()
    res = {"data_mb": READ_MB, "partitions": READ_PARTS}
    count = int(READ_MB * 1e6 / 1024)
    ns = "catchup"
    tail = max(256 << 20, int(READ_MB * 1e6 * 1.3))
    env = s3_env(s3.port, ns, KAFSCALE_TAIL_BYTES=tail, KAFSCALE_AUTO_CREATE_PARTITIONS=READ_PARTS)
    res["tail_bytes"] = tail
    data_dir = os.path.join(TMP, "catchup-data")
    os.makedirs(data_dir, exist_ok=True)
    parts = list(range(READ_PARTS))
    try:
        node = Node("catchup-1", env, data_dir=data_dir).start()
        try:
            w = ProcWatch(node.pids()).start()
            r = perf_produce(node.bootstrap, "catchup", 1024, count, -1, partition=0 if READ_PARTS == 1 else None)
            res["produce"] = {"msg_s": r["msg_s"], "mb_s": r["mb_s"], "procs": w.finish()}
            log("catchup: produced %d x 1 KiB (acks=all, S3) at %.1f MB/s" % (r["msgs"], r["mb_s"]))
            count = r["msgs"]
            w = ProcWatch(node.pids()).start()
            c, o = perf_consume_start(node.bootstrap, "catchup", parts, count, "beginning", name="warm")
            c = perf_consume_finish(c, o, timeout=120 + READ_MB / 5)
            c["procs"] = w.finish()
            c["cpu_s_per_gb"] = cpu_per_gb(c["procs"], c["bytes"], ("broker", "flusher", "cached"))
            res["warm"] = c
            log("catchup: warm read %s MB/s (%d msgs)" % (c["mb_s"], c["msgs"]))
        finally:
            node.stop()
        passes = []
        node = Node("catchup-2", env, data_dir=data_dir).start()
        try:
            for i in range(2):
                w = ProcWatch(node.pids()).start()
                c, o = perf_consume_start(node.bootstrap, "catchup", parts, count, "beginning", name="cold%d" % i)
                c = perf_consume_finish(c, o, timeout=120 + READ_MB / 2)
                c["procs"] = w.finish()
                c["cpu_s_per_gb"] = cpu_per_gb(c["procs"], c["bytes"], ("broker", "flusher", "cached"))
                passes.append(c)
                log("catchup: %s read after restart %s MB/s (%d msgs)" % ("cold" if i == 0 else "second",
                                                                          c["mb_s"], c["msgs"]))
        finally:
            node.stop()
        res["cold"], res["cold_second_pass"] = passes
        genv = dict(os.environ)
        genv.update(s3_env(s3.port, ns))
        direct = {}
        for par in (16, 2):
            rc, out = run([S3GET_BIN, "%s/catchup/" % ns, ".kfs", str(1 << 20), str(par)], 600, env=genv)
            try:
                direct["parallel_%d" % par] = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise RuntimeError("bench-s3get failed: %s" % out[-1000:])
        res["direct_get"] = direct
        log("catchup: direct ranged GETs %.1f MB/s (16 parallel), %.1f MB/s (2)" % (
            direct["parallel_16"]["mbps"], direct["parallel_2"]["mbps"]))
    finally:
        s3.stop()
    lb = ceil.get("loopback_mb_s") if ceil else None
    res["warm_vs_loopback"] = ratio(res["warm"]["mb_s"], lb)
    res["cold_vs_direct_get"] = ratio(res["cold"]["mb_s"], res["direct_get"]["parallel_16"]["mbps"])
    res["cold_vs_loopback"] = ratio(res["cold"]["mb_s"], lb)
    return res


def section_memory():
    step_count = int(MEM_STEP_MB * 1e6 / 1024)
    env = {"KAFSCALE_TAIL_BYTES": "64m", "KAFSCALE_MAX_UNFLUSHED_BYTES": "64m", "KAFSCALE_READ_CACHE_BYTES": "16m"}
    node = Node("memory", env).start()
    steps = []
    try:
        pids = node.pids()
        base = {n: round((proc_status_kb(p, "VmRSS") or 0) / 1024.0, 1) for n, p in pids.items()}
        produced = 0
        for i in range(4):
            r = perf_produce(node.bootstrap, "mem", 1024, step_count, 1)
            produced += r["bytes"]
            time.sleep(0.5)
            pids = node.pids()
            steps.append({"produced_mb": round(produced / 1e6), "msg_s": r["msg_s"],
                          "hwm_mb": {n: round((proc_status_kb(p, "VmHWM") or 0) / 1024.0, 1) for n, p in pids.items()},
                          "rss_mb": {n: round((proc_status_kb(p, "VmRSS") or 0) / 1024.0, 1) for n, p in pids.items()}})
            log("memory: after %d MB: broker HWM %.0f MB RSS %.0f MB, flusher HWM %s MB" % (
                steps[-1]["produced_mb"], steps[-1]["hwm_mb"]["broker"], steps[-1]["rss_mb"]["broker"],
                steps[-1]["hwm_mb"].get("flusher")))
    finally:
        node.stop()
    first, last = steps[1], steps[-1]
    grow = last["hwm_mb"]["broker"] - first["hwm_mb"]["broker"]
    per_gb = grow / ((last["produced_mb"] - first["produced_mb"]) / 1000.0)
    return {"settings": env, "start_rss_mb": base, "steps": steps, "broker_hwm_growth_mb_per_gb_after_step2":
            round(per_gb, 1), "settings_mb": 64 + 64 + 16}


# -------------------------------------------------------------- reporting

def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def targets(R):
    t = []
    tp = R.get("throughput")
    if tp:
        for row in tp["table"]:
            if row["size"] == 1024 and row["acks"] == "1":
                t.append({"target": "produce 1 KiB acks=1 (file) >= 1.0 x mock", "goal": 1.0,
                          "actual": row["ratio_to_mock"], "met": row["ratio_to_mock"] is not None
                          and row["ratio_to_mock"] >= 1.0})
            if row["size"] == 1024 and row["acks"] == "all":
                t.append({"target": "produce 1 KiB acks=all (file) >= 0.8 x mock", "goal": 0.8,
                          "actual": row["ratio_to_mock"], "met": row["ratio_to_mock"] is not None
                          and row["ratio_to_mock"] >= 0.8})
    lat = R.get("latency")
    if lat:
        for row in lat["table"]:
            if row["rate"] == 5000 and row["acks"] == "all":
                p99 = row["kafscale"]["produce"]["p99_ms"]
                goal = 20 + 5  # file store flush interval default 20 ms
                t.append({"target": "acks=all produce p99 at 5k msg/s (file) <= flush interval (20) + 5 ms",
                          "goal": goal, "actual": p99, "met": p99 is not None and p99 <= goal})
    cu = R.get("catchup")
    if cu:
        t.append({"target": "warm catch-up >= 0.5 x loopback", "goal": 0.5, "actual": cu.get("warm_vs_loopback"),
                  "met": cu.get("warm_vs_loopback") is not None and cu["warm_vs_loopback"] >= 0.5})
        t.append({"target": "cold catch-up >= 0.8 x direct parallel ranged GETs", "goal": 0.8,
                  "actual": cu.get("cold_vs_direct_get"),
                  "met": cu.get("cold_vs_direct_get") is not None and cu["cold_vs_direct_get"] >= 0.8})
    mem = R.get("memory")
    if mem:
        g = mem["broker_hwm_growth_mb_per_gb_after_step2"]
        t.append({"target": "broker memory bounded by settings (peak RSS growth per GB produced, after the first %d MB)"
                  % mem["steps"][1]["produced_mb"], "goal": "~0 MB/GB", "actual": g, "met": g is not None and g < 32})
    return t


def render(R):
    """The Markdown tables (also printed)."""
    parts = []
    c = R.get("ceilings")
    if c:
        parts.append("**Ceilings** (best of %d samples: %s). loopback (iperf3, one stream) %s MB/s; memcpy %.1f GB/s "
                     "(64 MiB buffers), %.1f GB/s (1 MiB, in cache); disk %s MB/s (dd: 4 MiB O_DIRECT writes + "
                     "fdatasync, the better of 1 and 4 writers: what a durable file store can sustain)." % (
                         len(c["samples"]), "; ".join("%s %s MB/s, %.1f GB/s, disk %s MB/s" % (
                             x["when"], fmt(x["loopback_mb_s"]), x["memcpy_64m_gb_s"], fmt(x.get("disk_mb_s")))
                                                      for x in c["samples"]),
                         fmt(c["loopback_mb_s"]), c["memcpy_64m_gb_s"], c["memcpy_1m_gb_s"], fmt(c.get("disk_mb_s"))))
    tp = R.get("throughput")
    if tp:
        rows = []
        disk = (R.get("ceilings") or {}).get("disk_mb_s")
        for r in tp["table"]:
            k, m = r["kafscale"], r["mock"]
            kb = k.get("cpu_s_per_gb_by_proc", {})
            rows.append(["%d B" % r["size"], r["acks"], fmt(m["msg_s"]), fmt(m["mb_s"], "%.1f"), fmt(k["msg_s"]),
                         fmt(k["mb_s"], "%.1f"), fmt(r["ratio_to_mock"], "%.2f"),
                         fmt(ratio(k["mb_s"], disk), "%.2f"),
                         "%s / %s: %s" % (fmt(m.get("first_run_msg_s")), fmt(k.get("first_run_msg_s")),
                                          fmt(r.get("first_run_ratio_to_mock"), "%.2f")),
                         "%s (%s / %s)" % (fmt(k["cpu_s_per_gb"], "%.1f"), fmt(kb.get("broker"), "%.1f"),
                                           fmt(kb.get("flusher"), "%.1f")),
                         fmt(m["cpu_s_per_gb"], "%.2f"),
                         "%s / %s" % (fmt(m.get("client_cpu_s_per_gb"), "%.1f"), fmt(k.get("client_cpu_s_per_gb"), "%.1f")),
                         "%s / %s" % (fmt(k["hwm_mb"].get("broker")), fmt(k["hwm_mb"].get("flusher"))),
                         fmt(m["hwm_mb"].get("mock"))])
        parts.append("**1. Produce throughput** (file store; median of %d runs; %d x 1 KiB / %d x 100 B per run; "
                     "rdkafka_performance with linger.ms=5, one partition; each run is the second one on its "
                     "node and topic, after one that pays the fresh process's first touches of memory: that "
                     "first run is the \"fresh node\" column)\n\n" % (
                         REPEAT, tp["counts"]["1024"], tp["counts"]["100"]) +
                     md_table(["msg", "acks", "mock msg/s", "mock MB/s", "kafscale msg/s", "kafscale MB/s",
                               "ratio", "kafscale vs disk", "fresh node msg/s mock / kafscale: ratio", "kafscale CPU s/GB (broker / flusher)", "mock CPU s/GB",
                               "client CPU s/GB (vs mock / vs kafscale)", "peak RSS broker / flusher MB",
                               "mock RSS MB"], rows))
    lat = R.get("latency")
    if lat:
        rows = []
        for r in lat["table"]:
            for kind in ("mock", "kafscale"):
                x = r[kind]
                rows.append(["%dk" % (r["rate"] // 1000), r["acks"], kind, fmt(x["achieved_msg_s"]),
                             "%s / %s / %s" % (fmt(x["produce"]["p50_ms"], "%.2f"), fmt(x["produce"]["p99_ms"], "%.2f"),
                                               fmt(x["produce"]["p999_ms"], "%.2f")),
                             "%s / %s / %s" % (fmt(x["e2e"]["p50_ms"], "%.2f"), fmt(x["e2e"]["p99_ms"], "%.2f"),
                                               fmt(x["e2e"]["p999_ms"], "%.2f")),
                             ", ".join(fmt(v, "%.0f") for v in x.get("produce_p99_all", []))])
        parts.append("**2. Latency** (1 KiB, one partition, linger.ms=0, file store, flush interval 20 ms; "
                     "ms p50 / p99 / p99.9, median of %d runs of %.1f s; the mock's consumer polls with "
                     "fetch.wait.max.ms=1, Kafscale's uses the default 500 ms long poll)\n\n" % (REPEAT, LAT_SECONDS * SCALE) +
                     md_table(["rate", "acks", "system", "achieved msg/s", "produce-ack", "end-to-end",
                               "produce p99 of each run"], rows))
    sw = R.get("sweep")
    if sw:
        rows = []
        for r in sw["table"]:
            rows.append([r["acks"], r["partitions"], r["flush_ms"], fmt(r["achieved_msg_s"]), fmt(r["produce"]["p50_ms"]),
                         fmt(r["produce"]["p99_ms"]), "%.1f" % r["put_s"], "$%.0f" % r["cost_month_usd"],
                         fmt(r["procs"].get("broker", {}).get("hwm_mb"))])
        d = sw.get("put_delay_ms") or {}
        parts.append("**3. Flush-interval sweep** (S3: s3rver behind the delay proxy, PUT delay p50 %s ms / p99 %s ms "
                     "as drawn; 1 KiB offered at %d msg/s for %.0f s, linger.ms=5, random partitions; cost = PUT/s x "
                     "30 days x $0.005 per 1,000)\n\n" % (fmt(d.get("p50")), fmt(d.get("p99")), sw["rate_msg_s"],
                                                           sw["seconds"]) +
                     md_table(["acks", "partitions", "flush ms", "msg/s", "produce p50 ms", "produce p99 ms", "PUT/s",
                               "PUT cost / month", "broker peak RSS MB"], rows))
    cu = R.get("catchup")
    if cu:
        lb = (R.get("ceilings") or {}).get("loopback_mb_s")
        d16 = cu["direct_get"]["parallel_16"]["mbps"]
        d2 = cu["direct_get"]["parallel_2"]["mbps"]
        rows = []
        for label, key in (("warm (node memory)", "warm"), ("cold (after restart, from S3)", "cold"),
                           ("second pass after restart", "cold_second_pass")):
            x = cu[key]
            rows.append([label, fmt(x["mb_s"], "%.1f"), fmt(ratio(x["mb_s"], lb), "%.3f"), fmt(ratio(x["mb_s"], d16), "%.2f"),
                         fmt(x.get("cpu_s_per_gb"), "%.1f"),
                         fmt(x["client_cpu_s"] / (x["bytes"] / 1e9) if x.get("client_cpu_s") and x.get("bytes") else None,
                             "%.1f"),
                         "%s / %s" % (fmt(x["procs"].get("broker", {}).get("hwm_mb")),
                                      fmt(x["procs"].get("cached", {}).get("hwm_mb")))])
        rows.append(["direct ranged GETs, 16 parallel (bench-s3get)", "%.1f" % d16, fmt(ratio(d16, lb), "%.3f"), "1.00",
                     "-", "-", "-"])
        rows.append(["direct ranged GETs, 2 parallel", "%.1f" % d2, fmt(ratio(d2, lb), "%.3f"), fmt(ratio(d2, d16), "%.2f"),
                     "-", "-", "-"])
        parts.append("**4. Catch-up read** of %.0f MB (1 KiB messages, %d partition(s), s3rver on loopback without "
                     "delay; consumer: rdkafka_performance -C from the beginning)\n\n" % (cu["data_mb"], cu["partitions"]) +
                     md_table(["read", "MB/s", "vs loopback", "vs direct GETs", "node CPU s/GB",
                               "consumer CPU s/GB", "peak RSS broker / cached MB"], rows))
    mem = R.get("memory")
    if mem:
        rows = [[s["produced_mb"], fmt(s["msg_s"]), s["hwm_mb"].get("broker"), s["rss_mb"].get("broker"),
                 s["hwm_mb"].get("flusher", "-")] for s in mem["steps"]]
        parts.append("**5. Memory bound** (file store, tail 64 MiB, unflushed 64 MiB, read cache 16 MiB; "
                     "acks=1, 1 KiB; growth after step 2: %s MB per GB produced)\n\n" % (
                         mem["broker_hwm_growth_mb_per_gb_after_step2"]) +
                     md_table(["produced MB", "msg/s", "broker peak RSS MB", "broker RSS MB", "flusher peak RSS MB"],
                              rows))
    tg = R.get("targets")
    if tg:
        rows = [[t["target"], t["goal"], fmt(t["actual"], "%.3f") if isinstance(t["actual"], (float, type(None)))
                 else t["actual"], "n/a" if t["actual"] is None else "met" if t["met"] else "missed"] for t in tg]
        parts.append("**Targets**\n\n" + md_table(["target", "goal", "actual", ""], rows))
    return "\n\n".join(parts)


BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def record(R, text):
    path = os.path.join(REPO, "BENCHMARKS.md")
    m = R["meta"]
    block = "%s\n_Generated by `%s` on %s (git %s, %s; %s cores; load average at start %s, at end %s; " \
            "%.1f minutes). Settings: %s._\n\n%s\n%s" % (
                BEGIN, m["command"], m["date"], m["git"], m["host"], m["cpus"], m["loadavg_start"], m["loadavg_end"],
                m["minutes"], ", ".join("%s=%s" % kv for kv in sorted(m["settings"].items())), text, END)
    try:
        with open(path) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = "# Benchmarks\n\n"
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    with open(path + ".tmp", "w") as f:
        f.write(doc)
    os.rename(path + ".tmp", path)
    log("recorded in %s" % path)


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+local changes" if dirty else "")
    except Exception:
        return "?"


def main():
    for b in (BROKER_BIN, RDKPERF, MOCK_BIN, MEMCPY_BIN, S3GET_BIN):
        if not os.access(b, os.X_OK):
            sys.exit("bench: %s missing: run `make bench` (it builds everything first)" % b)
    if not shutil.which("iperf3"):
        sys.exit("bench: iperf3 missing: run `make deps`")
    settings = {"BENCH_SCALE": SCALE, "BENCH_REPEAT": REPEAT, "BENCH_READ_MB": READ_MB,
                "BENCH_READ_PARTITIONS": READ_PARTS, "BENCH_MEM_STEP_MB": MEM_STEP_MB,
                "BENCH_LATENCY_SECONDS": LAT_SECONDS,
                "BENCH_SWEEP_RATE": SWEEP_RATE, "BENCH_SWEEP_SECONDS": SWEEP_SECONDS,
                "BENCH_SWEEP_PARTITIONS": ",".join(map(str, SWEEP_PARTITIONS)),
                "BENCH_SWEEP_INTERVALS": ",".join(map(str, SWEEP_INTERVALS)),
                "BENCH_SWEEP_ACKS1_PARTITIONS": ",".join(map(str, SWEEP_ACKS1_PARTITIONS))}
    if ONLY:
        settings["BENCH_ONLY"] = ",".join(ONLY)
    cmd = " ".join(["%s=%s" % (k, os.environ[k]) for k in sorted(os.environ) if k.startswith("BENCH_")] +
                   ["make bench"])
    R = {"meta": {"command": cmd, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "git": git_rev(), "host": os.uname().release, "cpus": os.cpu_count(), "loadavg_start": loadavg(),
                  "settings": settings}}
    want = ONLY or SECTIONS
    log("sections: %s; temp dir %s" % (", ".join(want), TMP))

    def save():
        with open(OUT + ".tmp", "w") as f:
            json.dump(R, f, indent=1)
        os.rename(OUT + ".tmp", OUT)

    def guard(name, fn, *args):
        """Runs one section; a failure is recorded (and the run goes on) so
        that one broken section does not lose the others' figures."""
        try:
            return fn(*args)
        except Exception as e:  # the bench reports, it does not stop
            import traceback
            log("%s failed: %s" % (name, e))
            R.setdefault("errors", {})[name] = traceback.format_exc()
            return None
        finally:
            save()

    ceil = []

    def sample(when):
        c = guard("ceilings (%s)" % when, ceiling_sample, when)
        if c:
            ceil.append(c)
            R["ceilings"] = ceilings_summary(ceil)

    if "ceilings" in want:
        sample("start")
    for name, fn in (("throughput", section_throughput), ("latency", section_latency), ("sweep", section_sweep)):
        if name in want:
            R[name] = guard(name, fn)
    if "catchup" in want:
        if "ceilings" in want:
            sample("before catch-up")
        R["catchup"] = guard("catchup", section_catchup, R.get("ceilings"))
    if "memory" in want:
        R["memory"] = guard("memory", section_memory)
    if "ceilings" in want:
        sample("end")
        if R.get("catchup") and R.get("ceilings"):  # ratios against the best loopback figure of the run
            lb = R["ceilings"]["loopback_mb_s"]
            for k in ("warm", "cold"):
                R["catchup"]["%s_vs_loopback" % k] = ratio(R["catchup"][k]["mb_s"], lb)
    for k in [k for k, v in R.items() if v is None]:
        del R[k]
    R["targets"] = targets(R)
    R["meta"]["orphaned_children"] = ORPHANS
    R["meta"]["loadavg_end"] = loadavg()
    R["meta"]["minutes"] = round((time.time() - T0) / 60.0, 1)
    save()
    text = render(R)
    if R.get("errors"):
        text += "\n\n**Sections that failed in this run:** %s (tracebacks in the JSON)." % ", ".join(sorted(R["errors"]))
    print("\n" + text + "\n")
    print("figures: %s" % OUT)
    if RECORD:
        record(R, text)
    if R.get("errors"):
        sys.exit(1)


if __name__ == "__main__":
    main()
