// cache.js - the Cache class: a Map-like, synchronous view of one shared
// cache.  Each method checks its arguments cheaply, then makes one native
// call; the native handle (src/cache.c) does the rest.
'use strict';
const util = require('util');
const binding = require('./binding');
const { KvshmError } = require('./errors');
const {
  typeError, rangeError, describe, keyTypeError, integer, checkName,
  openOptions, setOptions, iterOptions, MAX_TTL,
} = require('./options');
const { getOrSet, LEASE_PREFIX } = require('./getorset');

const C = binding.constants;
const { T_STRING, T_BUFFER, T_UINT8, T_NUMBER, T_BOOLEAN, T_JSON, T_BIGINT } = C;
// The native handle of a cache, for lib/testing.js alone: set by a static
// block inside the class, so it is no property of the class, its prototype
// or its objects.  What a handle offers production code could reach anyway
// (its test hooks exist only with KVSHM_TESTING=1: src/addon.c).
let handleOf;

function valueTypeError(value) {
  return typeError('value must be a string, number, boolean, bigint, Buffer, ' +
    `Uint8Array or a JSON-serialisable object, got ${describe(value)}` +
    (value === undefined ? ' (use delete() to remove a key)' : ''));
}

// encode()'s result: the value as the native layer takes it, and its type
// (reused: a set allocates nothing for it).
const encoded = { value: undefined, type: 0 };

/** The native form of a value: strings, numbers, ... as set() stores them. */
function encode(value) {
  let type;
  switch (typeof value) {
    case 'string': type = T_STRING; break;
    case 'number': type = T_NUMBER; break;
    case 'boolean': type = T_BOOLEAN; break;
    case 'bigint': type = T_BIGINT; value = value.toString(); break;
    case 'object':
      if (value === null) {
        type = T_JSON;
        value = 'null';
      } else if (ArrayBuffer.isView(value)) {
        if (Buffer.isBuffer(value)) type = T_BUFFER;
        else if (value instanceof Uint8Array) type = T_UINT8;
        else {
          throw typeError(`value ${describe(value)} is not supported: store a ` +
            'Buffer or Uint8Array (e.g. Buffer.from(view.buffer, view.byteOffset, view.byteLength))');
        }
      } else {
        type = T_JSON;
        value = JSON.stringify(value);
        if (value === undefined) throw valueTypeError(value);
      }
      break;
    default:
      throw valueTypeError(value);
  }
  encoded.value = value;
  encoded.type = type;
  return encoded;
}

function keysArray(keys, what) {
  if (!Array.isArray(keys)) {
    keys = typeof keys === 'object' && keys !== null && Symbol.iterator in keys
      ? Array.from(keys) : undefined;
    if (!keys) throw typeError(`${what} takes an array of keys`);
  }
  for (let i = 0; i < keys.length; i++) {
    if (typeof keys[i] !== 'string') throw keyTypeError(keys[i]);
  }
  return keys;
}

function ttlOption(options, what) {
  if (options === undefined) return C.TTL_DEFAULT;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw typeError(`${what} options must be an object like { ttl: 1000 }, got ${describe(options)}`);
  }
  for (const k in options) {
    if (k !== 'ttl' && options[k] !== undefined) throw typeError(`unknown ${what} option '${k}' (known: ttl)`);
  }
  return options.ttl === undefined ? C.TTL_DEFAULT
    : integer(options.ttl, 'ttl', 0, MAX_TTL, 'ms (0 = never expires)');
}

class Cache {
  #h;
  #name;
  #sqlite;
  #closed = false;
  #inflight = new Map(); // getOrSet: key -> this process's load of it

  /**
   * Open the cache `name`, creating it if missing (see open() in index.d.ts
   * for the options).
   */
  constructor(name, options) {
    checkName(name);
    const { cfg, flags } = openOptions(options);
    let h;
    try {
      h = binding.open(name, cfg, flags);
    } catch (err) {
      if (err instanceof KvshmError && err.code === 'EINVAL' && err.option === 'memory') {
        const e = rangeError(err.message);
        e.cause = err;
        throw e;
      }
      throw err;
    }
    this.#h = h;
    this.#name = name;
    this.#sqlite = h.sqlitePath() || null;
  }

