import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: instrumentation patches process-wide state.
    pool: 'forks',
    // Most files wait on sockets, child processes and thresholds, not the CPU: four at once on a
    // 2-core machine take a third of the time two did (338 s to 108 s on Node 24), still green.
    maxWorkers: 4,
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // One TMPDIR for the run, removed at its end (test/support/temp-dir.ts); the framework apps'
    // builds start at once in the background (test/frameworks/support/prebuild.ts).
    globalSetup: ['test/support/temp-dir.ts', 'test/support/services.ts', 'test/frameworks/support/prebuild.ts'],
    // The suite leaks on purpose; one log line per leak would bury the output. The leak log's own
    // tests (test/report/leak-log.test.ts) set it for the processes they start.
    env: { LEAKWATCH_LOG: 'off' },
    passWithNoTests: false,
  },
});
