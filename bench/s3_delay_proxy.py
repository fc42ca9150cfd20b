#!/usr/bin/python3
"""s3_delay_proxy.py - an HTTP/1.1 proxy in front of s3rver that gives PUTs
the latency of S3 Standard (about 100 ms median, 400 ms p99), for
`make bench`. The kernel's netem is not available on the bench machine, and
s3rver on loopback answers in a millisecond or two.

    s3_delay_proxy.py --listen PORT --upstream PORT [--median-ms 100]
                      [--p99-ms 400] [--seed 1] [--port-file FILE]

Loopback only (127.0.0.1 on both sides). Every PUT is held for a delay drawn
from a lognormal distribution with the given median and 99th percentile
(sigma = ln(p99/median) / 2.326) after the proxy has received the whole
request and before it forwards it; the client sees that much more latency,
and the object appears in the store when the client's PUT completes, as
with S3. Other requests pass without delay.

A request for /__bench/stats (on its own connection) is answered by the
proxy itself with JSON counters: requests by method, PUT bytes, and the
delays drawn so far (count, p50, p99, max in ms). The bench reads them
before and after a run to count PUT requests per second.

How it forwards: each client connection gets its own upstream connection.
Requests are parsed (head, then a Content-Length or chunked body) and
forwarded whole; responses are piped back byte for byte. Clients do not
pipeline (libcurl sends the next request on a connection only after the
last response), so order is kept. "Expect: 100-continue" is answered by the
proxy ("100 Continue" at once) and removed from the forwarded head, so a
client never waits for the upstream's interim answer.
"""
import argparse
import asyncio
import json
import math
import os
import random
import signal
import sys
import time

STATS = {"requests": {}, "put_bytes": 0, "connections": 0, "started": time.time()}
DELAYS = []  # ms, every PUT delay drawn


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(math.ceil(q * len(s))) - 1))
    return s[k]


def stats_json():
    d = dict(STATS)
    d["delays_ms"] = {
        "count": len(DELAYS),
        "p50": percentile(DELAYS, 0.50),
        "p99": percentile(DELAYS, 0.99),
        "max": max(DELAYS) if DELAYS else None,
    }
    d["puts"] = STATS["requests"].get("PUT", 0)
    return json.dumps(d).encode()


class Proxy:
    def __init__(self, args):
        self.upstream = args.upstream
        self.mu = math.log(args.median_ms / 1000.0)
        self.sigma = math.log(args.p99_ms / args.median_ms) / 2.3263 if args.p99_ms > args.median_ms else 0.0
        self.rng = random.Random(args.seed)

    def draw_delay(self):
        return math.exp(self.mu + self.sigma * self.rng.gauss(0.0, 1.0)) if self.sigma else math.exp(self.mu)

    async def handle(self, creader, cwriter):
        STATS["connections"] += 1
        ureader = uwriter = None
        pipe = None
        try:
            while True:
                try:
                    head = await creader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head[:-4].split(b"\r\n")
                parts = lines[0].split(b" ")
                if len(parts) < 3:
                    return
                method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
                if target.startswith("/__bench/stats"):
                    body = stats_json()
                    cwriter.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                                  b"Connection: close\r\n\r\n" % len(body) + body)
                    await cwriter.drain()
                    return
                length, chunked, expect = 0, False, False
                kept = [lines[0]]
                for ln in lines[1:]:
                    name, _, value = ln.partition(b":")
                    lname = name.strip().lower()
                    if lname == b"content-length":
                        length = int(value.strip())
                    elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                        chunked = True
                    elif lname == b"expect" and b"100-continue" in value.lower():
                        expect = True
                        continue
                    kept.append(ln)
                if expect:
                    cwriter.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await cwriter.drain()
                out = [b"\r\n".join(kept) + b"\r\n\r\n"]
                nbody = 0
                if chunked:
                    while True:
                        size_line = await creader.readuntil(b"\r\n")
                        n = int(size_line.split(b";")[0].strip(), 16)
                        out.append(size_line)
                        if n == 0:
                            # trailers until an empty line
                            while True:
                                t = await creader.readuntil(b"\r\n")
                                out.append(t)
                                if t == b"\r\n":
                                    break
                            break
                        out.append(await creader.readexactly(n + 2))
                        nbody += n
                elif length:
                    out.append(await creader.readexactly(length))
                    nbody = length
                STATS["requests"][method] = STATS["requests"].get(method, 0) + 1
                if method == "PUT":
                    STATS["put_bytes"] += nbody
                    d = self.draw_delay()
                    DELAYS.append(d * 1000.0)
                    await asyncio.sleep(d)
                if uwriter is None:
                    ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream)
                    pipe = asyncio.ensure_future(self.pipe(ureader, cwriter))
                uwriter.write(b"".join(out))
                await uwriter.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return
        finally:
            if uwriter is not None:
                uwriter.close()
            if pipe is not None:
                try:
                    await asyncio.wait_for(pipe, 5)
                except Exception:
                    pipe.cancel()
            cwriter.close()

    @staticmethod
    async def pipe(reader, writer):
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--median-ms", type=float, default=100.0)
    ap.add_argument("--p99-ms", type=float, default=400.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port-file", default="")
    args = ap.parse_args()
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.listen, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    sys.stdout.write("LISTEN 127.0.0.1:%d\n" % port)
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
