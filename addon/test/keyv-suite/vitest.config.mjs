// vitest.config.mjs - @keyv/test-suite against kvshm/keyv (make test-keyv).
// One worker process, one file: the machine is shared, and the suite's
// tests run in order within a file anyway.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['*.test.mjs'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    watch: false,
    testTimeout: 20000,
    hookTimeout: 20000,
  },
});
