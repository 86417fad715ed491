// Type definitions for kvshm/keyv imported from ESM: the class of
// keyv.d.ts, and a createKeyv() typed with keyv's ESM declarations (keyv
// ships separate CommonJS and ESM types, and its Keyv from one is not
// assignable to the other's).

import type { Keyv, KeyvOptions } from 'keyv';
import type { OpenOptions } from './index.js';
import KeyvKvshm from './keyv.js';

export type StoreOptions = KeyvKvshm.StoreOptions;
export type Envelope<T = unknown> = KeyvKvshm.Envelope<T>;
export type Opts = KeyvKvshm.Opts;

/** See createKeyv in keyv.d.ts: the same, building ESM Keyv objects. */
export declare function createKeyv<T = any>(
  name: string,
  openOptions?: OpenOptions,
  keyvOptions?: Omit<KeyvOptions, 'store' | 'serialize' | 'deserialize' | 'compression'>,
): Keyv<T>;

export { KeyvKvshm };
export default KeyvKvshm;
