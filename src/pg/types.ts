/** Options of {@link watchPool}. */
export interface WatchPoolOptions {
  /**
   * The pool's name in reports and metrics. A pool can also carry it as its own option,
   * `new Pool({ ..., leakwatchName: 'orders' })`.
   * @default `host:port/database` of the pool's connection settings (never a user or password)
   */
  name?: string;
}

/** The gauges of one watched pool, read from pg-pool's own counters when asked. */
export interface PgPoolStats {
  /** The pool's name (see {@link WatchPoolOptions.name}). */
  name: string;
  /** Clients the pool has: connecting, idle or checked out (`pool.totalCount`). */
  total: number;
  /** Clients waiting in the pool (`pool.idleCount`). */
  idle: number;
  /** Clients connecting or checked out: `total - idle`. */
  used: number;
  /** `connect()` calls queued for a client (`pool.waitingCount`). */
  pending: number;
  /** The pool's `max` option. */
  max: number;
}
