// 70.promise: the Promise facade's API and exact return values (those of
// the first design: start / insert -> "I" / get -> value or "" / remove ->
// "R" / close).
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { kvshm, uniqueName, sleep } = require('./helpers');
const cache = require('../lib/promise');

test('start() with no options opens the default cache (KVSHM_NAME, else "default")', async () => {
  assert.equal(cache.DEFAULT_NAME, 'default');
  const name = uniqueName('default');
  process.env.KVSHM_NAME = name;
  try {
    assert.equal(await cache.start(), undefined);
    assert.equal(await cache.insert('k', 'v'), 'I');
    const direct = kvshm.open(name, { create: false });
    assert.equal(direct.get('k'), 'v', 'start() opened the cache named by KVSHM_NAME');
    assert.equal(direct.stats().memory, kvshm.constants.DEFAULT_MEMORY);
    direct.close();
  } finally {
    delete process.env.KVSHM_NAME;
    await cache.close();
    kvshm.destroy(name);
  }
});

test('insert / get / remove resolve to "I" / value or "" / "R"', async () => {
  const name = uniqueName('promise');
  await cache.start({ name, memory: '4mb' });
  try {
    const p = cache.insert('key', 'value', 60);
    assert.ok(p instanceof Promise);
    assert.equal(await p, 'I');
    assert.equal(await cache.get('key'), 'value');
    assert.equal(await cache.get('missing'), '');
    assert.equal(await cache.remove('key'), 'R');
    assert.equal(await cache.get('key'), '');
    assert.equal(await cache.remove('key'), 'R', 'removing a missing key is still "R"');
    assert.equal(await cache.insert('k', 'v1'), 'I');
    assert.equal(await cache.insert('k', 'v2', 0), 'I', 'insert overwrites');
    assert.equal(await cache.get('k'), 'v2');
    // No limits of the old design: long keys, long values, full UTF-8, other types.
    const longKey = `ключ-${'😀'.repeat(100)}`;
    const longValue = '日本語'.repeat(10000);
    assert.equal(await cache.insert(longKey, longValue), 'I');
    assert.equal(await cache.get(longKey), longValue);
    assert.equal(await cache.insert('obj', { a: [1, 2] }), 'I');
    assert.deepEqual(await cache.get('obj'), { a: [1, 2] });
    assert.equal(await cache.insert('n', 7), 'I');
    assert.equal(await cache.get('n'), 7);
  } finally {
    assert.equal(await cache.close(), undefined);
    kvshm.destroy(name);
  }
});

test('ttlSeconds: an expired key reads as ""', async () => {
  const name = uniqueName('promise-ttl');
  await cache.start({ name, memory: '4mb', reaper: false });
  try {
    assert.equal(await cache.insert('short', 'v', 0.03), 'I');
    assert.equal(await cache.insert('long', 'v', 3600), 'I');
    assert.equal(await cache.get('short'), 'v');
    await sleep(80);
    assert.equal(await cache.get('short'), '');
    assert.equal(await cache.get('long'), 'v');
  } finally {
    await cache.close();
    kvshm.destroy(name);
  }
});

test('bad arguments reject (never throw synchronously)', async () => {
  const name = uniqueName('promise-bad');
  await cache.start({ name, memory: '4mb' });
  try {
    const p = cache.insert(42, 'v');
    assert.ok(p instanceof Promise);
    await assert.rejects(p, { name: 'TypeError', message: /key must be a string/ });
    await assert.rejects(cache.insert('k', 'v', -1), { name: 'RangeError', message: /ttlSeconds must be from 0/ });
    await assert.rejects(cache.insert('k', 'v', '60'), { name: 'TypeError', message: /ttlSeconds must be a number/ });
    await assert.rejects(cache.insert('k', undefined), TypeError);
    await assert.rejects(cache.get(null), TypeError);
    await assert.rejects(cache.remove({}), TypeError);
    await assert.rejects(cache.start('name'), { name: 'TypeError', message: /start options must be an object/ });
    await assert.rejects(cache.start({ name, memory: '8mb' }), { name: 'KvshmError', code: 'ECONFIG' });
    assert.equal(await cache.get('k'), '', 'the failed start kept the open cache');
  } finally {
    await cache.close();
    kvshm.destroy(name);
  }
});

test('before start() and after close(), calls reject with ECLOSED', async () => {
  await cache.close();
  assert.equal(await cache.close(), undefined, 'close twice is harmless');
  for (const call of [() => cache.insert('k', 'v'), () => cache.get('k'), () => cache.remove('k')]) {
    await assert.rejects(call(), (err) => err instanceof kvshm.KvshmError && err.code === 'ECLOSED' &&
      /not started/.test(err.message));
  }
});

test('start() again switches caches', async () => {
  const a = uniqueName('promise-a');
  const b = uniqueName('promise-b');
  try {
    await cache.start({ name: a, memory: '4mb' });
    await cache.insert('where', 'a');
    await cache.start({ name: b, memory: '4mb' });
    assert.equal(await cache.get('where'), '');
    await cache.insert('where', 'b');
    await cache.start({ name: a });
    assert.equal(await cache.get('where'), 'a');
  } finally {
    await cache.close();
    kvshm.destroy(a);
    kvshm.destroy(b);
  }
});

test('ESM: import from kvshm/promise and kvshm', async () => {
  const esm = await import('kvshm/promise');
  assert.equal(esm.start, cache.start);
  assert.equal(esm.default.insert, cache.insert);
  const main = await import('kvshm');
  assert.equal(main.open, kvshm.open);
  assert.equal(main.default.Cache, kvshm.Cache);
  assert.equal(main.KvshmError, kvshm.KvshmError);
});
