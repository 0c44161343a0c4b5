/**
 * `node --import leakwatch/register app.js` (or `--require`): follows every response of the process,
 * instruments the app's own pg, ioredis and node-redis as they load, logs a line per leak
 * (LEAKWATCH_LOG), serves metrics when LEAKWATCH_METRICS_PORT is set and writes the report at exit
 * when LEAKWATCH_REPORT is, all configured by `LEAKWATCH_*`.
 * `leakwatch run` puts this into NODE_OPTIONS of every Node process it starts.
 *
 * A configuration error stops the process (exit 2) with a sentence naming the variable; any other
 * failure is logged and the app runs uninstrumented.
 */
import { ConfigError } from './config.js';
import { logFailure } from './core/guard.js';
import { shared } from './core/state.js';
import { start } from './start.js';

const registration = shared('register', () => ({ done: false }));

function register(): void {
  if (registration.done) return;
  registration.done = true;
  try {
    // start() also writes the report at exit for LEAKWATCH_REPORT and LEAKWATCH_REPORT_DIR.
    start();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`leakwatch: ${error.message}\n`);
      process.exit(2);
    }
    logFailure('leakwatch/register (the app runs uninstrumented)', error);
  }
}

register();
