import type { ConnectionKind, ResponseRecord, StackCapture } from './records.js';
import { steadyNow } from './clock.js';
import { DeadlineTimer } from './deadline-timer.js';
import { listenersOf, notifyListeners, type Listener } from './listeners.js';

/**
 * Checkouts that wait for a pool connection, and pools exhausted by them: a state machine beside
 * the ledger, fed by the pool instrumentations (pg-pool, tarn, sequelize-pool, generic-pool,
 * node-redis client pools), heard by observers installed from above (metrics, the exhaustion log).
 *
 * Every checkout gets the time it was asked for, beside the owner and the stack the checkout
 * records anyway. Only a checkout that *has to wait* (its pool is at its max and has no idle
 * connection for it) goes into its pool's waiters, so a pool that serves at once costs nothing
 * more. A pool is *exhausted* once it has had waiters without a break for the exhaustion threshold
 * and has no idle connection; the episode ends when no checkout waits for it any more.
 *
 * One unref'd timer (deadline-timer.ts: its check waits for the I/O a blocked loop has not heard
 * yet), armed only when a pool gets its first waiter (and, while a pool stays exhausted, once per
 * threshold), finds that moment: with a fixed set of waiters and no new traffic nothing else would.
 */

/** A pool's own counts, read from the library when asked. */
export interface PoolCounts {
  /** Connections it has: connecting, idle or checked out. */
  total: number;
  /** Connections waiting in the pool. */
  idle: number;
  /** Connections connecting or checked out. */
  used: number;
  /** Checkouts it has queued. */
  pending: number;
  /** Its max option; 0 when not known. */
  max: number;
}

/**
 * A checkout asked of a pool and not served yet. The hot paths' checkouts (pg's Checkout,
 * node-redis's PoolLease) implement it with fields of their own instead of extending it.
 */
export class PendingCheckout {
  /** It had to wait: it is in its pool's waiters until served or given up. */
  waiting = false;
  /** Its owner counts it among its pending checkouts until served or given up (see PoolWaits#asked). */
  ownerWaits = false;
  prevWaiter: PendingCheckout | null = null;
  nextWaiter: PendingCheckout | null = null;

  constructor(
    /** The response whose request asked for it; undefined outside any request. */
    readonly owner: ResponseRecord | undefined,
    /** Where it was asked for, as the checkout captured it (formatted only when read). */
    readonly stack: StackCapture | null,
    readonly requestedAt: number,
  ) {}
}

/**
 * Whether a checkout's library call needs its failure heard: it waits among the pool's waiters, or
 * its owner waits for it. Otherwise a rejection passes through without a handler of leakwatch's.
 */
export function endsOnFailure(checkout: PendingCheckout): boolean {
  return checkout.waiting || checkout.ownerWaits;
}

/**
 * The checkouts waiting for one pool, oldest first, and since when the pool has had waiters. The
 * links live on the checkouts: adding and removing allocates nothing.
 */
export class Waiters implements Iterable<PendingCheckout> {
  size = 0;
  head: PendingCheckout | null = null;
  private tail: PendingCheckout | null = null;
  /** When the pool last went from no waiter to one; 0 while none waits. */
  since = 0;
  /** When the current exhaustion began (the pool's waiters since then); 0 while not exhausted. */
  exhaustedSince = 0;

  add(checkout: PendingCheckout): void {
    if (checkout.waiting) return;
    checkout.waiting = true;
    checkout.prevWaiter = this.tail;
    checkout.nextWaiter = null;
    if (this.tail === null) this.head = checkout;
    else this.tail.nextWaiter = checkout;
    this.tail = checkout;
    this.size++;
  }

