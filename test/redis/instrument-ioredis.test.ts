import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionRecord, ResponseProbe } from '../../src/core/records.js';
import { instrumentIoredis } from '../../src/index.js';
import { setFailureLog } from '../../src/core/guard.js';
import { responseContext, getRuntime } from '../support/internals.js';
import { ROOT, runCommand } from '../support/cli.js';
import { sleep, waitUntil } from '../support/http.js';
import { IOREDIS_MODULES, REDIS_URL, addressOf, heldFor, redisLeaksSince, uniquePrefix, useInstrumentedIoredis, type RedisClient, type RedisModule } from '../support/redis.js';
import { useStarted } from '../support/started.js';

const THRESHOLD_MS = 200;
const leakwatch = useStarted({ responseThreshold: THRESHOLD_MS, connectionThreshold: THRESHOLD_MS });
const { ledger } = leakwatch;
const probe: ResponseProbe = { progress: () => 0, method: () => 'GET', path: () => '/test', route: () => null, endOverrides: () => [] };
/** A response record driven by hand, as a request's would be. */
const openResponse = () => ledger().openResponse({}, probe);

/** Own properties of Redis.prototype, with their descriptors, to compare before and after. */
function snapshot(Redis: RedisModule): Array<[PropertyKey, PropertyDescriptor | undefined]> {
  return Reflect.ownKeys(Redis.prototype).map((key) => [key, Object.getOwnPropertyDescriptor(Redis.prototype, key)]);
}

/** Errors the app sees from a reply error, a bad constructor argument and a closed client. */
async function errorsSeen(Redis: RedisModule, key: string) {
  const client = new Redis(REDIS_URL);
  await client.hset(key, 'field', 'value');
  const reply = await client.incr(key).catch((error: Error) => error);
  let thrown: unknown;
  try {
    new Redis(true as never);
  } catch (error) {
    thrown = error;
  }
  await client.quit();
  const closed = await client.get(key).catch((error: Error) => error);
  return {
    reply: [reply instanceof (Redis as unknown as { ReplyError: ErrorConstructor }).ReplyError, (reply as Error).message],
    thrown: [(thrown as Error).constructor, (thrown as Error).message],
    closed: [(closed as Error).constructor, (closed as Error).message],
  };
}

describe('start()', () => {
  it("instruments the app's own ioredis through redisModulePatches, as leakwatch/register does", async () => {
    const [[, IORedis5]] = IOREDIS_MODULES;
    expect((IORedis5.prototype.sendCommand as unknown as { __wrapped?: boolean }).__wrapped).toBe(true);
    const client = new IORedis5(REDIS_URL);
    await client.ping();
    expect(heldFor(ledger(), client)).toHaveLength(1);
    await client.quit();
  });
});

