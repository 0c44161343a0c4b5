import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, ENV, parseDuration, resolveConfig } from '../config.js';
import { mergeReports, type Report } from '../report/json.js';
import { formatJunit } from '../report/junit.js';
import { formatReport, useColour } from '../report/text.js';
import { unfollowedLibrariesWarning } from '../report/unfollowed.js';

export interface RunOptions {
  report?: string;
  junit?: string;
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
  --response-threshold DURATION   a response that does nothing this long is leaked (default 30s)
  --connection-threshold DURATION a connection held this long after its response closed,
                                  or a pool checkout idle this long, is leaked (default 10s)
  --metrics-port N                serve Prometheus metrics on 127.0.0.1:N from the first process
                                  that answers an HTTP request
  --no-fail                       exit 0 even when leaks are found
  -h, --help                      show this help

DURATION is milliseconds (1000) or a number with a unit: 500ms, 2s, 1m.

Exit status: COMMAND's own status if it failed; otherwise 1 when a leak was found (unless
--no-fail), else 0. COMMAND ending by a SIGINT/SIGTERM that leakwatch forwarded is a normal end.
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

function readParts(dir: string, warn: (line: string) => void): Report[] {
  const parts: Report[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    try {
      parts.push(JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as Report);
    } catch (error) {
      warn(`leakwatch: could not read the report of process ${name} (${String(error)}); it is left out`);
    }
  }
  return parts;
}

function writeFile(file: string, text: string): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, text);
}

/** Runs the command under leakwatch and resolves with the exit status `leakwatch run` should use. */
export async function run(options: RunOptions, io = { stderr: process.stderr }): Promise<number> {
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

  const [command, ...args] = options.command;
  const child = spawn(command, args, { stdio: 'inherit', env });
  const forwarded = new Set<NodeJS.Signals>();
  const forward = (signal: NodeJS.Signals) => {
    forwarded.add(signal);
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const status = await new Promise<number>((resolve) => {
    child.once('error', (error) => {
      io.stderr.write(`leakwatch: could not start ${command}: ${error.message}\n`);
      resolve(127);
    });
    child.once('exit', (code, signal) => {
      if (signal !== null) resolve(forwarded.has(signal) || signal === 'SIGTERM' ? 0 : 128 + (os.constants.signals[signal] ?? 0));
      else if (code !== null && forwarded.size > 0 && (code === 130 || code === 143)) resolve(0);
      else resolve(code ?? 1);
    });
  });
  process.removeListener('SIGINT', forward);
  process.removeListener('SIGTERM', forward);

  const warn = (line: string) => io.stderr.write(line + '\n');
  const parts = readParts(dir, warn);
  const report = mergeReports(parts, {
    startedAt,
    endedAt: Date.now(),
    responseMs: config.responseThresholdMs,
    connectionMs: config.connectionThresholdMs,
  });
  rmSync(dir, { recursive: true, force: true });
  if (options.report !== undefined) writeFile(options.report, JSON.stringify(report, null, 2) + '\n');
  if (options.junit !== undefined) writeFile(options.junit, formatJunit(report));
  io.stderr.write(formatReport(report, { colour: useColour(io.stderr as { isTTY?: boolean }) }) + '\n');
  const unfollowed = unfollowedLibrariesWarning(parts);
  if (unfollowed !== null) warn(unfollowed);

  if (status !== 0) return status;
  const leaked = report.summary.leakedResponses + report.summary.leakedConnections > 0;
  return leaked && options.fail ? 1 : 0;
}
