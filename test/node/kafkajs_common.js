// kafkajs_common.js - what the kafkajs test scripts (kafkajs_*.js) share:
// loading kafkajs (from node_modules beside this file when NODE_PATH does not
// have it), the command line (HOST:PORT [prefix]), the JSON summary and its
// checks, kafkajs logs on stderr, and running main() under a watchdog that
// always prints the summary as one JSON line on stdout and exits 0 only when
// every check passed (1 otherwise, 3 when the watchdog fired). The Python
// side is harness.run_kafkajs().
'use strict'
const path = require('path')
let kafkajs
try {
  kafkajs = require('kafkajs')
} catch (e) {
  kafkajs = require(path.join(__dirname, 'node_modules', 'kafkajs'))
}

// { broker, prefix, summary, check } of a script run as
//   node <script> HOST:PORT [prefix]     (or KAFSCALE_BOOTSTRAP=HOST:PORT)
function setup (script, defaultPrefix) {
  const broker = process.argv[2] || process.env.KAFSCALE_BOOTSTRAP
  const prefix = process.argv[3] || defaultPrefix
  if (!broker) {
    console.error(`usage: ${script} HOST:PORT [prefix]`)
    process.exit(2)
  }
  const summary = { ok: false, broker, checks: 0, failures: [] }
  function check (cond, what, detail) {
    summary.checks++
    if (!cond) summary.failures.push(detail === undefined ? what : `${what}: ${JSON.stringify(detail)}`)
  }
  return { broker, prefix, summary, check }
}

// kafkajs's logCreator: its log lines to stderr.
const stderrLog = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`[kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(extra)}\n`)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Runs main(), then prints the summary and exits (see the top of this file).
function run (main, summary, watchdogMs) {
  const watchdog = setTimeout(() => {
    summary.failures.push(`watchdog: did not finish within ${watchdogMs / 1000}s`)
    process.stdout.write(JSON.stringify(summary) + '\n')
    process.exit(3)
  }, watchdogMs)
  main().then(() => {
    summary.ok = summary.failures.length === 0
  }, (e) => {
    summary.failures.push(`exception: ${e && e.stack ? e.stack : e}`)
  }).finally(() => {
    clearTimeout(watchdog)
    process.stdout.write(JSON.stringify(summary) + '\n')
    process.exit(summary.ok ? 0 : 1)
  })
}

module.exports = { kafkajs, setup, stderrLog, sleep, run }
