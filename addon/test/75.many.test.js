// 75.many: getMany / setMany / deleteMany, clear({ prefix }), peek, ttl and
// expiresAt, in each mode, with keys in both tiers (a 1 MiB cache holding
// more than fits: most keys of the SQLite modes live only in SQLite).
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawn } = require('child_process');
const { kvshm, uniqueName, adopt, tmpDir, sleep, fixture } = require('./helpers');

const MODES = ['memory-only', 'SQLite-backed', 'persistent'];

function sqliteArg(t, mode) {
  if (mode === 'memory-only') return '';
  const file = path.join(tmpDir(t), 'many.db');
  return mode === 'persistent' ? `${file}+p` : file;
}

function open(t, name, arg) {
  const o = { memory: arg ? '1mb' : '16mb', stripes: 4 };
  if (arg) {
    o.sqlite = arg.replace(/\+p$/, '');
    if (arg.endsWith('+p')) o.persistent = true;
  }
  return adopt(t, kvshm.open(name, o));
}

const N = 12000;
const value = (i) => (i % 4 === 0 ? `s${i}-${'x'.repeat(60)}` : i % 4 === 1 ? i * 1.5
  : i % 4 === 2 ? { i, tags: ['a', 'b'] } : Buffer.from(`b${i}`));

for (const mode of MODES) {
  test(`${mode}: getMany / setMany / deleteMany agree with the one-key calls`, async (t) => {
    const cache = open(t, uniqueName('many'), sqliteArg(t, mode));
    const keys = Array.from({ length: N }, (_, i) => `m:${i}`);
    cache.setMany(keys.map((k, i) => [k, value(i)]));
    cache.setMany([['m:5', 'first'], ['m:5', 'last']]); // the last wins
    if (mode !== 'memory-only') cache.flush();
    const got = cache.getMany([...keys, 'm:none']);
    assert.equal(got.length, N + 1);
    for (let i = 0; i < N; i++) {
      assert.deepEqual(got[i], i === 5 ? 'last' : value(i), keys[i]);
      assert.deepEqual(cache.get(keys[i]), got[i]);
    }
    assert.equal(got[N], undefined);
    if (mode !== 'memory-only') {
      assert.ok(cache.stats().entries < N, 'some keys are only in SQLite');
    }
    // Large values (chains of slots, over getMany's first buffer).
    const big = 'y'.repeat(100_000); // over getMany's first buffer for few keys
    cache.setMany([['big:1', big], ['big:2', big + 'z']]);
    assert.deepEqual(cache.getMany(['big:1', 'big:2']), [big, big + 'z']);
    assert.deepEqual(cache.getMany(['big:1']), [big]);
    // Deletes, and deleting again.
    const odd = keys.filter((_, i) => i % 2);
    assert.ok(cache.deleteMany(odd).every(Boolean));
    assert.ok(cache.deleteMany(odd.slice(0, 50)).every((d) => d === false));
    const after = cache.getMany(keys);
    for (let i = 0; i < N; i++) assert.equal(after[i] === undefined, i % 2 === 1, keys[i]);
    // TTLs: per entry, and for all.
    cache.setMany([['t:1', 1], ['t:2', 2, { ttl: 100 }]], { ttl: 60_000 });
    assert.ok(cache.ttl('t:1') > 59_000 && cache.ttl('t:1') <= 60_000);
    assert.ok(cache.ttl('t:2') <= 100);
    await sleep(150);
    assert.deepEqual(cache.getMany(['t:1', 't:2']), [1, undefined]);
    // Arguments.
    assert.throws(() => cache.getMany('m:1'), TypeError);
    assert.throws(() => cache.getMany([1]), TypeError);
    assert.throws(() => cache.setMany([['k']]), /must be \[key, value\]/);
    assert.throws(() => cache.setMany([['k', undefined]]), TypeError);
    assert.throws(() => cache.setMany([['k', 1]], { tll: 5 }), /unknown setMany option 'tll'/);
    assert.deepEqual(cache.getMany([]), []);
    assert.deepEqual(cache.getMany(new Set(['m:0'])), [value(0)]);
  });

  test(`${mode}: a value over the limit is a RangeError naming the options; the others are stored`, (t) => {
    const cache = open(t, uniqueName('big'), sqliteArg(t, mode));
    const tooBig = 'z'.repeat(cache.stats().maxValue + 100);
    assert.throws(() => cache.set('k', tooBig), (err) => err instanceof RangeError &&
      /limit of \d+ bytes/.test(err.message) && /`memory`/.test(err.message) &&
      /`stripes`/.test(err.message) && /`slotSize`/.test(err.message));
    assert.throws(() => cache.setMany([['ok1', 1], ['k', tooBig], ['ok2', 2], ['k2', tooBig]]),
      (err) => err instanceof RangeError && err.failed.join() === '1,3');
    assert.deepEqual(cache.getMany(['ok1', 'k', 'ok2']), [1, undefined, 2]);
  });

  test(`${mode}: clear({ prefix }) removes the prefix from both tiers, nothing else`, (t) => {
    const cache = open(t, uniqueName('clp'), sqliteArg(t, mode));
    cache.setMany(Array.from({ length: 3000 }, (_, i) => [`a:${i}`, i]));
    cache.setMany(Array.from({ length: 3000 }, (_, i) => [`b:${i}`, i]));
    if (mode !== 'memory-only') cache.flush();
    cache.clear({ prefix: 'a:' });
    assert.ok(cache.getMany(Array.from({ length: 3000 }, (_, i) => `a:${i}`)).every((v) => v === undefined));
    assert.deepEqual([...cache.keys({ prefix: 'a:' })], []);
    assert.equal([...cache.keys({ prefix: 'b:' })].length, 3000);
    assert.equal(cache.get('b:2999'), 2999);
    cache.set('a:new', 1);
    assert.deepEqual([...cache.keys({ prefix: 'a:' })], ['a:new']);
    assert.throws(() => cache.clear({ prefix: 'x'.repeat(257) }), /at most 256 bytes/);
    assert.throws(() => cache.clear({ prefx: 'a' }), /unknown/);
    cache.clear({ prefix: '' }); // everything
    assert.equal([...cache.keys()].length, 0);
  });

  test(`${mode}: clear({ prefix }) racing a writer in another process`, { timeout: 60000 }, async (t) => {
    const name = uniqueName('clr');
    const arg = sqliteArg(t, mode);
    const cache = open(t, name, arg);
    cache.setMany(Array.from({ length: 500 }, (_, i) => [`q:${i}`, 'keep']));
    const w = spawn(process.execPath, [fixture('prefix-writer.js'), name, arg], { stdio: 'inherit' });
    const exited = new Promise((r) => w.once('exit', r));
    for (let round = 0; round < 25; round++) {
      const want = (round + 1) * 200;
      while (!(cache.get('w:done') >= want)) await sleep(2);
      const floor = cache.get('w:done'); // sets up to here finished before we begin
      cache.clear({ prefix: 'p:' });
      for (const [k, v] of cache.entries({ prefix: 'p:' })) {
        assert.ok(v > floor, `${k} = ${v} survived a clear begun after set ${floor}`);
      }
      for (const v of cache.getMany(Array.from({ length: 400 }, (_, i) => `p:${i}`))) {
        assert.ok(v === undefined || v > floor, `a get saw ${v} after a clear begun after set ${floor}`);
      }
    }
    cache.set('stop', 1);
    assert.equal(await exited, 0);
    assert.ok(cache.getMany(Array.from({ length: 500 }, (_, i) => `q:${i}`)).every((v) => v === 'keep'));
  });

  test(`${mode}: peek, ttl and expiresAt`, (t) => {
    const cache = open(t, uniqueName('peek'), sqliteArg(t, mode));
    const before = Date.now();
    cache.set('t', 'v', { ttl: 5000 });
    cache.set('n', 'v');
    assert.ok(cache.expiresAt('t') >= before + 5000 && cache.expiresAt('t') <= Date.now() + 5000);
    assert.equal(cache.expiresAt('n'), Infinity);
    assert.equal(cache.ttl('n'), Infinity);
    assert.equal(cache.expiresAt('none'), undefined);
    assert.equal(cache.ttl('none'), undefined);
    const hits = cache.stats().hits;
    assert.equal(cache.peek('t'), 'v');
    assert.equal(cache.peek('none'), undefined);
    assert.equal(cache.stats().hits, hits, 'a peek is not a hit');
    assert.throws(() => cache.peek(1), TypeError);
  });
}
