// keyv-example.ts - kvshm/keyv's types from CommonJS; 95.types-tsc compiles
// it with tsc --noEmit.  Lines marked @ts-expect-error must fail.
import KeyvKvshm = require('kvshm/keyv');
import { Keyv } from 'keyv';
import type { Cache } from 'kvshm';

const store = new KeyvKvshm('keyv-example', { memory: '64mb' });
const native: KeyvKvshm = new KeyvKvshm.KeyvKvshm('keyv-example', undefined, { native: true, throwOnErrors: false });
const same: typeof KeyvKvshm = KeyvKvshm.default;
const keyv = new Keyv<{ id: number }>({ store, namespace: 'users' });
const fast: Keyv<string> = KeyvKvshm.createKeyv<string>('keyv-example', { memory: '64mb' }, { namespace: 'n', ttl: 1000 });
const cache: Cache = store.cache;
const opts: KeyvKvshm.Opts = store.opts;
const storeOptions: KeyvKvshm.StoreOptions = { native: true };
store.on('error', (err: Error) => void err);

async function use(): Promise<void> {
  await keyv.set('1', { id: 1 }, 5000);
  const u: { id: number } | undefined = await keyv.get('1');
  const raw: string | KeyvKvshm.Envelope | undefined = await store.get('users:1');
  const many = await native.getMany<number>(['a', 'b']);
  const stored: boolean = await store.set('k', '{"value":1}', 100);
  const all: boolean[] = await native.setMany([{ key: 'k', value: { value: 1, expires: undefined }, ttl: 5 }]);
  const gone: boolean = await store.deleteMany(['k']);
  for await (const [key, value] of store.iterator('users')) void [key.length, value];
  await store.clear();
  await store.disconnect();
  // @ts-expect-error createKeyv stores natively: no serializer
  KeyvKvshm.createKeyv('x', {}, { serialize: JSON.stringify });
  // @ts-expect-error unknown store option
  new KeyvKvshm('x', {}, { raw: true });
  void [u, raw, many, stored, all, gone];
}

void [native, same, fast, cache, opts, storeOptions, use];
