"""obs_util.py - helpers for the observability tests (test_metrics.py,
test_readyz.py, test_ctl.py): the broker's HTTP port (KAFSCALE_METRICS_ADDR),
scraping and parsing /metrics, promtool, the control API and kafscale-ctl.

    port = obs_util.http_port()                 # a free loopback port
    env = {"KAFSCALE_METRICS_ADDR": "127.0.0.1:%d" % port}
    m = obs_util.scrape(port)                   # {(name, (("label", "v"), ...)): value}
    obs_util.value(m, "kafscale_requests_total", api="Produce")
"""
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import harness

CTL_BIN = os.environ.get("KAFSCALE_CTL_BIN", os.path.join(harness.REPO, "bin", "kafscale-ctl"))
PROMTOOL = shutil.which("promtool")


def http_port():
    return harness.free_port()


def http(port, path, method="GET", body=None, headers=None, timeout=30.0):
    """(status, content-type, body bytes) of one request; never raises on
    HTTP errors."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def control(port, method, req=None, timeout=60.0):
    """(status, decoded JSON answer) of a control API call with a JSON body."""
    st, _, body = http(port, "/control/v1/" + method, "POST", json.dumps(req or {}).encode(),
                       {"Content-Type": "application/json"}, timeout=timeout)
    return st, json.loads(body)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Prometheus text -> {(name, ((label, value), ...sorted)): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError("unparsable metrics line: %r" % line)
        labels = tuple(sorted((k, v.encode().decode("unicode_escape")) for k, v in _LABEL.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def scrape_text(port):
    st, ctype, body = http(port, "/metrics")
    if st != 200:
        raise AssertionError("/metrics answered %d: %r" % (st, body[:200]))
    if not ctype.startswith("text/plain"):
        raise AssertionError("/metrics Content-Type %r" % ctype)
    return body.decode()


def scrape(port):
    return parse(scrape_text(port))


def value(m, name, **labels):
    """The sample's value, or None when absent."""
    return m.get((name, tuple(sorted(labels.items()))))


def total(m, name, **labels):
    """Sum over the samples of name whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in m.items() if n == name and want <= set(ls))


def promtool_check(text):
    """(ok, output) of `promtool check metrics` on text; (None, why) when
    promtool is not installed."""
    if not PROMTOOL:
        return None, "promtool not installed (Debian package prometheus: make deps)"
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    return r.returncode == 0, (r.stdout + r.stderr).decode()


def ctl(port, *args, bootstrap=None, timeout=120.0):
    """Runs bin/kafscale-ctl against the broker's HTTP port. Returns a
    harness.CmdResult (bytes stdout/stderr)."""
    cmd = [CTL_BIN, "--addr", "127.0.0.1:%d" % port]
    if bootstrap:
        cmd += ["--bootstrap", bootstrap]
    return harness.run_cmd(cmd + list(args), timeout=timeout)


def ctl_json(port, *args, **kw):
    r = ctl(port, "--json", *args, **kw)
    try:
        return r, json.loads(r.stdout.decode() or "null")
    except ValueError:
        raise AssertionError("kafscale-ctl --json printed no JSON:\n" + r.describe())
