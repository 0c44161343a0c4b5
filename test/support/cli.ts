import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const REGISTER = path.join(ROOT, 'dist/register.js');
export const fixture = (name: string) => path.join(ROOT, 'fixtures', name);

export interface Exit {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (bounded by `timeoutMs`) and collects its output. */
export function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onStdout?: (text: string, child: ChildProcess) => void; cwd?: string } = {},
): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, NO_COLOR: '1', ...options.env }, cwd: options.cwd ?? ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      options.onStdout?.(stdout, child);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not end within ${options.timeoutMs ?? 30_000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('exit', (status, signal) => {
      clearTimeout(timer);
      // let the pipes drain
      setImmediate(() => resolve({ status, signal, stdout, stderr }));
    });
  });
}

export const leakwatch = (args: string[], options?: Parameters<typeof runCommand>[2]) => runCommand(process.execPath, [CLI, ...args], options);
