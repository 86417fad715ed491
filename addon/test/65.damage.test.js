// 65.damage: a segment damaged by another process, and a segment of another
// user.  Garbage in the stripe locks' words (glibc asserts on some of it:
// SIGABRT in Node) and a file cut short under us (SIGBUS) must be thrown
// KvshmErrors, the process alive; another user's segment is refused unless
// its owner is trusted; a read-only attach needs only read permission, and
// what it cannot do without a lock is refused saying why.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { spawnSync } = require('child_process');
const { kvshm, freshCache, uniqueName } = require('./helpers');
const { KvshmError } = kvshm;

const HDR = 16384; // KVSHM_HDR_SIZE (libshm/layout.h)
const STRIPE = 256;

function pokeU32(name, offset, value) {
  const fd = fs.openSync(`/dev/shm/kvshm.${name}`, 'r+');
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  fs.writeSync(fd, b, 0, 4, offset);
  fs.closeSync(fd);
}

function value(i) {
  return `value-${i}-`.repeat(1 + (i % 30));
}

for (const mode of ['memory-only', 'sqlite']) {
  test(`garbage in every stripe lock (${mode}): errors, then the same values`, (t) => {
    // Memory-only: no reaper, so the gets below are the first to meet the
    // damage.  A SQLite cache needs its reaper, which may meet a damaged
    // lock first and make it again: then no get throws.
    const options = { memory: '2mb', stripes: 4, lockTimeout: 300, reaper: false };
    if (mode === 'sqlite') {
      delete options.reaper;
      const dir = fs.mkdtempSync('/tmp/nd-damage-');
      t.after(() => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 30, retryDelay: 100 }));
      options.sqlite = `${dir}/d.db`;
    }
    const cache = freshCache(t, options, 'lock');
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, value(i));
    const words = [[16, 64], [16, 0], [8, 0x12345678], [0, 0x3fffffff]];
    for (const [off, word] of words) {
      for (let s = 0; s < 4; s++) pokeU32(cache.name, HDR + s * STRIPE + off, word);
      // Gets read without the lock (a get that returns, returns the right
      // value); the first lock of each stripe, by a get or a set, meets
      // the damage once and makes the lock again.
      let thrown = 0;
      for (const op of [(i) => assert.equal(cache.get(`k${i}`), value(i)),
        (i) => cache.set(`k${i}`, value(i))]) {
        for (let i = 0; i < 100; i++) {
          try {
            op(i);
          } catch (err) {
            assert.ok(err instanceof KvshmError, String(err));
            assert.equal(err.code, 'ECORRUPT', err.message);
            assert.match(err.message, /lock/);
            thrown++;
          }
        }
      }
      const least = mode === 'sqlite' ? 0 : 1;
      assert.ok(thrown >= least && thrown <= 4, `word ${word} at ${off}: ${thrown} errors`);
      for (let i = 0; i < 100; i++) assert.equal(cache.get(`k${i}`), value(i));
    }
  });
}

test('the segment file cut short: ECORRUPT, no SIGBUS', (t) => {
  const cache = freshCache(t, { memory: '2mb', stripes: 4 }, 'cut');
  for (let i = 0; i < 100; i++) cache.set(`k${i}`, value(i));
  fs.truncateSync(`/dev/shm/kvshm.${cache.name}`, 1 << 20);
  let thrown = 0;
  for (let i = 0; i < 100; i++) {
    try {
      assert.equal(cache.get(`k${i}`), value(i));
    } catch (err) {
      assert.equal(err.code, 'ECORRUPT', err.message);
      thrown++;
    }
  }
  assert.ok(thrown > 0);
  assert.throws(() => cache.set('x', 'y'), (err) => err.code === 'ECORRUPT' && /cut short/.test(err.message));
  assert.throws(() => kvshm.open(cache.name), (err) => err.code === 'ECORRUPT');
});

