// getorset.js - getOrSet(key, loader, options): fetch-or-compute with
// single flight across every process on the host.
//
// On a miss, callers in one process share one promise (#inflight); across
// processes, one of them takes a lease: the key LEASE_PREFIX + key, set with
// NX and a TTL of lockTimeout, holding a token that names its holder.  The
// holder runs the loader, stores the value, and lets the lease go with a
// compare-and-delete (deleteIf: never someone else's lease).  The others
// poll on timers (every tenth of the time waited so far, from 1 ms to 25 ms:
// they see the value at most ~10% late, and spend no CPU between) until
// the value is there, or the lease is gone without one (the loader threw:
// they try to take it; or its holder was killed: the lease expires after
// lockTimeout, and one of them takes over).
//
// staleWhileRevalidate: values are stored for ttl + staleWhileRevalidate;
// one read in the last staleWhileRevalidate ms of that is "stale": it is
// returned at once, and the caller that takes the lease refreshes it in the
// background.
'use strict';
const crypto = require('crypto');
const { threadId } = require('worker_threads');
const binding = require('./binding');
const { typeError, rangeError, describe, keyTypeError, integer, MAX_TTL } = require('./options');

const C = binding.constants;
const LEASE_PREFIX = '\u0000kvshm:lease:';
const DEFAULT_LOCK_TIMEOUT = 10_000;
const MAX_POLL_MS = 25;
// How long to sleep before looking again, having waited `waited` ms.
const pollDelay = (waited) => Math.min(MAX_POLL_MS, Math.max(1, Math.floor(waited / 10)));

let seq = 0;
const tokenBase = `${process.pid}:${threadId}:${crypto.randomBytes(6).toString('hex')}:`;
// A lease's token: names its holder, never reused.
const newToken = () => tokenBase + (seq++);

function parse(options) {
  if (options === undefined) return { ttl: undefined, swr: 0, lockTimeout: DEFAULT_LOCK_TIMEOUT };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw typeError(`getOrSet options must be an object like { ttl: 60000 }, got ${describe(options)}`);
  }
  const known = ['ttl', 'staleWhileRevalidate', 'lockTimeout'];
  for (const k in options) {
    if (!known.includes(k) && options[k] !== undefined) {
      throw typeError(`unknown getOrSet option '${k}' (known: ${known.join(', ')})`);
    }
  }
  const ttl = options.ttl === undefined ? undefined
    : integer(options.ttl, 'ttl', 0, MAX_TTL, 'ms (0 = never expires)');
  const swr = options.staleWhileRevalidate === undefined ? 0
    : integer(options.staleWhileRevalidate, 'staleWhileRevalidate', 0, MAX_TTL, 'ms');
  const lockTimeout = options.lockTimeout === undefined ? DEFAULT_LOCK_TIMEOUT
    : integer(options.lockTimeout, 'lockTimeout', 1, 2 ** 31 - 1, 'ms');
  if (swr && !ttl) {
    throw rangeError('staleWhileRevalidate needs a ttl: a value is fresh for ttl ms, ' +
      'then served stale for staleWhileRevalidate ms while one caller refreshes it');
  }
  return { ttl, swr, lockTimeout };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The stored value of key, or undefined when absent; with swr, `stale`
// tells whether it is past its fresh time.
function lookup(h, key, o, out) {
  out.stale = false;
  if (!o.swr) return h.get(key);
  const v = h.getEx(key, false, true);
  if (v !== undefined) {
    const at = h.lastExpiry();
    out.stale = at !== 0 && Date.now() >= at - o.swr;
  }
  return v;
}

function store(cache, key, value, o) {
  if (value === undefined) return; // nothing to cache: every caller gets it
  const ttl = o.ttl === undefined ? undefined : (o.ttl === 0 ? 0 : o.ttl + o.swr);
  cache.set(key, value, ttl === undefined ? undefined : { ttl });
}

// Run the loader under the lease; resolve with its value.  The lease is
// let go however the loader ends.
async function underLease(cache, h, key, loader, o, lease, token) {
  try {
    return await loader(key);
  } finally {
    try { h.deleteIf(lease, token, C.T_STRING); } catch { /* closed meanwhile */ }
  }
}

async function load(cache, h, key, loader, o) {
  const lease = LEASE_PREFIX + key;
  const token = newToken();
  const seen = { stale: false };
  const since = Date.now();
  for (;;) {
    if (h.set(lease, token, C.T_STRING, o.lockTimeout, C.NX)) {
      // Filled between our miss and our lease?  Then no load at all.
      const v = lookup(h, key, o, seen);
      if (v !== undefined && !seen.stale) {
        h.deleteIf(lease, token, C.T_STRING);
        return v;
      }
      const value = await underLease(cache, h, key, async (k) => {
        const loaded = await loader(k);
        store(cache, k, loaded, o);
        return loaded;
      }, o, lease, token);
      return value;
    }
    await sleep(pollDelay(Date.now() - since));
    const v = lookup(h, key, o, seen);
    if (v !== undefined && !seen.stale) return v;
    if (v !== undefined && !h.has(lease)) return v; // a stale value, no refresh running
  }
}

// A stale hit: refresh in the background if nobody else is.
function refresh(cache, h, key, loader, o) {
  const lease = LEASE_PREFIX + key;
  const token = newToken();
  if (!h.set(lease, token, C.T_STRING, o.lockTimeout, C.NX)) return;
  underLease(cache, h, key, async (k) => store(cache, k, await loader(k), o), o, lease, token)
    .catch(() => { /* the stale value stays until it expires; the next stale read tries again */ });
}

function getOrSet(cache, h, inflight, key, loader, options) {
  try {
    if (typeof key !== 'string') throw keyTypeError(key);
    if (typeof loader !== 'function') {
      throw typeError(`getOrSet(key, loader): loader must be a function, got ${describe(loader)}`);
    }
    if (Buffer.byteLength(key) + LEASE_PREFIX.length > C.KEY_MAX) {
      throw rangeError(`getOrSet keys are at most ${C.KEY_MAX - LEASE_PREFIX.length} bytes ` +
        `(the lease key adds ${LEASE_PREFIX.length})`);
    }
    const o = parse(options);
    const seen = { stale: false };
    const v = lookup(h, key, o, seen);
    if (v !== undefined) {
      if (seen.stale && !inflight.has(key)) refresh(cache, h, key, loader, o);
      return Promise.resolve(v);
    }
    let p = inflight.get(key);
    if (!p) {
      p = load(cache, h, key, loader, o).finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    return p;
  } catch (err) {
    return Promise.reject(err);
  }
}

module.exports = { getOrSet, LEASE_PREFIX, pollDelay, newToken };
