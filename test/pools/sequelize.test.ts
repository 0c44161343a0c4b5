import { describe, expect, it } from 'vitest';
import { createApp, healthyTraffic } from '../../fixtures/sequelize-app.mjs';
import { poolStats } from '../../src/pg/index.js';
import { close, listen, request, sleep } from '../support/http.js';
import { pgUrl } from '../pg/support.js';
import { expectLeakFoundAndResolved, expectQueuedCheckoutOwnedByAsker, heldIn, validReport, watchAcquisitions } from './support.js';

const POOL = '127.0.0.1:5432/test';
const leakwatch = watchAcquisitions();
const { acquired } = leakwatch;

describe('sequelize 6 (sequelize-pool) › a healthy app', () => {
  it('reports no leak: 24 requests at once, managed transactions that commit and roll back, an unmanaged one committed, idle pool connections', async () => {
    const app = createApp({ connection: pgUrl(), pool: { min: 1, max: 4 } });
    const port = await listen(app.server);
    const first = acquired.length;
    await healthyTraffic(port);
    await sleep(700);

    const { ledger } = leakwatch;
    expect(ledger.leaks).toEqual([]);
    expect(validReport(ledger).summary).toMatchObject({ leakedResponses: 0, leakedConnections: 0 });
    // sequelize's first query also connects a client of its own, outside the pool, to read the
    // server version, and ends it: a bare client, released at once.
    const records = acquired.slice(first);
    expect(records.filter((r) => !r.pooled).length).toBeLessThanOrEqual(1);
    expect(records.every((r) => r.pool === POOL && r.releasedAt > 0)).toBe(true);
    expect(records.filter((r) => r.pooled).length).toBeGreaterThanOrEqual(24);
    expect(heldIn(ledger, POOL)).toEqual([]);
    const stats = poolStats().find((s) => s.name === POOL && s.max === 4);
    expect(stats).toMatchObject({ used: 0, pending: 0 });
    await app.close();
    await close(app.server);
  });
});

describe('sequelize 6 (sequelize-pool) › a checkout that waits in the queue', () => {
  it('belongs to the request that asked for it, not to the one whose commit served it', async () => {
    const app = createApp({ connection: pgUrl(), pool: { min: 0, max: 1 } });
    const { sequelize } = app;
    await expectQueuedCheckoutOwnedByAsker(acquired, {
      async hold(holding, released) {
        const transaction = await sequelize.transaction();
        holding();
        await released;
        await transaction.commit();
      },
      query: () => sequelize.query('select 2'),
      waiting: () => (sequelize.connectionManager as unknown as { pool: { waiting: number } }).pool.waiting,
    });
    await app.close();
  });
});

describe('sequelize 6 (sequelize-pool) › a route that answers 500 from inside a transaction it never rolls back', () => {
  it('reports the connection idle-in-transaction, owned by that route, confirmed by pg_stat_activity, acquired at the app’s sequelize.transaction() line', async () => {
    const app = createApp({ connection: pgUrl(), pool: { min: 0, max: 2 } });
    const port = await listen(app.server);
    await expectLeakFoundAndResolved(leakwatch.ledger, app, port, {
      fixture: 'sequelize-app.mjs',
      servedBefore: async () => expect(await request(port, '/orders?quantity=2')).toMatchObject({ status: 200, body: 'ordered' }),
      leak: { path: '/orders?quantity=0', ownerPath: '/orders', status: 500, state: 'idle-in-transaction', acquiredOn: 'const order = await sequelize.transaction();' },
    });
    await app.close();
    await close(app.server);
  });
});
