// autocannon's own command line (same options, same --json output), with P95 added to the latency
// percentiles. The runbook's Benchmark Results give P95; autocannon reports P90 and P97.5 but not P95.
// autocannon computes its percentiles from the module-level list of hdr-histogram-percentiles-obj, so
// adding 95 there makes its --json output carry "p95", read from the same HDR histogram as every other
// percentile (not interpolated).
'use strict'

const percentiles = require('hdr-histogram-percentiles-obj').percentiles
if (!percentiles.includes(95)) {
  percentiles.splice(percentiles.findIndex((p) => p > 95), 0, 95)
}
const autocannon = require('autocannon')
autocannon.start(autocannon.parseArguments(process.argv.slice(2)))
