#!/usr/bin/env node
// near.js - kvshm/redis, the host-wide near cache, against plain ioredis and
// against a per-process client-side cache, on two simulated hosts sharing
// one private redis-server: gets served per second, and Redis reads per get.
//
// A "host" is a near cache name: its worker processes share one segment,
// as the processes of one machine would.  Each host runs WORKERS forked
// workers, and every worker runs LOOPS async loops at once (so ioredis has
// that many commands in flight) over the same workload: Zipf(0.99) keys
// u:<i> of N, 100-byte values, 99% get and 1% set through the system's own
// write path, so that writes on one host invalidate copies on the other.
// The systems run one after the other, each on a Redis that was flushed
// and loaded again (every one starts cold alike), each with fresh workers:
//
//   near   createNearCache per worker, one name per host
//   redis  plain ioredis: every get is a Redis GET
//   local  a Map per worker, kept coherent as redis-listener.js keeps the
//          near cache: its own tracking connection (BCAST PREFIX u:,
//          REDIRECT to itself), invalidations delete from the Map
//
// A run: WARM_MS of load that is not counted, then DURATION_MS counted.
// Each worker counts its gets and the Redis reads it issued; the near
// cache's reads are its host's counters (stats()), read by the host's first
// worker at the start and at the end of the counted window.  The server's
// own GET count (INFO commandstats) is shown beside, as a cross-check.
//
// --json: stdout carries only one JSON object (its "targets" array in the
// format bench/README.md defines); the text report goes to stderr.
//
//   node bench/node/near.js [--quick] [--json]
//   BENCH_NEAR_KEYS=100000 BENCH_NEAR_SECONDS=5 BENCH_NEAR_WORKERS=2 (per host)
//   BENCH_NEAR_LOOPS=32 (per worker) BENCH_NEAR_THETA=0.99 (0: uniform keys)
//   (internally: near.js --worker <JSON config>, one per worker)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { fork, execFileSync } = require('child_process');

const HOSTS = 2;
// The environment can change the setup, to see what a figure depends on
// (forked workers inherit it); the targets hold for the defaults only.
const setting = (name, dflt) => (process.env[name] === undefined ? dflt : Number(process.env[name]));
const WORKERS = setting('BENCH_NEAR_WORKERS', 2); // per host
const LOOPS = setting('BENCH_NEAR_LOOPS', 32); // concurrent async loops per worker
const THETA = setting('BENCH_NEAR_THETA', 0.99); // Zipf exponent; 0: uniform
const SET_SHARE = 0.01;
const VALUE_BYTES = 100;
const PREFIX = 'u:';
const CHANNEL = '__redis__:invalidate';
const WARM_MS = 1000;
const READY_TIMEOUT = 20_000; // ms for workers to connect (and a near host to sync)

const SYSTEMS = {
  near: 'kvshm near cache (host-wide)',
  redis: 'plain ioredis (every get a GET)',
  local: 'per-process Map + tracking',
};

// Targets (the near-cache issue): [id, name, figure(results), target, cmp, unit, note].
const TARGETS = [
  ['near_gets_over_ioredis', 'Near cache gets/s / plain ioredis, 2 hosts x 2 workers',
    (r) => r.near.getsPerSec / r.redis.getsPerSec, 5, '>=', 'x'],
  ['near_reads_over_local', 'Near cache Redis reads per get / per-process cache\'s',
    (r) => r.near.readsPerGet / r.local.readsPerGet, 0.5, '<=', 'x'],
  ['near_gets_over_local', 'Near cache gets/s / per-process cache',
    (r) => r.near.getsPerSec / r.local.getsPerSec, 0.5, '>=', 'x',
    'a per-process hit is a JS Map lookup'],
];

// ---- the key stream (both sides) -------------------------------------------

