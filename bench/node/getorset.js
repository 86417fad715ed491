#!/usr/bin/env node
// getorset.js - what getOrSet costs on a hit, and what the multi-key calls
// save, side by side in one run: getOrSet (a Promise per call) against a
// plain get, getOrSet with staleWhileRevalidate (get plus the expiry), and
// getMany / setMany of 100 keys against 100 gets / sets.  Same keys and
// values as bench.js (16-byte keys, 100-byte strings); best of BENCH_RUNS
// interleaved rounds; printed as ops/s and ratios.
//
//   node bench/node/getorset.js          (make bench-getorset)
//   BENCH_KEYS=100000 BENCH_OPS=500000 BENCH_RUNS=5
'use strict';
const kvshm = require('../../addon/lib');

const KEYS = Number(process.env.BENCH_KEYS || 100000);
const OPS = Number(process.env.BENCH_OPS || 500000);
const RUNS = Number(process.env.BENCH_RUNS || 5);
const VALUE = 'v'.repeat(100);
const key = (i) => `key:${String(i % KEYS).padStart(12, '0')}`;

async function main() {
  const name = `bench-gos-${process.pid}`;
  const cache = kvshm.open(name, { memory: '256mb' });
  try {
    for (let i = 0; i < KEYS; i++) cache.set(key(i), VALUE, { ttl: 3_600_000 });
    const loader = () => VALUE;
    const batch = Array.from({ length: 100 }, (_, i) => key(i * 7));
    const pairs = batch.map((k) => [k, VALUE]);
    const cases = {
      'get': (n) => { for (let i = 0; i < n; i++) if (cache.get(key(i)) === undefined) throw new Error('miss'); },
      'getOrSet (hit)': async (n) => {
        for (let i = 0; i < n; i++) await cache.getOrSet(key(i), loader, { ttl: 3_600_000 });
      },
      'getOrSet swr (hit)': async (n) => {
        const o = { ttl: 3_000_000, staleWhileRevalidate: 600_000 };
        for (let i = 0; i < n; i++) await cache.getOrSet(key(i), loader, o);
      },
      '100 x get': (n) => { for (let i = 0; i < n / 100; i++) for (const k of batch) cache.get(k); },
      'getMany(100)': (n) => { for (let i = 0; i < n / 100; i++) cache.getMany(batch); },
      '100 x set': (n) => { for (let i = 0; i < n / 100; i++) for (const [k, v] of pairs) cache.set(k, v); },
      'setMany(100)': (n) => { for (let i = 0; i < n / 100; i++) cache.setMany(pairs); },
    };
    const best = {};
    for (let r = 0; r < RUNS; r++) {
      for (const [label, fn] of Object.entries(cases)) {
        const t0 = process.hrtime.bigint();
        await fn(OPS);
        const ops = (OPS * 1e9) / Number(process.hrtime.bigint() - t0);
        best[label] = Math.max(best[label] || 0, ops);
      }
    }
    const f = (x) => `${(x / 1e6).toFixed(2)} M keys/s`;
    console.log(`getOrSet and multi-key calls, ${KEYS} keys, ${OPS} keys per round, best of ${RUNS}`);
    for (const [label, ops] of Object.entries(best)) console.log(`  ${label.padEnd(20)} ${f(ops)}`);
    console.log(`  getOrSet hit / get:      ${(best['getOrSet (hit)'] / best.get).toFixed(2)}`);
    console.log(`  getOrSet swr hit / get:  ${(best['getOrSet swr (hit)'] / best.get).toFixed(2)}`);
    console.log(`  getMany / 100 x get:     ${(best['getMany(100)'] / best['100 x get']).toFixed(2)}`);
    console.log(`  setMany / 100 x set:     ${(best['setMany(100)'] / best['100 x set']).toFixed(2)}`);
  } finally {
    cache.destroy();
  }
}
main().catch((err) => { console.error(err); process.exit(1); });
