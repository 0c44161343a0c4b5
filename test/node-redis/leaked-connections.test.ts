import type http from 'node:http';
import { describe, expect, it, vi } from 'vitest';
// @ts-expect-error plain JavaScript fixture
import { createApp } from '../../fixtures/node-redis-leaky.mjs';
import { buildReport } from '../../src/report/json.js';
import { useFixtureApp } from '../support/fixture-app.js';
import { request, sleep, waitUntil } from '../support/http.js';
import {
  NODE_REDIS_MODULES,
  REDIS_URL,
  closeClient,
  expectLeftByClosedResponse,
  expectSubscriberHeldByUnclosedResponse,
  heldFor,
  kill,
  redisLeaksSince,
  responseLeaksSince,
  uniquePrefix,
  useAdminClient,
  type NodeRedisClient,
} from '../support/node-redis.js';
import { useStarted } from '../support/started.js';

// start() instruments every node-redis copy through its module hooks, as leakwatch/register does.
const { ledger } = useStarted({ responseThreshold: 300, connectionThreshold: 300 });

describe.each(NODE_REDIS_MODULES)('%s', (_name, redis) => {
  const admin = useAdminClient(redis);
  const prefix = uniquePrefix('node-redis-leaky');
  const served = useFixtureApp<{ server: http.Server; shared: NodeRedisClient; made: Set<NodeRedisClient>; ready: Promise<unknown>; close(): Promise<void> }>(() =>
    createApp({ redis, redisUrl: REDIS_URL, prefix }),
  );
  const { responses } = served;

  describe('when a request subscribes on a duplicate() and never closes it', () => {
    it('reports the connection leaked, owned by its response, in subscriber state, confirmed by CLIENT LIST', async () => {
      const { app, port } = served;
      const since = ledger().now();
      const url = '/events?channel=room-1';
      expect(await request(port, url, { abortAfterMs: 150 })).toBe('aborted');

      const leaked = await expectLeftByClosedResponse(ledger, responses, since, { url, outcome: 'aborted', state: 'subscriber', cmd: 'subscribe', fixture: /node-redis-leaky\.mjs/ });
      expect(leaked.server?.flags).toContain('P');
      expect(leaked.server?.age).toBeTypeOf('number');

      // The client id found is this very connection: killing it breaks the leaked client's connection, no other.
      const client = leaked.target as NodeRedisClient;
      expect(app.made.has(client)).toBe(true);
      const reconnecting = new Promise((resolve) => client.once('reconnecting', resolve));
      const sharedReconnects = vi.fn();
      app.shared.on('reconnecting', sharedReconnects);
      await kill(admin(), [leaked.server!.clientId!]);
      await reconnecting;

      // node-redis reconnects and subscribes again under the same record.
      await waitUntil(() => client.isReady && leaked.state === 'subscriber', 3000, 'the resubscribe');
      expect(heldFor(ledger(), client)).toEqual([leaked]);
      expect(sharedReconnects).not.toHaveBeenCalled();
      app.shared.off('reconnecting', sharedReconnects);

      await closeClient(client);
      expect(leaked.leak?.resolvedAt).toBeGreaterThan(0);
      expect(heldFor(ledger(), client)).toEqual([]);
    });
  });

  describe('when a request leaves its own createClient() open on an error path', () => {
    it('reports the connection leaked once the response has finished, and resolved once it is closed', async () => {
      const { port } = served;
      const since = ledger().now();
      const url = '/counter?key=visits&limit=0';
      expect(await request(port, url)).toEqual({ status: 500, body: 'over the limit' });

      const leaked = await expectLeftByClosedResponse(ledger, responses, since, { url, outcome: 'finished', state: 'idle', cmd: 'incr', fixture: /node-redis-leaky\.mjs/ });
      expect(leaked.pool).toBe(`127.0.0.1:${new URL(REDIS_URL).port || 6379}/0`);
      expect(responseLeaksSince(ledger(), since)).toEqual([]);

      // The path that closes it is no leak.
      const closedSince = ledger().now();
      expect(await request(port, '/counter?key=visits')).toMatchObject({ status: 200 });
      await sleep(700);
      expect(redisLeaksSince(ledger(), closedSince)).toEqual([]);

      await closeClient(leaked.target);
      expect(leaked.leak?.resolvedAt).toBeGreaterThan(0);
    });
  });

  describe('when a request subscribes and never answers', () => {
    it('reports the response unclosed and its subscriber held by it, linked both ways', async () => {
      await expectSubscriberHeldByUnclosedResponse(ledger, served, '/events/silent?channel=room-2', closeClient);
    });
  });

  describe('when a response waits on a blocking command of the shared client', () => {
    it('is not stalled while it waits, and once leaked it lists the pending command', async () => {
      const { app, port } = served;
      const since = ledger().now();
      const url = '/jobs/next?queue=jobs';
      const done = request(port, url);
      await waitUntil(() => (responses.get(url)?.operations?.size ?? 0) > 0, 3000, 'the BLPOP to start');
      const response = responses.get(url)!;
      const [sharedRecord] = heldFor(ledger(), app.shared);
      expect([...response.operations!].map((o) => [o.command, o.connection])).toEqual([['blpop', sharedRecord]]);
      expect([sharedRecord.owner, sharedRecord.state]).toEqual([null, 'busy']);

      await sleep(700); // over twice the response threshold, writing nothing
      expect(response.leak).toBeNull();

      ledger().finalize(); // as at exit
      expect(response.leak?.reason).toBe('open-at-exit');
      const shown = buildReport(ledger(), since).leakedResponses.find((r) => r.id === response.id);
      expect(shown?.pendingCommands).toEqual([{ command: 'blpop', connection: sharedRecord.id, ageMs: expect.any(Number) }]);
      expect(redisLeaksSince(ledger(), since)).toEqual([]); // the shared connection is no leak

      await admin().lPush(`${prefix}:jobs`, 'job');
      expect(await done).toEqual({ status: 200, body: 'job' });
      expect(response.operations?.size).toBe(0);
      expect(response.leak?.resolvedAt).toBeGreaterThan(0);
      expect(sharedRecord.state).toBe('idle');
    });
  });
});
