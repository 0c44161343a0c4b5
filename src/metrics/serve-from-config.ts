import type { Runtime } from '../core/runtime.js';
import { logFailure } from '../core/guard.js';

/** Placeholder until the metrics issue lands: says plainly that metrics are not served yet. */
export async function serveMetricsFromConfig(runtime: Runtime): Promise<void> {
  logFailure('metrics', new Error(`metricsPort ${runtime.config.metricsPort} is set, but this build does not serve metrics yet`));
}
