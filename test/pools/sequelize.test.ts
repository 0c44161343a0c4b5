import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, healthyTraffic } from '../../fixtures/sequelize-app.mjs';
import { poolStats } from '../../src/pg/index.js';
import { close, listen, request, sleep, waitUntil } from '../support/http.js';
import { currentResponse, type ConnectionRecord, type ResponseRecord } from '../support/internals.js';
import { openLeaks, pgUrl, startLeakwatch } from '../pg/support.js';
import { heldIn, lineOf, validReport } from './support.js';

const POOL = '127.0.0.1:5432/test';
let leakwatch: ReturnType<typeof startLeakwatch>;
const acquired: ConnectionRecord[] = [];
beforeAll(() => {
  leakwatch = startLeakwatch({ responseThreshold: 1000, connectionThreshold: 300 });
  leakwatch.ledger.observe({ connectionAcquired: (c) => void acquired.push(c) });
});
afterAll(() => leakwatch.stop());

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
    const responses = new Map<string, ResponseRecord | undefined>();
    let aHolds!: () => void;
    const holding = new Promise<void>((resolve) => (aHolds = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const server = http.createServer(async (req, res) => {
      responses.set(req.url!, currentResponse());
      if (req.url === '/a') {
        const transaction = await sequelize.transaction();
        aHolds();
        await released;
        await transaction.commit();
      } else {
        await sequelize.query('select 2');
      }
      res.end(req.url);
    });
    const port = await listen(server);
    const first = acquired.length;
    const a = request(port, '/a');
    await holding;
    const b = request(port, '/b');
    await waitUntil(() => (sequelize.connectionManager as unknown as { pool: { waiting: number } }).pool.waiting === 1, 2000, 'B to queue');
    release();
    expect(await a).toMatchObject({ body: '/a' });
    expect(await b).toMatchObject({ body: '/b' });
    const records = acquired.slice(first).filter((r) => r.pooled);
    expect(records.map((r) => r.owner)).toEqual([responses.get('/a'), responses.get('/b')]);
    await app.close();
    await close(server);
  });
});

describe('sequelize 6 (sequelize-pool) › a route that answers 500 from inside a transaction it never rolls back', () => {
  it('reports the connection idle-in-transaction, owned by that route, confirmed by pg_stat_activity, acquired at the app’s sequelize.transaction() line', async () => {
    const app = createApp({ connection: pgUrl(), pool: { min: 0, max: 2 } });
    const port = await listen(app.server);
    const { ledger } = leakwatch;
    const before = openLeaks(ledger).connections.length;
    expect(await request(port, '/orders?quantity=2')).toMatchObject({ status: 200, body: 'ordered' });
    expect(await request(port, '/orders?quantity=0')).toMatchObject({ status: 500 });

    await waitUntil(() => openLeaks(ledger).connections.length === before + 1, 3000, 'the transaction’s connection to leak');
    const connection = openLeaks(ledger).connections.at(-1)!;
    expect(connection).toMatchObject({ pooled: true, pool: POOL, state: 'idle-in-transaction' });
    expect(connection.leak?.reason).toBe('held-after-response-closed');
    await waitUntil(() => typeof connection.server?.state === 'string', 3000, 'pg_stat_activity');
    expect(connection.server?.state).toBe('idle in transaction');
    const reported = validReport(ledger).leakedConnections.find((c) => c.id === connection.id)!;
    expect(reported).toMatchObject({ ownerPath: '/orders', ownerOutcome: 'finished', state: 'idle-in-transaction' });
    expect(reported.acquisitionSite).toMatch(lineOf('sequelize-app.mjs', 'const order = await sequelize.transaction();'));
    await app.returnStranded();
    expect(connection.leak?.resolvedAt).toBeGreaterThan(0);
    await app.close();
    await close(app.server);
  });
});
