// Lint config: type-aware rules catch floating and misused promises; import boundaries keep
// dependencies pointing one way; file names are kebab-case.
import { basename } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const APPS = {
  cloud: { pkg: '@linesight/cloud', dir: 'cloud' },
  agent: { pkg: '@linesight/agent', dir: 'agent' },
  firmwareSim: { pkg: '@linesight/firmware-sim', dir: 'firmware-sim' },
};

/** Import restrictions: these apps (by package name or by a relative path into their folder). */
function noApps(apps, why) {
  return apps.flatMap((app) => [
    { group: [app.pkg, `${app.pkg}/*`], message: why },
    { regex: `^(\\.\\./)+${app.dir}/`, message: why },
  ]);
}

// Test fixtures and helpers live in packages/testkit and test/helpers: only tests import them.
const FIXTURES = [
  {
    group: ['@linesight/testkit', '@linesight/testkit/*'],
    message: '@linesight/testkit is for tests only',
  },
  {
    regex: '(^|/)(packages/)?testkit/|(^|/)test/helpers/',
    message: 'test fixtures are for tests only',
  },
];

const TESTS = ['**/*.test.ts', 'test/**/*.ts'];

/** One config object per folder: no-restricted-imports does not merge across objects. */
function boundary(files, patterns, { tests = false } = {}) {
  return {
    files,
    ...(tests ? {} : { ignores: TESTS }),
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  };
}

const LIBRARY = 'packages other than cli never import apps (packages/cli is the composition root)';
const APP = 'apps never import each other (packages/cli composes them)';

/** Files and folders are kebab-case: lower-case words joined by dashes, then extensions. */
const kebabCaseFiles = {
  meta: { type: 'suggestion', schema: [], docs: { description: 'kebab-case file names' } },
  create(context) {
    return {
      Program(node) {
        const name = basename(context.filename);
        if (!/^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+)*$/.test(name))
          context.report({ node, message: `file name "${name}" is not kebab-case` });
      },
    };
  },
};

// What the dashboard's browser modules may use without importing it (no-undef flags the rest).
const BROWSER_GLOBALS = Object.fromEntries(
  [
    'window',
    'document',
    'location',
    'history',
    'navigator',
    'sessionStorage',
    'localStorage',
    'fetch',
    'Response',
    'Headers',
    'AbortController',
    'TextDecoderStream',
    'URL',
    'URLSearchParams',
    'Event',
    'KeyboardEvent',
    'HTMLElement',
    'Image',
    'addEventListener',
    'removeEventListener',
    'requestAnimationFrame',
    'cancelAnimationFrame',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'performance',
    'console',
    'matchMedia',
    'getComputedStyle',
    'ResizeObserver',
    'confirm',
  ].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      'data/**',
      '.stryker-tmp/**',
      'reports/**',
      '**/*.js',
      '!eslint.config.js',
      '!cloud/src/dashboard/public/*.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { linesight: { rules: { 'kebab-case-files': kebabCaseFiles } } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': ['error'],
      'linesight/kebab-case-files': 'error',
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'scripts/**/*.ts', 'packages/cli/src/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  // Libraries: no apps; runtime code no fixtures (the test-wide object first, so the
  // runtime one, which ignores tests, overrides it for runtime files).
  ...[true, false].map((tests) =>
    boundary(
      ['packages/{protocol,durable-fs,vision,model,api-client}/**/*.ts'],
      [...noApps(Object.values(APPS), LIBRARY), ...(tests ? [] : FIXTURES)],
      { tests },
    ),
  ),
  ...[true, false].map((tests) =>
    boundary(
      ['cloud/**/*.ts'],
      [...noApps([APPS.agent, APPS.firmwareSim], APP), ...(tests ? [] : FIXTURES)],
      { tests },
    ),
  ),
  ...[true, false].map((tests) =>
    boundary(
      ['agent/**/*.ts'],
      [...noApps([APPS.cloud, APPS.firmwareSim], APP), ...(tests ? [] : FIXTURES)],
      { tests },
    ),
  ),
  // firmware-sim runs the real agent against simulated hardware; it reaches the cloud only
  // over MQTT and HTTP.
  ...[true, false].map((tests) =>
    boundary(['firmware-sim/**/*.ts'], [...noApps([APPS.cloud], APP), ...(tests ? [] : FIXTURES)], {
      tests,
    }),
  ),
  // The dashboard's pages: plain ES modules run by the browser (no build step, no types).
  {
    files: ['cloud/src/dashboard/public/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: BROWSER_GLOBALS },
    plugins: { linesight: { rules: { 'kebab-case-files': kebabCaseFiles } } },
    rules: {
      'no-undef': 'error',
      'no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
      'prefer-const': 'error',
      'no-var': 'error',
      'no-shadow': 'error',
      'array-callback-return': 'error',
      'no-promise-executor-return': 'error',
      'linesight/kebab-case-files': 'error',
    },
  },
  // Developer scripts (scripts/) may use test fixtures to measure with; runtime code may not.
  boundary(['packages/cli/**/*.ts'], FIXTURES),
);
