#!/usr/bin/env node
// bench.js - kvshm's get and set against what a Node user would pick
// instead: a plain Map (the in-process ceiling, not shared), lmdb-js (the
// fastest shared store), Redis through ioredis (awaited and pipelined), and
// a child process over a pipe (the first design in DESIGN.md).
//
// Every contender runs the same loop: key i is 'key:' + i zero-padded to 16
// bytes, made fresh in the loop (as a server gets keys from requests), over
// BENCH_KEYS distinct keys; values are one 100-byte string.  In-process
// contenders run in BENCH_RUNS interleaved rounds and each figure is its
// best round; IPC contenders run BENCH_IPC_OPS operations, best of 2.
// Results are printed as ops/s and as ratios.
//
//   node bench/node/bench.js [--json]
//   BENCH_KEYS=100000 BENCH_OPS=1000000 BENCH_RUNS=5 BENCH_IPC_OPS=20000
//   BENCH_CLOCK=cpu (time in-process contenders by CPU time, not wall time)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const kvshm = require('../../addon/lib');
const { startRedisServer } = require('./redis-server');

const KEYS = Number(process.env.BENCH_KEYS || 100000);
const OPS = Number(process.env.BENCH_OPS || 1000000);
const RUNS = Number(process.env.BENCH_RUNS || 5);
const IPC_OPS = Number(process.env.BENCH_IPC_OPS || 20000);
const PIPELINE = 1000;
const VALUE = 'v'.repeat(100);
const asJson = process.argv.includes('--json');

// The key loop every contender shares: 16 bytes, built per operation.
function key(i) {
  return `key:${String(i % KEYS).padStart(12, '0')}`;
}

const log = (...a) => { if (!asJson) console.log(...a); };

// BENCH_CLOCK=cpu times in-process contenders by this process's CPU time
// instead of wall time: steadier on a machine that other work shares.
const CPU_CLOCK = process.env.BENCH_CLOCK === 'cpu';

// Best ops/s of `runs` runs of fn(n) (sync or async).
async function measure(fn, n, runs, cpu = false) {
  let best = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    await fn(n);
    const c = process.cpuUsage(c0);
    const ns = cpu ? (c.user + c.system) * 1000 : Number(process.hrtime.bigint() - t0);
    best = Math.max(best, (n * 1e9) / ns);
  }
  return best;
}

function check(v) {
  if (v === undefined || v.length !== 100) throw new Error(`bad value ${v}`);
}

// ---- contenders -----------------------------------------------------------

function mapContender() {
  const m = new Map();
  return {
    name: 'Map (in-process, not shared)',
    set(n) { for (let i = 0; i < n; i++) m.set(key(i), VALUE); },
    get(n) {
      let len = 0;
      for (let i = 0; i < n; i++) len += m.get(key(i)).length;
      if (len !== n * 100) throw new Error('Map lost values');
    },
    close() {},
  };
}

function kvshmContender() {
  const name = `nd${process.pid}-bench`;
  const c = kvshm.open(name, { memory: '64mb' });
  return {
    name: 'kvshm',
    set(n) { for (let i = 0; i < n; i++) c.set(key(i), VALUE); },
    get(n) {
      let len = 0;
      for (let i = 0; i < n; i++) len += c.get(key(i)).length;
      if (len !== n * 100) throw new Error('kvshm lost values');
    },
    close() { c.destroy(); },
    stats: () => c.stats(),
  };
}

function lmdbContender(dir) {
  const { open } = require('lmdb');
  const db = open({ path: path.join(dir, 'lmdb'), noSync: true, encoding: 'string' });
  return {
    name: 'lmdb-js (put batched async, get sync)',
    async set(n) {
      let last;
      for (let i = 0; i < n; i++) last = db.put(key(i), VALUE);
      await last;
    },
    get(n) {
      let len = 0;
      for (let i = 0; i < n; i++) len += db.get(key(i)).length;
      if (len !== n * 100) throw new Error('lmdb lost values');
    },
    close() { return db.close(); },
  };
}

async function startRedis(dir) {
  const server = await startRedisServer(dir);
  if (!server) return null;
  const Redis = require('ioredis');
  const client = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true,
    maxRetriesPerRequest: 0 });
  await client.connect();
  return {
    client,
    async stop() {
      client.disconnect();
      await server.stop();
    },
  };
}

function redisContenders(client) {
  return [{
    name: 'Redis via ioredis (awaited)',
    ipc: true,
    async set(n) { for (let i = 0; i < n; i++) await client.set(key(i), VALUE); },
    async get(n) { for (let i = 0; i < n; i++) check(await client.get(key(i))); },
  }, {
    name: `Redis via ioredis (pipelined x${PIPELINE})`,
    ipc: true,
    async set(n) {
      for (let i = 0; i < n;) {
        const p = client.pipeline();
        for (let j = 0; j < PIPELINE && i < n; j++, i++) p.set(key(i), VALUE);
        await p.exec();
      }
    },
    async get(n) {
      for (let i = 0; i < n;) {
        const p = client.pipeline();
        for (let j = 0; j < PIPELINE && i < n; j++, i++) p.get(key(i));
        for (const [err, v] of await p.exec()) {
          if (err) throw err;
          check(v);
        }
      }
    },
  }];
}

