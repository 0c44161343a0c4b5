import net from 'node:net';
import genericPool from 'generic-pool';
import pg from 'pg';
import { createClientPool } from 'redis';
import { Pool as SequelizePool } from 'sequelize-pool';
import { Pool as TarnPool } from 'tarn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PendingCheckout, WatchedPool } from '../../src/core/pool-waits.js';
import type { ConnectionRecord } from '../../src/core/records.js';
import { getRuntime, responseContext, type ResponseRecord } from '../support/internals.js';
import { blockLoopUntil, sleep, waitUntil } from '../support/http.js';
import { pgUrl, startLeakwatch } from '../pg/support.js';

/**
 * A checkout asked of a pool at its max with no idle connection waits among the pool's waiters, in
 * every pool library leakwatch follows, until it is served or fails; the wait is timed for every
 * checkout. Real PostgreSQL and Redis, pools of one connection.
 */

const redisUrl = process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** A pool of one connection: `hold()` keeps it until the returned function gives it back; `ask()` checks out, uses and gives back. */
interface Subject {
  name: string;
  kind: 'pg' | 'redis';
  make(timeoutMs: number): {
    hold(): Promise<() => Promise<void>>;
    ask(): Promise<unknown>;
    close(): Promise<void>;
  };
}

const newClient = async () => {
  const client = new pg.Client({ connectionString: pgUrl() });
  await client.connect();
  return client;
};

/** hold()/ask() for pools with acquire() and release(resource). */
function acquireRelease<R>(pool: { acquire(): Promise<R>; release(resource: R): unknown }, use: (resource: R) => Promise<unknown>) {
  return {
    async hold() {
      const resource = await pool.acquire();
      await use(resource);
      return async () => void (await pool.release(resource));
    },
    async ask() {
      const resource = await pool.acquire();
      try {
        return await use(resource);
      } finally {
        await pool.release(resource);
      }
    },
  };
}

const SUBJECTS: Subject[] = [
  {
    name: "pg's Pool (pg-pool)",
    kind: 'pg',
    make(timeoutMs) {
      const pool = new pg.Pool({ connectionString: pgUrl(), max: 1, connectionTimeoutMillis: timeoutMs });
      return {
        ...acquireRelease({ acquire: () => pool.connect(), release: (client: pg.PoolClient) => client.release() }, (client) => client.query('SELECT 1')),
        close: () => pool.end(),
      };
    },
  },
  {
    name: 'tarn (knex)',
    kind: 'pg',
    make(timeoutMs) {
      const pool = new TarnPool<pg.Client>({ create: newClient, destroy: (client) => client.end(), min: 0, max: 1, acquireTimeoutMillis: timeoutMs });
      return {
        ...acquireRelease({ acquire: () => pool.acquire().promise, release: (client: pg.Client) => pool.release(client) }, (client) => client.query('SELECT 1')),
        close: () => pool.destroy(),
      };
    },
  },
  {
    name: 'sequelize-pool',
    kind: 'pg',
    make(timeoutMs) {
      const pool = new SequelizePool<pg.Client>({
        name: 'waiters',
        create: newClient,
        destroy: (client) => client.end(),
        validate: () => true,
        max: 1,
        min: 0,
        acquireTimeoutMillis: timeoutMs,
      });
      return {
        ...acquireRelease({ acquire: () => pool.acquire(), release: (client: pg.Client) => pool.release(client) }, (client) => client.query('SELECT 1')),
        close: async () => {
          await pool.drain();
          await pool.destroyAllNow();
        },
      };
    },
  },
  {
    name: 'generic-pool',
    kind: 'pg',
    make(timeoutMs) {
      const pool = genericPool.createPool({ create: newClient, destroy: (client: pg.Client) => client.end() }, { min: 0, max: 1, acquireTimeoutMillis: timeoutMs });
      return {
        ...acquireRelease(pool, (client) => client.query('SELECT 1')),
        close: async () => {
          await pool.drain();
          await pool.clear();
        },
      };
    },
  },
  {
    name: 'a node-redis client pool',
    kind: 'redis',
    make(timeoutMs) {
      const pool = createClientPool({ url: redisUrl }, { minimum: 1, maximum: 1, acquireTimeout: timeoutMs });
      pool.on('error', () => {});
      const connected = pool.connect();
      return {
        async hold() {
          await connected;
          let giveBack!: () => void;
          const given = new Promise<void>((resolve) => (giveBack = resolve));
          let leased!: () => void;
          const holding = new Promise<void>((resolve) => (leased = resolve));
          const done = pool.execute(async (client) => {
            await client.ping();
            leased();
            await given;
          });
          await holding;
          return async () => {
            giveBack();
            await done;
          };
        },
        ask: async () => {
          await connected;
          return pool.execute((client) => client.ping());
        },
        close: () => pool.close(),
      };
    },
  },
];

