import type { Counter, Gauge } from 'prom-client';
import type { Ledger, LedgerObserver } from '../core/ledger.js';
import type { PoolWaitObserver, WatchedPool } from '../core/pool-waits.js';
import type { ConnectionKind, ConnectionRecord } from '../core/records.js';
import type { PoolReading } from '../pools/followed.js';
import type { MetricSet } from './definitions.js';
import type { HistogramSeries, TallyHistogram } from './histogram.js';
import { dbSystemLabel, LabelCap, poolLabel } from './labels.js';
import { CONNECTION_LEAK_REASONS } from './names.js';

/** Where pool readings come from: every followed pool, of any library and kind, read now. */
export type PoolReadings = () => PoolReading[];

type DbLabels = { db_system: string; pool: string };
/** A pool's labels and its histogram series, each made once, at its first observation. */
type PoolLabels = { readonly labels: DbLabels; use: HistogramSeries | null; wait: HistogramSeries | null };

/**
 * The connection families. Pools report their own counts (used, idle, max, pending); connections
 * outside them (a bare pg Client, every ioredis connection, a node-redis client of its own) are
 * counted from the ledger's held connections, as used. Leaks and use times are fed as the ledger
 * sees them; checkout waits and exhaustions as the pools' waits (src/core/pool-waits.ts) see them.
 */
export class ConnectionMetrics implements LedgerObserver, PoolWaitObserver {
  private readonly pools: LabelCap;
  private readonly cachedLabels = new Map<ConnectionKind, Map<string, PoolLabels>>();

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

  /** Every release: one observation into its pool's series, found by the pool's name. */
  connectionReleased(connection: ConnectionRecord): void {
    const entry = this.poolLabels(connection.kind, connection.pool);
    entry.use ??= this.metrics.connectionUseDuration.seriesOf(entry.labels);
    entry.use.observe(Math.max(0, connection.releasedAt - connection.acquiredAt) / 1000);
  }

  checkoutWaiting(pool: WatchedPool): void {
    if (pool.name !== null) this.metrics.connectionWaits.inc(this.poolLabels(pool.kind, pool.name).labels);
  }

  /** Every checkout: the labels are cached per pool, as nothing else is on this path. */
  checkoutServed(pool: WatchedPool, waitedMs: number): void {
    if (pool.name === null) return;
    const entry = this.poolLabels(pool.kind, pool.name);
    entry.wait ??= this.metrics.connectionWaitDuration.seriesOf(entry.labels);
    entry.wait.observe(waitedMs / 1000);
  }

  poolExhausted(pool: WatchedPool): void {
    if (pool.name !== null) this.metrics.poolExhaustions.inc(this.poolLabels(pool.kind, pool.name).labels);
  }

  private poolLabels(kind: ConnectionKind, name: string): PoolLabels {
    let byName = this.cachedLabels.get(kind);
    if (byName === undefined) this.cachedLabels.set(kind, (byName = new Map()));
    let entry = byName.get(name);
    if (entry === undefined) {
      entry = { labels: this.labels(kind, name), use: null, wait: null };
      // Names are bounded in practice; should they not be, past this many they are not kept.
      if (byName.size < 1000) byName.set(name, entry);
    }
    return entry;
  }

  /** Pools with their own counts, and the pool names they cover. */
  private readPools(): { readings: Array<{ labels: DbLabels; pool: PoolReading }>; covered: Set<string> } {
    const readings: Array<{ labels: DbLabels; pool: PoolReading }> = [];
    const covered = new Set<string>();
    for (const pool of this.poolReadings()) {
      readings.push({ labels: this.labels(pool.watch.kind, pool.name), pool });
      covered.add(`${pool.watch.kind} ${pool.name}`);
    }
    return { readings, covered };
  }

  readonly readConnections = (gauge: Gauge<'db_system' | 'pool' | 'state'>): void => {
    gauge.reset();
    const { readings, covered } = this.readPools();
    for (const { labels, pool } of readings) {
      gauge.inc({ ...labels, state: 'used' }, pool.counts.used);
      gauge.inc({ ...labels, state: 'idle' }, pool.counts.idle);
    }
    const ledger = this.ledger();
    if (ledger === undefined) return;
    for (const connection of ledger.held) {
      // A pool's own counts stand for every connection of its name (used against max stays true).
      if (covered.has(`${connection.kind} ${connection.pool}`)) continue;
      gauge.inc({ ...this.labels(connection.kind, connection.pool), state: 'used' }, 1);
    }
  };

  readonly readConnectionsMax = (gauge: Gauge<'db_system' | 'pool'>): void => {
    gauge.reset();
    for (const { labels, pool } of this.readPools().readings) gauge.inc(labels, pool.counts.max);
  };

  readonly readPendingRequests = (gauge: Gauge<'db_system' | 'pool'>): void => {
    gauge.reset();
    for (const { labels, pool } of this.readPools().readings) gauge.inc(labels, pool.counts.pending);
  };

  /** 1 for a pool exhausted now (any of the pools of that name), else 0. */
  readonly readPoolExhausted = (gauge: Gauge<'db_system' | 'pool'>): void => {
    gauge.reset();
    const exhausted = new Map<string, { labels: DbLabels; value: number }>();
    for (const { labels, pool } of this.readPools().readings) {
      const key = `${labels.db_system} ${labels.pool}`;
      const value = pool.watch.waiters.exhaustedSince !== 0 ? 1 : 0;
      exhausted.set(key, { labels, value: Math.max(value, exhausted.get(key)?.value ?? 0) });
    }
    for (const { labels, value } of exhausted.values()) gauge.set(labels, value);
  };

  /** A 0 for every followed pool, so that its series exists before its first wait or exhaustion (increase() needs two samples). */
  readonly zeroCounter = (counter: Counter<'db_system' | 'pool'>): void => {
    for (const { labels } of this.readPools().readings) counter.inc(labels, 0);
  };

  /** Empty buckets for every followed pool, so that its series exists before its first checkout. */
  readonly zeroWaitDuration = (histogram: TallyHistogram): void => {
    for (const { labels } of this.readPools().readings) histogram.zero(labels);
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
