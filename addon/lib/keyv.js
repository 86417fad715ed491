// keyv.js - kvshm/keyv, CommonJS entry: the Keyv storage adapter of
// keyv-store.js, and createKeyv() building CommonJS Keyv objects.
//
//   const { Keyv } = require('keyv');
//   const KeyvKvshm = require('kvshm/keyv');
//   const keyv = new Keyv({ store: new KeyvKvshm('app', { memory: '256mb' }) });
//
//   // Values stored natively, without Keyv's JSON envelope:
//   const { createKeyv } = require('kvshm/keyv');
//   const users = createKeyv('app', { memory: '256mb' }, { namespace: 'users' });
'use strict';
const { KeyvKvshm, createKeyvWith } = require('./keyv-store');

// keyv is the application's (not a dependency of kvshm), loaded when first
// needed.
function createKeyv(name, openOptions, keyvOptions) {
  let Keyv;
  try {
    ({ Keyv } = require('keyv'));
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
  }
  return createKeyvWith(Keyv, name, openOptions, keyvOptions);
}

module.exports = KeyvKvshm;
module.exports.default = KeyvKvshm;
module.exports.KeyvKvshm = KeyvKvshm;
module.exports.createKeyv = createKeyv;
