import { ConfigError } from '../config.js';
import type { Ledger } from '../core/ledger.js';
import type { ResponseRecord } from '../core/records.js';
import { getRuntime, ensureRuntime, type Runtime } from '../core/runtime.js';
import { poolStats } from '../pg/index.js';
import { withWorkers } from './cluster.js';
import { ConnectionMetrics, type PoolReadings } from './connection-metrics.js';
import { defineMetrics, removeMetrics, type MetricSet } from './definitions.js';
import { contentTypeOf, negotiateFormat, render, snapshot, type MetricFamily } from './exposition.js';
import { loadPromClient, type AnyRegistry, type PromClient } from './prom-client.js';
import { ResponseMetrics } from './response-metrics.js';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /**
   * The prom-client Registry to add leakwatch's metrics to, for apps that serve their own. Nothing
   * is ever added to prom-client's global registry unless it is passed here.
   * @default a Registry of leakwatch's own
   */
  registry?: AnyRegistry;
  /**
   * The leakwatch runtime to read. By default the process's (made from `LEAKWATCH_*` if none was
   * started), followed if `start()` replaces it later.
   */
  runtime?: Runtime;
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
  /** The families now, counters named by their samples; what a cluster worker sends its primary. */
  families(): Promise<MetricFamily[]>;
  /** Marks a response as leakwatch's own (a scrape), which no metric counts. */
  ignoreResponse(response: ResponseRecord): void;
  /** Stops following the ledger and takes the metrics out of the registry. */
  close(): void;
}

export const DEFAULT_MAX_ROUTES = 100;
export const DEFAULT_MAX_POOLS = 20;

// Read at run time so that build_info carries the installed version.
const VERSION: string = (require('../../package.json') as { version: string }).version;

const byRegistry = new WeakMap<AnyRegistry, LeakwatchMetrics>();

function positiveCount(value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  throw new ConfigError(`option ${what} is ${JSON.stringify(value)}; use a whole number above 0.`);
}

const pgPools: PoolReadings = () => [{ kind: 'pg', pools: poolStats() }];

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
  const metrics = new Metrics(prom, registry, options.runtime, maxRoutes, maxPools, exemplars);
  byRegistry.set(registry, metrics);
  return metrics;
}

function openMetricsRegistry(prom: PromClient): AnyRegistry {
  const registry = new prom.Registry() as AnyRegistry;
  registry.setContentType(prom.Registry.OPENMETRICS_CONTENT_TYPE);
  return registry;
}

class Metrics implements LeakwatchMetrics {
  private readonly set: MetricSet;
  private readonly responses: ResponseMetrics;
  private readonly connections: ConnectionMetrics;
  private readonly ignored = new WeakSet<ResponseRecord>();
  private followed: Ledger | undefined;
  private unobserve: (() => void) | null = null;
  private closed = false;

  constructor(
    private readonly prom: PromClient,
    readonly registry: AnyRegistry,
    private readonly fixedRuntime: Runtime | undefined,
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
      },
      VERSION,
      exemplars,
    );
    this.responses = responses = new ResponseMetrics(this.set, ledger, maxRoutes, exemplars, this.ignored);
    this.connections = connections = new ConnectionMetrics(this.set, ledger, pgPools, maxPools, exemplars);
    this.follow();
  }

  /** The ledger to read, observed; re-attached when `start()` has replaced the runtime. */
  private follow(): Ledger | undefined {
    if (this.closed) return undefined;
    const runtime = this.fixedRuntime ?? getRuntime() ?? ensureRuntime();
    const ledger = runtime.ledger;
    if (ledger !== this.followed) {
      this.unobserve?.();
      const stopResponses = ledger.observe(this.responses);
      const stopConnections = ledger.observe(this.connections);
      this.unobserve = () => {
        stopResponses();
        stopConnections();
      };
      this.followed = ledger;
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
    removeMetrics(this.registry, this.set);
    if (byRegistry.get(this.registry) === this) byRegistry.delete(this.registry);
    if (holder[DEFAULT] === this) delete holder[DEFAULT];
  }
}

const DEFAULT = Symbol.for('leakwatch.metrics.default.v1');
type Holder = { [DEFAULT]?: LeakwatchMetrics };
const holder = globalThis as unknown as Holder;

/**
 * The process's own metrics (a registry of leakwatch's own), shared by `metricsHandler()` and
 * `serveMetrics()` when they are not given any, and by every copy of leakwatch in the process.
 */
export function defaultMetrics(): LeakwatchMetrics {
  const existing = holder[DEFAULT];
  if (existing !== undefined) return existing;
  const metrics = createMetrics();
  holder[DEFAULT] = metrics;
  return metrics;
}