// mulberry32: a small seeded generator, so that every worker draws the same
// keys in every system's run.
function rng32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Zipf(theta) over ranks 0..n-1 (rank i has weight 1/(i+1)^theta): the CDF
// once, then a binary search for the first rank whose CDF passes u.
function zipfSampler(n, theta) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / Math.pow(i + 1, theta);
    cdf[i] = sum;
  }
  for (let i = 0; i < n; i++) cdf[i] /= sum;
  cdf[n - 1] = 1; // no u in [0, 1) may fall past the end by rounding
  return (u) => {
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

const keyOf = (rank) => PREFIX + rank; // rank 0 is the hottest key

// ---- the systems, as a worker sees them ------------------------------------
// Each is { get(key), set(key, value), ready(), counts(), close() }; get and
// set are async, as a server would call them.  counts() gives the Redis
// reads this worker issued and its cache hits, where the worker knows them.

function connect(cfg, extra = {}) {
  const Redis = require('ioredis');
  const c = new Redis({ host: '127.0.0.1', port: cfg.port, ...extra });
  c.on('error', () => { /* commands fail with it: the worker reports that */ });
  return c;
}

function nearSystem(cfg) {
  const { createNearCache } = require('../../addon/lib/redis');
  const near = createNearCache({ name: cfg.name, memory: '64mb', redis: { host: '127.0.0.1', port: cfg.port },
    prefixes: [PREFIX] });
  return {
    get: (key) => near.get(key),
    set: (key, value) => near.set(key, value),
    // Gets serve memory only once the host's listener is in sync; before,
    // every get would go to Redis and the warm-up would measure that.
    async ready() {
      const end = Date.now() + READY_TIMEOUT;
      while (near.stats().lag < 0) {
        if (Date.now() > end) throw new Error(`near cache ${cfg.name}: listener not in sync within ${READY_TIMEOUT} ms`);
        await sleep(10);
      }
    },
    counts: () => null, // the host's counters: hostStats
    hostStats: () => near.stats(),
    close: () => near.close(),
  };
}

function redisSystem(cfg) {
  const redis = connect(cfg);
  let reads = 0;
  return {
    async get(key) {
      reads++;
      const v = await redis.get(key);
      return v === null ? undefined : v;
    },
    async set(key, value) { await redis.set(key, value); },
    async ready() { await redis.ping(); },
    counts: () => ({ reads, hits: 0 }),
    close: () => redis.quit(),
  };
}

// What a user would write for a client-side cache in one process: a Map,
// and a connection doing what redis-listener.js does (CLIENT TRACKING BCAST
// with REDIRECT to itself, then SUBSCRIBE).  Like the near cache, it joins
// a read of the key already in flight, and drops a read's result when the
// key was invalidated while it was in flight; without that, a burst of
// misses on a hot key would make more reads than the near cache does for
// reasons other than sharing, and a late fill could keep a stale value.
function localSystem(cfg) {
  const redis = connect(cfg);
  const track = connect(cfg, { autoResubscribe: false });
  const map = new Map();
  const inflight = new Map(); // key -> { p, stale }
  let reads = 0;
  let hits = 0;
  const invalidate = (key) => {
    map.delete(key);
    const f = inflight.get(key);
    if (f) f.stale = true;
  };
  track.on('messageBuffer', (channel, msg) => {
    if (channel.toString() !== CHANNEL) return;
    if (msg === null) { // FLUSHALL
      map.clear();
      for (const f of inflight.values()) f.stale = true;
      return;
    }
    for (const k of Array.isArray(msg) ? msg : [msg]) invalidate(k.toString());
  });
  const fill = async (key, f) => {
    reads++;
    try {
      const v = await redis.get(key);
      if (v !== null && !f.stale) map.set(key, v);
      return v === null ? undefined : v;
    } finally {
      if (inflight.get(key) === f) inflight.delete(key);
    }
  };
  return {
    async get(key) {
      const v = map.get(key);
      if (v !== undefined) {
        hits++;
        return v;
      }
      const f = inflight.get(key);
      if (f && !f.stale) return f.p;
      const mine = { p: null, stale: false };
      inflight.set(key, mine);
      mine.p = fill(key, mine);
      return mine.p;
    },
    async set(key, value) {
      await redis.set(key, value);
      invalidate(key);
    },
    async ready() {
      const id = await track.client('ID');
      await track.client('TRACKING', 'ON', 'REDIRECT', id, 'BCAST', 'PREFIX', PREFIX);
      await track.subscribe(CHANNEL);
      await redis.ping();
    },
    counts: () => ({ reads, hits }),
    async close() {
      track.disconnect();
      await redis.quit();
    },
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- a worker ----------------------------------------------------------------
// The parent drives it over IPC: ready -> go (loops start: warm-up) -> start
// (the counted window opens) -> stop (it closes; the worker reports and exits).

// One loop: draw a key, get it (or, 1% of the time, set it), again.  Every
// value is VALUE_BYTES long, so a get that found nothing or garbage throws.
async function loop(sys, st, zipf, rnd, tag) {
  let n = 0;
  while (!st.stopping) {
    const key = keyOf(zipf(rnd()));
    if (rnd() < SET_SHARE) {
      await sys.set(key, `${tag}:${n++}:`.padEnd(VALUE_BYTES, 'w'));
      st.sets++;
    } else {
      const v = await sys.get(key);
      if (typeof v !== 'string' || v.length !== VALUE_BYTES) throw new Error(`get ${key}: ${String(v).slice(0, 40)}`);
      st.gets++;
    }
  }
}

// The worker's figures at one moment; the host's first worker adds the
// host's near-cache counters.
function snapshot(sys, st, isFirst) {
  return {
    t: performance.now(), gets: st.gets, sets: st.sets, cpu: process.cpuUsage(),
    counts: sys.counts(), host: isFirst && sys.hostStats ? sys.hostStats() : null,
  };
}

async function worker(cfg) {
  process.on('disconnect', () => process.exit(1)); // the parent went
  const send = (m) => process.send(m);
  try {
    const sys = { near: nearSystem, redis: redisSystem, local: localSystem }[cfg.system](cfg);
    await sys.ready();
    const st = { gets: 0, sets: 0, stopping: false };
    const zipf = zipfSampler(cfg.n, THETA);
    const isFirst = cfg.index === 0;
    let loops = null;
    let from = null;
    let lagMax = -1;
    let lagTimer = null;
    const fail = (err) => {
      send({ type: 'error', message: err.stack || String(err) });
      setImmediate(() => process.exit(1));
    };
    process.on('message', async (m) => {
      try {
        if (m === 'go') {
          loops = Array.from({ length: LOOPS }, (_, i) => loop(sys, st, zipf, rng32(cfg.seed * 1000 + i),
            `${cfg.host}.${cfg.index}.${i}`));
          loops.forEach((p) => p.catch(fail));
        } else if (m === 'start') {
          from = snapshot(sys, st, isFirst);
          // How far the host's listener fell behind (gets go to Redis past
          // maxLag); sampled, so a short stall can slip between samples.
          if (isFirst && sys.hostStats) {
            lagTimer = setInterval(() => { lagMax = Math.max(lagMax, sys.hostStats().lag); }, 20);
          }
        } else if (m === 'stop') {
          const to = snapshot(sys, st, isFirst);
          clearInterval(lagTimer);
          st.stopping = true;
          await Promise.all(loops);
          await sys.close();
          process.send({ type: 'result', from, to, lagMax }, () => process.exit(0));
        }
      } catch (err) {
        fail(err);
      }
    });
    send({ type: 'ready' });
  } catch (err) {
    send({ type: 'error', message: err.stack || String(err) });
    process.exit(1);
  }
}

// ---- the parent --------------------------------------------------------------

const children = new Set();

// Fork one worker: w.when(type) waits for a message of that type, w.done
// for its result; a worker that reports an error or dies early rejects both.
function spawnWorker(cfg) {
  const child = fork(__filename, ['--worker', JSON.stringify(cfg)], { stdio: ['ignore', 2, 2, 'ipc'] });
  children.add(child);
  const w = { child, cfg, waiting: new Map(), result: null };
  w.done = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m.type === 'error') reject(new Error(`worker ${cfg.host}.${cfg.index} (${cfg.system}): ${m.message}`));
      else if (m.type === 'result') w.result = m;
      const r = w.waiting.get(m.type);
      if (r) r();
    });
    // 'close', not 'exit': it comes after the last message too.
    child.on('close', (code, signal) => {
      children.delete(child);
      if (w.result) resolve(w.result);
      else reject(new Error(`worker ${cfg.host}.${cfg.index} (${cfg.system}) exited (${signal || code}) before its result`));
    });
  });
  w.done.catch(() => {}); // awaited below, or by Promise.race
  w.when = (type) => Promise.race([new Promise((r) => w.waiting.set(type, r)), w.done.then(() => {
    throw new Error(`worker ${cfg.host}.${cfg.index} ended before '${type}'`);
  })]);
  return w;
}

