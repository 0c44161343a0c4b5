import type { ClientTracker } from './protocol.js';
import type { PoolWatch } from './pool.js';

/**
 * What pg instrumentation shares across the process, on globalThis under a registered Symbol so
 * that two copies of leakwatch (src and dist, the app's and a test runner's) share one view.
 */
export interface PgState {
  /** Clients followed now (removed when their connection ends or instrumentation is undone). */
  readonly trackers: Set<ClientTracker>;
  /** Pools whose gauges `poolStats()` reports. */
  readonly pools: Set<PoolWatch>;
  /** Depth of pg-pool's `newClient()`: a client connected inside it is a pool's, not a bare one. */
  poolClientDepth: number;
  /** Active instrumentations (pg classes, watchPool); when none is left, trackers and found pools let go. */
  active: number;
}

const STATE = Symbol.for('leakwatch.pg.state.v1');
const holder = globalThis as unknown as { [STATE]?: PgState };

export function pgState(): PgState {
  return (holder[STATE] ??= { trackers: new Set(), pools: new Set(), poolClientDepth: 0, active: 0 });
}

/** Counts an instrumentation in; the returned function counts it out (once). */
export function activate(): () => void {
  const state = pgState();
  state.active++;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--state.active > 0) return;
    for (const tracker of [...state.trackers]) tracker.detach();
    for (const watch of [...state.pools]) if (!watch.explicit) watch.unwatch();
  };
}
