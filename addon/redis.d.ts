// Type definitions for kvshm/redis: a near cache in front of Redis that
// every process of a host shares, kept coherent by Redis's client-side
// caching (CLIENT TRACKING, broadcasting mode).  Needs ioredis installed.
//
//   import { createNearCache } from 'kvshm/redis';
//   const near = createNearCache({ name: 'users', memory: '256mb',
//     redis: { host: 'redis.internal' }, prefixes: ['user:'] });
//   await near.get('user:1');

import type { Redis, RedisOptions } from 'ioredis';
import type { Cache, OpenOptions } from './index';

/** createNearCache's options: open()'s for the shared-memory cache, and: */
export interface NearCacheOptions extends OpenOptions {
  /** The shared-memory cache's name: one per host and near cache. */
  name: string;
  /** ioredis connection options, or a redis:// or rediss:// URL. */
  redis?: RedisOptions | string;
  /**
   * Only keys starting with one of these are cached (and tracked: Redis
   * sends invalidations for them alone).  They may not overlap.  Default:
   * [] = every key.
   */
  prefixes?: string[];
  /** Longest life of a copy on the host, ms; 0 (default): until
   * invalidated, evicted, or the key's own TTL in Redis. */
  ttl?: number;
  /**
   * The staleness bound, ms (default 500): memory is served only while the
   * host's listener proved, less than this long ago, that it had applied
   * every invalidation Redis sent.  If it dies, stalls or loses Redis, the
   * host reads Redis from maxLag on.  Every process of a host must use the
   * same prefixes and redis.db (others read Redis and cache nothing).
   */
  maxLag?: number;
  /** How often the listener proves it (PING) and processes try to become
   * the listener, ms.  Default maxLag / 5. */
  syncInterval?: number;
  /** How often the listener writes a probe key to measure the delay from a
   * write on one host to its invalidation on another, ms; 0: never.
   * Default 1000. */
  probeInterval?: number;
}

export interface NearSetOptions {
  /** Milliseconds to live in Redis (SET ... PX); 0 or absent: no TTL. */
  ttl?: number;
}

export interface NearGetOrSetOptions extends NearSetOptions {
  /** How long a loader may run before another process of the host may
   * take over, ms.  Default 10000. */
  lockTimeout?: number;
}

/** The host's figures, shared by every process of the near cache. */
export interface NearStats {
  /** Gets served from the host's memory. */
  nearHits: number;
  /** Gets that read Redis. */
  redisReads: number;
  /** Keys invalidated by Redis (writes from any host, expiries, evictions). */
  invalidations: number;
  /** Whole flushes: each (re)subscription, and Redis's FLUSHALL. */
  flushes: number;
  /** Fills not stored: the key was invalidated while it was read. */
  fillsRefused: number;
  /** Listeners elected so far. */
  listenerStarts: number;
  /** The listener's pid, 0 if none. */
  listenerPid: number;
  listenerAlive: boolean;
  /** Milliseconds since the listener was last in sync; -1: not in sync. */
  lag: number;
  /** Delay samples: probes of other hosts seen here. */
  delaySamples: number;
  /** Write on another host to invalidation applied here, ms. */
  delayP50: number;
  delayP99: number;
  delayMax: number;
}

export class NearCache {
  /** The shared-memory cache's name. */
  readonly name: string;
  /** The shared-memory cache (read it; writing it bypasses Redis). */
  readonly cache: Cache;
  /** This process's ioredis client. */
  readonly redis: Redis;
  /** Does this process hold the host's invalidation subscription? */
  readonly isListener: boolean;
  readonly closed: boolean;
  /** The value (a string), from memory if the host has it, else Redis;
   * undefined when Redis has none. */
  get(key: string): Promise<string | undefined>;
  /** Write Redis, then drop the host's copy. */
  set(key: string, value: string | Buffer | number, options?: NearSetOptions): Promise<void>;
  /** Delete from Redis, then from the host; true if Redis had it. */
  delete(key: string): Promise<boolean>;
  /** The value; when Redis has none, loader runs once on the host and its
   * value is written to Redis.  undefined from the loader stores nothing. */
  getOrSet(
    key: string,
    loader: (key: string) => string | Buffer | number | undefined | Promise<string | Buffer | number | undefined>,
    options?: NearGetOrSetOptions,
  ): Promise<string | undefined>;
  stats(): NearStats;
  /** Give the listener role up, close the connection and the cache handle. */
  close(): Promise<void>;
}

export function createNearCache(options: NearCacheOptions): NearCache;
