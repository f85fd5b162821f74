#!/usr/bin/env node
// mqttjs_bench.js - the MQTT.js (Node) peer of the mqlua benchmarks.
//
//   node mqttjs_bench.js recv     HOST PORT TOPIC COUNT QOS CLIENT_ID
//   node mqttjs_bench.js pub      HOST PORT TOPIC COUNT QOS PAYLOAD_BYTES
//   node mqttjs_bench.js pingpong HOST PORT N
//   node mqttjs_bench.js idle     HOST PORT TOPIC
//   node mqttjs_bench.js retained HOST PORT FILTER COUNT
//
// The same work, arguments and result lines as build/bench/ref_client and
// tests/bench/*.lua (see tests/bench/run), written the way MQTT.js's README
// shows: events on one client, MQTT 3.1.1. MQTT.js has no per-filter
// message callbacks, so it sits out the filters workload. Needs `npm ci` in
// tests/bench (the mqtt package, see package.json there).
'use strict'
const path = require('path')
const mqtt = require(path.join(__dirname, '..', 'node_modules', 'mqtt'))
const fs = require('fs')

const PING = 'bench/ping'
const PONG = 'bench/pong'

function fail (...words) {
  process.stderr.write('mqttjs_bench.js: ' + words.join(' ') + '\n')
  process.exit(1)
}

function now () { return Number(process.hrtime.bigint()) / 1e9 }

function rssKb () {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(/^VmRSS:\s*(\d+)/m)
  return m ? Number(m[1]) : -1
}

function printRate (mode, count, seconds) {
  process.stdout.write(`${mode} ${count} ${seconds.toFixed(6)} ${(seconds > 0 ? count / seconds : 0).toFixed(0)}\n`)
}

function connect (host, port, opts) {
  const c = mqtt.connect({ host, port: Number(port), protocolVersion: 4, keepalive: 60, reconnectPeriod: 0, ...opts })
  c.on('error', (e) => { if (!c.benchDone) fail('connection:', e.message) })
  return c
}

// The work is done: disconnect and exit (what the broker still sends is of no interest).
function finish (c) {
  c.benchDone = true
  c.end(false, {}, () => process.exit(0))
}

function subscribed (c, topic, qos, then) {
  c.on('connect', () => c.subscribe(topic, { qos }, (err) => { if (err) fail('subscribe:', err.message); then() }))
}

const modes = {
  recv (host, port, topic, count, qos, clientId) {
    count = Number(count)
    const c = connect(host, port, { clientId, clean: false })
    let n = 0
    let first
    c.on('message', () => {
      if (++n === 1) first = now()
      if (n === count) {
        printRate('recv', n, now() - first)
        finish(c)
      }
    })
    subscribed(c, topic, Number(qos), () => {})
  },

  pub (host, port, topic, count, qos, payloadBytes) {
    count = Number(count)
    qos = Number(qos)
    const payload = Buffer.alloc(Number(payloadBytes), 'x')
    const c = connect(host, port, {})
    // As pub.lua: WINDOW publishes at first, topped up whenever at most WINDOW/2
    // are unconfirmed (one publish() per message; the window bounds memory).
    const WINDOW = 1000
    let sent = 0
    let confirmed = 0
    let start
    const topUp = () => {
      const target = Math.min(count, confirmed + WINDOW)
      while (sent < target) { sent++; c.publish(topic, payload, { qos }, done) }
    }
    const done = (err) => {
      if (err) fail('publish:', err.message)
      if (++confirmed === count) {
        printRate('pub', count, now() - start)
        finish(c)
      } else if (sent < count && sent - confirmed <= WINDOW / 2) {
        topUp()
      }
    }
    c.on('connect', () => { start = now(); topUp() })
  },

  pingpong (host, port, n) {
    n = Number(n)
    const payload = Buffer.alloc(64, 'p')
    const c = connect(host, port, {})
    const rtts = []
    let sentAt
    const ping = () => { sentAt = now(); c.publish(PING, payload, { qos: 0 }) }
    c.on('message', () => {
      rtts.push(now() - sentAt)
      if (rtts.length < n) return ping()
      rtts.sort((a, b) => a - b)
      const pct = (p) => rtts[Math.max(1, Math.min(rtts.length, Math.ceil(p / 100 * rtts.length))) - 1]
      process.stdout.write(`pingpong ${rtts.length} ${(pct(50) * 1e6).toFixed(1)} ${(pct(99) * 1e6).toFixed(1)}\n`)
      finish(c)
    })
    subscribed(c, PONG, 0, ping)
  },

  idle (host, port, topic) {
    const c = connect(host, port, {})
    subscribed(c, topic, 1, () => setTimeout(() => {
      process.stdout.write(`rss ${rssKb()}\n`)
      finish(c)
    }, 500))
  },

  retained (host, port, filter, count) {
    count = Number(count)
    const held = new Map()
    const c = connect(host, port, {})
    c.on('message', (topic, payload) => {
      held.set(topic, payload)
      if (held.size === count) {
        process.stdout.write(`rss ${rssKb()}\n`)
        finish(c)
      }
    })
    subscribed(c, filter, 0, () => {})
  }
}

const [mode, ...args] = process.argv.slice(2)
if (!modes[mode] || args.length !== modes[mode].length) {
  process.stderr.write('usage: see the header of mqttjs_bench.js\n')
  process.exit(1)
}
modes[mode](...args)
