// 30.types: every value type comes back as the type it went in as.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { freshCache } = require('./helpers');

const MiB = 1024 * 1024;

test('strings: full UTF-8, emoji, astral plane, NUL, empty, 1 MiB', (t) => {
  const c = freshCache(t, { memory: '16mb' });
  const strings = [
    '', 'a', 'plain ascii', 'héllo wörld', '日本語のテキスト', '😀🎉👩‍👩‍👧‍👦',
    '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈 𝄞 \u{10FFFF}', 'nul\0inside\0', 'line\nbreak\ttab',
    '\uFEFFbom', 'x'.repeat(MiB), '€'.repeat(MiB / 3 | 0), '😀'.repeat(MiB / 4 - 1),
  ];
  for (const s of strings) {
    assert.equal(c.set('s', s), true);
    const back = c.get('s');
    assert.equal(typeof back, 'string');
    assert.equal(back.length, s.length);
    assert.ok(back === s, `round trip of a ${s.length}-char string`);
  }
  // Keys are full UTF-8 too.
  for (const k of ['ключ', '😀', '𝄞 key', 'a\0b', '日本']) {
    c.set(k, `value of ${k}`);
  }
  for (const k of ['ключ', '😀', '𝄞 key', 'a\0b', '日本']) {
    assert.equal(c.get(k), `value of ${k}`);
  }
  assert.equal(c.get('a'), undefined, "'a\\0b' is its own key");
});

test('lone surrogates become U+FFFD (UTF-8 cannot carry them)', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  c.set('lone', 'a\uD800b');
  assert.equal(c.get('lone'), 'a\uFFFDb');
  c.set('\uDC00', 'key with a lone surrogate');
  assert.equal(c.get('\uFFFD'), 'key with a lone surrogate');
});

test('Buffers: 0 bytes, binary, 1 MiB; a Buffer comes back as a Buffer', (t) => {
  const c = freshCache(t, { memory: '16mb' });
  const bufs = [Buffer.alloc(0), Buffer.from([0, 255, 0, 128]), crypto.randomBytes(1000), crypto.randomBytes(MiB)];
  for (const b of bufs) {
    assert.equal(c.set('b', b), true);
    const back = c.get('b');
    assert.ok(Buffer.isBuffer(back));
    assert.equal(back.length, b.length);
    assert.ok(back.equals(b));
  }
  // A view into a larger ArrayBuffer stores only its own bytes.
  const big = crypto.randomBytes(64);
  c.set('view', big.subarray(10, 20));
  assert.ok(c.get('view').equals(big.subarray(10, 20)));
  // The returned Buffer is a copy: changing it changes nothing stored.
  const got = c.get('view');
  got[0] ^= 0xff;
  assert.ok(c.get('view').equals(big.subarray(10, 20)));
});

test('Uint8Arrays come back as Uint8Arrays, not Buffers', (t) => {
  const c = freshCache(t, { memory: '16mb' });
  for (const u of [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(crypto.randomBytes(MiB))]) {
    c.set('u', u);
    const back = c.get('u');
    assert.ok(back instanceof Uint8Array);
    assert.equal(Buffer.isBuffer(back), false);
    assert.deepEqual(back, u);
  }
  const ab = new Uint8Array([9, 8, 7, 6, 5]);
  c.set('sub', ab.subarray(1, 4));
  assert.deepEqual(c.get('sub'), new Uint8Array([8, 7, 6]));
});

test('numbers keep their exact value, including NaN, Infinity and -0', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  const numbers = [0, -0, 1, -1, 42, 0.1, -0.5, 1 / 3, Math.PI, 1e21, 1e-7, 123456789.123,
    Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, Number.MAX_VALUE, Number.MIN_VALUE,
    -Number.MAX_VALUE, 2 ** 63, -(2 ** 63), 2 ** 64, 5e-324, NaN, Infinity, -Infinity];
  for (const n of numbers) {
    c.set('n', n);
    const back = c.get('n');
    assert.equal(typeof back, 'number');
    assert.ok(Object.is(back, n), `${n} came back as ${back}`);
  }
});

test('booleans and bigints', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  c.set('t', true);
  c.set('f', false);
  assert.equal(c.get('t'), true);
  assert.equal(c.get('f'), false);
  for (const b of [0n, 1n, -1n, 2n ** 64n, -(10n ** 40n) + 7n]) {
    c.set('big', b);
    assert.equal(c.get('big'), b);
  }
});

test('objects, arrays and null go through JSON', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  const values = [
    {}, [], null, { a: 1, b: 'two', c: [3, { d: null }], e: true },
    [1, 'x', [2, [3]], { '😀': '🎉' }],
    { deep: { deeper: { deepest: 'ü'.repeat(1000) } } },
  ];
  for (const v of values) {
    c.set('o', v);
    assert.deepEqual(c.get('o'), v);
  }
  // Each get is a new object.
  c.set('o', { n: 1 });
  const a = c.get('o');
  a.n = 2;
  assert.deepEqual(c.get('o'), { n: 1 });
  // JSON's own rules: Dates become strings, undefined members vanish.
  const when = new Date(0);
  c.set('o', { when, gone: undefined });
  assert.deepEqual(c.get('o'), { when: when.toISOString() });
  // A class instance comes back as a plain object.
  c.set('o', new (class Point { constructor() { this.x = 1; } })());
  assert.deepEqual(c.get('o'), { x: 1 });
});

test('values JSON cannot carry, and other views, are TypeErrors', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  for (const v of [undefined, () => 1, Symbol('s')]) {
    assert.throws(() => c.set('k', v), { name: 'TypeError', message: /value must be a string, number, boolean, bigint, Buffer, Uint8Array or a JSON-serialisable object/ });
  }
  assert.throws(() => c.set('k', undefined), { message: /use delete\(\) to remove a key/ });
  for (const v of [new Float64Array(2), new DataView(new ArrayBuffer(4)), new Uint8ClampedArray(2), new Int8Array(1)]) {
    assert.throws(() => c.set('k', v), { name: 'TypeError', message: /store a Buffer or Uint8Array/ });
  }
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(() => c.set('k', cyclic), TypeError);
  assert.throws(() => c.set('k', { toJSON() { return undefined; } }), TypeError);
  assert.equal(c.has('k'), false);
});

test('the value buffer grows and shrinks across sizes', (t) => {
  const c = freshCache(t, { memory: '16mb' });
  const sizes = [1, 5000, 10, 300000, 4095, 4096, 4097, 1, MiB, 2];
  for (const n of sizes) c.set(`k${n}`, 'z'.repeat(n));
  for (const n of sizes) assert.equal(c.get(`k${n}`).length, n);
  for (const n of [...sizes].reverse()) assert.equal(c.get(`k${n}`), 'z'.repeat(n));
});

test('a type changes when the value is replaced', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  const seq = ['42', 42, 42n, true, { v: 42 }, Buffer.from('42'), new Uint8Array([52, 50]), null];
  for (const v of seq) {
    c.set('k', v);
    assert.deepEqual(c.get('k'), v);
  }
});
