import { existsSync, readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import { logFailure } from '../core/guard.js';
import type { ConnectionProbe, ResponseRecord, StackCapture } from '../core/records.js';
import { applyAll, defineAccessor, install, subscribe, wrapMethod, type Fn, type Layer, type Undo } from '../core/patch.js';
import { currentResponse, ensureRuntime, responseContext } from '../core/runtime.js';
import { captureStack } from '../core/stack.js';
import { TrackedClient, type CopyContext } from './client.js';
import { commandName, followReply, pubSubCommandName } from './commands.js';
import { confirmConnection } from './confirm.js';
import type { ClientLike, PoolClass, QueueClass, RedisClientClass, SocketMessage } from './internal-types.js';
import { expectSocket, nodeRedisWindows, socketMade } from './state.js';

/**
 * node-redis (`redis` 4.6–4.7, 5 and 6, all through the `@redis/client` they depend on), by
 * wrapping what every client, command and pool lease goes through in `dist/lib/client/`:
 * - `RedisClient.create` (`createClient()`) and `#duplicate`: the owner (current response) and the
 *   creation stack are taken there;
 * - `#connect`, `#emit` ('ready', 'reconnecting', 'end', 'error', 'terminated') and
 *   `#QUIT`/`#close`/`#destroy`/`#disconnect`: the record from connect to the end, reconnects kept
 *   in it, a connect or reconnect counted busy;
 * - the command queue's `addCommand`, `subscribe` and `unsubscribe`: every command busy until its
 *   reply (commands.ts), pub/sub state read from the queue's `isPubSubActive`;
 * - v4's `#executeIsolated` and v5/v6's `RedisClientPool#execute`: a lease of a pool's member,
 *   owned by the caller of the lease; a member waiting in its pool is held by nobody.
 *
 * node-redis 5.12 and 6 publish `node-redis:*` tracing channels, but, as with ioredis 6, the
 * messages name a client only by an id of their own and carry sanitised arguments that are built
 * for every command once anyone subscribes; 4.x and the early 5.x publish none. So every version is
 * wrapped alike.
 *
 * The client's queue and socket are private. The queue is found by reading `isPubSubActive` once
 * while the queue's getter notes who asks (state.ts); the socket, needed only to confirm a leak by
 * its address, from the `net.client.socket` diagnostics channel, in the synchronous run of
 * `connect()` or of a 'reconnecting' event where node-redis calls `net.connect()`.
 *
 * Clients that node-redis makes itself (a Cluster's or a Sentinel's, a pool's members) are never
 * charged to a request; Cluster and Sentinel clients themselves are not followed.
 */

/** The file that defines `RedisClient` in every supported @redis/client. */
export const CLIENT_FILE = 'dist/lib/client/index.js';
/** Frames of node-redis's Cluster and Sentinel code, which make clients whenever they need them. */
const INTERNAL_FRAME = /@redis[\\/]client[\\/]dist[\\/]lib[\\/](?:cluster|sentinel)[\\/]/;
const LIFECYCLE_EVENTS = new Set(['ready', 'reconnecting', 'end', 'error', 'terminated']);
const LET_GO_METHODS = ['QUIT', 'close', 'destroy', 'disconnect'] as const;
const SUPPORTED = 'leakwatch supports redis 4.6–4.7 (@redis/client 1.5–1.6), 5 and 6';

/** Options of {@link instrumentNodeRedis}. */
export interface NodeRedisInstrumentationOptions {
  /**
   * Stack frames captured where a connection is made (`createClient()`, `duplicate()`) or a pool
   * lease taken; 0 turns capture off. Read once, at install.
   * @default the runtime's `acquireStackFrames` (10)
   */
  acquireStackFrames?: number;
}

/** The classes of one copy of @redis/client that leakwatch wraps. */
interface CopyParts {
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

function versionOf(folder: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(folder, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** The classes around `dist/lib/client/index.js` (`filename`); its siblings are loaded by the time it is. Throws when they are not as expected. */
function partsOf(clientExports: unknown, filename: string): CopyParts {
  const dir = path.dirname(filename);
  const folder = path.resolve(dir, '..', '..', '..');
  const unsupported = () => new Error(`@redis/client ${versionOf(folder) ?? '(unknown version)'} at ${folder} is not instrumented: ${SUPPORTED}`);
  const RedisClient = (clientExports as { default?: unknown } | null)?.default as RedisClientClass | undefined;
  const proto = RedisClient?.prototype;
  if (typeof RedisClient !== 'function' || typeof RedisClient.create !== 'function' || typeof proto?.connect !== 'function' || typeof proto.duplicate !== 'function') {
    throw unsupported();
  }
  const cache = moduleCache();
  const Queue = (cache[path.join(dir, 'commands-queue.js')]?.exports as { default?: QueueClass } | undefined)?.default;
  const queueProto = Queue?.prototype as Record<string, unknown> | undefined;
  const pubSubGetter = queueProto === undefined ? undefined : Object.getOwnPropertyDescriptor(queueProto, 'isPubSubActive')?.get;
  if (typeof Queue !== 'function' || typeof pubSubGetter !== 'function' || typeof queueProto?.addCommand !== 'function' || typeof queueProto.subscribe !== 'function') {
    throw unsupported();
  }
  const Pool = (cache[path.join(dir, 'pool.js')]?.exports as { RedisClientPool?: PoolClass } | undefined)?.RedisClientPool ?? null;
  const index = (cache[path.join(folder, 'dist', 'index.js')]?.exports as Record<string, unknown> | undefined) ?? null;
  return { folder, RedisClient, Queue, pubSubGetter, Pool: typeof Pool === 'function' ? Pool : null, index };
}

/**
 * Instruments the copy of @redis/client whose `dist/lib/client/index.js` is `filename`; what
 * `start()` and `leakwatch/register` apply as that file loads. Shared by every caller.
 */
export function instrumentClientModule(clientExports: unknown, filename: string, options: NodeRedisInstrumentationOptions = {}): Undo {
  const parts = partsOf(clientExports, filename);
  const stackFrames = options.acquireStackFrames ?? ensureRuntime().config.acquireStackFrames;
  return install(parts.RedisClient.prototype, 'node-redis', () => patchCopy(parts, stackFrames));
}

/** The folder of the package that holds `filename` and is named `redis` or `@redis/client` (an npm alias's folder included). */
function redisPackageOf(filename: string): { folder: string; name: string } | null {
  for (let dir = path.dirname(filename), i = 0; i < 12; dir = path.dirname(dir), i++) {
    try {
      const { name } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      // dist/ holds a copy of the package.json: the package is the folder that holds dist/.
      if ((name === 'redis' || name === '@redis/client') && existsSync(path.join(dir, 'dist'))) return { folder: dir, name };
      if (name !== undefined && name !== 'redis' && name !== '@redis/client') return null;
    } catch {
      // no package.json here (dist/ folders): go up
    }
    if (path.dirname(dir) === dir) break;
  }
  return null;
}

/** `dist/lib/client/index.js` of the copy of @redis/client behind `target`, found among the modules loaded. */
function clientModuleOf(target: unknown): { exports: unknown; filename: string } | null {
  const candidates = [target, (target as { default?: unknown } | null)?.default].filter(
    (c): c is object => (typeof c === 'object' || typeof c === 'function') && c !== null,
  );
  const sameModule = (exports: unknown) =>
    candidates.some((c) => {
      if (c === exports) return true;
      const e = exports as { createClient?: unknown; default?: unknown } | null;
      if (e === null || (typeof e !== 'object' && typeof e !== 'function')) return false;
      return (typeof e.createClient === 'function' && e.createClient === (c as { createClient?: unknown }).createClient) || (typeof c === 'function' && e.default === c);
    });
  for (const [filename, mod] of Object.entries(moduleCache())) {
    if (mod === undefined || !sameModule(mod.exports)) continue;
    const found = redisPackageOf(filename);
    if (found === null) continue;
    let folder = found.folder;
    if (found.name === 'redis') folder = path.resolve(path.dirname(createRequire(path.join(found.folder, 'package.json')).resolve('@redis/client')), '..');
    const file = path.join(folder, CLIENT_FILE);
    return { exports: createRequire(file)(file), filename: file };
  }
  return null;
}

/**
 * Follows every client of this copy of node-redis (`redis` 4.6–4.7, 5.x or 6.x, or `@redis/client`):
 * who made it, its connection from `connect()` to its end (reconnects kept in one record), its
 * pending and blocking commands, subscriber mode, pool leases, and where it was made; confirms
 * suspected leaks with `CLIENT LIST`. Pass the module (`require('redis')`, `import * as redis from
 * 'redis'`, or `@redis/client`), loaded before the clients you want followed are made.
 *
 * Shared by every caller (installing twice is harmless); the last caller's undo restores node-redis's
 * own methods (keeping what other tools wrapped on top) and releases the records of the connections
 * it followed. Errors from node-redis reach the app unchanged, and a failure inside leakwatch is
 * logged, never thrown into the app.
 */
export function instrumentNodeRedis(redis: unknown, options: NodeRedisInstrumentationOptions = {}): Undo {
  const located = clientModuleOf(redis);
  if (located === null) {
    throw new TypeError(
      "instrumentNodeRedis(redis) needs the node-redis module as the app loaded it (require('redis'), import * as redis from 'redis', or '@redis/client'); " +
        `this ${redis === null ? 'null' : typeof redis} is not one.`,
    );
  }
  try {
    return instrumentClientModule(located.exports, located.filename, options);
  } catch (error) {
    if (error instanceof Error && error.message.includes(SUPPORTED)) throw new TypeError(`instrumentNodeRedis(redis): ${error.message}`);
    throw error;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** Runs `fn` in `owner`'s async context, as leakwatch sees it (the app's own contexts are left alone). */
function inContextOf<T>(owner: ResponseRecord | undefined, fn: () => T): T {
  if (currentResponse() === owner) return fn();
  return owner === undefined ? responseContext.exit(fn) : responseContext.run(owner, fn);
}

/** The client is made by node-redis's Cluster or Sentinel code. */
function madeByLibrary(below: Function): boolean {
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = 6;
    const capture: { stack?: string } = {};
    Error.captureStackTrace(capture, below);
    return typeof capture.stack === 'string' && INTERNAL_FRAME.test(capture.stack);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** v4's isolation pool makes its members with `duplicate({ isolationPoolOptions: undefined })`. */
function isIsolationMember(overrides: unknown): boolean {
  return (
    typeof overrides === 'object' &&
    overrides !== null &&
    Object.prototype.hasOwnProperty.call(overrides, 'isolationPoolOptions') &&
    (overrides as { isolationPoolOptions?: unknown }).isolationPoolOptions === undefined
  );
}

function patchCopy(parts: CopyParts, stackFrames: number): Undo {
  const { RedisClient, Queue, Pool, pubSubGetter } = parts;
  const proto = RedisClient.prototype;
  // Per instrumentation, so that after an undo a new one starts afresh with every client.
  const key = Symbol('leakwatch.nodeRedis.client');
  type Keyed = { [key]?: TrackedClient };
  const live = new Set<TrackedClient>();
  const trackedOf = (handle: unknown): TrackedClient | null => ((handle as Keyed | null | undefined)?.[key] ?? null);
  const probe: ConnectionProbe = {
    confirm: (target) => {
      const tracked = trackedOf(target);
      return tracked === null ? Promise.resolve(null) : confirmConnection(tracked.socket, tracked.handle.options);
    },
  };
  const copy: CopyContext = { probe, live, isPubSubActive: (queue) => Boolean(pubSubGetter.call(queue)) };
  const mark = (target: object, tracked: TrackedClient) => Object.defineProperty(target, key, { value: tracked, configurable: true, writable: true });

  /** The client's queue: the one whose `isPubSubActive` answers when the client's is read. */
  const queueOf = (handle: ClientLike): object | null => {
    const capture = nodeRedisWindows.queueCapture;
    capture.armed = true;
    capture.queue = null;
    try {
      void handle.isPubSubActive;
      return capture.queue;
    } finally {
      capture.armed = false;
      capture.queue = null;
    }
  };

  /** Starts following a client (once); its queue is marked so its commands find it. */
  const register = (handle: ClientLike, owner: ResponseRecord | undefined, stack: StackCapture | null, pooled: boolean): TrackedClient => {
    const existing = trackedOf(handle);
    if (existing !== null) return existing;
    const client = handle._self ?? handle;
    const tracked = new TrackedClient(handle, owner, stack, pooled, copy);
    mark(client, tracked);
    const queue = queueOf(handle);
    if (queue !== null) {
      tracked.queue = queue;
      mark(queue, tracked);
    }
    return tracked;
  };

  /** A client the app made: owned by the current response unless node-redis made it for a Cluster or Sentinel. */
  const made = (handle: unknown, below: Function, pooled: boolean): void => {
    if (typeof handle !== 'object' || handle === null) return;
    if (pooled) {
      register(handle as ClientLike, undefined, null, true);
      return;
    }
    let owner = currentResponse();
    const stack = captureStack(stackFrames, below);
    if (owner !== undefined && madeByLibrary(below)) owner = undefined;
    register(handle as ClientLike, owner, stack, false);
  };

  /** `fn` as a pool calls it with a member: the member is leased, to `owner`, while `fn` runs and until what it returns settles. */
  const leaseDuring = (fn: Fn, owner: ResponseRecord | undefined, stack: StackCapture | null): Fn =>
    function leased(this: unknown, member: unknown) {
      const args = arguments;
      const run = () => inContextOf(owner, () => Reflect.apply(fn, this, args));
      let tracked: TrackedClient | null = null;
      try {
        tracked = trackedOf(member);
        if (tracked !== null && tracked.pooled) tracked.lease(owner, stack);
        else tracked = null;
      } catch (error) {
        logFailure('node-redis pool lease', error);
      }
      if (tracked === null) return run();
      const member_ = tracked;
      const handBack = () => {
        try {
          member_.release();
        } catch (error) {
          logFailure('node-redis pool lease', error);
        }
      };
      const previous = nodeRedisWindows.poolCreating;
      nodeRedisWindows.poolCreating = null; // what the app does with the member is not the pool's doing
      let result: unknown;
      try {
        result = run();
      } catch (error) {
        handBack();
        throw error;
      } finally {
        nodeRedisWindows.poolCreating = previous;
      }
      if (!isThenable(result)) {
        handBack();
        return result;
      }
      return result.then(
        (value) => {
          handBack();
          return value;
        },
        (error: unknown) => {
          handBack();
          throw error;
        },
      );
    };

  const create = (layer: Layer) =>
    function create(this: unknown) {
      const client: unknown = Reflect.apply(layer.original, this, arguments);
      if (layer.active) {
        try {
          made(client, create, false);
        } catch (error) {
          logFailure('createClient()', error);
        }
      }
      return client;
    };

  const wrappers: Array<[object, string, (layer: Layer) => Fn]> = [
    [RedisClient, 'create', create],
    [
      proto,
      'duplicate',
      (layer) =>
        function duplicate(this: ClientLike, overrides?: unknown) {
          const client: unknown = Reflect.apply(layer.original, this, arguments);
          if (layer.active) {
            try {
              made(client, duplicate, typeof proto.executeIsolated === 'function' && isIsolationMember(overrides));
            } catch (error) {
              logFailure('node-redis duplicate()', error);
            }
          }
          return client;
        },
    ],
    [
      proto,
      'connect',
      (layer) =>
        function connect(this: ClientLike) {
          let tracked: TrackedClient | null = null;
          if (layer.active) {
            try {
              if (!this.isOpen) {
                // Not made through createClient()/duplicate(): a pool's member, a Cluster's node, or made before instrumentation.
                tracked = trackedOf(this);
                if (tracked === null) {
                  const pooled = nodeRedisWindows.poolCreating !== null;
                  tracked = register(this, undefined, pooled ? null : captureStack(stackFrames, connect), pooled);
                }
                tracked.connectCalled();
              }
            } catch (error) {
              logFailure('node-redis connect()', error);
            }
          }
          if (tracked === null) return Reflect.apply(layer.original, this, arguments);
          const previous = nodeRedisWindows.socketFor;
          nodeRedisWindows.socketFor = tracked;
          try {
            return Reflect.apply(layer.original, this, arguments);
          } finally {
            nodeRedisWindows.socketFor = previous;
          }
        },
    ],
    [
      proto,
      'emit',
      (layer) =>
        function emit(this: ClientLike, event: unknown) {
          if (!layer.active || typeof event !== 'string' || !LIFECYCLE_EVENTS.has(event)) return Reflect.apply(layer.original, this, arguments);
          try {
            return Reflect.apply(layer.original, this, arguments);
          } finally {
            try {
              const tracked = trackedOf(this);
              if (tracked !== null) {
                tracked.emitted(event);
                if (event === 'reconnecting') expectSocket(tracked);
              }
            } catch (error) {
              logFailure(`node-redis '${event}'`, error);
            }
          }
        },
    ],
    ...LET_GO_METHODS.map(
      (name): [object, string, (layer: Layer) => Fn] => [
        proto,
        name,
        (layer) =>
          function letGo(this: ClientLike) {
            try {
              return Reflect.apply(layer.original, this, arguments);
            } finally {
              if (layer.active) {
                try {
                  trackedOf(this)?.release();
                } catch (error) {
                  logFailure(`node-redis ${name}()`, error);
                }
              }
            }
          },
      ],
    ),
    [
      proto,
      'executeIsolated',
      (layer) =>
        function executeIsolated(this: ClientLike, fn: unknown) {
          if (!layer.active || typeof fn !== 'function') return Reflect.apply(layer.original, this, arguments);
          let leased = fn as Fn;
          try {
            leased = leaseDuring(fn as Fn, currentResponse(), captureStack(stackFrames, executeIsolated));
          } catch (error) {
            logFailure('node-redis executeIsolated()', error);
          }
          return Reflect.apply(layer.original, this, [leased]);
        },
    ],
  ];

  if (parts.index !== null) wrappers.push([parts.index, 'createClient', create]);

  const queueProto = Queue.prototype as Record<string, unknown>;
  wrappers.push([
    queueProto,
    'addCommand',
    (layer) =>
      function addCommand(this: Keyed, args: unknown) {
        const reply: unknown = Reflect.apply(layer.original, this, arguments);
        if (!layer.active) return reply;
        const tracked = this[key];
        if (tracked === undefined || tracked.connection === null || !(reply instanceof Promise)) return reply;
        try {
          return followReply(tracked, commandName(args), reply);
        } catch (error) {
          logFailure('node-redis command', error);
          return reply;
        }
      },
  ]);
  for (const [name, unsubscribing] of [
    ['subscribe', false],
    ['extendPubSubChannelListeners', false],
    ['extendPubSubListeners', false],
    ['unsubscribe', true],
  ] as const) {
    wrappers.push([
      queueProto,
      name,
      (layer) =>
        function pubSub(this: Keyed, type: unknown) {
          const reply: unknown = Reflect.apply(layer.original, this, arguments);
          if (!layer.active) return reply;
          const tracked = this[key];
          if (tracked === undefined || !(reply instanceof Promise)) return reply;
          try {
            if (!unsubscribing) tracked.subscribed = true;
            return tracked.connection === null ? reply : followReply(tracked, pubSubCommandName(type, unsubscribing), reply);
          } catch (error) {
            logFailure('node-redis pub/sub command', error);
            return reply;
          }
        },
    ]);
  }

  if (Pool !== null) {
    const poolProto = Pool.prototype;
    // The members a pool makes and connects in the synchronous run of these are its own.
    wrappers.push([
      poolProto,
      'connect',
      (layer) =>
        function connect(this: unknown) {
          if (!layer.active) return Reflect.apply(layer.original, this, arguments);
          const previous = nodeRedisWindows.poolCreating;
          nodeRedisWindows.poolCreating = this as object;
          try {
            return Reflect.apply(layer.original, this, arguments);
          } finally {
            nodeRedisWindows.poolCreating = previous;
          }
        },
    ]);
    wrappers.push([
      poolProto,
      'execute',
      (layer) =>
        function execute(this: unknown, fn: unknown) {
          if (!layer.active || typeof fn !== 'function') return Reflect.apply(layer.original, this, arguments);
          const args = [...arguments];
          try {
            args[0] = leaseDuring(fn as Fn, currentResponse(), captureStack(stackFrames, execute));
          } catch (error) {
            logFailure('node-redis pool execute()', error);
          }
          const previous = nodeRedisWindows.poolCreating;
          nodeRedisWindows.poolCreating = this as object;
          try {
            return Reflect.apply(layer.original, this, args);
          } finally {
            nodeRedisWindows.poolCreating = previous;
          }
        },
    ]);
  }

  return applyAll([
    ...wrappers.map(([target, name, wrap]) => () => wrapMethod(target, name, wrap)),
    () =>
      defineAccessor(queueProto, 'isPubSubActive', {
        get(this: object) {
          const capture = nodeRedisWindows.queueCapture;
          if (capture.armed) capture.queue = this;
          return pubSubGetter.call(this);
        },
      }),
    // One subscriber for every copy: it hands each socket node-redis makes to the client that asked.
    () => install(nodeRedisWindows, 'net.client.socket', () => subscribe('net.client.socket', 'node-redis socket', (message) => socketMade((message as SocketMessage).socket))),
    () => () => {
      for (const tracked of [...live]) tracked.release();
    },
  ]);
}

