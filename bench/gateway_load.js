// Load generator for bench/gateway_load.py: one autocannon run, exact latency percentiles.
// Usage: node gateway_load.js < spec.json, the spec being
//   {"url": ..., "connections": 100, "duration": 30, "method": "GET", "headers": {...}, "body": "..."}
// (on standard input: a password or token in it stays off the process list).
// Prints one JSON object on stdout. autocannon's own percentiles are of a 1 ms histogram, so every
// response time is kept and P50/P95/P97.5/P99 are computed here from all of them.
'use strict'

const fs = require('node:fs')
const autocannon = require('autocannon')

const cfg = JSON.parse(fs.readFileSync(0, 'utf8'))
const times = []
const statuses = {}

const instance = autocannon({
  url: cfg.url,
  connections: cfg.connections,
  duration: cfg.duration,
  method: cfg.method || 'GET',
  headers: cfg.headers || {},
  body: cfg.body,
  pipelining: 1,
  timeout: 10
}, (err, result) => {
  if (err) {
    console.error(err)
    process.exit(1)
  }
  times.sort((a, b) => a - b)
  const pct = (p) => times.length ? times[Math.min(times.length - 1, Math.ceil(p / 100 * times.length) - 1)] : null
  const seconds = (result.finish - result.start) / 1000
  console.log(JSON.stringify({
    url: cfg.url,
    connections: cfg.connections,
    duration_s: seconds,
    requests: result.requests.total,
    responses: times.length,
    req_per_s: times.length / seconds,
    autocannon_avg_req_per_s: result.requests.average,
    latency_ms: { p50: pct(50), p95: pct(95), p97_5: pct(97.5), p99: pct(99), max: times[times.length - 1],
      autocannon_p97_5: result.latency.p97_5 },
    statuses,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts
  }))
})

instance.on('response', (client, statusCode, resBytes, responseTime) => {
  times.push(responseTime)
  statuses[statusCode] = (statuses[statusCode] || 0) + 1
})
