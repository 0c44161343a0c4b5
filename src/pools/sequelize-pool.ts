import type { Undo } from '../core/patch.js';
import { poolCounts } from '../pg/checkout.js';
import { instrumentPromisePool } from './watch.js';

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

const firstArgument = (args: unknown[]): unknown => args[0];

/** Instruments every pool of sequelize-pool's `Pool` class; shared by every caller, undone when the last lets go. */
export function instrumentSequelizePool(Pool: unknown): Undo {
  return instrumentPromisePool<SequelizePool>(Pool, {
    name: 'sequelize-pool',
    instrument: 'instrumentSequelizePool',
    counts: (pool) => (pool._draining === true && pool.size === 0 ? null : poolCounts(pool.size, pool.available, pool.waiting, pool.maxSize, pool.using)),
    receivers: [
      ['_addResourceToInUseObjects', firstArgument],
      ['_addResourceToAvailableObjects', firstArgument],
    ],
  });
}
