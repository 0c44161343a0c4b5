/**
 * leakwatch's public API. Everything a user calls or types is exported here and nothing else;
 * etc/leakwatch.api.md records it, and CI fails when it changes without that report changing too.
 */

// Types only: pg's PoolConfig gains `leakwatchName` where @types/pg is installed.
import './pg/pool-config.js';

// Start-up and configuration
export { start, type Started } from './start.js';
export type { Undo } from './core/patch.js';
export { ConfigError, type HoldersSignal, type LeakLogFormat, type LeakwatchOptions } from './config.js';

// HTTP: every node:http server is followed by start(); these do it explicitly
export { instrumentHttp, instrumentServer, wrapHandler, type RequestListener } from './http/node-http.js';
export { wrapFetchHandler, type FetchHandler } from './http/fetch.js';
export { honoRoutes, instrumentExpressRoutes, instrumentFastifyRoutes, instrumentKoaRoutes, type HonoContextLike } from './http/routes.js';

// Connections: start() instruments the app's own copies as they load; these do it explicitly
export { instrumentPg, watchPool, poolStats, type PgInstrumentationOptions, type PgPoolStats, type WatchPoolOptions } from './pg/index.js';
export { instrumentIoredis, type RedisInstrumentationOptions } from './redis/index.js';
export { instrumentNodeRedis, type NodeRedisInstrumentationOptions } from './node-redis/index.js';

// Prometheus metrics
export { createMetrics, type Exposition, type LeakwatchMetrics, type MetricsOptions } from './metrics/create-metrics.js';
export { metricsHandler, type MetricsHandlerOptions, type MetricsRequestHandler } from './metrics/handler.js';
export { serveMetrics, MetricsPortError, type MetricsServer, type ServeMetricsOptions } from './metrics/server.js';
export { MissingPromClientError, type AnyRegistry } from './metrics/prom-client.js';
export {
  BUILD_INFO,
  DB_CLIENT_CONNECTION_PENDING_REQUESTS,
  DB_CLIENT_CONNECTION_USE_DURATION,
  DB_CLIENT_CONNECTION_WAIT_DURATION,
  DB_CLIENT_CONNECTION_WAITS,
  DB_CLIENT_CONNECTIONS,
  DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES,
  DB_CLIENT_CONNECTIONS_LEAKED,
  DB_CLIENT_CONNECTIONS_MAX,
  DB_CLIENT_LEAKED_CONNECTIONS,
  DB_CLIENT_POOL_EXHAUSTED,
  DB_CLIENT_POOL_EXHAUSTIONS,
  HTTP_SERVER_LEAKED_RESPONSES,
  HTTP_SERVER_OLDEST_OPEN_RESPONSE_START,
  HTTP_SERVER_OPEN_RESPONSES,
  HTTP_SERVER_RESPONSE_DURATION,
  HTTP_SERVER_RESPONSES,
  METRIC_NAMES,
  OVERFLOW_VALUE,
  UNMATCHED_ROUTE,
} from './metrics/names.js';

// The holders snapshot (started.holders(), GET /leakwatch/holders, holdersSignal)
export type { HeldPool, Holder, HolderOwner, HoldersSnapshot, Waiter } from './report/holders.js';
export type { PoolCounts } from './core/pool-waits.js';

// The report
export type { ConnectionEvent, LeakedConnection, LeakedResponse, Report, ReportProcess, ResolvedLeak, ResponseEvent, TimelineEvent } from './report/json.js';
export type { ClosedHow, ConnectionKind, ConnectionLeakReason, ConnectionState, EndOverride, IdleState, LeakReason, ResponseLeakReason, ServerState } from './core/records.js';
