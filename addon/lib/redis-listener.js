// redis-listener.js - the one process per host and near cache that holds
// Redis's invalidation subscription and applies it to the shared memory
// (libshm/near.c says the protocol; redis.js elects it).
//
// A listener that cannot stay subscribed resubscribes after a growing
// pause (#fail); when ioredis gives up reconnecting ('end'), it gives the
// role up (redis.js) so that another process of the host may try.
//
// One connection does everything, over RESP2: CLIENT TRACKING ON BCAST
// PREFIX ... REDIRECT <its own id>, then SUBSCRIBE __redis__:invalidate.
// Redis then pushes, on that connection, the name of every key of the
// prefixes that any client writes, expires or evicts (null for FLUSHALL).
// Each (re)subscription flushes the near cache first thing after SUBSCRIBE
// returns: invalidations sent while nobody listened are lost, so no copy
// older than the subscription may stay.  Then, every syncInterval, a PING
// on that connection: its reply comes after every invalidation Redis
// pushed before it, so when it arrives the time it was sent is a time up
// to which the cache is in sync (nearSynced).  Gets serve memory only while
// that time is less than maxLag old.
//
// Probes measure the delay from a write on one host to its invalidation on
// another: every probeInterval the listener writes PROBE_PREFIX + its id =
// its wall clock in microseconds (PX PROBE_TTL); a listener that gets
// another's probe invalidated reads it and records now - then.  Hosts'
// clocks must agree (NTP) for the figure to mean anything.
'use strict';
const binding = require('./binding');

const C = binding.constants;
const CHANNEL = '__redis__:invalidate';
const PROBE_PREFIX = '__kvshm:near:probe:';
const PROBE_TTL = 60_000;
const PING_TIMEOUT = 5_000; // no PONG for this long: reconnect

const wallMicros = () => (performance.timeOrigin + performance.now()) * 1000;

class Listener {
  #near; // { h, Redis, redisOptions, prefixes, syncInterval, data, id, onError }
  #conn = null;
  #gen = 0; // connection generation: a setup or ping of an older one is void
  #subscribed = 0; // the generation that is subscribed, 0 if none
  #pingSince = 0; // clockMs() of the ping in flight, 0 if none
  #syncTimer = null;
  #probeTimer = null;
  #closed = false;
  #failures = 0; // setups failed in a row
  #retryTimer = null;

  constructor(near) {
    this.#near = near;
  }

  /** Tracking arguments: PREFIX p for each prefix, and the probes'. */
  static trackingArgs(prefixes) {
    if (prefixes.length === 0) return []; // every key (probes included)
    const args = [];
    const covered = prefixes.some((p) => PROBE_PREFIX.startsWith(p));
    for (const p of [...prefixes, ...(covered ? [] : [PROBE_PREFIX])]) args.push('PREFIX', p);
    return args;
  }

