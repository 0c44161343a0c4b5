import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../fixtures/pg-healthy.mjs';
import { poolStats } from '../../src/index.js';
import { close, listen, request, sleep, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';
import { getAndLeave, pgUrl, startLeakwatch } from './support.js';

let leakwatch: ReturnType<typeof startLeakwatch>;
beforeAll(() => {
  leakwatch = startLeakwatch({ responseThreshold: 1000, connectionThreshold: 300 });
});
afterAll(() => leakwatch.stop());

describe('instrumentPg(pg) › an app that uses pg correctly', () => {
  it('reports nothing: pool.query, try/finally, transactions, a 2 s pg_sleep under a 1 s threshold (pooled and on a shared client), a piped-with-pipeline stream, LISTEN clients made at start-up (bare and a pool checkout)', async () => {
    const { ledger } = leakwatch;
    const app = await createApp({ connectionString: pgUrl(), sleepSeconds: 2 });
    const port = await listen(app.server);
    const busyChecks: string[] = [];

    const sleeping = Promise.all([request(port, '/sleep'), request(port, '/shared-sleep')]);
    for (const path of ['/pool-query', '/try-finally', '/transaction', '/transaction?amount=x', '/notify']) {
      const reply = await request(port, path);
      expect(reply).not.toBe('aborted');
      expect((reply as { status: number }).status).toBeLessThan(500);
    }
    await getAndLeave(port, '/stream', 100);
    // Past the response threshold the sleeping request's client is busy, so it is not stalled.
    await sleep(1200);
    for (const record of ledger.held) busyChecks.push(record.state);
    expect(busyChecks).toContain('busy');
    expect(await sleeping).toMatchObject([
      { status: 200, body: 'slept' },
      { status: 200, body: 'slept on the shared client' },
    ]);
    await waitUntil(() => app.notifications.length === 1, 2000, 'the LISTEN client to be notified');
    await sleep(400); // one connection threshold more

    expect(ledger.leaks).toEqual([]);
    expect(reportOf(ledger).summary).toMatchObject({ leakedResponses: 0, leakedConnections: 0, resolved: 0 });
    // Only the clients made at start-up are still held, and they have no owner: never a leak by themselves.
    expect([...ledger.held].map((c) => ({ pooled: c.pooled, owner: c.owner, state: c.state }))).toEqual([
      { pooled: false, owner: null, state: 'subscriber' },
      { pooled: false, owner: null, state: 'idle' },
      { pooled: true, owner: null, state: 'subscriber' }, // the pool checkout that LISTENs, idle far past the threshold
    ]);
    const [stats] = poolStats().filter((s) => s.name === '127.0.0.1:5432/test');
    expect(stats).toMatchObject({ used: 1, pending: 0, max: 4 });

    await app.close();
    expect(poolStats()).toEqual([]);
    expect(ledger.held.size).toBe(0);
    await close(app.server);
  });
});
