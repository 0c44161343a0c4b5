import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript fixture
import { createApp as createHealthyApp } from '../../fixtures/node-redis-healthy.mjs';
// @ts-expect-error plain JavaScript fixture
import { createApp as createLeakyApp } from '../../fixtures/node-redis-leaky.mjs';
import { start, type Started } from '../../src/index.js';
import { getRuntime } from '../support/internals.js';
import { listen, request, sleep, waitUntil } from '../support/http.js';
import { NODE_REDIS_MODULES, heldFor, redisLeaksSince, responseLeaksSince, startOwnRedis, uniquePrefix, type NodeRedisClient, type OwnRedis } from '../support/node-redis.js';

// A Redis server of this file's own, restarted under the apps; the shared one is never touched.
const THRESHOLD_MS = 300;
let started: Started;
let server: OwnRedis;
beforeAll(async () => {
  started = start({ responseThreshold: THRESHOLD_MS, connectionThreshold: THRESHOLD_MS });
  server = await startOwnRedis();
});
afterAll(async () => {
  started.stop();
  await server.stop();
});

const ledger = () => getRuntime()!.ledger;

describe.each(NODE_REDIS_MODULES)('%s', (_name, redis) => {
  describe('when the Redis server restarts under a healthy and a leaky app', () => {
    let healthy: { server: http.Server; shared: NodeRedisClient; worker: NodeRedisClient; news: NodeRedisClient; ready: Promise<unknown>; received: string[]; close(): Promise<void> };
    let leaky: { server: http.Server; made: Set<NodeRedisClient>; ready: Promise<unknown>; close(): Promise<void> };
    const prefix = uniquePrefix('node-redis-restart');

    let admin: NodeRedisClient;

    beforeAll(async () => {
      admin = redis.createClient({ url: server.url });
      admin.on('error', () => {});
      await admin.connect();
      healthy = createHealthyApp({ redis, redisUrl: server.url, prefix });
      leaky = createLeakyApp({ redis, redisUrl: server.url, prefix });
      await Promise.all([healthy.ready, leaky.ready]);
    });
    afterAll(() => Promise.all([healthy.close(), leaky.close(), admin.disconnect()]));

    it('keeps one record per client through the reconnects, leaves no phantom leak, and the leaks it had stay as they were', async () => {
      const [healthyPort, leakyPort] = await Promise.all([listen(healthy.server), listen(leaky.server)]);
      const before = ledger().now();
      expect(await request(leakyPort, '/counter?key=visits&limit=0')).toMatchObject({ status: 500 });
      await waitUntil(() => redisLeaksSince(ledger(), before).length === 1, 3000, 'the leak before the restart');
      const [leakedBefore] = redisLeaksSince(ledger(), before);

      const startup = [healthy.shared, healthy.worker, healthy.news];
      const records = startup.map((client) => heldFor(ledger(), client));
      expect(records.map((r) => r.length)).toEqual([1, 1, 1]);
      const since = ledger().now();
      let blocked = 0;
      const watch = setInterval(() => {
        admin.sendCommand(['CLIENT', 'LIST']).then((list: string) => (blocked = (list.match(/ flags=b /g) ?? []).length), () => {});
      }, 20);
      const inFlight = request(healthyPort, '/queue?key=jobs&timeout=5'); // its BLPOP dies with the server
      await waitUntil(() => blocked > 0, 3000, 'the BLPOP to block on the server');

      clearInterval(watch);
      await server.restart({ downMs: 300 });
      const clients = { shared: healthy.shared, worker: healthy.worker, news: healthy.news, leaked: leakedBefore.target as NodeRedisClient };
      await waitUntil(
        () => Object.values(clients).every((c) => c.isReady) && heldFor(ledger(), healthy.news)[0]?.state === 'subscriber',
        10_000,
        'every client to reconnect to the restarted server',
      ).catch((error: Error) => {
        // Which client, or the subscriber's recorded state: a timeout alone does not say.
        const ready = Object.entries(clients).map(([name, c]) => `${name} ${c.isReady ? 'ready' : c.isOpen ? 'open, not ready' : 'closed'}`);
        throw new Error(`${error.message} (${ready.join(', ')}; news recorded as ${heldFor(ledger(), healthy.news)[0]?.state ?? 'not held'})`);
      });
      expect(startup.map((client) => heldFor(ledger(), client))).toEqual(records);
      expect(startup.map((client) => heldFor(ledger(), client)[0].state)).toEqual(['idle', 'idle', 'subscriber']);
      expect(heldFor(ledger(), leakedBefore.target!)).toEqual([leakedBefore]);
      expect(await inFlight).toMatchObject({ status: 500 });

      // The app works as before, and its subscriber hears again.
      expect(await request(healthyPort, '/counter?key=after')).toEqual({ status: 200, body: '1' });
      expect(await request(healthyPort, '/session?key=after')).toEqual({ status: 200, body: '2' });
      expect(await request(healthyPort, '/pooled?key=after&queue=none&timeout=0.1')).toEqual({ status: 200, body: '3' });
      await healthy.shared.publish(`${prefix}:news`, 'after the restart');
      await waitUntil(() => healthy.received.includes('after the restart'), 3000, 'the subscriber to hear again');

      await sleep(2 * THRESHOLD_MS + 100);
      // The leak found before the restart may carry the same millisecond as `since`: it is not a new one.
      expect(redisLeaksSince(ledger(), since).filter((leak) => leak !== leakedBefore)).toEqual([]);
      expect(responseLeaksSince(ledger(), since)).toEqual([]);
      expect(leakedBefore.leak).toMatchObject({ reason: 'held-after-response-closed', resolvedAt: 0 });
    });
  });
});
