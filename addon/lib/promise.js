// promise.js - the Promise facade: the API and return values of the first
// design (a Rust cache process reached over a pipe), so that its users
// switch by changing one import:
//
//   const cache = require('kvshm/promise');
//   await cache.start();                  // the default cache
//   await cache.insert('k', 'v', 60);     // 'I'  (TTL in seconds, 0 = never)
//   await cache.get('k');                 // 'v', or '' when missing/expired
//   await cache.remove('k');              // 'R'
//   await cache.close();
//
// Every call runs synchronously on shared memory; the Promise is only the
// shape of the old API.  Errors reject with the same TypeError, RangeError
// or KvshmError the synchronous API throws.
'use strict';
const { Cache } = require('./cache');
const { KvshmError } = require('./errors');
const { typeError, rangeError, describe, MAX_TTL } = require('./options');

/** The cache start() opens when given no name: KVSHM_NAME, else 'default'. */
const DEFAULT_NAME = 'default';

let cache = null;

function current() {
  if (!cache) throw new KvshmError('the cache is not started', 'ECLOSED', 0);
  return cache;
}

/**
 * Open the cache: with no options, the cache named by the KVSHM_NAME
 * environment variable or 'default', memory-only, with libshm's default
 * size (32 MiB).  Options are open()'s plus `name`.  Calling start() again
 * closes the cache that was open first.
 */
async function start(options) {
  let name = process.env.KVSHM_NAME || DEFAULT_NAME;
  let rest;
  if (options !== undefined && options !== null) {
    if (typeof options !== 'object') throw typeError(`start options must be an object, got ${describe(options)}`);
    ({ name = name, ...rest } = options);
  }
  const next = new Cache(name, rest);
  if (cache) cache.close();
  cache = next;
}

/** Store value under key for ttlSeconds (0 or omitted: never expires). */
async function insert(key, value, ttlSeconds = 0) {
  if (typeof ttlSeconds !== 'number' || Number.isNaN(ttlSeconds)) {
    throw typeError(`ttlSeconds must be a number, got ${describe(ttlSeconds)}`);
  }
  const ttl = Math.ceil(ttlSeconds * 1000);
  if (!(ttlSeconds >= 0) || ttl > MAX_TTL) {
    throw rangeError(`ttlSeconds must be from 0 (never expires) to ${MAX_TTL / 1000}, got ${ttlSeconds}`);
  }
  current().set(key, value, { ttl });
  return 'I';
}

/** The value stored under key, or '' when it is missing or expired. */
async function get(key) {
  const v = current().get(key);
  return v === undefined ? '' : v;
}

/** Remove key (whether or not it was there). */
async function remove(key) {
  current().delete(key);
  return 'R';
}

/** Close the cache (it stays in shared memory for the other processes). */
async function close() {
  if (cache) {
    cache.close();
    cache = null;
  }
}

module.exports = { start, insert, get, remove, close, DEFAULT_NAME };
