// 95.types-tsc: index.d.ts and promise.d.ts compile (tsc --noEmit, strict)
// against examples that use every method and option, from CommonJS and ESM.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { runNode } = require('./helpers');

test('tsc --noEmit over the typed examples', { timeout: 120000 }, async () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const project = path.join(__dirname, 'types', 'tsconfig.json');
  const r = await runNode(tsc, ['-p', project], { timeoutMs: 110000 });
  assert.equal(r.code, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