function killWorkers() {
  for (const c of children) c.kill('SIGKILL');
}

// FLUSHALL, then every key with its first value, in pipelines of 1000:
// each system starts from the same cold Redis.
async function loadRedis(client, n) {
  await client.flushall();
  const value = 'v'.repeat(VALUE_BYTES);
  for (let i = 0; i < n;) {
    const p = client.pipeline();
    for (let j = 0; j < 1000 && i < n; j++, i++) p.set(keyOf(i), value);
    for (const [err] of await p.exec()) if (err) throw err;
  }
  const size = await client.dbsize();
  if (size !== n) throw new Error(`Redis holds ${size} keys, not ${n}`);
}

// The server's own count of GET calls and its CPU seconds: what the clients
// cost Redis, independently of what they count themselves.
async function serverSample(client, pid) {
  const info = await client.info('commandstats');
  const m = /^cmdstat_get:calls=(\d+)/m.exec(info);
  return { gets: m ? Number(m[1]) : 0, cpu: processCpu(pid) };
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// CPU seconds of process pid (Linux: /proc/pid/stat), or NaN.
function processCpu(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime
  } catch {
    return NaN;
  }
}

// One system's run: fresh workers on a freshly loaded Redis; its figures.
async function runSystem(system, env) {
  await loadRedis(env.client, env.n);
  const workers = [];
  for (let h = 0; h < HOSTS; h++) {
    for (let i = 0; i < WORKERS; i++) {
      workers.push(spawnWorker({ system, host: h, index: i, seed: h * WORKERS + i + 1, port: env.port,
        n: env.n, name: env.hostNames[h] }));
    }
  }
  try {
    await Promise.all(workers.map((w) => w.when('ready')));
    for (const w of workers) w.child.send('go');
    await sleep(WARM_MS);
    const s0 = await serverSample(env.client, env.pid);
    for (const w of workers) w.child.send('start');
    await sleep(env.duration);
    for (const w of workers) w.child.send('stop');
    const s1 = await serverSample(env.client, env.pid);
    const results = await Promise.all(workers.map((w) => w.done));
    return summarize(system, workers, results, { gets: s1.gets - s0.gets, cpu: s1.cpu - s0.cpu });
  } finally {
    killWorkers();
  }
}

