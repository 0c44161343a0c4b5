import { ConfigError } from '../config.js';
import { logFailure } from '../core/guard.js';
import { PG_POOL_WATCH } from '../core/marks.js';
import type { ResponseRecord } from '../core/records.js';
import { currentResponse, responseContext } from '../core/runtime.js';
import { applyAll, install, layerOf, ownerOf, wrapMethod, type Fn, type Layer, type Undo } from '../core/patch.js';
import { endsOnFailure, type PoolCounts } from '../core/pool-waits.js';
import { addPoolWatch, endCheckout, enterCheckoutSite, leaveCheckoutSite, mustWaitWith, newWatchState, poolCounts, startCheckout, type Checkout, type PoolWatch } from './checkout.js';
import { isSubmittable } from './client.js';
import type { PgPool } from './internal-types.js';
import { endpointName } from './naming.js';
import { activate, pgState } from './state.js';
import type { WatchPoolOptions } from './types.js';

/**
 * pg-pool checkouts: `connect()` (promise and callback), `query()`, and the release of a client in
 * every form (`release()`, `release(err)`, `release(true)`), seen through the pool's public
 * 'release' event. typeorm, kysely, drizzle, pg-promise and Prisma's adapter-pg pool through it.
 *
 * The owner is taken where `connect()` is *called* (see checkout.ts); pg-pool emits 'acquire'
 * inside the release that served a queued checkout, in the releaser's context, so it is not used.
 */

type Watched = PgPool & { [PG_POOL_WATCH]?: PgPoolWatch };

interface PgPoolWatch extends PoolWatch {
  name: string;
  undo: (() => void) | null;
}

function nameOption(pool: PgPool): string | undefined {
  const name = pool.options?.leakwatchName;
  return typeof name === 'string' && name.trim() !== '' ? name : undefined;
}

/** What pg-pool counts now; null once it has ended. */
function countsOf(pool: PgPool): PoolCounts | null {
  return pool.ended === true ? null : poolCounts(pool.totalCount, pool.idleCount, pool.waitingCount, pool.options?.max);
}

/** Whether a checkout asked of the pool now has to wait: mustWait() on {@link countsOf}, without making the counts. */
function mustWaitOn(pool: PgPool): boolean {
  return pool.ended !== true && mustWaitWith(pool.totalCount, pool.idleCount, pool.waitingCount, pool.options?.max);
}

/** The pool's watch, made (with its 'release' listener) on first use. */
function watchOf(pool: PgPool): PgPoolWatch {
  const watched = pool as Watched;
  const existing = watched[PG_POOL_WATCH];
  if (existing !== undefined) return existing;
  const onRelease = (_error: unknown, client: unknown) => endCheckout(client);
  const ref = new WeakRef(pool);
  let remove = () => {};
  const watch: PgPoolWatch = {
    ...newWatchState(),
    name: nameOption(pool) ?? endpointName(pool.options),
    explicit: false,
    holdsPg: true,
    undo: null,
    counts() {
      const p = ref.deref();
      return p === undefined ? null : countsOf(p);
    },
    unwatch() {
      // Through the WeakRef: the set of watches must not keep an abandoned pool alive.
      const p = ref.deref() as Watched | undefined;
      p?.removeListener('release', onRelease);
      if (p !== undefined && p[PG_POOL_WATCH] === watch) delete p[PG_POOL_WATCH];
      remove();
    },
  };
  pool.on('release', onRelease);
  Object.defineProperty(watched, PG_POOL_WATCH, { value: watch, configurable: true, enumerable: false, writable: true });
  remove = addPoolWatch(watch);
  return watch;
}

/** The app's callback, called in the caller's async context after the client is recorded. */
function bindCallback(checkout: Checkout, callback: Fn): Fn {
  return function (this: unknown, error: unknown, client: unknown, done: unknown) {
    if (!error) checkout.deliver(client);
    else checkout.fail();
    // Entered only when the callback comes from another context (a release served this queued checkout).
    if (currentResponse() === checkout.owner) return callback.call(this, error, client, done);
    return responseContext.run(checkout.owner as ResponseRecord, () => callback.call(this, error, client, done));
  };
}

// The wrappers pass `arguments` through (a call V8 forwards as it is) rather than a rest array:
// pool.query() goes through two of them on every request.
type Args = unknown[];

