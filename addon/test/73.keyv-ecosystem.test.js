// 73.keyv-ecosystem: kvshm/keyv as the host-wide L1 of cache-manager 7 and
// cacheable 2: the two examples (examples/cache-manager.js and
// examples/cacheable.js, whose code the README shows) run as child
// processes, with an in-process L2 and, when redis-server is installed,
// with Redis through @keyv/redis; and a value too large for the L1 is
// served from the L2 every time, while the L1 goes on caching the rest.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const path = require('path');
const fs = require('fs');
const { spawn, execFileSync } = require('child_process');
const { Keyv } = require('keyv');
const { createCache } = require('cache-manager');
const { Cacheable } = require('cacheable');
const { kvshm, onCleanup, tmpDir, runNode, sleep } = require('./helpers');
const { createKeyv } = require('../lib/keyv');

const examples = path.join(__dirname, '..', '..', 'examples');
let seq = 0;

function kvName(t, tag) {
  const name = `kv${process.pid}-${tag}-${seq++}`;
  onCleanup(t, () => kvshm.destroy(name));
  return name;
}

const EXPECTED = {
  'cache-manager.js': [
    'first process: loading user 1 from the database',
    'first process: user 1 is User 1',
    'second process: user 1 is User 1',
    'first process: user 1 expires in about 60 s',
  ],
  'cacheable.js': [
    'first process: loading user 1 from the database',
    'first process: user 1 is User 1',
    'first process: user:2 found in the secondary store',
    'first process: user 2 is User 2',
    'second process: user:1 found in the primary store',
    'second process: user 1 is User 1',
    'second process: user:2 found in the primary store',
    'second process: user 2 is User 2',
  ],
};

async function runExample(t, file, redisUrl) {
  const name = kvName(t, 'example');
  const r = await runNode(path.join(examples, file), [], { env: { KVSHM_NAME: name, REDIS_URL: redisUrl } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), EXPECTED[file]);
  // The entries are in the kvshm cache, natively, under the namespace.
  const cache = kvshm.open(name, { create: false });
  assert.deepEqual(cache.get('users:user:1'), { id: 1, name: 'User 1', roles: ['reader'] });
  cache.close();
}

for (const file of Object.keys(EXPECTED)) {
  test(`examples/${file} with an in-process L2`, { timeout: 60000 }, (t) => runExample(t, file, ''));
}

test('the README shows the examples\' code as it is', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  for (const file of Object.keys(EXPECTED)) {
    const code = fs.readFileSync(path.join(examples, file), 'utf8');
    const body = code.slice(code.indexOf("'use strict';\n") + "'use strict';\n".length).trimEnd();
    const at = readme.indexOf(`(\`examples/${file}\``);
    assert.ok(at > 0, `the README names examples/${file}`);
    const start = readme.indexOf('```js\n', at) + '```js\n'.length;
    assert.equal(readme.slice(start, readme.indexOf('\n```', start)), body, `README block after examples/${file}`);
  }
});

// A private redis-server on a free port, stopped when t ends; null if none
// is installed.
async function startRedis(t) {
  let bin;
  try {
    bin = execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', tmpDir(t)], { stdio: 'ignore' });
  onCleanup(t, () => proc.kill('SIGTERM'));
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); }).on('error', () => resolve(false));
    });
    if (up) return `redis://127.0.0.1:${port}`;
    await sleep(50);
  }
  throw new Error('redis-server did not start');
}

test('both examples with Redis as the L2 (@keyv/redis)', { timeout: 90000 }, async (t) => {
  const url = await startRedis(t);
  if (!url) {
    t.skip('redis-server is not installed (scripts/deps.sh installs it)');
    return;
  }
  const Redis = require('ioredis');
  const client = new Redis(url);
  try {
    // Each example starts from an empty Redis, and leaves its users there.
    for (const [file, keys] of [['cache-manager.js', ['users::user:1']],
      ['cacheable.js', ['users::user:1', 'users::user:2']]]) {
      await client.flushall();
      await runExample(t, file, url);
      assert.deepEqual((await client.keys('*')).sort(), keys);
    }
  } finally {
    client.disconnect();
  }
});

// More than the L1 (a 2 MiB kvshm cache) can hold.
function bigValue(name) {
  const c = kvshm.open(name, { memory: '2mb' });
  const max = c.stats().maxValue;
  c.close();
  return { blob: 'x'.repeat(max + 1000) };
}

test('cache-manager: a value too large for the L1 comes from the L2 every time; the L1 caches the rest', async (t) => {
  const name = kvName(t, 'cm-big');
  const big = bigValue(name);
  const l1 = createKeyv(name, { memory: '2mb' });
  const l2 = new Keyv();
  const errors = [];
  l1.on('error', (err) => errors.push(err.code));
  const cache = createCache({ stores: [l1, l2] });
  onCleanup(t, () => { cache.disconnect(); });

  assert.deepEqual(await cache.set('big', big), big, 'set does not reject');
  assert.equal(await l1.get('big'), undefined);
  let loads = 0;
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await cache.wrap('big', async () => { loads++; return big; }), big);
    assert.deepEqual(await cache.get('big'), big);
  }
  assert.equal(loads, 0, 'always found in the L2');
  assert.ok(errors.length >= 4 && errors.every((c) => c === 'ETOOBIG'), `errors: ${errors}`);

  assert.equal(await cache.wrap('small', async () => 'v'), 'v');
  assert.equal(await l1.get('small'), 'v', 'the L1 still caches what fits');
  await l2.delete('small');
  assert.equal(await cache.get('small'), 'v');
});

test('cacheable: a value too large for the primary comes from the secondary every time; the primary caches the rest', async (t) => {
  const name = kvName(t, 'ca-big');
  const big = bigValue(name);
  const primary = createKeyv(name, { memory: '2mb' });
  const secondary = new Keyv();
  const cache = new Cacheable({ primary, secondary });
  const errors = [];
  cache.on('error', (err) => errors.push(err.code));
  onCleanup(t, () => { cache.disconnect(); });

  assert.equal(await cache.set('big', big), false, 'the primary refused it');
  assert.deepEqual(await secondary.get('big'), big);
  for (let i = 0; i < 3; i++) assert.deepEqual(await cache.get('big'), big);
  assert.deepEqual(await cache.getMany(['big']), [big]);
  assert.ok(errors.length >= 4 && errors.every((c) => c === 'ETOOBIG'), `errors: ${errors}`);

  assert.equal(await cache.set('small', 'v'), true);
  assert.equal(await primary.get('small'), 'v', 'the primary still caches what fits');
  await secondary.set('other', 'from L2');
  assert.equal(await cache.get('other'), 'from L2');
  assert.equal(await primary.get('other'), 'from L2', 'refilled');
});
