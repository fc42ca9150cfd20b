#!/usr/bin/python3
"""Consumer groups with kafkajs ("What must be shown" 3): runs
test/node/kafkajs_group.js - two kafkajs members split a topic and read it
end to end with commits, the admin API sees the group, a new member resumes
from the commits - and checks its JSON summary; then checks the commits
with another client (kafka-python's admin)."""
import json
import os
import shutil
import unittest

import harness
from kafka import KafkaAdminClient

SCRIPT = os.path.join(harness.NODE_DIR, "kafkajs_group.js")
MODULES = os.path.join(harness.NODE_DIR, "node_modules")


class GroupsKafkaJS(harness.BrokerTestCase):
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS": "500"}

    def test_group_consumers(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node not installed (make deps)")
        self.assertTrue(os.path.isdir(os.path.join(MODULES, "kafkajs")),
                        "kafkajs missing in %s (run `make deps`)" % MODULES)
        r = harness.run_cmd([node, SCRIPT, self.broker.bootstrap, "kjsg"], timeout=100, cwd=harness.NODE_DIR,
                            extra_env={"NODE_PATH": MODULES})
        self.assertFalse(r.timed_out, r.describe())
        lines = [l for l in r.stdout.decode("utf-8", "replace").splitlines() if l.startswith("{")]
        self.assertTrue(lines, "no JSON summary from the script: " + r.describe())
        s = json.loads(lines[-1])
        self.assertEqual(s["failures"], [], "kafkajs checks failed: " + r.describe(4000))
        self.assertTrue(s["ok"])
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(sorted(s["owners"][0] + s["owners"][1]), [0, 1, 2, 3])
        self.assertEqual(s["seen"], 200)
        self.assertEqual(s["resumed"], 20)
        # The commits as another client sees them (kafkajs's last member
        # committed the 20 new messages on disconnect).
        admin = KafkaAdminClient(bootstrap_servers=self.broker.bootstrap, request_timeout_ms=15000)
        try:
            offs = admin.list_consumer_group_offsets("kjsg-group")
        finally:
            admin.close()
        self.assertEqual({tp.partition: om.offset for tp, om in offs.items()}, {0: 55, 1: 55, 2: 55, 3: 55})
        self.assertBrokerAlive()
        self.assertNoSanitizerErrors()


if __name__ == "__main__":
    harness.main()
