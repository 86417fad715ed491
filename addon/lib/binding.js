// binding.js - loads the compiled addon once per thread and tells it which
// class its errors are.
'use strict';
const fs = require('fs');
const path = require('path');
const { KvshmError } = require('./errors');

const dir = path.join(__dirname, '..', 'build', 'Release');
const file = path.join(dir, 'kvshm.node');

// libshm starts kvshm-reaper from the path compiled in (this directory at
// build time) unless KVSHM_REAPER_PATH names another: point it here, so a
// project moved after its install still finds the reaper built with it.
const reaper = path.join(dir, 'kvshm-reaper');
if (!process.env.KVSHM_REAPER_PATH && fs.existsSync(reaper)) {
  process.env.KVSHM_REAPER_PATH = reaper;
}
let binding;
try {
  binding = require(file);
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND') {
    throw new Error(`kvshm: the native addon is not built (${file} is ` +
      'missing): run `make addon` in a source checkout, or reinstall the ' +
      'package so that its install script builds it', { cause: err });
  }
  throw err;
}
binding.init(KvshmError);

module.exports = binding;