// Worker results -> the system's figures.  Rates are each worker's count
// over its own window, summed.
function summarize(system, workers, results, server) {
  let getsPerSec = 0;
  let setsPerSec = 0;
  let gets = 0;
  let sets = 0;
  let reads = 0;
  let hits = 0;
  let cpu = 0;
  let seconds = 0;
  const hosts = [];
  results.forEach((r, i) => {
    const s = (r.to.t - r.from.t) / 1000;
    const g = r.to.gets - r.from.gets;
    seconds = Math.max(seconds, s);
    gets += g;
    getsPerSec += g / s;
    sets += r.to.sets - r.from.sets;
    setsPerSec += (r.to.sets - r.from.sets) / s;
    cpu += (r.to.cpu.user + r.to.cpu.system - r.from.cpu.user - r.from.cpu.system) / 1e6 / s;
    if (r.to.counts) {
      reads += r.to.counts.reads - r.from.counts.reads;
      hits += r.to.counts.hits - r.from.counts.hits;
    }
    if (r.to.host) {
      const d = (k) => r.to.host[k] - r.from.host[k];
      hosts.push({ host: workers[i].cfg.host, nearHits: d('nearHits'), redisReads: d('redisReads'),
        invalidations: d('invalidations'), fillsRefused: d('fillsRefused'), flushes: d('flushes'),
        listenerStarts: d('listenerStarts'), delaySamples: r.to.host.delaySamples, delayP50: r.to.host.delayP50,
        delayP99: r.to.host.delayP99, delayMax: r.to.host.delayMax, lagMax: r.lagMax });
      reads += d('redisReads');
      hits += d('nearHits');
    }
  });
  return {
    system, name: SYSTEMS[system], seconds, gets, sets, getsPerSec, setsPerSec, reads, readsPerGet: reads / gets,
    readsPerSet: reads / sets,
    hitRatio: hits / gets, serverGets: server.gets, serverGetsPerGet: server.gets / gets,
    workerCpu: cpu, redisCpu: server.cpu / seconds, hosts,
  };
}

