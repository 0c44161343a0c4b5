/**
 * Metric names and the label values leakwatch writes, as in docs/design.md. Tests, the dashboard check
 * and the rules check import these rather than retyping them.
 */

export const METRIC_PREFIX = 'leakwatch_';

export const HTTP_SERVER_OPEN_RESPONSES = 'leakwatch_http_server_open_responses';
export const HTTP_SERVER_OLDEST_OPEN_RESPONSE_START = 'leakwatch_http_server_oldest_open_response_start_timestamp_seconds';
export const HTTP_SERVER_RESPONSES = 'leakwatch_http_server_responses_total';
export const HTTP_SERVER_LEAKED_RESPONSES = 'leakwatch_http_server_leaked_responses_total';
export const HTTP_SERVER_RESPONSE_DURATION = 'leakwatch_http_server_response_duration_seconds';
export const DB_CLIENT_CONNECTIONS = 'leakwatch_db_client_connections';
/**
 * Beyond the first list of docs/design.md: a pool's configured maximum (OpenTelemetry's
 * `db.client.connection.max`), without which "used against max" cannot be drawn or alerted on.
 */
export const DB_CLIENT_CONNECTIONS_MAX = 'leakwatch_db_client_connections_max';
export const DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES = 'leakwatch_db_client_connections_held_by_leaked_responses';
export const DB_CLIENT_LEAKED_CONNECTIONS = 'leakwatch_db_client_leaked_connections_total';
/**
 * Leaked connections still held now, by reason: what the leak counter cannot say (a
 * `held-after-response-closed` connection stays stranded long after the counter moved). Not
 * `leakwatch_db_client_leaked_connections`: in OpenMetrics that is the counter's family name.
 */
export const DB_CLIENT_CONNECTIONS_LEAKED = 'leakwatch_db_client_connections_leaked';
export const DB_CLIENT_CONNECTION_USE_DURATION = 'leakwatch_db_client_connection_use_duration_seconds';
export const DB_CLIENT_CONNECTION_PENDING_REQUESTS = 'leakwatch_db_client_connection_pending_requests';
/** Time from a checkout's request to its connection, every checkout (OpenTelemetry's `db.client.connection.wait_time`). */
export const DB_CLIENT_CONNECTION_WAIT_DURATION = 'leakwatch_db_client_connection_wait_duration_seconds';
/** Checkouts that had to wait: asked of a pool at its max with no idle connection for them (Go's `sql.DBStats.WaitCount`). */
export const DB_CLIENT_CONNECTION_WAITS = 'leakwatch_db_client_connection_waits_total';
/** Times a pool became exhausted: checkouts waiting, none idle, for the exhaustion threshold. */
export const DB_CLIENT_POOL_EXHAUSTIONS = 'leakwatch_db_client_pool_exhaustions_total';
/**
 * 1 while a pool is exhausted, else 0: what the counter cannot say of an exhaustion that lasts.
 * Not `leakwatch_db_client_pool_exhaustions`: in OpenMetrics that is the counter's family name.
 */
export const DB_CLIENT_POOL_EXHAUSTED = 'leakwatch_db_client_pool_exhausted';
export const BUILD_INFO = 'leakwatch_build_info';

/** Every metric family leakwatch exports. */
export const METRIC_NAMES = Object.freeze([
  HTTP_SERVER_OPEN_RESPONSES,
  HTTP_SERVER_OLDEST_OPEN_RESPONSE_START,
  HTTP_SERVER_RESPONSES,
  HTTP_SERVER_LEAKED_RESPONSES,
  HTTP_SERVER_RESPONSE_DURATION,
  DB_CLIENT_CONNECTIONS,
  DB_CLIENT_CONNECTIONS_MAX,
  DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES,
  DB_CLIENT_LEAKED_CONNECTIONS,
  DB_CLIENT_CONNECTIONS_LEAKED,
  DB_CLIENT_CONNECTION_USE_DURATION,
  DB_CLIENT_CONNECTION_PENDING_REQUESTS,
  DB_CLIENT_CONNECTION_WAIT_DURATION,
  DB_CLIENT_CONNECTION_WAITS,
  DB_CLIENT_POOL_EXHAUSTIONS,
  DB_CLIENT_POOL_EXHAUSTED,
  BUILD_INFO,
] as const);

/** Histograms: their series are `<name>_bucket`, `<name>_sum` and `<name>_count`. */
export const HISTOGRAM_NAMES = Object.freeze([HTTP_SERVER_RESPONSE_DURATION, DB_CLIENT_CONNECTION_USE_DURATION, DB_CLIENT_CONNECTION_WAIT_DURATION] as const);

/** Every series name a query can use: the families, and the histograms' `_bucket`/`_sum`/`_count`. */
export const SERIES_NAMES: readonly string[] = Object.freeze([
  ...METRIC_NAMES,
  ...HISTOGRAM_NAMES.flatMap((name) => [`${name}_bucket`, `${name}_sum`, `${name}_count`]),
]);

/** `route` of a response whose route template is not known (never its raw URL). */
export const UNMATCHED_ROUTE = 'unmatched';
/** `route` (or `pool`) of every value past the cap of distinct values of one metric. */
export const OVERFLOW_VALUE = '_overflow';
/** `method` of a request method outside {@link HTTP_METHODS}. */
export const OTHER_METHOD = '_OTHER';
/** The request methods kept as they are (RFC 9110 and PATCH); any other becomes `_OTHER`. */
export const HTTP_METHODS = Object.freeze(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const);

/** `db_system` for each kind of connection (OpenTelemetry's `db.system` values). */
export const DB_SYSTEMS = Object.freeze({ pg: 'postgresql', redis: 'redis' } as const);

/** `state` of `leakwatch_db_client_connections`: checked out or in use, or open and waiting in its pool. */
export const CONNECTION_STATES = Object.freeze(['used', 'idle'] as const);

/** `reason` of the connection leak metrics, as in the leak rules of docs/design.md. */
export const CONNECTION_LEAK_REASONS = Object.freeze(['held-by-leaked-response', 'held-after-response-closed', 'idle-past-threshold'] as const);
