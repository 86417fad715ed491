// keyv-store.js - the Keyv storage adapter behind kvshm/keyv (keyv.js and
// keyv.mjs are its CommonJS and ESM entries): Keyv, cache-manager and
// cacheable keep their entries in a kvshm cache that every process on the
// host shares.
//
// How Keyv 5 talks to a store, and what this one does about it
// (keyv/dist/index.js of keyv 5.6.0):
// - Keyv prefixes every key with `${namespace}:` itself (_getKeyPrefix) and
//   tells the store its namespace by setting store.namespace.  The store
//   keeps keys as they come; clear() and iterator() work on the keys that
//   start with `${namespace}:` (the whole cache when there is none).
// - Keyv serializes { value, expires } into a string with @keyv/serialize
//   unless its serialize option is off (serializeData), and deserializes
//   only strings (get, deserializeData).  So a store either gets envelope
//   strings (the default: stored as they are, a kvshm string) or, with
//   serialize off, envelope objects (native: true: the value is stored as
//   kvshm's own type and the expiry as kvshm's TTL, and get rebuilds the
//   envelope from both).  Which one cannot be told from what is stored (a
//   string value looks like an envelope string), hence the option.
// - Keyv offers keyv.iterator() only for stores whose opts.dialect is one
//   of its own adapters' (iterableAdapters, _checkIterableAdapter); Keyv 5
//   has no other way to declare it.  This store's iterator(namespace) keeps
//   @keyv/redis's contract, so it declares 'redis'.  Nothing else in Keyv
//   5, cache-manager 7 or cacheable 2 reads opts.dialect.
// - Keyv catches what store.set throws, emits it and returns false, but
//   swallows what store.get throws; @keyv/redis emits every error and
//   degrades (undefined, false).  This store does the same, so a value too
//   large for the cache makes set() resolve false and emit the RangeError
//   (ETOOBIG), and the store keeps working: a cache-manager or cacheable
//   L1 refill of that key just misses.  With no 'error' listener (a store
//   used without Keyv) Node throws the error instead, so the call rejects.
'use strict';
const { EventEmitter } = require('events');
const { KvshmError } = require('./errors');
const { typeError, describe } = require('./options');
const shared = require('./shared');

const STORE_OPTIONS = ['native', 'throwOnErrors'];

function storeOptions(options) {
  if (options === undefined || options === null) return { native: false, throwOnErrors: false };
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw typeError(`store options must be an object, got ${describe(options)}`);
  }
  for (const k of Object.keys(options)) {
    if (!STORE_OPTIONS.includes(k)) throw typeError(`unknown store option '${k}' (known: ${STORE_OPTIONS.join(', ')})`);
  }
  const { native = false, throwOnErrors = false } = options;
  if (typeof native !== 'boolean') throw typeError(`native must be a boolean, got ${describe(native)}`);
  if (typeof throwOnErrors !== 'boolean') throw typeError(`throwOnErrors must be a boolean, got ${describe(throwOnErrors)}`);
  return { native, throwOnErrors };
}

// Keyv's ttl (ms, undefined = none) as kvshm set options.  Keyv turns 0
// into undefined; fractions of a millisecond round up (kvshm takes whole
// ms); a negative or non-number ttl reaches kvshm, which names it in a
// RangeError or TypeError.
function ttlOption(ttl) {
  if (ttl === undefined || ttl === null || ttl === 0 || ttl === Infinity) return undefined;
  return { ttl: typeof ttl === 'number' && ttl > 0 ? Math.ceil(ttl) : ttl };
}

// kvshm answers Infinity for an entry that never expires; Keyv's envelope
// says so with an absent expires.
function envelope(value, expiresAt) {
  return { value, expires: expiresAt === Infinity ? undefined : expiresAt };
}


function modeError(native, value) {
  return native
    ? typeError(`this kvshm/keyv store keeps values natively (native: true) but was given ${describe(value)}: ` +
      'its Keyv serializes values; turn that off (serialize: undefined, deserialize: undefined, as createKeyv() does) ' +
      'or create the store without native: true')
    : typeError(`this kvshm/keyv store keeps Keyv's serialized strings but was given ${describe(value)}: ` +
      'its Keyv has serialize turned off; create the store with { native: true } (or use createKeyv())');
}

