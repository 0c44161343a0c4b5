import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * The agents the tests run beside live in packages of their own under test/agents/, one per Node
 * line, each with its own lockfile: current OpenTelemetry (0.30x) needs Node ≥ 22.15, and the
 * newest that Node 20 runs is 0.223; dd-trace 6 needs Node 22. The root package stays as it was
 * (`npm ci && npm test`); the folder a line needs is installed here, with `npm ci --prefix`, the
 * first time a test asks for it and again whenever its lockfile changes.
 */

const [major, minor] = process.versions.node.split('.').map(Number);
/** True where current OpenTelemetry runs (Node ≥ 22.15): the folder `node24`; else `node20`. */
export const CURRENT_RELEASES = major > 22 || (major === 22 && minor >= 15);
export const LINE = CURRENT_RELEASES ? 'node24' : 'node20';
export const NODE_LINE = `Node ${process.versions.node}`;

const AGENTS = fileURLToPath(new URL('..', import.meta.url));

export interface AgentPackages {
  dir: string;
  versions: Record<string, string>;
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** One installer at a time across test files (vitest runs them in parallel processes). */
async function withLock<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, '.installing');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock left by a killed run is taken over after ten minutes.
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 600_000) rmSync(lock, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** The agents' folder for this Node line, installed if it is not (or its lockfile changed). */
export async function agentPackages(): Promise<AgentPackages> {
  const dir = path.join(AGENTS, LINE);
  const stamp = createHash('sha256').update(readFileSync(path.join(dir, 'package-lock.json'))).digest('hex');
  const marker = path.join(dir, 'node_modules', '.leakwatch-lockfile-sha256');
  if (read(marker) !== stamp) {
    await withLock(dir, async () => {
      if (read(marker) === stamp) return;
      try {
        await promisify(execFile)('npm', ['ci', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error'], { maxBuffer: 16 * 1024 * 1024 });
      } catch (error) {
        const { stderr } = error as { stderr?: string };
        throw new Error(`npm ci --prefix ${dir} failed: ${stderr ?? String(error)}`);
      }
      writeFileSync(marker, stamp);
    });
  }
  const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  return { dir, versions: manifest.dependencies };
}
