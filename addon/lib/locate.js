// locate.js - which directory holds this machine's native files (kvshm.node
// and, beside it, kvshm-reaper and kvshm-cli): a build from source
// (addon/build/Release) if there is one, else the prebuilt files that ship
// in the package (addon/prebuilds/<platform>-<arch>-<libc>), the layout
// prebuildify uses with the C library in the directory's name.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

// The C library this Node runs on, read from its own mappings (cheap and
// exact); the process report is the fallback where /proc is not mounted.
function libc() {
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'latin1');
    return /\/ld-musl-[^/\n]*$/m.test(maps) ? 'musl' : 'glibc';
  } catch {
    const report = process.report;
    const was = report.excludeNetwork;
    report.excludeNetwork = true;
    try {
      return report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
    } finally {
      report.excludeNetwork = was;
    }
  }
}

function platformTag() {
  const tag = `${process.platform}-${process.arch}`;
  return process.platform === 'linux' ? `${tag}-${libc()}` : tag;
}

const built = path.join(root, 'build', 'Release');
const FILES = ['kvshm.node', 'kvshm-reaper', 'kvshm-cli'];
// build.js writes the platform a build from source is for here: a build
// for another (a cross build, or node_modules copied from an Alpine
// builder to a Debian runtime) must not shadow the prebuilt files.
const STAMP = path.join(built, 'kvshm-platform');

function prebuiltDir(tag = platformTag()) {
  return path.join(root, 'prebuilds', tag);
}

function complete(dir) {
  return FILES.every((f) => fs.existsSync(path.join(dir, f)));
}

function builtFor() {
  try {
    return fs.readFileSync(STAMP, 'utf8').trim();
  } catch {
    return null;
  }
}

// { dir, prebuilt } or null.
function locate() {
  const tag = platformTag();
  if (builtFor() === tag && complete(built)) return { dir: built, prebuilt: false };
  const dir = prebuiltDir(tag);
  if (complete(dir)) return { dir, prebuilt: true };
  return null;
}

const HOW_TO_BUILD =
  'Build it from source: `npm rebuild kvshm` (or `npm install kvshm ' +
  '--build-from-source`), which needs a C compiler, make and python3 ' +
  '(Debian/Ubuntu: apt-get install build-essential python3; Alpine: apk ' +
  'add build-base python3 linux-headers); SQLite is built in. In a source ' +
  'checkout: make addon.';

function missingMessage() {
  return `kvshm: no native addon for ${platformTag()}: no prebuilt binary ` +
    `ships for this platform (addon/prebuilds/ has ${listPrebuilt()}) and ` +
    `none was built from source for it (${built}: ${describeBuilt()}; ` +
    `install scripts may have been skipped). ${HOW_TO_BUILD}`;
}

function describeBuilt() {
  const tag = builtFor();
  if (!tag) return 'no build';
  if (tag !== platformTag()) return `a build for ${tag}`;
  return `incomplete, it lacks ${FILES.filter((f) => !fs.existsSync(path.join(built, f))).join(', ')}`;
}

function listPrebuilt() {
  try {
    const tags = fs.readdirSync(path.join(root, 'prebuilds'));
    return tags.length ? tags.join(', ') : 'none';
  } catch {
    return 'none';
  }
}

module.exports = {
  locate, platformTag, prebuiltDir, missingMessage, HOW_TO_BUILD, built, root,
  FILES, STAMP,
};
