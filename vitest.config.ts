import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    maxWorkers: 2,
    // hanging-process lists what keeps the process alive when a test leaves a handle open.
    reporters: ['default', 'hanging-process'],
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'packages/*/src/**/*.test.ts',
            'cloud/src/**/*.test.ts',
            'agent/src/**/*.test.ts',
            'firmware-sim/src/**/*.test.ts',
          ],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          // The fault suite takes minutes: `npm run test:faults` (test/faults/vitest.config.ts).
          exclude: [...configDefaults.exclude, 'test/faults/**'],
          globalSetup: ['test/helpers/global-setup.ts'],
          // Generous: on a loaded 2-core runner a fleet or agent test can take minutes; each
          // wait inside a test has its own deadline and message.
          testTimeout: 420_000,
          hookTimeout: 420_000,
        },
      },
    ],
  },
});