  /** Takes `checkout` out; false when it was not waiting. */
  delete(checkout: PendingCheckout): boolean {
    if (!checkout.waiting) return false;
    const prev = checkout.prevWaiter;
    const next = checkout.nextWaiter;
    if (prev === null) this.head = next;
    else prev.nextWaiter = next;
    if (next === null) this.tail = prev;
    else next.prevWaiter = prev;
    checkout.waiting = false;
    checkout.prevWaiter = checkout.nextWaiter = null;
    this.size--;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<PendingCheckout> {
    for (let c = this.head; c !== null; c = c.nextWaiter) yield c;
  }
}

/** One pool leakwatch follows, of any library. */
export interface WatchedPool {
  readonly kind: ConnectionKind;
  /** Its name in reports and metrics, as its connections' records have it; null until known. */
  name: string | null;
  readonly waiters: Waiters;
  /** The pool's own counts now; null once the pool is gone (ended, destroyed, collected). */
  counts(): PoolCounts | null;
}

/**
 * Whether a checkout asked for now has to wait: the pool is at its max and has no idle connection
 * left over for it (each checkout queued before it takes one). False when the counts cannot tell.
 */
export function mustWait(counts: PoolCounts | null): boolean {
  return counts !== null && mustWaitFor(counts.total, counts.idle, counts.pending, counts.max);
}

/** {@link mustWait} on the four counts it reads, for a caller that has them without a PoolCounts. */
export function mustWaitFor(total: number, idle: number, pending: number, max: number): boolean {
  return max > 0 && total >= max && idle <= pending;
}

/** Called on each transition; observers must not throw (they are guarded anyway). */
export interface PoolWaitObserver {
  /** A checkout has to wait (see {@link mustWait}); it is in `pool.waiters` now. */
  checkoutWaiting?(pool: WatchedPool, checkout: PendingCheckout): void;
  /** A checkout got its connection `waitedMs` after it asked, whether it had to wait or not. */
  checkoutServed?(pool: WatchedPool, waitedMs: number): void;
  /** The pool has had waiters for the threshold and has no idle connection; once per episode. */
  poolExhausted?(pool: WatchedPool): void;
  /** The pool is exhausted still, at a later check (one per threshold while it lasts). */
  poolStillExhausted?(pool: WatchedPool): void;
  /** No checkout waits for the pool any more: the exhaustion that began at `pool.waiters.exhaustedSince` is over. */
  poolRecovered?(pool: WatchedPool, exhaustedForMs: number): void;
}

type PoolWaitEvent = keyof PoolWaitObserver;
const POOL_WAIT_EVENTS: readonly PoolWaitEvent[] = ['checkoutWaiting', 'checkoutServed', 'poolExhausted', 'poolStillExhausted', 'poolRecovered'];

export interface PoolWaitsOptions {
  /** How long a pool may have waiters, with no idle connection, before it is exhausted. */
  exhaustionThresholdMs: number;
  /** Where a failure of an observer or a pool's counts goes; it must not throw. */
  onFailure: (what: string, error: unknown) => void;
  /** Milliseconds, only ever forward; the ledger's clock (clock.ts). Tests pass a manual one. */
  clock?: () => number;
  /** Arm the unref'd timer. Tests turn it off and call check(). */
  timer?: boolean;
}

export class PoolWaits {
  private readonly observers: PoolWaitObserver[] = [];
  /** Rebuilt as observers come and go: a transition calls only the observers that hear it. */
  private listeners = listenersOf<PoolWaitObserver, PoolWaitEvent>([], POOL_WAIT_EVENTS);
  /** Pools that have waiters (or had, until the next check). */
  private readonly waitingPools = new Set<WatchedPool>();
  private readonly clock: () => number;
  private readonly onFailure: (what: string, error: unknown) => void;
  private thresholdMs: number;
  /** Checks at the earliest exhaustion due; null when tests call check() themselves. */
  private readonly timer: DeadlineTimer | null;

  constructor(options: PoolWaitsOptions) {
    this.thresholdMs = options.exhaustionThresholdMs;
    this.onFailure = options.onFailure;
    this.clock = options.clock ?? steadyNow;
    this.timer = (options.timer ?? true) ? new DeadlineTimer(this.clock, this.onDue) : null;
  }

  get exhaustionThresholdMs(): number {
    return this.thresholdMs;
  }

  reconfigure(exhaustionThresholdMs: number): void {
    this.thresholdMs = exhaustionThresholdMs;
  }

  now(): number {
    return this.clock();
  }

  observe(observer: PoolWaitObserver): () => void {
    this.observers.push(observer);
    this.listeners = listenersOf(this.observers, POOL_WAIT_EVENTS);
    return () => {
      const i = this.observers.indexOf(observer);
      if (i < 0) return;
      this.observers.splice(i, 1);
      this.listeners = listenersOf(this.observers, POOL_WAIT_EVENTS);
    };
  }

