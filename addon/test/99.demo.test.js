// 99.demo: `make demo` runs examples/http-cluster.js; a short run of it
// serves, counts, reports and cleans up after itself, and so does a run
// stopped mid-way by Ctrl-C, SIGTERM or SIGHUP; what a run killed outright
// leaves, the next run removes.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { uniqueName, runNode } = require('./helpers');

test('the HTTP cluster demo runs, reports and cleans up', { timeout: 90000 }, async () => {
  const name = uniqueName('demo');
  const demo = path.join(__dirname, '..', '..', 'examples', 'http-cluster.js');
  const r = await runNode(demo, [], {
    timeoutMs: 80000,
    env: { KVSHM_DEMO_NAME: name, DEMO_SECONDS: '1', DEMO_WORKERS: '2', DEMO_CONCURRENCY: '8' },
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const out = r.stdout;
  const rows = out.split('\n').filter((l) => /^ {2}w\d /.test(l));
  assert.equal(rows.length, 2, out);
  const total = /^ {2}total +(\d+) +(\d+) +(\d+)/m.exec(out);
  assert.ok(total, out);
  const [requests, hits, misses] = total.slice(1).map(Number);
  assert.ok(requests > 0);
  assert.equal(hits + misses, requests);
  const load = /load generator: (\d+) requests .*, (\d+) errors/.exec(out);
  assert.equal(Number(load[1]), requests, 'every request was counted in the cache');
  assert.equal(Number(load[2]), 0);
  assert.match(out, /cache stats:/);
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
    const m = /one shared cache '([^']+)' \(1 MiB of shared memory \+ (\/\S+)\/pages\.db\)/.exec(out);
    if (m) [, state.name, state.dir] = m;
    if (state.name && fs.existsSync(segment(state.name))) {
      const c = kvshm.open(state.name, { create: false, reaper: false });
      const n = c.get('demo:w1:requests') || 0;
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
