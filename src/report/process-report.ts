import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { logFailure } from '../core/guard.js';
import type { Runtime } from '../core/runtime.js';
import { buildReport } from './json.js';

/**
 * Writes this process's report when it ends: on 'exit', and on SIGINT/SIGTERM when nothing else
 * handles them (the signal is then raised again, so the process still dies by it). Responses still
 * open then are reported `open-at-exit`.
 */
export interface ExitReportOptions {
  /** A folder: the report goes to `<dir>/<pid>.json` (used by `leakwatch run` to merge processes). */
  dir?: string;
  /** A file path for the report of this one process. */
  file?: string;
}

export function installExitReport(runtime: Runtime, options: ExitReportOptions): () => void {
  const startedAt = Date.now();
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    try {
      const ledger = runtime.ledger;
      ledger.finalize();
      const report = buildReport(ledger, startedAt);
      // A process that loaded a library leakwatch follows is part of the run even when it saw nothing: `run` warns about it.
      const seenAnything = report.summary.responses > 0 || ledger.leaks.length > 0 || ledger.held.size > 0 || report.processes[0].libraries.length > 0;
      if (options.file !== undefined) {
        mkdirSync(path.dirname(path.resolve(options.file)), { recursive: true });
        writeFileSync(options.file, JSON.stringify(report, null, 2) + '\n');
      }
      if (options.dir !== undefined && seenAnything) {
        mkdirSync(options.dir, { recursive: true });
        writeFileSync(path.join(options.dir, `${process.pid}.json`), JSON.stringify(report) + '\n');
      }
    } catch (error) {
      logFailure('writing the leak report', error);
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    // Only ours: the default action (death by the signal) is what the app expects, after the report.
    if (process.listenerCount(signal) > 1) return;
    write();
    remove();
    process.kill(process.pid, signal);
  };
  process.on('exit', write);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const remove = () => {
    process.removeListener('exit', write);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  };
  return remove;
}
