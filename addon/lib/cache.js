// cache.js - the Cache class: a Map-like, synchronous view of one shared
// cache.  Each method checks its arguments cheaply, then makes one native
// call; the native handle (src/cache.c) does the rest.
'use strict';
const util = require('util');
const binding = require('./binding');
const { KvshmError } = require('./errors');
const {
  typeError, rangeError, describe, keyTypeError, integer, checkName,
  openOptions, setOptions, iterOptions,
} = require('./options');

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

class Cache {
  #h;
  #name;
  #sqlite;
  #closed = false;

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
    if (options === undefined) return this.#h.set(key, value, type);
    const o = setOptions(options);
    return this.#h.set(key, value, type, o.ttl, o.opts);
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

  clear() { this.#h.clear(); }

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
        if (mode === 0) {
          yield* batch;
        } else if (mode === 1) {
          for (let i = 1; i < batch.length; i += 2) yield batch[i];
        } else {
          for (let i = 0; i < batch.length; i += 2) yield [batch[i], batch[i + 1]];
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

module.exports = { Cache, handleOf };