  /**
   * `checkout` is asked of `pool` now; `mustWait` is what {@link mustWait} said before the pool was
   * asked. Its owner, an open response, waits for it until it is served or abandoned: queued behind
   * other requests, or while the pool connects a new connection for it. Meanwhile the response
   * waits on the pool, not on the app, and is not stalled (Ledger#checkResponse), as one waiting on
   * a command of a shared client is not. Every checkout counts, not only those that must wait: a
   * new connection can take as long to connect (a server that does not answer, a network cut) as a
   * queue takes to move.
   */
  asked(pool: WatchedPool, checkout: PendingCheckout, mustWait: boolean): void {
    const owner = checkout.owner;
    if (owner !== undefined && owner.closedAt === 0) {
      owner.pendingCheckouts++;
      checkout.ownerWaits = true;
    }
    if (mustWait) this.waiting(pool, checkout);
  }

  /** `checkout` has to wait for `pool` (its caller found {@link mustWait} true before asking). */
  waiting(pool: WatchedPool, checkout: PendingCheckout): void {
    const waiters = pool.waiters;
    waiters.add(checkout);
    if (waiters.size === 1) {
      waiters.since = checkout.requestedAt;
      this.waitingPools.add(pool);
      this.arm(checkout.requestedAt + this.thresholdMs);
    }
    this.notify(this.listeners.checkoutWaiting, 'checkoutWaiting', pool, checkout);
  }

  /** `checkout` got its connection at `now` (the time its record was made, when the caller has it). */
  served(pool: WatchedPool, checkout: PendingCheckout, now: number = this.clock()): void {
    this.leave(pool, checkout, now);
    this.notify(this.listeners.checkoutServed, 'checkoutServed', pool, Math.max(0, now - checkout.requestedAt));
  }

  /** `checkout` will not be served (it failed, timed out, or the pool went): it waits no more. */
  abandoned(pool: WatchedPool, checkout: PendingCheckout): void {
    this.leave(pool, checkout, this.clock());
  }

  /**
   * Applies the exhaustion rule to every pool with waiters, at `now`. Called by the timer; tests
   * call it directly.
   */
  check(now: number = this.clock()): number {
    let next = Infinity;
    for (const pool of [...this.waitingPools]) {
      const waiters = pool.waiters;
      if (waiters.size === 0) {
        this.waitingPools.delete(pool);
        continue;
      }
      const due = waiters.since + this.thresholdMs;
      if (now < due) {
        next = Math.min(next, due);
        continue;
      }
      let counts: PoolCounts | null;
      try {
        counts = pool.counts();
      } catch (error) {
        this.onFailure('reading a pool’s counts', error);
        counts = null;
      }
      if (counts === null) {
        this.waitingPools.delete(pool); // gone: its waiters are failed by the pool itself
        continue;
      }
      if (counts.idle === 0) {
        if (waiters.exhaustedSince === 0) {
          waiters.exhaustedSince = waiters.since;
          this.notify(this.listeners.poolExhausted, 'poolExhausted', pool);
        } else {
          this.notify(this.listeners.poolStillExhausted, 'poolStillExhausted', pool);
        }
      }
      next = Math.min(next, now + this.thresholdMs);
    }
    return next;
  }

  /** Stops the timer; the pools' waiters stay. */
  stop(): void {
    this.timer?.stop();
  }

  private leave(pool: WatchedPool, checkout: PendingCheckout, now: number): void {
    if (checkout.ownerWaits) {
      checkout.ownerWaits = false;
      checkout.owner!.pendingCheckouts--;
    }
    const waiters = pool.waiters;
    if (!waiters.delete(checkout) || waiters.size > 0) return;
    waiters.since = 0;
    const since = waiters.exhaustedSince;
    if (since === 0) return;
    waiters.exhaustedSince = 0;
    this.notify(this.listeners.poolRecovered, 'poolRecovered', pool, Math.max(0, now - since));
  }

  private arm(dueAt: number): void {
    this.timer?.arm(dueAt);
  }

  private readonly onDue = (now: number): void => {
    let next = Infinity;
    try {
      next = this.check(now);
    } catch (error) {
      this.onFailure('pool exhaustion check', error);
    }
    this.arm(next);
  };

  /** Calls `event`'s listeners (read by name by the caller, see src/core/listeners.ts). */
  private notify(listeners: ReadonlyArray<Listener<PoolWaitObserver>>, event: PoolWaitEvent, pool: WatchedPool, detail?: PendingCheckout | number): void {
    if (listeners.length > 0) notifyListeners(listeners, pool, detail, this.onFailure, 'pool wait observer', event);
  }
}
