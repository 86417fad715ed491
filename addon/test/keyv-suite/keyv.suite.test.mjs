// keyv.suite.test.mjs - Keyv's own conformance suite, @keyv/test-suite
// (keyvTestSuite: the API, value and namespace tests, and
// keyvIteratorTests), run against kvshm/keyv in both of its modes, over a
// memory-only, a SQLite-backed and a persistent cache.  keyvCompresstionTests
// is not run: it tests a compression adapter, with Keyv's Map store.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vitest from 'vitest';
import { Keyv } from 'keyv';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import KeyvKvshm from 'kvshm/keyv';
import kvshm from 'kvshm';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kv${process.pid}-suite-`));
const names = [];

const TIERS = {
  'memory-only': () => ({ memory: '8mb' }),
  'SQLite-backed': (n) => ({ memory: '8mb', sqlite: path.join(dir, `${n}.db`) }),
  persistent: (n) => ({ memory: '8mb', sqlite: path.join(dir, `${n}.db`), persistent: true, flushDelay: 100 }),
};

// The native mode's Keyv: serialize and deserialize off, as createKeyv()
// makes it (the suite constructs its Keyv itself, from the class it is
// given).
class NativeKeyv extends Keyv {
  constructor(options) {
    super({ ...options, serialize: undefined, deserialize: undefined });
  }
}

// What the native mode does differently, on purpose: kvshm stores an
// object as JSON, so a Buffer inside an object comes back as JSON makes it,
// { type: 'Buffer', data: [...] } (Keyv's serializer writes it as a base64
// string and revives it).  it.fails asserts that the test does fail.
const NATIVE_DIFFERS = new Set(['value can be an object containing a buffer']);
const nativeTest = {
  ...vitest,
  it: (name, fn) => (NATIVE_DIFFERS.has(name) ? vitest.it.fails(name, fn) : vitest.it(name, fn)),
};

for (const [tier, options] of Object.entries(TIERS)) {
  for (const native of [false, true]) {
    vitest.describe(`${native ? 'native' : 'serialized'} values, ${tier}`, () => {
      const name = `kv${process.pid}-${names.length}`;
      names.push(name);
      const store = () => new KeyvKvshm(name, options(name), native ? { native: true } : undefined);
      const K = native ? NativeKeyv : Keyv;
      const test = native ? nativeTest : vitest;
      keyvTestSuite(test, K, store);
      keyvIteratorTests(test, K, store);
    });
  }
}

vitest.afterAll(() => {
  for (const name of names) kvshm.destroy(name);
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 30, retryDelay: 100 });
});
