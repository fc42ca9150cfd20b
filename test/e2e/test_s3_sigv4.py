#!/usr/bin/python3
"""The S3 backend's requests, as a server sees them: a small S3 stand-in
(stdlib http.server on 127.0.0.1) records every request bin/objstore-cli
makes, and each one is checked:

- Authorization is AWS4-HMAC-SHA256 with host, x-amz-content-sha256 and
  x-amz-date signed; x-amz-content-sha256 is the SHA-256 of the body the
  server received (of "" without a body);
- botocore's S3 signer (S3SigV4Auth), given the captured method, URL,
  headers, body and x-amz-date, computes the same SignedHeaders and the same
  signature;
- path and query are already in SigV4 canonical form (so a server that
  re-encodes gets the string that was signed);
- with KAFSCALE_S3_KMS_ARN the PUTs carry (signed) SSE-KMS headers; with
  AWS_SESSION_TOKEN every request carries a signed x-amz-security-token;
- the read replica is signed for its own region and falls back to the primary;
- retries: 503 SlowDown, 500, 429, a stalled answer (per-attempt timeout) and
  a dropped connection are retried with backoff, 403 is final;
- the secret key and the session token never appear in the CLI's output, even
  when the server's error document contains them and at debug log level.
"""
import hashlib
import os
import random
import re
import socket
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import harness
import s3rver_harness as s3h

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEJr//////////wEaDEXAMPLE+SESSION/TOKEN="
KMS_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BUCKET = "kafscale-primary"
REPLICA = "kafscale-replica"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/,]+)/(\d{8})/([a-z0-9-]+)/s3/aws4_request, ?"
                     r"SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$")


class Req:
    def __init__(self, method, path, headers, body, client_port=None):
        self.method, self.path, self.body, self.client_port = method, path, body, client_port
        self.header_names = [k.lower() for k, _ in headers]
        self.headers = {k.lower(): v for k, v in headers}

    def __repr__(self):
        return "%s %s" % (self.method, self.path)


