// Type definitions for kvshm: a key-value cache in one POSIX shared-memory
// segment that every process (cluster workers, worker_threads, separate
// services) on one host opens and uses directly, synchronously.
//
//   import { open } from 'kvshm';
//   const cache = open('sessions', { memory: '256mb', defaultTtl: 60_000 });
//   cache.set('user:1', { name: 'Ada' });
//   cache.get('user:1'); // { name: 'Ada' }

/// <reference types="node" />

/**
 * A value the cache stores.  Each comes back from `get` as the type it went
 * in as: strings (full UTF-8), numbers (including NaN, Infinity and -0),
 * booleans, bigints, Buffers, Uint8Arrays, and anything else JSON can
 * serialise (objects, arrays, null), which comes back as
 * `JSON.parse(JSON.stringify(value))`.
 */
export type Value =
  | string
  | number
  | boolean
  | bigint
  | null
  | Buffer
  | Uint8Array
  | JsonValue[]
  | { [key: string]: JsonValue | undefined }
  | object;

/** What JSON can carry. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

/**
 * A size in bytes: a number, or a string of a number and a binary unit:
 * `'256mb'`, `'1.5 GiB'`, `'64kb'` (b, kb, mb, gb, tb; 1kb = 1024 bytes).
 */
export type Size = number | string;

/**
 * Options of {@link open}.  Every option is optional.  The first process to
 * open a name creates the cache with these settings (or the defaults); the
 * others attach to it, and an option they pass that differs from the
 * cache's throws a {@link KvshmError} with code `'ECONFIG'` naming the
 * option.  Omit an option to accept whatever the cache has.
 */
export interface OpenOptions {
  /**
   * Size of the shared-memory segment, from 1mb to 2^53-1 bytes.
   * Default: 32 MiB (fits Docker's 64 MB /dev/shm).  The segment is reserved
   * up front, so a full /dev/shm is an `'ENOSHM'` error at open, never a
   * crash later.
   */
  memory?: Size;
  /**
   * Bytes per slot, a multiple of 8 from 64 to 65536.  An entry takes one
   * slot, or a chain of slots when its key and value do not fit in one (40
   * bytes of each slot are header).  Default: 160 (a 16-byte key and a
   * 100-byte value in one slot).
   */
  slotSize?: number;
  /**
   * Number of lock stripes, a power of two from 1 to 1024.  Writers to
   * different stripes never wait for each other.  Default: one per 4 MiB of
   * memory, at most 64.
   */
  stripes?: number;
  /**
   * Time to live, in milliseconds, of entries set without a `ttl`.
   * 0 (the default) means they never expire.
   */
  defaultTtl?: number;
  /**
   * File mode of the segment in /dev/shm, the permission bits only (e.g.
   * `0o600`, or the string `'0640'`).  Default: `0o600` (this user only).
   * The SQLite file, its -wal and -shm and the reaper's log are created
   * with the segment's mode too, whatever the umask.
   */
  mode?: number | string;
  /**
   * How long, in milliseconds, this process waits for a lock held by
   * another before failing with `'ETIMEDOUT'` (a per-process setting, never
   * compared with the cache's).  Default: 10000.
   */
  lockTimeout?: number;
  /**
   * Path of a SQLite file that backs the cache: entries evicted from shared
   * memory are written there and `get` still finds them.  Relative paths
   * are resolved against the current directory.  Default: none (memory
   * only; eviction drops the least frequently used entries).  A symlink
   * there, or a file of another user, is refused (`'EOWNER'`); a file
   * damaged while no cache used it is refused by the next cache made over
   * it (`'EBADDB'`), and left untouched.
   */
  sqlite?: string;
  /**
   * With `sqlite`: write every change to the file within `flushDelay` ms,
   * so that a machine crash loses at most that much.  Default: false (only
   * evicted entries are written).
   */
  persistent?: boolean;
  /**
   * With `sqlite`: the longest a change waits to reach the file in
   * persistent mode, in milliseconds, from 1 to 3600000.  Default: 1000.
   */
  flushDelay?: number;
  /**
   * Attach read-only: `get`, `has`, iteration and stats work, writes throw
   * `'ERDONLY'`.  Never creates the cache.  It still takes the locks inside
   * the segment, so it needs read and write permission on it (`'EACCES'`
   * otherwise).  Default: false.
   */
  readonly?: boolean;
  /**
   * Also accept a segment, SQLite file or reaper log owned by this uid.
   * Files owned by another user are refused with `'EOWNER'` (that user
   * could read and change the cache).  Default: only this process's uid.
   */
  trustUid?: number;
  /**
   * Also accept such files whose group is this gid (share a cache between
   * users through a group and `mode: 0o660`).  Default: none.
   */
  trustGid?: number;
  /**
   * false: only attach; if the cache does not exist, throw a
   * {@link KvshmError} with code `'ENOENT'`.  Default: true.
   */
  create?: boolean;
  /**
   * false: do not start the kvshm-reaper process that expires entries and
   * writes to SQLite in the background (for tools and tests).  Default: true.
   */
  reaper?: boolean;
}

