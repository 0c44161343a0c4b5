import { unknownEnvironment, type LeakwatchOptions } from './config.js';
import { logFailure } from './core/guard.js';
import { onModuleLoad } from './core/module-hooks.js';
import { ensureRuntime, getRuntime, type Runtime } from './core/runtime.js';
import { instrumentEndAttribution } from './http/end-attribution.js';
import { instrumentHttp } from './http/node-http.js';
import { instrumentExpressRoutes, instrumentFastifyRoutes, instrumentKoaRoutes } from './http/routes.js';
import { pgModulePatches } from './pg/index.js';
import { redisModulePatches } from './redis/index.js';
import { installLeakLog, silenceLeakLog } from './report/leak-log.js';
import { installExitReport } from './report/process-report.js';

export interface Started {
  readonly runtime: Runtime;
  /** Undoes every instrumentation `start()` installed; the ledger keeps its records. */
  stop(): void;
}

const EXIT_REPORT = Symbol.for('leakwatch.exitReport.v1');
const WARNED = Symbol.for('leakwatch.warnedEnvironment.v1');
type Holder = { [EXIT_REPORT]?: { runtime: Runtime; remove: () => void }; [WARNED]?: Set<string> };
const holder = globalThis as unknown as Holder;

/**
 * Creates the runtime from `options` (over `LEAKWATCH_*`), follows every node:http server, and
 * instruments the app's own copies of the supported libraries as they load. Logs a line per leak
 * and resolution (`leakLog`), and writes the process's report at exit when `report` is set.
 * Throws a ConfigError naming the option for a bad value or an unknown option.
 */
export function start(options?: LeakwatchOptions): Started {
  const previous = getRuntime();
  const runtime = ensureRuntime(options, options !== undefined);
  // A replaced runtime's ledger sweeps no more (its timer stopped): its log would only hold an 'exit' listener.
  if (previous !== undefined && previous !== runtime) silenceLeakLog(previous.ledger);
  warnUnknownEnvironment(runtime);
  const undos: Array<() => void> = [
    instrumentHttp(),
    instrumentExpressRoutes(),
    instrumentFastifyRoutes(),
    onModuleLoad({ file: 'koa/lib/context.js', patch: (context) => instrumentKoaRoutes(context as object) }),
    ...pgModulePatches.map(onModuleLoad),
    ...redisModulePatches.map(onModuleLoad),
  ];
  if (runtime.config.endAttribution) undos.push(instrumentEndAttribution());
  // Before the exit report: its 'exit' listener must run first, so leaks found at exit are logged at once.
  if (runtime.config.leakLog !== 'off') undos.push(installLeakLog(runtime.ledger, { format: runtime.config.leakLog, log: runtime.config.log }));
  if (runtime.config.report !== null || runtime.config.reportDir !== null) undos.push(exitReportFor(runtime));
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

/** One exit report per process, for the current runtime; returns its undo (nothing if it was there). */
function exitReportFor(runtime: Runtime): () => void {
  const current = holder[EXIT_REPORT];
  if (current?.runtime === runtime) return () => {};
  current?.remove();
  const { report, reportDir } = runtime.config;
  const remove = installExitReport(runtime, { file: report ?? undefined, dir: reportDir ?? undefined });
  const installed = { runtime, remove };
  holder[EXIT_REPORT] = installed;
  return () => {
    if (holder[EXIT_REPORT] !== installed) return;
    delete holder[EXIT_REPORT];
    remove();
  };
}

/** Once per process and name: a `LEAKWATCH_*` variable nothing reads is likely a typo of one that is. */
function warnUnknownEnvironment(runtime: Runtime): void {
  const warned = (holder[WARNED] ??= new Set());
  for (const { name, nearest } of unknownEnvironment()) {
    if (warned.has(name)) continue;
    warned.add(name);
    runtime.config.log(`${name} is not a leakwatch variable and is ignored${nearest !== undefined ? `; did you mean ${nearest}?` : '.'}`);
  }
}
