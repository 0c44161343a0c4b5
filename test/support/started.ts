import { afterAll, beforeAll } from 'vitest';
import type { Ledger } from '../../src/core/ledger.js';
import { getRuntime } from '../../src/core/runtime.js';
import { start, type LeakwatchOptions, type Started } from '../../src/index.js';

/**
 * `start(options)` before the file's tests and its `stop()` after them. `ledger()` is the runtime's
 * ledger at the time of asking; `stop()` and `restart()` are for tests that need leakwatch off.
 */
export function useStarted(options: LeakwatchOptions): { ledger(): Ledger; stop(): void; restart(): void } {
  let started: Started | undefined;
  beforeAll(() => {
    started = start(options);
  });
  afterAll(() => started?.stop());
  return {
    ledger: () => getRuntime()!.ledger,
    stop: () => started?.stop(),
    restart() {
      started = start(options);
    },
  };
}
