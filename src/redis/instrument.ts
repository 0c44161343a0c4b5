import { logFailure } from '../core/guard.js';
import { applyAll, install, wrapMethod, type Fn, type Layer, type Undo } from '../core/patch.js';
import { currentResponse, ensureRuntime } from '../core/runtime.js';
import { calledFrom, captureStack, whileModuleLoads } from '../core/stack.js';
import { followCommand, type PendingCommand } from './commands.js';
import { closeClientListLookups, ioredisConnectionProbe } from './confirm.js';
import { TrackedClient } from './connection.js';
import type { CommandLike, RedisClass, RedisLike } from './internal-types.js';

/**
 * ioredis 5 and 6, by wrapping four methods of `Redis.prototype`:
 * - `parseOptions`, which every `new Redis()` and `duplicate()` calls synchronously: the owner
 *   (current response) and the creation stack are taken there;
 * - `setStatus`, every status change: the record is acquired at the first `connecting` and
 *   released at `end`, and a connect attempt counts as busy;
 * - `sendCommand`, every command (pipelines and MULTI included): busy until it settles;
 * - `disconnect`, the app letting go (`quit` is seen as a command).
 *
 * ioredis 6 publishes `ioredis:command` and `ioredis:connect` tracing channels, but their messages
 * carry only the server address, database, command name and arguments, never the client: they
 * cannot say which connection is busy, subscribed or ended, nor who made it. Subscribing would also
 * make ioredis build a context and stringify the arguments of every command. So ioredis 6 is
 * wrapped as ioredis 5 is (bench/redis.bench.mjs measures the channel's own cost).
 *
 * Redis Cluster is not supported: the connections a Cluster makes to its nodes (like those a
 * Sentinel connector makes to its sentinels) are followed as connections with no owner, so they are
 * never reported as leaks, and Cluster clients themselves are not followed.
 */

const PATCHED_METHODS = ['parseOptions', 'setStatus', 'sendCommand', 'disconnect'] as const;
/** Frames of ioredis's Cluster and Sentinel code (the folder may be an npm alias such as `ioredis6`). */
const LIBRARY_MADE = /ioredis[^\\/]*[\\/]built[\\/](?:cluster|connectors)[\\/]/;

/** Options of {@link instrumentIoredis}. */
export interface RedisInstrumentationOptions {
  /**
   * Stack frames captured where a connection is made (`new Redis()`, `duplicate()`); 0 turns
   * capture off. Read once, at install.
   * @default the runtime's `acquireStackFrames` (10)
   */
  acquireStackFrames?: number;
}

function isRedisClass(value: unknown): value is RedisClass {
  if (typeof value !== 'function') return false;
  const proto = (value as { prototype?: Partial<Record<string, unknown>> }).prototype;
  return proto !== undefined && PATCHED_METHODS.every((name) => typeof proto[name] === 'function');
}

function redisClassOf(ioredis: unknown): RedisClass | null {
  if (isRedisClass(ioredis)) return ioredis;
  if (ioredis === null || typeof ioredis !== 'object') return null;
  const { Redis, default: fallback } = ioredis as { Redis?: unknown; default?: unknown };
  if (isRedisClass(Redis)) return Redis;
  if (isRedisClass(fallback)) return fallback;
  return null;
}

/**
 * Follows every connection of this copy of ioredis (5.x or 6.x): who made it, its status, its
 * pending and blocking commands, subscriber mode, and where it was created; confirms suspected
 * leaks with `CLIENT LIST`. Pass the module (`require('ioredis')`) or its `Redis` class.
 *
 * Shared by every caller (installing twice is harmless); the last caller's undo restores
 * `Redis.prototype`'s own methods (keeping what other tools wrapped on top), closes leakwatch's
 * own lookup connections and releases the records of the connections it followed. Errors from ioredis reach the app unchanged, and a failure inside leakwatch is logged,
 * never thrown into the app.
 */
