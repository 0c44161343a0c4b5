import { ConfigError } from '../config.js';
import { logFailure } from '../core/guard.js';
import type { ResponseRecord, StackCapture } from '../core/records.js';
import { PG_POOL_WATCH } from '../core/marks.js';
import { applyAll, install, layerOf, ownerOf, wrapMethod, type Fn, type Layer, type Undo } from '../core/patch.js';
import { getRuntime, responseContext } from '../core/runtime.js';
import { captureStack } from '../core/stack.js';
import type { PgClient, PgPool } from './internal-types.js';
import { endpointName } from './naming.js';
import { trackClient, trackerOf } from './protocol.js';
import { activate, pgState } from './state.js';
import type { PgPoolStats, WatchPoolOptions } from './types.js';

/**
 * pg-pool checkouts: `connect()` (promise and callback), `query()`, and the release of a client in
 * every form (`release()`, `release(err)`, `release(true)`), seen through the pool's public
 * 'release' event.
 *
 * The owner is taken where `connect()` is *called*. A checkout that waits in the queue is handed
 * its client from inside another request's `release()` (that is also where pg-pool emits
 * 'acquire'), so the record is made in the caller's async context, kept from the call.
 */

type Watched = PgPool & { [PG_POOL_WATCH]?: PoolWatch };

export interface PoolWatch {
  readonly pool: WeakRef<PgPool>;
  name: string;
  /** Watched through watchPool() (rather than found at its first checkout). */
  explicit: boolean;
  undo: (() => void) | null;
  unwatch(): void;
}

function nameOption(pool: PgPool): string | undefined {
  const name = pool.options?.leakwatchName;
  return typeof name === 'string' && name.trim() !== '' ? name : undefined;
}

/** The pool's watch, made (with its 'release' listener) on first use. */
function watchOf(pool: PgPool): PoolWatch {
  const watched = pool as Watched;
  const existing = watched[PG_POOL_WATCH];
  if (existing !== undefined) return existing;
  const onRelease = (_error: unknown, client: unknown) => {
    try {
      if (client !== null && typeof client === 'object') trackerOf(client)?.release();
    } catch (error) {
      logFailure('pg pool release', error);
    }
  };
  const watch: PoolWatch = {
    pool: new WeakRef(pool),
    name: nameOption(pool) ?? endpointName(pool.options),
    explicit: false,
    undo: null,
    unwatch() {
      pool.removeListener('release', onRelease);
      if (watched[PG_POOL_WATCH] === watch) delete watched[PG_POOL_WATCH];
      pgState().pools.delete(watch);
    },
  };
  pool.on('release', onRelease);
  Object.defineProperty(watched, PG_POOL_WATCH, { value: watch, configurable: true, enumerable: false, writable: true });
  pgState().pools.add(watch);
  return watch;
}

/** One `connect()` call: who asked, from where, and for which pool. */
class Checkout {
  constructor(
    readonly watch: PoolWatch,
    readonly owner: ResponseRecord | undefined,
    readonly stack: StackCapture | null,
  ) {}

  /** Records the delivered client as held by the caller of `connect()`, whatever context we are in. */
  deliver(client: unknown): void {
    try {
      if (client === null || typeof client !== 'object') return;
      const ledger = getRuntime()?.ledger;
      if (ledger === undefined) return;
      const acquire = () => (trackerOf(client) ?? trackClient(client as PgClient, false)).acquire(ledger, this.watch.name, true, this.stack);
      if (responseContext.getStore() === this.owner) acquire();
      else responseContext.run(this.owner as ResponseRecord, acquire);
    } catch (error) {
      logFailure('pg pool checkout', error);
    }
  }

  /** The app's callback, called in the caller's async context after the client is recorded. */
  bind(callback: Fn): Fn {
    const checkout = this;
    return function (this: unknown, error: unknown, client: unknown, done: unknown) {
      if (!error) checkout.deliver(client);
      return responseContext.run(checkout.owner as ResponseRecord, () => callback.call(this, error, client, done));
    };
  }
}

// The stack of the app's pool.query() call, for the connect() it makes inside.
let queryStack: StackCapture | null | undefined;

function startCheckout(pool: PgPool, below: Function): Checkout {
  const stack = queryStack !== undefined ? queryStack : captureStack(pgState().stackFrames, below);
  return new Checkout(watchOf(pool), responseContext.getStore(), stack);
}

function wrapConnect(layer: Layer): Fn {
  const connect = function (this: PgPool, ...args: unknown[]) {
    if (!layer.active) return layer.original.apply(this, args);
    let checkout: Checkout | null = null;
    try {
      checkout = startCheckout(this, connect);
    } catch (error) {
      logFailure('pg pool.connect', error);
    }
    if (checkout === null) return layer.original.apply(this, args);
    if (typeof args[0] === 'function') return layer.original.call(this, checkout.bind(args[0] as Fn), ...args.slice(1));
    const result = layer.original.apply(this, args) as PromiseLike<unknown> | undefined;
    if (result === null || typeof result !== 'object' || typeof result.then !== 'function') return result;
    const delivering = checkout;
    // Rejections pass through untouched: only the fulfilment is observed.
    return result.then((client) => {
      delivering.deliver(client);
      return client;
    });
  };
  return connect as unknown as Fn;
}

function wrapQuery(layer: Layer): Fn {
  const query = function (this: PgPool, ...args: unknown[]) {
    if (!layer.active) return layer.original.apply(this, args);
    const previous = queryStack;
    // pool.query() releases its client itself when the query ends, so that checkout is never idle
    // in the app's hands and cannot leak by the idle rules; a stack per query (~11 us, the largest
    // cost on a pool.query endpoint in bench/realistic.bench.mjs) would buy nothing.
    queryStack = null;
    try {
      return layer.original.apply(this, args);
    } finally {
      queryStack = previous;
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

const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/**
 * The gauges of every watched pool, read now: pools given to watchPool() and pools of an
 * instrumented class from their first `connect()` or `query()` on. Ended and collected pools drop out.
 */
export function poolStats(): PgPoolStats[] {
  const stats: PgPoolStats[] = [];
  for (const watch of [...pgState().pools]) {
    const pool = watch.pool.deref();
    if (pool === undefined || pool.ended === true) {
      watch.unwatch();
      continue;
    }
    const total = count(pool.totalCount);
    const idle = count(pool.idleCount);
    stats.push({ name: watch.name, total, idle, used: Math.max(0, total - idle), pending: count(pool.waitingCount), max: count(pool.options?.max) });
  }
  return stats;
}
