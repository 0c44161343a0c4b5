import type { Socket } from 'node:net';

/**
 * The parts of ioredis leakwatch touches, as they are in ioredis 5.x and 6.x
 * (`built/Redis.js`, `built/Command.js`). Nothing here is public.
 */

/** A `Command` of ioredis: `resolve`/`reject` are per-instance functions made in `initPromise()`. */
export interface CommandLike {
  name: string;
  resolve: (value: unknown) => unknown;
  reject: (error: unknown) => unknown;
}

/** ioredis's double-ended queue (denque) of `{command, stream, select}` items. */
export interface CommandQueueLike {
  length: number;
  peekAt(index: number): { command: CommandLike } | undefined;
}

export interface RedisLike {
  /** wait, connecting, connect, ready, close, reconnecting, end (and monitoring). */
  status: string;
  options: Record<string, unknown>;
  stream?: Socket;
  /** Per-connection state; `subscriber` is a SubscriptionSet while subscribed, else false. */
  condition?: { subscriber?: unknown } | null;
  /** Commands written before the socket closed, resent on `ready` unless autoResendUnfulfilledCommands is false. */
  prevCommandQueue?: CommandQueueLike | null;
  call(command: string, ...args: string[]): Promise<unknown>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  disconnect(reconnect?: boolean): void;
}

export interface RedisPrototype {
  parseOptions(...args: unknown[]): void;
  setStatus(status: string, arg?: unknown): void;
  sendCommand(command: CommandLike, stream?: unknown, node?: unknown): unknown;
  disconnect(reconnect?: boolean): void;
}

export interface RedisClass {
  new (...args: unknown[]): RedisLike;
  prototype: RedisPrototype;
}
