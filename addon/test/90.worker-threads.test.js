// 90.worker-threads: the addon in several threads of one process at once;
// each thread has its own handles, and threads that exit or are terminated
// with caches open leave nothing broken.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Worker } = require('worker_threads');
const { freshCache, fixture } = require('./helpers');
const testing = require('../lib/testing');

function runWorker(workerData) {
  const w = new Worker(fixture('thread-worker.js'), { workerData });
  const messages = [];
  w.on('message', (m) => messages.push(m));
  const exited = new Promise((resolve, reject) => {
    w.on('error', reject);
    w.on('exit', (code) => resolve({ code, messages }));
  });
  return { w, exited, messages };
}

test('4 threads and the main thread share a cache; incr sums exactly', { timeout: 60000 }, async (t) => {
  const c = freshCache(t, { memory: '8mb', stripes: 2 });
  const incrs = 5000;
  const workers = ['t1', 't2', 't3', 't4'].map((id) => runWorker({ name: c.name, id, incrs, mode: 'work' }));
  for (let i = 0; i < incrs; i++) c.incr('counter');
  const results = await Promise.all(workers.map((w) => w.exited));
  for (const r of results) {
    assert.equal(r.code, 0);
    assert.equal(r.messages[0].errOk, true, 'KvshmError in a worker');
    assert.equal(r.messages[0].keys, 100);
  }
  assert.equal(c.get('counter'), 5 * incrs);
  for (const id of ['t1', 't2', 't3', 't4']) {
    assert.deepEqual(c.get(`${id}:42`), { id, j: 42 });
  }
});

test('threads that exit or are terminated with caches open', { timeout: 60000 }, async (t) => {
  const c = freshCache(t, { memory: '8mb', stripes: 1 });
  const left = await runWorker({ name: c.name, id: 'left', mode: 'leave-open' }).exited;
  assert.equal(left.code, 0);
  assert.equal(c.get('left:left'), 'open');
  const spinners = ['s1', 's2'].map((id) => runWorker({ name: c.name, id, mode: 'spin' }));
  // Wait until both write, then terminate them in the middle of it.
  while (spinners.some((s) => s.messages.length === 0)) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 50));
  const codes = await Promise.all(spinners.map((s) => s.w.terminate()));
  assert.deepEqual(codes, [1, 1]);
  // A thread is not a process: terminate() waits for the running call to
  // return, so nothing is left locked or half written.
  c.set('after', 'ok');
  assert.equal(c.get('after'), 'ok');
  assert.deepEqual(testing.verify(c), []);
  assert.equal(c.stats().repairs, 0);
  assert.ok([...c.keys({ prefix: 's1:' })].length > 0);
});
