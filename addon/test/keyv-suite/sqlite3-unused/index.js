// index.js - see README.md: nothing here is meant to be loaded.
'use strict';
throw new Error('sqlite3 is not installed in this checkout: @keyv/test-suite lists it but never loads it ' +
  '(package.json overrides it with addon/test/keyv-suite/sqlite3-unused)');