  /** The cache's name (its segment is /dev/shm/kvshm.<name>). */
  get name() { return this.#name; }
  /** Absolute path of the SQLite file, or null when memory-only. */
  get sqlitePath() { return this.#sqlite; }
  /** True after close() or destroy(). */
  get closed() { return this.#closed; }
  /** Number of live entries in shared memory. */
  get size() { return this.#h.size(); }

  get(key) {
    if (typeof key !== 'string') throw keyTypeError(key);
    return this.#h.get(key);
  }

  set(key, value, options) {
    if (typeof key !== 'string') throw keyTypeError(key);
    const e = encode(value);
    if (options === undefined) return this.#h.set(key, e.value, e.type);
    const o = setOptions(options);
    return this.#h.set(key, e.value, e.type, o.ttl, o.opts);
  }

  /**
   * The values of keys, in order (undefined where absent), in one native
   * call: keys of one stripe are read under one hold of its lock.
   */
  getMany(keys) {
    return this.#h.getMany(keysArray(keys, 'getMany'));
  }

  /**
   * Store every [key, value] or [key, value, { ttl }] of entries in one
   * native call (options.ttl: the others' TTL).  A malformed argument is
   * thrown before anything is stored; otherwise the entries that can be
   * stored are, then the first failure is thrown with `failed`, the
   * positions of the entries that were not.
   */
  setMany(entries, options) {
    const ttl = ttlOption(options, 'setMany');
    if (!Array.isArray(entries)) {
      if (typeof entries !== 'object' || entries === null || !(Symbol.iterator in entries)) {
        throw typeError(`setMany takes an array of [key, value] pairs, got ${describe(entries)}`);
      }
      entries = Array.from(entries);
    }
    const n = entries.length;
    const keys = new Array(n), values = new Array(n);
    const types = new Uint8Array(n), ttls = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const pair = entries[i];
      if (!Array.isArray(pair) || pair.length < 2) {
        throw typeError(`setMany entry ${i} must be [key, value] or [key, value, { ttl }], got ${describe(pair)}`);
      }
      if (typeof pair[0] !== 'string') throw keyTypeError(pair[0]);
      const e = encode(pair[1]);
      keys[i] = pair[0];
      values[i] = e.value;
      types[i] = e.type;
      ttls[i] = pair.length > 2 && pair[2] !== undefined ? ttlOption(pair[2], 'setMany entry') : ttl;
    }
    this.#h.setMany(keys, values, types, ttls);
  }

  /** Delete keys in one native call; true where a key was there. */
  deleteMany(keys) {
    return this.#h.deleteMany(keysArray(keys, 'deleteMany'));
  }

  /** The value of key without making it more popular (no LFU touch, no hit
   * counted, nothing promoted from SQLite); undefined when absent. */
  peek(key) {
    if (typeof key !== 'string') throw keyTypeError(key);
    return this.#h.getEx(key, true, true);
  }

  /** When key expires, ms since the epoch; Infinity if never; undefined if
   * absent. */
  expiresAt(key) {
    if (typeof key !== 'string') throw keyTypeError(key);
    if (this.#h.getEx(key, true, false) === undefined) return undefined;
    const at = this.#h.lastExpiry();
    return at === 0 ? Infinity : at;
  }

  /** Milliseconds key has left; Infinity if it never expires; undefined if
   * absent. */
  ttl(key) {
    const at = this.expiresAt(key);
    return at === undefined || at === Infinity ? at : Math.max(0, at - Date.now());
  }

  /**
   * The value of key; on a miss, loader(key) runs ONCE ON THE HOST (a
   * lease in the cache elects one caller among every process) and the
   * others wait for its value without blocking the event loop.  See
   * lib/getorset.js.
   */
  getOrSet(key, loader, options) {
    return getOrSet(this, this.#h, this.#inflight, key, loader, options);
  }

  has(key) {
    if (typeof key !== 'string') throw keyTypeError(key);
    return this.#h.has(key);
  }

  delete(key) {
    if (typeof key !== 'string') throw keyTypeError(key);
    return this.#h.delete(key);
  }

  incr(key, delta = 1) {
    if (typeof key !== 'string') throw keyTypeError(key);
    if (delta !== 1) integer(delta, 'delta', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    return this.#h.incr(key, delta);
  }

  decr(key, delta = 1) {
    if (typeof key !== 'string') throw keyTypeError(key);
    if (delta !== 1) integer(delta, 'delta', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    return this.#h.incr(key, -delta);
  }

  /**
   * Remove every entry, or with { prefix } every key starting with it, from
   * both tiers, as one atomic step for every process: no key written
   * before the call survives it.
   */
  clear(options) {
    if (options === undefined) return void this.#h.clear();
    const o = iterOptions(options);
    if (o !== undefined && Buffer.byteLength(o) > C.PREFIX_MAX) {
      throw rangeError(`prefix is ${Buffer.byteLength(o)} bytes; clear takes a prefix of at most ${C.PREFIX_MAX} bytes`);
    }
    this.#h.clear(o);
  }

  keys(options) { return this.#walk(iterOptions(options), 0); }
  values(options) { return this.#walk(iterOptions(options), 1); }
  entries(options) { return this.#walk(iterOptions(options), 2); }
  [Symbol.iterator]() { return this.#walk(undefined, 2); }

  forEach(callback, thisArg) {
    if (typeof callback !== 'function') throw typeError(`callback must be a function, got ${describe(callback)}`);
    for (const [k, v] of this.#walk(undefined, 2)) callback.call(thisArg, v, k, this);
  }

  // mode 0: keys, 1: values, 2: [key, value] pairs.
  * #walk(prefix, mode) {
    const it = this.#h.iter(prefix, mode !== 0);
    try {
      for (let batch; (batch = it.next()) !== undefined;) {
        // getOrSet's leases are the cache's own, not the user's entries.
        if (mode === 0) {
          for (const k of batch) if (!isLease(k)) yield k;
        } else if (mode === 1) {
          for (let i = 1; i < batch.length; i += 2) if (!isLease(batch[i - 1])) yield batch[i];
        } else {
          for (let i = 0; i < batch.length; i += 2) if (!isLease(batch[i])) yield [batch[i], batch[i + 1]];
        }
      }
    } finally {
      it.close();
    }
  }

  stats() { return this.#h.stats(); }
  storeStats() { return this.#h.storeStats(); }
  flush() { this.#h.flush(); }

  close() {
    this.#closed = true;
    this.#h.close();
  }

  destroy() {
    this.#closed = true;
    return this.#h.destroy();
  }

  get [Symbol.toStringTag]() { return 'KvshmCache'; }

  [util.inspect.custom](depth, options, inspect) {
    const size = this.#closed ? 'closed' : `size ${this.size}`;
    return `KvshmCache(${inspect(this.#name, options)}, ${size})`;
  }

  static {
    handleOf = (cache) => cache.#h;
  }
}

function isLease(k) {
  return k.charCodeAt(0) === 0 && k.startsWith(LEASE_PREFIX);
}

module.exports = { Cache, handleOf, encode };
