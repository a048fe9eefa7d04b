import { configDefaults, defineConfig } from 'vitest/config';
import { FLEET_THREADPOOL_SIZE } from './packages/cli/src/fleet-process.ts';

// Node's worker pool (4 threads unless UV_THREADPOOL_SIZE says otherwise) carries every async
// file call, sharp, zlib and hashing of a process. Some e2e tests run a simulated fleet of up to
// 50 agents inside the test worker: on 4 threads one agent's download fsync waits behind the
// others' frames (a probe: fsync median 620-806 ms behind 64 queued jobs with 4 threads,
// 108-132 ms with 64, load 12-19), which once kept a device in `downloading` past a test's
// wait. The workers, forked after this runs, start with a pool sized like the simulated fleet
// processes of `bench rollout` and `soak`. The commands the tests start as processes keep
// Node's default, as a user's would (test/helpers/linesight-process.ts removes the setting).
if (process.env.UV_THREADPOOL_SIZE === undefined) {
  process.env.UV_THREADPOOL_SIZE = String(FLEET_THREADPOOL_SIZE);
  process.env.LINESIGHT_TEST_WORKER_POOL = '1';
}

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
          // Some unit tests train a small model or start a cloud: at load 35 on 2 cores a
          // 60 s limit failed a training beforeAll that takes ~15 s on a quiet machine.
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          // Slow suites with their own commands: the fault suite (`npm run test:faults`,
          // test/faults/vitest.config.ts) and the emulated arm64 agent (`npm run test:arm64`).
          exclude: [...configDefaults.exclude, 'test/faults/**', 'test/arm64/**'],
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
