// 10.open: opening, attaching, every open() option and its checks.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { kvshm, uniqueName, freshCache, adopt, tmpDir, segmentMode, sleep } = require('./helpers');
const { open, Cache, KvshmError, destroy, parseSize, constants } = kvshm;

test('open creates the segment; a second handle attaches to it', (t) => {
  const a = freshCache(t, { memory: '8mb' });
  assert.ok(fs.existsSync(`/dev/shm/kvshm.${a.name}`));
  assert.equal(a.closed, false);
  assert.equal(a.sqlitePath, null);
  a.set('k', 'from a');
  const b = open(a.name); // no options: whatever the cache has
  t.after(() => b.close());
  assert.equal(b.get('k'), 'from a');
  b.set('k2', 'from b');
  assert.equal(a.get('k2'), 'from b');
  assert.equal(b.stats().memory, 8 * 1024 * 1024);
});

test('new Cache() is open()', (t) => {
  const name = uniqueName('ctor');
  const c = new Cache(name, { memory: '4mb' });
  t.after(() => c.destroy());
  assert.ok(c instanceof Cache);
  assert.equal(c.name, name);
  assert.equal(Object.prototype.toString.call(c), '[object KvshmCache]');
  c.set('x', 1);
  assert.match(require('util').inspect(c), /KvshmCache\('nd\d+-ctor-\d+', size 1\)/);
});

test('memory accepts bytes and unit strings', (t) => {
  assert.equal(parseSize(4194304), 4194304);
  assert.equal(parseSize('4mb'), 4 << 20);
  assert.equal(parseSize('4 MiB'), 4 << 20);
  assert.equal(parseSize('4M'), 4 << 20);
  assert.equal(parseSize('1.5gb'), 1.5 * 2 ** 30);
  assert.equal(parseSize('2048kb'), 2 << 20);
  assert.equal(parseSize('1048576'), 1 << 20);
  const c = freshCache(t, { memory: '6mb' });
  assert.equal(c.stats().memory, 6 << 20);
  const d = freshCache(t, { memory: 5 * 1024 * 1024 });
  assert.equal(d.stats().memory, 5 << 20);
  const e = freshCache(t); // libshm's default
  assert.equal(e.stats().memory, constants.DEFAULT_MEMORY);
});

test('memory out of range or malformed', () => {
  assert.throws(() => open(uniqueName(), { memory: '1kb' }), { name: 'RangeError', message: /from 1mb \(1048576 bytes\)/ });
  assert.throws(() => open(uniqueName(), { memory: 0 }), RangeError);
  assert.throws(() => open(uniqueName(), { memory: 2 ** 60 }), RangeError);
  assert.throws(() => open(uniqueName(), { memory: 1.5 }), RangeError);
  assert.throws(() => open(uniqueName(), { memory: '12 parsecs' }), { name: 'TypeError', message: /'256mb'/ });
  assert.throws(() => open(uniqueName(), { memory: '-5mb' }), TypeError);
  assert.throws(() => open(uniqueName(), { memory: {} }), TypeError);
  // Too small for this many stripes: libshm's limit, still a RangeError.
  assert.throws(() => open(uniqueName(), { memory: '1mb', stripes: 1024, slotSize: 65536 }),
    { name: 'RangeError', message: /use at least \d+ bytes/ });
});

test('slotSize, stripes, defaultTtl are stored in the cache', (t) => {
  const c = freshCache(t, { memory: '8mb', slotSize: 256, stripes: 4, defaultTtl: 60000 });
  const s = c.stats();
  assert.equal(s.slotSize, 256);
  assert.equal(s.stripes, 4);
  assert.equal(s.defaultTtl, 60000);
  assert.ok(s.slotsPerStripe > 0);
  assert.equal(s.maxKey, constants.KEY_MAX);
});

