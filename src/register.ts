/**
 * `node --import leakwatch/register app.js` (or `--require`): follows every response of the process,
 * instruments the app's own pg and ioredis as they load, logs a line per leak (LEAKWATCH_LOG),
 * serves metrics when LEAKWATCH_METRICS_PORT is set and writes the report at exit when
 * LEAKWATCH_REPORT is, all configured by `LEAKWATCH_*`.
 * `leakwatch run` puts this into NODE_OPTIONS of every Node process it starts.
 */
import { ConfigError } from './config.js';
import { start } from './start.js';

const REGISTERED = Symbol.for('leakwatch.register.v1');
const holder = globalThis as unknown as { [REGISTERED]?: true };

function register(): void {
  if (holder[REGISTERED]) return;
  holder[REGISTERED] = true;
  try {
    // start() also writes the report at exit for LEAKWATCH_REPORT and LEAKWATCH_REPORT_DIR.
    start();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`leakwatch: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

register();
