#!/usr/bin/env node
// keyv.js - what Keyv costs on top of kvshm: get and set of one key set
// through kvshm directly, through Keyv over kvshm/keyv (serialized: Keyv's
// JSON envelope; native: createKeyv()), and, for comparison, through Keyv
// over what a Keyv user would pick instead: Keyv's default Map (in this
// process only), @cacheable/memory's store (in this process only, no
// serializing) and, when redis-server is installed, Redis (@keyv/redis).
//
// Values: a 100-byte string and a small object.  Every contender runs the
// same awaited loop (Keyv is async), BENCH_KEYV_OPS operations over
// BENCH_KEYS keys, best of BENCH_RUNS rounds.  Prints ops/s.
//
//   node bench/node/keyv.js [--json]      (make bench-keyv)
//   BENCH_KEYS=10000 BENCH_KEYV_OPS=200000 BENCH_RUNS=3 BENCH_REDIS_OPS=20000
'use strict';
const os = require('os');
const fs = require('fs');
const path = require('path');
const { Keyv } = require('keyv');
const { createKeyv: cacheableMemory } = require('@cacheable/memory');
const kvshm = require('../../addon/lib');
const KeyvKvshm = require('../../addon/lib/keyv');
const { startRedisServer } = require('./redis-server');

const KEYS = Number(process.env.BENCH_KEYS || 10000);
const OPS = Number(process.env.BENCH_KEYV_OPS || 200000);
const RUNS = Number(process.env.BENCH_RUNS || 3);
const REDIS_OPS = Number(process.env.BENCH_REDIS_OPS || 20000);
const asJson = process.argv.includes('--json');
const log = (...a) => { if (!asJson) console.log(...a); };

const VALUES = {
  'string, 100 bytes': 'v'.repeat(100),
  'object, 5 fields': { id: 42, name: 'Ada Lovelace', roles: ['admin', 'reader'], active: true, score: 3.5 },
};

const key = (i) => `key:${String(i % KEYS).padStart(12, '0')}`;

async function measure(fn, n) {
  let best = 0;
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    await fn(n);
    best = Math.max(best, (n * 1e9) / Number(process.hrtime.bigint() - t0));
  }
  return best;
}

async function main() {
  const name = `kvshm-bench-keyv-${process.pid}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvshm-bench-keyv-'));
  const cache = kvshm.open(name, { memory: '64mb' });
  const redis = await startRedisServer(dir);
  const contenders = [
    ['kvshm, no Keyv', null, OPS],
    ['Keyv + kvshm/keyv, serialized', new Keyv({ store: new KeyvKvshm(name), namespace: 's' }), OPS],
    ['Keyv + kvshm/keyv, native', KeyvKvshm.createKeyv(name, undefined, { namespace: 'n' }), OPS],
    ['Keyv + Map (one process)', new Keyv({ namespace: 'm' }), OPS],
    ['Keyv + @cacheable/memory (one process)', cacheableMemory({ namespace: 'c' }), OPS],
  ];
  if (redis) {
    contenders.push(['Keyv + @keyv/redis', require('@keyv/redis').createKeyv(redis.url), REDIS_OPS]);
  } else {
    log('(Redis skipped: redis-server is not installed; scripts/deps.sh installs it)');
  }
  const results = [];
  try {
    log(`${KEYS} keys, ${OPS} awaited operations (Redis ${REDIS_OPS}), best of ${RUNS}; ops/s`);
    for (const [what, value] of Object.entries(VALUES)) {
      log(`\n${what}`);
      log(`${'contender'.padEnd(42)}${'get'.padStart(12)}${'set'.padStart(12)}`);
      for (const [label, keyv, n] of contenders) {
        const set = keyv
          ? async (m) => { for (let i = 0; i < m; i++) await keyv.set(key(i), value); }
          : async (m) => { for (let i = 0; i < m; i++) cache.set(key(i), value); };
        const get = keyv
          ? async (m) => { for (let i = 0; i < m; i++) if ((await keyv.get(key(i))) === undefined) throw new Error(`${label}: miss`); }
          : async (m) => { for (let i = 0; i < m; i++) if (cache.get(key(i)) === undefined) throw new Error(`${label}: miss`); };
        await set(KEYS);
        const s = await measure(set, n);
        const g = await measure(get, n);
        results.push({ value: what, contender: label, get: Math.round(g), set: Math.round(s) });
        log(`${label.padEnd(42)}${Math.round(g).toLocaleString('en').padStart(12)}${Math.round(s).toLocaleString('en').padStart(12)}`);
      }
    }
  } finally {
    for (const [, keyv] of contenders) if (keyv) await keyv.disconnect();
    if (redis) await redis.stop();
    cache.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (asJson) console.log(JSON.stringify(results, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
