#!/usr/bin/env node
// kafkajs_smoke.js - kafkajs (2.2.4) against a Kafscale broker.
//   node test/node/kafkajs_smoke.js 127.0.0.1:PORT [topic-prefix]
// Admin: createTopics, listTopics, fetchTopicMetadata, fetchTopicOffsets,
// fetchTopicOffsetsByTimestamp, deleteTopics; producer: send / sendBatch
// (plain and gzip), then checks the offsets advanced. Prints one JSON summary
// line on stdout ({"ok":..., "failures":[...], ...}); kafkajs logs go to
// stderr. Exit status 0 only when every check passed.
'use strict'
const { kafkajs, setup, stderrLog, run } = require('./kafkajs_common')
const { Kafka, logLevel, CompressionTypes, Partitioners } = kafkajs
const { broker, prefix, summary, check } = setup('kafkajs_smoke.js', 'kjs')

const T0 = 1700000000000

async function main () {
  const kafka = new Kafka({
    clientId: 'kafscale-e2e',
    brokers: [broker],
    logLevel: logLevel.WARN,
    logCreator: stderrLog,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 3, initialRetryTime: 200 }
  })
  const topic = `${prefix}-smoke`
  const topic2 = `${prefix}-doomed`
  const admin = kafka.admin()
  await admin.connect()
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 3, replicationFactor: 1 }, { topic: topic2, numPartitions: 1 }],
      waitForLeaders: true,
      timeout: 10000
    })
    summary.created = created
    check(created === true, 'createTopics returned true', created)
    const again = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], timeout: 10000 })
    summary.createdAgain = again
    check(again === false, 'createTopics of an existing topic returned false', again)

    const topics = await admin.listTopics()
    summary.listTopics = topics.sort()
    check(topics.includes(topic) && topics.includes(topic2), 'listTopics has both topics', topics)

    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    const tmd = md.topics.find(t => t.name === topic)
    summary.metadata = tmd
    check(!!tmd, 'fetchTopicMetadata has the topic', md)
    if (tmd) {
      const ids = tmd.partitions.map(p => p.partitionId).sort()
      check(JSON.stringify(ids) === '[0,1,2]', 'three partitions', ids)
      for (const p of tmd.partitions) {
        check(p.partitionErrorCode === 0, `partition ${p.partitionId} error code`, p)
        check(p.leader === 1, `partition ${p.partitionId} leader is broker 1`, p)
        check(JSON.stringify(p.replicas) === '[1]' && JSON.stringify(p.isr) === '[1]', `partition ${p.partitionId} replicas/isr`, p)
      }
    }

    const before = await admin.fetchTopicOffsets(topic)
    summary.offsetsBefore = before
    for (const p of before) {
      check(p.low === '0' && p.high === '0' && p.offset === '0', `partition ${p.partition} starts empty`, p)
    }

    const producer = kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: false,
      createPartitioner: Partitioners.DefaultPartitioner
    })
    await producer.connect()
    const sent = { 0: 0, 1: 0, 2: 0 }
    try {
      // 1) plain send, explicit partitions and timestamps
      const msgs = []
      for (let i = 0; i < 12; i++) {
        msgs.push({
          key: `key-${i}`,
          value: `value-${i}-` + 'x'.repeat(i * 10),
          partition: i % 3,
          timestamp: String(T0 + i * 1000),
          headers: { idx: String(i), origin: 'kafkajs' }
        })
        sent[i % 3]++
      }
      const r1 = await producer.send({ topic, messages: msgs, acks: -1, timeout: 10000 })
      summary.send1 = r1
      check(Array.isArray(r1) && r1.length === 3, 'send returned one result per partition', r1)
      for (const r of r1) {
        check(r.errorCode === 0, `send partition ${r.partition} errorCode`, r)
        check(r.baseOffset === '0', `send partition ${r.partition} baseOffset 0`, r)
      }
      // 2) gzip-compressed send to partition 0
      const gz = []
      for (let i = 0; i < 20; i++) gz.push({ key: `gz-${i}`, value: 'gzip '.repeat(50) + i, partition: 0 })
      sent[0] += gz.length
      const r2 = await producer.send({ topic, messages: gz, acks: -1, compression: CompressionTypes.GZIP })
      summary.send2 = r2
      check(r2.length === 1 && r2[0].errorCode === 0 && r2[0].baseOffset === '4', 'gzip send at offset 4', r2)
      // 3) sendBatch across two topics, acks=1
      const r3 = await producer.sendBatch({
        acks: 1,
        topicMessages: [
          { topic, messages: [{ value: 'batch-a', partition: 2 }, { value: 'batch-b', partition: 2 }] },
          { topic: topic2, messages: [{ key: 'k', value: 'doomed', partition: 0 }] }
        ]
      })
      sent[2] += 2
      summary.send3 = r3
      check(r3.length === 2 && r3.every(r => r.errorCode === 0), 'sendBatch results', r3)
    } finally {
      await producer.disconnect()
    }
    summary.sent = sent

    // acks=1 answers before the batch is durable; the high watermark (what
    // consumers and ListOffsets see) follows within a flush interval.
    let after = await admin.fetchTopicOffsets(topic)
    for (let i = 0; i < 50 && !after.every(p => p.high === String(sent[p.partition])); i++) {
      await new Promise(r => setTimeout(r, 100))
      after = await admin.fetchTopicOffsets(topic)
    }
    summary.offsetsAfter = after
    for (const p of after) {
      check(p.high === String(sent[p.partition]) && p.offset === p.high && p.low === '0',
        `partition ${p.partition} offsets advanced by ${sent[p.partition]}`, p)
    }

    // Timestamps: partition 1 got messages 1,4,7,10 at T0+1000*i (offsets 0..3).
    const byTs = await admin.fetchTopicOffsetsByTimestamp(topic, T0 + 4500)
    summary.offsetsByTimestamp = byTs
    const p1 = byTs.find(p => p.partition === 1)
    check(p1 && p1.offset === '2', 'partition 1 offset for T0+4500 is 2 (message 7)', byTs)
    const p0 = byTs.find(p => p.partition === 0)
    // partition 0: messages 0,3,6,9 (offsets 0..3) then gzip ones with current time.
    check(p0 && p0.offset === '2', 'partition 0 offset for T0+4500 is 2 (message 6)', byTs)
    const p2 = byTs.find(p => p.partition === 2)
    // partition 2: messages 2,5,8,11 at T0+2000.. (offsets 0..3), then batch-a/b.
    check(p2 && p2.offset === '1', 'partition 2 offset for T0+4500 is 1 (message 5)', byTs)

    await admin.deleteTopics({ topics: [topic2], timeout: 10000 })
    const topicsAfter = await admin.listTopics()
    check(!topicsAfter.includes(topic2) && topicsAfter.includes(topic), 'deleteTopics removed only the doomed topic', topicsAfter)
    summary.listTopicsAfterDelete = topicsAfter.sort()
  } finally {
    await admin.disconnect()
  }
}

run(main, summary, 60000)
