import type { Undo } from '../core/patch.js';
import { poolCounts } from '../pg/checkout.js';
import { instrumentPromisePool } from './watch.js';

/**
 * generic-pool 3: `acquire(priority)` promises a resource; `release(resource)` and
 * `destroy(resource)` give it back (`use(fn)` goes through both); `_createResource()` has the
 * factory make one, as the pool's own work (its `min` at start-up too), and
 * `_addPooledResourceToAvailableObjects` receives it, as it does every one given back.
 */

interface GenericPool {
  size?: number;
  available?: number;
  borrowed?: number;
  pending?: number;
  max?: number;
  _draining?: boolean;
}

/** Instruments every pool of generic-pool's `Pool` class; shared by every caller, undone when the last lets go. */
export function instrumentGenericPool(Pool: unknown): Undo {
  return instrumentPromisePool<GenericPool>(Pool, {
    name: 'generic-pool',
    instrument: 'instrumentGenericPool',
    counts: (pool) => (pool._draining === true && pool.size === 0 ? null : poolCounts(pool.size, pool.available, pool.pending, pool.max, pool.borrowed)),
    receivers: [['_addPooledResourceToAvailableObjects', (args) => (args[0] as { obj?: unknown } | undefined)?.obj]],
  });
}
