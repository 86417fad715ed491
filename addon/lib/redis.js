// redis.js - kvshm/redis: a near cache in front of Redis that every
// process of a host shares, kept coherent by Redis itself.
//
//   const { createNearCache } = require('kvshm/redis');
//   const near = createNearCache({ name: 'users', memory: '256mb',
//     redis: { host: 'redis.internal' }, prefixes: ['user:'] });
//   await near.get('user:1'); // memory when present, else Redis (and memory)
//
// get serves the shared memory while the host's listener is in sync with
// Redis's invalidations (within maxLag); otherwise, and on a miss, it reads
// Redis and fills the memory, only if no invalidation of the key came
// meanwhile (epoch + setIfEpoch: libshm/near.c).  set and delete write
// Redis first, then drop the host's copy.  One process per host holds the
// subscription (redis-listener.js): every instance tries to become it
// every syncInterval, through the segment's near lock, which the kernel
// frees when its holder dies.  Keys outside `prefixes` are never cached.
'use strict';
const crypto = require('crypto');
const os = require('os');
const binding = require('./binding');
const { Cache, handleOf } = require('./cache');
const { Listener, PROBE_PREFIX } = require('./redis-listener');
const { LEASE_PREFIX, pollDelay, newToken } = require('./getorset');
const { typeError, rangeError, describe, keyTypeError, integer, MAX_TTL } = require('./options');

const C = binding.constants;
const NEAR_OPTIONS = ['name', 'redis', 'prefixes', 'ttl', 'maxLag', 'syncInterval', 'probeInterval'];
const DEFAULT_MAX_LAG = 500;
const DEFAULT_PROBE_INTERVAL = 1000;
const DEFAULT_LOCK_TIMEOUT = 10_000;
const RESIGN_PAUSE = 1000;
const testHooks = Symbol('kvshm near-cache test hooks');

function loadIoredis() {
  try {
    return require('ioredis');
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
    throw new Error('kvshm/redis talks to Redis through ioredis: install it beside kvshm (npm install ioredis)');
  }
}

function parseOptions(options) {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw typeError(`createNearCache takes an options object like { name, redis, prefixes }, got ${describe(options)}`);
  }
  const { redis = {}, prefixes = [] } = options;
  if (typeof options.name !== 'string') throw typeError(`name must be the cache's name, a string, got ${describe(options.name)}`);
  if (typeof redis !== 'string' && (typeof redis !== 'object' || redis === null || Array.isArray(redis))) {
    throw typeError(`redis must be ioredis connection options (an object) or a redis:// URL, got ${describe(redis)}`);
  }
  if (!Array.isArray(prefixes) || prefixes.some((p) => typeof p !== 'string' || p === '')) {
    throw typeError(`prefixes must be an array of non-empty strings (the keys to cache), got ${describe(prefixes)}`);
  }
  if (new Set(prefixes).size !== prefixes.length) {
    throw rangeError(`prefixes lists one prefix twice: ${JSON.stringify(prefixes)}`);
  }
  for (const p of prefixes) {
    if (p.startsWith(PROBE_PREFIX)) {
      throw rangeError(`prefix ${JSON.stringify(p)} is inside ${JSON.stringify(PROBE_PREFIX)}, ` +
        'the near cache\'s own probe keys: choose another');
    }
  }
  for (const a of prefixes) {
    for (const b of prefixes) {
      if (a !== b && b.startsWith(a)) {
        throw rangeError(`prefixes ${JSON.stringify(a)} and ${JSON.stringify(b)} overlap: Redis tracks ` +
          `non-overlapping prefixes only; keep ${JSON.stringify(a)}`);
      }
    }
  }
  const ttl = options.ttl === undefined ? 0 : integer(options.ttl, 'ttl', 0, MAX_TTL, 'ms (0 = a copy lives until invalidated or evicted)');
  const maxLag = options.maxLag === undefined ? DEFAULT_MAX_LAG : integer(options.maxLag, 'maxLag', 10, 3_600_000, 'ms');
  const syncInterval = options.syncInterval === undefined ? Math.max(5, Math.floor(maxLag / 5))
    : integer(options.syncInterval, 'syncInterval', 1, maxLag - 1, 'ms (below maxLag)');
  const probeInterval = options.probeInterval === undefined ? DEFAULT_PROBE_INTERVAL
    : integer(options.probeInterval, 'probeInterval', 0, 3_600_000, 'ms (0 = no probes)');
  const open = {};
  for (const k of Object.keys(options)) if (!NEAR_OPTIONS.includes(k)) open[k] = options[k];
  if (open.readonly) throw rangeError('a near cache writes its host\'s cache (fills, invalidations): it cannot be readonly');
  const redisOptions = typeof redis === 'string' ? { ...parseUrl(redis) } : { ...redis };
  if (redisOptions.keyPrefix) {
    throw rangeError('ioredis\'s keyPrefix is not supported by the near cache (Redis would track other ' +
      'names than the ones it caches): put the prefix in the keys and in prefixes');
  }
  // What the host's listener must agree on with every process that serves
  // or fills: the keys tracked, in which database.
  const config = configHash(JSON.stringify([[...prefixes].sort(), redisOptions.db || 0]));
  return { name: options.name, redisOptions, prefixes: [...prefixes], ttl, maxLag, syncInterval, probeInterval, open, config };
}

