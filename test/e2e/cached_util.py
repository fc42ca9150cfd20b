"""cached_util.py - helpers for the tests of kafscale-cached and its ring
(test_cached.py, test_shm_tool.py): message values that can be checked byte
for byte, producing and consuming with confluent-kafka, kafscale-shm --json,
the cached process, and the object-store GETs s3rver saw.

    import cached_util as cu
    n = cu.produce(bootstrap, "t", nbytes)         # returns the message count
    got = cu.consume(tc, bootstrap, "t", n)        # checks offsets and bytes
    ring = cu.shm_json(name)                       # kafscale-shm --json, parsed
    cu.kfs_gets(s3)                                # .kfs GETs in s3rver's log

Values: value(i) is VALUE_SIZE bytes: "%010d|" then a slice of a fixed
pseudo-random block that depends on i (cheap to make, cheap to check).
"""
import json
import os
import random
import re
import signal
import subprocess
import time

import harness

SHM_BIN = os.path.join(harness.REPO, "bin", "kafscale-shm")
VALUE_SIZE = 4096
_BLOCK = random.Random(4).randbytes(2 * VALUE_SIZE + 8192)


def value(i):
    head = b"%010d|" % i
    k = (i * 131) % 8192
    return head + _BLOCK[k:k + VALUE_SIZE - len(head)]


def produce(bootstrap, topic, nbytes, partition=0, acks="all"):
    """Produces nbytes (rounded up to whole messages); returns the number of
    messages. With acks=1 the flusher cuts segments by size (nobody waits
    for a flush), then this waits until the high watermark (the durable end)
    covers every message."""
    from confluent_kafka import Producer
    n = (nbytes + VALUE_SIZE - 1) // VALUE_SIZE
    errors = []

    def cb(err, m):
        if err is not None:
            errors.append(err)

    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 10, "batch.size": 1000000,
                  "batch.num.messages": 100000, "enable.idempotence": False, "message.timeout.ms": 120000,
                  "queue.buffering.max.kbytes": 262144, "compression.type": "none"})
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=value(i), partition=partition, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(180)
    if left or errors:
        raise AssertionError("%d messages not delivered, delivery errors: %r" % (left, errors[:3]))
    if acks != "all":
        import durability_util as du
        hw = du.wait_for(lambda: du.watermarks(bootstrap, topic, partition + 1)[partition][1] == n, 60, 0.2)
        if not hw:
            raise AssertionError("high watermark of %s never reached %d" % (topic, n))
    return n


def consume(tc, bootstrap, topic, count, group, partition=0, timeout=120, progress=None, pause=None):
    """Reads `count` messages from offset 0 and checks every offset and byte.
    progress: a list to which the running count is written (progress[0]);
    pause(n): called after each batch with the count so far (may block)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "enable.auto.offset.store": False, "fetch.wait.max.ms": 100,
                  "enable.partition.eof": False})
    n = 0
    bad = []
    try:
        c.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + timeout
        while n < count and time.monotonic() < deadline:
            for m in c.consume(500, 0.5):
                if m.error():
                    # retriable errors (a store hiccup) are reported, not fatal
                    harness.log("consumer %s: %s" % (group, m.error()))
                    continue
                if m.offset() != n:
                    bad.append("offset %d where %d was expected" % (m.offset(), n))
                elif m.value() != value(n):
                    bad.append("offset %d: value differs" % n)
                n += 1
                if len(bad) > 5:
                    break
            if progress is not None:
                progress[0] = n
            if bad:
                break
            if pause:
                pause(n)
    finally:
        c.close()
    tc.assertEqual(bad, [], "consumer %s read wrong data" % group)
    tc.assertEqual(n, count, "consumer %s read %d of %d messages" % (group, n, count))
    return n


def shm_json(name, timeout=10):
    """kafscale-shm --json -n name, parsed (None when it fails)."""
    r = harness.run_cmd([SHM_BIN, "-n", name, "--json"], timeout=timeout)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout.decode())
    except ValueError:
        return None


def counters(ring):
    return ring["counters"] if ring else {}


def wait_ring(name, cond, timeout=20.0):
    """Polls kafscale-shm --json until cond(ring) holds; returns the ring
    (or the last one seen)."""
    deadline = time.monotonic() + timeout
    ring = None
    while time.monotonic() < deadline:
        ring = shm_json(name)
        if ring and cond(ring):
            return ring
        time.sleep(0.1)
    return ring


def wait_link(broker, timeout=20.0):
    """Waits until the broker logged that its link to cached is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(r"cache: kafscale-cached \(pid \d+, protocol v\d+\) up", broker.log_text()):
            return True
        time.sleep(0.05)
    return False


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rfind(")") + 2:][:1] not in ("Z", "X", "")


