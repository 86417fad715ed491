// 15.test-hooks: the test hooks (lib/testing.js: move a handle's clock,
// signal the process at a point inside a write) exist only in a process
// started with KVSHM_TESTING=1 (`make test-node` sets it).  A process
// started without it cannot reach them through anything the package
// exports, nor through the native binding itself.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { uniqueName, runNode, fixture, freshCache } = require('./helpers');
const testing = require('../lib/testing');

test('without KVSHM_TESTING nothing reachable from the package has a test hook', async () => {
  const name = uniqueName('smalls-hooks');
  // runNode adds to this process's environment: '' is "not set to 1".
  const r = await runNode(fixture('walk-api.js'), [name], { env: { KVSHM_TESTING: '' } });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.ok(out.visited >= 40, `the walk visited ${out.visited} objects`);
  assert.equal(out.prototype, true, 'the walk went through Cache.prototype');
  assert.deepEqual(out.hooks, [], 'no test hook is reachable from the exports or the cache');
  assert.deepEqual(out.native, [], 'the native binding has no test hook either');
  assert.match(out.testing, /KVSHM_TESTING=1/, 'lib/testing.js says how to turn them on');
});

test('with KVSHM_TESTING=1 (this process) lib/testing.js works', (t) => {
  assert.equal(process.env.KVSHM_TESTING, '1', 'the test runner sets KVSHM_TESTING=1');
  const c = freshCache(t, { memory: '1mb', reaper: false }, 'smalls-hooks');
  testing.setClock(c, 1000);
  c.set('k', 'v', { ttl: 10 });
  assert.equal(testing.inMemory(c, 'k'), true);
  testing.setClock(c, 1010);
  assert.equal(c.get('k'), undefined, 'the moved clock expired it');
  assert.deepEqual(testing.verify(c), []);
});
