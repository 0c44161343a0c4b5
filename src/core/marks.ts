/**
 * Marks leakwatch leaves on objects that are not its own, all in one place. They are registered
 * Symbols (`Symbol.for`) so that two copies of leakwatch in one process see each other's marks;
 * Symbol-keyed properties are skipped by JSON, `Object.keys` and `for…in`, so the host never sees
 * them in its data.
 */

/** On the wrapper of every method leakwatch wraps: its Layer (see patch.ts). */
export const LAYER = Symbol.for('leakwatch.layer.v2');
/** On a node:http response (and anything followed through it): its ResponseRecord. */
export const RESPONSE = Symbol.for('leakwatch.response.v1');
/** On a server whose responses are leakwatch's own (its metrics server): not followed. */
export const UNTRACKED_SERVER = Symbol.for('leakwatch.untrackedServer.v1');
/** On a fetch handler leakwatch wrapped: wrapping it again returns it. */
export const FETCH_HANDLER = Symbol.for('leakwatch.fetchHandler.v1');
/** On a pg client: the tracker that follows its wire protocol. */
export const PG_TRACKER = Symbol.for('leakwatch.pg.tracker.v1');
/** On a pg pool: what leakwatch knows of it (name, 'release' listener). */
export const PG_POOL_WATCH = Symbol.for('leakwatch.pg.poolWatch.v1');
/** On an ioredis command: its PendingCommand. */
export const REDIS_COMMAND = Symbol.for('leakwatch.redis.command.v1');
