#!/usr/bin/env node
// build.js - compile the addon with node-gyp against the headers of the
// Node that runs this script, so nothing is ever downloaded.
//
//   node addon/scripts/build.js [--werror] [--if-installed]
//
// --if-installed: do nothing in a source checkout (the Makefile builds
// there); build when the package is installed into another project (npm
// runs this as the package's "install" script).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const addonDir = path.resolve(__dirname, '..');
const args = process.argv.slice(2);

if (args.includes('--if-installed') &&
    !addonDir.split(path.sep).includes('node_modules')) {
  console.log('kvshm: source checkout, not building on install (run `make addon`)');
  process.exit(0);
}

// The running Node's prefix (/usr for /usr/bin/node) holds
// include/node/node_api.h; KVSHM_NODEDIR overrides it.
const nodedir = process.env.KVSHM_NODEDIR ||
  path.dirname(path.dirname(process.execPath));
const header = path.join(nodedir, 'include', 'node', 'node_api.h');
if (!fs.existsSync(header)) {
  console.error(`kvshm: cannot build: ${header} is missing.\n` +
    'Install the Node.js headers for this Node (they come with the official ' +
    'tarballs; Debian: apt-get install libnode-dev), or set KVSHM_NODEDIR to ' +
    'a directory holding include/node/node_api.h.');
  process.exit(1);
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
  console.error('kvshm: cannot build: node-gyp not found (npm install ' +
    'node-gyp, or run this from an npm install script)');
  process.exit(1);
}

const gypArgs = [findNodeGyp(), 'rebuild', `--nodedir=${nodedir}`,
  '--jobs=max', '--loglevel=warn'];
if (args.includes('--werror')) gypArgs.push('--', '-Dkvshm_werror=1');
const r = spawnSync(process.execPath, gypArgs, { cwd: addonDir, stdio: 'inherit' });
if (r.error) {
  console.error(`kvshm: cannot run node-gyp: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status === null ? 1 : r.status);
