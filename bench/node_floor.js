// The floor for bench/gateway_load.py: a bare Node.js `http` cluster answering every request like the
// gateway's /healthz ({"status":"ok","timestamp":...}), measured in the same run as the gateway, on the
// same machine.  No framework, no middleware: what two worker processes of Node's own HTTP server do.
// Usage: node node_floor.js PORT [WORKERS=2] [MAX_SECONDS=3600]
// Listens on 127.0.0.1 only, prints "ready" once every worker listens, stops on SIGTERM/SIGINT and
// in any case after MAX_SECONDS.  Works on Node.js 18 (Debian 12) and later.
'use strict'

const cluster = require('node:cluster')
const http = require('node:http')

const port = Number(process.argv[2])
const workers = Number(process.argv[3] || 2)
const maxSeconds = Number(process.argv[4] || 3600)

if (cluster.isPrimary) {
  let listening = 0
  let stopping = false
  const stop = () => {
    stopping = true
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM')
    setTimeout(() => process.exit(0), 2000).unref()
  }
  cluster.on('listening', () => {
    listening += 1
    if (listening === workers) console.log('ready')
  })
  cluster.on('exit', (worker, code) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} exited (${code}); stopping`)
      stop()
    } else if (Object.keys(cluster.workers).length === 0) {
      process.exit(0)
    }
  })
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  setTimeout(stop, maxSeconds * 1000).unref()
  for (let i = 0; i < workers; i++) cluster.fork()
} else {
  process.on('SIGTERM', () => process.exit(0))
  http.createServer((req, res) => {
    const body = `{"status":"ok","timestamp":${Date.now()}}`
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
    res.end(body)
  }).listen(port, '127.0.0.1')
}
