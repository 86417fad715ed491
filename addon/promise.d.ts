// Type definitions for kvshm/promise: the Promise facade with the API and
// return values of the first design (a cache process reached over a pipe),
// so its users switch by changing one import.
//
//   import * as cache from 'kvshm/promise';
//   await cache.start();
//   await cache.insert('k', 'v', 60); // 'I'
//   await cache.get('k');             // 'v' ('' when missing or expired)
//   await cache.remove('k');          // 'R'
//   await cache.close();

import type { OpenOptions, Value } from './index';

/** start()'s options: open()'s, plus the cache's name. */
export interface StartOptions extends OpenOptions {
  /**
   * The cache to open.  Default: the KVSHM_NAME environment variable, else
   * 'default' (the segment /dev/shm/kvshm.default).
   */
  name?: string;
}

/**
 * Open the cache.  With no options: the cache named by KVSHM_NAME or
 * 'default', memory-only, 32 MiB when it is created.  Calling start()
 * again closes the cache opened before.  Resolves to undefined.
 */
export function start(options?: StartOptions): Promise<void>;

/**
 * Store value under key; ttlSeconds 0 or omitted means it never expires
 * (fractions of a second are rounded up to the millisecond).
 * Resolves to "I".  Rejects with a KvshmError with code 'ECLOSED' before
 * start().
 */
export function insert(key: string, value: Value, ttlSeconds?: number): Promise<'I'>;

/**
 * The value stored under key, as the type it was inserted as, or "" when
 * the key is missing or expired.
 */
export function get<T = Value>(key: string): Promise<T | ''>;

/** Remove key, whether or not it was there.  Resolves to "R". */
export function remove(key: string): Promise<'R'>;

/**
 * Close the cache in this process (it stays in shared memory for the
 * others).  Resolves to undefined; closing twice is harmless.
 */
export function close(): Promise<void>;

/** The name start() uses when neither options.name nor KVSHM_NAME is set. */
export const DEFAULT_NAME: string;
