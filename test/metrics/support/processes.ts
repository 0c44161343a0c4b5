import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT } from './dashboard.js';

/** Child processes a test starts, with their output kept for failure messages, and stopped by pid. */
export class Child {
  output = '';
  private exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    process.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    process.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve) => process.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the first line of output that `match` accepts. */
  async waitFor<T>(match: (line: string) => T | undefined, timeoutMs = 10_000): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.output.split('\n')) {
        const found = match(line);
        if (found !== undefined) return found;
      }
      if (this.process.exitCode !== null) throw new Error(`${this.name} exited with ${this.process.exitCode}:\n${this.output}`);
      if (Date.now() > until) throw new Error(`${this.name} did not print what was expected within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
  }
}

export function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Child(name, child);
}
