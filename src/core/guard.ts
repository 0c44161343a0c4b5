import { defaultLog } from '../config.js';
import { shared } from './state.js';

/** Failures seen per kind, and where they are logged (the runtime's `log` option once there is one). */
const failures = shared('failures', () => ({ counts: new Map<string, number>(), log: defaultLog as (message: string) => void }));

/** Where failures are logged from now on; the runtime sets it from its `log` option. */
export function setFailureLog(log: (message: string) => void): void {
  failures.log = log;
}

/** First failures of each kind logged; after that, one in this many. */
export const FAILURES_LOGGED_IN_FULL = 5;
export const FAILURE_LOG_EVERY = 1000;

/**
 * Logs a failure inside leakwatch without ever throwing: the first few of each kind, then every
 * thousandth, so a broken hook on the hot path cannot flood the log. Every failure of leakwatch's
 * own goes through here.
 */
export function logFailure(what: string, error: unknown): void {
  try {
    const n = (failures.counts.get(what) ?? 0) + 1;
    failures.counts.set(what, n);
    if (n > FAILURES_LOGGED_IN_FULL && n % FAILURE_LOG_EVERY !== 0) return;
    const message = error instanceof Error ? error.message : String(error);
    failures.log(`${what} failed (${n} time${n === 1 ? '' : 's'}), the app goes on: ${message}`);
  } catch {
    // logging itself failed; nothing else is safe to do
  }
}
