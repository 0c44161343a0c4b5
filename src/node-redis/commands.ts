import { logFailure } from '../core/guard.js';
import { currentResponse } from '../core/runtime.js';
import { PendingCommand } from '../redis/commands.js';
import type { TrackedClient } from './client.js';

/**
 * node-redis commands, seen where every one of them goes: the client's command queue
 * (`addCommand`, `addBatch` for a MULTI or a pipeline since node-redis 6.4, and
 * `subscribe`/`unsubscribe` for pub/sub). A command keeps its connection busy from the moment it is
 * queued to its reply, blocking ones (BLPOP, XREAD BLOCK …) for as long as they wait; MULTI/EXEC
 * and pipelines queue each of their commands. A command sent on a connection
 * the current response does not own (a shared client) is also an operation of that response, as
 * for ioredis (src/redis/commands.ts).
 *
 * The reply is seen by following the queue's promise with a promise of leakwatch's own, which is
 * what node-redis then hands on: attaching handlers to the queue's promise alone would mark it
 * handled and hide the app's unhandled rejections, whereas the follower rejects exactly when the
 * queue's promise does, with the same error, and is as unhandled as it would have been.
 */

/** The command's name, lower case as ioredis has it (`blpop`); never an argument. */
export function commandName(args: unknown): string {
  const first: unknown = Array.isArray(args) ? args[0] : undefined;
  const name = typeof first === 'string' ? first : Buffer.isBuffer(first) ? first.toString('latin1') : '';
  // Longer than any command name: not a name, not shown.
  return name.length > 0 && name.length <= 32 ? name.toLowerCase() : 'unknown';
}

const SUBSCRIBE: Record<string, string> = { CHANNELS: 'subscribe', PATTERNS: 'psubscribe', SHARDED: 'ssubscribe' };
const UNSUBSCRIBE: Record<string, string> = { CHANNELS: 'unsubscribe', PATTERNS: 'punsubscribe', SHARDED: 'sunsubscribe' };

/** The pub/sub command a queue's `subscribe(type, …)` (`unsubscribing`: `unsubscribe(type, …)`) sends. */
export function pubSubCommandName(type: unknown, unsubscribing: boolean): string {
  const names = unsubscribing ? UNSUBSCRIBE : SUBSCRIBE;
  return (typeof type === 'string' ? names[type] : undefined) ?? (unsubscribing ? 'unsubscribe' : 'subscribe');
}

function settled(pending: PendingCommand): void {
  try {
    pending.settle();
  } catch (error) {
    logFailure('node-redis reply', error);
  }
}

/**
 * Follows `reply`, the queue's promise of a command just queued on `tracked`'s connection: busy
 * now, idle (or subscriber) when it settles. Returns the promise to hand on in its place.
 */
export function followReply(tracked: TrackedClient, name: string, reply: Promise<unknown>): Promise<unknown> {
  const pending = new PendingCommand(tracked, name, currentResponse());
  pending.start();
  return reply.then(
    (value) => {
      settled(pending);
      return value;
    },
    (error: unknown) => {
      settled(pending);
      throw error;
    },
  );
}
