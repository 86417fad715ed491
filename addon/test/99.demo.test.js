// 99.demo: `make demo` runs examples/http-cluster.js: the same load on a
// kvshm cache shared by the cluster workers (getOrSet) and on a Map per
// worker, at once.  A short run of it serves every request, shows the
// loader running once per key per TTL window on the host with kvshm and
// more often with a Map per worker, reports and cleans up after itself, and
// so does a run stopped mid-way by Ctrl-C, SIGTERM or SIGHUP; what a run
// killed outright leaves, the next run removes.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { uniqueName, runNode } = require('./helpers');

/** The two numbers (kvshm, Map) of a row of the demo's summary table. */
function row(out, what) {
  const m = new RegExp(`^ {2}${what} +(\\S+)(?: ms)? +(\\S+)(?: ms)?$`, 'm').exec(out);
  assert.ok(m, `no row '${what}' in\n${out}`);
  return { kvshm: Number(m[1]), map: Number(m[2]) };
}

test('the HTTP cluster demo runs both caches, reports and cleans up', { timeout: 90000 }, async () => {
  const name = uniqueName('demo');
  const demo = path.join(__dirname, '..', '..', 'examples', 'http-cluster.js');
  // 1.5 s of load, values living 450 ms: a cache that loads a key once per
  // TTL window (each load starts more than a TTL after the one before)
  // loads it at most 1 + floor(1500 / 450) = 4 times; a fifth load would
  // take 300 ms more than the run, well beyond a request's delays.
  const seconds = 1.5;
  const ttl = 450;
  const r = await runNode(demo, [], {
    timeoutMs: 80000,
    env: {
      KVSHM_DEMO_NAME: name, DEMO_SECONDS: String(seconds), DEMO_TTL: String(ttl),
      DEMO_WORKERS: '2', DEMO_CONCURRENCY: '8', DEMO_ITEMS: '100',
    },
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const out = r.stdout;
  assert.match(out, /kvshm getOrSet +\/kvshm\/item\/<id>: cache\.getOrSet/);
  assert.match(out, /Map per worker +\/map\/item\/<id>: a Map in each worker/);

  // Per worker, counted in the cache with incr: requests and loads, each mode.
  const rows = out.split('\n').filter((l) => /^ {2}w\d /.test(l));
  assert.equal(rows.length, 2, out);
  for (const r of rows) {
    // The load generator's connections are spread over the workers, each mode's.
    const [, kvRequests, , mapRequests] = r.trim().split(/ +/).slice(1).map(Number); // pid, requests, loads, ...
    assert.ok(kvRequests > 0 && mapRequests > 0, `every worker served both modes\n${out}`);
  }
  const total = /^ {2}total +(\d+) +(\d+) +(\d+) +(\d+)$/m.exec(out);
  assert.ok(total, out);
  const [kvRequests, kvLoads, mapRequests, mapLoads] = total.slice(1).map(Number);

  const answered = row(out, 'requests answered');
  const errors = row(out, 'errors');
  const calls = row(out, 'loader calls');
  const keys = row(out, 'distinct keys loaded');
  const most = row(out, 'most calls for one key');
  const duplicates = row(out, 'duplicate calls');
  assert.ok(row(out, 'requests/s').kvshm > 0 && row(out, 'requests/s').map > 0, out);
  row(out, 'latency p50');
  row(out, 'latency p99');

  // Every request answered, and counted by the workers.
  assert.deepEqual(errors, { kvshm: 0, map: 0 }, out);
  assert.ok(answered.kvshm > 0 && answered.map > 0, out);
  assert.equal(kvRequests, answered.kvshm, 'every kvshm request was counted in the cache');
  assert.equal(mapRequests, answered.map, 'every Map request was counted in the cache');
  assert.deepEqual(calls, { kvshm: kvLoads, map: mapLoads }, 'the loader calls logged are those counted with incr');

  // kvshm: once per key per TTL window, whichever worker asked.
  assert.equal(duplicates.kvshm, 0, out);
  assert.ok(keys.kvshm > 0 && keys.kvshm <= 100, out);
  const windows = 1 + Math.floor((seconds * 1000) / ttl);
  assert.ok(most.kvshm <= windows, `a key loaded ${most.kvshm} times in ${seconds} s with a ${ttl} ms TTL\n${out}`);
  assert.ok(calls.kvshm <= keys.kvshm * windows, out);
  // A Map per worker: the same keys loaded again by the other worker.
  assert.ok(calls.map > calls.kvshm, `Map ${calls.map} loader calls, kvshm ${calls.kvshm}\n${out}`);
  assert.ok(duplicates.map > 0, out);
  assert.match(out, /kvshm getOrSet: 0 duplicates: the loader ran once per key per TTL window for the whole host/);

  assert.match(out, /cache stats/);
  assert.match(out, /SQLite +\d+ rows/);
  assert.match(out, /cleaned up: workers stopped/);
  assert.equal(fs.existsSync(`/dev/shm/kvshm.${name}`), false, 'the cache was destroyed');
  const dir = /, (\/\S+) removed/.exec(out)[1];
  assert.equal(fs.existsSync(dir), false, 'its directory was removed');
});

// ---- stopped by a signal, or killed outright ------------------------------

const { spawn } = require('child_process');
const { kvshm, sleep } = require('./helpers');

const demo = path.join(__dirname, '..', '..', 'examples', 'http-cluster.js');

/** Pids of the processes whose /proc/PID/FILE passes test(text). */
function procs(file, test) {
  const pids = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (test(fs.readFileSync(`/proc/${d}/${file}`, 'latin1'))) pids.push(Number(d));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}
/** The kvshm-reaper processes of cache `name`. */
const reapers = (name) => procs('cmdline', (s) => {
  const argv = s.split('\0').filter(Boolean);
  return /kvshm-reaper$/.test(argv[0] || '') && argv[argv.length - 1] === name;
});
/** The demo's cluster workers for cache `name`. */
const workersOf = (name) => procs('environ', (s) => s.split('\0').includes(`DEMO_CACHE=${name}`));
const segment = (name) => `/dev/shm/kvshm.${name}`;

/**
 * Start the demo in its own process group (as a shell runs a job), wait
 * until its load generator's requests are being counted in the cache, and
 * return { child, name, dir, exited }.  Everything it leaves is removed when
 * test t ends.
 */
async function startMidRun(t, env) {
  const child = spawn(process.execPath, [demo], {
    env: { ...process.env, DEMO_SECONDS: '60', DEMO_WORKERS: '2', DEMO_CONCURRENCY: '4', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out, err })));
  const state = { child, exited, name: null, dir: null, output: () => out + err };
  const kill = (pid) => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  t.after(() => {
    kill(-child.pid);
    if (!state.name) return;
    for (const pid of [...reapers(state.name), ...workersOf(state.name)]) kill(pid);
    kvshm.destroy(state.name);
    if (state.dir) fs.rmSync(state.dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 30000;
  for (;;) {
    assert.ok(Date.now() < deadline, `the demo did not get going:\n${out}${err}`);
    const m = /on one shared cache '([^']+)' \(1 MiB of shared memory \+ (\/\S+)\/pages\.db\)/.exec(out);
    if (m) [, state.name, state.dir] = m;
    if (state.name && fs.existsSync(segment(state.name))) {
      const c = kvshm.open(state.name, { create: false, reaper: false });
      const n = c.get('demo:kvshm:w1:requests') || 0;
      c.close();
      if (n > 0) break;
    }
    await sleep(50);
  }
  return state;
}

async function assertCleanedUp(name, dir) {
  for (let i = 0; i < 50 && (reapers(name).length || workersOf(name).length); i++) await sleep(20);
  assert.equal(fs.existsSync(segment(name)), false, `the segment of '${name}' is gone`);
  assert.deepEqual(reapers(name), [], 'its kvshm-reaper stopped');
  assert.deepEqual(workersOf(name), [], 'the workers stopped');
  assert.equal(fs.existsSync(dir), false, `its directory ${dir} is gone`);
}

const stops = [
  ['SIGINT', 'Ctrl-C (SIGINT to the whole job)', true],
  ['SIGTERM', 'kill (SIGTERM to the primary alone)', false],
  ['SIGHUP', 'a closed terminal (SIGHUP to the whole job)', true],
];
for (const [sig, how, group] of stops) {
  test(`the demo stopped mid-run by ${how} cleans up; the next run works`, { timeout: 90000 }, async (t) => {
    const name = uniqueName('smalls-demo');
    const run = await startMidRun(t, { KVSHM_DEMO_NAME: name });
    process.kill(group ? -run.child.pid : run.child.pid, sig);
    const r = await run.exited;
    assert.equal(r.signal, sig, `the demo ends by the signal that stopped it\n${r.out}${r.err}`);
    assert.match(r.out, /cleaned up: workers stopped/, r.out + r.err);
    await assertCleanedUp(name, run.dir);

    const again = await runNode(demo, [], {
      timeoutMs: 80000,
      env: { KVSHM_DEMO_NAME: name, DEMO_SECONDS: '1', DEMO_WORKERS: '2', DEMO_CONCURRENCY: '4' },
    });
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });
}

test('a demo killed outright (SIGKILL) is cleaned up by the next run', { timeout: 90000 }, async (t) => {
  // Names are PREFIX-<pid>-<random>; each run removes what a dead run of the
  // same prefix left (no process but its reaper has the segment mapped).
  const prefix = `nd${process.pid}-smalls-px`;
  const run = await startMidRun(t, { KVSHM_DEMO_PREFIX: prefix });
  assert.ok(run.name.startsWith(`${prefix}-`), run.name);
  const reaper = reapers(run.name);
  process.kill(-run.child.pid, 'SIGKILL');
  await run.exited;
  for (let i = 0; i < 100 && workersOf(run.name).length; i++) await sleep(20);
  assert.equal(fs.existsSync(segment(run.name)), true, 'SIGKILL left the segment');
  assert.equal(fs.existsSync(run.dir), true, 'and the directory');
  assert.deepEqual(reapers(run.name), reaper, 'and the reaper');

  const again = await runNode(demo, [], {
    timeoutMs: 80000,
    env: { KVSHM_DEMO_PREFIX: prefix, DEMO_SECONDS: '1', DEMO_WORKERS: '2', DEMO_CONCURRENCY: '4' },
  });
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, new RegExp(`removed what an earlier run left: cache '${run.name}'`));
  assert.doesNotMatch(again.stdout, new RegExp(`shared cache '${run.name}'`), 'a new name');
  await assertCleanedUp(run.name, run.dir);
});

test('a killed demo with a fixed KVSHM_DEMO_NAME does not block the next run', { timeout: 90000 }, async (t) => {
  const name = uniqueName('smalls-demo');
  const run = await startMidRun(t, { KVSHM_DEMO_NAME: name });
  process.kill(-run.child.pid, 'SIGKILL');
  await run.exited;
  for (let i = 0; i < 100 && workersOf(name).length; i++) await sleep(20);
  assert.equal(fs.existsSync(segment(name)), true, 'SIGKILL left the segment');
  const again = await runNode(demo, [], {
    timeoutMs: 80000,
    env: { KVSHM_DEMO_NAME: name, DEMO_SECONDS: '1', DEMO_WORKERS: '2', DEMO_CONCURRENCY: '4' },
  });
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.equal(fs.existsSync(run.dir), false, 'the dead run\'s directory was removed');
  assert.deepEqual(reapers(name), [], 'its reaper stopped');
});