/** Options of {@link Cache.set}. */
export interface SetOptions {
  /**
   * Time to live in milliseconds; 0 means the entry never expires.
   * Default: the cache's `defaultTtl`.
   */
  ttl?: number;
  /** Only store if the key is absent (set returns false if it is present). */
  nx?: boolean;
  /** Only store if the key is present (set returns false if it is absent). */
  xx?: boolean;
  /** When replacing an entry, keep its expiry instead of setting a new one. */
  keepTtl?: boolean;
}

/** Options of {@link Cache.keys}, {@link Cache.values}, {@link Cache.entries}. */
export interface IterOptions {
  /** Only the keys that start with this string. */
  prefix?: string;
}

/** The figures of {@link Cache.stats}: one picture of the whole cache. */
export interface Stats {
  /** Live entries in shared memory. */
  entries: number;
  /** Key and value bytes of those entries. */
  bytes: number;
  /** Gets that found their key, since the cache was created (all processes). */
  hits: number;
  /** Gets that did not find their key in shared memory. */
  misses: number;
  /** Of those misses, the ones found in the SQLite file (and brought back). */
  storeHits: number;
  /** Sets and incr/decr that stored a value. */
  sets: number;
  /** Deletes that removed a key. */
  deletes: number;
  /** Entries removed to make room (least frequently used first). */
  evictions: number;
  /** Entries removed because their TTL passed. */
  expirations: number;
  /** Entries dropped because they failed their checksum. */
  corrupt: number;
  /** Stripes repaired after a process died holding their lock. */
  repairs: number;
  /** Slots in use. */
  slotsUsed: number;
  /** Slots free. */
  slotsFree: number;
  /** Entries not yet written to SQLite. */
  dirty: number;
  /** The oldest unwritten change is at most this old, in ms. */
  dirtyAge: number;
  /** Write-backs a writer ran itself (its stripe was full of unwritten
   * entries, or persistent mode's bound was near). */
  spills: number;
  /** Deleted keys waiting to be removed from SQLite. */
  tombstones: number;
  /** Segment size in bytes. */
  memory: number;
  /** Bytes per slot. */
  slotSize: number;
  /** Lock stripes. */
  stripes: number;
  /** Slots in each stripe. */
  slotsPerStripe: number;
  /** TTL of sets without one, in ms (0 = never). */
  defaultTtl: number;
  /** 1 in persistent mode, else 0. */
  persistent: number;
  /** Persistent mode's bound, in ms. */
  flushDelay: number;
  /** Longest key, in bytes of UTF-8. */
  maxKey: number;
  /** Largest value with a 16-byte key, in bytes. */
  maxValue: number;
  /** The segment's layout version. */
  layoutVersion: number;
  /** When the cache was created, in ms since the epoch. */
  createdAt: number;
  /** The kvshm-reaper's pid as seen in its own PID namespace, 0 if none. */
  reaperPid: number;
  /** Whether a reaper runs now (from its lock, not its pid: right across
   * containers that share /dev/shm). */
  reaperAlive: boolean;
  /** How many times the cache was cleared. */
  clears: number;
  /** Its last heartbeat, in ms since the epoch (0: never). */
  reaperHeartbeat: number;
  /** Times a reaper was started for this cache. */
  reaperStarts: number;
}

/** The figures of {@link Cache.storeStats}: the SQLite tier. */
export interface StoreStats {
  /** Entries stored in SQLite. */
  rows: number;
  /** Key and value bytes of those rows. */
  bytes: number;
  /** Size of the database file, without its WAL. */
  fileBytes: number;
  /** Rows whose TTL passed, not yet removed. */
  expired: number;
}

/**
 * One open cache.  Synchronous and Map-like; every call works directly on
 * shared memory, so a value set in one process is seen by `get` in every
 * other at once.  Keys are strings of at most 4096 bytes of UTF-8 (lone
 * surrogates are stored as U+FFFD).
 */
