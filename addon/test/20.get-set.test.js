// 20.get-set: the Map-like methods and their exact return values.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { kvshm, freshCache } = require('./helpers');
const { KvshmError, constants } = kvshm;

test('get, set, has, delete', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  assert.equal(c.get('k'), undefined);
  assert.equal(c.has('k'), false);
  assert.equal(c.set('k', 'v'), true);
  assert.equal(c.get('k'), 'v');
  assert.equal(c.has('k'), true);
  assert.equal(c.set('k', 'w'), true);
  assert.equal(c.get('k'), 'w');
  assert.equal(c.delete('k'), true);
  assert.equal(c.delete('k'), false);
  assert.equal(c.get('k'), undefined);
  assert.equal(c.has('k'), false);
});

test('size and clear', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  assert.equal(c.size, 0);
  for (let i = 0; i < 100; i++) c.set(`k${i}`, i);
  assert.equal(c.size, 100);
  c.set('k5', 'again');
  assert.equal(c.size, 100);
  c.delete('k5');
  assert.equal(c.size, 99);
  assert.equal(c.clear(), undefined);
  assert.equal(c.size, 0);
  assert.equal(c.get('k1'), undefined);
});

test('set with nx and xx', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  assert.equal(c.set('k', 'a', { xx: true }), false);
  assert.equal(c.has('k'), false);
  assert.equal(c.set('k', 'a', { nx: true }), true);
  assert.equal(c.set('k', 'b', { nx: true }), false);
  assert.equal(c.get('k'), 'a');
  assert.equal(c.set('k', 'c', { xx: true }), true);
  assert.equal(c.get('k'), 'c');
  assert.equal(c.set('k', 'd', { nx: false, xx: false, ttl: undefined }), true);
  assert.throws(() => c.set('k', 'e', { nx: true, xx: true }), { name: 'TypeError', message: /nx and xx exclude each other/ });
});

test('set options are checked', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  assert.throws(() => c.set('k', 'v', 1000), { name: 'TypeError', message: /set options must be an object like \{ ttl: 1000 \}/ });
  assert.throws(() => c.set('k', 'v', null), TypeError);
  assert.throws(() => c.set('k', 'v', { ttl: -1 }), { name: 'RangeError', message: /ttl must be a whole number from 0 to 9007199254740991 ms/ });
  assert.throws(() => c.set('k', 'v', { ttl: 0.5 }), RangeError);
  assert.throws(() => c.set('k', 'v', { ttl: '10s' }), { name: 'TypeError', message: /ttl must be a number/ });
  assert.throws(() => c.set('k', 'v', { TTL: 5 }), { name: 'TypeError', message: /unknown set option 'TTL'/ });
  assert.throws(() => c.set('k', 'v', { nx: 1 }), { name: 'TypeError', message: /nx must be a boolean/ });
  assert.equal(c.has('k'), false, 'nothing was stored by a rejected call');
});

test('keys must be strings of at most KEY_MAX bytes of UTF-8', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  for (const bad of [1, null, undefined, Symbol('s'), {}, Buffer.from('k')]) {
    for (const call of [() => c.get(bad), () => c.set(bad, 'v'), () => c.has(bad), () => c.delete(bad), () => c.incr(bad)]) {
      assert.throws(call, { name: 'TypeError', message: /key must be a string/ });
    }
  }
  const max = 'k'.repeat(constants.KEY_MAX);
  assert.equal(c.set(max, 'long key'), true);
  assert.equal(c.get(max), 'long key');
  assert.throws(() => c.set(`${max}k`, 'v'), { name: 'RangeError', message: /longer than 4096 bytes/ });
  assert.throws(() => c.get(`${max}k`), RangeError);
  // 1366 three-byte characters = 4098 bytes: too long although 1366 < 4096.
  assert.throws(() => c.set('€'.repeat(1366), 'v'), RangeError);
  assert.equal(c.set('€'.repeat(1365), 'v'), true);
  // Four-byte characters right at the edge.
  assert.equal(c.set('😀'.repeat(1024), 'v'), true);
  assert.throws(() => c.set(`😀${'😀'.repeat(1024)}`, 'v'), RangeError);
  assert.equal(c.set('', 'empty key'), true);
  assert.equal(c.get(''), 'empty key');
});

