#!/usr/bin/python3
"""kcat (librdkafka) against the broker: metadata listing, 100,000 keyed
messages with headers produced and consumed back byte-exact, partial consume
from an offset, offset queries."""
import json
import os
import random
import unittest

import harness

N = 100_000
TOPIC = "kcat-big"
HEADERS = [("h1", "v1"), ("trace", "e2e-kcat-7")]
# Printable ASCII without tab/newline (the delimiters), with JSON-escaped
# characters ('"' and '\\') included on purpose.
ALPHABET = "".join(chr(c) for c in range(0x20, 0x7F))


def gen_messages():
    rnd = random.Random(20240601)
    pool = "".join(rnd.choice(ALPHABET) for _ in range(1 << 16))
    pool = pool * 2
    msgs = []
    for i in range(N):
        if i % 997 == 0:
            size = 5000 + (i % 7) * 1000      # some big ones
        elif i % 13 == 0:
            size = 1                         # and tiny ones
        else:
            size = 1 + (i * 7919) % 400
        off = (i * 104729) % (len(pool) // 2)
        # Exactly `size` bytes; bigger ones start with their index.
        payload = ("m%d|" % i + pool[off:off + size])[:size] if size > 12 else pool[off:off + size]
        key = "k%d-%s" % (i, "x" * (i % 11))
        msgs.append((key, payload))
    return msgs


class Kcat(harness.BrokerTestCase):
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "true", "KAFSCALE_AUTO_CREATE_PARTITIONS": "1"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.msgs = gen_messages()
        cls.produced = None

    def kcat(self, *args, timeout=120, **kw):
        return harness.run_cmd(["kcat", "-b", self.broker.bootstrap, "-m", "10"] + list(args), timeout=timeout, **kw)

    def produce_all(self):
        if Kcat.produced is not None:
            return Kcat.produced
        path = os.path.join(self.broker.dir, "input.txt")
        with open(path, "w", encoding="ascii", newline="") as f:
            for k, v in self.msgs:
                f.write("%s\t%s\n" % (k, v))
        hdr_args = []
        for hk, hv in HEADERS:
            hdr_args += ["-H", "%s=%s" % (hk, hv)]
        r = self.kcat("-P", "-t", TOPIC, "-p", "0", "-K", "\t", *hdr_args, "-X", "linger.ms=20",
                      stdin_file=path, timeout=120)
        Kcat.produced = r
        return r

    def test_1_produce_and_consume_all(self):
        r = self.produce_all()
        self.assertEqual(r.returncode, 0, "kcat -P failed: " + r.describe())
        self.assertFalse(r.timed_out)
        out = os.path.join(self.broker.dir, "consumed.jsonl")
        r = self.kcat("-C", "-t", TOPIC, "-p", "0", "-o", "beginning", "-e", "-J", stdout_file=out, timeout=120)
        self.assertEqual(r.returncode, 0, "kcat -C failed: " + r.describe())
        got = []
        with open(out, "rb") as f:
            for ln, line in enumerate(f):
                try:
                    got.append(json.loads(line))
                except ValueError as e:
                    self.fail("line %d of kcat -J output is not JSON (%s): %r" % (ln + 1, e, line[:200]))
        self.assertEqual(len(got), N, "consumed %d messages, produced %d" % (len(got), N))
        want_headers = [x for kv in HEADERS for x in kv]
        bad = []
        for i, (m, (k, v)) in enumerate(zip(got, self.msgs)):
            problems = []
            if m.get("offset") != i:
                problems.append("offset %r" % m.get("offset"))
            if m.get("partition") != 0:
                problems.append("partition %r" % m.get("partition"))
            if m.get("key") != k:
                problems.append("key %r != %r" % (m.get("key"), k))
            if m.get("payload") != v:
                problems.append("payload %r != %r" % ((m.get("payload") or "")[:40], v[:40]))
            if m.get("headers") != want_headers:
                problems.append("headers %r" % m.get("headers"))
            if problems:
                bad.append("#%d: %s" % (i, "; ".join(problems)))
                if len(bad) >= 10:
                    break
        self.assertEqual(bad, [], "mismatches (first 10)")

    def test_2_metadata_listing(self):
        self.assertEqual(self.produce_all().returncode, 0)
        r = self.kcat("-L", "-J", timeout=30)
        self.assertEqual(r.returncode, 0, r.describe())
        md = json.loads(r.stdout)
        self.assertEqual([b["id"] for b in md["brokers"]], [1], md)
        self.assertEqual(md["brokers"][0]["name"], self.broker.bootstrap, md)
        topics = {t["topic"]: t for t in md["topics"]}
        self.assertIn(TOPIC, topics, md)
        parts = topics[TOPIC]["partitions"]
        self.assertEqual(len(parts), 1, parts)
        self.assertEqual(parts[0]["partition"], 0)
        self.assertEqual(parts[0]["leader"], 1)
        self.assertEqual([x["id"] for x in parts[0]["replicas"]], [1])
        self.assertEqual([x["id"] for x in parts[0]["isrs"]], [1])
        # Plain-text listing too (the usual smoke check).
        r = self.kcat("-L", "-t", TOPIC, timeout=30)
        self.assertEqual(r.returncode, 0, r.describe())
        text = r.stdout.decode()
        self.assertIn("broker 1 at %s" % self.broker.bootstrap, text)
        self.assertIn('topic "%s" with 1 partitions' % TOPIC, text)
        self.assertIn("partition 0, leader 1", text)

    def test_3_consume_from_offset(self):
        self.assertEqual(self.produce_all().returncode, 0)
        r = self.kcat("-C", "-t", TOPIC, "-p", "0", "-o", "50000", "-c", "10", "-e", "-f", "%o\t%k\t%h\t%s\n",
                      timeout=60)
        self.assertEqual(r.returncode, 0, r.describe())
        hdr = ",".join("%s=%s" % kv for kv in HEADERS)
        want = "".join("%d\t%s\t%s\t%s\n" % (i, self.msgs[i][0], hdr, self.msgs[i][1]) for i in range(50000, 50010))
        self.assertEqual(r.stdout.decode("ascii", "replace"), want)
        # Near the end: -o -5 (relative to the end) gives the last 5.
        r = self.kcat("-C", "-t", TOPIC, "-p", "0", "-o", "-5", "-e", "-f", "%o %k\n", timeout=60)
        self.assertEqual(r.returncode, 0, r.describe())
        want = "".join("%d %s\n" % (i, self.msgs[i][0]) for i in range(N - 5, N))
        self.assertEqual(r.stdout.decode(), want)

    def test_4_offset_query(self):
        self.assertEqual(self.produce_all().returncode, 0)
        # Timestamp 0 -> first offset; far future -> end (-1 / log end).
        r = self.kcat("-Q", "-t", "%s:0:0" % TOPIC, timeout=30)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("offset 0", r.stdout.decode(), r.describe())
        r = self.kcat("-Q", "-t", "%s:0:%d" % (TOPIC, 4_000_000_000_000), timeout=30)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("offset -1", r.stdout.decode(), r.describe())

    def test_5_unknown_partition_and_alive(self):
        # Consuming a partition that does not exist fails cleanly (no hang).
        r = self.kcat("-C", "-t", TOPIC, "-p", "5", "-o", "beginning", "-e", timeout=30)
        self.assertFalse(r.timed_out, r.describe())
        self.assertNotEqual(r.returncode, 0, r.describe())
        self.assertBrokerAlive()
        self.assertNoSanitizerErrors()


if __name__ == "__main__":
    harness.main()
