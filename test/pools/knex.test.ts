import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp, healthyTraffic } from '../../fixtures/knex-app.mjs';
import { poolStats } from '../../src/pg/index.js';
import type { Report } from '../../src/report/json.js';
import { fixture, leakwatch as leakwatchCli } from '../support/cli.js';
import { close, listen, recordResponsesByUrl, request, sleep, waitUntil } from '../support/http.js';
import type { ResponseRecord } from '../support/internals.js';
import { getAndLeave, openLeaks, ownerAtAcquire, pgUrl } from '../pg/support.js';
import { expectLeakFoundAndResolved, expectQueuedCheckoutOwnedByAsker, heldIn, lineOf, validReport, watchAcquisitions } from './support.js';

const POOL = '127.0.0.1:5432/test';
const leakwatch = watchAcquisitions();
const { acquired } = leakwatch;

describe('knex 3 (tarn) › a healthy app', () => {
  it('reports no leak: 30 requests at once, transactions that commit and roll back, exports read to the end and left, and idle pool connections (min 2)', async () => {
    const app = createApp({ connection: pgUrl(), pool: { min: 2, max: 4 } });
    const port = await listen(app.server);
    const first = acquired.length;
    await healthyTraffic(port);
    await sleep(700); // two connection thresholds, with clients idle in the pool

    const { ledger } = leakwatch;
    expect(ledger.leaks).toEqual([]);
    expect(validReport(ledger).summary).toMatchObject({ leakedResponses: 0, leakedConnections: 0 });
    // Every checkout was a record of its own, named after the pool's connections, and released.
    const records = acquired.slice(first);
    expect(records.length).toBeGreaterThanOrEqual(30);
    expect(records.every((r) => r.pool === POOL && r.pooled && r.releasedAt > 0)).toBe(true);
    expect(heldIn(ledger, POOL)).toEqual([]);
    const [stats] = poolStats().filter((s) => s.name === POOL && s.max === 4);
    expect(stats).toMatchObject({ used: 0, pending: 0 });
    expect(stats.idle).toBeGreaterThanOrEqual(2);

    await app.close();
    await close(app.server);
  });
});

describe('knex 3 (tarn) › a checkout that waits in the queue', () => {
  it('belongs to the request that asked for it, not to the one whose commit served it', async () => {
    const app = createApp({ connection: pgUrl(), pool: { min: 0, max: 1 } });
    const { knex } = app;
    await expectQueuedCheckoutOwnedByAsker(acquired, {
      hold: (holding, released) =>
        knex.transaction(async (trx) => {
          await trx.raw('select 1');
          holding();
          await released;
        }),
      query: () => knex.raw('select 2'),
      waiting: () => (knex.client.pool as { numPendingAcquires(): number }).numPendingAcquires(),
    });
    await app.close();
  });
});

describe('knex 3 (tarn) › a route that answers 500 from inside a transaction it never rolls back', () => {
  it('reports the connection idle-in-transaction, owned by that route, confirmed by pg_stat_activity, acquired at the app’s knex.transaction() line', async () => {
    const app = createApp({ connection: pgUrl(), pool: { min: 1, max: 2 } });
    const port = await listen(app.server);
    // Released late (the app’s pool gives it back), the leak resolves.
    await expectLeakFoundAndResolved(leakwatch.ledger, app, port, {
      fixture: 'knex-app.mjs',
      servedBefore: async () => expect(await request(port, '/orders?quantity=2')).toMatchObject({ status: 200, body: 'ordered' }),
      leak: { path: '/orders?quantity=0', ownerPath: '/orders', status: 500, state: 'idle-in-transaction', acquiredOn: 'const order = await knex.transaction();' },
    });
    await app.close();
    await close(app.server);
  });
});