test('values over the cache limit are a RangeError naming the limit', (t) => {
  const c = freshCache(t, { memory: '1mb', stripes: 1 });
  const limit = c.stats().maxValue + 16 - 3; // for the 3-byte key 'big'
  assert.equal(c.set('big', Buffer.alloc(limit)), true);
  assert.equal(c.get('big').length, limit);
  assert.throws(() => c.set('big', Buffer.alloc(limit + 1)), (err) => {
    assert.ok(err instanceof RangeError);
    assert.equal(err.code, 'ETOOBIG');
    assert.match(err.message, new RegExp(`over this cache's limit of ${limit} bytes`));
    assert.match(err.message, /more memory/);
    return true;
  });
  assert.equal(c.get('big').length, limit, 'the old value is still there');
  // A huge string is refused before it is converted.
  assert.throws(() => c.set('big', 'x'.repeat(64 * 1024 * 1024)),
    { name: 'RangeError', code: 'ETOOBIG', message: /value of at least 67108864 bytes is over this cache's limit/ });
  assert.throws(() => c.set('big', '€'.repeat(limit)), { name: 'RangeError', code: 'ETOOBIG' });
});

test('incr and decr', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  assert.equal(c.incr('n'), 1);
  assert.equal(c.incr('n'), 2);
  assert.equal(c.incr('n', 40), 42);
  assert.equal(c.get('n'), 42, 'a counter reads back as a number');
  assert.equal(c.decr('n'), 41);
  assert.equal(c.decr('n', 50), -9);
  assert.equal(c.incr('n', -1), -10);
  assert.equal(c.decr('fresh'), -1);
  c.set('num', 100);
  assert.equal(c.incr('num', 5), 105);
  assert.equal(typeof c.get('num'), 'number');
  c.set('text', '7');
  assert.equal(c.incr('text'), 8);
  assert.equal(c.get('text'), '8', 'a string stays a string');
  c.set('big', 10n);
  assert.equal(c.incr('big', 5), 15);
  assert.equal(c.get('big'), 15n, 'a bigint stays a bigint');
  for (const v of ['abc', 1.5, true, { a: 1 }, Buffer.from('x')]) {
    c.set('nan', v);
    assert.throws(() => c.incr('nan'), (err) => err instanceof KvshmError && err.code === 'ENOTINT' &&
      /incr\(\) and decr\(\) work on integers/.test(err.message));
  }
  c.set('max', 9223372036854775807n);
  assert.throws(() => c.incr('max'), (err) => err.code === 'EOVERFLOW' && /64-bit/.test(err.message));
  assert.throws(() => c.incr('n', 1.5), { name: 'RangeError', message: /delta must be a whole number/ });
  assert.throws(() => c.incr('n', 2 ** 53), RangeError);
  assert.throws(() => c.incr('n', '1'), { name: 'TypeError', message: /delta must be a number/ });
  assert.throws(() => c.decr('n', null), TypeError);
});

test('a closed cache throws ECLOSED from every method; close is idempotent', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  c.set('k', 'v');
  c.close();
  assert.equal(c.closed, true);
  c.close();
  const calls = {
    get: () => c.get('k'), set: () => c.set('k', 'v'), has: () => c.has('k'),
    delete: () => c.delete('k'), incr: () => c.incr('k'), decr: () => c.decr('k'),
    clear: () => c.clear(), size: () => c.size, stats: () => c.stats(),
    storeStats: () => c.storeStats(), flush: () => c.flush(),
    keys: () => [...c.keys()], entries: () => [...c.entries()], iterate: () => [...c],
  };
  for (const [what, call] of Object.entries(calls)) {
    assert.throws(call, (err) => {
      assert.ok(err instanceof KvshmError, what);
      assert.equal(err.code, 'ECLOSED');
      assert.match(err.message, /the cache is closed: open it again/);
      return true;
    });
  }
});

