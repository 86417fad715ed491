// app-cjs.js NAME SQLITE_FILE DIR - what a user's CommonJS program does with
// the installed package (run by test_package.sh from a project that
// installed it): the sync API, then the SQLite tier with its reaper, which
// must be the kvshm-reaper that came with the package under DIR.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const kvshm = require('kvshm');

const [name, db, dir] = process.argv.slice(2);
const cache = kvshm.open(name, { memory: '4mb', sqlite: db });

assert.equal(cache.set('user:1', { name: 'Ada' }), true);
assert.deepEqual(cache.get('user:1'), { name: 'Ada' });
assert.equal(cache.incr('hits'), 1);
assert.equal(cache.set('user:1', 'x', { nx: true }), false);
assert.equal(cache.has('nope'), false);

// The reaper starts with the cache; it must be the one beside the addon.
const t0 = Date.now();
while (!cache.stats().reaperAlive) {
  assert.ok(Date.now() - t0 < 10000, 'no reaper started within 10 s');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
}
const exe = fs.realpathSync(`/proc/${cache.stats().reaperPid}/exe`);
assert.ok(exe.startsWith(fs.realpathSync(dir) + '/'),
  `the reaper runs ${exe}, not one from ${dir}`);

// More than fits in 4 MiB: what was evicted comes back from SQLite.
const N = 30000;
const value = (i) => `value ${i} `.padEnd(200, '.');
for (let i = 0; i < N; i++) {
  cache.set(`k${i}`, value(i));
  if (i % 2000 === 1999) cache.flush();
}
cache.flush();
for (let i = 0; i < N; i++) assert.equal(cache.get(`k${i}`), value(i), `k${i}`);
const st = cache.stats();
assert.ok(st.storeHits > 0, `no get was served by SQLite (${JSON.stringify(st)})`);
// The rows are in the file or still in its WAL (the reaper checkpoints).
const size = (f) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
assert.ok(size(db) + size(`${db}-wal`) > N * 200, 'the SQLite files are too small');
console.log(`app-cjs: ${N} keys, ${st.storeHits} served by SQLite, reaper ${exe}`);
cache.destroy();