/** Options of {@link Cache.getOrSet}. */
export interface GetOrSetOptions {
  /** Time to live of a loaded value, ms (0: never expires; default: the cache's). */
  ttl?: number;
  /**
   * For this many ms after `ttl`, a read returns the stale value at once
   * while one caller on the host refreshes it in the background (needs ttl).
   */
  staleWhileRevalidate?: number;
  /**
   * How long a loader may hold the lease, ms (default 10000): a loader
   * killed mid-load is taken over after this.  Make it longer than the
   * slowest load, or two loads may overlap.
   */
  lockTimeout?: number;
}

export class Cache implements Iterable<[string, Value]> {
  /** Same as {@link open}. */
  constructor(name: string, options?: OpenOptions);
  /** The cache's name (its segment is /dev/shm/kvshm.<name>). */
  readonly name: string;
  /** Absolute path of the SQLite file, or null when memory-only. */
  readonly sqlitePath: string | null;
  /** True after {@link Cache.close} or {@link Cache.destroy}. */
  readonly closed: boolean;
  /**
   * Number of live entries in shared memory (entries whose TTL passed but
   * that no call has removed yet are counted until they are).  A
   * SQLite-backed cache may hold more in its file: see storeStats().
   */
  readonly size: number;

  /**
   * The value stored under key, as the type it was stored as; undefined
   * when the key is absent or expired.
   */
  get<T = Value>(key: string): T | undefined;
  /**
   * Store value under key.  Returns true when stored, false when `nx` or
   * `xx` prevented it (unlike Map.set, which returns the map).
   * @throws TypeError for a value of another type (undefined, a function, a
   *   symbol, a typed array other than Uint8Array).
   * @throws RangeError (code 'ETOOBIG') for a value over the cache's limit.
   */
  set(key: string, value: Value, options?: SetOptions): boolean;
  /** Whether key is present and not expired. */
  has(key: string): boolean;
  /** Remove key.  Returns whether it was present. */
  delete(key: string): boolean;
  /**
   * Add delta (a safe integer, default 1) to the integer stored at key,
   * atomically across every process, and return the result.  A missing key
   * counts as 0 and is created as a number with the default TTL; an
   * existing entry keeps its type and expiry.
   * @throws KvshmError 'ENOTINT' when the value is not an integer,
   *   'EOVERFLOW' when the result leaves the signed 64-bit range.
   */
  incr(key: string, delta?: number): number;
  /** incr(key, -delta). */
  decr(key: string, delta?: number): number;
  /**
   * Remove every entry, or with `{ prefix }` every key that starts with it
   * (at most 256 bytes), from both tiers, as one atomic step for every
   * process: no key written before the call survives it; keys written after
   * it stay.
   */
  clear(options?: { prefix?: string }): void;
  /**
   * The values of keys, in order (undefined where absent), in one native
   * call: the keys of one lock stripe are read under one hold of its lock.
   */
  getMany(keys: readonly string[] | Iterable<string>): (Value | undefined)[];
  /**
   * Store every `[key, value]` or `[key, value, { ttl }]` in one native call;
   * `options.ttl` is the TTL of entries without their own.  The last of
   * several entries of one key wins.  A malformed argument is thrown
   * before anything is stored; otherwise every entry that can be stored
   * is, then the first failure is thrown (RangeError for a value over the
   * limit) with `failed`: the positions of the entries that were not.
   */
  setMany(entries: Iterable<readonly [string, Value] | readonly [string, Value, { ttl?: number }]>,
    options?: { ttl?: number }): void;
  /** Delete keys in one native call; true where a key was present. */
  deleteMany(keys: readonly string[] | Iterable<string>): boolean[];
  /**
   * The value of key without using it: no LFU touch (it does not become
   * harder to evict), no hit counted, not promoted from SQLite.
   */
  peek(key: string): Value | undefined;
  /** Milliseconds key has left: Infinity if it never expires, undefined if absent. */
  ttl(key: string): number | undefined;
  /** When key expires (ms since the epoch): Infinity if never, undefined if absent. */
  expiresAt(key: string): number | undefined;
  /**
   * The value of key, or on a miss the value of `loader(key)`, stored with
   * `ttl`.  Single flight across processes: when many processes of the
   * host miss one key at once, the loader runs once on the host (a lease in
   * the cache elects the caller), and the others wait for its value on
   * timers, never blocking the event loop.  A loader that throws lets the
   * lease go and its error rejects its caller's promise; a process killed
   * while loading loses the lease after `lockTimeout`, and another caller
   * takes over.  A loader returning undefined stores nothing.
   */
  getOrSet<T extends Value>(key: string, loader: (key: string) => T | Promise<T>,
    options?: GetOrSetOptions): Promise<T>;
  /**
   * The keys, stripe by stripe (not in insertion order), then, for a
   * SQLite-backed cache, the keys that are only in the SQLite file.  No lock
   * is held between steps: writing during the walk is allowed; entries
   * added or removed meanwhile may or may not be seen.
   */
  keys(options?: IterOptions): IterableIterator<string>;
  /** The values, in the order of {@link Cache.keys}. */
  values(options?: IterOptions): IterableIterator<Value>;
  /** [key, value] pairs, in the order of {@link Cache.keys}. */
  entries(options?: IterOptions): IterableIterator<[string, Value]>;
  /** Same as entries(). */
  [Symbol.iterator](): IterableIterator<[string, Value]>;
  /** Call callback(value, key, cache) for every entry, like Map.forEach. */
  forEach(callback: (value: Value, key: string, cache: this) => void, thisArg?: unknown): void;
  /** Figures of the whole cache (all processes). */
  stats(): Stats;
  /** Figures of the SQLite tier (all 0 for a memory-only cache). */
  storeStats(): StoreStats;
  /**
   * Write every unwritten change to SQLite now (nothing for a memory-only
   * cache).
   */
  flush(): void;
  /**
   * Unmap the cache from this process.  It stays in shared memory for the
   * others (and for the next open).  Idempotent; any other call afterwards
   * throws a KvshmError with code 'ECLOSED'.
   */
  close(): void;
  /**
   * close(), then destroy the cache: what is not yet in SQLite is written
   * there, and the segment is removed; the next open creates a new one
   * (over the same SQLite file, if any, which stays).  Processes that have
   * it open: a memory-only cache keeps working for them until they close
   * it; a SQLite-backed one throws KvshmError 'EDESTROYED' on every call
   * (reopen it).  Returns whether the segment existed.
   */
  destroy(): boolean;
}

