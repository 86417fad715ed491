// index.js - the kvshm package (CommonJS entry; index.mjs re-exports it).
//
//   const kvshm = require('kvshm');
//   const cache = kvshm.open('sessions', { memory: '256mb' });
//   cache.set('user:1', { name: 'Ada' }, { ttl: 60_000 });
//   cache.get('user:1'); // { name: 'Ada' }
'use strict';
const binding = require('./binding');
const { KvshmError } = require('./errors');
const { Cache } = require('./cache');
const { checkName, parseSize } = require('./options');

const C = binding.constants;

/** Open (or create) the cache `name`.  Same as new Cache(name, options). */
function open(name, options) {
  return new Cache(name, options);
}

/**
 * Remove the cache `name` (its /dev/shm segment).  Processes that have it
 * open keep using it until they close it.  True if it existed.
 */
function destroy(name) {
  checkName(name);
  return binding.unlink(name);
}

const constants = Object.freeze({
  VERSION: C.VERSION,
  DEFAULT_MEMORY: C.DEFAULT_MEMORY,
  DEFAULT_SLOT_SIZE: C.DEFAULT_SLOT,
  MIN_SLOT_SIZE: C.MIN_SLOT,
  MAX_SLOT_SIZE: C.MAX_SLOT,
  MAX_STRIPES: C.MAX_STRIPES,
  KEY_MAX: C.KEY_MAX,
  NAME_MAX: C.NAME_MAX,
  DEFAULT_LOCK_TIMEOUT: C.DEFAULT_LOCK_TIMEOUT,
  DEFAULT_FLUSH_DELAY: C.DEFAULT_FLUSH_DELAY,
  errors: Object.freeze({ ...C.errors }),
});

module.exports = { open, destroy, Cache, KvshmError, constants, parseSize, version: C.VERSION };