describe.each(IOREDIS_MODULES)('instrumentIoredis(%s)', (name, Redis) => {
  const moduleId = name === 'ioredis 5' ? 'ioredis' : 'ioredis6';
  const prefix = uniquePrefix('instrument');

  describe('patching', () => {
    // start() instruments the app's `ioredis` as it loads (both copies); these tests begin from bare ones.
    beforeAll(() => leakwatch.stop());
    afterAll(() => leakwatch.restart());

    it('is harmless twice and the last undo restores Redis.prototype exactly', () => {
      const before = snapshot(Redis);
      const undo = instrumentIoredis(Redis);
      const wrapped = Redis.prototype.sendCommand;
      expect(wrapped).not.toBe(before.find(([key]) => key === 'sendCommand')?.[1]?.value);
      const second = instrumentIoredis(Redis);
      const third = instrumentIoredis({ Redis });
      expect(Redis.prototype.sendCommand).toBe(wrapped);
      second();
      third();
      expect(Redis.prototype.sendCommand).toBe(wrapped);

      undo();
      const after = snapshot(Redis);
      expect(after.map(([key]) => key)).toEqual(before.map(([key]) => key));
      for (const [i, [, descriptor]] of after.entries()) {
        const original = before[i][1]!;
        expect(Object.keys(descriptor!)).toEqual(Object.keys(original));
        for (const field of Object.keys(original) as Array<keyof PropertyDescriptor>) expect(descriptor![field]).toBe(original[field]);
      }
      undo(); // twice is harmless
      expect(snapshot(Redis).length).toBe(before.length);
    });

    it('refuses what is not ioredis with a sentence that says what it needs', () => {
      expect(() => instrumentIoredis({})).toThrow(/needs the ioredis module \(require\('ioredis'\) or its Redis class\)/);
    });

    it('passes errors from ioredis to the app unchanged', async () => {
      const bare = await errorsSeen(Redis, `${prefix}:bare`);
      const undo = instrumentIoredis(Redis);
      try {
        expect(await errorsSeen(Redis, `${prefix}:instrumented`)).toEqual(bare);
        expect(bare.reply[0]).toBe(true);
      } finally {
        undo();
      }
    });

    it("leaves the app's unhandled rejections as they were", async () => {
      // In a child process of its own (built leakwatch), where an unhandled rejection is the app's to see.
      const script = (instrumented: boolean) => `
        import Redis from '${moduleId}';
        import { instrumentIoredis } from ${JSON.stringify(path.join(ROOT, 'dist/index.js'))};
        if (${instrumented}) instrumentIoredis(Redis);
        let unhandled = 0;
        process.on('unhandledRejection', () => unhandled++);
        const client = new Redis(${JSON.stringify(REDIS_URL)});
        await client.hset('${prefix}:unhandled', 'field', 'value');
        client.incr('${prefix}:unhandled'); // rejected, and nobody handles it
        await new Promise((resolve) => setTimeout(resolve, 200));
        await client.quit();
        console.log(JSON.stringify({ unhandled }));`;
      const runs = await Promise.all([false, true].map((instrumented) => runCommand(process.execPath, ['--input-type=module', '-e', script(instrumented)], { timeoutMs: 10_000 })));
      expect(runs.map((run) => [run.stderr, JSON.parse(run.stdout)])).toEqual([
        ['', { unhandled: 1 }],
        ['', { unhandled: 1 }],
      ]);
    });

    it('never lets a failure inside its own hooks reach the app', async () => {
      const undo = instrumentIoredis(Redis);
      const logs: string[] = [];
      setFailureLog((line) => logs.push(line));
      const acquire = ledger().acquireConnection;
      ledger().acquireConnection = () => {
        throw new Error('forced failure inside leakwatch');
      };
      try {
        const client = new Redis(REDIS_URL);
        expect(await client.incr(`${prefix}:failure`)).toBe(1);
        await client.quit();
      } finally {
        ledger().acquireConnection = acquire;
        setFailureLog(getRuntime()!.config.log);
        undo();
      }
      expect(logs.join('\n')).toMatch(/forced failure inside leakwatch/);
    });
  });

  describe('following connections', () => {
    const ioredis = useInstrumentedIoredis(Redis);

    it('charges a lazyConnect client to the response that made it, wherever it first connects; another request using it makes it shared', async () => {
      const maker = openResponse();
      const lazy = responseContext.run(maker, () => new Redis(REDIS_URL, { lazyConnect: true }));
      expect(heldFor(ledger(), lazy)).toEqual([]); // no connection yet, nothing held
      await responseContext.exit(() => lazy.ping()); // first connected outside any request (a timer, say)
      const [record] = heldFor(ledger(), lazy);
      expect(record.owner).toBe(maker);
      expect(lazy.status).toBe('ready');
      const user = openResponse();
      await responseContext.run(user, () => lazy.ping());
      expect(record.owner).toBeNull(); // used by another request: shared
      ledger().closeResponse(maker, 'finished');
      ledger().closeResponse(user, 'finished');
      await lazy.quit();
      expect(record.isHeld).toBe(false);
    });

    it('never reports a lazyConnect client that never connects', async () => {
      const since = ledger().now();
      const maker = openResponse();
      const lazy = responseContext.run(maker, () => new Redis(REDIS_URL, { lazyConnect: true }));
      ledger().closeResponse(maker, 'finished');
      await sleep(2 * THRESHOLD_MS + 100);
      expect(redisLeaksSince(ledger(), since)).toEqual([]);
      expect(heldFor(ledger(), lazy)).toEqual([]);
      lazy.disconnect();
    });

    it('follows a client made before instrumentation as one with no owner', async () => {
      ioredis.undo();
      const early = new Redis(REDIS_URL);
      await early.ping();
      ioredis.instrument();
      const response = openResponse();
      const pending = responseContext.run(response, () => early.ping());
      const [record] = heldFor(ledger(), early);
      expect([record.owner, early.status, record.state]).toEqual([null, 'ready', 'busy']);
      expect([...response.operations!].map((o) => o.command)).toEqual(['ping']);
      await pending;
      expect(response.operations?.size).toBe(0);
      ledger().closeResponse(response, 'finished');
      await early.quit();
      expect(record.isHeld).toBe(false);
    });

    it('counts each command of a pipeline and a MULTI busy until its reply, errors included', async () => {
      const key = `${prefix}:pipeline`;
      const client = new Redis(REDIS_URL);
      await client.ping();
      const [record] = heldFor(ledger(), client);
      const pipeline = client.pipeline();
      for (let i = 0; i < 50; i++) pipeline.incr(key);
      const done = pipeline.exec();
      expect([record.busy, record.state]).toEqual([50, 'busy']);
      await done;
      expect([record.busy, record.state]).toEqual([0, 'idle']);

      const transaction = client.multi().incr(key).get(key).exec();
      expect(record.busy).toBeGreaterThan(0);
      await transaction;
      expect(record.busy).toBe(0);

      await client.hset(`${prefix}:hash`, 'field', 'value');
      await expect(client.incr(`${prefix}:hash`)).rejects.toThrow(/WRONGTYPE/);
      expect(record.busy).toBe(0);
      await client.quit();
    });

    it('lets go at quit() and disconnect(), and keeps the one record through disconnect(true)', async () => {
      const quitting = new Redis(REDIS_URL);
      await quitting.ping();
      const [quitRecord] = heldFor(ledger(), quitting);
      const quit = quitting.quit();
      expect(quitRecord.isHeld).toBe(false);
      await quit;

      const disconnecting = new Redis(REDIS_URL);
      await disconnecting.ping();
      const [disconnectRecord] = heldFor(ledger(), disconnecting);
      disconnecting.disconnect();
      expect(disconnectRecord.isHeld).toBe(false);

      const reconnecting = new Redis(REDIS_URL);
      await reconnecting.ping();
      const [reconnectRecord] = heldFor(ledger(), reconnecting);
      const closed = new Promise((resolve) => reconnecting.once('close', resolve));
      reconnecting.disconnect(true);
      await closed;
      await waitUntil(() => reconnecting.status === 'ready', 3000, 'the reconnect');
      expect(heldFor(ledger(), reconnecting)).toEqual([reconnectRecord]);
      expect(reconnectRecord.state).toBe('idle');
      await reconnecting.quit();
      expect(reconnectRecord.isHeld).toBe(false);
    });

    it('never charges to a request the connections ioredis makes for a Cluster (Cluster itself is not supported)', async () => {
      const acquired: ConnectionRecord[] = [];
      const stop = ledger().observe({ connectionAcquired: (c) => void acquired.push(c) });
      const response = openResponse();
      // A standalone server refuses CLUSTER SLOTS, so the Cluster gives up after its first node connection.
      const cluster = responseContext.run(response, () => new Redis.Cluster([{ host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) }], { clusterRetryStrategy: () => null }));
      cluster.on('error', () => {});
      await waitUntil(() => acquired.length > 0, 3000, 'the Cluster to connect to its node');
      stop();
      expect(acquired.map((c) => c.owner)).toEqual(acquired.map(() => null));
      cluster.disconnect();
      ledger().closeResponse(response, 'finished');
    });

    it('confirms on a connection of its own, lazily made, and leaves the app its client name', async () => {
      const since = ledger().now();
      const response = openResponse();
      const named = responseContext.run(response, () => new Redis(REDIS_URL, { connectionName: 'app-worker' }));
      await named.ping();
      ledger().closeResponse(response, 'finished');
      await waitUntil(() => redisLeaksSince(ledger(), since)[0]?.server != null, 3000, 'the confirmed leak');
      const [leaked] = redisLeaksSince(ledger(), since);
      expect(leaked.target).toBe(named);

      const lines = String(await ioredis.admin().client('LIST')).split('\n');
      const line = lines.find((l) => l.includes(` addr=${addressOf(named)} `));
      expect(line).toMatch(/ name=app-worker /);
      expect(line).toMatch(new RegExp(`^id=${leaked.server?.clientId} `));
      expect(lines.some((l) => / name=leakwatch /.test(l))).toBe(true);
      // The lookup connection is not followed: every held record is an app client.
      expect([...ledger().held].filter((c) => (c.target as RedisClient | null)?.options?.connectionName === 'leakwatch')).toEqual([]);
      await named.quit();
    });
  });
});