// ---- the report --------------------------------------------------------------

const log = (...a) => console.error(...a);

function fmt(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
}

function table(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), ...rows.map(line)].map((l) => `  ${l}`).join('\n');
}

function report(res) {
  const { near, redis, local } = res;
  log(table(['system', 'gets/s', 'sets/s', 'hit ratio', 'Redis reads/get', 'server GETs/get', 'reads/set',
    'worker CPUs', 'redis CPU'],
  [near, redis, local].map((r) => [r.name, fmt(r.getsPerSec), fmt(r.setsPerSec), r.hitRatio.toFixed(4),
    r.readsPerGet.toFixed(4), r.serverGetsPerGet.toFixed(4), r.readsPerSet.toFixed(2), r.workerCpu.toFixed(2),
    r.redisCpu.toFixed(2)])));
  log('\n  near cache, per host (over the counted window; delays since the host began):');
  log(table(['host', 'near hits', 'Redis reads', 'invalidations', 'fills refused', 'flushes', 'lag max ms',
    'delay p50 ms', 'p99 ms', 'max ms', 'samples'],
  near.hosts.map((h) => [`h${h.host}`, String(h.nearHits), String(h.redisReads), String(h.invalidations),
    String(h.fillsRefused), String(h.flushes), String(h.lagMax), h.delayP50.toFixed(2), h.delayP99.toFixed(2),
    h.delayMax.toFixed(2), String(h.delaySamples)])));
  log('\n  near cache / other:');
  log(table(['', 'gets/s', 'Redis reads/get'], [redis, local].map((r) => [r.name,
    `${(near.getsPerSec / r.getsPerSec).toFixed(2)}x`, `${(near.readsPerGet / r.readsPerGet).toFixed(3)}x`])));
}

function cpuModel() {
  return os.cpus()[0]?.model.trim() || 'unknown';
}

