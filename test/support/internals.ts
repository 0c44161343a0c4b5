/**
 * What tests reach inside leakwatch for, besides the public API of src/index.ts: the runtime and
 * its ledger, the async context, records. Not part of the package's API.
 */
export { currentResponse, ensureRuntime, getRuntime, resetRuntime, responseContext } from '../../src/core/runtime.js';
export { responseOf } from '../../src/http/response-of.js';
export { instrumentEndAttribution } from '../../src/http/end-attribution.js';
export { ConnectionRecord, ResponseRecord } from '../../src/core/records.js';
export { SERIES_NAMES, HISTOGRAM_NAMES, OTHER_METHOD, CONNECTION_STATES, DB_SYSTEMS, HTTP_METHODS } from '../../src/metrics/names.js';
export { OPENMETRICS_TEXT, PROMETHEUS_TEXT, negotiateFormat } from '../../src/metrics/exposition.js';
export { DEFAULT_MAX_POOLS, DEFAULT_MAX_ROUTES } from '../../src/metrics/create-metrics.js';
export { RESPONSE_DURATION_BUCKETS, CONNECTION_USE_BUCKETS } from '../../src/metrics/definitions.js';
