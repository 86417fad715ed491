// 40.ttl: time to live.  Most tests move the handle's clock (testing.js)
// instead of sleeping, with no reaper (it would use the real clock); one
// checks the real clock, one the reaper's background expiry.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { kvshm, freshCache, sleep } = require('./helpers');
const testing = require('../lib/testing');

const T0 = Date.now();

function clocked(t, options) {
  const c = freshCache(t, { memory: '4mb', reaper: false, ...options });
  testing.setClock(c, T0);
  return c;
}

test('an entry lives for exactly ttl ms', (t) => {
  const c = clocked(t);
  c.set('k', 'v', { ttl: 1000 });
  testing.setClock(c, T0 + 999);
  assert.equal(c.get('k'), 'v');
  assert.equal(c.has('k'), true);
  testing.setClock(c, T0 + 1000);
  assert.equal(c.get('k'), undefined);
  assert.equal(c.has('k'), false);
  assert.equal(c.delete('k'), false);
  assert.equal(c.stats().expirations, 1);
});

test('ttl 0 and no ttl (without defaultTtl) never expire', (t) => {
  const c = clocked(t);
  c.set('zero', 'v', { ttl: 0 });
  c.set('none', 'v');
  testing.setClock(c, T0 + 10 * 365 * 86400e3);
  assert.equal(c.get('zero'), 'v');
  assert.equal(c.get('none'), 'v');
});

test('defaultTtl applies to sets without ttl; ttl: 0 overrides it', (t) => {
  const c = clocked(t, { defaultTtl: 500 });
  c.set('default', 'v');
  c.set('never', 'v', { ttl: 0 });
  c.set('longer', 'v', { ttl: 2000 });
  testing.setClock(c, T0 + 499);
  assert.equal(c.get('default'), 'v');
  testing.setClock(c, T0 + 500);
  assert.equal(c.get('default'), undefined);
  assert.equal(c.get('never'), 'v');
  assert.equal(c.get('longer'), 'v');
  testing.setClock(c, T0 + 2000);
  assert.equal(c.get('longer'), undefined);
});

test('a new set restarts the ttl; keepTtl keeps it', (t) => {
  const c = clocked(t);
  c.set('k', 'v1', { ttl: 1000 });
  c.set('kept', 'a', { ttl: 1000 });
  c.set('replaced', 'a', { ttl: 1000 });
  testing.setClock(c, T0 + 800);
  c.set('k', 'v2', { ttl: 1000 });
  c.set('kept', 'b', { keepTtl: true });
  c.set('replaced', 'b');
  testing.setClock(c, T0 + 999);
  assert.equal(c.get('kept'), 'b');
  testing.setClock(c, T0 + 1000);
  assert.equal(c.get('kept'), undefined, 'kept the expiry of the first set');
  assert.equal(c.get('k'), 'v2');
  assert.equal(c.get('replaced'), 'b', 'a set without ttl or keepTtl never expires');
  testing.setClock(c, T0 + 1799);
  assert.equal(c.get('k'), 'v2');
  testing.setClock(c, T0 + 1800);
  assert.equal(c.get('k'), undefined);
  assert.equal(c.get('replaced'), 'b');
  // keepTtl on a new key: the ttl given (or the default) applies.
  c.set('new', 'x', { keepTtl: true, ttl: 10 });
  testing.setClock(c, T0 + 1810);
  assert.equal(c.get('new'), undefined);
});

test('incr keeps an existing expiry and gives new keys the default ttl', (t) => {
  const c = clocked(t, { defaultTtl: 1000 });
  c.incr('counter');
  c.set('n', 5, { ttl: 300 });
  testing.setClock(c, T0 + 200);
  assert.equal(c.incr('n'), 6);
  testing.setClock(c, T0 + 300);
  assert.equal(c.get('n'), undefined, 'incr did not extend the ttl');
  assert.equal(c.incr('counter'), 2);
  testing.setClock(c, T0 + 1000);
  assert.equal(c.get('counter'), undefined);
  assert.equal(c.incr('counter'), 1, 'an expired counter starts again');
});

test('iteration and size skip expired entries', (t) => {
  const c = clocked(t);
  c.set('a', 1, { ttl: 100 });
  c.set('b', 2, { ttl: 1000 });
  c.set('c', 3);
  testing.setClock(c, T0 + 100);
  assert.deepEqual([...c.keys()].sort(), ['b', 'c']);
  // Iteration only reads: the expired entry is still counted until touched
  // (or until the reaper removes it).
  assert.equal(c.size, 3);
  assert.equal(c.get('a'), undefined);
  assert.equal(c.size, 2);
});

test('the clock is per handle: another process sees its own time', (t) => {
  const c = clocked(t);
  c.set('k', 'v', { ttl: 60000 });
  testing.setClock(c, T0 + 60000);
  const other = kvshm.open(c.name, { reaper: false });
  t.after(() => other.close());
  assert.equal(other.get('k'), 'v', 'real time: not expired yet');
  assert.equal(c.get('k'), undefined);
});

test('real clock: a 30 ms entry is gone after 80 ms', async (t) => {
  const c = freshCache(t, { memory: '4mb', reaper: false });
  c.set('k', 'v', { ttl: 30 });
  c.set('stay', 'v', { ttl: 60000 });
  assert.equal(c.get('k'), 'v');
  await sleep(80);
  assert.equal(c.get('k'), undefined);
  assert.equal(c.get('stay'), 'v');
});

test('the reaper removes expired entries in the background', async (t) => {
  const c = freshCache(t, { memory: '4mb' });
  for (let i = 0; i < 50; i++) c.set(`k${i}`, i, { ttl: 20 });
  c.set('stay', 'v');
  assert.equal(c.size, 51);
  let size = c.size;
  for (let i = 0; i < 100 && size > 1; i++) {
    await sleep(50);
    size = c.size; // stats only: no key is touched
  }
  assert.equal(size, 1);
  assert.ok(c.stats().expirations >= 50);
  assert.equal(c.get('stay'), 'v');
});

test('an expired entry does not come back from the SQLite file', async (t) => {
  const path = require('path');
  const { tmpDir, adopt } = require('./helpers');
  const file = path.join(tmpDir(t), 'ttl.db');
  const c = freshCache(t, { memory: '4mb', sqlite: file, persistent: true, flushDelay: 50 });
  c.set('short', 'v', { ttl: 50 });
  c.set('long', 'v', { ttl: 60000 });
  c.flush();
  const name = c.name;
  c.destroy();
  await sleep(100);
  const d = adopt(t, kvshm.open(name, { memory: '4mb', sqlite: file }));
  assert.equal(d.get('short'), undefined);
  assert.equal(d.get('long'), 'v');
});
