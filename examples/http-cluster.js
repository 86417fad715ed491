#!/usr/bin/env node
// http-cluster.js - why one cache for the whole host: an HTTP server on
// several cluster workers whose pages come from a slow loader (loadItem: a
// "database query" of 20-50 ms, then the item's JSON), driven by a load
// generator (loadgen.js) on 127.0.0.1 with the same load on two caches at
// once (so that both get the same machine):
//
//   kvshm  /kvshm/item/<id>: cache.getOrSet(key, loadItem, { ttl }) on ONE
//          kvshm cache shared by every worker (1 MiB of shared memory, a
//          SQLite file for what does not fit); on a miss, one process on the
//          host runs the loader and the others wait for its value.
//   Map    /map/item/<id>: a Map in each worker with the same TTL, concurrent
//          misses for a key sharing one load within the worker: the best a
//          cache per process can do.
//
// Ids are drawn Zipf-skewed from a few hundred; values expire after the
// TTL and are loaded again.  The demo prints, side by side, requests/s,
// latency p50/p99, and the loader's calls: counted exactly (incr in the
// shared cache), per distinct key, and how many were duplicates (a call for
// a key whose value another call was loading, or had loaded less than the
// TTL ago).  With kvshm the loader runs once per key per TTL window on the
// host; with a Map per worker, once per key per TTL window per worker.
//
//   node examples/http-cluster.js        (make demo)
//   DEMO_SECONDS=5 DEMO_WORKERS=4 DEMO_CONCURRENCY=32 (connections per
//   mode) DEMO_ITEMS=300 (ids) DEMO_TTL=2000 (ms) KVSHM_DEMO_NAME=<name>
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

function knob(name, fallback) {
  const v = Number(process.env[name] || fallback);
  if (!(v > 0) || !Number.isFinite(v)) throw new Error(`${name} must be a positive number, got '${process.env[name]}'`);
  return v;
}
const SECONDS = knob('DEMO_SECONDS', 5);
const WORKERS = knob('DEMO_WORKERS', 4);
const CONCURRENCY = knob('DEMO_CONCURRENCY', 32);
const ITEMS = knob('DEMO_ITEMS', 300);
const TTL = Math.round(knob('DEMO_TTL', 2000));
// Each run's cache is PREFIX-<pid>-<random>, so a run never meets what an
// earlier one left; KVSHM_DEMO_NAME fixes the name instead.
const PREFIX = process.env.KVSHM_DEMO_PREFIX || 'kvshm-demo';

