import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT } from './dashboard.js';

/** The binaries the metrics tests run, found on PATH; a missing one fails the test with what to do. */

const INSTALL = 'run `bash .ci/install-prometheus.sh` (Debian: apt-get install prometheus prometheus-postgres-exporter prometheus-redis-exporter)';

export function requireBinary(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${name} is not installed, and the metrics tests need it: ${INSTALL}.`);
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], options: { input?: string; cwd?: string } = {}): Run {
  const result = spawnSync(command, args, { cwd: options.cwd ?? ROOT, input: options.input, encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A port free on 127.0.0.1 now (there is a window before the caller binds it; tests accept that). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** dist/ must be built for tests that start processes with `--import dist/register.js`. */
export function requireBuild(): { register: string; index: string } {
  const register = path.join(ROOT, 'dist/register.js');
  const index = path.join(ROOT, 'dist/index.js');
  const metrics = path.join(ROOT, 'dist/metrics/create-metrics.js');
  for (const file of [register, index, metrics]) {
    if (!fs.existsSync(file)) throw new Error(`${path.relative(ROOT, file)} is missing: run \`npm run build\` before these tests (npm test does).`);
  }
  const built = fs.statSync(metrics).mtimeMs;
  const newer = sourceFiles(path.join(ROOT, 'src')).find((file) => fs.statSync(file).mtimeMs > built);
  if (newer !== undefined) throw new Error(`${path.relative(ROOT, newer)} changed after the last build: run \`npm run build\` before these tests (npm test does).`);
  return { register, index };
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}