function startPipe() {
  const child = spawn(process.execPath, [path.join(__dirname, 'pipe-server.js')], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  const waiting = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let nl;
    let start = 0;
    while ((nl = buf.indexOf('\n', start)) !== -1) {
      waiting.shift()(buf.slice(start, nl));
      start = nl + 1;
    }
    buf = buf.slice(start);
  });
  const request = (line) => new Promise((resolve) => {
    waiting.push(resolve);
    child.stdin.write(line);
  });
  // Pipelined: write a batch, await every reply.
  const batch = (lines) => {
    const replies = lines.map(() => new Promise((resolve) => waiting.push(resolve)));
    child.stdin.write(lines.join(''));
    return Promise.all(replies);
  };
  return {
    contenders: [{
      name: 'child process over a pipe (awaited)',
      ipc: true,
      async set(n) { for (let i = 0; i < n; i++) await request(`S ${key(i)} ${VALUE}\n`); },
      async get(n) { for (let i = 0; i < n; i++) check(await request(`G ${key(i)}\n`)); },
    }, {
      name: `child process over a pipe (pipelined x${PIPELINE})`,
      ipc: true,
      async set(n) {
        for (let i = 0; i < n;) {
          const lines = [];
          for (let j = 0; j < PIPELINE && i < n; j++, i++) lines.push(`S ${key(i)} ${VALUE}\n`);
          await batch(lines);
        }
      },
      async get(n) {
        for (let i = 0; i < n;) {
          const lines = [];
          for (let j = 0; j < PIPELINE && i < n; j++, i++) lines.push(`G ${key(i)}\n`);
          for (const v of await batch(lines)) check(v);
        }
      },
    }],
    stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.end();
      return exited;
    },
  };
}

// ---- main -------------------------------------------------------------------

function fmt(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nd${process.pid}-bench-`));
  const cleanup = [];
  const results = [];
  try {
    log(`kvshm Node benchmark: ${KEYS} keys of 16 bytes, 100-byte string values, ` +
      `${OPS} ops per run (${IPC_OPS} over IPC), best of ${RUNS}${CPU_CLOCK ? ' by CPU time' : ''}; ` +
      `node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0].model.trim()})`);
    const kv = kvshmContender();
    cleanup.push(() => kv.close());
    const lm = lmdbContender(dir);
    cleanup.push(() => lm.close());
    const contenders = [mapContender(), kv, lm];
    const redis = await startRedis(dir).catch((err) => {
      log(`(Redis skipped: ${err.message})`);
      return null;
    });
    if (redis) {
      cleanup.push(() => redis.stop());
      contenders.push(...redisContenders(redis.client));
    } else {
      log('(Redis skipped: redis-server is not installed; scripts/deps.sh installs it)');
    }
    const pipe = startPipe();
    cleanup.push(() => pipe.stop());
    contenders.push(...pipe.contenders);

    // Fill every key first, so that every get finds its key.
    for (const c of contenders) await c.set(KEYS);
    // In-process contenders run in interleaved rounds, so that a busy
    // moment of the machine hits all of them alike; best round wins.
    const local = contenders.filter((c) => !c.ipc);
    const best = new Map(local.map((c) => [c, { name: c.name, set: 0, get: 0 }]));
    for (const c of local) {
      await c.set(50000); // warm up the JIT
      await c.get(50000);
    }
    for (let r = 0; r < RUNS; r++) {
      for (const c of local) {
        const b = best.get(c);
        b.set = Math.max(b.set, await measure((k) => c.set(k), OPS, 1, CPU_CLOCK));
        b.get = Math.max(b.get, await measure((k) => c.get(k), OPS, 1, CPU_CLOCK));
      }
    }
    for (const c of local) results.push(best.get(c));
    for (const c of contenders.filter((x) => x.ipc)) {
      results.push({ name: c.name, set: await measure((k) => c.set(k), IPC_OPS, 2),
        get: await measure((k) => c.get(k), IPC_OPS, 2) });
    }
    for (const r of results) {
      log(`  ${r.name.padEnd(44)} set ${fmt(r.set).padStart(7)} ops/s   get ${fmt(r.get).padStart(7)} ops/s`);
    }
    const st = kv.stats();
    if (st.evictions) log(`  (kvshm evicted ${st.evictions} entries: raise its memory)`);
  } finally {
    for (const f of cleanup.reverse()) {
      try {
        await f();
      } catch (err) {
        console.error(`cleanup: ${err.message}`);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const by = (name) => results.find((r) => r.name.startsWith(name));
  const map = by('Map');
  const kv = by('kvshm');
  const lmdb = by('lmdb');
  log('\nRatios (kvshm / other; above 1 = kvshm faster):');
  log(`  ${'other'.padEnd(44)} ${'get'.padStart(8)} ${'set'.padStart(8)}`);
  for (const r of results) {
    if (r === kv) continue;
    log(`  ${r.name.padEnd(44)} ${(kv.get / r.get).toFixed(2).padStart(7)}x ${(kv.set / r.set).toFixed(2).padStart(7)}x`);
  }
  const targets = [
    ['kvshm get >= 0.5x Map', kv.get / map.get, 0.5],
    ['kvshm get >= 2x lmdb-js', kv.get / lmdb.get, 2],
    ['kvshm set >= 3M ops/s', kv.set / 1e6, 3],
  ];
  log('\nTargets:');
  for (const [what, got, want] of targets) {
    log(`  ${what.padEnd(28)} ${got.toFixed(2).padStart(6)}  ${got >= want ? 'met' : 'MISSED'}`);
  }
  if (asJson) {
    console.log(JSON.stringify({ keys: KEYS, ops: OPS, ipcOps: IPC_OPS, runs: RUNS, node: process.version,
      cpus: os.cpus().length, results, targets: targets.map(([what, got, want]) => ({ what, got, want, met: got >= want })) }, null, 2));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
