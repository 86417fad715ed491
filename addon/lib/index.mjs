// index.mjs - ESM entry: the same objects as the CommonJS one.
import kvshm from './index.js';

export const { open, destroy, Cache, KvshmError, constants, parseSize, version } = kvshm;
export default kvshm;
