// testing.js - hooks for kvshm's own tests; not part of the package's API
// (not in "exports").  They reach libshm's kvshm_test.h through the handle.
// setClock and signalAt need a process started with KVSHM_TESTING=1 (the
// test runner sets it): without it the native handle does not have them.
'use strict';
const binding = require('./binding');
const { handleOf } = require('./cache');

function hook(cache, name) {
  const h = handleOf(cache);
  if (typeof h[name] !== 'function') {
    throw new Error(`kvshm test hook ${name} is off: start the process with KVSHM_TESTING=1`);
  }
  return h;
}

module.exports = {
  /** Test points of a write, for signalAt. */
  points: binding.constants.testPoints,
  /** Make this handle's clock read `ms` (ms since the epoch); -1: real clock. */
  setClock(cache, ms) { hook(cache, '_setClock')._setClock(ms); },
  /**
   * Send this process `signal` (a number, default SIGKILL) when a write of
   * this handle reaches test point `point` with the stripe lock held.
   */
  signalAt(cache, point, signal = require('os').constants.signals.SIGKILL) {
    hook(cache, '_signalAt')._signalAt(point, signal);
  },
  /** kvshm_verify: every invariant of the segment; the problems found. */
  verify(cache) { return handleOf(cache)._verify(); },
  /** Is key in the shared-memory tier (never looks in SQLite)? */
  inMemory(cache, key) { return handleOf(cache)._inMemory(key); },
};
