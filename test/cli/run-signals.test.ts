import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/report/json.js';
import { CLI, leakwatch } from '../support/cli.js';

const APP = path.join(import.meta.dirname, 'fixtures', 'signal-app.mjs');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-signals-'));
});

/** A process started by a test, with its output, the port its app printed, and its exit. */
class Started {
  output = '';
  readonly exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (text: string) => (this.output += text));
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (this.output += text));
    this.exited = new Promise((resolve) => child.once('exit', (status, signal) => resolve({ status, signal })));
  }
  async port(timeoutMs = 20_000): Promise<number> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const match = /listening (\d+)/.exec(this.output);
      if (match) return Number(match[1]);
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`it exited before listening:\n${this.output}`);
      if (Date.now() > until) throw new Error(`not listening within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

const started: Started[] = [];
afterEach(() => {
  // Whatever a failed test left running goes, by the pids it started.
  for (const s of started.splice(0)) for (const pid of treeOf(s.child.pid!)) kill(pid, 'SIGKILL');
});

/** `detached`: leakwatch leads a new process group, as a shell's job does, so the group can be signalled. */
function start(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; detached?: boolean } = {}): Started {
  const child = spawn(command, args, {
    cwd: options.cwd ?? dir,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  const s = new Started(child);
  started.push(s);
  return s;
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
}

/** State, parent and group of a process from /proc, or null when it is gone. */
function stat(pid: number): { state: string; ppid: number; pgid: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid, pgid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state, ppid: Number(ppid), pgid: Number(pgid) };
  } catch {
    return null;
  }
}

const alive = (pid: number) => {
  const s = stat(pid);
  return s !== null && s.state !== 'Z';
};

/** `root` and every live process below it, read from /proc. */
function treeOf(root: number): number[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => ({ pid: Number(name), ...stat(Number(name)) }))
    .filter((p) => p.state !== undefined && p.state !== 'Z');
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const p of all) if (p.ppid === tree[i]) tree.push(p.pid);
  return tree.filter(alive);
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function get(port: number, urlPath: string, wait = true): Promise<void> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => resolve());
    if (!wait) setTimeout(resolve, 100);
  });
}

/** A project folder whose `npm start` runs the signal app, and whose `npx leakwatch` is this build. */
function npmProject(scripts: Record<string, string> = {}): string {
  const project = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-npm-project-'));
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, scripts: { start: `node ${APP}`, ...scripts } }));
  const bin = path.join(project, 'node_modules', '.bin');
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(path.join(bin, 'leakwatch'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
  chmodSync(path.join(bin, 'leakwatch'), 0o755);
  return project;
}

/** Drives the app: two answered requests, a pg client never released, a request never answered. */
async function drive(port: number): Promise<void> {
  await get(port, '/ok');
  await get(port, '/ok');
  await get(port, '/leak');
  await get(port, '/hang', false);
  await new Promise((resolve) => setTimeout(resolve, 600)); // past the 300 ms connection threshold
}

function expectAppReport(report: Report): void {
  expect(report.summary.responses).toBe(4);
  expect(report.leakedResponses).toEqual([expect.objectContaining({ path: '/hang', reason: 'open-at-exit' })]);
  expect(report.leakedConnections).toEqual([expect.objectContaining({ kind: 'pg', ownerPath: '/leak', reason: 'held-after-response-closed' })]);
}

describe('leakwatch run: exit status and signals', () => {
  describe('when the command ends by a signal leakwatch did not pass on', () => {
    it('exits 128+N, as a shell reports it', async () => {
      expect((await leakwatch(['run', '--', 'sh', '-c', 'kill -TERM $$'])).status).toBe(143);
      expect((await leakwatch(['run', '--', process.execPath, '-e', 'process.kill(process.pid, "SIGTERM")'])).status).toBe(143);
      expect((await leakwatch(['run', '--', process.execPath, '-e', 'process.kill(process.pid, "SIGINT")'])).status).toBe(130);
    });

    it('names a preloaded process that was killed before it could write its report', async () => {
      const file = path.join(dir, 'killed.json');
      const exit = await leakwatch(['run', '--report', file, '--', process.execPath, '-e', 'process.kill(process.pid, "SIGKILL")']);
      expect(exit.status).toBe(137);
      expect(exit.stderr).toMatch(/process \d+ \(node\) ended without writing its report/);
      const report = JSON.parse(readFileSync(file, 'utf8')) as Report;
      expect(report.processes).toEqual([expect.objectContaining({ reportMissing: 'exited' })]);
    });
  });

  describe('when the command leaves a preloaded process that ends after it', () => {
    it('waits for that process and merges its report', async () => {
      const file = path.join(dir, 'waited.json');
      // The command starts the app, has it strand a pg client, and exits; the app ends 1.5 s later.
      const command = `const app = require('node:child_process').spawn(process.execPath, [${JSON.stringify(APP)}], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, EXIT_AFTER_MS: '1500' } });
        app.stdout.once('data', (line) => {
          require('node:http').get('http://127.0.0.1:' + /listening (\\d+)/.exec(String(line))[1] + '/leak', (res) => res.resume());
          setTimeout(() => process.exit(0), 300);
        });`;
      const exit = await leakwatch(['run', '--report', file, '--connection-threshold', '300ms', '--', process.execPath, '-e', command]);
      expect(exit.status, exit.stderr).toBe(1);
      const report = JSON.parse(readFileSync(file, 'utf8')) as Report;
      expect(report.leakedConnections).toEqual([expect.objectContaining({ kind: 'pg', ownerPath: '/leak', reason: 'held-after-response-closed' })]);
      expect(report.processes).toHaveLength(2);
      expect(report.processes.filter((p) => p.reportMissing !== undefined)).toEqual([]);
    });
  });

  describe('when `leakwatch run -- npm start` is stopped by SIGTERM', () => {
    it('stops npm, its shell and the app, leaves no process behind, and reports what the app served and leaked', async () => {
      const project = npmProject();
      const file = path.join(project, 'leaks.json');
      const run = start(process.execPath, [CLI, 'run', '--report', file, '--connection-threshold', '300ms', '--', 'npm', 'start'], { cwd: project });
      await drive(await run.port());
      const tree = treeOf(run.child.pid!);
      expect(tree.length, 'leakwatch, npm, sh and the app').toBeGreaterThanOrEqual(4);
      run.child.kill('SIGTERM');
      const exit = await run.exited;
      expect(exit.status, run.output).toBe(1);
      expect(tree.filter(alive), 'processes left behind').toEqual([]);
      expectAppReport(JSON.parse(readFileSync(file, 'utf8')) as Report);
    });
  });

  describe('when npx, which runs leakwatch through a shell, is stopped by SIGTERM', () => {
    it('still stops the app, leaves no process behind and writes the report', async () => {
      const project = npmProject();
      const file = path.join(project, 'leaks.json');
      const npx = start('npx', ['leakwatch', 'run', '--report', file, '--connection-threshold', '300ms', '--', 'npm', 'start'], { cwd: project });
      await drive(await npx.port());
      const tree = treeOf(npx.child.pid!);
      npx.child.kill('SIGTERM');
      await npx.exited;
      // npx and its shell are gone at once; leakwatch notices it lost its parent and stops the rest.
      await until(() => tree.every((pid) => !alive(pid)), 'every process of the tree ends');
      await until(() => existsSync(file), 'the report is written');
      expectAppReport(JSON.parse(readFileSync(file, 'utf8')) as Report);
    });
  });

  describe('when an npm script that runs `exec leakwatch run` is stopped by SIGTERM to npm', () => {
    it('npm ends only after the report is written, and leaves no process behind', async () => {
      const project = npmProject({ leaks: 'exec leakwatch run --report leaks.json --connection-threshold 300ms -- npm start' });
      const file = path.join(project, 'leaks.json');
      const npm = start('npm', ['run', 'leaks'], { cwd: project });
      await drive(await npm.port());
      const tree = treeOf(npm.child.pid!);
      npm.child.kill('SIGTERM');
      await npm.exited;
      expect(existsSync(file), 'the report when npm has ended').toBe(true);
      expectAppReport(JSON.parse(readFileSync(file, 'utf8')) as Report);
      await until(() => tree.every((pid) => !alive(pid)), 'every process of the tree ends', 2000);
    });
  });

  describe('when SIGINT is sent to the process group leakwatch runs in (CI cancelling a job)', () => {
    it('reaches the app once, and ending by it is a normal end', async () => {
      const count = path.join(dir, 'group-sigint.count');
      const run = start(process.execPath, [CLI, 'run', '--', process.execPath, APP], { detached: true, env: { COUNT_FILE: count } });
      await run.port();
      process.kill(-run.child.pid!, 'SIGINT');
      const exit = await run.exited;
      expect(exit.status, run.output).toBe(0);
      expect(readFileSync(count, 'utf8')).toBe('1');
    });
  });

  describe('in a terminal', () => {
    const hasScript = spawnSync('script', ['--version']).status === 0;

    /** leakwatch run in a new pseudo-terminal (util-linux `script`); what the test writes is typed into it. */
    const inTerminal = (command: string, env: NodeJS.ProcessEnv = {}) =>
      start('script', ['-qfec', command, '/dev/null'], { env: { SHELL: '/bin/sh', ...env } });
    const quote = (args: string[]) => args.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');

    it.runIf(hasScript)('Ctrl-C reaches the app once (the terminal signals the whole job; leakwatch does not again)', async () => {
      const count = path.join(dir, 'terminal-sigint.count');
      const run = inTerminal(quote([process.execPath, CLI, 'run', '--', process.execPath, APP]), { COUNT_FILE: count });
      await run.port();
      run.child.stdin!.write('\x03');
      await until(() => existsSync(count), 'the app gets SIGINT');
      await until(() => /leakwatch: \d+ responses/.test(run.output), 'leakwatch writes its summary');
      run.child.stdin!.end();
      await run.exited;
      expect(readFileSync(count, 'utf8')).toBe('1');
    });

    it.runIf(hasScript)('the command can read the terminal (it is not put in a background group, where reading stops it)', async () => {
      const reader = `process.stdin.once('data', (line) => { console.log('read ' + String(line).trim()); process.exit(0); })`;
      const run = inTerminal(quote([process.execPath, CLI, 'run', '--', process.execPath, '-e', reader]));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      run.child.stdin!.write('typed\r');
      await until(() => /read typed/.test(run.output), 'the command reads what was typed', 10_000);
      run.child.stdin!.end();
      await run.exited;
    });

    it.runIf(hasScript)('SIGTERM to leakwatch alone reaches every process it started', async () => {
      const project = npmProject();
      const run = inTerminal(`cd '${project}' && exec ${quote([process.execPath, CLI, 'run', '--', 'npm', 'start'])}`);
      await run.port();
      const leakwatchPid = treeOf(run.child.pid!).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(CLI))!;
      const tree = treeOf(leakwatchPid);
      expect(tree.length).toBeGreaterThanOrEqual(4);
      process.kill(leakwatchPid, 'SIGTERM');
      await until(() => tree.every((pid) => !alive(pid)), 'every process of the tree ends');
      run.child.stdin!.end();
      await run.exited;
    });
  });
});
