import { unknownEnvironment, type LeakwatchOptions } from './config.js';
import { logFailure } from './core/guard.js';
import { onModuleLoad } from './core/module-hooks.js';
import { applyAll, install, undoAll, type Undo } from './core/patch.js';
import { ensureRuntime, getRuntime, type Runtime } from './core/runtime.js';
import { instrumentEndAttribution } from './http/end-attribution.js';
import { instrumentHttp } from './http/node-http.js';
import { instrumentExpressRoutes, instrumentFastifyRoutes, instrumentKoaRoutes } from './http/routes.js';
import { pgModulePatches } from './pg/index.js';
import { nodeRedisModulePatches } from './node-redis/index.js';
import { redisModulePatches } from './redis/index.js';
import { buildReport, type Report } from './report/json.js';
import { installExhaustionLog } from './report/exhaustion-log.js';
import { holdersOf, type HoldersSnapshot } from './report/holders.js';
import { installHoldersSignal } from './report/holders-signal.js';
import { installLeakLog } from './report/leak-log.js';
import { installExitReport } from './report/process-report.js';
import { shared } from './core/state.js';

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
  /**
   * Who holds every connection now, and who waits for one: each pool's held connections (state,
   * held and idle time, owner, acquisition site, server pid), longest held first, and the
   * checkouts waiting for it, longest first. The same as `GET /leakwatch/holders` and the holders
   * signal; see docs/metrics.md.
   */
  holders(): HoldersSnapshot;
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

/** A line per leak and resolution (`leakLog`), one log per process: the first caller's format. */
function logLeaks(runtime: Runtime): Undo | null {
  const { leakLog, log } = runtime.config;
  if (leakLog === 'off') return null;
  return install(runtime.ledger, 'leak log', () => installLeakLog(runtime.ledger, { format: leakLog, log }));
}

/** A line per pool exhaustion, in the leak log's format (`leakLog`), one log per process. */
function logExhaustions(runtime: Runtime): Undo | null {
  const { leakLog, log } = runtime.config;
  if (leakLog === 'off') return null;
  return install(runtime.waits, 'exhaustion log', () => installExhaustionLog(runtime.waits, runtime.ledger, { format: leakLog, log }));
}

/** `holdersSignal`: the snapshot to the log on that signal; off unless asked for. */
function holdersOnSignal(runtime: Runtime): Undo | null {
  const signal = runtime.config.holdersSignal;
  if (signal === null) return null;
  return install(process, `holders signal ${signal}`, () => installHoldersSignal(signal));
}

/** The report at exit (`report`, and the folder `leakwatch run` gives), one per file. */
function reportAtExit(runtime: Runtime): Undo | null {
  const { report, reportDir } = runtime.config;
  if (report === null && reportDir === null) return null;
  return install(runtime.ledger, `exit report ${report ?? ''} ${reportDir ?? ''}`, () => installExitReport(runtime, { file: report ?? undefined, dir: reportDir ?? undefined }));
}

const warned = shared('warnedEnvironment', () => new Set<string>());

/** Once per process and name: a `LEAKWATCH_*` variable nothing reads is likely a typo of one that is. */
function warnUnknownEnvironment(runtime: Runtime): void {
  for (const { name, nearest } of unknownEnvironment()) {
    if (warned.has(name)) continue;
    warned.add(name);
    runtime.config.log(`${name} is not a leakwatch variable and is ignored${nearest !== undefined ? `; did you mean ${nearest}?` : '.'}`);
  }
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
 * supported libraries as they load, configured by `options` over `LEAKWATCH_*`. Logs a line per
 * leak and resolution (`leakLog`), and writes the process's report at exit when `report` is set.
 *
 * Any number of callers may start leakwatch (an app, a preload, a test setup file): they share one
 * ledger and one set of patches, and options given by a later caller apply to it from then on.
 * A bad or unknown option throws a ConfigError that names it; an unknown `LEAKWATCH_*` variable is
 * warned about once. A failure inside leakwatch never stops the app:
 * what was installed is rolled back, the failure is logged, and the app runs uninstrumented.
 */
export function start(options?: LeakwatchOptions): Started {
  const runtime = ensureRuntime(options);
  warnUnknownEnvironment(runtime);
  const startedAt = runtime.ledger.now();
  const undos: Array<Undo | null> = [];
  try {
    undos.push(install(globalThis, 'leakwatch', () => instrumentAll(runtime)));
    // The leak log before the exit report: its 'exit' listener runs first, so leaks found at exit are logged.
    undos.push(logLeaks(runtime), logExhaustions(runtime), holdersOnSignal(runtime), reportAtExit(runtime));
  } catch (error) {
    logFailure('starting leakwatch (nothing is instrumented)', error);
    undoAll(undos)();
    undos.length = 0;
  }
  undos.push(serveConfiguredMetrics(runtime));
  return {
    stop: undoAll(undos, 'stopping leakwatch'),
    report: () => buildReport(runtime.ledger, startedAt),
    holders: () => holdersOf(getRuntime() ?? runtime),
  };
}
