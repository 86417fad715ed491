// 78.redis-near: kvshm/redis, the host-wide near cache in front of Redis,
// against a real redis-server started here on 127.0.0.1 and stopped by
// pid.  Two "hosts" are two caches (two segment names) with their own
// processes, against one Redis; each test runs in the three modes:
//   - a write through host A is seen by host B's next get once B applied
//     its invalidation, and the delay from write to visible is bounded;
//   - the stale-install race (B reads v1, A writes v2, B applies v2's
//     invalidation, B stores v1) forced with a test hook: v1 is not stored;
//   - the listener SIGKILLed: another process of the host takes over, and
//     no get that began more than maxLag after a write returns older data;
//   - Redis restarted mid-run: no value from before is served after;
//   - a write made by redis-cli invalidates every host (SET, DEL, FLUSHALL);
//   - getOrSet runs its loader once on a host of several processes;
// and without Redis's help: untracked keys are never cached, bad options
// are clear errors, close hands the listener role over.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { fork, execFileSync } = require('child_process');
const { kvshm, uniqueName, tmpDir, onCleanup, sleep, fixture } = require('./helpers');
const { createNearCache, testHooks } = require('../lib/redis');
const { handleOf } = require('../lib/cache');
const { startRedisServer } = require('../../bench/node/redis-server');

const MODES = ['memory-only', 'SQLite-backed', 'persistent'];
const MAX_LAG = 200; // ms: the staleness bound the tests hold the cache to
const BOUND = 2000; // ms: how long a write may take to show on another host
const now = () => performance.timeOrigin + performance.now();

async function redisFor(t) {
  const srv = await startRedisServer(tmpDir(t));
  assert.ok(srv, 'redis-server is installed (scripts/deps.sh installs it)');
  onCleanup(t, () => { try { process.kill(srv.pid, 'SIGKILL'); } catch { /* stopped */ } });
  return srv;
}

// One directory per test for its SQLite files.
const dirs = new WeakMap();
function dirOf(t) {
  if (!dirs.has(t)) dirs.set(t, tmpDir(t));
  return dirs.get(t);
}

function hostOptions(t, mode, srv, name, extra = {}) {
  const o = {
    name,
    memory: '8mb',
    redis: { host: '127.0.0.1', port: srv.port, maxRetriesPerRequest: 1 },
    prefixes: ['u:'],
    maxLag: MAX_LAG,
    probeInterval: 50,
    ...extra,
  };
  if (mode !== 'memory-only') o.sqlite = path.join(dirOf(t), `${name}.db`);
  if (mode === 'persistent') o.persistent = true;
  return o;
}

// A near cache of this process, closed and its segment removed at the end.
function host(t, options) {
  const near = createNearCache(options);
  onCleanup(t, () => {
    near.close().catch(() => {});
    try { kvshm.destroy(options.name); } catch { /* gone */ }
  });
  return near;
}

// A worker process of a host (fixtures/near-proc.js); onStream gets what
// its streamGets sends.
async function worker(t, options, onStream) {
  const child = fork(fixture('near-proc.js'), [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  onCleanup(t, () => child.kill('SIGKILL'));
  const pending = new Map();
  let seq = 0;
  child.on('message', (m) => {
    if (m.stream) {
      if (onStream) onStream(m.stream);
      return;
    }
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.v);
    else p.reject(new Error(m.err));
  });
  const exited = new Promise((r) => child.once('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`worker ${child.pid} exited (${signal || code})`));
    pending.clear();
    r({ code, signal });
  }));
  await new Promise((resolve, reject) => {
    child.once('message', (m) => (m.ready ? resolve() : reject(new Error('not ready'))));
    child.once('exit', () => reject(new Error('worker exited before it was ready')));
  });
  return {
    pid: child.pid,
    exited,
    call(op, args = {}) {
      const id = seq++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, op, ...args });
      });
    },
  };
}

