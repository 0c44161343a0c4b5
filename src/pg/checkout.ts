import { steadyNow } from '../core/clock.js';
import { logFailure } from '../core/guard.js';
import { mustWait, mustWaitFor, Waiters, type PendingCheckout, type PoolCounts, type WatchedPool } from '../core/pool-waits.js';
import type { StackCapture } from '../core/records.js';
import type { Fn } from '../core/patch.js';
import { currentResponse, getRuntime } from '../core/runtime.js';
import { captureStack } from '../core/stack.js';
import type { PgClient } from './internal-types.js';
import { clientEndpointName } from './naming.js';
import { trackClient, trackerOf } from './protocol.js';
import { pgState } from './state.js';
import type { PgPoolStats } from './types.js';

/**
 * A checkout of a pg client from a pool, whichever library keeps the pool (pg-pool, tarn,
 * sequelize-pool, generic-pool): who asked, from where, and the record of the client while it is
 * checked out.
 *
 * The owner is taken where the checkout is *requested* (`pool.connect()`, `pool.acquire()`), in
 * that caller's async context, and re-taken at every checkout. A request that waits in the pool's
 * queue is handed its client from inside another request's release, so the record is made in the
 * requester's context, kept from the call. A client idle in its pool is held by nobody.
 *
 * A checkout asked of a pool at its max with no idle client waits among the pool's waiters
 * (src/core/pool-waits.ts) until it is served or fails.
 */

/** One pool of pg clients leakwatch follows, whatever library keeps it. */
export interface PoolWatch extends WatchedPool {
  readonly kind: 'pg';
  /** The pool's name in reports and metrics; null until known (a pool is named after its first client). */
  name: string | null;
  /** Watched through watchPool() (rather than found at its first checkout). */
  explicit: boolean;
  /** Whether the pool holds pg clients; null until its first client is seen (a generic pool may hold anything). */
  holdsPg: boolean | null;
  /** The pool's own counts now; null once the pool is gone (ended, destroyed, collected). */
  counts(): PoolCounts | null;
  unwatch(): void;
}

/** The fields every pool watch starts with, besides its counts and unwatch. */
export function newWatchState(): { kind: 'pg'; waiters: Waiters } {
  return { kind: 'pg', waiters: new Waiters() };
}

/** A pg `Client` (from any copy of pg): what a pool library hands out when it pools pg. */
export function isPgClient(value: unknown): value is PgClient {
  if (value === null || typeof value !== 'object') return false;
  if (trackerOf(value) !== undefined) return true;
  const client = value as Partial<PgClient>;
  return typeof client.query === 'function' && typeof client.connect === 'function' && typeof client.connectionParameters === 'object';
}

/**
 * Declares PendingCheckout's fields itself rather than extending it: a derived class's constructor
 * looks up its base class's on every checkout (FindNonDefaultConstructorOrConstruct in a profile).
 */
export class Checkout implements PendingCheckout {
  waiting = false;
  ownerWaits = false;
  prevWaiter: PendingCheckout | null = null;
  nextWaiter: PendingCheckout | null = null;

  constructor(
    readonly watch: PoolWatch,
    readonly owner: PendingCheckout['owner'],
    readonly stack: PendingCheckout['stack'],
    readonly requestedAt: number,
    /** Released by the library as soon as its query ends (see ConnectionInit.selfReleasing). */
    readonly selfReleasing: boolean,
  ) {}

  /** Records the delivered client as held by the requester, whatever context we are in. */
  deliver(client: unknown): void {
    try {
      const watch = this.watch;
      const runtime = getRuntime();
      if (!isPgClient(client)) {
        watch.holdsPg ??= false; // a pool of something else (knex on mysql): its checkouts are not followed
        runtime?.waits.abandoned(watch, this);
        return;
      }
      watch.holdsPg = true;
      if (runtime === undefined) return;
      const ledger = runtime.ledger;
      const name = (watch.name ??= clientEndpointName(client.connectionParameters));
      // Followed on the wire from its first checkout that is not self-releasing (ClientTracker#follow).
      const tracker = trackerOf(client) ?? trackClient(client, false, false);
      // The requester's, whatever context the pool delivers in (a release that served a queued checkout).
      const record = tracker.acquire(ledger, name, true, this.stack, this.owner ?? null, this.selfReleasing);
      runtime.waits.served(watch, this, record.acquiredAt);
    } catch (error) {
      logFailure('pg pool checkout', error);
      this.fail(); // not left waiting, nor its owner waiting for it
    }
  }

  /** The checkout failed (timed out, the pool ended): it waits no more. */
  fail(): void {
    try {
      getRuntime()?.waits.abandoned(this.watch, this);
    } catch (error) {
      logFailure('pg pool checkout', error);
    }
  }
}

/**
 * A checkout requested now, before the pool is asked: whether it has to wait is read from the
 * pool's counts as they are before it queues (`mustWaitNow`, where the caller has the pool at
 * hand and tells it from the pool's fields, see {@link mustWaitWith}; else the watch reads the
 * counts through its WeakRef, which costs a call into V8's runtime). Its acquisition stack is
 * captured here unless a caller above said where it comes from (see {@link withCheckoutSite}).
 */
