// 72.keyv: kvshm/keyv, the Keyv store, beyond what @keyv/test-suite checks
// (make test-keyv): two processes sharing a namespace in every mode, one
// native handle per name, values too large for the cache, disconnect, and
// what each of the store's two modes stores.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const util = require('util');
const { Keyv } = require('keyv');
const { kvshm, onCleanup, tmpDir, runNode, fixture, sleep } = require('./helpers');
const KeyvKvshm = require('../lib/keyv');
const shared = require('../lib/shared');

const { createKeyv } = KeyvKvshm;
let seq = 0;

/**
 * A cache name kv<pid>-tag-n, destroyed when t ends; a SQLite-backed
 * cache's reaper is waited for, so nothing writes into the test's
 * directory after it (as helpers.adopt does).
 */
function kvName(t, tag) {
  const name = `kv${process.pid}-${tag}-${seq++}`;
  onCleanup(t, () => {
    let reaper = 0;
    try {
      const c = kvshm.open(name, { create: false });
      if (c.sqlitePath) reaper = c.stats().reaperPid;
      c.destroy();
    } catch {
      kvshm.destroy(name);
    }
    const wait = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 1000 && reaper && alive(reaper); i++) Atomics.wait(wait, 0, 0, 10);
  });
  return name;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// A Keyv over kvshm/keyv, disconnected when t ends; errors are collected.
function keyvFor(t, name, options, { native = false, namespace = 'keyv' } = {}) {
  const keyv = native
    ? createKeyv(name, options, { namespace })
    : new Keyv({ store: new KeyvKvshm(name, options), namespace });
  keyv.errors = [];
  keyv.on('error', (err) => keyv.errors.push(err));
  onCleanup(t, () => { keyv.disconnect(); });
  return keyv;
}

const TIERS = {
  'memory-only': () => ({ memory: '4mb' }),
  'SQLite-backed': (dir) => ({ memory: '4mb', sqlite: path.join(dir, 'k.db') }),
  persistent: (dir) => ({ memory: '4mb', sqlite: path.join(dir, 'k.db'), persistent: true, flushDelay: 50 }),
};

const show = (v) => util.inspect(v, { depth: 5 });

