import { ConfigError } from '../config.js';
import type { Ledger } from '../core/ledger.js';
import type { ResponseRecord } from '../core/records.js';
import { ensureRuntime, getRuntime } from '../core/runtime.js';
import { shared } from '../core/state.js';
import { VERSION } from '../version.js';
import type { PoolWaits } from '../core/pool-waits.js';
import { followedPools } from '../pools/followed.js';
import { withWorkers } from './cluster.js';
import { ConnectionMetrics, type PoolReadings } from './connection-metrics.js';
import { defineMetrics, removeMetrics, type MetricSet } from './definitions.js';
import { contentTypeOf, negotiateFormat, render, snapshot, type MetricFamily } from './exposition.js';
import { loadPromClient, type AnyRegistry, type PromClient } from './prom-client.js';
import { IgnoredResponses, ResponseMetrics } from './response-metrics.js';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /**
   * The prom-client Registry to add leakwatch's metrics to, for apps that serve their own. Nothing
   * is ever added to prom-client's global registry unless it is passed here.
   * @default a Registry of leakwatch's own
   */
  registry?: AnyRegistry;
  /**
   * Distinct `route` values each metric keeps; routes seen after that are counted under
   * `route="_overflow"`. Bounds the series an app with unbounded route templates can create.
   * @default 100
   */
  maxRoutes?: number;
  /** Distinct `pool` values kept, past which pools are counted under `pool="_overflow"`. @default 20 */
  maxPools?: number;
  /**
   * Exemplars on the leak counters naming the leaked response or connection as the report does
   * (`response_id`, `connection_id`); written only in OpenMetrics. prom-client keeps exemplars only
   * in an OpenMetrics Registry, so a Prometheus-format `registry` gets none.
   * @default true
   */
  exemplars?: boolean;
}

/** A scrape's body and its content type. */
export interface Exposition {
  contentType: string;
  body: string;
}

/** leakwatch's metrics in one registry, fed by one ledger. */
export interface LeakwatchMetrics {
  readonly registry: AnyRegistry;
  /**
   * The exposition for a scraper's Accept header: OpenMetrics when it asks for it, else the
   * Prometheus text format. In a cluster primary it includes its workers' metrics, combined.
   */
  scrape(accept?: string): Promise<Exposition>;
  /** Stops following the ledger and takes the metrics out of the registry. */
  close(): void;
}

/** What the metrics server and handler use besides the public interface. */
export interface OwnMetrics extends LeakwatchMetrics {
  /** The families now, counters named by their samples; what a cluster worker sends its primary. */
  families(): Promise<MetricFamily[]>;
  /** Marks a response as leakwatch's own (a scrape), which no metric counts. */
  ignoreResponse(response: ResponseRecord): void;
}

export const DEFAULT_MAX_ROUTES = 100;
export const DEFAULT_MAX_POOLS = 20;


const byRegistry = new WeakMap<AnyRegistry, OwnMetrics>();

function positiveCount(value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  throw new ConfigError(`option ${what} is ${JSON.stringify(value)}; use a whole number above 0.`);
}

const pools: PoolReadings = followedPools;

/**
 * Creates leakwatch's metrics in `registry` (a new one of its own by default) and feeds them from
 * the ledger; call it after `start()`, whose ledger it follows from then on. Calling it again with
 * the same registry returns the same metrics. Throws a MissingPromClientError, saying what to
 * install, when the app has no prom-client.
 */
export function createMetrics(options: MetricsOptions = {}): LeakwatchMetrics {
  const prom = loadPromClient();
  const maxRoutes = positiveCount(options.maxRoutes, 'maxRoutes', DEFAULT_MAX_ROUTES);
  const maxPools = positiveCount(options.maxPools, 'maxPools', DEFAULT_MAX_POOLS);
  if (options.registry !== undefined) {
    const existing = byRegistry.get(options.registry);
    if (existing !== undefined) return existing;
  }
  // An OpenMetrics registry: prom-client keeps exemplars only there. It is written in either format.
  const registry = options.registry ?? openMetricsRegistry(prom);
  const exemplars = (options.exemplars ?? true) && registry.contentType === prom.Registry.OPENMETRICS_CONTENT_TYPE;
  const metrics = new Metrics(prom, registry, maxRoutes, maxPools, exemplars);
  byRegistry.set(registry, metrics);
  return metrics;
}

