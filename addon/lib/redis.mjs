// redis.mjs - ESM entry of kvshm/redis.
import near from './redis.js';

export const { createNearCache, NearCache } = near;
export default near;
