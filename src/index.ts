// Types only: pg's PoolConfig gains `leakwatchName` where @types/pg is installed.
import './pg/pool-config.js';
export { start, type Started } from './start.js';
export { resolveConfig, parseDuration, ConfigError, DEFAULTS, ENV, type LeakwatchOptions, type LeakLogFormat, type Config } from './config.js';
export { Ledger, type LedgerObserver, type LedgerTotals } from './core/ledger.js';
export { ResponseRecord, ConnectionRecord } from './core/records.js';
export type {
  ConnectionInit,
  ConnectionKind,
  ConnectionProbe,
  ConnectionState,
  EndOverride,
  IdleState,
  LeakReason,
  PendingOperation,
  ResponseOutcome,
  ServerState,
} from './core/records.js';
export { currentResponse, ensureRuntime, getRuntime, resetRuntime, responseContext, type Runtime } from './core/runtime.js';
export { instrumentHttp, instrumentServer, wrapHandler, responseOf } from './http/node-http.js';
export { instrumentEndAttribution } from './http/end-attribution.js';
export { wrapFetchHandler } from './http/fetch.js';
export { honoRoutes, instrumentExpressRoutes, instrumentFastifyRoutes, instrumentKoaRoutes } from './http/routes.js';
export { instrumentIoredis, redisModulePatches } from './redis/index.js';
export { OperationList } from './core/records.js';
export { instrumentPg, watchPool, poolStats, pgModulePatches, type PgPoolStats, type WatchPoolOptions } from './pg/index.js';
export { createMetrics, defaultMetrics, DEFAULT_MAX_POOLS, DEFAULT_MAX_ROUTES, type Exposition, type LeakwatchMetrics, type MetricsOptions } from './metrics/create-metrics.js';
export { metricsHandler, type MetricsHandlerOptions, type MetricsRequestHandler } from './metrics/handler.js';
export { serveMetrics, MetricsPortError, type MetricsServer, type ServeMetricsOptions } from './metrics/server.js';
export { negotiateFormat, OPENMETRICS_TEXT, PROMETHEUS_TEXT, type ExpositionFormat, type MetricFamily } from './metrics/exposition.js';
export { RESPONSE_DURATION_BUCKETS, CONNECTION_USE_BUCKETS } from './metrics/definitions.js';
export { MissingPromClientError } from './metrics/prom-client.js';
export * from './metrics/names.js';
