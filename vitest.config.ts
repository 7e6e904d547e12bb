import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // The default output, then which suites this machine skipped, why, and how to enable them.
    reporters: ['default', './test/support/skipped-reporter.ts'],
  },
});
