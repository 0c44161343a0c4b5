import { describe, expect, it } from 'vitest';
import { mustWait, PendingCheckout, PoolWaits, Waiters, type PoolCounts, type WatchedPool } from '../../src/core/pool-waits.js';
import type { ResponseRecord } from '../../src/core/records.js';

/** The pure state machine of checkout waits and pool exhaustion, on a manual clock (no timer). */

function setUp(thresholdMs = 1000) {
  let now = 10_000;
  const failures: string[] = [];
  const waits = new PoolWaits({ exhaustionThresholdMs: thresholdMs, onFailure: (what) => failures.push(what), clock: () => now, timer: false });
  const events: string[] = [];
  waits.observe({
    checkoutWaiting: (pool) => void events.push(`waiting ${pool.name}`),
    checkoutServed: (pool, ms) => void events.push(`served ${pool.name} ${ms}`),
    poolExhausted: (pool) => void events.push(`exhausted ${pool.name} since ${pool.waiters.exhaustedSince}`),
    poolStillExhausted: (pool) => void events.push(`still ${pool.name}`),
    poolRecovered: (pool, ms) => void events.push(`recovered ${pool.name} after ${ms}`),
  });
  const counts: PoolCounts = { total: 3, idle: 0, used: 3, pending: 0, max: 3 };
  const pool: WatchedPool = { kind: 'pg', name: 'orders', waiters: new Waiters(), counts: () => counts };
  const ask = () => new PendingCheckout(undefined, null, now);
  return {
    waits,
    pool,
    counts,
    events,
    failures,
    ask,
    advance: (ms: number) => (now += ms),
    get now() {
      return now;
    },
  };
}

describe('mustWait(counts)', () => {
  it('is true only for a pool at its max with no idle connection left for one more checkout', () => {
    expect(mustWait({ total: 3, idle: 0, used: 3, pending: 0, max: 3 })).toBe(true);
    expect(mustWait({ total: 3, idle: 1, used: 2, pending: 1, max: 3 })).toBe(true); // the one idle is the queued checkout's
    expect(mustWait({ total: 3, idle: 1, used: 2, pending: 0, max: 3 })).toBe(false);
    expect(mustWait({ total: 2, idle: 0, used: 2, pending: 0, max: 3 })).toBe(false); // room for a new connection
    expect(mustWait({ total: 3, idle: 0, used: 3, pending: 0, max: 0 })).toBe(false); // max unknown: cannot tell
    expect(mustWait(null)).toBe(false);
  });
});