export function startCheckout(watch: PoolWatch, below: Function, mustWaitNow?: boolean): Checkout | null {
  if (watch.holdsPg === false) return null;
  const state = pgState();
  const site = state.checkoutSite;
  const stack = site !== undefined ? site : captureStack(state.stackFrames, below);
  const waits = getRuntime()?.waits;
  // A checkout a module's top-level code makes (a LISTEN client, a warm-up) is that module's, even
  // when the module loads during a request: the ledger checks the stack for that only when a leak
  // rule would blame the request (ConnectionInit.ownerUnverified), not on every checkout.
  const checkout = new Checkout(watch, currentResponse(), stack, waits?.now() ?? steadyNow(), site === null);
  waits?.asked(watch, checkout, mustWaitNow ?? mustWait(watch.counts()));
  return checkout;
}

/**
 * The acquisition stack of the checkouts requested from now until {@link leaveCheckoutSite}:
 * `null` for a checkout the library releases itself as soon as its query ends (`pool.query()`, a
 * knex query), which is never idle in the app's hands, needs no stack and is recorded as
 * self-releasing (ConnectionInit.selfReleasing); a capture made earlier where the app's own frames
 * were still on the stack (`knex.transaction()`). Returns the site it replaces, to give back.
 */
export function enterCheckoutSite(site: StackCapture | null): StackCapture | null | undefined {
  const state = pgState();
  const previous = state.checkoutSite;
  state.checkoutSite = site;
  return previous;
}

export function leaveCheckoutSite(previous: StackCapture | null | undefined): void {
  pgState().checkoutSite = previous;
}

/**
 * Calls `fn` (which requests a checkout synchronously) on `thisArg` with `args`, with the
 * checkout's acquisition stack given (see {@link enterCheckoutSite}). Takes the call apart rather
 * than a closure. `pool.query()`, the hot path, enters and leaves itself, to pass its `arguments`
 * on as V8 forwards them.
 */
export function withCheckoutSite(site: StackCapture | null, fn: Fn, thisArg: unknown, args: unknown[]): unknown {
  const previous = enterCheckoutSite(site);
  try {
    return fn.apply(thisArg, args);
  } finally {
    leaveCheckoutSite(previous);
  }
}

/** The pool took the client back (released it, or dropped it): it is no longer held. */
export function endCheckout(client: unknown): void {
  try {
    if (client !== null && typeof client === 'object') trackerOf(client)?.release();
  } catch (error) {
    logFailure('pg pool release', error);
  }
}

/**
 * The pool received a client it made (connected inside its `create`, maybe in some request's
 * context): from now on the client is held only while checked out.
 */
export function adoptIntoPool(watch: PoolWatch, client: unknown): void {
  try {
    if (!isPgClient(client)) {
      watch.holdsPg ??= false;
      return;
    }
    watch.holdsPg = true;
    watch.name ??= clientEndpointName(client.connectionParameters);
    trackerOf(client)?.adoptIntoPool();
  } catch (error) {
    logFailure('pg pool create', error);
  }
}

/** Registers a pool's watch with the gauges of {@link poolStats}; the returned function takes it out. */
export function addPoolWatch(watch: PoolWatch): () => void {
  const pools = pgState().pools;
  pools.add(watch);
  return () => pools.delete(watch);
}

const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/**
 * {@link mustWait} on a pool's counts as the pool library keeps them (normalised as
 * {@link poolCounts} does), without making a {@link PoolCounts}: what a checkout asks on every call.
 */
export function mustWaitWith(total: unknown, idle: unknown, pending: unknown, max: unknown): boolean {
  return mustWaitFor(count(total), count(idle), count(pending), count(max));
}

/** Normalised counts; `used` is `total - idle` where a library does not count it itself. */
export function poolCounts(total: unknown, idle: unknown, pending: unknown, max: unknown, used?: unknown): PoolCounts {
  const t = count(total);
  const i = count(idle);
  return { total: t, idle: i, used: used === undefined ? Math.max(0, t - i) : count(used), pending: count(pending), max: count(max) };
}

/** A followed pool, named, with its counts read now. */
export interface PoolReading<W extends WatchedPool = WatchedPool> {
  watch: W;
  name: string;
  counts: PoolCounts;
}

/**
 * Every followed pool of pg clients, read now: pools given to watchPool() and pools found at their
 * first checkout, of any library. Ended and collected pools drop out; a pool whose name is not
 * known yet (no client seen) is left out.
 */
export function readPgPools(): Array<PoolReading<PoolWatch>> {
  const readings: Array<PoolReading<PoolWatch>> = [];
  for (const watch of [...pgState().pools]) {
    let counts: PoolCounts | null;
    try {
      counts = watch.counts();
    } catch (error) {
      logFailure('reading a pool’s counts', error);
      continue;
    }
    if (counts === null) {
      watch.unwatch();
      continue;
    }
    if (watch.name !== null) readings.push({ watch, name: watch.name, counts });
  }
  return readings;
}

/** The gauges of every followed pool of pg clients, read now (see readPgPools()). */
export function poolStats(): PgPoolStats[] {
  return readPgPools().map(({ name, counts }) => ({ name, ...counts }));
}
