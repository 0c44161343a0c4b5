import { logFailure } from '../core/guard.js';
import type { ConnectionProbe, ResponseRecord, StackCapture } from '../core/records.js';
import { currentResponse, inContextOf } from '../core/runtime.js';
import { calledFrom, captureStack, whileModuleLoads } from '../core/stack.js';
import { TrackedClient, type CopyContext } from './client.js';
import { confirmConnection } from './confirm.js';
import type { ClientLike } from './internal-types.js';
import { nodeRedisWindows } from './state.js';

/** Frames of node-redis's Cluster and Sentinel code, which make clients whenever they need them. */
const LIBRARY_MADE = /@redis[\\/]client[\\/]dist[\\/]lib[\\/](?:cluster|sentinel)[\\/]/;


function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * The clients of one instrumented copy of @redis/client. Each is marked with its TrackedClient
 * under a Symbol of this instrumentation (a fresh one after an undo, so a new instrumentation
 * starts afresh), and so is its command queue, where its commands go.
 */
export class CopyClients implements CopyContext {
  readonly live = new Set<TrackedClient>();
  private readonly key = Symbol('leakwatch.nodeRedis.client');

  readonly probe: ConnectionProbe = {
    confirm: (target) => {
      const tracked = this.trackedOf(target);
      return tracked === null ? Promise.resolve(null) : confirmConnection(tracked.socket, tracked.handle.options);
    },
  };

  constructor(
    private readonly pubSubGetter: () => unknown,
    private readonly stackFrames: number,
  ) {}

  isPubSubActive(queue: object): boolean {
    return Boolean(this.pubSubGetter.call(queue));
  }

  /** The TrackedClient of a client (or of a stand-in for it, or of its queue); null when not followed. */
  trackedOf(target: unknown): TrackedClient | null {
    return (target as { [key: symbol]: TrackedClient | undefined } | null | undefined)?.[this.key] ?? null;
  }

  /**
   * A client the app made (`createClient()`, `duplicate()`): owned by the current response, unless
   * node-redis made it for a Cluster or Sentinel, or a module's top-level code made it (a shared
   * client of a module that loads during a request).
   */
  made(handle: unknown, below: Function): void {
    if (typeof handle !== 'object' || handle === null) return;
    let owner = currentResponse();
    const stack = captureStack(this.stackFrames, below);
    if (owner !== undefined && (whileModuleLoads(stack) || calledFrom(LIBRARY_MADE, stack, below))) owner = undefined;
    this.register(handle as ClientLike, owner, stack, false);
  }

  /** A member of a pool (v4's isolation pool makes them with `duplicate()`): recorded only while leased. */
  member(handle: unknown): void {
    if (typeof handle === 'object' && handle !== null) this.register(handle as ClientLike, undefined, null, true);
  }

  /**
   * A client seen first at its `connect()`: a v5/v6 pool's member (made while the pool runs), a
   * Cluster's node, or one made before leakwatch was started. It has no owner.
   */
  adopted(handle: ClientLike, below: Function): TrackedClient {
    const pooled = nodeRedisWindows.poolCreating !== null;
    return this.register(handle, undefined, pooled ? null : captureStack(this.stackFrames, below), pooled);
  }

  /**
   * `fn` as a pool calls it with a member: the member is leased to `owner` while `fn` runs and until
   * what it returns settles, and `fn` runs in `owner`'s context (a pool may call it from the release
   * of another caller's lease). `lease`, when given, hears when the pool handed the member over.
   */
  leaseDuring(fn: Function, owner: ResponseRecord | undefined, stack: StackCapture | null, lease: { served(poolName: string | null, at?: number): void } | null = null): Function {
    const clients = this;
    return function leased(this: unknown, member: unknown) {
      const args = arguments;
      const run = () => inContextOf(owner, () => Reflect.apply(fn, this, args) as unknown);
      let tracked: TrackedClient | null = null;
      try {
        tracked = clients.trackedOf(member);
        if (tracked !== null && tracked.pooled) tracked.lease(owner, stack);
        else tracked = null;
        lease?.served(tracked?.connection?.pool ?? null, tracked?.connection?.acquiredAt);
      } catch (error) {
        logFailure('node-redis pool lease', error);
      }
      if (tracked === null) return run();
      const leasedMember = tracked;
      const handBack = () => {
        try {
          leasedMember.release();
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
  }

  /** Lets go of every connection still held; the undo of the instrumentation. */
  releaseAll(): void {
    for (const tracked of [...this.live]) tracked.release();
  }

  /** Starts following a client (once); its queue is marked too, so that its commands find it. */
  private register(handle: ClientLike, owner: ResponseRecord | undefined, stack: StackCapture | null, pooled: boolean): TrackedClient {
    const existing = this.trackedOf(handle);
    if (existing !== null) return existing;
    const tracked = new TrackedClient(handle, owner, stack, pooled, this);
    this.mark(handle._self ?? handle, tracked);
    const queue = this.queueOf(handle);
    if (queue !== null) {
      tracked.queue = queue;
      this.mark(queue, tracked);
    }
    return tracked;
  }

  private mark(target: object, tracked: TrackedClient): void {
    Object.defineProperty(target, this.key, { value: tracked, configurable: true, writable: true });
  }

  /** The client's command queue: the one whose `isPubSubActive` answers when the client's is read. */
  private queueOf(handle: ClientLike): object | null {
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
  }
}
