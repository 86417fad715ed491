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
function option(name) { // --name VALUE or --name=VALUE
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq && eq.slice(name.length + 1);
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
  run(process.execPath, [path.join(__dirname, 'build.js'), `--arch=${arch}`, `--libc=${libc}`]);
}

// What each tag's files must be: the ELF machine, the C library they
// link, and (glibc) the newest symbol version they may need.
const MACHINE = { x64: 'X86-64', arm64: 'AArch64' };
const GLIBC_FLOOR = [2, 34]; // the README and binding.js promise this
const LIBC_RE = { glibc: /^(libc|libm|libpthread|librt)\.so\.\d+$|^ld-linux[-\w.]*\.so\.\d+$/, musl: /^libc\.(musl-[\w]+\.)?so(\.1)?$/ };

// Staged outside prebuilds/ (which `npm pack` ships whole), renamed in
// when every file passed.
const out = prebuiltDir(tag);
const tmp = path.join(built, '..', `prebuild-${tag}-${process.pid}`);
function refuse(msg) {
  fs.rmSync(tmp, { recursive: true, force: true });
  console.error(`prebuild: ${msg}: refusing to ship it`);
  process.exit(1);
}
fs.rmSync(tmp, { recursive: true, force: true });
fs.mkdirSync(tmp, { recursive: true });
for (const f of FILES) {
  const from = path.join(built, f);
  if (!fs.existsSync(from)) refuse(`${from} is missing (build first: --build, or make addon)`);
  fs.copyFileSync(from, path.join(tmp, f));
  const r = spawnSync(process.env.STRIP || 'strip', ['--strip-unneeded', path.join(tmp, f)],
    { stdio: 'inherit' });
  if (r.status !== 0) refuse(`strip ${f} failed`);
  fs.chmodSync(path.join(tmp, f), 0o755);
}

// What the files need from the system: their libc only, whatever SQLite or
// compiler the build machine had.  readelf reads any architecture.
for (const f of FILES) {
  const file = path.join(tmp, f);
  const elf = spawnSync('readelf', ['-h', '-d', '--dyn-syms', '-W', file], { encoding: 'utf8' });
  if (elf.status !== 0) refuse(`readelf ${f} failed: ${elf.stderr.trim()}`);
  const machine = (elf.stdout.match(/Machine:\s+(.*)/) || [])[1] || '?';
  if (!MACHINE[arch] || !machine.includes(MACHINE[arch])) {
    refuse(`${f} is for ${machine}, not ${arch}`);
  }
  const needed = [...elf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)]
    .map((m) => m[1]);
  const extra = needed.filter((n) => !LIBC_RE[libc].test(n));
  if (!needed.length || extra.length) {
    refuse(`${f} links ${extra.join(', ') || 'nothing'} besides the ${libc} C library`);
  }
  const exported = elf.stdout.split('\n')
    .filter((l) => /\bsqlite3_\w+$/.test(l) && !/\bUND\b/.test(l) && /\bGLOBAL\b/.test(l));
  if (exported.length) refuse(`${f} exports ${exported.length} SQLite symbols`);
  const glibc = [...elf.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)]
    .map((m) => [Number(m[1]), Number(m[2])])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]).pop();
  if (libc === 'glibc' && glibc &&
      (glibc[0] > GLIBC_FLOOR[0] || (glibc[0] === GLIBC_FLOOR[0] && glibc[1] > GLIBC_FLOOR[1]))) {
    refuse(`${f} needs glibc ${glibc.join('.')}, newer than the ${GLIBC_FLOOR.join('.')} ` +
      'promised: build on an older distribution (Debian 12 gives 2.34)');
  }
  console.log(`prebuild: ${tag}/${f}: ${fs.statSync(file).size} bytes, ${machine}, needs ` +
    `${needed.join(' ')}${glibc ? `, glibc ${glibc.join('.')} or newer` : ''}`);
}
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.renameSync(tmp, out);
console.log(`prebuild: wrote ${path.relative(process.cwd(), out) || out}`);
if (tag !== platformTag()) {
  // addon/build now holds files this machine cannot load: remove them, so
  // that the next `make addon` builds the host's again.
  fs.rmSync(built, { recursive: true, force: true });
  console.log(`prebuild: removed the ${tag} build from ${built}; make addon builds this machine's`);
}