test('trustUid / trustGid are checked', () => {
  for (const bad of [-1, 1.5, 2 ** 32, 'root']) {
    assert.throws(() => kvshm.open(uniqueName('tr'), { trustUid: bad }), /trustUid/);
    assert.throws(() => kvshm.open(uniqueName('tr'), { trustGid: bad }), /trustGid/);
  }
});

const NOBODY = 65534;
function asNobody(script) {
  return spawnSync(process.execPath, ['-e', script], {
    uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 20000,
    env: { ...process.env, KVSHM_REAPER: 'off' },
  });
}
const lib = require.resolve('../lib');

test("another user's segment: EOWNER, unless trusted", { skip: process.getuid() !== 0 && 'needs root to act as another user' }, (t) => {
  const name = uniqueName('squat');
  t.after(() => fs.rmSync(`/dev/shm/kvshm.${name}`, { force: true }));
  // nobody makes the cache first (squatting the name), readable by all.
  const r = asNobody(`const k = require(${JSON.stringify(lib)});
    const c = k.open(${JSON.stringify(name)}, { memory: '1mb', mode: 0o666, reaper: false });
    c.set('planted', 'by nobody'); c.close();`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.statSync(`/dev/shm/kvshm.${name}`).uid, NOBODY);
  assert.throws(() => kvshm.open(name, { reaper: false }), (err) => {
    assert.equal(err.code, 'EOWNER');
    assert.match(err.message, /uid 65534/);
    assert.match(err.message, /trust/);
    return true;
  });
  // Destroying it untrusted would drop it unwritten: refused, kept.
  assert.throws(() => kvshm.destroy(name), (err) => err.code === 'EOWNER');
  assert.ok(fs.existsSync(`/dev/shm/kvshm.${name}`));
  const c = kvshm.open(name, { reaper: false, trustUid: NOBODY });
  assert.equal(c.get('planted'), 'by nobody');
  assert.equal(c.destroy(), true); /* its handle's trust is used */
  assert.ok(!fs.existsSync(`/dev/shm/kvshm.${name}`));
});

test('a read-only attach needs only read permission', { skip: process.getuid() !== 0 && 'needs root to act as another user' }, (t) => {
  const c = freshCache(t, { memory: '1mb', mode: 0o644, reaper: false }, 'ro');
  c.set('k', 'v');
  c.set('n', 42);
  assert.equal(fs.statSync(`/dev/shm/kvshm.${c.name}`).mode & 0o777, 0o644);
  // nobody may read the segment, not write it: it reads without locks
  // (its mapping is read-only: a write would kill it with SIGSEGV).
  const r = asNobody(`const k = require(${JSON.stringify(lib)});
    const out = [];
    const c = k.open(${JSON.stringify(c.name)}, { readonly: true, trustUid: 0 });
    out.push(c.get('k'), c.get('n'), String(c.get('absent')), c.has('k'));
    out.push(JSON.stringify(c.getMany(['k', 'absent'])), c.stats().entries);
    for (const f of [() => c.set('x', 'y'), () => [...c.keys()]]) {
      try { f(); out.push('no error'); } catch (e) { out.push(e.code + ': ' + e.message); }
    }
    c.close();
    try { k.open(${JSON.stringify(c.name)}, { trustUid: 0 }); out.push('opened for writing'); }
    catch (e) { out.push(e.code + ': ' + e.message); }
    console.log(JSON.stringify(out));`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.slice(0, 6), ['v', 42, 'undefined', true, '["v",null]', 2]);
  assert.match(out[6], /^ERDONLY: /);
  assert.match(out[7], /^ERDONLY: .*without write permission/);
  assert.match(out[8], /^EACCES: .*Open it read-only/);
});

test('the mode asked for is the mode the segment gets, whatever the umask', (t) => {
  const old = process.umask(0o077);
  try {
    const c = freshCache(t, { memory: '1mb', mode: 0o640, reaper: false }, 'mode');
    assert.equal(fs.statSync(`/dev/shm/kvshm.${c.name}`).mode & 0o777, 0o640);
  } finally {
    process.umask(old);
  }
});
