#!/usr/bin/env node
// kafkajs_group.js - kafkajs (2.2.4) consumer groups against a Kafscale broker.
//   node test/node/kafkajs_group.js 127.0.0.1:PORT [prefix]
// 1. Two consumers of one group split a 4-partition topic (each partition
//    owned by exactly one of them) and read it end to end; kafkajs commits
//    as it goes (autoCommit) and on disconnect.
// 2. admin.fetchOffsets shows the commits; admin.describeGroups and
//    listGroups see the group while it runs.
// 3. A new consumer of the group, after more messages were produced, reads
//    exactly the new ones (it resumes from the commits).
// Prints one JSON summary line on stdout ({"ok":..., "failures":[...], ...});
// kafkajs logs go to stderr. Exit status 0 only when every check passed.
'use strict'
const { kafkajs, setup, stderrLog, sleep, run } = require('./kafkajs_common')
const { Kafka, logLevel, Partitioners } = kafkajs
const { broker, prefix, summary, check } = setup('kafkajs_group.js', 'kjsg')

async function waitFor (cond, ms) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (cond()) return true
    await sleep(50)
  }
  return cond()
}

const PARTS = 4
const N = 200

async function main () {
  const kafka = new Kafka({
    clientId: 'kafscale-e2e-group',
    brokers: [broker],
    logLevel: logLevel.WARN,
    logCreator: stderrLog,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 200 }
  })
  const topic = `${prefix}-topic`
  const groupId = `${prefix}-group`
  const admin = kafka.admin()
  await admin.connect()
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const consumers = []
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTS }], waitForLeaders: true, timeout: 10000 })
    const batch = (from, to) => {
      const messages = []
      for (let i = from; i < to; i++) messages.push({ partition: i % PARTS, value: `m-${i}` })
      return messages
    }
    await producer.send({ topic, messages: batch(0, N) })

    // 1. Two members split the partitions and read everything.
    const seen = new Map() // value -> count
    const owners = [new Set(), new Set()]
    // kafkajs heartbeats between fetches: short long-polls let it notice rebalances fast.
    const groupOpts = { groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000, maxWaitTimeInMs: 200 }
    for (let i = 0; i < 2; i++) {
      const c = kafka.consumer(groupOpts)
      consumers.push(c)
      c.on(c.events.GROUP_JOIN, (e) => {
        const parts = (e.payload.memberAssignment[topic] || [])
        owners[i] = new Set(parts)
      })
      await c.connect()
      await c.subscribe({ topic, fromBeginning: true })
      await c.run({
        autoCommitInterval: 200,
        eachMessage: async ({ message }) => {
          const v = message.value.toString()
          seen.set(v, (seen.get(v) || 0) + 1)
        }
      })
    }
    const split = () => owners[0].size > 0 && owners[1].size > 0 &&
      [...owners[0]].every((p) => !owners[1].has(p)) && owners[0].size + owners[1].size === PARTS
    const allSeen = () => { for (let i = 0; i < N; i++) if (!seen.has(`m-${i}`)) return false; return true }
    check(await waitFor(() => split() && allSeen(), 30000), 'two members split the partitions and read everything',
      { owners: owners.map((s) => [...s]), seen: seen.size })
    summary.owners = owners.map((s) => [...s].sort())
    summary.seen = seen.size

    // 2. The admin API sees the running group and its commits.
    const groups = await admin.listGroups()
    const listed = groups.groups.find((g) => g.groupId === groupId)
    check(listed && listed.protocolType === 'consumer', 'listGroups lists the group', groups)
    const described = await admin.describeGroups([groupId])
    const d = described.groups[0]
    check(d && d.state === 'Stable' && d.members.length === 2 && d.protocolType === 'consumer',
      'describeGroups: Stable with two members', d && { state: d.state, members: d.members.length })
    summary.protocol = d && d.protocol
    await sleep(500) // an auto commit interval or two
    for (const c of consumers) await c.disconnect()
    consumers.length = 0
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
    const committed = {}
    for (const p of offsets[0].partitions) committed[p.partition] = p.offset
    summary.committed = committed
    check(Object.keys(committed).length === PARTS && Object.values(committed).every((o) => o === String(N / PARTS)),
      'every partition committed at its end', committed)

    // 3. A new member resumes from the commits.
    await producer.send({ topic, messages: batch(N, N + 20) })
    const again = new Map()
    const c = kafka.consumer(groupOpts)
    consumers.push(c)
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({ eachMessage: async ({ message }) => { again.set(message.value.toString(), message.offset) } })
    await waitFor(() => again.size >= 20, 20000)
    await sleep(300) // anything older would arrive too
    const values = [...again.keys()].sort()
    const want = []
    for (let i = N; i < N + 20; i++) want.push(`m-${i}`)
    check(JSON.stringify(values) === JSON.stringify(want.sort()), 'the new member read exactly the new messages', values)
    summary.resumed = values.length
  } finally {
    for (const c of consumers) await c.disconnect().catch(() => {})
    await producer.disconnect().catch(() => {})
    await admin.disconnect().catch(() => {})
  }
}

run(main, summary, 80000)
