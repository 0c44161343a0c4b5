import { logFailure } from '../core/guard.js';
import { applyAll, install, ownerOf, wrapMethod, type Fn, type Layer, type Undo } from '../core/patch.js';
import { runAsPoolWork } from '../core/runtime.js';
import { shared } from '../core/state.js';
import { endsOnFailure, type PoolCounts } from '../core/pool-waits.js';
import { addPoolWatch, adoptIntoPool, endCheckout, newWatchState, startCheckout, type Checkout, type PoolWatch } from '../pg/checkout.js';
import { activate } from '../pg/state.js';

/**
 * What the pool libraries' instrumentations share: one watch per pool object, found at its first
 * use, and the wrappers of the three moves every pool library makes: a checkout requested, a
 * resource given back (released or dropped), a resource the pool made received into it.
 */

export type { PoolCounts };

const watches = shared('poolLibraryWatches', () => new WeakMap<object, PoolWatch>());

/** The watch of a pool of some library, made on first use; `counts` reads the library's own counters. */
export function watchOf<P extends object>(pool: P, counts: (pool: P) => PoolCounts | null): PoolWatch {
  const existing = watches.get(pool);
  if (existing !== undefined) return existing;
  // Through the WeakRef: the set of watches must not keep an abandoned pool alive.
  const ref = new WeakRef(pool);
  let remove = () => {};
  const watch: PoolWatch = {
    ...newWatchState(),
    name: null,
    explicit: false,
    holdsPg: null,
    counts() {
      const p = ref.deref();
      return p === undefined ? null : counts(p);
    },
    unwatch() {
      const p = ref.deref();
      if (p !== undefined && watches.get(p) === watch) watches.delete(p);
      remove();
    },
  };
  watches.set(pool, watch);
  remove = addPoolWatch(watch);
  return watch;
}

/** The checkout a call to the pool's acquire asks for; null when it is not followed. */
export function requestCheckout<P extends object>(pool: P, counts: (pool: P) => PoolCounts | null, below: Function): Checkout | null {
  try {
    return startCheckout(watchOf(pool, counts), below);
  } catch (error) {
    logFailure('pool acquire', error);
    return null;
  }
}

/** `acquire()` returning a promise of the resource (sequelize-pool, generic-pool). */
export function wrapPromiseAcquire<P extends object>(counts: (pool: P) => PoolCounts | null) {
  return (layer: Layer): Fn => {
    const acquire = function (this: P, ...args: unknown[]) {
      if (!layer.active) return layer.original.apply(this, args);
      const checkout = requestCheckout(this, counts, acquire);
      const result = layer.original.apply(this, args) as PromiseLike<unknown> | undefined;
      if (checkout === null || result === null || typeof result !== 'object' || typeof result.then !== 'function') return result;
      // Rejections pass through untouched; a waiting checkout's ends its wait.
      return result.then(
        (resource) => {
          checkout.deliver(resource);
          return resource;
        },
        endsOnFailure(checkout) ? (error: unknown) => (checkout.fail(), Promise.reject(error)) : undefined,
      );
    };
    return acquire as unknown as Fn;
  };
}

/** A method whose first argument is a resource the pool takes back (`release`, `destroy`). */
export function wrapGiveBack(layer: Layer): Fn {
  return function (this: unknown, ...args: unknown[]) {
    if (layer.active) endCheckout(args[0]);
    return layer.original.apply(this, args);
  };
}

/** A method that puts a resource into the pool; `resourceOf` finds it among the arguments. */
export function wrapReceive<P extends object>(counts: (pool: P) => PoolCounts | null, resourceOf: (args: unknown[]) => unknown) {
  return (layer: Layer): Fn =>
    function (this: P, ...args: unknown[]) {
      if (layer.active) {
        try {
          adoptIntoPool(watchOf(this, counts), resourceOf(args));
        } catch (error) {
          logFailure('pool create', error);
        }
      }
      return layer.original.apply(this, args);
    };
}

/**
 * The method by which the pool makes a resource: it runs as the pool's own work, so the client it
 * connects is the pool's, not a bare client of whichever request's checkout set it off.
 */
export function wrapCreate(layer: Layer): Fn {
  return function (this: unknown, ...args: unknown[]) {
    if (!layer.active) return layer.original.apply(this, args);
    return runAsPoolWork(() => layer.original.apply(this, args));
  };
}

/** Wraps `name` where `proto`'s chain defines it; nothing when it has no such method. */
export function patchMethod(proto: object, name: string, wrap: (layer: Layer) => Fn): () => (() => void) | null {
  return () => {
    const owner = ownerOf(proto, name);
    return owner === null ? null : wrapMethod(owner, name, wrap);
  };
}

/**
 * A pool library whose `acquire()` promises a resource, which `release(resource)` and
 * `destroy(resource)` give back and `_createResource()` has the factory make (generic-pool,
 * sequelize-pool): what differs between them is how they count and which methods receive a resource.
 */
export interface PromisePoolLibrary<P extends object> {
  /** The package, as messages name it. */
  name: string;
  /** The function that instruments it, as its TypeError names it. */
  instrument: string;
  counts(pool: P): PoolCounts | null;
  /** Methods that receive a resource (made, reused or given back), and where their argument holds it. */
  receivers: Array<[method: string, resourceOf: (args: unknown[]) => unknown]>;
}

/** Instruments every pool of `Pool`, a class of `library`; shared by every caller, undone when the last lets go. */
export function instrumentPromisePool<P extends object>(Pool: unknown, library: PromisePoolLibrary<P>): Undo {
  const proto = (Pool as { prototype?: { acquire?: unknown } } | null)?.prototype;
  if (proto === undefined || proto === null || typeof proto.acquire !== 'function') {
    throw new TypeError(`${library.instrument}(Pool) needs ${library.name}'s Pool class.`);
  }
  const patch = (name: string, wrap: (layer: Layer) => Fn) => patchMethod(proto, name, wrap);
  return install(proto, `${library.name} Pool`, () =>
    applyAll([
      activate,
      patch('acquire', wrapPromiseAcquire(library.counts)),
      patch('release', wrapGiveBack),
      patch('destroy', wrapGiveBack),
      patch('_createResource', wrapCreate),
      ...library.receivers.map(([method, resourceOf]) => patch(method, wrapReceive(library.counts, resourceOf))),
    ]),
  );
}
