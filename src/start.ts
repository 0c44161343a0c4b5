import type { LeakwatchOptions } from './config.js';
import { logFailure } from './core/guard.js';
import { onModuleLoad } from './core/module-hooks.js';
import { applyAll, install, undoAll, type Undo } from './core/patch.js';
import { ensureRuntime, type Runtime } from './core/runtime.js';
import { instrumentEndAttribution } from './http/end-attribution.js';
import { instrumentHttp } from './http/node-http.js';
import { instrumentExpressRoutes, instrumentFastifyRoutes, instrumentKoaRoutes } from './http/routes.js';
import { pgModulePatches } from './pg/index.js';
import { nodeRedisModulePatches } from './node-redis/index.js';
import { redisModulePatches } from './redis/index.js';
import { buildReport, type Report } from './report/json.js';

/** What `start()` returns: one caller's share of leakwatch in this process. */
export interface Started {
  /**
   * Lets go of this caller's share. The last `stop()` in the process undoes every instrumentation
   * (the originals come back, and what other tools wrapped on top stays); the records stay.
   * Calling it twice is harmless.
   */
  stop(): void;
  /** The process's report now, as `leakwatch run` writes it (see schema/report.schema.json). */
  report(): Report;
}

/** Everything `start()` installs, in order; a step that throws undoes the ones before it. */
function instrumentAll(runtime: Runtime): Undo {
  const { config } = runtime;
  const libraries = { acquireStackFrames: config.acquireStackFrames };
  return applyAll(
    [
      instrumentHttp,
      () => (config.endAttribution ? instrumentEndAttribution() : null),
      instrumentExpressRoutes,
      instrumentFastifyRoutes,
      () => onModuleLoad({ package: 'koa', file: 'lib/context.js', majors: [2, 3], patch: (context) => instrumentKoaRoutes(context as object) }),
      ...pgModulePatches(libraries).map((patch) => () => onModuleLoad(patch)),
      ...redisModulePatches(libraries).map((patch) => () => onModuleLoad(patch)),
      ...nodeRedisModulePatches(libraries).map((patch) => () => onModuleLoad(patch)),
    ],
    'stopping leakwatch',
  );
}

/**
 * `metricsPort`: the server is loaded only when asked for, since it is what needs prom-client, and
 * is shared by every caller that asks for the same address. Failures are logged, never thrown.
 */
function serveConfiguredMetrics(runtime: Runtime): Undo | null {
  const { metricsPort, metricsHost } = runtime.config;
  if (metricsPort === null) return null;
  return install(globalThis, `metrics at ${metricsHost}:${metricsPort}`, () => {
    const metrics = import('./metrics/serve-from-config.js');
  metrics.then((m) => m.serveMetricsFromConfig(runtime)).catch((error: unknown) => logFailure('starting the metrics server', error));
    return () => void metrics.then((m) => m.stopServingMetrics()).catch((error: unknown) => logFailure('stopping the metrics server', error));
  });
}

/**
 * Follows every node:http server of the process and instruments the app's own copies of the
 * supported libraries as they load, configured by `options` over `LEAKWATCH_*`.
 *
 * Any number of callers may start leakwatch (an app, a preload, a test setup file): they share one
 * ledger and one set of patches, and options given by a later caller apply to it from then on.
 * A bad option throws a ConfigError that names it. A failure inside leakwatch never stops the app:
 * what was installed is rolled back, the failure is logged, and the app runs uninstrumented.
 */
export function start(options?: LeakwatchOptions): Started {
  const runtime = ensureRuntime(options);
  const startedAt = Date.now();
  let release: Undo = () => {};
  try {
    release = install(globalThis, 'leakwatch', () => instrumentAll(runtime));
  } catch (error) {
    logFailure('starting leakwatch (nothing is instrumented)', error);
  }
  const stopServing = serveConfiguredMetrics(runtime);
  return {
    stop: undoAll([release, stopServing], 'stopping leakwatch'),
    report: () => buildReport(runtime.ledger, startedAt),
  };
}
