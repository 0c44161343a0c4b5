import http from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { buildReport } from '../../src/report/json.js';
// @ts-expect-error plain JavaScript fixture
import { createApp } from '../../fixtures/redis-leaky.mjs';
import { responseOf } from '../support/internals.js';
import { useFixtureApp } from '../support/fixture-app.js';
import { close, listen, request, sleep, waitUntil } from '../support/http.js';
import {
  IOREDIS_MODULES,
  REDIS_URL,
  expectLeftByClosedResponse,
  expectSubscriberHeldByUnclosedResponse,
  heldFor,
  redisLeaksSince,
  responseLeaksSince,
  uniquePrefix,
  useInstrumentedIoredis,
  type RedisClient,
} from '../support/redis.js';
import { useStarted } from '../support/started.js';

const { ledger } = useStarted({ responseThreshold: 300, connectionThreshold: 300 });

describe.each(IOREDIS_MODULES)('instrumentIoredis(%s)', (_name, Redis) => {
  const { admin } = useInstrumentedIoredis(Redis);
  const prefix = uniquePrefix('leaky');
  const served = useFixtureApp<{ server: http.Server; shared: RedisClient; made: Set<RedisClient>; close(): Promise<void> }>(() =>
    createApp({ Redis, redisUrl: REDIS_URL, prefix }),
  );
  const { responses } = served;

  describe('when a request subscribes on a duplicate() and never quits it', () => {
    it('reports the connection leaked, owned by its response, in subscriber state, confirmed by CLIENT LIST', async () => {
      const { app, port } = served;
      const since = ledger().now();
      const url = '/events?channel=room-1';
      expect(await request(port, url, { abortAfterMs: 150 })).toBe('aborted');

      const leaked = await expectLeftByClosedResponse(ledger, responses, since, { url, outcome: 'aborted', state: 'subscriber', cmd: 'subscribe', fixture: /redis-leaky\.mjs/ });
      expect((leaked.target as { status?: string } | null)?.status).toBe('ready');
      expect(leaked.server?.flags).toContain('P');
      expect(leaked.server?.age).toBeTypeOf('number');
      expect(leaked.server?.idle).toBeTypeOf('number');

      // The client id found is this very connection: killing it closes the leaked client's socket, no other.
      const client = leaked.target as RedisClient;
      expect(app.made.has(client)).toBe(true);
      const closed = new Promise((resolve) => client.once('close', resolve));
      const sharedClosed = vi.fn();
      app.shared.once('close', sharedClosed);
      expect(await admin().client('KILL', 'ID', String(leaked.server?.clientId))).toBe(1);
      await closed;
      expect(sharedClosed).not.toHaveBeenCalled();

      // ioredis reconnects and resubscribes under the same record.
      await waitUntil(() => client.status === 'ready' && leaked.state === 'subscriber', 3000, 'the resubscribe');
      expect(heldFor(ledger(), client)).toEqual([leaked]);

      await client.quit();
      expect(leaked.leak?.resolvedAt).toBeGreaterThan(0);
      expect(heldFor(ledger(), client)).toEqual([]);
    });
  });

  describe('when a request makes a new Redis() and never quits it', () => {
    it('reports the connection leaked once the response has finished, and resolved once it is quit', async () => {
      const { port } = served;
      const since = ledger().now();
      const url = '/counter?key=visits';
      expect(await request(port, url)).toEqual({ status: 200, body: '1' });

      const leaked = await expectLeftByClosedResponse(ledger, responses, since, { url, outcome: 'finished', state: 'idle', cmd: 'incr', fixture: /redis-leaky\.mjs/ });
      expect(leaked.pool).toMatch(/^127\.0\.0\.1:\d+\/0$|^localhost:\d+\/0$/);
      expect(responseLeaksSince(ledger(), since)).toEqual([]);

      const client = leaked.target as RedisClient;
      await client.quit();
      expect(leaked.leak?.resolvedAt).toBeGreaterThan(0);
    });
  });

  describe('when a request subscribes and never answers', () => {
    it('reports the response unclosed and its subscriber held by it, linked both ways', async () => {
      await expectSubscriberHeldByUnclosedResponse(ledger, served, '/events/silent?channel=room-2', (client: RedisClient) => client.quit());
    });
  });

  describe('when a response waits on a command on a shared connection', () => {
    it('is not stalled while it waits, and once leaked it shows the pending command', async () => {
      const key = `${prefix}:jobs`;
      const worker = new Redis(REDIS_URL); // made outside any request: shared
      const server = http.createServer(async (req, res) => {
        responses.set(req.url ?? '', responseOf(res)!);
        await worker.blpop(key, 0);
        res.end('done');
      });
      const serverPort = await listen(server);
      const since = ledger().now();
      const done = request(serverPort, '/wait');
      await waitUntil(() => (responses.get('/wait')?.operations?.size ?? 0) > 0, 3000, 'the BLPOP to start');
      const response = responses.get('/wait')!;
      const [workerRecord] = heldFor(ledger(), worker);
      expect([...response.operations!].map((o) => [o.command, o.connection])).toEqual([['blpop', workerRecord]]);
      expect(workerRecord.owner).toBeNull();
      expect(workerRecord.state).toBe('busy');

      await sleep(700); // over twice the response threshold, writing nothing
      expect(response.leak).toBeNull();

      ledger().finalize(); // as at exit
      expect(response.leak?.reason).toBe('open-at-exit');
      expect([...response.operations!].map((o) => o.command)).toEqual(['blpop']);
      const shown = buildReport(ledger(), since).leakedResponses.find((r) => r.id === response.id);
      expect(shown?.pendingCommands).toEqual([{ command: 'blpop', connection: workerRecord.id, ageMs: expect.any(Number) }]);
      expect(redisLeaksSince(ledger(), since)).toEqual([]); // the shared connection is no leak

      await admin().lpush(key, 'job');
      expect(await done).toEqual({ status: 200, body: 'done' });
      expect(response.operations?.size).toBe(0);
      expect(response.leak?.resolvedAt).toBeGreaterThan(0);
      expect(workerRecord.state).toBe('idle');
      await worker.quit();
      await close(server);
    });
  });
});
