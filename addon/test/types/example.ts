// example.ts - uses every method and option of kvshm's types; 95.types-tsc
// compiles it with tsc --noEmit.  Lines marked @ts-expect-error must fail.
import { open, destroy, parseSize, Cache, KvshmError, constants, version } from 'kvshm';
import type { OpenOptions, SetOptions, Stats, StoreStats, Value, IterOptions, Size } from 'kvshm';
import * as facade from 'kvshm/promise';
import type { StartOptions } from 'kvshm/promise';

const size: Size = '256mb';
const options: OpenOptions = {
  memory: size,
  slotSize: 256,
  stripes: 8,
  defaultTtl: 60_000,
  mode: 0o600,
  lockTimeout: 5000,
  sqlite: '/tmp/example.db',
  persistent: true,
  flushDelay: 500,
  readonly: false,
  create: true,
  reaper: true,
};
const cache: Cache = open('example', options);
const same: Cache = new Cache('example', { memory: parseSize('256mb') });

const setOptions: SetOptions = { ttl: 1000, nx: true, xx: false, keepTtl: false };
const stored: boolean = cache.set('s', 'text', setOptions);
cache.set('n', 42);
cache.set('b', Buffer.from('x'));
cache.set('u', new Uint8Array(2));
cache.set('t', true);
cache.set('big', 10n);
cache.set('o', { a: [1, 2, { b: null }] });
cache.set('null', null);
// @ts-expect-error undefined is not a value
cache.set('bad', undefined);
// @ts-expect-error keys are strings
cache.get(1);
// @ts-expect-error ttl is a number of ms
cache.set('k', 'v', { ttl: '1s' });

const v: Value | undefined = cache.get('s');
const typed: { a: number[] } | undefined = cache.get<{ a: number[] }>('o');
const present: boolean = cache.has('s');
const removed: boolean = cache.delete('s');
const n1: number = cache.incr('counter');
const n2: number = cache.incr('counter', 5);
const n3: number = cache.decr('counter');
const n4: number = cache.decr('counter', 2);
const count: number = cache.size;
const name: string = cache.name;
const file: string | null = cache.sqlitePath;
const closed: boolean = cache.closed;

const iterOptions: IterOptions = { prefix: 'user:' };
for (const key of cache.keys(iterOptions)) key.toUpperCase();
for (const value of cache.values()) void value;
for (const [key, value] of cache.entries({ prefix: 'a' })) void [key.length, value];
for (const [key, value] of cache) void [key.length, value];
cache.forEach((value, key, c) => void [value, key.length, c.size]);

const stats: Stats = cache.stats();
const hits: number = stats.hits + stats.misses + stats.evictions + stats.maxValue;
const store: StoreStats = cache.storeStats();
const rows: number = store.rows + store.fileBytes;
cache.flush();
cache.clear();
cache.close();
const existed: boolean = same.destroy();
const gone: boolean = destroy('example');

try {
  open('x', { memory: '1kb' });
} catch (err) {
  if (err instanceof KvshmError) {
    const code: string = err.code;
    const status: number = err.status;
    const option: string | undefined = err.option;
    void [code, status, option];
  }
}
const limits: number = constants.KEY_MAX + constants.NAME_MAX + constants.DEFAULT_MEMORY + constants.errors.ECONFIG;
const ver: string = version + constants.VERSION;

async function legacy(): Promise<void> {
  const start: StartOptions = { name: 'example', memory: '64mb' };
  await facade.start();
  await facade.start(start);
  const i: 'I' = await facade.insert('k', 'v', 60);
  const i2: 'I' = await facade.insert('k', { any: 'json' });
  const got: Value | '' = await facade.get('k');
  const r: 'R' = await facade.remove('k');
  await facade.close();
  void [i, i2, got, r, facade.DEFAULT_NAME];
}

void [stored, v, typed, present, removed, n1, n2, n3, n4, count, name, file, closed, hits, rows, existed, gone, limits, ver, legacy];

// Multi-key calls, prefix clears, peeks and getOrSet (issue 11).
{
  const many = open('types-many');
  many.setMany([['a:1', 1], ['a:2', { n: 2 }, { ttl: 1000 }]], { ttl: 60_000 });
  const vals: (Value | undefined)[] = many.getMany(['a:1', 'a:2']);
  const gone: boolean[] = many.deleteMany(new Set(['a:1']));
  many.clear({ prefix: 'a:' });
  const left: number | undefined = many.ttl('a:2');
  const at: number | undefined = many.expiresAt('a:2');
  const peeked: Value | undefined = many.peek('a:2');
  const loaded: Promise<{ id: number }> = many.getOrSet('user:1', async () => ({ id: 1 }),
    { ttl: 60_000, staleWhileRevalidate: 5_000, lockTimeout: 2_000 });
  void [vals, gone, left, at, peeked, loaded];
}
