import type { LeakwatchOptions } from './config.js';
import { logFailure } from './core/guard.js';
import { onModuleLoad } from './core/module-hooks.js';
import { ensureRuntime, type Runtime } from './core/runtime.js';
import { instrumentEndAttribution } from './http/end-attribution.js';
import { instrumentHttp } from './http/node-http.js';
import { instrumentExpressRoutes, instrumentFastifyRoutes, instrumentKoaRoutes } from './http/routes.js';
import { pgModulePatches } from './pg/index.js';
import { redisModulePatches } from './redis/index.js';

export interface Started {
  readonly runtime: Runtime;
  /** Undoes every instrumentation `start()` installed; the ledger keeps its records. */
  stop(): void;
}

/**
 * Creates the runtime from `options` (over `LEAKWATCH_*`), follows every node:http server, and
 * instruments the app's own copies of the supported libraries as they load. Throws a ConfigError
 * naming the option for a bad value.
 */
export function start(options?: LeakwatchOptions): Started {
  const runtime = ensureRuntime(options, options !== undefined);
  const undos: Array<() => void> = [
    instrumentHttp(),
    instrumentExpressRoutes(),
    instrumentFastifyRoutes(),
    onModuleLoad({ file: 'koa/lib/context.js', patch: (context) => instrumentKoaRoutes(context as object) }),
    ...pgModulePatches.map(onModuleLoad),
    ...redisModulePatches.map(onModuleLoad),
  ];
  if (runtime.config.endAttribution) undos.push(instrumentEndAttribution());
  if (runtime.config.metricsPort !== null) {
    // Loaded only when asked for: it is what needs prom-client. Failures are logged, never thrown.
    const metrics = import('./metrics/serve-from-config.js');
    metrics.then((m) => m.serveMetricsFromConfig(runtime)).catch((error: unknown) => logFailure('starting the metrics server', error));
    undos.push(() => void metrics.then((m) => m.stopServingMetrics()).catch((error: unknown) => logFailure('stopping the metrics server', error)));
  }
  return {
    runtime,
    stop() {
      for (const undo of undos.reverse()) undo();
    },
  };
}
