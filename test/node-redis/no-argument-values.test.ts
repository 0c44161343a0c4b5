import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript fixture
import { createApp as createHealthyApp } from '../../fixtures/node-redis-healthy.mjs';
// @ts-expect-error plain JavaScript fixture
import { createApp as createLeakyApp } from '../../fixtures/node-redis-leaky.mjs';
import { ResponseRecord } from '../../src/core/records.js';
import { buildReport } from '../../src/report/json.js';
import { formatReport } from '../../src/report/text.js';
import { createMetrics, DB_CLIENT_LEAKED_CONNECTIONS, start, type Started } from '../../src/index.js';
import { getRuntime, responseContext } from '../support/internals.js';
import { fireAndForget, listen, request, waitUntil } from '../support/http.js';
import { stringsOf } from '../support/strings.js';
import { NODE_REDIS_MODULES, redisLeaksSince, startOwnRedis, uniquePrefix, type NodeRedisClient, type OwnRedis } from '../support/node-redis.js';
import { valueOf } from '../metrics/support/scrape.js';

// A server of this file's own that requires a password, so that the app's URL carries one too.
const password = `hunter2pw${randomBytes(6).toString('hex')}`;
let server: OwnRedis;
let started: Started;
const logs: string[] = [];
beforeAll(async () => {
  server = await startOwnRedis(['--requirepass', password]);
  started = start({ responseThreshold: 300, connectionThreshold: 300, log: (line) => logs.push(line) });
});
afterAll(async () => {
  started.stop();
  await server.stop();
});

const ledger = () => getRuntime()!.ledger;

/** Where `secret` shows in leakwatch's records, reports, metrics and log lines: what the tests below search. */
function placesOf(secret: string, { records, texts }: { records: unknown[]; texts: Record<string, string> }): string[] {
  const places = stringsOf(records)
    .filter((s) => s.includes(secret))
    .map((s) => `record: ${s}`);
  for (const [name, text] of Object.entries(texts)) if (text.includes(secret)) places.push(name);
  return places;
}

describe('placesOf(secret, …)', () => {
  it('finds a secret anywhere in a record or a text, so the checks below can fail', () => {
    const response = ledger().openResponse({}, { progress: () => 0, method: () => 'GET', path: () => '/', route: () => null, endOverrides: () => [] });
    const connection = responseContext.run(response, () => ledger().acquireConnection({ kind: 'redis', pool: 'p', pooled: false }));
    connection.server = { state: 'needle-in-a-record', stateAgeMs: null };
    ledger().finalize((r) => r === response);
    const report = buildReport(ledger(), ledger().now(), ledger().now(), (item) => item === response || item === connection);
    const found = placesOf('needle-in-a', { records: [response], texts: { report: JSON.stringify(report), text: formatReport(report), log: 'a needle-in-a-log line' } });
    expect(found).toEqual(['record: needle-in-a-record', 'report', 'text', 'log']);
    ledger().releaseConnection(connection);
    ledger().closeResponse(response, 'finished');
  });
});

describe.each(NODE_REDIS_MODULES)('%s', (_name, redis) => {
  it('puts no Redis argument value and no password in any record, report, metric or log line', async () => {
    const secret = `hunter2${randomBytes(6).toString('hex')}`;
    const prefix = uniquePrefix('node-redis-secrets');
    const redisUrl = `redis://:${password}@127.0.0.1:${server.port}`;
    const since = ledger().now();
    const metrics = createMetrics({ registry: new Registry() });
    const leaky = createLeakyApp({ redis, redisUrl, prefix });
    const healthy = createHealthyApp({ redis, redisUrl, prefix });
    const [leakyPort, healthyPort] = await Promise.all([listen(leaky.server as http.Server), listen(healthy.server as http.Server)]);
    await Promise.all([leaky.ready, healthy.ready]);

    // Keys, channels and values all carry the secret.
    await request(leakyPort, `/counter?key=${secret}&limit=0`);
    await request(leakyPort, `/events?channel=${secret}`, { abortAfterMs: 150 });
    const silent = fireAndForget(leakyPort, `/events/silent?channel=${secret}`);
    await request(healthyPort, `/counter?key=${secret}`);
    await request(healthyPort, `/transfer?from=${secret}&to=${secret}-to`);
    await request(healthyPort, `/pooled?key=${secret}&queue=${secret}-queue&timeout=0.1`);
    const waiting = request(leakyPort, `/jobs/next?queue=${secret}-jobs`);
    await waitUntil(() => [...ledger().eachOpenResponse()].some((r) => (r.operations?.size ?? 0) > 0), 3000, 'the BLPOP on the shared client');
    const shared = healthy.shared as NodeRedisClient;
    await shared.set(`${prefix}:value:${secret}`, secret);
    await shared.publish(`${prefix}:news`, secret);
    expect(await shared.get(`${prefix}:value:${secret}`)).toBe(secret); // the secret went through the instrumented client

    // Three leaks, confirmed in CLIENT LIST through leakwatch's own connection (which authenticated with the password).
    await waitUntil(() => redisLeaksSince(ledger(), since).filter((c) => c.server !== null).length === 3, 5000, 'three confirmed leaks');
    ledger().finalize(); // the waiting response and its pending BLPOP become part of the report
    const records = [...ledger().leaks, ...ledger().held, ...ledger().eachOpenResponse()];
    expect(records.some((r) => r instanceof ResponseRecord && (r.operations?.size ?? 0) > 0)).toBe(true);
    const report = buildReport(ledger(), since);
    const exposition = (await metrics.scrape()).body;
    expect(valueOf(exposition, DB_CLIENT_LEAKED_CONNECTIONS, { db_system: 'redis', pool: `127.0.0.1:${server.port}/0`, reason: 'held-after-response-closed' })).toBeGreaterThan(0);

    const searched = { records, texts: { report: JSON.stringify(report), text: formatReport(report), metrics: exposition, log: logs.join('\n') } };
    expect(stringsOf(records).length).toBeGreaterThan(100);
    expect(placesOf(secret, searched)).toEqual([]);
    expect(placesOf(password, searched)).toEqual([]);

    await shared.lPush(`${prefix}:${secret}-jobs`, 'x');
    await waiting;
    silent.destroy();
    metrics.close();
    await Promise.all([leaky.close(), healthy.close()]);
  });
});
