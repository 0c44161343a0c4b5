import http from 'node:http';
import Redis from 'ioredis';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMetrics,
  DB_CLIENT_CONNECTION_PENDING_REQUESTS,
  DB_CLIENT_CONNECTION_USE_DURATION,
  DB_CLIENT_CONNECTIONS,
  DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES,
  DB_CLIENT_CONNECTIONS_LEAKED,
  DB_CLIENT_CONNECTIONS_MAX,
  DB_CLIENT_LEAKED_CONNECTIONS,
  instrumentIoredis,
  instrumentPg,
  OVERFLOW_VALUE,
  start,
  type Started,
} from '../../src/index.js';
import { getRuntime } from '../support/internals.js';
import { closeActivityReaders } from '../../src/pg/index.js';
import { close, fireAndForget, listen, request, waitUntil } from '../support/http.js';
import { find, PROMETHEUS_ACCEPT, valueOf } from './support/scrape.js';

const pgUrl = process.env.LEAKWATCH_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

let started: Started;
const undos: Array<() => void> = [];
beforeAll(() => {
  started = start({ responseThreshold: 200, connectionThreshold: 1000 });
  undos.push(instrumentPg(pg), instrumentIoredis(Redis));
});
afterAll(() => {
  for (const undo of undos) undo();
  started.stop();
  closeActivityReaders();
});

const ledger = () => getRuntime()!.ledger;
const pgLabels = (pool: string) => ({ db_system: 'postgresql', pool });

/** Ends a pool whose clients the app under test never released. */
async function forceEnd(pool: pg.Pool, clients: pg.PoolClient[]): Promise<void> {
  for (const client of clients) {
    try {
      client.release(true);
    } catch {
      // released already
    }
  }
  await pool.end();
}

