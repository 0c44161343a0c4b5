import http from 'node:http';
import { afterAll, beforeAll } from 'vitest';
import pg from 'pg';
import type { Ledger } from '../../src/core/ledger.js';
import type { ConnectionRecord, ResponseRecord } from '../../src/core/records.js';
import { getRuntime } from '../../src/core/runtime.js';
import { start, type LeakwatchOptions } from '../../src/index.js';
import { closeActivityReaders, instrumentPg } from '../../src/pg/index.js';

export const pgUrl = (): string => process.env.LEAKWATCH_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** Everything on (node:http, pg) with the given thresholds; `stop()` undoes it. */
export function startLeakwatch(options: LeakwatchOptions): { ledger: Ledger; stop(): void } {
  const started = start(options);
  const undoPg = instrumentPg(pg);
  return {
    ledger: getRuntime()!.ledger,
    stop() {
      undoPg();
      started.stop();
      closeActivityReaders();
    },
  };
}

const ownersAtAcquire = new WeakMap<ConnectionRecord, ResponseRecord | null>();

/**
 * Lists in `acquired` every connection `ledger` acquires from now on, and keeps the owner each
 * had then (see {@link ownerAtAcquire}); the returned function stops.
 */
export function listAcquisitions(ledger: Ledger, acquired: ConnectionRecord[]): () => void {
  return ledger.observe({
    connectionAcquired: (c) => {
      acquired.push(c);
      ownersAtAcquire.set(c, c.owner);
    },
  });
}

/**
 * The owner a record listed by {@link listAcquisitions} had as it was acquired: a record released
 * without a leak lets go of its owner (Ledger#releaseConnection).
 */
export function ownerAtAcquire(record: ConnectionRecord): ResponseRecord | null | undefined {
  return ownersAtAcquire.get(record);
}

/** The held record whose target is `client` (the ledger's view of a pg client). */
export function recordOf(client: object): ConnectionRecord {
  const runtime = getRuntime();
  if (runtime === undefined) throw new Error('no leakwatch runtime');
  for (const record of runtime.ledger.held) if (record.target === client) return record;
  throw new Error('the client is not held in the ledger');
}

const isConnection = (item: ResponseRecord | ConnectionRecord): item is ConnectionRecord => 'kind' in item;

/** Leaks not resolved yet, split by kind. */
export function openLeaks(ledger: Ledger): { responses: ResponseRecord[]; connections: ConnectionRecord[] } {
  const open = ledger.leaks.filter((item) => item.leak !== null && item.leak.resolvedAt === 0);
  return {
    responses: open.filter((item): item is ResponseRecord => !isConnection(item)),
    connections: open.filter(isConnection),
  };
}

/** Ends a pool even when the app under test leaked its clients: those are released (and closed) first. */
export async function forceEnd(pool: pg.Pool): Promise<void> {
  const internals = pool as unknown as { _clients: pg.PoolClient[]; _idle: Array<{ client: pg.PoolClient }> };
  const idle = new Set(internals._idle.map((item) => item.client));
  for (const client of [...internals._clients]) {
    if (idle.has(client)) continue;
    try {
      client.release(true);
    } catch {
      // released already
    }
  }
  await pool.end().catch(() => {});
}

/** A GET whose client stops reading once the answer starts and hangs up after `afterMs`. */
export function getAndLeave(port: number, path: string, afterMs = 100): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path }, (res) => {
      res.pause();
      setTimeout(() => (req.destroy(), resolve()), afterMs);
    });
    req.on('error', () => resolve());
    req.end();
  });
}

/**
 * Starts leakwatch and a pool (max 4, `poolOptions` on top) before the file's tests and ends both
 * after them, the clients the app never released included.
 */
export function useLeakwatchAndPool(options: LeakwatchOptions, poolOptions: pg.PoolConfig = {}): { readonly ledger: Ledger; readonly pool: pg.Pool } {
  let leakwatch: ReturnType<typeof startLeakwatch> | undefined;
  let pool: pg.Pool | undefined;
  beforeAll(() => {
    leakwatch = startLeakwatch(options);
    pool = new pg.Pool({ connectionString: pgUrl(), max: 4, ...poolOptions });
  });
  afterAll(async () => {
    if (pool) await forceEnd(pool);
    leakwatch?.stop();
  });
  return {
    get ledger() {
      return leakwatch!.ledger;
    },
    get pool() {
      return pool!;
    },
  };
}
