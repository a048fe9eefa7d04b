// The fault suite (`npm run test:faults`): minutes of real faults against real
// processes, one file at a time so that one fault's load does not disturb the
// figures of another. Not part of `npm test`.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts', 'test/faults/fault-report-setup.ts'],
    fileParallelism: false,
    reporters: ['default', 'hanging-process'],
    // Each fault has its own deadlines inside; a whole fault may take minutes on a busy runner.
    testTimeout: 900_000,
    hookTimeout: 420_000,
  },
});
