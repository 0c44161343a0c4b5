import { closeSync, mkdirSync, openSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const reason = (error: unknown) => (error as NodeJS.ErrnoException).code ?? String(error);

/** The nearest folder above `file` that exists, and the folders below it that would have to be made. */
function existingAncestor(file: string): { dir: string; missing: string[] } {
  const missing: string[] = [];
  let dir = path.dirname(file);
  for (;;) {
    try {
      statSync(dir);
      return { dir, missing: missing.reverse() };
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return { dir, missing: missing.reverse() };
      missing.push(dir);
      dir = parent;
    }
  }
}

/**
 * Why a report could not be written to `file`, or null when it can: tried without writing it, by
 * opening an existing file for update, or by creating and removing a probe file in the nearest
 * folder that exists. Never calls a recursive mkdir: on /proc that loops forever.
 */
export function whyNotWritable(file: string): string | null {
  const target = path.resolve(file);
  try {
    const stats = statSync(target);
    if (stats.isDirectory()) return 'it is a directory';
    closeSync(openSync(target, 'r+'));
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') {
      const { dir } = existingAncestor(target);
      return `${dir} is not a directory`;
    }
    if (code !== 'ENOENT') return `it cannot be opened for writing (${reason(error)})`;
  }
  const { dir } = existingAncestor(target);
  if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
  const probe = path.join(dir, `.leakwatch-probe-${process.pid}`);
  try {
    closeSync(openSync(probe, 'wx'));
  } catch (error) {
    return `no file can be created in ${dir} (${reason(error)})`;
  }
  try {
    unlinkSync(probe);
  } catch {
    // the probe stays; the check itself answered
  }
  return null;
}

/** Writes `text` to `file`, making the folders it needs one at a time. Throws what the file system says. */
export function writeOutputFile(file: string, text: string): void {
  const target = path.resolve(file);
  for (const dir of existingAncestor(target).missing) {
    try {
      mkdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  writeFileSync(target, text);
}
