import { logFailure } from '../core/guard.js';
import { applyAll, defineAccessor, install, subscribe, wrapMethod, type Fn, type Layer, type Undo } from '../core/patch.js';
import { endsOnFailure, mustWait, type PendingCheckout, type PoolWaits } from '../core/pool-waits.js';
import { currentResponse, ensureRuntime, getRuntime } from '../core/runtime.js';
import { captureStack } from '../core/stack.js';
import type { TrackedClient } from './client.js';
import { CopyClients } from './clients.js';
import { commandName, followReply, pubSubCommandName } from './commands.js';
import { clientModuleOf, partsOf, SUPPORTED, type CopyParts } from './copy.js';
import type { ClientLike, SocketMessage } from './internal-types.js';
import { poolMade, watchOfPool, type NodeRedisPoolWatch } from './pools.js';
import { expectSocket, nodeRedisWindows, socketMade } from './state.js';

/**
 * node-redis (`redis` 4.6–4.7, 5 and 6, all through the `@redis/client` they depend on), by
 * wrapping what every client, command and pool lease goes through (copy.ts says where):
 * - `RedisClient.create` (`createClient()`) and `#duplicate`: the owner (current response) and the
 *   creation stack are taken there;
 * - `#connect`, `#emit` ('ready', 'reconnecting', 'end', 'error', 'terminated') and
 *   `#QUIT`/`#close`/`#destroy`/`#disconnect`: one record from connect to the end, reconnects kept
 *   in it, a connect or reconnect busy (client.ts);
 * - the command queue's `addCommand`, `addBatch` (a MULTI or a pipeline, node-redis 6.4 and later;
 *   before, each of their commands went through `addCommand`), `subscribe` and `unsubscribe`: every
 *   command busy until its reply (commands.ts), pub/sub state read from the queue's `isPubSubActive`;
 * - v4's `#executeIsolated` and v5/v6's `RedisClientPool#execute`: a lease of a pool's member,
 *   owned by the caller of the lease; a member waiting in its pool is held by nobody. A v5/v6
 *   lease asked of a pool at its `maximum` with no idle member waits among the pool's waiters
 *   (pools.ts); `RedisClientPool.create` notes the pool's `maximum`.
 *
 * node-redis 5.12 and later publish `node-redis:*` tracing channels, but 4.x and earlier 5.x do
 * not, and, as for ioredis 6, a subscriber makes node-redis build a context with sanitised
 * arguments for every command. So every version is wrapped alike.
 *
 * The client's queue and socket are private. The queue is found by reading the client's
 * `isPubSubActive` once while the queue's getter notes who asks (state.ts); the socket, needed only
 * to confirm a leak by its address, comes from the `net.client.socket` diagnostics channel in the
 * synchronous run of `connect()`, or of a 'reconnecting' event, where node-redis calls `net.connect()`.
 *
 * Clients that node-redis makes itself (a Cluster's or a Sentinel's, a pool's members) are never
 * charged to a request; Cluster and Sentinel clients themselves are not followed.
 */

const LIFECYCLE_EVENTS = new Set(['ready', 'reconnecting', 'end', 'error', 'terminated']);
const LET_GO_METHODS = ['QUIT', 'close', 'destroy', 'disconnect'] as const;
const PUB_SUB_METHODS = [
  ['subscribe', false],
  ['extendPubSubChannelListeners', false],
  ['extendPubSubListeners', false],
  ['unsubscribe', true],
] as const;

/** Options of {@link instrumentNodeRedis}. */
export interface NodeRedisInstrumentationOptions {
  /**
   * Stack frames captured where a connection is made (`createClient()`, `duplicate()`) or a pool
   * lease taken; 0 turns capture off. Read once, at install.
   * @default the runtime's `acquireStackFrames` (10)
   */
  acquireStackFrames?: number;
}

/**
 * Instruments the copy of @redis/client whose `dist/lib/client/index.js` is `filename`, as
 * `start()` and `leakwatch/register` do when that file loads. Shared by every caller.
 */
export function instrumentClientModule(clientExports: unknown, filename: string, options: NodeRedisInstrumentationOptions = {}): Undo {
  const parts = partsOf(clientExports, filename);
  const stackFrames = options.acquireStackFrames ?? ensureRuntime().config.acquireStackFrames;
  return install(parts.RedisClient.prototype, 'node-redis', () => patchCopy(parts, stackFrames));
}

/**
 * Follows every client of this copy of node-redis (`redis` 4.6–4.7, 5.x or 6.x, or `@redis/client`):
 * who made it, its connection from `connect()` to its end (reconnects kept in one record), its
 * pending and blocking commands, subscriber mode, pool leases, and where it was made; confirms
 * suspected leaks with `CLIENT LIST`. Pass the module as the app loaded it (`require('redis')`,
 * `import * as redis from 'redis'`, or `@redis/client`), before it makes the clients to follow.
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

/** v4's isolation pool makes its members with `duplicate({ isolationPoolOptions: undefined })`. */
function isIsolationMember(overrides: unknown): boolean {
  return (
    typeof overrides === 'object' &&
    overrides !== null &&
    Object.prototype.hasOwnProperty.call(overrides, 'isolationPoolOptions') &&
    (overrides as { isolationPoolOptions?: unknown }).isolationPoolOptions === undefined
  );
}

