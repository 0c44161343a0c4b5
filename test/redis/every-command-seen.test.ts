import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/core/ledger.js';
import type { ConnectionRecord } from '../../src/core/records.js';
import { waitUntil } from '../support/http.js';
import { NODE_REDIS_MODULES, closeClient, type NodeRedis, type NodeRedisClient } from '../support/node-redis.js';
import { IOREDIS_MODULES, REDIS_URL, heldFor, uniquePrefix, type RedisClient, type RedisModule } from '../support/redis.js';
import { useStarted } from '../support/started.js';

/**
 * Every command a followed client sends is one leakwatch saw queued (the connection busy until its
 * reply), whichever way the library queues it: single commands, concurrent ones, pipelines,
 * MULTI/EXEC, raw commands, scripts, a blocking pop that times out, an error reply. Counted
 * against the server's own account of what that connection sent (MONITOR), not against what the
 * library's code looks like today: node-redis 6.4 began queuing MULTI and pipelines through a new
 * `addBatch`, which leakwatch did not wrap, and nothing but a count like this would notice the next
 * such change.
 */

const leakwatch = useStarted({ responseThreshold: 60_000, connectionThreshold: 60_000 });

/** The server's MONITOR feed on a socket of the test's own: each command's line, as the server executed it. */
class Monitor {
  readonly lines: string[] = [];
  private socket: net.Socket | null = null;
  private buffered = '';

  async open(): Promise<void> {
    const url = new URL(REDIS_URL);
    const socket = net.connect(Number(url.port || 6379), url.hostname);
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      const lines = this.buffered.split('\r\n');
      this.buffered = lines.pop()!;
      this.lines.push(...lines);
    });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write('MONITOR\r\n');
    await waitUntil(() => this.lines.includes('+OK'), 5000, 'MONITOR to start');
  }

  /** The lines of commands the connection at `address` (`host:port`, as CLIENT INFO gives it) sent. */
  from(address: string): string[] {
    return this.lines.filter((line) => line.includes(` ${address}] `));
  }

  close(): void {
    this.socket?.destroy();
  }
}

const monitor = new Monitor();
beforeAll(() => monitor.open());
afterAll(() => monitor.close());

/** Counts, for one connection record, the commands leakwatch saw start (each makes it busy until its reply). */
function countStarts(ledger: Ledger, record: ConnectionRecord): { count: number; stop(): void } {
  const original = ledger.connectionBusy;
  const counter = {
    count: 0,
    stop: () => {
      ledger.connectionBusy = original;
    },
  };
  ledger.connectionBusy = function (this: Ledger, connection: ConnectionRecord) {
    if (connection === record) counter.count++;
    return original.call(this, connection);
  };
  return counter;
}

/** A followed client, connected, and the same workload through its library's own API. */
interface Client {
  /** What leakwatch's record of its connection points to. */
  target: object;
  /** Runs `args` (the command's name first) as the library's raw command call. */
  raw(args: string[]): Promise<unknown>;
  /** Sends 34 commands under keys starting with `key` (the comment in each says which). */
  workload(key: string): Promise<void>;
  close(): Promise<unknown>;
}

async function nodeRedisClient(redis: NodeRedis): Promise<Client> {
  const client: NodeRedisClient = redis.createClient({ url: REDIS_URL });
  await client.connect();
  return {
    target: client,
    raw: (args) => client.sendCommand(args),
    // set, get, 20 incr, MULTI incr get EXEC, incr get (execAsPipeline), PING, EVAL, BLPOP, HSET, INCR, DEL
    async workload(key) {
      await client.set(key, '1');
      await client.get(key);
      await Promise.all(Array.from({ length: 20 }, () => client.incr(key)));
      await client.multi().incr(key).get(key).exec();
      await client.multi().incr(key).get(key).execAsPipeline();
      await client.sendCommand(['PING']);
      await client.eval('return 1', { keys: [], arguments: [] });
      await client.blPop(`${key}:empty`, 0.05);
      await client.hSet(`${key}:hash`, 'field', 'value');
      await client.incr(`${key}:hash`).catch(() => {}); // WRONGTYPE
      await client.del([key, `${key}:hash`]);
    },
    close: () => closeClient(client),
  };
}

async function ioredisClient(Redis: RedisModule, options: object): Promise<Client> {
  const client: RedisClient = new Redis(REDIS_URL, options);
  await client.ping();
  return {
    target: client,
    raw: (args) => client.call(args[0], ...args.slice(1)),
    // set, get, 20 incr, MULTI incr get EXEC, incr get (a pipeline), PING, EVAL, BLPOP, HSET, INCR, DEL
    async workload(key) {
      await client.set(key, '1');
      await client.get(key);
      await Promise.all(Array.from({ length: 20 }, () => client.incr(key)));
      await client.multi().incr(key).get(key).exec();
      await client.pipeline().incr(key).get(key).exec();
      await client.call('PING');
      await client.eval('return 1', 0);
      await client.blpop(`${key}:empty`, 0.05);
      await client.hset(`${key}:hash`, 'field', 'value');
      await client.incr(`${key}:hash`).catch(() => {}); // WRONGTYPE
      await client.del(key, `${key}:hash`);
    },
    close: () => client.quit(),
  };
}

/**
 * Sends the workload on `client` between two markers the monitor waits for; returns what the
 * server saw the connection send between them, and how many commands leakwatch saw start on its
 * record meanwhile.
 */
async function countBoth(client: Client, prefix: string): Promise<{ server: string[]; leakwatch: number }> {
  const info = String(await client.raw(['CLIENT', 'INFO']));
  const address = /\baddr=(\S+)/.exec(info)?.[1];
  expect(address, info).toBeDefined();
  const [record] = heldFor(leakwatch.ledger(), client.target);
  expect(record, 'the client is followed').toBeDefined();

  const begin = `${prefix}:begin`;
  await client.raw(['ECHO', begin]);
  await waitUntil(() => monitor.from(address!).some((line) => line.includes(`"${begin}"`)), 5000, 'the begin marker');
  const counter = countStarts(leakwatch.ledger(), record);
  const before = monitor.from(address!).length;
  try {
    await client.workload(prefix);
  } finally {
    counter.stop();
  }
  const end = `${prefix}:end`;
  await client.raw(['ECHO', end]);
  await waitUntil(() => monitor.from(address!).some((line) => line.includes(`"${end}"`)), 5000, 'the end marker');
  const sent = monitor.from(address!);
  const endAt = sent.findIndex((line) => line.includes(`"${end}"`));
  return { server: sent.slice(before, endAt), leakwatch: counter.count };
}

const CLIENTS: ReadonlyArray<readonly [string, () => Promise<Client>]> = [
  ...NODE_REDIS_MODULES.map(([name, redis]) => [name, () => nodeRedisClient(redis)] as const),
  ...IOREDIS_MODULES.map(([name, Redis]) => [name, () => ioredisClient(Redis, {})] as const),
  // Auto-pipelining sends the commands of one tick as a pipeline of ioredis's own making.
  ...IOREDIS_MODULES.map(([name, Redis]) => [`${name}, auto-pipelining on`, () => ioredisClient(Redis, { enableAutoPipelining: true })] as const),
];

describe.each(CLIENTS)('%s: every command the server saw a client send, leakwatch saw queued', (_name, connect) => {
  it('counts as many as the server did, pipelines and MULTI included', async () => {
    const client = await connect();
    try {
      const { server, leakwatch: seen } = await countBoth(client, uniquePrefix('every-command'));
      expect(server).toHaveLength(34);
      expect(seen).toBe(server.length);
    } finally {
      await client.close();
    }
  });
});