class Stub:
    """A tiny S3: objects in a dict, every request recorded, faults injected
    from a queue: each fault is (methods, action, arg) and is used by the
    next request whose method is in methods."""

    def __init__(self):
        self.objects = {}          # (bucket, key) -> bytes
        self.requests = []
        self.faults = []
        self.page_size = 3
        self.delay = 0.0           # seconds each request is held (to see parallelism)
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_PUT(self):
                stub.handle(self, "PUT")

            def do_GET(self):
                stub.handle(self, "GET")

            def do_HEAD(self):
                stub.handle(self, "HEAD")

            def do_DELETE(self):
                stub.handle(self, "DELETE")

        self.server = ThreadingHTTPServer((harness.LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return "http://%s:%d" % (harness.LOOPBACK, self.port)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.delay = 0.0
            self.max_inflight = 0

    def add_fault(self, methods, action, arg=None, times=1):
        with self.lock:
            for _ in range(times):
                self.faults.append((methods, action, arg))

    def _reply(self, h, code, body=b"", headers=()):
        h.send_response(code)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD" and body:
            h.wfile.write(body)

    def _error(self, h, code, s3code, message, extra=""):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>%s"
                "<RequestId>stub</RequestId></Error>" % (s3code, escape(message), extra)).encode()
        self._reply(h, code, body, [("Content-Type", "application/xml")])

    def handle(self, h, method):
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        req = Req(method, h.path, list(h.headers.items()), body, h.client_address[1])
        with self.lock:
            self.requests.append(req)
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            delay = self.delay
            fault = None
            for i, f in enumerate(self.faults):
                if method in f[0]:
                    fault = self.faults.pop(i)
                    break
        try:
            if delay:
                time.sleep(delay)
            if fault:
                _, action, arg = fault
                if action == "status":
                    code, s3code, extra = arg
                    return self._error(h, code, s3code, "injected %d" % code, extra)
                if action == "stall":
                    time.sleep(arg)
                if action == "drop":
                    h.close_connection = True
                    h.connection.shutdown(socket.SHUT_RDWR)
                    return
            self.serve(h, req)
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True
        finally:
            with self.lock:
                self.inflight -= 1

    def serve(self, h, req):
        url = urllib.parse.urlsplit(req.path)
        parts = url.path.split("/", 2)
        bucket = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        key = urllib.parse.unquote(parts[2]) if len(parts) > 2 else ""
        if bucket not in (BUCKET, REPLICA):
            return self._error(h, 404, "NoSuchBucket", "The specified bucket does not exist")
        if not key:
            if req.method != "GET":
                return self._error(h, 405, "MethodNotAllowed", "no")
            return self.list(h, bucket, urllib.parse.parse_qs(url.query, keep_blank_values=True))
        with self.lock:
            data = self.objects.get((bucket, key))
        if req.method == "PUT":
            with self.lock:
                self.objects[(bucket, key)] = req.body
            return self._reply(h, 200, b"", [("ETag", '"%s"' % hashlib.md5(req.body).hexdigest())])
        if req.method == "DELETE":
            with self.lock:
                self.objects.pop((bucket, key), None)
            return self._reply(h, 204)
        if data is None:
            return self._error(h, 404, "NoSuchKey", "The specified key does not exist.")
        rng = req.headers.get("range")
        if req.method == "HEAD":
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            return
        if rng:
            m = re.match(r"bytes=(\d+)-(\d*)$", rng)
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) else len(data) - 1
            if a >= len(data):
                return self._error(h, 416, "InvalidRange", "The requested range is not satisfiable")
            b = min(b, len(data) - 1)
            return self._reply(h, 206, data[a:b + 1], [("Content-Range", "bytes %d-%d/%d" % (a, b, len(data)))])
        return self._reply(h, 200, data)

    def list(self, h, bucket, q):
        prefix = q.get("prefix", [""])[0]
        token = q.get("continuation-token", [None])[0]
        with self.lock:
            keys = sorted(k for (b, k) in self.objects if b == bucket and k.startswith(prefix))
            sizes = {k: len(self.objects[(bucket, k)]) for k in keys}
        start = 0
        if token is not None:
            m = re.match(r"tok/en\+=(\d+)&z$", token)
            if not m:
                return self._error(h, 400, "InvalidArgument", "bad continuation token")
            start = int(m.group(1))
        page = keys[start:start + self.page_size]
        more = start + self.page_size < len(keys)
        xml = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
               "<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys>" % (
                   bucket, escape(prefix), len(page)),
               "<IsTruncated>%s</IsTruncated>" % ("true" if more else "false")]
        for k in page:
            xml.append("<Contents><Key>%s</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
                       "<ETag>&quot;x&quot;</ETag><Size>%d</Size><StorageClass>STANDARD</StorageClass></Contents>"
                       % (escape(k), sizes[k]))
        if more:
            xml.append("<NextContinuationToken>%s</NextContinuationToken>" % escape("tok/en+=%d&z" % (start + self.page_size)))
        xml.append("</ListBucketResult>")
        self._reply(h, 200, "".join(xml).encode(), [("Content-Type", "application/xml")])


def check_signed(tc, req, secret=SECRET, token=None, region="us-east-1"):
    """Asserts req is a correct SigV4 request, recomputed with botocore."""
    auth = req.headers.get("authorization", "")
    m = AUTH_RE.match(auth)
    tc.assertTrue(m, "%r: bad Authorization %r" % (req, auth))
    akid, date, reg, signed, sig = m.groups()
    tc.assertEqual(akid, AKID)
    tc.assertEqual(reg, region, "%r signed for region %s" % (req, reg))
    names = signed.split(";")
    tc.assertEqual(names, sorted(names))
    for need in ("host", "x-amz-content-sha256", "x-amz-date"):
        tc.assertIn(need, names, "%r: %s not signed (%s)" % (req, need, signed))
    for n in names:
        tc.assertIn(n, req.headers, "%r: signed header %s not sent" % (req, n))
        tc.assertEqual(req.header_names.count(n), 1, "%r: header %s sent more than once" % (req, n))
    amzdate = req.headers["x-amz-date"]
    tc.assertRegex(amzdate, r"^\d{8}T\d{6}Z$")
    tc.assertEqual(amzdate[:8], date)
    tc.assertEqual(req.headers["x-amz-content-sha256"], hashlib.sha256(req.body).hexdigest(),
                   "%r: x-amz-content-sha256 is not the hash of the body" % req)
    if token:
        tc.assertEqual(req.headers.get("x-amz-security-token"), token)
        tc.assertIn("x-amz-security-token", names)
    else:
        tc.assertNotIn("x-amz-security-token", req.headers)
    # Path and query as sent are canonical already.
    url = urllib.parse.urlsplit(req.path)
    tc.assertEqual(url.path, urllib.parse.quote(urllib.parse.unquote(url.path), safe="/-_.~"))
    if url.query:
        pairs = [p.partition("=") for p in url.query.split("&")]
        tc.assertEqual([p[0] for p in pairs], sorted(p[0] for p in pairs), "query not sorted: %s" % url.query)
        for k, _, v in pairs:
            tc.assertEqual(v, urllib.parse.quote(urllib.parse.unquote(v), safe="-_.~"), "query value %r" % v)
    # botocore's signer over the same request.
    headers = {n: req.headers[n] for n in names}
    areq = AWSRequest(method=req.method, url="http://%s%s" % (req.headers["host"], req.path), headers=headers,
                      data=req.body)
    areq.context["timestamp"] = amzdate
    signer = S3SigV4Auth(Credentials(AKID, secret, token), "s3", region)
    signer._modify_request_before_signing(areq)
    tc.assertEqual(signer.signed_headers(signer.headers_to_sign(areq)), signed, "%r: SignedHeaders differ" % req)
    canonical = signer.canonical_request(areq)
    want = signer.signature(signer.string_to_sign(areq, canonical), areq)
    tc.assertEqual(sig, want, "%r: signature differs from botocore's; canonical request:\n%s" % (req, canonical))


