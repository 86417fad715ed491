#!/usr/bin/env node
// cacheable.js - cacheable 2 with kvshm as the host-wide primary (L1):
// every process on the host shares one kvshm cache through kvshm/keyv, in
// front of a secondary shared between hosts (Redis through @keyv/redis).
// What one process loads, or finds in the secondary, is a primary hit for
// every other process on the host; the second process below shows it.
//
//   node examples/cacheable.js              secondary: an in-process Keyv
//   REDIS_URL=redis://localhost:6379 node examples/cacheable.js
//   KVSHM_NAME=...                          the kvshm cache (default 'app')
//
// The README's "Keyv, cache-manager and cacheable" section has this code.
'use strict';
const { fork } = require('child_process');
const { Cacheable } = require('cacheable');
const { Keyv } = require('keyv');
const { createKeyv } = require('kvshm/keyv');

const name = process.env.KVSHM_NAME || 'app';
const who = process.argv[2] === 'second' ? 'second process' : 'first process';

// Primary: kvshm, values stored natively (createKeyv turns Keyv's JSON off).
const primary = createKeyv(name, { memory: '64mb' }, { namespace: 'users' });
// Secondary: Redis when there is one; else a Keyv in this process's memory.
const secondary = process.env.REDIS_URL
  ? require('@keyv/redis').createKeyv(process.env.REDIS_URL, { namespace: 'users' })
  : new Keyv({ namespace: 'users' });
const cache = new Cacheable({ primary, secondary, ttl: '1m' });
cache.on('cache:hit', ({ key, store }) => console.log(`${who}: ${key} found in the ${store} store`));

// The slow source of truth.
async function loadUser(id) {
  console.log(`${who}: loading user ${id} from the database`);
  return { id, name: `User ${id}`, roles: ['reader'] };
}

async function main() {
  const user = await cache.getOrSet('user:1', () => loadUser(1));
  console.log(`${who}: user 1 is ${user.name}`);
  if (who === 'first process') {
    // Another host put user 2 in the shared secondary: the first get here
    // copies it into the primary, for every process on this host.
    await secondary.set('user:2', { id: 2, name: 'User 2', roles: [] });
    console.log(`${who}: user 2 is ${(await cache.get('user:2')).name}`);
    await new Promise((resolve, reject) => {
      fork(__filename, ['second']).on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
    });
  } else {
    // This process's in-memory secondary is empty: both come from kvshm.
    console.log(`${who}: user 2 is ${(await cache.get('user:2')).name}`);
  }
  await cache.disconnect();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
