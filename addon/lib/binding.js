// binding.js - loads the native addon once per thread (see locate.js for
// which file) and tells it which class its errors are.  libshm finds
// kvshm-reaper beside the file it was loaded from, so a moved or copied
// node_modules keeps working.
'use strict';
const path = require('path');
const { KvshmError } = require('./errors');
const { locate, missingMessage, HOW_TO_BUILD, platformTag } = require('./locate');

const found = locate();
if (!found) throw new Error(missingMessage());
const file = path.join(found.dir, 'kvshm.node');

let binding;
try {
  binding = require(file);
} catch (err) {
  // The likeliest cause for a prebuilt file: a C library older than the
  // one it was built against (the loader names the missing GLIBC_x.y).
  const tag = platformTag();
  const what = found.prebuilt
    ? `the prebuilt addon for ${tag} (${file}) does not load here: ` +
      `${err.message}.${tag.endsWith('-glibc') ? ' It needs glibc 2.34 or newer.' : ''} ` +
      HOW_TO_BUILD
    : `the addon built from source (${file}) does not load: ` +
      `${err.message}. Rebuild it (make addon, or npm rebuild kvshm).`;
  throw new Error(`kvshm: ${what}`, { cause: err });
}
binding.init(KvshmError);

module.exports = binding;
