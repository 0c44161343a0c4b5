/**
 * `node --import leakwatch/register app.js` (or `--require`): follows every response of the process,
 * instruments the app's own pg, ioredis and node-redis as they load, and serves metrics when
 * LEAKWATCH_METRICS_PORT is set, all configured by `LEAKWATCH_*`.
 * `leakwatch run` puts this into NODE_OPTIONS of every Node process it starts.
 *
 * A configuration error stops the process (exit 2) with a sentence naming the variable; any other
 * failure is logged and the app runs uninstrumented.
 */
import { ConfigError } from './config.js';
import { logFailure } from './core/guard.js';
import { getRuntime } from './core/runtime.js';
import { shared } from './core/state.js';
import { installExitReport } from './report/process-report.js';
import { start } from './start.js';

const registration = shared('register', () => ({ done: false }));

function register(): void {
  if (registration.done) return;
  registration.done = true;
  try {
    start();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`leakwatch: ${error.message}\n`);
      process.exit(2);
    }
    logFailure('leakwatch/register (the app runs uninstrumented)', error);
    return;
  }
  try {
    const dir = process.env.LEAKWATCH_REPORT_DIR || undefined;
    const file = process.env.LEAKWATCH_REPORT || undefined;
    const runtime = getRuntime();
    if (runtime !== undefined && (dir !== undefined || file !== undefined)) installExitReport(runtime, { dir, file });
  } catch (error) {
    logFailure('leakwatch/register: the exit report', error);
  }
}

register();
