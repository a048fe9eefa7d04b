import { defineConfig } from 'vitest/config';

// The unit tests Stryker runs (stryker.config.mjs): the unit project without the e2e
// project's global setup, which trains models. Stryker narrows it to the tests related to
// each mutated file.
export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'cloud/src/**/*.test.ts',
      'agent/src/**/*.test.ts',
      'firmware-sim/src/**/*.test.ts',
    ],
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
