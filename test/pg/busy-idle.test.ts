import pg from 'pg';
import Cursor from 'pg-cursor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentPg } from '../../src/index.js';
import { ensureRuntime, resetRuntime, type ConnectionRecord } from '../support/internals.js';
import { closeActivityReaders } from '../../src/pg/index.js';
import { waitUntil } from '../support/http.js';
import { pgUrl, recordOf } from './support.js';

let undo: () => void;
beforeAll(() => {
  resetRuntime();
  ensureRuntime({ responseThreshold: 300, connectionThreshold: 300 });
  undo = instrumentPg(pg);
});
afterAll(() => {
  undo();
  closeActivityReaders();
});

async function connected(): Promise<{ client: pg.Client; record: ConnectionRecord }> {
  const client = new pg.Client(pgUrl());
  const connecting = client.connect();
  const record = recordOf(client);
  expect(record.state).toBe('busy'); // the startup message awaits its ReadyForQuery
  await connecting;
  return { client, record };
}

describe('instrumentPg(pg) › busy and idle follow whose turn it is on the wire', () => {
  it('is busy while a query awaits the server and idle once it is answered', async () => {
    const { client, record } = await connected();
    expect(record.state).toBe('idle');
    const sleeping = client.query('SELECT pg_sleep(0.2)');
    expect(record.state).toBe('busy');
    await sleeping;
    expect(record.state).toBe('idle');
    const failing = client.query('SELECT * FROM no_such_table_at_all');
    expect(record.state).toBe('busy');
    await expect(failing).rejects.toThrow(/no_such_table_at_all/);
    await waitUntil(() => record.state !== 'busy', 2000, 'the ReadyForQuery after the error');
    expect(record.state).toBe('idle');
    await client.end();
    expect(record.isHeld).toBe(false);
  });

  it('reports the transaction status of ReadyForQuery: idle, in transaction, in a failed transaction', async () => {
    const { client, record } = await connected();
    await client.query('BEGIN');
    expect(record.state).toBe('idle-in-transaction');
    await client.query('SELECT $1::int AS n', [1]);
    expect(record.state).toBe('idle-in-transaction');
    await expect(client.query('SELECT $1::int AS n', ['not a number'])).rejects.toThrow();
    // pg calls back on the ErrorResponse; the server's ReadyForQuery may come in the next packet.
    await waitUntil(() => record.state !== 'busy', 2000, 'the ReadyForQuery after the error');
    expect(record.state).toBe('idle-in-transaction-aborted');
    await client.query('ROLLBACK');
    expect(record.state).toBe('idle');
    await client.end();
  });

  it('counts a cursor read as busy until its rows arrive, and a paused cursor as idle though the server says active', async () => {
    const { client, record } = await connected();
    const cursor = client.query(new Cursor('SELECT n FROM generate_series(1, 100) AS n'));
    const first = cursor.read(10);
    expect(record.state).toBe('busy');
    expect(await first).toHaveLength(10);
    expect(record.state).toBe('idle'); // paused: the next move is the app's
    const second = cursor.read(10);
    expect(record.state).toBe('busy');
    expect((await second)[0]).toEqual({ n: 11 });
    expect(record.state).toBe('idle');

    const observer = new pg.Client(pgUrl());
    await observer.connect();
    const { rows } = await observer.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [client.processID]);
    expect(rows[0].state).toBe('active'); // no Sync sent: the server still counts the portal as running
    await observer.end();

    await cursor.close();
    expect(record.state).toBe('idle');
    await client.end();
  });

  it('counts COPY as busy until the server is done with it', async () => {
    const { client, record } = await connected();
    const copying = client.query('COPY (SELECT pg_sleep(0.1), n FROM generate_series(1, 3) AS n) TO STDOUT');
    expect(record.state).toBe('busy');
    await copying;
    expect(record.state).toBe('idle');
    await client.end();
  });

  it('keeps pipelined queries busy until the last one is answered', async () => {
    const client = new pg.Client({ connectionString: pgUrl(), pipeline: true } as pg.ClientConfig);
    await client.connect();
    const record = recordOf(client);
    const first = client.query('SELECT pg_sleep(0.05)');
    const second = client.query('SELECT pg_sleep(0.1)');
    expect(record.state).toBe('busy');
    await first;
    expect(record.state).toBe('busy');
    await second;
    expect(record.state).toBe('idle');
    await client.end();
  });
});