type Wrapper = [target: object, name: string, wrap: (layer: Layer) => Fn];

/** `createClient()` / `RedisClient.create()`: the client belongs to the current response. */
function createWrapper(clients: CopyClients): (layer: Layer) => Fn {
  return (layer) =>
    function create(this: unknown) {
      const client: unknown = Reflect.apply(layer.original, this, arguments);
      if (layer.active) {
        try {
          clients.made(client, create);
        } catch (error) {
          logFailure('node-redis createClient()', error);
        }
      }
      return client;
    };
}

/** What a client goes through from its making to its end. */
function clientWrappers(parts: CopyParts, clients: CopyClients, stackFrames: number): Wrapper[] {
  const proto = parts.RedisClient.prototype;
  const isolationPool = typeof proto.executeIsolated === 'function';
  const wrappers: Wrapper[] = [
    [parts.RedisClient, 'create', createWrapper(clients)],
    [
      proto,
      'duplicate',
      (layer) =>
        function duplicate(this: ClientLike, overrides?: unknown) {
          const client: unknown = Reflect.apply(layer.original, this, arguments);
          if (layer.active) {
            try {
              if (isolationPool && isIsolationMember(overrides)) clients.member(client);
              else clients.made(client, duplicate);
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
                tracked = clients.trackedOf(this) ?? clients.adopted(this, connect);
                tracked.connectCalled();
              }
            } catch (error) {
              logFailure('node-redis connect()', error);
            }
          }
          if (tracked === null) return Reflect.apply(layer.original, this, arguments);
          // The socket node-redis makes in this synchronous run is this client's.
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
            // After the app's listeners (an 'error' with none throws, and this still runs).
            try {
              const tracked = clients.trackedOf(this);
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
      (name): Wrapper => [
        proto,
        name,
        (layer) =>
          function letGo(this: ClientLike) {
            try {
              return Reflect.apply(layer.original, this, arguments);
            } finally {
              if (layer.active) {
                try {
                  clients.trackedOf(this)?.release();
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
          let leased: Function = fn;
          try {
            leased = clients.leaseDuring(fn, currentResponse(), captureStack(stackFrames, executeIsolated));
          } catch (error) {
            logFailure('node-redis executeIsolated()', error);
          }
          return Reflect.apply(layer.original, this, [leased]);
        },
    ],
  ];
  // Loaded before this instrumentation (explicit instrumentNodeRedis()): it holds the unwrapped create.
  if (parts.index !== null) wrappers.push([parts.index, 'createClient', createWrapper(clients)]);
  return wrappers;
}

/**
 * What the queue gave for command `name`, just queued on `tracked`'s connection: its promise
 * followed (commands.ts), or, where it is none or following fails, as it is.
 */
function followQueued(tracked: TrackedClient, name: string, reply: unknown): unknown {
  if (!(reply instanceof Promise)) return reply;
  try {
    return followReply(tracked, name, reply);
  } catch (error) {
    logFailure('node-redis command', error);
    return reply;
  }
}

/** Every command and pub/sub request of a client goes through its queue. */
function queueWrappers(parts: CopyParts, clients: CopyClients): Wrapper[] {
  const proto = parts.Queue.prototype;
  return [
    [
      proto,
      'addCommand',
      (layer) =>
        function addCommand(this: object, args: unknown) {
          const reply: unknown = Reflect.apply(layer.original, this, arguments);
          if (!layer.active) return reply;
          const tracked = clients.trackedOf(this);
          return tracked === null || tracked.connection === null ? reply : followQueued(tracked, commandName(args), reply);
        },
    ],
    [
      proto,
      'addBatch',
      (layer) =>
        function addBatch(this: object, commands: unknown) {
          const replies: unknown = Reflect.apply(layer.original, this, arguments);
          if (!layer.active) return replies;
          const tracked = clients.trackedOf(this);
          if (tracked === null || tracked.connection === null || !Array.isArray(replies) || !Array.isArray(commands)) return replies;
          // One by one: a follower made is handed on, or its rejection would go unhandled.
          return replies.map((reply: unknown, i) => followQueued(tracked, commandName((commands[i] as { args?: unknown } | null | undefined)?.args), reply));
        },
    ],
    ...PUB_SUB_METHODS.map(
      ([name, unsubscribing]): Wrapper => [
        proto,
        name,
        (layer) =>
          function pubSub(this: object, type: unknown) {
            const reply: unknown = Reflect.apply(layer.original, this, arguments);
            if (!layer.active) return reply;
            const tracked = clients.trackedOf(this);
            if (tracked === null || !(reply instanceof Promise)) return reply; // undefined: nothing to send
            if (!unsubscribing) tracked.subscribed = true;
            return tracked.connection === null ? reply : followQueued(tracked, pubSubCommandName(type, unsubscribing), reply);
          },
      ],
    ),
  ];
}

/** v5/v6 `RedisClientPool`: its members are made and connected in the synchronous run of these; `execute()` leases one. */
function poolWrappers(parts: CopyParts, clients: CopyClients, stackFrames: number): Wrapper[] {
  if (parts.Pool === null) return [];
  const proto = parts.Pool.prototype;
  const asPool = (pool: unknown, run: () => unknown): unknown => {
    const previous = nodeRedisWindows.poolCreating;
    nodeRedisWindows.poolCreating = pool as object;
    try {
      return run();
    } finally {
      nodeRedisWindows.poolCreating = previous;
    }
  };
  const createPool = (layer: Layer): Fn =>
    function create(this: unknown, _clientOptions?: unknown, options?: unknown) {
      const pool: unknown = Reflect.apply(layer.original, this, arguments);
      if (layer.active) {
        try {
          poolMade(pool, options);
        } catch (error) {
          logFailure('node-redis createClientPool()', error);
        }
      }
      return pool;
    };
  const wrappers: Wrapper[] = [
    [parts.Pool, 'create', createPool],
    [
      proto,
      'connect',
      (layer) =>
        function connect(this: unknown) {
          const args = arguments;
          return layer.active ? asPool(this, () => Reflect.apply(layer.original, this, args)) : Reflect.apply(layer.original, this, args);
        },
    ],
    [
      proto,
      'execute',
      (layer) =>
        function execute(this: object, fn: unknown) {
          if (!layer.active || typeof fn !== 'function') return Reflect.apply(layer.original, this, arguments);
          const args = [...arguments];
          let lease: PoolLease | null = null;
          try {
            const owner = currentResponse();
            const stack = captureStack(stackFrames, execute);
            lease = askPool(this, owner, stack);
            args[0] = clients.leaseDuring(fn, owner, stack, lease);
          } catch (error) {
            logFailure('node-redis pool execute()', error);
          }
          const result = asPool(this, () => Reflect.apply(layer.original, this, args));
          if (lease === null || !endsOnFailure(lease) || !(result instanceof Promise)) return result;
          // Rejections pass through untouched; a lease that waits ends its wait when it fails (acquireTimeout).
          // After the lease was served, failed() is a rejection of the app's own function: nothing to end.
          const waiting = lease;
          return result.then(undefined, (error: unknown) => (waiting.failed(), Promise.reject(error)));
        },
    ],
  ];
  // Loaded before this instrumentation (explicit instrumentNodeRedis()): it holds the unwrapped create.
  if (parts.index !== null) wrappers.push([parts.index, 'createClientPool', createPool]);
  return wrappers;
}

/** A lease asked of a v5/v6 pool, from `execute()` until the pool hands a member to it (or it fails). */
export class PoolLease implements PendingCheckout {
  waiting = false;
  ownerWaits = false;
  prevWaiter: PendingCheckout | null = null;
  nextWaiter: PendingCheckout | null = null;
  readonly requestedAt: number;

  constructor(
    private readonly watch: NodeRedisPoolWatch,
    private readonly waits: PoolWaits,
    readonly owner: PendingCheckout['owner'],
    readonly stack: PendingCheckout['stack'],
  ) {
    this.requestedAt = waits.now();
  }

  /** The pool leased a member, whose record (named `poolName`) was made at `at`. */
  served(poolName: string | null, at?: number): void {
    this.watch.name ??= poolName;
    this.waits.served(this.watch, this, at);
  }

  failed(): void {
    this.waits.abandoned(this.watch, this);
  }
}

/** A lease asked of `pool` now: waiting among its waiters when the pool is at its maximum with no idle member. */
function askPool(pool: object, owner: PendingCheckout['owner'], stack: PendingCheckout['stack']): PoolLease | null {
  const waits = getRuntime()?.waits;
  if (waits === undefined) return null;
  const watch = watchOfPool(pool);
  const lease = new PoolLease(watch, waits, owner, stack);
  waits.asked(watch, lease, mustWait(watch.counts()));
  return lease;
}

function patchCopy(parts: CopyParts, stackFrames: number): Undo {
  const clients = new CopyClients(parts.pubSubGetter, stackFrames);
  const { pubSubGetter } = parts;
  const wrappers = [...clientWrappers(parts, clients, stackFrames), ...queueWrappers(parts, clients), ...poolWrappers(parts, clients, stackFrames)];
  return applyAll([
    ...wrappers.map(([target, name, wrap]) => () => wrapMethod(target, name, wrap)),
    () =>
      defineAccessor(parts.Queue.prototype, 'isPubSubActive', {
        get(this: object) {
          const capture = nodeRedisWindows.queueCapture;
          if (capture.armed) capture.queue = this;
          return pubSubGetter.call(this);
        },
      }),
    // One subscriber for every copy: it hands each socket node-redis makes to the client that made it.
    () => install(nodeRedisWindows, 'net.client.socket', () => subscribe('net.client.socket', 'node-redis socket', (message) => socketMade((message as SocketMessage).socket))),
    () => () => clients.releaseAll(),
  ]);
}
