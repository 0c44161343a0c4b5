import http from 'node:http';
import net from 'node:net';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../fixtures/knex-app.mjs';
import { createMetrics, DB_CLIENT_CONNECTIONS } from '../../src/index.js';
import { valueOf } from '../metrics/support/scrape.js';
import { describeLeakedConnection } from '../../src/report/text.js';
import { close, listen, request, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';
import { openLeaks, pgUrl, startLeakwatch } from './support.js';

let leakwatch: ReturnType<typeof startLeakwatch>;
let admin: pg.Client;
beforeAll(async () => {
  leakwatch = startLeakwatch({ responseThreshold: 1000, connectionThreshold: 200 });
  admin = new pg.Client(pgUrl());
  await admin.connect();
});
afterAll(async () => {
  await admin.end();
  leakwatch.stop();
});

/** A handler that checks a client out, opens a transaction and answers without ROLLBACK or release(). */
function leakyServer(pool: pg.Pool, stranded: pg.PoolClient[]): http.Server {
  return http.createServer(async (_req, res) => {
    const client = await pool.connect();
    client.on('error', () => {}); // the app's: a lost connection must not crash it
    stranded.push(client);
    await client.query('BEGIN');
    res.statusCode = 500;
    res.end('failed'); // BUG: no ROLLBACK, no release()
  });
}

async function leakOne(port: number) {
  const { ledger } = leakwatch;
  const before = openLeaks(ledger).connections.length;
  expect(await request(port, '/orders')).toMatchObject({ status: 500 });
  await waitUntil(() => openLeaks(ledger).connections.length === before + 1, 3000, 'the checkout to leak');
  const connection = openLeaks(ledger).connections.at(-1)!;
  expect(connection.state).toBe('idle-in-transaction');
  await waitUntil(() => connection.server?.state === 'idle in transaction', 3000, 'pg_stat_activity');
  return connection;
}

describe('a leaked pool checkout whose backend is terminated (pg_terminate_backend)', () => {
  it('is reported closed, terminated by the server, still leaked (and used) while its pool counts it checked out, and resolved when released', async () => {
    const metrics = createMetrics({ registry: new Registry() });
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 2 });
    const stranded: pg.PoolClient[] = [];
    const server = leakyServer(pool, stranded);
    const port = await listen(server);
    const connection = await leakOne(port);
    const pid = stranded[0].processID;

    // Only the backend this test made is terminated.
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await waitUntil(() => connection.state === 'closed', 3000, 'the socket to go');
    expect(connection.closed).toMatchObject({ how: 'terminated-by-server', code: '57P01' });
    expect(connection.leak).toMatchObject({ reason: 'held-after-response-closed', resolvedAt: 0 });
    expect(pool.totalCount).toBe(1); // pg-pool still counts it checked out
    const [reported] = reportOf(leakwatch.ledger).leakedConnections.filter((c) => c.id === connection.id);
    expect(reported).toMatchObject({ state: 'closed', closed: { how: 'terminated-by-server', code: '57P01' }, server: { pid, state: null } });
    expect(describeLeakedConnection(reported)).toMatch(/: closed \(terminated by the server, 57P01\) for \d+ ms, held/);
    expect(describeLeakedConnection(reported)).not.toMatch(/idle in transaction/);

    // Metrics: still one used connection of its pool, as the pool itself counts.
    let body = (await metrics.scrape()).body;
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { db_system: 'postgresql', pool: '127.0.0.1:5432/test', state: 'used' })).toBe(1);

    stranded[0].release();
    expect(connection.leak?.resolvedAt).toBeGreaterThan(0);
    expect(leakwatch.ledger.held.has(connection)).toBe(false);
    expect(pool.totalCount).toBe(0);
    body = (await metrics.scrape()).body;
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { db_system: 'postgresql', pool: '127.0.0.1:5432/test', state: 'used' })).toBe(0);
    await pool.end();
    await close(server);
  });

  it('is reported closed through knex too, and resolved when knex gives it back', async () => {
    const app = createApp({ connection: pgUrl(), pool: { min: 0, max: 2 } });
    const port = await listen(app.server);
    const { ledger } = leakwatch;
    const before = openLeaks(ledger).connections.length;
    expect(await request(port, '/orders?quantity=0')).toMatchObject({ status: 500 });
    await waitUntil(() => openLeaks(ledger).connections.length === before + 1, 3000, 'the transaction to leak');
    const connection = openLeaks(ledger).connections.at(-1)!;
    const client = connection.target as pg.Client;
    await admin.query('SELECT pg_terminate_backend($1)', [client.processID]);
    await waitUntil(() => connection.state === 'closed', 3000, 'the socket to go');
    expect(connection.closed?.how).toBe('terminated-by-server');
    expect(connection.leak?.resolvedAt).toBe(0);
    await app.returnStranded();
    expect(connection.leak?.resolvedAt).toBeGreaterThan(0);
    await app.close();
    await close(app.server);
  });
});

describe('a leaked pool checkout whose network connection is cut', () => {
  it('is reported closed by a socket error (ECONNRESET), and resolved when the pool drops it', async () => {
    // A TCP relay between the pool and PostgreSQL that the test can cut with a reset.
    const target = new URL(pgUrl());
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(Number(target.port || 5432), target.hostname);
      sockets.add(inbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const relayUrl = new URL(pgUrl());
    relayUrl.hostname = '127.0.0.1';
    relayUrl.port = String((relay.address() as net.AddressInfo).port);

    const pool = new pg.Pool({ connectionString: relayUrl.toString(), max: 1 });
    const stranded: pg.PoolClient[] = [];
    const server = leakyServer(pool, stranded);
    const port = await listen(server);
    const connection = await leakOne(port);

    for (const socket of sockets) socket.resetAndDestroy();
    await waitUntil(() => connection.state === 'closed', 3000, 'the socket to go');
    expect(connection.closed).toMatchObject({ how: 'socket-error', code: 'ECONNRESET' });
    expect(connection.leak?.resolvedAt).toBe(0);
    const [reported] = reportOf(leakwatch.ledger).leakedConnections.filter((c) => c.id === connection.id);
    expect(describeLeakedConnection(reported)).toMatch(/: closed \(socket error, ECONNRESET\)/);

    stranded[0].release(new Error('connection lost')); // dropped from the pool
    expect(connection.leak?.resolvedAt).toBeGreaterThan(0);
    await pool.end();
    await close(server);
    await new Promise<void>((resolve) => relay.close(() => resolve()));
  });
});

describe('a bare client whose backend is terminated', () => {
  it('is no longer held: nothing counts it any more', async () => {
    const client = new pg.Client(pgUrl());
    client.on('error', () => {});
    await client.connect();
    const { ledger } = leakwatch;
    const record = [...ledger.held].find((c) => c.target === client)!;
    expect(record.pooled).toBe(false);
    await admin.query('SELECT pg_terminate_backend($1)', [client.processID]);
    await waitUntil(() => record.releasedAt > 0, 3000, 'the record to be released');
    expect(record.closed).toBeNull();
  });
});