function openMetricsRegistry(prom: PromClient): AnyRegistry {
  const registry = new prom.Registry() as AnyRegistry;
  registry.setContentType(prom.Registry.OPENMETRICS_CONTENT_TYPE);
  return registry;
}

class Metrics implements OwnMetrics {
  private readonly set: MetricSet;
  private readonly responses: ResponseMetrics;
  private readonly connections: ConnectionMetrics;
  private readonly ignored = new IgnoredResponses();
  private followed: Ledger | undefined;
  private followedWaits: PoolWaits | undefined;
  private unobserve: (() => void) | null = null;
  private closed = false;

  constructor(
    private readonly prom: PromClient,
    readonly registry: AnyRegistry,
    maxRoutes: number,
    maxPools: number,
    exemplars: boolean,
  ) {
    const ledger = () => this.follow();
    let responses: ResponseMetrics | undefined;
    let connections: ConnectionMetrics | undefined;
    this.set = defineMetrics(
      prom,
      registry,
      {
        openResponses: (g) => responses?.readOpenResponses(g),
        oldestOpenResponseStart: (g) => responses?.readOldestOpenResponseStart(g),
        connections: (g) => connections?.readConnections(g),
        connectionsMax: (g) => connections?.readConnectionsMax(g),
        heldByLeakedResponses: (g) => connections?.readHeldByLeakedResponses(g),
        connectionsLeaked: (g) => connections?.readConnectionsLeaked(g),
        pendingRequests: (g) => connections?.readPendingRequests(g),
        poolExhausted: (g) => connections?.readPoolExhausted(g),
        connectionWaitDuration: (h) => connections?.zeroWaitDuration(h),
        connectionWaits: (c) => connections?.zeroCounter(c),
        poolExhaustions: (c) => connections?.zeroCounter(c),
      },
      VERSION,
      exemplars,
    );
    this.responses = responses = new ResponseMetrics(this.set, ledger, maxRoutes, exemplars, this.ignored);
    this.connections = connections = new ConnectionMetrics(this.set, ledger, pools, maxPools, exemplars);
    this.follow();
  }

  /** The ledger to read, observed; re-attached if the runtime was made anew (tests do). */
  private follow(): Ledger | undefined {
    if (this.closed) return undefined;
    const runtime = getRuntime() ?? ensureRuntime();
    const { ledger, waits } = runtime;
    if (ledger !== this.followed || waits !== this.followedWaits) {
      this.unobserve?.();
      const stops = [ledger.observe(this.responses), ledger.observe(this.connections), waits.observe(this.connections)];
      this.unobserve = () => {
        for (const stop of stops) stop();
      };
      this.followed = ledger;
      this.followedWaits = waits;
    }
    return ledger;
  }

  async families(): Promise<MetricFamily[]> {
    this.follow();
    return snapshot(this.registry);
  }

  async scrape(accept?: string): Promise<Exposition> {
    const format = negotiateFormat(accept);
    const families = await withWorkers(this.prom, await this.families());
    return { contentType: contentTypeOf(format), body: await render(this.prom, families, format) };
  }

  ignoreResponse(response: ResponseRecord): void {
    this.ignored.add(response);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unobserve?.();
    this.unobserve = null;
    this.followed = undefined;
    this.followedWaits = undefined;
    removeMetrics(this.registry, this.set);
    if (byRegistry.get(this.registry) === this) byRegistry.delete(this.registry);
    if (ownMetrics.metrics === this) ownMetrics.metrics = undefined;
  }
}

/** The process's own metrics, shared by every copy of leakwatch in the process. */
const ownMetrics = shared<{ metrics: OwnMetrics | undefined }>('metrics', () => ({ metrics: undefined }));

/**
 * The process's own metrics (a registry of leakwatch's own), shared by `metricsHandler()` and
 * `serveMetrics()` when they are not given any, and by every copy of leakwatch in the process.
 */
export function defaultMetrics(): OwnMetrics {
  const existing = ownMetrics.metrics;
  if (existing !== undefined) return existing;
  const metrics = createMetrics() as OwnMetrics;
  ownMetrics.metrics = metrics;
  return metrics;
}
