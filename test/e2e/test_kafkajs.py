#!/usr/bin/python3
"""kafkajs (node) against the broker: runs test/node/kafkajs_smoke.js and
checks its JSON summary, then reads what it produced back with kcat."""
import json
import unittest

import harness


class KafkaJS(harness.BrokerTestCase):
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false"}

    def test_smoke(self):
        s = harness.run_kafkajs(self, "kafkajs_smoke.js", self.broker.bootstrap, "kjs", timeout=90)
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
