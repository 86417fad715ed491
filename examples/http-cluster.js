#!/usr/bin/env node
// http-cluster.js - kvshm's main job, end to end: an HTTP server on several
// cluster workers that cache their responses in ONE shared kvshm cache,
// backed by a SQLite file for what does not fit in memory.  A load
// generator (loadgen.js) drives it on 127.0.0.1 for a few seconds; then the
// demo prints each worker's requests, hits and misses (counted in the
// cache itself with incr), and the cache's stats, and cleans up.
//
//   node examples/http-cluster.js        (make demo-node)
//   DEMO_SECONDS=4 DEMO_WORKERS=4 DEMO_CONCURRENCY=32 DEMO_ITEMS=4000
//
// A response rendered by one worker is a hit for every other worker: that
// is the point of sharing one cache instead of one per process.
'use strict';
const cluster = require('cluster');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const kvshm = require('../addon/lib');

const SECONDS = Number(process.env.DEMO_SECONDS || 4);
const WORKERS = Number(process.env.DEMO_WORKERS || 4);
const CONCURRENCY = Number(process.env.DEMO_CONCURRENCY || 32);
const ITEMS = Number(process.env.DEMO_ITEMS || 4000);
const NAME = process.env.KVSHM_DEMO_NAME || `kvshm-demo-${process.pid}`;

// The "backend": half a millisecond of work per page.
function render(id) {
  let h = crypto.createHash('sha256').update(`item ${id}`);
  for (let i = 0; i < 100; i++) h = crypto.createHash('sha256').update(h.digest());
  return JSON.stringify({
    id: Number(id),
    title: `Item ${id}`,
    digest: h.digest('hex'),
    renderedBy: process.pid,
    renderedAt: new Date().toISOString(),
    body: 'lorem ipsum '.repeat(40),
  });
}

function worker() {
  const id = process.env.DEMO_ID;
  const cache = kvshm.open(process.env.DEMO_CACHE); // attach: the primary created it
  const server = http.createServer((req, res) => {
    const m = /^\/item\/(\d+)$/.exec(req.url);
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    cache.incr(`demo:${id}:requests`);
    const key = `page:${m[1]}`;
    let page = cache.get(key);
    const hit = page !== undefined;
    if (hit) {
      cache.incr(`demo:${id}:hits`);
    } else {
      cache.incr(`demo:${id}:misses`);
      page = render(m[1]);
      cache.set(key, page, { ttl: 60000 });
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-cache': hit ? 'hit' : 'miss', 'x-worker': id });
    res.end(page);
  });
  server.keepAliveTimeout = 10000;
  server.listen(Number(process.env.DEMO_PORT), '127.0.0.1', () => process.send({ listening: id }));
  process.on('disconnect', () => {
    server.close(() => {
      cache.close();
      process.exit(0);
    });
    server.closeAllConnections();
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function primary() {
  const { run } = require('./loadgen');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${NAME}-`));
  const sqlite = path.join(dir, 'pages.db');
  const workers = [];
  const watchdog = setTimeout(() => {
    console.error('demo: did not finish in time; stopping');
    for (const w of workers) w.process.kill('SIGKILL');
    kvshm.destroy(NAME);
    process.exit(1);
  }, (SECONDS + 60) * 1000);
  watchdog.unref();

  // 1 MiB of shared memory for pages of about 800 bytes: the hot ones stay
  // in memory, the rest are evicted to SQLite and read back from there.
  const cache = kvshm.open(NAME, { memory: '1mb', sqlite });
  try {
    const port = await freePort();
    console.log(`kvshm demo: ${WORKERS} cluster workers on http://127.0.0.1:${port}, one shared cache ` +
      `'${NAME}' (1 MiB of shared memory + ${sqlite}), ${SECONDS} s of load, ${CONCURRENCY} connections, ${ITEMS} items`);
    cluster.setupPrimary({ exec: __filename });
    for (let i = 1; i <= WORKERS; i++) {
      workers.push(cluster.fork({ DEMO_ID: `w${i}`, DEMO_CACHE: NAME, DEMO_PORT: String(port) }));
    }
    await Promise.all(workers.map((w) => new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('exit', (code) => reject(new Error(`worker exited with ${code} before listening`)));
    })));

    const load = await run({ port, seconds: SECONDS, concurrency: CONCURRENCY, items: ITEMS });

    console.log('\nper worker (counted in the shared cache with incr):');
    console.log('  worker      pid  requests      hits    misses  hit rate');
    const sum = { requests: 0, hits: 0, misses: 0 };
    workers.forEach((w, i) => {
      const id = `w${i + 1}`;
      const n = {};
      for (const what of ['requests', 'hits', 'misses']) {
        n[what] = cache.get(`demo:${id}:${what}`) || 0;
        sum[what] += n[what];
      }
      console.log(`  ${id.padEnd(6)} ${String(w.process.pid).padStart(8)} ${String(n.requests).padStart(9)} ` +
        `${String(n.hits).padStart(9)} ${String(n.misses).padStart(9)} ${(100 * n.hits / (n.requests || 1)).toFixed(1).padStart(8)}%`);
    });
    console.log(`  ${'total'.padEnd(15)} ${String(sum.requests).padStart(9)} ${String(sum.hits).padStart(9)} ` +
      `${String(sum.misses).padStart(9)} ${(100 * sum.hits / (sum.requests || 1)).toFixed(1).padStart(8)}%`);
    console.log(`\nload generator: ${load.requests} requests in ${load.seconds.toFixed(1)} s ` +
      `(${Math.round(load.requests / load.seconds)} req/s), ${load.errors} errors, ` +
      `latency p50 ${load.p50.toFixed(2)} ms, p99 ${load.p99.toFixed(2)} ms`);
    if (sum.requests !== load.requests + load.errors && sum.requests !== load.requests) {
      console.log(`  (workers counted ${sum.requests} requests, the load generator ${load.requests})`);
    }

    const st = cache.stats();
    const store = cache.storeStats();
    console.log('\ncache stats:');
    console.log(`  entries in memory  ${st.entries} (${st.bytes} bytes, ${st.slotsUsed}/${st.slotsUsed + st.slotsFree} slots)`);
    console.log(`  gets               ${st.hits} hits in memory, ${st.misses} misses, of which ${st.storeHits} found in SQLite`);
    console.log(`  sets               ${st.sets} (incr included)`);
    console.log(`  evictions          ${st.evictions} to SQLite, ${st.expirations} expired, ${st.repairs} repairs, ${st.corrupt} corrupt`);
    console.log(`  SQLite             ${store.rows} rows, ${store.fileBytes} bytes, ${st.dirty} entries not yet written`);
    console.log(`  reaper             pid ${st.reaperPid || 'none'}, started ${st.reaperStarts} time(s)`);
    if (load.errors) process.exitCode = 1;
  } finally {
    await Promise.all(workers.map((w) => new Promise((resolve) => {
      if (w.isDead()) return resolve();
      w.once('exit', resolve);
      w.disconnect();
      setTimeout(() => w.process.kill('SIGKILL'), 5000).unref();
    })));
    const reaper = cache.stats().reaperPid;
    cache.destroy();
    // The reaper writes what is dirty and exits once the cache is gone.
    for (let i = 0; i < 100 && reaper && alive(reaper); i++) await new Promise((r) => setTimeout(r, 20));
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`\ncleaned up: workers stopped, cache '${NAME}' destroyed, ${dir} removed`);
  }
}

if (cluster.isPrimary) {
  primary().catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  worker();
}
