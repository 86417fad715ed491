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
//
// Ctrl-C, SIGTERM or SIGHUP stop it early and it still cleans up; each run
// also removes what a run killed outright (SIGKILL) left behind.
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
// Each run's cache is PREFIX-<pid>-<random>, so a run never meets what an
// earlier one left; KVSHM_DEMO_NAME fixes the name instead.
const PREFIX = process.env.KVSHM_DEMO_PREFIX || 'kvshm-demo';

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
  } catch (err) {
    return err.code === 'EPERM';
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wait up to ms for process pid to be gone; true if it is. */
async function gone(pid, ms) {
  for (let t = 0; pid && alive(pid) && t < ms; t += 20) await sleep(20);
  return !pid || !alive(pid);
}

/** The pids (but ours) of the processes that have cache `name`'s segment mapped. */
function mappers(name) {
  const seg = `/dev/shm/kvshm.${name}`;
  let ino;
  try {
    ino = String(fs.statSync(seg).ino);
  } catch {
    return [];
  }
  const pids = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let maps;
    try {
      maps = fs.readFileSync(`/proc/${d}/maps`, 'latin1');
    } catch {
      continue; // gone, or another user's
    }
    // address perms offset dev inode path
    if (maps.split('\n').some((l) => l.includes(seg) && l.split(/\s+/)[4] === ino)) pids.push(Number(d));
  }
  return pids;
}

/**
 * Stop a demo cache and remove its directory: destroy cache `name` if given
 * (its reaper writes what is dirty and exits at its next tick; SIGTERM if it
 * has not within 3 s), then remove dir.  A process that still has the cache
 * open keeps using it until it closes it.
 */
async function teardown(name, reaper, dir) {
  if (name) kvshm.destroy(name);
  if (!(await gone(reaper, 3000))) {
    process.kill(reaper, 'SIGTERM');
    await gone(reaper, 5000);
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

/**
 * Remove what earlier runs left when they were killed before they could
 * clean up (SIGKILL, a crash): every cache named PREFIX-* (or the fixed
 * name) that no process has mapped but its own reaper, the reaper, and the
 * run's directory in the temporary directory.  A fixed name still in use by
 * a live run is an error.
 */
async function removeLeftovers(fixed) {
  const names = fixed ? [fixed] : fs.readdirSync('/dev/shm')
    .filter((f) => f.startsWith(`kvshm.${PREFIX}-`)).map((f) => f.slice('kvshm.'.length));
  for (const name of names) {
    let c;
    try {
      c = kvshm.open(name, { readonly: true, create: false, reaper: false });
    } catch {
      continue; // gone meanwhile, another user's, or not a cache
    }
    const reaper = c.stats().reaperPid;
    const dir = c.sqlitePath && path.dirname(c.sqlitePath);
    c.close();
    const users = mappers(name).filter((pid) => pid !== reaper);
    if (users.length) {
      if (fixed) throw new Error(`cache '${name}' is in use by pid ${users.join(', ')}: set another KVSHM_DEMO_NAME`);
      continue; // a live run
    }
    // Only a directory this demo made: <tmpdir>/<name>-XXXXXX.
    const ours = dir && path.dirname(dir) === os.tmpdir() && path.basename(dir).startsWith(`${name}-`);
    await teardown(name, reaper, ours ? dir : null);
    console.log(`demo: removed what an earlier run left: cache '${name}'${ours ? `, ${dir}` : ''}`);
  }
}

async function primary() {
  // Ctrl-C (SIGINT to the whole job), kill (SIGTERM) and a closed terminal
  // (SIGHUP) stop the load, the workers and the cache's reaper, remove the
  // cache and its directory, then end the demo by that same signal.
  let stoppedBy = null;
  const abort = new AbortController();
  const onSignal = (sig) => {
    if (stoppedBy) {
      console.error(`demo: ${sig}: still cleaning up (a few seconds at most)`);
      return;
    }
    stoppedBy = sig;
    console.error(`\ndemo: ${sig}: stopping and cleaning up`);
    abort.abort();
  };
  const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const sig of SIGNALS) process.on(sig, onSignal);
  // Output to a terminal that hung up fails: it must not stop the cleanup.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const aborted = new Promise((resolve, reject) => abort.signal.addEventListener('abort', () => {
    reject(Object.assign(new Error(`stopped by ${stoppedBy}`), { stopped: true }));
  }));
  aborted.catch(() => {});

  const { run } = require('./loadgen');
  const fixed = process.env.KVSHM_DEMO_NAME;
  const NAME = fixed || `${PREFIX}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  await removeLeftovers(fixed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${NAME}-`));
  const sqlite = path.join(dir, 'pages.db');
  const workers = [];
  const watchdog = setTimeout(() => {
    console.error('demo: did not finish in time; stopping');
    process.exitCode = 1;
    abort.abort();
    setTimeout(() => process.exit(1), 30000).unref(); // if even that hangs
  }, (SECONDS + 60) * 1000);
  watchdog.unref();

  let cache = null;
  try {
    // 1 MiB of shared memory for pages of about 800 bytes: the hot ones stay
    // in memory, the rest are evicted to SQLite and read back from there.
    cache = kvshm.open(NAME, { memory: '1mb', sqlite });
    const port = await freePort();
    console.log(`kvshm demo: ${WORKERS} cluster workers on http://127.0.0.1:${port}, one shared cache ` +
      `'${NAME}' (1 MiB of shared memory + ${sqlite}), ${SECONDS} s of load, ${CONCURRENCY} connections, ${ITEMS} items`);
    cluster.setupPrimary({ exec: __filename });
    for (let i = 1; i <= WORKERS && !abort.signal.aborted; i++) {
      workers.push(cluster.fork({ DEMO_ID: `w${i}`, DEMO_CACHE: NAME, DEMO_PORT: String(port) }));
    }
    await Promise.race([aborted, Promise.all(workers.map((w) => new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('exit', (code) => reject(new Error(`worker exited with ${code} before listening`)));
    })))]);

    console.log(`load: ${SECONDS} s (Ctrl-C stops the demo and cleans up)`);
    const load = await run({ port, seconds: SECONDS, concurrency: CONCURRENCY, items: ITEMS, signal: abort.signal });
    if (load.aborted) await aborted;

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
  } catch (err) {
    if (!err.stopped) throw err;
  } finally {
    // Stopped: the workers go at once (after Ctrl-C they are mostly gone
    // already); otherwise they finish their requests first.
    await Promise.all(workers.map((w) => new Promise((resolve) => {
      if (w.isDead()) return resolve();
      w.once('exit', resolve);
      if (stoppedBy) w.process.kill('SIGTERM');
      else w.disconnect();
      setTimeout(() => w.process.kill('SIGKILL'), 5000).unref();
    })));
    let reaper = 0;
    if (cache) {
      reaper = cache.stats().reaperPid;
      cache.close();
    }
    await teardown(cache ? NAME : null, reaper, dir); // never a cache we did not open
    clearTimeout(watchdog);
    console.log(`\ncleaned up: workers stopped, cache '${NAME}' destroyed, ${dir} removed`);
  }
  if (stoppedBy) {
    for (const sig of SIGNALS) process.removeListener(sig, onSignal);
    process.kill(process.pid, stoppedBy);
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
