import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/core/ledger.js';
import type { ConnectionRecord, ResponseRecord } from '../../src/core/records.js';
import { poolStats } from '../../src/pg/index.js';
import type { Report } from '../../src/report/json.js';
import { ROOT } from '../support/cli.js';
import { close, listen, request, sleep, waitUntil } from '../support/http.js';
import { currentResponse } from '../support/internals.js';
import { reportOf } from '../support/leaks.js';
import { expectValidReport } from '../support/report-schema.js';
import { listAcquisitions, openLeaks, ownerAtAcquire, startLeakwatch } from '../pg/support.js';

/** The report of the ledger now, checked against the schema. */
export function validReport(ledger: Ledger): Report {
  const report = reportOf(ledger);
  expectValidReport(report);
  return report;
}

/**
 * Starts leakwatch (node:http and pg; thresholds 5 s for responses, 300 ms for connections) before
 * the file's tests and stops it after them; `acquired` lists every connection acquired meanwhile.
 * No test here waits for a response to leak; the response threshold is long so that a healthy app's
 * first request (Prisma loads its query compiler then) is not taken for a leak on a busy machine.
 */
export function watchAcquisitions(): { readonly ledger: Ledger; readonly acquired: ConnectionRecord[] } {
  let leakwatch: ReturnType<typeof startLeakwatch>;
  const acquired: ConnectionRecord[] = [];
  beforeAll(() => {
    leakwatch = startLeakwatch({ responseThreshold: 5000, connectionThreshold: 300 });
    listAcquisitions(leakwatch.ledger, acquired);
  });
  afterAll(() => leakwatch.stop());
  return {
    get ledger() {
      return leakwatch.ledger;
    },
    acquired,
  };
}

/** A library's side of {@link expectQueuedCheckoutOwnedByAsker}, on a pool of one connection. */
export interface QueuedCheckout {
  /** Request A's work: takes the pool's one connection, calls `holding()` and keeps it until `released`. */
  hold(holding: () => void, released: Promise<void>): Promise<unknown>;
  /** Request B's work: one query, which must wait for A's connection. */
  query(): Promise<unknown>;
  /** Checkouts waiting in the pool's queue now. */
  waiting(): number;
}

/**
 * Request A holds the one connection of a pool; request B asks for one and waits in the queue until
 * A lets go. Each checkout belongs to the request that asked for it (B's is not A's, although A's
 * release served it), and both are released once both have answered.
 */