function wrapConnect(layer: Layer): Fn {
  const connect = function (this: PgPool, callback?: unknown) {
    if (!layer.active) return layer.original.apply(this, arguments as unknown as Args);
    let checkout: Checkout | null = null;
    try {
      checkout = startCheckout(watchOf(this), connect, mustWaitOn(this));
    } catch (error) {
      logFailure('pg pool.connect', error);
    }
    if (checkout === null) return layer.original.apply(this, arguments as unknown as Args);
    if (typeof callback === 'function') {
      const bound = bindCallback(checkout, callback as Fn);
      if (arguments.length === 1) return layer.original.call(this, bound);
      const args = Array.prototype.slice.call(arguments) as Args;
      args[0] = bound;
      return layer.original.apply(this, args);
    }
    const result = layer.original.apply(this, arguments as unknown as Args) as PromiseLike<unknown> | undefined;
    if (result === null || typeof result !== 'object' || typeof result.then !== 'function') return result;
    const delivering = checkout;
    // Rejections pass through untouched; a waiting checkout's ends its wait.
    return result.then(
      (client) => {
        delivering.deliver(client);
        return client;
      },
      endsOnFailure(delivering) ? (error: unknown) => (delivering.fail(), Promise.reject(error)) : undefined,
    );
  };
  return connect as unknown as Fn;
}

function wrapQuery(layer: Layer): Fn {
  const query = function (this: PgPool, config?: unknown) {
    // A cursor or stream given to pool.query() is not released when its query ends (pg-pool waits
    // for a callback it may never call): that checkout is followed as connect()'s are.
    if (!layer.active || isSubmittable(config)) return layer.original.apply(this, arguments as unknown as Args);
    // pool.query() releases its client itself when the query ends, so that checkout is never idle
    // in the app's hands and cannot leak by the idle rules; a stack per query (~11 us, the largest
    // cost on a pool.query endpoint in bench/realistic.bench.mjs) would buy nothing.
    const previous = enterCheckoutSite(null);
    try {
      return layer.original.apply(this, arguments as unknown as Args);
    } finally {
      leaveCheckoutSite(previous);
    }
  };
  return query as unknown as Fn;
}

function wrapNewClient(layer: Layer): Fn {
  return function newClient(this: PgPool, ...args: unknown[]) {
    if (!layer.active) return layer.original.apply(this, args);
    const state = pgState();
    state.poolClientDepth++;
    try {
      return layer.original.apply(this, args);
    } finally {
      state.poolClientDepth--;
    }
  };
}

const POOL_METHODS: Array<[string, (layer: Layer) => Fn]> = [
  ['connect', wrapConnect],
  ['query', wrapQuery],
  ['newClient', wrapNewClient],
];

function isPool(value: unknown): value is PgPool {
  const pool = value as PgPool | null;
  return pool !== null && typeof pool === 'object' && typeof pool.connect === 'function' && typeof pool.on === 'function' && 'totalCount' in pool;
}

/**
 * Instruments every pool of a pg-pool `Pool` class (pg's `Pool` inherits it) by patching its
 * prototype. Shared by every caller; undone when the last one lets go.
 */
export function instrumentPoolClass(Pool: unknown): Undo {
  const proto = (Pool as { prototype?: object } | null)?.prototype;
  if (proto === undefined || proto === null || typeof (proto as PgPool).connect !== 'function') {
    throw new TypeError('instrumentPoolClass(Pool) needs the Pool class of pg or pg-pool.');
  }
  return install(ownerOf(proto, 'connect') ?? proto, 'pg Pool', () =>
    applyAll([
      activate,
      ...POOL_METHODS.map(([name, wrap]) => () => {
        const owner = ownerOf(proto, name);
        return owner === null ? null : wrapMethod(owner, name, wrap);
      }),
    ]),
  );
}

/**
 * Follows one pool: its checkouts (when its class is not instrumented already, by patching this
 * pool alone) and its gauges in {@link poolStats}. Calling it again for the same pool returns the
 * same undo; the undo gives the pool back its own methods exactly.
 */
export function watchPool(pool: unknown, options: WatchPoolOptions = {}): Undo {
  if (!isPool(pool)) throw new TypeError('watchPool(pool) needs a pg Pool (new pg.Pool(...)).');
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.trim() === '')) {
    throw new ConfigError(`watchPool option name is ${JSON.stringify(options.name)}; give a non-empty string, or leave it out to use host:port/database.`);
  }
  const watch = watchOf(pool);
  if (options.name !== undefined) watch.name = options.name;
  if (watch.undo !== null) return watch.undo;
  watch.explicit = true;
  // Patched on the pool itself only when its class is not instrumented already.
  const classPatched = layerOf(pool.connect) !== undefined;
  const undo = applyAll([
    activate,
    ...POOL_METHODS.map(([name, wrap]) => () => (classPatched ? null : wrapMethod(pool, name, wrap))),
    () => () => watch.unwatch(),
  ]);
  watch.undo = undo;
  return undo;
}

export { poolStats } from './checkout.js';
