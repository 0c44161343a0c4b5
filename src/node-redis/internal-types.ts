import type { Socket } from 'node:net';

/**
 * The parts of node-redis leakwatch touches, as they are in @redis/client 1.5–1.6 (redis 4.6–4.7),
 * 5.x and 6.x (`dist/lib/client/index.js`, `commands-queue.js`, `pool.js`). Nothing here is public.
 */

/** Socket options as the client keeps them (`options.socket`), after a `url` was parsed into them. */
export interface SocketOptions {
  host?: string;
  port?: number;
  path?: string;
  tls?: boolean;
  [option: string]: unknown;
}

/** `client.options`: what `createClient()` was given, with a `url` parsed into it. */
export interface ClientOptions {
  socket?: SocketOptions;
  username?: string;
  password?: string;
  database?: number;
  [option: string]: unknown;
}

/**
 * A `RedisClient`, or one of the objects that stand for it: v5 and v6 hand out `Object.create()`
 * of the instance (`_self` is the instance), so that per-call command options do not leak.
 */
export interface ClientLike {
  _self?: ClientLike;
  readonly options: ClientOptions | undefined;
  readonly isOpen: boolean;
  readonly isPubSubActive: boolean;
}

export type RedisClientClass = Function & {
  create(...args: unknown[]): ClientLike;
  prototype: Record<string, unknown>;
};

/** `RedisCommandsQueue`: every command and pub/sub request of a client goes through one. */
export type QueueClass = Function & { prototype: object };

/** v5/v6 `RedisClientPool`. */
export type PoolClass = Function & { prototype: Record<string, unknown> };

/** What `net.client.socket` publishes. */
export interface SocketMessage {
  socket: Socket;
}