  start() {
    const n = this.#near;
    const conn = new n.Redis({
      ...n.redisOptions,
      lazyConnect: false,
      autoResubscribe: false, // it must track before it subscribes: #setup
      enableOfflineQueue: false,
      maxRetriesPerRequest: null,
      connectionName: `kvshm-near-listener:${n.id}`,
    });
    this.#conn = conn;
    conn.on('ready', () => this.#setup());
    conn.on('close', () => this.#lost());
    conn.on('end', () => { if (!this.#closed) n.onEnd(); }); // no more reconnections
    conn.on('error', () => { /* 'close' follows; ioredis reconnects */ });
    conn.on('messageBuffer', (channel, msg) => this.#message(channel, msg));
    this.#syncTimer = setInterval(() => this.#sync(), n.syncInterval);
    this.#syncTimer.unref();
    if (n.probeInterval > 0) {
      this.#probeTimer = setInterval(() => this.#probe(), n.probeInterval);
      this.#probeTimer.unref();
    }
  }

  async #setup() {
    if (this.#closed) return; // a connection made as we closed
    const n = this.#near;
    const gen = ++this.#gen;
    this.#subscribed = 0;
    this.#pingSince = 0;
    n.h.nearSynced(0);
    n.h.nearConfigure(n.config); // before it is ever in sync (near.c)
    try {
      const conn = this.#conn;
      const id = await conn.client('ID');
      await conn.client('TRACKING', 'ON', 'REDIRECT', id, 'BCAST', ...Listener.trackingArgs(n.prefixes));
      await conn.subscribe(CHANNEL);
      if (gen !== this.#gen || this.#closed) return;
      n.h.clear(); // see the top of this file
      n.h.nearCount(C.NEAR_FLUSHES, 1);
      this.#subscribed = gen;
      this.#failures = 0;
      this.#sync();
    } catch (err) {
      if (gen !== this.#gen || this.#closed) return;
      this.#fail(err);
    }
  }

  // Something went wrong that invalidations may have been lost to (a
  // refused command, an exception applying one): out of sync at once, and
  // subscribe again on a new connection (which flushes), after a pause
  // that doubles with each failure in a row, up to 5 s.
  #fail(err) {
    const n = this.#near;
    n.onError(err);
    this.#gen++;
    this.#subscribed = 0;
    if (!this.#closed) n.h.nearSynced(0);
    const pause = Math.min(5000, 50 * 2 ** Math.min(this.#failures++, 7));
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      if (!this.#closed) this.#conn.disconnect(true);
    }, pause);
    this.#retryTimer.unref();
  }

  #lost() {
    this.#gen++;
    this.#subscribed = 0;
    this.#pingSince = 0;
    if (!this.#closed) this.#near.h.nearSynced(0);
  }

  #sync() {
    if (!this.#subscribed || this.#closed) return;
    const now = binding.clockMs();
    if (this.#pingSince) {
      if (now - this.#pingSince > PING_TIMEOUT) this.#conn.disconnect(true);
      return; // one in flight at a time
    }
    const gen = this.#gen;
    this.#pingSince = now;
    this.#conn.ping().then(() => {
      if (gen !== this.#gen || this.#closed) return;
      this.#pingSince = 0;
      this.#near.h.nearSynced(now);
    }, () => { /* the connection went: #lost */ });
  }

  #message(channel, msg) {
    if (this.#closed || channel.toString() !== CHANNEL) return;
    try {
      this.#apply(msg);
    } catch (err) { // not applied: in sync no more
      this.#fail(err);
    }
  }

  #apply(msg) {
    const { h } = this.#near;
    if (msg === null) { // FLUSHALL, FLUSHDB
      h.clear();
      h.nearCount(C.NEAR_FLUSHES, 1);
      return;
    }
    const at = wallMicros();
    const keys = Array.isArray(msg) ? msg : [msg];
    let n = 0;
    for (const k of keys) {
      const key = k.toString();
      if (key.startsWith(PROBE_PREFIX)) { // never cached (redis.js)
        if (key !== this.#probeKey()) this.#probeSeen(key, at);
        continue;
      }
      if (k.length > C.KEY_MAX) continue; // too long to be cached (redis.js)
      h.invalidate(key);
      n++;
    }
    if (n) h.nearCount(C.NEAR_INVALID, n);
  }

  #probeKey() { return PROBE_PREFIX + this.#near.id; }

  #probe() {
    if (!this.#subscribed || this.#closed) return;
    this.#near.data.set(this.#probeKey(), String(Math.round(wallMicros())), 'PX', PROBE_TTL)
      .catch(() => { /* Redis is away: the next probe */ });
  }

  #probeSeen(key, at) {
    this.#near.data.get(key).then((v) => {
      const sent = Number(v);
      if (v === null || !Number.isFinite(sent) || this.#closed) return;
      this.#near.h.nearDelay(Math.max(0, at - sent));
    }, () => {});
  }

  /** Stop listening (the caller then gives the role up). */
  close() {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#syncTimer);
    clearInterval(this.#probeTimer);
    this.#near.h.nearSynced(0);
    this.#conn.disconnect();
  }
}

module.exports = { Listener, PROBE_PREFIX };
