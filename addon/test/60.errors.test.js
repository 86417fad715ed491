// 60.errors: KvshmError's shape, and the errors that need another process
// or a broken segment to happen.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { spawn } = require('child_process');
const { kvshm, freshCache, uniqueName, fixture, sleep } = require('./helpers');
const { KvshmError, constants } = kvshm;

test('KvshmError is an Error with code, status and a message', () => {
  const e = new KvshmError('something failed', 'ENOSHM', constants.errors.ENOSHM);
  assert.ok(e instanceof Error);
  assert.ok(e instanceof KvshmError);
  assert.equal(e.name, 'KvshmError');
  assert.equal(e.code, 'ENOSHM');
  assert.equal(e.status, -30814);
  assert.equal(e.message, 'something failed');
  assert.match(e.stack, /KvshmError: something failed/);
  for (const [code, status] of Object.entries(constants.errors)) {
    assert.match(code, /^E[A-Z]+$/);
    assert.ok(status < 0);
  }
  assert.equal(constants.errors.ENOTFOUND, -30800);
});

test('a file in /dev/shm that is not a kvshm cache: EBADMAGIC', (t) => {
  const name = uniqueName('junk');
  const file = `/dev/shm/kvshm.${name}`;
  fs.writeFileSync(file, Buffer.alloc(1 << 20, 0x5a), { mode: 0o600 });
  t.after(() => fs.rmSync(file, { force: true }));
  assert.throws(() => kvshm.open(name), (err) => {
    assert.ok(err instanceof KvshmError, String(err));
    assert.ok(['EBADMAGIC', 'ECORRUPT'].includes(err.code), err.code);
    assert.match(err.message, new RegExp(name));
    return true;
  });
});

function stoppedOrDead(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /\) [TtZ] /.test(stat);
  } catch {
    return true;
  }
}

function spawnHolder(name, point, signal) {
  const child = spawn(process.execPath, [fixture('hold-lock.js'), name, point, signal], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig, out })));
  return { child, exited, output: () => out };
}

test('a lock held past lockTimeout: ETIMEDOUT; its holder killed: repaired', async (t) => {
  const c = freshCache(t, { memory: '4mb', stripes: 1, lockTimeout: 200 });
  const { child, exited } = spawnHolder(c.name, 'SET_HALF_WRITTEN', 'SIGSTOP');
  t.after(() => child.kill('SIGKILL'));
  const deadline = Date.now() + 10000;
  while (!stoppedOrDead(child.pid) && Date.now() < deadline) await sleep(10);
  assert.ok(stoppedOrDead(child.pid), 'the holder stopped inside its write');
  const start = Date.now();
  assert.throws(() => c.get('before'), (err) => {
    assert.ok(err instanceof KvshmError);
    assert.equal(err.code, 'ETIMEDOUT');
    assert.match(err.message, /stayed locked for 200 ms/);
    assert.match(err.message, /lockTimeout/);
    return true;
  });
  const waited = Date.now() - start;
  assert.ok(waited >= 150 && waited < 5000, `waited ${waited} ms`);
  child.kill('SIGKILL');
  const { sig, out } = await exited;
  assert.equal(sig, 'SIGKILL');
  assert.doesNotMatch(out, /not reached/);
  // The next locker finds the owner dead and repairs the stripe.
  assert.equal(c.get('before'), 'committed');
  assert.equal(c.get('victim'), undefined, 'the dead write is lost, not half-seen');
  const s = c.stats();
  assert.equal(s.repairs, 1);
  assert.equal(s.corrupt, 0);
  c.set('victim', 'after');
  assert.equal(c.get('victim'), 'after');
});

test('errors from libshm keep its detail message', (t) => {
  const c = freshCache(t, { memory: '4mb' });
  c.set('s', 'not a number');
  try {
    c.incr('s');
    assert.fail('incr of text should throw');
  } catch (err) {
    assert.equal(err.code, 'ENOTINT');
    assert.equal(err.status, constants.errors.ENOTINT);
    assert.match(err.message, /^value of key is not a decimal 64-bit integer: /);
  }
});
