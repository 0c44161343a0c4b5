import type { StackCapture } from '../core/records.js';
import { shared } from '../core/state.js';
import type { PoolWatch } from './checkout.js';
import type { ClientTracker } from './protocol.js';

/** What the pg instrumentation knows across the process (a part of the process-wide slot). */
export interface PgState {
  /** Clients followed now (removed when their connection ends or instrumentation is undone). */
  readonly trackers: Set<ClientTracker>;
  /** Pools whose gauges `poolStats()` reports, of every pool library. */
  readonly pools: Set<PoolWatch>;
  /**
   * The acquisition stack of the checkout being requested now, when a caller above knows it
   * (see withCheckoutSite); undefined: capture one.
   */
  checkoutSite: StackCapture | null | undefined;
  /** Depth of pg-pool's `newClient()`: a client connected inside it is a pool's, not a bare one. */
  poolClientDepth: number;
  /** Active instrumentations (pg classes, watchPool); when none is left, trackers and found pools let go. */
  active: number;
  /** Stack frames captured where a connection is acquired; read from the options at install. */
  stackFrames: number;
}

const state = shared<PgState>('pg', () => ({ trackers: new Set(), pools: new Set(), checkoutSite: undefined, poolClientDepth: 0, active: 0, stackFrames: 10 }));

export function pgState(): PgState {
  return state;
}

/** Counts an instrumentation in; the returned function counts it out (once). */
export function activate(): () => void {
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
