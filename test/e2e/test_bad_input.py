#!/usr/bin/python3
"""Malformed and hostile input over raw sockets (no Kafka library): every bad
request gets Kafka's answer or a closed connection, while a second client
keeps working and the broker stays up. Also: pipelining and idle timeout."""
import random
import socket
import struct
import threading
import time
import unittest

import harness
import kproto as kp
from kproto import i16, i32, i64, string, uvarint

MAX_REQ = 1 << 20
IDLE_MS = 1000


def api_versions_v3_body():
    name, ver = b"e2e-raw", b"1.0"
    return uvarint(len(name) + 1) + name + uvarint(len(ver) + 1) + ver + uvarint(0)


def parse_api_versions_v3(body):
    r = kp.Reader(body)
    err = r.i16()
    n = r.take(1)[0] - 1  # compact array (fewer than 127 entries)
    apis = {}
    for _ in range(n):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        r.take(1)  # tagged fields
        apis[k] = (lo, hi)
    r.i32()  # throttle
    return err, apis


class Background(threading.Thread):
    """A second client doing ApiVersions + Metadata in a loop on one
    connection (bounded in time and count)."""

    def __init__(self, broker, max_seconds=120, max_iters=20000):
        super().__init__(daemon=True)
        self.broker = broker
        self.stop_ev = threading.Event()
        self.max_seconds, self.max_iters = max_seconds, max_iters
        self.ok = 0
        self.errors = []

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        conn = None
        corr = 0
        while not self.stop_ev.is_set() and time.monotonic() < deadline and self.ok < self.max_iters:
            try:
                if conn is None:
                    conn = kp.Conn(self.broker.host, self.broker.port, timeout=5)
                corr += 1
                err, apis = kp.parse_api_versions_v0_response(conn.call(kp.API_API_VERSIONS, 0, corr, b""))
                if err != 0 or kp.API_METADATA not in apis:
                    raise AssertionError("ApiVersions err=%d apis=%r" % (err, apis))
                corr += 1
                brokers, _ctl, _topics = kp.parse_metadata_v1_response(
                    conn.call(kp.API_METADATA, 1, corr, kp.metadata_v1_body(None)))
                if not any(b[2] == self.broker.port for b in brokers):
                    raise AssertionError("metadata brokers %r lack port %d" % (brokers, self.broker.port))
                self.ok += 1
            except Exception as e:  # record, reconnect, go on
                self.errors.append("%.3f %s: %s" % (time.monotonic(), type(e).__name__, e))
                if conn:
                    conn.close()
                conn = None
                if len(self.errors) > 50:
                    break
            self.stop_ev.wait(0.02)
        if conn:
            conn.close()


