import type { Counter, Gauge } from 'prom-client';
import { CountOfHistogram, registerIn, TallyHistogram } from './histogram.js';
import * as names from './names.js';
import type { AnyRegistry, PromClient } from './prom-client.js';

/**
 * The metric families of docs/design.md, with their help text, labels, buckets and how Node cluster
 * workers' values combine. Readings of current state get their `collect` from the collectors.
 */

/**
 * Seconds. Fine below a second where healthy responses are, then out to the thresholds at which
 * responses leak (30 s by default) and the minutes a leaked one may take to be closed.
 */
export const RESPONSE_DURATION_BUCKETS = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]);

/**
 * Seconds a connection is held, checkout to release. Pool checkouts last milliseconds; a
 * dedicated client or Redis connection may be held for minutes or the life of the process.
 */
export const CONNECTION_USE_BUCKETS = Object.freeze([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800]);

/**
 * Seconds a checkout waits for its connection. Served at once it is well under a millisecond;
 * a new connection takes milliseconds; a queue behind an exhausted pool, up to the pool's own
 * timeout (pg-pool's `connectionTimeoutMillis`, tarn's 60 s) or for ever.
 */
export const CONNECTION_WAIT_BUCKETS = Object.freeze([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);

type HttpLabel = 'method' | 'route';
type DbLabel = 'db_system' | 'pool';
type Collect = () => void;

export interface MetricSet {
  openResponses: Gauge<HttpLabel>;
  oldestOpenResponseStart: Gauge;
  /** The count of each series of responseDuration. */
  responses: CountOfHistogram;
  leakedResponses: Counter<HttpLabel | 'reason'>;
  responseDuration: TallyHistogram;
  connections: Gauge<DbLabel | 'state'>;
  connectionsMax: Gauge<DbLabel>;
  heldByLeakedResponses: Gauge<DbLabel>;
  leakedConnections: Counter<DbLabel | 'reason'>;
  connectionsLeaked: Gauge<DbLabel | 'reason'>;
  connectionUseDuration: TallyHistogram;
  pendingRequests: Gauge<DbLabel>;
  connectionWaitDuration: TallyHistogram;
  connectionWaits: Counter<DbLabel>;
  poolExhaustions: Counter<DbLabel>;
  poolExhausted: Gauge<DbLabel>;
  buildInfo: Gauge<'version'>;
}

export interface Readings {
  openResponses: (gauge: Gauge<HttpLabel>) => void;
  oldestOpenResponseStart: (gauge: Gauge) => void;
  connections: (gauge: Gauge<DbLabel | 'state'>) => void;
  connectionsMax: (gauge: Gauge<DbLabel>) => void;
  heldByLeakedResponses: (gauge: Gauge<DbLabel>) => void;
  connectionsLeaked: (gauge: Gauge<DbLabel | 'reason'>) => void;
  pendingRequests: (gauge: Gauge<DbLabel>) => void;
  poolExhausted: (gauge: Gauge<DbLabel>) => void;
  /** Gives every followed pool a series from its first scrape (0), so that increase() sees the first event. */
  connectionWaitDuration: (histogram: TallyHistogram) => void;
  connectionWaits: (counter: Counter<DbLabel>) => void;
  poolExhaustions: (counter: Counter<DbLabel>) => void;
}

/** Creates every family in `registry` (and nowhere else). */
export function defineMetrics(prom: PromClient, registry: AnyRegistry, readings: Readings, version: string, exemplars: boolean): MetricSet {
  const registers = [registry];
  // prom-client calls collect with the metric as `this`; each reading takes it as an argument instead.
  const collect = <M>(read: (metric: M) => void): Collect =>
    function (this: M) {
      read(this);
    };
  const buildInfo = new prom.Gauge({
    name: names.BUILD_INFO,
    help: 'leakwatch version; always 1.',
    labelNames: ['version'],
    registers,
    aggregator: 'max',
  });
  buildInfo.set({ version }, 1);
  const responseDuration = new TallyHistogram({
    name: names.HTTP_SERVER_RESPONSE_DURATION,
    help: 'Time from the start of a response to its close, by outcome.',
    labelNames: ['method', 'route', 'outcome'],
    buckets: RESPONSE_DURATION_BUCKETS,
    registers: [],
  });
  return {
    openResponses: new prom.Gauge({
      name: names.HTTP_SERVER_OPEN_RESPONSES,
      help: 'HTTP server responses started and not yet closed, leaked or not.',
      labelNames: ['method', 'route'],
      registers,
      aggregator: 'sum',
      collect: collect(readings.openResponses),
    }),
    oldestOpenResponseStart: new prom.Gauge({
      name: names.HTTP_SERVER_OLDEST_OPEN_RESPONSE_START,
      help: 'Start time (Unix seconds) of the oldest response still open; absent when none is open.',
      registers,
      aggregator: 'min',
      collect: collect(readings.oldestOpenResponseStart),
    }),
    responses: new CountOfHistogram(
      {
        name: names.HTTP_SERVER_RESPONSES,
        help: 'HTTP server responses closed, by outcome: finished (end() flushed) or aborted (closed first).',
        registers,
      },
      responseDuration,
    ),
    leakedResponses: new prom.Counter({
      name: names.HTTP_SERVER_LEAKED_RESPONSES,
      help: 'HTTP server responses found leaked: unclosed (stalled past the response threshold) or open-at-exit.',
      labelNames: ['method', 'route', 'reason'],
      registers,
      aggregator: 'sum',
      enableExemplars: exemplars,
    }),
    // Registered here, after the counter read from it, so that the families keep their order.
    responseDuration: registerIn(registers, responseDuration),
    connections: new prom.Gauge({
      name: names.DB_CLIENT_CONNECTIONS,
      help: 'Open database and cache connections: used (checked out, or a dedicated client) or idle in their pool.',
      labelNames: ['db_system', 'pool', 'state'],
      registers,
      aggregator: 'sum',
      collect: collect(readings.connections),
    }),
    connectionsMax: new prom.Gauge({
      name: names.DB_CLIENT_CONNECTIONS_MAX,
      help: 'Most connections a pool may open (its max option).',
      labelNames: ['db_system', 'pool'],
      registers,
      aggregator: 'sum',
      collect: collect(readings.connectionsMax),
    }),
    heldByLeakedResponses: new prom.Gauge({
      name: names.DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES,
      help: 'Connections still held that were acquired by a response found leaked.',
      labelNames: ['db_system', 'pool'],
      registers,
      aggregator: 'sum',
      collect: collect(readings.heldByLeakedResponses),
    }),
    leakedConnections: new prom.Counter({
      name: names.DB_CLIENT_LEAKED_CONNECTIONS,
      help: 'Connections found leaked: held-by-leaked-response, held-after-response-closed or idle-past-threshold.',
      labelNames: ['db_system', 'pool', 'reason'],
      registers,
      aggregator: 'sum',
      enableExemplars: exemplars,
    }),
    connectionsLeaked: new prom.Gauge({
      name: names.DB_CLIENT_CONNECTIONS_LEAKED,
      help: 'Connections found leaked and still held now, by reason: each one is stranded until released or the process ends.',
      labelNames: ['db_system', 'pool', 'reason'],
      registers,
      aggregator: 'sum',
      collect: collect(readings.connectionsLeaked),
    }),
    connectionUseDuration: new TallyHistogram({
      name: names.DB_CLIENT_CONNECTION_USE_DURATION,
      help: 'Time a connection was held, from checkout (or creation) to release (or close).',
      labelNames: ['db_system', 'pool'],
      buckets: CONNECTION_USE_BUCKETS,
      registers,
    }),
    pendingRequests: new prom.Gauge({
      name: names.DB_CLIENT_CONNECTION_PENDING_REQUESTS,
      help: 'Checkouts waiting for a pool connection.',
      labelNames: ['db_system', 'pool'],
      registers,
      aggregator: 'sum',
      collect: collect(readings.pendingRequests),
    }),
    connectionWaitDuration: new TallyHistogram({
      name: names.DB_CLIENT_CONNECTION_WAIT_DURATION,
      help: 'Time a pool checkout waited for its connection, from the request (pool.connect(), acquire()) to the connection handed over.',
      labelNames: ['db_system', 'pool'],
      buckets: CONNECTION_WAIT_BUCKETS,
      registers,
      collect: collect(readings.connectionWaitDuration),
    }),
    connectionWaits: new prom.Counter({
      name: names.DB_CLIENT_CONNECTION_WAITS,
      help: 'Pool checkouts that had to wait: asked of a pool at its max with no idle connection for them.',
      labelNames: ['db_system', 'pool'],
      registers,
      aggregator: 'sum',
      collect: collect(readings.connectionWaits),
    }),
    poolExhaustions: new prom.Counter({
      name: names.DB_CLIENT_POOL_EXHAUSTIONS,
      help: 'Times a pool became exhausted: checkouts waiting and no idle connection for the exhaustion threshold (1 s by default).',
      labelNames: ['db_system', 'pool'],
      registers,
      aggregator: 'sum',
      collect: collect(readings.poolExhaustions),
    }),
    poolExhausted: new prom.Gauge({
      name: names.DB_CLIENT_POOL_EXHAUSTED,
      help: 'Whether a pool is exhausted now (1) or not (0): checkouts have waited for the exhaustion threshold and none is idle.',
      labelNames: ['db_system', 'pool'],
      registers,
      aggregator: 'max',
      collect: collect(readings.poolExhausted),
    }),
    buildInfo,
  };
}

/** Removes every family of `metrics` from `registry`. */
export function removeMetrics(registry: AnyRegistry, metrics: MetricSet): void {
  const ours = new Set<unknown>(Object.values(metrics));
  // By the names registered: an OpenMetrics registry renames its counters' objects when scraped.
  for (const name of names.METRIC_NAMES) {
    if (ours.has(registry.getSingleMetric(name))) registry.removeSingleMetric(name);
  }
}
