// keyv.mjs - kvshm/keyv, ESM entry: the same KeyvKvshm class as the
// CommonJS entry, and a createKeyv() building ESM Keyv objects (keyv ships
// two builds, and an ESM program's Keyv, cacheable and cache-manager use
// the ESM one).  keyv is loaded here if the application has it, so that
// importing the store alone does not need it.
import store from './keyv-store.js';

let Keyv;
try {
  ({ Keyv } = await import('keyv'));
} catch (err) {
  if (err.code !== 'ERR_MODULE_NOT_FOUND') throw err;
}

export const { KeyvKvshm } = store;

export function createKeyv(name, openOptions, keyvOptions) {
  return store.createKeyvWith(Keyv, name, openOptions, keyvOptions);
}

export default KeyvKvshm;
