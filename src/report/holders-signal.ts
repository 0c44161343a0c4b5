import { isDefaultLog } from '../config.js';
import { logFailure } from '../core/guard.js';
import { getRuntime } from '../core/runtime.js';
import { holdersOf, holdersText } from './holders.js';

/**
 * `holdersSignal`: on that signal the process writes the holders snapshot to the `log` option,
 * a line per call (the text table), or one JSON object when `leakLog` is `json`. The listener
 * replaces the signal's default action (for SIGUSR2 and SIGQUIT, ending the process), which is why
 * it is installed only when asked for. Returns the undo.
 */
export function installHoldersSignal(signal: NodeJS.Signals): () => void {
  const onSignal = () => {
    try {
      const runtime = getRuntime();
      if (runtime === undefined) return;
      const { log, leakLog } = runtime.config;
      const snapshot = holdersOf(runtime);
      if (leakLog === 'json') {
        const line = JSON.stringify({ time: new Date().toISOString(), level: 'info', logger: 'leakwatch', msg: `holders on ${signal}`, event: 'holders', ...snapshot });
        if (isDefaultLog(log)) process.stderr.write(line + '\n');
        else log(line);
        return;
      }
      for (const line of holdersText(snapshot)) log(line);
    } catch (error) {
      logFailure(`writing the holders on ${signal}`, error);
    }
  };
  process.on(signal, onSignal);
  return () => void process.off(signal, onSignal);
}