class KeyvKvshm extends EventEmitter {
  /** Set by Keyv: the namespace whose keys clear() and iterator() cover. */
  namespace = undefined;
  /** What Keyv reads of a store (see the top of this file); the rest is for people. */
  opts;
  #entry;
  #native;
  #throw;
  #closed = false;

  /**
   * A store over the cache `name`, opened with kvshm's open() options.
   * Stores over one name in a process share one native handle.
   * storeOptions: { native: false, throwOnErrors: false }.
   */
  constructor(name, openOptions, options) {
    super();
    const { native, throwOnErrors } = storeOptions(options);
    this.#entry = shared.acquire(name, openOptions);
    this.#native = native;
    this.#throw = throwOnErrors;
    this.opts = { dialect: 'redis', name, native, throwOnErrors };
  }

  /** The cache's name. */
  get name() { return this.#entry.cache.name; }
  /** Whether values are stored natively (see the top of this file). */
  get native() { return this.#native; }
  /**
   * The kvshm Cache under this store, shared with the other stores over
   * the same name in this process: use it, but disconnect() the store
   * rather than closing it.
   */
  get cache() { return this.#use(); }

  /**
   * Read by Keyv 6 alone (Keyv.resolveStore; Keyv 5, cache-manager 7 and
   * cacheable 2 never read it).  Keyv 6 changed the store contract: a store
   * with a namespace property prefixes keys itself, which this Keyv 5 store
   * leaves to Keyv, so under Keyv 6 namespaces would share keys and clear()
   * would miss them.  Refuse at once, saying why.
   */
  get capabilities() {
    throw new Error('kvshm/keyv is a store for Keyv 5 (keyv@5.5 or later 5.x, as cache-manager 7 and ' +
      'cacheable 2 use); Keyv 6 changed how stores handle namespaces and is not supported yet');
  }

  #use() {
    if (this.#closed) throw new KvshmError('this kvshm/keyv store is disconnected', 'ECLOSED', 0);
    return this.#entry.cache;
  }

  // Emit err and return `result`, or throw with throwOnErrors.
  #fail(err, result) {
    this.emit('error', err);
    if (this.#throw) throw err;
    return result;
  }

  #prefix(namespace) {
    return namespace ? `${namespace}:` : undefined;
  }

  async get(key) {
    try {
      const cache = this.#use();
      const v = cache.get(key);
      if (v === undefined || !this.#native) return v;
      return envelope(v, cache.expiresAt(key));
    } catch (err) {
      return this.#fail(err, undefined);
    }
  }

  async getMany(keys) {
    try {
      const cache = this.#use();
      const values = cache.getMany(keys);
      if (this.#native) {
        for (let i = 0; i < values.length; i++) {
          if (values[i] !== undefined) values[i] = envelope(values[i], cache.expiresAt(keys[i]));
        }
      }
      return values;
    } catch (err) {
      return this.#fail(err, keys.map(() => undefined));
    }
  }

  async set(key, value, ttl) {
    try {
      const cache = this.#use();
      if (this.#native) {
        if (typeof value !== 'object' || value === null || !('value' in value)) throw modeError(true, value);
        // kvshm has no undefined; Keyv reads an absent key as undefined too.
        if (value.value === undefined) {
          cache.delete(key);
          return true;
        }
        cache.set(key, value.value, ttlOption(ttl));
      } else {
        if (typeof value !== 'string') throw modeError(false, value);
        cache.set(key, value, ttlOption(ttl));
      }
      return true;
    } catch (err) {
      return this.#fail(err, false);
    }
  }

  /**
   * Keyv's entries [{ key, value, ttl }] in one native call; an entry
   * kvshm refuses (too large, a value of another type) is false in the
   * result and emitted, and the others are stored.
   */
  async setMany(entries) {
    let batch, at, refused;
    try {
      const cache = this.#use();
      batch = [];
      at = []; // batch[j] is entries[at[j]]
      const gone = [];
      entries.forEach(({ key, value, ttl }, i) => {
        let v = value;
        if (this.#native) {
          if (typeof v !== 'object' || v === null || !('value' in v)) throw modeError(true, v);
          v = v.value;
          if (v === undefined) {
            gone.push(key);
            return;
          }
        } else if (typeof v !== 'string') {
          throw modeError(false, v);
        }
        const o = ttlOption(ttl);
        batch.push(o ? [key, v, o] : [key, v]);
        at.push(i);
      });
      if (gone.length) cache.deleteMany(gone);
      try {
        cache.setMany(batch);
        return entries.map(() => true);
      } catch (err) {
        if (!(err instanceof RangeError || err instanceof TypeError)) throw err;
        refused = err;
      }
    } catch (err) {
      return this.#fail(err, entries.map(() => false));
    }
    if (Array.isArray(refused.failed)) {
      // kvshm stored every other entry and says which it refused.
      const result = entries.map(() => true);
      for (const j of refused.failed) result[at[j]] = false;
      return this.#fail(refused, result);
    }
    // kvshm refused the call's arguments before storing any: set them one
    // by one, so the others are stored and each refusal is emitted.
    const cache = this.#entry.cache;
    const result = entries.map(() => true);
    batch.forEach(([key, v, o], j) => {
      try {
        cache.set(key, v, o);
      } catch (err) {
        result[at[j]] = this.#fail(err, false);
      }
    });
    return result;
  }

  async delete(key) {
    try {
      return this.#use().delete(key);
    } catch (err) {
      return this.#fail(err, false);
    }
  }

  /** True if any of keys was deleted (as @keyv/redis answers). */
  async deleteMany(keys) {
    try {
      return this.#use().deleteMany(keys).includes(true);
    } catch (err) {
      return this.#fail(err, false);
    }
  }

  async has(key) {
    try {
      return this.#use().has(key);
    } catch (err) {
      return this.#fail(err, false);
    }
  }

  async hasMany(keys) {
    try {
      const cache = this.#use();
      return keys.map((key) => cache.has(key));
    } catch (err) {
      return this.#fail(err, keys.map(() => false));
    }
  }

  /**
   * Remove the keys of this store's namespace, in both of kvshm's tiers and
   * for every process; with no namespace, the whole cache.
   */
  async clear() {
    try {
      const prefix = this.#prefix(this.namespace);
      this.#use().clear(prefix ? { prefix } : undefined);
    } catch (err) {
      this.#fail(err, undefined);
    }
  }

  /**
   * [key, raw] of every key of `namespace` (Keyv passes store.namespace),
   * both tiers, with the key as stored (namespace: included: Keyv strips
   * it).  The walk holds no lock between steps.  Expired entries are not
   * walked, so native entries carry no expires (Keyv reads it only to skip
   * expired ones).  Natively stored values under a serializing Keyv's
   * prefix are not its entries and are passed over: Keyv would fail on
   * them.
   */
  async* iterator(namespace) {
    let walk;
    try {
      walk = this.#use().entries({ prefix: this.#prefix(namespace) });
    } catch (err) {
      this.#fail(err, undefined);
      return;
    }
    for (const [key, value] of walk) {
      if (this.#native) yield [key, { value, expires: undefined }];
      else if (typeof value === 'string') yield [key, value];
    }
  }

  /**
   * Let go of the shared handle (the last store over a name closes it).
   * The entries stay in the cache.  Later calls emit KvshmError 'ECLOSED'.
   */
  async disconnect() {
    if (this.#closed) return;
    this.#closed = true;
    shared.release(this.#entry);
  }
}

/**
 * A Keyv (of the class given: keyv ships a CommonJS and an ESM one, and
 * each entry passes its own) over a KeyvKvshm that stores values natively:
 * Keyv's serialize and deserialize are off, as @cacheable/memory's
 * createKeyv() and cache-manager's default store do.  keyvOptions are
 * Keyv's (namespace, ttl, ...), except the serializing ones.
 */
function createKeyvWith(Keyv, name, openOptions, keyvOptions) {
  const o = keyvOptions === undefined || keyvOptions === null ? {} : keyvOptions;
  if (typeof o !== 'object' || Array.isArray(o)) throw typeError(`Keyv options must be an object, got ${describe(o)}`);
  for (const k of ['store', 'serialize', 'deserialize', 'compression']) {
    if (o[k] !== undefined) {
      throw typeError(`createKeyv() does not take the Keyv option '${k}': it stores values natively; ` +
        'for a serializing Keyv use new Keyv({ store: new KeyvKvshm(name, openOptions) })');
    }
  }
  if (typeof Keyv !== 'function') throw new Error('createKeyv() needs the keyv package (5.x): npm install keyv');
  const store = new KeyvKvshm(name, openOptions, { native: true, throwOnErrors: o.throwOnErrors === true });
  return new Keyv({ ...o, store, serialize: undefined, deserialize: undefined });
}

module.exports = { KeyvKvshm, createKeyvWith };
