import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './cli.js';

/**
 * `npm pack` of this repository into `dir`; returns the tarball's path. Scripts are skipped: the
 * suite runs on the dist/ that `npm test` built, and prepack's rebuild would rewrite dist/ under
 * the other test files running at the same time.
 */
export function packTarball(dir: string): string {
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').at(-1)!;
  return path.join(dir, out);
}

/**
 * A project outside this repository with leakwatch installed from `npm pack` (so only what the
 * package ships is there) and its other dependencies linked from this repo's node_modules, so no
 * network is needed; `linkFrom` names another node_modules folder for some of them (a package the
 * root cannot hold, see installed-folder.ts). Returns the project folder.
 */
export function packedProject(files: Record<string, string>, dependencies: string[], linkFrom: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-packed-'));
  const tarball = packTarball(dir);
  const modules = path.join(dir, 'node_modules');
  mkdirSync(path.join(modules, 'leakwatch'), { recursive: true });
  execFileSync('tar', ['xzf', tarball, '-C', path.join(modules, 'leakwatch'), '--strip-components=1']);
  for (const name of dependencies) {
    const target = path.join(modules, name);
    mkdirSync(path.dirname(target), { recursive: true });
    symlinkSync(path.join(linkFrom[name] ?? path.join(ROOT, 'node_modules'), name), target, 'dir');
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

/**
 * A project that ran `npm install <packed leakwatch> ...packages`, as a user does: from the npm
 * registry (or npm's cache), with npm's own bin links. Returns the project folder.
 */
export function installedProject(packages: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-installed-'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'scratch', private: true }));
  const tarball = packTarball(dir);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, ...packages], { cwd: dir, stdio: 'pipe' });
  return dir;
}
