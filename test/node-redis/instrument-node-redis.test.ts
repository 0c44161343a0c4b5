import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionRecord, ResponseProbe } from '../../src/core/records.js';
import { instrumentNodeRedis } from '../../src/index.js';
import { responseContext } from '../support/internals.js';
import { ROOT, runCommand } from '../support/cli.js';
import { sleep, waitUntil } from '../support/http.js';
import {
  NODE_REDIS_MODULES,
  REDIS_URL,
  closeClient,
  heldFor,
  idsNamed,
  nodeRedisParts,
  redisLeaksSince,
  uniquePrefix,
  useAdminClient,
  type NodeRedis,
  type NodeRedisClient,
} from '../support/node-redis.js';
import { useStarted } from '../support/started.js';

const THRESHOLD_MS = 200;
const leakwatch = useStarted({ responseThreshold: THRESHOLD_MS, connectionThreshold: THRESHOLD_MS });
const { ledger } = leakwatch;
const probe: ResponseProbe = { progress: () => 0, method: () => 'GET', path: () => '/test', route: () => null, endOverrides: () => [] };
/** A response record driven by hand, as a request's would be. */
const openResponse = () => ledger().openResponse({}, probe);
const wrapped = (fn: unknown) => (fn as { __wrapped?: boolean } | undefined)?.__wrapped === true;

type Snapshot = Array<[object, Array<[PropertyKey, PropertyDescriptor | undefined]>]>;

/** Own properties, with their descriptors, of everything leakwatch patches in one copy of @redis/client. */
function snapshot(id: string): Snapshot {
  const { RedisClient, Queue, Pool, index } = nodeRedisParts(id);
  const targets = [RedisClient, RedisClient.prototype, Queue.prototype, index, ...(Pool === null ? [] : [Pool.prototype])];
  return targets.map((target) => [target, Reflect.ownKeys(target).map((key) => [key, Object.getOwnPropertyDescriptor(target, key)])]);
}

function expectSameAs(before: Snapshot, after: Snapshot): void {
  expect(after.map(([, props]) => props.map(([key]) => key))).toEqual(before.map(([, props]) => props.map(([key]) => key)));
  for (const [i, [, props]] of after.entries()) {
    for (const [j, [, descriptor]] of props.entries()) {
      const original = before[i][1][j][1]!;
      expect(Object.keys(descriptor!)).toEqual(Object.keys(original));
      for (const field of Object.keys(original) as Array<keyof PropertyDescriptor>) expect(descriptor![field]).toBe(original[field]);
    }
  }
}

/** Errors the app sees from a reply error, a bad option and a closed client. */
async function errorsSeen(redis: NodeRedis, key: string) {
  const client = redis.createClient({ url: REDIS_URL });
  await client.connect();
  await client.hSet(key, 'field', 'value');
  const reply = await client.incr(key).catch((error: Error) => error);
  const raw = await client.sendCommand(['INCR', key]).catch((error: Error) => error);
  let thrown: unknown;
  try {
    redis.createClient({ url: 'http://not-redis' });
  } catch (error) {
    thrown = error;
  }
  await closeClient(client);
  const closed = await client.get(key).catch((error: Error) => error);
  const describe = (error: unknown) => [(error as Error).constructor, (error as Error).message];
  return { reply: describe(reply), raw: describe(raw), thrown: describe(thrown), closed: describe(closed) };
}

describe('start()', () => {
  it.each(NODE_REDIS_MODULES)("instruments the app's own %s through @redis/client as it loads, as leakwatch/register does", async (_name, redis, id) => {
    const { RedisClient, Queue } = nodeRedisParts(id);
    expect(wrapped((RedisClient.prototype as Record<string, unknown>).connect)).toBe(true);
    expect(wrapped((Queue.prototype as Record<string, unknown>).addCommand)).toBe(true);
    const client = redis.createClient({ url: REDIS_URL });
    await client.connect();
    await client.ping();
    expect(heldFor(ledger(), client)).toHaveLength(1);
    await closeClient(client);
    expect(heldFor(ledger(), client)).toEqual([]);
  });
});