describe('createMetrics() › connections', () => {
  it("reads each watched pool's used, idle, max and pending checkouts when scraped, and times each use", async () => {
    const metrics = createMetrics({ registry: new Registry() });
    const pool = new pg.Pool({ connectionString: pgUrl, max: 2, leakwatchName: 'gauges' } as pg.PoolConfig);
    const first = await pool.connect();
    const second = await pool.connect();
    const third = pool.connect(); // waits: the pool is full

    let body = (await metrics.scrape()).body;
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { ...pgLabels('gauges'), state: 'used' })).toBe(2);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { ...pgLabels('gauges'), state: 'idle' })).toBe(0);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS_MAX, pgLabels('gauges'))).toBe(2);
    expect(valueOf(body, DB_CLIENT_CONNECTION_PENDING_REQUESTS, pgLabels('gauges'))).toBe(1);
    // Checkouts outside any request are nobody's leak by being held.
    expect(valueOf(body, DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES, pgLabels('gauges'))).toBe(0);

    first.release();
    (await third).release();
    second.release();
    body = (await metrics.scrape()).body;
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { ...pgLabels('gauges'), state: 'used' })).toBe(0);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { ...pgLabels('gauges'), state: 'idle' })).toBe(2);
    expect(valueOf(body, DB_CLIENT_CONNECTION_PENDING_REQUESTS, pgLabels('gauges'))).toBe(0);
    expect(valueOf(body, `${DB_CLIENT_CONNECTION_USE_DURATION}_count`, pgLabels('gauges'))).toBe(3);
    expect(valueOf(body, `${DB_CLIENT_CONNECTION_USE_DURATION}_bucket`, { ...pgLabels('gauges'), le: '+Inf' })).toBe(3);

    await pool.end();
    body = (await metrics.scrape()).body;
    expect(find(body, DB_CLIENT_CONNECTIONS_MAX, pgLabels('gauges'))).toEqual([]); // an ended pool is gone
    metrics.close();
  });

  it('counts the connections held by leaked responses, and the connection leaks by reason, with exemplars', async () => {
    const metrics = createMetrics(); // a registry of its own, OpenMetrics: prom-client keeps exemplars only there
    const pool = new pg.Pool({ connectionString: pgUrl, max: 5, leakwatchName: 'leaky' } as pg.PoolConfig);
    const stranded: pg.PoolClient[] = [];
    const server = http.createServer(async (req, res) => {
      const client = await pool.connect();
      stranded.push(client);
      await client.query('SELECT 1');
      if (req.url?.startsWith('/export')) res.end('exported'); // answers, never releases
      // /report: neither answers nor releases
    });
    const port = await listen(server);
    const reports = [fireAndForget(port, '/report/1?secret=x'), fireAndForget(port, '/report/2')];
    expect(await request(port, '/export/1')).toMatchObject({ status: 200 });
    await waitUntil(() => ledger().totals.leakedConnections >= 3, 4000, 'three connection leaks');

    const { body, contentType } = await metrics.scrape(PROMETHEUS_ACCEPT);
    expect(contentType).toMatch(/openmetrics/);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES, pgLabels('leaky'))).toBe(2);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS_LEAKED, { ...pgLabels('leaky'), reason: 'held-by-leaked-response' })).toBe(2);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS_LEAKED, { ...pgLabels('leaky'), reason: 'held-after-response-closed' })).toBe(1);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { ...pgLabels('leaky'), state: 'used' })).toBe(3);
    const [byLeaked] = find(body, DB_CLIENT_LEAKED_CONNECTIONS, { ...pgLabels('leaky'), reason: 'held-by-leaked-response' });
    expect(byLeaked.value).toBe(2);
    expect(byLeaked.exemplar).toMatch(/^\{connection_id="\d+:pg\d+"\} 1 /);
    expect(valueOf(body, DB_CLIENT_LEAKED_CONNECTIONS, { ...pgLabels('leaky'), reason: 'held-after-response-closed' })).toBe(1);

    for (const req of reports) req.destroy();
    await forceEnd(pool, stranded);
    const after = (await metrics.scrape()).body;
    expect(find(after, DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES, pgLabels('leaky'))).toEqual([]);
    expect(valueOf(after, DB_CLIENT_LEAKED_CONNECTIONS, { ...pgLabels('leaky'), reason: 'held-by-leaked-response' })).toBe(2); // a counter
    expect(valueOf(after, `${DB_CLIENT_CONNECTION_USE_DURATION}_count`, pgLabels('leaky'))).toBe(3);
    metrics.close();
    await close(server);
  });

  it('reads the leaked connections still held by reason, which a held-after-response-closed leak moves until released', async () => {
    const metrics = createMetrics({ registry: new Registry() });
    const pool = new pg.Pool({ connectionString: pgUrl, max: 3, leakwatchName: 'stranded' });
    const kept: pg.PoolClient[] = [];
    const server = http.createServer(async (_req, res) => {
      const client = await pool.connect();
      kept.push(client);
      await client.query('SELECT 1');
      res.end('exported'); // answers, never releases
    });
    const port = await listen(server);
    const stranded = (body: string, reason: string) => valueOf(body, DB_CLIENT_CONNECTIONS_LEAKED, { ...pgLabels('stranded'), reason });
    expect(await request(port, '/export/1?token=x')).toMatchObject({ status: 200 });

    let body = (await metrics.scrape()).body; // held, not yet a connection threshold after the close
    expect(stranded(body, 'held-after-response-closed')).toBe(0);
    await waitUntil(() => kept.length === 1 && getRuntime()!.ledger.leaks.some((l) => l.leak?.reason === 'held-after-response-closed' && l.leak.resolvedAt === 0), 4000, 'the leak');

    body = (await metrics.scrape()).body;
    expect(stranded(body, 'held-after-response-closed')).toBe(1);
    expect(stranded(body, 'held-by-leaked-response')).toBe(0);
    expect(stranded(body, 'idle-past-threshold')).toBe(0);
    // What the older gauge cannot say: its response closed, so no leaked response holds it.
    expect(valueOf(body, DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES, pgLabels('stranded'))).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(stranded((await metrics.scrape()).body, 'held-after-response-closed')).toBe(1); // it stays while stranded

    kept[0].release();
    body = (await metrics.scrape()).body;
    expect(stranded(body, 'held-after-response-closed')).toBe(0);
    expect(valueOf(body, DB_CLIENT_LEAKED_CONNECTIONS, { ...pgLabels('stranded'), reason: 'held-after-response-closed' })).toBe(1); // the counter keeps it
    await pool.end();
    metrics.close();
    await close(server);
  });

  it('counts Redis connections and bare pg clients, which no pool reports, from the held connections', async () => {
    const metrics = createMetrics({ registry: new Registry() });
    const made: Array<Redis | pg.Client> = [];
    const server = http.createServer(async () => {
      const redis = new Redis(redisUrl);
      made.push(redis);
      await redis.ping();
      const client = new pg.Client({ connectionString: pgUrl });
      made.push(client);
      await client.connect();
      // never answers, never quits or ends either
    });
    const port = await listen(server);
    const req = fireAndForget(port, '/redis');
    const mine = () => [...ledger().held].filter((c) => c.owner?.leak && c.owner.detail?.path === '/redis');
    await waitUntil(() => mine().length === 2, 4000, 'both connections held by the leaked response');
    const redisPool = mine().find((c) => c.kind === 'redis')!.pool;
    const pgPool = mine().find((c) => c.kind === 'pg')!.pool;

    const body = (await metrics.scrape()).body;
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { db_system: 'redis', pool: redisPool, state: 'used' })).toBe(1);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES, { db_system: 'redis', pool: redisPool })).toBe(1);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { db_system: 'postgresql', pool: pgPool, state: 'used' })).toBe(1);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES, { db_system: 'postgresql', pool: pgPool })).toBe(1);
    expect(body).not.toMatch(/password|secret/);

    req.destroy();
    await Promise.all(made.map((c) => (c instanceof pg.Client ? c.end() : c.quit())));
    const after = (await metrics.scrape()).body;
    expect(find(after, DB_CLIENT_CONNECTIONS, { db_system: 'redis' })).toEqual([]);
    expect(valueOf(after, `${DB_CLIENT_CONNECTION_USE_DURATION}_count`, { db_system: 'redis', pool: redisPool })).toBe(1);
    metrics.close();
    await close(server);
  });

  it('counts pools past maxPools under _overflow, alike in every connection family', async () => {
    const metrics = createMetrics({ registry: new Registry(), maxPools: 1 });
    const pools = ['first', 'second', 'third'].map((name) => new pg.Pool({ connectionString: pgUrl, max: 3, leakwatchName: name } as pg.PoolConfig));
    for (const pool of pools) (await pool.connect()).release(); // a pool is watched from its first checkout
    const body = (await metrics.scrape()).body;
    expect(find(body, DB_CLIENT_CONNECTIONS_MAX).map((s) => [s.labels.pool, s.value])).toEqual([
      ['first', 3],
      [OVERFLOW_VALUE, 6],
    ]);
    expect(find(body, DB_CLIENT_CONNECTIONS, { state: 'idle' }).map((s) => s.labels.pool)).toEqual(['first', OVERFLOW_VALUE]);
    await Promise.all(pools.map((p) => p.end()));
    metrics.close();
  });
});