export function instrumentIoredis(ioredis: unknown, options: RedisInstrumentationOptions = {}): Undo {
  const Redis = redisClassOf(ioredis);
  if (Redis === null) {
    throw new TypeError(
      "instrumentIoredis(ioredis) needs the ioredis module (require('ioredis') or its Redis class); " +
        `this ${ioredis === null ? 'null' : typeof ioredis} has no Redis#sendCommand, #setStatus, #parseOptions and #disconnect.`,
    );
  }
  const stackFrames = options.acquireStackFrames ?? ensureRuntime().config.acquireStackFrames;
  return install(Redis.prototype, 'ioredis', () => patchRedis(Redis, stackFrames));
}

function patchRedis(Redis: RedisClass, stackFrames: number): Undo {
  const proto = Redis.prototype as unknown as Record<string, unknown>;
  // Per instrumentation, so that after an undo a new one starts afresh with every client.
  const kClient = Symbol('leakwatch.redis.client');
  type Slot = RedisLike & { [kClient]?: TrackedClient };
  const live = new Set<TrackedClient>();
  const probe = ioredisConnectionProbe;

  /** The client's state; clients made before instrumentation are adopted with no owner. */
  const trackedOf = (client: Slot): TrackedClient => {
    const tracked = client[kClient];
    if (tracked !== undefined) return tracked;
    const adopted = new TrackedClient(client, undefined, null, probe, live);
    client[kClient] = adopted;
    adopted.adoptConnected();
    return adopted;
  };

  const wrappers: Record<(typeof PATCHED_METHODS)[number], (layer: Layer) => Fn> = {
    parseOptions: (layer) =>
      function parseOptions(this: Slot) {
        const result = Reflect.apply(layer.original, this, arguments);
        if (layer.active) {
          try {
            let owner = currentResponse();
            const stack = captureStack(stackFrames, parseOptions);
            // A Cluster (or a Sentinel lookup) makes connections whenever it needs them, in whatever context
            // asked; a client made by a module's top-level code is that module's, shared, even when the
            // module loads during a request (Next.js loads a route's modules on its first request).
            if (owner !== undefined && (whileModuleLoads(stack) || calledFrom(LIBRARY_MADE, stack, parseOptions))) owner = undefined;
            this[kClient] = new TrackedClient(this, owner, stack, probe, live);
          } catch (error) {
            logFailure('new Redis()', error);
          }
        }
        return result;
      },
    setStatus: (layer) =>
      function setStatus(this: Slot, status: string) {
        const result = Reflect.apply(layer.original, this, arguments);
        if (layer.active) {
          try {
            trackedOf(this).statusChanged(status);
          } catch (error) {
            logFailure('redis status change', error);
          }
        }
        return result;
      },
    sendCommand: (layer) =>
      function sendCommand(this: Slot, command: CommandLike) {
        let pending: PendingCommand | null = null;
        if (layer.active) {
          try {
            const tracked = trackedOf(this);
            if (typeof command === 'object' && command !== null) pending = followCommand(tracked, command);
          } catch (error) {
            logFailure('redis command', error);
          }
        }
        const result = Reflect.apply(layer.original, this, arguments);
        if (pending !== null) {
          try {
            pending.start();
          } catch (error) {
            logFailure('redis command', error);
          }
        }
        return result;
      },
    disconnect: (layer) =>
      function disconnect(this: Slot, reconnect?: boolean) {
        const result = Reflect.apply(layer.original, this, arguments);
        if (layer.active && !reconnect) {
          try {
            this[kClient]?.release();
          } catch (error) {
            logFailure('redis disconnect', error);
          }
        }
        return result;
      },
  };

  return applyAll([
    ...PATCHED_METHODS.map((name) => () => wrapMethod(proto, name, wrappers[name])),
    () => () => {
      closeClientListLookups();
      for (const tracked of [...live]) tracked.release();
    },
  ]);
}
