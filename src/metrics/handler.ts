import type { IncomingMessage, ServerResponse } from 'node:http';
import { logFailure } from '../core/guard.js';
import { responseOf } from '../http/node-http.js';
import { createMetrics, defaultMetrics, type LeakwatchMetrics, type MetricsOptions, type OwnMetrics } from './create-metrics.js';

/** Options of {@link metricsHandler}: metrics made by `createMetrics()`, or options to make them. */
export interface MetricsHandlerOptions extends MetricsOptions {
  /** @default the process's own metrics, or `createMetrics(options)` when `registry` is given */
  metrics?: LeakwatchMetrics;
}

export type MetricsRequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The metrics these options name: given, made for a registry, or the process's own. */
export function metricsFor(options: MetricsHandlerOptions = {}): OwnMetrics {
  // Every LeakwatchMetrics is made by createMetrics(), whose object is an OwnMetrics.
  if (options.metrics !== undefined) return options.metrics as OwnMetrics;
  if (options.registry !== undefined) return createMetrics(options) as OwnMetrics;
  return defaultMetrics();
}

/**
 * A node:http request handler that answers with the metrics, to mount on the app's own server:
 * `app.get('/metrics', metricsHandler())` (Express), or `server.on('request', …)`. It picks
 * OpenMetrics or the Prometheus text format from the Accept header, answers GET and HEAD only,
 * and is not itself counted in leakwatch's HTTP metrics. Throws at once if prom-client is missing.
 */
export function metricsHandler(options: MetricsHandlerOptions = {}): MetricsRequestHandler {
  const metrics = metricsFor(options);
  return (req, res) => {
    try {
      const response = responseOf(res);
      if (response !== undefined) metrics.ignoreResponse(response);
    } catch (error) {
      logFailure('metrics handler', error);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('Method not allowed: metrics answer GET and HEAD.\n');
      return;
    }
    metrics.scrape(req.headers.accept).then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (error: unknown) => {
        logFailure('metrics scrape', error);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`leakwatch could not collect its metrics: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  };
}
