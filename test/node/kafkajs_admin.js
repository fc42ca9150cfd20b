#!/usr/bin/env node
// kafkajs_admin.js - kafkajs (2.2.4) admin APIs against a Kafscale broker.
//   node test/node/kafkajs_admin.js 127.0.0.1:PORT [topic-prefix]
// describeConfigs (topic and broker, with synonyms), alterConfigs (a good
// change, an unknown name, a bad value, a read-only broker config),
// createPartitions (grow, not growing), deleteTopicRecords (an offset in
// the middle of partition 0, then -1 on partition 1) after producing enough
// to make many small segments (segment.bytes=16384). Prints one JSON
// summary line on stdout ({"ok":..., "failures":[...], ...}); the Python
// side (test/e2e/test_admin_apis.py) checks the objects in the store.
// Exit status 0 only when every check passed.
'use strict'
const { kafkajs, setup, stderrLog, run } = require('./kafkajs_common')
const { Kafka, logLevel, ConfigResourceTypes, ConfigSource } = kafkajs
const { broker, prefix, summary, check } = setup('kafkajs_admin.js', 'kjs')

// Resolves to the error thrown by fn (or null when it did not throw).
async function failure (fn) {
  try {
    await fn()
    return null
  } catch (e) {
    return e
  }
}

function entries (res) {
  const m = {}
  for (const e of res.configEntries) m[e.configName] = e
  return m
}

async function waitOffsets (admin, topic, cond) {
  let o = await admin.fetchTopicOffsets(topic)
  for (let i = 0; i < 100 && !cond(o); i++) {
    await new Promise(resolve => setTimeout(resolve, 100))
    o = await admin.fetchTopicOffsets(topic)
  }
  return o
}