const MODES = ['kvshm', 'map'];
const LABEL = { kvshm: 'kvshm getOrSet', map: 'Map per worker' };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The "database": a query that takes 20-50 ms (a timer: it waits, as a
// query does, without using the CPU), then the item's JSON.
async function loadItem(key) {
  const id = Number(key.slice(key.indexOf(':') + 1));
  await sleep(20 + Math.random() * 30);
  return JSON.stringify({
    id,
    name: `Item ${id}`,
    price: ((id * 7919) % 10000) / 100,
    stock: (id * 31) % 97,
    tags: ['demo', `group-${id % 7}`, id % 2 ? 'odd' : 'even'],
    description: 'lorem ipsum '.repeat(40),
    loadedBy: process.pid,
    loadedAt: new Date().toISOString(),
  });
}

/**
 * The per-worker cache to compare with: a Map whose entries expire after
 * ttl ms like kvshm's, where concurrent misses for a key share one load.
 * What it cannot do is share with the other workers.
 */
function mapCache(loader, ttl) {
  const entries = new Map(); // key -> { value, expires }
  const inflight = new Map(); // key -> the promise of its load
  return (key) => {
    const e = entries.get(key);
    if (e && Date.now() < e.expires) return Promise.resolve(e.value);
    let p = inflight.get(key);
    if (!p) {
      p = loader(key).then((value) => {
        entries.set(key, { value, expires: Date.now() + ttl });
        return value;
      }).finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    return p;
  };
}

function worker() {
  const wid = process.env.DEMO_ID;
  const cache = kvshm.open(process.env.DEMO_CACHE); // attach: the primary created it
  // Every loader call: counted in the shared cache (exact, host-wide), and
  // logged as [key, start, end] for the primary, which asks for the log
  // after each mode's run.
  const calls = { kvshm: [], map: [] };
  const counted = (mode) => async (key) => {
    cache.incr(`demo:${mode}:${wid}:loads`);
    const start = Date.now();
    const value = await loadItem(key);
    calls[mode].push([key, start, Date.now()]);
    return value;
  };
  const loadShared = counted('kvshm');
  const get = {
    kvshm: (key) => cache.getOrSet(key, loadShared, { ttl: TTL }),
    map: mapCache(counted('map'), TTL),
  };
  const server = http.createServer((req, res) => {
    const m = /^\/(kvshm|map)\/item\/(\d+)$/.exec(req.url);
    if (!m) {
      res.writeHead(req.url === '/ping' ? 200 : 404).end(); // /ping: the load generator connecting
      return;
    }
    const mode = m[1];
    get[mode](`item:${m[2]}`).then((body) => {
      cache.incr(`demo:${mode}:${wid}:requests`);
      res.writeHead(200, { 'content-type': 'application/json', 'x-worker': wid });
      res.end(body);
    }, (err) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err}\n`);
    });
  });
  server.keepAliveTimeout = 10000;
  server.listen(Number(process.env.DEMO_PORT), '127.0.0.1', () => process.send({ listening: wid }));
  process.on('message', (msg) => {
    if (msg && MODES.includes(msg.report)) process.send({ report: msg.report, calls: calls[msg.report] });
  });
  process.on('disconnect', () => {
    server.close(() => {
      cache.close();
      process.exit(0);
    });
    server.closeAllConnections();
  });
}

/** Every worker's log of one mode's loader calls, [key, start, end] each. */
function collectCalls(workers, mode) {
  return Promise.all(workers.map((w) => new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (!msg || msg.report !== mode) return;
      w.off('message', onMessage);
      w.off('exit', onExit);
      resolve(msg.calls);
    };
    const onExit = (code) => reject(new Error(`worker ${w.id} exited with ${code} before reporting`));
    w.on('message', onMessage);
    w.once('exit', onExit);
    w.send({ report: mode });
  }))).then((lists) => lists.flat());
}

/**
 * What one mode's loader calls did: how many, for how many distinct keys,
 * the most for one key, and the duplicates: calls that started while the
 * key's value was being loaded by another call, or had been loaded less
 * than ttl ms before (start < that call's end + ttl: the value is stored
 * with the TTL after its call ends, so it is fresh until then at least).
 * Date.now() is the clock kvshm's expiry uses (CLOCK_REALTIME, ms), and
 * every process on the host reads the same one.
 */
function analyse(calls, ttl) {
  const byKey = new Map();
  for (const c of calls) {
    const list = byKey.get(c[0]);
    if (list) list.push(c);
    else byKey.set(c[0], [c]);
  }
  let duplicates = 0;
  let most = 0;
  for (const list of byKey.values()) {
    list.sort((a, b) => a[1] - b[1]);
    most = Math.max(most, list.length);
    let freshUntil = -Infinity;
    for (const [, start, end] of list) {
      if (start < freshUntil) duplicates++;
      freshUntil = Math.max(freshUntil, end + ttl);
    }
  }
  return { calls: calls.length, keys: byKey.size, most, duplicates };
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

  const { connect } = require('./loadgen');
  const fixed = process.env.KVSHM_DEMO_NAME;
  const NAME = fixed || `${PREFIX}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  await removeLeftovers(fixed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${NAME}-`));
  const sqlite = path.join(dir, 'pages.db');
  const workers = [];
  const clients = []; // the load generator's connections, for each mode
  const watchdog = setTimeout(() => {
    console.error('demo: did not finish in time; stopping');
    process.exitCode = 1;
    abort.abort();
    setTimeout(() => process.exit(1), 30000).unref(); // if even that hangs
  }, (SECONDS + 60) * 1000);
  watchdog.unref();

  let cache = null;
  try {
    // 1 MiB of shared memory: a few hundred pages of about 800 bytes fit;
    // with more ids (DEMO_ITEMS) the rest are evicted to SQLite and read
    // back from there.
    cache = kvshm.open(NAME, { memory: '1mb', sqlite });
    const port = await freePort();
    console.log(`kvshm demo: ${WORKERS} cluster workers on http://127.0.0.1:${port}; their pages come from loadItem(id), a`);
    console.log(`  "database query" of 20-50 ms, cached for ${TTL} ms (the TTL) in one of two ways:`);
    console.log(`  ${LABEL.kvshm}  /kvshm/item/<id>: cache.getOrSet(key, loadItem, { ttl: ${TTL} }),`);
    console.log(`  ${''.padEnd(LABEL.kvshm.length)}  on one shared cache '${NAME}' (1 MiB of shared memory + ${sqlite})`);
    console.log(`  ${LABEL.map}  /map/item/<id>: a Map in each worker, same TTL, concurrent misses coalesced within the worker`);
    cluster.setupPrimary({ exec: __filename });
    for (let i = 1; i <= WORKERS && !abort.signal.aborted; i++) {
      workers.push(cluster.fork({ DEMO_ID: `w${i}`, DEMO_CACHE: NAME, DEMO_PORT: String(port) }));
    }
    await Promise.race([aborted, Promise.all(workers.map((w) => new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('exit', (code) => reject(new Error(`worker exited with ${code} before listening`)));
    })))]);

    // Both loads at once, on the same workers: each mode gets the same
    // machine (JIT warm-up, the CPU, whatever else runs on the host), which
    // one run after the other would not give it.  Each mode's connections
    // are opened one after the other, so that every worker gets as many of
    // each mode's.
    for (let m = 0; m < MODES.length; m++) {
      const opening = connect({ port, concurrency: CONCURRENCY, ping: '/ping', signal: abort.signal });
      clients.push(await Promise.race([aborted, opening]));
    }
    console.log(`load: the same on both at once for ${SECONDS} s, ${CONCURRENCY} connections each, ids 1-${ITEMS} ` +
      'Zipf-skewed (Ctrl-C stops the demo and cleans up)');
    const loads = await Promise.all(MODES.map((mode, m) => clients[m].run({
      seconds: SECONDS, items: ITEMS, path: `/${mode}/item/`, signal: abort.signal,
    })));
    if (loads.some((l) => l.aborted)) await aborted;
    const result = {};
    for (const [m, mode] of MODES.entries()) {
      const calls = await Promise.race([aborted, collectCalls(workers, mode)]);
      // Counted in the shared cache with incr, per worker.
      const counts = workers.map((w, i) => ({
        requests: cache.get(`demo:${mode}:w${i + 1}:requests`) || 0,
        loads: cache.get(`demo:${mode}:w${i + 1}:loads`) || 0,
      }));
      const sum = (what) => counts.reduce((n, c) => n + c[what], 0);
      result[mode] = { load: loads[m], counts, requests: sum('requests'), loads: sum('loads'), ...analyse(calls, TTL) };
    }
    const [a, b] = MODES.map((mode) => result[mode]);

    const num = (n, w) => String(n).padStart(w);
    console.log('\nper worker (requests answered and loader calls, counted in the shared cache with incr):');
    console.log(`  ${''.padEnd(15)} ${LABEL.kvshm.padStart(18)} ${LABEL.map.padStart(20)}`);
    console.log(`  ${'worker'.padEnd(6)} ${'pid'.padStart(8)} ${'requests'.padStart(9)} ${'loads'.padStart(8)}` +
      `   ${'requests'.padStart(9)} ${'loads'.padStart(8)}`);
    workers.forEach((w, i) => {
      console.log(`  ${`w${i + 1}`.padEnd(6)} ${num(w.process.pid, 8)} ${num(a.counts[i].requests, 9)} ` +
        `${num(a.counts[i].loads, 8)}   ${num(b.counts[i].requests, 9)} ${num(b.counts[i].loads, 8)}`);
    });
    console.log(`  ${'total'.padEnd(15)} ${num(a.requests, 9)} ${num(a.loads, 8)}   ${num(b.requests, 9)} ${num(b.loads, 8)}`);

    const ms = (x) => `${x.toFixed(2)} ms`;
    const rows = [
      ['requests answered', (r) => r.load.requests],
      ['requests/s', (r) => Math.round(r.load.requests / r.load.seconds)],
      ['latency p50', (r) => ms(r.load.p50)],
      ['latency p99', (r) => ms(r.load.p99)],
      ['errors', (r) => r.load.errors],
      ['loader calls', (r) => r.loads],
      ['distinct keys loaded', (r) => r.keys],
      ['loader calls per key', (r) => (r.calls / (r.keys || 1)).toFixed(2)],
      ['most calls for one key', (r) => r.most],
      ['duplicate calls', (r) => r.duplicates],
    ];
    console.log(`\n  ${''.padEnd(24)} ${LABEL.kvshm.padStart(16)} ${LABEL.map.padStart(16)}`);
    for (const [what, f] of rows) console.log(`  ${what.padEnd(24)} ${num(f(a), 16)} ${num(f(b), 16)}`);
    console.log('\n  duplicate calls: calls for a key whose value another call, in any worker, was loading or had');
    console.log('  loaded less than the TTL before.');
    console.log(`  ${LABEL.kvshm}: ${a.duplicates} duplicates: the loader ran once per key per TTL window for the whole host.`);
    console.log(`  ${LABEL.map}: ${b.duplicates} of ${b.calls} calls were duplicates: each of the ${WORKERS} workers ` +
      'loaded for itself what');
    console.log(`  the others had, ${(b.calls / (b.keys || 1) / (a.calls / (a.keys || 1) || 1)).toFixed(1)}x as many ` +
      'loader calls per key as kvshm.');
    for (const mode of MODES) {
      const r = result[mode];
      if (r.calls !== r.loads) {
        console.log(`  (${LABEL[mode]}: the workers logged ${r.calls} loader calls, incr counted ${r.loads})`);
        process.exitCode = 1;
      }
      if (r.requests !== r.load.requests) {
        console.log(`  (${LABEL[mode]}: the workers answered ${r.requests} requests, the load generator counted ${r.load.requests})`);
      }
      if (r.load.errors) process.exitCode = 1;
    }

    const st = cache.stats();
    const store = cache.storeStats();
    console.log('\ncache stats (the shared cache: kvshm mode\'s pages, getOrSet\'s leases, the counters):');
    console.log(`  entries in memory  ${st.entries} (${st.bytes} bytes, ${st.slotsUsed}/${st.slotsUsed + st.slotsFree} slots)`);
    console.log(`  gets               ${st.hits} hits in memory, ${st.misses} misses, of which ${st.storeHits} found in SQLite`);
    console.log(`  sets               ${st.sets} (incr included)`);
    console.log(`  evictions          ${st.evictions} to SQLite, ${st.expirations} expired, ${st.repairs} repairs, ${st.corrupt} corrupt`);
    console.log(`  SQLite             ${store.rows} rows, ${store.fileBytes} bytes, ${st.dirty} entries not yet written`);
    console.log(`  reaper             pid ${st.reaperPid || 'none'}, started ${st.reaperStarts} time(s)`);
  } catch (err) {
    if (!err.stopped) throw err;
  } finally {
    for (const c of clients) c.close();
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
