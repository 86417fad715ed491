// Type definitions for kvshm/keyv: a Keyv 5 storage adapter over a kvshm
// cache, so Keyv, cache-manager and cacheable share one cache between every
// process on the host.
//
//   import { Keyv } from 'keyv';
//   import KeyvKvshm, { createKeyv } from 'kvshm/keyv';
//   const keyv = new Keyv({ store: new KeyvKvshm('app', { memory: '256mb' }) });
//   const fast = createKeyv('app', { memory: '256mb' }, { namespace: 'users' });

/// <reference types="node" />
import { EventEmitter } from 'events';
import type { Keyv, KeyvOptions } from 'keyv';
import type { Cache, OpenOptions, Value } from './index';

declare namespace KeyvKvshm {
  /** The third argument of the {@link KeyvKvshm} constructor. */
  export interface StoreOptions {
    /**
     * Store each value as kvshm's own type (string, number, boolean,
     * bigint, Buffer, Uint8Array, JSON) and its expiry as kvshm's TTL,
     * instead of the string Keyv serializes.  Its Keyv must then have
     * serialize and deserialize turned off ({@link createKeyv} does both).
     * Objects go through JSON, so a Buffer inside an object comes back as
     * `{ type: 'Buffer', data: [...] }`; an undefined value removes the key.
     * Default: false.
     */
    native?: boolean;
    /**
     * Reject as well as emit 'error' when kvshm fails.  Default: false
     * (emit, and resolve to undefined / false, as @keyv/redis does).
     */
    throwOnErrors?: boolean;
  }

  /** What Keyv hands a native store and gets back from it. */
  export interface Envelope<T = Value> {
    value: T;
    /** When it expires, ms since the epoch; undefined if never. */
    expires: number | undefined;
  }

  /** The store's opts, as Keyv reads them. */
  export interface Opts {
    /**
     * 'redis': Keyv 5 offers iterator() only to stores of its own
     * adapters' dialects, and this store's iterator keeps @keyv/redis's
     * contract.
     */
    dialect: 'redis';
    name: string;
    native: boolean;
    throwOnErrors: boolean;
  }

  /**
   * A Keyv over a native {@link KeyvKvshm} (serialize and deserialize off).
   * keyvOptions are Keyv's, except store, serialize, deserialize and
   * compression.
   * @throws TypeError for one of those options.
   */
  export function createKeyv<T = any>(
    name: string,
    openOptions?: OpenOptions,
    keyvOptions?: Omit<KeyvOptions, 'store' | 'serialize' | 'deserialize' | 'compression'>,
  ): Keyv<T>;

  export { KeyvKvshm_ as KeyvKvshm, KeyvKvshm_ as default };
}

/**
 * A Keyv storage adapter over the kvshm cache `name`.  Keyv prefixes keys
 * with its namespace; clear() and iterator() cover that namespace's keys
 * (the whole cache when Keyv has none).  Errors are emitted as 'error'
 * (Keyv forwards them); a value too large for the cache makes set() resolve
 * false and emit a RangeError with code 'ETOOBIG'.
 */
declare class KeyvKvshm extends EventEmitter {
  /**
   * @param name the kvshm cache; stores over one name in a process share
   *   one native handle.
   * @param openOptions kvshm's open() options.  Options that differ from
   *   those the handle was opened with throw kvshm's KvshmError 'ECONFIG'
   *   when the cache refuses them.
   * @throws TypeError, RangeError, KvshmError as open() does.
   */
  constructor(name: string, openOptions?: OpenOptions, options?: KeyvKvshm.StoreOptions);
  /** Set by Keyv. */
  namespace: string | undefined;
  readonly opts: KeyvKvshm.Opts;
  /** The cache's name. */
  readonly name: string;
  /** Whether values are stored natively. */
  readonly native: boolean;
  /**
   * The kvshm cache under the store, shared with the other stores over
   * its name in this process: disconnect() the store rather than close it.
   * @throws KvshmError 'ECLOSED' after disconnect().
   */
  readonly cache: Cache;

  /** A serialized string, or with native: true an envelope; undefined if absent. */
  get<T = Value>(key: string): Promise<string | KeyvKvshm.Envelope<T> | undefined>;
  getMany<T = Value>(keys: string[]): Promise<Array<string | KeyvKvshm.Envelope<T> | undefined>>;
  /**
   * value: what Keyv passes (a serialized string, or with native: true an
   * envelope); ttl in ms.  Resolves false when kvshm refuses it (emitted).
   */
  set(key: string, value: string | KeyvKvshm.Envelope<unknown>, ttl?: number): Promise<boolean>;
  /** One result per entry: false where kvshm refused it (emitted). */
  setMany(entries: Array<{ key: string; value: string | KeyvKvshm.Envelope<unknown>; ttl?: number }>): Promise<boolean[]>;
  delete(key: string): Promise<boolean>;
  /** True if any key was deleted. */
  deleteMany(keys: string[]): Promise<boolean>;
  has(key: string): Promise<boolean>;
  hasMany(keys: string[]): Promise<boolean[]>;
  /** Remove the namespace's keys from both tiers, for every process. */
  clear(): Promise<void>;
  /** [key, raw] of the namespace's keys, the key as stored (prefixed). */
  iterator<T = Value>(namespace?: string): AsyncGenerator<[string, string | KeyvKvshm.Envelope<T>], void>;
  /** Release the shared handle; the last store over a name closes it. */
  disconnect(): Promise<void>;
}

declare const KeyvKvshm_: typeof KeyvKvshm;
type KeyvKvshm_ = KeyvKvshm;

export = KeyvKvshm;
