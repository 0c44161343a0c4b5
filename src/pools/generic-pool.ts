import { applyAll, install, type Undo } from '../core/patch.js';
import { poolCounts } from '../pg/checkout.js';
import { activate } from '../pg/state.js';
import { patchMethod, wrapCreate, wrapGiveBack, wrapPromiseAcquire, wrapReceive, type PoolCounts } from './watch.js';

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

function counts(pool: GenericPool): PoolCounts | null {
  if (pool._draining === true && pool.size === 0) return null;
  return poolCounts(pool.size, pool.available, pool.pending, pool.max, pool.borrowed);
}

/** Instruments every pool of generic-pool's `Pool` class; shared by every caller, undone when the last lets go. */
export function instrumentGenericPool(Pool: unknown): Undo {
  const proto = (Pool as { prototype?: { acquire?: unknown } } | null)?.prototype;
  if (proto === undefined || proto === null || typeof proto.acquire !== 'function') throw new TypeError("instrumentGenericPool(Pool) needs generic-pool's Pool class.");
  const patch = (name: string, wrap: Parameters<typeof patchMethod>[2]) => patchMethod(proto, name, wrap);
  return install(proto, 'generic-pool Pool', () =>
    applyAll([
      activate,
      patch('acquire', wrapPromiseAcquire(counts)),
      patch('release', wrapGiveBack),
      patch('destroy', wrapGiveBack),
      patch('_createResource', wrapCreate),
      patch('_addPooledResourceToAvailableObjects', wrapReceive(counts, (args) => (args[0] as { obj?: unknown } | undefined)?.obj)),
    ]),
  );
}
