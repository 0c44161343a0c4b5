import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Packages some tests need that the root package cannot hold (they need a newer Node than the
 * root's `npm ci` runs on, or their peers clash with the root's): each lives in a folder of its
 * own with its own lockfile, installed with `npm ci --prefix` the first time a test asks for it
 * and again whenever its lockfile changes. The root package stays as it was (`npm ci && npm test`).
 */

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

/** The dependencies `dir`'s package.json names (what a test can name before they are installed). */
export function folderDependencies(dir: string): Record<string, string> {
  return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies;
}

/** `dir`'s packages, installed from its lockfile if they are not (or the lockfile changed); returns its package.json's dependencies. */
export async function installedFolder(dir: string): Promise<Record<string, string>> {
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
  return folderDependencies(dir);
}
