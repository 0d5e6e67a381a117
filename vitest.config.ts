import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Model tests run real forward/backward passes on a 2-core CPU.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
