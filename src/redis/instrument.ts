import { logFailure } from '../core/guard.js';
import { currentResponse, ensureRuntime } from '../core/runtime.js';
import { captureStack } from '../core/stack.js';
import { followCommand, type PendingCommand } from './commands.js';
import { ClientListConfirmation } from './confirm.js';
import { TrackedClient } from './connection.js';
import type { CommandLike, RedisClass, RedisLike, RedisPrototype } from './internal-types.js';

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

const PATCHED = Symbol.for('leakwatch.redis.patched.v1');
const PATCHED_METHODS = ['parseOptions', 'setStatus', 'sendCommand', 'disconnect'] as const;
/** Frames of ioredis's Cluster and Sentinel code (the folder may be an npm alias such as `ioredis6`). */
const INTERNAL_FRAME = /ioredis[^\\/]*[\\/]built[\\/](?:cluster|connectors)[\\/]/;

type Patched = RedisPrototype & { [PATCHED]?: () => void };

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

/** The client is made by ioredis itself: a Cluster's node connection, a Sentinel query. */
function madeByIoredis(below: Function): boolean {
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

/**
 * Follows every connection of this copy of ioredis (5.x or 6.x): who made it, its status, its
 * pending and blocking commands, subscriber mode, and where it was created; confirms suspected
 * leaks with `CLIENT LIST`. Pass the module (`require('ioredis')`) or its `Redis` class.
 *
 * Idempotent: a second call returns the same undo. The undo restores `Redis.prototype` exactly,
 * closes leakwatch's own lookup connections and releases the records of the connections it
 * followed. Errors from ioredis reach the app unchanged, and a failure inside leakwatch is logged,
 * never thrown into the app.
 */
export function instrumentIoredis(ioredis: unknown): () => void {
  const Redis = redisClassOf(ioredis);
  if (Redis === null) {
    throw new TypeError(
      "instrumentIoredis(ioredis) needs the ioredis module (require('ioredis') or its Redis class); " +
        `this ${ioredis === null ? 'null' : typeof ioredis} has no Redis#sendCommand, #setStatus, #parseOptions and #disconnect.`,
    );
  }
  const proto = Redis.prototype as Patched;
  const existing = proto[PATCHED];
  if (existing !== undefined) return existing;

  // Per instrumentation, so that after an undo a new one starts afresh with every client.
  const kClient = Symbol('leakwatch.redis.client');
  type Slot = RedisLike & { [kClient]?: TrackedClient | null };
  const original = {
    parseOptions: proto.parseOptions,
    setStatus: proto.setStatus,
    sendCommand: proto.sendCommand,
    disconnect: proto.disconnect,
  };
  const descriptors = PATCHED_METHODS.map((name) => [name, Object.getOwnPropertyDescriptor(proto, name)] as const);
  const live = new Set<TrackedClient>();
  let active = true;
  let untrackedDepth = 0;
  const untracked = <T>(make: () => T): T => {
    untrackedDepth++;
    try {
      return make();
    } finally {
      untrackedDepth--;
    }
  };
  const confirmation = new ClientListConfirmation(Redis, untracked);
  const probe = confirmation.probe;

  /** The client's state; clients made before instrumentation are adopted with no owner; null: not followed. */
  const trackedOf = (client: Slot): TrackedClient | null => {
    const tracked = client[kClient];
    if (tracked !== undefined) return tracked;
    const adopted = new TrackedClient(client, undefined, null, probe, live);
    client[kClient] = adopted;
    adopted.adoptConnected();
    return adopted;
  };

  const patched: Pick<RedisPrototype, (typeof PATCHED_METHODS)[number]> = {
    parseOptions: function parseOptions(this: Slot) {
      const result = Reflect.apply(original.parseOptions, this, arguments);
      if (active) {
        try {
          if (untrackedDepth > 0) {
            this[kClient] = null;
          } else {
            let owner = currentResponse();
            const stack = captureStack(ensureRuntime().config.acquireStackFrames, patched.parseOptions);
            // A Cluster (or a Sentinel lookup) makes connections whenever it needs them, in whatever context asked.
            if (owner !== undefined && madeByIoredis(patched.parseOptions)) owner = undefined;
            this[kClient] = new TrackedClient(this, owner, stack, probe, live);
          }
        } catch (error) {
          logFailure('new Redis()', error);
        }
      }
      return result;
    },
    setStatus: function setStatus(this: Slot, status: string) {
      const result = Reflect.apply(original.setStatus, this, arguments);
      if (active) {
        try {
          trackedOf(this)?.statusChanged(status);
        } catch (error) {
          logFailure('redis status change', error);
        }
      }
      return result;
    },
    sendCommand: function sendCommand(this: Slot, command: CommandLike) {
      let pending: PendingCommand | null = null;
      if (active) {
        try {
          const tracked = trackedOf(this);
          if (tracked !== null && typeof command === 'object' && command !== null) pending = followCommand(tracked, command);
        } catch (error) {
          logFailure('redis command', error);
        }
      }
      const result = Reflect.apply(original.sendCommand, this, arguments);
      if (pending !== null) {
        try {
          pending.start();
        } catch (error) {
          logFailure('redis command', error);
        }
      }
      return result;
    },
    disconnect: function disconnect(this: Slot, reconnect?: boolean) {
      const result = Reflect.apply(original.disconnect, this, arguments);
      if (active && !reconnect) {
        try {
          this[kClient]?.release();
        } catch (error) {
          logFailure('redis disconnect', error);
        }
      }
      return result;
    },
  };

  for (const [name, descriptor] of descriptors) {
    Object.defineProperty(proto, name, {
      value: patched[name],
      writable: descriptor?.writable ?? true,
      enumerable: descriptor?.enumerable ?? false,
      configurable: true,
    });
  }

  const undo = (): void => {
    if (proto[PATCHED] !== undo) return;
    active = false;
    for (const [name, descriptor] of descriptors) {
      if (descriptor !== undefined) Object.defineProperty(proto, name, descriptor);
      else delete (proto as unknown as Record<string, unknown>)[name];
    }
    delete proto[PATCHED];
    try {
      confirmation.close();
      for (const tracked of [...live]) tracked.release();
    } catch (error) {
      logFailure('undoing the ioredis instrumentation', error);
    }
  };
  Object.defineProperty(proto, PATCHED, { value: undo, configurable: true, enumerable: false, writable: false });
  return undo;
}