export async function expectQueuedCheckoutOwnedByAsker(acquired: ConnectionRecord[], library: QueuedCheckout): Promise<void> {
  const responses = new Map<string, ResponseRecord | undefined>();
  let aHolds!: () => void;
  const holding = new Promise<void>((resolve) => (aHolds = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = http.createServer(async (req, res) => {
    responses.set(req.url!, currentResponse());
    await (req.url === '/a' ? library.hold(aHolds, released) : library.query());
    res.end(req.url);
  });
  const port = await listen(server);
  const first = acquired.length;
  const a = request(port, '/a');
  await holding;
  const b = request(port, '/b');
  await waitUntil(() => library.waiting() === 1, 2000, 'B to queue');
  release();
  expect(await a).toMatchObject({ body: '/a' });
  expect(await b).toMatchObject({ body: '/b' });
  const records = acquired.slice(first).filter((r) => r.pooled);
  expect(records.map(ownerAtAcquire)).toEqual([responses.get('/a'), responses.get('/b')]);
  expect(records.every((r) => r.releasedAt > 0)).toBe(true);
  await close(server);
}

/** Matches `file:line:column` of the one line of a fixture that contains `text`, for acquisition sites. */
export function lineOf(fixture: string, text: string): RegExp {
  const file = path.join(ROOT, 'fixtures', fixture);
  const lines = readFileSync(file, 'utf8').split('\n');
  const found = lines.flatMap((l, i) => (l.includes(text) ? [i + 1] : []));
  if (found.length !== 1) throw new Error(`${fixture} has ${found.length} lines with ${text}, not one`);
  return new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${found[0]}:\\d+$`);
}

/** Connections the ledger holds now for the pool named `pool`. */
export function heldIn(ledger: Ledger, pool: string): ConnectionRecord[] {
  return [...ledger.held].filter((c) => c.pool === pool);
}

export interface OrmApp {
  server: http.Server;
  /** The app's own shutdown. */
  close(): Promise<void>;
  /** Gives back what the leaky route stranded, as a late fix would. */
  returnStranded(): Promise<void>;
}

export interface OrmSpec {
  /** The library as the test names it: `typeorm 1.1`. */
  library: string;
  fixture: string;
  createApp(): OrmApp | Promise<OrmApp>;
  healthyTraffic(port: number): Promise<void>;
  /**
   * The leaky request, the state its connection is left in, and the fixture's text on the line that
   * acquired it; null where no frame of the app is on any stack V8 can give at the checkout.
   */
  leak: { path: string; ownerPath: string; status: number; state: 'idle' | 'idle-in-transaction'; acquiredOn: string | null };
}

/**
 * An app's one leak, as every pool library's must be reported: after `servedBefore()` the request to
 * `leak.path` answers `leak.status` and leaves one connection behind, in `leak.state` (pg_stat_activity
 * says so too), owned by the closed response to `leak.ownerPath` and acquired at the fixture's line
 * (or, where none is reachable, in the library's frames); the app's late fix (`returnStranded()`)
 * resolves the leak.
 */
export async function expectLeakFoundAndResolved(
  ledger: Ledger,
  app: OrmApp,
  port: number,
  { fixture, servedBefore, leak }: { fixture: string; servedBefore(): Promise<void>; leak: OrmSpec['leak'] },
): Promise<void> {
  const before = openLeaks(ledger).connections.length;
  await servedBefore();
  expect(await request(port, leak.path)).toMatchObject({ status: leak.status });

  await waitUntil(() => openLeaks(ledger).connections.length === before + 1, 3000, 'the connection to leak');
  const connection = openLeaks(ledger).connections.at(-1)!;
  expect(connection).toMatchObject({ kind: 'pg', pooled: true, pool: '127.0.0.1:5432/test', state: leak.state });
  expect(connection.leak?.reason).toBe('held-after-response-closed');
  await waitUntil(() => typeof connection.server?.state === 'string', 3000, 'pg_stat_activity');
  expect(connection.server?.state).toBe(leak.state === 'idle' ? 'idle' : 'idle in transaction');
  const reported = validReport(ledger).leakedConnections.find((c) => c.id === connection.id)!;
  expect(reported).toMatchObject({ ownerPath: leak.ownerPath, ownerState: 'closed', ownerOutcome: 'finished', state: leak.state });
  if (leak.acquiredOn === null) {
    expect(reported.acquisitionSite).toBeNull();
    expect(reported.acquiredAt).toMatch(/node_modules/);
  } else {
    expect(reported.acquisitionSite ?? `none in:\n${reported.acquiredAt}`).toMatch(lineOf(fixture, leak.acquiredOn));
  }
  await app.returnStranded();
  expect(connection.leak?.resolvedAt).toBeGreaterThan(0);
}

/**
 * The acceptance of one pg-pool-based library, in-process against the real PostgreSQL: a healthy
 * app reports nothing (its pool's idle clients included), and its one leak is found, owned by the
 * request that made it, at the app's line, confirmed by pg_stat_activity, and resolved when the
 * app finally gives the connection back.
 */
export function describeLibrary(spec: OrmSpec): void {
  const leakwatch = watchAcquisitions();
  const { acquired } = leakwatch;

  describe(`${spec.library} › a healthy app`, () => {
    it('reports no leak: requests at once, transactions that commit and roll back, and the pool’s idle clients', async () => {
      const app = await spec.createApp();
      const port = await listen(app.server);
      const first = acquired.length;
      await spec.healthyTraffic(port);
      await sleep(700); // two connection thresholds

      const { ledger } = leakwatch;
      expect(ledger.leaks).toEqual([]);
      expect(validReport(ledger).summary).toMatchObject({ leakedResponses: 0, leakedConnections: 0 });
      const checkouts = acquired.slice(first).filter((r) => r.pooled);
      expect(checkouts.length).toBeGreaterThan(0);
      expect(checkouts.every((r) => (ownerAtAcquire(r) ?? null) !== null && r.releasedAt > 0)).toBe(true);
      const pools = poolStats().filter((s) => s.name === '127.0.0.1:5432/test');
      expect(pools.length).toBeGreaterThan(0);
      expect(pools.every((s) => s.used === 0 && s.pending === 0)).toBe(true);
      expect(pools.some((s) => s.idle > 0)).toBe(true); // idle in the pool, held by nobody
      await app.close();
      await close(app.server);
    });
  });

  describe(`${spec.library} › when ${spec.leak.path} leaves its connection behind`, () => {
    it(`reports it ${spec.leak.state}, owned by ${spec.leak.ownerPath}, ${spec.leak.acquiredOn === null ? 'with the library’s frames (no frame of the app is reachable)' : 'at the app’s line'}, confirmed by pg_stat_activity, resolved when given back`, async () => {
      const app = await spec.createApp();
      const port = await listen(app.server);
      // An app that has served before: kysely's very first query waits for its driver to start, and
      // that wait cuts V8's async stack off from the app's frames (the only checkout without a site).
      await expectLeakFoundAndResolved(leakwatch.ledger, app, port, {
        fixture: spec.fixture,
        servedBefore: async () => expect(await request(port, '/count')).toMatchObject({ status: 200 }),
        leak: spec.leak,
      });
      await app.close();
      await close(app.server);
    });
  });
}