def stop_cached(name, timeout=10.0):
    """SIGTERM to the ring's writer (cached outlives its broker on purpose:
    this ends it), then waits until it is gone and its ring unlinked."""
    ring = shm_json(name)
    if not ring:
        return
    pid = ring["writer"]["pid"]
    if pid > 0 and pid_alive(pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while os.path.exists("/dev/shm" + name) and time.monotonic() < deadline:
        time.sleep(0.05)


_GET_RE = re.compile(r"\.kfs (200|206) \d+ms (\S+)")


def kfs_gets(s3):
    """GETs of .kfs objects in s3rver's log so far: (whole, ranged). s3rver
    logs responses as "<key tail> <status> <ms> <size>"; PUTs answer 0b."""
    time.sleep(0.2)  # s3rver logs a response after sending it
    try:
        with open(s3.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return 0, 0
    whole = ranged = 0
    for m in _GET_RE.finditer(text):
        if m.group(2) in ("0b", "-"):
            continue
        if m.group(1) == "200":
            whole += 1
        else:
            ranged += 1
    return whole, ranged


# ---- a raw Fetch (v4), for a reader whose position the test controls exactly
# (librdkafka fetches far ahead of what the application consumed) ----


def _uvarint(b, p):
    v = shift = 0
    while True:
        c = b[p]
        p += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, p
        shift += 7


def _varint(b, p):
    v, p = _uvarint(b, p)
    return (v >> 1) ^ -(v & 1), p


def records_of(data):
    """(offset, value) of every record in uncompressed v2 batches."""
    import struct
    out, p = [], 0
    while p + 61 <= len(data):
        base, blen = struct.unpack(">qi", data[p:p + 12])
        end = p + 12 + blen
        if end > len(data):
            break  # a partial batch at the end of a response
        n = struct.unpack(">i", data[p + 57:p + 61])[0]
        q = p + 61
        for _ in range(n):
            _, q = _varint(data, q)        # record length
            q += 1                         # attributes
            _, q = _varint(data, q)        # timestamp delta
            od, q = _varint(data, q)       # offset delta
            kl, q = _varint(data, q)
            q += max(kl, 0)
            vl, q = _varint(data, q)
            val = data[q:q + vl] if vl >= 0 else None
            q += max(vl, 0)
            hn, q = _varint(data, q)
            for _ in range(hn):
                hk, q = _varint(data, q)
                q += hk
                hv, q = _varint(data, q)
                q += max(hv, 0)
            out.append((base + od, val))
        p = end
    return out


def raw_fetch(conn, topic, offset, max_bytes, partition=0, corr=[0]):
    """One Fetch v4 of topic/partition at offset (max_bytes for it, 500 ms
    max wait): (error code, high watermark, [(offset, value)...])."""
    import kproto
    corr[0] += 1
    body = (kproto.i32(-1) + kproto.i32(500) + kproto.i32(1) + kproto.i32(max_bytes) + kproto.i8(0) +
            kproto.i32(1) + kproto.string(topic) + kproto.i32(1) + kproto.i32(partition) + kproto.i64(offset) +
            kproto.i32(max_bytes))
    r = kproto.Reader(conn.call(kproto.API_FETCH, 4, corr[0], body))
    r.i32()  # throttle
    assert r.i32() == 1 and r.string() == topic and r.i32() == 1 and r.i32() == partition
    err, hw = r.i16(), r.i64()
    r.i64()  # last stable offset
    na = r.i32()
    for _ in range(max(na, 0)):
        r.i64(), r.i64()
    n = r.i32()
    data = r.take(n) if n > 0 else b""
    return err, hw, [(o, v) for o, v in records_of(data) if o >= offset]
