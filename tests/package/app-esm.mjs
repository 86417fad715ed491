// app-esm.mjs NAME - the ESM entries of the installed package: the named
// exports, the default export, the Promise facade, kvshm/keyv in a project
// without keyv, and kvshm/redis without ioredis (the application's to
// install, not dependencies).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import kvshm, { open, KvshmError, parseSize } from 'kvshm';
import * as facade from 'kvshm/promise';
import KeyvKvshm, { createKeyv } from 'kvshm/keyv';
import { createNearCache } from 'kvshm/redis';

const [name] = process.argv.slice(2);
assert.equal(kvshm.open, open);
assert.equal(parseSize('1mb'), 1 << 20);
const cache = open(name, { memory: '2mb' });
cache.set('k', 42n);
assert.equal(cache.get('k'), 42n);
assert.throws(() => open(name, { memory: '4mb' }),
  (err) => err instanceof KvshmError && err.code === 'ECONFIG');
cache.destroy();

process.env.KVSHM_NAME = `${name}-facade`;
await facade.start();
assert.equal(await facade.insert('a', 'b', 60), 'I');
assert.equal(await facade.get('a'), 'b');
await facade.close();
kvshm.destroy(`${name}-facade`);
// The Keyv store works without keyv; createKeyv() says what to install.
const store = new KeyvKvshm(`${name}-keyv`, { memory: '2mb' });
assert.equal(await store.set('ns:k', '{"value":1}'), true);
assert.equal(await store.get('ns:k'), '{"value":1}');
assert.throws(() => createKeyv(`${name}-keyv`), /npm install keyv/);
assert.equal(createRequire(import.meta.url)('kvshm/keyv'), KeyvKvshm, 'one class for require and import');
await store.disconnect();
kvshm.destroy(`${name}-keyv`);
// kvshm/redis loads without ioredis; createNearCache() says what to install.
assert.throws(() => createNearCache({ name: `${name}-near` }), /npm install ioredis/);
assert.equal(createRequire(import.meta.url)('kvshm/redis').createNearCache, createNearCache);
console.log('app-esm: ok');