async function main () {
  const kafka = new Kafka({
    clientId: 'kafscale-e2e-admin',
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    logCreator: stderrLog,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 0 }
  })
  const topic = `${prefix}-admin`
  summary.topic = topic
  const admin = kafka.admin()
  await admin.connect()
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 2, configEntries: [{ name: 'segment.bytes', value: '16384' }] }],
      timeout: 10000
    })
    check(created === true, 'createTopics returned true', created)

    // ---- describeConfigs ----
    const d1 = await admin.describeConfigs({
      includeSynonyms: true,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: topic },
        { type: ConfigResourceTypes.BROKER, name: '1', configNames: ['num.partitions', 'log.retention.ms', 'message.max.bytes', 'auto.create.topics.enable', 'no.such.config'] }
      ]
    })
    const tres = d1.resources.find(r => r.resourceType === ConfigResourceTypes.TOPIC)
    const bres = d1.resources.find(r => r.resourceType === ConfigResourceTypes.BROKER)
    check(tres && tres.errorCode === 0 && tres.resourceName === topic, 'topic resource described', tres)
    check(bres && bres.errorCode === 0 && bres.resourceName === '1', 'broker resource described', bres)
    if (tres) {
      const t = entries(tres)
      summary.topicConfigNames = Object.keys(t).sort()
      check(t['segment.bytes'] && t['segment.bytes'].configValue === '16384' &&
        t['segment.bytes'].configSource === ConfigSource.TOPIC_CONFIG && !t['segment.bytes'].readOnly,
      'segment.bytes set at creation is a topic config', t['segment.bytes'])
      check(t['retention.ms'] && t['retention.ms'].configValue === '604800000' &&
        t['retention.ms'].configSource === ConfigSource.DEFAULT_CONFIG, 'retention.ms default', t['retention.ms'])
      const syn = t['retention.ms'] ? t['retention.ms'].configSynonyms : []
      check(syn.some(s => s.configName === 'log.retention.ms' && s.configValue === '604800000'),
        'retention.ms synonym log.retention.ms', syn)
      check(t['cleanup.policy'] && t['cleanup.policy'].configValue === 'delete', 'cleanup.policy default', t['cleanup.policy'])
    }
    if (bres) {
      const b = entries(bres)
      summary.brokerConfigs = b
      check(Object.keys(b).sort().join() === 'auto.create.topics.enable,log.retention.ms,message.max.bytes,num.partitions',
        'broker configs filtered by configNames (unknown left out)', Object.keys(b))
      check(b['num.partitions'] && b['num.partitions'].configValue === '3' && b['num.partitions'].readOnly &&
        b['num.partitions'].configSource === ConfigSource.STATIC_BROKER_CONFIG, 'num.partitions from the environment', b['num.partitions'])
      check(b['message.max.bytes'] && b['message.max.bytes'].configValue === '1048588' &&
        b['message.max.bytes'].configSource === ConfigSource.DEFAULT_CONFIG, 'message.max.bytes default', b['message.max.bytes'])
      check(b['auto.create.topics.enable'] && b['auto.create.topics.enable'].configValue === 'false',
        'auto.create.topics.enable', b['auto.create.topics.enable'])
    }

    // ---- alterConfigs ----
    await admin.alterConfigs({
      resources: [{
        type: ConfigResourceTypes.TOPIC,
        name: topic,
        configEntries: [{ name: 'segment.bytes', value: '16384' }, { name: 'retention.ms', value: '86400000' }, { name: 'cleanup.policy', value: 'delete' }]
      }]
    })
    const d2 = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'segment.bytes', 'max.message.bytes'] }]
    })
    const t2 = entries(d2.resources[0])
    summary.afterAlter = t2
    check(t2['retention.ms'] && t2['retention.ms'].configValue === '86400000' &&
      t2['retention.ms'].configSource === ConfigSource.TOPIC_CONFIG, 'retention.ms altered', t2['retention.ms'])
    check(t2['segment.bytes'] && t2['segment.bytes'].configValue === '16384', 'segment.bytes kept', t2['segment.bytes'])
    check(t2['max.message.bytes'] && t2['max.message.bytes'].configValue === '1048588', 'max.message.bytes default', t2['max.message.bytes'])

    const bad = [
      ['unknown name', ConfigResourceTypes.TOPIC, topic, 'no.such.config', '1'],
      ['bad value', ConfigResourceTypes.TOPIC, topic, 'retention.ms', 'soon'],
      ['read-only broker config', ConfigResourceTypes.BROKER, '1', 'num.partitions', '5']
    ]
    summary.alterErrors = {}
    for (const [what, type, name, key, value] of bad) {
      const e = await failure(() => admin.alterConfigs({ resources: [{ type, name, configEntries: [{ name: key, value }] }] }))
      summary.alterErrors[what] = e ? { type: e.type, message: e.message } : null
      check(e && e.type === 'INVALID_CONFIG', `alterConfigs ${what} refused with INVALID_CONFIG`, e && e.message)
    }
    const d3 = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }]
    })
    check(d3.resources[0].configEntries[0].configValue === '86400000', 'a refused alterConfigs changed nothing', d3.resources[0])

    // ---- createPartitions ----
    await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] })
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    const parts = md.topics[0].partitions.map(p => p.partitionId).sort()
    summary.partitionsAfterGrow = parts
    check(JSON.stringify(parts) === '[0,1,2,3]', 'createPartitions grew the topic to 4', parts)
    const e1 = await failure(() => admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] }))
    check(e1 && e1.type === 'INVALID_PARTITIONS', 'createPartitions to the same count refused', e1 && e1.message)
    const e2 = await failure(() => admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] }))
    check(e2 && e2.type === 'INVALID_PARTITIONS', 'createPartitions to fewer refused', e2 && e2.message)
    await admin.createPartitions({ validateOnly: true, topicPartitions: [{ topic, count: 8 }] })
    const md2 = await admin.fetchTopicMetadata({ topics: [topic] })
    check(md2.topics[0].partitions.length === 4, 'validateOnly changed nothing', md2.topics[0].partitions.length)

    // ---- produce: partition 0 gets many small segments; partition 3 (new) works ----
    const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false })
    await producer.connect()
    const per = 40
    const rounds = 10
    try {
      for (let r = 0; r < rounds; r++) {
        const msgs = []
        for (let i = 0; i < per; i++) msgs.push({ partition: 0, value: `r${r}-m${i}-` + 'v'.repeat(300) })
        await producer.send({ topic, messages: msgs, acks: -1 })
      }
      await producer.send({ topic, acks: -1, messages: [{ partition: 1, value: 'p1-a' }, { partition: 1, value: 'p1-b' }, { partition: 3, value: 'p3-a' }] })
    } finally {
      await producer.disconnect()
    }
    const total = per * rounds
    const before = await waitOffsets(admin, topic, o => o.find(p => p.partition === 0).high === String(total))
    summary.offsetsBeforeDelete = before
    check(before.find(p => p.partition === 0).high === String(total), 'partition 0 holds everything produced', before)
    check(before.find(p => p.partition === 3).high === '1', 'new partition 3 took a message', before)

    // ---- deleteTopicRecords ----
    const cut = 250
    summary.cut = cut
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(cut) }, { partition: 1, offset: '-1' }] })
    const after = await admin.fetchTopicOffsets(topic)
    summary.offsetsAfterDelete = after
    const a0 = after.find(p => p.partition === 0)
    const a1 = after.find(p => p.partition === 1)
    check(a0.low === String(cut) && a0.high === String(total), 'partition 0 low watermark moved to the cut', a0)
    check(a1.low === '2' && a1.high === '2', 'offset -1 moved partition 1 to its high watermark', a1)
    const e3 = await failure(() => admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(total + 5) }] }))
    const de = e3 && (e3.partitions ? e3 : e3.cause) /* the retrier may wrap it */
    const e3types = de && de.partitions ? de.partitions.map(p => p.error && p.error.type) : []
    summary.deleteBeyondHw = e3 ? { message: e3.message, types: e3types } : null
    check(e3types.length === 1 && e3types[0] === 'OFFSET_OUT_OF_RANGE',
      'deleteTopicRecords beyond the high watermark refused with OFFSET_OUT_OF_RANGE', summary.deleteBeyondHw)

  } finally {
    await admin.disconnect()
  }
}

run(main, summary, 80000)
