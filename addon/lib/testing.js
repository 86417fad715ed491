// testing.js - hooks for kvshm's own tests; not part of the package's API
// (not in "exports").  They reach libshm's kvshm_test.h through the handle.
'use strict';
const binding = require('./binding');
const { kHandle } = require('./cache');

module.exports = {
  /** Test points of a write, for killAt. */
  points: binding.constants.testPoints,
  /** Make this handle's clock read `ms` (ms since the epoch); -1: real clock. */
  setClock(cache, ms) { cache[kHandle]()._setClock(ms); },
  /**
   * Send this process `signal` (a number, default SIGKILL) when a write of
   * this handle reaches test point `point` with the stripe lock held.
   */
  signalAt(cache, point, signal = require('os').constants.signals.SIGKILL) {
    cache[kHandle]()._signalAt(point, signal);
  },
  /** kvshm_verify: every invariant of the segment; the problems found. */
  verify(cache) { return cache[kHandle]()._verify(); },
  /** Is key in the shared-memory tier (never looks in SQLite)? */
  inMemory(cache, key) { return cache[kHandle]()._inMemory(key); },
};