describe.each(NODE_REDIS_MODULES)('instrumentNodeRedis(%s)', (name, redis, id) => {
  const prefix = uniquePrefix('node-redis-instrument');
  const isV4 = name.startsWith('redis 4');

  describe('patching', () => {
    // start() instruments every copy as it loads; these tests begin from bare ones.
    beforeAll(() => leakwatch.stop());
    afterAll(() => leakwatch.restart());

    it('is harmless twice and the last undo restores node-redis exactly', async () => {
      const before = snapshot(id);
      const { RedisClient } = nodeRedisParts(id);
      const connect = (RedisClient.prototype as Record<string, unknown>).connect;
      expect(wrapped(connect)).toBe(false);
      const undo = instrumentNodeRedis(redis);
      const instrumented = (RedisClient.prototype as Record<string, unknown>).connect;
      expect(wrapped(instrumented)).toBe(true);
      const second = instrumentNodeRedis(await import(id)); // the ES namespace of the same module
      const third = instrumentNodeRedis(nodeRedisParts(id).index); // @redis/client itself
      expect((RedisClient.prototype as Record<string, unknown>).connect).toBe(instrumented);
      second();
      third();
      expect((RedisClient.prototype as Record<string, unknown>).connect).toBe(instrumented);
      undo();
      expectSameAs(before, snapshot(id));
      undo(); // twice is harmless
      expectSameAs(before, snapshot(id));
    });

    it('refuses what is not node-redis with a sentence that says what it needs', () => {
      expect(() => instrumentNodeRedis({})).toThrow(/instrumentNodeRedis\(redis\) needs the node-redis module as the app loaded it \(require\('redis'\)/);
      expect(() => instrumentNodeRedis(null)).toThrow(/this null is not one/);
    });

    it('passes errors from node-redis to the app unchanged', async () => {
      const bare = await errorsSeen(redis, `${prefix}:bare`);
      const undo = instrumentNodeRedis(redis);
      try {
        expect(await errorsSeen(redis, `${prefix}:instrumented`)).toEqual(bare);
        expect(bare.reply[1]).toMatch(/WRONGTYPE/);
      } finally {
        undo();
      }
    });

    it("leaves the app's unhandled rejections as they were", async () => {
      // In a child process of its own (built leakwatch), where an unhandled rejection is the app's to see.
      const script = (instrumented: boolean) => `
        import * as redis from '${id}';
        import { instrumentNodeRedis } from ${JSON.stringify(path.join(ROOT, 'dist/index.js'))};
        if (${instrumented}) instrumentNodeRedis(redis);
        let unhandled = 0;
        process.on('unhandledRejection', () => unhandled++);
        const client = redis.createClient({ url: ${JSON.stringify(REDIS_URL)} });
        await client.connect();
        await client.hSet('${prefix}:unhandled', 'field', 'value');
        client.sendCommand(['INCR', '${prefix}:unhandled']); // rejected, and nobody handles it
        client.incr('${prefix}:unhandled');
        await new Promise((resolve) => setTimeout(resolve, 200));
        await client.quit();
        console.log(JSON.stringify({ unhandled }));`;
      const runs = await Promise.all([false, true].map((instrumented) => runCommand(process.execPath, ['--input-type=module', '-e', script(instrumented)], { timeoutMs: 10_000 })));
      expect(runs.map((run) => [run.stderr, JSON.parse(run.stdout)])).toEqual([
        ['', { unhandled: 2 }],
        ['', { unhandled: 2 }],
      ]);
    });
  });

  describe('following connections', () => {
    const admin = useAdminClient(redis);

    it('charges a client to the response that made it, wherever it connects (another request using it makes it shared)', async () => {
      const maker = openResponse();
      const user = openResponse();
      const client = responseContext.run(maker, () => redis.createClient({ url: REDIS_URL }));
      const copy = responseContext.run(maker, () => client.duplicate());
      expect(heldFor(ledger(), client)).toEqual([]); // no connection yet, nothing held
      await responseContext.exit(() => Promise.all([client.connect(), copy.connect()])); // connected outside any request
      const records = [...heldFor(ledger(), client), ...heldFor(ledger(), copy)];
      expect(records.map((r) => [r.owner, r.state, r.kind, r.pool])).toEqual([
        [maker, 'idle', 'redis', `127.0.0.1:${new URL(REDIS_URL).port || 6379}/0`],
        [maker, 'idle', 'redis', `127.0.0.1:${new URL(REDIS_URL).port || 6379}/0`],
      ]);
      await responseContext.run(user, () => client.ping());
      expect(records.map((r) => r.owner)).toEqual([null, maker]); // used by another request: shared
      ledger().closeResponse(maker, 'finished');
      ledger().closeResponse(user, 'finished');
      await Promise.all([closeClient(client), closeClient(copy)]);
      expect(records.map((r) => r.isHeld)).toEqual([false, false]);
    });

    it('never reports a client that never connects', async () => {
      const since = ledger().now();
      const maker = openResponse();
      const client = responseContext.run(maker, () => redis.createClient({ url: REDIS_URL }));
      ledger().closeResponse(maker, 'finished');
      await sleep(2 * THRESHOLD_MS + 100);
      expect(redisLeaksSince(ledger(), since)).toEqual([]);
      expect(heldFor(ledger(), client)).toEqual([]);
    });

    it('keeps a connection busy while its command waits, a blocking pop for as long as it blocks', async () => {
      const key = `${prefix}:queue`;
      const shared = redis.createClient({ url: REDIS_URL }); // made outside any request
      await shared.connect();
      const [record] = heldFor(ledger(), shared);
      const response = openResponse();
      const popped = responseContext.run(response, () => shared.blPop(key, 0));
      expect([record.state, record.owner]).toEqual(['busy', null]);
      expect([...response.operations!].map((o) => [o.command, o.connection])).toEqual([['blpop', record]]);
      await sleep(2 * THRESHOLD_MS + 100); // past both thresholds while it waits
      expect(record.state).toBe('busy');
      expect(response.leak).toBeNull(); // waiting on a busy connection is not stalled

      await admin().lPush(key, 'job');
      expect(await popped).toEqual({ key, element: 'job' });
      expect(record.state).toBe('idle');
      expect(response.operations?.size).toBe(0);
      ledger().closeResponse(response, 'finished');
      await closeClient(shared);
    });

    it('counts each command of a pipeline and a MULTI busy until its reply, errors included', async () => {
      const key = `${prefix}:pipeline`;
      const client = redis.createClient({ url: REDIS_URL });
      await client.connect();
      const [record] = heldFor(ledger(), client);
      const commands = Array.from({ length: 50 }, () => client.incr(key));
      expect([record.busy, record.state]).toEqual([50, 'busy']);
      await Promise.all(commands);
      expect([record.busy, record.state]).toEqual([0, 'idle']);

      const executed = client.multi().incr(key).get(key).execAsPipeline();
      expect(record.busy).toBe(2);
      await executed;
      const transaction = client.multi().incr(key).get(key).exec();
      expect(record.busy).toBe(4); // MULTI, INCR, GET, EXEC
      await transaction;
      expect(record.busy).toBe(0);

      await client.hSet(`${prefix}:hash`, 'field', 'value');
      await expect(client.incr(`${prefix}:hash`)).rejects.toThrow(/WRONGTYPE/);
      expect(record.busy).toBe(0);
      await closeClient(client);
    });

    it.each(isV4 ? [2] : [2, 3])('is a subscriber while subscribed (RESP%s), and idle again after the last unsubscribe', async (resp) => {
      const client = redis.createClient({ url: REDIS_URL, ...(isV4 ? {} : { RESP: resp }) });
      await client.connect();
      const [record] = heldFor(ledger(), client);
      const listener = () => {};
      const subscribed = client.subscribe(`${prefix}:channel`, listener);
      expect(record.state).toBe('busy'); // until the server confirms
      await subscribed;
      expect(record.state).toBe('subscriber');
      await client.pSubscribe(`${prefix}:pattern:*`, listener);
      await client.sSubscribe(`${prefix}:shard`, listener);
      expect(record.state).toBe('subscriber');
      await client.unsubscribe(`${prefix}:channel`);
      await client.pUnsubscribe(`${prefix}:pattern:*`);
      expect(record.state).toBe('subscriber'); // still subscribed to the shard channel
      await client.sUnsubscribe(`${prefix}:shard`);
      expect(record.state).toBe('idle');
      await client.ping();
      expect(record.state).toBe('idle');
      await closeClient(client);
    });

    // close() and destroy() came with redis 5 (disconnect() and quit() stay, deprecated).
    it.each(isV4 ? ['QUIT', 'quit', 'disconnect'] : ['QUIT', 'quit', 'close', 'destroy', 'disconnect'])('lets go at %s()', async (method) => {
      const client = redis.createClient({ url: REDIS_URL });
      await client.connect();
      const [record] = heldFor(ledger(), client);
      const done = client[method]();
      expect(record.isHeld).toBe(false);
      await done;
      expect(heldFor(ledger(), client)).toEqual([]);
    });

    it('keeps one record through a reconnect after CLIENT KILL, busy while it reconnects', async () => {
      const clientName = `${prefix.replaceAll(':', '-')}-killed`;
      const client = redis.createClient({ url: REDIS_URL, name: clientName });
      client.on('error', () => {});
      await client.connect();
      const [record] = heldFor(ledger(), client);
      const reconnecting = new Promise((resolve) => client.once('reconnecting', resolve));
      const [id] = await idsNamed(admin(), clientName);
      await admin().sendCommand(['CLIENT', 'KILL', 'ID', String(id)]);
      await reconnecting;
      expect(record.state).toBe('busy');
      await waitUntil(() => client.isReady, 3000, 'the reconnect');
      expect(heldFor(ledger(), client)).toEqual([record]);
      expect(record.state).toBe('idle');
      expect(await client.ping()).toBe('PONG');
      await closeClient(client);
      expect(record.isHeld).toBe(false);
    });

    it('lets go when the reconnect strategy gives up', async () => {
      const clientName = `${prefix.replaceAll(':', '-')}-given-up`;
      const client = redis.createClient({ url: REDIS_URL, name: clientName, socket: { reconnectStrategy: false } });
      client.on('error', () => {});
      await client.connect();
      const [record] = heldFor(ledger(), client);
      await admin().sendCommand(['CLIENT', 'KILL', 'ID', String((await idsNamed(admin(), clientName))[0])]);
      await waitUntil(() => !client.isOpen, 3000, 'the client to give up');
      expect(record.isHeld).toBe(false);
      expect(heldFor(ledger(), client)).toEqual([]);
    });

    it('never charges to a request the connections node-redis makes for a Cluster (Cluster itself is not followed)', async () => {
      const acquired: ConnectionRecord[] = [];
      const stop = ledger().observe({ connectionAcquired: (c) => void acquired.push(c) });
      const response = openResponse();
      const createCluster = (redis as unknown as { createCluster(options: object): NodeRedisClient }).createCluster;
      // A standalone server refuses the cluster commands, so the Cluster gives up after its first node connection.
      const cluster = responseContext.run(response, () => createCluster({ rootNodes: [{ url: REDIS_URL }] }));
      cluster.on('error', () => {});
      await responseContext.run(response, () => cluster.connect()).catch(() => {});
      await waitUntil(() => acquired.length > 0, 3000, 'the Cluster to connect to its node');
      stop();
      expect(acquired.map((c) => c.owner)).toEqual(acquired.map(() => null));
      await cluster.disconnect?.().catch?.(() => {});
      ledger().closeResponse(response, 'finished');
    });

    it('confirms a leak in CLIENT LIST on a connection of its own, and leaves the app its client name', async () => {
      const since = ledger().now();
      const response = openResponse();
      const named = responseContext.run(response, () => redis.createClient({ url: REDIS_URL, name: 'app-worker' }));
      await named.connect();
      await named.ping();
      const acquired: ConnectionRecord[] = [];
      const stop = ledger().observe({ connectionAcquired: (c) => void acquired.push(c) });
      ledger().closeResponse(response, 'finished');
      await waitUntil(() => redisLeaksSince(ledger(), since)[0]?.server != null, 3000, 'the confirmed leak');
      stop();
      const [leaked] = redisLeaksSince(ledger(), since);
      expect(leaked.target).toBe(named);
      expect(leaked.server).toMatchObject({ state: 'idle', cmd: 'ping' });

      const lines = String(await admin().sendCommand(['CLIENT', 'LIST'])).split('\n');
      const line = lines.find((l) => l.startsWith(`id=${leaked.server?.clientId} `));
      expect(line).toMatch(/ name=app-worker /);
      expect(acquired).toEqual([]); // the lookup connection is not followed, nor one of the app's
      await closeClient(named);
      expect(leaked.leak?.resolvedAt).toBeGreaterThan(0);
    });
  });

  describe('pool leases', () => {
    // redis 5 and 6: createClientPool(); redis 4: the client's isolation pool (executeIsolated()).
    let pool: NodeRedisClient;
    let lease: <T>(fn: (client: NodeRedisClient) => Promise<T>) => Promise<T>;
    let poolClose: () => Promise<unknown>;
    beforeAll(async () => {
      if (redis.createClientPool !== undefined) {
        pool = redis.createClientPool({ url: REDIS_URL }, { minimum: 1, maximum: 2 });
        await pool.connect();
        lease = (fn) => pool.execute(fn);
        poolClose = () => pool.close();
      } else {
        pool = redis.createClient({ url: REDIS_URL });
        await pool.connect();
        lease = (fn) => pool.executeIsolated(fn);
        poolClose = () => pool.quit();
      }
    });
    afterAll(() => poolClose());

    const inUse = (since: number) => [...ledger().held].filter((c) => c.pooled && c.acquiredAt >= since);

    it('holds a member by nobody while it waits in its pool, and by the caller of the lease while leased', async () => {
      const since = ledger().now();
      const response = openResponse();
      let leasedRecord: ConnectionRecord | undefined;
      const count = await responseContext.run(response, () =>
        lease(async (client) => {
          [leasedRecord] = inUse(since);
          expect([leasedRecord.owner, leasedRecord.pooled]).toEqual([response, true]);
          expect(heldFor(ledger(), client)).toEqual([leasedRecord]);
          const reply = client.incr(`${prefix}:leased`);
          expect(leasedRecord.state).toBe('busy');
          return reply;
        }),
      );
      expect(count).toBeGreaterThan(0);
      expect(leasedRecord?.isHeld).toBe(false);
      expect(inUse(since)).toEqual([]);
      ledger().closeResponse(response, 'finished');
      await sleep(2 * THRESHOLD_MS + 100);
      expect(redisLeaksSince(ledger(), since)).toEqual([]);
    });

    it('makes a member inside the first request that needs one and keeps it, with no leak', async () => {
      const since = ledger().now();
      const responses = [openResponse(), openResponse(), openResponse()];
      // Three leases at once, more than the pool holds idle: it makes members inside these requests.
      await Promise.all(responses.map((response) => responseContext.run(response, () => lease((client) => client.blPop(`${prefix}:empty`, 0.2)))));
      for (const response of responses) ledger().closeResponse(response, 'finished');
      await sleep(2 * THRESHOLD_MS + 100);
      expect(redisLeaksSince(ledger(), since)).toEqual([]);
      expect(inUse(since)).toEqual([]);
      expect([...ledger().held].filter((c) => c.acquiredAt >= since)).toEqual([]);
    });

    it('reports a lease never handed back once its response has closed', async () => {
      const since = ledger().now();
      const response = openResponse();
      let handBack!: () => void;
      const held = new Promise<void>((resolve) => (handBack = resolve));
      const leased = responseContext.run(response, () =>
        lease(async (client) => {
          await client.ping();
          await held; // BUG: waits on something that never comes while it keeps the connection
        }),
      );
      await waitUntil(() => inUse(since).length === 1 && inUse(since)[0].state === 'idle', 3000, 'the lease');
      ledger().closeResponse(response, 'finished');
      await waitUntil(() => redisLeaksSince(ledger(), since).length > 0, 3000, 'the lease to leak');
      const [leaked] = redisLeaksSince(ledger(), since);
      expect([leaked.owner, leaked.leak?.reason, leaked.pooled]).toEqual([response, 'held-after-response-closed', true]);
      handBack();
      await leased;
      expect(leaked.leak?.resolvedAt).toBeGreaterThan(0);
    });
  });
});
