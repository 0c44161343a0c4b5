import { readNodeRedisPools } from '../node-redis/pools.js';
import { readPgPools, type PoolReading } from '../pg/checkout.js';

export type { PoolReading };

/**
 * Every pool leakwatch follows now, named, with its own counts read now: pools of pg clients
 * (pg-pool, tarn, sequelize-pool, generic-pool) and node-redis client pools. What metrics and the
 * holders snapshot read; pools that are gone drop out.
 */
export function followedPools(): PoolReading[] {
  return [...readPgPools(), ...readNodeRedisPools()];
}
