import { randomBytes } from 'node:crypto';
import IORedis5 from 'ioredis';
import IORedis6 from 'ioredis6';
import type { Ledger } from '../../src/core/ledger.js';
import { ConnectionRecord, ResponseRecord } from '../../src/core/records.js';

export const REDIS_URL = process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** Both majors of ioredis, installed as `ioredis` (5.x) and the alias `ioredis6` (6.x). */
export const IOREDIS_MODULES = [
  ['ioredis 5', IORedis5],
  ['ioredis 6', IORedis6 as unknown as typeof IORedis5],
] as const;

export type RedisModule = typeof IORedis5;
export type RedisClient = InstanceType<typeof IORedis5>;

/** A key prefix no other test run shares (the Redis server may be shared). */
export const uniquePrefix = (what: string) => `leakwatch-test:${what}:${randomBytes(4).toString('hex')}`;

/** Every record the ledger holds for `client` now; one at most unless something is wrong. */
export const heldFor = (ledger: Ledger, client: object): ConnectionRecord[] => [...ledger.held].filter((c) => c.target === client);

/** Redis connections leaked (and not resolved) since `since`. */
export const redisLeaksSince = (ledger: Ledger, since: number): ConnectionRecord[] =>
  ledger.leaks.filter(
    (l): l is ConnectionRecord => l instanceof ConnectionRecord && l.kind === 'redis' && l.leak !== null && l.leak.detectedAt >= since && l.leak.resolvedAt === 0,
  );

/** Responses leaked since `since`. */
export const responseLeaksSince = (ledger: Ledger, since: number): ResponseRecord[] =>
  ledger.leaks.filter((l): l is ResponseRecord => l instanceof ResponseRecord && l.leak !== null && l.leak.detectedAt >= since);

/** `ip:port` of the client's socket, as CLIENT KILL ADDR wants it. */
export function addressOf(client: RedisClient): string {
  const socket = client.stream;
  return `${socket.localAddress}:${socket.localPort}`;
}
