#!/usr/bin/env node
// build.js - compile the addon, kvshm-reaper and kvshm-cli with node-gyp
// against the headers of the Node that runs this script, so nothing is
// ever downloaded.  SQLite is compiled in (deps/sqlite).
//
//   node addon/scripts/build.js [--werror] [--arch=ARCH] [--libc=LIBC]
//   node addon/scripts/build.js --if-installed      the package's install script
//
// --if-installed: do nothing in a source checkout (the Makefile builds
// there).  In an installed package, do nothing if the prebuilt addon for
// this machine loads (npm_config_build_from_source=true, as set by
// `npm install --build-from-source`, or KVSHM_BUILD_FROM_SOURCE=1 build
// anyway); otherwise build, first saying exactly what is missing if the
// tools are not there.  Install scripts may be skipped (--ignore-scripts,
// pnpm): the prebuilt files work without this script.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { prebuiltDir, platformTag, built, STAMP } = require('../lib/locate');

const addonDir = path.resolve(__dirname, '..');
const args = process.argv.slice(2);

function fail(msg) {
  console.error(`kvshm: ${msg}`);
  process.exit(1);
}

// Does each prebuilt file run here?  null, or what went wrong.
function prebuiltFails(dir) {
  const tries = [
    [process.execPath, ['-e', `require(${JSON.stringify(path.join(dir, 'kvshm.node'))})`]],
    [path.join(dir, 'kvshm-reaper'), ['-V']],
    [path.join(dir, 'kvshm-cli'), ['--help']],
  ];
  for (const [cmd, argv] of tries) {
    const r = spawnSync(cmd, argv, { encoding: 'utf8' });
    if (r.error) return `${cmd}: ${r.error.message}`;
    if (r.status !== 0) {
      const why = (r.stderr.match(/Error: .*/) || [r.stderr.trim()])[0];
      return `${path.basename(argv[0] === '-e' ? dir + '/kvshm.node' : cmd)}: ${why}`;
    }
  }
  return null;
}

if (args.includes('--if-installed')) {
  // A checkout (the Makefile, the tests) builds with make, wherever it is
  // (npm link, npm install ../kvshm); the package has neither.
  const root = path.dirname(addonDir);
  if (fs.existsSync(path.join(root, 'Makefile')) && fs.existsSync(path.join(root, 'tests'))) {
    console.log('kvshm: source checkout, not building on install (run `make addon`)');
    process.exit(0);
  }
  const forced = process.env.npm_config_build_from_source === 'true' ||
    process.env.KVSHM_BUILD_FROM_SOURCE === '1';
  const dir = prebuiltDir();
  if (!forced && fs.existsSync(path.join(dir, 'kvshm.node'))) {
    const why = prebuiltFails(dir);
    if (!why) {
      console.log(`kvshm: using the prebuilt addon for ${platformTag()}`);
      process.exit(0);
    }
    console.log(`kvshm: the prebuilt files for ${platformTag()} do not run ` +
      `here (${why}): building from source`);
  } else if (!forced) {
    console.log(`kvshm: no prebuilt addon for ${platformTag()}: building from source`);
  }
  // A build from source replaces any earlier one.
  fs.rmSync(built, { recursive: true, force: true });
}

// What a build needs, checked first so that a missing piece is named
// rather than buried in a gyp trace.
function executable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
function onPath(cmd) {
  if (cmd.includes('/')) return executable(cmd);
  return (process.env.PATH || '').split(path.delimiter).some((d) => executable(path.join(d, cmd)));
}
const missing = [];
const cc = (process.env.CC || 'cc').split(/\s+/)[0];
if (!onPath(cc) && !(cc === 'cc' && onPath('gcc'))) missing.push(`a C compiler (${cc})`);
if (!onPath('make')) missing.push('make');
if (!onPath('python3') && !onPath('python')) missing.push('python3 (for node-gyp)');

// The running Node's prefix (/usr for /usr/bin/node) holds
// include/node/node_api.h; KVSHM_NODEDIR overrides it.
const nodedir = process.env.KVSHM_NODEDIR ||
  path.dirname(path.dirname(process.execPath));
const header = path.join(nodedir, 'include', 'node', 'node_api.h');
if (!fs.existsSync(header)) {
  missing.push(`the Node.js headers (${header}; they come with the official ` +
    'Node tarballs and images; Debian: apt-get install libnode-dev; or set ' +
    'KVSHM_NODEDIR to a directory holding include/node/node_api.h)');
}
if (missing.length) {
  fail(`cannot build the native addon for ${platformTag()} from source: ` +
    `missing ${missing.join(', ')}.\n` +
    'Install them (Debian/Ubuntu: apt-get install build-essential python3; ' +
    'Alpine: apk add build-base python3 linux-headers) and run `npm rebuild ' +
    'kvshm`. SQLite is built in: no SQLite package is needed.');
}

// node-gyp: our pinned devDependency, else the one npm runs scripts with.
function findNodeGyp() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js', { paths: [addonDir] });
  } catch {
    // not installed: fall through
  }
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && fs.existsSync(fromNpm)) return fromNpm;
  fail('cannot build: node-gyp not found (npm install node-gyp, or run ' +
    'this from an npm install script)');
}

const gypArgs = [findNodeGyp(), 'rebuild', `--nodedir=${nodedir}`,
  '--jobs=max', '--loglevel=warn',
  ...args.filter((a) => a.startsWith('--arch='))];
if (args.includes('--werror')) gypArgs.push('--', '-Dkvshm_werror=1');
const r = spawnSync(process.execPath, gypArgs, { cwd: addonDir, stdio: 'inherit' });
if (r.error) fail(`cannot run node-gyp: ${r.error.message}`);
if (r.status !== 0) {
  fail(`building the native addon from source failed (node-gyp exit ${r.status}; ` +
    'its output is above). It needs a C11 compiler, make, python3 and the ' +
    'Node headers; if they are there, the lines above say what failed.');
}
// What the build is for (lib/locate.js uses it only on that platform).
const arch = (args.find((a) => a.startsWith('--arch=')) || '').slice(7) || process.arch;
const libc = (args.find((a) => a.startsWith('--libc=')) || '').slice(7) ||
  platformTag().split('-')[2];
fs.writeFileSync(STAMP, `${process.platform}-${arch}-${libc}\n`);