for (const [tier, optionsFor] of Object.entries(TIERS)) {
  for (const native of [false, true]) {
    const mode = `${native ? 'native' : 'serialized'}, ${tier}`;

    test(`two processes share a namespace; clear of one namespace leaves another (${mode})`, { timeout: 60000 }, async (t) => {
      const options = optionsFor(tmpDir(t)); // removed after the cache
      const name = kvName(t, 'peer');
      const a = keyvFor(t, name, options, { native, namespace: 'a' });
      const b = keyvFor(t, name, options, { native, namespace: 'b' });
      assert.equal(await a.set('x', { n: 1, list: [1, 'two'] }), true);
      assert.equal(await a.set('y', 'text', 60000), true);
      assert.equal(await a.set('buf', Buffer.from('bytes')), true);
      assert.equal(await b.set('x', 'bee'), true);
      if (options.sqlite) a.store.cache.flush(); // both tiers hold them

      const ops = [
        ['get', 'x'], ['get', 'y'], ['getMany', ['x', 'y', 'none']], ['has', 'buf'],
        ['get', 'buf'], ['iterate'], ['clear'], ['iterate'], ['set', 'z', 3], ['iterate'],
      ];
      const r = await runNode(fixture('keyv-peer.js'),
        [name, JSON.stringify(options), native ? '1' : '0', 'a', JSON.stringify(ops)]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.deepEqual(out, [
        show({ n: 1, list: [1, 'two'] }), show('text'), show([{ n: 1, list: [1, 'two'] }, 'text', undefined]),
        'true', show(Buffer.from('bytes')),
        show([['buf', Buffer.from('bytes')], ['x', { n: 1, list: [1, 'two'] }], ['y', 'text']]),
        'undefined', '[]', 'true', show([['z', 3]]),
      ]);

      // What the other process did is seen here at once.
      assert.equal(await a.get('x'), undefined);
      assert.equal(await a.get('z'), 3);
      assert.equal(await b.get('x'), 'bee');
      const seen = [];
      for await (const entry of a.iterator()) seen.push(entry);
      assert.deepEqual(seen, [['z', 3]]);

      // The clear reached the SQLite tier too: rebuilt from the file alone,
      // the cache has b's key and a's new one, none of a's cleared ones.
      if (options.sqlite) {
        await a.disconnect();
        await b.disconnect();
        assert.equal(shared.refs(name), 0);
        kvshm.open(name, { create: false }).destroy();
        const again = keyvFor(t, name, options, { native, namespace: 'b' });
        assert.equal(await again.get('x'), 'bee');
        assert.deepEqual([...again.store.cache.keys()].sort(), ['a:z', 'b:x']);
      }
      assert.deepEqual([...a.errors, ...b.errors], []);
    });
  }
}

test('what each mode stores: the envelope string, or the value as kvshm\'s own type', async (t) => {
  const name = kvName(t, 'modes');
  const serialized = keyvFor(t, name, { memory: '2mb' }, { namespace: 's' });
  const native = keyvFor(t, name, { memory: '2mb' }, { native: true, namespace: 'n' });
  const { cache } = native.store;
  assert.equal(serialized.store.native, false);
  assert.equal(native.store.native, true);

  await serialized.set('k', { a: 1 }, 60000);
  const envelope = JSON.parse(cache.get('s:k'));
  assert.deepEqual(envelope.value, { a: 1 });
  assert.ok(Math.abs(envelope.expires - (Date.now() + 60000)) < 1000);

  // Native: other kvshm users read (and write) the values as they are.
  for (const v of ['text', 42, -0, true, 2n ** 70n, Buffer.from([1, 2]), new Uint8Array([3]), { o: [null] }, null]) {
    assert.equal(await native.set('k', v), true);
    assert.deepEqual(cache.get('n:k'), v);
    assert.deepEqual(await native.get('k'), v);
  }
  cache.set('n:fromKvshm', { written: 'by kvshm' });
  assert.deepEqual(await native.get('fromKvshm'), { written: 'by kvshm' });
  // The expiry is kvshm's TTL, and Keyv sees it.
  await native.set('ttl', 'v', 60000);
  const raw = await native.getRaw('ttl');
  assert.equal(raw.value, 'v');
  assert.equal(raw.expires, cache.expiresAt('n:ttl'));
  assert.ok(cache.ttl('n:ttl') > 59000);
  assert.equal((await native.getRaw('k')).expires, undefined, 'no TTL: no expires');
  // undefined (which kvshm cannot hold) removes the key: Keyv reads it as undefined.
  assert.equal(await native.set('k', undefined), true);
  assert.equal(cache.has('n:k'), false);
  assert.equal(await native.get('k'), undefined);
  // A Buffer inside an object comes back as JSON makes it.
  await native.set('nested', { b: Buffer.from('x') });
  assert.deepEqual(await native.get('nested'), { b: { type: 'Buffer', data: [120] } });
  assert.deepEqual([...serialized.errors, ...native.errors], []);
});

test('the TTL runs in kvshm: an expired key is gone for every reader', async (t) => {
  const name = kvName(t, 'ttl');
  for (const native of [false, true]) {
    const keyv = keyvFor(t, name, { memory: '2mb', reaper: false }, { native, namespace: `t${native}` });
    await keyv.set('short', 'v', 30);
    await keyv.set('frac', 'v', 0.5); // rounded up to 1 ms, not refused
    await keyv.set('long', 'v', 60000);
    await sleep(80);
    const key = `t${native}:short`;
    assert.equal(keyv.store.cache.get(key), undefined);
    assert.equal(await keyv.get('short'), undefined);
    assert.equal(await keyv.get('frac'), undefined);
    assert.equal(await keyv.get('long'), 'v');
    assert.deepEqual(keyv.errors, []);
  }
});

test('stores over one name share one native handle, closed by the last disconnect', async (t) => {
  const name = kvName(t, 'share');
  const one = new KeyvKvshm(name, { memory: '4mb' });
  const two = new KeyvKvshm(name, { memory: '4mb' }, { native: true });
  const cache = one.cache;
  assert.equal(two.cache, cache, 'one handle');
  assert.equal(shared.refs(name), 2);
  // Options the open cache accepts (memory omitted: whatever it has) share it too.
  const three = new KeyvKvshm(name, { lockTimeout: 5000 });
  assert.equal(three.cache, cache);
  assert.equal(shared.refs(name), 3);

  await one.disconnect();
  await one.disconnect(); // idempotent: one reference dropped, not two
  assert.equal(shared.refs(name), 2);
  assert.equal(cache.closed, false);
  assert.equal(await two.set('k', { value: 1, expires: undefined }), true);
  assert.equal(await three.has('k'), true);
  // The disconnected store refuses, with an error event.
  const errors = [];
  one.on('error', (err) => errors.push(err));
  assert.equal(await one.get('k'), undefined);
  assert.equal(await one.set('k', '"v"'), false);
  assert.throws(() => one.cache, { name: 'KvshmError', code: 'ECLOSED' });
  assert.deepEqual(errors.map((e) => e.code), ['ECLOSED', 'ECLOSED']);

  await two.disconnect();
  await three.disconnect();
  assert.equal(shared.refs(name), 0);
  assert.equal(cache.closed, true, 'the last disconnect closed the handle');
  const four = new KeyvKvshm(name);
  assert.notEqual(four.cache, cache, 'a new handle once all were closed');
  assert.equal(four.cache.get('k'), 1, 'the entries stayed in the cache');
  await four.disconnect();
});

test('different options on one name: kvshm\'s ECONFIG, readonly must agree', async (t) => {
  const name = kvName(t, 'config');
  const store = new KeyvKvshm(name, { memory: '4mb' });
  onCleanup(t, () => { store.disconnect(); });
  assert.throws(() => new KeyvKvshm(name, { memory: '8mb' }),
    (err) => err.name === 'KvshmError' && err.code === 'ECONFIG' && err.option === 'memory');
  assert.throws(() => new KeyvKvshm(name, { readonly: true }),
    { name: 'KvshmError', code: 'ECONFIG', message: /readonly/ });
  assert.throws(() => new KeyvKvshm(name, { memory: 'lots' }), TypeError);
  assert.throws(() => new KeyvKvshm(name, {}, { raw: true }), { name: 'TypeError', message: /unknown store option 'raw'/ });
  assert.equal(shared.refs(name), 1, 'the refused stores took no reference');
  // Nor did they break the one that works.
  assert.equal(await store.set('k', '"v"'), true);
});

test('a value too large for the cache: set resolves false and emits the RangeError; the store works on', async (t) => {
  const name = kvName(t, 'big');
  const probe = kvshm.open(name, { memory: '2mb' });
  const max = probe.stats().maxValue;
  probe.close();
  const big = 'x'.repeat(max + 1000);
  for (const native of [false, true]) {
    const keyv = keyvFor(t, name, { memory: '2mb' }, { native, namespace: `b${native}` });
    assert.equal(await keyv.set('big', big), false);
    assert.equal(keyv.errors.length, 1);
    const [err] = keyv.errors;
    assert.equal(err.name, 'RangeError');
    assert.equal(err.code, 'ETOOBIG');
    for (const word of [/limit of \d+ bytes/, /memory/, /slotSize/, /stripes/]) assert.match(err.message, word);
    assert.equal(await keyv.get('big'), undefined);
    assert.equal(await keyv.set('small', 'ok'), true);
    assert.equal(await keyv.get('small'), 'ok');

    // setMany: the others are stored, the refused one is false and emitted once.
    keyv.errors.length = 0;
    const results = await keyv.setMany([
      { key: 'm1', value: 1 }, { key: 'm2', value: big }, { key: 'm3', value: 3, ttl: 60000 }]);
    assert.deepEqual(results, [true, false, true]);
    assert.deepEqual(await keyv.get(['m1', 'm2', 'm3']), [1, undefined, 3]);
    assert.deepEqual(keyv.errors.map((e) => e.code), ['ETOOBIG']);
    if (native) {
      // A value kvshm does not store (checked before anything is written).
      keyv.errors.length = 0;
      assert.deepEqual(await keyv.setMany([{ key: 'v1', value: 1 }, { key: 'v2', value: new Float64Array(1) }]), [true, false]);
      assert.equal(await keyv.get('v1'), 1);
      assert.deepEqual(keyv.errors.map((e) => e.name), ['TypeError']);
    }
  }
  // Without Keyv (no 'error' listener), the call rejects with the error.
  const bare = new KeyvKvshm(name);
  onCleanup(t, () => { bare.disconnect(); });
  await assert.rejects(bare.set('k', big), { name: 'RangeError', code: 'ETOOBIG' });
  // throwOnErrors: emitted and rejected.
  const strict = new KeyvKvshm(name, undefined, { throwOnErrors: true });
  onCleanup(t, () => { strict.disconnect(); });
  const seen = [];
  strict.on('error', (e) => seen.push(e.code));
  await assert.rejects(strict.set('k', big), { code: 'ETOOBIG' });
  assert.deepEqual(seen, ['ETOOBIG']);
});

test('a Keyv whose serializing does not match the store\'s mode is told how to fix it', async (t) => {
  const name = kvName(t, 'mismatch');
  const wrong1 = new Keyv({ store: new KeyvKvshm(name, undefined, { native: true }) });
  const wrong2 = new Keyv({ store: new KeyvKvshm(name), serialize: undefined, deserialize: undefined });
  for (const keyv of [wrong1, wrong2]) {
    const errors = [];
    keyv.on('error', (e) => errors.push(e));
    onCleanup(t, () => { keyv.disconnect(); });
    assert.equal(await keyv.set('k', 1), false);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].name, 'TypeError');
    assert.match(errors[0].message, /createKeyv|native: true/);
  }
  // Keyv 6 reads store.capabilities (Keyv 5 never does) and is refused there.
  assert.throws(() => wrong1.store.capabilities, { message: /store for Keyv 5.*Keyv 6/ });
  assert.throws(() => createKeyv(name, {}, { serialize: JSON.stringify }),
    { name: 'TypeError', message: /does not take the Keyv option 'serialize'/ });
});

test('clear() and iterator() with no namespace cover the whole cache; deleteMany and hasMany', async (t) => {
  const name = kvName(t, 'nons');
  const keyv = new Keyv({ store: new KeyvKvshm(name), namespace: undefined });
  onCleanup(t, () => { keyv.disconnect(); });
  const { cache } = keyv.store;
  cache.set('other', 1);
  await keyv.set('k', 'v');
  assert.deepEqual(await keyv.has(['k', 'none']), [true, false]);
  assert.equal(await keyv.delete(['k', 'none']), true, 'true if any was deleted');
  assert.equal(await keyv.delete(['k', 'none']), false);
  assert.equal(cache.has('other'), true);
  await keyv.clear();
  assert.equal(cache.size, 0);
});
