import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as redis6 from 'redis';
import * as redis5 from 'redis5';
import * as redis4 from 'redis4';
import { afterAll, beforeAll } from 'vitest';
import { answers, freePort, redisAnswers, redisNotUp, waitForRedis } from '../../src/cli/services.js';
import { REDIS_URL } from './redis.js';

export { REDIS_URL, expectConnectionsLeftByLeakyFixture, expectLeftByClosedResponse, expectSubscriberHeldByUnclosedResponse, heldFor, onlyRedisLeakSince, redisLeaksSince, responseLeaksSince, uniquePrefix } from './redis.js';

const require = createRequire(import.meta.url);
const version = (id: string) => (require(`${id}/package.json`) as { version: string }).version;

/** What the tests use of a node-redis module; each major has its own typings, so they meet here. */
 
export type NodeRedis = { createClient(options?: object): any; createClientPool?(options?: object, poolOptions?: object): any };
 
export type NodeRedisClient = any;

/** Every major of node-redis, installed as `redis` (6.x) and the aliases `redis5` and `redis4`: the same tests run for each. */
export const NODE_REDIS_MODULES: ReadonlyArray<readonly [string, NodeRedis, string]> = [
  [`redis ${version('redis')}`, redis6 as unknown as NodeRedis, 'redis'],
  [`redis ${version('redis5')}`, redis5 as unknown as NodeRedis, 'redis5'],
  [`redis ${version('redis4')}`, redis4 as unknown as NodeRedis, 'redis4'],
];

/** `close()` where the client has it (5 and 6), `quit()` on redis 4. */
export const closeClient = (client: NodeRedisClient): Promise<unknown> => (typeof client.close === 'function' ? client.close() : client.quit());

/** A client of the test's own for the server's admin commands (CLIENT LIST, CLIENT KILL, LPUSH), connected before the block's tests and closed after. */
export function useAdminClient(redis: NodeRedis): () => NodeRedisClient {
  let admin: NodeRedisClient;
  beforeAll(async () => {
    admin = redis.createClient({ url: REDIS_URL });
    await admin.connect();
  });
  afterAll(() => closeClient(admin));
  return () => admin;
}

/** Ids (CLIENT LIST) of every connection whose name is `name`: connections this test made and named, and no other. */
export async function idsNamed(admin: NodeRedisClient, name: string): Promise<number[]> {
  const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
  return list
    .split('\n')
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => Number(/^id=(\d+) /.exec(line)?.[1]));
}

/** Kills the connections with these ids (this test's own), as an operator or a failover would. */
export async function kill(admin: NodeRedisClient, ids: number[]): Promise<void> {
  for (const id of ids) await admin.sendCommand(['CLIENT', 'KILL', 'ID', String(id)]);
}

/** A redis-server of the test's own, on a free port, that the test may stop and start again (never the shared one). */
export interface OwnRedis {
  url: string;
  port: number;
  /** Stops the server (SIGKILL: connections drop as in a crash) and starts it again on the same port. */
  restart(options?: { downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

/** `tls`: serve TLS only, with this certificate and key (PEM files), and no client certificates asked for. */
export async function startOwnRedis(extraArgs: string[] = [], tls?: { cert: string; key: string }): Promise<OwnRedis> {
  const port = await freePort();
  const listen = tls === undefined
    ? ['--port', String(port)]
    : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.cert, '--tls-auth-clients', 'no'];
  let child: ChildProcess | null = null;
  const launch = async () => {
    const spawned = spawn('redis-server', [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' });
    child = spawned;
    // On a restart the port was free for a while, and another process may have been given it: then
    // this redis-server cannot listen and exits, and something else answers on the port. Plain
    // Redis is asked for a PONG, and a server that exited is said to have.
    if (!(await waitForRedis(spawned, port, 10_000, tls === undefined ? redisAnswers : answers))) throw new Error(redisNotUp(spawned, port, 10_000));
  };
  const halt = async () => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  await launch();
  return {
    url: `${tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    port,
    async restart({ downMs = 200 } = {}) {
      await halt();
      await new Promise((r) => setTimeout(r, downMs));
      await launch();
    },
    stop: halt,
  };
}

/** The classes leakwatch wraps in the copy of @redis/client that the module `id` uses. */
export function nodeRedisParts(id: string): { RedisClient: { prototype: object }; Queue: { prototype: object }; Pool: { prototype: object } | null; index: object } {
  const clientFolder = path.resolve(path.dirname(createRequire(require.resolve(`${id}/package.json`)).resolve('@redis/client')), '..');
  const load = (file: string) => require(path.join(clientFolder, file)) as Record<string, unknown>;
  const pool = existsSync(path.join(clientFolder, 'dist/lib/client/pool.js')) ? (load('dist/lib/client/pool.js').RedisClientPool as { prototype: object }) : null;
  return {
    RedisClient: load('dist/lib/client/index.js').default as { prototype: object },
    Queue: load('dist/lib/client/commands-queue.js').default as { prototype: object },
    Pool: pool,
    index: load('dist/index.js'),
  };
}
