// 99.demo: `make demo` runs examples/http-cluster.js; a short run of it
// serves, counts, reports and cleans up after itself.
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