test('slotSize, stripes, defaultTtl, lockTimeout, flushDelay ranges', () => {
  const bad = [
    [{ slotSize: 32 }, RangeError, /multiple of 8 from 64 to 65536|from 64 to 65536/],
    [{ slotSize: 100 }, RangeError, /multiple of 8/],
    [{ slotSize: 65544 }, RangeError, /65536/],
    [{ slotSize: '160' }, TypeError, /slotSize must be a number/],
    [{ stripes: 3 }, RangeError, /power of two from 1 to 1024/],
    [{ stripes: 2048 }, RangeError, /1024/],
    [{ stripes: 0 }, RangeError, /from 1 to 1024/],
    [{ defaultTtl: -1 }, RangeError, /defaultTtl must be a whole number from 0/],
    [{ defaultTtl: 1.5 }, RangeError, /defaultTtl/],
    [{ defaultTtl: '1s' }, TypeError, /defaultTtl must be a number/],
    [{ lockTimeout: 0 }, RangeError, /lockTimeout must be a whole number from 1 to 4294967295/],
    [{ lockTimeout: NaN }, TypeError, /lockTimeout/],
    [{ mode: 0o1000 }, RangeError, /mode must be a whole number from 1 to 511/],
    [{ mode: 'rw-r--r--' }, TypeError, /mode/],
    [{ sqlite: '/tmp/x.db', flushDelay: 0 }, RangeError, /flushDelay must be a whole number from 1 to 3600000/],
    [{ sqlite: '/tmp/x.db', flushDelay: 3600001 }, RangeError, /3600000/],
  ];
  for (const [opts, cls, re] of bad) {
    assert.throws(() => open(uniqueName(), opts), (err) => {
      assert.ok(err instanceof cls, `${JSON.stringify(opts)}: ${err}`);
      assert.match(err.message, re);
      return true;
    });
  }
});

test('unknown options and non-object options are TypeErrors', () => {
  assert.throws(() => open(uniqueName(), { memroy: '8mb' }),
    { name: 'TypeError', message: /unknown open option 'memroy' \(known: memory, / });
  assert.throws(() => open(uniqueName(), 'big'), { name: 'TypeError', message: /options must be an object/ });
  assert.throws(() => open(uniqueName(), [1]), TypeError);
  assert.throws(() => open(uniqueName(), { readonly: 'yes' }), { name: 'TypeError', message: /readonly must be a boolean/ });
  assert.throws(() => open(uniqueName(), { create: 1 }), TypeError);
  assert.throws(() => open(uniqueName(), { reaper: null }), TypeError);
  assert.throws(() => open(uniqueName(), { persistent: 'true', sqlite: '/tmp/x.db' }), TypeError);
});

test('cache names are checked', () => {
  assert.throws(() => open(42), { name: 'TypeError', message: /cache name must be a string, got number 42/ });
  assert.throws(() => open(''), { name: 'RangeError', message: /1 to 200 characters/ });
  assert.throws(() => open('x'.repeat(201)), { name: 'RangeError', message: /200/ });
  assert.throws(() => open('a/b'), { name: 'TypeError', message: /A-Z a-z 0-9 \. _ -/ });
  assert.throws(() => open('..'), TypeError);
  assert.throws(() => open('ünïcode'), TypeError);
  assert.throws(() => destroy('a b'), TypeError);
  assert.equal(destroy(uniqueName('never')), false);
});

test('mode sets the segment file mode', (t) => {
  const a = freshCache(t, { memory: '4mb' });
  assert.equal(segmentMode(a.name), 0o600);
  const b = freshCache(t, { memory: '4mb', mode: 0o640 });
  assert.equal(segmentMode(b.name), 0o640);
  const c = freshCache(t, { memory: '4mb', mode: '0604' });
  assert.equal(segmentMode(c.name), 0o604);
});

test('options that differ from the existing cache: ECONFIG naming the option', (t) => {
  const c = freshCache(t, { memory: '8mb', slotSize: 192, stripes: 2, defaultTtl: 5000 });
  const cases = [
    [{ memory: '16mb' }, 'memory', /exists with memory 8388608, you asked for 16777216/],
    [{ slotSize: 256 }, 'slotSize', /slotSize 192/],
    [{ stripes: 4 }, 'stripes', /stripes 2/],
    [{ defaultTtl: 1000 }, 'defaultTtl', /defaultTtl 5000/],
  ];
  for (const [opts, option, re] of cases) {
    assert.throws(() => open(c.name, opts), (err) => {
      assert.ok(err instanceof KvshmError);
      assert.equal(err.code, 'ECONFIG');
      assert.equal(err.status, constants.errors.ECONFIG);
      assert.equal(err.option, option);
      assert.match(err.message, re);
      assert.match(err.message, /omit the option/);
      assert.doesNotMatch(err.message, /memory_size|slot_size|default_ttl_ms/);
      return true;
    });
  }
  // The same values attach.
  const same = open(c.name, { memory: '8mb', slotSize: 192, stripes: 2, defaultTtl: 5000 });
  same.close();
});

test('readonly: reads work, writes throw ERDONLY; it never creates', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  c.set('k', 'v');
  const ro = open(c.name, { readonly: true });
  t.after(() => ro.close());
  assert.equal(ro.get('k'), 'v');
  assert.equal(ro.has('k'), true);
  assert.deepEqual([...ro.keys()], ['k']);
  for (const write of [() => ro.set('k', 'w'), () => ro.delete('k'), () => ro.incr('n'), () => ro.clear()]) {
    assert.throws(write, (err) => err instanceof KvshmError && err.code === 'ERDONLY' &&
      /open it without that option/.test(err.message));
  }
  assert.equal(c.get('k'), 'v');
  assert.throws(() => open(uniqueName('ro'), { readonly: true }), { code: 'ENOENT' });
});

