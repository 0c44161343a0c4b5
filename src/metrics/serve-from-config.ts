import diagnostics_channel from 'node:diagnostics_channel';
import { logFailure } from '../core/guard.js';
import { shared } from '../core/state.js';
import type { Runtime } from '../core/runtime.js';
import { defaultMetrics } from './create-metrics.js';
import { serveMetrics, type MetricsServer } from './server.js';

/** What the configured port serves, one per process. */
const served = shared<{ now?: { where: string; server: Promise<MetricsServer | null> } }>('metrics.serving', () => ({}));

/**
 * `metricsPort` / `LEAKWATCH_METRICS_PORT` (as `leakwatch run --metrics-port` sets it): serves the
 * process's metrics. Only one process can have the port: the others log it and go on, as they do
 * when prom-client is missing; the result is null then. Never rejects. Calling it again for the
 * same host and port (start() and leakwatch/register both do) gives the same server.
 */
export function serveMetricsFromConfig(runtime: Runtime): Promise<MetricsServer | null> {
  const { metricsPort, metricsHost } = runtime.config;
  if (metricsPort === null) return Promise.resolve(null);
  const where = `${metricsHost}:${metricsPort}`;
  const serving = served.now;
  if (serving !== undefined && serving.where === where) return serving.server;
  // The metrics follow the ledger from now on, even when the port is bound later.
  let metrics;
  try {
    metrics = defaultMetrics();
  } catch (error) {
    logFailure('serving metrics', error);
    return Promise.resolve(null);
  }
  const server = whenToServe().then(() => serveMetrics({ port: metricsPort, host: metricsHost, metrics })).then(
    (server) => {
      // With port 0 the port is known only now; say where.
      if (metricsPort === 0 && server.url !== null) runtime.config.log(`metrics at ${server.url}`);
      return server;
    },
    (error: unknown) => {
      logFailure('serving metrics', error);
      return null;
    },
  );
  served.now = { where, server };
  return server;
}

/**
 * Under `leakwatch run` (LEAKWATCH_METRICS_LAZY=1) every Node process of the command gets the port,
 * and the first to start (`npm`, a shell wrapper) is rarely the app. There the port is bound by the
 * first process that answers an HTTP request; elsewhere at once.
 */
function whenToServe(): Promise<void> {
  if (process.env.LEAKWATCH_METRICS_LAZY !== '1') return Promise.resolve();
  return new Promise((resolve) => {
    const channel = 'http.server.request.start';
    const onFirst = () => {
      diagnostics_channel.unsubscribe(channel, onFirst);
      resolve();
    };
    diagnostics_channel.subscribe(channel, onFirst);
  });
}

/** Closes what serveMetricsFromConfig() serves, if anything. */
export async function stopServingMetrics(): Promise<void> {
  const serving = served.now;
  served.now = undefined;
  await (await serving?.server)?.close();
}
