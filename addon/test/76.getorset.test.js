// 76.getorset: getOrSet's single flight across processes, in each mode:
// 8 processes x 50 callers on one cold key run the loader once; a loader
// that throws lets the lease go and its error reaches its caller; a loader
// killed with SIGKILL is taken over once its lease expires; stale values
// are served at once while one caller refreshes them; waiting never
// blocks the event loop.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawn } = require('child_process');
const { kvshm, uniqueName, adopt, tmpDir, runNode, sleep, fixture } = require('./helpers');

const MODES = ['memory-only', 'SQLite-backed', 'persistent'];

function sqliteArg(t, mode) {
  if (mode === 'memory-only') return '';
  const file = path.join(tmpDir(t), 'gos.db');
  return mode === 'persistent' ? `${file}+p` : file;
}

function openMode(name, arg) {
  const o = { memory: '4mb' };
  if (arg) {
    o.sqlite = arg.replace(/\+p$/, '');
    if (arg.endsWith('+p')) o.persistent = true;
  }
  return kvshm.open(name, o);
}

for (const mode of MODES) {
  test(`${mode}: 8 processes x 50 callers, one loader call`, { timeout: 60000 }, async (t) => {
    const name = uniqueName('gos');
    const arg = sqliteArg(t, mode);
    const start = Date.now() + 1500; // every process is up and waiting by then
    const runs = await Promise.all(Array.from({ length: 8 },
      () => runNode(fixture('getorset-proc.js'), [name, arg, 'race', String(start)])));
    const cache = adopt(t, openMode(name, arg));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const outs = runs.map((r) => JSON.parse(r.stdout.trim()));
    assert.equal(cache.get('calls'), 1, 'the loader ran once on the host');
    const loaders = new Set(outs.flatMap((o) => o.pids));
    assert.equal(loaders.size, 1, 'every caller got the one loaded value');
    assert.ok(outs.every((o) => o.n === 50));
    assert.equal(cache.has('\u0000kvshm:lease:cold'), false, 'the lease was let go');
    assert.deepEqual([...cache.keys()].sort(), ['calls', 'cold'], 'leases are not listed');
  });

  test(`${mode}: a loader that throws lets the lease go`, { timeout: 60000 }, async (t) => {
    const name = uniqueName('gost');
    const arg = sqliteArg(t, mode);
    const start = Date.now() + 1000;
    const thrower = runNode(fixture('getorset-proc.js'), [name, arg, 'throw', String(start)]);
    const waiter = runNode(fixture('getorset-proc.js'), [name, arg, 'wait', String(start + 50), 'thrown']);
    const [a, b] = await Promise.all([thrower, waiter]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(JSON.parse(a.stdout), { threw: 'loader failed' });
    const w = JSON.parse(b.stdout);
    assert.equal(w.v, `loaded by ${w.pid}`, 'the waiter loaded it after the throw');
    assert.ok(w.ms < 900, `the waiter took over at once, not after the lease time (${w.ms} ms)`);
    // In one process too: the error reaches the caller, the next call loads.
    const cache = adopt(t, openMode(name, arg));
    await assert.rejects(cache.getOrSet('again', async () => { throw new TypeError('nope'); }), TypeError);
    const t0 = Date.now();
    assert.equal(await cache.getOrSet('again', async () => 'fine'), 'fine');
    assert.ok(Date.now() - t0 < 500);
  });

  test(`${mode}: a loader killed with SIGKILL is taken over`, { timeout: 60000 }, async (t) => {
    const name = uniqueName('gosk');
    const arg = sqliteArg(t, mode);
    const hang = spawn(process.execPath, [fixture('getorset-proc.js'), name, arg, 'hang', '0'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      hang.stdout.once('data', resolve);
      hang.once('exit', () => reject(new Error('hang exited early')));
    });
    const waiter = runNode(fixture('getorset-proc.js'), [name, arg, 'wait', '0', 'hung']);
    await sleep(200);
    const killedAt = Date.now();
    hang.kill('SIGKILL');
    const r = await waiter;
    assert.equal(r.code, 0, r.stderr);
    const w = JSON.parse(r.stdout);
    assert.equal(w.v, `loaded by ${w.pid}`);
    const after = Date.now() - killedAt;
    assert.ok(after < 1000 + 1500, `taken over ${after} ms after the kill (lease 1000 ms)`);
    const cache = adopt(t, openMode(name, arg));
    assert.equal(cache.get('hung'), w.v);
  });
}

test('staleWhileRevalidate: a stale value at once, one refresh', { timeout: 30000 }, async (t) => {
  const cache = adopt(t, kvshm.open(uniqueName('swr'), { memory: '4mb' }));
  let calls = 0;
  const loader = async () => { calls++; await sleep(100); return `v${calls}`; };
  const o = { ttl: 200, staleWhileRevalidate: 2000 };
  assert.equal(await cache.getOrSet('k', loader, o), 'v1');
  assert.equal(await cache.getOrSet('k', loader, o), 'v1');
  await sleep(300); // stale now
  const t0 = Date.now();
  const stale = await Promise.all([cache.getOrSet('k', loader, o), cache.getOrSet('k', loader, o)]);
  assert.deepEqual(stale, ['v1', 'v1']);
  assert.ok(Date.now() - t0 < 50, 'stale values come back without waiting for the loader');
  await sleep(250);
  assert.equal(await cache.getOrSet('k', loader, o), 'v2', 'refreshed in the background');
  assert.equal(calls, 2, 'one refresh for two stale reads');
  await sleep(2300); // past ttl + staleWhileRevalidate: a miss that waits
  assert.equal(await cache.getOrSet('k', loader, o), 'v3');
  await assert.rejects(cache.getOrSet('k', loader, { staleWhileRevalidate: 10 }), /needs a ttl/);
  await assert.rejects(cache.getOrSet('k', 'not a function'), TypeError);
  await assert.rejects(cache.getOrSet(5, loader), TypeError);
  await assert.rejects(cache.getOrSet('k', loader, { lockTimout: 5 }), /unknown getOrSet option 'lockTimout'/);
});

test('waiting for another loader never blocks the event loop', { timeout: 30000 }, async (t) => {
  const name = uniqueName('gosev');
  const a = adopt(t, kvshm.open(name, { memory: '4mb' }));
  const b = kvshm.open(name); // a second handle: a second "process"
  t.after(() => b.close());
  let release;
  const slow = a.getOrSet('k', () => new Promise((r) => { release = r; }));
  await sleep(10);
  let ticks = 0;
  const iv = setInterval(() => ticks++, 5);
  const waiting = b.getOrSet('k', async () => 'second loader');
  await sleep(300);
  assert.ok(ticks >= 20, `timers ran while waiting (${ticks} ticks)`);
  release('first');
  assert.equal(await slow, 'first');
  assert.equal(await waiting, 'first', 'the waiter got the loader\'s value');
  clearInterval(iv);
});