// FNV-1a, 32 bits, never 0 (0 is "no listener configuration yet").
function configHash(text) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h || 1;
}

// ioredis takes a URL as its first argument; the listener needs options it
// can extend, so a URL becomes options here.
function parseUrl(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw typeError(`redis ${JSON.stringify(url)} is not a URL like redis://host:6379/0`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw rangeError(`redis URL must start with redis:// or rediss://, got ${JSON.stringify(url)}`);
  }
  const o = { host: u.hostname || '127.0.0.1', port: Number(u.port || 6379) };
  if (u.username) o.username = decodeURIComponent(u.username);
  if (u.password) o.password = decodeURIComponent(u.password);
  if (u.pathname.length > 1) o.db = integer(Number(u.pathname.slice(1)), 'redis URL database', 0, 1 << 30);
  if (u.protocol === 'rediss:') o.tls = {};
  return o;
}

function valueOf(value) {
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw typeError(`value must be a string, Buffer or number (what Redis stores), got ${describe(value)}; ` +
    'store objects as JSON.stringify(value)');
}

function ttlOf(options, what) {
  if (options === undefined) return 0;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw typeError(`${what} options must be an object like { ttl: 60000 }, got ${describe(options)}`);
  }
  for (const k in options) {
    if (k !== 'ttl' && k !== 'lockTimeout' && options[k] !== undefined) {
      throw typeError(`unknown ${what} option '${k}' (known: ttl${what === 'getOrSet' ? ', lockTimeout' : ''})`);
    }
  }
  return options.ttl === undefined ? 0 : integer(options.ttl, 'ttl', 0, MAX_TTL, 'ms (0 = never expires)');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class NearCache {
  #o;
  #cache;
  #h;
  #redis;
  #Redis;
  #listener = null;
  #electTimer;
  #inflight = new Map(); // key -> { p, epoch }: this process's read of it
  #loads = new Map(); // getOrSet: key -> this process's load
  #closed = false;
  #closing = null;
  #holdOff = 0;
  #errors = 0;
  [testHooks] = {};

  constructor(options) {
    this.#o = parseOptions(options);
    this.#Redis = loadIoredis();
    this.#cache = new Cache(this.#o.name, this.#o.open);
    this.#h = handleOf(this.#cache);
    try {
      this.#redis = new this.#Redis({ ...this.#o.redisOptions, connectionName: `kvshm-near:${this.#o.name}` });
      this.#redis.on('error', () => { /* commands fail with it; ioredis reconnects */ });
    } catch (err) {
      this.#cache.close();
      throw err;
    }
    this.#electTimer = setInterval(() => this.#elect(), this.#o.syncInterval);
    this.#electTimer.unref();
    this.#elect();
  }

  /** The name of the shared-memory cache under it. */
  get name() { return this.#o.name; }
  /** The shared-memory cache itself (a kvshm Cache; read it, don't write it). */
  get cache() { return this.#cache; }
  /** This process's ioredis client (the near cache's data connection). */
  get redis() { return this.#redis; }
  /** Does this process hold the host's invalidation subscription? */
  get isListener() { return this.#listener !== null; }
  get closed() { return this.#closed; }

  // The listener's connection gave up (ioredis will not reconnect): let
  // another process of the host try, and this one only after a pause.
  #resign() {
    if (!this.#listener) return;
    this.#listener.close();
    this.#listener = null;
    this.#h.nearRelease();
    this.#holdOff = Date.now() + RESIGN_PAUSE;
  }

  #elect() {
    if (this.#closed || this.#listener || Date.now() < this.#holdOff) return;
    let won;
    try {
      won = this.#h.nearClaim();
    } catch (err) {
      this.#report(err);
      return;
    }
    if (!won) return;
    this.#listener = new Listener({
      h: this.#h,
      Redis: this.#Redis,
      redisOptions: this.#o.redisOptions,
      prefixes: this.#o.prefixes,
      syncInterval: this.#o.syncInterval,
      probeInterval: this.#o.probeInterval,
      data: this.#redis,
      id: `${os.hostname()}:${this.#o.name}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`,
      config: this.#o.config,
      onError: (err) => this.#report(err),
      onEnd: () => this.#resign(),
    });
    this.#listener.start();
  }

  // The listener's trouble is nobody's call to fail: the near cache stops
  // serving memory meanwhile (it is out of sync), and this says why once in
  // a while on stderr.
  #report(err) {
    if (this.#errors++ % 100 === 0) process.emitWarning(`kvshm near cache '${this.#o.name}': ${err.message}`, 'KvshmNearCacheWarning');
  }

  #check(key) {
    if (this.#closed) {
      const e = new Error(`near cache '${this.#o.name}' is closed: create it again`);
      e.code = 'ECLOSED';
      throw e;
    }
    if (typeof key !== 'string') throw keyTypeError(key);
  }

  // Is key cached here?  Keys of the prefixes, except the listeners' probes
  // and keys longer than the cache takes.
  #tracked(key) {
    if (key.startsWith(PROBE_PREFIX)) return false;
    if (key.length > C.KEY_MAX / 3 && Buffer.byteLength(key) > C.KEY_MAX) return false;
    const p = this.#o.prefixes;
    if (p.length === 0) return true;
    for (let i = 0; i < p.length; i++) if (key.startsWith(p[i])) return true;
    return false;
  }

  /** The value of key (a string), or undefined when Redis has none. */
  async get(key) {
    this.#check(key);
    if (!this.#tracked(key)) {
      this.#h.nearCount(C.NEAR_READS, 1);
      const v = await this.#redis.get(key);
      return v === null ? undefined : v;
    }
    const v = this.#h.nearGet(key, this.#o.maxLag, this.#o.config);
    if (v !== undefined && v !== null) return v;
    // Join this process's read of the key only if nothing invalidated it
    // since that read began, and it began less than maxLag ago: else it may
    // return what a write replaced before this get began (an invalidation
    // not applied because the listener is dead or stalled moves no epoch).
    const epoch = this.#h.epoch(key);
    const started = binding.clockMs();
    const f = this.#inflight.get(key);
    if (f && f.epoch === epoch && started - f.started < this.#o.maxLag) return f.p;
    const fill = { p: null, epoch, started };
    fill.p = this.#fill(key, epoch).finally(() => {
      if (this.#inflight.get(key) === fill) this.#inflight.delete(key);
    });
    this.#inflight.set(key, fill);
    return fill.p;
  }

  // Read key from Redis, and keep it unless it was invalidated meanwhile.
  // Its copy lives at most ttl, and never past the key's own TTL in Redis
  // (Redis's invalidation of an expired key can come late: expiry is lazy).
  async #fill(key, epoch) {
    const res = await this.#redis.pipeline().get(key).pttl(key).exec();
    this.#h.nearCount(C.NEAR_READS, 1);
    if (res[0][0]) throw res[0][0];
    const v = res[0][1];
    const hook = this[testHooks].afterRead;
    if (hook) await hook(key, v);
    if (v === null || this.#closed) return v === null ? undefined : v;
    const pttl = res[1][0] ? -1 : res[1][1];
    if (pttl === -2) return v; // expired between the two reads
    let ttl = this.#o.ttl;
    if (pttl > 0) ttl = ttl ? Math.min(ttl, pttl) : pttl;
    // Only the listener's configuration fills: another one (a process with
    // other prefixes or database, in a rolling deploy) may cache keys that
    // nobody invalidates.
    if (this.#h.nearConfig() !== this.#o.config) return v;
    try {
      if (!this.#h.setIfEpoch(key, v, C.T_STRING, ttl, epoch)) this.#h.nearCount(C.NEAR_REFUSED, 1);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err; // too big to keep: serve it anyway
    }
    return v;
  }

  /**
   * Write key to Redis (with { ttl } in ms: PX), then drop the host's copy:
   * Redis sends every host, this one too, the key's invalidation, so a copy
   * made now would go at once; the next get fills it.
   */
  async set(key, value, options) {
    this.#check(key);
    const v = valueOf(value);
    const ttl = ttlOf(options, 'set');
    await (ttl ? this.#redis.set(key, v, 'PX', ttl) : this.#redis.set(key, v));
    if (this.#tracked(key) && !this.#closed) this.#h.invalidate(key);
  }

  /** Delete key from Redis, then from the host's memory; true if Redis had it. */
  async delete(key) {
    this.#check(key);
    const n = await this.#redis.del(key);
    if (this.#tracked(key) && !this.#closed) this.#h.invalidate(key);
    return n > 0;
  }

  /**
   * The value of key; when Redis has none, loader(key) runs ONCE ON THE HOST
   * (a lease in the shared memory elects one caller among its processes),
   * its value is written to Redis (with { ttl }), and every caller gets it.
   * A loader returning undefined stores nothing.  Hosts do not coordinate:
   * each may run the loader once.
   */
  async getOrSet(key, loader, options) {
    this.#check(key);
    if (typeof loader !== 'function') throw typeError(`getOrSet(key, loader): loader must be a function, got ${describe(loader)}`);
    const ttl = ttlOf(options, 'getOrSet');
    const lockTimeout = options?.lockTimeout === undefined ? DEFAULT_LOCK_TIMEOUT
      : integer(options.lockTimeout, 'lockTimeout', 1, 2 ** 31 - 1, 'ms');
    if (Buffer.byteLength(key) + LEASE_PREFIX.length > C.KEY_MAX) {
      throw rangeError(`getOrSet keys are at most ${C.KEY_MAX - LEASE_PREFIX.length} bytes (the lease key adds ${LEASE_PREFIX.length})`);
    }
    const v = await this.get(key);
    if (v !== undefined) return v;
    let p = this.#loads.get(key);
    if (!p) {
      p = this.#load(key, loader, ttl, lockTimeout).finally(() => this.#loads.delete(key));
      this.#loads.set(key, p);
    }
    return p;
  }

  async #load(key, loader, ttl, lockTimeout) {
    const lease = LEASE_PREFIX + key;
    const since = Date.now();
    for (;;) {
      const token = newToken();
      if (this.#h.set(lease, token, C.T_STRING, lockTimeout, C.NX)) {
        try {
          const v = await this.get(key); // loaded between our miss and our lease?
          if (v !== undefined) return v;
          const loaded = await loader(key);
          if (loaded === undefined) return undefined;
          await this.set(key, loaded, ttl ? { ttl } : undefined);
          return typeof loaded === 'string' ? loaded : valueOf(loaded).toString();
        } finally {
          try { this.#h.deleteIf(lease, token, C.T_STRING); } catch { /* closed meanwhile */ }
        }
      }
      // Another process loads: wait for its lease to go, then read.
      while (this.#h.has(lease)) await sleep(pollDelay(Date.now() - since));
      const v = await this.get(key);
      if (v !== undefined) return v;
      // Its loader threw or stored nothing: take the lease ourselves.
    }
  }

  /**
   * Counters of this near cache on this host (shared by its processes):
   * nearHits, redisReads, invalidations, flushes, fillsRefused,
   * listenerStarts, listenerPid, listenerAlive, lag (ms since the listener
   * was last in sync, -1 if not), delaySamples and delayP50 / delayP99 /
   * delayMax (ms from a write on another host to its invalidation here).
   */
  stats() {
    this.#check('');
    return this.#h.nearStats();
  }

  /** Stop: give the listener role up (another process takes it), close the
   * connection and the cache handle. */
  close() {
    if (!this.#closing) this.#closing = this.#close();
    return this.#closing;
  }

  async #close() {
    this.#closed = true;
    clearInterval(this.#electTimer);
    if (this.#listener) {
      this.#listener.close();
      this.#listener = null;
      this.#h.nearRelease();
    }
    // QUIT lets replies in flight arrive; with Redis away it would wait for
    // a reconnection, so then (or after 1 s) the connection just goes.
    const r = this.#redis;
    if (r.status === 'ready') {
      let timer;
      await Promise.race([r.quit().catch(() => {}), new Promise((resolve) => { timer = setTimeout(resolve, 1000); })]);
      clearTimeout(timer);
    }
    r.disconnect();
    this.#cache.close();
  }
}

/** A near cache over the shared-memory cache `name`; see NearCache. */
function createNearCache(options) {
  return new NearCache(options);
}

module.exports = { createNearCache, NearCache, testHooks };
