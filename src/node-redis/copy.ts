import { existsSync, readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import type { PoolClass, QueueClass, RedisClientClass } from './internal-types.js';

/**
 * One copy of @redis/client (an app may hold several: `redis` 4, 5 and 6 each bring their own) and
 * the classes of it that leakwatch wraps, all in `dist/lib/client/`: `index.js` defines
 * `RedisClient` and requires the others before it finishes loading (`commands-queue.js`, and in
 * v5/v6 `pool.js`), so once it has loaded they are all in the module cache.
 */

/** The file that defines `RedisClient` in every supported @redis/client. */
export const CLIENT_FILE = 'dist/lib/client/index.js';
export const SUPPORTED = 'leakwatch supports redis 4.6–4.7 (@redis/client 1.5–1.6), 5 and 6';

export interface CopyParts {
  folder: string;
  RedisClient: RedisClientClass;
  Queue: QueueClass;
  /** The queue's own `isPubSubActive` getter. */
  pubSubGetter: () => unknown;
  /** v5/v6 `RedisClientPool`; null in v4. */
  Pool: PoolClass | null;
  /** `dist/index.js` if loaded: its `createClient` is `RedisClient.create` as it was when the file ran. */
  index: Record<string, unknown> | null;
}

type ModuleCache = Record<string, NodeModule | undefined>;
const moduleCache = (): ModuleCache => (Module as unknown as { _cache: ModuleCache })._cache;

function readManifest(folder: string): { name?: string; version?: string } | null {
  try {
    return JSON.parse(readFileSync(path.join(folder, 'package.json'), 'utf8')) as { name?: string; version?: string };
  } catch {
    return null;
  }
}

/** The classes of the copy whose `dist/lib/client/index.js` is `filename`. Throws a sentence when they are not as leakwatch knows them. */
export function partsOf(clientExports: unknown, filename: string): CopyParts {
  const dir = path.dirname(filename);
  const folder = path.resolve(dir, '..', '..', '..');
  const unsupported = () => new Error(`@redis/client ${readManifest(folder)?.version ?? '(unknown version)'} at ${folder} is not instrumented: ${SUPPORTED}`);
  const RedisClient = (clientExports as { default?: unknown } | null)?.default as RedisClientClass | undefined;
  const proto = RedisClient?.prototype;
  if (typeof RedisClient !== 'function' || typeof RedisClient.create !== 'function' || typeof proto?.connect !== 'function' || typeof proto.duplicate !== 'function') {
    throw unsupported();
  }
  const cache = moduleCache();
  const Queue = (cache[path.join(dir, 'commands-queue.js')]?.exports as { default?: QueueClass } | undefined)?.default;
  const queueProto = Queue?.prototype as Record<string, unknown> | undefined;
  // Before redis 4.6 the queue has no isPubSubActive, by which leakwatch finds a client's queue.
  const pubSubGetter = queueProto === undefined ? undefined : Object.getOwnPropertyDescriptor(queueProto, 'isPubSubActive')?.get;
  if (typeof Queue !== 'function' || typeof pubSubGetter !== 'function' || typeof queueProto?.addCommand !== 'function' || typeof queueProto.subscribe !== 'function') {
    throw unsupported();
  }
  const Pool = (cache[path.join(dir, 'pool.js')]?.exports as { RedisClientPool?: PoolClass } | undefined)?.RedisClientPool ?? null;
  const index = (cache[path.join(folder, 'dist', 'index.js')]?.exports as Record<string, unknown> | undefined) ?? null;
  return { folder, RedisClient, Queue, pubSubGetter, Pool: typeof Pool === 'function' ? Pool : null, index };
}

/** The folder of the package that holds `filename` and is named `redis` or `@redis/client` (an npm alias's folder included). */
function redisPackageOf(filename: string): { folder: string; name: string } | null {
  for (let dir = path.dirname(filename), i = 0; i < 12; dir = path.dirname(dir), i++) {
    const name = readManifest(dir)?.name;
    const ours = name === 'redis' || name === '@redis/client';
    // dist/ holds a copy of the package.json: the package is the folder that holds dist/.
    if (ours && existsSync(path.join(dir, 'dist'))) return { folder: dir, name };
    if (name !== undefined && !ours) return null;
    if (path.dirname(dir) === dir) break;
  }
  return null;
}

/**
 * `dist/lib/client/index.js` of the copy of @redis/client behind `target` (the `redis` or
 * `@redis/client` module, CommonJS exports or an ES namespace), found among the modules loaded.
 */
export function clientModuleOf(target: unknown): { exports: unknown; filename: string } | null {
  const candidates = [target, (target as { default?: unknown } | null)?.default].filter(
    (c): c is object => (typeof c === 'object' || typeof c === 'function') && c !== null,
  );
  const isTarget = (exports: unknown) => {
    if (exports === null || (typeof exports !== 'object' && typeof exports !== 'function')) return false;
    const { createClient } = exports as { createClient?: unknown };
    return candidates.some((c) => c === exports || (typeof createClient === 'function' && createClient === (c as { createClient?: unknown }).createClient));
  };
  for (const [filename, mod] of Object.entries(moduleCache())) {
    if (mod === undefined || !isTarget(mod.exports)) continue;
    const found = redisPackageOf(filename);
    if (found === null) continue;
    let folder = found.folder;
    if (found.name === 'redis') folder = path.resolve(path.dirname(createRequire(path.join(found.folder, 'package.json')).resolve('@redis/client')), '..');
    const file = path.join(folder, CLIENT_FILE);
    return { exports: createRequire(file)(file), filename: file };
  }
  return null;
}