def parse_stats(stderr):
    m = re.search(rb"stats: (.*)", stderr)
    return dict(kv.split("=") for kv in m.group(1).decode().split()) if m else {}


class SigV4(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ok, why = s3h.cli_available()
        if not ok:
            raise RuntimeError(why)
        cls.stub = Stub()
        cls.tmp = harness.make_tmpdir("kafscale-e2e-sigv4-")

    @classmethod
    def tearDownClass(cls):
        cls.stub.close()

    def setUp(self):
        self.stub.reset()

    def env(self, **extra):
        e = {
            "KAFSCALE_S3_BUCKET": BUCKET,
            "KAFSCALE_S3_REGION": "us-east-1",
            "KAFSCALE_S3_ENDPOINT": self.stub.endpoint,
            "AWS_ACCESS_KEY_ID": AKID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "KAFSCALE_S3_BACKOFF_MS": "20",
            "KAFSCALE_S3_BACKOFF_MAX_MS": "200",
            "KAFSCALE_LOG_LEVEL": "debug",
        }
        e.update(extra)
        return e

    def cli(self, env, *args, ok=True, **kw):
        r = s3h.cli(env, *args, **kw)
        for secret in (SECRET.encode(), TOKEN.encode()):
            self.assertNotIn(secret, r.stdout + r.stderr, "a secret leaked into the output of %r" % (args,))
        if ok:
            self.assertEqual(r.returncode, 0, r.describe())
        return r

    def tmpfile(self, data, name="body.bin"):
        p = os.path.join(self.tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def test_put_and_get_are_signed_with_the_payload_hash(self):
        data = random.Random(1).randbytes(3 * 1024 * 1024 + 17)  # > 1 MiB: several pieces, Expect: 100-continue
        key = "ns/topic/0/a b+c=d~e&f<g>.kfs"
        self.cli(self.env(), "put", key, self.tmpfile(data))
        r = self.cli(self.env(), "get", key)
        self.assertEqual(r.stdout, data)
        r = self.cli(self.env(), "get", key, "1000", "5000")
        self.assertEqual(r.stdout, data[1000:6000])
        reqs = self.stub.requests
        self.assertEqual([q.method for q in reqs], ["PUT", "GET", "GET"])
        self.assertEqual(reqs[0].body, data)
        self.assertEqual(reqs[0].path, "/%s/ns/topic/0/a%%20b%%2Bc%%3Dd~e%%26f%%3Cg%%3E.kfs" % BUCKET)
        self.assertEqual(reqs[2].headers.get("range"), "bytes=1000-5999")
        for q in reqs:
            check_signed(self, q)
        self.assertNotIn("x-amz-server-side-encryption", reqs[0].headers)
        self.assertEqual(reqs[1].headers["x-amz-content-sha256"], EMPTY_SHA)

    def test_empty_put_head_delete_and_paged_list_are_signed(self):
        env = self.env()
        self.cli(env, "put", "empty", self.tmpfile(b"", "empty.bin"))
        keys = ["p/k%02d&<'\">" % i for i in range(8)] + ["q/other"]
        for i, k in enumerate(keys):
            self.cli(env, "put", k, self.tmpfile(b"x" * i, "k.bin"))
        r = self.cli(env, "head", "p/k03&<'\">")
        self.assertEqual(r.stdout.strip(), b"3")
        r = self.cli(env, "ls", "p/")
        lines = r.stdout.decode().splitlines()
        self.assertEqual(lines, ["%s\t%d" % (k, i) for i, k in enumerate(keys[:8])])
        lists = [q for q in self.stub.requests if q.method == "GET"]
        self.assertEqual(len(lists), 3)  # pages of 3: continuation tokens with / + = &
        self.assertIn("continuation-token=tok%2Fen%2B%3D3%26z&list-type=2&prefix=p%2F", lists[1].path)
        self.cli(env, "del", "p/k03&<'\">")
        r = self.cli(env, "head", "p/k03&<'\">", ok=False)
        self.assertEqual(r.returncode, 3, r.describe())
        for q in self.stub.requests:
            check_signed(self, q)

    def test_sse_kms_headers_on_put_only(self):
        env = self.env(KAFSCALE_S3_KMS_ARN=KMS_ARN)
        self.cli(env, "put", "enc/k", self.tmpfile(b"secret payload"))
        self.cli(env, "get", "enc/k")
        put, get = self.stub.requests
        self.assertEqual(put.headers.get("x-amz-server-side-encryption"), "aws:kms")
        self.assertEqual(put.headers.get("x-amz-server-side-encryption-aws-kms-key-id"), KMS_ARN)
        signed = AUTH_RE.match(put.headers["authorization"]).group(4).split(";")
        self.assertIn("x-amz-server-side-encryption", signed)
        self.assertIn("x-amz-server-side-encryption-aws-kms-key-id", signed)
        self.assertNotIn("x-amz-server-side-encryption", get.headers)
        check_signed(self, put)
        check_signed(self, get)

    def test_session_token_is_sent_and_signed(self):
        env = self.env(AWS_SESSION_TOKEN=TOKEN)
        self.cli(env, "put", "tok/k", self.tmpfile(b"abc"))
        self.cli(env, "get", "tok/k")
        self.cli(env, "head", "tok/k")
        self.cli(env, "ls", "tok/")
        self.cli(env, "del", "tok/k")
        self.assertEqual(len(self.stub.requests), 5)
        for q in self.stub.requests:
            check_signed(self, q, token=TOKEN)

    def test_read_replica_signed_for_its_region_then_primary(self):
        self.stub.objects[(BUCKET, "r/only-primary")] = b"primary"
        self.stub.objects[(REPLICA, "r/both")] = b"from-replica"
        self.stub.objects[(BUCKET, "r/both")] = b"from-primary"
        env = self.env(KAFSCALE_S3_READ_BUCKET=REPLICA, KAFSCALE_S3_READ_REGION="eu-west-1")
        self.assertEqual(self.cli(env, "get", "r/both").stdout, b"from-replica")
        self.assertEqual(self.cli(env, "get", "r/only-primary").stdout, b"primary")
        self.assertEqual(self.cli(env, "head", "r/only-primary").stdout.strip(), b"7")
        # the replica failing (not only missing) also falls back
        self.stub.add_fault({"GET"}, "status", (500, "InternalError", ""))
        self.assertEqual(self.cli(env, "get", "r/both").stdout, b"from-primary")
        # writes and lists never go to the replica
        self.cli(env, "put", "r/new", self.tmpfile(b"n"))
        self.cli(env, "ls", "r/")
        paths = [(q.method, q.path.split("?")[0]) for q in self.stub.requests]
        self.assertEqual(paths, [
            ("GET", "/%s/r/both" % REPLICA),
            ("GET", "/%s/r/only-primary" % REPLICA), ("GET", "/%s/r/only-primary" % BUCKET),
            ("HEAD", "/%s/r/only-primary" % REPLICA), ("HEAD", "/%s/r/only-primary" % BUCKET),
            ("GET", "/%s/r/both" % REPLICA), ("GET", "/%s/r/both" % BUCKET),
            ("PUT", "/%s/r/new" % BUCKET), ("GET", "/%s" % BUCKET),
        ])
        for q in self.stub.requests:
            check_signed(self, q, region="eu-west-1" if q.path.startswith("/" + REPLICA) else "us-east-1")

    def test_retries_on_slowdown_5xx_429_stall_and_drop(self):
        env = self.env(KAFSCALE_S3_TIMEOUT_MS="700", KAFSCALE_S3_MAX_RETRIES="8")
        self.stub.add_fault({"PUT"}, "status", (503, "SlowDown", ""), times=2)
        self.stub.add_fault({"PUT"}, "status", (500, "InternalError", ""))
        self.stub.add_fault({"PUT"}, "status", (429, "TooManyRequests", ""))
        self.stub.add_fault({"PUT"}, "stall", 2.0)
        self.stub.add_fault({"PUT"}, "drop")
        data = b"retry me" * 1000
        r = self.cli(env, "-s", "put", "retry/k", self.tmpfile(data))
        st = parse_stats(r.stderr)
        self.assertEqual(st.get("retries"), "6", r.describe())
        self.assertEqual(st.get("errors"), "0")
        puts = [q for q in self.stub.requests if q.method == "PUT"]
        self.assertEqual(len(puts), 7)
        self.assertEqual(self.stub.objects[(BUCKET, "retry/k")], data)
        for q in puts:
            if q.body:  # the dropped one may have been cut short
                check_signed(self, q)
        # GETs retry the same way
        self.stub.reset()
        self.stub.add_fault({"GET"}, "status", (503, "SlowDown", ""))
        self.assertEqual(self.cli(env, "get", "retry/k").stdout, data)
        self.assertEqual(len(self.stub.requests), 2)

    def test_parallel_up_to_max_inflight_on_reused_connections(self):
        self.stub.delay = 0.1
        t0 = time.monotonic()
        self.cli(self.env(KAFSCALE_S3_MAX_INFLIGHT="4"), "putn", "par/k", "40", self.tmpfile(b"p" * 5000))
        secs = time.monotonic() - t0
        puts = [q for q in self.stub.requests if q.method == "PUT"]
        self.assertEqual(len(puts), 40)
        self.assertEqual(self.stub.max_inflight, 4)
        self.assertLess(secs, 40 * 0.1 / 2, "not parallel: %.2fs" % secs)
        ports = {q.client_port for q in puts}
        self.assertLessEqual(len(ports), 6, "connections not reused: %d for 40 requests" % len(ports))
        for q in puts[:3]:
            check_signed(self, q)

    def test_retries_end_and_4xx_is_final(self):
        env = self.env(KAFSCALE_S3_MAX_RETRIES="2")
        self.stub.add_fault({"PUT"}, "status", (500, "InternalError", ""), times=10)
        t0 = time.monotonic()
        r = self.cli(env, "-s", "put", "fail/k", self.tmpfile(b"x"), ok=False)
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"HTTP 500 InternalError", r.stderr)
        self.assertIn(b"after 3 attempts", r.stderr)
        self.assertEqual(len(self.stub.requests), 3)
        self.assertLess(time.monotonic() - t0, 10)
        self.stub.reset()
        # 403 with an error document that (like S3's SignatureDoesNotMatch)
        # carries the canonical request with the session token: final, and
        # none of it is printed.
        extra = "<CanonicalRequest>x-amz-security-token:%s %s</CanonicalRequest>" % (TOKEN, SECRET)
        self.stub.add_fault({"PUT"}, "status", (403, "SignatureDoesNotMatch", extra))
        r = self.cli(self.env(AWS_SESSION_TOKEN=TOKEN), "-s", "put", "fail/k", self.tmpfile(b"x"), ok=False)
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"HTTP 403 SignatureDoesNotMatch", r.stderr)
        self.assertEqual(len(self.stub.requests), 1)
        self.assertEqual(parse_stats(r.stderr).get("retries"), "0")
        # a missing bucket is an error, not a missing key
        r = self.cli(self.env(KAFSCALE_S3_BUCKET="no-such-bucket"), "get", "k", ok=False)
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"NoSuchBucket", r.stderr)
        # a range past the end is final
        self.stub.objects[(BUCKET, "small")] = b"abc"
        r = self.cli(self.env(), "get", "small", "10", "5", ok=False)
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"416", r.stderr)

    def test_connection_refused_is_retried_then_reported_without_secrets(self):
        s = socket.socket()
        s.bind((harness.LOOPBACK, 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        env = self.env(KAFSCALE_S3_ENDPOINT="http://127.0.0.1:%d" % port, KAFSCALE_S3_MAX_RETRIES="3",
                       AWS_SESSION_TOKEN=TOKEN)
        r = self.cli(env, "-s", "put", "k", self.tmpfile(b"x"), ok=False)
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn(b"after 4 attempts", r.stderr)
        self.assertEqual(parse_stats(r.stderr).get("retries"), "3")


if __name__ == "__main__":
    harness.main()
