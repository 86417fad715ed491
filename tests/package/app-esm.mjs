// app-esm.mjs NAME - the ESM entries of the installed package: the named
// exports, the default export and the Promise facade.
import assert from 'node:assert/strict';
import kvshm, { open, KvshmError, parseSize } from 'kvshm';
import * as facade from 'kvshm/promise';

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
console.log('app-esm: ok');
