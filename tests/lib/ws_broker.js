// ws_broker.js - an MQTT broker serving MQTT over WebSockets, for mqlua's
// transport tests (Debian's mosquitto has no WebSocket listener): aedes
// behind the `ws` package, plus a plain TCP listener on the same broker so a
// test can watch from the other side.
//
//   node tests/lib/ws_broker.js --ws PORT [--wss PORT --cert F --key F]
//        [--tcp PORT] [--path /mqtt] [--log FILE] [--fragment N] [--ping MS]
//        [--client-ca F]
//
// --path      upgrades to any other path are refused with HTTP 404
// --log       one JSON line per upgrade request: {"path", "headers"}, and
//             {"pong": n} lines as pongs arrive
// --fragment  the broker's messages go out in frames of at most N bytes
//             (a binary frame, then continuation frames)
// --ping      the server pings every client every MS milliseconds
// --client-ca wss clients must present a certificate signed by this CA
// Prints "ready" on stdout once every listener is up.
'use strict'

const fs = require('fs')
const http = require('http')
const https = require('https')
const net = require('net')
const { Duplex } = require('stream')
const path = require('path')
const { WebSocketServer } = require(path.join(__dirname, 'node_modules', 'ws'))
const aedes = require(path.join(__dirname, 'node_modules', 'aedes'))()

const opts = { path: '/mqtt', fragment: 0, ping: 0 }
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i += 2) opts[argv[i].replace(/^--/, '')] = argv[i + 1]

function log (obj) {
  if (opts.log) fs.appendFileSync(opts.log, JSON.stringify(obj) + '\n')
}

// A stream over one WebSocket: what aedes writes goes out as binary
// messages (fragmented if asked), what arrives is handed to aedes.
function wsStream (ws) {
  const stream = new Duplex({
    write (chunk, enc, done) {
      const n = Number(opts.fragment)
      if (!n || chunk.length <= n) return ws.send(chunk, { binary: true }, done)
      for (let off = 0; off < chunk.length; off += n) {
        const last = off + n >= chunk.length
        ws.send(chunk.subarray(off, off + n), { binary: true, fin: last }, last ? done : undefined)
      }
    },
    read () {}
  })
  ws.on('message', (data) => stream.push(data))
  ws.on('close', () => stream.destroy())
  ws.on('error', () => stream.destroy())
  stream.on('close', () => ws.terminate())
  let pongs = 0
  ws.on('pong', () => log({ pong: ++pongs }))
  if (Number(opts.ping)) {
    const t = setInterval(() => ws.ping('mqlua'), Number(opts.ping))
    ws.on('close', () => clearInterval(t))
  }
  return stream
}

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 300 * 1024 * 1024,
  handleProtocols: (protocols) => protocols.has('mqtt') ? 'mqtt' : false
})

function upgrade (req, socket, head) {
  const url = new URL(req.url, 'http://x')
  log({ path: url.pathname, headers: req.headers })
  if (url.pathname !== opts.path) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
    return
  }
  wss.handleUpgrade(req, socket, head, (ws) => aedes.handle(wsStream(ws)))
}

const servers = []
function listen (server, port) {
  servers.push(new Promise((resolve, reject) => {
    server.on('error', reject)
    server.listen(Number(port), '127.0.0.1', resolve)
  }))
}

if (opts.ws) {
  const s = http.createServer((req, res) => { res.writeHead(426); res.end() })
  s.on('upgrade', upgrade)
  listen(s, opts.ws)
}
if (opts.wss) {
  const tls = { cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) }
  if (opts['client-ca']) Object.assign(tls, { ca: fs.readFileSync(opts['client-ca']), requestCert: true, rejectUnauthorized: true })
  const s = https.createServer(tls,
    (req, res) => { res.writeHead(426); res.end() })
  s.on('upgrade', upgrade)
  listen(s, opts.wss)
}
if (opts.tcp) listen(net.createServer(aedes.handle), opts.tcp)

Promise.all(servers).then(() => console.log('ready'), (err) => {
  console.error('ws_broker: ' + err.message)
  process.exit(1)
})
process.on('SIGTERM', () => process.exit(0))
