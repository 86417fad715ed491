#!/usr/bin/env node
// cache-manager.js - cache-manager 7 with kvshm as the host-wide L1: every
// process on the host shares one kvshm cache through kvshm/keyv, in front
// of an L2 shared between hosts (Redis through @keyv/redis).  A value
// loaded by one process is an L1 hit for every other process on the host;
// the second process below shows it.
//
//   node examples/cache-manager.js          L2: an in-process Keyv (no server)
//   REDIS_URL=redis://localhost:6379 node examples/cache-manager.js
//   KVSHM_NAME=...                          the kvshm cache (default 'app')
//
// The README's "Keyv, cache-manager and cacheable" section has this code.
'use strict';
const { fork } = require('child_process');
const { createCache } = require('cache-manager');
const { Keyv } = require('keyv');
const { createKeyv } = require('kvshm/keyv');

const name = process.env.KVSHM_NAME || 'app';
const who = process.argv[2] === 'second' ? 'second process' : 'first process';

// L1: kvshm, values stored natively (createKeyv turns Keyv's JSON off).
const l1 = createKeyv(name, { memory: '64mb' }, { namespace: 'users' });
// L2: Redis when there is one; else a Keyv in this process's memory.
const l2 = process.env.REDIS_URL
  ? require('@keyv/redis').createKeyv(process.env.REDIS_URL, { namespace: 'users' })
  : new Keyv({ namespace: 'users' });
const cache = createCache({ stores: [l1, l2], ttl: 60_000 });

// The slow source of truth.
async function loadUser(id) {
  console.log(`${who}: loading user ${id} from the database`);
  return { id, name: `User ${id}`, roles: ['reader'] };
}

async function main() {
  const user = await cache.wrap('user:1', () => loadUser(1));
  console.log(`${who}: user 1 is ${user.name}`);
  if (who === 'first process') {
    // Another process: its L2 (in-memory here) is empty, yet it finds
    // user 1 in the shared L1 and does not load it again.
    await new Promise((resolve, reject) => {
      fork(__filename, ['second']).on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
    });
    const expires = await cache.ttl('user:1'); // when it leaves the cache
    console.log(`${who}: user 1 expires in about ${Math.round((expires - Date.now()) / 1000)} s`);
  }
  await cache.disconnect();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
