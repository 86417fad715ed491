#!/usr/bin/env node
// loadgen.js - a small HTTP load generator for the demo: `concurrency`
// keep-alive connections to 127.0.0.1 request <path><id> (by default
// /item/<id>) for `seconds`, ids 1..items drawn from a Zipf-like
// distribution (a few ids are hot, most are not), and report counts,
// requests/s and latency percentiles.  Closed loop: each connection sends
// its next request when the last one is answered, so slower answers mean
// fewer requests per second.
//
//   node examples/loadgen.js PORT [seconds] [concurrency] [items] [path]
//   const { run } = require('./loadgen'); await run({ port, seconds, path: '/kvshm/item/' })
//   const c = await connect({ port, concurrency }); await c.run({ seconds, path })
'use strict';
const http = require('http');

// Zipf-like: rank r with probability ~ 1/r, by inverse transform on a CDF.
function zipf(items, s = 1.0) {
  const cdf = new Float64Array(items);
  let sum = 0;
  for (let r = 1; r <= items; r++) cdf[r - 1] = (sum += 1 / r ** s);
  for (let i = 0; i < items; i++) cdf[i] /= sum;
  return () => {
    const u = Math.random();
    let lo = 0;
    let hi = items - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

function request(agent, port, path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let bytes = 0;
      res.on('data', (d) => { bytes += d.length; });
      res.on('end', () => resolve({ status: res.statusCode, bytes }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
  });
}

/**
 * Open `concurrency` keep-alive connections to 127.0.0.1:port, one after
 * the other: each sends a request to `ping` (any answer will do) before the
 * next one opens.  A cluster's primary then hands them to its workers in
 * turn, evenly; connections that all arrive at once go to whichever worker
 * is free first, and some workers get several times more than others.
 * Resolves { run({ seconds, items, path, signal }), close() }: run() is as
 * below, and closes the connections when it ends; close() closes them
 * without a run.  An abort of `signal` rejects it.
 */
async function connect({ port, concurrency = 32, ping = '/', signal }) {
  const agents = [];
  const stop = () => { for (const agent of agents) agent.destroy(); };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    for (let i = 0; i < concurrency; i++) {
      signal?.throwIfAborted();
      agents.push(new http.Agent({ keepAlive: true, maxSockets: 1 })); // one connection each
      await request(agents[i], port, ping);
    }
  } catch (err) {
    stop();
    throw err;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
  return { run: (options) => drive(agents, port, options), close: stop };
}

// Each connection requests <path><id> for `seconds`; the totals.
async function drive(agents, port, { seconds = 4, items = 4000, path = '/item/', signal } = {}) {
  const stop = () => { for (const agent of agents) agent.destroy(); };
  signal?.addEventListener('abort', stop, { once: true });
  const pick = zipf(items);
  const started = Date.now();
  const end = started + seconds * 1000;
  const latencies = [];
  const totals = { requests: 0, errors: 0, bytes: 0 };
  async function client(agent) {
    while (Date.now() < end && !signal?.aborted) {
      const t0 = process.hrtime.bigint();
      try {
        const r = await request(agent, port, `${path}${pick()}`);
        totals.requests++;
        totals.bytes += r.bytes;
        if (r.status !== 200) totals.errors++;
      } catch {
        totals.errors++;
      }
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  await Promise.all(agents.map(client));
  signal?.removeEventListener('abort', stop);
  stop();
  latencies.sort((a, b) => a - b);
  const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0);
  return {
    ...totals, seconds: (Date.now() - started) / 1000, p50: pct(0.5), p99: pct(0.99), max: pct(1),
    aborted: Boolean(signal?.aborted),
  };
}

/**
 * Drive http://127.0.0.1:port<path><id> with `concurrency` connections
 * (opened as connect() does); resolves the totals.  An abort of `signal`
 * (an AbortSignal) ends the run at once: requests in flight are dropped
 * and the totals so far come back with aborted: true (while connecting,
 * the promise rejects).
 */
async function run({ port, concurrency = 32, ping = '/', ...options }) {
  return (await connect({ port, concurrency, ping, signal: options.signal })).run(options);
}

module.exports = { run, connect, zipf };

if (require.main === module) {
  const [port, seconds = 4, concurrency = 32, items = 4000] = process.argv.slice(2, 6).map(Number);
  const path = process.argv[6] || '/item/';
  if (!port) {
    console.error('usage: node examples/loadgen.js PORT [seconds] [concurrency] [items] [path]');
    process.exit(2);
  }
  run({ port, seconds, concurrency, items, path }).then((r) => console.log(JSON.stringify(r)), (err) => {
    console.error(err);
    process.exit(1);
  });
}