test('create: false attaches only', (t) => {
  const name = uniqueName('nocreate');
  assert.throws(() => open(name, { create: false }), (err) => {
    assert.ok(err instanceof KvshmError);
    assert.equal(err.code, 'ENOENT');
    assert.match(err.message, /without create: false/);
    return true;
  });
  assert.equal(fs.existsSync(`/dev/shm/kvshm.${name}`), false);
  const c = freshCache(t, { memory: '4mb' });
  const d = open(c.name, { create: false });
  d.close();
});

test('a cache gets a kvshm-reaper unless reaper: false', async (t) => {
  const quiet = freshCache(t, { memory: '4mb', reaper: false });
  assert.equal(quiet.stats().reaperPid, 0);
  const c = freshCache(t, { memory: '4mb' });
  let pid = 0;
  for (let i = 0; i < 100 && !pid; i++) {
    pid = c.stats().reaperPid;
    if (!pid) await sleep(50);
  }
  assert.ok(pid > 0, 'the reaper registered itself');
  assert.equal(c.stats().reaperStarts >= 1, true);
  // It is a kvshm-reaper for this cache.
  const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.match(path.basename(cmd[0]), /kvshm-reaper/);
  assert.ok(cmd.includes(c.name));
});

test('lockTimeout is accepted per process and not compared', (t) => {
  const c = freshCache(t, { memory: '4mb', lockTimeout: 250 });
  const d = open(c.name, { lockTimeout: 5000 });
  d.set('k', 'v');
  d.close();
  assert.equal(c.get('k'), 'v');
});

