import type http from 'node:http';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript fixture
import { createApp } from '../../fixtures/redis-healthy.mjs';
import { useFixtureApp } from '../support/fixture-app.js';
import { request, sleep, waitUntil } from '../support/http.js';
import { IOREDIS_MODULES, REDIS_URL, addressOf, heldFor, redisLeaksSince, responseLeaksSince, uniquePrefix, useInstrumentedIoredis, type RedisClient } from '../support/redis.js';
import { useStarted } from '../support/started.js';

const THRESHOLD_MS = 300;
const { ledger } = useStarted({ responseThreshold: THRESHOLD_MS, connectionThreshold: THRESHOLD_MS });

interface HealthyApp {
  server: http.Server;
  shared: RedisClient;
  worker: RedisClient;
  news: RedisClient;
  ready: Promise<unknown>;
  received: string[];
  close(): Promise<void>;
}

describe.each(IOREDIS_MODULES)('instrumentIoredis(%s)', (_name, Redis) => {
  const { admin } = useInstrumentedIoredis(Redis);
  const prefix = uniquePrefix('healthy');
  const served = useFixtureApp<HealthyApp>(() => createApp({ Redis, redisUrl: REDIS_URL, prefix }));
  const { responses } = served;

  describe('with a shared client, blocking reads longer than the thresholds and a subscriber made at start-up', () => {
    it('reports nothing', async () => {
      const { app, port } = served;
      const since = ledger().now();
      const counters = Array.from({ length: 40 }, (_, i) => request(port, `/counter?key=c${i % 4}`));
      const sharedWait = request(port, '/queue?key=jobs&timeout=1');
      const ownWait = request(port, '/queue/own?key=jobs-own&timeout=1');
      const events = request(port, '/events?channel=room', { abortAfterMs: 500 });

      // The BLPOP on the start-up worker is an operation of its response; the per-request one keeps its own connection busy.
      const [workerRecord] = heldFor(ledger(), app.worker);
      const sharedWaiting = () => [...(responses.get('/queue?key=jobs&timeout=1')?.operations ?? [])].map((o) => o.command);
      const ownWaiting = () => [...(responses.get('/queue/own?key=jobs-own&timeout=1')?.connections ?? [])];
      await waitUntil(() => sharedWaiting().length > 0 && ownWaiting()[0]?.state === 'busy', 3000, 'both BLPOPs to wait');
      expect(workerRecord.owner).toBeNull();
      expect(workerRecord.state).toBe('busy');
      expect(sharedWaiting()).toEqual(['blpop']);
      const owned = ownWaiting();
      expect(owned.map((c) => c.state)).toEqual(['busy']);
      await sleep(THRESHOLD_MS + 100); // past both thresholds while they wait

      expect((await Promise.all(counters)).every((r) => r !== 'aborted' && r.status === 200)).toBe(true);
      expect(await sharedWait).toEqual({ status: 200, body: 'empty' });
      expect(await ownWait).toEqual({ status: 200, body: 'empty' });
      expect(await events).toBe('aborted');
      await app.shared.publish(`${prefix}:news`, 'hello');

      await sleep(2 * THRESHOLD_MS + 100); // past the connection threshold after the last close
      expect(redisLeaksSince(ledger(), since)).toEqual([]);
      expect(responseLeaksSince(ledger(), since)).toEqual([]);
      expect(owned[0].isHeld).toBe(false);
      const [newsRecord] = heldFor(ledger(), app.news);
      expect([newsRecord.owner, newsRecord.state]).toEqual([null, 'subscriber']);
      expect(app.received).toContain('hello');
    });
  });

  describe('when the server kills connections with CLIENT KILL', () => {
    it('follows ioredis through its reconnects: one record per client, no phantom leak, no crash', async () => {
      const { app, port } = served;
      const since = ledger().now();
      const startup = [app.shared, app.worker, app.news];
      const before = startup.map((client) => heldFor(ledger(), client));
      expect(before.map((records) => records.length)).toEqual([1, 1, 1]);

      const url = '/queue/own?key=killed&timeout=1';
      const ownWait = request(port, url);
      await waitUntil(() => [...(responses.get(url)?.connections ?? [])].some((c) => c.state === 'busy' && (c.target as RedisClient | null)?.status === 'ready'), 3000, 'the BLPOP to wait');
      const [ownRecord] = [...responses.get(url)!.connections!];
      const ownClient = ownRecord.target as RedisClient;

      for (const client of [...startup, ownClient]) expect(await admin().client('KILL', 'ADDR', addressOf(client))).toBe(1);

      await waitUntil(
        () => [...startup, ownClient].every((c) => c.status === 'ready') && heldFor(ledger(), app.news)[0]?.state === 'subscriber',
        5000,
        'every client to reconnect (and the subscriber to resubscribe)',
      );
      expect(startup.map((client) => heldFor(ledger(), client))).toEqual(before);
      expect(heldFor(ledger(), ownClient)).toEqual([ownRecord]);

      expect(await ownWait).toEqual({ status: 200, body: 'empty' }); // the BLPOP was resent after the reconnect
      expect(await request(port, '/counter?key=after-kill')).toMatchObject({ status: 200 });
      await app.shared.publish(`${prefix}:news`, 'after the kill');
      await waitUntil(() => app.received.includes('after the kill'), 3000, 'the resubscribed subscriber to receive');

      await sleep(2 * THRESHOLD_MS + 100);
      expect(redisLeaksSince(ledger(), since)).toEqual([]);
      expect(responseLeaksSince(ledger(), since)).toEqual([]);
      expect(ownRecord.isHeld).toBe(false);
      expect(heldFor(ledger(), ownClient)).toEqual([]);
    });
  });
});
