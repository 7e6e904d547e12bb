import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // In-process tests import every package from its source, as tsconfig.test.json types it, so no
    // build is needed for them and one process holds one copy of each module. Tests that spawn the
    // bins still run the build (`npm test` builds first).
    alias: [
      {
        find: /^@nsq-ts\/([a-z-]+)$/,
        replacement: fileURLToPath(new URL('./packages/$1/src/index.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // The default output, then which suites this machine skipped, why, and how to enable them.
    reporters: ['default', './test/support/skipped-reporter.ts'],
  },
});
