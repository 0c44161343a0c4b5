import { renameSync, writeFileSync } from 'node:fs';
import { withoutCredentials } from '../core/credentials.js';
import path from 'node:path';
import { logFailure } from '../core/guard.js';
import type { Runtime } from '../core/runtime.js';
import { buildReport } from './json.js';
import { writeOutputFile } from './output-file.js';

export interface ExitReportOptions {
  /**
   * A folder of `leakwatch run`: the process announces itself there at once (`<pid>.started`), so
   * run knows whose report to wait for, and writes its report to `<pid>.json` when it ends.
   */
  dir?: string;
  /** A file path for the report of this one process. */
  file?: string;
}

/** Signals whose default action ends the process without 'exit': the report is written first. */
const ENDING_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The announcement a process leaves in run's folder when it starts. */
export interface ProcessAnnouncement {
  pid: number;
  argv: string[];
}

/**
 * Writes this process's report when it ends: on 'exit', and on SIGINT/SIGTERM/SIGHUP when nothing
 * else handles them (the signal is then raised again, so the process still dies by it). Responses
 * still open then are reported `open-at-exit`.
 */
export function installExitReport(runtime: Runtime, options: ExitReportOptions): () => void {
  const startedAt = runtime.ledger.now();
  if (options.dir !== undefined) {
    try {
      const announcement: ProcessAnnouncement = { pid: process.pid, argv: process.argv.slice(1).map(withoutCredentials) };
      writeFileSync(path.join(options.dir, `${process.pid}.started`), JSON.stringify(announcement) + '\n');
    } catch (error) {
      logFailure('announcing this process to leakwatch run', error);
    }
  }
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    let report;
    try {
      runtime.ledger.finalize();
      report = buildReport(runtime.ledger, startedAt);
    } catch (error) {
      logFailure('building the leak report', error);
      return;
    }
    if (options.file !== undefined) {
      try {
        writeOutputFile(options.file, JSON.stringify(report, null, 2) + '\n');
      } catch (error) {
        logFailure(`writing the leak report to ${options.file}`, error);
      }
    }
    if (options.dir !== undefined) {
      try {
        // Written even when empty: it tells run that this process ended and has nothing to add.
        // Renamed into place, so run never reads half of it.
        const part = path.join(options.dir, `${process.pid}.json`);
        writeFileSync(`${part}.partial`, JSON.stringify(report) + '\n');
        renameSync(`${part}.partial`, part);
      } catch (error) {
        logFailure('writing the leak report for leakwatch run', error);
      }
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    // Only ours: the default action (death by the signal) is what the app expects, after the report.
    if (process.listenerCount(signal) > 1) return;
    write();
    remove();
    process.kill(process.pid, signal);
  };
  // Node watches signals with an unref'd handle: a signal the process sends itself just before its
  // loop runs dry would be lost to our listener, and the process would exit 0 instead of dying by
  // it. One more turn of the loop lets the listener see it.
  const lastTurn = () => void setImmediate(() => {});
  process.on('exit', write);
  process.once('beforeExit', lastTurn);
  for (const signal of ENDING_SIGNALS) process.on(signal, onSignal);
  const remove = () => {
    process.removeListener('exit', write);
    process.removeListener('beforeExit', lastTurn);
    for (const signal of ENDING_SIGNALS) process.removeListener(signal, onSignal);
  };
  return remove;
}
