// redis-example.mts - uses every method and option of kvshm/redis's types
// (ESM); 95.types-tsc compiles it.  Lines marked @ts-expect-error
// must fail.
import { createNearCache, NearCache } from 'kvshm/redis';
import type { NearCacheOptions, NearStats } from 'kvshm/redis';

const options: NearCacheOptions = {
  name: 'users',
  memory: '64mb',
  redis: { host: '127.0.0.1', port: 6379 },
  prefixes: ['user:', 'session:'],
  ttl: 60_000,
  maxLag: 500,
  syncInterval: 100,
  probeInterval: 1000,
};
const near: NearCache = createNearCache(options);
createNearCache({ name: 'x', redis: 'redis://127.0.0.1:6379/0' });
// @ts-expect-error name is required
createNearCache({ redis: {} });

async function use(): Promise<void> {
  const v: string | undefined = await near.get('user:1');
  await near.set('user:1', 'x', { ttl: 1000 });
  await near.set('user:2', Buffer.from('y'));
  await near.set('user:3', 3);
  // @ts-expect-error objects must be serialised first
  await near.set('user:4', { a: 1 });
  const had: boolean = await near.delete('user:1');
  const g: string | undefined = await near.getOrSet('user:5', async (k) => `loaded ${k}`, { ttl: 1000, lockTimeout: 5000 });
  const s: NearStats = near.stats();
  const n: number = s.nearHits + s.redisReads + s.invalidations + s.flushes + s.fillsRefused +
    s.listenerStarts + s.listenerPid + s.lag + s.delaySamples + s.delayP50 + s.delayP99 + s.delayMax;
  const alive: boolean = s.listenerAlive && near.isListener && !near.closed;
  await near.redis.ping();
  near.cache.peek('user:1');
  console.log(v, had, g, n, alive, near.name);
  await near.close();
}
void use();
