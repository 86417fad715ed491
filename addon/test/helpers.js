// helpers.js - shared by the addon's tests: unique cache names (every name
// starts with "nd" and the pid, so parallel runs never collide), cleanup of
// everything a test created, and child-process helpers with timeouts.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const kvshm = require('../lib');

const created = new Set();
let seq = 0;

/** A cache name unique to this process: nd<pid>-<tag>-<n>. */
function uniqueName(tag = 't') {
  const name = `nd${process.pid}-${tag}-${seq++}`;
  created.add(name);
  return name;
}

// Cleanups run last registered, first run (t.after alone runs them in
// registration order), so a directory outlives the caches that use it.
const cleanups = new WeakMap();
function onCleanup(t, fn) {
  let list = cleanups.get(t);
  if (!list) {
    list = [];
    cleanups.set(t, list);
    t.after(() => {
      const errors = [];
      for (const f of list.reverse()) {
        try {
          f();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length) throw errors[0];
    });
  }
  list.push(fn);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Destroy cache when test t ends.  For a SQLite-backed cache its
 * kvshm-reaper (which writes what is dirty and exits once it sees the cache
 * gone, within a few seconds) is waited for, so that nothing writes into
 * the test's directory after the test.
 */
function adopt(t, cache) {
  const { name } = cache;
  created.add(name);
  onCleanup(t, () => {
    let reaper = 0;
    try {
      if (!cache.closed) {
        if (cache.sqlitePath) reaper = cache.stats().reaperPid;
        cache.destroy();
      }
    } finally {
      kvshm.destroy(name);
    }
    const wait = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 1000 && reaper && alive(reaper); i++) Atomics.wait(wait, 0, 0, 10);
  });
  return cache;
}

/** Open a fresh cache for test t; destroyed when the test ends. */
function freshCache(t, options, tag) {
  return adopt(t, kvshm.open(uniqueName(tag), options));
}

/** A temporary directory removed when the test ends. */
function tmpDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nd${process.pid}-`));
  // A kvshm-reaper may still be finishing in it (it exits within seconds of
  // its cache's destroy): retry, and try once more as the process exits.
  const rm = () => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 30, retryDelay: 100 });
  onCleanup(t, () => {
    try {
      rm();
    } catch {
      process.on('exit', () => {
        try {
          rm();
        } catch {
          // left in the temporary directory
        }
      });
    }
  });
  return dir;
}

process.on('exit', () => {
  for (const name of created) {
    try {
      kvshm.destroy(name);
    } catch {
      // already gone or never created
    }
  }
});

/**
 * Run `node script ...args`; resolve { code, signal, stdout, stderr }.
 * Kills it (SIGKILL) and rejects after timeoutMs.
 */
function runNode(script, args = [], { timeoutMs = 30000, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(script)} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The file mode of a cache's segment in /dev/shm. */
function segmentMode(name) {
  return fs.statSync(`/dev/shm/kvshm.${name}`).mode & 0o777;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { kvshm, uniqueName, freshCache, adopt, onCleanup, tmpDir, runNode, segmentMode, sleep, fixture: (f) => path.join(__dirname, 'fixtures', f) };
