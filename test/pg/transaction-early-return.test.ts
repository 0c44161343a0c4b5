import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../fixtures/pg-transaction-early-return.mjs';
import { close, listen, request, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';
import { forceEnd, openLeaks, pgUrl, startLeakwatch } from './support.js';

let leakwatch: ReturnType<typeof startLeakwatch>;
beforeAll(() => {
  leakwatch = startLeakwatch({ responseThreshold: 300, connectionThreshold: 300 });
});
afterAll(() => leakwatch.stop());

describe('instrumentPg(pg) › when an error path returns early inside a transaction', () => {
  it('reports idle-in-transaction, confirmed by pg_stat_activity through its own connection while the app’s pool is exhausted', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
    const server = createServer({ pool });
    const port = await listen(server);
    expect(await request(port, '/transfer?amount=5')).toMatchObject({ status: 200, body: 'done' });
    expect(await request(port, '/transfer?amount=-5')).toMatchObject({ status: 400 });

    const { ledger } = leakwatch;
    await waitUntil(() => openLeaks(ledger).connections.length === 1, 3000, 'the client left in its transaction to leak');
    const [connection] = openLeaks(ledger).connections;
    expect(connection.state).toBe('idle-in-transaction');
    expect(connection.leak?.reason).toBe('held-after-response-closed');
    expect(pool.waitingCount + pool.idleCount).toBe(0); // the only client is the stranded one
    await waitUntil(() => typeof connection.server?.state === 'string', 3000, 'pg_stat_activity');
    expect(connection.server?.pid).toBe((connection.target as pg.PoolClient).processID);
    expect(connection.server?.state).toBe('idle in transaction');
    expect(connection.server?.stateAgeMs).toBeGreaterThanOrEqual(0);
    expect(reportOf(ledger).leakedConnections[0]).toMatchObject({
      state: 'idle-in-transaction',
      server: { state: 'idle in transaction' },
      ownerPath: '/transfer',
    });
    await forceEnd(pool);
    await close(server);
  });

  it('reports a failed transaction left open as idle-in-transaction-aborted', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 2 });
    const server = createServer({ pool });
    const port = await listen(server);
    const { ledger } = leakwatch;
    const before = openLeaks(ledger).connections.length;
    expect(await request(port, '/transfer?amount=lots')).toMatchObject({ status: 500 });
    await waitUntil(() => openLeaks(ledger).connections.length === before + 1, 3000, 'the failed transaction’s client to leak');
    const connection = openLeaks(ledger).connections.at(-1)!;
    expect(connection.state).toBe('idle-in-transaction-aborted');
    await waitUntil(() => typeof connection.server?.state === 'string', 3000, 'pg_stat_activity');
    expect(connection.server?.state).toBe('idle in transaction (aborted)');
    await forceEnd(pool);
    await close(server);
  });
});
