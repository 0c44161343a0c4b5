import { logFailure } from '../core/guard.js';
import { applyAll, install, type Fn, type Layer, type Undo } from '../core/patch.js';
import { endsOnFailure } from '../core/pool-waits.js';
import { runAsPoolWork } from '../core/runtime.js';
import { adoptIntoPool, poolCounts } from '../pg/checkout.js';
import { activate } from '../pg/state.js';
import { patchMethod, requestCheckout, watchOf, wrapGiveBack, type PoolCounts } from './watch.js';

/**
 * tarn 3 (knex 2 and 3, and so Objection and MikroORM): `acquire()` returns a pending operation
 * whose `promise` gives the resource; `release(resource)` gives it back; `_create()` makes one
 * (knex connects a pg client inside), as the pool's own work.
 */

interface PendingOperation {
  promise?: PromiseLike<unknown>;
}

interface TarnPool {
  max?: number;
  destroyed?: boolean;
  numUsed?(): number;
  numFree?(): number;
  numPendingAcquires?(): number;
  numPendingCreates?(): number;
}

function counts(pool: TarnPool): PoolCounts | null {
  if (pool.destroyed === true) return null;
  const used = pool.numUsed?.() ?? 0;
  const free = pool.numFree?.() ?? 0;
  return poolCounts(used + free + (pool.numPendingCreates?.() ?? 0), free, pool.numPendingAcquires?.(), pool.max, used);
}

/**
 * Calls `onResource` with what the operation's promise gives. Unless `fork`, the operation's
 * promise is replaced by one that does so first, so the caller's continuation sees the record
 * made; rejections pass through untouched, after `onFailure` when given.
 */
function observe(operation: unknown, onResource: (resource: unknown) => void, fork: boolean, onFailure?: () => void): void {
  const pending = operation as PendingOperation | null;
  const promise = pending?.promise;
  if (promise === undefined || promise === null || typeof promise.then !== 'function') return;
  if (fork) {
    // Only watched: the library goes on with its own promise, and a rejection here is its to handle.
    promise.then(onResource, () => {});
    return;
  }
  pending!.promise = promise.then(
    (resource) => {
      onResource(resource);
      return resource;
    },
    onFailure === undefined ? undefined : (error: unknown) => (onFailure(), Promise.reject(error)),
  );
}

function wrapAcquire(layer: Layer): Fn {
  const acquire = function (this: TarnPool, ...args: unknown[]) {
    if (!layer.active) return layer.original.apply(this, args);
    const checkout = requestCheckout(this, counts, acquire);
    const operation: unknown = layer.original.apply(this, args);
    if (checkout !== null) {
      try {
        observe(operation, (resource) => checkout.deliver(resource), false, endsOnFailure(checkout) ? () => checkout.fail() : undefined);
      } catch (error) {
        logFailure('tarn acquire', error);
      }
    }
    return operation;
  };
  return acquire as unknown as Fn;
}

function wrapCreate(layer: Layer): Fn {
  return function _create(this: TarnPool, ...args: unknown[]) {
    if (!layer.active) return layer.original.apply(this, args);
    const operation: unknown = runAsPoolWork(() => layer.original.apply(this, args));
    try {
      // Made before leakwatch, or by a copy of pg it does not follow: taken in when the pool receives it.
      const watch = watchOf(this, counts);
      observe(operation, (resource) => adoptIntoPool(watch, resource), true);
    } catch (error) {
      logFailure('tarn create', error);
    }
    return operation;
  };
}

/** Instruments every pool of tarn's `Pool` class; shared by every caller, undone when the last lets go. */
export function instrumentTarnPool(Pool: unknown): Undo {
  const proto = (Pool as { prototype?: { acquire?: unknown } } | null)?.prototype;
  if (proto === undefined || proto === null || typeof proto.acquire !== 'function') throw new TypeError("instrumentTarnPool(Pool) needs tarn's Pool class.");
  return install(proto, 'tarn Pool', () =>
    applyAll([activate, patchMethod(proto, 'acquire', wrapAcquire), patchMethod(proto, 'release', wrapGiveBack), patchMethod(proto, '_create', wrapCreate)]),
  );
}
