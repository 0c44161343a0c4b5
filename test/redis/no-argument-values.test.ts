import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript fixture
import { createApp as createHealthyApp } from '../../fixtures/redis-healthy.mjs';
// @ts-expect-error plain JavaScript fixture
import { createApp as createLeakyApp } from '../../fixtures/redis-leaky.mjs';
import { ResponseRecord } from '../../src/core/records.js';
import { instrumentIoredis, start, type Started } from '../../src/index.js';
import { responseContext, getRuntime } from '../support/internals.js';
import { fireAndForget, listen, request, waitUntil } from '../support/http.js';
import { stringsOf } from '../support/strings.js';
import { IOREDIS_MODULES, REDIS_URL, redisLeaksSince, uniquePrefix, type RedisClient } from '../support/redis.js';

let started: Started;
const logs: string[] = [];
beforeAll(() => {
  started = start({ responseThreshold: 300, connectionThreshold: 300, log: (line) => logs.push(line) });
});
afterAll(() => started.stop());

const ledger = () => getRuntime()!.ledger;

describe('stringsOf(records)', () => {
  it('finds a string anywhere in a record, so the checks below can fail', () => {
    const response = ledger().openResponse({}, { progress: () => 0, method: () => 'GET', path: () => '/', route: () => null, endOverrides: () => [] });
    const connection = responseContext.run(response, () => ledger().acquireConnection({ kind: 'redis', pool: 'p', pooled: false }));
    connection.server = { state: 'needle-in-a-record', stateAgeMs: null };
    expect(stringsOf([response]).some((s) => s.includes('needle-in-a-record'))).toBe(true);
    ledger().releaseConnection(connection);
    ledger().closeResponse(response, 'finished');
  });
});

describe.each(IOREDIS_MODULES)('instrumentIoredis(%s)', (_name, Redis) => {
  let undo: () => void;
  beforeAll(() => {
    undo = instrumentIoredis(Redis);
  });
  afterAll(() => undo());

  it('puts no Redis argument value in any record, confirmation or log line', async () => {
    const secret = `hunter2${randomBytes(6).toString('hex')}`;
    const prefix = uniquePrefix('secrets');
    const since = ledger().now();
    const leaky = createLeakyApp({ Redis, redisUrl: REDIS_URL, prefix });
    const healthy = createHealthyApp({ Redis, redisUrl: REDIS_URL, prefix });
    const [leakyPort, healthyPort] = await Promise.all([listen(leaky.server as http.Server), listen(healthy.server as http.Server)]);
    await healthy.ready;

    // Keys, channels and values all carry the secret.
    await request(leakyPort, `/counter?key=${secret}`);
    await request(leakyPort, `/events?channel=${secret}`, { abortAfterMs: 150 });
    const silent = fireAndForget(leakyPort, `/events/silent?channel=${secret}`);
    await request(healthyPort, `/counter?key=${secret}`);
    const waiting = request(healthyPort, `/queue?key=queue-${secret}&timeout=0`);
    await (healthy.shared as RedisClient).set(`${prefix}:value:${secret}`, secret);
    await (healthy.shared as RedisClient).publish(`${prefix}:news`, secret);

    await waitUntil(() => redisLeaksSince(ledger(), since).filter((c) => c.server !== null).length === 3, 5000, 'three confirmed leaks');
    ledger().finalize(); // the waiting response and its pending BLPOP become part of the report
    const records = [...ledger().leaks, ...ledger().held, ...ledger().eachOpenResponse()];
    expect(records.some((r) => r instanceof ResponseRecord && (r.operations?.size ?? 0) > 0)).toBe(true);

    const strings = stringsOf(records);
    expect(strings.length).toBeGreaterThan(100);
    expect(strings.filter((s) => s.includes(secret))).toEqual([]);
    expect(logs.filter((line) => line.includes(secret))).toEqual([]);

    await (healthy.shared as RedisClient).lpush(`${prefix}:queue-${secret}`, 'x');
    await waiting;
    silent.destroy();
    await Promise.all([leaky.close(), healthy.close()]);
  });
});
