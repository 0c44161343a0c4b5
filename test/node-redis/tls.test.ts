import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResponseProbe } from '../../src/core/records.js';
import { start, type Started } from '../../src/index.js';
import { getRuntime, responseContext } from '../support/internals.js';
import { sleep, waitUntil } from '../support/http.js';
import { NODE_REDIS_MODULES, closeClient, redisLeaksSince, startOwnRedis, type OwnRedis } from '../support/node-redis.js';

// A TLS-only redis-server of this file's own, with a certificate made for it.
const nodeMajor = Number(process.versions.node.split('.')[0]);
let server: OwnRedis;
let started: Started;
beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-tls-'));
  const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  server = await startOwnRedis([], { cert, key });
  started = start({ responseThreshold: 200, connectionThreshold: 200 });
});
afterAll(async () => {
  started.stop();
  await server?.stop();
});

const ledger = () => getRuntime()!.ledger;
const probe: ResponseProbe = { progress: () => 0, method: () => 'GET', path: () => '/tls', route: () => null, endOverrides: () => [] };

describe.each(NODE_REDIS_MODULES)('%s over TLS', (_name, redis) => {
  /** A client made by a request that has closed, and never closed itself. */
  async function leakedClient() {
    const since = ledger().now();
    const response = ledger().openResponse({}, probe);
    const client = responseContext.run(response, () => redis.createClient({ url: server.url, socket: { tls: true, rejectUnauthorized: false } }));
    client.on('error', () => {});
    await client.connect();
    await client.incr('leakwatch-tls');
    ledger().closeResponse(response, 'finished');
    await waitUntil(() => redisLeaksSince(ledger(), since).length > 0, 3000, 'the TLS connection to leak');
    const [leaked] = redisLeaksSince(ledger(), since);
    return { client, leaked };
  }

  it.runIf(nodeMajor >= 22)('confirms a leaked connection in CLIENT LIST over TLS, with the app\'s own TLS options (Node 22 and later)', async () => {
    const { client, leaked } = await leakedClient();
    expect(leaked.target).toBe(client);
    await waitUntil(() => leaked.server !== null, 3000, 'CLIENT LIST over TLS');
    expect(leaked.server).toMatchObject({ clientId: expect.any(Number), state: 'idle', cmd: 'incr' });
    await closeClient(client);
  });

  it.runIf(nodeMajor < 22)('reports a leaked TLS connection but cannot confirm it on Node 20, which publishes no socket for TLS', async () => {
    const { client, leaked } = await leakedClient();
    expect(leaked.target).toBe(client);
    await sleep(500);
    expect(leaked.server).toBeNull();
    await closeClient(client);
  });
});