describe('knex 3 (tarn) › a query stream piped into a response whose client leaves', () => {
  it('reports the connection owned by the streaming route, not by the request that created it, acquired at the app’s .stream() line', async () => {
    const app = createApp({ connection: pgUrl(), pool: { min: 0, max: 1 } });
    const responses = new Map<string, ResponseRecord>();
    recordResponsesByUrl(app.server, responses);
    const port = await listen(app.server);
    const { ledger } = leakwatch;
    const first = acquired.length;
    expect(await request(port, '/count')).toMatchObject({ status: 200 }); // makes the pool’s only connection
    const made = (app.knex.client.pool as { free: Array<{ resource: object }> }).free.map((f) => f.resource);
    expect(made).toHaveLength(1);
    const before = openLeaks(ledger).connections.length;
    await getAndLeave(port, '/export.csv', 100);

    await waitUntil(() => openLeaks(ledger).connections.length === before + 1, 3000, 'the stream’s connection to leak');
    const connection = openLeaks(ledger).connections.at(-1)!;
    const [countCheckout] = acquired.slice(first).filter((r) => r.pooled);
    expect(ownerAtAcquire(countCheckout)).toBe(responses.get('/count'));
    expect(connection.target).toBe(made[0]);
    expect(connection.owner).toBe(responses.get('/export.csv'));
    expect(connection).toMatchObject({ state: 'idle' }); // a paused cursor waits on the app, not the server
    expect(connection.leak?.reason).toBe('held-after-response-closed');
    const reported = validReport(ledger).leakedConnections.find((c) => c.id === connection.id)!;
    expect(reported).toMatchObject({ ownerPath: '/export.csv', ownerOutcome: 'aborted' });
    expect(reported.acquisitionSite).toMatch(lineOf('knex-app.mjs', 'return knex.raw(rows(200000)).stream()'));
    await app.returnStranded();
    await app.close();
    await close(app.server);
  });
});

describe('leakwatch run -- node fixtures/knex-app.mjs', () => {
  it('exits 0 with a report of zero leaks for the healthy traffic, and 1 naming both leaks when the leaky routes are driven too', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-knex-'));
    const args = (file: string) => ['run', '--report', file, '--response-threshold', '1s', '--connection-threshold', '300ms', '--', process.execPath, fixture('knex-app.mjs')];
    const [healthy, leaky] = await Promise.all([
      leakwatchCli(args(path.join(dir, 'healthy.json'))),
      leakwatchCli(args(path.join(dir, 'leaky.json')), { env: { FIXTURE_LEAKY: '1' } }),
    ]);
    expect(healthy.status, healthy.stderr).toBe(0);
    const report = JSON.parse(readFileSync(path.join(dir, 'healthy.json'), 'utf8')) as Report;
    expect(report.summary).toMatchObject({ responses: 31, leakedResponses: 0, leakedConnections: 0, resolved: 0 });

    expect(leaky.status, leaky.stderr).toBe(1);
    const leaks = (JSON.parse(readFileSync(path.join(dir, 'leaky.json'), 'utf8')) as Report).leakedConnections;
    expect(leaks.map((c) => [c.ownerPath, c.state, c.reason])).toEqual([
      ['/orders', 'idle-in-transaction', 'held-after-response-closed'],
      ['/export.csv', 'idle', 'held-after-response-closed'],
    ]);
    expect(leaks.map((c) => c.acquisitionSite)).toEqual([
      expect.stringMatching(lineOf('knex-app.mjs', 'const order = await knex.transaction();')),
      expect.stringMatching(lineOf('knex-app.mjs', 'return knex.raw(rows(200000)).stream()')),
    ]);
    // The text report leads with the app's line; knex's and tarn's frames are left to the JSON.
    expect(leaky.stderr).toMatch(/acquired at .*knex-app\.mjs:\d+:\d+\n/);
    expect(leaky.stderr).not.toMatch(/node_modules[\\/]tarn/);
    expect(leaks[1].acquiredAt).toMatch(/node_modules[\\/]knex/);
  });
});
