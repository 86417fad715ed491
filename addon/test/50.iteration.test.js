// 50.iteration: keys(), values(), entries(), for-of, forEach, prefixes.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { kvshm, freshCache, tmpDir } = require('./helpers');
const { KvshmError } = kvshm;

function fill(c, n, prefix = 'key:') {
  const want = new Map();
  for (let i = 0; i < n; i++) {
    const v = i % 3 === 0 ? i : i % 3 === 1 ? `s${i}` : { i };
    c.set(`${prefix}${i}`, v);
    want.set(`${prefix}${i}`, v);
  }
  return want;
}

test('keys, values, entries, for-of and forEach see every entry once', (t) => {
  const c = freshCache(t, { memory: '8mb' });
  const want = fill(c, 1000); // several native batches
  const keys = [...c.keys()];
  assert.equal(keys.length, 1000);
  assert.deepEqual(new Set(keys), new Set(want.keys()));
  const entries = [...c.entries()];
  assert.deepEqual(new Map(entries), want);
  assert.deepEqual(entries.map(([k]) => k), keys, 'same order as keys()');
  assert.deepEqual([...c.values()], entries.map(([, v]) => v));
  assert.deepEqual([...c], entries);
  const seen = new Map();
  const self = {};
  c.forEach(function (v, k, cache) {
    assert.equal(this, self);
    assert.equal(cache, c);
    seen.set(k, v);
  }, self);
  assert.deepEqual(seen, want);
  assert.throws(() => c.forEach('nope'), { name: 'TypeError', message: /callback must be a function/ });
});

test('an empty cache iterates nothing', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  assert.deepEqual([...c.keys()], []);
  assert.deepEqual([...c], []);
});

test('prefix filters keys (UTF-8 prefixes too)', (t) => {
  const c = freshCache(t, { memory: '8mb' });
  fill(c, 300, 'user:');
  fill(c, 20, 'session:');
  fill(c, 5, 'ünï:');
  c.set('user', 'no colon');
  assert.equal([...c.keys({ prefix: 'user:' })].length, 300);
  assert.equal([...c.keys({ prefix: 'session:' })].length, 20);
  assert.deepEqual([...c.keys({ prefix: 'session:1' })].sort(),
    ['session:1', ...Array.from({ length: 10 }, (_, i) => `session:1${i}`)].sort());
  assert.deepEqual(new Set(c.keys({ prefix: 'ünï:' })), new Set(['ünï:0', 'ünï:1', 'ünï:2', 'ünï:3', 'ünï:4']));
  assert.deepEqual([...c.entries({ prefix: 'ünï:3' })], [['ünï:3', 3]]);
  assert.deepEqual([...c.values({ prefix: 'ünï:1' })], ['s1']);
  assert.deepEqual([...c.keys({ prefix: 'nothing' })], []);
  assert.equal([...c.keys({ prefix: '' })].length, 326, "'' is no filter");
  assert.equal([...c.keys({})].length, 326);
});

test('iteration options are checked when the method is called', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  assert.throws(() => c.keys({ prefix: 1 }), { name: 'TypeError', message: /prefix must be a string/ });
  assert.throws(() => c.entries({ prefx: 'a' }), { name: 'TypeError', message: /unknown iteration option 'prefx'/ });
  assert.throws(() => c.values('a'), { name: 'TypeError', message: /must be an object/ });
});

test('writing while iterating is allowed', (t) => {
  const c = freshCache(t, { memory: '8mb' });
  fill(c, 500);
  let n = 0;
  for (const [k, v] of c) {
    c.set(k, typeof v === 'number' ? v + 1 : v); // rewrite the one we are on
    c.delete(`key:${499 - n}`);
    c.get(k);
    n++;
  }
  assert.ok(n >= 250 && n <= 500, `saw ${n}`);
});

test('breaking out of a loop ends the native walk', (t) => {
  const c = freshCache(t, { memory: '8mb' });
  fill(c, 600);
  for (let round = 0; round < 50; round++) {
    let i = 0;
    for (const k of c.keys()) {
      assert.equal(typeof k, 'string');
      if (++i === 3) break;
    }
  }
  const it = c.entries();
  assert.equal(it.next().done, false);
  assert.deepEqual(it.return(), { value: undefined, done: true });
  assert.deepEqual(it.next(), { value: undefined, done: true });
});

test('closing the cache mid-walk stops it with ECLOSED', (t) => {
  const c = freshCache(t, { memory: '8mb' });
  fill(c, 600); // more than one batch
  const it = c.keys();
  for (let i = 0; i < 256; i++) it.next();
  c.close();
  assert.throws(() => {
    for (let r = it.next(); !r.done; r = it.next());
  }, (err) => err instanceof KvshmError && err.code === 'ECLOSED');
});

test('a SQLite-backed cache also walks the keys that are only in its file', (t) => {
  const dir = tmpDir(t);
  const c = freshCache(t, { memory: '1mb', stripes: 1, sqlite: path.join(dir, 'walk.db') });
  const n = c.stats().slotsPerStripe * 2; // twice what memory holds
  for (let i = 0; i < n; i++) c.set(`k${i}`, i);
  c.flush();
  assert.ok(c.size < n, 'some entries left memory');
  const keys = new Set(c.keys());
  assert.equal(keys.size, n);
  for (let i = 0; i < n; i += 97) assert.ok(keys.has(`k${i}`));
  assert.equal(c.get('k0'), 0, 'an evicted entry is still found');
});
