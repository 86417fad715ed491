#!/usr/bin/env node
// prebuild.js - make the prebuilt native files the package ships:
// addon/prebuilds/<platform>-<arch>-<libc>/{kvshm.node,kvshm-reaper,kvshm-cli}
// (kvshm.node is N-API: one file serves every Node of that platform).
//
//   node addon/scripts/prebuild.js                  this machine, from addon/build/Release
//   node addon/scripts/prebuild.js --build          build first (build.js), then copy
//   CC=aarch64-linux-gnu-gcc STRIP=aarch64-linux-gnu-strip \
//     node addon/scripts/prebuild.js --build --arch arm64
//                                                   cross-build for linux-arm64-glibc
//   CC=musl-gcc node addon/scripts/prebuild.js --build --libc musl
//
// CC also links (LINK defaults to it: the project is C only).  A cross
// build uses addon/build and removes it when done (`make addon` then
// builds this machine's again).  The files are stripped (STRIP, default
// strip) and checked: nothing but libc may be linked, and no SQLite symbol
// exported.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { built, prebuiltDir, platformTag } = require('../lib/locate');

const args = process.argv.slice(2);
function option(name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const arch = option('--arch') || process.arch;
const libc = option('--libc') || platformTag().split('-')[2];
const tag = `${process.platform}-${arch}${process.platform === 'linux' ? '-' + libc : ''}`;
const FILES = ['kvshm.node', 'kvshm-reaper', 'kvshm-cli'];

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', ...opts });
  if (r.error || r.status !== 0) {
    console.error(`prebuild: ${cmd} ${argv.join(' ')} failed` +
      (r.error ? `: ${r.error.message}` : ` (exit ${r.status})`));
    process.exit(1);
  }
}

if (process.env.CC && !process.env.LINK) process.env.LINK = process.env.CC;
if (args.includes('--build')) {
  const build = [path.join(__dirname, 'build.js')];
  if (arch !== process.arch) build.push(`--arch=${arch}`);
  run(process.execPath, build);
}

const out = prebuiltDir(tag);
const tmp = `${out}.tmp-${process.pid}`;
fs.rmSync(tmp, { recursive: true, force: true });
fs.mkdirSync(tmp, { recursive: true });
for (const f of FILES) {
  const from = path.join(built, f);
  if (!fs.existsSync(from)) {
    console.error(`prebuild: ${from} is missing: build first (--build, or make addon)`);
    process.exit(1);
  }
  fs.copyFileSync(from, path.join(tmp, f));
  run(process.env.STRIP || 'strip', ['--strip-unneeded', path.join(tmp, f)]);
  fs.chmodSync(path.join(tmp, f), 0o755);
}

// What the files need from the system: libc only, whatever SQLite or
// compiler the build machine had.  readelf reads any architecture.
for (const f of FILES) {
  const file = path.join(tmp, f);
  const dyn = spawnSync('readelf', ['-d', '--dyn-syms', '-W', file], { encoding: 'utf8' });
  if (dyn.status !== 0) {
    console.error(`prebuild: readelf ${file} failed: ${dyn.stderr}`);
    process.exit(1);
  }
  const needed = [...dyn.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)]
    .map((m) => m[1]);
  const extra = needed.filter((n) => !/^(libc|libm|libpthread|librt|ld-linux[^.]*|ld-musl[^.]*)\.so/.test(n));
  const exported = dyn.stdout.split('\n')
    .filter((l) => /\bsqlite3_\w+$/.test(l) && !/\bUND\b/.test(l) && /\bGLOBAL\b/.test(l));
  if (extra.length || exported.length) {
    console.error(`prebuild: ${f} links ${extra.join(', ') || 'only libc'} ` +
      `and exports ${exported.length} SQLite symbols: refusing to ship it`);
    process.exit(1);
  }
  const glibc = [...dyn.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)]
    .map((m) => [Number(m[1]), Number(m[2])])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]).pop();
  console.log(`prebuild: ${tag}/${f}: ${fs.statSync(file).size} bytes, needs ` +
    `${needed.join(' ')}${glibc ? `, glibc ${glibc.join('.')} or newer` : ''}`);
}
fs.rmSync(out, { recursive: true, force: true });
fs.renameSync(tmp, out);
console.log(`prebuild: wrote ${path.relative(process.cwd(), out) || out}`);
if (tag !== platformTag()) {
  // addon/build now holds files this machine cannot load: remove them, so
  // that the next `make addon` builds the host's again.
  fs.rmSync(built, { recursive: true, force: true });
  console.log(`prebuild: removed the ${tag} build from ${built}; make addon builds this machine's`);
}
