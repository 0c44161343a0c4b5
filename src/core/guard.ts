import { defaultLog } from '../config.js';
import { getRuntime } from './runtime.js';

const counts = new Map<string, number>();

/**
 * Logs a failure inside leakwatch without ever throwing: the first few of each kind, then every
 * thousandth, so a broken hook on the hot path cannot flood the log.
 */
export function logFailure(what: string, error: unknown): void {
  try {
    const n = (counts.get(what) ?? 0) + 1;
    counts.set(what, n);
    if (n > 5 && n % 1000 !== 0) return;
    const log = getRuntime()?.config.log ?? defaultLog;
    const message = error instanceof Error ? error.message : String(error);
    log(`${what} failed (${n} time${n === 1 ? '' : 's'}), the app goes on: ${message}`);
  } catch {
    // logging itself failed; nothing else is safe to do
  }
}