test('sqlite, persistent and flushDelay', (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'cache.db');
  const c = freshCache(t, { memory: '4mb', sqlite: file, persistent: true, flushDelay: 200 });
  assert.equal(c.sqlitePath, file);
  const s = c.stats();
  assert.equal(s.persistent, 1);
  assert.equal(s.flushDelay, 200);
  c.set('k', 'v');
  assert.equal(c.get('k'), 'v');
  // Relative paths are made absolute (against the current directory).
  const cwd = process.cwd();
  process.chdir(dir);
  let rel;
  try {
    rel = freshCache(t, { memory: '4mb', sqlite: 'rel.db' });
  } finally {
    process.chdir(cwd);
  }
  assert.equal(rel.sqlitePath, path.join(fs.realpathSync(dir), 'rel.db'));
  // Another file for the same cache is a conflict.
  assert.throws(() => open(c.name, { sqlite: path.join(dir, 'other.db') }),
    (err) => err.code === 'ECONFIG' && err.option === 'sqlite');
  assert.throws(() => open(c.name, { sqlite: file, flushDelay: 300 }),
    (err) => err.code === 'ECONFIG' && err.option === 'flushDelay');
  // Option checks.
  assert.throws(() => open(uniqueName(), { persistent: true }), { name: 'TypeError', message: /needs a sqlite file/ });
  assert.throws(() => open(uniqueName(), { flushDelay: 100 }), { name: 'TypeError', message: /needs a sqlite file/ });
  assert.throws(() => open(uniqueName(), { sqlite: 42 }), { name: 'TypeError', message: /sqlite must be a file path string/ });
  assert.throws(() => open(uniqueName(), { sqlite: '' }), TypeError);
  assert.throws(() => open(uniqueName(), { sqlite: 'a\0b' }), TypeError);
  assert.throws(() => open(uniqueName(), { sqlite: `/${'x'.repeat(5000)}` }), { name: 'RangeError', message: /4095 bytes/ });
});

test('a persistent SQLite cache keeps its entries across destroy and reopen', (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'keep.db');
  const name = uniqueName('keep');
  const c = open(name, { memory: '4mb', sqlite: file, persistent: true, flushDelay: 100 });
  c.set('s', 'text 😀');
  c.set('n', 42);
  c.set('o', { a: [1, 2] });
  c.set('b', Buffer.from([0, 1, 2]));
  c.flush();
  const st = c.storeStats();
  assert.equal(st.rows, 4);
  assert.ok(st.fileBytes > 0);
  c.destroy();
  const d = adopt(t, open(name, { memory: '4mb', sqlite: file }));
  assert.equal(d.get('s'), 'text 😀');
  assert.equal(d.get('n'), 42);
  assert.deepEqual(d.get('o'), { a: [1, 2] });
  assert.deepEqual(d.get('b'), Buffer.from([0, 1, 2]));
  assert.equal(d.incr('n'), 43);
});

test('storeStats and flush on a memory-only cache', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  c.set('k', 'v');
  c.flush();
  assert.deepEqual(c.storeStats(), { rows: 0, bytes: 0, fileBytes: 0, expired: 0 });
});

test('destroy while another handle has a SQLite cache open', (t) => {
  const dir = tmpDir(t);
  const name = uniqueName('dst');
  const a = adopt(t, kvshm.open(name, { memory: '4mb', sqlite: path.join(dir, 'd.db') }));
  for (let i = 0; i < 50; i++) a.set(`k${i}`, `v${i}`);
  assert.equal(kvshm.destroy(name), true); // as another process would
  assert.throws(() => a.get('k1'), (e) => e.code === 'EDESTROYED' && /open the cache again/.test(e.message));
  assert.throws(() => a.set('x', 'y'), { code: 'EDESTROYED' });
  a.close();
  // Nothing was lost: the destroy wrote it to SQLite first.
  const b = adopt(t, kvshm.open(name, { sqlite: path.join(dir, 'd.db') }));
  for (let i = 0; i < 50; i++) assert.equal(b.get(`k${i}`), `v${i}`);
  assert.equal(b.stats().reaperAlive || b.stats().reaperStarts >= 1, true);
});

test('destroy while another handle has a memory-only cache open', (t) => {
  const name = uniqueName('dsm');
  const a = adopt(t, kvshm.open(name, { memory: '4mb' }));
  a.set('k', 'v');
  assert.equal(kvshm.destroy(name), true);
  assert.equal(a.get('k'), 'v'); // its memory is this handle's alone now
  a.set('k2', 'v2');
  assert.equal(a.get('k2'), 'v2');
  const b = adopt(t, kvshm.open(name, { memory: '4mb' }));
  assert.equal(b.get('k'), undefined);
});