// Poll fn until it returns true, at most ms.
async function until(fn, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(5);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

const inSync = (near) => until(() => near.stats().lag >= 0 && near.isListener, BOUND, `${near.name} in sync`);

// The near figures of cache `name`, read through a plain handle.
function nearStatsOf(t, name) {
  const c = kvshm.open(name, { create: false });
  try {
    return handleOf(c).nearStats();
  } finally {
    c.close();
  }
}

for (const mode of MODES) {
  test(`${mode}: a write on host A is seen on host B once B applied it, within a bound`, { timeout: 60000 }, async (t) => {
    const srv = await redisFor(t);
    const A = host(t, hostOptions(t, mode, srv, uniqueName('nearA')));
    const B = host(t, hostOptions(t, mode, srv, uniqueName('nearB')));
    await inSync(A);
    await inSync(B);
    await A.set('u:1', 'v0');
    assert.equal(await B.get('u:1'), 'v0');
    const hits = B.stats().nearHits;
    assert.equal(await B.get('u:1'), 'v0');
    assert.equal(B.stats().nearHits, hits + 1, 'the second get was served from memory');
    const delays = [];
    for (let i = 1; i <= 40; i++) {
      const before = B.stats().invalidations;
      const t0 = now();
      await A.set('u:1', `v${i}`);
      // Once B's listener applied the invalidation, B's next get has it.
      await until(() => B.stats().invalidations > before, BOUND, 'the invalidation on B');
      delays.push(now() - t0);
      assert.equal(await B.get('u:1'), `v${i}`, 'the get after the invalidation returns the write');
      assert.equal(await B.get('u:1'), `v${i}`);
    }
    delays.sort((a, b) => a - b);
    const p50 = delays[delays.length >> 1], p99 = delays[delays.length - 1];
    t.diagnostic(`write on A to invalidation applied on B: p50 ${p50.toFixed(2)} ms, max ${p99.toFixed(2)} ms`);
    assert.ok(p99 < BOUND);
    assert.ok(B.stats().nearHits >= hits + 40, 'gets between writes were near hits');
    // Probes: every host measures the other's write-to-invalidation delay.
    await until(() => B.stats().delaySamples > 0 && A.stats().delaySamples > 0, BOUND, 'probe samples');
    const s = B.stats();
    assert.ok(s.delayP50 > 0 && s.delayP50 <= s.delayP99 && s.delayP99 < BOUND, JSON.stringify(s));
    const cli = execFileSync(path.join(__dirname, '../../build/kvshm-cli'), ['stats', B.name], { encoding: 'utf8' });
    assert.match(cli, /near hits\s+\d+/);
    assert.match(cli, /invalidations\s+\d+/);
    assert.match(cli, /write to inval\.\s+p50 [\d.]+ ms, p99 [\d.]+ ms/);
    assert.match(cli, new RegExp(`listener\\s+pid ${process.pid}, in sync \\d+ ms ago`));
    const json = JSON.parse(execFileSync(path.join(__dirname, '../../build/kvshm-cli'), ['stats', '--json', B.name], { encoding: 'utf8' }));
    assert.equal(json.near.listener_pid, process.pid);
    assert.ok(json.near.near_hits >= 40 && json.near.redis_reads >= 1 && json.near.delay_p99_ms > 0);
  });

  test(`${mode}: a value read before an invalidation is not stored after it`, { timeout: 60000 }, async (t) => {
    const srv = await redisFor(t);
    const A = host(t, hostOptions(t, mode, srv, uniqueName('nearA')));
    const B = host(t, hostOptions(t, mode, srv, uniqueName('nearB')));
    await inSync(A);
    await inSync(B);
    await A.set('u:race', 'v1');
    let staged = false;
    B[testHooks].afterRead = async (key, v) => {
      if (key !== 'u:race' || v !== 'v1' || staged) return;
      // B has read v1 from Redis and not stored it yet: A writes v2, and B's
      // listener applies v2's invalidation before B goes on.
      const before = B.stats().invalidations;
      await A.set('u:race', 'v2');
      await until(() => B.stats().invalidations > before, BOUND, 'the invalidation on B');
      staged = true;
    };
    const refused = B.stats().fillsRefused;
    assert.equal(await B.get('u:race'), 'v1', 'the get returns what it read (it began before the write)');
    assert.ok(staged, 'the race was staged');
    assert.equal(B.stats().fillsRefused, refused + 1, 'the fill was refused');
    assert.equal(B.cache.peek('u:race'), undefined, 'v1 was not stored');
    assert.equal(await B.get('u:race'), 'v2');
    assert.equal(B.cache.peek('u:race'), 'v2', 'the next fill is stored');
  });

  test(`${mode}: the listener SIGKILLed: another process takes over, no stale read past maxLag`, { timeout: 60000 }, async (t) => {
    const srv = await redisFor(t);
    const A = host(t, hostOptions(t, mode, srv, uniqueName('nearA')));
    const bName = uniqueName('nearB');
    const bOpts = hostOptions(t, mode, srv, bName);
    const w1 = await worker(t, bOpts);
    const w2 = await worker(t, bOpts);
    await inSync(A);
    await until(async () => (await w1.call('stats')).lag >= 0, BOUND, 'host B in sync');
    const listener = (await w1.call('isListener')) ? w1 : w2;
    const other = listener === w1 ? w2 : w1;
    assert.equal(await other.call('isListener'), false, 'one listener per host');
    const s0 = await other.call('stats');
    assert.equal(s0.listenerPid, listener.pid);

    const inv0 = s0.invalidations;
    await A.set('u:k', 'v1');
    // (a fill that raced the write's own invalidation is refused: wait it out)
    await until(async () => (await other.call('stats')).invalidations > inv0, BOUND, 'v1 reaching B');
    assert.equal(await other.call('get', { key: 'u:k' }), 'v1');
    assert.equal(await other.call('get', { key: 'u:k' }), 'v1');
    assert.ok((await other.call('stats')).nearHits >= 1, 'v1 is served from memory');

    const loop = other.call('getLoop', { key: 'u:k', ms: 1500 });
    await sleep(100);
    process.kill(listener.pid, 'SIGKILL');
    assert.equal((await listener.exited).signal, 'SIGKILL');
    await A.set('u:k', 'v2');
    const wrote = now();
    const reads = await loop;
    const late = reads.filter(([at]) => at > wrote + MAX_LAG + 20);
    assert.ok(late.length > 10, 'gets ran after the bound');
    for (const [at, v] of late) {
      assert.equal(v, 'v2', `a get ${(at - wrote).toFixed(1)} ms after the write returned ${v}`);
    }
    const stale = reads.filter(([at, v]) => at > wrote && v === 'v1');
    const window = stale.length ? stale[stale.length - 1][0] - wrote : 0;
    t.diagnostic(`after the write, v1 was served for ${window.toFixed(1)} ms (bound: maxLag ${MAX_LAG} ms)`);
    const s1 = await other.call('stats');
    assert.equal(s1.listenerPid, other.pid, 'the survivor took over');
    assert.equal(s1.listenerStarts, s0.listenerStarts + 1);
    assert.ok(s1.listenerAlive);
    assert.ok(await other.call('isListener'));
    await until(async () => (await other.call('stats')).lag >= 0, BOUND, 'the new listener in sync');
    const hits = (await other.call('stats')).nearHits;
    assert.equal(await other.call('get', { key: 'u:k' }), 'v2');
    assert.equal(await other.call('get', { key: 'u:k' }), 'v2');
    assert.ok((await other.call('stats')).nearHits > hits, 'served from memory again');
    // And it listens: a write on A reaches B through it.
    const inv = (await other.call('stats')).invalidations;
    await A.set('u:k', 'v3');
    await until(async () => (await other.call('stats')).invalidations > inv, BOUND, 'the new listener applying');
    assert.equal(await other.call('get', { key: 'u:k' }), 'v3');
    await other.call('close');
    await other.exited;
    assert.equal(nearStatsOf(t, bName).listenerAlive, false, 'close gave the role up');
    kvshm.destroy(bName);
  });

  test(`${mode}: listeners SIGKILLed again and again under writes: no read older than maxLag`, { timeout: 90000 }, async (t) => {
    const srv = await redisFor(t);
    const A = host(t, hostOptions(t, mode, srv, uniqueName('nearA')));
    const bName = uniqueName('nearB');
    const bOpts = hostOptions(t, mode, srv, bName);
    // Many keys, each written again only every few hundred ms: a lost
    // invalidation is not soon cured by the key's next one.
    const keys = Array.from({ length: 40 }, (_, i) => `u:t${i}`);
    const reads = [];
    const workers = [];
    const start = async () => {
      const w = await worker(t, bOpts, (batch) => reads.push(...batch));
      workers.push(w);
      w.streaming = w.call('streamGets', { keys }).catch(() => {});
    };
    for (let i = 0; i < 3; i++) await start();
    await inSync(A);
    const done = new Map(keys.map((k) => [k, []])); // key -> [[version, finished at]]
    let stop = false, writes = 0;
    const writer = (async () => {
      for (let v = 1; !stop; v++) {
        const key = keys[Math.floor(Math.random() * keys.length)];
        await A.set(key, String(v));
        done.get(key).push([v, now()]);
        writes++;
        await sleep(5);
      }
    })();
    let kills = 0;
    const end = Date.now() + 6000;
    while (Date.now() < end) {
      await sleep(200 + Math.random() * 300);
      const { listenerPid } = nearStatsOf(t, bName);
      const victim = workers.find((w) => w.pid === listenerPid && !w.dead);
      if (!victim) continue;
      process.kill(victim.pid, 'SIGKILL');
      victim.dead = true;
      kills++;
      await start();
    }
    stop = true;
    await writer;
    for (const w of workers.filter((x) => !x.dead)) {
      await w.call('stopStream');
      await w.streaming;
    }
    assert.ok(kills >= 5, `the listener was killed ${kills} times`);
    // Every read that began more than maxLag after a write of its key had
    // finished returned that write or a later one.
    let checked = 0, late = 0;
    reads.sort((x, y) => x[0] - y[0]);
    const at0 = reads.length ? reads[0][0] : 0;
    const cursor = new Map(keys.map((k) => [k, { i: 0, need: 0, j: 0, last: 0 }]));
    for (const [at, key, v] of reads) {
      const c = cursor.get(key), d = done.get(key);
      while (c.i < d.length && d[c.i][1] < at - MAX_LAG - 20) c.need = d[c.i++][0];
      while (c.j < d.length && d[c.j][1] < at) c.last = d[c.j++][0];
      if (typeof v === 'string' && v.startsWith('ERR')) continue;
      const got = v === undefined ? 0 : Number(v);
      assert.ok(got >= c.need, `a read of ${key} at +${(at - at0).toFixed(1)} ms returned version ${got}; ` +
        `version ${c.need} had been written more than ${MAX_LAG} ms before`);
      checked++;
      if (got < c.last) late++;
    }
    assert.ok(checked > 10000, `${checked} reads checked`);
    t.diagnostic(`${kills} listeners killed, ${writes} writes, ${checked} reads checked, ` +
      `${late} returned a version older than the last finished write (allowed within maxLag)`);
  });

  test(`${mode}: Redis restarted mid-run: nothing from before is served after`, { timeout: 60000 }, async (t) => {
    let srv = await redisFor(t);
    const A = host(t, hostOptions(t, mode, srv, uniqueName('nearA')));
    const B = host(t, hostOptions(t, mode, srv, uniqueName('nearB')));
    await inSync(A);
    await inSync(B);
    await A.set('u:r', 'before');
    assert.equal(await B.get('u:r'), 'before');
    assert.equal(await B.get('u:r'), 'before');
    const flushes = B.stats().flushes;
    await srv.stop();
    const stopped = now();
    const during = [];
    const poll = (async () => {
      while (now() < stopped + 600) {
        const at = now();
        try {
          during.push([at, await B.get('u:r')]);
        } catch (err) {
          during.push([at, `ERR: ${err.message}`]);
          await sleep(5);
        }
      }
    })();
    await sleep(300);
    srv = await startRedisServer(tmpDir(t), srv.port); // empty: no persistence
    onCleanup(t, () => { try { process.kill(srv.pid, 'SIGKILL'); } catch { /* stopped */ } });
    await poll;
    for (const [at, v] of during) {
      if (at > stopped + MAX_LAG + 20) assert.notEqual(v, 'before', `a get ${(at - stopped).toFixed(1)} ms after the stop`);
    }
    await until(() => B.stats().flushes > flushes && B.stats().lag >= 0, 10000, 'B resubscribed');
    execFileSync('redis-cli', ['-p', String(srv.port), 'SET', 'u:r', 'after']);
    assert.equal(await B.get('u:r'), 'after');
    assert.equal(await A.get('u:r'), 'after');
    const inv = B.stats().invalidations;
    await A.set('u:r', 'after2');
    await until(() => B.stats().invalidations > inv, BOUND, 'B listening again');
    assert.equal(await B.get('u:r'), 'after2');
  });

  test(`${mode}: a write by redis-cli invalidates every host`, { timeout: 60000 }, async (t) => {
    const srv = await redisFor(t);
    const hosts = [host(t, hostOptions(t, mode, srv, uniqueName('nearA'))),
      host(t, hostOptions(t, mode, srv, uniqueName('nearB')))];
    for (const h of hosts) await inSync(h);
    const cli = (...args) => execFileSync('redis-cli', ['-p', String(srv.port), ...args], { encoding: 'utf8' }).trim();
    // Run a redis-cli command; resolve once every host applied it.
    const applied = async (args) => {
      const before = hosts.map((h) => h.stats());
      cli(...args);
      for (const [i, h] of hosts.entries()) {
        await until(() => h.stats().invalidations > before[i].invalidations || h.stats().flushes > before[i].flushes,
          BOUND, `${args[0]} reaching ${h.name}`);
      }
    };
    await applied(['SET', 'u:c', 'one']);
    for (const h of hosts) {
      assert.equal(await h.get('u:c'), 'one');
      assert.equal(h.cache.peek('u:c'), 'one', 'cached');
    }
    const step = async (args, want) => {
      await applied(args);
      for (const h of hosts) {
        assert.equal(h.cache.peek('u:c'), undefined, `${args[0]} dropped the copy on ${h.name}`);
        assert.equal(await h.get('u:c'), want);
      }
    };
    await step(['SET', 'u:c', 'two'], 'two');
    await step(['DEL', 'u:c'], undefined);
    await applied(['SET', 'u:c', 'three']);
    for (const h of hosts) {
      assert.equal(await h.get('u:c'), 'three');
      assert.equal(h.cache.peek('u:c'), 'three');
    }
    await step(['FLUSHALL'], undefined);
    // Keys of other prefixes are not cached and their writes cost nothing.
    cli('SET', 'other:1', 'x');
    assert.equal(await hosts[0].get('other:1'), 'x');
    assert.equal(hosts[0].cache.peek('other:1'), undefined, 'untracked keys are never cached');
  });

  test(`${mode}: a process of other prefixes or database neither serves nor fills; hostile invalidations crash nobody`, { timeout: 60000 }, async (t) => {
    const srv = await redisFor(t);
    const name = uniqueName('nearC');
    const A = host(t, hostOptions(t, mode, srv, name));
    await inSync(A);
    // Same host, another configuration: the listener (A) does not track s:.
    const B = host(t, hostOptions(t, mode, srv, name, { prefixes: ['u:', 's:'] }));
    const cli = (...args) => execFileSync('redis-cli', ['-p', String(srv.port), ...args], { encoding: 'utf8' }).trim();
    cli('SET', 's:1', 'v1');
    assert.equal(await B.get('s:1'), 'v1');
    assert.equal(B.cache.peek('s:1'), undefined, 'not filled: nobody would invalidate it');
    cli('SET', 's:1', 'v2');
    assert.equal(await B.get('s:1'), 'v2');
    const inv = A.stats().invalidations;
    cli('SET', 'u:1', 'x');
    await until(() => A.stats().invalidations > inv, BOUND, 'the SET reaching the listener');
    assert.equal(await A.get('u:1'), 'x');
    assert.equal(A.cache.peek('u:1'), 'x');
    const reads = B.stats().redisReads;
    assert.equal(await B.get('u:1'), 'x');
    assert.equal(B.stats().redisReads, reads + 1, 'B reads Redis even for a key the host has');
    assert.equal(B.isListener, false);
    const D = host(t, hostOptions(t, mode, srv, name, { redis: { host: '127.0.0.1', port: srv.port, db: 1 } }));
    assert.equal(await D.get('u:1'), undefined, 'another database: its own answer, not the host\u2019s copy');

    // Keys too long to cache, and junk published on the channel.
    const long = `u:${'x'.repeat(5000)}`;
    await A.set(long, 'big');
    assert.equal(await A.get(long), 'big');
    cli('PUBLISH', '__redis__:invalidate', 'y'.repeat(5000));
    cli('PUBLISH', '__redis__:invalidate', 'u:1');
    await sleep(100);
    assert.ok(A.isListener, 'the listener survived');
    assert.ok(A.stats().lag >= 0, 'and is in sync');
    assert.equal(await A.get('u:1'), 'x');
  });

  test(`${mode}: a get does not join a read that began maxLag or more ago`, { timeout: 60000 }, async (t) => {
    const srv = await redisFor(t);
    const A = host(t, hostOptions(t, mode, srv, uniqueName('nearJ')));
    await inSync(A);
    await A.set('u:j', 'v1');
    let release;
    const held = new Promise((r) => { release = r; });
    A[testHooks].afterRead = async (key) => { if (key === 'u:j') await held; };
    const first = A.get('u:j');
    await sleep(20);
    const reads = A.stats().redisReads;
    const joined = A.get('u:j'); // within maxLag: shares the read
    await sleep(MAX_LAG + 20);
    const late = A.get('u:j'); // too late to share it: a read of its own
    await sleep(50);
    assert.equal(A.stats().redisReads, reads + 1, 'the late get read Redis itself');
    release();
    assert.deepEqual(await Promise.all([first, joined, late]), ['v1', 'v1', 'v1']);
  });

  test(`${mode}: getOrSet loads once on a host of three processes`, { timeout: 60000 }, async (t) => {
    const srv = await redisFor(t);
    const name = uniqueName('nearG');
    const opts = hostOptions(t, mode, srv, name);
    const ws = [];
    for (let i = 0; i < 3; i++) ws.push(await worker(t, opts));
    await until(async () => (await ws[0].call('stats')).lag >= 0, BOUND, 'host in sync');
    const results = await Promise.all(ws.map((w) => w.call('getOrSetMany', { key: 'u:g', n: 20, delay: 200 })));
    const all = results.flat();
    assert.equal(new Set(all).size, 1, `every caller got one value: ${[...new Set(all)]}`);
    const cli = (...args) => execFileSync('redis-cli', ['-p', String(srv.port), ...args], { encoding: 'utf8' }).trim();
    assert.equal(cli('GET', 'loads:u:g'), '1', 'the loader ran once on the host');
    assert.equal(cli('GET', 'u:g'), all[0], 'its value is in Redis');
    for (const w of ws) await w.call('close');
    kvshm.destroy(name);
  });
}

test('a near cache refuses bad options with a clear error', () => {
  assert.throws(() => createNearCache(), /options object/);
  assert.throws(() => createNearCache({ redis: {} }), /name must be/);
  assert.throws(() => createNearCache({ name: 'x', prefixes: ['a:', 'a:b'] }), /overlap/);
  assert.throws(() => createNearCache({ name: 'x', prefixes: [''] }), /non-empty strings/);
  assert.throws(() => createNearCache({ name: 'x', redis: 'http://h' }), /redis:\/\//);
  assert.throws(() => createNearCache({ name: 'x', maxLag: 5 }), /maxLag must be a whole number from 10/);
  assert.throws(() => createNearCache({ name: 'x', maxLag: 100, syncInterval: 100 }), /syncInterval/);
  assert.throws(() => createNearCache({ name: 'x', memory: 'lots' }), /memory/);
  assert.throws(() => createNearCache({ name: 'x', prefixes: ['a:', 'a:'] }), /twice/);
  assert.throws(() => createNearCache({ name: 'x', prefixes: ['__kvshm:near:probe:x'] }), /probe/);
  assert.throws(() => createNearCache({ name: 'x', readonly: true }), /readonly/);
  assert.throws(() => createNearCache({ name: 'x', redis: { keyPrefix: 'app:' } }), /keyPrefix/);
});

test('closing the listener hands the role to another near cache of the host', { timeout: 30000 }, async (t) => {
  const srv = await redisFor(t);
  const name = uniqueName('nearH');
  const o = hostOptions(t, 'memory-only', srv, name);
  const w = await worker(t, o);
  await until(async () => (await w.call('stats')).lag >= 0, BOUND, 'in sync');
  const first = host(t, o); // this process: not the listener yet
  assert.equal(first.isListener, false);
  assert.equal(await w.call('isListener'), true);
  const starts = first.stats().listenerStarts;
  await w.call('close');
  await w.exited;
  await until(() => first.isListener && first.stats().lag >= 0, BOUND, 'the handover');
  assert.equal(first.stats().listenerStarts, starts + 1);
  await first.set('u:h', 'x');
  assert.equal(await first.get('u:h'), 'x');
  await assert.rejects(first.close().then(() => first.get('u:h')), /closed/);
});
