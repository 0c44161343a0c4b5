import { logFailure } from '../core/guard.js';
import type { Runtime } from '../core/runtime.js';
import { serveMetrics, type MetricsServer } from './server.js';

const SERVING = Symbol.for('leakwatch.metrics.serving.v1');
type Holder = { [SERVING]?: { where: string; server: Promise<MetricsServer | null> } };
const holder = globalThis as unknown as Holder;

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
  const serving = holder[SERVING];
  if (serving !== undefined && serving.where === where) return serving.server;
  const server = serveMetrics({ port: metricsPort, host: metricsHost }).then(
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
  holder[SERVING] = { where, server };
  return server;
}

/** Closes what serveMetricsFromConfig() serves, if anything. */
export async function stopServingMetrics(): Promise<void> {
  const serving = holder[SERVING];
  delete holder[SERVING];
  await (await serving?.server)?.close();
}
