#!/usr/bin/python3
"""run_all.py - runs every test/e2e/test_*.py as its own /usr/bin/python3
process with a timeout, prints one line per test file (PASS/FAIL, seconds)
and finally a line `N passed, N failed`. Exits non-zero when any failed or
none ran.

    /usr/bin/python3 test/e2e/run_all.py [-v] [-t SECONDS] [test_x.py ...]

-v prints every test's output; otherwise only failing tests' output tails.
-t sets the timeout of every file; without it a file gets 150 s, or what it
declares in a top-level line `RUN_ALL_TIMEOUT = SECONDS` (a file that runs
a whole cluster through several failovers needs longer).
"""
import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
DEFAULT_TIMEOUT = 150.0


def declared_timeout(path):
    """The file's `RUN_ALL_TIMEOUT = N` (top level), or DEFAULT_TIMEOUT."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            m = re.search(r"^RUN_ALL_TIMEOUT\s*=\s*([0-9]+(?:\.[0-9]*)?)\s*(?:#.*)?$", f.read(), re.M)
    except OSError:
        return DEFAULT_TIMEOUT
    return float(m.group(1)) if m else DEFAULT_TIMEOUT


def run_one(path, timeout, verbose):
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([PYTHON, "-u", path], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=HERE, start_new_session=True)
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            # SIGTERM first: the test's harness turns it into an exit that
            # stops its brokers (atexit); then SIGKILL the whole group.
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                rc = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                rc = proc.wait()
        # Anything left in the test's process group (e.g. a broker it
        # started that ignored SIGTERM) is ours to end.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        secs = time.monotonic() - t0
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return rc == 0 and not timed_out, rc, timed_out, secs, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("-t", "--timeout", type=float, default=None,
                    help="per test file, seconds (default: the file's RUN_ALL_TIMEOUT, else 150)")
    ap.add_argument("tests", nargs="*")
    args = ap.parse_args()

    if args.tests:
        files = [os.path.join(HERE, os.path.basename(t)) for t in args.tests]
    else:
        files = sorted(glob.glob(os.path.join(HERE, "test_*.py")))
    passed = failed = 0
    t_all = time.monotonic()
    for f in files:
        name = os.path.basename(f)
        if not os.path.exists(f):
            print("FAIL %-28s   0.0s  (no such file)" % name, flush=True)
            failed += 1
            continue
        timeout = args.timeout if args.timeout is not None else declared_timeout(f)
        ok, rc, timed_out, secs, text = run_one(f, timeout, args.verbose)
        status = "PASS" if ok else "FAIL"
        note = "" if ok else ("  (timed out after %.0fs)" % timeout if timed_out else "  (exit %s)" % rc)
        print("%s %-28s %6.1fs%s" % (status, name, secs, note), flush=True)
        if args.verbose or not ok:
            lines = text.splitlines()
            shown = lines if args.verbose else lines[-150:]
            print("    | " + "\n    | ".join(shown), flush=True)
        if ok:
            passed += 1
        else:
            failed += 1
    print("(total %.1fs)" % (time.monotonic() - t_all))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(0 if failed == 0 and passed > 0 else 1)


if __name__ == "__main__":
    main()
