import type http from 'node:http';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript fixture
import { createApp } from '../../fixtures/node-redis-healthy.mjs';
import { useFixtureApp } from '../support/fixture-app.js';
import { request, sleep, waitUntil } from '../support/http.js';
import { NODE_REDIS_MODULES, REDIS_URL, heldFor, idsNamed, kill, redisLeaksSince, responseLeaksSince, uniquePrefix, useAdminClient, type NodeRedisClient } from '../support/node-redis.js';
import { useStarted } from '../support/started.js';

const THRESHOLD_MS = 300;
const { ledger } = useStarted({ responseThreshold: THRESHOLD_MS, connectionThreshold: THRESHOLD_MS });

interface HealthyApp {
  server: http.Server;
  shared: NodeRedisClient;
  worker: NodeRedisClient;
  news: NodeRedisClient;
  pool: NodeRedisClient | null;
  ready: Promise<unknown>;
  received: string[];
  close(): Promise<void>;
}

describe.each(NODE_REDIS_MODULES)('%s', (_name, redis) => {
  const admin = useAdminClient(redis);
  const prefix = uniquePrefix('node-redis-healthy');
  /** Every connection of the app has this name in CLIENT LIST, and no connection of anyone else. */
  const appName = `${prefix.replaceAll(':', '-')}-app`;
  const served = useFixtureApp<HealthyApp>(() => createApp({ redis, redisUrl: REDIS_URL, prefix, name: appName }));
  const { responses } = served;

  describe('with a shared client, blocking reads longer than the thresholds, MULTI/EXEC, pool leases, per-request clients closed and a subscriber made at start-up', () => {
    it('reports nothing', async () => {
      const { app, port } = served;
      const since = ledger().now();
      const counters = Array.from({ length: 30 }, (_, i) => request(port, `/counter?key=c${i % 4}`));
      const transfers = Array.from({ length: 5 }, () => request(port, '/transfer?from=a&to=b'));
      const sessions = Array.from({ length: 5 }, () => request(port, '/session?key=visits'));
      const sharedWait = request(port, '/queue?key=jobs&timeout=1');
      const ownWait = request(port, '/queue/own?key=jobs-own&timeout=1');
      const pooledWait = request(port, '/pooled?key=leases&queue=jobs-pooled&timeout=1');
      const events = request(port, '/events?channel=room', { abortAfterMs: 500 });

      // The BLPOP on the start-up worker is an operation of its response; the per-request one and the lease keep their own connection busy.
      const [workerRecord] = heldFor(ledger(), app.worker);
      const sharedWaiting = () => [...(responses.get('/queue?key=jobs&timeout=1')?.operations ?? [])].map((o) => o.command);
      const owned = (url: string) => [...(responses.get(url)?.connections ?? [])];
      const ownUrl = '/queue/own?key=jobs-own&timeout=1';
      const pooledUrl = '/pooled?key=leases&queue=jobs-pooled&timeout=1';
      await waitUntil(
        () => sharedWaiting().length > 0 && owned(ownUrl)[0]?.state === 'busy' && owned(pooledUrl)[0]?.state === 'busy',
        3000,
        'the three BLPOPs to wait',
      );
      expect([workerRecord.owner, workerRecord.state]).toEqual([null, 'busy']);
      expect(sharedWaiting()).toEqual(['blpop']);
      const [ownRecord] = owned(ownUrl);
      const [leaseRecord] = owned(pooledUrl);
      expect([ownRecord.pooled, leaseRecord.pooled]).toEqual([false, true]);
      await sleep(THRESHOLD_MS + 100); // past both thresholds while they wait

      expect((await Promise.all([...counters, ...transfers, ...sessions])).every((r) => r !== 'aborted' && r.status === 200)).toBe(true);
      expect(await sharedWait).toEqual({ status: 200, body: 'empty' });
      expect(await ownWait).toEqual({ status: 200, body: 'empty' });
      expect(await pooledWait).toMatchObject({ status: 200 });
      expect(await events).toBe('aborted');
      await app.shared.publish(`${prefix}:news`, 'hello');

      await sleep(2 * THRESHOLD_MS + 100); // past the connection threshold after the last close
      expect(redisLeaksSince(ledger(), since)).toEqual([]);
      expect(responseLeaksSince(ledger(), since)).toEqual([]);
      expect([ownRecord.isHeld, leaseRecord.isHeld]).toEqual([false, false]);
      const [newsRecord] = heldFor(ledger(), app.news);
      expect([newsRecord.owner, newsRecord.state]).toEqual([null, 'subscriber']);
      expect(app.received).toContain('hello');
      // What is still held is the app's start-up clients, owned by nobody: a pool's idle members are not held.
      expect([...ledger().held].filter((c) => c.acquiredAt >= since)).toEqual([]);
    });
  });

  describe("when the server kills the app's connections with CLIENT KILL", () => {
    it('follows node-redis through its reconnects: one record per client, no phantom leak, no crash', async () => {
      const { app, port } = served;
      const since = ledger().now();
      const startup = [app.shared, app.worker, app.news];
      const before = startup.map((client) => heldFor(ledger(), client));
      expect(before.map((records) => records.length)).toEqual([1, 1, 1]);

      const url = '/queue/own?key=killed&timeout=2';
      const ownWait = request(port, url);
      // Its record is busy from the start of connect(), before the server lists it: ready means its BLPOP is sent.
      await waitUntil(() => [...(responses.get(url)?.connections ?? [])].some((c) => c.state === 'busy' && (c.target as NodeRedisClient | null)?.isReady === true), 3000, 'the BLPOP to wait');
      const [ownRecord] = [...responses.get(url)!.connections!];

      // Every connection of the app: the start-up clients, the pool's members and the blocking per-request one.
      const ids = await idsNamed(admin(), appName);
      expect(ids.length).toBeGreaterThanOrEqual(5);
      await kill(admin(), ids);

      await waitUntil(
        () => startup.every((c) => c.isReady) && heldFor(ledger(), app.news)[0]?.state === 'subscriber',
        5000,
        'every client to reconnect (and the subscriber to subscribe again)',
      );
      expect(startup.map((client) => heldFor(ledger(), client))).toEqual(before);
      expect(startup.map((client) => heldFor(ledger(), client)[0].state)).toEqual(['idle', 'idle', 'subscriber']);

      // node-redis rejects the command the connection was killed under; the handler closes its client all the same.
      expect(await ownWait).toMatchObject({ status: 500 });
      expect(ownRecord.isHeld).toBe(false);
      expect(await request(port, '/counter?key=after-kill')).toMatchObject({ status: 200 });
      expect(await request(port, '/pooled?key=after-kill&queue=none&timeout=0.1')).toMatchObject({ status: 200 });
      await app.shared.publish(`${prefix}:news`, 'after the kill');
      await waitUntil(() => app.received.includes('after the kill'), 3000, 'the resubscribed subscriber to receive');

      await sleep(2 * THRESHOLD_MS + 100);
      expect(redisLeaksSince(ledger(), since)).toEqual([]);
      expect(responseLeaksSince(ledger(), since)).toEqual([]);
    });
  });
});
