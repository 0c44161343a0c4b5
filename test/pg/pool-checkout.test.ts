import http from 'node:http';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentResponse, type ConnectionRecord, type ResponseRecord } from '../support/internals.js';
import { close, listen, request, sleep, waitUntil } from '../support/http.js';
import { forceEnd, listAcquisitions, openLeaks, ownerAtAcquire, pgUrl, recordOf, startLeakwatch } from './support.js';

let leakwatch: ReturnType<typeof startLeakwatch>;
const acquired: ConnectionRecord[] = [];
beforeAll(() => {
  leakwatch = startLeakwatch({ responseThreshold: 300, connectionThreshold: 300 });
  listAcquisitions(leakwatch.ledger, acquired);
});
afterAll(() => leakwatch.stop());

/** A gate the test opens by hand. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('instrumentPg(pg) › a checkout that waits in the queue', () => {
  for (const form of ['promise', 'callback'] as const) {
    it(`belongs to the request that asked for it, not to the one whose release served it (${form} connect)`, async () => {
      const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
      const responses = new Map<string, ResponseRecord | undefined>();
      const aHolds = gate();
      const aMayRelease = gate();
      const connect = (): Promise<pg.PoolClient> =>
        form === 'promise'
          ? pool.connect()
          : new Promise((resolve, reject) => pool.connect((error, client) => (error ? reject(error) : resolve(client!))));
      const server = http.createServer(async (req, res) => {
        responses.set(req.url!, currentResponse());
        const client = await connect();
        if (req.url === '/a') {
          aHolds.open();
          await aMayRelease.wait;
        }
        await client.query('SELECT 1');
        client.release();
        res.end(req.url);
      });
      const port = await listen(server);
      const first = acquired.length;
      const a = request(port, '/a');
      await aHolds.wait;
      const b = request(port, '/b');
      await waitUntil(() => pool.waitingCount === 1, 2000, 'B to queue');
      aMayRelease.open();
      expect(await a).toMatchObject({ body: '/a' });
      expect(await b).toMatchObject({ body: '/b' });

      const records = acquired.slice(first);
      expect(records).toHaveLength(2);
      expect(ownerAtAcquire(records[0])).toBe(responses.get('/a'));
      expect(ownerAtAcquire(records[1])).toBe(responses.get('/b'));
      expect(responses.get('/b')).not.toBe(responses.get('/a'));
      expect(records.every((r) => r.releasedAt > 0)).toBe(true);
      await pool.end();
      await close(server);
    });
  }
});

describe('instrumentPg(pg) › releasing a checkout', () => {
  it('stops holding the client on release(), release(err), release(true), the callback’s done() and pool.query()', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 2 });
    const { ledger } = leakwatch;

    const plain = await pool.connect();
    const plainRecord = recordOf(plain);
    expect(plainRecord).toMatchObject({ kind: 'pg', pooled: true, owner: null, state: 'idle' });
    plain.release();
    expect(plainRecord.isHeld).toBe(false);

    const failed = await pool.connect();
    const failedRecord = recordOf(failed);
    failed.release(new Error('broken'));
    expect(failedRecord.isHeld).toBe(false);

    const destroyed = await pool.connect();
    const destroyedRecord = recordOf(destroyed);
    destroyed.release(true);
    expect(destroyedRecord.isHeld).toBe(false);

    await new Promise<void>((resolve, reject) =>
      pool.connect((error, client, done) => {
        if (error) return reject(error);
        const record = recordOf(client!);
        done();
        expect(record.isHeld).toBe(false);
        resolve();
      }),
    );

    const before = ledger.held.size;
    const querying = pool.query('SELECT $1::int AS n', [1]);
    expect((await querying).rows).toEqual([{ n: 1 }]);
    expect(ledger.held.size).toBe(before);
    await pool.end();
    expect(openLeaks(ledger).connections).toEqual([]);
  });

  it('passes pg’s own errors through unchanged', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
    const client = await pool.connect();
    client.release();
    expect(() => client.release()).toThrow('Release called on client which has already been released to the pool.');
    const error = await pool.query('SELECT * FROM no_such_table_here').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(pg.DatabaseError);
    expect((error as pg.DatabaseError).code).toBe('42P01');
    await pool.end();
    const late = await pool.connect().catch((e: unknown) => e);
    expect((late as Error).message).toBe('Cannot use a pool after calling end on the pool');
  });
});

describe('instrumentPg(pg) › a checkout made outside any request', () => {
  it('is leaked once idle past the connection threshold, and resolved when released', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
    const client = await pool.connect();
    const record = recordOf(client);
    await client.query('SELECT pg_sleep(0.4)'); // busy past the threshold is no leak
    expect(record.leak).toBeNull();
    await waitUntil(() => record.leak !== null, 2000, 'the idle checkout to leak');
    expect(record.leak?.reason).toBe('idle-past-threshold');
    client.release();
    expect(record.leak?.resolvedAt).toBeGreaterThan(0);
    await pool.end();
    await sleep(10);
  });

  it('is never a leak for the pool’s idle clients', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 2 });
    await Promise.all([pool.query('SELECT 1'), pool.query('SELECT 2')]);
    expect(pool.idleCount).toBe(2);
    const leaksBefore = leakwatch.ledger.leaks.length;
    await sleep(450);
    expect(leakwatch.ledger.leaks.length).toBe(leaksBefore);
    await forceEnd(pool);
  });
});

describe('instrumentPg(pg) › a pool.query() checkout', () => {
  it('is held by its request, busy in the library’s hands until released, with no history; the client’s state still follows the wire', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
    const seen: { response?: ResponseRecord; record?: ConnectionRecord } = {};
    const server = http.createServer(async (req, res) => {
      seen.response = currentResponse();
      const first = acquired.length;
      const sleeping = pool.query('SELECT pg_sleep(0.45)');
      await waitUntil(() => acquired.length > first, 2000, 'the checkout to be delivered');
      seen.record = acquired[first];
      await sleeping;
      // Leaves the pool's one client in a transaction: pool.query() hands it back all the same.
      await pool.query('BEGIN');
      res.end('done');
    });
    const port = await listen(server);
    const leaksBefore = leakwatch.ledger.leaks.length;
    expect(await request(port, '/report')).toMatchObject({ body: 'done' });

    const record = seen.record!;
    expect(record).toMatchObject({ kind: 'pg', pooled: true, selfReleasing: true, history: null, stack: null });
    expect(ownerAtAcquire(record)).toBe(seen.response);
    expect(record.releasedAt).toBeGreaterThan(0);
    // Released without a leak, the record lets go of its request (Ledger#releaseConnection).
    expect(record.owner).toBeNull();
    // Waiting 450 ms on the query, past the 300 ms response threshold: busy, so not stalled.
    expect(leakwatch.ledger.leaks.length).toBe(leaksBefore);

    // Its next checkout, by connect(), starts from what the wire said during the pool.query()s.
    const client = await pool.connect();
    expect(recordOf(client)).toMatchObject({ selfReleasing: false, state: 'idle-in-transaction' });
    await client.query('ROLLBACK');
    expect(recordOf(client).state).toBe('idle');
    client.release();
    await pool.end();
    await close(server);
  });

  it('is followed as connect()’s are when given a cursor, which pg-pool never releases by itself', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
    const first = acquired.length;
    const cursor = new Cursor('SELECT n FROM generate_series(1, 100) AS n');
    void pool.query(cursor as never); // its promise never settles: pg-pool waits for a callback a cursor does not call
    await waitUntil(() => acquired.length > first, 2000, 'the checkout to be delivered');
    const record = acquired[first];
    expect(record.selfReleasing).toBe(false);
    expect(record.stack).not.toBeNull(); // where the app asked, for the report of a leak
    expect(await cursor.read(10)).toHaveLength(10);
    expect(record.state).toBe('idle'); // paused: the next move is the app's
    await cursor.close();
    await forceEnd(pool);
  });
});
