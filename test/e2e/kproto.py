"""kproto.py - just enough of the Kafka wire protocol, by hand with struct,
for raw-socket tests (no Kafka library)."""
import socket
import struct
import time
import zlib

API_PRODUCE, API_FETCH, API_LIST_OFFSETS, API_METADATA = 0, 1, 2, 3
API_API_VERSIONS, API_CREATE_TOPICS, API_DELETE_TOPICS = 18, 19, 20

# ---------------------------------------------------------------- crc32c
_CRC32C_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# ---------------------------------------------------------------- encoders


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def kbytes(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items):
    return i32(len(items)) + b"".join(items)


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v):  # zigzag
    return uvarint((v << 1) ^ (v >> 63))


def request(api_key, api_version, corr_id, body, client_id="e2e-raw", flexible=False):
    """A complete frame: length prefix + header (v1, or v2 when flexible) + body."""
    hdr = i16(api_key) + i16(api_version) + i32(corr_id) + string(client_id)
    if flexible:
        hdr += uvarint(0)  # no tagged fields
    payload = hdr + body
    return i32(len(payload)) + payload


# ---------------------------------------------------------------- record batches


def record(offset_delta, ts_delta, key, value, headers=()):
    body = i8(0) + varint(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_ts=1_700_000_000_000, corrupt_crc=False):
    """A magic-2 batch of (key, value) pairs, uncompressed."""
    recs = b"".join(record(i, i, k, v) for i, (k, v) in enumerate(records))
    n = len(records)
    after_crc = (i16(0) + i32(n - 1) + i64(base_ts) + i64(base_ts + n - 1) + i64(-1) + i16(-1) + i32(-1)
                 + i32(n) + recs)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0x5A5A5A5A
    after_len = i32(0) + i8(2) + struct.pack(">I", crc) + after_crc
    return i64(0) + i32(len(after_len)) + after_len


def message_set_v1(records, ts=1_700_000_000_000):
    """An old-format (magic 1) message set."""
    out = b""
    for i, (k, v) in enumerate(records):
        m = i8(1) + i8(0) + i64(ts + i) + kbytes(k) + kbytes(v)
        crc = zlib.crc32(m) & 0xFFFFFFFF
        msg = struct.pack(">I", crc) + m
        out += i64(i) + i32(len(msg)) + msg
    return out


def produce_v3_body(topic, partition, records_bytes, acks=1, timeout_ms=5000):
    return (string(None) + i16(acks) + i32(timeout_ms)
            + array([string(topic) + array([i32(partition) + kbytes(records_bytes)])]))


def parse_produce_v3_response(body):
    """-> [(topic, partition, error_code, base_offset)], throttle_ms"""
    r = Reader(body)
    out = []
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            p, err, base, _lat = r.i32(), r.i16(), r.i64(), r.i64()
            out.append((name, p, err, base))
    return out, r.i32()


def create_topics_v0_body(topics, timeout_ms=5000):
    """topics: [(name, partitions)]"""
    return array([string(n) + i32(p) + i16(1) + array([]) + array([]) for n, p in topics]) + i32(timeout_ms)


def parse_create_topics_v0_response(body):
    r = Reader(body)
    return [(r.string(), r.i16()) for _ in range(r.i32())]


def metadata_v1_body(topics=None):
    return i32(-1) if topics is None else array([string(t) for t in topics])


def parse_metadata_v1_response(body):
    r = Reader(body)
    brokers = []
    for _ in range(r.i32()):
        brokers.append((r.i32(), r.string(), r.i32(), r.string()))
    controller = r.i32()
    topics = []
    for _ in range(r.i32()):
        err, name, internal = r.i16(), r.string(), r.i8()
        parts = []
        for _ in range(r.i32()):
            perr, pidx, leader = r.i16(), r.i32(), r.i32()
            reps = [r.i32() for _ in range(r.i32())]
            isr = [r.i32() for _ in range(r.i32())]
            parts.append((perr, pidx, leader, reps, isr))
        topics.append((err, name, internal, parts))
    return brokers, controller, topics


def parse_api_versions_v0_response(body):
    """-> error_code, {api_key: (min, max)}"""
    r = Reader(body)
    err = r.i16()
    apis = {}
    for _ in range(r.i32()):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    return err, apis


class Reader:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        if self.p + n > len(self.b):
            raise ValueError("short response: need %d bytes at %d of %d" % (n, self.p, len(self.b)))
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode("utf-8", "replace")

    def rest(self):
        return self.b[self.p:]


# ---------------------------------------------------------------- connections


class Closed(Exception):
    pass


class Conn:
    """A blocking raw connection with a per-operation timeout."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise Closed("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        """-> (correlation_id, rest-of-frame bytes). The response header
        is v0 (correlation id only) unless the caller strips tagged fields."""
        (n,) = struct.unpack(">i", self.recv_exact(4))
        if n < 4 or n > 256 << 20:
            raise ValueError("bad response length %d" % n)
        data = self.recv_exact(n)
        return struct.unpack(">i", data[:4])[0], data[4:]

    def call(self, api_key, version, corr_id, body, flexible=False, flexible_resp_header=None):
        self.send(request(api_key, version, corr_id, body, flexible=flexible))
        cid, rest = self.recv_frame()
        if cid != corr_id:
            raise ValueError("correlation id %d, expected %d" % (cid, corr_id))
        if flexible_resp_header if flexible_resp_header is not None else (flexible and api_key != API_API_VERSIONS):
            r = Reader(rest)
            ntags = r.take(1)[0]  # tagged fields count (0 expected: uvarint 0)
            if ntags != 0:
                raise ValueError("unexpected tagged fields in response header")
            rest = r.rest()
        return rest

    def wait_closed(self, timeout=5.0):
        """Reads until EOF; returns (closed: bool, bytes_received). closed is
        False when the peer kept the connection open for `timeout` seconds.
        A reset (ECONNRESET) counts as closed."""
        deadline = time.monotonic() + timeout
        got = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, bytes(got)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False, bytes(got)
            except (ConnectionResetError, BrokenPipeError):
                return True, bytes(got)
            if not chunk:
                return True, bytes(got)
            got += chunk
            if len(got) > 16 << 20:
                return False, bytes(got)
