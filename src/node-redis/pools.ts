import { logFailure } from '../core/guard.js';
import { Waiters, type PoolCounts, type WatchedPool } from '../core/pool-waits.js';
import { shared } from '../core/state.js';

/**
 * node-redis 5 and 6 client pools (`createClientPool()`, `client.createPool()`): one watch per pool,
 * made at its first `execute()`, with the pool's own counts (`totalClients`, `idleClients`,
 * `clientsInUse`, `tasksQueueLength`) and the checkouts waiting for it. The pool keeps its options
 * private, so its `maximum` is noted where `RedisClientPool.create()` is given it. A pool is named
 * after the connections it leases (`host:port/db`), as their records are.
 */

/** What a v5/v6 `RedisClientPool` shows; `_self` is the instance behind the objects it hands out. */
interface ClientPool {
  _self?: ClientPool;
  readonly isOpen?: boolean;
  readonly totalClients?: number;
  readonly idleClients?: number;
  readonly clientsInUse?: number;
  readonly tasksQueueLength?: number;
}

export interface NodeRedisPoolWatch extends WatchedPool {
  readonly kind: 'redis';
}

/** node-redis's own default `maximum` (RedisClientPool's defaults, the same in 5 and 6). */
export const NODE_REDIS_DEFAULT_MAXIMUM = 100;

const pools = shared('nodeRedisPools', () => ({
  watches: new WeakMap<object, NodeRedisPoolWatch>(),
  /** Every watch now, for gauges and snapshots; a pool that is gone drops out when read. */
  all: new Set<NodeRedisPoolWatch>(),
  /** `maximum` of each pool made through `create()`. */
  maximum: new WeakMap<object, number>(),
}));

/** The pool instance behind `pool` (v5/v6 hand out `Object.create()` of it). */
export function poolInstance(pool: object): object {
  return (pool as ClientPool)._self ?? pool;
}

const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/** Notes the `maximum` a pool was made with (node-redis's default when not given). */
export function poolMade(pool: unknown, options: unknown): void {
  if (pool === null || typeof pool !== 'object') return;
  const maximum = (options as { maximum?: unknown } | null | undefined)?.maximum;
  pools.maximum.set(poolInstance(pool), typeof maximum === 'number' && maximum > 0 ? maximum : NODE_REDIS_DEFAULT_MAXIMUM);
}

/** The watch of a pool, made on first use. */
export function watchOfPool(pool: object): NodeRedisPoolWatch {
  const instance = poolInstance(pool);
  const existing = pools.watches.get(instance);
  if (existing !== undefined) return existing;
  // Through the WeakRef: the set of watches must not keep an abandoned pool alive.
  const ref = new WeakRef(instance as ClientPool);
  const watch: NodeRedisPoolWatch = {
    kind: 'redis',
    name: null,
    waiters: new Waiters(),
    counts(): PoolCounts | null {
      const p = ref.deref();
      if (p === undefined || p.isOpen === false) return null;
      const idle = count(p.idleClients);
      const used = count(p.clientsInUse);
      return { total: count(p.totalClients) || idle + used, idle, used, pending: count(p.tasksQueueLength), max: pools.maximum.get(p) ?? 0 };
    },
  };
  pools.watches.set(instance, watch);
  pools.all.add(watch);
  return watch;
}

/** Every node-redis pool followed now that is named and open, with its counts; closed and collected ones drop out. */
export function readNodeRedisPools(): Array<{ watch: NodeRedisPoolWatch; name: string; counts: PoolCounts }> {
  const open: Array<{ watch: NodeRedisPoolWatch; name: string; counts: PoolCounts }> = [];
  for (const watch of [...pools.all]) {
    let counts: PoolCounts | null;
    try {
      counts = watch.counts();
    } catch (error) {
      logFailure('reading a node-redis pool’s counts', error);
      continue;
    }
    if (counts === null) pools.all.delete(watch);
    else if (watch.name !== null) open.push({ watch, name: watch.name, counts });
  }
  return open;
}
