import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, ENV, parseDuration, resolveConfig } from '../config.js';
import { formatHtml } from '../report/html.js';
import { mergeReports, type Report, type ReportProcess } from '../report/json.js';
import { formatJunit } from '../report/junit.js';
import { whyNotWritable, writeOutputFile } from '../report/output-file.js';
import type { ProcessAnnouncement } from '../report/process-report.js';
import { formatSummaryMarkdown, githubArtifactsUrl } from '../report/summary-md.js';
import { formatReport, useColour } from '../report/text.js';
import { inTerminalForeground, isRunning, signalTree } from './process-tree.js';
import { unfollowedLibrariesWarning } from '../report/unfollowed.js';

export interface RunOptions {
  report?: string;
  junit?: string;
  html?: string;
  summaryMd?: string;
  responseThresholdMs?: number;
  connectionThresholdMs?: number;
  metricsPort?: number;
  fail: boolean;
  command: string[];
}

export const RUN_USAGE = `Usage: leakwatch run [options] -- COMMAND [ARGS...]

Runs COMMAND with leakwatch preloaded into every Node.js process it starts, then writes one
report of the responses that never closed and the connections they stranded.

Options:
  --report FILE.json              write the JSON report (schema: leakwatch/report.schema.json)
  --junit FILE.xml                write a JUnit XML file, one failed test case per leak
  --html FILE.html                write the HTML report: one self-contained page with a timeline
                                  and the root cause of each leak
  --summary-md FILE.md            write a short markdown summary (leaks by route and reason, the
                                  top root causes); with $GITHUB_STEP_SUMMARY set, run also
                                  appends it there
  --response-threshold DURATION   a response that does nothing this long is leaked (default 30s)
  --connection-threshold DURATION a connection held this long after its response closed,
                                  or a pool checkout idle this long, is leaked (default 10s)
  --metrics-port N                serve Prometheus metrics on 127.0.0.1:N from the first process
                                  that answers an HTTP request
  --no-fail                       exit 0 even when leaks are found
  -h, --help                      show this help

DURATION is milliseconds (1000) or a number with a unit: 500ms, 2s, 1m.

Exit status: COMMAND's own status if it failed; if a signal ended it, 128+N as a shell reports
it. Otherwise 1 when a leak was found (unless --no-fail), else 0. A SIGINT, SIGTERM or SIGHUP
that leakwatch received reaches every process COMMAND started, once, and ending by it is a
normal end. Every output path is checked before COMMAND starts; one that cannot be written is a
usage error (exit 2).
The summary is printed on stderr; NO_COLOR turns colour off.`;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses the words after `run`. Throws UsageError/ConfigError with a sentence naming the flag. */
export function parseRunArgs(args: string[]): RunOptions | 'help' {
  const options: RunOptions = { fail: true, command: [] };
  const value = (i: number, flag: string): string => {
    const v = args[i + 1];
    if (v === undefined || v === '--') throw new UsageError(`${flag} needs a value; see leakwatch run --help.`);
    return v;
  };
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const take = () => (inline !== undefined ? inline : value(i++, flag));
    if (arg === '--') {
      i++;
      break;
    }
    switch (flag) {
      case '-h':
      case '--help':
        return 'help';
      case '--report':
        options.report = take();
        break;
      case '--junit':
        options.junit = take();
        break;
      case '--html':
        options.html = take();
        break;
      case '--summary-md':
        options.summaryMd = take();
        break;
      case '--response-threshold':
        options.responseThresholdMs = parseDuration(take(), '--response-threshold');
        break;
      case '--connection-threshold':
        options.connectionThresholdMs = parseDuration(take(), '--connection-threshold');
        break;
      case '--metrics-port': {
        const v = take();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n > 65535) throw new ConfigError(`--metrics-port is ${JSON.stringify(v)}; use a port number from 0 to 65535.`);
        options.metricsPort = n;
        break;
      }
      case '--no-fail':
        options.fail = false;
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}; see leakwatch run --help.`);
        // no `--`: the command starts at the first word that is not an option
        options.command = args.slice(i);
        return options;
    }
  }
  options.command = args.slice(i);
  if (options.command.length === 0) throw new UsageError('no command to run; usage: leakwatch run [options] -- COMMAND [ARGS...]');
  return options;
}

function registerUrl(): string {
  return pathToFileURL(path.join(__dirname, '..', 'register.js')).href;
}

/** How long run waits, after COMMAND ended, for the other processes it started to write their reports. */
const PART_WAIT_MS = 5000;

/** Signals that leakwatch passes on to the processes it started. */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

const signalNumber = (signal: NodeJS.Signals) => os.constants.signals[signal] ?? 0;

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

interface Parts {
  reports: Report[];
  missing: ReportProcess[];
}

/**
 * The reports of every process that announced itself in `dir`, waiting up to `waitMs` for those
 * still running to write theirs. A process that is gone without one, or still running at the end
 * of the wait, is returned as missing.
 */
async function collectParts(dir: string, waitMs: number, warn: (line: string) => void): Promise<Parts> {
  const announced = () => readdirSync(dir).filter((name) => name.endsWith('.started')).map((name) => Number(name.slice(0, -'.started'.length)));
  const written = (pid: number) => existsSync(path.join(dir, `${pid}.json`));
  const until = Date.now() + waitMs;
  while (Date.now() < until && announced().some((pid) => !written(pid) && isRunning(pid))) await new Promise((resolve) => setTimeout(resolve, 50));

  const reports: Report[] = [];
  const missing: ReportProcess[] = [];
  for (const pid of announced()) {
    const running = isRunning(pid);
    const part = readJson<Report>(path.join(dir, `${pid}.json`));
    if (part !== undefined) {
      reports.push(part);
      continue;
    }
    const argv = readJson<ProcessAnnouncement>(path.join(dir, `${pid}.started`))?.argv ?? [];
    const what = `process ${pid} (${['node', ...argv.map((a) => path.basename(a))].join(' ').slice(0, 80)})`;
    if (written(pid)) warn(`leakwatch: the report of ${what} cannot be read; it is left out`);
    else if (running) warn(`leakwatch: ${what} was still running ${waitMs / 1000} s after the command ended; what it saw is not in the report`);
    else warn(`leakwatch: ${what} ended without writing its report (killed by SIGKILL?); what it saw is not in the report`);
    missing.push({ pid, argv, reportMissing: running ? 'still-running' : 'exited' });
  }
  return { reports, missing };
}

/** The flags that name output files, with their values, in the order they are written. */
function outputs(options: RunOptions): Array<[flag: OutputFlag, file: string]> {
  const list: Array<[OutputFlag, string]> = [];
  if (options.report !== undefined) list.push(['--report', options.report]);
  if (options.junit !== undefined) list.push(['--junit', options.junit]);
  if (options.html !== undefined) list.push(['--html', options.html]);
  if (options.summaryMd !== undefined) list.push(['--summary-md', options.summaryMd]);
  return list;
}

export type OutputFlag = '--report' | '--junit' | '--html' | '--summary-md';

/** What each output flag writes; `html` is the HTML report's path as given, for the summary's link line. */
export function formatOutput(flag: OutputFlag, report: Report, html?: string): string {
  switch (flag) {
    case '--report':
      return JSON.stringify(report, null, 2) + '\n';
    case '--junit':
      return formatJunit(report);
    case '--html':
      return formatHtml(report);
    case '--summary-md':
      return formatSummaryMarkdown(report, { html, artifactsUrl: githubArtifactsUrl() });
  }
}

/** Throws a UsageError naming the first output that cannot be written; called before anything runs. */
export function checkOutputs(list: Array<[flag: string, file: string]>): void {
  for (const [flag, file] of list) {
    const why = whyNotWritable(file);
    if (why !== null) throw new UsageError(`${flag} ${file} cannot be written: ${why}; choose another path.`);
  }
}

/**
 * COMMAND's exit as run reports it: ending by a signal that leakwatch received too is a normal
 * end (0), and so is the 128+N status a shell or an app reports for it; any other signal is 128+N.
 */
function commandStatus(code: number | null, signal: NodeJS.Signals | null, received: Set<NodeJS.Signals>): number {
  if (signal !== null) return received.has(signal) ? 0 : 128 + signalNumber(signal);
  if (code !== null && code > 128 && [...received].some((s) => code === 128 + signalNumber(s))) return 0;
  return code ?? 1;
}

/**
 * On GitHub Actions (`$GITHUB_STEP_SUMMARY` names the step's summary file), the markdown summary
 * is appended there, unless --summary-md already wrote that very file.
 */
function appendStepSummary(report: Report, options: RunOptions, warn: (line: string) => void): void {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!file || (options.summaryMd !== undefined && path.resolve(options.summaryMd) === path.resolve(file))) return;
  try {
    appendFileSync(file, formatOutput('--summary-md', report, options.html));
  } catch (error) {
    warn(`leakwatch: could not append the summary to $GITHUB_STEP_SUMMARY ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

