#!/usr/bin/python3
"""The S3 backend against a real S3 API (s3rver on loopback), through
bin/objstore-cli: put/get/ranges/head/delete, 404s, a 20 MB object, listing
more than 1000 keys (ListObjectsV2 continuation), keys that need URL and XML
escaping, many parallel transfers in one objstore_run, the read replica, a
server stopped and restarted on the same port, and cross-checks with boto3
(what the CLI wrote, boto3 reads byte-exact, and the other way round).
"""
import hashlib
import os
import random
import threading
import time
import unittest

import harness
import s3rver_harness as s3h

BUCKET = "kafscale"
REPLICA = "kafscale-replica"


class ObjstoreS3(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ok, why = s3h.cli_available()
        if not ok:
            raise RuntimeError(why)
        cls.s3 = s3h.S3rver(buckets=[BUCKET, REPLICA]).start()
        cls.tmp = harness.make_tmpdir("kafscale-e2e-objs3-")
        cls.boto = cls.s3.boto3_client()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls.boto, "close"):
            cls.boto.close()
        cls.s3.stop()

    def env(self, **extra):
        e = {"KAFSCALE_S3_BACKOFF_MS": "50", "KAFSCALE_S3_BACKOFF_MAX_MS": "500"}
        e.update(extra)
        return self.s3.env(BUCKET, **e)

    def cli(self, *args, env=None, ok=True, **kw):
        r = s3h.cli(env or self.env(), *args, **kw)
        if ok:
            self.assertEqual(r.returncode, 0, r.describe())
        return r

    def tmpfile(self, data, name):
        p = os.path.join(self.tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def boto_get(self, key, bucket=BUCKET):
        return self.boto.get_object(Bucket=bucket, Key=key)["Body"].read()

    def test_put_get_ranges_head_delete_and_404s(self):
        data = random.Random(7).randbytes(100_000)
        key = "rt/topic/0/00000000000000000000.kfs"
        self.cli("put", key, self.tmpfile(data, "rt.bin"))
        self.assertEqual(self.cli("get", key).stdout, data)
        self.assertEqual(self.boto_get(key), data)
        for off, ln in ((0, 1), (0, 100), (12_345, 6_789), (99_999, 1), (50_000, 0), (99_000, 5_000)):
            want = data[off:] if ln == 0 else data[off:off + ln]
            self.assertEqual(self.cli("get", key, off, ln).stdout, want, "range %d+%d" % (off, ln))
        self.assertEqual(self.cli("head", key).stdout.strip(), b"100000")
        self.assertEqual(self.boto.head_object(Bucket=BUCKET, Key=key)["ContentLength"], 100_000)
        # overwrite
        self.cli("put", key, self.tmpfile(b"short", "short.bin"))
        self.assertEqual(self.boto_get(key), b"short")
        # delete, then everything is a 404 (exit 3) except DELETE, which S3 calls success
        self.cli("del", key)
        for args in (("get", key), ("head", key), ("get", key, 1, 2), ("get", "rt/never/was")):
            r = self.cli(*args, ok=False)
            self.assertEqual(r.returncode, 3, r.describe())
            self.assertIn(b"not found", r.stderr)
        self.assertIn(self.cli("del", key, ok=False).returncode, (0, 3))
        self.assertEqual(self.cli("ls", "rt/").stdout, b"")
        # empty object
        self.cli("put", "rt/empty", self.tmpfile(b"", "empty.bin"))
        self.assertEqual(self.cli("head", "rt/empty").stdout.strip(), b"0")
        self.assertEqual(self.cli("get", "rt/empty").stdout, b"")
        self.assertEqual(self.boto_get("rt/empty"), b"")

    def test_large_object_20mb_byte_exact_both_ways(self):
        data = random.Random(20).randbytes(20 * 1024 * 1024 + 3)
        src = self.tmpfile(data, "big.bin")
        t0 = time.monotonic()
        r = self.cli("-s", "put", "big/segment.kfs", src)
        harness.log("20 MB PUT took %.2fs" % (time.monotonic() - t0))
        self.assertIn(b"bytes_put=%d" % len(data), r.stderr)
        out = os.path.join(self.tmp, "big.out")
        self.cli("get", "big/segment.kfs", stdout_file=out)
        with open(out, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(data).hexdigest())
        self.assertEqual(self.boto_get("big/segment.kfs"), data)
        mid = 10 * 1024 * 1024 - 100
        self.assertEqual(self.cli("get", "big/segment.kfs", mid, 4096).stdout, data[mid:mid + 4096])
        # boto3 writes a big one, the CLI reads it
        data2 = data[::-1]
        self.boto.put_object(Bucket=BUCKET, Key="big/by-boto3", Body=data2)
        self.cli("get", "big/by-boto3", stdout_file=out)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == data2)

    def test_list_more_than_1000_keys_with_continuation(self):
        n = 1234
        r = self.cli("-s", "putn", "many/k", n, self.tmpfile(b"0123456789", "ten.bin"), timeout=180)
        self.assertIn(b"puts=%d" % n, r.stderr)
        self.assertIn(b"errors=0", r.stderr)
        lines = self.cli("ls", "many/").stdout.decode().splitlines()
        self.assertEqual(lines, ["many/k%05d\t10" % i for i in range(n)])
        boto_keys = []
        for page in self.boto.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="many/"):
            boto_keys += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(boto_keys, ["many/k%05d" % i for i in range(n)])
        self.assertEqual(len(self.cli("ls", "many/k01").stdout.splitlines()), 234)
        self.assertEqual(self.cli("ls", "many/nothing-here").stdout, b"")
        r = self.cli("-s", "delprefix", "many/", timeout=180)
        self.assertEqual(r.stdout.strip(), str(n).encode())
        self.assertIn(b"deletes=%d" % n, r.stderr)
        self.assertEqual(self.cli("ls", "many/").stdout, b"")

    def test_many_threads_share_one_store(self):
        # 8 threads on one objstore_t: objstore_run batches and single calls
        # at once, every byte checked (see objstore-cli's "stress").
        r = self.cli("-s", "stress", "stress/", 8, 15, timeout=240)
        self.assertEqual(r.stdout.strip(), b"0 failures")
        for want in (b"puts=480 ", b"gets=960 ", b"heads=600 ", b"deletes=480 ", b"errors=0 "):
            self.assertIn(want, r.stderr)
        self.assertEqual(self.cli("ls", "stress/").stdout, b"")
        # the file backend under the same load
        env = {"KAFSCALE_DATA_DIR": os.path.join(self.tmp, "filestore")}
        r = self.cli("-s", "stress", "stress/", 8, 15, env=env, timeout=240)
        self.assertEqual(r.stdout.strip(), b"0 failures")
        self.assertIn(b"backend=file", r.stderr)

    def test_keys_needing_url_and_xml_escaping(self):
        keys = ["sp/a&b", "sp/<x>", "sp/q\"uote'", "sp/space here", "sp/plus+eq=semi;", "sp/\u00fcn\u00efc\u00f6d\u00e9",
                "sp/tilde~star*(paren)!", "sp/pct%20lit", "sp/dir/deeper/x.kfs"]
        for i, k in enumerate(keys):
            self.cli("put", k, self.tmpfile(k.encode() * (i + 1), "k.bin"))
        lines = self.cli("ls", "sp/").stdout.decode("utf-8").splitlines()
        want = sorted(keys, key=lambda k: k.encode())
        self.assertEqual([l.split("\t")[0] for l in lines], want)
        for i, k in enumerate(keys):
            self.assertEqual(self.boto_get(k), k.encode() * (i + 1), k)
            self.assertEqual(self.cli("get", k).stdout, k.encode() * (i + 1), k)

    def test_boto3_writes_cli_reads(self):
        payloads = {"b3/one": b"x" * 5, "b3/two": bytes(range(256)) * 100}
        for k, v in payloads.items():
            self.boto.put_object(Bucket=BUCKET, Key=k, Body=v)
        for k, v in payloads.items():
            self.assertEqual(self.cli("get", k).stdout, v)
            self.assertEqual(self.cli("head", k).stdout.strip(), str(len(v)).encode())
        self.assertEqual(self.cli("ls", "b3/").stdout.decode().splitlines(), ["b3/one\t5", "b3/two\t25600"])

    def test_read_replica_first_then_primary(self):
        self.cli("put", "rep/both", self.tmpfile(b"primary-copy", "p.bin"))
        self.cli("put", "rep/primary-only", self.tmpfile(b"only-in-primary", "p2.bin"))
        self.boto.put_object(Bucket=REPLICA, Key="rep/both", Body=b"replica-copy")
        env = self.env(KAFSCALE_S3_READ_BUCKET=REPLICA)
        self.assertEqual(self.cli("get", "rep/both", env=env).stdout, b"replica-copy")
        self.assertEqual(self.cli("get", "rep/primary-only", env=env).stdout, b"only-in-primary")
        self.assertEqual(self.cli("head", "rep/primary-only", env=env).stdout.strip(), b"15")
        r = self.cli("get", "rep/nowhere", env=env, ok=False)
        self.assertEqual(r.returncode, 3, r.describe())
        # a replica that does not answer at all: the primary still serves
        dead = "http://127.0.0.1:%d" % harness.free_port()
        env = self.env(KAFSCALE_S3_READ_BUCKET=REPLICA, KAFSCALE_S3_READ_ENDPOINT=dead)
        self.assertEqual(self.cli("get", "rep/both", env=env).stdout, b"primary-copy")

    def test_server_stopped_and_restarted_on_the_same_port(self):
        self.cli("put", "restart/k", self.tmpfile(b"survives", "r.bin"))
        port = self.s3.port
        self.s3.stop()
        try:
            r = self.cli("get", "restart/k", env=self.env(KAFSCALE_S3_MAX_RETRIES="1"), ok=False)
            self.assertEqual(r.returncode, 1, r.describe())
            self.assertIn(b"after 2 attempts", r.stderr)
        finally:
            self.s3.start()
        self.assertEqual(self.s3.port, port)
        self.assertEqual(self.cli("get", "restart/k").stdout, b"survives")
        # An upload that starts while S3 is down succeeds once it is back,
        # by retrying with backoff (~2 s down; up to 8 retries of <= 1 s).
        t = threading.Thread(target=self.s3.restart, kwargs={"down_seconds": 2.0})
        self.s3.stop()
        t.start()
        env = self.env(KAFSCALE_S3_MAX_RETRIES="10", KAFSCALE_S3_BACKOFF_MAX_MS="1000")
        r = self.cli("-s", "put", "restart/during", self.tmpfile(b"late", "l.bin"), env=env)
        t.join()
        self.assertNotIn(b"retries=0", r.stderr)
        self.assertEqual(self.boto_get("restart/during"), b"late")


if __name__ == "__main__":
    harness.main()
