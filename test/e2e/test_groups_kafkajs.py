#!/usr/bin/python3
"""Consumer groups with kafkajs ("What must be shown" 3): runs
test/node/kafkajs_group.js - two kafkajs members split a topic and read it
end to end with commits, the admin API sees the group, a new member resumes
from the commits - and checks its JSON summary; then checks the commits
with another client (kafka-python's admin)."""
import unittest

import harness
from kafka import KafkaAdminClient


class GroupsKafkaJS(harness.BrokerTestCase):
    BROKER_ENV = {"KAFSCALE_AUTO_CREATE_TOPICS": "false", "KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS": "500"}

    def test_group_consumers(self):
        s = harness.run_kafkajs(self, "kafkajs_group.js", self.broker.bootstrap, "kjsg", timeout=100)
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