let leakwatch: ReturnType<typeof startLeakwatch>;
const waiting: Array<{ pool: WatchedPool; checkout: PendingCheckout }> = [];
const served: Array<{ pool: WatchedPool; waitedMs: number }> = [];
beforeAll(() => {
  leakwatch = startLeakwatch({ exhaustionThreshold: '1h' });
  getRuntime()!.waits.observe({
    checkoutWaiting: (pool, checkout) => void waiting.push({ pool, checkout }),
    checkoutServed: (pool, waitedMs) => void served.push({ pool, waitedMs }),
  });
});
afterAll(() => leakwatch.stop());

/** A request's record to ask in, as a handler would. */
const aResponse = (): ResponseRecord =>
  getRuntime()!.ledger.openResponse({}, { progress: () => 0, method: () => 'GET', path: () => '/wait/7', route: () => '/wait/:n', endOverrides: () => [] });

describe.each(SUBJECTS)('$name', (subject) => {
  describe('when a checkout is asked while its one connection is held', () => {
    it('waits among the pool’s waiters, owned by its request, and is served, timed, when the holder gives back', async () => {
      const pool = subject.make(10_000);
      const giveBack = await pool.hold();
      const before = { waiting: waiting.length, served: served.length };
      const response = aResponse();
      const asked = responseContext.run(response, () => pool.ask());
      await waitUntil(() => waiting.length === before.waiting + 1, 2000, 'the checkout to wait');
      const { pool: watch, checkout } = waiting.at(-1)!;
      expect(watch.kind).toBe(subject.kind);
      expect([...watch.waiters]).toEqual([checkout]);
      expect(checkout.owner).toBe(response);
      await sleep(150);
      await giveBack();
      await asked;
      expect(watch.waiters.size).toBe(0);
      const own = served.slice(before.served).filter((s) => s.pool === watch);
      expect(own.length).toBeGreaterThanOrEqual(1);
      expect(Math.max(...own.map((s) => s.waitedMs))).toBeGreaterThanOrEqual(140);
      getRuntime()!.ledger.closeResponse(response, 'finished');
      await pool.close();
    });
  });

  describe('when a checkout waits past the pool’s own timeout', () => {
    it('fails as it would without leakwatch, and leaves the waiters', async () => {
      // The pool's timeout covers the first checkout too, which connects: at 200 ms a loaded CI
      // machine once took longer to connect, and hold() failed instead of ask().
      const pool = subject.make(1000);
      const giveBack = await pool.hold();
      const before = waiting.length;
      const failure = await pool.ask().then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(Error);
      expect((failure as Error).message).toMatch(/time|Timeout/i);
      expect(waiting.length).toBe(before + 1);
      const { pool: watch } = waiting.at(-1)!;
      expect(watch.waiters.size).toBe(0);
      expect(watch.waiters.since).toBe(0);
      await giveBack();
      await pool.close();
    });
  });

  describe('when a request waits for the checkout past the response threshold', () => {
    it('is not stalled while it waits; the request holding the connection idle is, and the waiter’s own checkout is no leak', async () => {
      const ledger = getRuntime()!.ledger;
      const leakedConnections: ConnectionRecord[] = [];
      const stop = ledger.observe({ connectionLeaked: (connection) => void leakedConnections.push(connection) });
      const pool = subject.make(10_000);
      const holder = aResponse();
      const waiter = aResponse();
      try {
        const giveBack = await responseContext.run(holder, () => pool.hold());
        const before = waiting.length;
        const asked = responseContext.run(waiter, () => pool.ask());
        await waitUntil(() => waiting.length === before + 1, 2000, 'the checkout to wait');
        expect(waiter.pendingCheckouts).toBe(1);
        // Both past the threshold: the holder wrote nothing and holds its connection idle.
        ledger.sweep(ledger.now() + ledger.responseThresholdMs + 1);
        expect(holder.leak?.reason).toBe('unclosed');
        expect(waiter.leak).toBeNull();
        await giveBack();
        await asked;
        expect(waiter.pendingCheckouts).toBe(0);
        expect(waiter.leak).toBeNull();
        expect(leakedConnections.filter((c) => c.owner === waiter)).toEqual([]);
      } finally {
        stop();
        ledger.closeResponse(holder, 'finished');
        ledger.closeResponse(waiter, 'finished');
        await pool.close();
      }
    });

    it('is stalled all the same when it holds the pool’s one connection idle while it waits for another', async () => {
      const ledger = getRuntime()!.ledger;
      const pool = subject.make(1000);
      const response = aResponse();
      try {
        const giveBack = await responseContext.run(response, () => pool.hold());
        const before = waiting.length;
        const asked = responseContext.run(response, () => pool.ask()).then(
          () => null,
          (error: unknown) => error,
        );
        await waitUntil(() => waiting.length === before + 1, 2000, 'the checkout to wait');
        ledger.sweep(ledger.now() + ledger.responseThresholdMs + 1);
        expect(response.leak?.reason).toBe('unclosed');
        expect(await asked).toBeInstanceOf(Error); // the pool's own timeout
        expect(response.pendingCheckouts).toBe(0);
        await giveBack();
      } finally {
        ledger.closeResponse(response, 'finished');
        await pool.close();
      }
    });
  });

  describe('when the pool has an idle connection', () => {
    it('serves the checkout at once, without listing it as a waiter', async () => {
      const pool = subject.make(10_000);
      await pool.ask(); // the one connection, made and idle
      const before = { waiting: waiting.length, served: served.length };
      await pool.ask();
      expect(waiting.length).toBe(before.waiting);
      expect(served.length).toBeGreaterThan(before.served);
      await pool.close();
    });
  });
});