class BadInput(harness.BrokerTestCase):
    BROKER_ENV = {
        "KAFSCALE_MAX_REQUEST_BYTES": str(MAX_REQ),
        "KAFSCALE_IDLE_TIMEOUT_MS": str(IDLE_MS),
        "KAFSCALE_AUTO_CREATE_TOPICS": "true",
        "KAFSCALE_AUTO_CREATE_PARTITIONS": "1",
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bg = Background(cls.broker)
        cls.bg.start()

    @classmethod
    def tearDownClass(cls):
        cls.bg.stop_ev.set()
        cls.bg.join(10)
        super().tearDownClass()

    # ------------------------------------------------------------ helpers
    def conn(self, timeout=5.0):
        return kp.Conn(self.broker.host, self.broker.port, timeout=timeout)

    def send_expect_close(self, data, what, half_close=True, timeout=5.0, allow_bytes=False):
        """Sends data; expects the broker to close the connection (after our
        write side is shut when half_close). Returns the bytes received."""
        with self.conn() as c:
            try:
                c.send(data)
                if half_close:
                    c.sock.shutdown(socket.SHUT_WR)
            except OSError:  # EPIPE, ECONNRESET, ENOTCONN: closed while we were still sending
                return b""
            closed, got = c.wait_closed(timeout)
            self.assertTrue(closed, "%s: connection still open after %.0fs (received %d bytes)" % (what, timeout, len(got)))
            if not allow_bytes:
                self.assertEqual(got, b"", "%s: expected no response before close, got %r" % (what, got[:64]))
            return got

    def assertStillServing(self):
        with self.conn() as c:
            err, apis = kp.parse_api_versions_v0_response(c.call(kp.API_API_VERSIONS, 0, 4242, b""))
            self.assertEqual(err, 0)
            self.assertIn(kp.API_PRODUCE, apis)
        self.assertBrokerAlive()

    def ensure_topic(self, name):
        with self.conn() as c:
            res = kp.parse_create_topics_v0_response(
                c.call(kp.API_CREATE_TOPICS, 0, 7, kp.create_topics_v0_body([(name, 1)])))
        self.assertEqual(len(res), 1, res)
        self.assertEqual(res[0][0], name)
        self.assertIn(res[0][1], (0, 36), "CreateTopics %s: error %d" % (name, res[0][1]))

    def produce(self, c, corr, topic, records_bytes):
        body = c.call(kp.API_PRODUCE, 3, corr, kp.produce_v3_body(topic, 0, records_bytes))
        res, _thr = kp.parse_produce_v3_response(body)
        self.assertEqual(len(res), 1, res)
        self.assertEqual(res[0][:2], (topic, 0))
        return res[0][2], res[0][3]

    # ------------------------------------------------------------ framing
    def test_garbage(self):
        rnd = random.Random(1234)
        for i in range(20):
            n = rnd.choice([1, 3, 4, 7, 16, 100, 1000, 5000])
            data = bytes(rnd.getrandbits(8) for _ in range(n))
            self.send_expect_close(data, "garbage #%d (%d bytes, head %s)" % (i, n, data[:8].hex()),
                                   allow_bytes=True)
        self.assertStillServing()

    def test_garbage_after_valid_request(self):
        with self.conn() as c:
            err, _ = kp.parse_api_versions_v0_response(c.call(kp.API_API_VERSIONS, 0, 1, b""))
            self.assertEqual(err, 0)
            c.send(b"\x00\x00\x00\x10" + b"\xff" * 16)
            c.sock.shutdown(socket.SHUT_WR)
            closed, got = c.wait_closed(5)
            self.assertTrue(closed, "garbage frame after a valid request: connection left open")
        self.assertStillServing()

    def test_negative_length(self):
        for n in (-1, -5, -0x80000000):
            # No half-close: the broker must close as soon as it sees the prefix.
            self.send_expect_close(i32(n) + b"\x00" * 32, "length %d" % n, half_close=False)
        self.assertStillServing()

    def test_zero_and_tiny_length(self):
        for n in (0, 1, 3):
            self.send_expect_close(i32(n) + b"\x00" * n, "length %d" % n)
        self.assertStillServing()

    def test_huge_length(self):
        for n in (MAX_REQ + 1, 100 << 20, 0x7FFFFFFF):
            # The broker must refuse from the prefix alone, without reading (or
            # waiting for) the body.
            self.send_expect_close(i32(n) + b"\x00\x12\x00\x00" + b"\x00" * 60, "length %d" % n, half_close=False)
        self.assertStillServing()

    def test_request_just_under_limit_is_read(self):
        # A well-formed Produce just under KAFSCALE_MAX_REQUEST_BYTES is read
        # in full and accepted (the limit is not off by a large margin).
        self.ensure_topic("bad-input-big")
        blob = kp.record_batch([(b"k", b"x" * (MAX_REQ - 2000))])
        with self.conn(timeout=10) as c:
            err, base = self.produce(c, 11, "bad-input-big", blob)
            self.assertEqual(err, 0, "produce of a %d-byte batch (request < max) failed with %d" % (len(blob), err))
        self.assertStillServing()

    def test_truncated_frame(self):
        # Length says 100, only 10 bytes come, then we close: clean close, no answer.
        self.send_expect_close(i32(100) + kp.request(kp.API_API_VERSIONS, 0, 1, b"")[4:14], "truncated frame")
        # Same but we just vanish (full close) mid-frame, several times.
        for _ in range(5):
            with self.conn() as c:
                c.send(i32(100) + b"\x00" * 10)
        self.assertStillServing()

    def test_truncated_header(self):
        # Frames too short to hold a request header.
        for hdr in (b"\x00\x12", b"\x00\x12\x00\x00", b"\x00\x12\x00\x00\x00\x00\x00\x01",
                    b"\x00\x12\x00\x00\x00\x00\x00\x01\x00\x10abc"):
            self.send_expect_close(i32(len(hdr)) + hdr, "header %s" % hdr.hex())
        self.assertStillServing()

    def test_truncated_body(self):
        # Metadata v1: topics array says 5 entries, has 1 (frame length consistent).
        body = i32(5) + string("t1")
        self.send_expect_close(kp.request(kp.API_METADATA, 1, 9, body), "metadata with short topics array")
        # Metadata v1: a string whose length runs past the frame.
        body = i32(1) + i16(200) + b"abc"
        self.send_expect_close(kp.request(kp.API_METADATA, 1, 9, body), "metadata with long string")
        # Produce v3: records length 1000, 10 bytes present.
        body = string(None) + i16(1) + i32(1000) + i32(1) + string("t") + i32(1) + i32(0) + i32(1000) + b"\x00" * 10
        self.send_expect_close(kp.request(kp.API_PRODUCE, 3, 9, body), "produce with short records")
        # Produce v3: cut inside the fixed fields.
        body = string(None) + i16(1)
        self.send_expect_close(kp.request(kp.API_PRODUCE, 3, 9, body), "produce with cut fields")
        # Flexible ApiVersions v3 with a compact string running past the end.
        body = uvarint(100) + b"abc"
        got = self.send_expect_close(kp.request(kp.API_API_VERSIONS, 3, 9, body, flexible=True),
                                     "apiversions v3 with long compact string", allow_bytes=True)
        if got:
            # Kafka answers a malformed ApiVersions with an error (not 0).
            cid, err = struct.unpack(">ih", got[4:10])
            self.assertEqual(cid, 9)
            self.assertNotEqual(err, 0, "malformed ApiVersions v3 answered with error 0")
        self.assertStillServing()

    # ------------------------------------------------------------ api keys / versions
    def test_unknown_api_key(self):
        for key in (999, 0x7FFF, -1, 74, 75, 8, 22):
            self.send_expect_close(kp.request(key, 0, 77, b""), "api key %d" % key, half_close=False)
        self.assertStillServing()

    def test_api_versions_unsupported_version(self):
        with self.conn() as c:
            c.send(kp.request(kp.API_API_VERSIONS, 9, 31337, b"\x00\x00\x00"))
            cid, body = c.recv_frame()
            self.assertEqual(cid, 31337)
            err, apis = kp.parse_api_versions_v0_response(body)
            self.assertEqual(err, 35, "ApiVersions v9: error %d, expected 35 UNSUPPORTED_VERSION" % err)
            self.assertEqual(apis.get(kp.API_API_VERSIONS), (0, 3), "ApiVersions range in v0 body: %r" % apis)
            # Produce and Fetch are advertised from v0 so that librdkafka <= 2.10
            # enables gzip/snappy (its feature check wants Produce/Fetch v2).
            self.assertEqual(apis.get(kp.API_PRODUCE), (0, 9), apis)
            self.assertEqual(apis.get(kp.API_FETCH), (0, 13), apis)
            self.assertEqual(apis.get(kp.API_METADATA), (0, 12), apis)
            # The connection stays usable: the client retries with a version we have.
            err, apis = kp.parse_api_versions_v0_response(c.call(kp.API_API_VERSIONS, 0, 31338, b""))
            self.assertEqual(err, 0)
            self.assertEqual(apis.get(kp.API_LIST_OFFSETS), (0, 7), apis)
            self.assertEqual(apis.get(kp.API_CREATE_TOPICS), (0, 7), apis)
            self.assertEqual(apis.get(kp.API_DELETE_TOPICS), (0, 6), apis)
            self.assertNotIn(22, apis, "InitProducerId must not be advertised")
        self.assertStillServing()

    def test_api_versions_newer_flexible(self):
        # What a newer client sends first: ApiVersions v4/v127 with a flexible
        # header and a v3-style body. Answer: error 35 with a v0 body.
        for ver in (4, 127):
            with self.conn() as c:
                c.send(kp.request(kp.API_API_VERSIONS, ver, 77, api_versions_v3_body(), flexible=True))
                cid, body = c.recv_frame()
                self.assertEqual(cid, 77)
                err, apis = kp.parse_api_versions_v0_response(body)
                self.assertEqual(err, 35, "ApiVersions v%d: error %d" % (ver, err))
                self.assertEqual(apis.get(kp.API_API_VERSIONS), (0, 3))
                err, apis = parse_api_versions_v3(c.call(kp.API_API_VERSIONS, 3, 78, api_versions_v3_body(), flexible=True))
                self.assertEqual(err, 0)
                err, apis0 = kp.parse_api_versions_v0_response(c.call(kp.API_API_VERSIONS, 0, 79, b""))
                self.assertEqual(apis, apis0, "v3 and v0 answers advertise different APIs")

    def test_api_versions_v3(self):
        with self.conn() as c:
            err, apis = parse_api_versions_v3(c.call(kp.API_API_VERSIONS, 3, 5, api_versions_v3_body(), flexible=True))
            self.assertEqual(err, 0)
            self.assertEqual(apis.get(kp.API_API_VERSIONS), (0, 3))

    def test_other_api_unsupported_version(self):
        cases = [(kp.API_METADATA, 13), (kp.API_METADATA, 99), (kp.API_PRODUCE, 10), (kp.API_PRODUCE, -1),
                 (kp.API_FETCH, 14), (kp.API_FETCH, -2), (kp.API_LIST_OFFSETS, 8), (kp.API_CREATE_TOPICS, 8),
                 (kp.API_DELETE_TOPICS, 7), (kp.API_METADATA, -1)]
        for key, ver in cases:
            self.send_expect_close(kp.request(key, ver, 55, b"\x00" * 16), "api %d v%d" % (key, ver),
                                   half_close=False)
        self.assertStillServing()

    # ------------------------------------------------------------ produce validation
    def test_produce_corrupt_crc(self):
        topic = "bad-input-crc"
        self.ensure_topic(topic)
        with self.conn() as c:
            err, base = self.produce(c, 1, topic, kp.record_batch([(b"k0", b"v0"), (b"k1", b"v1")]))
            self.assertEqual((err, base), (0, 0), "valid batch")
            err, _ = self.produce(c, 2, topic, kp.record_batch([(b"k2", b"v2")], corrupt_crc=True))
            self.assertEqual(err, 2, "corrupt CRC: error %d, expected 2 CORRUPT_MESSAGE" % err)
            # A bit flip in the records (CRC computed before the flip).
            good = bytearray(kp.record_batch([(b"k3", b"v3" * 10)]))
            good[-5] ^= 0x01
            err, _ = self.produce(c, 3, topic, bytes(good))
            self.assertEqual(err, 2, "flipped record byte: error %d, expected 2" % err)
            # The rejected batches took no offsets.
            err, base = self.produce(c, 4, topic, kp.record_batch([(b"k4", b"v4")]))
            self.assertEqual((err, base), (0, 2), "valid batch after rejected ones")

    def test_produce_bad_batch_structure(self):
        topic = "bad-input-struct"
        self.ensure_topic(topic)
        with self.conn() as c:
            # batchLength larger than the bytes present (records truncated).
            b = bytearray(kp.record_batch([(b"k", b"v" * 50)]))
            cut = bytes(b[:-20])
            try:
                err, _ = self.produce(c, 1, topic, cut)
                self.assertIn(err, (2, 87), "truncated batch: error %d, expected 2 or 87" % err)
            except (kp.Closed, ConnectionResetError):
                pass  # closing is acceptable too
        with self.conn() as c:
            # Record count in the header says 5, one record present (CRC fixed up).
            b = bytearray(kp.record_batch([(b"k", b"v")]))
            struct.pack_into(">i", b, 57, 5)
            struct.pack_into(">I", b, 17, kp.crc32c(bytes(b[21:])))
            try:
                err, _ = self.produce(c, 2, topic, bytes(b))
                self.assertIn(err, (2, 87), "record count mismatch: error %d, expected 2 or 87" % err)
            except (kp.Closed, ConnectionResetError):
                pass
        self.assertStillServing()

    def test_produce_magic_v1(self):
        topic = "bad-input-magic"
        self.ensure_topic(topic)
        with self.conn() as c:
            err, _ = self.produce(c, 1, topic, kp.message_set_v1([(b"k", b"old"), (None, b"older")]))
            self.assertEqual(err, 43, "magic 1: error %d, expected 43 UNSUPPORTED_FOR_MESSAGE_FORMAT" % err)
            err, base = self.produce(c, 2, topic, kp.record_batch([(b"k", b"new")]))
            self.assertEqual((err, base), (0, 0))

    def test_produce_unknown_partition_and_acks(self):
        topic = "bad-input-acks"
        self.ensure_topic(topic)
        with self.conn() as c:
            body = c.call(kp.API_PRODUCE, 3, 1, kp.produce_v3_body(topic, 7, kp.record_batch([(b"k", b"v")])))
            res, _ = kp.parse_produce_v3_response(body)
            self.assertEqual([(t, p, e) for t, p, e, _ in res], [(topic, 7, 3)],
                             "partition 7 of a 1-partition topic: expected error 3 UNKNOWN_TOPIC_OR_PARTITION")
            body = c.call(kp.API_PRODUCE, 3, 2, kp.produce_v3_body(topic, 0, kp.record_batch([(b"k", b"v")]), acks=5))
            res, _ = kp.parse_produce_v3_response(body)
            self.assertEqual([e for _, _, e, _ in res], [21], "acks=5: expected error 21 INVALID_REQUIRED_ACKS")
            # acks=0 gets no response: the next request's response comes first.
            c.send(kp.request(kp.API_PRODUCE, 3, 3, kp.produce_v3_body(topic, 0, kp.record_batch([(b"a", b"0")]), acks=0))
                   + kp.request(kp.API_API_VERSIONS, 0, 4, b""))
            cid, _ = c.recv_frame()
            self.assertEqual(cid, 4, "acks=0 produce must not be answered")
            # ... but its data was appended (offset 0), so the next one lands at 1.
            err, base = self.produce(c, 5, topic, kp.record_batch([(b"b", b"1"), (b"c", b"2")]))
            self.assertEqual((err, base), (0, 1))
            err, base = self.produce(c, 6, topic, kp.record_batch([(b"d", b"3")]))
            self.assertEqual((err, base), (0, 3))

    # ------------------------------------------------------------ pipelining, idle
    def test_pipelined_requests(self):
        n = 50
        corrs = [1000 + 7 * i for i in range(n)]
        frames = []
        for i, cid in enumerate(corrs):
            if i % 5 == 4:
                frames.append(kp.request(kp.API_API_VERSIONS, 3, cid, api_versions_v3_body(), flexible=True))
            elif i % 7 == 3:
                frames.append(kp.request(kp.API_METADATA, 1, cid, kp.metadata_v1_body([])))
            else:
                frames.append(kp.request(kp.API_API_VERSIONS, 0, cid, b""))
        with self.conn(timeout=10) as c:
            c.send(b"".join(frames))
            got = []
            for i in range(n):
                cid, body = c.recv_frame()
                got.append(cid)
                if i % 5 == 4:
                    self.assertEqual(parse_api_versions_v3(body)[0], 0)
                elif i % 7 == 3:
                    brokers, _, _ = kp.parse_metadata_v1_response(body)
                    self.assertTrue(brokers)
                else:
                    self.assertEqual(kp.parse_api_versions_v0_response(body)[0], 0)
            self.assertEqual(got, corrs, "responses out of order")
            # Again, written byte by byte in small pieces.
            data = b"".join(kp.request(kp.API_API_VERSIONS, 0, 5000 + i, b"") for i in range(10))
            for j in range(0, len(data), 7):
                c.send(data[j:j + 7])
            got = [c.recv_frame()[0] for _ in range(10)]
            self.assertEqual(got, [5000 + i for i in range(10)])

    def test_idle_timeout(self):
        with self.conn() as c:
            t0 = time.monotonic()
            closed, got = c.wait_closed(IDLE_MS / 1000 * 6)
            dt = time.monotonic() - t0
            self.assertTrue(closed, "idle connection not closed within %.1fs" % dt)
            self.assertEqual(got, b"")
            self.assertGreater(dt, IDLE_MS / 1000 * 0.5, "closed too early (%.2fs)" % dt)
        # After a request, idling still ends the connection.
        with self.conn() as c:
            c.call(kp.API_API_VERSIONS, 0, 1, b"")
            t0 = time.monotonic()
            closed, _ = c.wait_closed(IDLE_MS / 1000 * 6)
            self.assertTrue(closed, "idle connection (after a request) not closed")
        # An active connection (a request every 300 ms for 2.5 s) stays open.
        with self.conn() as c:
            t_end = time.monotonic() + 2.5
            i = 0
            while time.monotonic() < t_end and i < 100:
                i += 1
                c.call(kp.API_API_VERSIONS, 0, i, b"")
                time.sleep(0.3)

    def test_many_connections(self):
        conns = []
        try:
            for i in range(200):
                conns.append(self.conn())
            frame = kp.request(kp.API_API_VERSIONS, 0, 99, b"")
            for c in conns:
                c.send(frame)
            for i, c in enumerate(conns):
                cid, body = c.recv_frame()
                self.assertEqual(cid, 99, "connection %d" % i)
                self.assertEqual(kp.parse_api_versions_v0_response(body)[0], 0)
            # Half of them vanish mid-frame; the rest still work.
            for c in conns[::2]:
                try:
                    c.send(i32(64) + b"\x00" * 8)
                except OSError:
                    pass
                c.close()
            for c in conns[1::2]:
                self.assertEqual(c.call(kp.API_API_VERSIONS, 0, 100, b"")[:2], b"\x00\x00")
        finally:
            for c in conns:
                c.close()
        self.assertStillServing()

    # ------------------------------------------------------------ last: the bystander
    def test_zz_background_client_and_broker_alive(self):
        time.sleep(0.3)
        self.bg.stop_ev.set()
        self.bg.join(15)
        self.assertFalse(self.bg.is_alive(), "background client did not stop")
        self.assertEqual(self.bg.errors, [], "background client saw errors")
        self.assertGreater(self.bg.ok, 10, "background client made too little progress")
        self.assertStillServing()
        r = harness.run_cmd(["kcat", "-b", self.broker.bootstrap, "-L", "-m", "5"], timeout=20)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn(b"bad-input-crc", r.stdout)
        self.assertBrokerAlive()
        self.assertNoSanitizerErrors()


if __name__ == "__main__":
    harness.main()