async function main(argv) {
  for (const a of argv) {
    if (!['--json', '--quick'].includes(a)) {
      console.error(`usage: near.js [--quick] [--json] (unknown: ${a})`);
      process.exit(2);
    }
  }
  const asJson = argv.includes('--json');
  const quick = argv.includes('--quick');
  const n = setting('BENCH_NEAR_KEYS', quick ? 10_000 : 100_000);
  const duration = setting('BENCH_NEAR_SECONDS', quick ? 1.5 : 5) * 1000;
  const command = ['node', path.relative(process.cwd(), __filename) || __filename, ...argv].join(' ');
  const t0 = Date.now();
  const machine = { nproc: os.cpus().length, cpu: cpuModel(), kernel: `${os.type()} ${os.release()} ${os.arch()}` };
  const { startRedisServer } = require('./redis-server');
  const kvshm = require('../../addon/lib');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nb${process.pid}-`));
  const hostNames = Array.from({ length: HOSTS }, (_, h) => `nb${process.pid}-h${h}`);
  let server = null;
  let client = null;
  const cleanup = async () => {
    killWorkers();
    if (client) client.disconnect();
    if (server) await server.stop();
    for (const name of hostNames) {
      try { kvshm.destroy(name); } catch { /* never created */ }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // Ctrl-C: the workers get it too; the parent still stops Redis and
  // removes the segments.
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => cleanup().finally(() => process.exit(130)));
  }
  const out = { program: 'near.js', quick, machine, command, node: process.version, targets: [] };
  try {
    server = await startRedisServer(dir);
    if (!server) {
      log('near.js: redis-server is not installed (scripts/deps.sh installs it): nothing to measure');
      if (asJson) console.log(JSON.stringify(out, null, 2));
      return;
    }
    const Redis = require('ioredis');
    client = new Redis({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: 0 });
    const redisVersion = /^redis_version:(\S+)/m.exec(await client.info('server'))?.[1] || '?';
    log(`kvshm near cache: ${HOSTS} hosts x ${WORKERS} workers x ${LOOPS} async loops, Zipf(${THETA}) over ` +
      `${n} keys ${PREFIX}<i> of ${VALUE_BYTES}-byte values, ${100 - SET_SHARE * 100}% get / ${SET_SHARE * 100}% set; ` +
      `${WARM_MS / 1000} s warm-up + ${duration / 1000} s counted per system`);
    log(`  machine: ${machine.nproc} x ${machine.cpu}, ${machine.kernel}; node ${process.version}, ` +
      `redis-server ${redisVersion} (private, port ${server.port}); command: ${command}`);
    const env = { client, port: server.port, pid: server.pid, n, duration, hostNames };
    const changed = Object.keys(process.env).filter((k) => k.startsWith('BENCH_NEAR_')).map((k) => `${k}=${process.env[k]}`);
    const res = {};
    for (const system of Object.keys(SYSTEMS)) {
      res[system] = await runSystem(system, env);
      log(`  ${SYSTEMS[system]}: ${fmt(res[system].getsPerSec)} gets/s`);
      if (system === 'near') for (const name of hostNames) kvshm.destroy(name);
    }
    log('');
    report(res);
    for (const [id, name, figureOf, target, cmp, unit, note] of TARGETS) {
      const figure = figureOf(res);
      const t = { id, name, figure, target, cmp, unit, pass: cmp === '<=' ? figure <= target : figure >= target };
      if (note) t.note = note;
      if (changed.length) t.note = `${t.note ? `${t.note}; ` : ''}setup changed: ${changed.join(' ')}`;
      out.targets.push(t);
    }
    log('\n  targets');
    log(table(['', 'figure', 'wanted', ''], out.targets.map((t) => [t.name, `${t.figure.toFixed(2)}x`,
      `${t.cmp} ${t.target}x`, `${t.pass ? 'PASS' : 'MISS'}${t.note ? `  (${t.note})` : ''}`])));
    Object.assign(out, { redis: redisVersion, setup: { hosts: HOSTS, workers: WORKERS, loops: LOOPS, keys: n,
      theta: THETA, setShare: SET_SHARE, valueBytes: VALUE_BYTES, warmMs: WARM_MS, durationMs: duration },
    systems: res, seconds: (Date.now() - t0) / 1000 });
    if (asJson) console.log(JSON.stringify(out, null, 2));
  } finally {
    await cleanup();
  }
}

if (process.argv[2] === '--worker') {
  worker(JSON.parse(process.argv[3]));
} else {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
