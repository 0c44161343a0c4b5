import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './cli.js';

/**
 * A project outside this repository with leakwatch installed from `npm pack` (so only what the
 * package ships is there) and its other dependencies linked from this repo's node_modules, so no
 * network is needed. Returns the project folder.
 */
export function packedProject(files: Record<string, string>, dependencies: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-packed-'));
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').at(-1)!;
  const modules = path.join(dir, 'node_modules');
  mkdirSync(path.join(modules, 'leakwatch'), { recursive: true });
  execFileSync('tar', ['xzf', path.join(dir, out), '-C', path.join(modules, 'leakwatch'), '--strip-components=1']);
  for (const name of dependencies) {
    const target = path.join(modules, name);
    mkdirSync(path.dirname(target), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules', name), target, 'dir');
  }
  // the binaries a project would have
  mkdirSync(path.join(modules, '.bin'), { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  readdirSync(dir);
  return dir;
}
