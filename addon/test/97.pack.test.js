// 97.pack: `npm pack`, then install the tarball into an empty project (its
// install script builds the addon there, with no header download) and use
// it from CommonJS and ESM, a SQLite-backed cache included (its
// kvshm-reaper is built with it).
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { uniqueName, tmpDir } = require('./helpers');

const root = path.join(__dirname, '..', '..');

function npm(args, cwd) {
  return execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_loglevel: 'error', npm_config_update_notifier: 'false' },
    timeout: 240000,
  });
}

test('the packed package installs into an empty project and works', { timeout: 300000 }, (t) => {
  const dir = tmpDir(t);
  const out = npm(['pack', '--json', '--pack-destination', dir, root], dir);
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  const files = info.files.map((f) => f.path);
  for (const f of ['package.json', 'addon/binding.gyp', 'addon/lib/index.js', 'addon/lib/index.mjs',
    'addon/lib/promise.js', 'addon/index.d.ts', 'addon/promise.d.ts', 'addon/scripts/build.js',
    'libshm/kvshm.h', 'libshm/table.c']) {
    assert.ok(files.includes(f), `${f} is packed`);
  }
  assert.ok(!files.some((f) => f.includes('/build/') || f.endsWith('.node')), 'no build output is packed');
  assert.ok(!files.some((f) => f.startsWith('addon/test/')), 'no tests are packed');
  const tgz = path.join(dir, info.filename);

  const proj = path.join(dir, 'app');
  fs.mkdirSync(proj);
  // npm 11 asks for install scripts to be approved: approve ours.
  fs.writeFileSync(path.join(proj, 'package.json'), JSON.stringify({
    name: 'app', version: '1.0.0', private: true, allowScripts: { [`file:${tgz}`]: true },
  }));
  npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tgz], proj);
  const pkg = path.join(proj, 'node_modules', 'kvshm');
  assert.ok(fs.existsSync(path.join(pkg, 'addon', 'build', 'Release', 'kvshm.node')), 'the install script built the addon');

  const name = uniqueName('pack');
  const db = path.join(dir, 'app.db');
  const cjs = `
    const kvshm = require('kvshm');
    const c = kvshm.open(${JSON.stringify(name)}, { memory: '8mb', sqlite: ${JSON.stringify(db)}, persistent: true, flushDelay: 50 });
    c.set('k', { from: 'cjs' });
    c.flush();
    if (c.storeStats().rows !== 1) throw new Error('not in SQLite');
    console.log(JSON.stringify(c.get('k')), require.resolve('kvshm'));
    c.close();`;
  const r1 = execFileSync(process.execPath, ['-e', cjs], { cwd: proj, encoding: 'utf8' });
  assert.match(r1, /^\{"from":"cjs"\} .*node_modules\/kvshm\/addon\/lib\/index\.js/);
  const esm = `
    import kvshm, { open, KvshmError } from 'kvshm';
    import * as facade from 'kvshm/promise';
    const c = open(${JSON.stringify(name)});
    await facade.start({ name: ${JSON.stringify(name)} });
    console.log(JSON.stringify(await facade.get('k')), await facade.insert('e', 'sm'), c.get('e'),
      typeof kvshm.destroy, KvshmError.name);
    await facade.close();
    c.destroy();`;
  const r2 = execFileSync(process.execPath, ['--input-type=module', '-e', esm], { cwd: proj, encoding: 'utf8' });
  assert.equal(r2.trim(), '{"from":"cjs"} I sm function KvshmError');
});
