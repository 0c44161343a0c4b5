import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Report } from '../../../src/report/json.js';
import { CLI, REGISTER } from '../../support/cli.js';

/** `root` and every live process below it, read from /proc. */
export function treeOf(root: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z') parents.set(Number(name), Number(ppid));
    } catch {
      // gone
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid);
  return tree.filter((pid) => parents.has(pid));
}

export function isAlive(pid: number): boolean {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface Served {
  port: number;
  /** The processes of the app's tree while it serves (leakwatch, npm, sh, the server). */
  tree: number[];
  output(): string;
  /** Sends SIGTERM to the process the test started and waits for it to end. */
  stop(): Promise<{ status: number | null; signal: NodeJS.Signals | null; report: Report; output: string }>;
  /** Kills whatever is left of the tree (after a failed test). */
  kill(): void;
}

export interface ServeOptions {
  cwd: string;
  command: string[];
  env?: NodeJS.ProcessEnv;
  /** Where the app says its port: the first group of the first match in its output. */
  port: RegExp;
  /** Run under `leakwatch run --report` (else the command is expected to preload leakwatch itself and write LEAKWATCH_REPORT). */
  underRun: boolean;
  connectionThresholdMs: number;
  responseThresholdMs: number;
  timeoutMs?: number;
}

/**
 * Starts an app as a user would, with leakwatch, and waits until it serves. With `underRun`, the
 * command runs as `leakwatch run --report … -- COMMAND`; otherwise the command has leakwatch
 * preloaded (`REGISTER` is in its arguments) and its own report goes to LEAKWATCH_REPORT.
 */
export async function serve(options: ServeOptions): Promise<Served> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-served-'));
  const reportFile = path.join(dir, 'report.json');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // npm, npx and the apps' `#!/usr/bin/env node` use the Node of this test run.
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
    NO_COLOR: '1',
    NEXT_TELEMETRY_DISABLED: '1',
    DATABASE_URL: process.env.LEAKWATCH_TEST_PG_URL,
    REDIS_URL: process.env.LEAKWATCH_TEST_REDIS_URL,
    ...options.env,
  };
  delete env.LEAKWATCH_LOG;
  let child: ChildProcess;
  if (options.underRun) {
    const args = [CLI, 'run', '--report', reportFile, '--connection-threshold', `${options.connectionThresholdMs}ms`, '--response-threshold', `${options.responseThresholdMs}ms`, '--', ...options.command];
    child = spawn(process.execPath, args, { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  } else {
    Object.assign(env, {
      LEAKWATCH_REPORT: reportFile,
      LEAKWATCH_CONNECTION_THRESHOLD: String(options.connectionThresholdMs),
      LEAKWATCH_RESPONSE_THRESHOLD: String(options.responseThresholdMs),
    });
    child = spawn(options.command[0], options.command.slice(1), { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (output += text));
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (status, signal) => resolve({ status, signal })));

  const until = Date.now() + (options.timeoutMs ?? 30_000);
  let port: number | undefined;
  while (port === undefined) {
    const match = options.port.exec(output);
    if (match) port = Number(match[1]);
    else if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${options.command.join(' ')} exited before serving:\n${output}`);
    else if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`${options.command.join(' ')} did not serve within ${options.timeoutMs ?? 30_000} ms:\n${output}`);
    } else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const tree = treeOf(child.pid!);
  return {
    port,
    tree,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      const exit = await exited;
      return { ...exit, report: JSON.parse(readFileSync(reportFile, 'utf8')) as Report, output };
    },
    kill() {
      for (const pid of [...tree, ...treeOf(child.pid!)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    },
  };
}

/** A free port on 127.0.0.1, for servers that cannot be told to take any (Next's standalone server takes PORT=0 as 3000). */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Answer {
  status: number;
  body: string;
}

/** A request (a GET unless `method` says otherwise) that resolves with the whole answer. */
export function get(port: number, urlPath: string, timeoutMs = 10_000, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, method, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} got no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** A GET whose answer never comes: the request stays open until the returned function hangs up. */
export function getNeverAnswered(port: number, urlPath: string): () => void {
  // A connection of its own: bytes the server still flushes for an earlier answer are not its progress.
  const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false });
  req.on('error', () => {});
  return () => req.destroy();
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export { REGISTER };
