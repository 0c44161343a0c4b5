import { randomBytes } from 'node:crypto';
import IORedis5 from 'ioredis';
import IORedis6 from 'ioredis6';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Ledger } from '../../src/core/ledger.js';
import { ConnectionRecord, ResponseRecord } from '../../src/core/records.js';
import { formatStack } from '../../src/core/stack.js';
import { instrumentIoredis } from '../../src/index.js';
import type { LeakedConnection, Report } from '../../src/report/json.js';
import { fireAndForget, waitUntil } from './http.js';

export const REDIS_URL = process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** Both majors of ioredis, installed as `ioredis` (5.x) and the alias `ioredis6` (6.x). */
export const IOREDIS_MODULES = [
  ['ioredis 5', IORedis5],
  ['ioredis 6', IORedis6 as unknown as typeof IORedis5],
] as const;

export type RedisModule = typeof IORedis5;
export type RedisClient = InstanceType<typeof IORedis5>;

/**
 * `instrumentIoredis(Redis)` and a client of the test's own for the server's admin commands (CLIENT
 * LIST, CLIENT KILL, LPUSH), before the block's tests; after them the client quits and the
 * instrumentation is undone. `undo()` and `instrument()` are for a test that needs it off a while.
 */
export function useInstrumentedIoredis(Redis: RedisModule): { admin(): RedisClient; undo(): void; instrument(): void } {
  let undo = () => {};
  let admin: RedisClient;
  beforeAll(() => {
    undo = instrumentIoredis(Redis);
    admin = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await admin.quit();
    undo();
  });
  return {
    admin: () => admin,
    undo: () => undo(),
    instrument() {
      undo = instrumentIoredis(Redis);
    },
  };
}

/** A key prefix no other test run shares (the Redis server may be shared). */
export const uniquePrefix = (what: string) => `leakwatch-test:${what}:${randomBytes(4).toString('hex')}`;

/** Every record the ledger holds for `client` now; one at most unless something is wrong. */
export const heldFor = (ledger: Ledger, client: object): ConnectionRecord[] => [...ledger.held].filter((c) => c.target === client);

/** Redis connections leaked (and not resolved) since `since`. */
export const redisLeaksSince = (ledger: Ledger, since: number): ConnectionRecord[] =>
  ledger.leaks.filter(
    (l): l is ConnectionRecord => l instanceof ConnectionRecord && l.kind === 'redis' && l.leak !== null && l.leak.detectedAt >= since && l.leak.resolvedAt === 0,
  );

/** Waits (3 s at most) for a Redis connection to leak after `since` and returns it; fails if more than one did. */
export async function onlyRedisLeakSince(ledger: () => Ledger, since: number, what: string): Promise<ConnectionRecord> {
  await waitUntil(() => redisLeaksSince(ledger(), since).length > 0, 3000, what);
  const [leaked, ...others] = redisLeaksSince(ledger(), since);
  expect(others).toEqual([]);
  return leaked;
}

/**
 * The Redis connection the request to `url` left behind, its response closed (`outcome`): the only
 * one leaked since `since`, owned by that response, in `state`, acquired by the code of `fixture`,
 * and confirmed by CLIENT LIST (in the same state, `cmd` its last command).
 */
export async function expectLeftByClosedResponse(
  ledger: () => Ledger,
  responses: Map<string, ResponseRecord>,
  since: number,
  expected: { url: string; outcome: 'finished' | 'aborted'; state: 'idle' | 'subscriber'; cmd: string; fixture: RegExp },
): Promise<ConnectionRecord> {
  const leaked = await onlyRedisLeakSince(ledger, since, `the connection of ${expected.url} to leak`);
  expect(leaked.leak?.reason).toBe('held-after-response-closed');
  expect(leaked.owner).toBe(responses.get(expected.url));
  expect(leaked.owner?.outcome).toBe(expected.outcome);
  expect(leaked.state).toBe(expected.state);
  expect(formatStack(leaked.stack)).toMatch(expected.fixture);
  await waitUntil(() => leaked.server !== null, 3000, 'CLIENT LIST to confirm it');
  expect(leaked.server).toMatchObject({ state: expected.state, cmd: expected.cmd });
  return leaked;
}

/**
 * The same for every Redis library: a request to `path`, a route that subscribes and never answers,
 * leaves its response unclosed and its subscriber held by it, linked both ways; the client hangs up,
 * and once the subscriber is closed (`closeClient`) its leak is resolved.
 */
export async function expectSubscriberHeldByUnclosedResponse(
  ledger: () => Ledger,
  served: { readonly port: number; readonly responses: Map<string, ResponseRecord> },
  path: string,
  closeClient: (client: any) => Promise<unknown>,
): Promise<void> {
  const since = ledger().now();
  const req = fireAndForget(served.port, path);

  const leaked = await onlyRedisLeakSince(ledger, since, 'the subscriber to leak');
  const response = served.responses.get(path)!;
  expect(response.leak?.reason).toBe('unclosed');
  expect(leaked.leak?.reason).toBe('held-by-leaked-response');
  expect(leaked.owner).toBe(response);
  expect([...(response.connections ?? [])]).toEqual([leaked]);
  expect(leaked.state).toBe('subscriber');

  req.destroy();
  await closeClient(leaked.target);
  expect(leaked.leak?.resolvedAt).toBeGreaterThan(0);
}

/**
 * What both leaky Redis fixtures (redis-leaky.mjs, node-redis-leaky.mjs) leave in a `leakwatch run`
 * report: /counter's client idle after its response, /events' subscriber after its client left, and
 * /events/silent's subscriber held by its open response; each acquired in `fixture` and confirmed by
 * the server. Returns the leaked connections by owner path.
 */
export function expectConnectionsLeftByLeakyFixture(report: Report, fixture: string): Record<string, LeakedConnection> {
  const byPath = Object.fromEntries(report.leakedConnections.map((c) => [c.ownerPath, c]));
  expect(Object.keys(byPath).sort()).toEqual(['/counter', '/events', '/events/silent']);
  expect(byPath['/counter']).toMatchObject({ kind: 'redis', reason: 'held-after-response-closed', state: 'idle', ownerState: 'closed' });
  expect(byPath['/events']).toMatchObject({ reason: 'held-after-response-closed', state: 'subscriber', ownerState: 'closed' });
  expect(byPath['/events/silent']).toMatchObject({ reason: 'held-by-leaked-response', state: 'subscriber', ownerState: 'open' });
  for (const connection of report.leakedConnections) {
    expect(connection.acquiredAt).toMatch(new RegExp(`${fixture.replaceAll('.', '\\.')}:\\d+`));
    expect(connection.server).toMatchObject({ clientId: expect.any(Number), state: connection.state });
  }
  return byPath;
}

/** Responses leaked since `since`. */
export const responseLeaksSince = (ledger: Ledger, since: number): ResponseRecord[] =>
  ledger.leaks.filter((l): l is ResponseRecord => l instanceof ResponseRecord && l.leak !== null && l.leak.detectedAt >= since);

/** `ip:port` of the client's socket, as CLIENT KILL ADDR wants it. */
export function addressOf(client: RedisClient): string {
  const socket = client.stream;
  return `${socket.localAddress}:${socket.localPort}`;
}
