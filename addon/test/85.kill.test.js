// 85.kill: workers killed with SIGKILL in the middle of writes, one of them
// while it holds a stripe lock, while the others go on: no hang, no torn
// value, the stripe repaired.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { uniqueName, runNode, fixture } = require('./helpers');

test('SIGKILL mid-write: the others finish, every entry is whole', { timeout: 90000 }, async () => {
  const name = uniqueName('kill');
  const r = await runNode(fixture('kill-app.js'), [name], { timeoutMs: 80000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.equal(out.exits.w1.signal, 'SIGKILL', 'w1 died in its write');
  assert.ok(out.exits.w1.n <= 1500, `w1 reported ${out.exits.w1.n} writes`);
  assert.equal(out.exits.w2.signal, 'SIGKILL', 'w2 was killed');
  assert.ok(out.exits.w2.n < 20000);
  for (const id of ['w3', 'w4']) {
    assert.deepEqual({ code: out.exits[id].code, signal: out.exits[id].signal, n: out.exits[id].n },
      { code: 0, signal: null, n: 20000 }, `${id} finished`);
  }
  assert.equal(out.nbad, 0, `torn or foreign values: ${JSON.stringify(out.bad)}`);
  assert.ok(out.good >= 2 * 500, 'the survivors\' entries are there');
  assert.equal(out.survivorsComplete, true, 'the survivors\' last writes all landed');
  assert.deepEqual(out.verify, [], 'kvshm_verify finds no problem');
  assert.ok(out.stats.repairs >= 1, 'the stripe w1 died in was repaired');
  assert.equal(out.stats.corrupt, 0);
});
