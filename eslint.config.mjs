// Lint for src/ and test/: ESLint's and typescript-eslint's recommended rules, plus the project's
// own: the ledger stays free of I/O (also pinned by test/core/layering.test.ts), and no stray
// console output from the library (it logs through its `log` option).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'fixtures/next-app/', 'fixtures/next-bundled-pg/', 'fixtures/nest-app/', 'fixtures/prisma/generated/', 'coverage/', '.ci/', '.cache/', 'etc/', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: globals.node },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Functions are values here: instrumentation takes and returns them.
      '@typescript-eslint/no-unsafe-function-type': 'off',
      // Wrappers pass `arguments` through untouched, without an array per call.
      'prefer-rest-params': 'off',
      'prefer-spread': 'off',
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['layer', 'tracker', 'checkout', 'clients'] }],
    },
  },
  {
    files: ['src/**/*.ts', 'src/**/*.mts'],
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-require-imports': 'off', // package.json read at run time, optional peers loaded lazily
    },
  },
  {
    files: ['src/core/ledger.ts', 'src/core/records.ts', 'src/core/deadline-queue.ts', 'src/core/deadline-timer.ts', 'src/core/history.ts', 'src/core/clock.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*', '../*', '!../core/*'], message: 'The ledger is a pure state machine: no I/O, nothing above core.' }] }],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/ban-ts-comment': ['error', { 'ts-expect-error': 'allow-with-description' }],
    },
  },
);
