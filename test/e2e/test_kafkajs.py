#!/usr/bin/python3
"""kafkajs (node) against the broker: runs test/node/kafkajs_smoke.js and
checks its JSON summary, then reads what it produced back with kcat."""
import json
import os
import shutil
import unittest

import harness

SCRIPT = os.path.join(harness.NODE_DIR, "kafkajs_smoke.js")
MODULES = os.path.join(harness.NODE_DIR, "node_modules")


class KafkaJS(harness.BrokerTestCase):
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false"}

    def test_smoke(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node not installed (make deps)")
        self.assertTrue(os.path.isdir(os.path.join(MODULES, "kafkajs")),
                        "kafkajs missing in %s (run `make deps`)" % MODULES)
        r = harness.run_cmd([node, SCRIPT, self.broker.bootstrap, "kjs"], timeout=90, cwd=harness.NODE_DIR,
                            extra_env={"NODE_PATH": MODULES})
        self.assertFalse(r.timed_out, r.describe())
        lines = [l for l in r.stdout.decode("utf-8", "replace").splitlines() if l.startswith("{")]
        self.assertTrue(lines, "no JSON summary from the script: " + r.describe())
        s = json.loads(lines[-1])
        self.assertEqual(s["failures"], [], "kafkajs checks failed: " + r.describe(4000))
        self.assertTrue(s["ok"])
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertGreater(s["checks"], 20)
        self.assertIs(s["created"], True)
        self.assertIs(s["createdAgain"], False)
        self.assertEqual(s["sent"], {"0": 24, "1": 4, "2": 6})
        after = {p["partition"]: p for p in s["offsetsAfter"]}
        self.assertEqual({q: after[q]["high"] for q in after}, {0: "24", 1: "4", 2: "6"})
        self.assertIn("kjs-smoke", s["listTopicsAfterDelete"])
        self.assertNotIn("kjs-doomed", s["listTopicsAfterDelete"])

        # Cross-client: what kafkajs produced, as librdkafka sees it.
        r = harness.run_cmd(["kcat", "-b", self.broker.bootstrap, "-m", "10", "-C", "-t", "kjs-smoke", "-p", "0",
                             "-o", "beginning", "-e", "-J"], timeout=60)
        self.assertEqual(r.returncode, 0, r.describe())
        msgs = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        self.assertEqual([m["offset"] for m in msgs], list(range(24)))
        self.assertEqual([m["key"] for m in msgs], ["key-%d" % i for i in (0, 3, 6, 9)] + ["gz-%d" % i for i in range(20)])
        self.assertEqual(msgs[1]["payload"], "value-3-" + "x" * 30)
        self.assertEqual(msgs[1]["ts"], 1700000000000 + 3000)
        self.assertEqual(msgs[1]["headers"], ["idx", "3", "origin", "kafkajs"])
        self.assertEqual(msgs[4]["payload"], "gzip " * 50 + "0")
        self.assertBrokerAlive()
        self.assertNoSanitizerErrors()


if __name__ == "__main__":
    harness.main()
