// 80.cluster: the cluster primary and 4 workers share one cache: each reads
// the others' keys, and a concurrent incr by all of them sums exactly.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { uniqueName, runNode, fixture } = require('./helpers');

test('primary and 4 workers share one cache', { timeout: 90000 }, async () => {
  const name = uniqueName('cluster');
  const r = await runNode(fixture('cluster-app.js'), [name], { timeoutMs: 80000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  // Each of the 5 read the other 4's 200 keys.
  assert.equal(out.workerReads.length, 4);
  for (const w of out.workerReads) assert.deepEqual({ good: w.good, bad: w.bad }, { good: 800, bad: 0 });
  assert.deepEqual(out.primaryReads, { good: 800, bad: 0 });
  assert.equal(out.counter, out.expected);
  assert.equal(out.expected, 25000);
  assert.equal(new Set(out.pids).size, 5, 'five processes wrote');
  assert.equal(out.size, 5 * (2 * 200 + 1) + 1);
  assert.equal(out.stats.corrupt, 0);
  assert.equal(out.stats.evictions, 0);
});
