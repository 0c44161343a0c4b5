import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/core/ledger.js';
import { PendingCheckout, PoolWaits, Waiters, type PoolCounts, type WatchedPool } from '../../src/core/pool-waits.js';
import type { ConnectionProbe, ResponseProbe, ResponseRecord } from '../../src/core/records.js';
import type { PoolReading } from '../../src/pools/followed.js';
import { installExhaustionLog, type ExhaustionLogEntry } from '../../src/report/exhaustion-log.js';

/**
 * The exhaustion line, on a manual clock: one per pool per interval while the pool stays exhausted,
 * exhaustions between lines counted in the next; its holders and waiting routes; json lines.
 */

const probe = (route: string): ResponseProbe => ({
  progress: () => 0,
  method: () => 'GET',
  path: () => route.replace(':id', '7'),
  route: () => route,
  endOverrides: () => [],
});
const pgProbe: ConnectionProbe = { serverIdentity: () => ({ pid: 4242 }) };

function setUp(format: 'text' | 'json' = 'text') {
  let now = 1_000_000;
  const clock = () => now;
  let current: ResponseRecord | undefined;
  const ledger = new Ledger({ responseThresholdMs: 60_000, connectionThresholdMs: 60_000, maxReportedLeaks: 100, onFailure: () => {}, currentResponse: () => current, clock, timer: false });
  const waits = new PoolWaits({ exhaustionThresholdMs: 1000, onFailure: () => {}, clock, timer: false });
  const counts: PoolCounts = { total: 2, idle: 0, used: 2, pending: 0, max: 2 };
  const pool: WatchedPool = { kind: 'pg', name: 'orders', waiters: new Waiters(), counts: () => counts };
  const lines: string[] = [];
  const undo = installExhaustionLog(waits, ledger, {
    format,
    log: (line) => void lines.push(line),
    intervalMs: 10_000,
    pools: (): PoolReading[] => [{ watch: pool, name: 'orders', counts }],
  });
  const inRequest = <T>(route: string, fn: () => T): T => {
    current = ledger.openResponse({}, probe(route));
    try {
      return fn();
    } finally {
      current = undefined;
    }
  };
  // Two holders: one idle in a transaction since t0, one busy since t0 + 100.
  const tx = inRequest('/orders/:id', () => ledger.acquireConnection({ kind: 'pg', pool: 'orders', pooled: true, target: {}, probe: pgProbe }));
  ledger.setIdleState(tx, 'idle-in-transaction');
  now += 100;
  const busy = inRequest('/reports/:id', () => ledger.acquireConnection({ kind: 'pg', pool: 'orders', pooled: true, target: {}, probe: pgProbe, busy: true }));
  const wait = (route: string) => {
    const checkout = inRequest(route, () => new PendingCheckout(current, null, now));
    waits.waiting(pool, checkout);
    return checkout;
  };
  return { ledger, waits, pool, counts, lines, undo, wait, tx, busy, advance: (ms: number) => (now += ms), now: () => now };
}

describe('installExhaustionLog()', () => {
  describe('when a pool stays exhausted', () => {
    it('writes one line when it becomes exhausted, naming its holders, longest held first, and the waiting routes', () => {
      const t = setUp();
      t.wait('/orders/:id');
      t.advance(300);
      t.wait('/orders/:id');
      t.wait('/health');
      t.advance(700);
      t.waits.check();
      expect(t.lines).toEqual([
        'pool exhausted: postgresql orders has had checkouts waiting with no idle connection for 1.0 s (2 of max 2 used, 0 idle, 0 queued; 3 waiting, longest 1.0 s: 2 × GET /orders/:id, 1 × GET /health); ' +
          `held longest by ${t.tx.id} idle-in-transaction 1.1 s, held 1.1 s, by ${t.tx.owner!.id} GET /orders/:id (path /orders/7) open 1.1 s, server pid 4242; ` +
          `${t.busy.id} busy, held 1.0 s, by ${t.busy.owner!.id} GET /reports/:id (path /reports/7) open 1.0 s, server pid 4242`,
      ]);
    });

    it('writes at most one more per interval while it lasts, saying so', () => {
      const t = setUp();
      t.wait('/orders/:id');
      for (let i = 0; i < 25; i++) {
        t.advance(1000);
        t.waits.check();
      }
      expect(t.lines.map((line) => line.split(':')[0])).toEqual(['pool exhausted', 'pool still exhausted', 'pool still exhausted']);
      expect(t.lines[1]).toMatch(/^pool still exhausted: postgresql orders, for 11\.0 s \(/);
    });

    it('counts the exhaustions that begin within an interval of the last line in the next line, and writes none for them', () => {
      const t = setUp();
      for (let episode = 0; episode < 3; episode++) {
        const checkout = t.wait('/orders/:id');
        t.advance(1000);
        t.waits.check();
        t.waits.served(t.pool, checkout);
        t.advance(2000);
      }
      expect(t.lines).toHaveLength(1);
      t.advance(10_000);
      t.wait('/orders/:id');
      t.advance(1000);
      t.waits.check();
      expect(t.lines).toHaveLength(2);
      expect(t.lines[1]).toMatch(/; 2 more exhaustions of this pool since the last line$/);
    });
  });

  describe('when the pool has an idle connection or its waiters are served within the threshold', () => {
    it('writes nothing', () => {
      const t = setUp();
      const checkout = t.wait('/orders/:id');
      t.advance(900);
      t.waits.served(t.pool, checkout);
      t.wait('/orders/:id');
      t.counts.idle = 1;
      t.advance(1500);
      t.waits.check();
      expect(t.lines).toEqual([]);
    });
  });

  describe('when the format is json', () => {
    it('writes one object per line with the same facts', () => {
      const t = setUp('json');
      t.wait('/orders/:id');
      t.advance(1000);
      t.waits.check();
      expect(t.lines).toHaveLength(1);
      const entry = JSON.parse(t.lines[0]) as ExhaustionLogEntry & { level: string; msg: string };
      expect(entry).toMatchObject({
        level: 'warn',
        event: 'exhausted',
        type: 'pool',
        kind: 'pg',
        pool: 'orders',
        exhaustedForMs: 1000,
        waiting: 1,
        longestWaitMs: 1000,
        waitingRoutes: [{ method: 'GET', route: '/orders/:id', count: 1 }],
        held: 2,
        counts: { used: 2, max: 2, idle: 0 },
        notLogged: 0,
      });
      expect(entry.holders.map((h) => [h.connection, h.state, h.owner?.route])).toEqual([
        [t.tx.id, 'idle-in-transaction', '/orders/:id'],
        [t.busy.id, 'busy', '/reports/:id'],
      ]);
      expect(entry.msg).toMatch(/^pool exhausted: postgresql orders/);
    });
  });

  describe('after its undo', () => {
    it('writes nothing more', () => {
      const t = setUp();
      t.undo();
      t.wait('/orders/:id');
      t.advance(1000);
      t.waits.check();
      expect(t.lines).toEqual([]);
    });
  });
});