describe('PoolWaits', () => {
  describe('when a checkout is asked in a request', () => {
    it('counts it on its open owner until it is served or abandoned, and lists it as a waiter only when it must wait', () => {
      const t = setUp();
      const owner = { closedAt: 0, pendingCheckouts: 0 } as ResponseRecord;
      const served = new PendingCheckout(owner, null, t.now);
      t.waits.asked(t.pool, served, false);
      expect(owner.pendingCheckouts).toBe(1);
      expect(t.pool.waiters.size).toBe(0);
      const queued = new PendingCheckout(owner, null, t.now);
      t.waits.asked(t.pool, queued, true);
      expect(owner.pendingCheckouts).toBe(2);
      expect([...t.pool.waiters]).toEqual([queued]);
      t.waits.served(t.pool, served);
      expect(owner.pendingCheckouts).toBe(1);
      t.waits.abandoned(t.pool, queued);
      t.waits.abandoned(t.pool, queued); // twice: harmless
      expect(owner.pendingCheckouts).toBe(0);
      expect(t.pool.waiters.size).toBe(0);
    });

    it('does not count it on an owner that has closed, nor outside a request', () => {
      const t = setUp();
      const closed = { closedAt: 5, pendingCheckouts: 0 } as ResponseRecord;
      const late = new PendingCheckout(closed, null, t.now);
      t.waits.asked(t.pool, late, false);
      expect(closed.pendingCheckouts).toBe(0);
      t.waits.served(t.pool, late);
      expect(closed.pendingCheckouts).toBe(0);
      const outside = t.ask();
      t.waits.asked(t.pool, outside, false);
      expect(outside.ownerWaits).toBe(false);
    });
  });

  describe('when checkouts are served at once', () => {
    it('hears each one served, with its wait, and keeps no waiter', () => {
      const t = setUp();
      const checkout = t.ask();
      t.advance(3);
      t.waits.served(t.pool, checkout);
      expect(t.events).toEqual(['served orders 3']);
      expect(t.pool.waiters.size).toBe(0);
      expect(t.waits.check(t.now + 5000)).toBe(Infinity);
    });
  });

  describe('when checkouts wait', () => {
    it('lists them oldest first until each is served or abandoned, and counts each one that waited', () => {
      const t = setUp();
      const [a, b, c] = [t.ask(), t.ask(), t.ask()];
      for (const checkout of [a, b, c]) t.waits.waiting(t.pool, checkout);
      expect([...t.pool.waiters]).toEqual([a, b, c]);
      expect(t.pool.waiters.since).toBe(10_000);
      t.advance(200);
      t.waits.served(t.pool, b);
      t.waits.abandoned(t.pool, a);
      expect([...t.pool.waiters]).toEqual([c]);
      t.waits.served(t.pool, c);
      expect(t.pool.waiters.size).toBe(0);
      expect(t.pool.waiters.since).toBe(0);
      expect(t.events).toEqual(['waiting orders', 'waiting orders', 'waiting orders', 'served orders 200', 'served orders 200']);
    });

    it('is not exhausted before its waiters have waited the threshold', () => {
      const t = setUp();
      t.waits.waiting(t.pool, t.ask());
      expect(t.waits.check(t.now + 999)).toBe(t.now + 1000);
      expect(t.events).toEqual(['waiting orders']);
    });

    it('is exhausted once it has had waiters for the threshold with no idle connection, once per episode, and recovers when none waits', () => {
      const t = setUp();
      const first = t.ask();
      t.waits.waiting(t.pool, first);
      t.advance(600);
      const second = t.ask();
      t.waits.waiting(t.pool, second);
      t.advance(400);
      expect(t.waits.check(t.now)).toBe(t.now + 1000);
      expect(t.pool.waiters.exhaustedSince).toBe(10_000);
      t.advance(1000);
      t.waits.check(t.now);
      t.waits.served(t.pool, first);
      expect(t.pool.waiters.exhaustedSince).toBe(10_000); // one still waits
      t.advance(500);
      t.waits.served(t.pool, second);
      expect(t.events).toEqual([
        'waiting orders',
        'waiting orders',
        'exhausted orders since 10000',
        'still orders',
        'served orders 2000',
        'recovered orders after 2500',
        'served orders 1900',
      ]);
      expect(t.pool.waiters.exhaustedSince).toBe(0);
    });

    it('is not exhausted while it has an idle connection (the pool hands it over next)', () => {
      const t = setUp();
      t.waits.waiting(t.pool, t.ask());
      t.counts.idle = 1;
      t.advance(1500);
      expect(t.waits.check(t.now)).toBe(t.now + 1000);
      expect(t.events).toEqual(['waiting orders']);
    });

    it('starts a new episode after a moment with no waiter: the threshold counts from the new first waiter', () => {
      const t = setUp();
      const a = t.ask();
      t.waits.waiting(t.pool, a);
      t.advance(900);
      t.waits.served(t.pool, a);
      const b = t.ask();
      t.waits.waiting(t.pool, b);
      t.advance(900);
      expect(t.waits.check(t.now)).toBe(t.now + 100);
      expect(t.events.filter((e) => e.startsWith('exhausted'))).toEqual([]);
    });

    it('drops a pool that is gone (its counts are null) without an exhaustion', () => {
      const t = setUp();
      t.waits.waiting(t.pool, t.ask());
      const gone: WatchedPool = { ...t.pool, counts: () => null };
      t.waits.waiting(gone, t.ask());
      t.advance(2000);
      t.waits.check(t.now);
      expect(t.events.filter((e) => e.startsWith('exhausted'))).toEqual(['exhausted orders since 10000']);
    });
  });

  describe('when an observer throws', () => {
    it('hands the failure on and goes on with the other observers', () => {
      const t = setUp();
      t.waits.observe({
        checkoutWaiting: () => {
          throw new Error('boom');
        },
      });
      t.waits.waiting(t.pool, t.ask());
      expect(t.failures).toEqual(['pool wait observer checkoutWaiting']);
      expect(t.pool.waiters.size).toBe(1);
    });
  });

  describe('with its timer', () => {
    it('finds an exhaustion with no other traffic, and does not keep the process alive', async () => {
      const events: string[] = [];
      const waits = new PoolWaits({ exhaustionThresholdMs: 50, onFailure: () => {} });
      waits.observe({ poolExhausted: () => void events.push('exhausted') });
      const counts: PoolCounts = { total: 1, idle: 0, used: 1, pending: 1, max: 1 };
      const pool: WatchedPool = { kind: 'pg', name: 'p', waiters: new Waiters(), counts: () => counts };
      waits.waiting(pool, new PendingCheckout(undefined, null, waits.now()));
      const handle = (waits as unknown as { timer: { timer: NodeJS.Timeout } }).timer.timer;
      expect(handle.hasRef()).toBe(false);
      await new Promise((r) => setTimeout(r, 120));
      expect(events).toEqual(['exhausted']);
      waits.stop();
    });
  });
});
