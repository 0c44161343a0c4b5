import { applyAll, install, type Undo } from '../core/patch.js';
import { poolCounts } from '../pg/checkout.js';
import { activate } from '../pg/state.js';
import { patchMethod, wrapCreate, wrapGiveBack, wrapPromiseAcquire, wrapReceive, type PoolCounts } from './watch.js';

/**
 * sequelize-pool (sequelize 6): `acquire()` promises a resource; `release(resource)` and
 * `destroy(resource)` give it back; `_createResource()` has the factory make one, as the pool's own
 * work, and `_addResourceToInUseObjects` or `_addResourceToAvailableObjects` receives it (they also
 * see every reuse).
 */

interface SequelizePool {
  size?: number;
  available?: number;
  using?: number;
  waiting?: number;
  maxSize?: number;
  _draining?: boolean;
}

function counts(pool: SequelizePool): PoolCounts | null {
  if (pool._draining === true && pool.size === 0) return null;
  return poolCounts(pool.size, pool.available, pool.waiting, pool.maxSize, pool.using);
}

/** Instruments every pool of sequelize-pool's `Pool` class; shared by every caller, undone when the last lets go. */
export function instrumentSequelizePool(Pool: unknown): Undo {
  const proto = (Pool as { prototype?: { acquire?: unknown } } | null)?.prototype;
  if (proto === undefined || proto === null || typeof proto.acquire !== 'function') throw new TypeError("instrumentSequelizePool(Pool) needs sequelize-pool's Pool class.");
  const patch = (name: string, wrap: Parameters<typeof patchMethod>[2]) => patchMethod(proto, name, wrap);
  const receive = wrapReceive(counts, (args) => args[0]);
  return install(proto, 'sequelize-pool Pool', () =>
    applyAll([
      activate,
      patch('acquire', wrapPromiseAcquire(counts)),
      patch('release', wrapGiveBack),
      patch('destroy', wrapGiveBack),
      patch('_createResource', wrapCreate),
      patch('_addResourceToInUseObjects', receive),
      patch('_addResourceToAvailableObjects', receive),
    ]),
  );
}