describe('instrumentPg(pg) › a pool’s client is followed on the wire from its first checkout that is not self-releasing', () => {
  it('leaves the wire of a client used only through pool.query() alone, and follows it, with its state, once connect() checks it out', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
    try {
      await pool.query('SELECT 1');
      const [client] = (pool as unknown as { _clients: pg.PoolClient[] })._clients;
      const connection = (client as unknown as { connection: object }).connection;
      // pool.query() releases its client itself: nothing reads its state, so its messages are not followed.
      expect(['query', 'sync', 'describe', 'execute'].filter((name) => Object.hasOwn(connection, name))).toEqual([]);
      const running = pool.query('SELECT pg_sleep(0.3)');
      const held = () => [...ensureRuntime().ledger.held].find((r) => r.target === client);
      await waitUntil(() => held() !== undefined, 2000, 'the pool.query() checkout');
      expect(held()).toMatchObject({ state: 'busy', selfReleasing: true });
      await running;
      expect(() => recordOf(client)).toThrow(/not held/);

      const checkedOut = await pool.connect();
      expect(checkedOut).toBe(client);
      expect(Object.hasOwn(connection, 'sync')).toBe(true);
      const record = recordOf(client);
      expect(record.state).toBe('idle');
      await client.query('BEGIN');
      expect(record.state).toBe('idle-in-transaction');
      const sleeping = client.query('SELECT pg_sleep(0.05)');
      expect(record.state).toBe('busy');
      await sleeping;
      await client.query('ROLLBACK');
      expect(record.state).toBe('idle');
      checkedOut.release();
      expect(record.isHeld).toBe(false);
    } finally {
      await pool.end();
    }
  });

  it('follows a pool’s client from a LISTEN sent through pool.query() or the pool’s connect handler, so its next checkout is a subscriber', async () => {
    const throughPoolQuery = async (pool: pg.Pool) => {
      await pool.query('LISTEN leakwatch_pool_query');
    };
    // The handler's LISTEN and pool.query()'s SELECT share the client at once (pg warns of that, as it does in apps).
    const inConnectHandler = async (pool: pg.Pool) => {
      pool.on('connect', (client) => void client.query('LISTEN leakwatch_connect_handler').catch(() => {}));
      await pool.query('SELECT 1');
    };
    // In lower case after blanks, as PostgreSQL takes it too.
    const inLowerCase = async (pool: pg.Pool) => {
      await pool.query('\n\t listen leakwatch_lower_case');
    };
    for (const listens of [throughPoolQuery, inConnectHandler, inLowerCase]) {
      const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
      let checkedOut: pg.PoolClient | undefined;
      try {
        await listens(pool);
        checkedOut = await pool.connect();
        const record = recordOf(checkedOut);
        expect(record.state).toBe('subscriber');
        await checkedOut.query(listens === inLowerCase ? ' unlisten *' : 'UNLISTEN *');
        expect(record.state).toBe('idle');
      } finally {
        checkedOut?.release();
        await pool.end();
      }
    }
    // Other statements through pool.query() leave the wire alone.
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
    try {
      await pool.query({ text: 'SELECT $1::text AS listen', values: ['LISTEN x'] });
      const connection = (pool as unknown as { _clients: Array<{ connection: object }> })._clients[0].connection;
      expect(Object.hasOwn(connection, 'query')).toBe(false);
    } finally {
      await pool.end();
    }
  });
});