/**
 * Open the cache called name, creating it if it does not exist.  The same
 * call works in the cluster primary, every worker and every worker_thread;
 * the first caller creates the segment, the others attach to it.
 * @param name 1 to 200 characters of A-Z a-z 0-9 . _ -
 * @throws TypeError for an option of the wrong type or an unknown option.
 * @throws RangeError for a size or time out of range (the message has the
 *   limits).
 * @throws KvshmError for anything the cache itself refuses, e.g. 'ECONFIG'
 *   (an option differs from the existing cache's; `.option` names it),
 *   'ENOSHM' (/dev/shm too small), 'EACCES'.
 */
export function open(name: string, options?: OpenOptions): Cache;

/**
 * Destroy the cache called name, as {@link Cache.destroy} does.  Returns
 * whether it existed.
 */
export function destroy(name: string): boolean;

/** Bytes from a {@link Size}, as open() reads the memory option. */
export function parseSize(size: Size): number;

/**
 * An error from the cache itself.  `code` is the error's name: 'ECONFIG',
 * 'ENOSHM', 'ETIMEDOUT', 'ENOTINT', 'EOVERFLOW', 'ERDONLY', 'ECLOSED',
 * 'ECORRUPT', 'ESQLITE', ... or a system one ('ENOENT', 'EACCES').
 */
export class KvshmError extends Error {
  constructor(message: string, code: string, status: number);
  /** The error's name, e.g. 'ECONFIG'. */
  readonly code: string;
  /** libshm's numeric status (negative; 0 for errors raised in JS). */
  readonly status: number;
  /** For 'ECONFIG': the open() option whose value differs. */
  readonly option?: string;
}

/** Limits and defaults, from the native library. */
export const constants: {
  /** Version of the library. */
  readonly VERSION: string;
  /** Default memory, in bytes. */
  readonly DEFAULT_MEMORY: number;
  /** Default slot size, in bytes. */
  readonly DEFAULT_SLOT_SIZE: number;
  /** Smallest slot size. */
  readonly MIN_SLOT_SIZE: number;
  /** Largest slot size. */
  readonly MAX_SLOT_SIZE: number;
  /** Most lock stripes. */
  readonly MAX_STRIPES: number;
  /** Longest key, in bytes of UTF-8. */
  readonly KEY_MAX: number;
  /** Longest cache name. */
  readonly NAME_MAX: number;
  /** Default lockTimeout, in ms. */
  readonly DEFAULT_LOCK_TIMEOUT: number;
  /** Default flushDelay, in ms. */
  readonly DEFAULT_FLUSH_DELAY: number;
  /** libshm's numeric status of each error code. */
  readonly errors: { readonly [code: string]: number };
};

/** Version of the library. */
export const version: string;
