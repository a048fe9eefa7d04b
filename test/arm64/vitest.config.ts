// `npm run test:arm64`: the agent on linux/arm64 under qemu-user (test/arm64/). Not part of
// `npm test`: the first run builds an arm64 environment for minutes (scripts/arm64-env.ts), and
// the emulated agent is many times slower than a native one.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/arm64/**/*.test.ts'],
    // The same two trained models as the e2e tests.
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default', 'hanging-process'],
    // Each wait inside has its own deadline and message; building the environment the first
    // time is most of the hook's.
    testTimeout: 45 * 60_000,
    hookTimeout: 45 * 60_000,
  },
});
