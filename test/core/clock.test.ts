import { afterEach, describe, expect, it, vi } from 'vitest';
import { steadyNow, wallOffset } from '../../src/core/clock.js';
import { Ledger } from '../../src/core/ledger.js';
import { PendingCheckout, PoolWaits, Waiters, type WatchedPool } from '../../src/core/pool-waits.js';
import type { ResponseProbe } from '../../src/core/records.js';
import { buildReport } from '../../src/report/json.js';

/**
 * The leak rules measure time on the monotonic clock, and dates are written on the wall clock.
 * The wall clock is stepped here by stubbing `Date.now` (as NTP, an operator or a resumed VM step
 * it); the ledger and the pool waits are made after the stub, on their default clock, so one that
 * read `Date.now` would take the step for time that passed.
 */

const HOUR = 3_600_000;
let step = 0;

function stubWallClock(): void {
  const realNow = Date.now.bind(Date);
  vi.spyOn(Date, 'now').mockImplementation(() => realNow() + step);
}

afterEach(() => {
  vi.restoreAllMocks();
  step = 0;
});

const probe: ResponseProbe = { progress: () => 0, method: () => 'GET', path: () => '/slow', route: () => '/slow', endOverrides: () => [] };
const newLedger = () => new Ledger({ responseThresholdMs: 30_000, connectionThresholdMs: 30_000, maxReportedLeaks: 10, onFailure: () => {}, currentResponse: () => undefined, timer: false });

describe('the ledger on its default clock', () => {
  it('does not take a step of the wall clock forward for time that passed: an open response is not leaked', () => {
    stubWallClock();
    const ledger = newLedger();
    ledger.openResponse({}, probe);
    step = HOUR;
    ledger.sweep();
    expect(ledger.totals.leakedResponses).toBe(0);
    expect(ledger.leakedOpen.size).toBe(0);
  });

  it('still finds a leak when the threshold has passed on the monotonic clock, whatever the wall clock did', async () => {
    stubWallClock();
    const ledger = new Ledger({ responseThresholdMs: 20, connectionThresholdMs: 20, maxReportedLeaks: 10, onFailure: () => {}, currentResponse: () => undefined, timer: false });
    ledger.openResponse({}, probe);
    step = -HOUR;
    await new Promise((resolve) => setTimeout(resolve, 40));
    ledger.sweep();
    expect(ledger.totals.leakedResponses).toBe(1);
  });

  it("writes a report's dates on the wall clock as it reads now, and its ages as the time that passed", () => {
    stubWallClock();
    const ledger = newLedger();
    const startedAt = ledger.now();
    ledger.openResponse({}, probe);
    step = HOUR;
    ledger.finalize();
    const report = buildReport(ledger, startedAt);
    const [response] = report.leakedResponses;
    expect(response.reason).toBe('open-at-exit');
    expect(response.ageMs).toBeLessThan(1000);
    // The dates agree with the ages, and with the wall clock after the step.
    expect(Date.parse(report.endedAt) - Date.parse(response.startedAt)).toBe(response.ageMs);
    expect(Math.abs(Date.parse(report.endedAt) - Date.now())).toBeLessThan(1000);
    expect(Math.abs(Date.parse(report.startedAt) - Date.parse(response.startedAt))).toBeLessThan(1000);
  });

  it('on a manual clock (tests) takes that clock for the wall clock too, whatever Date.now() says', () => {
    stubWallClock();
    step = HOUR;
    const ledger = new Ledger({ responseThresholdMs: 100, connectionThresholdMs: 100, maxReportedLeaks: 10, onFailure: () => {}, currentResponse: () => undefined, clock: () => 5000, timer: false });
    expect(ledger.wallOffset()).toBe(0);
    expect(buildReport(ledger, 5000).endedAt).toBe(new Date(5000).toISOString());
  });
});

describe('the pool waits on their default clock', () => {
  it('do not call a pool exhausted because the wall clock was stepped forward while a checkout waited', () => {
    stubWallClock();
    const exhausted: string[] = [];
    const waits = new PoolWaits({ exhaustionThresholdMs: 30_000, onFailure: () => {}, timer: false });
    waits.observe({ poolExhausted: (pool) => void exhausted.push(pool.name) });
    const pool: WatchedPool = { kind: 'pg', name: 'orders', waiters: new Waiters(), counts: () => ({ total: 3, idle: 0, used: 3, pending: 1, max: 3 }) };
    waits.waiting(pool, new PendingCheckout(undefined, null, waits.now()));
    step = HOUR;
    waits.check();
    expect(exhausted).toEqual([]);
  });
});

describe('steadyNow() and wallOffset()', () => {
  it('read the epoch in whole milliseconds, and the offset follows a step of the wall clock but not a millisecond of rounding', () => {
    expect(Number.isInteger(steadyNow())).toBe(true);
    expect(Math.abs(Date.now() - steadyNow())).toBeLessThan(50);
    // The wall clock read as the monotonic one plus `apart`: the two clocks' whole milliseconds
    // part by one now and then, which must not move the dates; an hour is a step.
    let apart = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => steadyNow() + apart);
    expect(wallOffset()).toBe(0);
    apart = 1;
    expect(wallOffset()).toBe(0);
    apart = 0;
    expect(wallOffset()).toBe(0);
    apart = HOUR;
    expect(wallOffset()).toBe(HOUR);
  });
});