/** Runs the command under leakwatch and resolves with the exit status `leakwatch run` should use. */
export async function run(options: RunOptions, io = { stderr: process.stderr }): Promise<number> {
  checkOutputs(outputs(options));
  // Validates LEAKWATCH_* in the environment too, before anything starts.
  const config = resolveConfig({ responseThreshold: options.responseThresholdMs, connectionThreshold: options.connectionThresholdMs });
  const startedAt = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-run-'));
  const env: NodeJS.ProcessEnv = { ...process.env, LEAKWATCH_REPORT_DIR: dir };
  env.NODE_OPTIONS = `${env.NODE_OPTIONS ? env.NODE_OPTIONS + ' ' : ''}--import=${registerUrl()}`;
  env[ENV.responseThreshold] = String(config.responseThresholdMs);
  env[ENV.connectionThreshold] = String(config.connectionThresholdMs);
  if (options.metricsPort !== undefined) {
    env[ENV.metricsPort] = String(options.metricsPort);
    env.LEAKWATCH_METRICS_LAZY = '1'; // bound by the first process that serves HTTP, not by npm
  }
  delete env.LEAKWATCH_REPORT;

  // In a terminal, COMMAND stays in the terminal's foreground job: a process in a background group
  // is stopped (SIGTTIN/SIGTTOU) when it reads the terminal or sets raw mode, as dev servers and
  // watchers do, and the terminal's Ctrl-C already reaches every process of the job, so passing it
  // on again would make it two. Anywhere else (CI, a pipe, a detached job), COMMAND leads its own
  // session and process group, so each signal leakwatch receives reaches the whole tree once by one
  // kill of the group, whether it was sent to leakwatch alone or to leakwatch's group.
  const terminal = inTerminalForeground();
  const [command, ...args] = options.command;
  const child = spawn(command, args, { stdio: 'inherit', env, detached: !terminal });
  const received = new Set<NodeJS.Signals>();
  /** Every process a forwarded signal reached: leakwatch ends after them (see below). */
  const signalled = new Set<number>();
  const forward = (signal: NodeJS.Signals) => {
    received.add(signal);
    // Only SIGTERM is never the terminal's; the others, while the job is in the foreground, are.
    if (terminal && signal !== 'SIGTERM' && inTerminalForeground()) return;
    if (child.pid !== undefined) for (const pid of signalTree(child.pid, signal, !terminal)) signalled.add(pid);
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  // npm and npx run leakwatch through `sh -c`, and pass a SIGTERM to that shell only, which dies of
  // it without passing it on: leakwatch then finds itself with a new parent. It takes that as the
  // SIGTERM it was meant to get, so the command is stopped and the report still written.
  const npmParent = process.env.npm_lifecycle_event !== undefined ? process.ppid : null;
  const parentWatch = setInterval(() => {
    if (npmParent === null || process.ppid === npmParent) return;
    clearInterval(parentWatch);
    forward('SIGTERM');
  }, 200).unref();
  const commandExit = await new Promise<number>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      io.stderr.write(`leakwatch: could not start ${command}: ${error.message}\n`);
      resolve(error.code === 'EACCES' ? 126 : 127);
    });
    child.once('exit', (code, signal) => resolve(commandStatus(code, signal, received)));
  });
  clearInterval(parentWatch);

  // The command's own process may end before the processes under it that the signal also reached
  // (an app still closing after npm exited): leakwatch returns only once they have ended too, so
  // that it never leaves a process behind it, within the same bound as the reports' wait.
  const deadline = Date.now() + PART_WAIT_MS;
  while (Date.now() < deadline && [...signalled].some(isRunning)) await new Promise((resolve) => setTimeout(resolve, 50));
  const warn = (line: string) => io.stderr.write(line + '\n');
  const parts = await collectParts(dir, Math.max(0, deadline - Date.now()), warn);
  const report = mergeReports(parts.reports, {
    startedAt,
    endedAt: Date.now(),
    responseMs: config.responseThresholdMs,
    connectionMs: config.connectionThresholdMs,
  });
  report.processes.push(...parts.missing);
  rmSync(dir, { recursive: true, force: true });
  for (const [flag, file] of outputs(options)) {
    try {
      writeOutputFile(file, formatOutput(flag, report, options.html));
    } catch (error) {
      warn(`leakwatch: could not write ${flag} ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}); the summary below is all there is`);
    }
  }
  appendStepSummary(report, options, warn);
  io.stderr.write(formatReport(report, { colour: useColour(io.stderr as { isTTY?: boolean }) }) + '\n');
  const unfollowed = unfollowedLibrariesWarning(parts.reports);
  if (unfollowed !== null) warn(unfollowed);
  for (const signal of FORWARDED) process.removeListener(signal, forward);

  if (commandExit !== 0) return commandExit;
  const leaked = report.summary.leakedResponses + report.summary.leakedConnections > 0;
  return leaked && options.fail ? 1 : 0;
}