test('close leaves the cache for others; destroy removes it', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  const name = c.name;
  c.set('k', 'v');
  c.close();
  const again = kvshm.open(name);
  assert.equal(again.get('k'), 'v');
  assert.equal(again.destroy(), true);
  assert.equal(again.closed, true);
  const fresh = kvshm.open(name, { memory: '4mb' });
  assert.equal(fresh.get('k'), undefined, 'destroy emptied it');
  assert.equal(kvshm.destroy(name), true);
  assert.equal(fresh.get('k'), undefined, 'a handle keeps working after destroy');
  fresh.set('k', 'still mapped');
  assert.equal(fresh.get('k'), 'still mapped');
  assert.equal(fresh.destroy(), false, 'already removed');
});

test('stats counts hits, misses, sets and deletes', (t) => {
  const c = freshCache(t, { memory: '4mb', reaper: false });
  c.set('a', 'x');
  c.set('b', 'yy');
  c.get('a');
  c.get('a');
  c.get('missing');
  c.delete('b');
  const s = c.stats();
  assert.equal(s.sets, 2);
  assert.equal(s.hits, 2);
  assert.equal(s.misses, 1);
  assert.equal(s.deletes, 1);
  assert.equal(s.entries, 1);
  assert.equal(s.bytes, 2);
  assert.equal(s.corrupt, 0);
  assert.equal(s.repairs, 0);
  assert.equal(s.slotsUsed + s.slotsFree, s.slotsPerStripe * s.stripes);
  assert.ok(s.createdAt > Date.now() - 60000 && s.createdAt <= Date.now());
  assert.equal(s.layoutVersion >= 1, true);
});

test('eviction keeps a full memory-only cache working', (t) => {
  const c = freshCache(t, { memory: '1mb', stripes: 1, reaper: false });
  const value = 'v'.repeat(100);
  const n = c.stats().slotsPerStripe * 2;
  for (let i = 0; i < n; i++) assert.equal(c.set(`key:${i}`, value), true);
  const s = c.stats();
  assert.ok(s.evictions > 0);
  assert.ok(s.entries < n);
  assert.equal(c.get(`key:${n - 1}`), value, 'the newest entry is there');
});

test('a deleted key does not come back from the SQLite file', (t) => {
  const path = require('path');
  const { tmpDir, adopt } = require('./helpers');
  const testing = require('../lib/testing');
  const file = path.join(tmpDir(t), 'del.db');
  const c = freshCache(t, { memory: '1mb', stripes: 1, sqlite: file, persistent: true, flushDelay: 50 });
  const n = c.stats().slotsPerStripe * 2; // twice what memory holds
  for (let i = 0; i < n; i++) c.set(`k${i}`, i);
  c.flush();
  // Two keys that only the SQLite file holds now.
  const gone = [];
  for (let i = 0; i < n && gone.length < 2; i++) if (!testing.inMemory(c, `k${i}`)) gone.push(i);
  assert.equal(gone.length, 2, 'eviction moved entries to SQLite');
  const [a, b] = gone;
  const before = c.stats().storeHits;
  assert.equal(c.get(`k${a}`), a, 'read back from SQLite');
  assert.equal(c.stats().storeHits, before + 1);
  assert.equal(testing.inMemory(c, `k${a}`), true, 'and brought back to memory');
  assert.equal(c.delete(`k${a}`), true);
  assert.equal(c.delete(`k${b}`), true, 'deleting a key only in SQLite');
  assert.equal(c.get(`k${a}`), undefined);
  assert.equal(c.has(`k${b}`), false);
  c.flush();
  const name = c.name;
  c.destroy();
  const d = adopt(t, kvshm.open(name, { memory: '1mb', stripes: 1, sqlite: file }));
  assert.equal(d.get(`k${a}`), undefined);
  assert.equal(d.has(`k${b}`), false);
  assert.equal(d.get(`k${n - 1}`), n - 1);
  assert.equal(d.storeStats().rows, n - 2);
});
