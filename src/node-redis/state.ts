import type { Socket } from 'node:net';
import { shared } from '../core/state.js';

/** Something that takes the socket `net.connect()` makes for it. */
export interface SocketTaker {
  socket: Socket | null;
}

/**
 * node-redis keeps its queue, its socket and its pools' members in private fields. leakwatch
 * learns them in short synchronous windows, process-wide (every copy of @redis/client and of
 * leakwatch shares these):
 * - `queueCapture`: while armed, the queue whose `isPubSubActive` getter runs is noted; reading a
 *   client's `isPubSubActive` reads its queue's, so one read names the client's queue.
 * - `socketFor`: the client whose socket `net.connect()` is about to make (inside `connect()`, and
 *   right after its 'reconnecting'); the `net.client.socket` diagnostics channel hands it over.
 * - `poolCreating`: set while a v5/v6 client pool runs, when it makes and connects its members.
 */
export const nodeRedisWindows = shared('nodeRedisWindows', () => ({
  queueCapture: { armed: false, queue: null as object | null },
  socketFor: null as SocketTaker | null,
  poolCreating: null as object | null,
}));

/** Hands `socket` to the client waiting for it, if one is. */
export function socketMade(socket: Socket): void {
  const taker = nodeRedisWindows.socketFor;
  if (taker === null) return;
  nodeRedisWindows.socketFor = null;
  taker.socket = socket;
}

/**
 * `taker` gets the next socket made in this synchronous run: after a 'reconnecting' event node-redis
 * calls `net.connect()` before anything else runs. A run that makes none (TLS before Node 22,
 * which publishes no `net.client.socket` for it) clears the window at its end.
 */
export function expectSocket(taker: SocketTaker): void {
  nodeRedisWindows.socketFor = taker;
  queueMicrotask(() => {
    if (nodeRedisWindows.socketFor === taker) nodeRedisWindows.socketFor = null;
  });
}
