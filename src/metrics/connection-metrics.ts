import type { Gauge } from 'prom-client';
import type { Ledger, LedgerObserver } from '../core/ledger.js';
import type { ConnectionKind, ConnectionRecord } from '../core/records.js';
import type { PgPoolStats } from '../pg/types.js';
import type { MetricSet } from './definitions.js';
import { dbSystemLabel, LabelCap, poolLabel } from './labels.js';
import { CONNECTION_LEAK_REASONS } from './names.js';

/** One watched pool's counts, as `poolStats()` of src/pg gives them. */
export type PoolReading = PgPoolStats;

/** Where pool readings come from: one function per kind of pool (pg today). */
export type PoolReadings = () => Array<{ kind: ConnectionKind; pools: PoolReading[] }>;

type DbLabels = { db_system: string; pool: string };

/**
 * The connection families. Pools report their own counts (used, idle, max, pending); connections
 * outside a watched pool (a bare pg Client, every ioredis connection) are counted from the ledger's
 * held connections, as used. Leaks and use times are fed as the ledger sees them.
 */
export class ConnectionMetrics implements LedgerObserver {
  private readonly pools: LabelCap;

  constructor(
    private readonly metrics: MetricSet,
    private readonly ledger: () => Ledger | undefined,
    private readonly poolReadings: PoolReadings,
    maxPools: number,
    private readonly exemplars: boolean,
  ) {
    // One cap for every connection family, so that a pool is named alike in all of them.
    this.pools = new LabelCap(maxPools);
  }

  private labels(kind: ConnectionKind, pool: string): DbLabels {
    return { db_system: dbSystemLabel(kind), pool: this.pools.value(poolLabel(pool)) };
  }

  connectionLeaked(connection: ConnectionRecord): void {
    if (connection.leak === null) return;
    const labels = { ...this.labels(connection.kind, connection.pool), reason: connection.leak.reason };
    if (this.exemplars) this.metrics.leakedConnections.inc({ labels, value: 1, exemplarLabels: { connection_id: connection.id } as never });
    else this.metrics.leakedConnections.inc(labels);
  }

  connectionReleased(connection: ConnectionRecord): void {
    const seconds = Math.max(0, connection.releasedAt - connection.acquiredAt) / 1000;
    this.metrics.connectionUseDuration.observe(this.labels(connection.kind, connection.pool), seconds);
  }

  /** Pools with their own counts, and the pool names they cover. */
  private readPools(): { readings: Array<{ labels: DbLabels; pool: PoolReading }>; covered: Set<string> } {
    const readings: Array<{ labels: DbLabels; pool: PoolReading }> = [];
    const covered = new Set<string>();
    for (const { kind, pools } of this.poolReadings()) {
      for (const pool of pools) {
        readings.push({ labels: this.labels(kind, pool.name), pool });
        covered.add(`${kind} ${pool.name}`);
      }
    }
    return { readings, covered };
  }

  readonly readConnections = (gauge: Gauge<'db_system' | 'pool' | 'state'>): void => {
    gauge.reset();
    const { readings, covered } = this.readPools();
    for (const { labels, pool } of readings) {
      gauge.inc({ ...labels, state: 'used' }, pool.used);
      gauge.inc({ ...labels, state: 'idle' }, pool.idle);
    }
    const ledger = this.ledger();
    if (ledger === undefined) return;
    for (const connection of ledger.held) {
      if (covered.has(`${connection.kind} ${connection.pool}`)) continue;
      gauge.inc({ ...this.labels(connection.kind, connection.pool), state: 'used' }, 1);
    }
  };

  readonly readConnectionsMax = (gauge: Gauge<'db_system' | 'pool'>): void => {
    gauge.reset();
    for (const { labels, pool } of this.readPools().readings) gauge.inc(labels, pool.max);
  };

  readonly readPendingRequests = (gauge: Gauge<'db_system' | 'pool'>): void => {
    gauge.reset();
    for (const { labels, pool } of this.readPools().readings) gauge.inc(labels, pool.pending);
  };

  /** Every known pool gets a sample, 0 when none of its connections is held by a leaked response. */
  readonly readHeldByLeakedResponses = (gauge: Gauge<'db_system' | 'pool'>): void => {
    gauge.reset();
    for (const { labels } of this.readPools().readings) gauge.inc(labels, 0);
    const ledger = this.ledger();
    if (ledger === undefined) return;
    for (const connection of ledger.held) {
      const owner = connection.owner;
      const ownerLeaked = owner !== null && owner.leak !== null && owner.leak.resolvedAt === 0;
      gauge.inc(this.labels(connection.kind, connection.pool), ownerLeaked ? 1 : 0);
    }
  };

  /**
   * Leaked connections still held, by reason; every watched pool gets a 0 sample for each reason.
   * Read from the held connections, so it is right however many leaks the report keeps in detail.
   */
  readonly readConnectionsLeaked = (gauge: Gauge<'db_system' | 'pool' | 'reason'>): void => {
    gauge.reset();
    for (const { labels } of this.readPools().readings) for (const reason of CONNECTION_LEAK_REASONS) gauge.inc({ ...labels, reason }, 0);
    const ledger = this.ledger();
    if (ledger === undefined) return;
    for (const connection of ledger.held) {
      const leak = connection.leak;
      if (leak === null || leak.resolvedAt !== 0) continue;
      gauge.inc({ ...this.labels(connection.kind, connection.pool), reason: leak.reason }, 1);
    }
  };
}
