// redis-example.mts - kvshm/redis from ESM (redis-example.ts uses every
// method and option); 95.types-tsc compiles it.
import { createNearCache } from 'kvshm/redis';
import type { NearCache, NearStats } from 'kvshm/redis';

const near: NearCache = createNearCache({ name: 'users', redis: 'redis://127.0.0.1:6379', prefixes: ['user:'] });
const v: string | undefined = await near.get('user:1');
const s: NearStats = near.stats();
// @ts-expect-error get takes a string key
await near.get(1);
console.log(v, s.nearHits);
await near.close();
