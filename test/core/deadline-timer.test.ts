import { describe, expect, it } from 'vitest';
import { DeadlineTimer } from '../../src/core/deadline-timer.js';
import { blockLoopUntil, sleep, waitUntil } from '../support/http.js';

/** The one timer of the ledger and of the pool waits: earliest deadline only, checked two loop turns after it fires. */

describe('DeadlineTimer', () => {
  it('checks once, at the earliest deadline armed, with the time it checks at', async () => {
    const checks: number[] = [];
    const timer = new DeadlineTimer(Date.now, (now) => void checks.push(now));
    const start = Date.now();
    timer.arm(start + 200);
    timer.arm(start + 40);
    timer.arm(start + 100); // later than the armed deadline: nothing changes
    await waitUntil(() => checks.length > 0, 2000, 'the check');
    expect(checks[0]).toBeGreaterThanOrEqual(start + 40);
    await sleep(Math.max(0, start + 300 - Date.now()));
    expect(checks).toHaveLength(1); // past every deadline armed: the check re-arms for what stays due; this one did not
    timer.stop();
  });

  it('keeps no process alive while it waits', () => {
    const timer = new DeadlineTimer(Date.now, () => {});
    timer.arm(Date.now() + 60_000);
    expect((timer as unknown as { timer: NodeJS.Timeout }).timer.hasRef()).toBe(false);
    timer.stop();
  });

  it('checks after the I/O that came while the loop was blocked past the deadline, not before', async () => {
    const order: string[] = [];
    const timer = new DeadlineTimer(Date.now, () => void order.push('check'));
    const start = Date.now();
    timer.arm(start + 50);
    // I/O ready during the block: a pipe written to before it, read after it.
    const { port1, port2 } = new MessageChannel();
    port2.on('message', () => void order.push('I/O'));
    await blockLoopUntil(start + 200, () => port1.postMessage('x'));
    await sleep(50);
    port1.close();
    expect(order).toEqual(['I/O', 'check']);
    timer.stop();
  });

  it('checks nothing once stopped, even when the timer has fired and the check is on its way', async () => {
    let checks = 0;
    const timer = new DeadlineTimer(Date.now, () => void checks++);
    timer.arm(Date.now());
    // Looks once per check phase. Queued before the timer fires, it runs ahead of the immediate the
    // timer queues in the same turn: it sees that one pending, the check still two immediates away.
    await new Promise<void>((resolve) => {
      const look = () => {
        if ((timer as unknown as { turn: unknown }).turn === null) return void setImmediate(look);
        timer.stop();
        resolve();
      };
      setImmediate(look);
    });
    await sleep(30);
    expect(checks).toBe(0);
    timer.arm(Date.now());
    await sleep(30);
    expect(checks).toBe(1); // armed again after stop()
    timer.stop();
  });
});