describe('when the loop is blocked past the exhaustion threshold while the holder’s query ends', () => {
  it('hears the reply, and the release that serves the waiter, before it checks: the pool is not called exhausted', async () => {
    const waits = getRuntime()!.waits;
    const threshold = waits.exhaustionThresholdMs;
    waits.reconfigure(300);
    const exhausted: string[] = [];
    const stop = waits.observe({ poolExhausted: (pool) => void exhausted.push(String(pool.name)) });
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
    try {
      (await pool.connect()).release(); // connected, so that the checkouts below wait on nothing else
      const holder = await pool.connect();
      // The server answers 100 ms in; the release then serves the waiter.
      const held = holder.query('SELECT pg_sleep(0.1)').then(() => holder.release());
      const before = waiting.length;
      const waiter = pool.connect();
      expect(waiting.length).toBe(before + 1);
      // The 300 ms threshold passes during the block, the reply comes in it.
      await blockLoopUntil(Date.now() + 600);
      (await waiter).release();
      await held;
      await sleep(50);
      expect(exhausted).toEqual([]);
    } finally {
      stop();
      waits.reconfigure(threshold);
      await pool.end();
    }
  });
});

describe('when a checkout’s new connection does not connect (a server that accepts and never answers)', () => {
  it.each([
    ['pool.connect()', (pool: pg.Pool) => pool.connect()],
    ['pool.query()', (pool: pg.Pool) => pool.query('SELECT 1')],
  ])('through %s: its request waits on the pool, not stalled, until the connect fails; stalled after that', async (_, ask) => {
    const ledger = getRuntime()!.ledger;
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const pool = new pg.Pool({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port, user: 'leakwatch', database: 'none', max: 1, connectionTimeoutMillis: 500 });
    const response = aResponse();
    try {
      const asked = responseContext.run(response, () => ask(pool)).then(
        () => null,
        (error: unknown) => error,
      );
      expect(response.pendingCheckouts).toBe(1);
      await waitUntil(() => sockets.size === 1, 2000, 'the pool to connect');
      ledger.sweep(ledger.now() + ledger.responseThresholdMs + 1);
      expect(response.leak).toBeNull();
      expect(String(await asked)).toMatch(/timeout/i); // pg's own connection timeout
      expect(response.pendingCheckouts).toBe(0);
      ledger.sweep(ledger.now() + 2 * ledger.responseThresholdMs + 2);
      expect(response.leak?.reason).toBe('unclosed');
    } finally {
      ledger.closeResponse(response, 'finished');
      for (const socket of sockets) socket.destroy();
      await pool.end();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
