// Mutation testing (`npm run mutation`, not in CI): Stryker changes the code that guards
// frames and rollouts one small edit at a time and runs the related unit tests; a mutant
// that no test notices ("survived") marks a behaviour no test holds. Scores: the README's test section.
// One area: `npm run mutation -- --mutate 'agent/src/pipeline/**/*.ts,!**/*.test.ts'`; STRYKER_JSON=<file>
// writes that run's JSON report elsewhere, so a scoped run keeps the whole-area report.
import process from 'node:process';
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'stryker.vitest.config.ts', related: true },
  // Each mutant runs only the tests that reached it in the dry run.
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants) would rerun every test for each one.
  ignoreStatic: true,
  mutate: [
    'agent/src/pipeline/**/*.ts',
    'packages/vision/src/**/*.ts',
    'cloud/src/rollouts/**/*.ts',
    '!**/*.test.ts',
    // A re-export list, not behaviour.
    '!packages/vision/src/index.ts',
  ],
  // The machine is shared: one test process at a time.
  concurrency: 1,
  // A mutant that stops a drain() from resolving hangs its test: give up 10 s past the
  // expected time (the dry run measures it) instead of waiting for the test timeout.
  timeoutMS: 10_000,
  tempDirName: '.stryker-tmp',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: process.env.STRYKER_JSON ?? 'reports/mutation/mutation.json' },
  ignorePatterns: ['data', 'bench-results', 'fault-results', 'reports', 'scratch', 'coverage'],
};
